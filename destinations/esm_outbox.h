/* The outbox drainer: delivers failure records written to the store's outbox
 * (checkpoint/esm_store.h) to their destinations (destinations/esm_dest.h), at least once and
 * never dropping one (docs/design.md "Architecture", principle 4).
 *
 * - A libev timer scans due rows (esm_store_outbox_due) and starts deliveries: at most
 *   max_in_flight in total and max_in_flight_per_destination per destination (default 1, so
 *   each destination receives its rows in id order). esm_outbox_drainer_kick() wakes the
 *   drainer right after a row was written.
 * - Success deletes the row. Failure saves the error and reschedules the row with full-jitter
 *   exponential backoff (1 s .. 5 min, destinations/esm_backoff.h) through
 *   esm_store_outbox_retry_later; the destination is then "blocked" until that time and its
 *   other due rows are deferred to the same time (not attempted, so a dead destination costs
 *   one attempt per backoff step, not one per row, and order is kept). A row whose
 *   destination string does not parse stays in the outbox, retried at the backoff cap, with
 *   the parse error as last_error (visible in status).
 * - A destination that refuses a row for good (too large, invalid contents:
 *   destinations/esm_dest_refusal.h) gets it parked: kept in the store, no longer due, counted
 *   and shown in status; the rows behind it are delivered. esm_outbox_drainer_redrive makes
 *   parked rows due again (docs/operations.md "Parked failure records").
 * - A restart resumes: rows live in SQLite until a destination confirmed them. Duplicates are
 *   limited to rows in flight at a crash.
 *
 * Kafka destinations: `kafka://HOST:PORT[,..]/TOPIC` names the cluster; `kafka://TOPIC` (the
 * source cluster) is resolved through env->kafka_source(row.mapping). The store's writers
 * store the explicit form (esm_store.h), so for the bootstrap the mapping is only a fallback.
 * A destination on the row's mapping's own cluster gets that mapping's security settings
 * (esm_kafka_dest_security); another cluster is plaintext. One librdkafka producer per
 * bootstrap list and security identity (acks=all, enable.idempotence=true), served from the
 * loop (destinations/esm_kafka_producer.h); message key = the row's key; the delivery report
 * decides.
 *
 * Everything runs on the loop thread; the store may be shared with other loops (it locks). */
#ifndef ESM_OUTBOX_H
#define ESM_OUTBOX_H

#include <stdint.h>

#include "aws/esm_aws.h"
#include "checkpoint/esm_store.h"
#include "common/esm_buf.h"
#include "config/esm_config.h"
#include "http/esm_http.h"

struct ev_loop;
typedef struct esm_outbox_drainer esm_outbox_drainer;

/* For kafka:// rows: the row's mapping when it is a Kafka source (its bootstrap list and
 * security settings), or NULL (a kafka://TOPIC row then waits, with that error). The result
 * is used during the call only. */
typedef const esm_mapping_config *(*esm_outbox_kafka_source_fn)(const char *mapping, void *arg);

typedef struct {
    esm_http *http;      /* http(s) destinations; required */
    esm_aws *sqs;        /* NULL: SQS rows wait with "no SQS endpoint configured" */
    esm_aws *sns;        /* NULL: SNS rows wait likewise */
    const char *region;  /* the clients' region; an ARN in another region is logged once */
    const char *account; /* the default account: GetQueueUrl names the owner only if different */
    esm_outbox_kafka_source_fn kafka_source;
    void *kafka_source_arg;
    int max_in_flight;                 /* 0 = 16 */
    int max_in_flight_per_destination; /* 0 = 1 (in order) */
    long request_timeout_ms;           /* http / sqs / sns; 0 = 30000 */
    long kafka_message_timeout_ms;     /* produce deadline; 0 = 30000 */
    long kafka_flush_timeout_ms;       /* bounded flush at destroy; 0 = 5000 */
    long idle_scan_ms;                 /* longest sleep between scans; 0 = 5000 */
} esm_outbox_env;

/* Starts draining at once. The env's clients and the store must outlive the drainer. */
esm_outbox_drainer *esm_outbox_drainer_create(struct ev_loop *loop, esm_store *store,
                                              const esm_outbox_env *env);
/* Stops: cancels HTTP/AWS calls in flight (their rows stay in the outbox, due again), flushes
 * Kafka producers for at most kafka_flush_timeout_ms (confirmed rows are deleted, the others
 * stay). Call before destroying env->http / the AWS clients / the store. */
void esm_outbox_drainer_destroy(esm_outbox_drainer *d);
/* A row was just written: scan now instead of at the next timer. */
void esm_outbox_drainer_kick(esm_outbox_drainer *d);

typedef struct {
    uint64_t delivered;       /* rows confirmed and deleted */
    uint64_t failed_attempts; /* deliveries that failed (rows deferred behind them not counted) */
    uint64_t deferred;        /* rows pushed back behind a failing destination */
    uint64_t parked;          /* rows parked since start (refused for good) */
    int in_flight;
} esm_outbox_counters;

void esm_outbox_drainer_counters(const esm_outbox_drainer *d, esm_outbox_counters *out);
/* Appends a JSON object: {"depth":N,"in_flight":N,"delivered":N,"failed_attempts":N,
 * "deferred":N,"parked":N,"parked_since_start":N,"destinations":[{"destination":"...",
 * "kind":"http","depth":N,"oldest_age_ms":N|null,"in_flight":N,"consecutive_failures":N,
 * "last_error":"..."|null,"last_error_at":ISO|null,"last_success_at":ISO|null,
 * "blocked_until":ISO|null,"delivered":N,"failed_attempts":N,"parked":N,
 * "last_park_reason":"..."|null,"last_parked_at":ISO|null}]}. Destination strings are shown
 * without URL credentials or query strings. depth leaves parked rows out; per-destination
 * depth counts the rows this drainer has seen (all rows present at start, up to 10000, and
 * every row written since). parked comes from the store (-1 when it could not be read). */
void esm_outbox_drainer_status(esm_outbox_drainer *d, esm_buf *json);
/* Makes parked rows due again: id 0 = any, destination NULL = any (matched as stored or as
 * shown in status). Returns how many, -1 on error (err set). */
int64_t esm_outbox_drainer_redrive(esm_outbox_drainer *d, int64_t id, const char *destination,
                                   esm_err *err);
/* Appends {"parked":[{"id":N,"mapping":"...","destination":"...","reason":"...",
 * "parked_at":ISO,"created_at":ISO,"size":N,"attempts":N}],"next_after":N|null}: parked
 * rows with id > after_id, at most limit (next_after pages on). parked false: rows still to
 * deliver, {"pending":[...]} with "last_error" (null: not tried yet) and "next_attempt_at" in
 * place of "reason" and "parked_at". 0 ok, -1 error (err set). */
int esm_outbox_rows_json(esm_store *store, bool parked, int64_t after_id, size_t limit,
                         esm_buf *json, esm_err *err);

#endif
