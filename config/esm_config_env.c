/* String values: read and ${VAR}-expanded. Problems name the variable, never a value, because
 * the expanded text is often a secret (tokens in headers, credentials in URLs). Built on
 * esm_config_util.c, which does not call back here. */
#include <stdlib.h>
#include <string.h>

#include "common/esm_buf.h"
#include "config/esm_config_internal.h"

static bool var_name_ok(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
                  (i > 0 && ch >= '0' && ch <= '9');
        if (!ok) return false;
    }
    return true;
}

char *esm_cfg_expand(esm_cfg_ctx *c, const char *s, const char *path)
{
    if (!strchr(s, '$')) return esm_cfg_xstrdup(s);
    esm_buf b;
    esm_buf_init(&b);
    bool ok = true;
    const char *p = s;
    while (*p) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') { /* escaped: $${ -> ${ */
            esm_buf_puts(&b, "${");
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            esm_buf_putc(&b, *p++);
            continue;
        }
        const char *name = p + 2;
        const char *end = strchr(name, '}');
        if (!end) {
            esm_cfg_problem(c, path, "unterminated ${ (write $${ for a literal ${)");
            ok = false;
            break;
        }
        size_t n = (size_t)(end - name);
        if (!var_name_ok(name, n)) {
            esm_cfg_problem(c, path, "invalid environment variable name '%.*s' in ${...}",
                            (int)(n > 64 ? 64 : n), name);
            ok = false;
        } else {
            char *var = esm_cfg_xstrndup(name, n);
            const char *val = getenv(var);
            if (!val) {
                esm_cfg_problem(c, path, "environment variable %s is not set", var);
                ok = false;
            } else {
                esm_buf_puts(&b, val);
            }
            free(var);
        }
        p = end + 1;
    }
    if (b.failed) abort();
    char *out = ok ? esm_cfg_xstrdup(esm_buf_cstr(&b)) : NULL;
    esm_buf_free(&b);
    return out;
}

bool esm_cfg_get_string(esm_cfg_ctx *c, const cJSON *j, const char *path, char **out)
{
    *out = NULL;
    if (!cJSON_IsString(j)) {
        esm_cfg_problem(c, path, "must be a string, got %s", esm_cfg_type_name(j));
        return false;
    }
    *out = esm_cfg_expand(c, j->valuestring, path);
    return *out != NULL;
}
