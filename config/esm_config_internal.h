/* Shared by the config/ files only: problem collection, JSON access helpers that report type
 * errors with a path, ${VAR} expansion, and the per-mapping "which fields were given" record
 * that the source-specific validation needs. */
#ifndef ESM_CONFIG_INTERNAL_H
#define ESM_CONFIG_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/esm_config.h"
#include "config/esm_config_keys.h"

#define ESM_CFG_PATH_MAX 512

typedef struct {
    esm_config_problems *problems; /* never NULL */
    int64_t now_ms;                /* for "not in the future" checks */
} esm_cfg_ctx;

/* Which mapping fields the user wrote (defaults are filled in after validation). */
typedef struct {
    bool key[ESM_KEY_COUNT]; /* scalar table keys given with a valid value */
    bool starting_position, starting_position_timestamp;
    bool starting_position_written; /* the key is present, even if its value was refused */
    bool destination_config, on_failure, topics, self_managed, smk_config;
    bool source_access, kafka_properties, retry_backoff;
    bool source_known; /* source type was determined */
    bool function_resolved;
    bool filters_invalid; /* a filter problem was already reported */
    size_t n_filters_given;
} esm_cfg_seen;

/* Problems. */
void esm_cfg_problem(esm_cfg_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "1 validation error detected: Value 'V' at 'member' failed to satisfy constraint: ..." when v
 * is outside [lo, hi]; returns true when in range. */
bool esm_cfg_aws_range(esm_cfg_ctx *c, const char *path, const char *member, int64_t v, int64_t lo,
                       int64_t hi);
/* "Unsupported <field> parameter for given event source mapping type." */
void esm_cfg_unsupported(esm_cfg_ctx *c, const char *mapping_path, const char *field);

/* Memory: config loading aborts on allocation failure (it runs at start and on reload only). */
void *esm_cfg_xcalloc(size_t n, size_t size);
char *esm_cfg_xstrdup(const char *s);
char *esm_cfg_xstrndup(const char *s, size_t n);

/* Paths: parent.key, parent[i]; parent "" gives just key. */
void esm_cfg_path(char *out, const char *parent, const char *key);
void esm_cfg_path_index(char *out, const char *parent, size_t i);

/* JSON access. Each reports a problem at path on a type mismatch and returns false. */
const char *esm_cfg_type_name(const cJSON *j);
bool esm_cfg_want_object(esm_cfg_ctx *c, const cJSON *j, const char *path);
bool esm_cfg_want_array(esm_cfg_ctx *c, const cJSON *j, const char *path);
/* Reports unknown and duplicate keys; allowed is NULL-terminated. Returns true if all known. */
bool esm_cfg_check_keys(esm_cfg_ctx *c, const cJSON *obj, const char *path,
                        const char *const *allowed);
/* A string, ${VAR}-expanded; *out is malloc'd (caller frees) or NULL on failure. */
bool esm_cfg_get_string(esm_cfg_ctx *c, const cJSON *j, const char *path, char **out);
/* An integral number within int64 range. */
bool esm_cfg_get_int(esm_cfg_ctx *c, const cJSON *j, const char *path, int64_t *out);
bool esm_cfg_get_bool(esm_cfg_ctx *c, const cJSON *j, const char *path, bool *out);
/* Formats a JSON number the way a user wrote it (integers without a fraction). */
void esm_cfg_format_number(double d, char *out, size_t n);

/* ${VAR} expansion; $${ is a literal ${. Returns malloc'd text, or NULL after reporting the
 * problem (never echoing values). */
char *esm_cfg_expand(esm_cfg_ctx *c, const char *s, const char *path);

/* Invalid JSON position: 1-based line and column of offset in text. */
void esm_cfg_line_col(const char *text, size_t len, size_t offset, int *line, int *col);

/* Driven by the key table (esm_config_keys_apply.c). */
/* Reports keys of obj that the table does not list for parent (and duplicates). */
bool esm_cfg_keys_check(esm_cfg_ctx *c, const cJSON *obj, const char *path,
                        esm_cfg_key_parent parent);
/* One scalar key of obj, the object at path: a valid value is stored and marked in seen. */
void esm_cfg_key_parse(esm_cfg_ctx *c, const cJSON *obj, const char *path, esm_cfg_key_id id,
                       esm_mapping_config *m, esm_cfg_seen *seen);
/* Every scalar key of parent, in table order. */
void esm_cfg_keys_parse(esm_cfg_ctx *c, const cJSON *obj, const char *path,
                        esm_cfg_key_parent parent, esm_mapping_config *m, esm_cfg_seen *seen);
/* Before parsing: the defaults that are the same for every source. */
void esm_cfg_keys_preset(esm_mapping_config *m);
/* Once the source is known: its default for every scalar key not given. */
void esm_cfg_keys_fill_defaults(esm_mapping_config *m, const esm_cfg_seen *s);
/* "Unsupported X parameter ..." for each given key the mapping's source does not allow. */
void esm_cfg_keys_unsupported(esm_cfg_ctx *c, const char *path, const esm_mapping_config *m,
                              const esm_cfg_seen *s);

/* Top-level pieces. */
/* admin_token / admin_token_file (read now, so --check-config and a reload see the file). */
void esm_cfg_parse_admin_token(esm_cfg_ctx *c, const cJSON *root, char **token);
void esm_cfg_parse_functions(esm_cfg_ctx *c, const cJSON *j, esm_config *cfg);
void esm_cfg_parse_mapping(esm_cfg_ctx *c, const cJSON *j, const char *path, const esm_config *cfg,
                           esm_mapping_config *m, esm_cfg_seen *seen);
/* Classifies EventSourceArn into source type and region/account/name; reports problems. */
bool esm_cfg_parse_source_arn(esm_cfg_ctx *c, const char *arn, const char *path,
                              esm_mapping_config *m);
/* Source-specific rules and defaults for one mapping. */
void esm_cfg_validate_mapping(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                              const esm_cfg_seen *seen);
/* Rules across mappings: duplicate pairs, UUIDs and consumer groups. */
void esm_cfg_validate_mappings(esm_cfg_ctx *c, esm_config *cfg);
/* Destination string check; topic is the source topic (Kafka) or NULL. */
void esm_cfg_check_destination(esm_cfg_ctx *c, const char *path, const char *dest,
                               esm_source_type src, bool source_known, const char *topic);
/* Kafka topic names: 1..249 of a-z A-Z 0-9 . _ -, not starting with '.'. */
bool esm_cfg_kafka_topic_ok(const char *s);
/* host:port, at most 300 characters, port 1..65535 with at most 5 digits. */
bool esm_cfg_host_port_ok(const char *s);
/* The stable id: FNV-1a 64 over source and function, formatted as a UUID. */
void esm_cfg_derive_uuid(const esm_mapping_config *m, char out[37]);
/* Name part of a function reference: "orders" for orders, orders:live, or a function ARN. */
char *esm_cfg_function_name_part(const char *ref);

void esm_cfg_mapping_free(esm_mapping_config *m);
void esm_cfg_function_free(esm_function_config *f);

#endif
