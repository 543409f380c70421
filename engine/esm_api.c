#include "engine/esm_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool esm_api_is_mappings_path(const char *path)
{
    size_t n = strlen(ESM_API_MAPPINGS_PATH);
    return strncmp(path, ESM_API_MAPPINGS_PATH, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* AWS's error body: botocore reads the code from x-amzn-ErrorType, the text from "message". */
static unsigned fail(esm_buf *out, const char **error_type, unsigned status, const char *type,
                     const char *msg)
{
    *error_type = type;
    esm_buf_puts(out, "{\"Type\":\"User\",\"message\":");
    esm_buf_json_cstr(out, msg);
    esm_buf_putc(out, '}');
    return status;
}

/* FunctionName takes a name, a function ARN (with or without a version) or a partial ARN. */
static bool function_matches(const esm_mapping_config *mc, const char *want)
{
    if (!want) return true;
    const char *name = mc->function ? mc->function->name : mc->function_name;
    if (strcmp(want, mc->function_name) == 0 || (name && strcmp(want, name) == 0)) return true;
    if (mc->function && mc->function->arn && strcmp(want, mc->function->arn) == 0) return true;
    const char *tail = strstr(want, ":function:");
    if (!tail || !name) return false;
    tail += strlen(":function:");
    size_t len = strcspn(tail, ":");
    return strlen(name) == len && strncmp(tail, name, len) == 0;
}

static unsigned list(const esm_api_mapping *maps, size_t n, esm_admin_arg_fn get_arg, void *req,
                     esm_buf *out, const char **error_type)
{
    const char *fn = get_arg(req, "FunctionName"), *arn = get_arg(req, "EventSourceArn");
    const char *marker = get_arg(req, "Marker"), *max_items = get_arg(req, "MaxItems");
    long long max = ESM_API_PAGE_MAX, from = 0;
    if (max_items) {
        char *end;
        errno = 0;
        max = strtoll(max_items, &end, 10);
        if (!*max_items || *end || errno || max < 1 || max > 10000)
            return fail(out, error_type, 400, "InvalidParameterValueException",
                        "1 validation error detected: Value at 'maxItems' failed to satisfy "
                        "constraint: Member must have value between 1 and 10000");
        if (max > ESM_API_PAGE_MAX) max = ESM_API_PAGE_MAX;
    }
    if (marker) {
        /* the marker is the UUID of the next mapping: a reload that removes one before it
         * between two pages shifts nothing */
        while ((size_t)from < n && strcmp(maps[from].mc->uuid, marker) != 0)
            from++;
        if ((size_t)from == n)
            return fail(out, error_type, 400, "InvalidParameterValueException",
                        "Marker is not one this API returned, or its mapping was removed since");
    }
    esm_buf_puts(out, "{\"EventSourceMappings\":[");
    long long shown = 0;
    size_t i = (size_t)from;
    for (; i < n && shown < max; i++) {
        const esm_mapping_config *mc = maps[i].mc;
        if (!function_matches(mc, fn)) continue;
        if (arn && (!mc->event_source_arn || strcmp(arn, mc->event_source_arn) != 0)) continue;
        if (shown++) esm_buf_putc(out, ',');
        esm_api_mapping_json(&maps[i], out);
    }
    /* a next page only when another mapping matches */
    size_t next = i;
    while (next < n && (!function_matches(maps[next].mc, fn) ||
                        (arn && (!maps[next].mc->event_source_arn ||
                                 strcmp(arn, maps[next].mc->event_source_arn) != 0))))
        next++;
    esm_buf_putc(out, ']');
    if (next < n) {
        esm_buf_puts(out, ",\"NextMarker\":");
        esm_buf_json_cstr(out, maps[next].mc->uuid);
    }
    esm_buf_putc(out, '}');
    return 200;
}

unsigned esm_api_mappings(const char *method, const char *path, const esm_api_mapping *maps,
                          size_t n, const char *config_path, esm_admin_arg_fn get_arg, void *req,
                          esm_buf *out, const char **error_type)
{
    *error_type = NULL;
    const char *rest = path + strlen(ESM_API_MAPPINGS_PATH);
    if (*rest == '/') rest++;
    bool read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!read) {
        char msg[600];
        snprintf(msg, sizeof msg,
                 "esmd's event source mappings are defined in its config file %.400s: change "
                 "them there and reload (SIGHUP or POST /reload); creating, updating and deleting "
                 "them through this API is not supported yet",
                 config_path ? config_path : "(unknown)");
        return fail(out, error_type, 409, "ResourceConflictException", msg);
    }
    if (!*rest) return list(maps, n, get_arg, req, out, error_type);
    for (size_t i = 0; i < n; i++)
        if (strcmp(maps[i].mc->uuid, rest) == 0) {
            esm_api_mapping_json(&maps[i], out);
            return 200;
        }
    return fail(out, error_type, 404, "ResourceNotFoundException",
                "The resource you requested does not exist.");
}
