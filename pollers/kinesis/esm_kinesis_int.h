/* The Kinesis source's internal interface, shared by the files of pollers/kinesis/ and their
 * tests: records, shard discovery, and the runtime state. Not a public interface; the engine
 * sees only esm_kinesis_source (pollers/esm_source.h). */
#ifndef ESM_KINESIS_INT_H
#define ESM_KINESIS_INT_H

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/esm_aws.h"
#include "checkpoint/esm_store.h"
#include "common/esm_buf.h"
#include "config/esm_config.h"
#include "lane/esm_lane.h"
#include "pollers/esm_source.h"

/* Kinesis records as esmd holds them, and the Kinesis JSON 1.1 requests and responses the source
 * exchanges (ListShards, GetShardIterator, GetRecords). Pure: no I/O, no clock.
 *
 * A record is rendered once, at fetch time, into the exact element of AWS's Kinesis event
 * (docs/design.md "Kinesis event"); a batch is then {"Records":[...]} around the pre-rendered
 * elements. The data is passed through as the base64 text the stream returned (KPL aggregates are
 * not de-aggregated). invokeIdentityArn: esmd has no execution role, so it renders
 * "arn:aws:iam::<account>:role/esmd" (esm_kinesis_identity_arn). */
typedef struct {
    const char *stream_arn;
    const char *region;
    const char *identity_arn; /* invokeIdentityArn */
    const char *shard_id;
} esm_kinesis_render_ctx;

typedef struct esm_kinesis_record {
    char *seq; /* SequenceNumber (decimal string): the RBIF itemIdentifier */
    char *partition_key;
    int64_t arrival_ms; /* ApproximateArrivalTimestamp */
    char *data;         /* the base64 Data as returned (for filters); may be freed early */
    char *json;         /* the record exactly as delivered (one element of "Records") */
    size_t json_len;
    /* bookkeeping of the source runtime */
    unsigned lane; /* ParallelizationFactor lane */
    bool done;     /* acknowledged, discarded or filtered out */
    bool in_lane;  /* queued in or handed to a lane */
    bool in_order; /* still in the shard's order list (the watermark has not passed it) */
} esm_kinesis_record;

/* One GetRecords response. */
typedef struct {
    esm_kinesis_record **records;
    size_t n;
    char *next_iterator;          /* NULL: the shard is closed and fully read (SHARD_END) */
    int64_t millis_behind_latest; /* -1 when absent */
    size_t skipped;               /* malformed records left out */
} esm_kinesis_page;

/* Parses a GetRecords response; records are rendered with ctx. Returns 0, or -1 when the
 * response does not have the expected shape (why says what). Clear the page afterwards. */
int esm_kinesis_parse_get_records(const cJSON *resp, const esm_kinesis_render_ctx *ctx,
                                  esm_kinesis_page *out, char *why, size_t why_len);
/* Frees what the page still owns (records set to NULL in out->records are skipped). */
void esm_kinesis_page_clear(esm_kinesis_page *p);

/* Builds a record (copies the strings, renders the JSON). NULL when out of memory. */
esm_kinesis_record *esm_kinesis_record_new(const esm_kinesis_render_ctx *ctx, const char *seq,
                                           const char *partition_key, int64_t arrival_ms,
                                           const char *data_b64);
void esm_kinesis_record_free(esm_kinesis_record *r);
/* Appends the record element of AWS's Kinesis event. */
void esm_kinesis_render_record(const esm_kinesis_render_ctx *ctx, const char *seq,
                               const char *partition_key, int64_t arrival_ms, const char *data_b64,
                               esm_buf *b);
/* Epoch seconds with the milliseconds as a fraction, trailing zeros dropped: 1717000123.456,
 * 1717000123.4, 1717000123. */
void esm_kinesis_put_seconds(esm_buf *b, int64_t ms);
/* Bytes of {"Records":[r1,...,rn]} given the summed record lengths (esm_event_size; with n = 0
 * it is the envelope). */
size_t esm_kinesis_event_size(size_t n_records, size_t records_bytes);
/* Writes {"Records":[...]} for recs[0..n). */
void esm_kinesis_render_event(esm_kinesis_record *const *recs, size_t n, esm_buf *b);
/* "arn:aws:iam::<account>:role/esmd" into out. */
void esm_kinesis_identity_arn(const char *account, char *out, size_t len);

/* Compares two sequence numbers numerically (decimal strings of any length). */
int esm_kinesis_seq_cmp(const char *a, const char *b);
/* True when s is a non-empty decimal string. */
bool esm_kinesis_seq_valid(const char *s);
/* The ParallelizationFactor lane of a partition key: FNV-1a (32 bit) of the key modulo pf, so
 * one key always goes to one lane (per-key order) and keys spread evenly. pf <= 1 gives 0. */
unsigned esm_kinesis_lane_of(const char *partition_key, unsigned pf);

/* ---- ListShards ---- */

typedef struct {
    char *id;
    char *parent;          /* ParentShardId or NULL */
    char *adjacent_parent; /* AdjacentParentShardId or NULL */
    char *starting_seq;    /* SequenceNumberRange.StartingSequenceNumber or NULL */
    char *ending_seq;      /* SequenceNumberRange.EndingSequenceNumber: NULL while open */
} esm_kinesis_shard_info;

/* Appends the Shards of a ListShards response to *shards (grown with realloc) and sets
 * *next_token (malloc'ed, NULL on the last page). Returns 0 or -1 (why says what). */
int esm_kinesis_parse_list_shards(const cJSON *resp, esm_kinesis_shard_info **shards, size_t *n,
                                  char **next_token, char *why, size_t why_len);
void esm_kinesis_shard_info_free(esm_kinesis_shard_info *shards, size_t n);

/* ---- request bodies ---- */

typedef enum {
    ESM_KINESIS_IT_TRIM_HORIZON,
    ESM_KINESIS_IT_LATEST,
    ESM_KINESIS_IT_AT_TIMESTAMP,
    ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER,
    ESM_KINESIS_IT_AT_SEQUENCE_NUMBER, /* only where an operator moved a shard */
} esm_kinesis_iterator_type;

const char *esm_kinesis_iterator_type_name(esm_kinesis_iterator_type t);
/* {"StreamName":..} or {"NextToken":..} (AWS refuses both together) with MaxResults. */
void esm_kinesis_body_list_shards(esm_buf *b, const char *stream_name, const char *next_token);
/* seq is used with AFTER_ and AT_SEQUENCE_NUMBER, timestamp_ms with AT_TIMESTAMP. */
void esm_kinesis_body_shard_iterator(esm_buf *b, const char *stream_name, const char *shard_id,
                                     esm_kinesis_iterator_type type, const char *seq,
                                     int64_t timestamp_ms);
void esm_kinesis_body_get_records(esm_buf *b, const char *iterator, int limit);
/* {"StreamName":..} (DescribeStreamSummary). */
void esm_kinesis_body_stream(esm_buf *b, const char *stream_name);
/* StreamDescriptionSummary.StreamCreationTimestamp (epoch seconds) in ms; -1 if absent. */
int64_t esm_kinesis_parse_stream_created(const cJSON *resp);

/* Kinesis shard lineage and where a shard starts reading. Pure: no I/O, no clock.
 *
 * Resharding (docs/design.md "Kinesis resharding"): a child shard (ParentShardId /
 * AdjacentParentShardId) must not be read until every parent has been drained to SHARD_END, so
 * per-key order holds across a split or a merge. A parent that ListShards no longer returns has
 * expired (past retention) and counts as drained. */
typedef struct {
    const char *id;
    const char *parent;          /* NULL if none */
    const char *adjacent_parent; /* NULL if none */
    bool finished;               /* drained to SHARD_END and every record resolved */
} esm_kinesis_lineage_node;

typedef enum {
    ESM_KINESIS_SHARD_FINISHED, /* nothing left to do */
    ESM_KINESIS_SHARD_READY,    /* may be read now */
    ESM_KINESIS_SHARD_WAITING,  /* a parent is still being read */
} esm_kinesis_shard_gate;

/* What shard nodes[i] may do, given the lineage of nodes[0..n). */
esm_kinesis_shard_gate esm_kinesis_lineage_gate(const esm_kinesis_lineage_node *nodes, size_t n,
                                                size_t i);
/* Fills order[0..n) with the indices of nodes so that every parent comes before its children
 * (stable otherwise: input order among unrelated shards). Returns 0, or -1 on a cycle (a
 * broken ListShards answer), leaving order in input order. */
int esm_kinesis_lineage_order(const esm_kinesis_lineage_node *nodes, size_t n, size_t *order);
/* "parent,adjacent" / "parent" / "" into out: the store's parent list of a shard. */
void esm_kinesis_lineage_parents(const char *parent, const char *adjacent, char *out, size_t len);

/* Where to start a shard that is about to be read. */
typedef struct {
    esm_kinesis_iterator_type type;
    const char *seq;      /* AFTER_SEQUENCE_NUMBER: the checkpoint; AT_SEQUENCE_NUMBER */
    int64_t timestamp_ms; /* AT_TIMESTAMP */
} esm_kinesis_start;

/* checkpoint: the stored position (last sequence number acknowledged), or NULL.
 * A checkpoint resumes AFTER_SEQUENCE_NUMBER. Without one, the mapping's StartingPosition
 * applies: TRIM_HORIZON, AT_TIMESTAMP (StartingPositionTimestamp, for every shard: a child
 * created after it equals TRIM_HORIZON); LATEST reads an open shard of the mapping's first
 * discovery (first_discovery true) at LATEST, and every other shard AT_TIMESTAMP of the moment
 * the mapping first started (latest_since_ms, persisted): a child created later is read from
 * its start, and a restart before the first checkpoint loses nothing that arrived meanwhile. */
esm_kinesis_start esm_kinesis_start_for(const char *checkpoint, esm_starting_position sp,
                                        int64_t sp_timestamp_ms, bool first_discovery,
                                        bool shard_open, int64_t latest_since_ms);

/* An operator's start of a shard (esm_store_lane.start_at, written by esm_kinesis_move):
 * "TRIM_HORIZON", "AT_TIMESTAMP:<epoch ms>" or "AT_SEQUENCE_NUMBER:<seq>" (out->seq points
 * into text). false when text is none of them. */
bool esm_kinesis_start_at(const char *text, esm_kinesis_start *out);

/* The source's move and source_key operations (esm_kinesis_move.c). */
int esm_kinesis_move(const esm_mapping_config *m, esm_store *store, const char *lane,
                     const esm_move_target *to, esm_buf *out, esm_err *err);
char *esm_kinesis_source_key(const esm_mapping_config *m);

/* NULL when the checkpoint can belong to the shard described by si; else why not (a stream
 * deleted and re-created under the same name, a checkpoint from another shard): a checkpoint
 * that is not a sequence number, older than the shard's first sequence number, or past the
 * end of a closed shard. */
const char *esm_kinesis_checkpoint_misfit(const char *checkpoint, const esm_kinesis_shard_info *si);

/* What the store holds for one shard, from the rows of its stream (esm_store_checkpoint_list). A
 * shard has its own row (lane key = shard id) and, with ParallelizationFactor > 1, one row per
 * shard lane ("<shardId>/lane-N"); every row stores the shard's watermark, so the checkpoint is
 * the highest position among them. */
typedef struct {
    char checkpoint[ESM_POSITION_MAX];    /* "" = none */
    char start_at[ESM_POSITION_MAX + 32]; /* "" = none; an operator's move (esm_kinesis_start_at) */
    bool finished;
    /* A row with a position or the finished flag written before the stream was created: it
     * belongs to an earlier stream of the same name (deleted and re-created), so it must not be
     * used. Sequence numbers cannot tell (an emulator re-creating a stream within the same
     * second hands out the very same numbers); the stream's creation time can. */
    bool stale;
    int64_t stored_at_ms; /* the latest such row's write time */
} esm_kinesis_stored;

/* stream_created_ms: StreamCreationTimestamp (0 = unknown: nothing is stale). */
void esm_kinesis_stored_shard(const esm_store_lane *rows, size_t n, const char *shard_id,
                              int64_t stream_created_ms, esm_kinesis_stored *out);
/* True when a store lane key is a row of shard_id (its own or one of its PF lanes). */
bool esm_kinesis_row_of_shard(const char *lane_key, const char *shard_id);

/* The Kinesis source's runtime state, shared by esm_kinesis.c (the source table, shard
 * discovery, status) and esm_kinesis_shard.c (one shard: iterator, GetRecords, lanes,
 * checkpoint). Not a public interface. */
#define KIN_TARGET(action) "Kinesis_20131202." action
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
extern long esm_kinesis_call_timeout_ms;
#define KIN_CALL_TIMEOUT_MS esm_kinesis_call_timeout_ms

typedef struct esm_kinesis_stream esm_kinesis_stream;
typedef struct esm_kinesis_shard esm_kinesis_shard;

/* A FIFO of record pointers that can also take records back at its front. */
typedef struct {
    esm_kinesis_record **v;
    size_t head, len, cap;
} esm_kinesis_deque;

/* One ordered lane of a shard (the shard itself when ParallelizationFactor is 1). */
typedef struct {
    esm_kinesis_shard *shard;
    unsigned idx;
    char key[200]; /* store lane key: shardId, or shardId/lane-N */
    char log_ctx[256];
    esm_lane *lane;
    esm_kinesis_deque queue; /* matched records waiting for a batch */
    size_t queue_bytes;      /* their JSON bytes */
    int64_t queue_since_ms;  /* when the oldest queued record arrived here (batching window) */
    ev_timer window;
    /* the batch handed to the lane */
    esm_kinesis_record **batch;
    esm_policy_record *precs;
    size_t n_batch;
    size_t resolved; /* records [0, resolved) of the batch are done */
    bool in_batch;
    unsigned gen; /* batches started: tells a batch apart from the one after it */
    char pending_pos[ESM_POSITION_MAX]; /* the position the lane's write in flight stores ("" none)
                                         */
} esm_kinesis_lane;

/* Trimmed-data detection (esm_kinesis_trim.c): a shard about to resume after a position first
 * compares it with the oldest record still in the shard. */
typedef struct {
    bool checked; /* the position about to be resumed has been compared */
    int pages;    /* empty pages followed at the trim horizon */
    char after[ESM_POSITION_MAX];
    /* the last detection, for /status */
    unsigned count;
    char lost_after[ESM_POSITION_MAX]; /* the position resumed */
    char oldest[ESM_POSITION_MAX];     /* the oldest record the shard still had */
    int64_t at_ms;
} esm_kinesis_trim;

typedef enum {
    KS_WAITING,  /* a parent shard is still being read */
    KS_STARTING, /* getting an iterator */
    KS_READING,  /* GetRecords loop */
    KS_DRAINING, /* SHARD_END read; waiting for the lanes to resolve every record */
    KS_FINISHED, /* drained and recorded as finished */
    KS_FAILED,   /* the checkpoint does not fit the stream: not read, reported */
} esm_kinesis_shard_state;

struct esm_kinesis_shard {
    esm_kinesis_stream *src;
    esm_kinesis_shard_info info; /* latest ListShards facts (owned) */
    bool listed;                 /* in the latest complete ListShards answer */
    bool first_discovery;        /* found by the first ListShards of a LATEST mapping's life */
    esm_kinesis_shard_state state;
    char log_ctx[224];
    esm_kinesis_render_ctx rctx;
    char checkpoint[ESM_POSITION_MAX];    /* last position stored for the shard ("" = none) */
    char start_at[ESM_POSITION_MAX + 32]; /* where an operator moved it, while no checkpoint */
    char *iterator;
    char fetch_pos[ESM_POSITION_MAX]; /* last sequence number read ("" = none yet) */
    esm_http_call *call;
    ev_timer timer; /* next GetRecords / GetShardIterator */
    unsigned errors;
    unsigned expired_in_row; /* ExpiredIteratorException answers since a GetRecords worked */
    int64_t last_poll_ms;
    int read_limit;        /* Limit of the GetRecords in flight (or the last one) */
    int read_size;         /* Limit wanted for the next GetRecords (0: the first), see get_limit */
    int64_t millis_behind; /* MillisBehindLatest of the last GetRecords; -1 unknown */
    int64_t last_arrival_ms;
    esm_kinesis_deque order; /* fetched records not yet passed by the watermark */
    size_t order_bytes;
    char watermark[ESM_POSITION_MAX]; /* every record up to here is resolved ("" = none yet) */
    esm_kinesis_lane *lanes;
    unsigned n_lanes;
    esm_kinesis_trim trim;
    char last_error[384];
};

/* What a shard asks of its stream. The shard files call up through this table (never into
 * esm_kinesis.c by name), so the stream depends on its shards and not the other way round. */
typedef struct {
    void (*shard_finished)(esm_kinesis_stream *s, esm_kinesis_shard *sh); /* drained for good */
    void (*refresh_shards)(esm_kinesis_stream *s); /* list the shards again (soon) */
    void (*maybe_stopped)(esm_kinesis_stream *s);  /* a stop may have finished */
} esm_kinesis_stream_up;

struct esm_kinesis_stream {
    const esm_kinesis_stream_up *up;
    esm_source_env env;
    const esm_mapping_config *map;
    esm_aws *aws;
    const char *region;
    char identity_arn[160];
    enum { K_INIT, K_RUNNING, K_STOPPING, K_STOPPED } state;
    bool listed_once;          /* a ListShards answer came back: the stream exists */
    bool described;            /* DescribeStreamSummary answered */
    int64_t stream_created_ms; /* StreamCreationTimestamp; 0 = unknown */
    esm_kinesis_shard **shards;
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
esm_kinesis_shard *esm_kinesis_shard_new(esm_kinesis_stream *s, const esm_kinesis_shard_info *info);
void esm_kinesis_shard_free(esm_kinesis_shard *sh);
/* Starts reading (state must be KS_WAITING): checks the checkpoint, gets an iterator. */
void esm_kinesis_shard_start(esm_kinesis_shard *sh);
/* Stop reading: cancels calls and timers, drops queued records, settles the lanes. */
void esm_kinesis_shard_stop(esm_kinesis_shard *sh);
/* While stopping: abandons every lane batch that is not waiting for an invocation's answer (a
 * batch waiting to retry would not run again; its retry state stays persisted). Lanes invoking
 * keep going, so the outcome of a call that ran is recorded. */
void esm_kinesis_shard_settle(esm_kinesis_shard *sh);
/* Takes records read from the shard (in order; each taken one is set to NULL in recs): into the
 * order list and, when they match the filters, their lane's queue. Returns how many it took
 * (fewer when out of memory). */
size_t esm_kinesis_shard_take(esm_kinesis_shard *sh, esm_kinesis_record **recs, size_t n);
/* After esm_kinesis_shard_take (and the iterator update): stores a watermark that filtered-out
 * records moved and gives the lanes their batches. */
void esm_kinesis_shard_offer(esm_kinesis_shard *sh);
/* Marks the shard's checkpoint as not fitting the stream: not read, logged, in the status. */
void esm_kinesis_shard_mismatch(esm_kinesis_shard *sh, const char *why);
/* Abandons every lane batch (the shutdown deadline). */
void esm_kinesis_shard_abandon(esm_kinesis_shard *sh);
bool esm_kinesis_shard_idle(const esm_kinesis_shard *sh);
void esm_kinesis_shard_status(esm_kinesis_shard *sh, esm_buf *out);
/* IteratorAge: how far behind the shard is: MillisBehindLatest, or the age of the oldest record
 * read but not yet resolved when that is more (so a blocked shard's age keeps growing, and a
 * caught-up shard's is 0). */
int64_t esm_kinesis_shard_iterator_age_ms(const esm_kinesis_shard *sh, int64_t now);
const char *esm_kinesis_shard_state_name(esm_kinesis_shard_state st);

/* A failed call of the shard (or a 2xx answer it cannot use): counted, shown in the status,
 * logged (the first and every 10th in a row); the shard's timer fires after the returned
 * backoff. */
int64_t esm_kinesis_shard_call_failed(esm_kinesis_shard *sh, const char *what, const char *type,
                                      const char *message, bool throttled);
/* Requests the shard's iterator (state KS_STARTING), after the trim check. */
void esm_kinesis_shard_request_iterator(esm_kinesis_shard *sh);

/* esm_kinesis_trim.c */
/* Reads the oldest record of the shard, compares it with `after`, then requests the iterator
 * (esm_kinesis_shard_request_iterator) with sh->trim.checked set. */
void esm_kinesis_trim_check(esm_kinesis_shard *sh, const char *after);
/* Appends the last detection ({"Count":..,"After":..,"OldestAvailable":..,"At":..} or null). */
void esm_kinesis_trim_status(const esm_kinesis_shard *sh, esm_buf *out);

/* esm_kinesis.c: the stream's answers to its shards, set as esm_kinesis_stream.up. */
extern const esm_kinesis_stream_up esm_kinesis_stream_calls;

/* esm_kinesis_deque (esm_kinesis_shard.c) */
bool esm_kinesis_deque_push(esm_kinesis_deque *d, esm_kinesis_record *r);
esm_kinesis_record *esm_kinesis_deque_pop(esm_kinesis_deque *d);
esm_kinesis_record *esm_kinesis_deque_at(const esm_kinesis_deque *d, size_t i);
bool esm_kinesis_deque_unshift(esm_kinesis_deque *d, esm_kinesis_record *const *rs, size_t n);
void esm_kinesis_deque_free(esm_kinesis_deque *d);

#endif
