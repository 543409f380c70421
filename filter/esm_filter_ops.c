#include "filter/esm_filter_ops.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

bool esm_fops_wildcard_check(const char *p, size_t n, char *why, size_t why_len)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '*' && i + 1 < n && p[i + 1] == '*') {
            snprintf(why, why_len, "Consecutive wildcard characters at pos %zu", i + 1);
            return false;
        }
        if (p[i] == '\\') {
            if (i + 1 >= n || (p[i + 1] != '*' && p[i + 1] != '\\')) {
                snprintf(why, why_len, "Invalid escape character at pos %zu", i + 1);
                return false;
            }
            i++;
        }
    }
    return true;
}

/* Two-pointer match that backtracks only to the last star: linear for typical patterns,
 * O(n*m) at worst, never recursive. */
bool esm_fops_wildcard(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star_p = ++pi;
            star_s = si;
            continue;
        }
        if (pi < pn) {
            char c = p[pi];
            size_t adv = 1;
            if (c == '\\' && pi + 1 < pn) {
                c = p[pi + 1];
                adv = 2;
            }
            if (c == s[si]) {
                pi += adv;
                si++;
                continue;
            }
        }
        if (star_p == (size_t)-1) return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool esm_fops_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return false;
    return true;
}

bool esm_fops_iprefix(const char *s, size_t sn, const char *p, size_t pn)
{
    return sn >= pn && esm_fops_ieq(s, p, pn);
}

bool esm_fops_isuffix(const char *s, size_t sn, const char *p, size_t pn)
{
    return sn >= pn && esm_fops_ieq(s + sn - pn, p, pn);
}

int esm_fops_ip_parse(const char *s, size_t n, uint8_t addr[16])
{
    char buf[64];
    if (n == 0 || n >= sizeof buf || memchr(s, '\0', n)) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) return 4;
    if (inet_pton(AF_INET6, buf, addr) == 1) return 6;
    return 0;
}

int esm_fops_cidr_parse(const char *s, size_t n, uint8_t addr[16], uint8_t *bits)
{
    const char *slash = memchr(s, '/', n);
    if (!slash) return 0;
    int fam = esm_fops_ip_parse(s, (size_t)(slash - s), addr);
    if (!fam) return 0;
    const char *b = slash + 1, *e = s + n;
    if (b == e || e - b > 3) return 0;
    unsigned v = 0;
    for (; b < e; b++) {
        if (*b < '0' || *b > '9') return 0;
        v = v * 10 + (unsigned)(*b - '0');
    }
    if (v > (fam == 4 ? 32u : 128u)) return 0;
    *bits = (uint8_t)v;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = v >= 8 * (i + 1) ? 8 : (v > 8 * i ? v - 8 * i : 0);
        addr[i] &= (uint8_t)(0xFF00u >> keep);
    }
    return fam;
}

bool esm_fops_cidr_contains(int family, const uint8_t net[16], uint8_t bits, int afamily,
                            const uint8_t addr[16])
{
    if (family != afamily) return false;
    unsigned full = bits / 8u, rest = bits % 8u;
    if (memcmp(net, addr, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xFF00u >> rest);
    return (addr[full] & mask) == net[full];
}
