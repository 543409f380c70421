#include "engine/esm_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void esm_prom_escape(esm_buf *out, const char *value)
{
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\')
            esm_buf_puts(out, "\\\\");
        else if (*p == '"')
            esm_buf_puts(out, "\\\"");
        else if (*p == '\n')
            esm_buf_puts(out, "\\n");
        else
            esm_buf_putc(out, *p);
    }
}

void esm_prom_number(esm_buf *out, double v)
{
    if (isnan(v))
        esm_buf_puts(out, "NaN");
    else if (isinf(v))
        esm_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        esm_buf_printf(out, "%lld", (long long)v);
    else {
        /* Shortest of %.15g / %.17g that reads back as the same double. */
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.15g", v);
        if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof tmp, "%.17g", v);
        esm_buf_puts(out, tmp);
    }
}

void esm_prom_header(esm_buf *out, const char *name, const char *type, const char *help)
{
    esm_buf_printf(out, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            esm_buf_puts(out, "\\\\");
        else if (*p == '\n')
            esm_buf_puts(out, "\\n");
        else
            esm_buf_putc(out, *p);
    }
    esm_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* name[suffix]{labels[,extra="value"]} */
static void series(esm_buf *out, const char *name, const char *suffix, const esm_prom_label *labels,
                   size_t n, const char *extra_name, const char *extra_value)
{
    esm_buf_puts(out, name);
    if (suffix) esm_buf_puts(out, suffix);
    if (n == 0 && !extra_name) return;
    esm_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) esm_buf_putc(out, ',');
        esm_buf_printf(out, "%s=\"", labels[i].name);
        esm_prom_escape(out, labels[i].value);
        esm_buf_putc(out, '"');
    }
    if (extra_name) {
        if (n) esm_buf_putc(out, ',');
        esm_buf_printf(out, "%s=\"", extra_name);
        esm_prom_escape(out, extra_value);
        esm_buf_putc(out, '"');
    }
    esm_buf_putc(out, '}');
}

void esm_prom_sample(esm_buf *out, const char *name, const esm_prom_label *labels, size_t n,
                     double value)
{
    series(out, name, NULL, labels, n, NULL, NULL);
    esm_buf_putc(out, ' ');
    esm_prom_number(out, value);
    esm_buf_putc(out, '\n');
}

void esm_prom_sample_u64(esm_buf *out, const char *name, const esm_prom_label *labels, size_t n,
                         uint64_t value)
{
    series(out, name, NULL, labels, n, NULL, NULL);
    esm_buf_printf(out, " %llu\n", (unsigned long long)value);
}

void esm_prom_histogram(esm_buf *out, const char *name, const esm_prom_label *labels, size_t n,
                        const esm_hist *h, const double *bounds, size_t n_bounds)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= n_bounds && i <= ESM_HIST_MAX_BUCKETS; i++) {
        cum += h->counts[i];
        esm_buf le;
        esm_buf_init(&le);
        if (i < n_bounds)
            esm_prom_number(&le, bounds[i]);
        else
            esm_buf_puts(&le, "+Inf");
        series(out, name, "_bucket", labels, n, "le", esm_buf_cstr(&le));
        esm_buf_free(&le);
        esm_buf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    series(out, name, "_sum", labels, n, NULL, NULL);
    esm_buf_putc(out, ' ');
    esm_prom_number(out, h->sum);
    esm_buf_putc(out, '\n');
    series(out, name, "_count", labels, n, NULL, NULL);
    esm_buf_printf(out, " %llu\n", (unsigned long long)h->count);
}

/* ---- esmd's families ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    size_t offset; /* of a uint64_t in esm_source_stats */
    const char *help;
} counter_def;

#define STAT(field) offsetof(esm_source_stats, field)

static const counter_def counters[] = {
    {"esmd_polled_events_total", STAT(polled),
     "Records read from the source (AWS PolledEventCount)."},
    {"esmd_filtered_out_events_total", STAT(filtered_out),
     "Records that matched no filter (AWS FilteredOutEventCount)."},
    {"esmd_invoked_events_total", STAT(invoked),
     "Records sent to the function; retries count again (AWS InvokedEventCount)."},
    {"esmd_invocations_total", STAT(invocations),
     "Invocations that ran: successes and function errors (AWS Invocations)."},
    {"esmd_failed_invoke_events_total", STAT(failed_invoke),
     "Records in failed invocations or reported failed (AWS FailedInvokeEventCount)."},
    {"esmd_throttles_total", STAT(throttled), "Invocations refused with a throttle (429/503)."},
    {"esmd_dropped_events_total", STAT(dropped),
     "Records discarded by MaximumRetryAttempts/MaximumRecordAgeInSeconds (AWS "
     "DroppedEventCount; includes records queued to the on-failure destination)."},
    {"esmd_on_failure_queued_events_total", STAT(on_failure_queued),
     "Failure records written to the outbox for the OnFailure destination (delivered later, "
     "see esmd_outbox_delivered_total)."},
    {"esmd_deleted_events_total", STAT(deleted),
     "SQS messages deleted after processing (AWS DeletedEventCount)."},
    {"esmd_delete_failures_total", STAT(delete_failed), "SQS message deletes that failed."},
    {"esmd_committed_events_total", STAT(committed),
     "Stream/Kafka records acknowledged by a checkpoint (AWS CommittedEventCount)."},
    {"esmd_checkpoint_write_failures_total", STAT(checkpoint_write_failures),
     "Checkpoint store writes that failed."},
    {"esmd_source_errors_total", STAT(source_errors), "Failed calls to the source."},
    {"esmd_kafka_fetch_wakeups_total", STAT(fetch_wakeups),
     "Kafka: partitions whose stalled fetching esmd woke (librdkafka 2.0 waits ~1 s after its "
     "queue was full)."},
    {"esmd_kafka_log_resets_total", STAT(kafka_log_resets),
     "Kafka: partitions whose log could not hold the stored position (topic re-created, broker "
     "log wiped); read again from the log start."},
};

static size_t mapping_labels(const esm_metrics_mapping *m, esm_prom_label *l)
{
    l[0] = (esm_prom_label){"mapping", m->uuid};
    l[1] = (esm_prom_label){"function", m->function};
    l[2] = (esm_prom_label){"source", m->source};
    return 3;
}

static void render_counters(esm_buf *out, const esm_metrics_mapping *maps, size_t n_maps)
{
    esm_prom_label l[4];
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        esm_prom_header(out, counters[c].name, "counter", counters[c].help);
        for (size_t i = 0; i < n_maps; i++) {
            if (!maps[i].stats) continue;
            size_t n = mapping_labels(&maps[i], l);
            uint64_t v;
            memcpy(&v, (const char *)maps[i].stats + counters[c].offset, sizeof v);
            esm_prom_sample_u64(out, counters[c].name, l, n, v);
        }
    }
    esm_prom_header(out, "esmd_bisect_splits_total", "counter",
                    "Batches split in two by BisectBatchOnFunctionError.");
    for (size_t i = 0; i < n_maps; i++) {
        if (!maps[i].stats) continue;
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_sample_u64(out, "esmd_bisect_splits_total", l, n,
                            maps[i].stats->invokes.bisect_splits);
    }
    esm_prom_header(out, "esmd_invoke_misconfigured_total", "counter",
                    "Invocation attempts the function endpoint refused because esmd is "
                    "misconfigured (401/403/404/405/407); never counted as attempts.");
    for (size_t i = 0; i < n_maps; i++) {
        if (!maps[i].stats) continue;
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_sample_u64(out, "esmd_invoke_misconfigured_total", l, n,
                            maps[i].stats->invokes.misconfigured);
    }
    esm_prom_header(out, "esmd_mapping_misconfigured", "gauge",
                    "1 while the function endpoint's last answer said esmd is misconfigured.");
    for (size_t i = 0; i < n_maps; i++) {
        if (!maps[i].stats) continue;
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_sample(out, "esmd_mapping_misconfigured", l, n,
                        maps[i].stats->invokes.misconfigured_since_ms ? 1 : 0);
    }
}

static void render_histograms(esm_buf *out, const esm_metrics_mapping *maps, size_t n_maps)
{
    esm_prom_label l[4];
    size_t nb;
    const double *b = esm_hist_latency_bounds(&nb);
    esm_prom_header(out, "esmd_invoke_duration_seconds", "histogram",
                    "Duration of invocation attempts (throttles and errors included).");
    for (size_t i = 0; i < n_maps; i++) {
        if (!maps[i].stats) continue;
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_histogram(out, "esmd_invoke_duration_seconds", l, n,
                           &maps[i].stats->invokes.latency_seconds, b, nb);
    }
    b = esm_hist_batch_bounds(&nb);
    esm_prom_header(out, "esmd_invoke_batch_records", "histogram",
                    "Records per invocation attempt.");
    for (size_t i = 0; i < n_maps; i++) {
        if (!maps[i].stats) continue;
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_histogram(out, "esmd_invoke_batch_records", l, n,
                           &maps[i].stats->invokes.batch_records, b, nb);
    }
}

static void render_mapping_gauges(esm_buf *out, const esm_metrics_mapping *maps, size_t n_maps)
{
    esm_prom_label l[5];
    esm_prom_header(out, "esmd_mapping_info", "gauge",
                    "1 for every configured mapping; label state is the AWS State.");
    for (size_t i = 0; i < n_maps; i++) {
        size_t n = mapping_labels(&maps[i], l);
        l[n++] = (esm_prom_label){"state", maps[i].state};
        esm_prom_sample(out, "esmd_mapping_info", l, n, 1);
    }
    esm_prom_header(out, "esmd_mapping_ready", "gauge",
                    "1 when the mapping runs and has reached its source.");
    for (size_t i = 0; i < n_maps; i++) {
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_sample(out, "esmd_mapping_ready", l, n, maps[i].ready ? 1 : 0);
    }
    esm_prom_header(out, "esmd_mapping_stuck", "gauge",
                    "1 when a lane has been blocked on a failing batch for longer than "
                    "EsmdOptions.StuckLaneSeconds.");
    for (size_t i = 0; i < n_maps; i++) {
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_sample(out, "esmd_mapping_stuck", l, n, maps[i].stuck ? 1 : 0);
    }
    esm_prom_header(out, "esmd_mapping_blocked_seconds", "gauge",
                    "How long the longest-blocked lane has retried its batch (0 = none).");
    for (size_t i = 0; i < n_maps; i++) {
        size_t n = mapping_labels(&maps[i], l);
        esm_prom_sample(out, "esmd_mapping_blocked_seconds", l, n, maps[i].blocked_seconds);
    }
}

static const struct {
    const char *name, *help;
} lane_gauges[] = {
    [ESM_GAUGE_ITERATOR_AGE_SECONDS] = {"esmd_iterator_age_seconds",
                                        "Kinesis: age of the last record read (AWS IteratorAge)."},
    [ESM_GAUGE_OFFSET_LAG] = {"esmd_offset_lag",
                              "Kafka: high watermark minus committed offset (AWS OffsetLag)."},
    [ESM_GAUGE_LANE_BLOCKED_SECONDS] = {"esmd_lane_blocked_seconds",
                                        "How long the lane has retried its current batch."},
    [ESM_GAUGE_LANE_IN_FLIGHT] = {"esmd_lane_in_flight_records",
                                  "Records of the lane's batch in flight."},
};

static void render_lanes(esm_buf *out, const esm_metrics_mapping *maps, size_t n_maps,
                         const esm_metrics_lane *lanes, size_t n_lanes)
{
    esm_prom_label l[5];
    for (size_t g = 0; g < sizeof lane_gauges / sizeof lane_gauges[0]; g++) {
        bool any = false;
        for (size_t i = 0; i < n_lanes; i++) {
            if ((size_t)lanes[i].gauge != g || lanes[i].mapping >= n_maps) continue;
            if (!any) esm_prom_header(out, lane_gauges[g].name, "gauge", lane_gauges[g].help);
            any = true;
            size_t n = mapping_labels(&maps[lanes[i].mapping], l);
            l[n++] = (esm_prom_label){"lane", lanes[i].lane};
            esm_prom_sample(out, lane_gauges[g].name, l, n, lanes[i].value);
        }
    }
}

static void render_global(esm_buf *out, const esm_metrics_global *g)
{
    if (g->have_outbox) {
        if (g->outbox_depth >= 0) {
            esm_prom_header(out, "esmd_outbox_depth", "gauge",
                            "Failure records waiting in the outbox for their destination.");
            esm_prom_sample(out, "esmd_outbox_depth", NULL, 0, g->outbox_depth);
        }
        esm_prom_header(out, "esmd_outbox_in_flight", "gauge",
                        "Failure records being delivered now.");
        esm_prom_sample(out, "esmd_outbox_in_flight", NULL, 0, g->outbox_in_flight);
        esm_prom_header(out, "esmd_outbox_delivered_total", "counter",
                        "Failure records delivered to their OnFailure destination (AWS "
                        "OnFailureDestinationDeliveredEventCount, all mappings).");
        esm_prom_sample_u64(out, "esmd_outbox_delivered_total", NULL, 0, g->outbox_delivered);
        esm_prom_header(out, "esmd_outbox_delivery_failures_total", "counter",
                        "Failed delivery attempts (the record stays in the outbox; AWS "
                        "DestinationDeliveryFailures).");
        esm_prom_sample_u64(out, "esmd_outbox_delivery_failures_total", NULL, 0,
                            g->outbox_failed_attempts);
        esm_prom_header(out, "esmd_outbox_deferred_total", "counter",
                        "Failure records pushed back behind a failing destination.");
        esm_prom_sample_u64(out, "esmd_outbox_deferred_total", NULL, 0, g->outbox_deferred);
        if (g->outbox_parked >= 0) {
            esm_prom_header(out, "esmd_outbox_parked", "gauge",
                            "Failure records parked: refused for good by their destination, kept "
                            "until an operator re-drives them (GET /outbox/parked).");
            esm_prom_sample(out, "esmd_outbox_parked", NULL, 0, g->outbox_parked);
        }
        esm_prom_header(out, "esmd_outbox_parked_total", "counter",
                        "Failure records parked since start (refused for good by their "
                        "destination; the rows behind them are delivered).");
        esm_prom_sample_u64(out, "esmd_outbox_parked_total", NULL, 0, g->outbox_parked_total);
    }
    esm_prom_header(out, "esmd_config_generation", "gauge",
                    "Configuration generation in use (1 at start, +1 per applied reload).");
    esm_prom_sample(out, "esmd_config_generation", NULL, 0, g->generation);
    esm_prom_header(out, "esmd_config_reloads_total", "counter",
                    "Configuration reloads by result.");
    esm_prom_label r = {"result", "applied"};
    esm_prom_sample_u64(out, "esmd_config_reloads_total", &r, 1, g->reloads_ok);
    r.value = "rejected";
    esm_prom_sample_u64(out, "esmd_config_reloads_total", &r, 1, g->reloads_failed);
    esm_prom_header(out, "esmd_start_time_seconds", "gauge",
                    "Start time of the process since the Unix epoch, in seconds.");
    esm_prom_sample(out, "esmd_start_time_seconds", NULL, 0, g->start_time_seconds);
    if (g->version) {
        esm_prom_header(out, "esmd_build_info", "gauge", "esmd's version (always 1).");
        esm_prom_label v = {"version", g->version};
        esm_prom_sample(out, "esmd_build_info", &v, 1, 1);
    }
}

void esm_metrics_render(esm_buf *out, const esm_metrics_mapping *maps, size_t n_maps,
                        const esm_metrics_lane *lanes, size_t n_lanes, const esm_metrics_global *g)
{
    render_counters(out, maps, n_maps);
    render_histograms(out, maps, n_maps);
    render_mapping_gauges(out, maps, n_maps);
    render_lanes(out, maps, n_maps, lanes, n_lanes);
    if (g) render_global(out, g);
}
