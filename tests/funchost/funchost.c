/* esmd-funchost: a test function host speaking both function protocols.
 *
 *   esmd-funchost --listen 127.0.0.1:9000 [--log FILE.jsonl] [--marker POISON]
 *
 * Routes:
 *   POST /2015-03-31/functions/{name}/invocations   Lambda Invoke API   (proto "lambda")
 *   POST /function/{name}                           plain HTTP, OpenFaaS style (proto "http")
 *   POST /_control/{name}   {"mode":"throttle","count":3,"retry_after":1,"ms":500}
 *                           changes a function's behaviour at runtime; {} or {"mode":"reset"}
 *                           goes back to the name's default
 *   GET  /_stats/{name}     {"calls":N,"in_flight":N,"max_in_flight":N}
 *   GET  /healthz           200
 *
 * The behaviour (mode) comes from the control override, else from the function name: the whole
 * name if it is a mode, else the part before the first '-' or '_' ("slow-a" is slow), else echo.
 * Modes: echo, poison, partial, fail, slow (?ms= / control ms, default 2000), hang, throttle
 * (429; Retry-After with ?retry_after= / control retry_after), garbage, truncated, oversized
 * (7 MB body), error500, unavailable (503), forbidden (403 AccessDeniedException, what the
 * Invoke API answers a caller without permission). A control "count" N limits the mode to the next
 * N calls, then the function echoes (default: no limit).
 *
 * Each invocation appends one JSON line to --log (flushed per line):
 *   {"t":ms,"fn":name,"proto":"lambda"|"http","mode":m,"result":r,"concurrent":n,
 *    "headers":{lower-case name: value},"ids":[...],"payloads":[...]}
 * "headers" holds Authorization, Content-Type, Expect, X-Amz-Invocation-Type, X-Amz-Date,
 * X-Amz-Security-Token and any X-Test-* header of the request.
 * "concurrent" is how many invocations of that function were in progress when this one started
 * (itself included). On startup it prints "LISTENING <port>" on stdout (--listen ...:0 picks a
 * free port). SIGTERM / SIGINT stop it cleanly, waking sleeping slow/hang calls. */
#include "common/esm_buf.h"
#include "common/esm_time.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BODY ((size_t)64 * 1024 * 1024)
#define OVERSIZED_BYTES ((size_t)7 * 1024 * 1024)

typedef enum {
    M_ECHO,
    M_POISON,
    M_PARTIAL,
    M_FAIL,
    M_SLOW,
    M_HANG,
    M_THROTTLE,
    M_GARBAGE,
    M_TRUNCATED,
    M_OVERSIZED,
    M_ERROR500,
    M_UNAVAILABLE,
    M_FORBIDDEN,
    M_COUNT
} fn_mode;

static const char *const mode_names[M_COUNT] = {
    "echo",    "poison",    "partial",   "fail",     "slow",        "hang",     "throttle",
    "garbage", "truncated", "oversized", "error500", "unavailable", "forbidden"};

typedef struct fn_state {
    char *name;
    bool has_override;
    fn_mode override_mode;
    long count;       /* throttle: calls left to refuse, -1 = always */
    long ms;          /* slow: sleep, -1 = default */
    long retry_after; /* throttle: Retry-After seconds, -1 = none */
    long calls, in_flight, max_in_flight;
    struct fn_state *next;
} fn_state;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* broadcast on shutdown */
    bool stopping;
    fn_state *fns;
    FILE *log;
    const char *marker;
} host;

typedef struct {
    esm_buf body;
    bool too_big;
} req_ctx;

typedef struct {
    cJSON *ids;      /* array of strings (also Kafka ids "topic-N:offset") */
    cJSON *payloads; /* array of strings */
    cJSON *kafka;    /* per record: {"partition":"topic-N","offset":O}, or NULL if not Kafka */
} records;

/* ---- helpers ------------------------------------------------------------------------- */

static fn_state *fn_get(host *h, const char *name) /* caller holds h->mu */
{
    for (fn_state *f = h->fns; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    fn_state *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->name = strdup(name);
    f->count = -1;
    f->ms = -1;
    f->retry_after = -1;
    f->next = h->fns;
    h->fns = f;
    return f;
}

static bool mode_from_string(const char *s, size_t n, fn_mode *out)
{
    for (int i = 0; i < M_COUNT; i++)
        if (strlen(mode_names[i]) == n && strncmp(mode_names[i], s, n) == 0) {
            *out = (fn_mode)i;
            return true;
        }
    return false;
}

static fn_mode mode_from_name(const char *name)
{
    fn_mode m;
    if (mode_from_string(name, strlen(name), &m)) return m;
    size_t n = strcspn(name, "-_");
    if (name[n] && mode_from_string(name, n, &m)) return m;
    return M_ECHO;
}

static long query_long(struct MHD_Connection *c, const char *key, long dflt)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v || !*v) return dflt;
    return strtol(v, NULL, 10);
}

/* Sleeps up to ms (forever when ms < 0) or until shutdown. */
static void host_sleep(host *h, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (ms >= 0) {
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    } else {
        until.tv_sec += 3600;
    }
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int rc = pthread_cond_timedwait(&h->wake, &h->mu, &until);
        if (rc == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&h->mu);
}

static char *decode_b64(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n * 3 / 4 + 4);
    if (!out) return NULL;
    long r = esm_base64_decode(s, n, out);
    if (r < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)r;
    out[r] = '\0';
    return (char *)out;
}

static void add_payload(records *rs, const char *data, size_t len)
{
    /* payloads go to the log as JSON strings: invalid UTF-8 is replaced there */
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, data, len);
    copy[len] = '\0';
    cJSON_AddItemToArray(rs->payloads, cJSON_CreateString(copy));
    free(copy);
}

/* Reads the ids and payloads of an SQS, Kinesis or Kafka event. Anything else is one payload:
 * the whole body, with no ids. */
static void parse_records(const char *body, size_t len, records *rs)
{
    rs->ids = cJSON_CreateArray();
    rs->payloads = cJSON_CreateArray();
    rs->kafka = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *recs = root ? cJSON_GetObjectItemCaseSensitive(root, "Records") : NULL;
    const cJSON *kafka = root ? cJSON_GetObjectItemCaseSensitive(root, "records") : NULL;
    if (cJSON_IsArray(recs)) {
        const cJSON *r;
        cJSON_ArrayForEach(r, recs)
        {
            const cJSON *kin = cJSON_GetObjectItemCaseSensitive(r, "kinesis");
            const cJSON *mid = cJSON_GetObjectItemCaseSensitive(r, "messageId");
            if (cJSON_IsObject(kin)) {
                const cJSON *seq = cJSON_GetObjectItemCaseSensitive(kin, "sequenceNumber");
                const cJSON *data = cJSON_GetObjectItemCaseSensitive(kin, "data");
                cJSON_AddItemToArray(
                    rs->ids, cJSON_CreateString(cJSON_IsString(seq) ? seq->valuestring : ""));
                size_t dl = 0;
                char *d = cJSON_IsString(data) ? decode_b64(data->valuestring, &dl) : NULL;
                add_payload(rs, d ? d : "", d ? dl : 0);
                free(d);
            } else {
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "body");
                cJSON_AddItemToArray(
                    rs->ids, cJSON_CreateString(cJSON_IsString(mid) ? mid->valuestring : ""));
                const char *s = cJSON_IsString(b) ? b->valuestring : "";
                add_payload(rs, s, strlen(s));
            }
        }
    } else if (cJSON_IsObject(kafka)) {
        rs->kafka = cJSON_CreateArray();
        const cJSON *tp;
        cJSON_ArrayForEach(tp, kafka)
        {
            const cJSON *r;
            cJSON_ArrayForEach(r, tp)
            {
                const cJSON *topic = cJSON_GetObjectItemCaseSensitive(r, "topic");
                const cJSON *part = cJSON_GetObjectItemCaseSensitive(r, "partition");
                const cJSON *off = cJSON_GetObjectItemCaseSensitive(r, "offset");
                const cJSON *val = cJSON_GetObjectItemCaseSensitive(r, "value");
                char pname[512], id[600];
                snprintf(pname, sizeof pname, "%s-%d",
                         cJSON_IsString(topic) ? topic->valuestring : "",
                         part ? part->valueint : 0);
                long long o = cJSON_IsNumber(off) ? (long long)off->valuedouble : 0;
                snprintf(id, sizeof id, "%s:%lld", pname, o);
                cJSON_AddItemToArray(rs->ids, cJSON_CreateString(id));
                cJSON *kid = cJSON_CreateObject();
                cJSON_AddStringToObject(kid, "partition", pname);
                cJSON_AddNumberToObject(kid, "offset", (double)o);
                cJSON_AddItemToArray(rs->kafka, kid);
                size_t dl = 0;
                char *d = cJSON_IsString(val) ? decode_b64(val->valuestring, &dl) : NULL;
                add_payload(rs, d ? d : "", d ? dl : 0);
                free(d);
            }
        }
    } else {
        add_payload(rs, body, len);
    }
    cJSON_Delete(root);
}

static void records_free(records *rs)
{
    cJSON_Delete(rs->ids);
    cJSON_Delete(rs->payloads);
    cJSON_Delete(rs->kafka);
}

/* Request headers worth asserting on: the protocol's, SigV4's and any X-Test-* header. */
static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    static const char *const keep[] = {"authorization",
                                       "x-amz-invocation-type",
                                       "x-amz-security-token",
                                       "x-amz-date",
                                       "content-type",
                                       "expect",
                                       NULL};
    bool wanted = strncasecmp(key, "x-test", 6) == 0;
    for (size_t i = 0; !wanted && keep[i]; i++)
        wanted = strcasecmp(key, keep[i]) == 0;
    if (!wanted) return MHD_YES;
    char lower[128];
    size_t n = 0;
    for (; n < sizeof lower - 1 && key[n]; n++)
        lower[n] = (char)tolower((unsigned char)key[n]);
    lower[n] = '\0';
    cJSON_AddItemToObject(cls, lower, cJSON_CreateString(value ? value : ""));
    return MHD_YES;
}

static void log_line(host *h, struct MHD_Connection *c, const char *fn, const char *proto,
                     fn_mode mode, const char *result, long concurrent, const records *rs)
{
    if (!h->log) return;
    cJSON *hdrs = cJSON_CreateObject();
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, hdrs);
    char *headers = cJSON_PrintUnformatted(hdrs);
    cJSON_Delete(hdrs);
    char *ids = cJSON_PrintUnformatted(rs->ids);
    char *payloads = cJSON_PrintUnformatted(rs->payloads);
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_printf(&b, "{\"t\":%lld,\"fn\":", (long long)esm_now_ms());
    esm_buf_json_cstr(&b, fn);
    esm_buf_printf(&b,
                   ",\"proto\":\"%s\",\"mode\":\"%s\",\"result\":\"%s\",\"concurrent\":%ld,"
                   "\"headers\":%s,\"ids\":%s,\"payloads\":%s}\n",
                   proto, mode_names[mode], result, concurrent, headers ? headers : "{}",
                   ids ? ids : "[]", payloads ? payloads : "[]");
    pthread_mutex_lock(&h->mu);
    fwrite(b.data, 1, b.len, h->log);
    fflush(h->log);
    pthread_mutex_unlock(&h->mu);
    esm_buf_free(&b);
    free(ids);
    free(payloads);
    free(headers);
}

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, esm_buf *b,
                                const char *const *headers)
{
    esm_buf_cstr(b);
    struct MHD_Response *r;
    if (b->data && b->len) {
        r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
        b->data = NULL; /* owned by the response now */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    esm_buf_free(b);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_str(struct MHD_Connection *c, unsigned status, const char *s)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_puts(&b, s);
    return send_buf(c, status, &b, NULL);
}

/* ---- invocations ----------------------------------------------------------------------- */

static bool contains_marker(const cJSON *payload, const char *marker)
{
    return cJSON_IsString(payload) && strstr(payload->valuestring, marker) != NULL;
}

static enum MHD_Result invoke(host *h, struct MHD_Connection *c, const char *fn, bool lambda,
                              const char *body, size_t len)
{
    const char *proto = lambda ? "lambda" : "http";
    pthread_mutex_lock(&h->mu);
    fn_state *f = fn_get(h, fn);
    if (!f) {
        pthread_mutex_unlock(&h->mu);
        return MHD_NO;
    }
    fn_mode mode = f->has_override ? f->override_mode : mode_from_name(fn);
    long retry_after = f->retry_after;
    long slow_ms = f->ms;
    if (mode != M_ECHO && f->count >= 0) {
        if (f->count == 0)
            mode = M_ECHO; /* the mode's calls are used up */
        else
            f->count--;
    }
    f->calls++;
    long concurrent = ++f->in_flight;
    if (f->in_flight > f->max_in_flight) f->max_in_flight = f->in_flight;
    pthread_mutex_unlock(&h->mu);

    records rs;
    parse_records(body, len, &rs);
    char request_id[37];
    esm_uuid4(request_id);
    const char *hdr_ok[] = {"X-Amz-Executed-Version", "$LATEST", "X-Amzn-RequestId", request_id,
                            NULL};
    const char *hdr_fe[] = {"X-Amz-Executed-Version",
                            "$LATEST",
                            "X-Amzn-RequestId",
                            request_id,
                            "X-Amz-Function-Error",
                            "Unhandled",
                            NULL};
    esm_buf out;
    esm_buf_init(&out);
    unsigned status = 200;
    const char *const *headers = hdr_ok;
    const char *result = "ok";

    switch (mode) {
    case M_SLOW:
        host_sleep(h, query_long(c, "ms", slow_ms >= 0 ? slow_ms : 2000));
        __attribute__((fallthrough)); /* then succeed */
    case M_ECHO:
        esm_buf_puts(&out, lambda ? "null" : "{}");
        break;
    case M_HANG:
        host_sleep(h, -1);
        result = "hang";
        status = 503;
        esm_buf_puts(&out, "{\"message\":\"shutting down\"}");
        break;
    case M_POISON:
    case M_FAIL: {
        const char *bad_id = NULL;
        if (mode == M_POISON) {
            for (int i = 0; i < cJSON_GetArraySize(rs.payloads); i++)
                if (contains_marker(cJSON_GetArrayItem(rs.payloads, i), h->marker)) {
                    const cJSON *id = cJSON_GetArrayItem(rs.ids, i);
                    bad_id = cJSON_IsString(id) ? id->valuestring : "?";
                    break;
                }
            if (!bad_id) {
                esm_buf_puts(&out, lambda ? "null" : "{}");
                break;
            }
        }
        result = "error";
        esm_buf_puts(&out, "{\"errorMessage\":");
        esm_buf_json_cstr(&out, bad_id ? bad_id : "the function failed");
        esm_buf_puts(&out, ",\"errorType\":\"");
        esm_buf_puts(&out, mode == M_POISON ? "PoisonRecord" : "Error");
        esm_buf_puts(&out, "\",\"stackTrace\":[]}");
        if (lambda)
            headers = hdr_fe;
        else
            status = 500;
        break;
    }
    case M_PARTIAL: {
        esm_buf_puts(&out, "{\"batchItemFailures\":[");
        int n = 0;
        for (int i = 0; i < cJSON_GetArraySize(rs.payloads); i++) {
            if (!contains_marker(cJSON_GetArrayItem(rs.payloads, i), h->marker)) continue;
            esm_buf_puts(&out, n++ ? ",{\"itemIdentifier\":" : "{\"itemIdentifier\":");
            if (rs.kafka) {
                char *k = cJSON_PrintUnformatted(cJSON_GetArrayItem(rs.kafka, i));
                esm_buf_puts(&out, k ? k : "null");
                free(k);
            } else {
                const cJSON *id = cJSON_GetArrayItem(rs.ids, i);
                esm_buf_json_cstr(&out, cJSON_IsString(id) ? id->valuestring : "");
            }
            esm_buf_putc(&out, '}');
        }
        esm_buf_puts(&out, "]}");
        if (n) result = "partial";
        break;
    }
    case M_THROTTLE: {
        result = "throttle";
        status = 429;
        long ra = query_long(c, "retry_after", retry_after);
        static const char *const hdr_t[] = {"x-amzn-ErrorType", "TooManyRequestsException", NULL};
        char ra_s[32];
        snprintf(ra_s, sizeof ra_s, "%ld", ra);
        const char *hdr_tr[] = {"x-amzn-ErrorType", "TooManyRequestsException", "Retry-After", ra_s,
                                NULL};
        esm_buf_puts(&out, "{\"Type\":\"User\",\"message\":\"Rate Exceeded.\","
                           "\"Reason\":\"ReservedFunctionConcurrentInvocationLimitExceeded\"}");
        log_line(h, c, fn, proto, mode, result, concurrent, &rs);
        records_free(&rs);
        pthread_mutex_lock(&h->mu);
        f->in_flight--;
        pthread_mutex_unlock(&h->mu);
        return send_buf(c, status, &out, ra >= 0 ? hdr_tr : hdr_t);
    }
    case M_GARBAGE:
        result = "garbage";
        esm_buf_puts(&out, "<html>this is not JSON</html>");
        break;
    case M_TRUNCATED:
        result = "truncated";
        esm_buf_puts(&out, "{\"batchItemFailures\":[{\"itemIdentifier\":");
        break;
    case M_OVERSIZED:
        result = "oversized";
        if (esm_buf_reserve(&out, OVERSIZED_BYTES + 2)) {
            out.data[0] = '"';
            memset(out.data + 1, 'x', OVERSIZED_BYTES);
            out.data[OVERSIZED_BYTES + 1] = '"';
            out.len = OVERSIZED_BYTES + 2;
        }
        break;
    case M_ERROR500: {
        result = "error500";
        status = 500;
        static const char *const hdr_500[] = {"x-amzn-ErrorType", "ServiceException", NULL};
        headers = hdr_500;
        esm_buf_puts(&out, "{\"Type\":\"Service\",\"message\":\"ServiceException\"}");
        break;
    }
    case M_UNAVAILABLE:
        result = "unavailable";
        status = 503;
        esm_buf_puts(&out, "{\"message\":\"Service Unavailable\"}");
        break;
    case M_FORBIDDEN: {
        result = "forbidden";
        status = 403;
        static const char *const hdr_403[] = {"x-amzn-ErrorType", "AccessDeniedException", NULL};
        headers = hdr_403;
        esm_buf_puts(&out, "{\"Type\":\"User\",\"message\":\"User is not authorized to "
                           "perform: lambda:InvokeFunction\"}");
        break;
    }
    case M_COUNT:
        break;
    }
    log_line(h, c, fn, proto, mode, result, concurrent, &rs);
    records_free(&rs);
    pthread_mutex_lock(&h->mu);
    f->in_flight--;
    pthread_mutex_unlock(&h->mu);
    return send_buf(c, status, &out, headers);
}

static enum MHD_Result control(host *h, struct MHD_Connection *c, const char *fn, const char *body,
                               size_t len)
{
    cJSON *j = len ? cJSON_ParseWithLength(body, len) : cJSON_CreateObject();
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return send_str(c, 400, "{\"message\":\"body must be a JSON object\"}");
    }
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "mode");
    fn_mode m = M_ECHO;
    bool reset = !cJSON_IsString(mode) || strcmp(mode->valuestring, "reset") == 0;
    if (!reset && !mode_from_string(mode->valuestring, strlen(mode->valuestring), &m)) {
        cJSON_Delete(j);
        return send_str(c, 400, "{\"message\":\"unknown mode\"}");
    }
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(j, "count");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "ms");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retry_after");
    pthread_mutex_lock(&h->mu);
    fn_state *f = fn_get(h, fn);
    if (f) {
        f->has_override = !reset;
        f->override_mode = m;
        f->count = cJSON_IsNumber(count) ? (long)count->valuedouble : -1;
        f->ms = cJSON_IsNumber(ms) ? (long)ms->valuedouble : -1;
        f->retry_after = cJSON_IsNumber(ra) ? (long)ra->valuedouble : -1;
    }
    pthread_mutex_unlock(&h->mu);
    cJSON_Delete(j);
    return send_str(c, f ? 200 : 500, f ? "{\"ok\":true}" : "{\"ok\":false}");
}

static enum MHD_Result stats(host *h, struct MHD_Connection *c, const char *fn)
{
    esm_buf b;
    esm_buf_init(&b);
    pthread_mutex_lock(&h->mu);
    fn_state *f = fn_get(h, fn);
    esm_buf_printf(&b, "{\"calls\":%ld,\"in_flight\":%ld,\"max_in_flight\":%ld}", f ? f->calls : 0,
                   f ? f->in_flight : 0, f ? f->max_in_flight : 0);
    pthread_mutex_unlock(&h->mu);
    return send_buf(c, 200, &b, NULL);
}

/* ---- MHD glue ------------------------------------------------------------------------- */

static bool match(const char *url, const char *prefix, const char *suffix, char *name,
                  size_t name_len)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), ul = strlen(url);
    if (ul <= pl + sl || strncmp(url, prefix, pl) != 0 || strcmp(url + ul - sl, suffix) != 0)
        return false;
    size_t n = ul - pl - sl;
    if (n >= name_len || memchr(url + pl, '/', n)) return false;
    memcpy(name, url + pl, n);
    name[n] = '\0';
    return true;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    (void)version;
    host *h = cls;
    req_ctx *rc = *con_cls;
    if (!rc) {
        rc = calloc(1, sizeof *rc);
        if (!rc) return MHD_NO;
        esm_buf_init(&rc->body);
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (rc->body.len + *upload_data_size > MAX_BODY)
            rc->too_big = true;
        else
            esm_buf_append(&rc->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rc->too_big || rc->body.failed)
        return send_str(c, 413, "{\"message\":\"request too large\"}");

    char name[256];
    const char *body = rc->body.data ? rc->body.data : "";
    size_t len = rc->body.len;
    if (strcmp(method, "GET") == 0) {
        if (strcmp(url, "/healthz") == 0) return send_str(c, 200, "{\"status\":\"ok\"}");
        if (match(url, "/_stats/", "", name, sizeof name)) return stats(h, c, name);
        return send_str(c, 404, "{\"message\":\"not found\"}");
    }
    if (strcmp(method, "POST") != 0) return send_str(c, 405, "{\"message\":\"use POST\"}");
    if (match(url, "/2015-03-31/functions/", "/invocations", name, sizeof name))
        return invoke(h, c, name, true, body, len);
    if (match(url, "/function/", "", name, sizeof name))
        return invoke(h, c, name, false, body, len);
    if (match(url, "/_control/", "", name, sizeof name)) return control(h, c, name, body, len);
    return send_str(c, 404, "{\"message\":\"not found\"}");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_ctx *rc = *con_cls;
    if (!rc) return;
    esm_buf_free(&rc->body);
    free(rc);
    *con_cls = NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: esmd-funchost --listen HOST:PORT [--log FILE.jsonl] [--marker S]\n");
}

int main(int argc, char **argv)
{
    const char *listen_addr = "127.0.0.1:9000", *log_path = NULL;
    host h;
    memset(&h, 0, sizeof h);
    h.marker = "POISON";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
            log_path = argv[++i];
        else if (strcmp(argv[i], "--marker") == 0 && i + 1 < argc)
            h.marker = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    char hostpart[64];
    const char *colon = strrchr(listen_addr, ':');
    if (!colon || (size_t)(colon - listen_addr) >= sizeof hostpart) {
        usage();
        return 2;
    }
    memcpy(hostpart, listen_addr, (size_t)(colon - listen_addr));
    hostpart[colon - listen_addr] = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, hostpart[0] ? hostpart : "0.0.0.0", &sa.sin_addr) != 1) {
        fprintf(stderr, "esmd-funchost: bad listen address %s\n", listen_addr);
        return 2;
    }
    if (log_path) {
        h.log = fopen(log_path, "a");
        if (!h.log) {
            perror(log_path);
            return 1;
        }
    }
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.wake, NULL);

    /* Block the stop signals in every thread; main waits for them with sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, handler, &h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "esmd-funchost: cannot listen on %s\n", listen_addr);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("LISTENING %u\n", info ? (unsigned)info->port : (unsigned)ntohs(sa.sin_port));
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    pthread_mutex_lock(&h.mu);
    h.stopping = true;
    pthread_cond_broadcast(&h.wake);
    pthread_mutex_unlock(&h.mu);
    MHD_stop_daemon(d);

    while (h.fns) {
        fn_state *f = h.fns;
        h.fns = f->next;
        free(f->name);
        free(f);
    }
    if (h.log) fclose(h.log);
    pthread_cond_destroy(&h.wake);
    pthread_mutex_destroy(&h.mu);
    return 0;
}
