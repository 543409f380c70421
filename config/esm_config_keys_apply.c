/* What the key table drives: allowed keys, parsing, defaults, the per-source check and reload
 * equality of the scalar keys. */
#include <stdio.h>
#include <string.h>

#include "config/esm_config_internal.h"

bool esm_cfg_key_is_scalar(const esm_cfg_key *k)
{
    return k->type == ESM_KEY_INT || k->type == ESM_KEY_BOOL;
}

esm_cfg_source_kind esm_cfg_source_kind_of(const esm_mapping_config *m)
{
    switch (m->source) {
    case ESM_SRC_KINESIS:
        return ESM_KIND_KINESIS;
    case ESM_SRC_KAFKA:
        return ESM_KIND_KAFKA;
    case ESM_SRC_SQS:
        break;
    }
    return m->fifo ? ESM_KIND_SQS_FIFO : ESM_KIND_SQS;
}

int esm_cfg_key_get(const esm_mapping_config *m, const esm_cfg_key *k)
{
    const char *at = (const char *)m + k->offset;
    if (k->type == ESM_KEY_BOOL) return *(const bool *)at;
    return *(const int *)at;
}

void esm_cfg_key_set(esm_mapping_config *m, const esm_cfg_key *k, int v)
{
    char *at = (char *)m + k->offset;
    if (k->type == ESM_KEY_BOOL)
        *(bool *)at = v != 0;
    else
        *(int *)at = v;
}

bool esm_cfg_keys_equal(const esm_mapping_config *a, const esm_mapping_config *b)
{
    for (size_t i = 0; i < ESM_KEY_COUNT; i++)
        if (esm_cfg_key_is_scalar(&esm_cfg_keys[i]) &&
            esm_cfg_key_get(a, &esm_cfg_keys[i]) != esm_cfg_key_get(b, &esm_cfg_keys[i]))
            return false;
    return true;
}

bool esm_cfg_keys_check(esm_cfg_ctx *c, const cJSON *obj, const char *path,
                        esm_cfg_key_parent parent)
{
    const char *allowed[ESM_KEY_COUNT + 1];
    size_t n = 0;
    for (size_t i = 0; i < ESM_KEY_COUNT; i++)
        if (esm_cfg_keys[i].parent == parent) allowed[n++] = esm_cfg_keys[i].key;
    allowed[n] = NULL;
    return esm_cfg_check_keys(c, obj, path, allowed);
}

void esm_cfg_key_parse(esm_cfg_ctx *c, const cJSON *obj, const char *path, esm_cfg_key_id id,
                       esm_mapping_config *m, esm_cfg_seen *seen)
{
    const esm_cfg_key *k = &esm_cfg_keys[id];
    char p[ESM_CFG_PATH_MAX];
    esm_cfg_path(p, path, k->key);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, k->key);
    if (!j) return;
    if (k->type == ESM_KEY_BOOL) {
        bool b;
        if (!esm_cfg_get_bool(c, j, p, &b)) return;
        esm_cfg_key_set(m, k, b);
        seen->key[id] = true;
        return;
    }
    int64_t v;
    if (!esm_cfg_get_int(c, j, p, &v)) return;
    if (k->member) {
        if (!esm_cfg_aws_range(c, p, k->member, v, k->lo, k->hi)) return;
    } else if (v < k->lo || v > k->hi) {
        esm_cfg_problem(c, p, "%lld is not allowed: must be between %lld and %lld", (long long)v,
                        (long long)k->lo, (long long)k->hi);
        return;
    }
    esm_cfg_key_set(m, k, (int)(v * k->scale));
    seen->key[id] = true;
}

void esm_cfg_keys_parse(esm_cfg_ctx *c, const cJSON *obj, const char *path,
                        esm_cfg_key_parent parent, esm_mapping_config *m, esm_cfg_seen *seen)
{
    for (size_t i = 0; i < ESM_KEY_COUNT; i++)
        if (esm_cfg_keys[i].parent == parent && esm_cfg_key_is_scalar(&esm_cfg_keys[i]))
            esm_cfg_key_parse(c, obj, path, (esm_cfg_key_id)i, m, seen);
}

static bool same_for_every_kind(const esm_cfg_key *k)
{
    for (int kind = 1; kind < ESM_KIND_COUNT; kind++)
        if (k->def[kind] != k->def[0]) return false;
    return true;
}

void esm_cfg_keys_preset(esm_mapping_config *m)
{
    for (size_t i = 0; i < ESM_KEY_COUNT; i++)
        if (esm_cfg_key_is_scalar(&esm_cfg_keys[i]) && same_for_every_kind(&esm_cfg_keys[i]))
            esm_cfg_key_set(m, &esm_cfg_keys[i], esm_cfg_keys[i].def[0]);
}

void esm_cfg_keys_fill_defaults(esm_mapping_config *m, const esm_cfg_seen *s)
{
    esm_cfg_source_kind kind = esm_cfg_source_kind_of(m);
    for (size_t i = 0; i < ESM_KEY_COUNT; i++)
        if (esm_cfg_key_is_scalar(&esm_cfg_keys[i]) && !s->key[i])
            esm_cfg_key_set(m, &esm_cfg_keys[i], esm_cfg_keys[i].def[kind]);
}

void esm_cfg_keys_unsupported(esm_cfg_ctx *c, const char *path, const esm_mapping_config *m,
                              const esm_cfg_seen *s)
{
    for (size_t i = 0; i < ESM_KEY_COUNT; i++) {
        const esm_cfg_key *k = &esm_cfg_keys[i];
        if (!esm_cfg_key_is_scalar(k) || !s->key[i] || (k->sources & (1u << m->source))) continue;
        /* AWS names the mapping's own parameter: ScalingConfig, not its member. */
        const char *outer = esm_cfg_key_parent_path(k->parent);
        char name[ESM_CFG_PATH_MAX];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(outer, "."), outer);
        esm_cfg_unsupported(c, path, name[0] ? name : k->key);
    }
}
