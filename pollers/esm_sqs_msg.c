#include "pollers/esm_sqs_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void put_key(esm_buf *b, const char *key)
{
    esm_buf_json_cstr(b, key);
    esm_buf_putc(b, ':');
}

/* An array of strings ("stringListValues") rendered as-is, or [] when absent. */
static void put_string_list(esm_buf *b, const cJSON *arr)
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
static const char *const first_attributes[] = {"ApproximateReceiveCount", "SentTimestamp",
                                               "SenderId", "ApproximateFirstReceiveTimestamp"};

static bool is_first_attribute(const char *name)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(name, first_attributes[i]) == 0) return true;
    return false;
}

static void put_attributes(esm_buf *b, const cJSON *attrs)
{
    esm_buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; i < 4; i++) {
        const char *v = str_item(attrs, first_attributes[i]);
        if (!v) continue;
        if (!first) esm_buf_putc(b, ',');
        put_key(b, first_attributes[i]);
        esm_buf_json_cstr(b, v);
        first = false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, attrs)
    {
        if (!cJSON_IsString(it) || !it->string || is_first_attribute(it->string)) continue;
        if (!first) esm_buf_putc(b, ',');
        put_key(b, it->string);
        esm_buf_json_cstr(b, it->valuestring);
        first = false;
    }
    esm_buf_putc(b, '}');
}

/* SQS's MessageAttributes {Name: {StringValue, BinaryValue, DataType, ...}} in the event's
 * lower-case shape. */
static void put_message_attributes(esm_buf *b, const cJSON *attrs)
{
    esm_buf_putc(b, '{');
    bool first = true;
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        if (!cJSON_IsObject(a) || !a->string) continue;
        if (!first) esm_buf_putc(b, ',');
        first = false;
        put_key(b, a->string);
        esm_buf_putc(b, '{');
        const char *sv = str_item(a, "StringValue");
        const char *bv = str_item(a, "BinaryValue");
        if (sv) {
            put_key(b, "stringValue");
            esm_buf_json_cstr(b, sv);
            esm_buf_putc(b, ',');
        }
        if (bv) {
            put_key(b, "binaryValue");
            esm_buf_json_cstr(b, bv);
            esm_buf_putc(b, ',');
        }
        put_key(b, "stringListValues");
        put_string_list(b, cJSON_GetObjectItemCaseSensitive(a, "StringListValues"));
        esm_buf_putc(b, ',');
        put_key(b, "binaryListValues");
        put_string_list(b, cJSON_GetObjectItemCaseSensitive(a, "BinaryListValues"));
        esm_buf_putc(b, ',');
        put_key(b, "dataType");
        esm_buf_json_cstr(b, str_item(a, "DataType") ? str_item(a, "DataType") : "String");
        esm_buf_putc(b, '}');
    }
    esm_buf_putc(b, '}');
}

static void put_str_field(esm_buf *b, const char *key, const char *value)
{
    put_key(b, key);
    esm_buf_json_cstr(b, value ? value : "");
    esm_buf_putc(b, ',');
}

void esm_sqs_render_record(const cJSON *msg, const esm_sqs_render_ctx *ctx, esm_buf *b)
{
    esm_buf_putc(b, '{');
    put_str_field(b, "messageId", str_item(msg, "MessageId"));
    put_str_field(b, "receiptHandle", str_item(msg, "ReceiptHandle"));
    put_str_field(b, "body", str_item(msg, "Body"));
    put_key(b, "attributes");
    put_attributes(b, cJSON_GetObjectItemCaseSensitive(msg, "Attributes"));
    esm_buf_putc(b, ',');
    const cJSON *mattrs = cJSON_GetObjectItemCaseSensitive(msg, "MessageAttributes");
    put_key(b, "messageAttributes");
    put_message_attributes(b, mattrs);
    esm_buf_putc(b, ',');
    const char *md5_attrs = str_item(msg, "MD5OfMessageAttributes");
    if (md5_attrs && cJSON_GetArraySize(mattrs) > 0)
        put_str_field(b, "md5OfMessageAttributes", md5_attrs);
    put_str_field(b, "md5OfBody", str_item(msg, "MD5OfBody"));
    put_str_field(b, "eventSource", "aws:sqs");
    put_str_field(b, "eventSourceARN", ctx->queue_arn);
    put_key(b, "awsRegion");
    esm_buf_json_cstr(b, ctx->region);
    esm_buf_putc(b, '}');
}

void esm_sqs_msg_free(esm_sqs_msg *m)
{
    if (!m) return;
    free(m->message_id);
    free(m->receipt_handle);
    free(m->group_id);
    free(m->body);
    free(m->record);
    free(m);
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

int esm_sqs_parse_receive(const cJSON *resp, const esm_sqs_render_ctx *ctx, esm_sqs_msg **out,
                          size_t cap, size_t *skipped, char *why, size_t why_len)
{
    *skipped = 0;
    if (!cJSON_IsObject(resp)) {
        snprintf(why, why_len, "ReceiveMessage response is not a JSON object");
        return -1;
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(resp, "Messages");
    if (!msgs || cJSON_IsNull(msgs)) return 0; /* an empty receive omits Messages */
    if (!cJSON_IsArray(msgs)) {
        snprintf(why, why_len, "ReceiveMessage response: Messages is not an array");
        return -1;
    }
    int n = 0;
    const cJSON *m;
    esm_buf b;
    esm_buf_init(&b);
    cJSON_ArrayForEach(m, msgs)
    {
        const char *id = str_item(m, "MessageId");
        const char *rh = str_item(m, "ReceiptHandle");
        const char *body = str_item(m, "Body");
        if ((size_t)n >= cap) break;
        if (!id || !rh || !body) {
            (*skipped)++;
            continue;
        }
        esm_sqs_msg *msg = calloc(1, sizeof *msg);
        if (!msg) break;
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(m, "Attributes");
        const char *rc = str_item(attrs, "ApproximateReceiveCount");
        const char *sent = str_item(attrs, "SentTimestamp");
        msg->message_id = strdup(id);
        msg->receipt_handle = strdup(rh);
        msg->group_id = dup_opt(str_item(attrs, "MessageGroupId"));
        msg->receive_count = rc ? atoi(rc) : 1;
        msg->sent_ms = sent ? strtoll(sent, NULL, 10) : 0;
        msg->body_len = strlen(body);
        msg->body = strdup(body);
        esm_buf_reset(&b);
        esm_sqs_render_record(m, ctx, &b);
        msg->record_len = b.len;
        msg->record = b.failed ? NULL : strndup(b.data, b.len);
        if (!msg->message_id || !msg->receipt_handle || !msg->body || !msg->record) {
            esm_sqs_msg_free(msg);
            break;
        }
        out[n++] = msg;
    }
    esm_buf_free(&b);
    return n;
}

size_t esm_sqs_event_size(size_t n_records, size_t records_bytes)
{
    /* {"Records":[ + ]} + n-1 commas */
    return 14 + records_bytes + (n_records ? n_records - 1 : 0);
}

void esm_sqs_render_event(esm_sqs_msg *const *msgs, size_t n, esm_buf *b)
{
    esm_buf_puts(b, "{\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) esm_buf_putc(b, ',');
        esm_buf_append(b, msgs[i]->record, msgs[i]->record_len);
    }
    esm_buf_puts(b, "]}");
}
