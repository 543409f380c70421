#include "engine/esm_daemon.h"

#include <cjson/cJSON.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "aws/esm_aws.h"
#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_writer.h"
#include "common/esm_log.h"
#include "common/esm_time.h"
#include "config/esm_config.h"
#include "destinations/esm_outbox.h"
#include "engine/esm_admin.h"
#include "engine/esm_admin_outbox.h"
#include "engine/esm_admin_positions.h"
#include "engine/esm_admin_replay.h"
#include "engine/esm_api.h"
#include "engine/esm_lifecycle.h"
#include "engine/esm_mapping.h"
#include "engine/esm_metrics.h"
#include "engine/esm_reload.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "kafka/esm_kafka_client.h"

typedef struct daemon_state daemon_state;

/* One configured mapping across reloads. While it stops (reload restart, removal or
 * shutdown) it keeps the mapping and its generation; next_* is what starts afterwards. */
typedef struct mslot {
    daemon_state *d;
    esm_generation *gen; /* holds a reference: mc and the invoker live in it */
    const esm_mapping_config *mc;
    esm_mapping *m;  /* NULL: disabled, or it could not be created (error says why) */
    char error[300]; /* why m is NULL although mc is enabled */
    bool stopping;
    bool restarted;           /* started again by a reload (State "Updating" until ready) */
    int64_t modified_ms;      /* when mc was loaded (the Lambda API's LastModified) */
    esm_generation *next_gen; /* restart with this after the stop (reference held) */
    const esm_mapping_config *next_mc;
    struct mslot *next;
} mslot;

struct daemon_state {
    struct ev_loop *loop;
    const char *config_path;
    const char *version;
    int log_level_override;
    esm_generation *gen;  /* the current generation */
    esm_generation *base; /* the first one: the shared clients use its strings */
    unsigned next_gen_id;
    esm_store *store;
    esm_store_writer *writer;
    esm_http *http;
    esm_aws *sqs, *sns;
    esm_outbox_drainer *outbox;
    mslot *slots;
    size_t n_stopping;
    bool shutting_down;
    uint64_t reloads_ok, reloads_failed;
    int64_t started_ms;
    ev_signal sigterm, sigint, sighup;
    ev_timer watchdog;
    esm_admin *admin;
    esm_replays replays;
};

static const esm_mapping_config *kafka_source_of(const char *mapping, void *arg)
{
    daemon_state *d = arg;
    for (mslot *s = d->slots; s; s = s->next)
        if (strcmp(s->mc->uuid, mapping) == 0 && s->mc->n_bootstrap_servers > 0) return s->mc;
    return NULL;
}

static void notify_status(daemon_state *d)
{
    size_t n = 0;
    for (mslot *s = d->slots; s; s = s->next)
        if (s->m) n++;
    sd_notifyf(0, "READY=1\nSTATUS=running: %zu mappings, config generation %u", n,
               esm_generation_id(d->gen));
}

/* ---- mapping slots -------------------------------------------------------------------------- */

static void slot_start(mslot *s, const esm_source_stats *carry)
{
    daemon_state *d = s->d;
    const esm_mapping_config *mc = s->mc;
    s->error[0] = '\0';
    if (!mc->enabled) {
        ESM_INFO(NULL, "mapping %s (%s) is disabled", mc->uuid, mc->function_name);
        return;
    }
    esm_source_env env = {.loop = d->loop,
                          .http = d->http,
                          .config = esm_generation_config(s->gen),
                          .mapping = mc,
                          .invoker = esm_generation_invoker(s->gen, mc->function),
                          .store = d->store,
                          .writer = d->writer,
                          .outbox = d->outbox};
    esm_err err;
    esm_err_clear(&err);
    s->m = esm_mapping_create(&env, &err);
    if (s->m && carry) esm_mapping_inherit_stats(s->m, carry);
    if (!s->m || esm_mapping_start(s->m, &err) != 0) {
        ESM_ERROR(NULL, "mapping %s (%s): %s", mc->uuid, mc->function_name, err.message);
        snprintf(s->error, sizeof s->error, "%.299s", err.message);
        esm_mapping_destroy(s->m);
        s->m = NULL;
    }
}

static mslot *slot_new(daemon_state *d, esm_generation *gen, const esm_mapping_config *mc)
{
    mslot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->d = d;
    s->gen = esm_generation_ref(gen);
    s->mc = mc;
    s->modified_ms = esm_now_ms();
    mslot **tail = &d->slots;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    return s;
}

static void slot_free(mslot *s)
{
    daemon_state *d = s->d;
    for (mslot **p = &d->slots; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    esm_mapping_destroy(s->m);
    esm_generation_unref(s->gen);
    esm_generation_unref(s->next_gen);
    free(s);
}

static void on_slot_stopped(void *arg)
{
    mslot *s = arg;
    daemon_state *d = s->d;
    esm_source_stats carry = *esm_mapping_stats(s->m);
    esm_mapping_destroy(s->m);
    s->m = NULL;
    s->stopping = false;
    if (d->shutting_down) {
        if (d->n_stopping > 0) d->n_stopping--;
        if (d->n_stopping == 0) {
            ESM_INFO(NULL, "all mappings stopped");
            ev_break(d->loop, EVBREAK_ALL);
        }
        return;
    }
    if (!s->next_gen) {
        ESM_INFO(NULL, "mapping %s (%s) removed: stopped", s->mc->uuid, s->mc->function_name);
        slot_free(s);
        notify_status(d);
        return;
    }
    esm_generation_unref(s->gen);
    s->gen = s->next_gen;
    s->mc = s->next_mc;
    s->next_gen = NULL;
    s->next_mc = NULL;
    s->restarted = true;
    s->modified_ms = esm_now_ms();
    ESM_INFO(NULL, "mapping %s (%s): starting with configuration generation %u", s->mc->uuid,
             s->mc->function_name, esm_generation_id(s->gen));
    slot_start(s, &carry);
    notify_status(d);
}

/* Stop a running slot; next_gen/next_mc (may be NULL = remove) start afterwards. */
static void slot_stop(mslot *s, esm_generation *next_gen, const esm_mapping_config *next_mc)
{
    esm_generation_unref(s->next_gen);
    s->next_gen = next_gen ? esm_generation_ref(next_gen) : NULL;
    s->next_mc = next_mc;
    if (s->stopping) return;
    s->stopping = true;
    esm_mapping_stop(s->m, on_slot_stopped, s);
}

/* ---- shutdown and signals ------------------------------------------------------------------- */

static void begin_shutdown(daemon_state *d, const char *why)
{
    if (d->shutting_down) return;
    d->shutting_down = true;
    ESM_INFO(NULL, "%s: stopping (grace %d s)", why,
             esm_generation_config(d->gen)->shutdown_grace_seconds);
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    d->n_stopping = 0;
    for (mslot *s = d->slots; s; s = s->next)
        if (s->m) d->n_stopping++;
    if (d->n_stopping == 0) {
        ev_break(d->loop, EVBREAK_ALL);
        return;
    }
    for (mslot *s = d->slots; s; s = s->next) {
        if (!s->m || s->stopping) continue; /* a stopping slot reports through its callback */
        s->stopping = true;
        esm_mapping_stop(s->m, on_slot_stopped, s);
    }
}

/* ---- reload --------------------------------------------------------------------------------- */

static void json_str_list(esm_buf *out, const char *key, const char *const *v, size_t n)
{
    esm_buf_printf(out, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i) esm_buf_putc(out, ',');
        esm_buf_json_cstr(out, v[i]);
    }
    esm_buf_putc(out, ']');
}

static esm_config *load_config(const char *path, const char *what, esm_buf *report)
{
    esm_config_problems problems = {0};
    esm_config *cfg = esm_config_load_file(path, &problems);
    if (cfg) esm_kafka_secrets_fingerprint(cfg);
    const char **msgs = calloc(problems.n ? problems.n : 1, sizeof *msgs);
    esm_buf line;
    esm_buf_init(&line);
    char **texts = calloc(problems.n ? problems.n : 1, sizeof *texts);
    for (size_t i = 0; i < problems.n; i++) {
        ESM_ERROR(NULL, "%sconfig %s: %s%s%s", what, path, problems.items[i].path,
                  problems.items[i].path[0] ? ": " : "", problems.items[i].message);
        esm_buf_reset(&line);
        esm_buf_printf(&line, "%s%s%s", problems.items[i].path,
                       problems.items[i].path[0] ? ": " : "", problems.items[i].message);
        if (texts && msgs) msgs[i] = texts[i] = strdup(esm_buf_cstr(&line));
    }
    if (report && !cfg && msgs) json_str_list(report, "problems", msgs, problems.n);
    for (size_t i = 0; texts && i < problems.n; i++)
        free(texts[i]);
    free(texts);
    free(msgs);
    esm_buf_free(&line);
    esm_config_problems_free(&problems);
    return cfg;
}

/* Finds what a slot is heading for: its config, or what starts after its stop (NULL when it is
 * being removed). */
static const esm_mapping_config *slot_target(const mslot *s)
{
    return s->stopping ? s->next_mc : s->mc;
}

static void apply_plan(daemon_state *d, esm_generation *gen, mslot **old, size_t n_old,
                       esm_buf *report)
{
    esm_config *cfg = esm_generation_config(gen);
    const esm_mapping_config **cur = calloc(n_old ? n_old : 1, sizeof *cur);
    size_t n_steps = 0;
    esm_reload_step *steps = NULL;
    if (cur) {
        /* A slot being removed still matches its UUID: re-adding it restarts it after the
         * drain instead of running two copies at once. */
        for (size_t i = 0; i < n_old; i++)
            cur[i] = slot_target(old[i]) ? slot_target(old[i]) : old[i]->mc;
        steps = esm_reload_plan(cur, n_old, cfg, &n_steps);
    }
    const char **names[4];
    size_t counts[4] = {0};
    for (int k = 0; k < 4; k++)
        names[k] = calloc(n_steps ? n_steps : 1, sizeof *names[k]);
    for (size_t i = 0; i < n_steps; i++) {
        esm_reload_step *st = &steps[i];
        mslot *s = st->old_index != (size_t)-1 ? old[st->old_index] : NULL;
        const esm_mapping_config *mc =
            st->new_index != (size_t)-1 ? &cfg->mappings[st->new_index] : NULL;
        const char *uuid = mc ? mc->uuid : s->mc->uuid;
        if (names[st->action]) names[st->action][counts[st->action]++] = uuid;
        switch (st->action) {
        case ESM_RELOAD_KEEP:
            if (s->stopping && !s->next_mc) { /* was being removed: comes back after the drain */
                ESM_INFO(NULL, "mapping %s (%s) is back in the config: restarts after its drain",
                         uuid, mc->function_name);
                slot_stop(s, gen, mc);
            } else if (s->stopping) {
                slot_stop(s, gen, mc); /* restart pending: with this generation's config */
            } else {
                ESM_DEBUG(NULL, "mapping %s (%s) unchanged: keeps running", uuid,
                          mc->function_name);
            }
            break;
        case ESM_RELOAD_RESTART:
            if (s->m) {
                ESM_INFO(NULL,
                         "mapping %s (%s) changed: stopping it to restart from its "
                         "checkpoints",
                         uuid, mc->function_name);
                slot_stop(s, gen, mc);
            } else {
                ESM_INFO(NULL, "mapping %s (%s) changed", uuid, mc->function_name);
                esm_generation_unref(s->gen);
                s->gen = esm_generation_ref(gen);
                s->mc = mc;
                s->restarted = true;
                slot_start(s, NULL);
            }
            break;
        case ESM_RELOAD_REMOVE:
            if (s->m) {
                ESM_INFO(NULL, "mapping %s (%s) removed from the config: draining", uuid,
                         s->mc->function_name);
                slot_stop(s, NULL, NULL);
            } else {
                ESM_INFO(NULL, "mapping %s (%s) removed from the config", uuid,
                         s->mc->function_name);
                slot_free(s);
            }
            break;
        case ESM_RELOAD_ADD: {
            ESM_INFO(NULL, "mapping %s (%s) added", uuid, mc->function_name);
            mslot *ns = slot_new(d, gen, mc);
            if (ns) slot_start(ns, NULL);
            break;
        }
        }
    }
    esm_buf dropped;
    esm_buf_init(&dropped);
    if (esm_reload_dropped_state(cur, n_old, cfg, steps, n_steps, &dropped) > 0)
        ESM_WARN(NULL, "reload: %.*s", (int)(dropped.len ? dropped.len - 1 : 0),
                 esm_buf_cstr(&dropped));
    if (report) {
        esm_buf_puts(report, ",\"warnings\":[");
        bool first = true;
        for (char *p = dropped.data, *nl; p && (nl = strchr(p, '\n')); p = nl + 1) {
            if (!first) esm_buf_putc(report, ',');
            esm_buf_json_str(report, p, (size_t)(nl - p));
            first = false;
        }
        esm_buf_putc(report, ']');
    }
    esm_buf_free(&dropped);
    if (report) {
        static const char *const keys[4] = {"kept", "restarted", "removed", "added"};
        for (int k = 0; k < 4; k++)
            json_str_list(report, keys[k], names[k] ? names[k] : NULL, names[k] ? counts[k] : 0);
    }
    for (int k = 0; k < 4; k++)
        free(names[k]);
    free(steps);
    free(cur);
}

/* Loads the config file again as a new generation. Invalid: the running one stays and every
 * problem is logged. report (may be NULL) gets a JSON object. Returns 0 when applied. */
static int do_reload(daemon_state *d, const char *trigger, esm_buf *report)
{
    if (report) esm_buf_puts(report, "{");
    if (d->shutting_down) {
        if (report) esm_buf_puts(report, "\"applied\":false,\"error\":\"shutting down\"}");
        return -1;
    }
    ESM_INFO(NULL, "%s: reloading %s", trigger, d->config_path);
    sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
    esm_buf problems;
    esm_buf_init(&problems);
    esm_config *cfg = load_config(d->config_path, "reload rejected: ", &problems);
    if (!cfg) {
        d->reloads_failed++;
        ESM_ERROR(NULL,
                  "%s: the new configuration is invalid; keeping configuration generation "
                  "%u",
                  trigger, esm_generation_id(d->gen));
        if (report)
            esm_buf_printf(report, "\"applied\":false,\"generation\":%u%s}",
                           esm_generation_id(d->gen), esm_buf_cstr(&problems));
        esm_buf_free(&problems);
        notify_status(d);
        return -1;
    }
    esm_buf_free(&problems);
    esm_buf ignored;
    esm_buf_init(&ignored);
    esm_reload_pin_restart_only(esm_generation_config(d->gen), cfg, &ignored);
    const char *ig[16];
    size_t n_ig = 0;
    char *ig_text = ignored.len ? strdup(esm_buf_cstr(&ignored)) : NULL;
    for (char *p = ig_text, *nl; p && *p && n_ig < 16; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        ESM_WARN(NULL, "reload: %s", p);
        ig[n_ig++] = p;
    }
    esm_buf_free(&ignored);
    if (d->log_level_override < 0) {
        int level = esm_log_parse_level(cfg->log_level);
        if (level >= 0) esm_log_set_level((esm_log_level)level);
    }
    esm_config_log_notes(cfg);
    esm_err err;
    esm_err_clear(&err);
    esm_generation *gen =
        esm_generation_create(d->loop, d->http, cfg, d->gen, ++d->next_gen_id, &err);
    if (!gen) {
        d->reloads_failed++;
        ESM_ERROR(NULL, "reload: %s; keeping the running configuration", err.message);
        if (report) {
            esm_buf_puts(report, "\"applied\":false,\"error\":");
            esm_buf_json_cstr(report, err.message);
            esm_buf_putc(report, '}');
        }
        free(ig_text);
        notify_status(d);
        return -1;
    }
    size_t n_old = 0;
    for (mslot *s = d->slots; s; s = s->next)
        n_old++;
    mslot **old = calloc(n_old ? n_old : 1, sizeof *old);
    n_old = 0;
    for (mslot *s = d->slots; old && s; s = s->next)
        old[n_old++] = s;
    if (report)
        esm_buf_printf(report, "\"applied\":true,\"generation\":%u", esm_generation_id(gen));
    apply_plan(d, gen, old, n_old, report);
    free(old);
    if (report) {
        json_str_list(report, "ignored", ig, n_ig);
        esm_buf_putc(report, '}');
    }
    free(ig_text);
    esm_generation_unref(d->gen);
    d->gen = gen;
    /* The token follows the file: a reload rotates it (a rejected reload keeps the old one). */
    if (d->admin) esm_admin_set_token(d->admin, esm_generation_config(gen)->admin_token);
    d->reloads_ok++;
    ESM_INFO(NULL, "%s: configuration generation %u applied", trigger, esm_generation_id(gen));
    notify_status(d);
    return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    daemon_state *d = w->data;
    if (w->signum == SIGHUP) {
        do_reload(d, "SIGHUP", NULL);
        return;
    }
    begin_shutdown(d, w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    sd_notify(0, "WATCHDOG=1");
}

/* ---- admin hooks ---------------------------------------------------------------------------- */

static bool check_ready(void *arg, esm_buf *why)
{
    daemon_state *d = arg;
    bool ready = true;
    int64_t now = esm_now_ms();
    if (d->shutting_down) {
        esm_buf_puts(why, "shutting down\n");
        return false;
    }
    if (!d->store) {
        esm_buf_puts(why, "the state store is not open\n");
        ready = false;
    }
    for (mslot *s = d->slots; s; s = s->next) {
        const esm_mapping_config *mc = s->mc;
        if (!s->m) {
            if (!mc->enabled || s->stopping) continue;
            esm_buf_printf(why, "mapping %s (%s): not running: %s\n", mc->uuid, mc->function_name,
                           s->error[0] ? s->error : "stopped");
            ready = false;
        } else if (s->stopping) {
            esm_buf_printf(why, "mapping %s (%s): %s\n", mc->uuid, mc->function_name,
                           s->next_gen ? "restarting with a new configuration" : "stopping");
            ready = false;
        } else if (!esm_mapping_ready(s->m)) {
            const char *problem = esm_mapping_problem(s->m);
            esm_buf_printf(why, "mapping %s (%s): has not reached its source yet%s%s\n", mc->uuid,
                           mc->function_name, problem ? ": PROBLEM: " : "", problem ? problem : "");
            ready = false;
        } else if (esm_mapping_is_stuck(s->m, now)) {
            int64_t since = esm_mapping_stuck_since(s->m);
            esm_buf_printf(why,
                           "degraded: mapping %s (%s): a lane has been blocked on a failing batch "
                           "for %lld s (StuckLaneSeconds %d); see /status\n",
                           mc->uuid, mc->function_name, (long long)((now - since) / 1000),
                           mc->stuck_lane_seconds);
            ready = false;
        }
    }
    return ready;
}

static const char *slot_state(const mslot *s)
{
    esm_lifecycle_facts f = {.running = s->m != NULL,
                             .phase = s->m ? esm_mapping_phase(s->m) : ESM_SOURCE_STOPPED,
                             .stopping = s->stopping,
                             .shutting_down = s->d->shutting_down,
                             .next = s->next_mc,
                             .restarted = s->restarted};
    return esm_state_name(esm_lifecycle_state(&f));
}

static void render_status(void *arg, esm_buf *out)
{
    daemon_state *d = arg;
    esm_buf why;
    esm_buf_init(&why);
    bool ready = check_ready(d, &why);
    esm_buf_printf(out, "{\"Generation\":%u,\"Ready\":%s,\"NotReady\":[", esm_generation_id(d->gen),
                   ready ? "true" : "false");
    bool first = true;
    for (char *p = why.data, *nl; p && (nl = strchr(p, '\n')); p = nl + 1) {
        if (!first) esm_buf_putc(out, ',');
        esm_buf_json_str(out, p, (size_t)(nl - p));
        first = false;
    }
    esm_buf_free(&why);
    esm_buf_puts(out, "],\"EventSourceMappings\":[");
    first = true;
    for (mslot *s = d->slots; s; s = s->next) {
        if (!first) esm_buf_putc(out, ',');
        first = false;
        if (s->m) {
            esm_mapping_status(s->m, slot_state(s), out);
            continue;
        }
        const esm_mapping_config *mc = s->mc;
        esm_mapping_identity_json(mc, out);
        esm_buf_puts(out, ",\"Source\":");
        esm_buf_json_cstr(out, esm_source_type_name(mc->source));
        esm_buf_printf(out, ",\"State\":\"%s\",\"StateTransitionReason\":", slot_state(s));
        esm_buf_json_cstr(out, s->error[0] ? s->error : "USER_INITIATED");
        esm_buf_puts(out, ",\"LastProcessingResult\":");
        if (s->error[0]) {
            esm_buf result;
            esm_buf_init(&result);
            esm_buf_printf(&result, "PROBLEM: %s", s->error); /* why it could not start */
            esm_buf_json_cstr(out, esm_buf_cstr(&result));
            esm_buf_free(&result);
        } else {
            esm_buf_json_cstr(out, "No records processed");
        }
        esm_buf_puts(out, ",\"Ready\":false}");
    }
    esm_buf_puts(out, "],\"Outbox\":");
    if (d->outbox)
        esm_outbox_drainer_status(d->outbox, out);
    else
        esm_buf_puts(out, "null");
    esm_buf_putc(out, '}');
}

typedef struct {
    esm_metrics_lane *v;
    size_t n, cap, mapping;
    double max_blocked;
} lane_sink;

static void collect_lane(void *arg, const char *lane, esm_lane_gauge gauge, double value)
{
    lane_sink *ls = arg;
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 32;
        esm_metrics_lane *p = realloc(ls->v, cap * sizeof *p);
        if (!p) return;
        ls->v = p;
        ls->cap = cap;
    }
    char *copy = strdup(lane ? lane : "");
    if (!copy) return;
    esm_metrics_lane *e = &ls->v[ls->n++];
    e->mapping = ls->mapping;
    e->lane = copy; /* freed by render_metrics */
    e->gauge = gauge;
    e->value = value;
}

/* The drainer exposes its depth and parked count only in its status JSON (-1 = unknown). */
static void outbox_gauges(daemon_state *d, double *depth, double *parked)
{
    esm_buf js;
    esm_buf_init(&js);
    esm_outbox_drainer_status(d->outbox, &js);
    *depth = *parked = -1;
    cJSON *j = js.failed ? NULL : cJSON_ParseWithLength(js.data, js.len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "depth");
    if (cJSON_IsNumber(v)) *depth = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "parked");
    if (cJSON_IsNumber(v)) *parked = v->valuedouble;
    cJSON_Delete(j);
    esm_buf_free(&js);
}

static void render_metrics(void *arg, esm_buf *out)
{
    daemon_state *d = arg;
    size_t n = 0;
    for (mslot *s = d->slots; s; s = s->next)
        n++;
    esm_metrics_mapping *maps = calloc(n ? n : 1, sizeof *maps);
    if (!maps) return;
    lane_sink ls = {0};
    int64_t now = esm_now_ms();
    size_t i = 0;
    for (mslot *s = d->slots; s; s = s->next, i++) {
        esm_metrics_mapping *mm = &maps[i];
        mm->uuid = s->mc->uuid;
        mm->function = s->mc->function_name;
        mm->source = esm_source_type_name(s->mc->source);
        mm->state = slot_state(s);
        if (!s->m) continue;
        mm->stats = esm_mapping_stats(s->m);
        mm->ready = !s->stopping && esm_mapping_ready(s->m);
        mm->stuck = esm_mapping_is_stuck(s->m, now);
        int64_t since = esm_mapping_stuck_since(s->m);
        mm->blocked_seconds = since > 0 ? (double)(now - since) / 1000.0 : 0;
        ls.mapping = i;
        esm_mapping_lane_gauges(s->m, collect_lane, &ls);
    }
    esm_metrics_global g = {.generation = esm_generation_id(d->gen),
                            .reloads_ok = d->reloads_ok,
                            .reloads_failed = d->reloads_failed,
                            .start_time_seconds = (double)d->started_ms / 1000.0,
                            .version = d->version};
    if (d->outbox) {
        esm_outbox_counters oc;
        esm_outbox_drainer_counters(d->outbox, &oc);
        g.have_outbox = true;
        outbox_gauges(d, &g.outbox_depth, &g.outbox_parked);
        g.outbox_parked_total = oc.parked;
        g.outbox_delivered = oc.delivered;
        g.outbox_failed_attempts = oc.failed_attempts;
        g.outbox_deferred = oc.deferred;
        g.outbox_in_flight = oc.in_flight;
    }
    esm_metrics_render(out, maps, n, ls.v, ls.n, &g);
    for (size_t k = 0; k < ls.n; k++)
        free((char *)ls.v[k].lane);
    free(ls.v);
    free(maps);
}

static int admin_reload(void *arg, esm_buf *out)
{
    return do_reload(arg, "POST /reload", out);
}

static unsigned admin_outbox(void *arg, esm_admin_outbox_op op, esm_admin_arg_fn get_arg, void *req,
                             esm_buf *out)
{
    daemon_state *d = arg;
    return esm_admin_outbox(d->store, d->outbox, op, get_arg, req, out);
}

/* ---- startup -------------------------------------------------------------------------------- */

static unsigned admin_positions(void *arg, bool move, esm_admin_arg_fn get_arg, void *req,
                                esm_buf *out)
{
    daemon_state *d = arg;
    size_t n = 0;
    for (mslot *s = d->slots; s; s = s->next)
        n++;
    esm_admin_mapping *maps = calloc(n ? n : 1, sizeof *maps);
    if (!maps) {
        esm_buf_puts(out, "{\"error\":\"out of memory\"}");
        return 500;
    }
    n = 0;
    for (mslot *s = d->slots; s; s = s->next)
        maps[n++] = (esm_admin_mapping){
            .mc = s->mc, .state = slot_state(s), .running = s->m != NULL || s->stopping};
    unsigned status = esm_admin_positions(d->store, maps, n, move, get_arg, req, out);
    free(maps);
    return status;
}

static unsigned admin_api(void *arg, const char *method, const char *path, esm_admin_arg_fn get_arg,
                          void *req, esm_buf *out, const char **error_type)
{
    daemon_state *d = arg;
    size_t n = 0;
    for (mslot *s = d->slots; s; s = s->next)
        n++;
    esm_api_mapping *maps = calloc(n ? n : 1, sizeof *maps);
    esm_buf *results = calloc(n ? n : 1, sizeof *results);
    unsigned status = 500;
    *error_type = "ServiceException";
    if (maps && results) {
        n = 0;
        for (mslot *s = d->slots; s; s = s->next, n++) {
            esm_buf *r = &results[n];
            esm_buf_init(r);
            if (s->m)
                esm_mapping_last_processing_result(s->m, r);
            else if (s->error[0])
                esm_buf_printf(r, "PROBLEM: %s", s->error);
            else
                esm_buf_puts(r, "No records processed");
            maps[n] = (esm_api_mapping){.mc = s->mc,
                                        .state = slot_state(s),
                                        .state_reason = s->error[0] ? s->error : "USER_INITIATED",
                                        .last_processing_result = esm_buf_cstr(r),
                                        .last_modified_ms = s->modified_ms,
                                        .region = esm_generation_config(d->gen)->region};
        }
        status =
            esm_api_mappings(method, path, maps, n, d->config_path, get_arg, req, out, error_type);
        for (size_t i = 0; i < n; i++)
            esm_buf_free(&results[i]);
    }
    free(maps);
    free(results);
    return status;
}

static bool find_mapping(void *arg, const char *uuid, esm_generation **gen,
                         const esm_mapping_config **mc)
{
    daemon_state *d = arg;
    for (mslot *s = d->slots; s; s = s->next)
        if (strcmp(s->mc->uuid, uuid) == 0) {
            /* what runs next: a mapping restarting gets its new function, a removed one none */
            *mc = slot_target(s);
            *gen = s->stopping ? s->next_gen : s->gen;
            return *mc != NULL && *gen != NULL;
        }
    return false;
}

static unsigned admin_replay(void *arg, int op, esm_admin_arg_fn get_arg, void *req, esm_buf *out)
{
    daemon_state *d = arg;
    if (d->shutting_down && op == ESM_ADMIN_REPLAY_START) {
        esm_buf_puts(out, "{\"error\":\"esmd is shutting down\"}");
        return 503;
    }
    esm_replay_options base = {.loop = d->loop, .sqs = d->sqs};
    return esm_admin_replay(&d->replays, (esm_admin_replay_op)op, &base, find_mapping, d, get_arg,
                            req, out);
}

static bool create_shared(daemon_state *d)
{
    esm_config *cfg = esm_generation_config(d->base);
    esm_err err;
    esm_err_clear(&err);
    d->store = esm_store_open(cfg->state_dir, &err);
    if (!d->store) {
        ESM_ERROR(NULL, "cannot open the state store in %s: %s", cfg->state_dir, err.message);
        return false;
    }
    d->writer = esm_store_writer_create(d->store, d->loop, &err);
    if (!d->writer)
        ESM_WARN(NULL, "%s; checkpoints are written on the event loop thread", err.message);
    esm_aws_options sqs_opt = {.region = cfg->region,
                               .endpoint = cfg->endpoint_sqs,
                               .access_key_id = cfg->access_key_id,
                               .secret_access_key = cfg->secret_access_key,
                               .session_token = cfg->session_token};
    esm_aws_options sns_opt = sqs_opt;
    sns_opt.endpoint = cfg->endpoint_sns;
    d->sqs = esm_aws_create(d->http, "sqs", &sqs_opt);
    d->sns = esm_aws_create(d->http, "sns", &sns_opt);
    esm_outbox_env oenv = {.http = d->http,
                           .sqs = d->sqs,
                           .sns = d->sns,
                           .region = cfg->region,
                           .kafka_source = kafka_source_of,
                           .kafka_source_arg = d};
    d->outbox = esm_outbox_drainer_create(d->loop, d->store, &oenv);
    return d->outbox != NULL;
}

static void destroy_all(daemon_state *d)
{
    esm_admin_destroy(d->admin);
    esm_replays_free(&d->replays); /* before the generations and the HTTP client they use */
    while (d->slots)
        slot_free(d->slots);
    esm_outbox_drainer_destroy(d->outbox);
    esm_store_writer_destroy(d->writer); /* after the lanes: it finishes their last writes */
    /* Invokers go with the last generation reference, before the HTTP client. */
    esm_generation_unref(d->gen);
    esm_generation_unref(d->base);
    esm_aws_destroy(d->sqs);
    esm_aws_destroy(d->sns);
    esm_http_destroy(d->http);
    esm_store_close(d->store);
}

int esm_daemon_run(const esm_daemon_options *opt)
{
    daemon_state d;
    memset(&d, 0, sizeof d);
    d.config_path = opt->config_path;
    d.version = opt->version;
    d.log_level_override = opt->log_level;
    d.started_ms = esm_now_ms();
    esm_config *cfg = load_config(opt->config_path, "", NULL);
    if (!cfg) return 2;
    int level = opt->log_level >= 0 ? opt->log_level : esm_log_parse_level(cfg->log_level);
    if (level >= 0) esm_log_set_level((esm_log_level)level);
    esm_config_log_notes(cfg);
    signal(SIGPIPE, SIG_IGN);
    d.loop = ev_default_loop(EVFLAG_AUTO);
    int rc = 0;
    esm_err err;
    esm_err_clear(&err);
    d.http = esm_http_create(d.loop);
    d.gen = d.http ? esm_generation_create(d.loop, d.http, cfg, NULL, ++d.next_gen_id, &err) : NULL;
    if (!d.http) esm_config_destroy(cfg);
    if (!d.gen) {
        ESM_ERROR(NULL, "cannot start: %s", d.http ? err.message : "HTTP client");
        rc = 1;
        goto out;
    }
    d.base = esm_generation_ref(d.gen);
    if (!create_shared(&d)) {
        rc = 1;
        goto out;
    }
    esm_admin_hooks hooks = {.ready = check_ready,
                             .status = render_status,
                             .metrics = render_metrics,
                             .reload = admin_reload,
                             .outbox = admin_outbox,
                             .positions = admin_positions,
                             .replay = admin_replay,
                             .api = admin_api,
                             .arg = &d};
    d.admin = esm_admin_create(d.loop, cfg->admin_listen, cfg->admin_token, &hooks, &err);
    if (!d.admin && cfg->admin_listen && cfg->admin_listen[0]) {
        ESM_ERROR(NULL, "admin HTTP on %s: %s", cfg->admin_listen, err.message);
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        mslot *s = slot_new(&d, d.gen, &cfg->mappings[i]);
        if (s) slot_start(s, NULL);
    }
    ev_signal_init(&d.sigterm, on_signal, SIGTERM);
    ev_signal_init(&d.sigint, on_signal, SIGINT);
    ev_signal_init(&d.sighup, on_signal, SIGHUP);
    d.sigterm.data = d.sigint.data = d.sighup.data = &d;
    ev_signal_start(d.loop, &d.sigterm);
    ev_signal_start(d.loop, &d.sigint);
    ev_signal_start(d.loop, &d.sighup);
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        double every = (double)wd_usec / 2e6;
        ev_timer_init(&d.watchdog, on_watchdog, every, every);
        ev_timer_start(d.loop, &d.watchdog);
    }
    ESM_INFO(NULL, "esmd running: %zu mappings, state in %s, admin on %s", cfg->n_mappings,
             cfg->state_dir, cfg->admin_listen && cfg->admin_listen[0] ? cfg->admin_listen : "-");
    notify_status(&d);
    ev_run(d.loop, 0);
    ESM_INFO(NULL, "exiting");
out:
    destroy_all(&d);
    ev_loop_destroy(d.loop);
    return rc;
}
