/* clock.h: monotonic time in nanoseconds, and waiting for a deadline. */
#ifndef PC_CLOCK_H
#define PC_CLOCK_H

#include <stdint.h>
#include <time.h>
#include <errno.h>

static inline uint64_t pc_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void pc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Sleeps most of the way to `deadline_ns` and spins the last `spin_ns`:
 * a sleep alone overshoots by tens of microseconds, which is the size of the
 * latencies emulated here. spin_ns = 0 sleeps only. */
static inline void pc_wait_until(uint64_t deadline_ns, uint64_t spin_ns) {
    for (;;) {
        uint64_t now = pc_now_ns();
        if (now >= deadline_ns) return;
        uint64_t left = deadline_ns - now;
        if (left > spin_ns) {
            uint64_t sleep_ns = left - spin_ns;
            struct timespec ts = {(time_t)(sleep_ns / 1000000000ULL), (long)(sleep_ns % 1000000000ULL)};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
            if (spin_ns == 0) return;
        } else {
            pc_cpu_relax();
        }
    }
}

#endif
