/*
 * bench_client.c — one client, one connection, N sequential faults.
 *
 *     bench_client URL [--faults N] [--seed S] [--mode pp|curl] [--session ID]
 *
 * --mode pp   (default) pp_fault_page() of libprepage: format, POST, scan.
 * --mode curl the same POST through a bare libcurl easy handle, answer
 *             discarded: what libcurl alone costs, for comparison.
 *
 * Pages are random over 1 GiB of 4 KiB pages (seeded), one stream. Prints
 * one line: mode, faults, faults/s, p50/p90/p99 round trip in µs. A
 * benchmark, not a test: it asserts nothing about time.
 */
#define _POSIX_C_SOURCE 200809L

#include <prepage.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
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
        fprintf(stderr, "usage: %s URL [--faults N] [--seed S] [--mode pp|curl] [--session ID]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *mode = "pp", *id = "bench";
    long n = 100000;
    unsigned long long seed = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--faults") == 0) n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[i + 1], NULL, 0);
        else if (strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
        else if (strcmp(argv[i], "--session") == 0) id = argv[i + 1];
    }
    if (n <= 0) return 2;
    double *lat = malloc((size_t)n * sizeof *lat);
    if (lat == NULL || pp_global_init() != 0) return 1;

    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    pp_client *c = pp_client_new(&o);
    if (c == NULL || pp_session_create(c, id, NULL) != 0) {
        fprintf(stderr, "create: %s\n", pp_client_errstr(c));
        return 1;
    }

    CURL *e = NULL;
    struct curl_slist *h = NULL;
    char fault_url[512], body[128];
    if (strcmp(mode, "curl") == 0) {
        e = curl_easy_init();
        h = curl_slist_append(h, "Content-Type: application/json");
        snprintf(fault_url, sizeof fault_url, "%s/sessions/%s/fault", url, id);
        curl_easy_setopt(e, CURLOPT_URL, fault_url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }

    unsigned long long x = seed;
    long errors = 0;
    /* Warm up the connection, then measure. */
    pp_decision d;
    pp_fault_page(c, id, 0, 0, &d);
    double start = now_us();
    for (long i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t page = (x >> 33) % 262144;
        double t0 = now_us();
        if (e == NULL) {
            errors += pp_fault_page(c, id, page, 0, &d) != 0;
        } else {
            int len = snprintf(body, sizeof body, "{\"page\":%llu,\"stream\":0}", (unsigned long long)page);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
            errors += curl_easy_perform(e) != CURLE_OK;
        }
        lat[i] = now_us() - t0;
    }
    double total = now_us() - start;
    qsort(lat, (size_t)n, sizeof *lat, by_value);
    printf("%-5s %ld faults  %.0f faults/s  p50 %.1f us  p90 %.1f us  p99 %.1f us  errors %ld\n", mode, n,
           (double)n / (total / 1e6), lat[n / 2], lat[n * 90 / 100], lat[n * 99 / 100], errors);

    pp_session_delete(c, id);
    if (e != NULL) curl_easy_cleanup(e);
    curl_slist_free_all(h);
    pp_client_free(c);
    free(lat);
    pp_global_cleanup();
    return errors == 0 ? 0 : 1;
}
