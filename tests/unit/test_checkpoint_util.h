/* Helpers for the store tests: temporary state dirs and raw SQLite access. */
#ifndef TEST_CHECKPOINT_UTIL_H
#define TEST_CHECKPOINT_UTIL_H

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tc_rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* A fresh directory under /tmp; the caller owns the returned string. */
static inline char *tc_mkdtemp(void)
{
    char tmpl[] = "/tmp/esmd-store-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void tc_rmrf(char *dir)
{
    if (!dir) return;
    nftw(dir, tc_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static inline void tc_db_path(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/esmd.db", dir);
}

/* Runs SQL on the database with a separate connection; returns the SQLite code. */
static inline int tc_sql(const char *dir, const char *sql)
{
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* One integer from a query on a separate connection; -1 on error. */
static inline long long tc_sql_int(const char *dir, const char *sql)
{
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
