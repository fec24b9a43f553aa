/*
 * test_bench_hwire.c - the http scenario's pure pieces (tools/petrel-bench/hwire.c): requests
 * read back with the HTTP parser and JSON library the broker's API uses, responses whole, cut
 * anywhere and pipelined, the text payload, and the spread of messages over receivers that the
 * loss count relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <http_parser.h>
#include <jansson.h>

#include "petrel-bench/hwire.h"

/* What http_parser saw of one request. */
struct parsed {
    char url[256];
    char auth[256];
    char body[8192];
    size_t body_len;
    bool in_auth, done;
    char field[64];
};

static int
on_url(http_parser *p, const char *at, size_t n)
{
    struct parsed *r = p->data;
    strncat(r->url, at, n);
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t n)
{
    struct parsed *r = p->data;
    snprintf(r->field, sizeof(r->field), "%.*s", (int)n, at);
    r->in_auth = strcasecmp(r->field, "authorization") == 0;
    return 0;
}

static int
on_value(http_parser *p, const char *at, size_t n)
{
    struct parsed *r = p->data;
    if (r->in_auth)
        strncat(r->auth, at, n);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
    struct parsed *r = p->data;
    assert_true(r->body_len + n < sizeof(r->body));
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int
on_done(http_parser *p)
{
    struct parsed *r = p->data;
    r->done = true;
    return 0;
}

/* Parse the one request in b, which must be complete and keep-alive. */
static void
parse_request(const struct buf *b, struct parsed *r)
{
    http_parser p;
    http_parser_settings s = {.on_url = on_url,
                              .on_header_field = on_field,
                              .on_header_value = on_value,
                              .on_body = on_body,
                              .on_message_complete = on_done};
    memset(r, 0, sizeof(*r));
    http_parser_init(&p, HTTP_REQUEST);
    p.data = r;
    assert_int_equal(http_parser_execute(&p, &s, (const char *)b->p, b->len), b->len);
    assert_int_equal(HTTP_PARSER_ERRNO(&p), HPE_OK);
    assert_true(r->done);
    assert_int_equal(p.method, HTTP_POST);
    assert_true(http_should_keep_alive(&p));
}

static void
single_request_parses(void **state)
{
    struct buf body, req;
    struct parsed r;
    char pl[HWIRE_PAYLOAD_MAX];
    json_error_t err;

    buf_init(&body);
    buf_init(&req);
    size_t n = hwire_payload(pl, 16, 3, 7, 123456789ull);
    hwire_message(&body, "bench", "pb1-s7", slice_make(pl, n), 1);
    hwire_request(&req, "/api/v1/publish", "127.0.0.1", 8080, "k-0123456789abcdef",
                  buf_slice(&body));
    parse_request(&req, &r);
    assert_string_equal(r.url, "/api/v1/publish");
    assert_string_equal(r.auth, "Bearer k-0123456789abcdef");

    json_t *o = json_loadb(r.body, r.body_len, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "topic")), "bench");
    assert_string_equal(json_string_value(json_object_get(o, "second_topic")), "/p2p/pb1-s7");
    assert_int_equal(json_integer_value(json_object_get(o, "qos")), 1);
    const char *text = json_string_value(json_object_get(o, "payload"));
    uint32_t pub, seq;
    uint64_t ts;
    assert_true(hwire_payload_get(slice_cstr(text), &pub, &seq, &ts));
    assert_int_equal(pub, 3);
    assert_int_equal(seq, 7);
    assert_true(ts == 123456789ull);
    json_decref(o);
    buf_fini(&body);
    buf_fini(&req);
}

static void
batch_request_parses_and_escapes(void **state)
{
    struct buf body, req;
    struct parsed r;
    json_error_t err;

    buf_init(&body);
    buf_init(&req);
    hwire_raw(&body, "{\"messages\":[");
    hwire_message(&body, "be\"n\\ch", "id\x01", SLICE("a"), 0);
    hwire_raw(&body, ",");
    hwire_message(&body, "bench", "pb1-s2", SLICE("b"), 2);
    hwire_raw(&body, "]}");
    hwire_request(&req, "/api/v1/publish/batch", "localhost", 1, "key", buf_slice(&body));
    parse_request(&req, &r);
    assert_string_equal(r.url, "/api/v1/publish/batch");

    json_t *o = json_loadb(r.body, r.body_len, 0, &err);
    assert_non_null(o);
    json_t *m = json_object_get(o, "messages");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "topic")),
                        "be\"n\\ch");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "second_topic")),
                        "/p2p/id\x01");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(m, 1), "qos")), 2);
    json_decref(o);
    buf_fini(&body);
    buf_fini(&req);
}

static void
payload_round_trip_and_padding(void **state)
{
    char pl[128];
    uint32_t pub, seq;
    uint64_t ts;

    size_t n = hwire_payload(pl, 64, UINT32_MAX, 0, UINT64_MAX);
    assert_int_equal(n, 64);
    assert_true(hwire_payload_get(slice_make(pl, n), &pub, &seq, &ts));
    assert_int_equal(pub, UINT32_MAX);
    assert_int_equal(seq, 0);
    assert_true(ts == UINT64_MAX);
    assert_int_equal(pl[63], 'x');

    /* Shorter than its digits: the digits win. */
    n = hwire_payload(pl, 1, 12, 34, 56);
    assert_int_equal(n, strlen("12:34:56:"));
    assert_memory_equal(pl, "12:34:56:", n);

    assert_false(hwire_payload_get(SLICE("12:34:56"), &pub, &seq, &ts)); /* no last ':' */
    assert_false(hwire_payload_get(SLICE("12::56:"), &pub, &seq, &ts));
    assert_false(hwire_payload_get(SLICE("4294967296:1:1:"), &pub, &seq, &ts)); /* > u32 */
    assert_false(hwire_payload_get(SLICE("1:2:18446744073709551616:"), &pub, &seq, &ts));
    assert_false(hwire_payload_get(SLICE("\x01\x02\x03"), &pub, &seq, &ts));
}

#define OK_RESP                                                                                    \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n"              \
    "{\"id\": \"1\"}\n"

static void
response_whole_cut_and_pipelined(void **state)
{
    const char *two = OK_RESP "HTTP/1.1 429 Too Many Requests\r\ncontent-length:  2\r\n"
                              "Retry-After: 1\r\n\r\n{}";
    size_t first = strlen(OK_RESP), all = strlen(two);
    int status = 0;
    struct slice body;

    for (size_t n = 0; n < first; n++) /* every cut of the first one: more needed */
        assert_int_equal(hwire_response((const uint8_t *)two, n, 16384, &status, &body), 0);
    assert_int_equal(hwire_response((const uint8_t *)two, all, 16384, &status, &body), first);
    assert_int_equal(status, 200);
    assert_true(slice_eq(body, SLICE("{\"id\": \"1\"}\n")));
    assert_int_equal(
        hwire_response((const uint8_t *)two + first, all - first, 16384, &status, &body),
        all - first);
    assert_int_equal(status, 429);
    assert_true(slice_eq(body, SLICE("{}")));

    /* No Content-Length: no body. */
    const char *bare = "HTTP/1.0 204 No Content\r\n\r\nHTTP";
    assert_int_equal(hwire_response((const uint8_t *)bare, strlen(bare), 16384, &status, &body),
                     strlen(bare) - 4);
    assert_int_equal(status, 204);
    assert_int_equal(body.len, 0);
}

static void
response_malformed(void **state)
{
    int status;
    struct slice body;
    static const char *bad[] = {
        "SSH-2.0-x\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(
            hwire_response((const uint8_t *)bad[i], strlen(bad[i]), 16384, &status, &body), -1);
    /* A head that never ends within the limit. */
    char big[200];
    memset(big, 'a', sizeof(big));
    assert_int_equal(hwire_response((const uint8_t *)big, sizeof(big), 100, &status, &body), -1);
    assert_int_equal(hwire_response((const uint8_t *)big, 50, 100, &status, &body), 0);
}

static void
count_finds_errors(void **state)
{
    struct slice s = SLICE("{\"results\":[{\"id\":\"1\"},{\"error\":{}},{\"error\":{}}]}");
    assert_int_equal(hwire_count(s, "\"error\""), 2);
    assert_int_equal(hwire_count(SLICE("aaaa"), "aa"), 2); /* not overlapping */
    assert_int_equal(hwire_count(SLICE("{}"), "\"error\""), 0);
}

/* Each message goes to exactly one receiver; a receiver's share of a connection is numbered
 * 0, 1, 2, ... by seq / n_recvs, and hwire_stream_sent says how many there are. */
static void
spread_is_dense_per_stream(void **state)
{
    static const uint32_t shapes[][2] = {{1, 1}, {1, 100}, {8, 100}, {3, 7}, {8, 3}, {5, 5}};

    for (size_t s = 0; s < sizeof(shapes) / sizeof(*shapes); s++) {
        uint32_t h = shapes[s][0], n = shapes[s][1];
        for (uint32_t sent = 0; sent < 3 * n + 2; sent++) {
            for (uint32_t i = 0; i < h; i++) {
                for (uint32_t j = 0; j < n; j++) {
                    uint32_t next = 0;
                    for (uint32_t q = 0; q < sent; q++) {
                        uint32_t t = hwire_target(i, q, h, n);
                        assert_true(t < n);
                        if (t != j)
                            continue;
                        assert_int_equal(q / n, next); /* dense, in order */
                        next++;
                    }
                    assert_int_equal(hwire_stream_sent(i, j, sent, h, n), next);
                }
            }
        }
    }
    /* Connections start at different receivers. */
    assert_int_not_equal(hwire_target(0, 0, 8, 100), hwire_target(1, 0, 8, 100));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_request_parses),
        cmocka_unit_test(batch_request_parses_and_escapes),
        cmocka_unit_test(payload_round_trip_and_padding),
        cmocka_unit_test(response_whole_cut_and_pipelined),
        cmocka_unit_test(response_malformed),
        cmocka_unit_test(count_finds_errors),
        cmocka_unit_test(spread_is_dense_per_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
