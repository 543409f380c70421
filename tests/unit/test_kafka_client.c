/* What the Kafka clients share (kafka/esm_kafka_client.h): the bootstrap list, the security
 * part of a configuration and its identity, the queue's wakeup pipe on the libev loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/esm_kafka_client.h"
#include "tests/unit/kafka_config_helper.h"

static void test_bootstrap_join(void **state)
{
    (void)state;
    char *servers[] = {"a:1", "b:2", "c:3"};
    esm_mapping_config m;
    memset(&m, 0, sizeof m);
    m.bootstrap_servers = servers;
    m.n_bootstrap_servers = 3;
    char *s = esm_kafka_bootstrap_join(&m);
    assert_string_equal(s, "a:1,b:2,c:3");
    free(s);
    m.n_bootstrap_servers = 1;
    s = esm_kafka_bootstrap_join(&m);
    assert_string_equal(s, "a:1");
    free(s);
}

#define ACCESS(var)                                                                                \
    "\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":["                             \
    "{\"Type\":\"BASIC_AUTH\",\"URI\":\"env:" var "\"}]"

static void test_security_part_takes_security_keys_only(void **state)
{
    (void)state;
    setenv("ESMD_TEST_CLIENT_SASL", "{\"username\":\"u\",\"password\":\"p\"}", 1);
    esm_config *cfg = kafka_config_load(ACCESS(
        "ESMD_TEST_CLIENT_SASL") ",\"EsmdOptions\":{\"KafkaProperties\":{"
                                 "\"security.protocol\":\"SASL_PLAINTEXT\","
                                 "\"ssl.key.password\":\"kpw\",\"fetch.max.bytes\":\"1000\"}}");
    esm_kafka_props p = {0};
    esm_err err = {0};
    assert_int_equal(esm_kafka_props_add_security(&p, &cfg->mappings[0], &err), 0);
    assert_string_equal(esm_kafka_props_get(&p, "sasl.mechanism"), "PLAIN");
    assert_string_equal(esm_kafka_props_get(&p, "sasl.username"), "u");
    assert_true(is_secret(&p, "sasl.password"));
    /* KafkaProperties win, as in the consumer; a password among them is a secret */
    assert_string_equal(esm_kafka_props_get(&p, "security.protocol"), "SASL_PLAINTEXT");
    assert_true(is_secret(&p, "ssl.key.password"));
    assert_false(is_secret(&p, "security.protocol"));
    assert_null(esm_kafka_props_get(&p, "fetch.max.bytes"));
    assert_null(esm_kafka_props_get(&p, "bootstrap.servers"));
    esm_kafka_props_free(&p);
    esm_config_destroy(cfg);
    unsetenv("ESMD_TEST_CLIENT_SASL");
}

static void test_security_identity(void **state)
{
    (void)state;
    esm_config *a = kafka_config_load(ACCESS("X"));
    esm_config *a2 = kafka_config_load(ACCESS("X") ",\"BatchSize\":7");
    esm_config *b = kafka_config_load(ACCESS("Y"));
    esm_config *c = kafka_config_load(
        ACCESS("X") ",\"EsmdOptions\":{\"KafkaProperties\":{\"sasl.username\":\"v\"}}");
    esm_config *plain = kafka_config_load("\"StartingPosition\":\"LATEST\"");
    esm_buf ia, ia2, ib, ic, ip;
    esm_buf *all[] = {&ia, &ia2, &ib, &ic, &ip};
    esm_config *cfgs[] = {a, a2, b, c, plain};
    for (size_t i = 0; i < 5; i++) {
        esm_buf_init(all[i]);
        esm_kafka_security_identity(&cfgs[i]->mappings[0], all[i]);
    }
    assert_string_equal(esm_buf_cstr(&ia), esm_buf_cstr(&ia2)); /* other settings do not count */
    assert_string_not_equal(esm_buf_cstr(&ia), esm_buf_cstr(&ib));
    assert_string_not_equal(esm_buf_cstr(&ia), esm_buf_cstr(&ic));
    assert_int_equal(ip.len, 0);
    for (size_t i = 0; i < 5; i++) {
        esm_buf_free(all[i]);
        esm_config_destroy(cfgs[i]);
    }
}

typedef struct {
    rd_kafka_t *rk;
    esm_kafka_wakeup w;
    int wakeups, reports;
} wake_test;

static void on_wakeup(void *arg)
{
    wake_test *t = arg;
    t->wakeups++;
    esm_kafka_wakeup_drain(&t->w);
    while (rd_kafka_poll(t->rk, 0) > 0) {
    }
    if (t->reports > 0) ev_break(t->w.loop, EVBREAK_ALL);
}

static void on_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)m;
    ((wake_test *)opaque)->reports++;
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* A delivery report on the main queue wakes the loop through the pipe. */
static void test_wakeup_pipe_wakes_the_loop(void **state)
{
    (void)state;
    wake_test t = {0};
    esm_kafka_wakeup_init(&t.w);
    esm_kafka_wakeup_close(&t.w); /* closing one never opened is safe */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char es[256];
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", es, sizeof es),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, on_report);
    rd_kafka_conf_set_opaque(conf, &t);
    t.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    assert_non_null(t.rk);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    esm_err err = {0};
    assert_int_equal(
        esm_kafka_wakeup_open(&t.w, loop, rd_kafka_queue_get_main(t.rk), on_wakeup, &t, &err), 0);
    esm_kafka_wakeup_start(&t.w);
    assert_int_equal(rd_kafka_producev(t.rk, RD_KAFKA_V_TOPIC("t"), RD_KAFKA_V_VALUE("v", 1),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    rd_kafka_purge(t.rk, RD_KAFKA_PURGE_F_QUEUE); /* its report is queued now */
    ev_timer deadline;
    ev_timer_init(&deadline, on_deadline, 10.0, 0.);
    ev_timer_start(loop, &deadline);
    ev_run(loop, 0);
    ev_timer_stop(loop, &deadline);
    assert_true(t.wakeups >= 1);
    assert_int_equal(t.reports, 1);
    esm_kafka_wakeup_close(&t.w);
    rd_kafka_destroy(t.rk);
    ev_loop_destroy(loop);
}

/* A rotated secret changes the mapping's fingerprint, so a reload restarts the mapping; the
 * same content keeps it equal (no restart); an unreadable secret is 0. */
/* Real brokers UP or not in librdkafka's statistics (upper case; the group's state is lower
 * case); the logical GroupCoordinator and the internal broker do not count. */
static void test_stats_brokers(void **state)
{
    (void)state;
    assert_int_equal(esm_kafka_stats_brokers_of(
                         "{\"brokers\":{\"k1:9092/1\":{\"name\":\"k1:9092/1\",\"state\":\"UP\"}}}"),
                     ESM_KAFKA_STATS_BROKER_UP);
    assert_int_equal(
        esm_kafka_stats_brokers_of("{\"brokers\":{\"k1:9092/1\":{\"state\":\"TRY_CONNECT\"}},"
                                   "\"cgrp\":{\"state\":\"up\"}}"),
        ESM_KAFKA_STATS_NONE_UP);
    assert_int_equal(esm_kafka_stats_brokers_of(NULL), ESM_KAFKA_STATS_UNKNOWN);
    assert_int_equal(esm_kafka_stats_brokers_of("not json"), ESM_KAFKA_STATS_UNKNOWN);
    assert_int_equal(esm_kafka_stats_brokers_of("{\"brokers\":{}}"), ESM_KAFKA_STATS_UNKNOWN);
    assert_int_equal(esm_kafka_stats_brokers_of(
                         "{\"brokers\":{\"k1:9092/1\":{\"state\":\"DOWN\",\"source\":\"learned\"},"
                         "\"GroupCoordinator\":{\"state\":\"UP\",\"source\":\"logical\"},"
                         "\":0/internal\":{\"state\":\"UP\",\"source\":\"internal\"}}}"),
                     ESM_KAFKA_STATS_NONE_UP);
    assert_int_equal(
        esm_kafka_stats_brokers_of("{\"brokers\":{\"k1:9092/bootstrap\":{\"state\":\"INIT\"},"
                                   "\"k1:9092/1\":{\"state\":\"UP\",\"source\":\"learned\"}}}"),
        ESM_KAFKA_STATS_BROKER_UP);
    assert_true(esm_kafka_problem_ends_when_connected(
        esm_kafka_problem(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down")));
    assert_false(esm_kafka_problem_ends_when_connected(
        esm_kafka_problem(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "Unknown topic")));
    assert_false(esm_kafka_problem_ends_when_connected(NULL));
}

static void test_secret_rotation_changes_the_mapping(void **state)
{
    (void)state;
    setenv("ESMD_TEST_ROTATE", "{\"username\":\"u\",\"password\":\"one\"}", 1);
    esm_config *a = kafka_config_load(ACCESS("ESMD_TEST_ROTATE"));
    esm_config *same = kafka_config_load(ACCESS("ESMD_TEST_ROTATE"));
    esm_kafka_secrets_fingerprint(a);
    esm_kafka_secrets_fingerprint(same);
    assert_int_not_equal(a->mappings[0].source_access[0].fingerprint, 0);
    assert_true(esm_mapping_config_equal(&a->mappings[0], &same->mappings[0]));

    setenv("ESMD_TEST_ROTATE", "{\"username\":\"u\",\"password\":\"two\"}", 1);
    esm_config *rotated = kafka_config_load(ACCESS("ESMD_TEST_ROTATE"));
    esm_kafka_secrets_fingerprint(rotated);
    assert_false(esm_mapping_config_equal(&a->mappings[0], &rotated->mappings[0]));

    unsetenv("ESMD_TEST_ROTATE");
    esm_config *gone = kafka_config_load(ACCESS("ESMD_TEST_ROTATE"));
    esm_kafka_secrets_fingerprint(gone);
    assert_int_equal(gone->mappings[0].source_access[0].fingerprint, 0);
    esm_config *all[] = {a, same, rotated, gone};
    for (size_t i = 0; i < 4; i++)
        esm_config_destroy(all[i]);
}

/* librdkafka's errors (with reasons as librdkafka 2.x words them) -> AWS's words. */
static void test_problem_in_aws_words(void **state)
{
    (void)state;
    static const struct {
        rd_kafka_resp_err_t err;
        const char *reason, *problem;
    } cases[] = {
        {RD_KAFKA_RESP_ERR__AUTHENTICATION,
         "sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: Authentication failed "
         "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
         "SASL authentication failed"},
        {RD_KAFKA_RESP_ERR__SSL,
         "sasl_ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL "
         "routines::certificate verify failed: broker certificate could not be verified",
         "Lambda failed to authenticate server"},
        {RD_KAFKA_RESP_ERR__SSL,
         "ssl://127.0.0.1:9095/bootstrap: SSL handshake failed: ssl/record/rec_layer_s3.c:1605: "
         "error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48",
         "Server failed to authenticate Lambda"},
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "Not authorized",
         "Cluster failed to authorize Lambda"},
        {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, "Not authorized",
         "Cluster failed to authorize Lambda"},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", "Connection error"},
        {RD_KAFKA_RESP_ERR__RESOLVE, "Failed to resolve 'nohost:9092'", "Connection error"},
        {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "Subscribed topic not available",
         "Topic not found"},
        /* one broker's dropped connection is retried by librdkafka: not a problem on its own */
        {RD_KAFKA_RESP_ERR__TRANSPORT, "127.0.0.1:9092/1: Disconnected (after 5000ms in state UP)",
         NULL},
        {RD_KAFKA_RESP_ERR__TIMED_OUT, "timed out", NULL},
        {RD_KAFKA_RESP_ERR__AUTHENTICATION, NULL, "Connection error"},
        /* a broker's name is never read as the cause */
        {RD_KAFKA_RESP_ERR__TRANSPORT,
         "alerts-kafka:9092/1: Connect to ipv4#10.0.0.1:9092 failed: Connection refused", NULL},
        {RD_KAFKA_RESP_ERR__AUTHENTICATION,
         "sasl_ssl://alerting-kafka:9094/bootstrap: SASL authentication error: Authentication "
         "failed during authentication due to invalid credentials",
         "SASL authentication failed"},
        {RD_KAFKA_RESP_ERR__TRANSPORT, "ssl.key-broker:9092/2: Disconnected", NULL},
        /* librdkafka's guess on a broker that stopped is not a refused login */
        {RD_KAFKA_RESP_ERR__TRANSPORT,
         "127.0.0.1:50843/1: Disconnected: verify that security.protocol is correctly configured, "
         "broker might require SASL authentication (after 1996ms in state UP)",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = esm_kafka_problem(cases[i].err, cases[i].reason);
        if (!cases[i].problem)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].problem);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_join),
        cmocka_unit_test(test_security_part_takes_security_keys_only),
        cmocka_unit_test(test_security_identity),
        cmocka_unit_test(test_wakeup_pipe_wakes_the_loop),
        cmocka_unit_test(test_problem_in_aws_words),
        cmocka_unit_test(test_secret_rotation_changes_the_mapping),
        cmocka_unit_test(test_stats_brokers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
