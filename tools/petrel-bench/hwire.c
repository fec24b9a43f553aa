/*
 * hwire.c - petrel-bench's minimal HTTP/1.1 client pieces and text payload; see hwire.h.
 */
#include <stdio.h>
#include <string.h>

#include "petrel-bench/hwire.h"
#include "petrel-bench/wire.h"

size_t
hwire_payload(char *out, size_t size, uint32_t pub, uint32_t seq, uint64_t ts_ns)
{
    char tmp[HWIRE_PAYLOAD_MAX + 1];
    int n = snprintf(tmp, sizeof(tmp), "%u:%u:%llu:", pub, seq, (unsigned long long)ts_ns);
    size_t len = (size_t)n > size ? (size_t)n : size;

    memcpy(out, tmp, (size_t)n);
    memset(out + n, 'x', len - (size_t)n);
    return len;
}

/* Digits up to ':' at *pos into *v; false when there are none, too many or no ':'. */
static bool
field(struct slice s, size_t *pos, uint64_t max, uint64_t *v)
{
    size_t i = *pos;
    uint64_t x = 0;

    for (; i < s.len && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (x > (max - d) / 10)
            return false;
        x = x * 10 + d;
    }
    if (i == *pos || i >= s.len || s.p[i] != ':')
        return false;
    *pos = i + 1;
    *v = x;
    return true;
}

bool
hwire_payload_get(struct slice payload, uint32_t *pub, uint32_t *seq, uint64_t *ts_ns)
{
    size_t pos = 0;
    uint64_t a, b, c;

    if (!field(payload, &pos, UINT32_MAX, &a) || !field(payload, &pos, UINT32_MAX, &b) ||
        !field(payload, &pos, UINT64_MAX, &c))
        return false;
    *pub = (uint32_t)a;
    *seq = (uint32_t)b;
    *ts_ns = c;
    return true;
}

static void
put(struct buf *b, const void *p, size_t n)
{
    wire_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void
hwire_raw(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The inside of a JSON string: quotes, backslashes and control characters escaped. */
static void
put_escaped(struct buf *b, const uint8_t *p, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] != '"' && p[i] != '\\' && p[i] >= 0x20)
            continue;
        char esc[8];
        put(b, p + start, i - start);
        snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
        hwire_raw(b, esc);
        start = i + 1;
    }
    put(b, p + start, n - start);
}

static void
put_json(struct buf *b, const uint8_t *p, size_t n)
{
    put(b, "\"", 1);
    put_escaped(b, p, n);
    put(b, "\"", 1);
}

void
hwire_message(struct buf *b, const char *topic, const char *target, struct slice payload, int qos)
{
    char tail[16];

    hwire_raw(b, "{\"topic\":");
    put_json(b, (const uint8_t *)topic, strlen(topic));
    hwire_raw(b, ",\"second_topic\":\"/p2p/");
    put_escaped(b, (const uint8_t *)target, strlen(target));
    put(b, "\"", 1);
    hwire_raw(b, ",\"payload\":");
    put_json(b, payload.p, payload.len);
    snprintf(tail, sizeof(tail), ",\"qos\":%d}", qos);
    hwire_raw(b, tail);
}

void
hwire_request(struct buf *b, const char *path, const char *host, uint16_t port, const char *key,
              struct slice body)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: %s:%u\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, host, port, key, body.len);

    put(b, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
    put(b, body.p, body.len);
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Whether the header line p[0..n) is named `name` (lower case); *value after its colon. */
static bool
header_is(const uint8_t *p, size_t n, const char *name, size_t *value)
{
    size_t k = strlen(name);

    if (n <= k || p[k] != ':')
        return false;
    for (size_t i = 0; i < k; i++)
        if (lower(p[i]) != name[i])
            return false;
    *value = k + 1;
    return true;
}

long
hwire_response(const uint8_t *p, size_t n, size_t max_head, int *status, struct slice *body)
{
    size_t end = 0;

    for (size_t i = 0; i + 3 < n && i < max_head; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            end = i + 4;
            break;
        }
    }
    if (!end)
        return n >= max_head ? -1 : 0;
    /* "HTTP/1.x NNN" */
    if (end < 16 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[12] != ' ' || p[9] < '1' ||
        p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    uint64_t length = 0;
    for (size_t i = 0; i < end - 2;) {
        const uint8_t *nl = memchr(p + i, '\n', end - i);
        size_t line_end = (size_t)(nl - p), v;
        if (line_end > i && header_is(p + i, line_end - 1 - i, "content-length", &v)) {
            size_t j = i + v;
            while (j < line_end && (p[j] == ' ' || p[j] == '\t'))
                j++;
            if (j >= line_end - 1 || p[j] < '0' || p[j] > '9')
                return -1;
            length = 0;
            for (; j < line_end - 1 && p[j] >= '0' && p[j] <= '9'; j++) {
                length = length * 10 + (uint64_t)(p[j] - '0');
                if (length > (1u << 30))
                    return -1;
            }
        }
        i = line_end + 1;
    }
    if (n - end < length)
        return 0;
    *body = slice_make(p + end, (size_t)length);
    return (long)(end + length);
}

uint32_t
hwire_count(struct slice body, const char *needle)
{
    size_t k = strlen(needle);
    uint32_t c = 0;

    for (size_t i = 0; k && i + k <= body.len; i++) {
        if (memcmp(body.p + i, needle, k) == 0) {
            c++;
            i += k - 1;
        }
    }
    return c;
}

static uint32_t
offset(uint32_t pub, uint32_t n_pubs, uint32_t n_recvs)
{
    return (uint32_t)((uint64_t)pub * n_recvs / n_pubs);
}

uint32_t
hwire_target(uint32_t pub, uint32_t seq, uint32_t n_pubs, uint32_t n_recvs)
{
    return (uint32_t)(((uint64_t)seq + offset(pub, n_pubs, n_recvs)) % n_recvs);
}

uint32_t
hwire_stream_sent(uint32_t pub, uint32_t recv, uint32_t sent, uint32_t n_pubs, uint32_t n_recvs)
{
    /* The first message for recv is number r; then every n_recvs-th. */
    uint32_t off = offset(pub, n_pubs, n_recvs) % n_recvs;
    uint32_t r = (recv + n_recvs - off) % n_recvs;
    return sent > r ? (sent - r - 1) / n_recvs + 1 : 0;
}
