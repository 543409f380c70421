/* Per-lane state: checkpoints, batch (retry) state, tumbling windows, and the durable step. */
#include "checkpoint/esm_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_time.h"

#define LOCK(s) pthread_mutex_lock(&(s)->mu)
#define UNLOCK(s) pthread_mutex_unlock(&(s)->mu)

void esm_store_lane_clear(esm_store_lane *l)
{
    if (!l) return;
    free(l->source);
    free(l->lane);
    free(l->position);
    free(l->parents);
    free(l->start_at);
    memset(l, 0, sizeof *l);
}

void esm_store_lanes_free(esm_store_lane *lanes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        esm_store_lane_clear(&lanes[i]);
    free(lanes);
}

void esm_store_batch_row_clear(esm_store_batch_row *b)
{
    if (!b) return;
    free(b->first_id);
    free(b->last_id);
    free(b->state);
    memset(b, 0, sizeof *b);
}

static bool esm_store_args_ok(const char *mapping, const char *source, const char *lane)
{
    return mapping && *mapping && source && *source && lane && *lane;
}

static int esm_store_bad_lane(esm_store *s, const char *mapping, esm_err *err)
{
    return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err,
                                "mapping, source and lane must be non-empty strings");
}

/* Runs one prepared write statement bound to a lane, outside or inside a transaction. */
static int esm_store_lane_write(esm_store *s, esm_store_stmt_id id, const char *mapping,
                                const char *source, const char *lane, const char *what,
                                esm_err *err)
{
    sqlite3_stmt *st = esm_store_stmt(s, id);
    esm_store_bind_lane(st, mapping, source, lane);
    int rc = esm_store_exec_stmt(st);
    int ret = rc == SQLITE_DONE ? 0 : esm_store_fail(s, rc, mapping, what, err);
    esm_store_stmt_done(st);
    return ret;
}

/* Reads a lane row from LANE_GET / LANE_LIST columns. */
static int esm_store_read_lane(sqlite3_stmt *st, esm_store_lane *l)
{
    memset(l, 0, sizeof *l);
    if (esm_store_col_dup(st, 0, &l->source) || esm_store_col_dup(st, 1, &l->lane) ||
        esm_store_col_dup(st, 2, &l->position) || esm_store_col_dup(st, 4, &l->parents) ||
        esm_store_col_dup(st, 7, &l->start_at)) {
        esm_store_lane_clear(l);
        return -1;
    }
    const unsigned char *state = sqlite3_column_text(st, 3);
    l->finished = state && strcmp((const char *)state, "finished") == 0;
    l->updated_at_ms = sqlite3_column_int64(st, 5);
    l->confirmed = sqlite3_column_int(st, 6) != 0;
    return 0;
}

int esm_store_lane_register(esm_store *s, const char *mapping, const char *source, const char *lane,
                            const char *parents, esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_LANE_REGISTER);
    esm_store_bind_lane(st, mapping, source, lane);
    sqlite3_bind_text(st, 4, parents, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, esm_now_ms());
    int rc = esm_store_exec_stmt(st);
    int ret = rc == SQLITE_DONE ? 0 : esm_store_fail(s, rc, mapping, "registering a lane", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

int esm_store_checkpoint_get(esm_store *s, const char *mapping, const char *source,
                             const char *lane, esm_store_lane *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_LANE_GET);
    esm_store_bind_lane(st, mapping, source, lane);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        ret = esm_store_read_lane(st, out) == 0
                  ? 0
                  : esm_store_fail_plain(s, ESM_ERR_NOMEM, mapping, err, "out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = 1;
    } else {
        ret = esm_store_fail(s, rc, mapping, "reading a checkpoint", err);
    }
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

int esm_store_checkpoint_list(esm_store *s, const char *mapping, const char *source,
                              esm_store_lane **lanes, size_t *n, esm_err *err)
{
    *lanes = NULL;
    *n = 0;
    if (!mapping || !*mapping)
        return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err, "mapping is empty");
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_LANE_LIST);
    sqlite3_bind_text(st, 1, mapping, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    esm_store_lane *v = NULL;
    size_t len = 0, cap = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            esm_store_lane *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) break;
            v = nv;
            cap = ncap;
        }
        if (esm_store_read_lane(st, &v[len]) != 0) break;
        len++;
    }
    if (rc == SQLITE_ROW) {
        ret = esm_store_fail_plain(s, ESM_ERR_NOMEM, mapping, err, "out of memory");
    } else if (rc != SQLITE_DONE) {
        ret = esm_store_fail(s, rc, mapping, "listing checkpoints", err);
    }
    esm_store_stmt_done(st);
    UNLOCK(s);
    if (ret != 0) {
        esm_store_lanes_free(v, len);
        return -1;
    }
    *lanes = v;
    *n = len;
    return 0;
}

/* Forgets a lane's rows (checkpoint, batch, window) inside the caller's transaction. */
static int forget_lane(esm_store *s, const char *mapping, const char *source, const char *lane,
                       esm_err *err)
{
    static const esm_store_stmt_id ids[] = {ESM_STMT_LANE_DELETE, ESM_STMT_BATCH_DELETE,
                                            ESM_STMT_WINDOW_DELETE};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (esm_store_lane_write(s, ids[i], mapping, source, lane, "forgetting a lane", err) != 0)
            return -1;
    return 0;
}

int esm_store_lane_move(esm_store *s, const char *mapping, const char *source, const char *lane,
                        const esm_store_move *mv, esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    for (size_t i = 0; i < mv->n_forget; i++)
        if (!esm_store_args_ok(mapping, source, mv->forget[i]))
            return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = -1;
    if (esm_store_tx_begin(s, mapping, "setting a checkpoint", err) != 0) goto out;
    for (size_t i = 0; i < mv->n_forget; i++)
        if (forget_lane(s, mapping, source, mv->forget[i], err) != 0) goto rollback;
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_LANE_SET);
    esm_store_bind_lane(st, mapping, source, lane);
    sqlite3_bind_text(st, 4, mv->position, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, esm_now_ms());
    sqlite3_bind_text(st, 6, mv->start_at, -1, SQLITE_STATIC);
    int rc = esm_store_exec_stmt(st);
    esm_store_stmt_done(st);
    if (rc != SQLITE_DONE) {
        esm_store_fail(s, rc, mapping, "setting a checkpoint", err);
        goto rollback;
    }
    if (esm_store_lane_write(s, ESM_STMT_BATCH_DELETE, mapping, source, lane,
                             "clearing batch state", err) != 0 ||
        esm_store_lane_write(s, ESM_STMT_WINDOW_DELETE, mapping, source, lane,
                             "clearing window state", err) != 0 ||
        (mv->confirmed && esm_store_lane_write(s, ESM_STMT_LANE_CONFIRM, mapping, source, lane,
                                               "confirming a checkpoint", err) != 0))
        goto rollback;
    ret = esm_store_tx_commit(s, mapping, "setting a checkpoint", err);
    goto out;
rollback:
    esm_store_tx_rollback(s);
out:
    UNLOCK(s);
    return ret;
}

int esm_store_checkpoint_set(esm_store *s, const char *mapping, const char *source,
                             const char *lane, const char *position, const char *start_at,
                             esm_err *err)
{
    esm_store_move mv = {.position = position, .start_at = start_at};
    return esm_store_lane_move(s, mapping, source, lane, &mv, err);
}

int esm_store_lane_confirm(esm_store *s, const char *mapping, const char *source, const char *lane,
                           esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = esm_store_lane_write(s, ESM_STMT_LANE_CONFIRM, mapping, source, lane,
                                   "confirming a checkpoint", err);
    if (ret == 0 && sqlite3_changes(s->db) == 0) ret = 1;
    UNLOCK(s);
    return ret;
}

int esm_store_lane_delete(esm_store *s, const char *mapping, const char *source, const char *lane,
                          esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = -1;
    if (esm_store_tx_begin(s, mapping, "deleting a lane", err) != 0) goto out;
    if (forget_lane(s, mapping, source, lane, err) != 0) {
        esm_store_tx_rollback(s);
        goto out;
    }
    ret = esm_store_tx_commit(s, mapping, "deleting a lane", err);
out:
    UNLOCK(s);
    return ret;
}

int esm_store_mapping_delete(esm_store *s, const char *mapping, esm_err *err)
{
    if (!mapping || !*mapping)
        return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err, "mapping is empty");
    static const esm_store_stmt_id ids[] = {ESM_STMT_MAPPING_DELETE_LANES,
                                            ESM_STMT_MAPPING_DELETE_BATCHES,
                                            ESM_STMT_MAPPING_DELETE_WINDOWS};
    LOCK(s);
    int ret = -1;
    if (esm_store_tx_begin(s, mapping, "deleting a mapping", err) != 0) goto out;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        sqlite3_stmt *st = esm_store_stmt(s, ids[i]);
        sqlite3_bind_text(st, 1, mapping, -1, SQLITE_STATIC);
        int rc = esm_store_exec_stmt(st);
        esm_store_stmt_done(st);
        if (rc != SQLITE_DONE) {
            esm_store_fail(s, rc, mapping, "deleting a mapping", err);
            esm_store_tx_rollback(s);
            goto out;
        }
    }
    ret = esm_store_tx_commit(s, mapping, "deleting a mapping", err);
out:
    UNLOCK(s);
    return ret;
}

/* ---- batch state ---- */

int esm_store_batch_get(esm_store *s, const char *mapping, const char *source, const char *lane,
                        esm_store_batch_row *out, esm_err *err)
{
    memset(out, 0, sizeof *out);
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_BATCH_GET);
    esm_store_bind_lane(st, mapping, source, lane);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        out->updated_at_ms = sqlite3_column_int64(st, 3);
        if (esm_store_col_dup(st, 0, &out->first_id) || esm_store_col_dup(st, 1, &out->last_id) ||
            esm_store_col_dup(st, 2, &out->state)) {
            esm_store_batch_row_clear(out);
            ret = esm_store_fail_plain(s, ESM_ERR_NOMEM, mapping, err, "out of memory");
        } else {
            ret = 0;
        }
    } else if (rc == SQLITE_DONE) {
        ret = 1;
    } else {
        ret = esm_store_fail(s, rc, mapping, "reading batch state", err);
    }
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

static int esm_store_batch_put_locked(esm_store *s, const char *mapping, const char *source,
                                      const char *lane, const esm_store_batch *b, int64_t now,
                                      esm_err *err)
{
    if (!b->first_id || !b->last_id || !b->state)
        return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err,
                                    "batch state needs first_id, last_id and state");
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_BATCH_PUT);
    esm_store_bind_lane(st, mapping, source, lane);
    sqlite3_bind_text(st, 4, b->first_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, b->last_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, b->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now);
    int rc = esm_store_exec_stmt(st);
    int ret = rc == SQLITE_DONE ? 0 : esm_store_fail(s, rc, mapping, "writing batch state", err);
    esm_store_stmt_done(st);
    return ret;
}

int esm_store_batch_put(esm_store *s, const char *mapping, const char *source, const char *lane,
                        const esm_store_batch *batch, esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = esm_store_batch_put_locked(s, mapping, source, lane, batch, esm_now_ms(), err);
    UNLOCK(s);
    return ret;
}

int esm_store_batch_clear(esm_store *s, const char *mapping, const char *source, const char *lane,
                          esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = esm_store_lane_write(s, ESM_STMT_BATCH_DELETE, mapping, source, lane,
                                   "clearing batch state", err);
    UNLOCK(s);
    return ret;
}

/* ---- window state ---- */

int esm_store_window_get(esm_store *s, const char *mapping, const char *source, const char *lane,
                         int64_t *start_ms, char **state_json, esm_err *err)
{
    *state_json = NULL;
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_WINDOW_GET);
    esm_store_bind_lane(st, mapping, source, lane);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        *start_ms = sqlite3_column_int64(st, 0);
        ret = esm_store_col_dup(st, 1, state_json) == 0
                  ? 0
                  : esm_store_fail_plain(s, ESM_ERR_NOMEM, mapping, err, "out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = 1;
    } else {
        ret = esm_store_fail(s, rc, mapping, "reading window state", err);
    }
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

static int esm_store_window_put_locked(esm_store *s, const char *mapping, const char *source,
                                       const char *lane, int64_t start_ms, const char *state,
                                       int64_t now, esm_err *err)
{
    if (!state)
        return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err, "window state is NULL");
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_WINDOW_PUT);
    esm_store_bind_lane(st, mapping, source, lane);
    sqlite3_bind_int64(st, 4, start_ms);
    sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    int rc = esm_store_exec_stmt(st);
    int ret = rc == SQLITE_DONE ? 0 : esm_store_fail(s, rc, mapping, "writing window state", err);
    esm_store_stmt_done(st);
    return ret;
}

int esm_store_window_put(esm_store *s, const char *mapping, const char *source, const char *lane,
                         int64_t start_ms, const char *state_json, esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = esm_store_window_put_locked(s, mapping, source, lane, start_ms, state_json,
                                          esm_now_ms(), err);
    UNLOCK(s);
    return ret;
}

int esm_store_window_clear(esm_store *s, const char *mapping, const char *source, const char *lane,
                           esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    LOCK(s);
    int ret = esm_store_lane_write(s, ESM_STMT_WINDOW_DELETE, mapping, source, lane,
                                   "clearing window state", err);
    UNLOCK(s);
    return ret;
}

/* ---- the durable step ---- */

/* Decimal position compare (Kinesis sequence numbers, Kafka offsets): -1, 0, 1, or 2 when
 * either is not a plain decimal number (then the store cannot tell order). */
static int esm_store_decimal_cmp(const char *a, const char *b)
{
    if (!*a || !*b || a[strspn(a, "0123456789")] || b[strspn(b, "0123456789")]) return 2;
    while (a[0] == '0' && a[1])
        a++;
    while (b[0] == '0' && b[1])
        b++;
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) return la < lb ? -1 : 1;
    int c = strcmp(a, b);
    return c < 0 ? -1 : c > 0;
}

/* The step's writes inside the caller's transaction; -1 with err set (nothing rolled back). */
static int advance_locked(esm_store *s, const char *mapping, const char *source, const char *lane,
                          const esm_store_step *step, int64_t now, esm_err *err)
{
    if (!esm_store_args_ok(mapping, source, lane)) return esm_store_bad_lane(s, mapping, err);
    if (!step || (step->n_items && !step->items))
        return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err, "advance: no step");
    char what[192];
    snprintf(what, sizeof what, "checkpoint write for %.80s/%.80s", source, lane);
    sqlite3_stmt *st;
    int rc;
    if (step->position) {
        st = esm_store_stmt(s, ESM_STMT_LANE_GET);
        esm_store_bind_lane(st, mapping, source, lane);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 2) != SQLITE_NULL) {
            const char *old = (const char *)sqlite3_column_text(st, 2);
            if (old && esm_store_decimal_cmp(step->position, old) == -1) {
                esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err,
                                     "%s refused: the checkpoint would move back from %.64s to "
                                     "%.64s",
                                     what, old, step->position);
                esm_store_stmt_done(st);
                return -1;
            }
        } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            esm_store_fail(s, rc, mapping, what, err);
            esm_store_stmt_done(st);
            return -1;
        }
        esm_store_stmt_done(st);
    }

    st = esm_store_stmt(s, ESM_STMT_LANE_ADVANCE);
    esm_store_bind_lane(st, mapping, source, lane);
    sqlite3_bind_text(st, 4, step->position, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, step->finished ? "finished" : "open", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    rc = esm_store_exec_stmt(st);
    esm_store_stmt_done(st);
    if (rc != SQLITE_DONE) return esm_store_fail(s, rc, mapping, what, err);

    if (step->batch) {
        if (esm_store_batch_put_locked(s, mapping, source, lane, step->batch, now, err) != 0)
            return -1;
    } else if (esm_store_lane_write(s, ESM_STMT_BATCH_DELETE, mapping, source, lane, what, err) !=
               0) {
        return -1;
    }

    if (step->window_op == ESM_STORE_WINDOW_PUT) {
        if (esm_store_window_put_locked(s, mapping, source, lane, step->window_start_ms,
                                        step->window_state, now, err) != 0)
            return -1;
    } else if (step->window_op == ESM_STORE_WINDOW_CLEAR) {
        if (esm_store_lane_write(s, ESM_STMT_WINDOW_DELETE, mapping, source, lane, what, err) != 0)
            return -1;
    }
    return esm_store_outbox_insert_locked(s, mapping, step->items, step->n_items, now, NULL, err);
}

int esm_store_advance(esm_store *s, const char *mapping, const char *source, const char *lane,
                      const esm_store_step *step, esm_err *err)
{
    esm_store_advance_req req = {.mapping = mapping, .source = source, .lane = lane, .step = step};
    int rc = esm_store_advance_group(s, &req, 1);
    if (err) *err = req.err;
    return rc;
}

static int exec_simple(esm_store *s, esm_store_stmt_id id)
{
    sqlite3_stmt *st = esm_store_stmt(s, id);
    int rc = esm_store_exec_stmt(st);
    esm_store_stmt_done(st);
    return rc;
}

int esm_store_advance_group(esm_store *s, esm_store_advance_req *reqs, size_t n)
{
    if (n == 0) return 0;
    int64_t now = esm_now_ms();
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        reqs[i].rc = 0;
        esm_err_clear(&reqs[i].err);
    }
    const char *ctx = reqs[0].mapping ? reqs[0].mapping : "";
    char what[208];
    snprintf(what, sizeof what, "checkpoint write for %.80s/%.80s%s", reqs[0].source, reqs[0].lane,
             n > 1 ? " and others" : "");
    LOCK(s);
    esm_err tx_err;
    esm_err_clear(&tx_err);
    if (esm_store_tx_begin(s, ctx, what, &tx_err) != 0) goto all_failed;
    for (size_t i = 0; i < n; i++) {
        esm_store_advance_req *r = &reqs[i];
        /* A savepoint per step: a refused step (a checkpoint moving back) fails alone. */
        bool sp = n > 1;
        int rc = sp ? exec_simple(s, ESM_STMT_SAVEPOINT) : SQLITE_DONE;
        if (rc != SQLITE_DONE) {
            esm_store_fail(s, rc, ctx, what, &tx_err);
            goto rollback_all;
        }
        if (advance_locked(s, r->mapping, r->source, r->lane, r->step, now, &r->err) != 0) {
            r->rc = -1;
            failed++;
            if (!sp) goto rollback_one;
            if (sqlite3_get_autocommit(s->db)) { /* SQLite rolled everything back (I/O, full) */
                tx_err = r->err;
                goto all_failed;
            }
            exec_simple(s, ESM_STMT_ROLLBACK_TO);
        }
        if (sp && exec_simple(s, ESM_STMT_RELEASE) != SQLITE_DONE) {
            esm_store_fail(s, sqlite3_errcode(s->db), ctx, what, &tx_err);
            goto rollback_all;
        }
    }
    if (esm_store_tx_commit(s, ctx, what, &tx_err) != 0) goto all_failed;
    UNLOCK(s);
    return failed ? -1 : 0;
rollback_one:
    esm_store_tx_rollback(s);
    UNLOCK(s);
    return -1;
rollback_all:
    esm_store_tx_rollback(s);
all_failed:
    UNLOCK(s);
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].rc == 0) reqs[i].err = tx_err;
        reqs[i].rc = -1;
    }
    return -1;
}
