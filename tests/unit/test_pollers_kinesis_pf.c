/* ParallelizationFactor 2 on a disk that fills up (tests/unit/fail_vfs.h): lane A discards a
 * record (failure record + checkpoint in one store step) while the store refuses writes; lane B
 * then commits a later record. The shard's stored position must not pass A's record until its
 * failure record is durable, whether the disk recovers (A's write is retried) or esmd stops
 * first (A's record is read and discarded again after the restart). The failure record reaches
 * its destination exactly once (docs/operations.md "Disk full / store write errors").
 *
 * The shard runs in-process: records go in through esm_kinesis_shard_take/esm_kinesis_shard_offer
 * (what a GetRecords answer does), the function is a local HTTP server, the store, its writer
 * thread and the outbox drainer (to a file destination) are the real ones. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "checkpoint/esm_store_writer.h"
#include "common/esm_time.h"
#include "config/esm_config.h"
#include "destinations/esm_outbox.h"
#include "fail_vfs.h"
#include "pollers/kinesis/esm_kinesis_int.h"
#include "test_checkpoint_util.h"

#define SHARD "shardId-000000000000"
#define SEQ_A "49600000000000000000000000000000000000000000000000000001"
#define SEQ_B "49600000000000000000000000000000000000000000000000000002"
#define POISON_B64 "cG9pc29u" /* "poison": the function fails on it */
#define GOOD_B64 "Z29vZA=="   /* "good" */
#define WAIT_MS 20000

/* ---- the function: 500 (a function error over "http") for poison, 200 otherwise ---------- */

typedef struct {
    int lfd, port;
    pthread_t thread;
    atomic_int poison_calls, good_calls;
} fn_server;

static void fn_send(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

typedef struct {
    fn_server *srv;
    int fd;
} fn_conn;

static void *fn_conn_main(void *p)
{
    fn_conn *c = p;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            ssize_t r = recv(c->fd, buf + len, cap - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        size_t head = (size_t)(end - buf) + 4, clen = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
        while (len < head + clen) {
            ssize_t r = recv(c->fd, buf + len, cap - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        if (memmem(buf + head, clen, POISON_B64, strlen(POISON_B64))) {
            atomic_fetch_add(&c->srv->poison_calls, 1);
            fn_send(c->fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}");
        } else {
            atomic_fetch_add(&c->srv->good_calls, 1);
            fn_send(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        }
        memmove(buf, buf + head + clen, len - head - clen);
        len -= head + clen;
    }
out:
    close(c->fd);
    free(buf);
    free(c);
    return NULL;
}

static void *fn_accept_main(void *p)
{
    fn_server *s = p;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        fn_conn *c = malloc(sizeof *c);
        c->srv = s;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, fn_conn_main, c);
        pthread_detach(t);
    }
}

static fn_server *fn_start(void)
{
    fn_server *s = calloc(1, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, fn_accept_main, s);
    return s;
}

static void fn_stop(fn_server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->thread, NULL);
    free(s);
}

/* ---- the fixture: store, writer, drainer, invoker, one Kinesis source with one shard ------- */

typedef struct {
    char *dir;
    char out_path[1100];
    fn_server *fn;
    struct ev_loop *loop;
    ev_timer tick; /* wakes ev_run(EVRUN_ONCE) so the waits re-check their condition */
    esm_http *http;
    esm_config *cfg;
    esm_invoker *inv;
    esm_store *store;
    esm_store_writer *writer;
    esm_outbox_drainer *drainer;
    esm_source_stats stats;
    esm_kinesis_stream src;
    esm_kinesis_shard *sh;
    char key_a[16], key_b[16]; /* partition keys of lane 0 and lane 1 */
} fixture;

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void pick_keys(fixture *f)
{
    f->key_a[0] = f->key_b[0] = '\0';
    for (int i = 0; i < 100 && (!f->key_a[0] || !f->key_b[0]); i++) {
        char k[16];
        snprintf(k, sizeof k, "key-%d", i);
        unsigned lane = esm_kinesis_lane_of(k, 2);
        if (lane == 0 && !f->key_a[0]) snprintf(f->key_a, sizeof f->key_a, "%s", k);
        if (lane == 1 && !f->key_b[0]) snprintf(f->key_b, sizeof f->key_b, "%s", k);
    }
    assert_true(f->key_a[0] && f->key_b[0]);
}

static int setup(void **state)
{
    assert_int_equal(fail_vfs_install(), SQLITE_OK);
    fail_vfs_arm(false);
    fixture *f = calloc(1, sizeof *f);
    f->dir = tc_mkdtemp();
    snprintf(f->out_path, sizeof f->out_path, "%s/failures.jsonl", f->dir);
    f->fn = fn_start();
    char json[4096];
    snprintf(json, sizeof json,
             "{\"state_dir\":\"%s\",\"aws\":{\"region\":\"us-east-1\"},"
             "\"functions\":{\"f\":{\"url\":\"http://127.0.0.1:%d/fn\",\"protocol\":\"http\","
             "\"timeout_seconds\":10}},"
             "\"event_source_mappings\":[{\"FunctionName\":\"f\","
             "\"EventSourceArn\":\"arn:aws:kinesis:us-east-1:000000000000:stream/pf-full\","
             "\"StartingPosition\":\"TRIM_HORIZON\",\"BatchSize\":1,"
             "\"ParallelizationFactor\":2,\"MaximumRetryAttempts\":0,"
             "\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"file://%s\"}}}]}",
             f->dir, f->fn->port, f->out_path);
    esm_config_problems problems = {0};
    f->cfg = esm_config_parse(json, strlen(json), &problems);
    if (!f->cfg) esm_config_problems_print(&problems, stderr);
    esm_config_problems_free(&problems);
    assert_non_null(f->cfg);
    assert_int_equal(f->cfg->n_mappings, 1);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    ev_timer_init(&f->tick, on_tick, 0.01, 0.01);
    ev_timer_start(f->loop, &f->tick);
    f->http = esm_http_create(f->loop);
    f->inv = esm_invoker_create(f->loop, f->http, f->cfg->mappings[0].function, NULL);
    esm_err err;
    esm_err_clear(&err);
    f->store = esm_store_open(f->dir, &err);
    assert_non_null(f->store);
    f->writer = esm_store_writer_create(f->store, f->loop, &err);
    assert_non_null(f->writer);
    esm_outbox_env oenv = {.http = f->http, .region = "us-east-1", .idle_scan_ms = 100};
    f->drainer = esm_outbox_drainer_create(f->loop, f->store, &oenv);
    assert_non_null(f->drainer);
    pick_keys(f);
    *state = f;
    return 0;
}

/* The source as kinesis_create/kinesis_start leave it, without a Kinesis endpoint: records
 * come from the test. */
static void source_init(fixture *f)
{
    esm_kinesis_stream *s = &f->src;
    memset(s, 0, sizeof *s);
    s->up = &esm_kinesis_stream_calls;
    s->env = (esm_source_env){.loop = f->loop,
                              .http = f->http,
                              .config = f->cfg,
                              .mapping = &f->cfg->mappings[0],
                              .invoker = f->inv,
                              .store = f->store,
                              .writer = f->writer,
                              .outbox = f->drainer,
                              .stats = &f->stats,
                              .log_ctx = "pf-test"};
    s->map = &f->cfg->mappings[0];
    s->region = "us-east-1";
    s->state = K_RUNNING;
    esm_source_stats *st = &f->stats;
    s->counters = (esm_lane_counters){.invoked = &st->invoked,
                                      .invocations = &st->invocations,
                                      .failed_invoke = &st->failed_invoke,
                                      .throttled = &st->throttled,
                                      .dropped = &st->dropped,
                                      .on_failure_queued = &st->on_failure_queued,
                                      .committed = &st->committed,
                                      .checkpoint_write_failures = &st->checkpoint_write_failures,
                                      .invokes = &st->invokes};
}

/* Where the shard would resume after a restart (what esm_kinesis_stream reads from the store). */
static void resume_position(fixture *f, char *out, size_t cap)
{
    esm_store_lane *rows = NULL;
    size_t n = 0;
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(esm_store_checkpoint_list(f->store, f->src.map->uuid,
                                               f->src.map->event_source_arn, &rows, &n, &err),
                     0);
    esm_kinesis_stored st;
    esm_kinesis_stored_shard(rows, n, SHARD, 0, &st);
    snprintf(out, cap, "%s", st.checkpoint);
    esm_store_lanes_free(rows, n);
}

static void shard_start(fixture *f)
{
    esm_kinesis_shard_info info = {.id = SHARD};
    f->sh = esm_kinesis_shard_new(&f->src, &info);
    assert_non_null(f->sh);
    resume_position(f, f->sh->checkpoint, sizeof f->sh->checkpoint);
    f->sh->state = KS_READING; /* no iterator: the shard never calls Kinesis itself */
}

/* Stops the shard as a shutdown does: lanes that are not invoking are abandoned. */
static void shard_stop(fixture *f)
{
    f->src.state = K_STOPPING;
    esm_kinesis_shard_stop(f->sh);
    esm_kinesis_shard_abandon(f->sh);
    esm_kinesis_shard_free(f->sh);
    f->sh = NULL;
    /* The stream's maybe_stopped reports "stopped" through this timer; nobody listens here.
     */
    ev_timer_stop(f->loop, &f->src.stopped_notify);
}

/* Feeds one record read from the shard; false when it is at or before the resume position (a
 * restarted shard reads after its checkpoint). */
static bool feed(fixture *f, const char *seq, const char *key, const char *data)
{
    if (f->sh->checkpoint[0] && esm_kinesis_seq_cmp(seq, f->sh->checkpoint) <= 0) return false;
    esm_kinesis_record *r = esm_kinesis_record_new(&f->sh->rctx, seq, key, esm_now_ms(), data);
    assert_non_null(r);
    assert_int_equal(esm_kinesis_shard_take(f->sh, &r, 1), 1);
    esm_kinesis_shard_offer(f->sh);
    return true;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fail_vfs_arm(false);
    if (f->sh) esm_kinesis_shard_free(f->sh);
    esm_outbox_drainer_destroy(f->drainer);
    esm_store_writer_destroy(f->writer);
    esm_invoker_destroy(f->inv);
    esm_http_destroy(f->http);
    esm_store_close(f->store);
    ev_timer_stop(f->loop, &f->tick);
    ev_loop_destroy(f->loop);
    esm_config_destroy(f->cfg);
    fn_stop(f->fn);
    tc_rmrf(f->dir);
    free(f);
    return 0;
}

typedef bool (*cond_fn)(fixture *f);

/* Runs the loop until cond holds; false at the deadline. */
static bool run_until(fixture *f, cond_fn cond)
{
    int64_t deadline = esm_now_ms() + WAIT_MS;
    while (!cond(f)) {
        if (esm_now_ms() > deadline) return false;
        ev_run(f->loop, EVRUN_ONCE);
    }
    return true;
}

static bool two_write_failures(fixture *f)
{
    return f->stats.checkpoint_write_failures >= 2;
}

static bool b_committed(fixture *f)
{
    return f->stats.committed >= 1 && !esm_lane_busy(f->sh->lanes[1].lane);
}

static int64_t outbox_depth(fixture *f)
{
    esm_err err;
    esm_err_clear(&err);
    return esm_store_outbox_depth(f->store, f->src.map->uuid, &err);
}

static int file_lines(fixture *f, char *first, size_t cap)
{
    FILE *fp = fopen(f->out_path, "r");
    if (!fp) return 0;
    int n = 0;
    char line[8192];
    while (fgets(line, sizeof line, fp)) {
        if (n == 0 && first) snprintf(first, cap, "%s", line);
        n++;
    }
    fclose(fp);
    return n;
}

/* A's failure record delivered, its lane idle, the shard past both records. */
static bool all_settled(fixture *f)
{
    if (file_lines(f, NULL, 0) < 1 || outbox_depth(f) != 0) return false;
    for (unsigned i = 0; i < f->sh->n_lanes; i++)
        if (esm_lane_busy(f->sh->lanes[i].lane) || f->sh->lanes[i].in_batch) return false;
    char pos[ESM_POSITION_MAX];
    resume_position(f, pos, sizeof pos);
    return strcmp(pos, SEQ_B) == 0;
}

/* Lane A's discard fails to write twice; then lane B commits record B. While A's failure record
 * is not in the store, the shard may not resume after A's record. */
static void a_fails_then_b_commits(fixture *f)
{
    fail_vfs_arm(true);
    assert_true(feed(f, SEQ_A, f->key_a, POISON_B64));
    assert_true(run_until(f, two_write_failures));
    assert_int_equal(f->sh->lanes[0].idx, 0);
    esm_buf st;
    esm_buf_init(&st);
    esm_kinesis_shard_status(f->sh, &st);
    assert_non_null(strstr(st.data, "WaitingForStateStore")); /* /status shows it */
    assert_non_null(strstr(st.data, "PROBLEM: state store"));
    esm_buf_free(&st);
    /* A's next retry is 1 s away: B's write lands first. */
    fail_vfs_arm(false);
    assert_true(feed(f, SEQ_B, f->key_b, GOOD_B64));
    assert_true(run_until(f, b_committed));
}

static void assert_not_past_a_without_its_record(fixture *f)
{
    char pos[ESM_POSITION_MAX];
    resume_position(f, pos, sizeof pos);
    if (outbox_depth(f) == 0 && file_lines(f, NULL, 0) == 0) {
        if (pos[0]) assert_true(esm_kinesis_seq_cmp(pos, SEQ_A) < 0);
    } else {
        print_message("note: lane A's retry landed before lane B's write; the window was not "
                      "observed this run\n");
    }
}

static void assert_delivered_once(fixture *f)
{
    assert_true(run_until(f, all_settled));
    char line[8192] = "";
    assert_int_equal(file_lines(f, line, sizeof line), 1);
    assert_non_null(strstr(line, "\"startSequenceNumber\":\"" SEQ_A "\""));
    assert_non_null(strstr(line, "RetryAttemptsExhausted"));
    assert_int_equal(f->stats.dropped, 1);
    assert_int_equal(f->stats.on_failure_queued, 1);
}

static void test_pf2_failed_discard_write_then_disk_recovers(void **state)
{
    fixture *f = *state;
    source_init(f);
    shard_start(f);
    a_fails_then_b_commits(f);
    assert_not_past_a_without_its_record(f);
    /* The disk has room again: A's retried write stores the failure record and moves the
     * shard past both records. */
    assert_delivered_once(f);
    assert_true(f->stats.checkpoint_write_failures >= 2);
}

static void test_pf2_failed_discard_write_then_stop(void **state)
{
    fixture *f = *state;
    source_init(f);
    shard_start(f);
    a_fails_then_b_commits(f);
    fail_vfs_arm(true); /* still full when esmd stops: A's discard is abandoned */
    shard_stop(f);
    fail_vfs_arm(false);
    assert_not_past_a_without_its_record(f);

    /* Restart: the shard reads again after its stored position. */
    source_init(f);
    shard_start(f);
    feed(f, SEQ_A, f->key_a, POISON_B64);
    feed(f, SEQ_B, f->key_b, GOOD_B64);
    assert_delivered_once(f);
}

static bool one_write_failure(fixture *f)
{
    return f->stats.checkpoint_write_failures >= 1;
}

/* A lane whose records all succeeded but whose checkpoint cannot be written is blocked (so a
 * lasting full disk makes it stuck in /readyz) until the write lands. */
static void test_failing_write_blocks_the_lane(void **state)
{
    fixture *f = *state;
    source_init(f);
    shard_start(f);
    fail_vfs_arm(true);
    assert_true(feed(f, SEQ_B, f->key_b, GOOD_B64));
    assert_true(run_until(f, one_write_failure));
    assert_true(esm_lane_blocked_since_ms(f->sh->lanes[1].lane) > 0);
    assert_int_equal(f->stats.committed, 0);
    fail_vfs_arm(false);
    assert_true(run_until(f, b_committed));
    assert_int_equal(esm_lane_blocked_since_ms(f->sh->lanes[1].lane), 0);
    char pos[ESM_POSITION_MAX];
    resume_position(f, pos, sizeof pos);
    assert_string_equal(pos, SEQ_B);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pf2_failed_discard_write_then_disk_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pf2_failed_discard_write_then_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_write_blocks_the_lane, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
