/* Text form of esm_policy_state for the checkpoint store:
 *   "p1 n=<n> lo=<lo> a=<attempts> i=<invokes> b=<backoffs> e=<ends[0]>,<ends[1]>,..."
 * Version-tagged so a later layout can still read old rows. */
#include "policy/esm_policy.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int esm_policy_state_format(const esm_policy_state *st, char *out, size_t cap)
{
    if (!st || !out || st->depth > ESM_POLICY_MAX_DEPTH) return -1;
    size_t len = 0;
    int w = snprintf(out, cap, "p1 n=%zu lo=%zu a=%u i=%u b=%u e=", st->n, st->lo, st->attempts,
                     st->invokes, st->backoffs);
    if (w < 0 || (size_t)w >= cap) return -1;
    len = (size_t)w;
    for (size_t i = 0; i < st->depth; i++) {
        w = snprintf(out + len, cap - len, "%s%zu", i ? "," : "", st->ends[i]);
        if (w < 0 || (size_t)w >= cap - len) return -1;
        len += (size_t)w;
    }
    return len > INT_MAX ? -1 : (int)len;
}

/* Reads "<key>=<unsigned>" at *p; advances past it and one optional space. */
static bool read_field(const char **p, const char *key, uintmax_t max, uintmax_t *v)
{
    size_t kl = strlen(key);
    if (strncmp(*p, key, kl) != 0 || (*p)[kl] != '=') return false;
    const char *s = *p + kl + 1;
    if (*s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    uintmax_t x = strtoumax(s, &end, 10);
    if (errno || x > max) return false;
    *v = x;
    *p = end;
    if (**p == ' ') (*p)++;
    return true;
}

int esm_policy_state_parse(esm_policy_state *st, const char *text)
{
    if (!st || !text || strncmp(text, "p1 ", 3) != 0) return -1;
    const char *p = text + 3;
    esm_policy_state s;
    memset(&s, 0, sizeof s);
    uintmax_t v;
    if (!read_field(&p, "n", SIZE_MAX, &v)) return -1;
    s.n = (size_t)v;
    if (!read_field(&p, "lo", SIZE_MAX, &v)) return -1;
    s.lo = (size_t)v;
    if (!read_field(&p, "a", UINT_MAX, &v)) return -1;
    s.attempts = (unsigned)v;
    if (!read_field(&p, "i", UINT_MAX, &v)) return -1;
    s.invokes = (unsigned)v;
    if (!read_field(&p, "b", UINT_MAX, &v)) return -1;
    s.backoffs = (unsigned)v;
    if (strncmp(p, "e=", 2) != 0) return -1;
    p += 2;
    while (*p) {
        if (s.depth == ESM_POLICY_MAX_DEPTH || *p < '0' || *p > '9') return -1;
        char *end;
        errno = 0;
        uintmax_t x = strtoumax(p, &end, 10);
        if (errno || x > SIZE_MAX) return -1;
        s.ends[s.depth++] = (size_t)x;
        p = end;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            return -1;
    }
    /* Same invariants esm_policy_decide checks. */
    if (s.depth == 0 ? s.lo != s.n : (s.ends[0] != s.n || s.lo >= s.ends[s.depth - 1])) return -1;
    for (size_t i = 1; i < s.depth; i++)
        if (s.ends[i] >= s.ends[i - 1]) return -1;
    *st = s;
    return 0;
}
