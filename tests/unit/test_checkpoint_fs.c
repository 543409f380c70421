/* Storage failures the operator can cause: a read-only state_dir, a read-only database file, a
 * full disk. Root ignores file modes, so each scenario runs in a forked child with its own mount
 * namespace and a tmpfs (read-only, or with a small size) mounted on the state dir. The child
 * checks and exits 0 (pass), 1 (a check failed, reason on stderr) or 77 (no mount namespace:
 * then a non-root user falls back to chmod, root skips). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checkpoint/esm_store.h"
#include "common/esm_log.h"
#include "test_checkpoint_util.h"

#define M "fs-mapping"
#define SRC "127.0.0.1:9092/orders"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)
#define CHECK_MSG(err, needle)                                                                     \
    do {                                                                                           \
        if (!strstr((err).message, needle)) {                                                      \
            fprintf(stderr, "%s:%d: \"%s\" not in: %s\n", __FILE__, __LINE__, needle,              \
                    (err).message);                                                                \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int private_mounts(void)
{
    if (unshare(CLONE_NEWNS) != 0) return -1;
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

/* Runs fn(dir) in a child with its own mount namespace; returns its exit code. */
static int run_isolated(int (*fn)(const char *), const char *dir)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (private_mounts() != 0) _exit(77);
        _exit(fn(dir));
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static int tmpfs(const char *dir, unsigned long flags, const char *opts)
{
    return mount("tmpfs", dir, "tmpfs", flags, opts);
}

static int advance_to(esm_store *s, const char *pos, esm_err *err)
{
    esm_store_step st = {.position = pos};
    return esm_store_advance(s, M, SRC, "0", &st, err);
}

static int position_is(esm_store *s, const char *want)
{
    esm_err err;
    esm_store_lane l;
    int ok = esm_store_checkpoint_get(s, M, SRC, "0", &l, &err) == 0 && l.position &&
             strcmp(l.position, want) == 0;
    esm_store_lane_clear(&l);
    return ok;
}

/* ---- scenarios (run in the child) ---- */

static int fresh_readonly_dir(const char *dir)
{
    if (tmpfs(dir, MS_RDONLY, "mode=0700") != 0) return 77;
    esm_err err;
    CHECK(esm_store_open(dir, &err) == NULL);
    CHECK_MSG(err, "is not writable");
    CHECK_MSG(err, "Read-only file system");
    CHECK_MSG(err, dir);
    return 0;
}

static int existing_db_readonly_dir(const char *dir)
{
    if (tmpfs(dir, 0, "mode=0700") != 0) return 77;
    esm_err err;
    esm_store *s = esm_store_open(dir, &err);
    CHECK(s != NULL);
    CHECK(advance_to(s, "42", &err) == 0);
    esm_store_close(s);
    CHECK(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
    CHECK(esm_store_open(dir, &err) == NULL);
    CHECK_MSG(err, "is not writable");
    /* nothing was lost: writable again, the checkpoint is there */
    CHECK(mount(NULL, dir, NULL, MS_REMOUNT, NULL) == 0);
    s = esm_store_open(dir, &err);
    CHECK(s != NULL);
    CHECK(position_is(s, "42"));
    esm_store_close(s);
    return 0;
}

/* The directory is writable but the database file is not (a read-only bind mount of the file):
 * SQLite would silently open it read-only; the store refuses at open, not at the first write. */
static int readonly_db_file(const char *dir)
{
    if (tmpfs(dir, 0, "mode=0700") != 0) return 77;
    esm_err err;
    esm_store *s = esm_store_open(dir, &err);
    CHECK(s != NULL);
    CHECK(advance_to(s, "7", &err) == 0);
    esm_store_close(s);
    char db[1024];
    tc_db_path(dir, db, sizeof db);
    CHECK(mount(db, db, NULL, MS_BIND, NULL) == 0);
    CHECK(mount(NULL, db, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0);
    CHECK(esm_store_open(dir, &err) == NULL);
    if (!strstr(err.message, "read-only") && !strstr(err.message, "readonly")) {
        fprintf(stderr, "no read-only in: %s\n", err.message);
        return 1;
    }
    CHECK_MSG(err, db);
    return 0;
}

/* The disk fills up: the step that does not fit fails with SQLite's message and leaves
 * nothing behind; earlier steps are intact and readable. */
static int disk_full(const char *dir)
{
    if (tmpfs(dir, 0, "mode=0700,size=256k") != 0) return 77;
    esm_err err;
    esm_store *s = esm_store_open(dir, &err);
    CHECK(s != NULL);
    static char payload[16 * 1024];
    memset(payload, 'x', sizeof payload);
    payload[0] = '"';
    payload[sizeof payload - 2] = '"';
    payload[sizeof payload - 1] = '\0';
    esm_outbox_item it = {.destination = "file:///dev/null", .payload = payload};
    int ok = 0;
    char pos[32], last_ok[32] = "";
    for (int i = 1; i <= 1000; i++) {
        snprintf(pos, sizeof pos, "%d", i);
        esm_store_step st = {.position = pos, .items = &it, .n_items = 1};
        if (esm_store_advance(s, M, SRC, "0", &st, &err) != 0) break;
        ok++;
        snprintf(last_ok, sizeof last_ok, "%s", pos);
    }
    CHECK(ok > 0 && ok < 1000);
    CHECK_MSG(err, "database or disk is full");
    CHECK(err.code == ESM_ERR_IO);
    CHECK(err.retriable);
    CHECK(position_is(s, last_ok));
    CHECK(esm_store_outbox_depth(s, NULL, &err) == ok);
    esm_store_close(s);
    return 0;
}

/* ---- the cmocka side ---- */

static void run_scenario(void **state, int (*fn)(const char *))
{
    int rc = run_isolated(fn, *state);
    if (rc == 77) {
        if (geteuid() != 0 && fn == fresh_readonly_dir) {
            /* without mount namespaces a non-root user still gets a read-only dir via chmod */
            assert_int_equal(chmod(*state, 0500), 0);
            esm_err err;
            esm_store *s = esm_store_open(*state, &err);
            chmod(*state, 0700);
            assert_null(s);
            assert_non_null(strstr(err.message, "is not writable"));
            return;
        }
        fprintf(stderr, "skipped: needs a private mount namespace (CAP_SYS_ADMIN); root ignores "
                        "file modes, so a read-only or full disk cannot be made otherwise\n");
        skip();
    }
    assert_int_equal(rc, 0);
}

static void test_fresh_readonly_dir(void **state)
{
    run_scenario(state, fresh_readonly_dir);
}

static void test_existing_db_readonly_dir(void **state)
{
    run_scenario(state, existing_db_readonly_dir);
}

static void test_readonly_db_file(void **state)
{
    run_scenario(state, readonly_db_file);
}

static void test_disk_full(void **state)
{
    run_scenario(state, disk_full);
}

static int setup_dir(void **state)
{
    *state = tc_mkdtemp();
    return *state ? 0 : -1;
}

static int teardown_dir(void **state)
{
    tc_rmrf(*state);
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    esm_log_set_level(ESM_LOG_WARN);
    const struct CMUnitTest tests[] = {
        T(test_fresh_readonly_dir),
        T(test_existing_db_readonly_dir),
        T(test_readonly_db_file),
        T(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
