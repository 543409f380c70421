/* Kafka producers for kafka:// destinations: one librdkafka producer per bootstrap list
 * (acks=all, enable.idempotence=true), served from the libev loop through
 * rd_kafka_queue_io_event_enable (a pipe librdkafka writes to when its queue fills). */
#ifndef ESM_KAFKA_PRODUCER_H
#define ESM_KAFKA_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/esm_err.h"

struct ev_loop;
typedef struct esm_kafka_producers esm_kafka_producers;

/* The delivery report of one message: error NULL = acknowledged by all in-sync replicas;
 * permanent = the cluster refused this message for good (esm_refusal_kafka_permanent). */
typedef void (*esm_kafka_delivery_cb)(void *opaque, const char *error, bool permanent);

esm_kafka_producers *esm_kafka_producers_create(struct ev_loop *loop, long message_timeout_ms);
/* Flushes for at most flush_timeout_ms (delivery reports still arrive), then purges what is
 * left: those messages get a report with an error before this returns. */
void esm_kafka_producers_destroy(esm_kafka_producers *p, long flush_timeout_ms);
/* Queues one message; cb is called exactly once later, from the loop (or from destroy).
 * Returns -1 (cb not called) when the message could not be queued; err->retriable is false
 * when librdkafka refused the message itself for good (e.g. larger than message.max.bytes). */
int esm_kafka_produce(esm_kafka_producers *p, const char *bootstrap, const char *topic,
                      const void *key, size_t key_len, const void *value, size_t value_len,
                      esm_kafka_delivery_cb cb, void *opaque, esm_err *err);

#endif
