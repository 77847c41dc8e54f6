/* stats.c: see stats.h. */
#include "stats.h"

#include <stdlib.h>

void pc_samples_add(pc_samples *s, uint64_t ns) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint64_t *p = realloc(s->ns, cap * sizeof *p);
        if (p == NULL) return; /* out of memory: the sample is dropped, not the run */
        s->ns = p;
        s->cap = cap;
    }
    s->ns[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double rank(const pc_samples *s, double q) {
    size_t i = (size_t)(q * (double)s->n + 0.999999);
    if (i > 0) i--;
    if (i >= s->n) i = s->n - 1;
    return (double)s->ns[i] / 1000.0;
}

pc_summary pc_samples_summary(pc_samples *s) {
    pc_summary r = {0};
    if (s->n == 0) return r;
    qsort(s->ns, s->n, sizeof *s->ns, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += (double)s->ns[i];
    r.n = s->n;
    r.sum_us = sum / 1000.0;
    r.mean_us = r.sum_us / (double)s->n;
    r.p50_us = rank(s, 0.50);
    r.p99_us = rank(s, 0.99);
    return r;
}

void pc_samples_free(pc_samples *s) {
    free(s->ns);
    s->ns = NULL;
    s->n = s->cap = 0;
}
