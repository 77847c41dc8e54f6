/* workload.h: the programs run inside the migrated region.
 *
 * Every workload is generated from its seed before it runs, so the same
 * options give the same page accesses under every policy and thread count.
 * - fsd:    cases of N pages at random places, touched upward page by page; a
 *           noisy case (probability `noise`) has a size uniform in
 *           [N/2, 3N/2], never N (the simulator's shape). Cases do not overlap.
 * - random: cases of one page at a uniformly random place.
 * - phases: fsd whose N changes: the cases are split evenly over `phases`.
 * - stream: STREAM's copy, scale, add and triad over three arrays filling the
 *           region, each kernel split over the threads in equal contiguous
 *           chunks (OpenMP's static schedule), a barrier after each.
 * Case i runs on thread i mod T.
 */
#ifndef PC_WORKLOAD_H
#define PC_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { PC_WL_FSD, PC_WL_STREAM, PC_WL_RANDOM, PC_WL_PHASES } pc_workload_kind;

#define PC_MAX_PHASES 16

typedef struct pc_workload_config {
    pc_workload_kind kind;
    int threads;    /* default 1 */
    uint64_t seed;  /* default 1 */
    uint64_t n;     /* fsd case size, default 64 */
    double noise;   /* default 0.2 */
    uint64_t cases; /* 0 = enough to need 40 % of the region (random: 1/8) */
    uint64_t phases[PC_MAX_PHASES];
    int nphases; /* default 40, 160, 20 */
    int iters;   /* STREAM iterations, default 1 */
} pc_workload_config;

void pc_workload_config_init(pc_workload_config *cfg);
const char *pc_workload_name(pc_workload_kind k);
int pc_workload_parse(const char *name, pc_workload_kind *out);

typedef struct pc_case {
    uint64_t start;
    uint64_t count;
} pc_case;

typedef struct pc_workload {
    pc_workload_config cfg;
    uint64_t pages;
    size_t page_size;
    pc_case *cases; /* not for stream */
    uint64_t ncases;
    uint64_t pages_needed; /* distinct pages the workload touches */
    uint64_t *touched;     /* bitmap, set while running */
    double wall_s;
    /* Seen from the workload's threads: the summed time of the page touches
     * (a STREAM chunk of one page per array) that took longer than
     * PC_STALL_THRESHOLD_NS, i.e. that waited on a fault. Unlike the handler's
     * response time it includes the kernel's delivery and the wait in the
     * handler's queue behind other threads' faults. */
    double thread_stall_ms;
    uint64_t thread_stalls;
} pc_workload;

/* A touch slower than this waited on a fault: 20 µs, well below the link's
 * round trip and well above a page read from memory. */
#define PC_STALL_THRESHOLD_NS 20000ULL

/* Generates the workload for a region of `pages` pages. 0 ok, -1 error (stderr). */
int pc_workload_prepare(const pc_workload_config *cfg, uint64_t pages, size_t page_size, pc_workload *w);
/* Runs it on cfg.threads threads over the region at base; sets wall_s. 0 ok. */
int pc_workload_run(pc_workload *w, unsigned char *base);
/* Checks every touched page against what the workload must have left there:
 * the source's pattern, or for stream the kernels computed on a private copy
 * of it. Returns the number of wrong pages; the first few are printed. */
uint64_t pc_workload_verify(const pc_workload *w, const unsigned char *base, uint64_t seed);
/* Writes the page touches the workload makes, one "page stream" line each
 * (stream = thread index), the threads interleaved round-robin one page (a
 * STREAM chunk) at a time: the trace `prepage-sim replay` reads, to put the
 * simulator's figures beside these. Exact for one thread. 0 ok, -1 error. */
int pc_workload_trace(const pc_workload *w, FILE *f);
/* Clears the touched bitmap (to run again). */
void pc_workload_reset(pc_workload *w);
void pc_workload_free(pc_workload *w);

static inline int pc_bit_test(const uint64_t *bits, uint64_t i) {
    return (int)((__atomic_load_n(&bits[i / 64], __ATOMIC_ACQUIRE) >> (i % 64)) & 1);
}

static inline void pc_bit_set(uint64_t *bits, uint64_t i) {
    __atomic_fetch_or(&bits[i / 64], 1ULL << (i % 64), __ATOMIC_RELEASE);
}

#endif
