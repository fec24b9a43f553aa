/*
 * passwd.c - Mosquitto password files.
 *
 * An entry is "user:$7$<iterations>$<salt>$<hash>" (PBKDF2-HMAC-SHA512, what mosquitto_passwd
 * writes since 2.0) or "user:$6$<salt>$<hash>" (SHA-512 of password then salt, older files);
 * salt and hash are base64, the hash 64 bytes. Comparisons run in constant time
 * (CRYPTO_memcmp), and an unknown user costs a hash too, so response times do not reveal
 * which usernames exist.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/internal.h"
#include "base/log.h"
#include "base/xalloc.h"

/* What mosquitto_passwd uses; petrel passwd writes the same so either broker reads it. */
#define NEW_ITERATIONS 101
#define NEW_SALT_LEN 12
/* A file asking for more work per login than this is a mistake (or an attack on the loop). */
#define MAX_ITERATIONS 1000000u

/* ---- base64 ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
b64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_chars[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int
b64_value(char c)
{
    const char *p = c ? strchr(b64_chars, c) : NULL;
    return p ? (int)(p - b64_chars) : -1;
}

int
b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
                return -1; /* a character after padding, or not in the alphabet */
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (n > 2)
            out[o++] = (uint8_t)w;
    }
    return (int)o;
}

/* ---- one entry ---- */

/* The next '$'-separated field of *s, NUL-terminated in place. */
static char *
next_field(char **s)
{
    char *f = *s;
    char *d;

    if (!f)
        return NULL;
    if ((d = strchr(f, '$')) != NULL) {
        *d = '\0';
        *s = d + 1;
    } else {
        *s = NULL;
    }
    return f;
}

int
passwd_entry_parse(const char *str, struct passwd_entry *e)
{
    char *copy = xstrdup(str);
    char *rest = copy;
    int rc = -1;

    if (*rest++ != '$')
        goto out;
    char *kind = next_field(&rest);
    if (!kind || (strcmp(kind, "6") != 0 && strcmp(kind, "7") != 0))
        goto out;
    e->kind = kind[0] - '0';
    e->iterations = 0;
    if (e->kind == 7) {
        char *it = next_field(&rest), *end;
        if (!it || !*it)
            goto out;
        unsigned long n = strtoul(it, &end, 10);
        if (*end || it[0] == '-' || n < 1 || n > MAX_ITERATIONS)
            goto out;
        e->iterations = (unsigned)n;
    }
    char *salt = next_field(&rest);
    char *hash = next_field(&rest);
    if (!salt || !hash || rest)
        goto out;
    int n = b64_decode(salt, strlen(salt), e->salt, sizeof(e->salt));
    if (n < 1)
        goto out;
    e->salt_len = (size_t)n;
    if (b64_decode(hash, strlen(hash), e->hash, sizeof(e->hash)) != PASSWD_HASH_LEN)
        goto out;
    rc = 0;
out:
    free(copy);
    return rc;
}

static int
derive(const struct passwd_entry *e, struct slice password, uint8_t out[PASSWD_HASH_LEN])
{
    if (e->kind == 7)
        return PKCS5_PBKDF2_HMAC((const char *)password.p, (int)password.len, e->salt,
                                 (int)e->salt_len, (int)e->iterations, EVP_sha512(),
                                 PASSWD_HASH_LEN, out) == 1
                   ? 0
                   : -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(md, password.p, password.len) == 1 &&
             EVP_DigestUpdate(md, e->salt, e->salt_len) == 1 &&
             EVP_DigestFinal_ex(md, out, &len) == 1 && len == PASSWD_HASH_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

bool
passwd_entry_verify(const struct passwd_entry *e, struct slice password)
{
    uint8_t got[PASSWD_HASH_LEN];

    /* Passwords longer than an int are not MQTT passwords (at most 65535 bytes). */
    if (password.len > 65535 || derive(e, password, got) != 0)
        return false;
    return CRYPTO_memcmp(got, e->hash, PASSWD_HASH_LEN) == 0;
}

int
passwd_check(const struct passwd_file *pf, struct slice user, struct slice password)
{
    /* Stands in for an unknown user, so that it costs as much as a known one. */
    static const struct passwd_entry dummy = {
        .kind = 7, .iterations = NEW_ITERATIONS, .salt_len = NEW_SALT_LEN};
    const struct passwd_entry *e = map_get(&pf->users, user);

    if (!e) {
        passwd_entry_verify(&dummy, password);
        return -1;
    }
    return passwd_entry_verify(e, password) ? 0 : -1;
}

/* ---- files ---- */

static void
trim(char **s)
{
    char *p = *s;
    size_t len;

    while (*p == ' ' || *p == '\t')
        p++;
    len = strlen(p);
    while (len > 0 && strchr(" \t\r\n\v\f", p[len - 1]))
        p[--len] = '\0';
    *s = p;
}

static void
entry_free(struct passwd_entry *e)
{
    if (!e)
        return;
    free(e->user);
    OPENSSL_cleanse(e, sizeof(*e));
    free(e);
}

int
passwd_parse(const char *name, const char *data, size_t len, struct passwd_file *pf, char *err,
             size_t err_len)
{
    const char *p = data, *end = data + len;
    int line_no = 0;

    map_init(&pf->users);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *line = xstrndup(p, n), *user = line, *hash;
        p += n + (nl != NULL);
        line_no++;
        char *colon = strchr(line, ':');
        /* As Mosquitto: '#' comments and lines without ':' are not entries. */
        if (line[0] == '#' || !colon) {
            free(line);
            continue;
        }
        *colon = '\0';
        hash = colon + 1;
        char *more = strchr(hash, ':');
        if (more)
            *more = '\0';
        trim(&user);
        trim(&hash);
        struct passwd_entry *e = xcalloc(1, sizeof(*e));
        if (!*user || strlen(user) > 65535 || passwd_entry_parse(hash, e) != 0) {
            /* Mosquitto drops such an entry and carries on: that user cannot log in. */
            log_warn("password file entry skipped file=%s line=%d user=%s reason=%s", name, line_no,
                     *user ? user : "-", *hash == '$' ? "malformed hash" : "not a $6$ or $7$ hash");
            entry_free(e);
            OPENSSL_cleanse(line, strlen(line));
            free(line);
            continue;
        }
        e->user = xstrdup(user);
        struct passwd_entry *old = map_put(&pf->users, slice_cstr(e->user), e);
        if (old) {
            log_warn("password file user repeated, the last entry counts file=%s line=%d user=%s",
                     name, line_no, e->user);
            entry_free(old);
        }
        free(line);
    }
    (void)err;
    (void)err_len;
    return 0;
}

int
passwd_load(const char *path, struct passwd_file *pf, char *err, size_t err_len)
{
    char *data;
    size_t len;

    if (auth_read_file(path, &data, &len, err, err_len) != 0)
        return -1;
    int rc = passwd_parse(path, data, len, pf, err, err_len);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

void
passwd_fini(struct passwd_file *pf)
{
    size_t pos = 0;
    struct passwd_entry *e;

    while ((e = map_next(&pf->users, &pos)) != NULL)
        entry_free(e);
    map_fini(&pf->users);
}

/* ---- auth.h ---- */

bool
auth_passwd_verify(const char *entry, struct slice password)
{
    struct passwd_entry e;
    bool ok = passwd_entry_parse(entry, &e) == 0 && passwd_entry_verify(&e, password);

    OPENSSL_cleanse(&e, sizeof(e));
    return ok;
}

int
auth_passwd_hash(struct slice password, char *out, size_t out_len)
{
    struct passwd_entry e = {.kind = 7, .iterations = NEW_ITERATIONS, .salt_len = NEW_SALT_LEN};
    char salt[PASSWD_SALT_MAX * 2], hash[PASSWD_HASH_LEN * 2];

    if (password.len > 65535 || RAND_bytes(e.salt, NEW_SALT_LEN) != 1 ||
        derive(&e, password, e.hash) != 0)
        return -EIO;
    b64_encode(e.salt, e.salt_len, salt);
    b64_encode(e.hash, PASSWD_HASH_LEN, hash);
    int n = snprintf(out, out_len, "$7$%u$%s$%s", e.iterations, salt, hash);
    OPENSSL_cleanse(&e, sizeof(e));
    return n > 0 && (size_t)n < out_len ? 0 : -EIO;
}
