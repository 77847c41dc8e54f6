/*
 * count_alloc.c — LD_PRELOAD shim that counts malloc/calloc/realloc calls and
 * prints the total at exit. bench-client.sh runs the bench at two sizes under
 * it: the difference divided by the extra faults is the allocations per
 * fault, for libprepage and for a bare libcurl handle side by side.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static unsigned long allocations;

void *malloc(size_t size) {
    __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, size);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "allocations: %lu\n", allocations);
}
