/*
 * workload.c — the guest's load for the QEMU post-copy runs (static, runs as
 * the initramfs's only program besides busybox).
 *
 *   workload LOAD [key=value ...]      LOAD: fsd | stream | mixed | smp4
 *
 *   mem=MiB      region size (default 192)        seed=S     (default 1)
 *   n=PAGES      FSD case size (default 64)       noise=P    (default 0.2)
 *   cover=F      share of the region the FSD cases touch (default 0.4)
 *   scatter=F    mixed: share touched one page at a time first (default 0.05)
 *   threads=T    smp4's threads, one per vCPU (default 4)
 *   thr_us=U     a page touch slower than this stalled (default 50)
 *   delay=S      seconds between READY and the start of the work (default 2)
 *
 * It fills the region (every page tagged: its first and last 8 bytes are a
 * function of the seed and the page's index), prints "PP READY", waits
 * `delay` seconds (the harness migrates and switches to post-copy then),
 * prints "PP START", runs the load, checks the tag of every page it touches,
 * then every page of the region, and prints "PP RESULT ok" or "PP RESULT
 * fail". Each second it prints the cases done and the stall so far: the
 * summed time of page touches slower than thr_us (they waited on a fault),
 * how many, and the slowest case.
 *
 * Loads (every random choice from the seed):
 *   fsd     cases of n pages at random places, touched upward page by page;
 *           a noisy case (probability noise) has a size uniform in
 *           [n/2, 3n/2], never n. Cases do not overlap.
 *   stream  STREAM's copy, scale, add and triad over three arrays filling the
 *           region, swept page by page by one thread (a case: one page of
 *           each array the kernel uses).
 *   mixed   `scatter` of the region's pages touched one at a time at random
 *           places, then the fsd cases.
 *   smp4    the fsd cases spread over `threads` threads, case i on thread
 *           i mod T, each thread pinned to its own vCPU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE        4096u
#define WORDS       (PAGE / 8)
#define MAX_THREADS 16

/* ---- configuration ---- */
static const char *load = "fsd";
static uint64_t mem_mib = 192, seed = 1, n_pages = 64;
static double noise = 0.2, cover = 0.4, scatter = 0.05, thr_us = 50, delay_s = 2;
static int nthreads = 1;

static unsigned char *region;
static uint64_t npages;
static double tsc_per_us;
static uint64_t thr_ticks;

/* ---- randomness and tags ---- */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n) {
    return splitmix(s) % n;
}

static inline uint64_t tag_of(uint64_t page) {
    uint64_t s = seed * 0x2545f4914f6cdd1dULL ^ page;
    return splitmix(&s) | 1;
}

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- per-thread counters, summed by the reporter ---- */
typedef struct {
    _Atomic uint64_t cases, slow, stall_ticks, max_case_ticks, errors, touches;
    char pad[64];
} counters;
static counters ctr[MAX_THREADS];
static _Atomic int reported_errors;

static inline uint64_t *page_words(uint64_t page) {
    return (uint64_t *)(region + page * PAGE);
}

/* Reads the page's tags (checks them) and writes a word of it; times the touch. */
static inline uint64_t touch(counters *c, uint64_t page, uint64_t value) {
    uint64_t t0 = rdtsc();
    uint64_t *w = page_words(page);
    uint64_t tag = tag_of(page);
    if (w[0] != tag || w[WORDS - 1] != ~tag) {
        atomic_fetch_add(&c->errors, 1);
        if (atomic_fetch_add(&reported_errors, 1) < 5)
            printf("PP ERROR page=%" PRIu64 " tag=%016" PRIx64 " want=%016" PRIx64 "\n", page, w[0], tag);
    }
    w[1] = value;
    uint64_t dt = rdtsc() - t0;
    atomic_fetch_add_explicit(&c->touches, 1, memory_order_relaxed);
    if (dt > thr_ticks) {
        atomic_fetch_add_explicit(&c->slow, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->stall_ticks, dt, memory_order_relaxed);
    }
    return dt;
}

static void case_done(counters *c, uint64_t ticks) {
    atomic_fetch_add_explicit(&c->cases, 1, memory_order_relaxed);
    if (ticks > atomic_load_explicit(&c->max_case_ticks, memory_order_relaxed))
        atomic_store_explicit(&c->max_case_ticks, ticks, memory_order_relaxed);
}

typedef struct {
    uint64_t cases, slow, stall, maxc, errors, touches;
} totals;

static totals sum(void) {
    totals t = {0};
    for (int i = 0; i < MAX_THREADS; i++) {
        t.cases += atomic_load(&ctr[i].cases);
        t.slow += atomic_load(&ctr[i].slow);
        t.stall += atomic_load(&ctr[i].stall_ticks);
        t.errors += atomic_load(&ctr[i].errors);
        t.touches += atomic_load(&ctr[i].touches);
        uint64_t m = atomic_load(&ctr[i].max_case_ticks);
        if (m > t.maxc) t.maxc = m;
    }
    return t;
}

static double start_s;
static void print_stat(const char *what) {
    totals t = sum();
    printf("PP %s t=%.1f cases=%" PRIu64 " touches=%" PRIu64 " stall_ms=%.1f slow=%" PRIu64
           " max_case_ms=%.2f errors=%" PRIu64 "\n",
           what, now_s() - start_s, t.cases, t.touches, t.stall / tsc_per_us / 1000, t.slow,
           t.maxc / tsc_per_us / 1000, t.errors);
    fflush(stdout);
}

/* ---- the cases ---- */
typedef struct {
    uint64_t start, count;
} fcase;
static fcase *cases;
static uint64_t ncases;
static uint64_t *scattered;
static uint64_t nscattered;

static void make_fsd(uint64_t pages, double share) {
    uint64_t rs = seed * 7919 + 1;
    uint64_t slot = n_pages + n_pages / 2; /* the largest case */
    uint64_t nslots = pages / slot;
    uint64_t want = (uint64_t)(pages * share / n_pages);
    if (want > nslots) want = nslots;
    uint64_t *perm = malloc(nslots * sizeof *perm);
    for (uint64_t i = 0; i < nslots; i++) perm[i] = i;
    for (uint64_t i = nslots; i > 1; i--) {
        uint64_t j = rnd_below(&rs, i), x = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = x;
    }
    cases = calloc(want, sizeof *cases);
    for (uint64_t i = 0; i < want; i++) {
        uint64_t count = n_pages;
        if ((splitmix(&rs) >> 11) * 0x1.0p-53 < noise) {
            do count = n_pages / 2 + rnd_below(&rs, n_pages + 1);
            while (count == n_pages);
        }
        cases[i].start = perm[i] * slot + rnd_below(&rs, slot - count + 1);
        cases[i].count = count;
    }
    ncases = want;
    free(perm);
}

static void make_scatter(uint64_t pages, double share) {
    uint64_t rs = seed * 104729 + 3;
    unsigned char *used = calloc(pages, 1);
    for (uint64_t i = 0; i < ncases; i++) memset(used + cases[i].start, 1, cases[i].count);
    nscattered = (uint64_t)(pages * share);
    scattered = malloc(nscattered * sizeof *scattered);
    for (uint64_t i = 0; i < nscattered; i++) {
        uint64_t p;
        do p = rnd_below(&rs, pages);
        while (used[p]);
        used[p] = 1;
        scattered[i] = p;
    }
    free(used);
}

static void run_case(counters *c, const fcase *k) {
    uint64_t t = 0;
    for (uint64_t p = k->start; p < k->start + k->count; p++) t += touch(c, p, p);
    case_done(c, t);
}

typedef struct {
    int id;
} targ;

static void *fsd_thread(void *arg) {
    int id = ((targ *)arg)->id;
    if (nthreads > 1) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(id, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    for (uint64_t i = (uint64_t)id; i < ncases; i += (uint64_t)nthreads) run_case(&ctr[id], &cases[i]);
    return NULL;
}

/* STREAM over arrays a, b, c of P pages each: data words 1 .. WORDS-2 of each page. */
static void stream_run(void) {
    uint64_t P = npages / 3;
    uint64_t A = 0, B = P, C = 2 * P;
    counters *c = &ctr[0];
    const double s = 3.0;
    for (int k = 0; k < 4; k++) {
        for (uint64_t j = 0; j < P; j++) {
            uint64_t t = 0;
            double *a = (double *)page_words(A + j), *b = (double *)page_words(B + j),
                   *cc = (double *)page_words(C + j);
            switch (k) {
                case 0:
                    t += touch(c, A + j, 0);
                    t += touch(c, C + j, 0);
                    for (unsigned w = 2; w < WORDS - 1; w++) cc[w] = a[w];
                    break;
                case 1:
                    t += touch(c, C + j, 0);
                    t += touch(c, B + j, 0);
                    for (unsigned w = 2; w < WORDS - 1; w++) b[w] = s * cc[w];
                    break;
                case 2:
                    t += touch(c, A + j, 0);
                    t += touch(c, B + j, 0);
                    t += touch(c, C + j, 0);
                    for (unsigned w = 2; w < WORDS - 1; w++) cc[w] = a[w] + b[w];
                    break;
                default:
                    t += touch(c, B + j, 0);
                    t += touch(c, C + j, 0);
                    t += touch(c, A + j, 0);
                    for (unsigned w = 2; w < WORDS - 1; w++) a[w] = b[w] + s * cc[w];
                    break;
            }
            case_done(c, t);
        }
    }
}

static _Atomic int finished;
static void *reporter(void *arg) {
    (void)arg;
    double next = start_s + 1;
    while (!atomic_load(&finished)) {
        usleep(20000);
        if (now_s() >= next) {
            print_stat("STAT");
            next += 1;
        }
    }
    return NULL;
}

static void parse(int argc, char **argv) {
    if (argc > 1) load = argv[1];
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "mem"))
            mem_mib = strtoull(v, NULL, 0);
        else if (!strcmp(k, "seed"))
            seed = strtoull(v, NULL, 0);
        else if (!strcmp(k, "n"))
            n_pages = strtoull(v, NULL, 0);
        else if (!strcmp(k, "noise"))
            noise = atof(v);
        else if (!strcmp(k, "cover"))
            cover = atof(v);
        else if (!strcmp(k, "scatter"))
            scatter = atof(v);
        else if (!strcmp(k, "threads"))
            nthreads = atoi(v);
        else if (!strcmp(k, "thr_us"))
            thr_us = atof(v);
        else if (!strcmp(k, "delay"))
            delay_s = atof(v);
        else
            fprintf(stderr, "workload: unknown option %s (ignored)\n", k);
    }
    if (!strcmp(load, "smp4")) {
        if (nthreads < 2) nthreads = 4;
    } else {
        nthreads = 1;
    }
    if (nthreads > MAX_THREADS) nthreads = MAX_THREADS;
    if (strcmp(load, "fsd") && strcmp(load, "stream") && strcmp(load, "mixed") && strcmp(load, "smp4")) {
        fprintf(stderr, "workload: unknown load '%s' (fsd, stream, mixed, smp4)\n", load);
        exit(64);
    }
    if (n_pages < 2) n_pages = 2;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse(argc, argv);
    npages = mem_mib * 1024 * 1024 / PAGE;
    region =
        mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (region == MAP_FAILED) {
        printf("PP RESULT fail mmap: %s\n", strerror(errno));
        return 1;
    }
    /* TSC ticks per microsecond, against CLOCK_MONOTONIC over 200 ms. */
    double c0 = now_s();
    uint64_t t0 = rdtsc();
    while (now_s() - c0 < 0.2) {
    }
    tsc_per_us = (rdtsc() - t0) / ((now_s() - c0) * 1e6);
    thr_ticks = (uint64_t)(thr_us * tsc_per_us);

    for (uint64_t p = 0; p < npages; p++) {
        uint64_t *w = page_words(p), tag = tag_of(p);
        w[0] = tag;
        w[WORDS - 1] = ~tag;
        for (unsigned i = 1; i < WORDS - 1; i++) w[i] = p * WORDS + i; /* no zero pages */
    }
    if (!strcmp(load, "stream")) {
        for (uint64_t p = 0; p < npages; p++) {
            double *d = (double *)page_words(p);
            double v = p < npages / 3 ? 1.0 : p < 2 * (npages / 3) ? 2.0 : 0.5;
            for (unsigned i = 2; i < WORDS - 1; i++) d[i] = v;
        }
    } else {
        make_fsd(npages, !strcmp(load, "mixed") ? cover * 0.75 : cover);
        if (!strcmp(load, "mixed")) make_scatter(npages, scatter);
    }
    { /* warm-up: translate the touch path once (TCG), on counters thrown away */
        counters scratch;
        memset(&scratch, 0, sizeof scratch);
        for (uint64_t p = 0; p < npages && p < 256; p++) touch(&scratch, p, p);
        atomic_store(&reported_errors, 0);
    }
    printf("PP READY load=%s pages=%" PRIu64 " cases=%" PRIu64 " scattered=%" PRIu64
           " threads=%d tsc_per_us=%.1f thr_us=%.0f seed=%" PRIu64 "\n",
           load, npages, ncases, nscattered, nthreads, tsc_per_us, thr_us, seed);
    fflush(stdout);
    usleep((useconds_t)(delay_s * 1e6));

    start_s = now_s();
    printf("PP START\n");
    pthread_t rep;
    pthread_create(&rep, NULL, reporter, NULL);
    if (!strcmp(load, "stream")) {
        stream_run();
    } else {
        if (nscattered) {
            for (uint64_t i = 0; i < nscattered; i++) {
                fcase k = {scattered[i], 1};
                run_case(&ctr[0], &k);
            }
        }
        pthread_t th[MAX_THREADS];
        targ args[MAX_THREADS];
        for (int i = 0; i < nthreads; i++) {
            args[i].id = i;
            pthread_create(&th[i], NULL, fsd_thread, &args[i]);
        }
        for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
    }
    double work_s = now_s() - start_s;
    atomic_store(&finished, 1);
    pthread_join(rep, NULL);
    print_stat("DONE");
    printf("PP WORK work_s=%.3f\n", work_s);

    /* Every page of the region, once the load is done. */
    uint64_t bad = 0;
    for (uint64_t p = 0; p < npages; p++) {
        uint64_t *w = page_words(p), tag = tag_of(p);
        if (w[0] != tag || w[WORDS - 1] != ~tag) {
            if (bad++ < 5) printf("PP ERROR verify page=%" PRIu64 "\n", p);
        }
    }
    totals t = sum();
    printf("PP VERIFY pages=%" PRIu64 " errors=%" PRIu64 "\n", npages, bad);
    printf("PP RESULT %s errors=%" PRIu64 "\n", bad + t.errors == 0 ? "ok" : "fail", bad + t.errors);
    fflush(stdout);
    return bad + t.errors == 0 ? 0 : 1;
}
