#include "destinations/esm_kafka_producer.h"

#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "destinations/esm_dest_refusal.h"
#include "kafka/esm_kafka_client.h"

#define LOG_CTX "outbox kafka"

typedef struct producer {
    esm_kafka_glue glue; /* first: the rd_kafka_t's opaque (kafka/esm_kafka_client.h) */
    char *bootstrap;
    char *identity; /* esm_kafka_security_identity ("" plaintext): compared, never logged */
    rd_kafka_t *rk;
    esm_kafka_wakeup wake; /* the main queue: delivery reports, errors */
    bool fatal;            /* an idempotence fatal error: recreate before the next produce */
    ev_tstamp last_used;   /* retired once idle (e.g. the old one after a secret rotation) */
    struct producer *next;
} producer;

typedef struct {
    esm_kafka_delivery_cb cb;
    void *opaque;
} delivery;

struct esm_kafka_producers {
    struct ev_loop *loop;
    long message_timeout_ms;
    producer *list;
    ev_timer tick; /* fallback poll, in case an io event is missed */
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    delivery *dv = m->_private;
    if (!dv) return;
    if (m->err) {
        char msg[300];
        snprintf(msg, sizeof msg, "kafka delivery failed: %s", rd_kafka_err2str(m->err));
        dv->cb(dv->opaque, msg, esm_refusal_kafka_permanent(m->err));
    } else {
        dv->cb(dv->opaque, NULL, false);
    }
    free(dv);
}

static void on_error(esm_kafka_glue *g, rd_kafka_resp_err_t err, const char *reason, bool fatal)
{
    (void)err;
    (void)reason;
    producer *pr = (producer *)g;
    if (!fatal) return; /* delivery reports carry what matters */
    ESM_INFO(LOG_CTX, "producer for %s is recreated before its next message", pr->bootstrap);
    pr->fatal = true;
}

static void serve(void *arg)
{
    producer *pr = arg;
    esm_kafka_wakeup_drain(&pr->wake);
    while (rd_kafka_poll(pr->rk, 0) > 0) {
    }
}

static void producer_free(producer *pr, long flush_timeout_ms);

size_t esm_kafka_producers_retire_idle(esm_kafka_producers *p, double idle_seconds)
{
    size_t n = 0;
    ev_tstamp now = ev_now(p->loop);
    for (producer **pp = &p->list; *pp;) {
        producer *pr = *pp;
        if (now - pr->last_used < idle_seconds || rd_kafka_outq_len(pr->rk) > 0) {
            pp = &pr->next;
            continue;
        }
        *pp = pr->next;
        ESM_DEBUG(LOG_CTX, "producer for %s idle: closed", pr->bootstrap);
        producer_free(pr, 0);
        n++;
    }
    return n;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kafka_producers *p = w->data;
    for (producer *pr = p->list; pr; pr = pr->next)
        serve(pr);
    esm_kafka_producers_retire_idle(p, ESM_KAFKA_PRODUCER_IDLE_SECONDS);
}

static void producer_free(producer *pr, long flush_timeout_ms)
{
    if (!pr) return;
    if (pr->rk) {
        if (flush_timeout_ms > 0) rd_kafka_flush(pr->rk, (int)flush_timeout_ms);
        /* whatever is left gets an error report now, so no callback is lost */
        rd_kafka_purge(pr->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(pr->rk, 0);
        while (rd_kafka_outq_len(pr->rk) > 0 && rd_kafka_poll(pr->rk, 100) > 0) {
        }
    }
    esm_kafka_wakeup_close(&pr->wake);
    if (pr->rk) rd_kafka_destroy(pr->rk);
    free(pr->bootstrap);
    if (pr->identity) memset(pr->identity, 0, strlen(pr->identity));
    free(pr->identity);
    free(pr);
}

rd_kafka_conf_t *esm_kafka_producer_conf(const char *bootstrap, const esm_mapping_config *security,
                                         long message_timeout_ms, esm_err *err)
{
    esm_kafka_props props = {0};
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%ld", message_timeout_ms);
    if (esm_kafka_props_set(&props, "bootstrap.servers", bootstrap, false) ||
        esm_kafka_props_set(&props, "acks", "all", false) ||
        esm_kafka_props_set(&props, "enable.idempotence", "true", false) ||
        esm_kafka_props_set(&props, "message.timeout.ms", tmo, false) ||
        esm_kafka_props_set(&props, "linger.ms", "5", false) ||
        esm_kafka_props_set(&props, "client.id", "esmd-outbox", false)) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        esm_kafka_props_free(&props);
        return NULL;
    }
    if (security && esm_kafka_props_add_security(&props, security, err) != 0) {
        esm_kafka_props_free(&props);
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf || esm_kafka_conf_apply(conf, &props, LOG_CTX, err) != 0) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        else
            esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        conf = NULL;
    }
    esm_kafka_props_free(&props);
    return conf;
}

static producer *producer_new(esm_kafka_producers *p, const char *bootstrap,
                              const esm_mapping_config *security, char *identity, esm_err *err)
{
    producer *pr = calloc(1, sizeof *pr);
    if (!pr) {
        free(identity);
        esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        return NULL;
    }
    esm_kafka_wakeup_init(&pr->wake);
    /* a destination that is down shows in the outbox status; a refused login is worth a warning */
    pr->glue =
        (esm_kafka_glue){.log_ctx = LOG_CTX, .quiet_brokers_down = true, .on_error = on_error};
    pr->identity = identity;
    pr->bootstrap = strdup(bootstrap);
    rd_kafka_conf_t *conf =
        pr->bootstrap ? esm_kafka_producer_conf(bootstrap, security, p->message_timeout_ms, err)
                      : NULL;
    if (!conf) {
        if (!pr->bootstrap) esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        producer_free(pr, 0);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    esm_kafka_conf_set_glue(conf, &pr->glue);
    char es[512];
    pr->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!pr->rk) {
        rd_kafka_conf_destroy(conf);
        esm_err_set(err, ESM_ERR_INVALID, false, "kafka producer for %s: %s", bootstrap, es);
        producer_free(pr, 0);
        return NULL;
    }
    if (esm_kafka_wakeup_open(&pr->wake, p->loop, rd_kafka_queue_get_main(pr->rk), serve, pr,
                              err) != 0) {
        producer_free(pr, 0);
        return NULL;
    }
    esm_kafka_wakeup_start(&pr->wake);
    ESM_INFO(LOG_CTX, "producer for %s created (acks=all, idempotent, %s)", bootstrap,
             security ? "the source mapping's security settings" : "plaintext");
    return pr;
}

esm_kafka_producers *esm_kafka_producers_create(struct ev_loop *loop, long message_timeout_ms)
{
    esm_kafka_producers *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->loop = loop;
    p->message_timeout_ms = message_timeout_ms > 0 ? message_timeout_ms : 30000;
    ev_timer_init(&p->tick, on_tick, 1.0, 1.0);
    p->tick.data = p;
    ev_timer_start(loop, &p->tick);
    return p;
}

void esm_kafka_producers_destroy(esm_kafka_producers *p, long flush_timeout_ms)
{
    if (!p) return;
    ev_timer_stop(p->loop, &p->tick);
    while (p->list) {
        producer *pr = p->list;
        p->list = pr->next;
        producer_free(pr, flush_timeout_ms);
    }
    free(p);
}

size_t esm_kafka_producers_count(const esm_kafka_producers *p)
{
    size_t n = 0;
    for (const producer *pr = p->list; pr; pr = pr->next)
        n++;
    return n;
}

const esm_mapping_config *esm_kafka_dest_security(const char *dest_bootstrap,
                                                  const esm_mapping_config *source)
{
    if (!source || source->n_bootstrap_servers == 0) return NULL;
    if (!dest_bootstrap || !dest_bootstrap[0]) return source;
    char *joined = esm_kafka_bootstrap_join(source);
    bool same = joined && strcmp(joined, dest_bootstrap) == 0;
    free(joined);
    return same ? source : NULL;
}

/* The producer for bootstrap and security; a producer that cannot be created (an unreadable
 * secret, a certificate librdkafka refuses) leaves the message waiting: err is retriable. */
static producer *get_producer(esm_kafka_producers *p, const char *bootstrap,
                              const esm_mapping_config *security, esm_err *err)
{
    esm_buf id;
    esm_buf_init(&id);
    if (security) esm_kafka_security_identity(security, &id);
    const char *ids = esm_buf_cstr(&id);
    char *identity = !id.failed && ids ? strdup(ids) : NULL;
    if (id.data) memset(id.data, 0, id.cap);
    esm_buf_free(&id);
    if (!identity) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        return NULL;
    }
    for (producer **pp = &p->list; *pp; pp = &(*pp)->next) {
        producer *pr = *pp;
        if (strcmp(pr->bootstrap, bootstrap) != 0 || strcmp(pr->identity, identity) != 0) continue;
        if (!pr->fatal) {
            memset(identity, 0, strlen(identity));
            free(identity);
            pr->last_used = ev_now(p->loop);
            return pr;
        }
        *pp = pr->next; /* its queued messages get error reports and are retried */
        producer_free(pr, 0);
        break;
    }
    producer *pr = producer_new(p, bootstrap, security, identity, err);
    if (!pr) {
        err->retriable = true;
        return NULL;
    }
    pr->last_used = ev_now(p->loop);
    pr->next = p->list;
    p->list = pr;
    return pr;
}

int esm_kafka_produce(esm_kafka_producers *p, const char *bootstrap,
                      const esm_mapping_config *security, const char *topic, const void *key,
                      size_t key_len, const void *value, size_t value_len, esm_kafka_delivery_cb cb,
                      void *opaque, esm_err *err)
{
    producer *pr = get_producer(p, bootstrap, security, err);
    if (!pr) return -1;
    delivery *dv = malloc(sizeof *dv);
    if (!dv) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        return -1;
    }
    dv->cb = cb;
    dv->opaque = opaque;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        pr->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key_len ? key : NULL, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_OPAQUE(dv), RD_KAFKA_V_END);
    if (e) {
        free(dv);
        bool permanent = esm_refusal_kafka_permanent(e);
        esm_err_set(err, permanent ? ESM_ERR_INVALID : ESM_ERR_IO, !permanent,
                    "kafka produce to %s/%s: %s", bootstrap, topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}
