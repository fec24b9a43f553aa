/*
 * apsara.c - ApsaraMQ for MQTT's ways of logging in, so its clients connect unchanged.
 *
 *   Signature mode         username "Signature|<AccessKeyId>|<InstanceId>"
 *   DeviceCredential mode  username "DeviceCredential|<DeviceAccessKeyId>|<InstanceId>"
 *   password (both)        Base64(HMAC-SHA1(key = secret, data = client ID))
 *
 * A device credential is bound to one client ID. Client IDs have the form
 * "GID_<group>@@@<device>"; apsara_gid_parse() checks it where the configuration asks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/internal.h"
#include "base/xalloc.h"

#define GROUP_MIN 7
#define GROUP_MAX 64
#define CLIENT_ID_MAX 64

/* ---- files ---- */

static void
key_free(struct apsara_key *k)
{
    if (!k)
        return;
    free(k->id);
    if (k->secret) {
        OPENSSL_cleanse(k->secret, strlen(k->secret));
        free(k->secret);
    }
    free(k->instance);
    free(k->client_id);
    free(k);
}

static char *
next_word(char **rest)
{
    char *p = *rest;

    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return NULL;
    char *w = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    *rest = p;
    return w;
}

/* One line into a key. Returns 0, 1 (nothing on the line) or -1 with err set. */
static int
parse_line(const char *name, int line_no, char *line, bool devices, struct apsara_key **out,
           char *err, size_t err_len)
{
    char *words[5];
    size_t n = 0;
    char *w, *rest = line;

    while (n < 5 && (w = next_word(&rest)) != NULL)
        words[n++] = w;
    if (n == 0 || words[0][0] == '#')
        return 1;
    size_t min = devices ? 3 : 2;
    if (n < min || n > min + 1) {
        snprintf(err, err_len, "%s:%d: expected %s", name, line_no,
                 devices ? "DeviceAccessKeyId DeviceSecret ClientId [InstanceId]"
                         : "AccessKeyId SecretKey [InstanceId]");
        return -1;
    }
    struct apsara_key *k = xcalloc(1, sizeof(*k));
    k->id = xstrdup(words[0]);
    k->secret = xstrdup(words[1]);
    if (devices)
        k->client_id = xstrdup(words[2]);
    if (n > min)
        k->instance = xstrdup(words[min]);
    *out = k;
    return 0;
}

int
apsara_parse(const char *name, const char *data, size_t len, bool devices, struct apsara_keys *k,
             char *err, size_t err_len)
{
    const char *pos = data, *end = data + len;
    int line_no = 0, rc = 0;

    map_init(&k->ids);
    while (rc == 0 && pos < end) {
        const char *nl = memchr(pos, '\n', (size_t)(end - pos));
        size_t n = nl ? (size_t)(nl - pos) : (size_t)(end - pos);
        char *line = xstrndup(pos, n);
        struct apsara_key *key = NULL;
        pos += n + (nl != NULL);
        line_no++;
        for (char *c = line; *c; c++) {
            if (*c == '\r' || *c == '\v' || *c == '\f')
                *c = ' ';
        }
        int r = parse_line(name, line_no, line, devices, &key, err, err_len);
        if (r < 0) {
            rc = -1;
        } else if (r == 0 && map_get(&k->ids, slice_cstr(key->id))) {
            snprintf(err, err_len, "%s:%d: '%s' is given twice", name, line_no, key->id);
            key_free(key);
            rc = -1;
        } else if (r == 0) {
            map_put(&k->ids, slice_cstr(key->id), key);
        }
        OPENSSL_cleanse(line, n);
        free(line);
    }
    return rc;
}

int
apsara_load(const char *path, bool devices, struct apsara_keys *k, char *err, size_t err_len)
{
    char *data;
    size_t len;

    if (auth_read_file(path, &data, &len, err, err_len) != 0) {
        map_init(&k->ids);
        return -1;
    }
    int rc = apsara_parse(path, data, len, devices, k, err, err_len);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

void
apsara_fini(struct apsara_keys *k)
{
    size_t pos = 0;
    struct apsara_key *key;

    while ((key = map_next(&k->ids, &pos)) != NULL)
        key_free(key);
    map_fini(&k->ids);
}

/* ---- logging in ---- */

enum apsara_mode
apsara_username(struct slice u, struct slice *key_id, struct slice *instance)
{
    const uint8_t *bar1 = memchr(u.p, '|', u.len);
    if (!bar1)
        return APSARA_NONE;
    struct slice mode = slice_make(u.p, (size_t)(bar1 - u.p));
    struct slice rest = slice_tail(u, mode.len + 1);
    const uint8_t *bar2 = memchr(rest.p, '|', rest.len);
    if (!bar2)
        return APSARA_NONE;
    *key_id = slice_make(rest.p, (size_t)(bar2 - rest.p));
    *instance = slice_tail(rest, key_id->len + 1);
    if (!key_id->len || !instance->len || memchr(instance->p, '|', instance->len))
        return APSARA_NONE;
    if (slice_eq(mode, SLICE("Signature")))
        return APSARA_SIGNATURE;
    if (slice_eq(mode, SLICE("DeviceCredential")))
        return APSARA_DEVICE;
    return APSARA_NONE;
}

void
apsara_sign(struct slice secret, struct slice client_id, char out[APSARA_SIG_LEN + 1])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!HMAC(EVP_sha1(), secret.p, (int)secret.len, client_id.p, client_id.len, mac, &len) ||
        len != 20) {
        memset(out, 0, APSARA_SIG_LEN + 1); /* matches no base64 password */
        return;
    }
    b64_encode(mac, len, out);
}

int
apsara_verify(const struct apsara_keys *k, enum apsara_mode mode, struct slice key_id,
              struct slice instance, struct slice client_id, struct slice password)
{
    const struct apsara_key *key = map_get(&k->ids, key_id);
    char want[APSARA_SIG_LEN + 1];
    bool ok = key != NULL;

    /* An unknown key costs an HMAC too, so timing does not tell which ids exist. */
    apsara_sign(key ? slice_cstr(key->secret) : SLICE("-"), client_id, want);
    if (ok && key->instance && !slice_eq(instance, slice_cstr(key->instance)))
        ok = false;
    if (ok && mode == APSARA_DEVICE &&
        (!key->client_id || !slice_eq(client_id, slice_cstr(key->client_id))))
        ok = false; /* the credential is for another client ID */
    bool same =
        password.len == APSARA_SIG_LEN && CRYPTO_memcmp(password.p, want, APSARA_SIG_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok && same ? 0 : -1;
}

/* ---- GID client IDs ---- */

bool
apsara_group_valid(struct slice g)
{
    if (g.len < GROUP_MIN || g.len > GROUP_MAX ||
        !(slice_has_prefix(g, SLICE("GID_")) || slice_has_prefix(g, SLICE("GID-"))))
        return false;
    for (size_t i = 0; i < g.len; i++) {
        uint8_t c = g.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool
apsara_gid_parse(struct slice id, struct slice *group)
{
    if (id.len > CLIENT_ID_MAX)
        return false;
    for (size_t i = 0; i + 3 <= id.len; i++) {
        if (memcmp(id.p + i, "@@@", 3) != 0)
            continue;
        struct slice g = slice_make(id.p, i), dev = slice_tail(id, i + 3);
        if (!apsara_group_valid(g) || dev.len == 0)
            return false;
        for (size_t k = 0; k < dev.len; k++) {
            uint8_t c = dev.p[k];
            if (c <= ' ' || c == 0x7f || c == '/' || c == '+' || c == '#')
                return false;
        }
        *group = g;
        return true;
    }
    return false;
}
