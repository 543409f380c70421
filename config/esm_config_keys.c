/* The table of mapping keys (see esm_config_keys.h). A new scalar key is one row here and its
 * field in esm_mapping_config; parsing, defaults, reload and docs/config.md follow. */
#include "config/esm_config_keys.h"

/* The field's type is checked at compile time: a bool row cannot point at an int. */
#define INT_AT(f, s)                                                                               \
    .type = ESM_KEY_INT, .scale = (s),                                                             \
    .offset = _Generic(((esm_mapping_config *)0)->f, int                                           \
                       : offsetof(esm_mapping_config, f))
#define BOOL_AT(f)                                                                                 \
    .type = ESM_KEY_BOOL, .scale = 1,                                                              \
    .offset = _Generic(((esm_mapping_config *)0)->f, bool                                          \
                       : offsetof(esm_mapping_config, f))
#define SAME(v) .def = {(v), (v), (v), (v)}
#define Q (1u << ESM_SRC_SQS)
#define K (1u << ESM_SRC_KINESIS)
#define F (1u << ESM_SRC_KAFKA)
#define COMPOSITE(k, p)                                                                            \
    {                                                                                              \
        .key = (k), .parent = (p), .type = ESM_KEY_COMPOSITE                                       \
    }
#define IGNORED(k)                                                                                 \
    {                                                                                              \
        .key = (k), .parent = ESM_KEY_IN_MAPPING, .type = ESM_KEY_IGNORED                          \
    }
#define IN_MAPPING .parent = ESM_KEY_IN_MAPPING

const esm_cfg_key esm_cfg_keys[ESM_KEY_COUNT] = {
    [ESM_KEY_FUNCTION_NAME] = COMPOSITE("FunctionName", ESM_KEY_IN_MAPPING),
    [ESM_KEY_EVENT_SOURCE_ARN] = COMPOSITE("EventSourceArn", ESM_KEY_IN_MAPPING),
    [ESM_KEY_ENABLED] = {"Enabled", IN_MAPPING, BOOL_AT(enabled), SAME(1), .sources = Q | K | F,
                         .doc = "`false` loads the mapping but does not poll its source."},
    [ESM_KEY_BATCH_SIZE] = {"BatchSize", IN_MAPPING, INT_AT(batch_size, 1), .member = "batchSize",
                            .lo = 1, .hi = 10000, .def = {10, 10, 100, 100}, .sources = Q | K | F,
                            .doc = "Records per invocation, at most. SQS FIFO: 1..10."},
    [ESM_KEY_BATCHING_WINDOW] = {"MaximumBatchingWindowInSeconds", IN_MAPPING,
                                 INT_AT(batching_window_ms, 1000),
                                 .member = "maximumBatchingWindowInSeconds", .lo = 0, .hi = 300,
                                 .def = {0, 0, 0, 500}, .sources = Q | K | F,
                                 .doc = "How long to gather records before invoking. SQS FIFO: "
                                        "only 0. SQS with `BatchSize` > 10 needs >= 1: `Maximum "
                                        "batch window in seconds must be greater than 0 if "
                                        "maximum batch size is greater than 10`."},
    [ESM_KEY_STARTING_POSITION] = COMPOSITE("StartingPosition", ESM_KEY_IN_MAPPING),
    [ESM_KEY_STARTING_POSITION_TIMESTAMP] =
        COMPOSITE("StartingPositionTimestamp", ESM_KEY_IN_MAPPING),
    [ESM_KEY_FILTER_CRITERIA] = COMPOSITE("FilterCriteria", ESM_KEY_IN_MAPPING),
    [ESM_KEY_FUNCTION_RESPONSE_TYPES] = COMPOSITE("FunctionResponseTypes", ESM_KEY_IN_MAPPING),
    [ESM_KEY_BISECT] = {"BisectBatchOnFunctionError", IN_MAPPING, BOOL_AT(bisect_on_function_error),
                        SAME(0), .sources = K | F,
                        .doc = "A failed batch is split in two and each half retried."},
    [ESM_KEY_RETRIES] = {"MaximumRetryAttempts", IN_MAPPING, INT_AT(maximum_retry_attempts, 1),
                         .member = "maximumRetryAttempts", .lo = -1, .hi = 10000, SAME(-1),
                         .sources = Q | K | F, .default_doc = "-1 (infinite)",
                         .doc = "Retries of a failed batch. SQS (esmd extension): a limit on "
                                "`ApproximateReceiveCount`. Kafka: -1 with an OnFailure "
                                "destination becomes **10**, as on AWS (logged at info on load)."},
    [ESM_KEY_RECORD_AGE] = {"MaximumRecordAgeInSeconds", IN_MAPPING,
                            INT_AT(maximum_record_age_seconds, 1),
                            .member = "maximumRecordAgeInSeconds", .lo = -1, .hi = 604800, SAME(-1),
                            .sources = K | F, .default_doc = "-1 (infinite)",
                            .doc = "Older records are not retried any more. -1, or 60..604800."},
    [ESM_KEY_PARALLELIZATION] = {"ParallelizationFactor", IN_MAPPING,
                                 INT_AT(parallelization_factor, 1),
                                 .member = "parallelizationFactor", .lo = 1, .hi = 10, SAME(1),
                                 .sources = K, .doc = "Concurrent batches per shard."},
    [ESM_KEY_TUMBLING_WINDOW] = {"TumblingWindowInSeconds", IN_MAPPING,
                                 INT_AT(tumbling_window_seconds, 1),
                                 .member = "tumblingWindowInSeconds", .lo = 0, .hi = 900, SAME(0),
                                 .sources = K, .default_doc = "0 (off)",
                                 .doc = "**esmd: only 0 is accepted for now** (tumbling windows "
                                        "are not implemented; refused rather than ignored)."},
    [ESM_KEY_DESTINATION_CONFIG] = COMPOSITE("DestinationConfig", ESM_KEY_IN_MAPPING),
    [ESM_KEY_SCALING_CONFIG] = COMPOSITE("ScalingConfig", ESM_KEY_IN_MAPPING),
    [ESM_KEY_TOPICS] = COMPOSITE("Topics", ESM_KEY_IN_MAPPING),
    [ESM_KEY_SELF_MANAGED] = COMPOSITE("SelfManagedEventSource", ESM_KEY_IN_MAPPING),
    [ESM_KEY_SELF_MANAGED_KAFKA_CONFIG] =
        COMPOSITE("SelfManagedKafkaEventSourceConfig", ESM_KEY_IN_MAPPING),
    [ESM_KEY_SOURCE_ACCESS] = COMPOSITE("SourceAccessConfigurations", ESM_KEY_IN_MAPPING),
    [ESM_KEY_KMS_KEY_ARN] = IGNORED("KMSKeyArn"),
    [ESM_KEY_METRICS_CONFIG] = IGNORED("MetricsConfig"),
    [ESM_KEY_PROVISIONED_POLLER_CONFIG] = IGNORED("ProvisionedPollerConfig"),
    [ESM_KEY_LOGGING_CONFIG] = IGNORED("LoggingConfig"),
    [ESM_KEY_TAGS] = IGNORED("Tags"),
    [ESM_KEY_UUID] = COMPOSITE("UUID", ESM_KEY_IN_MAPPING),
    [ESM_KEY_ESMD_OPTIONS] = COMPOSITE("EsmdOptions", ESM_KEY_IN_MAPPING),

    [ESM_KEY_INCLUDE_RECORDS] = {"IncludeRecordsInFailureRecord", ESM_KEY_IN_ESMD_OPTIONS,
                                 BOOL_AT(include_records_in_failure_record), SAME(0),
                                 .sources = Q | K | F,
                                 .doc = "Failure records carry the records themselves, not only "
                                        "their coordinates."},
    [ESM_KEY_RETRY_BACKOFF] = COMPOSITE("RetryBackoff", ESM_KEY_IN_ESMD_OPTIONS),
    [ESM_KEY_STUCK_LANE] = {"StuckLaneSeconds", ESM_KEY_IN_ESMD_OPTIONS,
                            INT_AT(stuck_lane_seconds, 1), .lo = 0, .hi = 86400, SAME(300),
                            .sources = Q | K | F,
                            .doc = "A lane with no progress for this long is reported as stuck "
                                   "(0 = off)."},
    [ESM_KEY_KAFKA_PROPERTIES] = COMPOSITE("KafkaProperties", ESM_KEY_IN_ESMD_OPTIONS),
    [ESM_KEY_MAX_FILTERS] = {"MaxFilters", ESM_KEY_IN_ESMD_OPTIONS, INT_AT(max_filters, 1), .lo = 1,
                             .hi = 10, SAME(5), .sources = Q | K | F,
                             .doc = "Filter limit (AWS's quota increase)."},

    [ESM_KEY_BACKOFF_BASE] = {"BaseSeconds", ESM_KEY_IN_RETRY_BACKOFF,
                              INT_AT(retry_backoff_base_ms, 1000), .lo = 0, .hi = 43200, SAME(1000),
                              .sources = Q | K | F,
                              .doc = "First retry delay; it doubles up to `MaxSeconds`."},
    [ESM_KEY_BACKOFF_MAX] = {"MaxSeconds", ESM_KEY_IN_RETRY_BACKOFF,
                             INT_AT(retry_backoff_max_ms, 1000), .lo = 0, .hi = 43200, SAME(60000),
                             .sources = Q | K | F,
                             .doc = "Longest retry delay; not less than `BaseSeconds`."},

    [ESM_KEY_SCALING_MAX_CONCURRENCY] = {"MaximumConcurrency", ESM_KEY_IN_SCALING_CONFIG,
                                         INT_AT(scaling_max_concurrency, 1),
                                         .member = "scalingConfig.maximumConcurrency", .lo = 2,
                                         .hi = 1000, SAME(0), .sources = Q, .default_doc = "unset",
                                         .doc = "Concurrent invocations of this mapping, at "
                                                "most."},
};

const char *esm_cfg_key_parent_path(esm_cfg_key_parent p)
{
    static const char *const paths[ESM_KEY_N_PARENTS] = {
        [ESM_KEY_IN_MAPPING] = "",
        [ESM_KEY_IN_ESMD_OPTIONS] = "EsmdOptions",
        [ESM_KEY_IN_RETRY_BACKOFF] = "EsmdOptions.RetryBackoff",
        [ESM_KEY_IN_SCALING_CONFIG] = "ScalingConfig",
    };
    return paths[p];
}
