/* The mapping-key table: its rows are complete, defaults land per source, reload equality sees
 * every table field, and docs/config.md carries the current `esmd --config-reference`. */
#include "test_config_helpers.h"

#include "config/esm_config_keys.h"

#define BEGIN "<!-- config-reference:begin -->\n"
#define END "<!-- config-reference:end -->"

static void test_every_row_is_complete(void **state)
{
    (void)state;
    for (size_t i = 0; i < ESM_KEY_COUNT; i++) {
        const esm_cfg_key *k = &esm_cfg_keys[i];
        if (!k->key) fail_msg("row %zu has no key (a gap in the table)", i);
        if (!esm_cfg_key_is_scalar(k)) continue;
        if (!k->doc || !k->sources || k->scale < 1 || k->lo > k->hi)
            fail_msg("row %s is incomplete", k->key);
        for (int kind = 0; kind < ESM_KIND_COUNT && !k->default_doc; kind++) {
            int64_t v = k->def[kind] / k->scale;
            if (k->type == ESM_KEY_INT && (v < k->lo || v > k->hi))
                fail_msg("%s: default %lld is outside its range", k->key, (long long)v);
        }
    }
}

/* A mapping with no scalar key gets each row's default for its source kind. */
static void test_defaults_per_source_kind(void **state)
{
    (void)state;
    static const struct {
        esm_cfg_source_kind kind;
        const char *mapping;
    } cases[] = {
        {ESM_KIND_SQS, "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "'}"},
        {ESM_KIND_SQS_FIFO, "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN ".fifo'}"},
        {ESM_KIND_KINESIS, "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                           "', 'StartingPosition': 'LATEST'}"},
        {ESM_KIND_KAFKA, "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': "
                         "'LATEST', 'SelfManagedEventSource': {'Endpoints': "
                         "{'KAFKA_BOOTSTRAP_SERVERS': ['b:9092']}}}"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        esm_config_problems p = {0};
        esm_config *cfg = tc_parse_mappings(cases[c].mapping, &p);
        assert_valid(cfg, &p);
        assert_int_equal(esm_cfg_source_kind_of(&cfg->mappings[0]), cases[c].kind);
        for (size_t i = 0; i < ESM_KEY_COUNT; i++)
            if (esm_cfg_key_is_scalar(&esm_cfg_keys[i]))
                assert_int_equal(esm_cfg_key_get(&cfg->mappings[0], &esm_cfg_keys[i]),
                                 esm_cfg_keys[i].def[cases[c].kind]);
        esm_config_destroy(cfg);
    }
}

/* A change to any table field makes the mapping differ on reload. */
static void test_reload_sees_every_table_field(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg =
        tc_parse_mappings("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "'}", &p);
    assert_valid(cfg, &p);
    const esm_mapping_config *m = &cfg->mappings[0];
    esm_mapping_config copy = *m; /* shares the strings; equality only reads */
    assert_true(esm_mapping_config_equal(m, &copy));
    for (size_t i = 0; i < ESM_KEY_COUNT; i++) {
        const esm_cfg_key *k = &esm_cfg_keys[i];
        if (!esm_cfg_key_is_scalar(k)) continue;
        copy = *m;
        int v = esm_cfg_key_get(&copy, k);
        esm_cfg_key_set(&copy, k, k->type == ESM_KEY_BOOL ? !v : v + 1);
        if (esm_mapping_config_equal(m, &copy))
            fail_msg("reload equality misses a change to %s", k->key);
    }
    esm_config_destroy(cfg);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = NULL;
    size_t cap = 0;
    FILE *mem = open_memstream(&text, &cap);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(f);
    fclose(mem);
    return text;
}

static void test_docs_carry_the_reference(void **state)
{
    (void)state;
    char *want = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&want, &len);
    esm_config_reference_print(mem);
    fclose(mem);
    char *doc = read_file(ESMD_SOURCE_DIR "/docs/config.md");
    char *begin = strstr(doc, BEGIN);
    char *end = begin ? strstr(begin, END) : NULL;
    if (!begin || !end) fail_msg("docs/config.md lacks the config-reference markers");
    begin += strlen(BEGIN);
    *end = '\0';
    if (strcmp(begin, want) != 0)
        fail_msg("docs/config.md's config-reference block is stale: run "
                 "scripts/config-reference.sh\n--- docs:\n%s--- esmd --config-reference:\n%s",
                 begin, want);
    free(doc);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_is_complete),
        cmocka_unit_test(test_defaults_per_source_kind),
        cmocka_unit_test(test_reload_sees_every_table_field),
        cmocka_unit_test(test_docs_carry_the_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
