/* The reload plan (keep / restart / remove / add by UUID and esm_mapping_config_equal) and
 * the settings that need a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/esm_reload.h"

static esm_config *parse(const char *text)
{
    esm_config_problems p = {0};
    esm_config *cfg = esm_config_parse(text, strlen(text), &p);
    for (size_t i = 0; i < p.n; i++)
        fprintf(stderr, "%s: %s\n", p.items[i].path, p.items[i].message);
    esm_config_problems_free(&p);
    assert_non_null(cfg);
    return cfg;
}

#define FN_A "\"a\":{\"url\":\"http://127.0.0.1:1/a\",\"protocol\":\"http\"}"
#define FN_A2 "\"a\":{\"url\":\"http://127.0.0.1:1/a\",\"protocol\":\"http\",\"timeout_seconds\":5}"
#define FN_B "\"b\":{\"url\":\"http://127.0.0.1:1/b\",\"protocol\":\"http\"}"
#define Q(n) "\"arn:aws:sqs:us-east-1:000000000000:" n "\""

static const char *const OLD =
    "{\"functions\":{" FN_A "," FN_B "},\"event_source_mappings\":["
    "{\"UUID\":\"00000000-0000-0000-0000-000000000001\",\"FunctionName\":\"a\","
    "\"EventSourceArn\":" Q(
        "q1") "},"
              "{\"UUID\":\"00000000-0000-0000-0000-000000000002\",\"FunctionName\":\"a\","
              "\"EventSourceArn\":" Q(
                  "q2") ",\"BatchSize\":5},"
                        "{\"UUID\":\"00000000-0000-0000-0000-000000000003\",\"FunctionName\":\"b\","
                        "\"EventSourceArn\":" Q("q3") "}]}";

static size_t find_step(const esm_reload_step *s, size_t n, esm_reload_action a, size_t old_i)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].action == a && s[i].old_index == old_i) return i;
    return (size_t)-1;
}

static void test_plan_keep_restart_remove_add(void **state)
{
    (void)state;
    esm_config *old = parse(OLD);
    /* q1 unchanged, q2 BatchSize changed, q3 removed, q4 added. */
    esm_config *next =
        parse("{\"functions\":{" FN_A "," FN_B "},\"event_source_mappings\":["
              "{\"UUID\":\"00000000-0000-0000-0000-000000000004\",\"FunctionName\":\"b\","
              "\"EventSourceArn\":" Q(
                  "q4") "},"
                        "{\"UUID\":\"00000000-0000-0000-0000-000000000002\",\"FunctionName\":\"a\","
                        "\"EventSourceArn\":" Q("q2") ",\"BatchSize\":7},"
                                                      "{\"UUID\":\"00000000-0000-0000-0000-"
                                                      "000000000001\",\"FunctionName\":\"a\","
                                                      "\"EventSourceArn\":" Q("q1") "}]}");
    const esm_mapping_config *cur[3] = {&old->mappings[0], &old->mappings[1], &old->mappings[2]};
    size_t n = 0;
    esm_reload_step *s = esm_reload_plan(cur, 3, next, &n);
    assert_int_equal(n, 4);
    size_t k = find_step(s, n, ESM_RELOAD_KEEP, 0);
    assert_true(k != (size_t)-1);
    assert_int_equal(s[k].new_index, 2);
    k = find_step(s, n, ESM_RELOAD_RESTART, 1);
    assert_true(k != (size_t)-1);
    assert_int_equal(s[k].new_index, 1);
    k = find_step(s, n, ESM_RELOAD_REMOVE, 2);
    assert_true(k != (size_t)-1);
    assert_int_equal(s[k].new_index, (size_t)-1);
    k = find_step(s, n, ESM_RELOAD_ADD, (size_t)-1);
    assert_true(k != (size_t)-1);
    assert_int_equal(s[k].new_index, 0);
    assert_int_equal(k, 3); /* adds come last */
    free(s);
    esm_config_destroy(next);
    esm_config_destroy(old);
}

static void test_function_change_restarts_its_mappings_only(void **state)
{
    (void)state;
    esm_config *old = parse(OLD);
    char text[4096];
    snprintf(text, sizeof text, "%s", OLD);
    /* Function a's timeout changes: q1 and q2 use it, q3 uses b. */
    char *p = strstr(text, FN_A);
    assert_non_null(p);
    char rest[4096];
    snprintf(rest, sizeof rest, "%s", p + strlen(FN_A));
    snprintf(p, sizeof text - (size_t)(p - text), "%s%s", FN_A2, rest);
    esm_config *next = parse(text);
    const esm_mapping_config *cur[3] = {&old->mappings[0], &old->mappings[1], &old->mappings[2]};
    size_t n = 0;
    esm_reload_step *s = esm_reload_plan(cur, 3, next, &n);
    assert_int_equal(n, 3);
    assert_int_equal(s[0].action, ESM_RELOAD_RESTART);
    assert_int_equal(s[1].action, ESM_RELOAD_RESTART);
    assert_int_equal(s[2].action, ESM_RELOAD_KEEP);
    free(s);
    esm_config_destroy(next);
    esm_config_destroy(old);
}

/* A rename of FunctionName changes a derived UUID: the plan removes the old mapping and adds a
 * new one on the same source, and the reload names the state it drops. An explicit UUID keeps
 * the mapping (a restart, nothing dropped). */
static void test_a_derived_uuid_that_changes_drops_state_and_says_so(void **state)
{
    (void)state;
#define STREAM "\"arn:aws:kinesis:us-east-1:000000000000:stream/s\""
    const char *derived = "{\"functions\":{" FN_A "," FN_B "},\"event_source_mappings\":["
                          "{\"FunctionName\":\"%s\",\"StartingPosition\":\"LATEST\","
                          "\"EventSourceArn\":" STREAM "},"
                          "{\"FunctionName\":\"a\",\"EventSourceArn\":" Q("q2") "}]}";
    char text[1024];
    snprintf(text, sizeof text, derived, "a");
    esm_config *old = parse(text);
    snprintf(text, sizeof text, derived, "b");
    esm_config *next = parse(text);
    assert_true(old->mappings[0].uuid_derived);
    const esm_mapping_config *cur[2] = {&old->mappings[0], &old->mappings[1]};
    size_t n = 0;
    esm_reload_step *s = esm_reload_plan(cur, 2, next, &n);
    esm_buf why;
    esm_buf_init(&why);
    assert_int_equal(esm_reload_dropped_state(cur, 2, next, s, n, &why), 1);
    assert_non_null(strstr(esm_buf_cstr(&why), old->mappings[0].uuid));
    assert_non_null(strstr(esm_buf_cstr(&why), next->mappings[0].uuid));
    assert_non_null(strstr(esm_buf_cstr(&why), "explicit \"UUID\""));
    esm_buf_free(&why);
    free(s);
    esm_config_destroy(next);
    esm_config_destroy(old);

    /* an SQS queue keeps nothing per mapping: its rename drops no state */
    const char *sqs = "{\"functions\":{" FN_A "," FN_B "},\"event_source_mappings\":["
                      "{\"FunctionName\":\"%s\",\"EventSourceArn\":" Q("q1") "}]}";
    snprintf(text, sizeof text, sqs, "a");
    old = parse(text);
    snprintf(text, sizeof text, sqs, "b");
    next = parse(text);
    const esm_mapping_config *one[1] = {&old->mappings[0]};
    s = esm_reload_plan(one, 1, next, &n);
    esm_buf_init(&why);
    assert_int_equal(esm_reload_dropped_state(one, 1, next, s, n, &why), 0);
    esm_buf_free(&why);
    free(s);
    esm_config_destroy(next);
    esm_config_destroy(old);
    /* the same rename with the UUIDs kept: a restart, no state dropped */
    esm_config *a = parse(OLD);
    snprintf(text, sizeof text, "%s", OLD);
    char *fn = strstr(text, "\"FunctionName\":\"b\"");
    assert_non_null(fn);
    fn[strlen("\"FunctionName\":\"")] = 'a';
    esm_config *b = parse(text);
    const esm_mapping_config *cur3[3] = {&a->mappings[0], &a->mappings[1], &a->mappings[2]};
    s = esm_reload_plan(cur3, 3, b, &n);
    esm_buf_init(&why);
    assert_int_equal(esm_reload_dropped_state(cur3, 3, b, s, n, &why), 0);
    assert_int_equal(why.len, 0);
    esm_buf_free(&why);
    free(s);
    esm_config_destroy(b);
    esm_config_destroy(a);
}

static void test_plan_from_nothing_and_to_nothing(void **state)
{
    (void)state;
    esm_config *cfg = parse(OLD);
    esm_config *empty = parse("{\"functions\":{" FN_A "},\"event_source_mappings\":[]}");
    size_t n = 0;
    esm_reload_step *s = esm_reload_plan(NULL, 0, cfg, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s[i].action, ESM_RELOAD_ADD);
        assert_int_equal(s[i].new_index, i);
    }
    free(s);
    const esm_mapping_config *cur[3] = {&cfg->mappings[0], &cfg->mappings[1], &cfg->mappings[2]};
    s = esm_reload_plan(cur, 3, empty, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(s[i].action, ESM_RELOAD_REMOVE);
    free(s);
    esm_config_destroy(empty);
    esm_config_destroy(cfg);
}

static void test_restart_only_settings_are_pinned(void **state)
{
    (void)state;
    esm_config *cur = parse("{\"state_dir\":\"/tmp/a\",\"admin_listen\":\"127.0.0.1:9400\","
                            "\"aws\":{\"region\":\"us-east-1\",\"endpoints\":{\"sqs\":"
                            "\"http://127.0.0.1:1\"}},\"functions\":{" FN_A "}}");
    esm_config *next = parse("{\"state_dir\":\"/tmp/b\",\"admin_listen\":\"127.0.0.1:9400\","
                             "\"aws\":{\"region\":\"us-east-1\",\"endpoints\":{\"sqs\":"
                             "\"http://127.0.0.1:2\",\"sns\":\"http://127.0.0.1:3\"}},"
                             "\"functions\":{" FN_A "}}");
    esm_buf why;
    esm_buf_init(&why);
    assert_int_equal(esm_reload_pin_restart_only(cur, next, &why), 3);
    const char *t = esm_buf_cstr(&why);
    assert_non_null(strstr(t, "state_dir: changed from /tmp/a to /tmp/b; needs a restart"));
    assert_non_null(strstr(t, "aws.endpoints.sqs: changed from http://127.0.0.1:1 to "));
    assert_non_null(strstr(t, "aws.endpoints.sns: changed from (default) to "));
    assert_null(strstr(t, "admin_listen"));
    assert_string_equal(next->state_dir, "/tmp/a");
    assert_string_equal(next->endpoint_sqs, "http://127.0.0.1:1");
    assert_null(next->endpoint_sns);
    esm_buf_reset(&why);
    assert_int_equal(esm_reload_pin_restart_only(cur, next, &why), 0);
    esm_buf_free(&why);
    esm_config_destroy(next);
    esm_config_destroy(cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_keep_restart_remove_add),
        cmocka_unit_test(test_function_change_restarts_its_mappings_only),
        cmocka_unit_test(test_a_derived_uuid_that_changes_drops_state_and_says_so),
        cmocka_unit_test(test_plan_from_nothing_and_to_nothing),
        cmocka_unit_test(test_restart_only_settings_are_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
