/*
 * fuzz_passwd.c - libFuzzer target for Mosquitto password files (auth/passwd.c).
 *
 * The input is a password file, optionally followed by a NUL byte, a username, another NUL
 * and a password. The parser takes any bytes (malformed entries are skipped, never fatal);
 * every entry it keeps must be well formed and survive being written back and parsed again
 * bit for bit. The username/password pair is then checked against the file when that costs
 * little (few PBKDF2 iterations). Base64 is round-tripped on the file's bytes on the side.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/internal.h"
#include "base/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* Checking a password costs `iterations` HMACs: above this the check is skipped. */
#define CHEAP_ITERATIONS 200

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_setup(0, false, false, NULL, false);
    return 0;
}

/* The next NUL-separated field of the input. */
static struct slice
field(const uint8_t *data, size_t size, size_t *pos)
{
    size_t start = *pos;
    const uint8_t *nul = start < size ? memchr(data + start, 0, size - start) : NULL;
    size_t end = nul ? (size_t)(nul - data) : size;

    *pos = nul ? end + 1 : size;
    return slice_make(data + start, end - start);
}

/* Write `e` back as a file entry's hash part and parse it again: it must come back equal. */
static void
check_entry(const struct passwd_entry *e)
{
    char salt[4 * (PASSWD_SALT_MAX / 3 + 1) + 1], hash[4 * (PASSWD_HASH_LEN / 3 + 1) + 1];
    char line[sizeof(salt) + sizeof(hash) + 32];
    struct passwd_entry back;

    CHECK(e->user && e->user[0]);
    CHECK(e->kind == 6 || e->kind == 7);
    CHECK(e->kind == 6 ? e->iterations == 0 : e->iterations >= 1);
    CHECK(e->salt_len >= 1 && e->salt_len <= PASSWD_SALT_MAX);
    b64_encode(e->salt, e->salt_len, salt);
    b64_encode(e->hash, PASSWD_HASH_LEN, hash);
    if (e->kind == 7)
        snprintf(line, sizeof(line), "$7$%u$%s$%s", e->iterations, salt, hash);
    else
        snprintf(line, sizeof(line), "$6$%s$%s", salt, hash);
    memset(&back, 0, sizeof(back));
    CHECK(passwd_entry_parse(line, &back) == 0);
    CHECK(back.kind == e->kind && back.iterations == e->iterations);
    CHECK(back.salt_len == e->salt_len && memcmp(back.salt, e->salt, e->salt_len) == 0);
    CHECK(memcmp(back.hash, e->hash, PASSWD_HASH_LEN) == 0);
}

/* Decoding base64 and encoding the result again gives bytes that decode to the same. */
static void
check_b64(struct slice s)
{
    uint8_t out[96], again[96];
    char enc[4 * (sizeof(out) / 3 + 1) + 1];

    if (s.len > 128)
        s.len = 128;
    int n = b64_decode((const char *)s.p, s.len, out, sizeof(out));
    if (n < 0)
        return;
    CHECK((size_t)n <= sizeof(out) && (size_t)n <= s.len / 4 * 3);
    size_t elen = b64_encode(out, (size_t)n, enc);
    CHECK(elen == s.len && enc[elen] == '\0');
    CHECK(b64_decode(enc, elen, again, sizeof(again)) == n);
    CHECK(memcmp(out, again, (size_t)n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    struct slice file = field(data, size, &pos);
    struct slice user = field(data, size, &pos);
    struct slice password = field(data, size, &pos);
    struct passwd_file pf;
    char err[256];

    CHECK(passwd_parse("fuzz.passwd", (const char *)file.p, file.len, &pf, err, sizeof(err)) == 0);
    size_t it = 0;
    struct passwd_entry *e;
    while ((e = map_next(&pf.users, &it)) != NULL)
        check_entry(e);
    e = map_get(&pf.users, user);
    if (e && e->iterations <= CHEAP_ITERATIONS) {
        int rc = passwd_check(&pf, user, password);
        CHECK(rc == 0 || rc == -1);
        CHECK((rc == 0) == passwd_entry_verify(e, password));
    }
    passwd_fini(&pf);
    check_b64(file);
    check_b64(password);
    return 0;
}
