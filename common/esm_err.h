/* Errors carry a code, whether retrying can help, and a message for logs and status. */
#ifndef ESM_ERR_H
#define ESM_ERR_H

#include <stdbool.h>

typedef enum {
    ESM_OK = 0,
    ESM_ERR_INVALID,   /* bad input: config, record, response */
    ESM_ERR_IO,        /* storage or network failed */
    ESM_ERR_NOMEM,     /* allocation failed */
    ESM_ERR_NOT_FOUND, /* peer says the resource does not exist */
    ESM_ERR_PEER,      /* peer answered with an error */
    ESM_ERR_INTERNAL,
} esm_err_code;

typedef struct {
    esm_err_code code;
    bool retriable;
    char message[512];
} esm_err;

void esm_err_set(esm_err *err, esm_err_code code, bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void esm_err_clear(esm_err *err);

#endif
