/* invoke_cli: drives esm_invoker from the command line for the integration tests.
 *
 *   invoke_cli --url URL [--protocol lambda|http] [--timeout S] [--max-concurrency N]
 *              [--header "Name: value"]... [--count N]
 *              [--payload JSON | --payload-file F | --payload-size BYTES]
 *              [--sign REGION]   (SigV4 with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 *                                 AWS_SESSION_TOKEN from the environment)
 *              [--rbif ID,ID,...] [--rbif-kafka]
 *
 * Starts N invocations at once on one libev loop (the invoker queues beyond max concurrency)
 * and prints one JSON line per result in completion order, then a summary line
 * {"summary":true,"done":N,"refused":N,"max_in_flight":N,"max_queued":N}.
 * A refused invocation (payload over 6 MB) prints {"i":k,"refused":true}. */
#include "common/esm_buf.h"
#include "http/esm_http.h"
#include "invoker/esm_invoker.h"
#include "invoker/esm_rbif.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int done, expected;
    size_t max_in_flight, max_queued;
    esm_invoker *inv;
    const char **rbif_ids;
    size_t n_rbif;
    esm_rbif_id_kind rbif_kind;
} run_state;

typedef struct {
    run_state *rs;
    int index;
} call_arg;

static void note_depth(run_state *rs)
{
    size_t f = esm_invoker_in_flight(rs->inv), q = esm_invoker_queued(rs->inv);
    if (f > rs->max_in_flight) rs->max_in_flight = f;
    if (q > rs->max_queued) rs->max_queued = q;
}

static void on_result(const esm_invoke_result *r, void *arg)
{
    call_arg *ca = arg;
    run_state *rs = ca->rs;
    esm_buf b;
    esm_buf_init(&b);
    esm_buf_printf(&b, "{\"i\":%d,\"class\":\"%s\",\"status\":%ld,\"function_error\":", ca->index,
                   esm_invoke_class_name(r->cls), r->status);
    esm_buf_json_cstr(&b, r->function_error);
    esm_buf_puts(&b, ",\"executed_version\":");
    esm_buf_json_cstr(&b, r->executed_version);
    esm_buf_puts(&b, ",\"request_id\":");
    esm_buf_json_cstr(&b, r->request_id);
    esm_buf_printf(&b, ",\"retry_after_ms\":%lld,\"latency_ms\":%.1f,\"reason\":",
                   (long long)r->retry_after_ms, r->latency_ms);
    esm_buf_json_cstr(&b, r->reason);
    esm_buf_printf(&b, ",\"misconfigured\":%s,\"body_len\":%zu,\"body\":",
                   r->misconfigured ? "true" : "false", r->body_len);
    esm_buf_json_str(&b, r->body, r->body_len > 2000 ? 2000 : r->body_len);
    if (rs->rbif_ids) {
        size_t *failed = calloc(rs->n_rbif ? rs->n_rbif : 1, sizeof *failed), nf = 0;
        char why[256];
        esm_rbif_status st = esm_rbif_parse(r->body, r->body_len, rs->rbif_kind, rs->rbif_ids,
                                            rs->n_rbif, failed, &nf, why, sizeof why);
        esm_buf_printf(&b, ",\"rbif\":\"%s\",\"rbif_failed\":[", esm_rbif_status_name(st));
        for (size_t k = 0; k < nf; k++)
            esm_buf_printf(&b, "%s%zu", k ? "," : "", failed[k]);
        esm_buf_puts(&b, "],\"rbif_why\":");
        esm_buf_json_cstr(&b, why);
        free(failed);
    }
    esm_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    esm_buf_free(&b);
    note_depth(rs);
    rs->done++;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    esm_buf b;
    esm_buf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        esm_buf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    esm_buf_cstr(&b);
    return b.data ? b.data : strdup("");
}

/* An SQS-shaped event of exactly `size` bytes (size >= 64). */
static char *make_payload(size_t size, size_t *len)
{
    const char *head = "{\"Records\":[{\"messageId\":\"big-1\",\"body\":\"";
    const char *tail = "\"}]}";
    size_t hl = strlen(head), tl = strlen(tail);
    if (size < hl + tl) size = hl + tl;
    char *p = malloc(size + 1);
    if (!p) return NULL;
    memcpy(p, head, hl);
    memset(p + hl, 'x', size - hl - tl);
    memcpy(p + size - tl, tail, tl);
    p[size] = '\0';
    *len = size;
    return p;
}

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr, "usage: invoke_cli --url URL [--protocol lambda|http] [--timeout S] "
                    "[--max-concurrency N] [--header H]... [--count N] [--payload JSON | "
                    "--payload-file F | --payload-size N] [--sign REGION] [--rbif IDS] "
                    "[--rbif-kafka]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    esm_function_config fn = {
        .name = "cli", .protocol = ESM_PROTO_LAMBDA, .timeout_seconds = 30, .max_concurrency = 10};
    esm_kv headers[32];
    int count = 1;
    char *payload = NULL;
    size_t payload_len = 0;
    const char *sign_region = NULL;
    run_state rs = {0};
    rs.rbif_kind = ESM_RBIF_ID_STRING;
    char *rbif_copy = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--rbif-kafka") == 0) {
            rs.rbif_kind = ESM_RBIF_ID_KAFKA;
            continue;
        }
        if (!v) {
            usage();
        }
        i++;
        if (strcmp(a, "--url") == 0)
            fn.url = (char *)v;
        else if (strcmp(a, "--protocol") == 0)
            fn.protocol = strcmp(v, "http") == 0 ? ESM_PROTO_HTTP : ESM_PROTO_LAMBDA;
        else if (strcmp(a, "--timeout") == 0)
            fn.timeout_seconds = atoi(v);
        else if (strcmp(a, "--max-concurrency") == 0)
            fn.max_concurrency = atoi(v);
        else if (strcmp(a, "--count") == 0)
            count = atoi(v);
        else if (strcmp(a, "--sign") == 0)
            sign_region = v;
        else if (strcmp(a, "--header") == 0 && fn.n_headers < 32) {
            const char *colon = strchr(v, ':');
            if (!colon) {
                usage();
            }
            esm_kv *h = &headers[fn.n_headers++];
            h->name = strndup(v, (size_t)(colon - v));
            h->value = strdup(colon[1] == ' ' ? colon + 2 : colon + 1);
        } else if (strcmp(a, "--payload") == 0) {
            free(payload);
            payload = strdup(v);
            payload_len = strlen(v);
        } else if (strcmp(a, "--payload-file") == 0) {
            free(payload);
            payload = read_file(v, &payload_len);
            if (!payload) {
                perror(v);
                exit(2);
            }
        } else if (strcmp(a, "--payload-size") == 0) {
            free(payload);
            payload = make_payload(strtoul(v, NULL, 10), &payload_len);
        } else if (strcmp(a, "--rbif") == 0) {
            rbif_copy = strdup(v);
            rs.rbif_ids = calloc(strlen(v) + 1, sizeof *rs.rbif_ids);
            for (char *save = NULL, *t = strtok_r(rbif_copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                rs.rbif_ids[rs.n_rbif++] = t;
        } else {
            usage();
        }
    }
    if (!fn.url || count < 1) {
        usage();
    }
    fn.headers = headers;
    if (!payload) {
        payload = strdup("{\"Records\":[]}");
        payload_len = strlen(payload);
    }

    struct ev_loop *loop = ev_default_loop(0);
    esm_http *http = esm_http_create(loop);
    esm_aws_credentials creds = {.region = sign_region,
                                 .access_key_id = getenv("AWS_ACCESS_KEY_ID"),
                                 .secret_access_key = getenv("AWS_SECRET_ACCESS_KEY"),
                                 .session_token = getenv("AWS_SESSION_TOKEN")};
    rs.inv = esm_invoker_create(loop, http, &fn, sign_region ? &creds : NULL);
    if (!http || !rs.inv) {
        fprintf(stderr, "invoke_cli: cannot create the invoker\n");
        exit(1);
    }
    call_arg *args = calloc((size_t)count, sizeof *args);
    int refused = 0;
    for (int i = 0; i < count; i++) {
        args[i].rs = &rs;
        args[i].index = i;
        if (!esm_invoker_invoke(rs.inv, payload, payload_len, on_result, &args[i])) {
            printf("{\"i\":%d,\"refused\":true}\n", i);
            refused++;
        }
        note_depth(&rs);
    }
    rs.expected = count - refused;
    while (rs.done < rs.expected)
        ev_run(loop, EVRUN_ONCE);
    printf("{\"summary\":true,\"done\":%d,\"refused\":%d,\"max_in_flight\":%zu,\"max_queued\":%zu}"
           "\n",
           rs.done, refused, rs.max_in_flight, rs.max_queued);
    esm_invoker_destroy(rs.inv);
    esm_http_destroy(http);
    ev_loop_destroy(loop);
    for (size_t i = 0; i < fn.n_headers; i++) {
        free(headers[i].name);
        free(headers[i].value);
    }
    free(args);
    free(payload);
    free(rbif_copy);
    free(rs.rbif_ids);
    return 0;
}
