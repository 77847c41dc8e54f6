/*
 * client.c — a client's life, its one libcurl easy handle, errors, retries
 * and the re-creation of lost sessions.
 *
 * libcurl is used as git's http.c uses it: one easy handle per client (that
 * keeps the connection alive), connection options set once in pp_client_new,
 * per-request options (URL, method, body) set on every call, the error
 * buffer inside the client, and no CURLOPT_FAILONERROR so that the server's
 * problem+json detail of a 4xx/5xx reaches the caller.
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Global ------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void global_init_once(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
    /* Seed jansson's hash function now, not racily on the first json_object(). */
    json_object_seed(0);
}

int pp_global_init(void) {
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

void pp_global_cleanup(void) {
    if (global_rc == 0) curl_global_cleanup();
}

const char *pp_version(void) { return PP_VERSION_STRING; }

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

const char *pp_outcome_name(pp_outcome o) {
    switch (o) {
    case PP_FIRST: return "first";
    case PP_SMALLER: return "smaller";
    case PP_LARGER: return "larger";
    case PP_REVERSE: return "reverse";
    case PP_REPEAT: return "repeat";
    default: return "unknown";
    }
}

/* ---- Options and lifecycle ---------------------------------------------- */

void pp_options_init(pp_options *opts) {
    if (opts == NULL) return;
    memset(opts, 0, sizeof *opts);
    opts->base_url = "http://127.0.0.1:7070";
    opts->token = NULL;
    opts->connect_timeout_ms = 1000;
    opts->request_timeout_ms = 5000;
    opts->max_retries = 3;
    opts->retry_base_ms = 10;
    opts->retry_max_ms = 1000;
    opts->recreate_sessions = 1;
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

/* Marks a client unusable; every later call reports the same error. */
static pp_client *broken(pp_client *c, int err, const char *msg) {
    c->init_err = err;
    snprintf(c->init_errstr, sizeof c->init_errstr, "%s", msg);
    c->err = err;
    snprintf(c->errstr, sizeof c->errstr, "%s", msg);
    return c;
}

static char *dup_or_null(const char *s) { return s == NULL ? NULL : strdup(s); }

pp_client *pp_client_new(const pp_options *opts) {
    pp_options defaults;
    if (opts == NULL) {
        pp_options_init(&defaults);
        opts = &defaults;
    }
    pp_client *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->opts = *opts;
    c->opts.base_url = NULL;
    c->opts.token = NULL;
    c->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9E3779B97F4A7C15ull;

    const char *base = opts->base_url;
    if (base == NULL) return broken(c, PP_ERR_INVALID, "base_url is NULL");
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') blen--;
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
        return broken(c, PP_ERR_INVALID, "base_url must start with http:// or https://");
    if (blen > PP_MAX_BASE_URL) return broken(c, PP_ERR_INVALID, "base_url is over 1024 bytes");
    if (opts->token != NULL && strpbrk(opts->token, "\r\n") != NULL)
        return broken(c, PP_ERR_INVALID, "token contains a line break");
    if (opts->connect_timeout_ms < 0 || opts->request_timeout_ms < 0 || opts->max_retries < 0 ||
        opts->retry_base_ms < 0 || opts->retry_max_ms < 0)
        return broken(c, PP_ERR_INVALID, "timeouts and retry counts must be >= 0");

    c->base_url = strndup(base, blen);
    c->token = dup_or_null(opts->token);
    if (c->base_url == NULL || (opts->token != NULL && c->token == NULL)) goto oom;
    c->opts.base_url = c->base_url;
    c->opts.token = c->token;
    if (pp__buf_reserve(&c->answer, PP_ANSWER_INITIAL) != 0) goto oom;
    c->answer.data[0] = '\0';

    struct curl_slist *h = NULL, *next;
#define ADD_HEADER(text)                         \
    do {                                         \
        next = curl_slist_append(h, (text));     \
        if (next == NULL) goto oom_headers;      \
        h = next;                                \
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

    c->curl = curl_easy_init();
    if (c->curl == NULL) return broken(c, PP_ERR_IO, "curl_easy_init failed (is pp_global_init called?)");

    /* Connection options, once. */
    CURL *e = c->curl;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, opts->request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_MAXCONNECTS, 1L);
    return c;

oom_headers:
    curl_slist_free_all(h);
oom:
    pp_client_free(c);
    return NULL;
}

void pp_client_free(pp_client *c) {
    if (c == NULL) return;
    if (c->curl != NULL) curl_easy_cleanup(c->curl);
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

int pp_client_err(const pp_client *c) { return c == NULL ? PP_ERR_OOM : c->err; }

const char *pp_client_errstr(const pp_client *c) {
    return c == NULL ? "no client (out of memory)" : c->errstr;
}

int pp_client_http_status(const pp_client *c) { return c == NULL ? 0 : c->status; }

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

/* api.md: a session id matches [A-Za-z0-9._:-]{1,128}. */
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
static uint64_t next_random(pp_client *c) {
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
    long ms = half + (long)(next_random(c) % (uint64_t)(delay - half + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Reads `detail` (else `title`) of a problem+json answer into errstr. */
static void http_error(pp_client *c) {
    json_error_t jerr;
    const char *detail = NULL, *title = NULL;
    json_t *doc = json_loadb(c->answer.data, c->answer.len, 0, &jerr);
    if (doc != NULL && json_unpack_ex(doc, &jerr, 0, "{s?s, s?s}", "detail", &detail, "title",
                                      &title) == 0 && (detail != NULL || title != NULL)) {
        pp__fail(c, PP_ERR_HTTP, "%s", detail != NULL ? detail : title); /* copied before decref */
    } else {
        pp__fail(c, PP_ERR_HTTP, "HTTP %d", c->status);
    }
    json_decref(doc);
}

/* Maps a libcurl failure to an error kind; returns whether it may be retried. */
static int transport_error(pp_client *c, CURLcode rc) {
    const char *msg = c->curl_errbuf[0] != '\0' ? c->curl_errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        pp__fail(c, PP_ERR_TIMEOUT, "%s", msg);
        return 1;
    case CURLE_OUT_OF_MEMORY:
        pp__fail(c, PP_ERR_OOM, "%s", msg);
        return 0;
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
    case CURLE_BAD_CONTENT_ENCODING:
        pp__fail(c, PP_ERR_PROTOCOL, "%s", msg);
        return 0;
    case CURLE_URL_MALFORMAT:
        pp__fail(c, PP_ERR_INVALID, "%s", msg);
        return 0;
    default: /* refused, reset, nothing received, resolve failures, … */
        pp__fail(c, PP_ERR_IO, "%s", msg);
        return 1;
    }
}

/*
 * One request with its retries. Per-request options are set here, every
 * call. Returns 0 for an answer below 400 (its body NUL-terminated in
 * c->answer), -1 otherwise with the error set.
 */
int pp__perform(pp_client *c, pp_method m, const char *url, const char *body, size_t len,
                int retry) {
    CURL *e = c->curl;
    c->retried = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt > 0) {
            c->retried = 1;
            backoff(c, attempt);
        }
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
        c->answer.len = 0;
        c->answer.data[0] = '\0';
        c->answer_too_big = 0;
        c->answer_oom = 0;
        c->curl_errbuf[0] = '\0';
        c->status = 0;

        CURLcode rc = curl_easy_perform(e);
        if (rc == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            c->status = (int)status;
            c->answer.data[c->answer.len] = '\0';
            if (status >= 400) {
                http_error(c);
                return -1;
            }
            if (status < 200) return pp__fail(c, PP_ERR_PROTOCOL, "unexpected HTTP %ld", status);
            c->err = PP_OK;
            c->errstr[0] = '\0';
            return 0;
        }
        int retryable = transport_error(c, rc);
        if (!retry || !retryable || attempt >= c->opts.max_retries) return -1;
    }
}

/* ---- Sessions this client created --------------------------------------- */

static pp_known *find_known(pp_client *c, const char *id) {
    for (pp_known *k = c->known; k != NULL; k = k->next)
        if (strcmp(k->id, id) == 0) return k;
    return NULL;
}

int pp__remember(pp_client *c, const char *id, const char *body) {
    pp_known *k = find_known(c, id);
    char *copy = strdup(body);
    if (copy == NULL) return pp__fail(c, PP_ERR_OOM, "out of memory");
    if (k != NULL) {
        free(k->body);
        k->body = copy;
        return 0;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL || (k->id = strdup(id)) == NULL) {
        free(k);
        free(copy);
        return pp__fail(c, PP_ERR_OOM, "out of memory");
    }
    k->body = copy;
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
 * session this client created, and unless recreate_sessions is off, PUTs
 * the remembered config again and repeats the request once.
 */
int pp__session_call(pp_client *c, const char *id, pp_method m, const char *body, size_t len,
                     int retry) {
    if (pp__perform(c, m, c->url, body, len, retry) == 0) return 0;
    if (c->err != PP_ERR_HTTP || c->status != 404 || !c->opts.recreate_sessions) return -1;
    pp_known *k = find_known(c, id);
    if (k == NULL) return -1;

    char url[PP_URL_SIZE];
    if (pp__url(c, url, "/sessions/%s", id) != 0) return -1;
    if (pp__perform(c, PP_PUT, url, k->body, strlen(k->body), 1) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%.500s", c->errstr);
        snprintf(c->errstr, sizeof c->errstr, "re-creating lost session %s: %s", id, why);
        return -1;
    }
    return pp__perform(c, m, c->url, body, len, retry);
}
