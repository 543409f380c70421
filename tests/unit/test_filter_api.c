/* esm_filter API behaviour beyond the corpus: limits, empty sets, messages, scratch reuse and
 * the no-allocation-per-record promise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/esm_filter.h"

/* Counts heap allocations: this executable's malloc family forwards to glibc's. Not under
 * AddressSanitizer, which owns malloc itself. */
#if !defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static size_t n_allocs;
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);
void *malloc(size_t n)
{
    n_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    n_allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    n_allocs++;
    return __libc_realloc(p, n);
}
void free(void *p)
{
    __libc_free(p);
}
#endif

static bool starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void test_no_patterns_match_everything(void **state)
{
    (void)state;
    char why[256];
    esm_filter_set *f = esm_filter_compile(NULL, 0, ESM_FILTER_SRC_KINESIS, why, sizeof why);
    assert_non_null(f);
    assert_true(esm_filter_matches_all(f));
    assert_true(esm_filter_match(f, NULL, 0, "\xff not json", 10));
    assert_true(esm_filter_match(f, "garbage", 7, NULL, 0));
    esm_filter_destroy(f);
    assert_true(esm_filter_matches_all(NULL));
    assert_true(esm_filter_match(NULL, NULL, 0, NULL, 0));
}

static void test_pattern_count_limit(void **state)
{
    (void)state;
    const char *p[ESM_FILTER_HARD_MAX + 1];
    for (int i = 0; i <= ESM_FILTER_HARD_MAX; i++)
        p[i] = "{\"body\":[\"x\"]}";
    char why[256] = "";
    esm_filter_set *f =
        esm_filter_compile(p, ESM_FILTER_HARD_MAX, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_non_null(f);
    assert_false(esm_filter_matches_all(f));
    esm_filter_destroy(f);
    f = esm_filter_compile(p, ESM_FILTER_HARD_MAX + 1, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_null(f);
    assert_true(starts_with(why, ESM_FILTER_INVALID));
}

/* Builds {"body":["aaa…"]} of exactly len characters. */
static char *pattern_of_len(size_t len)
{
    const char *head = "{\"body\":[\"", *tail = "\"]}";
    size_t fixed = strlen(head) + strlen(tail);
    char *s = malloc(len + 1);
    strcpy(s, head);
    memset(s + strlen(head), 'a', len - fixed);
    strcpy(s + len - strlen(tail), tail);
    return s;
}

static void test_pattern_length_limit(void **state)
{
    (void)state;
    char why[256] = "";
    char *ok = pattern_of_len(ESM_FILTER_PATTERN_MAX);
    char *big = pattern_of_len(ESM_FILTER_PATTERN_MAX + 1);
    assert_int_equal(strlen(ok), ESM_FILTER_PATTERN_MAX);
    assert_true(esm_filter_validate(ok, why, sizeof why));
    assert_false(esm_filter_validate(big, why, sizeof why));
    assert_true(starts_with(why, ESM_FILTER_INVALID));
    assert_non_null(strstr(why, "4096"));
    free(ok);
    free(big);
}

static void test_validate_messages_and_small_buffers(void **state)
{
    (void)state;
    char why[256] = "";
    assert_false(esm_filter_validate(NULL, why, sizeof why));
    assert_true(starts_with(why, ESM_FILTER_INVALID));
    assert_false(esm_filter_validate("", why, sizeof why));
    assert_true(starts_with(why, ESM_FILTER_INVALID));
    /* A short buffer is truncated and terminated, a NULL one is allowed. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    assert_false(esm_filter_validate("{}", tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_false(esm_filter_validate("{}", NULL, 0));
    assert_true(esm_filter_validate("{\"a\":[1]}", NULL, 0));
    /* validate is source-independent: plain matchers on data are fine here. */
    assert_true(esm_filter_validate("{\"data\":[\"x\"]}", why, sizeof why));
    char why2[256];
    const char *p = "{\"data\":[\"x\"]}";
    assert_null(esm_filter_compile(&p, 1, ESM_FILTER_SRC_KINESIS, why2, sizeof why2));
    assert_true(starts_with(why2, ESM_FILTER_INVALID));
    esm_filter_set *f = esm_filter_compile(&p, 1, ESM_FILTER_SRC_SQS, why2, sizeof why2);
    assert_non_null(f);
    esm_filter_destroy(f);
}

static void test_record_only_read_when_needed(void **state)
{
    (void)state;
    char why[256];
    const char *body_only = "{\"body\":{\"a\":[1]}}";
    esm_filter_set *f = esm_filter_compile(&body_only, 1, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_non_null(f);
    assert_true(esm_filter_match(f, NULL, 0, "{\"a\":1}", 7));
    esm_filter_destroy(f);
    const char *meta = "{\"eventSource\":[\"aws:sqs\"]}";
    f = esm_filter_compile(&meta, 1, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_non_null(f);
    assert_false(esm_filter_match(f, NULL, 0, "x", 1));
    const char *rec = "{\"eventSource\":\"aws:sqs\"}";
    assert_true(esm_filter_match(f, rec, strlen(rec), "x", 1));
    assert_false(esm_filter_match(f, rec, strlen(rec) - 1, "x", 1)); /* truncated JSON */
    esm_filter_destroy(f);
}

/* Big, small, big again: the reused scratch must not leak state between records. */
static void test_scratch_reuse_across_sizes(void **state)
{
    (void)state;
    char why[256];
    const char *p = "{\"body\":{\"k\":[\"v\"]}}";
    esm_filter_set *f = esm_filter_compile(&p, 1, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_non_null(f);
    size_t n = 200000;
    char *big = malloc(n + 64);
    size_t len = (size_t)sprintf(big, "{\"pad\":[");
    while (len < n)
        len += (size_t)sprintf(big + len, "\"x\\u0041\",");
    len += (size_t)sprintf(big + len, "1],\"k\":\"v\"}");
    for (int round = 0; round < 3; round++) {
        assert_true(esm_filter_match(f, NULL, 0, big, len));
        assert_false(esm_filter_match(f, NULL, 0, "{\"k\":\"w\"}", 9));
        assert_true(esm_filter_match(f, NULL, 0, "{\"k\":\"v\"}", 9));
    }
    free(big);
    esm_filter_destroy(f);
}

/* Deeper than the parser's limit: not JSON, so for SQS it is a plain string. */
static void test_deep_payload_is_plain(void **state)
{
    (void)state;
    char why[256];
    const char *p = "{\"body\":[{\"prefix\":\"[[[[\"}]}";
    esm_filter_set *f = esm_filter_compile(&p, 1, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_non_null(f);
    char deep[2 * 1000 + 1];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    assert_true(esm_filter_match(f, NULL, 0, deep, 2000));
    assert_false(esm_filter_match(f, NULL, 0, deep + 990, 20)); /* 10 deep is JSON */
    esm_filter_destroy(f);
}

/* Once the scratch has grown, matching allocates nothing. */
static void test_no_allocation_per_record(void **state)
{
    (void)state;
#ifndef COUNT_ALLOCS
    skip();
#else
    char why[256];
    const char *pats[] = {
        "{\"body\":{\"order\":{\"type\":[\"buy\"],\"qty\":[{\"numeric\":[\">\",100]}]}}}",
        "{\"attributes\":{\"ApproximateReceiveCount\":[\"1\"]},\"body\":{\"tags\":[\"vip\"]}}",
        "{\"body\":{\"note\":[{\"wildcard\":\"*esc\\\\\\\\aped*\"}]}}",
    };
    esm_filter_set *f = esm_filter_compile(pats, 3, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_non_null(f);
    const char *rec = "{\"messageId\":\"m\",\"attributes\":{\"ApproximateReceiveCount\":\"1\"}}";
    const char *body = "{\"order\":{\"type\":\"sell\",\"qty\":5},\"tags\":[\"eu\",\"vip\"],"
                       "\"note\":\"with \\\"escapes\\\" \\u00e9\"}";
    assert_true(esm_filter_match(f, rec, strlen(rec), body, strlen(body)));
    size_t before = n_allocs;
    int hits = 0;
    for (int i = 0; i < 1000; i++)
        hits += esm_filter_match(f, rec, strlen(rec), body, strlen(body));
    size_t during = n_allocs - before;
    assert_int_equal(hits, 1000);
    assert_int_equal(during, 0);
    /* The counter works: compiling does allocate. */
    before = n_allocs;
    esm_filter_set *g = esm_filter_compile(pats, 1, ESM_FILTER_SRC_SQS, why, sizeof why);
    assert_true(n_allocs > before);
    esm_filter_destroy(g);
    esm_filter_destroy(f);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_patterns_match_everything),
        cmocka_unit_test(test_pattern_count_limit),
        cmocka_unit_test(test_pattern_length_limit),
        cmocka_unit_test(test_validate_messages_and_small_buffers),
        cmocka_unit_test(test_record_only_read_when_needed),
        cmocka_unit_test(test_scratch_reuse_across_sizes),
        cmocka_unit_test(test_deep_payload_is_plain),
        cmocka_unit_test(test_no_allocation_per_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
