/* What replay does with one failure record: which ones it invokes (the event they carry, only
 * for the mapping's own source), which it skips and why, and when an invocation replayed them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/esm_replay_record.h"

#define STREAM "arn:aws:kinesis:us-east-1:000000000000:stream/s"

static const char *judge(const char *json, const esm_mapping_config *m, char *event, size_t n)
{
    static char why[300];
    why[0] = '\0';
    cJSON *rec = cJSON_Parse(json);
    const cJSON *e = esm_replay_event_of(rec, m, why, sizeof why);
    event[0] = '\0';
    if (e) {
        char *text = cJSON_PrintUnformatted(e);
        snprintf(event, n, "%s", text);
        cJSON_free(text);
    }
    cJSON_Delete(rec);
    return e ? NULL : why;
}

static void test_events_of_the_mappings_own_source(void **state)
{
    (void)state;
    esm_mapping_config kin = {.event_source_arn = STREAM};
    esm_mapping_config kafka = {.topic = "orders"};
    esm_mapping_config sqs = {.event_source_arn = "arn:aws:sqs:us-east-1:000000000000:q"};
    char ev[256];
    assert_null(judge("{\"KinesisBatchInfo\":{\"streamArn\":\"" STREAM "\"},"
                      "\"payload\":{\"Records\":[{\"n\":1}]}}",
                      &kin, ev, sizeof ev));
    assert_string_equal(ev, "{\"Records\":[{\"n\":1}]}");
    assert_null(judge("{\"KafkaBatchInfo\":{},\"payload\":{\"records\":{\"orders-0\":[],"
                      "\"orders-12\":[]}}}",
                      &kafka, ev, sizeof ev));
    assert_null(judge("{\"SQSBatchInfo\":{\"queueArn\":\"arn:aws:sqs:us-east-1:000000000000:q\"},"
                      "\"payload\":{\"Records\":[]}}",
                      &sqs, ev, sizeof ev));
}

static void test_skipped_with_a_reason(void **state)
{
    (void)state;
    esm_mapping_config kin = {.event_source_arn = STREAM};
    esm_mapping_config kafka = {.topic = "orders"};
    char ev[256];
    assert_non_null(strstr(judge("{\"KinesisBatchInfo\":{\"streamArn\":\"" STREAM "-2\"},"
                                 "\"payload\":{}}",
                                 &kin, ev, sizeof ev),
                           "stream"));
    assert_non_null(
        strstr(judge("{\"KinesisBatchInfo\":{\"streamArn\":\"" STREAM "\"}}", &kin, ev, sizeof ev),
               "IncludeRecordsInFailureRecord"));
    assert_non_null(strstr(judge("{\"KinesisBatchInfo\":{\"streamArn\":\"" STREAM "\"},"
                                 "\"payload\":[1]}",
                                 &kin, ev, sizeof ev),
                           "payload"));
    /* "orders-dlq-0" is partition 0 of topic orders-dlq, not of orders */
    assert_non_null(strstr(judge("{\"KafkaBatchInfo\":{},\"payload\":{\"records\":"
                                 "{\"orders-dlq-0\":[]}}}",
                                 &kafka, ev, sizeof ev),
                           "topic"));
    assert_non_null(strstr(judge("{\"KafkaBatchInfo\":{},\"payload\":{\"records\":{\"x\":[]}}}",
                                 &kafka, ev, sizeof ev),
                           "topic"));
    assert_non_null(strstr(judge("{\"payload\":{}}", &kin, ev, sizeof ev), "not a failure record"));
    assert_non_null(strstr(judge("[1]", &kin, ev, sizeof ev), "object"));
    /* a Kafka mapping has no event_source_arn; a Kinesis record never matches it */
    assert_non_null(judge("{\"KinesisBatchInfo\":{\"streamArn\":\"" STREAM "\"},\"payload\":{}}",
                          &kafka, ev, sizeof ev));
}

/* Records a crafted or corrupted destination may hold, and records of another mapping of the
 * same source (another function, another cluster's topic of the same name). */
static void test_foreign_and_malformed_records_are_skipped(void **state)
{
    (void)state;
    esm_function_config fn = {.name = "fn", .arn = "arn:aws:lambda:us-east-1:1:function:fn"};
    char *servers[] = {"b1:9092", "b2:9092"};
    esm_mapping_config kafka = {
        .topic = "orders", .function = &fn, .bootstrap_servers = servers, .n_bootstrap_servers = 2};
    esm_mapping_config kin = {.event_source_arn = STREAM, .function = &fn};
    char ev[256];
    const char *bad[] = {
        "{\"KafkaBatchInfo\":{},\"payload\":{\"records\":[{}]}}",
        "{\"KafkaBatchInfo\":{},\"payload\":{\"records\":\"x\"}}",
        "{\"KafkaBatchInfo\":{},\"payload\":{\"records\":{}}}",
        "{\"KafkaBatchInfo\":{},\"payload\":{}}",
        "{\"KafkaBatchInfo\":{\"bootstrapServers\":\"b1:90921\"},\"payload\":{\"records\":"
        "{\"orders-0\":[]}}}",
        "{\"requestContext\":{\"functionArn\":\"arn:aws:lambda:us-east-1:1:function:other\"},"
        "\"KafkaBatchInfo\":{},\"payload\":{\"records\":{\"orders-0\":[]}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = judge(bad[i], &kafka, ev, sizeof ev);
        assert_non_null(why);
        assert_true(why[0] != '\0');
    }
    assert_non_null(strstr(judge(bad[5], &kafka, ev, sizeof ev), "function"));
    assert_non_null(strstr(judge(bad[4], &kafka, ev, sizeof ev), "cluster"));
    assert_null(judge("{\"requestContext\":{\"functionArn\":\"arn:aws:lambda:us-east-1:1:"
                      "function:fn\"},\"KafkaBatchInfo\":{\"bootstrapServers\":\"b0:1,b2:9092\"},"
                      "\"payload\":{\"records\":{\"orders-0\":[]}}}",
                      &kafka, ev, sizeof ev));
    /* a Kafka record read by a Kinesis mapping */
    assert_non_null(judge("{\"KafkaBatchInfo\":{},\"payload\":{\"records\":{\"orders-0\":[]}}}",
                          &kin, ev, sizeof ev));
}

static void test_replayed_only_without_failures(void **state)
{
    (void)state;
    char why[300];
    esm_invoke_result r = {.cls = ESM_INVOKE_SUCCESS, .body = "null", .body_len = 4};
    assert_true(esm_replay_succeeded(&r, why, sizeof why));
    r.body = "{\"batchItemFailures\":[]}";
    r.body_len = strlen(r.body);
    assert_true(esm_replay_succeeded(&r, why, sizeof why));
    r.body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"1\"},{\"itemIdentifier\":\"2\"}]}";
    r.body_len = strlen(r.body);
    assert_false(esm_replay_succeeded(&r, why, sizeof why));
    assert_non_null(strstr(why, "2 batchItemFailures"));
    r = (esm_invoke_result){.cls = ESM_INVOKE_FUNCTION_ERROR, .body = "", .reason = "HTTP 200"};
    snprintf(r.function_error, sizeof r.function_error, "Unhandled");
    assert_false(esm_replay_succeeded(&r, why, sizeof why));
    assert_non_null(strstr(why, "function_error"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_of_the_mappings_own_source),
        cmocka_unit_test(test_skipped_with_a_reason),
        cmocka_unit_test(test_foreign_and_malformed_records_are_skipped),
        cmocka_unit_test(test_replayed_only_without_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
