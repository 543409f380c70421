#include "pollers/kinesis/esm_kinesis_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long find(const esm_kinesis_lineage_node *nodes, size_t n, const char *id)
{
    if (!id || !*id) return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(nodes[i].id, id) == 0) return (long)i;
    return -1;
}

static bool parent_done(const esm_kinesis_lineage_node *nodes, size_t n, const char *id)
{
    long p = find(nodes, n, id);
    return p < 0 || nodes[p].finished; /* unknown = expired past retention = drained */
}

esm_kinesis_shard_gate esm_kinesis_lineage_gate(const esm_kinesis_lineage_node *nodes, size_t n,
                                                size_t i)
{
    if (nodes[i].finished) return ESM_KINESIS_SHARD_FINISHED;
    if (!parent_done(nodes, n, nodes[i].parent) || !parent_done(nodes, n, nodes[i].adjacent_parent))
        return ESM_KINESIS_SHARD_WAITING;
    return ESM_KINESIS_SHARD_READY;
}

int esm_kinesis_lineage_order(const esm_kinesis_lineage_node *nodes, size_t n, size_t *order)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (n == 0) return 0;
    bool *placed = calloc(n, sizeof *placed);
    if (!placed) return -1;
    /* Repeated passes: place every shard whose parents are placed (or unknown). O(n^2) per
     * pass, fine for the few hundred shards a stream has. */
    size_t k = 0;
    while (k < n) {
        size_t before = k;
        for (size_t i = 0; i < n; i++) {
            if (placed[i]) continue;
            long p = find(nodes, n, nodes[i].parent);
            long a = find(nodes, n, nodes[i].adjacent_parent);
            if ((p >= 0 && !placed[p]) || (a >= 0 && !placed[a])) continue;
            placed[i] = true;
            order[k++] = i;
        }
        if (k == before) { /* a cycle: give up on ordering */
            for (size_t i = 0; i < n; i++)
                order[i] = i;
            free(placed);
            return -1;
        }
    }
    free(placed);
    return 0;
}

void esm_kinesis_lineage_parents(const char *parent, const char *adjacent, char *out, size_t len)
{
    bool p = parent && *parent, a = adjacent && *adjacent;
    if (p && a)
        snprintf(out, len, "%s,%s", parent, adjacent);
    else
        snprintf(out, len, "%s", p ? parent : a ? adjacent : "");
}

esm_kinesis_start esm_kinesis_start_for(const char *checkpoint, esm_starting_position sp,
                                        int64_t sp_timestamp_ms, bool first_discovery,
                                        bool shard_open, int64_t latest_since_ms)
{
    esm_kinesis_start s = {.type = ESM_KINESIS_IT_TRIM_HORIZON};
    if (checkpoint) {
        s.type = ESM_KINESIS_IT_AFTER_SEQUENCE_NUMBER;
        s.seq = checkpoint;
        return s;
    }
    switch (sp) {
    case ESM_START_AT_TIMESTAMP:
        s.type = ESM_KINESIS_IT_AT_TIMESTAMP;
        s.timestamp_ms = sp_timestamp_ms;
        break;
    case ESM_START_LATEST:
        if (first_discovery && shard_open) {
            s.type = ESM_KINESIS_IT_LATEST;
        } else {
            s.type = ESM_KINESIS_IT_AT_TIMESTAMP;
            s.timestamp_ms = latest_since_ms;
        }
        break;
    case ESM_START_TRIM_HORIZON:
    case ESM_START_NONE:
        break;
    }
    return s;
}

bool esm_kinesis_start_at(const char *text, esm_kinesis_start *out)
{
    memset(out, 0, sizeof *out);
    if (!text) return false;
    if (strcmp(text, "TRIM_HORIZON") == 0) {
        out->type = ESM_KINESIS_IT_TRIM_HORIZON;
        return true;
    }
    if (strncmp(text, "AT_TIMESTAMP:", 13) == 0) {
        char *end;
        errno = 0;
        long long ms = strtoll(text + 13, &end, 10);
        if (end == text + 13 || *end || errno || ms < 0) return false;
        out->type = ESM_KINESIS_IT_AT_TIMESTAMP;
        out->timestamp_ms = ms;
        return true;
    }
    if (strncmp(text, "AT_SEQUENCE_NUMBER:", 19) == 0 && esm_kinesis_seq_valid(text + 19)) {
        out->type = ESM_KINESIS_IT_AT_SEQUENCE_NUMBER;
        out->seq = text + 19;
        return true;
    }
    return false;
}

const char *esm_kinesis_checkpoint_misfit(const char *checkpoint, const esm_kinesis_shard_info *si)
{
    if (!esm_kinesis_seq_valid(checkpoint)) return "the checkpoint is not a sequence number";
    if (si->starting_seq && esm_kinesis_seq_valid(si->starting_seq) &&
        esm_kinesis_seq_cmp(checkpoint, si->starting_seq) < 0)
        return "the checkpoint is older than the shard's first sequence number (was the stream "
               "deleted and re-created?)";
    if (si->ending_seq && esm_kinesis_seq_valid(si->ending_seq) &&
        esm_kinesis_seq_cmp(checkpoint, si->ending_seq) > 0)
        return "the checkpoint is past the end of the closed shard";
    return NULL;
}

bool esm_kinesis_row_of_shard(const char *lane_key, const char *shard_id)
{
    size_t n = strlen(shard_id);
    return strncmp(lane_key, shard_id, n) == 0 &&
           (lane_key[n] == '\0' || strncmp(lane_key + n, "/lane-", 6) == 0);
}

void esm_kinesis_stored_shard(const esm_store_lane *rows, size_t n, const char *shard_id,
                              int64_t stream_created_ms, esm_kinesis_stored *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const esm_store_lane *l = &rows[i];
        if (!l->lane || !esm_kinesis_row_of_shard(l->lane, shard_id)) continue;
        bool own = strcmp(l->lane, shard_id) == 0;
        if (own && l->finished) out->finished = true;
        if (own && l->start_at) snprintf(out->start_at, sizeof out->start_at, "%s", l->start_at);
        if ((l->position || (own && l->finished)) && l->updated_at_ms > out->stored_at_ms)
            out->stored_at_ms = l->updated_at_ms;
        if (stream_created_ms > 0 && (l->position || (own && l->finished)) &&
            l->updated_at_ms < stream_created_ms)
            out->stale = true;
        if (!l->position) continue;
        bool valid = esm_kinesis_seq_valid(l->position);
        bool have = out->checkpoint[0] != '\0';
        /* an invalid position is kept (the misfit check reports it) unless a valid one exists */
        if ((!valid && !have) || (valid && (!esm_kinesis_seq_valid(out->checkpoint) ||
                                            esm_kinesis_seq_cmp(l->position, out->checkpoint) > 0)))
            snprintf(out->checkpoint, sizeof out->checkpoint, "%s", l->position);
    }
}
