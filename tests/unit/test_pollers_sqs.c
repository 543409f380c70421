/* The SQS source's pure parts: ReceiveMessage parsing and the event records it renders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pollers/sqs/esm_sqs_int.h"
#include "tests/fuzz/sqs_render_ref.h"

static const esm_sqs_render_ctx ctx = {.queue_arn = "arn:aws:sqs:eu-west-1:111122223333:orders",
                                       .region = "eu-west-1"};

/* Parses the ReceiveMessage response json with parser p (the messages' bodies point into json
 * or p, so both must outlive the checks on bodies). */
static int parse_with(esm_sqs_parser *p, const char *json, esm_sqs_msg **out, size_t cap,
                      size_t *skipped)
{
    char why[128] = "";
    int n = esm_sqs_parse_receive(p, json, strlen(json), &ctx, out, cap, skipped, why, sizeof why);
    if (n < 0) assert_true(why[0] != '\0'); /* a refusal says why */
    return n;
}

static int parse(const char *json, esm_sqs_msg **out, size_t cap, size_t *skipped)
{
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    int n = parse_with(&p, json, out, cap, skipped);
    esm_sqs_parser_free(&p);
    return n;
}

static void assert_body(const esm_sqs_msg *m, const char *want)
{
    assert_int_equal(m->body_len, strlen(want));
    assert_memory_equal(m->body, want, m->body_len);
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
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    assert_int_equal(parse_with(&p, resp, m, 10, &skipped), 1);
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
    assert_body(m[0], "{\"orderId\":\"A-1\"}");
    assert_int_equal(m[0]->receive_count, 2);
    assert_int_equal(m[0]->sent_ms, 1717000000123LL);
    assert_null(m[0]->group_id);
    esm_sqs_msg_free(m[0]);
    /* A body without escapes is not copied at all: it is a slice of the response. */
    const char *plain =
        "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"hi\"}]}";
    assert_int_equal(parse_with(&p, plain, m, 10, &skipped), 1);
    assert_ptr_equal(m[0]->body, strstr(plain, "hi\""));
    assert_int_equal(m[0]->body_len, 2);
    esm_sqs_msg_free(m[0]);
    esm_sqs_parser_free(&p);
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
    char *json = cJSON_PrintUnformatted(resp);
    esm_sqs_msg *m[1];
    size_t skipped;
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    assert_int_equal(parse_with(&p, json, m, 1, &skipped), 1);
    assert_body(m[0], body);
    cJSON *record = cJSON_Parse(m[0]->record);
    assert_non_null(record);
    assert_string_equal(cJSON_GetObjectItem(record, "body")->valuestring, body);
    cJSON_Delete(record);
    cJSON_Delete(resp);
    free(json);
    esm_sqs_msg_free(m[0]);
    esm_sqs_parser_free(&p);
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
    /* Not JSON at all, cut short, or followed by garbage: refused, never half-read. */
    assert_int_equal(parse("", m, 10, &skipped), -1);
    assert_int_equal(parse("{\"Messages\":[{\"MessageId\":\"a\"", m, 10, &skipped), -1);
    assert_int_equal(parse("{\"Messages\":[]} x", m, 10, &skipped), -1);
    assert_int_equal(parse("<html>", m, 10, &skipped), -1);
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    char why[128] = "";
    assert_int_equal(esm_sqs_parse_receive(&p, NULL, 0, &ctx, m, 10, &skipped, why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "not valid JSON"));
    esm_sqs_parser_free(&p);
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

/* Renders every message of resp with the new parser and with the pre-rewrite renderer
 * (tests/fuzz/sqs_render_ref.h) and asserts identical records, ids, handles and groups. */
static void assert_matches_reference(const char *resp, int want_n, size_t want_skipped)
{
    esm_sqs_msg *m[10];
    size_t skipped;
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    int n = parse_with(&p, resp, m, 10, &skipped);
    assert_int_equal(n, want_n);
    assert_int_equal(skipped, want_skipped);
    cJSON *tree = cJSON_Parse(resp);
    assert_non_null(tree);
    const cJSON *jm;
    int i = 0;
    esm_buf want;
    esm_buf_init(&want);
    cJSON_ArrayForEach(jm, cJSON_GetObjectItem(tree, "Messages"))
    {
        if (!ref_str_item(jm, "MessageId") || !ref_str_item(jm, "ReceiptHandle") ||
            !ref_str_item(jm, "Body"))
            continue;
        assert_true(i < n);
        esm_buf_reset(&want);
        ref_sqs_render_record(jm, &ctx, &want);
        if (m[i]->record_len != want.len || memcmp(m[i]->record, want.data, want.len) != 0)
            fail_msg("message %d\ngot  %s\nwant %s", i, m[i]->record, esm_buf_cstr(&want));
        assert_string_equal(m[i]->message_id, ref_str_item(jm, "MessageId"));
        assert_string_equal(m[i]->receipt_handle, ref_str_item(jm, "ReceiptHandle"));
        assert_body(m[i], ref_str_item(jm, "Body"));
        const char *g = ref_str_item(cJSON_GetObjectItem(jm, "Attributes"), "MessageGroupId");
        if (g)
            assert_string_equal(m[i]->group_id, g);
        else
            assert_null(m[i]->group_id);
        esm_sqs_msg_free(m[i]);
        i++;
    }
    assert_int_equal(i, n);
    esm_buf_free(&want);
    cJSON_Delete(tree);
    esm_sqs_parser_free(&p);
}

static void test_records_match_the_previous_renderer(void **state)
{
    (void)state;
    /* Attributes in any order, repeated names, unknown ones, non-string values. */
    assert_matches_reference(
        "{\"Messages\":[{\"Body\":\"b\",\"Attributes\":{\"Zed\":\"z\",\"SenderId\":\"S\","
        "\"MessageGroupId\":\"g\",\"SentTimestamp\":7,\"SentTimestamp\":\"8\",\"SenderId\":\"T\","
        "\"ApproximateFirstReceiveTimestamp\":\"9\",\"ApproximateReceiveCount\":\"3\","
        "\"MessageGroupId\":\"h\",\"A\":\"a\",\"S\":null},\"ReceiptHandle\":\"r\","
        "\"MessageId\":\"i\",\"MD5OfBody\":\"m\"}]}",
        1, 0);
    /* Message attributes: every value kind, lists with non-strings, missing DataType,
     * non-object entries, repeated fields. */
    assert_matches_reference(
        "{\"Messages\":[{\"MessageId\":\"i\",\"ReceiptHandle\":\"r\",\"Body\":\"b\","
        "\"MD5OfMessageAttributes\":\"ma\",\"MessageAttributes\":{\"s\":{\"StringValue\":\"v\","
        "\"DataType\":\"String.custom\"},\"bin\":{\"BinaryValue\":\"AAE=\",\"DataType\":\"Binary\"}"
        ","
        "\"l\":{\"StringListValues\":[\"x\",1,\"y\"],\"BinaryListValues\":[\"QQ==\"]},"
        "\"odd\":7,\"n\":{\"StringValue\":3,\"DataType\":null},\"d\":{\"StringValue\":\"1\","
        "\"StringValue\":\"2\",\"DataType\":\"Number\",\"DataType\":\"String\"},"
        "\"lo\":{\"StringListValues\":{\"k\":\"v\"}}}}]}",
        1, 0);
    /* md5OfMessageAttributes only with attributes; Attributes / MessageAttributes of the
     * wrong type; duplicates of the message's own fields. */
    assert_matches_reference(
        "{\"Messages\":[{\"MessageId\":\"a\",\"MessageId\":\"b\",\"ReceiptHandle\":\"r\","
        "\"Body\":\"1\",\"Body\":\"2\",\"MD5OfMessageAttributes\":\"x\",\"MessageAttributes\":{}},"
        "{\"MessageId\":\"c\",\"ReceiptHandle\":\"r\",\"Body\":\"\",\"Attributes\":[\"x\"],"
        "\"MessageAttributes\":[{\"StringValue\":\"v\"}],\"MD5OfMessageAttributes\":\"y\"},"
        "{\"MessageId\":\"d\",\"ReceiptHandle\":\"r\",\"Body\":\"x\",\"Attributes\":\"s\","
        "\"MessageAttributes\":\"t\",\"MD5OfBody\":5}]}",
        3, 0);
    /* Escapes, control characters, NUL (cJSON ends the string there), invalid UTF-8. */
    assert_matches_reference(
        "{\"Messages\":[{\"MessageId\":\"q\\\"1\",\"ReceiptHandle\":\"r\\n\",\"Body\":"
        "\"a\\u0001\\\"\\\\\\/\\u00e9\\ud83d\\ude00 \xff\xc3 end\\u0000after\","
        "\"Attributes\":{\"k\\t\":\"\\u2028\"}}]}",
        1, 0);
}

static void test_first_occurrence_of_a_field_wins(void **state)
{
    (void)state;
    /* Like a lookup by name: a later duplicate is ignored, even when the first one is not a
     * string (then the message has no usable field and is skipped). */
    const char *resp = "{\"Messages\":[{\"MessageId\":\"a\",\"MessageId\":\"b\","
                       "\"ReceiptHandle\":\"r\",\"Body\":\"x\",\"Attributes\":{\"MessageGroupId\":"
                       "\"g1\",\"MessageGroupId\":\"g2\",\"ApproximateReceiveCount\":\"4\"}},"
                       "{\"MessageId\":\"c\",\"ReceiptHandle\":\"r\",\"Body\":1,\"Body\":\"y\"}]}";
    esm_sqs_msg *m[10];
    size_t skipped;
    assert_int_equal(parse(resp, m, 10, &skipped), 1);
    assert_int_equal(skipped, 1);
    assert_string_equal(m[0]->message_id, "a");
    assert_string_equal(m[0]->group_id, "g1");
    assert_int_equal(m[0]->receive_count, 4);
    assert_non_null(strstr(m[0]->record, "\"messageId\":\"a\""));
    assert_non_null(strstr(m[0]->record, "\"MessageGroupId\":\"g1\",\"MessageGroupId\":\"g2\""));
    esm_sqs_msg_free(m[0]);
}

static void test_at_most_cap_messages(void **state)
{
    (void)state;
    const char *resp =
        "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"1\"},"
        "{},{\"MessageId\":\"b\",\"ReceiptHandle\":\"s\",\"Body\":\"2\"},"
        "{\"MessageId\":\"c\",\"ReceiptHandle\":\"t\",\"Body\":\"3\"},{}]}";
    esm_sqs_msg *m[2];
    size_t skipped;
    assert_int_equal(parse(resp, m, 2, &skipped), 2);
    assert_int_equal(skipped, 1); /* the one before the cap; nothing after it is looked at */
    assert_string_equal(m[0]->message_id, "a");
    assert_string_equal(m[1]->message_id, "b");
    assert_int_equal(m[1]->sent_ms, 0);
    assert_int_equal(m[1]->receive_count, 1);
    esm_sqs_msg_free(m[0]);
    esm_sqs_msg_free(m[1]);
}

static void test_parser_is_reused_and_trimmed(void **state)
{
    (void)state;
    /* A large response grows the parser; trimming releases it and parsing still works. */
    size_t big = 300000;
    esm_buf json;
    esm_buf_init(&json);
    esm_buf_puts(&json, "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"");
    for (size_t i = 0; i < big; i++)
        esm_buf_puts(&json, i % 100 ? "x" : "\\n");
    esm_buf_puts(&json, "\"}]}");
    esm_sqs_parser p;
    esm_sqs_parser_init(&p);
    esm_sqs_msg *m[1];
    size_t skipped;
    assert_int_equal(parse_with(&p, esm_buf_cstr(&json), m, 1, &skipped), 1);
    assert_int_equal(m[0]->body_len, big);
    esm_sqs_msg_free(m[0]);
    esm_sqs_parser_trim(&p, 1u << 20); /* below the limit: kept */
    assert_non_null(p.tape.dec);
    esm_sqs_parser_trim(&p, 4096);
    assert_null(p.tape.dec);
    assert_null(p.scratch.data);
    assert_int_equal(parse_with(&p,
                                "{\"Messages\":[{\"MessageId\":\"b\",\"ReceiptHandle\":\"r\","
                                "\"Body\":\"\\ty\"}]}",
                                m, 1, &skipped),
                     1);
    assert_body(m[0], "\ty");
    esm_sqs_msg_free(m[0]);
    esm_sqs_parser_free(&p);
    esm_buf_free(&json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_message_renders_in_aws_shape),
        cmocka_unit_test(test_fifo_attributes_and_no_message_attributes),
        cmocka_unit_test(test_body_is_delivered_byte_for_byte),
        cmocka_unit_test(test_malformed_messages_are_skipped_and_bad_shapes_refused),
        cmocka_unit_test(test_event_envelope_size_matches_rendering),
        cmocka_unit_test(test_records_match_the_previous_renderer),
        cmocka_unit_test(test_first_occurrence_of_a_field_wins),
        cmocka_unit_test(test_at_most_cap_messages),
        cmocka_unit_test(test_parser_is_reused_and_trimmed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
