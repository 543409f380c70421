/* esm_invoker on a real loop against the in-process test server: results, FIFO queueing beyond
 * max_concurrency, cancel and destroy (also from inside callbacks), the 6 MB cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "tests/unit/http_test_server.h"

#include <ev.h>

typedef struct {
    struct ev_loop *loop;
    esm_http *http;
    test_server *srv;
    esm_invoker *inv;
    char url[256];
} fixture;

typedef struct {
    int calls;
    int order[16];
    int n_order;
    esm_invoke_result last;
    char body[256];
} tally;

typedef struct call_ctx {
    tally *t;
    int id;
    fixture *f;
    bool destroy_invoker;
    bool invoke_again;
    esm_invocation *self;
    struct call_ctx *again;
} call_ctx;

static void on_result(const esm_invoke_result *r, void *arg)
{
    call_ctx *c = arg;
    c->t->calls++;
    if (c->t->n_order < 16) c->t->order[c->t->n_order++] = c->id;
    c->t->last = *r;
    c->t->last.body = NULL;
    snprintf(c->t->body, sizeof c->t->body, "%.*s", (int)r->body_len, r->body);
    if (c->self) esm_invoker_cancel(c->self); /* cancelling the call being reported: no-op */
    if (c->invoke_again)
        assert_non_null(esm_invoker_invoke(c->f->inv, "{\"again\":1}", 11, on_result, c->again));
    if (c->destroy_invoker) {
        esm_invoker_destroy(c->f->inv);
        c->f->inv = NULL;
    }
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    f->srv = server_start();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->inv) esm_invoker_destroy(f->inv);
    esm_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    server_stop(f->srv);
    free(f);
    return 0;
}

static void make_invoker(fixture *f, const char *path, esm_protocol proto, int max_conc,
                         int timeout_s)
{
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", f->srv->port, path);
    esm_function_config fn = {.name = "t",
                              .url = f->url,
                              .protocol = proto,
                              .timeout_seconds = timeout_s,
                              .max_concurrency = max_conc};
    f->inv = esm_invoker_create(f->loop, f->http, &fn, NULL);
    assert_non_null(f->inv);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ALL);
}

static void run_until(fixture *f, const int *counter, int want)
{
    bool expired = false;
    ev_timer deadline;
    ev_timer_init(&deadline, deadline_cb, 10., 0.);
    deadline.data = &expired;
    ev_timer_start(f->loop, &deadline);
    while (*counter < want && !expired)
        ev_run(f->loop, EVRUN_ONCE);
    ev_timer_stop(f->loop, &deadline);
    assert_false(expired);
}

static void test_success_echoes_payload(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/echo", ESM_PROTO_LAMBDA, 2, 5);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{\"Records\":[]}", 14, on_result, &c));
    assert_int_equal(t.calls, 0); /* never called back from inside invoke */
    run_until(f, &t.calls, 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_SUCCESS);
    assert_int_equal(t.last.status, 200);
    assert_string_equal(t.body, "{\"Records\":[]}");
    assert_string_equal(t.last.executed_version, "$LATEST");
    assert_int_equal(strlen(t.last.request_id), 36); /* generated: the server sends none */
    assert_int_equal(t.last.retry_after_ms, -1);
    assert_int_equal(esm_invoker_in_flight(f->inv), 0);
}

static void test_function_error_and_throttle(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/fe", ESM_PROTO_LAMBDA, 2, 5);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    run_until(f, &t.calls, 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(t.last.function_error, "Unhandled");
    esm_invoker_destroy(f->inv);

    make_invoker(f, "/throttle", ESM_PROTO_HTTP, 2, 5);
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    run_until(f, &t.calls, 2);
    assert_int_equal(t.last.cls, ESM_INVOKE_THROTTLE);
    assert_int_equal(t.last.retry_after_ms, 2000);
}

static void test_http_timeout_is_function_error(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/slow", ESM_PROTO_HTTP, 1, 1);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    run_until(f, &t.calls, 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(t.last.function_error, "Unhandled");
    assert_string_equal(t.last.reason,
                        "timeout after 1000 ms: the function did not answer (function timeout)");
}

/* esmd's timeout (timeout_seconds + the margin) on a lambda function that hangs is a function
 * timeout: it counts toward MaximumRetryAttempts instead of blocking a lane forever. */
static void test_lambda_timeout_is_function_error(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/hang", ESM_PROTO_LAMBDA, 1, 1);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    run_until(f, &t.calls, 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(t.last.function_error, "Unhandled");
    assert_false(t.last.misconfigured);
    assert_string_equal(t.last.reason,
                        "timeout after 3000 ms: the function did not answer (function timeout)");
}

/* 401/403/404/405/407 from the endpoint: esmd is misconfigured, on both protocols. */
static void test_misconfigured_endpoint(void **state)
{
    fixture *f = *state;
    long codes[] = {401, 403, 404, 405, 407};
    esm_protocol ps[] = {ESM_PROTO_LAMBDA, ESM_PROTO_HTTP};
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
            char path[32];
            snprintf(path, sizeof path, "/status/%ld", codes[i]);
            make_invoker(f, path, ps[p], 1, 5);
            int want = t.calls + 1;
            assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
            run_until(f, &t.calls, want);
            assert_int_equal(t.last.status, codes[i]);
            assert_int_equal(t.last.cls, ESM_INVOKE_ERROR);
            assert_true(t.last.misconfigured);
            assert_non_null(strstr(t.last.reason, "esmd is misconfigured"));
            esm_invoker_destroy(f->inv);
            f->inv = NULL;
        }
    /* a status the function itself may answer stays the function's error over http */
    make_invoker(f, "/status/500", ESM_PROTO_HTTP, 1, 5);
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    run_until(f, &t.calls, t.calls + 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_false(t.last.misconfigured);
}

/* Connection refused never reached the function: an invocation error, not a misconfiguration
 * (the endpoint may be restarting). */
static void test_connection_refused_is_invocation_error(void **state)
{
    fixture *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    esm_function_config fn = {.name = "t",
                              .url = url,
                              .protocol = ESM_PROTO_LAMBDA,
                              .timeout_seconds = 1,
                              .max_concurrency = 1};
    f->inv = esm_invoker_create(f->loop, f->http, &fn, NULL);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    run_until(f, &t.calls, 1);
    close(fd); /* bound, never listening: connections are refused */
    assert_int_equal(t.last.cls, ESM_INVOKE_ERROR);
    assert_false(t.last.misconfigured);
    assert_non_null(strstr(t.last.reason, "transport error"));
}

static void test_queue_and_cancel(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/slow", ESM_PROTO_LAMBDA, 2, 30);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    esm_invocation *calls[5];
    for (int i = 0; i < 5; i++)
        assert_non_null(calls[i] = esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    assert_int_equal(esm_invoker_in_flight(f->inv), 2);
    assert_int_equal(esm_invoker_queued(f->inv), 3);
    esm_invoker_cancel(calls[0]); /* running: the oldest queued one takes its place */
    assert_int_equal(esm_invoker_in_flight(f->inv), 2);
    assert_int_equal(esm_invoker_queued(f->inv), 2);
    esm_invoker_cancel(calls[4]); /* queued */
    assert_int_equal(esm_invoker_in_flight(f->inv), 2);
    assert_int_equal(esm_invoker_queued(f->inv), 1);
    ev_run(f->loop, EVRUN_NOWAIT);
    /* destroying with calls running and queued calls back nothing (ASan checks the frees) */
    esm_invoker_destroy(f->inv);
    f->inv = NULL;
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(t.calls, 0);
    assert_int_equal(esm_http_in_flight(f->http), 0);
}

static void test_fifo_order(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/echo", ESM_PROTO_HTTP, 1, 5);
    tally t = {0};
    call_ctx c[6];
    for (int i = 0; i < 6; i++) {
        c[i] = (call_ctx){.t = &t, .id = i, .f = f};
        assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c[i]));
    }
    assert_int_equal(esm_invoker_in_flight(f->inv), 1);
    assert_int_equal(esm_invoker_queued(f->inv), 5);
    run_until(f, &t.calls, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.order[i], i);
}

static void test_invoke_and_cancel_self_from_callback(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/echo", ESM_PROTO_LAMBDA, 1, 5);
    tally t = {0};
    call_ctx second = {.t = &t, .id = 2, .f = f};
    call_ctx first = {.t = &t, .id = 1, .f = f, .invoke_again = true, .again = &second};
    first.self = esm_invoker_invoke(f->inv, "{}", 2, on_result, &first);
    assert_non_null(first.self);
    run_until(f, &t.calls, 2);
    assert_int_equal(t.order[0], 1);
    assert_int_equal(t.order[1], 2);
    assert_string_equal(t.body, "{\"again\":1}");
}

static void test_destroy_from_callback(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/echo", ESM_PROTO_LAMBDA, 1, 5);
    tally t = {0};
    call_ctx first = {.t = &t, .id = 1, .f = f, .destroy_invoker = true};
    call_ctx rest = {.t = &t, .id = 9, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &first));
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &rest));
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &rest));
    run_until(f, &t.calls, 1);
    assert_null(f->inv);
    ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(t.calls, 1);
}

static void test_payload_cap(void **state)
{
    fixture *f = *state;
    make_invoker(f, "/echo", ESM_PROTO_HTTP, 1, 5);
    size_t n = ESM_INVOKE_MAX_PAYLOAD + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_null(esm_invoker_invoke(f->inv, big, n, on_result, &c));
    assert_int_equal(esm_invoker_queued(f->inv) + esm_invoker_in_flight(f->inv), 0);
    /* exactly 6 MB goes through */
    assert_non_null(esm_invoker_invoke(f->inv, big, n - 1, on_result, &c));
    run_until(f, &t.calls, 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_SUCCESS);
    assert_int_equal(t.last.body_len, n - 1);
    free(big);
}

static void test_bad_url_is_invocation_error(void **state)
{
    fixture *f = *state;
    esm_function_config fn = {
        .name = "t", .url = "notaproto://x", .timeout_seconds = 5, .max_concurrency = 1};
    f->inv = esm_invoker_create(f->loop, f->http, &fn, NULL);
    tally t = {0};
    call_ctx c = {.t = &t, .f = f};
    assert_non_null(esm_invoker_invoke(f->inv, "{}", 2, on_result, &c));
    assert_int_equal(t.calls, 0);
    run_until(f, &t.calls, 1);
    assert_int_equal(t.last.cls, ESM_INVOKE_ERROR);
    assert_non_null(strstr(t.last.reason, "transport error"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_echoes_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_error_and_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_timeout_is_function_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lambda_timeout_is_function_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misconfigured_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_is_invocation_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invoke_and_cancel_self_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url_is_invocation_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
