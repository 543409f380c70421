/* esmd's timeout is a function timeout only once the function had the whole request
 * (docs/design.md "Invocation outcomes"). In-process fault servers do what no real peer does on
 * demand: a proxy that never answers CONNECT, a proxy that wants credentials, an endpoint that
 * reads the request head and never the body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http/esm_http.h"
#include "invoker/esm_invoker.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum {
    FAULT_HOLD,     /* reads the request head, then neither reads nor answers */
    FAULT_PROXY407, /* answers the CONNECT with 407 */
} fault_mode;

typedef struct {
    int listen_fd;
    int stop[2]; /* a byte on stop[1] ends the server */
    int port;
    fault_mode mode;
    pthread_t thread;
} fault_server;

static const char proxy_407[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
                                "Proxy-Authenticate: Basic realm=\"esmd-test\"\r\n"
                                "Content-Length: 0\r\n\r\n";

static void read_head(int fd)
{
    char buf[4096];
    size_t have = 0;
    while (have + 1 < sizeof buf) {
        ssize_t n = recv(fd, buf + have, 1, 0); /* byte by byte: leave the body unread */
        if (n <= 0) return;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n")) return;
    }
}

static void *fault_thread(void *arg)
{
    fault_server *s = arg;
    int conns[8], n_conns = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->stop[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents) break;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        read_head(fd);
        if (s->mode == FAULT_PROXY407) send(fd, proxy_407, sizeof proxy_407 - 1, MSG_NOSIGNAL);
        if (n_conns < 8)
            conns[n_conns++] = fd;
        else
            close(fd);
    }
    for (int i = 0; i < n_conns; i++)
        close(conns[i]);
    return NULL;
}

static fault_server *fault_start(fault_mode mode)
{
    fault_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->mode = mode;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    /* A tiny receive window: a body the server does not read cannot all go out. */
    int small = 4096;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(s->listen_fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(listen(s->listen_fd, 8), 0);
    assert_int_equal(pipe(s->stop), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, fault_thread, s), 0);
    return s;
}

static void fault_stop(fault_server *s)
{
    (void)!write(s->stop[1], "x", 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->stop[0]);
    close(s->stop[1]);
    free(s);
}

typedef struct {
    int calls;
    esm_invoke_result last;
} tally;

static void on_result(const esm_invoke_result *r, void *arg)
{
    tally *t = arg;
    t->calls++;
    t->last = *r;
    t->last.body = NULL;
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(bool *)w->data = true;
    ev_break(loop, EVBREAK_ALL);
}

/* Invokes url once with an event of len bytes and returns the result. */
static tally invoke_once(char *url, esm_protocol proto, size_t len)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    esm_http *http = esm_http_create(loop);
    esm_function_config fn = {
        .name = "t", .url = url, .protocol = proto, .timeout_seconds = 1, .max_concurrency = 1};
    esm_invoker *inv = esm_invoker_create(loop, http, &fn, NULL);
    assert_non_null(inv);
    char *event = malloc(len);
    assert_non_null(event);
    memset(event, ' ', len);
    event[0] = '{';
    event[len - 1] = '}';
    tally t = {0};
    assert_non_null(esm_invoker_invoke(inv, event, len, on_result, &t));
    bool expired = false;
    ev_timer deadline;
    ev_timer_init(&deadline, deadline_cb, 20., 0.);
    deadline.data = &expired;
    ev_timer_start(loop, &deadline);
    while (t.calls < 1 && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &deadline);
    assert_false(expired);
    esm_invoker_destroy(inv);
    esm_http_destroy(http);
    ev_loop_destroy(loop);
    free(event);
    return t;
}

static void use_proxy(int port)
{
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);
    setenv("https_proxy", proxy, 1);
    unsetenv("HTTPS_PROXY");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
}

/* A proxy that never answers the CONNECT: the function never saw the request, so the timeout
 * is an invocation error (retried, not counted), never a function timeout that would discard
 * the records after MaximumRetryAttempts. */
static void test_proxy_connect_timeout_is_invocation_error(void **state)
{
    (void)state;
    fault_server *s = fault_start(FAULT_HOLD);
    use_proxy(s->port);
    char url[] = "https://function.invalid/2015-03-31/functions/f/invocations";
    tally t = invoke_once(url, ESM_PROTO_HTTP, 64);
    unsetenv("https_proxy");
    fault_stop(s);
    assert_int_equal(t.last.cls, ESM_INVOKE_ERROR);
    assert_false(t.last.misconfigured);
    assert_non_null(strstr(t.last.reason, "transport error"));
}

/* An endpoint that took the request head but not the body never had the event: the function
 * cannot have run, so the timeout is an invocation error. */
static void test_body_not_sent_timeout_is_invocation_error(void **state)
{
    (void)state;
    /* The event must not fit into the kernel's largest send buffer plus the tiny window. */
    const size_t len = 6000000;
    long wmem_max = 0;
    FILE *fp = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (fp) {
        if (fscanf(fp, "%*d %*d %ld", &wmem_max) != 1) wmem_max = 0;
        fclose(fp);
    }
    if (wmem_max <= 0 || (size_t)wmem_max > len - 1000000) {
        print_message("tcp_wmem's maximum (%ld) would take the whole event: skipped\n", wmem_max);
        skip();
    }
    fault_server *s = fault_start(FAULT_HOLD);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/f", s->port);
    tally t = invoke_once(url, ESM_PROTO_HTTP, len);
    fault_stop(s);
    assert_int_equal(t.last.cls, ESM_INVOKE_ERROR);
    assert_false(t.last.misconfigured);
    assert_non_null(strstr(t.last.reason, "transport error"));
}

/* An HTTPS function behind a proxy that wants credentials: the 407 answers the CONNECT (curl
 * reports no HTTP status, only an error), and it is esmd's proxy setting that is wrong. */
static void test_proxy_407_on_connect_is_misconfigured(void **state)
{
    (void)state;
    fault_server *s = fault_start(FAULT_PROXY407);
    use_proxy(s->port);
    char url[] = "https://function.invalid/2015-03-31/functions/f/invocations";
    tally t = invoke_once(url, ESM_PROTO_LAMBDA, 64);
    unsetenv("https_proxy");
    fault_stop(s);
    assert_int_equal(t.last.cls, ESM_INVOKE_ERROR);
    assert_true(t.last.misconfigured);
    assert_non_null(strstr(t.last.reason, "407"));
    assert_non_null(strstr(t.last.reason, "esmd is misconfigured"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_connect_timeout_is_invocation_error),
        cmocka_unit_test(test_body_not_sent_timeout_is_invocation_error),
        cmocka_unit_test(test_proxy_407_on_connect_is_misconfigured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
