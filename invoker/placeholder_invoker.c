/* Placeholder until the module has code; static libraries need one source. */
typedef int esm_invoker_placeholder_t;
