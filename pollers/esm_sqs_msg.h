/* SQS messages as esmd holds them: parsed from a ReceiveMessage (JSON protocol) response and
 * rendered once into the record JSON of AWS's SQS event (docs/design.md "SQS event"). Pure: no I/O.
 */
#ifndef ESM_SQS_MSG_H
#define ESM_SQS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"
#include "filter/esm_filter_json.h"

/* One allocation per message: the struct, then message_id, receipt_handle, group_id and record
 * in the same block (free with esm_sqs_msg_free). */
typedef struct {
    char *message_id;
    char *receipt_handle;
    char *group_id;    /* FIFO MessageGroupId, NULL otherwise */
    int receive_count; /* ApproximateReceiveCount */
    int64_t sent_ms;   /* SentTimestamp */
    /* The body (for filters), not NUL-terminated: it points into the response or the parser,
     * so it is valid only during the receive callback; the source sets it to NULL after
     * filtering. */
    const char *body;
    size_t body_len;
    char *record; /* the record JSON exactly as delivered to the function */
    size_t record_len;
} esm_sqs_msg;

typedef struct {
    const char *queue_arn;
    const char *region;
} esm_sqs_render_ctx;

/* Reusable parse state (one per source: the receive callbacks run one at a time): the token
 * tape of the last response and a scratch buffer for records. */
typedef struct {
    esm_fj_tape tape;
    esm_buf scratch;
} esm_sqs_parser;

void esm_sqs_parser_init(esm_sqs_parser *p);
void esm_sqs_parser_free(esm_sqs_parser *p);
/* Releases the buffers when they grew above keep_bytes (after an unusually large response). */
void esm_sqs_parser_trim(esm_sqs_parser *p, size_t keep_bytes);

/* Parses the "Messages" of a ReceiveMessage response json[0..len) into out[0..cap). Returns
 * the number of messages stored (each one allocation; free with esm_sqs_msg_free), or -1 when
 * the response is not JSON or does not have the expected shape (why says what). Malformed
 * individual messages (no string MessageId, ReceiptHandle or Body) are skipped and counted in
 * *skipped. Each message's body points into json or the parser (see esm_sqs_msg.body): it is
 * valid until json is freed or the parser parses again. */
int esm_sqs_parse_receive(esm_sqs_parser *p, const char *json, size_t len,
                          const esm_sqs_render_ctx *ctx, esm_sqs_msg **out, size_t cap,
                          size_t *skipped, char *why, size_t why_len);
void esm_sqs_msg_free(esm_sqs_msg *m);
/* Bytes of the event envelope around the records: {"Records":[ ... ]} and the commas. */
size_t esm_sqs_event_size(size_t n_records, size_t records_bytes);
/* Writes {"Records":[r1,r2,...]} for msgs[0..n). */
void esm_sqs_render_event(esm_sqs_msg *const *msgs, size_t n, esm_buf *b);

#endif
