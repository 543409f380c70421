/* AWS Lambda event filter patterns (FilterCriteria.Filters[].Pattern): validated and compiled
 * once per mapping, then matched against each record without allocating.
 *
 * Semantics follow docs/design.md "Filters":
 *  - filters OR, keys inside a pattern AND, matchers in a leaf array OR, `$or` at any level;
 *  - an event array matches when any element matches (arrays of objects are traversed);
 *  - literal numbers compare by their written form (300, 300.0 and 3e2 differ), `numeric`
 *    compares as doubles; "1" is not 1, null is not "";
 *  - `exists: true` only matches leaves (an object never "exists"), `exists: false` matches
 *    an absent path;
 *  - operators: literals, prefix, suffix, equals-ignore-case, anything-but (literal, list,
 *    {prefix|suffix|equals-ignore-case|wildcard}), numeric, exists, wildcard, cidr, and the
 *    {prefix|suffix: {equals-ignore-case: ...}} forms.
 *
 * Per source, the data key is the payload passed to esm_filter_match (already decoded):
 *  - SQS `body`: JSON when it parses, else a plain string; a JSON pattern never matches a plain
 *    body and plain matchers never match a JSON body.
 *  - Kinesis `data`: parsed as JSON; non-JSON data never matches a `data` clause; plain matchers
 *    on `data` are refused by esm_filter_compile. The fields of the record's `kinesis` object
 *    (partitionKey, sequenceNumber, ...) can also be named at the top level, as on AWS.
 *  - Kafka `value`: UTF-8 JSON or a plain string; when the value is not UTF-8 or its kind does
 *    not match the clause (JSON vs plain), the `value` clause is ignored (metadata-only).
 * Every other key names a metadata field of the record as delivered to the function.
 *
 * Threading: a set holds its own scratch space, so one set may be used by one thread at a
 * time (thread-compatible). Matching only allocates when a record is larger than any seen
 * before by that set (the scratch grows and is kept). */
#ifndef ESM_FILTER_H
#define ESM_FILTER_H

#include <stdbool.h>
#include <stddef.h>

/* Longest Pattern string AWS accepts. */
#define ESM_FILTER_PATTERN_MAX 4096
/* Patterns per mapping: AWS's default quota, and the most a quota increase allows. */
#define ESM_FILTER_DEFAULT_MAX 5
#define ESM_FILTER_HARD_MAX 10
/* Every refusal message starts with this. */
#define ESM_FILTER_INVALID "Invalid filter pattern definition."

typedef enum { ESM_FILTER_SRC_SQS, ESM_FILTER_SRC_KINESIS, ESM_FILTER_SRC_KAFKA } esm_filter_source;

typedef struct esm_filter_set esm_filter_set;

/* Checks one Pattern string, independent of source. On failure writes
 * "Invalid filter pattern definition. <reason>" into why and returns false. */
bool esm_filter_validate(const char *pattern, char *why, size_t why_len);

/* Compiles 0..ESM_FILTER_HARD_MAX patterns (ORed) for one source, with the source-specific
 * checks (plain matchers on Kinesis `data` are refused). n == 0 yields a set that matches
 * everything. Returns NULL and fills why on error. Callers enforce their own (lower) limit on
 * n, e.g. ESM_FILTER_DEFAULT_MAX. */
esm_filter_set *esm_filter_compile(const char *const *patterns, size_t n, esm_filter_source src,
                                   char *why, size_t why_len);
void esm_filter_destroy(esm_filter_set *f);

/* True when the set has no patterns, or is NULL (every record passes). */
bool esm_filter_matches_all(const esm_filter_set *f);

/* Matches one record. record_json is the record exactly as delivered to the function (one
 * element of "Records", or one Kafka record object). payload is the data field, already
 * decoded (SQS: the raw body; Kinesis/Kafka: the base64-decoded bytes); NULL means the record
 * has no payload (e.g. a Kafka tombstone), so the data key is absent. The payload is parsed at
 * most once per call however many patterns there are. record_json is only read when some
 * pattern names a metadata field (it may be NULL otherwise); when it is not a JSON object,
 * the patterns that name metadata fields do not match. A NULL set matches everything. The set's
 * scratch is mutated, hence the const pointer is for API convenience only: do not share a set
 * between threads. */
bool esm_filter_match(const esm_filter_set *f, const char *record_json, size_t record_len,
                      const char *payload, size_t payload_len);

#endif
