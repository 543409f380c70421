#include "pollers/kafka/esm_kafka_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *ts_type_name(esm_kafka_ts_type t)
{
    switch (t) {
    case ESM_KAFKA_TS_CREATE:
        return "CREATE_TIME";
    case ESM_KAFKA_TS_LOG_APPEND:
        return "LOG_APPEND_TIME";
    case ESM_KAFKA_TS_NONE:
        break;
    }
    return "NO_TIMESTAMP_TYPE";
}

static void signed_bytes(esm_buf *out, const unsigned char *p, size_t n)
{
    esm_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        int v = p[i] < 128 ? (int)p[i] : (int)p[i] - 256;
        if (i) esm_buf_putc(out, ',');
        esm_buf_put_i64(out, v);
    }
    esm_buf_putc(out, ']');
}

void esm_kafka_render_record(const esm_kafka_record_view *r, esm_buf *out)
{
    esm_buf_puts(out, "{\"topic\":");
    esm_buf_json_cstr(out, r->topic);
    /* Integers by hand, not printf: this runs for every record (bench finding K4). */
    esm_buf_append(out, ",\"partition\":", 13);
    esm_buf_put_i64(out, r->partition);
    esm_buf_append(out, ",\"offset\":", 10);
    esm_buf_put_i64(out, r->offset);
    esm_buf_append(out, ",\"timestamp\":", 13);
    esm_buf_put_i64(out, r->timestamp_type == ESM_KAFKA_TS_NONE ? (int64_t)-1 : r->timestamp_ms);
    esm_buf_puts(out, ",\"timestampType\":\"");
    esm_buf_puts(out, ts_type_name(r->timestamp_type));
    esm_buf_putc(out, '"');
    if (r->key) {
        esm_buf_puts(out, ",\"key\":\"");
        esm_buf_base64(out, r->key, r->key_len);
        esm_buf_putc(out, '"');
    }
    if (r->value) {
        esm_buf_puts(out, ",\"value\":\"");
        esm_buf_base64(out, r->value, r->value_len);
        esm_buf_putc(out, '"');
    }
    esm_buf_puts(out, ",\"headers\":[");
    for (size_t i = 0; i < r->n_headers; i++) {
        const esm_kafka_header *h = &r->headers[i];
        if (i) esm_buf_putc(out, ',');
        esm_buf_putc(out, '{');
        esm_buf_json_str(out, h->name, h->name_len);
        esm_buf_putc(out, ':');
        signed_bytes(out, h->value, h->value ? h->value_len : 0);
        esm_buf_putc(out, '}');
    }
    esm_buf_puts(out, "]}");
}

void esm_kafka_render_event_open(const char *bootstrap, const char *topic, int32_t partition,
                                 esm_buf *out)
{
    esm_buf_puts(out, "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":");
    esm_buf_json_cstr(out, bootstrap);
    esm_buf_puts(out, ",\"records\":{");
    esm_buf tp;
    esm_buf_init(&tp);
    esm_buf_printf(&tp, "%s-%" PRId32, topic, partition);
    if (tp.failed) out->failed = true;
    esm_buf_json_str(out, tp.data ? tp.data : "", tp.len);
    esm_buf_free(&tp);
    esm_buf_puts(out, ":[");
}

void esm_kafka_render_event_close(esm_buf *out)
{
    esm_buf_puts(out, "]}}");
}

size_t esm_kafka_event_overhead(const char *bootstrap, const char *topic, int32_t partition)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_kafka_render_event_open(bootstrap, topic, partition, &b);
    esm_kafka_render_event_close(&b);
    size_t n = b.len;
    esm_buf_free(&b);
    return n;
}
