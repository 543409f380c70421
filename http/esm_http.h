/* Asynchronous HTTP on the libev loop: curl's multi-socket API, never a thread per call.
 * Shared by the invoker, the AWS JSON-protocol client (SQS, Kinesis, SNS) and destinations.
 * Connections are reused across calls (one multi handle per loop). */
#ifndef ESM_HTTP_H
#define ESM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct curl_slist;
typedef struct esm_http esm_http;
typedef struct esm_http_call esm_http_call;

typedef struct {
    long status;       /* HTTP status, 0 when no response arrived */
    int curl_code;     /* CURLcode; 0 = the exchange completed */
    bool timed_out;    /* the call's timeout expired */
    bool request_sent; /* connected (TLS included) and sent the request head */
    char error[256];   /* curl's error text when curl_code != 0 */
    const char *body;  /* NUL-terminated; valid only during the callback */
    size_t body_len;
    bool body_truncated;                   /* the response exceeded max_response_bytes */
    double total_ms;                       /* from send to completion */
    const struct esm_http_header *headers; /* response headers of the final response */
    size_t n_headers;
} esm_http_response;

typedef struct esm_http_header {
    char *name;  /* as sent by the peer */
    char *value; /* trimmed */
} esm_http_header;

/* Called exactly once per call that was not cancelled; the response is freed afterwards. */
typedef void (*esm_http_cb)(const esm_http_response *resp, void *arg);

typedef struct {
    const char *method; /* "POST" (default when NULL), "GET", ... */
    const char *url;
    const char *body; /* NOT copied: must stay valid until the callback */
    size_t body_len;
    struct curl_slist *headers;    /* ownership moves to the call (freed when it ends) */
    long timeout_ms;               /* whole exchange; 0 = no limit */
    long connect_timeout_ms;       /* 0 = curl's default */
    size_t max_response_bytes;     /* 0 = 16 MiB */
    const char *aws_sigv4;         /* e.g. "aws:amz:us-east-1:sqs"; NULL = unsigned */
    const char *aws_access_key_id; /* with aws_sigv4 */
    const char *aws_secret_access_key;
    esm_http_cb cb;
    /* Optional: called instead of cb when the call ends without a callback (esm_http_cancel,
     * esm_http_destroy), so the owner of arg can free it. */
    void (*release)(void *arg);
    void *arg;
} esm_http_request;

esm_http *esm_http_create(struct ev_loop *loop);
/* Cancels every call still in flight without calling its callback. */
void esm_http_destroy(esm_http *http);
/* Starts a call; returns NULL (and calls nothing) if it could not be started. */
esm_http_call *esm_http_send(esm_http *http, const esm_http_request *req);
/* Cancels a call in flight; its callback is not called. */
void esm_http_cancel(esm_http_call *call);
size_t esm_http_in_flight(const esm_http *http);
/* Case-insensitive header lookup in a response; NULL when absent. */
const char *esm_http_response_header(const esm_http_response *resp, const char *name);

#endif
