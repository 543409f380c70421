/* One function's invoker: a FIFO queue in front of at most max_concurrency HTTP calls. */
#include "invoker/esm_invoker.h"

#include "common/esm_log.h"
#include "common/esm_time.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { CALL_QUEUED, CALL_RUNNING, CALL_FAILED_START, CALL_DONE } call_state;

struct esm_invocation {
    esm_invoker *inv;
    const char *payload;
    size_t len;
    esm_invoke_cb cb;
    void *arg;
    call_state state;
    esm_http_call *http_call;
    esm_invocation *prev, *next; /* in the queue, running or failed list */
};

typedef struct {
    esm_invocation *head, *tail;
    size_t n;
} call_list;

struct esm_invoker {
    struct ev_loop *loop;
    esm_http *http;
    char *name;
    char *url;
    esm_protocol protocol;
    long timeout_ms;
    size_t max_concurrency;
    char **headers; /* "Name: value" lines */
    size_t n_headers;
    bool has_content_type;
    char *sigv4; /* "aws:amz:<region>:lambda" or NULL */
    char *access_key_id, *secret_access_key, *session_token_header;
    call_list queued, running, failed;
    ev_timer failed_timer; /* delivers start failures outside esm_invoker_invoke */
    int dispatching;
    bool destroy_pending;
};

static void list_push(call_list *l, esm_invocation *c)
{
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
}

static void list_remove(call_list *l, esm_invocation *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (!s) return;
    memset(s, 0, strlen(s));
    free(s);
}

static void invoker_free(esm_invoker *inv)
{
    ev_timer_stop(inv->loop, &inv->failed_timer);
    free(inv->name);
    free(inv->url);
    for (size_t i = 0; i < inv->n_headers; i++)
        free(inv->headers[i]);
    free(inv->headers);
    free(inv->sigv4);
    free(inv->access_key_id);
    free_secret(inv->secret_access_key);
    free_secret(inv->session_token_header);
    free(inv);
}

esm_invoker *esm_invoker_create(struct ev_loop *loop, esm_http *http, const esm_function_config *fn,
                                const esm_aws_credentials *creds)
{
    if (!loop || !http || !fn || !fn->url) return NULL;
    esm_invoker *inv = calloc(1, sizeof *inv);
    if (!inv) return NULL;
    inv->loop = loop;
    inv->http = http;
    inv->name = strdup(fn->name ? fn->name : "function");
    inv->url = strdup(fn->url);
    inv->protocol = fn->protocol;
    inv->timeout_ms = (fn->timeout_seconds > 0 ? fn->timeout_seconds : 30) * 1000L;
    inv->max_concurrency = fn->max_concurrency > 0 ? (size_t)fn->max_concurrency : 10;
    bool ok = inv->name && inv->url;
    if (fn->n_headers) {
        inv->headers = calloc(fn->n_headers, sizeof *inv->headers);
        ok = ok && inv->headers;
        for (size_t i = 0; ok && i < fn->n_headers; i++) {
            const esm_kv *h = &fn->headers[i];
            size_t n = strlen(h->name) + strlen(h->value ? h->value : "") + 3;
            inv->headers[i] = malloc(n);
            if (!inv->headers[i]) {
                ok = false;
                break;
            }
            inv->n_headers++;
            /* "Name;" is curl's way of sending a header with an empty value. */
            if (h->value && h->value[0])
                snprintf(inv->headers[i], n, "%s: %s", h->name, h->value);
            else
                snprintf(inv->headers[i], n, "%s;", h->name);
            if (strcasecmp(h->name, "Content-Type") == 0) inv->has_content_type = true;
        }
    }
    if (ok && creds && creds->access_key_id && creds->access_key_id[0]) {
        const char *region = creds->region && creds->region[0] ? creds->region : "us-east-1";
        size_t n = strlen(region) + 32;
        inv->sigv4 = malloc(n);
        if (inv->sigv4) snprintf(inv->sigv4, n, "aws:amz:%s:lambda", region);
        inv->access_key_id = strdup(creds->access_key_id);
        inv->secret_access_key =
            dup_or_null(creds->secret_access_key ? creds->secret_access_key : "");
        ok = inv->sigv4 && inv->access_key_id && inv->secret_access_key;
        if (ok && creds->session_token && creds->session_token[0]) {
            size_t tn = strlen(creds->session_token) + 32;
            inv->session_token_header = malloc(tn);
            if (inv->session_token_header)
                snprintf(inv->session_token_header, tn, "X-Amz-Security-Token: %s",
                         creds->session_token);
            ok = inv->session_token_header != NULL;
        }
    }
    ev_init(&inv->failed_timer, NULL);
    if (!ok) {
        invoker_free(inv);
        return NULL;
    }
    return inv;
}

static void fill_result_headers(esm_invoke_result *r, const esm_http_response *resp)
{
    const char *v = resp ? esm_http_response_header(resp, "X-Amz-Executed-Version") : NULL;
    snprintf(r->executed_version, sizeof r->executed_version, "%s", v && v[0] ? v : "$LATEST");
    v = resp ? esm_http_response_header(resp, "X-Amzn-RequestId") : NULL;
    if (!v && resp) v = esm_http_response_header(resp, "X-Amz-Request-Id");
    if (!v && resp) v = esm_http_response_header(resp, "X-Request-Id");
    if (v && v[0]) {
        snprintf(r->request_id, sizeof r->request_id, "%s", v);
    } else {
        char uuid[37];
        esm_uuid4(uuid);
        snprintf(r->request_id, sizeof r->request_id, "%s", uuid);
    }
}

static void pump(esm_invoker *inv);

/* Runs the user's callback for a call already removed from every list, then frees it. */
static void deliver(esm_invoker *inv, esm_invocation *c, const esm_invoke_result *r)
{
    c->state = CALL_DONE;
    inv->dispatching++;
    if (c->cb) c->cb(r, c->arg);
    inv->dispatching--;
    free(c);
}

static void finish_dispatch(esm_invoker *inv)
{
    if (inv->dispatching > 0) return;
    if (inv->destroy_pending) {
        invoker_free(inv);
        return;
    }
    pump(inv);
}

static void on_http_done(const esm_http_response *resp, void *arg)
{
    esm_invocation *c = arg;
    esm_invoker *inv = c->inv;
    list_remove(&inv->running, c);
    c->http_call = NULL;

    esm_invoke_result r;
    memset(&r, 0, sizeof r);
    r.status = resp->status;
    r.body = resp->body ? resp->body : "";
    r.body_len = resp->body_len;
    r.latency_ms = resp->total_ms;
    r.retry_after_ms = -1;
    esm_invoke_wire w = {
        .protocol = inv->protocol,
        .status = resp->status,
        .function_error = esm_http_response_header(resp, "X-Amz-Function-Error"),
        .curl_code = resp->curl_code,
        .timed_out = resp->timed_out,
        .request_sent = resp->request_sent,
        .body_truncated = resp->body_truncated,
        .timeout_ms = inv->protocol == ESM_PROTO_LAMBDA
                          ? inv->timeout_ms + ESM_INVOKE_LAMBDA_MARGIN_MS
                          : inv->timeout_ms,
        .transport_error = resp->error,
    };
    esm_invoke_classify(&w, &r);
    if (r.cls == ESM_INVOKE_THROTTLE)
        r.retry_after_ms =
            esm_invoke_parse_retry_after(esm_http_response_header(resp, "Retry-After"));
    fill_result_headers(&r, resp);
    if (r.cls != ESM_INVOKE_SUCCESS)
        ESM_DEBUG(inv->name, "invoke %s: %s (%s, %.1f ms)", r.request_id,
                  esm_invoke_class_name(r.cls), r.reason, r.latency_ms);
    deliver(inv, c, &r);
    finish_dispatch(inv);
}

static void on_failed_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_invoker *inv = w->data;
    inv->dispatching++;
    esm_invocation *c;
    while (!inv->destroy_pending && (c = inv->failed.head)) {
        list_remove(&inv->failed, c);
        esm_invoke_result r;
        memset(&r, 0, sizeof r);
        r.cls = ESM_INVOKE_ERROR;
        r.body = "";
        r.retry_after_ms = -1;
        snprintf(r.reason, sizeof r.reason, "could not start the HTTP request");
        fill_result_headers(&r, NULL);
        deliver(inv, c, &r);
    }
    inv->dispatching--;
    finish_dispatch(inv);
}

static struct curl_slist *build_headers(const esm_invoker *inv)
{
    struct curl_slist *l = NULL, *t;
#define ADD(line)                                                                                  \
    do {                                                                                           \
        t = curl_slist_append(l, line);                                                            \
        if (!t) goto fail;                                                                         \
        l = t;                                                                                     \
    } while (0)
    if (!inv->has_content_type) ADD("Content-Type: application/json");
    if (inv->protocol == ESM_PROTO_LAMBDA) ADD("X-Amz-Invocation-Type: RequestResponse");
    if (inv->session_token_header) ADD(inv->session_token_header);
    for (size_t i = 0; i < inv->n_headers; i++)
        ADD(inv->headers[i]);
#undef ADD
    return l;
fail:
    curl_slist_free_all(l);
    return NULL;
}

static bool start_call(esm_invoker *inv, esm_invocation *c)
{
    struct curl_slist *headers = build_headers(inv);
    if (!headers) return false;
    long timeout = inv->timeout_ms;
    if (inv->protocol == ESM_PROTO_LAMBDA) timeout += ESM_INVOKE_LAMBDA_MARGIN_MS;
    esm_http_request req = {
        .method = "POST",
        .url = inv->url,
        .body = c->payload,
        .body_len = c->len,
        .headers = headers, /* owned by the call from here on */
        .timeout_ms = timeout,
        .connect_timeout_ms = timeout < 10000 ? timeout : 10000,
        .max_response_bytes = ESM_INVOKE_MAX_PAYLOAD,
        .aws_sigv4 = inv->sigv4,
        .aws_access_key_id = inv->access_key_id,
        .aws_secret_access_key = inv->secret_access_key,
        .cb = on_http_done,
        .arg = c,
    };
    c->http_call = esm_http_send(inv->http, &req);
    return c->http_call != NULL;
}

/* Starts queued calls, oldest first, while there is room. */
static void pump(esm_invoker *inv)
{
    while (inv->queued.head && inv->running.n < inv->max_concurrency) {
        esm_invocation *c = inv->queued.head;
        list_remove(&inv->queued, c);
        if (start_call(inv, c)) {
            c->state = CALL_RUNNING;
            list_push(&inv->running, c);
        } else {
            ESM_WARN(inv->name, "could not start an HTTP request to %s", inv->url);
            c->state = CALL_FAILED_START;
            list_push(&inv->failed, c);
            if (!ev_is_active(&inv->failed_timer)) {
                ev_timer_init(&inv->failed_timer, on_failed_timer, 0., 0.);
                inv->failed_timer.data = inv;
                ev_timer_start(inv->loop, &inv->failed_timer);
            }
        }
    }
}

esm_invocation *esm_invoker_invoke(esm_invoker *inv, const char *payload, size_t len,
                                   esm_invoke_cb cb, void *arg)
{
    if (!inv || inv->destroy_pending || !payload) return NULL;
    if (!esm_invoke_payload_fits(len)) {
        ESM_WARN(inv->name, "payload of %zu bytes exceeds the %zu byte limit", len,
                 ESM_INVOKE_MAX_PAYLOAD);
        return NULL;
    }
    esm_invocation *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->inv = inv;
    c->payload = payload;
    c->len = len;
    c->cb = cb;
    c->arg = arg;
    c->state = CALL_QUEUED;
    list_push(&inv->queued, c);
    /* From inside a callback the queue is pumped once the callback returns. */
    if (inv->dispatching == 0) pump(inv);
    return c;
}

void esm_invoker_cancel(esm_invocation *c)
{
    if (!c) return;
    esm_invoker *inv = c->inv;
    switch (c->state) {
    case CALL_DONE:
        return; /* its callback is running */
    case CALL_QUEUED:
        list_remove(&inv->queued, c);
        break;
    case CALL_RUNNING:
        list_remove(&inv->running, c);
        esm_http_cancel(c->http_call);
        break;
    case CALL_FAILED_START:
        list_remove(&inv->failed, c);
        break;
    }
    free(c);
    if (inv->dispatching == 0) pump(inv);
}

static void cancel_all(esm_invoker *inv)
{
    esm_invocation *c;
    while ((c = inv->running.head)) {
        list_remove(&inv->running, c);
        esm_http_cancel(c->http_call);
        free(c);
    }
    call_list *lists[] = {&inv->queued, &inv->failed};
    for (size_t i = 0; i < 2; i++)
        while ((c = lists[i]->head)) {
            list_remove(lists[i], c);
            free(c);
        }
}

void esm_invoker_destroy(esm_invoker *inv)
{
    if (!inv || inv->destroy_pending) return;
    cancel_all(inv);
    if (inv->dispatching > 0) {
        inv->destroy_pending = true; /* freed when the running callback returns */
        return;
    }
    invoker_free(inv);
}

size_t esm_invoker_in_flight(const esm_invoker *inv)
{
    return inv ? inv->running.n : 0;
}

size_t esm_invoker_queued(const esm_invoker *inv)
{
    return inv ? inv->queued.n : 0;
}
