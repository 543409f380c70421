/* Placeholder until the module has code; static libraries need one source. */
typedef int esm_pollers_placeholder_t;
