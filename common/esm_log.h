/* One line per event on stderr: time, level, context (mapping / shard), message. */
#ifndef ESM_LOG_H
#define ESM_LOG_H

typedef enum {
    ESM_LOG_TRACE,
    ESM_LOG_DEBUG,
    ESM_LOG_INFO,
    ESM_LOG_WARN,
    ESM_LOG_ERROR
} esm_log_level;

void esm_log_set_level(esm_log_level level);
esm_log_level esm_log_get_level(void);
/* Parses "trace", "debug", "info", "warn", "error"; returns -1 when unknown. */
int esm_log_parse_level(const char *name);

/* ctx is the mapping / lane context ("orders" or "orders shardId-0001"); may be NULL. */
void esm_log(esm_log_level level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define esm_log_enabled(level) ((level) >= esm_log_get_level())
#define ESM_TRACE(ctx, ...)                                                                        \
    do {                                                                                           \
        if (esm_log_enabled(ESM_LOG_TRACE)) esm_log(ESM_LOG_TRACE, ctx, __VA_ARGS__);              \
    } while (0)
#define ESM_DEBUG(ctx, ...)                                                                        \
    do {                                                                                           \
        if (esm_log_enabled(ESM_LOG_DEBUG)) esm_log(ESM_LOG_DEBUG, ctx, __VA_ARGS__);              \
    } while (0)
#define ESM_INFO(ctx, ...) esm_log(ESM_LOG_INFO, ctx, __VA_ARGS__)
#define ESM_WARN(ctx, ...) esm_log(ESM_LOG_WARN, ctx, __VA_ARGS__)
#define ESM_ERROR(ctx, ...) esm_log(ESM_LOG_ERROR, ctx, __VA_ARGS__)

#endif
