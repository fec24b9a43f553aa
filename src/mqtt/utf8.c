/*
 * utf8.c - the UTF-8 rules of MQTT strings [MQTT-1.5.4-1, MQTT-1.5.4-2].
 *
 * Accepts exactly the well-formed UTF-8 of Unicode (table 3-7): no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF; and rejects U+0000. Control characters
 * and non-characters are allowed: the spec lets a receiver accept them.
 */
#include "mqtt/packet.h"

#include <string.h>

/* True when none of the 8 bytes in w is 0x00 or >= 0x80 (the common all-ASCII case). */
static inline bool
ascii8(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    /* ((w - ones) & ~w & highs) is non-zero iff some byte is zero (given no high bits). */
    return ((w | ((w - ones) & ~w)) & highs) == 0;
}

bool
mqtt_utf8_valid(struct slice s)
{
    if (s.len == 0)
        return true; /* s.p may be NULL */
    const uint8_t *p = s.p;
    const uint8_t *end = s.p + s.len;

    while (p < end) {
        if (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (ascii8(w)) {
                p += 8;
                continue;
            }
        }
        uint8_t c = *p;
        if (c < 0x80) {
            if (c == 0)
                return false; /* [MQTT-1.5.4-2] */
            p++;
            continue;
        }
        /* lo..hi bound the second byte; later bytes are always 80..BF. */
        size_t n;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates [MQTT-1.5.4-1] */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if ((size_t)(end - p) < n)
            return false;
        if (p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}
