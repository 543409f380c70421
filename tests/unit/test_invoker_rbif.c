/* ReportBatchItemFailures parsing: every response shape docs/design.md "RBIF validity" names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "invoker/esm_rbif.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sqs_ids[] = {"m-1", "m-2", "m-3", "m-4"};
#define N_SQS 4

static esm_rbif_status parse_sqs(const char *body, size_t *failed, size_t *nf, char *why)
{
    return esm_rbif_parse(body, strlen(body), ESM_RBIF_ID_STRING, sqs_ids, N_SQS, failed, nf, why,
                          256);
}

static void expect_success(const char *body)
{
    size_t failed[N_SQS], nf = 99;
    char why[256];
    esm_rbif_status st = parse_sqs(body, failed, &nf, why);
    if (st != ESM_RBIF_SUCCESS) fail_msg("body %s: %s (%s)", body, esm_rbif_status_name(st), why);
    assert_int_equal(nf, 0);
}

static void expect_invalid(const char *body, const char *why_part)
{
    size_t failed[N_SQS], nf = 99;
    char why[256];
    esm_rbif_status st = parse_sqs(body, failed, &nf, why);
    if (st != ESM_RBIF_INVALID)
        fail_msg("body %s: %s, want invalid", body, esm_rbif_status_name(st));
    assert_int_equal(nf, 0);
    if (!strstr(why, why_part)) fail_msg("body %s: why \"%s\" lacks \"%s\"", body, why, why_part);
}

static void test_success_shapes(void **state)
{
    (void)state;
    expect_success("null");
    expect_success("");
    expect_success("   \n");
    expect_success("{}");
    expect_success("[]");
    expect_success("{\"batchItemFailures\":[]}");
    expect_success("{\"batchItemFailures\":null}");
    expect_success("{\"statusCode\":200,\"body\":\"ok\"}"); /* no key */
    expect_success("\"just a string\"");
    expect_success("42");
    expect_success("[{\"itemIdentifier\":\"m-1\"}]"); /* a top-level array has no key */
    /* NULL body with len 0 */
    size_t nf = 7;
    assert_int_equal(
        esm_rbif_parse(NULL, 0, ESM_RBIF_ID_STRING, sqs_ids, N_SQS, NULL, &nf, NULL, 0),
        ESM_RBIF_SUCCESS);
    assert_int_equal(nf, 0);
}

static void test_invalid_shapes(void **state)
{
    (void)state;
    expect_invalid("not json", "not valid JSON");
    expect_invalid("{\"batchItemFailures\":[", "not valid JSON");
    expect_invalid("{\"batchItemFailures\":{}}", "not an array");
    expect_invalid("{\"batchItemFailures\":\"m-1\"}", "not an array");
    expect_invalid("{\"batchItemFailures\":[\"m-1\"]}", "not an object");
    expect_invalid("{\"batchItemFailures\":[{}]}", "no itemIdentifier");
    expect_invalid("{\"batchItemFailures\":[{\"id\":\"m-1\"}]}", "no itemIdentifier");
    expect_invalid("{\"batchItemFailures\":[{\"itemIdentifier\":null}]}", "no itemIdentifier");
    expect_invalid("{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", "empty");
    expect_invalid("{\"batchItemFailures\":[{\"itemIdentifier\":7}]}", "not a string");
    expect_invalid("{\"batchItemFailures\":[{\"itemIdentifier\":[\"m-1\"]}]}", "not a string");
    expect_invalid("{\"batchItemFailures\":[{\"itemIdentifier\":\"m-9\"}]}", "\"m-9\" is not in");
    /* one bad item poisons an otherwise valid list */
    expect_invalid(
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"m-1\"},{\"itemIdentifier\":\"x\"}]}",
        "batchItemFailures[1]");
}

static void test_partial_sorted_dedup(void **state)
{
    (void)state;
    size_t failed[N_SQS], nf = 0;
    char why[256];
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"m-4\"},"
                       "{\"itemIdentifier\":\"m-2\"},{\"itemIdentifier\":\"m-4\"}]}";
    assert_int_equal(parse_sqs(body, failed, &nf, why), ESM_RBIF_PARTIAL);
    assert_int_equal(nf, 2);
    assert_int_equal(failed[0], 1);
    assert_int_equal(failed[1], 3);
}

static void test_partial_all(void **state)
{
    (void)state;
    size_t failed[N_SQS], nf = 0;
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"m-1\"},"
                       "{\"itemIdentifier\":\"m-2\"},{\"itemIdentifier\":\"m-3\"},"
                       "{\"itemIdentifier\":\"m-4\"}],\"other\":1}";
    assert_int_equal(parse_sqs(body, failed, &nf, NULL), ESM_RBIF_PARTIAL);
    assert_int_equal(nf, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(failed[i], i);
}

static void test_duplicate_ids_in_batch(void **state)
{
    (void)state;
    /* at-least-once delivery can put the same message twice in one batch: both fail */
    const char *ids[] = {"a", "b", "a"};
    size_t failed[3], nf = 0;
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"}]}";
    assert_int_equal(
        esm_rbif_parse(body, strlen(body), ESM_RBIF_ID_STRING, ids, 3, failed, &nf, NULL, 0),
        ESM_RBIF_PARTIAL);
    assert_int_equal(nf, 2);
    assert_int_equal(failed[0], 0);
    assert_int_equal(failed[1], 2);
}

static void test_kinesis_sequence_numbers(void **state)
{
    (void)state;
    const char *ids[] = {"49590338271490256608559692538361571095921575989136588898",
                         "49590338271490256608559692540925702759324208523137515618"};
    size_t failed[2], nf = 0;
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":"
                       "\"49590338271490256608559692540925702759324208523137515618\"}]}";
    assert_int_equal(
        esm_rbif_parse(body, strlen(body), ESM_RBIF_ID_STRING, ids, 2, failed, &nf, NULL, 0),
        ESM_RBIF_PARTIAL);
    assert_int_equal(nf, 1);
    assert_int_equal(failed[0], 1);
}

static const char *const kafka_ids[] = {"orders-0:10", "orders-0:11", "orders-1:5", "orders-1:6"};

static esm_rbif_status parse_kafka(const char *body, size_t *failed, size_t *nf, char *why)
{
    return esm_rbif_parse(body, strlen(body), ESM_RBIF_ID_KAFKA, kafka_ids, 4, failed, nf, why,
                          256);
}

static void test_kafka_partial(void **state)
{
    (void)state;
    size_t failed[4], nf = 0;
    char why[256];
    const char *body =
        "{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-1\",\"offset\":6}},"
        "{\"itemIdentifier\":{\"partition\":\"orders-0\",\"offset\":\"11\"}}]}";
    assert_int_equal(parse_kafka(body, failed, &nf, why), ESM_RBIF_PARTIAL);
    assert_int_equal(nf, 2);
    assert_int_equal(failed[0], 1);
    assert_int_equal(failed[1], 3);
}

static void test_kafka_success_shapes(void **state)
{
    (void)state;
    const char *ok[] = {
        "", "null", "{}", "[]", "{\"batchItemFailures\":[]}", "{\"batchItemFailures\":null}"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        size_t failed[4], nf = 9;
        assert_int_equal(parse_kafka(ok[i], failed, &nf, NULL), ESM_RBIF_SUCCESS);
        assert_int_equal(nf, 0);
    }
}

static void test_kafka_invalid(void **state)
{
    (void)state;
    const char *bad[][2] = {
        /* unknown partition */
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-2\",\"offset\":10}}]"
         "}",
         "not in the batch"},
        /* unknown offset */
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-0\",\"offset\":12}}]"
         "}",
         "not in the batch"},
        /* the string form is not the Kafka form */
        {"{\"batchItemFailures\":[{\"itemIdentifier\":\"orders-0:10\"}]}", "object"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"offset\":10}}]}", "partition"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"\",\"offset\":10}}]}",
         "partition"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-0\"}}]}", "offset"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-0\",\"offset\":-1}}]"
         "}",
         "offset"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-0\",\"offset\":1.5}}]"
         "}",
         "offset"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-0\",\"offset\":"
         "\"1x\"}}"
         "]}",
         "offset"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":7,\"offset\":10}}]}",
         "partition"},
        {"{\"batchItemFailures\":[{\"itemIdentifier\":null}]}", "no itemIdentifier"},
        {"oops", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t failed[4], nf = 9;
        char why[256];
        esm_rbif_status st = parse_kafka(bad[i][0], failed, &nf, why);
        if (st != ESM_RBIF_INVALID) fail_msg("case %zu: %s", i, esm_rbif_status_name(st));
        if (!strstr(why, bad[i][1])) fail_msg("case %zu: why \"%s\"", i, why);
        assert_int_equal(nf, 0);
    }
}

static void test_large_batch(void **state)
{
    (void)state;
    enum { N = 10000 };
    char **ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) {
        ids[i] = malloc(32);
        /* reverse order so the batch order differs from the sorted order */
        snprintf(ids[i], 32, "id-%05d", N - 1 - i);
    }
    /* every 7th record fails */
    size_t cap = 64 + (size_t)N * 40;
    char *body = malloc(cap);
    size_t len = (size_t)snprintf(body, cap, "{\"batchItemFailures\":[");
    int want = 0;
    for (int i = N - 1; i >= 0; i--)
        if (i % 7 == 0) {
            len += (size_t)snprintf(body + len, cap - len, "%s{\"itemIdentifier\":\"%s\"}",
                                    want ? "," : "", ids[i]);
            want++;
        }
    len += (size_t)snprintf(body + len, cap - len, "]}");
    size_t *failed = malloc(N * sizeof *failed), nf = 0;
    assert_int_equal(esm_rbif_parse(body, len, ESM_RBIF_ID_STRING, (const char *const *)ids, N,
                                    failed, &nf, NULL, 0),
                     ESM_RBIF_PARTIAL);
    assert_int_equal(nf, (size_t)want);
    for (size_t k = 0; k < nf; k++) {
        assert_int_equal(failed[k] % 7, 0);
        if (k) assert_true(failed[k] > failed[k - 1]);
    }
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(ids);
    free(body);
    free(failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_shapes),
        cmocka_unit_test(test_invalid_shapes),
        cmocka_unit_test(test_partial_sorted_dedup),
        cmocka_unit_test(test_partial_all),
        cmocka_unit_test(test_duplicate_ids_in_batch),
        cmocka_unit_test(test_kinesis_sequence_numbers),
        cmocka_unit_test(test_kafka_partial),
        cmocka_unit_test(test_kafka_success_shapes),
        cmocka_unit_test(test_kafka_invalid),
        cmocka_unit_test(test_large_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
