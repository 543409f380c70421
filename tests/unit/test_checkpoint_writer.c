/* The store writer: group commit on a thread, results back on the loop thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ev.h>
#include <pthread.h>

#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_int.h" /* the store's mutex and connection */
#include "checkpoint/esm_store_writer.h"
#include "test_checkpoint_util.h"

#define M "0f5e6c1a-8a4b-4c33-9d1e-7b2f3a4c5d6e"
#define SRC "orders-host:9092/orders"

typedef struct {
    char *dir;
    struct ev_loop *loop;
    esm_store *store;
    esm_store_writer *w;
} fixture;

typedef struct {
    int calls, rc;
    esm_err err;
    pthread_t thread;
} result;

static void on_done(int rc, const esm_err *err, void *arg)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    r->err = *err;
    r->thread = pthread_self();
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tc_mkdtemp();
    f->loop = ev_loop_new(EVFLAG_AUTO);
    esm_err err;
    f->store = esm_store_open(f->dir, &err);
    f->w = f->store ? esm_store_writer_create(f->store, f->loop, &err) : NULL;
    *state = f;
    return f->w ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esm_store_writer_destroy(f->w);
    esm_store_close(f->store);
    ev_loop_destroy(f->loop);
    tc_rmrf(f->dir);
    free(f);
    return 0;
}

static void expect_pos(esm_store *s, const char *lane, const char *pos)
{
    esm_err err;
    esm_store_lane l;
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, lane, &l, &err), 0);
    assert_non_null(l.position);
    assert_string_equal(l.position, pos);
    esm_store_lane_clear(&l);
}

static void test_results_arrive_on_the_loop_thread(void **state)
{
    fixture *f = *state;
    esm_err err;
    esm_store_step back = {.position = "5"};
    assert_int_equal(esm_store_advance(f->store, M, SRC, "2", &back, &err), 0);

    char payload[] = "{\"k\":1}";
    esm_outbox_item it = {
        .destination = "file:///tmp/x", .payload = payload, .key = "k1", .key_len = 2};
    esm_store_batch b = {.first_id = "10", .last_id = "19", .state = "s"};
    esm_store_step s0 = {.position = "7", .items = &it, .n_items = 1};
    esm_store_step s1 = {.position = "8", .batch = &b};
    esm_store_step s2 = {.position = "3"}; /* behind "5": refused, alone */
    result r[3] = {{0}};
    char lane0[] = "0";
    assert_non_null(esm_store_writer_advance(f->w, M, SRC, lane0, &s0, on_done, &r[0]));
    /* The writer copied everything: the caller's buffers may change at once. */
    lane0[0] = 'X';
    payload[2] = 'X';
    assert_non_null(esm_store_writer_advance(f->w, M, SRC, "1", &s1, on_done, &r[1]));
    assert_non_null(esm_store_writer_advance(f->w, M, SRC, "2", &s2, on_done, &r[2]));
    /* A pending write keeps the loop alive: ev_run returns once every result arrived. */
    ev_run(f->loop, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_true(pthread_equal(r[i].thread, pthread_self()));
    }
    assert_int_equal(r[0].rc, 0);
    assert_int_equal(r[1].rc, 0);
    assert_int_equal(r[2].rc, -1);
    assert_non_null(strstr(r[2].err.message, "move back"));
    expect_pos(f->store, "0", "7");
    expect_pos(f->store, "1", "8");
    expect_pos(f->store, "2", "5");
    esm_store_batch_row row;
    assert_int_equal(esm_store_batch_get(f->store, M, SRC, "1", &row, &err), 0);
    assert_string_equal(row.last_id, "19");
    esm_store_batch_row_clear(&row);
    esm_outbox_row *rows;
    size_t n;
    assert_int_equal(esm_store_outbox_due(f->store, INT64_MAX, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].payload, "{\"k\":1}");
    assert_int_equal(rows[0].key_len, 2);
    assert_memory_equal(rows[0].key, "k1", 2);
    esm_store_outbox_rows_free(rows, n);
}

static void test_steps_queued_during_a_commit_share_the_next_one(void **state)
{
    fixture *f = *state;
    enum { N = 20 };
    result r[N] = {{0}};
    esm_store_step steps[N];
    char lanes[N][8];
    /* Holding the store's mutex stands for a slow fsync: everything queued meanwhile must go
     * into one transaction, not N. */
    pthread_mutex_lock(&f->store->mu);
    for (int i = 0; i < N; i++) {
        snprintf(lanes[i], sizeof lanes[i], "%d", i);
        steps[i] = (esm_store_step){.position = "42"};
        assert_non_null(
            esm_store_writer_advance(f->w, M, SRC, lanes[i], &steps[i], on_done, &r[i]));
    }
    pthread_mutex_unlock(&f->store->mu);
    ev_run(f->loop, 0);
    unsigned long long commits, nsteps;
    esm_store_writer_counts(f->w, &commits, &nsteps);
    assert_int_equal(nsteps, N);
    assert_in_range(commits, 1, 2); /* the first step may have been taken before the rest */
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].rc, 0);
        expect_pos(f->store, lanes[i], "42");
    }
}

static void test_forget_waits_for_the_write_and_skips_the_callback(void **state)
{
    fixture *f = *state;
    result r = {0};
    esm_store_step st = {.position = "99"};
    esm_store_write *j = esm_store_writer_advance(f->w, M, SRC, "0", &st, on_done, &r);
    assert_non_null(j);
    esm_err err;
    assert_int_equal(esm_store_write_forget(f->w, j, &err), 0);
    expect_pos(f->store, "0", "99"); /* durable when forget returns */
    ev_run(f->loop, 0);
    assert_int_equal(r.calls, 0);
}

static void test_a_failed_transaction_fails_every_step(void **state)
{
    fixture *f = *state;
    assert_int_equal(sqlite3_exec(f->store->db, "PRAGMA query_only = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    result r[2] = {{0}};
    esm_store_step st = {.position = "1"};
    pthread_mutex_lock(&f->store->mu); /* both in one group */
    assert_non_null(esm_store_writer_advance(f->w, M, SRC, "0", &st, on_done, &r[0]));
    assert_non_null(esm_store_writer_advance(f->w, M, SRC, "1", &st, on_done, &r[1]));
    pthread_mutex_unlock(&f->store->mu);
    ev_run(f->loop, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].rc, -1);
        assert_non_null(strstr(r[i].err.message, "readonly"));
    }
}

static void test_destroy_finishes_queued_writes(void **state)
{
    fixture *f = *state;
    result r = {0};
    esm_store_step st = {.position = "77"};
    assert_non_null(esm_store_writer_advance(f->w, M, SRC, "0", &st, on_done, &r));
    esm_store_writer_destroy(f->w);
    f->w = NULL;
    assert_int_equal(r.calls, 0);
    expect_pos(f->store, "0", "77");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results_arrive_on_the_loop_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_steps_queued_during_a_commit_share_the_next_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_forget_waits_for_the_write_and_skips_the_callback,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_transaction_fails_every_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_destroy_finishes_queued_writes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
