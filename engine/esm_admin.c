#include "engine/esm_admin.h"

#include <arpa/inet.h>
#include <ev.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct esm_admin {
    struct ev_loop *loop;
    struct MHD_Daemon *mhd;
    esm_admin_hooks hooks;
    ev_io io;
    ev_timer timer;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             esm_buf *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *query_arg(void *req, const char *name)
{
    return MHD_lookup_connection_value(req, MHD_GET_ARGUMENT_KIND, name);
}

/* Every state-changing request: one place for the checks they share. */
static enum MHD_Result handle_post(esm_admin *a, struct MHD_Connection *c, const char *url,
                                   esm_buf *body)
{
    if (strcmp(url, "/reload") == 0 && a->hooks.reload) {
        int rc = a->hooks.reload(a->hooks.arg, body);
        esm_buf_putc(body, '\n');
        return reply(c, rc == 0 ? 200 : 400, "application/json", body);
    }
    if (strcmp(url, "/outbox/parked/redrive") == 0 && a->hooks.outbox_parked) {
        unsigned status = a->hooks.outbox_parked(a->hooks.arg, true, query_arg, c, body);
        esm_buf_putc(body, '\n');
        return reply(c, status, "application/json", body);
    }
    esm_buf_puts(body, "{\"error\":\"method not allowed\"}\n");
    return reply(c, 405, "application/json", body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    esm_admin *a = cls;
    bool post = strcmp(method, "POST") == 0;
    if (post) {
        /* MHD calls a POST handler several times: once for the headers, once per body chunk
         * (ignored: /reload takes no body), once at the end, where we answer. */
        if (*con_cls == NULL) {
            *con_cls = a;
            return MHD_YES;
        }
        if (*upload_size) {
            *upload_size = 0;
            return MHD_YES;
        }
    }
    esm_buf body;
    esm_buf_init(&body);
    enum MHD_Result ret;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (post) {
        ret = handle_post(a, c, url, &body);
    } else if (!get) {
        esm_buf_puts(&body, "{\"error\":\"method not allowed\"}\n");
        ret = reply(c, 405, "application/json", &body);
    } else if (strcmp(url, "/healthz") == 0) {
        esm_buf_puts(&body, "ok\n");
        ret = reply(c, 200, "text/plain", &body);
    } else if (strcmp(url, "/readyz") == 0) {
        esm_buf why;
        esm_buf_init(&why);
        bool ready = a->hooks.ready ? a->hooks.ready(a->hooks.arg, &why) : true;
        if (ready)
            esm_buf_puts(&body, "ready\n");
        else
            esm_buf_printf(&body, "not ready\n%s", why.len ? esm_buf_cstr(&why) : "");
        esm_buf_free(&why);
        ret = reply(c, ready ? 200 : 503, "text/plain", &body);
    } else if (strcmp(url, "/status") == 0 && a->hooks.status) {
        a->hooks.status(a->hooks.arg, &body);
        esm_buf_putc(&body, '\n');
        ret = reply(c, 200, "application/json", &body);
    } else if (strcmp(url, "/outbox/parked") == 0 && a->hooks.outbox_parked) {
        unsigned status = a->hooks.outbox_parked(a->hooks.arg, false, query_arg, c, &body);
        esm_buf_putc(&body, '\n');
        ret = reply(c, status, "application/json", &body);
    } else if (strcmp(url, "/metrics") == 0 && a->hooks.metrics) {
        a->hooks.metrics(a->hooks.arg, &body);
        ret = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", &body);
    } else {
        esm_buf_puts(&body, "{\"error\":\"not found\"}\n");
        ret = reply(c, 404, "application/json", &body);
    }
    esm_buf_free(&body);
    return ret;
}

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

esm_admin *esm_admin_create(struct ev_loop *loop, const char *listen, const esm_admin_hooks *hooks,
                            esm_err *err)
{
    if (!listen || !listen[0]) return NULL;
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa, err) != 0) return NULL;
    esm_admin *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->loop = loop;
    a->hooks = *hooks;
    /* MHD_USE_EPOLL without a thread: one epoll fd that the libev loop watches. */
    a->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!a->mhd) {
        esm_err_set(err, ESM_ERR_IO, false, "cannot listen on %s (address in use?)", listen);
        free(a);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    ev_io_init(&a->io, on_io, info->epoll_fd, EV_READ);
    a->io.data = a;
    ev_io_start(loop, &a->io);
    ev_timer_init(&a->timer, on_timer, 0., 0.);
    a->timer.data = a;
    return a;
}

void esm_admin_destroy(esm_admin *a)
{
    if (!a) return;
    ev_io_stop(a->loop, &a->io);
    ev_timer_stop(a->loop, &a->timer);
    MHD_stop_daemon(a->mhd);
    free(a);
}
