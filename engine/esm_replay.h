/* Replaying failure records through a mapping's function (docs/operations.md "Replaying failure
 * records"). AWS has no redrive for the failure records of streams; users build it by hand.
 * A job reads the failure records a file:// destination wrote (up to the file's end when the
 * job started) or an SQS destination holds, and invokes the mapping's function with the
 * original event each one carries ("payload"), one at a time on the loop; a throttled or
 * unreachable function is tried again (REPLAY_TRIES in all), a misconfigured one stops the job.
 * An SQS message is deleted once its records were replayed; a message that failed or was
 * skipped stays in the queue, and the job ends when one it took comes back. A failure record of
 * another mapping (function, source), or without a payload, is skipped and counted. A job keeps
 * the function it started with across a reload. */
#ifndef ESM_REPLAY_H
#define ESM_REPLAY_H

#include <stdbool.h>

#include "aws/esm_aws.h"
#include "common/esm_buf.h"
#include "common/esm_err.h"
#include "engine/esm_reload.h"

#define ESM_REPLAY_LIMIT_DEFAULT 1000
#define ESM_REPLAY_LIMIT_MAX 1000000
#define ESM_REPLAY_ERRORS_KEPT 20

struct ev_loop;
typedef struct esm_replay esm_replay;

typedef struct {
    struct ev_loop *loop;
    esm_generation *gen;          /* the job takes a reference */
    const esm_mapping_config *mc; /* in gen */
    esm_aws *sqs;                 /* for an SQS queue of failure records */
    const char *from;             /* file:///ABS/PATH or arn:aws:sqs:REGION:ACCOUNT:NAME */
    long long limit;              /* failure records read at most */
    unsigned id;
} esm_replay_options;

/* Starts a job; NULL with err (ESM_ERR_INVALID: a bad from, a file that cannot be read or is
 * not a regular file). */
esm_replay *esm_replay_start(const esm_replay_options *o, esm_err *err);
/* Appends the job as a JSON object: Id, UUID, From, State (Running, Done, Cancelled, Failed),
 * Read, Replayed, Failed, Skipped, Limit, Reason (why it ended, or null), Errors
 * [{"At","Error"}], StartedAt, FinishedAt. */
void esm_replay_status(const esm_replay *r, esm_buf *out);
bool esm_replay_running(const esm_replay *r);
unsigned esm_replay_id(const esm_replay *r);
const char *esm_replay_mapping(const esm_replay *r);
/* Stops a running job: the invocation in flight is abandoned (its records stay where they
 * are: in the file, or in the queue). */
void esm_replay_cancel(esm_replay *r);
void esm_replay_destroy(esm_replay *r);

#endif
