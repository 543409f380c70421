/* One event_source_mappings entry: the AWS CreateEventSourceMapping fields, read with their
 * wire types and wire ranges. Rules that depend on the source type are in
 * esm_config_validate.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/esm_time.h"
#include "config/esm_config_internal.h"
#include "filter/esm_filter.h"

static const cJSON *field(const cJSON *obj, const char *key, const char *parent, char *path)
{
    esm_cfg_path(path, parent, key);
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static void parse_function_name(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                                const esm_config *cfg, esm_mapping_config *m, esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "FunctionName", mpath, p);
    if (!j) {
        esm_cfg_problem(c, p, "is required: the name of an entry in \"functions\" or its ARN");
        return;
    }
    if (!esm_cfg_get_string(c, j, p, &m->function_name)) return;
    size_t n = strlen(m->function_name);
    if (n < 1 || n > 256) {
        esm_cfg_aws_range(c, p, "functionName", (int64_t)n, 1, 256);
        return;
    }
    m->function = esm_config_find_function(cfg, m->function_name);
    if (m->function) {
        seen->function_resolved = true;
        return;
    }
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < cfg->n_functions && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 cfg->functions[i].name);
    esm_cfg_problem(c, p, "function '%s' is not defined under \"functions\" (defined: %s)",
                    m->function_name, cfg->n_functions ? list : "none");
}

static void parse_starting_position(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                                    esm_mapping_config *m, esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "StartingPosition", mpath, p);
    if (!j) return;
    seen->starting_position_written = true;
    char *s = NULL;
    if (!esm_cfg_get_string(c, j, p, &s)) return;
    if (strcmp(s, "TRIM_HORIZON") == 0)
        m->starting_position = ESM_START_TRIM_HORIZON;
    else if (strcmp(s, "LATEST") == 0)
        m->starting_position = ESM_START_LATEST;
    else if (strcmp(s, "AT_TIMESTAMP") == 0)
        m->starting_position = ESM_START_AT_TIMESTAMP;
    else
        esm_cfg_problem(c, p,
                        "1 validation error detected: Value '%s' at 'startingPosition' failed to "
                        "satisfy constraint: Member must satisfy enum value set: [LATEST, "
                        "AT_TIMESTAMP, TRIM_HORIZON]",
                        s);
    if (m->starting_position != ESM_START_NONE) seen->starting_position = true;
    free(s);
}

static void parse_timestamp(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                            esm_mapping_config *m, esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "StartingPositionTimestamp", mpath, p);
    if (!j) return;
    if (cJSON_IsNumber(j) && isfinite(j->valuedouble) && j->valuedouble >= 0) {
        /* The wire form: epoch seconds, possibly fractional. */
        m->starting_position_timestamp_ms = (int64_t)llround(j->valuedouble * 1000.0);
    } else if (cJSON_IsString(j) &&
               esm_parse_iso8601_ms(j->valuestring, &m->starting_position_timestamp_ms)) {
        /* ISO 8601, as the AWS CLI accepts it. */
    } else {
        esm_cfg_problem(c, p,
                        "must be epoch seconds (a number) or an ISO 8601 time such as "
                        "\"2024-05-01T12:00:00Z\", got %s",
                        esm_cfg_type_name(j));
        return;
    }
    seen->starting_position_timestamp = true;
}

static void parse_filters(esm_cfg_ctx *c, const cJSON *mj, const char *mpath, esm_mapping_config *m,
                          esm_cfg_seen *seen)
{
    static const char *const fc_keys[] = {"Filters", NULL};
    static const char *const f_keys[] = {"Pattern", NULL};
    char p[ESM_CFG_PATH_MAX], fp[ESM_CFG_PATH_MAX];
    const cJSON *fc = field(mj, "FilterCriteria", mpath, p);
    if (!fc || cJSON_IsNull(fc)) return;
    if (!esm_cfg_want_object(c, fc, p)) return;
    esm_cfg_check_keys(c, fc, p, fc_keys);
    const cJSON *filters = field(fc, "Filters", p, fp);
    if (!filters || cJSON_IsNull(filters)) return;
    if (!esm_cfg_want_array(c, filters, fp)) return;
    size_t n = (size_t)cJSON_GetArraySize(filters);
    seen->n_filters_given = n;
    m->filter_patterns = esm_cfg_xcalloc(n, sizeof(char *));
    size_t i = 0;
    for (const cJSON *f = filters->child; f; f = f->next, i++) {
        char ip[ESM_CFG_PATH_MAX], pp[ESM_CFG_PATH_MAX];
        esm_cfg_path_index(ip, fp, i);
        if (!esm_cfg_want_object(c, f, ip)) {
            seen->filters_invalid = true;
            continue;
        }
        esm_cfg_check_keys(c, f, ip, f_keys);
        const cJSON *pat = field(f, "Pattern", ip, pp);
        char *s = NULL;
        if (!pat) {
            esm_cfg_problem(c, pp, "is required (a JSON object as a string)");
            seen->filters_invalid = true;
            continue;
        }
        if (!esm_cfg_get_string(c, pat, pp, &s)) {
            seen->filters_invalid = true;
            continue;
        }
        char why[256] = ESM_FILTER_INVALID;
        if (strlen(s) > ESM_FILTER_PATTERN_MAX || !esm_filter_validate(s, why, sizeof(why))) {
            esm_cfg_problem(c, pp, "%s", why);
            seen->filters_invalid = true;
            free(s);
            continue;
        }
        m->filter_patterns[m->n_filters++] = s;
    }
}

static void parse_response_types(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                                 esm_mapping_config *m)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "FunctionResponseTypes", mpath, p);
    if (!j || !esm_cfg_want_array(c, j, p)) return;
    int n = cJSON_GetArraySize(j);
    if (n > 1) {
        esm_cfg_problem(c, p,
                        "1 validation error detected: Value at 'functionResponseTypes' failed to "
                        "satisfy constraint: Member must have length less than or equal to 1");
        return;
    }
    for (const cJSON *t = j->child; t; t = t->next) {
        if (cJSON_IsString(t) && strcmp(t->valuestring, "ReportBatchItemFailures") == 0) {
            m->report_batch_item_failures = true;
            continue;
        }
        char v[128];
        if (cJSON_IsString(t))
            snprintf(v, sizeof(v), "%s", t->valuestring);
        else
            snprintf(v, sizeof(v), "%s", esm_cfg_type_name(t));
        esm_cfg_problem(c, p,
                        "1 validation error detected: Value '[%s]' at 'functionResponseTypes' "
                        "failed to satisfy constraint: Member must satisfy constraint: [Member "
                        "must satisfy enum value set: [ReportBatchItemFailures]]",
                        v);
    }
}

static void parse_destination(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                              esm_mapping_config *m, esm_cfg_seen *seen)
{
    static const char *const dc_keys[] = {"OnSuccess", "OnFailure", NULL};
    static const char *const d_keys[] = {"Destination", NULL};
    char p[ESM_CFG_PATH_MAX], sp[ESM_CFG_PATH_MAX], dp[ESM_CFG_PATH_MAX];
    const cJSON *dc = field(mj, "DestinationConfig", mpath, p);
    if (!dc || !esm_cfg_want_object(c, dc, p)) return;
    esm_cfg_check_keys(c, dc, p, dc_keys);
    if (field(dc, "OnSuccess", p, sp))
        esm_cfg_problem(c, sp,
                        "Unsupported DestinationConfig parameter for given event source "
                        "mapping type.");
    const cJSON *of = field(dc, "OnFailure", p, sp);
    if (!of || !esm_cfg_want_object(c, of, sp)) return;
    esm_cfg_check_keys(c, of, sp, d_keys);
    const cJSON *d = field(of, "Destination", sp, dp);
    if (!d) return;
    char *s = NULL;
    if (!esm_cfg_get_string(c, d, dp, &s)) return;
    if (!*s) { /* "" removes the destination, as on AWS */
        free(s);
        return;
    }
    m->on_failure_destination = s;
    seen->on_failure = true;
}

static void parse_scaling(esm_cfg_ctx *c, const cJSON *mj, const char *mpath, esm_mapping_config *m,
                          esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "ScalingConfig", mpath, p);
    if (!j || !esm_cfg_want_object(c, j, p)) return;
    esm_cfg_keys_check(c, j, p, ESM_KEY_IN_SCALING_CONFIG);
    esm_cfg_keys_parse(c, j, p, ESM_KEY_IN_SCALING_CONFIG, m, seen);
}

static void parse_topics(esm_cfg_ctx *c, const cJSON *mj, const char *mpath, esm_mapping_config *m,
                         esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "Topics", mpath, p);
    if (!j || !esm_cfg_want_array(c, j, p)) return;
    seen->topics = true;
    int n = cJSON_GetArraySize(j);
    if (n != 1) {
        esm_cfg_problem(c, p,
                        "1 validation error detected: Value at 'topics' failed to satisfy "
                        "constraint: Member must have length %s 1 (got %d topics)",
                        n < 1 ? "greater than or equal to" : "less than or equal to", n);
        return;
    }
    char ip[ESM_CFG_PATH_MAX];
    esm_cfg_path_index(ip, p, 0);
    char *t = NULL;
    if (!esm_cfg_get_string(c, j->child, ip, &t)) return;
    if (!esm_cfg_kafka_topic_ok(t)) {
        esm_cfg_problem(c, ip,
                        "1 validation error detected: Value '[%s]' at 'topics' failed to satisfy "
                        "constraint: Member must satisfy constraint: [Member must have length "
                        "less than or equal to 249, Member must have length greater than or equal "
                        "to 1, Member must satisfy regular expression pattern: "
                        "^[^.]([a-zA-Z0-9\\-_.]+)]",
                        t);
        free(t);
        return;
    }
    m->topic = t;
}

static void parse_self_managed(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                               esm_mapping_config *m, esm_cfg_seen *seen)
{
    static const char *const keys[] = {"Endpoints", NULL};
    static const char *const ep_keys[] = {"KAFKA_BOOTSTRAP_SERVERS", NULL};
    char p[ESM_CFG_PATH_MAX], ep[ESM_CFG_PATH_MAX], bp[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "SelfManagedEventSource", mpath, p);
    if (!j) return;
    seen->self_managed = true;
    if (!esm_cfg_want_object(c, j, p)) return;
    esm_cfg_check_keys(c, j, p, keys);
    const cJSON *eps = field(j, "Endpoints", p, ep);
    if (!eps) {
        esm_cfg_problem(c, ep, "is required: {\"KAFKA_BOOTSTRAP_SERVERS\": [\"host:port\", ...]}");
        return;
    }
    if (!esm_cfg_want_object(c, eps, ep)) return;
    esm_cfg_check_keys(c, eps, ep, ep_keys);
    const cJSON *bs = field(eps, "KAFKA_BOOTSTRAP_SERVERS", ep, bp);
    if (!bs) {
        esm_cfg_problem(c, bp, "is required: a list of 1 to 10 host:port entries");
        return;
    }
    if (!esm_cfg_want_array(c, bs, bp)) return;
    int n = cJSON_GetArraySize(bs);
    if (n < 1 || n > 10) {
        esm_cfg_problem(c, bp, "has %d entries; allowed: 1 to 10 host:port entries", n);
        return;
    }
    m->bootstrap_servers = esm_cfg_xcalloc((size_t)n, sizeof(char *));
    size_t i = 0;
    for (const cJSON *e = bs->child; e; e = e->next, i++) {
        char ip[ESM_CFG_PATH_MAX];
        esm_cfg_path_index(ip, bp, i);
        char *s = NULL;
        if (!esm_cfg_get_string(c, e, ip, &s)) continue;
        if (!esm_cfg_host_port_ok(s)) {
            esm_cfg_problem(c, ip,
                            "'%s' is not allowed: must be host:port (port 1 to 65535, at most 300 "
                            "characters)",
                            e->valuestring);
            free(s);
            continue;
        }
        m->bootstrap_servers[m->n_bootstrap_servers++] = s;
    }
}

static void parse_smk_config(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                             esm_mapping_config *m, esm_cfg_seen *seen)
{
    static const char *const keys[] = {"ConsumerGroupId", "SchemaRegistryConfig", NULL};
    char p[ESM_CFG_PATH_MAX], gp[ESM_CFG_PATH_MAX], sp[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "SelfManagedKafkaEventSourceConfig", mpath, p);
    if (!j) return;
    seen->smk_config = true;
    if (!esm_cfg_want_object(c, j, p)) return;
    esm_cfg_check_keys(c, j, p, keys);
    if (field(j, "SchemaRegistryConfig", p, sp))
        esm_cfg_problem(c, sp, "schema registries are not supported by esmd yet");
    const cJSON *g = field(j, "ConsumerGroupId", p, gp);
    char *s = NULL;
    if (!g || !esm_cfg_get_string(c, g, gp, &s)) return;
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= 200;
    for (size_t i = 0; i < n && ok; i++) {
        char ch = s[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             strchr("-/*:_+=.@", ch);
    }
    if (!ok) {
        esm_cfg_problem(c, gp,
                        "1 validation error detected: Value '%s' at "
                        "'selfManagedKafkaEventSourceConfig.consumerGroupId' failed to satisfy "
                        "constraint: Member must satisfy regular expression pattern: "
                        "[a-zA-Z0-9-\\/*:_+=.@-]*, length 1 to 200",
                        s);
        free(s);
        return;
    }
    m->consumer_group_id = s;
}

static void parse_source_access(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                                esm_mapping_config *m, esm_cfg_seen *seen)
{
    static const char *const keys[] = {"Type", "URI", NULL};
    static const char *const types[] = {"BASIC_AUTH",
                                        "SASL_SCRAM_256_AUTH",
                                        "SASL_SCRAM_512_AUTH",
                                        "CLIENT_CERTIFICATE_TLS_AUTH",
                                        "SERVER_ROOT_CA_CERTIFICATE",
                                        "VPC_SUBNET",
                                        "VPC_SECURITY_GROUP",
                                        NULL};
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "SourceAccessConfigurations", mpath, p);
    if (!j || !esm_cfg_want_array(c, j, p)) return;
    int n = cJSON_GetArraySize(j);
    if (n == 0) return;
    seen->source_access = true;
    if (n > 23) {
        esm_cfg_aws_range(c, p, "sourceAccessConfigurations (length)", n, 0, 23);
        return;
    }
    m->source_access = esm_cfg_xcalloc((size_t)n, sizeof(*m->source_access));
    size_t i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        char ip[ESM_CFG_PATH_MAX], tp[ESM_CFG_PATH_MAX], up[ESM_CFG_PATH_MAX];
        esm_cfg_path_index(ip, p, i);
        if (!esm_cfg_want_object(c, e, ip)) continue;
        esm_cfg_check_keys(c, e, ip, keys);
        const cJSON *t = field(e, "Type", ip, tp);
        const cJSON *u = field(e, "URI", ip, up);
        char *ts = NULL, *us = NULL;
        bool ok = true;
        if (!t) {
            esm_cfg_problem(c, tp, "is required");
            ok = false;
        } else if (esm_cfg_get_string(c, t, tp, &ts)) {
            bool known = false;
            for (size_t k = 0; types[k]; k++)
                if (strcmp(types[k], ts) == 0) known = true;
            if (!known) {
                esm_cfg_problem(c, tp,
                                "'%s' is not allowed; allowed: BASIC_AUTH, SASL_SCRAM_256_AUTH, "
                                "SASL_SCRAM_512_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, "
                                "SERVER_ROOT_CA_CERTIFICATE, VPC_SUBNET, VPC_SECURITY_GROUP",
                                ts);
                ok = false;
            }
        } else {
            ok = false;
        }
        if (!u) {
            esm_cfg_problem(c, up, "is required");
            ok = false;
        } else if (esm_cfg_get_string(c, u, up, &us)) {
            size_t un = strlen(us);
            if (un < 1 || un > 200) {
                esm_cfg_problem(c, up, "must be 1 to 200 characters long (got %zu)", un);
                ok = false;
            }
        } else {
            ok = false;
        }
        if (ok) {
            m->source_access[m->n_source_access].type = ts;
            m->source_access[m->n_source_access].uri = us;
            m->n_source_access++;
        } else {
            free(ts);
            free(us);
        }
    }
}

static bool uuid_ok(const char *s)
{
    if (strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-') return false;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                     (ch >= 'A' && ch <= 'F'))) {
            return false;
        }
    }
    return true;
}

static void parse_uuid(esm_cfg_ctx *c, const cJSON *mj, const char *mpath, esm_mapping_config *m)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "UUID", mpath, p);
    char *s = NULL;
    if (!j || !esm_cfg_get_string(c, j, p, &s)) return;
    if (!uuid_ok(s)) {
        esm_cfg_problem(c, p,
                        "'%s' is not allowed: must be a UUID "
                        "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex digits)",
                        s);
        free(s);
        return;
    }
    m->uuid = s;
}

/* librdkafka properties esmd sets itself: overriding them would break its guarantees. */
static const char *reserved_kafka_property(const char *name)
{
    if (strcmp(name, "bootstrap.servers") == 0 || strcmp(name, "metadata.broker.list") == 0)
        return "set SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS instead";
    if (strcmp(name, "group.id") == 0)
        return "set SelfManagedKafkaEventSourceConfig.ConsumerGroupId instead";
    if (strcmp(name, "enable.auto.commit") == 0 || strcmp(name, "enable.auto.offset.store") == 0)
        return "esmd commits offsets itself, after each batch's final outcome";
    return NULL;
}

static void parse_kafka_properties(esm_cfg_ctx *c, const cJSON *j, const char *p,
                                   esm_mapping_config *m, esm_cfg_seen *seen)
{
    if (!esm_cfg_want_object(c, j, p)) return;
    seen->kafka_properties = j->child != NULL;
    m->kafka_properties = esm_cfg_xcalloc((size_t)cJSON_GetArraySize(j), sizeof(esm_kv));
    for (const cJSON *e = j->child; e; e = e->next) {
        char ep[ESM_CFG_PATH_MAX];
        esm_cfg_path(ep, p, e->string);
        const char *why = reserved_kafka_property(e->string);
        if (why) {
            esm_cfg_problem(c, ep, "'%s' cannot be overridden: %s", e->string, why);
            continue;
        }
        char *v = NULL; /* values may be secrets (sasl.password): never echoed */
        if (!esm_cfg_get_string(c, e, ep, &v)) continue;
        m->kafka_properties[m->n_kafka_properties].name = esm_cfg_xstrdup(e->string);
        m->kafka_properties[m->n_kafka_properties].value = v;
        m->n_kafka_properties++;
    }
}

static void parse_esmd_options(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                               esm_mapping_config *m, esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX], q[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "EsmdOptions", mpath, p);
    if (!j || !esm_cfg_want_object(c, j, p)) return;
    esm_cfg_keys_check(c, j, p, ESM_KEY_IN_ESMD_OPTIONS);
    esm_cfg_keys_parse(c, j, p, ESM_KEY_IN_ESMD_OPTIONS, m, seen);
    const cJSON *rb = field(j, "RetryBackoff", p, q);
    if (rb && esm_cfg_want_object(c, rb, q)) {
        esm_cfg_keys_check(c, rb, q, ESM_KEY_IN_RETRY_BACKOFF);
        esm_cfg_keys_parse(c, rb, q, ESM_KEY_IN_RETRY_BACKOFF, m, seen);
        seen->retry_backoff = seen->key[ESM_KEY_BACKOFF_BASE] || seen->key[ESM_KEY_BACKOFF_MAX];
        m->retry_backoff_set = seen->retry_backoff;
        if (m->retry_backoff_base_ms > m->retry_backoff_max_ms)
            esm_cfg_problem(c, q, "BaseSeconds (%d) must not be greater than MaxSeconds (%d)",
                            m->retry_backoff_base_ms / 1000, m->retry_backoff_max_ms / 1000);
    }
    const cJSON *kp = field(j, "KafkaProperties", p, q);
    if (kp) parse_kafka_properties(c, kp, q, m, seen);
}

static void parse_source(esm_cfg_ctx *c, const cJSON *mj, const char *mpath, esm_mapping_config *m,
                         esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    const cJSON *j = field(mj, "EventSourceArn", mpath, p);
    if (j) {
        if (!esm_cfg_get_string(c, j, p, &m->event_source_arn)) return;
        if (seen->self_managed) {
            esm_cfg_problem(c, p,
                            "EventSourceArn and SelfManagedEventSource cannot be used together");
            return;
        }
        seen->source_known = esm_cfg_parse_source_arn(c, m->event_source_arn, p, m);
    } else if (seen->self_managed) {
        m->source = ESM_SRC_KAFKA;
        seen->source_known = true;
    } else {
        esm_cfg_problem(c, p,
                        "is required (an SQS queue or Kinesis stream ARN), or use "
                        "SelfManagedEventSource for Kafka");
    }
}

/* Composite keys, each parsed where the table lists it. */
static void parse_composite(esm_cfg_ctx *c, esm_cfg_key_id id, const cJSON *mj, const char *mpath,
                            const esm_config *cfg, esm_mapping_config *m, esm_cfg_seen *seen)
{
    char p[ESM_CFG_PATH_MAX];
    switch (id) {
    case ESM_KEY_FUNCTION_NAME:
        parse_function_name(c, mj, mpath, cfg, m, seen);
        break;
    case ESM_KEY_EVENT_SOURCE_ARN: /* the source is Kafka when SelfManagedEventSource is given */
        parse_self_managed(c, mj, mpath, m, seen);
        parse_source(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_STARTING_POSITION:
        parse_starting_position(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_STARTING_POSITION_TIMESTAMP:
        parse_timestamp(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_FILTER_CRITERIA:
        parse_filters(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_FUNCTION_RESPONSE_TYPES:
        parse_response_types(c, mj, mpath, m);
        break;
    case ESM_KEY_DESTINATION_CONFIG:
        seen->destination_config = field(mj, "DestinationConfig", mpath, p) != NULL;
        parse_destination(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_SCALING_CONFIG:
        parse_scaling(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_TOPICS:
        parse_topics(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_SELF_MANAGED_KAFKA_CONFIG:
        parse_smk_config(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_SOURCE_ACCESS:
        parse_source_access(c, mj, mpath, m, seen);
        break;
    case ESM_KEY_ESMD_OPTIONS:
        parse_esmd_options(c, mj, mpath, m, seen);
        break;
    default: /* UUID (first), SelfManagedEventSource (with EventSourceArn), the ignored keys */
        break;
    }
}

void esm_cfg_parse_mapping(esm_cfg_ctx *c, const cJSON *mj, const char *mpath,
                           const esm_config *cfg, esm_mapping_config *m, esm_cfg_seen *seen)
{
    esm_cfg_keys_preset(m);
    if (!esm_cfg_want_object(c, mj, mpath)) return;
    esm_cfg_keys_check(c, mj, mpath, ESM_KEY_IN_MAPPING);
    parse_uuid(c, mj, mpath, m); /* first, as before the table: problems keep their order */
    for (size_t i = 0; i < ESM_KEY_COUNT; i++) {
        if (esm_cfg_keys[i].parent != ESM_KEY_IN_MAPPING) continue;
        if (esm_cfg_key_is_scalar(&esm_cfg_keys[i]))
            esm_cfg_key_parse(c, mj, mpath, (esm_cfg_key_id)i, m, seen);
        else
            parse_composite(c, (esm_cfg_key_id)i, mj, mpath, cfg, m, seen);
    }
}

void esm_cfg_mapping_free(esm_mapping_config *m)
{
    free(m->uuid);
    free(m->function_name);
    free(m->event_source_arn);
    free(m->source_region);
    free(m->source_account);
    free(m->source_name);
    for (size_t i = 0; i < m->n_filters; i++)
        free(m->filter_patterns[i]);
    free(m->filter_patterns);
    free(m->on_failure_destination);
    free(m->topic);
    for (size_t i = 0; i < m->n_bootstrap_servers; i++)
        free(m->bootstrap_servers[i]);
    free(m->bootstrap_servers);
    free(m->consumer_group_id);
    for (size_t i = 0; i < m->n_source_access; i++) {
        free(m->source_access[i].type);
        free(m->source_access[i].uri);
    }
    free(m->source_access);
    for (size_t i = 0; i < m->n_kafka_properties; i++) {
        free(m->kafka_properties[i].name);
        free(m->kafka_properties[i].value);
    }
    free(m->kafka_properties);
}
