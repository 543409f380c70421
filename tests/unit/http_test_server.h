/* A tiny HTTP/1.1 server on a thread, for unit tests of the HTTP client and the invoker.
 * Loopback only, one thread per connection, keep-alive. Paths:
 *   /echo       200, the request body back, headers X-Conn: <connection number>, x-test-header
 *   /headers    200, the request head as the body
 *   /continue   an interim 100 Continue, then 201 "done"
 *   /big        200, 100000 bytes
 *   /fe         200 + X-Amz-Function-Error: Unhandled
 *   /throttle   429 + Retry-After: 2
 *   /slow, /hang  never answers: waits until the client closes the connection
 *   /status/N   N with an empty JSON body (e.g. /status/403 for a misconfigured endpoint)
 *   /limit      200 "{}", or 413 when the body is longer than test_server_max_body
 *   else        404
 * Header-only (static functions) so every test file can include it. */
#ifndef HTTP_TEST_SERVER_H
#define HTTP_TEST_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST_SERVER_BUF ((size_t)8 << 20) /* the largest request a test sends */

static atomic_long test_server_max_body = 64;

typedef struct {
    int lfd;
    int port;
    atomic_int connections;
    pthread_t thread;
} test_server;

typedef struct {
    int fd;
    int conn_no;
} conn_arg;

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, const char *status, const char *extra_headers, const char *body,
                    size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     body_len, extra_headers ? extra_headers : "");
    send_all(fd, head, (size_t)n);
    send_all(fd, body, body_len);
}

/* Serves requests on one connection until the peer closes it. */
static void *conn_thread(void *p)
{
    conn_arg *ca = p;
    int fd = ca->fd;
    char *buf = malloc(TEST_SERVER_BUF);
    size_t len = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            ssize_t r = recv(fd, buf + len, TEST_SERVER_BUF - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        size_t clen = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
        while (len < head_len + clen) {
            ssize_t r = recv(fd, buf + len, TEST_SERVER_BUF - len, 0);
            if (r <= 0) goto out;
            len += (size_t)r;
        }
        char path[256] = "";
        sscanf(buf, "%*s %255s", path);
        char hdrs[256];
        snprintf(hdrs, sizeof hdrs, "X-Conn: %d\r\nx-test-header:  yes  \r\n", ca->conn_no);
        if (strcmp(path, "/echo") == 0) {
            respond(fd, "200 OK", hdrs, buf + head_len, clen);
        } else if (strcmp(path, "/headers") == 0) {
            respond(fd, "200 OK", hdrs, buf, head_len); /* the request head as the body */
        } else if (strcmp(path, "/continue") == 0) {
            send_all(fd, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n", 39);
            respond(fd, "201 Created", "X-Final: 1\r\n", "done", 4);
        } else if (strcmp(path, "/big") == 0) {
            size_t n = 100000;
            char *big = malloc(n);
            memset(big, 'x', n);
            respond(fd, "200 OK", NULL, big, n);
            free(big);
        } else if (strcmp(path, "/fe") == 0) {
            respond(fd, "200 OK", "X-Amz-Function-Error: Unhandled\r\n", "{}", 2);
        } else if (strcmp(path, "/throttle") == 0) {
            respond(fd, "429 Too Many Requests", "Retry-After: 2\r\n", "{}", 2);
        } else if (strncmp(path, "/status/", 8) == 0) {
            char status[64];
            snprintf(status, sizeof status, "%.3s Test", path + 8);
            respond(fd, status, NULL, "{}", 2);
        } else if (strcmp(path, "/limit") == 0) {
            if ((long)clen > atomic_load(&test_server_max_body))
                respond(fd, "413 Content Too Large", hdrs, "too large", 9);
            else
                respond(fd, "200 OK", hdrs, "{}", 2);
        } else if (strcmp(path, "/slow") == 0 || strcmp(path, "/hang") == 0) {
            /* never answers: waits until the client gives up and closes */
            char tmp[64];
            while (recv(fd, tmp, sizeof tmp, 0) > 0) {
            }
            goto out;
        } else {
            respond(fd, "404 Not Found", NULL, "", 0);
        }
        memmove(buf, buf + head_len + clen, len - head_len - clen);
        len -= head_len + clen;
    }
out:
    close(fd);
    free(buf);
    free(ca);
    return NULL;
}

static void *accept_thread(void *p)
{
    test_server *s = p;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) return NULL;
        conn_arg *ca = malloc(sizeof *ca);
        ca->fd = fd;
        ca->conn_no = atomic_fetch_add(&s->connections, 1) + 1;
        pthread_t t;
        pthread_create(&t, NULL, conn_thread, ca);
        pthread_detach(t);
    }
}

static test_server *server_start(void)
{
    test_server *s = calloc(1, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, accept_thread, s);
    return s;
}

static void server_stop(test_server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->thread, NULL);
    free(s);
}

#endif
