/* The Kinesis source's runtime state, shared by esm_kinesis.c (the source table, shard
 * discovery, status) and esm_kinesis_shard.c (one shard: iterator, GetRecords, lanes,
 * checkpoint). Not a public interface. */
#ifndef ESM_KINESIS_INT_H
#define ESM_KINESIS_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/esm_aws.h"
#include "checkpoint/esm_store.h"
#include "lane/esm_lane.h"
#include "pollers/esm_kinesis_records.h"
#include "pollers/esm_kinesis_shards.h"
#include "pollers/esm_source.h"

#define KIN_TARGET(action) "Kinesis_20131202." action
#define KIN_SEQ_MAX 136                   /* sequence numbers are up to 128 digits */
#define KIN_MIN_POLL_MS 200               /* never more than 5 GetRecords a second per shard */
#define KIN_READ_LIMIT 10000              /* GetRecords Limit: AWS's maximum */
#define KIN_FIRST_READ 1000               /* the first GetRecords Limit (at least BatchSize) */
#define KIN_BUFFER_RECORDS 10000          /* records held per shard (at least 2 batches per lane) */
#define KIN_BUFFER_BYTES (12u << 20)      /* their JSON bytes (at least 2 x 6 MB per lane) */
#define KIN_IDLE_POLL_MS 1000             /* caught up: about one GetRecords a second */
#define KIN_LIST_INTERVAL_S 30.0          /* shard discovery */
#define KIN_LATEST_MARKER "@latest-since" /* store lane: when a LATEST mapping first started */

/* One Kinesis API call: 15 s (KIN_CALL_TIMEOUT_MS); the fault tests lower it to see a slow
 * answer time out. */
extern long kin_call_timeout_ms;
#define KIN_CALL_TIMEOUT_MS kin_call_timeout_ms

typedef struct kin_source kin_source;
typedef struct kin_shard kin_shard;

/* A FIFO of record pointers that can also take records back at its front. */
typedef struct {
    esm_kinesis_record **v;
    size_t head, len, cap;
} kin_deque;

/* One ordered lane of a shard (the shard itself when ParallelizationFactor is 1). */
typedef struct {
    kin_shard *shard;
    unsigned idx;
    char key[200]; /* store lane key: shardId, or shardId/lane-N */
    char log_ctx[256];
    esm_lane *lane;
    kin_deque queue;        /* matched records waiting for a batch */
    size_t queue_bytes;     /* their JSON bytes */
    int64_t queue_since_ms; /* when the oldest queued record arrived here (batching window) */
    ev_timer window;
    /* the batch handed to the lane */
    esm_kinesis_record **batch;
    esm_policy_record *precs;
    size_t n_batch;
    size_t resolved; /* records [0, resolved) of the batch are done */
    bool in_batch;
    unsigned gen;                  /* batches started: tells a batch apart from the one after it */
    char pending_pos[KIN_SEQ_MAX]; /* the position the lane's write in flight stores ("" none) */
} kin_lane;

/* Trimmed-data detection (esm_kinesis_trim.c): a shard about to resume after a position first
 * compares it with the oldest record still in the shard. */
typedef struct {
    bool checked; /* the position about to be resumed has been compared */
    int pages;    /* empty pages followed at the trim horizon */
    char after[KIN_SEQ_MAX];
    /* the last detection, for /status */
    unsigned count;
    char lost_after[KIN_SEQ_MAX]; /* the position resumed */
    char oldest[KIN_SEQ_MAX];     /* the oldest record the shard still had */
    int64_t at_ms;
} kin_trim;

typedef enum {
    KS_WAITING,  /* a parent shard is still being read */
    KS_STARTING, /* getting an iterator */
    KS_READING,  /* GetRecords loop */
    KS_DRAINING, /* SHARD_END read; waiting for the lanes to resolve every record */
    KS_FINISHED, /* drained and recorded as finished */
    KS_FAILED,   /* the checkpoint does not fit the stream: not read, reported */
} kin_shard_state;

struct kin_shard {
    kin_source *src;
    esm_kinesis_shard_info info; /* latest ListShards facts (owned) */
    bool listed;                 /* in the latest complete ListShards answer */
    bool first_discovery;        /* found by the first ListShards of a LATEST mapping's life */
    kin_shard_state state;
    char log_ctx[224];
    esm_kinesis_render_ctx rctx;
    char checkpoint[KIN_SEQ_MAX]; /* last position stored for the shard ("" = none) */
    char *iterator;
    char fetch_pos[KIN_SEQ_MAX]; /* last sequence number read ("" = none yet) */
    esm_http_call *call;
    ev_timer timer; /* next GetRecords / GetShardIterator */
    unsigned errors;
    unsigned expired_in_row; /* ExpiredIteratorException answers since a GetRecords worked */
    int64_t last_poll_ms;
    int read_limit;        /* Limit of the GetRecords in flight (or the last one) */
    int read_size;         /* Limit wanted for the next GetRecords (0: the first), see get_limit */
    int64_t millis_behind; /* MillisBehindLatest of the last GetRecords; -1 unknown */
    int64_t last_arrival_ms;
    kin_deque order; /* fetched records not yet passed by the watermark */
    size_t order_bytes;
    char watermark[KIN_SEQ_MAX]; /* every record up to here is resolved ("" = none yet) */
    kin_lane *lanes;
    unsigned n_lanes;
    kin_trim trim;
    char last_error[384];
};

struct kin_source {
    esm_source_env env;
    const esm_mapping_config *map;
    esm_aws *aws;
    const char *region;
    char identity_arn[160];
    enum { K_INIT, K_RUNNING, K_STOPPING, K_STOPPED } state;
    bool listed_once;          /* a ListShards answer came back: the stream exists */
    bool described;            /* DescribeStreamSummary answered */
    int64_t stream_created_ms; /* StreamCreationTimestamp; 0 = unknown */
    kin_shard **shards;
    size_t n_shards;
    /* discovery */
    esm_http_call *list_call;
    esm_kinesis_shard_info *list_acc;
    size_t list_n;
    ev_timer list_timer;
    unsigned list_errors;
    char unknown_shards[512]; /* stored unfinished shards the stream does not have */
    /* what the store held when the source started */
    esm_store_lane *stored;
    size_t n_stored;
    int64_t latest_since_ms; /* LATEST mappings: when the mapping first started */
    bool latest_fresh;       /* this run created latest_since_ms: first discovery reads LATEST */
    esm_lane_counters counters;
    esm_source_stopped_cb stopped_cb;
    void *stopped_arg;
    ev_timer stop_deadline;
    ev_timer stop_tick; /* settles lanes whose invocation answered while stopping */
    ev_timer stopped_notify;
    char last_error[256];
};

/* esm_kinesis_shard.c */
kin_shard *kin_shard_new(kin_source *s, const esm_kinesis_shard_info *info);
void kin_shard_free(kin_shard *sh);
/* Starts reading (state must be KS_WAITING): checks the checkpoint, gets an iterator. */
void kin_shard_start(kin_shard *sh);
/* Stop reading: cancels calls and timers, drops queued records, settles the lanes. */
void kin_shard_stop(kin_shard *sh);
/* While stopping: abandons every lane batch that is not waiting for an invocation's answer (a
 * batch waiting to retry would not run again; its retry state stays persisted). Lanes invoking
 * keep going, so the outcome of a call that ran is recorded. */
void kin_shard_settle(kin_shard *sh);
/* Takes records read from the shard (in order; each taken one is set to NULL in recs): into the
 * order list and, when they match the filters, their lane's queue. Returns how many it took
 * (fewer when out of memory). */
size_t kin_shard_take(kin_shard *sh, esm_kinesis_record **recs, size_t n);
/* After kin_shard_take (and the iterator update): stores a watermark that filtered-out records
 * moved and gives the lanes their batches. */
void kin_shard_offer(kin_shard *sh);
/* Marks the shard's checkpoint as not fitting the stream: not read, logged, in the status. */
void kin_shard_mismatch(kin_shard *sh, const char *why);
/* Abandons every lane batch (the shutdown deadline). */
void kin_shard_abandon(kin_shard *sh);
bool kin_shard_idle(const kin_shard *sh);
void kin_shard_status(kin_shard *sh, esm_buf *out);
/* IteratorAge: how far behind the shard is: MillisBehindLatest, or the age of the oldest record
 * read but not yet resolved when that is more (so a blocked shard's age keeps growing, and a
 * caught-up shard's is 0). */
int64_t kin_shard_iterator_age_ms(const kin_shard *sh, int64_t now);
const char *kin_shard_state_name(kin_shard_state st);

/* A failed call of the shard (or a 2xx answer it cannot use): counted, shown in the status,
 * logged (the first and every 10th in a row); the shard's timer fires after the returned
 * backoff. */
int64_t kin_shard_call_failed(kin_shard *sh, const char *what, const char *type,
                              const char *message, bool throttled);
/* Requests the shard's iterator (state KS_STARTING), after the trim check. */
void kin_shard_request_iterator(kin_shard *sh);

/* esm_kinesis_trim.c */
/* Reads the oldest record of the shard, compares it with `after`, then requests the iterator
 * (kin_shard_request_iterator) with sh->trim.checked set. */
void kin_trim_check(kin_shard *sh, const char *after);
/* Appends the last detection ({"Count":..,"After":..,"OldestAvailable":..,"At":..} or null). */
void kin_trim_status(const kin_shard *sh, esm_buf *out);

/* esm_kinesis.c */
void kin_source_shard_finished(kin_source *s, kin_shard *sh);
void kin_source_refresh_shards(kin_source *s);
void kin_source_maybe_stopped(kin_source *s);

/* kin_deque (esm_kinesis_shard.c) */
bool kin_deque_push(kin_deque *d, esm_kinesis_record *r);
esm_kinesis_record *kin_deque_pop(kin_deque *d);
esm_kinesis_record *kin_deque_at(const kin_deque *d, size_t i);
bool kin_deque_unshift(kin_deque *d, esm_kinesis_record *const *rs, size_t n);
void kin_deque_free(kin_deque *d);

#endif
