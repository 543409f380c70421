/* admin_token / admin_token_file: accepted forms, every refusal, and that no message shows the
 * token. */
#include <unistd.h>

#include "test_config_helpers.h"

#define GOOD "0123456789abcdef0123"

static char path_buf[64];

static const char *token_file(const char *content)
{
    snprintf(path_buf, sizeof path_buf, "/tmp/esmd-test-token-XXXXXX");
    int fd = mkstemp(path_buf);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path_buf;
}

static esm_config *parse_with_file(const char *path, esm_config_problems *p)
{
    char doc[256];
    snprintf(doc, sizeof doc, "{'admin_token_file': '%s'}", path);
    return tc_parse(doc, p);
}

static void assert_not_shown(const esm_config_problems *p, const char *secret)
{
    for (size_t i = 0; i < p->n; i++)
        assert_null(strstr(p->items[i].message, secret));
}

static void test_no_token_by_default(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{}", &p);
    assert_valid(cfg, &p);
    assert_null(cfg->admin_token);
    esm_config_destroy(cfg);
}

static void test_token_from_env(void **state)
{
    (void)state;
    setenv("ESMD_TEST_ADMIN_TOKEN", GOOD, 1);
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{'admin_token': '${ESMD_TEST_ADMIN_TOKEN}'}", &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->admin_token, GOOD);
    esm_config_destroy(cfg);
    unsetenv("ESMD_TEST_ADMIN_TOKEN");
}

static void test_token_file_line_break_dropped(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    const char *f = token_file(GOOD "\r\n");
    esm_config *cfg = parse_with_file(f, &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->admin_token, GOOD);
    esm_config_destroy(cfg);
    unlink(f);
}

static void test_refusals(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{'admin_token': 'short-secret'}", &p);
    assert_null(cfg);
    assert_problem(&p, "admin_token",
                   "the value is not allowed: must be 16 to 4096 visible ASCII characters, no "
                   "spaces (e.g. openssl rand -hex 32)");
    assert_not_shown(&p, "short-secret");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'admin_token': 'with a space in the secret'}", &p);
    assert_null(cfg);
    assert_problem_prefix(&p, "admin_token", "the value is not allowed");
    assert_not_shown(&p, "space in the");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'admin_token': 5}", &p);
    assert_null(cfg);
    assert_problem(&p, "admin_token", "must be a string, got a number");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'admin_token': '" GOOD "', 'admin_token_file': '/x'}", &p);
    assert_null(cfg);
    assert_problem(&p, "admin_token_file",
                   "admin_token and admin_token_file are both set; set only one");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'admin_token_file': 'relative/token'}", &p);
    assert_null(cfg);
    assert_problem(&p, "admin_token_file",
                   "'relative/token' is not allowed: must be an absolute path");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'admin_token_file': '/nonexistent/esmd-token'}", &p);
    assert_null(cfg);
    assert_problem(&p, "admin_token_file",
                   "cannot read '/nonexistent/esmd-token': No such file or directory");
    esm_config_problems_free(&p);

    const char *f = token_file("two\nlines-of-a-secret-token\n");
    cfg = parse_with_file(f, &p);
    assert_null(cfg);
    char want[160];
    snprintf(want, sizeof want, "the token in '%s' is not allowed: must be one line of 16", f);
    assert_problem_prefix(&p, "admin_token_file", want);
    assert_not_shown(&p, "lines-of-a");
    esm_config_problems_free(&p);
    unlink(f);

    f = token_file("");
    cfg = parse_with_file(f, &p);
    assert_null(cfg);
    assert_problem_prefix(&p, "admin_token_file", "the token in '");
    esm_config_problems_free(&p);
    unlink(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_token_by_default),
        cmocka_unit_test(test_token_from_env),
        cmocka_unit_test(test_token_file_line_break_dropped),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
