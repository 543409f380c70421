/* esmd's JSON config: loading, defaults and validation with AWS's ranges and messages.
 * Mapping entries use the exact field names of the AWS CreateEventSourceMapping request; esmd's
 * own options live under "EsmdOptions" so the AWS fields stay pristine. See docs/config.md. */
#ifndef ESM_CONFIG_H
#define ESM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { ESM_SRC_SQS, ESM_SRC_KINESIS, ESM_SRC_KAFKA } esm_source_type;
typedef enum { ESM_PROTO_LAMBDA, ESM_PROTO_HTTP } esm_protocol;
typedef enum {
    ESM_START_NONE,
    ESM_START_TRIM_HORIZON,
    ESM_START_LATEST,
    ESM_START_AT_TIMESTAMP
} esm_starting_position;
typedef struct {
    char *name;
    char *value;
} esm_kv;
typedef struct {
    char *type;
    char *uri;
    /* The secret's content when the config was loaded (esm_kafka_secrets_fingerprint; 0 when
     * unread): a reload restarts the mapping when a rotated secret changed it. */
    uint64_t fingerprint;
} esm_source_access;

typedef struct esm_function_config {
    char *name; /* key in "functions" */
    char *url;
    esm_protocol protocol; /* "lambda" (default) | "http" */
    int timeout_seconds;   /* default 30, 1..900 */
    int max_concurrency;   /* default 10, 1..1000 */
    esm_kv *headers;       /* values already ${VAR}-expanded */
    size_t n_headers;
    char *arn; /* "arn" key, else arn:aws:lambda:<region>:000000000000:function:<name> */
} esm_function_config;

typedef struct esm_mapping_config {
    char *uuid;          /* "UUID" if given (esmd extension), else a stable id derived from source +
                            function (hex of a 64-bit FNV-1a hash, formatted as a UUID) */
    bool uuid_derived;   /* no "UUID" was given */
    char *function_name; /* as written */
    const esm_function_config *function; /* resolved; a function ARN resolves by its name part */
    esm_source_type source;
    char *event_source_arn; /* NULL for self-managed Kafka */
    char *source_region, *source_account,
        *source_name;       /* from the ARN: queue name / stream name; Kafka: NULL, NULL, topic */
    bool fifo;              /* SQS queue name ends in .fifo */
    bool enabled;           /* default true */
    int batch_size;         /* defaults: SQS 10, Kinesis 100, Kafka 100 */
    int batching_window_ms; /* MaximumBatchingWindowInSeconds*1000; default SQS/Kinesis 0,
                               Kafka 500 */
    esm_starting_position starting_position;
    int64_t starting_position_timestamp_ms;
    char **filter_patterns; /* the Pattern strings, as written */
    size_t n_filters;
    bool report_batch_item_failures;
    bool bisect_on_function_error;
    int maximum_retry_attempts;     /* -1 = infinite (default) */
    int maximum_record_age_seconds; /* -1 = infinite (default) */
    int parallelization_factor;     /* default 1 */
    int tumbling_window_seconds;    /* default 0 */
    char *on_failure_destination;   /* NULL when none / "" */
    int scaling_max_concurrency;    /* ScalingConfig.MaximumConcurrency, 0 = unset */
    /* Kafka */
    char *topic;
    char **bootstrap_servers;
    size_t n_bootstrap_servers;
    char *consumer_group_id; /* default: "esmd-" + uuid */
    esm_source_access *source_access;
    size_t n_source_access;
    /* esmd extensions, all under the mapping key "EsmdOptions" */
    bool include_records_in_failure_record;          /* EsmdOptions.IncludeRecordsInFailureRecord */
    int retry_backoff_base_ms, retry_backoff_max_ms; /* EsmdOptions.RetryBackoff {BaseSeconds
                                                        (default 1), MaxSeconds (default 60)} */
    bool retry_backoff_set;   /* EsmdOptions.RetryBackoff was given (turns on SQS backoff) */
    int stuck_lane_seconds;   /* EsmdOptions.StuckLaneSeconds, default 300 */
    esm_kv *kafka_properties; /* EsmdOptions.KafkaProperties: librdkafka pass-through */
    size_t n_kafka_properties;
    int max_filters; /* EsmdOptions.MaxFilters: 5 (default, AWS's quota) .. 10 */
    /* Kafka only: MaximumRetryAttempts was -1 with an OnFailure destination and was capped
     * to 10 (AWS does this silently; esm_config_log_notes() logs it). */
    bool retry_attempts_capped;
} esm_mapping_config;

typedef struct esm_config {
    char *state_dir;    /* default "/var/lib/esmd" */
    char *admin_listen; /* default "127.0.0.1:9400" */
    char *admin_token;  /* admin_token, or what admin_token_file holds; NULL = none */
    char *log_level;    /* "log_level": trace|debug|info|warn|error, default info */
    char *region;       /* aws.region, default $AWS_REGION / $AWS_DEFAULT_REGION / us-east-1 */
    char *endpoint_sqs, *endpoint_kinesis,
        *endpoint_sns; /* aws.endpoints.*; NULL = AWS's https://<svc>.<region>.amazonaws.com */
    char *access_key_id, *secret_access_key, *session_token; /* from AWS_ACCESS_KEY_ID etc. only */
    int shutdown_grace_seconds;                              /* default 30 */
    esm_function_config *functions;
    size_t n_functions;
    esm_mapping_config *mappings;
    size_t n_mappings;
} esm_config;

typedef struct {
    char *path; /* JSON path, e.g. "event_source_mappings[2].BatchSize"; "" for the document */
    char *message;
} esm_config_problem;
typedef struct {
    esm_config_problem *items;
    size_t n;
} esm_config_problems;

/* Parses and validates. Returns NULL when there is any problem; problems (may be NULL) then
 * lists every problem found, not just the first. Call esm_config_problems_free afterwards. */
esm_config *esm_config_parse(const char *json, size_t len, esm_config_problems *problems);
/* Reads the file and parses it; an unreadable file is one problem with path "". */
esm_config *esm_config_load_file(const char *path, esm_config_problems *problems);
void esm_config_destroy(esm_config *cfg);
void esm_config_problems_free(esm_config_problems *p);
/* Finds a function by key, by "name:qualifier" or by function ARN (by its name part). */
const esm_function_config *esm_config_find_function(const esm_config *cfg, const char *name_or_arn);
/* True when two mappings would behave the same (for reload: unchanged mappings keep running).
 * Compares every field, including the resolved function's settings. */
bool esm_mapping_config_equal(const esm_mapping_config *a, const esm_mapping_config *b);
bool esm_function_config_equal(const esm_function_config *a, const esm_function_config *b);
/* Prints one "path: message" line per problem (what --check-config shows). */
void esm_config_problems_print(const esm_config_problems *p, FILE *out);
/* Logs (info) what the loader adjusted silently, as AWS does (e.g. Kafka retry cap). */
void esm_config_log_notes(const esm_config *cfg);

/* The scalar mapping keys as a markdown table (`esmd --config-reference`, docs/config.md). */
void esm_config_reference_print(FILE *out);

const char *esm_source_type_name(esm_source_type t);             /* "sqs" | "kinesis" | "kafka" */
const char *esm_starting_position_name(esm_starting_position p); /* "LATEST", ... or NULL */

#endif
