/* A kafka:// failure destination of a Kafka source speaks to the source's cluster as the
 * consumer does: the producer built for kafka://TOPIC (and for its stored form
 * kafka://<source bootstrap>/TOPIC) carries the consumer's security settings; a destination on
 * another cluster stays plaintext (destinations/esm_kafka_producer.h). Secret values are
 * compared, never printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "destinations/esm_dest.h"
#include "destinations/esm_kafka_producer.h"
#include "pollers/kafka/esm_kafka_int.h"
#include "tests/unit/kafka_config_helper.h"

/* SCRAM-512 + a client certificate + a root CA, and two KafkaProperties: one security key
 * (taken over by the producer), one consumer setting (not). */
#define SECURED                                                                                    \
    "\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":["                             \
    "{\"Type\":\"SASL_SCRAM_512_AUTH\",\"URI\":\"env:ESMD_TEST_DEST_SASL\"},"                      \
    "{\"Type\":\"CLIENT_CERTIFICATE_TLS_AUTH\",\"URI\":\"env:ESMD_TEST_DEST_TLS\"},"               \
    "{\"Type\":\"SERVER_ROOT_CA_CERTIFICATE\",\"URI\":\"env:ESMD_TEST_DEST_CA\"}],"                \
    "\"EsmdOptions\":{\"KafkaProperties\":{\"ssl.endpoint.identification.algorithm\":\"none\","    \
    "\"session.timeout.ms\":\"6000\"}}"

/* The keys that decide how a client authenticates and encrypts. */
static const char *security_keys[] = {
    "security.protocol", "sasl.mechanism",   "sasl.username",
    "sasl.password",     "ssl.ca.pem",       "ssl.certificate.pem",
    "ssl.key.pem",       "ssl.key.password", "ssl.endpoint.identification.algorithm",
};

static void set_secrets(void)
{
    setenv("ESMD_TEST_DEST_SASL", "{\"username\":\"alice\",\"password\":\"pw-1\"}", 1);
    setenv("ESMD_TEST_DEST_TLS",
           "{\"certificate\":\"CERT\",\"privateKey\":\"KEY\",\"privateKeyPassword\":\"KPW\"}", 1);
    setenv("ESMD_TEST_DEST_CA", "{\"certificate\":\"CA\"}", 1);
}

static void get(const rd_kafka_conf_t *conf, const char *key, char *out, size_t cap)
{
    size_t n = cap;
    if (rd_kafka_conf_get(conf, key, out, &n) != RD_KAFKA_CONF_OK)
        fail_msg("%s cannot be read back", key);
}

/* librdkafka refuses to read back a string property that was never set */
static bool unset(const rd_kafka_conf_t *conf, const char *key)
{
    char v[512];
    size_t n = sizeof v;
    return rd_kafka_conf_get(conf, key, v, &n) != RD_KAFKA_CONF_OK || v[0] == '\0';
}

static rd_kafka_conf_t *consumer_conf(const esm_mapping_config *m)
{
    esm_kafka_props p;
    esm_err err = {0};
    if (esm_kafka_props_build(m, &p, &err) != 0) fail_msg("consumer props: %s", err.message);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (esm_kafka_conf_apply(conf, &p, "test", &err) != 0) fail_msg("apply: %s", err.message);
    esm_kafka_props_free(&p);
    return conf;
}

/* The producer's configuration for destination dest of mapping m, as the outbox builds it. */
static rd_kafka_conf_t *producer_conf(const char *dest, const esm_mapping_config *m)
{
    esm_dest d;
    esm_err err = {0};
    if (esm_dest_parse(dest, &d, &err) != 0) fail_msg("%s: %s", dest, err.message);
    char *joined = esm_kafka_bootstrap_join(m);
    const char *bootstrap = d.bootstrap[0] ? d.bootstrap : joined;
    rd_kafka_conf_t *conf =
        esm_kafka_producer_conf(bootstrap, esm_kafka_dest_security(d.bootstrap, m), 30000, &err);
    free(joined);
    if (!conf) fail_msg("producer conf: %s", err.message);
    return conf;
}

static void expect_same_security(const rd_kafka_conf_t *consumer, const rd_kafka_conf_t *producer)
{
    for (size_t i = 0; i < sizeof security_keys / sizeof *security_keys; i++) {
        char c[512], p[512];
        get(consumer, security_keys[i], c, sizeof c);
        get(producer, security_keys[i], p, sizeof p);
        if (!c[0]) fail_msg("the consumer has no %s", security_keys[i]);
        /* values are secrets: report the key only */
        if (strcmp(c, p) != 0)
            fail_msg("the producer's %s differs from the consumer's", security_keys[i]);
    }
}

static void test_source_cluster_destination_has_the_consumer_security(void **state)
{
    (void)state;
    set_secrets();
    esm_config *cfg = kafka_config_load(SECURED);
    const esm_mapping_config *m = &cfg->mappings[0];
    rd_kafka_conf_t *consumer = consumer_conf(m);
    char v[64];
    get(consumer, "security.protocol", v, sizeof v);
    assert_string_equal(v, "sasl_ssl");
    get(consumer, "sasl.mechanism", v, sizeof v);
    assert_string_equal(v, "SCRAM-SHA-512");
    /* kafka://TOPIC, and the form the lane stores it in */
    const char *dests[] = {"kafka://failures", "kafka://k1:9092,k2:9093/failures"};
    for (size_t i = 0; i < 2; i++) {
        rd_kafka_conf_t *producer = producer_conf(dests[i], m);
        expect_same_security(consumer, producer);
        get(producer, "bootstrap.servers", v, sizeof v);
        assert_string_equal(v, "k1:9092,k2:9093");
        get(producer, "acks", v, sizeof v);
        assert_string_equal(v, "-1"); /* all */
        /* consumer settings stay with the consumer */
        get(producer, "session.timeout.ms", v, sizeof v);
        assert_string_not_equal(v, "6000");
        rd_kafka_conf_destroy(producer);
    }
    rd_kafka_conf_destroy(consumer);
    esm_config_destroy(cfg);
}

static void test_other_cluster_destination_is_plaintext(void **state)
{
    (void)state;
    set_secrets();
    esm_config *cfg = kafka_config_load(SECURED);
    const esm_mapping_config *m = &cfg->mappings[0];
    /* another cluster, and a sub-list of the source's: not the source's bootstrap list */
    const char *dests[] = {"kafka://other:9092/failures", "kafka://k1:9092/failures"};
    for (size_t i = 0; i < 2; i++) {
        esm_dest d;
        esm_err err = {0};
        assert_int_equal(esm_dest_parse(dests[i], &d, &err), 0);
        assert_null(esm_kafka_dest_security(d.bootstrap, m));
        rd_kafka_conf_t *producer = producer_conf(dests[i], m);
        char v[512];
        get(producer, "security.protocol", v, sizeof v);
        assert_string_equal(v, "plaintext");
        assert_true(unset(producer, "sasl.username"));
        assert_true(unset(producer, "sasl.password"));
        assert_true(unset(producer, "ssl.key.pem"));
        assert_true(unset(producer, "ssl.ca.pem"));
        get(producer, "ssl.endpoint.identification.algorithm", v, sizeof v);
        assert_string_not_equal(v, "none");
        rd_kafka_conf_destroy(producer);
    }
    esm_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_cluster_destination_has_the_consumer_security),
        cmocka_unit_test(test_other_cluster_destination_is_plaintext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
