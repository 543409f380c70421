/* Checkpoint commits/s: esm_store_advance in a loop next to bare SQLite doing the same durable
 * write (one UPDATE per transaction, WAL, synchronous=FULL: the fsync ceiling), same run, same
 * file system.
 *
 *   bench_checkpoint SECONDS_PER_CASE DIR
 *
 * Each case alternates with the reference in 50 ms slices (fsync times on a shared virtual disk
 * drift 10x within seconds) and prints one JSON line:
 *   {"name":..,"commits":N,"checkpoints":N,"per_s":R,"ref_per_s":R,"ratio":x}
 * (per_s counts checkpoints, i.e. lane positions written, per second).
 *   sqlite-full          reference: BEGIN; UPDATE one row; COMMIT (WAL, synchronous=FULL)
 *   advance-1lane        esm_store_advance, one lane, position +1 each time
 *   advance-16lanes      the same, 16 lanes round robin
 *   advance-outbox       each step also appends one 1 KB failure record to the outbox
 *   advance-batchstate   each step also replaces the lane's batch state (a batch in retry)
 *   sqlite-normal        synchronous=NORMAL: what dropping the per-commit fsync would give
 *   sqlite-16-per-tx     16 UPDATEs per transaction: what grouping the lanes' checkpoints of one
 *                        loop iteration into one transaction would give (per checkpoint) */
#include "checkpoint/esm_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double g_secs;

/* One writer under test: one commit per step() call. */
typedef struct writer writer;
struct writer {
    const char *name;
    int (*step)(writer *w); /* returns checkpoints written (rows), -1 on error */
    long n;                 /* step() calls so far */
    long rows;
    double secs;
    /* bare SQLite */
    sqlite3 *db;
    sqlite3_stmt *up, *begin, *commit;
    int per_tx;
    /* esm_store */
    esm_store *store;
    int lanes;
    int kind;
};

static void must(int rc, sqlite3 *db, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "bench_checkpoint: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

/* Bare SQLite: `per_tx` UPDATEs of a (k TEXT PRIMARY KEY, pos TEXT, at INTEGER) table per
 * transaction. */
static int bare_step(writer *w)
{
    char pos[32], lane[16];
    must(sqlite3_step(w->begin), w->db, "begin");
    sqlite3_reset(w->begin);
    for (int i = 0; i < w->per_tx; i++) {
        snprintf(pos, sizeof pos, "%ld", w->rows + i + 1);
        snprintf(lane, sizeof lane, "lane-%d", i % 16);
        sqlite3_bind_text(w->up, 1, pos, -1, SQLITE_STATIC);
        sqlite3_bind_int64(w->up, 2, (sqlite3_int64)w->n);
        sqlite3_bind_text(w->up, 3, lane, -1, SQLITE_STATIC);
        must(sqlite3_step(w->up), w->db, "update");
        sqlite3_reset(w->up);
    }
    must(sqlite3_step(w->commit), w->db, "commit");
    sqlite3_reset(w->commit);
    return w->per_tx;
}

static void bare_open(writer *w, const char *dir, const char *name, const char *sync, int per_tx)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    w->step = bare_step;
    w->per_tx = per_tx;
    char path[512];
    snprintf(path, sizeof path, "%s/bare-%s.db", dir, name);
    unlink(path);
    must(sqlite3_open(path, &w->db), w->db, "open");
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;"
             "CREATE TABLE c (k TEXT PRIMARY KEY, pos TEXT, at INTEGER);",
             sync);
    must(sqlite3_exec(w->db, pragmas, NULL, NULL, NULL), w->db, "pragmas");
    for (int i = 0; i < 16; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO c VALUES ('lane-%d', '0', 0)", i);
        must(sqlite3_exec(w->db, sql, NULL, NULL, NULL), w->db, "insert");
    }
    must(sqlite3_prepare_v2(w->db, "UPDATE c SET pos = ?1, at = ?2 WHERE k = ?3", -1, &w->up, NULL),
         w->db, "prepare");
    must(sqlite3_prepare_v2(w->db, "BEGIN IMMEDIATE", -1, &w->begin, NULL), w->db, "prepare");
    must(sqlite3_prepare_v2(w->db, "COMMIT", -1, &w->commit, NULL), w->db, "prepare");
}

enum { ADV_PLAIN, ADV_OUTBOX, ADV_BATCH };

static char g_payload[1100];

static int adv_step(writer *w)
{
    char pos[32], lane[24];
    snprintf(pos, sizeof pos, "%ld", w->n / w->lanes + 1);
    snprintf(lane, sizeof lane, "shardId-%012ld", w->n % w->lanes);
    esm_outbox_item item = {.destination = "file:///tmp/failures.jsonl", .payload = g_payload};
    esm_store_batch batch = {.first_id = "100", .last_id = "199", .state = "a=1;b=0;bisect=0"};
    esm_store_step step = {.position = pos};
    if (w->kind == ADV_OUTBOX) {
        step.items = &item;
        step.n_items = 1;
    } else if (w->kind == ADV_BATCH) {
        step.batch = &batch;
    }
    esm_err err = {0};
    if (esm_store_advance(w->store, "mapping-uuid-0000", "arn:aws:kinesis:us-east-1:0:stream/s",
                          lane, &step, &err) != 0) {
        fprintf(stderr, "bench_checkpoint: advance: %s\n", err.message);
        exit(1);
    }
    return 1;
}

static void adv_open(writer *w, const char *dir, const char *name, int lanes, int kind)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    w->step = adv_step;
    w->lanes = lanes;
    w->kind = kind;
    char sdir[512], cmd[600];
    snprintf(sdir, sizeof sdir, "%s/store-%s", dir, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sdir);
    if (system(cmd) != 0) exit(1);
    esm_err err = {0};
    w->store = esm_store_open(sdir, &err);
    if (!w->store) {
        fprintf(stderr, "bench_checkpoint: open: %s\n", err.message);
        exit(1);
    }
}

static void writer_close(writer *w)
{
    if (w->store) esm_store_close(w->store);
    if (w->db) {
        sqlite3_finalize(w->up);
        sqlite3_finalize(w->begin);
        sqlite3_finalize(w->commit);
        sqlite3_close(w->db);
    }
}

/* Runs w for `secs` seconds of its own time. */
static void run_slice(writer *w, double secs)
{
    double t0 = now_s(), t;
    while ((t = now_s()) - t0 < secs) {
        w->rows += w->step(w);
        w->n++;
    }
    w->secs += t - t0;
}

/* The case and the reference alternate in 50 ms slices, so both see the same disk (fsync times
 * on a shared virtual disk drift by 10x within seconds). */
static void pair(writer *ref, writer *w)
{
    ref->n = ref->rows = w->n = w->rows = 0;
    ref->secs = w->secs = 0;
    while (w->secs < g_secs) {
        run_slice(ref, 0.05);
        run_slice(w, 0.05);
    }
    double rr = (double)ref->rows / ref->secs, r = (double)w->rows / w->secs;
    printf("{\"name\":\"%s\",\"commits\":%ld,\"checkpoints\":%ld,\"seconds\":%.3f,"
           "\"per_s\":%.0f,\"us_per_commit\":%.1f,\"reference\":\"%s\",\"ref_per_s\":%.0f,"
           "\"ratio\":%.3f}\n",
           w->name, w->n, w->rows, w->secs, r, w->secs / (double)w->n * 1e6, ref->name, rr, r / rr);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_checkpoint SECONDS_PER_CASE DIR\n");
        return 2;
    }
    g_secs = atof(argv[1]);
    const char *dir = argv[2];
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return 1;
    memset(g_payload, 'x', sizeof g_payload);
    memcpy(g_payload, "{\"p\":\"", 6);
    memcpy(g_payload + 1024 - 2, "\"}", 3);
    writer ref, w;
    bare_open(&ref, dir, "sqlite-full", "FULL", 1);
    adv_open(&w, dir, "advance-1lane", 1, ADV_PLAIN);
    pair(&ref, &w);
    writer_close(&w);
    adv_open(&w, dir, "advance-16lanes", 16, ADV_PLAIN);
    pair(&ref, &w);
    writer_close(&w);
    adv_open(&w, dir, "advance-outbox", 16, ADV_OUTBOX);
    pair(&ref, &w);
    writer_close(&w);
    adv_open(&w, dir, "advance-batchstate", 16, ADV_BATCH);
    pair(&ref, &w);
    writer_close(&w);
    bare_open(&w, dir, "sqlite-normal", "NORMAL", 1);
    pair(&ref, &w);
    writer_close(&w);
    bare_open(&w, dir, "sqlite-16-per-tx", "FULL", 16);
    pair(&ref, &w);
    writer_close(&w);
    writer_close(&ref);
    return 0;
}
