/* Per-mapping invocation statistics that sources record with ONE call per invocation:
 * invoke-latency and batch-size histograms (fixed Prometheus-style buckets) and the time of
 * the last good / failed invocation (for AWS's LastProcessingResult). Header-only and in
 * common/ so that lane/ and pollers/ record without depending on the engine above them. */
#ifndef ESM_METRICS_HIST_H
#define ESM_METRICS_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ESM_HIST_MAX_BUCKETS 16

/* counts[i] = observations in (bounds[i-1], bounds[i]]; counts[n_bounds] = above the last
 * bound (+Inf). Not cumulative: the renderer sums them up. */
typedef struct {
    uint64_t counts[ESM_HIST_MAX_BUCKETS + 1];
    uint64_t count;
    double sum;
} esm_hist;

typedef struct {
    esm_hist latency_seconds; /* every invocation attempt, throttles and errors included */
    esm_hist batch_records;   /* records per invocation attempt */
    int64_t last_ok_ms;       /* last invocation that succeeded (partial success included) */
    int64_t last_failed_ms;   /* last invocation that failed, was throttled or did not run */
    uint64_t bisect_splits;   /* streams/Kafka: batches split by BisectBatchOnFunctionError */
    /* Attempts the endpoint refused because esmd's function settings are wrong (401, 403, 404,
     * 405, 407: docs/design.md "Invocation outcomes"), and since when that has been the last
     * answer (0 = it is not). */
    uint64_t misconfigured;
    int64_t misconfigured_since_ms;
    int64_t misconfigured_logged_ms; /* the log line's rate limit */
    char misconfigured_reason[192];
} esm_invoke_stats;

/* A misconfigured endpoint is logged at most this often per mapping, not once per retry. */
#define ESM_MISCONFIGURED_LOG_EVERY_MS 60000

/* Upper bounds (le) of the invoke-latency buckets, in seconds. */
static inline const double *esm_hist_latency_bounds(size_t *n)
{
    static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                               2.5,   5,    10,    30,   60,  120,  300, 900};
    *n = sizeof b / sizeof b[0];
    return b;
}

/* Upper bounds (le) of the batch-size buckets, in records. */
static inline const double *esm_hist_batch_bounds(size_t *n)
{
    static const double b[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
    *n = sizeof b / sizeof b[0];
    return b;
}

static inline void esm_hist_observe(esm_hist *h, const double *bounds, size_t n_bounds, double v)
{
    size_t i = 0;
    while (i < n_bounds && v > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

/* The one call a source makes when an invocation attempt ends. now_ms: esm_now_ms(). */
static inline void esm_invoke_stats_record(esm_invoke_stats *s, size_t records, double latency_ms,
                                           bool ok, int64_t now_ms)
{
    size_t n;
    const double *b = esm_hist_latency_bounds(&n);
    esm_hist_observe(&s->latency_seconds, b, n, latency_ms / 1000.0);
    b = esm_hist_batch_bounds(&n);
    esm_hist_observe(&s->batch_records, b, n, (double)records);
    if (ok)
        s->last_ok_ms = now_ms;
    else
        s->last_failed_ms = now_ms;
}

typedef enum {
    ESM_ENDPOINT_LOG_NOTHING,
    ESM_ENDPOINT_LOG_MISCONFIGURED, /* log misconfigured_reason now */
    ESM_ENDPOINT_LOG_RECOVERED,     /* the endpoint answers properly again */
} esm_endpoint_log;

/* The second call a source makes per attempt: reason is the classification's reason when it
 * found esmd misconfigured, else NULL. Says which log line (if any) is due. */
static inline esm_endpoint_log esm_invoke_stats_endpoint(esm_invoke_stats *s, const char *reason,
                                                         int64_t now_ms)
{
    if (!reason) {
        if (!s->misconfigured_since_ms) return ESM_ENDPOINT_LOG_NOTHING;
        s->misconfigured_since_ms = 0;
        s->misconfigured_logged_ms = 0;
        return ESM_ENDPOINT_LOG_RECOVERED;
    }
    s->misconfigured++;
    if (!s->misconfigured_since_ms) s->misconfigured_since_ms = now_ms;
    size_t i = 0;
    for (; reason[i] && i + 1 < sizeof s->misconfigured_reason; i++)
        s->misconfigured_reason[i] = reason[i];
    s->misconfigured_reason[i] = '\0';
    if (s->misconfigured_logged_ms &&
        now_ms - s->misconfigured_logged_ms < ESM_MISCONFIGURED_LOG_EVERY_MS)
        return ESM_ENDPOINT_LOG_NOTHING;
    s->misconfigured_logged_ms = now_ms;
    return ESM_ENDPOINT_LOG_MISCONFIGURED;
}

#endif
