/* A config with one Kafka mapping (bootstrap k1:9092,k2:9093, topic "orders") for the tests of
 * Kafka client settings; extra is spliced into the mapping object. Header-only (static
 * functions); include it after cmocka.h. */
#ifndef KAFKA_CONFIG_HELPER_H
#define KAFKA_CONFIG_HELPER_H

#include <stdio.h>
#include <string.h>

#include "config/esm_config.h"

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

#endif
