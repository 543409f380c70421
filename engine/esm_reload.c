#include "engine/esm_reload.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int refs;
    esm_invoker *inv;
} shared_invoker;

struct esm_generation {
    int refs;
    unsigned id;
    esm_config *cfg;
    shared_invoker **inv; /* one per cfg->functions[i] */
};

static void shared_invoker_unref(shared_invoker *s)
{
    if (!s || --s->refs > 0) return;
    esm_invoker_destroy(s->inv);
    free(s);
}

static shared_invoker *find_shared(const esm_generation *prev, const esm_function_config *fn)
{
    if (!prev) return NULL;
    for (size_t i = 0; i < prev->cfg->n_functions; i++)
        if (esm_function_config_equal(&prev->cfg->functions[i], fn)) return prev->inv[i];
    return NULL;
}

esm_generation *esm_generation_create(struct ev_loop *loop, esm_http *http, esm_config *cfg,
                                      const esm_generation *prev, unsigned id, esm_err *err)
{
    esm_generation *g = calloc(1, sizeof *g);
    if (g) g->inv = calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof *g->inv);
    if (!g || !g->inv) {
        free(g);
        esm_config_destroy(cfg);
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        return NULL;
    }
    g->refs = 1;
    g->id = id;
    g->cfg = cfg;
    esm_aws_credentials creds = {.region = cfg->region,
                                 .access_key_id = cfg->access_key_id,
                                 .secret_access_key = cfg->secret_access_key,
                                 .session_token = cfg->session_token};
    for (size_t i = 0; i < cfg->n_functions; i++) {
        shared_invoker *s = find_shared(prev, &cfg->functions[i]);
        if (s) {
            s->refs++;
            g->inv[i] = s;
            continue;
        }
        s = calloc(1, sizeof *s);
        if (s)
            s->inv = esm_invoker_create(loop, http, &cfg->functions[i],
                                        cfg->access_key_id ? &creds : NULL);
        if (!s || !s->inv) {
            free(s);
            esm_err_set(err, ESM_ERR_NOMEM, false, "cannot create the invoker of function %s",
                        cfg->functions[i].name);
            esm_generation_unref(g);
            return NULL;
        }
        s->refs = 1;
        g->inv[i] = s;
    }
    return g;
}

esm_generation *esm_generation_ref(esm_generation *g)
{
    if (g) g->refs++;
    return g;
}

void esm_generation_unref(esm_generation *g)
{
    if (!g || --g->refs > 0) return;
    for (size_t i = 0; i < g->cfg->n_functions; i++)
        shared_invoker_unref(g->inv[i]);
    free(g->inv);
    esm_config_destroy(g->cfg);
    free(g);
}

esm_config *esm_generation_config(const esm_generation *g)
{
    return g->cfg;
}

unsigned esm_generation_id(const esm_generation *g)
{
    return g->id;
}

esm_invoker *esm_generation_invoker(const esm_generation *g, const esm_function_config *fn)
{
    for (size_t i = 0; i < g->cfg->n_functions; i++)
        if (&g->cfg->functions[i] == fn) return g->inv[i] ? g->inv[i]->inv : NULL;
    return NULL;
}

/* ---- the plan ------------------------------------------------------------------------------- */

static bool push(esm_reload_step **v, size_t *n, size_t *cap, esm_reload_step s)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        esm_reload_step *p = realloc(*v, c * sizeof *p);
        if (!p) return false;
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = s;
    return true;
}

esm_reload_step *esm_reload_plan(const esm_mapping_config *const *old, size_t n_old,
                                 const esm_config *next, size_t *n_steps)
{
    esm_reload_step *v = NULL;
    size_t n = 0, cap = 0;
    bool *taken = calloc(next->n_mappings ? next->n_mappings : 1, sizeof *taken);
    bool ok = taken != NULL;
    for (size_t i = 0; ok && i < n_old; i++) {
        size_t j = 0;
        while (j < next->n_mappings && (taken[j] || strcmp(next->mappings[j].uuid, old[i]->uuid)))
            j++;
        esm_reload_step s = {.old_index = i, .new_index = (size_t)-1};
        if (j == next->n_mappings) {
            s.action = ESM_RELOAD_REMOVE;
        } else {
            taken[j] = true;
            s.new_index = j;
            s.action = esm_mapping_config_equal(old[i], &next->mappings[j]) ? ESM_RELOAD_KEEP
                                                                            : ESM_RELOAD_RESTART;
        }
        ok = push(&v, &n, &cap, s);
    }
    for (size_t j = 0; ok && j < next->n_mappings; j++)
        if (!taken[j])
            ok = push(&v, &n, &cap,
                      (esm_reload_step){
                          .action = ESM_RELOAD_ADD, .old_index = (size_t)-1, .new_index = j});
    free(taken);
    if (!ok) {
        free(v);
        v = NULL;
        n = 0;
    }
    *n_steps = n;
    return v;
}

/* Two mappings reading one source from its own state: a stream or a Kafka topic (a queue keeps
 * nothing per mapping; two Kafka mappings of one consumer group share its offsets). */
static bool same_source(const esm_mapping_config *a, const esm_mapping_config *b)
{
    if (a->source != b->source || a->source == ESM_SRC_SQS) return false;
    if (a->source == ESM_SRC_KAFKA && a->consumer_group_id && b->consumer_group_id &&
        strcmp(a->consumer_group_id, b->consumer_group_id) == 0)
        return false;
    if (a->source != ESM_SRC_KAFKA)
        return a->event_source_arn && b->event_source_arn &&
               strcmp(a->event_source_arn, b->event_source_arn) == 0;
    if (!a->topic || !b->topic || strcmp(a->topic, b->topic) != 0) return false;
    for (size_t i = 0; i < a->n_bootstrap_servers; i++)
        for (size_t j = 0; j < b->n_bootstrap_servers; j++)
            if (strcmp(a->bootstrap_servers[i], b->bootstrap_servers[j]) == 0) return true;
    return false;
}

size_t esm_reload_dropped_state(const esm_mapping_config *const *old, size_t n_old,
                                const esm_config *next, const esm_reload_step *steps,
                                size_t n_steps, esm_buf *why)
{
    size_t count = 0;
    for (size_t i = 0; i < n_steps; i++) {
        if (steps[i].action != ESM_RELOAD_REMOVE || steps[i].old_index >= n_old) continue;
        const esm_mapping_config *o = old[steps[i].old_index];
        for (size_t k = 0; k < n_steps; k++) {
            if (steps[k].action != ESM_RELOAD_ADD) continue;
            const esm_mapping_config *n = &next->mappings[steps[k].new_index];
            if (!same_source(o, n)) continue;
            esm_buf_printf(why,
                           "mapping %s (%s) is replaced by %s (%s) on the same source: its "
                           "checkpoints and retry state stay with %s and %s starts at its "
                           "StartingPosition%s\n",
                           o->uuid, o->function_name, n->uuid, n->function_name, o->uuid, n->uuid,
                           o->uuid_derived ? " (the UUID is derived from FunctionName: give the "
                                             "mapping an explicit \"UUID\" to keep its state "
                                             "across a rename)"
                                           : "");
            count++;
            break;
        }
    }
    return count;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static size_t pin(const char *key, char *const *cur, char **next, esm_buf *why)
{
    if (str_eq(*cur, *next)) return 0;
    esm_buf_printf(why, "%s: changed from %s to %s; needs a restart, ignored\n", key,
                   *cur ? *cur : "(default)", *next ? *next : "(default)");
    free(*next);
    *next = *cur ? strdup(*cur) : NULL;
    return 1;
}

size_t esm_reload_pin_restart_only(const esm_config *cur, esm_config *next, esm_buf *why)
{
    size_t n = 0;
    n += pin("state_dir", &cur->state_dir, &next->state_dir, why);
    n += pin("admin_listen", &cur->admin_listen, &next->admin_listen, why);
    n += pin("aws.region", &cur->region, &next->region, why);
    n += pin("aws.endpoints.sqs", &cur->endpoint_sqs, &next->endpoint_sqs, why);
    n += pin("aws.endpoints.kinesis", &cur->endpoint_kinesis, &next->endpoint_kinesis, why);
    n += pin("aws.endpoints.sns", &cur->endpoint_sns, &next->endpoint_sns, why);
    return n;
}
