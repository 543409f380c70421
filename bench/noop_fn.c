/* noop_fn: the benchmark's no-op function. A single-threaded epoll HTTP/1.1 server with
 * keep-alive that answers every POST with 200 "{}" — a success for both function protocols
 * (Lambda Invoke API and plain HTTP) — so that the function host costs as little as possible
 * and the figures measure esmd, not the function.
 *
 *   noop_fn --listen 127.0.0.1:0 [--count NEEDLE] [--lat-key KEY [--lat-b64]]
 *
 * It prints "LISTENING <port>" on stdout once bound. Per request it counts the occurrences of
 * NEEDLE in the body as records (e.g. "receiptHandle" for SQS, "\"offset\"" for Kafka).
 * With --lat-key, each record's payload that follows KEY (e.g. "\"body\":\"") is expected to
 * start with "T<epoch microseconds>" (base64-encoded with --lat-b64), and the server keeps
 * now - T per record: produce -> invoke latency.
 *
 *   GET /stats  {"requests":N,"records":N,"bytes":N,"first_us":T,"last_us":T,"cpu_s":S}
 *   GET /lat    one latency in microseconds per line
 *   POST /reset clears the counters and latencies
 * Anything else that is a POST is an invocation. SIGTERM/SIGINT exit 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
} conn;

static struct {
    const char *count_needle;
    const char *lat_key;
    bool lat_b64;
    uint64_t requests, records, bytes;
    int64_t first_us, last_us;
    int64_t *lat;
    size_t n_lat, cap_lat;
} g;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes up to 24 base64 characters of s (stops at the first non-base64 char). */
static size_t b64_prefix(const char *s, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 24 && s + i < end; i++) {
        int v = b64v(s[i]);
        if (v < 0) break;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 < cap) out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = 0;
    return n;
}

static void lat_add(int64_t v)
{
    if (g.n_lat == g.cap_lat) {
        g.cap_lat = g.cap_lat ? g.cap_lat * 2 : 4096;
        g.lat = realloc(g.lat, g.cap_lat * sizeof *g.lat);
        if (!g.lat) abort();
    }
    g.lat[g.n_lat++] = v;
}

static void account(const char *body, size_t len)
{
    int64_t t = now_us();
    if (!g.requests) g.first_us = t;
    g.last_us = t;
    g.requests++;
    g.bytes += len;
    const char *end = body + len;
    if (g.count_needle) {
        size_t nl = strlen(g.count_needle);
        for (const char *p = body; (p = memmem(p, (size_t)(end - p), g.count_needle, nl)); p += nl)
            g.records++;
    }
    if (g.lat_key) {
        size_t kl = strlen(g.lat_key);
        for (const char *p = body; (p = memmem(p, (size_t)(end - p), g.lat_key, kl));) {
            p += kl;
            char tmp[32];
            const char *s = p;
            if (g.lat_b64) {
                b64_prefix(p, end, tmp, sizeof tmp);
                s = tmp;
            }
            if (*s == 'T') {
                long long v = strtoll(s + 1, NULL, 10);
                if (v > 0) lat_add(t - v);
            }
        }
    }
}

static void reply(int fd, int status, const char *ctype, const char *body, size_t blen)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                      status == 200 ? "OK" : "Not Found", ctype, blen);
    /* small replies: one write; the bench never sends pipelined requests that need more */
    char *out = malloc((size_t)hl + blen);
    if (!out) return;
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, body, blen);
    size_t off = 0, total = (size_t)hl + blen;
    while (off < total) {
        ssize_t w = write(fd, out + off, total - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
                continue;
            }
            break;
        }
        off += (size_t)w;
    }
    free(out);
}

static void handle(conn *c, const char *method, const char *path, const char *body, size_t blen)
{
    if (strcmp(method, "GET") == 0 && strcmp(path, "/stats") == 0) {
        char b[512];
        int n = snprintf(b, sizeof b,
                         "{\"requests\":%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
                         ",\"first_us\":%" PRId64 ",\"last_us\":%" PRId64 ",\"cpu_s\":%.3f}",
                         g.requests, g.records, g.bytes, g.first_us, g.last_us, cpu_seconds());
        reply(c->fd, 200, "application/json", b, (size_t)n);
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/lat") == 0) {
        size_t cap = g.n_lat * 24 + 1, n = 0;
        char *b = malloc(cap);
        if (!b) abort();
        for (size_t i = 0; i < g.n_lat; i++)
            n += (size_t)snprintf(b + n, cap - n, "%" PRId64 "\n", g.lat[i]);
        reply(c->fd, 200, "text/plain", b, n);
        free(b);
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/reset") == 0) {
        g.requests = g.records = g.bytes = 0;
        g.first_us = g.last_us = 0;
        g.n_lat = 0;
        reply(c->fd, 200, "application/json", "{}", 2);
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/healthz") == 0) {
        reply(c->fd, 200, "text/plain", "ok", 2);
    } else if (strcmp(method, "POST") == 0) {
        account(body, blen);
        reply(c->fd, 200, "application/json", "{}", 2);
    } else {
        reply(c->fd, 404, "text/plain", "", 0);
    }
}

/* Parses and serves every complete request in c->buf. Returns -1 to close the connection. */
static int serve(conn *c)
{
    for (;;) {
        char *hend = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!hend) return 0;
        size_t hlen = (size_t)(hend - c->buf) + 4;
        size_t clen = 0;
        bool expect = false;
        *hend = 0;
        for (char *l = strstr(c->buf, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
            if (strncasecmp(l + 2, "content-length:", 15) == 0)
                clen = strtoull(l + 17, NULL, 10);
            else if (strncasecmp(l + 2, "expect:", 7) == 0)
                expect = true;
            else if (strncasecmp(l + 2, "transfer-encoding:", 18) == 0)
                return -1; /* chunked bodies: not needed by the bench */
        }
        if (expect && c->len == hlen) {
            const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
            if (write(c->fd, cont, strlen(cont)) < 0) return -1;
        }
        if (c->len < hlen + clen) {
            *hend = '\r';
            return 0;
        }
        char method[8] = {0}, path[256] = {0};
        if (sscanf(c->buf, "%7s %255s", method, path) != 2) return -1;
        handle(c, method, path, c->buf + hlen, clen);
        size_t used = hlen + clen;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *listen_addr = "127.0.0.1:0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            g.count_needle = argv[++i];
        else if (strcmp(argv[i], "--lat-key") == 0 && i + 1 < argc)
            g.lat_key = argv[++i];
        else if (strcmp(argv[i], "--lat-b64") == 0)
            g.lat_b64 = true;
        else {
            fprintf(stderr, "usage: noop_fn --listen HOST:PORT [--count NEEDLE] "
                            "[--lat-key KEY [--lat-b64]]\n");
            return 2;
        }
    }
    struct sockaddr_in sa;
    if (parse_listen(listen_addr, &sa) != 0) {
        fprintf(stderr, "noop_fn: bad --listen %s\n", listen_addr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction act = {.sa_handler = on_signal};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 512) != 0) {
        perror("noop_fn: listen");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    printf("LISTENING %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[64];
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, 64, 500);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *nc = calloc(1, sizeof *nc);
                    if (!nc) abort();
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            bool closed = false;
            for (;;) {
                if (c->cap - c->len < 65536) {
                    c->cap = c->cap ? c->cap * 2 : 131072;
                    c->buf = realloc(c->buf, c->cap);
                    if (!c->buf) abort();
                }
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
                if (r > 0) {
                    c->len += (size_t)r;
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
                closed = true;
                break;
            }
            if (!closed && serve(c) != 0) closed = true;
            if (closed) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c->buf);
                free(c);
            }
        }
    }
    return 0;
}
