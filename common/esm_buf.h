/* A growable byte buffer: events, request bodies and failure records are built straight into
 * one of these instead of through cJSON object trees. */
#ifndef ESM_BUF_H
#define ESM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; the content is incomplete */
} esm_buf;

void esm_buf_init(esm_buf *b);
void esm_buf_free(esm_buf *b);
void esm_buf_reset(esm_buf *b);
bool esm_buf_reserve(esm_buf *b, size_t extra);
void esm_buf_append(esm_buf *b, const void *data, size_t len);
void esm_buf_puts(esm_buf *b, const char *s);
void esm_buf_putc(esm_buf *b, char c);
void esm_buf_printf(esm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append an integer in decimal, as printf's PRId64 / PRIu64 would, without printf. */
void esm_buf_put_i64(esm_buf *b, int64_t v);
/* Writes v in decimal at out (no NUL; at most ESM_FMT_I64_MAX bytes); returns the length. */
#define ESM_FMT_I64_MAX 20
size_t esm_fmt_i64(char *out, int64_t v);
void esm_buf_put_u64(esm_buf *b, uint64_t v);
/* Appends s[0..len) as a JSON string literal, quotes included. Invalid UTF-8 bytes become
 * U+FFFD so the output is always valid JSON. */
void esm_buf_json_str(esm_buf *b, const char *s, size_t len);
void esm_buf_json_cstr(esm_buf *b, const char *s);
/* Appends the base64 encoding of data[0..len). */
void esm_buf_base64(esm_buf *b, const void *data, size_t len);
/* Returns a NUL-terminated view of the content (the NUL is not counted in len). */
const char *esm_buf_cstr(esm_buf *b);

/* Decodes standard base64 into out (capacity >= len*3/4+3); returns the length or -1. */
long esm_base64_decode(const char *in, size_t len, unsigned char *out);

#endif
