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
#include "config_fields.h" /* generated from PrepageCore's field table */

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
#include <poll.h>
#include <stddef.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (cond) {                                                                                          \
            passed++;                                                                                        \
        } else {                                                                                             \
            failed++;                                                                                        \
            fprintf(stderr, "FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond);                                 \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
        }                                                                                                    \
    } while (0)

/* Checks a call failed with `kind`, printing the client's error otherwise. */
#define CHECK_ERR(rc, c, kind)                                                                               \
    CHECK((rc) == -1 && pp_client_err(c) == (kind), "want %s, got rc %d err %s: %s", pp_err_name(kind),      \
          (rc), pp_err_name(pp_client_err(c)), pp_client_errstr(c))
#define CHECK_OK(rc, c)                                                                                      \
    CHECK((rc) == 0 && pp_client_err(c) == PP_OK, "rc %d err %s (HTTP %d): %s", (rc),                        \
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
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
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
    /* These tests want the oracle's answer or its error: the fallback has tests of its own. */
    o.fault_deadline_ms = timeout_ms;
    o.fault_fallback = 0;
    pp_client *c = pp_client_new(&o);
    if (c == NULL) {
        fprintf(stderr, "pp_client_new: out of memory\n");
        exit(2);
    }
    return c;
}

/* A client with every default, but these fault options. */
static pp_client *fault_client(const char *url, long deadline_ms, long breaker_base_ms, long breaker_max_ms) {
    pp_options o;
    pp_options_init(&o);
    o.base_url = url;
    if (deadline_ms > 0) o.fault_deadline_ms = deadline_ms;
    if (breaker_base_ms >= 0) o.breaker_base_ms = breaker_base_ms;
    if (breaker_max_ms >= 0) o.breaker_max_ms = breaker_max_ms;
    pp_client *c = pp_client_new(&o);
    if (c == NULL || pp_client_err(c) != PP_OK) {
        fprintf(stderr, "pp_client_new: %s\n", pp_client_errstr(c));
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

/* Answers every request with one fixed HTTP answer, each connection in a thread of its own. */
#define FAKE_MAX_CONNS 64
typedef struct fake {
    int listen_fd;
    int port;
    char url[64];              /* http://127.0.0.1:port */
    const char *answer;        /* NULL: accept, read, never answer */
    const char *const *script; /* when set: the answer to request i is script[i] (the
                                  last one repeats); "" closes the connection unanswered */
    int nscript;
    int requests;         /* requests read in full (atomic) */
    int connections;      /* connections accepted (atomic) */
    char last_body[4096]; /* the body of the last request (under lock) */
    pthread_mutex_t lock;
    pthread_t thread;
    pthread_t conn_threads[FAKE_MAX_CONNS];
    int conn_fds[FAKE_MAX_CONNS];
    int nconns;
    volatile int stop;
} fake;

typedef struct fake_conn {
    fake *f;
    int fd;
} fake_conn;

static int fake_requests(fake *f) {
    return __atomic_load_n(&f->requests, __ATOMIC_SEQ_CST);
}
static int fake_connections(fake *f) {
    return __atomic_load_n(&f->connections, __ATOMIC_SEQ_CST);
}

static void *fake_conn_main(void *arg) {
    fake_conn *fc = arg;
    fake *f = fc->f;
    int fd = fc->fd;
    free(fc);
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
        pthread_mutex_lock(&f->lock);
        snprintf(f->last_body, sizeof f->last_body, "%.*s", (int)body, buf + head);
        pthread_mutex_unlock(&f->lock);
        int i = __atomic_fetch_add(&f->requests, 1, __ATOMIC_SEQ_CST);
        const char *answer = f->answer;
        if (f->script != NULL) answer = f->script[i < f->nscript ? i : f->nscript - 1];
        if (answer != NULL && answer[0] == '\0') break; /* drop the connection */
        if (answer != NULL) send(fd, answer, strlen(answer), MSG_NOSIGNAL);
        memmove(buf, buf + head + body, have - head - body);
        have -= head + body;
    }
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *fake_main(void *arg) {
    fake *f = arg;
    while (!f->stop) {
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) break;
        __atomic_fetch_add(&f->connections, 1, __ATOMIC_SEQ_CST);
        fake_conn *fc = malloc(sizeof *fc);
        pthread_mutex_lock(&f->lock);
        int full = f->nconns == FAKE_MAX_CONNS || fc == NULL;
        if (!full) {
            fc->f = f;
            fc->fd = fd;
            f->conn_fds[f->nconns] = fd;
            if (pthread_create(&f->conn_threads[f->nconns], NULL, fake_conn_main, fc) == 0)
                f->nconns++;
            else
                full = 1;
        }
        pthread_mutex_unlock(&f->lock);
        if (full) {
            free(fc);
            close(fd);
        }
    }
    return NULL;
}

/* Starts a fake answering `answer` to every request, or, when `script` is set,
 * script[i] to request i (see `fake`). */
static void fake_start_script(fake *f, const char *answer, const char *const *script, int nscript) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
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

static void fake_start(fake *f, const char *answer) {
    fake_start_script(f, answer, NULL, 0);
}

static void fake_stop(fake *f) {
    f->stop = 1;
    shutdown(f->listen_fd, SHUT_RDWR);
    close(f->listen_fd);
    pthread_join(f->thread, NULL);
    for (int i = 0; i < f->nconns; i++) shutdown(f->conn_fds[i], SHUT_RDWR);
    for (int i = 0; i < f->nconns; i++) {
        pthread_join(f->conn_threads[i], NULL);
        close(f->conn_fds[i]);
    }
    pthread_mutex_destroy(&f->lock);
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
    cfg.policy = "dp"; /* named: k is dp's, and the server's default policy may change */
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
        CHECK(s->config->max_pages == 256 && s->config->k == 4 && s->config->page_size == 8192,
              "config round trip: max_pages %lld k %lld page_size %lld", (long long)s->config->max_pages,
              (long long)s->config->k, (long long)s->config->page_size);
        CHECK(s->config->policy != NULL && strcmp(s->config->policy, "dp") == 0, "policy");
        CHECK(s->config->min_pages == 1 && s->config->max_streams >= 1, "defaults filled in");
        CHECK(s->config->nlabels == 2, "labels: %zu", s->config->nlabels);
        int found = 0;
        for (size_t i = 0; i < s->config->nlabels; i++)
            found += strcmp(s->config->labels[i].key, "vm") == 0 &&
                     strcmp(s->config->labels[i].value, "guest-1") == 0;
        CHECK(found == 1, "label vm=guest-1");
        CHECK(s->nstreams == 0 && s->stats->faults == 0, "fresh state");
        CHECK(s->stats->created_at[0] != '\0', "created_at set");
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
    CHECK(s != NULL && s->config->k == 4, "get returns the first config");
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
    CHECK(s != NULL && s->config->forward_pages == 7 && s->config->backward_pages == 1 &&
              s->config->ra_max == -1 && strcmp(s->config->policy, "forward") == 0,
          "forward fields round trip");
    pp_session_free(s);
    pp_decision fd;
    pp_decision_init(&fd);
    CHECK_OK(pp_fault_page(c, "cgd-fwd", 100, 0, &fd), c);
    CHECK(fd.start == 99 && fd.count == 9, "forward window [%llu,+%llu)", (unsigned long long)fd.start,
          (unsigned long long)fd.count);
    CHECK_OK(pp_session_delete(c, "cgd-fwd"), c);
    fwd.policy = "dp";
    CHECK_ERR(pp_session_create(c, "cgd-fwd", &fwd), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400 && strstr(pp_client_errstr(c), "forward_pages") != NULL,
          "forward_pages on dp: \"%s\"", pp_client_errstr(c));

    /* NULL config: every default, the policy the server's. */
    s = NULL;
    CHECK_OK(pp_session_create_ex(c, "cgd-2", NULL, &s), c);
    CHECK(s != NULL && s->config->policy != NULL && s->config->policy[0] != '\0',
          "the server names its default policy");
    pp_session_free(s);
    CHECK_OK(pp_session_delete(c, "cgd-2"), c);
}

static void test_bad_request_detail(pp_client *c) {
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.max_pages = 2000000;
    int rc = pp_session_create(c, "bad-1", &cfg);
    CHECK_ERR(rc, c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400, "400, got %d", pp_client_http_status(c));
    CHECK(strstr(pp_client_errstr(c), "max_pages") != NULL, "the problem detail names the field: \"%s\"",
          pp_client_errstr(c));

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
    pp_decision_init(&d);
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
    pp_decision_init(&d);
    memset(&d.start, 0xAB, sizeof d - offsetof(pp_decision, start));
    CHECK_OK(pp_fault_page(c, "f-1", 1000, 0, &d), c);
    CHECK(d.outcome == PP_FIRST, "first fault: %s", pp_outcome_name(d.outcome));
    CHECK(d.count >= 1 && d.start <= 1000 && 1000 < d.start + d.count, "window [%llu,+%llu)",
          (unsigned long long)d.start, (unsigned long long)d.count);
    CHECK(d.addr == d.start * 4096 && d.bytes == d.count * 4096, "bytes of the window");
    CHECK(d.nmin >= 1 && d.nmax >= d.nmin, "range %llu..%llu", (unsigned long long)d.nmin,
          (unsigned long long)d.nmax);

    /* The same fault again (a retry) is answered `repeat` with the same window. */
    pp_decision again;
    pp_decision_init(&again);
    CHECK_OK(pp_fault_page(c, "f-1", 1000, 0, &again), c);
    CHECK(again.outcome == PP_REPEAT && again.start == d.start && again.count == d.count, "repeat: %s",
          pp_outcome_name(again.outcome));

    /* By address: page = addr / page_size. */
    pp_decision a;
    pp_decision_init(&a);
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
    CHECK(s != NULL && s->stats->faults == 4, "4 faults counted, got %lld",
          s != NULL ? (long long)s->stats->faults : -1LL);
    CHECK(s != NULL && s->stats->repeat == 1 && s->stats->first >= 1, "outcome counters");
    CHECK(s != NULL && s->nstreams == 3 && s->streams[0]->stream == 0 && s->streams[1]->stream == 3 &&
              s->streams[2]->stream == 4000000000u,
          "three streams ordered by id");
    CHECK(s != NULL && s->stats->last_fault_at[0] != '\0', "last_fault_at set");
    pp_session_free(s);

    /* Reset forgets what was learned and keeps the counters. */
    s = NULL;
    CHECK_OK(pp_session_reset(c, "f-1", &s), c);
    CHECK(s != NULL && s->stats->faults == 4 && s->nstreams == 0, "reset keeps counters, drops streams");
    pp_session_free(s);
    CHECK_OK(pp_session_reset(c, "f-1", NULL), c);
    CHECK_OK(pp_fault_page(c, "f-1", 1000, 0, &d), c);
    CHECK(d.outcome == PP_FIRST, "after reset the fault is first again: %s", pp_outcome_name(d.outcome));
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
    pp_decision_init(&many[0]);
    CHECK_OK(pp_faults_page(c, "batch-1", pages, streams, N, many), c);
    int same = 0;
    for (int i = 0; i < N; i++) {
        pp_decision one;
        pp_decision_init(&one);
        if (pp_fault_page(c, "single-1", pages[i], streams[i], &one) != 0) break;
        same += one.start == many[i].start && one.count == many[i].count && one.outcome == many[i].outcome &&
                one.ntest == many[i].ntest && one.nmin == many[i].nmin && one.nmax == many[i].nmax;
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
    CHECK(pp_client_http_status(c) == 422, "batch beyond memory: 422, got %d", pp_client_http_status(c));

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
    CHECK(page != NULL && page->count == 2 && strcmp(page->sessions[0]->id, "list-a") == 0 &&
              strcmp(page->sessions[1]->id, "list-b") == 0,
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
            if (strncmp(p->sessions[i]->id, "list-", 5) == 0) {
                in_order &= seen < 5 && strcmp(p->sessions[i]->id, ids[seen]) == 0;
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
    pp_decision_init(&d);
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
    pp_decision_init(&d);
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
    pp_decision_init(&d);
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_TIMEOUT);
    pp_session *s = NULL;
    CHECK_ERR(pp_session_get(c, "x", &s), c, PP_ERR_TIMEOUT);
    pp_client_free(c);
    fake_stop(&f);
}

/* A 200 answer with this body, its length computed. */
static const char *answer_200(char *buf, size_t size, const char *body) {
    snprintf(buf, size, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
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
        pp_decision_init(&d);
        int rc = pp_fault_page(c, "x", 1, 0, &d);
        if (cases[i].ok) {
            CHECK_OK(rc, c);
            CHECK(d.start == 7 && d.count == 2 && d.outcome == PP_LARGER && d.addr == 0x7000 &&
                      d.bytes == 8192,
                  "fallback read the decision: start %llu addr %llx", (unsigned long long)d.start,
                  (unsigned long long)d.addr);
        } else {
            CHECK(rc == -1 && pp_client_err(c) == PP_ERR_PROTOCOL, "case %zu: want protocol, got %s: %s", i,
                  pp_err_name(pp_client_err(c)), pp_client_errstr(c));
        }
        if (i == 0) {
            pp_session *s = NULL;
            CHECK_ERR(pp_session_get(c, "x", &s), c, PP_ERR_PROTOCOL);
            pp_session_page *p = NULL;
            CHECK_ERR(pp_session_list(c, 0, NULL, &p), c, PP_ERR_PROTOCOL);
            CHECK_ERR(pp_session_create_ex(c, "x", NULL, &s), c, PP_ERR_PROTOCOL);
            uint64_t pages[2] = {1, 2};
            pp_decision two[2];
            pp_decision_init(&two[0]);
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
    pp_decision_init(&d);
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_PROTOCOL);
    pp_client_free(c);
    fake_stop(&f);

    /* A 500 that is not problem+json still reports the status. */
    fake_start(&f, "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops");
    c = client_for(f.url, 1000, 0, 1);
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 500 && strstr(pp_client_errstr(c), "500") != NULL, "plain 500: %s",
          pp_client_errstr(c));
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
    pp_decision_init(&d);
    uint64_t pages[1] = {5};

    /* A fault: two drops, then the answer; 2 retries are enough. */
    fake_start_script(&f, NULL, drop2_then_answer, 3);
    pp_client *c = client_for(f.url, 1000, 2, 1);
    CHECK_OK(pp_fault_page(c, "x", 5, 0, &d), c);
    CHECK(fake_requests(&f) == 3 && d.start == 5, "fault retried twice: %d requests", fake_requests(&f));
    pp_client_free(c);
    fake_stop(&f);

    /* One retry allowed: the second drop is the caller's IO error. */
    fake_start_script(&f, NULL, drop2_then_answer, 3);
    c = client_for(f.url, 1000, 1, 1);
    CHECK_ERR(pp_fault_page(c, "x", 5, 0, &d), c, PP_ERR_IO);
    CHECK(fake_requests(&f) == 2, "1 retry: %d requests", fake_requests(&f));
    pp_client_free(c);
    fake_stop(&f);

    /* A batch is never retried: part of it may have been decided. */
    fake_start_script(&f, NULL, drop2_then_answer, 3);
    c = client_for(f.url, 1000, 5, 1);
    CHECK_ERR(pp_faults_page(c, "x", pages, NULL, 1, &d), c, PP_ERR_IO);
    CHECK(fake_requests(&f) == 1, "batch not retried: %d requests", fake_requests(&f));
    pp_client_free(c);
    fake_stop(&f);

    /* A retried DELETE that finds nothing: the first one deleted it. */
    fake_start_script(&f, NULL, drop_then_404, 2);
    c = client_for(f.url, 1000, 3, 1);
    pp_session *s = (pp_session *)1;
    CHECK_OK(pp_session_delete_ex(c, "x", &s), c);
    CHECK(fake_requests(&f) == 2 && s == NULL, "delete retried, 404 taken as done: %d requests",
          fake_requests(&f));
    /* …but a first-attempt 404 is the caller's. */
    CHECK_ERR(pp_session_delete(c, "x"), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 404 && strcmp(pp_client_errstr(c), "gone") == 0, "404 detail: %s",
          pp_client_errstr(c));
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
    pp_decision_init(&d);
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
    CHECK(d.outcome == PP_FIRST, "first fault of the re-created session: %s", pp_outcome_name(d.outcome));
    pp_session *s = NULL;
    CHECK_OK(pp_session_get(c, "restart-1", &s), c);
    CHECK(s != NULL && s->config->max_pages == 128, "re-created with the same config");
    pp_session_free(s);

    /* Without re-creation the 404 reaches the caller. */
    int rc = pp_fault_page(plain, "restart-2", 10, 0, &d);
    CHECK_ERR(rc, plain, PP_ERR_HTTP);
    CHECK(pp_client_http_status(plain) == 404, "recreate off: 404, got %d", pp_client_http_status(plain));

    /* A session created by someone else is not re-created either. */
    rc = pp_fault_page(c, "restart-2", 10, 0, &d);
    CHECK_ERR(rc, c, PP_ERR_HTTP);

    /* Re-created for a batch and for reset too, after another restart. */
    stop_server();
    start_server(0, 1);
    uint64_t pages[2] = {7, 8};
    pp_decision two[2];
    pp_decision_init(&two[0]);
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
    pp_decision_init(&d);
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

/* ---- ABI: sizes, versions ------------------------------------------------ */

static void test_abi(void) {
    /* The init functions measure the caller's struct; the library checks it. */
    pp_options o;
    pp_options_init(&o);
    CHECK(o.size == sizeof o && o.fault_deadline_ms == 5 && o.fault_fallback == 1 &&
              o.breaker_base_ms == 50 && o.breaker_max_ms == 1000,
          "fault option defaults: deadline %ld fallback %d breaker %ld..%ld", o.fault_deadline_ms,
          o.fault_fallback, o.breaker_base_ms, o.breaker_max_ms);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    CHECK(cfg.size == sizeof cfg && cfg.max_slots == -1 && cfg.near_window == -1 && cfg.rtt_us == -1.0 &&
              cfg.page_us == -1.0 && cfg.fault_fee == -1.0,
          "dp-plus fields default to the server's");
    pp_decision d;
    pp_decision_init(&d);
    CHECK(d.size == sizeof d && d.count == 0, "decision init");
    CHECK(strcmp(pp_outcome_name(PP_FALLBACK), "fallback") == 0, "fallback outcome name");
    CHECK(pp_version_num() == PP_VERSION_NUM, "pp_version_num");

    /* A program built against a newer MINOR (or another MAJOR) is refused at init. */
    CHECK(pp_global_init_version(PP_VERSION_NUM) == 0, "same version");
    CHECK(pp_global_init_version((PP_VERSION_MAJOR << 16) | (PP_VERSION_MINOR << 8) | 99) == 0,
          "a newer PATCH is fine");
    CHECK(pp_global_init_version((PP_VERSION_MAJOR << 16) | ((PP_VERSION_MINOR + 1) << 8)) == -1,
          "a newer MINOR is refused");
    CHECK(pp_global_init_version((PP_VERSION_MAJOR + 1) << 16) == -1, "another MAJOR is refused");

    /* Structs not filled by their init function are refused, saying so. */
    pp_options raw;
    memset(&raw, 0, sizeof raw);
    raw.base_url = "http://127.0.0.1:1";
    pp_client *bad = pp_client_new(&raw);
    CHECK(bad != NULL && pp_client_err(bad) == PP_ERR_INVALID &&
              strstr(pp_client_errstr(bad), "pp_options_init") != NULL,
          "options without size: %s", pp_client_errstr(bad));
    pp_client_free(bad);
    /* A caller built against a newer header than this library: refused, not misread. */
    struct {
        pp_options o;
        long newer;
    } big_opts;
    pp_options_init_sized(&big_opts.o, sizeof big_opts);
    CHECK(big_opts.o.fault_deadline_ms == 5 && big_opts.newer == 0, "init of a bigger struct");
    bad = pp_client_new(&big_opts.o);
    CHECK(bad != NULL && pp_client_err(bad) == PP_ERR_INVALID, "options bigger than known: invalid");
    pp_client_free(bad);

    pp_client *c = client_for(base_url, 5000, 3, 1);
    pp_session_config raw_cfg;
    memset(&raw_cfg, 0, sizeof raw_cfg);
    CHECK_ERR(pp_session_create(c, "abi-1", &raw_cfg), c, PP_ERR_INVALID);
    CHECK(strstr(pp_client_errstr(c), "pp_session_config_init") != NULL, "says how: %s", pp_client_errstr(c));
    CHECK_ERR(pp_session_register(c, "abi-1", &raw_cfg), c, PP_ERR_INVALID);
    pp_session_config nan_cfg;
    pp_session_config_init(&nan_cfg);
    nan_cfg.rtt_us = 0.0 / 0.0;
    CHECK_ERR(pp_session_create(c, "abi-1", &nan_cfg), c, PP_ERR_INVALID);
    CHECK(strstr(pp_client_errstr(c), "rtt_us") != NULL, "a NaN names its field: %s", pp_client_errstr(c));

    CHECK_OK(pp_session_create(c, "abi-1", NULL), c);
    pp_decision raw_d;
    memset(&raw_d, 0, sizeof raw_d);
    CHECK_ERR(pp_fault_page(c, "abi-1", 1, 0, &raw_d), c, PP_ERR_INVALID);
    CHECK(strstr(pp_client_errstr(c), "pp_decision_init") != NULL, "says how: %s", pp_client_errstr(c));

    /* A bigger decision (a newer caller): the library writes what it knows, nothing past it. */
    struct {
        pp_decision d;
        uint64_t newer;
    } big[3];
    pp_decision_init_sized(&big[0].d, sizeof big[0]);
    for (int i = 0; i < 3; i++) big[i].newer = 0x5EED0000u + (uint64_t)i;
    CHECK_OK(pp_fault_page(c, "abi-1", 100, 0, &big[0].d), c);
    CHECK(big[0].d.outcome == PP_FIRST && big[0].d.start <= 100 && big[0].newer == 0x5EED0000u &&
              big[0].d.size == sizeof big[0],
          "bigger decision: written in place, tail untouched");
    /* A batch uses out[0].size as the stride. */
    uint64_t pages[3] = {5000, 5001, 90000};
    CHECK_OK(pp_faults_page(c, "abi-1", pages, NULL, 3, &big[0].d), c);
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= big[i].d.size == sizeof big[0] && big[i].newer == 0x5EED0000u + (uint64_t)i &&
              big[i].d.start <= pages[i] && pages[i] < big[i].d.start + big[i].d.count;
    CHECK(ok, "batch decisions at the caller's stride");
    CHECK_OK(pp_session_delete(c, "abi-1"), c);

    /* Library-allocated documents carry their size, reached through pointers. */
    pp_session *s = NULL;
    CHECK_OK(pp_session_create_ex(c, "abi-2", NULL, &s), c);
    CHECK(s != NULL && s->size == sizeof *s && s->config != NULL && s->config->size == sizeof *s->config &&
              s->stats != NULL && s->stats->size == sizeof *s->stats &&
              PP_HAS_FIELD(s->config, pp_session_config, page_us),
          "document sizes");
    pp_session_free(s);
    CHECK_OK(pp_session_delete(c, "abi-2"), c);
    pp_client_free(c);
}

/* ---- The fault path fails fast and degrades ------------------------------ */

static long elapsed_ms(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Lets a fake's threads catch up with what the client sent. */
static void settle(void) {
    sleep_ms(100);
}

/* A server that accepts and never answers: one fault waits its deadline (default 5 ms),
 * answers the fallback, and the breaker keeps the next faults from asking. */
static void test_fault_hanging(void) {
    fake f;
    fake_start(&f, NULL);
    /* Default deadline and fallback; a breaker period long enough that it cannot end
     * by accident during the test. */
    pp_client *c = fault_client(f.url, 0, 10000, 10000);
    CHECK_OK(pp_session_register(c, "hang", NULL), c); /* no request */
    pp_decision d;
    pp_decision_init(&d);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pp_fault_page(c, "hang", 1234, 0, &d);
    long ms = elapsed_ms(&t0);
    CHECK(rc == 0 && d.outcome == PP_FALLBACK && d.start == 1234 && d.count == 1 &&
              d.addr == 1234ull * 4096 && d.bytes == 4096 && d.ntest == 0,
          "fallback: rc %d outcome %s [%llu,+%llu)", rc, pp_outcome_name(d.outcome),
          (unsigned long long)d.start, (unsigned long long)d.count);
    CHECK(pp_client_err(c) == PP_ERR_TIMEOUT && strstr(pp_client_errstr(c), "deadline") != NULL,
          "the fallback says why: %s: %s", pp_err_name(pp_client_err(c)), pp_client_errstr(c));
    /* Not a timing assertion: 5 ms × retries would be under a second on any machine;
     * before the deadline existed this call blocked 20 s. */
    CHECK(ms < 2000, "returned after %ld ms", ms);
    long period = 0;
    CHECK(pp_client_breaker_ms(c, &period) > 0 && period == 10000, "breaker open: period %ld", period);

    /* While open: fallbacks at once, nothing sent. */
    rc = pp_fault_addr(c, "hang", 4096ull * 77 + 5, 1, &d);
    CHECK(rc == 0 && d.outcome == PP_FALLBACK && d.start == 77 && d.addr == 4096ull * 77,
          "fallback by address: page %llu", (unsigned long long)d.start);
    CHECK(strstr(pp_client_errstr(c), "asking again") != NULL, "open breaker says so: %s",
          pp_client_errstr(c));
    rc = pp_session_register(c, "hang-8k", &(pp_session_config){0}); /* invalid: size 0 */
    CHECK(rc == -1, "register checks its config");
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.page_size = 8192;
    CHECK_OK(pp_session_register(c, "hang-8k", &cfg), c);
    rc = pp_fault_addr(c, "hang-8k", 8192ull * 9 + 100, 0, &d);
    CHECK(rc == 0 && d.outcome == PP_FALLBACK && d.start == 9 && d.addr == 8192ull * 9 && d.bytes == 8192,
          "fallback in the registered page size: page %llu bytes %llu", (unsigned long long)d.start,
          (unsigned long long)d.bytes);
    settle();
    CHECK(fake_requests(&f) == 1, "one request in all, none while the breaker is open: %d",
          fake_requests(&f));
    pp_client_free(c);

    /* Without fallback: the deadline's error, no breaker, every call asks. */
    pp_options o;
    pp_options_init(&o);
    o.base_url = f.url;
    o.fault_fallback = 0;
    o.fault_deadline_ms = 50;
    c = pp_client_new(&o);
    CHECK_ERR(pp_fault_page(c, "hang", 1, 0, &d), c, PP_ERR_TIMEOUT);
    CHECK(pp_client_breaker_ms(c, &period) == 0 && period == 0, "no breaker without fallback");
    CHECK_ERR(pp_fault_page(c, "hang", 2, 0, &d), c, PP_ERR_TIMEOUT);
    settle();
    CHECK(fake_requests(&f) == 3, "both asked: %d requests in all", fake_requests(&f));
    pp_client_free(c);
    fake_stop(&f);
}

/* Nothing listens: the fallback at once (a refused connection is not retried). */
static void test_fault_refused(void) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    pp_client *c = fault_client(url, 1000, -1, -1);
    pp_decision d;
    pp_decision_init(&d);
    int rc = pp_fault_page(c, "x", 42, 0, &d);
    CHECK(rc == 0 && d.outcome == PP_FALLBACK && d.start == 42 && d.count == 1, "refused: fallback, rc %d %s",
          rc, pp_outcome_name(d.outcome));
    CHECK(pp_client_err(c) == PP_ERR_IO, "the cause: %s", pp_err_name(pp_client_err(c)));
    long period = 0;
    CHECK(pp_client_breaker_ms(c, &period) > 0 && period == 50, "default breaker period: %ld", period);
    /* Batches are admin calls: their error, never a fallback. */
    uint64_t pages[1] = {1};
    CHECK_ERR(pp_faults_page(c, "x", pages, NULL, 1, &d), c, PP_ERR_IO);
    pp_client_free(c);
}

/* A 503 with Retry-After (a draining server): retried within the deadline, on a new connection. */
static void test_fault_503(void) {
    static char unavailable[512], decision[512];
    static const char problem[] =
        "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"draining\"}";
    snprintf(
        unavailable, sizeof unavailable,
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/problem+json\r\n"
        "Content-Length: %zu\r\n\r\n%s",
        strlen(problem), problem);
    answer_200(decision, sizeof decision,
               "{\"start\":40,\"count\":8,\"outcome\":\"first\",\"ntest\":1,\"nmin\":1,"
               "\"nmax\":512,\"addr\":163840,\"bytes\":32768}");
    const char *const then_ok[] = {unavailable, decision};
    fake f;
    fake_start_script(&f, NULL, then_ok, 2);
    pp_client *c = fault_client(f.url, 1000, -1, -1);
    pp_decision d;
    pp_decision_init(&d);
    CHECK_OK(pp_fault_page(c, "drain", 41, 0, &d), c);
    CHECK(d.outcome == PP_FIRST && d.start == 40 && d.count == 8, "the retry's decision: %s",
          pp_outcome_name(d.outcome));
    CHECK(fake_requests(&f) == 2 && fake_connections(&f) == 2,
          "503 retried on a new connection: %d requests, %d connections", fake_requests(&f),
          fake_connections(&f));
    long period = -1;
    CHECK(pp_client_breaker_ms(c, &period) == 0 && period == 0, "a decision keeps the breaker closed");
    pp_client_free(c);
    fake_stop(&f);

    /* Always 503: max_retries (3) retries, then the fallback; the breaker stays open
     * for the Retry-After (1 s), up to its cap. */
    fake_start(&f, unavailable);
    c = fault_client(f.url, 1000, -1, -1);
    int rc = pp_fault_page(c, "drain", 41, 0, &d);
    CHECK(rc == 0 && d.outcome == PP_FALLBACK && d.start == 41, "503s: fallback");
    CHECK(pp_client_err(c) == PP_ERR_HTTP && pp_client_http_status(c) == 503 &&
              strstr(pp_client_errstr(c), "draining") != NULL,
          "the cause: %d %s", pp_client_http_status(c), pp_client_errstr(c));
    CHECK(fake_requests(&f) == 4, "1 + 3 retries: %d requests", fake_requests(&f));
    CHECK(pp_client_breaker_ms(c, &period) > 0 && period == 1000, "open for Retry-After: %ld", period);
    pp_client_free(c);
    fake_stop(&f);

    /* A 4xx is the oracle saying no: an error, not a fallback, and no breaker. */
    static char conflict[512];
    snprintf(conflict, sizeof conflict,
             "HTTP/1.1 422 Unprocessable Content\r\nContent-Type: application/problem+json\r\n"
             "Content-Length: 21\r\n\r\n{\"detail\":\"too far\"}\n");
    fake_start(&f, conflict);
    c = fault_client(f.url, 1000, -1, -1);
    CHECK_ERR(pp_fault_page(c, "x", 1, 0, &d), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 422 && pp_client_breaker_ms(c, NULL) == 0, "422: error, no breaker");
    pp_client_free(c);
    fake_stop(&f);
}

/* The breaker doubles per failed probe up to its cap, and closes when the real server is back. */
static void test_fault_recovery(void) {
    pp_client *c = fault_client(base_url, 2000, 40, 160);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.max_pages = 64;
    CHECK_OK(pp_session_create(c, "recover-1", &cfg), c);
    pp_decision d;
    pp_decision_init(&d);
    CHECK_OK(pp_fault_page(c, "recover-1", 10, 0, &d), c);
    CHECK(d.outcome == PP_FIRST, "the oracle decides: %s", pp_outcome_name(d.outcome));

    stop_server();
    long expect[] = {40, 80, 160, 160};
    for (int i = 0; i < 4; i++) {
        while (pp_client_breaker_ms(c, NULL) > 0) sleep_ms(5); /* wait for the probe */
        int rc = pp_fault_page(c, "recover-1", 20 + (uint64_t)i, 0, &d);
        long period = 0;
        pp_client_breaker_ms(c, &period);
        CHECK(rc == 0 && d.outcome == PP_FALLBACK && period == expect[i],
              "probe %d: %s, period %ld (want %ld)", i, pp_outcome_name(d.outcome), period, expect[i]);
    }
    start_server(0, 1);
    while (pp_client_breaker_ms(c, NULL) > 0) sleep_ms(5);
    /* Back: the session is re-created from the config this client knows. */
    CHECK_OK(pp_fault_page(c, "recover-1", 500, 0, &d), c);
    long period = -1;
    pp_client_breaker_ms(c, &period);
    CHECK(d.outcome == PP_FIRST && period == 0, "recovered: %s, breaker period %ld",
          pp_outcome_name(d.outcome), period);
    pp_session *s = NULL;
    CHECK_OK(pp_session_get(c, "recover-1", &s), c);
    CHECK(s != NULL && s->config->max_pages == 64, "re-created with its config");
    pp_session_free(s);
    CHECK_OK(pp_session_delete(c, "recover-1"), c);
    pp_client_free(c);
}

/* Per-thread clients that only fault recover a session across a real restart:
 * each knows the config through pp_session_register (no request). */
static void test_register_restart(void) {
    pp_client *creator = client_for(base_url, 2000, 10, 1);
    pp_client *worker = client_for(base_url, 2000, 10, 1);
    pp_client *stranger = client_for(base_url, 2000, 10, 1);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.max_pages = 96;
    cfg.page_size = 8192;
    pp_label labels[] = {{"vm", "r1"}};
    cfg.labels = labels;
    cfg.nlabels = 1;
    CHECK_OK(pp_session_register(worker, "reg-1", &cfg), worker);
    pp_session *s = (pp_session *)1;
    CHECK_ERR(pp_session_get(stranger, "reg-1", &s), stranger, PP_ERR_HTTP);
    CHECK(pp_client_http_status(stranger) == 404, "register sends nothing: no session yet");
    CHECK_OK(pp_session_create(creator, "reg-1", &cfg), creator);
    pp_decision d;
    pp_decision_init(&d);
    CHECK_OK(pp_fault_page(worker, "reg-1", 10, 1, &d), worker);

    stop_server();
    start_server(0, 1);
    /* The worker faults first: 404, re-created from the registered config, decided. */
    CHECK_OK(pp_fault_page(worker, "reg-1", 300, 1, &d), worker);
    CHECK(d.outcome == PP_FIRST && d.bytes == d.count * 8192, "worker re-created the session: %s",
          pp_outcome_name(d.outcome));
    /* The creator then finds it (no 404) and faults on. */
    CHECK_OK(pp_fault_page(creator, "reg-1", 900, 0, &d), creator);
    s = NULL;
    CHECK_OK(pp_session_get(stranger, "reg-1", &s), stranger);
    CHECK(s != NULL && s->config->max_pages == 96 && s->config->page_size == 8192 &&
              s->config->nlabels == 1 && s->stats->faults == 2,
          "one session, the registered config, both clients' faults: %lld",
          s != NULL ? (long long)s->stats->faults : -1LL);
    pp_session_free(s);

    /* The other order, after another restart: the creator first, the worker's re-creation
     * is then an identical PUT (200) or not needed at all. */
    stop_server();
    start_server(0, 1);
    CHECK_OK(pp_fault_page(creator, "reg-1", 10, 0, &d), creator);
    CHECK_OK(pp_fault_page(worker, "reg-1", 20, 1, &d), worker);
    /* A client that knows nothing of the session gets the 404: an error, not a fallback. */
    stop_server();
    start_server(0, 1);
    pp_client *unaware = fault_client(base_url, 2000, -1, -1);
    CHECK_ERR(pp_fault_page(unaware, "reg-1", 10, 0, &d), unaware, PP_ERR_HTTP);
    CHECK(pp_client_http_status(unaware) == 404, "unknown session: 404");
    pp_client_free(unaware);
    CHECK_OK(pp_fault_page(worker, "reg-1", 30, 1, &d), worker);
    CHECK_OK(pp_session_delete(worker, "reg-1"), worker); /* a registered session can be deleted */
    pp_client_free(stranger);
    pp_client_free(worker);
    pp_client_free(creator);
}

/* ---- Asynchronous faults ------------------------------------------------- */

/* Runs an event loop on pp_fault_pollinfo until the decision is there. */
static int collect_with_poll(pp_client *c, pp_decision *d, long *max_timeout) {
    for (int guard = 0; guard < 100000; guard++) {
        int rc = pp_fault_collect(c, 0, d);
        if (rc != PP_PENDING) return rc;
        int fd = -1;
        long ms = -1;
        if (pp_fault_pollinfo(c, &fd, &ms) != 0 || fd < 0) return -2;
        if (ms > *max_timeout) *max_timeout = ms;
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, (int)ms);
    }
    return -3;
}

static void test_async_real(void) {
    pp_client *c = fault_client(base_url, 2000, -1, -1);
    pp_client *sync = client_for(base_url, 2000, 3, 1);
    CHECK_OK(pp_session_create(c, "async-1", NULL), c);
    CHECK_OK(pp_session_create(sync, "async-2", NULL), sync);
    pp_decision d, one;
    pp_decision_init(&d);
    pp_decision_init(&one);

    /* The same faults asynchronously and one by one decide the same windows. */
    uint64_t pages[] = {1000, 1001, 1002, 1010, 5000, 1003};
    int same = 0;
    long max_timeout = 0;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        CHECK_OK(pp_fault_submit_page(c, "async-1", pages[i], 2), c);
        int rc = collect_with_poll(c, &d, &max_timeout);
        CHECK(rc == 0, "collect %zu: rc %d: %s", i, rc, pp_client_errstr(c));
        if (pp_fault_page(sync, "async-2", pages[i], 2, &one) != 0) break;
        same += d.start == one.start && d.count == one.count && d.outcome == one.outcome;
    }
    CHECK(same == 6, "async equals sync: %d of 6", same);
    CHECK(max_timeout <= 2000, "the timeout hint never passes the deadline: %ld", max_timeout);

    /* By address, collected with a blocking wait. */
    CHECK_OK(pp_fault_submit_addr(c, "async-1", 4096ull * 70000, 0), c);
    CHECK(pp_fault_collect(c, -1, &d) == 0 && d.start <= 70000 && 70000 < d.start + d.count &&
              d.outcome == PP_FIRST,
          "addr: [%llu,+%llu) %s", (unsigned long long)d.start, (unsigned long long)d.count,
          pp_outcome_name(d.outcome));

    /* One fault at a time; other calls wait for it. */
    CHECK_OK(pp_fault_submit_page(c, "async-1", 7, 0), c);
    CHECK_ERR(pp_fault_submit_page(c, "async-1", 8, 0), c, PP_ERR_INVALID);
    CHECK_ERR(pp_fault_page(c, "async-1", 8, 0, &d), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_get(c, "async-1", &(pp_session *){NULL}), c, PP_ERR_INVALID);
    pp_decision raw;
    memset(&raw, 0, sizeof raw);
    CHECK(pp_fault_collect(c, -1, &raw) == -1 && pp_client_err(c) == PP_ERR_INVALID, "collect checks out");
    CHECK(pp_fault_collect(c, -1, &d) == 0 && d.start <= 7 && 7 < d.start + d.count, "still collected");
    CHECK_ERR(pp_fault_collect(c, 0, &d), c, PP_ERR_INVALID); /* nothing submitted */
    int fd;
    long ms;
    CHECK(pp_fault_pollinfo(c, &fd, &ms) == -1, "pollinfo without a fault");
    /* Cancel, then the client is usable again. */
    CHECK_OK(pp_fault_submit_page(c, "async-1", 9, 0), c);
    pp_fault_cancel(c);
    pp_fault_cancel(c);
    pp_fault_cancel(NULL);
    CHECK_OK(pp_fault_page(c, "async-1", 9, 0, &d), c);
    CHECK_OK(pp_session_delete(c, "async-1"), c);
    CHECK_OK(pp_session_delete(sync, "async-2"), sync);
    pp_client_free(sync);
    pp_client_free(c);
}

static void test_async_hanging(void) {
    fake f;
    fake_start(&f, NULL);
    /* A deadline far away: the fault is surely pending right after the submit. */
    pp_client *c = fault_client(f.url, 60000, 10000, 10000);
    pp_decision d;
    pp_decision_init(&d);
    CHECK_OK(pp_fault_submit_page(c, "hang", 5, 0), c);
    CHECK(pp_fault_collect(c, 0, &d) == PP_PENDING, "pending");
    CHECK(pp_fault_collect(c, 20, &d) == PP_PENDING, "still pending after a short wait");
    int fd = -1;
    long ms = -1;
    CHECK(pp_fault_pollinfo(c, &fd, &ms) == 0 && fd >= 0 && ms > 0 && ms <= 60000, "pollinfo: fd %d, %ld ms",
          fd, ms);
    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0, "nothing to read from a silent server");
    pp_fault_cancel(c);
    pp_client_free(c);

    /* The deadline passes inside an event loop: the fallback, then the breaker. */
    c = fault_client(f.url, 100, 10000, 10000);
    CHECK_OK(pp_fault_submit_page(c, "hang", 6, 3), c);
    long max_timeout = 0;
    int rc = collect_with_poll(c, &d, &max_timeout);
    CHECK(rc == 0 && d.outcome == PP_FALLBACK && d.start == 6, "deadline in the loop: rc %d %s", rc,
          pp_outcome_name(d.outcome));
    CHECK(max_timeout <= 100, "hint within the deadline: %ld", max_timeout);
    int before = fake_requests(&f);
    CHECK_OK(pp_fault_submit_page(c, "hang", 7, 3), c);
    CHECK(pp_fault_collect(c, 0, &d) == 0 && d.outcome == PP_FALLBACK, "breaker open: ready at submit");
    settle();
    CHECK(fake_requests(&f) == before, "nothing sent while open");
    pp_client_free(c);
    fake_stop(&f);
}

/* ---- dp-plus fields: written and read (the real server's check below) ----- */

static void test_dp_plus_json(void) {
    /* What the client sends: a fake records the PUT body. */
    static char doc_answer[4096];
    const char *doc =
        "{\"id\":\"plus-1\",\"config\":{\"policy\":\"dp-plus\",\"memory_pages\":0,\"page_size\":4096,"
        "\"max_pages\":512,\"max_slots\":32,\"transitions\":16,\"half_life\":10,\"near_window\":0,"
        "\"probe_staleness\":1000,\"fault_fee\":1.1,\"min_evidence\":0.01,\"rtt_us\":250.5,"
        "\"page_us\":32.768,\"labels\":{},\"some_new_field\":{\"x\":[1,2]}},"
        "\"state\":{\"slots\":[{\"start\":1,\"weight\":0.5}],\"streams\":[{\"s\":\"not dp\"}],"
        "\"nmin\":\"not an integer\"},"
        "\"stats\":{\"faults\":3,\"first\":1,\"smaller\":1,\"larger\":0,\"reverse\":0,\"repeat\":1,"
        "\"pages_advised\":40,\"created_at\":\"2026-01-01T00:00:00Z\",\"last_fault_at\":null,"
        "\"later\":7}}";
    snprintf(doc_answer, sizeof doc_answer,
             "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(doc), doc);
    fake f;
    fake_start(&f, doc_answer);
    pp_client *c = client_for(f.url, 2000, 0, 1);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.policy = "dp-plus";
    cfg.max_slots = 32;
    cfg.transitions = 16;
    cfg.half_life = 10;
    cfg.near_window = 0;
    cfg.fault_fee = 1.1;
    cfg.rtt_us = 250.5;
    cfg.page_us = 32.768;
    pp_session *s = NULL;
    CHECK_OK(pp_session_create_ex(c, "plus-1", &cfg, &s), c);
    pthread_mutex_lock(&f.lock);
    char body[4096];
    snprintf(body, sizeof body, "%s", f.last_body);
    pthread_mutex_unlock(&f.lock);
    CHECK(strstr(body, "\"policy\":\"dp-plus\"") && strstr(body, "\"max_slots\":32") &&
              strstr(body, "\"transitions\":16") && strstr(body, "\"half_life\":10") &&
              strstr(body, "\"near_window\":0") && strstr(body, "\"rtt_us\":250.5") &&
              strstr(body, "\"fault_fee\":1.1") && strstr(body, "\"page_us\":32.76"),
          "PUT body: %s", body);
    CHECK(!strstr(body, "probe_staleness") && !strstr(body, "min_evidence") && !strstr(body, "min_pages"),
          "unset fields are left out: %s", body);
    /* Numbers in the body parse back to exactly the doubles sent. */
    const char *rtt = strstr(body, "\"page_us\":");
    CHECK(rtt != NULL && strtod(rtt + 10, NULL) == 32.768, "page_us exact");

    /* What the client reads: dp-plus fields, integers as doubles, unknown members and
     * a dp-plus state of its own kind ignored. */
    CHECK(s != NULL && strcmp(s->config->policy, "dp-plus") == 0 && s->config->max_slots == 32 &&
              s->config->transitions == 16 && s->config->half_life == 10 && s->config->near_window == 0 &&
              s->config->probe_staleness == 1000.0 && s->config->fault_fee == 1.1 &&
              s->config->min_evidence == 0.01 && s->config->rtt_us == 250.5 && s->config->page_us == 32.768,
          "dp-plus config read back");
    CHECK(s != NULL && s->config->min_pages == -1 && s->config->k == -1 && s->config->forward_pages == -1,
          "dp's fields absent: -1");
    CHECK(s != NULL && s->nmin == 0 && s->nstreams == 0 && s->stats->faults == 3 && s->stats->smaller == 1,
          "state of another policy left unread, stats read");
    pp_session_free(s);
    pp_client_free(c);
    fake_stop(&f);
}

/* On the real server: the fields round-trip with policy dp-plus, and are refused with dp. */
static void test_dp_plus_server(void) {
    pp_client *c = client_for(base_url, 5000, 3, 1);
    pp_session_config cfg;
    pp_session_config_init(&cfg);
    cfg.policy = "dp-plus";
    CHECK_OK(pp_session_create(c, "plus-probe", &cfg), c);
    CHECK_OK(pp_session_delete(c, "plus-probe"), c);
    cfg.max_pages = 128;
    cfg.max_slots = 32;
    cfg.transitions = 16;
    cfg.half_life = 10;
    cfg.near_window = 4;
    cfg.probe_staleness = 500;
    cfg.fault_fee = 2.5;
    cfg.min_evidence = 0.05;
    cfg.rtt_us = 250.5;
    cfg.page_us = 32.768;
    pp_session *s = NULL;
    CHECK_OK(pp_session_create_ex(c, "plus-1", &cfg, &s), c);
    CHECK(s != NULL && s->config->max_slots == 32 && s->config->transitions == 16 &&
              s->config->half_life == 10 && s->config->near_window == 4 &&
              s->config->probe_staleness == 500 && s->config->fault_fee == 2.5 &&
              s->config->min_evidence == 0.05 && s->config->rtt_us == 250.5 && s->config->page_us == 32.768,
          "dp-plus fields round trip through the server");
    pp_session_free(s);
    CHECK_OK(pp_session_create(c, "plus-1", &cfg), c);
    CHECK(pp_client_http_status(c) == 200, "the identical PUT: 200, got %d", pp_client_http_status(c));
    pp_decision d;
    pp_decision_init(&d);
    CHECK_OK(pp_fault_page(c, "plus-1", 100, 0, &d), c);
    CHECK(d.outcome == PP_FIRST || d.outcome == PP_SMALLER || d.outcome == PP_REPEAT, "dp-plus outcome: %s",
          pp_outcome_name(d.outcome));
    s = NULL;
    CHECK_OK(pp_session_get(c, "plus-1", &s), c);
    CHECK(s != NULL && s->stats->faults == 1, "a dp-plus document reads");
    pp_session_free(s);
    CHECK_OK(pp_session_delete(c, "plus-1"), c);
    /* dp-plus's fields with another policy, dp's fields with dp-plus: 400 naming the field. */
    pp_session_config_init(&cfg);
    cfg.policy = "dp";
    cfg.rtt_us = 100;
    CHECK_ERR(pp_session_create(c, "plus-2", &cfg), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400 && strstr(pp_client_errstr(c), "rtt_us") != NULL,
          "rtt_us on dp: %s", pp_client_errstr(c));
    pp_session_config_init(&cfg);
    cfg.policy = "dp-plus";
    cfg.k = 4;
    CHECK_ERR(pp_session_create(c, "plus-2", &cfg), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400 && strstr(pp_client_errstr(c), "k") != NULL, "k on dp-plus: %s",
          pp_client_errstr(c));
    pp_client_free(c);
}

/* pp_session_export / pp_session_import: a session moved under another id decides what the
 * original decides; the moved session keeps its counters; the importing client re-creates it
 * after a 404 with the document's config; a document the server refuses is a 400 naming the field. */
static void test_session_state(void) {
    pp_client *c = client_for(base_url, 5000, 3, 1);
    pp_client *other = client_for(base_url, 5000, 3, 0);
    const char *policies[] = {"dp-plus", "dp"};
    for (int k = 0; k < 2; k++) {
        pp_session_config cfg;
        pp_session_config_init(&cfg);
        cfg.policy = policies[k];
        cfg.max_pages = 64;
        CHECK_OK(pp_session_create(c, "state-a", &cfg), c);
        pp_decision d, e;
        pp_decision_init(&d);
        pp_decision_init(&e);
        uint64_t page = 1000;
        for (int i = 0; i < 200; i++) {
            page = i % 7 == 0 ? page * 31 % 1000003 : page + 1;
            CHECK_OK(pp_fault_page(c, "state-a", page, (uint32_t)(i % 2), &d), c);
        }
        char *doc = NULL;
        size_t len = 0;
        CHECK_OK(pp_session_export(c, "state-a", &doc, &len), c);
        CHECK(doc != NULL && len == strlen(doc) &&
                  strstr(doc, "\"format\":\"prepage-session-state\"") != NULL,
              "an exported document: %.80s", doc != NULL ? doc : "(null)");
        CHECK_OK(pp_session_import(c, "state-b", doc, (ptrdiff_t)len), c);
        CHECK(pp_client_http_status(c) == 201, "import creates: %d", pp_client_http_status(c));
        CHECK_OK(pp_session_import(c, "state-b", doc, -1), c);
        CHECK(pp_client_http_status(c) == 200, "import again replaces: %d", pp_client_http_status(c));
        pp_free(doc);
        int same = 1;
        for (int i = 0; i < 200; i++) {
            page = i % 5 == 0 ? page * 17 % 1000003 : page + 1;
            CHECK_OK(pp_fault_page(c, "state-a", page, (uint32_t)(i % 2), &d), c);
            CHECK_OK(pp_fault_page(c, "state-b", page, (uint32_t)(i % 2), &e), c);
            if (d.start != e.start || d.count != e.count || d.outcome != e.outcome) same = 0;
        }
        CHECK(same, "%s: the imported session decides as the original", policies[k]);
        pp_session *s = NULL;
        CHECK_OK(pp_session_get(c, "state-b", &s), c);
        CHECK(s != NULL && s->stats->faults == 400 && s->config->max_pages == 64,
              "counters and config moved: %lld faults", s != NULL ? (long long)s->stats->faults : -1LL);
        pp_session_free(s);
        /* Deleted behind the importing client's back: re-created with the document's config. */
        CHECK_OK(pp_session_delete(other, "state-b"), other);
        CHECK_OK(pp_fault_page(c, "state-b", 5, 0, &d), c);
        CHECK(d.outcome == PP_FIRST, "re-created after a 404: %s", pp_outcome_name(d.outcome));
        s = NULL;
        CHECK_OK(pp_session_get(c, "state-b", &s), c);
        CHECK(s != NULL && s->config->max_pages == 64 && strcmp(s->config->policy, policies[k]) == 0,
              "re-created with the document's config");
        pp_session_free(s);
        CHECK_OK(pp_session_delete(c, "state-a"), c);
        CHECK_OK(pp_session_delete(c, "state-b"), c);
    }
    char *doc = NULL;
    CHECK_ERR(pp_session_export(c, "state-none", &doc, NULL), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 404 && doc == NULL, "no state for a missing session");
    CHECK_ERR(pp_session_import(c, "state-c", "not json", -1), c, PP_ERR_INVALID);
    CHECK_ERR(pp_session_import(c, "state-c", "{\"config\":{},\"version\":9}", -1), c, PP_ERR_HTTP);
    CHECK(pp_client_http_status(c) == 400 && strstr(pp_client_errstr(c), "state.") != NULL,
          "a refused document names the field: %s", pp_client_errstr(c));
    pp_free(NULL);
    pp_client_free(other);
    pp_client_free(c);
}

/* Every field of PrepageCore's table (config_fields.h, generated from it and kept current
 * by the Swift tests) through libprepage's table, pp_session_config_fields(): set to a
 * value other than its default, created on the real server, read back from the created
 * document and from a GET. A field the core has and session.c's table lacks fails here. */
static void test_config_fields(pp_client *c) {
    size_t n = 0;
    const pp_config_field *lib = pp_session_config_fields(&n);
    size_t ncore = sizeof core_fields / sizeof core_fields[0];
    CHECK(lib != NULL && n > 0, "the library's field table");
    for (size_t i = 0; i < n; i++) {
        int known = 0;
        for (size_t j = 0; j < ncore; j++) known |= strcmp(lib[i].name, core_fields[j].name) == 0;
        CHECK(known, "libprepage's field %s is not in PrepageCore's table", lib[i].name);
    }
    for (size_t j = 0; j < ncore; j++) {
        const core_field *t = &core_fields[j];
        const pp_config_field *f = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(lib[i].name, t->name) == 0) f = &lib[i];
        CHECK(f != NULL, "session.c's field table has no %s (PrepageCore's table has)", t->name);
        if (f == NULL) continue;
        pp_session_config cfg;
        pp_session_config_init(&cfg);
        cfg.policy = t->policy;
        char *at = (char *)&cfg + f->offset;
        int64_t want_int = strtoll(t->value, NULL, 10);
        double want_real = strtod(t->value, NULL);
        switch (f->type) {
            case PP_CONFIG_STRING: memcpy(at, &t->value, sizeof t->value); break;
            case PP_CONFIG_INT: memcpy(at, &want_int, sizeof want_int); break;
            case PP_CONFIG_DOUBLE: memcpy(at, &want_real, sizeof want_real); break;
        }
        char id[32];
        snprintf(id, sizeof id, "field-%zu", j);
        pp_session *made = NULL, *got = NULL;
        CHECK_OK(pp_session_create_ex(c, id, &cfg, &made), c);
        CHECK(pp_client_http_status(c) == 201, "%s: created, HTTP %d", t->name, pp_client_http_status(c));
        CHECK_OK(pp_session_get(c, id, &got), c);
        pp_session *docs[] = {made, got};
        for (int k = 0; k < 2; k++) {
            if (docs[k] == NULL) continue;
            const char *back = (const char *)docs[k]->config + f->offset;
            int same = 0;
            switch (f->type) {
                case PP_CONFIG_STRING: {
                    const char *v;
                    memcpy(&v, back, sizeof v);
                    same = v != NULL && strcmp(v, t->value) == 0;
                    break;
                }
                case PP_CONFIG_INT: {
                    int64_t v;
                    memcpy(&v, back, sizeof v);
                    same = v == want_int;
                    break;
                }
                case PP_CONFIG_DOUBLE: {
                    double v;
                    memcpy(&v, back, sizeof v);
                    same = v == want_real;
                    break;
                }
            }
            CHECK(same, "%s = %s (policy %s) read back from the %s", t->name, t->value, t->policy,
                  k == 0 ? "created document" : "GET");
        }
        pp_session_free(made);
        pp_session_free(got);
        CHECK_OK(pp_session_delete(c, id), c);
    }
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
    test_config_fields(c);
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
    test_abi();
    test_fault_hanging();
    test_fault_refused();
    test_fault_503();
    test_async_real();
    test_async_hanging();
    test_dp_plus_json();
    test_dp_plus_server();
    test_session_state();
    test_restart();
    test_fault_recovery();
    test_register_restart();

    stop_server();
    pp_global_cleanup();
    if (failed == 0 && getenv("PREPAGED_LOG") == NULL)
        unlink(log_path);
    else
        fprintf(stderr, "prepaged log: %s\n", log_path);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
