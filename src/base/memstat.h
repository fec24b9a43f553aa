/*
 * memstat.h - how much heap memory the process holds, for the memory ceiling (memory_limit).
 *
 * The measure is the allocator's own count of bytes handed out and not yet freed (plus
 * mmap'd blocks), not the resident set: it falls as soon as memory is freed, whether or not
 * the allocator returns the pages to the kernel, so a broker under pressure sees its relief
 * at once. Pages of the LMDB map are not heap and are not counted (the kernel can drop them).
 */
#ifndef PETREL_BASE_MEMSTAT_H
#define PETREL_BASE_MEMSTAT_H

#include <stddef.h>

/* Bytes of heap in use now. Costs a walk over the allocator's free lists (all arenas, under
 * their locks): call it from a timer, never per message. Thread-safe. */
size_t memstat_heap_used(void);

/* The memory this process may use at most: its cgroup's limit (cgroup v2 memory.max, or v1
 * memory.limit_in_bytes) when one is set and smaller, else the machine's RAM (MemTotal).
 * 0 when neither can be read. */
size_t memstat_ram_limit(void);

#endif
