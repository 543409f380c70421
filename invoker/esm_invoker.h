/* Invoking a function synchronously over one of the two protocols, on the libev loop.
 *
 * Protocol "lambda" (the Lambda Invoke API: AWS, Lambda RIE, LocalStack, serverless-offline):
 *   POST <url> (the full .../2015-03-31/functions/NAME/invocations URL) with
 *   X-Amz-Invocation-Type: RequestResponse, signed with SigV4 (service "lambda") when
 *   credentials are given. Plain POST of the event plus the configured headers for protocol
 *   "http" (OpenFaaS, Knative, Fission, Nuclio, any webhook).
 *
 * Classification (docs/design.md "Invocation outcomes" has the table and the reasons):
 *                                   lambda                      http
 *   2xx + X-Amz-Function-Error      FUNCTION_ERROR (the value)  FUNCTION_ERROR (the value)
 *   2xx                             SUCCESS                     SUCCESS (body may carry RBIF)
 *   429                             THROTTLE (Retry-After)      THROTTLE (Retry-After)
 *   503                             ERROR                       THROTTLE
 *   401, 403, 404, 405, 407         ERROR, misconfigured        ERROR, misconfigured
 *   any other status (3xx-5xx)      ERROR                       FUNCTION_ERROR "Unhandled"
 *   no answer within the timeout    FUNCTION_ERROR "Unhandled"  FUNCTION_ERROR "Unhandled"
 *     after the request was sent    (a function timeout, as AWS counts it)
 *   connect / DNS / TLS / reset,    ERROR                       ERROR
 *     a timeout before sending
 *   response over 6 MB              FUNCTION_ERROR "Unhandled"  FUNCTION_ERROR "Unhandled"
 * The lambda protocol waits timeout_seconds + ESM_INVOKE_LAMBDA_MARGIN_MS so that a host which
 * reports the timeout itself (200 + Unhandled) is heard; the http protocol waits
 * timeout_seconds. "misconfigured" means esmd's own settings (credentials, URL, method, proxy)
 * are wrong, not the records: retried with backoff, never counted, and shown in /status. */
#ifndef ESM_INVOKER_H
#define ESM_INVOKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/esm_config.h"
#include "http/esm_http.h"

struct ev_loop;

#define ESM_INVOKE_MAX_PAYLOAD ((size_t)6291456) /* 6 MB: request and response */
/* The invoker's one limit check, shared with the batch builders and the lane: an event of len
 * bytes (exactly the body sent; neither protocol adds to it) may be invoked. */
static inline bool esm_invoke_payload_fits(size_t len)
{
    return len <= ESM_INVOKE_MAX_PAYLOAD;
}
#define ESM_INVOKE_LAMBDA_MARGIN_MS                                                                \
    2000L /* lambda protocol: wait this much past the                                              \
             function timeout for the host's answer */

typedef enum {
    ESM_INVOKE_SUCCESS,
    ESM_INVOKE_FUNCTION_ERROR,
    ESM_INVOKE_THROTTLE,
    ESM_INVOKE_ERROR
} esm_invoke_class;

typedef struct {
    esm_invoke_class cls;
    long status;               /* HTTP status (0 if none) */
    char function_error[32];   /* "Unhandled" / "Handled"; http protocol: "Unhandled" */
    char executed_version[64]; /* X-Amz-Executed-Version, default "$LATEST" */
    char request_id[64];       /* X-Amzn-RequestId, else a generated UUID */
    int64_t retry_after_ms;    /* from Retry-After on a throttle, -1 when absent */
    const char *body;          /* valid during the callback; never NULL */
    size_t body_len;
    double latency_ms;
    char reason[256];   /* why it is not a success: "HTTP 500", "timeout after 30000 ms", ... */
    bool misconfigured; /* ERROR because esmd's function settings are wrong (401/403/404/...) */
} esm_invoke_result;

typedef void (*esm_invoke_cb)(const esm_invoke_result *r, void *arg);

typedef struct {
    const char *region;
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL when none */
} esm_aws_credentials;

typedef struct esm_invoker esm_invoker;
typedef struct esm_invocation esm_invocation;

/* fn and creds are copied. creds NULL (or without an access key) = unsigned requests. */
esm_invoker *esm_invoker_create(struct ev_loop *loop, esm_http *http, const esm_function_config *fn,
                                const esm_aws_credentials *creds);
/* Cancels every queued and in-flight call without calling back. Safe from inside a callback. */
void esm_invoker_destroy(esm_invoker *inv);
/* payload must stay valid until the callback. More than max_concurrency calls queue in FIFO
 * order. Payloads over ESM_INVOKE_MAX_PAYLOAD are refused: returns NULL and calls nothing.
 * The callback is never called from inside this function. */
esm_invocation *esm_invoker_invoke(esm_invoker *inv, const char *payload, size_t len,
                                   esm_invoke_cb cb, void *arg);
/* No callback after this. The handle is invalid after its callback returned. */
void esm_invoker_cancel(esm_invocation *call);
size_t esm_invoker_in_flight(const esm_invoker *inv);
size_t esm_invoker_queued(const esm_invoker *inv);

/* What the wire showed, for the pure classification below. */
typedef struct {
    esm_protocol protocol;
    long status;                /* 0 = no response */
    const char *function_error; /* X-Amz-Function-Error header or NULL */
    int curl_code;              /* 0 = exchange completed */
    bool timed_out;
    bool request_sent;           /* the request went out: a timeout is the function's */
    bool body_truncated;         /* the response exceeded ESM_INVOKE_MAX_PAYLOAD */
    long timeout_ms;             /* the timeout that applied, for the reason text */
    const char *transport_error; /* curl's error text, may be NULL */
} esm_invoke_wire;

/* Sets out->cls, out->misconfigured, out->function_error and out->reason (empty on success)
 * from the wire facts. Pure: no I/O, no clock. */
void esm_invoke_classify(const esm_invoke_wire *w, esm_invoke_result *out);
/* Parses a Retry-After value in seconds ("1", "2.5"); -1 when absent or not a number
 * (HTTP-dates are not honoured). */
int64_t esm_invoke_parse_retry_after(const char *value);
const char *esm_invoke_class_name(esm_invoke_class c); /* "success", "function_error", ... */

#endif
