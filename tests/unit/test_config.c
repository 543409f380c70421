/* Config loading: top-level keys, defaults, functions, env expansion, JSON errors, fixtures. */
#include "test_config_helpers.h"

static void clear_aws_env(void)
{
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

static void is_uuid_shaped(const char *s)
{
    assert_non_null(s);
    assert_int_equal(strlen(s), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", s[i]));
    }
}

static void test_valid_sqs_minimal_defaults(void **state)
{
    (void)state;
    clear_aws_env();
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{'functions': {'orders': {'url': 'http://127.0.0.1:9000/'}},"
                               " 'event_source_mappings': [{'FunctionName': 'orders',"
                               " 'EventSourceArn': '" SQS_ARN "'}]}",
                               &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->state_dir, "/var/lib/esmd");
    assert_string_equal(cfg->admin_listen, "127.0.0.1:9400");
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->region, "us-east-1");
    assert_null(cfg->endpoint_sqs);
    assert_null(cfg->endpoint_kinesis);
    assert_null(cfg->endpoint_sns);
    assert_null(cfg->access_key_id);
    assert_null(cfg->secret_access_key);
    assert_null(cfg->session_token);
    assert_int_equal(cfg->shutdown_grace_seconds, 30);

    assert_int_equal(cfg->n_functions, 1);
    const esm_function_config *f = &cfg->functions[0];
    assert_string_equal(f->name, "orders");
    assert_string_equal(f->url, "http://127.0.0.1:9000/");
    assert_int_equal(f->protocol, ESM_PROTO_LAMBDA);
    assert_int_equal(f->timeout_seconds, 30);
    assert_int_equal(f->max_concurrency, 10);
    assert_int_equal(f->n_headers, 0);
    assert_string_equal(f->arn, "arn:aws:lambda:us-east-1:000000000000:function:orders");

    assert_int_equal(cfg->n_mappings, 1);
    const esm_mapping_config *m = &cfg->mappings[0];
    is_uuid_shaped(m->uuid);
    assert_string_equal(m->function_name, "orders");
    assert_ptr_equal(m->function, f);
    assert_int_equal(m->source, ESM_SRC_SQS);
    assert_string_equal(m->event_source_arn, SQS_ARN);
    assert_string_equal(m->source_region, "us-east-1");
    assert_string_equal(m->source_account, "000000000000");
    assert_string_equal(m->source_name, "orders");
    assert_false(m->fifo);
    assert_true(m->enabled);
    assert_int_equal(m->batch_size, 10);
    assert_int_equal(m->batching_window_ms, 0);
    assert_int_equal(m->starting_position, ESM_START_NONE);
    assert_int_equal(m->starting_position_timestamp_ms, 0);
    assert_int_equal(m->n_filters, 0);
    assert_false(m->report_batch_item_failures);
    assert_false(m->bisect_on_function_error);
    assert_int_equal(m->maximum_retry_attempts, -1);
    assert_int_equal(m->maximum_record_age_seconds, -1);
    assert_int_equal(m->parallelization_factor, 1);
    assert_int_equal(m->tumbling_window_seconds, 0);
    assert_null(m->on_failure_destination);
    assert_int_equal(m->scaling_max_concurrency, 0);
    assert_null(m->topic);
    assert_int_equal(m->n_bootstrap_servers, 0);
    assert_null(m->consumer_group_id);
    assert_int_equal(m->n_source_access, 0);
    assert_false(m->include_records_in_failure_record);
    assert_int_equal(m->retry_backoff_base_ms, 1000);
    assert_int_equal(m->retry_backoff_max_ms, 60000);
    assert_int_equal(m->stuck_lane_seconds, 300);
    assert_int_equal(m->n_kafka_properties, 0);
    assert_int_equal(m->max_filters, 5);
    assert_false(m->retry_attempts_capped);
    esm_config_destroy(cfg);
}

static void test_valid_kinesis_minimal_defaults(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse_mappings("{'FunctionName': 'orders', 'EventSourceArn': '" KINESIS_ARN
                                        "', 'StartingPosition': 'LATEST'}",
                                        &p);
    assert_valid(cfg, &p);
    const esm_mapping_config *m = &cfg->mappings[0];
    assert_int_equal(m->source, ESM_SRC_KINESIS);
    assert_string_equal(m->source_name, "telemetry");
    assert_string_equal(m->source_region, "us-east-1");
    assert_string_equal(m->source_account, "000000000000");
    assert_int_equal(m->batch_size, 100);
    assert_int_equal(m->batching_window_ms, 0);
    assert_int_equal(m->starting_position, ESM_START_LATEST);
    assert_int_equal(m->maximum_retry_attempts, -1);
    assert_int_equal(m->maximum_record_age_seconds, -1);
    assert_int_equal(m->parallelization_factor, 1);
    assert_int_equal(m->tumbling_window_seconds, 0);
    assert_false(m->bisect_on_function_error);
    assert_null(m->on_failure_destination);
    assert_null(m->consumer_group_id);
    assert_null(m->topic);
    esm_config_destroy(cfg);
}

static void test_valid_kafka_minimal_defaults(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse_mappings(
        "{'FunctionName': 'orders', 'Topics': ['orders'], 'StartingPosition': 'TRIM_HORIZON',"
        " 'SelfManagedEventSource': {'Endpoints': {'KAFKA_BOOTSTRAP_SERVERS':"
        " ['127.0.0.1:9092', 'kafka-2:19092']}}}",
        &p);
    assert_valid(cfg, &p);
    const esm_mapping_config *m = &cfg->mappings[0];
    assert_int_equal(m->source, ESM_SRC_KAFKA);
    assert_null(m->event_source_arn);
    assert_null(m->source_region);
    assert_null(m->source_account);
    assert_string_equal(m->source_name, "orders");
    assert_string_equal(m->topic, "orders");
    assert_int_equal(m->n_bootstrap_servers, 2);
    assert_string_equal(m->bootstrap_servers[0], "127.0.0.1:9092");
    assert_string_equal(m->bootstrap_servers[1], "kafka-2:19092");
    assert_int_equal(m->batch_size, 100);
    assert_int_equal(m->batching_window_ms, 500);
    assert_int_equal(m->starting_position, ESM_START_TRIM_HORIZON);
    assert_int_equal(m->maximum_retry_attempts, -1);
    assert_int_equal(m->maximum_record_age_seconds, -1);
    char group[64];
    snprintf(group, sizeof(group), "esmd-%s", m->uuid);
    assert_string_equal(m->consumer_group_id, group);
    assert_int_equal(m->n_source_access, 0);
    esm_config_destroy(cfg);
}

static void test_top_level_keys_all_set(void **state)
{
    (void)state;
    clear_aws_env();
    esm_config_problems p = {0};
    esm_config *cfg =
        tc_parse("{'state_dir': '/srv/esmd', 'admin_listen': '0.0.0.0:9500', 'log_level': 'debug',"
                 " 'shutdown_grace_seconds': 5,"
                 " 'aws': {'region': 'eu-west-1', 'endpoints': {'sqs': 'http://127.0.0.1:9324',"
                 "  'kinesis': 'https://kinesis.local:4567', 'sns': 'http://127.0.0.1:9911'}},"
                 " 'functions': {}, 'event_source_mappings': []}",
                 &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->state_dir, "/srv/esmd");
    assert_string_equal(cfg->admin_listen, "0.0.0.0:9500");
    assert_string_equal(cfg->log_level, "debug");
    assert_int_equal(cfg->shutdown_grace_seconds, 5);
    assert_string_equal(cfg->region, "eu-west-1");
    assert_string_equal(cfg->endpoint_sqs, "http://127.0.0.1:9324");
    assert_string_equal(cfg->endpoint_kinesis, "https://kinesis.local:4567");
    assert_string_equal(cfg->endpoint_sns, "http://127.0.0.1:9911");
    assert_int_equal(cfg->n_functions, 0);
    assert_int_equal(cfg->n_mappings, 0);
    esm_config_destroy(cfg);
}

static void test_region_and_credentials_from_env(void **state)
{
    (void)state;
    clear_aws_env();
    setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{}", &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->region, "ap-south-1");
    esm_config_destroy(cfg);

    setenv("AWS_REGION", "eu-central-1", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t", 1);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    cfg = tc_parse("{'functions': {'f': {'url': 'http://x/'}}}", &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->region, "eu-central-1");
    assert_string_equal(cfg->access_key_id, "AKIDEXAMPLE");
    assert_string_equal(cfg->secret_access_key, "s3cr3t");
    assert_string_equal(cfg->session_token, "tok");
    /* The default function ARN uses the effective region. */
    assert_string_equal(cfg->functions[0].arn,
                        "arn:aws:lambda:eu-central-1:000000000000:function:f");
    esm_config_destroy(cfg);

    /* aws.region wins over the environment. */
    cfg = tc_parse("{'aws': {'region': 'us-west-2'}}", &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->region, "us-west-2");
    esm_config_destroy(cfg);
    clear_aws_env();
}

static void test_unknown_keys_everywhere(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg =
        tc_parse("{'bogus': 1, 'aws': {'zone': 'x', 'endpoints': {'s3': 'http://x'}},"
                 " 'functions': {'orders': {'url': 'http://x/', 'retries': 3}},"
                 " 'event_source_mappings': [{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                 "', 'batchSize': 5, 'EsmdOptions': {'Foo': true}}]}",
                 &p);
    assert_null(cfg);
    assert_problem(&p, "bogus",
                   "unknown key; allowed: state_dir, admin_listen, admin_token, "
                   "admin_token_file, log_level, aws, shutdown_grace_seconds, functions, "
                   "event_source_mappings");
    assert_problem(&p, "aws.zone", "unknown key; allowed: region, endpoints");
    assert_problem(&p, "aws.endpoints.s3", "unknown key; allowed: sqs, kinesis, sns");
    assert_problem(&p, "functions.orders.retries",
                   "unknown key; allowed: url, protocol, timeout_seconds, max_concurrency, "
                   "headers, arn");
    assert_problem_prefix(&p, "event_source_mappings[0].batchSize",
                          "unknown key; allowed: FunctionName, EventSourceArn, Enabled, BatchSize");
    assert_problem_prefix(&p, "event_source_mappings[0].EsmdOptions.Foo",
                          "unknown key; allowed: IncludeRecordsInFailureRecord, RetryBackoff");
    assert_int_equal(p.n, 6);
    esm_config_problems_free(&p);
}

static void test_wrong_types(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse(
        "{'state_dir': 7, 'aws': [], 'shutdown_grace_seconds': 1.5,"
        " 'functions': {'orders': {'url': 'http://x/', 'timeout_seconds': '30', 'headers': []}},"
        " 'event_source_mappings': [{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
        "', 'BatchSize': '10', 'Enabled': 'true', 'FunctionResponseTypes': "
        "'ReportBatchItemFailures'}]}",
        &p);
    assert_null(cfg);
    assert_problem(&p, "state_dir", "must be a string, got a number");
    assert_problem(&p, "aws", "must be an object, got an array");
    assert_problem(&p, "shutdown_grace_seconds", "must be an integer, got 1.5");
    assert_problem(&p, "functions.orders.timeout_seconds", "must be an integer, got a string");
    assert_problem(&p, "functions.orders.headers", "must be an object, got an array");
    assert_problem(&p, "event_source_mappings[0].BatchSize", "must be an integer, got a string");
    assert_problem(&p, "event_source_mappings[0].Enabled", "must be true or false, got a string");
    assert_problem(&p, "event_source_mappings[0].FunctionResponseTypes",
                   "must be an array, got a string");
    esm_config_problems_free(&p);

    cfg = tc_parse("[1, 2]", &p);
    assert_null(cfg);
    assert_problem(&p, "", "must be an object, got an array");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'functions': [], 'event_source_mappings': {}}", &p);
    assert_null(cfg);
    assert_problem(&p, "functions", "must be an object, got an array");
    assert_problem(&p, "event_source_mappings", "must be an array, got an object");
    esm_config_problems_free(&p);
}

static void test_invalid_json_line_and_column(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    const char *text = "{\n  \"state_dir\": \"/x\",\n  \"log_level\" \"info\"\n}\n";
    esm_config *cfg = esm_config_parse(text, strlen(text), &p);
    assert_null(cfg);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.items[0].path, "");
    assert_string_equal(p.items[0].message, "invalid JSON at line 3, column 15");
    esm_config_problems_free(&p);

    text = "{}\n  {}";
    cfg = esm_config_parse(text, strlen(text), &p);
    assert_null(cfg);
    assert_problem(&p, "",
                   "invalid JSON: unexpected content after the document at line 2, column 3");
    esm_config_problems_free(&p);

    cfg = esm_config_parse("", 0, &p);
    assert_null(cfg);
    assert_problem_prefix(&p, "", "invalid JSON at line 1");
    esm_config_problems_free(&p);
}

static void test_duplicate_json_key(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{'log_level': 'info', 'log_level': 'debug'}", &p);
    assert_null(cfg);
    assert_problem(&p, "log_level", "duplicate key");
    esm_config_problems_free(&p);
}

static void test_env_expansion(void **state)
{
    (void)state;
    setenv("ESMD_T_TOKEN", "Bearer abc123", 1);
    setenv("ESMD_T_HOST", "127.0.0.1:9000", 1);
    unsetenv("ESMD_T_UNSET");
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse(
        "{'state_dir': '/srv/$${literal}/x', 'functions': {'orders': {"
        " 'url': 'http://${ESMD_T_HOST}/invoke', 'headers': {'Authorization': '${ESMD_T_TOKEN}',"
        " 'X-Cost': '$5 and $$ stay'}}}}",
        &p);
    assert_valid(cfg, &p);
    assert_string_equal(cfg->state_dir, "/srv/${literal}/x");
    assert_string_equal(cfg->functions[0].url, "http://127.0.0.1:9000/invoke");
    assert_int_equal(cfg->functions[0].n_headers, 2);
    assert_string_equal(cfg->functions[0].headers[0].name, "Authorization");
    assert_string_equal(cfg->functions[0].headers[0].value, "Bearer abc123");
    assert_string_equal(cfg->functions[0].headers[1].value, "$5 and $$ stay");
    esm_config_destroy(cfg);

    cfg = tc_parse("{'functions': {'orders': {'url': 'http://x/',"
                   " 'headers': {'Authorization': 'Bearer ${ESMD_T_UNSET}'}}},"
                   " 'state_dir': '/x/${ESMD_T_UNSET'}",
                   &p);
    assert_null(cfg);
    assert_problem(&p, "functions.orders.headers.Authorization",
                   "environment variable ESMD_T_UNSET is not set");
    assert_problem(&p, "state_dir", "unterminated ${ (write $${ for a literal ${)");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'state_dir': '/x/${1BAD}'}", &p);
    assert_null(cfg);
    assert_problem(&p, "state_dir", "invalid environment variable name '1BAD' in ${...}");
    esm_config_problems_free(&p);
}

static void test_secrets_never_in_messages(void **state)
{
    (void)state;
    setenv("ESMD_T_SECRET", "hunter2\r\nX-Evil: 1", 1);
    setenv("ESMD_T_PASS", "sup3rs3cret", 1);
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse(
        "{'functions': {'orders': {'url': 'http://x/', 'headers': {'Authorization':"
        " '${ESMD_T_SECRET}'}}},"
        " 'event_source_mappings': [{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
        "', 'MaximumRetryAttempts': 1, 'DestinationConfig': {'OnFailure': {'Destination':"
        " 'htps://user:${ESMD_T_PASS}@hooks.example/x'}}, 'EsmdOptions': {'KafkaProperties':"
        " {'sasl.password': '${ESMD_T_PASS}'}}}]}",
        &p);
    assert_null(cfg);
    assert_problem(&p, "functions.orders.headers.Authorization",
                   "header value must not contain CR or LF");
    assert_problem_prefix(&p, "event_source_mappings[0].DestinationConfig.OnFailure.Destination",
                          "not a supported destination");
    assert_problem(&p, "event_source_mappings[0].EsmdOptions.KafkaProperties",
                   "KafkaProperties apply to Kafka sources only");
    assert_false(tc_any_contains(&p, "hunter2"));
    assert_false(tc_any_contains(&p, "sup3rs3cret"));
    esm_config_problems_free(&p);
}

static void test_multiple_problems_reported_at_once(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse_mappings(
        "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "', 'BatchSize': 20000},"
        "{'FunctionName': 'nope', 'EventSourceArn': '" KINESIS_ARN
        "', 'StartingPosition': 'NEWEST', 'ParallelizationFactor': 11},"
        "{'FunctionName': 'audit', 'EventSourceArn': 'arn:aws:kafka:us-east-1:1:cluster/x/y'}",
        &p);
    assert_null(cfg);
    assert_problem(&p, "event_source_mappings[0].BatchSize",
                   "1 validation error detected: Value '20000' at 'batchSize' failed to satisfy "
                   "constraint: Member must have value less than or equal to 10000");
    assert_problem_prefix(&p, "event_source_mappings[1].FunctionName",
                          "function 'nope' is not defined");
    assert_problem_prefix(&p, "event_source_mappings[1].StartingPosition",
                          "1 validation error detected: Value 'NEWEST'");
    assert_problem_prefix(&p, "event_source_mappings[1].ParallelizationFactor",
                          "1 validation error detected: Value '11' at 'parallelizationFactor'");
    assert_problem(&p, "event_source_mappings[2].EventSourceArn",
                   "MSK is not supported; use SelfManagedEventSource");
    assert_true(p.n >= 5);
    /* Problems accumulate into a caller's list; a NULL list is fine too. */
    assert_null(tc_parse("{'log_level': 1}", NULL));
    esm_config_problems_free(&p);
}

static void test_global_value_checks(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse("{'log_level': 'loud', 'admin_listen': 'localhost',"
                               " 'shutdown_grace_seconds': -1, 'state_dir': '',"
                               " 'aws': {'region': '', 'endpoints': {'sqs': 'tcp://x:1'}}}",
                               &p);
    assert_null(cfg);
    assert_problem(&p, "log_level",
                   "'loud' is not allowed; allowed: trace, debug, info, warn, error");
    assert_problem(&p, "admin_listen",
                   "'localhost' is not allowed: must be host:port (port 1..65535)");
    assert_problem(&p, "shutdown_grace_seconds", "-1 is not allowed: must be between 0 and 3600");
    assert_problem(&p, "state_dir", "must not be empty");
    assert_problem(&p, "aws.region", "must not be empty");
    assert_problem(&p, "aws.endpoints.sqs",
                   "'tcp://x:1' is not allowed: must be an http:// or https:// URL");
    assert_int_equal(p.n, 6);
    esm_config_problems_free(&p);

    cfg = tc_parse("{'admin_listen': '[::1]:9400'}", &p);
    assert_valid(cfg, &p);
    esm_config_destroy(cfg);
}

static void test_function_rules(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse(
        "{'functions': {'a': {}, 'b': {'url': 'ftp://x/'}, 'c': {'url': 'http://x/',"
        " 'protocol': 'grpc', 'timeout_seconds': 0, 'max_concurrency': 1001},"
        " 'd': {'url': 'http://x/', 'timeout_seconds': 901, 'max_concurrency': 0,"
        " 'arn': 'orders'}, 'bad name': {'url': 'http://x/', 'headers': {'Bad Header': 'v'}}}}",
        &p);
    assert_null(cfg);
    assert_problem(&p, "functions.a.url",
                   "is required (the http:// or https:// URL that invokes the function)");
    assert_problem(&p, "functions.b.url",
                   "'ftp://x/' is not allowed: must be an http:// or https:// URL");
    assert_problem(&p, "functions.c.protocol", "'grpc' is not allowed; allowed: lambda, http");
    assert_problem(&p, "functions.c.timeout_seconds",
                   "0 is not allowed: must be between 1 and 900");
    assert_problem(&p, "functions.c.max_concurrency",
                   "1001 is not allowed: must be between 1 and 1000");
    assert_problem(&p, "functions.d.timeout_seconds",
                   "901 is not allowed: must be between 1 and 900");
    assert_problem(&p, "functions.d.max_concurrency",
                   "0 is not allowed: must be between 1 and 1000");
    assert_problem_prefix(&p, "functions.d.arn", "'orders' is not allowed: must be a function ARN");
    assert_problem_prefix(&p, "functions.bad name", "function name 'bad name' is not allowed");
    assert_problem(&p, "functions.bad name.headers.Bad Header",
                   "'Bad Header' is not a valid HTTP header name");
    esm_config_problems_free(&p);

    cfg = tc_parse("{'functions': {'orders': {'url': 'https://x/', 'protocol': 'http',"
                   " 'timeout_seconds': 900, 'max_concurrency': 1000,"
                   " 'arn': 'arn:aws:lambda:eu-west-1:111122223333:function:orders-prod'}}}",
                   &p);
    assert_valid(cfg, &p);
    assert_int_equal(cfg->functions[0].protocol, ESM_PROTO_HTTP);
    assert_int_equal(cfg->functions[0].timeout_seconds, 900);
    assert_int_equal(cfg->functions[0].max_concurrency, 1000);
    assert_string_equal(cfg->functions[0].arn,
                        "arn:aws:lambda:eu-west-1:111122223333:function:orders-prod");
    esm_config_destroy(cfg);
}

static void test_find_function(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg =
        tc_parse("{'functions': {'orders': {'url': 'http://x/'}, 'pay': {'url': 'http://y/',"
                 " 'arn': 'arn:aws:lambda:eu-west-1:111122223333:function:payments'}}}",
                 &p);
    assert_valid(cfg, &p);
    const esm_function_config *orders = &cfg->functions[0], *pay = &cfg->functions[1];
    assert_ptr_equal(esm_config_find_function(cfg, "orders"), orders);
    assert_ptr_equal(esm_config_find_function(cfg, "orders:live"), orders);
    assert_ptr_equal(
        esm_config_find_function(cfg, "arn:aws:lambda:us-east-1:000000000000:function:orders"),
        orders);
    assert_ptr_equal(
        esm_config_find_function(cfg, "arn:aws:lambda:us-east-1:000000000000:function:orders:3"),
        orders);
    assert_ptr_equal(esm_config_find_function(cfg, "123456789012:function:orders"), orders);
    assert_ptr_equal(esm_config_find_function(cfg, "pay"), pay);
    assert_ptr_equal(
        esm_config_find_function(cfg, "arn:aws:lambda:eu-west-1:111122223333:function:payments"),
        pay);
    assert_null(esm_config_find_function(cfg, "nope"));
    assert_null(esm_config_find_function(cfg, "arn:aws:lambda:us-east-1:1:function:nope"));
    assert_null(esm_config_find_function(cfg, NULL));
    esm_config_destroy(cfg);
}

static void test_mapping_equal(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    const char *base = "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                       "', 'BatchSize': 5, 'FilterCriteria': {'Filters': [{'Pattern':"
                       " '{\\'body\\': {\\'kind\\': [\\'order\\']}}'}]}}";
    esm_config *a = tc_parse_mappings(base, &p);
    esm_config *b = tc_parse_mappings(base, &p);
    assert_valid(a, &p);
    assert_valid(b, &p);
    assert_true(esm_mapping_config_equal(&a->mappings[0], &b->mappings[0]));
    assert_string_equal(a->mappings[0].uuid, b->mappings[0].uuid); /* stable derived id */

    esm_config *c =
        tc_parse_mappings("{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                          "', 'BatchSize': 6, 'FilterCriteria': {'Filters': "
                          "[{'Pattern': '{\\'body\\': {\\'kind\\': [\\'order\\']}}'}]}}",
                          &p);
    assert_valid(c, &p);
    assert_false(esm_mapping_config_equal(&a->mappings[0], &c->mappings[0]));

    /* Same mapping, but the function it invokes changed: not equal. */
    esm_config *d =
        tc_parse("{'functions': {'orders': {'url': 'http://127.0.0.1:9999/'}},"
                 " 'event_source_mappings': [{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN
                 "', 'BatchSize': 5, 'FilterCriteria': {'Filters': [{'Pattern':"
                 " '{\\'body\\': {\\'kind\\': [\\'order\\']}}'}]}}]}",
                 &p);
    assert_valid(d, &p);
    assert_string_equal(d->mappings[0].uuid, a->mappings[0].uuid);
    assert_false(esm_mapping_config_equal(&a->mappings[0], &d->mappings[0]));
    assert_true(esm_function_config_equal(&a->functions[0], &b->functions[0]));
    assert_false(esm_function_config_equal(&a->functions[0], &d->functions[0]));
    esm_config_destroy(a);
    esm_config_destroy(b);
    esm_config_destroy(c);
    esm_config_destroy(d);
}

static void test_accepted_and_ignored_aws_fields(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    esm_config *cfg = tc_parse_mappings(
        "{'FunctionName': 'orders', 'EventSourceArn': '" SQS_ARN "', 'KMSKeyArn': '',"
        " 'MetricsConfig': {'Metrics': ['EventCount']}, 'ProvisionedPollerConfig':"
        " {'MinimumPollers': 2}, 'LoggingConfig': {'SystemLogLevel': 'INFO'},"
        " 'Tags': {'team': 'payments'}}",
        &p);
    assert_valid(cfg, &p);
    esm_config_destroy(cfg);
}

static char *fixture(const char *name)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/tests/unit/data/config/%s", ESMD_SOURCE_DIR, name) > 0);
    return path;
}

static void test_fixture_files(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    const char *valid[] = {"valid-sqs.json", "valid-kinesis.json", "valid-kafka.json"};
    const esm_source_type types[] = {ESM_SRC_SQS, ESM_SRC_KINESIS, ESM_SRC_KAFKA};
    for (int i = 0; i < 3; i++) {
        char *path = fixture(valid[i]);
        esm_config *cfg = esm_config_load_file(path, &p);
        assert_valid(cfg, &p);
        assert_int_equal(cfg->n_mappings, 1);
        assert_int_equal(cfg->mappings[0].source, types[i]);
        esm_config_destroy(cfg);
        free(path);
    }

    char *path = fixture("invalid-several.json");
    assert_null(esm_config_load_file(path, &p));
    free(path);
    assert_problem(&p, "log_level",
                   "'loud' is not allowed; allowed: trace, debug, info, warn, error");
    assert_problem_prefix(&p, "functions.orders.url", "'ftp://127.0.0.1/orders' is not allowed");
    assert_problem_prefix(&p, "functions.orders.timeout_seconds", "901 is not allowed");
    assert_problem_prefix(&p, "event_source_mappings[0].BatchSize", "1 validation error detected");
    assert_problem(&p, "event_source_mappings[0].StartingPosition",
                   "Unsupported StartingPosition parameter for given event source mapping type.");
    assert_problem_prefix(&p, "event_source_mappings[1].FunctionName",
                          "function 'missing' is not defined");
    assert_problem_prefix(&p, "event_source_mappings[1].StartingPosition",
                          "1 validation error detected: Value 'NEWEST'");
    /* A refused StartingPosition is not reported a second time as missing. */
    assert_int_equal(p.n, 7);
    esm_config_problems_free(&p);

    assert_null(esm_config_load_file("/nonexistent/esmd.json", &p));
    assert_problem(&p, "", "cannot read /nonexistent/esmd.json: No such file or directory");
    esm_config_problems_free(&p);
}

static void test_problems_print(void **state)
{
    (void)state;
    esm_config_problems p = {0};
    assert_null(tc_parse("{'log_level': 2}", &p));
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    esm_config_problems_print(&p, f);
    fclose(f);
    assert_string_equal(out, "log_level: must be a string, got a number\n");
    free(out);
    esm_config_problems_free(&p);
    esm_config_problems_free(&p); /* idempotent */
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(esm_source_type_name(ESM_SRC_SQS), "sqs");
    assert_string_equal(esm_source_type_name(ESM_SRC_KINESIS), "kinesis");
    assert_string_equal(esm_source_type_name(ESM_SRC_KAFKA), "kafka");
    assert_string_equal(esm_starting_position_name(ESM_START_LATEST), "LATEST");
    assert_string_equal(esm_starting_position_name(ESM_START_TRIM_HORIZON), "TRIM_HORIZON");
    assert_string_equal(esm_starting_position_name(ESM_START_AT_TIMESTAMP), "AT_TIMESTAMP");
    assert_null(esm_starting_position_name(ESM_START_NONE));
    esm_config_destroy(NULL);
}

/* cJSON cuts a string at \u0000: refuse it instead of silently using "/tmp/a". */
static void test_nul_escape_in_a_string_is_refused(void **state)
{
    (void)state;
    static const char doc[] = "{\"state_dir\": \"/tmp/a\\u0000b\"}";
    esm_config_problems p = {0};
    assert_null(esm_config_parse(doc, sizeof doc - 1, &p));
    assert_int_equal(p.n, 1);
    assert_non_null(strstr(p.items[0].message, "\\u0000 at line 1, column 22"));
    esm_config_problems_free(&p);
    /* An escaped backslash followed by u0000 is just text. */
    static const char ok[] = "{\"state_dir\": \"/tmp/a\\\\u0000b\"}";
    esm_config *cfg = esm_config_parse(ok, sizeof ok - 1, &p);
    assert_non_null(cfg);
    assert_string_equal(cfg->state_dir, "/tmp/a\\u0000b");
    esm_config_destroy(cfg);
    esm_config_problems_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sqs_minimal_defaults),
        cmocka_unit_test(test_valid_kinesis_minimal_defaults),
        cmocka_unit_test(test_valid_kafka_minimal_defaults),
        cmocka_unit_test(test_top_level_keys_all_set),
        cmocka_unit_test(test_region_and_credentials_from_env),
        cmocka_unit_test(test_unknown_keys_everywhere),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_invalid_json_line_and_column),
        cmocka_unit_test(test_duplicate_json_key),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_secrets_never_in_messages),
        cmocka_unit_test(test_multiple_problems_reported_at_once),
        cmocka_unit_test(test_global_value_checks),
        cmocka_unit_test(test_function_rules),
        cmocka_unit_test(test_find_function),
        cmocka_unit_test(test_mapping_equal),
        cmocka_unit_test(test_accepted_and_ignored_aws_fields),
        cmocka_unit_test(test_fixture_files),
        cmocka_unit_test(test_problems_print),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_nul_escape_in_a_string_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
