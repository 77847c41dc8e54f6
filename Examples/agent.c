/*
 * agent.c — the smallest migration agent: create a session, ask the oracle
 * at every fault, delete the session.
 *
 *     cc agent.c $(pkg-config --cflags --libs prepage) -o agent
 *     ./agent http://127.0.0.1:7070
 *
 * The "guest" here is a scan over 4,096 pages by two vCPUs with a few random
 * jumps; a real agent calls pp_fault_addr() from its userfaultfd handler
 * with the faulting address and thread, then fetches [addr, addr+bytes).
 */
#include <prepage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGES 4096
#define PAGE_SIZE 4096

static int fail(pp_client *c, const char *what) {
    fprintf(stderr, "agent: %s: %s error: %s (HTTP %d)\n", what, pp_err_name(pp_client_err(c)),
            pp_client_errstr(c), pp_client_http_status(c));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL   (for example http://127.0.0.1:7070)\n", argv[0]);
        return 2;
    }
    if (pp_global_init() != 0) {
        fprintf(stderr, "agent: cannot initialise libcurl\n");
        return 1;
    }
    pp_options opts;
    pp_options_init(&opts);
    opts.base_url = argv[1];
    opts.token = getenv("PREPAGE_TOKEN");
    pp_client *c = pp_client_new(&opts);
    if (c == NULL) {
        fprintf(stderr, "agent: out of memory\n");
        return 1;
    }
    int rc = 1;
    char id[64];
    snprintf(id, sizeof id, "agent-%ld", (long)getpid());

    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.memory_pages = PAGES;
    cfg.page_size = PAGE_SIZE;
    if (pp_session_create(c, id, &cfg) != 0) {
        rc = fail(c, "create");
        goto out;
    }

    /* Two vCPUs scanning their halves of memory; a page is "fetched" when a
     * decision's window covers it, so only the first page of each window faults. */
    static unsigned char present[PAGES];
    unsigned long faults = 0, fetched = 0;
    uint64_t next[2] = {0, PAGES / 2};
    srand(1);
    while (next[0] < PAGES / 2 || next[1] < PAGES) {
        for (uint32_t vcpu = 0; vcpu < 2; vcpu++) {
            uint64_t end = vcpu == 0 ? PAGES / 2 : PAGES;
            if (next[vcpu] >= end) continue;
            if (rand() % 50 == 0) next[vcpu] += (uint64_t)(rand() % 64); /* a jump */
            if (next[vcpu] >= end) continue;
            uint64_t page = next[vcpu]++;
            if (present[page]) continue;
            pp_decision d;
            if (pp_fault_addr(c, id, page * PAGE_SIZE + 17, vcpu, &d) != 0) {
                rc = fail(c, "fault");
                goto out;
            }
            faults++;
            if (faults <= 5)
                printf("vcpu %u fault at page %llu: fetch pages [%llu, %llu) = bytes [0x%llx, 0x%llx) (%s)\n",
                       vcpu, (unsigned long long)page, (unsigned long long)d.start,
                       (unsigned long long)(d.start + d.count), (unsigned long long)d.addr,
                       (unsigned long long)(d.addr + d.bytes), pp_outcome_name(d.outcome));
            for (uint64_t p = d.start; p < d.start + d.count && p < PAGES; p++) {
                fetched += !present[p];
                present[p] = 1;
            }
        }
    }
    printf("%lu faults for %d pages (%lu fetched)\n", faults, PAGES, fetched);

    /* The same kind of faults in one request, for a replay or a batch agent. */
    uint64_t pages[4] = {10, 11, 12, 200};
    pp_decision many[4];
    if (pp_faults_page(c, id, pages, NULL, 4, many) != 0) {
        rc = fail(c, "faults");
        goto out;
    }
    printf("batch: %llu +%llu (%s)\n", (unsigned long long)many[3].start,
           (unsigned long long)many[3].count, pp_outcome_name(many[3].outcome));

    if (pp_session_delete(c, id) != 0) {
        rc = fail(c, "delete");
        goto out;
    }
    printf("session %s deleted\n", id);
    rc = 0;
out:
    pp_client_free(c);
    pp_global_cleanup();
    return rc;
}
