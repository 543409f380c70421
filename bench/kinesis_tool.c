/* kinesis_tool: the Kinesis side of the benchmark (JSON 1.1 protocol, SigV4-signed like esmd,
 * dummy credentials), one keep-alive libcurl handle per thread.
 *
 *   kinesis_tool create ENDPOINT STREAM SHARDS        creates the stream, waits until ACTIVE
 *   kinesis_tool put    ENDPOINT STREAM N BYTES       N records of BYTES, PutRecords x500,
 *                                                     partition keys k<i> (spread over shards)
 *   kinesis_tool read   ENDPOINT STREAM N LIMIT [CALLS_PER_S]
 *       the ceiling: ListShards, then one thread per shard: GetShardIterator TRIM_HORIZON and
 *       GetRecords(LIMIT) until N records are read in all; CALLS_PER_S (0 = unlimited) caps
 *       GetRecords per shard per second (AWS allows 5)
 *   kinesis_tool delete ENDPOINT STREAM
 *
 * put/read print one JSON line: {"op":..,"n":..,"seconds":..,"per_s":..,"cpu_s":..,"calls":..}. */
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
static const char *g_stream;

static void client_open(client *c)
{
    client_init(c, "kinesis_tool", g_endpoint, "aws:amz:us-east-1:kinesis", "Kinesis_20131202.",
                "Content-Type: application/x-amz-json-1.1", 120L);
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_left;
static long g_calls;
static bool g_failed;
static int g_limit;
static double g_rate;

typedef struct {
    char shard[128];
} shard_arg;

static void *read_worker(void *arg)
{
    shard_arg *a = arg;
    client c;
    client_open(&c);
    char req[512];
    snprintf(req, sizeof req,
             "{\"StreamName\":\"%s\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"TRIM_HORIZON\"}",
             g_stream, a->shard);
    cJSON *r = call(&c, "GetShardIterator", req);
    char *it = r ? strdup(cJSON_GetStringValue(cJSON_GetObjectItem(r, "ShardIterator"))) : NULL;
    cJSON_Delete(r);
    double last = 0, empty_since = 0;
    while (it && !g_failed) {
        pthread_mutex_lock(&g_mu);
        bool done = g_left <= 0;
        pthread_mutex_unlock(&g_mu);
        if (done) break;
        if (g_rate > 0) {
            double wait = last + 1.0 / g_rate - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        }
        last = now_s();
        char *body = malloc(strlen(it) + 64);
        sprintf(body, "{\"ShardIterator\":\"%s\",\"Limit\":%d}", it, g_limit);
        r = call(&c, "GetRecords", body);
        free(body);
        if (!r) {
            g_failed = true;
            break;
        }
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(r, "Records"));
        const char *next = cJSON_GetStringValue(cJSON_GetObjectItem(r, "NextShardIterator"));
        free(it);
        it = next ? strdup(next) : NULL;
        cJSON_Delete(r);
        pthread_mutex_lock(&g_mu);
        g_left -= n;
        g_calls++;
        pthread_mutex_unlock(&g_mu);
        if (n == 0) { /* at the tip: other shards may still have data; 10 s of nothing ends */
            if (empty_since == 0) empty_since = now_s();
            if (now_s() - empty_since > 10) break;
            usleep(20000);
        } else {
            empty_since = 0;
        }
    }
    free(it);
    client_free(&c);
    return NULL;
}

static void report(const char *op, long n, double secs, double cpu)
{
    printf(
        "{\"op\":\"%s\",\"n\":%ld,\"seconds\":%.3f,\"per_s\":%.0f,\"cpu_s\":%.3f,\"calls\":%ld}\n",
        op, n, secs, (double)n / secs, cpu, g_calls);
}

static int do_put(client *c, long n, size_t bytes)
{
    /* base64 of the payload: Data is a blob */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *raw = malloc(bytes + 3), *enc = malloc(bytes * 2 + 8);
    long sent = 0;
    while (sent < n) {
        long k = n - sent < 500 ? n - sent : 500;
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "StreamName", g_stream);
        cJSON *recs = cJSON_AddArrayToObject(req, "Records");
        for (long i = 0; i < k; i++) {
            long id = sent + i;
            for (size_t j = 0; j < bytes; j++)
                raw[j] = (char)('a' + (int)((j * 7 + (size_t)id) % 26));
            char idtxt[24];
            int il = snprintf(idtxt, sizeof idtxt, "%010ld-", id);
            memcpy(raw, idtxt, (size_t)il < bytes ? (size_t)il : bytes);
            size_t o = 0;
            for (size_t j = 0; j < bytes; j += 3) {
                uint32_t v = (uint32_t)(unsigned char)raw[j] << 16;
                if (j + 1 < bytes) v |= (uint32_t)(unsigned char)raw[j + 1] << 8;
                if (j + 2 < bytes) v |= (unsigned char)raw[j + 2];
                enc[o++] = b64[(v >> 18) & 63];
                enc[o++] = b64[(v >> 12) & 63];
                enc[o++] = j + 1 < bytes ? b64[(v >> 6) & 63] : '=';
                enc[o++] = j + 2 < bytes ? b64[v & 63] : '=';
            }
            enc[o] = 0;
            cJSON *e = cJSON_CreateObject();
            char key[32];
            snprintf(key, sizeof key, "k%ld", id);
            cJSON_AddStringToObject(e, "Data", enc);
            cJSON_AddStringToObject(e, "PartitionKey", key);
            cJSON_AddItemToArray(recs, e);
        }
        char *body = cJSON_PrintUnformatted(req);
        cJSON *r = call(c, "PutRecords", body);
        free(body);
        cJSON_Delete(req);
        if (!r) return 1;
        int failed = cJSON_GetObjectItem(r, "FailedRecordCount")
                         ? cJSON_GetObjectItem(r, "FailedRecordCount")->valueint
                         : 0;
        cJSON_Delete(r);
        if (failed) {
            fprintf(stderr, "kinesis_tool: PutRecords: %d failed\n", failed);
            return 1;
        }
        sent += k;
        g_calls++;
    }
    free(raw);
    free(enc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kinesis_tool create|put|read|delete ENDPOINT STREAM ...\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *op = argv[1];
    g_endpoint = argv[2];
    g_stream = argv[3];
    client c;
    client_open(&c);
    int rc = 0;
    char req[512];
    if (strcmp(op, "create") == 0 && argc >= 5) {
        snprintf(req, sizeof req, "{\"StreamName\":\"%s\",\"ShardCount\":%d}", g_stream,
                 atoi(argv[4]));
        cJSON *r = call(&c, "CreateStream", req);
        if (!r) return 1;
        cJSON_Delete(r);
        snprintf(req, sizeof req, "{\"StreamName\":\"%s\"}", g_stream);
        for (int i = 0; i < 300; i++) {
            r = call(&c, "DescribeStreamSummary", req);
            const char *st =
                r ? cJSON_GetStringValue(cJSON_GetObjectItem(
                        cJSON_GetObjectItem(r, "StreamDescriptionSummary"), "StreamStatus"))
                  : NULL;
            bool active = st && strcmp(st, "ACTIVE") == 0;
            cJSON_Delete(r);
            if (active) break;
            usleep(100000);
        }
    } else if (strcmp(op, "delete") == 0) {
        snprintf(req, sizeof req, "{\"StreamName\":\"%s\",\"EnforceConsumerDeletion\":true}",
                 g_stream);
        cJSON *r = call(&c, "DeleteStream", req);
        rc = r ? 0 : 1;
        cJSON_Delete(r);
    } else if (strcmp(op, "put") == 0 && argc >= 6) {
        long n = atol(argv[4]);
        double t0 = now_s(), c0 = cpu_s();
        rc = do_put(&c, n, (size_t)atol(argv[5]));
        report("put", n, now_s() - t0, cpu_s() - c0);
    } else if (strcmp(op, "read") == 0 && argc >= 6) {
        long n = atol(argv[4]);
        g_left = n;
        g_limit = atoi(argv[5]);
        g_rate = argc > 6 ? atof(argv[6]) : 0;
        double t0 = now_s(), c0 = cpu_s();
        snprintf(req, sizeof req, "{\"StreamName\":\"%s\"}", g_stream);
        cJSON *r = call(&c, "ListShards", req);
        if (!r) return 1;
        cJSON *shards = cJSON_GetObjectItem(r, "Shards");
        int ns = cJSON_GetArraySize(shards);
        pthread_t t[256];
        shard_arg args[256];
        memset(args, 0, sizeof args);
        if (ns > 256) ns = 256;
        for (int i = 0; i < ns; i++) {
            snprintf(args[i].shard, sizeof args[i].shard, "%s",
                     cJSON_GetStringValue(
                         cJSON_GetObjectItem(cJSON_GetArrayItem(shards, i), "ShardId")));
            pthread_create(&t[i], NULL, read_worker, &args[i]);
        }
        for (int i = 0; i < ns; i++)
            pthread_join(t[i], NULL);
        cJSON_Delete(r);
        long got = n - (g_left > 0 ? g_left : 0);
        report("read", got, now_s() - t0, cpu_s() - c0);
        rc = g_failed || got < n;
    } else {
        fprintf(stderr, "kinesis_tool: bad arguments\n");
        rc = 2;
    }
    client_free(&c);
    curl_global_cleanup();
    return rc;
}
