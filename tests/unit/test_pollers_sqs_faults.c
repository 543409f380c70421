/* The SQS source against faults a real queue cannot produce on demand (the in-process fault
 * server, tests/unit/aws_fault_server.h): throttles, 5xx, bodies cut short or not JSON,
 * connection resets, a failing function. Every message reaches the function and is deleted,
 * none is deleted before the function answered for it, failed receives back off, and each
 * fault shows in the status and counters. */
#include "pollers/sqs/esm_sqs_int.h"
#include "tests/unit/source_fault_fixture.h"

#define MAPPING                                                                                    \
    "{\"FunctionName\":\"fn\",\"EventSourceArn\":\"arn:aws:sqs:us-east-1:000000000000:faults\","   \
    "\"BatchSize\":10}"

static void open_queue(sf_fixture *f, size_t messages)
{
    sf_open(f, &esm_sqs_source, MAPPING);
    f->srv->visibility_s = 3; /* a message esmd lost track of comes back soon */
    af_sqs_add(f->srv, messages);
}

/* Every message reached the function and was deleted, none before the function's answer. */
static void assert_all_processed(sf_fixture *f, size_t n, double seconds)
{
    assert_true(SF_WAIT(f, af_sqs_deleted(f->srv) == n, seconds));
    assert_int_equal(af_sqs_delivered(f->srv), n);
    pthread_mutex_lock(&f->srv->mu);
    int early = f->srv->acked_unanswered;
    pthread_mutex_unlock(&f->srv->mu);
    assert_int_equal(early, 0);
}

static void test_receive_throttles_back_off(void **state)
{
    (void)state;
    sf_fixture f;
    open_queue(&f, 25);
    for (int i = 0; i < 100; i++)
        af_fault_push(f.srv, "ReceiveMessage", AF_STATUS, 400,
                      i % 2 ? "KMSThrottlingException" : "ThrottlingException");
    sf_start(&f);
    /* Two receive loops throttled for 3 s, each backing off 0.5 s doubling: 3 or 4 calls each.
     * Without backoff they would be hundreds. */
    sf_run_for(&f, 3.0);
    int calls = af_calls(f.srv, "ReceiveMessage");
    assert_true(calls >= 2);
    assert_true(calls <= 10);
    /* every call failed (one may still be on its way back) */
    assert_true(SF_WAIT(&f, f.stats.source_errors >= (uint64_t)calls, 5.));
    assert_true(sf_status_has(&f, "ReceiveMessage failed: injected"));
    assert_int_equal(af_sqs_delivered(f.srv), 0);
    af_faults_clear(f.srv);
    assert_all_processed(&f, 25, 30.);
    sf_close(&f);
}

/* A 200 answer that is not a ReceiveMessage response used to count as an empty receive: no
 * error anywhere and the next receive at once, a hot loop against the endpoint. */
static void test_malformed_receive_backs_off_and_is_counted(void **state)
{
    (void)state;
    sf_fixture f;
    open_queue(&f, 0);
    for (int i = 0; i < 300; i++) {
        af_fault_push(f.srv, "ReceiveMessage", AF_TRUNCATED, 0, NULL);
        af_fault_push(f.srv, "ReceiveMessage", AF_BODY, 0, "<html>busy</html>");
        af_fault_push(f.srv, "ReceiveMessage", AF_BODY, 0, "");
    }
    sf_start(&f);
    sf_run_for(&f, 3.0);
    int calls = af_calls(f.srv, "ReceiveMessage");
    assert_true(calls >= 2);
    assert_true(calls <= 10);
    /* every call failed (one may still be on its way back) */
    assert_true(SF_WAIT(&f, f.stats.source_errors >= (uint64_t)calls, 5.));
    assert_true(sf_status_has(&f, "ReceiveMessage failed: "));
    af_faults_clear(f.srv);
    af_sqs_add(f.srv, 12);
    assert_all_processed(&f, 12, 30.);
    sf_close(&f);
}

static void test_errors_cut_bodies_and_resets_lose_nothing(void **state)
{
    (void)state;
    sf_fixture f;
    open_queue(&f, 30);
    af_fault_push(f.srv, "GetQueueUrl", AF_STATUS, 503, "ServiceUnavailable");
    af_fault_push(f.srv, "GetQueueAttributes", AF_TRUNCATED, 0, NULL);
    static const struct {
        af_kind kind;
        int status;
        const char *type;
    } faults[] = {
        {AF_STATUS, 500, "InternalFailure"},
        {AF_STATUS, 503, "ServiceUnavailable"},
        {AF_SHORT, 0, NULL},     /* took messages: they come back after the visibility timeout */
        {AF_TRUNCATED, 0, NULL}, /* the same */
        {AF_RESET, 0, NULL},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        af_fault_push(f.srv, "ReceiveMessage", AF_PASS, 0, NULL);
        af_fault_push(f.srv, "ReceiveMessage", faults[i].kind, faults[i].status, faults[i].type);
    }
    /* Deletes answered with an error or cut short are sent again (deleting twice is harmless). */
    af_fault_push(f.srv, "DeleteMessageBatch", AF_STATUS, 500, "InternalError");
    af_fault_push(f.srv, "DeleteMessageBatch", AF_SHORT, 0, NULL);
    af_fault_push(f.srv, "DeleteMessageBatch", AF_TRUNCATED, 0, NULL);
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_faults_left(f.srv) == 0, 30.));
    assert_all_processed(&f, 30, 30.);
    assert_true(f.stats.source_errors >= 2 + 4);         /* setup, and the receives but the reset */
    assert_true(SF_WAIT(&f, f.stats.deleted == 30, 5.)); /* the answers reached esmd */
    sf_close(&f);
}

/* Answers that never come: the calls time out, are counted and retried; nothing is lost. */
static void test_slow_answers_time_out_and_are_retried(void **state)
{
    (void)state;
    sf_fixture f;
    open_queue(&f, 10);
    long saved_receive = esm_sqs_receive_timeout_ms, saved_ack = esm_sqs_ack_timeout_ms;
    esm_sqs_receive_timeout_ms = 500;
    esm_sqs_ack_timeout_ms = 500;
    af_fault_push(f.srv, "ReceiveMessage", AF_SLOW, 0, NULL);
    af_fault_push(f.srv, "ReceiveMessage", AF_SLOW, 0, NULL);
    af_fault_push(f.srv, "DeleteMessageBatch", AF_SLOW, 0, NULL);
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_faults_left(f.srv) == 0, 20.));
    assert_all_processed(&f, 10, 20.);
    assert_true(f.stats.source_errors >= 2);
    assert_true(SF_WAIT(&f, f.stats.deleted == 10, 5.)); /* the answers reached esmd */
    esm_sqs_receive_timeout_ms = saved_receive;
    esm_sqs_ack_timeout_ms = saved_ack;
    sf_close(&f);
}

/* A failed invocation deletes nothing: the message comes back and is processed then. */
static void test_function_failure_is_not_acknowledged(void **state)
{
    (void)state;
    sf_fixture f;
    open_queue(&f, 5);
    f.srv->fn_fail = 1;
    sf_start(&f);
    assert_all_processed(&f, 5, 30.);
    size_t again = 0; /* the failed batch's messages, delivered a second time */
    pthread_mutex_lock(&f.srv->mu);
    for (size_t i = 0; i < 5; i++)
        again += f.srv->msgs[i].delivered >= 2;
    pthread_mutex_unlock(&f.srv->mu);
    assert_true(again >= 1);
    sf_close(&f);
}

/* The visibility changes of RetryBackoff, answered with an error or cut short, are sent again;
 * the failed message comes back and is processed. */
static void test_failing_visibility_changes_are_sent_again(void **state)
{
    (void)state;
    sf_fixture f;
    sf_open(&f, &esm_sqs_source,
            "{\"FunctionName\":\"fn\",\"EventSourceArn\":\"arn:aws:sqs:us-east-1:000000000000:"
            "faults\",\"BatchSize\":10,\"EsmdOptions\":{\"RetryBackoff\":{\"BaseSeconds\":1,"
            "\"MaxSeconds\":1}}}");
    f.srv->visibility_s = 3;
    af_sqs_add(f.srv, 1);
    f.srv->fn_fail = 1;
    af_fault_push(f.srv, "ChangeMessageVisibilityBatch", AF_STATUS, 500, "InternalError");
    af_fault_push(f.srv, "ChangeMessageVisibilityBatch", AF_TRUNCATED, 0, NULL);
    sf_start(&f);
    assert_all_processed(&f, 1, 30.);
    assert_int_equal(af_faults_left(f.srv), 0);
    assert_true(af_calls(f.srv, "ChangeMessageVisibilityBatch") >= 3);
    pthread_mutex_lock(&f.srv->mu);
    int delivered = f.srv->msgs[0].delivered;
    pthread_mutex_unlock(&f.srv->mu);
    assert_true(delivered >= 2);
    sf_close(&f);
}

/* ---- FIFO groups cut at the 6 MB limit (fauxqs returns one message per group per receive,
 * so only this server gives ten messages of one group in one answer, as SQS does). */

#define FIFO_MAPPING                                                                               \
    "{\"FunctionName\":\"fn\",\"EventSourceArn\":\"arn:aws:sqs:us-east-1:000000000000:cut.fifo\"," \
    "\"BatchSize\":10,\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"],"                    \
    "\"EsmdOptions\":{\"RetryBackoff\":{\"BaseSeconds\":1,\"MaxSeconds\":1}}}"
#define BIG_PAD (700u * 1024u) /* ten of them are over 6 MB: one receive makes two batches */

static int fn_max_in_flight(sf_fixture *f)
{
    pthread_mutex_lock(&f->srv->mu);
    int n = f->srv->fn_max_in_flight;
    pthread_mutex_unlock(&f->srv->mu);
    return n;
}

static int delivered(sf_fixture *f, size_t i)
{
    pthread_mutex_lock(&f->srv->mu);
    int n = f->srv->msgs[i].delivered;
    pthread_mutex_unlock(&f->srv->mu);
    return n;
}

/* The group was deleted in order, each message once. */
static void assert_group_in_order(sf_fixture *f, size_t n)
{
    char want[256] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "m-%zu ", i);
    pthread_mutex_lock(&f->srv->mu);
    char got[sizeof f->srv->deleted_order];
    memcpy(got, f->srv->deleted_order, sizeof got);
    pthread_mutex_unlock(&f->srv->mu);
    assert_string_equal(got, want);
}

/* The second batch of the cut waits for the first: never two batches of a group at once. */
static void test_fifo_group_cut_at_the_size_limit_is_one_batch_at_a_time(void **state)
{
    (void)state;
    sf_fixture f;
    sf_open(&f, &esm_sqs_source, FIFO_MAPPING);
    af_sqs_add_group(f.srv, 10, "G", BIG_PAD, -1);
    f.srv->fn_delay_ms = 300;
    sf_start(&f);
    assert_true(SF_WAIT(&f, af_sqs_deleted(f.srv) == 10, 30.));
    assert_true(af_fn_calls(f.srv) >= 2);
    assert_int_equal(fn_max_in_flight(&f), 1);
    assert_group_in_order(&f, 10);
    sf_close(&f);
}

/* The first batch of the cut fails on the group's first message: the held second batch is
 * never invoked, its messages go back behind the failed one, and once the function is fixed
 * the whole group is processed in order. */
static void test_fifo_group_failing_in_the_first_cut_holds_back_the_second(void **state)
{
    (void)state;
    sf_fixture f;
    sf_open(&f, &esm_sqs_source, FIFO_MAPPING);
    af_sqs_add_group(f.srv, 10, "G", BIG_PAD, 0);
    f.srv->fn_poison = true;
    sf_start(&f);
    assert_true(SF_WAIT(&f, delivered(&f, 0) >= 3, 30.));
    assert_int_equal(delivered(&f, 9), 0); /* ten do not fit one event: m-9 is in the second */
    assert_int_equal(af_sqs_deleted(f.srv), 0);
    pthread_mutex_lock(&f.srv->mu);
    f.srv->fn_poison = false; /* the function is fixed */
    pthread_mutex_unlock(&f.srv->mu);
    assert_true(SF_WAIT(&f, af_sqs_deleted(f.srv) == 10, 30.));
    assert_int_equal(fn_max_in_flight(&f), 1);
    assert_group_in_order(&f, 10);
    sf_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receive_throttles_back_off),
        cmocka_unit_test(test_malformed_receive_backs_off_and_is_counted),
        cmocka_unit_test(test_errors_cut_bodies_and_resets_lose_nothing),
        cmocka_unit_test(test_slow_answers_time_out_and_are_retried),
        cmocka_unit_test(test_function_failure_is_not_acknowledged),
        cmocka_unit_test(test_failing_visibility_changes_are_sent_again),
        cmocka_unit_test(test_fifo_group_cut_at_the_size_limit_is_one_batch_at_a_time),
        cmocka_unit_test(test_fifo_group_failing_in_the_first_cut_holds_back_the_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
