/* What the admin endpoints that answer JSON share: an error body and reading query arguments. */
#ifndef ESM_ADMIN_REPLY_H
#define ESM_ADMIN_REPLY_H

#include <stdbool.h>

#include "common/esm_buf.h"
#include "engine/esm_admin.h"

/* Writes {"error": msg} to out and returns status. */
unsigned esm_admin_fail(esm_buf *out, unsigned status, const char *msg);
/* A decimal argument in [min, max]; absent = dflt. false when malformed or out of range. */
bool esm_admin_int_arg(esm_admin_arg_fn get_arg, void *req, const char *name, long long min,
                       long long max, long long dflt, long long *out);

#endif
