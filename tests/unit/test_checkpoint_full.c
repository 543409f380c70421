/* A disk that fills up under the store (tests/unit/fail_vfs.h: writes and syncs answer
 * SQLITE_FULL while armed): a step that cannot be committed leaves the previous checkpoint,
 * batch state and outbox rows exactly as they were, is reported as a retriable I/O error, and the
 * same step commits once there is room again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "fail_vfs.h"
#include "test_checkpoint_util.h"

#define M "full-mapping"
#define SRC "arn:aws:kinesis:us-east-1:000000000000:stream/full"

typedef struct {
    char *dir;
    esm_store *s;
} fixture;

static int setup(void **state)
{
    assert_int_equal(fail_vfs_install(), SQLITE_OK);
    fail_vfs_arm(false);
    fixture *f = calloc(1, sizeof *f);
    f->dir = tc_mkdtemp();
    esm_err err;
    esm_err_clear(&err);
    f->s = esm_store_open(f->dir, &err);
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fail_vfs_arm(false);
    esm_store_close(f->s);
    tc_rmrf(f->dir);
    free(f);
    return 0;
}

static char *position_of(esm_store *s, const char *lane)
{
    esm_store_lane l;
    memset(&l, 0, sizeof l);
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, lane, &l, &err), 0);
    char *p = l.position ? strdup(l.position) : NULL;
    esm_store_lane_clear(&l);
    return p;
}

static int64_t depth(esm_store *s)
{
    esm_err err;
    esm_err_clear(&err);
    return esm_store_outbox_depth(s, M, &err);
}

static void assert_full_error(int rc, const esm_err *err)
{
    assert_int_equal(rc, -1);
    assert_int_equal(err->code, ESM_ERR_IO);
    assert_true(err->retriable); /* disk full is transient: the lane retries */
    assert_non_null(strstr(err->message, "full"));
}

static void test_full_commit_keeps_previous_state(void **state)
{
    fixture *f = *state;
    esm_outbox_item fr = {.destination = "arn:aws:sqs:us-east-1:000000000000:dlq",
                          .payload = "{\"n\":1}"};
    esm_store_batch batch = {.first_id = "11", .last_id = "19", .state = "s1"};
    esm_store_step first = {.position = "10", .batch = &batch, .items = &fr, .n_items = 1};
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(esm_store_advance(f->s, M, SRC, "shard-1/lane-0", &first, &err), 0);

    fail_vfs_arm(true);
    esm_outbox_item fr2 = {.destination = "arn:aws:sqs:us-east-1:000000000000:dlq",
                           .payload = "{\"n\":2}"};
    esm_store_step next = {.position = "20", .items = &fr2, .n_items = 1};
    unsigned before = fail_vfs_failed();
    assert_full_error(esm_store_advance(f->s, M, SRC, "shard-1/lane-0", &next, &err), &err);
    assert_true(fail_vfs_failed() > before); /* the disk, not something else, refused it */
    fail_vfs_arm(false);

    char *p = position_of(f->s, "shard-1/lane-0");
    assert_string_equal(p, "10");
    free(p);
    assert_int_equal(depth(f->s), 1);
    esm_store_batch_row row;
    memset(&row, 0, sizeof row);
    assert_int_equal(esm_store_batch_get(f->s, M, SRC, "shard-1/lane-0", &row, &err), 0);
    assert_string_equal(row.state, "s1");
    esm_store_batch_row_clear(&row);

    /* Room again: the same step commits. */
    assert_int_equal(esm_store_advance(f->s, M, SRC, "shard-1/lane-0", &next, &err), 0);
    p = position_of(f->s, "shard-1/lane-0");
    assert_string_equal(p, "20");
    free(p);
    assert_int_equal(depth(f->s), 2);
    assert_int_equal(esm_store_batch_get(f->s, M, SRC, "shard-1/lane-0", &row, &err), 1);
}

/* The writer thread's group commit: one full disk fails every step of the group, none half. */
static void test_full_group_commit_fails_every_step(void **state)
{
    fixture *f = *state;
    esm_err err;
    esm_err_clear(&err);
    esm_store_step a0 = {.position = "5"}, b0 = {.position = "6"};
    assert_int_equal(esm_store_advance(f->s, M, SRC, "shard-1/lane-0", &a0, &err), 0);
    assert_int_equal(esm_store_advance(f->s, M, SRC, "shard-1/lane-1", &b0, &err), 0);

    esm_outbox_item fr = {.destination = "arn:aws:sqs:us-east-1:000000000000:dlq",
                          .payload = "{\"lane\":0}"};
    esm_store_step a = {.position = "7", .items = &fr, .n_items = 1}, b = {.position = "8"};
    esm_store_advance_req reqs[2] = {
        {.mapping = M, .source = SRC, .lane = "shard-1/lane-0", .step = &a},
        {.mapping = M, .source = SRC, .lane = "shard-1/lane-1", .step = &b}};
    fail_vfs_arm(true);
    assert_int_equal(esm_store_advance_group(f->s, reqs, 2), -1);
    fail_vfs_arm(false);
    assert_full_error(reqs[0].rc, &reqs[0].err);
    assert_full_error(reqs[1].rc, &reqs[1].err);
    char *p0 = position_of(f->s, "shard-1/lane-0"), *p1 = position_of(f->s, "shard-1/lane-1");
    assert_string_equal(p0, "5");
    assert_string_equal(p1, "6");
    free(p0);
    free(p1);
    assert_int_equal(depth(f->s), 0);

    assert_int_equal(esm_store_advance_group(f->s, reqs, 2), 0);
    assert_int_equal(depth(f->s), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_commit_keeps_previous_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_group_commit_fails_every_step, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
