/* The AWS JSON-protocol client the bench tools share (sqs_tool, kinesis_tool): one keep-alive
 * libcurl handle, SigV4-signed by libcurl with dummy credentials, blocking calls. */
#ifndef BENCH_AWS_CLIENT_H
#define BENCH_AWS_CLIENT_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stddef.h>

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

typedef struct {
    CURL *h;
    sbuf out;
    const char *tool;          /* for messages: "sqs_tool" */
    const char *target_prefix; /* "AmazonSQS." */
    const char *content_type;  /* "Content-Type: application/x-amz-json-1.0" */
} client;

/* sigv4: "aws:amz:us-east-1:sqs" */
void client_init(client *c, const char *tool, const char *endpoint, const char *sigv4,
                 const char *target_prefix, const char *content_type, long timeout_s);
void client_free(client *c);
/* POSTs one call; returns the parsed reply (NULL on failure, reported on stderr). */
cJSON *call(client *c, const char *action, const char *body);

double now_s(void); /* monotonic */
double cpu_s(void); /* this process's user + system CPU */

#endif
