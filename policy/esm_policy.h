/* The retry / bisect / record-age policy for one ordered batch: a pure function.
 *
 * No I/O, no clock, no randomness of its own: the caller passes "now" and a random number.
 * Given the batch, its attempt history (esm_policy_state), the outcome of the last invocation,
 * the mapping's settings and the time, esm_policy_decide says what happens next: acknowledge
 * and discard ranges (in record order), then exactly one INVOKE [lo,hi) after a delay, or DONE.
 *
 * Model (docs/design.md "Decisions where AWS is silent" is the source of truth):
 * - The "unit" is the sub-batch being worked on: [st->lo, st->ends[st->depth-1]). ends[] is a
 *   stack of sub-batch ends; ends[0] == n. Records [0, lo) are resolved (acked or discarded).
 *   Every INVOKE is exactly the current unit, so an outcome always refers to the unit.
 * - Success: ack the unit, move to the next one (the second half of the parent, if any).
 * - Function error: with bisect and a unit of more than one record, split into [lo, lo+ceil(n/2))
 *   and the rest; the first half (with its own splits) completes before the second starts; no
 *   attempt is used and the half is invoked without delay. Otherwise the failure counts as an
 *   attempt: when attempts > MaximumRetryAttempts (-1 = unlimited) the unit is discarded with
 *   RetryAttemptsExhausted, else it is retried after a full-jitter backoff exponential in attempts.
 * - Partial (RBIF on, failed indices given): no halving. Everything before the lowest failed index
 *   is acked and the unit resumes there. The partial counts as an attempt. DECISION: when the
 *   resume point moves forward the attempt counter RESETS to 1 (this partial is the first failed
 *   attempt of the shorter unit) and the invoke count to 1; when it does not move, attempts grow.
 *   So a record is tried at most MaximumRetryAttempts+1 times after it first heads the unit, and
 *   a function that makes progress is never cut off early. When attempts run out, only the records
 *   the last response lists as failed are discarded (one DISCARD per contiguous run); the others in
 *   the unit are acked. Failed indices outside the unit make the outcome a function error
 *   (defensive: the invoker already validates identifiers). A partial with no failed indices, or
 *   a partial while RBIF is off, is a success (AWS ignores the body without RBIF).
 * - Throttle / invocation error: never split, never count as an attempt, never count as an
 *   invocation; retried with full-jitter backoff exponential in consecutive throttles
 *   (st->backoffs), with the outcome's Retry-After as a lower bound.
 * - Record age (MaximumRecordAgeInSeconds, -1 = unlimited), checked before every invoke, on the
 *   unit only: a record is expired when now - arrival > limit. If any record of the unit is
 *   expired, the unit's prefix up to and including the LAST expired record is discarded with
 *   RecordAgeExceeded (on ordered sources arrival times ascend, so this is exactly the old
 *   records; a fresh record sorted before an old one goes with it so order is kept) and the rest
 *   is invoked. The attempt counters of a shrunk unit are kept (its records were tried).
 *   A backoff delay never extends past the moment the unit's oldest record expires.
 * - Size (docs/design.md "Event size"): a unit's event is
 *   esm_event_size(event_envelope, records, their sizes summed), exactly the bytes the source
 *   renders. A record whose event alone exceeds max_payload_bytes is discarded with
 *   MaximumPayloadSizeExceeded without an invocation; a unit whose event does not fit is first
 *   narrowed to its longest prefix that does (a split that uses no attempts), so every INVOKE
 *   fits. TOO_LARGE (the lane found the rendered event over the limit anyway): a one-record
 *   unit is discarded with MaximumPayloadSizeExceeded, a larger one splits into halves as a
 *   bisect does (without BisectBatchOnFunctionError too); it is never retried as it was.
 * - Adjacent ACK steps are merged; adjacent DISCARD steps are merged when the condition and
 *   invoke count agree (AWS merges the metadata of failed sub-batches).
 * - approximateInvokeCount of a DISCARD = invocations of that unit that actually ran (throttles
 *   not counted; invocations of a parent before a bisect split not counted), 0 if never invoked.
 *
 * Caller protocol: call with ESM_OUTCOME_NONE first (and after a restart while an invocation was
 * in flight: its result is unknown, it is simply re-sent and not counted). When an INVOKE has
 * delay_ms > 0, the caller should call decide again with ESM_OUTCOME_NONE when the timer fires:
 * NONE changes no counters and re-checks age at the real invoke time. Persist the state (see
 * esm_policy_state_format) together with the ACK/DISCARD effects of each decision.
 */
#ifndef ESM_POLICY_H
#define ESM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *id;     /* source identifier (sequence number, offset, message id); may be NULL */
    int64_t arrival_ms; /* epoch ms the source received the record */
    size_t size;        /* bytes of the record as rendered in the event (no ',' separator) */
} esm_policy_record;

typedef struct {
    int max_retry_attempts;     /* -1 = unlimited */
    int max_record_age_seconds; /* -1 = unlimited */
    bool bisect;                /* BisectBatchOnFunctionError */
    bool rbif;                  /* FunctionResponseTypes contains ReportBatchItemFailures */
    int backoff_base_ms;        /* e.g. 1000 */
    int backoff_max_ms;         /* e.g. 60000 */
    size_t max_payload_bytes;   /* 0 = no limit; 6 MB on AWS */
    size_t event_envelope;      /* bytes of the event without records (esm_event_size) */
} esm_policy_config;

typedef enum {
    ESM_OUTCOME_NONE,           /* nothing invoked yet, or the result is unknown */
    ESM_OUTCOME_SUCCESS,        /* ran, no error (a null / empty RBIF list included) */
    ESM_OUTCOME_PARTIAL,        /* ran, valid RBIF response with failed items */
    ESM_OUTCOME_FUNCTION_ERROR, /* ran and failed (incl. a timeout after the request was sent,
                                   a malformed RBIF response) */
    ESM_OUTCOME_THROTTLE,       /* did not run: 429 */
    ESM_OUTCOME_INVOKE_ERROR,   /* did not run: 5xx, esmd misconfigured (401/403/404/405/407),
                                   connect/transport error */
    ESM_OUTCOME_TOO_LARGE,      /* not sent: the rendered event exceeds the payload limit */
} esm_outcome_kind;

typedef struct {
    esm_outcome_kind kind;
    const size_t *failed; /* PARTIAL: absolute record indices, any order, duplicates allowed */
    size_t n_failed;
    int64_t retry_after_ms; /* THROTTLE / INVOKE_ERROR: lower bound for the delay; -1 = none */
} esm_policy_outcome;

typedef enum {
    ESM_COND_NONE,
    ESM_COND_RETRY_ATTEMPTS_EXHAUSTED,
    ESM_COND_RECORD_AGE_EXCEEDED,
    ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
} esm_condition;

#define ESM_POLICY_MAX_DEPTH 64

typedef struct esm_policy_state {
    size_t n;                          /* records in the batch */
    size_t lo;                         /* [0, lo) resolved */
    size_t ends[ESM_POLICY_MAX_DEPTH]; /* sub-batch end stack; ends[0] == n */
    size_t depth;                      /* entries in ends; 0 once done */
    unsigned attempts;                 /* counted failures of the current unit */
    unsigned invokes;                  /* invocations of the current unit that ran */
    unsigned backoffs;                 /* consecutive throttles / invocation errors */
} esm_policy_state;

typedef enum { ESM_STEP_ACK, ESM_STEP_DISCARD, ESM_STEP_INVOKE, ESM_STEP_DONE } esm_step_kind;

typedef struct {
    esm_step_kind kind;
    size_t lo, hi;           /* ACK / DISCARD / INVOKE: record range [lo, hi) */
    esm_condition condition; /* DISCARD */
    unsigned invoke_count;   /* DISCARD: approximateInvokeCount */
    int64_t delay_ms;        /* INVOKE: wait this long after now_ms */
} esm_policy_step;

typedef struct {
    esm_policy_step *steps;
    size_t n, cap;
} esm_policy_decision;

void esm_policy_state_init(esm_policy_state *st, size_t n_records);
bool esm_policy_state_done(const esm_policy_state *st);

void esm_policy_decision_init(esm_policy_decision *d);
void esm_policy_decision_free(esm_policy_decision *d);

/* Clears d, then appends ACK/DISCARD steps in record order, then exactly one INVOKE or DONE.
 * Returns 0, or -1 on bad input (state does not match n, an outcome while done, a NULL
 * argument, a PARTIAL with n_failed > 0 but no list) or allocation failure; on -1 the state is
 * unchanged. */
int esm_policy_decide(const esm_policy_record *recs, size_t n, esm_policy_state *st,
                      const esm_policy_outcome *out, const esm_policy_config *cfg, int64_t now_ms,
                      uint32_t random, esm_policy_decision *d);

/* Compact text form of the state for the checkpoint store, e.g. "p1 n=10 lo=3 a=1 i=2 b=0
 * e=10,5". Returns the length written (excluding NUL), or -1 if it does not fit in cap. */
#define ESM_POLICY_STATE_TEXT_MAX 1536
int esm_policy_state_format(const esm_policy_state *st, char *out, size_t cap);
/* Parses esm_policy_state_format's output; checks it is consistent. Returns 0 or -1. */
int esm_policy_state_parse(esm_policy_state *st, const char *text);

/* "RetryAttemptsExhausted", "RecordAgeExceeded", "MaximumPayloadSizeExceeded" (NULL for NONE). */
const char *esm_condition_name(esm_condition c);

#endif
