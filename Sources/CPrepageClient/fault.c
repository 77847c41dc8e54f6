/*
 * fault.c — the fault calls, on the hot path of a migration.
 *
 * A single fault allocates nothing here: the body is formatted into a buffer
 * inside the client, and the fixed-format decision the server answers is read
 * by a hand-written scan straight into the caller's pp_decision. Only an
 * answer the scan does not recognise (escapes, nested values, a reordered
 * or extended document it cannot skip) goes through jansson.
 */
#define _POSIX_C_SOURCE 200809L

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
        if (*p >= '0' && *p <= '9') d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
        else if (*p >= 'A' && *p <= 'F') d = (unsigned)(*p - 'A' + 10);
        else break;
        if (x >> 60) return NULL;
        x = (x << 4) | d;
    }
    if (p == start) return NULL;
    *v = x;
    return p;
}

/* A number as the server may write it: an integer, or a string of decimal
 * or 0x hexadecimal (api.md). */
static const char *scan_number(const char *p, uint64_t *v) {
    if (*p != '"') return scan_dec(p, v);
    p++;
    p = (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? scan_hex(p + 2, v) : scan_dec(p, v);
    return p != NULL && *p == '"' ? p + 1 : NULL;
}

static int outcome_from(const char *s, size_t n, pp_outcome *o) {
    static const char *const names[] = {"first", "smaller", "larger", "reverse", "repeat"};
    for (int i = 0; i < 5; i++) {
        if (strlen(names[i]) == n && memcmp(s, names[i], n) == 0) {
            *o = (pp_outcome)i;
            return 0;
        }
    }
    return -1;
}

/* Which field a key names (its flag), 0 for a key to skip. */
static int field_of(const char *k, size_t n) {
#define KEY(lit, flag) \
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
            if (field == F_OUTCOME && outcome_from(s, (size_t)(p - s), &d->outcome) != 0)
                return NULL;
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
    const char *p = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? scan_hex(s + 2, out)
                                                                  : scan_dec(s, out);
    return p != NULL && *p == '\0' ? 0 : -1;
}

static int unpack_decision(pp_client *c, json_t *obj, pp_decision *d) {
    json_error_t jerr;
    json_t *start, *count, *ntest, *nmin, *nmax, *addr, *bytes;
    const char *outcome;
    if (json_unpack_ex(obj, &jerr, 0, "{s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "start", &start,
                       "count", &count, "outcome", &outcome, "ntest", &ntest, "nmin", &nmin,
                       "nmax", &nmax, "addr", &addr, "bytes", &bytes) != 0)
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

/* ---- Single fault -------------------------------------------------------- */

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

static int fault_one(pp_client *c, const char *id, const char *field, uint64_t value,
                     uint32_t stream, pp_decision *out) {
    if (c == NULL) return -1;
    if (pp__begin(c) != 0) return -1;
    if (pp__check_id(c, id) != 0) return -1;
    if (out == NULL) return pp__fail(c, PP_ERR_INVALID, "out is NULL");
    if (pp__url(c, c->url, "/sessions/%s/fault", id) != 0) return -1;
    /* {"page":N,"stream":S}: at most 8 + 4 + 22 + 10 + 10 bytes. */
    char *p = c->fault_body;
    p += sprintf(p, "{\"%s\":", field);
    p = put_u64(p, value);
    p += sprintf(p, ",\"stream\":%lu}", (unsigned long)stream);
    /* Retrying a fault is safe: the same fault again is answered `repeat`. */
    if (pp__session_call(c, id, PP_POST, c->fault_body, (size_t)(p - c->fault_body), 1) != 0)
        return -1;

    const char *end = scan_decision(c->answer.data, out);
    if (end != NULL && *skip_ws(end) == '\0') return 0;
    json_t *doc = load_answer(c);
    if (doc == NULL) return -1;
    int rc = unpack_decision(c, doc, out);
    json_decref(doc);
    return rc;
}

int pp_fault_page(pp_client *c, const char *id, uint64_t page, uint32_t stream, pp_decision *out) {
    return fault_one(c, id, "page", page, stream, out);
}

int pp_fault_addr(pp_client *c, const char *id, uint64_t addr, uint32_t stream, pp_decision *out) {
    return fault_one(c, id, "addr", addr, stream, out);
}

/* ---- Batch --------------------------------------------------------------- */

/* {"decisions":[d, d, …]} with exactly n decisions, scanned; -1 to ask jansson. */
static int scan_batch(const char *p, size_t n, pp_decision *out) {
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
        if ((p = scan_decision(p + 1, &out[i])) == NULL) return -1;
        p = skip_ws(p);
        if (*p != (i + 1 < n ? ',' : ']')) return -1;
    }
    p = skip_ws(p + 1);
    if (*p != '}') return -1;
    return *skip_ws(p + 1) == '\0' ? 0 : -1;
}

static int unpack_batch(pp_client *c, size_t n, pp_decision *out) {
    json_t *doc = load_answer(c);
    if (doc == NULL) return -1;
    json_error_t jerr;
    json_t *decisions = NULL;
    int rc = -1;
    if (json_unpack_ex(doc, &jerr, 0, "{s:o}", "decisions", &decisions) != 0 ||
        !json_is_array(decisions)) {
        pp__fail(c, PP_ERR_PROTOCOL, "unexpected batch answer: no \"decisions\" array");
    } else if (json_array_size(decisions) != n) {
        pp__fail(c, PP_ERR_PROTOCOL, "batch answer has %zu decisions for %zu faults",
                 json_array_size(decisions), n);
    } else {
        rc = 0;
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = unpack_decision(c, json_array_get(decisions, i), &out[i]);
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
    if (scan_batch(c->answer.data, n, out) == 0) return 0;
    return unpack_batch(c, n, out);
}

int pp_faults_page(pp_client *c, const char *id, const uint64_t *pages, const uint32_t *streams,
                   size_t n, pp_decision *out) {
    return faults_many(c, id, "pages", pages, streams, n, out);
}

int pp_faults_addr(pp_client *c, const char *id, const uint64_t *addrs, const uint32_t *streams,
                   size_t n, pp_decision *out) {
    return faults_many(c, id, "addrs", addrs, streams, n, out);
}
