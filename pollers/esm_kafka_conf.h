/* Mapping config -> librdkafka consumer properties, in the order they are applied:
 *   1. esmd's base: bootstrap.servers, group.id, client.id, enable.auto.offset.store=false
 *      (offsets are stored only after a final outcome), enable.auto.commit=true (flushes the
 *      stored offsets periodically and on revoke/close), auto.offset.reset from
 *      StartingPosition (TRIM_HORIZON/AT_TIMESTAMP earliest, LATEST latest),
 *      enable.partition.eof=false.
 *   2. SourceAccessConfigurations:
 *        BASIC_AUTH                  SASL_SSL + PLAIN,          secret {"username","password"}
 *        SASL_SCRAM_256_AUTH         SASL_SSL + SCRAM-SHA-256,  same secret
 *        SASL_SCRAM_512_AUTH         SASL_SSL + SCRAM-SHA-512,  same secret
 *        CLIENT_CERTIFICATE_TLS_AUTH SSL (SASL_SSL with a SASL type): ssl.certificate.pem,
 *                                    ssl.key.pem, ssl.key.password from {"certificate",
 *                                    "privateKey","privateKeyPassword"}
 *        SERVER_ROOT_CA_CERTIFICATE  ssl.ca.pem from {"certificate"}
 *        VPC_SUBNET / VPC_SECURITY_GROUP: no meaning outside AWS, ignored.
 *      The URI is a Secrets Manager ARN on AWS; esmd reads `env:VAR` (the variable holds the
 *      secret JSON) or `file:/path` (the file holds it). An ARN is refused with that advice.
 *   3. EsmdOptions.KafkaProperties, verbatim (they win), except the keys esmd manages:
 *      bootstrap.servers, group.id and enable.auto.offset.store are refused.
 * Values that come from secrets are marked so they are never logged. */
#ifndef ESM_KAFKA_CONF_H
#define ESM_KAFKA_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/esm_err.h"
#include "config/esm_config.h"

typedef struct {
    char *name;
    char *value;
    bool secret;
} esm_kafka_prop;

typedef struct {
    esm_kafka_prop *items;
    size_t n, cap;
} esm_kafka_props;

/* Fills out (initialised here). Returns 0, or -1 with err set (the message names the
 * offending SourceAccessConfigurations entry or KafkaProperties key); out is then empty. */
int esm_kafka_props_build(const esm_mapping_config *m, esm_kafka_props *out, esm_err *err);
void esm_kafka_props_free(esm_kafka_props *p);
/* The value of name, or NULL. */
const char *esm_kafka_props_get(const esm_kafka_props *p, const char *name);
/* Sets (replaces) name; returns 0 or -1 when out of memory. */
int esm_kafka_props_set(esm_kafka_props *p, const char *name, const char *value, bool secret);

/* Reads a secret reference: "env:VAR" or "file:/path". Returns the malloc'ed content, or NULL
 * with err set (unknown scheme, unset variable, unreadable file). */
char *esm_kafka_secret_read(const char *uri, esm_err *err);

/* The consumer group: ConsumerGroupId (the config defaults it to "esmd-" + the mapping UUID). */
const char *esm_kafka_group_id(const esm_mapping_config *m);

#endif
