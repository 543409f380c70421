#include "checkpoint/esm_store_writer.h"

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"

/* The most steps in one transaction: bounds the time the store's mutex is held. */
#define WRITER_MAX_GROUP 256

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

struct esm_store_write {
    esm_store_write *next;
    job_state state;
    bool forgotten; /* the caller went away: no callback */
    char *mapping, *source, *lane;
    esm_store_step step; /* points into the copies below */
    esm_store_batch batch;
    esm_outbox_item *items;
    esm_store_write_cb cb;
    void *arg;
    int rc;
    esm_err err;
};

struct esm_store_writer {
    esm_store *store;
    struct ev_loop *loop;
    ev_async wake; /* writer thread -> loop: results are ready */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* loop -> writer: a job was queued, or stop */
    pthread_cond_t done; /* writer -> esm_store_write_forget: a group finished */
    esm_store_write *queue, **queue_tail;
    esm_store_write *finished, **finished_tail;
    bool stop;
    size_t in_flight; /* queued, not yet reported (loop thread only): keeps the loop alive */
    unsigned long long commits, steps;
};

/* ---- jobs --------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *ok = false;
    return d;
}

static void *dup_bytes(const void *p, size_t n, bool *ok)
{
    if (!p) return NULL;
    char *d = malloc(n + 1); /* + NUL: payloads are JSON text */
    if (!d) {
        *ok = false;
        return NULL;
    }
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void job_free(esm_store_write *j)
{
    if (!j) return;
    free(j->mapping);
    free(j->source);
    free(j->lane);
    free((char *)j->step.position);
    free((char *)j->step.window_state);
    free((char *)j->batch.first_id);
    free((char *)j->batch.last_id);
    free((char *)j->batch.state);
    for (size_t i = 0; j->items && i < j->step.n_items; i++) {
        free((char *)j->items[i].destination);
        free((char *)j->items[i].payload);
        free((void *)j->items[i].key);
        free((char *)j->items[i].dedupe_key);
    }
    free(j->items);
    free(j);
}

static esm_store_write *job_copy(const char *mapping, const char *source, const char *lane,
                                 const esm_store_step *step)
{
    esm_store_write *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    bool ok = true;
    j->mapping = dup_or_null(mapping, &ok);
    j->source = dup_or_null(source, &ok);
    j->lane = dup_or_null(lane, &ok);
    j->step = *step;
    j->step.position = dup_or_null(step->position, &ok);
    j->step.window_state = dup_or_null(step->window_state, &ok);
    j->step.items = NULL;
    j->step.n_items = 0;
    if (step->batch) {
        j->batch.first_id = dup_or_null(step->batch->first_id, &ok);
        j->batch.last_id = dup_or_null(step->batch->last_id, &ok);
        j->batch.state = dup_or_null(step->batch->state, &ok);
        j->step.batch = &j->batch;
    }
    if (step->n_items) {
        j->items = calloc(step->n_items, sizeof *j->items);
        if (!j->items) ok = false;
        for (size_t i = 0; j->items && i < step->n_items; i++) {
            const esm_outbox_item *src = &step->items[i];
            esm_outbox_item *d = &j->items[i];
            size_t len =
                src->payload_len ? src->payload_len : (src->payload ? strlen(src->payload) : 0);
            d->destination = dup_or_null(src->destination, &ok);
            d->payload = dup_bytes(src->payload, len, &ok);
            d->payload_len = len;
            d->key = dup_bytes(src->key, src->key_len, &ok);
            d->key_len = src->key_len;
            d->dedupe_key = dup_or_null(src->dedupe_key, &ok);
            j->step.n_items = i + 1;
        }
        j->step.items = j->items;
    }
    if (!ok) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* ---- the writer thread --------------------------------------------------------------------- */

static void *writer_main(void *arg)
{
    esm_store_writer *w = arg;
    esm_store_write *group[WRITER_MAX_GROUP];
    esm_store_advance_req reqs[WRITER_MAX_GROUP];
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->queue && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->queue) break; /* stopping, and everything queued is written */
        size_t n = 0;
        while (w->queue && n < WRITER_MAX_GROUP) {
            esm_store_write *j = w->queue;
            w->queue = j->next;
            j->next = NULL;
            j->state = JOB_RUNNING;
            group[n++] = j;
        }
        if (!w->queue) w->queue_tail = &w->queue;
        pthread_mutex_unlock(&w->mu);

        for (size_t i = 0; i < n; i++)
            reqs[i] = (esm_store_advance_req){.mapping = group[i]->mapping,
                                              .source = group[i]->source,
                                              .lane = group[i]->lane,
                                              .step = &group[i]->step};
        esm_store_advance_group(w->store, reqs, n);

        pthread_mutex_lock(&w->mu);
        w->commits++;
        w->steps += n;
        for (size_t i = 0; i < n; i++) {
            group[i]->rc = reqs[i].rc;
            group[i]->err = reqs[i].err;
            group[i]->state = JOB_DONE;
            *w->finished_tail = group[i];
            w->finished_tail = &group[i]->next;
        }
        pthread_cond_broadcast(&w->done);
        pthread_mutex_unlock(&w->mu);
        ev_async_send(w->loop, &w->wake);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the loop side ----------------------------------------------------------------------------
 */

static void in_flight_add(esm_store_writer *w, long d)
{
    /* The wake watcher is unreferenced while nothing is pending, so an idle writer never keeps
     * the loop running; a pending write does, until its result arrived. */
    if (d > 0 && w->in_flight++ == 0) ev_ref(w->loop);
    if (d < 0 && --w->in_flight == 0) ev_unref(w->loop);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    esm_store_writer *w = a->data;
    pthread_mutex_lock(&w->mu);
    esm_store_write *list = w->finished;
    w->finished = NULL;
    w->finished_tail = &w->finished;
    pthread_mutex_unlock(&w->mu);
    while (list) {
        esm_store_write *j = list;
        list = j->next;
        in_flight_add(w, -1);
        /* forgotten is set on this thread only (esm_store_write_forget), so it is checked here,
         * after earlier callbacks of this same list ran. */
        if (!j->forgotten && j->cb) j->cb(j->rc, &j->err, j->arg);
        job_free(j);
    }
}

esm_store_writer *esm_store_writer_create(esm_store *s, struct ev_loop *loop, esm_err *err)
{
    esm_store_writer *w = calloc(1, sizeof *w);
    if (!w) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory creating the store writer");
        return NULL;
    }
    w->store = s;
    w->loop = loop;
    w->queue_tail = &w->queue;
    w->finished_tail = &w->finished;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->done, NULL);
    ev_async_init(&w->wake, on_wake);
    w->wake.data = w;
    ev_async_start(loop, &w->wake);
    ev_unref(loop);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        esm_err_set(err, ESM_ERR_IO, false, "cannot start the store writer thread");
        ev_ref(loop);
        ev_async_stop(loop, &w->wake);
        pthread_cond_destroy(&w->done);
        pthread_cond_destroy(&w->work);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void esm_store_writer_destroy(esm_store_writer *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (w->in_flight) ev_unref(w->loop);
    ev_ref(w->loop);
    ev_async_stop(w->loop, &w->wake);
    for (esm_store_write *j = w->finished, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

esm_store_write *esm_store_writer_advance(esm_store_writer *w, const char *mapping,
                                          const char *source, const char *lane,
                                          const esm_store_step *step, esm_store_write_cb cb,
                                          void *arg)
{
    if (!step) return NULL;
    esm_store_write *j = job_copy(mapping, source, lane, step);
    if (!j) return NULL;
    j->cb = cb;
    j->arg = arg;
    in_flight_add(w, +1);
    pthread_mutex_lock(&w->mu);
    *w->queue_tail = j;
    w->queue_tail = &j->next;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return j;
}

int esm_store_write_forget(esm_store_writer *w, esm_store_write *job, esm_err *err)
{
    pthread_mutex_lock(&w->mu);
    while (job->state != JOB_DONE)
        pthread_cond_wait(&w->done, &w->mu);
    job->forgotten = true; /* freed by on_wake, which has not seen it yet */
    int rc = job->rc;
    if (err) *err = job->err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void esm_store_writer_counts(esm_store_writer *w, unsigned long long *commits,
                             unsigned long long *steps)
{
    pthread_mutex_lock(&w->mu);
    *commits = w->commits;
    *steps = w->steps;
    pthread_mutex_unlock(&w->mu);
}
