/* esmd-outbox-driver: runs the outbox drainer (destinations/esm_outbox.h) alone, for the
 * integration tests in tests/integration/test_destinations*.py.
 *
 *   esmd-outbox-driver --state-dir DIR [--rows FILE] [--add-only] [--status FILE]
 *       [--exit-when-empty] [--sqs-endpoint URL] [--sns-endpoint URL] [--region R]
 *       [--account A] [--kafka-bootstrap HOST:PORT,..] [--max-in-flight N]
 *       [--per-destination N]
 *
 * --rows: JSON lines {"destination": "...", "payload": {...}, "key": "..." (optional),
 * "mapping": "..." (optional)}, added to the outbox in one transaction before draining.
 * --status: the drainer's status JSON, rewritten atomically every 100 ms.
 * --kafka-bootstrap: the source cluster for kafka://TOPIC rows of every mapping.
 * AWS credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. SIGTERM / SIGINT stop
 * cleanly (exit 0). */
#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/esm_aws.h"
#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "destinations/esm_outbox.h"

typedef struct {
    const char *state_dir, *rows, *status, *sqs_endpoint, *sns_endpoint, *region, *account;
    const char *kafka_bootstrap;
    int add_only, exit_when_empty, max_in_flight, per_destination;
    esm_store *store;
    esm_outbox_drainer *d;
} driver;

/* a test tool: running out of memory ends it */
static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return q;
}

static int add_rows(driver *dv)
{
    FILE *f = fopen(dv->rows, "r");
    if (!f) {
        perror(dv->rows);
        return -1;
    }
    size_t cap = 0, n = 0;
    esm_outbox_item *items = NULL;
    cJSON **docs = NULL;
    char **payloads = NULL;
    char *line = NULL;
    size_t lcap = 0;
    int rc = 0;
    const char *mapping = "driver";
    while (getline(&line, &lcap, f) > 0) {
        if (line[0] == '\n') continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *dest = cJSON_GetObjectItem(j, "destination");
        const cJSON *payload = cJSON_GetObjectItem(j, "payload");
        if (!cJSON_IsString(dest) || !payload) {
            fprintf(stderr, "bad row: %s", line);
            cJSON_Delete(j);
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            items = xrealloc(items, cap * sizeof *items);
            docs = xrealloc(docs, cap * sizeof *docs);
            payloads = xrealloc(payloads, cap * sizeof *payloads);
        }
        const cJSON *m = cJSON_GetObjectItem(j, "mapping");
        if (cJSON_IsString(m)) mapping = m->valuestring;
        const cJSON *key = cJSON_GetObjectItem(j, "key");
        docs[n] = j;
        payloads[n] = cJSON_PrintUnformatted(payload);
        items[n] = (esm_outbox_item){.destination = dest->valuestring, .payload = payloads[n]};
        if (cJSON_IsString(key)) {
            items[n].key = key->valuestring;
            items[n].key_len = strlen(key->valuestring);
        }
        n++;
    }
    free(line);
    fclose(f);
    esm_err err = {0};
    if (rc == 0 && n && esm_store_outbox_add(dv->store, mapping, items, n, &err) != 0) {
        fprintf(stderr, "outbox_add: %s\n", err.message);
        rc = -1;
    }
    for (size_t i = 0; i < n; i++) {
        free(payloads[i]);
        cJSON_Delete(docs[i]);
    }
    free(items);
    free(docs);
    free(payloads);
    return rc;
}

static void write_status(driver *dv)
{
    esm_buf b;
    esm_buf_init(&b);
    esm_outbox_drainer_status(dv->d, &b);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dv->status);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fwrite(b.data, 1, b.len, f);
        fclose(f);
        rename(tmp, dv->status);
    }
    esm_buf_free(&b);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    driver *dv = w->data;
    if (dv->status) write_status(dv);
    if (dv->exit_when_empty) {
        esm_err err = {0};
        esm_outbox_counters c;
        esm_outbox_drainer_counters(dv->d, &c);
        if (esm_store_outbox_depth(dv->store, NULL, &err) == 0 && c.in_flight == 0)
            ev_break(loop, EVBREAK_ALL);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Every mapping is a plaintext Kafka source on --kafka-bootstrap. */
static const esm_mapping_config *source_for(const char *mapping, void *arg)
{
    (void)mapping;
    return arg;
}

int main(int argc, char **argv)
{
    driver dv = {.region = "us-east-1", .account = "000000000000"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, field)                                                                           \
    if (!strcmp(a, name) && v) {                                                                   \
        dv.field = v;                                                                              \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        OPT("--state-dir", state_dir)
        OPT("--rows", rows)
        OPT("--status", status)
        OPT("--sqs-endpoint", sqs_endpoint)
        OPT("--sns-endpoint", sns_endpoint)
        OPT("--region", region)
        OPT("--account", account)
        OPT("--kafka-bootstrap", kafka_bootstrap)
#undef OPT
        if (!strcmp(a, "--add-only")) {
            dv.add_only = 1;
        } else if (!strcmp(a, "--exit-when-empty")) {
            dv.exit_when_empty = 1;
        } else if (!strcmp(a, "--max-in-flight") && v) {
            dv.max_in_flight = atoi(v);
            i++;
        } else if (!strcmp(a, "--per-destination") && v) {
            dv.per_destination = atoi(v);
            i++;
        } else {
            fprintf(stderr, "unknown or incomplete option %s\n", a);
            return 2;
        }
    }
    if (!dv.state_dir) {
        fprintf(stderr, "--state-dir is required\n");
        return 2;
    }
    const char *lvl = getenv("ESMD_LOG_LEVEL");
    if (lvl && esm_log_parse_level(lvl) >= 0) esm_log_set_level(esm_log_parse_level(lvl));
    esm_err err = {0};
    dv.store = esm_store_open(dv.state_dir, &err);
    if (!dv.store) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
    }
    if (dv.rows && add_rows(&dv) != 0) {
        esm_store_close(dv.store);
        return 1;
    }
    if (dv.add_only) {
        esm_store_close(dv.store);
        return 0;
    }
    struct ev_loop *loop = EV_DEFAULT;
    esm_http *http = esm_http_create(loop);
    esm_aws_options ao = {.region = dv.region,
                          .access_key_id = getenv("AWS_ACCESS_KEY_ID"),
                          .secret_access_key = getenv("AWS_SECRET_ACCESS_KEY")};
    ao.endpoint = dv.sqs_endpoint;
    esm_aws *sqs = dv.sqs_endpoint ? esm_aws_create(http, "sqs", &ao) : NULL;
    ao.endpoint = dv.sns_endpoint;
    esm_aws *sns = dv.sns_endpoint ? esm_aws_create(http, "sns", &ao) : NULL;
    char *bootstrap = (char *)dv.kafka_bootstrap;
    esm_mapping_config source = {.bootstrap_servers = &bootstrap, .n_bootstrap_servers = 1};
    esm_outbox_env env = {.http = http,
                          .sqs = sqs,
                          .sns = sns,
                          .region = dv.region,
                          .account = dv.account,
                          .kafka_source = dv.kafka_bootstrap ? source_for : NULL,
                          .kafka_source_arg = &source,
                          .max_in_flight = dv.max_in_flight,
                          .max_in_flight_per_destination = dv.per_destination};
    dv.d = esm_outbox_drainer_create(loop, dv.store, &env);
    if (!dv.d) {
        fprintf(stderr, "drainer create failed\n");
        return 1;
    }
    ev_timer tick;
    ev_timer_init(&tick, on_tick, 0.1, 0.1);
    tick.data = &dv;
    ev_timer_start(loop, &tick);
    ev_signal sterm, sint;
    ev_signal_init(&sterm, on_signal, SIGTERM);
    ev_signal_init(&sint, on_signal, SIGINT);
    ev_signal_start(loop, &sterm);
    ev_signal_start(loop, &sint);
    ev_run(loop, 0);
    ev_timer_stop(loop, &tick);
    if (dv.status) write_status(&dv);
    esm_outbox_drainer_destroy(dv.d);
    esm_aws_destroy(sqs);
    esm_aws_destroy(sns);
    esm_http_destroy(http);
    esm_store_close(dv.store);
    return 0;
}
