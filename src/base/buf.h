/*
 * buf.h - a growable byte buffer, used for socket input, encoded output and owned copies.
 *
 * Growth is checked: every function that may allocate returns 0 or -ENOMEM and leaves the
 * buffer unchanged on failure, because buffer sizes are driven by clients.
 */
#ifndef PETREL_BASE_BUF_H
#define PETREL_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

struct buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_fini(struct buf *b);

/* Make room for `extra` more bytes after len. Returns 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Append bytes. Returns 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t len);

/* Drop the first `n` bytes (consumed input), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Release memory beyond `keep` bytes of capacity when the buffer is empty (idle connections
 * should not hold large buffers). */
void buf_shrink(struct buf *b, size_t keep);

/* The same, also when the buffer holds at most `keep` bytes: capacity beyond `keep` is given
 * back (a connection in the middle of a small packet should not keep a large read buffer).
 * On failure the buffer stays as it was. */
void buf_fit(struct buf *b, size_t keep);

static inline struct slice
buf_slice(const struct buf *b)
{
    return slice_make(b->p, b->len);
}

#endif
