/* What replay does with one failure record (docs/operations.md "Replaying failure records").
 * Pure: no I/O, no clock. */
#ifndef ESM_REPLAY_RECORD_H
#define ESM_REPLAY_RECORD_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/esm_config.h"
#include "invoker/esm_invoker.h"

/* The event to invoke the mapping's function with: the record's "payload" (the original event
 * of exactly the discarded records, written when the mapping has
 * EsmdOptions.IncludeRecordsInFailureRecord), when the record is a failure record of m's
 * source. NULL when it must be skipped; why says why (never empty then). */
const cJSON *esm_replay_event_of(const cJSON *record, const esm_mapping_config *m, char *why,
                                 size_t why_len);

/* Whether an invocation replayed the records: a success that reports no batchItemFailures.
 * false: why says what the function answered. */
bool esm_replay_succeeded(const esm_invoke_result *r, char *why, size_t why_len);

#endif
