/* A lane whose source renders an event over the 6 MB invoke limit although the records' sizes
 * said it fits (docs/design.md "Event size"): the lane never sends it and never retries it as
 * it was. A two-record unit splits; the record whose event alone is too large becomes a
 * MaximumPayloadSizeExceeded failure record in the outbox; the other record is invoked; the
 * checkpoint moves past both. Real store, real invoker against the in-process HTTP server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "lane/esm_lane.h"
#include "tests/unit/http_test_server.h"
#include "tests/unit/test_checkpoint_util.h"

#define ENVELOPE "{\"Records\":[]}"

typedef struct {
    size_t real_len[2]; /* bytes render_event really writes for each record */
    size_t acknowledged;
    int done;
    bool abandoned;
    char position[32];
} fake_source;

static void render_event(void *arg, size_t lo, size_t hi, esm_buf *out)
{
    fake_source *fs = arg;
    esm_buf_puts(out, "{\"Records\":[");
    for (size_t i = lo; i < hi; i++) {
        if (i > lo) esm_buf_putc(out, ',');
        esm_buf_putc(out, '"');
        for (size_t k = 2; k < fs->real_len[i]; k++)
            esm_buf_putc(out, 'x');
        esm_buf_putc(out, '"');
    }
    esm_buf_puts(out, "]}");
}

static void describe_failure(void *arg, size_t lo, size_t hi, const char *dest,
                             esm_failure_record *fr)
{
    (void)arg;
    (void)dest;
    static const char *const seqs[] = {"100", "101"};
    fr->source = ESM_FR_KINESIS;
    fr->batch_size = hi - lo;
    fr->stream.shard_id = "shardId-000000000000";
    fr->stream.start_sequence_number = seqs[lo];
    fr->stream.end_sequence_number = seqs[hi - 1];
    fr->stream.stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
}

static const char *checkpoint_after(void *arg, size_t resolved)
{
    fake_source *fs = arg;
    snprintf(fs->position, sizeof fs->position, "after-%zu", resolved);
    return fs->position;
}

static void acknowledged(void *arg, size_t resolved)
{
    ((fake_source *)arg)->acknowledged = resolved;
}

static void done(void *arg, bool abandoned)
{
    fake_source *fs = arg;
    fs->done++;
    fs->abandoned = abandoned;
}

static const esm_lane_source source = {.render_event = render_event,
                                       .describe_failure = describe_failure,
                                       .checkpoint_after = checkpoint_after,
                                       .acknowledged = acknowledged,
                                       .done = done};

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ALL);
}

static void test_refused_unit_splits_and_lone_record_is_a_failure_record(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    esm_http *http = esm_http_create(loop);
    test_server *srv = server_start();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", srv->port);
    esm_function_config fn = {.name = "fn",
                              .arn = "arn:aws:lambda:us-east-1:000000000000:function:fn",
                              .url = url,
                              .protocol = ESM_PROTO_HTTP,
                              .timeout_seconds = 5,
                              .max_concurrency = 1};
    esm_invoker *inv = esm_invoker_create(loop, http, &fn, NULL);
    assert_non_null(inv);
    char *dir = tc_mkdtemp();
    assert_non_null(dir);
    esm_err err;
    esm_store *store = esm_store_open(dir, &err);
    assert_non_null(store);
    char uuid[] = "5f3c8a6e-0000-4000-8000-000000000001";
    char dest[] = "file:///dev/null";
    esm_mapping_config m = {.uuid = uuid,
                            .function = &fn,
                            .batch_size = 10,
                            .maximum_retry_attempts = -1,
                            .maximum_record_age_seconds = -1,
                            .on_failure_destination = dest};
    uint64_t invoked = 0, invocations = 0, failed_invoke = 0, throttled = 0, dropped = 0,
             queued = 0, committed = 0, ckpt_failures = 0;
    fake_source fs = {.real_len = {ESM_INVOKE_MAX_PAYLOAD, 10}};
    esm_lane_env env = {.loop = loop,
                        .invoker = inv,
                        .store = store,
                        .mapping = &m,
                        .source_key = "arn:aws:kinesis:us-east-1:000000000000:stream/s",
                        .lane_key = "shardId-000000000000",
                        .log_ctx = "test",
                        .id_kind = ESM_RBIF_ID_STRING,
                        .event_envelope = strlen(ENVELOPE),
                        .counters = {.invoked = &invoked,
                                     .invocations = &invocations,
                                     .failed_invoke = &failed_invoke,
                                     .throttled = &throttled,
                                     .dropped = &dropped,
                                     .on_failure_queued = &queued,
                                     .committed = &committed,
                                     .checkpoint_write_failures = &ckpt_failures},
                        .source = &source,
                        .arg = &fs};
    esm_lane *lane = esm_lane_create(&env);
    assert_non_null(lane);
    /* The sizes the source claims: both records fit easily. */
    esm_policy_record recs[2] = {{.id = "100", .arrival_ms = 1, .size = 100},
                                 {.id = "101", .arrival_ms = 1, .size = 100}};
    assert_int_equal(esm_lane_start(lane, recs, 2), 2);

    bool expired = false;
    ev_timer deadline;
    ev_timer_init(&deadline, deadline_cb, 20., 0.);
    deadline.data = &expired;
    ev_timer_start(loop, &deadline);
    while (!fs.done && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &deadline);
    assert_false(expired);
    assert_false(fs.abandoned);

    /* Only record 101 reached the function, once; record 100 was discarded. */
    assert_int_equal(invocations, 1);
    assert_int_equal(invoked, 1);
    assert_int_equal(dropped, 1);
    assert_int_equal(queued, 1);
    assert_int_equal(fs.acknowledged, 2);
    esm_store_lane ck;
    assert_int_equal(esm_store_checkpoint_get(store, uuid, env.source_key, env.lane_key, &ck, &err),
                     0);
    assert_string_equal(ck.position, "after-2");
    esm_store_lane_clear(&ck);
    esm_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(esm_store_outbox_due(store, INT64_MAX, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(rows[0].payload, "\"condition\":\"MaximumPayloadSizeExceeded\""));
    assert_non_null(strstr(rows[0].payload, "\"startSequenceNumber\":\"100\""));
    assert_non_null(strstr(rows[0].payload, "\"batchSize\":1"));
    esm_store_outbox_rows_free(rows, n);

    esm_lane_destroy(lane);
    esm_store_close(store);
    tc_rmrf(dir);
    esm_invoker_destroy(inv);
    esm_http_destroy(http);
    ev_loop_destroy(loop);
    server_stop(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_unit_splits_and_lone_record_is_a_failure_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
