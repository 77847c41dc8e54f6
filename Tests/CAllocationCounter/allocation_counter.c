#include "allocation_counter.h"
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* initial-exec: the counter lives in the static TLS block (of the executable, or of
 * a library loaded at start with LD_PRELOAD), so touching it never calls malloc
 * (which would recurse). */
static __thread uint64_t count __attribute__((tls_model("initial-exec")));
static uint64_t process_count;

uint64_t ac_thread_allocations(void) {
    return count;
}

uint64_t ac_process_allocations(void) {
    return __atomic_load_n(&process_count, __ATOMIC_RELAXED);
}

static inline void counted(void) {
    count++;
    __atomic_fetch_add(&process_count, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n) {
    counted();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    counted();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    counted();
    return __libc_realloc(p, n);
}
void *memalign(size_t a, size_t n) {
    counted();
    return __libc_memalign(a, n);
}
void *aligned_alloc(size_t a, size_t n) {
    counted();
    return __libc_memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n) {
    counted();
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

#ifdef AC_REPORT_AT_EXIT
#include <stdio.h>
/* Built as an LD_PRELOAD library (scripts/bench-client.sh): the process's total, on stderr. */
__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "allocations: %llu\n", (unsigned long long)ac_process_allocations());
}
#endif
