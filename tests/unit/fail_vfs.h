/* A SQLite VFS for tests whose writes fail on command, as on a full disk: registered as the
 * default VFS over the real one, it forwards every call, except that while it is armed
 * xWrite and xSync return SQLITE_FULL. Files opened before fail_vfs_install keep the real VFS.
 * Header-only (static functions) so every test file can include it. */
#ifndef FAIL_VFS_H
#define FAIL_VFS_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct in the same allocation */
} fail_vfs_file;

static sqlite3_vfs fail_vfs;
static sqlite3_vfs *fail_vfs_real;
static atomic_bool fail_vfs_armed;
static atomic_uint fail_vfs_failures; /* writes and syncs refused so far */

/* While armed, every write and sync fails with SQLITE_FULL. */
static inline void fail_vfs_arm(bool on)
{
    atomic_store(&fail_vfs_armed, on);
}

static inline unsigned fail_vfs_failed(void)
{
    return atomic_load(&fail_vfs_failures);
}

static bool fail_vfs_refuse(void)
{
    if (!atomic_load(&fail_vfs_armed)) return false;
    atomic_fetch_add(&fail_vfs_failures, 1);
    return true;
}

#define FV_REAL(f) (((fail_vfs_file *)(f))->real)

static int fv_close(sqlite3_file *f)
{
    int rc = FV_REAL(f)->pMethods ? FV_REAL(f)->pMethods->xClose(FV_REAL(f)) : SQLITE_OK;
    return rc;
}
static int fv_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return FV_REAL(f)->pMethods->xRead(FV_REAL(f), p, n, off);
}
static int fv_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    if (fail_vfs_refuse()) return SQLITE_FULL;
    return FV_REAL(f)->pMethods->xWrite(FV_REAL(f), p, n, off);
}
static int fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return FV_REAL(f)->pMethods->xTruncate(FV_REAL(f), size);
}
static int fv_sync(sqlite3_file *f, int flags)
{
    if (fail_vfs_refuse()) return SQLITE_FULL;
    return FV_REAL(f)->pMethods->xSync(FV_REAL(f), flags);
}
static int fv_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return FV_REAL(f)->pMethods->xFileSize(FV_REAL(f), size);
}
static int fv_lock(sqlite3_file *f, int l)
{
    return FV_REAL(f)->pMethods->xLock(FV_REAL(f), l);
}
static int fv_unlock(sqlite3_file *f, int l)
{
    return FV_REAL(f)->pMethods->xUnlock(FV_REAL(f), l);
}
static int fv_check_reserved(sqlite3_file *f, int *out)
{
    return FV_REAL(f)->pMethods->xCheckReservedLock(FV_REAL(f), out);
}
static int fv_file_control(sqlite3_file *f, int op, void *arg)
{
    return FV_REAL(f)->pMethods->xFileControl(FV_REAL(f), op, arg);
}
static int fv_sector_size(sqlite3_file *f)
{
    return FV_REAL(f)->pMethods->xSectorSize(FV_REAL(f));
}
static int fv_device_chars(sqlite3_file *f)
{
    return FV_REAL(f)->pMethods->xDeviceCharacteristics(FV_REAL(f));
}
static int fv_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
    return FV_REAL(f)->pMethods->xShmMap(FV_REAL(f), pg, sz, extend, pp);
}
static int fv_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return FV_REAL(f)->pMethods->xShmLock(FV_REAL(f), off, n, flags);
}
static void fv_shm_barrier(sqlite3_file *f)
{
    FV_REAL(f)->pMethods->xShmBarrier(FV_REAL(f));
}
static int fv_shm_unmap(sqlite3_file *f, int del)
{
    return FV_REAL(f)->pMethods->xShmUnmap(FV_REAL(f), del);
}
static int fv_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return FV_REAL(f)->pMethods->xFetch(FV_REAL(f), off, n, pp);
}
static int fv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return FV_REAL(f)->pMethods->xUnfetch(FV_REAL(f), off, p);
}

static const sqlite3_io_methods fail_vfs_io = {
    .iVersion = 3,
    .xClose = fv_close,
    .xRead = fv_read,
    .xWrite = fv_write,
    .xTruncate = fv_truncate,
    .xSync = fv_sync,
    .xFileSize = fv_file_size,
    .xLock = fv_lock,
    .xUnlock = fv_unlock,
    .xCheckReservedLock = fv_check_reserved,
    .xFileControl = fv_file_control,
    .xSectorSize = fv_sector_size,
    .xDeviceCharacteristics = fv_device_chars,
    .xShmMap = fv_shm_map,
    .xShmLock = fv_shm_lock,
    .xShmBarrier = fv_shm_barrier,
    .xShmUnmap = fv_shm_unmap,
    .xFetch = fv_fetch,
    .xUnfetch = fv_unfetch,
};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    fail_vfs_file *ff = (fail_vfs_file *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    memset(ff->real, 0, (size_t)fail_vfs_real->szOsFile);
    int rc = fail_vfs_real->xOpen(fail_vfs_real, name, ff->real, flags, out_flags);
    /* Our xClose must run whenever the real file has methods (SQLite calls it even after a
     * failed open then). */
    f->pMethods = ff->real->pMethods ? &fail_vfs_io : NULL;
    return rc;
}
static int fv_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    return fail_vfs_real->xDelete(fail_vfs_real, name, sync);
}
static int fv_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return fail_vfs_real->xAccess(fail_vfs_real, name, flags, out);
}
static int fv_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return fail_vfs_real->xFullPathname(fail_vfs_real, name, n, out);
}
static void *fv_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return fail_vfs_real->xDlOpen(fail_vfs_real, name);
}
static void fv_dlerror(sqlite3_vfs *v, int n, char *msg)
{
    (void)v;
    fail_vfs_real->xDlError(fail_vfs_real, n, msg);
}
static void (*fv_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return fail_vfs_real->xDlSym(fail_vfs_real, h, sym);
}
static void fv_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    fail_vfs_real->xDlClose(fail_vfs_real, h);
}
static int fv_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return fail_vfs_real->xRandomness(fail_vfs_real, n, out);
}
static int fv_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return fail_vfs_real->xSleep(fail_vfs_real, us);
}
static int fv_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return fail_vfs_real->xCurrentTime(fail_vfs_real, out);
}
static int fv_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return fail_vfs_real->xGetLastError ? fail_vfs_real->xGetLastError(fail_vfs_real, n, out) : 0;
}
static int fv_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return fail_vfs_real->xCurrentTimeInt64(fail_vfs_real, out);
}

/* Registers the failing VFS as the default (once); it starts disarmed. Returns SQLITE_OK. */
static inline int fail_vfs_install(void)
{
    if (fail_vfs_real) return SQLITE_OK;
    sqlite3_initialize();
    fail_vfs_real = sqlite3_vfs_find(NULL);
    if (!fail_vfs_real) return SQLITE_ERROR;
    fail_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(fail_vfs_file) + fail_vfs_real->szOsFile,
        .mxPathname = fail_vfs_real->mxPathname,
        .zName = "esmd-fail-vfs",
        .xOpen = fv_open,
        .xDelete = fv_delete,
        .xAccess = fv_access,
        .xFullPathname = fv_full_pathname,
        .xDlOpen = fv_dlopen,
        .xDlError = fv_dlerror,
        .xDlSym = fv_dlsym,
        .xDlClose = fv_dlclose,
        .xRandomness = fv_randomness,
        .xSleep = fv_sleep,
        .xCurrentTime = fv_current_time,
        .xGetLastError = fv_last_error,
        .xCurrentTimeInt64 = fv_current_time64,
    };
    return sqlite3_vfs_register(&fail_vfs, 1);
}

#endif
