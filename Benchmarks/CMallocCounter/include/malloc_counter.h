/* Counts heap allocations made by the whole process, for the benchmarks'
 * "zero allocations on the decision path" check. Linking this target into an
 * executable interposes malloc & co. and forwards to glibc's own. */
#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
#include <stdint.h>
/* Allocations (malloc, calloc, realloc, memalign family) since the process started. */
uint64_t mc_allocations(void);
#endif
