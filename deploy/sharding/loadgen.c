/*
 * loadgen — C clients faulting sessions at full speed through a balancer, for
 * deploy/sharding/run.py. One libprepage client per session (an agent's client:
 * its own connection, deadline, fallback and breaker), the default fault
 * deadline (5 ms); threads share the sessions out.
 *
 *   loadgen URL SESSIONS THREADS FAULTS SEED OUT [PREFIX [DEADLINE_MS]]
 *
 * Creates sessions PREFIX0 … PREFIX(SESSIONS-1) (default prefix "s"; the default
 * configuration) through URL, then each thread faults its sessions (k ≡ thread
 * mod THREADS) in turn, one fault each, until every session has had FAULTS
 * faults. The pages of session k are a fixed, seeded sequence (cases of about
 * 64 pages, one in five of another size, walked 8 pages at a time on 4
 * streams): the same in every run, whatever the answers, so that two runs'
 * decisions compare fault by fault.
 *
 * Writes one line per fault to OUT: "k i page stream start count outcome t_ns
 * wait_ns", outcome being pp_outcome (5 = fallback) or -1 for a failed call,
 * t_ns the CLOCK_MONOTONIC time of the answer, wait_ns how long the call took
 * (what the faulting vCPU waited). DEADLINE_MS is the fault deadline
 * (default libprepage's, 5 ms). Prints "a third done" on stdout (flushed) when a
 * third of all the faults have been answered, for run.py to disrupt the
 * cluster then; a summary on stderr, and why each of the first failed calls
 * failed. Exit 0, or 2 on bad usage or when sessions
 * cannot be created.
 */
#define _POSIX_C_SOURCE 200809L
#include <prepage.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint32_t k, i;
    int64_t page;
    uint32_t stream;
    int64_t start;
    uint32_t count;
    int32_t outcome;
    uint64_t t_ns;
    uint64_t wait_ns;
} record;

typedef struct {
    uint64_t rng;
    int64_t page;
    int64_t case_end;
    uint32_t cases;
} walk;

static const char *url, *prefix = "s";
static int nsessions, nthreads, nfaults;
static long deadline_ms;
static uint64_t seed;
static record *records; /* nsessions × nfaults */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int failures_reported;
static atomic_long answered; /* faults answered so far, all threads */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The next page of session k's fixed sequence. */
static int64_t next_page(walk *w, uint32_t *stream) {
    if (w->page + 8 >= w->case_end) {
        int64_t size = splitmix(&w->rng) % 5 == 0 ? 8 + (int64_t)(splitmix(&w->rng) % 249) : 64;
        w->page = (int64_t)(splitmix(&w->rng) % (1ull << 30));
        w->case_end = w->page + size;
        w->cases++;
    } else {
        w->page += 8;
    }
    *stream = w->cases % 4;
    return w->page;
}

static void session_id(char *out, size_t size, int k) {
    snprintf(out, size, "%s%d", prefix, k);
}

static pp_client *new_client(void) {
    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    if (deadline_ms > 0) o.fault_deadline_ms = deadline_ms;
    return pp_client_new(&o);
}

static void *thread_main(void *arg) {
    int t = (int)(intptr_t)arg;
    int mine = 0;
    for (int k = t; k < nsessions; k += nthreads) mine++;
    walk *walks = calloc((size_t)mine, sizeof *walks);
    pp_client **clients = calloc((size_t)mine, sizeof *clients);
    char id[64];
    for (int j = 0, k = t; k < nsessions; k += nthreads, j++) {
        walks[j].rng = seed * 1000003u + (uint64_t)k;
        walks[j].case_end = -1;
        clients[j] = new_client();
        session_id(id, sizeof id, k);
        /* The client knows the config: after a 404 (the session moved) it re-creates it. */
        if (pp_session_create(clients[j], id, NULL) != 0) {
            fprintf(stderr, "loadgen: cannot create %s: %s\n", id, pp_client_errstr(clients[j]));
            exit(2);
        }
    }
    pp_decision d;
    pp_decision_init(&d);
    for (int i = 0; i < nfaults; i++) {
        for (int j = 0, k = t; k < nsessions; k += nthreads, j++) {
            uint32_t stream;
            int64_t page = next_page(&walks[j], &stream);
            session_id(id, sizeof id, k);
            uint64_t asked = now_ns();
            int rc = pp_fault_page(clients[j], id, (uint64_t)page, stream, &d);
            if (atomic_fetch_add(&answered, 1) + 1 == (long)nsessions * nfaults / 3) {
                printf("a third done\n");
                fflush(stdout);
            }
            record *r = &records[(size_t)k * (size_t)nfaults + (size_t)i];
            r->k = (uint32_t)k;
            r->i = (uint32_t)i;
            r->page = page;
            r->stream = stream;
            r->t_ns = now_ns();
            r->wait_ns = r->t_ns - asked;
            if (rc == 0) {
                r->start = (int64_t)d.start;
                r->count = (uint32_t)d.count;
                r->outcome = (int32_t)d.outcome;
            } else {
                r->start = -1;
                r->count = 0;
                r->outcome = -1;
                pthread_mutex_lock(&report_lock);
                if (failures_reported++ < 5)
                    fprintf(stderr, "loadgen: fault %d of %s failed (HTTP %d): %s\n", i, id,
                            pp_client_http_status(clients[j]), pp_client_errstr(clients[j]));
                pthread_mutex_unlock(&report_lock);
            }
        }
    }
    for (int j = 0; j < mine; j++) pp_client_free(clients[j]);
    free(clients);
    free(walks);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: loadgen URL SESSIONS THREADS FAULTS SEED OUT [PREFIX [DEADLINE_MS]]\n");
        return 2;
    }
    url = argv[1];
    nsessions = atoi(argv[2]);
    nthreads = atoi(argv[3]);
    nfaults = atoi(argv[4]);
    seed = strtoull(argv[5], NULL, 10);
    if (argc > 7) prefix = argv[7];
    if (argc > 8) deadline_ms = atol(argv[8]);
    if (nsessions < 1 || nthreads < 1 || nthreads > nsessions || nfaults < 1) {
        fprintf(stderr, "loadgen: SESSIONS ≥ THREADS ≥ 1 and FAULTS ≥ 1\n");
        return 2;
    }
    if (pp_global_init() != 0) return 2;
    records = calloc((size_t)nsessions * (size_t)nfaults, sizeof *records);
    if (records == NULL) return 2;
    uint64_t t0 = now_ns();
    pthread_t *threads = calloc((size_t)nthreads, sizeof *threads);
    for (int t = 0; t < nthreads; t++) pthread_create(&threads[t], NULL, thread_main, (void *)(intptr_t)t);
    for (int t = 0; t < nthreads; t++) pthread_join(threads[t], NULL);
    uint64_t t1 = now_ns();
    FILE *out = fopen(argv[6], "w");
    if (out == NULL) {
        perror(argv[6]);
        return 2;
    }
    long fallbacks = 0, failed = 0;
    for (size_t n = 0; n < (size_t)nsessions * (size_t)nfaults; n++) {
        record *r = &records[n];
        fprintf(out, "%u %u %lld %u %lld %u %d %llu %llu\n", r->k, r->i, (long long)r->page, r->stream,
                (long long)r->start, r->count, r->outcome, (unsigned long long)r->t_ns,
                (unsigned long long)r->wait_ns);
        if (r->outcome == PP_FALLBACK) fallbacks++;
        if (r->outcome < 0) failed++;
    }
    fclose(out);
    double seconds = (double)(t1 - t0) / 1e9;
    fprintf(stderr,
            "loadgen: %d sessions x %d faults on %d threads in %.2f s (%.0f faults/s), %ld fell back, %ld "
            "failed\n",
            nsessions, nfaults, nthreads, seconds, (double)nsessions * nfaults / seconds, fallbacks, failed);
    pp_global_cleanup();
    return 0;
}
