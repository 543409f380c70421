/* An operator moves a shard of a mapping that is not running (docs/operations.md "Moving a
 * position"). Only the store changes: the shard's rows lose their position and its own row keeps
 * where to start (esm_store_lane.start_at), read by esm_kinesis_stored_shard when the mapping
 * starts again. LATEST is kept as AT_TIMESTAMP of the move (esmd's clock, against the arrival
 * times the stream gives records), so that nothing written after the move is skipped however
 * long the mapping stays disabled. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "common/esm_time.h"
#include "pollers/kinesis/esm_kinesis_int.h"

/* The start_at text of a target (esm_kinesis_start_at reads it back); false when the target
 * cannot apply to a shard (err says why). */
static bool start_text(const esm_move_target *to, char *out, size_t n, esm_err *err)
{
    switch (to->kind) {
    case ESM_MOVE_TRIM_HORIZON:
        snprintf(out, n, "TRIM_HORIZON");
        return true;
    case ESM_MOVE_LATEST:
        snprintf(out, n, "AT_TIMESTAMP:%" PRId64, esm_now_ms());
        return true;
    case ESM_MOVE_AT_TIMESTAMP:
        snprintf(out, n, "AT_TIMESTAMP:%" PRId64, to->timestamp_ms);
        return true;
    case ESM_MOVE_AT_SEQUENCE_NUMBER: {
        /* as Kinesis writes them: 1 to 129 digits, no leading zero */
        size_t len = to->value ? strlen(to->value) : 0;
        bool ok = len >= 1 && len <= 129 && esm_kinesis_seq_valid(to->value) &&
                  (to->value[0] != '0' || len == 1);
        if (!ok) {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "sequence_number must be a Kinesis sequence number: 1 to 129 digits, "
                        "no leading zero");
            return false;
        }
        snprintf(out, n, "AT_SEQUENCE_NUMBER:%s", to->value);
        return true;
    }
    case ESM_MOVE_AT_OFFSET:
        break;
    }
    esm_err_set(err, ESM_ERR_INVALID, false,
                "a Kinesis shard moves to TRIM_HORIZON, LATEST, AT_TIMESTAMP or "
                "AT_SEQUENCE_NUMBER");
    return false;
}

int esm_kinesis_move(const esm_mapping_config *m, esm_store *store, const char *lane,
                     const esm_move_target *to, esm_buf *out, esm_err *err)
{
    char start[ESM_POSITION_MAX + 32]; /* "AT_SEQUENCE_NUMBER:" and 129 digits fit */
    if (!start_text(to, start, sizeof start, err)) return -1;
    esm_store_lane *rows = NULL;
    size_t n = 0;
    if (esm_store_checkpoint_list(store, m->uuid, m->event_source_arn, &rows, &n, err) != 0)
        return -1;
    const esm_store_lane *own = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].lane, lane) == 0) own = &rows[i];
    int ret = -1;
    if (!own || strchr(lane, '/') || lane[0] == '@') {
        esm_err_set(err, ESM_ERR_NOT_FOUND, false,
                    "the mapping has no shard %s in the state store (a shard is known once the "
                    "mapping has listed its stream's shards; GET /positions lists them)",
                    lane);
        goto out;
    }
    if (own->finished) {
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "shard %s is closed and fully read: its children were read after it, so "
                    "reading it again would break the order of its keys",
                    lane);
        goto out;
    }
    /* The shard's lane rows go with the move (ParallelizationFactor > 1): the highest position
     * among a shard's rows is its checkpoint, so one left behind would hide the move. */
    esm_kinesis_stored before; /* the shard's checkpoint: the highest of its rows */
    esm_kinesis_stored_shard(rows, n, lane, 0, &before);
    const char **forget = calloc(n ? n : 1, sizeof *forget);
    if (!forget) {
        esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
        goto out;
    }
    esm_store_move mv = {.start_at = start, .forget = forget};
    for (size_t i = 0; i < n; i++)
        if (rows[i].lane != own->lane && esm_kinesis_row_of_shard(rows[i].lane, lane))
            forget[mv.n_forget++] = rows[i].lane;
    int rc = esm_store_lane_move(store, m->uuid, m->event_source_arn, lane, &mv, err);
    free(forget);
    if (rc != 0) goto out;
    esm_buf_puts(out, ",\"Lane\":");
    esm_buf_json_cstr(out, lane);
    esm_buf_puts(out, ",\"Previous\":");
    esm_buf_json_cstr(out, before.checkpoint[0] ? before.checkpoint : NULL);
    esm_buf_puts(out, ",\"StartAt\":");
    esm_buf_json_cstr(out, start);
    ret = 0;
out:
    esm_store_lanes_free(rows, n);
    return ret;
}

char *esm_kinesis_source_key(const esm_mapping_config *m)
{
    return strdup(m->event_source_arn);
}
