/* The compiled form of filter patterns, shared by the compiler and the matcher. */
#ifndef ESM_FILTER_INTERNAL_H
#define ESM_FILTER_INTERNAL_H

#include "filter/esm_filter.h"
#include "filter/esm_filter_json.h"

#include <stdint.h>

typedef struct {
    char *s;
    size_t len;
} esm_fstr;

typedef enum {
    FM_STR,        /* literal string(s): strs */
    FM_NUM,        /* literal number(s), compared by their written form: strs */
    FM_TRUE,       /* literal true */
    FM_FALSE,      /* literal false */
    FM_NULL,       /* literal null */
    FM_PREFIX,     /* strs[0] */
    FM_SUFFIX,     /* strs[0] */
    FM_EIC,        /* equals-ignore-case: strs[0] */
    FM_PREFIX_EIC, /* prefix: {equals-ignore-case} */
    FM_SUFFIX_EIC, /* suffix: {equals-ignore-case} */
    FM_WILDCARD,   /* strs[0], escapes kept (\* and \\) */
    FM_NUMERIC,    /* lo/hi bounds */
    FM_EXISTS,     /* exists: true (exists: false is leaf.absent_ok) */
    FM_CIDR,       /* net */
    FM_NOT,        /* anything-but: matches any leaf the inner matcher does not match */
} esm_fm_kind;

typedef enum {
    FN_STRS,     /* anything-but strings: strs */
    FN_NUMS,     /* anything-but numbers: nums (numeric equality) */
    FN_PREFIX,   /* any of strs */
    FN_SUFFIX,   /* any of strs */
    FN_EIC,      /* any of strs, ignoring case */
    FN_WILDCARD, /* any of strs */
} esm_fn_kind;

typedef struct {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;
    uint8_t addr[16]; /* masked network address */
} esm_fcidr;

typedef struct {
    uint8_t kind;     /* esm_fm_kind */
    uint8_t not_kind; /* esm_fn_kind, for FM_NOT */
    bool lo_open, hi_open, has_lo, has_hi;
    double lo, hi;
    esm_fstr *strs;
    size_t nstrs;
    double *nums;
    size_t nnums;
    esm_fcidr net;
} esm_fmatcher;

/* A leaf: a list of ORed matchers. */
typedef struct {
    esm_fmatcher *m;
    size_t n;
    bool absent_ok; /* contains exists:false */
} esm_fleaf;

typedef struct esm_fnode esm_fnode;

typedef enum { FC_LEAF, FC_OBJ, FC_OR } esm_fc_kind;

typedef struct {
    uint8_t kind;    /* esm_fc_kind */
    bool data;       /* a root-level clause on the source's data key */
    esm_fstr key;    /* FC_LEAF, FC_OBJ */
    esm_fleaf leaf;  /* FC_LEAF */
    esm_fnode *obj;  /* FC_OBJ */
    esm_fnode **alt; /* FC_OR */
    size_t nalt;
} esm_fclause;

/* An object pattern: its clauses are ANDed. */
struct esm_fnode {
    esm_fclause *c;
    size_t n;
    bool absent_ok; /* matches when the object is absent (every field absent) */
};

struct esm_filter_set {
    esm_filter_source src;
    esm_fnode **pat;
    size_t npat;
    bool *needs_record; /* per pattern: it names a metadata field */
    /* Per-match scratch, kept between calls. */
    esm_fj_tape rec, pay;
};

void esm_fnode_free(esm_fnode *n);

#endif
