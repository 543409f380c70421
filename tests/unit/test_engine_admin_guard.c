/* esm_admin_guard(): the decision every state-changing admin request passes, with the client
 * address as an argument (loopback or not), and the helpers it is built on. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "engine/esm_admin_guard.h"

#define TOKEN "s3cr3t-t0ken-0123456789"

/* A bodiless POST /reload from curl on the esmd host. */
static esm_admin_request curl_post(void)
{
    return (esm_admin_request){.method = "POST", .host = "127.0.0.1:9400", .loopback = true};
}

static void test_reads_are_never_guarded(void **state)
{
    (void)state;
    esm_admin_request r = {.method = "GET",
                           .origin = "http://evil.example",
                           .sec_fetch_site = "cross-site",
                           .content_type = "text/plain"};
    assert_int_equal(esm_admin_guard(&r, TOKEN), ESM_ADMIN_ALLOW);
    r.method = "HEAD";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    assert_true(esm_admin_is_read_method("GET"));
    assert_false(esm_admin_is_read_method("OPTIONS"));
    assert_false(esm_admin_is_read_method("get"));
}

static void test_loopback_without_token(void **state)
{
    (void)state;
    esm_admin_request r = curl_post();
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    assert_int_equal(esm_admin_guard(&r, ""), ESM_ADMIN_ALLOW);
    r.content_type = "application/json; charset=utf-8";
    r.content_length = "2";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    r.content_type = "application/json"; /* bodiless, a type that is not a form one */
    r.content_length = "0";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    r.method = "DELETE"; /* every non-read method is guarded the same way */
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
}

static void test_cross_site(void **state)
{
    (void)state;
    esm_admin_request r = curl_post();
    r.origin = "http://evil.example";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_CROSS_SITE);
    r.origin = "null";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_CROSS_SITE);
    r.origin = "http://localhost:3000"; /* same site, other port: another local web app */
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_CROSS_SITE);
    r.origin = "http://127.0.0.1:9400"; /* the admin origin itself */
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    r.origin = NULL;
    r.host = NULL;
    r.sec_fetch_site = "cross-site";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_CROSS_SITE);
    r.sec_fetch_site = "same-site";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_CROSS_SITE);
    r.sec_fetch_site = "same-origin";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    r.sec_fetch_site = "none";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_ALLOW);
    /* DNS rebinding: the browser sees evil.example as same-origin; Host gives it away. */
    r.sec_fetch_site = "same-origin";
    r.origin = "http://evil.example:9400";
    r.host = "evil.example:9400";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_CROSS_SITE);
    /* cross-site wins over a correct token */
    assert_int_equal(esm_admin_guard(&r, TOKEN), ESM_ADMIN_CROSS_SITE);
}

static void test_form_content_types(void **state)
{
    (void)state;
    const char *forms[] = {"application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                           "text/plain", " Text/Plain;charset=UTF-8"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        esm_admin_request r = curl_post();
        r.content_type = forms[i];
        assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_FORM_CONTENT_TYPE);
        r.content_length = "3";
        assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_FORM_CONTENT_TYPE);
    }
    esm_admin_request r = curl_post();
    r.content_length = "3"; /* fetch() with a Blob body sends no Content-Type */
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_BODY_NOT_JSON);
    r.content_type = "application/xml";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_BODY_NOT_JSON);
    r.content_type = "application/jsonx";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_BODY_NOT_JSON);
    r.content_length = NULL;
    r.content_type = NULL;
    r.transfer_encoding = "chunked";
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_BODY_NOT_JSON);
}

static void test_remote_client(void **state)
{
    (void)state;
    esm_admin_request r = curl_post();
    r.loopback = false;
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_REMOTE_WITHOUT_TOKEN);
    r.authorization = "Bearer " TOKEN; /* a token means nothing when none is configured */
    assert_int_equal(esm_admin_guard(&r, NULL), ESM_ADMIN_REMOTE_WITHOUT_TOKEN);
    assert_int_equal(esm_admin_guard(&r, TOKEN), ESM_ADMIN_ALLOW);
}

static void test_token(void **state)
{
    (void)state;
    const char *bad[] = {NULL,
                         "",
                         "Bearer",
                         "Bearer ",
                         "Basic " TOKEN,
                         "Bearer" TOKEN,
                         "Bearer " TOKEN "x",
                         "Bearer s3cr3t-t0ken-012345678",
                         "Bearer S3CR3T-T0KEN-0123456789",
                         "Bearer " TOKEN " extra"};
    for (int loopback = 0; loopback < 2; loopback++) {
        esm_admin_request r = curl_post();
        r.loopback = loopback; /* a configured token is needed from loopback too */
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            r.authorization = bad[i];
            assert_int_equal(esm_admin_guard(&r, TOKEN), ESM_ADMIN_BAD_TOKEN);
        }
        r.authorization = "Bearer " TOKEN;
        assert_int_equal(esm_admin_guard(&r, TOKEN), ESM_ADMIN_ALLOW);
        r.authorization = "bearer   " TOKEN " ";
        assert_int_equal(esm_admin_guard(&r, TOKEN), ESM_ADMIN_ALLOW);
    }
    assert_true(esm_admin_token_equal("abc", 3, "abc"));
    assert_false(esm_admin_token_equal("abc", 2, "abc"));
    assert_false(esm_admin_token_equal("abcd", 4, "abc"));
    assert_false(esm_admin_token_equal("", 0, "abc"));
    assert_true(esm_admin_token_equal("", 0, ""));
}

static void test_loopback_addresses(void **state)
{
    (void)state;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
    assert_true(esm_admin_addr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "127.255.0.9", &v4.sin_addr);
    assert_true(esm_admin_addr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "192.0.2.2", &v4.sin_addr);
    assert_false(esm_admin_addr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "128.0.0.1", &v4.sin_addr);
    assert_false(esm_admin_addr_is_loopback((struct sockaddr *)&v4));
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    assert_true(esm_admin_addr_is_loopback((struct sockaddr *)&v6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
    assert_true(esm_admin_addr_is_loopback((struct sockaddr *)&v6));
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &v6.sin6_addr);
    assert_false(esm_admin_addr_is_loopback((struct sockaddr *)&v6));
    inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
    assert_false(esm_admin_addr_is_loopback((struct sockaddr *)&v6));
    assert_false(esm_admin_addr_is_loopback(NULL));
}

static void test_every_refusal_says_why_and_what_to_do(void **state)
{
    (void)state;
    for (int v = ESM_ADMIN_ALLOW + 1; v < ESM_ADMIN_VERDICTS; v++) {
        const char *j = esm_admin_verdict_json((esm_admin_verdict)v);
        assert_non_null(strstr(j, "\"error\":\"refused: "));
        assert_non_null(strstr(j, "\"fix\":\""));
        char want[64];
        snprintf(want, sizeof want, "\"reason\":\"%s\"",
                 esm_admin_verdict_reason((esm_admin_verdict)v));
        assert_non_null(strstr(j, want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_are_never_guarded),
        cmocka_unit_test(test_loopback_without_token),
        cmocka_unit_test(test_cross_site),
        cmocka_unit_test(test_form_content_types),
        cmocka_unit_test(test_remote_client),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_loopback_addresses),
        cmocka_unit_test(test_every_refusal_says_why_and_what_to_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
