/* SQS "stuck lane" tracking for /readyz and /status (EsmdOptions.StuckLaneSeconds). An SQS
 * mapping has no ordered lanes, so a lane is blocked when:
 *   - a FIFO message group keeps failing (its messages return and fail again), or
 *   - the mapping as a whole fails every invocation (no message of any batch succeeds).
 * Failed SQS messages come back after the visibility timeout (or EsmdOptions.RetryBackoff), so
 * an entry whose last failure is older than the caller's expiry (a few visibility timeouts) is
 * forgotten: its messages went to a DLQ, were deleted or expired. Pure, no I/O. */
#ifndef ESM_SQS_STUCK_H
#define ESM_SQS_STUCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"

#define ESM_SQS_STUCK_MAX_GROUPS 1024

typedef struct {
    char *group;
    int64_t since_ms, last_failed_ms;
    char last_error[160];
} esm_sqs_stuck_entry;

typedef struct {
    int64_t failing_since_ms, failing_last_ms; /* mapping: every invocation failed since */
    char failing_error[160];
    esm_sqs_stuck_entry *groups;
    size_t n, cap;
} esm_sqs_stuck;

void esm_sqs_stuck_free(esm_sqs_stuck *t);
/* One invocation attempt: ok when at least one of its messages succeeded. */
void esm_sqs_stuck_invocation(esm_sqs_stuck *t, bool ok, const char *why, int64_t now_ms);
/* One FIFO group in an invocation attempt: failed when a message of the group failed. */
void esm_sqs_stuck_group(esm_sqs_stuck *t, const char *group, bool failed, const char *why,
                         int64_t now_ms);
/* Forgets entries without a failure for expire_ms; the earliest blocked-since, 0 when none. */
int64_t esm_sqs_stuck_since(esm_sqs_stuck *t, int64_t now_ms, int64_t expire_ms);
/* Appends ,"FailingSince":ISO|null,"FailingError":..,"BlockedGroups":[{"MessageGroupId",
 * "BlockedSince","LastFailure","LastError"}] (at most 20 groups, the longest blocked first). */
void esm_sqs_stuck_status(const esm_sqs_stuck *t, esm_buf *out);

#endif
