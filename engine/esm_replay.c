#include "engine/esm_replay.h"

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "destinations/esm_dest.h"
#include "engine/esm_replay_record.h"

#define SQS_CALL_TIMEOUT_MS 20000L
#define REPLAY_TRIES 4             /* a throttled or unreachable function: 3 retries */
#define REPLAY_LINE_MAX (8u << 20) /* longer lines are skipped (an event is at most 6 MB) */

typedef enum { RUNNING, DONE, CANCELLED, FAILED } job_state;
static const char *const state_names[] = {"Running", "Done", "Cancelled", "Failed"};

typedef struct {
    char at[128];
    char error[300];
} job_error;

struct esm_replay {
    unsigned id;
    struct ev_loop *loop;
    esm_generation *gen;
    const esm_mapping_config *mc;
    esm_invoker *inv;
    esm_aws *sqs;
    esm_dest from;
    long long limit;
    job_state state;
    char why[300]; /* FAILED: what stopped the job */
    /* file:// */
    FILE *file;
    off_t end; /* the file's size when the job started: records written since are not read */
    long long line;
    esm_buf text; /* the line being read */
    /* SQS: the messages this job took (a hash set of their ids' hashes), so one that comes back
     * after its visibility ends the job instead of being invoked again */
    uint64_t *seen;
    size_t n_seen, cap_seen;
    /* SQS */
    char *queue_url;
    char *receipt; /* the message being replayed */
    char at[128];  /* "line N" or "message ID" of the record being replayed */
    esm_http_call *call;
    /* the invocation */
    char *event;
    unsigned attempts; /* of this event */
    esm_invocation *invocation;
    ev_timer kick;
    long long read, replayed, failed, skipped;
    job_error errors[ESM_REPLAY_ERRORS_KEPT];
    size_t n_errors;
    int64_t started_ms, finished_ms;
};

static void step(esm_replay *r);

static void after(esm_replay *r, double seconds)
{
    ev_timer_stop(r->loop, &r->kick);
    ev_timer_set(&r->kick, seconds, 0.);
    ev_timer_start(r->loop, &r->kick);
}

static void later(esm_replay *r)
{
    after(r, 0.);
}

/* What a finished job no longer needs: its file, buffers and receipt. */
static void release(esm_replay *r)
{
    if (r->file) fclose(r->file);
    r->file = NULL;
    esm_buf_free(&r->text);
    free(r->queue_url);
    free(r->receipt);
    free(r->event);
    free(r->seen);
    r->queue_url = r->receipt = r->event = NULL;
    r->seen = NULL;
    r->n_seen = r->cap_seen = 0;
}

static void finish(esm_replay *r, job_state st, const char *why)
{
    if (r->state != RUNNING) return;
    r->state = st;
    r->finished_ms = esm_now_ms();
    release(r);
    if (why) snprintf(r->why, sizeof r->why, "%s", why);
    ESM_INFO(NULL,
             "replay %u of mapping %s: %s (read %lld, replayed %lld, failed %lld, skipped "
             "%lld)%s%s",
             r->id, r->mc->uuid, state_names[st], r->read, r->replayed, r->failed, r->skipped,
             why ? ": " : "", why ? why : "");
}

/* Keeps the first ESM_REPLAY_ERRORS_KEPT problems; the counters have them all. */
static void note(esm_replay *r, const char *why)
{
    if (r->n_errors == ESM_REPLAY_ERRORS_KEPT) return;
    job_error *e = &r->errors[r->n_errors++];
    snprintf(e->at, sizeof e->at, "%s", r->at);
    snprintf(e->error, sizeof e->error, "%s", why);
}

/* ---- one record ------------------------------------------------------------------------- */

static void on_deleted(const esm_aws_result *res, void *arg)
{
    esm_replay *r = arg;
    r->call = NULL;
    if (!res->ok) {
        /* replayed, but it stays in the queue: a later job would replay it again */
        char why[300];
        snprintf(why, sizeof why, "replayed, but DeleteMessage failed (%.100s: %.150s)",
                 res->error_type, res->message);
        note(r, why);
    }
    later(r);
}

static void delete_message(esm_replay *r)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, "{\"QueueUrl\":");
    esm_buf_json_cstr(&b, r->queue_url);
    esm_buf_puts(&b, ",\"ReceiptHandle\":");
    esm_buf_json_cstr(&b, r->receipt);
    esm_buf_putc(&b, '}');
    if (!b.failed)
        r->call = esm_aws_json_call(r->sqs, "AmazonSQS.DeleteMessage", "1.0", b.data, b.len,
                                    SQS_CALL_TIMEOUT_MS, on_deleted, r);
    esm_buf_free(&b);
    if (!r->call) {
        note(r, "replayed, but DeleteMessage could not be sent");
        later(r);
    }
}

static void invoke(esm_replay *r);

static void on_invoked(const esm_invoke_result *res, void *arg)
{
    esm_replay *r = arg;
    r->invocation = NULL;
    char why[300];
    bool ok = esm_replay_succeeded(res, why, sizeof why);
    if (!ok && res->misconfigured) {
        /* every record would fail the same way: stop, the record stays where it is */
        free(r->event);
        r->event = NULL;
        char stop[340];
        snprintf(stop, sizeof stop, "the function's settings are wrong: %s", why);
        finish(r, FAILED, stop);
        return;
    }
    bool transient = res->cls == ESM_INVOKE_THROTTLE || res->cls == ESM_INVOKE_ERROR;
    if (!ok && transient && r->attempts < REPLAY_TRIES) {
        /* the event is kept; step() invokes it again */
        double delay = res->retry_after_ms >= 0 ? (double)res->retry_after_ms / 1000.0
                                                : (double)(1u << (r->attempts - 1));
        after(r, delay > 30. ? 30. : delay);
        return;
    }
    free(r->event);
    r->event = NULL;
    if (!ok) {
        r->failed++;
        note(r, why);
    } else {
        r->replayed++;
    }
    if (ok && r->receipt) {
        delete_message(r);
        return;
    }
    later(r);
}

static void invoke(esm_replay *r)
{
    r->attempts++;
    r->invocation = esm_invoker_invoke(r->inv, r->event, strlen(r->event), on_invoked, r);
    if (r->invocation) return;
    free(r->event);
    r->event = NULL;
    r->skipped++;
    note(r, "the event is larger than 6 MB");
    later(r);
}

/* Invokes the function with the record's event, or skips the record. */
static void replay_text(esm_replay *r, const char *text, size_t len)
{
    r->read++;
    cJSON *record = cJSON_ParseWithLength(text, len);
    char why[300];
    const cJSON *event = record ? esm_replay_event_of(record, r->mc, why, sizeof why) : NULL;
    if (!record) snprintf(why, sizeof why, "not JSON");
    r->event = event ? cJSON_PrintUnformatted(event) : NULL;
    cJSON_Delete(record);
    if (!r->event) {
        r->skipped++;
        note(r, event ? "out of memory" : why);
        later(r);
        return;
    }
    r->attempts = 0;
    invoke(r);
}

/* ---- file:// ------------------------------------------------------------------------------ */

/* Reads the next line into r->text (without its newline); false at the end (of the file as it
 * was when the job started). A line longer than REPLAY_LINE_MAX is read past, *too_long set. */
static bool next_line(esm_replay *r, bool *too_long)
{
    esm_buf_reset(&r->text);
    *too_long = false;
    off_t at = ftello(r->file);
    if (at < 0 || at >= r->end) return false;
    char chunk[65536];
    bool any = false;
    while (fgets(chunk, sizeof chunk, r->file)) {
        any = true;
        size_t n = strlen(chunk);
        bool eol = n > 0 && chunk[n - 1] == '\n';
        if (eol) n--;
        if (r->text.len + n > REPLAY_LINE_MAX) *too_long = true;
        if (!*too_long) esm_buf_append(&r->text, chunk, n);
        if (eol) break;
    }
    return any;
}

static void file_step(esm_replay *r)
{
    bool too_long;
    while (next_line(r, &too_long)) {
        r->line++;
        snprintf(r->at, sizeof r->at, "line %lld", r->line);
        if (too_long) {
            r->read++;
            r->skipped++;
            note(r, "the line is longer than 8 MB: no failure record esmd writes");
            later(r);
            return;
        }
        if (r->text.len && r->text.data[r->text.len - 1] == '\r') r->text.len--;
        if (r->text.len == 0) continue; /* an empty line is no record */
        if (r->text.failed) {
            finish(r, FAILED, "out of memory reading a line");
            return;
        }
        replay_text(r, r->text.data, r->text.len);
        return;
    }
    finish(r, DONE, NULL);
}

/* ---- SQS ---------------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1; /* 0 marks a free slot */
}

/* Puts h into an open-addressing table of cap slots (a power of two); false when present. */
static bool table_put(uint64_t *t, size_t cap, uint64_t h)
{
    for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (t[i] == h) return false;
        if (!t[i]) {
            t[i] = h;
            return true;
        }
    }
}

/* Records the message id; false when this job took it before. A hash set: a job takes up to
 * ESM_REPLAY_LIMIT_MAX messages. */
static bool first_time(esm_replay *r, const char *id)
{
    if ((r->n_seen + 1) * 2 > r->cap_seen) {
        size_t cap = r->cap_seen ? r->cap_seen * 2 : 64;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t) return true; /* not remembered: at worst invoked again */
        for (size_t i = 0; i < r->cap_seen; i++)
            if (r->seen[i]) table_put(t, cap, r->seen[i]);
        free(r->seen);
        r->seen = t;
        r->cap_seen = cap;
    }
    if (!table_put(r->seen, r->cap_seen, fnv1a(id))) return false;
    r->n_seen++;
    return true;
}

static void on_received(const esm_aws_result *res, void *arg)
{
    esm_replay *r = arg;
    r->call = NULL;
    if (!res->ok) {
        char why[300];
        snprintf(why, sizeof why, "ReceiveMessage failed (%.100s: %.150s)", res->error_type,
                 res->message);
        finish(r, FAILED, why);
        return;
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(res->json, "Messages");
    const cJSON *m = cJSON_IsArray(msgs) ? cJSON_GetArrayItem(msgs, 0) : NULL;
    if (!m) {
        finish(r, DONE, NULL); /* a long poll found nothing visible */
        return;
    }
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(m, "Body");
    const cJSON *handle = cJSON_GetObjectItemCaseSensitive(m, "ReceiptHandle");
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "MessageId");
    snprintf(r->at, sizeof r->at, "message %.100s", cJSON_IsString(mid) ? mid->valuestring : "?");
    if (cJSON_IsString(mid) && !first_time(r, mid->valuestring)) {
        /* it failed or was skipped earlier in this job and is visible again */
        finish(r, DONE, "every message left was already tried by this job");
        return;
    }
    free(r->receipt);
    r->receipt = cJSON_IsString(handle) ? strdup(handle->valuestring) : NULL;
    if (!cJSON_IsString(body) || !r->receipt) {
        r->read++;
        r->skipped++;
        note(r, "a message without Body or ReceiptHandle");
        later(r);
        return;
    }
    replay_text(r, body->valuestring, strlen(body->valuestring));
}

static void receive(esm_replay *r)
{
    free(r->receipt);
    r->receipt = NULL;
    /* a message that fails or is skipped stays invisible for the rest of a job this size */
    int visibility = r->mc->function ? r->mc->function->timeout_seconds * 2 + 60 : 120;
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, "{\"QueueUrl\":");
    esm_buf_json_cstr(&b, r->queue_url);
    esm_buf_printf(&b, ",\"MaxNumberOfMessages\":1,\"WaitTimeSeconds\":1,\"VisibilityTimeout\":%d}",
                   visibility);
    if (!b.failed)
        r->call = esm_aws_json_call(r->sqs, "AmazonSQS.ReceiveMessage", "1.0", b.data, b.len,
                                    SQS_CALL_TIMEOUT_MS, on_received, r);
    esm_buf_free(&b);
    if (!r->call) finish(r, FAILED, "ReceiveMessage could not be sent");
}

static void on_queue_url(const esm_aws_result *res, void *arg)
{
    esm_replay *r = arg;
    r->call = NULL;
    const cJSON *url = res->ok ? cJSON_GetObjectItemCaseSensitive(res->json, "QueueUrl") : NULL;
    if (!cJSON_IsString(url)) {
        char why[300];
        snprintf(why, sizeof why, "GetQueueUrl of %.80s failed (%.60s: %.100s)", r->from.name,
                 res->error_type, res->message);
        finish(r, FAILED, why);
        return;
    }
    r->queue_url = strdup(url->valuestring);
    if (!r->queue_url) {
        finish(r, FAILED, "out of memory");
        return;
    }
    later(r);
}

static void sqs_step(esm_replay *r)
{
    if (r->queue_url) {
        receive(r);
        return;
    }
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, "{\"QueueName\":");
    esm_buf_json_cstr(&b, r->from.name);
    esm_buf_puts(&b, ",\"QueueOwnerAWSAccountId\":");
    esm_buf_json_cstr(&b, r->from.account);
    esm_buf_putc(&b, '}');
    if (!b.failed)
        r->call = esm_aws_json_call(r->sqs, "AmazonSQS.GetQueueUrl", "1.0", b.data, b.len,
                                    SQS_CALL_TIMEOUT_MS, on_queue_url, r);
    esm_buf_free(&b);
    if (!r->call) finish(r, FAILED, "GetQueueUrl could not be sent");
}

/* ---- the job ------------------------------------------------------------------------------ */

static void step(esm_replay *r)
{
    if (r->state != RUNNING) return;
    if (r->event) { /* a throttled or failed call, again */
        invoke(r);
        return;
    }
    if (r->read >= r->limit) {
        finish(r, DONE, "the limit was reached");
        return;
    }
    if (r->file)
        file_step(r);
    else
        sqs_step(r);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    step(w->data);
}

esm_replay *esm_replay_start(const esm_replay_options *o, esm_err *err)
{
    esm_dest from;
    if (esm_dest_parse(o->from, &from, err) != 0) return NULL;
    if (from.kind != ESM_DEST_FILE && from.kind != ESM_DEST_SQS) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "from must be a file:///ABSOLUTE/PATH or an SQS queue ARN (failure records "
                    "in %s destinations cannot be read back)",
                    esm_dest_kind_name(from.kind));
        return NULL;
    }
    if (from.kind == ESM_DEST_SQS && !o->sqs) {
        esm_err_set(err, ESM_ERR_INVALID, false, "esmd has no SQS client");
        return NULL;
    }
    esm_invoker *inv = esm_generation_invoker(o->gen, o->mc->function);
    if (!inv) {
        esm_err_set(err, ESM_ERR_INVALID, false, "the mapping's function has no invoker");
        return NULL;
    }
    esm_replay *r = calloc(1, sizeof *r);
    if (!r) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return NULL;
    }
    r->from = from;
    esm_buf_init(&r->text);
    if (from.kind == ESM_DEST_FILE) {
        /* O_NONBLOCK: a FIFO named by mistake must not hold the loop */
        int fd = open(from.target, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        bool regular = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
        if (fd >= 0 && regular) r->file = fdopen(fd, "r");
        if (!r->file) {
            if (fd < 0)
                esm_err_set(err, ESM_ERR_INVALID, false, "cannot read %s: %m", from.target);
            else
                esm_err_set(err, ESM_ERR_INVALID, false, "%s is not a regular file", from.target);
            if (fd >= 0) close(fd);
            free(r);
            return NULL;
        }
        r->end = st.st_size;
    }
    r->id = o->id;
    r->loop = o->loop;
    r->gen = esm_generation_ref(o->gen);
    r->mc = o->mc;
    r->inv = inv;
    r->sqs = o->sqs;
    r->limit = o->limit;
    r->started_ms = esm_now_ms();
    ev_timer_init(&r->kick, on_kick, 0., 0.);
    r->kick.data = r;
    ESM_INFO(NULL, "replay %u of mapping %s: from %s, at most %lld failure records", r->id,
             r->mc->uuid, from.target, r->limit);
    later(r);
    return r;
}

void esm_replay_status(const esm_replay *r, esm_buf *out)
{
    esm_buf_printf(out, "{\"Id\":%u,\"UUID\":", r->id);
    esm_buf_json_cstr(out, r->mc->uuid);
    esm_buf_puts(out, ",\"From\":");
    esm_buf_json_cstr(out, r->from.target);
    esm_buf_printf(out,
                   ",\"State\":\"%s\",\"Read\":%lld,\"Replayed\":%lld,\"Failed\":%lld,"
                   "\"Skipped\":%lld,\"Limit\":%lld,\"Reason\":",
                   state_names[r->state], r->read, r->replayed, r->failed, r->skipped, r->limit);
    esm_buf_json_cstr(out, r->why[0] ? r->why : NULL);
    esm_buf_puts(out, ",\"Errors\":[");
    for (size_t i = 0; i < r->n_errors; i++) {
        esm_buf_puts(out, i ? ",{\"At\":" : "{\"At\":");
        esm_buf_json_cstr(out, r->errors[i].at);
        esm_buf_puts(out, ",\"Error\":");
        esm_buf_json_cstr(out, r->errors[i].error);
        esm_buf_putc(out, '}');
    }
    esm_buf_puts(out, "],\"StartedAt\":");
    esm_buf_json_time(out, r->started_ms);
    esm_buf_puts(out, ",\"FinishedAt\":");
    esm_buf_json_time(out, r->finished_ms);
    esm_buf_putc(out, '}');
}

bool esm_replay_running(const esm_replay *r)
{
    return r->state == RUNNING;
}

unsigned esm_replay_id(const esm_replay *r)
{
    return r->id;
}

const char *esm_replay_mapping(const esm_replay *r)
{
    return r->mc->uuid;
}

void esm_replay_cancel(esm_replay *r)
{
    if (r->state != RUNNING) return;
    ev_timer_stop(r->loop, &r->kick);
    if (r->invocation) esm_invoker_cancel(r->invocation);
    r->invocation = NULL;
    if (r->call) esm_http_cancel(r->call);
    r->call = NULL;
    finish(r, CANCELLED, NULL);
}

void esm_replay_destroy(esm_replay *r)
{
    if (!r) return;
    esm_replay_cancel(r);
    release(r);
    esm_generation_unref(r->gen);
    free(r);
}
