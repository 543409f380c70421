#include "engine/esm_api_render.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Field i (0-based) of a colon-separated ARN into out; "" when absent. */
static void arn_field(const char *arn, int i, char *out, size_t n)
{
    out[0] = '\0';
    for (int f = 0; arn && f < i; f++) {
        arn = strchr(arn, ':');
        if (arn) arn++;
    }
    if (!arn) return;
    size_t len = strcspn(arn, ":");
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), arn);
}

void esm_api_mapping_arn(const esm_api_mapping *m, esm_buf *out)
{
    char account[32];
    arn_field(m->mc->function ? m->mc->function->arn : NULL, 4, account, sizeof account);
    esm_buf_printf(out, "arn:aws:lambda:%s:%s:event-source-mapping:%s", m->region,
                   account[0] ? account : "000000000000", m->mc->uuid);
}

static void key(esm_buf *out, const char *name)
{
    esm_buf_printf(out, ",\"%s\":", name);
}

static void str_member(esm_buf *out, const char *name, const char *value)
{
    key(out, name);
    esm_buf_json_cstr(out, value);
}

static void int_member(esm_buf *out, const char *name, long long value)
{
    esm_buf_printf(out, ",\"%s\":%lld", name, value);
}

static void bool_member(esm_buf *out, const char *name, bool value)
{
    esm_buf_printf(out, ",\"%s\":%s", name, value ? "true" : "false");
}

static void seconds_member(esm_buf *out, const char *name, int64_t ms)
{
    esm_buf_printf(out, ",\"%s\":%" PRId64 ".%03d", name, ms / 1000, (int)(ms % 1000));
}

static void filters(esm_buf *out, const esm_mapping_config *mc)
{
    if (!mc->n_filters) return;
    esm_buf_puts(out, ",\"FilterCriteria\":{\"Filters\":[");
    for (size_t i = 0; i < mc->n_filters; i++) {
        esm_buf_puts(out, i ? ",{\"Pattern\":" : "{\"Pattern\":");
        esm_buf_json_cstr(out, mc->filter_patterns[i]);
        esm_buf_putc(out, '}');
    }
    esm_buf_puts(out, "]}");
}

/* Streams and Kafka echo DestinationConfig even without a destination ({"OnFailure":{}}). */
static void destination(esm_buf *out, const esm_mapping_config *mc)
{
    if (mc->source == ESM_SRC_SQS && !mc->on_failure_destination) return;
    esm_buf_puts(out, ",\"DestinationConfig\":{\"OnFailure\":{");
    if (mc->on_failure_destination) {
        esm_buf_puts(out, "\"Destination\":");
        esm_buf_json_cstr(out, mc->on_failure_destination);
    }
    esm_buf_puts(out, "}}");
}

static void kafka(esm_buf *out, const esm_mapping_config *mc)
{
    esm_buf_puts(out, ",\"Topics\":[");
    esm_buf_json_cstr(out, mc->topic);
    esm_buf_puts(out, "],\"SelfManagedEventSource\":{\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[");
    for (size_t i = 0; i < mc->n_bootstrap_servers; i++) {
        if (i) esm_buf_putc(out, ',');
        esm_buf_json_cstr(out, mc->bootstrap_servers[i]);
    }
    esm_buf_puts(out, "]}},\"SelfManagedKafkaEventSourceConfig\":{\"ConsumerGroupId\":");
    esm_buf_json_cstr(out, mc->consumer_group_id ? mc->consumer_group_id : mc->uuid);
    esm_buf_putc(out, '}');
    if (!mc->n_source_access) return;
    esm_buf_puts(out, ",\"SourceAccessConfigurations\":[");
    for (size_t i = 0; i < mc->n_source_access; i++) {
        esm_buf_puts(out, i ? ",{\"Type\":" : "{\"Type\":");
        esm_buf_json_cstr(out, mc->source_access[i].type);
        esm_buf_puts(out, ",\"URI\":");
        esm_buf_json_cstr(out, mc->source_access[i].uri);
        esm_buf_putc(out, '}');
    }
    esm_buf_putc(out, ']');
}

void esm_api_mapping_json(const esm_api_mapping *m, esm_buf *out)
{
    const esm_mapping_config *mc = m->mc;
    esm_buf_puts(out, "{\"UUID\":");
    esm_buf_json_cstr(out, mc->uuid);
    key(out, "EventSourceMappingArn");
    esm_buf_putc(out, '"');
    esm_api_mapping_arn(m, out);
    esm_buf_putc(out, '"');
    const char *sp = esm_starting_position_name(mc->starting_position);
    if (mc->source != ESM_SRC_SQS && sp) str_member(out, "StartingPosition", sp);
    if (mc->starting_position == ESM_START_AT_TIMESTAMP)
        seconds_member(out, "StartingPositionTimestamp", mc->starting_position_timestamp_ms);
    int_member(out, "BatchSize", mc->batch_size);
    int_member(out, "MaximumBatchingWindowInSeconds", mc->batching_window_ms / 1000);
    if (mc->source == ESM_SRC_KINESIS)
        int_member(out, "ParallelizationFactor", mc->parallelization_factor);
    if (mc->event_source_arn) str_member(out, "EventSourceArn", mc->event_source_arn);
    filters(out, mc);
    str_member(out, "FunctionArn", mc->function ? mc->function->arn : NULL);
    seconds_member(out, "LastModified", m->last_modified_ms);
    str_member(out, "LastProcessingResult", m->last_processing_result);
    str_member(out, "State", m->state);
    str_member(out, "StateTransitionReason", m->state_reason);
    destination(out, mc);
    if (mc->source == ESM_SRC_KAFKA) kafka(out, mc);
    if (mc->source == ESM_SRC_KINESIS) {
        int_member(out, "MaximumRecordAgeInSeconds", mc->maximum_record_age_seconds);
        bool_member(out, "BisectBatchOnFunctionError", mc->bisect_on_function_error);
        int_member(out, "MaximumRetryAttempts", mc->maximum_retry_attempts);
        int_member(out, "TumblingWindowInSeconds", mc->tumbling_window_seconds);
    } else if (mc->source == ESM_SRC_KAFKA && mc->on_failure_destination) {
        int_member(out, "MaximumRetryAttempts", mc->maximum_retry_attempts);
    }
    esm_buf_puts(out, ",\"FunctionResponseTypes\":[");
    if (mc->report_batch_item_failures) esm_buf_puts(out, "\"ReportBatchItemFailures\"");
    esm_buf_putc(out, ']');
    if (mc->scaling_max_concurrency)
        esm_buf_printf(out, ",\"ScalingConfig\":{\"MaximumConcurrency\":%d}",
                       mc->scaling_max_concurrency);
    esm_buf_putc(out, '}');
}
