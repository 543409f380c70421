/* libFuzzer target for the admin API's gate (engine/esm_admin_guard.c). The input is split at
 * '\n' into method, Host, Origin, Sec-Fetch-Site, Content-Type, Content-Length,
 * Transfer-Encoding, Authorization and the configured token; a field that starts with '~' is
 * absent (NULL). Byte 0's low bit says whether the client is on loopback. Invariants:
 *  - GET and HEAD are always allowed; any other verdict is a known one with a JSON message;
 *  - an allowed state-changing request has a same-origin Origin (or none), no
 *    Sec-Fetch-Site but same-origin/none, and a body only with a JSON content type;
 *  - with a token configured, an allowed state-changing request's Authorization holds it;
 *    without one, it comes from loopback. */
// FUZZ_SOURCES: engine/esm_admin_guard.c
#include "engine/esm_admin_guard.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 9

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

/* The media type of a Content-Type value is `want` (case-insensitive, parameters ignored). */
static bool media_is(const char *ct, const char *want)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0) return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    bool loopback = data[0] & 1;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    const char *f[NFIELDS] = {0};
    char *p = text;
    for (int i = 0; i < NFIELDS; i++) {
        char *nl = p ? strchr(p, '\n') : NULL;
        if (nl) *nl = '\0';
        f[i] = p && p[0] != '~' ? p : NULL;
        p = nl ? nl + 1 : NULL;
    }
    const char *method = f[0] ? f[0] : "POST";
    esm_admin_request r = {.method = method,
                           .host = f[1],
                           .origin = f[2],
                           .sec_fetch_site = f[3],
                           .content_type = f[4],
                           .content_length = f[5],
                           .transfer_encoding = f[6],
                           .authorization = f[7],
                           .loopback = loopback};
    const char *token = f[8];
    esm_admin_verdict v = esm_admin_guard(&r, token);
    check((unsigned)v < ESM_ADMIN_VERDICTS, "known verdict");
    check(esm_admin_verdict_json(v)[0] == '{', "JSON message");
    check(esm_admin_verdict_reason(v) != NULL, "reason");
    if (esm_admin_is_read_method(method)) check(v == ESM_ADMIN_ALLOW, "reads are open");
    if (v == ESM_ADMIN_ALLOW && !esm_admin_is_read_method(method)) {
        if (r.origin)
            check(r.host && strncasecmp(r.origin, "http://", 7) == 0 &&
                      strcasecmp(r.origin + 7, r.host) == 0,
                  "allowed Origin is the admin origin");
        if (r.sec_fetch_site)
            check(!strcasecmp(r.sec_fetch_site, "same-origin") ||
                      !strcasecmp(r.sec_fetch_site, "none"),
                  "allowed Sec-Fetch-Site");
        if (r.content_type)
            check(!media_is(r.content_type, "application/x-www-form-urlencoded") &&
                      !media_is(r.content_type, "multipart/form-data") &&
                      !media_is(r.content_type, "text/plain"),
                  "no form type allowed");
        if (r.transfer_encoding)
            check(r.content_type && media_is(r.content_type, "application/json"),
                  "a body needs JSON");
        if (token && token[0])
            check(r.authorization && strstr(r.authorization, token), "token present");
        else
            check(loopback, "without a token, only loopback");
    }
    free(text);
    return 0;
}
