/* Trimmed-data detection. Kinesis answers GetShardIterator AFTER_SEQUENCE_NUMBER with a
 * position that retention has already removed by reading from the trim horizon, without a
 * word: the records written after that position and trimmed before esmd read them are gone.
 * So before a shard resumes after a position (its checkpoint at start, the last record read
 * when an iterator is renewed), the oldest record still in the shard is read (GetShardIterator
 * TRIM_HORIZON, GetRecords Limit 1). A position older than that record is logged as an error,
 * counted (esmd_kinesis_data_trimmed_total) and shown in the shard's /status; reading then goes
 * on from the trim horizon, as on AWS (docs/operations.md "Fault handling of SQS and Kinesis
 * calls"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/esm_log.h"
#include "common/esm_time.h"
#include "pollers/kinesis/esm_kinesis_int.h"

#define KIN_TRIM_PAGES 3 /* empty pages followed from the trim horizon before giving up */

static void get_oldest(esm_kinesis_shard *sh, const char *iterator);

static bool probing(const esm_kinesis_shard *sh)
{
    return sh->src->state == K_RUNNING && sh->state == KS_STARTING;
}

static void finish(esm_kinesis_shard *sh, const char *oldest)
{
    esm_kinesis_trim *t = &sh->trim;
    if (oldest && esm_kinesis_seq_cmp(t->after, oldest) < 0) {
        t->count++;
        t->at_ms = esm_now_ms();
        snprintf(t->lost_after, sizeof t->lost_after, "%s", t->after);
        snprintf(t->oldest, sizeof t->oldest, "%s", oldest);
        sh->src->env.stats->data_trimmed++;
        ESM_ERROR(sh->log_ctx,
                  "position %s is older than the trim horizon (oldest record %s): records "
                  "written after it that the stream's retention removed before esmd read them "
                  "are lost; reading goes on from %s",
                  t->after, oldest, oldest);
    }
    t->checked = true;
    esm_kinesis_shard_request_iterator(sh);
}

static void on_oldest(const esm_aws_result *res, void *arg)
{
    esm_kinesis_shard *sh = arg;
    sh->call = NULL;
    if (!probing(sh)) {
        sh->src->up->maybe_stopped(sh->src);
        return;
    }
    if (!res->ok) {
        esm_kinesis_shard_call_failed(sh, "GetRecords (trim horizon)", res->error_type,
                                      res->message, res->throttled);
        return;
    }
    esm_kinesis_page page;
    char why[160];
    if (esm_kinesis_parse_get_records(res->json, &sh->rctx, &page, why, sizeof why) != 0) {
        esm_kinesis_shard_call_failed(sh, "GetRecords (trim horizon)", "InvalidResponse", why,
                                      false);
        return;
    }
    if (page.n > 0) {
        finish(sh, page.records[0]->seq);
    } else if (page.next_iterator && page.millis_behind_latest > 0 &&
               ++sh->trim.pages < KIN_TRIM_PAGES) {
        get_oldest(sh, page.next_iterator); /* Kinesis may answer empty pages before data */
    } else {
        finish(sh, NULL); /* nothing left in the shard: nothing to compare with */
    }
    esm_kinesis_page_clear(&page);
}

static void get_oldest(esm_kinesis_shard *sh, const char *iterator)
{
    esm_buf body;
    esm_buf_init(&body);
    esm_kinesis_body_get_records(&body, iterator, 1);
    sh->last_poll_ms = esm_now_ms(); /* counts toward the shard's reads per second */
    if (!body.failed)
        sh->call = esm_aws_json_call(sh->src->aws, KIN_TARGET("GetRecords"), "1.1", body.data,
                                     body.len, KIN_CALL_TIMEOUT_MS, on_oldest, sh);
    esm_buf_free(&body);
    if (!sh->call)
        esm_kinesis_shard_call_failed(sh, "GetRecords (trim horizon)", "", "not sent", false);
}

static void on_horizon(const esm_aws_result *res, void *arg)
{
    esm_kinesis_shard *sh = arg;
    sh->call = NULL;
    if (!probing(sh)) {
        sh->src->up->maybe_stopped(sh->src);
        return;
    }
    if (!res->ok) {
        esm_kinesis_shard_call_failed(sh, "GetShardIterator TRIM_HORIZON", res->error_type,
                                      res->message, res->throttled);
        return;
    }
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(res->json, "ShardIterator");
    if (cJSON_IsString(it) && it->valuestring[0])
        get_oldest(sh, it->valuestring);
    else
        finish(sh, NULL); /* a closed shard with nothing in it */
}

void esm_kinesis_trim_check(esm_kinesis_shard *sh, const char *after)
{
    esm_kinesis_stream *s = sh->src;
    snprintf(sh->trim.after, sizeof sh->trim.after, "%s", after);
    sh->trim.pages = 0;
    esm_buf body;
    esm_buf_init(&body);
    esm_kinesis_body_shard_iterator(&body, s->map->source_name, sh->info.id,
                                    ESM_KINESIS_IT_TRIM_HORIZON, NULL, 0);
    if (!body.failed)
        sh->call = esm_aws_json_call(s->aws, KIN_TARGET("GetShardIterator"), "1.1", body.data,
                                     body.len, KIN_CALL_TIMEOUT_MS, on_horizon, sh);
    esm_buf_free(&body);
    if (!sh->call)
        esm_kinesis_shard_call_failed(sh, "GetShardIterator TRIM_HORIZON", "", "not sent", false);
}

void esm_kinesis_trim_status(const esm_kinesis_shard *sh, esm_buf *out)
{
    const esm_kinesis_trim *t = &sh->trim;
    if (!t->count) {
        esm_buf_puts(out, "null");
        return;
    }
    char iso[25];
    esm_iso8601_ms(t->at_ms, iso);
    esm_buf_printf(out, "{\"Count\":%u,\"After\":", t->count);
    esm_buf_json_cstr(out, t->lost_after);
    esm_buf_puts(out, ",\"OldestAvailable\":");
    esm_buf_json_cstr(out, t->oldest);
    esm_buf_puts(out, ",\"At\":");
    esm_buf_json_cstr(out, iso);
    esm_buf_putc(out, '}');
}
