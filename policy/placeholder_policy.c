/* Placeholder until the module has code; static libraries need one source. */
typedef int esm_policy_placeholder_t;
