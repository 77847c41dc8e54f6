/* Counts heap allocations: the one malloc interposer of the project. Linking this
 * target interposes malloc & co. for the whole process and forwards to glibc's own.
 *   - the tests' "the fault path does not allocate" checks read the calling thread's
 *     count, so tests running in parallel do not disturb each other;
 *   - the core benchmark (prepage-bench) reads the process's count;
 *   - scripts/bench-client.sh builds this file as an LD_PRELOAD library with
 *     -DAC_REPORT_AT_EXIT, which prints "allocations: N" (the process's count) at exit. */
#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>
/* Allocations (malloc, calloc, realloc, memalign family) made by this thread so far. */
uint64_t ac_thread_allocations(void);
/* Allocations made by every thread of the process so far. */
uint64_t ac_process_allocations(void);
#endif
