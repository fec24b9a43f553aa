/*
 * ws.c - the client side of RFC 6455 as petrel-bench needs it: the HTTP/1.1 upgrade with the
 * `mqtt` sub-protocol, masked binary frames out, the broker's frames unwrapped in (MQTT is a
 * byte stream, so frame boundaries are ignored; pings answered, a close ends the connection).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "petrel-bench/xport.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int
ws_request(struct buf *out, const char *host, uint16_t port, const char *path, char key[25])
{
    uint8_t raw[16];
    char req[1024];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)); /* 24 characters and NUL */
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
                     path, host, port, key);
    if (n < 0 || (size_t)n >= sizeof(req))
        return -1;
    return buf_append(out, req, (size_t)n);
}

/* The value of header `name` in the block h[0..n) (NUL-terminated copy into v), or false. */
static bool
header(const char *h, const char *name, char *v, size_t v_len)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(h, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *s = line + 2;
        if (strncasecmp(s, name, nl) != 0 || s[nl] != ':')
            continue;
        s += nl + 1;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strcspn(s, "\r\n");
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len >= v_len)
            return false;
        memcpy(v, s, len);
        v[len] = 0;
        return true;
    }
    return false;
}

long
ws_response(const uint8_t *p, size_t n, const char key[25])
{
    char h[4096], v[128], want[64];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    const uint8_t *end = NULL;
    for (size_t i = 3; i < n && !end; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            end = p + i + 1;
    if (!end)
        return n >= sizeof(h) ? -1 : 0;
    size_t len = (size_t)(end - p);
    if (len >= sizeof(h))
        return -1;
    memcpy(h, p, len);
    h[len] = 0;
    if (strncmp(h, "HTTP/1.1 101", 12) != 0)
        return -1;
    /* RFC 6455 4.2.2: base64(SHA-1(key + GUID)) proves the server read our key. */
    char cat[64];
    snprintf(cat, sizeof(cat), "%s%s", key, ws_guid);
    if (!EVP_Digest(cat, strlen(cat), md, &md_len, EVP_sha1(), NULL))
        return -1;
    EVP_EncodeBlock((unsigned char *)want, md, (int)md_len);
    if (!header(h, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, want) != 0)
        return -1;
    if (!header(h, "Sec-WebSocket-Protocol", v, sizeof(v)) || strcasecmp(v, "mqtt") != 0)
        return -1;
    return (long)len;
}

static uint32_t
next_rand(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

int
ws_frame(struct buf *out, uint8_t opcode, const uint8_t *p, size_t n, uint32_t *rng)
{
    uint8_t h[14];
    size_t hl = 2;

    if (buf_reserve(out, n + sizeof(h)) != 0)
        return -1;
    h[0] = (uint8_t)(0x80 | opcode); /* FIN: each frame is a whole message */
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    /* A client masks every frame with a fresh key (RFC 6455 5.3). */
    uint32_t m = next_rand(rng);
    uint8_t mask[4] = {(uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8), (uint8_t)m};
    memcpy(h + hl, mask, 4);
    hl += 4;
    buf_append(out, h, hl);
    uint8_t *dst = out->p + out->len;
    for (size_t i = 0; i < n; i++)
        dst[i] = p[i] ^ mask[i & 3];
    out->len += n;
    return 0;
}

/* Header bytes needed for what rx->hdr holds so far (grows as the length fields arrive). */
static size_t
need(const struct ws_rx *rx, uint64_t *len)
{
    if (rx->hlen < 2)
        return 2;
    uint8_t l7 = rx->hdr[1] & 0x7f;
    size_t n = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
    if (rx->hlen < n)
        return n;
    uint64_t v = l7;
    if (l7 == 126)
        v = (uint64_t)rx->hdr[2] << 8 | rx->hdr[3];
    else if (l7 == 127)
        for (int i = 0; i < 8; i++)
            v = v << 8 | rx->hdr[2 + i];
    if (l7 == 127)
        v &= ~(uint64_t)0 >> 1;
    *len = v;
    if (rx->hdr[0] & 0x08) /* control frames are kept whole: payload <= 125 */
        n += (size_t)(v <= 125 ? v : 0);
    return n;
}

int
ws_rx_feed(struct ws_rx *rx, const uint8_t *p, size_t n,
           bool (*data)(void *arg, const uint8_t *p, size_t n), void *arg, struct buf *pong,
           uint32_t *rng)
{
    while (n) {
        if (rx->left) {
            size_t take = n < rx->left ? n : (size_t)rx->left;
            rx->left -= take;
            if (!data(arg, p, take))
                return -3;
            p += take;
            n -= take;
            continue;
        }
        uint64_t len = 0;
        size_t want = need(rx, &len);
        while (rx->hlen < want && n) {
            size_t take = want - rx->hlen < n ? want - rx->hlen : n;
            memcpy(rx->hdr + rx->hlen, p, take);
            rx->hlen += (uint32_t)take;
            p += take;
            n -= take;
            want = need(rx, &len);
        }
        if (rx->hlen < want)
            break;
        uint8_t op = rx->hdr[0] & 0x0f;
        if (rx->hdr[1] & 0x80) /* a server never masks (RFC 6455 5.1) */
            return -1;
        if (op & 0x08) {
            if (len > 125)
                return -1;
            const uint8_t *body = rx->hdr + rx->hlen - len;
            if (op == 0x8)
                return -2;
            if (op == 0x9 && ws_frame(pong, 0xa, body, (size_t)len, rng) != 0)
                return -1;
        } else if (op > 0x2) {
            return -1;
        } else {
            rx->left = len;
        }
        rx->hlen = 0;
    }
    return 0;
}
