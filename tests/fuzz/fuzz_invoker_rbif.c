/* libFuzzer target for the ReportBatchItemFailures parser (esm_rbif_parse).
 *
 * Input: byte 0 picks the identifier kind (even: string ids, odd: Kafka ids); up to the first
 * NUL come the batch identifiers, one per line; the rest is the function's response body.
 * Invariants: PARTIAL lists at least one failed index, sorted, unique and inside the batch;
 * SUCCESS and INVALID list none; INVALID says why; parsing twice gives the same answer. */
// FUZZ_SOURCES: invoker/esm_rbif.c
#include "invoker/esm_rbif.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXIDS 64

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    esm_rbif_id_kind kind = (data[0] & 1) ? ESM_RBIF_ID_KAFKA : ESM_RBIF_ID_STRING;
    const char *rest = (const char *)data + 1;
    size_t rlen = size - 1;
    const char *z = memchr(rest, 0, rlen);
    size_t idlen = z ? (size_t)(z - rest) : 0;
    const char *body = z ? z + 1 : rest;
    size_t blen = z ? rlen - idlen - 1 : rlen;

    char *idbuf = malloc(idlen + 1);
    char *bodycopy = malloc(blen + 1); /* exact-size copy so overreads are caught */
    if (!idbuf || !bodycopy) abort();
    memcpy(idbuf, rest, idlen);
    idbuf[idlen] = '\0';
    memcpy(bodycopy, body, blen);
    bodycopy[blen] = '\0';
    const char *ids[MAXIDS];
    size_t n = 0;
    if (z) {
        for (char *s = idbuf, *nl; n < MAXIDS; s = nl + 1) {
            ids[n++] = s;
            nl = strchr(s, '\n');
            if (!nl) break;
            *nl = '\0';
        }
    }

    size_t failed[MAXIDS], failed2[MAXIDS], nf = 99, nf2 = 99;
    char why[256] = "";
    esm_rbif_status st = esm_rbif_parse(bodycopy, blen, kind, ids, n, failed, &nf, why, sizeof why);
    check(st == ESM_RBIF_SUCCESS || st == ESM_RBIF_PARTIAL || st == ESM_RBIF_INVALID, "status");
    check(strlen(esm_rbif_status_name(st)) > 0, "status name");
    if (st == ESM_RBIF_PARTIAL) {
        check(nf > 0 && nf <= n, "partial lists 1..n failures");
        for (size_t i = 0; i < nf; i++) {
            check(failed[i] < n, "failed index inside the batch");
            if (i) check(failed[i - 1] < failed[i], "failed indices sorted and unique");
        }
    } else {
        check(nf == 0, "no failures unless partial");
    }
    if (st == ESM_RBIF_INVALID) check(why[0] != '\0', "invalid says why");
    esm_rbif_status st2 = esm_rbif_parse(bodycopy, blen, kind, ids, n, failed2, &nf2, NULL, 0);
    check(st2 == st && nf2 == nf && (nf == 0 || memcmp(failed, failed2, nf * sizeof *failed) == 0),
          "deterministic");
    free(idbuf);
    free(bodycopy);
    return 0;
}
