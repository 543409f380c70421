/* An ordered lane: one shard, shard lane (ParallelizationFactor) or Kafka partition, with at
 * most one batch in flight. The lane drives the pure policy (policy/esm_policy.h) for that
 * batch: it invokes the function, classifies the outcome (ReportBatchItemFailures included),
 * and makes each decision durable in ONE store transaction (checkpoint, retry state and the
 * failure records of discarded ranges) before it tells the source what was acknowledged.
 * Sources (Kinesis, Kafka) only fetch records, render them in the AWS event shape and turn a
 * resolved index into a checkpoint position.
 *
 * Restart: the retry state (attempts, bisect position) is persisted with the first and last
 * record ids of the batch. When a lane starts a batch whose first id matches the persisted
 * one, it resumes that state, and it takes only the records up to the persisted last id (the
 * rest is left for the next batch), so MaximumRetryAttempts is neither reset nor exceeded. */
#ifndef ESM_LANE_H
#define ESM_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"
#include "config/esm_config.h"
#include "common/esm_metrics_hist.h"
#include "invoker/esm_invoker.h"
#include "invoker/esm_rbif.h"
#include "policy/esm_failure_record.h"
#include "policy/esm_policy.h"

struct ev_loop;
struct esm_store;
struct esm_store_writer;
struct esm_outbox_drainer;
typedef struct esm_lane esm_lane;

/* Counters the lane adds to (the mapping's esm_source_stats fields of the same names). */
typedef struct {
    uint64_t *invoked, *invocations, *failed_invoke, *throttled, *dropped, *on_failure_queued,
        *committed, *checkpoint_write_failures;
    esm_invoke_stats *invokes; /* &stats->invokes: latency/batch histograms, last result, bisect
                                  splits (may be NULL) */
} esm_lane_counters;

typedef struct {
    /* Writes the AWS event for records [lo, hi) of the batch (e.g. {"Records":[...]}). */
    void (*render_event)(void *arg, size_t lo, size_t hi, esm_buf *out);
    /* Fills the source-specific part of a failure record for records [lo, hi): fr->source,
     * fr->stream.* or fr->kafka.*, fr->batch_size. Strings it points to must stay valid until
     * the next call. dest is the destination string the record goes to (kafka:// destinations
     * want the kafka:// destination shape of docs/design.md). */
    void (*describe_failure)(void *arg, size_t lo, size_t hi, const char *dest,
                             esm_failure_record *fr);
    /* The checkpoint position once records [0, resolved) are done (acknowledged or
     * discarded); NULL keeps the stored position (e.g. another shard lane is behind). */
    const char *(*checkpoint_after)(void *arg, size_t resolved);
    /* Kafka: the message key of record i for kafka:// failure records; NULL = none. */
    const void *(*record_key)(void *arg, size_t i, size_t *len);
    /* Records [0, resolved) are durable now (checkpoint moved): Kafka stores/commits offsets. */
    void (*acknowledged)(void *arg, size_t resolved);
    /* The batch is finished (every record resolved) or abandoned; the lane is idle again. */
    void (*done)(void *arg, bool abandoned);
    /* Optional. When set, a batch whose records all succeeded is finished without waiting for
     * its checkpoint: the write trails behind (in order, at most a few per lane) while the next
     * batch runs, and acknowledged() is not called for it; instead durable(position) is, once
     * the checkpoint position (checkpoint_after's string) is durable, or durable(NULL) when the
     * write failed (nothing to acknowledge; the source may re-check esm_lane_busy). A crash
     * replays at most those trailing batches, as AWS's own checkpointing does. */
    void (*durable)(void *arg, const char *position);
} esm_lane_source;

typedef struct {
    struct ev_loop *loop;
    esm_invoker *invoker;
    struct esm_store *store;
    struct esm_store_writer *writer;   /* checkpoints on the writer thread (group commit); NULL =
                                          written on the loop thread */
    struct esm_outbox_drainer *outbox; /* may be NULL */
    const esm_mapping_config *mapping;
    const char *source_key; /* store key: stream ARN, or bootstrap/topic */
    const char *lane_key;   /* store key: shardId, "shardId/lane-3", partition number */
    const char *log_ctx;
    esm_rbif_id_kind id_kind; /* how itemIdentifiers look: sequence numbers or Kafka objects */
    size_t event_envelope;    /* bytes of render_event's output without records: with the
                                 records' policy sizes, esm_event_size of a unit is exactly the
                                 length render_event writes for it */
    esm_lane_counters counters;
    const esm_lane_source *source;
    void *arg;
} esm_lane_env;

esm_lane *esm_lane_create(const esm_lane_env *env);
void esm_lane_destroy(esm_lane *lane); /* abandons a batch in flight (nothing acknowledged) */

/* Starts a batch: records[i].id are the record identifiers in the RBIF form (Kinesis sequence
 * numbers; Kafka "topic-partition:offset"). The arrays must stay valid until done(). Returns
 * the number of records the lane took (<= n: fewer when a persisted retry covers a shorter
 * range), or -1 when the lane is busy. */
long esm_lane_start(esm_lane *lane, const esm_policy_record *records, size_t n);
/* A batch is in flight, or a trailing checkpoint is not durable yet. */
bool esm_lane_busy(const esm_lane *lane);
/* esm_lane_start would take a batch now (no batch in flight; checkpoints may still trail). */
bool esm_lane_can_start(const esm_lane *lane);
/* True while the lane waits for an invocation's answer or for its checkpoint write (worth
 * waiting for at shutdown). */
bool esm_lane_finishing(const esm_lane *lane);
/* Stop: cancel an invocation in flight and drop the batch unacknowledged (its retry state
 * stays persisted); done(arg, true) is called. */
void esm_lane_abandon(esm_lane *lane);
/* Since when the lane has been retrying its current batch (0 = not blocked). */
int64_t esm_lane_blocked_since_ms(const esm_lane *lane);
/* Appends {"InFlight":…,"Records":n,"Resolved":lo,"Attempts":…,"BlockedSince":…,"LastResult":…}. */
void esm_lane_status(const esm_lane *lane, esm_buf *out);

#endif
