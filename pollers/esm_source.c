/* What every source's status shares: its phase in AWS's words and its last problem, written
 * around the members that are the source's own. */
#include "pollers/esm_source.h"

const char *esm_source_phase_name(esm_source_phase p)
{
    static const char *const names[] = {
        [ESM_SOURCE_CREATED] = "Creating", [ESM_SOURCE_REACHING] = "Enabling",
        [ESM_SOURCE_RUNNING] = "Enabled",  [ESM_SOURCE_STOPPING] = "Disabling",
        [ESM_SOURCE_STOPPED] = "Disabled",
    };
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "Unknown";
}

void esm_source_status(const esm_source_ops *ops, void *source, esm_buf *out)
{
    esm_buf_puts(out, "{\"State\":");
    esm_buf_json_cstr(out, esm_source_phase_name(ops->phase(source)));
    ops->status(source, out);
    esm_buf_puts(out, ",\"LastError\":");
    esm_buf_json_cstr(out, ops->last_error(source));
    esm_buf_putc(out, '}');
}

const esm_source_ops *esm_source_ops_for(esm_source_type t)
{
    switch (t) {
    case ESM_SRC_SQS:
        return &esm_sqs_source;
    case ESM_SRC_KAFKA:
        return &esm_kafka_source;
    case ESM_SRC_KINESIS:
        return &esm_kinesis_source;
    }
    return NULL;
}
