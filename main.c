/* esmd: self-hosted AWS Lambda event source mappings. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/esm_log.h"
#include "config/esm_config.h"
#include "engine/esm_daemon.h"

static void usage(FILE *out)
{
    fputs("usage: esmd --config FILE [--log-level LEVEL]\n"
          "       esmd --check-config FILE\n"
          "       esmd --config-reference | --version | --help\n"
          "\n"
          "  --config FILE        run the mappings of FILE until SIGTERM/SIGINT\n"
          "  --check-config FILE  validate FILE, print every problem, exit 0 when valid\n"
          "  --log-level LEVEL    trace|debug|info|warn|error (overrides log_level)\n"
          "  --debug              same as --log-level trace (per-record tracing)\n"
          "  --config-reference   print the mapping keys as a markdown table (docs/config.md)\n"
          "  --version            print the version\n"
          "\n"
          "Config reference: docs/config.md. Admin HTTP: /healthz /readyz /status /metrics.\n",
          out);
}

static int check_config(const char *path)
{
    esm_config_problems problems = {0};
    esm_config *cfg = esm_config_load_file(path, &problems);
    for (size_t i = 0; i < problems.n; i++)
        fprintf(stderr, "%s: %s%s%s\n", path, problems.items[i].path,
                problems.items[i].path[0] ? ": " : "", problems.items[i].message);
    int rc = cfg ? 0 : 1;
    if (cfg)
        printf("%s: valid (%zu functions, %zu event source mappings)\n", path, cfg->n_functions,
               cfg->n_mappings);
    else
        fprintf(stderr, "%s: %zu problem%s\n", path, problems.n, problems.n == 1 ? "" : "s");
    esm_config_problems_free(&problems);
    esm_config_destroy(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"check-config", required_argument, 0, 'k'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"debug", no_argument, 0, 'd'},
                                         {"config-reference", no_argument, 0, 'r'},
                                         {"version", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *check = NULL;
    int level = -1;
    int c;
    while ((c = getopt_long(argc, argv, "c:k:l:dvh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            check = optarg;
            break;
        case 'l':
            level = esm_log_parse_level(optarg);
            if (level < 0) {
                fprintf(stderr, "esmd: unknown log level \"%s\" (trace|debug|info|warn|error)\n",
                        optarg);
                return 2;
            }
            break;
        case 'd':
            level = ESM_LOG_TRACE;
            break;
        case 'r':
            esm_config_reference_print(stdout);
            return 0;
        case 'v':
            puts("esmd " ESMD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "esmd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check) return check_config(check);
    if (!config) {
        usage(stderr);
        return 2;
    }
    esm_daemon_options opt = {.config_path = config, .log_level = level, .version = ESMD_VERSION};
    return esm_daemon_run(&opt);
}
