/* pattern.h: the memory image's checksummable content.
 *
 * Every 8-byte word of the image is a function of (seed, page, word): the
 * source fills its image with it, the destination recomputes it to verify
 * what it received. The top 12 bits are fixed (0x3FF) so that every word is a
 * finite double in [1, 2): the STREAM kernels compute on the image directly.
 */
#ifndef PC_PATTERN_H
#define PC_PATTERN_H

#include <stdint.h>
#include <stddef.h>

/* splitmix64's finaliser: a cheap, well-mixed 64-bit hash. */
static inline uint64_t pc_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The word at index `word` of page `page` of the image seeded by `seed`. */
static inline uint64_t pc_pattern_word(uint64_t seed, uint64_t page, uint64_t word) {
    uint64_t h = pc_mix64(seed ^ pc_mix64(page * 0x9e3779b97f4a7c15ULL + word + 1));
    return 0x3ff0000000000000ULL | (h >> 12);
}

/* Fills one page (page_size bytes at dst) with its pattern. */
static inline void pc_pattern_fill(void *dst, size_t page_size, uint64_t seed, uint64_t page) {
    uint64_t *w = dst;
    for (size_t i = 0; i < page_size / 8; i++) w[i] = pc_pattern_word(seed, page, i);
}

/* 1 when the page at src holds exactly its pattern, else 0. */
static inline int pc_pattern_check(const void *src, size_t page_size, uint64_t seed, uint64_t page) {
    const uint64_t *w = src;
    for (size_t i = 0; i < page_size / 8; i++)
        if (w[i] != pc_pattern_word(seed, page, i)) return 0;
    return 1;
}

/* A small seeded generator (splitmix64) for workloads: reproducible by --seed. */
typedef struct pc_rng {
    uint64_t state;
} pc_rng;

static inline uint64_t pc_rng_next(pc_rng *r) {
    r->state += 0x9e3779b97f4a7c15ULL;
    return pc_mix64(r->state);
}

/* Uniform in [0, n); n > 0. The modulo bias is below 2^-40 for our n. */
static inline uint64_t pc_rng_below(pc_rng *r, uint64_t n) {
    return pc_rng_next(r) % n;
}

/* Uniform in [0, 1). */
static inline double pc_rng_unit(pc_rng *r) {
    return (double)(pc_rng_next(r) >> 11) * 0x1.0p-53;
}

#endif
