/* The outbox's Kafka producers (destinations/esm_kafka_producer.h) are keyed by bootstrap list
 * and security identity: two mappings with different credentials never share a producer, the
 * same credentials do, and a plaintext destination has its own. Nothing listens on the
 * bootstrap address: messages stay queued and get an error report at destroy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "destinations/esm_kafka_producer.h"
#include "kafka/esm_kafka_client.h"
#include "tests/unit/kafka_config_helper.h"

#define SCRAM(var)                                                                                 \
    "\"StartingPosition\":\"LATEST\",\"SourceAccessConfigurations\":["                             \
    "{\"Type\":\"SASL_SCRAM_256_AUTH\",\"URI\":\"env:" var "\"}]"

static void on_report(void *opaque, const char *error, bool permanent)
{
    (void)permanent;
    int *reports = opaque;
    assert_non_null(error); /* never delivered: nothing listens */
    (*reports)++;
}

static void produce(esm_kafka_producers *p, const esm_mapping_config *security, int *reports)
{
    esm_err err = {0};
    if (esm_kafka_produce(p, "127.0.0.1:1", security, "failures", "k", 1, "v", 1, on_report,
                          reports, &err) != 0)
        fail_msg("produce: %s", err.message);
}

static void test_producers_keyed_by_security_identity(void **state)
{
    (void)state;
    setenv("ESMD_TEST_PRODUCER_A", "{\"username\":\"a\",\"password\":\"pa\"}", 1);
    setenv("ESMD_TEST_PRODUCER_B", "{\"username\":\"b\",\"password\":\"pb\"}", 1);
    esm_config *a = kafka_config_load(SCRAM("ESMD_TEST_PRODUCER_A"));
    esm_config *a2 = kafka_config_load(SCRAM("ESMD_TEST_PRODUCER_A"));
    esm_config *b = kafka_config_load(SCRAM("ESMD_TEST_PRODUCER_B"));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    esm_kafka_producers *p = esm_kafka_producers_create(loop, 30000);
    int reports = 0;
    produce(p, &a->mappings[0], &reports);
    assert_int_equal(esm_kafka_producers_count(p), 1);
    produce(p, &a2->mappings[0], &reports); /* the same credentials: the same producer */
    assert_int_equal(esm_kafka_producers_count(p), 1);
    produce(p, &b->mappings[0], &reports); /* other credentials, same cluster */
    assert_int_equal(esm_kafka_producers_count(p), 2);
    produce(p, NULL, &reports); /* plaintext */
    assert_int_equal(esm_kafka_producers_count(p), 3);
    esm_kafka_producers_destroy(p, 0);
    assert_int_equal(reports, 4); /* every message reported once */
    ev_loop_destroy(loop);
    esm_config_destroy(a);
    esm_config_destroy(a2);
    esm_config_destroy(b);
}

static void test_unreadable_secret_leaves_the_message_waiting(void **state)
{
    (void)state;
    unsetenv("ESMD_TEST_PRODUCER_UNSET");
    esm_config *c = kafka_config_load(SCRAM("ESMD_TEST_PRODUCER_UNSET"));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    esm_kafka_producers *p = esm_kafka_producers_create(loop, 30000);
    int reports = 0;
    esm_err err = {0};
    assert_int_equal(esm_kafka_produce(p, "127.0.0.1:1", &c->mappings[0], "failures", NULL, 0, "v",
                                       1, on_report, &reports, &err),
                     -1);
    assert_true(err.retriable); /* retried later, never parked */
    assert_non_null(strstr(err.message, "not set"));
    assert_int_equal(esm_kafka_producers_count(p), 0);
    esm_kafka_producers_destroy(p, 0);
    assert_int_equal(reports, 0);
    ev_loop_destroy(loop);
    esm_config_destroy(c);
}

/* A rotated secret (new content, same reference) gets a producer of its own, so failure
 * records go out with the new credentials; the old producer is closed once it holds nothing. */
static void test_rotated_secret_gets_a_new_producer_and_the_old_one_retires(void **state)
{
    (void)state;
    setenv("ESMD_TEST_PRODUCER_ROT", "{\"username\":\"a\",\"password\":\"old\"}", 1);
    esm_config *before = kafka_config_load(SCRAM("ESMD_TEST_PRODUCER_ROT"));
    esm_kafka_secrets_fingerprint(before);
    setenv("ESMD_TEST_PRODUCER_ROT", "{\"username\":\"a\",\"password\":\"new\"}", 1);
    esm_config *after = kafka_config_load(SCRAM("ESMD_TEST_PRODUCER_ROT"));
    esm_kafka_secrets_fingerprint(after);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    esm_kafka_producers *p = esm_kafka_producers_create(loop, 200); /* reports come fast */
    int reports = 0;
    produce(p, &before->mappings[0], &reports);
    produce(p, &after->mappings[0], &reports);
    assert_int_equal(esm_kafka_producers_count(p), 2);
    assert_int_equal(esm_kafka_producers_retire_idle(p, 0), 0); /* both hold a message */
    for (int i = 0; i < 100 && reports < 2; i++) /* the 1 s tick serves the reports */
        ev_run(loop, EVRUN_ONCE);
    assert_int_equal(reports, 2);
    assert_int_equal(esm_kafka_producers_retire_idle(p, 3600), 0); /* used just now */
    assert_int_equal(esm_kafka_producers_retire_idle(p, 0), 2);
    assert_int_equal(esm_kafka_producers_count(p), 0);
    esm_kafka_producers_destroy(p, 0);
    ev_loop_destroy(loop);
    esm_config_destroy(before);
    esm_config_destroy(after);
    unsetenv("ESMD_TEST_PRODUCER_ROT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producers_keyed_by_security_identity),
        cmocka_unit_test(test_unreadable_secret_leaves_the_message_waiting),
        cmocka_unit_test(test_rotated_secret_gets_a_new_producer_and_the_old_one_retires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
