#include "common/esm_buf.h"

#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void esm_buf_init(esm_buf *b)
{
    memset(b, 0, sizeof *b);
}

void esm_buf_free(esm_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void esm_buf_reset(esm_buf *b)
{
    b->len = 0;
    b->failed = false;
}

bool esm_buf_reserve(esm_buf *b, size_t extra)
{
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void esm_buf_append(esm_buf *b, const void *data, size_t len)
{
    if (len == 0 || !esm_buf_reserve(b, len)) return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void esm_buf_puts(esm_buf *b, const char *s)
{
    esm_buf_append(b, s, strlen(s));
}

void esm_buf_putc(esm_buf *b, char c)
{
    if (!esm_buf_reserve(b, 1)) return;
    b->data[b->len++] = c;
}

void esm_buf_printf(esm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !esm_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Writes v in decimal at out (no NUL, at most 20 bytes); returns the length. */
static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        out[len++] = tmp[--n];
    return len;
}

void esm_buf_put_u64(esm_buf *b, uint64_t v)
{
    char digits[20];
    size_t n = fmt_u64(digits, v);
    esm_buf_append(b, digits, n);
}

size_t esm_fmt_i64(char *out, int64_t v)
{
    if (v >= 0) return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v); /* INT64_MIN included */
}

void esm_buf_put_i64(esm_buf *b, int64_t v)
{
    char digits[ESM_FMT_I64_MAX];
    size_t n = esm_fmt_i64(digits, v);
    esm_buf_append(b, digits, n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes are not valid UTF-8. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
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

/* How each byte is written inside a JSON string: 0 = as is, 1 = start of a UTF-8 sequence
 * (checked), 'u' = \u00XX, any other = a backslash and that character. */
static const unsigned char json_esc[256] = {
    [0x00 ... 0x07] = 'u', [0x08] = 'b',  [0x09] = 't',        [0x0a] = 'n',
    [0x0b] = 'u',          [0x0c] = 'f',  [0x0d] = 'r',        [0x0e ... 0x1f] = 'u',
    ['"'] = '"',           ['\\'] = '\\', [0x80 ... 0xff] = 1,
};

void esm_buf_json_str(esm_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!esm_buf_reserve(b, len + 2)) return;
    b->data[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* The longest run that needs no escaping (valid UTF-8 included) goes in one copy. */
        size_t run = i;
        for (;;) {
            while (run < len && json_esc[p[run]] == 0)
                run++;
            if (run == len || json_esc[p[run]] != 1) break;
            size_t n = utf8_seq_len(p + run, len - run);
            if (n == 0) break;
            run += n;
        }
        if (run > i) {
            esm_buf_append(b, p + i, run - i);
            i = run;
            if (i == len) break;
        }
        unsigned char c = p[i++];
        unsigned char e = json_esc[c];
        if (e == 1) {
            esm_buf_append(b, "\\ufffd", 6); /* not valid UTF-8 */
        } else if (e == 'u') {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            esm_buf_append(b, esc, sizeof esc);
        } else {
            char esc[2] = {'\\', (char)e};
            esm_buf_append(b, esc, sizeof esc);
        }
    }
    esm_buf_putc(b, '"');
}

void esm_buf_json_cstr(esm_buf *b, const char *s)
{
    if (!s) {
        esm_buf_puts(b, "null");
        return;
    }
    esm_buf_json_str(b, s, strlen(s));
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Two output characters per 12 input bits: half the lookups of a 6-bit table (base64 is a tenth
 * of esmd's CPU on the Kafka path, where every key and value is encoded). Built once. */
static char b64_pairs[4096][2];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_pairs_init(void)
{
    for (unsigned i = 0; i < 4096; i++) {
        b64_pairs[i][0] = b64_alphabet[i >> 6];
        b64_pairs[i][1] = b64_alphabet[i & 63];
    }
}

void esm_buf_base64(esm_buf *b, const void *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    if (!esm_buf_reserve(b, out_len)) return;
    pthread_once(&b64_once, b64_pairs_init);
    const unsigned char *in = data;
    char *out = b->data + b->len;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        memcpy(out, b64_pairs[v >> 12], 2);
        memcpy(out + 2, b64_pairs[v & 4095], 2);
        out += 4;
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    b->len += out_len;
}

const char *esm_buf_cstr(esm_buf *b)
{
    if (!esm_buf_reserve(b, 0)) return "";
    b->data[b->len] = '\0';
    return b->data;
}

long esm_base64_decode(const char *in, size_t len, unsigned char *out)
{
    unsigned acc = 0;
    int bits = 0;
    long n = 0;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=') {
            pad++;
            continue;
        } else {
            return -1;
        }
        if (pad) return -1; /* data after padding */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    if (pad > 2 || (len + 0) % 4 == 1) return -1;
    return n;
}
