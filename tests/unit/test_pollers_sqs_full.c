/* SQS on a disk that fills up (tests/unit/fail_vfs.h): a failure record that cannot be stored
 * is reported (esm_sqs_ops_failure_record fails, so the message is not deleted), counted in
 * checkpoint_write_failures (esmd_checkpoint_write_failures_total), and stored once there is
 * room again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "checkpoint/esm_store.h"
#include "config/esm_config.h"
#include "fail_vfs.h"
#include "pollers/sqs/esm_sqs_int.h"
#include "test_checkpoint_util.h"

static void test_unstorable_failure_record_is_counted_and_kept(void **state)
{
    (void)state;
    assert_int_equal(fail_vfs_install(), SQLITE_OK);
    char *dir = tc_mkdtemp();
    char json[2048];
    snprintf(json, sizeof json,
             "{\"state_dir\":\"%s\",\"aws\":{\"region\":\"us-east-1\"},"
             "\"functions\":{\"f\":{\"url\":\"http://127.0.0.1:9/fn\",\"protocol\":\"http\"}},"
             "\"event_source_mappings\":[{\"FunctionName\":\"f\","
             "\"EventSourceArn\":\"arn:aws:sqs:us-east-1:000000000000:full\","
             "\"MaximumRetryAttempts\":1,"
             "\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"file://%s/out\"}}}]}",
             dir, dir);
    esm_config_problems problems = {0};
    esm_config *cfg = esm_config_parse(json, strlen(json), &problems);
    if (!cfg) esm_config_problems_print(&problems, stderr);
    esm_config_problems_free(&problems);
    assert_non_null(cfg);
    esm_err err;
    esm_err_clear(&err);
    esm_store *store = esm_store_open(dir, &err);
    assert_non_null(store);
    esm_source_stats stats;
    memset(&stats, 0, sizeof stats);
    esm_source_env env = {.config = cfg,
                          .mapping = &cfg->mappings[0],
                          .store = store,
                          .stats = &stats,
                          .log_ctx = "sqs-full"};
    esm_sqs_ops *ops = esm_sqs_ops_create(&env, NULL, NULL, NULL);
    assert_non_null(ops);
    char record[] = "{\"messageId\":\"m-1\",\"body\":\"x\"}";
    esm_sqs_msg msg = {.message_id = "m-1",
                       .receipt_handle = "rh-1",
                       .receive_count = 2,
                       .record = record,
                       .record_len = strlen(record)};
    esm_invoke_result r;
    memset(&r, 0, sizeof r);
    r.status = 200;

    fail_vfs_arm(true);
    assert_int_equal(esm_sqs_ops_failure_record(ops, &msg, &r), -1);
    fail_vfs_arm(false);
    assert_int_equal(stats.checkpoint_write_failures, 1);
    assert_int_equal(esm_store_outbox_depth(store, cfg->mappings[0].uuid, &err), 0);

    assert_int_equal(esm_sqs_ops_failure_record(ops, &msg, &r), 0);
    assert_int_equal(stats.checkpoint_write_failures, 1);
    assert_int_equal(esm_store_outbox_depth(store, cfg->mappings[0].uuid, &err), 1);

    esm_sqs_ops_destroy(ops);
    esm_store_close(store);
    esm_config_destroy(cfg);
    tc_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unstorable_failure_record_is_counted_and_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
