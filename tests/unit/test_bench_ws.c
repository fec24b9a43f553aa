/*
 * test_bench_ws.c - petrel-bench's WebSocket client pieces (ws.c): the upgrade request, the
 * check of the 101 response (RFC 6455's own key/accept example), masked frames of every length
 * encoding, and unwrapping the broker's frames fed whole or one byte at a time, with pings
 * answered, a close reported and a masked or unknown frame refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "petrel-bench/xport.h"

/* RFC 6455 1.3: this key must be answered with this accept value. */
static const char rfc_key[25] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char rfc_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static bool
collect(void *arg, const uint8_t *p, size_t n)
{
    assert_int_equal(buf_append(arg, p, n), 0);
    return true;
}

static bool
refuse(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return false;
}

static void
request_carries_path_key_and_protocol(void **state)
{
    struct buf b;
    char key[25];
    (void)state;

    buf_init(&b);
    assert_int_equal(ws_request(&b, "127.0.0.1", 8080, "/mqtt", key), 0);
    assert_int_equal(strlen(key), 24);
    assert_int_equal(buf_append(&b, "", 1), 0);
    const char *s = (const char *)b.p;
    assert_true(strncmp(s, "GET /mqtt HTTP/1.1\r\n", 20) == 0);
    assert_non_null(strstr(s, "\r\nHost: 127.0.0.1:8080\r\n"));
    assert_non_null(strstr(s, "\r\nSec-WebSocket-Protocol: mqtt\r\n"));
    assert_non_null(strstr(s, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_non_null(strstr(s, key));
    assert_true(strcmp(s + strlen(s) - 4, "\r\n\r\n") == 0);
    buf_fini(&b);
}

static long
response(const char *status, const char *accept, const char *proto, const char *after)
{
    char r[512];
    snprintf(r, sizeof(r),
             "%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "sec-websocket-accept: %s\r\nSec-WebSocket-Protocol:  %s \r\n\r\n%s",
             status, accept, proto, after);
    return ws_response((const uint8_t *)r, strlen(r), rfc_key);
}

static void
response_is_checked(void **state)
{
    (void)state;
    long n = response("HTTP/1.1 101 Switching Protocols", rfc_accept, "mqtt", "");
    assert_true(n > 0);
    /* frames right behind the header block are not part of it */
    assert_int_equal(response("HTTP/1.1 101 Switching Protocols", rfc_accept, "mqtt", "\x82\x00"),
                     n);
    assert_int_equal(response("HTTP/1.1 404 Not Found", rfc_accept, "mqtt", ""), -1);
    assert_int_equal(response("HTTP/1.1 101 OK", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "mqtt", ""), -1);
    assert_int_equal(response("HTTP/1.1 101 OK", rfc_accept, "chat", ""), -1);
    const char *part = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n";
    assert_int_equal(ws_response((const uint8_t *)part, strlen(part), rfc_key), 0);
}

/* A masked frame as the client writes it, checked and turned into the server's unmasked form
 * of the same frame in `plain`. */
static void
check_frame(const struct buf *f, const uint8_t *p, size_t n, struct buf *plain)
{
    size_t hl = n < 126 ? 2 : n <= 0xffff ? 4 : 10;
    assert_int_equal(f->len, hl + 4 + n);
    assert_int_equal(f->p[0], 0x82);
    assert_true(f->p[1] & 0x80);
    uint64_t len = f->p[1] & 0x7f;
    if (hl == 4) {
        len = (uint64_t)f->p[2] << 8 | f->p[3];
    } else if (hl == 10) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | f->p[2 + i];
    }
    assert_int_equal(len, n);
    const uint8_t *mask = f->p + hl;
    buf_init(plain);
    assert_int_equal(buf_append(plain, f->p, hl), 0);
    plain->p[1] &= 0x7f;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = f->p[hl + 4 + i] ^ mask[i & 3];
        assert_int_equal(c, p[i]);
        assert_int_equal(buf_append(plain, &c, 1), 0);
    }
}

static void
frames_of_every_length_round_trip(void **state)
{
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70001};
    uint32_t rng = 1;
    (void)state;

    for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
        size_t n = sizes[k];
        uint8_t *p = malloc(n + 1);
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(i * 7 + k);
        struct buf f, plain, got, pong;
        buf_init(&f);
        buf_init(&got);
        buf_init(&pong);
        assert_int_equal(ws_frame(&f, 0x2, p, n, &rng), 0);
        check_frame(&f, p, n, &plain);

        /* whole, then the same frame twice fed one byte at a time */
        struct ws_rx rx;
        memset(&rx, 0, sizeof(rx));
        assert_int_equal(ws_rx_feed(&rx, plain.p, plain.len, collect, &got, &pong, &rng), 0);
        for (int twice = 0; twice < 2 && n < 1000; twice++)
            for (size_t i = 0; i < plain.len; i++)
                assert_int_equal(ws_rx_feed(&rx, plain.p + i, 1, collect, &got, &pong, &rng), 0);
        size_t copies = n < 1000 ? 3 : 1;
        assert_int_equal(got.len, copies * n);
        for (size_t c = 0; c < copies; c++)
            assert_memory_equal(got.p + c * n, p, n);
        assert_int_equal(pong.len, 0);
        buf_fini(&f);
        buf_fini(&plain);
        buf_fini(&got);
        buf_fini(&pong);
        free(p);
    }
}

static void
control_frames(void **state)
{
    struct ws_rx rx;
    struct buf got, pong;
    uint32_t rng = 5;
    (void)state;

    memset(&rx, 0, sizeof(rx));
    buf_init(&got);
    buf_init(&pong);
    /* data, a ping in between, more data: the ping is answered with its payload, masked */
    static const uint8_t in[] = {0x02, 0x02, 'a', 'b', 0x89, 0x03, 'x', 'y', 'z', 0x80, 0x01, 'c'};
    for (size_t i = 0; i < sizeof(in); i++)
        assert_int_equal(ws_rx_feed(&rx, in + i, 1, collect, &got, &pong, &rng), 0);
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.p, "abc", 3);
    assert_int_equal(pong.len, 2 + 4 + 3);
    assert_int_equal(pong.p[0], 0x8a);
    assert_int_equal(pong.p[1], 0x83);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pong.p[6 + i] ^ pong.p[2 + (i & 3)], "xyz"[i]);

    static const uint8_t close_frame[] = {0x88, 0x02, 0x03, 0xe8};
    assert_int_equal(ws_rx_feed(&rx, close_frame, sizeof(close_frame), collect, &got, &pong, &rng),
                     -2);
    memset(&rx, 0, sizeof(rx));
    static const uint8_t masked[] = {0x82, 0x81, 1, 2, 3, 4, 'q'};
    assert_int_equal(ws_rx_feed(&rx, masked, sizeof(masked), collect, &got, &pong, &rng), -1);
    memset(&rx, 0, sizeof(rx));
    static const uint8_t reserved[] = {0x83, 0x00};
    assert_int_equal(ws_rx_feed(&rx, reserved, sizeof(reserved), collect, &got, &pong, &rng), -1);
    memset(&rx, 0, sizeof(rx));
    static const uint8_t big_ping[] = {0x89, 0x7e, 0x00, 0x80};
    assert_int_equal(ws_rx_feed(&rx, big_ping, sizeof(big_ping), collect, &got, &pong, &rng), -1);
    /* the consumer gave up (its link closed): stop at once */
    memset(&rx, 0, sizeof(rx));
    static const uint8_t two[] = {0x82, 0x01, 'a', 0x82, 0x01, 'b'};
    assert_int_equal(ws_rx_feed(&rx, two, sizeof(two), refuse, NULL, &pong, &rng), -3);
    buf_fini(&got);
    buf_fini(&pong);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_carries_path_key_and_protocol),
        cmocka_unit_test(response_is_checked),
        cmocka_unit_test(frames_of_every_length_round_trip),
        cmocka_unit_test(control_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
