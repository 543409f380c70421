/* An operator moves a partition of a mapping that is not running (docs/operations.md "Moving a
 * position"). The target becomes an offset here, with a consumer of its own (the mapping's
 * cluster, credentials and group): the partition's log bounds, offsetsForTimes for
 * AT_TIMESTAMP, and LATEST as the log end at the time of the move (nothing written after it is
 * skipped). The group's committed offset is written first: while another consumer is a member
 * of the group the broker refuses it, and nothing has changed. Then the store's checkpoint,
 * confirmed (the group holds it), in one transaction; if the store refuses, the group gets its
 * old offset back. The calls block the loop, each bounded by what is left of
 * ESM_KAFKA_MOVE_TIMEOUT_MS (a cluster that does not answer holds it that long, plus its
 * client's shutdown). */
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
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", ESM_KAFKA_MOVE_TIMEOUT_MS);
    /* a static member's id would fence the mapping's own membership; no request may wait
     * longer than the move */
    esm_kafka_props_unset(&props, "group.instance.id");
    int rc = esm_kafka_props_set(&props, "enable.auto.commit", "false", false) ||
                     esm_kafka_props_set(&props, "socket.timeout.ms", timeout, false)
                 ? -1
                 : 0;
    if (rc != 0) esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rc == 0) rc = esm_kafka_conf_apply(conf, &props, "positions", err);
    esm_kafka_props_free(&props);
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

/* Commits off for the partition, waiting at most for the rest of the move's time (a plain
 * rd_kafka_commit waits as long as the coordinator takes). RD_KAFKA_RESP_ERR__TIMED_OUT: the
 * outcome is not known. */
static rd_kafka_resp_err_t commit(mover *mv, int64_t off)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(mv->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, mv->m->topic, mv->partition)->offset = off;
    rd_kafka_resp_err_t e = rd_kafka_commit_queue(mv->rk, l, q, NULL, NULL);
    rd_kafka_topic_partition_list_destroy(l);
    while (!e) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, remaining(mv));
        if (!ev) {
            e = RD_KAFKA_RESP_ERR__TIMED_OUT;
            break;
        }
        if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT) {
            rd_kafka_event_destroy(ev);
            if (mv->deadline_ms <= esm_now_ms()) e = RD_KAFKA_RESP_ERR__TIMED_OUT;
            continue;
        }
        e = rd_kafka_event_error(ev);
        const rd_kafka_topic_partition_list_t *done = rd_kafka_event_topic_partition_list(ev);
        if (!e && done && done->cnt > 0) e = done->elems[0].err;
        rd_kafka_event_destroy(ev);
        break;
    }
    rd_kafka_queue_destroy(q);
    return e;
}

/* How a refused commit is reported: another member holds the group (409), the group may not
 * be written (409: the cluster's ACLs), or the cluster did not answer in time (503). */
static void refused(mover *mv, rd_kafka_resp_err_t e, esm_err *err)
{
    bool member =
        e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
        e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
    bool denied = e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
                  e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    const char *group = esm_kafka_group_id(mv->m);
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT)
        esm_err_set(err, ESM_ERR_IO, true,
                    "consumer group %s did not answer the commit within %d ms: whether it took "
                    "the new offset is not known (the store was not changed); look at the "
                    "group's offsets and move again",
                    group, ESM_KAFKA_MOVE_TIMEOUT_MS);
    else
        esm_err_set(err, member || denied ? ESM_ERR_PEER : ESM_ERR_IO, !(member || denied),
                    "consumer group %s refused the new offset (%s)%s; nothing was moved", group,
                    rd_kafka_err2str(e),
                    member   ? ": another consumer is a member of the group; stop it (or wait "
                               "for its session to time out) and try again"
                    : denied ? ": esmd's credentials may not commit offsets of this group"
                             : "");
}

static int move_to(mover *mv, esm_store *store, const char *lane, int64_t off, int64_t before,
                   esm_err *err)
{
    rd_kafka_resp_err_t e = commit(mv, off);
    if (e) {
        refused(mv, e, err);
        return -1;
    }
    char *key = esm_kafka_source_key(mv->m);
    char pos[24];
    snprintf(pos, sizeof pos, "%" PRId64, off);
    esm_store_move step = {.position = pos, .confirmed = true};
    if (!key) esm_err_set(err, ESM_ERR_NOMEM, false, "out of memory");
    int rc = key ? esm_store_lane_move(store, mv->m->uuid, key, lane, &step, err) : -1;
    free(key);
    if (rc == 0) return 0;
    /* the group goes back where the store still is */
    char why[sizeof err->message];
    snprintf(why, sizeof why, "%s", err->message);
    e = before >= 0 ? commit(mv, before) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    esm_err_set(err, ESM_ERR_IO, true, "the store refused the move (%.300s); %s", why,
                !e ? "the group's offset was set back: nothing was moved"
                   : "the group keeps the new offset: move again once the store can be written");
    return -1;
}

int esm_kafka_move(const esm_mapping_config *m, esm_store *store, const char *lane,
                   const esm_move_target *to, esm_buf *out, esm_err *err)
{
    mover mv = {.m = m, .deadline_ms = esm_now_ms() + ESM_KAFKA_MOVE_TIMEOUT_MS};
    int64_t partition, off;
    char canonical[24] = "";
    bool ok = parse_i64(lane, INT32_MAX, &partition);
    if (ok) snprintf(canonical, sizeof canonical, "%" PRId64, partition);
    if (!ok || strcmp(canonical, lane) != 0) {
        /* "05" would commit partition 5 but name another store row than the poller's */
        esm_err_set(err, ESM_ERR_INVALID, false,
                    "a Kafka lane is a partition number, written without leading zeros");
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
