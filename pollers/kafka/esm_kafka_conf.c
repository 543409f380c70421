/* The consumer's part of its librdkafka configuration (esm_kafka_props_build); the security
 * part is kafka/esm_kafka_security.c, shared with the outbox's producers. */
#include "pollers/kafka/esm_kafka_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *esm_kafka_group_id(const esm_mapping_config *m)
{
    return m->consumer_group_id ? m->consumer_group_id : m->uuid;
}

char *esm_kafka_source_key(const esm_mapping_config *m)
{
    char *bs = esm_kafka_bootstrap_join(m);
    if (!bs || !m->topic) {
        free(bs);
        return NULL;
    }
    size_t n = strlen(bs) + strlen(m->topic) + 2;
    char *key = malloc(n);
    if (key) snprintf(key, n, "%s/%s", bs, m->topic);
    free(bs);
    return key;
}

static bool managed_key(const char *k)
{
    return strcmp(k, "bootstrap.servers") == 0 || strcmp(k, "group.id") == 0 ||
           strcmp(k, "enable.auto.offset.store") == 0;
}

int esm_kafka_props_build(const esm_mapping_config *m, esm_kafka_props *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    char *bs = esm_kafka_bootstrap_join(m);
    /* Never "latest": a fetch out of range (retention passed a lagging or disabled lane) would
     * then skip the whole log. LATEST is applied at assignment, only to a partition with no
     * offset anywhere (esm_kafka.c check_logs). */
    const char *reset = "earliest";
    bool fail = !bs || esm_kafka_props_set(out, "bootstrap.servers", bs, false) ||
                esm_kafka_props_set(out, "group.id", esm_kafka_group_id(m), false) ||
                esm_kafka_props_set(out, "client.id", "esmd", false) ||
                esm_kafka_props_set(out, "enable.auto.offset.store", "false", false) ||
                esm_kafka_props_set(out, "enable.auto.commit", "true", false) ||
                esm_kafka_props_set(out, "auto.offset.reset", reset, false) ||
                esm_kafka_props_set(out, "enable.partition.eof", "false", false) ||
                /* statistics tell when a broker is up again (a problem ends): esm_kafka.c */
                esm_kafka_props_set(out, "statistics.interval.ms", "5000", false) ||
                /* librdkafka 2.0 stops fetching a partition for a whole second once its queue
                 * holds queued.min.messages (100 000 by default, about half a second of work at
                 * BatchSize 1000): let queued.max.messages.kbytes (64 MB) bound it instead. */
                esm_kafka_props_set(out, "queued.min.messages", "1000000", false);
    free(bs);
    if (fail) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        esm_kafka_props_free(out);
        return -1;
    }
    if (esm_kafka_props_add_access(out, m, err) != 0) {
        esm_kafka_props_free(out);
        return -1;
    }
    for (size_t i = 0; i < m->n_kafka_properties; i++) {
        const esm_kv *kv = &m->kafka_properties[i];
        if (managed_key(kv->name)) {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "EsmdOptions.KafkaProperties: '%s' is managed by esmd and cannot be set%s",
                        kv->name,
                        strcmp(kv->name, "group.id") == 0
                            ? " (use SelfManagedKafkaEventSourceConfig.ConsumerGroupId)"
                            : "");
            esm_kafka_props_free(out);
            return -1;
        }
        if (esm_kafka_props_set(out, kv->name, kv->value, esm_kafka_secret_key(kv->name))) {
            esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
            esm_kafka_props_free(out);
            return -1;
        }
    }
    return 0;
}
