/* One state model for every mapping, in AWS's words. The engine knows why a mapping stops (a
 * reload replaces it, removes it, disables it, esmd shuts down); its source knows only its own
 * phase (pollers/esm_source.h). The state of a mapping is derived from both, here only. */
#ifndef ESM_LIFECYCLE_H
#define ESM_LIFECYCLE_H

#include <stdbool.h>

#include "config/esm_config.h"
#include "pollers/esm_source.h"

typedef enum {
    ESM_STATE_CREATING,  /* started for the first time, its source not reached yet */
    ESM_STATE_ENABLED,   /* its source polls */
    ESM_STATE_UPDATING,  /* restarting with a changed config, until its source polls again */
    ESM_STATE_DISABLING, /* stopping for good: Enabled false, or esmd shuts down */
    ESM_STATE_DISABLED,  /* not running: Enabled false, or it could not start */
    ESM_STATE_DELETING,  /* removed from the config: draining what is in flight */
} esm_state;

/* What the engine knows of a mapping's slot. */
typedef struct {
    bool running;                   /* it has a source (started, not yet destroyed) */
    esm_source_phase phase;         /* the source's, when running */
    bool stopping;                  /* the engine asked the source to stop */
    bool shutting_down;             /* esmd is stopping */
    const esm_mapping_config *next; /* stopping: what starts afterwards (NULL: removed) */
    bool restarted;                 /* started again by a reload */
} esm_lifecycle_facts;

esm_state esm_lifecycle_state(const esm_lifecycle_facts *f);
const char *esm_state_name(esm_state s);

#endif
