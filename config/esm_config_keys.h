/* The keys of a mapping entry, in one table: every key of the mapping object and of the objects
 * esmd reads scalars from (EsmdOptions, EsmdOptions.RetryBackoff, ScalingConfig), in the order
 * the "unknown key; allowed: ..." message lists them. A scalar row (int or bool) says all there
 * is to know about its key: where it is stored, its range, its default per source kind, the
 * sources that allow it and its documentation. From it come parsing, defaults, the
 * "Unsupported ... parameter" check, reload equality and `esmd --config-reference`. Composite
 * rows only name their key; their parsers are hand-written in esm_config_mapping.c. */
#ifndef ESM_CONFIG_KEYS_H
#define ESM_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/esm_config.h"

typedef enum {
    ESM_KEY_INT,       /* int field; stored = written * scale */
    ESM_KEY_BOOL,      /* bool field */
    ESM_KEY_COMPOSITE, /* parsed by hand */
    ESM_KEY_IGNORED,   /* accepted so that a copied AWS request loads, not used */
} esm_cfg_key_type;

/* The object a key lives in. */
typedef enum {
    ESM_KEY_IN_MAPPING,
    ESM_KEY_IN_ESMD_OPTIONS,
    ESM_KEY_IN_RETRY_BACKOFF,
    ESM_KEY_IN_SCALING_CONFIG,
    ESM_KEY_N_PARENTS
} esm_cfg_key_parent;

/* Defaults differ by source kind; a FIFO queue is a kind of its own. */
typedef enum {
    ESM_KIND_SQS,
    ESM_KIND_SQS_FIFO,
    ESM_KIND_KINESIS,
    ESM_KIND_KAFKA,
    ESM_KIND_COUNT
} esm_cfg_source_kind;

#define ESM_SOURCES_ALL ((1u << ESM_SRC_SQS) | (1u << ESM_SRC_KINESIS) | (1u << ESM_SRC_KAFKA))

/* Table rows; the order is the order of the allowed-key messages. */
typedef enum {
    ESM_KEY_FUNCTION_NAME,
    ESM_KEY_EVENT_SOURCE_ARN,
    ESM_KEY_ENABLED,
    ESM_KEY_BATCH_SIZE,
    ESM_KEY_BATCHING_WINDOW,
    ESM_KEY_STARTING_POSITION,
    ESM_KEY_STARTING_POSITION_TIMESTAMP,
    ESM_KEY_FILTER_CRITERIA,
    ESM_KEY_FUNCTION_RESPONSE_TYPES,
    ESM_KEY_BISECT,
    ESM_KEY_RETRIES,
    ESM_KEY_RECORD_AGE,
    ESM_KEY_PARALLELIZATION,
    ESM_KEY_TUMBLING_WINDOW,
    ESM_KEY_DESTINATION_CONFIG,
    ESM_KEY_SCALING_CONFIG,
    ESM_KEY_TOPICS,
    ESM_KEY_SELF_MANAGED,
    ESM_KEY_SELF_MANAGED_KAFKA_CONFIG,
    ESM_KEY_SOURCE_ACCESS,
    ESM_KEY_KMS_KEY_ARN,
    ESM_KEY_METRICS_CONFIG,
    ESM_KEY_PROVISIONED_POLLER_CONFIG,
    ESM_KEY_LOGGING_CONFIG,
    ESM_KEY_TAGS,
    ESM_KEY_UUID,
    ESM_KEY_ESMD_OPTIONS,
    /* EsmdOptions */
    ESM_KEY_INCLUDE_RECORDS,
    ESM_KEY_RETRY_BACKOFF,
    ESM_KEY_STUCK_LANE,
    ESM_KEY_KAFKA_PROPERTIES,
    ESM_KEY_MAX_FILTERS,
    /* EsmdOptions.RetryBackoff */
    ESM_KEY_BACKOFF_BASE,
    ESM_KEY_BACKOFF_MAX,
    /* ScalingConfig */
    ESM_KEY_SCALING_MAX_CONCURRENCY,
    ESM_KEY_COUNT
} esm_cfg_key_id;

typedef struct {
    const char *key; /* as written in JSON */
    esm_cfg_key_parent parent;
    esm_cfg_key_type type;
    /* Scalar rows only. */
    const char *member;      /* AWS member for AWS's range message; NULL: esmd's message */
    size_t offset;           /* into esm_mapping_config */
    int64_t lo, hi;          /* as written */
    int scale;               /* stored = written * scale (seconds to ms: 1000) */
    int def[ESM_KIND_COUNT]; /* stored units */
    unsigned sources;        /* bit (1 << esm_source_type) per source that allows it */
    const char *default_doc; /* overrides the printed default, e.g. "-1 (infinite)" */
    const char *doc;         /* one line for the reference */
} esm_cfg_key;

extern const esm_cfg_key esm_cfg_keys[ESM_KEY_COUNT];

/* The JSON path of the object a key lives in: "", "EsmdOptions", ... */
const char *esm_cfg_key_parent_path(esm_cfg_key_parent p);
bool esm_cfg_key_is_scalar(const esm_cfg_key *k);
esm_cfg_source_kind esm_cfg_source_kind_of(const esm_mapping_config *m);
int esm_cfg_key_get(const esm_mapping_config *m, const esm_cfg_key *k);
void esm_cfg_key_set(esm_mapping_config *m, const esm_cfg_key *k, int v);
/* True when every scalar table field is the same in a and b. */
bool esm_cfg_keys_equal(const esm_mapping_config *a, const esm_mapping_config *b);

#endif
