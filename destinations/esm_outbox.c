#include "destinations/esm_outbox.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "destinations/esm_backoff.h"
#include "destinations/esm_dest.h"
#include "destinations/esm_dest_file.h"
#include "destinations/esm_dest_refusal.h"
#include "destinations/esm_kafka_producer.h"
#include "kafka/esm_kafka_client.h"

#define LOG_CTX "outbox"
#define INDEX_PRELOAD_ROWS 10000
#define DEDUPE_PRUNE_EVERY_MS (10 * 60 * 1000)

/* A row this drainer knows is in the outbox (for per-destination depth and age). */
typedef struct {
    int64_t id;
    int64_t created_at_ms;
} known_row;

/* Per destination string: parse result, ordering / blocking state, status. */
typedef struct dest_state {
    char *name;    /* the destination string as stored */
    char *display; /* redacted, for logs and status */
    esm_dest dest; /* valid when parse_ok */
    bool parse_ok;
    char parse_error[512];
    char *queue_url; /* sqs: GetQueueUrl result, cached */
    bool region_warned;
    int in_flight;
    int consecutive_failures;
    int64_t blocked_until_ms; /* after a failure: its other rows wait until then */
    char last_error[512];
    int64_t last_error_at_ms;
    int64_t last_success_at_ms;
    uint64_t delivered;
    uint64_t failed_attempts;
    known_row *rows; /* sorted by id */
    size_t n_rows, cap_rows;
    struct dest_state *next;
} dest_state;

typedef struct job {
    esm_outbox_drainer *d;
    dest_state *ds;
    int64_t id;
    int attempts;
    char *mapping;
    char *payload;
    size_t payload_len;
    void *key;
    size_t key_len;
    esm_http_call *call; /* http / sqs / sns request in flight */
    char *body;          /* sqs request body */
    bool in_kafka;       /* owned by a producer until its delivery report */
    struct job *prev, *next;
} job;

struct esm_outbox_drainer {
    struct ev_loop *loop;
    esm_store *store;
    esm_outbox_env env;
    char *region;
    char *account;
    esm_kafka_producers *kafka;
    ev_timer timer;
    dest_state *dests;
    job *jobs;
    int in_flight;
    bool closing;
    uint64_t delivered, failed_attempts, deferred, parked;
    int64_t store_error_logged_ms;
    int64_t dedupe_pruned_at_ms;
};

/* ---- known rows ---- */

static size_t index_find(const dest_state *ds, int64_t id, bool *found)
{
    size_t lo = 0, hi = ds->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->rows[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < ds->n_rows && ds->rows[lo].id == id;
    return lo;
}

static void index_add(dest_state *ds, int64_t id, int64_t created_at_ms)
{
    bool found;
    size_t at = index_find(ds, id, &found);
    if (found) return;
    if (ds->n_rows == ds->cap_rows) {
        size_t cap = ds->cap_rows ? ds->cap_rows * 2 : 16;
        known_row *r = realloc(ds->rows, cap * sizeof *r);
        if (!r) return; /* status only: depth undercounts */
        ds->rows = r;
        ds->cap_rows = cap;
    }
    memmove(ds->rows + at + 1, ds->rows + at, (ds->n_rows - at) * sizeof *ds->rows);
    ds->rows[at] = (known_row){id, created_at_ms};
    ds->n_rows++;
}

static void index_remove(dest_state *ds, int64_t id)
{
    bool found;
    size_t at = index_find(ds, id, &found);
    if (!found) return;
    memmove(ds->rows + at, ds->rows + at + 1, (ds->n_rows - at - 1) * sizeof *ds->rows);
    ds->n_rows--;
}

/* ---- destinations ---- */

static dest_state *dest_get(esm_outbox_drainer *d, const char *name)
{
    for (dest_state *ds = d->dests; ds; ds = ds->next)
        if (strcmp(ds->name, name) == 0) return ds;
    dest_state *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->name = strdup(name);
    char shown[1024];
    esm_dest_redact(name, shown, sizeof shown);
    ds->display = strdup(shown);
    if (!ds->name || !ds->display) {
        free(ds->name);
        free(ds->display);
        free(ds);
        return NULL;
    }
    esm_err err = {0};
    ds->parse_ok = esm_dest_parse(name, &ds->dest, &err) == 0;
    if (!ds->parse_ok) {
        snprintf(ds->parse_error, sizeof ds->parse_error, "invalid destination: %.480s",
                 err.message);
        ESM_ERROR(LOG_CTX, "%s: its rows stay in the outbox until fixed", ds->parse_error);
    }
    ds->next = d->dests;
    d->dests = ds;
    return ds;
}

static void dest_free(dest_state *ds)
{
    free(ds->name);
    free(ds->display);
    free(ds->queue_url);
    free(ds->rows);
    free(ds);
}

/* ---- scheduling ---- */

static void arm(esm_outbox_drainer *d, double seconds)
{
    if (d->closing) return;
    ev_timer_stop(d->loop, &d->timer);
    ev_timer_set(&d->timer, seconds < 0 ? 0 : seconds, 0.);
    ev_timer_start(d->loop, &d->timer);
}

/* Scan again soon, unless a scan is already due sooner. */
static void schedule_scan_now(esm_outbox_drainer *d)
{
    if (d->closing) return;
    if (ev_is_active(&d->timer) && ev_timer_remaining(d->loop, &d->timer) <= 0.0) return;
    arm(d, 0);
}

static void log_store_error(esm_outbox_drainer *d, const char *what, const esm_err *err)
{
    int64_t now = esm_now_ms();
    if (now - d->store_error_logged_ms < 10000) return;
    d->store_error_logged_ms = now;
    ESM_ERROR(LOG_CTX, "%s: %s", what, err->message);
}

/* ---- completion ---- */

static void job_free(job *j)
{
    free(j->mapping);
    free(j->payload);
    free(j->key);
    free(j->body);
    free(j);
}

static void job_unlink(job *j)
{
    esm_outbox_drainer *d = j->d;
    if (j->prev)
        j->prev->next = j->next;
    else
        d->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    j->ds->in_flight--;
    d->in_flight--;
}

/* The destination refused the row for good: park it so the rows behind it go on. */
static void park(esm_outbox_drainer *d, dest_state *ds, const job *j, const char *reason,
                 int64_t now)
{
    esm_err err = {0};
    if (esm_store_outbox_park(d->store, j->id, now, reason, &err) < 0) {
        /* not parked: keep it as a failing row so it is neither lost nor retried hot */
        log_store_error(d, "outbox park failed", &err);
        if (esm_store_outbox_retry_later(d->store, j->id, now + ESM_BACKOFF_CAP_MS, reason, &err) <
            0)
            log_store_error(d, "outbox retry_later failed", &err);
        return;
    }
    index_remove(ds, j->id);
    d->parked++;
    /* the destination answered: it is up, the rows behind this one need not wait */
    ds->consecutive_failures = 0;
    ds->blocked_until_ms = 0;
    ESM_WARN(LOG_CTX,
             "row %lld (mapping %s) to %s parked: %s; the rows behind it are delivered "
             "(GET /outbox/parked lists parked rows, POST /outbox/parked/redrive re-queues them)",
             (long long)j->id, j->mapping ? j->mapping : "?", ds->display, reason);
}

/* Every delivery ends here exactly once: error NULL = the destination confirmed it;
 * permanent = it refused this row for good (destinations/esm_dest_refusal.h). */
static void job_done(job *j, const char *error, bool permanent)
{
    esm_outbox_drainer *d = j->d;
    dest_state *ds = j->ds;
    job_unlink(j);
    int64_t now = esm_now_ms();
    esm_err err = {0};
    if (!error) {
        if (esm_store_outbox_delete(d->store, j->id, &err) < 0)
            log_store_error(d, "outbox delete failed (the row will be delivered again)", &err);
        index_remove(ds, j->id);
        if (ds->consecutive_failures > 0)
            ESM_INFO(LOG_CTX, "destination %s delivers again after %d failed attempts", ds->display,
                     ds->consecutive_failures);
        ds->consecutive_failures = 0;
        ds->blocked_until_ms = 0;
        ds->last_success_at_ms = now;
        ds->delivered++;
        d->delivered++;
        ESM_DEBUG(LOG_CTX, "row %lld delivered to %s", (long long)j->id, ds->display);
    } else if (d->closing) {
        /* stopping: the row stays as it is and is due again at the next start */
        ESM_DEBUG(LOG_CTX, "row %lld to %s left in the outbox: %s", (long long)j->id, ds->display,
                  error);
    } else if (permanent) {
        ds->failed_attempts++;
        d->failed_attempts++;
        snprintf(ds->last_error, sizeof ds->last_error, "%s", error);
        ds->last_error_at_ms = now;
        park(d, ds, j, error, now);
    } else {
        ds->consecutive_failures++;
        ds->failed_attempts++;
        d->failed_attempts++;
        /* the destination's streak, not the row's attempts: deferred rows count attempts too,
         * and a destination that recovered starts again at 1 s */
        int64_t delay = ds->parse_ok
                            ? esm_backoff_delay_ms(ds->consecutive_failures, esm_backoff_random())
                            : ESM_BACKOFF_CAP_MS;
        int64_t next = now + delay;
        if (next > ds->blocked_until_ms) ds->blocked_until_ms = next;
        snprintf(ds->last_error, sizeof ds->last_error, "%s", error);
        ds->last_error_at_ms = now;
        if (esm_store_outbox_retry_later(d->store, j->id, next, error, &err) < 0)
            log_store_error(d, "outbox retry_later failed", &err);
        ESM_WARN(LOG_CTX, "row %lld to %s failed (attempt %d): %s; next try in %.1f s",
                 (long long)j->id, ds->display, j->attempts + 1, error, (double)delay / 1000.0);
    }
    job_free(j);
    schedule_scan_now(d);
}

/* ---- senders ---- */

static void on_http_done(const esm_http_response *resp, void *arg)
{
    job *j = arg;
    j->call = NULL;
    char msg[512];
    if (resp->curl_code != 0 || resp->status == 0) {
        snprintf(msg, sizeof msg, "%s", resp->timed_out ? "request timed out" : resp->error);
        job_done(j, msg, false);
    } else if (resp->status < 200 || resp->status > 299) {
        snprintf(msg, sizeof msg, "HTTP %ld: %.200s", resp->status, resp->body ? resp->body : "");
        job_done(j, msg, esm_refusal_http_permanent(resp->status));
    } else {
        job_done(j, NULL, false);
    }
}

static const char *send_http(job *j)
{
    esm_outbox_drainer *d = j->d;
    esm_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = j->ds->dest.target;
    req.body = j->payload;
    req.body_len = j->payload_len;
    req.headers = curl_slist_append(NULL, "Content-Type: application/json");
    req.timeout_ms = d->env.request_timeout_ms;
    req.connect_timeout_ms = 5000;
    req.max_response_bytes = 64 * 1024;
    req.cb = on_http_done;
    req.arg = j;
    j->call = esm_http_send(d->env.http, &req);
    return j->call ? NULL : "could not start the HTTP request";
}

static void aws_error(const esm_aws_result *res, char *msg, size_t len)
{
    snprintf(msg, len, "%s: %s", res->error_type[0] ? res->error_type : "error", res->message);
}

static void on_sqs_sent(const esm_aws_result *res, void *arg)
{
    job *j = arg;
    j->call = NULL;
    if (res->ok) {
        job_done(j, NULL, false);
        return;
    }
    if (!strcmp(res->error_type, "QueueDoesNotExist") ||
        !strcmp(res->error_type, "AWS.SimpleQueueService.NonExistentQueue")) {
        free(j->ds->queue_url); /* maybe recreated under a new URL */
        j->ds->queue_url = NULL;
    }
    char msg[600];
    aws_error(res, msg, sizeof msg);
    job_done(j, msg, esm_refusal_aws_permanent(ESM_DEST_SQS, res->error_type));
}

static const char *sqs_send(job *j)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, "{\"QueueUrl\":");
    esm_buf_json_cstr(&b, j->ds->queue_url);
    esm_buf_puts(&b, ",\"MessageBody\":");
    esm_buf_json_str(&b, j->payload, j->payload_len);
    esm_buf_putc(&b, '}');
    if (b.failed) {
        esm_buf_free(&b);
        return "out of memory";
    }
    j->call = esm_aws_json_call(j->d->env.sqs, "AmazonSQS.SendMessage", "1.0", b.data, b.len,
                                j->d->env.request_timeout_ms, on_sqs_sent, j);
    esm_buf_free(&b);
    return j->call ? NULL : "could not start the SQS request";
}

static void on_queue_url(const esm_aws_result *res, void *arg)
{
    job *j = arg;
    j->call = NULL;
    char msg[600];
    if (!res->ok) {
        aws_error(res, msg, sizeof msg);
        job_done(j, msg, false); /* about the queue, not the row */
        return;
    }
    const cJSON *url = res->json ? cJSON_GetObjectItemCaseSensitive(res->json, "QueueUrl") : NULL;
    if (!cJSON_IsString(url) || !url->valuestring[0]) {
        job_done(j, "GetQueueUrl: the response has no QueueUrl", false);
        return;
    }
    free(j->ds->queue_url);
    j->ds->queue_url = strdup(url->valuestring);
    if (!j->ds->queue_url) {
        job_done(j, "out of memory", false);
        return;
    }
    const char *e = sqs_send(j);
    if (e) job_done(j, e, false);
}

static const char *send_sqs(job *j)
{
    esm_outbox_drainer *d = j->d;
    dest_state *ds = j->ds;
    if (!d->env.sqs) return "no SQS endpoint configured";
    if (!ds->region_warned && d->region && strcmp(d->region, ds->dest.region) != 0) {
        ds->region_warned = true;
        ESM_WARN(LOG_CTX,
                 "destination %s is in region %s; sending through the configured %s "
                 "endpoint %s",
                 ds->display, ds->dest.region, d->region, esm_aws_endpoint(d->env.sqs));
    }
    if (ds->queue_url) return sqs_send(j);
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, "{\"QueueName\":");
    esm_buf_json_cstr(&b, ds->dest.name);
    if (!d->account || strcmp(d->account, ds->dest.account) != 0) {
        esm_buf_puts(&b, ",\"QueueOwnerAWSAccountId\":");
        esm_buf_json_cstr(&b, ds->dest.account);
    }
    esm_buf_putc(&b, '}');
    if (b.failed) {
        esm_buf_free(&b);
        return "out of memory";
    }
    j->call = esm_aws_json_call(d->env.sqs, "AmazonSQS.GetQueueUrl", "1.0", b.data, b.len,
                                d->env.request_timeout_ms, on_queue_url, j);
    esm_buf_free(&b);
    return j->call ? NULL : "could not start the SQS request";
}

static void on_sns_published(const esm_aws_result *res, void *arg)
{
    job *j = arg;
    j->call = NULL;
    if (res->ok) {
        job_done(j, NULL, false);
        return;
    }
    char msg[600];
    aws_error(res, msg, sizeof msg);
    job_done(j, msg, esm_refusal_aws_permanent(ESM_DEST_SNS, res->error_type));
}

static const char *send_sns(job *j)
{
    esm_outbox_drainer *d = j->d;
    if (!d->env.sns) return "no SNS endpoint configured";
    const char *params[] = {"Action",   "Publish",          "Version", "2010-03-31",
                            "TopicArn", j->ds->dest.target, "Message", j->payload};
    j->call =
        esm_aws_query_call(d->env.sns, params, 4, d->env.request_timeout_ms, on_sns_published, j);
    return j->call ? NULL : "could not start the SNS request";
}

static void on_kafka_delivered(void *opaque, const char *error, bool permanent)
{
    job *j = opaque;
    j->in_kafka = false;
    job_done(j, error, permanent);
}

static const char *send_kafka(job *j, char *msg, size_t len, bool *permanent)
{
    esm_outbox_drainer *d = j->d;
    const esm_mapping_config *source =
        d->env.kafka_source && j->mapping ? d->env.kafka_source(j->mapping, d->env.kafka_source_arg)
                                          : NULL;
    char *joined = NULL;
    const char *bootstrap = j->ds->dest.bootstrap;
    if (!bootstrap[0]) {
        bootstrap = joined = source ? esm_kafka_bootstrap_join(source) : NULL;
        if (!bootstrap || !*bootstrap) {
            free(joined);
            snprintf(msg, len,
                     "no bootstrap servers known for mapping %s (kafka://TOPIC needs "
                     "the source cluster)",
                     j->mapping ? j->mapping : "?");
            return msg;
        }
    }
    esm_err err = {0};
    j->in_kafka = true;
    int rc = esm_kafka_produce(d->kafka, bootstrap,
                               esm_kafka_dest_security(j->ds->dest.bootstrap, source),
                               j->ds->dest.topic, j->key, j->key_len, j->payload, j->payload_len,
                               on_kafka_delivered, j, &err);
    free(joined);
    if (rc != 0) {
        j->in_kafka = false;
        *permanent = !err.retriable;
        snprintf(msg, len, "%s", err.message);
        return msg;
    }
    return NULL;
}

/* Starts one delivery; the row's heap strings move into the job. */
static void job_start(esm_outbox_drainer *d, dest_state *ds, esm_outbox_row *row)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return; /* the row stays due; the next scan retries */
    j->d = d;
    j->ds = ds;
    j->id = row->id;
    j->attempts = row->attempts;
    j->mapping = row->mapping;
    j->payload = row->payload;
    j->payload_len = row->payload_len;
    j->key = row->key;
    j->key_len = row->key_len;
    row->mapping = NULL;
    row->payload = NULL;
    row->key = NULL;
    j->next = d->jobs;
    if (d->jobs) d->jobs->prev = j;
    d->jobs = j;
    ds->in_flight++;
    d->in_flight++;

    char msg[600];
    const char *error = NULL;
    bool permanent = false;
    size_t max = ds->parse_ok ? esm_dest_max_payload(ds->dest.kind) : 0;
    if (!ds->parse_ok) {
        error = ds->parse_error;
    } else if (max && j->payload_len > max) {
        /* AWS would refuse it too; nothing is truncated, the row waits for an operator */
        snprintf(msg, sizeof msg, "record too large for %s: %zu bytes, the limit is %zu bytes",
                 esm_dest_kind_name(ds->dest.kind), j->payload_len, max);
        error = msg;
        permanent = true;
    } else {
        switch (ds->dest.kind) {
        case ESM_DEST_HTTP:
            error = send_http(j);
            break;
        case ESM_DEST_SQS:
            error = send_sqs(j);
            break;
        case ESM_DEST_SNS:
            error = send_sns(j);
            break;
        case ESM_DEST_KAFKA:
            error = send_kafka(j, msg, sizeof msg, &permanent);
            break;
        case ESM_DEST_FILE: {
            esm_err err = {0};
            if (esm_dest_file_append(ds->dest.target, j->payload, j->payload_len, &err) != 0) {
                snprintf(msg, sizeof msg, "%s", err.message);
                error = msg;
            }
            job_done(j, error, false);
            return;
        }
        }
    }
    if (error) job_done(j, error, permanent);
}

static bool row_in_flight(const esm_outbox_drainer *d, int64_t id)
{
    for (const job *j = d->jobs; j; j = j->next)
        if (j->id == id) return true;
    return false;
}

/* ---- the scan ---- */

/* Dedupe keys outlive their rows by ESM_STORE_DEDUPE_RETENTION_MS; forget older ones. */
static void prune_dedupe(esm_outbox_drainer *d, int64_t now)
{
    if (d->dedupe_pruned_at_ms && now - d->dedupe_pruned_at_ms < DEDUPE_PRUNE_EVERY_MS) return;
    d->dedupe_pruned_at_ms = now;
    esm_err err = {0};
    int64_t n = esm_store_outbox_prune_dedupe(d->store, now, &err);
    if (n < 0)
        log_store_error(d, "pruning dedupe keys failed", &err);
    else if (n > 0)
        ESM_DEBUG(LOG_CTX, "%lld expired dedupe key(s) forgotten", (long long)n);
}

static void scan(esm_outbox_drainer *d)
{
    if (d->closing) return;
    int64_t now = esm_now_ms();
    prune_dedupe(d, now);
    size_t limit = (size_t)d->env.max_in_flight * 4;
    if (limit < 64) limit = 64;
    esm_outbox_row *rows = NULL;
    size_t n = 0;
    esm_err err = {0};
    if (esm_store_outbox_due(d->store, now, limit, &rows, &n, &err) < 0) {
        log_store_error(d, "outbox scan failed", &err);
        arm(d, 1.0);
        return;
    }
    bool changed = false, waiting = false;
    for (size_t i = 0; i < n; i++) {
        esm_outbox_row *row = &rows[i];
        dest_state *ds = dest_get(d, row->destination);
        if (!ds) {
            waiting = true;
            continue;
        }
        index_add(ds, row->id, row->created_at_ms);
        if (row_in_flight(d, row->id)) {
            waiting = true;
        } else if (ds->blocked_until_ms > now) {
            /* keep order and spare a failing destination: wait behind the failed row */
            char why[700];
            snprintf(why, sizeof why, "not attempted: destination failing: %s", ds->last_error);
            if (esm_store_outbox_retry_later(d->store, row->id, ds->blocked_until_ms, why, &err) <
                0)
                log_store_error(d, "outbox retry_later failed", &err);
            d->deferred++;
            changed = true;
        } else if (d->in_flight >= d->env.max_in_flight ||
                   ds->in_flight >= d->env.max_in_flight_per_destination) {
            waiting = true;
        } else {
            job_start(d, ds, row);
            changed = true;
        }
    }
    esm_store_outbox_rows_free(rows, n);
    if (d->closing) return;
    if (n == limit && changed) {
        arm(d, 0);
        return;
    }
    double wait = (double)d->env.idle_scan_ms / 1000.0;
    int64_t next_due = 0;
    int r = esm_store_outbox_next_due(d->store, &next_due, &err);
    if (r == 0 && next_due > now && (double)(next_due - now) / 1000.0 < wait)
        wait = (double)(next_due - now) / 1000.0;
    else if (r == 0 && next_due <= now && !waiting && d->in_flight == 0)
        wait = 0.01; /* a row arrived during the scan */
    /* when waiting on deliveries in flight, their completion rescans */
    arm(d, wait);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    scan(w->data);
}

/* ---- lifecycle ---- */

static void preload_index(esm_outbox_drainer *d)
{
    esm_outbox_row *rows = NULL;
    size_t n = 0;
    esm_err err = {0};
    if (esm_store_outbox_due(d->store, INT64_MAX, INDEX_PRELOAD_ROWS, &rows, &n, &err) < 0) {
        log_store_error(d, "outbox preload failed", &err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dest_state *ds = dest_get(d, rows[i].destination);
        if (!ds) continue;
        index_add(ds, rows[i].id, rows[i].created_at_ms);
        if (rows[i].last_error && !ds->last_error[0])
            snprintf(ds->last_error, sizeof ds->last_error, "%s", rows[i].last_error);
    }
    esm_store_outbox_rows_free(rows, n);
    if (n) ESM_INFO(LOG_CTX, "%zu failure record(s) waiting in the outbox", n);
}

esm_outbox_drainer *esm_outbox_drainer_create(struct ev_loop *loop, esm_store *store,
                                              const esm_outbox_env *env)
{
    if (!loop || !store || !env || !env->http) return NULL;
    esm_outbox_drainer *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->loop = loop;
    d->store = store;
    d->env = *env;
    if (d->env.max_in_flight <= 0) d->env.max_in_flight = 16;
    if (d->env.max_in_flight_per_destination <= 0) d->env.max_in_flight_per_destination = 1;
    if (d->env.request_timeout_ms <= 0) d->env.request_timeout_ms = 30000;
    if (d->env.kafka_message_timeout_ms <= 0) d->env.kafka_message_timeout_ms = 30000;
    if (d->env.kafka_flush_timeout_ms <= 0) d->env.kafka_flush_timeout_ms = 5000;
    if (d->env.idle_scan_ms <= 0) d->env.idle_scan_ms = 1000;
    d->region = env->region ? strdup(env->region) : NULL;
    d->account = env->account ? strdup(env->account) : NULL;
    d->env.region = d->region;
    d->env.account = d->account;
    d->kafka = esm_kafka_producers_create(loop, d->env.kafka_message_timeout_ms);
    if (!d->kafka || (env->region && !d->region) || (env->account && !d->account)) {
        esm_kafka_producers_destroy(d->kafka, 0);
        free(d->region);
        free(d->account);
        free(d);
        return NULL;
    }
    ev_timer_init(&d->timer, on_timer, 0., 0.);
    d->timer.data = d;
    preload_index(d);
    arm(d, 0);
    return d;
}

void esm_outbox_drainer_kick(esm_outbox_drainer *d)
{
    if (d) schedule_scan_now(d);
}

void esm_outbox_drainer_destroy(esm_outbox_drainer *d)
{
    if (!d) return;
    d->closing = true;
    ev_timer_stop(d->loop, &d->timer);
    /* HTTP / AWS calls: cancel (no callback); their rows stay due */
    job *j = d->jobs;
    while (j) {
        job *next = j->next;
        if (!j->in_kafka) {
            if (j->call) esm_http_cancel(j->call);
            j->call = NULL;
            job_unlink(j);
            job_free(j);
        }
        j = next;
    }
    /* Kafka: bounded flush; reports arrive through job_done (confirmed rows are deleted) */
    esm_kafka_producers_destroy(d->kafka, d->env.kafka_flush_timeout_ms);
    while (d->jobs) { /* none expected: the purge reports every message */
        j = d->jobs;
        job_unlink(j);
        job_free(j);
    }
    while (d->dests) {
        dest_state *ds = d->dests;
        d->dests = ds->next;
        dest_free(ds);
    }
    free(d->region);
    free(d->account);
    free(d);
}

void esm_outbox_drainer_counters(const esm_outbox_drainer *d, esm_outbox_counters *out)
{
    out->delivered = d->delivered;
    out->failed_attempts = d->failed_attempts;
    out->deferred = d->deferred;
    out->parked = d->parked;
    out->in_flight = d->in_flight;
}

static const esm_outbox_parked_dest *parked_of(const esm_outbox_parked_dest *v, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].destination, name) == 0) return &v[i];
    return NULL;
}

void esm_outbox_drainer_status(esm_outbox_drainer *d, esm_buf *json)
{
    int64_t now = esm_now_ms();
    esm_err err = {0};
    int64_t depth = esm_store_outbox_depth(d->store, NULL, &err);
    /* parked rows come from the store: they survive a restart, the drainer's memory does not */
    esm_outbox_parked_dest *pk = NULL;
    size_t n_pk = 0;
    int64_t parked = 0;
    if (esm_store_outbox_parked_by_dest(d->store, &pk, &n_pk, &err) < 0) parked = -1;
    for (size_t i = 0; i < n_pk; i++) {
        parked += pk[i].count;
        dest_get(d, pk[i].destination); /* a destination with only parked rows is shown too */
    }
    esm_buf_printf(json,
                   "{\"depth\":%lld,\"in_flight\":%d,\"delivered\":%llu,"
                   "\"failed_attempts\":%llu,\"deferred\":%llu,\"parked\":%lld,"
                   "\"parked_since_start\":%llu,\"destinations\":[",
                   (long long)depth, d->in_flight, (unsigned long long)d->delivered,
                   (unsigned long long)d->failed_attempts, (unsigned long long)d->deferred,
                   (long long)parked, (unsigned long long)d->parked);
    bool first = true;
    for (dest_state *ds = d->dests; ds; ds = ds->next) {
        if (!first) esm_buf_putc(json, ',');
        first = false;
        esm_buf_puts(json, "{\"destination\":");
        esm_buf_json_cstr(json, ds->display);
        esm_buf_puts(json, ",\"kind\":");
        esm_buf_json_cstr(json, ds->parse_ok ? esm_dest_kind_name(ds->dest.kind) : "invalid");
        esm_buf_printf(json, ",\"depth\":%zu,\"oldest_age_ms\":", ds->n_rows);
        if (ds->n_rows)
            esm_buf_printf(json, "%lld", (long long)(now - ds->rows[0].created_at_ms));
        else
            esm_buf_puts(json, "null");
        esm_buf_printf(json, ",\"in_flight\":%d,\"consecutive_failures\":%d,\"last_error\":",
                       ds->in_flight, ds->consecutive_failures);
        const char *le = ds->parse_ok ? ds->last_error : ds->parse_error;
        if (le[0])
            esm_buf_json_cstr(json, le);
        else
            esm_buf_puts(json, "null");
        esm_buf_puts(json, ",\"last_error_at\":");
        esm_buf_json_time(json, ds->last_error_at_ms);
        esm_buf_puts(json, ",\"last_success_at\":");
        esm_buf_json_time(json, ds->last_success_at_ms);
        esm_buf_puts(json, ",\"blocked_until\":");
        esm_buf_json_time(json, ds->blocked_until_ms > now ? ds->blocked_until_ms : 0);
        esm_buf_printf(json, ",\"delivered\":%llu,\"failed_attempts\":%llu",
                       (unsigned long long)ds->delivered, (unsigned long long)ds->failed_attempts);
        const esm_outbox_parked_dest *p = parked_of(pk, n_pk, ds->name);
        esm_buf_printf(json,
                       ",\"parked\":%lld,\"last_park_reason\":", p ? (long long)p->count : 0LL);
        if (p && p->last_reason)
            esm_buf_json_cstr(json, p->last_reason);
        else
            esm_buf_puts(json, "null");
        esm_buf_puts(json, ",\"last_parked_at\":");
        esm_buf_json_time(json, p ? p->last_parked_at_ms : 0);
        esm_buf_putc(json, '}');
    }
    esm_buf_puts(json, "]}");
    esm_store_outbox_parked_dests_free(pk, n_pk);
}

int64_t esm_outbox_drainer_redrive(esm_outbox_drainer *d, int64_t id, const char *destination,
                                   esm_err *err)
{
    int64_t now = esm_now_ms(), total = 0;
    if (!destination) {
        total = esm_store_outbox_redrive(d->store, id, NULL, now, err);
    } else {
        /* the operator may name a destination as stored or as shown (redacted) */
        esm_outbox_parked_dest *pk = NULL;
        size_t n = 0;
        if (esm_store_outbox_parked_by_dest(d->store, &pk, &n, err) < 0) return -1;
        for (size_t i = 0; i < n && total >= 0; i++) {
            char shown[1024];
            esm_dest_redact(pk[i].destination, shown, sizeof shown);
            if (strcmp(pk[i].destination, destination) != 0 && strcmp(shown, destination) != 0)
                continue;
            int64_t r = esm_store_outbox_redrive(d->store, id, pk[i].destination, now, err);
            total = r < 0 ? -1 : total + r;
        }
        esm_store_outbox_parked_dests_free(pk, n);
    }
    if (total > 0) {
        ESM_INFO(LOG_CTX, "redrive: %lld parked row(s) due again", (long long)total);
        /* the drainer learns them (depth, order) at the next scan, which starts now */
        schedule_scan_now(d);
    }
    return total;
}
