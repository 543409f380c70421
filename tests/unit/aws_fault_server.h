/* An in-process fault server for the AWS JSON protocols, for the source fault tests: a small
 * model of one SQS queue (AmazonSQS.*) and one single-shard Kinesis stream (Kinesis_20131202.*)
 * on a loopback thread, plus a function endpoint (POST /fn) that records what it was sent.
 * A script of faults per action (af_fault_push) replaces the next answers of that action:
 * an error status with an AWS error type (throttles, 5xx, ExpiredIteratorException), a body
 * cut short, a Content-Length the body never reaches, no answer at all, a connection reset,
 * or any 200 body. It exists for the faults the real peers cannot produce on demand.
 * Header-only (static functions) like http_test_server.h; every name starts with af_. */
#ifndef AWS_FAULT_SERVER_H
#define AWS_FAULT_SERVER_H

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define AF_BUF ((size_t)8 << 20)
#define AF_MAX_MSGS 256
#define AF_MAX_RECS 256
#define AF_MAX_FAULTS 256
#define AF_MAX_ACTIONS 32
#define AF_SEQ_BASE 4960000000000000000ULL /* Kinesis-like sequence numbers, 10 apart */

typedef enum {
    AF_STATUS,    /* status + {"__type":type,"message":...} */
    AF_TRUNCATED, /* the real 200 answer cut in half (Content-Length matches the cut body) */
    AF_SHORT,     /* the real 200 answer's headers, half its body, then the connection closes */
    AF_SLOW,      /* no answer until the client gives up and closes */
    AF_RESET,     /* the connection is reset (RST) without an answer */
    AF_BODY,      /* 200 with the given body */
    AF_PASS,      /* the real answer (spaces faults of one action apart) */
} af_kind;

typedef struct {
    char action[48]; /* "ReceiveMessage", "GetRecords", ... (without the target prefix) */
    af_kind kind;
    int status;
    const char *type; /* AF_STATUS: __type; AF_BODY: the body */
    bool used;
} af_fault;

typedef struct {
    char id[32];
    char body[64];
    size_t pad;     /* 'x' bytes after body (big messages) */
    char group[16]; /* FIFO MessageGroupId, "" = none */
    char handle[64];
    int receives;
    bool deleted;
    double invisible_until; /* af_now() seconds */
    int delivered;          /* times the function was sent it */
    bool answered;          /* a function answer covering it has been sent */
} af_msg;

typedef struct {
    char seq[32];
    char pk[16];
    char data[32]; /* base64 */
    double arrival_s;
    int delivered;
} af_rec;

typedef struct {
    int lfd;
    int port;
    pthread_t thread;
    atomic_int live; /* connection threads running */
    pthread_mutex_t mu;
    char endpoint[64];
    /* faults and call counts */
    af_fault faults[AF_MAX_FAULTS];
    size_t n_faults;
    char actions[AF_MAX_ACTIONS][48];
    int calls[AF_MAX_ACTIONS];
    size_t n_actions;
    /* SQS */
    af_msg msgs[AF_MAX_MSGS];
    size_t n_msgs;
    int visibility_s;
    int acked_unanswered; /* deletes of a message the function had not answered for */
    /* Kinesis */
    af_rec recs[AF_MAX_RECS];
    size_t n_recs;
    size_t trimmed;  /* records [0, trimmed) are past the retention period */
    size_t page_max; /* GetRecords answers at most this many records (0: Limit) */
    /* the function */
    int fn_calls;
    int fn_fail;     /* answer the next fn_fail calls with 500 */
    int fn_delay_ms; /* each call takes this long */
    bool fn_poison;  /* messages whose body starts with POISON are reported failed (RBIF) */
    int fn_in_flight, fn_max_in_flight;
    char deleted_order[4096]; /* ids of the deleted messages, in order, each ' '-ended */
} af_server;

typedef struct {
    af_server *s;
    int fd;
} af_conn;

static inline double af_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void af_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static inline void af_respond(int fd, int status, const char *body, size_t len, size_t claimed)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/x-amz-json-1.1\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, claimed);
    af_send_all(fd, head, (size_t)n);
    af_send_all(fd, body, len);
}

/* ---- scripting and counting (called by the test, any thread) ---- */

/* The _locked variants are for a test that changes several things at once under s->mu. */
static inline void af_fault_push_locked(af_server *s, const char *action, af_kind kind, int status,
                                        const char *type)
{
    if (s->n_faults < AF_MAX_FAULTS) {
        af_fault *f = &s->faults[s->n_faults++];
        snprintf(f->action, sizeof f->action, "%s", action);
        f->kind = kind;
        f->status = status;
        f->type = type;
        f->used = false;
    }
}

static inline void af_fault_push(af_server *s, const char *action, af_kind kind, int status,
                                 const char *type)
{
    pthread_mutex_lock(&s->mu);
    af_fault_push_locked(s, action, kind, status, type);
    pthread_mutex_unlock(&s->mu);
}

/* Drops every fault not yet used. */
static inline void af_faults_clear(af_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->n_faults = 0;
    pthread_mutex_unlock(&s->mu);
}

static inline size_t af_faults_left(af_server *s)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_faults; i++)
        n += !s->faults[i].used;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline int af_fn_calls(af_server *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->fn_calls;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline int af_calls(af_server *s, const char *action)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_actions; i++)
        if (strcmp(s->actions[i], action) == 0) n = s->calls[i];
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline void af_sqs_add(af_server *s, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && s->n_msgs < AF_MAX_MSGS; i++) {
        af_msg *m = &s->msgs[s->n_msgs];
        memset(m, 0, sizeof *m);
        snprintf(m->id, sizeof m->id, "m-%zu", s->n_msgs);
        snprintf(m->body, sizeof m->body, "body-%zu", s->n_msgs);
        s->n_msgs++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* FIFO messages of one group, pad bytes each; bodies are body-<i>, or POISON-<i> at the
 * index poison_index (-1: none). */
static inline void af_sqs_add_group(af_server *s, size_t n, const char *group, size_t pad,
                                    long poison_index)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n && s->n_msgs < AF_MAX_MSGS; i++) {
        af_msg *m = &s->msgs[s->n_msgs];
        memset(m, 0, sizeof *m);
        snprintf(m->id, sizeof m->id, "m-%zu", s->n_msgs);
        snprintf(m->body, sizeof m->body, "%s-%zu", (long)i == poison_index ? "POISON" : "body",
                 s->n_msgs);
        snprintf(m->group, sizeof m->group, "%s", group);
        m->pad = pad;
        s->n_msgs++;
    }
    pthread_mutex_unlock(&s->mu);
}

static inline void af_kinesis_add_locked(af_server *s, size_t n)
{
    for (size_t i = 0; i < n && s->n_recs < AF_MAX_RECS; i++) {
        af_rec *r = &s->recs[s->n_recs];
        memset(r, 0, sizeof *r);
        snprintf(r->seq, sizeof r->seq, "%llu",
                 (unsigned long long)(AF_SEQ_BASE + 10ULL * s->n_recs));
        snprintf(r->pk, sizeof r->pk, "pk-%zu", s->n_recs % 7);
        snprintf(r->data, sizeof r->data, "ZGF0YQ=="); /* "data" */
        r->arrival_s = (double)time(NULL);
        s->n_recs++;
    }
}

static inline void af_kinesis_add(af_server *s, size_t n)
{
    pthread_mutex_lock(&s->mu);
    af_kinesis_add_locked(s, n);
    pthread_mutex_unlock(&s->mu);
}

/* Counts over the model: SQS messages deleted, SQS messages / Kinesis records the function
 * was sent at least once. */
static inline size_t af_sqs_deleted(af_server *s)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_msgs; i++)
        n += s->msgs[i].deleted;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline size_t af_sqs_delivered(af_server *s)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_msgs; i++)
        n += s->msgs[i].delivered > 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Kinesis records from index `from` on that reached the function at least once. */
static inline size_t af_kinesis_delivered(af_server *s, size_t from)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = from; i < s->n_recs; i++)
        n += s->recs[i].delivered > 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- the model ---- */

static inline const char *af_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline char *af_sqs(af_server *s, const char *action, const cJSON *req)
{
    cJSON *out = cJSON_CreateObject();
    if (strcmp(action, "GetQueueUrl") == 0) {
        char url[128];
        snprintf(url, sizeof url, "%s/000000000000/%s", s->endpoint,
                 af_str(req, "QueueName") ? af_str(req, "QueueName") : "q");
        cJSON_AddStringToObject(out, "QueueUrl", url);
    } else if (strcmp(action, "GetQueueAttributes") == 0) {
        cJSON *a = cJSON_AddObjectToObject(out, "Attributes");
        char vt[16];
        snprintf(vt, sizeof vt, "%d", s->visibility_s);
        cJSON_AddStringToObject(a, "VisibilityTimeout", vt);
    } else if (strcmp(action, "ReceiveMessage") == 0) {
        const cJSON *max = cJSON_GetObjectItemCaseSensitive(req, "MaxNumberOfMessages");
        int want = cJSON_IsNumber(max) ? max->valueint : 1;
        cJSON *arr = cJSON_AddArrayToObject(out, "Messages");
        double now = af_now();
        /* FIFO as SQS does it: a group's messages come in order, several in one answer, and
         * none while an earlier one of the group is in flight. */
        char locked[AF_MAX_MSGS][16];
        size_t n_locked = 0;
        for (size_t i = 0; i < s->n_msgs && want > 0; i++) {
            af_msg *m = &s->msgs[i];
            if (m->deleted) continue;
            bool is_locked = false;
            for (size_t k = 0; m->group[0] && k < n_locked && !is_locked; k++)
                is_locked = strcmp(locked[k], m->group) == 0;
            if (is_locked) continue;
            if (m->invisible_until > now) {
                if (m->group[0]) memcpy(locked[n_locked++], m->group, sizeof m->group);
                continue;
            }
            m->receives++;
            m->invisible_until = now + s->visibility_s;
            char handle[sizeof m->handle];
            snprintf(handle, sizeof handle, "rh-%s-%d", m->id, m->receives);
            memcpy(m->handle, handle, sizeof handle);
            cJSON *jm = cJSON_CreateObject();
            cJSON_AddStringToObject(jm, "MessageId", m->id);
            cJSON_AddStringToObject(jm, "ReceiptHandle", m->handle);
            if (m->pad) {
                size_t bl = strlen(m->body);
                char *big = malloc(bl + m->pad + 1);
                memcpy(big, m->body, bl);
                memset(big + bl, 'x', m->pad);
                big[bl + m->pad] = '\0';
                cJSON_AddStringToObject(jm, "Body", big);
                free(big);
            } else {
                cJSON_AddStringToObject(jm, "Body", m->body);
            }
            cJSON_AddStringToObject(jm, "MD5OfBody", "x");
            cJSON *at = cJSON_AddObjectToObject(jm, "Attributes");
            char rc[16];
            snprintf(rc, sizeof rc, "%d", m->receives);
            cJSON_AddStringToObject(at, "ApproximateReceiveCount", rc);
            cJSON_AddStringToObject(at, "SentTimestamp", "1717000000000");
            if (m->group[0]) cJSON_AddStringToObject(at, "MessageGroupId", m->group);
            cJSON_AddItemToArray(arr, jm);
            want--;
        }
    } else if (strcmp(action, "DeleteMessageBatch") == 0 ||
               strcmp(action, "ChangeMessageVisibilityBatch") == 0) {
        bool del = action[0] == 'D';
        cJSON *ok = cJSON_AddArrayToObject(out, "Successful");
        cJSON_AddArrayToObject(out, "Failed");
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(req, "Entries"))
        {
            const char *h = af_str(e, "ReceiptHandle");
            const cJSON *vt = cJSON_GetObjectItemCaseSensitive(e, "VisibilityTimeout");
            for (size_t i = 0; h && i < s->n_msgs; i++) {
                af_msg *m = &s->msgs[i];
                if (strcmp(m->handle, h) != 0) continue;
                if (del) {
                    if (!m->answered) s->acked_unanswered++;
                    m->deleted = true;
                    size_t used = strlen(s->deleted_order);
                    if (used + strlen(m->id) + 2 < sizeof s->deleted_order)
                        snprintf(s->deleted_order + used, sizeof s->deleted_order - used, "%s ",
                                 m->id);
                } else if (cJSON_IsNumber(vt)) {
                    m->invisible_until = af_now() + vt->valuedouble;
                }
            }
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "Id", af_str(e, "Id") ? af_str(e, "Id") : "");
            cJSON_AddItemToArray(ok, r);
        }
    } else {
        cJSON_Delete(out);
        return NULL;
    }
    char *txt = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return txt;
}

/* Iterators are "it-<record index>"; an index below the trim horizon reads from the horizon. */
static inline char *af_kinesis(af_server *s, const char *action, const cJSON *req)
{
    cJSON *out = cJSON_CreateObject();
    if (strcmp(action, "DescribeStreamSummary") == 0) {
        cJSON *sum = cJSON_AddObjectToObject(out, "StreamDescriptionSummary");
        cJSON_AddStringToObject(sum, "StreamName", af_str(req, "StreamName"));
        cJSON_AddNumberToObject(sum, "StreamCreationTimestamp", (double)time(NULL) - 3600);
    } else if (strcmp(action, "ListShards") == 0) {
        cJSON *arr = cJSON_AddArrayToObject(out, "Shards");
        cJSON *sh = cJSON_CreateObject();
        cJSON_AddStringToObject(sh, "ShardId", "shardId-000000000000");
        cJSON *r = cJSON_AddObjectToObject(sh, "SequenceNumberRange");
        char first[32];
        snprintf(first, sizeof first, "%llu", (unsigned long long)AF_SEQ_BASE);
        cJSON_AddStringToObject(r, "StartingSequenceNumber", first);
        cJSON_AddItemToArray(arr, sh);
    } else if (strcmp(action, "GetShardIterator") == 0) {
        const char *type = af_str(req, "ShardIteratorType");
        const char *after = af_str(req, "StartingSequenceNumber");
        size_t idx = s->trimmed;
        if (type && strcmp(type, "LATEST") == 0) idx = s->n_recs;
        if (type && strcmp(type, "AFTER_SEQUENCE_NUMBER") == 0 && after) {
            unsigned long long a = strtoull(after, NULL, 10);
            idx = a < AF_SEQ_BASE ? 0 : (size_t)((a - AF_SEQ_BASE) / 10 + 1);
            if (idx < s->trimmed) idx = s->trimmed; /* AWS: silently from the trim horizon */
        }
        char it[32];
        snprintf(it, sizeof it, "it-%zu", idx);
        cJSON_AddStringToObject(out, "ShardIterator", it);
    } else if (strcmp(action, "GetRecords") == 0) {
        const char *it = af_str(req, "ShardIterator");
        const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "Limit");
        size_t idx = it && strncmp(it, "it-", 3) == 0 ? strtoul(it + 3, NULL, 10) : 0;
        if (idx < s->trimmed) idx = s->trimmed;
        size_t limit = cJSON_IsNumber(lim) ? (size_t)lim->valueint : 10000;
        if (s->page_max && limit > s->page_max) limit = s->page_max;
        cJSON *arr = cJSON_AddArrayToObject(out, "Records");
        size_t i = idx;
        for (; i < s->n_recs && i < idx + limit; i++) {
            af_rec *r = &s->recs[i];
            cJSON *jr = cJSON_CreateObject();
            cJSON_AddStringToObject(jr, "SequenceNumber", r->seq);
            cJSON_AddNumberToObject(jr, "ApproximateArrivalTimestamp", r->arrival_s);
            cJSON_AddStringToObject(jr, "Data", r->data);
            cJSON_AddStringToObject(jr, "PartitionKey", r->pk);
            cJSON_AddItemToArray(arr, jr);
        }
        char next[32];
        snprintf(next, sizeof next, "it-%zu", i);
        cJSON_AddStringToObject(out, "NextShardIterator", next);
        cJSON_AddNumberToObject(out, "MillisBehindLatest", i < s->n_recs ? 1000 : 0);
    } else {
        cJSON_Delete(out);
        return NULL;
    }
    char *txt = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return txt;
}

/* The function: notes which messages / records the event carried; *answer (malloc'd) is its
 * response body. */
static inline int af_function(af_server *s, const char *body, size_t len, char **answer)
{
    s->fn_calls++;
    cJSON *ev = cJSON_ParseWithLength(body, len);
    const cJSON *r;
    bool fail = s->fn_fail > 0;
    if (fail) s->fn_fail--;
    cJSON *out = cJSON_CreateObject();
    cJSON *failures = cJSON_AddArrayToObject(out, "batchItemFailures");
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(ev, "Records"))
    {
        const char *mid = af_str(r, "messageId");
        const char *seq = af_str(cJSON_GetObjectItemCaseSensitive(r, "kinesis"), "sequenceNumber");
        const char *b = af_str(r, "body");
        bool poison = s->fn_poison && b && strncmp(b, "POISON", 6) == 0;
        if (poison) {
            cJSON *it = cJSON_CreateObject();
            cJSON_AddStringToObject(it, "itemIdentifier", mid);
            cJSON_AddItemToArray(failures, it);
        }
        for (size_t i = 0; mid && i < s->n_msgs; i++)
            if (strcmp(s->msgs[i].id, mid) == 0) {
                s->msgs[i].delivered++;
                if (!fail) s->msgs[i].answered = true;
            }
        for (size_t i = 0; seq && i < s->n_recs; i++)
            if (strcmp(s->recs[i].seq, seq) == 0) s->recs[i].delivered++;
    }
    cJSON_Delete(ev);
    *answer = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return fail ? 500 : 200;
}

/* ---- HTTP ---- */

static inline void af_count(af_server *s, const char *action)
{
    for (size_t i = 0; i < s->n_actions; i++)
        if (strcmp(s->actions[i], action) == 0) {
            s->calls[i]++;
            return;
        }
    if (s->n_actions == AF_MAX_ACTIONS) return;
    snprintf(s->actions[s->n_actions], sizeof s->actions[0], "%s", action);
    s->calls[s->n_actions++] = 1;
}

static inline af_fault *af_next_fault(af_server *s, const char *action)
{
    for (size_t i = 0; i < s->n_faults; i++)
        if (!s->faults[i].used && strcmp(s->faults[i].action, action) == 0) {
            s->faults[i].used = true;
            return &s->faults[i];
        }
    return NULL;
}

/* Answers one request; false when the connection must close. */
static inline bool af_serve(af_server *s, int fd, const char *head, const char *body, size_t len)
{
    char path[64] = "";
    sscanf(head, "%*s %63s", path);
    if (strcmp(path, "/fn") == 0) {
        char *answer = NULL;
        pthread_mutex_lock(&s->mu);
        int st = af_function(s, body, len, &answer);
        int delay_ms = s->fn_delay_ms;
        if (++s->fn_in_flight > s->fn_max_in_flight) s->fn_max_in_flight = s->fn_in_flight;
        pthread_mutex_unlock(&s->mu);
        if (delay_ms > 0) usleep((useconds_t)delay_ms * 1000);
        pthread_mutex_lock(&s->mu);
        s->fn_in_flight--;
        pthread_mutex_unlock(&s->mu);
        af_respond(fd, st, answer, strlen(answer), strlen(answer));
        free(answer);
        return true;
    }
    char target[96] = "";
    const char *t = strcasestr(head, "\r\nX-Amz-Target:");
    if (t) sscanf(t + 15, " %95[^\r\n]", target);
    const char *dot = strchr(target, '.');
    const char *action = dot ? dot + 1 : target;
    bool sqs = strncmp(target, "AmazonSQS.", 10) == 0;
    cJSON *req = cJSON_ParseWithLength(body, len);
    if (getenv("AF_DEBUG")) fprintf(stderr, "af: %s %.*s\n", action, (int)len, body);
    pthread_mutex_lock(&s->mu);
    af_count(s, action);
    af_fault f = {.kind = AF_BODY, .status = 0};
    af_fault *fp = af_next_fault(s, action);
    if (fp) f = *fp;
    if (fp && f.kind == AF_PASS) fp = NULL;
    /* ReceiveMessage long-polls: an empty queue answers after a while, not at once. */
    for (int waited = 0; !fp && sqs && strcmp(action, "ReceiveMessage") == 0 && waited < 25;
         waited++) {
        bool any = false;
        for (size_t i = 0; i < s->n_msgs && !any; i++)
            any = !s->msgs[i].deleted && s->msgs[i].invisible_until <= af_now();
        if (any) break;
        pthread_mutex_unlock(&s->mu);
        usleep(10000);
        pthread_mutex_lock(&s->mu);
    }
    char *answer = NULL;
    if (!fp || f.kind == AF_TRUNCATED || f.kind == AF_SHORT)
        answer = sqs ? af_sqs(s, action, req) : af_kinesis(s, action, req);
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(req);
    bool keep = true;
    if (!fp) {
        if (answer)
            af_respond(fd, 200, answer, strlen(answer), strlen(answer));
        else
            af_respond(fd, 400, "{\"__type\":\"UnknownOperationException\"}", 38, 38);
    } else if (f.kind == AF_STATUS) {
        char err[256];
        int n = snprintf(err, sizeof err, "{\"__type\":\"%s\",\"message\":\"injected %s\"}", f.type,
                         f.type);
        af_respond(fd, f.status, err, (size_t)n, (size_t)n);
    } else if (f.kind == AF_BODY) {
        af_respond(fd, 200, f.type, strlen(f.type), strlen(f.type));
    } else if (f.kind == AF_TRUNCATED || f.kind == AF_SHORT) {
        size_t full = answer ? strlen(answer) : 0;
        af_respond(fd, 200, answer ? answer : "", full / 2, f.kind == AF_SHORT ? full : full / 2);
        keep = f.kind == AF_TRUNCATED;
    } else if (f.kind == AF_SLOW) {
        char tmp[256];
        while (recv(fd, tmp, sizeof tmp, 0) > 0) {
        }
        keep = false;
    } else { /* AF_RESET */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        keep = false;
    }
    free(answer);
    return keep;
}

static inline void *af_conn_thread(void *p)
{
    af_conn *c = p;
    char *buf = malloc(AF_BUF);
    size_t len = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            ssize_t r = recv(c->fd, buf + len, AF_BUF - 1 - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        size_t clen = 0;
        buf[len] = '\0';
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
        while (len < head_len + clen) {
            ssize_t r = recv(c->fd, buf + len, AF_BUF - 1 - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        char *body = malloc(clen + 1);
        memcpy(body, buf + head_len, clen);
        body[clen] = '\0';
        char *head = strndup(buf, head_len);
        bool keep = af_serve(c->s, c->fd, head, body, clen);
        free(head);
        free(body);
        if (!keep) goto out;
        memmove(buf, buf + head_len + clen, len - head_len - clen);
        len -= head_len + clen;
    }
out:
    close(c->fd);
    free(buf);
    atomic_fetch_sub(&c->s->live, 1);
    free(c);
    return NULL;
}

static inline void *af_accept_thread(void *p)
{
    af_server *s = p;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        af_conn *c = malloc(sizeof *c);
        atomic_fetch_add(&s->live, 1);
        c->s = s;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, af_conn_thread, c);
        pthread_detach(t);
    }
}

static inline af_server *af_start(void)
{
    af_server *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->visibility_s = 30;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 64) != 0) abort();
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    snprintf(s->endpoint, sizeof s->endpoint, "http://127.0.0.1:%d", s->port);
    pthread_create(&s->thread, NULL, af_accept_thread, s);
    return s;
}

/* Call after the client is gone (the test destroys its HTTP client first): connection threads
 * end when their client closes, and the model is freed only once every one has. */
static inline void af_stop(af_server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < 500 && atomic_load(&s->live) > 0; i++)
        usleep(10000);
    if (atomic_load(&s->live) > 0) abort(); /* a client connection was never closed */
    pthread_mutex_destroy(&s->mu);
    free(s);
}

#endif
