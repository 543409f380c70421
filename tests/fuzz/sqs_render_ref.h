/* The SQS record renderer as it was before the single-pass rewrite (esmd c42e7bc, cJSON
 * lookups by name), kept as the reference the new one must match byte for byte: used by
 * tests/unit/test_pollers_sqs.c and tests/fuzz/fuzz_pollers_sqs.c. Include once per program. */
#ifndef SQS_RENDER_REF_H
#define SQS_RENDER_REF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#include "common/esm_buf.h"
#include "pollers/sqs/esm_sqs_int.h"

static const char *ref_str_item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void ref_put_key(esm_buf *b, const char *key)
{
    esm_buf_json_cstr(b, key);
    esm_buf_putc(b, ':');
}

/* An array of strings ("stringListValues") rendered as-is, or [] when absent. */
static void ref_put_string_list(esm_buf *b, const cJSON *arr)
{
    esm_buf_putc(b, '[');
    bool first = true;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) continue;
        if (!first) esm_buf_putc(b, ',');
        esm_buf_json_cstr(b, it->valuestring);
        first = false;
    }
    esm_buf_putc(b, ']');
}

/* AWS lists these four first, in this order; the rest follow as received. */
static const char *const ref_first_attributes[] = {"ApproximateReceiveCount", "SentTimestamp",
                                                   "SenderId", "ApproximateFirstReceiveTimestamp"};

static bool ref_is_first_attribute(const char *name)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(name, ref_first_attributes[i]) == 0) return true;
    return false;
}

static void ref_put_attributes(esm_buf *b, const cJSON *attrs)
{
    esm_buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; i < 4; i++) {
        const char *v = ref_str_item(attrs, ref_first_attributes[i]);
        if (!v) continue;
        if (!first) esm_buf_putc(b, ',');
        ref_put_key(b, ref_first_attributes[i]);
        esm_buf_json_cstr(b, v);
        first = false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, attrs)
    {
        if (!cJSON_IsString(it) || !it->string || ref_is_first_attribute(it->string)) continue;
        if (!first) esm_buf_putc(b, ',');
        ref_put_key(b, it->string);
        esm_buf_json_cstr(b, it->valuestring);
        first = false;
    }
    esm_buf_putc(b, '}');
}

/* SQS's MessageAttributes {Name: {StringValue, BinaryValue, DataType, ...}} in the event's
 * lower-case shape. */
static void ref_put_message_attributes(esm_buf *b, const cJSON *attrs)
{
    esm_buf_putc(b, '{');
    bool first = true;
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        if (!cJSON_IsObject(a) || !a->string) continue;
        if (!first) esm_buf_putc(b, ',');
        first = false;
        ref_put_key(b, a->string);
        esm_buf_putc(b, '{');
        const char *sv = ref_str_item(a, "StringValue");
        const char *bv = ref_str_item(a, "BinaryValue");
        if (sv) {
            ref_put_key(b, "stringValue");
            esm_buf_json_cstr(b, sv);
            esm_buf_putc(b, ',');
        }
        if (bv) {
            ref_put_key(b, "binaryValue");
            esm_buf_json_cstr(b, bv);
            esm_buf_putc(b, ',');
        }
        ref_put_key(b, "stringListValues");
        ref_put_string_list(b, cJSON_GetObjectItemCaseSensitive(a, "StringListValues"));
        esm_buf_putc(b, ',');
        ref_put_key(b, "binaryListValues");
        ref_put_string_list(b, cJSON_GetObjectItemCaseSensitive(a, "BinaryListValues"));
        esm_buf_putc(b, ',');
        ref_put_key(b, "dataType");
        esm_buf_json_cstr(b, ref_str_item(a, "DataType") ? ref_str_item(a, "DataType") : "String");
        esm_buf_putc(b, '}');
    }
    esm_buf_putc(b, '}');
}

static void ref_put_str_field(esm_buf *b, const char *key, const char *value)
{
    ref_put_key(b, key);
    esm_buf_json_cstr(b, value ? value : "");
    esm_buf_putc(b, ',');
}

static void ref_sqs_render_record(const cJSON *msg, const esm_sqs_render_ctx *ctx, esm_buf *b)
{
    esm_buf_putc(b, '{');
    ref_put_str_field(b, "messageId", ref_str_item(msg, "MessageId"));
    ref_put_str_field(b, "receiptHandle", ref_str_item(msg, "ReceiptHandle"));
    ref_put_str_field(b, "body", ref_str_item(msg, "Body"));
    ref_put_key(b, "attributes");
    ref_put_attributes(b, cJSON_GetObjectItemCaseSensitive(msg, "Attributes"));
    esm_buf_putc(b, ',');
    const cJSON *mattrs = cJSON_GetObjectItemCaseSensitive(msg, "MessageAttributes");
    ref_put_key(b, "messageAttributes");
    ref_put_message_attributes(b, mattrs);
    esm_buf_putc(b, ',');
    const char *md5_attrs = ref_str_item(msg, "MD5OfMessageAttributes");
    if (md5_attrs && cJSON_GetArraySize(mattrs) > 0)
        ref_put_str_field(b, "md5OfMessageAttributes", md5_attrs);
    ref_put_str_field(b, "md5OfBody", ref_str_item(msg, "MD5OfBody"));
    ref_put_str_field(b, "eventSource", "aws:sqs");
    ref_put_str_field(b, "eventSourceARN", ctx->queue_arn);
    ref_put_key(b, "awsRegion");
    esm_buf_json_cstr(b, ctx->region);
    esm_buf_putc(b, '}');
}

#endif
