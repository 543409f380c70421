/* Kinesis records as esmd holds them, and the Kinesis JSON 1.1 requests and responses the source
 * exchanges (ListShards, GetShardIterator, GetRecords). Pure: no I/O, no clock.
 *
 * A record is rendered once, at fetch time, into the exact element of AWS's Kinesis event
 * (docs/design.md "Kinesis event"); a batch is then {"Records":[...]} around the pre-rendered
 * elements. The data is passed through as the base64 text the stream returned (KPL aggregates are
 * not de-aggregated). invokeIdentityArn: esmd has no execution role, so it renders
 * "arn:aws:iam::<account>:role/esmd" (esm_kinesis_identity_arn). */
#ifndef ESM_KINESIS_RECORDS_H
#define ESM_KINESIS_RECORDS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"

typedef struct {
    const char *stream_arn;
    const char *region;
    const char *identity_arn; /* invokeIdentityArn */
    const char *shard_id;
} esm_kinesis_render_ctx;

typedef struct esm_kinesis_record {
    char *seq; /* SequenceNumber (decimal string): the RBIF itemIdentifier */
    char *partition_key;
    int64_t arrival_ms; /* ApproximateArrivalTimestamp */
    char *data;         /* the base64 Data as returned (for filters); may be freed early */
    char *json;         /* the record exactly as delivered (one element of "Records") */
    size_t json_len;
    /* bookkeeping of the source runtime */
    unsigned lane; /* ParallelizationFactor lane */
    bool done;     /* acknowledged, discarded or filtered out */
    bool in_lane;  /* queued in or handed to a lane */
    bool in_order; /* still in the shard's order list (the watermark has not passed it) */
} esm_kinesis_record;

/* One GetRecords response. */
typedef struct {
    esm_kinesis_record **records;
    size_t n;
    char *next_iterator;          /* NULL: the shard is closed and fully read (SHARD_END) */
    int64_t millis_behind_latest; /* -1 when absent */
    size_t skipped;               /* malformed records left out */
} esm_kinesis_page;

/* Parses a GetRecords response; records are rendered with ctx. Returns 0, or -1 when the
 * response does not have the expected shape (why says what). Clear the page afterwards. */
int esm_kinesis_parse_get_records(const cJSON *resp, const esm_kinesis_render_ctx *ctx,
                                  esm_kinesis_page *out, char *why, size_t why_len);
/* Frees what the page still owns (records set to NULL in out->records are skipped). */
void esm_kinesis_page_clear(esm_kinesis_page *p);

/* Builds a record (copies the strings, renders the JSON). NULL when out of memory. */
esm_kinesis_record *esm_kinesis_record_new(const esm_kinesis_render_ctx *ctx, const char *seq,
                                           const char *partition_key, int64_t arrival_ms,
                                           const char *data_b64);
void esm_kinesis_record_free(esm_kinesis_record *r);
/* Appends the record element of AWS's Kinesis event. */
void esm_kinesis_render_record(const esm_kinesis_render_ctx *ctx, const char *seq,
                               const char *partition_key, int64_t arrival_ms, const char *data_b64,
                               esm_buf *b);
/* Epoch seconds with the milliseconds as a fraction, trailing zeros dropped: 1717000123.456,
 * 1717000123.4, 1717000123. */
void esm_kinesis_put_seconds(esm_buf *b, int64_t ms);
/* Bytes of {"Records":[r1,...,rn]} given the summed record lengths (esm_event_size; with n = 0
 * it is the envelope). */
size_t esm_kinesis_event_size(size_t n_records, size_t records_bytes);
/* Writes {"Records":[...]} for recs[0..n). */
void esm_kinesis_render_event(esm_kinesis_record *const *recs, size_t n, esm_buf *b);
/* "arn:aws:iam::<account>:role/esmd" into out. */
void esm_kinesis_identity_arn(const char *account, char *out, size_t len);

/* Compares two sequence numbers numerically (decimal strings of any length). */
int esm_kinesis_seq_cmp(const char *a, const char *b);
/* True when s is a non-empty decimal string. */
bool esm_kinesis_seq_valid(const char *s);
/* The ParallelizationFactor lane of a partition key: FNV-1a (32 bit) of the key modulo pf, so
 * one key always goes to one lane (per-key order) and keys spread evenly. pf <= 1 gives 0. */
unsigned esm_kinesis_lane_of(const char *partition_key, unsigned pf);

/* ---- ListShards ---- */

typedef struct {
    char *id;
    char *parent;          /* ParentShardId or NULL */
    char *adjacent_parent; /* AdjacentParentShardId or NULL */
    char *starting_seq;    /* SequenceNumberRange.StartingSequenceNumber or NULL */
    char *ending_seq;      /* SequenceNumberRange.EndingSequenceNumber: NULL while open */
} esm_kinesis_shard_info;

/* Appends the Shards of a ListShards response to *shards (grown with realloc) and sets
 * *next_token (malloc'ed, NULL on the last page). Returns 0 or -1 (why says what). */
int esm_kinesis_parse_list_shards(const cJSON *resp, esm_kinesis_shard_info **shards, size_t *n,
                                  char **next_token, char *why, size_t why_len);
void esm_kinesis_shard_info_free(esm_kinesis_shard_info *shards, size_t n);

/* ---- request bodies ---- */

typedef enum {
    ESM_KINESIS_IT_TRIM_HORIZON,
    ESM_KINESIS_IT_LATEST,
    ESM_KINESIS_IT_AT_TIMESTAMP,
    ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER,
} esm_kinesis_iterator_type;

const char *esm_kinesis_iterator_type_name(esm_kinesis_iterator_type t);
/* {"StreamName":..} or {"NextToken":..} (AWS refuses both together) with MaxResults. */
void esm_kinesis_body_list_shards(esm_buf *b, const char *stream_name, const char *next_token);
/* seq is used with AFTER_SEQUENCE_NUMBER, timestamp_ms with AT_TIMESTAMP. */
void esm_kinesis_body_shard_iterator(esm_buf *b, const char *stream_name, const char *shard_id,
                                     esm_kinesis_iterator_type type, const char *seq,
                                     int64_t timestamp_ms);
void esm_kinesis_body_get_records(esm_buf *b, const char *iterator, int limit);
/* {"StreamName":..} (DescribeStreamSummary). */
void esm_kinesis_body_stream(esm_buf *b, const char *stream_name);
/* StreamDescriptionSummary.StreamCreationTimestamp (epoch seconds) in ms; -1 if absent. */
int64_t esm_kinesis_parse_stream_created(const cJSON *resp);

#endif
