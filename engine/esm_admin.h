/* The admin HTTP server (libmicrohttpd driven by the libev loop, no thread of its own):
 * /healthz, /readyz, /status (JSON) and /metrics (Prometheus text). */
#ifndef ESM_ADMIN_H
#define ESM_ADMIN_H

#include <stdbool.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"

struct ev_loop;
typedef struct esm_admin esm_admin;

typedef struct {
    bool (*ready)(void *arg);
    void (*status)(void *arg, esm_buf *out);
    void (*metrics)(void *arg, esm_buf *out); /* may be NULL */
    void *arg;
} esm_admin_hooks;

/* listen is "host:port" (loopback by default); NULL or "" disables the server (returns NULL
 * without an error). */
esm_admin *esm_admin_create(struct ev_loop *loop, const char *listen, const esm_admin_hooks *hooks,
                            esm_err *err);
void esm_admin_destroy(esm_admin *a);

#endif
