/* sqs_tool: the SQS side of the benchmark, talking the SQS JSON protocol (SigV4-signed like
 * esmd, with dummy credentials) over keep-alive libcurl handles, one per thread.
 *
 *   sqs_tool create  ENDPOINT NAME                      prints the queue URL
 *   sqs_tool send    ENDPOINT QURL N BYTES [THREADS]    N messages of BYTES, SendMessageBatch x10
 *   sqs_tool drain   ENDPOINT QURL N [THREADS]          the ceiling: ReceiveMessage(10) +
 *                                                       DeleteMessageBatch until N are deleted
 *   sqs_tool trickle ENDPOINT QURL RATE SECONDS         one message every 1/RATE s, body
 *                                                       "T<epoch us>" (latency probes)
 *   sqs_tool count   ENDPOINT QURL                      visible + in flight + delayed
 *
 * send/drain print one JSON line: {"op":..,"n":..,"seconds":..,"per_s":..,"cpu_s":..}. */
#include "bench_aws_client.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *g_endpoint;

static void client_open(client *c)
{
    client_init(c, "sqs_tool", g_endpoint, "aws:amz:us-east-1:sqs", "AmazonSQS.",
                "Content-Type: application/x-amz-json-1.0", 60L);
}

static int64_t epoch_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- shared work counter ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_left; /* send: messages still to send; drain: messages still to delete */
static const char *g_qurl;
static size_t g_bytes;
static bool g_failed;

static long take(long want)
{
    pthread_mutex_lock(&g_mu);
    long n = g_left < want ? g_left : want;
    g_left -= n;
    pthread_mutex_unlock(&g_mu);
    return n;
}

static void *send_worker(void *arg)
{
    (void)arg;
    client c;
    client_open(&c);
    char *payload = malloc(g_bytes + 1);
    long k;
    while ((k = take(10)) > 0 && !g_failed) {
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "QueueUrl", g_qurl);
        cJSON *entries = cJSON_AddArrayToObject(req, "Entries");
        for (long i = 0; i < k; i++) {
            /* printable, varied body of exactly g_bytes */
            for (size_t j = 0; j < g_bytes; j++)
                payload[j] = (char)('a' + (int)((j * 7 + (size_t)i * 13 + (size_t)k) % 26));
            payload[g_bytes] = 0;
            cJSON *e = cJSON_CreateObject();
            char id[24];
            snprintf(id, sizeof id, "m%ld", i);
            cJSON_AddStringToObject(e, "Id", id);
            cJSON_AddStringToObject(e, "MessageBody", payload);
            cJSON_AddItemToArray(entries, e);
        }
        char *body = cJSON_PrintUnformatted(req);
        cJSON *r = call(&c, "SendMessageBatch", body);
        cJSON *failed = r ? cJSON_GetObjectItem(r, "Failed") : NULL;
        if (!r || cJSON_GetArraySize(failed) > 0) g_failed = true;
        cJSON_Delete(r);
        free(body);
        cJSON_Delete(req);
    }
    free(payload);
    client_free(&c);
    return NULL;
}

static void *drain_worker(void *arg)
{
    (void)arg;
    client c;
    client_open(&c);
    char req[1024];
    snprintf(req, sizeof req,
             "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":0,"
             "\"MessageSystemAttributeNames\":[\"All\"]}",
             g_qurl);
    double empty_since = 0;
    while (!g_failed) {
        pthread_mutex_lock(&g_mu);
        bool done = g_left <= 0;
        pthread_mutex_unlock(&g_mu);
        if (done) break;
        cJSON *r = call(&c, "ReceiveMessage", req);
        if (!r) {
            g_failed = true;
            break;
        }
        cJSON *msgs = cJSON_GetObjectItem(r, "Messages");
        int n = cJSON_GetArraySize(msgs);
        if (n == 0) {
            cJSON_Delete(r);
            /* WaitTimeSeconds 0 (no long-poll wait at the end of the run): the other threads
             * may hold the last messages in flight, so only 10 s of nothing means drained */
            if (empty_since == 0) empty_since = now_s();
            if (now_s() - empty_since > 10) break;
            continue;
        }
        empty_since = 0;
        cJSON *del = cJSON_CreateObject();
        cJSON_AddStringToObject(del, "QueueUrl", g_qurl);
        cJSON *entries = cJSON_AddArrayToObject(del, "Entries");
        for (int i = 0; i < n; i++) {
            cJSON *m = cJSON_GetArrayItem(msgs, i);
            cJSON *e = cJSON_CreateObject();
            char id[24];
            snprintf(id, sizeof id, "d%d", i);
            cJSON_AddStringToObject(e, "Id", id);
            cJSON_AddStringToObject(e, "ReceiptHandle",
                                    cJSON_GetStringValue(cJSON_GetObjectItem(m, "ReceiptHandle")));
            cJSON_AddItemToArray(entries, e);
        }
        char *body = cJSON_PrintUnformatted(del);
        cJSON *dr = call(&c, "DeleteMessageBatch", body);
        if (!dr) g_failed = true;
        cJSON_Delete(dr);
        free(body);
        cJSON_Delete(del);
        cJSON_Delete(r);
        pthread_mutex_lock(&g_mu);
        g_left -= n;
        pthread_mutex_unlock(&g_mu);
    }
    client_free(&c);
    return NULL;
}

static int run_threads(void *(*fn)(void *), int threads)
{
    pthread_t t[64];
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, fn, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return g_failed ? 1 : 0;
}

static void report(const char *op, long n, double secs, double cpu)
{
    printf("{\"op\":\"%s\",\"n\":%ld,\"seconds\":%.3f,\"per_s\":%.0f,\"cpu_s\":%.3f}\n", op, n,
           secs, (double)n / secs, cpu);
}

static long queue_count(client *c, const char *qurl)
{
    char req[1024];
    snprintf(req, sizeof req,
             "{\"QueueUrl\":\"%s\",\"AttributeNames\":[\"ApproximateNumberOfMessages\","
             "\"ApproximateNumberOfMessagesNotVisible\",\"ApproximateNumberOfMessagesDelayed\"]}",
             qurl);
    cJSON *r = call(c, "GetQueueAttributes", req);
    if (!r) return -1;
    cJSON *a = cJSON_GetObjectItem(r, "Attributes");
    long n = 0;
    for (cJSON *it = a ? a->child : NULL; it; it = it->next)
        n += atol(cJSON_GetStringValue(it) ? cJSON_GetStringValue(it) : "0");
    cJSON_Delete(r);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sqs_tool create|send|drain|trickle|count ENDPOINT ...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *op = argv[1];
    g_endpoint = argv[2];
    client c;
    client_open(&c);
    int rc = 0;
    if (strcmp(op, "create") == 0) {
        char req[512];
        snprintf(req, sizeof req,
                 "{\"QueueName\":\"%s\",\"Attributes\":{\"VisibilityTimeout\":\"60\"}}", argv[3]);
        cJSON *r = call(&c, "CreateQueue", req);
        if (!r) return 1;
        printf("%s\n", cJSON_GetStringValue(cJSON_GetObjectItem(r, "QueueUrl")));
        cJSON_Delete(r);
    } else if (strcmp(op, "count") == 0) {
        long n = queue_count(&c, argv[3]);
        printf("%ld\n", n);
        rc = n < 0;
    } else if (strcmp(op, "send") == 0 && argc >= 6) {
        g_qurl = argv[3];
        long n = atol(argv[4]);
        g_left = n;
        g_bytes = (size_t)atol(argv[5]);
        double t0 = now_s(), c0 = cpu_s();
        rc = run_threads(send_worker, argc > 6 ? atoi(argv[6]) : 8);
        report("send", n, now_s() - t0, cpu_s() - c0);
    } else if (strcmp(op, "drain") == 0 && argc >= 5) {
        g_qurl = argv[3];
        long n = atol(argv[4]);
        g_left = n;
        double t0 = now_s(), c0 = cpu_s();
        rc = run_threads(drain_worker, argc > 5 ? atoi(argv[5]) : 5);
        long got = n - (g_left > 0 ? g_left : 0);
        report("drain", got, now_s() - t0, cpu_s() - c0);
        if (got < n) rc = 1;
    } else if (strcmp(op, "trickle") == 0 && argc >= 6) {
        double rate = atof(argv[4]), secs = atof(argv[5]);
        double t0 = now_s(), next = t0;
        long sent = 0;
        while (now_s() - t0 < secs) {
            char req[1024];
            snprintf(req, sizeof req, "{\"QueueUrl\":\"%s\",\"MessageBody\":\"T%lld\"}", argv[3],
                     (long long)epoch_us());
            cJSON *r = call(&c, "SendMessage", req);
            if (!r) return 1;
            cJSON_Delete(r);
            sent++;
            next += 1.0 / rate;
            double wait = next - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        }
        printf("{\"op\":\"trickle\",\"n\":%ld}\n", sent);
    } else {
        fprintf(stderr, "sqs_tool: bad arguments\n");
        rc = 2;
    }
    client_free(&c);
    curl_global_cleanup();
    return rc;
}
