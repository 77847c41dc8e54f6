/*
 * drain_client.c — an agent's view of an instance being stopped behind the
 * load balancer (deploy/test.sh builds and runs it through HAProxy).
 *
 *     drain_client URL SESSIONS STOPFILE DEADLINE_MS
 *
 * Creates SESSIONS sessions (dp, so that each fault is decided by the
 * session's own state), then posts faults to them round-robin, one client on
 * one thread as a vCPU's handler would, timing every call, until STOPFILE
 * exists. The first line it prints, "ready", says the sessions exist; the last
 * is a summary:
 *
 *     faults N oracle O fallbacks F errors E max_us M p99_us P recovered R/SESSIONS
 *
 * fallbacks: faults the client decided alone (the oracle missed the deadline,
 * refused or answered 5xx); errors: calls that returned -1; recovered: sessions
 * the oracle decides again once the client's breaker has closed (a fault each,
 * 1.1 s after STOPFILE). Calls over 20 ms and the first fallbacks are told on
 * stderr. Between faults it pauses 100 µs, as a handler fetching its window.
 * Exit status 0 unless a call failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <prepage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 256
#define MAX_SAMPLES  2000000

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s URL SESSIONS STOPFILE DEADLINE_MS\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    int sessions = atoi(argv[2]);
    const char *stopfile = argv[3];
    long deadline = atol(argv[4]);
    if (sessions < 1 || sessions > MAX_SESSIONS || deadline < 1) {
        fprintf(stderr, "SESSIONS must be 1 … %d and DEADLINE_MS at least 1\n", MAX_SESSIONS);
        return 2;
    }
    if (pp_global_init() != 0) return 1;
    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    o.fault_deadline_ms = deadline;
    pp_client *c = pp_client_new(&o);
    if (!c) return 1;

    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.policy = "dp";
    cfg.max_pages = 64;
    char ids[MAX_SESSIONS][32];
    for (int i = 0; i < sessions; i++) {
        snprintf(ids[i], sizeof ids[i], "drain-%d", i);
        if (pp_session_create(c, ids[i], &cfg) != 0) {
            fprintf(stderr, "create %s: %s\n", ids[i], pp_client_errstr(c));
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);

    long long *samples = malloc(sizeof *samples * MAX_SAMPLES);
    long faults = 0, oracle = 0, fallbacks = 0, errors = 0;
    long long max_us = 0;
    pp_decision d;
    pp_decision_init(&d);
    for (uint64_t round = 0; access(stopfile, F_OK) != 0; round++) {
        for (int i = 0; i < sessions; i++) {
            /* Cases of 16 pages, one fault each 4 pages: smaller and larger decisions. */
            uint64_t page = (uint64_t)i * 1000000 + (round / 4) * 64 + (round % 4) * 4;
            long long t0 = now_us();
            int rc = pp_fault_page(c, ids[i], page, (uint32_t)i, &d);
            long long us = now_us() - t0;
            if (faults < MAX_SAMPLES) samples[faults] = us;
            faults++;
            if (us > max_us) max_us = us;
            static int slow_reported;
            if (us > 20000 && slow_reported < 10) {
                slow_reported++;
                fprintf(stderr, "slow: at %.3f s %s page %llu took %lld us (rc %d, %s)\n", t0 / 1e6, ids[i],
                        (unsigned long long)page, us, rc,
                        rc == 0 ? pp_outcome_name(d.outcome) : pp_client_errstr(c));
            }
            /* A vCPU's handler fetches the window before its next fault: about 100 µs. */
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
            if (rc != 0) {
                errors++;
                fprintf(stderr, "fault %s page %llu: %s\n", ids[i], (unsigned long long)page,
                        pp_client_errstr(c));
            } else if (d.outcome == PP_FALLBACK) {
                /* Why, for the first few: the breaker's own fallbacks say so too. */
                if (fallbacks < 5)
                    fprintf(stderr, "fallback: at %.3f s %s page %llu after %lld us: %s\n", t0 / 1e6, ids[i],
                            (unsigned long long)page, us, pp_client_errstr(c));
                fallbacks++;
            } else {
                oracle++;
            }
        }
    }
    long n = faults < MAX_SAMPLES ? faults : MAX_SAMPLES;
    qsort(samples, (size_t)n, sizeof *samples, cmp_ll);
    long long p99 = n ? samples[(n * 99) / 100] : 0;
    /* Settle: every session must be decided by the oracle again. A probe that
     * misses its deadline on a loaded machine reopens the breaker (up to 1 s), so
     * keep asking, for at most 10 s, the sessions not yet recovered. */
    int recovered = 0;
    int back[MAX_SESSIONS] = {0};
    for (long long until = now_us() + 10000000LL; recovered < sessions && now_us() < until;) {
        for (int i = 0; i < sessions; i++) {
            if (back[i]) continue;
            uint64_t page = (uint64_t)i * 1000000 + 999000;
            if (pp_fault_page(c, ids[i], page, (uint32_t)i, &d) == 0 && d.outcome != PP_FALLBACK) {
                back[i] = 1;
                recovered++;
            }
        }
        struct timespec pause = {0, 20000000};
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < sessions; i++)
        if (!back[i]) fprintf(stderr, "not recovered: %s: %s\n", ids[i], pp_client_errstr(c));
    printf("faults %ld oracle %ld fallbacks %ld errors %ld max_us %lld p99_us %lld recovered %d/%d\n", faults,
           oracle, fallbacks, errors, max_us, p99, recovered, sessions);
    free(samples);
    pp_client_free(c);
    pp_global_cleanup();
    return errors ? 1 : 0;
}
