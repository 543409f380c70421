/* ReportBatchItemFailures: the one parser of partial batch responses, shared by every source.
 *
 * Success (nothing failed): an empty body, `null`, `{}`, `[]`, `{"batchItemFailures":[]}`,
 * `{"batchItemFailures":null}`, and any JSON without the key.
 * Invalid (the whole batch failed): not JSON, batchItemFailures not an array, an item that is
 * not an object, an item with no / null / empty / non-string `itemIdentifier`, an identifier
 * that is not in the batch.
 * Kafka identifiers are objects {"partition":"<topic>-<N>","offset":O}, O a number or a
 * numeric string; they are matched against batch ids formatted "<topic>-<N>:<offset>". */
#ifndef ESM_RBIF_H
#define ESM_RBIF_H

#include <stddef.h>

typedef enum { ESM_RBIF_SUCCESS, ESM_RBIF_PARTIAL, ESM_RBIF_INVALID } esm_rbif_status;
typedef enum { ESM_RBIF_ID_STRING, ESM_RBIF_ID_KAFKA } esm_rbif_id_kind;

/* batch_ids: the batch's identifiers in batch order (SQS messageId, Kinesis sequenceNumber,
 * Kafka "<topic>-<partition>:<offset>"). failed_out (capacity n_ids) receives the sorted,
 * de-duplicated batch indices of the failed items; *n_failed their count (0 unless PARTIAL).
 * why (may be NULL) explains an INVALID result. Lookup is O(log n) per item. */
esm_rbif_status esm_rbif_parse(const char *body, size_t len, esm_rbif_id_kind kind,
                               const char *const *batch_ids, size_t n_ids, size_t *failed_out,
                               size_t *n_failed, char *why, size_t why_len);

const char *esm_rbif_status_name(esm_rbif_status s); /* "success" | "partial" | "invalid" */

#endif
