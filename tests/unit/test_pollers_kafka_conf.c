/* Mapping config -> librdkafka properties (pollers/kafka/esm_kafka_int.h): esmd's base settings,
 * starting positions, SourceAccessConfigurations with env:/file: secrets, pass-through
 * properties and the keys esmd refuses to hand over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pollers/kafka/esm_kafka_int.h"
#include "tests/unit/kafka_config_helper.h"

static esm_config *load(const char *extra)
{
    return kafka_config_load(extra);
}

static void expect_prop(const esm_kafka_props *p, const char *k, const char *v)
{
    const char *got = esm_kafka_props_get(p, k);
    if (!got) fail_msg("property %s missing", k);
    if (strcmp(got, v) != 0) fail_msg("property %s = %s, want %s", k, got, v);
}

static void build_ok(const char *extra, esm_kafka_props *out, esm_config **cfg)
{
    *cfg = load(extra);
    esm_err err;
    esm_err_clear(&err);
    if (esm_kafka_props_build(&(*cfg)->mappings[0], out, &err) != 0)
        fail_msg("build failed: %s", err.message);
}

static void build_fails(const char *extra, const char *why_part)
{
    esm_config *cfg = load(extra);
    esm_kafka_props p;
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(esm_kafka_props_build(&cfg->mappings[0], &p, &err), -1);
    assert_int_equal(p.n, 0);
    if (!strstr(err.message, why_part))
        fail_msg("error \"%s\" lacks \"%s\"", err.message, why_part);
    esm_config_destroy(cfg);
}

static void managed_fails(const char *key, const char *why_part)
{
    esm_config *cfg = load("\"StartingPosition\":\"LATEST\"");
    esm_mapping_config *m = &cfg->mappings[0];
    esm_kv kv = {.name = (char *)key, .value = "x"};
    esm_kv *saved = m->kafka_properties;
    size_t n_saved = m->n_kafka_properties;
    m->kafka_properties = &kv;
    m->n_kafka_properties = 1;
    esm_kafka_props p;
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(esm_kafka_props_build(m, &p, &err), -1);
    m->kafka_properties = saved;
    m->n_kafka_properties = n_saved;
    if (!strstr(err.message, why_part))
        fail_msg("error \"%s\" lacks \"%s\"", err.message, why_part);
    esm_config_destroy(cfg);
}

static void test_base_properties(void **state)
{
    (void)state;
    esm_config *cfg;
    esm_kafka_props p;
    build_ok("\"StartingPosition\":\"TRIM_HORIZON\"", &p, &cfg);
    expect_prop(&p, "bootstrap.servers", "k1:9092,k2:9093");
    char group[80];
    snprintf(group, sizeof group, "esmd-%s", cfg->mappings[0].uuid);
    expect_prop(&p, "group.id", group); /* default group: stable per mapping */
    expect_prop(&p, "enable.auto.offset.store", "false");
    expect_prop(&p, "enable.auto.commit", "true");
    expect_prop(&p, "auto.offset.reset", "earliest");
    expect_prop(&p, "enable.partition.eof", "false");
    /* the bytes bound, not librdkafka's 100 000-message one (a 1 s fetch stall), applies */
    expect_prop(&p, "queued.min.messages", "1000000");
    assert_null(esm_kafka_props_get(&p, "security.protocol"));
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
}

static void test_starting_positions_and_group(void **state)
{
    (void)state;
    esm_config *cfg;
    esm_kafka_props p;
    build_ok("\"StartingPosition\":\"LATEST\",\"SelfManagedKafkaEventSourceConfig\":"
             "{\"ConsumerGroupId\":\"my-group\"}",
             &p, &cfg);
    /* LATEST is applied at assignment: a fetch out of range never skips the log */
    expect_prop(&p, "auto.offset.reset", "earliest");
    expect_prop(&p, "group.id", "my-group");
    assert_string_equal(esm_kafka_group_id(&cfg->mappings[0]), "my-group");
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
    build_ok("\"StartingPosition\":\"AT_TIMESTAMP\",\"StartingPositionTimestamp\":1700000000", &p,
             &cfg);
    expect_prop(&p, "auto.offset.reset", "earliest");
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
}

static void test_sasl_scram_from_env(void **state)
{
    (void)state;
    setenv("ESMD_TEST_KAFKA_SECRET", "{\"username\":\"alice\",\"password\":\"s3cr3t\"}", 1);
    esm_config *cfg;
    esm_kafka_props p;
    build_ok("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
             "[{\"Type\":\"SASL_SCRAM_512_AUTH\",\"URI\":\"env:ESMD_TEST_KAFKA_SECRET\"},"
             "{\"Type\":\"VPC_SUBNET\",\"URI\":\"subnet:subnet-1\"}]",
             &p, &cfg);
    expect_prop(&p, "security.protocol", "SASL_SSL");
    expect_prop(&p, "sasl.mechanism", "SCRAM-SHA-512");
    expect_prop(&p, "sasl.username", "alice");
    expect_prop(&p, "sasl.password", "s3cr3t");
    assert_true(is_secret(&p, "sasl.password"));
    assert_false(is_secret(&p, "sasl.username"));
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
    unsetenv("ESMD_TEST_KAFKA_SECRET");
}

static void test_basic_auth_and_mtls_from_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/esmd-kafka-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char basic[128], tls[128], ca[128];
    snprintf(basic, sizeof basic, "%s/basic.json", dir);
    snprintf(tls, sizeof tls, "%s/tls.json", dir);
    snprintf(ca, sizeof ca, "%s/ca.json", dir);
    FILE *f = fopen(basic, "w");
    fputs("{\"username\":\"u\",\"password\":\"p\"}", f);
    fclose(f);
    f = fopen(tls, "w");
    fputs("{\"certificate\":\"CERT\",\"privateKey\":\"KEY\",\"privateKeyPassword\":\"KPW\"}", f);
    fclose(f);
    f = fopen(ca, "w");
    fputs("{\"certificate\":\"CA\"}", f);
    fclose(f);
    char extra[1024];
    snprintf(extra, sizeof extra,
             "\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":["
             "{\"Type\":\"BASIC_AUTH\",\"URI\":\"file:%s\"},"
             "{\"Type\":\"CLIENT_CERTIFICATE_TLS_AUTH\",\"URI\":\"file:%s\"},"
             "{\"Type\":\"SERVER_ROOT_CA_CERTIFICATE\",\"URI\":\"file:%s\"}]",
             basic, tls, ca);
    esm_config *cfg;
    esm_kafka_props p;
    build_ok(extra, &p, &cfg);
    expect_prop(&p, "security.protocol", "SASL_SSL");
    expect_prop(&p, "sasl.mechanism", "PLAIN");
    expect_prop(&p, "ssl.certificate.pem", "CERT");
    expect_prop(&p, "ssl.key.pem", "KEY");
    expect_prop(&p, "ssl.key.password", "KPW");
    expect_prop(&p, "ssl.ca.pem", "CA");
    assert_true(is_secret(&p, "ssl.key.pem"));
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
    /* TLS only: SSL */
    snprintf(extra, sizeof extra,
             "\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":["
             "{\"Type\":\"SERVER_ROOT_CA_CERTIFICATE\",\"URI\":\"file:%s\"}]",
             ca);
    build_ok(extra, &p, &cfg);
    expect_prop(&p, "security.protocol", "SSL");
    assert_null(esm_kafka_props_get(&p, "sasl.mechanism"));
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
    unlink(basic);
    unlink(tls);
    unlink(ca);
    rmdir(dir);
}

static void test_secret_errors(void **state)
{
    (void)state;
    unsetenv("ESMD_TEST_KAFKA_UNSET");
    build_fails("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
                "[{\"Type\":\"BASIC_AUTH\",\"URI\":"
                "\"arn:aws:secretsmanager:us-east-1:000000000000:secret:x\"}]",
                "env:VARIABLE or file:/path");
    build_fails("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
                "[{\"Type\":\"BASIC_AUTH\",\"URI\":\"env:ESMD_TEST_KAFKA_UNSET\"}]",
                "not set");
    build_fails("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
                "[{\"Type\":\"BASIC_AUTH\",\"URI\":\"file:/nonexistent/secret.json\"}]",
                "No such file");
    setenv("ESMD_TEST_KAFKA_SECRET", "{\"username\":\"alice\"}", 1);
    build_fails("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
                "[{\"Type\":\"BASIC_AUTH\",\"URI\":\"env:ESMD_TEST_KAFKA_SECRET\"}]",
                "\"password\"");
    setenv("ESMD_TEST_KAFKA_SECRET", "not json", 1);
    build_fails("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
                "[{\"Type\":\"BASIC_AUTH\",\"URI\":\"env:ESMD_TEST_KAFKA_SECRET\"}]",
                "not a JSON object");
    setenv("ESMD_TEST_KAFKA_SECRET", "{\"username\":\"a\",\"password\":\"b\"}", 1);
    build_fails("\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":"
                "[{\"Type\":\"BASIC_AUTH\",\"URI\":\"env:ESMD_TEST_KAFKA_SECRET\"},"
                "{\"Type\":\"SASL_SCRAM_256_AUTH\",\"URI\":\"env:ESMD_TEST_KAFKA_SECRET\"}]",
                "only one SASL");
    unsetenv("ESMD_TEST_KAFKA_SECRET");
}

static void test_pass_through_wins_but_managed_keys_refused(void **state)
{
    (void)state;
    esm_config *cfg;
    esm_kafka_props p;
    build_ok("\"StartingPosition\":\"LATEST\",\"EsmdOptions\":{\"KafkaProperties\":"
             "{\"session.timeout.ms\":\"6000\",\"auto.offset.reset\":\"earliest\","
             "\"security.protocol\":\"SASL_PLAINTEXT\",\"queued.min.messages\":\"5000\","
             "\"sasl.password\":\"pw\"}}",
             &p, &cfg);
    assert_true(is_secret(&p, "sasl.password")); /* never logged, as a secret file's would be */
    assert_false(is_secret(&p, "session.timeout.ms"));
    expect_prop(&p, "session.timeout.ms", "6000");
    expect_prop(&p, "queued.min.messages", "5000");
    expect_prop(&p, "auto.offset.reset", "earliest");
    expect_prop(&p, "security.protocol", "SASL_PLAINTEXT");
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
    /* The config loader refuses these already; the builder does not rely on it. */
    managed_fails("enable.auto.offset.store", "'enable.auto.offset.store' is managed by esmd");
    managed_fails("group.id", "ConsumerGroupId");
    managed_fails("bootstrap.servers", "'bootstrap.servers' is managed");
}

static void test_props_set_replaces(void **state)
{
    (void)state;
    esm_kafka_props p = {0};
    assert_int_equal(esm_kafka_props_set(&p, "a", "1", false), 0);
    assert_int_equal(esm_kafka_props_set(&p, "b", "2", false), 0);
    assert_int_equal(esm_kafka_props_set(&p, "a", "3", true), 0);
    assert_int_equal(p.n, 2);
    expect_prop(&p, "a", "3");
    assert_true(is_secret(&p, "a"));
    assert_null(esm_kafka_props_get(&p, "c"));
    esm_kafka_props_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_properties),
        cmocka_unit_test(test_starting_positions_and_group),
        cmocka_unit_test(test_sasl_scram_from_env),
        cmocka_unit_test(test_basic_auth_and_mtls_from_files),
        cmocka_unit_test(test_secret_errors),
        cmocka_unit_test(test_pass_through_wins_but_managed_keys_refused),
        cmocka_unit_test(test_props_set_replaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
