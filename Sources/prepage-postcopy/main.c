/* prepage-postcopy: a real post-copy run on userfaultfd.
 *
 * A source serves a memory image through an emulated link; a destination
 * runs a workload in an empty region on userfaultfd and resolves every fault
 * by asking prepaged (through libprepage) which pages to fetch. `compare`
 * runs the same workload under several policies. See usage() below.
 */
#define _GNU_SOURCE
#include "dest.h"
#include "oracle.h"
#include "report.h"
#include "source.h"
#include "workload.h"
#include "prepage.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit status: 0 every run verified, 1 a run failed (wrong or lost pages, an
 * error), 2 no userfaultfd, 3 the server rejected every policy, 64 usage. */
enum { EXIT_NO_UFFD = 2, EXIT_ALL_SKIPPED = 3, EXIT_USAGE = 64 };

#define MAX_POLICIES 32

typedef struct options {
    int compare;
    pc_workload_config wl;
    uint64_t pages;
    char policy[48];
    char policies[512];
    const char *server;
    const char *token;
    int64_t max_pages;
    int64_t local_window;
    pc_link_config link;
    double push_share;
    int no_streams;
    uint64_t stream_zone_mib;
    int overlap;
    int json;
    const char *csv;
    const char *svg;
    const char *trace;
    char source_host[64];
    int source_port; /* 0 = run the source in this process */
    int source_only;
    int port;
    int inject_corruption;
    int repeat;
    long fault_deadline_ms; /* 0 = libprepage's default */
    double session_rtt_us;  /* the link's figures for dp-plus sessions, < 0 = not known */
    double session_page_us;
} options;

static void usage(FILE *f) {
    fprintf(f, "usage: prepage-postcopy [run] [options]      one run under one policy\n"
               "       prepage-postcopy compare [options]    the same workload under several policies\n"
               "       prepage-postcopy --source-only [--port P] [--seed S] [--mem-mib M]\n"
               "\n"
               "workload:\n"
               "  --workload W        fsd | stream | random | phases (default fsd)\n"
               "  --threads T         threads running it (default 1)\n"
               "  --seed S            seeds the image and the workload (default 1)\n"
               "  --mem-mib M         region size in MiB (default 64); or --pages P\n"
               "  --cases C           cases (default: enough to need 40%% of the region; random 1/8)\n"
               "  --n N               fsd case size in pages (default 64)\n"
               "  --noise R           share of noisy cases, sized from [N/2, 3N/2] never N (default 0.2)\n"
               "  --phases LIST       phases' N (default 40,160,20)\n"
               "  --iters I           STREAM iterations (default 1)\n"
               "oracle:\n"
               "  --server URL        prepaged (default http://127.0.0.1:7070)\n"
               "  --token T           bearer token\n"
               "  --policy P          run: dp, dp-literal, dp-plus, none, forward[:W], readahead, ...\n"
               "                      (default dp); a dp-plus session gets the link's measured rtt_us\n"
               "                      and page_us\n"
               "  --policies LIST     compare: (default none,forward,readahead,dp,dp-plus); a policy the\n"
               "                      server rejects with 400 is skipped. local-none and\n"
               "                      local-forward[:W] are baselines computed in-process, with no\n"
               "                      oracle round trip (an agent without prepaged)\n"
               "  --max-pages M       the session's max_pages (default: the server's)\n"
               "  --no-streams        send every fault as stream 0 instead of the faulting thread\n"
               "  --stream-zone-mib Z a stream per faulting thread and Z MiB zone of the region\n"
               "                      (default 0: per thread only)\n"
               "  --overlap-oracle    ask the oracle asynchronously (pp_fault_submit_page) and fetch the\n"
               "                      faulting page meanwhile; in compare, run every policy both ways\n"
               "  --fault-deadline-ms D  a fault's deadline in libprepage (default its own, 5 ms): a\n"
               "                      decision not there by then is the faulting page alone (a fallback,\n"
               "                      counted in the report)\n"
               "  --local-window N    DEVELOPMENT ONLY: a fixed window of N pages computed in-process,\n"
               "                      no server\n"
               "link (emulated in the source):\n"
               "  --rtt-us U          round trip per request (default 100)\n"
               "  --gbps G            bandwidth in Gbit/s (default 1)\n"
               "  --spin-us S         spin the last S us of each wait instead of sleeping (default 60)\n"
               "  --no-compensate     do not subtract the loopback overhead measured at start from the\n"
               "                      emulated round trip\n"
               "  --push-share F      background pusher at F of the link, 0 < F <= 1 (default off)\n"
               "  --source HOST:PORT  use a source started with --source-only (same --seed and size)\n"
               "                      instead of one in-process\n"
               "output:\n"
               "  --json              everything as JSON on stdout\n"
               "  --csv FILE, --svg FILE   compare: table as CSV, bar chart as SVG\n"
               "  --repeat R          R rounds of every policy, interleaved; report each policy's run of\n"
               "                      median total stall and the spread\n"
               "  --trace FILE        also write the workload's page touches (\"page stream\" lines) for\n"
               "                      prepage-sim replay --trace FILE\n"
               "testing:\n"
               "  --inject-corruption corrupt one fetched page: the run must fail verification\n"
               "\n"
               "Needs userfaultfd: run as root or set vm.unprivileged_userfaultfd=1 (exit 2 otherwise).\n"
               "Exit status: 0 every run verified; 1 a run failed (wrong or lost pages, an error);\n"
               "2 no userfaultfd; 3 the server rejected every policy; 64 bad usage.\n");
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || s[0] == '-' || s[0] == '\0') return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || s[0] == '\0') return -1;
    *out = v;
    return 0;
}

static int parse_phases(const char *s, pc_workload_config *wl) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    wl->nphases = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (wl->nphases == PC_MAX_PHASES || parse_u64(tok, &v) != 0 || v == 0) return -1;
        wl->phases[wl->nphases++] = v;
    }
    return wl->nphases > 0 ? 0 : -1;
}

static int parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    pc_workload_config_init(&o->wl);
    pc_link_config_init(&o->link);
    snprintf(o->policy, sizeof o->policy, "dp");
    snprintf(o->policies, sizeof o->policies, "none,forward,readahead,dp,dp-plus");
    o->session_rtt_us = o->session_page_us = -1;
    o->server = "http://127.0.0.1:7070";
    o->max_pages = -1;
    o->port = 7071;
    o->repeat = 1;
    snprintf(o->source_host, sizeof o->source_host, "127.0.0.1");
    uint64_t mem_mib = 64;

    int first = 1;
    if (argc > 1 && strcmp(argv[1], "compare") == 0) {
        o->compare = 1;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "run") == 0) {
        first = 2;
    }
    static const struct option longs[] = {
        {"workload", required_argument, 0, 'w'},
        {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 's'},
        {"mem-mib", required_argument, 0, 'm'},
        {"pages", required_argument, 0, 'P'},
        {"cases", required_argument, 0, 'c'},
        {"n", required_argument, 0, 'n'},
        {"noise", required_argument, 0, 'r'},
        {"phases", required_argument, 0, 'F'},
        {"iters", required_argument, 0, 'i'},
        {"server", required_argument, 0, 'S'},
        {"token", required_argument, 0, 'T'},
        {"policy", required_argument, 0, 'p'},
        {"policies", required_argument, 0, 'L'},
        {"max-pages", required_argument, 0, 'M'},
        {"no-streams", no_argument, 0, 'N'},
        {"overlap-oracle", no_argument, 0, 'O'},
        {"local-window", required_argument, 0, 'W'},
        {"rtt-us", required_argument, 0, 'R'},
        {"gbps", required_argument, 0, 'G'},
        {"spin-us", required_argument, 0, 'X'},
        {"no-compensate", no_argument, 0, 'Y'},
        {"inject-corruption", no_argument, 0, 'Z'},
        {"stream-zone-mib", required_argument, 0, 'z'},
        {"repeat", required_argument, 0, 'e'},
        {"push-share", required_argument, 0, 'H'},
        {"source", required_argument, 0, 'u'},
        {"source-only", no_argument, 0, 'o'},
        {"port", required_argument, 0, 'q'},
        {"json", no_argument, 0, 'j'},
        {"csv", required_argument, 0, 'C'},
        {"svg", required_argument, 0, 'V'},
        {"trace", required_argument, 0, 'a'},
        {"fault-deadline-ms", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    optind = first;
    int ch, index = 0;
    uint64_t u;
    while ((ch = getopt_long(argc, argv, "h", longs, &index)) != -1) {
        int bad = 0;
        switch (ch) {
            case 'w': bad = pc_workload_parse(optarg, &o->wl.kind); break;
            case 't':
                bad = parse_u64(optarg, &u) || u < 1 || u > 1024;
                o->wl.threads = (int)u;
                break;
            case 's': bad = parse_u64(optarg, &o->wl.seed); break;
            case 'm': bad = parse_u64(optarg, &mem_mib) || mem_mib < 1; break;
            case 'P': bad = parse_u64(optarg, &o->pages) || o->pages < 3; break;
            case 'c': bad = parse_u64(optarg, &o->wl.cases); break;
            case 'n': bad = parse_u64(optarg, &o->wl.n) || o->wl.n < 1; break;
            case 'r': bad = parse_double(optarg, &o->wl.noise) || o->wl.noise < 0 || o->wl.noise > 1; break;
            case 'F': bad = parse_phases(optarg, &o->wl); break;
            case 'i':
                bad = parse_u64(optarg, &u) || u < 1 || u > 1000;
                o->wl.iters = (int)u;
                break;
            case 'S': o->server = optarg; break;
            case 'T': o->token = optarg; break;
            case 'p': snprintf(o->policy, sizeof o->policy, "%s", optarg); break;
            case 'L': snprintf(o->policies, sizeof o->policies, "%s", optarg); break;
            case 'M':
                bad = parse_u64(optarg, &u) || u < 1;
                o->max_pages = (int64_t)u;
                break;
            case 'N': o->no_streams = 1; break;
            case 'z': bad = parse_u64(optarg, &o->stream_zone_mib); break;
            case 'O': o->overlap = 1; break;
            case 'W':
                bad = parse_u64(optarg, &u) || u < 1;
                o->local_window = (int64_t)u;
                break;
            case 'R': bad = parse_double(optarg, &o->link.rtt_us) || o->link.rtt_us < 0; break;
            case 'G': bad = parse_double(optarg, &o->link.gbit_per_s) || o->link.gbit_per_s <= 0; break;
            case 'X': bad = parse_double(optarg, &o->link.spin_us) || o->link.spin_us < 0; break;
            case 'Y': o->link.compensate = 0; break;
            case 'Z': o->inject_corruption = 1; break;
            case 'e':
                bad = parse_u64(optarg, &u) || u < 1 || u > 99;
                o->repeat = (int)u;
                break;
            case 'H':
                bad = parse_double(optarg, &o->push_share) || o->push_share < 0 || o->push_share > 1;
                break;
            case 'u': {
                const char *colon = strrchr(optarg, ':');
                bad = colon == NULL || (size_t)(colon - optarg) >= sizeof o->source_host ||
                      parse_u64(colon + 1, &u) || u < 1 || u > 65535;
                if (!bad) {
                    snprintf(o->source_host, sizeof o->source_host, "%.*s", (int)(colon - optarg), optarg);
                    o->source_port = (int)u;
                }
                break;
            }
            case 'o': o->source_only = 1; break;
            case 'q':
                bad = parse_u64(optarg, &u) || u > 65535;
                o->port = (int)u;
                break;
            case 'j': o->json = 1; break;
            case 'C': o->csv = optarg; break;
            case 'V': o->svg = optarg; break;
            case 'a': o->trace = optarg; break;
            case 'D':
                bad = parse_u64(optarg, &u) || u < 1 || u > 3600000;
                o->fault_deadline_ms = (long)u;
                break;
            case 'h': usage(stdout); exit(0);
            default: return -1;
        }
        if (bad) {
            fprintf(stderr, "prepage-postcopy: invalid value for --%s: %s\n", longs[index].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "prepage-postcopy: unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    if (o->pages == 0) o->pages = mem_mib * 1024 * 1024 / (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static int source_only(const options *o, size_t page_size) {
    pc_source *src = pc_source_start(o->pages, page_size, o->wl.seed, &o->link, o->port);
    if (src == NULL) return 1;
    printf("prepage-postcopy: source on 127.0.0.1:%d, %llu pages, seed %llu, link %g us / %g Gbit/s\n",
           pc_source_port(src), (unsigned long long)o->pages, (unsigned long long)o->wl.seed, o->link.rtt_us,
           o->link.gbit_per_s);
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    while (!stopping) pause();
    pc_source_stop(src);
    return 0;
}

/* One run under one policy and mode: opens the oracle, runs, fills r. */
static void run_one(const options *o, pc_source *src, const char *host, int port, size_t page_size,
                    pc_workload *w, const pc_policy *policy, int overlap, pc_result *r) {
    static int counter;
    memset(r, 0, sizeof *r);
    pc_policy_label(policy, r->policy, sizeof r->policy);
    if (o->local_window > 0 && strncmp(policy->name, "local-", 6) != 0)
        snprintf(r->policy, sizeof r->policy, "local:%lld", (long long)o->local_window);
    snprintf(r->label, sizeof r->label, "%s%s", r->policy, overlap ? "+overlap" : "");
    r->overlap = overlap;
    if (src) pc_source_reset(src);
    pc_workload_reset(w);

    char id[128];
    snprintf(id, sizeof id, "postcopy-%d-%d", (int)getpid(), ++counter);
    pc_oracle_config oc = {
        .server_url = o->server,
        .token = o->token,
        .session_id = id,
        .policy = *policy,
        .memory_pages = o->pages,
        .page_size = page_size,
        .max_pages = o->max_pages,
        .local_window = o->local_window,
        .fault_deadline_ms = o->fault_deadline_ms,
        .rtt_us = o->session_rtt_us,
        .page_us = o->session_page_us,
    };
    pc_oracle *oracle;
    int orc = pc_oracle_open(&oc, &oracle, r->note, sizeof r->note);
    if (orc == PC_ORACLE_REJECTED) {
        r->status = PC_RESULT_SKIPPED;
        fprintf(stderr, "prepage-postcopy: skipping policy %s: the server rejected it: %s\n", r->policy,
                r->note);
        return;
    }
    if (orc != PC_ORACLE_OK) {
        r->status = PC_RESULT_FAILED;
        fprintf(stderr, "prepage-postcopy: %s\n", r->note);
        return;
    }
    pc_dest_config dc = {
        .source_host = host,
        .source_port = port,
        .page_size = page_size,
        .pages = o->pages,
        .seed = o->wl.seed,
        .no_streams = o->no_streams,
        .overlap_oracle = overlap,
        .stream_zone_pages = o->stream_zone_mib * 1024 * 1024 / page_size,
        .push_share = o->push_share,
        .link_gbit = o->link.gbit_per_s,
        .push_chunk = 16,
        .inject_corruption = o->inject_corruption,
    };
    int rc = pc_dest_run(&dc, oracle, w, &r->st, r->note, sizeof r->note);
    pc_oracle_close(oracle, &r->oracle);
    if (rc == PC_DEST_NO_UFFD) {
        fprintf(stderr, "prepage-postcopy: %s: needs root or vm.unprivileged_userfaultfd=1\n", r->note);
        exit(EXIT_NO_UFFD);
    }
    r->ran = rc == PC_DEST_OK || rc == PC_DEST_VERIFY_FAILED;
    r->status = rc == PC_DEST_OK ? PC_RESULT_OK : PC_RESULT_FAILED;
    if (rc != PC_DEST_OK) fprintf(stderr, "prepage-postcopy: policy %s: run failed: %s\n", r->label, r->note);
}

static int cmp_stall(const void *a, const void *b) {
    double x = ((const pc_result *)a)->st.stall_ms, y = ((const pc_result *)b)->st.stall_ms;
    return (x > y) - (x < y);
}

static void advise_overlap(const pc_link_measure *m, const pc_result *r) {
    if (r->status != PC_RESULT_OK || r->overlap || m == NULL || r->st.oracle_mean_us <= 0) return;
    if (r->st.oracle_mean_us > 0.25 * m->page_p50_us)
        fprintf(stderr,
                "note: %s: the oracle's mean round trip (%.1f us) exceeds a quarter of a page "
                "fetch's round trip (%.1f us): compare with --overlap-oracle\n",
                r->label, r->st.oracle_mean_us, m->page_p50_us);
}

/* One oracle policy's result against none and the best forward window. */
static void compare_to_baselines(FILE *f, const char *name, const pc_result *dp, const pc_result *none,
                                 const pc_result *best_fwd) {
    if (dp && none && none->st.stall_ms > 0)
        fprintf(f,
                "%s vs %s: total stall %.3f ms vs %.3f ms: %.1f%% lower (target: >= 33%%); "
                "threads' view %.3f vs %.3f ms: %.1f%% lower\n",
                name, none->policy, dp->st.stall_ms, none->st.stall_ms,
                100.0 * (1.0 - dp->st.stall_ms / none->st.stall_ms), dp->st.thread_stall_ms,
                none->st.thread_stall_ms, 100.0 * (1.0 - dp->st.thread_stall_ms / none->st.thread_stall_ms));
    else if (dp)
        fprintf(f, "%s vs none: not measured (no none policy ran)\n", name);
    if (dp && best_fwd && best_fwd->st.stall_ms > 0)
        fprintf(f, "%s vs best forward in hindsight (%s%s): %.3f ms vs %.3f ms: %.2fx (target: <= 1.2x)\n",
                name, best_fwd->policy,
                best_fwd->policy[0] == 'l' ? ", in-process: no oracle round trip" : "", dp->st.stall_ms,
                best_fwd->st.stall_ms, dp->st.stall_ms / best_fwd->st.stall_ms);
    else if (dp)
        fprintf(f, "%s vs best forward in hindsight: not measured (no forward policy ran)\n", name);
}

static void summarise(FILE *f, const pc_result *rs, size_t n) {
    const pc_result *none = NULL, *dp = NULL, *dp_plus = NULL, *best_fwd = NULL;
    uint64_t fallbacks = 0;
    for (size_t i = 0; i < n; i++) {
        const pc_result *r = &rs[i];
        if (r->status != PC_RESULT_OK) continue;
        fallbacks += r->st.oracle_fallbacks;
        if (r->overlap) continue;
        const char *name = strncmp(r->policy, "local-", 6) == 0 ? r->policy + 6 : r->policy;
        if (strcmp(name, "none") == 0 && (none == NULL || none->policy[0] == 'l'))
            none = r; /* prefer the server's none to the in-process one */
        else if (strcmp(name, "dp") == 0)
            dp = r;
        else if (strcmp(name, "dp-plus") == 0)
            dp_plus = r;
        else if (strncmp(name, "forward", 7) == 0 &&
                 (best_fwd == NULL || r->st.stall_ms < best_fwd->st.stall_ms))
            best_fwd = r;
    }
    compare_to_baselines(f, "dp", dp, none, best_fwd);
    compare_to_baselines(f, "dp-plus", dp_plus, none, best_fwd);
    if (fallbacks > 0)
        fprintf(f,
                "note: %llu decisions were libprepage's fallbacks (the oracle missed its deadline): "
                "those runs partly measure demand paging\n",
                (unsigned long long)fallbacks);
    for (size_t i = 0; i < n; i++)
        if (rs[i].overlap && rs[i].status == PC_RESULT_OK) {
            fprintf(
                f, "overlapped runs: the thread is woken after the faulting page and then waits on the rest\n"
                   "of the window in flight without a new fault event: compare them by thr_stall.\n");
            break;
        }
}

int main(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
    if (o.source_only) return source_only(&o, page_size);

    if (pc_dest_probe() != PC_DEST_OK) {
        fprintf(stderr,
                "prepage-postcopy: userfaultfd is not available (%s): needs root or "
                "vm.unprivileged_userfaultfd=1\n",
                strerror(errno));
        return EXIT_NO_UFFD;
    }
    if (o.local_window > 0) {
        fprintf(stderr, "prepage-postcopy: DEVELOPMENT ORACLE: fixed window of %lld pages, no prepaged\n",
                (long long)o.local_window);
    }
    if (o.local_window <= 0 && pp_global_init() != 0) {
        fprintf(stderr, "prepage-postcopy: pp_global_init failed\n");
        return 1;
    }

    pc_policy policies[MAX_POLICIES];
    size_t npolicies = 0;
    char buf[sizeof o.policies];
    snprintf(buf, sizeof buf, "%s", o.compare ? o.policies : o.policy);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (npolicies == MAX_POLICIES || pc_policy_parse(tok, &policies[npolicies]) != 0) {
            fprintf(stderr, "prepage-postcopy: bad policy: %s\n", tok);
            return EXIT_USAGE;
        }
        npolicies++;
    }
    if (npolicies == 0) {
        fprintf(stderr, "prepage-postcopy: no policy given\n");
        return EXIT_USAGE;
    }

    pc_source *src = NULL;
    const char *host = o.source_host;
    int port = o.source_port;
    if (port == 0) {
        src = pc_source_start(o.pages, page_size, o.wl.seed, &o.link, 0);
        if (src == NULL) return 1;
        port = pc_source_port(src);
    }
    pc_link_measure link;
    const pc_link_measure *linkp = NULL;
    if (pc_link_measure_run(host, port, page_size, &o.link, o.pages, &link) == 0) {
        linkp = &link;
        link.overhead_us = src ? pc_source_overhead_us(src) : 0;
        if (src) pc_source_reset(src);
        pc_report_link(stderr, &link);
    } else {
        fprintf(stderr, "prepage-postcopy: measuring the link failed: %s\n", strerror(errno));
    }

    /* dp-plus sessions get the link's figures: one page's transfer time from the bandwidth
     * measured on large ranges, and the round trip as a 1-page fetch's p50 less that; the
     * emulated link's settings when measuring failed. */
    double bits = (double)(page_size + sizeof(pc_reply)) * 8.0;
    o.session_page_us = bits / (o.link.gbit_per_s * 1000.0);
    o.session_rtt_us = o.link.rtt_us;
    int measured = 0;
    if (linkp && link.big_gbit > 0 && link.page_p50_us > 0) {
        double page_us = bits / (link.big_gbit * 1000.0);
        double rtt_us = link.page_p50_us - page_us;
        /* A measurement the machine disturbed (a round trip that vanishes, or a page that
         * takes most of a 1-page fetch) would mislead the planner: keep the settings then. */
        if (rtt_us >= page_us && rtt_us >= 0.25 * o.link.rtt_us) {
            o.session_page_us = page_us;
            o.session_rtt_us = rtt_us;
            measured = 1;
        } else {
            fprintf(stderr,
                    "prepage-postcopy: the link measured implausibly (1-page p50 %.1f us, page %.3f us):"
                    " dp-plus sessions get the link's settings\n",
                    link.page_p50_us, page_us);
        }
    }
    for (size_t i = 0; i < npolicies; i++)
        if (strcmp(policies[i].name, "dp-plus") == 0) {
            fprintf(stderr, "prepage-postcopy: dp-plus sessions get rtt_us %.3f, page_us %.3f (%s)\n",
                    o.session_rtt_us, o.session_page_us, measured ? "measured" : "the link's settings");
            break;
        }

    pc_workload w;
    if (pc_workload_prepare(&o.wl, o.pages, page_size, &w) != 0) return 1;

    if (o.trace) {
        FILE *tf = fopen(o.trace, "w");
        if (tf == NULL || pc_workload_trace(&w, tf) != 0 || fclose(tf) != 0) {
            fprintf(stderr, "prepage-postcopy: writing the trace %s: %s\n", o.trace, strerror(errno));
            return 1;
        }
    }

    size_t modes = o.compare && o.overlap ? 2 : 1;
    pc_result *results = calloc(npolicies * modes, sizeof *results);
    if (results == NULL) return 1;
    size_t n = 0;
    int failed = 0;
    /* --repeat R: R rounds, every policy once per round, so that a slow spell of
     * the shared machine falls on all of them alike; each policy keeps its run of
     * median total stall, with the spread of the others in its note. */
    size_t slots = npolicies * modes;
    int rounds = o.repeat;
    pc_result *all = calloc(slots * (size_t)rounds, sizeof *all);
    int *skipped = calloc(npolicies, sizeof *skipped);
    if (all == NULL || skipped == NULL) return 1;
    for (int k = 0; k < rounds; k++) {
        for (size_t i = 0; i < npolicies; i++) {
            if (skipped[i]) continue;
            for (size_t m = 0; m < modes; m++) {
                int overlap = modes == 2 ? (int)m : o.overlap;
                pc_result *r = &all[(i * modes + m) * (size_t)rounds + (size_t)k];
                if (o.compare) {
                    char label[64];
                    fprintf(stderr, "prepage-postcopy: round %d/%d: running %s%s ...\n", k + 1, rounds,
                            pc_policy_label(&policies[i], label, sizeof label),
                            overlap ? " (overlapped)" : "");
                }
                run_one(&o, src, host, port, page_size, &w, &policies[i], overlap, r);
                if (r->status == PC_RESULT_SKIPPED) {
                    skipped[i] = 1;
                    break;
                }
            }
        }
    }
    for (size_t i = 0; i < npolicies; i++) {
        for (size_t m = 0; m < modes; m++) {
            pc_result *runs = &all[(i * modes + m) * (size_t)rounds];
            pc_result *r = &results[n++];
            if (skipped[i]) {
                for (int k = 0; k < rounds; k++)
                    if (runs[k].status == PC_RESULT_SKIPPED) *r = runs[k];
                break;
            }
            int ok = 1;
            for (int k = 0; k < rounds; k++)
                if (runs[k].status != PC_RESULT_OK) {
                    *r = runs[k];
                    ok = 0;
                }
            if (ok) {
                qsort(runs, (size_t)rounds, sizeof *runs, cmp_stall);
                *r = runs[rounds / 2];
                if (rounds > 1)
                    snprintf(r->note, sizeof r->note, "median of %d rounds by total stall (%.3f ... %.3f ms)",
                             rounds, runs[0].st.stall_ms, runs[rounds - 1].st.stall_ms);
            }
            failed |= r->status == PC_RESULT_FAILED;
        }
    }
    free(all);
    free(skipped);

    pc_report_context ctx = {&w, linkp, o.pages, page_size, o.no_streams, o.push_share};
    if (o.json) {
        pc_report_json(stdout, &ctx, results, n, o.compare);
    } else if (o.compare) {
        pc_report_table(stdout, results, n);
        summarise(stdout, results, n);
    } else {
        pc_report_text(stdout, &ctx, &results[0]);
    }
    for (size_t i = 0; i < n; i++) advise_overlap(linkp, &results[i]);
    if (o.compare && o.json) summarise(stderr, results, n);
    if (o.csv && pc_report_csv(o.csv, &ctx, results, n) != 0) {
        fprintf(stderr, "prepage-postcopy: writing %s: %s\n", o.csv, strerror(errno));
        failed = 1;
    }
    if (o.svg && pc_report_svg(o.svg, &ctx, results, n) != 0) {
        fprintf(stderr, "prepage-postcopy: writing %s: %s\n", o.svg, strerror(errno));
        failed = 1;
    }
    int all_skipped = 1;
    for (size_t i = 0; i < n; i++) all_skipped &= results[i].status == PC_RESULT_SKIPPED;
    free(results);
    pc_workload_free(&w);
    pc_source_stop(src);
    return failed ? 1 : all_skipped ? EXIT_ALL_SKIPPED : 0;
}
