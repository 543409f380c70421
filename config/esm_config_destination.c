/* DestinationConfig.OnFailure.Destination strings esmd can deliver to. http(s) URLs are never
 * echoed in messages: they may carry credentials. */
#include <stdlib.h>
#include <string.h>

#include "config/esm_config_internal.h"

static const char *const allowed_hint =
    "allowed: arn:aws:sqs:REGION:ACCOUNT:QUEUE, arn:aws:sns:REGION:ACCOUNT:TOPIC, kafka://TOPIC "
    "(Kafka sources), kafka://HOST:PORT/TOPIC, http(s)://..., file:///ABSOLUTE/PATH";

/* arn:aws:SERVICE:REGION:ACCOUNT:NAME with non-empty parts; returns NAME or NULL. */
static const char *arn_name(const char *d, const char *service)
{
    size_t sl = strlen(service);
    if (strncmp(d, "arn:aws", 7) != 0) return NULL;
    const char *p = strchr(d + 4, ':'); /* after the partition */
    if (!p || strncmp(p + 1, service, sl) != 0 || p[1 + sl] != ':') return NULL;
    p += 2 + sl; /* region */
    const char *acct = strchr(p, ':');
    if (!acct || acct == p) return NULL;
    const char *name = strchr(acct + 1, ':');
    if (!name || name == acct + 1 || !name[1] || strchr(name + 1, ':')) return NULL;
    return name + 1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void check_kafka_dest(esm_cfg_ctx *c, const char *path, const char *dest,
                             esm_source_type src, bool source_known, const char *topic)
{
    const char *rest = dest + strlen("kafka://");
    const char *slash = strchr(rest, '/');
    if (slash) { /* kafka://host:port/topic: another cluster */
        char *hp = esm_cfg_xstrndup(rest, (size_t)(slash - rest));
        bool ok = esm_cfg_host_port_ok(hp) && esm_cfg_kafka_topic_ok(slash + 1);
        free(hp);
        if (!ok)
            esm_cfg_problem(c, path,
                            "'%s' is not allowed: must be kafka://HOST:PORT/TOPIC with a valid "
                            "topic name",
                            dest);
        return;
    }
    if (!esm_cfg_kafka_topic_ok(rest)) {
        esm_cfg_problem(c, path, "'%s' is not allowed: '%s' is not a valid Kafka topic name", dest,
                        rest);
        return;
    }
    if (source_known && src != ESM_SRC_KAFKA) {
        esm_cfg_problem(c, path,
                        "'%s' is not allowed: kafka://TOPIC names a topic on the source cluster, "
                        "so it needs a Kafka source; use kafka://HOST:PORT/TOPIC",
                        dest);
        return;
    }
    if (topic && strcmp(topic, rest) == 0)
        esm_cfg_problem(c, path,
                        "'%s' is not allowed: the destination topic must differ from the source "
                        "topic",
                        dest);
}

void esm_cfg_check_destination(esm_cfg_ctx *c, const char *path, const char *dest,
                               esm_source_type src, bool source_known, const char *topic)
{
    if (strlen(dest) > 350) {
        esm_cfg_problem(c, path,
                        "1 validation error detected: Value at 'destinationConfig.onFailure."
                        "destination' failed to satisfy constraint: Member must have length less "
                        "than or equal to 350");
        return;
    }
    const char *name;
    if ((name = arn_name(dest, "sqs")) || (name = arn_name(dest, "sns"))) {
        if (ends_with(name, ".fifo"))
            esm_cfg_problem(c, path,
                            "'%s' is not allowed: FIFO queues and topics are not supported as "
                            "destinations",
                            dest);
        return;
    }
    if (strncmp(dest, "arn:aws:s3:", 11) == 0) {
        esm_cfg_problem(c, path, "'%s' is not allowed: S3 destinations are not supported; %s", dest,
                        allowed_hint);
        return;
    }
    if (strncmp(dest, "kafka://", 8) == 0) {
        check_kafka_dest(c, path, dest, src, source_known, topic);
        return;
    }
    if (strncmp(dest, "http://", 7) == 0 || strncmp(dest, "https://", 8) == 0) {
        const char *host = strstr(dest, "://") + 3;
        if (!*host || *host == '/')
            esm_cfg_problem(c, path, "the http(s) destination URL has no host");
        return;
    }
    if (strncmp(dest, "file://", 7) == 0) {
        const char *fp = dest + 7;
        if (fp[0] != '/' || !fp[1] || ends_with(fp, "/"))
            esm_cfg_problem(c, path, "'%s' is not allowed: must be file:///ABSOLUTE/PATH to a file",
                            dest);
        return;
    }
    if (strncmp(dest, "arn:", 4) == 0)
        esm_cfg_problem(c, path, "'%s' is not a supported destination; %s", dest, allowed_hint);
    else
        esm_cfg_problem(c, path, "not a supported destination; %s", allowed_hint);
}
