/* source.c: the migration source and its emulated link (see source.h). */
#define _GNU_SOURCE
#include "source.h"
#include "clock.h"
#include "pattern.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

void pc_link_config_init(pc_link_config *cfg) {
    cfg->rtt_us = 100.0;
    cfg->gbit_per_s = 1.0;
    cfg->spin_us = 60.0;
    cfg->compensate = 1;
}

struct pc_source {
    unsigned char *image;
    uint64_t pages;
    size_t page_size;
    pc_link_config link;
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_mutex_t link_mu;
    uint64_t link_free_ns; /* when the link finishes what it was given */
    uint64_t rtt_ns;       /* the round trip the link adds: rtt_us less the overhead */
    double overhead_us;
    int active; /* open connections (under link_mu) */
    pthread_cond_t idle;
};

/* One scheduled reply, handed from a connection's reader to its writer. */
typedef struct pc_scheduled {
    uint64_t start;
    uint32_t count;
    uint32_t status;
    uint64_t due_ns;
} pc_scheduled;

#define PC_QUEUE_LEN 1024

typedef struct pc_conn {
    pc_source *src;
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pc_scheduled queue[PC_QUEUE_LEN];
    unsigned head, tail; /* tail - head = queued */
    int closed;          /* the reader saw EOF or an error */
} pc_conn;

static int read_full(int fd, void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_iov(int fd, struct iovec *iov, int iovcnt) {
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Books the link for one reply arriving now: returns when it has crossed it. */
static uint64_t schedule(pc_source *s, uint64_t arrived_ns, uint64_t bytes) {
    uint64_t rtt_ns = s->rtt_ns;
    uint64_t wire_ns = (uint64_t)((double)bytes * 8.0 / s->link.gbit_per_s);
    pthread_mutex_lock(&s->link_mu);
    uint64_t begin = arrived_ns + rtt_ns;
    if (s->link_free_ns > begin) begin = s->link_free_ns;
    s->link_free_ns = begin + wire_ns;
    uint64_t due = s->link_free_ns;
    pthread_mutex_unlock(&s->link_mu);
    return due;
}

static void *conn_writer(void *arg) {
    pc_conn *c = arg;
    pc_source *s = c->src;
    uint64_t spin_ns = (uint64_t)(s->link.spin_us * 1000.0);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (c->head == c->tail && !c->closed) pthread_cond_wait(&c->cv, &c->mu);
        if (c->head == c->tail) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        pc_scheduled job = c->queue[c->head % PC_QUEUE_LEN];
        pthread_mutex_unlock(&c->mu);

        pc_wait_until(job.due_ns, spin_ns);
        pc_reply reply = {job.status, job.status == 0 ? job.count : 0};
        struct iovec iov[2] = {
            {&reply, sizeof reply},
            {s->image + job.start * s->page_size, (size_t)reply.count * s->page_size},
        };
        int failed = write_iov(c->fd, iov, reply.count ? 2 : 1) != 0 || job.status != 0;

        pthread_mutex_lock(&c->mu);
        c->head++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        if (failed) {
            shutdown(c->fd, SHUT_RDWR);
            break;
        }
    }
    return NULL;
}

static void *conn_main(void *arg) {
    pc_conn *c = arg;
    pc_source *s = c->src;
    pthread_t writer;
    int writing = pthread_create(&writer, NULL, conn_writer, c) == 0;
    while (writing) {
        pc_request req;
        if (read_full(c->fd, &req, sizeof req) != 0) break;
        uint64_t arrived = pc_now_ns();
        pc_scheduled job = {req.start, req.count, 0, 0};
        if (req.count == 0 || req.count > PC_MAX_REQUEST_PAGES || req.start >= s->pages ||
            req.count > s->pages - req.start)
            job.status = 1;
        job.due_ns = job.status ? arrived
                                : schedule(s, arrived, (uint64_t)req.count * s->page_size + sizeof(pc_reply));
        pthread_mutex_lock(&c->mu);
        while (c->tail - c->head == PC_QUEUE_LEN) pthread_cond_wait(&c->cv, &c->mu);
        c->queue[c->tail % PC_QUEUE_LEN] = job;
        c->tail++;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        if (job.status) break;
    }
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (writing) pthread_join(writer, NULL);
    close(c->fd);
    free(c);

    pthread_mutex_lock(&s->link_mu);
    s->active--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->link_mu);
    return NULL;
}

static void *acceptor_main(void *arg) {
    pc_source *s = arg;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break; /* shut down */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pc_conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->src = s;
        c->fd = fd;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->cv, NULL);
        pthread_mutex_lock(&s->link_mu);
        s->active++;
        pthread_mutex_unlock(&s->link_mu);
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, c) != 0) {
            close(fd);
            free(c);
            pthread_mutex_lock(&s->link_mu);
            s->active--;
            pthread_mutex_unlock(&s->link_mu);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b);

/* Measures what a 1-page request costs beyond its serialisation with no
 * emulated round trip: loopback, wake-ups, hand-offs. The median of 200. */
static void calibrate(pc_source *s) {
    enum { SAMPLES = 200 };
    s->rtt_ns = 0;
    int fd = pc_source_connect("127.0.0.1", s->port);
    if (fd < 0) return;
    double t[SAMPLES];
    unsigned char *page = malloc(s->page_size);
    int i = 0;
    for (; page != NULL && i < SAMPLES; i++) {
        pc_request req = {(uint64_t)i % s->pages, 1, PC_REQ_FAULT};
        uint64_t t0 = pc_now_ns();
        if (pc_source_send(fd, &req, 1) != 0 || pc_source_recv(fd, page, 1, s->page_size) != 0) break;
        t[i] = (double)(pc_now_ns() - t0) / 1000.0;
    }
    free(page);
    close(fd);
    if (i < SAMPLES) return;
    qsort(t, SAMPLES, sizeof t[0], cmp_double);
    double wire_us = (double)(s->page_size + sizeof(pc_reply)) * 8.0 / s->link.gbit_per_s / 1000.0;
    s->overhead_us = t[SAMPLES / 2] > wire_us ? t[SAMPLES / 2] - wire_us : 0;
    pthread_mutex_lock(&s->link_mu);
    s->link_free_ns = 0;
    pthread_mutex_unlock(&s->link_mu);
}

pc_source *pc_source_start(uint64_t pages, size_t page_size, uint64_t seed, const pc_link_config *link,
                           int port) {
    pc_source *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->pages = pages;
    s->page_size = page_size;
    s->link = *link;
    s->image = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->image == MAP_FAILED) {
        fprintf(stderr, "prepage-postcopy: source: mmap of %llu pages: %s\n", (unsigned long long)pages,
                strerror(errno));
        free(s);
        return NULL;
    }
    for (uint64_t p = 0; p < pages; p++) pc_pattern_fill(s->image + p * page_size, page_size, seed, p);
    pthread_mutex_init(&s->link_mu, NULL);
    pthread_cond_init(&s->idle, NULL);

    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(s->listen_fd, 64) != 0 || getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) != 0) {
        fprintf(stderr, "prepage-postcopy: source: listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        if (s->listen_fd >= 0) close(s->listen_fd);
        munmap(s->image, pages * page_size);
        free(s);
        return NULL;
    }
    s->port = ntohs(addr.sin_port);
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
        close(s->listen_fd);
        munmap(s->image, pages * page_size);
        free(s);
        return NULL;
    }
    if (link->compensate) calibrate(s);
    s->rtt_ns = (uint64_t)(link->rtt_us * 1000.0);
    uint64_t overhead_ns = (uint64_t)(s->overhead_us * 1000.0);
    s->rtt_ns = s->rtt_ns > overhead_ns ? s->rtt_ns - overhead_ns : 0;
    return s;
}

double pc_source_overhead_us(const pc_source *s) {
    return s->overhead_us;
}

int pc_source_port(const pc_source *s) {
    return s->port;
}

void pc_source_reset(pc_source *s) {
    pthread_mutex_lock(&s->link_mu);
    s->link_free_ns = 0;
    pthread_mutex_unlock(&s->link_mu);
}

void pc_source_stop(pc_source *s) {
    if (s == NULL) return;
    shutdown(s->listen_fd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->listen_fd);
    pthread_mutex_lock(&s->link_mu);
    while (s->active > 0) pthread_cond_wait(&s->idle, &s->link_mu);
    pthread_mutex_unlock(&s->link_mu);
    munmap(s->image, s->pages * s->page_size);
    free(s);
}

int pc_source_connect(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int pc_source_send(int fd, const pc_request *reqs, size_t n) {
    struct iovec iov = {(void *)reqs, n * sizeof *reqs};
    return write_iov(fd, &iov, 1);
}

int pc_source_recv(int fd, void *dst, uint32_t count, size_t page_size) {
    pc_reply reply;
    if (read_full(fd, &reply, sizeof reply) != 0) return -1;
    if (reply.status != 0 || reply.count != count) {
        errno = EPROTO;
        return -1;
    }
    return read_full(fd, dst, (size_t)count * page_size);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int pc_link_measure_run(const char *host, int port, size_t page_size, const pc_link_config *link,
                        uint64_t pages, pc_link_measure *out) {
    enum { SAMPLES = 200, BIG_REQS = 8, BIG_TRIALS = 5 };
    uint32_t big = pages >= 256 ? 256 : (uint32_t)pages;
    memset(out, 0, sizeof *out);
    out->rtt_set_us = link->rtt_us;
    out->gbit_set = link->gbit_per_s;
    out->page_expected_us =
        link->rtt_us + (double)(page_size + sizeof(pc_reply)) * 8.0 / link->gbit_per_s / 1000.0;

    int fd = pc_source_connect(host, port);
    if (fd < 0) return -1;
    unsigned char *buf = malloc((size_t)big * page_size);
    double *t = malloc(SAMPLES * sizeof *t);
    int rc = -1;
    if (buf == NULL || t == NULL) goto done;
    double sum = 0;
    for (int i = 0; i < SAMPLES; i++) {
        pc_request req = {(uint64_t)i % pages, 1, PC_REQ_FAULT};
        uint64_t t0 = pc_now_ns();
        if (pc_source_send(fd, &req, 1) != 0 || pc_source_recv(fd, buf, 1, page_size) != 0) goto done;
        t[i] = (double)(pc_now_ns() - t0) / 1000.0;
        sum += t[i];
    }
    qsort(t, SAMPLES, sizeof *t, cmp_double);
    out->page_p50_us = t[SAMPLES / 2];
    out->page_p99_us = t[SAMPLES * 99 / 100];
    out->page_mean_us = sum / SAMPLES;
    out->samples = SAMPLES;

    /* The best of a few trials: the link is paced, so other work on the machine can
     * only slow a trial down (one slow trial once read 0.17 Gbit/s of a 1 Gbit/s link,
     * and a dp-plus session planned one-page windows from it). */
    pc_request reqs[BIG_REQS];
    for (int i = 0; i < BIG_REQS; i++) reqs[i] = (pc_request){0, big, PC_REQ_FAULT};
    out->big_gbit = 0;
    for (int trial = 0; trial < BIG_TRIALS; trial++) {
        uint64_t t0 = pc_now_ns();
        if (pc_source_send(fd, reqs, BIG_REQS) != 0) goto done;
        for (int i = 0; i < BIG_REQS; i++)
            if (pc_source_recv(fd, buf, big, page_size) != 0) goto done;
        double secs = (double)(pc_now_ns() - t0) / 1e9 - link->rtt_us / 1e6;
        double gbit = (double)BIG_REQS * big * (page_size + sizeof(pc_reply)) * 8.0 / secs / 1e9;
        if (gbit > out->big_gbit) out->big_gbit = gbit;
    }
    rc = 0;
done:
    free(buf);
    free(t);
    close(fd);
    return rc;
}
