/*
 * memstat.c - heap in use, from glibc's mallinfo2(), or from the sanitizer's allocator in
 * sanitizer builds (ASan, TSan), which replaces malloc and leaves glibc's arenas empty.
 */
#include "base/memstat.h"

#include <malloc.h>

/* Defined by the sanitizer runtimes only; a weak reference is NULL everywhere else. */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

size_t
memstat_heap_used(void)
{
    if (__sanitizer_get_current_allocated_bytes)
        return __sanitizer_get_current_allocated_bytes();
    /* uordblks: bytes in use in every arena; hblkhd: blocks served by mmap (large ones). */
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
