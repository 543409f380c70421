/* What every librdkafka client of esmd shares: the Kafka source's consumer (pollers/kafka/) and
 * the outbox's producers (destinations/esm_kafka_producer.c). A mapping's security settings
 * (SourceAccessConfigurations, the security keys of EsmdOptions.KafkaProperties) become
 * librdkafka properties here, librdkafka's log and error callbacks go to esmd's log, and a
 * librdkafka queue wakes the libev loop through a pipe (rd_kafka_queue_io_event_enable). */
#ifndef ESM_KAFKA_CLIENT_H
#define ESM_KAFKA_CLIENT_H

#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"
#include "config/esm_config.h"

/* "h1:p1,h2:p2" from SelfManagedEventSource; malloc'ed (NULL when out of memory). */
char *esm_kafka_bootstrap_join(const esm_mapping_config *m);

/* librdkafka properties in the order they are applied. Values that come from secrets are
 * marked so they are never logged. */
typedef struct {
    char *name;
    char *value;
    bool secret;
} esm_kafka_prop;

typedef struct {
    esm_kafka_prop *items;
    size_t n, cap;
} esm_kafka_props;

void esm_kafka_props_free(esm_kafka_props *p);
/* The value of name, or NULL. */
const char *esm_kafka_props_get(const esm_kafka_props *p, const char *name);
/* Sets (replaces) name; returns 0 or -1 when out of memory. */
int esm_kafka_props_set(esm_kafka_props *p, const char *name, const char *value, bool secret);
/* Removes name (when set). */
void esm_kafka_props_unset(esm_kafka_props *p, const char *name);

/* Reads a secret reference: "env:VAR" or "file:/path". Returns the malloc'ed content, or NULL
 * with err set (unknown scheme, unset variable, unreadable file). */
char *esm_kafka_secret_read(const char *uri, esm_err *err);

/* Reads every SourceAccessConfigurations secret of cfg's mappings and keeps a hash of its
 * content in the entry's fingerprint (0 when unreadable: the mapping's start reports why), so
 * that a reload after a secret was rotated restarts the mapping with the new one. */
void esm_kafka_secrets_fingerprint(esm_config *cfg);

/* SourceAccessConfigurations -> properties (added to p):
 *   BASIC_AUTH                  SASL_SSL + PLAIN,          secret {"username","password"}
 *   SASL_SCRAM_256_AUTH         SASL_SSL + SCRAM-SHA-256,  same secret
 *   SASL_SCRAM_512_AUTH         SASL_SSL + SCRAM-SHA-512,  same secret
 *   CLIENT_CERTIFICATE_TLS_AUTH SSL (SASL_SSL with a SASL type): ssl.certificate.pem,
 *                               ssl.key.pem, ssl.key.password from {"certificate",
 *                               "privateKey","privateKeyPassword"}
 *   SERVER_ROOT_CA_CERTIFICATE  ssl.ca.pem from {"certificate"}
 *   VPC_SUBNET / VPC_SECURITY_GROUP: no meaning outside AWS, ignored.
 * The URI is a Secrets Manager ARN on AWS; esmd reads `env:VAR` (the variable holds the secret
 * JSON) or `file:/path` (the file holds it). An ARN is refused with that advice. Returns 0, or
 * -1 with err set (the message names the entry, never a secret value). */
int esm_kafka_props_add_access(esm_kafka_props *p, const esm_mapping_config *m, esm_err *err);

/* Whether a librdkafka property is part of how a client authenticates or encrypts
 * (security.protocol, sasl.*, ssl.*, enable.ssl.* ...): what a producer to the source cluster
 * takes over from KafkaProperties. */
bool esm_kafka_security_key(const char *name);
/* Whether a KafkaProperties value under this name is a secret (a password, a private key). */
bool esm_kafka_secret_key(const char *name);

/* The security part of a client of the mapping's cluster: SourceAccessConfigurations
 * (esm_kafka_props_add_access), then the security keys of KafkaProperties (they win, as in
 * the consumer). Returns 0, or -1 with err set. */
int esm_kafka_props_add_security(esm_kafka_props *p, const esm_mapping_config *m, esm_err *err);

/* Appends what identifies the mapping's security settings: the secret references (Type, URI
 * and the content's fingerprint) and the security keys of KafkaProperties. Two mappings with the
 * same identity talk to a cluster the same way. It may hold KafkaProperties secrets: compare it,
 * never log it. */
void esm_kafka_security_identity(const esm_mapping_config *m, esm_buf *out);

/* Sets every property on conf, logging each at debug level (secrets as "(secret)").
 * Returns 0, or -1 with err naming the property librdkafka refused. */
int esm_kafka_conf_apply(rd_kafka_conf_t *conf, const esm_kafka_props *p, const char *log_ctx,
                         esm_err *err);

/* The first member of every esmd librdkafka client's opaque (rd_kafka_conf_set_opaque), so
 * the shared log and error callbacks find the log context. */
typedef struct esm_kafka_glue {
    const char *log_ctx;     /* NULL: "kafka" */
    bool quiet_brokers_down; /* all brokers down at debug level, not as a warning */
    /* After an error was logged (fatal at error level; all brokers down, authentication and
     * TLS errors as warnings; others at debug level). fatal: the client is unusable, reason is
     * rd_kafka_fatal_error's. NULL: nothing more. */
    void (*on_error)(struct esm_kafka_glue *g, rd_kafka_resp_err_t err, const char *reason,
                     bool fatal);
} esm_kafka_glue;

/* The problem in AWS's LastProcessingResult words ("SASL authentication failed", "Server
 * failed to authenticate Lambda", "Lambda failed to authenticate server", "Cluster failed to
 * authorize Lambda", "Provided certificate or private key is invalid", "Connection error",
 * "Topic not found") that an error reported by librdkafka means; NULL when the error does not
 * keep a client from its cluster (a single broker's transport error librdkafka recovers from). */
const char *esm_kafka_problem(rd_kafka_resp_err_t err, const char *reason);
/* Two of its answers, compared by address: the certificate or key cannot be used; no broker
 * answers. */
extern const char esm_kafka_bad_certificate[], esm_kafka_no_connection[];
/* Whether problem (one of esm_kafka_problem's) is over once a broker is reachable again:
 * connection, TLS and SASL problems; not authorization or a missing topic. */
bool esm_kafka_problem_ends_when_connected(const char *problem);
/* What librdkafka's statistics (stats_cb) say of the real brokers (bootstrap and learned;
 * not the logical GroupCoordinator, not the internal one): one is UP (connected, TLS and SASL
 * passed), none is, or the text does not tell. */
typedef enum {
    ESM_KAFKA_STATS_UNKNOWN,
    ESM_KAFKA_STATS_BROKER_UP,
    ESM_KAFKA_STATS_NONE_UP
} esm_kafka_stats_brokers;
esm_kafka_stats_brokers esm_kafka_stats_brokers_of(const char *stats_json);

/* Sets the opaque (g, the first member of the client's state) and the log and error
 * callbacks. */
void esm_kafka_conf_set_glue(rd_kafka_conf_t *conf, esm_kafka_glue *g);

/* A librdkafka queue waking the libev loop: librdkafka writes to a pipe when the queue becomes
 * non-empty; the pipe's ev_io calls cb. cb drains the pipe (esm_kafka_wakeup_drain) before it
 * polls the queue. */
typedef struct {
    rd_kafka_queue_t *q;
    int fd[2];
    ev_io io;
    struct ev_loop *loop;
    void (*cb)(void *arg);
    void *arg;
} esm_kafka_wakeup;

/* Makes close safe on a wakeup that was never opened. */
void esm_kafka_wakeup_init(esm_kafka_wakeup *w);
/* Takes q (NULL fails; close destroys it): opens the pipe and enables the queue's io events.
 * Returns 0, or -1 with err set. The watcher is not started yet. */
int esm_kafka_wakeup_open(esm_kafka_wakeup *w, struct ev_loop *loop, rd_kafka_queue_t *q,
                          void (*cb)(void *arg), void *arg, esm_err *err);
void esm_kafka_wakeup_start(esm_kafka_wakeup *w);
/* Reads what the pipe holds (the queue's io events re-arm only once it is empty). */
void esm_kafka_wakeup_drain(esm_kafka_wakeup *w);
/* Stops the watcher, disables the io events, destroys the queue and closes the pipe. Call
 * before rd_kafka_destroy. */
void esm_kafka_wakeup_close(esm_kafka_wakeup *w);

#endif
