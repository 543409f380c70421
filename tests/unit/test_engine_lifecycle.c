/* The mapping state table: every combination of what the engine knows and the source's phase
 * gives one AWS state, and the source's phases have their AWS names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/esm_lifecycle.h"

static const esm_mapping_config ENABLED_CFG = {.enabled = true};
static const esm_mapping_config DISABLED_CFG = {.enabled = false};

typedef struct {
    const char *why;
    esm_lifecycle_facts facts;
    const char *state;
} row;

static const row ROWS[] = {
    {"no source", {.running = false}, "Disabled"},
    {"first start, peer not reached", {.running = true, .phase = ESM_SOURCE_REACHING}, "Creating"},
    {"first start, not started", {.running = true, .phase = ESM_SOURCE_CREATED}, "Creating"},
    {"polling", {.running = true, .phase = ESM_SOURCE_RUNNING}, "Enabled"},
    {"restarted by a reload, peer not reached",
     {.running = true, .phase = ESM_SOURCE_REACHING, .restarted = true},
     "Updating"},
    {"restarted by a reload, polling again",
     {.running = true, .phase = ESM_SOURCE_RUNNING, .restarted = true},
     "Enabled"},
    {"stopping to restart with a changed config",
     {.running = true, .phase = ESM_SOURCE_STOPPING, .stopping = true, .next = &ENABLED_CFG},
     "Updating"},
    {"stopping because the new config disables it",
     {.running = true, .phase = ESM_SOURCE_STOPPING, .stopping = true, .next = &DISABLED_CFG},
     "Disabling"},
    {"stopping because the config no longer has it",
     {.running = true, .phase = ESM_SOURCE_STOPPING, .stopping = true, .next = NULL},
     "Deleting"},
    {"stopping because esmd shuts down",
     {.running = true, .phase = ESM_SOURCE_STOPPING, .stopping = true, .shutting_down = true},
     "Disabling"},
    {"shutdown wins over a pending restart",
     {.running = true,
      .phase = ESM_SOURCE_RUNNING,
      .stopping = true,
      .shutting_down = true,
      .next = &ENABLED_CFG},
     "Disabling"},
};

static void test_every_case_has_its_aws_state(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        const char *got = esm_state_name(esm_lifecycle_state(&ROWS[i].facts));
        if (strcmp(got, ROWS[i].state) != 0)
            fail_msg("%s: got %s, want %s", ROWS[i].why, got, ROWS[i].state);
    }
}

static void test_every_state_and_phase_has_a_name(void **state)
{
    (void)state;
    for (int s = ESM_STATE_CREATING; s <= ESM_STATE_DELETING; s++)
        assert_string_not_equal(esm_state_name((esm_state)s), "Unknown");
    assert_string_equal(esm_state_name((esm_state)(ESM_STATE_DELETING + 1)), "Unknown");
    assert_string_equal(esm_source_phase_name(ESM_SOURCE_CREATED), "Creating");
    assert_string_equal(esm_source_phase_name(ESM_SOURCE_REACHING), "Enabling");
    assert_string_equal(esm_source_phase_name(ESM_SOURCE_RUNNING), "Enabled");
    assert_string_equal(esm_source_phase_name(ESM_SOURCE_STOPPING), "Disabling");
    assert_string_equal(esm_source_phase_name(ESM_SOURCE_STOPPED), "Disabled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_case_has_its_aws_state),
        cmocka_unit_test(test_every_state_and_phase_has_a_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
