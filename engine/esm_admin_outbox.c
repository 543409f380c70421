#include "engine/esm_admin_outbox.h"

#include "engine/esm_admin_reply.h"

unsigned esm_admin_outbox(esm_store *store, esm_outbox_drainer *outbox, esm_admin_outbox_op op,
                          esm_admin_arg_fn get_arg, void *req, esm_buf *out)
{
    if (!store || !outbox) return esm_admin_fail(out, 503, "the outbox is not running");
    esm_err err;
    esm_err_clear(&err);
    if (op != ESM_ADMIN_OUTBOX_REDRIVE) {
        long long after, limit;
        if (!esm_admin_int_arg(get_arg, req, "after", 0, INT64_MAX, 0, &after))
            return esm_admin_fail(out, 400, "after must be a row id (a number >= 0)");
        if (!esm_admin_int_arg(get_arg, req, "limit", 1, ESM_ADMIN_PARKED_LIMIT_MAX,
                               ESM_ADMIN_PARKED_LIMIT_DEFAULT, &limit))
            return esm_admin_fail(out, 400, "limit must be a number from 1 to 1000");
        if (esm_outbox_rows_json(store, op == ESM_ADMIN_OUTBOX_PARKED, after, (size_t)limit, out,
                                 &err) < 0)
            return esm_admin_fail(out, 500, err.message);
        return 200;
    }
    long long id;
    if (!esm_admin_int_arg(get_arg, req, "id", 1, INT64_MAX, 0, &id))
        return esm_admin_fail(out, 400, "id must be a row id (a number >= 1)");
    const char *dest = get_arg(req, "destination");
    if (dest && !*dest) return esm_admin_fail(out, 400, "destination is empty");
    int64_t n = esm_outbox_drainer_redrive(outbox, id, dest, &err);
    if (n < 0) return esm_admin_fail(out, 500, err.message);
    if (id && n == 0)
        return esm_admin_fail(out, 404, "no parked row with this id (and destination)");
    esm_buf_printf(out, "{\"redriven\":%lld}", (long long)n);
    return 200;
}
