/* Placeholder until the module has code; static libraries need one source. */
typedef int esm_http_placeholder_t;
