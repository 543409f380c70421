/* The SQS source's pure parts: ReceiveMessage parsing and the event records it renders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pollers/esm_sqs_msg.h"

static const esm_sqs_render_ctx ctx = {.queue_arn = "arn:aws:sqs:eu-west-1:111122223333:orders",
                                       .region = "eu-west-1"};

static int parse(const char *json, esm_sqs_msg **out, size_t cap, size_t *skipped)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    char why[128];
    int n = esm_sqs_parse_receive(j, &ctx, out, cap, skipped, why, sizeof why);
    cJSON_Delete(j);
    return n;
}

static void test_standard_message_renders_in_aws_shape(void **state)
{
    (void)state;
    const char *resp =
        "{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"rh-1\",\"MD5OfBody\":\"md5b\","
        "\"Body\":\"{\\\"orderId\\\":\\\"A-1\\\"}\",\"Attributes\":{\"SenderId\":\"S\","
        "\"ApproximateFirstReceiveTimestamp\":\"1717000000456\",\"SentTimestamp\":"
        "\"1717000000123\",\"ApproximateReceiveCount\":\"2\",\"AWSTraceHeader\":\"Root=1\"},"
        "\"MD5OfMessageAttributes\":\"md5a\",\"MessageAttributes\":{\"tenant\":{\"DataType\":"
        "\"String\",\"StringValue\":\"acme\"}}}]}";
    esm_sqs_msg *m[10];
    size_t skipped;
    assert_int_equal(parse(resp, m, 10, &skipped), 1);
    assert_int_equal(skipped, 0);
    const char *want =
        "{\"messageId\":\"m-1\",\"receiptHandle\":\"rh-1\",\"body\":\"{\\\"orderId\\\":\\\"A-1\\\"}"
        "\","
        "\"attributes\":{\"ApproximateReceiveCount\":\"2\",\"SentTimestamp\":\"1717000000123\","
        "\"SenderId\":\"S\",\"ApproximateFirstReceiveTimestamp\":\"1717000000456\","
        "\"AWSTraceHeader\":\"Root=1\"},\"messageAttributes\":{\"tenant\":{\"stringValue\":"
        "\"acme\","
        "\"stringListValues\":[],\"binaryListValues\":[],\"dataType\":\"String\"}},"
        "\"md5OfMessageAttributes\":\"md5a\",\"md5OfBody\":\"md5b\",\"eventSource\":\"aws:sqs\","
        "\"eventSourceARN\":\"arn:aws:sqs:eu-west-1:111122223333:orders\","
        "\"awsRegion\":\"eu-west-1\"}";
    assert_string_equal(m[0]->record, want);
    assert_int_equal(m[0]->record_len, strlen(want));
    assert_string_equal(m[0]->body, "{\"orderId\":\"A-1\"}");
    assert_int_equal(m[0]->receive_count, 2);
    assert_int_equal(m[0]->sent_ms, 1717000000123LL);
    assert_null(m[0]->group_id);
    esm_sqs_msg_free(m[0]);
}

static void test_fifo_attributes_and_no_message_attributes(void **state)
{
    (void)state;
    const char *resp =
        "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"x\","
        "\"Body\":\"b\",\"Attributes\":{\"ApproximateReceiveCount\":\"1\",\"MessageGroupId\":"
        "\"customer-42\",\"SequenceNumber\":\"1888\",\"MessageDeduplicationId\":\"d-1\"}}]}";
    esm_sqs_msg *m[10];
    size_t skipped;
    assert_int_equal(parse(resp, m, 10, &skipped), 1);
    assert_string_equal(m[0]->group_id, "customer-42");
    assert_non_null(strstr(m[0]->record, "\"messageAttributes\":{},\"md5OfBody\":\"x\""));
    assert_null(strstr(m[0]->record, "md5OfMessageAttributes"));
    assert_non_null(strstr(m[0]->record, "\"MessageGroupId\":\"customer-42\""));
    assert_non_null(strstr(m[0]->record, "\"SequenceNumber\":\"1888\""));
    esm_sqs_msg_free(m[0]);
}

static void test_body_is_delivered_byte_for_byte(void **state)
{
    (void)state;
    /* Quotes, backslashes, control characters and multi-byte UTF-8 survive the round trip. */
    const char *body =
        "a \"quoted\" \\ back\nslash\t\x01 h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80";
    cJSON *resp = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(resp, "Messages");
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "MessageId", "m");
    cJSON_AddStringToObject(msg, "ReceiptHandle", "r");
    cJSON_AddStringToObject(msg, "Body", body);
    cJSON_AddItemToArray(arr, msg);
    esm_sqs_msg *m[1];
    size_t skipped;
    char why[64];
    assert_int_equal(esm_sqs_parse_receive(resp, &ctx, m, 1, &skipped, why, sizeof why), 1);
    cJSON *record = cJSON_Parse(m[0]->record);
    assert_non_null(record);
    assert_string_equal(cJSON_GetObjectItem(record, "body")->valuestring, body);
    cJSON_Delete(record);
    cJSON_Delete(resp);
    esm_sqs_msg_free(m[0]);
}

static void test_malformed_messages_are_skipped_and_bad_shapes_refused(void **state)
{
    (void)state;
    esm_sqs_msg *m[10];
    size_t skipped;
    assert_int_equal(parse("{}", m, 10, &skipped), 0);
    assert_int_equal(parse("{\"Messages\":null}", m, 10, &skipped), 0);
    assert_int_equal(parse("{\"Messages\":{}}", m, 10, &skipped), -1);
    assert_int_equal(parse("[]", m, 10, &skipped), -1);
    const char *resp = "{\"Messages\":[{\"MessageId\":\"no-handle\",\"Body\":\"x\"},7,"
                       "{\"MessageId\":\"ok\",\"ReceiptHandle\":\"r\",\"Body\":\"\"}]}";
    assert_int_equal(parse(resp, m, 10, &skipped), 1);
    assert_int_equal(skipped, 2);
    assert_string_equal(m[0]->message_id, "ok");
    esm_sqs_msg_free(m[0]);
}

static void test_event_envelope_size_matches_rendering(void **state)
{
    (void)state;
    const char *resp =
        "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"1\"},"
        "{\"MessageId\":\"b\",\"ReceiptHandle\":\"s\",\"Body\":\"2\"}]}";
    esm_sqs_msg *m[10];
    size_t skipped;
    assert_int_equal(parse(resp, m, 10, &skipped), 2);
    esm_buf b;
    esm_buf_init(&b);
    esm_sqs_render_event(m, 2, &b);
    assert_int_equal(b.len, esm_sqs_event_size(2, m[0]->record_len + m[1]->record_len));
    cJSON *ev = cJSON_ParseWithLength(b.data, b.len);
    assert_non_null(ev);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ev, "Records")), 2);
    cJSON_Delete(ev);
    esm_buf_reset(&b);
    esm_sqs_render_event(m, 0, &b);
    assert_int_equal(b.len, esm_sqs_event_size(0, 0));
    esm_buf_free(&b);
    esm_sqs_msg_free(m[0]);
    esm_sqs_msg_free(m[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_message_renders_in_aws_shape),
        cmocka_unit_test(test_fifo_attributes_and_no_message_attributes),
        cmocka_unit_test(test_body_is_delivered_byte_for_byte),
        cmocka_unit_test(test_malformed_messages_are_skipped_and_bad_shapes_refused),
        cmocka_unit_test(test_event_envelope_size_matches_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
