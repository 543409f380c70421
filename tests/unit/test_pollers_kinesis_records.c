/* Kinesis records: GetRecords / ListShards parsing, the event rendered byte for byte against
 * AWS's documented example (docs/design.md "Kinesis event"), request bodies, sequence number
 * ordering and ParallelizationFactor lane hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pollers/kinesis/esm_kinesis_int.h"

#define SEQ1 "49651234567890123456789012345678901234567890123456789012"
#define SEQ2 "49651234567890123456789012345678901234567890123456799999"
#define ARN "arn:aws:kinesis:eu-west-1:111122223333:stream/telemetry"

static const esm_kinesis_render_ctx ctx = {
    .stream_arn = ARN,
    .region = "eu-west-1",
    .identity_arn = "arn:aws:iam::111122223333:role/esmd",
    .shard_id = "shardId-000000000003",
};

/* AWS's example record (docs/design.md "Kinesis event"), with esmd's invokeIdentityArn. */
static const char *const aws_record =
    "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"sensor-17\","
    "\"sequenceNumber\":\"" SEQ1 "\",\"data\":\"eyJ0ZW1wIjogMjEuNX0=\","
    "\"approximateArrivalTimestamp\":1717000123.456},\"eventSource\":\"aws:kinesis\","
    "\"eventVersion\":\"1.0\",\"eventID\":\"shardId-000000000003:" SEQ1 "\","
    "\"eventName\":\"aws:kinesis:record\","
    "\"invokeIdentityArn\":\"arn:aws:iam::111122223333:role/esmd\",\"awsRegion\":\"eu-west-1\","
    "\"eventSourceARN\":\"" ARN "\"}";

static void test_render_record_matches_aws_example(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_render_record(&ctx, SEQ1, "sensor-17", 1717000123456LL, "eyJ0ZW1wIjogMjEuNX0=", &b);
    assert_string_equal(esm_buf_cstr(&b), aws_record);
    esm_buf_free(&b);
}

static void test_render_escapes_partition_key(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_render_record(&ctx, SEQ1, "a\"b\\c\n", 1000, "", &b);
    cJSON *j = cJSON_Parse(esm_buf_cstr(&b));
    assert_non_null(j);
    const cJSON *k = cJSON_GetObjectItem(j, "kinesis");
    assert_string_equal(cJSON_GetObjectItem(k, "partitionKey")->valuestring, "a\"b\\c\n");
    assert_string_equal(cJSON_GetObjectItem(k, "data")->valuestring, "");
    assert_true(cJSON_GetObjectItem(k, "approximateArrivalTimestamp")->valuedouble == 1.0);
    cJSON_Delete(j);
    esm_buf_free(&b);
}

static void test_seconds_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {1717000123456LL, "1717000123.456"}, {1717000123400LL, "1717000123.4"},
        {1717000123050LL, "1717000123.05"},  {1717000123000LL, "1717000123"},
        {1717000123001LL, "1717000123.001"}, {0, "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        esm_buf b;
        esm_buf_init(&b);
        esm_kinesis_put_seconds(&b, cases[i].ms);
        assert_string_equal(esm_buf_cstr(&b), cases[i].want);
        esm_buf_free(&b);
    }
}

static void test_event_envelope_and_size(void **state)
{
    (void)state;
    esm_kinesis_record *r1 =
        esm_kinesis_record_new(&ctx, SEQ1, "sensor-17", 1717000123456LL, "eyJ0ZW1wIjogMjEuNX0=");
    esm_kinesis_record *r2 = esm_kinesis_record_new(&ctx, SEQ2, "k", 1717000124000LL, "eA==");
    assert_non_null(r1);
    assert_non_null(r2);
    assert_string_equal(r1->json, aws_record);
    assert_int_equal(r1->json_len, strlen(aws_record));
    esm_kinesis_record *recs[] = {r1, r2};
    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_render_event(recs, 2, &b);
    const char *ev = esm_buf_cstr(&b);
    assert_int_equal(b.len, esm_kinesis_event_size(2, r1->json_len + r2->json_len));
    assert_memory_equal(ev, "{\"Records\":[", 12);
    assert_memory_equal(ev + 12, aws_record, strlen(aws_record));
    assert_int_equal(ev[12 + strlen(aws_record)], ',');
    assert_string_equal(ev + b.len - 2, "]}");
    cJSON *j = cJSON_Parse(ev);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "Records")), 2);
    cJSON_Delete(j);
    esm_buf_reset(&b);
    esm_kinesis_render_event(recs, 1, &b);
    assert_int_equal(b.len, esm_kinesis_event_size(1, r1->json_len));
    esm_buf_free(&b);
    esm_kinesis_record_free(r1);
    esm_kinesis_record_free(r2);
}

static void test_parse_get_records(void **state)
{
    (void)state;
    /* kinesis-local's shape: float seconds, ChildShards null on an open shard */
    const char *resp =
        "{\"Records\":[{\"SequenceNumber\":\"" SEQ1 "\",\"ApproximateArrivalTimestamp\":"
        "1717000123.456,\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"a\",\"EncryptionType\":\"NONE\"},"
        "{\"SequenceNumber\":\"" SEQ2 "\",\"ApproximateArrivalTimestamp\":1717000124,"
        "\"Data\":\"eA==\",\"PartitionKey\":\"b\"}],"
        "\"NextShardIterator\":\"AAAA\",\"MillisBehindLatest\":1500,\"ChildShards\":null}";
    cJSON *j = cJSON_Parse(resp);
    esm_kinesis_page p;
    char why[128];
    assert_int_equal(esm_kinesis_parse_get_records(j, &ctx, &p, why, sizeof why), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.skipped, 0);
    assert_string_equal(p.records[0]->seq, SEQ1);
    assert_string_equal(p.records[0]->partition_key, "a");
    assert_string_equal(p.records[0]->data, "aGVsbG8=");
    assert_int_equal(p.records[0]->arrival_ms, 1717000123456LL);
    assert_int_equal(p.records[1]->arrival_ms, 1717000124000LL);
    assert_non_null(strstr(p.records[1]->json, "\"approximateArrivalTimestamp\":1717000124}"));
    assert_string_equal(p.next_iterator, "AAAA");
    assert_int_equal(p.millis_behind_latest, 1500);
    esm_kinesis_page_clear(&p);
    cJSON_Delete(j);
}

static void test_parse_closed_shard_and_malformed(void **state)
{
    (void)state;
    const char *resp =
        "{\"Records\":[{\"SequenceNumber\":\"12x\",\"ApproximateArrivalTimestamp\":1,"
        "\"Data\":\"\",\"PartitionKey\":\"a\"},"
        "{\"SequenceNumber\":\"12\",\"Data\":\"\",\"PartitionKey\":\"a\"},"
        "{\"SequenceNumber\":\"13\",\"ApproximateArrivalTimestamp\":2,"
        "\"Data\":\"\",\"PartitionKey\":\"a\"}],"
        "\"NextShardIterator\":null,\"MillisBehindLatest\":0,"
        "\"ChildShards\":[{\"ShardId\":\"shardId-000000000004\"}]}";
    cJSON *j = cJSON_Parse(resp);
    esm_kinesis_page p;
    char why[128];
    assert_int_equal(esm_kinesis_parse_get_records(j, &ctx, &p, why, sizeof why), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.skipped, 2);
    assert_string_equal(p.records[0]->seq, "13");
    assert_null(p.next_iterator);
    assert_int_equal(p.millis_behind_latest, 0);
    esm_kinesis_page_clear(&p);
    cJSON_Delete(j);

    /* no NextShardIterator key at all: closed too; no MillisBehindLatest: -1 */
    j = cJSON_Parse("{\"Records\":[]}");
    assert_int_equal(esm_kinesis_parse_get_records(j, &ctx, &p, why, sizeof why), 0);
    assert_int_equal(p.n, 0);
    assert_null(p.next_iterator);
    assert_int_equal(p.millis_behind_latest, -1);
    esm_kinesis_page_clear(&p);
    cJSON_Delete(j);

    j = cJSON_Parse("{\"NextShardIterator\":\"x\"}");
    assert_int_equal(esm_kinesis_parse_get_records(j, &ctx, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "Records"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"Records\":[],\"NextShardIterator\":5}");
    assert_int_equal(esm_kinesis_parse_get_records(j, &ctx, &p, why, sizeof why), -1);
    cJSON_Delete(j);
}

static void test_parse_list_shards_pages(void **state)
{
    (void)state;
    const char *page1 =
        "{\"Shards\":[{\"ShardId\":\"shardId-000000000000\",\"HashKeyRange\":{},"
        "\"SequenceNumberRange\":{\"StartingSequenceNumber\":\"100\",\"EndingSequenceNumber\":"
        "\"200\"}}],\"NextToken\":\"tok\"}";
    const char *page2 =
        "{\"Shards\":[{\"ShardId\":\"shardId-000000000001\",\"ParentShardId\":"
        "\"shardId-000000000000\",\"SequenceNumberRange\":{"
        "\"StartingSequenceNumber\":\"300\"}},{\"ShardId\":\"shardId-000000000002\","
        "\"ParentShardId\":\"shardId-000000000000\",\"AdjacentParentShardId\":"
        "\"shardId-000000000009\"}]}";
    esm_kinesis_shard_info *shards = NULL;
    size_t n = 0;
    char *tok = NULL;
    char why[128];
    cJSON *j = cJSON_Parse(page1);
    assert_int_equal(esm_kinesis_parse_list_shards(j, &shards, &n, &tok, why, sizeof why), 0);
    cJSON_Delete(j);
    assert_string_equal(tok, "tok");
    free(tok);
    j = cJSON_Parse(page2);
    assert_int_equal(esm_kinesis_parse_list_shards(j, &shards, &n, &tok, why, sizeof why), 0);
    cJSON_Delete(j);
    assert_null(tok);
    assert_int_equal(n, 3);
    assert_string_equal(shards[0].id, "shardId-000000000000");
    assert_null(shards[0].parent);
    assert_string_equal(shards[0].starting_seq, "100");
    assert_string_equal(shards[0].ending_seq, "200");
    assert_string_equal(shards[1].parent, "shardId-000000000000");
    assert_null(shards[1].ending_seq);
    assert_string_equal(shards[2].adjacent_parent, "shardId-000000000009");
    assert_null(shards[2].starting_seq);
    esm_kinesis_shard_info_free(shards, n);

    shards = NULL;
    n = 0;
    j = cJSON_Parse("{\"Shards\":[{\"HashKeyRange\":{}}]}");
    assert_int_equal(esm_kinesis_parse_list_shards(j, &shards, &n, &tok, why, sizeof why), -1);
    esm_kinesis_shard_info_free(shards, n);
    cJSON_Delete(j);
}

static void test_request_bodies(void **state)
{
    (void)state;
    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_body_list_shards(&b, "s1", NULL);
    assert_string_equal(esm_buf_cstr(&b), "{\"StreamName\":\"s1\",\"MaxResults\":1000}");
    esm_buf_reset(&b);
    esm_kinesis_body_list_shards(&b, "s1", "tok");
    assert_string_equal(esm_buf_cstr(&b), "{\"NextToken\":\"tok\",\"MaxResults\":1000}");
    esm_buf_reset(&b);
    esm_kinesis_body_shard_iterator(&b, "s1", "shardId-000000000000",
                                    ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER, "123", 0);
    assert_string_equal(esm_buf_cstr(&b),
                        "{\"StreamName\":\"s1\",\"ShardId\":\"shardId-000000000000\","
                        "\"ShardIteratorType\":\"AFTER_SEQUENCE_NUMBER\","
                        "\"StartingSequenceNumber\":\"123\"}");
    esm_buf_reset(&b);
    esm_kinesis_body_shard_iterator(&b, "s1", "sh", ESM_KINESIS_IT_AT_TIMESTAMP, NULL,
                                    1717000123450LL);
    assert_string_equal(esm_buf_cstr(&b), "{\"StreamName\":\"s1\",\"ShardId\":\"sh\","
                                          "\"ShardIteratorType\":\"AT_TIMESTAMP\","
                                          "\"Timestamp\":1717000123.45}");
    esm_buf_reset(&b);
    esm_kinesis_body_shard_iterator(&b, "s1", "sh", ESM_KINESIS_IT_LATEST, NULL, 0);
    assert_string_equal(esm_buf_cstr(&b), "{\"StreamName\":\"s1\",\"ShardId\":\"sh\","
                                          "\"ShardIteratorType\":\"LATEST\"}");
    esm_buf_reset(&b);
    esm_kinesis_body_get_records(&b, "AAA", 100);
    assert_string_equal(esm_buf_cstr(&b), "{\"ShardIterator\":\"AAA\",\"Limit\":100}");
    esm_buf_reset(&b);
    esm_kinesis_body_get_records(&b, "AAA", 20000); /* the API's maximum */
    assert_string_equal(esm_buf_cstr(&b), "{\"ShardIterator\":\"AAA\",\"Limit\":10000}");
    esm_buf_free(&b);
}

static void test_seq_compare(void **state)
{
    (void)state;
    assert_int_equal(esm_kinesis_seq_cmp(SEQ1, SEQ2), -1);
    assert_int_equal(esm_kinesis_seq_cmp(SEQ2, SEQ1), 1);
    assert_int_equal(esm_kinesis_seq_cmp(SEQ1, SEQ1), 0);
    assert_int_equal(esm_kinesis_seq_cmp("9", "10"), -1); /* numeric, not lexical */
    assert_int_equal(esm_kinesis_seq_cmp("010", "10"), 0);
    assert_true(esm_kinesis_seq_valid(SEQ1));
    assert_false(esm_kinesis_seq_valid(""));
    assert_false(esm_kinesis_seq_valid("12a"));
    assert_false(esm_kinesis_seq_valid(NULL));
}

static void test_lane_hashing(void **state)
{
    (void)state;
    /* PF 1: everything in lane 0. */
    assert_int_equal(esm_kinesis_lane_of("anything", 1), 0);
    assert_int_equal(esm_kinesis_lane_of("anything", 0), 0);
    /* FNV-1a 32 reference values: "" = 0x811c9dc5, "a" = 0xe40c292c. */
    assert_int_equal(esm_kinesis_lane_of("", 10), 0x811c9dc5u % 10);
    assert_int_equal(esm_kinesis_lane_of("a", 10), 0xe40c292cu % 10);
    /* Same key, same lane; 1000 keys spread over every lane of PF 10, none over-full. */
    unsigned counts[10] = {0};
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "pk-%d", i);
        unsigned l = esm_kinesis_lane_of(key, 10);
        assert_true(l < 10);
        assert_int_equal(l, esm_kinesis_lane_of(key, 10));
        counts[l]++;
    }
    for (int l = 0; l < 10; l++) {
        assert_true(counts[l] > 50);
        assert_true(counts[l] < 150);
    }
}

static void test_identity_arn(void **state)
{
    (void)state;
    char out[128];
    esm_kinesis_identity_arn("111122223333", out, sizeof out);
    assert_string_equal(out, "arn:aws:iam::111122223333:role/esmd");
    esm_kinesis_identity_arn(NULL, out, sizeof out);
    assert_string_equal(out, "arn:aws:iam::000000000000:role/esmd");
}

static void test_stream_created(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"StreamDescriptionSummary\":{\"StreamName\":\"s\","
                           "\"StreamCreationTimestamp\":1795479464.457}}");
    assert_int_equal(esm_kinesis_parse_stream_created(j), 1795479464457LL);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"StreamDescriptionSummary\":{}}");
    assert_int_equal(esm_kinesis_parse_stream_created(j), -1);
    cJSON_Delete(j);
    esm_buf b;
    esm_buf_init(&b);
    esm_kinesis_body_stream(&b, "s1");
    assert_string_equal(esm_buf_cstr(&b), "{\"StreamName\":\"s1\"}");
    esm_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_record_matches_aws_example),
        cmocka_unit_test(test_render_escapes_partition_key),
        cmocka_unit_test(test_seconds_format),
        cmocka_unit_test(test_event_envelope_and_size),
        cmocka_unit_test(test_parse_get_records),
        cmocka_unit_test(test_parse_closed_shard_and_malformed),
        cmocka_unit_test(test_parse_list_shards_pages),
        cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_seq_compare),
        cmocka_unit_test(test_lane_hashing),
        cmocka_unit_test(test_identity_arn),
        cmocka_unit_test(test_stream_created),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
