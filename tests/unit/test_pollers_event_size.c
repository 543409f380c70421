/* Records at the 6 MB invoke limit (docs/operations.md "Records at the 6 MB limit"): for every
 * one-record event size from limit - 600 to limit + 100, byte by byte (see SWEEP_STRIDE), the
 * rendered event is exactly the size the sources measure, and the record is either invoked
 * (the policy invokes it and the invoker accepts its rendered body: up to the limit) or
 * discarded as MaximumPayloadSizeExceeded (and the invoker would refuse it: above the limit),
 * never neither, never both. Kafka and Kinesis records; Kinesis also for two-record batches
 * around the limit (its records are capped at 1 MiB, so batches are what reaches 6 MB). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_event_size.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "policy/esm_policy.h"
#include "pollers/kafka/esm_kafka_int.h"
#include "pollers/kinesis/esm_kinesis_int.h"

#define LIMIT ESM_INVOKE_MAX_PAYLOAD
#define SWEEP_BELOW 600
#define SWEEP_ABOVE 100
#define NOW_MS 1717000000000LL

/* Byte by byte in the plain build. The ASan build (-O0, every byte the renderers touch is
 * checked: ~10x slower) takes every 7th size, and every size within 8 bytes of the limit. */
#if defined(__SANITIZE_ADDRESS__)
#define SWEEP_STRIDE 7
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWEEP_STRIDE 7
#endif
#endif
#ifndef SWEEP_STRIDE
#define SWEEP_STRIDE 1
#endif

static size_t next_size(size_t target)
{
    return target + 8 >= LIMIT && target < LIMIT + 8 ? target + 1 : target + SWEEP_STRIDE;
}

typedef struct {
    struct ev_loop *loop;
    esm_http *http;
    esm_invoker *inv;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = esm_http_create(f->loop);
    /* Nothing listens there: calls are cancelled before the loop runs. */
    esm_function_config fn = {.name = "t",
                              .url = "http://127.0.0.1:9/",
                              .protocol = ESM_PROTO_LAMBDA,
                              .timeout_seconds = 5,
                              .max_concurrency = 1};
    f->inv = esm_invoker_create(f->loop, f->http, &fn, NULL);
    assert_non_null(f->inv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    esm_invoker_destroy(f->inv);
    esm_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

static void never_called(const esm_invoke_result *r, void *arg)
{
    (void)r;
    (void)arg;
    fail_msg("the call was cancelled");
}

static bool invoker_accepts(fixture *f, const esm_buf *event)
{
    esm_invocation *c = esm_invoker_invoke(f->inv, event->data, event->len, never_called, NULL);
    esm_invoker_cancel(c);
    return c != NULL;
}

/* The lane's policy settings for a source whose events have this envelope. */
static esm_policy_config lane_cfg(size_t envelope)
{
    return (esm_policy_config){.max_retry_attempts = -1,
                               .max_record_age_seconds = -1,
                               .backoff_base_ms = 1000,
                               .backoff_max_ms = 60000,
                               .max_payload_bytes = LIMIT,
                               .event_envelope = envelope};
}

/* The first decision for the batch: true when it invokes [0, n), false when it discards
 * [0, n) as MaximumPayloadSizeExceeded (anything else fails the test). *invoke_hi gets the end
 * of the INVOKE. */
static bool policy_invokes(const esm_policy_record *recs, size_t n, const esm_policy_config *cfg,
                           size_t *invoke_hi)
{
    esm_policy_state st;
    esm_policy_state_init(&st, n);
    esm_policy_decision d;
    esm_policy_decision_init(&d);
    esm_policy_outcome none = {.kind = ESM_OUTCOME_NONE, .retry_after_ms = -1};
    assert_int_equal(esm_policy_decide(recs, n, &st, &none, cfg, NOW_MS, 0, &d), 0);
    bool invokes;
    if (d.steps[0].kind == ESM_STEP_INVOKE) {
        assert_int_equal(d.n, 1);
        assert_int_equal(d.steps[0].lo, 0);
        *invoke_hi = d.steps[0].hi;
        invokes = true;
    } else {
        assert_int_equal(d.steps[0].kind, ESM_STEP_DISCARD);
        assert_int_equal(d.steps[0].condition, ESM_COND_MAXIMUM_PAYLOAD_SIZE_EXCEEDED);
        assert_int_equal(d.steps[0].lo, 0);
        assert_int_equal(d.steps[0].hi, 1);
        invokes = false;
    }
    esm_policy_decision_free(&d);
    return invokes;
}

/* ---- Kafka ------------------------------------------------------------------------------ */

#define K_BOOTSTRAP "broker-1.example:9092,broker-2.example:9092"
#define K_TOPIC "orders"
#define K_PARTITION 3

/* A record with a value of value_len bytes and one header whose name has name_len bytes. */
static void kafka_render(const unsigned char *value, size_t value_len, size_t name_len,
                         esm_buf *out)
{
    static const char name[4] = "hhhh";
    esm_kafka_header h = {.name = name, .name_len = name_len, .value = NULL};
    esm_kafka_record_view r = {.topic = K_TOPIC,
                               .partition = K_PARTITION,
                               .offset = 123456,
                               .timestamp_ms = NOW_MS,
                               .timestamp_type = ESM_KAFKA_TS_CREATE,
                               .value = value,
                               .value_len = value_len,
                               .headers = &h,
                               .n_headers = 1};
    esm_kafka_render_record(&r, out);
}

static void test_kafka_one_record_sweep(void **state)
{
    fixture *f = *state;
    size_t envelope = esm_kafka_event_overhead(K_BOOTSTRAP, K_TOPIC, K_PARTITION);
    esm_policy_config cfg = lane_cfg(envelope);
    esm_buf rec, event;
    esm_buf_init(&rec);
    esm_buf_init(&event);
    kafka_render((const unsigned char *)"", 0, 0, &rec);
    size_t base = rec.len; /* empty value and header name */
    unsigned char *value = calloc(LIMIT, 1);
    assert_non_null(value);
    for (size_t target = LIMIT - SWEEP_BELOW; target <= LIMIT + SWEEP_ABOVE;
         target = next_size(target)) {
        /* base64 writes 4 bytes per 3 (the last 1..3 padded: all three cases come up), the
         * header name the last 1..4 bytes */
        size_t grow = target - envelope - base, q = (grow - 1) / 4;
        esm_buf_reset(&rec);
        kafka_render(value, 3 * q - target % 3, grow - 4 * q, &rec);
        assert_false(rec.failed);
        /* The size the partition measures is exactly the event it renders. */
        assert_int_equal(esm_event_size(envelope, 1, rec.len), target);
        esm_buf_reset(&event);
        esm_kafka_render_event_open(K_BOOTSTRAP, K_TOPIC, K_PARTITION, &event);
        esm_buf_append(&event, rec.data, rec.len);
        esm_kafka_render_event_close(&event);
        assert_false(event.failed);
        assert_int_equal(event.len, target);

        esm_policy_record pr = {.id = "orders-3:123456", .arrival_ms = NOW_MS, .size = rec.len};
        size_t hi = 0;
        bool invokes = policy_invokes(&pr, 1, &cfg, &hi);
        if (invokes != invoker_accepts(f, &event))
            fail_msg("event of %zu bytes: the policy %s it but the invoker %s it", target,
                     invokes ? "invokes" : "discards", invokes ? "refuses" : "accepts");
        assert_int_equal(invokes, target <= LIMIT);
    }
    free(value);
    esm_buf_free(&rec);
    esm_buf_free(&event);
}

/* ---- Kinesis ---------------------------------------------------------------------------- */

static const esm_kinesis_render_ctx k_ctx = {
    .stream_arn = "arn:aws:kinesis:eu-west-1:111122223333:stream/telemetry",
    .region = "eu-west-1",
    .identity_arn = "arn:aws:iam::111122223333:role/esmd",
    .shard_id = "shardId-000000000003",
};
#define SEQ_A "49651234567890123456789012345678901234567890123456789012"
#define SEQ_B "49651234567890123456789012345678901234567890123456799999"

/* The data is passed through as the stream's base64 text, so its length sets the record's
 * size byte by byte. */
static esm_kinesis_record *kinesis_record(const char *seq, char *data, size_t data_len)
{
    char keep = data[data_len];
    data[data_len] = '\0';
    esm_kinesis_record *r = esm_kinesis_record_new(&k_ctx, seq, "pk", NOW_MS, data);
    data[data_len] = keep;
    assert_non_null(r);
    return r;
}

static void test_kinesis_one_record_sweep(void **state)
{
    fixture *f = *state;
    size_t envelope = esm_kinesis_event_size(0, 0);
    esm_policy_config cfg = lane_cfg(envelope);
    char *data = malloc(LIMIT + 1);
    assert_non_null(data);
    memset(data, 'A', LIMIT);
    data[LIMIT] = '\0';
    esm_kinesis_record *r0 = kinesis_record(SEQ_A, data, 0);
    size_t base = r0->json_len;
    esm_kinesis_record_free(r0);
    esm_buf event;
    esm_buf_init(&event);
    for (size_t target = LIMIT - SWEEP_BELOW; target <= LIMIT + SWEEP_ABOVE;
         target = next_size(target)) {
        esm_kinesis_record *r = kinesis_record(SEQ_A, data, target - envelope - base);
        assert_int_equal(esm_kinesis_event_size(1, r->json_len), target);
        esm_buf_reset(&event);
        esm_kinesis_render_event(&r, 1, &event);
        assert_false(event.failed);
        assert_int_equal(event.len, target);

        esm_policy_record pr = {.id = r->seq, .arrival_ms = NOW_MS, .size = r->json_len};
        size_t hi = 0;
        bool invokes = policy_invokes(&pr, 1, &cfg, &hi);
        if (invokes != invoker_accepts(f, &event))
            fail_msg("event of %zu bytes: the policy %s it but the invoker %s it", target,
                     invokes ? "invokes" : "discards", invokes ? "refuses" : "accepts");
        assert_int_equal(invokes, target <= LIMIT);
        esm_kinesis_record_free(r);
    }
    free(data);
    esm_buf_free(&event);
}

/* Two records whose event sweeps the limit: the whole batch is invoked when the invoker accepts
 * it, else the policy invokes the first record alone and then the second: every INVOKE is an
 * event the invoker accepts. */
static void test_kinesis_two_record_batch_sweep(void **state)
{
    fixture *f = *state;
    size_t envelope = esm_kinesis_event_size(0, 0);
    esm_policy_config cfg = lane_cfg(envelope);
    char *data = malloc(LIMIT + 1);
    assert_non_null(data);
    memset(data, 'A', LIMIT);
    data[LIMIT] = '\0';
    esm_kinesis_record *recs[2];
    recs[0] = kinesis_record(SEQ_A, data, LIMIT / 2);
    esm_kinesis_record *r0 = kinesis_record(SEQ_B, data, 0);
    size_t base = r0->json_len;
    esm_kinesis_record_free(r0);
    esm_buf event;
    esm_buf_init(&event);
    for (size_t target = LIMIT - SWEEP_BELOW; target <= LIMIT + SWEEP_ABOVE;
         target = next_size(target)) {
        recs[1] = kinesis_record(SEQ_B, data, target - envelope - recs[0]->json_len - 1 - base);
        assert_int_equal(esm_kinesis_event_size(2, recs[0]->json_len + recs[1]->json_len), target);
        esm_buf_reset(&event);
        esm_kinesis_render_event(recs, 2, &event);
        assert_int_equal(event.len, target);
        esm_policy_record pr[2] = {
            {.id = recs[0]->seq, .arrival_ms = NOW_MS, .size = recs[0]->json_len},
            {.id = recs[1]->seq, .arrival_ms = NOW_MS, .size = recs[1]->json_len}};
        size_t hi = 0;
        assert_true(policy_invokes(pr, 2, &cfg, &hi));
        assert_int_equal(hi == 2, target <= LIMIT);
        if (hi == 2) {
            assert_true(invoker_accepts(f, &event));
        } else {
            assert_int_equal(hi, 1);
            assert_false(invoker_accepts(f, &event));
            for (size_t i = 0; i < 2; i++) {
                esm_buf_reset(&event);
                esm_kinesis_render_event(recs + i, 1, &event);
                assert_true(invoker_accepts(f, &event));
            }
        }
        esm_kinesis_record_free(recs[1]);
    }
    esm_kinesis_record_free(recs[0]);
    free(data);
    esm_buf_free(&event);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kafka_one_record_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_one_record_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_two_record_batch_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
