/* Filter matching throughput next to cJSON parsing the same payloads, in the same run.
 *
 * For 200-byte and 2 KB JSON bodies (SQS source, patterns on `body`), prints records/s for:
 *   cjson      cJSON_ParseWithLength + cJSON_Delete (the reference: parsing alone)
 *   match x1   esm_filter_match with 1 pattern
 *   tokenize   the filter's own JSON tokenizer alone (what every match call pays once)
 *   match x5   esm_filter_match with 5 patterns (none matches, so all 5 are evaluated)
 * and the ratio of each to cjson (>1 means faster than cJSON merely parsing). */
#include "filter/esm_filter.h"
#include "filter/esm_filter_json.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NPAY 512

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    char *s[NPAY];
    size_t len[NPAY];
    size_t avg;
} payloads;

/* ~200 bytes: a small order event. */
static void small_payload(char *out, size_t cap, int i)
{
    snprintf(out, cap,
             "{\"orderId\":\"A-%06d\",\"type\":\"%s\",\"qty\":%d,\"price\":%d.%02d,"
             "\"customer\":{\"id\":\"c-%d\",\"tier\":\"%s\",\"region\":\"eu-west-1\"},"
             "\"tags\":[\"web\",\"%s\"],\"channel\":\"mobile\",\"currency\":\"EUR\","
             "\"ts\":1717000%06d}",
             i, i % 3 ? "buy" : "sell", i % 50, i % 1000, i % 100, i % 977, i % 5 ? "std" : "gold",
             i % 7 ? "eu" : "vip", i);
}

/* ~2 KB: the same order with line items and an address. */
static void large_payload(char *out, size_t cap, int i)
{
    size_t n = (size_t)snprintf(out, cap,
                                "{\"orderId\":\"A-%06d\",\"type\":\"%s\",\"qty\":%d,"
                                "\"customer\":{\"id\":\"c-%d\",\"tier\":\"%s\",\"email\":"
                                "\"user%d@example.com\",\"address\":{\"street\":\"%d Long "
                                "Street\",\"city\":\"Dublin\",\"zip\":\"D0%d\",\"country\":"
                                "\"IE\"}},\"items\":[",
                                i, i % 3 ? "buy" : "sell", i % 50, i % 977, i % 5 ? "std" : "gold",
                                i, i % 300, i % 9);
    for (int k = 0; k < 17; k++)
        n += (size_t)snprintf(out + n, cap - n,
                              "%s{\"sku\":\"SKU-%05d\",\"name\":\"Item number %d with a "
                              "name\",\"qty\":%d,\"price\":%d.%02d,\"flags\":[\"a\",\"b\"]}",
                              k ? "," : "", (i * 13 + k) % 99999, k, k + 1, (i + k) % 500, k);
    snprintf(out + n, cap - n,
             "],\"tags\":[\"web\",\"%s\"],\"note\":\"Please leave the parcel at the door, "
             "thanks\",\"ts\":1717000%06d,\"ip\":\"10.%d.%d.%d\"}",
             i % 7 ? "eu" : "vip", i, i % 256, (i / 256) % 256, i % 200);
}

static void make(payloads *p, void (*gen)(char *, size_t, int))
{
    size_t total = 0;
    for (int i = 0; i < NPAY; i++) {
        char buf[8192];
        gen(buf, sizeof buf, i);
        p->s[i] = strdup(buf);
        p->len[i] = strlen(buf);
        total += p->len[i];
    }
    p->avg = total / NPAY;
}

static volatile long sink;

/* Runs fn over the payloads for about `secs`, best of 3 rounds; returns records/s. */
static double rate(const payloads *p, long (*fn)(const payloads *, const esm_filter_set *, int),
                   const esm_filter_set *f, double secs)
{
    double best = 0;
    for (int round = 0; round < 3; round++) {
        long n = 0;
        double t0 = now_s(), t;
        do {
            sink += fn(p, f, NPAY);
            n += NPAY;
            t = now_s();
        } while (t - t0 < secs / 3);
        double r = (double)n / (t - t0);
        if (r > best) best = r;
    }
    return best;
}

static long run_cjson(const payloads *p, const esm_filter_set *f, int n)
{
    (void)f;
    long ok = 0;
    for (int i = 0; i < n; i++) {
        cJSON *j = cJSON_ParseWithLength(p->s[i], p->len[i]);
        ok += j != NULL;
        cJSON_Delete(j);
    }
    return ok;
}

static long run_tokenize(const payloads *p, const esm_filter_set *f, int n)
{
    (void)f;
    static esm_fj_tape t;
    long ok = 0;
    for (int i = 0; i < n; i++)
        ok += esm_fj_parse(&t, p->s[i], p->len[i]);
    return ok;
}

static const char *rec = "{\"messageId\":\"7b0c9c8e\",\"body\":\"...\",\"attributes\":"
                         "{\"ApproximateReceiveCount\":\"1\"},\"eventSource\":\"aws:sqs\"}";

static long run_match(const payloads *p, const esm_filter_set *f, int n)
{
    long hits = 0;
    for (int i = 0; i < n; i++)
        hits += esm_filter_match(f, rec, strlen(rec), p->s[i], p->len[i]);
    return hits;
}

static esm_filter_set *compile(const char *const *pats, size_t n)
{
    char why[512];
    esm_filter_set *f = esm_filter_compile(pats, n, ESM_FILTER_SRC_SQS, why, sizeof why);
    if (!f) {
        fprintf(stderr, "%s\n", why);
        exit(1);
    }
    return f;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.5;
    /* Five patterns that miss: each walks the payload before failing. */
    const char *pats[] = {
        "{\"body\":{\"type\":[\"refund\"],\"qty\":[{\"numeric\":[\">\",10]}]}}",
        "{\"body\":{\"customer\":{\"tier\":[\"platinum\"]}}}",
        "{\"body\":{\"tags\":[{\"prefix\":\"zz\"}],\"orderId\":[{\"prefix\":\"A-\"}]}}",
        "{\"body\":{\"$or\":[{\"qty\":[{\"numeric\":[\">\",1000]}]},{\"customer\":{\"region\":"
        "[{\"equals-ignore-case\":\"US-EAST-1\"}]}}]}}",
        "{\"body\":{\"orderId\":[{\"wildcard\":\"B-*9\"}],\"type\":[{\"anything-but\":[\"buy\","
        "\"sell\"]}]}}",
    };
    esm_filter_set *f1 = compile(pats, 1), *f5 = compile(pats, 5);
    payloads small, large;
    make(&small, small_payload);
    make(&large, large_payload);
    printf("%-10s %8s %16s %16s %10s\n", "payload", "patterns", "case", "records/s", "vs cjson");
    const payloads *ps[] = {&small, &large};
    for (int k = 0; k < 2; k++) {
        const payloads *p = ps[k];
        char label[32];
        snprintf(label, sizeof label, "%zu B", p->avg);
        double rc = rate(p, run_cjson, NULL, secs);
        double rt = rate(p, run_tokenize, NULL, secs);
        double r1 = rate(p, run_match, f1, secs);
        double r5 = rate(p, run_match, f5, secs);
        printf("%-10s %8s %16s %16.0f %10s\n", label, "-", "cjson parse", rc, "1.00");
        printf("%-10s %8s %16s %16.0f %10.2f\n", label, "-", "tokenize only", rt, rt / rc);
        printf("%-10s %8d %16s %16.0f %10.2f\n", label, 1, "esm_filter_match", r1, r1 / rc);
        printf("%-10s %8d %16s %16.0f %10.2f\n", label, 5, "esm_filter_match", r5, r5 / rc);
    }
    if (run_match(&small, f5, NPAY) != 0 || run_match(&large, f1, NPAY) != 0) {
        fprintf(stderr, "benchmark patterns unexpectedly matched\n");
        return 1;
    }
    esm_filter_destroy(f1);
    esm_filter_destroy(f5);
    for (int i = 0; i < NPAY; i++) {
        free(small.s[i]);
        free(large.s[i]);
    }
    return 0;
}
