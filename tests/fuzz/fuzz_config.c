/* libFuzzer target for the config loader (esm_config_parse): any bytes as the config document.
 * Besides the sanitizers, it checks that the loader either returns a config and no problems or
 * NULL and at least one problem, each with a non-empty message and a path (never a crash). */
// FUZZ_SOURCES: config/*.c filter/*.c
#include "common/esm_log.h"
#include "config/esm_config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    esm_log_set_level(ESM_LOG_ERROR);
    char *json = malloc(size + 1);
    if (!json) return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    esm_config_problems probs = {0};
    esm_config *cfg = esm_config_parse(json, size, &probs);
    if (cfg) {
        check(probs.n == 0, "a config is returned only without problems");
        for (size_t i = 0; i < cfg->n_mappings; i++)
            check(esm_config_find_function(cfg, cfg->mappings[i].function_name) != NULL,
                  "every mapping's function resolves");
        esm_config_destroy(cfg);
    } else {
        check(probs.n > 0, "a refused config names at least one problem");
        for (size_t i = 0; i < probs.n; i++) {
            check(probs.items[i].path != NULL, "a problem has a path");
            check(probs.items[i].message && probs.items[i].message[0], "a problem has a message");
        }
    }
    esm_config_problems_free(&probs);
    free(json);
    return 0;
}
