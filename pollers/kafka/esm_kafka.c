/* The Kafka source (self-managed Kafka, docs/design.md "Kafka semantics"): one librdkafka consumer
 * in the mapping's consumer group, subscribed to the mapping's one topic. librdkafka's queue
 * io-event fd wakes the libev loop (no thread of our own, no busy polling; a 1 s tick keeps
 * max.poll.interval.ms satisfied while partitions are paused and re-evaluates pausing).
 * Each assigned partition is an ordered lane (pollers/kafka/esm_kafka_part.c): batches per
 * partition, one in flight, offsets stored only after the final outcome and committed soon
 * after (one commit for all partitions, at most every COMMIT_GAP_S).
 *
 * Rebalance: a revoked partition stops dispatching at once; a batch waiting for a retry is
 * abandoned (nothing committed); a batch whose invocation runs may finish within a grace
 * period, then what is final is committed and the partition is released (drain
 * first, fence second, never commit unfinished work). Lost partitions are abandoned at once. */
#include <ev.h>
#include <stdarg.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "pollers/kafka/esm_kafka_int.h"
#include "pollers/esm_source.h"

#define REVOKE_GRACE_S 10.0
#define TICK_S 1.0
/* Messages handled per wakeup: rendering them must not hold up invocations for long. */
#define SERVE_BUDGET 500
#define CLOSING_TICK_S 0.05
/* Stored offsets are committed at most this often (esm_kafka_part.c store_offset). */
#define COMMIT_GAP_S 0.1
/* Stalled fetching (esm_kafka_part_nudge): how long librdkafka's queue must stay empty before
 * a lagging partition counts as stalled (a fetch round trip on a LAN is far below this). */
#define NUDGE_S 0.05

typedef enum { K_INIT, K_RUNNING, K_STOPPING, K_CLOSING, K_STOPPED } k_state;

typedef struct {
    esm_kafka_glue glue; /* first: the rd_kafka_t's opaque (kafka/esm_kafka_client.h) */
    esm_source_env env;
    const esm_mapping_config *map;
    char *bootstrap;
    char *source_key;
    esm_kafka_shared sh;
    rd_kafka_t *rk;
    esm_kafka_wakeup wake; /* the consumer queue and its pipe to the loop */
    ev_timer tick, later, nudge, commit, stop_deadline, revoke_deadline, stopped_notify;
    ev_tstamp last_commit;
    k_state state;
    bool assigned_once, in_serve;
    size_t n_full; /* partitions above their high watermark (esm_kafka_shared.n_full) */
    /* librdkafka's queue bounds (queued.min.messages, queued.max.messages.kbytes), its longest
     * length seen since the last stall, and the mean size of what it held */
    size_t q_max_msgs, q_max_bytes, q_peak;
    uint64_t polled_msgs, polled_bytes;
    esm_kafka_part **parts; /* indexed by partition id */
    size_t n_parts;
    rd_kafka_topic_partition_list_t *revoking; /* a revoke waiting for lanes to finish */
    bool revoking_lost;
    esm_source_stopped_cb stopped_cb;
    void *stopped_arg;
    char last_error[256];
    const char *problem; /* esm_kafka_problem's words while one keeps the source from its cluster */
    int stats_none_up;   /* statistics in a row that showed no broker UP */
} kafka_source;

static void set_error(kafka_source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(kafka_source *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
}

/* An error that keeps the source from its cluster is logged once at error level, in AWS's
 * words with librdkafka's reason, and shown as LastProcessingResult until the cluster answers. */
static void note_problem(kafka_source *s, rd_kafka_resp_err_t err, const char *reason)
{
    const char *problem = esm_kafka_problem(err, reason);
    if (!problem || problem == s->problem) return;
    /* all brokers down follows every refused login: the cause stays the refusal (it ends
     * when a broker is UP again, so a later outage is reported) */
    if (problem == esm_kafka_no_connection && esm_kafka_problem_ends_when_connected(s->problem))
        return;
    s->problem = problem;
    ESM_ERROR(s->env.log_ctx, "PROBLEM: %s (%s: %s)", problem, rd_kafka_err2name(err), reason);
}

static void clear_problem(kafka_source *s, const char *why)
{
    if (!s->problem) return;
    ESM_INFO(s->env.log_ctx, "%s: the problem \"%s\" is over", why, s->problem);
    s->problem = NULL;
}

/* librdkafka's statistics, every statistics.interval.ms: a broker UP ends a connection, TLS
 * or SASL problem, even on an idle topic where no record and no assignment would tell; no
 * broker UP twice in a row is an outage (librdkafka's ALL_BROKERS_DOWN error is not raised
 * when the group coordinator's logical broker is counted as up, nor again after a stale UP). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)len;
    kafka_source *s = opaque;
    switch (esm_kafka_stats_brokers_of(json)) {
    case ESM_KAFKA_STATS_BROKER_UP:
        s->stats_none_up = 0;
        if (esm_kafka_problem_ends_when_connected(s->problem)) clear_problem(s, "a broker is up");
        break;
    case ESM_KAFKA_STATS_NONE_UP:
        if (++s->stats_none_up >= 2)
            note_problem(s, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
                         "no broker is up in librdkafka's statistics");
        break;
    case ESM_KAFKA_STATS_UNKNOWN:
        break;
    }
    return 0; /* librdkafka frees json */
}

static esm_kafka_part *part_of(kafka_source *s, int32_t id)
{
    return id >= 0 && (size_t)id < s->n_parts ? s->parts[id] : NULL;
}

static bool all_idle(kafka_source *s, const rd_kafka_topic_partition_list_t *only)
{
    for (size_t i = 0; i < s->n_parts; i++) {
        esm_kafka_part *p = s->parts[i];
        if (!p || esm_kafka_part_idle(p)) continue;
        if (!only) return false;
        for (int k = 0; k < only->cnt; k++)
            if (only->elems[k].partition == (int32_t)i) return false;
    }
    return true;
}

static void later(kafka_source *s)
{
    ev_timer_set(&s->later, 0., 0.);
    ev_timer_start(s->env.loop, &s->later);
}

static void on_part_changed(void *arg)
{
    later(arg); /* never act inside a lane callback */
}

/* ---- assignment --------------------------------------------------------------------------- */

static bool cooperative(kafka_source *s)
{
    const char *proto = rd_kafka_rebalance_protocol(s->rk);
    return proto && strcmp(proto, "COOPERATIVE") == 0;
}

static void list_names(const rd_kafka_topic_partition_list_t *l, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < l->cnt && used + 12 < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%" PRId32, i ? "," : "",
                                 l->elems[i].partition);
}

/* The group's committed offsets of parts, NULL when they cannot be read. The calls on
 * assignment (this one, offsetsForTimes, the watermarks) block the loop briefly, during a
 * rebalance only. */
static rd_kafka_topic_partition_list_t *committed_of(kafka_source *s,
                                                     const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t err = rd_kafka_committed(s->rk, c, 10000);
    if (!err) return c;
    ESM_WARN(s->env.log_ctx, "cannot read committed offsets (%s)%s", rd_kafka_err2str(err),
             s->map->starting_position == ESM_START_AT_TIMESTAMP
                 ? "; partitions without one start at the earliest record"
                 : "");
    rd_kafka_topic_partition_list_destroy(c);
    return NULL;
}

/* AT_TIMESTAMP: partitions with no committed offset (in c) start at the first record at or
 * after the timestamp (offsetsForTimes). */
static void resolve_timestamps(kafka_source *s, rd_kafka_topic_partition_list_t *parts,
                               const rd_kafka_topic_partition_list_t *c)
{
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(c->cnt);
    for (int i = 0; i < c->cnt; i++)
        if (c->elems[i].offset < 0)
            rd_kafka_topic_partition_list_add(t, c->elems[i].topic, c->elems[i].partition)->offset =
                s->map->starting_position_timestamp_ms;
    if (t->cnt > 0) {
        err = rd_kafka_offsets_for_times(s->rk, t, 10000);
        if (err) {
            ESM_WARN(s->env.log_ctx,
                     "offsets for AT_TIMESTAMP failed (%s); starting at the earliest "
                     "record",
                     rd_kafka_err2str(err));
        } else {
            for (int i = 0; i < t->cnt; i++) {
                rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_find(
                    parts, t->elems[i].topic, t->elems[i].partition);
                if (!e) continue;
                /* -1: no record at or after the timestamp: start at the end */
                e->offset = t->elems[i].offset >= 0 ? t->elems[i].offset : RD_KAFKA_OFFSET_END;
                ESM_INFO(s->env.log_ctx,
                         "partition %" PRId32 ": AT_TIMESTAMP starts at offset %" PRId64 "%s",
                         e->partition, t->elems[i].offset,
                         e->offset >= 0 ? "" : " (none yet: the end)");
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(t);
}

/* A stored position the partition's log cannot hold, or one the group confirmed and lost, may
 * belong to an old log (docs/operations.md "Kafka log re-created"): such a partition is
 * assigned at its log start, never past records it has not read. Without the watermarks the
 * log end is checked on the first record (esm_kafka_part.c behind_new_log). */
static void check_logs(kafka_source *s, rd_kafka_topic_partition_list_t *parts,
                       const rd_kafka_topic_partition_list_t *c)
{
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *e = &parts->elems[i];
        esm_kafka_part *p = part_of(s, e->partition);
        if (!p || strcmp(e->topic, s->map->topic) != 0) continue;
        const rd_kafka_topic_partition_t *ce =
            c ? rd_kafka_topic_partition_list_find(c, e->topic, e->partition) : NULL;
        int64_t committed = ce && ce->offset >= 0 ? ce->offset : -1;
        bool nothing_stored = committed < 0 && esm_kafka_part_floor(p) < 0;
        /* nothing stored: StartingPosition (auto.offset.reset is always earliest); with the
         * group's offsets unread, a LATEST mapping reads from the start rather than skip */
        bool latest = nothing_stored && c && s->map->starting_position == ESM_START_LATEST;
        if (nothing_stored && !latest) continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(s->rk, e->topic, e->partition, &lo, &hi, 5000);
        if (err) {
            ESM_DEBUG(s->env.log_ctx, "partition %" PRId32 ": watermarks unknown (%s)",
                      e->partition, rd_kafka_err2str(err));
            lo = hi = -1;
        }
        if (latest) {
            /* the end as of now, pinned: committed on assignment */
            e->offset = hi >= 0 ? hi : RD_KAFKA_OFFSET_END;
            if (hi >= 0) esm_kafka_part_pin_start(p, hi);
            continue;
        }
        int64_t resume_at = RD_KAFKA_OFFSET_INVALID;
        switch (esm_kafka_part_check_log(p, committed, c != NULL, lo, hi, &resume_at)) {
        case ESM_KAFKA_LOG_RESET_AT_START:
            e->offset = RD_KAFKA_OFFSET_BEGINNING;
            break;
        case ESM_KAFKA_LOG_AT_CHECKPOINT:
            e->offset = resume_at;
            break;
        case ESM_KAFKA_LOG_FITS:
        case ESM_KAFKA_LOG_RESET_AT_GROUP:
            break;
        }
    }
}

static bool ensure_slots(kafka_source *s, int32_t id)
{
    if ((size_t)id < s->n_parts) return true;
    size_t n = (size_t)id + 1;
    esm_kafka_part **p = realloc(s->parts, n * sizeof *p);
    if (!p) return false;
    memset(p + s->n_parts, 0, (n - s->n_parts) * sizeof *p);
    s->parts = p;
    s->n_parts = n;
    return true;
}

static void on_assign(kafka_source *s, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *committed = committed_of(s, parts);
    if (committed && s->map->starting_position == ESM_START_AT_TIMESTAMP)
        resolve_timestamps(s, parts, committed);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t id = parts->elems[i].partition;
        if (strcmp(parts->elems[i].topic, s->map->topic) != 0 || part_of(s, id)) continue;
        esm_kafka_part *p = ensure_slots(s, id) ? esm_kafka_part_create(&s->sh, id) : NULL;
        if (!p) {
            ESM_ERROR(s->env.log_ctx, "out of memory creating partition %" PRId32, id);
            continue;
        }
        s->parts[id] = p;
    }
    check_logs(s, parts, committed);
    if (committed) rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative(s))
        e = rd_kafka_incremental_assign(s->rk, parts);
    else
        err = rd_kafka_assign(s->rk, parts);
    if (e) {
        set_error(s, "assign failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (err) {
        set_error(s, "assign failed: %s", rd_kafka_err2str(err));
    } else {
        for (int i = 0; i < parts->cnt; i++) {
            esm_kafka_part *p = part_of(s, parts->elems[i].partition);
            if (p && strcmp(parts->elems[i].topic, s->map->topic) == 0) esm_kafka_part_assigned(p);
        }
    }
    /* librdkafka keeps a partition's pause across revoke and re-assign: start unpaused. */
    rd_kafka_resume_partitions(s->rk, parts);
    char names[512];
    list_names(parts, names, sizeof names);
    ESM_INFO(s->env.log_ctx, "assigned partitions [%s] of %s (group %s)", names, s->map->topic,
             esm_kafka_group_id(s->map));
    s->assigned_once = true;
    clear_problem(s, "assigned");
}

/* Releases revoked partitions: their lanes are idle (or abandoned); stored offsets are final. */
static void finish_revoke(kafka_source *s, rd_kafka_topic_partition_list_t *parts, bool lost)
{
    ev_timer_stop(s->env.loop, &s->revoke_deadline);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t id = parts->elems[i].partition;
        esm_kafka_part *p = part_of(s, id);
        if (!p || strcmp(parts->elems[i].topic, s->map->topic) != 0) continue;
        s->parts[id] = NULL;
        esm_kafka_part_destroy(p);
    }
    if (!lost) {
        /* What is final goes to the broker before the partitions move (auto-commit also
         * commits stored offsets on unassign). */
        rd_kafka_resp_err_t err = rd_kafka_commit(s->rk, NULL, 1);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            ESM_DEBUG(s->env.log_ctx, "commit on revoke: %s", rd_kafka_err2str(err));
    }
    char names[512];
    list_names(parts, names, sizeof names);
    if (cooperative(s)) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(s->rk, parts);
        if (e) {
            ESM_WARN(s->env.log_ctx, "unassign failed: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(s->rk, NULL);
    }
    ESM_INFO(s->env.log_ctx, "released partitions [%s]%s", names, lost ? " (lost)" : "");
}

static void on_revoke(kafka_source *s, rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(s->rk) != 0;
    for (int i = 0; i < parts->cnt; i++) {
        esm_kafka_part *p = part_of(s, parts->elems[i].partition);
        if (!p) continue;
        if (lost)
            esm_kafka_part_abandon(p);
        else
            esm_kafka_part_quiesce(p, true);
    }
    if (all_idle(s, parts)) {
        finish_revoke(s, parts, lost);
        return;
    }
    /* Let invocations that run finish (their results are committed), within a grace period;
     * librdkafka waits for the unassign before the group moves on. */
    ESM_INFO(s->env.log_ctx, "partitions revoked: waiting up to %.0f s for batches in flight",
             REVOKE_GRACE_S);
    if (s->revoking) rd_kafka_topic_partition_list_destroy(s->revoking);
    s->revoking = rd_kafka_topic_partition_list_copy(parts);
    s->revoking_lost = lost;
    ev_timer_set(&s->revoke_deadline, REVOKE_GRACE_S, 0.);
    ev_timer_start(s->env.loop, &s->revoke_deadline);
}

static void complete_pending_revoke(kafka_source *s, bool force)
{
    if (!s->revoking) return;
    if (!force && !all_idle(s, s->revoking)) return;
    if (force) {
        ESM_WARN(s->env.log_ctx,
                 "batches still in flight after %.0f s: abandoned unacknowledged "
                 "(the new owner reads them again)",
                 REVOKE_GRACE_S);
        for (int i = 0; i < s->revoking->cnt; i++) {
            esm_kafka_part *p = part_of(s, s->revoking->elems[i].partition);
            if (p) esm_kafka_part_abandon(p);
        }
    }
    rd_kafka_topic_partition_list_t *l = s->revoking;
    s->revoking = NULL;
    finish_revoke(s, l, s->revoking_lost);
    rd_kafka_topic_partition_list_destroy(l);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk;
    kafka_source *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(s, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(s, parts);
    } else {
        set_error(s, "rebalance failed: %s", rd_kafka_err2str(err));
        ESM_WARN(s->env.log_ctx, "rebalance error: %s; dropping the assignment",
                 rd_kafka_err2str(err));
        for (size_t i = 0; i < s->n_parts; i++) {
            esm_kafka_part_destroy(s->parts[i]);
            s->parts[i] = NULL;
        }
        rd_kafka_assign(s->rk, NULL);
    }
}

/* ---- librdkafka callbacks ------------------------------------------------------------------ */

/* After the shared error callback logged it: counted, and shown in status. */
static void on_error(esm_kafka_glue *g, rd_kafka_resp_err_t err, const char *reason, bool fatal)
{
    kafka_source *s = (kafka_source *)g;
    s->env.stats->source_errors++;
    if (fatal)
        set_error(s, "fatal consumer error: %s", reason);
    else
        set_error(s, "%s: %s", rd_kafka_err2name(err), reason);
    note_problem(s, err, reason);
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    kafka_source *s = opaque;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        for (int i = 0; offsets && i < offsets->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &offsets->elems[i];
            if (e->err || e->offset < 0) continue;
            ESM_TRACE(s->env.log_ctx, "committed %s-%" PRId32 " at %" PRId64, e->topic,
                      e->partition, e->offset);
            if (strcmp(e->topic, s->map->topic) != 0) continue;
            esm_kafka_part *p = part_of(s, e->partition);
            if (p)
                esm_kafka_part_group_confirmed(p);
            else
                esm_kafka_part_released_confirmed(&s->sh, e->partition);
        }
        return;
    }
    /* Stored offsets stay stored: the next (auto) commit carries them. */
    set_error(s, "offset commit failed: %s", rd_kafka_err2str(err));
    ESM_DEBUG(s->env.log_ctx, "%s", s->last_error);
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void maybe_close(kafka_source *s);

static void on_message(kafka_source *s, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
        s->env.stats->source_errors++;
        set_error(s, "consume: %s", rd_kafka_message_errstr(m));
        ESM_WARN(s->env.log_ctx, "consume error: %s", s->last_error);
        note_problem(s, m->err, rd_kafka_message_errstr(m));
        return;
    }
    if (s->state != K_RUNNING || !m->rkt || strcmp(rd_kafka_topic_name(m->rkt), s->map->topic) != 0)
        return;
    if (s->last_error[0]) {
        ESM_INFO(s->env.log_ctx, "consuming again (last problem: %s)", s->last_error);
        s->last_error[0] = '\0';
    }
    clear_problem(s, "consuming");
    esm_kafka_part *p = part_of(s, m->partition);
    if (p) esm_kafka_part_message(p, m);
}

/* Whether librdkafka's queue came near one of its bounds since the last stall: only then may
 * librdkafka have stopped fetching for a while. */
static bool queue_was_near_full(const kafka_source *s)
{
    if (s->q_peak == 0 || s->polled_msgs == 0) return false;
    uint64_t mean = s->polled_bytes / s->polled_msgs;
    return 2 * s->q_peak >= s->q_max_msgs || 2 * s->q_peak * mean >= s->q_max_bytes;
}

static void serve(kafka_source *s)
{
    if (!s->rk || s->in_serve) return;
    s->in_serve = true;
    esm_kafka_wakeup_drain(&s->wake);
    size_t qlen = rd_kafka_queue_length(s->wake.q);
    if (qlen > s->q_peak) s->q_peak = qlen;
    rd_kafka_message_t *m = NULL;
    size_t budget = SERVE_BUDGET;
    /* While a partition is full, leave the records in librdkafka's queue (it stops fetching
     * when that is full); a partition leaving the full state calls later() to go on. */
    while ((s->n_full == 0 || s->state != K_RUNNING) && budget > 0 &&
           (m = rd_kafka_consumer_poll(s->rk, 0)) != NULL) {
        s->polled_msgs++;
        s->polled_bytes += m->len + m->key_len;
        on_message(s, m);
        rd_kafka_message_destroy(m);
        budget--;
    }
    /* Drained: watch for a stalled fetcher (on_nudge). */
    if (!m && budget > 0 && s->state == K_RUNNING && !ev_is_active(&s->nudge) &&
        queue_was_near_full(s)) {
        ev_timer_set(&s->nudge, NUDGE_S, 0.);
        ev_timer_start(s->env.loop, &s->nudge);
    }
    /* More may wait, and the wakeup pipe fires only when the queue was empty: go on in the
     * next loop iteration, after the invocations' I/O. */
    if (budget == 0) later(s);
    s->in_serve = false;
    if (s->state == K_CLOSING && rd_kafka_consumer_closed(s->rk)) {
        s->state = K_STOPPED;
        ev_timer_stop(s->env.loop, &s->stop_deadline);
        ESM_INFO(s->env.log_ctx, "consumer closed; stopped");
        ev_timer_set(&s->stopped_notify, 0., 0.);
        ev_timer_start(s->env.loop, &s->stopped_notify);
    }
}

static void on_wakeup(void *arg)
{
    serve(arg);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    kafka_source *s = w->data;
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i]) esm_kafka_part_flow(s->parts[i]);
    serve(s);
}

static void on_later(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    kafka_source *s = w->data;
    complete_pending_revoke(s, false);
    maybe_close(s);
    serve(s);
}

static void on_nudge(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    kafka_source *s = w->data;
    if (s->state != K_RUNNING || s->n_full > 0 || !queue_was_near_full(s)) return;
    if (rd_kafka_queue_length(s->wake.q) > 0) {
        serve(s);
        return;
    }
    bool lagging = false, woken = false;
    for (size_t i = 0; i < s->n_parts; i++)
        if (s->parts[i] && esm_kafka_part_nudge(s->parts[i], &woken)) lagging = true;
    if (woken) s->q_peak = 0;
    if (lagging && !woken) {
        ev_timer_set(w, NUDGE_S, 0.);
        ev_timer_start(loop, w);
    }
}

static void on_commit(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    kafka_source *s = w->data;
    s->last_commit = ev_now(loop);
    if (s->state == K_RUNNING || s->state == K_STOPPING) rd_kafka_commit(s->rk, NULL, 1);
}

/* A partition stored an offset: commit everything stored in the next loop iteration, or
 * COMMIT_GAP_S after the previous commit. */
static void on_stored(void *arg)
{
    kafka_source *s = arg;
    if (ev_is_active(&s->commit)) return;
    ev_tstamp wait = s->last_commit + COMMIT_GAP_S - ev_now(s->env.loop);
    ev_timer_set(&s->commit, wait > 0 ? wait : 0., 0.);
    ev_timer_start(s->env.loop, &s->commit);
}

static void on_revoke_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    complete_pending_revoke(w->data, true);
}

static void on_stopped_notify(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    kafka_source *s = w->data;
    if (s->stopped_cb) s->stopped_cb(s->stopped_arg);
}

/* ---- stop ---------------------------------------------------------------------------------- */

static void maybe_close(kafka_source *s)
{
    if (s->state != K_STOPPING || !all_idle(s, NULL)) return;
    s->state = K_CLOSING;
    /* Leaves the group: revokes (our rebalance_cb releases the idle partitions), commits the
     * stored offsets. Served on our queue, so the loop never blocks. */
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(s->rk, s->wake.q);
    if (e) {
        ESM_WARN(s->env.log_ctx, "consumer close: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    ev_timer_stop(s->env.loop, &s->tick);
    ev_timer_set(&s->tick, CLOSING_TICK_S, CLOSING_TICK_S);
    ev_timer_start(s->env.loop, &s->tick);
    serve(s);
}

static void on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    kafka_source *s = w->data;
    if (s->state == K_STOPPING) {
        ESM_WARN(s->env.log_ctx, "batches still in flight at the shutdown deadline: abandoned "
                                 "unacknowledged (read again after a restart)");
        for (size_t i = 0; i < s->n_parts; i++)
            if (s->parts[i]) esm_kafka_part_abandon(s->parts[i]);
        maybe_close(s);
        ev_timer_set(&s->stop_deadline, 10.0, 0.);
        ev_timer_start(s->env.loop, &s->stop_deadline);
    } else if (s->state == K_CLOSING) {
        ESM_WARN(s->env.log_ctx, "the consumer did not close in time; stopping without it");
        s->state = K_STOPPED;
        ev_timer_set(&s->stopped_notify, 0., 0.);
        ev_timer_start(s->env.loop, &s->stopped_notify);
    }
}

static void k_stop(void *source, esm_source_stopped_cb done, void *arg)
{
    kafka_source *s = source;
    s->stopped_cb = done;
    s->stopped_arg = arg;
    if (s->state == K_INIT || s->state == K_STOPPED) {
        s->state = K_STOPPED;
        ev_timer_set(&s->stopped_notify, 0., 0.);
        ev_timer_start(s->env.loop, &s->stopped_notify);
        return;
    }
    if (s->state != K_RUNNING) return;
    s->state = K_STOPPING;
    size_t busy = 0;
    for (size_t i = 0; i < s->n_parts; i++) {
        if (!s->parts[i]) continue;
        esm_kafka_part_quiesce(s->parts[i], true);
        if (!esm_kafka_part_idle(s->parts[i])) busy++;
    }
    if (busy) ESM_INFO(s->env.log_ctx, "stopping: waiting for %zu batches in flight", busy);
    ev_timer_set(&s->stop_deadline, s->env.config->shutdown_grace_seconds, 0.);
    ev_timer_start(s->env.loop, &s->stop_deadline);
    maybe_close(s);
}

/* ---- the source table ---------------------------------------------------------------------- */

static void k_destroy(void *source);

/* A numeric property of conf times unit (SIZE_MAX when unreadable: never near). */
static size_t conf_size(const rd_kafka_conf_t *conf, const char *name, size_t unit)
{
    char v[32];
    size_t n = sizeof v;
    if (rd_kafka_conf_get(conf, name, v, &n) != RD_KAFKA_CONF_OK) return SIZE_MAX;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    return end != v && *end == '\0' && x > 0 ? (size_t)x * unit : SIZE_MAX;
}

static void *k_create(const esm_source_env *env, esm_err *err)
{
    kafka_source *s = calloc(1, sizeof *s);
    if (!s) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return NULL;
    }
    s->env = *env;
    s->map = env->mapping;
    esm_kafka_wakeup_init(&s->wake);
    s->glue = (esm_kafka_glue){.log_ctx = env->log_ctx, .on_error = on_error};
    ev_timer_init(&s->tick, on_tick, TICK_S, TICK_S);
    s->tick.data = s;
    ev_timer_init(&s->later, on_later, 0., 0.);
    s->later.data = s;
    ev_timer_init(&s->nudge, on_nudge, 0., 0.);
    s->nudge.data = s;
    ev_timer_init(&s->commit, on_commit, 0., 0.);
    s->commit.data = s;
    ev_timer_init(&s->stop_deadline, on_stop_deadline, 0., 0.);
    s->stop_deadline.data = s;
    ev_timer_init(&s->revoke_deadline, on_revoke_deadline, 0., 0.);
    s->revoke_deadline.data = s;
    ev_timer_init(&s->stopped_notify, on_stopped_notify, 0., 0.);
    s->stopped_notify.data = s;
    s->bootstrap = esm_kafka_bootstrap_join(s->map);
    if (!s->map->topic || !s->bootstrap) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "Kafka mapping without topic or bootstrap servers");
        k_destroy(s);
        return NULL;
    }
    s->source_key = esm_kafka_source_key(s->map);
    if (!s->source_key) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        k_destroy(s);
        return NULL;
    }
    s->sh = (esm_kafka_shared){.loop = env->loop,
                               .env = &s->env,
                               .map = s->map,
                               .topic = s->map->topic,
                               .bootstrap = s->bootstrap,
                               .source_key = s->source_key,
                               .n_full = &s->n_full,
                               .changed = on_part_changed,
                               .stored = on_stored,
                               .changed_arg = s};

    esm_kafka_props props;
    if (esm_kafka_props_build(s->map, &props, err) != 0) {
        k_destroy(s);
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int applied = esm_kafka_conf_apply(conf, &props, env->log_ctx, err);
    esm_kafka_props_free(&props);
    if (applied != 0) {
        rd_kafka_conf_destroy(conf);
        k_destroy(s);
        return NULL;
    }
    s->q_max_msgs = conf_size(conf, "queued.min.messages", 1);
    s->q_max_bytes = conf_size(conf, "queued.max.messages.kbytes", 1024);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    esm_kafka_conf_set_glue(conf, &s->glue);
    char es[512];
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        /* a certificate or key librdkafka cannot use is named in AWS's words first */
        const char *problem = esm_kafka_problem(RD_KAFKA_RESP_ERR__SSL, es);
        bool bad_cert = problem == esm_kafka_bad_certificate;
        esm_err_set(err, ESM_ERR_INVALID, false, "%s%sKafka consumer: %s", bad_cert ? problem : "",
                    bad_cert ? ": " : "", es);
        k_destroy(s);
        return NULL;
    }
    s->sh.rk = s->rk;
    rd_kafka_poll_set_consumer(s->rk);
    if (esm_kafka_wakeup_open(&s->wake, env->loop, rd_kafka_queue_get_consumer(s->rk), on_wakeup, s,
                              err) != 0) {
        err->retriable = false;
        k_destroy(s);
        return NULL;
    }
    return s;
}

static int k_start(void *source, esm_err *err)
{
    kafka_source *s = source;
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, s->map->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e) {
        esm_err_set(err, ESM_ERR_INVALID, false, "subscribe to %s: %s", s->map->topic,
                    rd_kafka_err2str(e));
        return -1;
    }
    s->state = K_RUNNING;
    esm_kafka_wakeup_start(&s->wake);
    ev_timer_start(s->env.loop, &s->tick);
    ESM_INFO(s->env.log_ctx,
             "consuming %s from %s in group %s (starting position %s, batch size %d, window %d "
             "ms)",
             s->map->topic, s->bootstrap, esm_kafka_group_id(s->map),
             esm_starting_position_name(s->map->starting_position)
                 ? esm_starting_position_name(s->map->starting_position)
                 : "TRIM_HORIZON",
             s->map->batch_size, s->map->batching_window_ms);
    serve(s);
    return 0;
}

static void k_destroy(void *source)
{
    kafka_source *s = source;
    if (!s) return;
    struct ev_loop *loop = s->env.loop;
    ev_timer_stop(loop, &s->tick);
    ev_timer_stop(loop, &s->later);
    ev_timer_stop(loop, &s->nudge);
    ev_timer_stop(loop, &s->commit);
    ev_timer_stop(loop, &s->stop_deadline);
    ev_timer_stop(loop, &s->revoke_deadline);
    ev_timer_stop(loop, &s->stopped_notify);
    for (size_t i = 0; i < s->n_parts; i++)
        esm_kafka_part_destroy(s->parts[i]);
    free(s->parts);
    if (s->revoking) rd_kafka_topic_partition_list_destroy(s->revoking);
    esm_kafka_wakeup_close(&s->wake);
    if (s->rk) {
        /* A clean stop closed the consumer already; otherwise do not block on the group. */
        bool closed = rd_kafka_consumer_closed(s->rk);
        rd_kafka_destroy_flags(s->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    free(s->bootstrap);
    free(s->source_key);
    free(s);
}

static esm_source_phase k_phase(void *source)
{
    const kafka_source *s = source;
    switch (s->state) {
    case K_INIT:
        return ESM_SOURCE_CREATED;
    case K_RUNNING:
        return s->assigned_once ? ESM_SOURCE_RUNNING : ESM_SOURCE_REACHING;
    case K_STOPPING:
    case K_CLOSING:
        return ESM_SOURCE_STOPPING;
    case K_STOPPED:
        break;
    }
    return ESM_SOURCE_STOPPED;
}

static const char *k_last_error(void *source)
{
    const kafka_source *s = source;
    return s->last_error[0] ? s->last_error : NULL;
}

static const char *k_problem(void *source)
{
    const kafka_source *s = source;
    return s->problem;
}

static void k_status(void *source, esm_buf *out)
{
    kafka_source *s = source;
    esm_buf_puts(out, ",\"Topic\":");
    esm_buf_json_cstr(out, s->map->topic);
    esm_buf_puts(out, ",\"BootstrapServers\":");
    esm_buf_json_cstr(out, s->bootstrap);
    esm_buf_puts(out, ",\"ConsumerGroupId\":");
    esm_buf_json_cstr(out, esm_kafka_group_id(s->map));
    esm_buf_puts(out, ",\"Partitions\":[");
    int64_t sum = 0, max = 0;
    size_t n = 0;
    bool lag_known = true;
    for (size_t i = 0; i < s->n_parts; i++) {
        if (!s->parts[i]) continue;
        if (n++) esm_buf_putc(out, ',');
        int64_t lag;
        esm_kafka_part_status(s->parts[i], out, &lag);
        if (lag < 0) {
            lag_known = false;
            continue;
        }
        sum += lag;
        if (lag > max) max = lag;
    }
    esm_buf_printf(out, "],\"AssignedPartitions\":%zu,\"SumOffsetLag\":", n);
    if (lag_known)
        esm_buf_printf(out, "%" PRId64 ",\"MaxOffsetLag\":%" PRId64, sum, max);
    else
        esm_buf_puts(out, "null,\"MaxOffsetLag\":null");
}

static int64_t k_stuck_since(void *source)
{
    kafka_source *s = source;
    int64_t since = 0;
    for (size_t i = 0; i < s->n_parts; i++) {
        int64_t b = s->parts[i] ? esm_kafka_part_blocked_since(s->parts[i]) : 0;
        if (b > 0 && (since == 0 || b < since)) since = b;
    }
    return since;
}

static void k_lane_gauges(void *source, esm_lane_gauge_fn emit, void *arg)
{
    kafka_source *s = source;
    int64_t now = esm_now_ms();
    for (size_t i = 0; i < s->n_parts; i++) {
        esm_kafka_part *p = s->parts[i];
        if (!p) continue;
        const char *lane = esm_kafka_part_name(p);
        int64_t lag = esm_kafka_part_lag(p), blocked = esm_kafka_part_blocked_since(p);
        if (lag >= 0) emit(arg, lane, ESM_GAUGE_OFFSET_LAG, (double)lag);
        emit(arg, lane, ESM_GAUGE_LANE_BLOCKED_SECONDS,
             blocked > 0 && now > blocked ? (double)(now - blocked) / 1000.0 : 0.0);
        emit(arg, lane, ESM_GAUGE_LANE_IN_FLIGHT, (double)esm_kafka_part_in_flight(p));
    }
}

const esm_source_ops esm_kafka_source = {
    .name = "kafka",
    .create = k_create,
    .start = k_start,
    .stop = k_stop,
    .destroy = k_destroy,
    .status = k_status,
    .phase = k_phase,
    .last_error = k_last_error,
    .problem = k_problem,
    .stuck_since = k_stuck_since,
    .lane_gauges = k_lane_gauges,
    .move = esm_kafka_move,
    .position_means = "the next offset to process in the partition",
    .source_key = esm_kafka_source_key,
};
