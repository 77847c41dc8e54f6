/* Counts the heap allocations of the calling thread, for the tests' "the fault
 * path does not allocate" check. Linking this target interposes malloc & co.
 * for the whole test process and forwards to glibc's own; only the count is
 * per thread, so tests running in parallel do not disturb each other. */
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>
/* Allocations (malloc, calloc, realloc, memalign family) made by this thread so far. */
uint64_t ac_thread_allocations(void);
#endif
