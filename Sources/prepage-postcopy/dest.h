/* dest.h: the migration destination: an empty region on userfaultfd whose
 * faults are resolved by asking the oracle and fetching from the source. */
#ifndef PC_DEST_H
#define PC_DEST_H

#include "oracle.h"
#include "workload.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pc_dest_config {
    const char *source_host; /* 127.0.0.1 */
    int source_port;
    size_t page_size;
    uint64_t pages;             /* region size */
    uint64_t seed;              /* the source's pattern, for verification */
    int no_streams;             /* send every fault as stream 0 */
    uint64_t stream_zone_pages; /* > 0: a stream per (thread, zone of this many pages) */
    int overlap_oracle;         /* ask the oracle asynchronously while the faulting page is fetched */
    double push_share;          /* 0 = no background pusher; else a share of the link */
    double link_gbit;           /* the link's bandwidth, to pace the pusher */
    uint32_t push_chunk;        /* pages per pushed request, default 16 */
    int inject_corruption;      /* testing: flip a byte of the first fetched page */
} pc_dest_config;

typedef struct pc_run_stats {
    uint64_t faults;         /* fault events read from userfaultfd */
    uint64_t faults_present; /* of which the page was already there (in flight, pushed) */
    uint64_t oracle_errors;
    uint64_t oracle_fallbacks; /* decisions libprepage made alone: the oracle missed its deadline */
    uint64_t pages_fetched;    /* pages transferred for faults */
    uint64_t pages_pushed;     /* pages transferred by the background pusher */
    uint64_t pages_touched;    /* distinct pages the workload touched */
    uint64_t pages_wasted;     /* fetched for faults, never touched */
    uint64_t pages_bad;        /* wrong or lost pages found by verification */
    uint64_t streams;          /* distinct faulting threads seen */
    double resp_p50_us, resp_p99_us, resp_mean_us;
    double stall_ms; /* sum of the response times */
    double oracle_p50_us, oracle_p99_us, oracle_mean_us;
    double oracle_share;    /* oracle time / response time, over the faults that asked */
    double wall_s;          /* the workload's wall time */
    double thread_stall_ms; /* the stall seen by the workload's threads (workload.h) */
    uint64_t thread_stalls; /* touches that stalled */
} pc_run_stats;

enum { PC_DEST_OK = 0, PC_DEST_VERIFY_FAILED = 1, PC_DEST_NO_UFFD = 2, PC_DEST_ERROR = -1 };

/* Checks that userfaultfd can be opened here (PC_DEST_OK or PC_DEST_NO_UFFD). */
int pc_dest_probe(void);

/* One run: maps the region, runs the workload in it, resolves its faults,
 * verifies. Returns PC_DEST_OK, PC_DEST_VERIFY_FAILED (wrong or lost pages,
 * or oracle errors), PC_DEST_NO_UFFD or PC_DEST_ERROR; err says why. */
int pc_dest_run(const pc_dest_config *cfg, pc_oracle *oracle, pc_workload *w, pc_run_stats *out, char *err,
                size_t errlen);

#endif
