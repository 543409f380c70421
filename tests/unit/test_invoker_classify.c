/* Outcome classification of both function protocols, without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "invoker/esm_invoker.h"

#include <curl/curl.h>
#include <string.h>

static esm_invoke_result classify(esm_protocol p, long status, const char *fe, int curl_code,
                                  bool timed_out, bool truncated)
{
    esm_invoke_wire w = {.protocol = p,
                         .status = status,
                         .function_error = fe,
                         .curl_code = curl_code,
                         .timed_out = timed_out,
                         .request_sent = timed_out, /* a timeout after the request went out */
                         .body_truncated = truncated,
                         .timeout_ms = 1000};
    esm_invoke_result r;
    memset(&r, 0x55, sizeof r); /* classify must set every field it owns */
    esm_invoke_classify(&w, &r);
    return r;
}

#define L ESM_PROTO_LAMBDA
#define H ESM_PROTO_HTTP

static void test_lambda_success(void **state)
{
    (void)state;
    esm_invoke_result r = classify(L, 200, NULL, 0, false, false);
    assert_int_equal(r.cls, ESM_INVOKE_SUCCESS);
    assert_string_equal(r.reason, "");
    assert_string_equal(r.function_error, "");
    r = classify(L, 200, "", 0, false, false); /* an empty header is no error */
    assert_int_equal(r.cls, ESM_INVOKE_SUCCESS);
}

static void test_lambda_function_error(void **state)
{
    (void)state;
    esm_invoke_result r = classify(L, 200, "Unhandled", 0, false, false);
    assert_int_equal(r.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(r.function_error, "Unhandled");
    r = classify(L, 200, "Handled", 0, false, false);
    assert_int_equal(r.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(r.function_error, "Handled");
}

static void test_lambda_throttle(void **state)
{
    (void)state;
    esm_invoke_result r = classify(L, 429, NULL, 0, false, false);
    assert_int_equal(r.cls, ESM_INVOKE_THROTTLE);
    assert_non_null(strstr(r.reason, "429"));
}

static void test_lambda_invocation_errors(void **state)
{
    (void)state;
    long codes[] = {500, 502, 503, 400, 409, 413, 415};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        esm_invoke_result r = classify(L, codes[i], NULL, 0, false, false);
        assert_int_equal(r.cls, ESM_INVOKE_ERROR);
        assert_false(r.misconfigured);
        char want[16];
        snprintf(want, sizeof want, "HTTP %ld", codes[i]);
        assert_string_equal(r.reason, want);
        assert_string_equal(r.function_error, "");
    }
}

/* 401/403/404/405/407 say esmd's settings are wrong, on both protocols: an invocation error
 * (never counted, never discarded) flagged as a misconfiguration, with what to check. */
static void test_misconfigured_statuses(void **state)
{
    (void)state;
    long codes[] = {401, 403, 404, 405, 407};
    esm_protocol ps[] = {L, H};
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
            esm_invoke_result r = classify(ps[p], codes[i], NULL, 0, false, false);
            assert_int_equal(r.cls, ESM_INVOKE_ERROR);
            assert_true(r.misconfigured);
            assert_string_equal(r.function_error, "");
            char want[64];
            snprintf(want, sizeof want, "function endpoint answered %ld: esmd is misconfigured (",
                     codes[i]);
            assert_memory_equal(r.reason, want, strlen(want));
        }
    esm_invoke_result r = classify(H, 403, NULL, 0, false, false);
    assert_string_equal(r.reason,
                        "function endpoint answered 403: esmd is misconfigured (credentials/URL: "
                        "access denied)");
    /* a 2xx with the error header is the function's error, whatever else */
    assert_false(classify(H, 200, "Unhandled", 0, false, false).misconfigured);
}

/* esmd's own timeout after the request went out is a function timeout on both protocols. */
static void test_lambda_timeout_is_function_error(void **state)
{
    (void)state;
    esm_invoke_result r = classify(L, 0, NULL, CURLE_OPERATION_TIMEDOUT, true, false);
    assert_int_equal(r.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(r.function_error, "Unhandled");
    assert_false(r.misconfigured);
    assert_string_equal(r.reason,
                        "timeout after 1000 ms: the function did not answer (function timeout)");
}

/* A timeout before the request was sent (connect, TLS) never reached the function. */
static void test_timeout_before_sending_is_invocation_error(void **state)
{
    (void)state;
    esm_protocol ps[] = {L, H};
    for (size_t i = 0; i < 2; i++) {
        esm_invoke_wire w = {.protocol = ps[i],
                             .curl_code = CURLE_OPERATION_TIMEDOUT,
                             .timed_out = true,
                             .request_sent = false,
                             .timeout_ms = 1000,
                             .transport_error = "Connection timed out after 1001 milliseconds"};
        esm_invoke_result r;
        esm_invoke_classify(&w, &r);
        assert_int_equal(r.cls, ESM_INVOKE_ERROR);
        assert_false(r.misconfigured);
        assert_string_equal(r.reason,
                            "transport error: Connection timed out after 1001 milliseconds");
    }
}

static void test_transport_errors(void **state)
{
    (void)state;
    esm_protocol ps[] = {L, H};
    for (size_t i = 0; i < 2; i++) {
        esm_invoke_result r = classify(ps[i], 0, NULL, CURLE_COULDNT_CONNECT, false, false);
        assert_int_equal(r.cls, ESM_INVOKE_ERROR);
        assert_false(r.misconfigured);
        assert_non_null(strstr(r.reason, "transport error"));
        r = classify(ps[i], 0, NULL, CURLE_RECV_ERROR, false, false);
        assert_int_equal(r.cls, ESM_INVOKE_ERROR);
        assert_false(r.misconfigured);
    }
    esm_invoke_wire w = {.protocol = H,
                         .curl_code = CURLE_COULDNT_CONNECT,
                         .transport_error = "Failed to connect to 127.0.0.1 port 1"};
    esm_invoke_result r;
    esm_invoke_classify(&w, &r);
    assert_string_equal(r.reason, "transport error: Failed to connect to 127.0.0.1 port 1");
}

static void test_oversized_response_is_function_error(void **state)
{
    (void)state;
    esm_protocol ps[] = {L, H};
    for (size_t i = 0; i < 2; i++) {
        esm_invoke_result r = classify(ps[i], 200, NULL, CURLE_WRITE_ERROR, false, true);
        assert_int_equal(r.cls, ESM_INVOKE_FUNCTION_ERROR);
        assert_string_equal(r.function_error, "Unhandled");
        assert_non_null(strstr(r.reason, "response larger than 6291456"));
    }
}

static void test_http_protocol(void **state)
{
    (void)state;
    long ok[] = {200, 201, 202, 204};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(classify(H, ok[i], NULL, 0, false, false).cls, ESM_INVOKE_SUCCESS);
    assert_int_equal(classify(H, 429, NULL, 0, false, false).cls, ESM_INVOKE_THROTTLE);
    assert_int_equal(classify(H, 503, NULL, 0, false, false).cls, ESM_INVOKE_THROTTLE);
    long fe[] = {500, 502, 504, 400, 409, 410, 301};
    for (size_t i = 0; i < sizeof fe / sizeof *fe; i++) {
        esm_invoke_result r = classify(H, fe[i], NULL, 0, false, false);
        assert_int_equal(r.cls, ESM_INVOKE_FUNCTION_ERROR);
        assert_string_equal(r.function_error, "Unhandled");
    }
    /* a 2xx carrying the Lambda error header is still an error */
    assert_int_equal(classify(H, 200, "Unhandled", 0, false, false).cls, ESM_INVOKE_FUNCTION_ERROR);
}

static void test_http_timeout_is_function_error(void **state)
{
    (void)state;
    esm_invoke_result r = classify(H, 0, NULL, CURLE_OPERATION_TIMEDOUT, true, false);
    assert_int_equal(r.cls, ESM_INVOKE_FUNCTION_ERROR);
    assert_string_equal(r.function_error, "Unhandled");
    assert_string_equal(r.reason,
                        "timeout after 1000 ms: the function did not answer (function timeout)");
}

static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(esm_invoke_parse_retry_after("1"), 1000);
    assert_int_equal(esm_invoke_parse_retry_after(" 30 "), 30000);
    assert_int_equal(esm_invoke_parse_retry_after("2.5"), 2500);
    assert_int_equal(esm_invoke_parse_retry_after("0"), 0);
    assert_int_equal(esm_invoke_parse_retry_after(NULL), -1);
    assert_int_equal(esm_invoke_parse_retry_after(""), -1);
    assert_int_equal(esm_invoke_parse_retry_after("-1"), -1);
    assert_int_equal(esm_invoke_parse_retry_after("soon"), -1);
    assert_int_equal(esm_invoke_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(esm_invoke_class_name(ESM_INVOKE_SUCCESS), "success");
    assert_string_equal(esm_invoke_class_name(ESM_INVOKE_FUNCTION_ERROR), "function_error");
    assert_string_equal(esm_invoke_class_name(ESM_INVOKE_THROTTLE), "throttle");
    assert_string_equal(esm_invoke_class_name(ESM_INVOKE_ERROR), "error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lambda_success),
        cmocka_unit_test(test_lambda_function_error),
        cmocka_unit_test(test_lambda_throttle),
        cmocka_unit_test(test_lambda_invocation_errors),
        cmocka_unit_test(test_misconfigured_statuses),
        cmocka_unit_test(test_lambda_timeout_is_function_error),
        cmocka_unit_test(test_timeout_before_sending_is_invocation_error),
        cmocka_unit_test(test_transport_errors),
        cmocka_unit_test(test_oversized_response_is_function_error),
        cmocka_unit_test(test_http_protocol),
        cmocka_unit_test(test_http_timeout_is_function_error),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_class_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
