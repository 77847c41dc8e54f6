/*
 * agent.c — a small migration agent: one session, one client per vCPU
 * thread, a deadline on every fault, and demand paging when the oracle is
 * away.
 *
 *     cc agent.c $(pkg-config --cflags --libs prepage) -o agent
 *     ./agent http://127.0.0.1:7070      # PREPAGE_TOKEN, PREPAGE_FAULT_DEADLINE_MS (default 5)
 *
 * (glibc 2.34 or later has pthread_create in libc; on an older one add -pthread.)
 *
 * The "guest" here is a scan over 4,096 pages by two vCPUs with a few random
 * jumps; a real agent calls pp_fault_addr() from its userfaultfd handler
 * with the faulting address and thread, then fetches [addr, addr+bytes).
 *
 * The pattern:
 *   - one pp_client per thread (a client belongs to one thread at a time);
 *   - every thread's client knows the session's config (pp_session_register,
 *     no request), so whichever thread first meets a restarted server
 *     re-creates the session;
 *   - a fault never stalls a vCPU beyond fault_deadline_ms: when the oracle
 *     hangs, refuses or answers 5xx, the call still returns 0 with outcome
 *     PP_FALLBACK and the faulting page alone — fetch it and go on; the client
 *     asks the oracle again once its circuit breaker's short period is over;
 *   - an error (-1) is the oracle saying no (a 4xx): report it, and still
 *     fetch the faulting page, which the guest needs whatever the oracle says.
 * Run against a port where nothing listens, it migrates on demand paging and
 * says so: every decision is a fallback.
 */
#define _POSIX_C_SOURCE 200809L /* rand_r, getpid */

#include <prepage.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGES     4096
#define PAGE_SIZE 4096
#define VCPUS     2

static const char *url;
static char session_id[64];
static pp_session_config config;     /* the session's config, known to every thread */
static unsigned char present[PAGES]; /* a page is "fetched" when a window covers it */
static pthread_mutex_t present_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct vcpu {
    uint32_t id;
    unsigned long faults, fallbacks, errors, fetched;
} vcpu;

static pp_client *new_client(void) {
    pp_options opts;
    pp_options_init(&opts);
    opts.base_url = url;
    opts.token = getenv("PREPAGE_TOKEN");
    opts.fault_deadline_ms = 5; /* the default, spelled out: the longest a fault may stall */
    const char *deadline = getenv("PREPAGE_FAULT_DEADLINE_MS");
    if (deadline != NULL && atol(deadline) > 0) opts.fault_deadline_ms = atol(deadline);
    opts.breaker_base_ms = 50; /* then 50 ms of local decisions, doubling to 1 s while it stays away */
    pp_client *c = pp_client_new(&opts);
    if (c != NULL && pp_client_err(c) != PP_OK) {
        fprintf(stderr, "agent: %s\n", pp_client_errstr(c));
        pp_client_free(c);
        return NULL;
    }
    return c;
}

/* Installs [start, start+count) as fetched; returns how many pages were new. */
static unsigned long fetch(uint64_t start, uint64_t count) {
    unsigned long n = 0;
    pthread_mutex_lock(&present_lock);
    for (uint64_t p = start; p < start + count && p < PAGES; p++) {
        n += !present[p];
        present[p] = 1;
    }
    pthread_mutex_unlock(&present_lock);
    return n;
}

static int is_present(uint64_t page) {
    pthread_mutex_lock(&present_lock);
    int yes = present[page];
    pthread_mutex_unlock(&present_lock);
    return yes;
}

/* One vCPU's fault handler: scans its half of memory. */
static void *run_vcpu(void *arg) {
    vcpu *v = arg;
    pp_client *c = new_client();
    if (c == NULL) return NULL;
    /* No request: lets this client re-create the session after a server restart. */
    if (pp_session_register(c, session_id, &config) != 0)
        fprintf(stderr, "agent: vcpu %u: register: %s\n", v->id, pp_client_errstr(c));
    uint64_t from = v->id * (PAGES / VCPUS), end = from + PAGES / VCPUS;
    unsigned seed = 1 + v->id;
    pp_decision d;
    pp_decision_init(&d);
    for (uint64_t page = from; page < end; page++) {
        if (rand_r(&seed) % 50 == 0) page += (uint64_t)(rand_r(&seed) % 64); /* a jump */
        if (page >= end) break;
        if (is_present(page)) continue;
        v->faults++;
        if (pp_fault_addr(c, session_id, page * PAGE_SIZE + 17, v->id, &d) != 0) {
            /* The oracle answered no: say why, and fetch the faulting page anyway. */
            if (v->errors++ < 3)
                fprintf(stderr, "agent: vcpu %u: fault at page %llu: %s (HTTP %d)\n", v->id,
                        (unsigned long long)page, pp_client_errstr(c), pp_client_http_status(c));
            v->fetched += fetch(page, 1);
            continue;
        }
        if (d.outcome == PP_FALLBACK && v->fallbacks++ == 0)
            fprintf(stderr, "agent: vcpu %u: oracle away (%s): demand paging\n", v->id, pp_client_errstr(c));
        if (v->faults <= 3)
            printf("vcpu %u fault at page %llu: fetch pages [%llu, %llu) = bytes [0x%llx, 0x%llx) (%s)\n",
                   v->id, (unsigned long long)page, (unsigned long long)d.start,
                   (unsigned long long)(d.start + d.count), (unsigned long long)d.addr,
                   (unsigned long long)(d.addr + d.bytes), pp_outcome_name(d.outcome));
        v->fetched += fetch(d.start, d.count);
    }
    pp_client_free(c);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL   (for example http://127.0.0.1:7070)\n", argv[0]);
        return 2;
    }
    url = argv[1];
    if (pp_global_init() != 0) {
        fprintf(stderr,
                "agent: cannot initialise libprepage %s (libcurl, or a library older than "
                "the prepage.h this agent was built with)\n",
                pp_version());
        return 1;
    }
    snprintf(session_id, sizeof session_id, "agent-%ld", (long)getpid());
    pp_session_config_init(&config);
    config.memory_pages = PAGES;
    config.page_size = PAGE_SIZE;

    /* The session, created once. When the oracle is away now, the migration goes on
     * on demand paging, and the vCPUs' clients create it when the oracle is back. */
    pp_client *c = new_client();
    if (c == NULL) return 1;
    int created = pp_session_create(c, session_id, &config) == 0;
    if (!created) {
        fprintf(stderr, "agent: create %s: %s error: %s (HTTP %d)\n", session_id,
                pp_err_name(pp_client_err(c)), pp_client_errstr(c), pp_client_http_status(c));
        if (pp_client_err(c) != PP_ERR_IO && pp_client_err(c) != PP_ERR_TIMEOUT) {
            pp_client_free(c);
            return 1; /* refused by a live oracle: a configuration to fix */
        }
    }

    pthread_t threads[VCPUS];
    vcpu vcpus[VCPUS];
    memset(vcpus, 0, sizeof vcpus);
    for (uint32_t i = 0; i < VCPUS; i++) {
        vcpus[i].id = i;
        pthread_create(&threads[i], NULL, run_vcpu, &vcpus[i]);
    }
    unsigned long faults = 0, fallbacks = 0, errors = 0, fetched = 0;
    for (uint32_t i = 0; i < VCPUS; i++) {
        pthread_join(threads[i], NULL);
        faults += vcpus[i].faults;
        fallbacks += vcpus[i].fallbacks;
        errors += vcpus[i].errors;
        fetched += vcpus[i].fetched;
    }
    printf("%lu faults for %d pages (%lu fetched); %lu decided by the oracle, %lu fallbacks, %lu errors\n",
           faults, PAGES, fetched, faults - fallbacks - errors, fallbacks, errors);

    int rc = errors == 0 ? 0 : 1;
    if (pp_session_delete(c, session_id) == 0)
        printf("session %s deleted\n", session_id);
    else if (created)
        fprintf(stderr, "agent: delete: %s\n", pp_client_errstr(c));
    pp_client_free(c);
    pp_global_cleanup();
    return rc;
}
