/* esm_http against a tiny HTTP/1.1 server running in a thread of this test (loopback only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/esm_http.h"
#include "tests/unit/http_test_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- harness -------------------------------------------------------------------------- */

typedef struct {
    struct ev_loop *loop;
    esm_http *http;
    test_server *srv;
    char url[128];
} fixture;

typedef struct {
    int calls;
    long status;
    int curl_code;
    bool timed_out;
    bool truncated;
    char body[4096];
    size_t body_len;
    char hdr_test[64];
    char hdr_conn[16];
    bool has_interim;
    char hdr_final[16];
    /* actions run inside the callback */
    esm_http_call *cancel_other;
    esm_http *destroy_http;
    fixture *send_again;
    int *done_counter;
} result;

static void on_done(const esm_http_response *r, void *arg)
{
    result *res = arg;
    res->calls++;
    res->status = r->status;
    res->curl_code = r->curl_code;
    res->timed_out = r->timed_out;
    res->truncated = r->body_truncated;
    res->body_len = r->body_len;
    assert_non_null(r->body);
    assert_int_equal(r->body[r->body_len], '\0');
    memcpy(res->body, r->body, r->body_len < sizeof res->body - 1 ? r->body_len : 4095);
    const char *h = esm_http_response_header(r, "X-TEST-HEADER");
    if (h) snprintf(res->hdr_test, sizeof res->hdr_test, "%s", h);
    h = esm_http_response_header(r, "x-conn");
    if (h) snprintf(res->hdr_conn, sizeof res->hdr_conn, "%s", h);
    res->has_interim = esm_http_response_header(r, "X-Interim") != NULL;
    h = esm_http_response_header(r, "X-Final");
    if (h) snprintf(res->hdr_final, sizeof res->hdr_final, "%s", h);
    if (res->cancel_other) esm_http_cancel(res->cancel_other);
    if (res->destroy_http) esm_http_destroy(res->destroy_http);
    if (res->done_counter) (*res->done_counter)++;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    assert_non_null(f->http);
    f->srv = server_start();
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->srv->port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->http) esm_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    server_stop(f->srv);
    free(f);
    return 0;
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until *counter reaches want; fails after 10 s. */
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

static esm_http_call *send_req(fixture *f, const char *path, const char *body, long timeout_ms,
                               size_t max_resp, result *res)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    esm_http_request req = {.url = url,
                            .body = body,
                            .body_len = body ? strlen(body) : 0,
                            .headers = curl_slist_append(NULL, "Content-Type: application/json"),
                            .timeout_ms = timeout_ms,
                            .max_response_bytes = max_resp,
                            .cb = on_done,
                            .arg = res};
    return esm_http_send(f->http, &req);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_post_echo(void **state)
{
    fixture *f = *state;
    result r = {0};
    assert_non_null(send_req(f, "/echo", "{\"hello\":1}", 5000, 0, &r));
    assert_int_equal(esm_http_in_flight(f->http), 1);
    run_until(f, &r.calls, 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.curl_code, 0);
    assert_string_equal(r.body, "{\"hello\":1}");
    assert_string_equal(r.hdr_test, "yes"); /* case-insensitive lookup, value trimmed */
    assert_int_equal(esm_http_in_flight(f->http), 0);
}

static void test_no_expect_header_and_content_type(void **state)
{
    fixture *f = *state;
    result r = {0};
    /* a body over 1 KB is where curl would add Expect: 100-continue */
    char *big = malloc(200000);
    memset(big, 'a', 199999);
    big[199999] = '\0';
    char url[256];
    snprintf(url, sizeof url, "%s/headers", f->url);
    esm_http_request req = {.url = url,
                            .body = big,
                            .body_len = strlen(big),
                            .headers = curl_slist_append(NULL, "Content-Type: application/json"),
                            .cb = on_done,
                            .arg = &r};
    assert_non_null(esm_http_send(f->http, &req));
    run_until(f, &r.calls, 1);
    assert_int_equal(r.status, 200);
    assert_null(strcasestr(r.body, "Expect:"));
    assert_non_null(strstr(r.body, "Content-Type: application/json"));
    assert_non_null(strstr(r.body, "Content-Length: 199999"));
    free(big);
}

static void test_final_headers_only(void **state)
{
    fixture *f = *state;
    result r = {0};
    assert_non_null(send_req(f, "/continue", "{}", 5000, 0, &r));
    run_until(f, &r.calls, 1);
    assert_int_equal(r.status, 201);
    assert_false(r.has_interim);
    assert_string_equal(r.hdr_final, "1");
    assert_string_equal(r.body, "done");
}

static void test_truncated(void **state)
{
    fixture *f = *state;
    result r = {0};
    assert_non_null(send_req(f, "/big", "{}", 5000, 1000, &r));
    run_until(f, &r.calls, 1);
    assert_true(r.truncated);
    assert_int_not_equal(r.curl_code, 0);
    assert_true(r.body_len <= 1000);

    result ok = {0};
    assert_non_null(send_req(f, "/big", "{}", 5000, 100000, &ok)); /* exactly at the cap */
    run_until(f, &ok.calls, 1);
    assert_false(ok.truncated);
    assert_int_equal(ok.curl_code, 0);
    assert_int_equal(ok.body_len, 100000);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    result r = {0};
    assert_non_null(send_req(f, "/slow", "{}", 200, 0, &r));
    run_until(f, &r.calls, 1);
    assert_true(r.timed_out);
    assert_int_equal(r.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.status, 0);
}

static void test_connection_refused(void **state)
{
    fixture *f = *state;
    /* bind then close a socket to get a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", ntohs(a.sin_port));
    result r = {0};
    esm_http_request req = {.url = url, .body = "{}", .body_len = 2, .cb = on_done, .arg = &r};
    assert_non_null(esm_http_send(f->http, &req));
    run_until(f, &r.calls, 1);
    assert_int_equal(r.curl_code, CURLE_COULDNT_CONNECT);
    assert_int_equal(r.status, 0);
    assert_false(r.timed_out);
}

static void test_keepalive_reuse(void **state)
{
    fixture *f = *state;
    char first[16] = "";
    for (int i = 0; i < 5; i++) {
        result r = {0};
        assert_non_null(send_req(f, "/echo", "{}", 5000, 0, &r));
        run_until(f, &r.calls, 1);
        assert_int_equal(r.status, 200);
        if (i == 0)
            snprintf(first, sizeof first, "%s", r.hdr_conn);
        else
            assert_string_equal(r.hdr_conn, first);
    }
    assert_int_equal(atomic_load(&f->srv->connections), 1);
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    result slow = {0}, fast = {0};
    esm_http_call *c = send_req(f, "/slow", "{}", 0, 0, &slow);
    assert_non_null(c);
    assert_non_null(send_req(f, "/echo", "{}", 5000, 0, &fast));
    assert_int_equal(esm_http_in_flight(f->http), 2);
    esm_http_cancel(c);
    assert_int_equal(esm_http_in_flight(f->http), 1);
    run_until(f, &fast.calls, 1);
    assert_int_equal(slow.calls, 0);
    assert_int_equal(esm_http_in_flight(f->http), 0);
}

static void test_cancel_from_callback(void **state)
{
    fixture *f = *state;
    result slow = {0}, fast = {0};
    esm_http_call *c = send_req(f, "/slow", "{}", 0, 0, &slow);
    fast.cancel_other = c;
    assert_non_null(send_req(f, "/echo", "{}", 5000, 0, &fast));
    run_until(f, &fast.calls, 1);
    assert_int_equal(slow.calls, 0);
    assert_int_equal(esm_http_in_flight(f->http), 0);
}

static void test_destroy_from_callback(void **state)
{
    fixture *f = *state;
    result slow = {0}, fast = {0};
    assert_non_null(send_req(f, "/slow", "{}", 0, 0, &slow));
    fast.destroy_http = f->http;
    assert_non_null(send_req(f, "/echo", "{}", 5000, 0, &fast));
    run_until(f, &fast.calls, 1);
    f->http = NULL; /* destroyed inside the callback (ASan checks the deferred free) */
    assert_int_equal(slow.calls, 0);
}

static void test_destroy_with_calls_in_flight(void **state)
{
    fixture *f = *state;
    result slow = {0};
    assert_non_null(send_req(f, "/slow", "{}", 0, 0, &slow));
    ev_run(f->loop, EVRUN_NOWAIT);
    esm_http_destroy(f->http);
    f->http = NULL;
    assert_int_equal(slow.calls, 0);
}

static void test_many_concurrent(void **state)
{
    fixture *f = *state;
    enum { N = 50 };
    static result rs[N];
    int done = 0;
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < N; i++) {
        rs[i].done_counter = &done;
        assert_non_null(send_req(f, "/echo", "{\"n\":1}", 5000, 0, &rs[i]));
    }
    run_until(f, &done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].status, 200);
    }
}

static void test_sigv4(void **state)
{
    fixture *f = *state;
    result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/headers", f->url);
    esm_http_request req = {.url = url,
                            .body = "{}",
                            .body_len = 2,
                            .headers = curl_slist_append(NULL, "Content-Type: application/json"),
                            .aws_sigv4 = "aws:amz:us-east-1:lambda",
                            .aws_access_key_id = "AKIDEXAMPLE",
                            .aws_secret_access_key = "secret",
                            .cb = on_done,
                            .arg = &r};
    assert_non_null(esm_http_send(f->http, &req));
    run_until(f, &r.calls, 1);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Authorization: AWS4-HMAC-SHA256 "
                                   "Credential=AKIDEXAMPLE/"));
    assert_non_null(strstr(r.body, "/us-east-1/lambda/aws4_request"));
    assert_non_null(strcasestr(r.body, "X-Amz-Date: "));
}

static void test_get_and_404(void **state)
{
    fixture *f = *state;
    result r = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/nothing", f->url);
    esm_http_request req = {.method = "GET", .url = url, .cb = on_done, .arg = &r};
    assert_non_null(esm_http_send(f->http, &req));
    run_until(f, &r.calls, 1);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.body_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_expect_header_and_content_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_headers_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_calls_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_and_404, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
