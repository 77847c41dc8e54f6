/* kill-latency: how long a process killed with SIGKILL keeps its sockets open.
 *
 * A fault in flight to a prepaged instance when the instance is SIGKILLed (or sent
 * to it while it dies) waits until the kernel has ended the process and closed its
 * connections: only then does the balancer see the failure and retry on a survivor.
 * This measures that time on the machine, with no prepaged involved: a child with
 * THREADS idle threads (blocked in epoll_wait, as an event loop's are) and 20 MiB
 * touched accepts one connection; the parent kills it and times the kill until the
 * connection reads end-of-file. BUSY busy-looping processes stand for a loaded host.
 *
 * Usage: kill-latency THREADS ROUNDS [BUSY]      (make bench-kill: 14 threads, 0 and 6 busy)
 * Prints: the median, p90 and max over ROUNDS, in ms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { TOUCHED = 20 << 20, MAX_ROUNDS = 1000, MAX_BUSY = 64 };

static void *idle_loop(void *arg) {
    int ep = epoll_create1(0);
    struct epoll_event ev;
    for (;;) epoll_wait(ep, &ev, 1, -1);
    return arg;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One round: the time from kill(SIGKILL) to end-of-file on a connection to the victim, in ms. */
static double one_round(int threads) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 16) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
        perror("kill-latency: listen");
        exit(1);
    }
    pid_t victim = fork();
    if (victim == 0) {
        for (int i = 0; i < threads; i++) {
            pthread_t t;
            pthread_create(&t, NULL, idle_loop, NULL);
        }
        char *touched = malloc(TOUCHED);
        if (touched) memset(touched, 1, TOUCHED);
        int conn = accept(listener, NULL, NULL);
        (void)conn;
        for (;;) pause();
    }
    close(listener);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("kill-latency: connect");
        exit(1);
    }
    usleep(100000); /* the victim's threads started and its memory touched */
    double t0 = now_ms();
    kill(victim, SIGKILL);
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    poll(&pfd, 1, 5000);
    double t1 = now_ms();
    waitpid(victim, NULL, 0);
    close(s);
    return t1 - t0;
}

#define USAGE "usage: kill-latency THREADS ROUNDS [BUSY]"

/* The argument `name`, a whole decimal number in [lo, hi]; else says what was wrong and exits 2. */
static long number(const char *text, const char *name, long lo, long hi) {
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "kill-latency: %s '%s' is not a whole number from %ld to %ld\n" USAGE "\n", name,
                text, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, USAGE "  (THREADS 0-256, ROUNDS 1-%d, BUSY 0-%d, default 0)\n", MAX_ROUNDS, MAX_BUSY);
        return 2;
    }
    long threads = number(argv[1], "THREADS", 0, 256);
    long rounds = number(argv[2], "ROUNDS", 1, MAX_ROUNDS);
    long busy = argc > 3 ? number(argv[3], "BUSY", 0, MAX_BUSY) : 0;
    pid_t spinners[MAX_BUSY];
    for (int i = 0; i < busy; i++) {
        spinners[i] = fork();
        if (spinners[i] == 0)
            for (volatile unsigned long n = 0;; n++) {
            }
    }
    static double took[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) took[r] = one_round((int)threads);
    for (int i = 0; i < busy; i++) {
        kill(spinners[i], SIGKILL);
        waitpid(spinners[i], NULL, 0);
    }
    qsort(took, (size_t)rounds, sizeof took[0], by_value);
    printf("kill-latency: %d idle threads, %d busy processes, %d rounds: SIGKILL to the connection's end "
           "median %.2f ms, p90 %.2f ms, max %.2f ms\n",
           (int)threads, (int)busy, (int)rounds, took[rounds / 2], took[rounds * 9 / 10], took[rounds - 1]);
    return 0;
}
