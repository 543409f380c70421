/* Reopen after an unclean stop: a child advances a lane as fast as it can and reports every
 * step that esm_store_advance confirmed; the parent kills it with SIGKILL at a different point
 * each round, reopens the same database and checks it holds exactly what was committed: every
 * confirmed step, at most the one step that committed before its confirmation was written, and
 * checkpoint, batch state, window state and outbox rows always from the same step. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "common/esm_time.h"
#include "test_checkpoint_util.h"

#define M "crash-mapping"
#define SRC "arn:aws:kinesis:us-east-1:000000000000:stream/crash"
#define LANE "shardId-000000000007"
#define ROUNDS 20

/* Kinesis-like 56-digit positions for step i. */
static void pos_of(long long i, char *out, size_t cap)
{
    snprintf(out, cap, "4959%052lld", i);
}

/* Step i appends i % 3 failure records (0, 1 or 2). */
static long long items_of(long long i)
{
    return i % 3;
}

static long long pos_value(const char *pos)
{
    return pos ? atoll(pos + 4) : 0;
}

/* The child: never returns. Exit codes: 2 open failed, 3 advance failed, 4 pipe failed. */
static void child_run(const char *dir, int wfd)
{
    esm_err err;
    esm_store *s = esm_store_open(dir, &err);
    if (!s) {
        fprintf(stderr, "child: open: %s\n", err.message);
        _exit(2);
    }
    esm_store_lane l;
    long long i = 0;
    if (esm_store_checkpoint_get(s, M, SRC, LANE, &l, &err) == 0) i = pos_value(l.position);
    esm_store_lane_clear(&l);
    for (;;) {
        i++;
        char pos[64], next[64], last[64], st_text[64], win[64], payload[2][64];
        pos_of(i, pos, sizeof pos);
        pos_of(i + 1, next, sizeof next);
        pos_of(i + 5, last, sizeof last);
        snprintf(st_text, sizeof st_text, "attempts after step %lld", i);
        snprintf(win, sizeof win, "{\"step\":%lld}", i);
        esm_outbox_item items[2];
        for (int k = 0; k < 2; k++) {
            snprintf(payload[k], sizeof payload[k], "{\"step\":%lld,\"k\":%d}", i, k);
            items[k] = (esm_outbox_item){.destination = "file:///dev/null",
                                         .payload = payload[k],
                                         .key = &i,
                                         .key_len = sizeof i};
        }
        esm_store_batch b = {next, last, st_text};
        esm_store_step st = {.position = pos,
                             .batch = &b,
                             .window_op = ESM_STORE_WINDOW_PUT,
                             .window_start_ms = i,
                             .window_state = win,
                             .items = items,
                             .n_items = (size_t)items_of(i)};
        if (esm_store_advance(s, M, SRC, LANE, &st, &err) != 0) {
            fprintf(stderr, "child: advance %lld: %s\n", i, err.message);
            _exit(3);
        }
        if (write(wfd, &i, sizeof i) != (ssize_t)sizeof i) _exit(4); /* confirmed */
    }
}

/* Reads one confirmation, waiting at most 20 s. Returns 1 read, 0 EOF/timeout. */
static int read_ack(int fd, long long *v, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return 0;
    return read(fd, v, sizeof *v) == (ssize_t)sizeof *v;
}

/* Everything in the store must come from one step: `p`. */
static void verify(esm_store *s, long long p)
{
    esm_err err;
    esm_store_batch_row br;
    int64_t ws;
    char *wj;
    esm_outbox_row *rows;
    size_t n;
    if (p == 0) {
        assert_int_equal(esm_store_batch_get(s, M, SRC, LANE, &br, &err), 1);
        assert_int_equal(esm_store_window_get(s, M, SRC, LANE, &ws, &wj, &err), 1);
        assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 0);
        return;
    }
    char want[64];
    assert_int_equal(esm_store_batch_get(s, M, SRC, LANE, &br, &err), 0);
    pos_of(p + 1, want, sizeof want);
    assert_string_equal(br.first_id, want);
    snprintf(want, sizeof want, "attempts after step %lld", p);
    assert_string_equal(br.state, want);
    esm_store_batch_row_clear(&br);
    assert_int_equal(esm_store_window_get(s, M, SRC, LANE, &ws, &wj, &err), 0);
    assert_int_equal(ws, p);
    snprintf(want, sizeof want, "{\"step\":%lld}", p);
    assert_string_equal(wj, want);
    free(wj);

    /* the outbox holds the records of steps 1..p, each exactly once, in step order */
    long long expected = 0;
    for (long long i = 1; i <= p; i++)
        expected += items_of(i);
    assert_int_equal(esm_store_outbox_depth(s, M, &err), expected);
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, (size_t)expected + 10, &rows, &n, &err), 0);
    assert_int_equal(n, (size_t)expected);
    size_t r = 0;
    for (long long i = 1; i <= p; i++) {
        for (int k = 0; k < items_of(i); k++, r++) {
            snprintf(want, sizeof want, "{\"step\":%lld,\"k\":%d}", i, k);
            assert_string_equal(rows[r].payload, want);
            assert_int_equal(rows[r].key_len, sizeof i);
            assert_memory_equal(rows[r].key, &i, sizeof i);
        }
    }
    esm_store_outbox_rows_free(rows, n);
}

static void test_kill9_loses_nothing_committed(void **state)
{
    const char *dir = *state;
    long long committed = 0; /* highest step known to be in the database */
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_run(dir, fds[1]);
        }
        close(fds[1]);
        /* Kill points: rounds 0-2 kill at once (the first round usually inside the first open
         * and its migration), later rounds after `round` confirmed steps, so the kill lands in
         * a later step each time, at an arbitrary point inside it. */
        long long ack = committed, v;
        if (round >= 3) {
            for (int k = 0; k < round; k++) {
                if (!read_ack(fds[0], &v, 20000)) {
                    int status;
                    kill(pid, SIGKILL);
                    waitpid(pid, &status, 0);
                    fail_msg("round %d: no confirmation from the child (status %d)", round, status);
                }
                ack = v;
            }
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) fail_msg("round %d: child exited with %d", round, status);
        while (read_ack(fds[0], &v, 0)) /* confirmations still in the pipe */
            ack = v;
        close(fds[0]);

        esm_err err;
        esm_store *s = esm_store_open(dir, &err);
        if (!s) fail_msg("round %d: reopen after kill -9: %s", round, err.message);
        esm_store_lane l = {0};
        long long p = 0;
        int rc = esm_store_checkpoint_get(s, M, SRC, LANE, &l, &err);
        assert_true(rc == 0 || rc == 1);
        if (rc == 0) p = pos_value(l.position);
        esm_store_lane_clear(&l);
        /* every confirmed step is there; at most one unconfirmed step committed */
        if (p < ack || p > ack + 1)
            fail_msg("round %d: checkpoint at step %lld, confirmed %lld", round, p, ack);
        assert_true(p >= committed);
        verify(s, p);
        esm_store_close(s);
        committed = p;
    }
    assert_true(committed >= ROUNDS - 3); /* the later rounds really advanced */
}

static int setup_dir(void **state)
{
    *state = tc_mkdtemp();
    return *state ? 0 : -1;
}

static int teardown_dir(void **state)
{
    tc_rmrf(*state);
    return 0;
}

int main(void)
{
    esm_log_set_level(ESM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_loses_nothing_committed, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
