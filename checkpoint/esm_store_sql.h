/* All SQL of the state store, in one place (the Fluent Bit tail_sql.h pattern).
 * Internal to checkpoint/: nothing outside the module includes this. */
#ifndef ESM_STORE_SQL_H
#define ESM_STORE_SQL_H

/* 'esmd' in ASCII: marks the file as ours (PRAGMA application_id). */
#define ESM_STORE_APPLICATION_ID 0x65736d64

/* The version table exists before any migration runs; one row per applied migration. */
#define SQL_SCHEMA_TABLE                                                                           \
    "CREATE TABLE IF NOT EXISTS esmd_schema ("                                                     \
    " version INTEGER PRIMARY KEY,"                                                                \
    " description TEXT NOT NULL,"                                                                  \
    " applied_at_ms INTEGER NOT NULL)"
#define SQL_SCHEMA_VERSION "SELECT coalesce(max(version), 0) FROM esmd_schema"
#define SQL_SCHEMA_RECORD                                                                          \
    "INSERT INTO esmd_schema (version, description, applied_at_ms) VALUES (?1, ?2, ?3)"
#define SQL_HAS_SCHEMA_TABLE                                                                       \
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'esmd_schema'"
#define SQL_COUNT_TABLES "SELECT count(*) FROM sqlite_master WHERE type = 'table'"

/* Migration 1: everything. Lanes are keyed by (mapping, source, lane), never by a reusable id
 * alone (docs/design.md "Checkpoint store"). Outbox ids use AUTOINCREMENT so an id is never reused:
 * a drainer holding the id of a delivered row can never delete a newer one. */
#define SQL_MIGRATION_1                                                                            \
    "PRAGMA application_id = 1702063460;" /* ESM_STORE_APPLICATION_ID */                           \
    "CREATE TABLE esmd_meta ("                                                                     \
    " key TEXT PRIMARY KEY,"                                                                       \
    " value TEXT NOT NULL) WITHOUT ROWID;"                                                         \
    "CREATE TABLE lane_checkpoint ("                                                               \
    " mapping TEXT NOT NULL,"                                                                      \
    " source TEXT NOT NULL,"                                                                       \
    " lane TEXT NOT NULL,"                                                                         \
    " position TEXT,"                                                                              \
    " state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'finished')),"                   \
    " parents TEXT,"                                                                               \
    " updated_at_ms INTEGER NOT NULL,"                                                             \
    " PRIMARY KEY (mapping, source, lane)) WITHOUT ROWID;"                                         \
    "CREATE TABLE lane_batch ("                                                                    \
    " mapping TEXT NOT NULL,"                                                                      \
    " source TEXT NOT NULL,"                                                                       \
    " lane TEXT NOT NULL,"                                                                         \
    " first_id TEXT NOT NULL,"                                                                     \
    " last_id TEXT NOT NULL,"                                                                      \
    " policy_state TEXT NOT NULL,"                                                                 \
    " updated_at_ms INTEGER NOT NULL,"                                                             \
    " PRIMARY KEY (mapping, source, lane)) WITHOUT ROWID;"                                         \
    "CREATE TABLE lane_window ("                                                                   \
    " mapping TEXT NOT NULL,"                                                                      \
    " source TEXT NOT NULL,"                                                                       \
    " lane TEXT NOT NULL,"                                                                         \
    " window_start_ms INTEGER NOT NULL,"                                                           \
    " state TEXT NOT NULL CHECK (json_valid(state)),"                                              \
    " updated_at_ms INTEGER NOT NULL,"                                                             \
    " PRIMARY KEY (mapping, source, lane)) WITHOUT ROWID;"                                         \
    "CREATE TABLE outbox ("                                                                        \
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"                                                       \
    " mapping TEXT NOT NULL,"                                                                      \
    " destination TEXT NOT NULL CHECK (length(destination) > 0),"                                  \
    " payload TEXT NOT NULL CHECK (json_valid(payload)),"                                          \
    " msg_key BLOB,"                                                                               \
    " created_at_ms INTEGER NOT NULL,"                                                             \
    " attempts INTEGER NOT NULL DEFAULT 0,"                                                        \
    " next_attempt_at_ms INTEGER NOT NULL,"                                                        \
    " last_error TEXT);"                                                                           \
    "CREATE INDEX outbox_due ON outbox (next_attempt_at_ms, id);"                                  \
    "CREATE INDEX outbox_mapping ON outbox (mapping);"

/* Migration 2: parked rows and dedupe keys (docs/operations.md "Parked failure records").
 * A row a destination refused for good gets parked_at_ms / park_reason: it stays in the store
 * but is no longer due, so the rows behind it flow on. outbox_dedupe holds one key per source
 * record (an SQS message) from its first failure record until expires_at_ms, after delivery
 * too: a message that comes back cannot produce a second record. */
#define SQL_MIGRATION_2                                                                            \
    "ALTER TABLE outbox ADD COLUMN parked_at_ms INTEGER;"                                          \
    "ALTER TABLE outbox ADD COLUMN park_reason TEXT;"                                              \
    "DROP INDEX outbox_due;"                                                                       \
    "CREATE INDEX outbox_due ON outbox (next_attempt_at_ms, id) WHERE parked_at_ms IS NULL;"       \
    "CREATE INDEX outbox_parked ON outbox (id) WHERE parked_at_ms IS NOT NULL;"                    \
    "CREATE TABLE outbox_dedupe ("                                                                 \
    " key TEXT PRIMARY KEY,"                                                                       \
    " mapping TEXT NOT NULL,"                                                                      \
    " created_at_ms INTEGER NOT NULL,"                                                             \
    " expires_at_ms INTEGER NOT NULL) WITHOUT ROWID;"                                              \
    "CREATE INDEX outbox_dedupe_expiry ON outbox_dedupe (expires_at_ms);"

/* Migration 3: whether the source's own position store has confirmed a lane's checkpoint
 * (Kafka: the consumer group committed an offset of the partition; docs/operations.md "Kafka log
 * re-created"). A checkpoint never confirmed explains a group without offsets (commits failed,
 * or esmd stopped before the first one); a confirmed one the group lost belongs to an old log.
 * Rows of earlier schemas count as confirmed: they keep the stricter reading they had. */
#define SQL_MIGRATION_3                                                                            \
    "ALTER TABLE lane_checkpoint ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;"                 \
    "UPDATE lane_checkpoint SET confirmed = 1 WHERE position IS NOT NULL;"

/* Migration 4: where an operator moved a lane (docs/operations.md "Moving a position"): the
 * iterator the lane starts with while it has no checkpoint ("TRIM_HORIZON", "LATEST",
 * "AT_TIMESTAMP:<ms>", "AT_SEQUENCE_NUMBER:<seq>"). The lane's first checkpoint clears it. */
#define SQL_MIGRATION_4 "ALTER TABLE lane_checkpoint ADD COLUMN start_at TEXT;"

/* The prepared statements kept for the life of the store: X(name, sql). */
#define ESM_STORE_STATEMENTS(X)                                                                    \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SAVEPOINT, "SAVEPOINT step")                                                                 \
    X(RELEASE, "RELEASE step")                                                                     \
    X(ROLLBACK_TO, "ROLLBACK TO step")                                                             \
    X(META_PUT, "INSERT OR REPLACE INTO esmd_meta (key, value) VALUES (?1, ?2)")                   \
    X(SCHEMA_VERSION, SQL_SCHEMA_VERSION)                                                          \
    X(LANE_GET,                                                                                    \
      "SELECT source, lane, position, state, parents, updated_at_ms, confirmed, start_at"          \
      " FROM lane_checkpoint WHERE mapping = ?1 AND source = ?2 AND lane = ?3")                    \
    X(LANE_LIST, "SELECT source, lane, position, state, parents, updated_at_ms, confirmed,"        \
                 " start_at"                                                                       \
                 " FROM lane_checkpoint WHERE mapping = ?1 AND (?2 IS NULL OR source = ?2)"        \
                 " ORDER BY source, length(lane), lane")                                           \
    X(LANE_REGISTER, "INSERT INTO lane_checkpoint (mapping, source, lane, position, state, "       \
                     "parents, updated_at_ms)"                                                     \
                     " VALUES (?1, ?2, ?3, NULL, 'open', ?4, ?5)"                                  \
                     " ON CONFLICT (mapping, source, lane) DO UPDATE"                              \
                     " SET parents = coalesce(lane_checkpoint.parents, excluded.parents)")         \
    X(LANE_ADVANCE,                                                                                \
      "INSERT INTO lane_checkpoint (mapping, source, lane, position, state, parents, "             \
      "updated_at_ms)"                                                                             \
      " VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)"                                                     \
      " ON CONFLICT (mapping, source, lane) DO UPDATE"                                             \
      " SET position = coalesce(excluded.position, lane_checkpoint.position),"                     \
      " start_at = CASE WHEN excluded.position IS NULL THEN lane_checkpoint.start_at END,"         \
      " state = CASE WHEN excluded.state = 'finished' THEN 'finished' ELSE lane_checkpoint.state"  \
      " END, updated_at_ms = excluded.updated_at_ms")                                              \
    X(LANE_SET, "INSERT INTO lane_checkpoint (mapping, source, lane, position, state, parents, "   \
                "updated_at_ms, start_at)"                                                         \
                " VALUES (?1, ?2, ?3, ?4, 'open', NULL, ?5, ?6)"                                   \
                " ON CONFLICT (mapping, source, lane) DO UPDATE"                                   \
                " SET position = excluded.position, state = 'open', confirmed = 0,"                \
                " start_at = excluded.start_at,"                                                   \
                " updated_at_ms = excluded.updated_at_ms")                                         \
    X(LANE_CONFIRM, "UPDATE lane_checkpoint SET confirmed = 1"                                     \
                    " WHERE mapping = ?1 AND source = ?2 AND lane = ?3 AND position IS NOT NULL")  \
    X(LANE_DELETE, "DELETE FROM lane_checkpoint WHERE mapping = ?1 AND source = ?2 AND lane = ?3") \
    X(MAPPING_DELETE_LANES, "DELETE FROM lane_checkpoint WHERE mapping = ?1")                      \
    X(BATCH_GET, "SELECT first_id, last_id, policy_state, updated_at_ms FROM lane_batch"           \
                 " WHERE mapping = ?1 AND source = ?2 AND lane = ?3")                              \
    X(BATCH_PUT, "INSERT OR REPLACE INTO lane_batch"                                               \
                 " (mapping, source, lane, first_id, last_id, policy_state, updated_at_ms)"        \
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                           \
    X(BATCH_DELETE, "DELETE FROM lane_batch WHERE mapping = ?1 AND source = ?2 AND lane = ?3")     \
    X(MAPPING_DELETE_BATCHES, "DELETE FROM lane_batch WHERE mapping = ?1")                         \
    X(WINDOW_GET, "SELECT window_start_ms, state FROM lane_window"                                 \
                  " WHERE mapping = ?1 AND source = ?2 AND lane = ?3")                             \
    X(WINDOW_PUT, "INSERT OR REPLACE INTO lane_window"                                             \
                  " (mapping, source, lane, window_start_ms, state, updated_at_ms)"                \
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                              \
    X(WINDOW_DELETE, "DELETE FROM lane_window WHERE mapping = ?1 AND source = ?2 AND lane = ?3")   \
    X(MAPPING_DELETE_WINDOWS, "DELETE FROM lane_window WHERE mapping = ?1")                        \
    X(OUTBOX_INSERT, "INSERT INTO outbox (mapping, destination, payload, msg_key, created_at_ms,"  \
                     " attempts, next_attempt_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5)")          \
    X(OUTBOX_DUE, "SELECT id, mapping, destination, payload, msg_key, created_at_ms, attempts,"    \
                  " next_attempt_at_ms, last_error FROM outbox"                                    \
                  " WHERE parked_at_ms IS NULL AND next_attempt_at_ms <= ?1 ORDER BY id LIMIT ?2") \
    X(OUTBOX_DELETE, "DELETE FROM outbox WHERE id = ?1")                                           \
    X(OUTBOX_RETRY, "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = ?2,"          \
                    " last_error = ?3 WHERE id = ?1")                                              \
    X(OUTBOX_DEPTH, "SELECT count(*) FROM outbox"                                                  \
                    " WHERE parked_at_ms IS NULL AND (?1 IS NULL OR mapping = ?1)")                \
    X(OUTBOX_NEXT_DUE, "SELECT min(next_attempt_at_ms) FROM outbox WHERE parked_at_ms IS NULL")    \
    X(OUTBOX_PARK, "UPDATE outbox SET attempts = attempts + 1, parked_at_ms = ?2,"                 \
                   " park_reason = ?3, last_error = ?3 WHERE id = ?1 AND parked_at_ms IS NULL")    \
    X(OUTBOX_PARKED_LIST, "SELECT id, mapping, destination, park_reason, parked_at_ms,"            \
                          " created_at_ms, length(CAST(payload AS BLOB)), attempts,"               \
                          " next_attempt_at_ms FROM outbox"                                        \
                          " WHERE parked_at_ms IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2")      \
    X(OUTBOX_PENDING_LIST, "SELECT id, mapping, destination, last_error, 0,"                       \
                           " created_at_ms, length(CAST(payload AS BLOB)), attempts,"              \
                           " next_attempt_at_ms FROM outbox"                                       \
                           " WHERE parked_at_ms IS NULL AND id > ?1 ORDER BY id LIMIT ?2")         \
    /* bare columns next to max(): SQLite takes them from the row holding the max */               \
    X(OUTBOX_PARKED_BY_DEST, "SELECT destination, count(*), max(parked_at_ms), park_reason"        \
                             " FROM outbox WHERE parked_at_ms IS NOT NULL GROUP BY destination"    \
                             " ORDER BY destination")                                              \
    X(OUTBOX_REDRIVE, "UPDATE outbox SET parked_at_ms = NULL, park_reason = NULL,"                 \
                      " next_attempt_at_ms = ?3 WHERE parked_at_ms IS NOT NULL"                    \
                      " AND (?1 = 0 OR id = ?1) AND (?2 IS NULL OR destination = ?2)")             \
    /* a key whose retention ended counts as free even before the prune removed it */              \
    X(DEDUPE_CLAIM, "INSERT INTO outbox_dedupe (key, mapping, created_at_ms, expires_at_ms)"       \
                    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE"                         \
                    " SET mapping = excluded.mapping, created_at_ms = excluded.created_at_ms,"     \
                    " expires_at_ms = excluded.expires_at_ms"                                      \
                    " WHERE outbox_dedupe.expires_at_ms <= excluded.created_at_ms")                \
    X(DEDUPE_PRUNE, "DELETE FROM outbox_dedupe WHERE expires_at_ms <= ?1")

#endif
