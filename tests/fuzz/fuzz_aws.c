/* libFuzzer target for the AWS client's error classification (esm_aws_classify), which decides
 * whether a source retries, backs off or reports a call as failed. Input: bytes 0..1 = HTTP
 * status (0..999), byte 2 = curl code (0 most of the time), the rest = the response body (JSON or
 * XML). Invariants: ok exactly for 2xx without a transport error; a failure always has an error
 * type and a message; 429 and throttle types are throttles; throttles and 5xx are retriable,
 * other 4xx are not; a JSON error type never keeps a "prefix#" or ":suffix". */
// FUZZ_SOURCES: aws/*.c http/*.c
// FUZZ_LIBS: -lcurl -lev -lcrypto
#include "aws/esm_aws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    if (size < 3) return 0;
    long status = ((long)data[0] << 8 | data[1]) % 1000;
    int curl_code = data[2] < 240 ? 0 : data[2] - 239;
    size_t len = size - 3;
    char *body = malloc(len + 1); /* NUL-terminated, as esm_http hands it over */
    if (!body) return 0;
    memcpy(body, data + 3, len);
    body[len] = '\0';
    cJSON *json = cJSON_ParseWithLength(body, len);
    esm_aws_result res;
    memset(&res, 0, sizeof res);
    res.json = json;
    res.body = body;
    res.body_len = len;
    esm_aws_classify(status, curl_code, body, len, &res);
    bool two = status >= 200 && status < 300;
    check(res.status == status, "status kept");
    check(res.ok == (two && curl_code == 0), "ok exactly for 2xx without transport error");
    check(memchr(res.error_type, 0, sizeof res.error_type) != NULL, "error_type terminated");
    check(memchr(res.message, 0, sizeof res.message) != NULL, "message terminated");
    if (!res.ok) {
        check(res.error_type[0] != '\0', "a failure has an error type");
        if (curl_code == 0 && status != 0) {
            check(res.message[0] != '\0', "a failure has a message");
            if (json) {
                check(strchr(res.error_type, ':') == NULL, "no :suffix in the error type");
                check(strchr(res.error_type, '#') == NULL, "no prefix# in the error type");
            }
            if (status == 429) check(res.throttled, "429 is a throttle");
            if (res.throttled) check(res.retriable, "throttles are retriable");
            if (status >= 500) check(res.retriable, "5xx is retriable");
            if (status >= 400 && status < 500 && !res.throttled)
                check(!res.retriable, "other 4xx are not retriable");
        } else {
            check(res.retriable, "transport errors are retriable");
        }
    } else {
        check(!res.throttled, "a success is no throttle");
    }
    cJSON_Delete(json);
    free(body);
    return 0;
}
