/* The admin endpoints of failure records in the outbox (docs/operations.md "Parked failure
 * records"):
 *   GET  /outbox/parked[?after=ID][&limit=N]   200 {"parked":[...],"next_after":ID|null}
 *   GET  /outbox/pending[?after=ID][&limit=N]  200 {"pending":[...],"next_after":ID|null}
 *   POST /outbox/parked/redrive[?id=ID][&destination=D]
 *        200 {"redriven":N}; 404 when ?id= names no parked row; 400 on a bad argument.
 * Without arguments redrive re-queues every parked row. */
#ifndef ESM_ADMIN_OUTBOX_H
#define ESM_ADMIN_OUTBOX_H

#include <stdbool.h>

#include "checkpoint/esm_store.h"
#include "common/esm_buf.h"
#include "destinations/esm_outbox.h"
#include "engine/esm_admin.h"

#define ESM_ADMIN_PARKED_LIMIT_DEFAULT 100
#define ESM_ADMIN_PARKED_LIMIT_MAX 1000

/* Answers one request; returns the HTTP status, out gets JSON. */
unsigned esm_admin_outbox(esm_store *store, esm_outbox_drainer *outbox, esm_admin_outbox_op op,
                          esm_admin_arg_fn get_arg, void *req, esm_buf *out);

#endif
