#include "destinations/esm_backoff.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

int64_t esm_backoff_delay_ms(int64_t failures, uint64_t rnd)
{
    if (failures < 1) failures = 1;
    int64_t ceiling = ESM_BACKOFF_BASE_MS;
    for (int64_t i = 1; i < failures && ceiling < ESM_BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > ESM_BACKOFF_CAP_MS) ceiling = ESM_BACKOFF_CAP_MS;
    uint64_t span = (uint64_t)(ceiling - ESM_BACKOFF_BASE_MS) + 1;
    return ESM_BACKOFF_BASE_MS + (int64_t)(rnd % span);
}

uint64_t esm_backoff_random(void)
{
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec * 6364136223846793005ULL + (uint64_t)ts.tv_sec;
}
