/* The Kafka source's internal interface, shared by the files of pollers/kafka/ and their tests:
 * the event rendering, the consumer configuration and one partition. Not a public interface;
 * the engine sees only esm_kafka_source (pollers/esm_source.h). */
#ifndef ESM_KAFKA_INT_H
#define ESM_KAFKA_INT_H

#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"
#include "config/esm_config.h"
#include "kafka/esm_kafka_client.h"
#include "lane/esm_lane.h"
#include "pollers/esm_source.h"

/* The Kafka event in AWS's shape (docs/design.md "Kafka event"), rendered without librdkafka so it
 * can be tested byte for byte:
 *   {"eventSource":"SelfManagedKafka","bootstrapServers":"h:p,...",
 *    "records":{"<topic>-<partition>":[{topic,partition,offset,timestamp,timestampType,
 *                                       key?,value?,headers:[{"name":[signed bytes]}]}]}}
 * Each record is rendered once when it is polled; an event is the envelope around the
 * pre-rendered records of one partition. */
typedef enum {
    ESM_KAFKA_TS_NONE,      /* "NO_TIMESTAMP_TYPE", timestamp -1 */
    ESM_KAFKA_TS_CREATE,    /* "CREATE_TIME" */
    ESM_KAFKA_TS_LOG_APPEND /* "LOG_APPEND_TIME" */
} esm_kafka_ts_type;

typedef struct {
    const char *name;
    size_t name_len;
    const void *value; /* NULL: a header with a null value, rendered as [] */
    size_t value_len;
} esm_kafka_header;

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    esm_kafka_ts_type timestamp_type;
    const void *key; /* NULL: null key, "key" is left out (AWS: absent when null) */
    size_t key_len;
    const void *value; /* NULL: null value (tombstone), "value" is left out */
    size_t value_len;
    const esm_kafka_header *headers;
    size_t n_headers;
} esm_kafka_record_view;

/* Appends one record object. Header names are JSON-escaped (invalid UTF-8 becomes U+FFFD);
 * header values are arrays of signed byte values (-128..127), as Java's byte[] on AWS. */
void esm_kafka_render_record(const esm_kafka_record_view *r, esm_buf *out);

/* The envelope: open writes everything up to and including the '[' of the partition's array,
 * close writes "]}}". Records go in between, separated by ','. */
void esm_kafka_render_event_open(const char *bootstrap, const char *topic, int32_t partition,
                                 esm_buf *out);
void esm_kafka_render_event_close(esm_buf *out);
/* Bytes of open + close for this partition: the envelope of esm_event_size (an event of n
 * records of total length L has esm_event_size(overhead, n, L) bytes). */
size_t esm_kafka_event_overhead(const char *bootstrap, const char *topic, int32_t partition);

/* Mapping config -> librdkafka consumer properties, in the order they are applied:
 *   1. esmd's base: bootstrap.servers, group.id, client.id, enable.auto.offset.store=false
 *      (offsets are stored only after a final outcome), enable.auto.commit=true (flushes the
 *      stored offsets periodically and on revoke/close), auto.offset.reset from
 *      StartingPosition (TRIM_HORIZON/AT_TIMESTAMP earliest, LATEST latest),
 *      enable.partition.eof=false.
 *   2. SourceAccessConfigurations (esm_kafka_props_add_access, kafka/esm_kafka_client.h).
 *   3. EsmdOptions.KafkaProperties, verbatim (they win), except the keys esmd manages:
 *      bootstrap.servers, group.id and enable.auto.offset.store are refused.
 * Fills out (initialised here). Returns 0, or -1 with err set (the message names the
 * offending SourceAccessConfigurations entry or KafkaProperties key); out is then empty. */
int esm_kafka_props_build(const esm_mapping_config *m, esm_kafka_props *out, esm_err *err);

/* The consumer group: ConsumerGroupId (the config defaults it to "esmd-" + the mapping UUID). */
const char *esm_kafka_group_id(const esm_mapping_config *m);
/* The store's source key of the mapping's lanes: "<bootstrap servers>/<topic>" (malloc'ed,
 * NULL when out of memory). */
char *esm_kafka_source_key(const esm_mapping_config *m);

/* An operator's move of a partition (esm_kafka_move.c), every call to the cluster included. */
#define ESM_KAFKA_MOVE_TIMEOUT_MS 10000
int esm_kafka_move(const esm_mapping_config *m, struct esm_store *store, const char *lane,
                   const esm_move_target *to, esm_buf *out, esm_err *err);

/* One assigned Kafka partition of the Kafka source: its records waiting for a batch, the batch
 * in flight on its ordered lane (lane/esm_lane.h), and its committed position. Internal to
 * pollers/esm_kafka*.c. */
/* A polled record, rendered once (json) and kept until its final outcome. */
typedef struct {
    int64_t offset;
    int64_t timestamp_ms;
    int64_t received_ms;
    int64_t commit_after; /* the offset to commit once this record is final: offset + 1, or
                             past the filtered-out records that follow it */
    char *json;
    size_t json_len;
    void *key; /* NULL: null key */
    size_t key_len;
    char *id; /* "topic-partition:offset", the RBIF identifier */
} esm_kafka_rec;

/* What the partitions share (owned by the source). */
typedef struct {
    struct ev_loop *loop;
    rd_kafka_t *rk;
    const esm_source_env *env;
    const esm_mapping_config *map;
    const char *topic;
    const char *bootstrap;      /* "h:p,h:p" */
    const char *source_key;     /* store key: "<bootstrap>/<topic>" */
    size_t *n_full;             /* partitions above their high watermark: while > 0 the source stops
                                   polling (backpressure through librdkafka's own bounded queue) */
    void (*changed)(void *arg); /* a partition went idle (stop / revoke progress), or left the
                                   full state (poll again) */
    void (*stored)(void *arg);  /* an offset was stored: the source commits it soon */
    void *changed_arg;          /* of changed and stored */
} esm_kafka_shared;

typedef struct esm_kafka_part esm_kafka_part;

esm_kafka_part *esm_kafka_part_create(const esm_kafka_shared *sh, int32_t partition);
/* Frees the partition; a batch in flight is abandoned unacknowledged first. */
void esm_kafka_part_destroy(esm_kafka_part *p);
int32_t esm_kafka_part_id(const esm_kafka_part *p);

/* A message of this partition was polled (not an error). Renders, filters, buffers it and
 * dispatches a batch when one is due. */
void esm_kafka_part_message(esm_kafka_part *p, const rd_kafka_message_t *m);
/* Re-evaluates pausing (called periodically: a lane that starts retrying pauses its
 * partition once a next batch waits, even when no record arrives). */
void esm_kafka_part_flow(esm_kafka_part *p);
/* Stop dispatching: drop the records not yet in a batch. With abandon_retrying, a batch that
 * is waiting for a retry is abandoned now (nothing is acknowledged); a batch whose first
 * invocation runs may finish. */
void esm_kafka_part_quiesce(esm_kafka_part *p, bool abandon_retrying);
/* Abandons the batch in flight, if any (nothing more is acknowledged). */
void esm_kafka_part_abandon(esm_kafka_part *p);
bool esm_kafka_part_idle(const esm_kafka_part *p);
typedef enum {
    ESM_KAFKA_LOG_FITS,           /* the stored position is used */
    ESM_KAFKA_LOG_RESET_AT_START, /* a log reset: assign the partition at its log start */
    ESM_KAFKA_LOG_RESET_AT_GROUP, /* a log reset: the group's committed offset is used */
    ESM_KAFKA_LOG_AT_CHECKPOINT,  /* the group has none yet: assign at the stored checkpoint */
} esm_kafka_log_check;

/* At assignment: group_committed is the group's committed offset (-1 none; group_known false
 * when it could not be read), [lo, hi) the partition's log (-1 unknown). When the stored
 * position cannot be used — above the log end (a re-created topic, a wiped broker), or a store
 * checkpoint the group once confirmed and has lost — logs and counts a log reset and forgets
 * the old checkpoint (docs/operations.md "Kafka log re-created"). A checkpoint the group never
 * confirmed (its commits failed, or esmd stopped before the first), or one whose group offsets
 * could not be read, is where the partition resumes: ESM_KAFKA_LOG_AT_CHECKPOINT, the offset in
 * *resume_at. */
esm_kafka_log_check esm_kafka_part_check_log(esm_kafka_part *p, int64_t group_committed,
                                             bool group_known, int64_t lo, int64_t hi,
                                             int64_t *resume_at);
/* After librdkafka assigned the partition: a checkpoint resumed at (ESM_KAFKA_LOG_AT_CHECKPOINT)
 * is stored to be committed, so the group catches up with no new record. */
void esm_kafka_part_assigned(esm_kafka_part *p);
/* A partition with no offset anywhere, assigned at offset (StartingPosition LATEST: the log
 * end): the group gets it on assignment, so a later assignment before the first record starts
 * there again instead of at a newer end (the records between would be skipped). */
void esm_kafka_part_pin_start(esm_kafka_part *p, int64_t offset);
/* The group committed an offset of this partition: its checkpoint is confirmed (the mark is
 * written to the store once). */
void esm_kafka_part_group_confirmed(esm_kafka_part *p);
/* As esm_kafka_part_group_confirmed, for a partition released before the confirmation came
 * (the commit on revoke or close answers after the release). */
void esm_kafka_part_released_confirmed(const esm_kafka_shared *sh, int32_t partition);
/* The lane's stored checkpoint (next offset not yet final), -1 when none. */
int64_t esm_kafka_part_floor(const esm_kafka_part *p);
/* Next offset to commit (-1 = not known yet). */
int64_t esm_kafka_part_committed(const esm_kafka_part *p);
/* High watermark (cached from fetches) - committed offset; -1 when either is unknown. */
int64_t esm_kafka_part_lag(esm_kafka_part *p);
/* Called while librdkafka's queue is empty after it was near full: wakes librdkafka's fetcher (a
 * seek to the next offset; sets *woken) when this partition lags behind the broker but received
 * nothing since the previous call. librdkafka 2.0 stops fetching while its queue is at its bound
 * and looks again only ~1 s later (2.1 added fetch.queue.backoff.ms); a fast function drains the
 * 64 MB queue well before that. Returns whether the partition lags (worth another look). */
bool esm_kafka_part_nudge(esm_kafka_part *p, bool *woken);
/* Since when the lane has retried its batch (esm_now_ms), 0 = not blocked. */
int64_t esm_kafka_part_blocked_since(const esm_kafka_part *p);
/* Records of the batch on the lane. */
size_t esm_kafka_part_in_flight(const esm_kafka_part *p);
/* The partition number as text (the lane key). */
const char *esm_kafka_part_name(const esm_kafka_part *p);
/* Appends the partition's status object; sets *lag (-1 when unknown). */
void esm_kafka_part_status(esm_kafka_part *p, esm_buf *out, int64_t *lag);

#endif
