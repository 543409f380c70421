#include "filter/esm_filter_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    esm_fj_tape *t;
    const unsigned char *p, *end;
    int depth;
} parser;

void esm_fj_init(esm_fj_tape *t)
{
    memset(t, 0, sizeof *t);
}

void esm_fj_free(esm_fj_tape *t)
{
    free(t->toks);
    free(t->dec);
    memset(t, 0, sizeof *t);
}

/* Appends a token; grows the array (kept for later records) when full. */
static long push(parser *ps, uint8_t type, const char *s, size_t len)
{
    esm_fj_tape *t = ps->t;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        esm_fj_tok *nt = realloc(t->toks, cap * sizeof *nt);
        if (!nt) return -1;
        t->toks = nt;
        t->cap = cap;
    }
    t->toks[t->n] = (esm_fj_tok){.s = s, .len = (uint32_t)len, .type = type};
    return (long)t->n++;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Parses a string starting at the opening quote. Strings without escapes point into the
 * input; others are decoded into t->dec (never longer than their raw form). */
static bool parse_string(parser *ps)
{
    const unsigned char *start = ++ps->p;
    const unsigned char *q = start;
    bool esc = false;
    while (q < ps->end && *q != '"') {
        if (*q < 0x20) return false;
        if (*q == '\\') {
            esc = true;
            q++;
            if (q >= ps->end) return false;
        }
        q++;
    }
    if (q >= ps->end) return false;
    if (!esc) {
        ps->p = q + 1;
        return push(ps, ESM_FJ_STR, (const char *)start, (size_t)(q - start)) >= 0;
    }
    esm_fj_tape *t = ps->t;
    char *o0 = t->dec + t->dec_len, *o = o0;
    const unsigned char *r = start;
    while (r < q) {
        if (*r != '\\') {
            *o++ = (char)*r++;
            continue;
        }
        r++;
        switch (*r++) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            if (q - r < 4) return false;
            int cp = hex4(r);
            if (cp < 0) return false;
            r += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && q - r >= 6 && r[0] == '\\' && r[1] == 'u') {
                int lo = hex4(r + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* lone surrogate */
            o = put_utf8(o, (unsigned)cp);
            break;
        }
        default:
            return false;
        }
    }
    t->dec_len += (size_t)(o - o0);
    ps->p = q + 1;
    return push(ps, ESM_FJ_STR, o0, (size_t)(o - o0)) >= 0;
}

static bool parse_number(parser *ps)
{
    const unsigned char *s = ps->p, *p = s, *e = ps->end;
    if (p < e && *p == '-') p++;
    if (p >= e) return false;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return false;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    ps->p = p;
    return push(ps, ESM_FJ_NUM, (const char *)s, (size_t)(p - s)) >= 0;
}

static bool parse_lit(parser *ps, const char *word, uint8_t type)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    const char *s = (const char *)ps->p;
    ps->p += n;
    return push(ps, type, s, n) >= 0;
}

static bool parse_value(parser *ps);

static bool parse_container(parser *ps, bool obj)
{
    if (++ps->depth > ESM_FJ_MAX_DEPTH) return false;
    long at = push(ps, obj ? ESM_FJ_OBJ : ESM_FJ_ARR, (const char *)ps->p, 0);
    if (at < 0) return false;
    ps->p++;
    skip_ws(ps);
    char close = obj ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            if (obj) {
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != '"' || !parse_string(ps)) return false;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') return false;
                ps->p++;
            }
            if (!parse_value(ps)) return false;
            skip_ws(ps);
            if (ps->p >= ps->end) return false;
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p != close) return false;
            ps->p++;
            break;
        }
    }
    ps->t->toks[at].len = (uint32_t)ps->t->n;
    ps->depth--;
    return true;
}

static bool parse_value(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return false;
    switch (*ps->p) {
    case '{':
        return parse_container(ps, true);
    case '[':
        return parse_container(ps, false);
    case '"':
        return parse_string(ps);
    case 't':
        return parse_lit(ps, "true", ESM_FJ_TRUE);
    case 'f':
        return parse_lit(ps, "false", ESM_FJ_FALSE);
    case 'n':
        return parse_lit(ps, "null", ESM_FJ_NULL);
    default:
        return parse_number(ps);
    }
}

bool esm_fj_parse(esm_fj_tape *t, const char *in, size_t len)
{
    t->n = 0;
    t->dec_len = 0;
    if (len >= UINT32_MAX) return false;
    /* Decoded strings plus any number's text fit in len + 1 bytes. */
    if (t->dec_cap < len + 1) {
        size_t cap = t->dec_cap ? t->dec_cap : 256;
        while (cap < len + 1)
            cap *= 2;
        char *d = realloc(t->dec, cap);
        if (!d) return false;
        t->dec = d;
        t->dec_cap = cap;
    }
    parser ps = {
        .t = t, .p = (const unsigned char *)in, .end = (const unsigned char *)in + len, .depth = 0};
    if (!parse_value(&ps)) return false;
    skip_ws(&ps);
    return ps.p == ps.end;
}

double esm_fj_number(esm_fj_tape *t, size_t i)
{
    const esm_fj_tok *k = &t->toks[i];
    /* The spare room after the decoded strings always holds the number's text. */
    char *buf = t->dec + t->dec_len;
    memcpy(buf, k->s, k->len);
    buf[k->len] = '\0';
    return strtod(buf, NULL);
}

double esm_fj_number_text(const char *s, size_t len)
{
    char buf[256];
    if (len >= sizeof buf) return NAN;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return strtod(buf, NULL);
}

bool esm_fj_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if ((c & 0xE0) == 0xC0)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if ((size_t)(e - p) <= n) return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        p += n + 1;
    }
    return true;
}
