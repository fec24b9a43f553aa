/*
 * varint.c - the variable byte integer of MQTT (remaining length, property lengths,
 * subscription identifiers): 7 bits per byte, low group first, high bit = "more follows",
 * at most four bytes [MQTT-1.5.5].
 */
#include "mqtt/packet.h"

#include <assert.h>

size_t
mqtt_varint_size(uint32_t v)
{
    assert(v <= MQTT_VARINT_MAX);
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

size_t
mqtt_varint_put(uint8_t *p, uint32_t v)
{
    size_t n = 0;

    assert(v <= MQTT_VARINT_MAX);
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = v ? (uint8_t)(b | 0x80) : b;
    } while (v);
    return n;
}

int
mqtt_varint_get(struct slice in, uint32_t *v)
{
    uint32_t val = 0;

    /* Most values (small remaining lengths, empty property blocks) fit in one byte. */
    if (in.len > 0 && in.p[0] < 0x80) {
        *v = in.p[0];
        return 1;
    }
    for (size_t i = 0; i < 4; i++) {
        if (i >= in.len)
            return 0;
        uint8_t b = in.p[i];
        val |= (uint32_t)(b & 0x7f) << (7 * i);
        if (b < 0x80) {
            *v = val;
            return (int)i + 1;
        }
    }
    /* A fourth byte with its continuation bit set announces a fifth [MQTT-1.5.5]. Non-minimal
     * encodings (0x80 0x00 for 0) are accepted: the rule binds the sender only. */
    return -1;
}
