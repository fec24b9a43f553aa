/*
 * test_api_keys.c - the HTTP API's key file (api/keys.c) and query-string reading
 * (api/http.c): accepted lines, refusals with file and line, lookups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/internal.h"

static char path[64];

static int
load_text(const char *text, struct api_keys *k, char *err, size_t err_len)
{
    snprintf(path, sizeof(path), "/tmp/petrel-keys-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = api_keys_load(path, k, err, err_len);
    unlink(path);
    return rc;
}

static void
test_keys_accepted_and_found(void **state)
{
    struct api_keys k;
    char err[256];
    size_t idx = 99;

    assert_int_equal(load_text("# comment\n\n0123456789abcdef write app\n"
                               "  fedcba9876543210  read\t# trailing comment\n",
                               &k, err, sizeof(err)),
                     0);
    assert_int_equal(k.n, 2);
    const struct api_key *w = api_keys_find(&k, "0123456789abcdef", &idx);
    assert_non_null(w);
    assert_int_equal(idx, 0);
    assert_int_equal(w->access, API_WRITE);
    assert_string_equal(w->name, "app");
    const struct api_key *r = api_keys_find(&k, "fedcba9876543210", &idx);
    assert_non_null(r);
    assert_int_equal(idx, 1);
    assert_int_equal(r->access, API_READ);
    assert_string_equal(r->name, "api");
    assert_null(api_keys_find(&k, "0123456789abcdeF", &idx));
    assert_null(api_keys_find(&k, "", &idx));
    api_keys_fini(&k);
}

static void
expect_refused(const char *text, const char *line_and_reason)
{
    struct api_keys k;
    char err[256], want[128];

    assert_int_equal(load_text(text, &k, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:%s", path, line_and_reason);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

static void
test_keys_refused_with_line(void **state)
{
    expect_refused("short write\n", "1: a key must be");
    expect_refused("# ok\n0123456789abcdef admin\n", "2: expected 'KEY read|write");
    expect_refused("0123456789abcdef write app extra\n", "1: unexpected 'extra'");
    expect_refused("0123456789abcdef write a\n0123456789abcdef read b\n", "2: this key is listed");
    expect_refused("0123456789abcdef\n", "1: expected");
}

static void
test_missing_file(void **state)
{
    struct api_keys k;
    char err[256];

    assert_int_equal(api_keys_load("/nonexistent/keys", &k, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/keys: cannot open"));
}

static void
test_query_param(void **state)
{
    char v[64];

    assert_true(http_query_param("ids=a,b%2Cc&x=1", "ids", v, sizeof(v)));
    assert_string_equal(v, "a,b,c");
    assert_true(http_query_param("ids=a&discard=true", "discard", v, sizeof(v)));
    assert_string_equal(v, "true");
    assert_true(http_query_param("discard", "discard", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_true(http_query_param("a=hello+world%21", "a", v, sizeof(v)));
    assert_string_equal(v, "hello world!");
    assert_false(http_query_param("idsx=1", "ids", v, sizeof(v)));
    assert_false(http_query_param("", "ids", v, sizeof(v)));
    /* Malformed escapes, NUL bytes and overlong values are refused, never truncated. */
    assert_false(http_query_param("a=%4", "a", v, sizeof(v)));
    assert_false(http_query_param("a=%zz", "a", v, sizeof(v)));
    assert_false(http_query_param("a=%00", "a", v, sizeof(v)));
    assert_false(http_query_param("a=0123456789", "a", v, 8));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_accepted_and_found),
        cmocka_unit_test(test_keys_refused_with_line),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_query_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
