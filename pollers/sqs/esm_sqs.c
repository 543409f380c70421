/* The SQS source: long-polls a queue with several concurrent receive loops, gathers batches
 * (BatchSize, 6 MB, batching window), invokes the function and deletes what succeeded.
 * Failed messages are left to the queue: they reappear after the visibility timeout and the
 * queue's redrive policy moves poison messages to its DLQ (AWS semantics,
 * docs/design.md "SQS semantics"). Beyond AWS, MaximumRetryAttempts + OnFailure turn a message that
 * has used up its receives into a failure record (with the message) before deleting it. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/esm_aws.h"
#include "common/esm_log.h"
#include "common/esm_time.h"
#include "invoker/esm_rbif.h"
#include "pollers/esm_source.h"
#include "pollers/sqs/esm_sqs_int.h"

#define SQS_MAX_RECEIVE 10
#define SQS_WAIT_SECONDS 20
#define SQS_MAX_POLLERS 5
#define SQS_PARSER_KEEP (1u << 20) /* parse buffers kept between responses, per source */

long esm_sqs_receive_timeout_ms = (SQS_WAIT_SECONDS + 10) * 1000L;

typedef struct sqs_source sqs_source;

typedef struct sqs_batch {
    sqs_source *src;
    esm_sqs_msg **msgs;
    size_t n, cap;
    size_t record_bytes;
    int64_t first_received_ms;
    esm_buf event;
    esm_invocation *call;
    ev_timer retry_timer;
    ev_timer heartbeat;
    unsigned retries;
    bool held; /* FIFO: not invoked until no older batch in flight has one of its groups */
    struct sqs_batch *prev, *next; /* the in-flight list, newest first */
} sqs_batch;

typedef struct {
    sqs_source *src;
    esm_http_call *call;
    ev_timer backoff;
    unsigned errors;
} sqs_poller;

struct sqs_source {
    esm_source_env env;
    const esm_mapping_config *map;
    esm_aws *aws;
    esm_sqs_render_ctx render;
    esm_sqs_parser parser; /* ReceiveMessage responses, one at a time */
    char *queue_url;
    int visibility_timeout_s;
    esm_source_phase state;
    esm_http_call *setup_call;
    ev_timer setup_retry;
    unsigned setup_errors;
    sqs_poller pollers[SQS_MAX_POLLERS];
    int n_pollers;
    size_t max_batches; /* batches in flight at once: the mapping's concurrency */
    sqs_batch *open;    /* the batch being filled during a batching window */
    ev_timer window;
    sqs_batch *inflight; /* batches invoking, waiting for a retry, or being acknowledged */
    size_t n_inflight;
    esm_sqs_ops *ops;
    esm_source_stopped_cb stopped_cb;
    void *stopped_arg;
    ev_timer stop_deadline;
    ev_timer stopped_notify;
    char last_error[256];
    esm_sqs_stuck stuck; /* failing FIFO groups / mapping, for StuckLaneSeconds */
};

static void poller_kick(sqs_poller *p);
static void batch_finish(sqs_batch *b, const bool *kept);
static void on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents);

static void kick_all(sqs_source *s)
{
    for (int i = 0; i < s->n_pollers; i++)
        poller_kick(&s->pollers[i]);
}

/* Remembers the latest problem for /status: a prefix and a detail cut to fit. */
static void set_error(sqs_source *s, const char *prefix, const char *detail)
{
    snprintf(s->last_error, sizeof s->last_error, "%.60s%.190s", prefix, detail);
}

/* ---- batches ---------------------------------------------------------------------------- */

static sqs_batch *batch_new(sqs_source *s)
{
    sqs_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->src = s;
    esm_buf_init(&b->event);
    return b;
}

static bool batch_add(sqs_batch *b, esm_sqs_msg *m)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        esm_sqs_msg **p = realloc(b->msgs, cap * sizeof *p);
        if (!p) return false;
        b->msgs = p;
        b->cap = cap;
    }
    if (b->n == 0) b->first_received_ms = esm_now_ms();
    b->msgs[b->n++] = m;
    b->record_bytes += m->record_len;
    return true;
}

static void batch_free(sqs_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        esm_sqs_msg_free(b->msgs[i]);
    free(b->msgs);
    esm_buf_free(&b->event);
    free(b);
}

static void inflight_link(sqs_source *s, sqs_batch *b)
{
    b->next = s->inflight;
    if (s->inflight) s->inflight->prev = b;
    s->inflight = b;
    s->n_inflight++;
}

static void inflight_unlink(sqs_source *s, sqs_batch *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        s->inflight = b->next;
    if (b->next) b->next->prev = b->prev;
    s->n_inflight--;
}

static void maybe_stopped(sqs_source *s)
{
    if (s->state != ESM_SOURCE_STOPPING || s->n_inflight > 0 || esm_sqs_ops_pending(s->ops) > 0)
        return;
    for (int i = 0; i < s->n_pollers; i++)
        if (s->pollers[i].call) return;
    s->state = ESM_SOURCE_STOPPED;
    ev_timer_stop(s->env.loop, &s->stop_deadline);
    ESM_INFO(s->env.log_ctx, "stopped");
    /* Reported from the loop, not from here: the engine may destroy the source in the
     * callback, and we may be deep inside one of its own callbacks. */
    ev_timer_set(&s->stopped_notify, 0., 0.);
    ev_timer_start(s->env.loop, &s->stopped_notify);
}

static void on_stopped_notify(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sqs_source *s = w->data;
    if (s->stopped_cb) s->stopped_cb(s->stopped_arg);
}

static void on_ops_idle(void *arg)
{
    maybe_stopped(arg);
}

/* Keeps the batch's messages invisible while esmd still holds them (long invocations, throttle
 * retries), so that they are not delivered twice and FIFO groups stay blocked. */
static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sqs_batch *b = w->data;
    sqs_source *s = b->src;
    esm_sqs_ops_change_visibility(s->ops, b->msgs, b->n, s->visibility_timeout_s);
}

static void invoke_batch(sqs_batch *b);

static void on_retry_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    invoke_batch(w->data);
}

/* Writes failure records for messages that used up MaximumRetryAttempts (esmd extension). */
static bool discard_exhausted(sqs_source *s, sqs_batch *b, const bool *failed,
                              const esm_invoke_result *r, bool *discard)
{
    const esm_mapping_config *m = s->map;
    bool any = false;
    for (size_t i = 0; i < b->n; i++) {
        discard[i] = failed[i] && m->maximum_retry_attempts >= 0 &&
                     b->msgs[i]->receive_count > m->maximum_retry_attempts;
        any |= discard[i];
    }
    if (!any) return false;
    for (size_t i = 0; i < b->n; i++) {
        if (!discard[i]) continue;
        if (!m->on_failure_destination) {
            ESM_WARN(s->env.log_ctx,
                     "message %s failed %d times (MaximumRetryAttempts %d) and no OnFailure "
                     "destination is set: deleted",
                     b->msgs[i]->message_id, b->msgs[i]->receive_count, m->maximum_retry_attempts);
            s->env.stats->dropped++;
            continue;
        }
        int rec = esm_sqs_ops_failure_record(s->ops, b->msgs[i], r);
        if (rec < 0) {
            discard[i] = false; /* not recorded: leave it in the queue, never lose it */
            continue;
        }
        if (rec == 1) continue; /* recorded and counted when it first failed */
        s->env.stats->dropped++;
        s->env.stats->on_failure_queued++;
    }
    return true;
}

/* esmd extension (EsmdOptions.RetryBackoff): a failed message comes back after an exponential
 * delay in its receive count instead of the queue's visibility timeout. */
static void retry_later(sqs_source *s, esm_sqs_msg *m)
{
    const esm_mapping_config *map = s->map;
    int shift = m->receive_count > 1 ? m->receive_count - 1 : 0;
    int64_t delay = (int64_t)map->retry_backoff_base_ms << (shift < 20 ? shift : 20);
    if (delay > map->retry_backoff_max_ms) delay = map->retry_backoff_max_ms;
    int seconds = (int)((delay + 999) / 1000);
    ESM_DEBUG(s->env.log_ctx, "message %s retries in %d s (receive count %d)", m->message_id,
              seconds, m->receive_count);
    esm_sqs_ops_change_visibility(s->ops, &m, 1, seconds);
}

static void settle(sqs_batch *b, const bool *failed, const esm_invoke_result *r)
{
    sqs_source *s = b->src;
    bool *discard = calloc(b->n ? b->n : 1, sizeof *discard);
    esm_sqs_msg **del = calloc(b->n ? b->n : 1, sizeof *del);
    size_t n_del = 0, n_failed = 0;
    if (!discard || !del) {
        ESM_ERROR(s->env.log_ctx, "out of memory settling a batch; messages return to the queue");
    } else {
        discard_exhausted(s, b, failed, r, discard);
        for (size_t i = 0; i < b->n; i++) {
            if (!failed[i] || discard[i]) del[n_del++] = b->msgs[i];
            if (failed[i]) n_failed++;
            if (failed[i] && !discard[i] && s->map->retry_backoff_set) retry_later(s, b->msgs[i]);
        }
        esm_sqs_ops_delete(s->ops, del, n_del);
        for (size_t i = 0; i < b->n; i++)
            discard[i] = failed[i] && !discard[i]; /* now: kept in the queue */
    }
    if (n_failed) s->env.stats->failed_invoke += n_failed;
    batch_finish(b, discard && del ? discard : NULL);
    free(discard);
    free(del);
}

/* FIFO: a failed message blocks the rest of its group in this batch, so later messages of the
 * group are not deleted out of order (AWS leaves this to the function). */
static void fifo_extend_failures(sqs_batch *b, bool *failed)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!failed[i] || !b->msgs[i]->group_id) continue;
        for (size_t j = i + 1; j < b->n; j++)
            if (b->msgs[j]->group_id && strcmp(b->msgs[j]->group_id, b->msgs[i]->group_id) == 0)
                failed[j] = true;
    }
}

/* Metrics and stuck-lane tracking for one invocation attempt; failed NULL = all failed. */
static void note_outcome(sqs_source *s, const sqs_batch *b, const bool *failed,
                         const esm_invoke_result *r)
{
    int64_t now = esm_now_ms();
    size_t n_failed = 0;
    for (size_t i = 0; i < b->n; i++)
        n_failed += !failed || failed[i];
    const char *why = r->reason[0] ? r->reason : "function reported failed items";
    esm_invoke_stats_record(&s->env.stats->invokes, b->n, r->latency_ms, n_failed < b->n, now);
    /* A misconfigured endpoint is logged once a minute, not once per retry; a transport error
     * neither sets nor clears it. */
    esm_endpoint_log what = ESM_ENDPOINT_LOG_NOTHING;
    if (esm_invoke_result_judges_settings(r))
        what = esm_invoke_stats_endpoint(&s->env.stats->invokes,
                                         r->misconfigured ? r->reason : NULL, now);
    switch (what) {
    case ESM_ENDPOINT_LOG_MISCONFIGURED:
        ESM_WARN(s->env.log_ctx,
                 "%s; messages are not deleted or counted as failed, they return after the "
                 "visibility timeout until the function settings are fixed (reload)",
                 r->reason);
        break;
    case ESM_ENDPOINT_LOG_RECOVERED:
        ESM_INFO(s->env.log_ctx, "the function endpoint answers again (no longer misconfigured)");
        break;
    case ESM_ENDPOINT_LOG_NOTHING:
        break;
    }
    esm_sqs_stuck_invocation(&s->stuck, n_failed < b->n, why, now);
    for (size_t i = 0; s->map->fifo && i < b->n; i++)
        esm_sqs_stuck_group(&s->stuck, b->msgs[i]->group_id, !failed || failed[i], why, now);
}

static void on_invoked(const esm_invoke_result *r, void *arg)
{
    sqs_batch *b = arg;
    sqs_source *s = b->src;
    const esm_mapping_config *m = s->map;
    b->call = NULL;
    if (r->cls == ESM_INVOKE_THROTTLE || r->cls == ESM_INVOKE_ERROR) {
        note_outcome(s, b, NULL, r);
        if (r->cls == ESM_INVOKE_THROTTLE) s->env.stats->throttled++;
        /* Retry with full-jitter backoff while the messages' visibility window allows. */
        int64_t cap = m->retry_backoff_max_ms > 0 ? m->retry_backoff_max_ms : 60000;
        int64_t base = m->retry_backoff_base_ms > 0 ? m->retry_backoff_base_ms : 1000;
        int64_t exp = base << (b->retries < 16 ? b->retries : 16);
        int64_t delay = random() % (exp < cap ? exp : cap) + 1;
        if (r->retry_after_ms > delay) delay = r->retry_after_ms;
        int64_t deadline = b->first_received_ms + (int64_t)s->visibility_timeout_s * 1000 -
                           (int64_t)m->function->timeout_seconds * 1000;
        if (s->state == ESM_SOURCE_RUNNING && esm_now_ms() + delay < deadline) {
            b->retries++;
            if (!r->misconfigured)
                ESM_WARN(s->env.log_ctx, "invoke of %zu messages not done (%s); retry in %lld ms",
                         b->n, r->reason, (long long)delay);
            ev_timer_set(&b->retry_timer, (double)delay / 1000.0, 0.);
            ev_timer_start(s->env.loop, &b->retry_timer);
            return;
        }
        if (!r->misconfigured)
            ESM_WARN(s->env.log_ctx,
                     "invoke of %zu messages not done (%s); leaving them to the visibility timeout",
                     b->n, r->reason);
        set_error(s, "", r->reason);
        batch_finish(b, NULL);
        return;
    }
    s->env.stats->invocations++;
    bool *failed = calloc(b->n, sizeof *failed);
    if (!failed) {
        batch_finish(b, NULL);
        return;
    }
    if (r->cls == ESM_INVOKE_FUNCTION_ERROR) {
        for (size_t i = 0; i < b->n; i++)
            failed[i] = true;
        ESM_INFO(s->env.log_ctx, "function error on %zu messages: %s", b->n, r->reason);
        set_error(s, "function error: ", r->reason);
    } else if (m->report_batch_item_failures) {
        const char **ids = malloc(b->n * sizeof *ids);
        size_t *idx = malloc(b->n * sizeof *idx);
        size_t n_failed = 0;
        char why[256] = "";
        esm_rbif_status st = ESM_RBIF_INVALID;
        if (ids && idx) {
            for (size_t i = 0; i < b->n; i++)
                ids[i] = b->msgs[i]->message_id;
            st = esm_rbif_parse(r->body, r->body_len, ESM_RBIF_ID_STRING, ids, b->n, idx, &n_failed,
                                why, sizeof why);
        }
        if (st == ESM_RBIF_INVALID) {
            ESM_WARN(s->env.log_ctx, "invalid batchItemFailures response (%s): batch failed", why);
            set_error(s, "invalid partial batch response: ", why);
            for (size_t i = 0; i < b->n; i++)
                failed[i] = true;
        } else {
            for (size_t k = 0; k < n_failed; k++)
                failed[idx[k]] = true;
            if (n_failed)
                ESM_INFO(s->env.log_ctx, "partial batch: %zu of %zu messages failed", n_failed,
                         b->n);
        }
        free(ids);
        free(idx);
    }
    if (s->map->fifo) fifo_extend_failures(b, failed);
    note_outcome(s, b, failed, r);
    settle(b, failed, r);
    free(failed);
}

static void invoke_batch(sqs_batch *b)
{
    sqs_source *s = b->src;
    b->call = esm_invoker_invoke(s->env.invoker, b->event.data, b->event.len, on_invoked, b);
    if (!b->call) {
        ESM_ERROR(s->env.log_ctx, "invoke refused for a batch of %zu messages (%zu bytes)", b->n,
                  b->event.len);
        batch_finish(b, NULL);
    }
}

/* ---- FIFO: one batch in flight per message group ----------------------------------------
 * SQS hands out a group's messages only while none of the group is in flight, so two batches
 * of one group exist only when esmd cuts one receive (or one batching window) in two at the
 * 6 MB limit. The later batch is held until the earlier one is done; the messages of a group
 * the earlier one kept in the queue (failed, or not invoked) leave the held batch at once,
 * visible again behind their group's first message, which SQS returns first. */

static bool same_group(const esm_sqs_msg *a, const esm_sqs_msg *b)
{
    return a->group_id && b->group_id && strcmp(a->group_id, b->group_id) == 0;
}

static bool batch_has_group_of(const sqs_batch *b, const esm_sqs_msg *m)
{
    for (size_t i = 0; i < b->n; i++)
        if (same_group(b->msgs[i], m)) return true;
    return false;
}

static bool waits_for_older(const sqs_batch *b)
{
    for (const sqs_batch *o = b->next; o; o = o->next)
        for (size_t i = 0; i < b->n; i++)
            if (batch_has_group_of(o, b->msgs[i])) return true;
    return false;
}

/* Gives back to the queue, visible at once, the messages of held batch h whose group the
 * finished batch done kept (all of them when done is NULL). They were never invoked. */
static void give_back(sqs_batch *h, const sqs_batch *done, const bool *kept)
{
    sqs_source *s = h->src;
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        esm_sqs_msg *m = h->msgs[i];
        bool back = !done; /* no done batch: give every message back */
        for (size_t j = 0; done && j < done->n && !back; j++)
            back = (!kept || kept[j]) && same_group(done->msgs[j], m);
        if (!back) {
            h->msgs[n++] = m;
            continue;
        }
        ESM_DEBUG(s->env.log_ctx, "message %s returns to the queue behind its group %s",
                  m->message_id, m->group_id);
        esm_sqs_ops_change_visibility(s->ops, &m, 1, 0);
        s->env.stats->invoked--; /* counted when its batch was cut */
        h->record_bytes -= m->record_len;
        esm_sqs_msg_free(m);
    }
    if (n == h->n) return;
    h->n = n;
    esm_buf_reset(&h->event);
    esm_sqs_render_event(h->msgs, h->n, &h->event);
}

/* Invokes (or, while stopping, gives back) the oldest held batch that waits for nobody, until
 * none is left; re-scans after each, because finishing one changes the list. */
static void release_held(sqs_source *s)
{
    for (;;) {
        sqs_batch *oldest = NULL;
        for (sqs_batch *b = s->inflight; b; b = b->next)
            if (b->held && !waits_for_older(b)) oldest = b;
        if (!oldest) return;
        oldest->held = false;
        if (s->state != ESM_SOURCE_RUNNING) give_back(oldest, NULL, NULL);
        if (oldest->n == 0 || oldest->event.failed)
            batch_finish(oldest, NULL);
        else
            invoke_batch(oldest);
    }
}

/* The batch leaves the mapping: stop its timers, free it, let the pollers go on. kept[i]
 * (NULL: all) says message i stays in the queue; a FIFO group it kept stays blocked. */
static void batch_finish(sqs_batch *b, const bool *kept)
{
    sqs_source *s = b->src;
    ev_timer_stop(s->env.loop, &b->retry_timer);
    ev_timer_stop(s->env.loop, &b->heartbeat);
    for (sqs_batch *h = s->inflight; s->map->fifo && h != b; h = h->next)
        if (h->held) give_back(h, b, kept);
    inflight_unlink(s, b);
    batch_free(b);
    if (s->map->fifo) release_held(s);
    kick_all(s);
    maybe_stopped(s);
}

static void flush_open(sqs_source *s)
{
    sqs_batch *b = s->open;
    ev_timer_stop(s->env.loop, &s->window);
    s->open = NULL;
    if (!b || b->n == 0) {
        if (b) batch_free(b);
        return;
    }
    esm_sqs_render_event(b->msgs, b->n, &b->event);
    if (b->event.failed) {
        ESM_ERROR(s->env.log_ctx, "out of memory rendering a batch; messages return to the queue");
        batch_free(b);
        return;
    }
    inflight_link(s, b);
    s->env.stats->invoked += b->n;
    ev_timer_init(&b->retry_timer, on_retry_timer, 0., 0.);
    b->retry_timer.data = b;
    /* Extend visibility at half the timeout, then every half timeout while esmd holds it. */
    double half = s->visibility_timeout_s > 1 ? s->visibility_timeout_s / 2.0 : 1.0;
    ev_timer_init(&b->heartbeat, on_heartbeat, half, half);
    b->heartbeat.data = b;
    ev_timer_start(s->env.loop, &b->heartbeat);
    if (s->map->fifo && waits_for_older(b)) {
        b->held = true;
        ESM_DEBUG(s->env.log_ctx, "%zu messages wait for an earlier batch of their group", b->n);
        return;
    }
    ESM_DEBUG(s->env.log_ctx, "invoking with %zu messages (%zu bytes)", b->n, b->event.len);
    invoke_batch(b);
}

static void on_window(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sqs_source *s = w->data;
    flush_open(s);
    kick_all(s);
}

/* Adds a matching message to the open batch, flushing first when it would not fit. */
static void add_to_batch(sqs_source *s, esm_sqs_msg *msg)
{
    if (s->open && !esm_invoke_payload_fits(
                       esm_sqs_event_size(s->open->n + 1, s->open->record_bytes + msg->record_len)))
        flush_open(s);
    if (!s->open) s->open = batch_new(s);
    if (!s->open || !batch_add(s->open, msg)) {
        ESM_ERROR(s->env.log_ctx, "out of memory; message %s returns to the queue",
                  msg->message_id);
        esm_sqs_msg_free(msg);
        return;
    }
    if (s->open->n >= (size_t)s->map->batch_size) {
        flush_open(s);
    } else if (s->map->batching_window_ms > 0 && !ev_is_active(&s->window)) {
        ev_timer_set(&s->window, s->map->batching_window_ms / 1000.0, 0.);
        ev_timer_start(s->env.loop, &s->window);
    }
}

/* ---- receive loops ---------------------------------------------------------------------- */

static bool can_receive(const sqs_source *s)
{
    return s->state == ESM_SOURCE_RUNNING && s->n_inflight < s->max_batches;
}

/* A failed receive backs off, 0.5 s doubling to 30 s; the messages it may have taken return
 * after the visibility timeout. */
static void receive_failed(sqs_poller *p, const char *type, const char *message)
{
    sqs_source *s = p->src;
    p->errors++;
    s->env.stats->source_errors++;
    set_error(s, "ReceiveMessage failed: ", message);
    double delay = p->errors < 6 ? (double)(1u << p->errors) / 2.0 : 30.0;
    if (p->errors == 1 || p->errors % 10 == 0)
        ESM_WARN(s->env.log_ctx, "ReceiveMessage failed (%s: %s); retry in %.1f s", type, message,
                 delay);
    ev_timer_set(&p->backoff, delay, 0.);
    ev_timer_start(s->env.loop, &p->backoff);
    maybe_stopped(s);
}

static void on_received(const esm_aws_result *res, void *arg)
{
    sqs_poller *p = arg;
    sqs_source *s = p->src;
    p->call = NULL;
    if (!res->ok) {
        receive_failed(p, res->error_type, res->message);
        return;
    }
    esm_sqs_msg *msgs[SQS_MAX_RECEIVE];
    size_t skipped = 0;
    char why[128];
    int n = esm_sqs_parse_receive(&s->parser, res->body, res->body_len, &s->render, msgs,
                                  SQS_MAX_RECEIVE, &skipped, why, sizeof why);
    if (n < 0) {
        /* A 2xx answer that is no ReceiveMessage response (cut short, a proxy's page) is a
         * failed call: receiving again at once would hammer the endpoint in a loop. */
        esm_sqs_parser_trim(&s->parser, SQS_PARSER_KEEP);
        receive_failed(p, "InvalidResponse", why);
        return;
    }
    if (p->errors) ESM_INFO(s->env.log_ctx, "ReceiveMessage works again");
    p->errors = 0;
    if (skipped) ESM_WARN(s->env.log_ctx, "skipped %zu malformed messages", skipped);
    esm_sqs_msg *filtered[SQS_MAX_RECEIVE];
    size_t n_filtered = 0;
    for (int i = 0; i < n; i++) {
        esm_sqs_msg *m = msgs[i];
        s->env.stats->polled++;
        ESM_TRACE(s->env.log_ctx, "received %s (receive count %d)", m->message_id,
                  m->receive_count);
        bool match = !s->env.filter || esm_filter_match(s->env.filter, m->record, m->record_len,
                                                        m->body, m->body_len);
        m->body = NULL; /* it points into the response or the parser */
        if (s->state != ESM_SOURCE_RUNNING) {
            esm_sqs_msg_free(m); /* stopping: it returns after the visibility timeout */
            continue;
        }
        if (!match) {
            s->env.stats->filtered_out++;
            filtered[n_filtered++] = m;
            continue;
        }
        add_to_batch(s, m);
    }
    /* AWS deletes messages that match no filter. */
    esm_sqs_ops_delete(s->ops, filtered, n_filtered);
    for (size_t i = 0; i < n_filtered; i++)
        esm_sqs_msg_free(filtered[i]);
    esm_sqs_parser_trim(&s->parser, SQS_PARSER_KEEP);
    if (s->map->batching_window_ms == 0) flush_open(s);
    maybe_stopped(s);
    poller_kick(p);
}

static void poller_kick(sqs_poller *p)
{
    sqs_source *s = p->src;
    if (p->call || ev_is_active(&p->backoff) || !can_receive(s)) return;
    size_t want = SQS_MAX_RECEIVE;
    size_t room = (size_t)s->map->batch_size - (s->open ? s->open->n : 0);
    if (room < want) want = room;
    if (want == 0) want = 1;
    esm_buf body;
    esm_buf_init(&body);
    esm_buf_puts(&body, "{\"QueueUrl\":");
    esm_buf_json_cstr(&body, s->queue_url);
    esm_buf_printf(&body,
                   ",\"MaxNumberOfMessages\":%zu,\"WaitTimeSeconds\":%d,"
                   "\"AttributeNames\":[\"All\"],\"MessageSystemAttributeNames\":[\"All\"],"
                   "\"MessageAttributeNames\":[\"All\"]}",
                   want, SQS_WAIT_SECONDS);
    if (!body.failed)
        p->call = esm_aws_json_call_raw(s->aws, "AmazonSQS.ReceiveMessage", "1.0", body.data,
                                        body.len, esm_sqs_receive_timeout_ms, on_received, p);
    esm_buf_free(&body);
    if (!p->call) {
        ev_timer_set(&p->backoff, 1.0, 0.);
        ev_timer_start(s->env.loop, &p->backoff);
    }
}

static void on_poller_backoff(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    poller_kick(w->data);
}

/* ---- setup: queue URL and attributes ---------------------------------------------------- */

static void setup_step(sqs_source *s);

static void setup_failed(sqs_source *s, const char *what, const esm_aws_result *res)
{
    s->setup_errors++;
    s->env.stats->source_errors++;
    char detail[300];
    snprintf(detail, sizeof detail, "%s failed: %.100s %.150s", what, res->error_type,
             res->message);
    set_error(s, "", detail);
    double delay = s->setup_errors < 6 ? (double)(1u << s->setup_errors) / 2.0 : 30.0;
    if (s->setup_errors == 1 || s->setup_errors % 10 == 0)
        ESM_WARN(s->env.log_ctx, "%s; retry in %.1f s", detail, delay);
    ev_timer_set(&s->setup_retry, delay, 0.);
    ev_timer_start(s->env.loop, &s->setup_retry);
}

static void start_running(sqs_source *s)
{
    const esm_mapping_config *m = s->map;
    int fn_timeout = m->function->timeout_seconds;
    if (fn_timeout > s->visibility_timeout_s) {
        /* AWS refuses this mapping with the same words (docs/design.md "SQS semantics"). */
        snprintf(s->last_error, sizeof s->last_error,
                 "Queue visibility timeout: %d seconds is less than Function timeout: %d seconds",
                 s->visibility_timeout_s, fn_timeout);
        ESM_ERROR(s->env.log_ctx, "%s; the mapping does not poll", s->last_error);
        s->state = ESM_SOURCE_STOPPED;
        return;
    }
    int recommended = 6 * fn_timeout + m->batching_window_ms / 1000;
    if (s->visibility_timeout_s < recommended)
        ESM_WARN(s->env.log_ctx,
                 "queue visibility timeout %d s is below AWS's recommendation of 6 x function "
                 "timeout + batching window = %d s; throttled batches may be redelivered",
                 s->visibility_timeout_s, recommended);
    s->state = ESM_SOURCE_RUNNING;
    s->last_error[0] = '\0';
    ESM_INFO(s->env.log_ctx,
             "polling %s (visibility timeout %d s, batch size %d, window %d ms, %zu batches in "
             "flight, %d receive loops)",
             s->queue_url, s->visibility_timeout_s, m->batch_size, m->batching_window_ms,
             s->max_batches, s->n_pollers);
    kick_all(s);
}

static void on_attributes(const esm_aws_result *res, void *arg)
{
    sqs_source *s = arg;
    s->setup_call = NULL;
    if (s->state != ESM_SOURCE_REACHING) {
        maybe_stopped(s);
        return;
    }
    if (!res->ok) {
        setup_failed(s, "GetQueueAttributes", res);
        return;
    }
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(res->json, "Attributes");
    const cJSON *vt = cJSON_GetObjectItemCaseSensitive(attrs, "VisibilityTimeout");
    s->visibility_timeout_s = cJSON_IsString(vt) ? atoi(vt->valuestring) : 30;
    s->setup_errors = 0;
    start_running(s);
}

static void on_queue_url(const esm_aws_result *res, void *arg)
{
    sqs_source *s = arg;
    s->setup_call = NULL;
    if (s->state != ESM_SOURCE_REACHING) {
        maybe_stopped(s);
        return;
    }
    const cJSON *url = res->ok ? cJSON_GetObjectItemCaseSensitive(res->json, "QueueUrl") : NULL;
    if (!cJSON_IsString(url)) {
        setup_failed(s, "GetQueueUrl", res);
        return;
    }
    free(s->queue_url);
    s->queue_url = strdup(url->valuestring);
    esm_sqs_ops_set_queue_url(s->ops, s->queue_url);
    setup_step(s);
}

static void setup_step(sqs_source *s)
{
    esm_buf body;
    esm_buf_init(&body);
    if (!s->queue_url) {
        esm_buf_puts(&body, "{\"QueueName\":");
        esm_buf_json_cstr(&body, s->map->source_name);
        esm_buf_puts(&body, ",\"QueueOwnerAWSAccountId\":");
        esm_buf_json_cstr(&body, s->map->source_account);
        esm_buf_putc(&body, '}');
        s->setup_call = esm_aws_json_call(s->aws, "AmazonSQS.GetQueueUrl", "1.0", body.data,
                                          body.len, 10000, on_queue_url, s);
    } else {
        esm_buf_puts(&body, "{\"QueueUrl\":");
        esm_buf_json_cstr(&body, s->queue_url);
        esm_buf_puts(&body, ",\"AttributeNames\":[\"All\"]}");
        s->setup_call = esm_aws_json_call(s->aws, "AmazonSQS.GetQueueAttributes", "1.0", body.data,
                                          body.len, 10000, on_attributes, s);
    }
    esm_buf_free(&body);
    if (!s->setup_call) {
        ev_timer_set(&s->setup_retry, 1.0, 0.);
        ev_timer_start(s->env.loop, &s->setup_retry);
    }
}

static void on_setup_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    setup_step(w->data);
}

/* ---- the source table ------------------------------------------------------------------- */

static void *sqs_create(const esm_source_env *env, esm_err *err)
{
    sqs_source *s = calloc(1, sizeof *s);
    if (!s) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return NULL;
    }
    s->env = *env;
    s->map = env->mapping;
    const esm_config *cfg = env->config;
    esm_aws_options opt = {.region = s->map->source_region ? s->map->source_region : cfg->region,
                           .endpoint = cfg->endpoint_sqs,
                           .access_key_id = cfg->access_key_id,
                           .secret_access_key = cfg->secret_access_key,
                           .session_token = cfg->session_token};
    s->aws = esm_aws_create(env->http, "sqs", &opt);
    s->render.queue_arn = s->map->event_source_arn;
    s->render.region = opt.region;
    esm_sqs_parser_init(&s->parser);
    s->ops = esm_sqs_ops_create(env, s->aws, on_ops_idle, s);
    if (!s->aws || !s->ops) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        esm_sqs_ops_destroy(s->ops);
        esm_aws_destroy(s->aws);
        free(s);
        return NULL;
    }
    size_t cap = (size_t)s->map->function->max_concurrency;
    if (s->map->scaling_max_concurrency > 0 && (size_t)s->map->scaling_max_concurrency < cap)
        cap = (size_t)s->map->scaling_max_concurrency;
    s->max_batches = cap;
    s->n_pollers = cap < SQS_MAX_POLLERS ? (int)cap : SQS_MAX_POLLERS;
    for (int i = 0; i < s->n_pollers; i++) {
        s->pollers[i].src = s;
        ev_timer_init(&s->pollers[i].backoff, on_poller_backoff, 0., 0.);
        s->pollers[i].backoff.data = &s->pollers[i];
    }
    ev_timer_init(&s->window, on_window, 0., 0.);
    s->window.data = s;
    ev_timer_init(&s->setup_retry, on_setup_retry, 0., 0.);
    s->setup_retry.data = s;
    ev_timer_init(&s->stopped_notify, on_stopped_notify, 0., 0.);
    s->stopped_notify.data = s;
    ev_timer_init(&s->stop_deadline, on_stop_deadline, 0., 0.);
    s->stop_deadline.data = s;
    return s;
}

static int sqs_start(void *source, esm_err *err)
{
    (void)err;
    sqs_source *s = source;
    s->state = ESM_SOURCE_REACHING;
    setup_step(s);
    return 0;
}

static void on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    sqs_source *s = w->data;
    ESM_WARN(s->env.log_ctx,
             "%zu batches still in flight at the shutdown deadline; they are abandoned "
             "unacknowledged and return to the queue",
             s->n_inflight);
    while (s->inflight) {
        sqs_batch *b = s->inflight;
        if (b->call) esm_invoker_cancel(b->call);
        b->call = NULL;
        ev_timer_stop(s->env.loop, &b->retry_timer);
        ev_timer_stop(s->env.loop, &b->heartbeat);
        inflight_unlink(s, b);
        batch_free(b);
    }
    esm_sqs_ops_abandon(s->ops);
    maybe_stopped(s);
}

static void sqs_stop(void *source, esm_source_stopped_cb done, void *arg)
{
    sqs_source *s = source;
    s->stopped_cb = done;
    s->stopped_arg = arg;
    ev_timer_stop(s->env.loop, &s->setup_retry);
    if (s->setup_call) esm_http_cancel(s->setup_call);
    s->setup_call = NULL;
    bool was_running = s->state == ESM_SOURCE_RUNNING;
    s->state = ESM_SOURCE_STOPPING;
    /* Receives still waiting are cancelled: anything they had taken reappears after the
     * visibility timeout. The open batch is dropped unacknowledged for the same reason. */
    for (int i = 0; i < s->n_pollers; i++) {
        sqs_poller *p = &s->pollers[i];
        ev_timer_stop(s->env.loop, &p->backoff);
        if (p->call) esm_http_cancel(p->call);
        p->call = NULL;
    }
    ev_timer_stop(s->env.loop, &s->window);
    if (s->open) batch_free(s->open);
    s->open = NULL;
    /* Throttle retries waiting on a timer will not run again. */
    for (sqs_batch *b = s->inflight, *next; b; b = next) {
        next = b->next;
        if (!b->call && ev_is_active(&b->retry_timer)) batch_finish(b, NULL);
    }
    if (was_running && s->n_inflight)
        ESM_INFO(s->env.log_ctx, "stopping: waiting for %zu batches in flight", s->n_inflight);
    double grace = s->env.config->shutdown_grace_seconds;
    ev_timer_set(&s->stop_deadline, grace, 0.);
    ev_timer_start(s->env.loop, &s->stop_deadline);
    maybe_stopped(s);
}

static void sqs_destroy(void *source)
{
    sqs_source *s = source;
    if (!s) return;
    for (int i = 0; i < s->n_pollers; i++) {
        ev_timer_stop(s->env.loop, &s->pollers[i].backoff);
        if (s->pollers[i].call) esm_http_cancel(s->pollers[i].call);
    }
    if (s->setup_call) esm_http_cancel(s->setup_call);
    ev_timer_stop(s->env.loop, &s->setup_retry);
    ev_timer_stop(s->env.loop, &s->window);
    ev_timer_stop(s->env.loop, &s->stop_deadline);
    ev_timer_stop(s->env.loop, &s->stopped_notify);
    if (s->open) batch_free(s->open);
    while (s->inflight) {
        sqs_batch *b = s->inflight;
        if (b->call) esm_invoker_cancel(b->call);
        ev_timer_stop(s->env.loop, &b->retry_timer);
        ev_timer_stop(s->env.loop, &b->heartbeat);
        inflight_unlink(s, b);
        batch_free(b);
    }
    esm_sqs_ops_destroy(s->ops);
    esm_aws_destroy(s->aws);
    esm_sqs_stuck_free(&s->stuck);
    esm_sqs_parser_free(&s->parser);
    free(s->queue_url);
    free(s);
}

static void sqs_status(void *source, esm_buf *out)
{
    sqs_source *s = source;
    esm_buf_puts(out, ",\"QueueUrl\":");
    esm_buf_json_cstr(out, s->queue_url);
    esm_buf_printf(out,
                   ",\"VisibilityTimeout\":%d,\"BatchesInFlight\":%zu,\"MaxBatchesInFlight\":%zu,"
                   "\"OpenBatchSize\":%zu,\"PendingDeletes\":%zu",
                   s->visibility_timeout_s, s->n_inflight, s->max_batches, s->open ? s->open->n : 0,
                   esm_sqs_ops_pending(s->ops));
    esm_sqs_stuck_status(&s->stuck, out);
}

static esm_source_phase sqs_phase(void *source)
{
    return ((const sqs_source *)source)->state;
}

static const char *sqs_last_error(void *source)
{
    const sqs_source *s = source;
    return s->last_error[0] ? s->last_error : NULL;
}

/* A failed message returns after the visibility timeout (or RetryBackoff): an entry with no
 * failure for a few of those periods has left the queue (DLQ, deleted, expired). */
static int64_t sqs_stuck_since(void *source)
{
    sqs_source *s = source;
    int64_t period = (int64_t)s->visibility_timeout_s * 1000;
    if (s->map->retry_backoff_set && s->map->retry_backoff_max_ms > period)
        period = s->map->retry_backoff_max_ms;
    return esm_sqs_stuck_since(&s->stuck, esm_now_ms(), 2 * period + 30000);
}

const esm_source_ops esm_sqs_source = {
    .name = "sqs",
    .create = sqs_create,
    .start = sqs_start,
    .stop = sqs_stop,
    .destroy = sqs_destroy,
    .status = sqs_status,
    .phase = sqs_phase,
    .last_error = sqs_last_error,
    .stuck_since = sqs_stuck_since,
};
