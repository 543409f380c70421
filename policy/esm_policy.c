/* The pure retry / bisect / age policy. The model is documented in esm_policy.h. */
#include "policy/esm_policy.h"

#include "common/esm_event_size.h"

#include <stdlib.h>
#include <string.h>

void esm_policy_state_init(esm_policy_state *st, size_t n_records)
{
    memset(st, 0, sizeof *st);
    st->n = n_records;
    if (n_records > 0) {
        st->ends[0] = n_records;
        st->depth = 1;
    }
}

bool esm_policy_state_done(const esm_policy_state *st)
{
    return st->depth == 0;
}

/* The invariants every decide() keeps: ends strictly decrease up the stack, the unit is
 * non-empty while not done, and everything is resolved once done. */
static bool state_valid(const esm_policy_state *st)
{
    if (st->depth > ESM_POLICY_MAX_DEPTH) return false;
    if (st->depth == 0) return st->lo == st->n;
    if (st->ends[0] != st->n) return false;
    for (size_t i = 1; i < st->depth; i++)
        if (st->ends[i] >= st->ends[i - 1]) return false;
    return st->lo < st->ends[st->depth - 1];
}

void esm_policy_decision_init(esm_policy_decision *d)
{
    memset(d, 0, sizeof *d);
}

void esm_policy_decision_free(esm_policy_decision *d)
{
    free(d->steps);
    memset(d, 0, sizeof *d);
}

const char *esm_condition_name(esm_condition c)
{
    switch (c) {
    case ESM_COND_RETRY_ATTEMPTS_EXHAUSTED:
        return "RetryAttemptsExhausted";
    case ESM_COND_RECORD_AGE_EXCEEDED:
        return "RecordAgeExceeded";
    case ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED:
        return "MaximumPayloadSizeExceeded";
    case ESM_COND_NONE:
        break;
    }
    return NULL;
}

/* Appends a step, merging it into the previous one when they are contiguous and alike. */
static int push_step(esm_policy_decision *d, esm_step_kind kind, size_t lo, size_t hi,
                     esm_condition cond, unsigned count, int64_t delay)
{
    if ((kind == ESM_STEP_ACK || kind == ESM_STEP_DISCARD) && lo >= hi) return 0;
    if (d->n > 0) {
        esm_policy_step *last = &d->steps[d->n - 1];
        if (last->kind == kind && last->hi == lo &&
            (kind == ESM_STEP_ACK || (kind == ESM_STEP_DISCARD && last->condition == cond &&
                                      last->invoke_count == count))) {
            last->hi = hi;
            return 0;
        }
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        esm_policy_step *p = realloc(d->steps, cap * sizeof *p);
        if (!p) return -1;
        d->steps = p;
        d->cap = cap;
    }
    d->steps[d->n++] = (esm_policy_step){.kind = kind,
                                         .lo = lo,
                                         .hi = hi,
                                         .condition = cond,
                                         .invoke_count = count,
                                         .delay_ms = delay};
    return 0;
}

/* Full jitter: uniform in [0, min(max, base * 2^(k-1))]. */
static int64_t backoff_ms(const esm_policy_config *cfg, unsigned k, uint32_t random)
{
    if (cfg->backoff_base_ms <= 0 || k == 0) return 0;
    int64_t max = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : cfg->backoff_base_ms;
    int64_t cap = cfg->backoff_base_ms;
    for (unsigned i = 1; i < k && cap < max; i++)
        cap *= 2;
    if (cap > max) cap = max;
    return (int64_t)(random % (uint64_t)(cap + 1));
}

static size_t unit_hi(const esm_policy_state *s)
{
    return s->ends[s->depth - 1];
}

/* The unit is resolved: move to the next one (the parent's second half, or done). */
static void unit_done(esm_policy_state *s)
{
    s->lo = s->ends[--s->depth];
    s->ends[s->depth] = 0; /* canonical: unused slots are 0, so states compare with memcmp */
    s->attempts = 0;
    s->invokes = 0;
}

/* Makes [lo, end) the unit. A fresh unit: no attempts, no invocations. */
static bool unit_push(esm_policy_state *s, size_t end)
{
    if (s->depth == ESM_POLICY_MAX_DEPTH) return false;
    s->ends[s->depth++] = end;
    s->attempts = 0;
    s->invokes = 0;
    return true;
}

static bool retries_exhausted(const esm_policy_config *cfg, unsigned attempts)
{
    return cfg->max_retry_attempts >= 0 && attempts > (unsigned)cfg->max_retry_attempts;
}

typedef struct {
    int64_t delay;   /* from the outcome */
    bool unit_bound; /* the delay is a function-error backoff: void once the unit changes */
} pending_delay;

static int on_function_error(esm_policy_state *s, const esm_policy_config *cfg, uint32_t random,
                             esm_policy_decision *d, pending_delay *pd)
{
    size_t lo = s->lo, hi = unit_hi(s);
    s->invokes++;
    if (cfg->bisect && hi - lo > 1 && unit_push(s, lo + (hi - lo + 1) / 2))
        return 0; /* first half now, no attempt used, no delay */
    s->attempts++;
    if (retries_exhausted(cfg, s->attempts)) {
        if (push_step(d, ESM_STEP_DISCARD, lo, hi, ESM_COND_RETRY_ATTEMPTS_EXHAUSTED, s->invokes,
                      0))
            return -1;
        unit_done(s);
        return 0;
    }
    pd->delay = backoff_ms(cfg, s->attempts, random);
    pd->unit_bound = true;
    return 0;
}

static int on_partial(esm_policy_state *s, const esm_policy_outcome *out,
                      const esm_policy_config *cfg, uint32_t random, esm_policy_decision *d,
                      pending_delay *pd)
{
    size_t lo = s->lo, hi = unit_hi(s);
    size_t m = hi;
    for (size_t i = 0; i < out->n_failed; i++) {
        if (out->failed[i] < lo || out->failed[i] >= hi)
            return on_function_error(s, cfg, random, d, pd);
        if (out->failed[i] < m) m = out->failed[i];
    }
    s->invokes++;
    if (m > lo) { /* progress: the shorter unit has had one failed attempt */
        if (push_step(d, ESM_STEP_ACK, lo, m, ESM_COND_NONE, 0, 0)) return -1;
        s->lo = m;
        s->attempts = 1;
        s->invokes = 1;
    } else {
        s->attempts++;
    }
    if (!retries_exhausted(cfg, s->attempts)) {
        pd->delay = backoff_ms(cfg, s->attempts, random);
        pd->unit_bound = true;
        return 0;
    }
    /* Out of attempts: discard exactly the listed records, ack the rest of the unit. */
    bool *failed = calloc(hi - m, sizeof *failed);
    if (!failed) return -1;
    for (size_t i = 0; i < out->n_failed; i++)
        failed[out->failed[i] - m] = true;
    int rc = 0;
    for (size_t i = m; i < hi && rc == 0; i++)
        rc = failed[i - m] ? push_step(d, ESM_STEP_DISCARD, i, i + 1,
                                       ESM_COND_RETRY_ATTEMPTS_EXHAUSTED, s->invokes, 0)
                           : push_step(d, ESM_STEP_ACK, i, i + 1, ESM_COND_NONE, 0, 0);
    free(failed);
    if (rc) return -1;
    unit_done(s);
    return 0;
}

/* The rendered event was over the limit although the sizes said it fits: never send it again
 * as it was. One record is discarded; a larger unit is halved (no attempt used). */
static int on_too_large(esm_policy_state *s, esm_policy_decision *d)
{
    size_t lo = s->lo, hi = unit_hi(s);
    if (hi - lo > 1 && unit_push(s, lo + (hi - lo + 1) / 2)) return 0;
    /* One record, or no room for another split (cannot happen below 2^64 records). */
    if (push_step(d, ESM_STEP_DISCARD, lo, hi, ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED, s->invokes,
                  0))
        return -1;
    unit_done(s);
    return 0;
}

static int apply_outcome(esm_policy_state *s, const esm_policy_outcome *out,
                         const esm_policy_config *cfg, uint32_t random, esm_policy_decision *d,
                         pending_delay *pd)
{
    esm_outcome_kind kind = out->kind;
    if (kind == ESM_OUTCOME_PARTIAL && (!cfg->rbif || out->n_failed == 0))
        kind = ESM_OUTCOME_SUCCESS;
    if (kind != ESM_OUTCOME_THROTTLE && kind != ESM_OUTCOME_INVOKE_ERROR &&
        kind != ESM_OUTCOME_NONE)
        s->backoffs = 0;
    switch (kind) {
    case ESM_OUTCOME_NONE:
        return 0;
    case ESM_OUTCOME_SUCCESS:
        if (push_step(d, ESM_STEP_ACK, s->lo, unit_hi(s), ESM_COND_NONE, 0, 0)) return -1;
        unit_done(s);
        return 0;
    case ESM_OUTCOME_PARTIAL:
        return on_partial(s, out, cfg, random, d, pd);
    case ESM_OUTCOME_FUNCTION_ERROR:
        return on_function_error(s, cfg, random, d, pd);
    case ESM_OUTCOME_TOO_LARGE:
        return on_too_large(s, d);
    case ESM_OUTCOME_THROTTLE:
    case ESM_OUTCOME_INVOKE_ERROR:
        s->backoffs++;
        pd->delay = backoff_ms(cfg, s->backoffs, random);
        if (out->retry_after_ms > pd->delay) pd->delay = out->retry_after_ms;
        pd->unit_bound = false;
        return 0;
    }
    return -1;
}

static bool expired(const esm_policy_config *cfg, const esm_policy_record *r, int64_t now_ms)
{
    return cfg->max_record_age_seconds >= 0 &&
           now_ms - r->arrival_ms > (int64_t)cfg->max_record_age_seconds * 1000;
}

static bool oversized(const esm_policy_config *cfg, const esm_policy_record *r)
{
    return cfg->max_payload_bytes > 0 &&
           esm_event_size(cfg->event_envelope, 1, r->size) > cfg->max_payload_bytes;
}

/* The end of the longest prefix of [lo, hi) whose event fits (at least lo + 1). */
static size_t fitting_end(const esm_policy_record *recs, size_t lo, size_t hi,
                          const esm_policy_config *cfg)
{
    if (cfg->max_payload_bytes == 0) return hi;
    size_t bytes = recs[lo].size;
    for (size_t j = lo + 1; j < hi; j++) {
        if (esm_event_size(cfg->event_envelope, j - lo + 1, bytes + recs[j].size) >
            cfg->max_payload_bytes)
            return j;
        bytes += recs[j].size;
    }
    return hi;
}

/* Discards what must not be invoked (expired records of the unit, oversized records at its
 * head) and narrows the unit to the longest prefix whose event fits (so it ends before an
 * oversized record). Leaves the unit to invoke as the current one, or the state done. */
static int prepare_invoke(const esm_policy_record *recs, esm_policy_state *s,
                          const esm_policy_config *cfg, int64_t now_ms, esm_policy_decision *d)
{
    while (s->depth > 0) {
        size_t lo = s->lo, hi = unit_hi(s);
        size_t last_old = hi;
        for (size_t i = lo; i < hi; i++)
            if (expired(cfg, &recs[i], now_ms)) last_old = i;
        if (last_old != hi) {
            if (push_step(d, ESM_STEP_DISCARD, lo, last_old + 1, ESM_COND_RECORD_AGE_EXCEEDED,
                          s->invokes, 0))
                return -1;
            s->lo = last_old + 1;
            if (s->lo == hi) unit_done(s);
            continue;
        }
        if (oversized(cfg, &recs[lo])) {
            size_t j = lo;
            while (j < hi && oversized(cfg, &recs[j]))
                j++;
            if (push_step(d, ESM_STEP_DISCARD, lo, j, ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED, 0, 0))
                return -1;
            s->lo = j;
            if (j == hi) unit_done(s);
            continue;
        }
        size_t end = fitting_end(recs, lo, hi, cfg);
        if (end < hi && !unit_push(s, end)) return -1;
        return 0;
    }
    return 0;
}

int esm_policy_decide(const esm_policy_record *recs, size_t n, esm_policy_state *st,
                      const esm_policy_outcome *out, const esm_policy_config *cfg, int64_t now_ms,
                      uint32_t random, esm_policy_decision *d)
{
    if (!st || !out || !cfg || !d || (n > 0 && !recs) || st->n != n || !state_valid(st)) return -1;
    if (out->kind == ESM_OUTCOME_PARTIAL && out->n_failed > 0 && !out->failed)
        return -1; /* never ack records whose failure list went missing */
    d->n = 0;
    if (st->depth == 0) {
        if (out->kind != ESM_OUTCOME_NONE) return -1;
        return push_step(d, ESM_STEP_DONE, n, n, ESM_COND_NONE, 0, 0);
    }

    esm_policy_state s = *st;
    pending_delay pd = {0, false};
    if (apply_outcome(&s, out, cfg, random, d, &pd)) goto fail;
    size_t unit_lo = s.lo, unit_end = s.depth ? unit_hi(&s) : 0, unit_depth = s.depth;
    if (prepare_invoke(recs, &s, cfg, now_ms, d)) goto fail;
    if (s.depth == 0) {
        if (push_step(d, ESM_STEP_DONE, n, n, ESM_COND_NONE, 0, 0)) goto fail;
    } else {
        size_t lo = s.lo, hi = unit_hi(&s);
        bool same_unit = s.depth == unit_depth && hi == unit_end && lo >= unit_lo;
        int64_t delay = (pd.unit_bound && !same_unit) ? 0 : pd.delay;
        if (delay > 0 && cfg->max_record_age_seconds >= 0) {
            /* Never wait past the moment the oldest record of the unit expires. */
            int64_t oldest = recs[lo].arrival_ms;
            for (size_t i = lo + 1; i < hi; i++)
                if (recs[i].arrival_ms < oldest) oldest = recs[i].arrival_ms;
            int64_t until = oldest + (int64_t)cfg->max_record_age_seconds * 1000 + 1 - now_ms;
            if (until < delay) delay = until > 0 ? until : 0;
        }
        if ((out->kind == ESM_OUTCOME_THROTTLE || out->kind == ESM_OUTCOME_INVOKE_ERROR) &&
            out->retry_after_ms > delay)
            delay = out->retry_after_ms;
        if (push_step(d, ESM_STEP_INVOKE, lo, hi, ESM_COND_NONE, 0, delay)) goto fail;
    }
    *st = s;
    return 0;
fail:
    d->n = 0;
    return -1;
}
