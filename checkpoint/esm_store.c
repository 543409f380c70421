/* Opening, checking and migrating the state database; the helpers every store file uses. */
#include "checkpoint/esm_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/esm_log.h"
#include "common/esm_time.h"

#define ESM_STORE_BUSY_TIMEOUT_MS 5000
#define ESM_STORE_LOG_CTX "store"

static const struct {
    int version;
    const char *description;
    const char *sql;
} esm_store_migrations[] = {
    {1, "lanes, batch state, window state, outbox", SQL_MIGRATION_1},
    {2, "outbox: parked rows, dedupe keys", SQL_MIGRATION_2},
    {3, "lanes: checkpoint confirmed by the source", SQL_MIGRATION_3},
    {4, "lanes: start position set by an operator", SQL_MIGRATION_4},
};

#define ESM_STORE_STMT_SQL(name, sql) sql,
static const char *const esm_store_stmt_sql[ESM_STMT_COUNT] = {
    ESM_STORE_STATEMENTS(ESM_STORE_STMT_SQL)};
#undef ESM_STORE_STMT_SQL

/* ---- helpers shared by the store files ---- */

sqlite3_stmt *esm_store_stmt(esm_store *s, esm_store_stmt_id id)
{
    return s->stmt[id];
}

void esm_store_stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int esm_store_exec_stmt(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static void esm_store_classify(int rc, esm_err_code *code, bool *retriable)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        *code = ESM_ERR_INVALID;
        *retriable = false;
        break;
    case SQLITE_NOMEM:
        *code = ESM_ERR_NOMEM;
        *retriable = true;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
        *code = ESM_ERR_IO;
        *retriable = true;
        break;
    default: /* READONLY, CORRUPT, NOTADB, CANTOPEN, PERM, ... need an operator */
        *code = ESM_ERR_IO;
        *retriable = false;
        break;
    }
}

int esm_store_fail(esm_store *s, int rc, const char *ctx, const char *what, esm_err *err)
{
    esm_err_code code;
    bool retriable;
    esm_store_classify(rc, &code, &retriable);
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    /* errmsg can lag behind rc (e.g. after an implicit reset); trust rc when they disagree */
    if (s && s->db && (sqlite3_errcode(s->db) & 0xff) != (rc & 0xff)) msg = sqlite3_errstr(rc);
    esm_err_set(err, code, retriable, "state store: %s failed: %s", what, msg);
    ESM_ERROR(ctx, "state store: %s failed: %s (%s)", what, msg, s ? s->path : "?");
    return -1;
}

int esm_store_fail_plain(esm_store *s, esm_err_code code, const char *ctx, esm_err *err,
                         const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    esm_err_set(err, code, code == ESM_ERR_NOMEM, "state store: %s", msg);
    ESM_ERROR(ctx, "state store: %s (%s)", msg, s ? s->path : "?");
    return -1;
}

int esm_store_tx_begin(esm_store *s, const char *ctx, const char *what, esm_err *err)
{
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_BEGIN);
    int rc = esm_store_exec_stmt(st);
    esm_store_stmt_done(st);
    if (rc != SQLITE_DONE) return esm_store_fail(s, rc, ctx, what, err);
    return 0;
}

int esm_store_tx_commit(esm_store *s, const char *ctx, const char *what, esm_err *err)
{
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_COMMIT);
    int rc = esm_store_exec_stmt(st);
    if (rc != SQLITE_DONE) {
        esm_store_fail(s, rc, ctx, what, err);
        esm_store_stmt_done(st);
        esm_store_tx_rollback(s);
        return -1;
    }
    esm_store_stmt_done(st);
    return 0;
}

void esm_store_tx_rollback(esm_store *s)
{
    if (sqlite3_get_autocommit(s->db)) return; /* SQLite already rolled back (e.g. disk full) */
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_ROLLBACK);
    int rc = esm_store_exec_stmt(st);
    esm_store_stmt_done(st);
    if (rc != SQLITE_DONE)
        ESM_ERROR(ESM_STORE_LOG_CTX, "state store: rollback failed: %s", sqlite3_errstr(rc));
}

int esm_store_col_dup(sqlite3_stmt *st, int col, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
    const unsigned char *t = sqlite3_column_text(st, col);
    if (!t) return -1; /* not NULL, so this is an allocation failure */
    *out = strdup((const char *)t);
    return *out ? 0 : -1;
}

void esm_store_bind_lane(sqlite3_stmt *st, const char *mapping, const char *source,
                         const char *lane)
{
    sqlite3_bind_text(st, 1, mapping, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, lane, -1, SQLITE_STATIC);
}

/* ---- open ---- */

/* mkdir -p; directories this creates are 0700 (the database holds message payloads). */
static int esm_store_mkdirs(const char *dir, esm_err *err)
{
    char *p = strdup(dir);
    if (!p) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "state store: out of memory");
        return -1;
    }
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0') continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            esm_err_set(err, ESM_ERR_IO, false, "state_dir %s: cannot create %s: %s", dir, p,
                        strerror(errno));
            free(p);
            return -1;
        }
        *c = saved;
        if (saved == '\0') break;
    }
    free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        esm_err_set(err, ESM_ERR_IO, false, "state_dir %s is not a directory", dir);
        return -1;
    }
    return 0;
}

/* One esmd per state_dir: two processes advancing the same checkpoints would each acknowledge
 * what the other has not processed. The kernel drops the lock when the process dies (kill -9). */
static int esm_store_lock(esm_store *s, const char *dir, esm_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/esmd.lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        int e = errno;
        esm_err_set(err, ESM_ERR_IO, false,
                    "state_dir %s is not writable (%s: %s); esmd needs a writable state_dir for "
                    "its checkpoints",
                    dir, path, strerror(e));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        esm_err_set(err, ESM_ERR_IO, false,
                    "state_dir %s is in use by another esmd (pid %s holds %s); give each esmd "
                    "its own state_dir",
                    dir, pid[0] ? pid : "?", path);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)len, 0) != len) {
        esm_err_set(err, ESM_ERR_IO, false, "state_dir %s is not writable (%s: %s)", dir, path,
                    strerror(errno));
        return -1;
    }
    return 0;
}

/* Runs a statement returning one integer (or text, compared by the caller). */
static int esm_store_query_int(esm_store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* The error for a database we must not touch: say which file, why, and what to do. */
static void esm_store_refuse(esm_store *s, esm_err *err, const char *why)
{
    esm_err_set(err, ESM_ERR_IO, false,
                "state database %s is corrupt or not an esmd database (%s); esmd will not touch "
                "it: move it away to start with empty state (checkpoints, retry state and "
                "undelivered failure records in it would be lost) or restore a backup",
                s->path, why);
}

/* PRAGMA quick_check: structure of every page, without the slow index cross-check. */
static int esm_store_check(esm_store *s, esm_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int prim = rc & 0xff;
        if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT) {
            esm_store_refuse(s, err, sqlite3_errmsg(s->db));
        } else {
            esm_err_set(err, ESM_ERR_IO, prim == SQLITE_BUSY,
                        "state database %s cannot be read: %s", s->path, sqlite3_errmsg(s->db));
        }
        sqlite3_finalize(st);
        return -1;
    }
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (!res || strcmp(res, "ok") != 0) {
        char why[256];
        snprintf(why, sizeof why, "quick_check: %s", res ? res : "no result");
        esm_store_refuse(s, err, why);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);

    int64_t app_id = 0, has_schema = 0, tables = 0;
    if (esm_store_query_int(s, "PRAGMA application_id", &app_id) != SQLITE_OK ||
        esm_store_query_int(s, SQL_HAS_SCHEMA_TABLE, &has_schema) != SQLITE_OK ||
        esm_store_query_int(s, SQL_COUNT_TABLES, &tables) != SQLITE_OK) {
        esm_store_refuse(s, err, sqlite3_errmsg(s->db));
        return -1;
    }
    if ((app_id != 0 && app_id != ESM_STORE_APPLICATION_ID) || (tables > 0 && !has_schema)) {
        char why[160];
        if (app_id != 0)
            snprintf(why, sizeof why, "another application's SQLite file: application_id %lld",
                     (long long)app_id);
        else
            snprintf(why, sizeof why,
                     "another application's SQLite file: it has %lld tables and no esmd_schema",
                     (long long)tables);
        esm_store_refuse(s, err, why);
        return -1;
    }
    return 0;
}

static int esm_store_exec(esm_store *s, const char *sql, const char *what, esm_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        esm_err_set(err, ESM_ERR_IO, false, "state database %s: %s failed: %s", s->path, what,
                    msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Durability settings.
 * WAL: readers (status, sqlite3 CLI) never block the writer, one fsync per commit.
 * synchronous=FULL, not NORMAL: under WAL+NORMAL a committed transaction survives a process
 * crash but may roll back after a power loss or kernel crash. The callers acknowledge to the
 * source right after esm_store_advance returns (SQS DeleteMessage, Kafka offset commit,
 * Kinesis has nothing else), and destinations delete outbox rows only after delivery. If the
 * commit were then lost, the checkpoint would move back behind an acknowledgement the source
 * already has, and the failure records written in that step would be gone while their messages
 * are deleted: a lost record, which principle 4 forbids. FULL fsyncs the WAL at every commit,
 * so a checkpoint never moves back after any crash. The cost is one fsync per advance (per
 * batch, not per record), which is small next to a function invocation. */
static int esm_store_pragmas(esm_store *s, esm_err *err)
{
    sqlite3_busy_timeout(s->db, ESM_STORE_BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (!mode || strcmp(mode, "wal") != 0) {
        esm_err_set(err, ESM_ERR_IO, false,
                    "state database %s: cannot switch to WAL journal mode: %s", s->path,
                    mode ? mode : sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return esm_store_exec(s,
                          "PRAGMA synchronous = FULL;"
                          "PRAGMA journal_size_limit = 67108864;" /* trim the WAL to 64 MiB */
                          "PRAGMA foreign_keys = OFF;",
                          "setting pragmas", err);
}

/* Applies every migration newer than the database, each in its own transaction, in order. */
static int esm_store_migrate(esm_store *s, esm_err *err)
{
    if (esm_store_exec(s, SQL_SCHEMA_TABLE, "creating the schema table", err) != 0) return -1;
    int64_t version = 0;
    if (esm_store_query_int(s, SQL_SCHEMA_VERSION, &version) != SQLITE_OK) {
        esm_err_set(err, ESM_ERR_IO, false, "state database %s: reading the schema version: %s",
                    s->path, sqlite3_errmsg(s->db));
        return -1;
    }
    if (version > ESM_STORE_SCHEMA_VERSION) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "state database %s has schema version %lld, newer than this esmd supports "
                    "(%d): it was written by a newer esmd; run that version, or move the file "
                    "away to start with empty state",
                    s->path, (long long)version, ESM_STORE_SCHEMA_VERSION);
        return -1;
    }
    size_t n = sizeof esm_store_migrations / sizeof esm_store_migrations[0];
    for (size_t i = 0; i < n; i++) {
        if (esm_store_migrations[i].version <= version) continue;
        if (esm_store_exec(s, "BEGIN IMMEDIATE", "starting a migration", err) != 0) return -1;
        char what[128];
        snprintf(what, sizeof what, "migration %d (%s)", esm_store_migrations[i].version,
                 esm_store_migrations[i].description);
        int rc = SQLITE_OK;
        if (esm_store_exec(s, esm_store_migrations[i].sql, what, err) != 0) goto fail;
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(s->db, SQL_SCHEMA_RECORD, -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(st, 1, esm_store_migrations[i].version);
            sqlite3_bind_text(st, 2, esm_store_migrations[i].description, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, esm_now_ms());
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            esm_err_set(err, ESM_ERR_IO, false, "state database %s: %s: %s", s->path, what,
                        sqlite3_errmsg(s->db));
            goto fail;
        }
        if (esm_store_exec(s, "COMMIT", what, err) != 0) goto fail;
        ESM_INFO(ESM_STORE_LOG_CTX, "state database %s: applied %s", s->path, what);
        version = esm_store_migrations[i].version;
        continue;
    fail:
        if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    s->schema_version = (int)version;
    return 0;
}

static int esm_store_prepare(esm_store *s, esm_err *err)
{
    for (int i = 0; i < ESM_STMT_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, esm_store_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            esm_err_set(err, ESM_ERR_INTERNAL, false, "state database %s: preparing [%s]: %s",
                        s->path, esm_store_stmt_sql[i], sqlite3_errmsg(s->db));
            return -1;
        }
    }
    return 0;
}

/* A write at every open: a database that cannot take writes is refused now, at startup, not at
 * the first checkpoint. */
static int esm_store_probe_write(esm_store *s, esm_err *err)
{
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        esm_err_set(err, ESM_ERR_IO, false,
                    "state database %s is read-only; esmd needs to write its checkpoints there",
                    s->path);
        return -1;
    }
    char now[32];
    snprintf(now, sizeof now, "%lld", (long long)esm_now_ms());
    sqlite3_stmt *st = esm_store_stmt(s, ESM_STMT_META_PUT);
    sqlite3_bind_text(st, 1, "last_open_ms", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_TRANSIENT);
    int rc = esm_store_exec_stmt(st);
    if (rc != SQLITE_DONE) {
        esm_err_set(err, ESM_ERR_IO, false, "state database %s cannot be written: %s", s->path,
                    sqlite3_errmsg(s->db));
        esm_store_stmt_done(st);
        return -1;
    }
    esm_store_stmt_done(st);
    return 0;
}

esm_store *esm_store_open(const char *state_dir, esm_err *err)
{
    esm_err_clear(err);
    if (!state_dir || !*state_dir) {
        esm_err_set(err, ESM_ERR_INVALID, false, "state_dir is empty");
        return NULL;
    }
    esm_store *s = calloc(1, sizeof *s);
    if (!s) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "state store: out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    size_t len = strlen(state_dir) + sizeof "/esmd.db";
    s->path = malloc(len);
    if (!s->path) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "state store: out of memory");
        goto fail;
    }
    snprintf(s->path, len, "%s/esmd.db", state_dir);
    if (esm_store_mkdirs(state_dir, err) != 0 || esm_store_lock(s, state_dir, err) != 0) goto fail;

    int rc = sqlite3_open_v2(
        s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        esm_err_set(err, ESM_ERR_IO, false, "state database %s cannot be opened: %s", s->path,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    if (esm_store_check(s, err) != 0 || esm_store_pragmas(s, err) != 0 ||
        esm_store_migrate(s, err) != 0 || esm_store_prepare(s, err) != 0 ||
        esm_store_probe_write(s, err) != 0)
        goto fail;
    ESM_INFO(ESM_STORE_LOG_CTX, "state database %s open (schema version %d)", s->path,
             s->schema_version);
    return s;
fail:
    ESM_ERROR(ESM_STORE_LOG_CTX, "%s", err ? err->message : "state store: open failed");
    esm_store_close(s);
    return NULL;
}

void esm_store_close(esm_store *s)
{
    if (!s) return;
    for (int i = 0; i < ESM_STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db) {
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK)
            ESM_ERROR(ESM_STORE_LOG_CTX, "state database %s: close: %s", s->path,
                      sqlite3_errstr(rc));
    }
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

const char *esm_store_path(const esm_store *s)
{
    return s->path;
}

int esm_store_schema_version(esm_store *s)
{
    return s->schema_version;
}
