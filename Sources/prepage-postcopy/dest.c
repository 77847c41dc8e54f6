/* dest.c: the destination: userfaultfd, the fault handler, the pusher. */
#define _GNU_SOURCE
#include "dest.h"
#include "clock.h"
#include "source.h"
#include "pattern.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TRACKED_STREAMS 4096

typedef struct dest {
    const pc_dest_config *cfg;
    pc_oracle *oracle;
    unsigned char *base;
    uint64_t pages;
    size_t ps;
    int uffd;
    int stop_fd;
    int src_fd;
    uint64_t *present; /* installed (by anyone) */
    uint64_t *fetched; /* transferred for a fault */
    unsigned char *staging;
    size_t staging_pages;
    pc_request *reqs;
    size_t reqs_cap;
    pc_samples resp, oracle_rtt, resp_asked;
    uint32_t streams[MAX_TRACKED_STREAMS];
    uint64_t nstreams;
    uint64_t faults, faults_present, oracle_errors, oracle_fallbacks, pages_fetched;
    char error[256];
    int failed;
    /* pusher */
    int push_fd;
    int push_stop;
    uint64_t pages_pushed;
} dest;

static int open_uffd(void) {
    return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
}

int pc_dest_probe(void) {
    int fd = open_uffd();
    if (fd < 0) return PC_DEST_NO_UFFD;
    close(fd);
    return PC_DEST_OK;
}

static void fail(dest *d, const char *what) {
    if (!d->failed) snprintf(d->error, sizeof d->error, "%s: %s", what, strerror(errno));
    d->failed = 1;
}

/* Copies count pages from src to the region at page, skipping pages that are
 * already there (EEXIST: installed by the pusher or an earlier window). */
static int install(dest *d, uint64_t page, uint64_t count, const unsigned char *src, int wake) {
    uint64_t done = 0;
    while (done < count) {
        struct uffdio_copy c = {
            .dst = (uint64_t)(uintptr_t)(d->base + (page + done) * d->ps),
            .src = (uint64_t)(uintptr_t)(src + done * d->ps),
            .len = (count - done) * d->ps,
            .mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE,
        };
        if (ioctl(d->uffd, UFFDIO_COPY, &c) == 0) {
            done = count;
            break;
        }
        if (c.copy > 0) done += (uint64_t)c.copy / d->ps;
        if (errno == EEXIST)
            done++; /* that page is there already */
        else if (errno != EAGAIN)
            return -1;
    }
    for (uint64_t p = page; p < page + count; p++) pc_bit_set(d->present, p);
    return 0;
}

static void wake(dest *d, uint64_t page, uint64_t count) {
    struct uffdio_range r = {(uint64_t)(uintptr_t)(d->base + page * d->ps), count * d->ps};
    ioctl(d->uffd, UFFDIO_WAKE, &r);
}

static int ensure_staging(dest *d, uint64_t pages) {
    if (pages <= d->staging_pages) return 0;
    unsigned char *s = realloc(d->staging, pages * d->ps);
    if (s == NULL) return -1;
    d->staging = s;
    d->staging_pages = pages;
    return 0;
}

/* Appends the requests for the missing pages of [lo, hi), skipping `skip`. */
static size_t plan_runs(dest *d, uint64_t lo, uint64_t hi, uint64_t skip, size_t n) {
    uint64_t p = lo;
    while (p < hi) {
        if (p == skip || pc_bit_test(d->present, p)) {
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < hi && q != skip && !pc_bit_test(d->present, q) && q - p < PC_MAX_REQUEST_PAGES) q++;
        if (n == d->reqs_cap) {
            size_t cap = d->reqs_cap ? d->reqs_cap * 2 : 64;
            pc_request *r = realloc(d->reqs, cap * sizeof *r);
            if (r == NULL) return (size_t)-1;
            d->reqs = r;
            d->reqs_cap = cap;
        }
        d->reqs[n++] = (pc_request){p, (uint32_t)(q - p), PC_REQ_FAULT};
        p = q;
    }
    return n;
}

/* Receives the replies of reqs[first..n) in order and installs each. */
static int receive_runs(dest *d, size_t first, size_t n) {
    for (size_t i = first; i < n; i++) {
        pc_request *r = &d->reqs[i];
        if (ensure_staging(d, r->count) != 0 || pc_source_recv(d->src_fd, d->staging, r->count, d->ps) != 0)
            return -1;
        if (d->cfg->inject_corruption && d->pages_fetched == 0) d->staging[0] ^= 0x01;
        if (install(d, r->start, r->count, d->staging, 0) != 0) return -1;
        for (uint64_t p = r->start; p < r->start + r->count; p++) pc_bit_set(d->fetched, p);
        d->pages_fetched += r->count;
    }
    return 0;
}

static void note_stream(dest *d, uint32_t tid) {
    for (uint64_t i = 0; i < d->nstreams; i++)
        if (d->streams[i] == tid) return;
    if (d->nstreams < MAX_TRACKED_STREAMS) d->streams[d->nstreams++] = tid;
}

/* The window of a decision, clipped to the region and holding the fault. An
 * oracle error falls back to the faulting page alone (the run is then failed
 * at the end, but the workload is not left hanging); a fallback decision of
 * libprepage (the oracle away) is that window too, and only counted. */
static void window_of(dest *d, int rc, const pc_window *decided, uint64_t page, uint64_t *lo, uint64_t *hi) {
    pc_window win = *decided;
    if (rc != 0) {
        if (d->oracle_errors++ < 3)
            fprintf(stderr, "prepage-postcopy: oracle: %s\n", pc_oracle_error(d->oracle));
        win = (pc_window){page, 1, 1};
    } else if (win.fallback) {
        d->oracle_fallbacks++;
    }
    *lo = win.start < d->pages ? win.start : d->pages;
    *hi = win.start + win.count < d->pages ? win.start + win.count : d->pages;
    if (page < *lo) *lo = page; /* the window always holds the fault */
    if (page >= *hi) *hi = page + 1;
}

/* Asks the oracle and waits for its decision. */
static void ask(dest *d, uint64_t page, uint32_t stream, uint64_t *lo, uint64_t *hi) {
    pc_window win = {page, 1, 0};
    uint64_t t0 = pc_now_ns();
    int rc = pc_oracle_ask(d->oracle, page, stream, &win);
    pc_samples_add(&d->oracle_rtt, pc_now_ns() - t0);
    window_of(d, rc, &win, page, lo, hi);
}

/* Receives the faulting page's reply (requested first), installs it and wakes the thread. */
static int take_first(dest *d, uint64_t page) {
    if (ensure_staging(d, 1) != 0 || pc_source_recv(d->src_fd, d->staging, 1, d->ps) != 0 ||
        install(d, page, 1, d->staging, 1) != 0)
        return -1;
    pc_bit_set(d->fetched, page);
    d->pages_fetched++;
    return 0;
}

/*
 * Overlapped: the fault goes to the oracle asynchronously (libprepage's
 * pp_fault_submit_page) and the faulting page to the source at once; then
 * whichever comes first is handled first. A decision that comes before the
 * page sends the rest of its window behind the page's request; a page that
 * comes first wakes the thread at once, whatever the oracle is doing. The
 * oracle's deadline bounds the wait for the decision.
 */
static int handle_overlapped(dest *d, uint64_t page, uint32_t stream, uint64_t *lo, uint64_t *hi,
                             uint64_t *t_wake) {
    uint64_t t0 = pc_now_ns();
    int submitted = pc_oracle_submit(d->oracle, page, stream) == 0;
    pc_request first = {page, 1, PC_REQ_FAULT};
    if (pc_source_send(d->src_fd, &first, 1) != 0) return -1;
    int decided = 0, have_page = 0;
    size_t n = 0;
    while (!decided || !have_page) {
        if (!decided) {
            pc_window win = {page, 1, 0};
            int rc = submitted ? pc_oracle_collect(d->oracle, have_page ? -1 : 0, &win) : -1;
            if (rc != PC_ORACLE_PENDING) {
                decided = 1;
                pc_samples_add(&d->oracle_rtt, pc_now_ns() - t0);
                window_of(d, rc, &win, page, lo, hi);
                n = plan_runs(d, *lo, *hi, page, 0);
                if (n == (size_t)-1 || (n > 0 && pc_source_send(d->src_fd, d->reqs, n) != 0)) return -1;
                continue;
            }
        }
        if (!have_page) {
            if (!decided) {
                /* Wait for whichever comes first: the page, or the oracle's answer. */
                int ofd;
                long ms;
                pc_oracle_pollinfo(d->oracle, &ofd, &ms);
                struct pollfd p[2] = {{d->src_fd, POLLIN, 0}, {ofd, POLLIN, 0}};
                int np = ofd >= 0 ? 2 : 1;
                if (poll(p, (nfds_t)np, ofd >= 0 ? (int)ms : 0) < 0 && errno != EINTR) return -1;
                if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP))) continue;
            }
            if (take_first(d, page) != 0) return -1;
            have_page = 1;
            *t_wake = pc_now_ns();
        }
    }
    return receive_runs(d, 0, n);
}

static int handle_fault(dest *d, uint64_t page, uint32_t tid, uint64_t t_read) {
    d->faults++;
    note_stream(d, tid);
    if (pc_bit_test(d->present, page)) {
        wake(d, page, 1);
        d->faults_present++;
        pc_samples_add(&d->resp, pc_now_ns() - t_read);
        return 0;
    }
    uint32_t stream = d->cfg->no_streams ? 0 : tid;
    if (!d->cfg->no_streams && d->cfg->stream_zone_pages > 0) {
        /* One case per thread and zone: a thread scanning several arrays at
         * once (STREAM) runs one sequential case in each. */
        uint64_t key = ((uint64_t)tid << 32) ^ (page / d->cfg->stream_zone_pages);
        stream = (uint32_t)(pc_mix64(key) >> 32);
    }
    uint64_t lo, hi, t_wake = 0;
    uint64_t oracle_before = d->oracle_rtt.n;
    if (!d->cfg->overlap_oracle) {
        ask(d, page, stream, &lo, &hi);
        size_t n = plan_runs(d, lo, hi, UINT64_MAX, 0);
        if (n == (size_t)-1 || pc_source_send(d->src_fd, d->reqs, n) != 0 || receive_runs(d, 0, n) != 0)
            return -1;
        wake(d, lo, hi - lo);
        t_wake = pc_now_ns();
    } else {
        if (handle_overlapped(d, page, stream, &lo, &hi, &t_wake) != 0) return -1;
        wake(d, lo, hi - lo);
    }
    pc_samples_add(&d->resp, t_wake - t_read);
    if (d->oracle_rtt.n > oracle_before) pc_samples_add(&d->resp_asked, t_wake - t_read);
    return 0;
}

/* Fault events read but not yet handled, each with the time it was read. */
#define PENDING_MAX 1024

typedef struct pending {
    struct uffd_msg msg[PENDING_MAX];
    uint64_t t_read[PENDING_MAX];
    size_t head, tail;
} pending;

/* Reads what the kernel has queued (without blocking) and stamps it now: the
 * response time of a fault starts when it is read, so read as soon as the
 * handler is free, between two faults, not once per batch. */
static int read_events(dest *d, pending *q) {
    if (q->head == q->tail) q->head = q->tail = 0;
    size_t room = PENDING_MAX - q->tail;
    if (room == 0) return 0;
    ssize_t n = read(d->uffd, &q->msg[q->tail], room * sizeof q->msg[0]);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    uint64_t now = pc_now_ns();
    for (size_t i = 0; i < (size_t)n / sizeof q->msg[0]; i++) q->t_read[q->tail++] = now;
    return 0;
}

static void *handler_main(void *arg) {
    dest *d = arg;
    pending *q = calloc(1, sizeof *q);
    if (q == NULL) {
        fail(d, "allocating the event queue");
        return NULL;
    }
    struct pollfd fds[2] = {{d->uffd, POLLIN, 0}, {d->stop_fd, POLLIN, 0}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            fail(d, "poll");
            break;
        }
        if (fds[1].revents & POLLIN) break;
        if (read_events(d, q) != 0) {
            fail(d, "read userfaultfd");
            break;
        }
        while (q->head < q->tail) {
            struct uffd_msg *m = &q->msg[q->head];
            uint64_t t_read = q->t_read[q->head];
            q->head++;
            if (m->event != UFFD_EVENT_PAGEFAULT) continue;
            uint64_t page = (m->arg.pagefault.address - (uint64_t)(uintptr_t)d->base) / d->ps;
            if (handle_fault(d, page, m->arg.pagefault.feat.ptid, t_read) != 0) {
                /* The faulting thread cannot be served: nothing can finish the run. */
                fail(d, "fetching from the source");
                fprintf(stderr, "prepage-postcopy: %s\n", d->error);
                _exit(1);
            }
            if (read_events(d, q) != 0) {
                fail(d, "read userfaultfd");
                break;
            }
        }
        if (d->failed) break;
    }
    free(q);
    return NULL;
}

static void *pusher_main(void *arg) {
    dest *d = arg;
    const pc_dest_config *cfg = d->cfg;
    uint32_t chunk = cfg->push_chunk ? cfg->push_chunk : 16;
    unsigned char *buf = malloc((size_t)chunk * d->ps);
    if (buf == NULL) return NULL;
    double ns_per_byte = 8.0 / (cfg->link_gbit * cfg->push_share);
    uint64_t next_send = pc_now_ns();
    uint64_t cursor = 0;
    while (!__atomic_load_n(&d->push_stop, __ATOMIC_ACQUIRE)) {
        while (cursor < d->pages && pc_bit_test(d->present, cursor)) cursor++;
        if (cursor >= d->pages) break;
        uint64_t end = cursor;
        while (end < d->pages && end - cursor < chunk && !pc_bit_test(d->present, end)) end++;
        pc_request req = {cursor, (uint32_t)(end - cursor), PC_REQ_PUSH};
        pc_wait_until(next_send, 0);
        next_send = pc_now_ns() + (uint64_t)(ns_per_byte * (double)(req.count * d->ps));
        if (pc_source_send(d->push_fd, &req, 1) != 0 ||
            pc_source_recv(d->push_fd, buf, req.count, d->ps) != 0 ||
            install(d, req.start, req.count, buf, 1) != 0)
            break;
        d->pages_pushed += req.count;
        cursor = end;
    }
    free(buf);
    return NULL;
}

int pc_dest_run(const pc_dest_config *cfg, pc_oracle *oracle, pc_workload *w, pc_run_stats *out, char *err,
                size_t errlen) {
    memset(out, 0, sizeof *out);
    dest *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return PC_DEST_ERROR;
    }
    d->cfg = cfg;
    d->oracle = oracle;
    d->pages = cfg->pages;
    d->ps = cfg->page_size;
    d->uffd = d->stop_fd = d->src_fd = d->push_fd = -1;
    int rc = PC_DEST_ERROR;
    size_t len = d->pages * d->ps;
    size_t words = (d->pages + 63) / 64;
    d->present = calloc(words, sizeof *d->present);
    d->fetched = calloc(words, sizeof *d->fetched);
    d->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (d->present == NULL || d->fetched == NULL || d->base == MAP_FAILED) {
        d->base = NULL;
        snprintf(err, errlen, "out of memory for a region of %llu pages", (unsigned long long)d->pages);
        goto done;
    }

    d->uffd = open_uffd();
    if (d->uffd < 0) {
        snprintf(err, errlen, "userfaultfd: %s", strerror(errno));
        rc = PC_DEST_NO_UFFD;
        goto done;
    }
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
    if (ioctl(d->uffd, UFFDIO_API, &api) != 0) {
        snprintf(err, errlen, "UFFDIO_API with UFFD_FEATURE_THREAD_ID: %s", strerror(errno));
        goto done;
    }
    struct uffdio_register reg = {
        .range = {(uint64_t)(uintptr_t)d->base, len},
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) != 0) {
        snprintf(err, errlen, "UFFDIO_REGISTER (missing): %s", strerror(errno));
        goto done;
    }
    if ((reg.ioctls & ((uint64_t)1 << _UFFDIO_COPY)) == 0) {
        snprintf(err, errlen, "UFFDIO_COPY is not available on this region");
        goto done;
    }
    d->stop_fd = eventfd(0, EFD_CLOEXEC);
    d->src_fd = pc_source_connect(cfg->source_host, cfg->source_port);
    if (d->stop_fd < 0 || d->src_fd < 0) {
        snprintf(err, errlen, "connecting to the source at %s:%d: %s", cfg->source_host, cfg->source_port,
                 strerror(errno));
        goto done;
    }
    if (cfg->push_share > 0) {
        d->push_fd = pc_source_connect(cfg->source_host, cfg->source_port);
        if (d->push_fd < 0) {
            snprintf(err, errlen, "pusher: connecting to the source: %s", strerror(errno));
            goto done;
        }
    }

    pthread_t handler, pusher;
    if (pthread_create(&handler, NULL, handler_main, d) != 0) {
        snprintf(err, errlen, "starting the fault handler");
        goto done;
    }
    int pushing = cfg->push_share > 0 && pthread_create(&pusher, NULL, pusher_main, d) == 0;
    int wl = pc_workload_run(w, d->base);
    __atomic_store_n(&d->push_stop, 1, __ATOMIC_RELEASE);
    if (pushing) pthread_join(pusher, NULL);
    uint64_t one = 1;
    if (write(d->stop_fd, &one, sizeof one) != sizeof one) fail(d, "eventfd");
    pthread_join(handler, NULL);
    if (wl != 0 || d->failed) {
        snprintf(err, errlen, "%s", d->failed ? d->error : "the workload could not start its threads");
        goto done;
    }

    /* Statistics. */
    out->faults = d->faults;
    out->faults_present = d->faults_present;
    out->oracle_errors = d->oracle_errors;
    out->oracle_fallbacks = d->oracle_fallbacks;
    out->pages_fetched = d->pages_fetched;
    out->pages_pushed = d->pages_pushed;
    out->streams = d->nstreams;
    out->wall_s = w->wall_s;
    out->thread_stall_ms = w->thread_stall_ms;
    out->thread_stalls = w->thread_stalls;
    uint64_t lost = 0;
    for (uint64_t p = 0; p < d->pages; p++) {
        int touched = pc_bit_test(w->touched, p);
        out->pages_touched += (uint64_t)touched;
        if (pc_bit_test(d->fetched, p) && !touched) out->pages_wasted++;
        if (touched && !pc_bit_test(d->present, p)) lost++;
    }
    pc_summary rs = pc_samples_summary(&d->resp), os = pc_samples_summary(&d->oracle_rtt);
    pc_summary ra = pc_samples_summary(&d->resp_asked);
    out->resp_p50_us = rs.p50_us;
    out->resp_p99_us = rs.p99_us;
    out->resp_mean_us = rs.mean_us;
    out->stall_ms = rs.sum_us / 1000.0;
    out->oracle_p50_us = os.p50_us;
    out->oracle_p99_us = os.p99_us;
    out->oracle_mean_us = os.mean_us;
    out->oracle_share = ra.sum_us > 0 ? os.sum_us / ra.sum_us : 0;

    /* Verification: every touched page must be there and hold the right bytes. */
    out->pages_bad = lost + pc_workload_verify(w, d->base, cfg->seed);
    if (lost > 0)
        fprintf(stderr, "prepage-postcopy: verify: %llu touched pages were never installed\n",
                (unsigned long long)lost);
    if (out->pages_bad > 0 || out->oracle_errors > 0) {
        snprintf(err, errlen, "%llu wrong or lost pages, %llu oracle errors",
                 (unsigned long long)out->pages_bad, (unsigned long long)out->oracle_errors);
        rc = PC_DEST_VERIFY_FAILED;
    } else {
        rc = PC_DEST_OK;
    }
done:
    if (d->src_fd >= 0) close(d->src_fd);
    if (d->push_fd >= 0) close(d->push_fd);
    if (d->stop_fd >= 0) close(d->stop_fd);
    if (d->uffd >= 0) close(d->uffd);
    if (d->base) munmap(d->base, len);
    free(d->present);
    free(d->fetched);
    free(d->staging);
    free(d->reqs);
    pc_samples_free(&d->resp);
    pc_samples_free(&d->oracle_rtt);
    pc_samples_free(&d->resp_asked);
    free(d);
    return rc;
}
