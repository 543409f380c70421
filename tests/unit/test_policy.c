/* esm_policy_decide: hand-computed sequences for small cases, plus a simulator that drives the
 * policy against a fake function over every batch size 1..64, poison position, and setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/esm_policy.h"

#define MAXN 64

static esm_policy_config cfg_of(int retries, bool bisect, bool rbif)
{
    return (esm_policy_config){.max_retry_attempts = retries,
                               .max_record_age_seconds = -1,
                               .bisect = bisect,
                               .rbif = rbif,
                               .backoff_base_ms = 1000,
                               .backoff_max_ms = 60000,
                               .max_payload_bytes = 6 * 1024 * 1024};
}

static void fresh_records(esm_policy_record *recs, size_t n, int64_t arrival)
{
    for (size_t i = 0; i < n; i++)
        recs[i] = (esm_policy_record){.id = NULL, .arrival_ms = arrival, .size = 100};
}

/* ---- trace: one token per step ---------------------------------------------------------- */

typedef struct {
    char s[1 << 16];
    size_t len;
} trace;

static void trace_add(trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace_add(trace *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->s + t->len, sizeof t->s - t->len, fmt, ap);
    va_end(ap);
    assert_true(w >= 0 && (size_t)w < sizeof t->s - t->len);
    t->len += (size_t)w;
}

static char cond_char(esm_condition c)
{
    switch (c) {
    case ESM_COND_RETRY_ATTEMPTS_EXHAUSTED:
        return 'R';
    case ESM_COND_RECORD_AGE_EXCEEDED:
        return 'G';
    case ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED:
        return 'P';
    case ESM_COND_NONE:
        break;
    }
    return '?';
}

/* Appends the decision's steps; returns the INVOKE step (or NULL when DONE). Also checks the
 * shape: ACK/DISCARD in order, then exactly one INVOKE or DONE. */
static const esm_policy_step *trace_decision(trace *t, const esm_policy_decision *d, size_t *pos)
{
    assert_true(d->n >= 1);
    for (size_t i = 0; i < d->n; i++) {
        const esm_policy_step *s = &d->steps[i];
        bool last = i + 1 == d->n;
        switch (s->kind) {
        case ESM_STEP_ACK:
        case ESM_STEP_DISCARD:
            assert_false(last);
            assert_true(s->lo == *pos && s->hi > s->lo); /* monotone, contiguous */
            *pos = s->hi;
            if (s->kind == ESM_STEP_ACK)
                trace_add(t, "A%zu-%zu ", s->lo, s->hi);
            else
                trace_add(t, "D%zu-%zu:%c%u ", s->lo, s->hi, cond_char(s->condition),
                          s->invoke_count);
            break;
        case ESM_STEP_INVOKE:
            assert_true(last);
            assert_true(s->lo == *pos && s->hi > s->lo);
            trace_add(t, "I%zu-%zu", s->lo, s->hi);
            if (s->delay_ms) trace_add(t, "+%lld", (long long)s->delay_ms);
            trace_add(t, " ");
            return s;
        case ESM_STEP_DONE:
            assert_true(last);
            trace_add(t, ".");
            return NULL;
        }
    }
    fail_msg("decision without INVOKE or DONE");
    return NULL;
}

/* ---- simulator ------------------------------------------------------------------------- */

typedef struct {
    size_t n;
    bool poison[MAXN];
    esm_policy_config cfg;
    unsigned throttle_every;    /* 0 = never; else every k-th call is throttled */
    bool always_function_error; /* with RBIF: fail poison batches with an error, not a partial */
    bool restart;               /* format + parse the state before every decide */
    size_t max_calls;
} sim_spec;

typedef struct {
    trace t;
    unsigned acked[MAXN], discarded[MAXN];
    unsigned discard_count[MAXN]; /* invoke_count of the DISCARD that covered the record */
    esm_condition cond[MAXN];
    size_t n_invokes; /* invocations that ran (not throttled) */
    size_t n_calls;
    bool done;
} sim_result;

static void run_sim(const sim_spec *sp, sim_result *r)
{
    memset(r, 0, sizeof *r);
    esm_policy_record recs[MAXN];
    fresh_records(recs, sp->n, 1000);
    esm_policy_state st;
    esm_policy_state_init(&st, sp->n);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    esm_policy_outcome out = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    size_t failed[MAXN];
    size_t pos = 0;
    unsigned calls = 0;
    for (r->n_calls = 0; r->n_calls < sp->max_calls; r->n_calls++) {
        if (sp->restart) {
            char text[ESM_POLICY_STATE_TEXT_MAX];
            assert_true(esm_policy_state_format(&st, text, sizeof text) > 0);
            esm_policy_state back;
            assert_int_equal(esm_policy_state_parse(&back, text), 0);
            assert_memory_equal(&back, &st, sizeof st);
        }
        assert_int_equal(esm_policy_decide(recs, sp->n, &st, &out, &sp->cfg, 2000, 0, &d), 0);
        const esm_policy_step *inv = trace_decision(&r->t, &d, &pos);
        for (size_t i = 0; i + 1 < d.n; i++) { /* the ACK / DISCARD steps */
            const esm_policy_step *s = &d.steps[i];
            for (size_t k = s->lo; k < s->hi; k++) {
                if (s->kind == ESM_STEP_ACK) {
                    r->acked[k]++;
                } else {
                    r->discarded[k]++;
                    r->cond[k] = s->condition;
                    r->discard_count[k] = s->invoke_count;
                }
            }
        }
        if (!inv) {
            r->done = true;
            break;
        }
        /* The fake function. */
        calls++;
        out = (esm_policy_outcome){.kind = ESM_OUTCOME_SUCCESS, .retry_after_ms = -1};
        if (sp->throttle_every && calls % sp->throttle_every == 0) {
            out.kind = ESM_OUTCOME_THROTTLE;
            r->t.len--; /* mark the token: "I0-4t " */
            trace_add(&r->t, "t ");
            continue;
        }
        r->n_invokes++;
        size_t nf = 0;
        for (size_t k = inv->hi; k-- > inv->lo;) /* listed in reverse: any order is allowed */
            if (sp->poison[k]) failed[nf++] = k;
        if (nf == 0) continue;
        if (sp->cfg.rbif && !sp->always_function_error) {
            out.kind = ESM_OUTCOME_PARTIAL;
            out.failed = failed;
            out.n_failed = nf;
        } else {
            out.kind = ESM_OUTCOME_FUNCTION_ERROR;
        }
    }
    esm_policy_decision_free(&d);
}

static void sim_expect(const sim_spec *sp, const char *expected)
{
    sim_result *r = malloc(sizeof *r);
    assert_non_null(r);
    run_sim(sp, r);
    assert_true(r->done);
    assert_string_equal(r->t.s, expected);
    free(r);
}

static sim_spec spec(size_t n, const char *poison, esm_policy_config cfg)
{
    sim_spec sp = {.n = n, .cfg = cfg, .max_calls = 100000};
    for (const char *p = poison; *p;) {
        char *end;
        unsigned long k = strtoul(p, &end, 10);
        sp.poison[k] = true;
        p = *end ? end + 1 : end;
    }
    return sp;
}

/* ---- hand-computed sequences ------------------------------------------------------------ */

static void test_success_first_time(void **state)
{
    (void)state;
    sim_spec sp = spec(5, "", cfg_of(3, false, false));
    sim_expect(&sp, "I0-5 A0-5 .");
}

static void test_no_bisect_discards_whole_batch(void **state)
{
    (void)state;
    sim_spec sp = spec(3, "1", cfg_of(2, false, false));
    /* 1 + 2 retries, then the whole batch goes with 3 invocations. Backoffs are 0 (random 0). */
    sim_expect(&sp, "I0-3 I0-3 I0-3 D0-3:R3 .");
}

static void test_bisect_retries_zero(void **state)
{
    (void)state;
    sim_spec sp = spec(4, "2", cfg_of(0, true, false));
    sim_expect(&sp, "I0-4 I0-2 A0-2 I2-4 I2-3 D2-3:R1 I3-4 A3-4 .");
}

static void test_bisect_odd_first_half_is_ceil(void **state)
{
    (void)state;
    sim_spec sp = spec(5, "0", cfg_of(1, true, false));
    sim_expect(&sp, "I0-5 I0-3 I0-2 I0-1 I0-1 D0-1:R2 I1-2 A1-2 I2-3 A2-3 I3-5 A3-5 .");
}

static void test_bisect_adjacent_poison(void **state)
{
    (void)state;
    sim_spec sp = spec(4, "1,2", cfg_of(0, true, false));
    sim_expect(&sp, "I0-4 I0-2 I0-1 A0-1 I1-2 D1-2:R1 I2-4 I2-3 D2-3:R1 I3-4 A3-4 .");
}

static void test_rbif_partial_resumes_at_lowest(void **state)
{
    (void)state;
    sim_spec sp = spec(6, "2,4", cfg_of(1, false, true));
    /* partial -> ack before 2, attempts reset to 1 at the new head; second partial exhausts:
     * only the listed records are discarded, one per run; the rest of the unit is acked. */
    sim_expect(&sp, "I0-6 A0-2 I2-6 D2-3:R2 A3-4 D4-5:R2 A5-6 .");
}

static void test_rbif_adjacent_failures_one_record(void **state)
{
    (void)state;
    sim_spec sp = spec(5, "1,2", cfg_of(0, true, true));
    /* A partial is never halved, even with bisect on. R=0: the first partial exhausts. */
    sim_expect(&sp, "I0-5 A0-1 D1-3:R1 A3-5 .");
}

static void test_rbif_function_error_still_bisects(void **state)
{
    (void)state;
    sim_spec sp = spec(4, "3", cfg_of(0, true, true));
    sp.always_function_error = true;
    sim_expect(&sp, "I0-4 I0-2 A0-2 I2-4 I2-3 A2-3 I3-4 D3-4:R1 .");
}

static void test_throttles_do_not_count_or_split(void **state)
{
    (void)state;
    sim_spec sp = spec(2, "0", cfg_of(0, true, false));
    sp.throttle_every = 2;
    /* calls: 1 FE(split) 2 T 3 FE(single, exhausted) 4 T 5 ok */
    sim_expect(&sp, "I0-2 I0-1t I0-1 D0-1:R1 I1-2t I1-2 A1-2 .");
}

static void test_unlimited_retries_never_discard(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++)
        for (int rb = 0; rb < 2; rb++) {
            sim_spec sp = spec(8, "5", cfg_of(-1, b, rb));
            sp.max_calls = 300;
            sim_result *r = malloc(sizeof *r);
            assert_non_null(r);
            run_sim(&sp, r);
            assert_false(r->done);
            for (size_t k = 0; k < 8; k++)
                assert_int_equal(r->discarded[k], 0);
            /* Everything before the poison is acked when bisect or RBIF can isolate it. */
            for (size_t k = 0; k < 5; k++)
                assert_int_equal(r->acked[k], (b || rb) ? 1 : 0);
            free(r);
        }
}

/* ---- exhaustive sweep with invariants --------------------------------------------------- */

static void check_invariants(const sim_spec *sp, const sim_result *r)
{
    int R = sp->cfg.max_retry_attempts;
    /* bisect or partial responses isolate the poison records from the good ones */
    bool isolates = sp->cfg.bisect || (sp->cfg.rbif && !sp->always_function_error);
    assert_true(r->done);
    bool any_poison = false;
    for (size_t k = 0; k < sp->n; k++) {
        assert_int_equal(r->acked[k] + r->discarded[k], 1); /* resolved exactly once */
        any_poison |= sp->poison[k];
        if (sp->poison[k]) {
            assert_int_equal(r->discarded[k], 1);
            assert_int_equal(r->cond[k], ESM_COND_RETRY_ATTEMPTS_EXHAUSTED);
            if (isolates) assert_int_equal(r->discard_count[k], (unsigned)R + 1);
        } else if (isolates) {
            assert_int_equal(r->discarded[k], 0);
        }
    }
    /* Invocation bounds. */
    size_t np = 0;
    for (size_t k = 0; k < sp->n; k++)
        np += sp->poison[k];
    if (!any_poison) {
        assert_int_equal(r->n_invokes, 1);
    } else if (!isolates) {
        assert_int_equal(r->n_invokes, (size_t)R + 1);
    } else if (sp->cfg.rbif && !sp->always_function_error) {
        assert_int_equal(r->n_invokes, (size_t)R + 1); /* partials resume, never re-split */
    } else {
        /* bisect: each poison record costs R+1 single invocations plus at most ~2 per level of
         * the split tree; the clean parts are invoked once each. */
        size_t levels = 0;
        for (size_t m = 1; m < sp->n; m *= 2)
            levels++;
        assert_true(r->n_invokes >= np * ((size_t)R + 1));
        assert_true(r->n_invokes <= np * ((size_t)R + 1 + 2 * levels) + 1);
    }
}

static void test_sweep_all(void **state)
{
    (void)state;
    static const int retries[] = {0, 1, 3};
    sim_result *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    assert_non_null(r);
    assert_non_null(r2);
    size_t cases = 0;
    for (size_t n = 1; n <= MAXN; n++)
        for (int mode = 0; mode < 3; mode++) /* none / one poison / two adjacent */
            for (size_t p = 0; p < (mode == 0 ? 1 : n - (mode == 2 ? 1 : 0)); p++)
                for (int b = 0; b < 2; b++)
                    for (int rb = 0; rb < 3; rb++) /* off / partial / RBIF but errors */
                        for (size_t ri = 0; ri < sizeof retries / sizeof *retries; ri++) {
                            sim_spec sp = spec(n, "", cfg_of(retries[ri], b, rb > 0));
                            sp.always_function_error = rb == 2;
                            if (mode >= 1) sp.poison[p] = true;
                            if (mode == 2) sp.poison[p + 1] = true;
                            run_sim(&sp, r);
                            check_invariants(&sp, r);
                            /* Throttles change nothing but add invocations. */
                            sim_spec th = sp;
                            th.throttle_every = 3;
                            run_sim(&th, r2);
                            assert_true(r2->done);
                            char stripped[sizeof r2->t.s];
                            size_t sl = 0;
                            for (const char *tok = r2->t.s; *tok;) {
                                const char *sp_ = strchr(tok, ' ');
                                size_t tl = sp_ ? (size_t)(sp_ - tok) + 1 : strlen(tok);
                                if (!(tl >= 2 && tok[tl - 2] == 't' && tok[0] == 'I')) {
                                    memcpy(stripped + sl, tok, tl);
                                    sl += tl;
                                }
                                tok += tl;
                            }
                            stripped[sl] = '\0';
                            assert_string_equal(stripped, r->t.s);
                            assert_int_equal(r2->n_invokes, r->n_invokes);
                            assert_memory_equal(r2->discard_count, r->discard_count,
                                                sizeof r->discard_count);
                            /* A restart before every decision yields the same run. */
                            sim_spec rs = sp;
                            rs.restart = true;
                            run_sim(&rs, r2);
                            assert_string_equal(r2->t.s, r->t.s);
                            cases++;
                        }
    assert_true(cases > 10000);
    free(r);
    free(r2);
}

/* ---- age, payload, backoff, errors -------------------------------------------------------- */

static void decide_ok(const esm_policy_record *recs, size_t n, esm_policy_state *st,
                      esm_outcome_kind kind, const esm_policy_config *cfg, int64_t now,
                      uint32_t random, esm_policy_decision *d)
{
    esm_policy_outcome out = {.kind = kind, .retry_after_ms = -1};
    assert_int_equal(esm_policy_decide(recs, n, st, &out, cfg, now, random, d), 0);
}

static const char *fmt_decision(const esm_policy_decision *d, trace *t)
{
    t->len = 0;
    t->s[0] = '\0';
    size_t pos = d->n && d->steps[0].kind != ESM_STEP_DONE ? d->steps[0].lo : 0;
    trace_decision(t, d, &pos);
    return t->s;
}

static void test_age_old_records_discarded_without_invoke(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(-1, false, false);
    cfg.max_record_age_seconds = 60;
    esm_policy_record recs[4];
    fresh_records(recs, 4, 100000);
    recs[0].arrival_ms = recs[1].arrival_ms = 100000 - 61000; /* older than 60 s */
    esm_policy_state st;
    esm_policy_state_init(&st, 4);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 100000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-2:G0 I2-4 ");

    /* Exactly 60 s old is not "older than" 60 s. */
    esm_policy_state_init(&st, 4);
    recs[0].arrival_ms = recs[1].arrival_ms = 100000 - 60000;
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 100000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-4 ");

    /* All old: discarded, never invoked. */
    esm_policy_state_init(&st, 4);
    fresh_records(recs, 4, 0);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 100000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-4:G0 .");
    assert_true(esm_policy_state_done(&st));
    esm_policy_decision_free(&d);
    free(t);
}

static void test_age_expires_during_retries(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(-1, false, false);
    cfg.max_record_age_seconds = 60;
    esm_policy_record recs[3];
    fresh_records(recs, 3, 0);
    esm_policy_state st;
    esm_policy_state_init(&st, 3);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    decide_ok(recs, 3, &st, ESM_OUTCOME_NONE, &cfg, 1000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-3 ");
    decide_ok(recs, 3, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 2000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-3 ");
    decide_ok(recs, 3, &st, ESM_OUTCOME_THROTTLE, &cfg, 3000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-3 ");
    /* The backoff never waits past expiry: at 59.5 s a 60 s-capped backoff is cut to 501 ms. */
    cfg.backoff_base_ms = 60000;
    decide_ok(recs, 3, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 59500, 60000, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-3+501 ");
    /* Two invocations ran (the throttle is not one); then the records pass 60 s. */
    decide_ok(recs, 3, &st, ESM_OUTCOME_NONE, &cfg, 60001, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-3:G2 .");
    esm_policy_decision_free(&d);
    free(t);
}

static void test_age_applies_to_bisect_halves(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(-1, true, false);
    cfg.max_record_age_seconds = 60;
    esm_policy_record recs[4];
    fresh_records(recs, 4, 0);
    recs[2].arrival_ms = recs[3].arrival_ms = 50000;
    esm_policy_state st;
    esm_policy_state_init(&st, 4);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 1000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-4 ");
    decide_ok(recs, 4, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 2000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-2 ");
    decide_ok(recs, 4, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 3000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-1 ");
    decide_ok(recs, 4, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 4000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-1 ");
    /* Record 0 (and 1, in the pending half) expire; the fresh half [2,4) is still invoked. */
    decide_ok(recs, 4, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 70000, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-1:G2 D1-2:G0 I2-4 ");
    esm_policy_decision_free(&d);
    free(t);
}

static void test_oversized_record_never_invoked(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(0, false, false);
    esm_policy_record recs[4];
    fresh_records(recs, 4, 0);
    recs[1].size = 7 * 1024 * 1024;
    esm_policy_state st;
    esm_policy_state_init(&st, 4);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-1 ");
    decide_ok(recs, 4, &st, ESM_OUTCOME_SUCCESS, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "A0-1 D1-2:P0 I2-4 ");
    decide_ok(recs, 4, &st, ESM_OUTCOME_SUCCESS, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "A2-4 .");

    esm_policy_state_init(&st, 1);
    recs[0].size = 7 * 1024 * 1024;
    decide_ok(recs, 1, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-1:P0 .");
    esm_policy_decision_free(&d);
    free(t);
}

/* The oversize check counts the event's envelope: a record whose event alone is one byte over
 * the limit is discarded, one at the limit is invoked (docs/operations.md "Records at the 6 MB
 * limit"). Before, only the record was counted, so it was neither. */
static void test_oversize_counts_the_envelope(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(0, false, false);
    cfg.max_payload_bytes = 1000;
    cfg.event_envelope = 50;
    esm_policy_record recs[1];
    fresh_records(recs, 1, 0);
    esm_policy_state st;
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    recs[0].size = 950;
    esm_policy_state_init(&st, 1);
    decide_ok(recs, 1, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-1 ");
    recs[0].size = 951;
    esm_policy_state_init(&st, 1);
    decide_ok(recs, 1, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-1:P0 .");
    esm_policy_decision_free(&d);
    free(t);
}

/* A unit whose event would not fit is narrowed to its longest fitting prefix: 3 records of 300
 * make 50 + 900 + 2 commas = 952 bytes, a fourth would make 1253. Every INVOKE fits. */
static void test_unit_narrowed_to_the_prefix_that_fits(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(0, false, false);
    cfg.max_payload_bytes = 1000;
    cfg.event_envelope = 50;
    esm_policy_record recs[5];
    fresh_records(recs, 5, 0);
    for (size_t i = 0; i < 5; i++)
        recs[i].size = 300;
    esm_policy_state st;
    esm_policy_state_init(&st, 5);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    decide_ok(recs, 5, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-3 ");
    decide_ok(recs, 5, &st, ESM_OUTCOME_SUCCESS, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "A0-3 I3-5 ");
    decide_ok(recs, 5, &st, ESM_OUTCOME_SUCCESS, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "A3-5 .");
    esm_policy_decision_free(&d);
    free(t);
}

/* TOO_LARGE (the rendered event was over the limit anyway): a larger unit is halved even
 * without BisectBatchOnFunctionError and uses no attempt; a one-record unit becomes a
 * MaximumPayloadSizeExceeded discard, never a retry of the same event. */
static void test_too_large_splits_then_discards(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(-1, false, false);
    esm_policy_record recs[3];
    fresh_records(recs, 3, 0);
    esm_policy_state st;
    esm_policy_state_init(&st, 3);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    decide_ok(recs, 3, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-3 ");
    decide_ok(recs, 3, &st, ESM_OUTCOME_TOO_LARGE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-2 ");
    assert_int_equal(st.attempts, 0);
    decide_ok(recs, 3, &st, ESM_OUTCOME_TOO_LARGE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "I0-1 ");
    decide_ok(recs, 3, &st, ESM_OUTCOME_TOO_LARGE, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "D0-1:P0 I1-2 ");
    decide_ok(recs, 3, &st, ESM_OUTCOME_SUCCESS, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "A1-2 I2-3 ");
    decide_ok(recs, 3, &st, ESM_OUTCOME_SUCCESS, &cfg, 0, 0, &d);
    assert_string_equal(fmt_decision(&d, t), "A2-3 .");
    esm_policy_decision_free(&d);
    free(t);
}

static void test_backoff_full_jitter(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(-1, false, false);
    esm_policy_record recs[2];
    fresh_records(recs, 2, 0);
    esm_policy_state st;
    esm_policy_state_init(&st, 2);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    decide_ok(recs, 2, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    /* random == cap gives the cap: base * 2^(k-1) up to 60 s. */
    static const int64_t caps[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
    for (size_t k = 0; k < 8; k++) {
        decide_ok(recs, 2, &st, ESM_OUTCOME_THROTTLE, &cfg, 0, (uint32_t)caps[k], &d);
        assert_int_equal(d.steps[d.n - 1].kind, ESM_STEP_INVOKE);
        assert_int_equal(d.steps[d.n - 1].delay_ms, caps[k]);
    }
    decide_ok(recs, 2, &st, ESM_OUTCOME_THROTTLE, &cfg, 0, 60001, &d);
    assert_int_equal(d.steps[0].delay_ms, 0); /* 60001 % 60001: jitter reaches 0 */
    /* Retry-After is a lower bound. */
    esm_policy_outcome out = {.kind = ESM_OUTCOME_INVOKE_ERROR, .retry_after_ms = 5000};
    assert_int_equal(esm_policy_decide(recs, 2, &st, &out, &cfg, 0, 7, &d), 0);
    assert_int_equal(d.steps[0].delay_ms, 5000);
    /* Throttles never counted: 10 of them, then function errors back off from k=1 again. */
    assert_int_equal(st.attempts, 0);
    assert_int_equal(st.invokes, 0);
    decide_ok(recs, 2, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 0, 1000, &d);
    assert_int_equal(d.steps[0].delay_ms, 1000);
    decide_ok(recs, 2, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 0, 2000, &d);
    assert_int_equal(d.steps[0].delay_ms, 2000);
    decide_ok(recs, 2, &st, ESM_OUTCOME_THROTTLE, &cfg, 0, 1000, &d);
    assert_int_equal(d.steps[0].delay_ms, 1000); /* throttle streak restarted at 1 */
    /* Bisect halves go without delay. */
    cfg.bisect = true;
    esm_policy_state_init(&st, 2);
    decide_ok(recs, 2, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    decide_ok(recs, 2, &st, ESM_OUTCOME_FUNCTION_ERROR, &cfg, 0, 1000, &d);
    assert_int_equal(d.steps[0].kind, ESM_STEP_INVOKE);
    assert_int_equal(d.steps[0].hi, 1);
    assert_int_equal(d.steps[0].delay_ms, 0);
    esm_policy_decision_free(&d);
}

static void test_partial_edge_cases(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(1, false, true);
    esm_policy_record recs[4];
    fresh_records(recs, 4, 0);
    esm_policy_state st;
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    size_t outside[] = {9};
    size_t dup[] = {2, 2, 3};
    esm_policy_outcome out = {.kind = ESM_OUTCOME_PARTIAL, .retry_after_ms = -1};

    /* An index outside the invoked range is a function error (whole batch retried). */
    esm_policy_state_init(&st, 4);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    out.failed = outside;
    out.n_failed = 1;
    assert_int_equal(esm_policy_decide(recs, 4, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "I0-4 ");
    assert_int_equal(st.attempts, 1);

    /* Empty failure list: success. */
    out.n_failed = 0;
    assert_int_equal(esm_policy_decide(recs, 4, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "A0-4 .");

    /* Without RBIF a partial is just success. */
    esm_policy_config off = cfg_of(1, false, false);
    esm_policy_state_init(&st, 4);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &off, 0, 0, &d);
    out.failed = dup;
    out.n_failed = 3;
    assert_int_equal(esm_policy_decide(recs, 4, &st, &out, &off, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "A0-4 .");

    /* Duplicates are fine; no progress grows attempts; exhaustion discards the listed run. */
    esm_policy_state_init(&st, 4);
    decide_ok(recs, 4, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    assert_int_equal(esm_policy_decide(recs, 4, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "A0-2 I2-4 ");
    size_t first[] = {2};
    out.failed = first;
    out.n_failed = 1;
    assert_int_equal(esm_policy_decide(recs, 4, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "D2-3:R2 A3-4 .");
    esm_policy_decision_free(&d);
    free(t);
}

/* DECISION (esm_policy.h): moving the resume point forward resets the attempt counter. */
static void test_rbif_progress_resets_attempts(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(1, false, true);
    esm_policy_record recs[5];
    fresh_records(recs, 5, 0);
    esm_policy_state st;
    esm_policy_state_init(&st, 5);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    trace *t = malloc(sizeof *t);
    assert_non_null(t);
    size_t f1[] = {1}, f3[] = {3};
    esm_policy_outcome out = {.kind = ESM_OUTCOME_PARTIAL, .retry_after_ms = -1};
    decide_ok(recs, 5, &st, ESM_OUTCOME_NONE, &cfg, 0, 0, &d);
    out.failed = f1;
    out.n_failed = 1;
    assert_int_equal(esm_policy_decide(recs, 5, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "A0-1 I1-5 ");
    /* record 1 went through on the retry, record 3 failed: progress, so attempts restart */
    out.failed = f3;
    assert_int_equal(esm_policy_decide(recs, 5, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "A1-3 I3-5 ");
    assert_int_equal(st.attempts, 1);
    assert_int_equal(esm_policy_decide(recs, 5, &st, &out, &cfg, 0, 0, &d), 0);
    assert_string_equal(fmt_decision(&d, t), "D3-4:R2 A4-5 .");
    esm_policy_decision_free(&d);
    free(t);
}

static void test_misuse_rejected(void **state)
{
    (void)state;
    esm_policy_config cfg = cfg_of(0, false, false);
    esm_policy_record recs[2];
    fresh_records(recs, 2, 0);
    esm_policy_state st;
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    esm_policy_outcome none = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    esm_policy_outcome ok = {.kind = ESM_OUTCOME_SUCCESS, .retry_after_ms = -1};
    esm_policy_state_init(&st, 2);
    assert_int_equal(esm_policy_decide(recs, 3, &st, &none, &cfg, 0, 0, &d), -1); /* n differs */
    assert_int_equal(esm_policy_decide(recs, 2, &st, &none, &cfg, 0, 0, &d), 0);
    esm_policy_outcome lost = {.kind = ESM_OUTCOME_PARTIAL, .n_failed = 1, .retry_after_ms = -1};
    esm_policy_config rbif = cfg_of(0, false, true);
    esm_policy_state before = st;
    assert_int_equal(esm_policy_decide(recs, 2, &st, &lost, &rbif, 0, 0, &d), -1); /* no list */
    assert_memory_equal(&before, &st, sizeof st);
    assert_int_equal(esm_policy_decide(recs, 2, &st, &ok, &cfg, 0, 0, &d), 0);
    assert_true(esm_policy_state_done(&st));
    esm_policy_state saved = st;
    assert_int_equal(esm_policy_decide(recs, 2, &st, &ok, &cfg, 0, 0, &d), -1); /* done */
    assert_memory_equal(&saved, &st, sizeof st);
    assert_int_equal(esm_policy_decide(recs, 2, &st, &none, &cfg, 0, 0, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.steps[0].kind, ESM_STEP_DONE);
    /* An empty batch is done at once. */
    esm_policy_state_init(&st, 0);
    assert_int_equal(esm_policy_decide(NULL, 0, &st, &none, &cfg, 0, 0, &d), 0);
    assert_int_equal(d.steps[0].kind, ESM_STEP_DONE);
    esm_policy_decision_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_first_time),
        cmocka_unit_test(test_no_bisect_discards_whole_batch),
        cmocka_unit_test(test_bisect_retries_zero),
        cmocka_unit_test(test_bisect_odd_first_half_is_ceil),
        cmocka_unit_test(test_bisect_adjacent_poison),
        cmocka_unit_test(test_rbif_partial_resumes_at_lowest),
        cmocka_unit_test(test_rbif_adjacent_failures_one_record),
        cmocka_unit_test(test_rbif_function_error_still_bisects),
        cmocka_unit_test(test_throttles_do_not_count_or_split),
        cmocka_unit_test(test_unlimited_retries_never_discard),
        cmocka_unit_test(test_sweep_all),
        cmocka_unit_test(test_age_old_records_discarded_without_invoke),
        cmocka_unit_test(test_age_expires_during_retries),
        cmocka_unit_test(test_age_applies_to_bisect_halves),
        cmocka_unit_test(test_oversized_record_never_invoked),
        cmocka_unit_test(test_oversize_counts_the_envelope),
        cmocka_unit_test(test_unit_narrowed_to_the_prefix_that_fits),
        cmocka_unit_test(test_too_large_splits_then_discards),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_partial_edge_cases),
        cmocka_unit_test(test_rbif_progress_resets_attempts),
        cmocka_unit_test(test_misuse_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
