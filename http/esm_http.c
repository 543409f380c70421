/* curl multi-socket on libev (the shape of curl's evhiperfifo.c example): one ev_io per socket
 * curl hands us, one ev_timer for curl's timeout. Completed transfers are collected with
 * curl_multi_info_read after every socket_action and their callbacks run from there, never from
 * inside a curl callback, so callbacks may send, cancel or destroy freely. */
#include "http/esm_http.h"

#include "common/esm_buf.h"
#include "common/esm_log.h"
#include "http/esm_sigv4.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_MAX_RESPONSE ((size_t)16 * 1024 * 1024)

typedef struct http_sock {
    ev_io io;
    curl_socket_t fd;
    esm_http *http;
    struct http_sock *prev, *next;
} http_sock;

struct esm_http_call {
    esm_http *http;
    CURL *easy;
    esm_http_cb cb;
    void (*release)(void *arg);
    void *arg;
    struct curl_slist *req_headers;
    esm_buf body;
    size_t max_response;
    bool truncated;
    esm_http_header *headers;
    size_t n_headers, cap_headers;
    char errbuf[CURL_ERROR_SIZE];
    ev_tstamp started;
    bool done; /* its callback is running: cancelling it now is a no-op */
    esm_http_call *prev, *next;
};

struct esm_http {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    esm_http_call *calls;
    http_sock *socks;
    size_t n_calls;
    esm_sigv4 *signer;    /* created at the first signed request; keeps the derived keys */
    int dispatching;      /* > 0 while completion callbacks run */
    bool destroy_pending; /* esm_http_destroy was called from a callback */
};

/* Every curl_multi_* result is checked: a failing one means a call or a socket watcher is
 * lost, so it must show in the log with the operation that failed. */
static bool multi_ok(CURLMcode rc, const char *what)
{
    if (rc == CURLM_OK) return true;
    esm_log(ESM_LOG_ERROR, "http", "%s failed: %s", what, curl_multi_strerror(rc));
    return false;
}

static void call_clear_headers(esm_http_call *c)
{
    for (size_t i = 0; i < c->n_headers; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    c->n_headers = 0;
}

static void call_free(esm_http_call *c)
{
    if (c->easy) curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->req_headers);
    esm_buf_free(&c->body);
    call_clear_headers(c);
    free(c->headers);
    free(c);
}

static void call_unlink(esm_http_call *c)
{
    esm_http *h = c->http;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    h->n_calls--;
}

/* Detaches a call from curl and from the list, then frees it. */
/* Ends a call that will get no callback (cancelled, or the client destroyed). */
static void call_end(esm_http_call *c)
{
    multi_ok(curl_multi_remove_handle(c->http->multi, c->easy), "curl_multi_remove_handle");
    call_unlink(c);
    if (c->release) c->release(c->arg);
    call_free(c);
}

static void http_free(esm_http *h)
{
    while (h->calls)
        call_end(h->calls);
    ev_timer_stop(h->loop, &h->timer);
    multi_ok(curl_multi_cleanup(h->multi), "curl_multi_cleanup");
    esm_sigv4_destroy(h->signer);
    /* curl may keep sockets it never reported as removed; stop their watchers. */
    while (h->socks) {
        http_sock *s = h->socks;
        ev_io_stop(h->loop, &s->io);
        h->socks = s->next;
        free(s);
    }
    free(h);
}

static void dispatch_done(esm_http *h, esm_http_call *c, CURLcode code)
{
    esm_http_response r;
    memset(&r, 0, sizeof r);
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    r.status = status;
    r.curl_code = (int)code;
    r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    long request_bytes = 0; /* 0 until the request head went out on a connection */
    curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &request_bytes);
    r.request_sent = request_bytes > 0;
    r.body_truncated = c->truncated;
    if (code != CURLE_OK) {
        const char *msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
        if (c->truncated) msg = "response exceeded max_response_bytes";
        snprintf(r.error, sizeof r.error, "%s", msg);
    }
    if (c->body.failed) {
        r.curl_code = CURLE_OUT_OF_MEMORY;
        snprintf(r.error, sizeof r.error, "out of memory buffering the response");
    }
    r.body = esm_buf_cstr(&c->body);
    if (!r.body) r.body = "";
    r.body_len = c->body.len;
    r.total_ms = (ev_time() - c->started) * 1000.0;
    if (r.total_ms < 0) r.total_ms = 0;
    r.headers = c->headers;
    r.n_headers = c->n_headers;

    multi_ok(curl_multi_remove_handle(h->multi, c->easy), "curl_multi_remove_handle");
    call_unlink(c);
    c->done = true;
    if (c->cb) c->cb(&r, c->arg);
    call_free(c);
}

static void check_multi_info(esm_http *h)
{
    CURLMsg *msg;
    int left;
    h->dispatching++;
    while (!h->destroy_pending && (msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        esm_http_call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c) dispatch_done(h, c, msg->data.result);
    }
    h->dispatching--;
    if (h->dispatching == 0 && h->destroy_pending) http_free(h);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_http *h = w->data;
    int running;
    multi_ok(curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running),
             "curl_multi_socket_action(timeout)");
    check_multi_info(h);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    http_sock *s = w->data;
    esm_http *h = s->http;
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    multi_ok(curl_multi_socket_action(h->multi, s->fd, action, &running),
             "curl_multi_socket_action");
    check_multi_info(h);
}

/* CURLMOPT_TIMERFUNCTION: timeout_ms is milliseconds; -1 deletes the timer; 0 means "act now",
 * which we do from a zero-delay timer rather than recursively from inside curl. */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    esm_http *h = userp;
    ev_timer_stop(h->loop, &h->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&h->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(h->loop, &h->timer);
    }
    return 0;
}

static int multi_sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
    (void)easy;
    esm_http *h = userp;
    http_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(h->loop, &s->io);
            if (s->prev)
                s->prev->next = s->next;
            else
                h->socks = s->next;
            if (s->next) s->next->prev = s->prev;
            free(s);
            multi_ok(curl_multi_assign(h->multi, fd, NULL), "curl_multi_assign");
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->fd = fd;
        s->http = h;
        s->next = h->socks;
        if (h->socks) h->socks->prev = s;
        h->socks = s;
        ev_init(&s->io, io_cb);
        s->io.data = s;
        multi_ok(curl_multi_assign(h->multi, fd, s), "curl_multi_assign");
    }
    int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    ev_io_stop(h->loop, &s->io);
    ev_io_set(&s->io, fd, events);
    ev_io_start(h->loop, &s->io);
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    esm_http_call *c = userdata;
    size_t n = size * nmemb;
    if (c->body.len + n > c->max_response) {
        c->truncated = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    esm_buf_append(&c->body, ptr, n);
    return c->body.failed ? 0 : n;
}

static char *dup_trimmed(const char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Keeps the headers of the final response only: a status line starts a new header set
 * (after 100-continue, redirects or proxy CONNECT responses). */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    esm_http_call *c = userdata;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        call_clear_headers(c);
        c->body.len = 0; /* an interim response's body (rare) is not the answer */
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon) return n; /* blank line at the end of the headers */
    if (c->n_headers == c->cap_headers) {
        size_t cap = c->cap_headers ? c->cap_headers * 2 : 16;
        esm_http_header *nh = realloc(c->headers, cap * sizeof *nh);
        if (!nh) return 0;
        c->headers = nh;
        c->cap_headers = cap;
    }
    char *name = dup_trimmed(buf, (size_t)(colon - buf));
    char *value = dup_trimmed(colon + 1, n - (size_t)(colon - buf) - 1);
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    c->headers[c->n_headers].name = name;
    c->headers[c->n_headers].value = value;
    c->n_headers++;
    return n;
}

esm_http *esm_http_create(struct ev_loop *loop)
{
    static bool global_done;
    if (!global_done) {
        /* Idempotent in practice; curl_global_init is not thread-safe before 7.84, so every
         * loop thread must be started after the first create. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
        global_done = true;
    }
    esm_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return NULL;
    }
    ev_init(&h->timer, timer_cb);
    h->timer.data = h;
    /* Keep idle keep-alive connections for reuse beyond curl's 4-per-handle default. */
    if (!multi_ok(curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb), "setopt") ||
        !multi_ok(curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h), "setopt") ||
        !multi_ok(curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb), "setopt") ||
        !multi_ok(curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h), "setopt") ||
        !multi_ok(curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L), "setopt")) {
        curl_multi_cleanup(h->multi);
        free(h);
        return NULL;
    }
    return h;
}

void esm_http_destroy(esm_http *h)
{
    if (!h) return;
    if (h->dispatching > 0) {
        /* Called from a completion callback: cancel everything now, free on the way out. */
        while (h->calls)
            call_end(h->calls);
        h->destroy_pending = true;
        return;
    }
    http_free(h);
}

static bool append_header(esm_http_call *c, const char *line)
{
    struct curl_slist *l = curl_slist_append(c->req_headers, line);
    if (!l) return false;
    c->req_headers = l;
    return true;
}

/* Adds the Authorization and X-Amz-Date headers, signed at the wall-clock time of sending. */
static bool sign_request(esm_http *h, esm_http_call *c, const esm_http_request *req,
                         const char *method, bool has_body)
{
    if (!h->signer && !(h->signer = esm_sigv4_create())) {
        ESM_ERROR("http", "cannot set up SigV4 signing (OpenSSL)");
        return false;
    }
    esm_sigv4_input in = {
        .method = method,
        .url = req->url,
        .headers = c->req_headers,
        .body = has_body ? req->body : NULL,
        .body_len = has_body ? req->body_len : 0,
        .scope = req->aws_sigv4,
        .access_key_id = req->aws_access_key_id,
        .secret_access_key = req->aws_secret_access_key,
        .now = time(NULL),
    };
    esm_sigv4_output out;
    if (!esm_sigv4_sign(h->signer, &in, &out)) {
        ESM_ERROR("http", "cannot sign the request to %s: %s", req->url, out.error);
        return false;
    }
    if (out.date_header && !append_header(c, out.date_header)) return false;
    if (out.authorization && !append_header(c, out.authorization)) return false;
    return true;
}

esm_http_call *esm_http_send(esm_http *h, const esm_http_request *req)
{
    if (!h || !req || !req->url || h->destroy_pending) {
        if (req) curl_slist_free_all(req->headers);
        return NULL;
    }
    esm_http_call *c = calloc(1, sizeof *c);
    if (!c) {
        curl_slist_free_all(req->headers);
        return NULL;
    }
    c->http = h;
    c->cb = req->cb;
    c->release = req->release;
    c->arg = req->arg;
    c->req_headers = req->headers;
    c->max_response = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE;
    esm_buf_init(&c->body);
    c->easy = curl_easy_init();
    if (!c->easy) goto fail;

    CURL *e = c->easy;
    const char *method = req->method ? req->method : "POST";
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    if (req->timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);

    bool has_body = req->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    if (strcmp(method, "GET") == 0 && !req->body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        has_body = false;
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        has_body = false;
    } else {
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (has_body) {
        /* curl sends a body above 64 KB one upload buffer (64 KB) per writable event, each a
         * turn of the loop: a 400 KB batch took ~7 turns (bench: 8 ms per invoke). One buffer for
         * the whole body, up to curl's 2 MB maximum. */
        if (req->body_len > 65536)
            curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE,
                             (long)(req->body_len < 2097152 ? req->body_len : 2097152));
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        /* No "Expect: 100-continue": it stalls large POSTs for a second on peers that ignore it. */
        struct curl_slist *l = curl_slist_append(c->req_headers, "Expect:");
        if (!l) goto fail;
        c->req_headers = l;
    }
    /* Signed here rather than with CURLOPT_AWS_SIGV4: curl derives the key and fetches the
     * OpenSSL algorithms on every request (bench finding S1); the signer caches both. */
    if (req->aws_sigv4 && !sign_request(h, c, req, method, has_body)) goto fail;
    if (c->req_headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->req_headers);

    c->started = ev_time();
    if (!multi_ok(curl_multi_add_handle(h->multi, e), "curl_multi_add_handle")) goto fail;
    c->next = h->calls;
    if (h->calls) h->calls->prev = c;
    h->calls = c;
    h->n_calls++;
    return c;

fail:
    call_free(c);
    return NULL;
}

void esm_http_cancel(esm_http_call *c)
{
    if (!c || c->done) return;
    call_end(c);
}

size_t esm_http_in_flight(const esm_http *h)
{
    return h ? h->n_calls : 0;
}

const char *esm_http_response_header(const esm_http_response *resp, const char *name)
{
    if (!resp || !name) return NULL;
    for (size_t i = 0; i < resp->n_headers; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0) return resp->headers[i].value;
    return NULL;
}
