/* The daemon: one libev loop owns the config, the store, the HTTP client, the invokers, the
 * outbox drainer and every mapping's source. */
#ifndef ESM_DAEMON_H
#define ESM_DAEMON_H

typedef struct {
    const char *config_path;
    int log_level;       /* -1 = from the config */
    const char *version; /* shown as esmd_build_info on /metrics */
} esm_daemon_options;

/* Runs until SIGTERM/SIGINT; returns the process exit code. */
int esm_daemon_run(const esm_daemon_options *opt);

#endif
