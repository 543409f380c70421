#include "engine/esm_mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"

struct esm_mapping {
    esm_source_env env;
    esm_source_stats stats;
    const esm_source_ops *ops;
    void *source;
    char log_ctx[96];
};

static const esm_source_ops *ops_for(esm_source_type t)
{
    switch (t) {
    case ESM_SRC_SQS:
        return &esm_sqs_source;
    case ESM_SRC_KAFKA:
        return &esm_kafka_source;
    case ESM_SRC_KINESIS:
        return &esm_kinesis_source;
    }
    return NULL;
}

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
    const esm_source_ops *ops = ops_for(mc->source);
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

bool esm_mapping_ready(const esm_mapping *m)
{
    return m->ops->ready(m->source);
}

const esm_source_stats *esm_mapping_stats(const esm_mapping *m)
{
    return &m->stats;
}

const esm_mapping_config *esm_mapping_config_of(const esm_mapping *m)
{
    return m->env.mapping;
}

void esm_mapping_status(esm_mapping *m, esm_buf *out)
{
    const esm_mapping_config *mc = m->env.mapping;
    const esm_source_stats *st = &m->stats;
    esm_buf_puts(out, "{\"UUID\":");
    esm_buf_json_cstr(out, mc->uuid);
    esm_buf_puts(out, ",\"FunctionName\":");
    esm_buf_json_cstr(out, mc->function_name);
    esm_buf_puts(out, ",\"EventSourceArn\":");
    esm_buf_json_cstr(out, mc->event_source_arn);
    esm_buf_puts(out, ",\"Source\":");
    esm_buf_json_cstr(out, m->ops->name);
    esm_buf_puts(out, ",\"SourceState\":");
    m->ops->status(m->source, out);
    esm_buf_printf(out,
                   ",\"Counters\":{\"polled\":%llu,\"filtered_out\":%llu,\"invoked\":%llu,"
                   "\"invocations\":%llu,\"failed_invoke\":%llu,\"throttled\":%llu,"
                   "\"dropped\":%llu,\"on_failure_queued\":%llu,\"deleted\":%llu,"
                   "\"delete_failed\":%llu,\"committed\":%llu,\"checkpoint_write_failures\":%llu,"
                   "\"source_errors\":%llu}}",
                   (unsigned long long)st->polled, (unsigned long long)st->filtered_out,
                   (unsigned long long)st->invoked, (unsigned long long)st->invocations,
                   (unsigned long long)st->failed_invoke, (unsigned long long)st->throttled,
                   (unsigned long long)st->dropped, (unsigned long long)st->on_failure_queued,
                   (unsigned long long)st->deleted, (unsigned long long)st->delete_failed,
                   (unsigned long long)st->committed,
                   (unsigned long long)st->checkpoint_write_failures,
                   (unsigned long long)st->source_errors);
}
