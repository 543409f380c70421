/* Configuration generations and the reload plan (SIGHUP, POST /reload).
 *
 * A generation owns one parsed config and the invokers of its functions. Everything that runs
 * from a generation (each mapping) holds a reference, so the old generation's mapping configs
 * and invokers stay alive until its last mapping has stopped. Invokers are shared between
 * generations when a function did not change (esm_function_config_equal), so a function's
 * max_concurrency still bounds all its mappings together across a reload.
 *
 * The plan is pure: which running mappings keep running (esm_mapping_config_equal, which
 * includes the resolved function), which restart from their checkpoints, which are removed
 * (drained) and which are new. */
#ifndef ESM_RELOAD_H
#define ESM_RELOAD_H

#include <stddef.h>

#include "common/esm_buf.h"
#include "common/esm_err.h"
#include "config/esm_config.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"

struct ev_loop;
typedef struct esm_generation esm_generation;

/* Takes ownership of cfg (also on failure). prev (may be NULL): share its invokers of
 * unchanged functions. */
esm_generation *esm_generation_create(struct ev_loop *loop, esm_http *http, esm_config *cfg,
                                      const esm_generation *prev, unsigned id, esm_err *err);
esm_generation *esm_generation_ref(esm_generation *g);
void esm_generation_unref(esm_generation *g); /* NULL is fine */
esm_config *esm_generation_config(const esm_generation *g);
unsigned esm_generation_id(const esm_generation *g);
/* The invoker of one of the generation's functions (fn points into its config). */
esm_invoker *esm_generation_invoker(const esm_generation *g, const esm_function_config *fn);

typedef enum {
    ESM_RELOAD_KEEP,    /* same config: keeps running untouched */
    ESM_RELOAD_RESTART, /* changed: stop, drain, start with the new config */
    ESM_RELOAD_REMOVE,  /* gone from the new config: stop and drain */
    ESM_RELOAD_ADD,     /* new: start */
} esm_reload_action;

typedef struct {
    esm_reload_action action;
    size_t old_index; /* into old[]; (size_t)-1 for ADD */
    size_t new_index; /* into next->mappings; (size_t)-1 for REMOVE */
} esm_reload_step;

/* old[i]: the config of the i-th current mapping (matched to the new config by UUID). Steps
 * come in old order, then the ADDs in new order. Returns a malloc'ed array (NULL with
 * *n_steps = 0 when there is nothing to do or out of memory). */
esm_reload_step *esm_reload_plan(const esm_mapping_config *const *old, size_t n_old,
                                 const esm_config *next, size_t *n_steps);

/* The mappings whose state a plan drops: an old mapping removed while the new config has one of
 * the same source (event source ARN, or Kafka cluster and topic) under another UUID, usually
 * because a derived UUID changed with FunctionName. Its checkpoints, retry state and Kafka group
 * stay with the old UUID and the new mapping starts at its StartingPosition. Appends one line
 * per such mapping to why; returns how many. */
size_t esm_reload_dropped_state(const esm_mapping_config *const *old, size_t n_old,
                                const esm_config *next, const esm_reload_step *steps,
                                size_t n_steps, esm_buf *why);

/* Settings that need a restart (state_dir, admin_listen, aws.region, aws.endpoints.*): when
 * next differs from cur, next gets cur's value back (so what runs stays consistent) and one
 * line per ignored setting is appended to why ("state_dir: changed from ... to ...; needs a
 * restart, ignored\n"). Returns how many were ignored. */
size_t esm_reload_pin_restart_only(const esm_config *cur, esm_config *next, esm_buf *why);

#endif
