/* Runs the data-driven corpus tests/unit/data/filter/corpus.txt (format described at the top
 * of that file): every line is one expectation about compile, validate or match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/esm_filter.h"

#define MAX_PATTERNS 16

typedef struct {
    char name[256];
    esm_filter_source src;
    char *pat[MAX_PATTERNS];
    size_t npat;
    char *record;
    int lineno;
    int checks, failures;
    int groups;
} corpus;

static void group_reset(corpus *c, const char *name)
{
    for (size_t i = 0; i < c->npat; i++)
        free(c->pat[i]);
    c->npat = 0;
    free(c->record);
    c->record = strdup("{}");
    c->src = ESM_FILTER_SRC_SQS;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->groups++;
}

static void report(corpus *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("corpus.txt:%d [%s]: ", c->lineno, c->name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    c->failures++;
}

static size_t hex_decode(const char *s, unsigned char *out)
{
    size_t n = 0;
    while (s[0] && s[1]) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1) break;
        out[n++] = (unsigned char)v;
        s += 2;
    }
    return n;
}

static esm_filter_set *compile(corpus *c, char *why, size_t why_len)
{
    return esm_filter_compile((const char *const *)c->pat, c->npat, c->src, why, why_len);
}

static void check_match(corpus *c, bool expect, const char *payload, size_t len)
{
    char why[512] = "";
    esm_filter_set *f = compile(c, why, sizeof why);
    c->checks++;
    if (!f) {
        report(c, "compile failed: %s", why);
        return;
    }
    bool got = esm_filter_match(f, c->record, strlen(c->record), payload, len);
    /* A second call must give the same answer (scratch reuse). */
    bool again = esm_filter_match(f, c->record, strlen(c->record), payload, len);
    if (got != expect || again != got)
        report(c, "expected %s, got %s (payload: %.*s)", expect ? "match" : "no match",
               got ? "match" : "no match", (int)len, payload ? payload : "(null)");
    esm_filter_destroy(f);
}

static void check_invalid(corpus *c, const char *text, bool src_only)
{
    char why[512] = "";
    c->checks++;
    esm_filter_set *f = compile(c, why, sizeof why);
    if (f) {
        report(c, "compiled, expected a refusal containing \"%s\"", text);
        esm_filter_destroy(f);
        return;
    }
    if (strncmp(why, ESM_FILTER_INVALID, strlen(ESM_FILTER_INVALID)) != 0)
        report(c, "reason does not start with the AWS message: %s", why);
    if (!strstr(why, text)) report(c, "reason \"%s\" lacks \"%s\"", why, text);
    char vwhy[512] = "";
    bool valid = esm_filter_validate(c->pat[c->npat - 1], vwhy, sizeof vwhy);
    if (src_only && !valid) report(c, "validate refused a source-specific case: %s", vwhy);
    if (!src_only && valid) report(c, "validate accepted an invalid pattern");
    if (!src_only && !strstr(vwhy, text))
        report(c, "validate reason \"%s\" lacks \"%s\"", vwhy, text);
}

static void run_line(corpus *c, char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n == 0 || line[0] == '#') return;
    const char *arg = strchr(line, ' ');
    arg = arg ? arg + 1 : line + n;
    size_t kw = strcspn(line, " ");
#define IS(w) (kw == strlen(w) && strncmp(line, w, kw) == 0)
    if (IS("==")) {
        group_reset(c, arg);
    } else if (IS("src")) {
        if (!strcmp(arg, "sqs"))
            c->src = ESM_FILTER_SRC_SQS;
        else if (!strcmp(arg, "kinesis"))
            c->src = ESM_FILTER_SRC_KINESIS;
        else if (!strcmp(arg, "kafka"))
            c->src = ESM_FILTER_SRC_KAFKA;
        else
            report(c, "bad src %s", arg);
    } else if (IS("pattern")) {
        if (c->npat == MAX_PATTERNS)
            report(c, "too many patterns in the corpus group");
        else
            c->pat[c->npat++] = strdup(arg);
    } else if (IS("record")) {
        free(c->record);
        c->record = strdup(arg);
    } else if (IS("yes") || IS("no")) {
        check_match(c, IS("yes"), arg, strlen(arg));
    } else if (IS("yes-hex") || IS("no-hex")) {
        unsigned char buf[256];
        size_t len = hex_decode(arg, buf);
        check_match(c, IS("yes-hex"), (const char *)buf, len);
    } else if (IS("yes-null") || IS("no-null")) {
        check_match(c, IS("yes-null"), NULL, 0);
    } else if (IS("invalid") || IS("invalid-src")) {
        check_invalid(c, arg, IS("invalid-src"));
    } else {
        report(c, "unknown corpus line: %s", line);
    }
#undef IS
}

static void test_corpus(void **state)
{
    (void)state;
    const char *path = ESMD_SOURCE_DIR "/tests/unit/data/filter/corpus.txt";
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    corpus c = {0};
    group_reset(&c, "(start)");
    c.groups = 0;
    char line[8192];
    while (fgets(line, sizeof line, fp)) {
        c.lineno++;
        run_line(&c, line);
    }
    fclose(fp);
    group_reset(&c, "(end)");
    free(c.record);
    printf("filter corpus: %d groups, %d checks, %d failures\n", c.groups - 1, c.checks,
           c.failures);
    assert_int_equal(c.failures, 0);
    /* Guards against a truncated or unread corpus. */
    assert_true(c.checks > 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
