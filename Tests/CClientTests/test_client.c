/*
 * test_client.c — libprepage against the real prepaged.
 *
 * Starts `prepaged` ($PREPAGED, default .build/debug/prepaged) on a free
 * loopback port, calls every function of prepage.h, and provokes every error
 * kind. The only fakes are the servers the real one cannot be: a socket that
 * accepts and never answers (TIMEOUT), one that answers malformed JSON
 * (PROTOCOL), and a closed port (IO). Built and run under AddressSanitizer
 * by scripts/test-c.sh; prints "N passed, N failed" and exits non-zero on any
 * failure.
 */
#define _POSIX_C_SOURCE 200809L

#include "prepage.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* Checks a call failed with `kind`, printing the client's error otherwise. */
#define CHECK_ERR(rc, c, kind)                                                            \
    CHECK((rc) == -1 && pp_client_err(c) == (kind), "want %s, got rc %d err %s: %s",     \
          pp_err_name(kind), (rc), pp_err_name(pp_client_err(c)), pp_client_errstr(c))
#define CHECK_OK(rc, c)                                                           \
    CHECK((rc) == 0 && pp_client_err(c) == PP_OK, "rc %d err %s (HTTP %d): %s", (rc), \
          pp_err_name(pp_client_err(c)), pp_client_http_status(c), pp_client_errstr(c))

/* ---- The real server ----------------------------------------------------- */

static const char *server_path;
static int server_port;
static pid_t server_pid = -1;
static char base_url[64];

/* A port nobody listens on right now: bind port 0, read it back, close. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("free_port");
        exit(2);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int can_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static char log_path[256]; /* every server start appends its log here */

/* The port of the last "listening address=127.0.0.1:PORT" line past `from`, 0 if none yet. */
static int logged_port(long from) {
    FILE *f = fopen(log_path, "r");
    if (f == NULL) return 0;
    fseek(f, from, SEEK_SET);
    char line[1024];
    int port = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *at = strstr(line, "listening");
        char *addr = at != NULL ? strstr(at, "127.0.0.1:") : NULL;
        if (addr != NULL) port = atoi(addr + strlen("127.0.0.1:"));
    }
    fclose(f);
    return port;
}

static long log_size(void) {
    FILE *f = fopen(log_path, "r");
    if (f == NULL) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/*
 * Starts prepaged after `delay_ms`, waiting for it only when `wait`. The
 * first start binds port 0 and the port is read back from the server's
 * "listening" log line; restarts reuse that port (server_port).
 */
static void start_server(long delay_ms, int wait) {
    char port[16];
    snprintf(port, sizeof port, "%d", server_port);
    long from = log_size();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        if (delay_ms > 0) sleep_ms(delay_ms);
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        execl(server_path, server_path, "--host", "127.0.0.1", "--port", port, "--log-format", "text",
              (char *)NULL);
        perror("exec prepaged");
        _exit(127);
    }
    server_pid = pid;
    if (!wait) return;
    for (int i = 0; i < 1000; i++) {
        if (server_port == 0) server_port = logged_port(from);
        if (server_port != 0 && can_connect(server_port)) {
            snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", server_port);
            return;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "prepaged (%s) exited before listening; log: %s\n", server_path, log_path);
            exit(2);
        }
        sleep_ms(10);
    }
    fprintf(stderr, "prepaged did not listen within 10 s; log: %s\n", log_path);
    exit(2);
}

static void stop_server(void) {
    if (server_pid <= 0) return;
    kill(server_pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = -1;
            return;
        }
        sleep_ms(10);
    }
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
}

static pp_client *client_for(const char *url, long timeout_ms, int retries, int recreate) {
    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    o.request_timeout_ms = timeout_ms;
    o.connect_timeout_ms = timeout_ms;
    o.max_retries = retries;
    o.retry_base_ms = 20;
    o.retry_max_ms = 300;
    o.recreate_sessions = recreate;
    pp_client *c = pp_client_new(&o);
    if (c == NULL) {
        fprintf(stderr, "pp_client_new: out of memory\n");
        exit(2);
    }
    return c;
}

/* A second prepaged with a bearer token, on port 0 read back from its log. */
static pid_t start_token_server(const char *token_file, int *port) {
    long from = log_size();
    pid_t pid = fork();
    if (pid == 0) {
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(log, 1);
        dup2(log, 2);
        execl(server_path, server_path, "--host", "127.0.0.1", "--port", "0", "--log-format", "text",
              "--token-file", token_file, (char *)NULL);
        _exit(127);
    }
    *port = 0;
    for (int i = 0; i < 1000 && (*port == 0 || !can_connect(*port)); i++) {
        if (*port == 0) *port = logged_port(from);
        sleep_ms(10);
    }
    return pid;
}

/* ---- Fake servers for what the real one cannot do ------------------------ */

/* Answers every request on its connections with one fixed HTTP answer. */
typedef struct fake {
    int listen_fd;
    int port;
    char url[64]; /* http://127.0.0.1:port */
    const char *answer; /* NULL: accept, read, never answer */
    const char *const *script; /* when set: the answer to request i is script[i] (the
                                  last one repeats); "" closes the connection unanswered */
    int nscript;
    volatile int requests;
    pthread_t thread;
    volatile int stop;
} fake;

static void *fake_main(void *arg) {
    fake *f = arg;
    while (!f->stop) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) break;
        char buf[65536];
        size_t have = 0;
        for (;;) {
            ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
            if (n <= 0) break;
            have += (size_t)n;
            buf[have] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL) continue;
            size_t head = (size_t)(end + 4 - buf), body = 0;
            char *cl = strstr(buf, "Content-Length:");
            if (cl != NULL && cl < end) body = (size_t)strtoul(cl + 15, NULL, 10);
            if (have < head + body) continue;
            const char *answer = f->answer;
            if (f->script != NULL)
                answer = f->script[f->requests < f->nscript ? f->requests : f->nscript - 1];
            f->requests++;
            if (answer != NULL && answer[0] == '\0') break; /* drop the connection */
            if (answer != NULL) send(fd, answer, strlen(answer), MSG_NOSIGNAL);
            memmove(buf, buf + head + body, have - head - body);
            have -= head + body;
        }
        close(fd);
    }
    return NULL;
}

/* Starts a fake answering `answer` to every request, or, when `script` is set,
 * script[i] to request i (see `fake`). */
static void fake_start_script(fake *f, const char *answer, const char *const *script, int nscript) {
    memset(f, 0, sizeof *f);
    f->answer = answer;
    f->script = script;
    f->nscript = nscript;
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(f->listen_fd, 16) != 0 ||
        getsockname(f->listen_fd, (struct sockaddr *)&a, &len) != 0) {
        perror("fake server");
        exit(2);
    }
    f->port = ntohs(a.sin_port);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    pthread_create(&f->thread, NULL, fake_main, f);
}

static void fake_start(fake *f, const char *answer) { fake_start_script(f, answer, NULL, 0); }

static void fake_stop(fake *f) {
    f->stop = 1;
    shutdown(f->listen_fd, SHUT_RDWR);
    close(f->listen_fd);
    pthread_join(f->thread, NULL);
}

/* ---- Tests --------------------------------------------------------------- */

static void test_version_and_defaults(void) {
    CHECK(strcmp(pp_version(), PP_VERSION_STRING) == 0, "pp_version %s", pp_version());
    CHECK(PP_VERSION_NUM == ((PP_VERSION_MAJOR << 16) | (PP_VERSION_MINOR << 8) | PP_VERSION_PATCH),
          "version number");
    pp_options o;
    pp_options_init(&o);
    CHECK(o.max_retries == 3 && o.recreate_sessions == 1 && o.token == NULL &&
              strcmp(o.base_url, "http://127.0.0.1:7070") == 0,
          "option defaults");
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    CHECK(cfg.policy == NULL && cfg.max_pages == -1 && cfg.page_size == -1 && cfg.nlabels == 0 &&
              cfg.forward_pages == -1 && cfg.ra_initial == -1,
          "config defaults");
    CHECK(strcmp(pp_outcome_name(PP_REPEAT), "repeat") == 0, "outcome name");
    CHECK(strcmp(pp_err_name(PP_ERR_TIMEOUT), "timeout") == 0, "error name");
    /* Every free function accepts NULL. */
    pp_client_free(NULL);
    pp_session_free(NULL);
    pp_session_page_free(NULL);
    CHECK(pp_client_err(NULL) == PP_ERR_OOM, "err of a NULL client");
    CHECK(pp_session_create(NULL, "x", NULL) == -1, "NULL client");
}

static void test_create_get_delete(pp_client *c) {
    pp_label labels[] = {{"vm", "guest-1"}, {"zone", "a"}};
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.policy = "dp"; /* k and max_streams are DP's: the default policy, dp-plus, refuses them */
    cfg.max_pages = 256;
    cfg.k = 4;
    cfg.page_size = 8192;
    cfg.labels = labels;
    cfg.nlabels = 2;

    pp_session *s = NULL;
    int rc = pp_session_create_ex(c, "cgd-1", &cfg, &s);
    CHECK_OK(rc, c);
    CHECK(pp_client_http_status(c) == 201, "new session: 201, got %d", pp_client_http_status(c));
    CHECK(s != NULL && strcmp(s->id, "cgd-1") == 0, "document id");
    if (s != NULL) {
        CHECK(s->config.max_pages == 256 && s->config.k == 4 && s->config.page_size == 8192,
              "config round trip: max_pages %lld k %lld page_size %lld",
              (long long)s->config.max_pages, (long long)s->config.k, (long long)s->config.page_size);
        CHECK(s->config.policy != NULL && strcmp(s->config.policy, "dp") == 0, "policy");
        CHECK(s->config.min_pages == 1 && s->config.max_streams >= 1, "defaults filled in");
        CHECK(s->config.nlabels == 2, "labels: %zu", s->config.nlabels);
        int found = 0;
        for (size_t i = 0; i < s->config.nlabels; i++)
            found += strcmp(s->config.labels[i].key, "vm") == 0 &&
                     strcmp(s->config.labels[i].value, "guest-1") == 0;
        CHECK(found == 1, "label vm=guest-1");
        CHECK(s->nstreams == 0 && s->stats.faults == 0, "fresh state");
        CHECK(s->stats.created_at[0] != '\0', "created_at set");
    }
    pp_session_free(s);

    /* The identical config again: 200; another config: 409 with a detail. */
    CHECK_OK(pp_session_create(c, "cgd-1", &cfg), c);
    CHECK(pp_client_http_status(c) == 200, "same config: 200, got %d", pp_client_http_status(c));
    cfg.k = 5;
    rc = pp_session_create(c, "cgd-1", &cfg);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 409, "other config: 409, got %d", pp_client_http_status(c));
    CHECK(pp_client_errstr(c)[0] != '\0', "409 carries a detail");

    s = NULL;
    CHECK_OK(pp_session_get(c, "cgd-1", &s), c);
    CHECK(s != NULL && s->config.k == 4, "get returns the first config");
    pp_session_free(s);

    s = NULL;
    CHECK_OK(pp_session_delete_ex(c, "cgd-1", &s), c);
    CHECK(s != NULL && strcmp(s->id, "cgd-1") == 0, "delete returns the final document");
    pp_session_free(s);

    s = (pp_session *)1;
    rc = pp_session_get(c, "cgd-1", &s);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 404, "deleted: 404, got %d", pp_client_http_status(c));
    CHECK(s == NULL, "out is NULL on error");
    rc = pp_session_delete(c, "cgd-1");
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 404, "delete twice: 404");

    /* A baseline policy with its own fields, shown back in the document. */
    pp_session_config fwd;
    pp_session_config_init(&fwd);
    fwd.policy = "forward";
    fwd.forward_pages = 7;
    fwd.backward_pages = 1;
    s = NULL;
    CHECK_OK(pp_session_create_ex(c, "cgd-fwd", &fwd, &s), c);
    CHECK(s != NULL && s->config.forward_pages == 7 && s->config.backward_pages == 1 &&
              s->config.ra_max == -1 && strcmp(s->config.policy, "forward") == 0,
          "forward fields round trip");
    pp_session_free(s);
    pp_decision fd;
    CHECK_OK(pp_fault_page(c, "cgd-fwd", 100, 0, &fd), c);
    CHECK(fd.start == 99 && fd.count == 9, "forward window [%llu,+%llu)", (unsigned long long)fd.start,
          (unsigned long long)fd.count);
    CHECK_OK(pp_session_delete(c, "cgd-fwd"), c);
    fwd.policy = "dp";
    CHECK_ERR(pp_session_create(c, "cgd-fwd", &fwd), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400 && strstr(pp_client_errstr(c), "forward_pages") != NULL,
          "forward_pages on dp: \"%s\"", pp_client_errstr(c));

    /* NULL config: every default. */
    CHECK_OK(pp_session_create(c, "cgd-2", NULL), c);
    CHECK_OK(pp_session_delete(c, "cgd-2"), c);
}

static void test_bad_request_detail(pp_client *c) {
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.max_pages = 2000000;
    int rc = pp_session_create(c, "bad-1", &cfg);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400, "400, got %d", pp_client_http_status(c));
    CHECK(strstr(pp_client_errstr(c), "max_pages") != NULL,
          "the problem detail names the field: \"%s\"", pp_client_errstr(c));

    pp_session_config_init(&cfg);
    cfg.policy = "no-such-policy";
    rc = pp_session_create(c, "bad-1", &cfg);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400 && strstr(pp_client_errstr(c), "policy") != NULL,
          "unknown policy: %d \"%s\"", pp_client_http_status(c), pp_client_errstr(c));

    /* 422: a fault at or past memory_pages. */
    pp_session_config_init(&cfg);
    cfg.memory_pages = 100;
    CHECK_OK(pp_session_create(c, "bad-2", &cfg), c);
    pp_decision d;
    rc = pp_fault_page(c, "bad-2", 100, 0, &d);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 422, "beyond memory: 422, got %d", pp_client_http_status(c));
    CHECK(pp_client_errstr(c)[0] != '\0', "422 detail");
    CHECK_OK(pp_session_delete(c, "bad-2"), c);
}

static void test_faults(pp_client *c) {
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.policy = "dp"; /* the streams checked below are DP's */
    cfg.page_size = 4096;
    CHECK_OK(pp_session_create(c, "f-1", &cfg), c);

    pp_decision d;
    memset(&d, 0xAB, sizeof d);
    CHECK_OK(pp_fault_page(c, "f-1", 1000, 0, &d), c);
    CHECK(d.outcome == PP_FIRST, "first fault: %s", pp_outcome_name(d.outcome));
    CHECK(d.count >= 1 && d.start <= 1000 && 1000 < d.start + d.count, "window [%llu,+%llu)",
          (unsigned long long)d.start, (unsigned long long)d.count);
    CHECK(d.addr == d.start * 4096 && d.bytes == d.count * 4096, "bytes of the window");
    CHECK(d.nmin >= 1 && d.nmax >= d.nmin, "range %llu..%llu", (unsigned long long)d.nmin,
          (unsigned long long)d.nmax);

    /* The same fault again (a retry) is answered `repeat` with the same window. */
    pp_decision again;
    CHECK_OK(pp_fault_page(c, "f-1", 1000, 0, &again), c);
    CHECK(again.outcome == PP_REPEAT && again.start == d.start && again.count == d.count,
          "repeat: %s", pp_outcome_name(again.outcome));

    /* By address: page = addr / page_size. */
    pp_decision a;
    CHECK_OK(pp_fault_addr(c, "f-1", 0x7f0000000000ull + 123, 3, &a), c);
    uint64_t page = (0x7f0000000000ull + 123) / 4096;
    CHECK(a.start <= page && page < a.start + a.count, "addr fault covers page %llu",
          (unsigned long long)page);
    CHECK(a.addr == a.start * 4096, "addr of the window");

    /* A stream past 2^31 and a page past 2^32 are carried exactly. */
    CHECK_OK(pp_fault_page(c, "f-1", 5000000000ull, 4000000000u, &d), c);
    CHECK(d.start <= 5000000000ull && 5000000000ull < d.start + d.count, "large page");

    pp_session *s = NULL;
    CHECK_OK(pp_session_get(c, "f-1", &s), c);
    CHECK(s != NULL && s->stats.faults == 4, "4 faults counted, got %lld",
          s != NULL ? (long long)s->stats.faults : -1LL);
    CHECK(s != NULL && s->stats.repeat == 1 && s->stats.first >= 1, "outcome counters");
    CHECK(s != NULL && s->nstreams == 3 && s->streams[0].stream == 0 && s->streams[1].stream == 3 &&
              s->streams[2].stream == 4000000000u,
          "three streams ordered by id");
    CHECK(s != NULL && s->stats.last_fault_at[0] != '\0', "last_fault_at set");
    pp_session_free(s);

    /* Reset forgets what was learned and keeps the counters. */
    s = NULL;
    CHECK_OK(pp_session_reset(c, "f-1", &s), c);
    CHECK(s != NULL && s->stats.faults == 4 && s->nstreams == 0, "reset keeps counters, drops streams");
    pp_session_free(s);
    CHECK_OK(pp_session_reset(c, "f-1", NULL), c);
    CHECK_OK(pp_fault_page(c, "f-1", 1000, 0, &d), c);
    CHECK(d.outcome == PP_FIRST, "after reset the fault is first again: %s",
          pp_outcome_name(d.outcome));
    CHECK_OK(pp_session_delete(c, "f-1"), c);
}

/* A batch answers exactly what the same faults posted one by one answer. */
static void test_batch(pp_client *c) {
    enum { N = 300 };
    uint64_t pages[N];
    uint32_t streams[N];
    uint64_t seed = 42;
    uint64_t base[4] = {100, 5000, 20000, 90000};
    uint64_t at[4] = {0, 0, 0, 0};
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int s = (int)((seed >> 33) % 4);
        streams[i] = (uint32_t)s;
        pages[i] = base[s] + at[s];
        at[s] += 1 + (seed >> 40) % 3;
    }
    CHECK_OK(pp_session_create(c, "batch-1", NULL), c);
    CHECK_OK(pp_session_create(c, "single-1", NULL), c);
    pp_decision *many = calloc(N, sizeof *many);
    CHECK_OK(pp_faults_page(c, "batch-1", pages, streams, N, many), c);
    int same = 0;
    for (int i = 0; i < N; i++) {
        pp_decision one;
        if (pp_fault_page(c, "single-1", pages[i], streams[i], &one) != 0) break;
        same += one.start == many[i].start && one.count == many[i].count &&
                one.outcome == many[i].outcome && one.ntest == many[i].ntest &&
                one.nmin == many[i].nmin && one.nmax == many[i].nmax;
    }
    CHECK(same == N, "batch equals one by one: %d of %d", same, N);

    /* By addresses, without streams. */
    uint64_t addrs[3] = {4096 * 10, 4096 * 11 + 7, 4096 * 12};
    CHECK_OK(pp_session_create(c, "batch-2", NULL), c);
    CHECK_OK(pp_faults_addr(c, "batch-2", addrs, NULL, 3, many), c);
    CHECK(many[0].outcome == PP_FIRST && many[0].start <= 10 && 10 < many[0].start + many[0].count,
          "addr batch first decision");
    CHECK(many[0].addr == many[0].start * 4096, "addr batch bytes");

    /* A batch on a stream's earlier window: 422 for memory, whole batch rejected. */
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.memory_pages = 50;
    CHECK_OK(pp_session_create(c, "batch-3", &cfg), c);
    uint64_t over[2] = {1, 60};
    int rc = pp_faults_page(c, "batch-3", over, NULL, 2, many);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 422, "batch beyond memory: 422, got %d",
          pp_client_http_status(c));

    free(many);
    CHECK_OK(pp_session_delete(c, "batch-1"), c);
    CHECK_OK(pp_session_delete(c, "single-1"), c);
    CHECK_OK(pp_session_delete(c, "batch-2"), c);
    CHECK_OK(pp_session_delete(c, "batch-3"), c);
}

static void test_list(pp_client *c) {
    const char *ids[] = {"list-a", "list-b", "list-c", "list-d", "list-e"};
    for (int i = 0; i < 5; i++) CHECK_OK(pp_session_create(c, ids[i], NULL), c);

    pp_session_page *page = NULL;
    CHECK_OK(pp_session_list(c, 2, "list-", &page), c);
    CHECK(page != NULL && page->count == 2, "limit 2: %zu", page != NULL ? page->count : 0);
    CHECK(page != NULL && page->count == 2 && strcmp(page->sessions[0].id, "list-a") == 0 &&
              strcmp(page->sessions[1].id, "list-b") == 0,
          "ordered by id after \"list-\"");
    CHECK(page != NULL && page->next != NULL && strcmp(page->next, "list-b") == 0, "next: %s",
          page != NULL && page->next != NULL ? page->next : "(null)");

    /* Walk every page; the five appear once each, in order. */
    int seen = 0, in_order = 1;
    char after[200] = "list-";
    for (int guard = 0; guard < 10; guard++) {
        pp_session_page *p = NULL;
        if (pp_session_list(c, 2, after, &p) != 0) {
            CHECK_OK(-1, c);
            break;
        }
        for (size_t i = 0; i < p->count; i++) {
            if (strncmp(p->sessions[i].id, "list-", 5) == 0) {
                in_order &= seen < 5 && strcmp(p->sessions[i].id, ids[seen]) == 0;
                seen++;
            }
        }
        int more = p->next != NULL;
        if (more) snprintf(after, sizeof after, "%s", p->next);
        pp_session_page_free(p);
        if (!more) break;
    }
    CHECK(seen == 5 && in_order, "paging saw %d sessions in order: %d", seen, in_order);
    pp_session_page_free(page);

    page = NULL;
    CHECK_OK(pp_session_list(c, 0, NULL, &page), c);
    CHECK(page != NULL && page->count >= 5, "default limit lists all five");
    pp_session_page_free(page);
    for (int i = 0; i < 5; i++) CHECK_OK(pp_session_delete(c, ids[i]), c);
}

static void test_invalid(pp_client *c) {
    pp_decision d;
    char long_id[200];
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    CHECK_ERR(pp_session_create(c, NULL, NULL), c, PP_ERR_INVALID);
    CHECK(pp_client_http_status(c) == 0, "nothing sent");
    CHECK_ERR(pp_session_create(c, "", NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_create(c, "a/b", NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_create(c, "a b", NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_create(c, long_id, NULL), c, PP_ERR_INVALID);
    long_id[128] = '\0';
    CHECK_OK(pp_session_create(c, long_id, NULL), c); /* 128 is fine */
    CHECK_OK(pp_session_delete(c, long_id), c);
    CHECK_OK(pp_session_create(c, "Vm_1.x:y-z", NULL), c);
    CHECK_OK(pp_session_delete(c, "Vm_1.x:y-z"), c);

    CHECK_ERR(pp_session_get(c, "x", NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_get(c, "x?y", NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_delete(c, "../x"), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_reset(c, "x%20", NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_list(c, 1001, NULL, NULL), c, PP_ERR_INVALID);
    pp_session_page *page = NULL;
    CHECK_ERR(pp_session_list(c, 1001, NULL, &page), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_list(c, 10, "bad id", &page), c, PP_ERR_INVALID);
    CHECK_ERR(pp_fault_page(c, NULL, 1, 0, &d), c, PP_ERR_INVALID);
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, NULL), c, PP_ERR_INVALID);
    CHECK_ERR(pp_fault_addr(c, "x y", 1, 0, &d), c, PP_ERR_INVALID);
    uint64_t pages[1] = {1};
    CHECK_ERR(pp_faults_page(c, "x", pages, NULL, 0, &d), c, PP_ERR_INVALID);
    CHECK_ERR(pp_faults_page(c, "x", NULL, NULL, 1, &d), c, PP_ERR_INVALID);
    CHECK_ERR(pp_faults_addr(c, "x", pages, NULL, PP_MAX_BATCH + 1, &d), c, PP_ERR_INVALID);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.nlabels = 1;
    CHECK_ERR(pp_session_create(c, "x", &cfg), c, PP_ERR_INVALID);

    /* A client from bad options exists, and says why on every call. */
    pp_options o;
    pp_options_init(&o);
    o.base_url = "ftp://127.0.0.1:1";
    pp_client *bad = pp_client_new(&o);
    CHECK(bad != NULL && pp_client_err(bad) == PP_ERR_INVALID, "bad base_url: INVALID");
    CHECK_ERR(pp_fault_page(bad, "x", 1, 0, &d), bad, PP_ERR_INVALID);
    CHECK(strstr(pp_client_errstr(bad), "http") != NULL, "says why: %s", pp_client_errstr(bad));
    pp_client_free(bad);
    o.base_url = NULL;
    bad = pp_client_new(&o);
    CHECK(bad != NULL && pp_client_err(bad) == PP_ERR_INVALID, "NULL base_url: INVALID");
    pp_client_free(bad);
    pp_client *dflt = pp_client_new(NULL);
    CHECK(dflt != NULL && pp_client_err(dflt) == PP_OK, "NULL options: defaults");
    pp_client_free(dflt);
}

static void test_refused(void) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    pp_client *c = client_for(url, 500, 2, 1);
    pp_decision d;
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_IO);
    CHECK(pp_client_http_status(c) == 0, "no status without an answer");
    CHECK(pp_client_errstr(c)[0] != '\0', "IO says why");
    CHECK_ERR(pp_session_create(c, "x", NULL), c, PP_ERR_IO);
    pp_session_page *p = NULL;
    CHECK_ERR(pp_session_list(c, 0, NULL, &p), c, PP_ERR_IO);
    uint64_t pages[1] = {1};
    CHECK_ERR(pp_faults_page(c, "x", pages, NULL, 1, &d), c, PP_ERR_IO);
    pp_client_free(c);
}

static void test_timeout(void) {
    fake f;
    fake_start(&f, NULL); /* accepts, reads, never answers */
    pp_client *c = client_for(f.url, 200, 1, 1);
    pp_decision d;
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_TIMEOUT);
    pp_session *s = NULL;
    CHECK_ERR(pp_session_get(c, "x", &s), c, PP_ERR_TIMEOUT);
    pp_client_free(c);
    fake_stop(&f);
}

/* A 200 answer with this body, its length computed. */
static const char *answer_200(char *buf, size_t size, const char *body) {
    snprintf(buf, size,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    return buf;
}

static void test_protocol(void) {
    static const struct {
        const char *body;
        int ok; /* 1: valid, and read by the jansson fallback */
    } cases[] = {
        {"{not json", 0},
        {"{\"start\":1}", 0},
        {"[]", 0},
        {"null", 0},
        {"{\"start\":1,\"count\":2,\"outcome\":\"sideways\",\"ntest\":1,\"nmin\":1,"
         "\"nmax\":2,\"addr\":4,\"bytes\":5}",
         0},
        {"{\"start\":-1,\"count\":2,\"outcome\":\"first\",\"ntest\":1,\"nmin\":1,"
         "\"nmax\":2,\"addr\":4,\"bytes\":5}",
         0},
        {"{\"start\":1.5,\"count\":2,\"outcome\":\"first\",\"ntest\":1,\"nmin\":1,"
         "\"nmax\":2,\"addr\":4,\"bytes\":5}",
         0},
        /* Escapes, nesting, strings for numbers: not the fast scan's, but valid. */
        {"{\"new\":{\"x\":[1]},\"st\\u0061rt\":7,\"count\":2,\"outcome\":\"larger\","
         "\"ntest\":1,\"nmin\":1,\"nmax\":2,\"addr\":\"0x7000\",\"bytes\":8192}",
         1},
    };
    char buf[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake f;
        fake_start(&f, answer_200(buf, sizeof buf, cases[i].body));
        pp_client *c = client_for(f.url, 1000, 0, 1);
        pp_decision d;
        memset(&d, 0, sizeof d);
        int rc = pp_fault_page(c, "x", 1, 0, &d);
        if (cases[i].ok) {
            CHECK_OK(rc, c);
            CHECK(d.start == 7 && d.count == 2 && d.outcome == PP_LARGER && d.addr == 0x7000 &&
                      d.bytes == 8192,
                  "fallback read the decision: start %llu addr %llx", (unsigned long long)d.start,
                  (unsigned long long)d.addr);
        } else {
            CHECK(rc == -1 && pp_client_err(c) == PP_ERR_PROTOCOL, "case %zu: want protocol, got %s: %s",
                  i, pp_err_name(pp_client_err(c)), pp_client_errstr(c));
        }
        if (i == 0) {
            pp_session *s = NULL;
            CHECK_ERR(pp_session_get(c, "x", &s), c, PP_ERR_PROTOCOL);
            pp_session_page *p = NULL;
            CHECK_ERR(pp_session_list(c, 0, NULL, &p), c, PP_ERR_PROTOCOL);
            CHECK_ERR(pp_session_create_ex(c, "x", NULL, &s), c, PP_ERR_PROTOCOL);
            uint64_t pages[2] = {1, 2};
            pp_decision two[2];
            CHECK_ERR(pp_faults_page(c, "x", pages, NULL, 2, two), c, PP_ERR_PROTOCOL);
        }
        pp_client_free(c);
        fake_stop(&f);
    }

    /* Not HTTP at all. */
    fake f;
    fake_start(&f, "garbage\r\n\r\n");
    pp_client *c = client_for(f.url, 1000, 0, 1);
    pp_decision d;
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_PROTOCOL);
    pp_client_free(c);
    fake_stop(&f);

    /* A 500 that is not problem+json still reports the status. */
    fake_start(&f, "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops");
    c = client_for(f.url, 1000, 0, 1);
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 500 && strstr(pp_client_errstr(c), "500") != NULL,
          "plain 500: %s", pp_client_errstr(c));
    pp_client_free(c);
    fake_stop(&f);
}

/* Retries are bounded, and only for what is safe to repeat: a server that
 * drops the first connections unanswered, counting the requests it saw. */
static void test_retry_bounds(void) {
    static char decision[512], not_found[512];
    answer_200(decision, sizeof decision,
               "{\"start\":5,\"count\":1,\"outcome\":\"first\",\"ntest\":1,\"nmin\":1,"
               "\"nmax\":512,\"addr\":20480,\"bytes\":4096}");
    static const char problem[] = "{\"type\":\"x\",\"title\":\"t\",\"status\":404,\"detail\":\"gone\"}";
    snprintf(not_found, sizeof not_found,
             "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(problem), problem);
    const char *const drop2_then_answer[] = {"", "", decision};
    const char *const drop_then_404[] = {"", not_found};
    fake f;
    pp_decision d;
    uint64_t pages[1] = {5};

    /* A fault: two drops, then the answer; 2 retries are enough. */
    fake_start_script(&f, NULL, drop2_then_answer, 3);
    pp_client *c = client_for(f.url, 1000, 2, 1);
    CHECK_OK(pp_fault_page(c, "x", 5, 0, &d), c);
    CHECK(f.requests == 3 && d.start == 5, "fault retried twice: %d requests", f.requests);
    pp_client_free(c);
    fake_stop(&f);

    /* One retry allowed: the second drop is the caller's IO error. */
    fake_start_script(&f, NULL, drop2_then_answer, 3);
    c = client_for(f.url, 1000, 1, 1);
    CHECK_ERR(pp_fault_page(c, "x", 5, 0, &d), c, PP_ERR_IO);
    CHECK(f.requests == 2, "1 retry: %d requests", f.requests);
    pp_client_free(c);
    fake_stop(&f);

    /* A batch is never retried: part of it may have been decided. */
    fake_start_script(&f, NULL, drop2_then_answer, 3);
    c = client_for(f.url, 1000, 5, 1);
    CHECK_ERR(pp_faults_page(c, "x", pages, NULL, 1, &d), c, PP_ERR_IO);
    CHECK(f.requests == 1, "batch not retried: %d requests", f.requests);
    pp_client_free(c);
    fake_stop(&f);

    /* A retried DELETE that finds nothing: the first one deleted it. */
    fake_start_script(&f, NULL, drop_then_404, 2);
    c = client_for(f.url, 1000, 3, 1);
    pp_session *s = (pp_session *)1;
    CHECK_OK(pp_session_delete_ex(c, "x", &s), c);
    CHECK(f.requests == 2 && s == NULL, "delete retried, 404 taken as done: %d requests", f.requests);
    /* …but a first-attempt 404 is the caller's. */
    CHECK_ERR(pp_session_delete(c, "x"), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 404 && strcmp(pp_client_errstr(c), "gone") == 0,
          "404 detail: %s", pp_client_errstr(c));
    pp_client_free(c);
    fake_stop(&f);
}

/* The server restarts on the same port: its sessions are gone. */
static void test_restart(void) {
    pp_client *c = client_for(base_url, 2000, 10, 1);
    pp_client *plain = client_for(base_url, 2000, 10, 0);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.max_pages = 128;
    CHECK_OK(pp_session_create(c, "restart-1", &cfg), c);
    CHECK_OK(pp_session_create(plain, "restart-2", NULL), plain);
    pp_decision d;
    CHECK_OK(pp_fault_page(c, "restart-1", 10, 0, &d), c);
    CHECK_OK(pp_fault_page(plain, "restart-2", 10, 0, &d), plain);

    /* Down, and back up 300 ms later while the client is retrying. */
    stop_server();
    start_server(300, 0);
    pp_session_page *p = NULL;
    CHECK_OK(pp_session_list(c, 0, NULL, &p), c); /* retried across the outage */
    CHECK(p != NULL && p->count == 0, "a restarted server has no sessions");
    pp_session_page_free(p);

    /* 404 for a session this client created: re-created with its config, retried. */
    CHECK_OK(pp_fault_page(c, "restart-1", 500, 0, &d), c);
    CHECK(d.outcome == PP_FIRST, "first fault of the re-created session: %s",
          pp_outcome_name(d.outcome));
    pp_session *s = NULL;
    CHECK_OK(pp_session_get(c, "restart-1", &s), c);
    CHECK(s != NULL && s->config.max_pages == 128, "re-created with the same config");
    pp_session_free(s);

    /* Without re-creation the 404 reaches the caller. */
    int rc = pp_fault_page(plain, "restart-2", 10, 0, &d);
    CHECK_ERR(rc, plain, PP_ERR_HTTP);
    CHECK(pp_client_http_status(plain) == 404, "recreate off: 404, got %d",
          pp_client_http_status(plain));

    /* A session created by someone else is not re-created either. */
    rc = pp_fault_page(c, "restart-2", 10, 0, &d);
    CHECK_ERR(rc, c, PP_ERR_HTTP);

    /* Re-created for a batch and for reset too, after another restart. */
    stop_server();
    start_server(0, 1);
    uint64_t pages[2] = {7, 8};
    pp_decision two[2];
    CHECK_OK(pp_faults_page(c, "restart-1", pages, NULL, 2, two), c);
    stop_server();
    start_server(0, 1);
    CHECK_OK(pp_session_reset(c, "restart-1", NULL), c);

    /* A deleted session is forgotten: no re-creation after its delete. */
    CHECK_OK(pp_session_delete(c, "restart-1"), c);
    rc = pp_fault_page(c, "restart-1", 10, 0, &d);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 404, "deleted stays deleted");

    /* No retries: the outage reaches the caller at once. */
    pp_client *once = client_for(base_url, 2000, 0, 1);
    stop_server();
    CHECK_ERR(pp_session_list(once, 0, NULL, &p), once, PP_ERR_IO);
    start_server(0, 1);
    pp_client_free(once);
    pp_client_free(plain);
    pp_client_free(c);
}

static void test_token(void) {
    char token_file[] = "/tmp/pp-token-XXXXXX";
    int fd = mkstemp(token_file);
    CHECK(fd >= 0 && write(fd, "s3cret-token\n", 13) == 13, "token file");
    close(fd);
    int port = 0;
    pid_t pid = start_token_server(token_file, &port);
    CHECK(port != 0, "token server listening");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);

    pp_client *anon = client_for(url, 2000, 0, 1);
    CHECK_ERR(pp_session_create(anon, "tok-1", NULL), anon, PP_ERR_HTTP);
    CHECK(pp_client_http_status(anon) == 401, "no token: 401, got %d", pp_client_http_status(anon));
    pp_client_free(anon);

    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    o.token = "s3cret-token";
    pp_client *c = pp_client_new(&o);
    CHECK_OK(pp_session_create(c, "tok-1", NULL), c);
    pp_decision d;
    CHECK_OK(pp_fault_page(c, "tok-1", 3, 0, &d), c);
    CHECK_OK(pp_session_delete(c, "tok-1"), c);
    pp_client_free(c);

    o.token = "bad\r\nX-Evil: 1";
    c = pp_client_new(&o);
    CHECK(c != NULL && pp_client_err(c) == PP_ERR_INVALID, "a token with a line break is INVALID");
    pp_client_free(c);

    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(token_file);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    server_path = getenv("PREPAGED") != NULL ? getenv("PREPAGED") : ".build/debug/prepaged";
    if (access(server_path, X_OK) != 0) {
        fprintf(stderr, "prepaged not found at %s (set PREPAGED)\n", server_path);
        return 2;
    }
    if (pp_global_init() != 0) {
        fprintf(stderr, "pp_global_init failed\n");
        return 2;
    }
    if (getenv("PREPAGED_LOG") != NULL) {
        snprintf(log_path, sizeof log_path, "%s", getenv("PREPAGED_LOG"));
    } else {
        snprintf(log_path, sizeof log_path, "/tmp/prepaged-test-XXXXXX");
        int fd = mkstemp(log_path);
        if (fd < 0) {
            perror("mkstemp");
            return 2;
        }
        close(fd);
    }
    server_port = 0; /* bind port 0, read it back */
    start_server(0, 1);

    pp_client *c = client_for(base_url, 5000, 3, 1);
    test_version_and_defaults();
    test_create_get_delete(c);
    test_bad_request_detail(c);
    test_faults(c);
    test_batch(c);
    test_list(c);
    test_invalid(c);
    test_refused();
    test_timeout();
    test_protocol();
    test_retry_bounds();
    test_token();
    pp_client_free(c);
    test_restart();

    stop_server();
    pp_global_cleanup();
    if (failed == 0 && getenv("PREPAGED_LOG") == NULL) unlink(log_path);
    else fprintf(stderr, "prepaged log: %s\n", log_path);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
