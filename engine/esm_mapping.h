/* One running event source mapping: its filter, its source and its counters. */
#ifndef ESM_MAPPING_H
#define ESM_MAPPING_H

#include "pollers/esm_source.h"

typedef struct esm_mapping esm_mapping;

/* env->mapping, ->invoker and the shared parts must be set; the filter and stats are the
 * mapping's own. Returns NULL with err set when the mapping cannot run. */
esm_mapping *esm_mapping_create(const esm_source_env *env, esm_err *err);
int esm_mapping_start(esm_mapping *m, esm_err *err);
void esm_mapping_stop(esm_mapping *m, esm_source_stopped_cb done, void *arg);
void esm_mapping_destroy(esm_mapping *m);
esm_source_phase esm_mapping_phase(const esm_mapping *m);
bool esm_mapping_ready(const esm_mapping *m); /* its source polls */
const esm_source_stats *esm_mapping_stats(const esm_mapping *m);
const esm_mapping_config *esm_mapping_config_of(const esm_mapping *m);
/* Appends the mapping's status object (AWS field names where AWS has them); state is the
 * AWS State the daemon knows (Enabled, Enabling, Updating, Disabling, ...). */
void esm_mapping_status(esm_mapping *m, const char *state, esm_buf *out);
/* The source's stuck_since hook (0 = no lane blocked, or the source has no hook). */
int64_t esm_mapping_stuck_since(const esm_mapping *m);
/* A lane has been blocked longer than the mapping's EsmdOptions.StuckLaneSeconds. */
bool esm_mapping_is_stuck(const esm_mapping *m, int64_t now_ms);
void esm_mapping_lane_gauges(const esm_mapping *m, esm_lane_gauge_fn emit, void *arg);
/* Before start: continue the counters of the mapping this one replaces (reload restart). */
void esm_mapping_inherit_stats(esm_mapping *m, const esm_source_stats *from);
/* AWS's LastProcessingResult wording: "No records processed", "OK",
 * "PROBLEM: Function call failed"; a problem that keeps the source from its peer comes first
 * ("PROBLEM: SASL authentication failed"). Written into out (a static string would not do). */
void esm_mapping_last_processing_result(const esm_mapping *m, esm_buf *out);
/* Opens a mapping's JSON object: {"UUID":..,"FunctionName":..,"EventSourceArn":.. (no closing
 * brace: the caller's members follow). */
void esm_mapping_identity_json(const esm_mapping_config *mc, esm_buf *out);
/* The source's problem (esm_source_ops.problem), NULL when there is none. */
const char *esm_mapping_problem(const esm_mapping *m);

#endif
