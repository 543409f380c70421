/* Prometheus rendering: escaping, numbers, histogram bucket math, family layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/esm_metrics.h"

static char *render_escape(const char *v)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_prom_escape(&b, v);
    char *s = strdup(b.len ? esm_buf_cstr(&b) : "");
    esm_buf_free(&b);
    return s;
}

static void test_label_escaping(void **state)
{
    (void)state;
    char *s = render_escape("a\\b\"c\nd");
    assert_string_equal(s, "a\\\\b\\\"c\\nd");
    free(s);
    s = render_escape(NULL);
    assert_string_equal(s, "");
    free(s);
    s = render_escape("plain-ünïcode/ok");
    assert_string_equal(s, "plain-ünïcode/ok");
    free(s);
}

static void test_sample_with_escaped_labels(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_prom_label l[] = {{"mapping", "m\"1"}, {"function", "f\\n"}};
    esm_prom_sample(&b, "esmd_x_total", l, 2, 3);
    esm_prom_sample(&b, "esmd_y", NULL, 0, 0.5);
    esm_prom_sample_u64(&b, "esmd_z_total", l, 1, UINT64_C(18446744073709551615));
    assert_string_equal(esm_buf_cstr(&b),
                        "esmd_x_total{mapping=\"m\\\"1\",function=\"f\\\\n\"} 3\n"
                        "esmd_y 0.5\n"
                        "esmd_z_total{mapping=\"m\\\"1\"} 18446744073709551615\n");
    esm_buf_free(&b);
}

static void test_numbers(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_prom_number(&b, 1.0 / 0.0);
    esm_buf_putc(&b, ' ');
    esm_prom_number(&b, -1.0 / 0.0);
    esm_buf_putc(&b, ' ');
    esm_prom_number(&b, 0.0 / 0.0);
    esm_buf_putc(&b, ' ');
    esm_prom_number(&b, 42);
    esm_buf_putc(&b, ' ');
    esm_prom_number(&b, -7);
    esm_buf_putc(&b, ' ');
    esm_prom_number(&b, 0.025);
    esm_buf_putc(&b, ' ');
    esm_prom_number(&b, 0.1 + 0.2); /* needs 17 digits to read back */
    assert_string_equal(esm_buf_cstr(&b), "+Inf -Inf NaN 42 -7 0.025 0.30000000000000004");
    esm_buf_free(&b);
}

static void test_help_escaping(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_prom_header(&b, "esmd_a_total", "counter", "line\\one\nline two \"quoted\"");
    assert_string_equal(esm_buf_cstr(&b), "# HELP esmd_a_total line\\\\one\\nline two \"quoted\"\n"
                                          "# TYPE esmd_a_total counter\n");
    esm_buf_free(&b);
}

static void test_histogram_observe_edges(void **state)
{
    (void)state;
    const double bounds[] = {1, 5, 10};
    esm_hist h;
    memset(&h, 0, sizeof h);
    esm_hist_observe(&h, bounds, 3, 0);   /* le 1 */
    esm_hist_observe(&h, bounds, 3, 1);   /* le 1: bounds are inclusive */
    esm_hist_observe(&h, bounds, 3, 1.5); /* le 5 */
    esm_hist_observe(&h, bounds, 3, 10);  /* le 10 */
    esm_hist_observe(&h, bounds, 3, 11);  /* +Inf */
    assert_int_equal(h.counts[0], 2);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[2], 1);
    assert_int_equal(h.counts[3], 1);
    assert_int_equal(h.count, 5);
    assert_true(h.sum > 23.49 && h.sum < 23.51);
}

static void test_histogram_render_is_cumulative(void **state)
{
    (void)state;
    const double bounds[] = {0.5, 1, 2.5};
    esm_hist h;
    memset(&h, 0, sizeof h);
    esm_hist_observe(&h, bounds, 3, 0.1);
    esm_hist_observe(&h, bounds, 3, 0.7);
    esm_hist_observe(&h, bounds, 3, 0.9);
    esm_hist_observe(&h, bounds, 3, 30);
    esm_buf b;
    esm_buf_init(&b);
    esm_prom_label l[] = {{"mapping", "u"}};
    esm_prom_histogram(&b, "esmd_d_seconds", l, 1, &h, bounds, 3);
    assert_string_equal(esm_buf_cstr(&b), "esmd_d_seconds_bucket{mapping=\"u\",le=\"0.5\"} 1\n"
                                          "esmd_d_seconds_bucket{mapping=\"u\",le=\"1\"} 3\n"
                                          "esmd_d_seconds_bucket{mapping=\"u\",le=\"2.5\"} 3\n"
                                          "esmd_d_seconds_bucket{mapping=\"u\",le=\"+Inf\"} 4\n"
                                          "esmd_d_seconds_sum{mapping=\"u\"} 31.7\n"
                                          "esmd_d_seconds_count{mapping=\"u\"} 4\n");
    esm_buf_free(&b);
    /* No labels: the le label stands alone. */
    esm_buf_init(&b);
    memset(&h, 0, sizeof h);
    esm_prom_histogram(&b, "h", NULL, 0, &h, bounds, 1);
    assert_string_equal(esm_buf_cstr(&b), "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"+Inf\"} 0\n"
                                          "h_sum 0\nh_count 0\n");
    esm_buf_free(&b);
}

static void test_invoke_stats_record(void **state)
{
    (void)state;
    esm_invoke_stats s;
    memset(&s, 0, sizeof s);
    esm_invoke_stats_record(&s, 10, 250.0, true, 1000);
    esm_invoke_stats_record(&s, 3, 12000.0, false, 2000);
    size_t nl, nb;
    const double *lb = esm_hist_latency_bounds(&nl);
    const double *bb = esm_hist_batch_bounds(&nb);
    assert_true(nl <= ESM_HIST_MAX_BUCKETS && nb <= ESM_HIST_MAX_BUCKETS);
    for (size_t i = 1; i < nl; i++)
        assert_true(lb[i] > lb[i - 1]);
    size_t i025 = 0;
    while (lb[i025] < 0.25)
        i025++;
    assert_int_equal(s.latency_seconds.counts[i025], 1); /* 0.25 s lands in le="0.25" */
    assert_int_equal(s.latency_seconds.count, 2);
    size_t i10 = 0;
    while (bb[i10] < 10)
        i10++;
    assert_int_equal(s.batch_records.counts[i10], 1);
    assert_int_equal(s.last_ok_ms, 1000);
    assert_int_equal(s.last_failed_ms, 2000);
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, len) == 0) n++;
    return n;
}

static void test_render_families(void **state)
{
    (void)state;
    esm_source_stats st1, st2;
    memset(&st1, 0, sizeof st1);
    memset(&st2, 0, sizeof st2);
    st1.polled = 7;
    st1.deleted = 5;
    st2.polled = 9;
    st2.invokes.bisect_splits = 2;
    esm_invoke_stats_endpoint(&st2.invokes, "function endpoint answered 403", 1);
    esm_invoke_stats_record(&st1.invokes, 4, 30, true, 1);
    esm_metrics_mapping maps[] = {
        {.uuid = "u1",
         .function = "fn",
         .source = "sqs",
         .state = "Enabled",
         .stats = &st1,
         .ready = true},
        {.uuid = "u2",
         .function = "f\"n",
         .source = "kinesis",
         .state = "Enabled",
         .stats = &st2,
         .stuck = true,
         .blocked_seconds = 12.5},
        {.uuid = "u3", .function = "off", .source = "sqs", .state = "Disabled"},
    };
    esm_metrics_lane lanes[] = {
        {1, "shardId-000000000000", ESM_GAUGE_ITERATOR_AGE_SECONDS, 3},
        {1, "shardId-000000000001", ESM_GAUGE_ITERATOR_AGE_SECONDS, 0},
    };
    esm_metrics_global g = {.have_outbox = true,
                            .outbox_depth = 4,
                            .generation = 2,
                            .reloads_ok = 1,
                            .reloads_failed = 3};
    esm_buf b;
    esm_buf_init(&b);
    esm_metrics_render(&b, maps, 3, lanes, 2, &g);
    const char *t = esm_buf_cstr(&b);
    assert_non_null(strstr(t, "esmd_polled_events_total{mapping=\"u1\",function=\"fn\","
                              "source=\"sqs\"} 7\n"));
    assert_non_null(strstr(t, "esmd_polled_events_total{mapping=\"u2\",function=\"f\\\"n\","
                              "source=\"kinesis\"} 9\n"));
    assert_non_null(strstr(t, "esmd_deleted_events_total{mapping=\"u1\",function=\"fn\","
                              "source=\"sqs\"} 5\n"));
    assert_non_null(strstr(t, "esmd_bisect_splits_total{mapping=\"u2\",function=\"f\\\"n\","
                              "source=\"kinesis\"} 2\n"));
    assert_non_null(strstr(t, "esmd_invoke_misconfigured_total{mapping=\"u2\",function="
                              "\"f\\\"n\",source=\"kinesis\"} 1\n"));
    assert_non_null(strstr(t, "esmd_mapping_misconfigured{mapping=\"u2\",function=\"f\\\"n\","
                              "source=\"kinesis\"} 1\n"));
    assert_non_null(strstr(t, "esmd_mapping_misconfigured{mapping=\"u1\",function=\"fn\","
                              "source=\"sqs\"} 0\n"));
    assert_int_equal(count_lines_starting(t, "# TYPE esmd_mapping_misconfigured gauge"), 1);
    /* A mapping that does not run has no counters but shows up in the info/ready gauges. */
    assert_null(strstr(t, "esmd_polled_events_total{mapping=\"u3\""));
    assert_non_null(strstr(t, "esmd_mapping_info{mapping=\"u3\",function=\"off\",source=\"sqs\","
                              "state=\"Disabled\"} 1\n"));
    assert_non_null(strstr(t, "esmd_mapping_stuck{mapping=\"u2\",function=\"f\\\"n\","
                              "source=\"kinesis\"} 1\n"));
    assert_non_null(strstr(t, "esmd_iterator_age_seconds{mapping=\"u2\",function=\"f\\\"n\","
                              "source=\"kinesis\",lane=\"shardId-000000000000\"} 3\n"));
    assert_non_null(strstr(t, "esmd_invoke_duration_seconds_bucket{mapping=\"u1\",function="
                              "\"fn\",source=\"sqs\",le=\"0.05\"} 1\n"));
    assert_non_null(strstr(t, "esmd_invoke_batch_records_count{mapping=\"u1\",function=\"fn\","
                              "source=\"sqs\"} 1\n"));
    assert_non_null(strstr(t, "esmd_outbox_depth 4\n"));
    assert_non_null(strstr(t, "esmd_config_reloads_total{result=\"rejected\"} 3\n"));
    /* No gauge a source never emitted. */
    assert_null(strstr(t, "esmd_offset_lag"));
    /* Every family once, each TYPE right after its HELP, and samples grouped by family. */
    assert_int_equal(count_lines_starting(t, "# TYPE esmd_polled_events_total "), 1);
    assert_int_equal(count_lines_starting(t, "# TYPE esmd_iterator_age_seconds gauge"), 1);
    assert_int_equal(count_lines_starting(t, "# TYPE esmd_invoke_duration_seconds histogram"), 1);
    char last_family[128] = "";
    char seen[64][128];
    size_t n_seen = 0;
    for (const char *p = t; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strncmp(p, "# TYPE ", 7) == 0) {
            const char *sp = strchr(p + 7, ' ');
            snprintf(last_family, sizeof last_family, "%.*s", (int)(sp - p - 7), p + 7);
            for (size_t i = 0; i < n_seen; i++)
                assert_string_not_equal(seen[i], last_family);
            assert_true(n_seen < 64);
            snprintf(seen[n_seen++], sizeof seen[0], "%s", last_family);
        } else if (p[0] != '#') {
            assert_true(last_family[0] != '\0');
            assert_int_equal(strncmp(p, last_family, strlen(last_family)), 0);
        }
        p = nl + 1;
    }
    esm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_sample_with_escaped_labels),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_help_escaping),
        cmocka_unit_test(test_histogram_observe_edges),
        cmocka_unit_test(test_histogram_render_is_cumulative),
        cmocka_unit_test(test_invoke_stats_record),
        cmocka_unit_test(test_render_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
