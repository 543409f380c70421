/* Kinesis shard lineage (split / merge: parents before children), starting positions per
 * shard, and the checks that refuse a checkpoint that does not belong to the shard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pollers/esm_kinesis_shards.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_parents_first),
        cmocka_unit_test(test_order_parents_before_children),
        cmocka_unit_test(test_order_cycle_refused),
        cmocka_unit_test(test_parents_string),
        cmocka_unit_test(test_start_positions),
        cmocka_unit_test(test_checkpoint_misfit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
