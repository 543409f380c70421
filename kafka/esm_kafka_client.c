/* The glue every librdkafka client of esmd shares (kafka/esm_kafka_client.h): the bootstrap
 * list, applying properties, the log and error callbacks, the queue's wakeup pipe. */
#include "kafka/esm_kafka_client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/esm_log.h"

char *esm_kafka_bootstrap_join(const esm_mapping_config *m)
{
    esm_buf b;
    esm_buf_init(&b);
    for (size_t i = 0; i < m->n_bootstrap_servers; i++) {
        if (i) esm_buf_putc(&b, ',');
        esm_buf_puts(&b, m->bootstrap_servers[i]);
    }
    const char *s = esm_buf_cstr(&b);
    char *r = b.failed || !s ? NULL : strdup(s);
    esm_buf_free(&b);
    return r;
}

int esm_kafka_conf_apply(rd_kafka_conf_t *conf, const esm_kafka_props *p, const char *log_ctx,
                         esm_err *err)
{
    char es[512];
    for (size_t i = 0; i < p->n; i++) {
        const esm_kafka_prop *it = &p->items[i];
        if (rd_kafka_conf_set(conf, it->name, it->value, es, sizeof es) != RD_KAFKA_CONF_OK) {
            esm_err_set(err, ESM_ERR_INVALID, false, "Kafka property %s: %s", it->name, es);
            return -1;
        }
        ESM_DEBUG(log_ctx, "kafka property %s=%s", it->name, it->secret ? "(secret)" : it->value);
    }
    return 0;
}

static const char *ctx_of(const esm_kafka_glue *g)
{
    return g && g->log_ctx ? g->log_ctx : "kafka";
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const char *ctx = ctx_of(rd_kafka_opaque(rk));
    if (level <= 3)
        ESM_WARN(ctx, "librdkafka %s: %s", fac, buf);
    else
        ESM_DEBUG(ctx, "librdkafka %s: %s", fac, buf);
}

static const char NO_SASL[] = "SASL authentication failed",
                  NO_SERVER_TRUST[] = "Lambda failed to authenticate server",
                  NO_CLIENT_TRUST[] = "Server failed to authenticate Lambda",
                  NO_ACL[] = "Cluster failed to authorize Lambda", NO_TOPIC[] = "Topic not found";
const char esm_kafka_bad_certificate[] = "Provided certificate or private key is invalid",
           esm_kafka_no_connection[] = "Connection error";

static bool has(const char *text, const char *what)
{
    return text && strcasestr(text, what) != NULL;
}

/* librdkafka's reasons start with the broker ("sasl_ssl://host:9094/bootstrap: ..."): what
 * follows, so that a host name never reads as the cause. */
static const char *past_broker(const char *reason)
{
    const char *colon = reason ? strstr(reason, ": ") : NULL;
    if (!colon) return reason;
    for (const char *c = reason; c < colon; c++)
        if (*c == ' ') return reason; /* not a broker name */
    return memchr(reason, '/', (size_t)(colon - reason)) ? colon + 2 : reason;
}

const char *esm_kafka_problem(rd_kafka_resp_err_t err, const char *reason)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return NO_ACL;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        return NO_TOPIC;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return esm_kafka_no_connection;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        break;
    default:
        return NULL;
    }
    const char *why = past_broker(reason);
    /* esmd did not trust the broker's certificate */
    if (has(why, "certificate verify failed") || has(why, "could not be verified"))
        return NO_SERVER_TRUST;
    /* the broker sent a TLS alert ("tlsv1 alert unknown ca") or failed the handshake */
    if (has(why, " alert ") || has(why, "SSL handshake failed")) return NO_CLIENT_TRUST;
    /* one connection: librdkafka retries; its "broker might require SASL authentication" on
     * any early disconnect is a guess (a broker that stopped reads so too) */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT) return NULL;
    if (has(why, "SASL authentication") || has(why, "SASL handshake")) return NO_SASL;
    if (has(why, "private key") || has(why, "ssl.key") || has(why, "ssl.certificate"))
        return esm_kafka_bad_certificate;
    return esm_kafka_no_connection;
}

bool esm_kafka_problem_ends_when_connected(const char *problem)
{
    return problem == esm_kafka_no_connection || problem == NO_SASL || problem == NO_SERVER_TRUST ||
           problem == NO_CLIENT_TRUST;
}

esm_kafka_stats_brokers esm_kafka_stats_brokers_of(const char *stats_json)
{
    /* "state" UP = connected, TLS and SASL passed. The logical GroupCoordinator
     * ("source":"logical") can read UP while no broker is; the internal one never connects. */
    cJSON *root = stats_json ? cJSON_Parse(stats_json) : NULL;
    const cJSON *b, *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
    esm_kafka_stats_brokers seen = ESM_KAFKA_STATS_UNKNOWN;
    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state"),
                    *source = cJSON_GetObjectItemCaseSensitive(b, "source");
        if (cJSON_IsString(source) && (strcmp(source->valuestring, "logical") == 0 ||
                                       strcmp(source->valuestring, "internal") == 0))
            continue;
        if (!cJSON_IsString(state)) continue;
        if (strcmp(state->valuestring, "UP") == 0) {
            seen = ESM_KAFKA_STATS_BROKER_UP;
            break;
        }
        seen = ESM_KAFKA_STATS_NONE_UP;
    }
    cJSON_Delete(root);
    return seen;
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    esm_kafka_glue *g = opaque;
    rd_kafka_resp_err_t err = (rd_kafka_resp_err_t)code;
    char why[256];
    bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;
    if (fatal) {
        rd_kafka_fatal_error(rk, why, sizeof why);
        reason = why;
        ESM_ERROR(ctx_of(g), "kafka: fatal error: %s", reason);
    } else if ((err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && !(g && g->quiet_brokers_down)) ||
               err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL) {
        ESM_WARN(ctx_of(g), "kafka: %s: %s", rd_kafka_err2name(err), reason);
    } else {
        /* transport errors repeat on every reconnect */
        ESM_DEBUG(ctx_of(g), "kafka: %s: %s", rd_kafka_err2name(err), reason);
    }
    if (g && g->on_error) g->on_error(g, err, reason, fatal);
}

void esm_kafka_conf_set_glue(rd_kafka_conf_t *conf, esm_kafka_glue *g)
{
    rd_kafka_conf_set_opaque(conf, g);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    esm_kafka_wakeup *w = io->data;
    w->cb(w->arg);
}

void esm_kafka_wakeup_init(esm_kafka_wakeup *w)
{
    memset(w, 0, sizeof *w);
    w->fd[0] = w->fd[1] = -1;
}

int esm_kafka_wakeup_open(esm_kafka_wakeup *w, struct ev_loop *loop, rd_kafka_queue_t *q,
                          void (*cb)(void *arg), void *arg, esm_err *err)
{
    w->q = q;
    w->loop = loop;
    w->cb = cb;
    w->arg = arg;
    if (!q || pipe2(w->fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        esm_err_set(err, ESM_ERR_IO, true, "kafka: cannot set up the wakeup pipe");
        return -1;
    }
    rd_kafka_queue_io_event_enable(q, w->fd[1], "1", 1);
    /* librdkafka writes when the queue becomes non-empty: what it queued before (a broker
     * error right after rd_kafka_new) would wait for the next event */
    if (rd_kafka_queue_length(q) > 0 && write(w->fd[1], "1", 1) < 0) {
        /* the pipe is full: a wakeup is pending anyway */
    }
    ev_io_init(&w->io, on_io, w->fd[0], EV_READ);
    w->io.data = w;
    return 0;
}

void esm_kafka_wakeup_start(esm_kafka_wakeup *w)
{
    if (w->fd[0] >= 0) ev_io_start(w->loop, &w->io);
}

void esm_kafka_wakeup_drain(esm_kafka_wakeup *w)
{
    char drain[64];
    while (w->fd[0] >= 0 && read(w->fd[0], drain, sizeof drain) > 0) {
    }
}

void esm_kafka_wakeup_close(esm_kafka_wakeup *w)
{
    if (w->loop && ev_is_active(&w->io)) ev_io_stop(w->loop, &w->io);
    if (w->q) {
        if (w->fd[1] >= 0) rd_kafka_queue_io_event_enable(w->q, -1, NULL, 0);
        rd_kafka_queue_destroy(w->q);
    }
    if (w->fd[0] >= 0) close(w->fd[0]);
    if (w->fd[1] >= 0) close(w->fd[1]);
    esm_kafka_wakeup_init(w);
}
