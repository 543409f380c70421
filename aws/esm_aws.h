/* The AWS client shared by the SQS and Kinesis sources and the SQS/SNS destinations: JSON
 * protocols (SQS JSON 1.0, Kinesis JSON 1.1) and the query protocol (SNS), signed with SigV4
 * through libcurl when credentials are configured. Requests always go to the configured
 * endpoint, never to a host taken from a QueueUrl (emulators hand out unresolvable hosts). */
#ifndef ESM_AWS_H
#define ESM_AWS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/esm_http.h"

typedef struct esm_aws esm_aws;

typedef struct {
    const char *region;
    const char *endpoint; /* NULL = https://<service>.<region>.amazonaws.com */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
} esm_aws_options;

typedef struct {
    bool ok;              /* 2xx and, for JSON protocols, a parseable body */
    bool retriable;       /* throttling, 5xx, transport error */
    bool throttled;       /* ThrottlingException / ProvisionedThroughputExceeded / 429 */
    long status;          /* HTTP status, 0 if no response */
    char error_type[128]; /* "QueueDoesNotExist", "ExpiredIteratorException", ... */
    char message[384];    /* the peer's message or the transport error */
    const cJSON *json;    /* parsed body (success or error), valid during the callback */
    const char *body;     /* raw body, valid during the callback */
    size_t body_len;
} esm_aws_result;

typedef void (*esm_aws_cb)(const esm_aws_result *res, void *arg);

esm_aws *esm_aws_create(esm_http *http, const char *service, const esm_aws_options *opt);
void esm_aws_destroy(esm_aws *aws);
const char *esm_aws_endpoint(const esm_aws *aws);

/* JSON protocol call: target "AmazonSQS.ReceiveMessage" or "Kinesis_20131202.GetRecords";
 * json_version "1.0" or "1.1". body is copied. Returns NULL if the call could not start. */
esm_http_call *esm_aws_json_call(esm_aws *aws, const char *target, const char *json_version,
                                 const char *body, size_t body_len, long timeout_ms, esm_aws_cb cb,
                                 void *arg);
/* Same, but a successful (2xx) body is handed to cb unparsed: res->json is NULL and res->body
 * holds the raw JSON, for callers with their own parser (the SQS receive path: building a
 * cJSON tree of every ReceiveMessage response costs ~10-13 % of esmd's CPU). Error responses
 * are parsed and classified as usual. */
esm_http_call *esm_aws_json_call_raw(esm_aws *aws, const char *target, const char *json_version,
                                     const char *body, size_t body_len, long timeout_ms,
                                     esm_aws_cb cb, void *arg);
/* Query protocol call (form-encoded Action=...&Version=...): params are name/value pairs,
 * url-encoded here. The response is XML; res->json is NULL, res->body has the XML. */
esm_http_call *esm_aws_query_call(esm_aws *aws, const char *const *params, size_t n_params,
                                  long timeout_ms, esm_aws_cb cb, void *arg);

/* Classifies an error response (pure; exposed for tests). */
void esm_aws_classify(long status, int curl_code, const char *body, size_t len,
                      esm_aws_result *res);

#endif
