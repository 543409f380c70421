/* The admin HTTP server (libmicrohttpd driven by the libev loop, no thread of its own):
 *   GET  /          the status page (HTML, engine/esm_admin_page.h), which reads /status and
 *                   /outbox/parked
 *   GET  /healthz   200 "ok" while the process runs its loop
 *   GET  /readyz    200 "ready", or 503 with one reason per line (not ready, or "degraded: "
 *                   a lane stuck longer than StuckLaneSeconds)
 *   GET  /status    JSON (the daemon's status hook)
 *   GET  /metrics   Prometheus text format 0.0.4
 *   POST /reload    reload the config file like SIGHUP; 200 + JSON report when applied, 400 +
 *                   JSON with every problem when the new config is invalid (the old one runs)
 *   GET  /outbox/parked            parked failure records (JSON; ?after=ID&limit=N)
 *   GET  /outbox/pending           failure records still to deliver (same paging)
 *   POST /outbox/parked/redrive    re-queue parked records (all, ?id=ID and/or ?destination=D)
 *   GET  /positions                each mapping's lanes and their stored positions
 *   POST /positions/move           move a lane of a mapping that is not running
 *                                  (engine/esm_admin_positions.h)
 *   GET  /replay                   replay jobs; POST /replay/start and /replay/cancel start
 *                                  and stop one (engine/esm_admin_replay.h)
 *   /2015-03-31/event-source-mappings[/UUID]   the Lambda API (engine/esm_api.h)
 * Every method but GET and HEAD passes esm_admin_guard() first (engine/esm_admin_guard.h):
 * 403 for a browser, a form content type, a remote client without a configured token, or a
 * wrong token. See docs/operations.md "Securing the admin API". */
#ifndef ESM_ADMIN_H
#define ESM_ADMIN_H

#include <stdbool.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"

/* Bounds on what a client can hold: open connections (all, and per client address), idle
 * seconds before MHD closes a connection (a half-sent request included), the memory MHD
 * gives one connection for its request line and headers (larger: 431), and the request body
 * (larger: 413). */
#define ESM_ADMIN_MAX_CONNECTIONS 64
#define ESM_ADMIN_MAX_CONNECTIONS_PER_IP 16
#define ESM_ADMIN_IDLE_TIMEOUT_SECONDS 10
#define ESM_ADMIN_CONNECTION_MEMORY (32 * 1024)
#define ESM_ADMIN_MAX_BODY (64 * 1024)

struct ev_loop;
typedef struct esm_admin esm_admin;

/* A query argument of the request being answered (NULL when absent). */
typedef const char *(*esm_admin_arg_fn)(void *req, const char *name);

typedef enum {
    ESM_ADMIN_OUTBOX_PARKED,  /* list parked rows */
    ESM_ADMIN_OUTBOX_PENDING, /* list rows still to deliver */
    ESM_ADMIN_OUTBOX_REDRIVE, /* make parked rows due again */
} esm_admin_outbox_op;

typedef struct {
    bool (*ready)(void *arg, esm_buf *why); /* false: why gets one reason per line */
    void (*status)(void *arg, esm_buf *out);
    void (*metrics)(void *arg, esm_buf *out); /* may be NULL */
    int (*reload)(void *arg, esm_buf *out);   /* may be NULL; 0 = applied; out gets JSON */
    /* GET /outbox/parked, GET /outbox/pending and POST /outbox/parked/redrive; may be NULL.
     * Returns the HTTP status; out gets JSON. */
    unsigned (*outbox)(void *arg, esm_admin_outbox_op op, esm_admin_arg_fn get_arg, void *req,
                       esm_buf *out);
    /* GET /positions (move false) and POST /positions/move (true); may be NULL. Returns the
     * HTTP status; out gets JSON. */
    unsigned (*positions)(void *arg, bool move, esm_admin_arg_fn get_arg, void *req, esm_buf *out);
    /* GET /replay, POST /replay/start and POST /replay/cancel; may be NULL. Returns the HTTP
     * status; out gets JSON. */
    unsigned (*replay)(void *arg, int op, esm_admin_arg_fn get_arg, void *req, esm_buf *out);
    /* The Lambda API's event-source-mapping resource (engine/esm_api.h), any method; may be
     * NULL. Returns the HTTP status; out gets JSON, *error_type the x-amzn-ErrorType of an
     * error. */
    unsigned (*api)(void *arg, const char *method, const char *path, esm_admin_arg_fn get_arg,
                    void *req, esm_buf *out, const char **error_type);
    void *arg;
} esm_admin_hooks;

/* listen is "host:port" (loopback by default); NULL or "" disables the server (returns NULL
 * without an error). token: Authorization: Bearer <token> that state-changing requests must
 * carry; NULL or "" = none (then only loopback clients may change state). */
esm_admin *esm_admin_create(struct ev_loop *loop, const char *listen, const char *token,
                            const esm_admin_hooks *hooks, esm_err *err);
/* A reload's new token (or none); the old one stops working at once. */
void esm_admin_set_token(esm_admin *a, const char *token);
void esm_admin_destroy(esm_admin *a);

#endif
