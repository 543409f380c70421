#include "pollers/kinesis/esm_kinesis_int.h"

#include "common/esm_event_size.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_HEAD "{\"Records\":["
#define EVENT_TAIL "]}"

static const char *str_item(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void esm_kinesis_put_seconds(esm_buf *b, int64_t ms)
{
    if (ms < 0) ms = 0;
    int64_t sec = ms / 1000;
    int frac = (int)(ms % 1000);
    if (frac == 0) {
        esm_buf_printf(b, "%lld", (long long)sec);
        return;
    }
    char f[4];
    snprintf(f, sizeof f, "%03d", frac);
    for (int i = 2; i > 0 && f[i] == '0'; i--)
        f[i] = '\0';
    esm_buf_printf(b, "%lld.%s", (long long)sec, f);
}

void esm_kinesis_render_record(const esm_kinesis_render_ctx *ctx, const char *seq,
                               const char *partition_key, int64_t arrival_ms, const char *data_b64,
                               esm_buf *b)
{
    /* Key order of AWS's example event (docs/design.md "Kinesis event"). */
    esm_buf_puts(b, "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":");
    esm_buf_json_cstr(b, partition_key);
    esm_buf_puts(b, ",\"sequenceNumber\":");
    esm_buf_json_cstr(b, seq);
    esm_buf_puts(b, ",\"data\":");
    esm_buf_json_cstr(b, data_b64);
    esm_buf_puts(b, ",\"approximateArrivalTimestamp\":");
    esm_kinesis_put_seconds(b, arrival_ms);
    esm_buf_puts(b, "},\"eventSource\":\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":");
    /* "<shardId>:<sequenceNumber>" */
    esm_buf id;
    esm_buf_init(&id);
    esm_buf_puts(&id, ctx->shard_id ? ctx->shard_id : "");
    esm_buf_putc(&id, ':');
    esm_buf_puts(&id, seq);
    if (id.failed) b->failed = true;
    esm_buf_json_str(b, id.data ? id.data : "", id.data ? id.len : 0);
    esm_buf_free(&id);
    esm_buf_puts(b, ",\"eventName\":\"aws:kinesis:record\",\"invokeIdentityArn\":");
    esm_buf_json_cstr(b, ctx->identity_arn);
    esm_buf_puts(b, ",\"awsRegion\":");
    esm_buf_json_cstr(b, ctx->region);
    esm_buf_puts(b, ",\"eventSourceARN\":");
    esm_buf_json_cstr(b, ctx->stream_arn);
    esm_buf_putc(b, '}');
}

esm_kinesis_record *esm_kinesis_record_new(const esm_kinesis_render_ctx *ctx, const char *seq,
                                           const char *partition_key, int64_t arrival_ms,
                                           const char *data_b64)
{
    esm_kinesis_record *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->seq = strdup(seq);
    r->partition_key = strdup(partition_key);
    r->data = strdup(data_b64);
    r->arrival_ms = arrival_ms;
    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_render_record(ctx, seq, partition_key, arrival_ms, data_b64, &b);
    if (!r->seq || !r->partition_key || !r->data || b.failed || !b.data) {
        esm_buf_free(&b);
        esm_kinesis_record_free(r);
        return NULL;
    }
    esm_buf_cstr(&b); /* NUL-terminated, for logs */
    r->json = b.data; /* the buffer's storage becomes the record's */
    r->json_len = b.len;
    return r;
}

void esm_kinesis_record_free(esm_kinesis_record *r)
{
    if (!r) return;
    free(r->seq);
    free(r->partition_key);
    free(r->data);
    free(r->json);
    free(r);
}

size_t esm_kinesis_event_size(size_t n_records, size_t records_bytes)
{
    return esm_event_size(strlen(EVENT_HEAD) + strlen(EVENT_TAIL), n_records, records_bytes);
}

void esm_kinesis_render_event(esm_kinesis_record *const *recs, size_t n, esm_buf *b)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i]->json_len;
    esm_buf_reserve(b, esm_kinesis_event_size(n, bytes));
    esm_buf_puts(b, EVENT_HEAD);
    for (size_t i = 0; i < n; i++) {
        if (i) esm_buf_putc(b, ',');
        esm_buf_append(b, recs[i]->json, recs[i]->json_len);
    }
    esm_buf_puts(b, EVENT_TAIL);
}

void esm_kinesis_identity_arn(const char *account, char *out, size_t len)
{
    snprintf(out, len, "arn:aws:iam::%s:role/esmd", account && *account ? account : "000000000000");
}

bool esm_kinesis_seq_valid(const char *s)
{
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

int esm_kinesis_seq_cmp(const char *a, const char *b)
{
    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) return la < lb ? -1 : 1;
    int c = strcmp(a, b);
    return c < 0 ? -1 : c > 0;
}

unsigned esm_kinesis_lane_of(const char *partition_key, unsigned pf)
{
    if (pf <= 1 || !partition_key) return 0;
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)partition_key; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h % pf;
}

/* ---- GetRecords ---- */

/* A peer's number as int64, saturated: a garbage value must not be undefined behaviour. */
static int64_t saturate(double v)
{
    if (!(v == v)) return 0; /* NaN */
    if (v >= 9.2e18) return INT64_MAX;
    if (v <= -9.2e18) return INT64_MIN;
    return (int64_t)llround(v);
}

static bool arrival_of(const cJSON *rec, int64_t *ms)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "ApproximateArrivalTimestamp");
    if (cJSON_IsNumber(t)) {
        *ms = saturate(t->valuedouble * 1000.0);
        return true;
    }
    if (cJSON_IsString(t)) { /* tolerate a numeric string */
        char *end = NULL;
        double v = strtod(t->valuestring, &end);
        if (end && end != t->valuestring && *end == '\0') {
            *ms = (int64_t)llround(v * 1000.0);
            return true;
        }
    }
    return false;
}

int esm_kinesis_parse_get_records(const cJSON *resp, const esm_kinesis_render_ctx *ctx,
                                  esm_kinesis_page *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    out->millis_behind_latest = -1;
    if (!cJSON_IsObject(resp)) {
        snprintf(why, why_len, "GetRecords response is not a JSON object");
        return -1;
    }
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(resp, "Records");
    if (!cJSON_IsArray(recs)) {
        snprintf(why, why_len, "GetRecords response has no Records array");
        return -1;
    }
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(resp, "NextShardIterator");
    if (next && !cJSON_IsString(next) && !cJSON_IsNull(next)) {
        snprintf(why, why_len, "GetRecords NextShardIterator is not a string");
        return -1;
    }
    const cJSON *mbl = cJSON_GetObjectItemCaseSensitive(resp, "MillisBehindLatest");
    if (cJSON_IsNumber(mbl)) out->millis_behind_latest = saturate(mbl->valuedouble);
    size_t cap = (size_t)cJSON_GetArraySize(recs);
    if (cap) {
        out->records = calloc(cap, sizeof *out->records);
        if (!out->records) goto nomem;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, recs)
    {
        const char *seq = str_item(r, "SequenceNumber");
        const char *pk = str_item(r, "PartitionKey");
        const char *data = str_item(r, "Data");
        int64_t arrival = 0;
        if (!esm_kinesis_seq_valid(seq) || !pk || !data || !arrival_of(r, &arrival)) {
            out->skipped++;
            continue;
        }
        esm_kinesis_record *rec = esm_kinesis_record_new(ctx, seq, pk, arrival, data);
        if (!rec) goto nomem;
        out->records[out->n++] = rec;
    }
    if (cJSON_IsString(next) && next->valuestring[0]) {
        out->next_iterator = strdup(next->valuestring);
        if (!out->next_iterator) goto nomem;
    }
    return 0;
nomem:
    esm_kinesis_page_clear(out);
    snprintf(why, why_len, "out of memory parsing GetRecords");
    return -1;
}

void esm_kinesis_page_clear(esm_kinesis_page *p)
{
    for (size_t i = 0; i < p->n; i++)
        esm_kinesis_record_free(p->records[i]);
    free(p->records);
    free(p->next_iterator);
    memset(p, 0, sizeof *p);
    p->millis_behind_latest = -1;
}

/* ---- ListShards ---- */

int esm_kinesis_parse_list_shards(const cJSON *resp, esm_kinesis_shard_info **shards, size_t *n,
                                  char **next_token, char *why, size_t why_len)
{
    *next_token = NULL;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(resp, "Shards");
    if (!cJSON_IsArray(arr)) {
        snprintf(why, why_len, "ListShards response has no Shards array");
        return -1;
    }
    size_t add = (size_t)cJSON_GetArraySize(arr);
    if (add) {
        esm_kinesis_shard_info *p = realloc(*shards, (*n + add) * sizeof *p);
        if (!p) goto nomem;
        *shards = p;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, arr)
    {
        const char *id = str_item(s, "ShardId");
        if (!id || !*id) {
            snprintf(why, why_len, "ListShards returned a shard without ShardId");
            return -1;
        }
        const cJSON *range = cJSON_GetObjectItemCaseSensitive(s, "SequenceNumberRange");
        esm_kinesis_shard_info *si = &(*shards)[*n];
        memset(si, 0, sizeof *si);
        si->id = strdup(id);
        si->parent = dup_or_null(str_item(s, "ParentShardId"));
        si->adjacent_parent = dup_or_null(str_item(s, "AdjacentParentShardId"));
        si->starting_seq = dup_or_null(str_item(range, "StartingSequenceNumber"));
        si->ending_seq = dup_or_null(str_item(range, "EndingSequenceNumber"));
        (*n)++;
        if (!si->id) goto nomem;
    }
    const char *tok = str_item(resp, "NextToken");
    if (tok && *tok) {
        *next_token = strdup(tok);
        if (!*next_token) goto nomem;
    }
    return 0;
nomem:
    snprintf(why, why_len, "out of memory parsing ListShards");
    return -1;
}

void esm_kinesis_shard_info_free(esm_kinesis_shard_info *shards, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(shards[i].id);
        free(shards[i].parent);
        free(shards[i].adjacent_parent);
        free(shards[i].starting_seq);
        free(shards[i].ending_seq);
    }
    free(shards);
}

/* ---- request bodies ---- */

const char *esm_kinesis_iterator_type_name(esm_kinesis_iterator_type t)
{
    switch (t) {
    case ESM_KINESIS_IT_TRIM_HORIZON:
        return "TRIM_HORIZON";
    case ESM_KINESIS_IT_LATEST:
        return "LATEST";
    case ESM_KINESIS_IT_AT_TIMESTAMP:
        return "AT_TIMESTAMP";
    case ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER:
        return "AFTER_SEQUENCE_NUMBER";
    case ESM_KINESIS_IT_AT_SEQUENCE_NUMBER:
        return "AT_SEQUENCE_NUMBER";
    }
    return "TRIM_HORIZON";
}

void esm_kinesis_body_list_shards(esm_buf *b, const char *stream_name, const char *next_token)
{
    if (next_token) {
        esm_buf_puts(b, "{\"NextToken\":");
        esm_buf_json_cstr(b, next_token);
    } else {
        esm_buf_puts(b, "{\"StreamName\":");
        esm_buf_json_cstr(b, stream_name);
    }
    esm_buf_puts(b, ",\"MaxResults\":1000}");
}

void esm_kinesis_body_shard_iterator(esm_buf *b, const char *stream_name, const char *shard_id,
                                     esm_kinesis_iterator_type type, const char *seq,
                                     int64_t timestamp_ms)
{
    esm_buf_puts(b, "{\"StreamName\":");
    esm_buf_json_cstr(b, stream_name);
    esm_buf_puts(b, ",\"ShardId\":");
    esm_buf_json_cstr(b, shard_id);
    esm_buf_puts(b, ",\"ShardIteratorType\":");
    esm_buf_json_cstr(b, esm_kinesis_iterator_type_name(type));
    if (type == ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER || type == ESM_KINESIS_IT_AT_SEQUENCE_NUMBER) {
        esm_buf_puts(b, ",\"StartingSequenceNumber\":");
        esm_buf_json_cstr(b, seq);
    } else if (type == ESM_KINESIS_IT_AT_TIMESTAMP) {
        esm_buf_puts(b, ",\"Timestamp\":");
        esm_kinesis_put_seconds(b, timestamp_ms);
    }
    esm_buf_putc(b, '}');
}

void esm_kinesis_body_get_records(esm_buf *b, const char *iterator, int limit)
{
    if (limit < 1) limit = 1;
    if (limit > 10000) limit = 10000;
    esm_buf_puts(b, "{\"ShardIterator\":");
    esm_buf_json_cstr(b, iterator);
    esm_buf_printf(b, ",\"Limit\":%d}", limit);
}

void esm_kinesis_body_stream(esm_buf *b, const char *stream_name)
{
    esm_buf_puts(b, "{\"StreamName\":");
    esm_buf_json_cstr(b, stream_name);
    esm_buf_putc(b, '}');
}

int64_t esm_kinesis_parse_stream_created(const cJSON *resp)
{
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(resp, "StreamDescriptionSummary");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sum, "StreamCreationTimestamp");
    return cJSON_IsNumber(t) && t->valuedouble > 0 ? saturate(t->valuedouble * 1000.0) : -1;
}
