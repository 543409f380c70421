#include "engine/esm_mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"

struct esm_mapping {
    esm_source_env env;
    esm_source_stats stats;
    const esm_source_ops *ops;
    void *source;
    char log_ctx[96];
};

static esm_filter_source filter_source(esm_source_type t)
{
    switch (t) {
    case ESM_SRC_SQS:
        return ESM_FILTER_SRC_SQS;
    case ESM_SRC_KINESIS:
        return ESM_FILTER_SRC_KINESIS;
    case ESM_SRC_KAFKA:
        return ESM_FILTER_SRC_KAFKA;
    }
    return ESM_FILTER_SRC_SQS;
}

esm_mapping *esm_mapping_create(const esm_source_env *env, esm_err *err)
{
    const esm_mapping_config *mc = env->mapping;
    const esm_source_ops *ops = esm_source_ops_for(mc->source);
    if (!ops) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "%s sources are not implemented in this version of esmd",
                    esm_source_type_name(mc->source));
        return NULL;
    }
    esm_mapping *m = calloc(1, sizeof *m);
    if (!m) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return NULL;
    }
    m->ops = ops;
    m->env = *env;
    snprintf(m->log_ctx, sizeof m->log_ctx, "%s %s", mc->function_name,
             mc->source_name ? mc->source_name : mc->uuid);
    m->env.log_ctx = m->log_ctx;
    m->env.stats = &m->stats;
    if (mc->n_filters > 0) {
        char why[512];
        m->env.filter = esm_filter_compile((const char *const *)mc->filter_patterns, mc->n_filters,
                                           filter_source(mc->source), why, sizeof why);
        if (!m->env.filter) {
            esm_err_set(err, ESM_ERR_INVALID, false, "%s", why);
            free(m);
            return NULL;
        }
    }
    m->source = ops->create(&m->env, err);
    if (!m->source) {
        esm_filter_destroy(m->env.filter);
        free(m);
        return NULL;
    }
    return m;
}

int esm_mapping_start(esm_mapping *m, esm_err *err)
{
    ESM_INFO(m->log_ctx, "starting mapping %s (%s source)", m->env.mapping->uuid, m->ops->name);
    return m->ops->start(m->source, err);
}

void esm_mapping_stop(esm_mapping *m, esm_source_stopped_cb done, void *arg)
{
    m->ops->stop(m->source, done, arg);
}

void esm_mapping_destroy(esm_mapping *m)
{
    if (!m) return;
    m->ops->destroy(m->source);
    esm_filter_destroy(m->env.filter);
    free(m);
}

esm_source_phase esm_mapping_phase(const esm_mapping *m)
{
    return m->ops->phase(m->source);
}

bool esm_mapping_ready(const esm_mapping *m)
{
    return esm_mapping_phase(m) == ESM_SOURCE_RUNNING;
}

const esm_source_stats *esm_mapping_stats(const esm_mapping *m)
{
    return &m->stats;
}

const esm_mapping_config *esm_mapping_config_of(const esm_mapping *m)
{
    return m->env.mapping;
}

int64_t esm_mapping_stuck_since(const esm_mapping *m)
{
    return m->ops->stuck_since ? m->ops->stuck_since(m->source) : 0;
}

void esm_mapping_lane_gauges(const esm_mapping *m, esm_lane_gauge_fn emit, void *arg)
{
    if (m->ops->lane_gauges) m->ops->lane_gauges(m->source, emit, arg);
}

void esm_mapping_inherit_stats(esm_mapping *m, const esm_source_stats *from)
{
    /* The same counters go on across a restart on reload: Prometheus sees no reset. */
    m->stats = *from;
    m->stats.invokes.last_ok_ms = m->stats.invokes.last_failed_ms = 0;
    /* The new config may have fixed it; the next answer tells. */
    m->stats.invokes.misconfigured_since_ms = m->stats.invokes.misconfigured_logged_ms = 0;
}

const char *esm_mapping_problem(const esm_mapping *m)
{
    return m->ops->problem && m->source ? m->ops->problem(m->source) : NULL;
}

void esm_mapping_last_processing_result(const esm_mapping *m, esm_buf *out)
{
    const esm_invoke_stats *s = &m->stats.invokes;
    const char *problem = esm_mapping_problem(m);
    if (problem)
        esm_buf_printf(out, "PROBLEM: %s", problem);
    else if (!s->last_ok_ms && !s->last_failed_ms)
        esm_buf_puts(out, "No records processed");
    else
        esm_buf_puts(out,
                     s->last_ok_ms >= s->last_failed_ms ? "OK" : "PROBLEM: Function call failed");
}

static void put_iso(esm_buf *out, int64_t ms)
{
    if (ms <= 0) {
        esm_buf_puts(out, "null");
        return;
    }
    char iso[40];
    esm_iso8601_ms(ms, iso);
    esm_buf_json_cstr(out, iso);
}

void esm_mapping_status(esm_mapping *m, const char *state, esm_buf *out)
{
    const esm_mapping_config *mc = m->env.mapping;
    const esm_source_stats *st = &m->stats;
    int64_t now = esm_now_ms();
    int64_t stuck = esm_mapping_stuck_since(m);
    esm_buf_puts(out, "{\"UUID\":");
    esm_buf_json_cstr(out, mc->uuid);
    esm_buf_puts(out, ",\"FunctionName\":");
    esm_buf_json_cstr(out, mc->function_name);
    esm_buf_puts(out, ",\"FunctionArn\":");
    esm_buf_json_cstr(out, mc->function ? mc->function->arn : NULL);
    esm_buf_puts(out, ",\"EventSourceArn\":");
    esm_buf_json_cstr(out, mc->event_source_arn);
    esm_buf_puts(out, ",\"Source\":");
    esm_buf_json_cstr(out, m->ops->name);
    esm_buf_puts(out, ",\"State\":");
    esm_buf_json_cstr(out, state);
    esm_buf_puts(out, ",\"LastProcessingResult\":");
    esm_buf result;
    esm_buf_init(&result);
    esm_mapping_last_processing_result(m, &result);
    esm_buf_json_cstr(out, esm_buf_cstr(&result));
    esm_buf_free(&result);
    esm_buf_printf(out, ",\"BatchSize\":%d,\"Ready\":%s,\"BlockedSince\":", mc->batch_size,
                   esm_mapping_ready(m) ? "true" : "false");
    put_iso(out, stuck);
    esm_buf_printf(out, ",\"BlockedSeconds\":%.3f,\"StuckLaneSeconds\":%d,\"Stuck\":%s",
                   stuck > 0 ? (double)(now - stuck) / 1000.0 : 0.0, mc->stuck_lane_seconds,
                   esm_mapping_is_stuck(m, now) ? "true" : "false");
    esm_buf_puts(out, ",\"LastInvokeOk\":");
    put_iso(out, st->invokes.last_ok_ms);
    esm_buf_puts(out, ",\"LastInvokeFailed\":");
    put_iso(out, st->invokes.last_failed_ms);
    esm_buf_puts(out, ",\"Misconfigured\":");
    if (st->invokes.misconfigured_since_ms) {
        esm_buf_puts(out, "{\"Since\":");
        put_iso(out, st->invokes.misconfigured_since_ms);
        esm_buf_puts(out, ",\"Reason\":");
        esm_buf_json_cstr(out, st->invokes.misconfigured_reason);
        esm_buf_putc(out, '}');
    } else {
        esm_buf_puts(out, "null");
    }
    esm_buf_puts(out, ",\"SourceState\":");
    esm_source_status(m->ops, m->source, out);
    esm_buf_printf(
        out,
        ",\"Counters\":{\"polled\":%llu,\"filtered_out\":%llu,\"invoked\":%llu,"
        "\"invocations\":%llu,\"failed_invoke\":%llu,\"throttled\":%llu,"
        "\"dropped\":%llu,\"on_failure_queued\":%llu,\"deleted\":%llu,"
        "\"delete_failed\":%llu,\"committed\":%llu,\"checkpoint_write_failures\":%llu,"
        "\"source_errors\":%llu,\"bisect_splits\":%llu,\"misconfigured\":%llu}}",
        (unsigned long long)st->polled, (unsigned long long)st->filtered_out,
        (unsigned long long)st->invoked, (unsigned long long)st->invocations,
        (unsigned long long)st->failed_invoke, (unsigned long long)st->throttled,
        (unsigned long long)st->dropped, (unsigned long long)st->on_failure_queued,
        (unsigned long long)st->deleted, (unsigned long long)st->delete_failed,
        (unsigned long long)st->committed, (unsigned long long)st->checkpoint_write_failures,
        (unsigned long long)st->source_errors, (unsigned long long)st->invokes.bisect_splits,
        (unsigned long long)st->invokes.misconfigured);
}

bool esm_mapping_is_stuck(const esm_mapping *m, int64_t now_ms)
{
    int64_t since = esm_mapping_stuck_since(m);
    int limit = m->env.mapping->stuck_lane_seconds;
    return since > 0 && limit > 0 && now_ms - since > (int64_t)limit * 1000;
}

void esm_mapping_identity_json(const esm_mapping_config *mc, esm_buf *out)
{
    esm_buf_puts(out, "{\"UUID\":");
    esm_buf_json_cstr(out, mc->uuid);
    esm_buf_puts(out, ",\"FunctionName\":");
    esm_buf_json_cstr(out, mc->function_name);
    esm_buf_puts(out, ",\"EventSourceArn\":");
    esm_buf_json_cstr(out, mc->event_source_arn);
}
