/* The Kafka event rendering (pollers/kafka/esm_kafka_int.h), byte for byte: signed header bytes,
 * null keys and values, escaping, timestamp types, the envelope and its size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pollers/kafka/esm_kafka_int.h"

static char *render(const esm_kafka_record_view *r)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_kafka_render_record(r, &b);
    assert_false(b.failed);
    char *s = strdup(esm_buf_cstr(&b));
    esm_buf_free(&b);
    return s;
}

static void expect_record(const esm_kafka_record_view *r, const char *want)
{
    char *got = render(r);
    if (strcmp(got, want) != 0) fail_msg("got  %s\nwant %s", got, want);
    free(got);
}

static void test_record_with_key_value_headers(void **state)
{
    (void)state;
    /* AWS's example (docs/design.md "Kafka event"): "trace" t-1 and "note" c-é in UTF-8. */
    const esm_kafka_header h[] = {{"trace", 5, "t-1", 3}, {"note", 4, "c\xc3\xa9", 3}};
    esm_kafka_record_view r = {.topic = "payments",
                               .partition = 2,
                               .offset = 8812,
                               .timestamp_ms = 1717000300123,
                               .timestamp_type = ESM_KAFKA_TS_CREATE,
                               .key = "pay-77",
                               .key_len = 6,
                               .value = "{\"amount\": 10}",
                               .value_len = 14,
                               .headers = h,
                               .n_headers = 2};
    expect_record(&r, "{\"topic\":\"payments\",\"partition\":2,\"offset\":8812,"
                      "\"timestamp\":1717000300123,\"timestampType\":\"CREATE_TIME\","
                      "\"key\":\"cGF5LTc3\",\"value\":\"eyJhbW91bnQiOiAxMH0=\","
                      "\"headers\":[{\"trace\":[116,45,49]},{\"note\":[99,-61,-87]}]}");
}

static void test_signed_header_bytes_full_range(void **state)
{
    (void)state;
    const unsigned char v[] = {0x00, 0x01, 0x7f, 0x80, 0x81, 0xfe, 0xff};
    const esm_kafka_header h[] = {{"b", 1, v, sizeof v}};
    esm_kafka_record_view r = {.topic = "t",
                               .offset = 0,
                               .timestamp_ms = 1,
                               .timestamp_type = ESM_KAFKA_TS_LOG_APPEND,
                               .value = "",
                               .value_len = 0,
                               .headers = h,
                               .n_headers = 1};
    expect_record(&r, "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"timestamp\":1,"
                      "\"timestampType\":\"LOG_APPEND_TIME\",\"value\":\"\","
                      "\"headers\":[{\"b\":[0,1,127,-128,-127,-2,-1]}]}");
}

static void test_null_key_and_tombstone_are_absent(void **state)
{
    (void)state;
    esm_kafka_record_view r = {.topic = "t",
                               .partition = 1,
                               .offset = 5,
                               .timestamp_ms = 7,
                               .timestamp_type = ESM_KAFKA_TS_CREATE};
    expect_record(&r, "{\"topic\":\"t\",\"partition\":1,\"offset\":5,\"timestamp\":7,"
                      "\"timestampType\":\"CREATE_TIME\",\"headers\":[]}");
}

static void test_empty_key_is_not_null(void **state)
{
    (void)state;
    esm_kafka_record_view r = {.topic = "t",
                               .timestamp_ms = 7,
                               .timestamp_type = ESM_KAFKA_TS_CREATE,
                               .key = "",
                               .key_len = 0,
                               .value = "\xff\x00",
                               .value_len = 2};
    expect_record(&r, "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"timestamp\":7,"
                      "\"timestampType\":\"CREATE_TIME\",\"key\":\"\",\"value\":\"/wA=\","
                      "\"headers\":[]}");
}

static void test_duplicate_and_null_headers_and_escaping(void **state)
{
    (void)state;
    const esm_kafka_header h[] = {
        {"x", 1, "a", 1}, {"x", 1, "b", 1}, {"q\"\\\n", 4, NULL, 0}, {"bad\xff", 4, "", 0}};
    esm_kafka_record_view r = {.topic = "t",
                               .timestamp_ms = 7,
                               .timestamp_type = ESM_KAFKA_TS_CREATE,
                               .value = "v",
                               .value_len = 1,
                               .headers = h,
                               .n_headers = 4};
    expect_record(&r, "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"timestamp\":7,"
                      "\"timestampType\":\"CREATE_TIME\",\"value\":\"dg==\","
                      "\"headers\":[{\"x\":[97]},{\"x\":[98]},{\"q\\\"\\\\\\n\":[]},"
                      "{\"bad\\ufffd\":[]}]}");
}

static void test_no_timestamp(void **state)
{
    (void)state;
    esm_kafka_record_view r = {.topic = "t",
                               .offset = 9223372036854775807LL,
                               .timestamp_ms = 123,
                               .timestamp_type = ESM_KAFKA_TS_NONE,
                               .value = "v",
                               .value_len = 1};
    expect_record(&r, "{\"topic\":\"t\",\"partition\":0,\"offset\":9223372036854775807,"
                      "\"timestamp\":-1,\"timestampType\":\"NO_TIMESTAMP_TYPE\",\"value\":\"dg==\","
                      "\"headers\":[]}");
}

static void test_event_envelope_and_overhead(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_kafka_render_event_open("k1:9092,k2:9092", "orders", 12, &b);
    esm_buf_puts(&b, "{\"a\":1},{\"b\":2}");
    esm_kafka_render_event_close(&b);
    const char *want = "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":"
                       "\"k1:9092,k2:9092\",\"records\":{\"orders-12\":[{\"a\":1},{\"b\":2}]}}";
    assert_string_equal(esm_buf_cstr(&b), want);
    /* overhead + records + (n - 1) commas == the event's size */
    assert_int_equal(esm_kafka_event_overhead("k1:9092,k2:9092", "orders", 12) + 7 + 7 + 1, b.len);
    esm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_with_key_value_headers),
        cmocka_unit_test(test_signed_header_bytes_full_range),
        cmocka_unit_test(test_null_key_and_tombstone_are_absent),
        cmocka_unit_test(test_empty_key_is_not_null),
        cmocka_unit_test(test_duplicate_and_null_headers_and_escaping),
        cmocka_unit_test(test_no_timestamp),
        cmocka_unit_test(test_event_envelope_and_overhead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
