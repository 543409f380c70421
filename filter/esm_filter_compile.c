/* Pattern validation and compilation. The rules and messages follow AWS's event-ruler
 * (the engine behind Lambda and EventBridge filters) where the reference is silent. */
#include "filter/esm_filter_internal.h"
#include "filter/esm_filter_ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    esm_fj_tape *t;
    char *why;
    size_t why_len;
    bool check_src;
    esm_filter_source src;
    char path[256]; /* dotted field path for messages */
    size_t path_len;
    bool needs_record;
} comp;

static const char *const matcher_names[] = {
    "prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists",
    "cidr",   NULL,
};

__attribute__((format(printf, 2, 3))) static void fail(comp *c, const char *fmt, ...)
{
    if (!c->why || c->why_len == 0) return;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->path_len)
        snprintf(c->why, c->why_len, "%s %s (at \"%s\")", ESM_FILTER_INVALID, msg, c->path);
    else
        snprintf(c->why, c->why_len, "%s %s", ESM_FILTER_INVALID, msg);
}

static const char *data_key(esm_filter_source src)
{
    switch (src) {
    case ESM_FILTER_SRC_SQS:
        return "body";
    case ESM_FILTER_SRC_KINESIS:
        return "data";
    case ESM_FILTER_SRC_KAFKA:
        return "value";
    }
    return "";
}

static bool tok_is(const esm_fj_tok *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == ESM_FJ_STR && k->len == n && memcmp(k->s, s, n) == 0;
}

static bool dup_str(comp *c, esm_fstr *out, const esm_fj_tok *k)
{
    out->s = malloc(k->len + 1);
    if (!out->s) {
        fail(c, "out of memory");
        return false;
    }
    memcpy(out->s, k->s, k->len);
    out->s[k->len] = '\0';
    out->len = k->len;
    return true;
}

static void path_push(comp *c, const esm_fj_tok *key, size_t *saved)
{
    *saved = c->path_len;
    size_t room = sizeof c->path - c->path_len - 1;
    size_t add = (c->path_len ? 1 : 0) + key->len;
    if (add > room) return;
    if (c->path_len) c->path[c->path_len++] = '.';
    memcpy(c->path + c->path_len, key->s, key->len);
    c->path_len += key->len;
    c->path[c->path_len] = '\0';
}

static void path_pop(comp *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
}

static void matcher_free(esm_fmatcher *m)
{
    for (size_t i = 0; i < m->nstrs; i++)
        free(m->strs[i].s);
    free(m->strs);
    free(m->nums);
}

static void leaf_free(esm_fleaf *l)
{
    for (size_t i = 0; i < l->n; i++)
        matcher_free(&l->m[i]);
    free(l->m);
    memset(l, 0, sizeof *l);
}

static void clause_free(esm_fclause *cl)
{
    free(cl->key.s);
    leaf_free(&cl->leaf);
    esm_fnode_free(cl->obj);
    for (size_t i = 0; i < cl->nalt; i++)
        esm_fnode_free(cl->alt[i]);
    free(cl->alt);
}

void esm_fnode_free(esm_fnode *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++)
        clause_free(&n->c[i]);
    free(n->c);
    free(n);
}

/* Adds one string to m->strs. */
static bool add_str(comp *c, esm_fmatcher *m, const esm_fj_tok *k)
{
    esm_fstr *ns = realloc(m->strs, (m->nstrs + 1) * sizeof *ns);
    if (!ns) {
        fail(c, "out of memory");
        return false;
    }
    m->strs = ns;
    if (!dup_str(c, &m->strs[m->nstrs], k)) return false;
    m->nstrs++;
    return true;
}

static bool add_num(comp *c, esm_fmatcher *m, const esm_fj_tok *k)
{
    double *nn = realloc(m->nums, (m->nnums + 1) * sizeof *nn);
    if (!nn) {
        fail(c, "out of memory");
        return false;
    }
    m->nums = nn;
    m->nums[m->nnums++] = esm_fj_number_text(k->s, k->len);
    return true;
}

/* {"numeric": [op, n (, op, n)?]} */
static bool compile_numeric(comp *c, size_t arr, esm_fmatcher *m)
{
    esm_fj_tape *t = c->t;
    if (t->toks[arr].type != ESM_FJ_ARR) {
        fail(c, "Value of numeric must be an array.");
        return false;
    }
    size_t end = t->toks[arr].len, i = arr + 1;
    const esm_fj_tok *el[5];
    size_t n = 0;
    while (i < end) {
        if (n == 5) break;
        el[n++] = &t->toks[i];
        i = esm_fj_next(t, i);
    }
    if (n == 0 || el[0]->type != ESM_FJ_STR) {
        fail(c, "Invalid member in numeric match");
        return false;
    }
    if (n < 2 || el[1]->type != ESM_FJ_NUM) {
        fail(c, "Value of %.*s must be numeric", (int)el[0]->len, el[0]->s);
        return false;
    }
    double v = esm_fj_number_text(el[1]->s, el[1]->len);
    m->kind = FM_NUMERIC;
    bool lower = false;
    if (tok_is(el[0], "=")) {
        m->has_lo = m->has_hi = true;
        m->lo = m->hi = v;
    } else if (tok_is(el[0], ">") || tok_is(el[0], ">=")) {
        m->has_lo = true;
        m->lo = v;
        m->lo_open = el[0]->len == 1;
        lower = true;
    } else if (tok_is(el[0], "<") || tok_is(el[0], "<=")) {
        m->has_hi = true;
        m->hi = v;
        m->hi_open = el[0]->len == 1;
    } else {
        fail(c, "Unrecognized numeric range operator: %.*s", (int)el[0]->len, el[0]->s);
        return false;
    }
    if (n == 2) return true;
    if (!lower || n > 4) {
        fail(c, "Too many elements in numeric expression");
        return false;
    }
    if (el[2]->type != ESM_FJ_STR || !(tok_is(el[2], "<") || tok_is(el[2], "<="))) {
        fail(c, "Bad numeric range operator");
        return false;
    }
    if (n < 4 || el[3]->type != ESM_FJ_NUM) {
        fail(c, "Value of %.*s must be numeric", (int)el[2]->len, el[2]->s);
        return false;
    }
    m->has_hi = true;
    m->hi = esm_fj_number_text(el[3]->s, el[3]->len);
    m->hi_open = el[2]->len == 1;
    if (!(m->lo < m->hi)) {
        fail(c, "Bottom must be less than top");
        return false;
    }
    return true;
}

/* One string or a list of strings into m->strs (anything-but's set forms). */
static bool compile_str_set(comp *c, size_t v, esm_fmatcher *m, const char *what, bool no_empty)
{
    esm_fj_tape *t = c->t;
    size_t i = v, end = v + 1;
    if (t->toks[v].type == ESM_FJ_ARR) {
        i = v + 1;
        end = t->toks[v].len;
        if (i == end) {
            fail(c, "Empty arrays are not allowed");
            return false;
        }
    }
    for (; i < end; i = esm_fj_next(t, i)) {
        const esm_fj_tok *k = &t->toks[i];
        if (k->type != ESM_FJ_STR) {
            fail(c, "%s match pattern must be a string", what);
            return false;
        }
        if (no_empty && k->len == 0) {
            fail(c, "Null prefix/suffix not allowed");
            return false;
        }
        if (m->not_kind == FN_WILDCARD) {
            char msg[128];
            if (!esm_fops_wildcard_check(k->s, k->len, msg, sizeof msg)) {
                fail(c, "%s", msg);
                return false;
            }
        }
        if (!add_str(c, m, k)) return false;
    }
    return true;
}

static bool compile_anything_but(comp *c, size_t v, esm_fmatcher *m)
{
    esm_fj_tape *t = c->t;
    const esm_fj_tok *k = &t->toks[v];
    m->kind = FM_NOT;
    if (k->type == ESM_FJ_OBJ) {
        if (k->len == v + 1) {
            fail(c, "Anything-But expression name not found");
            return false;
        }
        const esm_fj_tok *op = &t->toks[v + 1];
        size_t inner = v + 2;
        if (esm_fj_next(t, inner) != k->len) {
            fail(c, "Only one key allowed in match expression");
            return false;
        }
        if (tok_is(op, "prefix"))
            m->not_kind = FN_PREFIX;
        else if (tok_is(op, "suffix"))
            m->not_kind = FN_SUFFIX;
        else if (tok_is(op, "equals-ignore-case"))
            m->not_kind = FN_EIC;
        else if (tok_is(op, "wildcard"))
            m->not_kind = FN_WILDCARD;
        else {
            fail(c, "Unsupported anything-but pattern: %.*s", (int)op->len, op->s);
            return false;
        }
        uint8_t ik = t->toks[inner].type;
        if (ik != ESM_FJ_STR && ik != ESM_FJ_ARR) {
            fail(c, "Value of anything-but must be an array or single string/number value.");
            return false;
        }
        const char *what = m->not_kind == FN_EIC        ? "equals-ignore-case"
                           : m->not_kind == FN_WILDCARD ? "wildcard"
                                                        : "prefix/suffix";
        return compile_str_set(c, inner, m, what,
                               m->not_kind == FN_PREFIX || m->not_kind == FN_SUFFIX);
    }
    if (k->type == ESM_FJ_STR) {
        m->not_kind = FN_STRS;
        return add_str(c, m, k);
    }
    if (k->type == ESM_FJ_NUM) {
        m->not_kind = FN_NUMS;
        return add_num(c, m, k);
    }
    if (k->type != ESM_FJ_ARR) {
        fail(c, "Value of anything-but must be an array or single string/number value.");
        return false;
    }
    bool has_str = false, has_num = false;
    for (size_t i = v + 1; i < k->len; i = esm_fj_next(t, i)) {
        const esm_fj_tok *e = &t->toks[i];
        if (e->type == ESM_FJ_STR) {
            has_str = true;
            if (!add_str(c, m, e)) return false;
        } else if (e->type == ESM_FJ_NUM) {
            has_num = true;
            if (!add_num(c, m, e)) return false;
        } else {
            fail(c, "Inside anything but list, start|null|boolean is not supported.");
            return false;
        }
    }
    if (has_str == has_num) {
        fail(c, "Inside anything but list, either all values are number or string, mixed "
                "type is not supported");
        return false;
    }
    m->not_kind = has_num ? FN_NUMS : FN_STRS;
    return true;
}

/* A string operand, or for prefix/suffix also {"equals-ignore-case": "..."}. */
static bool compile_str_op(comp *c, size_t v, esm_fmatcher *m, uint8_t kind, uint8_t eic_kind,
                           const char *name)
{
    esm_fj_tape *t = c->t;
    const esm_fj_tok *k = &t->toks[v];
    if (k->type == ESM_FJ_OBJ && eic_kind) {
        if (k->len == v + 1) {
            fail(c, "%s expression name not found", name);
            return false;
        }
        const esm_fj_tok *op = &t->toks[v + 1];
        if (!tok_is(op, "equals-ignore-case")) {
            fail(c, "Unsupported %s pattern: %.*s", name, (int)op->len, op->s);
            return false;
        }
        if (esm_fj_next(t, v + 2) != k->len) {
            fail(c, "Only one key allowed in match expression");
            return false;
        }
        if (t->toks[v + 2].type != ESM_FJ_STR) {
            fail(c, "equals-ignore-case match pattern must be a string");
            return false;
        }
        m->kind = eic_kind;
        return add_str(c, m, &t->toks[v + 2]);
    }
    if (k->type != ESM_FJ_STR) {
        fail(c, "%s match pattern must be a string", name);
        return false;
    }
    if (kind == FM_WILDCARD) {
        char msg[128];
        if (!esm_fops_wildcard_check(k->s, k->len, msg, sizeof msg)) {
            fail(c, "%s", msg);
            return false;
        }
    }
    m->kind = kind;
    return add_str(c, m, k);
}

/* One {"op": operand} matcher. Sets *absent for exists:false. */
static bool compile_matcher(comp *c, size_t obj, esm_fmatcher *m, bool *absent)
{
    esm_fj_tape *t = c->t;
    size_t end = t->toks[obj].len;
    if (end == obj + 1) {
        fail(c, "Match expression name not found");
        return false;
    }
    const esm_fj_tok *name = &t->toks[obj + 1];
    size_t v = obj + 2;
    if (esm_fj_next(t, v) != end) {
        fail(c, "Only one key allowed in match expression");
        return false;
    }
    const esm_fj_tok *val = &t->toks[v];
    if (tok_is(name, "prefix")) return compile_str_op(c, v, m, FM_PREFIX, FM_PREFIX_EIC, "prefix");
    if (tok_is(name, "suffix")) return compile_str_op(c, v, m, FM_SUFFIX, FM_SUFFIX_EIC, "suffix");
    if (tok_is(name, "equals-ignore-case"))
        return compile_str_op(c, v, m, FM_EIC, 0, "equals-ignore-case");
    if (tok_is(name, "wildcard")) return compile_str_op(c, v, m, FM_WILDCARD, 0, "wildcard");
    if (tok_is(name, "numeric")) return compile_numeric(c, v, m);
    if (tok_is(name, "anything-but")) return compile_anything_but(c, v, m);
    if (tok_is(name, "exists")) {
        if (val->type != ESM_FJ_TRUE && val->type != ESM_FJ_FALSE) {
            fail(c, "exists match pattern must be either true or false.");
            return false;
        }
        m->kind = FM_EXISTS;
        if (val->type == ESM_FJ_FALSE) *absent = true;
        return true;
    }
    if (tok_is(name, "cidr")) {
        if (val->type != ESM_FJ_STR) {
            fail(c, "cidr match pattern must be a string");
            return false;
        }
        int fam = esm_fops_cidr_parse(val->s, val->len, m->net.addr, &m->net.bits);
        if (!fam) {
            fail(c, "Invalid CIDR: %.*s", (int)val->len, val->s);
            return false;
        }
        m->net.family = (uint8_t)fam;
        m->kind = FM_CIDR;
        return true;
    }
    fail(c, "Unrecognized match type %.*s", (int)name->len, name->s);
    return false;
}

/* A leaf: [matcher, ...]. Literal strings share one matcher, so do literal numbers. */
static bool compile_leaf(comp *c, size_t arr, esm_fleaf *leaf)
{
    esm_fj_tape *t = c->t;
    size_t end = t->toks[arr].len;
    if (end == arr + 1) {
        fail(c, "Empty arrays are not allowed");
        return false;
    }
    size_t cnt = 0;
    for (size_t i = arr + 1; i < end; i = esm_fj_next(t, i))
        cnt++;
    leaf->m = calloc(cnt, sizeof *leaf->m);
    if (!leaf->m) {
        fail(c, "out of memory");
        return false;
    }
    long str_at = -1, num_at = -1;
    for (size_t i = arr + 1; i < end; i = esm_fj_next(t, i)) {
        const esm_fj_tok *k = &t->toks[i];
        esm_fmatcher *m = &leaf->m[leaf->n];
        switch (k->type) {
        case ESM_FJ_STR:
        case ESM_FJ_NUM: {
            long *at = k->type == ESM_FJ_STR ? &str_at : &num_at;
            if (*at < 0) {
                *at = (long)leaf->n++;
                m->kind = k->type == ESM_FJ_STR ? FM_STR : FM_NUM;
            }
            if (!add_str(c, &leaf->m[*at], k)) return false;
            break;
        }
        case ESM_FJ_TRUE:
            m->kind = FM_TRUE, leaf->n++;
            break;
        case ESM_FJ_FALSE:
            m->kind = FM_FALSE, leaf->n++;
            break;
        case ESM_FJ_NULL:
            m->kind = FM_NULL, leaf->n++;
            break;
        case ESM_FJ_OBJ: {
            bool absent = false;
            leaf->n++; /* owned by the leaf even when compiling fails */
            if (!compile_matcher(c, i, m, &absent)) return false;
            if (absent) {
                leaf->absent_ok = true;
                matcher_free(m);
                memset(m, 0, sizeof *m);
                leaf->n--;
            }
            break;
        }
        default:
            fail(c, "Match value must be String, number, true, false, or null");
            return false;
        }
    }
    return true;
}

static bool reserved_in_or(const esm_fj_tok *k)
{
    for (const char *const *n = matcher_names; *n; n++)
        if (tok_is(k, *n)) return true;
    return false;
}

static esm_fnode *compile_object(comp *c, size_t obj, bool in_or, bool root, int depth);

static esm_fclause *new_clause(comp *c, esm_fnode *n)
{
    esm_fclause *nc = realloc(n->c, (n->n + 1) * sizeof *nc);
    if (!nc) {
        fail(c, "out of memory");
        return NULL;
    }
    n->c = nc;
    memset(&nc[n->n], 0, sizeof *nc);
    return &nc[n->n++];
}

static esm_fclause *find_clause(esm_fnode *n, uint8_t kind, const esm_fj_tok *key)
{
    for (size_t i = 0; i < n->n; i++) {
        esm_fclause *cl = &n->c[i];
        if (cl->kind == kind && cl->key.len == key->len && memcmp(cl->key.s, key->s, key->len) == 0)
            return cl;
    }
    return NULL;
}

static bool compile_or(comp *c, esm_fnode *node, size_t v, bool root, int depth)
{
    esm_fj_tape *t = c->t;
    if (t->toks[v].type != ESM_FJ_ARR) {
        fail(c, "It must be an Array followed with $or.");
        return false;
    }
    esm_fclause *cl = new_clause(c, node);
    if (!cl) return false;
    cl->kind = FC_OR;
    size_t end = t->toks[v].len;
    for (size_t i = v + 1; i < end; i = esm_fj_next(t, i)) {
        if (t->toks[i].type != ESM_FJ_OBJ) {
            fail(c, "Only JSON object is allowed in array of $or relationship.");
            return false;
        }
        esm_fnode **na = realloc(cl->alt, (cl->nalt + 1) * sizeof *na);
        if (!na) {
            fail(c, "out of memory");
            return false;
        }
        cl->alt = na;
        cl->alt[cl->nalt] = compile_object(c, i, true, root, depth + 1);
        if (!cl->alt[cl->nalt]) return false;
        cl->nalt++;
    }
    if (cl->nalt < 2) {
        fail(c, "There must have at least 2 Objects in $or relationship.");
        return false;
    }
    return true;
}

static bool compile_member(comp *c, esm_fnode *node, size_t k, bool in_or, bool root, int depth)
{
    esm_fj_tape *t = c->t;
    const esm_fj_tok *key = &t->toks[k];
    size_t v = k + 1;
    if (tok_is(key, "$or")) return compile_or(c, node, v, root, depth);
    if (in_or && reserved_in_or(key)) {
        fail(c, "%.*s is Ruler reserved fieldName which cannot be used inside $or.", (int)key->len,
             key->s);
        return false;
    }
    bool is_data = root && c->check_src && tok_is(key, data_key(c->src));
    if (root && !is_data) c->needs_record = true;
    uint8_t vt = t->toks[v].type;
    if (vt == ESM_FJ_OBJ) {
        esm_fnode *sub = compile_object(c, v, in_or, false, depth + 1);
        if (!sub) return false;
        /* A repeated object key adds its fields (event-ruler flattens paths). */
        esm_fclause *old = find_clause(node, FC_OBJ, key);
        if (old) {
            esm_fclause *nc = realloc(old->obj->c, (old->obj->n + sub->n) * sizeof *nc);
            if (!nc) {
                esm_fnode_free(sub);
                fail(c, "out of memory");
                return false;
            }
            memcpy(nc + old->obj->n, sub->c, sub->n * sizeof *nc);
            old->obj->c = nc;
            old->obj->n += sub->n;
            old->obj->absent_ok = old->obj->absent_ok && sub->absent_ok;
            free(sub->c);
            free(sub);
            return true;
        }
        esm_fclause *cl = new_clause(c, node);
        if (!cl) {
            esm_fnode_free(sub);
            return false;
        }
        cl->kind = FC_OBJ;
        cl->data = is_data;
        cl->obj = sub;
        return dup_str(c, &cl->key, key);
    }
    if (vt == ESM_FJ_ARR) {
        if (is_data && c->check_src && c->src == ESM_FILTER_SRC_KINESIS) {
            fail(c, "Kinesis data must be filtered with a JSON object pattern; plain "
                    "matchers on data are not supported");
            return false;
        }
        esm_fleaf leaf = {0};
        if (!compile_leaf(c, v, &leaf)) {
            leaf_free(&leaf);
            return false;
        }
        /* A repeated leaf key: the last one wins. */
        esm_fclause *cl = find_clause(node, FC_LEAF, key);
        if (cl) {
            leaf_free(&cl->leaf);
        } else {
            cl = new_clause(c, node);
            if (!cl || !dup_str(c, &cl->key, key)) {
                leaf_free(&leaf);
                return false;
            }
            cl->kind = FC_LEAF;
            cl->data = is_data;
        }
        cl->leaf = leaf;
        return true;
    }
    fail(c, "\"%.*s\" must be an object or an array", (int)key->len, key->s);
    return false;
}

static bool clause_absent_ok(const esm_fclause *cl)
{
    switch (cl->kind) {
    case FC_LEAF:
        return cl->leaf.absent_ok;
    case FC_OBJ:
        return cl->obj->absent_ok;
    default:
        for (size_t i = 0; i < cl->nalt; i++)
            if (cl->alt[i]->absent_ok) return true;
        return false;
    }
}

static esm_fnode *compile_object(comp *c, size_t obj, bool in_or, bool root, int depth)
{
    esm_fj_tape *t = c->t;
    if (depth > ESM_FJ_MAX_DEPTH) {
        fail(c, "Pattern nesting is too deep");
        return NULL;
    }
    size_t end = t->toks[obj].len;
    if (end == obj + 1) {
        fail(c, "Empty objects are not allowed");
        return NULL;
    }
    esm_fnode *node = calloc(1, sizeof *node);
    if (!node) {
        fail(c, "out of memory");
        return NULL;
    }
    for (size_t k = obj + 1; k < end; k = esm_fj_next(t, k + 1)) {
        size_t saved = c->path_len;
        bool is_or = tok_is(&t->toks[k], "$or");
        if (!is_or) path_push(c, &t->toks[k], &saved);
        bool ok = compile_member(c, node, k, in_or, root, depth);
        if (!is_or) path_pop(c, saved);
        if (!ok) {
            esm_fnode_free(node);
            return NULL;
        }
    }
    node->absent_ok = true;
    for (size_t i = 0; i < node->n; i++)
        if (!clause_absent_ok(&node->c[i])) node->absent_ok = false;
    return node;
}

/* Java counts a String's length in UTF-16 units. */
static size_t utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b & 0xC0) != 0x80) units += (b >= 0xF0) ? 2 : 1;
    }
    return units;
}

static esm_fnode *compile_one(comp *c, const char *pattern)
{
    if (!pattern) {
        fail(c, "Pattern is missing");
        return NULL;
    }
    size_t len = strlen(pattern);
    if (utf16_len(pattern, len) > ESM_FILTER_PATTERN_MAX) {
        fail(c, "Pattern is longer than %d characters", ESM_FILTER_PATTERN_MAX);
        return NULL;
    }
    if (!esm_fj_parse(c->t, pattern, len)) {
        fail(c, "Pattern is not valid JSON");
        return NULL;
    }
    if (c->t->toks[0].type != ESM_FJ_OBJ) {
        fail(c, "Filter is not an object");
        return NULL;
    }
    return compile_object(c, 0, false, true, 0);
}

bool esm_filter_validate(const char *pattern, char *why, size_t why_len)
{
    esm_fj_tape t;
    esm_fj_init(&t);
    comp c = {.t = &t, .why = why, .why_len = why_len, .src = (esm_filter_source)-1};
    esm_fnode *n = compile_one(&c, pattern);
    esm_fnode_free(n);
    esm_fj_free(&t);
    return n != NULL;
}

esm_filter_set *esm_filter_compile(const char *const *patterns, size_t n, esm_filter_source src,
                                   char *why, size_t why_len)
{
    esm_fj_tape t;
    esm_fj_init(&t);
    comp c = {.t = &t, .why = why, .why_len = why_len, .check_src = true, .src = src};
    if (n > ESM_FILTER_HARD_MAX) {
        fail(&c, "At most %d filters are allowed, got %zu", ESM_FILTER_HARD_MAX, n);
        return NULL;
    }
    esm_filter_set *f = calloc(1, sizeof *f);
    if (!f || (n && (!(f->pat = calloc(n, sizeof *f->pat)) ||
                     !(f->needs_record = calloc(n, sizeof *f->needs_record))))) {
        esm_filter_destroy(f);
        fail(&c, "out of memory");
        return NULL;
    }
    f->src = src;
    for (size_t i = 0; i < n; i++) {
        c.needs_record = false;
        f->pat[i] = compile_one(&c, patterns[i]);
        if (!f->pat[i]) {
            esm_fj_free(&t);
            esm_filter_destroy(f);
            return NULL;
        }
        f->needs_record[i] = c.needs_record;
        f->npat++;
    }
    esm_fj_free(&t);
    esm_fj_init(&f->rec);
    esm_fj_init(&f->pay);
    return f;
}

void esm_filter_destroy(esm_filter_set *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->npat; i++)
        esm_fnode_free(f->pat[i]);
    free(f->pat);
    free(f->needs_record);
    esm_fj_free(&f->rec);
    esm_fj_free(&f->pay);
    free(f);
}

bool esm_filter_matches_all(const esm_filter_set *f)
{
    return !f || f->npat == 0;
}
