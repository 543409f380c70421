/* The listings of outbox rows (GET /outbox/parked and /outbox/pending, docs/operations.md
 * "Parked failure records"): straight from the store, so they show what survived a restart. */
#include <stdbool.h>

#include "common/esm_time.h"
#include "destinations/esm_dest.h"
#include "destinations/esm_outbox.h"

int esm_outbox_rows_json(esm_store *store, bool parked, int64_t after_id, size_t limit,
                         esm_buf *json, esm_err *err)
{
    esm_outbox_row_info *rows = NULL;
    size_t n = 0;
    if (esm_store_outbox_list(store, parked, after_id, limit, &rows, &n, err) < 0) return -1;
    esm_buf_puts(json, parked ? "{\"parked\":[" : "{\"pending\":[");
    for (size_t i = 0; i < n; i++) {
        const esm_outbox_row_info *r = &rows[i];
        char shown[1024];
        esm_dest_redact(r->destination, shown, sizeof shown);
        esm_buf_printf(json, "%s{\"id\":%lld,\"mapping\":", i ? "," : "", (long long)r->id);
        esm_buf_json_cstr(json, r->mapping);
        esm_buf_puts(json, ",\"destination\":");
        esm_buf_json_cstr(json, shown);
        if (parked) {
            esm_buf_puts(json, ",\"reason\":");
            esm_buf_json_cstr(json, r->reason ? r->reason : "");
            esm_buf_puts(json, ",\"parked_at\":");
            esm_buf_json_time(json, r->parked_at_ms);
        } else {
            esm_buf_puts(json, ",\"last_error\":");
            esm_buf_json_cstr(json, r->reason);
            esm_buf_puts(json, ",\"next_attempt_at\":");
            esm_buf_json_time(json, r->next_attempt_at_ms);
        }
        esm_buf_puts(json, ",\"created_at\":");
        esm_buf_json_time(json, r->created_at_ms);
        esm_buf_printf(json, ",\"size\":%lld,\"attempts\":%d}", (long long)r->size, r->attempts);
    }
    esm_buf_puts(json, "],\"next_after\":");
    if (n == limit && n > 0)
        esm_buf_printf(json, "%lld", (long long)rows[n - 1].id);
    else
        esm_buf_puts(json, "null");
    esm_buf_putc(json, '}');
    esm_store_outbox_infos_free(rows, n);
    return 0;
}
