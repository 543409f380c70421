/* The outbox of failure records: written with the checkpoint, drained by destinations/. */
#include "checkpoint/esm_store_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/esm_time.h"

#define LOCK(s) pthread_mutex_lock(&(s)->mu)
#define UNLOCK(s) pthread_mutex_unlock(&(s)->mu)

/* Claims an item's dedupe key: 0 claimed (write the row), 1 already used (skip it), -1 error. */
static int dedupe_claim(esm_store *s, const char *mapping, const char *key, int64_t now,
                        esm_err *err)
{
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_DEDUPE_CLAIM);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mapping, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + ESM_STORE_DEDUPE_RETENTION_MS);
    int rc = esm_store_exec_stmt(st);
    int ret = rc == SQLITE_DONE ? (sqlite3_changes(s->db) > 0 ? 0 : 1)
                                : esm_store_fail(s, rc, mapping, "claiming a dedupe key", err);
    esm_store_stmt_done(st);
    return ret;
}

int esm_store_outbox_insert_locked(esm_store *s, const char *mapping, const esm_outbox_item *items,
                                   size_t n, int64_t now, size_t *written, esm_err *err)
{
    if (written) *written = 0;
    for (size_t i = 0; i < n; i++) {
        const esm_outbox_item *it = &items[i];
        if (!it->destination || !it->payload)
            return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err,
                                        "outbox item %zu has no destination or payload", i);
        if (it->dedupe_key) {
            int d = dedupe_claim(s, mapping, it->dedupe_key, now, err);
            if (d < 0) return -1;
            if (d == 1) continue; /* recorded before: a second record would be a duplicate */
        }
        sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_INSERT);
        size_t plen = it->payload_len ? it->payload_len : strlen(it->payload);
        sqlite3_bind_text(st, 1, mapping, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, it->destination, -1, SQLITE_STATIC);
        sqlite3_bind_text64(st, 3, it->payload, plen, SQLITE_STATIC, SQLITE_UTF8);
        if (it->key)
            sqlite3_bind_blob64(st, 4, it->key, it->key_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, now);
        int rc = esm_store_exec_stmt(st);
        esm_store_stmt_done(st);
        if (rc != SQLITE_DONE)
            return esm_store_fail(s, rc, mapping, "appending a failure record to the outbox", err);
        if (written) (*written)++;
    }
    return 0;
}

int esm_store_outbox_add(esm_store *s, const char *mapping, const esm_outbox_item *items, size_t n,
                         esm_err *err)
{
    if (!mapping || !*mapping || (n && !items))
        return esm_store_fail_plain(s, ESM_ERR_INVALID, mapping, err,
                                    "outbox add: mapping is empty or items missing");
    if (n == 0) return 0;
    LOCK(s);
    int ret = -1;
    size_t written = 0;
    if (esm_store_tx_begin(s, mapping, "outbox add", err) == 0) {
        if (esm_store_outbox_insert_locked(s, mapping, items, n, esm_now_ms(), &written, err) == 0)
            ret = esm_store_tx_commit(s, mapping, "outbox add", err);
        else
            esm_store_tx_rollback(s);
    }
    UNLOCK(s);
    return ret == 0 && written == 0 ? 1 : ret;
}

void esm_store_outbox_rows_free(esm_outbox_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].mapping);
        free(rows[i].destination);
        free(rows[i].payload);
        free(rows[i].key);
        free(rows[i].last_error);
    }
    free(rows);
}

static int esm_store_read_outbox_row(sqlite3_stmt *st, esm_outbox_row *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    if (esm_store_col_dup(st, 1, &r->mapping) || esm_store_col_dup(st, 2, &r->destination) ||
        esm_store_col_dup(st, 3, &r->payload) || esm_store_col_dup(st, 8, &r->last_error))
        goto fail;
    r->payload_len = (size_t)sqlite3_column_bytes(st, 3);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        const void *k = sqlite3_column_blob(st, 4);
        size_t klen = (size_t)sqlite3_column_bytes(st, 4);
        r->key = malloc(klen ? klen : 1); /* an empty key is a key, not NULL */
        if (!r->key) goto fail;
        if (klen) memcpy(r->key, k, klen);
        r->key_len = klen;
    }
    r->created_at_ms = sqlite3_column_int64(st, 5);
    r->attempts = sqlite3_column_int(st, 6);
    r->next_attempt_at_ms = sqlite3_column_int64(st, 7);
    return 0;
fail:
    free(r->mapping);
    free(r->destination);
    free(r->payload);
    free(r->last_error);
    free(r->key);
    memset(r, 0, sizeof *r);
    return -1;
}

int esm_store_outbox_due(esm_store *s, int64_t now_ms, size_t limit, esm_outbox_row **rows,
                         size_t *n, esm_err *err)
{
    *rows = NULL;
    *n = 0;
    if (limit == 0) return 0;
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_DUE);
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    esm_outbox_row *v = NULL;
    size_t len = 0, cap = 0;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            esm_outbox_row *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) break;
            v = nv;
            cap = ncap;
        }
        if (esm_store_read_outbox_row(st, &v[len]) != 0) break;
        len++;
    }
    if (rc == SQLITE_ROW)
        ret = esm_store_fail_plain(s, ESM_ERR_NOMEM, NULL, err, "out of memory");
    else if (rc != SQLITE_DONE)
        ret = esm_store_fail(s, rc, NULL, "reading due outbox rows", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    if (ret != 0) {
        esm_store_outbox_rows_free(v, len);
        return -1;
    }
    *rows = v;
    *n = len;
    return 0;
}

int esm_store_outbox_delete(esm_store *s, int64_t id, esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_DELETE);
    sqlite3_bind_int64(st, 1, id);
    int rc = esm_store_exec_stmt(st), ret;
    if (rc == SQLITE_DONE)
        ret = sqlite3_changes(s->db) > 0 ? 0 : 1;
    else
        ret = esm_store_fail(s, rc, NULL, "deleting a delivered outbox row", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

int esm_store_outbox_retry_later(esm_store *s, int64_t id, int64_t next_attempt_ms,
                                 const char *error, esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_RETRY);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, next_attempt_ms);
    sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
    int rc = esm_store_exec_stmt(st), ret;
    if (rc == SQLITE_DONE)
        ret = sqlite3_changes(s->db) > 0 ? 0 : 1;
    else
        ret = esm_store_fail(s, rc, NULL, "rescheduling an outbox row", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

int64_t esm_store_outbox_depth(esm_store *s, const char *mapping, esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_DEPTH);
    sqlite3_bind_text(st, 1, mapping, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                   : esm_store_fail(s, rc, mapping, "counting the outbox", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

int esm_store_outbox_next_due(esm_store *s, int64_t *when_ms, esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_NEXT_DUE);
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW) {
        ret = sqlite3_column_type(st, 0) == SQLITE_NULL ? 1 : 0;
        if (ret == 0) *when_ms = sqlite3_column_int64(st, 0);
    } else {
        ret = esm_store_fail(s, rc, NULL, "reading the next outbox due time", err);
    }
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

/* ---- parked rows ---- */

int esm_store_outbox_park(esm_store *s, int64_t id, int64_t now_ms, const char *reason,
                          esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_PARK);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_text(st, 3, reason ? reason : "refused", -1, SQLITE_STATIC);
    int rc = esm_store_exec_stmt(st), ret;
    if (rc == SQLITE_DONE)
        ret = sqlite3_changes(s->db) > 0 ? 0 : 1;
    else
        ret = esm_store_fail(s, rc, NULL, "parking an outbox row", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

void esm_store_outbox_infos_free(esm_outbox_row_info *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].mapping);
        free(rows[i].destination);
        free(rows[i].reason);
    }
    free(rows);
}

void esm_store_outbox_parked_dests_free(esm_outbox_parked_dest *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].destination);
        free(v[i].last_reason);
    }
    free(v);
}

/* Grows *v (elements of size elem) so that one more fits; -1 when out of memory. */
static int grow(void **v, size_t len, size_t *cap, size_t elem)
{
    if (len < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, ncap * elem);
    if (!nv) return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

int esm_store_outbox_list(esm_store *s, bool parked, int64_t after_id, size_t limit,
                          esm_outbox_row_info **rows, size_t *n, esm_err *err)
{
    *rows = NULL;
    *n = 0;
    if (limit == 0) return 0;
    LOCK(s);
    sqlite3_stmt *st =
        esm_store_stmt(s, parked ? ESM_STMT_OUTBOX_PARKED_LIST : ESM_STMT_OUTBOX_PENDING_LIST);
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    esm_outbox_row_info *v = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&v, len, &cap, sizeof *v) != 0) break;
        esm_outbox_row_info *r = &v[len];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(st, 0);
        r->parked_at_ms = sqlite3_column_int64(st, 4);
        r->created_at_ms = sqlite3_column_int64(st, 5);
        r->size = sqlite3_column_int64(st, 6);
        r->attempts = sqlite3_column_int(st, 7);
        r->next_attempt_at_ms = sqlite3_column_int64(st, 8);
        len++; /* counted before the copies, so a failed copy is freed with the rest */
        if (esm_store_col_dup(st, 1, &r->mapping) || esm_store_col_dup(st, 2, &r->destination) ||
            esm_store_col_dup(st, 3, &r->reason))
            break;
    }
    int ret = 0;
    if (rc == SQLITE_ROW)
        ret = esm_store_fail_plain(s, ESM_ERR_NOMEM, NULL, err, "out of memory");
    else if (rc != SQLITE_DONE)
        ret = esm_store_fail(s, rc, NULL, "listing outbox rows", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    if (ret != 0) {
        esm_store_outbox_infos_free(v, len);
        return -1;
    }
    *rows = v;
    *n = len;
    return 0;
}

int esm_store_outbox_parked_by_dest(esm_store *s, esm_outbox_parked_dest **out, size_t *n,
                                    esm_err *err)
{
    *out = NULL;
    *n = 0;
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_PARKED_BY_DEST);
    esm_outbox_parked_dest *v = NULL;
    size_t len = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow((void **)&v, len, &cap, sizeof *v) != 0) break;
        esm_outbox_parked_dest *e = &v[len];
        memset(e, 0, sizeof *e);
        e->count = sqlite3_column_int64(st, 1);
        e->last_parked_at_ms = sqlite3_column_int64(st, 2);
        len++;
        if (esm_store_col_dup(st, 0, &e->destination) || esm_store_col_dup(st, 3, &e->last_reason))
            break;
    }
    int ret = 0;
    if (rc == SQLITE_ROW)
        ret = esm_store_fail_plain(s, ESM_ERR_NOMEM, NULL, err, "out of memory");
    else if (rc != SQLITE_DONE)
        ret = esm_store_fail(s, rc, NULL, "counting parked outbox rows", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    if (ret != 0) {
        esm_store_outbox_parked_dests_free(v, len);
        return -1;
    }
    *out = v;
    *n = len;
    return 0;
}

int64_t esm_store_outbox_redrive(esm_store *s, int64_t id, const char *destination, int64_t now_ms,
                                 esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_OUTBOX_REDRIVE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, destination, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    int rc = esm_store_exec_stmt(st);
    int64_t ret = rc == SQLITE_DONE ? (int64_t)sqlite3_changes(s->db)
                                    : esm_store_fail(s, rc, NULL, "re-driving parked rows", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}

int64_t esm_store_outbox_prune_dedupe(esm_store *s, int64_t now_ms, esm_err *err)
{
    LOCK(s);
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_DEDUPE_PRUNE);
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = esm_store_exec_stmt(st);
    int64_t ret = rc == SQLITE_DONE ? (int64_t)sqlite3_changes(s->db)
                                    : esm_store_fail(s, rc, NULL, "pruning dedupe keys", err);
    esm_store_stmt_done(st);
    UNLOCK(s);
    return ret;
}
