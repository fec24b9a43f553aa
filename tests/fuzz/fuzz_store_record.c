/*
 * fuzz_store_record.c - libFuzzer target for the store's record decoders (src/store/record.c),
 * which read bytes from disk that may be damaged.
 *
 * Input: one byte choosing the database, one byte of key length, the key, then the value. The
 * value's trailing CRC is recomputed before decoding, so the fuzzer explores the layout rather
 * than stopping at the checksum. A record that decodes must encode back to the same bytes (the
 * format is canonical), and nothing may read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same(const uint8_t *a, const uint8_t *b, size_t len)
{
    if (memcmp(a, b, len) != 0)
        abort();
}

static void
round_trip(enum store_db db, struct slice key, struct slice val)
{
    uint8_t *out = malloc(val.len + 1);
    uint32_t ids[STORE_MAX_SUB_IDS], refs;
    uint64_t id;

    switch (db) {
    case DB_SESSIONS: {
        struct store_session s;
        if (rec_session_decode(key, val, &s) == 0) {
            if (rec_session_size(&s) != val.len)
                abort();
            rec_session_encode(out, key, &s);
            same(out, val.p, val.len);
        }
        break;
    }
    case DB_SUBS: {
        struct store_sub sub;
        if (rec_sub_decode(key, val, &sub) == 0) {
            if (rec_sub_size(&sub) != val.len)
                abort();
            rec_sub_encode(out, key, &sub);
            same(out, val.p, val.len);
        }
        break;
    }
    case DB_MSGS: {
        struct store_msg m, v;
        if (rec_msg_decode(key, val, &m) == 0) {
            if (rec_msg_size(&m) != val.len || rec_msg_view(key, val, &v) != 0)
                abort();
            rec_msg_encode(out, key, &m);
            same(out, val.p, val.len);
        }
        break;
    }
    case DB_REFS:
        if (rec_refs_decode(key, val, &refs) == 0) {
            rec_refs_encode(out, key, refs);
            same(out, val.p, val.len);
        }
        break;
    case DB_QUEUE: {
        struct store_qentry e;
        if (rec_qentry_decode(key, val, &e, ids) == 0) {
            if (rec_qentry_size(&e) != val.len)
                abort();
            rec_qentry_encode(out, key, &e);
            same(out, val.p, val.len);
        }
        break;
    }
    case DB_QOS2:
        if (rec_qos2_decode(key, val) == 0) {
            rec_qos2_encode(out, key);
            same(out, val.p, val.len);
        }
        break;
    case DB_RETAINED:
        if (rec_retained_decode(key, val, &id) == 0) {
            rec_retained_encode(out, key, id);
            same(out, val.p, val.len);
        }
        break;
    default:
        break;
    }
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum store_db db = (enum store_db)(1 + data[0] % (DB_COUNT - 1));
    size_t klen = data[1];
    if (size - 2 < klen)
        return 0;
    struct slice key = slice_make(data + 2, klen);
    size_t vlen = size - 2 - klen;
    /* An exact-size copy, so that reads past the value are caught. */
    uint8_t *val = malloc(vlen ? vlen : 1);
    if (vlen)
        memcpy(val, data + 2 + klen, vlen);
    if (vlen >= 5) {
        uint32_t crc = crc32c_update(0, key.p, key.len);
        crc = crc32c_update(crc, val, vlen - 4);
        put_le32(val + vlen - 4, crc);
    }
    if (rec_check(db, key, slice_make(val, vlen)) == 0)
        round_trip(db, key, slice_make(val, vlen));
    free(val);
    return 0;
}
