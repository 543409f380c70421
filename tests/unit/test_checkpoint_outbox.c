/* The outbox's parked rows and dedupe keys in the store (migration 2): a parked row is kept
 * but never due, redrive makes it due again; a dedupe key lets one failure record per source
 * record in, also after that record was delivered, until its retention ends; a version-1
 * database migrates with its rows intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checkpoint/esm_store.h"
#include "checkpoint/esm_store_sql.h"
#include "common/esm_time.h"
#include "tests/unit/test_checkpoint_util.h"

#define M "map-1"

static int setup(void **state)
{
    *state = tc_mkdtemp();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    tc_rmrf(*state);
    return 0;
}

static esm_store *open_ok(const char *dir)
{
    esm_err err = {0};
    esm_store *s = esm_store_open(dir, &err);
    if (!s) fail_msg("open: %s", err.message);
    return s;
}

static int add(esm_store *s, const char *dest, const char *payload, const char *dedupe_key)
{
    esm_outbox_item it = {.destination = dest, .payload = payload, .dedupe_key = dedupe_key};
    esm_err err = {0};
    return esm_store_outbox_add(s, M, &it, 1, &err);
}

static size_t due_count(esm_store *s, int64_t *first_id)
{
    esm_outbox_row *rows = NULL;
    size_t n = 0;
    esm_err err = {0};
    assert_int_equal(esm_store_outbox_due(s, INT64_MAX, 100, &rows, &n, &err), 0);
    if (first_id) *first_id = n ? rows[0].id : 0;
    esm_store_outbox_rows_free(rows, n);
    return n;
}

static void test_parked_row_is_kept_but_not_due_until_redriven(void **state)
{
    esm_store *s = open_ok(*state);
    esm_err err = {0};
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":1}", NULL), 0);
    assert_int_equal(add(s, "file:///tmp/b", "{\"n\":2}", NULL), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":3}", NULL), 0);
    assert_int_equal(esm_store_outbox_park(s, 1, 1000, "HTTP 413: too large", &err), 0);
    assert_int_equal(esm_store_outbox_park(s, 1, 2000, "again", &err), 1); /* already parked */
    assert_int_equal(esm_store_outbox_park(s, 3, 3000, "HTTP 400: bad", &err), 0);

    int64_t first = 0;
    assert_int_equal(due_count(s, &first), 1);
    assert_int_equal(first, 2);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 1);

    esm_outbox_row_info *rows = NULL;
    size_t n = 0;
    assert_int_equal(esm_store_outbox_list(s, true, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].id, 1);
    assert_string_equal(rows[0].reason, "HTTP 413: too large");
    assert_string_equal(rows[0].destination, "file:///tmp/a");
    assert_string_equal(rows[0].mapping, M);
    assert_int_equal(rows[0].parked_at_ms, 1000);
    assert_int_equal(rows[0].size, 7);
    assert_int_equal(rows[0].attempts, 1);
    esm_store_outbox_infos_free(rows, n);
    /* paging */
    assert_int_equal(esm_store_outbox_list(s, true, 1, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, 3);
    esm_store_outbox_infos_free(rows, n);
    /* the row still to deliver, in its own listing */
    assert_int_equal(esm_store_outbox_list(s, false, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].id, 2);
    assert_string_equal(rows[0].destination, "file:///tmp/b");
    assert_null(rows[0].reason); /* not tried yet */
    assert_int_equal(rows[0].parked_at_ms, 0);
    assert_true(rows[0].next_attempt_at_ms > 0);
    esm_store_outbox_infos_free(rows, n);
    assert_int_equal(esm_store_outbox_list(s, false, 2, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(esm_store_outbox_retry_later(s, 2, 9000, "HTTP 503", &err), 0);
    assert_int_equal(esm_store_outbox_list(s, false, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].reason, "HTTP 503");
    assert_int_equal(rows[0].next_attempt_at_ms, 9000);
    assert_int_equal(rows[0].attempts, 1);
    esm_store_outbox_infos_free(rows, n);

    esm_outbox_parked_dest *pd = NULL;
    assert_int_equal(esm_store_outbox_parked_by_dest(s, &pd, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pd[0].count, 2);
    assert_int_equal(pd[0].last_parked_at_ms, 3000);
    assert_string_equal(pd[0].last_reason, "HTTP 400: bad"); /* the latest one */
    esm_store_outbox_parked_dests_free(pd, n);

    /* other destinations and ids are left alone */
    assert_int_equal(esm_store_outbox_redrive(s, 0, "file:///tmp/b", 5000, &err), 0);
    assert_int_equal(esm_store_outbox_redrive(s, 3, NULL, 5000, &err), 1);
    assert_int_equal(due_count(s, NULL), 2);
    assert_int_equal(esm_store_outbox_redrive(s, 0, NULL, 5000, &err), 1);
    assert_int_equal(due_count(s, &first), 3);
    assert_int_equal(first, 1); /* back in id order */
    assert_int_equal(esm_store_outbox_redrive(s, 0, NULL, 5000, &err), 0);
    esm_store_close(s);
}

static void test_parked_rows_survive_a_reopen(void **state)
{
    esm_store *s = open_ok(*state);
    esm_err err = {0};
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":1}", NULL), 0);
    assert_int_equal(esm_store_outbox_park(s, 1, 1000, "refused", &err), 0);
    esm_store_close(s);
    s = open_ok(*state);
    assert_int_equal(due_count(s, NULL), 0);
    esm_outbox_row_info *rows = NULL;
    size_t n = 0;
    assert_int_equal(esm_store_outbox_list(s, true, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].reason, "refused");
    esm_store_outbox_infos_free(rows, n);
    int64_t when = 0;
    assert_int_equal(esm_store_outbox_next_due(s, &when, &err), 1); /* nothing due, ever */
    esm_store_close(s);
}

static void test_dedupe_key_admits_one_record_also_after_delivery(void **state)
{
    esm_store *s = open_ok(*state);
    esm_err err = {0};
    const char *key = "sqs:" M ":msg-1";
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":1}", key), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":1,\"again\":true}", key), 1);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 1);
    /* another message, or no key, is not affected */
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":2}", "sqs:" M ":msg-2"), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":3}", NULL), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":3}", NULL), 0);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 4);

    /* delivered: the row goes, the key stays (the message may come back) */
    assert_int_equal(esm_store_outbox_delete(s, 1, &err), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":1,\"again\":true}", key), 1);
    assert_int_equal(esm_store_outbox_depth(s, NULL, &err), 3);

    /* a refused step leaves no key behind: the record can be written later */
    esm_outbox_item bad = {
        .destination = "file:///tmp/a", .payload = "not json", .dedupe_key = "sqs:" M ":msg-3"};
    assert_int_equal(esm_store_outbox_add(s, M, &bad, 1, &err), -1);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":4}", "sqs:" M ":msg-3"), 0);

    /* a key whose retention ended is free again even before the prune */
    assert_int_equal(
        tc_sql(*state, "UPDATE outbox_dedupe SET expires_at_ms = 1 WHERE key = 'sqs:" M ":msg-2'"),
        SQLITE_OK);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":2}", "sqs:" M ":msg-2"), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":2}", "sqs:" M ":msg-2"), 1);

    /* the retention ends: the key is forgotten */
    int64_t later = esm_now_ms() + ESM_STORE_DEDUPE_RETENTION_MS + 1;
    assert_int_equal(esm_store_outbox_prune_dedupe(s, esm_now_ms(), &err), 0);
    assert_int_equal(esm_store_outbox_prune_dedupe(s, later, &err), 3);
    assert_int_equal(add(s, "file:///tmp/a", "{\"n\":1}", key), 0);
    esm_store_close(s);
}

static void test_a_version_1_database_migrates_with_its_rows(void **state)
{
    const char *dir = *state;
    /* a database as esmd with schema version 1 left it, with one undelivered row */
    esm_store *s = open_ok(dir);
    esm_store_close(s);
    char path[1024];
    tc_db_path(dir, path, sizeof path);
    assert_int_equal(remove(path), 0);
    assert_int_equal(tc_sql(dir, SQL_SCHEMA_TABLE
                            ";" SQL_MIGRATION_1 "INSERT INTO esmd_schema VALUES (1, 'v1', 0);"
                            "INSERT INTO outbox (mapping, destination, payload, created_at_ms,"
                            " next_attempt_at_ms) VALUES ('" M "', 'file:///tmp/a', '{}', 1, 1);"),
                     SQLITE_OK);
    s = open_ok(dir);
    assert_int_equal(esm_store_schema_version(s), ESM_STORE_SCHEMA_VERSION);
    assert_int_equal(due_count(s, NULL), 1);
    esm_err err = {0};
    assert_int_equal(esm_store_outbox_park(s, 1, 1000, "refused", &err), 0);
    assert_int_equal(due_count(s, NULL), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{}", "k"), 0);
    assert_int_equal(add(s, "file:///tmp/a", "{}", "k"), 1);
    esm_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parked_row_is_kept_but_not_due_until_redriven, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parked_rows_survive_a_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_key_admits_one_record_also_after_delivery,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_version_1_database_migrates_with_its_rows, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
