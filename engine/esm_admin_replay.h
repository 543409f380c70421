/* The admin endpoints of replay jobs (docs/operations.md "Replaying failure records"):
 *   GET  /replay                  200 {"Replays":[job, ...]} (engine/esm_replay.h status)
 *   POST /replay/start?mapping=UUID&from=DEST[&limit=N]
 *        202 the new job; 400 a bad argument; 404 no such mapping; 409 a job of the mapping
 *        is still running
 *   POST /replay/cancel?id=N      200 the job, stopped; 404 no such job */
#ifndef ESM_ADMIN_REPLAY_H
#define ESM_ADMIN_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/esm_admin.h"
#include "engine/esm_replay.h"

#define ESM_ADMIN_REPLAYS_KEPT 32 /* finished jobs still listed */

typedef struct {
    esm_replay **v;
    size_t n, cap;
    unsigned next_id;
} esm_replays;

typedef enum {
    ESM_ADMIN_REPLAY_LIST,
    ESM_ADMIN_REPLAY_START,
    ESM_ADMIN_REPLAY_CANCEL
} esm_admin_replay_op;

/* The running generation and config of a mapping; false when there is no such mapping. */
typedef bool (*esm_admin_mapping_find)(void *arg, const char *uuid, esm_generation **gen,
                                       const esm_mapping_config **mc);

/* base: loop and sqs (the rest is filled in here). Returns the HTTP status, out gets JSON. */
unsigned esm_admin_replay(esm_replays *jobs, esm_admin_replay_op op, const esm_replay_options *base,
                          esm_admin_mapping_find find, void *find_arg, esm_admin_arg_fn get_arg,
                          void *req, esm_buf *out);
void esm_replays_free(esm_replays *jobs);

#endif
