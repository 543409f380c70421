/* The outbox drainer on a real loop and a real store, with file:// destinations (no peers):
 * delivery and deletion, order, failure -> retry later with the error saved, deferral behind a
 * failing destination, invalid destinations kept, recovery. */
#include <ev.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "checkpoint/esm_store.h"
#include "common/esm_time.h"
#include "destinations/esm_outbox.h"

typedef struct {
    char dir[64];
    struct ev_loop *loop;
    esm_store *store;
    esm_http *http;
    esm_outbox_drainer *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/esm_outbox_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    char sd[128];
    snprintf(sd, sizeof sd, "%s/state", f->dir);
    esm_err err = {0};
    f->store = esm_store_open(sd, &err);
    if (!f->store) {
        fprintf(stderr, "store: %s\n", err.message);
        free(f);
        return -1;
    }
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esm_outbox_drainer_destroy(f->d);
    esm_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    esm_store_close(f->store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

static void add_row(fixture *f, const char *dest, const char *payload)
{
    esm_outbox_item it = {.destination = dest, .payload = payload};
    esm_err err = {0};
    if (esm_store_outbox_add(f->store, "map-1", &it, 1, &err) != 0)
        fail_msg("outbox_add: %s", err.message);
}

static void start(fixture *f)
{
    esm_outbox_env env = {.http = f->http, .region = "us-east-1", .account = "000000000000"};
    f->d = esm_outbox_drainer_create(f->loop, f->store, &env);
    assert_non_null(f->d);
}

typedef bool (*cond_fn)(fixture *f, void *arg);

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until cond holds; fails after deadline_ms naming what was awaited. */
static void run_until(fixture *f, cond_fn cond, void *arg, int64_t deadline_ms, const char *what)
{
    int64_t end = esm_now_ms() + deadline_ms;
    ev_timer t;
    ev_timer_init(&t, stop_loop, 0.02, 0.02);
    ev_timer_start(f->loop, &t);
    while (!cond(f, arg)) {
        if (esm_now_ms() > end) {
            ev_timer_stop(f->loop, &t);
            fail_msg("timed out waiting for: %s", what);
        }
        ev_run(f->loop, 0);
    }
    ev_timer_stop(f->loop, &t);
}

static int64_t depth(fixture *f)
{
    esm_err err = {0};
    return esm_store_outbox_depth(f->store, NULL, &err);
}

static bool depth_is(fixture *f, void *arg)
{
    return depth(f) == (int64_t)(intptr_t)arg;
}

static bool failed_at_least(fixture *f, void *arg)
{
    esm_outbox_counters c;
    esm_outbox_drainer_counters(f->d, &c);
    return c.failed_attempts >= (uint64_t)(intptr_t)arg;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static cJSON *status(fixture *f)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_outbox_drainer_status(f->d, &b);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    if (!j) fail_msg("status is not JSON: %.*s", (int)b.len, b.data);
    esm_buf_free(&b);
    return j;
}

static const cJSON *status_dest(const cJSON *st, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(st, "destinations"))
    {
        const cJSON *n = cJSON_GetObjectItem(it, "destination");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return it;
    }
    fail_msg("status has no destination %s", name);
    return NULL;
}

static void test_delivers_in_order_and_deletes(void **state)
{
    fixture *f = *state;
    char p1[256], p2[256], d1[300], d2[300];
    snprintf(p1, sizeof p1, "%s/a.jsonl", f->dir);
    snprintf(p2, sizeof p2, "%s/b.jsonl", f->dir);
    snprintf(d1, sizeof d1, "file://%s", p1);
    snprintf(d2, sizeof d2, "file://%s", p2);
    add_row(f, d1, "{\"n\":1}");
    add_row(f, d2, "{\"n\":2}");
    add_row(f, d1, "{\"n\":3}");
    start(f);
    add_row(f, d1, "{\"n\":4}");
    esm_outbox_drainer_kick(f->d);
    run_until(f, depth_is, (void *)0, 10000, "outbox empty");
    char *a = slurp(p1), *b = slurp(p2);
    assert_string_equal(a, "{\"n\":1}\n{\"n\":3}\n{\"n\":4}\n");
    assert_string_equal(b, "{\"n\":2}\n");
    free(a);
    free(b);
    esm_outbox_counters c;
    esm_outbox_drainer_counters(f->d, &c);
    assert_int_equal(c.delivered, 4);
    assert_int_equal(c.failed_attempts, 0);
    cJSON *st = status(f);
    assert_int_equal(cJSON_GetObjectItem(st, "depth")->valueint, 0);
    const cJSON *sd = status_dest(st, d1);
    assert_int_equal(cJSON_GetObjectItem(sd, "delivered")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(sd, "depth")->valueint, 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(sd, "last_error")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(sd, "last_success_at")));
    cJSON_Delete(st);
}

static void test_failure_retries_later_and_recovers(void **state)
{
    fixture *f = *state;
    char sub[128], path[256], dest[300], okpath[256], okdest[300];
    snprintf(sub, sizeof sub, "%s/later", f->dir);
    snprintf(path, sizeof path, "%s/f.jsonl", sub);
    snprintf(dest, sizeof dest, "file://%s", path);
    snprintf(okpath, sizeof okpath, "%s/ok.jsonl", f->dir);
    snprintf(okdest, sizeof okdest, "file://%s", okpath);
    add_row(f, dest, "{\"n\":1}");
    add_row(f, dest, "{\"n\":2}");
    add_row(f, okdest, "{\"ok\":true}");
    add_row(f, dest, "{\"n\":3}");
    start(f);
    /* the other destination is not held up by the failing one */
    run_until(f, depth_is, (void *)3, 10000, "the healthy destination's row delivered");
    run_until(f, failed_at_least, (void *)1, 10000, "a failed attempt");

    esm_outbox_counters c;
    esm_outbox_drainer_counters(f->d, &c);
    assert_int_equal(c.delivered, 1);
    /* one attempt per backoff step, the rows behind it were not tried but deferred */
    assert_true(c.deferred >= 2);

    /* the rows are still there, rescheduled, with the error saved */
    esm_outbox_row *rows = NULL;
    size_t n = 0;
    esm_err err = {0};
    assert_int_equal(esm_store_outbox_due(f->store, INT64_MAX, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_true(rows[0].attempts >= 1);
    assert_true(rows[0].next_attempt_at_ms > esm_now_ms() - 1000);
    assert_non_null(rows[0].last_error);
    assert_non_null(strstr(rows[0].last_error, "No such file"));
    assert_non_null(strstr(rows[1].last_error, "not attempted"));
    esm_store_outbox_rows_free(rows, n);

    cJSON *st = status(f);
    const cJSON *sd = status_dest(st, dest);
    assert_int_equal(cJSON_GetObjectItem(sd, "depth")->valueint, 3);
    assert_true(cJSON_GetObjectItem(sd, "oldest_age_ms")->valuedouble >= 0);
    assert_non_null(strstr(cJSON_GetObjectItem(sd, "last_error")->valuestring, "No such file"));
    assert_true(cJSON_GetObjectItem(sd, "consecutive_failures")->valueint >= 1);
    cJSON_Delete(st);

    /* the destination comes back: everything is delivered, in order */
    assert_int_equal(mkdir(sub, 0700), 0);
    run_until(f, depth_is, (void *)0, 20000, "delivery after the destination came back");
    char *got = slurp(path);
    assert_string_equal(got, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    free(got);
    st = status(f);
    sd = status_dest(st, dest);
    assert_int_equal(cJSON_GetObjectItem(sd, "consecutive_failures")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(sd, "delivered")->valueint, 3);
    cJSON_Delete(st);
}

static void test_undeliverable_rows_are_kept(void **state)
{
    fixture *f = *state;
    /* a string that the store accepted but no destination understands, a FIFO queue, and a
     * kafka://topic row with no way to find the source cluster */
    add_row(f, "ftp://nowhere/x", "{\"x\":1}");
    add_row(f, "arn:aws:sqs:us-east-1:000000000000:q.fifo", "{\"x\":2}");
    add_row(f, "kafka://failures", "{\"x\":3}");
    add_row(f, "arn:aws:sqs:us-east-1:000000000000:q", "{\"x\":4}"); /* no SQS client */
    start(f);
    run_until(f, failed_at_least, (void *)4, 10000, "four failed attempts");
    assert_int_equal(depth(f), 4);
    cJSON *st = status(f);
    const cJSON *sd = status_dest(st, "ftp://nowhere/x");
    assert_string_equal(cJSON_GetObjectItem(sd, "kind")->valuestring, "invalid");
    assert_non_null(
        strstr(cJSON_GetObjectItem(sd, "last_error")->valuestring, "invalid destination"));
    sd = status_dest(st, "arn:aws:sqs:us-east-1:000000000000:q.fifo");
    assert_non_null(strstr(cJSON_GetObjectItem(sd, "last_error")->valuestring, "FIFO"));
    sd = status_dest(st, "kafka://failures");
    assert_non_null(strstr(cJSON_GetObjectItem(sd, "last_error")->valuestring,
                           "no bootstrap servers known for mapping map-1"));
    sd = status_dest(st, "arn:aws:sqs:us-east-1:000000000000:q");
    assert_non_null(
        strstr(cJSON_GetObjectItem(sd, "last_error")->valuestring, "no SQS endpoint configured"));
    cJSON_Delete(st);
}

static void test_restart_resumes(void **state)
{
    fixture *f = *state;
    char path[256], dest[300];
    snprintf(path, sizeof path, "%s/r.jsonl", f->dir);
    snprintf(dest, sizeof dest, "file://%s", path);
    start(f);
    esm_outbox_drainer_destroy(f->d); /* stopped before anything was written */
    f->d = NULL;
    add_row(f, dest, "{\"r\":1}");
    add_row(f, dest, "{\"r\":2}");
    assert_int_equal(depth(f), 2);
    start(f); /* a new drainer finds the rows */
    cJSON *st = status(f);
    assert_int_equal(cJSON_GetObjectItem(status_dest(st, dest), "depth")->valueint, 2);
    cJSON_Delete(st);
    run_until(f, depth_is, (void *)0, 10000, "rows written while stopped delivered");
    char *got = slurp(path);
    assert_string_equal(got, "{\"r\":1}\n{\"r\":2}\n");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers_in_order_and_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_retries_later_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undeliverable_rows_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
