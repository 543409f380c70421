#include "common/esm_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void esm_err_set(esm_err *err, esm_err_code code, bool retriable, const char *fmt, ...)
{
    if (!err) return;
    err->code = code;
    err->retriable = retriable;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void esm_err_clear(esm_err *err)
{
    if (!err) return;
    memset(err, 0, sizeof *err);
}
