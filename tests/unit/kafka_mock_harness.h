/* A Kafka source (pollers/kafka/esm_kafka.c) against librdkafka's mock cluster (rdkafka_mock.h),
 * with the real invoker, store and store writer, and an in-process function that records the
 * offsets it receives. For fault tests the real broker cannot produce on demand: a broker going
 * down and up, request errors (rd_kafka_mock_push_request_errors), a slow checkpoint store.
 *
 *   kmock k;
 *   kmock_init(&k, "'BatchSize': 10");      // extra mapping keys, single-quoted JSON
 *   kmock_produce(&k, "v", 10);             // 10 records on partition 0
 *   kmock_start(&k);
 *   assert_true(kmock_run_until(&k, kmock_delivered_all, NULL, 20.0));
 *   kmock_stop(&k);                         // a clean stop (the consumer commits and leaves)
 *   assert_int_equal(kmock_group_committed(&k), 10);
 *   kmock_free(&k);
 *
 * Header-only (static functions) so every Kafka fault test can include it. */
#ifndef KAFKA_MOCK_HARNESS_H
#define KAFKA_MOCK_HARNESS_H

#include <arpa/inet.h>
#include <ev.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_writer.h"
#include "config/esm_config.h"
#include "filter/esm_filter.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "pollers/esm_source.h"

extern const esm_source_ops esm_kafka_source;

#define KMOCK_TOPIC "orders"
#define KMOCK_MAX_OFFSETS 4096
#define KMOCK_API_OFFSET_COMMIT 8 /* Kafka protocol ApiKey */

/* ---- the function: answers 200 {} and records the offsets of every event it gets --------- */

typedef struct {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    long long offsets[KMOCK_MAX_OFFSETS]; /* in arrival order, repeats included */
    size_t n;
    atomic_int delay_ms; /* each answer waits this long (a batch stays in flight) */
    atomic_int requests;
} kmock_fn;

static void kmock_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void kmock_fn_record(kmock_fn *f, const char *body, size_t len)
{
    pthread_mutex_lock(&f->mu);
    const char *p = body, *end = body + len;
    while ((p = memmem(p, (size_t)(end - p), "\"offset\":", 9)) != NULL) {
        p += 9;
        if (f->n < KMOCK_MAX_OFFSETS) f->offsets[f->n++] = strtoll(p, NULL, 10);
    }
    pthread_mutex_unlock(&f->mu);
}

static void *kmock_fn_conn(void *arg)
{
    kmock_fn *f = ((void **)arg)[0];
    int fd = (int)(intptr_t)((void **)arg)[1];
    free(arg);
    size_t cap = (size_t)8 << 20, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        char *hend;
        while (!(hend = memmem(buf, len, "\r\n\r\n", 4))) {
            ssize_t r = recv(fd, buf + len, cap - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        size_t head = (size_t)(hend - buf) + 4, clen = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < hend) clen = strtoul(cl + 17, NULL, 10);
        while (len < head + clen) {
            ssize_t r = recv(fd, buf + len, cap - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        atomic_fetch_add(&f->requests, 1);
        int d = atomic_load(&f->delay_ms);
        if (d > 0) usleep((useconds_t)d * 1000);
        kmock_fn_record(f, buf + head, clen);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        kmock_send_all(fd, ok, sizeof ok - 1);
        memmove(buf, buf + head + clen, len - head - clen);
        len -= head + clen;
    }
out:
    close(fd);
    free(buf);
    return NULL;
}

static void *kmock_fn_accept(void *arg)
{
    kmock_fn *f = arg;
    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        void **a = malloc(2 * sizeof *a);
        a[0] = f;
        a[1] = (void *)(intptr_t)fd;
        pthread_t t;
        pthread_create(&t, NULL, kmock_fn_conn, a);
        pthread_detach(t);
    }
}

static void kmock_fn_start(kmock_fn *f)
{
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(f->lfd, 16) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &al) != 0)
        abort();
    f->port = ntohs(a.sin_port);
    pthread_create(&f->thread, NULL, kmock_fn_accept, f);
}

/* ---- the harness ---------------------------------------------------------------------------- */

typedef struct {
    rd_kafka_t *prod; /* hosts the mock cluster and produces into it */
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[256];
    char group[64];
    char dir[64];
    kmock_fn fn;
    struct ev_loop *loop;
    ev_timer poll;
    esm_http *http;
    esm_config *cfg;
    esm_invoker *inv;
    esm_store *store;
    esm_store_writer *writer;
    esm_filter_set *filter;
    esm_source_stats stats;
    esm_source_env env;
    void *src;
    sqlite3 *locker; /* kmock_lock_store */
    long long produced;
    bool stopped;
} kmock;

static void kmock_on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* only wakes kmock_run_until's checks */
}

/* mapping_extra: more keys of the mapping (single quotes for double quotes). */
static void kmock_init(kmock *k, const char *mapping_extra)
{
    memset(k, 0, sizeof *k);
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", es, sizeof es) != RD_KAFKA_CONF_OK)
        abort();
    k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!k->prod) abort();
    k->mc = rd_kafka_handle_mock_cluster(k->prod);
    snprintf(k->bootstrap, sizeof k->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(k->mc));
    rd_kafka_mock_topic_create(k->mc, KMOCK_TOPIC, 1, 1);
    snprintf(k->group, sizeof k->group, "kmock-%d-%p", (int)getpid(), (void *)k);
    snprintf(k->dir, sizeof k->dir, "/tmp/esmd-kmock-XXXXXX");
    if (!mkdtemp(k->dir)) abort();
    kmock_fn_start(&k->fn);

    char json[4096];
    const char *start = mapping_extra && strstr(mapping_extra, "StartingPosition")
                            ? ""
                            : "'StartingPosition': 'TRIM_HORIZON', ";
    snprintf(json, sizeof json,
             "{'state_dir': '%s', 'functions': {'fn': {'url': "
             "'http://127.0.0.1:%d/2015-03-31/functions/fn/invocations', 'protocol': 'lambda', "
             "'timeout_seconds': 5}}, 'event_source_mappings': [{'FunctionName': 'fn', "
             "'Topics': ['" KMOCK_TOPIC "'], %s"
             "'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['%s']}}, "
             "'SelfManagedKafkaEventSourceConfig': {'ConsumerGroupId': '%s'}, "
             "'EsmdOptions': {'KafkaProperties': {'session.timeout.ms': '6000', "
             "'heartbeat.interval.ms': '500'}}%s%s}]}",
             k->dir, k->fn.port, start, k->bootstrap, k->group, mapping_extra ? ", " : "",
             mapping_extra ? mapping_extra : "");
    for (char *p = json; *p; p++)
        if (*p == '\'') *p = '"';
    esm_config_problems probs = {0};
    k->cfg = esm_config_parse(json, strlen(json), &probs);
    if (!k->cfg) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "config: %s: %s\n", probs.items[i].path, probs.items[i].message);
        abort();
    }
    esm_config_problems_free(&probs);

    k->loop = ev_loop_new(EVFLAG_AUTO);
    ev_timer_init(&k->poll, kmock_on_poll, 0.02, 0.02);
    ev_timer_start(k->loop, &k->poll);
    k->http = esm_http_create(k->loop);
    const esm_mapping_config *m = &k->cfg->mappings[0];
    k->inv = esm_invoker_create(k->loop, k->http, m->function, NULL);
    esm_err err = {0};
    k->store = esm_store_open(k->dir, &err);
    k->writer = k->store ? esm_store_writer_create(k->store, k->loop, &err) : NULL;
    if (!k->http || !k->inv || !k->writer) abort();
    if (m->n_filters) {
        char why[256];
        k->filter = esm_filter_compile((const char *const *)m->filter_patterns, m->n_filters,
                                       ESM_FILTER_SRC_KAFKA, why, sizeof why);
        if (!k->filter) abort();
    }
}

/* Produces n records "<prefix>-<i>" to partition 0 and waits until the mock broker has them. */
static void kmock_produce(kmock *k, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char v[128];
        int len = snprintf(v, sizeof v, "%s-%lld", prefix, k->produced++);
        if (rd_kafka_producev(k->prod, RD_KAFKA_V_TOPIC(KMOCK_TOPIC), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_VALUE(v, (size_t)len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
            abort();
    }
    if (rd_kafka_flush(k->prod, 10000)) abort();
}

/* Produces one record with this value. */
static void kmock_produce_value(kmock *k, const char *value)
{
    if (rd_kafka_producev(k->prod, RD_KAFKA_V_TOPIC(KMOCK_TOPIC), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END))
        abort();
    k->produced++;
    if (rd_kafka_flush(k->prod, 10000)) abort();
}

/* Creates and starts a Kafka source (again after kmock_stop: same store, same group). */
static void kmock_start(kmock *k)
{
    k->env = (esm_source_env){.loop = k->loop,
                              .http = k->http,
                              .config = k->cfg,
                              .mapping = &k->cfg->mappings[0],
                              .invoker = k->inv,
                              .filter = k->filter,
                              .store = k->store,
                              .writer = k->writer,
                              .stats = &k->stats,
                              .log_ctx = "kmock"};
    esm_err err = {0};
    k->src = esm_kafka_source.create(&k->env, &err);
    if (!k->src || esm_kafka_source.start(k->src, &err) != 0) {
        fprintf(stderr, "kafka source: %s\n", err.message);
        abort();
    }
    k->stopped = false;
}

typedef bool (*kmock_pred)(kmock *k, void *arg);

/* Runs the loop until pred holds (true) or timeout_s passes (false). */
static bool kmock_run_until(kmock *k, kmock_pred pred, void *arg, double timeout_s)
{
    ev_now_update(k->loop);
    ev_tstamp deadline = ev_now(k->loop) + timeout_s;
    while (!pred(k, arg)) {
        if (ev_now(k->loop) > deadline) return false;
        ev_run(k->loop, EVRUN_ONCE);
    }
    return true;
}

static void kmock_on_stopped(void *arg)
{
    ((kmock *)arg)->stopped = true;
}

static bool kmock_is_stopped(kmock *k, void *arg)
{
    (void)arg;
    return k->stopped;
}

/* A clean stop: batches in flight finish, stored offsets are committed, the consumer leaves. */
static void kmock_stop(kmock *k)
{
    if (!k->src) return;
    esm_kafka_source.stop(k->src, kmock_on_stopped, k);
    if (!kmock_run_until(k, kmock_is_stopped, NULL, 30.0)) abort();
    esm_kafka_source.destroy(k->src);
    k->src = NULL;
}

/* A client of the test's group (not subscribed: it only commits and reads offsets). */
static rd_kafka_t *kmock_group_client(kmock *k)
{
    char es[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstrap, es, sizeof es) ||
        rd_kafka_conf_set(conf, "group.id", k->group, es, sizeof es))
        abort();
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es);
    if (!c) abort();
    return c;
}

/* Commits offset for partition 0 to the group, as another consumer or an operator would. */
static void kmock_group_commit(kmock *k, long long offset)
{
    rd_kafka_t *c = kmock_group_client(k);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, KMOCK_TOPIC, 0)->offset = offset;
    if (rd_kafka_commit(c, l, 0)) abort();
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
}

/* The group's committed offset of partition 0 on the mock cluster (-1 none, -2 unreadable). */
static long long kmock_group_committed(kmock *k)
{
    rd_kafka_t *c = kmock_group_client(k);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, KMOCK_TOPIC, 0);
    long long off = rd_kafka_committed(c, l, 10000) ? -2 : l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return off < 0 && off != -2 ? -1 : off;
}

/* Holds the store's write lock from another connection: checkpoint writes wait (up to the
 * store's busy timeout) until kmock_unlock_store. */
static void kmock_lock_store(kmock *k)
{
    char path[128];
    snprintf(path, sizeof path, "%s", esm_store_path(k->store));
    if (sqlite3_open(path, &k->locker) != SQLITE_OK ||
        sqlite3_exec(k->locker, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        abort();
}

static void kmock_unlock_store(kmock *k)
{
    sqlite3_exec(k->locker, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(k->locker);
    k->locker = NULL;
}

/* How many times offset o reached the function. */
static int kmock_times_delivered(kmock *k, long long o)
{
    int n = 0;
    pthread_mutex_lock(&k->fn.mu);
    for (size_t i = 0; i < k->fn.n; i++)
        if (k->fn.offsets[i] == o) n++;
    pthread_mutex_unlock(&k->fn.mu);
    return n;
}

/* Every offset produced reached the function at least once. */
static bool kmock_delivered_all(kmock *k, void *arg)
{
    (void)arg;
    for (long long o = 0; o < k->produced; o++)
        if (kmock_times_delivered(k, o) == 0) return false;
    return true;
}

static void kmock_free(kmock *k)
{
    if (k->src) esm_kafka_source.destroy(k->src);
    if (k->locker) kmock_unlock_store(k);
    esm_store_writer_destroy(k->writer);
    esm_store_close(k->store);
    esm_invoker_destroy(k->inv);
    esm_http_destroy(k->http);
    esm_filter_destroy(k->filter);
    ev_timer_stop(k->loop, &k->poll);
    ev_loop_destroy(k->loop);
    esm_config_destroy(k->cfg);
    rd_kafka_destroy(k->prod);
    shutdown(k->fn.lfd, SHUT_RDWR);
    close(k->fn.lfd);
    pthread_join(k->fn.thread, NULL);
    pthread_mutex_destroy(&k->fn.mu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", k->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", k->dir);
}

#endif
