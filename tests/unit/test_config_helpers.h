/* Helpers shared by the config tests: JSON written with single quotes (turned into double
 * quotes here, so test configs stay readable) and problem lookups. */
#ifndef TEST_CONFIG_HELPERS_H
#define TEST_CONFIG_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/esm_config.h"

/* The functions every mapping test can refer to. */
#define TEST_FUNCTIONS                                                                             \
    "'functions': {'orders': {'url': 'http://127.0.0.1:9000/2015-03-31/functions/orders/"          \
    "invocations'}, 'audit': {'url': 'http://127.0.0.1:9001/', 'protocol': 'http'}}"

#define SQS_ARN "arn:aws:sqs:us-east-1:000000000000:orders"
#define KINESIS_ARN "arn:aws:kinesis:us-east-1:000000000000:stream/telemetry"

/* Single quotes become double quotes; write \\' for an escaped quote inside a string. */
static inline char *tc_json(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    return s;
}

static inline esm_config *tc_parse(const char *text, esm_config_problems *p)
{
    char *j = tc_json(text);
    esm_config *cfg = esm_config_parse(j, strlen(j), p);
    free(j);
    return cfg;
}

/* Parses a document with TEST_FUNCTIONS and the given mapping objects (comma-separated). */
static inline esm_config *tc_parse_mappings(const char *mappings, esm_config_problems *p)
{
    size_t n = strlen(mappings) + 512;
    char *doc = malloc(n);
    snprintf(doc, n, "{" TEST_FUNCTIONS ", 'event_source_mappings': [%s]}", mappings);
    esm_config *cfg = tc_parse(doc, p);
    free(doc);
    return cfg;
}

static inline void tc_dump(const esm_config_problems *p)
{
    for (size_t i = 0; i < p->n; i++)
        fprintf(stdout, "  problem: [%s] %s\n", p->items[i].path, p->items[i].message);
}

static inline bool tc_has(const esm_config_problems *p, const char *path, const char *msg,
                          bool prefix)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].path, path) != 0) continue;
        if (prefix ? strncmp(p->items[i].message, msg, strlen(msg)) == 0
                   : strcmp(p->items[i].message, msg) == 0)
            return true;
    }
    return false;
}

static inline bool tc_has_substr(const esm_config_problems *p, const char *path, const char *sub)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].path, path) == 0 && strstr(p->items[i].message, sub)) return true;
    return false;
}

static inline bool tc_any_contains(const esm_config_problems *p, const char *sub)
{
    for (size_t i = 0; i < p->n; i++)
        if (strstr(p->items[i].message, sub) || strstr(p->items[i].path, sub)) return true;
    return false;
}

/* Exact message at path. */
#define assert_problem(p, path, msg)                                                               \
    do {                                                                                           \
        if (!tc_has((p), (path), (msg), false)) {                                                  \
            tc_dump(p);                                                                            \
            fail_msg("expected problem [%s] %s", (path), (msg));                                   \
        }                                                                                          \
    } while (0)
/* Message at path starting with msg. */
#define assert_problem_prefix(p, path, msg)                                                        \
    do {                                                                                           \
        if (!tc_has((p), (path), (msg), true)) {                                                   \
            tc_dump(p);                                                                            \
            fail_msg("expected problem [%s] %s...", (path), (msg));                                \
        }                                                                                          \
    } while (0)
/* Message at path containing sub. */
#define assert_problem_has(p, path, sub)                                                           \
    do {                                                                                           \
        if (!tc_has_substr((p), (path), (sub))) {                                                  \
            tc_dump(p);                                                                            \
            fail_msg("expected problem [%s] containing '%s'", (path), (sub));                      \
        }                                                                                          \
    } while (0)
#define assert_valid(cfg, p)                                                                       \
    do {                                                                                           \
        if (!(cfg)) {                                                                              \
            tc_dump(p);                                                                            \
            fail_msg("config unexpectedly invalid");                                               \
        }                                                                                          \
        assert_int_equal((p)->n, 0);                                                               \
    } while (0)

#endif
