#include "destinations/esm_kafka_producer.h"

#include <ev.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/esm_log.h"
#include "destinations/esm_dest_refusal.h"

#define LOG_CTX "outbox kafka"

typedef struct producer {
    esm_kafka_producers *owner;
    char *bootstrap;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    int pipefd[2];
    ev_io io;
    bool fatal; /* an idempotence fatal error: recreate before the next produce */
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

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        ESM_WARN(LOG_CTX, "%s: %s", fac, buf);
    else
        ESM_DEBUG(LOG_CTX, "%s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    producer *pr = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_fatal_error(rk, why, sizeof why);
        ESM_ERROR(LOG_CTX, "producer for %s: fatal error: %s (it will be recreated)", pr->bootstrap,
                  why);
        pr->fatal = true;
        return;
    }
    /* transport errors repeat on every reconnect; delivery reports carry what matters */
    ESM_DEBUG(LOG_CTX, "producer for %s: %s: %s", pr->bootstrap,
              rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void serve(producer *pr)
{
    char drain[64];
    while (read(pr->pipefd[0], drain, sizeof drain) > 0) {
    }
    while (rd_kafka_poll(pr->rk, 0) > 0) {
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    serve(w->data);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    esm_kafka_producers *p = w->data;
    for (producer *pr = p->list; pr; pr = pr->next)
        serve(pr);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, esm_err *err)
{
    char es[256];
    if (rd_kafka_conf_set(conf, k, v, es, sizeof es) != RD_KAFKA_CONF_OK) {
        esm_err_set(err, ESM_ERR_INVALID, false, "kafka config %s=%s: %s", k, v, es);
        return false;
    }
    return true;
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
    if (pr->owner && ev_is_active(&pr->io)) ev_io_stop(pr->owner->loop, &pr->io);
    if (pr->mainq) rd_kafka_queue_destroy(pr->mainq);
    if (pr->rk) rd_kafka_destroy(pr->rk);
    if (pr->pipefd[0] >= 0) close(pr->pipefd[0]);
    if (pr->pipefd[1] >= 0) close(pr->pipefd[1]);
    free(pr->bootstrap);
    free(pr);
}

static producer *producer_new(esm_kafka_producers *p, const char *bootstrap, esm_err *err)
{
    producer *pr = calloc(1, sizeof *pr);
    if (!pr) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        return NULL;
    }
    pr->pipefd[0] = pr->pipefd[1] = -1;
    pr->bootstrap = strdup(bootstrap);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char tmo[32];
    snprintf(tmo, sizeof tmo, "%ld", p->message_timeout_ms);
    if (!pr->bootstrap || !conf || !conf_set(conf, "bootstrap.servers", bootstrap, err) ||
        !conf_set(conf, "acks", "all", err) || !conf_set(conf, "enable.idempotence", "true", err) ||
        !conf_set(conf, "message.timeout.ms", tmo, err) || !conf_set(conf, "linger.ms", "5", err) ||
        !conf_set(conf, "client.id", "esmd-outbox", err)) {
        if (conf) rd_kafka_conf_destroy(conf);
        producer_free(pr, 0);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, pr);
    char es[512];
    pr->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof es);
    if (!pr->rk) {
        rd_kafka_conf_destroy(conf);
        esm_err_set(err, ESM_ERR_INVALID, false, "kafka producer for %s: %s", bootstrap, es);
        producer_free(pr, 0);
        return NULL;
    }
    if (pipe2(pr->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
        esm_err_set(err, ESM_ERR_IO, true, "kafka producer: pipe: %m");
        producer_free(pr, 0);
        return NULL;
    }
    pr->mainq = rd_kafka_queue_get_main(pr->rk);
    rd_kafka_queue_io_event_enable(pr->mainq, pr->pipefd[1], "1", 1);
    pr->owner = p;
    ev_io_init(&pr->io, on_io, pr->pipefd[0], EV_READ);
    pr->io.data = pr;
    ev_io_start(p->loop, &pr->io);
    ESM_INFO(LOG_CTX, "producer for %s created (acks=all, idempotent)", bootstrap);
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

static producer *get_producer(esm_kafka_producers *p, const char *bootstrap, esm_err *err)
{
    for (producer **pp = &p->list; *pp; pp = &(*pp)->next) {
        producer *pr = *pp;
        if (strcmp(pr->bootstrap, bootstrap) != 0) continue;
        if (!pr->fatal) return pr;
        *pp = pr->next; /* its queued messages get error reports and are retried */
        producer_free(pr, 0);
        break;
    }
    producer *pr = producer_new(p, bootstrap, err);
    if (!pr) return NULL;
    pr->next = p->list;
    p->list = pr;
    return pr;
}

int esm_kafka_produce(esm_kafka_producers *p, const char *bootstrap, const char *topic,
                      const void *key, size_t key_len, const void *value, size_t value_len,
                      esm_kafka_delivery_cb cb, void *opaque, esm_err *err)
{
    producer *pr = get_producer(p, bootstrap, err);
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
