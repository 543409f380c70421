/* The SQS source's internal interface, shared by the files of pollers/sqs/ and their tests:
 * the message model, the acknowledging side and stuck-lane tracking. Not a public interface;
 * the engine sees only esm_sqs_source (pollers/esm_source.h). */
#ifndef ESM_SQS_INT_H
#define ESM_SQS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/esm_aws.h"
#include "common/esm_buf.h"
#include "filter/esm_filter_json.h"
#include "invoker/esm_invoker.h"
#include "pollers/esm_source.h"

/* SQS messages as esmd holds them: parsed from a ReceiveMessage (JSON protocol) response and
 * rendered once into the record JSON of AWS's SQS event (docs/design.md "SQS event"). Pure: no I/O.
 */
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

/* The acknowledging side of the SQS source: DeleteMessageBatch (at most 10 entries a call,
 * never an empty call, retried on transport errors, failures logged and counted),
 * ChangeMessageVisibilityBatch, and failure records for messages that used up the esmd
 * extension's MaximumRetryAttempts. Calls outlive the batch that asked for them: receipt
 * handles are copied. */
/* Call timeouts: ReceiveMessage (its 20 s long poll + 10 s) and the acknowledging calls (15 s).
 * The fault tests lower them to see a slow answer time out. */
extern long esm_sqs_receive_timeout_ms;
extern long esm_sqs_ack_timeout_ms;

typedef struct esm_sqs_ops esm_sqs_ops;
typedef void (*esm_sqs_ops_idle_cb)(void *arg);

/* idle is called whenever the last pending call finishes (used to complete a stop). */
esm_sqs_ops *esm_sqs_ops_create(const esm_source_env *env, esm_aws *aws, esm_sqs_ops_idle_cb idle,
                                void *arg);
void esm_sqs_ops_destroy(esm_sqs_ops *ops);
void esm_sqs_ops_set_queue_url(esm_sqs_ops *ops, const char *queue_url);
void esm_sqs_ops_delete(esm_sqs_ops *ops, esm_sqs_msg *const *msgs, size_t n);
void esm_sqs_ops_change_visibility(esm_sqs_ops *ops, esm_sqs_msg *const *msgs, size_t n,
                                   int timeout_s);
/* Writes the failure record (with the message as payload) to the outbox, once per message
 * (dedupe key "sqs:<mapping>:<messageId>"). 0 written, 1 the message had a record already
 * (delete it, count nothing), -1 not stored (leave it in the queue). */
int esm_sqs_ops_failure_record(esm_sqs_ops *ops, const esm_sqs_msg *m, const esm_invoke_result *r);
size_t esm_sqs_ops_pending(const esm_sqs_ops *ops);
/* Cancels every pending call (shutdown deadline): unacknowledged messages reappear later. */
void esm_sqs_ops_abandon(esm_sqs_ops *ops);

/* SQS "stuck lane" tracking for /readyz and /status (EsmdOptions.StuckLaneSeconds). An SQS
 * mapping has no ordered lanes, so a lane is blocked when:
 *   - a FIFO message group keeps failing (its messages return and fail again), or
 *   - the mapping as a whole fails every invocation (no message of any batch succeeds).
 * Failed SQS messages come back after the visibility timeout (or EsmdOptions.RetryBackoff), so
 * an entry whose last failure is older than the caller's expiry (a few visibility timeouts) is
 * forgotten: its messages went to a DLQ, were deleted or expired. Pure, no I/O. */
#define ESM_SQS_STUCK_MAX_GROUPS 1024

typedef struct {
    char *group;
    int64_t since_ms, last_failed_ms;
    char last_error[160];
} esm_sqs_stuck_entry;

typedef struct {
    int64_t failing_since_ms, failing_last_ms; /* mapping: every invocation failed since */
    char failing_error[160];
    esm_sqs_stuck_entry *groups;
    size_t n, cap;
} esm_sqs_stuck;

void esm_sqs_stuck_free(esm_sqs_stuck *t);
/* One invocation attempt: ok when at least one of its messages succeeded. */
void esm_sqs_stuck_invocation(esm_sqs_stuck *t, bool ok, const char *why, int64_t now_ms);
/* One FIFO group in an invocation attempt: failed when a message of the group failed. */
void esm_sqs_stuck_group(esm_sqs_stuck *t, const char *group, bool failed, const char *why,
                         int64_t now_ms);
/* Forgets entries without a failure for expire_ms; the earliest blocked-since, 0 when none. */
int64_t esm_sqs_stuck_since(esm_sqs_stuck *t, int64_t now_ms, int64_t expire_ms);
/* Appends ,"FailingSince":ISO|null,"FailingError":..,"BlockedGroups":[{"MessageGroupId",
 * "BlockedSince","LastFailure","LastError"}] (at most 20 groups, the longest blocked first). */
void esm_sqs_stuck_status(const esm_sqs_stuck *t, esm_buf *out);

#endif
