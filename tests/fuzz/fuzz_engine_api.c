/* libFuzzer target for the Lambda API's event-source-mapping resource (engine/esm_api.c) and for
 * what replay takes from a failure record (engine/esm_replay_record.c). The input is split at
 * '\n' into method, path and query ("k=v&k=v", no decoding), and the rest: a failure record.
 * Invariants: the API answers 200, 400, 404 or 409 with a JSON body, an error type exactly when
 * it is not 200; a record is either an event (a JSON object) or skipped with a reason. */
// clang-format off
// FUZZ_SOURCES: engine/esm_api.c engine/esm_api_render.c engine/esm_replay_record.c config/*.c filter/*.c invoker/esm_invoke_classify.c
// FUZZ_LIBS: -lcurl
// clang-format on
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/esm_api.h"
#include "engine/esm_replay_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}

#define MAX_ARGS 8
static char *keys[MAX_ARGS], *vals[MAX_ARGS];
static int n_args;

static const char *arg(void *req, const char *name)
{
    (void)req;
    for (int i = 0; i < n_args; i++)
        if (strcmp(keys[i], name) == 0) return vals[i];
    return NULL;
}

static void parse_query(char *q)
{
    n_args = 0;
    for (char *p = q; p && *p && n_args < MAX_ARGS;) {
        char *amp = strchr(p, '&');
        if (amp) *amp = '\0';
        char *eq = strchr(p, '=');
        keys[n_args] = p;
        vals[n_args] = eq ? (*eq = '\0', eq + 1) : p + strlen(p);
        n_args++;
        p = amp ? amp + 1 : NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *f[4] = {text, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        char *nl = f[i - 1] ? strchr(f[i - 1], '\n') : NULL;
        if (nl) *nl = '\0';
        f[i] = nl ? nl + 1 : NULL;
    }
    static esm_function_config fn = {.name = "fn", .arn = "arn:aws:lambda:r:1:function:fn"};
    static char *servers[] = {"b:9092"};
    static esm_mapping_config mcs[] = {
        {.uuid = "a",
         .function_name = "fn",
         .function = &fn,
         .source = ESM_SRC_SQS,
         .event_source_arn = "arn:aws:sqs:r:1:q",
         .batch_size = 10},
        {.uuid = "b",
         .function_name = "fn",
         .function = &fn,
         .source = ESM_SRC_KINESIS,
         .event_source_arn = "arn:aws:kinesis:r:1:stream/s",
         .batch_size = 100,
         .starting_position = ESM_START_AT_TIMESTAMP,
         .starting_position_timestamp_ms = 5},
        {.uuid = "c",
         .function_name = "fn",
         .function = &fn,
         .source = ESM_SRC_KAFKA,
         .topic = "t",
         .bootstrap_servers = servers,
         .n_bootstrap_servers = 1},
    };
    esm_api_mapping maps[3];
    for (int i = 0; i < 3; i++)
        maps[i] = (esm_api_mapping){.mc = &mcs[i],
                                    .state = "Enabled",
                                    .state_reason = "x",
                                    .last_processing_result = "OK",
                                    .region = "r"};
    parse_query(f[2]);
    const char *method = f[0][0] ? f[0] : "GET";
    const char *path = f[1] && esm_api_is_mappings_path(f[1]) ? f[1] : ESM_API_MAPPINGS_PATH;
    esm_buf out;
    esm_buf_init(&out);
    const char *type = "unset";
    unsigned st = esm_api_mappings(method, path, maps, 3, "/etc/esmd.json", arg, NULL, &out, &type);
    if (st != 200 && st != 400 && st != 404 && st != 409) fail("status");
    if ((st == 200) != (type == NULL)) fail("error type exactly on an error");
    cJSON *j = cJSON_Parse(esm_buf_cstr(&out));
    if (!j) fail("the body is JSON");
    cJSON_Delete(j);
    esm_buf_free(&out);

    if (f[3]) {
        cJSON *rec = cJSON_Parse(f[3]);
        for (int i = 0; rec && i < 3; i++) {
            char why[300] = "";
            const cJSON *ev = esm_replay_event_of(rec, &mcs[i], why, sizeof why);
            if (ev ? !cJSON_IsObject(ev) : why[0] == '\0') fail("an event, or a reason");
        }
        cJSON_Delete(rec);
    }
    free(text);
    return 0;
}
