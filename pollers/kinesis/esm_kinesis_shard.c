/* One Kinesis shard: its iterator, the GetRecords loop, the ordered lanes it feeds and its
 * checkpoint.
 *
 * Records are fetched in sequence order into the shard's order list and, when they match the
 * filters, into the queue of their lane (one lane, or ParallelizationFactor lanes chosen by
 * partition-key hash). Each lane has one batch in flight (lane/esm_lane.h runs the policy).
 * The shard's checkpoint is the watermark: the highest sequence number below which every
 * fetched record is resolved (acknowledged, discarded, or filtered out). Records stay in
 * memory until the watermark passes them and their lane is done with them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "pollers/kinesis/esm_kinesis_int.h"

/* ---- esm_kinesis_deque
 * ----------------------------------------------------------------------------- */

static bool deque_room(esm_kinesis_deque *d, size_t extra)
{
    if (d->head + d->len + extra <= d->cap) return true;
    if (d->head > 0) { /* compact first */
        memmove(d->v, d->v + d->head, d->len * sizeof *d->v);
        d->head = 0;
        if (d->len + extra <= d->cap) return true;
    }
    size_t cap = d->cap ? d->cap : 64;
    while (cap < d->len + extra)
        cap *= 2;
    esm_kinesis_record **v = realloc(d->v, cap * sizeof *v);
    if (!v) return false;
    d->v = v;
    d->cap = cap;
    return true;
}

bool esm_kinesis_deque_push(esm_kinesis_deque *d, esm_kinesis_record *r)
{
    if (!deque_room(d, 1)) return false;
    d->v[d->head + d->len++] = r;
    return true;
}

esm_kinesis_record *esm_kinesis_deque_pop(esm_kinesis_deque *d)
{
    if (d->len == 0) return NULL;
    esm_kinesis_record *r = d->v[d->head++];
    if (--d->len == 0) d->head = 0;
    return r;
}

esm_kinesis_record *esm_kinesis_deque_at(const esm_kinesis_deque *d, size_t i)
{
    return i < d->len ? d->v[d->head + i] : NULL;
}

bool esm_kinesis_deque_unshift(esm_kinesis_deque *d, esm_kinesis_record *const *rs, size_t n)
{
    if (n == 0) return true;
    if (d->head < n) {
        if (!deque_room(d, n)) return false;
        memmove(d->v + n, d->v + d->head, d->len * sizeof *d->v);
        d->head = n;
    }
    d->head -= n;
    memcpy(d->v + d->head, rs, n * sizeof *rs);
    d->len += n;
    return true;
}

void esm_kinesis_deque_free(esm_kinesis_deque *d)
{
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* ---- helpers ------------------------------------------------------------------------------- */

const char *esm_kinesis_shard_state_name(esm_kinesis_shard_state st)
{
    switch (st) {
    case KS_WAITING:
        return "WaitingForParents";
    case KS_STARTING:
        return "GettingIterator";
    case KS_READING:
        return "Reading";
    case KS_DRAINING:
        return "Draining";
    case KS_FINISHED:
        return "Finished";
    case KS_FAILED:
        return "CheckpointMismatch";
    }
    return "Unknown";
}

static void set_error(esm_kinesis_shard *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(esm_kinesis_shard *sh, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->last_error, sizeof sh->last_error, fmt, ap);
    va_end(ap);
}

static bool running(const esm_kinesis_shard *sh)
{
    return sh->src->state == K_RUNNING;
}

static void schedule(esm_kinesis_shard *sh, int64_t delay_ms)
{
    ev_timer_stop(sh->src->env.loop, &sh->timer);
    ev_timer_set(&sh->timer, delay_ms > 0 ? (double)delay_ms / 1000.0 : 0., 0.);
    ev_timer_start(sh->src->env.loop, &sh->timer);
}

/* Exponential backoff for failed calls: 0.5 s doubling to 30 s (1 s first for throttles). */
static int64_t backoff_ms(esm_kinesis_shard *sh, bool throttled)
{
    sh->errors++;
    unsigned e = sh->errors + (throttled ? 1 : 0);
    int64_t d = e < 7 ? (int64_t)250 << e : 30000;
    return d > 30000 ? 30000 : d;
}

int64_t esm_kinesis_shard_call_failed(esm_kinesis_shard *sh, const char *what, const char *type,
                                      const char *message, bool throttled)
{
    sh->src->env.stats->source_errors++;
    int64_t d = backoff_ms(sh, throttled);
    set_error(sh, "%s failed: %.100s %.160s", what, type, message);
    if (sh->errors == 1 || sh->errors % 10 == 0)
        ESM_WARN(sh->log_ctx, "%s failed (%s: %s); retry in %lld ms", what, type, message,
                 (long long)d);
    schedule(sh, d);
    return d;
}

static void get_records(esm_kinesis_shard *sh);
static void request_iterator(esm_kinesis_shard *sh);
static void lane_kick(esm_kinesis_lane *kl);
static void lane_kick_later(esm_kinesis_lane *kl);
static void check_drained(esm_kinesis_shard *sh);

/* ---- the watermark and the checkpoint ------------------------------------------------------ */

/* Pops resolved records off the front of the order list; true when the watermark moved. */
static bool advance_watermark(esm_kinesis_shard *sh)
{
    bool moved = false;
    for (esm_kinesis_record *r = esm_kinesis_deque_at(&sh->order, 0); r && r->done;
         r = esm_kinesis_deque_at(&sh->order, 0)) {
        esm_kinesis_deque_pop(&sh->order);
        snprintf(sh->watermark, sizeof sh->watermark, "%s", r->seq);
        sh->order_bytes -= r->json_len;
        r->in_order = false;
        if (!r->in_lane) esm_kinesis_record_free(r);
        moved = true;
    }
    return moved;
}

static bool watermark_ahead(const esm_kinesis_shard *sh)
{
    return sh->watermark[0] &&
           (!sh->checkpoint[0] || esm_kinesis_seq_cmp(sh->watermark, sh->checkpoint) > 0);
}

/* Stores a watermark that moved without a lane step (filtered-out records). The row is the
 * shard's own; with ParallelizationFactor 1 it is also the lane's, whose retry state a write
 * clears, so only while that lane is idle (its next step stores the watermark anyway). */
static void persist_watermark(esm_kinesis_shard *sh, bool finished)
{
    esm_kinesis_stream *s = sh->src;
    if (!watermark_ahead(sh) && !finished) return;
    if (sh->n_lanes == 1 && esm_lane_busy(sh->lanes[0].lane)) return;
    esm_store_step step = {.position = sh->watermark[0] ? sh->watermark : NULL,
                           .finished = finished};
    esm_err err;
    esm_err_clear(&err);
    if (esm_store_advance(s->env.store, s->map->uuid, s->map->event_source_arn, sh->info.id, &step,
                          &err) != 0) {
        s->env.stats->checkpoint_write_failures++;
        ESM_ERROR(sh->log_ctx, "cannot store the checkpoint %s%s: %s", sh->watermark,
                  finished ? " (shard finished)" : "", err.message);
        set_error(sh, "state store: %.200s", err.message);
        return;
    }
    if (sh->watermark[0]) snprintf(sh->checkpoint, sizeof sh->checkpoint, "%s", sh->watermark);
    if (finished) {
        sh->state = KS_FINISHED;
        ESM_INFO(sh->log_ctx, "shard finished (read to its end, every record resolved%s%s)",
                 sh->checkpoint[0] ? "; last " : "", sh->checkpoint);
    }
}

/* A closed shard read to its end with every record resolved is recorded as finished; then its
 * children may start. */
static void check_drained(esm_kinesis_shard *sh)
{
    if (sh->state != KS_DRAINING || sh->order.len > 0) return;
    for (unsigned i = 0; i < sh->n_lanes; i++)
        if (sh->lanes[i].in_batch || esm_lane_busy(sh->lanes[i].lane) || sh->lanes[i].queue.len)
            return;
    persist_watermark(sh, true);
    if (sh->state == KS_FINISHED) {
        sh->src->up->shard_finished(sh->src, sh);
    } else {
        schedule(sh, 1000); /* the store refused: try again */
    }
}

/* ---- the lane's callbacks ------------------------------------------------------------------ */

static void cb_render_event(void *arg, size_t lo, size_t hi, esm_buf *out)
{
    esm_kinesis_lane *kl = arg;
    esm_kinesis_render_event(kl->batch + lo, hi - lo, out);
}

static void cb_describe_failure(void *arg, size_t lo, size_t hi, const char *dest,
                                esm_failure_record *fr)
{
    (void)dest;
    esm_kinesis_lane *kl = arg;
    fr->source = ESM_FR_KINESIS;
    fr->batch_size = hi - lo;
    fr->stream.shard_id = kl->shard->info.id;
    fr->stream.start_sequence_number = kl->batch[lo]->seq;
    fr->stream.end_sequence_number = kl->batch[hi - 1]->seq;
    fr->stream.first_arrival_ms = kl->batch[lo]->arrival_ms;
    fr->stream.last_arrival_ms = kl->batch[hi - 1]->arrival_ms;
    fr->stream.stream_arn = kl->shard->src->map->event_source_arn;
}

/* The position the shard may store once records [0, resolved) of this lane's batch are durable:
 * the watermark as it would be with them done. Only records whose outcome is durable are done
 * (cb_acknowledged marks them), so a lane whose write fails never lets another lane's
 * checkpoint pass its records (docs/operations.md "Disk full / store write errors"). */
static const char *cb_checkpoint_after(void *arg, size_t resolved)
{
    esm_kinesis_lane *kl = arg;
    esm_kinesis_shard *sh = kl->shard;
    if (resolved > kl->n_batch) resolved = kl->n_batch;
    advance_watermark(sh);
    const char *pos = sh->watermark[0] ? sh->watermark : NULL;
    size_t next = kl->resolved; /* this lane's next record in shard order */
    for (size_t i = 0; i < sh->order.len; i++) {
        const esm_kinesis_record *r = esm_kinesis_deque_at(&sh->order, i);
        if (next < resolved && r == kl->batch[next])
            next++;
        else if (!r->done)
            break;
        pos = r->seq;
    }
    /* Every lane row of the shard stores a shard position, so the shard resumes at the highest
     * of them. NULL (nothing resolved yet) keeps the stored position. */
    snprintf(kl->pending_pos, sizeof kl->pending_pos, "%s", pos ? pos : "");
    return pos ? kl->pending_pos : NULL;
}

/* Records [0, resolved) of the batch are durable: they are done, the watermark may pass them. */
static void cb_acknowledged(void *arg, size_t resolved)
{
    esm_kinesis_lane *kl = arg;
    esm_kinesis_shard *sh = kl->shard;
    if (resolved > kl->n_batch) resolved = kl->n_batch;
    for (size_t i = kl->resolved; i < resolved; i++)
        kl->batch[i]->done = true;
    if (resolved > kl->resolved) kl->resolved = resolved;
    advance_watermark(sh);
    if (kl->pending_pos[0] &&
        (!sh->checkpoint[0] || esm_kinesis_seq_cmp(kl->pending_pos, sh->checkpoint) > 0))
        snprintf(sh->checkpoint, sizeof sh->checkpoint, "%s", kl->pending_pos);
    kl->pending_pos[0] = '\0';
}

static void cb_done(void *arg, bool abandoned)
{
    esm_kinesis_lane *kl = arg;
    esm_kinesis_shard *sh = kl->shard;
    kl->in_batch = false;
    /* Records the lane resolved leave it; the rest (abandoned, or not taken because a persisted
     * retry covered a shorter range) go back to the front of the queue, in order. */
    for (size_t i = 0; i < kl->resolved && i < kl->n_batch; i++) {
        esm_kinesis_record *r = kl->batch[i];
        r->in_lane = false;
        if (!r->in_order) esm_kinesis_record_free(r);
    }
    if (kl->resolved < kl->n_batch) {
        size_t back = kl->n_batch - kl->resolved;
        if (kl->queue.len == 0) kl->queue_since_ms = esm_now_ms();
        if (esm_kinesis_deque_unshift(&kl->queue, kl->batch + kl->resolved, back)) {
            for (size_t i = kl->resolved; i < kl->n_batch; i++)
                kl->queue_bytes += kl->batch[i]->json_len;
        } else {
            /* Cannot requeue: leave them unresolved; they are read again after a restart. */
            ESM_ERROR(kl->log_ctx, "out of memory requeueing %zu records", back);
            for (size_t i = kl->resolved; i < kl->n_batch; i++)
                kl->batch[i]->in_lane = false;
        }
    }
    free(kl->batch);
    free(kl->precs);
    kl->batch = NULL;
    kl->precs = NULL;
    kl->n_batch = kl->resolved = 0;
    if (abandoned && running(sh))
        ESM_WARN(kl->log_ctx, "batch abandoned unacknowledged; its records are offered again in "
                              "1 s");
    if (running(sh)) {
        if (abandoned) { /* never a hot loop */
            ev_timer_stop(sh->src->env.loop, &kl->window);
            ev_timer_set(&kl->window, 1., 0.);
            ev_timer_start(sh->src->env.loop, &kl->window);
        } else {
            lane_kick_later(kl);
        }
        persist_watermark(sh, false);
        check_drained(sh);
        if (sh->state == KS_READING && !sh->call && !ev_is_active(&sh->timer)) get_records(sh);
    }
    sh->src->up->maybe_stopped(sh->src);
}

static const esm_lane_source lane_source = {
    .render_event = cb_render_event,
    .describe_failure = cb_describe_failure,
    .checkpoint_after = cb_checkpoint_after,
    .record_key = NULL,
    .acknowledged = cb_acknowledged,
    .done = cb_done,
};

/* ---- lanes: batching ------------------------------------------------------------------------ */

static void on_lane_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lane_kick(w->data);
}

/* Kicks from the loop, not from inside a lane callback (no re-entry into esm_lane_start). */
static void lane_kick_later(esm_kinesis_lane *kl)
{
    struct ev_loop *loop = kl->shard->src->env.loop;
    ev_timer_stop(loop, &kl->window);
    ev_timer_set(&kl->window, 0., 0.);
    ev_timer_start(loop, &kl->window);
}

/* Gives the lane its next batch: up to BatchSize queued records within the 6 MB event limit,
 * once the batch is full, the batching window has passed, or (no window) at once. */
static void lane_kick(esm_kinesis_lane *kl)
{
    esm_kinesis_shard *sh = kl->shard;
    esm_kinesis_stream *s = sh->src;
    const esm_mapping_config *m = s->map;
    if (!running(sh) || kl->in_batch || esm_lane_busy(kl->lane) || kl->queue.len == 0) return;
    size_t bs = (size_t)m->batch_size;
    /* At the limit nothing more fits: full too. */
    bool full = kl->queue.len >= bs ||
                esm_kinesis_event_size(kl->queue.len, kl->queue_bytes) >= ESM_INVOKE_MAX_PAYLOAD;
    if (!full && m->batching_window_ms > 0 && sh->state == KS_READING) {
        int64_t wait = kl->queue_since_ms + m->batching_window_ms - esm_now_ms();
        if (wait > 0) {
            if (!ev_is_active(&kl->window)) {
                ev_timer_set(&kl->window, (double)wait / 1000.0, 0.);
                ev_timer_start(s->env.loop, &kl->window);
            }
            return;
        }
    }
    ev_timer_stop(s->env.loop, &kl->window);
    size_t n = 0, bytes = 0;
    while (n < kl->queue.len && n < bs) {
        const esm_kinesis_record *r = esm_kinesis_deque_at(&kl->queue, n);
        if (n > 0 && !esm_invoke_payload_fits(esm_kinesis_event_size(n + 1, bytes + r->json_len)))
            break;
        bytes += r->json_len;
        n++;
    }
    kl->batch = malloc(n * sizeof *kl->batch);
    kl->precs = calloc(n, sizeof *kl->precs);
    if (!kl->batch || !kl->precs) {
        free(kl->batch);
        free(kl->precs);
        kl->batch = NULL;
        kl->precs = NULL;
        ESM_ERROR(kl->log_ctx, "out of memory building a batch; retrying in 1 s");
        ev_timer_set(&kl->window, 1., 0.);
        ev_timer_start(s->env.loop, &kl->window);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        esm_kinesis_record *r = esm_kinesis_deque_pop(&kl->queue);
        kl->queue_bytes -= r->json_len;
        kl->batch[i] = r;
        kl->precs[i].id = r->seq;
        kl->precs[i].arrival_ms = r->arrival_ms;
        kl->precs[i].size = r->json_len;
    }
    if (kl->queue.len) kl->queue_since_ms = esm_now_ms();
    kl->n_batch = n;
    kl->resolved = 0;
    kl->in_batch = true;
    unsigned gen = ++kl->gen;
    ESM_DEBUG(kl->log_ctx, "batch of %zu records %s..%s", n, kl->batch[0]->seq,
              kl->batch[n - 1]->seq);
    long took = esm_lane_start(kl->lane, kl->precs, n);
    if (gen != kl->gen || !kl->in_batch) return; /* already done (e.g. every record too old) */
    if (took < 0) {
        ESM_ERROR(kl->log_ctx, "the lane refused a batch while idle");
        kl->resolved = 0;
        cb_done(kl, true);
        return;
    }
    if ((size_t)took < kl->n_batch) { /* a persisted retry covers fewer records */
        size_t back = kl->n_batch - (size_t)took;
        if (kl->queue.len == 0) kl->queue_since_ms = esm_now_ms();
        if (esm_kinesis_deque_unshift(&kl->queue, kl->batch + took, back)) {
            for (size_t i = (size_t)took; i < kl->n_batch; i++)
                kl->queue_bytes += kl->batch[i]->json_len;
            kl->n_batch = (size_t)took;
        }
    }
}

/* ---- GetRecords ---------------------------------------------------------------------------- */

/* Records and JSON bytes a shard may hold read but not yet passed by the watermark. GetRecords
 * reads up to KIN_READ_LIMIT records and batches are cut locally (as AWS's poller does), so a
 * small BatchSize is not capped at 5 x BatchSize records/s; the bound keeps a lane that is
 * blocked in retries from growing memory: at least twice a full batch per lane. */
static size_t cap_records(const esm_kinesis_shard *sh)
{
    size_t per_batch = 2 * (size_t)sh->src->map->batch_size * sh->n_lanes;
    return per_batch > KIN_BUFFER_RECORDS ? per_batch : KIN_BUFFER_RECORDS;
}

static size_t cap_bytes(const esm_kinesis_shard *sh)
{
    size_t per_batch = 2 * (size_t)ESM_INVOKE_MAX_PAYLOAD * sh->n_lanes;
    return per_batch > KIN_BUFFER_BYTES ? per_batch : KIN_BUFFER_BYTES;
}

/* Whether the shard may read more. Every queued record is also in the order list, so the order
 * list bounds the lanes' queues too. Reading resumes only once half the room is free
 * (hysteresis): a shard draining a full buffer makes a few large reads, not one small read per
 * batch. One response may overshoot the bytes bound (AWS returns at most 10 MB). */
static bool buffer_has_room(const esm_kinesis_shard *sh)
{
    return sh->order.len <= cap_records(sh) / 2 && sh->order_bytes <= cap_bytes(sh) / 2;
}

/* GetRecords Limit: the shard's read size, within what the record bound still has room for.
 * The read size starts at KIN_FIRST_READ (or BatchSize if larger) and grows 4x with every full
 * read up to AWS's 10 000 (the first batch after a start does not wait for a 10 000-record
 * read; a backlog is soon read in large pages), and falls back to BatchSize when GetRecords is
 * throttled (AWS throttles on bytes read per shard: read less). Starting at BatchSize cost a
 * backlog at BatchSize 10 five calls, 200 ms apart, before reads were large (bench N2). */
static int get_limit(const esm_kinesis_shard *sh)
{
    size_t bs = (size_t)sh->src->map->batch_size;
    size_t want = sh->read_size ? (size_t)sh->read_size : bs > KIN_FIRST_READ ? bs : KIN_FIRST_READ;
    size_t cap = cap_records(sh);
    size_t room = sh->order.len < cap ? cap - sh->order.len : 1;
    if (want > room) want = room;
    if (want > KIN_READ_LIMIT) want = KIN_READ_LIMIT;
    return want < 1 ? 1 : (int)want;
}

static void grow_read_size(esm_kinesis_shard *sh)
{
    int next = sh->read_limit > KIN_READ_LIMIT / 4 ? KIN_READ_LIMIT : sh->read_limit * 4;
    if (next > sh->read_size) sh->read_size = next;
}

/* Renews the iterator from the last record read (or the start position if none): nothing is
 * skipped and nothing read is read twice. */
static void renew_iterator(esm_kinesis_shard *sh, int64_t delay_ms)
{
    free(sh->iterator);
    sh->iterator = NULL;
    sh->trim.checked = false; /* the position may have been trimmed meanwhile */
    sh->state = KS_STARTING;
    schedule(sh, delay_ms);
}

static bool take_record(esm_kinesis_shard *sh, esm_kinesis_record *r)
{
    esm_kinesis_stream *s = sh->src;
    if (!esm_kinesis_deque_push(&sh->order, r)) return false;
    r->in_order = true;
    sh->order_bytes += r->json_len;
    s->env.stats->polled++;
    bool match = true;
    if (s->env.filter && !esm_filter_matches_all(s->env.filter)) {
        size_t len = strlen(r->data);
        unsigned char *dec = malloc(len * 3 / 4 + 3);
        long dl = dec ? esm_base64_decode(r->data, len, dec) : -1;
        /* Data that is not base64 cannot be JSON: it only matches patterns without a data key. */
        match = esm_filter_match(s->env.filter, r->json, r->json_len, dl >= 0 ? (char *)dec : NULL,
                                 dl >= 0 ? (size_t)dl : 0);
        free(dec);
    }
    free(r->data);
    r->data = NULL;
    if (!match) {
        r->done = true;
        s->env.stats->filtered_out++;
        ESM_TRACE(sh->log_ctx, "record %s filtered out", r->seq);
        return true;
    }
    esm_kinesis_lane *kl = &sh->lanes[esm_kinesis_lane_of(r->partition_key, sh->n_lanes)];
    r->lane = kl->idx;
    if (!esm_kinesis_deque_push(&kl->queue, r)) {
        /* Undo: the caller frees it and reads again from the record before it. */
        sh->order.len--;
        sh->order_bytes -= r->json_len;
        r->in_order = false;
        return false;
    }
    r->in_lane = true;
    if (kl->queue.len == 1) kl->queue_since_ms = esm_now_ms();
    kl->queue_bytes += r->json_len;
    return true;
}

size_t esm_kinesis_shard_take(esm_kinesis_shard *sh, esm_kinesis_record **recs, size_t n)
{
    size_t taken = 0;
    for (; taken < n; taken++) {
        esm_kinesis_record *r = recs[taken];
        if (!take_record(sh, r)) break;
        recs[taken] = NULL;
        sh->last_arrival_ms = r->arrival_ms;
        snprintf(sh->fetch_pos, sizeof sh->fetch_pos, "%s", r->seq);
    }
    return taken;
}

void esm_kinesis_shard_offer(esm_kinesis_shard *sh)
{
    if (advance_watermark(sh)) persist_watermark(sh, false);
    for (unsigned i = 0; i < sh->n_lanes; i++)
        lane_kick(&sh->lanes[i]);
}

static void on_records(const esm_aws_result *res, void *arg)
{
    esm_kinesis_shard *sh = arg;
    esm_kinesis_stream *s = sh->src;
    sh->call = NULL;
    if (!running(sh) || sh->state != KS_READING) {
        s->up->maybe_stopped(s);
        return;
    }
    if (!res->ok) {
        s->env.stats->source_errors++;
        if (strcmp(res->error_type, "ExpiredIteratorException") == 0) {
            /* The first expiry renews at once; expiring again before a read worked backs off
             * (0.5 s doubling to 30 s). */
            unsigned e = sh->expired_in_row++;
            int64_t d = e == 0 ? 0 : e < 7 ? (int64_t)250 << e : 30000;
            ESM_INFO(sh->log_ctx, "shard iterator expired; renewing it after %s in %lld ms",
                     sh->fetch_pos[0] ? sh->fetch_pos : "the start position", (long long)d);
            set_error(sh, "GetRecords failed: ExpiredIteratorException %.120s", res->message);
            renew_iterator(sh, d);
            return;
        }
        int64_t d = backoff_ms(sh, res->throttled);
        if (res->throttled) sh->read_size = sh->src->map->batch_size; /* read less */
        set_error(sh, "GetRecords failed: %.100s %.120s", res->error_type, res->message);
        if (sh->errors == 1 || sh->errors % 10 == 0)
            ESM_WARN(sh->log_ctx, "GetRecords failed (%s: %s); retry in %lld ms", res->error_type,
                     res->message, (long long)d);
        if (strcmp(res->error_type, "ResourceNotFoundException") == 0) {
            s->up->refresh_shards(s);
            renew_iterator(sh, d);
            return;
        }
        schedule(sh, d);
        return;
    }
    esm_kinesis_page page;
    char why[160];
    if (esm_kinesis_parse_get_records(res->json, &sh->rctx, &page, why, sizeof why) != 0) {
        s->env.stats->source_errors++;
        int64_t d = backoff_ms(sh, false);
        set_error(sh, "GetRecords: %s", why);
        ESM_WARN(sh->log_ctx, "unexpected GetRecords response (%s); retry in %lld ms", why,
                 (long long)d);
        schedule(sh, d);
        return;
    }
    if (sh->errors) ESM_INFO(sh->log_ctx, "GetRecords works again");
    sh->errors = 0;
    sh->expired_in_row = 0;
    sh->last_error[0] = '\0';
    if (page.skipped)
        ESM_WARN(sh->log_ctx, "GetRecords returned %zu malformed records (left out)", page.skipped);
    sh->millis_behind = page.millis_behind_latest;
    size_t taken = esm_kinesis_shard_take(sh, page.records, page.n);
    bool oom = taken < page.n;
    if (!oom) {
        free(sh->iterator);
        sh->iterator = page.next_iterator; /* NULL at SHARD_END */
        page.next_iterator = NULL;
    }
    esm_kinesis_page_clear(&page);
    if (taken) ESM_TRACE(sh->log_ctx, "read %zu records up to %s", taken, sh->fetch_pos);
    esm_kinesis_shard_offer(sh);
    if (oom) {
        ESM_ERROR(sh->log_ctx, "out of memory taking records; reading again after %s in 1 s",
                  sh->fetch_pos[0] ? sh->fetch_pos : "the start position");
        renew_iterator(sh, 1000);
        return;
    }
    if (!sh->iterator && !sh->info.ending_seq) {
        /* As in on_iterator: a shard listed as open is not ended on this answer; the listing is
         * refreshed (a shard that did close gets its ending sequence number there). */
        s->up->refresh_shards(s);
        renew_iterator(sh, esm_kinesis_shard_call_failed(
                               sh, "GetRecords", "InvalidResponse",
                               "no NextShardIterator for a shard listed as open", false));
        return;
    }
    if (!sh->iterator) {
        ESM_INFO(sh->log_ctx, "reached the end of the closed shard; draining");
        sh->state = KS_DRAINING;
        for (unsigned i = 0; i < sh->n_lanes; i++)
            lane_kick(&sh->lanes[i]); /* no window at the end of a shard */
        check_drained(sh);
        return;
    }
    /* Behind: read again at once (at most 5 a second); caught up: about once a second. */
    bool full = taken > 0 && taken >= (size_t)sh->read_limit;
    if (full) grow_read_size(sh);
    bool behind = (taken > 0 && (sh->millis_behind > 0 || full)) ||
                  sh->info.ending_seq; /* a closed shard: read on to its end */
    schedule(sh, behind ? 0 : KIN_IDLE_POLL_MS);
}

static void get_records(esm_kinesis_shard *sh)
{
    esm_kinesis_stream *s = sh->src;
    if (!running(sh) || sh->state != KS_READING || sh->call || !sh->iterator) return;
    if (!buffer_has_room(sh)) return; /* a lane finishing a batch calls again */
    int64_t now = esm_now_ms();
    if (sh->last_poll_ms && now - sh->last_poll_ms < KIN_MIN_POLL_MS) {
        schedule(sh, KIN_MIN_POLL_MS - (now - sh->last_poll_ms));
        return;
    }
    esm_buf body;
    esm_buf_init(&body);
    sh->read_limit = get_limit(sh);
    esm_kinesis_body_get_records(&body, sh->iterator, sh->read_limit);
    sh->last_poll_ms = now;
    if (!body.failed)
        sh->call = esm_aws_json_call(s->aws, KIN_TARGET("GetRecords"), "1.1", body.data, body.len,
                                     KIN_CALL_TIMEOUT_MS, on_records, sh);
    esm_buf_free(&body);
    if (!sh->call) schedule(sh, 1000);
}

/* ---- GetShardIterator ------------------------------------------------------------------------ */

void esm_kinesis_shard_mismatch(esm_kinesis_shard *sh, const char *why)
{
    sh->state = KS_FAILED;
    /* the position the shard would have started from: its checkpoint, or where an operator
     * moved it */
    const char *cp = sh->checkpoint[0] ? sh->checkpoint
                     : sh->start_at[0] ? sh->start_at
                                       : "(finished)";
    set_error(sh, "checkpoint %.80s does not fit the stream: %.160s", cp, why);
    ESM_ERROR(sh->log_ctx,
              "the stored checkpoint %s does not fit shard %s of %s: %s. The shard is NOT read; "
              "move the shard's position (POST /positions/move while the mapping is disabled) "
              "to continue",
              cp, sh->info.id, sh->src->map->event_source_arn, why);
}

static void on_iterator(const esm_aws_result *res, void *arg)
{
    esm_kinesis_shard *sh = arg;
    esm_kinesis_stream *s = sh->src;
    sh->call = NULL;
    if (!running(sh) || sh->state != KS_STARTING) {
        s->up->maybe_stopped(s);
        return;
    }
    if (!res->ok) {
        s->env.stats->source_errors++;
        bool after = sh->fetch_pos[0] || sh->checkpoint[0];
        bool moved_to_seq = !after && strncmp(sh->start_at, "AT_SEQUENCE_NUMBER:", 19) == 0;
        if ((after || moved_to_seq) && strcmp(res->error_type, "InvalidArgumentException") == 0) {
            char why[300];
            snprintf(why, sizeof why, "GetShardIterator %s refused it (%.200s)",
                     after ? "AFTER_SEQUENCE_NUMBER" : "AT_SEQUENCE_NUMBER", res->message);
            esm_kinesis_shard_mismatch(sh, why);
            return;
        }
        int64_t d = backoff_ms(sh, res->throttled);
        set_error(sh, "GetShardIterator failed: %.100s %.120s", res->error_type, res->message);
        if (sh->errors == 1 || sh->errors % 10 == 0)
            ESM_WARN(sh->log_ctx, "GetShardIterator failed (%s: %s); retry in %lld ms",
                     res->error_type, res->message, (long long)d);
        if (strcmp(res->error_type, "ResourceNotFoundException") == 0) s->up->refresh_shards(s);
        schedule(sh, d);
        return;
    }
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(res->json, "ShardIterator");
    sh->errors = 0;
    sh->last_error[0] = '\0';
    free(sh->iterator);
    sh->iterator = cJSON_IsString(it) && it->valuestring[0] ? strdup(it->valuestring) : NULL;
    if (!sh->iterator && !sh->info.ending_seq) {
        /* Only a closed shard has no iterator: an answer that ends a shard ListShards lists as
         * open would have it recorded as finished and never read again. */
        esm_kinesis_shard_call_failed(sh, "GetShardIterator", "InvalidResponse",
                                      "no ShardIterator for a shard listed as open", false);
        s->up->refresh_shards(s);
        return;
    }
    if (!sh->iterator) { /* a closed shard with nothing after the position */
        ESM_INFO(sh->log_ctx, "no iterator: the closed shard has nothing left to read");
        sh->state = KS_DRAINING;
        check_drained(sh);
        return;
    }
    sh->state = KS_READING;
    get_records(sh);
}

static void request_iterator(esm_kinesis_shard *sh)
{
    esm_kinesis_stream *s = sh->src;
    const esm_mapping_config *m = s->map;
    if (!running(sh) || sh->state != KS_STARTING || sh->call) return;
    esm_kinesis_start st;
    if (sh->fetch_pos[0]) {
        st =
            (esm_kinesis_start){.type = ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER, .seq = sh->fetch_pos};
    } else if (!sh->checkpoint[0] && esm_kinesis_start_at(sh->start_at, &st)) {
        /* moved by an operator (docs/operations.md "Moving a position") */
    } else {
        st = esm_kinesis_start_for(sh->checkpoint[0] ? sh->checkpoint : NULL, m->starting_position,
                                   m->starting_position_timestamp_ms, sh->first_discovery,
                                   sh->info.ending_seq == NULL, s->latest_since_ms);
    }
    if (st.type == ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER && !sh->trim.checked) {
        esm_kinesis_trim_check(sh, st.seq);
        return;
    }
    esm_buf body;
    esm_buf_init(&body);
    esm_kinesis_body_shard_iterator(&body, m->source_name, sh->info.id, st.type, st.seq,
                                    st.timestamp_ms);
    if (!body.failed)
        sh->call = esm_aws_json_call(s->aws, KIN_TARGET("GetShardIterator"), "1.1", body.data,
                                     body.len, KIN_CALL_TIMEOUT_MS, on_iterator, sh);
    esm_buf_free(&body);
    if (!sh->call) {
        schedule(sh, 1000);
        return;
    }
    ESM_DEBUG(sh->log_ctx, "GetShardIterator %s%s%s", esm_kinesis_iterator_type_name(st.type),
              st.seq ? " " : "", st.seq ? st.seq : "");
}

void esm_kinesis_shard_request_iterator(esm_kinesis_shard *sh)
{
    request_iterator(sh);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kinesis_shard *sh = w->data;
    if (sh->state == KS_STARTING)
        request_iterator(sh);
    else if (sh->state == KS_READING)
        get_records(sh);
    else if (sh->state == KS_DRAINING)
        check_drained(sh);
}

void esm_kinesis_shard_start(esm_kinesis_shard *sh)
{
    if (sh->state != KS_WAITING) return;
    if (sh->checkpoint[0]) {
        const char *why = esm_kinesis_checkpoint_misfit(sh->checkpoint, &sh->info);
        if (why) {
            esm_kinesis_shard_mismatch(sh, why);
            return;
        }
    }
    ESM_INFO(sh->log_ctx, "reading shard (%s%s)",
             sh->checkpoint[0] ? "after "
             : sh->start_at[0] ? "from where an operator moved it: "
                               : "from ",
             sh->checkpoint[0] ? sh->checkpoint
             : sh->start_at[0] ? sh->start_at
                               : "the starting position");
    sh->state = KS_STARTING;
    request_iterator(sh);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

esm_kinesis_shard *esm_kinesis_shard_new(esm_kinesis_stream *s, const esm_kinesis_shard_info *info)
{
    esm_kinesis_shard *sh = calloc(1, sizeof *sh);
    if (!sh) return NULL;
    sh->src = s;
    sh->info.id = strdup(info->id);
    sh->info.parent = info->parent ? strdup(info->parent) : NULL;
    sh->info.adjacent_parent = info->adjacent_parent ? strdup(info->adjacent_parent) : NULL;
    sh->info.starting_seq = info->starting_seq ? strdup(info->starting_seq) : NULL;
    sh->info.ending_seq = info->ending_seq ? strdup(info->ending_seq) : NULL;
    sh->millis_behind = -1;
    snprintf(sh->log_ctx, sizeof sh->log_ctx, "%s %s", s->env.log_ctx ? s->env.log_ctx : "",
             info->id);
    unsigned pf = s->map->parallelization_factor > 1 ? (unsigned)s->map->parallelization_factor : 1;
    sh->lanes = calloc(pf, sizeof *sh->lanes);
    if (!sh->info.id || !sh->lanes) {
        esm_kinesis_shard_free(sh);
        return NULL;
    }
    sh->n_lanes = pf;
    sh->rctx.stream_arn = s->map->event_source_arn;
    sh->rctx.region = s->region;
    sh->rctx.identity_arn = s->identity_arn;
    sh->rctx.shard_id = sh->info.id;
    ev_timer_init(&sh->timer, on_timer, 0., 0.);
    sh->timer.data = sh;
    for (unsigned i = 0; i < pf; i++) {
        esm_kinesis_lane *kl = &sh->lanes[i];
        kl->shard = sh;
        kl->idx = i;
        if (pf == 1)
            snprintf(kl->key, sizeof kl->key, "%s", info->id);
        else
            snprintf(kl->key, sizeof kl->key, "%s/lane-%u", info->id, i);
        snprintf(kl->log_ctx, sizeof kl->log_ctx, "%s %s", s->env.log_ctx ? s->env.log_ctx : "",
                 kl->key);
        ev_timer_init(&kl->window, on_lane_timer, 0., 0.);
        kl->window.data = kl;
        esm_lane_env le = {.loop = s->env.loop,
                           .invoker = s->env.invoker,
                           .store = s->env.store,
                           .writer = s->env.writer,
                           .outbox = s->env.outbox,
                           .mapping = s->map,
                           .source_key = s->map->event_source_arn,
                           .lane_key = kl->key,
                           .log_ctx = kl->log_ctx,
                           .id_kind = ESM_RBIF_ID_STRING,
                           .event_envelope = esm_kinesis_event_size(0, 0),
                           .counters = s->counters,
                           .source = &lane_source,
                           .arg = kl};
        kl->lane = esm_lane_create(&le);
        if (!kl->lane) {
            esm_kinesis_shard_free(sh);
            return NULL;
        }
    }
    return sh;
}

void esm_kinesis_shard_settle(esm_kinesis_shard *sh)
{
    for (unsigned i = 0; i < sh->n_lanes; i++) {
        esm_lane *lane = sh->lanes[i].lane;
        if (lane && esm_lane_busy(lane) && !esm_lane_finishing(lane)) esm_lane_abandon(lane);
    }
}

void esm_kinesis_shard_stop(esm_kinesis_shard *sh)
{
    struct ev_loop *loop = sh->src->env.loop;
    ev_timer_stop(loop, &sh->timer);
    if (sh->call) esm_http_cancel(sh->call);
    sh->call = NULL;
    for (unsigned i = 0; i < sh->n_lanes; i++) {
        esm_kinesis_lane *kl = &sh->lanes[i];
        ev_timer_stop(loop, &kl->window);
        /* Queued records stay in the order list unresolved (freed with the shard). */
        kl->queue.len = kl->queue.head = 0;
        kl->queue_bytes = 0;
    }
    esm_kinesis_shard_settle(sh);
}

void esm_kinesis_shard_abandon(esm_kinesis_shard *sh)
{
    for (unsigned i = 0; i < sh->n_lanes; i++)
        if (sh->lanes[i].lane) esm_lane_abandon(sh->lanes[i].lane);
}

bool esm_kinesis_shard_idle(const esm_kinesis_shard *sh)
{
    if (sh->call) return false;
    for (unsigned i = 0; i < sh->n_lanes; i++)
        if (sh->lanes[i].in_batch || (sh->lanes[i].lane && esm_lane_busy(sh->lanes[i].lane)))
            return false;
    return true;
}

void esm_kinesis_shard_free(esm_kinesis_shard *sh)
{
    if (!sh) return;
    struct ev_loop *loop = sh->src->env.loop;
    ev_timer_stop(loop, &sh->timer);
    if (sh->call) esm_http_cancel(sh->call);
    for (unsigned i = 0; sh->lanes && i < sh->n_lanes; i++) {
        esm_kinesis_lane *kl = &sh->lanes[i];
        ev_timer_stop(loop, &kl->window);
        esm_lane_destroy(kl->lane); /* abandons a batch in flight without calling back */
        for (size_t k = 0; k < kl->n_batch; k++)
            if (!kl->batch[k]->in_order) esm_kinesis_record_free(kl->batch[k]);
        free(kl->batch);
        free(kl->precs);
        esm_kinesis_deque_free(&kl->queue);
    }
    /* Every record not yet passed by the watermark is here, queued ones included. */
    for (esm_kinesis_record *r = esm_kinesis_deque_pop(&sh->order); r;
         r = esm_kinesis_deque_pop(&sh->order))
        esm_kinesis_record_free(r);
    esm_kinesis_deque_free(&sh->order);
    free(sh->lanes);
    free(sh->iterator);
    free(sh->info.id);
    free(sh->info.parent);
    free(sh->info.adjacent_parent);
    free(sh->info.starting_seq);
    free(sh->info.ending_seq);
    free(sh);
}

/* ---- status ---------------------------------------------------------------------------------- */

static void put_iso(esm_buf *out, int64_t ms)
{
    if (ms <= 0) {
        esm_buf_puts(out, "null");
        return;
    }
    char iso[25];
    esm_iso8601_ms(ms, iso);
    esm_buf_json_cstr(out, iso);
}

int64_t esm_kinesis_shard_iterator_age_ms(const esm_kinesis_shard *sh, int64_t now)
{
    int64_t age = sh->millis_behind > 0 ? sh->millis_behind : 0;
    const esm_kinesis_record *oldest = esm_kinesis_deque_at(&sh->order, 0);
    if (oldest && now - oldest->arrival_ms > age) age = now - oldest->arrival_ms;
    return age;
}

void esm_kinesis_shard_status(esm_kinesis_shard *sh, esm_buf *out)
{
    int64_t now = esm_now_ms();
    int64_t age = esm_kinesis_shard_iterator_age_ms(sh, now);
    esm_buf_puts(out, "{\"ShardId\":");
    esm_buf_json_cstr(out, sh->info.id);
    esm_buf_puts(out, ",\"State\":");
    esm_buf_json_cstr(out, esm_kinesis_shard_state_name(sh->state));
    esm_buf_puts(out, ",\"ParentShardId\":");
    esm_buf_json_cstr(out, sh->info.parent);
    esm_buf_puts(out, ",\"AdjacentParentShardId\":");
    esm_buf_json_cstr(out, sh->info.adjacent_parent);
    esm_buf_puts(out, ",\"Closed\":");
    esm_buf_puts(out, sh->info.ending_seq ? "true" : "false");
    esm_buf_puts(out, ",\"Checkpoint\":");
    esm_buf_json_cstr(out, sh->checkpoint[0] ? sh->checkpoint : NULL);
    esm_buf_puts(out, ",\"ReadPosition\":");
    esm_buf_json_cstr(out, sh->fetch_pos[0] ? sh->fetch_pos : NULL);
    esm_buf_printf(out, ",\"IteratorAgeMs\":%lld,\"MillisBehindLatest\":", (long long)age);
    if (sh->millis_behind >= 0)
        esm_buf_printf(out, "%lld", (long long)sh->millis_behind);
    else
        esm_buf_puts(out, "null");
    esm_buf_puts(out, ",\"LastRecordArrival\":");
    put_iso(out, sh->last_arrival_ms);
    esm_buf_printf(out, ",\"Unresolved\":%zu,\"Lanes\":[", sh->order.len);
    for (unsigned i = 0; i < sh->n_lanes; i++) {
        esm_kinesis_lane *kl = &sh->lanes[i];
        if (i) esm_buf_putc(out, ',');
        esm_buf_puts(out, "{\"Lane\":");
        esm_buf_json_cstr(out, kl->key);
        esm_buf_printf(out, ",\"Queued\":%zu,\"Batch\":", kl->queue.len);
        esm_lane_status(kl->lane, out);
        esm_buf_putc(out, '}');
    }
    esm_buf_puts(out, "],\"TrimmedData\":");
    esm_kinesis_trim_status(sh, out);
    esm_buf_puts(out, ",\"LastError\":");
    esm_buf_json_cstr(out, sh->last_error[0] ? sh->last_error : NULL);
    esm_buf_putc(out, '}');
}
