/* Which destination answers refuse one failure record for good, and the size limits esmd
 * checks before sending (docs/operations.md "Parked failure records").
 *
 * A permanent refusal is about the record (too large, invalid contents): sending it again
 * never helps, so the drainer parks the row and delivers the rows behind it. Everything else
 * (transport errors, throttles, 5xx, a missing queue or topic, bad credentials, a wrong URL)
 * is about the destination: the row is retried and the destination's later rows wait. Pure,
 * no I/O. */
#ifndef ESM_DEST_REFUSAL_H
#define ESM_DEST_REFUSAL_H

#include <stdbool.h>
#include <stddef.h>

#include "destinations/esm_dest.h"

/* SQS's largest message (MaximumMessageSize cannot be set higher); a queue with a lower
 * MaximumMessageSize refuses larger ones itself (InvalidParameterValue). */
#define ESM_DEST_SQS_MAX_BYTES 1048576
/* SNS's largest message. */
#define ESM_DEST_SNS_MAX_BYTES 262144

/* The largest payload kind accepts, in bytes; 0 = esmd knows no fixed limit (Kafka checks
 * message.max.bytes itself, HTTP answers 413, files have none). */
size_t esm_dest_max_payload(esm_dest_kind kind);
/* HTTP: 4xx is permanent except 401, 403, 404 (credentials or URL: every row would fail),
 * 408 and 429 (try again later). */
bool esm_refusal_http_permanent(long status);
/* SQS SendMessage / SNS Publish error types (the code after '#', as esm_aws reports it). */
bool esm_refusal_aws_permanent(esm_dest_kind kind, const char *error_type);
/* librdkafka error codes (rd_kafka_resp_err_t) of a produce call or a delivery report. */
bool esm_refusal_kafka_permanent(int err);

#endif
