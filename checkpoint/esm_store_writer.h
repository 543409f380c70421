/* The store writer: lane checkpoints written on a thread of their own, with group commit.
 *
 * Why: a durable step costs an fsync (0.2-3 ms here, with a tail of 60 ms on a shared disk).
 * Done on the event-loop thread it stalls every partition and shard of that loop (bench finding
 * K2: Kafka produce->invoke p99 7x a plain consumer's). The writer takes the steps queued by the
 * loop's lanes, commits them in ONE transaction (esm_store_advance_group: one fsync for all, a
 * savepoint each) and reports each result back on the loop thread (ev_async), so the loop keeps
 * invoking while the disk works and N lanes share one fsync.
 *
 * The semantics of esm_store_advance are unchanged: a lane acknowledges to its source only in
 * the completion callback, after its step is durable. One writer per event loop; the store's
 * own mutex serialises it with the loop thread's direct calls. */
#ifndef ESM_STORE_WRITER_H
#define ESM_STORE_WRITER_H

#include <stddef.h>

#include "checkpoint/esm_store.h"

struct ev_loop;
typedef struct esm_store_writer esm_store_writer;
typedef struct esm_store_write esm_store_write;

/* Called on the loop thread once the step is committed (rc 0) or failed (rc -1, err says why:
 * the same errors as esm_store_advance). */
typedef void (*esm_store_write_cb)(int rc, const esm_err *err, void *arg);

esm_store_writer *esm_store_writer_create(esm_store *s, struct ev_loop *loop, esm_err *err);
/* Finishes the writes already queued (their callbacks are not called), stops the thread. */
void esm_store_writer_destroy(esm_store_writer *w);

/* Queues esm_store_advance(mapping, source, lane, step): everything is copied, the caller's
 * strings and items may go at once. NULL when out of memory (nothing queued). */
esm_store_write *esm_store_writer_advance(esm_store_writer *w, const char *mapping,
                                          const char *source, const char *lane,
                                          const esm_store_step *step, esm_store_write_cb cb,
                                          void *arg);
/* The caller gives up waiting (its lane goes away): blocks until the write has been carried out
 * (it is never undone), drops it without calling cb, and returns its result (err filled). */
int esm_store_write_forget(esm_store_writer *w, esm_store_write *job, esm_err *err);

/* Group commits so far and steps in them (how well steps are grouped; the unit tests). */
void esm_store_writer_counts(esm_store_writer *w, unsigned long long *commits,
                             unsigned long long *steps);

#endif
