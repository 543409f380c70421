/* What SigV4 signing costs per request: keep-alive POSTs of an SQS-sized JSON body to a local
 * no-op server, same run, alternating in rounds, in three modes:
 *   plain  unsigned;
 *   curl   libcurl's CURLOPT_AWS_SIGV4 (what esmd's http/ used before finding S1);
 *   esmd   http/esm_sigv4 (what esm_http does now): sign, append the Authorization and
 *          X-Amz-Date lines to the request's header list, send unsigned through curl.
 *
 *   bench_sigv4 URL [REQUESTS_PER_ROUND] [BODY_BYTES]
 *
 * Prints one JSON line: CPU µs per request per mode (this process: curl + OpenSSL) and the
 * differences to plain, which are the signing costs. */
#include "http/esm_sigv4.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { PLAIN, CURL_SIGNED, ESMD_SIGNED };

static size_t sink(char *d, size_t sz, size_t nm, void *u)
{
    (void)d;
    (void)u;
    return sz * nm;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* n requests on one handle; returns CPU seconds used. */
static double run(CURL *h, esm_sigv4 *signer, const char *url, const char *body, int n, int mode)
{
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/x-amz-json-1.0");
    hdr = curl_slist_append(hdr, "X-Amz-Target: AmazonSQS.ReceiveMessage");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (mode == CURL_SIGNED) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:sqs");
        curl_easy_setopt(h, CURLOPT_USERPWD,
                         "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    } else {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, NULL);
        curl_easy_setopt(h, CURLOPT_USERPWD, NULL);
    }
    double c0 = cpu_s();
    for (int i = 0; i < n; i++) {
        struct curl_slist *own = NULL;
        if (mode == ESMD_SIGNED) {
            esm_sigv4_input in = {.method = "POST",
                                  .url = url,
                                  .headers = hdr,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .scope = "aws:amz:us-east-1:sqs",
                                  .access_key_id = "AKIDEXAMPLE",
                                  .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                  .now = time(NULL)};
            esm_sigv4_output out;
            if (!esm_sigv4_sign(signer, &in, &out)) {
                fprintf(stderr, "bench_sigv4: %s\n", out.error);
                exit(1);
            }
            /* as esm_http: two more lines on the request's header list */
            own = curl_slist_append(NULL, out.date_header);
            own = curl_slist_append(own, out.authorization);
            own->next->next = hdr;
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, own);
        }
        CURLcode rc = curl_easy_perform(h);
        if (rc != CURLE_OK) {
            fprintf(stderr, "bench_sigv4: %s\n", curl_easy_strerror(rc));
            exit(1);
        }
        if (own) {
            own->next->next = NULL;
            curl_slist_free_all(own);
        }
    }
    double c = cpu_s() - c0;
    curl_slist_free_all(hdr);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_sigv4 URL [REQUESTS_PER_ROUND] [BODY_BYTES]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    size_t bytes = argc > 3 ? (size_t)atol(argv[3]) : 1500;
    char *body = malloc(bytes + 1);
    if (!body) return 1;
    memset(body, 'a', bytes);
    memcpy(body, "{\"QueueUrl\":\"", 13);
    body[bytes - 2] = '"';
    body[bytes - 1] = '}';
    body[bytes] = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    esm_sigv4 *signer = esm_sigv4_create();
    if (!signer) {
        free(body);
        return 1;
    }
    run(h, signer, argv[1], body, 200, PLAIN); /* connect, warm up */
    double plain = 0, signed_ = 0, esmd = 0;
    for (int round = 0; round < 5; round++) {
        plain += run(h, signer, argv[1], body, n, PLAIN);
        signed_ += run(h, signer, argv[1], body, n, CURL_SIGNED);
        esmd += run(h, signer, argv[1], body, n, ESMD_SIGNED);
    }
    double per_plain = plain / (5.0 * n) * 1e6, per_signed = signed_ / (5.0 * n) * 1e6,
           per_esmd = esmd / (5.0 * n) * 1e6;
    printf("{\"requests\":%d,\"body_bytes\":%zu,\"plain_cpu_us_per_request\":%.1f,"
           "\"sigv4_cpu_us_per_request\":%.1f,\"signing_cpu_us\":%.1f,\"ratio\":%.2f,"
           "\"esmd_sigv4_cpu_us_per_request\":%.1f,\"esmd_signing_cpu_us\":%.1f,"
           "\"esmd_ratio\":%.2f}\n",
           5 * n, bytes, per_plain, per_signed, per_signed - per_plain, per_signed / per_plain,
           per_esmd, per_esmd - per_plain, per_esmd / per_plain);
    esm_sigv4_destroy(signer);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    free(body);
    return 0;
}
