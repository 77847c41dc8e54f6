/* workload.c: fsd, random, phases and stream (see workload.h). */
#define _GNU_SOURCE
#include "workload.h"
#include "clock.h"
#include "pattern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"fsd", "stream", "random", "phases"};

void pc_workload_config_init(pc_workload_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = PC_WL_FSD;
    cfg->threads = 1;
    cfg->seed = 1;
    cfg->n = 64;
    cfg->noise = 0.2;
    cfg->phases[0] = 40;
    cfg->phases[1] = 160;
    cfg->phases[2] = 20;
    cfg->nphases = 3;
    cfg->iters = 1;
}

const char *pc_workload_name(pc_workload_kind k) {
    return names[k];
}

int pc_workload_parse(const char *name, pc_workload_kind *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (pc_workload_kind)i;
            return 0;
        }
    return -1;
}

/* A case size around n: n, or with probability `noise` uniform in [n/2, 3n/2] minus n. */
static uint64_t case_size(pc_rng *rng, uint64_t n, double noise) {
    if (n < 2 || pc_rng_unit(rng) >= noise) return n;
    uint64_t lo = n / 2, hi = n + n / 2;
    for (;;) {
        uint64_t s = lo + pc_rng_below(rng, hi - lo + 1);
        if (s != n && s > 0) return s;
    }
}

static int place_cases(pc_workload *w, pc_rng *rng) {
    const pc_workload_config *cfg = &w->cfg;
    uint64_t words = (w->pages + 63) / 64;
    uint64_t *used = calloc(words, sizeof *used);
    if (used == NULL) return -1;
    for (uint64_t i = 0; i < w->ncases; i++) {
        uint64_t n = cfg->n;
        if (cfg->kind == PC_WL_RANDOM)
            n = 1;
        else if (cfg->kind == PC_WL_PHASES)
            n = cfg->phases[i * (uint64_t)cfg->nphases / w->ncases];
        uint64_t size = cfg->kind == PC_WL_RANDOM ? 1 : case_size(rng, n, cfg->noise);
        if (size > w->pages) size = w->pages;
        uint64_t start = 0;
        /* Random places that do not overlap an earlier case, when there is room. */
        for (int attempt = 0; attempt < 64; attempt++) {
            start = pc_rng_below(rng, w->pages - size + 1);
            int clash = 0;
            for (uint64_t p = start; p < start + size && !clash; p++) clash = pc_bit_test(used, p);
            if (!clash || cfg->kind == PC_WL_RANDOM) break;
        }
        for (uint64_t p = start; p < start + size; p++) {
            if (!pc_bit_test(used, p)) w->pages_needed++;
            pc_bit_set(used, p);
        }
        w->cases[i] = (pc_case){start, size};
    }
    free(used);
    return 0;
}

int pc_workload_prepare(const pc_workload_config *cfg, uint64_t pages, size_t page_size, pc_workload *w) {
    memset(w, 0, sizeof *w);
    w->cfg = *cfg;
    w->pages = pages;
    w->page_size = page_size;
    if (cfg->threads < 1 || cfg->n < 1 || pages < 3) {
        fprintf(stderr,
                "prepage-postcopy: workload: need threads >= 1, n >= 1 and a region of 3 pages or more\n");
        return -1;
    }
    w->touched = calloc((pages + 63) / 64, sizeof *w->touched);
    if (w->touched == NULL) return -1;
    if (cfg->kind == PC_WL_STREAM) {
        w->pages_needed = pages / 3 * 3;
        return 0;
    }
    w->ncases = cfg->cases;
    if (w->ncases == 0) {
        /* Enough cases to need about 40 % of the region (an eighth for random). */
        uint64_t mean = cfg->n;
        if (cfg->kind == PC_WL_PHASES) {
            mean = 0;
            for (int i = 0; i < cfg->nphases; i++) mean += cfg->phases[i];
            mean /= (uint64_t)cfg->nphases;
        }
        w->ncases = cfg->kind == PC_WL_RANDOM ? pages / 8 : pages * 2 / 5 / (mean ? mean : 1);
        if (w->ncases < (uint64_t)cfg->threads) w->ncases = (uint64_t)cfg->threads;
    }
    w->cases = calloc(w->ncases, sizeof *w->cases);
    if (w->cases == NULL) return -1;
    pc_rng rng = {cfg->seed * 0x2545f4914f6cdd1dULL + 7};
    return place_cases(w, &rng);
}

typedef struct worker {
    pc_workload *w;
    unsigned char *base;
    int index;
    pthread_barrier_t *barrier;
    uint64_t sink;
    uint64_t stall_ns;
    uint64_t stalls;
} worker;

/* Counts a touch that began at t0 as a stall when it was slow. */
static inline void time_touch(worker *k, uint64_t t0) {
    uint64_t dt = pc_now_ns() - t0;
    if (dt > PC_STALL_THRESHOLD_NS) {
        k->stall_ns += dt;
        k->stalls++;
    }
}

/* Reads every word of a page: the page is needed, as a case's data would be. */
static uint64_t touch(pc_workload *w, unsigned char *base, uint64_t page) {
    const volatile uint64_t *words = (const volatile uint64_t *)(base + page * w->page_size);
    uint64_t sum = 0;
    for (size_t i = 0; i < w->page_size / 8; i++) sum += words[i];
    pc_bit_set(w->touched, page);
    return sum;
}

static void *case_worker(void *arg) {
    worker *k = arg;
    pc_workload *w = k->w;
    uint64_t sum = 0;
    for (uint64_t i = (uint64_t)k->index; i < w->ncases; i += (uint64_t)w->cfg.threads) {
        const pc_case *c = &w->cases[i];
        for (uint64_t p = c->start; p < c->start + c->count; p++) {
            uint64_t t0 = pc_now_ns();
            sum += touch(w, k->base, p);
            time_touch(k, t0);
        }
    }
    k->sink = sum;
    return NULL;
}

/* The four STREAM kernels over [lo, hi). One function each, used by the
 * workload and by the verification alike, so both compute bit for bit the same. */
static void kernel_copy(double *c, const double *a, size_t lo, size_t hi) {
    for (size_t j = lo; j < hi; j++) c[j] = a[j];
}

static void kernel_scale(double *b, const double *c, double s, size_t lo, size_t hi) {
    for (size_t j = lo; j < hi; j++) b[j] = s * c[j];
}

static void kernel_add(double *c, const double *a, const double *b, size_t lo, size_t hi) {
    for (size_t j = lo; j < hi; j++) c[j] = a[j] + b[j];
}

static void kernel_triad(double *a, const double *b, const double *c, double s, size_t lo, size_t hi) {
    for (size_t j = lo; j < hi; j++) a[j] = b[j] + s * c[j];
}

static const double stream_scalar = 3.0;

static void stream_arrays(const pc_workload *w, const unsigned char *base, double **a, double **b, double **c,
                          size_t *elems) {
    uint64_t ap = w->pages / 3;
    *a = (double *)base;
    *b = (double *)(base + ap * w->page_size);
    *c = (double *)(base + 2 * ap * w->page_size);
    *elems = (size_t)(ap * w->page_size / sizeof(double));
}

/* One STREAM iteration over [lo, hi). With a worker, each kernel runs in
 * chunks of one page's worth of elements, each timed (the chunking does not
 * change any element's result). */
static void stream_pass(double *a, double *b, double *c, size_t lo, size_t hi, pthread_barrier_t *barrier,
                        worker *k, size_t chunk) {
    if (k == NULL) chunk = hi - lo;
    for (int kernel = 0; kernel < 4; kernel++) {
        for (size_t x = lo; x < hi; x += chunk) {
            size_t y = hi - x < chunk ? hi : x + chunk;
            uint64_t t0 = pc_now_ns();
            switch (kernel) {
                case 0: kernel_copy(c, a, x, y); break;
                case 1: kernel_scale(b, c, stream_scalar, x, y); break;
                case 2: kernel_add(c, a, b, x, y); break;
                default: kernel_triad(a, b, c, stream_scalar, x, y); break;
            }
            if (k) time_touch(k, t0);
        }
        if (barrier) pthread_barrier_wait(barrier);
    }
}

static void *stream_worker(void *arg) {
    worker *k = arg;
    pc_workload *w = k->w;
    double *a, *b, *c;
    size_t n;
    stream_arrays(w, k->base, &a, &b, &c, &n);
    size_t t = (size_t)w->cfg.threads, i = (size_t)k->index;
    size_t lo = n * i / t, hi = n * (i + 1) / t;
    for (int it = 0; it < w->cfg.iters; it++)
        stream_pass(a, b, c, lo, hi, k->barrier, k, w->page_size / sizeof(double));
    return NULL;
}

int pc_workload_run(pc_workload *w, unsigned char *base) {
    int t = w->cfg.threads;
    worker *ks = calloc((size_t)t, sizeof *ks);
    pthread_t *ids = calloc((size_t)t, sizeof *ids);
    pthread_barrier_t barrier;
    if (ks == NULL || ids == NULL) {
        free(ks);
        free(ids);
        return -1;
    }
    int stream = w->cfg.kind == PC_WL_STREAM;
    if (stream) {
        pthread_barrier_init(&barrier, NULL, (unsigned)t);
        for (uint64_t p = 0; p < w->pages / 3 * 3; p++) pc_bit_set(w->touched, p);
    }
    uint64_t t0 = pc_now_ns();
    int started = 0, rc = 0;
    for (int i = 0; i < t; i++) {
        ks[i] = (worker){.w = w, .base = base, .index = i, .barrier = stream ? &barrier : NULL};
        if (pthread_create(&ids[i], NULL, stream ? stream_worker : case_worker, &ks[i]) != 0) {
            rc = -1;
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) pthread_join(ids[i], NULL);
    w->wall_s = (double)(pc_now_ns() - t0) / 1e9;
    uint64_t stall_ns = 0;
    w->thread_stalls = 0;
    for (int i = 0; i < started; i++) {
        stall_ns += ks[i].stall_ns;
        w->thread_stalls += ks[i].stalls;
    }
    w->thread_stall_ms = (double)stall_ns / 1e6;
    if (stream) pthread_barrier_destroy(&barrier);
    free(ks);
    free(ids);
    return rc;
}

uint64_t pc_workload_verify(const pc_workload *w, const unsigned char *base, uint64_t seed) {
    uint64_t bad = 0;
    size_t ps = w->page_size;
    if (w->cfg.kind != PC_WL_STREAM) {
        for (uint64_t p = 0; p < w->pages; p++) {
            if (!pc_bit_test(w->touched, p)) continue;
            if (!pc_pattern_check(base + p * ps, ps, seed, p)) {
                if (bad < 5)
                    fprintf(stderr, "prepage-postcopy: verify: page %llu differs from the source's pattern\n",
                            (unsigned long long)p);
                bad++;
            }
        }
        return bad;
    }
    /* stream: recompute on a private copy of the pattern, compare page by page. */
    uint64_t used = w->pages / 3 * 3;
    unsigned char *ref = malloc(used * ps);
    if (ref == NULL) {
        fprintf(stderr, "prepage-postcopy: verify: out of memory\n");
        return used;
    }
    for (uint64_t p = 0; p < used; p++) pc_pattern_fill(ref + p * ps, ps, seed, p);
    double *a, *b, *c;
    size_t n;
    stream_arrays(w, ref, &a, &b, &c, &n);
    for (int it = 0; it < w->cfg.iters; it++) stream_pass(a, b, c, 0, n, NULL, NULL, 0);
    for (uint64_t p = 0; p < used; p++) {
        if (memcmp(ref + p * ps, base + p * ps, ps) != 0) {
            if (bad < 5)
                fprintf(stderr,
                        "prepage-postcopy: verify: stream page %llu differs from the reference computation\n",
                        (unsigned long long)p);
            bad++;
        }
    }
    free(ref);
    return bad;
}

static int trace_cases(const pc_workload *w, FILE *f) {
    uint64_t t = (uint64_t)w->cfg.threads;
    /* Per thread: its next case and the next page in it. */
    uint64_t *next_case = calloc(t, sizeof *next_case), *offset = calloc(t, sizeof *offset);
    if (next_case == NULL || offset == NULL) {
        free(next_case);
        free(offset);
        return -1;
    }
    for (uint64_t i = 0; i < t; i++) next_case[i] = i;
    for (int live = 1; live;) {
        live = 0;
        for (uint64_t i = 0; i < t; i++) {
            if (next_case[i] >= w->ncases) continue;
            live = 1;
            const pc_case *c = &w->cases[next_case[i]];
            fprintf(f, "%llu %llu\n", (unsigned long long)(c->start + offset[i]), (unsigned long long)i);
            if (++offset[i] == c->count) {
                offset[i] = 0;
                next_case[i] += t;
            }
        }
    }
    free(next_case);
    free(offset);
    return 0;
}

static int trace_stream(const pc_workload *w, FILE *f) {
    uint64_t ap = w->pages / 3, t = (uint64_t)w->cfg.threads;
    size_t per_page = w->page_size / sizeof(double);
    size_t n = (size_t)(ap * per_page);
    /* The arrays each kernel reads and writes, in the order of its statement. */
    static const int order[4][3] = {{0, 2, -1}, {2, 1, -1}, {0, 1, 2}, {1, 2, 0}};
    for (int it = 0; it < w->cfg.iters; it++) {
        for (int k = 0; k < 4; k++) {
            int live = 1;
            for (size_t step = 0; live; step++) {
                live = 0;
                for (uint64_t i = 0; i < t; i++) {
                    size_t lo = n * i / t, hi = n * (i + 1) / t;
                    size_t x = lo + step * per_page;
                    if (x >= hi) continue;
                    live = 1;
                    for (int a = 0; a < 3 && order[k][a] >= 0; a++)
                        fprintf(f, "%llu %llu\n",
                                (unsigned long long)((uint64_t)order[k][a] * ap + x / per_page),
                                (unsigned long long)i);
                }
            }
        }
    }
    return 0;
}

int pc_workload_trace(const pc_workload *w, FILE *f) {
    fprintf(f, "# prepage-postcopy %s, %d thread(s), %llu pages, seed %llu: page stream\n",
            pc_workload_name(w->cfg.kind), w->cfg.threads, (unsigned long long)w->pages,
            (unsigned long long)w->cfg.seed);
    int rc = w->cfg.kind == PC_WL_STREAM ? trace_stream(w, f) : trace_cases(w, f);
    return rc == 0 && !ferror(f) ? 0 : -1;
}

void pc_workload_reset(pc_workload *w) {
    memset(w->touched, 0, (w->pages + 63) / 64 * sizeof *w->touched);
    w->wall_s = 0;
    w->thread_stall_ms = 0;
    w->thread_stalls = 0;
}

void pc_workload_free(pc_workload *w) {
    free(w->cases);
    free(w->touched);
    memset(w, 0, sizeof *w);
}
