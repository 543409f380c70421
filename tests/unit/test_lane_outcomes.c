/* An ordered lane against the in-process test server, a real invoker and a real state store:
 * a function that hangs past its timeout ends in a failure record after MaximumRetryAttempts
 * (and is bisected), while an endpoint that says esmd is misconfigured (403) is retried without
 * ever counting an attempt or writing a failure record (docs/design.md "Invocation outcomes"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "checkpoint/esm_store.h"
#include "common/esm_time.h"
#include "http/esm_http.h"
#include "lane/esm_lane.h"
#include "tests/unit/http_test_server.h"
#include "tests/unit/test_checkpoint_util.h"

#include <ev.h>

#define N_RECS 2

typedef struct {
    struct ev_loop *loop;
    esm_http *http;
    test_server *srv;
    char *dir;
    esm_store *store;
    esm_invoker *inv;
    esm_lane *lane;
    char url[256];
    esm_function_config fn;
    esm_mapping_config map;
    esm_policy_record recs[N_RECS];
    uint64_t invoked, invocations, failed_invoke, throttled, dropped, on_failure_queued, committed,
        checkpoint_write_failures;
    esm_invoke_stats stats;
    int done;
    bool abandoned;
    char position[32];
} fixture;

static void render_event(void *arg, size_t lo, size_t hi, esm_buf *out)
{
    fixture *f = arg;
    esm_buf_puts(out, "{\"Records\":[");
    for (size_t i = lo; i < hi; i++)
        esm_buf_printf(out, "%s{\"id\":\"%s\"}", i > lo ? "," : "", f->recs[i].id);
    esm_buf_puts(out, "]}");
}

static void describe_failure(void *arg, size_t lo, size_t hi, const char *dest,
                             esm_failure_record *fr)
{
    fixture *f = arg;
    (void)dest;
    fr->source = ESM_FR_KINESIS;
    fr->batch_size = hi - lo;
    fr->stream.shard_id = "shard-0";
    fr->stream.start_sequence_number = f->recs[lo].id;
    fr->stream.end_sequence_number = f->recs[hi - 1].id;
    fr->stream.stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/t";
}

static const char *checkpoint_after(void *arg, size_t resolved)
{
    fixture *f = arg;
    snprintf(f->position, sizeof f->position, "%zu", resolved);
    return f->position;
}

static void done(void *arg, bool abandoned)
{
    fixture *f = arg;
    f->done++;
    f->abandoned = abandoned;
}

static const esm_lane_source source = {.render_event = render_event,
                                       .describe_failure = describe_failure,
                                       .checkpoint_after = checkpoint_after,
                                       .done = done};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    f->srv = server_start();
    f->dir = tc_mkdtemp();
    esm_err err;
    esm_err_clear(&err);
    f->store = esm_store_open(f->dir, &err);
    assert_non_null(f->store);
    static const char *ids[N_RECS] = {"100", "200"};
    for (size_t i = 0; i < N_RECS; i++)
        f->recs[i] = (esm_policy_record){.id = ids[i], .arrival_ms = esm_now_ms(), .size = 10};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esm_lane_destroy(f->lane);
    esm_invoker_destroy(f->inv);
    esm_store_close(f->store);
    esm_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    server_stop(f->srv);
    tc_rmrf(f->dir);
    free(f);
    return 0;
}

/* A lane on function path over protocol, with MaximumRetryAttempts retries and a 1 ms backoff
 * (the test waits for outcomes, not for backoffs). */
static void make_lane(fixture *f, const char *path, esm_protocol proto, int retries, bool bisect)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->srv->port, path);
    f->fn = (esm_function_config){.name = "fn",
                                  .arn = "arn:aws:lambda:us-east-1:000000000000:function:fn",
                                  .url = f->url,
                                  .protocol = proto,
                                  .timeout_seconds = 1,
                                  .max_concurrency = 1};
    f->inv = esm_invoker_create(f->loop, f->http, &f->fn, NULL);
    assert_non_null(f->inv);
    f->map = (esm_mapping_config){.uuid = "00000000-0000-4000-8000-000000000001",
                                  .function = &f->fn,
                                  .function_name = "fn",
                                  .maximum_retry_attempts = retries,
                                  .maximum_record_age_seconds = -1,
                                  .bisect_on_function_error = bisect,
                                  .retry_backoff_base_ms = 1,
                                  .retry_backoff_max_ms = 1,
                                  .on_failure_destination = "file:///dev/null"};
    esm_lane_env env = {.loop = f->loop,
                        .invoker = f->inv,
                        .store = f->store,
                        .mapping = &f->map,
                        .source_key = "arn:aws:kinesis:us-east-1:000000000000:stream/t",
                        .lane_key = "shard-0",
                        .log_ctx = "test",
                        .id_kind = ESM_RBIF_ID_STRING,
                        .counters = {.invoked = &f->invoked,
                                     .invocations = &f->invocations,
                                     .failed_invoke = &f->failed_invoke,
                                     .throttled = &f->throttled,
                                     .dropped = &f->dropped,
                                     .on_failure_queued = &f->on_failure_queued,
                                     .committed = &f->committed,
                                     .checkpoint_write_failures = &f->checkpoint_write_failures,
                                     .invokes = &f->stats},
                        .source = &source,
                        .arg = f};
    f->lane = esm_lane_create(&env);
    assert_non_null(f->lane);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until *counter >= want; fails after 30 s. */
static void run_until(fixture *f, const void *counter, bool wide, uint64_t want)
{
    bool expired = false;
    ev_timer deadline;
    ev_timer_init(&deadline, deadline_cb, 30., 0.);
    deadline.data = &expired;
    ev_timer_start(f->loop, &deadline);
    for (;;) {
        uint64_t v = wide ? *(const uint64_t *)counter : (uint64_t) * (const int *)counter;
        if (v >= want || expired) break;
        ev_run(f->loop, EVRUN_ONCE);
    }
    ev_timer_stop(f->loop, &deadline);
    assert_false(expired);
}

typedef struct {
    esm_outbox_row *rows;
    size_t n;
} outbox;

static outbox outbox_rows(fixture *f)
{
    outbox o = {0};
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(esm_store_outbox_due(f->store, esm_now_ms() + 1000, 100, &o.rows, &o.n, &err),
                     0);
    return o;
}

static void test_lambda_timeout_exhausts_retries_into_a_failure_record(void **state)
{
    fixture *f = *state;
    make_lane(f, "/hang", ESM_PROTO_LAMBDA, 1, false);
    assert_int_equal(esm_lane_start(f->lane, f->recs, N_RECS), N_RECS);
    run_until(f, &f->done, false, 1);
    assert_false(f->abandoned);
    /* two function timeouts (the first try and one retry), then the discard */
    assert_int_equal(f->invocations, 2);
    assert_int_equal(f->failed_invoke, 2 * N_RECS);
    assert_int_equal(f->dropped, N_RECS);
    assert_int_equal(f->on_failure_queued, 1);
    outbox o = outbox_rows(f);
    assert_int_equal(o.n, 1);
    assert_non_null(strstr(o.rows[0].payload, "\"condition\":\"RetryAttemptsExhausted\""));
    assert_non_null(strstr(o.rows[0].payload, "\"approximateInvokeCount\":2"));
    assert_non_null(strstr(o.rows[0].payload, "\"functionError\":\"Unhandled\""));
    assert_non_null(strstr(o.rows[0].payload, "\"startSequenceNumber\":\"100\""));
    assert_non_null(strstr(o.rows[0].payload, "\"endSequenceNumber\":\"200\""));
    esm_store_outbox_rows_free(o.rows, o.n);
}

static void test_timeout_bisects(void **state)
{
    fixture *f = *state;
    /* http waits exactly timeout_seconds: three 1 s timeouts (the pair, then each half) */
    make_lane(f, "/hang", ESM_PROTO_HTTP, 0, true);
    assert_int_equal(esm_lane_start(f->lane, f->recs, N_RECS), N_RECS);
    run_until(f, &f->done, false, 1);
    assert_int_equal(f->stats.bisect_splits, 1);
    assert_int_equal(f->invocations, 3);
    assert_int_equal(f->dropped, N_RECS);
    outbox o = outbox_rows(f);
    assert_int_equal(o.n, 2); /* one per half */
    assert_non_null(strstr(o.rows[0].payload, "\"startSequenceNumber\":\"100\""));
    assert_non_null(strstr(o.rows[0].payload, "\"endSequenceNumber\":\"100\""));
    assert_non_null(strstr(o.rows[1].payload, "\"startSequenceNumber\":\"200\""));
    for (size_t i = 0; i < o.n; i++)
        assert_non_null(strstr(o.rows[i].payload, "\"approximateInvokeCount\":1"));
    esm_store_outbox_rows_free(o.rows, o.n);
}

/* However often a 403 comes back, nothing counts as an attempt and no failure record is
 * written: the batch stays blocked, visibly. Both protocols. */
static void test_403_is_retried_never_discarded(void **state)
{
    fixture *f = *state;
    esm_protocol ps[] = {ESM_PROTO_LAMBDA, ESM_PROTO_HTTP};
    for (size_t p = 0; p < 2; p++) {
        memset(&f->stats, 0, sizeof f->stats);
        f->invocations = f->dropped = f->failed_invoke = 0;
        make_lane(f, "/status/403", ps[p], 0, true);
        assert_int_equal(esm_lane_start(f->lane, f->recs, N_RECS), N_RECS);
        run_until(f, &f->stats.misconfigured, true, 25); /* MaximumRetryAttempts is 0 */
        assert_int_equal(f->done, 0);
        assert_int_equal(f->invocations, 0);
        assert_int_equal(f->failed_invoke, 0);
        assert_int_equal(f->dropped, 0);
        assert_int_equal(f->on_failure_queued, 0);
        assert_int_equal(f->stats.bisect_splits, 0);
        assert_true(f->stats.misconfigured_since_ms > 0);
        assert_non_null(strstr(f->stats.misconfigured_reason,
                               "function endpoint answered 403: esmd is misconfigured"));
        assert_true(esm_lane_blocked_since_ms(f->lane) > 0);
        esm_buf st;
        esm_buf_init(&st);
        esm_lane_status(f->lane, &st);
        assert_non_null(strstr(esm_buf_cstr(&st), "\"Attempts\":0"));
        assert_non_null(strstr(esm_buf_cstr(&st), "\"LastProcessingResult\":\"PROBLEM: function "
                                                  "endpoint answered 403: esmd is misconfigured"));
        esm_buf_free(&st);
        outbox o = outbox_rows(f);
        assert_int_equal(o.n, 0);
        esm_store_outbox_rows_free(o.rows, o.n);
        esm_lane_abandon(f->lane);
        esm_lane_destroy(f->lane);
        f->lane = NULL;
        esm_invoker_destroy(f->inv);
        f->inv = NULL;
        f->done = 0;
    }
}

/* The log line is rate-limited per mapping and the state clears once the endpoint answers. */
static void test_misconfigured_log_rate_limit(void **state)
{
    (void)state;
    esm_invoke_stats s;
    memset(&s, 0, sizeof s);
    assert_int_equal(esm_invoke_stats_endpoint(&s, NULL, 1000), ESM_ENDPOINT_LOG_NOTHING);
    assert_int_equal(esm_invoke_stats_endpoint(&s, "answered 403", 1000),
                     ESM_ENDPOINT_LOG_MISCONFIGURED);
    assert_int_equal(esm_invoke_stats_endpoint(&s, "answered 403", 2000), ESM_ENDPOINT_LOG_NOTHING);
    assert_int_equal(esm_invoke_stats_endpoint(&s, "answered 404", 1000 + 59999),
                     ESM_ENDPOINT_LOG_NOTHING);
    assert_string_equal(s.misconfigured_reason, "answered 404");
    assert_int_equal(esm_invoke_stats_endpoint(&s, "answered 404", 1000 + 60000),
                     ESM_ENDPOINT_LOG_MISCONFIGURED);
    assert_int_equal(s.misconfigured, 4);
    assert_int_equal(s.misconfigured_since_ms, 1000);
    assert_int_equal(esm_invoke_stats_endpoint(&s, NULL, 70000), ESM_ENDPOINT_LOG_RECOVERED);
    assert_int_equal(s.misconfigured_since_ms, 0);
    assert_int_equal(esm_invoke_stats_endpoint(&s, NULL, 70001), ESM_ENDPOINT_LOG_NOTHING);
    assert_int_equal(esm_invoke_stats_endpoint(&s, "answered 403", 70002),
                     ESM_ENDPOINT_LOG_MISCONFIGURED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lambda_timeout_exhausts_retries_into_a_failure_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_bisects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_403_is_retried_never_discarded, setup, teardown),
        cmocka_unit_test(test_misconfigured_log_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
