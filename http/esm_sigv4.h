/* AWS Signature Version 4 for the requests esmd sends (SQS, Kinesis, SNS, Lambda Invoke).
 * Replaces libcurl's CURLOPT_AWS_SIGV4, which re-derives the signing key and fetches the
 * OpenSSL algorithms on every request (bench finding S1). A signer keeps the algorithms fetched
 * once and the derived keys cached per (date, region, service, secret); it is not thread-safe:
 * one per event loop (esm_http owns one).
 *
 * What is signed: host (from the URL, ":port" unless the scheme's default, or the caller's Host
 * header), x-amz-date, and every header the caller passes, like libcurl does, except the lines
 * that ask curl to REMOVE a header ("Expect:" with no value): those are never sent, and
 * libcurl 7.88 signing them is curl issue #11664 (AWS rejects some such requests). "Name;"
 * (curl's empty-valued header) is signed as "name:". Canonical URI and query follow the AWS
 * spec as botocore does (path segments URI-encoded, dot segments removed, query pairs sorted);
 * for the paths esmd uses ("/", "/2015-03-31/functions/NAME/invocations" with NAME in
 * [A-Za-z0-9_.-], no query or a sorted one) that is byte-for-byte what libcurl 7.88 signs. */
#ifndef ESM_SIGV4_H
#define ESM_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct curl_slist;
typedef struct esm_sigv4 esm_sigv4;

typedef struct {
    const char *method;               /* "POST" when NULL */
    const char *url;                  /* scheme://host[:port]/path[?query] */
    const struct curl_slist *headers; /* "Name: value" lines, as given to curl */
    const char *body;                 /* NULL = empty */
    size_t body_len;
    const char *scope; /* "aws:amz:REGION:SERVICE" (curl's CURLOPT_AWS_SIGV4 syntax) */
    const char *access_key_id;
    const char *secret_access_key;
    time_t now; /* the signing time (UTC); ignored when the headers carry X-Amz-Date */
} esm_sigv4_input;

typedef struct {
    /* "Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." or
     * NULL when the caller's headers already carry an Authorization (nothing to do, as curl). */
    const char *authorization;
    /* "X-Amz-Date: YYYYMMDDTHHMMSSZ", NULL when the caller's headers carry X-Amz-Date. */
    const char *date_header;
    /* Both stay valid until the next esm_sigv4_sign or esm_sigv4_destroy. */
    char error[128]; /* when esm_sigv4_sign returns false */
} esm_sigv4_output;

esm_sigv4 *esm_sigv4_create(void);
void esm_sigv4_destroy(esm_sigv4 *s);
/* Signs a request; false (out->error says why) on bad input or an OpenSSL failure. */
bool esm_sigv4_sign(esm_sigv4 *s, const esm_sigv4_input *in, esm_sigv4_output *out);
/* How many signing keys were derived so far (the cache's misses; for tests). */
unsigned long esm_sigv4_derivations(const esm_sigv4 *s);

#endif
