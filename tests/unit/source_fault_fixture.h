/* One source (SQS or Kinesis) running in-process on a libev loop against the fault server
 * (tests/unit/aws_fault_server.h): a real config, HTTP client, invoker (protocol "http", the
 * server's /fn), state store in a temporary folder and source, wired the way the engine's
 * slot_start does it. Helpers wait for a condition with a deadline, or run the loop for a
 * fixed time to count calls. */
#ifndef SOURCE_FAULT_FIXTURE_H
#define SOURCE_FAULT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "config/esm_config.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "pollers/esm_source.h"
#include "tests/unit/aws_fault_server.h"

typedef struct {
    struct ev_loop *loop;
    esm_http *http;
    af_server *srv;
    esm_config *cfg;
    esm_store *store;
    esm_invoker *inv;
    esm_source_stats stats;
    const esm_source_ops *ops;
    void *src;
    char dir[64];
    ev_timer tick; /* wakes the loop so conditions on the server's state are looked at */
} sf_fixture;

static inline void sf_on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* mapping: the JSON of one mapping object; the function is "fn". The source is created, not
 * started (sf_start), so a test can prepare the store first. */
static inline void sf_open(sf_fixture *f, const esm_source_ops *ops, const char *mapping)
{
    memset(f, 0, sizeof *f);
    if (getenv("SF_DEBUG")) esm_log_set_level(ESM_LOG_TRACE);
    f->srv = af_start();
    snprintf(f->dir, sizeof f->dir, "/tmp/esmd-fault-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"state_dir\":\"%s\",\"shutdown_grace_seconds\":2,\"aws\":{\"region\":"
             "\"us-east-1\",\"endpoints\":{\"sqs\":\"%s\",\"kinesis\":\"%s\"}},\"functions\":{"
             "\"fn\":{\"url\":\"%s/fn\",\"protocol\":\"http\",\"timeout_seconds\":2,"
             "\"max_concurrency\":2}},\"event_source_mappings\":[%s]}",
             f->dir, f->srv->endpoint, f->srv->endpoint, f->srv->endpoint, mapping);
    esm_config_problems problems = {0};
    f->cfg = esm_config_parse(doc, strlen(doc), &problems);
    if (!f->cfg) esm_config_problems_print(&problems, stdout);
    esm_config_problems_free(&problems);
    assert_non_null(f->cfg);
    assert_int_equal(f->cfg->n_mappings, 1);
    esm_err err;
    esm_err_clear(&err);
    f->store = esm_store_open(f->dir, &err);
    assert_non_null(f->store);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    f->inv = esm_invoker_create(f->loop, f->http, f->cfg->mappings[0].function, NULL);
    assert_non_null(f->inv);
    esm_source_env env = {.loop = f->loop,
                          .http = f->http,
                          .config = f->cfg,
                          .mapping = &f->cfg->mappings[0],
                          .invoker = f->inv,
                          .store = f->store,
                          .stats = &f->stats,
                          .log_ctx = "fault-test"};
    f->ops = ops;
    f->src = ops->create(&env, &err);
    assert_non_null(f->src);
    ev_timer_init(&f->tick, sf_on_tick, 0.02, 0.02);
    ev_timer_start(f->loop, &f->tick);
}

static inline void sf_start(sf_fixture *f)
{
    esm_err err;
    esm_err_clear(&err);
    assert_int_equal(f->ops->start(f->src, &err), 0);
}

static inline void sf_on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    *(bool *)w->data = true;
}

/* Runs the loop until cond holds or `seconds` pass; false on the deadline. */
#define SF_WAIT(f, cond, seconds)                                                                  \
    ({                                                                                             \
        bool sf_expired_ = false;                                                                  \
        ev_timer sf_deadline_;                                                                     \
        ev_timer_init(&sf_deadline_, sf_on_deadline, (seconds), 0.);                               \
        sf_deadline_.data = &sf_expired_;                                                          \
        ev_timer_start((f)->loop, &sf_deadline_);                                                  \
        while (!(cond) && !sf_expired_)                                                            \
            ev_run((f)->loop, EVRUN_ONCE);                                                         \
        ev_timer_stop((f)->loop, &sf_deadline_);                                                   \
        !sf_expired_ || (cond);                                                                    \
    })

/* Runs the loop for `seconds` (to count the calls a source makes in that time). */
static inline void sf_run_for(sf_fixture *f, double seconds)
{
    bool never = false;
    (void)SF_WAIT(f, never, seconds);
}

/* The source's /status object (caller frees). */
static inline char *sf_status(sf_fixture *f)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_source_status(f->ops, f->src, &b);
    char *s = strdup(esm_buf_cstr(&b));
    esm_buf_free(&b);
    return s;
}

static inline bool sf_status_has(sf_fixture *f, const char *needle)
{
    char *s = sf_status(f);
    bool has = strstr(s, needle) != NULL;
    if (!has) printf("status without %s: %s\n", needle, s);
    free(s);
    return has;
}

static inline void sf_on_stopped(void *arg)
{
    *(bool *)arg = true;
}

/* Stops the source cleanly and frees everything. */
static inline void sf_close(sf_fixture *f)
{
    bool stopped = false;
    f->ops->stop(f->src, sf_on_stopped, &stopped);
    assert_true(SF_WAIT(f, stopped, 10.));
    f->ops->destroy(f->src);
    ev_timer_stop(f->loop, &f->tick);
    esm_invoker_destroy(f->inv);
    esm_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    af_stop(f->srv);
    esm_store_close(f->store);
    esm_config_destroy(f->cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
}

#endif
