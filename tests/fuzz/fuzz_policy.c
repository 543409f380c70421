/* libFuzzer target for the retry / bisect / age policy (policy/esm_policy.c) and its state text
 * form (esm_policy_state.c).
 *
 * Input starting with 'p': the text is parsed as a stored state; whatever parses must format and
 * parse back to the same state. Any other input drives a simulated batch: byte 0 = records
 * (1..24), byte 1 = flags (bisect, RBIF, age limit, payload limit, one oversized record, large
 * records), byte 2 = MaximumRetryAttempts (-1..6); each later byte picks the next outcome
 * (success, function error, partial with a mask, throttle, invocation error or an event found
 * too large, unknown) and how far the clock jumps. When the bytes run out, the function
 * succeeds. Invariants of every decision:
 *  - ACK / DISCARD steps cover the next records contiguously, then exactly one INVOKE or DONE;
 *  - an INVOKE is exactly the current unit, delay >= 0, and its event fits the payload limit;
 *    DONE exactly when every record is settled;
 *  - a function error on a unit of k > 1 records with bisect invokes the first ceil(k/2) next;
 *  - a RetryAttemptsExhausted discard reports at most MaximumRetryAttempts + 1 invocations;
 *  - RecordAgeExceeded only for a range holding an expired record; MaximumPayloadSizeExceeded
 *    only for records that are oversized or whose one-record event was found too large;
 *  - the state survives format + parse unchanged (a restart resumes where it was);
 *  - once the function succeeds, the batch finishes within a bounded number of decisions, and
 *    every record was acknowledged or discarded exactly once. */
// FUZZ_SOURCES: policy/esm_policy.c policy/esm_policy_state.c
#include "common/esm_event_size.h"
#include "policy/esm_policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 24

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

static int same_state(const esm_policy_state *a, const esm_policy_state *b)
{
    if (a->n != b->n || a->lo != b->lo || a->depth != b->depth || a->attempts != b->attempts ||
        a->invokes != b->invokes || a->backoffs != b->backoffs)
        return 0;
    for (size_t i = 0; i < a->depth; i++)
        if (a->ends[i] != b->ends[i]) return 0;
    return 1;
}

static void roundtrip(const esm_policy_state *st)
{
    char text[ESM_POLICY_STATE_TEXT_MAX];
    int w = esm_policy_state_format(st, text, sizeof text);
    check(w > 0 && (size_t)w < sizeof text, "state formats");
    esm_policy_state back;
    memset(&back, 0, sizeof back);
    check(esm_policy_state_parse(&back, text) == 0, "formatted state parses");
    check(same_state(st, &back), "state round-trips");
}

static void parse_text(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    esm_policy_state st;
    memset(&st, 0, sizeof st);
    if (text && esm_policy_state_parse(&st, text) == 0) {
        check(st.n > 0 ? st.lo <= st.n : 1, "parsed lo <= n");
        check(st.depth <= ESM_POLICY_MAX_DEPTH, "parsed depth bounded");
        roundtrip(&st);
    }
    free(text);
}

typedef struct {
    const esm_policy_config *cfg;
    const esm_policy_record *recs;
    size_t n;
    int settled[MAXN]; /* 0 open, 1 acked, 2 discarded */
    bool too_large;    /* the outcome decided on is TOO_LARGE */
} sim;

static size_t event_bytes(const sim *s, size_t lo, size_t hi)
{
    size_t bytes = 0;
    for (size_t i = lo; i < hi; i++)
        bytes += s->recs[i].size;
    return esm_event_size(s->cfg->event_envelope, hi - lo, bytes);
}

/* Checks one decision against the state before it; returns the INVOKE step or NULL (DONE). */
static const esm_policy_step *check_decision(sim *s, const esm_policy_state *before,
                                             const esm_policy_state *after,
                                             const esm_policy_decision *d, int64_t now)
{
    check(d->n >= 1, "a decision has steps");
    size_t pos = before->lo;
    for (size_t i = 0; i + 1 < d->n; i++) {
        const esm_policy_step *st = &d->steps[i];
        check(st->kind == ESM_STEP_ACK || st->kind == ESM_STEP_DISCARD, "ACK/DISCARD first");
        check(st->lo == pos && st->hi > st->lo && st->hi <= s->n, "steps contiguous in order");
        for (size_t r = st->lo; r < st->hi; r++) {
            check(s->settled[r] == 0, "a record is settled once");
            s->settled[r] = st->kind == ESM_STEP_ACK ? 1 : 2;
        }
        if (st->kind == ESM_STEP_DISCARD) {
            check(st->condition != ESM_COND_NONE && esm_condition_name(st->condition),
                  "a discard has a condition");
            if (st->condition == ESM_COND_RETRY_ATTEMPTS_EXHAUSTED) {
                check(s->cfg->max_retry_attempts >= 0, "no exhaustion with unlimited retries");
                check(st->invoke_count <= (unsigned)s->cfg->max_retry_attempts + 1,
                      "at most MaximumRetryAttempts + 1 invocations");
            } else if (st->condition == ESM_COND_RECORD_AGE_EXCEEDED) {
                int expired = 0;
                for (size_t r = st->lo; r < st->hi; r++)
                    if (now - s->recs[r].arrival_ms >
                        (int64_t)s->cfg->max_record_age_seconds * 1000)
                        expired = 1;
                check(s->cfg->max_record_age_seconds >= 0 && expired,
                      "age discard holds an old record");
            } else if (st->condition == ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED) {
                /* Runs of such records are merged into one discard. */
                for (size_t r = st->lo; r < st->hi; r++)
                    check((s->too_large && r == before->lo) ||
                              (s->cfg->max_payload_bytes > 0 &&
                               event_bytes(s, r, r + 1) > s->cfg->max_payload_bytes),
                          "a payload discard holds only oversized or refused records");
            }
        }
        pos = st->hi;
    }
    check(after->lo == pos, "state lo follows the settled records");
    const esm_policy_step *last = &d->steps[d->n - 1];
    if (last->kind == ESM_STEP_DONE) {
        check(esm_policy_state_done(after) && pos == s->n, "DONE when all records are settled");
        return NULL;
    }
    check(last->kind == ESM_STEP_INVOKE, "the last step is INVOKE or DONE");
    check(!esm_policy_state_done(after), "not done while invoking");
    check(last->lo == after->lo && after->depth > 0 && last->hi == after->ends[after->depth - 1] &&
              last->hi > last->lo,
          "INVOKE is the current unit");
    check(last->delay_ms >= 0, "delay >= 0");
    check(s->cfg->max_payload_bytes == 0 ||
              event_bytes(s, last->lo, last->hi) <= s->cfg->max_payload_bytes,
          "an INVOKE fits the payload limit");
    return last;
}

static void simulate(const uint8_t *data, size_t size)
{
    if (size < 3) return;
    size_t n = 1 + data[0] % MAXN;
    uint8_t fl = data[1];
    esm_policy_config cfg = {.max_retry_attempts = (int)(data[2] % 8) - 1,
                             .max_record_age_seconds = (fl & 4) ? 1 + (fl >> 5) * 10 : -1,
                             .bisect = fl & 1,
                             .rbif = (fl & 2) != 0,
                             .backoff_base_ms = 1000,
                             .backoff_max_ms = 60000,
                             .max_payload_bytes = (fl & 8) ? 1000 : 0,
                             .event_envelope = (fl & 8) ? 20 : 0};
    int64_t now = 1700000000000;
    esm_policy_record recs[MAXN];
    for (size_t i = 0; i < n; i++)
        recs[i] = (esm_policy_record){.id = NULL,
                                      .arrival_ms = now - 5000 + (int64_t)i * 100,
                                      .size = (fl & 16) && i == n / 2 ? 5000
                                              : (fl & 64)             ? 300
                                                                      : 100};
    sim s = {.cfg = &cfg, .recs = recs, .n = n};
    esm_policy_state st;
    esm_policy_state_init(&st, n);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    esm_policy_outcome out = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    size_t failed[MAXN];
    size_t pos = 3, after_input = 0;
    uint32_t rnd = 12345;
    for (;;) {
        esm_policy_state before = st;
        rnd = rnd * 1103515245u + 12345u;
        s.too_large = out.kind == ESM_OUTCOME_TOO_LARGE;
        check(esm_policy_decide(recs, n, &st, &out, &cfg, now, rnd, &d) == 0, "decide accepts");
        const esm_policy_step *inv = check_decision(&s, &before, &st, &d, now);
        roundtrip(&st);
        if (!inv) break;
        now += inv->delay_ms;
        size_t lo = inv->lo, hi = inv->hi;
        out = (esm_policy_outcome){.kind = ESM_OUTCOME_SUCCESS, .retry_after_ms = -1};
        if (pos < size) {
            uint8_t b = data[pos++];
            now += (int64_t)(b >> 4) * 700;
            switch (b % 6) {
            case 0:
                break;
            case 1:
                out.kind = ESM_OUTCOME_FUNCTION_ERROR;
                break;
            case 2: {
                uint8_t mask = pos < size ? data[pos++] : 1;
                size_t nf = 0;
                for (size_t r = lo; r < hi; r++)
                    if (mask & (1u << ((r - lo) % 8))) failed[nf++] = r;
                out.kind = ESM_OUTCOME_PARTIAL;
                out.failed = failed;
                out.n_failed = nf;
                break;
            }
            case 3:
                out.kind = ESM_OUTCOME_THROTTLE;
                out.retry_after_ms = (b & 8) ? 1500 : -1;
                break;
            case 4:
                out.kind = (b & 8) ? ESM_OUTCOME_TOO_LARGE : ESM_OUTCOME_INVOKE_ERROR;
                break;
            default:
                out.kind = ESM_OUTCOME_NONE; /* a restart while the call was in flight */
                break;
            }
        } else {
            check(++after_input <= 4 * n + 8, "the batch finishes once the function succeeds");
        }
        if (out.kind == ESM_OUTCOME_FUNCTION_ERROR && cfg.bisect && hi - lo > 1) {
            esm_policy_state b2 = st;
            esm_policy_decision d2;
            esm_policy_decision_init(&d2);
            sim s2 = s;
            check(esm_policy_decide(recs, n, &b2, &out, &cfg, now, rnd, &d2) == 0, "decide");
            const esm_policy_step *half = check_decision(&s2, &st, &b2, &d2, now);
            /* Age expiry may settle records first; otherwise the first half comes next. */
            if (half && d2.n == 1)
                check(half->lo == lo && half->hi == lo + (hi - lo + 1) / 2, "bisect: first half");
            esm_policy_decision_free(&d2);
        }
    }
    for (size_t i = 0; i < n; i++)
        check(s.settled[i] != 0, "every record settled");
    esm_policy_decision_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 'p')
        parse_text(data, size);
    else
        simulate(data, size);
    return 0;
}
