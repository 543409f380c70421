#include "pollers/esm_sqs_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rendering walks each object once and picks its fields by name as they come, keeping the
 * first occurrence of a name (as cJSON_GetObjectItem would), instead of one lookup per field. */

#define PUT_LIT(b, lit) esm_buf_append((b), (lit), sizeof(lit) - 1)

static const char *str_of(const cJSON *it)
{
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void first(const cJSON **slot, const cJSON *it)
{
    if (!*slot) *slot = it;
}

/* An array of strings ("stringListValues") rendered as-is, or [] when absent. */
static void put_string_list(esm_buf *b, const cJSON *arr)
{
    esm_buf_putc(b, '[');
    bool first_item = true;
    for (const cJSON *it = arr ? arr->child : NULL; it; it = it->next) {
        if (!cJSON_IsString(it)) continue;
        if (!first_item) esm_buf_putc(b, ',');
        esm_buf_json_cstr(b, it->valuestring);
        first_item = false;
    }
    esm_buf_putc(b, ']');
}

/* AWS lists these four first, in this order; the rest follow as received. */
enum { ATTR_RECEIVE_COUNT, ATTR_SENT, ATTR_SENDER, ATTR_FIRST_RECEIVE, ATTR_GROUP, ATTR_OTHER };
static const char *const first_attribute_keys[] = {
    "\"ApproximateReceiveCount\":", "\"SentTimestamp\":", "\"SenderId\":",
    "\"ApproximateFirstReceiveTimestamp\":"};

static int attr_class(const char *name)
{
    switch (name[0]) {
    case 'A':
        if (strcmp(name, "ApproximateReceiveCount") == 0) return ATTR_RECEIVE_COUNT;
        if (strcmp(name, "ApproximateFirstReceiveTimestamp") == 0) return ATTR_FIRST_RECEIVE;
        break;
    case 'S':
        if (strcmp(name, "SentTimestamp") == 0) return ATTR_SENT;
        if (strcmp(name, "SenderId") == 0) return ATTR_SENDER;
        break;
    case 'M':
        if (strcmp(name, "MessageGroupId") == 0) return ATTR_GROUP;
        break;
    default:
        break;
    }
    return ATTR_OTHER;
}

/* The system attributes a message's fields depend on (first occurrences, any type). */
typedef struct {
    const cJSON *known[ATTR_OTHER];
} sqs_attrs;

static void collect_attributes(const cJSON *attrs, sqs_attrs *a)
{
    memset(a, 0, sizeof *a);
    for (const cJSON *it = attrs ? attrs->child : NULL; it; it = it->next)
        if (it->string) {
            int c = attr_class(it->string);
            if (c != ATTR_OTHER) first(&a->known[c], it);
        }
}

static void put_attributes(esm_buf *b, const cJSON *attrs, const sqs_attrs *a)
{
    esm_buf_putc(b, '{');
    bool first_item = true;
    for (size_t i = 0; i < 4; i++) {
        const char *v = str_of(a->known[i]);
        if (!v) continue;
        if (!first_item) esm_buf_putc(b, ',');
        esm_buf_puts(b, first_attribute_keys[i]);
        esm_buf_json_cstr(b, v);
        first_item = false;
    }
    for (const cJSON *it = attrs ? attrs->child : NULL; it; it = it->next) {
        if (!cJSON_IsString(it) || !it->string || attr_class(it->string) < ATTR_GROUP) continue;
        if (!first_item) esm_buf_putc(b, ',');
        esm_buf_json_cstr(b, it->string);
        esm_buf_putc(b, ':');
        esm_buf_json_cstr(b, it->valuestring);
        first_item = false;
    }
    esm_buf_putc(b, '}');
}

/* SQS's MessageAttributes {Name: {StringValue, BinaryValue, DataType, ...}} in the event's
 * lower-case shape. */
static void put_message_attributes(esm_buf *b, const cJSON *attrs)
{
    esm_buf_putc(b, '{');
    bool first_item = true;
    for (const cJSON *a = attrs ? attrs->child : NULL; a; a = a->next) {
        if (!cJSON_IsObject(a) || !a->string) continue;
        const cJSON *sv = NULL, *bv = NULL, *slv = NULL, *blv = NULL, *dt = NULL;
        for (const cJSON *f = a->child; f; f = f->next) {
            const char *k = f->string;
            if (!k) continue;
            if (strcmp(k, "StringValue") == 0)
                first(&sv, f);
            else if (strcmp(k, "BinaryValue") == 0)
                first(&bv, f);
            else if (strcmp(k, "StringListValues") == 0)
                first(&slv, f);
            else if (strcmp(k, "BinaryListValues") == 0)
                first(&blv, f);
            else if (strcmp(k, "DataType") == 0)
                first(&dt, f);
        }
        if (!first_item) esm_buf_putc(b, ',');
        first_item = false;
        esm_buf_json_cstr(b, a->string);
        PUT_LIT(b, ":{");
        if (str_of(sv)) {
            PUT_LIT(b, "\"stringValue\":");
            esm_buf_json_cstr(b, sv->valuestring);
            esm_buf_putc(b, ',');
        }
        if (str_of(bv)) {
            PUT_LIT(b, "\"binaryValue\":");
            esm_buf_json_cstr(b, bv->valuestring);
            esm_buf_putc(b, ',');
        }
        PUT_LIT(b, "\"stringListValues\":");
        put_string_list(b, slv);
        PUT_LIT(b, ",\"binaryListValues\":");
        put_string_list(b, blv);
        PUT_LIT(b, ",\"dataType\":");
        esm_buf_json_cstr(b, str_of(dt) ? dt->valuestring : "String");
        esm_buf_putc(b, '}');
    }
    esm_buf_putc(b, '}');
}

/* The fields of one message of the response (first occurrences, any type). */
typedef struct {
    const cJSON *id, *rh, *body, *md5_body, *md5_attrs, *attrs, *mattrs;
} sqs_fields;

static void collect_fields(const cJSON *m, sqs_fields *f)
{
    memset(f, 0, sizeof *f);
    for (const cJSON *it = m->child; it; it = it->next) {
        const char *k = it->string;
        if (!k) continue;
        switch (k[0]) {
        case 'M':
            if (strcmp(k, "MessageId") == 0)
                first(&f->id, it);
            else if (strcmp(k, "MD5OfBody") == 0)
                first(&f->md5_body, it);
            else if (strcmp(k, "MessageAttributes") == 0)
                first(&f->mattrs, it);
            else if (strcmp(k, "MD5OfMessageAttributes") == 0)
                first(&f->md5_attrs, it);
            break;
        case 'R':
            if (strcmp(k, "ReceiptHandle") == 0) first(&f->rh, it);
            break;
        case 'B':
            if (strcmp(k, "Body") == 0) first(&f->body, it);
            break;
        case 'A':
            if (strcmp(k, "Attributes") == 0) first(&f->attrs, it);
            break;
        default:
            break;
        }
    }
}

static void put_str_field(esm_buf *b, const char *key_colon, const char *value)
{
    esm_buf_puts(b, key_colon);
    esm_buf_json_cstr(b, value ? value : "");
    esm_buf_putc(b, ',');
}

static void render(const sqs_fields *f, const sqs_attrs *a, const char *body, size_t body_len,
                   const esm_sqs_render_ctx *ctx, esm_buf *b)
{
    esm_buf_putc(b, '{');
    put_str_field(b, "\"messageId\":", str_of(f->id));
    put_str_field(b, "\"receiptHandle\":", str_of(f->rh));
    PUT_LIT(b, "\"body\":");
    esm_buf_json_str(b, body ? body : "", body ? body_len : 0);
    PUT_LIT(b, ",\"attributes\":");
    put_attributes(b, f->attrs, a);
    PUT_LIT(b, ",\"messageAttributes\":");
    put_message_attributes(b, f->mattrs);
    esm_buf_putc(b, ',');
    const char *md5_attrs = str_of(f->md5_attrs);
    if (md5_attrs && f->mattrs && f->mattrs->child)
        put_str_field(b, "\"md5OfMessageAttributes\":", md5_attrs);
    put_str_field(b, "\"md5OfBody\":", str_of(f->md5_body));
    PUT_LIT(b, "\"eventSource\":\"aws:sqs\",\"eventSourceARN\":");
    esm_buf_json_cstr(b, ctx->queue_arn ? ctx->queue_arn : "");
    PUT_LIT(b, ",\"awsRegion\":");
    esm_buf_json_cstr(b, ctx->region);
    esm_buf_putc(b, '}');
}

void esm_sqs_render_record(const cJSON *msg, const esm_sqs_render_ctx *ctx, esm_buf *b)
{
    sqs_fields f;
    sqs_attrs a;
    collect_fields(msg, &f);
    collect_attributes(f.attrs, &a);
    const char *body = str_of(f.body);
    render(&f, &a, body, body ? strlen(body) : 0, ctx, b);
}

void esm_sqs_msg_free(esm_sqs_msg *m)
{
    free(m); /* the strings live in the same block */
}

/* Copies s[0..len) and a NUL to *at; returns the copy. */
static char *place(char **at, const char *s, size_t len)
{
    char *r = *at;
    memcpy(r, s, len);
    r[len] = '\0';
    *at += len + 1;
    return r;
}

/* One block: the struct, then the id, the handle, the group and the record. */
static esm_sqs_msg *msg_new(const char *id, const char *rh, const char *group, const esm_buf *rec)
{
    size_t id_len = strlen(id), rh_len = strlen(rh), g_len = group ? strlen(group) : 0;
    esm_sqs_msg *m =
        malloc(sizeof *m + id_len + 1 + rh_len + 1 + (group ? g_len + 1 : 0) + rec->len + 1);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    char *at = (char *)(m + 1);
    m->message_id = place(&at, id, id_len);
    m->receipt_handle = place(&at, rh, rh_len);
    m->group_id = group ? place(&at, group, g_len) : NULL;
    m->record = place(&at, rec->data, rec->len);
    m->record_len = rec->len;
    return m;
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
    esm_buf b; /* scratch for each record: one buffer for the whole response */
    esm_buf_init(&b);
    for (const cJSON *m = msgs->child; m; m = m->next) {
        if ((size_t)n >= cap) break;
        sqs_fields f;
        collect_fields(m, &f);
        const char *id = str_of(f.id), *rh = str_of(f.rh), *body = str_of(f.body);
        if (!id || !rh || !body) {
            (*skipped)++;
            continue;
        }
        sqs_attrs a;
        collect_attributes(f.attrs, &a);
        size_t body_len = strlen(body);
        esm_buf_reset(&b);
        render(&f, &a, body, body_len, ctx, &b);
        esm_sqs_msg *msg = b.failed ? NULL : msg_new(id, rh, str_of(a.known[ATTR_GROUP]), &b);
        if (!msg) break;
        const char *rc = str_of(a.known[ATTR_RECEIVE_COUNT]);
        const char *sent = str_of(a.known[ATTR_SENT]);
        msg->receive_count = rc ? atoi(rc) : 1;
        msg->sent_ms = sent ? strtoll(sent, NULL, 10) : 0;
        msg->body = body;
        msg->body_len = body_len;
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
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += msgs[i]->record_len;
    esm_buf_reserve(b, esm_sqs_event_size(n, bytes)); /* one allocation for the whole event */
    esm_buf_puts(b, "{\"Records\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) esm_buf_putc(b, ',');
        esm_buf_append(b, msgs[i]->record, msgs[i]->record_len);
    }
    esm_buf_puts(b, "]}");
}
