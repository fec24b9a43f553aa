/*
 * keys.c - the API key file: one key a line, `KEY read|write [NAME]`, '#' comments and blank
 * lines ignored. A key is at least 16 characters of printable ASCII without spaces; NAME
 * (default "api") is the username the ACL sees for what the key publishes.
 *
 * Only a SHA-256 of each key is kept, and a presented key is compared against every entry
 * with a constant-time comparison, so neither memory nor timing gives a key away.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "base/xalloc.h"

#define KEY_MIN_LEN 16
#define LINE_MAX_LEN 4096

static bool
key_chars_ok(const char *k)
{
    for (; *k; k++) {
        if (*k <= ' ' || *k > '~')
            return false;
    }
    return true;
}

static int
parse_line(char *line, const char *path, int lineno, struct api_keys *out, char *err,
           size_t err_len)
{
    char *save = NULL;
    /* A '#' after white space starts a comment, as at the start of a line. */
    for (char *p = line; *p; p++) {
        if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    char *key = strtok_r(line, " \t\r\n", &save);
    if (!key)
        return 0;
    char *access = strtok_r(NULL, " \t\r\n", &save);
    char *name = strtok_r(NULL, " \t\r\n", &save);
    char *extra = strtok_r(NULL, " \t\r\n", &save);

    if (strlen(key) < KEY_MIN_LEN || !key_chars_ok(key)) {
        snprintf(err, err_len, "%s:%d: a key must be at least %d printable characters", path,
                 lineno, KEY_MIN_LEN);
        return -1;
    }
    if (!access || (strcmp(access, "read") != 0 && strcmp(access, "write") != 0)) {
        snprintf(err, err_len, "%s:%d: expected 'KEY read|write [NAME]'", path, lineno);
        return -1;
    }
    if (extra) {
        snprintf(err, err_len, "%s:%d: unexpected '%.32s' after the name", path, lineno, extra);
        return -1;
    }
    uint8_t hash[API_KEY_HASH_LEN];
    SHA256((const unsigned char *)key, strlen(key), hash);
    for (size_t i = 0; i < out->n; i++) {
        if (memcmp(out->keys[i].hash, hash, sizeof(hash)) == 0) {
            snprintf(err, err_len, "%s:%d: this key is listed twice", path, lineno);
            return -1;
        }
    }
    out->keys = xrealloc(out->keys, (out->n + 1) * sizeof(*out->keys));
    struct api_key *k = &out->keys[out->n++];
    memset(k, 0, sizeof(*k));
    memcpy(k->hash, hash, sizeof(hash));
    k->access = strcmp(access, "write") == 0 ? API_WRITE : API_READ;
    k->name = xstrdup(name ? name : "api");
    k->tokens = -1; /* full at first use */
    pthread_mutex_init(&k->lock, NULL);
    return 0;
}

int
api_keys_load(const char *path, struct api_keys *out, char *err, size_t err_len)
{
    char line[LINE_MAX_LEN];
    int lineno = 0;

    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            snprintf(err, err_len, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        if (parse_line(line, path, lineno, out, err, err_len) != 0)
            goto fail;
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return 0;
fail:
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    api_keys_fini(out);
    return -1;
}

void
api_keys_fini(struct api_keys *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free(k->keys[i].name);
        pthread_mutex_destroy(&k->keys[i].lock);
    }
    free(k->keys);
    memset(k, 0, sizeof(*k));
}

const struct api_key *
api_keys_find(const struct api_keys *k, const char *token, size_t *index)
{
    uint8_t hash[API_KEY_HASH_LEN];
    const struct api_key *found = NULL;

    SHA256((const unsigned char *)token, strlen(token), hash);
    /* Every entry is compared, whatever matches: the time does not depend on which. */
    for (size_t i = 0; i < k->n; i++) {
        if (CRYPTO_memcmp(k->keys[i].hash, hash, sizeof(hash)) == 0) {
            found = &k->keys[i];
            *index = i;
        }
    }
    return found;
}
