/* The Kinesis source against faults a real stream cannot produce on demand (the in-process
 * fault server, tests/unit/aws_fault_server.h): throttles, 5xx, bodies cut short, resets, slow
 * answers, expired iterators, answers that would end an open shard, and a checkpoint older
 * than the trim horizon. Every record reaches the function, nothing is checkpointed past what
 * the function answered, throttles back off, and each fault shows in the status and counters. */
#include "pollers/kinesis/esm_kinesis_int.h"
#include "tests/unit/source_fault_fixture.h"

#define STREAM_ARN "arn:aws:kinesis:us-east-1:000000000000:stream/faults"
#define SHARD "shardId-000000000000"
#define MAPPING                                                                                    \
    "{\"FunctionName\":\"fn\",\"EventSourceArn\":\"" STREAM_ARN "\",\"StartingPosition\":"         \
    "\"TRIM_HORIZON\",\"BatchSize\":10}"

static void open_stream(sf_fixture *f, size_t records)
{
    sf_open(f, &esm_kinesis_source, MAPPING);
    af_kinesis_add(f->srv, records);
}

/* The shard's stored checkpoint ("" when none). */
static void stored_checkpoint(sf_fixture *f, char *out, size_t len)
{
    esm_store_lane l;
    esm_err err;
    esm_err_clear(&err);
    out[0] = '\0';
    if (esm_store_checkpoint_get(f->store, f->cfg->mappings[0].uuid, STREAM_ARN, SHARD, &l, &err) ==
        0) {
        snprintf(out, len, "%s", l.position ? l.position : "");
        esm_store_lane_clear(&l);
    }
}

static bool checkpoint_is(sf_fixture *f, const char *want)
{
    char cp[64];
    stored_checkpoint(f, cp, sizeof cp);
    return strcmp(cp, want) == 0;
}

static const char *seq_of(sf_fixture *f, size_t i)
{
    return f->srv->recs[i].seq;
}

static void test_throttles_back_off_and_lose_nothing(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 30);
    af_fault_push(f.srv, "GetShardIterator", AF_STATUS, 400, "KMSThrottlingException");
    for (int i = 0; i < 100; i++)
        af_fault_push(f.srv, "GetRecords", AF_STATUS, 400,
                      "ProvisionedThroughputExceededException");
    sf_start(&f);
    /* Throttled for 4 s: at most 5 GetRecords a second would be 20 calls; backing off from
     * 1 s doubling makes 3 or 4. */
    sf_run_for(&f, 4.0);
    int calls = af_calls(f.srv, "GetRecords");
    assert_true(calls >= 1);
    assert_true(calls <= 5);
    assert_int_equal(af_kinesis_delivered(f.srv, 0), 0);
    assert_true(SF_WAIT(&f, f.stats.source_errors >= (uint64_t)calls + 1, 5.));
    assert_true(sf_status_has(&f, "ProvisionedThroughputExceededException"));
    af_faults_clear(f.srv);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 30, 20.));
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 29)), 5.));
    assert_true(sf_status_has(&f, "\"LastError\":null"));
    sf_close(&f);
}

static void test_errors_cut_bodies_and_resets_lose_nothing(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 40);
    f.srv->page_max = 5; /* 8 pages: the faults fall between them */
    af_fault_push(f.srv, "DescribeStreamSummary", AF_STATUS, 503, "ServiceUnavailable");
    af_fault_push(f.srv, "ListShards", AF_TRUNCATED, 0, NULL);
    af_fault_push(f.srv, "GetShardIterator", AF_RESET, 0, NULL);
    static const struct {
        af_kind kind;
        int status;
        const char *type;
    } faults[] = {
        {AF_STATUS, 500, "InternalFailure"},
        {AF_STATUS, 503, "ServiceUnavailable"},
        {AF_TRUNCATED, 0, NULL},
        {AF_SHORT, 0, NULL},
        {AF_RESET, 0, NULL},
        {AF_BODY, 0, "not json"},
        {AF_BODY, 0, "{\"Records\":{}}"},
        {AF_STATUS, 400, "ExpiredIteratorException"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        af_fault_push(f.srv, "GetRecords", AF_PASS, 0, NULL);
        af_fault_push(f.srv, "GetRecords", faults[i].kind, faults[i].status, faults[i].type);
    }
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 40, 30.));
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 39)), 5.));
    assert_true(SF_WAIT(&f, af_faults_left(f.srv) == 0, 10.));
    /* Each fault is one failed call, except the resets: curl sends a request again on a fresh
     * connection when a reused one dies before answering. Nothing was taken twice. */
    assert_true(SF_WAIT(&f, f.stats.source_errors >= 2 + sizeof faults / sizeof faults[0] - 1, 5.));
    assert_int_equal(f.stats.polled, 40);
    sf_close(&f);
}

/* An iterator expires after 5 minutes; one that is expired again before any read worked is no
 * reason to renew it at once, again and again (5 GetRecords and 10 GetShardIterator calls a
 * second against an endpoint that keeps saying so). */
static void test_iterators_expiring_again_back_off(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 10);
    for (int i = 0; i < 100; i++)
        af_fault_push(f.srv, "GetRecords", AF_STATUS, 400, "ExpiredIteratorException");
    sf_start(&f);
    sf_run_for(&f, 3.0);
    int calls = af_calls(f.srv, "GetRecords");
    assert_true(calls >= 2);
    assert_true(calls <= 6);
    assert_true(SF_WAIT(&f, f.stats.source_errors >= (uint64_t)calls, 5.));
    af_faults_clear(f.srv);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 10, 20.));
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 9)), 5.));
    sf_close(&f);
}

static void test_slow_answer_times_out_and_is_retried(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 12);
    long saved = esm_kinesis_call_timeout_ms;
    esm_kinesis_call_timeout_ms = 500;
    af_fault_push(f.srv, "GetRecords", AF_SLOW, 0, NULL);
    sf_start(&f);
    assert_true(SF_WAIT(&f, f.stats.source_errors >= 1, 10.));
    assert_true(sf_status_has(&f, "timed out"));
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 12, 10.));
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 11)), 5.));
    esm_kinesis_call_timeout_ms = saved;
    sf_close(&f);
}

static void test_function_failure_holds_the_checkpoint(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 10);
    f.srv->fn_fail = 1000;
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_fn_calls(f.srv) >= 2, 20.));
    /* While the function fails, nothing is acknowledged. */
    char cp[64];
    stored_checkpoint(&f, cp, sizeof cp);
    assert_string_equal(cp, "");
    pthread_mutex_lock(&f.srv->mu);
    f.srv->fn_fail = 0;
    pthread_mutex_unlock(&f.srv->mu);
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 9)), 20.));
    assert_int_equal(af_kinesis_delivered(f.srv, 0), 10);
    sf_close(&f);
}

/* AWS gives no ShardIterator only for a closed shard: an open shard must not be ended (and
 * recorded as finished, never read again) by an answer without one. */
static void test_open_shard_without_iterator_is_not_finished(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 10);
    af_fault_push(f.srv, "GetShardIterator", AF_BODY, 0, "{}");
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 10, 15.));
    assert_true(f.stats.source_errors >= 1);
    af_kinesis_add(f.srv, 5); /* the shard is still read */
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 15, 15.));
    assert_false(sf_status_has(&f, "\"Finished\""));
    sf_close(&f);
}

/* Same for a GetRecords answer without NextShardIterator. */
static void test_open_shard_without_next_iterator_is_not_finished(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 10);
    f.srv->page_max = 5;
    af_fault_push(f.srv, "GetRecords", AF_PASS, 0, NULL);
    af_fault_push(f.srv, "GetRecords", AF_BODY, 0, "{\"Records\":[]}");
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 10, 15.));
    af_kinesis_add(f.srv, 5);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 0) == 15, 15.));
    assert_true(f.stats.source_errors >= 1);
    assert_false(sf_status_has(&f, "\"Finished\""));
    sf_close(&f);
}

static void store_checkpoint(sf_fixture *f, const char *seq)
{
    esm_err err;
    esm_err_clear(&err);
    esm_store_step step = {.position = seq};
    assert_int_equal(
        esm_store_advance(f->store, f->cfg->mappings[0].uuid, STREAM_ARN, SHARD, &step, &err), 0);
}

/* The stored checkpoint is record 2; retention removed records 0-7. Kinesis resumes from
 * record 8 without a word; esmd reports that records 3-7 expired unread. */
static void test_checkpoint_older_than_trim_horizon_is_reported(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 20);
    f.srv->trimmed = 8;
    store_checkpoint(&f, seq_of(&f, 2));
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 8) == 12, 15.));
    assert_int_equal(af_kinesis_delivered(f.srv, 0), 12);
    assert_int_equal(f.stats.data_trimmed, 1);
    char want[128];
    snprintf(want, sizeof want,
             "\"TrimmedData\":{\"Count\":1,\"After\":\"%s\",\"OldestAvailable\":"
             "\"%s\"",
             seq_of(&f, 2), seq_of(&f, 8));
    assert_true(sf_status_has(&f, want));
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 19)), 5.));
    sf_close(&f);
}

static void test_checkpoint_within_retention_is_not_reported(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 20);
    f.srv->trimmed = 8;
    store_checkpoint(&f, seq_of(&f, 8)); /* the oldest record itself is still there */
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 9) == 11, 15.));
    assert_int_equal(af_kinesis_delivered(f.srv, 0), 11);
    assert_int_equal(f.stats.data_trimmed, 0);
    assert_true(sf_status_has(&f, "\"TrimmedData\":null"));
    sf_close(&f);
}

/* Reading stalls (an expired iterator) while retention removes records past the last one read:
 * the renewed iterator resumes from the trim horizon, and esmd says so. */
static void test_trimmed_while_renewing_the_iterator_is_reported(void **state)
{
    (void)state;
    sf_fixture f;
    open_stream(&f, 10);
    sf_start(&f);
    assert_true(SF_WAIT(&f, checkpoint_is(&f, seq_of(&f, 9)), 15.));
    pthread_mutex_lock(&f.srv->mu); /* all at once: the next read sees the three together */
    af_fault_push_locked(f.srv, "GetRecords", AF_STATUS, 400, "ExpiredIteratorException");
    af_kinesis_add_locked(f.srv, 10);
    f.srv->trimmed = 15;
    pthread_mutex_unlock(&f.srv->mu);
    assert_true(SF_WAIT(&f, af_kinesis_delivered(f.srv, 15) == 5, 15.));
    assert_int_equal(af_kinesis_delivered(f.srv, 10), 5);
    assert_int_equal(f.stats.data_trimmed, 1);
    assert_true(sf_status_has(&f, seq_of(&f, 15)));
    sf_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throttles_back_off_and_lose_nothing),
        cmocka_unit_test(test_errors_cut_bodies_and_resets_lose_nothing),
        cmocka_unit_test(test_iterators_expiring_again_back_off),
        cmocka_unit_test(test_slow_answer_times_out_and_is_retried),
        cmocka_unit_test(test_function_failure_holds_the_checkpoint),
        cmocka_unit_test(test_open_shard_without_iterator_is_not_finished),
        cmocka_unit_test(test_open_shard_without_next_iterator_is_not_finished),
        cmocka_unit_test(test_checkpoint_older_than_trim_horizon_is_reported),
        cmocka_unit_test(test_checkpoint_within_retention_is_not_reported),
        cmocka_unit_test(test_trimmed_while_renewing_the_iterator_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
