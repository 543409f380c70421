/* The acknowledging side of the SQS source: DeleteMessageBatch (at most 10 entries a call,
 * never an empty call, retried on transport errors, failures logged and counted),
 * ChangeMessageVisibilityBatch, and failure records for messages that used up the esmd
 * extension's MaximumRetryAttempts. Calls outlive the batch that asked for them: receipt
 * handles are copied. */
#ifndef ESM_SQS_OPS_H
#define ESM_SQS_OPS_H

#include "aws/esm_aws.h"
#include "invoker/esm_invoker.h"
#include "pollers/esm_source.h"
#include "pollers/esm_sqs_msg.h"

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

#endif
