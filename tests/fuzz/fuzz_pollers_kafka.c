/* libFuzzer target for the Kafka event renderer (pollers/kafka/esm_kafka_render.c): topic, key,
 * value and headers are arbitrary bytes (invalid UTF-8, NULs, empty). Input layout: byte 0 =
 * flags (null key, null value, timestamp type), bytes 1..8 = offset, then fields separated by
 * 0xFF bytes: topic, key, value, then header name/value pairs. Invariants:
 *  - the record is one JSON object with the topic, partition and offset given;
 *  - "value" / "key" are base64 of exactly the bytes given (absent when null);
 *  - every header value is an array of signed bytes equal to the bytes given;
 *  - open + record + close parses, and its size is what esm_kafka_event_overhead predicts. */
// FUZZ_SOURCES: pollers/kafka/esm_kafka_render.c
#include "pollers/kafka/esm_kafka_int.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 18

__attribute__((noreturn)) static void fail(const char *what)
{
    fprintf(stderr, "invariant failed: %s\n", what);
    abort();
}
#define check(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) fail(what);                                                                   \
    } while (0)

static void check_b64(const cJSON *o, const char *key, const void *bytes, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!bytes) {
        check(v == NULL, "a null key/value is left out");
        return;
    }
    check(cJSON_IsString(v), "key/value is a string");
    size_t sl = strlen(v->valuestring);
    unsigned char *out = malloc(sl * 3 / 4 + 4);
    long n = esm_base64_decode(v->valuestring, sl, out);
    check(n == (long)len && (len == 0 || memcmp(out, bytes, len) == 0), "base64 of the bytes");
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9) return 0;
    uint8_t flags = data[0];
    int64_t offset;
    memcpy(&offset, data + 1, 8);
    const uint8_t *p = data + 9, *end = data + size;
    const uint8_t *f[MAXF];
    size_t fl[MAXF], nf = 0;
    while (nf < MAXF) {
        const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
        f[nf] = p;
        fl[nf++] = sep ? (size_t)(sep - p) : (size_t)(end - p);
        if (!sep) break;
        p = sep + 1;
    }
    if (nf < 3) return 0;
    char *topic = strndup((const char *)f[0], fl[0]); /* a C string: stops at a NUL */
    esm_kafka_header hs[(MAXF - 3) / 2];
    size_t nh = 0;
    char *names[(MAXF - 3) / 2];
    for (size_t i = 3; i + 1 < nf; i += 2, nh++) {
        names[nh] = strndup((const char *)f[i], fl[i]);
        hs[nh].name = names[nh];
        hs[nh].name_len = strlen(names[nh]);
        hs[nh].value = (flags & 8) && nh == 0 ? NULL : f[i + 1];
        hs[nh].value_len = hs[nh].value ? fl[i + 1] : 0;
    }
    esm_kafka_record_view r = {
        .topic = topic,
        .partition = (int32_t)(offset & 0x7fff),
        .offset = offset,
        .timestamp_ms = offset ^ 0x5a5a,
        .timestamp_type = (esm_kafka_ts_type)((flags >> 4) % 3),
        .key = (flags & 1) ? NULL : f[1],
        .key_len = (flags & 1) ? 0 : fl[1],
        .value = (flags & 2) ? NULL : f[2],
        .value_len = (flags & 2) ? 0 : fl[2],
        .headers = hs,
        .n_headers = nh,
    };
    esm_buf rec;
    esm_buf_init(&rec);
    esm_kafka_render_record(&r, &rec);
    check(!rec.failed, "render succeeded");
    cJSON *j = cJSON_ParseWithLength(rec.data, rec.len);
    check(j && cJSON_IsObject(j), "the record is a JSON object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "topic");
    check(cJSON_IsString(t), "topic is a string");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "offset");
    check(cJSON_IsNumber(off), "offset is a number");
    const cJSON *part = cJSON_GetObjectItemCaseSensitive(j, "partition");
    check(cJSON_IsNumber(part) && (int32_t)part->valuedouble == r.partition, "partition");
    check_b64(j, "key", r.key, r.key_len);
    check_b64(j, "value", r.value, r.value_len);
    const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(j, "headers");
    check(cJSON_IsArray(hdrs) && cJSON_GetArraySize(hdrs) == (int)nh, "one entry per header");
    for (size_t i = 0; i < nh; i++) {
        const cJSON *h = cJSON_GetArrayItem(hdrs, (int)i);
        check(cJSON_IsObject(h) && h->child && !h->child->next, "a header is a one-key object");
        const cJSON *arr = h->child;
        check(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == (int)hs[i].value_len,
              "header value length");
        const int8_t *bytes = hs[i].value;
        for (size_t k = 0; k < hs[i].value_len; k++) {
            const cJSON *b = cJSON_GetArrayItem(arr, (int)k);
            check(cJSON_IsNumber(b) && b->valueint == bytes[k], "header byte as signed value");
        }
    }
    cJSON_Delete(j);

    esm_buf ev;
    esm_buf_init(&ev);
    esm_kafka_render_event_open("127.0.0.1:9092", topic, r.partition, &ev);
    esm_buf_append(&ev, rec.data, rec.len);
    esm_buf_putc(&ev, ',');
    esm_buf_append(&ev, rec.data, rec.len);
    esm_kafka_render_event_close(&ev);
    check(ev.len ==
              esm_kafka_event_overhead("127.0.0.1:9092", topic, r.partition) + 2 * rec.len + 1,
          "event size predicted");
    cJSON *e = cJSON_ParseWithLength(ev.data, ev.len);
    check(e != NULL, "the event parses");
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(e, "records");
    check(cJSON_IsObject(recs) && recs->child && cJSON_GetArraySize(recs->child) == 2,
          "the event holds the records under one partition key");
    cJSON_Delete(e);
    esm_buf_free(&ev);
    esm_buf_free(&rec);
    for (size_t i = 0; i < nh; i++)
        free(names[i]);
    free(topic);
    return 0;
}
