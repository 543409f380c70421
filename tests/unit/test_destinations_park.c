/* Parking in the outbox drainer, on a real loop and store (docs/operations.md "Parked failure
 * records"): a row its destination refuses for good (HTTP 413, larger than SQS's limit, larger
 * than librdkafka's message.max.bytes) is parked, the rows behind it are delivered; status
 * shows it; redrive re-queues it; parked state survives a restart. */
#include <ev.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "checkpoint/esm_store.h"
#include "common/esm_time.h"
#include "destinations/esm_outbox.h"
#include "tests/unit/http_test_server.h"

typedef struct {
    char dir[64];
    char state_dir[128];
    struct ev_loop *loop;
    esm_store *store;
    esm_http *http;
    esm_outbox_drainer *d;
    test_server *srv;
    char url[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/esm_park_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->dir);
    esm_err err = {0};
    f->store = esm_store_open(f->state_dir, &err);
    if (!f->store) {
        fprintf(stderr, "store: %s\n", err.message);
        free(f);
        return -1;
    }
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    f->srv = server_start();
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/limit", f->srv->port);
    atomic_store(&test_server_max_body, 64);
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
    server_stop(f->srv);
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

static bool settled(fixture *f, void *arg)
{
    /* nothing due and nothing in flight, with the expected number of rows delivered */
    esm_err err = {0};
    esm_outbox_counters c;
    esm_outbox_drainer_counters(f->d, &c);
    return esm_store_outbox_depth(f->store, NULL, &err) == 0 && c.in_flight == 0 &&
           c.delivered == (uint64_t)(intptr_t)arg;
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

static int64_t parked_count(fixture *f, char *first_reason, size_t len)
{
    esm_outbox_row_info *rows = NULL;
    size_t n = 0;
    esm_err err = {0};
    assert_int_equal(esm_store_outbox_list(f->store, true, 0, 100, &rows, &n, &err), 0);
    if (first_reason && len) snprintf(first_reason, len, "%s", n ? rows[0].reason : "");
    esm_store_outbox_infos_free(rows, n);
    return (int64_t)n;
}

static bool parked_at_least(fixture *f, void *arg)
{
    esm_outbox_counters c;
    esm_outbox_drainer_counters(f->d, &c);
    return c.parked >= (uint64_t)(intptr_t)arg;
}

#define BIG_ROW                                                                                    \
    "{\"big\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"

static void test_http_413_parks_the_row_and_the_rows_behind_are_delivered(void **state)
{
    fixture *f = *state;
    add_row(f, f->url, "{\"n\":1}");
    add_row(f, f->url, BIG_ROW);
    add_row(f, f->url, "{\"n\":2}");
    add_row(f, f->url, "{\"n\":3}");
    start(f);
    run_until(f, settled, (void *)3, 10000, "the three small rows delivered");

    char reason[512];
    assert_int_equal(parked_count(f, reason, sizeof reason), 1);
    assert_non_null(strstr(reason, "HTTP 413"));
    esm_outbox_counters c;
    esm_outbox_drainer_counters(f->d, &c);
    assert_int_equal(c.parked, 1);

    cJSON *st = status(f);
    assert_int_equal(cJSON_GetObjectItem(st, "parked")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(st, "depth")->valueint, 0);
    const cJSON *sd = status_dest(st, f->url);
    assert_int_equal(cJSON_GetObjectItem(sd, "parked")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(sd, "delivered")->valueint, 3);
    assert_non_null(strstr(cJSON_GetObjectItem(sd, "last_park_reason")->valuestring, "HTTP 413"));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(sd, "last_parked_at")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(sd, "blocked_until")));
    cJSON_Delete(st);

    /* the listing names the row, its reason and its size */
    esm_buf b;
    esm_buf_init(&b);
    esm_err err = {0};
    assert_int_equal(esm_outbox_rows_json(f->store, true, 0, 100, &b, &err), 0);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    esm_buf_free(&b);
    const cJSON *rows = cJSON_GetObjectItem(j, "parked");
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    const cJSON *r = cJSON_GetArrayItem(rows, 0);
    assert_int_equal(cJSON_GetObjectItem(r, "id")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(r, "mapping")->valuestring, "map-1");
    assert_string_equal(cJSON_GetObjectItem(r, "destination")->valuestring, f->url);
    assert_int_equal(cJSON_GetObjectItem(r, "size")->valueint, (int)strlen(BIG_ROW));
    assert_non_null(strstr(cJSON_GetObjectItem(r, "reason")->valuestring, "413"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "next_after")));
    cJSON_Delete(j);
}

static void test_redrive_requeues_and_delivers_once_the_cause_is_fixed(void **state)
{
    fixture *f = *state;
    add_row(f, f->url, BIG_ROW);
    add_row(f, f->url, "{\"n\":1}");
    start(f);
    run_until(f, settled, (void *)1, 10000, "the small row delivered");
    assert_int_equal(parked_count(f, NULL, 0), 1);

    esm_err err = {0};
    /* a redrive for another id or destination touches nothing */
    assert_int_equal(esm_outbox_drainer_redrive(f->d, 99, NULL, &err), 0);
    assert_int_equal(esm_outbox_drainer_redrive(f->d, 0, "http://elsewhere/x", &err), 0);
    assert_int_equal(parked_count(f, NULL, 0), 1);

    atomic_store(&test_server_max_body, 1 << 20); /* the operator raised the limit */
    assert_int_equal(esm_outbox_drainer_redrive(f->d, 0, f->url, &err), 1);
    run_until(f, settled, (void *)2, 10000, "the redriven row delivered");
    assert_int_equal(parked_count(f, NULL, 0), 0);
    cJSON *st = status(f);
    assert_int_equal(cJSON_GetObjectItem(st, "parked")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(status_dest(st, f->url), "parked")->valueint, 0);
    cJSON_Delete(st);
}

static void test_redrive_of_a_row_still_refused_parks_it_again(void **state)
{
    fixture *f = *state;
    add_row(f, f->url, BIG_ROW);
    start(f);
    esm_err err = {0};
    run_until(f, settled, (void *)0, 10000, "the row handled");
    assert_int_equal(parked_count(f, NULL, 0), 1);
    assert_int_equal(esm_outbox_drainer_redrive(f->d, 1, NULL, &err), 1);
    run_until(f, parked_at_least, (void *)2, 10000, "the redriven row refused and parked again");
    assert_int_equal(parked_count(f, NULL, 0), 1);
}

static void test_parked_rows_survive_a_restart(void **state)
{
    fixture *f = *state;
    add_row(f, f->url, BIG_ROW);
    add_row(f, f->url, "{\"n\":1}");
    start(f);
    run_until(f, settled, (void *)1, 10000, "the small row delivered");
    esm_outbox_drainer_destroy(f->d);
    f->d = NULL;
    esm_store_close(f->store);
    esm_err err = {0};
    f->store = esm_store_open(f->state_dir, &err);
    assert_non_null(f->store);
    start(f);
    cJSON *st = status(f);
    assert_int_equal(cJSON_GetObjectItem(st, "parked")->valueint, 1);
    const cJSON *sd = status_dest(st, f->url);
    assert_int_equal(cJSON_GetObjectItem(sd, "parked")->valueint, 1);
    assert_non_null(strstr(cJSON_GetObjectItem(sd, "last_park_reason")->valuestring, "413"));
    cJSON_Delete(st);
    /* not retried after the restart: it is not due */
    esm_outbox_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(esm_store_outbox_due(f->store, INT64_MAX, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    esm_store_outbox_rows_free(rows, n);
}

/* A payload of n bytes of valid JSON. */
static char *json_of_size(size_t n)
{
    char *p = malloc(n + 1);
    memset(p, 'x', n);
    memcpy(p, "{\"x\":\"", 6);
    memcpy(p + n - 2, "\"}", 2);
    p[n] = '\0';
    return p;
}

static void test_sqs_limit_and_kafka_message_max_bytes_park_without_sending(void **state)
{
    fixture *f = *state;
    /* no SQS client and no Kafka broker: the rows are refused before any request */
    char *big = json_of_size(1048577);
    add_row(f, "arn:aws:sqs:us-east-1:000000000000:failures", big);
    add_row(f, "kafka://127.0.0.1:1/failures", big);
    free(big);
    start(f);
    run_until(f, parked_at_least, (void *)2, 10000, "both rows parked");
    esm_outbox_row_info *rows = NULL;
    size_t n = 0;
    esm_err err = {0};
    assert_int_equal(esm_store_outbox_list(f->store, true, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(rows[0].reason, "record too large for sqs: 1048577 bytes"));
    assert_non_null(strstr(rows[0].reason, "1048576"));
    assert_non_null(strstr(rows[1].reason, "too large"));
    assert_int_equal(rows[1].size, 1048577);
    esm_store_outbox_infos_free(rows, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_http_413_parks_the_row_and_the_rows_behind_are_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redrive_requeues_and_delivers_once_the_cause_is_fixed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_redrive_of_a_row_still_refused_parks_it_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parked_rows_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sqs_limit_and_kafka_message_max_bytes_park_without_sending, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
