#include "destinations/esm_dest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *esm_dest_kind_name(esm_dest_kind kind)
{
    switch (kind) {
    case ESM_DEST_SQS:
        return "sqs";
    case ESM_DEST_SNS:
        return "sns";
    case ESM_DEST_KAFKA:
        return "kafka";
    case ESM_DEST_HTTP:
        return "http";
    case ESM_DEST_FILE:
        return "file";
    }
    return "?";
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool all_chars(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr(extra, c));
        if (!ok) return false;
    }
    return true;
}

static bool has_ctl_or_space(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return true;
    return false;
}

/* arn:PARTITION:SERVICE:REGION:ACCOUNT:NAME */
static int parse_arn(const char *s, esm_dest *out, esm_err *err)
{
    const char *f[6];
    size_t len[6];
    const char *p = s;
    for (int i = 0; i < 6; i++) {
        const char *colon = i < 5 ? strchr(p, ':') : NULL;
        f[i] = p;
        len[i] = colon ? (size_t)(colon - p) : strlen(p);
        if (i < 5 && !colon) {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "destination '%s': an ARN has 6 ':'-separated parts", s);
            return -1;
        }
        p = colon ? colon + 1 : p + len[i];
    }
    bool partition_ok = (len[1] == 3 && !strncmp(f[1], "aws", 3)) ||
                        (len[1] == 6 && !strncmp(f[1], "aws-cn", 6)) ||
                        (len[1] == 10 && !strncmp(f[1], "aws-us-gov", 10));
    if (!partition_ok) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': partition '%.*s' is not aws, aws-cn or aws-us-gov", s,
                    (int)len[1], f[1]);
        return -1;
    }
    bool sqs = len[2] == 3 && !strncmp(f[2], "sqs", 3);
    bool sns = len[2] == 3 && !strncmp(f[2], "sns", 3);
    if (!sqs && !sns) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': service '%.*s' is not supported (sqs, sns)", s, (int)len[2],
                    f[2]);
        return -1;
    }
    if (len[3] == 0 || len[3] >= sizeof out->region || !all_chars(f[3], len[3], "-")) {
        esm_err_set(err, ESM_ERR_INVALID, false, "destination '%s': invalid region '%.*s'", s,
                    (int)len[3], f[3]);
        return -1;
    }
    if (len[4] != 12 || !all_chars(f[4], 12, "") || strspn(f[4], "0123456789") < 12) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': account '%.*s' is not 12 digits", s, (int)len[4], f[4]);
        return -1;
    }
    size_t max_name = sqs ? 80 : 256;
    if (len[5] == 0 || len[5] > max_name || !all_chars(f[5], len[5], "-_.")) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': %s name must be 1-%zu characters of A-Z a-z 0-9 - _", s,
                    sqs ? "queue" : "topic", max_name);
        return -1;
    }
    if (len[5] >= 5 && !strcmp(f[5] + len[5] - 5, ".fifo")) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': FIFO %s are not supported as on-failure destinations", s,
                    sqs ? "queues" : "topics");
        return -1;
    }
    /* '.' is only allowed as part of the .fifo suffix */
    if (memchr(f[5], '.', len[5])) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': %s name must be 1-%zu characters of A-Z a-z 0-9 - _", s,
                    sqs ? "queue" : "topic", max_name);
        return -1;
    }
    out->kind = sqs ? ESM_DEST_SQS : ESM_DEST_SNS;
    snprintf(out->region, sizeof out->region, "%.*s", (int)len[3], f[3]);
    snprintf(out->account, sizeof out->account, "%.*s", (int)len[4], f[4]);
    snprintf(out->name, sizeof out->name, "%.*s", (int)len[5], f[5]);
    snprintf(out->target, sizeof out->target, "%s", s);
    return 0;
}

static bool valid_topic(const char *t, size_t n)
{
    if (n == 0 || n > 249) return false;
    if ((n == 1 && t[0] == '.') || (n == 2 && t[0] == '.' && t[1] == '.')) return false;
    return all_chars(t, n, "._-");
}

/* host:port, host a name / IPv4 / [IPv6] */
static bool valid_hostport(const char *s, size_t n)
{
    const char *colon;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1 || close + 1 >= s + n || close[1] != ':') return false;
        if (!all_chars(s + 1, (size_t)(close - s - 1), ":.")) return false;
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ':') colon = s + i;
        if (!colon || colon == s || !all_chars(s, (size_t)(colon - s), "-._")) return false;
    }
    size_t plen = (size_t)(s + n - colon - 1);
    if (plen == 0 || plen > 5) return false;
    long port = 0;
    for (size_t i = 0; i < plen; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9') return false;
        port = port * 10 + (c - '0');
    }
    return port >= 1 && port <= 65535;
}

static int parse_kafka(const char *s, esm_dest *out, esm_err *err)
{
    const char *rest = s + strlen("kafka://");
    const char *slash = strrchr(rest, '/');
    const char *topic = slash ? slash + 1 : rest;
    size_t tlen = strlen(topic);
    if (!valid_topic(topic, tlen)) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': Kafka topic must be 1-249 characters of A-Z a-z 0-9 . _ -",
                    s);
        return -1;
    }
    out->bootstrap[0] = '\0';
    if (slash) {
        size_t blen = (size_t)(slash - rest);
        if (blen == 0 || blen >= sizeof out->bootstrap) {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "destination '%s': expected kafka://TOPIC or kafka://HOST:PORT[,...]/TOPIC",
                        s);
            return -1;
        }
        const char *p = rest;
        while (p <= slash) {
            const char *comma = memchr(p, ',', (size_t)(slash - p));
            const char *end = comma ? comma : slash;
            if (!valid_hostport(p, (size_t)(end - p))) {
                esm_err_set(err, ESM_ERR_INVALID, false,
                            "destination '%s': bootstrap server '%.*s' is not HOST:PORT", s,
                            (int)(end - p), p);
                return -1;
            }
            p = end + 1;
        }
        snprintf(out->bootstrap, sizeof out->bootstrap, "%.*s", (int)blen, rest);
    }
    out->kind = ESM_DEST_KAFKA;
    snprintf(out->topic, sizeof out->topic, "%s", topic);
    snprintf(out->target, sizeof out->target, "%s", s);
    return 0;
}

static int parse_http(const char *s, esm_dest *out, esm_err *err)
{
    const char *host = strstr(s, "://") + 3;
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0 || host[0] == ':' || host[0] == '@') {
        esm_err_set(err, ESM_ERR_INVALID, false, "destination '%s': the URL has no host", s);
        return -1;
    }
    if (strlen(s) >= sizeof out->target) {
        esm_err_set(err, ESM_ERR_INVALID, false, "destination URL is longer than %zu bytes",
                    sizeof out->target - 1);
        return -1;
    }
    out->kind = ESM_DEST_HTTP;
    snprintf(out->target, sizeof out->target, "%s", s);
    return 0;
}

static int parse_file(const char *s, esm_dest *out, esm_err *err)
{
    const char *path = s + strlen("file://");
    if (has_prefix(path, "localhost/")) path += strlen("localhost");
    if (path[0] != '/') {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': expected file:///ABSOLUTE/PATH (three slashes)", s);
        return -1;
    }
    size_t n = strlen(path);
    if (n < 2 || path[n - 1] == '/' || strlen(path) >= sizeof out->target) {
        esm_err_set(err, ESM_ERR_INVALID, false, "destination '%s': not a file path", s);
        return -1;
    }
    /* reject ".." components: a destination names one file, it does not walk */
    for (const char *p = path; (p = strstr(p, "/..")) != NULL; p += 3) {
        if (p[3] == '/' || p[3] == '\0') {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "destination '%s': the path may not contain '..'", s);
            return -1;
        }
    }
    out->kind = ESM_DEST_FILE;
    snprintf(out->target, sizeof out->target, "%s", path);
    return 0;
}

int esm_dest_parse(const char *s, esm_dest *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        esm_err_set(err, ESM_ERR_INVALID, false, "destination is empty");
        return -1;
    }
    if (has_ctl_or_space(s)) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "destination '%s': contains spaces or control characters", s);
        return -1;
    }
    if (has_prefix(s, "arn:")) return parse_arn(s, out, err);
    if (has_prefix(s, "kafka://")) return parse_kafka(s, out, err);
    if (has_prefix(s, "http://") || has_prefix(s, "https://")) return parse_http(s, out, err);
    if (has_prefix(s, "file://")) return parse_file(s, out, err);
    esm_err_set(err, ESM_ERR_INVALID, false,
                "destination '%s': expected arn:aws:sqs:..., arn:aws:sns:..., kafka://..., "
                "http(s)://... or file:///...",
                s);
    return -1;
}

void esm_dest_redact(const char *s, char *out, size_t out_len)
{
    if (!out_len) return;
    if (!s) s = "";
    if (!has_prefix(s, "http://") && !has_prefix(s, "https://")) {
        snprintf(out, out_len, "%s", s);
        return;
    }
    const char *host = strstr(s, "://") + 3;
    size_t auth_len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', auth_len);
    const char *from = at ? at + 1 : host;
    size_t rest = strcspn(from, "?#");
    snprintf(out, out_len, "%.*s%s%.*s%s", (int)(host - s), s, at ? "***@" : "", (int)rest, from,
             from[rest] ? "?..." : "");
}
