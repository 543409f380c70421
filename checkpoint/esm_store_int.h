/* Internals shared by the store's source files (esm_store*.c); not part of the API. */
#ifndef ESM_STORE_INT_H
#define ESM_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_sql.h"

#define ESM_STORE_STMT_ENUM(name, sql) ESM_STMT_##name,
typedef enum { ESM_STORE_STATEMENTS(ESM_STORE_STMT_ENUM) ESM_STMT_COUNT } esm_store_stmt_id;
#undef ESM_STORE_STMT_ENUM

struct esm_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ESM_STMT_COUNT];
    pthread_mutex_t mu; /* serialises every call: statements are shared */
    int lock_fd;        /* flock on <state_dir>/esmd.lock: one process per state_dir */
    int schema_version;
    char *path;
};

/* The kept statement, ready to bind (the previous use was reset). */
sqlite3_stmt *esm_store_stmt(esm_store *s, esm_store_stmt_id id);
/* Resets a statement after use and drops its bindings. */
void esm_store_stmt_done(sqlite3_stmt *st);
/* Steps a statement that returns no rows; returns the SQLite code (SQLITE_DONE on success). */
int esm_store_exec_stmt(sqlite3_stmt *st);

/* Fills err from the connection's last error (rc is the failing result code), logs it, and
 * returns -1. what says what failed ("advance orders/shardId-1"). */
int esm_store_fail(esm_store *s, int rc, const char *ctx, const char *what, esm_err *err);
/* Sets err to an ESM_ERR_INVALID / ESM_ERR_NOMEM without a SQLite error; returns -1. */
int esm_store_fail_plain(esm_store *s, esm_err_code code, const char *ctx, esm_err *err,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* BEGIN IMMEDIATE / COMMIT; rollback is a no-op outside a transaction. */
int esm_store_tx_begin(esm_store *s, const char *ctx, const char *what, esm_err *err);
int esm_store_tx_commit(esm_store *s, const char *ctx, const char *what, esm_err *err);
void esm_store_tx_rollback(esm_store *s);

/* strdup of a text column; *out = NULL for SQL NULL. Returns -1 on allocation failure. */
int esm_store_col_dup(sqlite3_stmt *st, int col, char **out);

/* Binds (mapping, source, lane) to ?1 ?2 ?3. */
void esm_store_bind_lane(sqlite3_stmt *st, const char *mapping, const char *source,
                         const char *lane);

/* Appends outbox rows inside the caller's transaction (esm_store_outbox.c); items whose dedupe
 * key is already used are skipped. *written (may be NULL) gets the number of rows written. */
int esm_store_outbox_insert_locked(esm_store *s, const char *mapping, const esm_outbox_item *items,
                                   size_t n, int64_t now, size_t *written, esm_err *err);

#endif
