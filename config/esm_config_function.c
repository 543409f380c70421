/* The "functions" block: how each function is invoked, and resolving a FunctionName. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/esm_config_internal.h"

static const char *const function_keys[] = {
    "url", "protocol", "timeout_seconds", "max_concurrency", "headers", "arn", NULL};

/* AWS function names: 1..64 of [a-zA-Z0-9-_]. Anything else would not resolve by name. */
static bool function_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* RFC 7230 token characters for header names. */
static bool header_name_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch)) return false;
    }
    return true;
}

static void parse_headers(esm_cfg_ctx *c, const cJSON *j, const char *path, esm_function_config *f)
{
    if (!esm_cfg_want_object(c, j, path)) return;
    size_t n = (size_t)cJSON_GetArraySize(j);
    f->headers = esm_cfg_xcalloc(n, sizeof(*f->headers));
    for (const cJSON *h = j->child; h; h = h->next) {
        char p[ESM_CFG_PATH_MAX];
        esm_cfg_path(p, path, h->string);
        if (!header_name_ok(h->string)) {
            esm_cfg_problem(c, p, "'%s' is not a valid HTTP header name", h->string);
            continue;
        }
        char *v = NULL;
        if (!esm_cfg_get_string(c, h, p, &v)) continue;
        if (strpbrk(v, "\r\n")) { /* never echo the value: it is usually a secret */
            esm_cfg_problem(c, p, "header value must not contain CR or LF");
            free(v);
            continue;
        }
        f->headers[f->n_headers].name = esm_cfg_xstrdup(h->string);
        f->headers[f->n_headers].value = v;
        f->n_headers++;
    }
}

static void parse_int_range(esm_cfg_ctx *c, const cJSON *fj, const char *fpath, const char *key,
                            int lo, int hi, int *dst)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(fj, key);
    if (!j) return;
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, fpath, key);
    int64_t v;
    if (!esm_cfg_get_int(c, j, p, &v)) return;
    if (v < lo || v > hi) {
        esm_cfg_problem(c, p, "%lld is not allowed: must be between %d and %d", (long long)v, lo,
                        hi);
        return;
    }
    *dst = (int)v;
}

static void parse_function(esm_cfg_ctx *c, const cJSON *fj, const char *region,
                           esm_function_config *f)
{
    char fpath[ESM_CFG_PATH_MAX], p[ESM_CFG_PATH_MAX];
    esm_cfg_path(fpath, "functions", fj->string);
    f->name = esm_cfg_xstrdup(fj->string);
    f->protocol = ESM_PROTO_LAMBDA;
    f->timeout_seconds = 30;
    f->max_concurrency = 10;
    if (!function_name_ok(f->name))
        esm_cfg_problem(c, fpath,
                        "function name '%s' is not allowed: 1 to 64 characters of a-z, A-Z, 0-9, "
                        "- and _",
                        f->name);
    if (!esm_cfg_want_object(c, fj, fpath)) return;
    esm_cfg_check_keys(c, fj, fpath, function_keys);

    const cJSON *url = cJSON_GetObjectItemCaseSensitive(fj, "url");
    esm_cfg_path(p, fpath, "url");
    if (!url) {
        esm_cfg_problem(c, p,
                        "is required (the http:// or https:// URL that invokes the function)");
    } else if (esm_cfg_get_string(c, url, p, &f->url)) {
        if (strncmp(f->url, "http://", 7) != 0 && strncmp(f->url, "https://", 8) != 0)
            /* Quote the value as written: ${VAR} references, not what they expand to. */
            esm_cfg_problem(c, p, "'%s' is not allowed: must be an http:// or https:// URL",
                            url->valuestring);
    }

    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(fj, "protocol");
    esm_cfg_path(p, fpath, "protocol");
    char *ps = NULL;
    if (proto && esm_cfg_get_string(c, proto, p, &ps)) {
        if (strcmp(ps, "lambda") == 0)
            f->protocol = ESM_PROTO_LAMBDA;
        else if (strcmp(ps, "http") == 0)
            f->protocol = ESM_PROTO_HTTP;
        else
            esm_cfg_problem(c, p, "'%s' is not allowed; allowed: lambda, http", ps);
    }
    free(ps);

    parse_int_range(c, fj, fpath, "timeout_seconds", 1, 900, &f->timeout_seconds);
    parse_int_range(c, fj, fpath, "max_concurrency", 1, 1000, &f->max_concurrency);

    const cJSON *h = cJSON_GetObjectItemCaseSensitive(fj, "headers");
    esm_cfg_path(p, fpath, "headers");
    if (h) parse_headers(c, h, p, f);

    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(fj, "arn");
    esm_cfg_path(p, fpath, "arn");
    if (arn && esm_cfg_get_string(c, arn, p, &f->arn)) {
        if (strncmp(f->arn, "arn:", 4) != 0 || !strstr(f->arn, ":lambda:") ||
            !strstr(f->arn, ":function:"))
            esm_cfg_problem(c, p,
                            "'%s' is not allowed: must be a function ARN "
                            "(arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                            arn->valuestring);
    }
    if (!f->arn) {
        char buf[512];
        snprintf(buf, sizeof(buf), "arn:aws:lambda:%s:000000000000:function:%s", region, f->name);
        f->arn = esm_cfg_xstrdup(buf);
    }
}

void esm_cfg_parse_functions(esm_cfg_ctx *c, const cJSON *j, esm_config *cfg)
{
    if (!esm_cfg_want_object(c, j, "functions")) return;
    size_t n = (size_t)cJSON_GetArraySize(j);
    cfg->functions = esm_cfg_xcalloc(n, sizeof(*cfg->functions));
    for (const cJSON *fj = j->child; fj; fj = fj->next) {
        bool dup = false;
        for (size_t i = 0; i < cfg->n_functions; i++)
            if (strcmp(cfg->functions[i].name, fj->string) == 0) dup = true;
        if (dup) {
            char p[ESM_CFG_PATH_MAX];
            esm_cfg_path(p, "functions", fj->string);
            esm_cfg_problem(c, p, "duplicate key");
            continue;
        }
        parse_function(c, fj, cfg->region, &cfg->functions[cfg->n_functions++]);
    }
}

char *esm_cfg_function_name_part(const char *ref)
{
    if (!ref) ref = ""; /* a function whose "arn" had a problem */
    const char *start = ref;
    const char *fn = strstr(ref, ":function:");
    if (fn) start = fn + strlen(":function:"); /* full or partial ARN */
    const char *colon = strchr(start, ':');    /* drop a :qualifier (version or alias) */
    return colon ? esm_cfg_xstrndup(start, (size_t)(colon - start)) : esm_cfg_xstrdup(start);
}

const esm_function_config *esm_config_find_function(const esm_config *cfg, const char *name_or_arn)
{
    if (!cfg || !name_or_arn) return NULL;
    char *name = esm_cfg_function_name_part(name_or_arn);
    const esm_function_config *found = NULL;
    for (size_t i = 0; i < cfg->n_functions && !found; i++)
        if (strcmp(cfg->functions[i].name, name) == 0) found = &cfg->functions[i];
    /* An explicit "arn" may carry a different name than the key. */
    for (size_t i = 0; i < cfg->n_functions && !found; i++) {
        char *an = esm_cfg_function_name_part(cfg->functions[i].arn);
        if (strcmp(an, name) == 0) found = &cfg->functions[i];
        free(an);
    }
    free(name);
    return found;
}

void esm_cfg_function_free(esm_function_config *f)
{
    free(f->name);
    free(f->url);
    for (size_t i = 0; i < f->n_headers; i++) {
        free(f->headers[i].name);
        free(f->headers[i].value);
    }
    free(f->headers);
    free(f->arn);
}
