/* The Kinesis source (Kinesis Data Streams API, JSON 1.1): discovers shards with ListShards
 * (every 30 s, and right after a shard ends), reads each shard in order once its parents are
 * drained, and hands batches to ordered lanes (lane/esm_lane.h), which run the retry / bisect /
 * age policy and store the checkpoint. Checkpoints live in the store per (mapping, stream ARN,
 * shard); a checkpoint that does not fit the stream is reported and never used.
 * One shard's machinery is in esm_kinesis_shard.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "pollers/kinesis/esm_kinesis_int.h"

long esm_kinesis_call_timeout_ms = 15000L;

static void list_shards(esm_kinesis_stream *s, const char *next_token);
static void discovery_failed(esm_kinesis_stream *s, const char *what, const esm_aws_result *res,
                             const char *why);
static void on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents);
static void stream_maybe_stopped(esm_kinesis_stream *s);

static void set_error(esm_kinesis_stream *s, const char *prefix, const char *detail)
{
    snprintf(s->last_error, sizeof s->last_error, "%.60s%.190s", prefix, detail);
}

static esm_kinesis_shard *find_shard(esm_kinesis_stream *s, const char *id)
{
    for (size_t i = 0; i < s->n_shards; i++)
        if (strcmp(s->shards[i]->info.id, id) == 0) return s->shards[i];
    return NULL;
}

/* ---- what the store holds -------------------------------------------------------------------- */

static int load_store(esm_kinesis_stream *s, esm_err *err)
{
    const esm_mapping_config *m = s->map;
    if (esm_store_checkpoint_list(s->env.store, m->uuid, m->event_source_arn, &s->stored,
                                  &s->n_stored, err) != 0)
        return -1;
    if (m->starting_position != ESM_START_LATEST) return 0;
    for (size_t i = 0; i < s->n_stored; i++) {
        const esm_store_lane *l = &s->stored[i];
        if (strcmp(l->lane, KIN_LATEST_MARKER) == 0 && l->position) {
            s->latest_since_ms = strtoll(l->position, NULL, 10);
            return 0;
        }
    }
    /* First start of a LATEST mapping: remember when, so that a shard read later (a child, or
     * any shard after a restart before its first checkpoint) starts from that moment. */
    s->latest_since_ms = esm_now_ms();
    s->latest_fresh = true;
    char pos[32];
    snprintf(pos, sizeof pos, "%lld", (long long)s->latest_since_ms);
    esm_store_step step = {.position = pos, .finished = true};
    return esm_store_advance(s->env.store, m->uuid, m->event_source_arn, KIN_LATEST_MARKER, &step,
                             err);
}

/* ---- discovery ------------------------------------------------------------------------------- */

static void start_ready_shards(esm_kinesis_stream *s)
{
    if (s->state != K_RUNNING || s->n_shards == 0) return;
    esm_kinesis_lineage_node *nodes = calloc(s->n_shards, sizeof *nodes);
    size_t *order = calloc(s->n_shards, sizeof *order);
    esm_kinesis_shard **listed = calloc(s->n_shards, sizeof *listed);
    if (!nodes || !order || !listed) goto out;
    size_t n = 0;
    for (size_t i = 0; i < s->n_shards; i++) {
        esm_kinesis_shard *sh = s->shards[i];
        if (!sh->listed) continue;
        listed[n] = sh;
        nodes[n].id = sh->info.id;
        nodes[n].parent = sh->info.parent;
        nodes[n].adjacent_parent = sh->info.adjacent_parent;
        nodes[n].finished = sh->state == KS_FINISHED;
        n++;
    }
    if (esm_kinesis_lineage_order(nodes, n, order) != 0)
        ESM_WARN(s->env.log_ctx, "ListShards returned a cyclic shard lineage");
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (listed[i]->state == KS_WAITING &&
            esm_kinesis_lineage_gate(nodes, n, i) == ESM_KINESIS_SHARD_READY)
            esm_kinesis_shard_start(listed[i]);
    }
out:
    free(nodes);
    free(order);
    free(listed);
}

static void note_unknown_checkpoints(esm_kinesis_stream *s)
{
    char buf[sizeof s->unknown_shards] = "";
    size_t len = 0;
    for (size_t i = 0; i < s->n_stored; i++) {
        const esm_store_lane *l = &s->stored[i];
        if (l->lane[0] == '@' || strchr(l->lane, '/') || l->finished || !l->position) continue;
        esm_kinesis_shard *sh = find_shard(s, l->lane);
        if (sh && sh->listed) continue;
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", len ? "," : "", l->lane);
        if (w < 0 || (size_t)w >= sizeof buf - len) break;
        len += (size_t)w;
    }
    if (strcmp(buf, s->unknown_shards) != 0 && buf[0])
        ESM_ERROR(s->env.log_ctx,
                  "checkpoints stored for shards that stream %s does not have: %s (the stream "
                  "was re-created, or the shards expired); they are not used",
                  s->map->event_source_arn, buf);
    snprintf(s->unknown_shards, sizeof s->unknown_shards, "%s", buf);
}

static bool add_shard(esm_kinesis_stream *s, const esm_kinesis_shard_info *si)
{
    esm_kinesis_shard **p = realloc(s->shards, (s->n_shards + 1) * sizeof *p);
    if (!p) return false;
    s->shards = p;
    esm_kinesis_shard *sh = esm_kinesis_shard_new(s, si);
    if (!sh) return false;
    esm_kinesis_stored st;
    esm_kinesis_stored_shard(s->stored, s->n_stored, si->id, s->stream_created_ms, &st);
    snprintf(sh->checkpoint, sizeof sh->checkpoint, "%s", st.checkpoint);
    snprintf(sh->start_at, sizeof sh->start_at, "%s", st.start_at);
    sh->state = st.finished ? KS_FINISHED : KS_WAITING;
    if (st.stale) {
        char stored[25], created[25], why[160];
        esm_iso8601_ms(st.stored_at_ms, stored);
        esm_iso8601_ms(s->stream_created_ms, created);
        snprintf(why, sizeof why,
                 "it was stored at %s, before the stream was created at %s (the stream was "
                 "deleted and re-created)",
                 stored, created);
        esm_kinesis_shard_mismatch(sh, why);
    }
    sh->first_discovery = s->latest_fresh && !s->listed_once;
    sh->listed = true;
    s->shards[s->n_shards++] = sh;
    char parents[512];
    esm_kinesis_lineage_parents(si->parent, si->adjacent_parent, parents, sizeof parents);
    esm_err err;
    esm_err_clear(&err);
    if (esm_store_lane_register(s->env.store, s->map->uuid, s->map->event_source_arn, si->id,
                                parents[0] ? parents : NULL, &err) != 0)
        ESM_WARN(sh->log_ctx, "cannot record the shard in the state store: %s", err.message);
    ESM_INFO(sh->log_ctx, "shard found%s%s%s", parents[0] ? " (parents " : "", parents,
             parents[0] ? ")" : "");
    return true;
}

/* Replaces a shard's ListShards facts (a shard closes: it gets an ending sequence number). */
static void update_info(esm_kinesis_shard *sh, esm_kinesis_shard_info *si)
{
    free(sh->info.starting_seq);
    free(sh->info.ending_seq);
    sh->info.starting_seq = si->starting_seq;
    sh->info.ending_seq = si->ending_seq;
    si->starting_seq = si->ending_seq = NULL;
}

static void apply_listing(esm_kinesis_stream *s)
{
    for (size_t i = 0; i < s->n_shards; i++)
        s->shards[i]->listed = false;
    size_t added = 0;
    for (size_t i = 0; i < s->list_n; i++) {
        esm_kinesis_shard_info *si = &s->list_acc[i];
        esm_kinesis_shard *sh = find_shard(s, si->id);
        if (sh) {
            sh->listed = true;
            update_info(sh, si);
        } else if (add_shard(s, si)) {
            added++;
        } else {
            ESM_ERROR(s->env.log_ctx, "out of memory adding shard %s", si->id);
        }
    }
    if (!s->listed_once)
        ESM_INFO(s->env.log_ctx, "stream %s has %zu shards", s->map->event_source_arn, s->list_n);
    else if (added)
        ESM_INFO(s->env.log_ctx, "%zu new shards (resharding)", added);
    s->listed_once = true;
    note_unknown_checkpoints(s);
    start_ready_shards(s);
}

static void schedule_list(esm_kinesis_stream *s, double delay)
{
    ev_timer_stop(s->env.loop, &s->list_timer);
    ev_timer_set(&s->list_timer, delay, 0.);
    ev_timer_start(s->env.loop, &s->list_timer);
}

static void on_list(const esm_aws_result *res, void *arg)
{
    esm_kinesis_stream *s = arg;
    s->list_call = NULL;
    if (s->state != K_RUNNING) {
        stream_maybe_stopped(s);
        return;
    }
    char *next = NULL;
    char why[160] = "";
    if (res->ok && esm_kinesis_parse_list_shards(res->json, &s->list_acc, &s->list_n, &next, why,
                                                 sizeof why) == 0) {
        if (next) {
            list_shards(s, next);
            free(next);
            return;
        }
        if (s->list_errors) ESM_INFO(s->env.log_ctx, "ListShards works again");
        s->list_errors = 0;
        s->last_error[0] = '\0';
        apply_listing(s);
        esm_kinesis_shard_info_free(s->list_acc, s->list_n);
        s->list_acc = NULL;
        s->list_n = 0;
        schedule_list(s, KIN_LIST_INTERVAL_S);
        return;
    }
    esm_kinesis_shard_info_free(s->list_acc, s->list_n);
    s->list_acc = NULL;
    s->list_n = 0;
    discovery_failed(s, "ListShards", res, why);
}

static void describe_stream(esm_kinesis_stream *s);

static void discovery_failed(esm_kinesis_stream *s, const char *what, const esm_aws_result *res,
                             const char *why)
{
    s->list_errors++;
    s->env.stats->source_errors++;
    char detail[300];
    snprintf(detail, sizeof detail, "%s failed: %.100s %.150s", what,
             why && why[0] ? "" : res->error_type, why && why[0] ? why : res->message);
    set_error(s, "", detail);
    double delay = s->list_errors < 6 ? (double)(1u << s->list_errors) / 2.0 : 30.0;
    if (s->list_errors == 1 || s->list_errors % 10 == 0)
        ESM_WARN(s->env.log_ctx, "%s; retry in %.1f s", detail, delay);
    schedule_list(s, delay);
}

/* The stream's creation time tells checkpoints of an earlier stream of the same name apart. */
static void on_describe(const esm_aws_result *res, void *arg)
{
    esm_kinesis_stream *s = arg;
    s->list_call = NULL;
    if (s->state != K_RUNNING) {
        stream_maybe_stopped(s);
        return;
    }
    if (!res->ok && strcmp(res->error_type, "UnknownOperationException") != 0) {
        discovery_failed(s, "DescribeStreamSummary", res, NULL);
        return;
    }
    int64_t created = res->ok ? esm_kinesis_parse_stream_created(res->json) : -1;
    s->stream_created_ms = created > 0 ? created : 0;
    s->described = true;
    list_shards(s, NULL);
}

static void describe_stream(esm_kinesis_stream *s)
{
    esm_buf body;
    esm_buf_init(&body);
    esm_kinesis_body_stream(&body, s->map->source_name);
    if (!body.failed)
        s->list_call = esm_aws_json_call(s->aws, KIN_TARGET("DescribeStreamSummary"), "1.1",
                                         body.data, body.len, KIN_CALL_TIMEOUT_MS, on_describe, s);
    esm_buf_free(&body);
    if (!s->list_call) schedule_list(s, 1.0);
}

static void list_shards(esm_kinesis_stream *s, const char *next_token)
{
    esm_buf body;
    esm_buf_init(&body);
    esm_kinesis_body_list_shards(&body, s->map->source_name, next_token);
    if (!body.failed)
        s->list_call = esm_aws_json_call(s->aws, KIN_TARGET("ListShards"), "1.1", body.data,
                                         body.len, KIN_CALL_TIMEOUT_MS, on_list, s);
    esm_buf_free(&body);
    if (!s->list_call) {
        esm_kinesis_shard_info_free(s->list_acc, s->list_n);
        s->list_acc = NULL;
        s->list_n = 0;
        schedule_list(s, 1.0);
    }
}

static void on_list_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kinesis_stream *s = w->data;
    if (s->state != K_RUNNING || s->list_call) return;
    if (s->described)
        list_shards(s, NULL);
    else
        describe_stream(s);
}

static void stream_refresh_shards(esm_kinesis_stream *s)
{
    if (s->state == K_RUNNING && !s->list_call) schedule_list(s, 0.);
}

static void stream_shard_finished(esm_kinesis_stream *s, esm_kinesis_shard *sh)
{
    (void)sh;
    start_ready_shards(s);    /* children already known */
    stream_refresh_shards(s); /* children not listed yet */
}

/* ---- stopping -------------------------------------------------------------------------------- */

static void stream_maybe_stopped(esm_kinesis_stream *s)
{
    if (s->state != K_STOPPING || s->list_call) return;
    for (size_t i = 0; i < s->n_shards; i++)
        if (!esm_kinesis_shard_idle(s->shards[i])) return;
    s->state = K_STOPPED;
    ev_timer_stop(s->env.loop, &s->stop_deadline);
    ev_timer_stop(s->env.loop, &s->stop_tick);
    ESM_INFO(s->env.log_ctx, "stopped");
    /* Reported from the loop: the engine may destroy the source in the callback. */
    ev_timer_set(&s->stopped_notify, 0., 0.);
    ev_timer_start(s->env.loop, &s->stopped_notify);
}

static void on_stopped_notify(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kinesis_stream *s = w->data;
    if (s->stopped_cb) s->stopped_cb(s->stopped_arg);
}

static void on_stop_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kinesis_stream *s = w->data;
    for (size_t i = 0; i < s->n_shards; i++)
        esm_kinesis_shard_settle(s->shards[i]);
    stream_maybe_stopped(s);
}

static void on_stop_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kinesis_stream *s = w->data;
    ESM_WARN(s->env.log_ctx, "batches still in flight at the shutdown deadline are abandoned "
                             "unacknowledged (read again after the checkpoint on restart)");
    for (size_t i = 0; i < s->n_shards; i++)
        esm_kinesis_shard_abandon(s->shards[i]);
    stream_maybe_stopped(s);
}

const esm_kinesis_stream_up esm_kinesis_stream_calls = {
    .shard_finished = stream_shard_finished,
    .refresh_shards = stream_refresh_shards,
    .maybe_stopped = stream_maybe_stopped,
};

/* ---- the source table ------------------------------------------------------------------------ */

static void *kinesis_create(const esm_source_env *env, esm_err *err)
{
    esm_kinesis_stream *s = calloc(1, sizeof *s);
    if (!s) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return NULL;
    }
    s->up = &esm_kinesis_stream_calls;
    s->env = *env;
    s->map = env->mapping;
    const esm_config *cfg = env->config;
    if (!s->map->source_name || !s->map->event_source_arn) {
        esm_err_set(err, ESM_ERR_INVALID, false, "a Kinesis mapping needs a stream ARN");
        free(s);
        return NULL;
    }
    s->region = s->map->source_region ? s->map->source_region : cfg->region;
    esm_aws_options opt = {.region = s->region,
                           .endpoint = cfg->endpoint_kinesis,
                           .access_key_id = cfg->access_key_id,
                           .secret_access_key = cfg->secret_access_key,
                           .session_token = cfg->session_token};
    s->aws = esm_aws_create(env->http, "kinesis", &opt);
    if (!s->aws) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        free(s);
        return NULL;
    }
    esm_kinesis_identity_arn(s->map->source_account, s->identity_arn, sizeof s->identity_arn);
    esm_source_stats *st = env->stats;
    s->counters = (esm_lane_counters){.invoked = &st->invoked,
                                      .invocations = &st->invocations,
                                      .failed_invoke = &st->failed_invoke,
                                      .throttled = &st->throttled,
                                      .dropped = &st->dropped,
                                      .on_failure_queued = &st->on_failure_queued,
                                      .committed = &st->committed,
                                      .checkpoint_write_failures = &st->checkpoint_write_failures,
                                      .invokes = &st->invokes};
    ev_timer_init(&s->list_timer, on_list_timer, 0., 0.);
    s->list_timer.data = s;
    ev_timer_init(&s->stopped_notify, on_stopped_notify, 0., 0.);
    s->stopped_notify.data = s;
    ev_timer_init(&s->stop_deadline, on_stop_deadline, 0., 0.);
    s->stop_deadline.data = s;
    ev_timer_init(&s->stop_tick, on_stop_tick, 0.1, 0.1);
    s->stop_tick.data = s;
    return s;
}

static int kinesis_start(void *source, esm_err *err)
{
    esm_kinesis_stream *s = source;
    if (load_store(s, err) != 0) {
        ESM_ERROR(s->env.log_ctx, "cannot read the stored checkpoints: %s", err->message);
        return -1;
    }
    s->state = K_RUNNING;
    const esm_mapping_config *m = s->map;
    ESM_INFO(s->env.log_ctx,
             "reading stream %s (batch size %d, window %d ms, parallelization %d, start %s, %zu "
             "stored lanes)",
             m->event_source_arn, m->batch_size, m->batching_window_ms,
             m->parallelization_factor > 1 ? m->parallelization_factor : 1,
             esm_starting_position_name(m->starting_position)
                 ? esm_starting_position_name(m->starting_position)
                 : "-",
             s->n_stored);
    describe_stream(s);
    return 0;
}

static void kinesis_stop(void *source, esm_source_stopped_cb done, void *arg)
{
    esm_kinesis_stream *s = source;
    s->stopped_cb = done;
    s->stopped_arg = arg;
    ev_timer_stop(s->env.loop, &s->list_timer);
    if (s->list_call) esm_http_cancel(s->list_call);
    s->list_call = NULL;
    esm_kinesis_shard_info_free(s->list_acc, s->list_n);
    s->list_acc = NULL;
    s->list_n = 0;
    s->state = K_STOPPING;
    for (size_t i = 0; i < s->n_shards; i++)
        esm_kinesis_shard_stop(s->shards[i]);
    ev_timer_set(&s->stop_deadline, s->env.config->shutdown_grace_seconds, 0.);
    ev_timer_start(s->env.loop, &s->stop_deadline);
    ev_timer_start(s->env.loop, &s->stop_tick);
    stream_maybe_stopped(s);
}

static void kinesis_destroy(void *source)
{
    esm_kinesis_stream *s = source;
    if (!s) return;
    ev_timer_stop(s->env.loop, &s->list_timer);
    ev_timer_stop(s->env.loop, &s->stop_deadline);
    ev_timer_stop(s->env.loop, &s->stop_tick);
    ev_timer_stop(s->env.loop, &s->stopped_notify);
    if (s->list_call) esm_http_cancel(s->list_call);
    s->state = K_STOPPED;
    for (size_t i = 0; i < s->n_shards; i++)
        esm_kinesis_shard_free(s->shards[i]);
    free(s->shards);
    esm_kinesis_shard_info_free(s->list_acc, s->list_n);
    esm_store_lanes_free(s->stored, s->n_stored);
    esm_aws_destroy(s->aws);
    free(s);
}

static esm_source_phase kinesis_phase(void *source)
{
    const esm_kinesis_stream *s = source;
    switch (s->state) {
    case K_INIT:
        return ESM_SOURCE_CREATED;
    case K_RUNNING:
        return s->listed_once ? ESM_SOURCE_RUNNING : ESM_SOURCE_REACHING;
    case K_STOPPING:
        return ESM_SOURCE_STOPPING;
    case K_STOPPED:
        break;
    }
    return ESM_SOURCE_STOPPED;
}

static const char *kinesis_last_error(void *source)
{
    const esm_kinesis_stream *s = source;
    return s->last_error[0] ? s->last_error : NULL;
}

static void kinesis_status(void *source, esm_buf *out)
{
    esm_kinesis_stream *s = source;
    esm_buf_puts(out, ",\"StreamArn\":");
    esm_buf_json_cstr(out, s->map->event_source_arn);
    esm_buf_puts(out, ",\"Endpoint\":");
    esm_buf_json_cstr(out, esm_aws_endpoint(s->aws));
    if (s->map->starting_position == ESM_START_LATEST && s->latest_since_ms) {
        char iso[25];
        esm_iso8601_ms(s->latest_since_ms, iso);
        esm_buf_puts(out, ",\"LatestSince\":");
        esm_buf_json_cstr(out, iso);
    }
    esm_buf_puts(out, ",\"Shards\":[");
    bool first = true;
    for (size_t i = 0; i < s->n_shards; i++) {
        if (!s->shards[i]->listed && s->shards[i]->state == KS_FINISHED) continue;
        if (!first) esm_buf_putc(out, ',');
        esm_kinesis_shard_status(s->shards[i], out);
        first = false;
    }
    esm_buf_puts(out, "],\"UnknownCheckpointShards\":");
    esm_buf_json_cstr(out, s->unknown_shards[0] ? s->unknown_shards : NULL);
}

static int64_t esm_kinesis_stuck_since(void *source)
{
    esm_kinesis_stream *s = source;
    int64_t since = 0;
    for (size_t i = 0; i < s->n_shards; i++)
        for (unsigned l = 0; l < s->shards[i]->n_lanes; l++) {
            int64_t b = esm_lane_blocked_since_ms(s->shards[i]->lanes[l].lane);
            if (b > 0 && (since == 0 || b < since)) since = b;
        }
    return since;
}

static void kinesis_lane_gauges(void *source, esm_lane_gauge_fn emit, void *arg)
{
    esm_kinesis_stream *s = source;
    int64_t now = esm_now_ms();
    for (size_t i = 0; i < s->n_shards; i++) {
        esm_kinesis_shard *sh = s->shards[i];
        if (sh->state == KS_FINISHED || sh->state == KS_WAITING) continue;
        emit(arg, sh->info.id, ESM_GAUGE_ITERATOR_AGE_SECONDS,
             (double)esm_kinesis_shard_iterator_age_ms(sh, now) / 1000.0);
        for (unsigned l = 0; l < sh->n_lanes; l++) {
            const esm_kinesis_lane *kl = &sh->lanes[l];
            int64_t b = esm_lane_blocked_since_ms(kl->lane);
            emit(arg, kl->key, ESM_GAUGE_LANE_BLOCKED_SECONDS,
                 b > 0 && now > b ? (double)(now - b) / 1000.0 : 0.0);
            emit(arg, kl->key, ESM_GAUGE_LANE_IN_FLIGHT, kl->in_batch ? (double)kl->n_batch : 0.0);
        }
    }
}

const esm_source_ops esm_kinesis_source = {
    .name = "kinesis",
    .create = kinesis_create,
    .start = kinesis_start,
    .stop = kinesis_stop,
    .destroy = kinesis_destroy,
    .status = kinesis_status,
    .phase = kinesis_phase,
    .last_error = kinesis_last_error,
    .stuck_since = esm_kinesis_stuck_since,
    .lane_gauges = kinesis_lane_gauges,
    .move = esm_kinesis_move,
    .position_means = "the last sequence number processed: the shard is read after it",
    .source_key = esm_kinesis_source_key,
};
