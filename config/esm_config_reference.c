/* `esmd --config-reference`: the scalar mapping keys of the key table as a markdown table, the
 * block between the config-reference markers of docs/config.md. */
#include <stdio.h>
#include <string.h>

#include "config/esm_config.h"
#include "config/esm_config_keys.h"

static void format_value(const esm_cfg_key *k, int v, char *out, size_t n)
{
    if (k->type == ESM_KEY_BOOL)
        snprintf(out, n, "`%s`", v ? "true" : "false");
    else if (v % k->scale == 0)
        snprintf(out, n, "%d", v / k->scale);
    else
        snprintf(out, n, "%g", (double)v / k->scale);
}

static bool allows(const esm_cfg_key *k, esm_cfg_source_kind kind)
{
    static const esm_source_type source[ESM_KIND_COUNT] = {
        [ESM_KIND_SQS] = ESM_SRC_SQS,
        [ESM_KIND_SQS_FIFO] = ESM_SRC_SQS,
        [ESM_KIND_KINESIS] = ESM_SRC_KINESIS,
        [ESM_KIND_KAFKA] = ESM_SRC_KAFKA,
    };
    return (k->sources & (1u << source[kind])) != 0;
}

/* One value when every source has the same default, else "Q 10, K 100, F 100" (a FIFO queue
 * is shown only where it differs from a standard one). */
static void format_default(const esm_cfg_key *k, char *out, size_t n)
{
    static const char *const label[ESM_KIND_COUNT] = {"Q", "Q FIFO", "K", "F"};
    if (k->default_doc) {
        snprintf(out, n, "%s", k->default_doc);
        return;
    }
    bool same = true;
    for (int kind = 1; kind < ESM_KIND_COUNT; kind++)
        if (allows(k, kind) && k->def[kind] != k->def[0]) same = false;
    if (same) {
        format_value(k, k->def[0], out, n);
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (int kind = 0; kind < ESM_KIND_COUNT && used < n; kind++) {
        if (!allows(k, kind)) continue;
        if (kind == ESM_KIND_SQS_FIFO && k->def[kind] == k->def[ESM_KIND_SQS]) continue;
        char v[32];
        format_value(k, k->def[kind], v, sizeof(v));
        used += (size_t)snprintf(out + used, n - used, "%s%s %s", used ? ", " : "", label[kind], v);
    }
}

/* "Q K F": SQS, Kinesis, Kafka. */
static void format_sources(const esm_cfg_key *k, char out[8])
{
    static const char letter[] = {
        [ESM_SRC_SQS] = 'Q', [ESM_SRC_KINESIS] = 'K', [ESM_SRC_KAFKA] = 'F'};
    size_t used = 0;
    for (int s = ESM_SRC_SQS; s <= ESM_SRC_KAFKA; s++) {
        if (!(k->sources & (1u << s))) continue;
        if (used) out[used++] = ' ';
        out[used++] = letter[s];
    }
    out[used] = '\0';
}

void esm_config_reference_print(FILE *out)
{
    fputs("| Key | Type | Default | Range | Applies to | Meaning |\n"
          "|---|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < ESM_KEY_COUNT; i++) {
        const esm_cfg_key *k = &esm_cfg_keys[i];
        if (!esm_cfg_key_is_scalar(k)) continue;
        const char *parent = esm_cfg_key_parent_path(k->parent);
        char def[128], range[64] = "", sources[8];
        format_default(k, def, sizeof(def));
        format_sources(k, sources);
        if (k->type == ESM_KEY_INT)
            snprintf(range, sizeof(range), "%lld..%lld", (long long)k->lo, (long long)k->hi);
        fprintf(out, "| `%s%s%s` | %s | %s | %s | %s | %s |\n", parent, parent[0] ? "." : "",
                k->key, k->type == ESM_KEY_INT ? "int" : "bool", def, range, sources, k->doc);
    }
}
