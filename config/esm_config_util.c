/* Problem collection, allocation and JSON access helpers for the config loader. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/esm_config_internal.h"

void *esm_cfg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) abort();
    return p;
}

char *esm_cfg_xstrdup(const char *s)
{
    return s ? esm_cfg_xstrndup(s, strlen(s)) : NULL;
}

char *esm_cfg_xstrndup(const char *s, size_t n)
{
    char *p = esm_cfg_xcalloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

void esm_cfg_problem(esm_cfg_ctx *c, const char *path, const char *fmt, ...)
{
    esm_config_problems *p = c->problems;
    esm_config_problem *items = realloc(p->items, (p->n + 1) * sizeof(*items));
    if (!items) abort();
    p->items = items;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) abort();
    va_end(ap);
    items[p->n].path = esm_cfg_xstrdup(path ? path : "");
    items[p->n].message = msg;
    p->n++;
}

bool esm_cfg_aws_range(esm_cfg_ctx *c, const char *path, const char *member, int64_t v, int64_t lo,
                       int64_t hi)
{
    if (v < lo) {
        esm_cfg_problem(c, path,
                        "1 validation error detected: Value '%lld' at '%s' failed to satisfy "
                        "constraint: Member must have value greater than or equal to %lld",
                        (long long)v, member, (long long)lo);
        return false;
    }
    if (v > hi) {
        esm_cfg_problem(c, path,
                        "1 validation error detected: Value '%lld' at '%s' failed to satisfy "
                        "constraint: Member must have value less than or equal to %lld",
                        (long long)v, member, (long long)hi);
        return false;
    }
    return true;
}

void esm_cfg_unsupported(esm_cfg_ctx *c, const char *mapping_path, const char *field)
{
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, mapping_path, field);
    esm_cfg_problem(c, p, "Unsupported %s parameter for given event source mapping type.", field);
}

void esm_cfg_path(char *out, const char *parent, const char *key)
{
    if (!parent || !*parent)
        snprintf(out, ESM_CFG_PATH_MAX, "%s", key);
    else
        snprintf(out, ESM_CFG_PATH_MAX, "%s.%s", parent, key);
}

void esm_cfg_path_index(char *out, const char *parent, size_t i)
{
    snprintf(out, ESM_CFG_PATH_MAX, "%s[%zu]", parent ? parent : "", i);
}

const char *esm_cfg_type_name(const cJSON *j)
{
    if (!j) return "nothing";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    return "an invalid value";
}

bool esm_cfg_want_object(esm_cfg_ctx *c, const cJSON *j, const char *path)
{
    if (cJSON_IsObject(j)) return true;
    esm_cfg_problem(c, path, "must be an object, got %s", esm_cfg_type_name(j));
    return false;
}

bool esm_cfg_want_array(esm_cfg_ctx *c, const cJSON *j, const char *path)
{
    if (cJSON_IsArray(j)) return true;
    esm_cfg_problem(c, path, "must be an array, got %s", esm_cfg_type_name(j));
    return false;
}

bool esm_cfg_check_keys(esm_cfg_ctx *c, const cJSON *obj, const char *path,
                        const char *const *allowed)
{
    bool ok = true;
    for (const cJSON *k = obj->child; k; k = k->next) {
        char p[ESM_CFG_PATH_MAX];
        esm_cfg_path(p, path, k->string);
        for (const cJSON *prev = obj->child; prev != k; prev = prev->next) {
            if (strcmp(prev->string, k->string) == 0) {
                esm_cfg_problem(c, p, "duplicate key");
                ok = false;
                break;
            }
        }
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], k->string) == 0) known = true;
        if (known) continue;
        ok = false;
        /* The allowed list is short; build it into the message. */
        char list[1024] = "";
        size_t used = 0;
        for (size_t i = 0; allowed[i] && used < sizeof(list); i++)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                     allowed[i]);
        esm_cfg_problem(c, p, "unknown key; allowed: %s", list);
    }
    return ok;
}

void esm_cfg_format_number(double d, char *out, size_t n)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 1e18)
        snprintf(out, n, "%lld", (long long)d);
    else
        snprintf(out, n, "%g", d);
}

bool esm_cfg_get_int(esm_cfg_ctx *c, const cJSON *j, const char *path, int64_t *out)
{
    if (!cJSON_IsNumber(j)) {
        esm_cfg_problem(c, path, "must be an integer, got %s", esm_cfg_type_name(j));
        return false;
    }
    double d = j->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e15) {
        char num[64];
        esm_cfg_format_number(d, num, sizeof(num));
        esm_cfg_problem(c, path, "must be an integer, got %s", num);
        return false;
    }
    *out = (int64_t)d;
    return true;
}

bool esm_cfg_get_bool(esm_cfg_ctx *c, const cJSON *j, const char *path, bool *out)
{
    if (!cJSON_IsBool(j)) {
        esm_cfg_problem(c, path, "must be true or false, got %s", esm_cfg_type_name(j));
        return false;
    }
    *out = cJSON_IsTrue(j);
    return true;
}

void esm_cfg_line_col(const char *text, size_t len, size_t offset, int *line, int *col)
{
    int l = 1, k = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            k = 1;
        } else {
            k++;
        }
    }
    *line = l;
    *col = k;
}

/* Kafka topic names: 1..249 characters of a-z A-Z 0-9 . _ -, not starting with '.'. */
bool esm_cfg_kafka_topic_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 249 || s[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* host:port; the port has 1..5 digits and is 1..65535. */
bool esm_cfg_host_port_ok(const char *s)
{
    size_t n = strlen(s);
    const char *colon = strrchr(s, ':');
    if (n < 1 || n > 300 || !colon || colon == s) return false;
    size_t digits = strlen(colon + 1);
    if (digits < 1 || digits > 5) return false;
    long port = 0;
    for (const char *q = colon + 1; *q; q++) {
        if (*q < '0' || *q > '9') return false;
        port = port * 10 + (*q - '0');
    }
    return port >= 1 && port <= 65535;
}
