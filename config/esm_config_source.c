/* EventSourceArn classification: which poller a mapping needs, and the names in the ARN. */
#include <stdlib.h>
#include <string.h>

#include "config/esm_config_internal.h"

/* Splits "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE" (RESOURCE may contain ':'). */
static bool split_arn(const char *arn, char *parts[6])
{
    memset(parts, 0, 6 * sizeof(char *));
    const char *p = arn;
    for (int i = 0; i < 5; i++) {
        const char *colon = strchr(p, ':');
        if (!colon) {
            for (int k = 0; k < i; k++)
                free(parts[k]);
            memset(parts, 0, 6 * sizeof(char *));
            return false;
        }
        parts[i] = esm_cfg_xstrndup(p, (size_t)(colon - p));
        p = colon + 1;
    }
    parts[5] = esm_cfg_xstrdup(p);
    bool ok = strcmp(parts[0], "arn") == 0 && strncmp(parts[1], "aws", 3) == 0;
    return ok;
}

static void free_parts(char *parts[6])
{
    for (int i = 0; i < 6; i++)
        free(parts[i]);
}

static bool sqs_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 80) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
                  (ch == '.' && strcmp(s + i, ".fifo") == 0);
        if (!ok) return false;
    }
    return true;
}

static bool stream_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

static const char *const supported_hint =
    "supported: arn:aws:sqs:REGION:ACCOUNT:QUEUE, arn:aws:kinesis:REGION:ACCOUNT:stream/NAME, or "
    "no EventSourceArn plus SelfManagedEventSource for Kafka";

bool esm_cfg_parse_source_arn(esm_cfg_ctx *c, const char *arn, const char *path,
                              esm_mapping_config *m)
{
    char *parts[6];
    if (!split_arn(arn, parts)) {
        free_parts(parts);
        esm_cfg_problem(c, path, "'%s' is not an event source ARN; %s", arn, supported_hint);
        return false;
    }
    const char *svc = parts[2], *region = parts[3], *acct = parts[4], *res = parts[5];
    bool ok = false;
    if (strcmp(svc, "sqs") == 0) {
        if (!*region || !*acct || !sqs_name_ok(res)) {
            esm_cfg_problem(c, path,
                            "'%s' is not a valid SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:QUEUE)",
                            arn);
        } else {
            m->source = ESM_SRC_SQS;
            size_t n = strlen(res);
            m->fifo = n > 5 && strcmp(res + n - 5, ".fifo") == 0;
            ok = true;
        }
    } else if (strcmp(svc, "kinesis") == 0) {
        const char *name = strncmp(res, "stream/", 7) == 0 ? res + 7 : NULL;
        if (name && strstr(name, "/consumer/")) {
            esm_cfg_problem(c, path,
                            "'%s' is a Kinesis enhanced fan-out consumer ARN; EFO is not supported "
                            "yet, use the stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)",
                            arn);
        } else if (!name || !*region || !*acct || !stream_name_ok(name)) {
            esm_cfg_problem(c, path,
                            "'%s' is not a valid Kinesis stream ARN "
                            "(arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)",
                            arn);
        } else {
            m->source = ESM_SRC_KINESIS;
            res = name;
            ok = true;
        }
    } else if (strcmp(svc, "kafka") == 0) {
        esm_cfg_problem(c, path, "MSK is not supported; use SelfManagedEventSource");
    } else {
        esm_cfg_problem(c, path, "'%s': event source service '%s' is not supported; %s", arn, svc,
                        supported_hint);
    }
    if (ok) {
        m->source_region = esm_cfg_xstrdup(region);
        m->source_account = esm_cfg_xstrdup(acct);
        m->source_name = esm_cfg_xstrdup(res);
    }
    free_parts(parts);
    return ok;
}
