/* A small validating JSON tokenizer that writes a flat "tape" of tokens into reusable
 * buffers: parsing a record allocates nothing once the buffers are as big as the largest
 * input seen. Used for patterns (at compile time) and for records and payloads (per match). */
#ifndef ESM_FILTER_JSON_H
#define ESM_FILTER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ESM_FJ_OBJ = 1,
    ESM_FJ_ARR,
    ESM_FJ_STR,
    ESM_FJ_NUM,
    ESM_FJ_TRUE,
    ESM_FJ_FALSE,
    ESM_FJ_NULL,
} esm_fj_type;

/* One token. OBJ/ARR: len is the index of the first token after the container, and the
 * children follow directly (objects alternate key STR, value). STR: s/len are the decoded
 * bytes (escapes resolved, may contain NUL). NUM and literals: s/len are the raw text. */
typedef struct {
    const char *s;
    uint32_t len;
    uint8_t type;
} esm_fj_tok;

typedef struct {
    esm_fj_tok *toks;
    size_t n, cap;
    char *dec; /* decoded strings; also scratch for number conversion */
    size_t dec_len, dec_cap;
} esm_fj_tape;

/* Deepest nesting accepted (deeper input is treated as invalid JSON). */
#define ESM_FJ_MAX_DEPTH 512

void esm_fj_init(esm_fj_tape *t);
void esm_fj_free(esm_fj_tape *t);
/* Parses in[0..len) as exactly one JSON value (surrounding whitespace allowed). Returns false
 * on invalid JSON, too deep nesting, input over 4 GiB, or allocation failure. */
bool esm_fj_parse(esm_fj_tape *t, const char *in, size_t len);
/* Index of the token after token i (skips a whole container). */
static inline size_t esm_fj_next(const esm_fj_tape *t, size_t i)
{
    uint8_t ty = t->toks[i].type;
    return (ty == ESM_FJ_OBJ || ty == ESM_FJ_ARR) ? t->toks[i].len : i + 1;
}
/* The value of a NUM token as a double (uses the tape's spare scratch, no allocation). */
double esm_fj_number(esm_fj_tape *t, size_t i);
/* Same for any raw JSON number text (at most 255 bytes; longer text yields NaN). */
double esm_fj_number_text(const char *s, size_t len);
/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool esm_fj_utf8_valid(const char *s, size_t len);

#endif
