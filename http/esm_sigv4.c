/* SigV4 signing with OpenSSL's EVP digest API: SHA-256 fetched once, HMAC done by hand
 * (RFC 2104) so that a cached signing key is kept as two pre-keyed digest states and a request
 * costs two digest-state copies instead of four key derivations. Strings are built in esm_bufs
 * reused across requests. */
#include "http/esm_sigv4.h"

#include "common/esm_buf.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64
#define KEY_CACHE 8     /* (date, region, service, secret) combinations kept per signer */
#define MAX_PART 64     /* region / service length, as curl */
#define AMZ_DATE_LEN 16 /* YYYYMMDDTHHMMSSZ */

typedef struct {
    bool used;
    char date[9];
    char region[MAX_PART + 1];
    char service[MAX_PART + 1];
    char *secret;
    EVP_MD_CTX *inner, *outer; /* HMAC states keyed with the derived signing key */
} key_entry;

typedef struct {
    const char *name; /* as given (case preserved); compared case-insensitively */
    size_t name_len;
    const char *value; /* untrimmed */
    size_t value_len;
    size_t order; /* position in the input: keeps duplicate names in order */
} hdr;

struct esm_sigv4 {
    EVP_MD *sha256;
    EVP_MD_CTX *md, *in_tmp, *out_tmp;
    key_entry keys[KEY_CACHE];
    unsigned next_victim;
    unsigned long derivations;
    hdr *hdrs;
    size_t cap_hdrs;
    esm_buf creq, sts, signed_hdrs, auth, scratch;
    char date_line[32];
};

static const char HEX[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void free_entry(key_entry *e)
{
    if (e->secret) {
        memset(e->secret, 0, strlen(e->secret));
        free(e->secret);
    }
    EVP_MD_CTX_free(e->inner);
    EVP_MD_CTX_free(e->outer);
    memset(e, 0, sizeof *e);
}

esm_sigv4 *esm_sigv4_create(void)
{
    esm_sigv4 *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    s->md = EVP_MD_CTX_new();
    s->in_tmp = EVP_MD_CTX_new();
    s->out_tmp = EVP_MD_CTX_new();
    esm_buf_init(&s->creq);
    esm_buf_init(&s->sts);
    esm_buf_init(&s->signed_hdrs);
    esm_buf_init(&s->auth);
    esm_buf_init(&s->scratch);
    if (!s->sha256 || !s->md || !s->in_tmp || !s->out_tmp) {
        esm_sigv4_destroy(s);
        return NULL;
    }
    return s;
}

void esm_sigv4_destroy(esm_sigv4 *s)
{
    if (!s) return;
    for (int i = 0; i < KEY_CACHE; i++)
        free_entry(&s->keys[i]);
    EVP_MD_CTX_free(s->md);
    EVP_MD_CTX_free(s->in_tmp);
    EVP_MD_CTX_free(s->out_tmp);
    EVP_MD_free(s->sha256);
    free(s->hdrs);
    esm_buf_free(&s->creq);
    esm_buf_free(&s->sts);
    esm_buf_free(&s->signed_hdrs);
    esm_buf_free(&s->auth);
    esm_buf_free(&s->scratch);
    free(s);
}

unsigned long esm_sigv4_derivations(const esm_sigv4 *s)
{
    return s ? s->derivations : 0;
}

static bool sha256(esm_sigv4 *s, const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    return EVP_DigestInit_ex(s->md, s->sha256, NULL) == 1 &&
           EVP_DigestUpdate(s->md, data, len) == 1 && EVP_DigestFinal_ex(s->md, out, NULL) == 1;
}

/* Keys the inner and outer HMAC states: H(K ^ ipad || ...), H(K ^ opad || ...). */
static bool hmac_key(esm_sigv4 *s, const void *key, size_t key_len, EVP_MD_CTX *inner,
                     EVP_MD_CTX *outer)
{
    unsigned char k[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK];
    if (key_len > SHA256_BLOCK) {
        if (!sha256(s, key, key_len, k)) return false;
    } else {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    bool ok = EVP_DigestInit_ex(inner, s->sha256, NULL) == 1 &&
              EVP_DigestUpdate(inner, pad, sizeof pad) == 1;
    for (int i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(outer, s->sha256, NULL) == 1 &&
         EVP_DigestUpdate(outer, pad, sizeof pad) == 1;
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
    return ok;
}

/* HMAC of msg with pre-keyed states; the states stay reusable. */
static bool hmac_run(esm_sigv4 *s, EVP_MD_CTX *inner, EVP_MD_CTX *outer, const void *msg,
                     size_t len, unsigned char out[SHA256_LEN])
{
    unsigned char ih[SHA256_LEN];
    return EVP_MD_CTX_copy_ex(s->md, inner) == 1 && EVP_DigestUpdate(s->md, msg, len) == 1 &&
           EVP_DigestFinal_ex(s->md, ih, NULL) == 1 && EVP_MD_CTX_copy_ex(s->md, outer) == 1 &&
           EVP_DigestUpdate(s->md, ih, sizeof ih) == 1 && EVP_DigestFinal_ex(s->md, out, NULL) == 1;
}

static bool hmac_once(esm_sigv4 *s, const void *key, size_t key_len, const char *msg,
                      unsigned char out[SHA256_LEN])
{
    return hmac_key(s, key, key_len, s->in_tmp, s->out_tmp) &&
           hmac_run(s, s->in_tmp, s->out_tmp, msg, strlen(msg), out);
}

/* The cached entry for these inputs, deriving the key on a miss:
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"). */
static key_entry *signing_key(esm_sigv4 *s, const char *date, const char *region,
                              const char *service, const char *secret)
{
    for (int i = 0; i < KEY_CACHE; i++) {
        key_entry *e = &s->keys[i];
        if (e->used && strcmp(e->date, date) == 0 && strcmp(e->region, region) == 0 &&
            strcmp(e->service, service) == 0 && strcmp(e->secret, secret) == 0)
            return e;
    }
    key_entry *e = NULL;
    for (int i = 0; i < KEY_CACHE && !e; i++)
        if (!s->keys[i].used) e = &s->keys[i];
    if (!e) {
        e = &s->keys[s->next_victim];
        s->next_victim = (s->next_victim + 1) % KEY_CACHE;
    }
    free_entry(e);
    size_t sl = strlen(secret);
    char *k0 = malloc(sl + 5);
    unsigned char a[SHA256_LEN], b[SHA256_LEN];
    e->secret = strdup(secret);
    e->inner = EVP_MD_CTX_new();
    e->outer = EVP_MD_CTX_new();
    bool ok = k0 && e->secret && e->inner && e->outer;
    if (ok) {
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret, sl + 1);
        ok = hmac_once(s, k0, sl + 4, date, a) && hmac_once(s, a, sizeof a, region, b) &&
             hmac_once(s, b, sizeof b, service, a) &&
             hmac_once(s, a, sizeof a, "aws4_request", b) &&
             hmac_key(s, b, sizeof b, e->inner, e->outer);
        memset(k0, 0, sl + 4);
    }
    free(k0);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    if (!ok) {
        free_entry(e);
        return NULL;
    }
    snprintf(e->date, sizeof e->date, "%s", date);
    snprintf(e->region, sizeof e->region, "%s", region);
    snprintf(e->service, sizeof e->service, "%s", service);
    e->used = true;
    s->derivations++;
    return e;
}

/* "aws:amz:REGION:SERVICE" -> region, service. */
static bool parse_scope(const char *scope, char *region, char *service)
{
    if (!scope || strncasecmp(scope, "aws:amz:", 8) != 0) return false;
    const char *r = scope + 8, *colon = strchr(r, ':');
    if (!colon) return false;
    size_t rl = (size_t)(colon - r), sl = strlen(colon + 1);
    if (rl == 0 || rl > MAX_PART || sl == 0 || sl > MAX_PART || strchr(colon + 1, ':'))
        return false;
    memcpy(region, r, rl);
    region[rl] = '\0';
    memcpy(service, colon + 1, sl + 1);
    return true;
}

typedef struct {
    const char *host; /* host[:port] as it goes in the Host header */
    size_t host_len;
    bool default_port; /* the port is the scheme's default (or absent): no ":port" */
    const char *path;  /* up to '?' or '#' */
    size_t path_len;
    const char *query; /* after '?', up to '#' */
    size_t query_len;
} url_parts;

static bool parse_url(const char *url, url_parts *u)
{
    memset(u, 0, sizeof *u);
    const char *sep = strstr(url, "://");
    if (!sep) return false;
    size_t scheme_len = (size_t)(sep - url);
    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (a[i] == '@') at = a + i;
    if (at) {
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    /* the port: after the last ':' that is not inside an IPv6 literal */
    const char *hend = a + alen, *port = NULL;
    for (const char *p = hend; p > a; p--) {
        if (p[-1] == ']') break;
        if (p[-1] == ':') {
            port = p;
            break;
        }
    }
    size_t hl = port ? (size_t)(port - 1 - a) : alen;
    if (hl == 0) return false;
    u->host = a;
    u->host_len = alen;
    if (port) {
        long pn = strtol(port, NULL, 10);
        bool http = scheme_len == 4 && strncasecmp(url, "http", 4) == 0;
        bool https = scheme_len == 5 && strncasecmp(url, "https", 5) == 0;
        if (port == hend || (http && pn == 80) || (https && pn == 443)) u->host_len = hl;
    }
    const char *rest = a + alen;
    u->path = rest;
    u->path_len = strcspn(rest, "?#");
    if (rest[u->path_len] == '?') {
        u->query = rest + u->path_len + 1;
        u->query_len = strcspn(u->query, "#");
    }
    return true;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static void put_encoded(esm_buf *b, const char *p, size_t n)
{
    size_t run = 0; /* bytes before i that need no encoding, appended as one block */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (unreserved(c)) {
            run++;
            continue;
        }
        esm_buf_append(b, p + i - run, run);
        run = 0;
        char e[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
        esm_buf_append(b, e, 3);
    }
    esm_buf_append(b, p + n - run, run);
}

/* Canonical URI as botocore builds it for non-S3 services: RFC 3986 dot segments removed, empty
 * segments dropped, then every byte outside [A-Za-z0-9-_.~/] percent-encoded (so an already
 * encoded "%3A" becomes "%253A", AWS's "encode twice"). */
static bool put_canonical_path(esm_buf *b, const char *path, size_t len)
{
    size_t start = b->len;
    /* segment stack as offsets into b: each kept segment is "/" + encoded bytes */
    size_t seg_start[128];
    size_t nseg = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t sl = j - i;
        if (sl == 0) break;
        if (sl == 1 && path[i] == '.') {
            /* dropped */
        } else if (sl == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg > 0) b->len = seg_start[--nseg];
        } else {
            if (nseg == sizeof seg_start / sizeof seg_start[0]) return false;
            seg_start[nseg++] = b->len;
            esm_buf_putc(b, '/');
            put_encoded(b, path + i, sl);
        }
        i = j;
    }
    if (b->len == start)
        esm_buf_putc(b, '/');
    else if (len > 0 && path[len - 1] == '/')
        esm_buf_putc(b, '/');
    return true;
}

typedef struct {
    const char *k, *v;
    size_t kl, vl;
} qpair;

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static int cmp_qpair(const void *x, const void *y)
{
    const qpair *a = x, *b = y;
    int c = cmp_bytes(a->k, a->kl, b->k, b->kl);
    return c ? c : cmp_bytes(a->v, a->vl, b->v, b->vl);
}

/* Canonical query as botocore builds it from a URL: "k=v" pairs split on '&', sorted by key
 * then value, taken as they are (the URL carries them already encoded). */
static bool put_canonical_query(esm_sigv4 *s, esm_buf *b, const char *q, size_t len)
{
    if (!q || len == 0) return true;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += q[i] == '&';
    s->scratch.len = 0;
    if (!esm_buf_reserve(&s->scratch, n * sizeof(qpair))) return false;
    qpair *p = (qpair *)(void *)s->scratch.data;
    size_t k = 0, i = 0;
    while (k < n) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        p[k].k = q + i;
        p[k].kl = eq ? (size_t)(eq - (q + i)) : j - i;
        p[k].v = eq ? eq + 1 : "";
        p[k].vl = eq ? (size_t)(q + j - (eq + 1)) : 0;
        k++;
        i = j + 1;
    }
    if (n > 1) qsort(p, n, sizeof *p, cmp_qpair);
    for (k = 0; k < n; k++) {
        if (k) esm_buf_putc(b, '&');
        esm_buf_append(b, p[k].k, p[k].kl);
        esm_buf_putc(b, '=');
        esm_buf_append(b, p[k].v, p[k].vl);
    }
    return true;
}

static int cmp_hdr(const void *x, const void *y)
{
    const hdr *a = x, *b = y;
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    for (size_t i = 0; i < n; i++) {
        int ca = (unsigned char)a->name[i], cb = (unsigned char)b->name[i];
        if (ca >= 'A' && ca <= 'Z') ca += 32;
        if (cb >= 'A' && cb <= 'Z') cb += 32;
        if (ca != cb) return ca - cb;
    }
    if (a->name_len != b->name_len) return a->name_len < b->name_len ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order ? 1 : 0;
}

static bool name_is(const hdr *h, const char *name)
{
    return strlen(name) == h->name_len && strncasecmp(h->name, name, h->name_len) == 0;
}

static bool add_hdr(esm_sigv4 *s, size_t *n, const char *name, size_t nl, const char *value,
                    size_t vl)
{
    if (*n == s->cap_hdrs) {
        size_t cap = s->cap_hdrs ? 2 * s->cap_hdrs : 16;
        hdr *nh = realloc(s->hdrs, cap * sizeof *nh);
        if (!nh) return false;
        s->hdrs = nh;
        s->cap_hdrs = cap;
    }
    s->hdrs[*n] = (hdr){name, nl, value, vl, *n};
    (*n)++;
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The header value with leading/trailing blanks removed and inner runs of blanks as one space
 * (AWS's "Trimall"; curl does the same). */
static void put_trimmed(esm_buf *b, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n && is_blank(v[i]))
        i++;
    while (n > i && (is_blank(v[n - 1]) || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    while (i < n) {
        size_t j = i;
        while (j < n && !is_blank(v[j]))
            j++;
        esm_buf_append(b, v + i, j - i);
        if (j == n) break;
        while (is_blank(v[j]))
            j++;
        esm_buf_putc(b, ' ');
        i = j;
    }
}

static void put_lower(esm_buf *b, const char *p, size_t n)
{
    if (!esm_buf_reserve(b, n)) return;
    char *d = b->data + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        d[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    b->len += n;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

static void fmt_amz_date(time_t t, char out[AMZ_DATE_LEN + 1])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    int y = tm.tm_year + 1900;
    put2(out, y / 100);
    put2(out + 2, y);
    put2(out + 4, tm.tm_mon + 1);
    put2(out + 6, tm.tm_mday);
    out[8] = 'T';
    put2(out + 9, tm.tm_hour);
    put2(out + 11, tm.tm_min);
    put2(out + 13, tm.tm_sec);
    out[15] = 'Z';
    out[16] = '\0';
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(out->error, sizeof out->error, __VA_ARGS__);                                      \
        return false;                                                                              \
    } while (0)

bool esm_sigv4_sign(esm_sigv4 *s, const esm_sigv4_input *in, esm_sigv4_output *out)
{
    out->authorization = NULL;
    out->date_header = NULL;
    out->error[0] = '\0';
    char region[MAX_PART + 1], service[MAX_PART + 1];
    if (!parse_scope(in->scope, region, service))
        FAIL("bad SigV4 scope \"%s\" (want aws:amz:REGION:SERVICE)", in->scope ? in->scope : "");
    url_parts u;
    if (!in->url || !parse_url(in->url, &u)) FAIL("cannot parse the URL to sign");
    const char *key_id = in->access_key_id ? in->access_key_id : "";
    const char *secret = in->secret_access_key ? in->secret_access_key : "";

    /* The headers that will be sent, as curl sends them (see the header comment). */
    size_t n = 0;
    bool have_host = false;
    const char *date_value = NULL;
    size_t date_len = 0;
    for (const struct curl_slist *l = in->headers; l; l = l->next) {
        const char *line = l->data;
        const char *sep = strchr(line, ':');
        if (!sep) sep = strchr(line, ';');
        if (!sep || sep == line) continue;
        const char *v = sep + 1;
        size_t vl = strlen(v);
        size_t k = 0;
        while (k < vl && (is_blank(v[k]) || v[k] == '\r' || v[k] == '\n'))
            k++;
        if (*sep == ':' && k == vl) continue; /* "Name:" removes a header curl would add */
        if (*sep == ';' && k != vl) continue; /* "Name; junk" is not curl's empty header */
        if (!add_hdr(s, &n, line, (size_t)(sep - line), v, vl)) FAIL("out of memory");
        hdr *h = &s->hdrs[n - 1];
        if (name_is(h, "authorization")) return true; /* the caller signs: nothing to add */
        if (name_is(h, "host")) have_host = true;
        if (name_is(h, "x-amz-date")) {
            date_value = v + k;
            date_len = vl - k;
            while (date_len > 0 &&
                   (is_blank(date_value[date_len - 1]) || date_value[date_len - 1] == '\r' ||
                    date_value[date_len - 1] == '\n'))
                date_len--;
        }
    }
    char amz_date[AMZ_DATE_LEN + 1];
    if (date_value) {
        if (date_len != AMZ_DATE_LEN) FAIL("X-Amz-Date is not YYYYMMDDTHHMMSSZ");
        memcpy(amz_date, date_value, AMZ_DATE_LEN);
        amz_date[AMZ_DATE_LEN] = '\0';
    } else {
        fmt_amz_date(in->now, amz_date);
        memcpy(s->date_line, "X-Amz-Date: ", 12);
        memcpy(s->date_line + 12, amz_date, AMZ_DATE_LEN + 1);
        if (!add_hdr(s, &n, "x-amz-date", 10, amz_date, AMZ_DATE_LEN)) FAIL("out of memory");
    }
    if (!have_host && !add_hdr(s, &n, "host", 4, u.host, u.host_len)) FAIL("out of memory");
    qsort(s->hdrs, n, sizeof *s->hdrs, cmp_hdr);

    unsigned char digest[SHA256_LEN];
    char hex[2 * SHA256_LEN + 1];
    if (!sha256(s, in->body ? in->body : "", in->body ? in->body_len : 0, digest))
        FAIL("SHA-256 failed");
    to_hex(digest, SHA256_LEN, hex);

    /* Canonical request. */
    esm_buf *c = &s->creq, *sh = &s->signed_hdrs;
    c->len = 0;
    sh->len = 0;
    esm_buf_puts(c, in->method ? in->method : "POST");
    esm_buf_putc(c, '\n');
    if (!put_canonical_path(c, u.path, u.path_len)) FAIL("URL path too deep to sign");
    esm_buf_putc(c, '\n');
    if (!put_canonical_query(s, c, u.query, u.query_len)) FAIL("out of memory");
    esm_buf_putc(c, '\n');
    for (size_t i = 0; i < n; i++) {
        const hdr *h = &s->hdrs[i];
        bool same_as_prev = i > 0 && h[-1].name_len == h->name_len &&
                            strncasecmp(h[-1].name, h->name, h->name_len) == 0;
        if (same_as_prev) {
            /* a repeated header: one line, values joined by ',' (AWS spec) */
            c->len--; /* the '\n' */
            esm_buf_putc(c, ',');
        } else {
            if (sh->len) esm_buf_putc(sh, ';');
            put_lower(sh, h->name, h->name_len);
            put_lower(c, h->name, h->name_len);
            esm_buf_putc(c, ':');
        }
        put_trimmed(c, h->value, h->value_len);
        esm_buf_putc(c, '\n');
    }
    esm_buf_putc(c, '\n');
    esm_buf_append(c, sh->data, sh->len);
    esm_buf_putc(c, '\n');
    esm_buf_append(c, hex, 2 * SHA256_LEN);
    if (c->failed || sh->failed) FAIL("out of memory");

    /* String to sign. */
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    if (!sha256(s, c->data, c->len, digest)) FAIL("SHA-256 failed");
    to_hex(digest, SHA256_LEN, hex);
    esm_buf *t = &s->sts;
    t->len = 0;
    esm_buf_puts(t, "AWS4-HMAC-SHA256\n");
    esm_buf_append(t, amz_date, AMZ_DATE_LEN);
    esm_buf_putc(t, '\n');
    size_t scope_at = t->len;
    esm_buf_puts(t, date);
    esm_buf_putc(t, '/');
    esm_buf_puts(t, region);
    esm_buf_putc(t, '/');
    esm_buf_puts(t, service);
    esm_buf_puts(t, "/aws4_request");
    size_t scope_len = t->len - scope_at;
    esm_buf_putc(t, '\n');
    esm_buf_append(t, hex, 2 * SHA256_LEN);
    if (t->failed) FAIL("out of memory");

    key_entry *e = signing_key(s, date, region, service, secret);
    if (!e) FAIL("deriving the signing key failed");
    if (!hmac_run(s, e->inner, e->outer, t->data, t->len, digest)) FAIL("HMAC failed");
    to_hex(digest, SHA256_LEN, hex);

    esm_buf *a = &s->auth;
    a->len = 0;
    esm_buf_puts(a, "Authorization: AWS4-HMAC-SHA256 Credential=");
    esm_buf_puts(a, key_id);
    esm_buf_putc(a, '/');
    esm_buf_append(a, t->data + scope_at, scope_len);
    esm_buf_puts(a, ", SignedHeaders=");
    esm_buf_append(a, sh->data, sh->len);
    esm_buf_puts(a, ", Signature=");
    esm_buf_append(a, hex, 2 * SHA256_LEN);
    out->authorization = esm_buf_cstr(a);
    if (a->failed || !out->authorization) FAIL("out of memory");
    out->date_header = date_value ? NULL : s->date_line;
    return true;
}
