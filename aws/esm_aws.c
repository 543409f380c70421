#include "aws/esm_aws.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/esm_buf.h"

struct esm_aws {
    esm_http *http;
    char service[32];
    char *endpoint;
    char sigv4[96];
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
};

/* One call in flight: keeps the request body alive until curl is done with it. */
typedef struct {
    char *body;
    size_t body_len;
    esm_aws_cb cb;
    void *arg;
    bool json;
    bool raw_ok; /* hand a 2xx body over unparsed (esm_aws_json_call_raw) */
} aws_call;

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

esm_aws *esm_aws_create(esm_http *http, const char *service, const esm_aws_options *opt)
{
    esm_aws *aws = calloc(1, sizeof *aws);
    if (!aws) return NULL;
    aws->http = http;
    snprintf(aws->service, sizeof aws->service, "%s", service);
    const char *region = opt->region && *opt->region ? opt->region : "us-east-1";
    if (opt->endpoint && *opt->endpoint) {
        aws->endpoint = strdup(opt->endpoint);
    } else {
        size_t n = strlen(service) + strlen(region) + 32;
        aws->endpoint = malloc(n);
        if (aws->endpoint)
            snprintf(aws->endpoint, n, "https://%s.%s.amazonaws.com", service, region);
    }
    snprintf(aws->sigv4, sizeof aws->sigv4, "aws:amz:%s:%s", region, service);
    aws->access_key_id = dup_or_null(opt->access_key_id);
    aws->secret_access_key = dup_or_null(opt->secret_access_key);
    aws->session_token = dup_or_null(opt->session_token);
    if (!aws->endpoint) {
        esm_aws_destroy(aws);
        return NULL;
    }
    return aws;
}

void esm_aws_destroy(esm_aws *aws)
{
    if (!aws) return;
    free(aws->endpoint);
    free(aws->access_key_id);
    free(aws->secret_access_key);
    free(aws->session_token);
    free(aws);
}

const char *esm_aws_endpoint(const esm_aws *aws)
{
    return aws->endpoint;
}

static bool is_throttle_type(const char *t)
{
    static const char *const names[] = {"ThrottlingException",
                                        "Throttling",
                                        "ProvisionedThroughputExceededException",
                                        "RequestThrottled",
                                        "RequestThrottledException",
                                        "TooManyRequestsException",
                                        "LimitExceededException",
                                        "KMSThrottlingException",
                                        "OverLimit"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(t, names[i]) == 0) return true;
    return false;
}

/* "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist" */
static void set_error_type(esm_aws_result *res, const char *type)
{
    const char *hash = strrchr(type, '#');
    snprintf(res->error_type, sizeof res->error_type, "%s", hash ? hash + 1 : type);
    char *colon = strchr(res->error_type, ':');
    if (colon) *colon = '\0';
}

/* Extracts <tag>text</tag> from an XML error body (query protocol). */
static void xml_text(const char *body, size_t len, const char *tag, char *out, size_t out_len)
{
    char open[64];
    snprintf(open, sizeof open, "<%s>", tag);
    const char *p = body ? memmem(body, len, open, strlen(open)) : NULL;
    if (!p) return;
    p += strlen(open);
    const char *end = memchr(p, '<', len - (size_t)(p - body));
    if (!end) return;
    snprintf(out, out_len, "%.*s", (int)(end - p), p);
}

void esm_aws_classify(long status, int curl_code, const char *body, size_t len, esm_aws_result *res)
{
    res->status = status;
    if (curl_code != 0 || status == 0) {
        res->ok = false;
        res->retriable = true;
        snprintf(res->error_type, sizeof res->error_type, "TransportError");
        return;
    }
    if (status >= 200 && status < 300) {
        res->ok = true;
        return;
    }
    res->ok = false;
    const cJSON *j = res->json;
    const cJSON *type = j ? cJSON_GetObjectItemCaseSensitive(j, "__type") : NULL;
    if (cJSON_IsString(type)) set_error_type(res, type->valuestring);
    const cJSON *msg = j ? cJSON_GetObjectItemCaseSensitive(j, "message") : NULL;
    if (!cJSON_IsString(msg) && j) msg = cJSON_GetObjectItemCaseSensitive(j, "Message");
    if (cJSON_IsString(msg)) snprintf(res->message, sizeof res->message, "%s", msg->valuestring);
    if (!j && body) {
        xml_text(body, len, "Code", res->error_type, sizeof res->error_type);
        xml_text(body, len, "Message", res->message, sizeof res->message);
    }
    if (!res->error_type[0]) snprintf(res->error_type, sizeof res->error_type, "HTTP%ld", status);
    if (!res->message[0])
        snprintf(res->message, sizeof res->message, "HTTP %ld %.200s", status, body ? body : "");
    res->throttled = status == 429 || is_throttle_type(res->error_type);
    res->retriable = res->throttled || status >= 500;
}

static void on_http_done(const esm_http_response *resp, void *arg)
{
    aws_call *c = arg;
    esm_aws_result res;
    memset(&res, 0, sizeof res);
    cJSON *json = NULL;
    bool raw = c->raw_ok && resp->curl_code == 0 && resp->status >= 200 && resp->status < 300;
    if (c->json && !raw && resp->body && resp->body_len > 0)
        json = cJSON_ParseWithLength(resp->body, resp->body_len);
    res.json = json;
    res.body = resp->body;
    res.body_len = resp->body_len;
    esm_aws_classify(resp->status, resp->curl_code, resp->body, resp->body_len, &res);
    if (resp->curl_code != 0 || resp->status == 0)
        snprintf(res.message, sizeof res.message, "%s",
                 resp->timed_out ? "request timed out" : resp->error);
    if (res.ok && c->json && !raw && resp->body_len > 0 && !json) {
        res.ok = false;
        res.retriable = true;
        snprintf(res.error_type, sizeof res.error_type, "InvalidResponse");
        snprintf(res.message, sizeof res.message, "response is not JSON");
    }
    c->cb(&res, c->arg);
    cJSON_Delete(json);
    free(c->body);
    free(c);
}

static void release_call(void *arg)
{
    aws_call *c = arg;
    free(c->body);
    free(c);
}

static esm_http_call *send_call(esm_aws *aws, aws_call *c, struct curl_slist *hdrs, long timeout_ms)
{
    if (aws->session_token) {
        size_t n = strlen(aws->session_token) + 32;
        char *h = malloc(n);
        if (h) {
            snprintf(h, n, "X-Amz-Security-Token: %s", aws->session_token);
            hdrs = curl_slist_append(hdrs, h);
            free(h);
        }
    }
    esm_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.url = aws->endpoint;
    req.body = c->body;
    req.body_len = c->body_len;
    req.headers = hdrs;
    req.timeout_ms = timeout_ms;
    req.connect_timeout_ms = 5000;
    if (aws->access_key_id && aws->secret_access_key) {
        req.aws_sigv4 = aws->sigv4;
        req.aws_access_key_id = aws->access_key_id;
        req.aws_secret_access_key = aws->secret_access_key;
    }
    req.cb = on_http_done;
    req.release = release_call;
    req.arg = c;
    esm_http_call *call = esm_http_send(aws->http, &req);
    if (!call) {
        free(c->body);
        free(c);
    }
    return call;
}

static esm_http_call *json_call(esm_aws *aws, const char *target, const char *json_version,
                                const char *body, size_t body_len, long timeout_ms, bool raw_ok,
                                esm_aws_cb cb, void *arg)
{
    aws_call *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->body = malloc(body_len + 1);
    if (!c->body) {
        free(c);
        return NULL;
    }
    memcpy(c->body, body, body_len);
    c->body[body_len] = '\0';
    c->body_len = body_len;
    c->cb = cb;
    c->arg = arg;
    c->json = true;
    c->raw_ok = raw_ok;
    char ct[64], tgt[160];
    snprintf(ct, sizeof ct, "Content-Type: application/x-amz-json-%s", json_version);
    snprintf(tgt, sizeof tgt, "X-Amz-Target: %s", target);
    struct curl_slist *hdrs = curl_slist_append(NULL, ct);
    hdrs = curl_slist_append(hdrs, tgt);
    return send_call(aws, c, hdrs, timeout_ms);
}

esm_http_call *esm_aws_json_call(esm_aws *aws, const char *target, const char *json_version,
                                 const char *body, size_t body_len, long timeout_ms, esm_aws_cb cb,
                                 void *arg)
{
    return json_call(aws, target, json_version, body, body_len, timeout_ms, false, cb, arg);
}

esm_http_call *esm_aws_json_call_raw(esm_aws *aws, const char *target, const char *json_version,
                                     const char *body, size_t body_len, long timeout_ms,
                                     esm_aws_cb cb, void *arg)
{
    return json_call(aws, target, json_version, body, body_len, timeout_ms, true, cb, arg);
}

static void url_encode(esm_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            esm_buf_putc(b, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            esm_buf_append(b, e, 3);
        }
    }
}

esm_http_call *esm_aws_query_call(esm_aws *aws, const char *const *params, size_t n_params,
                                  long timeout_ms, esm_aws_cb cb, void *arg)
{
    esm_buf b;
    esm_buf_init(&b);
    for (size_t i = 0; i + 1 < n_params * 2; i += 2) {
        if (i) esm_buf_putc(&b, '&');
        url_encode(&b, params[i]);
        esm_buf_putc(&b, '=');
        url_encode(&b, params[i + 1]);
    }
    aws_call *c = calloc(1, sizeof *c);
    if (!c || b.failed) {
        free(c);
        esm_buf_free(&b);
        return NULL;
    }
    esm_buf_cstr(&b);
    c->body = b.data;
    c->body_len = b.len;
    c->cb = cb;
    c->arg = arg;
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
    return send_call(aws, c, hdrs, timeout_ms);
}
