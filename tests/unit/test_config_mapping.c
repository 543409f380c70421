/* event_source_mappings entries: source types, AWS ranges and messages, per-source rules. */
#include "test_config_helpers.h"

#define M0 "event_source_mappings[0]"

/* Parses one mapping that must be valid; returns the config (caller destroys). */
static esm_config *valid1(const char *mapping)
{
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse_mappings(mapping, &p);
    assert_valid(cfg, &p);
    return cfg;
}

/* Parses mappings that must be invalid; fills p. */
static void invalid(const char *mappings, esm_config_problems *p)
{
    esm_config *cfg = tc_parse_mappings(mappings, p);
    if (cfg) {
        esm_config_destroy(cfg);
        fail_msg("config unexpectedly valid: %s", mappings);
    }
    assert_true(p->n > 0);
}

static void test_source_sqs_and_fifo(void **state)
{
    (void)state;
    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn':"
                             " 'arn:aws:sqs:eu-west-1:111122223333:orders.fifo'}");
    const esm_mapping_config *m = &cfg->mappings[0];
    assert_int_equal(m->source, ESM_SRC_SQS);
    assert_true(m->fifo);
    assert_string_equal(m->source_name, "orders.fifo");
    assert_string_equal(m->source_region, "eu-west-1");
    assert_string_equal(m->source_account, "111122223333");
    esm_config_destroy(cfg);
}

static void test_source_arn_errors(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn':"
            " 'arn:aws:kinesis:us-east-1:000000000000:stream/telemetry/consumer/c1:1700000000',"
            " 'StartingPosition': 'LATEST'},"
            "{'FunctionName': 'orders', 'EventSourceArn': 'arn:aws:kafka:us-east-1:1:cluster/c/u',"
            " 'StartingPosition': 'LATEST', 'Topics': ['t']},"
            "{'FunctionName': 'orders', 'EventSourceArn':"
            " 'arn:aws:dynamodb:us-east-1:1:table/t/stream/2024'},"
            "{'FunctionName': 'orders', 'EventSourceArn': 'orders-queue'},"
            "{'FunctionName': 'orders'},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "',"
            " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k:9092']}}},"
            "{'FunctionName': 'orders', 'EventSourceArn': 'arn:aws:kinesis:us-east-1:1:telemetry',"
            " 'StartingPosition': 'LATEST'}",
            &p);
    assert_problem_prefix(&p, "event_source_mappings[0].EventSourceArn",
                          "'arn:aws:kinesis:us-east-1:000000000000:stream/telemetry/consumer/"
                          "c1:1700000000' is a Kinesis enhanced fan-out consumer ARN; EFO is not "
                          "supported yet");
    assert_problem(&p, "event_source_mappings[1].EventSourceArn",
                   "MSK is not supported; use SelfManagedEventSource");
    assert_problem_prefix(&p, "event_source_mappings[2].EventSourceArn",
                          "'arn:aws:dynamodb:us-east-1:1:table/t/stream/2024': event source "
                          "service 'dynamodb' is not supported; supported:");
    assert_problem_prefix(&p, "event_source_mappings[3].EventSourceArn",
                          "'orders-queue' is not an event source ARN");
    assert_problem(&p, "event_source_mappings[4].EventSourceArn",
                   "is required (an SQS queue or Kinesis stream ARN), or use "
                   "SelfManagedEventSource for Kafka");
    assert_problem(&p, "event_source_mappings[5].EventSourceArn",
                   "EventSourceArn and SelfManagedEventSource cannot be used together");
    assert_problem_prefix(&p, "event_source_mappings[6].EventSourceArn",
                          "'arn:aws:kinesis:us-east-1:1:telemetry' is not a valid Kinesis stream");
    esm_config_problems_free(&p);
}

static void test_function_name_resolution(void **state)
{
    (void)state;
    esm_config *cfg =
        valid1("{'FunctionName': 'arn:aws:lambda:us-east-1:000000000000:function:orders:live',"
               " 'EventSourceArn': '" SQS_ARN "'}");
    assert_string_equal(cfg->mappings[0].function_name,
                        "arn:aws:lambda:us-east-1:000000000000:function:orders:live");
    assert_ptr_equal(cfg->mappings[0].function, &cfg->functions[0]);
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid("{'FunctionName': 'shipping', 'EventSourceArn': '" SQS_ARN "'},"
            "{'EventSourceArn': '" SQS_ARN "'}",
            &p);
    assert_problem(&p, "event_source_mappings[0].FunctionName",
                   "function 'shipping' is not defined under \"functions\" (defined: orders, "
                   "audit)");
    assert_problem(&p, "event_source_mappings[1].FunctionName",
                   "is required: the name of an entry in \"functions\" or its ARN");
    esm_config_problems_free(&p);
}

static void test_batch_size_ranges(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "', 'BatchSize': 20000,"
            " 'MaximumBatchingWindowInSeconds': 1},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN "', 'BatchSize': 0},"
            "{'FunctionName': 'orders', 'EventSourceArn':"
            " 'arn:aws:sqs:us-east-1:000000000000:o.fifo', 'BatchSize': 11}",
            &p);
    assert_problem(&p, "event_source_mappings[0].BatchSize",
                   "1 validation error detected: Value '20000' at 'batchSize' failed to satisfy "
                   "constraint: Member must have value less than or equal to 10000");
    assert_problem(&p, "event_source_mappings[1].BatchSize",
                   "1 validation error detected: Value '0' at 'batchSize' failed to satisfy "
                   "constraint: Member must have value greater than or equal to 1");
    assert_problem(&p, "event_source_mappings[2].BatchSize",
                   "BatchSize 11 is not allowed for a FIFO queue: must be between 1 and 10");
    esm_config_problems_free(&p);

    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                             "', 'BatchSize': 10000, 'MaximumBatchingWindowInSeconds': 300}");
    assert_int_equal(cfg->mappings[0].batch_size, 10000);
    assert_int_equal(cfg->mappings[0].batching_window_ms, 300000);
    esm_config_destroy(cfg);
}

static void test_batching_window_rules(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "', 'BatchSize': 11},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
            "', 'BatchSize': 50, 'MaximumBatchingWindowInSeconds': 0},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'MaximumBatchingWindowInSeconds': 301},"
            "{'FunctionName': 'orders', 'EventSourceArn':"
            " 'arn:aws:sqs:us-east-1:000000000000:o.fifo', 'MaximumBatchingWindowInSeconds': 5}",
            &p);
    const char *aws =
        "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater "
        "than 10";
    assert_problem(&p, "event_source_mappings[0].MaximumBatchingWindowInSeconds", aws);
    assert_problem(&p, "event_source_mappings[1].MaximumBatchingWindowInSeconds", aws);
    assert_problem(&p, "event_source_mappings[2].MaximumBatchingWindowInSeconds",
                   "1 validation error detected: Value '301' at 'maximumBatchingWindowInSeconds' "
                   "failed to satisfy constraint: Member must have value less than or equal to "
                   "300");
    assert_problem(&p, "event_source_mappings[3].MaximumBatchingWindowInSeconds",
                   "MaximumBatchingWindowInSeconds 5 is not allowed: FIFO queues do not support a "
                   "batching window (use 0 or leave it out)");
    assert_int_equal(p.n, 4);
    esm_config_problems_free(&p);

    /* Kinesis keeps AWS's own default: 100 records, no window. Kafka's default window is
     * 500 ms; an explicit 0 is kept. */
    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'LATEST', 'BatchSize': 500},"
                             "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition':"
                             " 'LATEST', 'MaximumBatchingWindowInSeconds': 0,"
                             " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS':"
                             " ['k:9092']}}}");
    assert_int_equal(cfg->mappings[0].batching_window_ms, 0);
    assert_int_equal(cfg->mappings[0].batch_size, 500);
    assert_int_equal(cfg->mappings[1].batching_window_ms, 0);
    esm_config_destroy(cfg);
}

static void test_starting_position(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'EARLIEST'},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" KINESIS_ARN "'},"
            "{'FunctionName': 'orders', 'Topics': ['t'],"
            " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k:9092']}}},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'StartingPosition': 'LATEST'}",
            &p);
    assert_problem(&p, "event_source_mappings[0].StartingPosition",
                   "1 validation error detected: Value 'EARLIEST' at 'startingPosition' failed to "
                   "satisfy constraint: Member must satisfy enum value set: [LATEST, "
                   "AT_TIMESTAMP, TRIM_HORIZON]");
    assert_problem(&p, "event_source_mappings[1].StartingPosition",
                   "is required for Kinesis sources; allowed: TRIM_HORIZON, LATEST, AT_TIMESTAMP");
    assert_problem(&p, "event_source_mappings[2].StartingPosition",
                   "is required for Kafka sources; allowed: TRIM_HORIZON, LATEST, AT_TIMESTAMP");
    assert_problem(&p, "event_source_mappings[3].StartingPosition",
                   "Unsupported StartingPosition parameter for given event source mapping type.");
    esm_config_problems_free(&p);
}

static void test_starting_position_timestamp(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'AT_TIMESTAMP'},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'AT_TIMESTAMP', 'StartingPositionTimestamp': 32503680000},"
            "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST',"
            " 'StartingPositionTimestamp': 1700000000, 'SelfManagedEventSource':"
            " {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k:9092']}}},"
            "{'FunctionName': 'audit', 'Topics': ['t'], 'StartingPosition': 'AT_TIMESTAMP',"
            " 'StartingPositionTimestamp': 'yesterday', 'SelfManagedEventSource':"
            " {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k:9092']}}}",
            &p);
    assert_problem(&p, "event_source_mappings[0].StartingPositionTimestamp",
                   "is required when StartingPosition is AT_TIMESTAMP");
    assert_problem(&p, "event_source_mappings[1].StartingPositionTimestamp",
                   "3000-01-01T00:00:00.000Z is in the future; it must not be later than now");
    assert_problem(&p, "event_source_mappings[2].StartingPositionTimestamp",
                   "is only allowed when StartingPosition is AT_TIMESTAMP");
    assert_problem_prefix(&p, "event_source_mappings[3].StartingPositionTimestamp",
                          "must be epoch seconds (a number) or an ISO 8601 time");
    esm_config_problems_free(&p);

    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'AT_TIMESTAMP', 'StartingPositionTimestamp':"
                             " 1700000000.25},"
                             "{'FunctionName': 'audit', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'AT_TIMESTAMP', 'StartingPositionTimestamp':"
                             " '2023-11-14T22:13:20.500+01:00'}");
    assert_int_equal(cfg->mappings[0].starting_position, ESM_START_AT_TIMESTAMP);
    assert_int_equal(cfg->mappings[0].starting_position_timestamp_ms, 1700000000250LL);
    assert_int_equal(cfg->mappings[1].starting_position_timestamp_ms, 1699996400500LL);
    esm_config_destroy(cfg);
}

static void test_retry_and_record_age(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'MaximumRetryAttempts': -2,"
            " 'MaximumRecordAgeInSeconds': 30},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'MaximumRetryAttempts': 10001,"
            " 'MaximumRecordAgeInSeconds': 604801},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'MaximumRecordAgeInSeconds': 3600}",
            &p);
    assert_problem(&p, "event_source_mappings[0].MaximumRetryAttempts",
                   "1 validation error detected: Value '-2' at 'maximumRetryAttempts' failed to "
                   "satisfy constraint: Member must have value greater than or equal to -1");
    assert_problem(&p, "event_source_mappings[0].MaximumRecordAgeInSeconds",
                   "MaximumRecordAgeInSeconds 30 is not allowed: must be -1 (infinite) or "
                   "between 60 and 604800");
    assert_problem(&p, "event_source_mappings[1].MaximumRetryAttempts",
                   "1 validation error detected: Value '10001' at 'maximumRetryAttempts' failed to "
                   "satisfy constraint: Member must have value less than or equal to 10000");
    assert_problem(&p, "event_source_mappings[1].MaximumRecordAgeInSeconds",
                   "1 validation error detected: Value '604801' at 'maximumRecordAgeInSeconds' "
                   "failed to satisfy constraint: Member must have value less than or equal to "
                   "604800");
    assert_problem(&p, "event_source_mappings[2].MaximumRecordAgeInSeconds",
                   "Unsupported MaximumRecordAgeInSeconds parameter for given event source "
                   "mapping type.");
    esm_config_problems_free(&p);

    /* SQS accepts MaximumRetryAttempts (esmd extension); 0, -1 and 60 are valid values. */
    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                             "', 'MaximumRetryAttempts': 4},"
                             "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'LATEST', 'MaximumRetryAttempts': 0,"
                             " 'MaximumRecordAgeInSeconds': 60},"
                             "{'FunctionName': 'audit', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'LATEST', 'MaximumRecordAgeInSeconds': -1}");
    assert_int_equal(cfg->mappings[0].maximum_retry_attempts, 4);
    assert_int_equal(cfg->mappings[1].maximum_retry_attempts, 0);
    assert_int_equal(cfg->mappings[1].maximum_record_age_seconds, 60);
    assert_int_equal(cfg->mappings[2].maximum_record_age_seconds, -1);
    esm_config_destroy(cfg);
}

static void test_stream_only_fields(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'ParallelizationFactor': 2, 'TumblingWindowInSeconds': 60,"
            " 'BisectBatchOnFunctionError': true},"
            "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST',"
            " 'ParallelizationFactor': 2, 'TumblingWindowInSeconds': 60,"
            " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k:9092']}}},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'ParallelizationFactor': 0,"
            " 'TumblingWindowInSeconds': 901}",
            &p);
    assert_problem(&p, "event_source_mappings[0].ParallelizationFactor",
                   "Unsupported ParallelizationFactor parameter for given event source mapping "
                   "type.");
    assert_problem(&p, "event_source_mappings[0].TumblingWindowInSeconds",
                   "Unsupported TumblingWindowInSeconds parameter for given event source mapping "
                   "type.");
    assert_problem(&p, "event_source_mappings[0].BisectBatchOnFunctionError",
                   "Unsupported BisectBatchOnFunctionError parameter for given event source "
                   "mapping type.");
    assert_problem(&p, "event_source_mappings[1].ParallelizationFactor",
                   "Unsupported ParallelizationFactor parameter for given event source mapping "
                   "type.");
    assert_problem(&p, "event_source_mappings[1].TumblingWindowInSeconds",
                   "Unsupported TumblingWindowInSeconds parameter for given event source mapping "
                   "type.");
    assert_problem(&p, "event_source_mappings[2].ParallelizationFactor",
                   "1 validation error detected: Value '0' at 'parallelizationFactor' failed to "
                   "satisfy constraint: Member must have value greater than or equal to 1");
    assert_problem(&p, "event_source_mappings[2].TumblingWindowInSeconds",
                   "1 validation error detected: Value '901' at 'tumblingWindowInSeconds' failed "
                   "to satisfy constraint: Member must have value less than or equal to 900");
    assert_int_equal(p.n, 7);
    esm_config_problems_free(&p);

    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'LATEST', 'ParallelizationFactor': 10,"
                             " 'TumblingWindowInSeconds': 0, 'BisectBatchOnFunctionError': true},"
                             "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition':"
                             " 'LATEST', 'BisectBatchOnFunctionError': true, "
                             "'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS':"
                             " ['k:9092']}}}");
    assert_int_equal(cfg->mappings[0].parallelization_factor, 10);
    assert_int_equal(cfg->mappings[0].tumbling_window_seconds, 0);
    assert_true(cfg->mappings[0].bisect_on_function_error);
    assert_true(cfg->mappings[1].bisect_on_function_error);
    esm_config_destroy(cfg);
}

static void test_tumbling_windows_are_refused_not_ignored(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'TumblingWindowInSeconds': 60}",
            &p);
    assert_problem(&p, "event_source_mappings[0].TumblingWindowInSeconds",
                   "tumbling windows are not supported by this version of esmd; remove "
                   "TumblingWindowInSeconds or set it to 0");
    assert_int_equal(p.n, 1);
    esm_config_problems_free(&p);
}

/* Found by fuzz_config: a function that is not an object, then a mapping's function lookup. */
static void test_function_with_a_bad_arn_is_reported_not_crashed_on(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{'functions': {'f': 'not an object'},"
                               " 'event_source_mappings': [{'FunctionName': 'other',"
                               " 'EventSourceArn': '" SQS_ARN "'}]}",
                               &p);
    assert_null(cfg);
    assert_true(p.n >= 2);
    esm_config_problems_free(&p);
}

static void test_scaling_config(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'ScalingConfig': {'MaximumConcurrency': 1}},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
            "', 'ScalingConfig': {'MaximumConcurrency': 1001}},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'ScalingConfig': {'MaximumConcurrency': 5}}",
            &p);
    assert_problem(&p, "event_source_mappings[0].ScalingConfig.MaximumConcurrency",
                   "1 validation error detected: Value '1' at 'scalingConfig.maximumConcurrency' "
                   "failed to satisfy constraint: Member must have value greater than or equal to "
                   "2");
    assert_problem(&p, "event_source_mappings[1].ScalingConfig.MaximumConcurrency",
                   "1 validation error detected: Value '1001' at "
                   "'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must "
                   "have value less than or equal to 1000");
    assert_problem(&p, "event_source_mappings[2].ScalingConfig",
                   "Unsupported ScalingConfig parameter for given event source mapping type.");
    esm_config_problems_free(&p);

    esm_config *cfg =
        valid1("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
               "', 'ScalingConfig': {'MaximumConcurrency': 5}},"
               "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN "', 'ScalingConfig': {}}");
    assert_int_equal(cfg->mappings[0].scaling_max_concurrency, 5);
    assert_int_equal(cfg->mappings[1].scaling_max_concurrency, 0);
    esm_config_destroy(cfg);
}

#define KAFKA_EP "'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k:9092']}}"

static void test_kafka_topics_and_servers(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid(
        "{'FunctionName': 'orders', 'Topics': ['a', 'b'], 'StartingPosition': 'LATEST', " KAFKA_EP
        "},"
        "{'FunctionName': 'orders', 'Topics': ['.hidden'], 'StartingPosition': 'LATEST', " KAFKA_EP
        "},"
        "{'FunctionName': 'orders', 'StartingPosition': 'LATEST', " KAFKA_EP "},"
        "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST',"
        " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['k', 'k:0',"
        " 'k:123456']}}},"
        "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST',"
        " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': []}}},"
        "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST',"
        " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS': ['a:1','a:2',"
        "'a:3','a:4','a:5','a:6','a:7','a:8','a:9','a:10','a:11']}}},"
        "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST',"
        " 'SelfManagedEventSource': {'Endpoints': {'SERVERS': ['k:1']}}},"
        "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "', 'Topics': ['t']}",
        &p);
    assert_problem(&p, "event_source_mappings[0].Topics",
                   "1 validation error detected: Value at 'topics' failed to satisfy constraint: "
                   "Member must have length less than or equal to 1 (got 2 topics)");
    assert_problem_prefix(&p, "event_source_mappings[1].Topics[0]",
                          "1 validation error detected: Value '[.hidden]' at 'topics'");
    assert_problem(&p, "event_source_mappings[2].Topics",
                   "is required for Kafka sources: a list of exactly 1 topic name");
    const char *hp = "is not allowed: must be host:port (port 1 to 65535, at most 300 characters)";
    assert_problem_has(&p,
                       "event_source_mappings[3].SelfManagedEventSource.Endpoints."
                       "KAFKA_BOOTSTRAP_SERVERS[0]",
                       hp);
    assert_problem_has(&p,
                       "event_source_mappings[3].SelfManagedEventSource.Endpoints."
                       "KAFKA_BOOTSTRAP_SERVERS[1]",
                       hp);
    assert_problem_has(&p,
                       "event_source_mappings[3].SelfManagedEventSource.Endpoints."
                       "KAFKA_BOOTSTRAP_SERVERS[2]",
                       hp);
    assert_problem(&p,
                   "event_source_mappings[4].SelfManagedEventSource.Endpoints."
                   "KAFKA_BOOTSTRAP_SERVERS",
                   "has 0 entries; allowed: 1 to 10 host:port entries");
    assert_problem(&p,
                   "event_source_mappings[5].SelfManagedEventSource.Endpoints."
                   "KAFKA_BOOTSTRAP_SERVERS",
                   "has 11 entries; allowed: 1 to 10 host:port entries");
    assert_problem(&p, "event_source_mappings[6].SelfManagedEventSource.Endpoints.SERVERS",
                   "unknown key; allowed: KAFKA_BOOTSTRAP_SERVERS");
    assert_problem(&p, "event_source_mappings[7].Topics",
                   "Unsupported Topics parameter for given event source mapping type.");
    esm_config_problems_free(&p);
}

static void test_kafka_group_and_access(void **state)
{
    (void)state;
    esm_config *cfg =
        valid1("{'FunctionName': 'orders', 'Topics': ['orders.v1'], 'StartingPosition': "
               "'LATEST', " KAFKA_EP
               ", 'SelfManagedKafkaEventSourceConfig': {'ConsumerGroupId': 'orders-esm'},"
               " 'SourceAccessConfigurations': [{'Type': 'BASIC_AUTH', 'URI': 'env:KAFKA_CREDS'}],"
               " 'EsmdOptions': {'KafkaProperties': {'security.protocol': 'SASL_SSL',"
               " 'fetch.wait.max.ms': '100'}}}");
    const esm_mapping_config *m = &cfg->mappings[0];
    assert_string_equal(m->consumer_group_id, "orders-esm");
    assert_int_equal(m->n_source_access, 1);
    assert_string_equal(m->source_access[0].type, "BASIC_AUTH");
    assert_string_equal(m->source_access[0].uri, "env:KAFKA_CREDS");
    assert_int_equal(m->n_kafka_properties, 2);
    assert_string_equal(m->kafka_properties[0].name, "security.protocol");
    assert_string_equal(m->kafka_properties[0].value, "SASL_SSL");
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST', " KAFKA_EP
            ", 'SelfManagedKafkaEventSourceConfig': {'ConsumerGroupId': 'bad group',"
            " 'SchemaRegistryConfig': {}},"
            " 'SourceAccessConfigurations': [{'Type': 'OAUTH', 'URI': 'x'}, {'URI': ''}],"
            " 'EsmdOptions': {'KafkaProperties': {'group.id': 'x', 'enable.auto.commit': 'true',"
            " 'bootstrap.servers': 'k:1'}}},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'SelfManagedKafkaEventSourceConfig': {'ConsumerGroupId': 'g'},"
            " 'SourceAccessConfigurations': [{'Type': 'BASIC_AUTH', 'URI': 'x'}]}",
            &p);
    const char *k = "event_source_mappings[0].";
    char path[256];
    snprintf(path, sizeof(path), "%sSelfManagedKafkaEventSourceConfig.ConsumerGroupId", k);
    assert_problem_prefix(&p, path, "1 validation error detected: Value 'bad group'");
    snprintf(path, sizeof(path), "%sSelfManagedKafkaEventSourceConfig.SchemaRegistryConfig", k);
    assert_problem(&p, path, "schema registries are not supported by esmd yet");
    snprintf(path, sizeof(path), "%sSourceAccessConfigurations[0].Type", k);
    assert_problem_prefix(&p, path, "'OAUTH' is not allowed; allowed: BASIC_AUTH");
    snprintf(path, sizeof(path), "%sSourceAccessConfigurations[1].Type", k);
    assert_problem(&p, path, "is required");
    snprintf(path, sizeof(path), "%sSourceAccessConfigurations[1].URI", k);
    assert_problem(&p, path, "must be 1 to 200 characters long (got 0)");
    snprintf(path, sizeof(path), "%sEsmdOptions.KafkaProperties.group.id", k);
    assert_problem(&p, path,
                   "'group.id' cannot be overridden: set "
                   "SelfManagedKafkaEventSourceConfig.ConsumerGroupId instead");
    snprintf(path, sizeof(path), "%sEsmdOptions.KafkaProperties.enable.auto.commit", k);
    assert_problem_prefix(&p, path, "'enable.auto.commit' cannot be overridden");
    snprintf(path, sizeof(path), "%sEsmdOptions.KafkaProperties.bootstrap.servers", k);
    assert_problem_prefix(&p, path, "'bootstrap.servers' cannot be overridden");
    assert_problem(&p, "event_source_mappings[1].SelfManagedKafkaEventSourceConfig",
                   "Unsupported SelfManagedKafkaEventSourceConfig parameter for given event "
                   "source mapping type.");
    assert_problem(&p, "event_source_mappings[1].SourceAccessConfigurations",
                   "Unsupported SourceAccessConfigurations parameter for given event source "
                   "mapping type.");
    esm_config_problems_free(&p);
}

#define PAT(x) "{'Pattern': '" x "'}"
#define OK_PAT PAT("{\\'body\\': {\\'kind\\': [\\'order\\']}}")

static void test_filter_criteria(void **state)
{
    (void)state;
    esm_config *cfg = valid1(
        "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
        "', 'FilterCriteria': {'Filters': [" OK_PAT
        ", " PAT("{\\'body\\': {\\'n\\': "
                 "[{\\'numeric\\': [\\'>\\', "
                 "5]}]}}") "]}},"
                           "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
                           "', 'FilterCriteria': {}},"
                           "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                           "', 'StartingPosition': 'LATEST', 'FilterCriteria': {'Filters': []}}");
    assert_int_equal(cfg->mappings[0].n_filters, 2);
    assert_string_equal(cfg->mappings[0].filter_patterns[0], "{\"body\": {\"kind\": [\"order\"]}}");
    assert_int_equal(cfg->mappings[1].n_filters, 0);
    assert_int_equal(cfg->mappings[2].n_filters, 0);
    esm_config_destroy(cfg);

    /* A pattern that is not a JSON object, a leaf that is not an array, an oversized one. */
    char big[5000];
    memset(big, 'x', sizeof(big));
    const char *head = "{\\'a\\': [\\'";
    memcpy(big, head, strlen(head));
    strcpy(big + 4200, "\\']}");
    char *mappings = NULL;
    assert_true(asprintf(&mappings,
                         "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                         "', 'FilterCriteria': {'Filters': [" PAT("[1]") ", " PAT(
                             "{\\'body\\': \\'x\\'}") ", " PAT("%s") ", {'Pattern': 5}, {}]}}",
                         big) > 0);
    esm_config_problems p = {0};
    invalid(mappings, &p);
    free(mappings);
    const char *inv = "Invalid filter pattern definition.";
    assert_problem_prefix(&p, M0 ".FilterCriteria.Filters[0].Pattern", inv);
    assert_problem_prefix(&p, M0 ".FilterCriteria.Filters[1].Pattern", inv);
    assert_problem(&p, M0 ".FilterCriteria.Filters[2].Pattern", inv);
    assert_problem(&p, M0 ".FilterCriteria.Filters[3].Pattern", "must be a string, got a number");
    assert_problem(&p, M0 ".FilterCriteria.Filters[4].Pattern",
                   "is required (a JSON object as a string)");
    esm_config_problems_free(&p);
}

static void test_filter_count_limit(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'FilterCriteria': {'Filters': [" OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT
            "," OK_PAT "]}},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
            "', 'EsmdOptions': {'MaxFilters': 10}, 'FilterCriteria': {'Filters': [" OK_PAT
            "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT
            "," OK_PAT "," OK_PAT "]}},"
            "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'EsmdOptions': {'MaxFilters': 11}}",
            &p);
    assert_problem(&p, M0 ".FilterCriteria.Filters", "Number of filters exceeds the limit");
    assert_problem(&p, "event_source_mappings[1].FilterCriteria.Filters",
                   "Number of filters exceeds the limit");
    assert_problem(&p, "event_source_mappings[2].EsmdOptions.MaxFilters",
                   "11 is not allowed: must be between 1 and 10");
    assert_int_equal(p.n, 3);
    esm_config_problems_free(&p);

    esm_config *cfg =
        valid1("{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
               "', 'EsmdOptions': {'MaxFilters': 10}, 'FilterCriteria': {'Filters': "
               "[" OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "," OK_PAT "]}}");
    assert_int_equal(cfg->mappings[0].n_filters, 6);
    assert_int_equal(cfg->mappings[0].max_filters, 10);
    esm_config_destroy(cfg);
}

static void test_function_response_types(void **state)
{
    (void)state;
    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                             "', 'FunctionResponseTypes': ['ReportBatchItemFailures']},"
                             "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
                             "', 'FunctionResponseTypes': []}");
    assert_true(cfg->mappings[0].report_batch_item_failures);
    assert_false(cfg->mappings[1].report_batch_item_failures);
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'FunctionResponseTypes': ['ReportItemFailures']}",
            &p);
    assert_problem(&p, M0 ".FunctionResponseTypes",
                   "1 validation error detected: Value '[ReportItemFailures]' at "
                   "'functionResponseTypes' failed to satisfy constraint: Member must satisfy "
                   "constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]");
    esm_config_problems_free(&p);
}

static void test_destination_on_success_rejected(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
            "', 'StartingPosition': 'LATEST', 'DestinationConfig': {'OnSuccess': {'Destination':"
            " 'arn:aws:sqs:us-east-1:000000000000:ok'}}}",
            &p);
    assert_problem(&p, M0 ".DestinationConfig.OnSuccess",
                   "Unsupported DestinationConfig parameter for given event source mapping type.");
    assert_int_equal(p.n, 1);
    esm_config_problems_free(&p);
}

#define KIN_DEST(d)                                                                                \
    "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN                                   \
    "', 'StartingPosition': 'LATEST', 'DestinationConfig': {'OnFailure': {'Destination': '" d      \
    "'}}}"

static void test_destination_forms(void **state)
{
    (void)state;
    const char *good[] = {"arn:aws:sqs:us-east-1:000000000000:failures",
                          "arn:aws:sns:us-east-1:000000000000:failures",
                          "kafka://broker-2:9092/failures",
                          "http://127.0.0.1:8080/failures",
                          "https://hooks.example.com/x?y=1",
                          "file:///var/lib/esmd/failures.jsonl"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *m = NULL;
        assert_true(asprintf(&m,
                             "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                             "', 'StartingPosition': 'LATEST', 'DestinationConfig': "
                             "{'OnFailure': {'Destination': '%s'}}}",
                             good[i]) > 0);
        esm_config *cfg = valid1(m);
        assert_string_equal(cfg->mappings[0].on_failure_destination, good[i]);
        esm_config_destroy(cfg);
        free(m);
    }
    esm_config *cfg = valid1(KIN_DEST(""));
    assert_null(cfg->mappings[0].on_failure_destination);
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid(KIN_DEST("arn:aws:sqs:us-east-1:000000000000:f.fifo") ", " KIN_DEST("kafka://failures") ", " KIN_DEST(
                "file://relative/path") ", " KIN_DEST("arn:aws:s3:::"
                                                      "bucket") ", " KIN_DEST("ftp://x/") ","
                                                                                          " " KIN_DEST(
                                                                                              "kafk"
                                                                                              "a://"
                                                                                              "h:"
                                                                                              "9999"
                                                                                              "9/"
                                                                                              "t"),
            &p);
    const char *d = ".DestinationConfig.OnFailure.Destination";
    char path[128];
    snprintf(path, sizeof(path), "event_source_mappings[0]%s", d);
    assert_problem(&p, path,
                   "'arn:aws:sqs:us-east-1:000000000000:f.fifo' is not allowed: FIFO queues and "
                   "topics are not supported as destinations");
    snprintf(path, sizeof(path), "event_source_mappings[1]%s", d);
    assert_problem(&p, path,
                   "'kafka://failures' is not allowed: kafka://TOPIC names a topic on the source "
                   "cluster, so it needs a Kafka source; use kafka://HOST:PORT/TOPIC");
    snprintf(path, sizeof(path), "event_source_mappings[2]%s", d);
    assert_problem(&p, path,
                   "'file://relative/path' is not allowed: must be file:///ABSOLUTE/PATH to a "
                   "file");
    snprintf(path, sizeof(path), "event_source_mappings[3]%s", d);
    assert_problem_prefix(
        &p, path, "'arn:aws:s3:::bucket' is not allowed: S3 destinations are not supported");
    snprintf(path, sizeof(path), "event_source_mappings[4]%s", d);
    assert_problem_prefix(&p, path, "not a supported destination; allowed: arn:aws:sqs:");
    snprintf(path, sizeof(path), "event_source_mappings[5]%s", d);
    assert_problem_prefix(&p, path, "'kafka://h:99999/t' is not allowed");
    esm_config_problems_free(&p);
}

static void test_destination_kafka_topic(void **state)
{
    (void)state;
    esm_config *cfg = valid1(
        "{'FunctionName': 'orders', 'Topics': ['orders'], 'StartingPosition': 'LATEST', " KAFKA_EP
        ", 'DestinationConfig': {'OnFailure': {'Destination': 'kafka://orders-dlq'}}}");
    assert_string_equal(cfg->mappings[0].on_failure_destination, "kafka://orders-dlq");
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid(
        "{'FunctionName': 'orders', 'Topics': ['orders'], 'StartingPosition': 'LATEST', " KAFKA_EP
        ", 'DestinationConfig': {'OnFailure': {'Destination': 'kafka://orders'}}}",
        &p);
    assert_problem(&p, M0 ".DestinationConfig.OnFailure.Destination",
                   "'kafka://orders' is not allowed: the destination topic must differ from the "
                   "source topic");
    esm_config_problems_free(&p);
}

static void test_sqs_destination_needs_retry_limit(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'DestinationConfig': {'OnFailure': {'Destination':"
            " 'arn:aws:sqs:us-east-1:000000000000:dlq'}}},"
            "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN
            "', 'MaximumRetryAttempts': -1, 'DestinationConfig': {'OnFailure': {'Destination':"
            " 'arn:aws:sqs:us-east-1:000000000000:dlq'}}}",
            &p);
    const char *msg = "an OnFailure destination on an SQS mapping needs MaximumRetryAttempts "
                      "(0..10000; esmd extension counting ApproximateReceiveCount). On AWS, use "
                      "the queue's redrive policy instead";
    assert_problem(&p, M0 ".DestinationConfig.OnFailure.Destination", msg);
    assert_problem(&p, "event_source_mappings[1].DestinationConfig.OnFailure.Destination", msg);
    esm_config_problems_free(&p);

    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                             "', 'MaximumRetryAttempts': 3, 'DestinationConfig': {'OnFailure': "
                             "{'Destination': 'arn:aws:sqs:us-east-1:000000000000:dlq'}}}");
    assert_int_equal(cfg->mappings[0].maximum_retry_attempts, 3);
    assert_string_equal(cfg->mappings[0].on_failure_destination,
                        "arn:aws:sqs:us-east-1:000000000000:dlq");
    esm_config_destroy(cfg);
}

static void test_kafka_retry_cap_with_destination(void **state)
{
    (void)state;
    esm_config *cfg = valid1(
        "{'FunctionName': 'orders', 'Topics': ['a'], 'StartingPosition': 'LATEST', " KAFKA_EP
        ", 'DestinationConfig': {'OnFailure': {'Destination': 'kafka://a-dlq'}}},"
        "{'FunctionName': 'audit', 'Topics': ['a'], 'StartingPosition': 'LATEST', " KAFKA_EP
        ", 'MaximumRetryAttempts': 5, 'DestinationConfig': {'OnFailure': {'Destination':"
        " 'kafka://a-dlq'}}},"
        "{'FunctionName': 'orders', 'Topics': ['b'], 'StartingPosition': 'LATEST', " KAFKA_EP "},"
        "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
        "', 'StartingPosition': 'LATEST', 'DestinationConfig': {'OnFailure': {'Destination':"
        " 'arn:aws:sqs:us-east-1:000000000000:dlq'}}}");
    assert_int_equal(cfg->mappings[0].maximum_retry_attempts, 10);
    assert_true(cfg->mappings[0].retry_attempts_capped);
    assert_int_equal(cfg->mappings[1].maximum_retry_attempts, 5);
    assert_false(cfg->mappings[1].retry_attempts_capped);
    assert_int_equal(cfg->mappings[2].maximum_retry_attempts, -1);
    assert_false(cfg->mappings[2].retry_attempts_capped);
    /* Kinesis keeps -1 with a destination (records then expire at the source). */
    assert_int_equal(cfg->mappings[3].maximum_retry_attempts, -1);
    esm_config_log_notes(cfg);
    esm_config_destroy(cfg);
}

static void test_duplicate_pairs(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *ok =
        tc_parse_mappings("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "'},"
                          "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN "'}",
                          &p);
    assert_valid(ok, &p);
    char first_uuid[37];
    strcpy(first_uuid, ok->mappings[0].uuid);
    esm_config_destroy(ok);

    invalid(
        "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "'},"
        "{'FunctionName': 'arn:aws:lambda:us-east-1:000000000000:function:orders',"
        " 'EventSourceArn': '" SQS_ARN "'},"
        "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'LATEST', " KAFKA_EP "},"
        "{'FunctionName': 'orders', 'Topics': ['t'], 'StartingPosition': 'TRIM_HORIZON', " KAFKA_EP
        "},"
        "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
        "', 'StartingPosition': 'LATEST'},"
        "{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
        "', 'StartingPosition': 'LATEST'}",
        &p);
    char msg[512];
    snprintf(msg, sizeof(msg),
             "An event source mapping with SQS arn (" SQS_ARN
             ") and function (orders) already exists (UUID %s)",
             first_uuid);
    assert_problem(&p, "event_source_mappings[1]", msg);
    assert_problem_prefix(&p, "event_source_mappings[3]",
                          "An event source mapping with Kafka topic (t) on bootstrap servers "
                          "(k:9092) and function (orders) already exists");
    assert_problem_prefix(&p, "event_source_mappings[5]",
                          "An event source mapping with Kinesis arn (" KINESIS_ARN
                          ") and function (orders) already exists");
    assert_int_equal(p.n, 3);
    esm_config_problems_free(&p);
}

static void test_uuid_given_derived_and_unique(void **state)
{
    (void)state;
    esm_config *cfg = valid1("{'UUID': '9c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f', 'FunctionName':"
                             " 'orders', 'EventSourceArn': '" SQS_ARN "'},"
                             "{'FunctionName': 'audit', 'EventSourceArn': '" SQS_ARN "'}");
    assert_string_equal(cfg->mappings[0].uuid, "9c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f");
    assert_string_not_equal(cfg->mappings[1].uuid, cfg->mappings[0].uuid);
    /* Derived ids are v4-shaped so AWS tooling accepts them. */
    assert_int_equal(cfg->mappings[1].uuid[14], '4');
    assert_non_null(strchr("89ab", cfg->mappings[1].uuid[19]));
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid("{'UUID': 'not-a-uuid', 'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "'},"
            "{'UUID': '9c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f', 'FunctionName': 'orders',"
            " 'EventSourceArn': '" KINESIS_ARN "', 'StartingPosition': 'LATEST'},"
            "{'UUID': '9C1D2E3F-4A5B-6C7D-8E9F-0A1B2C3D4E5F', 'FunctionName': 'audit',"
            " 'EventSourceArn': '" KINESIS_ARN "', 'StartingPosition': 'LATEST'}",
            &p);
    assert_problem_prefix(&p, M0 ".UUID", "'not-a-uuid' is not allowed: must be a UUID");
    assert_problem(&p, "event_source_mappings[2].UUID",
                   "UUID 9C1D2E3F-4A5B-6C7D-8E9F-0A1B2C3D4E5F is already used by "
                   "event_source_mappings[1]");
    esm_config_problems_free(&p);
}

static void test_consumer_group_unique(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'Topics': ['a'], 'StartingPosition': 'LATEST', " KAFKA_EP
            ", 'SelfManagedKafkaEventSourceConfig': {'ConsumerGroupId': 'g1'}},"
            "{'FunctionName': 'orders', 'Topics': ['b'], 'StartingPosition': 'LATEST', " KAFKA_EP
            ", 'SelfManagedKafkaEventSourceConfig': {'ConsumerGroupId': 'g1'}}",
            &p);
    assert_problem_prefix(&p,
                          "event_source_mappings[1].SelfManagedKafkaEventSourceConfig."
                          "ConsumerGroupId",
                          "ConsumerGroupId 'g1' is already used by event_source_mappings[0]");
    esm_config_problems_free(&p);
}

static void test_esmd_options(void **state)
{
    (void)state;
    esm_config *cfg = valid1("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                             "', 'Enabled': false, 'EsmdOptions': {'IncludeRecordsInFailureRecord':"
                             " true, 'RetryBackoff': {'BaseSeconds': 2, 'MaxSeconds': 120},"
                             " 'StuckLaneSeconds': 0, 'MaxFilters': 7}}");
    const esm_mapping_config *m = &cfg->mappings[0];
    assert_false(m->enabled);
    assert_true(m->include_records_in_failure_record);
    assert_int_equal(m->retry_backoff_base_ms, 2000);
    assert_int_equal(m->retry_backoff_max_ms, 120000);
    assert_int_equal(m->stuck_lane_seconds, 0);
    assert_int_equal(m->max_filters, 7);
    esm_config_destroy(cfg);

    esm_config_problems p = {0};
    invalid("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
            "', 'EsmdOptions': {'RetryBackoff': {'BaseSeconds': 90, 'MaxSeconds': 30},"
            " 'StuckLaneSeconds': -5, 'IncludeRecordsInFailureRecord': 1}}",
            &p);
    assert_problem(&p, M0 ".EsmdOptions.RetryBackoff",
                   "BaseSeconds (90) must not be greater than MaxSeconds (30)");
    assert_problem(&p, M0 ".EsmdOptions.StuckLaneSeconds",
                   "-5 is not allowed: must be between 0 and 86400");
    assert_problem(&p, M0 ".EsmdOptions.IncludeRecordsInFailureRecord",
                   "must be true or false, got a number");
    esm_config_problems_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_sqs_and_fifo),
        cmocka_unit_test(test_source_arn_errors),
        cmocka_unit_test(test_function_name_resolution),
        cmocka_unit_test(test_batch_size_ranges),
        cmocka_unit_test(test_batching_window_rules),
        cmocka_unit_test(test_starting_position),
        cmocka_unit_test(test_starting_position_timestamp),
        cmocka_unit_test(test_retry_and_record_age),
        cmocka_unit_test(test_stream_only_fields),
        cmocka_unit_test(test_tumbling_windows_are_refused_not_ignored),
        cmocka_unit_test(test_function_with_a_bad_arn_is_reported_not_crashed_on),
        cmocka_unit_test(test_scaling_config),
        cmocka_unit_test(test_kafka_topics_and_servers),
        cmocka_unit_test(test_kafka_group_and_access),
        cmocka_unit_test(test_filter_criteria),
        cmocka_unit_test(test_filter_count_limit),
        cmocka_unit_test(test_function_response_types),
        cmocka_unit_test(test_destination_on_success_rejected),
        cmocka_unit_test(test_destination_forms),
        cmocka_unit_test(test_destination_kafka_topic),
        cmocka_unit_test(test_sqs_destination_needs_retry_limit),
        cmocka_unit_test(test_kafka_retry_cap_with_destination),
        cmocka_unit_test(test_duplicate_pairs),
        cmocka_unit_test(test_uuid_given_derived_and_unique),
        cmocka_unit_test(test_consumer_group_unique),
        cmocka_unit_test(test_esmd_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
