#include "engine/esm_admin_reply.h"

#include <errno.h>
#include <stdlib.h>

unsigned esm_admin_fail(esm_buf *out, unsigned status, const char *msg)
{
    esm_buf_puts(out, "{\"error\":");
    esm_buf_json_cstr(out, msg);
    esm_buf_putc(out, '}');
    return status;
}

bool esm_admin_int_arg(esm_admin_arg_fn get_arg, void *req, const char *name, long long min,
                       long long max, long long dflt, long long *out)
{
    const char *v = get_arg(req, name);
    *out = dflt;
    if (!v) return true;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) return false;
    *out = n;
    return true;
}
