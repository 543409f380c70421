#include "bench_aws_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
    sbuf *b = u;
    size_t n = sz * nm;
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

void client_init(client *c, const char *tool, const char *endpoint, const char *sigv4,
                 const char *target_prefix, const char *content_type, long timeout_s)
{
    memset(c, 0, sizeof *c);
    c->tool = tool;
    c->target_prefix = target_prefix;
    c->content_type = content_type;
    c->h = curl_easy_init();
    curl_easy_setopt(c->h, CURLOPT_URL, endpoint);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->out);
    curl_easy_setopt(c->h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(c->h, CURLOPT_USERPWD, "test:test");
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
}

void client_free(client *c)
{
    curl_easy_cleanup(c->h);
    free(c->out.p);
}

cJSON *call(client *c, const char *action, const char *body)
{
    char target[128];
    snprintf(target, sizeof target, "X-Amz-Target: %s%s", c->target_prefix, action);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, c->content_type);
    h = curl_slist_append(h, target);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    c->out.n = 0;
    CURLcode rc = curl_easy_perform(c->h);
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "%s: %s: curl %d HTTP %ld %.300s\n", c->tool, action, rc, status,
                c->out.p ? c->out.p : "");
        return NULL;
    }
    return cJSON_ParseWithLength(c->out.p ? c->out.p : "{}", c->out.p ? c->out.n : 2);
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
