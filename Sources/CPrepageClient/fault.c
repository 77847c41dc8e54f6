/*
 * fault.c — the fault calls, on the hot path of a migration.
 *
 * A single fault allocates nothing here: the body is formatted into a buffer
 * inside the client, and the fixed-format decision the server answers is read
 * by a hand-written scan into the decision inside the client, then copied into
 * the caller's. Only an answer the scan does not recognise (escapes, nested
 * values, a reordered or extended document it cannot skip) goes through
 * jansson.
 *
 * A single fault is a small state machine in the client (pp_fault_state):
 * submitted, it sends its request; a finished request either decides it, or
 * plans a retry (5xx/429, a connection lost mid-request), or re-creates its
 * session after a 404; the deadline ends it whatever state it is in. The
 * synchronous calls run the machine to its end; the asynchronous ones let the
 * caller run it a step at a time.
 */
#define _GNU_SOURCE

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Fast scan of a decision --------------------------------------------- */

enum {
    F_START = 1 << 0,
    F_COUNT = 1 << 1,
    F_OUTCOME = 1 << 2,
    F_NTEST = 1 << 3,
    F_NMIN = 1 << 4,
    F_NMAX = 1 << 5,
    F_ADDR = 1 << 6,
    F_BYTES = 1 << 7,
    F_ALL = (1 << 8) - 1
};

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Decimal digits into *v; NULL when there are none or on overflow. */
static const char *scan_dec(const char *p, uint64_t *v) {
    uint64_t x = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return NULL;
        x = x * 10 + d;
        p++;
    }
    if (p == start) return NULL;
    *v = x;
    return p;
}

/* Hexadecimal digits into *v; NULL when there are none or on overflow. */
static const char *scan_hex(const char *p, uint64_t *v) {
    uint64_t x = 0;
    const char *start = p;
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (*p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        if (x >> 60) return NULL;
        x = (x << 4) | d;
    }
    if (p == start) return NULL;
    *v = x;
    return p;
}

/* A number as the server may write it: an integer, or a string of decimal
 * or 0x hexadecimal (docs/api.md). */
static const char *scan_number(const char *p, uint64_t *v) {
    if (*p != '"') return scan_dec(p, v);
    p++;
    p = (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? scan_hex(p + 2, v) : scan_dec(p, v);
    return p != NULL && *p == '"' ? p + 1 : NULL;
}

static int outcome_from(const char *s, size_t n, pp_outcome *o) {
    /* The server's outcomes: every one but PP_FALLBACK, which only a client decides. */
    for (int i = PP_FIRST; i < PP_FALLBACK; i++) {
        if (strlen(pp__outcome_names[i]) == n && memcmp(s, pp__outcome_names[i], n) == 0) {
            *o = (pp_outcome)i;
            return 0;
        }
    }
    return -1;
}

/* Which field a key names (its flag), 0 for a key to skip. */
static int field_of(const char *k, size_t n) {
#define KEY(lit, flag)                                                                                       \
    if (n == sizeof lit - 1 && memcmp(k, lit, n) == 0) return flag
    KEY("start", F_START);
    KEY("count", F_COUNT);
    KEY("outcome", F_OUTCOME);
    KEY("ntest", F_NTEST);
    KEY("nmin", F_NMIN);
    KEY("nmax", F_NMAX);
    KEY("addr", F_ADDR);
    KEY("bytes", F_BYTES);
#undef KEY
    return 0;
}

/*
 * Scans one flat decision object at p into *d. Returns the byte after its
 * '}', or NULL for anything unexpected (the caller then asks jansson).
 * Unknown members are skipped when their value is a number or a plain
 * string: new fields do not slow an old client down.
 */
static const char *scan_decision(const char *p, pp_decision *d) {
    unsigned seen = 0;
    p = skip_ws(p);
    if (*p != '{') return NULL;
    p = skip_ws(p + 1);
    if (*p == '}') return NULL;
    for (;;) {
        if (*p != '"') return NULL;
        const char *key = ++p;
        while (*p != '"' && *p != '\\' && *p != '\0') p++;
        if (*p != '"') return NULL;
        int field = field_of(key, (size_t)(p - key));
        p = skip_ws(p + 1);
        if (*p != ':') return NULL;
        p = skip_ws(p + 1);
        if (field == F_OUTCOME || (field == 0 && *p == '"')) {
            if (*p != '"') return NULL;
            const char *s = ++p;
            while (*p != '"' && *p != '\\' && *p != '\0') p++;
            if (*p != '"') return NULL;
            if (field == F_OUTCOME && outcome_from(s, (size_t)(p - s), &d->outcome) != 0) return NULL;
            p++;
        } else {
            uint64_t v;
            if ((p = scan_number(p, &v)) == NULL) return NULL;
            if (*p == '.' || *p == 'e' || *p == 'E') return NULL;
            switch (field) {
                case F_START: d->start = v; break;
                case F_COUNT: d->count = v; break;
                case F_NTEST: d->ntest = v; break;
                case F_NMIN: d->nmin = v; break;
                case F_NMAX: d->nmax = v; break;
                case F_ADDR: d->addr = v; break;
                case F_BYTES: d->bytes = v; break;
                default: break;
            }
        }
        if (seen & (unsigned)field) return NULL; /* a duplicate: let jansson judge */
        seen |= (unsigned)field;
        p = skip_ws(p);
        if (*p == '}') break;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1);
    }
    return seen == F_ALL ? p + 1 : NULL;
}

/* ---- The same through jansson -------------------------------------------- */

/* A decision field through jansson: an integer >= 0, or a decimal or 0x string. */
static int json_number(json_t *v, uint64_t *out) {
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0) return -1;
        *out = (uint64_t)i;
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    const char *p = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? scan_hex(s + 2, out) : scan_dec(s, out);
    return p != NULL && *p == '\0' ? 0 : -1;
}

static int unpack_decision(pp_client *c, json_t *obj, pp_decision *d) {
    json_error_t jerr;
    json_t *start, *count, *ntest, *nmin, *nmax, *addr, *bytes;
    const char *outcome;
    if (json_unpack_ex(obj, &jerr, 0, "{s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "start", &start, "count",
                       &count, "outcome", &outcome, "ntest", &ntest, "nmin", &nmin, "nmax", &nmax, "addr",
                       &addr, "bytes", &bytes) != 0)
        return pp__fail(c, PP_ERR_PROTOCOL, "unexpected decision: %s", jerr.text);
    if (json_number(start, &d->start) != 0 || json_number(count, &d->count) != 0 ||
        json_number(ntest, &d->ntest) != 0 || json_number(nmin, &d->nmin) != 0 ||
        json_number(nmax, &d->nmax) != 0 || json_number(addr, &d->addr) != 0 ||
        json_number(bytes, &d->bytes) != 0)
        return pp__fail(c, PP_ERR_PROTOCOL, "unexpected decision: a field is not a number >= 0");
    if (outcome_from(outcome, strlen(outcome), &d->outcome) != 0)
        return pp__fail(c, PP_ERR_PROTOCOL, "unexpected decision: unknown outcome \"%s\"", outcome);
    return 0;
}

static json_t *load_answer(pp_client *c) {
    json_error_t jerr;
    json_t *doc = json_loadb(c->answer.data, c->answer.len, 0, &jerr);
    if (doc == NULL) pp__fail(c, PP_ERR_PROTOCOL, "answer is not JSON: %s", jerr.text);
    return doc;
}

/* The answer in c->answer as one decision: the scan, else jansson. */
static int scan_into(pp_client *c, pp_decision *d) {
    const char *end = scan_decision(c->answer.data, d);
    if (end != NULL && *skip_ws(end) == '\0') return 0;
    json_t *doc = load_answer(c);
    if (doc == NULL) return -1;
    int rc = unpack_decision(c, doc, d);
    json_decref(doc);
    return rc;
}

/* ---- Single fault: deadline, retries, fallback, breaker ------------------ */

/* Writes v as a JSON value the server reads exactly: an integer up to
 * INT64_MAX, a "0x…" string above (a signed 64-bit parser would overflow). */
static char *put_u64(char *p, uint64_t v) {
    if (v > (uint64_t)INT64_MAX) return p + sprintf(p, "\"0x%llx\"", (unsigned long long)v);
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) *p++ = tmp[--n];
    return p;
}

/* The caller's decision can take one: filled by pp_decision_init(). */
static int check_out(pp_client *c, const pp_decision *out) {
    if (out == NULL) return pp__fail(c, PP_ERR_INVALID, "out is NULL");
    if (out->size < PP_DECISION_SIZE_1_0)
        return pp__fail(c, PP_ERR_INVALID,
                        "out->size is %zu: fill the decision with pp_decision_init() first", out->size);
    return 0;
}

/* Copies a decision into the caller's, as much of it as the caller's struct holds. */
static void copy_out(pp_decision *out, const pp_decision *d) {
    size_t size = out->size;
    memcpy(out, d, size < sizeof *d ? size : sizeof *d);
    out->size = size;
}

/* The page size of a session as this client knows it, for a fallback. */
static uint64_t known_page_size(pp_client *c, const char *id) {
    pp_known *k = pp__find_known(c, id);
    if (k != NULL && k->page_size > 0) return k->page_size;
    if (c->last_page_size > 0 && strcmp(c->last_id, id) == 0) return c->last_page_size;
    return PP_DEFAULT_PAGE_SIZE;
}

/* The fault is over: its result and the error the collect reports (c->err now)
 * are kept in the fault, so that an asynchronous caller sees them at the collect. */
static void become_ready(pp_client *c, int rc) {
    pp_fault_state *f = &c->fault;
    f->rc = rc;
    f->err = c->err;
    memcpy(f->why, c->errstr, sizeof f->why);
    f->phase = PP_FAULT_READY;
}

/* The fault is decided locally: the faulting page alone. */
static void make_fallback(pp_client *c) {
    pp_fault_state *f = &c->fault;
    uint64_t ps = known_page_size(c, f->id);
    uint64_t page = f->by_addr ? f->value / ps : f->value;
    memset(&f->d, 0, sizeof f->d);
    f->d.size = sizeof f->d;
    f->d.start = page;
    f->d.count = 1;
    f->d.outcome = PP_FALLBACK;
    f->d.addr = page * ps;
    f->d.bytes = ps;
    become_ready(c, 0);
}

static void ready_error(pp_client *c) {
    become_ready(c, -1);
}

/*
 * The oracle is away (no answer in time, no connection, 5xx after the
 * retries; the error is set): with fault_fallback, open the breaker and
 * answer the fallback; without, fail.
 */
static void oracle_away(pp_client *c) {
    if (!c->opts.fault_fallback) {
        ready_error(c);
        return;
    }
    long period = c->breaker_period_ms;
    long base = c->opts.breaker_base_ms, cap = c->opts.breaker_max_ms;
    period = period <= 0 ? base : (period > cap / 2 ? cap : period * 2);
    if (c->fault.retry_after_ms > period)
        period = c->fault.retry_after_ms < cap ? c->fault.retry_after_ms : cap;
    if (base == 0) period = 0; /* no breaker: every fault asks */
    c->breaker_period_ms = period;
    c->breaker_until_ns = pp__now_ns() + (uint64_t)period * 1000000ull;
    c->breaker_err = c->err;
    snprintf(c->breaker_why, sizeof c->breaker_why, "%.255s", c->errstr);
    make_fallback(c);
}

/* Starts the next request of the fault: the fault itself, or the PUT re-creating its session. */
static void start_attempt(pp_client *c) {
    pp_fault_state *f = &c->fault;
    int rc;
    if (f->recreating) {
        pp_known *k = pp__find_known(c, f->id);
        rc = k == NULL || pp__url(c, c->url, "/sessions/%s", f->id) != 0
                 ? -1
                 : pp__xfer_setup(c, PP_PUT, c->url, k->body, strlen(k->body), 0, c->opts.connect_timeout_ms,
                                  f->fresh);
    } else {
        rc = pp__xfer_setup(c, PP_POST, c->fault_url, c->fault_body, c->fault_body_len, 0,
                            c->opts.connect_timeout_ms, f->fresh);
        f->attempts++;
    }
    f->fresh = 0;
    if (rc != 0 || pp__xfer_start(c) != 0) {
        if (c->err == PP_OK) pp__fail(c, PP_ERR_INVALID, "cannot re-create session %s", f->id);
        ready_error(c);
        return;
    }
    f->phase = PP_FAULT_SENDING;
}

/*
 * Plans the next attempt on a new connection if the deadline and max_retries
 * allow: the first retry at once, then after 1 ms, 2 ms, … (jittered down to
 * half). Returns 0 when no retry is left.
 */
static int plan_retry(pp_client *c) {
    pp_fault_state *f = &c->fault;
    if (f->attempts > c->opts.max_retries) return 0;
    uint64_t delay = 0;
    if (f->attempts >= 2) {
        uint64_t full = 1000000ull << (f->attempts - 2 < 20 ? f->attempts - 2 : 20);
        delay = full / 2 + pp__random(c) % (full / 2 + 1);
    }
    uint64_t now = pp__now_ns();
    if (now + delay >= f->deadline_ns) return 0;
    f->retry_at_ns = now + delay;
    f->fresh = 1;
    f->phase = PP_FAULT_WAITING;
    return 1;
}

/* The running request finished: decide what comes next. */
static void on_done(pp_client *c) {
    pp_fault_state *f = &c->fault;
    CURLcode rc = c->result;
    if (rc != CURLE_OK) {
        int retryable = pp__transport_error(c, rc);
        int nobody = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                     rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_OPERATION_TIMEDOUT;
        if (retryable && !nobody && plan_retry(c)) return;
        if (c->err == PP_ERR_IO || c->err == PP_ERR_TIMEOUT)
            oracle_away(c);
        else
            ready_error(c);
        return;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    c->status = (int)status;
    c->answer.data[c->answer.len] = '\0';
    int unavailable = status >= 500 || status == 429;
    if (unavailable) {
        curl_off_t after = 0;
        if (curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
            f->retry_after_ms = after > 86400 ? 86400000L : (long)after * 1000L;
    }

    if (f->recreating) {
        f->recreating = 0;
        if (status >= 200 && status < 300) {
            f->recreations++;
            start_attempt(c); /* the fault again, on the re-created session */
            return;
        }
        if (status >= 400)
            pp__http_error(c);
        else
            pp__fail(c, PP_ERR_PROTOCOL, "unexpected HTTP %ld", status);
        char why[512];
        snprintf(why, sizeof why, "%.500s", c->errstr);
        snprintf(c->errstr, sizeof c->errstr, "re-creating lost session %s: %s", f->id, why);
        if (unavailable) {
            f->fresh = 1;
            if (plan_retry(c)) return;
            oracle_away(c);
        } else {
            ready_error(c);
        }
        return;
    }

    if (status >= 200 && status < 300) {
        if (scan_into(c, &f->d) != 0) {
            ready_error(c);
            return;
        }
        /* The oracle answered: the breaker closes. */
        c->breaker_period_ms = 0;
        c->breaker_until_ns = 0;
        if (f->d.count > 0) {
            c->last_page_size = f->d.bytes / f->d.count;
            if (strcmp(c->last_id, f->id) != 0) memcpy(c->last_id, f->id, sizeof c->last_id);
        }
        c->err = PP_OK;
        c->errstr[0] = '\0';
        become_ready(c, 0);
        return;
    }
    if (status < 400) { /* 1xx, 3xx */
        pp__fail(c, PP_ERR_PROTOCOL, "unexpected HTTP %ld", status);
        ready_error(c);
        return;
    }
    pp__http_error(c);
    if (status == 404 && c->opts.recreate_sessions && f->recreations < PP_MAX_RECREATIONS &&
        pp__find_known(c, f->id) != NULL) {
        f->recreating = 1;
        start_attempt(c);
        return;
    }
    if (unavailable) {
        /* A draining server (503, Retry-After) or an overloaded one: another
         * connection may reach another instance behind a load balancer. */
        f->fresh = 1;
        if (plan_retry(c)) return;
        oracle_away(c);
        return;
    }
    /* 4xx: the oracle is there and says no. */
    c->breaker_period_ms = 0;
    c->breaker_until_ns = 0;
    ready_error(c);
}

/*
 * Moves the fault on until it is ready (1) or until `until_ns` (0). The
 * deadline ends it whatever happens: the running request is dropped and the
 * oracle counted away.
 */
static int advance(pp_client *c, uint64_t until_ns) {
    pp_fault_state *f = &c->fault;
    while (f->phase != PP_FAULT_READY) {
        uint64_t now = pp__now_ns();
        if (now >= f->deadline_ns) {
            pp__xfer_abort(c);
            int had_error = c->err != PP_OK;
            char why[512];
            snprintf(why, sizeof why, "%.500s", c->errstr);
            pp__fail(c, PP_ERR_TIMEOUT, "no decision within the fault deadline of %ld ms%s%s",
                     c->opts.fault_deadline_ms, had_error ? "; last: " : "", had_error ? why : "");
            oracle_away(c);
            break;
        }
        uint64_t limit = until_ns < f->deadline_ns ? until_ns : f->deadline_ns;
        if (f->phase == PP_FAULT_WAITING) {
            if (now >= f->retry_at_ns) {
                start_attempt(c);
                continue;
            }
            if (now >= until_ns) return 0;
            uint64_t t = f->retry_at_ns < limit ? f->retry_at_ns : limit;
            pp__sleep_ns(t - now);
            continue;
        }
        if (!pp__xfer_step(c, limit)) {
            if (limit == f->deadline_ns) continue;
            return 0;
        }
        on_done(c);
    }
    return 1;
}

/* Submits a fault; the caller has called pp__begin. */
static int submit(pp_client *c, const char *id, const char *field, int by_addr, uint64_t value,
                  uint32_t stream) {
    if (pp__check_id(c, id) != 0) return -1;
    if (pp__url(c, c->fault_url, "/sessions/%s/fault", id) != 0) return -1;
    /* {"page":N,"stream":S}: at most 8 + 4 + 22 + 10 + 10 bytes. */
    char *p = c->fault_body;
    p += sprintf(p, "{\"%s\":", field);
    p = put_u64(p, value);
    p += sprintf(p, ",\"stream\":%lu}", (unsigned long)stream);
    c->fault_body_len = (size_t)(p - c->fault_body);

    pp_fault_state *f = &c->fault;
    memset(f, 0, sizeof *f);
    f->by_addr = by_addr;
    f->value = value;
    memcpy(f->id, id, strlen(id) + 1);
    uint64_t now = pp__now_ns();
    if (c->opts.fault_fallback && now < c->breaker_until_ns) {
        /* The breaker is open: answer at once, send nothing. */
        pp__fail(c, c->breaker_err, "oracle unavailable, asking again in %ld ms; it failed with: %.900s",
                 (long)((c->breaker_until_ns - now + 999999ull) / 1000000ull), c->breaker_why);
        make_fallback(c);
        return 0;
    }
    f->deadline_ns = now + (uint64_t)c->opts.fault_deadline_ms * 1000000ull;
    start_attempt(c);
    return 0;
}

/* Hands the ready fault to the caller and ends it. */
static int finish(pp_client *c, pp_decision *out) {
    pp_fault_state *f = &c->fault;
    f->phase = PP_FAULT_NONE;
    c->err = f->err;
    memcpy(c->errstr, f->why, sizeof c->errstr);
    if (f->rc == 0) copy_out(out, &f->d);
    return f->rc;
}

static int fault_one(pp_client *c, const char *id, const char *field, int by_addr, uint64_t value,
                     uint32_t stream, pp_decision *out) {
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || check_out(c, out) != 0) return -1;
    if (submit(c, id, field, by_addr, value, stream) != 0) return -1;
    advance(c, UINT64_MAX); /* the deadline ends it */
    return finish(c, out);
}

int pp_fault_page(pp_client *c, const char *id, uint64_t page, uint32_t stream, pp_decision *out) {
    return fault_one(c, id, "page", 0, page, stream, out);
}

int pp_fault_addr(pp_client *c, const char *id, uint64_t addr, uint32_t stream, pp_decision *out) {
    return fault_one(c, id, "addr", 1, addr, stream, out);
}

/* ---- Asynchronous single faults ----------------------------------------- */

static int submit_async(pp_client *c, const char *id, const char *field, int by_addr, uint64_t value,
                        uint32_t stream) {
    if (c == NULL) return -1;
    if (pp__begin(c) != 0) return -1;
    if (submit(c, id, field, by_addr, value, stream) != 0) return -1;
    advance(c, 0);  /* the request goes out now */
    c->err = PP_OK; /* submitted; how it ends, the collect says */
    c->errstr[0] = '\0';
    return 0;
}

int pp_fault_submit_page(pp_client *c, const char *id, uint64_t page, uint32_t stream) {
    return submit_async(c, id, "page", 0, page, stream);
}

int pp_fault_submit_addr(pp_client *c, const char *id, uint64_t addr, uint32_t stream) {
    return submit_async(c, id, "addr", 1, addr, stream);
}

int pp_fault_collect(pp_client *c, long timeout_ms, pp_decision *out) {
    if (c == NULL) return -1;
    if (c->fault.phase == PP_FAULT_NONE) return pp__fail(c, PP_ERR_INVALID, "no fault is submitted");
    if (check_out(c, out) != 0) return -1;
    uint64_t until = timeout_ms < 0 ? UINT64_MAX : pp__now_ns() + (uint64_t)timeout_ms * 1000000ull;
    if (!advance(c, until)) {
        c->err = PP_OK; /* a failed attempt that will be retried is not the fault's end */
        c->errstr[0] = '\0';
        return PP_PENDING;
    }
    return finish(c, out);
}

int pp_fault_pollinfo(pp_client *c, int *fd, long *timeout_ms) {
    if (c == NULL) return -1;
    if (c->fault.phase == PP_FAULT_NONE) return pp__fail(c, PP_ERR_INVALID, "no fault is submitted");
    if (fd == NULL || timeout_ms == NULL) return pp__fail(c, PP_ERR_INVALID, "fd or timeout_ms is NULL");
    const pp_fault_state *f = &c->fault;
    *fd = c->epfd;
    *timeout_ms = 0;
    if (f->phase == PP_FAULT_READY) return 0;
    uint64_t end = f->deadline_ns;
    if (f->phase == PP_FAULT_WAITING && f->retry_at_ns < end) end = f->retry_at_ns;
    if (f->phase == PP_FAULT_SENDING && c->timer_ns < end) end = c->timer_ns;
    uint64_t now = pp__now_ns();
    if (end > now) *timeout_ms = (long)((end - now + 999999ull) / 1000000ull);
    return 0;
}

void pp_fault_cancel(pp_client *c) {
    if (c == NULL || c->fault.phase == PP_FAULT_NONE) return;
    pp__xfer_abort(c);
    c->fault.phase = PP_FAULT_NONE;
}

/* ---- Batch --------------------------------------------------------------- */

/* Element i of the caller's array of decisions, whose stride is out[0].size. */
static pp_decision *element(pp_decision *out, size_t stride, size_t i) {
    return (pp_decision *)(void *)((char *)out + i * stride);
}

/* {"decisions":[d, d, …]} with exactly n decisions, scanned; -1 to ask jansson. */
static int scan_batch(const char *p, size_t n, pp_decision *out, size_t stride) {
    static const char key[] = "\"decisions\"";
    p = skip_ws(p);
    if (*p != '{') return -1;
    p = skip_ws(p + 1);
    if (strncmp(p, key, sizeof key - 1) != 0) return -1;
    p = skip_ws(p + sizeof key - 1);
    if (*p != ':') return -1;
    p = skip_ws(p + 1);
    if (*p != '[') return -1;
    for (size_t i = 0; i < n; i++) {
        pp_decision d;
        memset(&d, 0, sizeof d);
        if ((p = scan_decision(p + 1, &d)) == NULL) return -1;
        pp_decision *e = element(out, stride, i);
        e->size = stride;
        copy_out(e, &d);
        p = skip_ws(p);
        if (*p != (i + 1 < n ? ',' : ']')) return -1;
    }
    p = skip_ws(p + 1);
    if (*p != '}') return -1;
    return *skip_ws(p + 1) == '\0' ? 0 : -1;
}

static int unpack_batch(pp_client *c, size_t n, pp_decision *out, size_t stride) {
    json_t *doc = load_answer(c);
    if (doc == NULL) return -1;
    json_error_t jerr;
    json_t *decisions = NULL;
    int rc = -1;
    if (json_unpack_ex(doc, &jerr, 0, "{s:o}", "decisions", &decisions) != 0 || !json_is_array(decisions)) {
        pp__fail(c, PP_ERR_PROTOCOL, "unexpected batch answer: no \"decisions\" array");
    } else if (json_array_size(decisions) != n) {
        pp__fail(c, PP_ERR_PROTOCOL, "batch answer has %zu decisions for %zu faults",
                 json_array_size(decisions), n);
    } else {
        rc = 0;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            pp_decision d;
            memset(&d, 0, sizeof d);
            rc = unpack_decision(c, json_array_get(decisions, i), &d);
            pp_decision *e = element(out, stride, i);
            e->size = stride;
            copy_out(e, &d);
        }
    }
    json_decref(doc);
    return rc;
}

static int faults_many(pp_client *c, const char *id, const char *field, const uint64_t *values,
                       const uint32_t *streams, size_t n, pp_decision *out) {
    if (c == NULL) return -1;
    if (pp__begin(c) != 0) return -1;
    if (pp__check_id(c, id) != 0) return -1;
    if (values == NULL || out == NULL) return pp__fail(c, PP_ERR_INVALID, "%s or out is NULL", field);
    if (check_out(c, out) != 0) return -1;
    size_t stride = out->size;
    if (n == 0 || n > PP_MAX_BATCH)
        return pp__fail(c, PP_ERR_INVALID, "a batch holds 1 … %d faults, not %zu", PP_MAX_BATCH, n);
    if (pp__url(c, c->url, "/sessions/%s/faults", id) != 0) return -1;
    /* Each value takes at most 22 bytes + ',', each stream 10 + ','. */
    if (pp__buf_reserve(&c->body, 64 + n * 24 + (streams != NULL ? n * 11 : 0)) != 0)
        return pp__fail(c, PP_ERR_OOM, "out of memory");
    char *p = c->body.data;
    p += sprintf(p, "{\"%s\":[", field);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) *p++ = ',';
        p = put_u64(p, values[i]);
    }
    *p++ = ']';
    if (streams != NULL) {
        p += sprintf(p, ",\"streams\":[");
        for (size_t i = 0; i < n; i++) {
            if (i > 0) *p++ = ',';
            p = put_u64(p, streams[i]);
        }
        *p++ = ']';
    }
    *p++ = '}';
    c->body.len = (size_t)(p - c->body.data);
    /* Not retried on a lost connection: part of the batch may be decided. */
    if (pp__session_call(c, id, PP_POST, c->body.data, c->body.len, 0) != 0) return -1;
    if (scan_batch(c->answer.data, n, out, stride) == 0) return 0;
    return unpack_batch(c, n, out, stride);
}

int pp_faults_page(pp_client *c, const char *id, const uint64_t *pages, const uint32_t *streams, size_t n,
                   pp_decision *out) {
    return faults_many(c, id, "pages", pages, streams, n, out);
}

int pp_faults_addr(pp_client *c, const char *id, const uint64_t *addrs, const uint32_t *streams, size_t n,
                   pp_decision *out) {
    return faults_many(c, id, "addrs", addrs, streams, n, out);
}
