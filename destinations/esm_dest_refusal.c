#include "destinations/esm_dest_refusal.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

size_t esm_dest_max_payload(esm_dest_kind kind)
{
    switch (kind) {
    case ESM_DEST_SQS:
        return ESM_DEST_SQS_MAX_BYTES;
    case ESM_DEST_SNS:
        return ESM_DEST_SNS_MAX_BYTES;
    default:
        return 0;
    }
}

bool esm_refusal_http_permanent(long status)
{
    if (status < 400 || status > 499) return false;
    return status != 401 && status != 403 && status != 404 && status != 408 && status != 429;
}

static bool in_list(const char *type, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(type, *list) == 0) return true;
    return false;
}

bool esm_refusal_aws_permanent(esm_dest_kind kind, const char *error_type)
{
    /* "Message must be shorter than N bytes" comes as InvalidParameterValue (SQS) and
     * InvalidParameter (SNS); the query protocol's SQS codes carry a prefix. */
    static const char *const sqs[] = {"InvalidParameterValue", "InvalidMessageContents",
                                      "AWS.SimpleQueueService.InvalidMessageContents", NULL};
    static const char *const sns[] = {"InvalidParameter", "InvalidParameterValue",
                                      "ParameterValueInvalid", NULL};
    if (!error_type) return false;
    if (kind == ESM_DEST_SQS) return in_list(error_type, sqs);
    if (kind == ESM_DEST_SNS) return in_list(error_type, sns);
    return false;
}

bool esm_refusal_kafka_permanent(int err)
{
    switch ((rd_kafka_resp_err_t)err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:    /* message.max.bytes, topic max.message.bytes */
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: /* the batch of this one message */
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:        /* the broker's validation */
    case RD_KAFKA_RESP_ERR_INVALID_MSG:           /* CORRUPT_MESSAGE */
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        return true;
    default:
        return false;
    }
}
