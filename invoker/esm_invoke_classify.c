/* Outcome classification of one invocation from what the wire showed (see esm_invoker.h). */
#include "invoker/esm_invoker.h"

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void function_error(esm_invoke_result *out, const char *value)
{
    out->cls = ESM_INVOKE_FUNCTION_ERROR;
    snprintf(out->function_error, sizeof out->function_error, "%s",
             value && value[0] ? value : "Unhandled");
}

/* Statuses that say esmd's own settings are wrong, not the records: what to check. */
static const char *misconfiguration(long status)
{
    switch (status) {
    case 401:
        return "credentials: the endpoint wants authentication";
    case 403:
        return "credentials/URL: access denied";
    case 404:
        return "URL: no such function";
    case 405:
        return "URL/protocol: the endpoint does not take POST";
    case 407:
        return "proxy credentials";
    default:
        return NULL;
    }
}

void esm_invoke_classify(const esm_invoke_wire *w, esm_invoke_result *out)
{
    out->misconfigured = false;
    out->reason[0] = '\0';
    out->function_error[0] = '\0';
    bool lambda = w->protocol == ESM_PROTO_LAMBDA;

    if (w->body_truncated) {
        /* AWS: Function.ResponseSizeTooLarge, an Unhandled function error. */
        function_error(out, "Unhandled");
        snprintf(out->reason, sizeof out->reason, "response larger than %zu bytes",
                 ESM_INVOKE_MAX_PAYLOAD);
        return;
    }
    if (w->timed_out && w->request_sent) {
        /* The function had the request and did not answer in time: AWS calls this a function
         * timeout (Unhandled), which counts toward MaximumRetryAttempts and can bisect. A host
         * that reports the timeout itself answers 200 + Unhandled before ours fires. */
        function_error(out, "Unhandled");
        snprintf(out->reason, sizeof out->reason,
                 "timeout after %ld ms: the function did not answer (function timeout)",
                 w->timeout_ms);
        return;
    }
    if (w->curl_code != 0) {
        out->cls = ESM_INVOKE_ERROR;
        const char *e = w->transport_error && w->transport_error[0]
                            ? w->transport_error
                            : curl_easy_strerror((CURLcode)w->curl_code);
        snprintf(out->reason, sizeof out->reason, "transport error: %s", e ? e : "unknown");
        return;
    }
    long st = w->status;
    bool ok = st >= 200 && st < 300;
    if (ok && w->function_error && w->function_error[0]) {
        /* Both protocols honour the header: a 2xx with it is never a success. */
        function_error(out, w->function_error);
        snprintf(out->reason, sizeof out->reason, "function error (%s)", out->function_error);
        return;
    }
    if (ok) {
        out->cls = ESM_INVOKE_SUCCESS;
        return;
    }
    if (st == 429 || (!lambda && st == 503)) {
        out->cls = ESM_INVOKE_THROTTLE;
        snprintf(out->reason, sizeof out->reason, "throttled: HTTP %ld", st);
        return;
    }
    const char *what = misconfiguration(st);
    if (what) {
        out->cls = ESM_INVOKE_ERROR;
        out->misconfigured = true;
        snprintf(out->reason, sizeof out->reason,
                 "function endpoint answered %ld: esmd is misconfigured (%s)", st, what);
        return;
    }
    if (lambda) {
        out->cls = ESM_INVOKE_ERROR;
    } else {
        function_error(out, "Unhandled");
    }
    snprintf(out->reason, sizeof out->reason, "HTTP %ld", st);
}

int64_t esm_invoke_parse_retry_after(const char *value)
{
    if (!value) return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value < '0' || *value > '9') return -1;
    char *end;
    double s = strtod(value, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0' || !isfinite(s) || s < 0 || s > 86400.0 * 365) return -1;
    return (int64_t)llround(s * 1000.0);
}

const char *esm_invoke_class_name(esm_invoke_class c)
{
    switch (c) {
    case ESM_INVOKE_SUCCESS:
        return "success";
    case ESM_INVOKE_FUNCTION_ERROR:
        return "function_error";
    case ESM_INVOKE_THROTTLE:
        return "throttle";
    case ESM_INVOKE_ERROR:
        return "error";
    }
    return "unknown";
}
