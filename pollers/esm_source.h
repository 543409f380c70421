/* What every source (SQS, Kinesis, Kafka) gets from the engine, and the table of functions
 * the engine calls on it. A source only knows how to fetch, how to acknowledge and how to
 * render its records in the AWS event shape; invoking, filtering, the policy, the store and
 * destinations are shared. */
#ifndef ESM_SOURCE_H
#define ESM_SOURCE_H

#include <stdint.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"
#include "common/esm_metrics_hist.h"
#include "config/esm_config.h"
#include "filter/esm_filter.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"

struct ev_loop;
struct esm_store;
struct esm_store_writer;
struct esm_outbox_drainer;

/* Counters named after AWS's ESM metrics (docs/design.md "Metrics") plus esmd's own. */
typedef struct {
    uint64_t polled;            /* PolledEventCount */
    uint64_t filtered_out;      /* FilteredOutEventCount */
    uint64_t invoked;           /* InvokedEventCount: records sent to the function */
    uint64_t invocations;       /* invocations that ran (any outcome) */
    uint64_t failed_invoke;     /* FailedInvokeEventCount: records in failed invocations */
    uint64_t throttled;         /* invocations refused with a throttle */
    uint64_t dropped;           /* DroppedEventCount: records discarded to a failure record */
    uint64_t on_failure_queued; /* failure records written to the outbox */
    uint64_t deleted;           /* SQS: messages deleted */
    uint64_t delete_failed;     /* SQS: DeleteMessageBatch entries that failed */
    uint64_t committed;         /* streams/Kafka: records acknowledged by a checkpoint */
    uint64_t checkpoint_write_failures;
    uint64_t source_errors;    /* failed calls to the source */
    uint64_t fetch_wakeups;    /* Kafka: stalled fetchers woken (esm_kafka_part_nudge) */
    uint64_t kafka_log_resets; /* Kafka: partitions whose log could not hold the stored position
                                  (re-created topic, wiped broker): read again from the start */
    uint64_t data_trimmed;     /* Kinesis: resumed positions older than the trim horizon */
    /* Histograms, last result, bisect splits: one esm_invoke_stats_record() per invocation
     * attempt (common/esm_metrics_hist.h). Lanes get &stats->invokes as counters.invokes. */
    esm_invoke_stats invokes;
} esm_source_stats;

typedef struct {
    struct ev_loop *loop;
    esm_http *http;
    const esm_config *config;
    const esm_mapping_config *mapping;
    esm_invoker *invoker;
    esm_filter_set *filter;
    struct esm_store *store;
    struct esm_store_writer *writer;   /* lanes' checkpoints, group-committed; may be NULL */
    struct esm_outbox_drainer *outbox; /* may be NULL */
    esm_source_stats *stats;
    const char *log_ctx; /* mapping name for logs */
} esm_source_env;

typedef void (*esm_source_stopped_cb)(void *arg);

/* Per-lane gauges a source can expose on /metrics (label "lane" = shard id, partition,
 * "shardId/lane-N"). */
typedef enum {
    ESM_GAUGE_ITERATOR_AGE_SECONDS, /* Kinesis: now - arrival time of the last record read */
    ESM_GAUGE_OFFSET_LAG,           /* Kafka: high watermark - committed offset, in records */
    ESM_GAUGE_LANE_BLOCKED_SECONDS, /* seconds the lane has retried its batch (0 = not) */
    ESM_GAUGE_LANE_IN_FLIGHT,       /* records of the lane's batch in flight */
} esm_lane_gauge;
typedef void (*esm_lane_gauge_fn)(void *arg, const char *lane, esm_lane_gauge gauge, double value);

/* A source's own part of its life, the only state a source keeps. The engine combines it with
 * what it knows itself (a reload replacing the mapping, a removal, Enabled false) into the
 * mapping's state in AWS's words (engine/esm_lifecycle.h). */
typedef enum {
    ESM_SOURCE_CREATED,  /* not started yet */
    ESM_SOURCE_REACHING, /* started; its queue, stream or cluster not reached yet */
    ESM_SOURCE_RUNNING,  /* reached its peer: polling */
    ESM_SOURCE_STOPPING, /* finishing or abandoning what is in flight */
    ESM_SOURCE_STOPPED,
} esm_source_phase;

/* Where an operator moves a lane of a mapping that is not running (docs/operations.md "Moving a
 * position"). */
typedef enum {
    ESM_MOVE_TRIM_HORIZON,
    ESM_MOVE_LATEST,
    ESM_MOVE_AT_TIMESTAMP,       /* timestamp_ms */
    ESM_MOVE_AT_SEQUENCE_NUMBER, /* Kinesis: value */
    ESM_MOVE_AT_OFFSET,          /* Kafka: value */
} esm_move_kind;

typedef struct {
    esm_move_kind kind;
    int64_t timestamp_ms;
    const char *value;
} esm_move_target;

typedef struct {
    const char *name;
    void *(*create)(const esm_source_env *env, esm_err *err);
    int (*start)(void *source, esm_err *err);
    /* Stop polling; finish in-flight work or abandon it unacknowledged; call done once idle. */
    void (*stop)(void *source, esm_source_stopped_cb done, void *arg);
    void (*destroy)(void *source);
    /* Appends the members of the source's own state (lanes, positions, in flight), each
     * preceded by a comma; esm_source_status writes the object around them. */
    void (*status)(void *source, esm_buf *out);
    esm_source_phase (*phase)(void *source);
    /* The problem that keeps the source from polling or reading, NULL when there is none. */
    const char *(*last_error)(void *source);
    /* Optional (NULL = never): while one keeps the source from its peer, the problem in AWS's
     * LastProcessingResult words without "PROBLEM: " (e.g. "SASL authentication failed"). */
    const char *(*problem)(void *source);
    /* Optional (NULL = never stuck). The earliest time (esm_now_ms) since which one lane of
     * the source has been blocked on a failing batch, 0 when none is. Streams/Kafka: the min
     * over lanes of esm_lane_blocked_since_ms() (0s skipped). SQS: a FIFO message group or the
     * whole mapping failing every invocation. The engine compares it with
     * EsmdOptions.StuckLaneSeconds for /readyz and /status. */
    int64_t (*stuck_since)(void *source);
    /* Optional (NULL = none): calls emit once per lane and gauge it knows. */
    void (*lane_gauges)(void *source, esm_lane_gauge_fn emit, void *arg);
    /* Optional (NULL: the source has no positions, SQS). Moves one lane of m, which is not
     * running, in the store (and in the source's own position store: a Kafka group's offsets);
     * appends to out the members of the answer, each preceded by a comma. Returns 0, or -1
     * with err: ESM_ERR_INVALID (a target the lane cannot take), ESM_ERR_NOT_FOUND (no such
     * lane), ESM_ERR_PEER (the source refused: another consumer holds the lane), others. */
    int (*move)(const esm_mapping_config *m, struct esm_store *store, const char *lane,
                const esm_move_target *to, esm_buf *out, esm_err *err);
    /* What a stored position means, for the positions listing (NULL with move). */
    const char *position_means;
    /* The store's source key of m's lanes (malloc'ed; NULL when out of memory). */
    char *(*source_key)(const esm_mapping_config *m);
} esm_source_ops;

/* The source's /status object, SourceState: {"State", the source's own members, "LastError"};
 * State names the phase in AWS's words (Creating, Enabling, Enabled, Disabling, Disabled). */
void esm_source_status(const esm_source_ops *ops, void *source, esm_buf *out);
const char *esm_source_phase_name(esm_source_phase p);

/* The table of a source type. */
const esm_source_ops *esm_source_ops_for(esm_source_type t);

extern const esm_source_ops esm_sqs_source;
extern const esm_source_ops esm_kinesis_source;
extern const esm_source_ops esm_kafka_source;

#endif
