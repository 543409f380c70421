/* The Kafka event in AWS's shape (docs/design.md "Kafka event"), rendered without librdkafka so it
 * can be tested byte for byte:
 *   {"eventSource":"SelfManagedKafka","bootstrapServers":"h:p,...",
 *    "records":{"<topic>-<partition>":[{topic,partition,offset,timestamp,timestampType,
 *                                       key?,value?,headers:[{"name":[signed bytes]}]}]}}
 * Each record is rendered once when it is polled; an event is the envelope around the
 * pre-rendered records of one partition. */
#ifndef ESM_KAFKA_RENDER_H
#define ESM_KAFKA_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"
#include "config/esm_config.h"

typedef enum {
    ESM_KAFKA_TS_NONE,      /* "NO_TIMESTAMP_TYPE", timestamp -1 */
    ESM_KAFKA_TS_CREATE,    /* "CREATE_TIME" */
    ESM_KAFKA_TS_LOG_APPEND /* "LOG_APPEND_TIME" */
} esm_kafka_ts_type;

typedef struct {
    const char *name;
    size_t name_len;
    const void *value; /* NULL: a header with a null value, rendered as [] */
    size_t value_len;
} esm_kafka_header;

typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    esm_kafka_ts_type timestamp_type;
    const void *key; /* NULL: null key, "key" is left out (AWS: absent when null) */
    size_t key_len;
    const void *value; /* NULL: null value (tombstone), "value" is left out */
    size_t value_len;
    const esm_kafka_header *headers;
    size_t n_headers;
} esm_kafka_record_view;

/* Appends one record object. Header names are JSON-escaped (invalid UTF-8 becomes U+FFFD);
 * header values are arrays of signed byte values (-128..127), as Java's byte[] on AWS. */
void esm_kafka_render_record(const esm_kafka_record_view *r, esm_buf *out);

/* The envelope: open writes everything up to and including the '[' of the partition's array,
 * close writes "]}}". Records go in between, separated by ','. */
void esm_kafka_render_event_open(const char *bootstrap, const char *topic, int32_t partition,
                                 esm_buf *out);
void esm_kafka_render_event_close(esm_buf *out);
/* Bytes of open + close for this partition: the envelope of esm_event_size (an event of n
 * records of total length L has esm_event_size(overhead, n, L) bytes). */
size_t esm_kafka_event_overhead(const char *bootstrap, const char *topic, int32_t partition);

/* "h1:p1,h2:p2" from SelfManagedEventSource; malloc'ed (NULL when out of memory). */
char *esm_kafka_bootstrap_join(const esm_mapping_config *m);

#endif
