#include "lane/esm_lane.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_writer.h"
#include "common/esm_log.h"
#include "common/esm_time.h"
#include "destinations/esm_outbox.h"
#include "kafka/esm_kafka_client.h"

#define COUNT(lane, field, n)                                                                      \
    do {                                                                                           \
        if ((lane)->env.counters.field) *(lane)->env.counters.field += (n);                        \
    } while (0)

typedef enum { LANE_IDLE, LANE_WAITING, LANE_INVOKING, LANE_PERSISTING } lane_phase;

/* Checkpoint writes that may trail behind the batches of a lane (bounds what a crash replays). */
#define LANE_MAX_TRAILING 4

typedef struct {
    esm_store_write *job;
    size_t acked;
    char position[ESM_POSITION_MAX];
} trailing_write;

/* What the last invocation that ran said: the responseContext of failure records. */
typedef struct {
    char request_id[64];
    char executed_version[64];
    char function_error[32];
    long status;
    bool partial;
} last_response;

struct esm_lane {
    esm_lane_env env;
    lane_phase phase;
    const esm_policy_record *recs;
    size_t n;
    esm_policy_state st;
    esm_policy_state stored; /* the retry state as the store has it (no row = fresh) */
    esm_policy_config cfg;
    esm_policy_decision decision; /* the decision being made durable */
    esm_invocation *call;
    esm_buf event;
    ev_timer timer; /* invoke delay, or the retry of a failed store write */
    unsigned store_failures;
    esm_store_write *write; /* the step the writer thread is making durable, or NULL */
    size_t pending_acked, pending_discarded, pending_records; /* what that step resolves */
    /* Trailing checkpoints (sources with a durable() callback): a batch whose records all
     * succeeded is finished at once and its checkpoint made durable behind it, in order, while
     * the next batch runs; the source hears of it through durable(). */
    trailing_write trailing[LANE_MAX_TRAILING];
    size_t n_trailing;
    bool trail_broken; /* a trailing write failed: wait for writes until one succeeds */
    bool ack_deferred; /* the decision being applied acknowledges through durable() */
    /* Whether the store holds a batch-state row for this lane: -1 unknown, 0 no, 1 yes. Known
     * from the lane's own writes, so starting a batch reads the store (and waits for its mutex,
     * which the writer thread holds through an fsync) only when a retry state may exist. */
    int batch_row;
    last_response last;
    int64_t blocked_since_ms;
    char last_result[192];
};

static void decide_and_apply(esm_lane *lane, const esm_policy_outcome *out);
static void apply_decision(esm_lane *lane);

esm_lane *esm_lane_create(const esm_lane_env *env)
{
    esm_lane *lane = calloc(1, sizeof *lane);
    if (!lane) return NULL;
    lane->env = *env;
    lane->batch_row = -1;
    const esm_mapping_config *m = env->mapping;
    lane->cfg.max_retry_attempts = m->maximum_retry_attempts;
    lane->cfg.max_record_age_seconds = m->maximum_record_age_seconds;
    lane->cfg.bisect = m->bisect_on_function_error;
    lane->cfg.rbif = m->report_batch_item_failures;
    lane->cfg.backoff_base_ms = m->retry_backoff_base_ms > 0 ? m->retry_backoff_base_ms : 1000;
    lane->cfg.backoff_max_ms = m->retry_backoff_max_ms > 0 ? m->retry_backoff_max_ms : 60000;
    lane->cfg.max_payload_bytes = ESM_INVOKE_MAX_PAYLOAD;
    lane->cfg.event_envelope = env->event_envelope;
    esm_policy_decision_init(&lane->decision);
    esm_buf_init(&lane->event);
    ev_timer_init(&lane->timer, NULL, 0., 0.);
    lane->timer.data = lane;
    snprintf(lane->last_result, sizeof lane->last_result, "No records processed");
    return lane;
}

static void finish(esm_lane *lane, bool abandoned)
{
    ev_timer_stop(lane->env.loop, &lane->timer);
    lane->phase = LANE_IDLE;
    lane->recs = NULL;
    lane->n = 0;
    lane->blocked_since_ms = 0;
    lane->store_failures = 0;
    if (lane->env.source->done) lane->env.source->done(lane->env.arg, abandoned);
}

/* Stops waiting for the writer: the step is carried out anyway (it is a decision already
 * taken); returns its result. */
static int forget_write(esm_lane *lane)
{
    if (!lane->write) return -1;
    int rc = esm_store_write_forget(lane->env.writer, lane->write, NULL);
    lane->write = NULL;
    return rc;
}

/* Waits for the trailing writes (the loop blocks: only at abandon / destroy); with tell, the
 * source hears which positions are durable. */
static void settle_trailing(esm_lane *lane, bool tell)
{
    for (size_t i = 0; i < lane->n_trailing; i++) {
        trailing_write *t = &lane->trailing[i];
        int rc = esm_store_write_forget(lane->env.writer, t->job, NULL);
        if (rc == 0) {
            COUNT(lane, committed, t->acked);
        } else {
            COUNT(lane, checkpoint_write_failures, 1);
            lane->trail_broken = true;
            lane->batch_row = -1;
        }
        if (tell && rc == 0) lane->env.source->durable(lane->env.arg, t->position);
    }
    lane->n_trailing = 0;
}

void esm_lane_abandon(esm_lane *lane)
{
    settle_trailing(lane, true);
    if (lane->phase == LANE_IDLE) return;
    if (lane->call) esm_invoker_cancel(lane->call);
    lane->call = NULL;
    /* A durable step still tells the source (e.g. Kafka commits it): fewer duplicates. */
    if (lane->write && forget_write(lane) == 0 && lane->pending_acked + lane->pending_discarded &&
        lane->env.source->acknowledged)
        lane->env.source->acknowledged(lane->env.arg, lane->st.lo);
    finish(lane, true);
}

void esm_lane_destroy(esm_lane *lane)
{
    if (!lane) return;
    if (lane->call) esm_invoker_cancel(lane->call);
    forget_write(lane);
    settle_trailing(lane, false);
    ev_timer_stop(lane->env.loop, &lane->timer);
    esm_policy_decision_free(&lane->decision);
    esm_buf_free(&lane->event);
    free(lane);
}

bool esm_lane_busy(const esm_lane *lane)
{
    return lane->phase != LANE_IDLE || lane->n_trailing > 0;
}

bool esm_lane_can_start(const esm_lane *lane)
{
    return lane->phase == LANE_IDLE;
}

bool esm_lane_finishing(const esm_lane *lane)
{
    return lane->phase == LANE_INVOKING || lane->write != NULL || lane->n_trailing > 0;
}

int64_t esm_lane_blocked_since_ms(const esm_lane *lane)
{
    return lane->blocked_since_ms;
}

/* Resumes a persisted retry of this batch (same first record): sets lane->st and returns how
 * many records the batch takes (up to the persisted last one); otherwise a fresh state. */
static size_t resume_persisted(esm_lane *lane, const esm_policy_record *recs, size_t n)
{
    size_t take = n;
    esm_policy_state_init(&lane->st, n);
    if (lane->batch_row == 0) return take;
    esm_store_batch_row row = {0};
    esm_err err;
    esm_err_clear(&err);
    int rc = esm_store_batch_get(lane->env.store, lane->env.mapping->uuid, lane->env.source_key,
                                 lane->env.lane_key, &row, &err);
    lane->batch_row = rc == 0 ? 1 : rc == 1 ? 0 : -1;
    if (rc == 0 && recs[0].id && row.first_id && strcmp(row.first_id, recs[0].id) == 0) {
        size_t last = n;
        for (size_t i = 0; i < n; i++)
            if (recs[i].id && row.last_id && strcmp(recs[i].id, row.last_id) == 0) last = i;
        esm_policy_state st;
        if (last < n && esm_policy_state_parse(&st, row.state) == 0 && st.n == last + 1) {
            take = last + 1;
            lane->st = st;
            ESM_INFO(lane->env.log_ctx,
                     "resuming the retry of %zu records from %s (attempts %u, resolved %zu)", take,
                     row.first_id, st.attempts, st.lo);
        } else {
            ESM_WARN(lane->env.log_ctx,
                     "persisted retry state for %s..%s does not fit the records read; starting "
                     "the batch afresh",
                     row.first_id, row.last_id ? row.last_id : "?");
        }
    } else if (rc < 0) {
        ESM_ERROR(lane->env.log_ctx, "cannot read the retry state: %s", err.message);
    }
    esm_store_batch_row_clear(&row);
    return take;
}

long esm_lane_start(esm_lane *lane, const esm_policy_record *records, size_t n)
{
    if (lane->phase != LANE_IDLE) return -1;
    if (n == 0) return 0;
    lane->recs = records;
    size_t take = resume_persisted(lane, records, n);
    lane->n = take;
    lane->stored = lane->st;
    lane->phase = LANE_WAITING;
    esm_policy_outcome none = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    decide_and_apply(lane, &none);
    return (long)take;
}

/* ---- failure records ---------------------------------------------------------------------- */

/* kafka://topic (the source cluster) is stored as kafka://host:port,.../topic so the outbox
 * drainer needs the mapping only for its security settings (it recognises the source's
 * bootstrap list: esm_kafka_dest_security). */
static void destination_for_store(const esm_mapping_config *m, esm_buf *out)
{
    const char *d = m->on_failure_destination;
    if (strncmp(d, "kafka://", 8) == 0 && !strchr(d + 8, '/') && m->n_bootstrap_servers > 0) {
        char *bs = esm_kafka_bootstrap_join(m);
        if (!bs)
            out->failed = true;
        else
            esm_buf_printf(out, "kafka://%s/%s", bs, d + 8);
        free(bs);
    } else {
        esm_buf_puts(out, d);
    }
}

static bool is_kafka_destination(const char *d)
{
    return d && strncmp(d, "kafka://", 8) == 0;
}

/* Renders the failure record of records [lo, hi) into rec. */
static int render_failure(esm_lane *lane, size_t lo, size_t hi, const esm_policy_step *step,
                          esm_buf *rec)
{
    const esm_mapping_config *m = lane->env.mapping;
    const char *dest = m->on_failure_destination;
    char generated[37];
    esm_failure_record fr;
    memset(&fr, 0, sizeof fr);
    if (lane->last.request_id[0]) {
        fr.request_id = lane->last.request_id;
    } else {
        esm_uuid4(generated);
        fr.request_id = generated;
    }
    fr.function_arn = m->function->arn;
    fr.condition = step->condition;
    fr.approximate_invoke_count = step->invoke_count;
    fr.status_code = (int)lane->last.status;
    fr.executed_version = lane->last.executed_version[0] ? lane->last.executed_version : NULL;
    fr.function_error =
        lane->last.partial || !lane->last.function_error[0] ? NULL : lane->last.function_error;
    fr.timestamp_ms = esm_now_ms();
    fr.batch_size = hi - lo;
    lane->env.source->describe_failure(lane->env.arg, lo, hi, dest, &fr);
    esm_buf payload;
    esm_buf_init(&payload);
    if (m->include_records_in_failure_record || is_kafka_destination(dest)) {
        lane->env.source->render_event(lane->env.arg, lo, hi, &payload);
        fr.payload_json = payload.data;
        fr.payload_len = payload.len;
    }
    int rc = payload.failed ? -1 : esm_failure_record_render(&fr, rec);
    esm_buf_free(&payload);
    return rc == 0 && !rec->failed ? 0 : -1;
}

typedef struct {
    esm_outbox_item *items;
    esm_buf *bufs;
    size_t n, cap;
    esm_buf dest;
} outbox_batch;

static void outbox_batch_free(outbox_batch *ob)
{
    for (size_t i = 0; i < ob->n; i++)
        esm_buf_free(&ob->bufs[i]);
    free(ob->items);
    free(ob->bufs);
    esm_buf_free(&ob->dest);
}

static int outbox_add(esm_lane *lane, outbox_batch *ob, size_t lo, size_t hi,
                      const esm_policy_step *step)
{
    if (ob->n == ob->cap) {
        size_t cap = ob->cap ? ob->cap * 2 : 4;
        esm_outbox_item *items = realloc(ob->items, cap * sizeof *items);
        if (!items) return -1;
        ob->items = items;
        esm_buf *bufs = realloc(ob->bufs, cap * sizeof *bufs);
        if (!bufs) return -1;
        ob->bufs = bufs;
        ob->cap = cap;
    }
    esm_buf *rec = &ob->bufs[ob->n];
    esm_buf_init(rec);
    if (render_failure(lane, lo, hi, step, rec) != 0) {
        esm_buf_free(rec);
        return -1;
    }
    esm_outbox_item *it = &ob->items[ob->n++];
    memset(it, 0, sizeof *it);
    it->destination = esm_buf_cstr(&ob->dest);
    it->payload = rec->data;
    it->payload_len = rec->len;
    if (is_kafka_destination(lane->env.mapping->on_failure_destination) &&
        lane->env.source->record_key)
        it->key = lane->env.source->record_key(lane->env.arg, lo, &it->key_len);
    return 0;
}

/* One failure record per discarded range; kafka:// destinations get one per record (docs/design.md
 * "kafka:// destination"). */
static int build_outbox(esm_lane *lane, outbox_batch *ob)
{
    const esm_mapping_config *m = lane->env.mapping;
    memset(ob, 0, sizeof *ob);
    esm_buf_init(&ob->dest);
    if (!m->on_failure_destination) return 0;
    destination_for_store(m, &ob->dest);
    bool per_record = is_kafka_destination(m->on_failure_destination);
    for (size_t i = 0; i < lane->decision.n; i++) {
        const esm_policy_step *s = &lane->decision.steps[i];
        if (s->kind != ESM_STEP_DISCARD) continue;
        if (per_record) {
            for (size_t r = s->lo; r < s->hi; r++)
                if (outbox_add(lane, ob, r, r + 1, s) != 0) return -1;
        } else if (outbox_add(lane, ob, s->lo, s->hi, s) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- making a decision durable ------------------------------------------------------------- */

static void on_store_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    apply_decision(w->data);
}

static void log_discards(esm_lane *lane)
{
    for (size_t i = 0; i < lane->decision.n; i++) {
        const esm_policy_step *s = &lane->decision.steps[i];
        if (s->kind != ESM_STEP_DISCARD) continue;
        ESM_WARN(lane->env.log_ctx, "discarding %zu records %s..%s: %s after %u invocations%s",
                 s->hi - s->lo, lane->recs[s->lo].id ? lane->recs[s->lo].id : "?",
                 lane->recs[s->hi - 1].id ? lane->recs[s->hi - 1].id : "?",
                 esm_condition_name(s->condition), s->invoke_count,
                 lane->env.mapping->on_failure_destination ? "; failure record queued"
                                                           : " (no OnFailure destination)");
    }
}

static bool same_state(const esm_policy_state *a, const esm_policy_state *b)
{
    if (a->n != b->n || a->lo != b->lo || a->depth != b->depth || a->attempts != b->attempts ||
        a->invokes != b->invokes || a->backoffs != b->backoffs)
        return false;
    return memcmp(a->ends, b->ends, a->depth * sizeof a->ends[0]) == 0;
}

static void persisted(esm_lane *lane);
static int persist_failed(esm_lane *lane, const esm_err *e);
static void on_written(int rc, const esm_err *err, void *arg);

static void on_trailing_written(int rc, const esm_err *err, void *arg)
{
    esm_lane *lane = arg;
    if (lane->n_trailing == 0) return; /* cannot happen: results arrive in order */
    trailing_write t = lane->trailing[0];
    memmove(lane->trailing, lane->trailing + 1, --lane->n_trailing * sizeof lane->trailing[0]);
    if (rc != 0) {
        /* Nothing acknowledged for it; the next batch waits for its own write (and retries),
         * whose position covers this one. */
        COUNT(lane, checkpoint_write_failures, 1);
        lane->trail_broken = true;
        lane->batch_row = -1; /* an older retry state may still be there */
        ESM_ERROR(lane->env.log_ctx,
                  "state store write of checkpoint %s failed (%s); the next "
                  "batch waits for its checkpoint",
                  t.position, err->message);
        lane->env.source->durable(lane->env.arg, NULL);
        return;
    }
    COUNT(lane, committed, t.acked);
    lane->env.source->durable(lane->env.arg, t.position);
}

/* Queues a success-only checkpoint to trail behind the lane; false = wait for it instead. */
static bool trail(esm_lane *lane, const char *position, size_t acked)
{
    if (!lane->env.source->durable || lane->trail_broken || lane->store_failures ||
        lane->n_trailing == LANE_MAX_TRAILING ||
        strlen(position) >= sizeof lane->trailing[0].position)
        return false;
    esm_store_step step = {.position = position};
    trailing_write *t = &lane->trailing[lane->n_trailing];
    t->job =
        esm_store_writer_advance(lane->env.writer, lane->env.mapping->uuid, lane->env.source_key,
                                 lane->env.lane_key, &step, on_trailing_written, lane);
    if (!t->job) return false;
    t->acked = acked;
    snprintf(t->position, sizeof t->position, "%s", position);
    lane->n_trailing++;
    lane->ack_deferred = true;
    return true;
}

/* Writes the decision's effects in one transaction: the new checkpoint, the retry state and
 * the failure records. Returns 0 (durable), 1 (queued to the writer: on_written goes on), or
 * -1 after scheduling a retry of the write. */
static int persist(esm_lane *lane, size_t *acked, size_t *discarded, size_t *records_out)
{
    *acked = *discarded = *records_out = 0;
    for (size_t i = 0; i < lane->decision.n; i++) {
        const esm_policy_step *s = &lane->decision.steps[i];
        if (s->kind == ESM_STEP_ACK) *acked += s->hi - s->lo;
        if (s->kind == ESM_STEP_DISCARD) *discarded += s->hi - s->lo;
    }
    char state[ESM_POLICY_STATE_TEXT_MAX];
    bool done = esm_policy_state_done(&lane->st);
    esm_store_batch batch = {
        .first_id = lane->recs[0].id, .last_id = lane->recs[lane->n - 1].id, .state = state};
    if (!done && esm_policy_state_format(&lane->st, state, sizeof state) < 0) done = true;
    esm_err err;
    esm_err_clear(&err);
    int rc;
    outbox_batch ob;
    if (*acked + *discarded == 0 && !done && same_state(&lane->st, &lane->stored)) {
        /* Nothing to remember (a fresh batch, or a delayed invoke): no write, no fsync. */
        return 0;
    }
    if (*acked + *discarded == 0) {
        /* Nothing acknowledged: only the retry state changes (attempts, bisect position).
         * Written here, so the trailing writes of this lane (which clear the batch state) must
         * land first. */
        settle_trailing(lane, true);
        rc = done ? esm_store_batch_clear(lane->env.store, lane->env.mapping->uuid,
                                          lane->env.source_key, lane->env.lane_key, &err)
                  : esm_store_batch_put(lane->env.store, lane->env.mapping->uuid,
                                        lane->env.source_key, lane->env.lane_key, &batch, &err);
        memset(&ob, 0, sizeof ob);
    } else if (build_outbox(lane, &ob) != 0) {
        esm_err_set(&err, ESM_ERR_NOMEM, true, "cannot build the failure records");
        rc = -1;
    } else {
        esm_store_step step = {.position =
                                   lane->env.source->checkpoint_after(lane->env.arg, lane->st.lo),
                               .batch = done ? NULL : &batch,
                               .items = ob.items,
                               .n_items = ob.n};
        *records_out = ob.n;
        if (lane->env.writer && done && *discarded == 0 && ob.n == 0 && step.position &&
            trail(lane, step.position, *acked)) {
            outbox_batch_free(&ob);
            persisted(lane);
            return 0;
        }
        if (lane->env.writer) {
            /* On the writer thread (group commit); the decision goes on in on_written. */
            lane->write = esm_store_writer_advance(lane->env.writer, lane->env.mapping->uuid,
                                                   lane->env.source_key, lane->env.lane_key, &step,
                                                   on_written, lane);
            outbox_batch_free(&ob);
            if (lane->write) {
                lane->pending_acked = *acked;
                lane->pending_discarded = *discarded;
                lane->pending_records = *records_out;
                lane->phase = LANE_PERSISTING;
                return 1;
            }
            esm_err_set(&err, ESM_ERR_NOMEM, true, "cannot queue the checkpoint write");
            return persist_failed(lane, &err);
        }
        rc = esm_store_advance(lane->env.store, lane->env.mapping->uuid, lane->env.source_key,
                               lane->env.lane_key, &step, &err);
    }
    outbox_batch_free(&ob);
    if (rc == 0) {
        persisted(lane);
        return 0;
    }
    return persist_failed(lane, &err);
}

static void persisted(esm_lane *lane)
{
    lane->stored = lane->st;
    lane->batch_row = esm_policy_state_done(&lane->st) ? 0 : 1;
    if (!lane->ack_deferred) lane->trail_broken = false; /* a waited-for write worked */
    if (lane->store_failures)
        ESM_INFO(lane->env.log_ctx, "state store writes work again; acknowledging");
    lane->store_failures = 0;
}

/* Schedules the write again (the decision stays as it is: nothing was acknowledged). */
static int persist_failed(esm_lane *lane, const esm_err *err)
{
    lane->store_failures++;
    COUNT(lane, checkpoint_write_failures, 1);
    /* Nothing moves until the write lands: a full disk that lasts makes the lane stuck
     * (/readyz, esmd_mapping_stuck), as a failing batch does. */
    if (!lane->blocked_since_ms) lane->blocked_since_ms = esm_now_ms();
    double delay = lane->store_failures < 6 ? (double)(1u << lane->store_failures) / 4.0 : 10.0;
    ESM_ERROR(lane->env.log_ctx,
              "state store write failed (%s); nothing is acknowledged, retrying in %.1f s",
              err->message, delay);
    snprintf(lane->last_result, sizeof lane->last_result, "PROBLEM: state store: %.150s",
             err->message);
    lane->phase = LANE_PERSISTING;
    ev_set_cb(&lane->timer, on_store_retry);
    ev_timer_set(&lane->timer, delay, 0.);
    ev_timer_start(lane->env.loop, &lane->timer);
    return -1;
}

static void invoke_now(esm_lane *lane, size_t lo, size_t hi);

static void on_invoke_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_lane *lane = w->data;
    /* Re-decide at the real invoke time: NONE changes no counters and re-checks record age. */
    esm_policy_outcome none = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    decide_and_apply(lane, &none);
}

static void decision_durable(esm_lane *lane, size_t acked, size_t discarded, size_t records);

static void apply_decision(esm_lane *lane)
{
    size_t acked, discarded, records;
    if (persist(lane, &acked, &discarded, &records) != 0) return;
    decision_durable(lane, acked, discarded, records);
}

static void on_written(int rc, const esm_err *err, void *arg)
{
    esm_lane *lane = arg;
    lane->write = NULL;
    if (rc != 0) {
        persist_failed(lane, err);
        return;
    }
    persisted(lane);
    decision_durable(lane, lane->pending_acked, lane->pending_discarded, lane->pending_records);
}

/* The decision is durable: count it, tell the source, and go on with the batch. */
static void decision_durable(esm_lane *lane, size_t acked, size_t discarded, size_t records)
{
    bool deferred = lane->ack_deferred; /* trailing: counted and acknowledged in durable() */
    lane->ack_deferred = false;
    if (acked && !deferred) COUNT(lane, committed, acked);
    if (discarded) {
        COUNT(lane, dropped, discarded);
        log_discards(lane);
    }
    if (records) {
        COUNT(lane, on_failure_queued, records);
        if (lane->env.outbox) esm_outbox_drainer_kick(lane->env.outbox);
    }
    if ((acked || discarded) && !deferred && lane->env.source->acknowledged)
        lane->env.source->acknowledged(lane->env.arg, lane->st.lo);
    const esm_policy_step *last = &lane->decision.steps[lane->decision.n - 1];
    if (last->kind == ESM_STEP_DONE) {
        finish(lane, false);
        return;
    }
    if (last->delay_ms > 0) {
        lane->phase = LANE_WAITING;
        ev_set_cb(&lane->timer, on_invoke_timer);
        ev_timer_set(&lane->timer, (double)last->delay_ms / 1000.0, 0.);
        ev_timer_start(lane->env.loop, &lane->timer);
        return;
    }
    invoke_now(lane, last->lo, last->hi);
}

static void decide_and_apply(esm_lane *lane, const esm_policy_outcome *out)
{
    size_t depth_before = lane->st.depth; /* a bisect split pushes one sub-batch end */
    if (esm_policy_decide(lane->recs, lane->n, &lane->st, out, &lane->cfg, esm_now_ms(),
                          (uint32_t)random(), &lane->decision) != 0 ||
        lane->decision.n == 0) {
        ESM_ERROR(lane->env.log_ctx, "the batch policy refused its input; abandoning the batch "
                                     "unacknowledged");
        finish(lane, true);
        return;
    }
    if (lane->env.counters.invokes && lane->st.depth > depth_before)
        lane->env.counters.invokes->bisect_splits += lane->st.depth - depth_before;
    apply_decision(lane);
}

/* ---- invoking -------------------------------------------------------------------------------- */

static void remember_response(esm_lane *lane, const esm_invoke_result *r, bool partial)
{
    snprintf(lane->last.request_id, sizeof lane->last.request_id, "%s", r->request_id);
    snprintf(lane->last.executed_version, sizeof lane->last.executed_version, "%s",
             r->executed_version);
    snprintf(lane->last.function_error, sizeof lane->last.function_error, "%s", r->function_error);
    lane->last.status = r->status;
    lane->last.partial = partial;
}

/* A misconfigured endpoint (docs/design.md "Invocation outcomes") is retried like an
 * invocation error; it is logged once a minute per mapping, not once per retry. */
static void note_endpoint(esm_lane *lane, const esm_invoke_result *r)
{
    if (!esm_invoke_result_judges_settings(r)) return;
    const char *reason = r->misconfigured ? r->reason : NULL;
    esm_endpoint_log what = ESM_ENDPOINT_LOG_MISCONFIGURED;
    if (lane->env.counters.invokes)
        what = esm_invoke_stats_endpoint(lane->env.counters.invokes, reason, esm_now_ms());
    else if (!reason)
        return;
    if (what == ESM_ENDPOINT_LOG_MISCONFIGURED)
        ESM_WARN(lane->env.log_ctx,
                 "%s; records are kept and retried with backoff (not counted as attempts) until "
                 "the function settings are fixed (reload)",
                 r->reason);
    else if (what == ESM_ENDPOINT_LOG_RECOVERED)
        ESM_INFO(lane->env.log_ctx,
                 "the function endpoint answers again (no longer misconfigured)");
}

static void on_invoked(const esm_invoke_result *r, void *arg)
{
    esm_lane *lane = arg;
    lane->call = NULL;
    size_t lo = lane->st.lo, hi = lane->st.ends[lane->st.depth - 1];
    esm_policy_outcome out = {.kind = ESM_OUTCOME_SUCCESS, .retry_after_ms = r->retry_after_ms};
    size_t *failed = NULL;
    switch (r->cls) {
    case ESM_INVOKE_THROTTLE:
        out.kind = ESM_OUTCOME_THROTTLE;
        COUNT(lane, throttled, 1);
        break;
    case ESM_INVOKE_ERROR:
        out.kind = ESM_OUTCOME_INVOKE_ERROR;
        break;
    case ESM_INVOKE_FUNCTION_ERROR:
        out.kind = ESM_OUTCOME_FUNCTION_ERROR;
        break;
    case ESM_INVOKE_SUCCESS:
        break;
    }
    char why[200] = "";
    if (r->cls == ESM_INVOKE_SUCCESS && lane->cfg.rbif) {
        const char **ids = malloc((hi - lo) * sizeof *ids);
        failed = malloc((hi - lo) * sizeof *failed);
        size_t n_failed = 0;
        esm_rbif_status st = ESM_RBIF_INVALID;
        if (ids && failed) {
            for (size_t i = lo; i < hi; i++)
                ids[i - lo] = lane->recs[i].id;
            st = esm_rbif_parse(r->body, r->body_len, lane->env.id_kind, ids, hi - lo, failed,
                                &n_failed, why, sizeof why);
        } else {
            snprintf(why, sizeof why, "out of memory");
        }
        free(ids);
        if (st == ESM_RBIF_INVALID) {
            out.kind = ESM_OUTCOME_FUNCTION_ERROR;
        } else if (st == ESM_RBIF_PARTIAL) {
            for (size_t k = 0; k < n_failed; k++)
                failed[k] += lo;
            out.kind = ESM_OUTCOME_PARTIAL;
            out.failed = failed;
            out.n_failed = n_failed;
        }
    }
    if (r->cls != ESM_INVOKE_THROTTLE && r->cls != ESM_INVOKE_ERROR) {
        COUNT(lane, invocations, 1);
        remember_response(lane, r, out.kind == ESM_OUTCOME_PARTIAL);
    }
    switch (out.kind) {
    case ESM_OUTCOME_SUCCESS:
        snprintf(lane->last_result, sizeof lane->last_result, "OK");
        break;
    case ESM_OUTCOME_PARTIAL:
        COUNT(lane, failed_invoke, out.n_failed);
        snprintf(lane->last_result, sizeof lane->last_result,
                 "PROBLEM: function reported %zu of %zu records failed", out.n_failed, hi - lo);
        break;
    default:
        if (out.kind == ESM_OUTCOME_FUNCTION_ERROR) COUNT(lane, failed_invoke, hi - lo);
        if (why[0])
            snprintf(lane->last_result, sizeof lane->last_result,
                     "PROBLEM: invalid batchItemFailures response: %.140s", why);
        else
            snprintf(lane->last_result, sizeof lane->last_result, "PROBLEM: %.170s", r->reason);
        if (!r->misconfigured) /* that one is logged per mapping, rate-limited, below */
            ESM_INFO(lane->env.log_ctx, "invocation of records [%zu,%zu) failed: %s", lo, hi,
                     lane->last_result + 9);
    }
    note_endpoint(lane, r);
    if (lane->env.counters.invokes)
        esm_invoke_stats_record(lane->env.counters.invokes, hi - lo, r->latency_ms,
                                out.kind == ESM_OUTCOME_SUCCESS, esm_now_ms());
    if (out.kind != ESM_OUTCOME_SUCCESS && !lane->blocked_since_ms)
        lane->blocked_since_ms = esm_now_ms();
    decide_and_apply(lane, &out);
    free(failed);
}

static void invoke_now(esm_lane *lane, size_t lo, size_t hi)
{
    esm_buf_reset(&lane->event);
    lane->env.source->render_event(lane->env.arg, lo, hi, &lane->event);
    lane->phase = LANE_INVOKING;
    if (!lane->event.failed && !esm_invoke_payload_fits(lane->event.len)) {
        /* The policy only invokes units whose measured event fits, so the source's sizes are
         * wrong. The invoker would refuse it every time: split it, or discard a lone record
         * with MaximumPayloadSizeExceeded, instead of retrying it forever. */
        ESM_ERROR(lane->env.log_ctx,
                  "internal: the event of records [%zu,%zu) has %zu bytes, over the %zu byte "
                  "invoke limit although it was measured to fit; %s",
                  lo, hi, lane->event.len, ESM_INVOKE_MAX_PAYLOAD,
                  hi - lo > 1 ? "splitting it" : "discarding it as MaximumPayloadSizeExceeded");
        esm_policy_outcome too_large = {.kind = ESM_OUTCOME_TOO_LARGE, .retry_after_ms = -1};
        decide_and_apply(lane, &too_large);
        return;
    }
    if (!lane->event.failed) {
        COUNT(lane, invoked, hi - lo);
        lane->call = esm_invoker_invoke(lane->env.invoker, lane->event.data, lane->event.len,
                                        on_invoked, lane);
    }
    if (!lane->call) {
        /* Not started (out of memory): an invocation error to retry, never a loss. */
        esm_invoke_result r;
        memset(&r, 0, sizeof r);
        r.cls = ESM_INVOKE_ERROR;
        r.retry_after_ms = -1;
        snprintf(r.reason, sizeof r.reason, "could not start the invocation of %zu bytes",
                 lane->event.len);
        on_invoked(&r, lane);
    }
}

void esm_lane_status(const esm_lane *lane, esm_buf *out)
{
    static const char *const phases[] = {"Idle", "WaitingToInvoke", "Invoking",
                                         "WaitingForStateStore"};
    esm_buf_puts(out, "{\"Phase\":");
    esm_buf_json_cstr(out, phases[lane->phase]);
    esm_buf_printf(out,
                   ",\"Records\":%zu,\"Resolved\":%zu,\"Attempts\":%u,\"BlockedSince\":", lane->n,
                   lane->phase == LANE_IDLE ? 0 : lane->st.lo, lane->st.attempts);
    if (lane->blocked_since_ms) {
        char iso[25];
        esm_iso8601_ms(lane->blocked_since_ms, iso);
        esm_buf_json_cstr(out, iso);
    } else {
        esm_buf_puts(out, "null");
    }
    if (lane->phase != LANE_IDLE && lane->n > 0) {
        esm_buf_puts(out, ",\"BatchFirstId\":");
        esm_buf_json_cstr(out, lane->recs[0].id);
        esm_buf_puts(out, ",\"BatchLastId\":");
        esm_buf_json_cstr(out, lane->recs[lane->n - 1].id);
    }
    esm_buf_puts(out, ",\"LastProcessingResult\":");
    esm_buf_json_cstr(out, lane->last_result);
    esm_buf_putc(out, '}');
}
