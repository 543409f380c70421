#include "engine/esm_admin_replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/esm_admin_reply.h"

static esm_replay *by_id(const esm_replays *jobs, long long id)
{
    for (size_t i = 0; i < jobs->n; i++)
        if (esm_replay_id(jobs->v[i]) == id) return jobs->v[i];
    return NULL;
}

/* Makes room for one more job: the oldest finished one goes once ESM_ADMIN_REPLAYS_KEPT are. */
static bool make_room(esm_replays *jobs)
{
    size_t finished = 0;
    for (size_t i = 0; i < jobs->n; i++)
        finished += !esm_replay_running(jobs->v[i]);
    for (size_t i = 0; finished >= ESM_ADMIN_REPLAYS_KEPT && i < jobs->n; i++) {
        if (esm_replay_running(jobs->v[i])) continue;
        esm_replay_destroy(jobs->v[i]);
        memmove(&jobs->v[i], &jobs->v[i + 1], (jobs->n - i - 1) * sizeof jobs->v[0]);
        jobs->n--;
        break;
    }
    if (jobs->n < jobs->cap) return true;
    size_t cap = jobs->cap ? jobs->cap * 2 : 8;
    esm_replay **v = realloc(jobs->v, cap * sizeof *v);
    if (!v) return false;
    jobs->v = v;
    jobs->cap = cap;
    return true;
}

static unsigned start(esm_replays *jobs, const esm_replay_options *base,
                      esm_admin_mapping_find find, void *find_arg, esm_admin_arg_fn get_arg,
                      void *req, esm_buf *out)
{
    const char *uuid = get_arg(req, "mapping"), *from = get_arg(req, "from");
    if (!uuid || !*uuid) return esm_admin_fail(out, 400, "mapping= (a mapping's UUID) is missing");
    if (!from || !*from)
        return esm_admin_fail(out, 400,
                              "from= (the file:///ABSOLUTE/PATH or SQS queue ARN the failure "
                              "records were delivered to) is missing");
    long long limit;
    if (!esm_admin_int_arg(get_arg, req, "limit", 1, ESM_REPLAY_LIMIT_MAX, ESM_REPLAY_LIMIT_DEFAULT,
                           &limit))
        return esm_admin_fail(out, 400, "limit must be a number from 1 to 1000000");
    esm_replay_options o = *base;
    if (!find(find_arg, uuid, &o.gen, &o.mc))
        return esm_admin_fail(out, 404, "no mapping with this UUID");
    for (size_t i = 0; i < jobs->n; i++)
        if (esm_replay_running(jobs->v[i]) && strcmp(esm_replay_mapping(jobs->v[i]), uuid) == 0) {
            char msg[120];
            snprintf(msg, sizeof msg, "replay %u of this mapping is still running",
                     esm_replay_id(jobs->v[i]));
            return esm_admin_fail(out, 409, msg);
        }
    if (!make_room(jobs)) return esm_admin_fail(out, 500, "out of memory");
    o.from = from;
    o.limit = limit;
    o.id = ++jobs->next_id;
    esm_err err;
    esm_err_clear(&err);
    esm_replay *r = esm_replay_start(&o, &err);
    if (!r) return esm_admin_fail(out, err.code == ESM_ERR_INVALID ? 400 : 500, err.message);
    jobs->v[jobs->n++] = r;
    esm_replay_status(r, out);
    return 202;
}

unsigned esm_admin_replay(esm_replays *jobs, esm_admin_replay_op op, const esm_replay_options *base,
                          esm_admin_mapping_find find, void *find_arg, esm_admin_arg_fn get_arg,
                          void *req, esm_buf *out)
{
    if (op == ESM_ADMIN_REPLAY_START) return start(jobs, base, find, find_arg, get_arg, req, out);
    if (op == ESM_ADMIN_REPLAY_CANCEL) {
        long long id;
        if (!esm_admin_int_arg(get_arg, req, "id", 1, 0xffffffffLL, 0, &id) || !id)
            return esm_admin_fail(out, 400, "id= (a replay's Id) is missing or not a number");
        esm_replay *r = by_id(jobs, id);
        if (!r) return esm_admin_fail(out, 404, "no replay with this Id");
        esm_replay_cancel(r);
        esm_replay_status(r, out);
        return 200;
    }
    esm_buf_puts(out, "{\"Replays\":[");
    for (size_t i = 0; i < jobs->n; i++) {
        if (i) esm_buf_putc(out, ',');
        esm_replay_status(jobs->v[i], out);
    }
    esm_buf_puts(out, "]}");
    return 200;
}

void esm_replays_free(esm_replays *jobs)
{
    for (size_t i = 0; i < jobs->n; i++)
        esm_replay_destroy(jobs->v[i]);
    free(jobs->v);
    memset(jobs, 0, sizeof *jobs);
}
