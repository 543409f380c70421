/* Destination strings of on-failure records, parsed once (pure, no I/O).
 *
 *   arn:aws:sqs:REGION:ACCOUNT:NAME         SendMessage, body = the record
 *   arn:aws:sns:REGION:ACCOUNT:NAME         Publish, Message = the record
 *   kafka://TOPIC                           the source mapping's cluster (bootstrap resolved
 *                                           by the drainer's env from the row's mapping uuid)
 *   kafka://HOST:PORT[,HOST:PORT...]/TOPIC  an explicit cluster; the writer of an outbox row
 *                                           for a Kafka source SHOULD store this form, so the
 *                                           row is deliverable without looking the mapping up
 *   http://... | https://...                POST of the record, 2xx = delivered
 *   file:///ABS/PATH  (or file://localhost/ABS/PATH)  one line appended + fsync
 *
 * The partition may be aws, aws-cn or aws-us-gov. FIFO queues and topics (.fifo) are refused,
 * as AWS refuses them. File paths are taken literally (no %-decoding) and may not contain ".."
 * components. */
#ifndef ESM_DEST_H
#define ESM_DEST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/esm_err.h"

typedef enum {
    ESM_DEST_SQS,
    ESM_DEST_SNS,
    ESM_DEST_KAFKA,
    ESM_DEST_HTTP,
    ESM_DEST_FILE,
} esm_dest_kind;

typedef struct {
    esm_dest_kind kind;
    char region[32];     /* sqs, sns */
    char account[16];    /* sqs, sns: 12 digits */
    char name[257];      /* sqs queue name, sns topic name */
    char bootstrap[512]; /* kafka: "host:port,host:port"; empty = the source cluster */
    char topic[250];     /* kafka */
    char target[4096];   /* sqs/sns: the ARN; http: the URL; file: the absolute path */
} esm_dest;

/* Returns 0 and fills *out, or -1 with err (ESM_ERR_INVALID, not retriable) naming the
 * problem. */
int esm_dest_parse(const char *s, esm_dest *out, esm_err *err);
const char *esm_dest_kind_name(esm_dest_kind kind);
/* The destination for logs and status: an http(s) URL loses its user:password@ and its query
 * string (tokens live there); other forms are copied. Always NUL-terminates out. */
void esm_dest_redact(const char *s, char *out, size_t out_len);

#endif
