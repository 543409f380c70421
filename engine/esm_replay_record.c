#include "engine/esm_replay_record.h"

#include <stdio.h>
#include <string.h>

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* Whether "h1:p1,h2:p2" names a server of the mapping's cluster. */
static bool same_cluster(const char *servers, const esm_mapping_config *m)
{
    for (size_t i = 0; i < m->n_bootstrap_servers; i++) {
        const char *b = m->bootstrap_servers[i], *at = servers;
        size_t bl = strlen(b);
        while (bl && (at = strstr(at, b)) != NULL) {
            bool starts = at == servers || at[-1] == ',';
            if (starts && (at[bl] == '\0' || at[bl] == ',')) return true;
            at += bl;
        }
    }
    return false;
}

/* The source the record names, compared with the mapping's; NULL when they agree. */
static const char *other_source(const cJSON *record, const esm_mapping_config *m)
{
    /* the BatchInfo of each source whose ARN names it, and what a mismatch means */
    static const struct {
        const char *info, *arn, *mismatch;
    } by_arn[] = {
        {"KinesisBatchInfo", "streamArn", "its stream is not the mapping's"},
        {"DDBStreamBatchInfo", "streamArn", "its stream is not the mapping's"},
        {"SQSBatchInfo", "queueArn", "its queue is not the mapping's"},
    };
    for (size_t i = 0; i < sizeof by_arn / sizeof by_arn[0]; i++) {
        const cJSON *bi = cJSON_GetObjectItemCaseSensitive(record, by_arn[i].info);
        if (!bi) continue;
        const char *arn = str(bi, by_arn[i].arn);
        return arn && m->event_source_arn && strcmp(arn, m->event_source_arn) == 0
                   ? NULL
                   : by_arn[i].mismatch;
    }
    const cJSON *kafka = cJSON_GetObjectItemCaseSensitive(record, "KafkaBatchInfo");
    if (kafka) {
        const char *servers = str(kafka, "bootstrapServers");
        if (servers && !same_cluster(servers, m)) return "its cluster is not the mapping's";
        /* the payload's records are keyed "<topic>-<partition>" */
        const cJSON *records = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(record, "payload"), "records");
        if (!cJSON_IsObject(records) || !records->child) return "its payload has no records";
        const cJSON *k;
        cJSON_ArrayForEach(k, records)
        {
            const char *dash = k->string ? strrchr(k->string, '-') : NULL;
            size_t tl = dash ? (size_t)(dash - k->string) : 0;
            if (!m->topic || !dash || strlen(m->topic) != tl || strncmp(k->string, m->topic, tl))
                return "its topic is not the mapping's";
        }
        return NULL;
    }
    return "it has no KinesisBatchInfo, KafkaBatchInfo or SQSBatchInfo: not a failure record";
}

const cJSON *esm_replay_event_of(const cJSON *record, const esm_mapping_config *m, char *why,
                                 size_t why_len)
{
    if (!cJSON_IsObject(record)) {
        snprintf(why, why_len, "not a JSON object");
        return NULL;
    }
    /* two mappings of one source may share a destination: only this one's records */
    const char *fn = str(cJSON_GetObjectItemCaseSensitive(record, "requestContext"), "functionArn");
    if (fn && (!m->function || !m->function->arn || strcmp(fn, m->function->arn) != 0)) {
        snprintf(why, why_len, "its function is not the mapping's (%.120s)", fn);
        return NULL;
    }
    const char *other = other_source(record, m);
    if (other) {
        snprintf(why, why_len, "%s", other);
        return NULL;
    }
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(record, "payload");
    if (!cJSON_IsObject(payload)) {
        snprintf(why, why_len,
                 "it has no payload (the mapping wrote it without "
                 "EsmdOptions.IncludeRecordsInFailureRecord): read its records from the source "
                 "with the positions it names");
        return NULL;
    }
    return payload;
}

bool esm_replay_succeeded(const esm_invoke_result *r, char *why, size_t why_len)
{
    if (r->cls != ESM_INVOKE_SUCCESS) {
        snprintf(why, why_len, "%s: %s", esm_invoke_class_name(r->cls),
                 r->reason[0] ? r->reason : r->function_error);
        return false;
    }
    cJSON *body = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *failures = cJSON_GetObjectItemCaseSensitive(body, "batchItemFailures");
    int n = cJSON_IsArray(failures) ? cJSON_GetArraySize(failures) : 0;
    cJSON_Delete(body);
    if (n > 0) {
        snprintf(why, why_len, "the function reported %d batchItemFailures", n);
        return false;
    }
    return true;
}
