/* source.h: the migration source: a memory image served over TCP through an
 * emulated link.
 *
 * Wire protocol (host byte order, loopback only): the client sends
 * pc_request records; for each, in order, the source answers a pc_reply
 * header followed by count pages. Requests may be pipelined.
 *
 * The link: every reply leaves no earlier than its request's arrival plus the
 * round trip, and the replies of all connections share one bandwidth, served
 * in arrival order (a FIFO link): a reply of B bytes occupies the link for
 * B * 8 / bandwidth seconds.
 */
#ifndef PC_SOURCE_H
#define PC_SOURCE_H

#include <stdint.h>
#include <stddef.h>

enum { PC_REQ_FAULT = 0, PC_REQ_PUSH = 1 };

typedef struct pc_request {
    uint64_t start; /* first page */
    uint32_t count; /* pages, 1 ... PC_MAX_REQUEST_PAGES */
    uint32_t kind;  /* PC_REQ_FAULT or PC_REQ_PUSH (for the counters only) */
} pc_request;

typedef struct pc_reply {
    uint32_t status; /* 0 ok; otherwise no pages follow and the source closes */
    uint32_t count;
} pc_reply;

#define PC_MAX_REQUEST_PAGES 65536u

/* The emulated link. Defaults: 100 µs round trip, 1 Gbit/s, spin 60 µs. */
typedef struct pc_link_config {
    double rtt_us;
    double gbit_per_s;
    double spin_us; /* how much of each wait is spun instead of slept */
    int compensate; /* subtract the measured loopback overhead from the round trip (default 1) */
} pc_link_config;

void pc_link_config_init(pc_link_config *cfg);

typedef struct pc_source pc_source;

/* Fills an image of `pages` pages with the pattern of `seed`, listens on
 * 127.0.0.1:port (0 = any; read it back with pc_source_port) and serves it
 * from its own threads. NULL on error, with a message on stderr. */
pc_source *pc_source_start(uint64_t pages, size_t page_size, uint64_t seed, const pc_link_config *link,
                           int port);
int pc_source_port(const pc_source *s);
/* The loopback and thread hand-off overhead measured at start (µs), which
 * the emulated round trip leaves out when compensating. */
double pc_source_overhead_us(const pc_source *s);
/* Forgets the link's backlog and zeroes the counters (between runs). */
void pc_source_reset(pc_source *s);
void pc_source_stop(pc_source *s);

/* A client connection to a source (TCP_NODELAY). -1 on error (errno set). */
int pc_source_connect(const char *host, int port);
/* Sends requests (all at once, so they pipeline). 0 ok, -1 error. */
int pc_source_send(int fd, const pc_request *reqs, size_t n);
/* Reads one reply of `count` pages into dst. 0 ok, -1 error. */
int pc_source_recv(int fd, void *dst, uint32_t count, size_t page_size);

/* How close the emulation comes to its settings, measured through a real
 * connection on an idle link. */
typedef struct pc_link_measure {
    double rtt_set_us, gbit_set;
    double page_expected_us;                       /* rtt + one page's serialisation */
    double page_p50_us, page_p99_us, page_mean_us; /* 1-page requests, one at a time */
    double big_gbit;                               /* pipelined large ranges */
    double overhead_us;                            /* compensated loopback overhead, 0 if none */
    int samples;
} pc_link_measure;

int pc_link_measure_run(const char *host, int port, size_t page_size, const pc_link_config *link,
                        uint64_t pages, pc_link_measure *out);

#endif
