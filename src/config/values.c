/*
 * values.c - strict parsing of configuration values, with messages naming the key.
 *
 * Numbers are digits only and range-checked: Mosquitto's atoi() would read "10x" as 10 and
 * "-5" as a limit; here both are errors. Booleans are true/false (and 1/0, which Mosquitto
 * also takes).
 */
#include <inttypes.h>
#include <string.h>

#include "config/internal.h"

/* Split the first word off `*rest`; *rest then points past the blanks that follow it. */
char *
config_next_word(char **rest)
{
    char *w = *rest;
    char *end = w + strcspn(w, CONFIG_BLANKS);

    if (*end) {
        *end++ = '\0';
        end += strspn(end, CONFIG_BLANKS);
    }
    *rest = end;
    return w;
}

int
config_missing_value(struct config_parse *p, const char *key)
{
    return config_parse_error(p, "%s: missing value", key);
}

int
config_extra_value(struct config_parse *p, const char *key, const char *extra)
{
    char b[64];

    config_clip(extra, strcspn(extra, CONFIG_BLANKS), b, sizeof(b));
    /* Mosquitto's comments only start a line; "port 1883 # MQTT" is a common slip. */
    if (extra[0] == '#')
        return config_parse_error(
            p, "%s: unexpected extra value '%s' (comments must be on a line of their own)", key,
            b);
    return config_parse_error(p, "%s: unexpected extra value '%s'", key, b);
}

/* The value of a key that takes exactly one word. */
int
config_one_word(struct config_parse *p, const char *key, char *rest, char **out)
{
    if (!*rest)
        return config_missing_value(p, key);
    char *w = config_next_word(&rest);
    if (*rest)
        return config_extra_value(p, key, rest);
    *out = w;
    return 0;
}

/* The first `len` bytes of `s` as a number: digits only (no sign, blanks or suffix), at
 * least one; -1 on overflow. */
int
config_parse_u64n(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
config_parse_u64(const char *s, uint64_t *out)
{
    return config_parse_u64n(s, strlen(s), out);
}

int
config_number(struct config_parse *p, const char *key, const char *s, uint64_t min, uint64_t max,
       uint64_t *out)
{
    char b[64];
    uint64_t v;

    if (config_parse_u64(s, &v) != 0 || v < min || v > max)
        return config_parse_error(p, "%s: '%s' is not a number from %" PRIu64 " to %" PRIu64,
                                  key, CLIP(s, b), min, max);
    *out = v;
    return 0;
}

int
config_bool(struct config_parse *p, const char *key, const char *s, bool *out)
{
    char b[64];

    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = false;
    else
        return config_parse_error(p, "%s: '%s' is not true or false", key, CLIP(s, b));
    return 0;
}
