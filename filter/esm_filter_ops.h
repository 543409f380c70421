/* String operators of the filter language: wildcard, case-insensitive compare, CIDR. */
#ifndef ESM_FILTER_OPS_H
#define ESM_FILTER_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks a wildcard pattern: `*` is any run, `\*` a literal star, `\\` a backslash; two
 * stars in a row and other escapes are refused. On error writes the reason into why. */
bool esm_fops_wildcard_check(const char *p, size_t n, char *why, size_t why_len);
/* Matches s against a checked wildcard pattern. */
bool esm_fops_wildcard(const char *p, size_t pn, const char *s, size_t sn);
/* ASCII case-insensitive equality and prefix/suffix tests. */
bool esm_fops_ieq(const char *a, const char *b, size_t n);
bool esm_fops_iprefix(const char *s, size_t sn, const char *p, size_t pn);
bool esm_fops_isuffix(const char *s, size_t sn, const char *p, size_t pn);
/* Parses an IPv4/IPv6 address (no prefix) into addr; returns 4, 6, or 0 when it is not one. */
int esm_fops_ip_parse(const char *s, size_t n, uint8_t addr[16]);
/* Parses "addr/bits"; returns the family (4 or 6) or 0. The address is masked to bits. */
int esm_fops_cidr_parse(const char *s, size_t n, uint8_t addr[16], uint8_t *bits);
/* True when addr (of family) lies in net/bits of the same family. */
bool esm_fops_cidr_contains(int family, const uint8_t net[16], uint8_t bits, int afamily,
                            const uint8_t addr[16]);

#endif
