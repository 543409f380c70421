/* common/esm_buf: JSON string escaping (pinned against the byte-at-a-time original) and the
 * printf-free integer writers. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "common/esm_buf.h"

/* ---- the reference: esm_buf_json_str as it was before the run-copying rewrite ------------- */

static size_t ref_utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

static void ref_json_str(esm_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    esm_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = ref_utf8_len(p + i, len - i);
            if (n == 0) {
                esm_buf_puts(b, "\\ufffd");
                i++;
            } else {
                esm_buf_append(b, p + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            esm_buf_puts(b, "\\\"");
            break;
        case '\\':
            esm_buf_puts(b, "\\\\");
            break;
        case '\n':
            esm_buf_puts(b, "\\n");
            break;
        case '\r':
            esm_buf_puts(b, "\\r");
            break;
        case '\t':
            esm_buf_puts(b, "\\t");
            break;
        case '\b':
            esm_buf_puts(b, "\\b");
            break;
        case '\f':
            esm_buf_puts(b, "\\f");
            break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                esm_buf_append(b, esc, sizeof esc);
            } else {
                esm_buf_putc(b, (char)c);
            }
        }
        i++;
    }
    esm_buf_putc(b, '"');
}

/* Asserts esm_buf_json_str(s) == the reference, appended after some existing content. */
static void assert_same_as_reference(const char *s, size_t len)
{
    esm_buf got, want;
    esm_buf_init(&got);
    esm_buf_init(&want);
    esm_buf_puts(&got, "x:");
    esm_buf_puts(&want, "x:");
    esm_buf_json_str(&got, s, len);
    ref_json_str(&want, s, len);
    assert_false(got.failed);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    esm_buf_free(&got);
    esm_buf_free(&want);
}

static char *json_of(const char *s, size_t len)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_json_str(&b, s, len);
    char *r = strdup(esm_buf_cstr(&b));
    esm_buf_free(&b);
    return r;
}

static void test_json_str_escapes_like_before(void **state)
{
    (void)state;
    static const char in[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk";
    char *r = json_of(in, sizeof in - 1);
    assert_string_equal(r, "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\x7fk\"");
    free(r);
    r = json_of("", 0);
    assert_string_equal(r, "\"\"");
    free(r);
    /* NUL bytes are data, not the end of the string. */
    r = json_of("a\0b\0", 4);
    assert_string_equal(r, "\"a\\u0000b\\u0000\"");
    free(r);
}

static void test_json_str_utf8_kept_and_invalid_replaced(void **state)
{
    (void)state;
    /* Valid 2/3/4-byte sequences are copied; each invalid byte becomes one U+FFFD. */
    char *r = json_of("h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", 12);
    assert_string_equal(r, "\"h\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
    free(r);
    r = json_of("a\xff\xc3", 3); /* stray byte, then a truncated sequence at the end */
    assert_string_equal(r, "\"a\\ufffd\\ufffd\"");
    free(r);
    r = json_of("\xed\xa0\x80x", 4); /* a surrogate: 3 invalid bytes */
    assert_string_equal(r, "\"\\ufffd\\ufffd\\ufffdx\"");
    free(r);
    r = json_of("\xc0\xaf", 2); /* overlong */
    assert_string_equal(r, "\"\\ufffd\\ufffd\"");
    free(r);
    r = json_of("\xf4\x90\x80\x80", 4); /* above U+10FFFF */
    assert_string_equal(r, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    free(r);
}

static void test_json_str_long_runs_and_escapes_at_run_edges(void **state)
{
    (void)state;
    size_t n = 100000;
    char *s = malloc(n);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i % 26);
    assert_same_as_reference(s, n);
    /* Escapes and multi-byte sequences first, last, and next to each other. */
    s[0] = '"';
    s[n - 1] = '\n';
    s[5000] = '\\';
    s[5001] = '\\';
    memcpy(s + 7000, "\xe2\x9c\x93\xff\xc3\xa9", 6);
    s[n - 2] = '\xc3'; /* truncated before the final escape */
    assert_same_as_reference(s, n);
    char *r = json_of(s, n);
    cJSON *j = cJSON_Parse(r);
    assert_non_null(j); /* still valid JSON */
    assert_true(cJSON_IsString(j));
    cJSON_Delete(j);
    free(r);
    free(s);
}

static void test_json_str_random_bytes_match_reference(void **state)
{
    (void)state;
    /* Every byte value, at every position, in short and long strings. Fixed seed. */
    unsigned seed = 12345;
    char buf[300];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(iter % 300);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned v = (seed >> 16) & 0xff;
            /* Mostly plain ASCII, like real bodies, with escapes and UTF-8 mixed in. */
            if (iter % 3 && v < 200) v = 'a' + v % 26;
            buf[i] = (char)v;
        }
        assert_same_as_reference(buf, len);
    }
    for (int c = 0; c < 256; c++) {
        char one[3] = {'a', (char)c, 'b'};
        assert_same_as_reference(one, 3);
        assert_same_as_reference(one + 1, 1);
    }
}

static void test_json_str_after_failed_buffer_appends_nothing(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    b.failed = true;
    esm_buf_json_str(&b, "abc", 3);
    assert_int_equal(b.len, 0);
    esm_buf_free(&b);
}

static void assert_i64(int64_t v)
{
    char want[32];
    snprintf(want, sizeof want, "%" PRId64, v);
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_putc(&b, '[');
    esm_buf_put_i64(&b, v);
    esm_buf_putc(&b, ']');
    char framed[40];
    snprintf(framed, sizeof framed, "[%s]", want);
    assert_string_equal(esm_buf_cstr(&b), framed);
    esm_buf_free(&b);
}

static void assert_u64(uint64_t v)
{
    char want[32];
    snprintf(want, sizeof want, "%" PRIu64, v);
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_put_u64(&b, v);
    assert_string_equal(esm_buf_cstr(&b), want);
    esm_buf_free(&b);
}

static void test_put_integers_match_printf(void **state)
{
    (void)state;
    const int64_t s[] = {0,
                         1,
                         -1,
                         9,
                         10,
                         -10,
                         99,
                         100,
                         123456789,
                         -987654321,
                         INT32_MAX,
                         INT32_MIN,
                         INT64_MAX,
                         INT64_MIN,
                         INT64_MIN + 1,
                         1717000000123LL};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        assert_i64(s[i]);
    const uint64_t u[] = {0, 1, 10, UINT32_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        assert_u64(u[i]);
    int64_t p = 1;
    for (int i = 0; i < 18; i++, p *= 10) {
        assert_i64(p);
        assert_i64(p - 1);
        assert_i64(-p);
        assert_i64(-p + 1);
    }
    esm_buf b;
    esm_buf_init(&b);
    b.failed = true;
    esm_buf_put_i64(&b, INT64_MIN);
    assert_int_equal(b.len, 0);
    esm_buf_free(&b);
}

static void test_base64_rfc4648_vectors_and_round_trip(void **state)
{
    (void)state;
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    esm_buf b;
    esm_buf_init(&b);
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        esm_buf_reset(&b);
        esm_buf_base64(&b, vec[i][0], strlen(vec[i][0]));
        assert_int_equal(b.len, strlen(vec[i][1]));
        assert_memory_equal(b.data, vec[i][1], b.len);
    }
    /* every byte value in every position, every tail length: decode(encode(x)) == x */
    unsigned char in[300], out[300];
    srand(7);
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t k = 0; k < len; k++)
            in[k] = (unsigned char)(len < 256 ? (k + len) & 0xff : (size_t)rand());
        esm_buf_reset(&b);
        esm_buf_base64(&b, in, len);
        assert_int_equal(b.len, 4 * ((len + 2) / 3));
        assert_int_equal(esm_base64_decode(b.data, b.len, out), (long)len);
        assert_memory_equal(out, in, len);
    }
    esm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_str_escapes_like_before),
        cmocka_unit_test(test_json_str_utf8_kept_and_invalid_replaced),
        cmocka_unit_test(test_json_str_long_runs_and_escapes_at_run_edges),
        cmocka_unit_test(test_json_str_random_bytes_match_reference),
        cmocka_unit_test(test_json_str_after_failed_buffer_appends_nothing),
        cmocka_unit_test(test_put_integers_match_printf),
        cmocka_unit_test(test_base64_rfc4648_vectors_and_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
