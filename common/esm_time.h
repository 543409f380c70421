/* Wall-clock helpers. The policy never reads the clock; callers pass "now" in. */
#ifndef ESM_TIME_H
#define ESM_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/esm_buf.h"

/* Milliseconds since the Unix epoch. */
int64_t esm_now_ms(void);
/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL) for epoch milliseconds. */
void esm_iso8601_ms(int64_t epoch_ms, char out[25]);
/* Appends epoch milliseconds as a JSON string in esm_iso8601_ms's form; null when ms <= 0 (not
 * known, not happened). */
void esm_buf_json_time(esm_buf *b, int64_t ms);
/* Reads "2024-05-01T12:00:00Z", with optional .fff and a Z or +hh:mm offset, into epoch
 * milliseconds; false when s is not such a time. */
bool esm_parse_iso8601_ms(const char *s, int64_t *out);
/* A random UUID v4 string (36 chars + NUL). */
void esm_uuid4(char out[37]);

#endif
