/* The admin API token: admin_token (usually "${VAR}") or admin_token_file (one line; a
 * systemd credential, a mounted secret). Messages never show the token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/esm_config_internal.h"

#define TOKEN_MIN 16
#define TOKEN_MAX 4096

/* Visible ASCII only: it goes into an HTTP header as is, and a space or a control character
 * would be lost or refused on the way. */
static bool token_ok(const char *t, size_t n)
{
    if (n < TOKEN_MIN || n > TOKEN_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x21 || t[i] > 0x7e) return false;
    return true;
}

#define TOKEN_RULE "16 to 4096 visible ASCII characters, no spaces (e.g. openssl rand -hex 32)"

/* The file's text without its final line break; NULL after reporting a problem. */
static char *read_token_file(esm_cfg_ctx *c, const char *path, const char *shown)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        esm_cfg_problem(c, "admin_token_file", "cannot read '%s': %s", shown, strerror(errno));
        return NULL;
    }
    char buf[TOKEN_MAX + 3];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        esm_cfg_problem(c, "admin_token_file", "cannot read '%s': read error", shown);
        return NULL;
    }
    if (n && buf[n - 1] == '\n') n--;
    if (n && buf[n - 1] == '\r') n--;
    char *t = NULL;
    if (token_ok(buf, n))
        t = esm_cfg_xstrndup(buf, n);
    else
        esm_cfg_problem(c, "admin_token_file",
                        "the token in '%s' is not allowed: must be one line of " TOKEN_RULE, shown);
    explicit_bzero(buf, sizeof buf);
    return t;
}

void esm_cfg_parse_admin_token(esm_cfg_ctx *c, const cJSON *root, char **token)
{
    const cJSON *tj = cJSON_GetObjectItemCaseSensitive(root, "admin_token");
    const cJSON *fj = cJSON_GetObjectItemCaseSensitive(root, "admin_token_file");
    if (tj && fj) {
        esm_cfg_problem(c, "admin_token_file",
                        "admin_token and admin_token_file are both set; set only one");
        return;
    }
    char *v = NULL;
    if (tj && esm_cfg_get_string(c, tj, "admin_token", &v)) {
        if (token_ok(v, strlen(v)))
            *token = v;
        else
            esm_cfg_problem(c, "admin_token", "the value is not allowed: must be " TOKEN_RULE);
    }
    if (fj && esm_cfg_get_string(c, fj, "admin_token_file", &v)) {
        if (v[0] != '/')
            esm_cfg_problem(c, "admin_token_file", "'%s' is not allowed: must be an absolute path",
                            fj->valuestring);
        else
            *token = read_token_file(c, v, fj->valuestring);
    }
    if (v && v != *token) {
        explicit_bzero(v, strlen(v));
        free(v);
    }
}
