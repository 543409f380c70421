#include "pollers/sqs/esm_sqs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_time.h"

void esm_sqs_stuck_free(esm_sqs_stuck *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->groups[i].group);
    free(t->groups);
    memset(t, 0, sizeof *t);
}

void esm_sqs_stuck_invocation(esm_sqs_stuck *t, bool ok, const char *why, int64_t now_ms)
{
    if (ok) {
        t->failing_since_ms = t->failing_last_ms = 0;
        t->failing_error[0] = '\0';
        return;
    }
    if (!t->failing_since_ms) t->failing_since_ms = now_ms;
    t->failing_last_ms = now_ms;
    snprintf(t->failing_error, sizeof t->failing_error, "%s", why ? why : "");
}

static void drop(esm_sqs_stuck *t, size_t i)
{
    free(t->groups[i].group);
    t->groups[i] = t->groups[--t->n];
}

void esm_sqs_stuck_group(esm_sqs_stuck *t, const char *group, bool failed, const char *why,
                         int64_t now_ms)
{
    if (!group) return;
    size_t i = 0;
    while (i < t->n && strcmp(t->groups[i].group, group) != 0)
        i++;
    if (!failed) {
        if (i < t->n) drop(t, i);
        return;
    }
    if (i == t->n) {
        if (t->n == ESM_SQS_STUCK_MAX_GROUPS) return;
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            esm_sqs_stuck_entry *p = realloc(t->groups, cap * sizeof *p);
            if (!p) return;
            t->groups = p;
            t->cap = cap;
        }
        char *copy = strdup(group);
        if (!copy) return;
        t->groups[t->n++] = (esm_sqs_stuck_entry){.group = copy, .since_ms = now_ms};
    }
    t->groups[i].last_failed_ms = now_ms;
    snprintf(t->groups[i].last_error, sizeof t->groups[i].last_error, "%s", why ? why : "");
}

int64_t esm_sqs_stuck_since(esm_sqs_stuck *t, int64_t now_ms, int64_t expire_ms)
{
    if (t->failing_since_ms && now_ms - t->failing_last_ms > expire_ms)
        esm_sqs_stuck_invocation(t, true, NULL, now_ms);
    int64_t since = t->failing_since_ms;
    for (size_t i = 0; i < t->n;) {
        if (now_ms - t->groups[i].last_failed_ms > expire_ms) {
            drop(t, i);
            continue;
        }
        if (!since || t->groups[i].since_ms < since) since = t->groups[i].since_ms;
        i++;
    }
    return since;
}

static void put_iso(esm_buf *out, int64_t ms)
{
    char iso[32];
    if (ms <= 0) {
        esm_buf_puts(out, "null");
        return;
    }
    esm_iso8601_ms(ms, iso);
    esm_buf_json_cstr(out, iso);
}

void esm_sqs_stuck_status(const esm_sqs_stuck *t, esm_buf *out)
{
    esm_buf_puts(out, ",\"FailingSince\":");
    put_iso(out, t->failing_since_ms);
    esm_buf_puts(out, ",\"FailingError\":");
    esm_buf_json_cstr(out, t->failing_since_ms ? t->failing_error : NULL);
    esm_buf_puts(out, ",\"BlockedGroups\":[");
    /* The 20 longest-blocked groups, oldest first (selection by repeated minimum). */
    int64_t after = 0;
    const char *after_group = "";
    for (int k = 0; k < 20; k++) {
        const esm_sqs_stuck_entry *best = NULL;
        for (size_t i = 0; i < t->n; i++) {
            const esm_sqs_stuck_entry *g = &t->groups[i];
            bool later =
                g->since_ms > after || (g->since_ms == after && strcmp(g->group, after_group) > 0);
            if (!later) continue;
            if (!best || g->since_ms < best->since_ms ||
                (g->since_ms == best->since_ms && strcmp(g->group, best->group) < 0))
                best = g;
        }
        if (!best) break;
        if (k) esm_buf_putc(out, ',');
        esm_buf_puts(out, "{\"MessageGroupId\":");
        esm_buf_json_cstr(out, best->group);
        esm_buf_puts(out, ",\"BlockedSince\":");
        put_iso(out, best->since_ms);
        esm_buf_puts(out, ",\"LastFailure\":");
        put_iso(out, best->last_failed_ms);
        esm_buf_puts(out, ",\"LastError\":");
        esm_buf_json_cstr(out, best->last_error);
        esm_buf_putc(out, '}');
        after = best->since_ms;
        after_group = best->group;
    }
    esm_buf_putc(out, ']');
}
