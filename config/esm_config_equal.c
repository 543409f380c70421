/* Field-by-field comparison, used on reload: a mapping whose config (and function) did not
 * change keeps running. The scalar keys are compared through the key table, so a new one
 * cannot be forgotten here; this file lists the other fields. */
#include <string.h>

#include "config/esm_config.h"
#include "config/esm_config_keys.h"

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static bool kv_eq(const esm_kv *a, size_t na, const esm_kv *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].name, b[i].name) || !str_eq(a[i].value, b[i].value)) return false;
    return true;
}

static bool strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i])) return false;
    return true;
}

bool esm_function_config_equal(const esm_function_config *a, const esm_function_config *b)
{
    if (!a || !b) return a == b;
    return str_eq(a->name, b->name) && str_eq(a->url, b->url) && a->protocol == b->protocol &&
           a->timeout_seconds == b->timeout_seconds && a->max_concurrency == b->max_concurrency &&
           kv_eq(a->headers, a->n_headers, b->headers, b->n_headers) && str_eq(a->arn, b->arn);
}

bool esm_mapping_config_equal(const esm_mapping_config *a, const esm_mapping_config *b)
{
    if (!a || !b) return a == b;
    if (!esm_cfg_keys_equal(a, b)) return false;
    if (!str_eq(a->uuid, b->uuid) || !str_eq(a->function_name, b->function_name) ||
        !esm_function_config_equal(a->function, b->function) || a->source != b->source ||
        !str_eq(a->event_source_arn, b->event_source_arn) ||
        !str_eq(a->source_region, b->source_region) ||
        !str_eq(a->source_account, b->source_account) || !str_eq(a->source_name, b->source_name) ||
        a->fifo != b->fifo || a->starting_position != b->starting_position ||
        a->starting_position_timestamp_ms != b->starting_position_timestamp_ms)
        return false;
    if (!strv_eq(a->filter_patterns, a->n_filters, b->filter_patterns, b->n_filters) ||
        a->report_batch_item_failures != b->report_batch_item_failures ||
        !str_eq(a->on_failure_destination, b->on_failure_destination))
        return false;
    if (!str_eq(a->topic, b->topic) ||
        !strv_eq(a->bootstrap_servers, a->n_bootstrap_servers, b->bootstrap_servers,
                 b->n_bootstrap_servers) ||
        !str_eq(a->consumer_group_id, b->consumer_group_id) ||
        a->n_source_access != b->n_source_access)
        return false;
    for (size_t i = 0; i < a->n_source_access; i++)
        if (!str_eq(a->source_access[i].type, b->source_access[i].type) ||
            !str_eq(a->source_access[i].uri, b->source_access[i].uri) ||
            a->source_access[i].fingerprint != b->source_access[i].fingerprint)
            return false;
    return a->retry_backoff_set == b->retry_backoff_set &&
           kv_eq(a->kafka_properties, a->n_kafka_properties, b->kafka_properties,
                 b->n_kafka_properties) &&
           a->retry_attempts_capped == b->retry_attempts_capped;
}
