#include "engine/esm_admin_guard.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

bool esm_admin_is_read_method(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The media type of a Content-Type value ("Text/Plain; charset=x" -> "Text/Plain"): start and
 * length, parameters and surrounding whitespace left out. */
static size_t media_type(const char *v, const char **start)
{
    while (is_ows(*v))
        v++;
    size_t n = 0;
    while (v[n] && v[n] != ';' && !is_ows(v[n]))
        n++;
    *start = v;
    return n;
}

static bool media_is(const char *v, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* The three types an HTML form or a fetch() without preflight may send to another origin. */
static bool form_type(const char *v, size_t n)
{
    return media_is(v, n, "application/x-www-form-urlencoded") ||
           media_is(v, n, "multipart/form-data") || media_is(v, n, "text/plain");
}

static bool has_body(const esm_admin_request *r)
{
    if (r->transfer_encoding) return true;
    if (!r->content_length) return false;
    for (const char *p = r->content_length; *p; p++)
        if (*p != '0' && !is_ows(*p)) return true;
    return false;
}

/* host[:port] names a literal address or localhost, never a DNS name: a page that rebinds its
 * own name to 127.0.0.1 is same-origin to the browser, but its Host is that name. */
static bool literal_host(const char *h)
{
    if (h[0] == '[') return strchr(h, ']') != NULL;
    size_t n = strcspn(h, ":");
    if (n == 9 && strncasecmp(h, "localhost", 9) == 0) return true;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.')) return false;
    return true;
}

/* Same origin: Origin is exactly http://<Host>, and Host is an address (see literal_host). */
static bool same_origin(const esm_admin_request *r)
{
    static const char scheme[] = "http://";
    const size_t sl = sizeof scheme - 1;
    if (!r->host || !literal_host(r->host)) return false;
    return strncasecmp(r->origin, scheme, sl) == 0 && strcasecmp(r->origin + sl, r->host) == 0;
}

static bool cross_site(const esm_admin_request *r)
{
    if (r->sec_fetch_site && strcasecmp(r->sec_fetch_site, "same-origin") != 0 &&
        strcasecmp(r->sec_fetch_site, "none") != 0)
        return true;
    return r->origin && !same_origin(r);
}

bool esm_admin_token_equal(const char *given, size_t given_len, const char *token)
{
    size_t n = strlen(token);
    unsigned diff = given_len != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
    return diff == 0;
}

static bool bearer_matches(const char *auth, const char *token)
{
    if (!auth) return false;
    while (is_ows(*auth))
        auth++;
    if (strncasecmp(auth, "Bearer", 6) != 0 || !is_ows(auth[6])) return false;
    const char *t = auth + 6;
    while (is_ows(*t))
        t++;
    size_t n = strlen(t);
    while (n && is_ows(t[n - 1]))
        n--;
    return esm_admin_token_equal(t, n, token);
}

esm_admin_verdict esm_admin_guard(const esm_admin_request *r, const char *token)
{
    if (esm_admin_is_read_method(r->method)) return ESM_ADMIN_ALLOW;
    if (cross_site(r)) return ESM_ADMIN_CROSS_SITE;
    const char *mt = "";
    size_t mn = r->content_type ? media_type(r->content_type, &mt) : 0;
    if (r->content_type && form_type(mt, mn)) return ESM_ADMIN_FORM_CONTENT_TYPE;
    if (has_body(r) && !media_is(mt, mn, "application/json")) return ESM_ADMIN_BODY_NOT_JSON;
    if (token && token[0])
        return bearer_matches(r->authorization, token) ? ESM_ADMIN_ALLOW : ESM_ADMIN_BAD_TOKEN;
    return r->loopback ? ESM_ADMIN_ALLOW : ESM_ADMIN_REMOTE_WITHOUT_TOKEN;
}

static const struct {
    const char *reason, *json;
} verdicts[ESM_ADMIN_VERDICTS] = {
    [ESM_ADMIN_ALLOW] = {"allowed", "{}"},
    [ESM_ADMIN_CROSS_SITE] =
        {"cross_site",
         "{\"error\":\"refused: Origin or Sec-Fetch-Site shows a web page on another site sent "
         "this request\",\"reason\":\"cross_site\",\"fix\":\"send state-changing admin requests "
         "from a command-line client such as curl, not from a browser\"}"},
    [ESM_ADMIN_FORM_CONTENT_TYPE] =
        {"form_content_type",
         "{\"error\":\"refused: Content-Type application/x-www-form-urlencoded, "
         "multipart/form-data and text/plain can be sent cross-site by a browser\","
         "\"reason\":\"form_content_type\",\"fix\":\"send no body and no Content-Type, or a "
         "body with Content-Type: application/json\"}"},
    [ESM_ADMIN_BODY_NOT_JSON] =
        {"body_not_json",
         "{\"error\":\"refused: the request has a body that is not application/json\","
         "\"reason\":\"body_not_json\",\"fix\":\"send no body, or a body with Content-Type: "
         "application/json\"}"},
    [ESM_ADMIN_REMOTE_WITHOUT_TOKEN] =
        {"remote_without_token",
         "{\"error\":\"refused: state-changing admin requests from a non-loopback address need "
         "an admin token, and none is configured\",\"reason\":\"remote_without_token\","
         "\"fix\":\"send the request from the esmd host (127.0.0.1), or set admin_token_file "
         "(or admin_token) in the config and send Authorization: Bearer <token>\"}"},
    [ESM_ADMIN_BAD_TOKEN] =
        {"bad_token",
         "{\"error\":\"refused: the Authorization header does not carry the admin token\","
         "\"reason\":\"bad_token\",\"fix\":\"send Authorization: Bearer <token> with the token "
         "of admin_token_file (or admin_token)\"}"},
};

const char *esm_admin_verdict_json(esm_admin_verdict v)
{
    return (unsigned)v < ESM_ADMIN_VERDICTS ? verdicts[v].json : "{}";
}

const char *esm_admin_verdict_reason(esm_admin_verdict v)
{
    return (unsigned)v < ESM_ADMIN_VERDICTS ? verdicts[v].reason : "unknown";
}

bool esm_admin_addr_is_loopback(const struct sockaddr *sa)
{
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}
