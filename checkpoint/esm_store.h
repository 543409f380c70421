/* The durable state of esmd: one SQLite database, `<state_dir>/esmd.db`.
 *
 * What lives here (docs/design.md "Architecture", principle 4, and
 * "Attempts survive a restart"):
 * - lane checkpoints: the position reached per (mapping uuid, source key, lane key), e.g.
 *   (uuid, stream ARN, "shardId-000000000003") or (uuid, "host:9092/orders", "7"). Always keyed by
 *   the whole triple, never by a reusable id alone (docs/design.md "Checkpoint store").
 *   Positions are TEXT (Kinesis sequence numbers are 56-digit decimals); what a position means
 *   (last processed or next to read) is the source's business, the store only keeps it.
 * - batch state of the batch in retry per lane: first / last record id and the policy state text
 *   (esm_policy_state_format), so attempts and the bisect position survive a restart.
 * - tumbling-window state per lane: window start and the state JSON.
 * - the outbox of failure records, drained by destinations/.
 *
 * esm_store_advance is the one durable step of a lane: in ONE transaction it moves the
 * checkpoint, replaces or clears the batch state, optionally updates the window state, and
 * appends failure records to the outbox. Either all of it is committed or none of it.
 * Acknowledge to the source (delete, Kafka commit) only after it returned 0. A failure is
 * reported (esm_err carries SQLite's message, e.g. "database or disk is full") and logged here
 * (docs/design.md "Checkpoint store": every checkpoint-write failure is logged); the caller must
 * then stop acknowledging, never fake progress.
 *
 * One process per state_dir: esm_store_open takes an exclusive lock on `<state_dir>/esmd.lock`
 * and refuses a second opener (also within the same process). Calls on one store are serialised
 * by an internal mutex, so several event loops may share it.
 *
 * Return convention: 0 ok / found, 1 not found (where stated), -1 error (err set).
 * err->retriable says whether retrying the same call can help: true for a full disk, a busy or
 * locked database, I/O errors; false for a read-only or corrupt database and for refused input
 * (ESM_ERR_INVALID: a CHECK constraint such as a payload that is not JSON, an empty key, a
 * checkpoint moving back) — retrying those as they are never succeeds. */
#ifndef ESM_STORE_H
#define ESM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_err.h"

typedef struct esm_store esm_store;

/* The schema version this build creates and understands. */
#define ESM_STORE_SCHEMA_VERSION 4

/* The longest position any source stores, with its NUL: Kinesis sequence numbers have up to 128
 * digits, Kafka offsets 19, SQS stores none. Every buffer that holds a position uses this. */
#define ESM_POSITION_MAX 136

/* Creates state_dir (mode 0700) if missing, opens or creates esmd.db, checks it (PRAGMA
 * quick_check), runs pending migrations. Refuses, with a message naming the file and what to do:
 * a corrupt file or one that is not an esmd database, a schema newer than this build, a
 * read-only directory or database, a state_dir locked by another process. NULL on failure. */
esm_store *esm_store_open(const char *state_dir, esm_err *err);
void esm_store_close(esm_store *s);
/* The path of the database file (valid until close). */
const char *esm_store_path(const esm_store *s);
/* The schema version of the open database (== ESM_STORE_SCHEMA_VERSION after open). */
int esm_store_schema_version(esm_store *s);

/* ---- lanes (checkpoints) ---- */

/* One lane's row. Strings are heap copies owned by the struct: esm_store_lane_clear frees them. */
typedef struct {
    char *source;          /* the source key */
    char *lane;            /* the lane key */
    char *position;        /* NULL = no checkpoint yet (start at StartingPosition) */
    bool finished;         /* closed shard fully processed */
    char *parents;         /* NULL or the parent lane list, as registered (e.g. "sh-1,sh-2") */
    int64_t updated_at_ms; /* epoch ms of the last write */
    bool confirmed; /* the source's own position store confirmed it (esm_store_lane_confirm) */
    char *start_at; /* NULL, or where an operator moved the lane while it has no position yet
                       (esm_store_checkpoint_set); the first position written clears it */
} esm_store_lane;

void esm_store_lane_clear(esm_store_lane *l);
void esm_store_lanes_free(esm_store_lane *lanes, size_t n);

/* Records a lane (e.g. a shard discovered by ListShards) with no position yet. An existing lane
 * keeps its position; its parents are set if they were NULL and parents is not. */
int esm_store_lane_register(esm_store *s, const char *mapping, const char *source, const char *lane,
                            const char *parents, esm_err *err);
/* 0 found (out filled; clear it after), 1 no such lane, -1 error. */
int esm_store_checkpoint_get(esm_store *s, const char *mapping, const char *source,
                             const char *lane, esm_store_lane *out, esm_err *err);
/* All lanes of mapping+source (source NULL = every source of the mapping), ordered by source
 * then lane. *lanes is malloc'ed (NULL when *n == 0); free with esm_store_lanes_free. */
int esm_store_checkpoint_list(esm_store *s, const char *mapping, const char *source,
                              esm_store_lane **lanes, size_t *n, esm_err *err);
/* An operator's move of a lane, in one transaction: the lanes in forget (other lanes of the
 * source, e.g. a Kinesis shard's ParallelizationFactor lanes) are forgotten as by
 * esm_store_lane_delete, then lane is set as by esm_store_checkpoint_set, and marked confirmed
 * when the source's own position store already holds the position (a Kafka group's commit).
 * On an error nothing changed. */
typedef struct {
    const char *position; /* NULL = none */
    const char *start_at; /* NULL = none */
    bool confirmed;
    const char *const *forget;
    size_t n_forget;
} esm_store_move;
int esm_store_lane_move(esm_store *s, const char *mapping, const char *source, const char *lane,
                        const esm_store_move *mv, esm_err *err);
/* Operator move (reset / seek): sets the position (NULL = forget it) and start_at (NULL =
 * none; the source's own start text, read back in esm_store_lane.start_at), reopens the lane,
 * with no monotonic check; clears the lane's batch and window state. */
int esm_store_checkpoint_set(esm_store *s, const char *mapping, const char *source,
                             const char *lane, const char *position, const char *start_at,
                             esm_err *err);
/* Marks a lane's checkpoint as confirmed by the source's own position store (a Kafka group's
 * commit); checkpoint_set clears the mark. 0 marked, 1 no checkpoint to mark yet, -1 error. */
int esm_store_lane_confirm(esm_store *s, const char *mapping, const char *source, const char *lane,
                           esm_err *err);
/* Forgets a lane (checkpoint, batch and window state), e.g. an expired closed shard. */
int esm_store_lane_delete(esm_store *s, const char *mapping, const char *source, const char *lane,
                          esm_err *err);
/* Forgets every lane of a mapping (a removed mapping). Its outbox rows are kept: never lost. */
int esm_store_mapping_delete(esm_store *s, const char *mapping, esm_err *err);

/* ---- batch state (the batch in retry) ---- */

typedef struct {
    const char *first_id; /* first record id of the batch (sequence number, offset, ...) */
    const char *last_id;  /* last record id of the batch */
    const char *state;    /* opaque policy state text (esm_policy_state_format) */
} esm_store_batch;

/* Output form: heap strings, freed by esm_store_batch_row_clear. */
typedef struct {
    char *first_id;
    char *last_id;
    char *state;
    int64_t updated_at_ms;
} esm_store_batch_row;

void esm_store_batch_row_clear(esm_store_batch_row *b);
/* 0 found, 1 none, -1 error. */
int esm_store_batch_get(esm_store *s, const char *mapping, const char *source, const char *lane,
                        esm_store_batch_row *out, esm_err *err);
int esm_store_batch_put(esm_store *s, const char *mapping, const char *source, const char *lane,
                        const esm_store_batch *batch, esm_err *err);
int esm_store_batch_clear(esm_store *s, const char *mapping, const char *source, const char *lane,
                          esm_err *err);

/* ---- tumbling-window state ---- */

/* 0 found (*start_ms set, *state_json malloc'ed: free() it), 1 none, -1 error. */
int esm_store_window_get(esm_store *s, const char *mapping, const char *source, const char *lane,
                         int64_t *start_ms, char **state_json, esm_err *err);
/* state_json must be valid JSON (a CHECK constraint; else -1 with ESM_ERR_INVALID). */
int esm_store_window_put(esm_store *s, const char *mapping, const char *source, const char *lane,
                         int64_t start_ms, const char *state_json, esm_err *err);
int esm_store_window_clear(esm_store *s, const char *mapping, const char *source, const char *lane,
                           esm_err *err);

/* ---- the durable step ---- */

/* A failure record for the outbox. payload is JSON text (a CHECK constraint refuses anything
 * else: the whole step then fails). key is the Kafka message key, or NULL.
 * Destination strings are stored as given; for `kafka://topic` (the source cluster) the writer
 * stores `kafka://host:port[,host:port]/topic` so the drainer never needs the mapping.
 * dedupe_key names the source record the failure record is about (e.g.
 * "sqs:<mapping>:<messageId>"): an item whose key was already used within
 * ESM_STORE_DEDUPE_RETENTION_MS is not written again, even if the first one was delivered. */
typedef struct {
    const char *destination;
    const char *payload;
    size_t payload_len; /* 0 = strlen(payload) */
    const void *key;
    size_t key_len;
    const char *dedupe_key; /* NULL = no deduplication */
} esm_outbox_item;

/* How long a dedupe key outlives its row: SQS's longest message retention (14 days), after
 * which the source record cannot come back. */
#define ESM_STORE_DEDUPE_RETENTION_MS (14LL * 24 * 3600 * 1000)

typedef enum {
    ESM_STORE_WINDOW_KEEP = 0, /* leave the window state as it is */
    ESM_STORE_WINDOW_PUT,      /* replace it with window_start_ms / window_state */
    ESM_STORE_WINDOW_CLEAR,    /* the window closed: forget it */
} esm_store_window_op;

typedef struct {
    const char *position;         /* the new checkpoint; NULL = leave it (e.g. only outbox rows) */
    bool finished;                /* mark the lane finished (sticky until checkpoint_set) */
    const esm_store_batch *batch; /* NULL = clear the batch state, else replace it */
    esm_store_window_op window_op;
    int64_t window_start_ms;  /* with ESM_STORE_WINDOW_PUT */
    const char *window_state; /* with ESM_STORE_WINDOW_PUT: JSON */
    const esm_outbox_item *items;
    size_t n_items;
} esm_store_step;

/* Applies the step to lane (mapping, source, lane) in one transaction (the lane row is created
 * if missing). A position never moves back: when the old and new positions are both decimal
 * numbers and the new one is smaller, the step is refused (ESM_ERR_INVALID, not retriable) —
 * a source that deliberately restarts from an earlier position (e.g. a Kafka broker offset
 * behind the store) must say so with esm_store_checkpoint_set first.
 * Returns 0, or -1 with nothing written. */
int esm_store_advance(esm_store *s, const char *mapping, const char *source, const char *lane,
                      const esm_store_step *step, esm_err *err);

/* Group commit: several lanes' steps in ONE transaction (one fsync). Each step runs inside its
 * own savepoint, so a refused step (rc -1, err set, e.g. a checkpoint moving back) leaves the
 * others to commit; when the transaction itself fails (BEGIN, COMMIT, an I/O error) every step
 * fails with that error. Returns 0 when every step was committed, else -1 (see each rc). */
typedef struct {
    const char *mapping, *source, *lane;
    const esm_store_step *step;
    int rc;      /* out: 0 committed, -1 failed */
    esm_err err; /* out: why, when rc == -1 */
} esm_store_advance_req;

int esm_store_advance_group(esm_store *s, esm_store_advance_req *reqs, size_t n);

/* ---- outbox ---- */

/* Appends failure records with no checkpoint to move (SQS sources), in one transaction.
 * Returns 0 when at least one item was written, 1 when every item had a dedupe key that was
 * already used (nothing written: the source record was recorded before), -1 on error. */
int esm_store_outbox_add(esm_store *s, const char *mapping, const esm_outbox_item *items, size_t n,
                         esm_err *err);

typedef struct {
    int64_t id; /* increasing, never reused (AUTOINCREMENT) */
    char *mapping;
    char *destination;
    char *payload; /* NUL-terminated JSON */
    size_t payload_len;
    void *key; /* NULL when the row has no key */
    size_t key_len;
    int64_t created_at_ms;
    int attempts; /* failed delivery attempts so far */
    int64_t next_attempt_at_ms;
    char *last_error; /* NULL until a delivery failed */
} esm_outbox_row;

void esm_store_outbox_rows_free(esm_outbox_row *rows, size_t n);
/* Rows with next_attempt_at <= now_ms, ordered by id, at most limit. *rows is malloc'ed (NULL
 * when *n == 0); free with esm_store_outbox_rows_free. New rows are due at once. */
int esm_store_outbox_due(esm_store *s, int64_t now_ms, size_t limit, esm_outbox_row **rows,
                         size_t *n, esm_err *err);
/* Delivered: 0 deleted, 1 no such row, -1 error. */
int esm_store_outbox_delete(esm_store *s, int64_t id, esm_err *err);
/* Delivery failed: attempts += 1, due again at next_attempt_ms, error saved.
 * 0 ok, 1 no such row, -1 error. */
int esm_store_outbox_retry_later(esm_store *s, int64_t id, int64_t next_attempt_ms,
                                 const char *error, esm_err *err);
/* Rows waiting, parked ones not counted (mapping NULL = all mappings); -1 on error. */
int64_t esm_store_outbox_depth(esm_store *s, const char *mapping, esm_err *err);
/* Earliest next_attempt_at of any row not parked: 0 (*when_ms set), 1 none, -1 error. */
int esm_store_outbox_next_due(esm_store *s, int64_t *when_ms, esm_err *err);

/* ---- parked rows (docs/operations.md "Parked failure records") ---- */

/* The destination refused the row for good: it is kept but no longer due (attempts += 1,
 * reason saved). 0 ok, 1 no such row (or already parked), -1 error. */
int esm_store_outbox_park(esm_store *s, int64_t id, int64_t now_ms, const char *reason,
                          esm_err *err);

/* A row as the listings show it (the payload not read). */
typedef struct {
    int64_t id;
    char *mapping;
    char *destination;
    char *reason;               /* parked: why; pending: the last delivery error (NULL: none) */
    int64_t parked_at_ms;       /* 0 while pending */
    int64_t next_attempt_at_ms; /* pending: when it is due */
    int64_t created_at_ms;
    int64_t size; /* payload bytes */
    int attempts;
} esm_outbox_row_info;

void esm_store_outbox_infos_free(esm_outbox_row_info *rows, size_t n);
/* Parked rows (parked true) or rows still to deliver (false) with id > after_id, by id, at
 * most limit. */
int esm_store_outbox_list(esm_store *s, bool parked, int64_t after_id, size_t limit,
                          esm_outbox_row_info **rows, size_t *n, esm_err *err);

typedef struct {
    char *destination;
    int64_t count;
    int64_t last_parked_at_ms;
    char *last_reason; /* the reason of the most recently parked row */
} esm_outbox_parked_dest;

void esm_store_outbox_parked_dests_free(esm_outbox_parked_dest *v, size_t n);
/* One entry per destination with parked rows, ordered by destination. */
int esm_store_outbox_parked_by_dest(esm_store *s, esm_outbox_parked_dest **v, size_t *n,
                                    esm_err *err);
/* Makes parked rows due again at now_ms: id 0 = any, destination NULL = any. Returns the
 * number of rows re-queued, -1 on error. */
int64_t esm_store_outbox_redrive(esm_store *s, int64_t id, const char *destination, int64_t now_ms,
                                 esm_err *err);
/* Forgets dedupe keys whose retention ended by now_ms; returns how many, -1 on error. */
int64_t esm_store_outbox_prune_dedupe(esm_store *s, int64_t now_ms, esm_err *err);

#endif
