/* The admin endpoints of lane positions (docs/operations.md "Moving a position"):
 *   GET  /positions[?mapping=UUID]   200 {"EventSourceMappings":[{"UUID",...,"Lanes":[...]}]}
 *   POST /positions/move?mapping=UUID&lane=L&to=T[&timestamp=..|&sequence_number=..|&offset=..]
 *        T: TRIM_HORIZON, LATEST, AT_TIMESTAMP (timestamp: ISO 8601 or epoch seconds),
 *        AT_SEQUENCE_NUMBER (Kinesis), AT_OFFSET (Kafka). 200 {"UUID",...}; 400 a bad
 *        argument or a target the lane cannot take; 404 no such mapping or lane; 409 the
 *        mapping runs (move it once its State is Disabled) or another consumer holds the lane.
 * Positions are read from the state store, so they are listed for mappings that do not run. */
#ifndef ESM_ADMIN_POSITIONS_H
#define ESM_ADMIN_POSITIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "checkpoint/esm_store.h"
#include "common/esm_buf.h"
#include "config/esm_config.h"
#include "engine/esm_admin.h"

/* A configured mapping as the daemon knows it. */
typedef struct {
    const esm_mapping_config *mc;
    const char *state; /* its AWS State */
    bool running;      /* it has a source (or is still stopping one): not movable */
} esm_admin_mapping;

/* Answers one request; returns the HTTP status, out gets JSON. */
unsigned esm_admin_positions(esm_store *store, const esm_admin_mapping *maps, size_t n, bool move,
                             esm_admin_arg_fn get_arg, void *req, esm_buf *out);

#endif
