/* Destination strings, redaction, backoff bounds and the file writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "destinations/esm_backoff.h"
#include "destinations/esm_dest.h"
#include "destinations/esm_dest_file.h"

static esm_dest parse_ok(const char *s)
{
    esm_dest d;
    esm_err err = {0};
    int rc = esm_dest_parse(s, &d, &err);
    if (rc != 0) fail_msg("'%s' should parse: %s", s, err.message);
    return d;
}

static void parse_bad(const char *s, const char *expect_in_message)
{
    esm_dest d;
    esm_err err = {0};
    if (esm_dest_parse(s, &d, &err) == 0) fail_msg("'%s' should be refused", s ? s : "(null)");
    assert_int_equal(err.code, ESM_ERR_INVALID);
    assert_false(err.retriable);
    if (!strstr(err.message, expect_in_message))
        fail_msg("'%s': message '%s' lacks '%s'", s ? s : "(null)", err.message, expect_in_message);
}

static void test_sqs_arn(void **state)
{
    (void)state;
    esm_dest d = parse_ok("arn:aws:sqs:us-east-1:000000000000:orders-dlq_1");
    assert_int_equal(d.kind, ESM_DEST_SQS);
    assert_string_equal(d.region, "us-east-1");
    assert_string_equal(d.account, "000000000000");
    assert_string_equal(d.name, "orders-dlq_1");
    assert_string_equal(d.target, "arn:aws:sqs:us-east-1:000000000000:orders-dlq_1");
    d = parse_ok("arn:aws-cn:sqs:cn-north-1:123456789012:q");
    assert_string_equal(d.region, "cn-north-1");
    d = parse_ok("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q");
    assert_int_equal(d.kind, ESM_DEST_SQS);
}

static void test_sns_arn(void **state)
{
    (void)state;
    esm_dest d = parse_ok("arn:aws:sns:eu-west-1:111122223333:failures");
    assert_int_equal(d.kind, ESM_DEST_SNS);
    assert_string_equal(d.name, "failures");
    assert_string_equal(d.target, "arn:aws:sns:eu-west-1:111122223333:failures");
    char long_name[300];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    char arn[400];
    snprintf(arn, sizeof arn, "arn:aws:sns:eu-west-1:111122223333:%s", long_name);
    parse_ok(arn); /* SNS topic names go to 256 */
}

static void test_bad_arns(void **state)
{
    (void)state;
    parse_bad("arn:aws:sqs:us-east-1:000000000000", "6 ':'-separated parts");
    parse_bad("arn:aws:sqs:us-east-1:000000000000:", "queue name");
    parse_bad("arn:aws:s3:::bucket", "service 's3' is not supported");
    parse_bad("arn:aws:lambda:us-east-1:000000000000:function:f", "not supported");
    parse_bad("arn:azure:sqs:us-east-1:000000000000:q", "partition 'azure'");
    parse_bad("arn:aws:sqs::000000000000:q", "invalid region");
    parse_bad("arn:aws:sqs:us_east_1:000000000000:q", "invalid region");
    parse_bad("arn:aws:sqs:us-east-1:00000000000:q", "not 12 digits");
    parse_bad("arn:aws:sqs:us-east-1:00000000000a:q", "not 12 digits");
    parse_bad("arn:aws:sqs:us-east-1:000000000000:q.fifo", "FIFO queues");
    parse_bad("arn:aws:sns:us-east-1:000000000000:t.fifo", "FIFO topics");
    parse_bad("arn:aws:sqs:us-east-1:000000000000:a.b", "queue name");
    parse_bad("arn:aws:sqs:us-east-1:000000000000:a:b", "queue name");
    char arn[200];
    char name[82];
    memset(name, 'q', 81);
    name[81] = '\0';
    snprintf(arn, sizeof arn, "arn:aws:sqs:us-east-1:000000000000:%s", name);
    parse_bad(arn, "1-80"); /* SQS queue names stop at 80 */
    name[80] = '\0';
    snprintf(arn, sizeof arn, "arn:aws:sqs:us-east-1:000000000000:%s", name);
    parse_ok(arn);
}

static void test_kafka(void **state)
{
    (void)state;
    esm_dest d = parse_ok("kafka://failures");
    assert_int_equal(d.kind, ESM_DEST_KAFKA);
    assert_string_equal(d.topic, "failures");
    assert_string_equal(d.bootstrap, "");
    d = parse_ok("kafka://127.0.0.1:9092/orders.failed-1");
    assert_string_equal(d.bootstrap, "127.0.0.1:9092");
    assert_string_equal(d.topic, "orders.failed-1");
    d = parse_ok("kafka://k1.internal:9092,k2.internal:19092/t");
    assert_string_equal(d.bootstrap, "k1.internal:9092,k2.internal:19092");
    assert_string_equal(d.topic, "t");
    d = parse_ok("kafka://[::1]:9092/t");
    assert_string_equal(d.bootstrap, "[::1]:9092");
}

static void test_bad_kafka(void **state)
{
    (void)state;
    parse_bad("kafka://", "Kafka topic");
    parse_bad("kafka://host:9092/", "Kafka topic");
    parse_bad("kafka://a/b", "not HOST:PORT");
    parse_bad("kafka://host/t", "not HOST:PORT");
    parse_bad("kafka://host:0/t", "not HOST:PORT");
    parse_bad("kafka://host:65536/t", "not HOST:PORT");
    parse_bad("kafka://host:90a/t", "not HOST:PORT");
    parse_bad("kafka://h1:9092,/t", "not HOST:PORT");
    parse_bad("kafka://:9092/t", "not HOST:PORT");
    parse_bad("kafka:///t", "expected kafka://TOPIC");
    parse_bad("kafka://..", "Kafka topic");
    parse_bad("kafka://.", "Kafka topic");
    parse_bad("kafka://a$b", "Kafka topic");
    char topic[260] = "kafka://";
    memset(topic + 8, 't', 250);
    topic[258] = '\0';
    parse_bad(topic, "1-249");
}

static void test_http(void **state)
{
    (void)state;
    esm_dest d = parse_ok("http://127.0.0.1:8080/failures");
    assert_int_equal(d.kind, ESM_DEST_HTTP);
    assert_string_equal(d.target, "http://127.0.0.1:8080/failures");
    d = parse_ok("https://hooks.example.com/x?token=abc");
    assert_int_equal(d.kind, ESM_DEST_HTTP);
    parse_bad("http://", "no host");
    parse_bad("https:///path", "no host");
    parse_bad("http://:80/x", "no host");
    parse_bad("http://host/a b", "spaces");
    parse_bad("ftp://host/x", "expected arn:aws:sqs");
    parse_bad("HTTP://host/x", "expected arn:aws:sqs");
}

static void test_file(void **state)
{
    (void)state;
    esm_dest d = parse_ok("file:///var/lib/esmd/failures.jsonl");
    assert_int_equal(d.kind, ESM_DEST_FILE);
    assert_string_equal(d.target, "/var/lib/esmd/failures.jsonl");
    d = parse_ok("file://localhost/tmp/f.jsonl");
    assert_string_equal(d.target, "/tmp/f.jsonl");
    d = parse_ok("file:///tmp/a..b/f"); /* ".." only matters as a component */
    assert_string_equal(d.target, "/tmp/a..b/f");
    parse_bad("file://relative/path", "three slashes");
    parse_bad("file://", "three slashes");
    parse_bad("file:///", "not a file path");
    parse_bad("file:///tmp/dir/", "not a file path");
    parse_bad("file:///tmp/../etc/passwd", "'..'");
    parse_bad("file:///tmp/..", "'..'");
}

static void test_empty_and_junk(void **state)
{
    (void)state;
    parse_bad(NULL, "empty");
    parse_bad("", "empty");
    parse_bad("orders", "expected arn:aws:sqs");
    parse_bad(" arn:aws:sqs:us-east-1:000000000000:q", "spaces");
    parse_bad("arn:aws:sqs:us-east-1:000000000000:q\n", "control");
}

static void test_redact(void **state)
{
    (void)state;
    char out[256];
    esm_dest_redact("https://user:secret@hooks.example.com/p?token=abc", out, sizeof out);
    assert_string_equal(out, "https://***@hooks.example.com/p?...");
    assert_null(strstr(out, "secret"));
    esm_dest_redact("http://127.0.0.1:9/x", out, sizeof out);
    assert_string_equal(out, "http://127.0.0.1:9/x");
    esm_dest_redact("arn:aws:sqs:us-east-1:000000000000:q", out, sizeof out);
    assert_string_equal(out, "arn:aws:sqs:us-east-1:000000000000:q");
    esm_dest_redact("http://a/b@c", out, sizeof out); /* '@' in the path is not userinfo */
    assert_string_equal(out, "http://a/b@c");
    esm_dest_redact("https://u:p@h/x", out, 8);
    assert_int_equal(strlen(out), 7);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    /* first failure: exactly the base, whatever the random value */
    assert_int_equal(esm_backoff_delay_ms(1, 0), ESM_BACKOFF_BASE_MS);
    assert_int_equal(esm_backoff_delay_ms(1, UINT64_MAX), ESM_BACKOFF_BASE_MS);
    assert_int_equal(esm_backoff_delay_ms(0, 12345), ESM_BACKOFF_BASE_MS);
    assert_int_equal(esm_backoff_delay_ms(-3, 12345), ESM_BACKOFF_BASE_MS);
    for (int64_t n = 1; n <= 40; n++) {
        int64_t ceiling = ESM_BACKOFF_BASE_MS;
        for (int64_t i = 1; i < n && ceiling < ESM_BACKOFF_CAP_MS; i++)
            ceiling *= 2;
        if (ceiling > ESM_BACKOFF_CAP_MS) ceiling = ESM_BACKOFF_CAP_MS;
        int64_t lo = INT64_MAX, hi = 0;
        uint64_t r = 0x9e3779b97f4a7c15ULL;
        for (int k = 0; k < 2000; k++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            int64_t v = esm_backoff_delay_ms(n, r);
            assert_true(v >= ESM_BACKOFF_BASE_MS);
            assert_true(v <= ceiling);
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (n >= 3) { /* full jitter: the whole range is used */
            assert_true(lo < ESM_BACKOFF_BASE_MS + (ceiling - ESM_BACKOFF_BASE_MS) / 10);
            assert_true(hi > ceiling - (ceiling - ESM_BACKOFF_BASE_MS) / 10);
        }
    }
    /* the exact edges are reachable */
    assert_int_equal(esm_backoff_delay_ms(2, 1000), 2000);
    assert_int_equal(esm_backoff_delay_ms(2, 1001), 1000);
    assert_int_equal(esm_backoff_delay_ms(1000000, ESM_BACKOFF_CAP_MS - ESM_BACKOFF_BASE_MS),
                     ESM_BACKOFF_CAP_MS);
    assert_int_equal(esm_backoff_delay_ms(INT64_MAX, 0), ESM_BACKOFF_BASE_MS);
    assert_true(esm_backoff_random() != esm_backoff_random());
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_file_append(void **state)
{
    (void)state;
    char dir[] = "/tmp/esm_dest_file_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/failures.jsonl", dir);
    esm_err err = {0};
    assert_int_equal(esm_dest_file_append(path, "{\"a\":1}", 7, &err), 0);
    const char *multi = "{\n  \"b\": \"x\\ny\",\r\n  \"c\": 2\n}";
    assert_int_equal(esm_dest_file_append(path, multi, strlen(multi), &err), 0);
    char *got = slurp(path);
    assert_non_null(got);
    assert_string_equal(got, "{\"a\":1}\n{   \"b\": \"x\\ny\",    \"c\": 2 }\n");
    free(got);
    /* a line torn by a crash mid-write: the next record still starts a line of its own */
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("{\"torn", f);
    fclose(f);
    assert_int_equal(esm_dest_file_append(path, "{\"d\":4}", 7, &err), 0);
    got = slurp(path);
    assert_non_null(strstr(got, "\n{\"torn\n{\"d\":4}\n"));
    free(got);

    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing-dir/f.jsonl", dir);
    assert_int_equal(esm_dest_file_append(bad, "{}", 2, &err), -1);
    assert_int_equal(err.code, ESM_ERR_IO);
    assert_true(err.retriable);
    assert_non_null(strstr(err.message, "No such file"));

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqs_arn),     cmocka_unit_test(test_sns_arn),
        cmocka_unit_test(test_bad_arns),    cmocka_unit_test(test_kafka),
        cmocka_unit_test(test_bad_kafka),   cmocka_unit_test(test_http),
        cmocka_unit_test(test_file),        cmocka_unit_test(test_empty_and_junk),
        cmocka_unit_test(test_redact),      cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_file_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
