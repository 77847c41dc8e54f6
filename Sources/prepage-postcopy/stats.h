/* stats.h: samples of durations and their summary. */
#ifndef PC_STATS_H
#define PC_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pc_samples {
    uint64_t *ns;
    size_t n, cap;
} pc_samples;

typedef struct pc_summary {
    double p50_us, p99_us, mean_us, sum_us;
    size_t n;
} pc_summary;

void pc_samples_add(pc_samples *s, uint64_t ns);
/* Sorts the samples in place. All zero when empty. */
pc_summary pc_samples_summary(pc_samples *s);
void pc_samples_free(pc_samples *s);

#endif
