/* esm_policy_state_format / _parse: round trip, rejection of malformed text, and a restart in
 * the middle of retries that neither resets nor exceeds MaximumRetryAttempts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "policy/esm_policy.h"

static void test_round_trip(void **state)
{
    (void)state;
    esm_policy_state st, back;
    char text[ESM_POLICY_STATE_TEXT_MAX];

    esm_policy_state_init(&st, 10);
    st.lo = 3;
    st.ends[1] = 5;
    st.ends[2] = 4;
    st.depth = 3;
    st.attempts = 2;
    st.invokes = 7;
    st.backoffs = 4;
    int len = esm_policy_state_format(&st, text, sizeof text);
    assert_string_equal(text, "p1 n=10 lo=3 a=2 i=7 b=4 e=10,5,4");
    assert_int_equal(len, (int)strlen(text));
    memset(&back, 0xAB, sizeof back);
    assert_int_equal(esm_policy_state_parse(&back, text), 0);
    assert_memory_equal(&back, &st, sizeof st);

    esm_policy_state_init(&st, 0); /* done, empty stack */
    assert_true(esm_policy_state_format(&st, text, sizeof text) > 0);
    assert_string_equal(text, "p1 n=0 lo=0 a=0 i=0 b=0 e=");
    assert_int_equal(esm_policy_state_parse(&back, text), 0);
    assert_memory_equal(&back, &st, sizeof st);

    /* Deepest stack fits the documented maximum text size. */
    esm_policy_state_init(&st, SIZE_MAX);
    for (size_t i = 1; i < ESM_POLICY_MAX_DEPTH; i++)
        st.ends[i] = SIZE_MAX - i;
    st.depth = ESM_POLICY_MAX_DEPTH;
    st.attempts = st.invokes = st.backoffs = UINT32_MAX;
    assert_true(esm_policy_state_format(&st, text, sizeof text) > 0);
    assert_int_equal(esm_policy_state_parse(&back, text), 0);
    assert_memory_equal(&back, &st, sizeof st);
    assert_int_equal(esm_policy_state_format(&st, text, 20), -1); /* too small */
}

static void test_malformed_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "p2 n=1 lo=0 a=0 i=0 b=0 e=1",
        "p1 n=1 lo=0 a=0 i=0 b=0",
        "p1 n=1 lo=0 a=0 i=0 b=0 e=2",          /* ends[0] != n */
        "p1 n=4 lo=2 a=0 i=0 b=0 e=4,2",        /* lo not inside the unit */
        "p1 n=4 lo=0 a=0 i=0 b=0 e=4,4",        /* ends must decrease */
        "p1 n=4 lo=0 a=0 i=0 b=0 e=4,",         /* trailing comma */
        "p1 n=4 lo=0 a=0 i=0 b=0 e=4x",         /* junk */
        "p1 n=4 lo=3 a=0 i=0 b=0 e=",           /* done but lo != n */
        "p1 n=4 lo=0 a=-1 i=0 b=0 e=4",         /* negative */
        "p1 n=4 lo=0 a=4294967296 i=0 b=0 e=4", /* overflows unsigned */
        "p1 lo=0 n=4 a=0 i=0 b=0 e=4",          /* field order */
    };
    esm_policy_state st;
    esm_policy_state_init(&st, 7);
    esm_policy_state saved = st;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(esm_policy_state_parse(&st, bad[i]), -1);
        assert_memory_equal(&st, &saved, sizeof st); /* untouched on failure */
    }
}

/* Three function errors, persist, "restart" (parse into a fresh struct), two more: with
 * MaximumRetryAttempts=3 the 4th failure exhausts, counted across the restart. */
static void test_restart_mid_retry(void **state)
{
    (void)state;
    esm_policy_config cfg = {.max_retry_attempts = 3,
                             .max_record_age_seconds = -1,
                             .backoff_base_ms = 1000,
                             .backoff_max_ms = 60000};
    esm_policy_record recs[3] = {{"a", 0, 10}, {"b", 0, 10}, {"c", 0, 10}};
    esm_policy_outcome none = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    esm_policy_outcome fe = {.kind = ESM_OUTCOME_FUNCTION_ERROR, .retry_after_ms = -1};
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    esm_policy_state st;
    esm_policy_state_init(&st, 3);
    assert_int_equal(esm_policy_decide(recs, 3, &st, &none, &cfg, 0, 0, &d), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(esm_policy_decide(recs, 3, &st, &fe, &cfg, 0, 0, &d), 0);
        assert_int_equal(d.steps[0].kind, ESM_STEP_INVOKE);
    }
    char text[ESM_POLICY_STATE_TEXT_MAX];
    assert_true(esm_policy_state_format(&st, text, sizeof text) > 0);

    esm_policy_state after;
    assert_int_equal(esm_policy_state_parse(&after, text), 0);
    /* The in-flight invocation's result was lost in the crash: re-sent, not counted. */
    assert_int_equal(esm_policy_decide(recs, 3, &after, &none, &cfg, 0, 0, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.steps[0].kind, ESM_STEP_INVOKE);
    assert_int_equal(after.attempts, 3);
    assert_int_equal(esm_policy_decide(recs, 3, &after, &fe, &cfg, 0, 0, &d), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.steps[0].kind, ESM_STEP_DISCARD);
    assert_int_equal(d.steps[0].lo, 0);
    assert_int_equal(d.steps[0].hi, 3);
    assert_int_equal(d.steps[0].condition, ESM_COND_RETRY_ATTEMPTS_EXHAUSTED);
    assert_int_equal(d.steps[0].invoke_count, 4);
    assert_int_equal(d.steps[1].kind, ESM_STEP_DONE);
    esm_policy_decision_free(&d);
}

/* Restart in the middle of a bisect: the position in the split tree survives. */
static void test_restart_mid_bisect(void **state)
{
    (void)state;
    esm_policy_config cfg = {.max_retry_attempts = 1, .max_record_age_seconds = -1, .bisect = true};
    esm_policy_record recs[8];
    for (size_t i = 0; i < 8; i++)
        recs[i] = (esm_policy_record){NULL, 0, 1};
    esm_policy_outcome none = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    esm_policy_outcome fe = {.kind = ESM_OUTCOME_FUNCTION_ERROR, .retry_after_ms = -1};
    esm_policy_outcome ok = {.kind = ESM_OUTCOME_SUCCESS, .retry_after_ms = -1};
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    esm_policy_state st;
    esm_policy_state_init(&st, 8);
    assert_int_equal(esm_policy_decide(recs, 8, &st, &none, &cfg, 0, 0, &d), 0); /* [0,8) */
    assert_int_equal(esm_policy_decide(recs, 8, &st, &fe, &cfg, 0, 0, &d), 0);   /* [0,4) */
    assert_int_equal(esm_policy_decide(recs, 8, &st, &ok, &cfg, 0, 0, &d), 0);   /* [4,8) */
    assert_int_equal(esm_policy_decide(recs, 8, &st, &fe, &cfg, 0, 0, &d), 0);   /* [4,6) */
    assert_int_equal(esm_policy_decide(recs, 8, &st, &fe, &cfg, 0, 0, &d), 0);   /* [4,5) */
    assert_int_equal(esm_policy_decide(recs, 8, &st, &fe, &cfg, 0, 0, &d), 0);   /* [4,5) again */
    char text[ESM_POLICY_STATE_TEXT_MAX];
    assert_true(esm_policy_state_format(&st, text, sizeof text) > 0);
    assert_string_equal(text, "p1 n=8 lo=4 a=1 i=1 b=0 e=8,6,5");
    esm_policy_state after;
    assert_int_equal(esm_policy_state_parse(&after, text), 0);
    assert_int_equal(esm_policy_decide(recs, 8, &after, &fe, &cfg, 0, 0, &d), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.steps[0].kind, ESM_STEP_DISCARD);
    assert_int_equal(d.steps[0].lo, 4);
    assert_int_equal(d.steps[0].hi, 5);
    assert_int_equal(d.steps[0].invoke_count, 2);
    assert_int_equal(d.steps[1].kind, ESM_STEP_INVOKE);
    assert_int_equal(d.steps[1].lo, 5);
    assert_int_equal(d.steps[1].hi, 6);
    esm_policy_decision_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed_rejected),
        cmocka_unit_test(test_restart_mid_retry),
        cmocka_unit_test(test_restart_mid_bisect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
