/* The one measure of an event's size: an envelope around records joined by ','. The batch
 * builders, the policy's oversize check and the lane all measure with it, and the sources'
 * renderers write exactly these bytes, so "fits in a batch" is "the invoker accepts it"
 * (docs/design.md "Event size"). */
#ifndef ESM_EVENT_SIZE_H
#define ESM_EVENT_SIZE_H

#include <stddef.h>

/* envelope: the bytes of the event with no records (e.g. {"Records":[]} is 14);
 * records_bytes: the rendered records summed, without the n - 1 commas between them. */
static inline size_t esm_event_size(size_t envelope, size_t n_records, size_t records_bytes)
{
    return envelope + records_bytes + (n_records ? n_records - 1 : 0);
}

#endif
