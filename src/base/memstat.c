/*
 * memstat.c - heap in use, from glibc's mallinfo2(), or from the sanitizer's allocator in
 * sanitizer builds (ASan, TSan), which replaces malloc and leaves glibc's arenas empty.
 */
#include "base/memstat.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

/* The first number in `path`, or 0 (missing, unreadable, "max"). */
static uint64_t
read_number(const char *path, const char *prefix)
{
    char line[256];
    uint64_t v = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (prefix && strncmp(line, prefix, strlen(prefix)) != 0)
            continue;
        const char *p = prefix ? line + strlen(prefix) : line;
        unsigned long long n;
        if (sscanf(p, " %llu", &n) == 1)
            v = n;
        break;
    }
    fclose(f);
    return v;
}

size_t
memstat_ram_limit(void)
{
    uint64_t ram = read_number("/proc/meminfo", "MemTotal:") * 1024u;
    uint64_t cg = read_number("/sys/fs/cgroup/memory.max", NULL);

    if (!cg)
        cg = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes", NULL);
    /* cgroup v1 says "no limit" with a huge number; the smaller of the two is the truth. */
    if (cg && (ram == 0 || cg < ram))
        ram = cg;
    return (size_t)ram;
}
