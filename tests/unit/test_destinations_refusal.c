/* Which destination answers park a failure record (destinations/esm_dest_refusal.h): only
 * refusals of the record itself; anything about the destination is retried. */
#include <librdkafka/rdkafka.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "destinations/esm_dest_refusal.h"

static void test_http_4xx_but_not_auth_url_timeout_or_throttle(void **state)
{
    (void)state;
    const long permanent[] = {400, 409, 410, 413, 414, 415, 422, 431, 499};
    const long retried[] = {200, 301, 401, 403, 404, 408, 429, 500, 502, 503, 504, 0, -1};
    for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++)
        assert_true(esm_refusal_http_permanent(permanent[i]));
    for (size_t i = 0; i < sizeof retried / sizeof *retried; i++)
        assert_false(esm_refusal_http_permanent(retried[i]));
}

static void test_aws_record_refusals(void **state)
{
    (void)state;
    assert_true(esm_refusal_aws_permanent(ESM_DEST_SQS, "InvalidParameterValue"));
    assert_true(esm_refusal_aws_permanent(ESM_DEST_SQS, "InvalidMessageContents"));
    assert_true(
        esm_refusal_aws_permanent(ESM_DEST_SQS, "AWS.SimpleQueueService.InvalidMessageContents"));
    assert_true(esm_refusal_aws_permanent(ESM_DEST_SNS, "InvalidParameter"));
    assert_true(esm_refusal_aws_permanent(ESM_DEST_SNS, "InvalidParameterValue"));
    /* about the destination or the moment: retried */
    const char *retried[] = {"QueueDoesNotExist",
                             "AWS.SimpleQueueService.NonExistentQueue",
                             "AccessDenied",
                             "ThrottlingException",
                             "RequestThrottled",
                             "InternalError",
                             "ServiceUnavailable",
                             "TransportError",
                             "InvalidClientTokenId",
                             "KMS.ThrottlingException",
                             "HTTP500",
                             ""};
    for (size_t i = 0; i < sizeof retried / sizeof *retried; i++) {
        assert_false(esm_refusal_aws_permanent(ESM_DEST_SQS, retried[i]));
        assert_false(esm_refusal_aws_permanent(ESM_DEST_SNS, retried[i]));
    }
    assert_false(esm_refusal_aws_permanent(ESM_DEST_SNS, "NotFound"));
    assert_false(esm_refusal_aws_permanent(ESM_DEST_SQS, NULL));
    assert_false(esm_refusal_aws_permanent(ESM_DEST_HTTP, "InvalidParameterValue"));
}

static void test_kafka_record_refusals(void **state)
{
    (void)state;
    assert_true(esm_refusal_kafka_permanent(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
    assert_true(esm_refusal_kafka_permanent(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE));
    assert_true(esm_refusal_kafka_permanent(RD_KAFKA_RESP_ERR_INVALID_RECORD));
    assert_true(esm_refusal_kafka_permanent(RD_KAFKA_RESP_ERR_INVALID_MSG));
    assert_true(esm_refusal_kafka_permanent(RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE));
    const int retried[] = {RD_KAFKA_RESP_ERR_NO_ERROR,
                           RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
                           RD_KAFKA_RESP_ERR__TRANSPORT,
                           RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                           RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,
                           RD_KAFKA_RESP_ERR__QUEUE_FULL,
                           RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                           RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                           RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                           RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                           RD_KAFKA_RESP_ERR__FATAL};
    for (size_t i = 0; i < sizeof retried / sizeof *retried; i++)
        assert_false(esm_refusal_kafka_permanent(retried[i]));
}

static void test_size_limits(void **state)
{
    (void)state;
    assert_int_equal(esm_dest_max_payload(ESM_DEST_SQS), 1048576);
    assert_int_equal(esm_dest_max_payload(ESM_DEST_SNS), 262144);
    assert_int_equal(esm_dest_max_payload(ESM_DEST_KAFKA), 0);
    assert_int_equal(esm_dest_max_payload(ESM_DEST_HTTP), 0);
    assert_int_equal(esm_dest_max_payload(ESM_DEST_FILE), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_4xx_but_not_auth_url_timeout_or_throttle),
        cmocka_unit_test(test_aws_record_refusals),
        cmocka_unit_test(test_kafka_record_refusals),
        cmocka_unit_test(test_size_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
