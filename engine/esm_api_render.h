/* The Lambda API's EventSourceMappingConfiguration (rest-json, API version 2015-03-31) of one
 * mapping, as GetEventSourceMapping and ListEventSourceMappings answer it (docs/operations.md
 * "The Lambda API"): every field AWS returns for the mapping's source, with AWS's defaults
 * filled in. Pure: no I/O, no clock. */
#ifndef ESM_API_RENDER_H
#define ESM_API_RENDER_H

#include <stdint.h>

#include "common/esm_buf.h"
#include "config/esm_config.h"

typedef struct {
    const esm_mapping_config *mc;
    const char *state;                  /* AWS State */
    const char *state_reason;           /* StateTransitionReason */
    const char *last_processing_result; /* AWS's words */
    int64_t last_modified_ms;           /* when its configuration was loaded */
    const char *region;                 /* for the mapping's ARN */
} esm_api_mapping;

/* arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID (the function's account). */
void esm_api_mapping_arn(const esm_api_mapping *m, esm_buf *out);
/* Appends the JSON object. */
void esm_api_mapping_json(const esm_api_mapping *m, esm_buf *out);

#endif
