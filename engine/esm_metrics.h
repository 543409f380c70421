/* Prometheus text exposition (format 0.0.4) for /metrics: a small pure writer (HELP/TYPE
 * lines, label escaping, numbers, cumulative histograms) and the renderer of esmd's metric
 * families from a snapshot the daemon collects. Every family's samples are written together,
 * as the format requires. docs/operations.md lists the metrics. */
#ifndef ESM_METRICS_H
#define ESM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"
#include "pollers/esm_source.h"

typedef struct {
    const char *name;
    const char *value; /* NULL is written as "" */
} esm_prom_label;

/* A label value: backslash, double quote and newline escaped (\\, \", \n). */
void esm_prom_escape(esm_buf *out, const char *value);
/* A sample value: integers exactly, "+Inf", "-Inf", "NaN", otherwise the shortest of %.15g
 * and %.17g that reads back as the same double. */
void esm_prom_number(esm_buf *out, double v);
/* "# HELP name help" (backslash and newline escaped) and "# TYPE name type". */
void esm_prom_header(esm_buf *out, const char *name, const char *type, const char *help);
/* name{l1="v1",...} value\n (no braces when there are no labels). */
void esm_prom_sample(esm_buf *out, const char *name, const esm_prom_label *labels, size_t n,
                     double value);
void esm_prom_sample_u64(esm_buf *out, const char *name, const esm_prom_label *labels, size_t n,
                         uint64_t value);
/* name_bucket{...,le="b"} (cumulative, ending with le="+Inf"), name_sum, name_count. h->counts
 * has n_bounds + 1 non-cumulative entries (the last one above every bound). */
void esm_prom_histogram(esm_buf *out, const char *name, const esm_prom_label *labels, size_t n,
                        const esm_hist *h, const double *bounds, size_t n_bounds);

/* ---- esmd's families ---- */

typedef struct {
    const char *uuid, *function, *source; /* labels mapping, function, source */
    const char *state;                    /* AWS State: Enabled, Enabling, Disabled, ... */
    const esm_source_stats *stats;        /* NULL when the mapping does not run */
    bool ready;
    bool stuck;             /* a lane blocked longer than StuckLaneSeconds */
    double blocked_seconds; /* longest current block (0 = none) */
} esm_metrics_mapping;

typedef struct {
    size_t mapping; /* index into the mappings array */
    const char *lane;
    esm_lane_gauge gauge;
    double value;
} esm_metrics_lane;

typedef struct {
    bool have_outbox;
    double outbox_depth; /* < 0 when unknown */
    uint64_t outbox_delivered, outbox_failed_attempts, outbox_deferred;
    double outbox_parked; /* rows parked now; < 0 when unknown */
    uint64_t outbox_parked_total;
    int outbox_in_flight;
    unsigned generation;
    uint64_t reloads_ok, reloads_failed;
    double start_time_seconds; /* epoch seconds */
    const char *version;
} esm_metrics_global;

void esm_metrics_render(esm_buf *out, const esm_metrics_mapping *maps, size_t n_maps,
                        const esm_metrics_lane *lanes, size_t n_lanes, const esm_metrics_global *g);

#endif
