/* Retry delays for outbox deliveries: exponential with full jitter (pure). */
#ifndef ESM_BACKOFF_H
#define ESM_BACKOFF_H

#include <stdint.h>

#define ESM_BACKOFF_BASE_MS 1000
#define ESM_BACKOFF_CAP_MS (5 * 60 * 1000)

/* Delay before the next try after `failures` failed attempts (>= 1): uniform in
 * [base, min(cap, base * 2^(failures-1))] drawn from `rnd`. The floor of one base keeps a dead
 * destination from being hammered; the jitter spreads many rows that failed together. */
int64_t esm_backoff_delay_ms(int64_t failures, uint64_t rnd);
/* A random 64-bit value for esm_backoff_delay_ms (not for cryptography). */
uint64_t esm_backoff_random(void);

#endif
