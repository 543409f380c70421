/* The admin API's gate for state-changing requests: one pure decision from the request's
 * method, a few headers and whether the client is on loopback. Every request whose method is
 * not GET or HEAD passes through esm_admin_guard() before it is routed, so a new POST endpoint
 * is covered without doing anything. See docs/operations.md "Securing the admin API". */
#ifndef ESM_ADMIN_GUARD_H
#define ESM_ADMIN_GUARD_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

typedef enum {
    ESM_ADMIN_ALLOW = 0,
    ESM_ADMIN_CROSS_SITE,           /* Origin / Sec-Fetch-Site say a web page sent it */
    ESM_ADMIN_FORM_CONTENT_TYPE,    /* a type a browser sends cross-site without preflight */
    ESM_ADMIN_BODY_NOT_JSON,        /* a body that is not application/json */
    ESM_ADMIN_REMOTE_WITHOUT_TOKEN, /* not loopback, and no admin token is configured */
    ESM_ADMIN_BAD_TOKEN,            /* a token is configured; Authorization does not carry it */
    ESM_ADMIN_VERDICTS
} esm_admin_verdict;

/* Header values are NULL when the header is absent. */
typedef struct {
    const char *method;
    const char *host, *origin, *sec_fetch_site;
    const char *content_type, *content_length, *transfer_encoding;
    const char *authorization;
    bool loopback; /* the client's address is 127.0.0.0/8 or ::1 */
} esm_admin_request;

/* GET and HEAD only read; every other method may change state. */
bool esm_admin_is_read_method(const char *method);
/* token: the configured admin token, NULL or "" when there is none. */
esm_admin_verdict esm_admin_guard(const esm_admin_request *r, const char *token);
/* Why the request was refused and what to do, as a JSON object (a constant); the reason
 * label used in logs and esmd_admin_refused_total. */
const char *esm_admin_verdict_json(esm_admin_verdict v);
const char *esm_admin_verdict_reason(esm_admin_verdict v);
/* True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool esm_admin_addr_is_loopback(const struct sockaddr *sa);
/* Compares in time that depends on the token's length only, never on where they differ. */
bool esm_admin_token_equal(const char *given, size_t given_len, const char *token);

#endif
