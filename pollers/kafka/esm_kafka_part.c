#include "pollers/kafka/esm_kafka_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "common/esm_event_size.h"
#include "common/esm_log.h"
#include "common/esm_time.h"

#define MAX_HEADERS 64

struct esm_kafka_part {
    esm_kafka_shared sh;
    int32_t id;
    char lane_key[16];
    char log_ctx[160];
    char ckpt[24];
    esm_lane *lane;
    /* records waiting for a batch: pend[head, head + len) */
    esm_kafka_rec **pend;
    size_t head, len, cap;
    size_t pend_bytes;
    /* the batch on the lane */
    esm_kafka_rec **batch;
    esm_policy_record *precs;
    size_t batch_n;
    bool in_start, done_in_start, done_abandoned;
    bool quiesced, paused;
    bool full;                /* counted in *sh.n_full */
    int64_t full_since_ms;    /* when it became full */
    int64_t committed;        /* next offset to consume once everything stored is final */
    int64_t next_expected;    /* drops re-fetched duplicates (e.g. after a resume) */
    int64_t nudge_mark;       /* next_expected at the last esm_kafka_part_nudge look */
    int64_t floor;            /* the lane's stored checkpoint: offsets below it are final */
    bool group_confirmed;     /* the group has committed an offset since the checkpoint was made */
    int64_t commit_on_assign; /* the group lacks the checkpoint it resumes at: commit it (-1) */
    int64_t stored;           /* the highest offset handed to librdkafka to commit (-1 none) */
    int64_t last_ckpt;        /* the last checkpoint position the lane asked for */
    /* A filtered-out record that arrived while the checkpoint of earlier records still trails
     * (not durable): its offset is stored once the checkpoint >= deferred_gate is durable. */
    int64_t deferred, deferred_gate;
    /* A shorter log under a running partition (behind_new_log): waiting for the lane to
     * settle, then read again from the log start. */
    bool resetting;
    uint64_t log_resets;
    int64_t last_reset_ms;
    char last_reset[200];
    size_t overhead; /* event envelope bytes (esm_event_size) */
    ev_timer window;
    ev_timer kick;
    esm_fr_kafka_partition frp;
    esm_buf scratch;
};

static void dispatch(esm_kafka_part *p);
static void finish_reset(esm_kafka_part *p);
static void seek_to(esm_kafka_part *p, int64_t offset);
static void set_paused(esm_kafka_part *p, bool pause);

/* A record is one allocation: the struct, then its JSON, id and key (no per-field mallocs on
 * the hot path). */
static void rec_free(esm_kafka_rec *r)
{
    free(r);
}

static esm_kafka_rec *rec_new(const esm_kafka_part *p, const rd_kafka_message_t *m,
                              const esm_buf *json)
{
    size_t topic_len = strlen(p->sh.topic);
    size_t id_cap = topic_len + 1 + 2 * ESM_FMT_I64_MAX + 2; /* topic-partition:offset\0 */
    size_t key_len = m->key ? m->key_len : 0;
    esm_kafka_rec *r = malloc(sizeof *r + json->len + id_cap + key_len);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    char *at = (char *)(r + 1);
    r->json = at;
    r->json_len = json->len;
    memcpy(at, json->data, json->len);
    at += json->len;
    r->id = at;
    memcpy(at, p->sh.topic, topic_len);
    size_t n = topic_len;
    at[n++] = '-';
    n += esm_fmt_i64(at + n, p->id);
    at[n++] = ':';
    n += esm_fmt_i64(at + n, m->offset);
    at[n++] = '\0';
    at += n;
    if (m->key) {
        r->key = at; /* a null key stays NULL, an empty one is non-NULL with length 0 */
        r->key_len = key_len;
        memcpy(at, m->key, key_len);
    }
    return r;
}

int32_t esm_kafka_part_id(const esm_kafka_part *p)
{
    return p->id;
}

int64_t esm_kafka_part_floor(const esm_kafka_part *p)
{
    return p->floor;
}

int64_t esm_kafka_part_committed(const esm_kafka_part *p)
{
    return p->committed;
}

bool esm_kafka_part_idle(const esm_kafka_part *p)
{
    return p->batch_n == 0 && !esm_lane_busy(p->lane);
}

/* ---- offsets ---------------------------------------------------------------------------- */

/* Stores the next offset to consume; the source commits what is stored soon after (one commit
 * for every partition, at most every COMMIT_GAP_S: a commit per batch cost the broker more CPU
 * than esmd spent on the batch). */
static void store_offset(esm_kafka_part *p, int64_t next)
{
    /* Never backwards (a late trailing checkpoint after a newer offset); nothing of an old log
     * while a reset waits: its offsets mean other records in the new one. */
    if (p->resetting || next <= p->stored) return;
    if (p->deferred >= 0 && next >= p->deferred) p->deferred = -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->sh.topic, p->id)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(p->sh.rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        ESM_WARN(p->log_ctx, "storing offset %" PRId64 " failed: %s", next, rd_kafka_err2str(err));
        return;
    }
    p->stored = next;
    if (next > p->committed) p->committed = next;
    if (p->sh.stored) p->sh.stored(p->sh.changed_arg);
}

static void set_paused(esm_kafka_part *p, bool pause)
{
    if (p->paused == pause) return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->sh.topic, p->id);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(p->sh.rk, l) : rd_kafka_resume_partitions(p->sh.rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        ESM_WARN(p->log_ctx, "%s failed: %s", pause ? "pause" : "resume", rd_kafka_err2str(err));
        return;
    }
    p->paused = pause;
    ESM_DEBUG(p->log_ctx, "%s fetching (%zu records waiting)", pause ? "paused" : "resumed",
              p->len);
}

/* Buffering bounds of the rendered records waiting per partition: at least two batches (so the
 * next one is ready when the lane finishes), and 2 x the 6 MB invoke limit. More records wait,
 * unrendered, in librdkafka's queue (queued.max.messages.kbytes) while the partition is full. */
#define BUF_HIGH_BYTES ((size_t)2 * ESM_INVOKE_MAX_PAYLOAD)
#define BUF_LOW_BYTES (BUF_HIGH_BYTES / 2)
#define BUF_MIN_RECS ((size_t)4096)

static size_t high_recs(const esm_kafka_part *p)
{
    size_t two = 2 * (size_t)p->sh.map->batch_size;
    return two > BUF_MIN_RECS ? two : BUF_MIN_RECS;
}

/* A full partition that does not drain within this time is paused instead, so a slow lane
 * never holds back the other partitions (nor the rebalance events the poll serves) for long. */
#define FULL_MAX_MS 1000

static void set_full(esm_kafka_part *p, bool full)
{
    if (p->full == full) return;
    p->full = full;
    if (full) {
        (*p->sh.n_full)++;
        p->full_since_ms = esm_now_ms();
        return;
    }
    (*p->sh.n_full)--;
    if (*p->sh.n_full == 0 && p->sh.changed) p->sh.changed(p->sh.changed_arg);
}

/* Flow control. Above the high watermark a healthy partition is "full": the source stops
 * polling until it is below the low one, and librdkafka's bounded queue stops fetching by
 * itself. Pausing is kept for the cases that need it — a lane retrying a batch (nothing moves
 * until the retry ends, so it holds no more than a next batch), or a partition full for longer
 * than FULL_MAX_MS — because a paused partition loses its prefetched records and is fetchable
 * again only ~1 s after its resume (bench finding K1: that cost a ~1 s stall per ~30 000
 * records and partition). */
static void flow_control(esm_kafka_part *p)
{
    if (p->quiesced) {
        set_full(p, false);
        return;
    }
    size_t hi = high_recs(p);
    bool retrying = esm_lane_blocked_since_ms(p->lane) > 0;
    bool above = p->len >= hi || p->pend_bytes >= BUF_HIGH_BYTES;
    bool below = p->len <= hi / 2 && p->pend_bytes <= BUF_LOW_BYTES;
    if (retrying && (above || p->len >= (size_t)p->sh.map->batch_size)) {
        set_full(p, false);
        set_paused(p, true);
    } else if (above && !p->paused) {
        set_full(p, true);
        if (esm_now_ms() - p->full_since_ms > FULL_MAX_MS) {
            ESM_DEBUG(p->log_ctx, "full for over %d ms: pausing it", FULL_MAX_MS);
            set_full(p, false);
            set_paused(p, true);
        }
    } else {
        /* Polling goes on soon after the partition drops below the high watermark: the other
         * partitions must not run dry meanwhile (records arrive from librdkafka in chunks of
         * one partition, so their buffers are uneven). */
        if (p->len <= hi * 3 / 4 && p->pend_bytes <= BUF_HIGH_BYTES * 3 / 4) set_full(p, false);
        if (below && !retrying) set_paused(p, false);
    }
}

void esm_kafka_part_flow(esm_kafka_part *p)
{
    finish_reset(p);
    flow_control(p);
}

/* ---- pending records -------------------------------------------------------------------- */

static bool pend_push(esm_kafka_part *p, esm_kafka_rec *r)
{
    if (p->head + p->len == p->cap) {
        if (p->head > 0) {
            memmove(p->pend, p->pend + p->head, p->len * sizeof *p->pend);
            p->head = 0;
        } else {
            size_t cap = p->cap ? p->cap * 2 : 64;
            esm_kafka_rec **n = realloc(p->pend, cap * sizeof *n);
            if (!n) return false;
            p->pend = n;
            p->cap = cap;
        }
    }
    p->pend[p->head + p->len++] = r;
    p->pend_bytes += r->json_len;
    return true;
}

/* Puts records back in front (the lane took fewer than offered). */
static void pend_unshift(esm_kafka_part *p, esm_kafka_rec **recs, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        if (p->head == 0) {
            /* cannot happen: they were taken from the front and nothing compacts meanwhile */
            ESM_ERROR(p->log_ctx, "internal: no room to return records; dropping them");
            for (size_t k = 0; k <= i; k++)
                rec_free(recs[k]);
            return;
        }
        p->pend[--p->head] = recs[i];
        p->len++;
        p->pend_bytes += recs[i]->json_len;
    }
}

static void pend_drop(esm_kafka_part *p)
{
    for (size_t i = 0; i < p->len; i++)
        rec_free(p->pend[p->head + i]);
    p->head = p->len = 0;
    p->pend_bytes = 0;
    ev_timer_stop(p->sh.loop, &p->window);
}

/* ---- lane callbacks --------------------------------------------------------------------- */

static void cb_render_event(void *arg, size_t lo, size_t hi, esm_buf *out)
{
    esm_kafka_part *p = arg;
    esm_kafka_render_event_open(p->sh.bootstrap, p->sh.topic, p->id, out);
    for (size_t i = lo; i < hi; i++) {
        if (i > lo) esm_buf_putc(out, ',');
        esm_buf_append(out, p->batch[i]->json, p->batch[i]->json_len);
    }
    esm_kafka_render_event_close(out);
}

static void cb_describe_failure(void *arg, size_t lo, size_t hi, const char *dest,
                                esm_failure_record *fr)
{
    esm_kafka_part *p = arg;
    const esm_kafka_rec *first = p->batch[lo], *last = p->batch[hi - 1];
    size_t bytes = 0;
    for (size_t i = lo; i < hi; i++)
        bytes += p->batch[i]->json_len;
    bytes = esm_event_size(p->overhead, hi - lo, bytes);
    p->frp = (esm_fr_kafka_partition){.topic = p->sh.topic,
                                      .partition = p->id,
                                      .first_offset = first->offset,
                                      .last_offset = last->offset,
                                      .first_timestamp_ms = first->timestamp_ms,
                                      .last_timestamp_ms = last->timestamp_ms};
    fr->source = ESM_FR_KAFKA;
    fr->batch_size = hi - lo;
    fr->kafka.bootstrap_servers = p->sh.bootstrap;
    fr->kafka.event_source_arn = NULL;
    fr->kafka.payload_size = bytes;
    fr->kafka.partitions = &p->frp;
    fr->kafka.n_partitions = 1;
    fr->kafka.topic_destination = dest && strncmp(dest, "kafka://", 8) == 0;
    fr->kafka.record_offset = first->offset;
    fr->kafka.record_timestamp_ms = first->timestamp_ms;
}

static const char *cb_checkpoint_after(void *arg, size_t resolved)
{
    esm_kafka_part *p = arg;
    if (resolved == 0 || resolved > p->batch_n) return NULL;
    p->last_ckpt = p->batch[resolved - 1]->commit_after;
    snprintf(p->ckpt, sizeof p->ckpt, "%" PRId64, p->last_ckpt);
    return p->ckpt;
}

static const void *cb_record_key(void *arg, size_t i, size_t *len)
{
    esm_kafka_part *p = arg;
    if (i >= p->batch_n || !p->batch[i]->key) {
        *len = 0;
        return NULL;
    }
    *len = p->batch[i]->key_len;
    return p->batch[i]->key;
}

static void cb_acknowledged(void *arg, size_t resolved)
{
    esm_kafka_part *p = arg;
    if (resolved == 0 || resolved > p->batch_n) return;
    store_offset(p, p->batch[resolved - 1]->commit_after);
}

/* A trailing checkpoint is durable: store (and commit) the offset it names. */
static void cb_durable(void *arg, const char *position)
{
    esm_kafka_part *p = arg;
    if (position) {
        char *end;
        long long next = strtoll(position, &end, 10);
        if (end != position && *end == '\0' && next >= 0) {
            store_offset(p, next);
            if (p->deferred >= 0 && next >= p->deferred_gate) store_offset(p, p->deferred);
        }
    }
    finish_reset(p);
    /* A stop or revoke may be waiting for the lane to settle. */
    if (p->quiesced && !esm_lane_busy(p->lane) && p->sh.changed) p->sh.changed(p->sh.changed_arg);
}

static void batch_free(esm_kafka_part *p)
{
    for (size_t i = 0; i < p->batch_n; i++)
        rec_free(p->batch[i]);
    free(p->batch);
    free(p->precs);
    p->batch = NULL;
    p->precs = NULL;
    p->batch_n = 0;
}

/* Fetch from `offset` again (librdkafka drops what it had prefetched for the partition). */
static void seek_to(esm_kafka_part *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->sh.topic, p->id)->offset = offset;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(p->sh.rk, l, 0);
    if (e) {
        ESM_ERROR(p->log_ctx, "seek to %" PRId64 " failed: %s", offset, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void batch_done(esm_kafka_part *p, bool abandoned)
{
    int64_t first = p->batch_n ? p->batch[0]->offset : -1;
    batch_free(p);
    if (p->resetting) {
        finish_reset(p);
        return;
    }
    if (abandoned && !p->quiesced && first >= 0) {
        /* The partition stays ours: read the unfinished records again, never skip them. */
        pend_drop(p);
        p->next_expected = first;
        seek_to(p, first);
        set_paused(p, false);
    }
    if (p->quiesced) {
        if (p->sh.changed) p->sh.changed(p->sh.changed_arg);
        return;
    }
    ev_timer_set(&p->kick, 0., 0.);
    ev_timer_start(p->sh.loop, &p->kick);
}

static void cb_done(void *arg, bool abandoned)
{
    esm_kafka_part *p = arg;
    if (p->in_start) {
        p->done_in_start = true;
        p->done_abandoned = abandoned;
        return;
    }
    batch_done(p, abandoned);
}

static const esm_lane_source lane_source = {
    .render_event = cb_render_event,
    .describe_failure = cb_describe_failure,
    .checkpoint_after = cb_checkpoint_after,
    .record_key = cb_record_key,
    .acknowledged = cb_acknowledged,
    .done = cb_done,
    .durable = cb_durable,
};

/* ---- batching --------------------------------------------------------------------------- */

/* How many waiting records the next batch takes: BatchSize, and the 6 MB event limit measured
 * as the policy and the invoker measure it (a single larger record still goes alone: the
 * policy discards it as MaximumPayloadSizeExceeded). */
static size_t batch_take(const esm_kafka_part *p, bool *full)
{
    size_t max = (size_t)p->sh.map->batch_size, bytes = 0, n = 0;
    /* When all waiting records fit there is nothing to walk (this runs for every arriving
     * record). */
    if (p->len < max &&
        esm_invoke_payload_fits(esm_event_size(p->overhead, p->len, p->pend_bytes))) {
        *full = false;
        return p->len;
    }
    while (n < p->len && n < max) {
        size_t add = p->pend[p->head + n]->json_len;
        if (n > 0 && !esm_invoke_payload_fits(esm_event_size(p->overhead, n + 1, bytes + add)))
            break;
        bytes += add;
        n++;
    }
    *full = n == max || n < p->len;
    return n;
}

static void start_batch(esm_kafka_part *p, size_t n)
{
    esm_kafka_rec **recs = malloc(n * sizeof *recs);
    esm_policy_record *precs = malloc(n * sizeof *precs);
    if (!recs || !precs) {
        free(recs);
        free(precs);
        ESM_ERROR(p->log_ctx, "out of memory starting a batch; retrying shortly");
        ev_timer_set(&p->window, 1.0, 0.);
        ev_timer_start(p->sh.loop, &p->window);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        esm_kafka_rec *r = p->pend[p->head + i];
        recs[i] = r;
        precs[i] = (esm_policy_record){.id = r->id,
                                       .arrival_ms =
                                           r->timestamp_ms > 0 ? r->timestamp_ms : r->received_ms,
                                       .size = r->json_len};
        p->pend_bytes -= r->json_len;
    }
    /* head is not reset even when empty, so records the lane does not take fit back */
    p->head += n;
    p->len -= n;
    p->batch = recs;
    p->precs = precs;
    p->batch_n = n;
    p->in_start = true;
    long took = esm_lane_start(p->lane, precs, n);
    p->in_start = false;
    if (took < 0) {
        took = 0;
        ESM_ERROR(p->log_ctx, "internal: lane busy at batch start");
    }
    if ((size_t)took < n) {
        pend_unshift(p, recs + took, n - (size_t)took);
        p->batch_n = (size_t)took;
    }
    if (p->done_in_start) {
        p->done_in_start = false;
        batch_done(p, p->done_abandoned);
    } else if (p->batch_n == 0) {
        batch_free(p);
    }
}

static void dispatch(esm_kafka_part *p)
{
    if (p->quiesced || p->batch_n || !esm_lane_can_start(p->lane) || p->len == 0) {
        flow_control(p);
        return;
    }
    bool full;
    size_t n = batch_take(p, &full);
    int window = p->sh.map->batching_window_ms;
    if (!full && window > 0) {
        int64_t due = p->pend[p->head]->received_ms + window, now = esm_now_ms();
        if (now < due) {
            if (!ev_is_active(&p->window)) {
                ev_timer_set(&p->window, (double)(due - now) / 1000.0, 0.);
                ev_timer_start(p->sh.loop, &p->window);
            }
            flow_control(p);
            return;
        }
    }
    ev_timer_stop(p->sh.loop, &p->window);
    start_batch(p, n);
    flow_control(p);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    dispatch(w->data);
}

/* ---- a new log under the stored position ------------------------------------------------ */

/* Forgets everything that belongs to the old log (the store's checkpoint and retry state too):
 * a record of the new log is never taken for one already done. */
static void forget_old_log(esm_kafka_part *p)
{
    p->resetting = false;
    if (p->sh.env->store) {
        esm_err err = {0};
        if (esm_store_checkpoint_set(p->sh.env->store, p->sh.map->uuid, p->sh.source_key,
                                     p->lane_key, NULL, NULL, &err) != 0)
            ESM_ERROR(p->log_ctx,
                      "cannot forget the old log's checkpoint (%s): the new log's checkpoints "
                      "are refused until it is reset",
                      err.message);
    }
    p->floor = p->committed = p->stored = p->next_expected = p->deferred = p->commit_on_assign = -1;
    p->group_confirmed = false;
}

/* Reads the new log from its start once the lane has settled (the batch of old records in
 * flight finished, its checkpoint written). */
static void finish_reset(esm_kafka_part *p)
{
    if (!p->resetting || !esm_kafka_part_idle(p)) return;
    forget_old_log(p);
    if (p->quiesced) return; /* revoked meanwhile: the next owner starts from the group */
    seek_to(p, RD_KAFKA_OFFSET_BEGINNING);
    set_paused(p, false);
}

#define FROM_START "reading the partition from its log start; none of it is skipped"

static void log_reset(esm_kafka_part *p, int64_t position, int64_t lo, int64_t hi, const char *why,
                      const char *then)
{
    p->log_resets++;
    p->sh.env->stats->kafka_log_resets++;
    p->last_reset_ms = esm_now_ms();
    char log[64] = "unknown";
    if (hi >= 0) snprintf(log, sizeof log, "[%" PRId64 ", %" PRId64 ")", lo, hi);
    snprintf(p->last_reset, sizeof p->last_reset, "stored position %" PRId64 ", log %s: %s",
             position, log, why);
    ESM_ERROR(p->log_ctx,
              "log reset: the stored position %" PRId64 " is not used (%s; the partition's log is "
              "%s): the topic was re-created, the broker's log wiped or the group's offsets "
              "deleted: %s",
              position, why, log, then);
}

static void begin_reset(esm_kafka_part *p, int64_t position, int64_t lo, int64_t hi,
                        const char *why)
{
    log_reset(p, position, lo, hi, why, FROM_START);
    p->resetting = true;
    size_t dropped = p->len;
    pend_drop(p);
    set_full(p, false);
    if (dropped)
        ESM_WARN(p->log_ctx, "dropped %zu records of the old log read but not yet invoked",
                 dropped);
    /* A batch of the old log in retry would hold the new log back: abandon it. One whose
     * invocation runs may finish. */
    if (esm_lane_busy(p->lane) && esm_lane_blocked_since_ms(p->lane) > 0) esm_lane_abandon(p->lane);
    finish_reset(p);
}

esm_kafka_log_check esm_kafka_part_check_log(esm_kafka_part *p, int64_t group_committed,
                                             bool group_known, int64_t lo, int64_t hi,
                                             int64_t *resume_at)
{
    if (p->next_expected >= 0 || !esm_kafka_part_idle(p)) return ESM_KAFKA_LOG_FITS;
    int64_t c = group_committed, f = p->floor;
    bool known_end = hi >= 0;
    esm_kafka_log_check verdict = ESM_KAFKA_LOG_FITS;
    const char *why = NULL;
    if (known_end && f > hi && c >= 0 && c <= hi) {
        /* committed to the group after the re-creation (e.g. an operator's reset): it wins */
        why = "the store's checkpoint is above the log end";
        verdict = ESM_KAFKA_LOG_RESET_AT_GROUP;
    } else if (known_end && (f > hi || c > hi)) {
        why = "above the log end";
        verdict = ESM_KAFKA_LOG_RESET_AT_START;
    } else if (group_known && c < 0 && f >= 0 && p->group_confirmed) {
        /* Kafka deletes a topic's group offsets with the topic: a checkpoint the group once
         * confirmed and no longer has may belong to an old log the new one has outgrown.
         * Reading again costs duplicates (offsets expired); trusting it may skip. */
        why = "the group no longer has the committed offset it confirmed";
        verdict = ESM_KAFKA_LOG_RESET_AT_START;
    } else if (c < 0 && f >= 0) {
        /* Never committed (commits failed, or a stop before the first): the group's lack of an
         * offset is no news. Resume at the checkpoint, not at StartingPosition (LATEST would
         * skip what came since); a log trimmed past it resumes at its start. So does one
         * whose start is unknown: a checkpoint below it would be out of range, and LATEST would
         * skip the log (the records below the checkpoint are passed over, not invoked). Group
         * offsets that cannot be read are treated alike (left to the group, one without an
         * offset starts at StartingPosition), only not committed over: the group may be ahead. */
        *resume_at = lo < 0 || f < lo ? RD_KAFKA_OFFSET_BEGINNING : f;
        if (*resume_at == f && group_known) p->commit_on_assign = f;
        ESM_INFO(p->log_ctx, "%s: resuming at the stored checkpoint %" PRId64 "%s",
                 group_known ? "the group has no committed offset yet"
                             : "the group's committed offsets cannot be read",
                 f,
                 *resume_at == f ? ""
                 : lo < 0
                     ? " (the log start unknown: from the log start, passing over what is below it)"
                     : " (trimmed since: from the log start)");
        return ESM_KAFKA_LOG_AT_CHECKPOINT;
    }
    /* Retention trimmed past the group's offset (a mapping disabled for long, a move to an old
     * offset): fetched there, the partition would be out of range and auto.offset.reset
     * (latest, for a LATEST mapping) would skip the whole log. */
    bool trimmed = lo >= 0 && c >= 0 && c < lo;
    if (c >= 0 && !why) esm_kafka_part_group_confirmed(p);
    if (!why && !trimmed) return ESM_KAFKA_LOG_FITS;
    if (!why) {
        /* the store's checkpoint, when it is in the log, is where to go on (nothing below it
         * is read again); the group gets it on assignment */
        bool at_floor = f >= lo;
        ESM_WARN(p->log_ctx,
                 "the group's committed offset %" PRId64 " is below the log start %" PRId64
                 " (trimmed since): resuming at %s %" PRId64,
                 c, lo, at_floor ? "the stored checkpoint" : "the log start", at_floor ? f : lo);
        *resume_at = at_floor ? f : RD_KAFKA_OFFSET_BEGINNING;
        if (group_known) p->commit_on_assign = at_floor ? f : lo;
        return ESM_KAFKA_LOG_AT_CHECKPOINT;
    }
    if (verdict == ESM_KAFKA_LOG_RESET_AT_GROUP && trimmed) verdict = ESM_KAFKA_LOG_RESET_AT_START;
    char then[96];
    snprintf(then, sizeof then, "resuming at the group's committed offset %" PRId64, c);
    log_reset(p, c > f ? c : f, lo, hi, why,
              verdict == ESM_KAFKA_LOG_RESET_AT_GROUP ? then : FROM_START);
    forget_old_log(p); /* not assigned yet: the caller picks the start */
    return verdict;
}

void esm_kafka_part_pin_start(esm_kafka_part *p, int64_t offset)
{
    if (p->floor < 0 && p->next_expected < 0 && esm_kafka_part_idle(p))
        p->commit_on_assign = offset;
}

void esm_kafka_part_assigned(esm_kafka_part *p)
{
    /* Without it the group would lag until the next record arrives, and a host that takes the
     * partition over without this store would read it all again. */
    if (p->commit_on_assign >= 0) store_offset(p, p->commit_on_assign);
    p->commit_on_assign = -1;
}

/* esm_store_lane_confirm of the lane, warning on an error. */
static int mark_confirmed(const esm_kafka_shared *sh, const char *lane_key, const char *log_ctx)
{
    esm_err err = {0};
    int rc = esm_store_lane_confirm(sh->env->store, sh->map->uuid, sh->source_key, lane_key, &err);
    if (rc < 0)
        ESM_WARN(log_ctx, "cannot mark the checkpoint as committed to the group (%s)", err.message);
    return rc;
}

void esm_kafka_part_group_confirmed(esm_kafka_part *p)
{
    if (p->group_confirmed || !p->sh.env->store) return;
    p->group_confirmed = mark_confirmed(&p->sh, p->lane_key, p->log_ctx) == 0;
}

void esm_kafka_part_released_confirmed(const esm_kafka_shared *sh, int32_t partition)
{
    if (!sh->env->store) return;
    char lane_key[16];
    snprintf(lane_key, sizeof lane_key, "%" PRId32, partition);
    mark_confirmed(sh, lane_key, sh->env->log_ctx);
}

/* A record below what this partition has already read or checkpointed: legitimate re-reads
 * happen, but when the log now ends below that position it is a new log (re-created under a
 * running esmd, or auto.offset.reset after an out-of-range fetch). librdkafka caches the
 * watermarks from the fetch that brought the record. */
static bool behind_new_log(esm_kafka_part *p, int64_t offset)
{
    int64_t position = p->next_expected > p->floor ? p->next_expected : p->floor;
    if (offset >= position) return false;
    int64_t lo = RD_KAFKA_OFFSET_INVALID, hi = RD_KAFKA_OFFSET_INVALID;
    if (rd_kafka_get_watermark_offsets(p->sh.rk, p->sh.topic, p->id, &lo, &hi)) return false;
    if (hi < 0 || position <= hi) return false;
    begin_reset(p, position, lo, hi, "a record of a shorter log arrived");
    return true;
}

/* ---- records in --------------------------------------------------------------------------- */

static esm_kafka_ts_type ts_type(rd_kafka_timestamp_type_t t)
{
    switch (t) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
        return ESM_KAFKA_TS_CREATE;
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
        return ESM_KAFKA_TS_LOG_APPEND;
    case RD_KAFKA_TIMESTAMP_NOT_AVAILABLE:
        break;
    }
    return ESM_KAFKA_TS_NONE;
}

/* A filtered-out record is final at once, but its offset is committed only with what comes
 * before it: attach it to the last record still waiting or in flight. */
static void filtered(esm_kafka_part *p, int64_t offset)
{
    if (p->len > 0)
        p->pend[p->head + p->len - 1]->commit_after = offset + 1;
    else if (p->batch_n > 0)
        p->batch[p->batch_n - 1]->commit_after = offset + 1;
    else if (esm_lane_busy(p->lane)) {
        /* the checkpoint of the records before it still trails: committing this offset now
         * would acknowledge them before they are durable, and the trailing one would then
         * move the stored offset back */
        p->deferred = offset + 1;
        p->deferred_gate = p->last_ckpt;
    } else
        store_offset(p, offset + 1);
}

void esm_kafka_part_message(esm_kafka_part *p, const rd_kafka_message_t *m)
{
    const esm_source_env *env = p->sh.env;
    if (p->quiesced || p->resetting || behind_new_log(p, m->offset)) return;
    if (p->next_expected >= 0 && m->offset < p->next_expected) {
        ESM_TRACE(p->log_ctx, "skipping offset %" PRId64 " (already read)", m->offset);
        return;
    }
    p->next_expected = m->offset + 1;
    if (p->committed < 0) p->committed = m->offset;
    if (m->offset < p->floor) {
        /* Final in our store already: the group's commit was lost (e.g. a broker restarted
         * while it was in flight). The store never moves a checkpoint back, so such a record
         * could never be acknowledged again; commit past it like a filtered-out one. */
        ESM_TRACE(p->log_ctx, "offset %" PRId64 " is behind the checkpoint %" PRId64, m->offset,
                  p->floor);
        filtered(p, m->offset);
        return;
    }
    env->stats->polled++;
    rd_kafka_timestamp_type_t tst;
    int64_t ts = rd_kafka_message_timestamp(m, &tst);
    esm_kafka_header hdrs[MAX_HEADERS];
    size_t nh = 0;
    rd_kafka_headers_t *rh = NULL;
    if (rd_kafka_message_headers(m, &rh) == RD_KAFKA_RESP_ERR_NO_ERROR && rh) {
        const char *name;
        const void *val;
        size_t size;
        while (nh < MAX_HEADERS &&
               rd_kafka_header_get_all(rh, nh, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            hdrs[nh] = (esm_kafka_header){
                .name = name, .name_len = strlen(name), .value = val, .value_len = size};
            nh++;
        }
    }
    esm_kafka_record_view v = {.topic = p->sh.topic,
                               .partition = p->id,
                               .offset = m->offset,
                               .timestamp_ms = ts,
                               .timestamp_type = ts_type(tst),
                               .key = m->key,
                               .key_len = m->key_len,
                               .value = m->payload,
                               .value_len = m->len,
                               .headers = hdrs,
                               .n_headers = nh};
    esm_buf_reset(&p->scratch);
    esm_kafka_render_record(&v, &p->scratch);
    if (p->scratch.failed) goto nomem;
    if (env->filter && !esm_filter_match(env->filter, p->scratch.data, p->scratch.len, m->payload,
                                         m->payload ? m->len : 0)) {
        env->stats->filtered_out++;
        ESM_TRACE(p->log_ctx, "offset %" PRId64 " filtered out", m->offset);
        filtered(p, m->offset);
        return;
    }
    esm_kafka_rec *r = rec_new(p, m, &p->scratch);
    if (!r) goto nomem;
    r->offset = m->offset;
    r->timestamp_ms = v.timestamp_type == ESM_KAFKA_TS_NONE ? -1 : ts;
    /* the loop's time: one clock read per wakeup, not per record */
    r->received_ms = (int64_t)(ev_now(p->sh.loop) * 1000.0);
    r->commit_after = m->offset + 1;
    if (!pend_push(p, r)) {
        rec_free(r);
        goto nomem;
    }
    dispatch(p);
    return;
nomem:
    /* Never skip a record: read it again from here. */
    ESM_ERROR(p->log_ctx, "out of memory at offset %" PRId64 "; reading it again", m->offset);
    p->next_expected = m->offset;
    seek_to(p, m->offset);
}

/* ---- life cycle ----------------------------------------------------------------------------- */

/* The lane's stored checkpoint (the next offset not yet final), -1 when none. */
static void read_floor(esm_kafka_part *p)
{
    p->floor = -1;
    if (!p->sh.env->store) return;
    esm_store_lane row;
    esm_err err = {0};
    if (esm_store_checkpoint_get(p->sh.env->store, p->sh.map->uuid, p->sh.source_key, p->lane_key,
                                 &row, &err) != 0)
        return;
    if (row.position) {
        char *end;
        long long v = strtoll(row.position, &end, 10);
        if (end != row.position && *end == '\0' && v >= 0) p->floor = v;
    }
    p->group_confirmed = p->floor >= 0 && row.confirmed;
    esm_store_lane_clear(&row);
}

esm_kafka_part *esm_kafka_part_create(const esm_kafka_shared *sh, int32_t partition)
{
    esm_kafka_part *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->sh = *sh;
    p->id = partition;
    p->committed = -1;
    p->next_expected = -1;
    p->nudge_mark = -1;
    p->stored = p->last_ckpt = p->deferred = p->deferred_gate = p->commit_on_assign = -1;
    snprintf(p->lane_key, sizeof p->lane_key, "%" PRId32, partition);
    snprintf(p->log_ctx, sizeof p->log_ctx, "%s %s-%" PRId32, sh->env->log_ctx, sh->topic,
             partition);
    p->overhead = esm_kafka_event_overhead(sh->bootstrap, sh->topic, partition);
    esm_buf_init(&p->scratch);
    ev_timer_init(&p->window, on_timer, 0., 0.);
    p->window.data = p;
    ev_timer_init(&p->kick, on_timer, 0., 0.);
    p->kick.data = p;
    esm_source_stats *st = sh->env->stats;
    esm_lane_env le = {.loop = sh->loop,
                       .invoker = sh->env->invoker,
                       .store = sh->env->store,
                       .writer = sh->env->writer,
                       .outbox = sh->env->outbox,
                       .mapping = sh->map,
                       .source_key = sh->source_key,
                       .lane_key = p->lane_key,
                       .log_ctx = p->log_ctx,
                       .id_kind = ESM_RBIF_ID_KAFKA,
                       .event_envelope = p->overhead,
                       .counters = {.invoked = &st->invoked,
                                    .invocations = &st->invocations,
                                    .failed_invoke = &st->failed_invoke,
                                    .throttled = &st->throttled,
                                    .dropped = &st->dropped,
                                    .on_failure_queued = &st->on_failure_queued,
                                    .committed = &st->committed,
                                    .checkpoint_write_failures = &st->checkpoint_write_failures,
                                    .invokes = &st->invokes},
                       .source = &lane_source,
                       .arg = p};
    p->lane = esm_lane_create(&le);
    if (!p->lane) {
        esm_buf_free(&p->scratch);
        free(p);
        return NULL;
    }
    read_floor(p);
    return p;
}

void esm_kafka_part_quiesce(esm_kafka_part *p, bool abandon_retrying)
{
    p->quiesced = true;
    pend_drop(p);
    set_full(p, false);
    ev_timer_stop(p->sh.loop, &p->kick);
    if (abandon_retrying && esm_lane_busy(p->lane) && esm_lane_blocked_since_ms(p->lane) > 0) {
        ESM_INFO(p->log_ctx, "abandoning the batch in retry (nothing of it is committed)");
        esm_lane_abandon(p->lane);
    }
}

void esm_kafka_part_abandon(esm_kafka_part *p)
{
    p->quiesced = true;
    pend_drop(p);
    set_full(p, false);
    if (esm_lane_busy(p->lane)) esm_lane_abandon(p->lane);
    if (p->batch_n) batch_free(p);
}

void esm_kafka_part_destroy(esm_kafka_part *p)
{
    if (!p) return;
    p->quiesced = true;
    p->sh.changed = NULL;
    set_full(p, false);
    ev_timer_stop(p->sh.loop, &p->window);
    ev_timer_stop(p->sh.loop, &p->kick);
    if (esm_lane_busy(p->lane)) esm_lane_abandon(p->lane);
    esm_lane_destroy(p->lane);
    batch_free(p);
    pend_drop(p);
    free(p->pend);
    esm_buf_free(&p->scratch);
    free(p);
}

static int64_t high_watermark(esm_kafka_part *p)
{
    int64_t lo = RD_KAFKA_OFFSET_INVALID, hi = RD_KAFKA_OFFSET_INVALID;
    if (rd_kafka_get_watermark_offsets(p->sh.rk, p->sh.topic, p->id, &lo, &hi)) return -1;
    return hi;
}

bool esm_kafka_part_nudge(esm_kafka_part *p, bool *woken)
{
    int64_t hi = high_watermark(p);
    /* A lag of one may be a transaction marker, never delivered: not a stall. */
    if (p->quiesced || p->paused || p->next_expected < 0 || hi - p->next_expected < 2) {
        p->nudge_mark = -1;
        return false;
    }
    bool stalled = p->nudge_mark == p->next_expected;
    p->nudge_mark = stalled ? -1 : p->next_expected;
    if (stalled) {
        ESM_DEBUG(p->log_ctx,
                  "fetching stalled at %" PRId64 " (high watermark %" PRId64
                  "): waking the fetcher",
                  p->next_expected, hi);
        p->sh.env->stats->fetch_wakeups++;
        seek_to(p, p->next_expected);
        *woken = true;
    }
    return true;
}

int64_t esm_kafka_part_lag(esm_kafka_part *p)
{
    int64_t hi = high_watermark(p);
    return hi >= 0 && p->committed >= 0 ? (hi > p->committed ? hi - p->committed : 0) : -1;
}

int64_t esm_kafka_part_blocked_since(const esm_kafka_part *p)
{
    return esm_lane_blocked_since_ms(p->lane);
}

size_t esm_kafka_part_in_flight(const esm_kafka_part *p)
{
    return p->batch_n;
}

const char *esm_kafka_part_name(const esm_kafka_part *p)
{
    return p->lane_key;
}

void esm_kafka_part_status(esm_kafka_part *p, esm_buf *out, int64_t *lag)
{
    int64_t hi = high_watermark(p);
    *lag = esm_kafka_part_lag(p);
    esm_buf_printf(out, "{\"Partition\":%" PRId32 ",\"CommittedOffset\":", p->id);
    if (p->committed >= 0)
        esm_buf_printf(out, "%" PRId64, p->committed);
    else
        esm_buf_puts(out, "null");
    esm_buf_puts(out, ",\"HighWatermark\":");
    if (hi >= 0)
        esm_buf_printf(out, "%" PRId64, hi);
    else
        esm_buf_puts(out, "null");
    esm_buf_puts(out, ",\"OffsetLag\":");
    if (*lag >= 0)
        esm_buf_printf(out, "%" PRId64, *lag);
    else
        esm_buf_puts(out, "null");
    esm_buf_printf(out, ",\"Waiting\":%zu,\"InBatch\":%zu,\"Paused\":%s,\"Stopping\":%s,", p->len,
                   p->batch_n, p->paused ? "true" : "false", p->quiesced ? "true" : "false");
    esm_buf_printf(out, "\"LogResets\":%" PRIu64 ",\"LastLogReset\":", p->log_resets);
    if (p->log_resets) {
        char at[25];
        esm_iso8601_ms(p->last_reset_ms, at);
        esm_buf_puts(out, "{\"At\":");
        esm_buf_json_cstr(out, at);
        esm_buf_puts(out, ",\"Reason\":");
        esm_buf_json_cstr(out, p->last_reset);
        esm_buf_putc(out, '}');
    } else {
        esm_buf_puts(out, "null");
    }
    esm_buf_puts(out, ",\"Lane\":");
    esm_lane_status(p->lane, out);
    esm_buf_putc(out, '}');
}
