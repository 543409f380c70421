#include "pollers/sqs/esm_sqs_int.h"

#include "common/esm_event_size.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The response is tokenized once into the parser's tape (no allocation once the tape has
 * grown to the largest response seen); each message's fields are picked in one walk over its
 * object, keeping the first occurrence of a name as a lookup by name would, and rendered
 * straight from the tokens. Strings end at a decoded NUL, as they did when cJSON parsed the
 * response (C strings), so the records are byte for byte what they were. */

#define PUT_LIT(b, lit) esm_buf_append((b), (lit), sizeof(lit) - 1)
#define EVENT_HEAD "{\"Records\":["
#define EVENT_TAIL "]}"

typedef struct {
    const char *s; /* NULL: absent or not a string */
    size_t len;
} sqs_str;

void esm_sqs_parser_init(esm_sqs_parser *p)
{
    esm_fj_init(&p->tape);
    esm_buf_init(&p->scratch);
}

void esm_sqs_parser_free(esm_sqs_parser *p)
{
    esm_fj_free(&p->tape);
    esm_buf_free(&p->scratch);
}

void esm_sqs_parser_trim(esm_sqs_parser *p, size_t keep_bytes)
{
    if (p->tape.dec_cap > keep_bytes || p->tape.cap * sizeof *p->tape.toks > keep_bytes)
        esm_fj_free(&p->tape);
    if (p->scratch.cap > keep_bytes) esm_buf_free(&p->scratch);
}

/* Token i as a string (0 = absent: token 0 is the response itself, never a field). */
static sqs_str str_at(const esm_fj_tape *t, size_t i)
{
    sqs_str r = {NULL, 0};
    if (i == 0 || t->toks[i].type != ESM_FJ_STR) return r;
    r.s = t->toks[i].s;
    r.len = t->toks[i].len;
    const char *nul = memchr(r.s, '\0', r.len);
    if (nul) r.len = (size_t)(nul - r.s);
    return r;
}

static bool key_is(const esm_fj_tape *t, size_t k, const char *name, size_t name_len)
{
    sqs_str s = str_at(t, k);
    return s.len == name_len && memcmp(s.s, name, name_len) == 0;
}
#define KEY_IS(t, k, lit) key_is((t), (k), (lit), sizeof(lit) - 1)

static void first(size_t *slot, size_t i)
{
    if (!*slot) *slot = i;
}

static bool is_obj(const esm_fj_tape *t, size_t i)
{
    return i != 0 && t->toks[i].type == ESM_FJ_OBJ;
}

/* End of container i's children (i itself when it is not a container). */
static size_t end_of(const esm_fj_tape *t, size_t i)
{
    uint8_t ty = t->toks[i].type;
    return (ty == ESM_FJ_OBJ || ty == ESM_FJ_ARR) ? t->toks[i].len : i + 1;
}

static void put_str(esm_buf *b, sqs_str s)
{
    esm_buf_json_str(b, s.s ? s.s : "", s.len);
}

/* The string values of an array or object ("stringListValues") as an array, or [] when absent
 * (elements that are not strings are left out). */
static void put_string_list(esm_buf *b, const esm_fj_tape *t, size_t i)
{
    esm_buf_putc(b, '[');
    bool first_item = true;
    if (i) {
        bool obj = t->toks[i].type == ESM_FJ_OBJ;
        for (size_t k = i + 1, end = end_of(t, i); k < end;) {
            size_t v = obj ? k + 1 : k;
            sqs_str s = str_at(t, v);
            if (s.s) {
                if (!first_item) esm_buf_putc(b, ',');
                put_str(b, s);
                first_item = false;
            }
            k = esm_fj_next(t, v);
        }
    }
    esm_buf_putc(b, ']');
}

/* AWS lists these four first, in this order; the rest follow as received. */
enum { ATTR_RECEIVE_COUNT, ATTR_SENT, ATTR_SENDER, ATTR_FIRST_RECEIVE, ATTR_GROUP, ATTR_OTHER };
static const char *const first_attribute_keys[] = {
    "\"ApproximateReceiveCount\":", "\"SentTimestamp\":", "\"SenderId\":",
    "\"ApproximateFirstReceiveTimestamp\":"};

static int attr_class(const esm_fj_tape *t, size_t k)
{
    sqs_str s = str_at(t, k);
    switch (s.len) {
    case 23:
        if (memcmp(s.s, "ApproximateReceiveCount", 23) == 0) return ATTR_RECEIVE_COUNT;
        break;
    case 13:
        if (memcmp(s.s, "SentTimestamp", 13) == 0) return ATTR_SENT;
        break;
    case 8:
        if (memcmp(s.s, "SenderId", 8) == 0) return ATTR_SENDER;
        break;
    case 32:
        if (memcmp(s.s, "ApproximateFirstReceiveTimestamp", 32) == 0) return ATTR_FIRST_RECEIVE;
        break;
    case 14:
        if (memcmp(s.s, "MessageGroupId", 14) == 0) return ATTR_GROUP;
        break;
    default:
        break;
    }
    return ATTR_OTHER;
}

/* The system attributes a message's fields depend on: value tokens of first occurrences. */
typedef struct {
    size_t known[ATTR_OTHER];
} sqs_attrs;

static void collect_attributes(const esm_fj_tape *t, size_t attrs, sqs_attrs *a)
{
    memset(a, 0, sizeof *a);
    if (!is_obj(t, attrs)) return;
    for (size_t k = attrs + 1, end = t->toks[attrs].len; k < end; k = esm_fj_next(t, k + 1)) {
        int c = attr_class(t, k);
        if (c != ATTR_OTHER) first(&a->known[c], k + 1);
    }
}

static void put_attributes(esm_buf *b, const esm_fj_tape *t, size_t attrs, const sqs_attrs *a)
{
    esm_buf_putc(b, '{');
    bool first_item = true;
    for (size_t i = 0; i < 4; i++) {
        sqs_str v = str_at(t, a->known[i]);
        if (!v.s) continue;
        if (!first_item) esm_buf_putc(b, ',');
        esm_buf_puts(b, first_attribute_keys[i]);
        put_str(b, v);
        first_item = false;
    }
    if (is_obj(t, attrs)) {
        for (size_t k = attrs + 1, end = t->toks[attrs].len; k < end; k = esm_fj_next(t, k + 1)) {
            sqs_str v = str_at(t, k + 1);
            if (!v.s || attr_class(t, k) < ATTR_GROUP) continue;
            if (!first_item) esm_buf_putc(b, ',');
            put_str(b, str_at(t, k));
            esm_buf_putc(b, ':');
            put_str(b, v);
            first_item = false;
        }
    }
    esm_buf_putc(b, '}');
}

/* SQS's MessageAttributes {Name: {StringValue, BinaryValue, DataType, ...}} in the event's
 * lower-case shape. */
static void put_message_attributes(esm_buf *b, const esm_fj_tape *t, size_t attrs)
{
    esm_buf_putc(b, '{');
    bool first_item = true;
    for (size_t k = attrs + 1, end = is_obj(t, attrs) ? t->toks[attrs].len : 0; k < end;
         k = esm_fj_next(t, k + 1)) {
        size_t a = k + 1;
        if (!is_obj(t, a)) continue;
        size_t sv = 0, bv = 0, slv = 0, blv = 0, dt = 0;
        for (size_t f = a + 1, fend = t->toks[a].len; f < fend; f = esm_fj_next(t, f + 1)) {
            if (KEY_IS(t, f, "StringValue"))
                first(&sv, f + 1);
            else if (KEY_IS(t, f, "BinaryValue"))
                first(&bv, f + 1);
            else if (KEY_IS(t, f, "StringListValues"))
                first(&slv, f + 1);
            else if (KEY_IS(t, f, "BinaryListValues"))
                first(&blv, f + 1);
            else if (KEY_IS(t, f, "DataType"))
                first(&dt, f + 1);
        }
        if (!first_item) esm_buf_putc(b, ',');
        first_item = false;
        put_str(b, str_at(t, k));
        PUT_LIT(b, ":{");
        sqs_str v = str_at(t, sv);
        if (v.s) {
            PUT_LIT(b, "\"stringValue\":");
            put_str(b, v);
            esm_buf_putc(b, ',');
        }
        v = str_at(t, bv);
        if (v.s) {
            PUT_LIT(b, "\"binaryValue\":");
            put_str(b, v);
            esm_buf_putc(b, ',');
        }
        PUT_LIT(b, "\"stringListValues\":");
        put_string_list(b, t, slv);
        PUT_LIT(b, ",\"binaryListValues\":");
        put_string_list(b, t, blv);
        PUT_LIT(b, ",\"dataType\":");
        v = str_at(t, dt);
        if (v.s)
            put_str(b, v);
        else
            PUT_LIT(b, "\"String\"");
        esm_buf_putc(b, '}');
    }
    esm_buf_putc(b, '}');
}

/* The fields of one message of the response: value tokens of first occurrences. */
typedef struct {
    size_t id, rh, body, md5_body, md5_attrs, attrs, mattrs;
} sqs_fields;

static void collect_fields(const esm_fj_tape *t, size_t m, sqs_fields *f)
{
    memset(f, 0, sizeof *f);
    if (!is_obj(t, m)) return;
    for (size_t k = m + 1, end = t->toks[m].len; k < end; k = esm_fj_next(t, k + 1)) {
        sqs_str key = str_at(t, k);
        if (key.len == 0) continue;
        switch (key.s[0]) {
        case 'M':
            if (KEY_IS(t, k, "MessageId"))
                first(&f->id, k + 1);
            else if (KEY_IS(t, k, "MD5OfBody"))
                first(&f->md5_body, k + 1);
            else if (KEY_IS(t, k, "MessageAttributes"))
                first(&f->mattrs, k + 1);
            else if (KEY_IS(t, k, "MD5OfMessageAttributes"))
                first(&f->md5_attrs, k + 1);
            break;
        case 'R':
            if (KEY_IS(t, k, "ReceiptHandle")) first(&f->rh, k + 1);
            break;
        case 'B':
            if (KEY_IS(t, k, "Body")) first(&f->body, k + 1);
            break;
        case 'A':
            if (KEY_IS(t, k, "Attributes")) first(&f->attrs, k + 1);
            break;
        default:
            break;
        }
    }
}

static void render(const esm_fj_tape *t, const sqs_fields *f, const sqs_attrs *a,
                   const esm_sqs_render_ctx *ctx, esm_buf *b)
{
    PUT_LIT(b, "{\"messageId\":");
    put_str(b, str_at(t, f->id));
    PUT_LIT(b, ",\"receiptHandle\":");
    put_str(b, str_at(t, f->rh));
    PUT_LIT(b, ",\"body\":");
    put_str(b, str_at(t, f->body));
    PUT_LIT(b, ",\"attributes\":");
    put_attributes(b, t, f->attrs, a);
    PUT_LIT(b, ",\"messageAttributes\":");
    put_message_attributes(b, t, f->mattrs);
    esm_buf_putc(b, ',');
    sqs_str md5_attrs = str_at(t, f->md5_attrs);
    /* Only with attributes: any member of an object or array counts (as before). */
    if (md5_attrs.s && f->mattrs && end_of(t, f->mattrs) > f->mattrs + 1) {
        PUT_LIT(b, "\"md5OfMessageAttributes\":");
        put_str(b, md5_attrs);
        esm_buf_putc(b, ',');
    }
    PUT_LIT(b, "\"md5OfBody\":");
    put_str(b, str_at(t, f->md5_body));
    PUT_LIT(b, ",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":");
    esm_buf_json_cstr(b, ctx->queue_arn ? ctx->queue_arn : "");
    PUT_LIT(b, ",\"awsRegion\":");
    esm_buf_json_cstr(b, ctx->region);
    esm_buf_putc(b, '}');
}

void esm_sqs_msg_free(esm_sqs_msg *m)
{
    free(m); /* the strings live in the same block */
}

/* Copies s and a NUL to *at; returns the copy. */
static char *place(char **at, sqs_str s)
{
    char *r = *at;
    if (s.len) memcpy(r, s.s, s.len);
    r[s.len] = '\0';
    *at += s.len + 1;
    return r;
}

/* One block: the struct, then the id, the handle, the group and the record. */
static esm_sqs_msg *msg_new(sqs_str id, sqs_str rh, sqs_str group, const esm_buf *rec)
{
    size_t size = sizeof(esm_sqs_msg) + id.len + 1 + rh.len + 1 + (group.s ? group.len + 1 : 0) +
                  rec->len + 1;
    esm_sqs_msg *m = malloc(size);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    char *at = (char *)(m + 1);
    m->message_id = place(&at, id);
    m->receipt_handle = place(&at, rh);
    m->group_id = group.s ? place(&at, group) : NULL;
    m->record = place(&at, (sqs_str){rec->data, rec->len});
    m->record_len = rec->len;
    return m;
}

/* strtoll of a string token (leading space skipped, then at most 63 characters read: more
 * than any int64 needs). */
static long long str_to_ll(sqs_str s)
{
    size_t i = 0;
    while (i < s.len && (s.s[i] == ' ' || (s.s[i] >= '\t' && s.s[i] <= '\r')))
        i++;
    char buf[64];
    size_t n = s.len - i < sizeof buf - 1 ? s.len - i : sizeof buf - 1;
    memcpy(buf, s.s + i, n);
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

int esm_sqs_parse_receive(esm_sqs_parser *p, const char *json, size_t len,
                          const esm_sqs_render_ctx *ctx, esm_sqs_msg **out, size_t cap,
                          size_t *skipped, char *why, size_t why_len)
{
    *skipped = 0;
    esm_fj_tape *t = &p->tape;
    if (!json || !esm_fj_parse(t, json, len)) {
        snprintf(why, why_len, "ReceiveMessage response is not valid JSON");
        return -1;
    }
    if (t->toks[0].type != ESM_FJ_OBJ) {
        snprintf(why, why_len, "ReceiveMessage response is not a JSON object");
        return -1;
    }
    size_t msgs = 0;
    for (size_t k = 1, end = t->toks[0].len; k < end && !msgs; k = esm_fj_next(t, k + 1))
        if (KEY_IS(t, k, "Messages")) msgs = k + 1;
    if (!msgs || t->toks[msgs].type == ESM_FJ_NULL) return 0; /* an empty receive omits it */
    if (t->toks[msgs].type != ESM_FJ_ARR) {
        snprintf(why, why_len, "ReceiveMessage response: Messages is not an array");
        return -1;
    }
    int n = 0;
    esm_buf *b = &p->scratch;
    for (size_t m = msgs + 1, end = t->toks[msgs].len; m < end; m = esm_fj_next(t, m)) {
        if ((size_t)n >= cap) break;
        sqs_fields f;
        collect_fields(t, m, &f);
        sqs_str id = str_at(t, f.id), rh = str_at(t, f.rh), body = str_at(t, f.body);
        if (!id.s || !rh.s || !body.s) {
            (*skipped)++;
            continue;
        }
        sqs_attrs a;
        collect_attributes(t, f.attrs, &a);
        esm_buf_reset(b);
        render(t, &f, &a, ctx, b);
        esm_sqs_msg *msg = b->failed ? NULL : msg_new(id, rh, str_at(t, a.known[ATTR_GROUP]), b);
        if (!msg) break;
        sqs_str rc = str_at(t, a.known[ATTR_RECEIVE_COUNT]);
        sqs_str sent = str_at(t, a.known[ATTR_SENT]);
        long long count = rc.s ? str_to_ll(rc) : 1;
        msg->receive_count = count > INT_MAX ? INT_MAX : count < INT_MIN ? INT_MIN : (int)count;
        msg->sent_ms = sent.s ? str_to_ll(sent) : 0;
        msg->body = body.s;
        msg->body_len = body.len;
        out[n++] = msg;
    }
    return n;
}

size_t esm_sqs_event_size(size_t n_records, size_t records_bytes)
{
    return esm_event_size(strlen(EVENT_HEAD) + strlen(EVENT_TAIL), n_records, records_bytes);
}

void esm_sqs_render_event(esm_sqs_msg *const *msgs, size_t n, esm_buf *b)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += msgs[i]->record_len;
    esm_buf_reserve(b, esm_sqs_event_size(n, bytes)); /* one allocation for the whole event */
    esm_buf_puts(b, EVENT_HEAD);
    for (size_t i = 0; i < n; i++) {
        if (i) esm_buf_putc(b, ',');
        esm_buf_append(b, msgs[i]->record, msgs[i]->record_len);
    }
    esm_buf_puts(b, EVENT_TAIL);
}
