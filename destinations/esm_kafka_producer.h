/* Kafka producers for kafka:// destinations: one librdkafka producer per bootstrap list and
 * security identity (acks=all, enable.idempotence=true), served from the libev loop through
 * the shared client glue (kafka/esm_kafka_client.h). A destination on a Kafka source's own
 * cluster speaks to it as the source's consumer does: the mapping's SourceAccessConfigurations
 * and the security keys of its KafkaProperties; any other cluster is plaintext. */
#ifndef ESM_KAFKA_PRODUCER_H
#define ESM_KAFKA_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/esm_err.h"
#include "config/esm_config.h"

struct ev_loop;
typedef struct esm_kafka_producers esm_kafka_producers;

/* The delivery report of one message: error NULL = acknowledged by all in-sync replicas;
 * permanent = the cluster refused this message for good (esm_refusal_kafka_permanent). */
typedef void (*esm_kafka_delivery_cb)(void *opaque, const char *error, bool permanent);

esm_kafka_producers *esm_kafka_producers_create(struct ev_loop *loop, long message_timeout_ms);
/* Flushes for at most flush_timeout_ms (delivery reports still arrive), then purges what is
 * left: those messages get a report with an error before this returns. */
void esm_kafka_producers_destroy(esm_kafka_producers *p, long flush_timeout_ms);
/* Queues one message to bootstrap/topic; security is the mapping whose security settings the
 * producer uses (esm_kafka_dest_security), NULL for plaintext. cb is called exactly once
 * later, from the loop (or from destroy). Returns -1 (cb not called) when the message could
 * not be queued; err->retriable is false when librdkafka refused the message itself for good
 * (e.g. larger than message.max.bytes). */
int esm_kafka_produce(esm_kafka_producers *p, const char *bootstrap,
                      const esm_mapping_config *security, const char *topic, const void *key,
                      size_t key_len, const void *value, size_t value_len, esm_kafka_delivery_cb cb,
                      void *opaque, esm_err *err);
/* A producer unused this long with nothing queued is closed by the 1 s tick. */
#define ESM_KAFKA_PRODUCER_IDLE_SECONDS 300.0
/* Closes the producers unused for idle_seconds that hold no message; returns how many. */
size_t esm_kafka_producers_retire_idle(esm_kafka_producers *p, double idle_seconds);
/* Producers alive (one per bootstrap list and security identity). */
size_t esm_kafka_producers_count(const esm_kafka_producers *p);

/* The mapping whose security settings a kafka:// destination uses: source (a Kafka mapping)
 * when the destination is on its cluster — no bootstrap of its own (kafka://TOPIC), or
 * exactly the source's bootstrap list (how kafka://TOPIC is stored, lane/esm_lane.c) —
 * otherwise NULL (plaintext). */
const esm_mapping_config *esm_kafka_dest_security(const char *dest_bootstrap,
                                                  const esm_mapping_config *source);

/* The configuration of a producer to bootstrap (the properties above, the security part from
 * security when not NULL), without callbacks. Returns NULL with err set. */
rd_kafka_conf_t *esm_kafka_producer_conf(const char *bootstrap, const esm_mapping_config *security,
                                         long message_timeout_ms, esm_err *err);

#endif
