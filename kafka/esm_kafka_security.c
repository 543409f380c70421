/* A mapping's security settings as librdkafka properties (kafka/esm_kafka_client.h):
 * SourceAccessConfigurations with env:/file: secrets, and the security keys of
 * KafkaProperties. */
#include "kafka/esm_kafka_client.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_MAX (1024 * 1024)

/* A secret value is zeroed before its memory is given back. */
static void wipe_value(esm_kafka_prop *it)
{
    if (it->secret && it->value) memset(it->value, 0, strlen(it->value));
}

/* The parsed secret document, zeroed before cJSON frees it. */
static void wipe_json(cJSON *j)
{
    for (cJSON *c = j; c; c = c->next) {
        if (c->valuestring) memset(c->valuestring, 0, strlen(c->valuestring));
        wipe_json(c->child);
    }
}

void esm_kafka_props_free(esm_kafka_props *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        wipe_value(&p->items[i]);
        free(p->items[i].name);
        free(p->items[i].value);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

const char *esm_kafka_props_get(const esm_kafka_props *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0) return p->items[i].value;
    return NULL;
}

void esm_kafka_props_unset(esm_kafka_props *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].name, name) != 0) continue;
        wipe_value(&p->items[i]);
        free(p->items[i].name);
        free(p->items[i].value);
        memmove(&p->items[i], &p->items[i + 1], (p->n - i - 1) * sizeof p->items[0]);
        p->n--;
        return;
    }
}

int esm_kafka_props_set(esm_kafka_props *p, const char *name, const char *value, bool secret)
{
    char *v = strdup(value);
    if (!v) return -1;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].name, name) != 0) continue;
        wipe_value(&p->items[i]);
        free(p->items[i].value);
        p->items[i].value = v;
        p->items[i].secret = secret;
        return 0;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        esm_kafka_prop *items = realloc(p->items, cap * sizeof *items);
        if (!items) {
            free(v);
            return -1;
        }
        p->items = items;
        p->cap = cap;
    }
    char *n = strdup(name);
    if (!n) {
        free(v);
        return -1;
    }
    p->items[p->n++] = (esm_kafka_prop){.name = n, .value = v, .secret = secret};
    return 0;
}

char *esm_kafka_secret_read(const char *uri, esm_err *err)
{
    if (strncmp(uri, "env:", 4) == 0) {
        const char *v = getenv(uri + 4);
        if (!v) {
            esm_err_set(err, ESM_ERR_INVALID, false, "secret %s: the variable is not set", uri);
            return NULL;
        }
        char *r = strdup(v);
        if (!r) esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return r;
    }
    if (strncmp(uri, "file:", 5) == 0) {
        const char *path = uri + 5;
        FILE *f = fopen(path, "rb");
        if (!f) {
            esm_err_set(err, ESM_ERR_IO, false, "secret %s: %s", uri, strerror(errno));
            return NULL;
        }
        char *buf = malloc(SECRET_MAX + 1);
        size_t n = buf ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
        bool bad = ferror(f) || n > SECRET_MAX;
        fclose(f);
        if (!buf || bad) {
            free(buf);
            esm_err_set(err, ESM_ERR_IO, false, "secret %s: cannot read it (or over 1 MiB)", uri);
            return NULL;
        }
        buf[n] = '\0';
        return buf;
    }
    esm_err_set(err, ESM_ERR_INVALID, false,
                "secret '%s': esmd reads secrets from env:VARIABLE or file:/path (Secrets "
                "Manager ARNs are not fetched)",
                uri);
    return NULL;
}

/* The string field name of the secret JSON, or NULL (err set when required). */
static const char *secret_field(const cJSON *j, const char *name, bool required, const char *uri,
                                esm_err *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, name);
    if (cJSON_IsString(f) && f->valuestring[0]) return f->valuestring;
    if (required)
        esm_err_set(err, ESM_ERR_INVALID, false, "secret %s: the JSON has no string \"%s\"", uri,
                    name);
    return NULL;
}

typedef struct {
    const char *sasl_mechanism; /* NULL: no SASL */
    bool tls_client, root_ca;
} access_seen;

static int apply_access(esm_kafka_props *p, const esm_source_access *a, access_seen *seen,
                        esm_err *err)
{
    const char *mech = NULL;
    if (strcmp(a->type, "BASIC_AUTH") == 0)
        mech = "PLAIN";
    else if (strcmp(a->type, "SASL_SCRAM_256_AUTH") == 0)
        mech = "SCRAM-SHA-256";
    else if (strcmp(a->type, "SASL_SCRAM_512_AUTH") == 0)
        mech = "SCRAM-SHA-512";
    else if (strcmp(a->type, "CLIENT_CERTIFICATE_TLS_AUTH") != 0 &&
             strcmp(a->type, "SERVER_ROOT_CA_CERTIFICATE") != 0)
        return 0; /* VPC_SUBNET, VPC_SECURITY_GROUP: nothing to do here */
    if (mech && seen->sasl_mechanism) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "SourceAccessConfigurations: only one SASL authentication type is allowed");
        return -1;
    }
    char *text = esm_kafka_secret_read(a->uri, err);
    if (!text) return -1;
    cJSON *j = cJSON_Parse(text);
    memset(text, 0, strlen(text));
    free(text);
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        esm_err_set(err, ESM_ERR_INVALID, false, "secret %s (%s): not a JSON object", a->uri,
                    a->type);
        goto out;
    }
    if (mech) {
        const char *u = secret_field(j, "username", true, a->uri, err);
        const char *pw = u ? secret_field(j, "password", true, a->uri, err) : NULL;
        if (!pw) goto out;
        if (esm_kafka_props_set(p, "sasl.mechanism", mech, false) ||
            esm_kafka_props_set(p, "sasl.username", u, false) ||
            esm_kafka_props_set(p, "sasl.password", pw, true))
            goto nomem;
        seen->sasl_mechanism = mech;
    } else if (strcmp(a->type, "CLIENT_CERTIFICATE_TLS_AUTH") == 0) {
        const char *cert = secret_field(j, "certificate", true, a->uri, err);
        const char *key = cert ? secret_field(j, "privateKey", true, a->uri, err) : NULL;
        if (!key) goto out;
        const char *kpw = secret_field(j, "privateKeyPassword", false, a->uri, err);
        if (esm_kafka_props_set(p, "ssl.certificate.pem", cert, false) ||
            esm_kafka_props_set(p, "ssl.key.pem", key, true) ||
            (kpw && esm_kafka_props_set(p, "ssl.key.password", kpw, true)))
            goto nomem;
        seen->tls_client = true;
    } else {
        const char *cert = secret_field(j, "certificate", true, a->uri, err);
        if (!cert) goto out;
        if (esm_kafka_props_set(p, "ssl.ca.pem", cert, false)) goto nomem;
        seen->root_ca = true;
    }
    rc = 0;
    goto out;
nomem:
    esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
out:
    wipe_json(j);
    cJSON_Delete(j);
    return rc;
}

int esm_kafka_props_add_access(esm_kafka_props *p, const esm_mapping_config *m, esm_err *err)
{
    access_seen seen = {0};
    for (size_t i = 0; i < m->n_source_access; i++)
        if (apply_access(p, &m->source_access[i], &seen, err) != 0) return -1;
    const char *proto = NULL;
    if (seen.sasl_mechanism)
        proto = "SASL_SSL";
    else if (seen.tls_client || seen.root_ca)
        proto = "SSL";
    if (proto && esm_kafka_props_set(p, "security.protocol", proto, false)) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return -1;
    }
    return 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool esm_kafka_security_key(const char *name)
{
    return has_prefix(name, "security.") || has_prefix(name, "sasl.") || has_prefix(name, "ssl.") ||
           has_prefix(name, "ssl_") || has_prefix(name, "enable.ssl.") ||
           has_prefix(name, "enable.sasl.");
}

bool esm_kafka_secret_key(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") || strcmp(name, "ssl.key.pem") == 0 ||
           strcmp(name, "sasl.oauthbearer.config") == 0;
}

int esm_kafka_props_add_security(esm_kafka_props *p, const esm_mapping_config *m, esm_err *err)
{
    if (esm_kafka_props_add_access(p, m, err) != 0) return -1;
    for (size_t i = 0; i < m->n_kafka_properties; i++) {
        const esm_kv *kv = &m->kafka_properties[i];
        if (!esm_kafka_security_key(kv->name)) continue;
        if (esm_kafka_props_set(p, kv->name, kv->value, esm_kafka_secret_key(kv->name))) {
            esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
            return -1;
        }
    }
    return 0;
}

void esm_kafka_security_identity(const esm_mapping_config *m, esm_buf *out)
{
    for (size_t i = 0; i < m->n_source_access; i++) {
        const esm_source_access *a = &m->source_access[i];
        /* the fingerprint: a rotated secret gets a producer of its own */
        esm_buf_printf(out, "access %s %s %llx\n", a->type, a->uri,
                       (unsigned long long)a->fingerprint);
    }
    for (size_t i = 0; i < m->n_kafka_properties; i++) {
        const esm_kv *kv = &m->kafka_properties[i];
        if (esm_kafka_security_key(kv->name)) esm_buf_printf(out, "%s=%s\n", kv->name, kv->value);
    }
}

void esm_kafka_secrets_fingerprint(esm_config *cfg)
{
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        esm_mapping_config *m = &cfg->mappings[i];
        for (size_t j = 0; j < m->n_source_access; j++) {
            esm_err err = {0};
            char *text = esm_kafka_secret_read(m->source_access[j].uri, &err);
            uint64_t h = 0;
            if (text) {
                h = 14695981039346656037ull; /* FNV-1a: a change detector, not a digest */
                for (const unsigned char *c = (const unsigned char *)text; *c; c++)
                    h = (h ^ *c) * 1099511628211ull;
                explicit_bzero(text, strlen(text));
                free(text);
            }
            m->source_access[j].fingerprint = h;
        }
    }
}
