/*
 * client.c — a client's life, its one libcurl easy handle driven through a
 * multi handle, errors, retries and the re-creation of lost sessions.
 *
 * libcurl is used as git's http.c uses it — one easy handle per client (that
 * keeps the connection alive), connection options set once in pp_client_new,
 * per-request options (URL, method, body, timeouts) set on every call, the
 * error buffer inside the client, and no CURLOPT_FAILONERROR so that the
 * server's problem+json detail of a 4xx/5xx reaches the caller — except that
 * the handle runs in a multi handle of the client's own, driven with
 * curl_multi_socket_action over an epoll set (the "multi_socket" way): that
 * lets a fault stop at its deadline, run asynchronously, and give an event
 * loop one file descriptor to watch (pp_fault_pollinfo) whatever its number.
 * Admin calls run the same transfers to completion.
 */
#define _GNU_SOURCE

#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- Global ------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void global_init_once(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
    /* Seed jansson's hash function now, not racily on the first json_object(). */
    json_object_seed(0);
}

int pp_global_init_version(int header_version) {
    /* A program built against a newer MAJOR.MINOR may use what this library lacks. */
    if ((header_version >> 16) != PP_VERSION_MAJOR || (header_version >> 8) > (PP_VERSION_NUM >> 8))
        return -1;
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

void pp_global_cleanup(void) {
    if (global_rc == 0) curl_global_cleanup();
}

const char *pp_version(void) {
    return PP_VERSION_STRING;
}

int pp_version_num(void) {
    return PP_VERSION_NUM;
}

const char *pp_err_name(int err) {
    switch (err) {
        case PP_OK: return "ok";
        case PP_ERR_IO: return "io";
        case PP_ERR_TIMEOUT: return "timeout";
        case PP_ERR_HTTP: return "http";
        case PP_ERR_PROTOCOL: return "protocol";
        case PP_ERR_OOM: return "oom";
        case PP_ERR_INVALID: return "invalid";
        default: return "unknown";
    }
}

const char *const pp__outcome_names[PP__OUTCOMES] = {"first",   "smaller", "larger",
                                                     "reverse", "repeat",  "fallback"};

const char *pp_outcome_name(pp_outcome o) {
    return (unsigned)o < PP__OUTCOMES ? pp__outcome_names[o] : "unknown";
}

/* ---- Options and lifecycle ---------------------------------------------- */

static void options_defaults(pp_options *o) {
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->base_url = "http://127.0.0.1:7070";
    o->token = NULL;
    o->connect_timeout_ms = 1000;
    o->request_timeout_ms = 5000;
    o->max_retries = 3;
    o->retry_base_ms = 10;
    o->retry_max_ms = 1000;
    o->recreate_sessions = 1;
    o->fault_deadline_ms = 5;
    o->fault_fallback = 1;
    o->breaker_base_ms = 50;
    o->breaker_max_ms = 1000;
}

void pp_options_init_sized(pp_options *opts, size_t size) {
    if (opts == NULL) return;
    pp_options full;
    options_defaults(&full);
    full.size = size;
    if (size > sizeof full) {
        /* A caller built against a newer header: its newer fields start at zero. */
        memset((char *)opts + sizeof full, 0, size - sizeof full);
        memcpy(opts, &full, sizeof full);
    } else {
        memcpy(opts, &full, size);
    }
}

void pp_decision_init_sized(pp_decision *d, size_t size) {
    if (d == NULL) return;
    memset(d, 0, size);
    if (size >= sizeof d->size) d->size = size;
}

uint64_t pp__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pp__sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *userdata) {
    pp_client *c = userdata;
    size_t n = size * nmemb;
    if (c->answer.len + n + 1 > PP_MAX_ANSWER_BYTES) {
        c->answer_too_big = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (pp__buf_reserve(&c->answer, c->answer.len + n + 1) != 0) {
        c->answer_oom = 1;
        return 0;
    }
    memcpy(c->answer.data + c->answer.len, ptr, n);
    c->answer.len += n;
    return n;
}

static pp_sock *find_sock(pp_client *c, int fd) {
    for (int i = 0; i < PP_MAX_SOCKS; i++)
        if (c->socks[i].fd == fd) return &c->socks[i];
    return NULL;
}

/* Opens a connection's socket for libcurl and remembers it. */
static curl_socket_t on_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *a) {
    (void)purpose;
    pp_client *c = userp;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0) return CURL_SOCKET_BAD;
    pp_sock *slot = find_sock(c, -1);
    if (slot != NULL) *slot = (pp_sock){fd, 0, 0, 0};
    return fd;
}

/* Closes a connection's socket; closing takes it out of the epoll set too. */
static int on_close_socket(void *userp, curl_socket_t fd) {
    pp_client *c = userp;
    pp_sock *slot = find_sock(c, fd);
    if (slot != NULL) slot->fd = -1;
    return close(fd);
}

/*
 * libcurl says which sockets to watch: they go into the client's epoll set.
 * A connection socket of the client's own stays there when libcurl stops
 * watching it between requests (a kept-alive connection), so the next
 * request on it needs no epoll_ctl; an event on it meanwhile is silenced
 * (pp__xfer_step). Any other socket is added and removed as libcurl says.
 */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)e;
    (void)socketp;
    pp_client *c = userp;
    pp_sock *own = find_sock(c, s);
    if (what == CURL_POLL_REMOVE) {
        if (own != NULL)
            own->active = 0;
        else
            epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL); /* EBADF when already closed: fine */
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.data.fd = s;
    if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
    if (own != NULL) {
        own->active = 1;
        if (own->registered && own->events == ev.events) return 0;
        if (epoll_ctl(c->epfd, own->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) == 0) {
            own->registered = 1;
            own->events = ev.events;
        }
        return 0;
    }
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
        epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
    return 0;
}

/* libcurl says when it next needs a call without socket activity. */
static int on_timer(CURLM *m, long timeout_ms, void *userp) {
    (void)m;
    pp_client *c = userp;
    c->timer_ns = timeout_ms < 0 ? UINT64_MAX : pp__now_ns() + (uint64_t)timeout_ms * 1000000ull;
    return 0;
}

/* Marks a client unusable; every later call reports the same error. */
static pp_client *broken(pp_client *c, int err, const char *msg) {
    c->init_err = err;
    snprintf(c->init_errstr, sizeof c->init_errstr, "%s", msg);
    c->err = err;
    snprintf(c->errstr, sizeof c->errstr, "%s", msg);
    return c;
}

static char *dup_or_null(const char *s) {
    return s == NULL ? NULL : strdup(s);
}

pp_client *pp_client_new(const pp_options *opts) {
    pp_client *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->epfd = -1;
    c->timer_ns = UINT64_MAX;
    for (int i = 0; i < PP_MAX_SOCKS; i++) c->socks[i].fd = -1;
    options_defaults(&c->opts);
    c->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9E3779B97F4A7C15ull;
    if (opts != NULL) {
        if (opts->size < PP_OPTIONS_SIZE_1_0 || opts->size > sizeof c->opts) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "pp_options.size is %zu, not one this libprepage %s knows (%zu … %zu): fill the "
                     "options with pp_options_init() (and build against this library's prepage.h)",
                     opts->size, PP_VERSION_STRING, (size_t)PP_OPTIONS_SIZE_1_0, sizeof c->opts);
            return broken(c, PP_ERR_INVALID, msg);
        }
        memcpy(&c->opts, opts, opts->size);
        c->opts.size = sizeof c->opts;
    }
    const pp_options *o = &c->opts;
    const char *base = o->base_url;
    c->opts.base_url = NULL;
    const char *token = o->token;
    c->opts.token = NULL;

    if (base == NULL) return broken(c, PP_ERR_INVALID, "base_url is NULL");
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
        return broken(c, PP_ERR_INVALID, "base_url must start with http:// or https://");
    if (blen > PP_MAX_BASE_URL) return broken(c, PP_ERR_INVALID, "base_url is over 1024 bytes");
    if (token != NULL && strpbrk(token, "\r\n") != NULL)
        return broken(c, PP_ERR_INVALID, "token contains a line break");
    if (o->connect_timeout_ms < 0 || o->request_timeout_ms < 0 || o->max_retries < 0 ||
        o->retry_base_ms < 0 || o->retry_max_ms < 0)
        return broken(c, PP_ERR_INVALID, "timeouts and retry counts must be >= 0");
    if (o->fault_deadline_ms < 1)
        return broken(c, PP_ERR_INVALID, "fault_deadline_ms must be >= 1 (milliseconds)");
    if (o->breaker_base_ms < 0 || o->breaker_max_ms < o->breaker_base_ms)
        return broken(c, PP_ERR_INVALID,
                      "breaker_base_ms must be >= 0 and breaker_max_ms >= breaker_base_ms");
    c->opts.fault_fallback = o->fault_fallback != 0;

    c->base_url = strndup(base, blen);
    c->token = dup_or_null(token);
    if (c->base_url == NULL || (token != NULL && c->token == NULL)) goto oom;
    c->opts.base_url = c->base_url;
    c->opts.token = c->token;
    if (pp__buf_reserve(&c->answer, PP_ANSWER_INITIAL) != 0) goto oom;
    c->answer.data[0] = '\0';

    struct curl_slist *h = NULL, *next;
#define ADD_HEADER(text)                                                                                     \
    do {                                                                                                     \
        next = curl_slist_append(h, (text));                                                                 \
        if (next == NULL) goto oom_headers;                                                                  \
        h = next;                                                                                            \
    } while (0)
    ADD_HEADER("Content-Type: application/json");
    ADD_HEADER("Accept: application/json");
    ADD_HEADER("Expect:"); /* no 100-continue round trip for batch bodies */
    /* In the list, not CURLOPT_USERAGENT, which libcurl formats anew per request. */
    ADD_HEADER("User-Agent: libprepage/" PP_VERSION_STRING);
    if (c->token != NULL) {
        char auth[1100];
        if (snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token) >= (int)sizeof auth) {
            curl_slist_free_all(h);
            return broken(c, PP_ERR_INVALID, "token is over 1024 bytes");
        }
        ADD_HEADER(auth);
    }
#undef ADD_HEADER
    c->headers = h;

    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->epfd < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "epoll_create1: %s", strerror(errno));
        return broken(c, PP_ERR_IO, msg);
    }
    c->curl = curl_easy_init();
    c->multi = curl_multi_init();
    if (c->curl == NULL || c->multi == NULL)
        return broken(c, PP_ERR_IO, "curl_easy_init failed (is pp_global_init called?)");

    /* Connection options, once. */
    CURL *e = c->curl;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 1L);
    return c;

oom_headers:
    curl_slist_free_all(h);
oom:
    pp_client_free(c);
    return NULL;
}

void pp_client_free(pp_client *c) {
    if (c == NULL) return;
    pp__xfer_abort(c);
    if (c->multi != NULL) curl_multi_cleanup(c->multi); /* closes the kept connection */
    if (c->curl != NULL) curl_easy_cleanup(c->curl);
    if (c->epfd >= 0) close(c->epfd);
    curl_slist_free_all(c->headers);
    for (pp_known *k = c->known, *next; k != NULL; k = next) {
        next = k->next;
        free(k->id);
        free(k->body);
        free(k);
    }
    free(c->answer.data);
    free(c->body.data);
    free(c->base_url);
    free(c->token);
    free(c);
}

int pp_client_err(const pp_client *c) {
    return c == NULL ? PP_ERR_OOM : c->err;
}

const char *pp_client_errstr(const pp_client *c) {
    return c == NULL ? "no client (out of memory)" : c->errstr;
}

int pp_client_http_status(const pp_client *c) {
    return c == NULL ? 0 : c->status;
}

/* ---- Helpers shared by the calls ---------------------------------------- */

int pp__buf_reserve(pp_buf *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap == 0 ? 256 : b->cap;
    while (cap < need) cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Starts a call: clears the last error, or repeats the constructor's. */
int pp__begin(pp_client *c) {
    if (c->init_err != PP_OK) {
        c->err = c->init_err;
        snprintf(c->errstr, sizeof c->errstr, "%s", c->init_errstr);
        return -1;
    }
    c->err = PP_OK;
    c->errstr[0] = '\0';
    c->status = 0;
    if (c->fault.phase != PP_FAULT_NONE)
        return pp__fail(c, PP_ERR_INVALID,
                        "a fault is submitted on this client: collect it (pp_fault_collect) or "
                        "cancel it (pp_fault_cancel) first");
    return 0;
}

int pp__fail(pp_client *c, int err, const char *fmt, ...) {
    c->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
    return -1;
}

/* docs/api.md: a session id matches [A-Za-z0-9._:-]{1,128}. */
int pp__valid_id(const char *id) {
    if (id == NULL) return 0;
    size_t n = 0;
    for (const char *p = id; *p != '\0'; p++, n++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok || n >= 128) return 0;
    }
    return n >= 1;
}

/* pp__valid_id, or PP_ERR_INVALID with a message that quotes the id. */
int pp__check_id(pp_client *c, const char *id) {
    if (pp__valid_id(id)) return 0;
    if (id == NULL) return pp__fail(c, PP_ERR_INVALID, "session id is NULL");
    return pp__fail(c, PP_ERR_INVALID, "session id \"%.200s\" does not match [A-Za-z0-9._:-]{1,128}", id);
}

/* Formats base URL + path into dst (PP_URL_SIZE bytes). */
int pp__url(pp_client *c, char *dst, const char *fmt, ...) {
    size_t blen = strlen(c->base_url);
    memcpy(dst, c->base_url, blen);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst + blen, PP_URL_SIZE - blen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= PP_URL_SIZE - blen) return pp__fail(c, PP_ERR_INVALID, "URL too long");
    return 0;
}

/* xorshift64*: jitter for the backoff, no allocation, no global state. */
uint64_t pp__random(pp_client *c) {
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Sleeps the backoff before retry number `attempt` (1-based): half of
 * min(max, base·2^(attempt-1)) plus a random part of the other half. */
static void backoff(pp_client *c, int attempt) {
    long base = c->opts.retry_base_ms, cap = c->opts.retry_max_ms;
    long delay = base;
    for (int i = 1; i < attempt && delay < cap; i++) delay *= 2;
    if (delay > cap) delay = cap;
    if (delay <= 0) return;
    long half = delay / 2;
    long ms = half + (long)(pp__random(c) % (uint64_t)(delay - half + 1));
    pp__sleep_ns((uint64_t)ms * 1000000ull);
}

/* Reads `detail` (else `title`) of a problem+json answer into errstr. */
void pp__http_error(pp_client *c) {
    json_error_t jerr;
    const char *detail = NULL, *title = NULL;
    json_t *doc = json_loadb(c->answer.data, c->answer.len, 0, &jerr);
    if (doc != NULL && json_unpack_ex(doc, &jerr, 0, "{s?s, s?s}", "detail", &detail, "title", &title) == 0 &&
        (detail != NULL || title != NULL)) {
        pp__fail(c, PP_ERR_HTTP, "%s", detail != NULL ? detail : title); /* copied before decref */
    } else {
        pp__fail(c, PP_ERR_HTTP, "HTTP %d", c->status);
    }
    json_decref(doc);
}

/* Maps a libcurl failure to an error kind; returns whether it may be retried. */
int pp__transport_error(pp_client *c, CURLcode rc) {
    const char *msg = c->curl_errbuf[0] != '\0' ? c->curl_errbuf : curl_easy_strerror(rc);
    switch (rc) {
        case CURLE_OPERATION_TIMEDOUT: pp__fail(c, PP_ERR_TIMEOUT, "%s", msg); return 1;
        case CURLE_OUT_OF_MEMORY: pp__fail(c, PP_ERR_OOM, "%s", msg); return 0;
        case CURLE_WRITE_ERROR:
            if (c->answer_oom) {
                pp__fail(c, PP_ERR_OOM, "out of memory reading the answer");
                return 0;
            }
            if (c->answer_too_big) {
                pp__fail(c, PP_ERR_PROTOCOL, "answer over %zu bytes", PP_MAX_ANSWER_BYTES);
                return 0;
            }
            pp__fail(c, PP_ERR_IO, "%s", msg);
            return 1;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_CONTENT_ENCODING: pp__fail(c, PP_ERR_PROTOCOL, "%s", msg); return 0;
        case CURLE_URL_MALFORMAT: pp__fail(c, PP_ERR_INVALID, "%s", msg); return 0;
        default: /* refused, reset, nothing received, resolve failures, … */
            pp__fail(c, PP_ERR_IO, "%s", msg);
            return 1;
    }
}

/* ---- One transfer through the multi handle ------------------------------ */

/* Per-request options, set on every call (the handle is not in the multi handle). */
int pp__xfer_setup(pp_client *c, pp_method m, const char *url, const char *body, size_t len, long timeout_ms,
                   long connect_timeout_ms, int fresh) {
    CURL *e = c->curl;
    /* libcurl copies and parses the URL on every set: skip that when the
     * handle already holds this one (the hot loop of a single session). */
    if (strcmp(c->url_set, url) != 0) {
        c->url_set[0] = '\0';
        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
            return pp__fail(c, PP_ERR_OOM, "out of memory setting the URL");
        snprintf(c->url_set, sizeof c->url_set, "%s", url);
    }
    switch (m) {
        case PP_GET:
        case PP_DELETE:
            curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m == PP_DELETE ? "DELETE" : NULL);
            break;
        case PP_POST:
        case PP_PUT:
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body != NULL ? body : "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body != NULL ? len : 0));
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m == PP_PUT ? "PUT" : NULL);
            break;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
    c->answer.len = 0;
    c->answer.data[0] = '\0';
    c->answer_too_big = 0;
    c->answer_oom = 0;
    c->curl_errbuf[0] = '\0';
    c->status = 0;
    return 0;
}

int pp__xfer_start(pp_client *c) {
    c->done = 0;
    c->result = CURLE_OK;
    if (curl_multi_add_handle(c->multi, c->curl) != CURLM_OK)
        return pp__fail(c, PP_ERR_OOM, "cannot start a transfer (curl_multi_add_handle)");
    c->running = 1; /* libcurl set its timer to "now": the first step starts the request */
    return 0;
}

/* Collects a finished transfer's result and takes the handle out of the multi handle. */
static void check_done(pp_client *c) {
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == c->curl) {
            c->result = m->data.result;
            c->done = 1;
        }
    }
    if (c->done && c->running) {
        curl_multi_remove_handle(c->multi, c->curl);
        c->running = 0;
    }
}

/*
 * Drives the running transfer until it is done (1, its result in c->result)
 * or until `until_ns` passes (0). until_ns 0 only makes progress: it runs due
 * timers and whatever the sockets have ready, without waiting.
 */
int pp__xfer_step(pp_client *c, uint64_t until_ns) {
    struct epoll_event ev[8];
    int rounds_at_end = 0;
    for (;;) {
        check_done(c);
        if (c->done || !c->running) return 1;
        int still;
        uint64_t now = pp__now_ns();
        if (c->timer_ns != UINT64_MAX && now >= c->timer_ns) {
            c->timer_ns = UINT64_MAX;
            curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &still);
            continue;
        }
        int ms = 0;
        if (now >= until_ns) {
            if (rounds_at_end++ >= 4) return 0;
        } else {
            uint64_t end = c->timer_ns < until_ns ? c->timer_ns : until_ns;
            uint64_t wait = (end - now + 999999ull) / 1000000ull; /* rounded up: no busy loop */
            ms = wait > (uint64_t)INT_MAX ? INT_MAX : (int)wait;
        }
        int n = epoll_wait(c->epfd, ev, (int)(sizeof ev / sizeof ev[0]), ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            snprintf(c->curl_errbuf, sizeof c->curl_errbuf, "epoll_wait: %s", strerror(errno));
            pp__xfer_abort(c);
            c->done = 1;
            c->result = CURLE_RECV_ERROR;
            return 1;
        }
        if (n == 0 && now >= until_ns) return 0;
        for (int i = 0; i < n; i++) {
            pp_sock *own = find_sock(c, ev[i].data.fd);
            if (own != NULL && !own->active) {
                /* A kept-alive connection libcurl does not watch now (the server
                 * closed it, say): quiet it until libcurl asks for it again. */
                struct epoll_event quiet;
                memset(&quiet, 0, sizeof quiet);
                quiet.data.fd = own->fd;
                if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, own->fd, &quiet) == 0) own->events = 0;
                continue;
            }
            int flags = 0;
            if (ev[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
            if (ev[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
            if (ev[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(c->multi, ev[i].data.fd, flags, &still);
        }
    }
}

/* Stops the running transfer, if any; its connection is closed. */
void pp__xfer_abort(pp_client *c) {
    if (c->running) {
        curl_multi_remove_handle(c->multi, c->curl);
        c->running = 0;
    }
    c->timer_ns = UINT64_MAX;
}

/* The finished transfer as a call's result: 0 for an answer below 400 (its
 * body NUL-terminated in c->answer), -1 otherwise with the error set. */
int pp__xfer_answer(pp_client *c, CURLcode rc) {
    if (rc != CURLE_OK) {
        pp__transport_error(c, rc);
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    c->status = (int)status;
    c->answer.data[c->answer.len] = '\0';
    if (status >= 400) {
        pp__http_error(c);
        return -1;
    }
    if (status < 200) return pp__fail(c, PP_ERR_PROTOCOL, "unexpected HTTP %ld", status);
    c->err = PP_OK;
    c->errstr[0] = '\0';
    return 0;
}

/*
 * An admin request with its retries, run to completion: request_timeout_ms
 * per attempt (libcurl enforces it), backoff between attempts.
 */
int pp__perform(pp_client *c, pp_method m, const char *url, const char *body, size_t len, int retry) {
    c->retried = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt > 0) {
            c->retried = 1;
            backoff(c, attempt);
        }
        if (pp__xfer_setup(c, m, url, body, len, c->opts.request_timeout_ms, c->opts.connect_timeout_ms, 0) !=
                0 ||
            pp__xfer_start(c) != 0)
            return -1;
        pp__xfer_step(c, UINT64_MAX);
        CURLcode rc = c->result;
        if (rc == CURLE_OK) return pp__xfer_answer(c, rc);
        int retryable = pp__transport_error(c, rc);
        if (!retry || !retryable || attempt >= c->opts.max_retries) return -1;
    }
}

/* ---- Sessions this client knows ----------------------------------------- */

pp_known *pp__find_known(pp_client *c, const char *id) {
    for (pp_known *k = c->known; k != NULL; k = k->next)
        if (strcmp(k->id, id) == 0) return k;
    return NULL;
}

int pp__remember(pp_client *c, const char *id, const char *body, uint64_t page_size) {
    pp_known *k = pp__find_known(c, id);
    char *copy = strdup(body);
    if (copy == NULL) return pp__fail(c, PP_ERR_OOM, "out of memory");
    if (k != NULL) {
        free(k->body);
        k->body = copy;
        k->page_size = page_size;
        return 0;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL || (k->id = strdup(id)) == NULL) {
        free(k);
        free(copy);
        return pp__fail(c, PP_ERR_OOM, "out of memory");
    }
    k->body = copy;
    k->page_size = page_size;
    k->next = c->known;
    c->known = k;
    return 0;
}

void pp__forget(pp_client *c, const char *id) {
    for (pp_known **p = &c->known; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->id, id) == 0) {
            pp_known *k = *p;
            *p = k->next;
            free(k->id);
            free(k->body);
            free(k);
            return;
        }
    }
}

/*
 * A request on a session's route (URL already in c->url). On a 404 for a
 * session this client knows, and unless recreate_sessions is off, PUTs the
 * remembered config again and repeats the request — up to PP_MAX_RECREATIONS
 * times while the 404s go on.
 */
int pp__session_call(pp_client *c, const char *id, pp_method m, const char *body, size_t len, int retry) {
    for (int recreations = 0;; recreations++) {
        if (pp__perform(c, m, c->url, body, len, retry) == 0) return 0;
        if (c->err != PP_ERR_HTTP || c->status != 404 || !c->opts.recreate_sessions) return -1;
        if (recreations == PP_MAX_RECREATIONS) return -1;
        pp_known *k = pp__find_known(c, id);
        if (k == NULL) return -1;

        char url[PP_URL_SIZE];
        if (pp__url(c, url, "/sessions/%s", id) != 0) return -1;
        if (pp__perform(c, PP_PUT, url, k->body, strlen(k->body), 1) != 0) {
            char why[512];
            snprintf(why, sizeof why, "%.500s", c->errstr);
            snprintf(c->errstr, sizeof c->errstr, "re-creating lost session %s: %s", id, why);
            return -1;
        }
    }
}

long pp_client_breaker_ms(const pp_client *c, long *period_ms) {
    if (period_ms != NULL) *period_ms = c == NULL ? 0 : c->breaker_period_ms;
    if (c == NULL) return 0;
    uint64_t now = pp__now_ns();
    if (now >= c->breaker_until_ns) return 0;
    return (long)((c->breaker_until_ns - now + 999999ull) / 1000000ull);
}
