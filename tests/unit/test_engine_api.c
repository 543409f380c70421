/* The Lambda API's event-source-mapping resource without a server: each source's fields in
 * AWS's shape with AWS's defaults, list filters and pages, and AWS's error shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "engine/esm_api.h"

static esm_function_config FN = {.name = "fn",
                                 .arn = "arn:aws:lambda:eu-west-1:123456789012:function:fn"};

static esm_api_mapping view(const esm_mapping_config *mc)
{
    return (esm_api_mapping){.mc = mc,
                             .state = "Enabled",
                             .state_reason = "USER_INITIATED",
                             .last_processing_result = "OK",
                             .last_modified_ms = 1700000000123,
                             .region = "eu-west-1"};
}

static cJSON *render(const esm_mapping_config *mc)
{
    esm_api_mapping v = view(mc);
    esm_buf b;
    esm_buf_init(&b);
    esm_api_mapping_json(&v, &b);
    cJSON *j = cJSON_Parse(esm_buf_cstr(&b));
    esm_buf_free(&b);
    assert_non_null(j);
    return j;
}

static const cJSON *get(const cJSON *j, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(j, k);
}

static void test_kinesis_fields_with_aws_defaults(void **state)
{
    (void)state;
    esm_mapping_config mc = {.uuid = "u-1",
                             .function = &FN,
                             .source = ESM_SRC_KINESIS,
                             .event_source_arn = "arn:aws:kinesis:eu-west-1:1:stream/s",
                             .batch_size = 100,
                             .starting_position = ESM_START_LATEST,
                             .parallelization_factor = 1,
                             .maximum_retry_attempts = -1,
                             .maximum_record_age_seconds = -1};
    cJSON *j = render(&mc);
    assert_string_equal(get(j, "EventSourceMappingArn")->valuestring,
                        "arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:u-1");
    assert_string_equal(get(j, "StartingPosition")->valuestring, "LATEST");
    assert_int_equal(get(j, "MaximumRetryAttempts")->valueint, -1);
    assert_int_equal(get(j, "MaximumRecordAgeInSeconds")->valueint, -1);
    assert_true(cJSON_IsFalse(get(j, "BisectBatchOnFunctionError")));
    assert_int_equal(get(j, "ParallelizationFactor")->valueint, 1);
    assert_non_null(get(get(j, "DestinationConfig"), "OnFailure"));
    assert_true(get(j, "LastModified")->valuedouble > 1700000000.1);
    assert_int_equal(cJSON_GetArraySize(get(j, "FunctionResponseTypes")), 0);
    cJSON_Delete(j);
}

static void test_kafka_fields(void **state)
{
    (void)state;
    char *servers[] = {"b1:9092", "b2:9092"};
    esm_source_access sa = {.type = "SASL_SCRAM_512_AUTH", .uri = "file:/etc/esmd/secret"};
    esm_mapping_config mc = {.uuid = "u-2",
                             .function = &FN,
                             .source = ESM_SRC_KAFKA,
                             .topic = "orders",
                             .bootstrap_servers = servers,
                             .n_bootstrap_servers = 2,
                             .source_access = &sa,
                             .n_source_access = 1,
                             .starting_position = ESM_START_TRIM_HORIZON};
    cJSON *j = render(&mc);
    assert_null(get(j, "EventSourceArn"));
    assert_string_equal(cJSON_GetArrayItem(get(j, "Topics"), 0)->valuestring, "orders");
    const cJSON *bs =
        get(get(get(j, "SelfManagedEventSource"), "Endpoints"), "KAFKA_BOOTSTRAP_SERVERS");
    assert_int_equal(cJSON_GetArraySize(bs), 2);
    assert_string_equal(
        get(get(j, "SelfManagedKafkaEventSourceConfig"), "ConsumerGroupId")->valuestring, "u-2");
    assert_string_equal(
        get(cJSON_GetArrayItem(get(j, "SourceAccessConfigurations"), 0), "URI")->valuestring,
        "file:/etc/esmd/secret");
    cJSON_Delete(j);
}

/* Query arguments for list: name=value pairs. */
static const char *const *args_now;
static const char *arg(void *req, const char *name)
{
    (void)req;
    for (const char *const *a = args_now; a && a[0]; a += 2)
        if (strcmp(a[0], name) == 0) return a[1];
    return NULL;
}

static unsigned call(const char *method, const char *path, const char *const *args,
                     const esm_api_mapping *maps, size_t n, cJSON **body, const char **type)
{
    args_now = args;
    esm_buf b;
    esm_buf_init(&b);
    unsigned st = esm_api_mappings(method, path, maps, n, "/etc/esmd.json", arg, NULL, &b, type);
    *body = cJSON_Parse(esm_buf_cstr(&b));
    esm_buf_free(&b);
    assert_non_null(*body);
    return st;
}

static void test_list_filters_pages_and_errors(void **state)
{
    (void)state;
    esm_function_config other = {.name = "other",
                                 .arn = "arn:aws:lambda:eu-west-1:1:function:other"};
    enum { N = 5 };
    esm_mapping_config mc[N];
    esm_api_mapping maps[N];
    char uuids[N][8], arns[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(uuids[i], sizeof uuids[i], "u-%d", i);
        snprintf(arns[i], sizeof arns[i], "arn:aws:sqs:eu-west-1:1:q%d", i);
        mc[i] = (esm_mapping_config){.uuid = uuids[i],
                                     .function_name = i % 2 ? "other" : "fn",
                                     .function = i % 2 ? &other : &FN,
                                     .source = ESM_SRC_SQS,
                                     .event_source_arn = arns[i],
                                     .batch_size = 10};
        maps[i] = view(&mc[i]);
    }
    cJSON *j;
    const char *type;
    const char *page1[] = {"FunctionName", "fn", "MaxItems", "2", NULL};
    assert_int_equal(call("GET", ESM_API_MAPPINGS_PATH, page1, maps, N, &j, &type), 200);
    assert_int_equal(cJSON_GetArraySize(get(j, "EventSourceMappings")), 2); /* u-0, u-2 */
    char marker[16];
    snprintf(marker, sizeof marker, "%s", get(j, "NextMarker")->valuestring);
    cJSON_Delete(j);
    const char *page2[] = {"FunctionName", FN.arn, "MaxItems", "2", "Marker", marker, NULL};
    assert_int_equal(call("GET", ESM_API_MAPPINGS_PATH "/", page2, maps, N, &j, &type), 200);
    assert_int_equal(cJSON_GetArraySize(get(j, "EventSourceMappings")), 1); /* u-4 */
    assert_string_equal(
        get(cJSON_GetArrayItem(get(j, "EventSourceMappings"), 0), "UUID")->valuestring, "u-4");
    assert_null(get(j, "NextMarker")); /* nothing more matches */
    cJSON_Delete(j);
    /* a mapping removed before the marker between two pages (a reload) shifts nothing */
    assert_string_equal(marker, "u-4");
    assert_int_equal(call("GET", ESM_API_MAPPINGS_PATH, page2, maps + 1, N - 1, &j, &type), 200);
    assert_string_equal(
        get(cJSON_GetArrayItem(get(j, "EventSourceMappings"), 0), "UUID")->valuestring, "u-4");
    cJSON_Delete(j);
    const char *by_arn[] = {"EventSourceArn", arns[3], NULL};
    assert_int_equal(call("GET", ESM_API_MAPPINGS_PATH, by_arn, maps, N, &j, &type), 200);
    assert_int_equal(cJSON_GetArraySize(get(j, "EventSourceMappings")), 1);
    cJSON_Delete(j);
    assert_int_equal(call("GET", ESM_API_MAPPINGS_PATH "/u-3", NULL, maps, N, &j, &type), 200);
    assert_null(type);
    cJSON_Delete(j);

    const char *bad_max[] = {"MaxItems", "0", NULL};
    const char *bad_marker[] = {"Marker", "99", NULL};
    struct {
        const char *method, *path;
        const char *const *args;
        unsigned status;
        const char *type;
    } errors[] = {
        {"GET", ESM_API_MAPPINGS_PATH "/nope", NULL, 404, "ResourceNotFoundException"},
        {"GET", ESM_API_MAPPINGS_PATH, bad_max, 400, "InvalidParameterValueException"},
        {"GET", ESM_API_MAPPINGS_PATH, bad_marker, 400, "InvalidParameterValueException"},
        {"POST", ESM_API_MAPPINGS_PATH, NULL, 409, "ResourceConflictException"},
        {"PUT", ESM_API_MAPPINGS_PATH "/u-1", NULL, 409, "ResourceConflictException"},
        {"DELETE", ESM_API_MAPPINGS_PATH "/u-1", NULL, 409, "ResourceConflictException"},
    };
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        assert_int_equal(call(errors[i].method, errors[i].path, errors[i].args, maps, N, &j, &type),
                         errors[i].status);
        assert_string_equal(type, errors[i].type);
        assert_true(cJSON_IsString(get(j, "message")));
        cJSON_Delete(j);
    }
    assert_true(esm_api_is_mappings_path(ESM_API_MAPPINGS_PATH));
    assert_true(esm_api_is_mappings_path(ESM_API_MAPPINGS_PATH "/x"));
    assert_false(esm_api_is_mappings_path(ESM_API_MAPPINGS_PATH "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinesis_fields_with_aws_defaults),
        cmocka_unit_test(test_kafka_fields),
        cmocka_unit_test(test_list_filters_pages_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
