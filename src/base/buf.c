/*
 * buf.c - growable byte buffer; see buf.h.
 */
#include "base/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void
buf_fini(struct buf *b)
{
    free(b->p);
    buf_init(b);
}

int
buf_reserve(struct buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int
buf_append(struct buf *b, const void *p, size_t len)
{
    int rc;

    if (len == 0)
        return 0;
    if ((rc = buf_reserve(b, len)) != 0)
        return rc;
    memcpy(b->p + b->len, p, len);
    b->len += len;
    return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void
buf_shrink(struct buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) {
        free(b->p);
        buf_init(b);
    }
}

void
buf_fit(struct buf *b, size_t keep)
{
    if (b->len == 0) {
        buf_shrink(b, keep);
        return;
    }
    if (b->len > keep || b->cap <= keep)
        return;
    uint8_t *p = realloc(b->p, keep);
    if (p) {
        b->p = p;
        b->cap = keep;
    }
}
