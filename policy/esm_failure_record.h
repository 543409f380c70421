/* On-failure destination records in AWS's shape (docs/design.md "Failure records"), rendered
 * straight into an esm_buf. Key order follows AWS's examples:
 *   {"requestContext":{requestId,functionArn,condition,approximateInvokeCount},
 *    "responseContext":{statusCode,executedVersion,functionError},
 *    "version":"1.0","timestamp":"...Z", "<Source>BatchInfo":{...}, "payload":{...}}
 * responseContext is left out for RecordAgeExceeded and when nothing was invoked, is JSON null
 * for MaximumPayloadSizeExceeded, and has "functionError":null after a partial failure.
 */
#ifndef ESM_FAILURE_RECORD_H
#define ESM_FAILURE_RECORD_H

#include "common/esm_buf.h"
#include "policy/esm_policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ESM_FR_KINESIS, /* KinesisBatchInfo */
    ESM_FR_DDB,     /* DDBStreamBatchInfo (same fields) */
    ESM_FR_KAFKA,   /* KafkaBatchInfo */
    ESM_FR_SQS,     /* SQSBatchInfo: esmd extension for SQS-source discards */
} esm_fr_source;

/* One "<topic>-<partition>" entry of KafkaBatchInfo.recordsInfo. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t first_offset, last_offset;
    int64_t first_timestamp_ms, last_timestamp_ms;
} esm_fr_kafka_partition;

typedef struct {
    /* requestContext */
    const char *request_id; /* UUID of the last invoke, or a generated one */
    const char *function_arn;
    esm_condition condition;
    unsigned approximate_invoke_count;
    /* responseContext of the last invoke (ignored when the rules above leave it out) */
    int status_code;              /* usually 200 */
    const char *executed_version; /* "$LATEST"; NULL renders "$LATEST" */
    const char *function_error;   /* "Unhandled" / "Handled"; NULL renders null (partial) */

    int64_t timestamp_ms; /* time of discard */
    esm_fr_source source;
    size_t batch_size; /* records discarded */

    struct { /* ESM_FR_KINESIS, ESM_FR_DDB */
        const char *shard_id;
        const char *start_sequence_number, *end_sequence_number;
        int64_t first_arrival_ms, last_arrival_ms;
        const char *stream_arn;
    } stream;

    struct { /* ESM_FR_KAFKA */
        const char *bootstrap_servers;
        const char *event_source_arn; /* MSK only; NULL leaves it out */
        size_t payload_size;          /* bytes of the discarded records */
        const esm_fr_kafka_partition *partitions;
        size_t n_partitions;
        /* kafka://topic destination (docs/design.md "kafka:// destination"): condition
         * RetryAttemptsExhausted renders "RetriesExhausted" and recordInfo {offset,timestamp} (of
         * the one record) replaces recordsInfo. */
        bool topic_destination;
        int64_t record_offset;
        int64_t record_timestamp_ms;
    } kafka;

    struct { /* ESM_FR_SQS */
        const char *queue_arn;
        const char *const *message_ids;
        size_t n_message_ids;
    } sqs;

    /* Optional (per mapping): the original event JSON (an object) for exactly the discarded
     * records, included verbatim as "payload" so an operator can replay without the source.
     * NULL leaves it out; payload_len 0 means strlen(payload_json). */
    const char *payload_json;
    size_t payload_len;
} esm_failure_record;

/* Appends the record's JSON to out. Returns 0, or -1 if a required field is missing
 * (function_arn, request_id, condition NONE) or out ran out of memory. */
int esm_failure_record_render(const esm_failure_record *fr, esm_buf *out);

#endif
