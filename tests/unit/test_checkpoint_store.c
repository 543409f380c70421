/* The state store: schema, migrations, refusals, lanes, batch/window state, advance, outbox. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_int.h"
#include "checkpoint/esm_store_sql.h" /* test_write_failure_is_reported */
#include "common/esm_time.h"
#include "test_checkpoint_util.h"

#define M "0f5e6c1a-8a4b-4c33-9d1e-7b2f3a4c5d6e"
#define SRC "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
#define SH0 "shardId-000000000000"
#define SH1 "shardId-000000000001"
/* 56-digit Kinesis sequence numbers */
#define SEQ_A "49590338271490256608559692538361571095921575989136588898"
#define SEQ_B "49590338271490256608559692540925702759324208523137515618"

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

static esm_store *open_ok(const char *dir)
{
    esm_err err;
    esm_store *s = esm_store_open(dir, &err);
    if (!s) fail_msg("open %s: %s", dir, err.message);
    return s;
}

static void expect_pos(esm_store *s, const char *lane, const char *pos, bool finished)
{
    esm_err err;
    esm_store_lane l;
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, lane, &l, &err), 0);
    if (pos)
        assert_string_equal(l.position, pos);
    else
        assert_null(l.position);
    assert_int_equal(l.finished, finished);
    esm_store_lane_clear(&l);
}

/* ---- schema, migrations, refusals ---- */

static void test_open_creates_dir_and_schema(void **state)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/nested/state", (char *)*state);
    esm_store *s = open_ok(dir);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(esm_store_schema_version(s), ESM_STORE_SCHEMA_VERSION);
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    assert_string_equal(esm_store_path(s), path);
    esm_store_close(s);

    assert_int_equal(tc_sql_int(dir, "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                                     "name IN ('lane_checkpoint','lane_batch','lane_window',"
                                     "'outbox','esmd_schema','esmd_meta')"),
                     6);
    assert_int_equal(tc_sql_int(dir, "PRAGMA application_id"), 0x65736d64);
    /* WAL is persistent: the file header says so */
    assert_int_equal(tc_sql_int(dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

static void test_reopen_is_idempotent_and_keeps_state(void **state)
{
    const char *dir = *state;
    esm_err err;
    esm_store *s = open_ok(dir);
    esm_store_step st = {.position = SEQ_A};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);
    esm_store_close(s);
    for (int i = 0; i < 3; i++) {
        s = open_ok(dir);
        assert_int_equal(esm_store_schema_version(s), ESM_STORE_SCHEMA_VERSION);
        expect_pos(s, SH0, SEQ_A, false);
        esm_store_close(s);
    }
    /* one row per migration, however often it was opened */
    assert_int_equal(tc_sql_int(dir, "SELECT count(*) FROM esmd_schema"), ESM_STORE_SCHEMA_VERSION);
    assert_int_equal(tc_sql_int(dir, "SELECT max(version) FROM esmd_schema"),
                     ESM_STORE_SCHEMA_VERSION);
}

static void test_newer_schema_is_refused(void **state)
{
    const char *dir = *state;
    esm_store_close(open_ok(dir));
    assert_int_equal(tc_sql(dir, "INSERT INTO esmd_schema VALUES (99, 'from the future', 0)"),
                     SQLITE_OK);
    esm_err err;
    assert_null(esm_store_open(dir, &err));
    assert_non_null(strstr(err.message, "schema version 99"));
    assert_non_null(strstr(err.message, "newer than this esmd supports"));
    assert_non_null(strstr(err.message, "esmd.db"));
    /* refused means untouched */
    assert_int_equal(tc_sql_int(dir, "SELECT max(version) FROM esmd_schema"), 99);
}

static void write_file(const char *path, const void *data, size_t len, off_t off)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
    close(fd);
}

static void test_garbage_file_is_refused(void **state)
{
    const char *dir = *state;
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 131 + 7);
    write_file(path, junk, sizeof junk, 0);
    esm_err err;
    assert_null(esm_store_open(dir, &err));
    assert_non_null(strstr(err.message, "corrupt or not an esmd database"));
    assert_non_null(strstr(err.message, "file is not a database"));
    assert_non_null(strstr(err.message, path));
    /* the file was not touched */
    char back[8192];
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
    close(fd);
    assert_memory_equal(back, junk, sizeof junk);
}

static void test_corrupt_page_is_refused(void **state)
{
    const char *dir = *state;
    esm_err err;
    esm_store *s = open_ok(dir);
    char lane[32], pos[32];
    for (int i = 0; i < 300; i++) {
        snprintf(lane, sizeof lane, "shardId-%012d", i);
        snprintf(pos, sizeof pos, "%d", i);
        esm_store_step st = {.position = pos};
        assert_int_equal(esm_store_advance(s, M, SRC, lane, &st, &err), 0);
    }
    esm_store_close(s); /* checkpoints the WAL into the main file */
    long long pages = tc_sql_int(dir, "PRAGMA page_count");
    long long psize = tc_sql_int(dir, "PRAGMA page_size");
    assert_true(pages > 3);
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    char *junk = malloc((size_t)psize);
    memset(junk, 0xA5, (size_t)psize);
    for (long long p = 1; p < pages; p++) /* every page but the header page */
        write_file(path, junk, (size_t)psize, (off_t)(p * psize));
    free(junk);
    assert_null(esm_store_open(dir, &err));
    assert_non_null(strstr(err.message, "corrupt or not an esmd database"));
}

static void test_foreign_sqlite_file_is_refused(void **state)
{
    const char *dir = *state;
    assert_int_equal(tc_sql(dir, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)"),
                     SQLITE_OK);
    esm_err err;
    assert_null(esm_store_open(dir, &err));
    assert_non_null(strstr(err.message, "not an esmd database"));
    assert_int_equal(tc_sql_int(dir, "SELECT count(*) FROM sqlite_master WHERE name='outbox'"), 0);
}

static void test_second_open_is_refused(void **state)
{
    const char *dir = *state;
    esm_store *s = open_ok(dir);
    esm_err err;
    assert_null(esm_store_open(dir, &err));
    assert_non_null(strstr(err.message, "in use by another esmd"));
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(err.message, pid));
    esm_store_close(s);
    esm_store_close(open_ok(dir)); /* the lock is gone with the store */
}

static void test_state_dir_that_is_a_file_is_refused(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/file", (char *)*state);
    write_file(path, "x", 1, 0);
    esm_err err;
    assert_null(esm_store_open(path, &err));
    assert_non_null(strstr(err.message, path));
}

/* ---- lanes ---- */

static void test_lanes_register_list_set_delete(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    const char *kafka = "127.0.0.1:9092/orders";
    assert_int_equal(esm_store_lane_register(s, M, SRC, SH1, "shardId-000000000000", &err), 0);
    assert_int_equal(esm_store_lane_register(s, M, SRC, SH0, NULL, &err), 0);
    assert_int_equal(esm_store_lane_register(s, M, kafka, "10", NULL, &err), 0);
    assert_int_equal(esm_store_lane_register(s, M, kafka, "2", NULL, &err), 0);
    assert_int_equal(esm_store_lane_register(s, "other-mapping", kafka, "2", NULL, &err), 0);

    esm_store_lane l;
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH1, &l, &err), 0);
    assert_null(l.position); /* registered, no checkpoint yet */
    assert_string_equal(l.parents, "shardId-000000000000");
    assert_string_equal(l.source, SRC);
    assert_string_equal(l.lane, SH1);
    assert_true(l.updated_at_ms > 0);
    esm_store_lane_clear(&l);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, "shardId-nope", &l, &err), 1);
    /* same lane key under another source is another lane (B3: never key by lane alone) */
    assert_int_equal(esm_store_checkpoint_get(s, M, "arn:other", SH0, &l, &err), 1);

    /* re-registering keeps the position and fills parents only when missing */
    esm_store_step st = {.position = "41"};
    assert_int_equal(esm_store_advance(s, M, kafka, "2", &st, &err), 0);
    assert_int_equal(esm_store_lane_register(s, M, kafka, "2", "p", &err), 0);
    assert_int_equal(esm_store_lane_register(s, M, SRC, SH1, "other", &err), 0);
    assert_int_equal(esm_store_checkpoint_get(s, M, kafka, "2", &l, &err), 0);
    assert_string_equal(l.position, "41");
    assert_string_equal(l.parents, "p");
    esm_store_lane_clear(&l);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH1, &l, &err), 0);
    assert_string_equal(l.parents, "shardId-000000000000");
    esm_store_lane_clear(&l);

    esm_store_lane *v;
    size_t n;
    assert_int_equal(esm_store_checkpoint_list(s, M, kafka, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].lane, "2"); /* partitions in numeric order */
    assert_string_equal(v[1].lane, "10");
    esm_store_lanes_free(v, n);
    assert_int_equal(esm_store_checkpoint_list(s, M, NULL, &v, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(v[0].source, kafka);
    assert_string_equal(v[2].source, SRC);
    assert_string_equal(v[2].lane, SH0);
    esm_store_lanes_free(v, n);
    assert_int_equal(esm_store_checkpoint_list(s, "nobody", NULL, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(v);

    /* operator seek: moves back, reopens, clears batch and window state */
    esm_store_batch b = {"40", "45", "p1 n=6"};
    esm_store_step fin = {.position = "50", .finished = true, .batch = &b};
    assert_int_equal(esm_store_advance(s, M, kafka, "2", &fin, &err), 0);
    assert_int_equal(esm_store_window_put(s, M, kafka, "2", 1000, "{}", &err), 0);
    assert_int_equal(esm_store_checkpoint_set(s, M, kafka, "2", "7", NULL, &err), 0);
    assert_int_equal(esm_store_checkpoint_get(s, M, kafka, "2", &l, &err), 0);
    assert_string_equal(l.position, "7");
    assert_false(l.finished);
    esm_store_lane_clear(&l);
    esm_store_batch_row br;
    assert_int_equal(esm_store_batch_get(s, M, kafka, "2", &br, &err), 1);
    int64_t ws;
    char *wj;
    assert_int_equal(esm_store_window_get(s, M, kafka, "2", &ws, &wj, &err), 1);

    assert_int_equal(esm_store_lane_delete(s, M, kafka, "2", &err), 0);
    assert_int_equal(esm_store_checkpoint_get(s, M, kafka, "2", &l, &err), 1);
    assert_int_equal(esm_store_checkpoint_get(s, "other-mapping", kafka, "2", &l, &err), 0);
    esm_store_lane_clear(&l);

    /* empty keys are refused, not stored */
    assert_int_equal(esm_store_lane_register(s, M, "", "1", NULL, &err), -1);
    assert_int_equal(err.code, ESM_ERR_INVALID);
    esm_store_close(s);
}

static void test_mapping_delete_keeps_outbox(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    esm_outbox_item it = {.destination = "file:///tmp/f.jsonl", .payload = "{\"a\":1}"};
    esm_store_batch b = {"1", "2", "x"};
    esm_store_step st = {.position = "3", .batch = &b, .items = &it, .n_items = 1};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);
    assert_int_equal(esm_store_window_put(s, M, SRC, SH0, 5, "{\"n\":1}", &err), 0);
    assert_int_equal(esm_store_advance(s, "keep", SRC, SH0, &st, &err), 0);
    assert_int_equal(esm_store_mapping_delete(s, M, &err), 0);
    esm_store_lane l;
    esm_store_batch_row br;
    int64_t ws;
    char *wj;
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH0, &l, &err), 1);
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 1);
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &ws, &wj, &err), 1);
    assert_int_equal(esm_store_checkpoint_get(s, "keep", SRC, SH0, &l, &err), 0);
    esm_store_lane_clear(&l);
    assert_int_equal(esm_store_outbox_depth(s, M, &err), 1); /* never lost */
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 2);
    esm_store_close(s);
}

/* ---- batch and window state ---- */

static void test_batch_and_window_state(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    esm_store_batch_row br;
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 1);
    esm_store_batch b = {SEQ_A, SEQ_B, "p1 n=10 lo=3 a=1 i=2 b=0 e=10,5"};
    assert_int_equal(esm_store_batch_put(s, M, SRC, SH0, &b, &err), 0);
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 0);
    assert_string_equal(br.first_id, SEQ_A);
    assert_string_equal(br.last_id, SEQ_B);
    assert_string_equal(br.state, b.state);
    assert_true(br.updated_at_ms > 0);
    esm_store_batch_row_clear(&br);
    esm_store_batch b2 = {SEQ_A, SEQ_B, "p1 n=10 lo=5 a=2 i=3 b=0 e=10"};
    assert_int_equal(esm_store_batch_put(s, M, SRC, SH0, &b2, &err), 0);
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 0);
    assert_string_equal(br.state, b2.state);
    esm_store_batch_row_clear(&br);
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH1, &br, &err), 1); /* per lane */
    assert_int_equal(esm_store_batch_clear(s, M, SRC, SH0, &err), 0);
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 1);
    esm_store_batch bad = {SEQ_A, NULL, "x"};
    assert_int_equal(esm_store_batch_put(s, M, SRC, SH0, &bad, &err), -1);
    assert_int_equal(err.code, ESM_ERR_INVALID);

    int64_t start = 0;
    char *json = NULL;
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &start, &json, &err), 1);
    assert_int_equal(esm_store_window_put(s, M, SRC, SH0, 1700000000000, "{\"sum\":3}", &err), 0);
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &start, &json, &err), 0);
    assert_int_equal(start, 1700000000000);
    assert_string_equal(json, "{\"sum\":3}");
    free(json);
    assert_int_equal(esm_store_window_put(s, M, SRC, SH0, 1, "{not json", &err), -1);
    assert_int_equal(err.code, ESM_ERR_INVALID);
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &start, &json, &err), 0);
    assert_string_equal(json, "{\"sum\":3}");
    free(json);
    assert_int_equal(esm_store_window_clear(s, M, SRC, SH0, &err), 0);
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &start, &json, &err), 1);
    esm_store_close(s);
}

/* ---- advance ---- */

static void test_advance_moves_everything_together(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    esm_store_batch b = {SEQ_A, SEQ_B, "p1 n=2 lo=0 a=1 i=1 b=0 e=2"};
    esm_store_step st = {.position = SEQ_A,
                         .batch = &b,
                         .window_op = ESM_STORE_WINDOW_PUT,
                         .window_start_ms = 60000,
                         .window_state = "{\"count\":1}"};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);
    expect_pos(s, SH0, SEQ_A, false);
    esm_store_batch_row br;
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 0);
    assert_string_equal(br.state, b.state);
    esm_store_batch_row_clear(&br);

    /* the failed record is discarded: checkpoint past it, batch state cleared, failure record
     * appended, window kept */
    static const unsigned char key[] = {0, 1, 2, 0xff};
    esm_outbox_item items[2] = {
        {.destination = "arn:aws:sqs:us-east-1:000000000000:dlq",
         .payload = "{\"requestContext\":{\"condition\":\"RetryAttemptsExhausted\"}}"},
        {.destination = "kafka://127.0.0.1:9092/failures",
         .payload = "{\"x\":2}trailing-not-counted",
         .payload_len = 7,
         .key = key,
         .key_len = sizeof key},
    };
    esm_store_step st2 = {.position = SEQ_B, .items = items, .n_items = 2};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st2, &err), 0);
    expect_pos(s, SH0, SEQ_B, false);
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 1);
    int64_t ws;
    char *wj;
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &ws, &wj, &err), 0);
    assert_int_equal(ws, 60000);
    free(wj);
    esm_outbox_row *rows;
    size_t n;
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].mapping, M);
    assert_string_equal(rows[0].destination, items[0].destination);
    assert_string_equal(rows[0].payload, items[0].payload);
    assert_null(rows[0].key);
    assert_int_equal(rows[0].attempts, 0);
    assert_null(rows[0].last_error);
    assert_string_equal(rows[1].payload, "{\"x\":2}");
    assert_int_equal(rows[1].payload_len, 7);
    assert_int_equal(rows[1].key_len, sizeof key);
    assert_memory_equal(rows[1].key, key, sizeof key);
    assert_true(rows[0].id < rows[1].id);
    esm_store_outbox_rows_free(rows, n);

    /* window closes; lane finishes (closed shard); finished is sticky */
    esm_store_step st3 = {.position = SEQ_B, .finished = true, .window_op = ESM_STORE_WINDOW_CLEAR};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st3, &err), 0);
    expect_pos(s, SH0, SEQ_B, true);
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &ws, &wj, &err), 1);
    esm_store_step st4 = {.position = NULL}; /* no move: only touches the lane */
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st4, &err), 0);
    expect_pos(s, SH0, SEQ_B, true);
    esm_store_close(s);
}

static void test_advance_never_moves_back(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    esm_store_step st = {.position = SEQ_B};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);
    esm_outbox_item it = {.destination = "file:///x", .payload = "{}"};
    esm_store_step back = {.position = SEQ_A, .items = &it, .n_items = 1};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &back, &err), -1);
    assert_int_equal(err.code, ESM_ERR_INVALID);
    assert_false(err.retriable);
    assert_non_null(strstr(err.message, "move back"));
    expect_pos(s, SH0, SEQ_B, false);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 0); /* nothing written */
    /* shorter decimal = smaller, leading zeros ignored, equal allowed */
    esm_store_step k1 = {.position = "100"}, k2 = {.position = "99"}, k3 = {.position = "0100"};
    assert_int_equal(esm_store_advance(s, M, "kafka", "0", &k1, &err), 0);
    assert_int_equal(esm_store_advance(s, M, "kafka", "0", &k2, &err), -1);
    assert_int_equal(esm_store_advance(s, M, "kafka", "0", &k3, &err), 0);
    /* non-decimal positions cannot be ordered by the store: accepted */
    esm_store_step o1 = {.position = "b"}, o2 = {.position = "a"};
    assert_int_equal(esm_store_advance(s, M, "opaque", "0", &o1, &err), 0);
    assert_int_equal(esm_store_advance(s, M, "opaque", "0", &o2, &err), 0);
    esm_store_close(s);
}

/* A CHECK constraint fails on the last statement of the step: nothing may be left behind. */
static void test_advance_is_atomic(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    esm_store_batch b = {"1", "5", "old-state"};
    esm_store_step st = {.position = "10",
                         .batch = &b,
                         .window_op = ESM_STORE_WINDOW_PUT,
                         .window_start_ms = 1,
                         .window_state = "{\"w\":1}"};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);

    esm_outbox_item items[3] = {
        {.destination = "file:///a", .payload = "{\"ok\":1}"},
        {.destination = "file:///b", .payload = "{\"ok\":2}"},
        {.destination = "file:///c", .payload = "{\"broken\":"}, /* not JSON */
    };
    esm_store_batch b2 = {"11", "15", "new-state"};
    esm_store_step bad = {.position = "20",
                          .finished = true,
                          .batch = &b2,
                          .window_op = ESM_STORE_WINDOW_PUT,
                          .window_start_ms = 2,
                          .window_state = "{\"w\":2}",
                          .items = items,
                          .n_items = 3};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &bad, &err), -1);
    assert_int_equal(err.code, ESM_ERR_INVALID);
    assert_non_null(strstr(err.message, "CHECK constraint failed"));

    expect_pos(s, SH0, "10", false);
    esm_store_batch_row br;
    assert_int_equal(esm_store_batch_get(s, M, SRC, SH0, &br, &err), 0);
    assert_string_equal(br.state, "old-state");
    esm_store_batch_row_clear(&br);
    int64_t ws;
    char *wj;
    assert_int_equal(esm_store_window_get(s, M, SRC, SH0, &ws, &wj, &err), 0);
    assert_int_equal(ws, 1);
    assert_string_equal(wj, "{\"w\":1}");
    free(wj);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 0);

    /* the same through an empty destination, and the store is still usable afterwards */
    esm_outbox_item nodest = {.destination = "", .payload = "{}"};
    esm_store_step bad2 = {.position = "20", .items = &nodest, .n_items = 1};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &bad2, &err), -1);
    expect_pos(s, SH0, "10", false);
    bad.n_items = 2;
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &bad, &err), 0);
    expect_pos(s, SH0, "20", true);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 2);

    /* outbox_add is all-or-nothing too */
    assert_int_equal(esm_store_outbox_add(s, M, items, 3, &err), -1);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 2);
    esm_store_close(s);
}

/* A write that SQLite refuses mid-life is reported with SQLite's message, is not retriable, and
 * leaves nothing behind. White-box: the handle is switched to PRAGMA query_only, which fails
 * writes exactly like a read-only database (root ignores file modes; a read-only remount is
 * refused while the file is open for writing; test_checkpoint_fs covers read-only at open). */
static void test_write_failure_is_reported(void **state)
{
    const char *dir = *state;
    esm_err err;
    esm_store *s = open_ok(dir);
    esm_store_step st = {.position = "1"};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);
    assert_int_equal(sqlite3_exec(s->db, "PRAGMA query_only = 1", NULL, NULL, NULL), SQLITE_OK);
    esm_outbox_item it = {.destination = "file:///x", .payload = "{}"};
    esm_store_step st2 = {.position = "2", .items = &it, .n_items = 1};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st2, &err), -1);
    assert_non_null(strstr(err.message, "attempt to write a readonly database"));
    assert_int_equal(err.code, ESM_ERR_IO);
    assert_false(err.retriable);
    assert_int_equal(esm_store_outbox_add(s, M, &it, 1, &err), -1);
    assert_non_null(strstr(err.message, "readonly"));
    expect_pos(s, SH0, "1", false); /* reads still work */
    esm_store_close(s);
    s = open_ok(dir);
    expect_pos(s, SH0, "1", false);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 0);
    esm_store_close(s);
}

/* ---- outbox ---- */

static void test_outbox_order_retry_delete(void **state)
{
    esm_err err;
    esm_store *s = open_ok(*state);
    esm_outbox_item it[3] = {
        {.destination = "arn:aws:sqs:us-east-1:000000000000:q", .payload = "{\"n\":1}"},
        {.destination = "arn:aws:sns:us-east-1:000000000000:t", .payload = "{\"n\":2}"},
        {.destination = "http://127.0.0.1:1/x", .payload = "{\"n\":3}"},
    };
    int64_t before = esm_now_ms();
    assert_int_equal(esm_store_outbox_add(s, "sqs-mapping", it, 3, &err), 0);
    esm_outbox_item it4 = {.destination = "file:///f", .payload = "{\"n\":4}"};
    esm_store_step st = {.position = "1", .items = &it4, .n_items = 1};
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &st, &err), 0);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 4);
    assert_int_equal(esm_store_outbox_depth(s, "sqs-mapping", &err), 3);
    assert_int_equal(esm_store_outbox_depth(s, M, &err), 1);
    assert_int_equal(esm_store_outbox_depth(s, "none", &err), 0);

    esm_outbox_row *r;
    size_t n;
    /* new rows are due at once (at their creation time), not before */
    assert_int_equal(esm_store_outbox_due(s, before - 1, 10, &r, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(esm_store_outbox_due(s, esm_now_ms(), 10, &r, &n, &err), 0);
    assert_int_equal(n, 4);
    int64_t id[4];
    for (size_t i = 0; i < 4; i++) {
        id[i] = r[i].id;
        char want[16];
        snprintf(want, sizeof want, "{\"n\":%zu}", i + 1);
        assert_string_equal(r[i].payload, want); /* ordered by id = write order */
        assert_true(r[i].created_at_ms >= before);
        assert_int_equal(r[i].next_attempt_at_ms, r[i].created_at_ms);
        if (i) assert_true(id[i] > id[i - 1]);
    }
    esm_store_outbox_rows_free(r, n);
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, 2, &r, &n, &err), 0);
    assert_int_equal(n, 2); /* limit */
    assert_int_equal(r[1].id, id[1]);
    esm_store_outbox_rows_free(r, n);

    /* a failed delivery: attempts+1, error kept, not due until its time */
    int64_t later = esm_now_ms() + 3600 * 1000;
    assert_int_equal(esm_store_outbox_retry_later(s, id[1], later, "SNS: 503", &err), 0);
    assert_int_equal(esm_store_outbox_retry_later(s, id[1], later + 5, "SNS: 500", &err), 0);
    assert_int_equal(esm_store_outbox_due(s, later - 1, 10, &r, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].id, id[0]);
    assert_int_equal(r[1].id, id[2]);
    esm_store_outbox_rows_free(r, n);
    assert_int_equal(esm_store_outbox_due(s, later + 5, 10, &r, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(r[1].id, id[1]);
    assert_int_equal(r[1].attempts, 2);
    assert_int_equal(r[1].next_attempt_at_ms, later + 5);
    assert_string_equal(r[1].last_error, "SNS: 500");
    esm_store_outbox_rows_free(r, n);

    int64_t when = 0;
    assert_int_equal(esm_store_outbox_next_due(s, &when, &err), 0);
    assert_true(when <= esm_now_ms()); /* id[0] is due now */

    /* delivered: deleted once; a second delete and unknown ids say "not found" */
    assert_int_equal(esm_store_outbox_delete(s, id[0], &err), 0);
    assert_int_equal(esm_store_outbox_delete(s, id[0], &err), 1);
    assert_int_equal(esm_store_outbox_retry_later(s, id[0], 0, "x", &err), 1);
    assert_int_equal(esm_store_outbox_delete(s, id[2], &err), 0);
    assert_int_equal(esm_store_outbox_delete(s, id[3], &err), 0);
    assert_int_equal(esm_store_outbox_next_due(s, &when, &err), 0);
    assert_int_equal(when, later + 5);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 1);

    /* ids are never reused, even after the newest row was deleted */
    assert_int_equal(esm_store_outbox_add(s, "sqs-mapping", it, 1, &err), 0);
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, 10, &r, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(r[1].id > id[3]);
    esm_store_outbox_rows_free(r, n);
    assert_int_equal(esm_store_outbox_delete(s, id[1], &err), 0);
    esm_store_close(s);

    /* rows survive a reopen; an empty outbox has no next due time */
    s = open_ok(*state);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 1);
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, 10, &r, &n, &err), 0);
    assert_int_equal(esm_store_outbox_delete(s, r[0].id, &err), 0);
    esm_store_outbox_rows_free(r, n);
    assert_int_equal(esm_store_outbox_next_due(s, &when, &err), 1);
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, 10, &r, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(r);
    esm_store_close(s);
}

static bool confirmed(esm_store *s, const char *lane)
{
    esm_err err;
    esm_store_lane l;
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, lane, &l, &err), 0);
    bool c = l.confirmed;
    esm_store_lane_clear(&l);
    return c;
}

/* A lane's confirmation by the source (a Kafka group's commit): a new checkpoint starts
 * unconfirmed, the mark stays while it advances, an operator's move clears it; a lane without
 * a checkpoint cannot be marked. */
static void test_confirmation_follows_the_checkpoint(void **state)
{
    esm_store *s = open_ok(*state);
    esm_err err;
    assert_int_equal(esm_store_lane_confirm(s, M, SRC, SH0, &err), 1); /* no such lane */
    assert_int_equal(esm_store_lane_register(s, M, SRC, SH0, NULL, &err), 0);
    assert_int_equal(esm_store_lane_confirm(s, M, SRC, SH0, &err), 1); /* no position yet */
    assert_false(confirmed(s, SH0));
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &(esm_store_step){.position = "5"}, &err),
                     0);
    assert_false(confirmed(s, SH0));
    assert_int_equal(esm_store_lane_confirm(s, M, SRC, SH0, &err), 0);
    assert_true(confirmed(s, SH0));
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &(esm_store_step){.position = "9"}, &err),
                     0);
    assert_true(confirmed(s, SH0));
    assert_int_equal(esm_store_checkpoint_set(s, M, SRC, SH0, "3", NULL, &err), 0);
    assert_false(confirmed(s, SH0));
    esm_store_close(s);
}

/* An operator's start (a moved lane) holds while the lane has no position; the lane's first
 * position clears it, and a later move replaces it. */
static void test_start_at_holds_until_the_first_position(void **state)
{
    esm_store *s = open_ok(*state);
    esm_err err;
    esm_store_lane l;
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &(esm_store_step){.position = "5"}, &err),
                     0);
    assert_int_equal(esm_store_checkpoint_set(s, M, SRC, SH0, NULL, "TRIM_HORIZON", &err), 0);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH0, &l, &err), 0);
    assert_null(l.position);
    assert_string_equal(l.start_at, "TRIM_HORIZON");
    esm_store_lane_clear(&l);
    /* a step without a position (only outbox rows) leaves it */
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &(esm_store_step){.position = NULL}, &err),
                     0);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH0, &l, &err), 0);
    assert_string_equal(l.start_at, "TRIM_HORIZON");
    esm_store_lane_clear(&l);
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &(esm_store_step){.position = "2"}, &err),
                     0);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH0, &l, &err), 0);
    assert_string_equal(l.position, "2");
    assert_null(l.start_at);
    esm_store_lane_clear(&l);
    /* a new lane moved before it was ever read */
    assert_int_equal(esm_store_checkpoint_set(s, M, SRC, SH1, NULL, "LATEST", &err), 0);
    esm_store_lane *v;
    size_t n;
    assert_int_equal(esm_store_checkpoint_list(s, M, SRC, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[1].lane, SH1);
    assert_string_equal(v[1].start_at, "LATEST");
    esm_store_lanes_free(v, n);
    esm_store_close(s);
}

/* An operator's move is one transaction: the shard's other lanes are forgotten and the lane is
 * set (and confirmed) together, and a refused step leaves every row as it was. */
static void test_lane_move_is_all_or_nothing(void **state)
{
    const char *dir = *state;
    esm_store *s = open_ok(dir);
    esm_err err;
    esm_store_lane l;
    const char *lane1 = SH0 "/lane-1";
    assert_int_equal(esm_store_advance(s, M, SRC, SH0, &(esm_store_step){.position = "5"}, &err),
                     0);
    assert_int_equal(esm_store_advance(s, M, SRC, lane1, &(esm_store_step){.position = "9"}, &err),
                     0);
    const char *forget[] = {lane1};
    esm_store_move mv = {.start_at = "TRIM_HORIZON", .forget = forget, .n_forget = 1};
    /* refused half way (the lane's own row cannot be written): the lane row is still there */
    assert_int_equal(tc_sql(dir, "CREATE TRIGGER no_update BEFORE UPDATE ON lane_checkpoint"
                                 " BEGIN SELECT RAISE(ABORT, 'refused'); END;"),
                     SQLITE_OK);
    assert_int_equal(esm_store_lane_move(s, M, SRC, SH0, &mv, &err), -1);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, lane1, &l, &err), 0);
    assert_string_equal(l.position, "9");
    esm_store_lane_clear(&l);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH0, &l, &err), 0);
    assert_string_equal(l.position, "5");
    assert_null(l.start_at);
    esm_store_lane_clear(&l);
    assert_int_equal(tc_sql(dir, "DROP TRIGGER no_update;"), SQLITE_OK);
    /* accepted: both at once */
    assert_int_equal(esm_store_lane_move(s, M, SRC, SH0, &mv, &err), 0);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, lane1, &l, &err), 1);
    assert_int_equal(esm_store_checkpoint_get(s, M, SRC, SH0, &l, &err), 0);
    assert_null(l.position);
    assert_string_equal(l.start_at, "TRIM_HORIZON");
    assert_false(l.confirmed);
    esm_store_lane_clear(&l);
    /* a position the source's own store already holds is confirmed with it */
    esm_store_move kafka = {.position = "40", .confirmed = true};
    assert_int_equal(esm_store_lane_move(s, M, SRC, SH1, &kafka, &err), 0);
    assert_true(confirmed(s, SH1));
    esm_store_close(s);
}

/* A version 2 database's checkpoints count as confirmed after the migration: they keep the
 * stricter reading (a group without offsets is a log reset) they had before. */
static void test_version_2_checkpoints_migrate_as_confirmed(void **state)
{
    const char *dir = *state;
    esm_store_close(open_ok(dir));
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    assert_int_equal(remove(path), 0);
    assert_int_equal(tc_sql(dir, SQL_SCHEMA_TABLE
                            ";" SQL_MIGRATION_1 SQL_MIGRATION_2
                            "INSERT INTO esmd_schema VALUES (1, 'v1', 0), (2, 'v2', 0);"
                            "INSERT INTO lane_checkpoint (mapping, source, lane, position,"
                            " updated_at_ms) VALUES ('" M "', '" SRC "', '" SH0 "', '7', 1),"
                            " ('" M "', '" SRC "', '" SH1 "', NULL, 1);"),
                     SQLITE_OK);
    esm_store *s = open_ok(dir);
    assert_int_equal(esm_store_schema_version(s), ESM_STORE_SCHEMA_VERSION);
    assert_true(confirmed(s, SH0));
    assert_false(confirmed(s, SH1));
    esm_store_close(s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        T(test_open_creates_dir_and_schema),
        T(test_reopen_is_idempotent_and_keeps_state),
        T(test_newer_schema_is_refused),
        T(test_garbage_file_is_refused),
        T(test_corrupt_page_is_refused),
        T(test_foreign_sqlite_file_is_refused),
        T(test_second_open_is_refused),
        T(test_state_dir_that_is_a_file_is_refused),
        T(test_lanes_register_list_set_delete),
        T(test_mapping_delete_keeps_outbox),
        T(test_batch_and_window_state),
        T(test_advance_moves_everything_together),
        T(test_advance_never_moves_back),
        T(test_advance_is_atomic),
        T(test_write_failure_is_reported),
        T(test_outbox_order_retry_delete),
        T(test_confirmation_follows_the_checkpoint),
        T(test_version_2_checkpoints_migrate_as_confirmed),
        T(test_start_at_holds_until_the_first_position),
        T(test_lane_move_is_all_or_nothing),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
