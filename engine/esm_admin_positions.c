#include "engine/esm_admin_positions.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "engine/esm_admin_reply.h"
#include "engine/esm_mapping.h"
#include "pollers/esm_source.h"

/* The targets, by their AWS names, and the argument each one takes (NULL: none). */
static const struct {
    const char *name;
    esm_move_kind kind;
    const char *arg;
} targets[] = {
    {"TRIM_HORIZON", ESM_MOVE_TRIM_HORIZON, NULL},
    {"LATEST", ESM_MOVE_LATEST, NULL},
    {"AT_TIMESTAMP", ESM_MOVE_AT_TIMESTAMP, "timestamp"},
    {"AT_SEQUENCE_NUMBER", ESM_MOVE_AT_SEQUENCE_NUMBER, "sequence_number"},
    {"AT_OFFSET", ESM_MOVE_AT_OFFSET, "offset"},
};

static const esm_admin_mapping *find(const esm_admin_mapping *maps, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(maps[i].mc->uuid, uuid) == 0) return &maps[i];
    return NULL;
}

/* Epoch seconds (fractions allowed) or ISO 8601, as the AWS CLI takes a timestamp. */
static bool parse_timestamp(const char *v, int64_t *ms)
{
    /* not before 1970: Kafka's offsetsForTimes reads -1 and -2 as "latest" and "earliest" */
    if (esm_parse_iso8601_ms(v, ms)) return *ms >= 0;
    char *end;
    errno = 0;
    double secs = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(secs) || secs < 0 || secs > 1e11) return false;
    *ms = (int64_t)llround(secs * 1000.0);
    return true;
}

static unsigned status_of(const esm_err *err)
{
    switch (err->code) {
    case ESM_ERR_INVALID:
        return 400;
    case ESM_ERR_NOT_FOUND:
        return 404;
    case ESM_ERR_PEER:
        return 409;
    case ESM_ERR_IO:
        return 503;
    default:
        return 500;
    }
}

static void list_lanes(esm_store *store, const esm_admin_mapping *am, esm_buf *out, esm_err *err,
                       int *rc)
{
    const esm_mapping_config *mc = am->mc;
    const esm_source_ops *ops = esm_source_ops_for(mc->source);
    esm_mapping_identity_json(mc, out);
    esm_buf_puts(out, ",\"State\":");
    esm_buf_json_cstr(out, am->state);
    esm_buf_puts(out, ",\"PositionMeans\":");
    esm_buf_json_cstr(out, ops && ops->move ? ops->position_means : NULL);
    esm_buf_puts(out, ",\"Lanes\":");
    char *key = ops && ops->source_key ? ops->source_key(mc) : NULL;
    esm_store_lane *lanes = NULL;
    size_t n = 0;
    if (!key) {
        esm_buf_puts(out, "null}"); /* SQS: the queue holds what is not deleted */
        return;
    }
    if (esm_store_checkpoint_list(store, mc->uuid, key, &lanes, &n, err) != 0) *rc = -1;
    free(key);
    esm_buf_putc(out, '[');
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        const esm_store_lane *l = &lanes[i];
        if (l->lane[0] == '@') continue; /* a source's own marker, not a lane */
        char at[25];
        esm_iso8601_ms(l->updated_at_ms, at);
        esm_buf_puts(out, first ? "{\"Lane\":" : ",{\"Lane\":");
        first = false;
        esm_buf_json_cstr(out, l->lane);
        esm_buf_puts(out, ",\"Position\":");
        esm_buf_json_cstr(out, l->position);
        esm_buf_puts(out, ",\"StartAt\":");
        esm_buf_json_cstr(out, l->start_at);
        esm_buf_printf(out, ",\"Finished\":%s,\"UpdatedAt\":\"%s\"}",
                       l->finished ? "true" : "false", at);
    }
    esm_buf_puts(out, "]}");
    esm_store_lanes_free(lanes, n);
}

static unsigned list(esm_store *store, const esm_admin_mapping *maps, size_t n,
                     esm_admin_arg_fn get_arg, void *req, esm_buf *out)
{
    const char *only = get_arg(req, "mapping");
    if (only && !find(maps, n, only)) return esm_admin_fail(out, 404, "no mapping with this UUID");
    esm_err err;
    esm_err_clear(&err);
    int rc = 0;
    esm_buf body;
    esm_buf_init(&body);
    esm_buf_puts(&body, "{\"EventSourceMappings\":[");
    bool first = true;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (only && strcmp(maps[i].mc->uuid, only) != 0) continue;
        if (!first) esm_buf_putc(&body, ',');
        first = false;
        list_lanes(store, &maps[i], &body, &err, &rc);
    }
    esm_buf_puts(&body, "]}");
    unsigned status = rc == 0 ? 200 : esm_admin_fail(out, 500, err.message);
    if (rc == 0) esm_buf_append(out, body.data, body.len);
    esm_buf_free(&body);
    return status;
}

/* Reads to= and its argument into *to; 0, or an HTTP status with out written. */
static unsigned read_target(esm_admin_arg_fn get_arg, void *req, esm_move_target *to,
                            const char **name, esm_buf *out)
{
    const char *t = get_arg(req, "to");
    for (size_t i = 0; t && i < sizeof targets / sizeof targets[0]; i++) {
        if (strcmp(t, targets[i].name) != 0) continue;
        *name = targets[i].name;
        to->kind = targets[i].kind;
        if (!targets[i].arg) return 0;
        const char *v = get_arg(req, targets[i].arg);
        char msg[96];
        snprintf(msg, sizeof msg, "to=%s needs %s=", t, targets[i].arg);
        if (!v || !*v) return esm_admin_fail(out, 400, msg);
        if (to->kind == ESM_MOVE_AT_TIMESTAMP && !parse_timestamp(v, &to->timestamp_ms))
            return esm_admin_fail(out, 400,
                                  "timestamp must be epoch seconds or an ISO 8601 time such as "
                                  "2024-05-01T12:00:00Z (send a + of an offset as %2B), not "
                                  "before 1970");
        to->value = v;
        return 0;
    }
    return esm_admin_fail(out, 400,
                          "to must be TRIM_HORIZON, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER "
                          "(Kinesis) or AT_OFFSET (Kafka)");
}

static unsigned move(esm_store *store, const esm_admin_mapping *maps, size_t n,
                     esm_admin_arg_fn get_arg, void *req, esm_buf *out)
{
    const char *uuid = get_arg(req, "mapping"), *lane = get_arg(req, "lane");
    if (!uuid || !*uuid) return esm_admin_fail(out, 400, "mapping= (a mapping's UUID) is missing");
    const esm_admin_mapping *am = find(maps, n, uuid);
    if (!am) return esm_admin_fail(out, 404, "no mapping with this UUID");
    const esm_source_ops *ops = esm_source_ops_for(am->mc->source);
    if (!ops || !ops->move)
        return esm_admin_fail(out, 400,
                              "an SQS mapping has no positions: the queue keeps every message "
                              "until it is deleted");
    if (!lane || !*lane)
        return esm_admin_fail(out, 400, "lane= (a shard id or a partition number) is missing");
    esm_move_target to = {0};
    const char *name = NULL;
    unsigned bad = read_target(get_arg, req, &to, &name, out);
    if (bad) return bad;
    if (am->running) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the mapping is %s: set its Enabled to false, reload, and move its lanes once "
                 "its State is Disabled",
                 am->state);
        return esm_admin_fail(out, 409, msg);
    }
    esm_err err;
    esm_err_clear(&err);
    esm_buf done;
    esm_buf_init(&done);
    int rc = ops->move(am->mc, store, lane, &to, &done, &err);
    unsigned status = 200;
    if (rc != 0) {
        ESM_WARN(NULL, "mapping %s: moving lane %.64s to %s refused: %s", uuid, lane, name,
                 err.message);
        status = esm_admin_fail(out, status_of(&err), err.message);
    } else {
        ESM_INFO(NULL, "mapping %s: an operator moved lane %.64s to %s%s%.64s", uuid, lane, name,
                 to.value ? " " : "", to.value ? to.value : "");
        esm_buf_puts(out, "{\"UUID\":");
        esm_buf_json_cstr(out, uuid);
        esm_buf_puts(out, ",\"To\":");
        esm_buf_json_cstr(out, name);
        esm_buf_append(out, done.data, done.len);
        esm_buf_putc(out, '}');
    }
    esm_buf_free(&done);
    return status;
}

unsigned esm_admin_positions(esm_store *store, const esm_admin_mapping *maps, size_t n,
                             bool do_move, esm_admin_arg_fn get_arg, void *req, esm_buf *out)
{
    if (!store) return esm_admin_fail(out, 503, "the state store is not open");
    return do_move ? move(store, maps, n, get_arg, req, out)
                   : list(store, maps, n, get_arg, req, out);
}
