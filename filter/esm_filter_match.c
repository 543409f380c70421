/* Matching: the record and the payload are each tokenized at most once per call into the
 * set's reusable tapes, then every pattern walks the tapes, looking up only the keys it
 * names. Nothing is allocated once the tapes have grown to the largest input seen. */
#include "filter/esm_filter_internal.h"
#include "filter/esm_filter_ops.h"

#include <math.h>
#include <string.h>

typedef enum { PAY_UNKNOWN, PAY_ABSENT, PAY_JSON, PAY_PLAIN, PAY_BADUTF8 } pay_state;

typedef struct {
    esm_filter_set *f;
    const char *pay;
    size_t pay_len;
    pay_state ps;
} mctx;

static bool eval_node(mctx *x, const esm_fnode *n, esm_fj_tape *t, long obj, bool root);

static bool str_eq(const esm_fstr *a, const esm_fj_tok *v)
{
    return a->len == v->len && memcmp(a->s, v->s, v->len) == 0;
}

static double num_of(esm_fj_tape *t, const esm_fj_tok *v)
{
    if (v->len < 256) return esm_fj_number_text(v->s, v->len);
    return esm_fj_number(t, (size_t)(v - t->toks));
}

static bool in_range(const esm_fmatcher *m, double d)
{
    if (isnan(d)) return false;
    if (m->has_lo && (m->lo_open ? !(d > m->lo) : !(d >= m->lo))) return false;
    if (m->has_hi && (m->hi_open ? !(d < m->hi) : !(d <= m->hi))) return false;
    return true;
}

/* What anything-but excludes. */
static bool excluded(const esm_fmatcher *m, esm_fj_tape *t, const esm_fj_tok *v)
{
    if (m->not_kind == FN_NUMS) {
        if (v->type != ESM_FJ_NUM) return false;
        double d = num_of(t, v);
        for (size_t i = 0; i < m->nnums; i++)
            if (d == m->nums[i]) return true;
        return false;
    }
    if (v->type != ESM_FJ_STR) return false;
    for (size_t i = 0; i < m->nstrs; i++) {
        const esm_fstr *p = &m->strs[i];
        switch (m->not_kind) {
        case FN_STRS:
            if (str_eq(p, v)) return true;
            break;
        case FN_PREFIX:
            if (v->len >= p->len && memcmp(v->s, p->s, p->len) == 0) return true;
            break;
        case FN_SUFFIX:
            if (v->len >= p->len && memcmp(v->s + v->len - p->len, p->s, p->len) == 0) return true;
            break;
        case FN_EIC:
            if (v->len == p->len && esm_fops_ieq(v->s, p->s, p->len)) return true;
            break;
        case FN_WILDCARD:
            if (esm_fops_wildcard(p->s, p->len, v->s, v->len)) return true;
            break;
        default:
            break;
        }
    }
    return false;
}

/* Does one leaf value (never an object or array) satisfy matcher m? */
static bool match_one(const esm_fmatcher *m, esm_fj_tape *t, const esm_fj_tok *v)
{
    bool str = v->type == ESM_FJ_STR;
    const esm_fstr *p = m->nstrs ? &m->strs[0] : NULL;
    switch (m->kind) {
    case FM_STR:
    case FM_NUM:
        if (v->type != (m->kind == FM_STR ? ESM_FJ_STR : ESM_FJ_NUM)) return false;
        for (size_t i = 0; i < m->nstrs; i++)
            if (str_eq(&m->strs[i], v)) return true;
        return false;
    case FM_TRUE:
        return v->type == ESM_FJ_TRUE;
    case FM_FALSE:
        return v->type == ESM_FJ_FALSE;
    case FM_NULL:
        return v->type == ESM_FJ_NULL;
    case FM_PREFIX:
        return str && v->len >= p->len && memcmp(v->s, p->s, p->len) == 0;
    case FM_SUFFIX:
        return str && v->len >= p->len && memcmp(v->s + v->len - p->len, p->s, p->len) == 0;
    case FM_EIC:
        return str && v->len == p->len && esm_fops_ieq(v->s, p->s, p->len);
    case FM_PREFIX_EIC:
        return str && esm_fops_iprefix(v->s, v->len, p->s, p->len);
    case FM_SUFFIX_EIC:
        return str && esm_fops_isuffix(v->s, v->len, p->s, p->len);
    case FM_WILDCARD:
        return str && esm_fops_wildcard(p->s, p->len, v->s, v->len);
    case FM_NUMERIC:
        return v->type == ESM_FJ_NUM && in_range(m, num_of(t, v));
    case FM_EXISTS:
        return true;
    case FM_CIDR: {
        uint8_t addr[16];
        if (!str) return false;
        int fam = esm_fops_ip_parse(v->s, v->len, addr);
        return fam && esm_fops_cidr_contains(m->net.family, m->net.addr, m->net.bits, fam, addr);
    }
    case FM_NOT:
        return !excluded(m, t, v);
    default:
        return false;
    }
}

static bool leaf_match_tok(const esm_fleaf *l, esm_fj_tape *t, const esm_fj_tok *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (match_one(&l->m[i], t, v)) return true;
    return false;
}

/* Leaf values at token vi (arrays are flattened, objects are not leaves). *found is set
 * when any leaf value exists. */
static bool leaf_scan(const esm_fleaf *l, esm_fj_tape *t, size_t vi, bool *found)
{
    const esm_fj_tok *v = &t->toks[vi];
    if (v->type == ESM_FJ_OBJ) return false;
    if (v->type == ESM_FJ_ARR) {
        for (size_t i = vi + 1; i < v->len; i = esm_fj_next(t, i))
            if (leaf_scan(l, t, i, found)) return true;
        return false;
    }
    *found = true;
    return leaf_match_tok(l, t, v);
}

/* Objects at token vi (arrays flattened): true when any satisfies the sub-pattern. */
static bool obj_scan(mctx *x, const esm_fnode *n, esm_fj_tape *t, size_t vi, bool *found)
{
    const esm_fj_tok *v = &t->toks[vi];
    if (v->type == ESM_FJ_OBJ) {
        *found = true;
        return eval_node(x, n, t, (long)vi, false);
    }
    if (v->type == ESM_FJ_ARR) {
        for (size_t i = vi + 1; i < v->len; i = esm_fj_next(t, i))
            if (obj_scan(x, n, t, i, found)) return true;
    }
    return false;
}

/* Evaluates a field clause on every member of obj named cl->key. */
static bool field_scan(mctx *x, const esm_fclause *cl, esm_fj_tape *t, size_t obj, bool *key_seen,
                       bool *found)
{
    size_t end = t->toks[obj].len;
    for (size_t k = obj + 1; k < end; k = esm_fj_next(t, k + 1)) {
        if (!str_eq(&cl->key, &t->toks[k])) continue;
        *key_seen = true;
        bool hit = cl->kind == FC_LEAF ? leaf_scan(&cl->leaf, t, k + 1, found)
                                       : obj_scan(x, cl->obj, t, k + 1, found);
        if (hit) return true;
    }
    return false;
}

static bool clause_absent(const esm_fclause *cl)
{
    return cl->kind == FC_LEAF ? cl->leaf.absent_ok : cl->obj->absent_ok;
}

static void payload_classify(mctx *x)
{
    esm_filter_set *f = x->f;
    if (!x->pay) {
        x->ps = PAY_ABSENT;
        return;
    }
    if (f->src == ESM_FILTER_SRC_KAFKA && !esm_fj_utf8_valid(x->pay, x->pay_len)) {
        x->ps = PAY_BADUTF8;
        return;
    }
    x->ps = esm_fj_parse(&f->pay, x->pay, x->pay_len) ? PAY_JSON : PAY_PLAIN;
}

/* A root clause on the data key (docs/design.md "Filter format tables"). */
static bool eval_data(mctx *x, const esm_fclause *cl)
{
    if (x->ps == PAY_UNKNOWN) payload_classify(x);
    bool leaf = cl->kind == FC_LEAF;
    esm_filter_source src = x->f->src;
    switch (x->ps) {
    case PAY_ABSENT:
        return clause_absent(cl);
    case PAY_BADUTF8:
        return true; /* Kafka: metadata-only */
    case PAY_JSON: {
        if (leaf) return src == ESM_FILTER_SRC_KAFKA;
        bool found = false;
        if (obj_scan(x, cl->obj, &x->f->pay, 0, &found)) return true;
        return !found && cl->obj->absent_ok;
    }
    case PAY_PLAIN: {
        if (!leaf) return src == ESM_FILTER_SRC_KAFKA;
        if (src == ESM_FILTER_SRC_KINESIS) return false;
        esm_fj_tok v = {.s = x->pay, .len = (uint32_t)x->pay_len, .type = ESM_FJ_STR};
        return leaf_match_tok(&cl->leaf, NULL, &v);
    }
    default:
        return false;
    }
}

/* Kinesis shows the fields of the record's "kinesis" object at the top level. */
static long kinesis_obj(esm_fj_tape *t)
{
    static const esm_fstr name = {.s = "kinesis", .len = 7};
    size_t end = t->toks[0].len;
    for (size_t k = 1; k < end; k = esm_fj_next(t, k + 1))
        if (str_eq(&name, &t->toks[k]) && t->toks[k + 1].type == ESM_FJ_OBJ) return (long)k + 1;
    return -1;
}

static bool eval_clause(mctx *x, const esm_fclause *cl, esm_fj_tape *t, long obj, bool root)
{
    if (cl->kind == FC_OR) {
        for (size_t i = 0; i < cl->nalt; i++)
            if (eval_node(x, cl->alt[i], t, obj, root)) return true;
        return false;
    }
    if (cl->data) return eval_data(x, cl);
    if (obj < 0) return clause_absent(cl);
    bool key_seen = false, found = false;
    if (field_scan(x, cl, t, (size_t)obj, &key_seen, &found)) return true;
    if (root && !key_seen && x->f->src == ESM_FILTER_SRC_KINESIS) {
        long k = kinesis_obj(t);
        if (k >= 0 && field_scan(x, cl, t, (size_t)k, &key_seen, &found)) return true;
    }
    return !found && clause_absent(cl);
}

static bool eval_node(mctx *x, const esm_fnode *n, esm_fj_tape *t, long obj, bool root)
{
    if (obj < 0 && !root) return n->absent_ok;
    for (size_t i = 0; i < n->n; i++)
        if (!eval_clause(x, &n->c[i], t, obj, root)) return false;
    return true;
}

bool esm_filter_match(const esm_filter_set *cf, const char *record_json, size_t record_len,
                      const char *payload, size_t payload_len)
{
    if (esm_filter_matches_all(cf)) return true;
    esm_filter_set *f = (esm_filter_set *)cf; /* only the scratch tapes change */
    /* The record is parsed on first need; patterns that name metadata fields fail on a
     * record that is not a JSON object, the others do not look at it. */
    enum { REC_UNKNOWN, REC_OK, REC_BAD } rs = REC_UNKNOWN;
    mctx x = {.f = f, .pay = payload, .pay_len = payload_len, .ps = PAY_UNKNOWN};
    for (size_t i = 0; i < f->npat; i++) {
        long root = -1;
        if (f->needs_record[i]) {
            if (rs == REC_UNKNOWN)
                rs = record_json && esm_fj_parse(&f->rec, record_json, record_len) &&
                             f->rec.toks[0].type == ESM_FJ_OBJ
                         ? REC_OK
                         : REC_BAD;
            if (rs == REC_BAD) continue;
            root = 0;
        }
        if (eval_node(&x, f->pat[i], &f->rec, root, true)) return true;
    }
    return false;
}
