/* Source-specific rules (what AWS allows per source type), defaults, and rules across
 * mappings (duplicates). Wire types and ranges were checked while parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_time.h"
#include "config/esm_config_internal.h"
#include "filter/esm_filter.h"

static void unsupported_for_source(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                                   const esm_cfg_seen *s)
{
    bool sqs = m->source == ESM_SRC_SQS, kinesis = m->source == ESM_SRC_KINESIS,
         kafka = m->source == ESM_SRC_KAFKA;
    if (sqs && s->starting_position) esm_cfg_unsupported(c, path, "StartingPosition");
    if (sqs && s->starting_position_timestamp && !s->starting_position)
        esm_cfg_unsupported(c, path, "StartingPositionTimestamp");
    if (kinesis && m->tumbling_window_seconds > 0) {
        /* Refused rather than silently ignored: a mapping that relies on window state must
         * not run without it. */
        char p[ESM_CFG_PATH_MAX];
        esm_cfg_path(p, path, "TumblingWindowInSeconds");
        esm_cfg_problem(c, p,
                        "tumbling windows are not supported by this version of esmd; "
                        "remove TumblingWindowInSeconds or set it to 0");
    }
    esm_cfg_keys_unsupported(c, path, m, s);
    if (!kafka && s->topics) esm_cfg_unsupported(c, path, "Topics");
    if (!kafka && s->smk_config) esm_cfg_unsupported(c, path, "SelfManagedKafkaEventSourceConfig");
    if (!kafka && s->source_access) esm_cfg_unsupported(c, path, "SourceAccessConfigurations");
    if (!kafka && s->kafka_properties) {
        char p[ESM_CFG_PATH_MAX];
        esm_cfg_path(p, path, "EsmdOptions.KafkaProperties");
        esm_cfg_problem(c, p, "KafkaProperties apply to Kafka sources only");
    }
}

static void check_batching(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                           const esm_cfg_seen *s)
{
    char p[ESM_CFG_PATH_MAX];
    if (m->source != ESM_SRC_SQS) return;
    if (m->fifo) {
        if (m->batch_size > 10) {
            esm_cfg_path(p, path, "BatchSize");
            esm_cfg_problem(c, p,
                            "BatchSize %d is not allowed for a FIFO queue: must be between 1 and "
                            "10",
                            m->batch_size);
        }
        if (s->key[ESM_KEY_BATCHING_WINDOW] && m->batching_window_ms > 0) {
            esm_cfg_path(p, path, "MaximumBatchingWindowInSeconds");
            esm_cfg_problem(c, p,
                            "MaximumBatchingWindowInSeconds %d is not allowed: FIFO queues do not "
                            "support a batching window (use 0 or leave it out)",
                            m->batching_window_ms / 1000);
        }
        return;
    }
    /* AWS enforces this for SQS; Kinesis's own default (100 records, no window) is valid. */
    if (m->batch_size > 10 && m->batching_window_ms == 0) {
        esm_cfg_path(p, path, "MaximumBatchingWindowInSeconds");
        esm_cfg_problem(c, p,
                        "Maximum batch window in seconds must be greater than 0 if maximum "
                        "batch size is greater than 10");
    }
}

static void check_starting_position(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                                    const esm_cfg_seen *s)
{
    if (m->source == ESM_SRC_SQS) return; /* reported as unsupported */
    char p[ESM_CFG_PATH_MAX];
    if (!s->starting_position) {
        if (s->starting_position_written) return; /* its value was already refused */
        esm_cfg_path(p, path, "StartingPosition");
        esm_cfg_problem(c, p,
                        "is required for %s sources; allowed: TRIM_HORIZON, LATEST, AT_TIMESTAMP",
                        m->source == ESM_SRC_KINESIS ? "Kinesis" : "Kafka");
        return;
    }
    esm_cfg_path(p, path, "StartingPositionTimestamp");
    if (m->starting_position == ESM_START_AT_TIMESTAMP) {
        if (!s->starting_position_timestamp) {
            esm_cfg_problem(c, p, "is required when StartingPosition is AT_TIMESTAMP");
        } else if (m->starting_position_timestamp_ms > c->now_ms) {
            char when[25];
            esm_iso8601_ms(m->starting_position_timestamp_ms, when);
            esm_cfg_problem(c, p, "%s is in the future; it must not be later than now", when);
        }
    } else if (s->starting_position_timestamp) {
        esm_cfg_problem(c, p, "is only allowed when StartingPosition is AT_TIMESTAMP");
    }
}

static void check_record_age(esm_cfg_ctx *c, const char *path, const esm_mapping_config *m,
                             const esm_cfg_seen *s)
{
    int v = m->maximum_record_age_seconds;
    if (!s->key[ESM_KEY_RECORD_AGE] || v == -1 || v >= 60) return;
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, path, "MaximumRecordAgeInSeconds");
    esm_cfg_problem(c, p,
                    "MaximumRecordAgeInSeconds %d is not allowed: must be -1 (infinite) or between "
                    "60 and 604800",
                    v);
}

static esm_filter_source filter_source(esm_source_type t)
{
    switch (t) {
    case ESM_SRC_KINESIS:
        return ESM_FILTER_SRC_KINESIS;
    case ESM_SRC_KAFKA:
        return ESM_FILTER_SRC_KAFKA;
    case ESM_SRC_SQS:
        break;
    }
    return ESM_FILTER_SRC_SQS;
}

static void check_filters(esm_cfg_ctx *c, const char *path, const esm_mapping_config *m,
                          const esm_cfg_seen *s)
{
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, path, "FilterCriteria.Filters");
    if (s->n_filters_given > (size_t)m->max_filters) {
        esm_cfg_problem(c, p, "Number of filters exceeds the limit");
        return;
    }
    if (s->filters_invalid || m->n_filters == 0) return;
    /* Source-specific checks (e.g. plain matchers on Kinesis data) need the compiler. */
    char why[256] = "";
    esm_filter_set *set = esm_filter_compile((const char *const *)m->filter_patterns, m->n_filters,
                                             filter_source(m->source), why, sizeof(why));
    if (!set) esm_cfg_problem(c, p, "%s", why[0] ? why : "Invalid filter pattern definition.");
    esm_filter_destroy(set);
}

static void check_destination(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                              const esm_cfg_seen *s)
{
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, path, "DestinationConfig.OnFailure.Destination");
    if (!s->on_failure) return;
    esm_cfg_check_destination(c, p, m->on_failure_destination, m->source, s->source_known,
                              m->topic);
    if (m->source == ESM_SRC_SQS && (!s->key[ESM_KEY_RETRIES] || m->maximum_retry_attempts < 0))
        esm_cfg_problem(c, p,
                        "an OnFailure destination on an SQS mapping needs MaximumRetryAttempts "
                        "(0..10000; esmd extension counting ApproximateReceiveCount). On AWS, use "
                        "the queue's redrive policy instead");
    if (m->source == ESM_SRC_KAFKA && m->maximum_retry_attempts == -1) {
        /* AWS caps infinite retries to 10 when a Kafka mapping has a destination. */
        m->maximum_retry_attempts = 10;
        m->retry_attempts_capped = true;
    }
}

static void check_kafka(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                        const esm_cfg_seen *s)
{
    char p[ESM_CFG_PATH_MAX];
    if (!s->topics) {
        esm_cfg_path(p, path, "Topics");
        esm_cfg_problem(c, p, "is required for Kafka sources: a list of exactly 1 topic name");
    }
    if (m->topic) m->source_name = esm_cfg_xstrdup(m->topic);
}

void esm_cfg_validate_mapping(esm_cfg_ctx *c, const char *path, esm_mapping_config *m,
                              const esm_cfg_seen *s)
{
    if (s->source_known) {
        unsupported_for_source(c, path, m, s);
        esm_cfg_keys_fill_defaults(m, s);
        check_batching(c, path, m, s);
        check_starting_position(c, path, m, s);
        if (m->source == ESM_SRC_KAFKA) check_kafka(c, path, m, s);
    }
    check_record_age(c, path, m, s);
    check_filters(c, path, m, s);
    check_destination(c, path, m, s);
    if (!m->uuid) {
        char id[37];
        esm_cfg_derive_uuid(m, id);
        m->uuid = esm_cfg_xstrdup(id);
        m->uuid_derived = true;
    }
    if (m->source == ESM_SRC_KAFKA && s->source_known && !m->consumer_group_id) {
        char g[64];
        snprintf(g, sizeof(g), "esmd-%s", m->uuid);
        m->consumer_group_id = esm_cfg_xstrdup(g);
    }
}

/* ---- across mappings ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Bootstrap servers as a sorted, comma-joined list: the cluster's identity. */
static char *cluster_key(const esm_mapping_config *m)
{
    if (m->n_bootstrap_servers == 0) return esm_cfg_xstrdup("");
    char **v = esm_cfg_xcalloc(m->n_bootstrap_servers, sizeof(char *));
    size_t len = 1;
    for (size_t i = 0; i < m->n_bootstrap_servers; i++) {
        v[i] = m->bootstrap_servers[i];
        len += strlen(v[i]) + 1;
    }
    qsort(v, m->n_bootstrap_servers, sizeof(char *), cmp_str);
    char *out = esm_cfg_xcalloc(len, 1);
    for (size_t i = 0; i < m->n_bootstrap_servers; i++) {
        if (i) strcat(out, ",");
        strcat(out, v[i]);
    }
    free(v);
    return out;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void esm_cfg_derive_uuid(const esm_mapping_config *m, char out[37])
{
    char *fn = esm_cfg_function_name_part(m->function_name ? m->function_name : "");
    char *cluster = cluster_key(m);
    const char *src = m->event_source_arn ? m->event_source_arn : "";
    const char *topic = m->topic ? m->topic : "";
    uint64_t h1 = 0xcbf29ce484222325ULL;
    h1 = fnv1a(fnv1a(fnv1a(fnv1a(h1, src), "\n"), cluster), "\n");
    h1 = fnv1a(fnv1a(fnv1a(h1, topic), "\n"), fn);
    /* A second pass over a different input order fills the other 64 bits. */
    uint64_t h2 = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ULL, fn), "\n"), src);
    h2 = fnv1a(fnv1a(fnv1a(h2, cluster), "\n"), topic);
    free(fn);
    free(cluster);
    /* Shaped like a v4 UUID (version and variant bits) so AWS tools accept it. */
    h1 = (h1 & ~0xf000ULL) | 0x4000ULL;
    h2 = (h2 & ~(0xc000ULL << 48)) | (0x8000ULL << 48);
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h1 >> 32),
             (unsigned)((h1 >> 16) & 0xffff), (unsigned)(h1 & 0xffff), (unsigned)(h2 >> 48),
             (unsigned long long)(h2 & 0xffffffffffffULL));
}

static void duplicate_message(esm_cfg_ctx *c, const char *path, const esm_mapping_config *m,
                              const esm_mapping_config *prev, const char *cluster, const char *fn)
{
    if (m->source == ESM_SRC_KAFKA)
        esm_cfg_problem(c, path,
                        "An event source mapping with Kafka topic (%s) on bootstrap servers (%s) "
                        "and function (%s) already exists (UUID %s)",
                        m->topic, cluster, fn, prev->uuid);
    else
        esm_cfg_problem(c, path,
                        "An event source mapping with %s arn (%s) and function (%s) already "
                        "exists (UUID %s)",
                        m->source == ESM_SRC_SQS ? "SQS" : "Kinesis", m->event_source_arn, fn,
                        prev->uuid);
}

void esm_cfg_validate_mappings(esm_cfg_ctx *c, esm_config *cfg)
{
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        esm_mapping_config *m = &cfg->mappings[i];
        char path[ESM_CFG_PATH_MAX];
        esm_cfg_path_index(path, "event_source_mappings", i);
        if (!m->function_name) continue;
        char *fn = esm_cfg_function_name_part(m->function_name);
        char *cl = cluster_key(m);
        bool reported_pair = false, reported_uuid = false, reported_group = false;
        for (size_t k = 0; k < i; k++) {
            esm_mapping_config *o = &cfg->mappings[k];
            if (!o->function_name) continue;
            char *ofn = esm_cfg_function_name_part(o->function_name);
            char *ocl = cluster_key(o);
            bool same_source = m->source == o->source &&
                               (m->source == ESM_SRC_KAFKA
                                    ? (m->topic && o->topic && strcmp(m->topic, o->topic) == 0 &&
                                       strcmp(cl, ocl) == 0)
                                    : (m->event_source_arn && o->event_source_arn &&
                                       strcmp(m->event_source_arn, o->event_source_arn) == 0));
            if (same_source && strcmp(fn, ofn) == 0 && !reported_pair) {
                duplicate_message(c, path, m, o, cl, fn);
                reported_pair = true;
            }
            if (m->uuid && o->uuid && strcasecmp(m->uuid, o->uuid) == 0 && !reported_uuid &&
                !reported_pair) {
                char p[ESM_CFG_PATH_MAX];
                esm_cfg_path(p, path, "UUID");
                esm_cfg_problem(c, p, "UUID %s is already used by event_source_mappings[%zu]",
                                m->uuid, k);
                reported_uuid = true;
            }
            if (m->source == ESM_SRC_KAFKA && o->source == ESM_SRC_KAFKA && m->consumer_group_id &&
                o->consumer_group_id && strcmp(m->consumer_group_id, o->consumer_group_id) == 0 &&
                strcmp(cl, ocl) == 0 && !reported_group && !reported_pair) {
                char p[ESM_CFG_PATH_MAX];
                esm_cfg_path(p, path, "SelfManagedKafkaEventSourceConfig.ConsumerGroupId");
                esm_cfg_problem(
                    c, p,
                    "ConsumerGroupId '%s' is already used by event_source_mappings[%zu] "
                    "on the same cluster; it must be unique among Kafka mappings",
                    m->consumer_group_id, k);
                reported_group = true;
            }
            free(ofn);
            free(ocl);
        }
        free(fn);
        free(cl);
    }
}
