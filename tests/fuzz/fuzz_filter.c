/* libFuzzer target for the filter compiler, the JSON tokenizer and the matcher.
 *
 * Input: byte 0 picks the source; the rest is split at the first two NUL bytes into
 * patterns (one per line), the record JSON, and the payload (any bytes). Besides the
 * sanitizers, it checks invariants that must hold for every input:
 *  - whatever esm_filter_compile accepts, esm_filter_validate accepts (pattern by pattern);
 *  - refusals start with "Invalid filter pattern definition.";
 *  - a set of patterns matches exactly when one of its patterns alone matches (OR);
 *  - matching twice gives the same answer (scratch reuse);
 *  - the tokenizer's tape is well formed (containers close in order, keys are strings). */
#include "filter/esm_filter.h"
#include "filter/esm_filter_json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXPAT 12

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

/* Walks one value of the tape; returns the index after it. */
static size_t walk(const esm_fj_tape *t, size_t i, size_t limit)
{
    check(i < limit, "token index in range");
    const esm_fj_tok *k = &t->toks[i];
    if (k->type != ESM_FJ_OBJ && k->type != ESM_FJ_ARR) return i + 1;
    size_t end = k->len, j = i + 1;
    check(end > i && end <= limit, "container end in range");
    while (j < end) {
        if (k->type == ESM_FJ_OBJ) {
            check(t->toks[j].type == ESM_FJ_STR, "object key is a string");
            j++;
        }
        j = walk(t, j, end);
    }
    check(j == end, "container closes where it says");
    return end;
}

static void tape_check(const char *s, size_t n)
{
    static esm_fj_tape t; /* reused across runs, like a filter set's scratch */
    if (!esm_fj_parse(&t, s, n)) return;
    check(t.n > 0, "a parsed value has tokens");
    check(walk(&t, 0, t.n) == t.n, "one top-level value");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    esm_filter_source src = (esm_filter_source)(data[0] % 3);
    const char *rest = (const char *)data + 1;
    size_t rlen = size - 1;
    const char *z1 = memchr(rest, 0, rlen);
    size_t plen = z1 ? (size_t)(z1 - rest) : rlen;
    const char *rec = z1 ? z1 + 1 : NULL;
    size_t reclen = 0;
    const char *pay = NULL;
    size_t paylen = 0;
    if (rec) {
        size_t left = rlen - plen - 1;
        const char *z2 = memchr(rec, 0, left);
        reclen = z2 ? (size_t)(z2 - rec) : left;
        if (z2) {
            pay = z2 + 1;
            paylen = left - reclen - 1;
        }
    }

    /* Patterns: one per line, NUL-terminated copies. */
    char *buf = malloc(plen + 1);
    memcpy(buf, rest, plen);
    buf[plen] = '\0';
    const char *pats[MAXPAT];
    size_t np = 0;
    for (char *line = buf; line && np < MAXPAT;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        pats[np++] = line;
        line = nl ? nl + 1 : NULL;
    }

    char why[300];
    esm_filter_set *f = esm_filter_compile(pats, np, src, why, sizeof why);
    if (!f) {
        check(strncmp(why, ESM_FILTER_INVALID, strlen(ESM_FILTER_INVALID)) == 0,
              "refusal message prefix");
    } else {
        bool any = false;
        for (size_t i = 0; i < np; i++) {
            check(esm_filter_validate(pats[i], NULL, 0), "validate accepts what compile accepts");
            esm_filter_set *one = esm_filter_compile(&pats[i], 1, src, NULL, 0);
            check(one != NULL, "each pattern compiles alone");
            any |= esm_filter_match(one, rec, reclen, pay, paylen);
            esm_filter_destroy(one);
        }
        bool got = esm_filter_match(f, rec, reclen, pay, paylen);
        check(got == esm_filter_match(f, rec, reclen, pay, paylen), "same answer twice");
        check(got == any, "a set matches when one of its patterns matches");
        esm_filter_destroy(f);
    }
    for (size_t i = 0; i < np; i++)
        esm_filter_validate(pats[i], why, sizeof why);
    if (rec) tape_check(rec, reclen);
    if (pay) tape_check(pay, paylen);
    tape_check(buf, plen);
    free(buf);
    return 0;
}
