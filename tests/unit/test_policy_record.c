/* esm_failure_record_render: golden files in tests/unit/data/policy/. The Kinesis and the
 * kafka://topic goldens are AWS's documented examples (docs/design.md "Failure records", "kafka://
 * destination"), written independently of this code. ESMD_UPDATE_GOLDEN=1 rewrites the goldens
 * (review the diff before committing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/esm_failure_record.h"

#define DATA ESMD_SOURCE_DIR "/tests/unit/data/policy/"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (n && buf[n - 1] == '\n') buf[n - 1] = '\0';
    return buf;
}

static void check_golden(const esm_failure_record *fr, const char *name)
{
    esm_buf b;
    esm_buf_init(&b);
    assert_int_equal(esm_failure_record_render(fr, &b), 0);
    const char *got = esm_buf_cstr(&b);
    cJSON *j = cJSON_Parse(got); /* always valid JSON */
    assert_non_null(j);
    cJSON_Delete(j);
    char path[512];
    snprintf(path, sizeof path, DATA "%s", name);
    const char *upd = getenv("ESMD_UPDATE_GOLDEN");
    if (upd && *upd == '1') {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fprintf(f, "%s\n", got);
        fclose(f);
    }
    char *want = read_file(path);
    assert_non_null(want);
    assert_string_equal(got, want);
    free(want);
    esm_buf_free(&b);
}

static esm_failure_record kinesis_base(void)
{
    esm_failure_record fr = {0};
    fr.request_id = "5d1f6a2e-0b3c-4d5e-8f90-1a2b3c4d5e6f";
    fr.function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:ingest";
    fr.condition = ESM_COND_RETRY_ATTEMPTS_EXHAUSTED;
    fr.approximate_invoke_count = 3;
    fr.status_code = 200;
    fr.executed_version = "$LATEST";
    fr.function_error = "Unhandled";
    fr.timestamp_ms = 1717000802117;
    fr.source = ESM_FR_KINESIS;
    fr.batch_size = 250;
    fr.stream.shard_id = "shardId-000000000003";
    fr.stream.start_sequence_number = "49651234567890123456789012345678901234567890123456789012";
    fr.stream.end_sequence_number = "49651234567890123456789012345678901234567890123456799999";
    fr.stream.first_arrival_ms = 1717000798001;
    fr.stream.last_arrival_ms = 1717000799870;
    fr.stream.stream_arn = "arn:aws:kinesis:eu-west-1:111122223333:stream/telemetry";
    return fr;
}

static void test_kinesis_aws_example(void **state)
{
    (void)state;
    esm_failure_record fr = kinesis_base();
    check_golden(&fr, "kinesis_retry_exhausted.json");
}

static void test_kinesis_age_exceeded_has_no_response_context(void **state)
{
    (void)state;
    esm_failure_record fr = kinesis_base();
    fr.condition = ESM_COND_RECORD_AGE_EXCEEDED;
    fr.approximate_invoke_count = 2;
    fr.batch_size = 1;
    fr.stream.end_sequence_number = fr.stream.start_sequence_number;
    fr.stream.last_arrival_ms = fr.stream.first_arrival_ms;
    check_golden(&fr, "kinesis_age_exceeded.json");
}

static void test_ddb_partial_function_error_null(void **state)
{
    (void)state;
    esm_failure_record fr = kinesis_base();
    fr.source = ESM_FR_DDB;
    fr.function_error = NULL; /* the last response was a valid partial failure */
    fr.executed_version = "7";
    fr.batch_size = 2;
    fr.stream.shard_id = "shardId-00000001717000000000-abcdef12";
    fr.stream.stream_arn =
        "arn:aws:dynamodb:eu-west-1:111122223333:table/orders/stream/2024-05-29T00:00:00.000";
    check_golden(&fr, "ddb_partial.json");
}

static void test_never_invoked_has_no_response_context(void **state)
{
    (void)state;
    esm_failure_record fr = kinesis_base();
    fr.approximate_invoke_count = 0;
    esm_buf b;
    esm_buf_init(&b);
    assert_int_equal(esm_failure_record_render(&fr, &b), 0);
    assert_null(strstr(esm_buf_cstr(&b), "responseContext"));
    assert_non_null(strstr(esm_buf_cstr(&b), "\"approximateInvokeCount\":0}"));
    esm_buf_free(&b);
}

static void test_kafka_msk_two_partitions(void **state)
{
    (void)state;
    esm_fr_kafka_partition parts[] = {
        {"orders", 0, 100, 104, 1717000790000, 1717000791500},
        {"orders", 11, 7, 7, 1717000792000, 1717000792000},
    };
    esm_failure_record fr = {0};
    fr.request_id = "0b7e4e5a-1111-4222-8333-944455556666";
    fr.function_arn = "arn:aws:lambda:us-east-1:000000000000:function:orders:live";
    fr.condition = ESM_COND_RETRY_ATTEMPTS_EXHAUSTED;
    fr.approximate_invoke_count = 11;
    fr.status_code = 200;
    fr.executed_version = "3";
    fr.function_error = "Handled";
    fr.timestamp_ms = 1717000800000;
    fr.source = ESM_FR_KAFKA;
    fr.batch_size = 6;
    fr.kafka.bootstrap_servers = "b-1.msk.local:9092,b-2.msk.local:9092";
    fr.kafka.event_source_arn = "arn:aws:kafka:us-east-1:000000000000:cluster/demo/abcd-1234";
    fr.kafka.payload_size = 4096;
    fr.kafka.partitions = parts;
    fr.kafka.n_partitions = 2;
    check_golden(&fr, "kafka_retry_msk.json");
}

static void test_kafka_payload_size_response_context_null(void **state)
{
    (void)state;
    esm_fr_kafka_partition part = {"big-events", 3, 42, 42, 1717000790000, 1717000790000};
    esm_failure_record fr = {0};
    fr.request_id = "9c8b7a65-4321-4fed-8cba-9876543210ab";
    fr.function_arn = "arn:aws:lambda:us-east-1:000000000000:function:ingest";
    fr.condition = ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED;
    fr.timestamp_ms = 1717000800000;
    fr.source = ESM_FR_KAFKA;
    fr.batch_size = 1;
    fr.kafka.bootstrap_servers = "127.0.0.1:9092";
    fr.kafka.payload_size = 7340032;
    fr.kafka.partitions = &part;
    fr.kafka.n_partitions = 1;
    check_golden(&fr, "kafka_payload_size.json");
}

static void test_kafka_topic_destination_aws_example(void **state)
{
    (void)state;
    char *payload = read_file(DATA "kafka_topic_payload.json");
    assert_non_null(payload);
    esm_failure_record fr = {0};
    fr.request_id = "e0a1c7b2-3d4e-4f50-8a6b-7c8d9e0f1a2b";
    fr.function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:pay:$LATEST";
    fr.condition = ESM_COND_RETRY_ATTEMPTS_EXHAUSTED;
    fr.approximate_invoke_count = 4;
    fr.status_code = 200;
    fr.executed_version = "$LATEST";
    fr.function_error = "Unhandled";
    fr.timestamp_ms = 1717000860000;
    fr.source = ESM_FR_KAFKA;
    fr.batch_size = 1;
    fr.kafka.bootstrap_servers = "kafka-1.internal:9092";
    fr.kafka.payload_size = 512;
    fr.kafka.topic_destination = true;
    fr.kafka.record_offset = 8812;
    fr.kafka.record_timestamp_ms = 1717000800123;
    fr.payload_json = payload;
    check_golden(&fr, "kafka_topic_destination.json");
    free(payload);
}

static void test_sqs_with_payload_and_escaping(void **state)
{
    (void)state;
    const char *ids[] = {"059f36b4-87a3-44ab-83d2-661975830a7d", "odd\"id\\\n\xc3\xa9"};
    const char *payload = "{\"Records\":[{\"messageId\":\"059f36b4-87a3-44ab-83d2-661975830a7d\","
                          "\"body\":\"hello\"}]} trailing bytes beyond payload_len";
    esm_failure_record fr = {0};
    fr.request_id = "a7b6c5d4-e3f2-4a1b-9c8d-7e6f5a4b3c2d";
    fr.function_arn = "arn:aws:lambda:us-east-1:000000000000:function:orders";
    fr.condition = ESM_COND_RETRY_ATTEMPTS_EXHAUSTED;
    fr.approximate_invoke_count = 5;
    fr.status_code = 200;
    fr.function_error = "Unhandled";
    fr.timestamp_ms = 1717000800001;
    fr.source = ESM_FR_SQS;
    fr.batch_size = 2;
    fr.sqs.queue_arn = "arn:aws:sqs:us-east-1:000000000000:orders";
    fr.sqs.message_ids = ids;
    fr.sqs.n_message_ids = 2;
    fr.payload_json = payload;
    fr.payload_len = strchr(payload, ' ') - payload;
    check_golden(&fr, "sqs_with_payload.json");
}

static void test_invalid_input_rejected(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, "keep");
    esm_failure_record fr = kinesis_base();
    fr.request_id = NULL;
    assert_int_equal(esm_failure_record_render(&fr, &b), -1);
    fr = kinesis_base();
    fr.condition = ESM_COND_NONE;
    assert_int_equal(esm_failure_record_render(&fr, &b), -1);
    fr = kinesis_base();
    fr.source = (esm_fr_source)99;
    assert_int_equal(esm_failure_record_render(&fr, &b), -1);
    assert_string_equal(esm_buf_cstr(&b), "keep"); /* nothing half-written */
    esm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinesis_aws_example),
        cmocka_unit_test(test_kinesis_age_exceeded_has_no_response_context),
        cmocka_unit_test(test_ddb_partial_function_error_null),
        cmocka_unit_test(test_never_invoked_has_no_response_context),
        cmocka_unit_test(test_kafka_msk_two_partitions),
        cmocka_unit_test(test_kafka_payload_size_response_context_null),
        cmocka_unit_test(test_kafka_topic_destination_aws_example),
        cmocka_unit_test(test_sqs_with_payload_and_escaping),
        cmocka_unit_test(test_invalid_input_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
