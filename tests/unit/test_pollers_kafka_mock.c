/* The Kafka source under faults of librdkafka's mock cluster (tests/unit/kafka_mock_harness.h):
 * the stored offset never moves backwards, a broker down and up in the middle of a batch and
 * failing offset commits lose no record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kafka_mock_harness.h"

static bool stat_at_least(kmock *k, const uint64_t *counter, uint64_t n)
{
    (void)k;
    return *counter >= n;
}

static bool invoked_10(kmock *k, void *arg)
{
    (void)arg;
    return kmock_delivered_all(k, NULL) && stat_at_least(k, &k->stats.invocations, 1);
}

static bool filtered_1(kmock *k, void *arg)
{
    (void)arg;
    return stat_at_least(k, &k->stats.filtered_out, 1);
}

static bool committed_10(kmock *k, void *arg)
{
    (void)arg;
    return stat_at_least(k, &k->stats.committed, 10);
}

/* Records 0-9 succeed; their checkpoint trails (held back by a locked store) while the
 * filtered-out record 10 arrives. Its offset must wait for that checkpoint: stored at once, the
 * trailing checkpoint would then store 10 over 11 and the group would read 10 again. */
static void test_filtered_record_never_moves_the_stored_offset_back(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10, 'FilterCriteria': {'Filters': [{'Pattern': "
                   "'{\\'value\\': {\\'kind\\': [\\'keep\\']}}'}]}");
    for (int i = 0; i < 10; i++)
        kmock_produce_value(&k, "{\"kind\":\"keep\"}");
    kmock_lock_store(&k);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, invoked_10, NULL, 20.0));
    assert_int_equal(k.stats.committed, 0); /* the checkpoint still trails */
    kmock_produce_value(&k, "{\"kind\":\"drop\"}");
    assert_true(kmock_run_until(&k, filtered_1, NULL, 20.0));
    kmock_unlock_store(&k);
    assert_true(kmock_run_until(&k, committed_10, NULL, 20.0));
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 11);
    kmock_free(&k);
}

static bool committed_5(kmock *k, void *arg)
{
    (void)arg;
    return stat_at_least(k, &k->stats.committed, 5);
}

static bool first_batch_in_flight(kmock *k, void *arg)
{
    (void)arg;
    return atomic_load(&k->fn.requests) >= 1;
}

static bool source_error_seen(kmock *k, void *arg)
{
    (void)arg;
    return k->stats.source_errors > 0 && k->stats.invocations >= 1;
}

static bool all_delivered_and_committed(kmock *k, void *arg)
{
    (void)arg;
    return kmock_delivered_all(k, NULL) && k->stats.committed >= (uint64_t)k->produced;
}

static void test_broker_down_and_up_mid_batch_loses_nothing(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    kmock_produce(&k, "a", 30);
    atomic_store(&k.fn.delay_ms, 300); /* the first batch stays in flight */
    kmock_start(&k);
    assert_true(kmock_run_until(&k, first_batch_in_flight, NULL, 20.0));
    rd_kafka_mock_broker_set_down(k.mc, 1);
    assert_true(kmock_run_until(&k, source_error_seen, NULL, 30.0));
    atomic_store(&k.fn.delay_ms, 0);
    rd_kafka_mock_broker_set_up(k.mc, 1);
    kmock_produce(&k, "b", 10);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 60.0));
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 40);
    kmock_free(&k);
}

static bool problem_is(kmock *k, void *arg)
{
    const char *want = arg, *got = esm_kafka_source.problem(k->src);
    return want ? got && strcmp(got, want) == 0 : got == NULL;
}

/* A short outage on an idle topic: no record and no new assignment follow it, yet
 * "PROBLEM: Connection error" must end once the broker is up (librdkafka's statistics). */
static void test_connection_problem_ends_when_the_broker_is_back_on_an_idle_topic(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    kmock_produce(&k, "a", 10);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 30.0));
    rd_kafka_mock_broker_set_down(k.mc, 1);
    assert_true(kmock_run_until(&k, problem_is, "Connection error", 30.0));
    rd_kafka_mock_broker_set_up(k.mc, 1);
    assert_true(kmock_run_until(&k, problem_is, NULL, 30.0));
    uint64_t invocations = k.stats.invocations;
    kmock_stop(&k);
    assert_int_equal(invocations, 1); /* nothing new arrived: the statistics ended it */
    kmock_free(&k);
}

/* The group's committed offset, read at most every half second (each read is a client). */
static bool group_committed_is(kmock *k, void *arg)
{
    static ev_tstamp last;
    if (ev_now(k->loop) - last < 0.5) return false;
    last = ev_now(k->loop);
    return kmock_group_committed(k) == *(long long *)arg;
}

static void expect_each_delivered_once(kmock *k)
{
    for (long long o = 0; o < k->produced; o++)
        assert_int_equal(kmock_times_delivered(k, o), 1);
}

/* The first offset commits fail: what is stored is committed again later (librdkafka's
 * auto-commit carries the stored offsets), and a restart resumes without losing or repeating
 * a record. */
static void test_commit_errors_are_retried_and_lose_nothing(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 5");
    rd_kafka_mock_push_request_errors(
        k.mc, KMOCK_API_OFFSET_COMMIT, 4, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    kmock_produce(&k, "a", 20);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 30.0));
    long long want = 20;
    assert_true(kmock_run_until(&k, group_committed_is, &want, 30.0));
    kmock_stop(&k);
    kmock_produce(&k, "b", 5);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 30.0));
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 25);
    expect_each_delivered_once(&k);
    kmock_free(&k);
}

/* The store's key of the mock topic's partition 0 lane. */
static const char *source_key_of(kmock *k)
{
    static char key[300];
    snprintf(key, sizeof key, "%s/" KMOCK_TOPIC, k->bootstrap);
    return key;
}

/* Sets the store's checkpoint of partition 0 as an earlier run of esmd left it. */
static void store_checkpoint(kmock *k, const char *position)
{
    esm_err err = {0};
    assert_int_equal(esm_store_checkpoint_set(k->store, k->cfg->mappings[0].uuid, source_key_of(k),
                                              "0", position, NULL, &err),
                     0);
}

/* As store_checkpoint, and the group once committed an offset of it (then lost it). */
static void store_confirmed_checkpoint(kmock *k, const char *position)
{
    store_checkpoint(k, position);
    esm_err err = {0};
    assert_int_equal(
        esm_store_lane_confirm(k->store, k->cfg->mappings[0].uuid, source_key_of(k), "0", &err), 0);
}

/* Partition 0's lane row as the store has it; esm_store_lane_clear it. */
static esm_store_lane stored_lane(kmock *k)
{
    esm_err err = {0};
    esm_store_lane row;
    assert_int_equal(esm_store_checkpoint_get(k->store, k->cfg->mappings[0].uuid, source_key_of(k),
                                              "0", &row, &err),
                     0);
    return row;
}

static bool store_confirmed(kmock *k)
{
    esm_store_lane row = stored_lane(k);
    bool confirmed = row.confirmed;
    esm_store_lane_clear(&row);
    return confirmed;
}

static void expect_store_checkpoint(kmock *k, const char *position)
{
    esm_store_lane row = stored_lane(k);
    assert_string_equal(row.position, position);
    esm_store_lane_clear(&row);
}

/* The store remembers offset 200 of an earlier log (the topic re-created, the broker's volume
 * wiped); this log ends at 10 and the group has no offset: a log reset, and all 10 records
 * reach the function, none is committed unread. */
static void test_stored_position_above_the_log_end_is_a_log_reset(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    store_checkpoint(&k, "200");
    kmock_produce(&k, "new", 10);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 30.0));
    assert_int_equal(k.stats.kafka_log_resets, 1);
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 10);
    expect_store_checkpoint(&k, "10"); /* the old log's checkpoint is forgotten */
    kmock_free(&k);
}

/* A checkpoint inside the log that the group once confirmed and no longer has (Kafka deleted
 * the group's offsets with the old topic, and the new log has outgrown the old position):
 * records below it are read, not taken for done. */
static void test_checkpoint_the_group_lost_is_a_log_reset(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    store_confirmed_checkpoint(&k, "5");
    kmock_produce(&k, "new", 10);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 30.0));
    assert_int_equal(k.stats.kafka_log_resets, 1);
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 10);
    expect_each_delivered_once(&k);
    kmock_free(&k);
}

/* A checkpoint the group never confirmed (every commit of the first run failed, or esmd
 * stopped before its first): the group has no offset, which is no news. The partition resumes
 * at the checkpoint: not at StartingPosition LATEST (records 5-9 would be skipped), not at
 * the log start (records 0-4 read twice). */
static void test_checkpoint_never_committed_resumes_there(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10, 'StartingPosition': 'LATEST'");
    store_checkpoint(&k, "5");
    kmock_produce(&k, "a", 10);
    kmock_start(&k);
    long long want = 10;
    assert_true(kmock_run_until(&k, group_committed_is, &want, 30.0));
    kmock_stop(&k);
    assert_int_equal(k.stats.kafka_log_resets, 0);
    for (long long o = 0; o < 10; o++)
        assert_int_equal(kmock_times_delivered(&k, o), o < 5 ? 0 : 1);
    assert_true(store_confirmed(&k)); /* the group's commit marked it */
    kmock_free(&k);
}

/* The group has no offset and the checkpoint is the log end (every commit failed, then the
 * session was lost): resumed there with nothing new to read, the group still gets the offset.
 * Left behind, it would show a lag that never shrinks, and a host without this store would
 * read the partition again. */
static void test_checkpoint_resumed_with_nothing_new_is_committed_to_the_group(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    store_checkpoint(&k, "10");
    kmock_produce(&k, "a", 10);
    kmock_start(&k);
    long long want = 10;
    assert_true(kmock_run_until(&k, group_committed_is, &want, 30.0));
    kmock_stop(&k);
    for (long long o = 0; o < 10; o++)
        assert_int_equal(kmock_times_delivered(&k, o), 0);
    kmock_free(&k);
}

static bool commit_failed_seen(kmock *k, void *arg)
{
    (void)arg;
    esm_buf b;
    esm_buf_init(&b);
    esm_source_status(&esm_kafka_source, k->src, &b);
    bool seen = strstr(esm_buf_cstr(&b), "offset commit failed") != NULL;
    esm_buf_free(&b);
    return seen;
}

/* Every commit of the run fails but the last, on stop: its confirmation arrives after the
 * partition is released, and the store must still mark the checkpoint as the group's. Left
 * unmarked, a group that later loses the offset (the topic re-created while esmd is down) is
 * taken for one that never had it, and the new log resumes at the old checkpoint. */
static void test_commit_confirmed_after_the_release_marks_the_checkpoint(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    for (int i = 0; i < 50; i++)
        rd_kafka_mock_push_request_errors(k.mc, KMOCK_API_OFFSET_COMMIT, 1,
                                          RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
    kmock_produce(&k, "a", 10);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, all_delivered_and_committed, NULL, 30.0));
    assert_true(kmock_run_until(&k, commit_failed_seen, NULL, 30.0));
    rd_kafka_mock_clear_request_errors(k.mc, KMOCK_API_OFFSET_COMMIT);
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 10);
    expect_store_checkpoint(&k, "10");
    assert_true(store_confirmed(&k));
    kmock_free(&k);
}

/* The store's checkpoint (200) is above the log end, but the group has an offset inside the
 * log (committed after the re-creation, e.g. an operator's kafka-consumer-groups
 * --reset-offsets): the group's offset wins, nothing below it is read. */
static void test_group_offset_inside_the_log_wins_over_an_old_checkpoint(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10");
    store_checkpoint(&k, "200");
    kmock_produce(&k, "new", 10);
    kmock_group_commit(&k, 5);
    kmock_start(&k);
    assert_true(kmock_run_until(&k, committed_5, NULL, 30.0));
    kmock_stop(&k);
    assert_int_equal(k.stats.kafka_log_resets, 1);
    assert_int_equal(kmock_group_committed(&k), 10);
    for (long long o = 0; o < 10; o++)
        assert_int_equal(kmock_times_delivered(&k, o), o < 5 ? 0 : 1);
    kmock_free(&k);
}

#define KMOCK_API_LIST_OFFSETS 2 /* Kafka protocol ApiKey */

/* Offsets [lo, produced) reached the function. */
static bool delivered_from(kmock *k, void *arg)
{
    for (long long o = *(long long *)arg; o < k->produced; o++)
        if (kmock_times_delivered(k, o) == 0) return false;
    return true;
}

/* Produces past what the mock keeps of a partition (5 MB: seven records of 900 kB trim the
 * oldest); returns the log start, above 0. */
static int64_t produce_past_retention(kmock *k)
{
    size_t big = 900 * 1000;
    char *v = malloc(big + 1);
    assert_non_null(v);
    memset(v, 'x', big);
    v[big] = '\0';
    for (int i = 0; i < 7; i++)
        kmock_produce_value(k, v);
    free(v);
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(k->prod, KMOCK_TOPIC, 0, &lo, &hi, 5000), 0);
    assert_true(lo >= 1);
    return lo;
}

/* Runs k with the partition's watermarks unreadable at assignment (two ListOffsets errors):
 * every record from the log start lo is delivered and committed. Frees k. */
static void expect_read_from_the_log_start_unseen(kmock *k, int64_t lo)
{
    rd_kafka_mock_push_request_errors(k->mc, KMOCK_API_LIST_OFFSETS, 2,
                                      RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
                                      RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR);
    kmock_start(k);
    long long from = lo;
    assert_true(kmock_run_until(k, delivered_from, &from, 30.0));
    kmock_stop(k);
    assert_int_equal(kmock_group_committed(k), k->produced);
    kmock_free(k);
}

/* A checkpoint the group never confirmed, below a log trimmed since, with the partition's
 * watermarks unreadable at assignment: assigned at the checkpoint, the fetch would be out of
 * range and auto.offset.reset (LATEST) would skip the whole log. Nothing of it is skipped. */
static void test_checkpoint_below_an_unknown_log_start_skips_nothing(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10, 'StartingPosition': 'LATEST'");
    int64_t lo = produce_past_retention(&k);
    char ckpt[24];
    snprintf(ckpt, sizeof ckpt, "%lld", (long long)(lo - 1));
    store_checkpoint(&k, ckpt);
    expect_read_from_the_log_start_unseen(&k, lo);
}

/* A LATEST mapping whose group offset retention passed: records produced past what the mock
 * keeps, the group at the offset below the log start, the store's confirmed checkpoint at
 * checkpoint (-1: the group's offset). Returns the log start. */
static int64_t group_below_the_log_start(kmock *k, long long checkpoint)
{
    kmock_init(k, "'BatchSize': 10, 'StartingPosition': 'LATEST'");
    int64_t lo = produce_past_retention(k);
    char ckpt[24];
    snprintf(ckpt, sizeof ckpt, "%lld", checkpoint >= 0 ? checkpoint : (long long)(lo - 1));
    store_confirmed_checkpoint(k, ckpt);
    kmock_group_commit(k, lo - 1);
    return lo;
}

/* The group's committed offset is below a log trimmed since (a mapping disabled for long, an
 * operator's move to an old offset): fetched there, auto.offset.reset (LATEST) would skip the
 * whole log. It resumes at the log start instead. */
static void test_group_offset_below_a_trimmed_log_start_skips_nothing(void **state)
{
    (void)state;
    kmock k;
    int64_t lo = group_below_the_log_start(&k, -1);
    kmock_start(&k);
    long long from = lo;
    assert_true(kmock_run_until(&k, delivered_from, &from, 30.0));
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), k.produced);
    assert_int_equal(k.stats.kafka_log_resets, 0);
    kmock_free(&k);
}

/* The group's offset is below a trimmed log start, and the store's checkpoint is in the log (the
 * group lagged behind the store): the partition goes on at the checkpoint, nothing below it is
 * read again, and the group catches up on assignment. */
static void test_group_offset_below_the_log_start_resumes_at_the_stored_checkpoint(void **state)
{
    (void)state;
    kmock k;
    /* the mock trims at seven records: the checkpoint at the log end */
    group_below_the_log_start(&k, 7);
    kmock_produce(&k, "new", 3);
    kmock_start(&k);
    long long want = k.produced;
    assert_true(kmock_run_until(&k, group_committed_is, &want, 30.0));
    kmock_stop(&k);
    for (long long o = 0; o < k.produced; o++)
        assert_int_equal(kmock_times_delivered(&k, o), o < k.produced - 3 ? 0 : 1);
    assert_int_equal(kmock_group_committed(&k), k.produced);
    kmock_free(&k);
}

/* As test_group_offset_below_a_trimmed_log_start_skips_nothing, with the partition's watermarks
 * unreadable at assignment: the fetch at the group's offset is out of range, and the reset
 * (auto.offset.reset, earliest whatever the StartingPosition) reads the log from its start. */
static void test_group_offset_below_an_unknown_log_start_skips_nothing(void **state)
{
    (void)state;
    kmock k;
    int64_t lo = group_below_the_log_start(&k, -1);
    expect_read_from_the_log_start_unseen(&k, lo);
}

/* LATEST: the end a partition was first assigned at is kept. esmd stopped before any record
 * arrived, and the records produced while it was down are read on the next start, not skipped
 * for a newer end. */
static void test_latest_start_is_kept_across_a_restart(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10, 'StartingPosition': 'LATEST'");
    kmock_produce(&k, "old", 5);
    kmock_start(&k);
    long long want = 5;
    assert_true(kmock_run_until(&k, group_committed_is, &want, 30.0));
    kmock_stop(&k);
    kmock_produce(&k, "while-down", 3);
    kmock_start(&k);
    want = 8;
    assert_true(kmock_run_until(&k, group_committed_is, &want, 30.0));
    kmock_stop(&k);
    for (long long o = 0; o < 8; o++)
        assert_int_equal(kmock_times_delivered(&k, o), o < 5 ? 0 : 1);
    kmock_free(&k);
}

#define KMOCK_API_OFFSET_FETCH 9 /* Kafka protocol ApiKey */

/* As test_checkpoint_never_committed_resumes_there, but the group's offsets cannot be read at
 * assignment: left to the group, which has none, LATEST would skip records 5-9. */
static void test_checkpoint_resumes_there_when_the_group_cannot_be_read(void **state)
{
    (void)state;
    kmock k;
    kmock_init(&k, "'BatchSize': 10, 'StartingPosition': 'LATEST'");
    store_checkpoint(&k, "5");
    kmock_produce(&k, "a", 10);
    rd_kafka_mock_push_request_errors(k.mc, KMOCK_API_OFFSET_FETCH, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_REQUEST);
    kmock_start(&k);
    long long from = 5;
    assert_true(kmock_run_until(&k, delivered_from, &from, 30.0));
    kmock_stop(&k);
    assert_int_equal(kmock_group_committed(&k), 10);
    for (long long o = 0; o < 10; o++)
        assert_int_equal(kmock_times_delivered(&k, o), o < 5 ? 0 : 1);
    kmock_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filtered_record_never_moves_the_stored_offset_back),
        cmocka_unit_test(test_broker_down_and_up_mid_batch_loses_nothing),
        cmocka_unit_test(test_connection_problem_ends_when_the_broker_is_back_on_an_idle_topic),
        cmocka_unit_test(test_commit_errors_are_retried_and_lose_nothing),
        cmocka_unit_test(test_stored_position_above_the_log_end_is_a_log_reset),
        cmocka_unit_test(test_checkpoint_the_group_lost_is_a_log_reset),
        cmocka_unit_test(test_checkpoint_never_committed_resumes_there),
        cmocka_unit_test(test_checkpoint_resumed_with_nothing_new_is_committed_to_the_group),
        cmocka_unit_test(test_group_offset_inside_the_log_wins_over_an_old_checkpoint),
        cmocka_unit_test(test_commit_confirmed_after_the_release_marks_the_checkpoint),
        cmocka_unit_test(test_checkpoint_below_an_unknown_log_start_skips_nothing),
        cmocka_unit_test(test_group_offset_below_a_trimmed_log_start_skips_nothing),
        cmocka_unit_test(test_group_offset_below_an_unknown_log_start_skips_nothing),
        cmocka_unit_test(test_group_offset_below_the_log_start_resumes_at_the_stored_checkpoint),
        cmocka_unit_test(test_latest_start_is_kept_across_a_restart),
        cmocka_unit_test(test_checkpoint_resumes_there_when_the_group_cannot_be_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
