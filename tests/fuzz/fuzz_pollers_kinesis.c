/* libFuzzer target for the Kinesis source's response parsers (GetRecords, ListShards) and
 * event renderer (pollers/kinesis/esm_kinesis_records.c). Input: the response body. Invariants, for
 * every input cJSON parses:
 *  - a refused GetRecords response says why; an accepted one has records with a valid sequence
 *    number and a rendered record that parses, names that sequence number and
 *    that data (when valid UTF-8);
 *  - the event parses, holds every record and has the size esm_kinesis_event_size predicts;
 *  - the sequence comparison is antisymmetric and reflexive on the page's records. */
// FUZZ_SOURCES: pollers/kinesis/esm_kinesis_records.c
#include "pollers/kinesis/esm_kinesis_int.h"
#include "tests/fuzz/fuzz_utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

static void get_records(const cJSON *resp)
{
    esm_kinesis_render_ctx ctx = {"arn:aws:kinesis:us-east-1:000000000000:stream/s", "us-east-1",
                                  "arn:aws:iam::000000000000:role/esmd", "shardId-000000000000"};
    esm_kinesis_page page;
    memset(&page, 0, sizeof page);
    char why[256] = "";
    if (esm_kinesis_parse_get_records(resp, &ctx, &page, why, sizeof why) != 0) {
        check(why[0] != '\0', "a refused response says why");
        esm_kinesis_page_clear(&page);
        return;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < page.n; i++) {
        const esm_kinesis_record *r = page.records[i];
        check(r && r->seq && esm_kinesis_seq_valid(r->seq), "a valid sequence number");
        check(esm_kinesis_seq_cmp(r->seq, r->seq) == 0, "seq_cmp reflexive");
        if (i) {
            int a = esm_kinesis_seq_cmp(page.records[i - 1]->seq, r->seq);
            int b = esm_kinesis_seq_cmp(r->seq, page.records[i - 1]->seq);
            check((a > 0) == (b < 0) && (a == 0) == (b == 0), "seq_cmp antisymmetric");
        }
        check(strlen(r->json) == r->json_len, "json_len");
        bytes += r->json_len;
        cJSON *j = cJSON_ParseWithLength(r->json, r->json_len);
        check(j && cJSON_IsObject(j), "the record is a JSON object");
        const cJSON *kin = cJSON_GetObjectItemCaseSensitive(j, "kinesis");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(kin, "sequenceNumber");
        check(cJSON_IsString(seq) && strcmp(seq->valuestring, r->seq) == 0, "sequenceNumber");
        if (r->data && fuzz_utf8_valid(r->data)) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(kin, "data");
            check(cJSON_IsString(d) && strcmp(d->valuestring, r->data) == 0, "data as received");
        }
        cJSON_Delete(j);
    }
    esm_buf ev;
    esm_buf_init(&ev);
    esm_kinesis_render_event(page.records, page.n, &ev);
    check(!ev.failed && ev.len == esm_kinesis_event_size(page.n, bytes), "event size predicted");
    cJSON *e = cJSON_ParseWithLength(ev.data, ev.len);
    check(e && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "Records")) == (int)page.n,
          "the event holds every record");
    cJSON_Delete(e);
    esm_buf_free(&ev);
    esm_kinesis_page_clear(&page);
}

static void list_shards(const cJSON *resp)
{
    esm_kinesis_shard_info *shards = NULL;
    size_t n = 0;
    char *next = NULL;
    char why[256] = "";
    if (esm_kinesis_parse_list_shards(resp, &shards, &n, &next, why, sizeof why) != 0)
        check(why[0] != '\0', "a refused ListShards response says why");
    for (size_t i = 0; i < n; i++)
        check(shards[i].id && shards[i].id[0], "every shard has an id");
    esm_kinesis_shard_info_free(shards, n);
    free(next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *resp = cJSON_ParseWithLength((const char *)data, size);
    if (!resp) return 0;
    get_records(resp);
    list_shards(resp);
    cJSON_Delete(resp);
    return 0;
}
