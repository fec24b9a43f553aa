/*
 * ws_http.c - the WebSocket opening handshake, server side [RFC 6455 4.2]; see ws_http.h.
 *
 * The request must be `GET <path> HTTP/1.1` with Host, `Upgrade: websocket`, a Connection
 * header naming Upgrade, `Sec-WebSocket-Version: 13` and one Sec-WebSocket-Key (16 bytes in
 * base64). Header names are case-insensitive, header lines end with CRLF, and folded lines or
 * whitespace before a colon are refused [RFC 7230 3.2.4]. The query string does not take part
 * in matching the path. Sub-protocols `mqtt` and `mqttv3.1` are accepted, in the client's
 * order of preference; a client that offers only others is refused (it would have to fail the
 * connection anyway), one that offers none gets none named. Extensions are never accepted, so
 * permessage-deflate and the like are declined by omission.
 */
#include "net/ws_http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "net/ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct ws_request {
    bool has_host;
    bool has_upgrade;        /* Upgrade: websocket */
    bool has_conn_upgrade;   /* Connection: ..., Upgrade */
    bool has_version;
    bool version_ok;         /* Sec-WebSocket-Version: 13 */
    int n_keys;
    const char *key;
    size_t key_len;
    bool offered_proto;
    const char *proto;       /* the sub-protocol chosen, or NULL */
};

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool
token_eq(const char *p, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(p, word, len) == 0;
}

/* Call fn on each element of a comma-separated header value, trimmed; stops when fn says so. */
static void
each_token(const char *p, size_t len, bool (*fn)(void *arg, const char *t, size_t t_len),
           void *arg)
{
    const char *end = p + len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *s = p;
        while (s < e && is_ows(*s))
            s++;
        const char *t = e;
        while (t > s && is_ows(t[-1]))
            t--;
        if (t > s && !fn(arg, s, (size_t)(t - s)))
            return;
        p = comma ? comma + 1 : end;
    }
}

static bool
find_upgrade_token(void *arg, const char *t, size_t t_len)
{
    bool *found = arg;
    if (token_eq(t, t_len, "upgrade"))
        *found = true;
    return !*found;
}

static bool
find_websocket_token(void *arg, const char *t, size_t t_len)
{
    bool *found = arg;
    if (token_eq(t, t_len, "websocket"))
        *found = true;
    return !*found;
}

/* Sub-protocols are case-sensitive [RFC 6455 4.1]; the client's order is its preference. */
static bool
choose_protocol(void *arg, const char *t, size_t t_len)
{
    struct ws_request *r = arg;
    r->offered_proto = true;
    if (t_len == 4 && memcmp(t, "mqtt", 4) == 0)
        r->proto = "mqtt";
    else if (t_len == 8 && memcmp(t, "mqttv3.1", 8) == 0)
        r->proto = "mqttv3.1";
    return r->proto == NULL;
}

/* 16 random bytes in base64: 22 characters of the alphabet and "==" [RFC 6455 4.1]. */
static bool
key_valid(const char *k, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    if (len != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (!k[i] || !strchr(b64, k[i]))
            return false;
    }
    return true;
}

static void
header(struct ws_request *r, const char *name, size_t name_len, const char *v, size_t v_len)
{
    if (token_eq(name, name_len, "host")) {
        r->has_host = true;
    } else if (token_eq(name, name_len, "upgrade")) {
        if (!r->has_upgrade)
            each_token(v, v_len, find_websocket_token, &r->has_upgrade);
    } else if (token_eq(name, name_len, "connection")) {
        if (!r->has_conn_upgrade)
            each_token(v, v_len, find_upgrade_token, &r->has_conn_upgrade);
    } else if (token_eq(name, name_len, "sec-websocket-version")) {
        r->has_version = true;
        r->version_ok = v_len == 2 && memcmp(v, "13", 2) == 0;
    } else if (token_eq(name, name_len, "sec-websocket-key")) {
        r->n_keys++;
        r->key = v;
        r->key_len = v_len;
    } else if (token_eq(name, name_len, "sec-websocket-protocol")) {
        if (!r->proto)
            each_token(v, v_len, choose_protocol, r);
    }
}

/* The path of a request target: origin form "/p?q", or absolute form "http://h/p?q". */
static bool
target_path(const char *t, size_t len, const char **path, size_t *path_len)
{
    size_t skip = 0;

    if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    if (skip) {
        const char *slash = memchr(t + skip, '/', len - skip);
        if (!slash) {
            *path = "/";
            *path_len = 1;
            return true;
        }
        len -= (size_t)(slash - t);
        t = slash;
    }
    if (len == 0 || t[0] != '/')
        return false;
    size_t n = 0;
    while (n < len && t[n] != '?' && t[n] != '#')
        n++;
    *path = t;
    *path_len = n;
    return true;
}

/* Parse the request head p[0..len) (ending with its blank line). Returns 101 with `r` filled,
 * or the HTTP status of the refusal; *why names the reason. */
static int
parse_request(const char *p, size_t len, const char *want_path, struct ws_request *r,
              const char **why)
{
    const char *end = p + len;
    const char *eol = memmem(p, len, "\r\n", 2);

    memset(r, 0, sizeof(*r));
    /* request line: GET SP target SP HTTP/1.1 */
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2) {
        *why = "malformed request line";
        return 400;
    }
    if (sp1 - p != 3 || memcmp(p, "GET", 3) != 0) { /* methods are case-sensitive */
        *why = "method is not GET";
        return 400;
    }
    if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.1", 8) != 0) {
        *why = "not HTTP/1.1";
        return 400;
    }
    const char *path;
    size_t path_len;
    if (!target_path(sp1 + 1, (size_t)(sp2 - sp1 - 1), &path, &path_len)) {
        *why = "malformed request target";
        return 400;
    }
    if (path_len != strlen(want_path) || memcmp(path, want_path, path_len) != 0) {
        *why = "unknown path";
        return 404;
    }
    /* header fields, up to the blank line */
    for (const char *line = eol + 2; line < end;) {
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (eol == line)
            break;
        for (const char *c = line; c < eol; c++) {
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
                *why = "control character in a header";
                return 400;
            }
        }
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        /* obs-fold and whitespace before the colon are refused [RFC 7230 3.2.4] */
        if (!colon || colon == line || is_ows(line[0]) || is_ows(colon[-1])) {
            *why = "malformed header";
            return 400;
        }
        const char *v = colon + 1, *v_end = eol;
        while (v < v_end && is_ows(*v))
            v++;
        while (v_end > v && is_ows(v_end[-1]))
            v_end--;
        header(r, line, (size_t)(colon - line), v, (size_t)(v_end - v));
        line = eol + 2;
    }
    /* [RFC 6455 4.2.1] */
    if (!r->has_host) {
        *why = "no Host";
        return 400;
    }
    if (!r->has_upgrade || !r->has_conn_upgrade) {
        *why = "not a WebSocket upgrade";
        return 426;
    }
    if (!r->version_ok) {
        *why = r->has_version ? "unsupported Sec-WebSocket-Version" : "no Sec-WebSocket-Version";
        return 426;
    }
    if (r->n_keys != 1 || !key_valid(r->key, r->key_len)) {
        *why = "missing or malformed Sec-WebSocket-Key";
        return 400;
    }
    if (r->offered_proto && !r->proto) {
        *why = "no supported sub-protocol (mqtt, mqttv3.1)";
        return 400;
    }
    return 101;
}

int
ws_accept_key(const char *key, size_t key_len, char out[29])
{
    static const char guid[] = WS_GUID;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, key, key_len) &&
             EVP_DigestUpdate(ctx, guid, sizeof(guid) - 1) &&
             EVP_DigestFinal_ex(ctx, md, &md_len) && md_len == 20;

    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
    return 0;
}

void
ws_http_parse(const char *head, size_t len, const char *path, struct ws_upgrade *u)
{
    struct ws_request r;

    memset(u, 0, sizeof(*u));
    u->why = "";
    u->status = parse_request(head, len, path, &r, &u->why);
    if (u->status != 101)
        return;
    if (ws_accept_key(r.key, r.key_len, u->accept) != 0) {
        u->status = 400;
        u->why = "cannot hash the key";
        return;
    }
    u->protocol = r.proto;
}

int
ws_http_answer(const struct ws_upgrade *u, struct buf *out)
{
    char head[512], body[160];
    int n, body_len = 0;

    if (u->status == 101) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     u->accept, u->protocol ? "Sec-WebSocket-Protocol: " : "",
                     u->protocol ? u->protocol : "", u->protocol ? "\r\n" : "");
        return buf_append(out, head, (size_t)n);
    }
    const char *text = u->status == 404   ? "Not Found"
                       : u->status == 426 ? "Upgrade Required"
                       : u->status == 431 ? "Request Header Fields Too Large"
                                          : "Bad Request";
    /* 426 says what would have been accepted [RFC 6455 4.2.2, 4.4] */
    const char *extra = u->status == 426 ? "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                           "Sec-WebSocket-Version: 13\r\n"
                                         : "";
    body_len = snprintf(body, sizeof(body), "%d %s: %s\n", u->status, text, u->why);
    if (body_len >= (int)sizeof(body))
        body_len = (int)sizeof(body) - 1;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n",
                 u->status, text, extra, body_len);
    int rc = buf_reserve(out, (size_t)n + (size_t)body_len);
    if (rc == 0) {
        buf_append(out, head, (size_t)n);
        buf_append(out, body, (size_t)body_len);
    }
    return rc;
}
