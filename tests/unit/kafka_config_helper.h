/* A config with one Kafka mapping (bootstrap k1:9092,k2:9093, topic "orders") for the tests of
 * Kafka client settings; extra is spliced into the mapping object; is_secret reads a property.
 * Header-only (static functions); include it after cmocka.h. */
#ifndef KAFKA_CONFIG_HELPER_H
#define KAFKA_CONFIG_HELPER_H

#include <stdio.h>
#include <string.h>

#include "config/esm_config.h"
#include "kafka/esm_kafka_client.h"

static esm_config *kafka_config_load(const char *extra)
{
    char json[4096];
    snprintf(json, sizeof json,
             "{\"functions\":{\"f\":{\"url\":\"http://127.0.0.1:1/f\"}},"
             "\"event_source_mappings\":[{\"FunctionName\":\"f\","
             "\"SelfManagedEventSource\":{\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":"
             "[\"k1:9092\",\"k2:9093\"]}},\"Topics\":[\"orders\"]%s%s}]}",
             extra[0] ? "," : "", extra);
    esm_config_problems pr = {0};
    esm_config *cfg = esm_config_parse(json, strlen(json), &pr);
    if (!cfg) {
        esm_config_problems_print(&pr, stderr);
        esm_config_problems_free(&pr);
        fail_msg("config did not parse: %s", json);
    }
    esm_config_problems_free(&pr);
    return cfg;
}

/* Whether property k is marked secret (never logged); fails when k is missing. */
static inline bool is_secret(const esm_kafka_props *p, const char *k)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, k) == 0) return p->items[i].secret;
    fail_msg("property %s missing", k);
    return false;
}

#endif
