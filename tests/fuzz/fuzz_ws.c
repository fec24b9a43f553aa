/*
 * fuzz_ws.c - libFuzzer target for the WebSocket transport (net/ws.c, net/ws_http.c).
 *
 * Byte 0 picks the mode: even, the input is everything the client sends (request head and
 * frames); odd, a valid upgrade request goes first and the input is frames only. Byte 1 sets
 * the size of the pieces the stream arrives in (1 to 64 bytes), so headers, masks and payloads
 * are cut everywhere. The stream reaches the transport through a fake inner transport (no
 * sockets); what comes out is echoed back through the framing, as a broker answers.
 * Invariants: read returns bytes appended, 0, -EAGAIN or a negative errno, and never yields
 * more MQTT bytes than came in; once it has failed it keeps failing; write never fails here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond))                                                                           \
            __builtin_trap();                                                                  \
    } while (0)

static const char UPGRADE[] = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

static struct {
    const uint8_t *p;
    size_t len, pos, piece;
} stream;

static int
feed_read(struct transport *t, int fd, struct buf *in)
{
    size_t n = stream.len - stream.pos;

    if (n == 0)
        return 0;
    if (n > stream.piece)
        n = stream.piece;
    if (buf_append(in, stream.p + stream.pos, n) != 0)
        return -ENOMEM;
    stream.pos += n;
    return (int)n;
}

static int
drop_write(struct transport *t, int fd, struct buf *out)
{
    buf_consume(out, out->len);
    return 0;
}

static bool
no_pending(const struct transport *t)
{
    return false;
}

static void
free_fake(struct transport *t)
{
    free(t);
}

static const struct transport_ops feed_ops = {"feed",     feed_read, drop_write,
                                              no_pending, free_fake, NULL};

static struct transport *
feed_create(struct transport_factory *f, int fd)
{
    struct transport *t = malloc(sizeof(*t));
    t->ops = &feed_ops;
    return t;
}

static void
feed_factory_free(struct transport_factory *f)
{
    free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool upgrade_first = data[0] & 1;
    struct buf all, in, out;
    buf_init(&all);
    buf_init(&in);
    buf_init(&out);
    if (upgrade_first)
        buf_append(&all, UPGRADE, strlen(UPGRADE));
    buf_append(&all, data + 2, size - 2);
    stream.p = all.p;
    stream.len = all.len;
    stream.pos = 0;
    stream.piece = 1 + data[1] % 64;

    struct transport_factory *inner = malloc(sizeof(*inner));
    inner->create = feed_create;
    inner->free = feed_factory_free;
    struct transport_factory *f = ws_factory_new("/mqtt", 1000, inner);
    struct transport *t = f->create(f, -1);
    CHECK(ws_inner(t) != NULL);

    int failed = 0;
    for (size_t round = 0; round < all.len + 8; round++) {
        int rc = t->ops->read(t, -1, &in);
        CHECK(rc <= (int)all.len);
        CHECK(in.len <= all.len);
        if (failed)
            CHECK(rc == failed);
        if (rc < 0 && rc != -EAGAIN)
            failed = rc;
        /* echo what came, as a broker would answer, through the framing */
        buf_append(&out, in.p, in.len);
        CHECK(t->ops->write(t, -1, &out) == 0);
        if (rc == 0)
            break;
    }
    t->ops->free(t);
    f->free(f);
    buf_fini(&all);
    buf_fini(&in);
    buf_fini(&out);
    return 0;
}
