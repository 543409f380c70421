/* The admin HTTP server (libmicrohttpd driven by the libev loop, no thread of its own):
 *   GET  /healthz   200 "ok" while the process runs its loop
 *   GET  /readyz    200 "ready", or 503 with one reason per line (not ready, or "degraded: "
 *                   a lane stuck longer than StuckLaneSeconds)
 *   GET  /status    JSON (the daemon's status hook)
 *   GET  /metrics   Prometheus text format 0.0.4
 *   POST /reload    reload the config file like SIGHUP; 200 + JSON report when applied, 400 +
 *                   JSON with every problem when the new config is invalid (the old one runs)
 *   GET  /outbox/parked            parked failure records (JSON; ?after=ID&limit=N)
 *   POST /outbox/parked/redrive    re-queue parked records (all, ?id=ID and/or ?destination=D)
 * Every POST goes through one path (handle_post), so checks on state-changing requests apply
 * to all of them. See docs/operations.md. */
#ifndef ESM_ADMIN_H
#define ESM_ADMIN_H

#include <stdbool.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"

struct ev_loop;
typedef struct esm_admin esm_admin;

/* A query argument of the request being answered (NULL when absent). */
typedef const char *(*esm_admin_arg_fn)(void *req, const char *name);

typedef struct {
    bool (*ready)(void *arg, esm_buf *why); /* false: why gets one reason per line */
    void (*status)(void *arg, esm_buf *out);
    void (*metrics)(void *arg, esm_buf *out); /* may be NULL */
    int (*reload)(void *arg, esm_buf *out);   /* may be NULL; 0 = applied; out gets JSON */
    /* GET /outbox/parked (redrive false) and POST /outbox/parked/redrive (true); may be NULL.
     * Returns the HTTP status; out gets JSON. */
    unsigned (*outbox_parked)(void *arg, bool redrive, esm_admin_arg_fn get_arg, void *req,
                              esm_buf *out);
    void *arg;
} esm_admin_hooks;

/* listen is "host:port" (loopback by default); NULL or "" disables the server (returns NULL
 * without an error). */
esm_admin *esm_admin_create(struct ev_loop *loop, const char *listen, const esm_admin_hooks *hooks,
                            esm_err *err);
void esm_admin_destroy(esm_admin *a);

#endif
