/*
 * slice.h - a borrowed view of bytes: pointer and length, never owning.
 *
 * Decoders hand out slices into the read buffer; whoever keeps one past the buffer's life
 * copies it first.
 */
#ifndef PETREL_BASE_SLICE_H
#define PETREL_BASE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct slice {
    const uint8_t *p;
    size_t len;
};

/* A slice over a string literal (no terminating NUL). */
#define SLICE(lit) ((struct slice){(const uint8_t *)(lit), sizeof(lit) - 1})
/* printf helper: printf("%.*s", SLICE_FMT(s)) */
#define SLICE_FMT(s) (int)(s).len, (const char *)(s).p

static inline struct slice
slice_make(const void *p, size_t len)
{
    return (struct slice){(const uint8_t *)p, len};
}

static inline struct slice
slice_cstr(const char *s)
{
    return (struct slice){(const uint8_t *)s, s ? strlen(s) : 0};
}

static inline bool
slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool
slice_has_prefix(struct slice s, struct slice prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

/* The part of `s` from byte `from` on; `from` must not exceed s.len. */
static inline struct slice
slice_tail(struct slice s, size_t from)
{
    return (struct slice){s.p + from, s.len - from};
}

#endif
