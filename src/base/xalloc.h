/*
 * xalloc.h - allocation of fixed-size objects that aborts when memory runs out.
 *
 * Only for sizes the broker controls. Anything sized by a client is checked against its
 * limit first and allocated with plain malloc, turning failure into a reason code.
 */
#ifndef PETREL_BASE_XALLOC_H
#define PETREL_BASE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* A NUL-terminated copy of `len` bytes. */
char *xstrndup(const void *p, size_t len);

#endif
