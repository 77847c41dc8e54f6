/*
 * bench_client.c — one client, one connection, N sequential faults.
 *
 *     bench_client URL [--faults N] [--seed S] [--mode pp|curl|both] [--session ID]
 *
 * --mode pp   (default) pp_fault_page() of libprepage: format, POST, scan.
 * --mode curl the same POST through a bare libcurl easy handle, answer
 *             discarded: what libcurl alone costs, for comparison.
 * --mode both N faults each way, alternating in blocks of 1,000 on two
 *             connections, so that a noisy machine weighs on both alike.
 *
 * Pages are random over 1 GiB of 4 KiB pages (seeded), one stream. Prints a
 * line per mode: faults, faults/s, p50/p90/p99 round trip in µs, and the
 * client's CPU time (user + system) per fault — the steadiest figure on a
 * shared machine. A benchmark, not a test: it asserts nothing about time.
 */
#define _POSIX_C_SOURCE 200809L

#include <prepage.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* CPU time of this process, user + system, in µs. */
static double cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t discard(char *p, size_t s, size_t n, void *u) {
    (void)p;
    (void)u;
    return s * n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [--faults N] [--seed S] [--mode pp|curl|both] [--session ID]\n",
                argv[0]);
        return 2;
    }
    const char *url = argv[1], *mode = "pp", *id = "bench";
    long n = 100000;
    long deadline_ms = 0; /* 0: libprepage's default fault deadline */
    unsigned long long seed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--faults") == 0)
            n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--mode") == 0)
            mode = argv[i + 1];
        else if (strcmp(argv[i], "--session") == 0)
            id = argv[i + 1];
        else if (strcmp(argv[i], "--deadline-ms") == 0)
            deadline_ms = atol(argv[i + 1]);
    }
    if (n <= 0) return 2;
    double *lat = malloc((size_t)n * sizeof *lat);
    if (lat == NULL || pp_global_init() != 0) return 1;

    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    if (deadline_ms > 0) o.fault_deadline_ms = deadline_ms;
    pp_client *c = pp_client_new(&o);
    /* The bare handle faults into a session of its own, "<id>-curl". */
    char curl_id[160];
    snprintf(curl_id, sizeof curl_id, "%.128s-curl", id);
    if (c == NULL || pp_session_create(c, id, NULL) != 0 || pp_session_create(c, curl_id, NULL) != 0) {
        fprintf(stderr, "create: %s\n", pp_client_errstr(c));
        return 1;
    }

    CURL *e = NULL;
    struct curl_slist *h = NULL;
    char fault_url[512], body[128];
    if (strcmp(mode, "pp") != 0) {
        e = curl_easy_init();
        h = curl_slist_append(h, "Content-Type: application/json");
        snprintf(fault_url, sizeof fault_url, "%s/sessions/%s/fault", url, curl_id);
        curl_easy_setopt(e, CURLOPT_URL, fault_url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }

    int modes[2], nmodes = 0; /* 0: libprepage, 1: bare curl */
    if (strcmp(mode, "curl") != 0) modes[nmodes++] = 0;
    if (strcmp(mode, "pp") != 0) modes[nmodes++] = 1;
    double *lats[2] = {lat, NULL};
    if (nmodes == 2 && (lats[1] = malloc((size_t)n * sizeof *lat)) == NULL) return 1;
    double wall[2] = {0, 0}, cpu[2] = {0, 0};
    long errors[2] = {0, 0}, done[2] = {0, 0};
    unsigned long long x[2] = {seed, seed};

    /* Warm up both connections, then measure in alternating blocks. */
    pp_decision d;
    pp_decision_init(&d);
    long fallbacks = 0; /* libprepage's own decisions: a fault slower than the default 5 ms deadline */
    pp_fault_page(c, id, 0, 0, &d);
    if (e != NULL) {
        snprintf(body, sizeof body, "{\"page\":0,\"stream\":0}");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_perform(e);
    }
    const long block = 1000;
    while (done[modes[nmodes - 1]] < n) {
        for (int m = 0; m < nmodes; m++) {
            int k = modes[m], slot = nmodes == 2 ? k : 0;
            long stop = done[k] + block < n ? done[k] + block : n;
            double w0 = now_us(), c0 = cpu_us();
            for (long i = done[k]; i < stop; i++) {
                x[k] = x[k] * 6364136223846793005ull + 1442695040888963407ull;
                uint64_t page = (x[k] >> 33) % 262144;
                double t0 = now_us();
                if (k == 0) {
                    errors[k] += pp_fault_page(c, id, page, 0, &d) != 0;
                    fallbacks += d.outcome == PP_FALLBACK;
                } else {
                    int len =
                        snprintf(body, sizeof body, "{\"page\":%llu,\"stream\":0}", (unsigned long long)page);
                    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
                    errors[k] += curl_easy_perform(e) != CURLE_OK;
                }
                lats[slot][i] = now_us() - t0;
            }
            wall[k] += now_us() - w0;
            cpu[k] += cpu_us() - c0;
            done[k] = stop;
        }
    }
    for (int m = 0; m < nmodes; m++) {
        int k = modes[m], slot = nmodes == 2 ? k : 0;
        double *l = lats[slot];
        qsort(l, (size_t)n, sizeof *l, by_value);
        printf("%-5s %ld faults  %.0f faults/s  p50 %.1f us  p90 %.1f us  p99 %.1f us  cpu %.1f us/fault  "
               "errors %ld",
               k == 0 ? "pp" : "curl", n, (double)n / (wall[k] / 1e6), l[n / 2], l[n * 90 / 100],
               l[n * 99 / 100], cpu[k] / (double)n, errors[k]);
        if (k == 0) printf("  fallbacks %ld", fallbacks);
        printf("\n");
    }
    free(lats[1]);
    long total_errors = errors[0] + errors[1];

    pp_session_delete(c, id);
    pp_session_delete(c, curl_id);
    if (e != NULL) curl_easy_cleanup(e);
    curl_slist_free_all(h);
    pp_client_free(c);
    free(lat);
    pp_global_cleanup();
    return total_errors == 0 ? 0 : 1;
}
