#include "pollers/kafka/esm_kafka_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_MAX (1024 * 1024)

void esm_kafka_props_free(esm_kafka_props *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        if (p->items[i].secret && p->items[i].value)
            memset(p->items[i].value, 0, strlen(p->items[i].value));
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

int esm_kafka_props_set(esm_kafka_props *p, const char *name, const char *value, bool secret)
{
    char *v = strdup(value);
    if (!v) return -1;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].name, name) != 0) continue;
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

const char *esm_kafka_group_id(const esm_mapping_config *m)
{
    return m->consumer_group_id ? m->consumer_group_id : m->uuid;
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
    cJSON_Delete(j);
    return rc;
}

static bool managed_key(const char *k)
{
    return strcmp(k, "bootstrap.servers") == 0 || strcmp(k, "group.id") == 0 ||
           strcmp(k, "enable.auto.offset.store") == 0;
}

int esm_kafka_props_build(const esm_mapping_config *m, esm_kafka_props *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    char *bs = esm_kafka_bootstrap_join(m);
    const char *reset = m->starting_position == ESM_START_LATEST ? "latest" : "earliest";
    bool fail = !bs || esm_kafka_props_set(out, "bootstrap.servers", bs, false) ||
                esm_kafka_props_set(out, "group.id", esm_kafka_group_id(m), false) ||
                esm_kafka_props_set(out, "client.id", "esmd", false) ||
                esm_kafka_props_set(out, "enable.auto.offset.store", "false", false) ||
                esm_kafka_props_set(out, "enable.auto.commit", "true", false) ||
                esm_kafka_props_set(out, "auto.offset.reset", reset, false) ||
                esm_kafka_props_set(out, "enable.partition.eof", "false", false) ||
                /* librdkafka 2.0 stops fetching a partition for a whole second once its queue
                 * holds queued.min.messages (100 000 by default, about half a second of work at
                 * BatchSize 1000): let queued.max.messages.kbytes (64 MB) bound it instead. */
                esm_kafka_props_set(out, "queued.min.messages", "1000000", false);
    free(bs);
    if (fail) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        esm_kafka_props_free(out);
        return -1;
    }
    access_seen seen = {0};
    for (size_t i = 0; i < m->n_source_access; i++) {
        if (apply_access(out, &m->source_access[i], &seen, err) != 0) {
            esm_kafka_props_free(out);
            return -1;
        }
    }
    const char *proto = NULL;
    if (seen.sasl_mechanism)
        proto = "SASL_SSL";
    else if (seen.tls_client || seen.root_ca)
        proto = "SSL";
    if (proto && esm_kafka_props_set(out, "security.protocol", proto, false)) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        esm_kafka_props_free(out);
        return -1;
    }
    for (size_t i = 0; i < m->n_kafka_properties; i++) {
        const esm_kv *kv = &m->kafka_properties[i];
        if (managed_key(kv->name)) {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "EsmdOptions.KafkaProperties: '%s' is managed by esmd and cannot be set%s",
                        kv->name,
                        strcmp(kv->name, "group.id") == 0
                            ? " (use SelfManagedKafkaEventSourceConfig.ConsumerGroupId)"
                            : "");
            esm_kafka_props_free(out);
            return -1;
        }
        if (esm_kafka_props_set(out, kv->name, kv->value, false)) {
            esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
            esm_kafka_props_free(out);
            return -1;
        }
    }
    return 0;
}
