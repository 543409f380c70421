#include "engine/esm_daemon.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "aws/esm_aws.h"
#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "config/esm_config.h"
#include "destinations/esm_outbox.h"
#include "engine/esm_admin.h"
#include "engine/esm_mapping.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"

typedef struct {
    struct ev_loop *loop;
    esm_config *cfg;
    esm_store *store;
    esm_http *http;
    esm_aws *sqs, *sns;
    esm_outbox_drainer *outbox;
    esm_invoker **invokers; /* one per function: max_concurrency is the function's */
    esm_mapping **mappings;
    size_t n_mappings;
    size_t n_stopping;
    bool shutting_down;
    ev_signal sigterm, sigint, sighup;
    ev_timer watchdog;
    esm_admin *admin;
} daemon_state;

static esm_invoker *invoker_for(daemon_state *d, const esm_function_config *fn)
{
    for (size_t i = 0; i < d->cfg->n_functions; i++)
        if (&d->cfg->functions[i] == fn) return d->invokers[i];
    return NULL;
}

static const char *kafka_bootstrap_of(const char *mapping, void *arg)
{
    daemon_state *d = arg;
    (void)d;
    (void)mapping;
    return NULL; /* Kafka sources are not implemented yet. */
}

static void on_mapping_stopped(void *arg)
{
    daemon_state *d = arg;
    if (d->n_stopping > 0) d->n_stopping--;
    if (d->n_stopping == 0) {
        ESM_INFO(NULL, "all mappings stopped");
        ev_break(d->loop, EVBREAK_ALL);
    }
}

static void begin_shutdown(daemon_state *d, const char *why)
{
    if (d->shutting_down) return;
    d->shutting_down = true;
    ESM_INFO(NULL, "%s: stopping (grace %d s)", why, d->cfg->shutdown_grace_seconds);
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    d->n_stopping = 0;
    for (size_t i = 0; i < d->n_mappings; i++)
        if (d->mappings[i]) d->n_stopping++;
    if (d->n_stopping == 0) {
        ev_break(d->loop, EVBREAK_ALL);
        return;
    }
    for (size_t i = 0; i < d->n_mappings; i++)
        if (d->mappings[i]) esm_mapping_stop(d->mappings[i], on_mapping_stopped, d);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    daemon_state *d = w->data;
    if (w->signum == SIGHUP) {
        ESM_WARN(NULL, "SIGHUP: configuration reload is not implemented yet; keeping the "
                       "running configuration");
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

static bool all_ready(void *arg)
{
    daemon_state *d = arg;
    for (size_t i = 0; i < d->n_mappings; i++)
        if (d->mappings[i] && !esm_mapping_ready(d->mappings[i])) return false;
    return d->store != NULL;
}

static void render_status(void *arg, esm_buf *out)
{
    daemon_state *d = arg;
    esm_buf_puts(out, "{\"EventSourceMappings\":[");
    bool first = true;
    for (size_t i = 0; i < d->n_mappings; i++) {
        if (!d->mappings[i]) continue;
        if (!first) esm_buf_putc(out, ',');
        esm_mapping_status(d->mappings[i], out);
        first = false;
    }
    esm_buf_puts(out, "],\"Outbox\":");
    if (d->outbox)
        esm_outbox_drainer_status(d->outbox, out);
    else
        esm_buf_puts(out, "null");
    esm_buf_putc(out, '}');
}

static bool create_shared(daemon_state *d)
{
    esm_config *cfg = d->cfg;
    esm_err err;
    esm_err_clear(&err);
    d->store = esm_store_open(cfg->state_dir, &err);
    if (!d->store) {
        ESM_ERROR(NULL, "cannot open the state store in %s: %s", cfg->state_dir, err.message);
        return false;
    }
    d->http = esm_http_create(d->loop);
    if (!d->http) return false;
    esm_aws_options sqs_opt = {.region = cfg->region,
                               .endpoint = cfg->endpoint_sqs,
                               .access_key_id = cfg->access_key_id,
                               .secret_access_key = cfg->secret_access_key,
                               .session_token = cfg->session_token};
    esm_aws_options sns_opt = sqs_opt;
    sns_opt.endpoint = cfg->endpoint_sns;
    d->sqs = esm_aws_create(d->http, "sqs", &sqs_opt);
    d->sns = esm_aws_create(d->http, "sns", &sns_opt);
    esm_aws_credentials creds = {.region = cfg->region,
                                 .access_key_id = cfg->access_key_id,
                                 .secret_access_key = cfg->secret_access_key,
                                 .session_token = cfg->session_token};
    d->invokers = calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof *d->invokers);
    if (!d->invokers) return false;
    for (size_t i = 0; i < cfg->n_functions; i++) {
        d->invokers[i] = esm_invoker_create(d->loop, d->http, &cfg->functions[i],
                                            cfg->access_key_id ? &creds : NULL);
        if (!d->invokers[i]) return false;
    }
    esm_outbox_env oenv = {.http = d->http,
                           .sqs = d->sqs,
                           .sns = d->sns,
                           .region = cfg->region,
                           .kafka_bootstrap = kafka_bootstrap_of,
                           .kafka_bootstrap_arg = d};
    d->outbox = esm_outbox_drainer_create(d->loop, d->store, &oenv);
    return d->outbox != NULL;
}

static void create_mappings(daemon_state *d)
{
    esm_config *cfg = d->cfg;
    d->mappings = calloc(cfg->n_mappings ? cfg->n_mappings : 1, sizeof *d->mappings);
    d->n_mappings = d->mappings ? cfg->n_mappings : 0;
    for (size_t i = 0; i < d->n_mappings; i++) {
        const esm_mapping_config *mc = &cfg->mappings[i];
        if (!mc->enabled) {
            ESM_INFO(NULL, "mapping %s (%s) is disabled", mc->uuid, mc->function_name);
            continue;
        }
        esm_source_env env = {.loop = d->loop,
                              .http = d->http,
                              .config = cfg,
                              .mapping = mc,
                              .invoker = invoker_for(d, mc->function),
                              .store = d->store,
                              .outbox = d->outbox};
        esm_err err;
        esm_err_clear(&err);
        d->mappings[i] = esm_mapping_create(&env, &err);
        if (!d->mappings[i] || esm_mapping_start(d->mappings[i], &err) != 0) {
            ESM_ERROR(NULL, "mapping %s (%s): %s", mc->uuid, mc->function_name, err.message);
            esm_mapping_destroy(d->mappings[i]);
            d->mappings[i] = NULL;
        }
    }
}

static void destroy_all(daemon_state *d)
{
    esm_admin_destroy(d->admin);
    for (size_t i = 0; i < d->n_mappings; i++)
        esm_mapping_destroy(d->mappings[i]);
    free(d->mappings);
    esm_outbox_drainer_destroy(d->outbox);
    if (d->invokers)
        for (size_t i = 0; i < d->cfg->n_functions; i++)
            esm_invoker_destroy(d->invokers[i]);
    free(d->invokers);
    esm_aws_destroy(d->sqs);
    esm_aws_destroy(d->sns);
    esm_http_destroy(d->http);
    esm_store_close(d->store);
    esm_config_destroy(d->cfg);
}

static esm_config *load_config(const char *path)
{
    esm_config_problems problems = {0};
    esm_config *cfg = esm_config_load_file(path, &problems);
    for (size_t i = 0; i < problems.n; i++)
        ESM_ERROR(NULL, "config %s: %s%s%s", path, problems.items[i].path,
                  problems.items[i].path[0] ? ": " : "", problems.items[i].message);
    esm_config_problems_free(&problems);
    return cfg;
}

int esm_daemon_run(const esm_daemon_options *opt)
{
    daemon_state d;
    memset(&d, 0, sizeof d);
    d.cfg = load_config(opt->config_path);
    if (!d.cfg) return 2;
    int level = opt->log_level >= 0 ? opt->log_level : esm_log_parse_level(d.cfg->log_level);
    if (level >= 0) esm_log_set_level((esm_log_level)level);
    esm_config_log_notes(d.cfg);
    signal(SIGPIPE, SIG_IGN);
    d.loop = ev_default_loop(EVFLAG_AUTO);
    int rc = 0;
    if (!create_shared(&d)) {
        rc = 1;
        goto out;
    }
    esm_admin_hooks hooks = {.ready = all_ready, .status = render_status, .arg = &d};
    esm_err err;
    esm_err_clear(&err);
    d.admin = esm_admin_create(d.loop, d.cfg->admin_listen, &hooks, &err);
    if (!d.admin && d.cfg->admin_listen && d.cfg->admin_listen[0]) {
        ESM_ERROR(NULL, "admin HTTP on %s: %s", d.cfg->admin_listen, err.message);
        rc = 1;
        goto out;
    }
    create_mappings(&d);
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
    ESM_INFO(NULL, "esmd running: %zu mappings, state in %s", d.cfg->n_mappings, d.cfg->state_dir);
    sd_notify(0, "READY=1\nSTATUS=running");
    ev_run(d.loop, 0);
    ESM_INFO(NULL, "exiting");
out:
    destroy_all(&d);
    ev_loop_destroy(d.loop);
    return rc;
}
