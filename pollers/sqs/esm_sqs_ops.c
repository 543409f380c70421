#include "pollers/sqs/esm_sqs_int.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "common/esm_time.h"
#include "destinations/esm_outbox.h"
#include "policy/esm_failure_record.h"

#define SQS_BATCH_ENTRIES 10
#define SQS_ACK_ATTEMPTS 4

long esm_sqs_ack_timeout_ms = 15000L;

typedef struct sqs_call {
    esm_sqs_ops *ops;
    bool is_delete;
    int visibility;
    char *handles[SQS_BATCH_ENTRIES];
    size_t n;
    unsigned attempt;
    esm_http_call *http;
    ev_timer retry;
    struct sqs_call *prev, *next;
} sqs_call;

struct esm_sqs_ops {
    esm_source_env env;
    esm_aws *aws;
    char *queue_url;
    sqs_call *calls;
    size_t n_calls;
    esm_sqs_ops_idle_cb idle;
    void *idle_arg;
};

esm_sqs_ops *esm_sqs_ops_create(const esm_source_env *env, esm_aws *aws, esm_sqs_ops_idle_cb idle,
                                void *arg)
{
    esm_sqs_ops *ops = calloc(1, sizeof *ops);
    if (!ops) return NULL;
    ops->env = *env;
    ops->aws = aws;
    ops->idle = idle;
    ops->idle_arg = arg;
    return ops;
}

static void call_free(esm_sqs_ops *ops, sqs_call *c)
{
    ev_timer_stop(ops->env.loop, &c->retry);
    if (c->http) esm_http_cancel(c->http);
    if (c->prev)
        c->prev->next = c->next;
    else
        ops->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    ops->n_calls--;
    for (size_t i = 0; i < c->n; i++)
        free(c->handles[i]);
    free(c);
}

void esm_sqs_ops_abandon(esm_sqs_ops *ops)
{
    while (ops->calls)
        call_free(ops, ops->calls);
}

void esm_sqs_ops_destroy(esm_sqs_ops *ops)
{
    if (!ops) return;
    esm_sqs_ops_abandon(ops);
    free(ops->queue_url);
    free(ops);
}

void esm_sqs_ops_set_queue_url(esm_sqs_ops *ops, const char *queue_url)
{
    free(ops->queue_url);
    ops->queue_url = strdup(queue_url);
}

size_t esm_sqs_ops_pending(const esm_sqs_ops *ops)
{
    return ops->n_calls;
}

static void call_send(sqs_call *c);

static void call_done(sqs_call *c)
{
    esm_sqs_ops *ops = c->ops;
    call_free(ops, c);
    if (ops->n_calls == 0 && ops->idle) ops->idle(ops->idle_arg);
}

/* Counts the per-entry failures of a *Batch response; the call itself succeeded. */
static size_t count_failed_entries(const esm_aws_result *res, const char *what, const char *ctx)
{
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(res->json, "Failed");
    size_t n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, failed)
    {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(f, "Code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(f, "Message");
        ESM_WARN(ctx, "%s entry failed: %s %s", what,
                 cJSON_IsString(code) ? code->valuestring : "?",
                 cJSON_IsString(msg) ? msg->valuestring : "");
        n++;
    }
    return n;
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    call_send(w->data);
}

static void on_call_done(const esm_aws_result *res, void *arg)
{
    sqs_call *c = arg;
    esm_sqs_ops *ops = c->ops;
    const char *what = c->is_delete ? "DeleteMessageBatch" : "ChangeMessageVisibilityBatch";
    c->http = NULL;
    if (!res->ok) {
        if (res->retriable && ++c->attempt < SQS_ACK_ATTEMPTS) {
            ev_timer_set(&c->retry, 0.2 * (1u << c->attempt), 0.);
            ev_timer_start(ops->env.loop, &c->retry);
            return;
        }
        ESM_WARN(ops->env.log_ctx, "%s of %zu entries failed: %s %s", what, c->n, res->error_type,
                 res->message);
        if (c->is_delete) ops->env.stats->delete_failed += c->n;
        ops->env.stats->source_errors++;
    } else if (c->is_delete) {
        size_t failed = count_failed_entries(res, what, ops->env.log_ctx);
        ops->env.stats->delete_failed += failed;
        ops->env.stats->deleted += c->n - failed;
    } else {
        count_failed_entries(res, what, ops->env.log_ctx);
    }
    call_done(c);
}

static void call_send(sqs_call *c)
{
    esm_sqs_ops *ops = c->ops;
    esm_buf body;
    esm_buf_init(&body);
    esm_buf_puts(&body, "{\"QueueUrl\":");
    esm_buf_json_cstr(&body, ops->queue_url);
    esm_buf_puts(&body, ",\"Entries\":[");
    for (size_t i = 0; i < c->n; i++) {
        esm_buf_printf(&body, "%s{\"Id\":\"%zu\",\"ReceiptHandle\":", i ? "," : "", i);
        esm_buf_json_cstr(&body, c->handles[i]);
        if (!c->is_delete) esm_buf_printf(&body, ",\"VisibilityTimeout\":%d", c->visibility);
        esm_buf_putc(&body, '}');
    }
    esm_buf_puts(&body, "]}");
    const char *target =
        c->is_delete ? "AmazonSQS.DeleteMessageBatch" : "AmazonSQS.ChangeMessageVisibilityBatch";
    if (!body.failed)
        c->http = esm_aws_json_call(ops->aws, target, "1.0", body.data, body.len,
                                    esm_sqs_ack_timeout_ms, on_call_done, c);
    esm_buf_free(&body);
    if (!c->http) {
        ESM_ERROR(ops->env.log_ctx, "could not send %s", target);
        call_done(c);
    }
}

static void start_calls(esm_sqs_ops *ops, esm_sqs_msg *const *msgs, size_t n, bool is_delete,
                        int visibility)
{
    for (size_t off = 0; off < n; off += SQS_BATCH_ENTRIES) {
        sqs_call *c = calloc(1, sizeof *c);
        if (!c) {
            ESM_ERROR(ops->env.log_ctx, "out of memory: messages return to the queue");
            return;
        }
        c->ops = ops;
        c->is_delete = is_delete;
        c->visibility = visibility;
        for (size_t i = off; i < n && c->n < SQS_BATCH_ENTRIES; i++)
            c->handles[c->n++] = strdup(msgs[i]->receipt_handle);
        ev_timer_init(&c->retry, on_retry, 0., 0.);
        c->retry.data = c;
        c->next = ops->calls;
        if (ops->calls) ops->calls->prev = c;
        ops->calls = c;
        ops->n_calls++;
        call_send(c);
    }
}

void esm_sqs_ops_delete(esm_sqs_ops *ops, esm_sqs_msg *const *msgs, size_t n)
{
    if (n) start_calls(ops, msgs, n, true, 0);
}

void esm_sqs_ops_change_visibility(esm_sqs_ops *ops, esm_sqs_msg *const *msgs, size_t n,
                                   int timeout_s)
{
    if (n) start_calls(ops, msgs, n, false, timeout_s);
}

int esm_sqs_ops_failure_record(esm_sqs_ops *ops, const esm_sqs_msg *m, const esm_invoke_result *r)
{
    const esm_mapping_config *map = ops->env.mapping;
    esm_buf payload, rec;
    esm_buf_init(&payload);
    esm_buf_init(&rec);
    esm_buf_puts(&payload, "{\"Records\":[");
    esm_buf_append(&payload, m->record, m->record_len);
    esm_buf_puts(&payload, "]}");
    const char *ids[1] = {m->message_id};
    esm_failure_record fr;
    memset(&fr, 0, sizeof fr);
    fr.request_id = r->request_id;
    fr.function_arn = map->function->arn;
    fr.condition = ESM_COND_RETRY_ATTEMPTS_EXHAUSTED;
    fr.approximate_invoke_count = (unsigned)m->receive_count;
    fr.status_code = (int)r->status;
    fr.executed_version = r->executed_version[0] ? r->executed_version : NULL;
    fr.function_error = r->function_error[0] ? r->function_error : NULL;
    fr.timestamp_ms = esm_now_ms();
    fr.source = ESM_FR_SQS;
    fr.batch_size = 1;
    fr.sqs.queue_arn = map->event_source_arn;
    fr.sqs.message_ids = ids;
    fr.sqs.n_message_ids = 1;
    /* The message leaves the queue, so the record carries it: nothing is lost. */
    fr.payload_json = payload.data;
    fr.payload_len = payload.len;
    int rc = payload.failed ? -1 : esm_failure_record_render(&fr, &rec);
    esm_err err;
    esm_err_clear(&err);
    /* One record per message: it comes back when the delete after the outbox commit failed
     * or esmd stopped in between, and must not produce a second one (docs/operations.md
     * "Parked failure records"). */
    esm_buf key;
    esm_buf_init(&key);
    esm_buf_printf(&key, "sqs:%s:%s", map->uuid, m->message_id);
    if (rc == 0 && !rec.failed && !key.failed) {
        esm_outbox_item item = {.destination = map->on_failure_destination,
                                .payload = rec.data,
                                .payload_len = rec.len,
                                .dedupe_key = esm_buf_cstr(&key)};
        rc = esm_store_outbox_add(ops->env.store, map->uuid, &item, 1, &err);
        if (rc < 0) {
            if (ops->env.stats) ops->env.stats->checkpoint_write_failures++;
            ESM_ERROR(ops->env.log_ctx,
                      "cannot store the failure record of message %s (%s): it stays in the queue",
                      m->message_id, err.message);
        } else if (rc == 1)
            ESM_INFO(ops->env.log_ctx,
                     "message %s already has a failure record (it came back after an earlier "
                     "delete failed or esmd stopped): not written again, the message is deleted",
                     m->message_id);
        else if (ops->env.outbox)
            esm_outbox_drainer_kick(ops->env.outbox);
    } else {
        rc = -1;
        ESM_ERROR(ops->env.log_ctx, "cannot build the failure record of message %s", m->message_id);
    }
    esm_buf_free(&payload);
    esm_buf_free(&rec);
    esm_buf_free(&key);
    return rc;
}
