/* The mapping state table (engine/esm_lifecycle.h). */
#include "engine/esm_lifecycle.h"

const char *esm_state_name(esm_state s)
{
    static const char *const names[] = {
        [ESM_STATE_CREATING] = "Creating", [ESM_STATE_ENABLED] = "Enabled",
        [ESM_STATE_UPDATING] = "Updating", [ESM_STATE_DISABLING] = "Disabling",
        [ESM_STATE_DISABLED] = "Disabled", [ESM_STATE_DELETING] = "Deleting",
    };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "Unknown";
}

esm_state esm_lifecycle_state(const esm_lifecycle_facts *f)
{
    if (!f->running) return ESM_STATE_DISABLED;
    if (f->stopping) {
        if (f->shutting_down) return ESM_STATE_DISABLING;
        if (!f->next) return ESM_STATE_DELETING;
        return f->next->enabled ? ESM_STATE_UPDATING : ESM_STATE_DISABLING;
    }
    if (f->phase == ESM_SOURCE_RUNNING) return ESM_STATE_ENABLED;
    return f->restarted ? ESM_STATE_UPDATING : ESM_STATE_CREATING;
}
