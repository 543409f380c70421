/* Kinesis shard lineage (split / merge: parents before children), starting positions per
 * shard, and the checks that refuse a checkpoint that does not belong to the shard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pollers/kinesis/esm_kinesis_int.h"

/* 0 split into 1 and 2; 1 and 2 merged into 3; 4 is unrelated; 5's parent has expired. */
static esm_kinesis_lineage_node nodes[] = {
    {.id = "s3", .parent = "s1", .adjacent_parent = "s2"},
    {.id = "s1", .parent = "s0"},
    {.id = "s2", .parent = "s0"},
    {.id = "s0"},
    {.id = "s4"},
    {.id = "s5", .parent = "gone"},
};
#define N (sizeof nodes / sizeof nodes[0])

static void reset(void)
{
    for (size_t i = 0; i < N; i++)
        nodes[i].finished = false;
}

static size_t idx(const char *id)
{
    for (size_t i = 0; i < N; i++)
        if (strcmp(nodes[i].id, id) == 0) return i;
    fail();
    return 0;
}

static esm_kinesis_shard_gate gate(const char *id)
{
    return esm_kinesis_lineage_gate(nodes, N, idx(id));
}

static void test_gate_parents_first(void **state)
{
    (void)state;
    reset();
    assert_int_equal(gate("s0"), ESM_KINESIS_SHARD_READY);
    assert_int_equal(gate("s4"), ESM_KINESIS_SHARD_READY);
    assert_int_equal(gate("s5"), ESM_KINESIS_SHARD_READY); /* parent expired: counts as drained */
    assert_int_equal(gate("s1"), ESM_KINESIS_SHARD_WAITING);
    assert_int_equal(gate("s2"), ESM_KINESIS_SHARD_WAITING);
    assert_int_equal(gate("s3"), ESM_KINESIS_SHARD_WAITING);
    nodes[idx("s0")].finished = true; /* split parent drained: both children may start */
    assert_int_equal(gate("s0"), ESM_KINESIS_SHARD_FINISHED);
    assert_int_equal(gate("s1"), ESM_KINESIS_SHARD_READY);
    assert_int_equal(gate("s2"), ESM_KINESIS_SHARD_READY);
    assert_int_equal(gate("s3"), ESM_KINESIS_SHARD_WAITING);
    nodes[idx("s1")].finished = true; /* merge: one parent is not enough */
    assert_int_equal(gate("s3"), ESM_KINESIS_SHARD_WAITING);
    nodes[idx("s2")].finished = true;
    assert_int_equal(gate("s3"), ESM_KINESIS_SHARD_READY);
}

static void test_order_parents_before_children(void **state)
{
    (void)state;
    reset();
    size_t order[N];
    assert_int_equal(esm_kinesis_lineage_order(nodes, N, order), 0);
    size_t pos[N];
    for (size_t k = 0; k < N; k++)
        pos[order[k]] = k;
    assert_true(pos[idx("s0")] < pos[idx("s1")]);
    assert_true(pos[idx("s0")] < pos[idx("s2")]);
    assert_true(pos[idx("s1")] < pos[idx("s3")]);
    assert_true(pos[idx("s2")] < pos[idx("s3")]);
    /* unrelated shards keep their input order */
    assert_true(pos[idx("s4")] < pos[idx("s5")]);
    /* every index exactly once */
    bool seen[N] = {false};
    for (size_t k = 0; k < N; k++) {
        assert_false(seen[order[k]]);
        seen[order[k]] = true;
    }
}

static void test_order_cycle_refused(void **state)
{
    (void)state;
    esm_kinesis_lineage_node cyc[] = {{.id = "a", .parent = "b"}, {.id = "b", .parent = "a"}};
    size_t order[2];
    assert_int_equal(esm_kinesis_lineage_order(cyc, 2, order), -1);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
}

static void test_parents_string(void **state)
{
    (void)state;
    char out[64];
    esm_kinesis_lineage_parents("a", "b", out, sizeof out);
    assert_string_equal(out, "a,b");
    esm_kinesis_lineage_parents("a", NULL, out, sizeof out);
    assert_string_equal(out, "a");
    esm_kinesis_lineage_parents(NULL, "b", out, sizeof out);
    assert_string_equal(out, "b");
    esm_kinesis_lineage_parents(NULL, "", out, sizeof out);
    assert_string_equal(out, "");
}

static void test_start_positions(void **state)
{
    (void)state;
    esm_kinesis_start s = esm_kinesis_start_for("42", ESM_START_LATEST, 0, true, true, 5);
    assert_int_equal(s.type, ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER);
    assert_string_equal(s.seq, "42");
    s = esm_kinesis_start_for(NULL, ESM_START_TRIM_HORIZON, 0, true, true, 5);
    assert_int_equal(s.type, ESM_KINESIS_IT_TRIM_HORIZON);
    s = esm_kinesis_start_for(NULL, ESM_START_AT_TIMESTAMP, 1234, false, true, 5);
    assert_int_equal(s.type, ESM_KINESIS_IT_AT_TIMESTAMP);
    assert_int_equal(s.timestamp_ms, 1234);
    /* LATEST: an open shard of the first discovery reads at LATEST ... */
    s = esm_kinesis_start_for(NULL, ESM_START_LATEST, 0, true, true, 5000);
    assert_int_equal(s.type, ESM_KINESIS_IT_LATEST);
    /* ... a child found later, a closed shard, or a restart before any checkpoint reads from
     * the moment the mapping first started, so nothing that arrived since is skipped. */
    s = esm_kinesis_start_for(NULL, ESM_START_LATEST, 0, false, true, 5000);
    assert_int_equal(s.type, ESM_KINESIS_IT_AT_TIMESTAMP);
    assert_int_equal(s.timestamp_ms, 5000);
    s = esm_kinesis_start_for(NULL, ESM_START_LATEST, 0, true, false, 5000);
    assert_int_equal(s.type, ESM_KINESIS_IT_AT_TIMESTAMP);
}

static void test_checkpoint_misfit(void **state)
{
    (void)state;
    esm_kinesis_shard_info open = {.id = "s", .starting_seq = "49680505788282176856679113630106"};
    esm_kinesis_shard_info closed = {.id = "s", .starting_seq = "100", .ending_seq = "200"};
    esm_kinesis_shard_info unknown = {.id = "s"};
    assert_null(esm_kinesis_checkpoint_misfit("49680505788282176856679113630107", &open));
    assert_null(esm_kinesis_checkpoint_misfit("49680505788282176856679113630106", &open));
    /* from an earlier incarnation of the stream */
    const char *why = esm_kinesis_checkpoint_misfit("49680505787568553010326133689579", &open);
    assert_non_null(why);
    assert_non_null(strstr(why, "re-created"));
    assert_null(esm_kinesis_checkpoint_misfit("200", &closed));
    assert_non_null(esm_kinesis_checkpoint_misfit("201", &closed));
    assert_non_null(esm_kinesis_checkpoint_misfit("99", &closed));
    assert_non_null(esm_kinesis_checkpoint_misfit("abc", &unknown));
    assert_null(esm_kinesis_checkpoint_misfit("1", &unknown));
}

static void test_stored_shard_family(void **state)
{
    (void)state;
    esm_store_lane rows[] = {
        {.lane = "shardId-1", .position = "100", .updated_at_ms = 5000},
        {.lane = "shardId-1/lane-0", .position = "250", .updated_at_ms = 6000},
        {.lane = "shardId-1/lane-1", .position = "90", .updated_at_ms = 5500},
        {.lane = "shardId-10", .position = "999", .updated_at_ms = 7000}, /* another shard */
        {.lane = "shardId-2", .finished = true, .position = "7", .updated_at_ms = 4000},
        {.lane = "shardId-3", .updated_at_ms = 100}, /* registered, never read */
        {.lane = "@latest-since", .position = "123", .finished = true, .updated_at_ms = 1},
    };
    size_t n = sizeof rows / sizeof rows[0];
    esm_kinesis_stored st;
    /* the highest position over the shard's own row and its lane rows */
    esm_kinesis_stored_shard(rows, n, "shardId-1", 0, &st);
    assert_string_equal(st.checkpoint, "250");
    assert_false(st.finished);
    assert_false(st.stale);
    assert_int_equal(st.stored_at_ms, 6000);
    esm_kinesis_stored_shard(rows, n, "shardId-2", 0, &st);
    assert_string_equal(st.checkpoint, "7");
    assert_true(st.finished);
    esm_kinesis_stored_shard(rows, n, "shardId-3", 0, &st);
    assert_string_equal(st.checkpoint, "");
    assert_false(st.finished);
    esm_kinesis_stored_shard(rows, n, "shardId-4", 0, &st);
    assert_string_equal(st.checkpoint, "");
    /* a stream created after a row was written: that row is of an earlier stream */
    esm_kinesis_stored_shard(rows, n, "shardId-1", 5800, &st);
    assert_true(st.stale);
    esm_kinesis_stored_shard(rows, n, "shardId-1", 5000, &st);
    assert_false(st.stale);
    esm_kinesis_stored_shard(rows, n, "shardId-2", 4001, &st);
    assert_true(st.stale);
    /* a row with no position and not finished carries nothing to misuse */
    esm_kinesis_stored_shard(rows, n, "shardId-3", 9999, &st);
    assert_false(st.stale);
    assert_true(esm_kinesis_row_of_shard("shardId-1/lane-3", "shardId-1"));
    assert_false(esm_kinesis_row_of_shard("shardId-10", "shardId-1"));
    assert_false(esm_kinesis_row_of_shard("shardId-1/x", "shardId-1"));
}

/* Where an operator moved a shard: read back from the store's start_at, and only its own row's. */
static void test_operator_start(void **state)
{
    (void)state;
    esm_kinesis_start st;
    assert_true(esm_kinesis_start_at("TRIM_HORIZON", &st));
    assert_int_equal(st.type, ESM_KINESIS_IT_TRIM_HORIZON);
    assert_true(esm_kinesis_start_at("AT_TIMESTAMP:1700000000123", &st));
    assert_int_equal(st.type, ESM_KINESIS_IT_AT_TIMESTAMP);
    assert_int_equal(st.timestamp_ms, 1700000000123LL);
    assert_true(esm_kinesis_start_at("AT_SEQUENCE_NUMBER:4963", &st));
    assert_int_equal(st.type, ESM_KINESIS_IT_AT_SEQUENCE_NUMBER);
    assert_string_equal(st.seq, "4963");
    const char *bad[] = {NULL,
                         "",
                         "LATEST",
                         "AT_TIMESTAMP:",
                         "AT_TIMESTAMP:-5",
                         "AT_TIMESTAMP:12x",
                         "AT_SEQUENCE_NUMBER:",
                         "AT_SEQUENCE_NUMBER:12a",
                         "trim_horizon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(esm_kinesis_start_at(bad[i], &st));

    esm_store_lane rows[] = {
        {.lane = "shardId-1", .start_at = "TRIM_HORIZON", .updated_at_ms = 5000},
        {.lane = "shardId-2", .position = "7", .updated_at_ms = 4000},
        {.lane = "shardId-2/lane-1", .start_at = "TRIM_HORIZON", .updated_at_ms = 4000},
    };
    esm_kinesis_stored stored;
    esm_kinesis_stored_shard(rows, 3, "shardId-1", 0, &stored);
    assert_string_equal(stored.start_at, "TRIM_HORIZON");
    assert_string_equal(stored.checkpoint, "");
    esm_kinesis_stored_shard(rows, 3, "shardId-2", 0, &stored);
    assert_string_equal(stored.start_at, "");

    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_body_shard_iterator(&b, "s", "shardId-1", ESM_KINESIS_IT_AT_SEQUENCE_NUMBER, "4963",
                                    0);
    assert_string_equal(esm_buf_cstr(&b), "{\"StreamName\":\"s\",\"ShardId\":\"shardId-1\","
                                          "\"ShardIteratorType\":\"AT_SEQUENCE_NUMBER\","
                                          "\"StartingSequenceNumber\":\"4963\"}");
    esm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_parents_first),
        cmocka_unit_test(test_order_parents_before_children),
        cmocka_unit_test(test_order_cycle_refused),
        cmocka_unit_test(test_parents_string),
        cmocka_unit_test(test_start_positions),
        cmocka_unit_test(test_checkpoint_misfit),
        cmocka_unit_test(test_stored_shard_family),
        cmocka_unit_test(test_operator_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
