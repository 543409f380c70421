/* ReportBatchItemFailures parsing with the validity rules of docs/design.md "RBIF validity" (see
 * esm_rbif.h). */
#include "invoker/esm_rbif.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *id;
    size_t index;
} id_entry;

static int cmp_entry(const void *a, const void *b)
{
    const id_entry *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Marks every batch index whose id equals key; false when none does. */
static bool mark_id(const id_entry *sorted, size_t n, const char *key, bool *failed)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* lower bound */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid].id, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool found = false;
    for (size_t i = lo; i < n && strcmp(sorted[i].id, key) == 0; i++) {
        failed[sorted[i].index] = true;
        found = true;
    }
    return found;
}

static void set_why(char *why, size_t why_len, const char *fmt, const char *arg, size_t item)
{
    if (!why || why_len == 0) return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "batchItemFailures[%zu]", item);
    snprintf(why, why_len, fmt, prefix, arg ? arg : "");
}

/* Formats a Kafka identifier object as "<partition>:<offset>"; false when malformed. */
static bool kafka_key(const cJSON *id, char *out, size_t out_len, const char **problem)
{
    if (!cJSON_IsObject(id)) {
        *problem = "%s.itemIdentifier is not a {partition, offset} object";
        return false;
    }
    const cJSON *part = cJSON_GetObjectItemCaseSensitive(id, "partition");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(id, "offset");
    if (!cJSON_IsString(part) || !part->valuestring[0]) {
        *problem = "%s.itemIdentifier.partition is missing or not a non-empty string";
        return false;
    }
    int64_t offset;
    if (cJSON_IsNumber(off)) {
        double d = off->valuedouble;
        if (d < 0 || d > 9007199254740992.0 || d != (double)(int64_t)d) {
            *problem = "%s.itemIdentifier.offset is not a non-negative integer";
            return false;
        }
        offset = (int64_t)d;
    } else if (cJSON_IsString(off) && off->valuestring[0]) {
        const char *s = off->valuestring;
        for (const char *p = s; *p; p++)
            if (!isdigit((unsigned char)*p) || p - s > 18) {
                *problem = "%s.itemIdentifier.offset is not a non-negative integer";
                return false;
            }
        offset = strtoll(s, NULL, 10);
    } else {
        *problem = "%s.itemIdentifier.offset is missing or not a number";
        return false;
    }
    int n = snprintf(out, out_len, "%s:%" PRId64, part->valuestring, offset);
    if (n < 0 || (size_t)n >= out_len) {
        *problem = "%s.itemIdentifier.partition is too long";
        return false;
    }
    return true;
}

esm_rbif_status esm_rbif_parse(const char *body, size_t len, esm_rbif_id_kind kind,
                               const char *const *batch_ids, size_t n_ids, size_t *failed_out,
                               size_t *n_failed, char *why, size_t why_len)
{
    if (n_failed) *n_failed = 0;
    if (why && why_len) why[0] = '\0';
    if (!body) return ESM_RBIF_SUCCESS;
    size_t i = 0;
    while (i < len && isspace((unsigned char)body[i]))
        i++;
    if (i == len) return ESM_RBIF_SUCCESS; /* empty response */

    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) {
        if (why) snprintf(why, why_len, "the function response is not valid JSON");
        return ESM_RBIF_INVALID;
    }
    esm_rbif_status st = ESM_RBIF_SUCCESS;
    id_entry *sorted = NULL;
    bool *failed = NULL;
    const cJSON *list =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "batchItemFailures") : NULL;
    if (!list || cJSON_IsNull(list)) goto out;
    if (!cJSON_IsArray(list)) {
        if (why) snprintf(why, why_len, "batchItemFailures is not an array");
        st = ESM_RBIF_INVALID;
        goto out;
    }
    if (cJSON_GetArraySize(list) == 0) goto out;

    sorted = malloc((n_ids ? n_ids : 1) * sizeof *sorted);
    failed = calloc(n_ids ? n_ids : 1, sizeof *failed);
    if (!sorted || !failed) {
        if (why) snprintf(why, why_len, "out of memory parsing batchItemFailures");
        st = ESM_RBIF_INVALID;
        goto out;
    }
    for (size_t k = 0; k < n_ids; k++) {
        sorted[k].id = batch_ids[k] ? batch_ids[k] : "";
        sorted[k].index = k;
    }
    qsort(sorted, n_ids, sizeof *sorted, cmp_entry);

    size_t item = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, list)
    {
        if (!cJSON_IsObject(el)) {
            set_why(why, why_len, "%s is not an object%s", NULL, item);
            st = ESM_RBIF_INVALID;
            goto out;
        }
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(el, "itemIdentifier");
        if (!id || cJSON_IsNull(id)) {
            set_why(why, why_len, "%s has no itemIdentifier%s", NULL, item);
            st = ESM_RBIF_INVALID;
            goto out;
        }
        char kbuf[512];
        const char *key;
        if (kind == ESM_RBIF_ID_KAFKA) {
            const char *problem = NULL;
            if (!kafka_key(id, kbuf, sizeof kbuf, &problem)) {
                char fmt[128];
                snprintf(fmt, sizeof fmt, "%s%%s", problem);
                set_why(why, why_len, fmt, NULL, item);
                st = ESM_RBIF_INVALID;
                goto out;
            }
            key = kbuf;
        } else {
            if (!cJSON_IsString(id)) {
                set_why(why, why_len, "%s.itemIdentifier is not a string%s", NULL, item);
                st = ESM_RBIF_INVALID;
                goto out;
            }
            if (!id->valuestring[0]) {
                set_why(why, why_len, "%s.itemIdentifier is empty%s", NULL, item);
                st = ESM_RBIF_INVALID;
                goto out;
            }
            key = id->valuestring;
        }
        if (!mark_id(sorted, n_ids, key, failed)) {
            set_why(why, why_len, "%s.itemIdentifier \"%s\" is not in the batch", key, item);
            st = ESM_RBIF_INVALID;
            goto out;
        }
        item++;
    }
    size_t nf = 0;
    for (size_t k = 0; k < n_ids; k++)
        if (failed[k]) {
            if (failed_out) failed_out[nf] = k;
            nf++;
        }
    if (n_failed) *n_failed = nf;
    st = nf ? ESM_RBIF_PARTIAL : ESM_RBIF_SUCCESS;
out:
    free(sorted);
    free(failed);
    cJSON_Delete(root);
    return st;
}

const char *esm_rbif_status_name(esm_rbif_status s)
{
    switch (s) {
    case ESM_RBIF_SUCCESS:
        return "success";
    case ESM_RBIF_PARTIAL:
        return "partial";
    case ESM_RBIF_INVALID:
        return "invalid";
    }
    return "unknown";
}
