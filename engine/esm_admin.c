#include "engine/esm_admin.h"

#include <arpa/inet.h>
#include <ev.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "engine/esm_admin_guard.h"
#include "engine/esm_admin_page.h"
#include "engine/esm_api.h"
#include "engine/esm_admin_replay.h"
#include "engine/esm_metrics.h"

struct esm_admin {
    struct ev_loop *loop;
    struct MHD_Daemon *mhd;
    esm_admin_hooks hooks;
    char *token; /* NULL = none */
    ev_io io;
    ev_timer timer;
    uint64_t refused[ESM_ADMIN_VERDICTS]; /* by verdict ([ESM_ADMIN_ALLOW] unused) */
    uint64_t too_large;                   /* bodies over ESM_ADMIN_MAX_BODY */
    esm_buf page_csp;                     /* empty when the page could not be hashed */
};

typedef struct {
    unsigned status;
    const char *type;
    esm_buf *body;
    const char *csp; /* set: an HTML page, sent with the headers that confine it */
} admin_reply;

/* A route answers GET and HEAD, or only POST when it is mutating (and then every request to
 * it has passed the guard). serve returns false when
 * its hook is not set (the path is then unknown: 404). */
typedef struct {
    const char *path;
    bool mutating;
    bool (*serve)(esm_admin *a, struct MHD_Connection *c, const esm_buf *request_body,
                  admin_reply *out);
    /* instead of serve: a hook that answers several paths, told which one by op (its _op enum:
     * esm_admin_outbox_op, positions 0 list / 1 move, esm_admin_replay_op) */
    bool (*serve_op)(esm_admin *a, struct MHD_Connection *c, int op, admin_reply *out);
    int op;
} admin_route;

/* A request with a method other than GET/HEAD, between its headers and its last body chunk. */
typedef struct {
    esm_buf body;
} admin_request;

_Static_assert(ESM_ADMIN_MAX_BODY == 65536, "too_large_json names the limit");
static const char too_large_json[] =
    "{\"error\":\"refused: the request body is larger than 65536 bytes\",\"reason\":"
    "\"body_too_large\",\"fix\":\"admin requests take no body or a small JSON document\"}";

/* ---- routes --------------------------------------------------------------------------------- */

static bool serve_page(esm_admin *a, struct MHD_Connection *c, const esm_buf *in, admin_reply *out)
{
    (void)c;
    (void)in;
    if (!a->page_csp.len) {
        out->status = 500;
        esm_buf_puts(out->body, "the status page has no inline script or style to allow\n");
        out->type = "text/plain";
        return true;
    }
    esm_buf_append(out->body, esm_admin_page_html, esm_admin_page_html_len);
    out->type = "text/html; charset=utf-8";
    out->csp = esm_buf_cstr(&a->page_csp);
    return true;
}

static bool serve_healthz(esm_admin *a, struct MHD_Connection *c, const esm_buf *in,
                          admin_reply *out)
{
    (void)c;
    (void)a;
    (void)in;
    esm_buf_puts(out->body, "ok\n");
    out->type = "text/plain";
    return true;
}

static bool serve_readyz(esm_admin *a, struct MHD_Connection *c, const esm_buf *in,
                         admin_reply *out)
{
    (void)c;
    (void)in;
    esm_buf why;
    esm_buf_init(&why);
    bool ready = a->hooks.ready ? a->hooks.ready(a->hooks.arg, &why) : true;
    if (ready)
        esm_buf_puts(out->body, "ready\n");
    else
        esm_buf_printf(out->body, "not ready\n%s", why.len ? esm_buf_cstr(&why) : "");
    esm_buf_free(&why);
    out->status = ready ? 200 : 503;
    out->type = "text/plain";
    return true;
}

static bool serve_status(esm_admin *a, struct MHD_Connection *c, const esm_buf *in,
                         admin_reply *out)
{
    (void)c;
    (void)in;
    if (!a->hooks.status) return false;
    a->hooks.status(a->hooks.arg, out->body);
    esm_buf_putc(out->body, '\n');
    return true;
}

static void render_refusals(const esm_admin *a, esm_buf *out)
{
    esm_prom_header(out, "esmd_admin_refused_total", "counter",
                    "State-changing admin requests refused, by reason.");
    for (int v = ESM_ADMIN_ALLOW + 1; v < ESM_ADMIN_VERDICTS; v++) {
        esm_prom_label l = {"reason", esm_admin_verdict_reason((esm_admin_verdict)v)};
        esm_prom_sample_u64(out, "esmd_admin_refused_total", &l, 1, a->refused[v]);
    }
    esm_prom_label l = {"reason", "body_too_large"};
    esm_prom_sample_u64(out, "esmd_admin_refused_total", &l, 1, a->too_large);
}

static bool serve_metrics(esm_admin *a, struct MHD_Connection *c, const esm_buf *in,
                          admin_reply *out)
{
    (void)c;
    (void)in;
    if (!a->hooks.metrics) return false;
    a->hooks.metrics(a->hooks.arg, out->body);
    render_refusals(a, out->body);
    out->type = "text/plain; version=0.0.4; charset=utf-8";
    return true;
}

static bool serve_reload(esm_admin *a, struct MHD_Connection *c, const esm_buf *in,
                         admin_reply *out)
{
    (void)c;
    (void)in; /* takes no body */
    if (!a->hooks.reload) return false;
    int rc = a->hooks.reload(a->hooks.arg, out->body);
    esm_buf_putc(out->body, '\n');
    out->status = rc == 0 ? 200 : 400;
    return true;
}

static const char *query_arg(void *req, const char *name)
{
    return MHD_lookup_connection_value(req, MHD_GET_ARGUMENT_KIND, name);
}

static bool serve_outbox(esm_admin *a, struct MHD_Connection *c, int op, admin_reply *out)
{
    if (!a->hooks.outbox) return false;
    out->status = a->hooks.outbox(a->hooks.arg, (esm_admin_outbox_op)op, query_arg, c, out->body);
    esm_buf_putc(out->body, '\n');
    return true;
}

static bool serve_positions(esm_admin *a, struct MHD_Connection *c, int op, admin_reply *out)
{
    if (!a->hooks.positions) return false;
    out->status = a->hooks.positions(a->hooks.arg, op == 1, query_arg, c, out->body);
    esm_buf_putc(out->body, '\n');
    return true;
}

static bool serve_replay(esm_admin *a, struct MHD_Connection *c, int op, admin_reply *out)
{
    if (!a->hooks.replay) return false;
    out->status = a->hooks.replay(a->hooks.arg, op, query_arg, c, out->body);
    esm_buf_putc(out->body, '\n');
    return true;
}

static const admin_route routes[] = {
    {"/", false, serve_page, NULL, 0},
    {"/healthz", false, serve_healthz, NULL, 0},
    {"/readyz", false, serve_readyz, NULL, 0},
    {"/status", false, serve_status, NULL, 0},
    {"/metrics", false, serve_metrics, NULL, 0},
    {"/reload", true, serve_reload, NULL, 0},
    {"/outbox/parked", false, NULL, serve_outbox, ESM_ADMIN_OUTBOX_PARKED},
    {"/outbox/pending", false, NULL, serve_outbox, ESM_ADMIN_OUTBOX_PENDING},
    {"/outbox/parked/redrive", true, NULL, serve_outbox, ESM_ADMIN_OUTBOX_REDRIVE},
    {"/positions", false, NULL, serve_positions, 0},
    {"/positions/move", true, NULL, serve_positions, 1},
    {"/replay", false, NULL, serve_replay, ESM_ADMIN_REPLAY_LIST},
    {"/replay/start", true, NULL, serve_replay, ESM_ADMIN_REPLAY_START},
    {"/replay/cancel", true, NULL, serve_replay, ESM_ADMIN_REPLAY_CANCEL},
};

/* ---- requests ------------------------------------------------------------------------------- */

static enum MHD_Result send_reply(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *data, size_t len, const char *csp,
                                  const char *error_type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (error_type) MHD_add_response_header(r, "x-amzn-ErrorType", error_type);
    if (csp) {
        MHD_add_response_header(r, "Content-Security-Policy", csp);
        MHD_add_response_header(r, "Cache-Control", "no-store");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const char *json)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "%s\n", json);
    return send_reply(c, status, "application/json", text, n > 0 ? (size_t)n : 0, NULL, NULL);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const struct sockaddr *client_addr(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

static void client_text(const struct sockaddr *sa, char *out, size_t n)
{
    snprintf(out, n, "?");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The one gate of every state-changing request (any method but GET/HEAD, before routing). */
static esm_admin_verdict guard(esm_admin *a, struct MHD_Connection *c, const char *method)
{
    const struct sockaddr *sa = client_addr(c);
    esm_admin_request r = {.method = method,
                           .host = header(c, MHD_HTTP_HEADER_HOST),
                           .origin = header(c, "Origin"),
                           .sec_fetch_site = header(c, "Sec-Fetch-Site"),
                           .content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE),
                           .content_length = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH),
                           .transfer_encoding = header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING),
                           .authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION),
                           .loopback = esm_admin_addr_is_loopback(sa)};
    return esm_admin_guard(&r, a->token);
}

static void log_refusal(struct MHD_Connection *c, const char *method, const char *url,
                        const char *reason)
{
    char who[INET6_ADDRSTRLEN];
    client_text(client_addr(c), who, sizeof who);
    ESM_WARN(NULL, "admin: refused %.16s %.128s from %s: %s", method, url, who, reason);
}

static bool body_too_large(struct MHD_Connection *c)
{
    const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strtoull(cl, NULL, 10) > ESM_ADMIN_MAX_BODY;
}

/* The Lambda API answers every method itself (its errors in AWS's shape). */
static enum MHD_Result dispatch_api(esm_admin *a, struct MHD_Connection *c, const char *url,
                                    const char *method)
{
    esm_buf body;
    esm_buf_init(&body);
    const char *error_type = NULL;
    unsigned status = a->hooks.api(a->hooks.arg, method, url, query_arg, c, &body, &error_type);
    enum MHD_Result ret =
        send_reply(c, status, "application/json", body.data, body.len, NULL, error_type);
    esm_buf_free(&body);
    return ret;
}

static enum MHD_Result dispatch(esm_admin *a, struct MHD_Connection *c, const char *url,
                                const char *method, const esm_buf *request_body)
{
    if (a->hooks.api && esm_api_is_mappings_path(url)) return dispatch_api(a, c, url, method);
    const admin_route *route = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !route; i++)
        if (strcmp(url, routes[i].path) == 0) route = &routes[i];
    bool allowed =
        route && (route->mutating ? strcmp(method, "POST") == 0 : esm_admin_is_read_method(method));
    if (route && !allowed) return send_json(c, 405, "{\"error\":\"method not allowed\"}");
    esm_buf body;
    esm_buf_init(&body);
    admin_reply out = {.status = 200, .type = "application/json", .body = &body};
    enum MHD_Result ret;
    bool served = route && (route->serve ? route->serve(a, c, request_body, &out)
                                         : route->serve_op(a, c, route->op, &out));
    if (served)
        ret = send_reply(c, out.status, out.type, body.data, body.len, out.csp, NULL);
    else
        ret = send_json(c, 404, "{\"error\":\"not found\"}");
    esm_buf_free(&body);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    esm_admin *a = cls;
    if (esm_admin_is_read_method(method)) return dispatch(a, c, url, method, NULL);
    admin_request *req = *con_cls;
    if (!req) {
        /* Headers only: refuse before reading any of the body. */
        esm_admin_verdict v = guard(a, c, method);
        if (v != ESM_ADMIN_ALLOW) {
            a->refused[v]++;
            log_refusal(c, method, url, esm_admin_verdict_reason(v));
            return send_json(c, 403, esm_admin_verdict_json(v));
        }
        if (body_too_large(c)) {
            a->too_large++;
            log_refusal(c, method, url, "body_too_large");
            return send_json(c, 413, too_large_json);
        }
        req = calloc(1, sizeof *req);
        if (!req) return MHD_NO;
        esm_buf_init(&req->body);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Only a chunked body gets here past the limit (a Content-Length was checked above);
         * MHD 0.9 cannot answer in the middle of a body, so the connection is closed. */
        if (req->body.len + *upload_size > ESM_ADMIN_MAX_BODY) {
            a->too_large++;
            log_refusal(c, method, url, "body_too_large (chunked; connection closed)");
            return MHD_NO;
        }
        esm_buf_append(&req->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(a, c, url, method, &req->body);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    admin_request *req = *con_cls;
    if (!req) return;
    esm_buf_free(&req->body);
    free(req);
    *con_cls = NULL;
}

/* ---- event loop ----------------------------------------------------------------------------- */

static void schedule(esm_admin *a)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    ev_timer_stop(a->loop, &a->timer);
    if (MHD_get_timeout(a->mhd, &ms) == MHD_YES) {
        ev_timer_set(&a->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(a->loop, &a->timer);
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_admin *a = w->data;
    MHD_run(a->mhd);
    schedule(a);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_admin *a = w->data;
    MHD_run(a->mhd);
    schedule(a);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, esm_err *err)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    int port = colon ? atoi(colon + 1) : 0;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (!colon || hl == 0 || hl >= sizeof host || port <= 0 || port > 65535) {
        esm_err_set(err, ESM_ERR_INVALID, false, "admin_listen \"%s\" is not host:port", listen);
        return -1;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        esm_err_set(err, ESM_ERR_INVALID, false, "admin_listen host \"%s\" is not an IPv4 address",
                    host);
        return -1;
    }
    return 0;
}

void esm_admin_set_token(esm_admin *a, const char *token)
{
    if (a->token) explicit_bzero(a->token, strlen(a->token));
    free(a->token);
    a->token = token && token[0] ? strdup(token) : NULL;
}

esm_admin *esm_admin_create(struct ev_loop *loop, const char *listen, const char *token,
                            const esm_admin_hooks *hooks, esm_err *err)
{
    if (!listen || !listen[0]) return NULL;
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa, err) != 0) return NULL;
    esm_admin *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = loop;
    a->hooks = *hooks;
    esm_admin_set_token(a, token);
    esm_buf_init(&a->page_csp);
    if (esm_admin_page_csp(esm_admin_page_html, esm_admin_page_html_len, &a->page_csp) != 0) {
        ESM_ERROR(NULL, "admin: the status page has no inline script or style to allow");
        esm_buf_reset(&a->page_csp);
    }
    /* MHD_USE_EPOLL without a thread: one epoll fd that the libev loop watches. */
    a->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ESM_ADMIN_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)ESM_ADMIN_MAX_CONNECTIONS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ESM_ADMIN_IDLE_TIMEOUT_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ESM_ADMIN_CONNECTION_MEMORY, MHD_OPTION_END);
    if (!a->mhd) {
        esm_err_set(err, ESM_ERR_IO, false, "cannot listen on %s (address in use?)", listen);
        esm_admin_set_token(a, NULL);
        esm_buf_free(&a->page_csp);
        free(a);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    ev_io_init(&a->io, on_io, info->epoll_fd, EV_READ);
    a->io.data = a;
    ev_io_start(loop, &a->io);
    ev_timer_init(&a->timer, on_timer, 0., 0.);
    a->timer.data = a;
    if (!a->token && !esm_admin_addr_is_loopback((struct sockaddr *)&sa))
        ESM_INFO(NULL,
                 "admin API on %s has no admin token: state-changing requests are "
                 "accepted from loopback only (docs/operations.md \"Securing the admin API\")",
                 listen);
    return a;
}

void esm_admin_destroy(esm_admin *a)
{
    if (!a) return;
    ev_io_stop(a->loop, &a->io);
    ev_timer_stop(a->loop, &a->timer);
    MHD_stop_daemon(a->mhd);
    esm_admin_set_token(a, NULL);
    esm_buf_free(&a->page_csp);
    free(a);
}
