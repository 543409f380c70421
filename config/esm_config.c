/* Loading the config document: top-level keys, the aws block, and the overall parse flow. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "config/esm_config_internal.h"

static const char *const top_keys[] = {
    "state_dir", "admin_listen",           "admin_token", "admin_token_file",      "log_level",
    "aws",       "shutdown_grace_seconds", "functions",   "event_source_mappings", NULL};
static const char *const aws_keys[] = {"region", "endpoints", NULL};
static const char *const endpoint_keys[] = {"sqs", "kinesis", "sns", NULL};

static char *env_dup(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? esm_cfg_xstrdup(v) : NULL;
}

/* host:port with a numeric port 1..65535; host may be a bracketed IPv6 address. */
static bool listen_addr_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1]) return false;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535) return false;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

static void parse_string_field(esm_cfg_ctx *c, const cJSON *root, const char *key, char **dst)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j) return;
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, "", key);
    char *v = NULL;
    if (!esm_cfg_get_string(c, j, p, &v)) return;
    if (!*v) {
        esm_cfg_problem(c, p, "must not be empty");
        free(v);
        return;
    }
    free(*dst);
    *dst = v;
}

static void parse_endpoint(esm_cfg_ctx *c, const cJSON *eps, const char *key, char **dst)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(eps, key);
    if (!j) return;
    char p[ESM_CFG_PATH_MAX];
    snprintf(p, sizeof(p), "aws.endpoints.%s", key);
    char *v = NULL;
    if (!esm_cfg_get_string(c, j, p, &v)) return;
    if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
        esm_cfg_problem(c, p, "'%s' is not allowed: must be an http:// or https:// URL",
                        j->valuestring);
        free(v);
        return;
    }
    *dst = v;
}

static void parse_aws(esm_cfg_ctx *c, const cJSON *aws, esm_config *cfg)
{
    if (!esm_cfg_want_object(c, aws, "aws")) return;
    esm_cfg_check_keys(c, aws, "aws", aws_keys);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(aws, "region");
    char *v = NULL;
    if (r && esm_cfg_get_string(c, r, "aws.region", &v)) {
        if (!*v) {
            esm_cfg_problem(c, "aws.region", "must not be empty");
            free(v);
        } else {
            free(cfg->region);
            cfg->region = v;
        }
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(aws, "endpoints");
    if (!eps || !esm_cfg_want_object(c, eps, "aws.endpoints")) return;
    esm_cfg_check_keys(c, eps, "aws.endpoints", endpoint_keys);
    parse_endpoint(c, eps, "sqs", &cfg->endpoint_sqs);
    parse_endpoint(c, eps, "kinesis", &cfg->endpoint_kinesis);
    parse_endpoint(c, eps, "sns", &cfg->endpoint_sns);
}

static void parse_globals(esm_cfg_ctx *c, const cJSON *root, esm_config *cfg)
{
    parse_string_field(c, root, "state_dir", &cfg->state_dir);
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(root, "admin_listen");
    parse_string_field(c, root, "admin_listen", &cfg->admin_listen);
    if (al && cJSON_IsString(al) && !listen_addr_ok(cfg->admin_listen))
        esm_cfg_problem(c, "admin_listen", "'%s' is not allowed: must be host:port (port 1..65535)",
                        al->valuestring);
    esm_cfg_parse_admin_token(c, root, &cfg->admin_token);
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(root, "log_level");
    parse_string_field(c, root, "log_level", &cfg->log_level);
    if (ll && cJSON_IsString(ll) && esm_log_parse_level(cfg->log_level) < 0)
        esm_cfg_problem(c, "log_level",
                        "'%s' is not allowed; allowed: trace, debug, info, warn, error",
                        ll->valuestring);
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(root, "shutdown_grace_seconds");
    int64_t v;
    if (sg && esm_cfg_get_int(c, sg, "shutdown_grace_seconds", &v)) {
        if (v < 0 || v > 3600)
            esm_cfg_problem(c, "shutdown_grace_seconds",
                            "%lld is not allowed: must be between 0 and 3600", (long long)v);
        else
            cfg->shutdown_grace_seconds = (int)v;
    }
    const cJSON *aws = cJSON_GetObjectItemCaseSensitive(root, "aws");
    if (aws) parse_aws(c, aws, cfg);
}

static void parse_mappings(esm_cfg_ctx *c, const cJSON *arr, esm_config *cfg)
{
    if (!esm_cfg_want_array(c, arr, "event_source_mappings")) return;
    size_t n = (size_t)cJSON_GetArraySize(arr);
    cfg->mappings = esm_cfg_xcalloc(n, sizeof(*cfg->mappings));
    size_t i = 0;
    for (const cJSON *m = arr->child; m; m = m->next, i++) {
        char p[ESM_CFG_PATH_MAX];
        esm_cfg_path_index(p, "event_source_mappings", i);
        esm_cfg_seen seen;
        memset(&seen, 0, sizeof(seen));
        esm_mapping_config *mc = &cfg->mappings[cfg->n_mappings++];
        esm_cfg_parse_mapping(c, m, p, cfg, mc, &seen);
        esm_cfg_validate_mapping(c, p, mc, &seen);
    }
    esm_cfg_validate_mappings(c, cfg);
}

static esm_config *config_new(void)
{
    esm_config *cfg = esm_cfg_xcalloc(1, sizeof(*cfg));
    cfg->state_dir = esm_cfg_xstrdup("/var/lib/esmd");
    cfg->admin_listen = esm_cfg_xstrdup("127.0.0.1:9400");
    cfg->log_level = esm_cfg_xstrdup("info");
    cfg->region = env_dup("AWS_REGION");
    if (!cfg->region) cfg->region = env_dup("AWS_DEFAULT_REGION");
    if (!cfg->region) cfg->region = esm_cfg_xstrdup("us-east-1");
    cfg->access_key_id = env_dup("AWS_ACCESS_KEY_ID");
    cfg->secret_access_key = env_dup("AWS_SECRET_ACCESS_KEY");
    cfg->session_token = env_dup("AWS_SESSION_TOKEN");
    cfg->shutdown_grace_seconds = 30;
    return cfg;
}

static bool only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

/* Offset of a \u0000 escape inside a JSON string, or -1. cJSON would cut the string there and
 * esmd would silently use a shorter value (a path, a URL), so such documents are refused. */
static long nul_escape_offset(const char *json, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '"') {
            in_string = !in_string;
        } else if (in_string && json[i] == '\\' && i + 1 < len) {
            if (json[i + 1] == 'u' && i + 5 < len && strncmp(json + i + 2, "0000", 4) == 0)
                return (long)i;
            i++; /* skip the escaped character (\" and \\ included) */
        }
    }
    return -1;
}

esm_config *esm_config_parse(const char *json, size_t len, esm_config_problems *problems)
{
    esm_config_problems local = {0};
    esm_cfg_ctx c = {.problems = problems ? problems : &local, .now_ms = esm_now_ms()};
    size_t before = c.problems->n;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root || (end && !only_space(end, len - (size_t)(end - json)))) {
        size_t off = end ? (size_t)(end - json) : 0;
        while (root && off < len && json[off] && strchr(" \t\r\n", json[off]))
            off++; /* point at the unexpected content, not the whitespace before it */
        int line, col;
        esm_cfg_line_col(json, len, off, &line, &col);
        esm_cfg_problem(&c, "",
                        root ? "invalid JSON: unexpected content after the document at line %d, "
                               "column %d"
                             : "invalid JSON at line %d, column %d",
                        line, col);
        cJSON_Delete(root);
        esm_config_problems_free(&local);
        return NULL;
    }
    long nul = nul_escape_offset(json, len);
    if (nul >= 0) {
        int line, col;
        esm_cfg_line_col(json, len, (size_t)nul, &line, &col);
        esm_cfg_problem(&c, "",
                        "a string contains \\u0000 at line %d, column %d: NUL characters "
                        "are not allowed in config values",
                        line, col);
        cJSON_Delete(root);
        esm_config_problems_free(&local);
        return NULL;
    }
    esm_config *cfg = config_new();
    if (esm_cfg_want_object(&c, root, "")) {
        esm_cfg_check_keys(&c, root, "", top_keys);
        parse_globals(&c, root, cfg);
        const cJSON *fns = cJSON_GetObjectItemCaseSensitive(root, "functions");
        if (fns) esm_cfg_parse_functions(&c, fns, cfg);
        const cJSON *maps = cJSON_GetObjectItemCaseSensitive(root, "event_source_mappings");
        if (maps) parse_mappings(&c, maps, cfg);
    }
    cJSON_Delete(root);
    bool failed = c.problems->n > before;
    esm_config_problems_free(&local);
    if (failed) {
        esm_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

esm_config *esm_config_load_file(const char *path, esm_config_problems *problems)
{
    esm_config_problems local = {0};
    esm_cfg_ctx c = {.problems = problems ? problems : &local};
    FILE *f = fopen(path, "rb");
    if (!f) {
        esm_cfg_problem(&c, "", "cannot read %s: %s", path, strerror(errno));
        esm_config_problems_free(&local);
        return NULL;
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nd = realloc(data, cap);
            if (!nd) abort();
            data = nd;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    bool err = ferror(f);
    fclose(f);
    esm_config *cfg = NULL;
    if (err)
        esm_cfg_problem(&c, "", "cannot read %s: read error", path);
    else
        cfg = esm_config_parse(data, len, c.problems);
    free(data);
    esm_config_problems_free(&local);
    return cfg;
}

void esm_config_destroy(esm_config *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n_mappings; i++)
        esm_cfg_mapping_free(&cfg->mappings[i]);
    free(cfg->mappings);
    for (size_t i = 0; i < cfg->n_functions; i++)
        esm_cfg_function_free(&cfg->functions[i]);
    free(cfg->functions);
    free(cfg->state_dir);
    free(cfg->admin_listen);
    if (cfg->admin_token) explicit_bzero(cfg->admin_token, strlen(cfg->admin_token));
    free(cfg->admin_token);
    free(cfg->log_level);
    free(cfg->region);
    free(cfg->endpoint_sqs);
    free(cfg->endpoint_kinesis);
    free(cfg->endpoint_sns);
    free(cfg->access_key_id);
    free(cfg->secret_access_key);
    free(cfg->session_token);
    free(cfg);
}

void esm_config_problems_free(esm_config_problems *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].path);
        free(p->items[i].message);
    }
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

void esm_config_log_notes(const esm_config *cfg)
{
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        const esm_mapping_config *m = &cfg->mappings[i];
        if (m->retry_attempts_capped)
            ESM_INFO(m->uuid,
                     "MaximumRetryAttempts -1 with an OnFailure destination on a Kafka source is "
                     "capped to 10 (as AWS does)");
    }
}

void esm_config_problems_print(const esm_config_problems *p, FILE *out)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->items[i].path[0])
            fprintf(out, "%s: %s\n", p->items[i].path, p->items[i].message);
        else
            fprintf(out, "%s\n", p->items[i].message);
    }
}

const char *esm_source_type_name(esm_source_type t)
{
    switch (t) {
    case ESM_SRC_SQS:
        return "sqs";
    case ESM_SRC_KINESIS:
        return "kinesis";
    case ESM_SRC_KAFKA:
        return "kafka";
    }
    return "unknown";
}

const char *esm_starting_position_name(esm_starting_position p)
{
    switch (p) {
    case ESM_START_TRIM_HORIZON:
        return "TRIM_HORIZON";
    case ESM_START_LATEST:
        return "LATEST";
    case ESM_START_AT_TIMESTAMP:
        return "AT_TIMESTAMP";
    case ESM_START_NONE:
        break;
    }
    return NULL;
}
