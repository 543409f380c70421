/* Kinesis shard lineage and where a shard starts reading. Pure: no I/O, no clock.
 *
 * Resharding (docs/design.md "Kinesis resharding"): a child shard (ParentShardId /
 * AdjacentParentShardId) must not be read until every parent has been drained to SHARD_END, so
 * per-key order holds across a split or a merge. A parent that ListShards no longer returns has
 * expired (past retention) and counts as drained. */
#ifndef ESM_KINESIS_SHARDS_H
#define ESM_KINESIS_SHARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/esm_store.h"
#include "config/esm_config.h"
#include "pollers/esm_kinesis_records.h"

typedef struct {
    const char *id;
    const char *parent;          /* NULL if none */
    const char *adjacent_parent; /* NULL if none */
    bool finished;               /* drained to SHARD_END and every record resolved */
} esm_kinesis_lineage_node;

typedef enum {
    ESM_KINESIS_SHARD_FINISHED, /* nothing left to do */
    ESM_KINESIS_SHARD_READY,    /* may be read now */
    ESM_KINESIS_SHARD_WAITING,  /* a parent is still being read */
} esm_kinesis_shard_gate;

/* What shard nodes[i] may do, given the lineage of nodes[0..n). */
esm_kinesis_shard_gate esm_kinesis_lineage_gate(const esm_kinesis_lineage_node *nodes, size_t n,
                                                size_t i);
/* Fills order[0..n) with the indices of nodes so that every parent comes before its children
 * (stable otherwise: input order among unrelated shards). Returns 0, or -1 on a cycle (a
 * broken ListShards answer), leaving order in input order. */
int esm_kinesis_lineage_order(const esm_kinesis_lineage_node *nodes, size_t n, size_t *order);
/* "parent,adjacent" / "parent" / "" into out: the store's parent list of a shard. */
void esm_kinesis_lineage_parents(const char *parent, const char *adjacent, char *out, size_t len);

/* Where to start a shard that is about to be read. */
typedef struct {
    esm_kinesis_iterator_type type;
    const char *seq;      /* AFTER_SEQUENCE_NUMBER: the checkpoint */
    int64_t timestamp_ms; /* AT_TIMESTAMP */
} esm_kinesis_start;

/* checkpoint: the stored position (last sequence number acknowledged), or NULL.
 * A checkpoint resumes AFTER_SEQUENCE_NUMBER. Without one, the mapping's StartingPosition
 * applies: TRIM_HORIZON, AT_TIMESTAMP (StartingPositionTimestamp, for every shard: a child
 * created after it equals TRIM_HORIZON); LATEST reads an open shard of the mapping's first
 * discovery (first_discovery true) at LATEST, and every other shard AT_TIMESTAMP of the moment
 * the mapping first started (latest_since_ms, persisted): a child created later is read from
 * its start, and a restart before the first checkpoint loses nothing that arrived meanwhile. */
esm_kinesis_start esm_kinesis_start_for(const char *checkpoint, esm_starting_position sp,
                                        int64_t sp_timestamp_ms, bool first_discovery,
                                        bool shard_open, int64_t latest_since_ms);

/* NULL when the checkpoint can belong to the shard described by si; else why not (a stream
 * deleted and re-created under the same name, a checkpoint from another shard): a checkpoint
 * that is not a sequence number, older than the shard's first sequence number, or past the
 * end of a closed shard. */
const char *esm_kinesis_checkpoint_misfit(const char *checkpoint, const esm_kinesis_shard_info *si);

/* What the store holds for one shard, from the rows of its stream (esm_store_checkpoint_list). A
 * shard has its own row (lane key = shard id) and, with ParallelizationFactor > 1, one row per
 * shard lane ("<shardId>/lane-N"); every row stores the shard's watermark, so the checkpoint is
 * the highest position among them. */
typedef struct {
    char checkpoint[136]; /* "" = none */
    bool finished;
    /* A row with a position or the finished flag written before the stream was created: it
     * belongs to an earlier stream of the same name (deleted and re-created), so it must not be
     * used. Sequence numbers cannot tell (an emulator re-creating a stream within the same
     * second hands out the very same numbers); the stream's creation time can. */
    bool stale;
    int64_t stored_at_ms; /* the latest such row's write time */
} esm_kinesis_stored;

/* stream_created_ms: StreamCreationTimestamp (0 = unknown: nothing is stale). */
void esm_kinesis_stored_shard(const esm_store_lane *rows, size_t n, const char *shard_id,
                              int64_t stream_created_ms, esm_kinesis_stored *out);
/* True when a store lane key is a row of shard_id (its own or one of its PF lanes). */
bool esm_kinesis_row_of_shard(const char *lane_key, const char *shard_id);

#endif
