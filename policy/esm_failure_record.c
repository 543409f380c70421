/* On-failure destination records, rendered straight into an esm_buf (no cJSON trees). */
#include "policy/esm_failure_record.h"

#include "common/esm_time.h"

#include <inttypes.h>
#include <string.h>

static void put_key(esm_buf *b, const char *key)
{
    esm_buf_json_cstr(b, key);
    esm_buf_putc(b, ':');
}

static void put_time(esm_buf *b, int64_t ms)
{
    char iso[25];
    esm_iso8601_ms(ms, iso);
    esm_buf_json_cstr(b, iso);
}

static const char *condition_text(const esm_failure_record *fr)
{
    /* The kafka://topic destination's documented example says "RetriesExhausted" (docs/design.md
     * "kafka:// destination"). */
    if (fr->source == ESM_FR_KAFKA && fr->kafka.topic_destination &&
        fr->condition == ESM_COND_RETRY_ATTEMPTS_EXHAUSTED)
        return "RetriesExhausted";
    return esm_condition_name(fr->condition);
}

static void render_response_context(const esm_failure_record *fr, esm_buf *b)
{
    if (fr->condition == ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED) {
        esm_buf_puts(b, ",\"responseContext\":null");
        return;
    }
    /* Age discards and records never invoked carry no invoke data. */
    if (fr->condition == ESM_COND_RECORD_AGE_EXCEEDED || fr->approximate_invoke_count == 0) return;
    esm_buf_printf(b,
                   ",\"responseContext\":{\"statusCode\":%d,\"executedVersion\":", fr->status_code);
    esm_buf_json_cstr(b, fr->executed_version ? fr->executed_version : "$LATEST");
    esm_buf_puts(b, ",\"functionError\":");
    esm_buf_json_cstr(b, fr->function_error); /* NULL -> null: a partial failure */
    esm_buf_putc(b, '}');
}

static void render_stream(const esm_failure_record *fr, esm_buf *b)
{
    put_key(b, fr->source == ESM_FR_DDB ? "DDBStreamBatchInfo" : "KinesisBatchInfo");
    esm_buf_puts(b, "{\"shardId\":");
    esm_buf_json_cstr(b, fr->stream.shard_id);
    esm_buf_puts(b, ",\"startSequenceNumber\":");
    esm_buf_json_cstr(b, fr->stream.start_sequence_number);
    esm_buf_puts(b, ",\"endSequenceNumber\":");
    esm_buf_json_cstr(b, fr->stream.end_sequence_number);
    esm_buf_puts(b, ",\"approximateArrivalOfFirstRecord\":");
    put_time(b, fr->stream.first_arrival_ms);
    esm_buf_puts(b, ",\"approximateArrivalOfLastRecord\":");
    put_time(b, fr->stream.last_arrival_ms);
    esm_buf_printf(b, ",\"batchSize\":%zu,\"streamArn\":", fr->batch_size);
    esm_buf_json_cstr(b, fr->stream.stream_arn);
    esm_buf_putc(b, '}');
}

static void render_kafka(const esm_failure_record *fr, esm_buf *b)
{
    esm_buf_printf(b, "\"KafkaBatchInfo\":{\"batchSize\":%zu", fr->batch_size);
    if (fr->kafka.event_source_arn) {
        esm_buf_puts(b, ",\"eventSourceArn\":");
        esm_buf_json_cstr(b, fr->kafka.event_source_arn);
    }
    esm_buf_puts(b, ",\"bootstrapServers\":");
    esm_buf_json_cstr(b, fr->kafka.bootstrap_servers);
    esm_buf_printf(b, ",\"payloadSize\":%zu", fr->kafka.payload_size);
    if (fr->kafka.topic_destination) {
        esm_buf_printf(b, ",\"recordInfo\":{\"offset\":\"%" PRId64 "\",\"timestamp\":",
                       fr->kafka.record_offset);
        put_time(b, fr->kafka.record_timestamp_ms);
        esm_buf_puts(b, "}}");
        return;
    }
    esm_buf_puts(b, ",\"recordsInfo\":{");
    esm_buf key;
    esm_buf_init(&key);
    for (size_t i = 0; i < fr->kafka.n_partitions; i++) {
        const esm_fr_kafka_partition *p = &fr->kafka.partitions[i];
        esm_buf_reset(&key);
        esm_buf_printf(&key, "%s-%" PRId32, p->topic ? p->topic : "", p->partition);
        if (key.failed) b->failed = true;
        if (i) esm_buf_putc(b, ',');
        esm_buf_json_str(b, key.data ? key.data : "", key.len);
        esm_buf_printf(b,
                       ":{\"firstRecordOffset\":\"%" PRId64 "\",\"lastRecordOffset\":\"%" PRId64
                       "\",\"firstRecordTimestamp\":",
                       p->first_offset, p->last_offset);
        put_time(b, p->first_timestamp_ms);
        esm_buf_puts(b, ",\"lastRecordTimestamp\":");
        put_time(b, p->last_timestamp_ms);
        esm_buf_putc(b, '}');
    }
    esm_buf_free(&key);
    esm_buf_puts(b, "}}");
}

static void render_sqs(const esm_failure_record *fr, esm_buf *b)
{
    esm_buf_puts(b, "\"SQSBatchInfo\":{\"queueArn\":");
    esm_buf_json_cstr(b, fr->sqs.queue_arn);
    esm_buf_printf(b, ",\"batchSize\":%zu,\"messageIds\":[", fr->batch_size);
    for (size_t i = 0; i < fr->sqs.n_message_ids; i++) {
        if (i) esm_buf_putc(b, ',');
        esm_buf_json_cstr(b, fr->sqs.message_ids[i]);
    }
    esm_buf_puts(b, "]}");
}

int esm_failure_record_render(const esm_failure_record *fr, esm_buf *out)
{
    if (!fr || !out || !fr->request_id || !fr->function_arn || fr->condition == ESM_COND_NONE)
        return -1;
    size_t start = out->len;
    esm_buf_puts(out, "{\"requestContext\":{\"requestId\":");
    esm_buf_json_cstr(out, fr->request_id);
    esm_buf_puts(out, ",\"functionArn\":");
    esm_buf_json_cstr(out, fr->function_arn);
    esm_buf_puts(out, ",\"condition\":");
    esm_buf_json_cstr(out, condition_text(fr));
    esm_buf_printf(out, ",\"approximateInvokeCount\":%u}", fr->approximate_invoke_count);
    render_response_context(fr, out);
    esm_buf_puts(out, ",\"version\":\"1.0\",\"timestamp\":");
    put_time(out, fr->timestamp_ms);
    esm_buf_putc(out, ',');
    switch (fr->source) {
    case ESM_FR_KINESIS:
    case ESM_FR_DDB:
        render_stream(fr, out);
        break;
    case ESM_FR_KAFKA:
        render_kafka(fr, out);
        break;
    case ESM_FR_SQS:
        render_sqs(fr, out);
        break;
    default:
        out->len = start;
        return -1;
    }
    if (fr->payload_json) {
        esm_buf_puts(out, ",\"payload\":");
        esm_buf_append(out, fr->payload_json,
                       fr->payload_len ? fr->payload_len : strlen(fr->payload_json));
    }
    esm_buf_putc(out, '}');
    if (out->failed) {
        out->len = start < out->len ? start : out->len;
        return -1;
    }
    return 0;
}
