#include "common/esm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static esm_log_level current_level = ESM_LOG_INFO;
static const char *const level_names[] = {"trace", "debug", "info", "warn", "error"};

void esm_log_set_level(esm_log_level level)
{
    current_level = level;
}

esm_log_level esm_log_get_level(void)
{
    return current_level;
}

int esm_log_parse_level(const char *name)
{
    for (int i = 0; i <= ESM_LOG_ERROR; i++)
        if (name && strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

void esm_log(esm_log_level level, const char *ctx, const char *fmt, ...)
{
    if (level < current_level) return;
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level], ctx ? ctx : "esmd");
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so concurrent writers never interleave inside a line. */
    size_t len = strnlen(line, sizeof line - 2);
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n') line[i] = ' ';
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
