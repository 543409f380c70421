#include "destinations/esm_dest_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
}

int esm_dest_file_append(const char *path, const char *payload, size_t len, esm_err *err)
{
    /* one byte more in front: a '\n' ending a line torn by a crash (kill -9 mid-write), so
     * that this record starts a line of its own and a reader (replay) finds it */
    char *line = malloc(len + 2);
    if (!line) {
        esm_err_set(err, ESM_ERR_NOMEM, true, "out of memory");
        return -1;
    }
    line[0] = '\n';
    for (size_t i = 0; i < len; i++)
        line[i + 1] = payload[i] == '\n' || payload[i] == '\r' ? ' ' : payload[i];
    line[len + 1] = '\n';

    struct stat st;
    bool existed = stat(path, &st) == 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        esm_err_set(err, ESM_ERR_IO, true, "open %s: %s", path, strerror(errno));
        free(line);
        return -1;
    }
    off_t before = fstat(fd, &st) == 0 ? st.st_size : -1;
    /* read through a descriptor of its own: a file esmd may only write is still appended to */
    char last = '\n';
    int rfd = before > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    bool torn = rfd >= 0 && pread(rfd, &last, 1, before - 1) == 1 && last != '\n';
    if (rfd >= 0) close(rfd);
    const char *out = torn ? line : line + 1;
    size_t n = torn ? len + 2 : len + 1;
    ssize_t w = write(fd, out, n);
    int saved = errno;
    free(line);
    if (w != (ssize_t)n) {
        if (w > 0 && before >= 0 && ftruncate(fd, before) != 0) {
            /* nothing more we can do: the torn bytes stay */
        }
        esm_err_set(err, ESM_ERR_IO, true, "write %s: %s", path,
                    w < 0 ? strerror(saved) : "short write");
        close(fd);
        return -1;
    }
    if (fsync(fd) != 0) {
        esm_err_set(err, ESM_ERR_IO, true, "fsync %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        esm_err_set(err, ESM_ERR_IO, true, "close %s: %s", path, strerror(errno));
        return -1;
    }
    if (!existed) fsync_dir_of(path);
    return 0;
}
