/* libFuzzer target for the SQS source's ReceiveMessage parser and event renderer
 * (pollers/sqs/esm_sqs_msg.c). Input: the response body. Invariants, for every input:
 *  - no crash; a refused response (-1) says why; otherwise at most cap messages, each with a
 *    message id, a receipt handle and a rendered record;
 *  - every rendered record is one JSON object whose messageId, receiptHandle and body are the
 *    parsed ones (for valid UTF-8: the renderer replaces invalid bytes with U+FFFD);
 *  - the event {"Records":[...]} parses, holds exactly the records, and has the size
 *    esm_sqs_event_size predicts (the batcher relies on it for the 6 MB limit);
 *  - when cJSON also parses the input (the way responses were read before): the same messages,
 *    and every record, id, handle, group and body byte for byte what the cJSON-based renderer
 *    before the rewrite produced (tests/fuzz/sqs_render_ref.h). */
// FUZZ_SOURCES: pollers/sqs/esm_sqs_msg.c filter/esm_filter_json.c
#include "pollers/sqs/esm_sqs_int.h"
#include "tests/fuzz/fuzz_utf8.h"
#include "tests/fuzz/sqs_render_ref.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 10

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool body_is(const esm_sqs_msg *m, const char *s)
{
    return m->body_len == strlen(s) && memcmp(m->body, s, m->body_len) == 0;
}

/* The messages kept are, in order, those with string id, handle and body (before the cap). */
static void compare_with_reference(const cJSON *resp, esm_sqs_msg **msgs, int n,
                                   const esm_sqs_render_ctx *ctx)
{
    int k = 0;
    esm_buf want;
    esm_buf_init(&want);
    const cJSON *jm;
    cJSON_ArrayForEach(jm, cJSON_GetObjectItemCaseSensitive(resp, "Messages"))
    {
        if (k == n) break;
        const char *id = ref_str_item(jm, "MessageId"), *rh = ref_str_item(jm, "ReceiptHandle");
        const char *body = ref_str_item(jm, "Body");
        if (!id || !rh || !body) continue;
        esm_sqs_msg *m = msgs[k++];
        esm_buf_reset(&want);
        ref_sqs_render_record(jm, ctx, &want);
        check(!want.failed && m->record_len == want.len &&
                  memcmp(m->record, want.data, want.len) == 0,
              "record identical to the previous renderer");
        check(strcmp(m->message_id, id) == 0 && strcmp(m->receipt_handle, rh) == 0,
              "id and handle as received");
        const char *g =
            ref_str_item(cJSON_GetObjectItemCaseSensitive(jm, "Attributes"), "MessageGroupId");
        check(g ? m->group_id && strcmp(m->group_id, g) == 0 : m->group_id == NULL, "group id");
        check(body_is(m, body), "body as received");
    }
    check(k == n, "the same messages as before");
    esm_buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so reading past the end is caught by ASan. */
    char *json = malloc(size ? size : 1);
    if (!json) return 0;
    if (size) memcpy(json, data, size);
    esm_sqs_render_ctx ctx = {"arn:aws:sqs:us-east-1:000000000000:q", "us-east-1"};
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    esm_sqs_msg *msgs[CAP];
    size_t skipped = 0;
    char why[256] = "";
    int n = esm_sqs_parse_receive(&p, json, size, &ctx, msgs, CAP, &skipped, why, sizeof why);
    cJSON *resp = cJSON_ParseWithLength((const char *)data, size);
    if (n < 0) {
        check(why[0] != '\0', "a refused response says why");
        goto out;
    }
    check(n <= CAP, "at most cap messages");
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        esm_sqs_msg *m = msgs[i];
        check(m->message_id && m->receipt_handle && m->record && m->body, "id, handle, record");
        check(strlen(m->record) == m->record_len, "record_len");
        bytes += m->record_len;
        cJSON *r = cJSON_ParseWithLength(m->record, m->record_len);
        check(r && cJSON_IsObject(r), "the record is a JSON object");
        const char *mid = str_of(r, "messageId"), *rh = str_of(r, "receiptHandle");
        check(mid && (!fuzz_utf8_valid(m->message_id) || strcmp(mid, m->message_id) == 0),
              "messageId rendered");
        check(rh && (!fuzz_utf8_valid(m->receipt_handle) || strcmp(rh, m->receipt_handle) == 0),
              "receiptHandle rendered");
        const char *body = str_of(r, "body");
        check(body != NULL, "body rendered");
        char *raw = strndup(m->body, m->body_len);
        check(raw != NULL, "oom");
        if (strlen(raw) == m->body_len && fuzz_utf8_valid(raw))
            check(body_is(m, body), "body rendered as received");
        free(raw);
        cJSON_Delete(r);
    }
    if (resp) compare_with_reference(resp, msgs, n, &ctx);
    esm_buf ev;
    esm_buf_init(&ev);
    esm_sqs_render_event(msgs, (size_t)n, &ev);
    check(!ev.failed, "render succeeded");
    check(ev.len == esm_sqs_event_size((size_t)n, bytes), "event size predicted");
    cJSON *e = cJSON_ParseWithLength(ev.data, ev.len);
    check(e != NULL, "the event parses");
    check(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "Records")) == n,
          "the event holds every record");
    cJSON_Delete(e);
    esm_buf_free(&ev);
    for (int i = 0; i < n; i++)
        esm_sqs_msg_free(msgs[i]);
out:
    cJSON_Delete(resp);
    esm_sqs_parser_free(&p);
    free(json);
    return 0;
}
