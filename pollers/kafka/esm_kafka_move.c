/* An operator moves a partition of a mapping that is not running (docs/operations.md "Moving a
 * position"). The target becomes an offset here, with a consumer of its own (the mapping's
 * cluster, credentials and group): the partition's log bounds, offsetsForTimes for
 * AT_TIMESTAMP, and LATEST as the log end at the time of the move (nothing written after it is
 * skipped). The group's committed offset is written first: while another consumer is a member
 * of the group the broker refuses it, and nothing has changed. Then the store's checkpoint,
 * confirmed (the group holds it); if the store refuses, the group gets its old offset back.
 * The calls block the loop, ESM_KAFKA_MOVE_TIMEOUT_MS at most in all. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/esm_store.h"
#include "common/esm_time.h"
#include "pollers/kafka/esm_kafka_int.h"

typedef struct {
    const esm_mapping_config *m;
    int32_t partition;
    rd_kafka_t *rk;
    esm_kafka_glue glue;
    int64_t deadline_ms;
    int64_t lo, hi;
} mover;

static int remaining(const mover *mv)
{
    int64_t left = mv->deadline_ms - esm_now_ms();
    return left > 100 ? (int)left : 100;
}

static bool parse_i64(const char *text, int64_t max, int64_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+') return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end || errno || v < 0 || v > max) return false;
    *out = v;
    return true;
}

static int open_client(mover *mv, esm_err *err)
{
    esm_kafka_props props;
    if (esm_kafka_props_build(mv->m, &props, err) != 0) return -1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = esm_kafka_conf_apply(conf, &props, "positions", err);
    esm_kafka_props_free(&props);
    if (rc == 0 && rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0)) rc = -1;
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    mv->glue = (esm_kafka_glue){.log_ctx = "positions", .quiet_brokers_down = true};
    esm_kafka_conf_set_glue(conf, &mv->glue);
    char es[256];
    mv->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof es);
    if (!mv->rk) {
        rd_kafka_conf_destroy(conf);
        esm_err_set(err, ESM_ERR_INVALID, false, "Kafka consumer: %s", es);
        return -1;
    }
    return 0;
}

/* The partition exists and its log bounds are known. */
static int read_log(mover *mv, esm_err *err)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(mv->rk, mv->m->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        t ? rd_kafka_metadata(mv->rk, 0, t, &md, remaining(mv)) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (t) rd_kafka_topic_destroy(t);
    if (e) {
        esm_err_set(err, ESM_ERR_IO, true, "cannot read the metadata of topic %s: %s", mv->m->topic,
                    rd_kafka_err2str(e));
        return -1;
    }
    int partitions = -1;
    if (md->topic_cnt == 1 && !md->topics[0].err) partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (partitions < 0) {
        esm_err_set(err, ESM_ERR_NOT_FOUND, false, "topic %s does not exist", mv->m->topic);
        return -1;
    }
    if (mv->partition >= partitions) {
        esm_err_set(err, ESM_ERR_NOT_FOUND, false,
                    "topic %s has no partition %" PRId32 " (it has %d)", mv->m->topic,
                    mv->partition, partitions);
        return -1;
    }
    e = rd_kafka_query_watermark_offsets(mv->rk, mv->m->topic, mv->partition, &mv->lo, &mv->hi,
                                         remaining(mv));
    if (e) {
        esm_err_set(err, ESM_ERR_IO, true,
                    "cannot read the log bounds of partition %" PRId32 ": %s", mv->partition,
                    rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* The offset the target means, within [lo, hi]. */
static int target_offset(mover *mv, const esm_move_target *to, int64_t *off, esm_err *err)
{
    switch (to->kind) {
    case ESM_MOVE_TRIM_HORIZON:
        *off = mv->lo;
        return 0;
    case ESM_MOVE_LATEST:
        *off = mv->hi;
        return 0;
    case ESM_MOVE_AT_OFFSET:
        if (!parse_i64(to->value, INT64_MAX, off)) {
            esm_err_set(err, ESM_ERR_INVALID, false, "offset must be a number >= 0");
            return -1;
        }
        if (*off < mv->lo || *off > mv->hi) {
            esm_err_set(err, ESM_ERR_INVALID, false,
                        "offset %" PRId64 " is outside the partition's log: from %" PRId64
                        " (its first record) to %" PRId64 " (its end)",
                        *off, mv->lo, mv->hi);
            return -1;
        }
        return 0;
    case ESM_MOVE_AT_TIMESTAMP: {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, mv->m->topic, mv->partition)->offset =
            to->timestamp_ms;
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(mv->rk, l, remaining(mv));
        if (!e) e = l->elems[0].err;
        /* -1: no record at or after the time: the end */
        *off = l->elems[0].offset >= 0 ? l->elems[0].offset : mv->hi;
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            esm_err_set(err, ESM_ERR_IO, true, "offsets for AT_TIMESTAMP failed: %s",
                        rd_kafka_err2str(e));
            return -1;
        }
        return 0;
    }
    case ESM_MOVE_AT_SEQUENCE_NUMBER:
        break;
    }
    esm_err_set(err, ESM_ERR_INVALID, false,
                "a Kafka partition moves to TRIM_HORIZON, LATEST, AT_TIMESTAMP or AT_OFFSET");
    return -1;
}

/* The group's committed offset of the partition (-1 none); -2 when it cannot be read. */
static int64_t committed(mover *mv)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, mv->m->topic, mv->partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(mv->rk, l, remaining(mv));
    int64_t v = e || l->elems[0].err ? -2 : l->elems[0].offset >= 0 ? l->elems[0].offset : -1;
    rd_kafka_topic_partition_list_destroy(l);
    return v;
}

static rd_kafka_resp_err_t commit(mover *mv, int64_t off)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, mv->m->topic, mv->partition)->offset = off;
    rd_kafka_resp_err_t e = rd_kafka_commit(mv->rk, l, 0);
    if (!e) e = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

static int move_to(mover *mv, esm_store *store, const char *lane, int64_t off, int64_t before,
                   esm_err *err)
{
    rd_kafka_resp_err_t e = commit(mv, off);
    if (e) {
        bool member = e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
                      e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
                      e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS;
        esm_err_set(err, member ? ESM_ERR_PEER : ESM_ERR_IO, !member,
                    "consumer group %s refused the new offset (%s)%s; nothing was moved",
                    esm_kafka_group_id(mv->m), rd_kafka_err2str(e),
                    member ? ": another consumer is a member of the group; stop it (or wait "
                             "for its session to time out) and try again"
                           : "");
        return -1;
    }
    char *key = esm_kafka_source_key(mv->m);
    char pos[24];
    snprintf(pos, sizeof pos, "%" PRId64, off);
    int rc = key ? esm_store_checkpoint_set(store, mv->m->uuid, key, lane, pos, NULL, err) : -1;
    if (!key) esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
    if (rc == 0 && esm_store_lane_confirm(store, mv->m->uuid, key, lane, err) < 0) rc = -1;
    free(key);
    if (rc == 0) return 0;
    /* the group goes back where the store still is */
    if (before >= 0) commit(mv, before);
    return -1;
}

int esm_kafka_move(const esm_mapping_config *m, esm_store *store, const char *lane,
                   const esm_move_target *to, esm_buf *out, esm_err *err)
{
    mover mv = {.m = m, .deadline_ms = esm_now_ms() + ESM_KAFKA_MOVE_TIMEOUT_MS};
    int64_t partition, off;
    if (!parse_i64(lane, INT32_MAX, &partition)) {
        esm_err_set(err, ESM_ERR_INVALID, false, "a Kafka lane is a partition number");
        return -1;
    }
    mv.partition = (int32_t)partition;
    if (to->kind == ESM_MOVE_AT_SEQUENCE_NUMBER) return target_offset(&mv, to, &off, err);
    if (open_client(&mv, err) != 0) return -1;
    int ret = -1;
    if (read_log(&mv, err) != 0 || target_offset(&mv, to, &off, err) != 0) goto out;
    int64_t before = committed(&mv);
    if (before < -1) {
        esm_err_set(err, ESM_ERR_IO, true, "cannot read consumer group %s's committed offset",
                    esm_kafka_group_id(m));
        goto out;
    }
    if (move_to(&mv, store, lane, off, before, err) != 0) goto out;
    esm_buf_printf(out, ",\"Lane\":\"%" PRId32 "\",\"Previous\":", mv.partition);
    if (before >= 0)
        esm_buf_printf(out, "\"%" PRId64 "\"", before);
    else
        esm_buf_puts(out, "null");
    esm_buf_printf(out,
                   ",\"Position\":\"%" PRId64 "\",\"LogStart\":%" PRId64 ",\"LogEnd\":%" PRId64,
                   off, mv.lo, mv.hi);
    ret = 0;
out:
    rd_kafka_destroy_flags(mv.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return ret;
}
