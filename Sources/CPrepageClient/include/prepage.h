/*
 * prepage.h — the C client of prepaged, the Dynamic Prepage oracle.
 *
 * One header, every symbol prefixed `pp_`. Built on libcurl and jansson,
 * neither of which appears here: a program that includes this header needs
 * neither's headers.
 *
 *     pp_global_init();                       // once, before any thread starts
 *     pp_options o; pp_options_init(&o);
 *     o.base_url = "http://127.0.0.1:7070";
 *     pp_client *c = pp_client_new(&o);       // NULL only when out of memory
 *     pp_session_config cfg; pp_session_config_init(&cfg);
 *     if (pp_session_create(c, "vm-1", &cfg) != 0)
 *         fprintf(stderr, "%s\n", pp_client_errstr(c));
 *     pp_decision d; pp_decision_init(&d);
 *     if (pp_fault_addr(c, "vm-1", 0x7f0000001000, vcpu, &d) == 0)
 *         fetch(d.addr, d.bytes);             // d.outcome == PP_FALLBACK: the oracle is away,
 *                                             // the window is the faulting page alone
 *     pp_session_delete(c, "vm-1");
 *     pp_client_free(c);
 *
 * Errors: every call that can fail returns 0 on success and -1 on error;
 * pp_client_err() then says which kind (PP_ERR_*), pp_client_errstr() says
 * what, and pp_client_http_status() gives the status of the last answer.
 *
 * The fault path fails fast and degrades (see "Faults" below): a fault call
 * has its own deadline, pp_options.fault_deadline_ms (default 5 ms, retries
 * included), and when the oracle does not answer in time, refuses, or
 * answers 5xx, the call still succeeds with a fallback decision computed
 * locally — the faulting page alone, outcome PP_FALLBACK — and the client
 * stops asking for a short, growing period (a circuit breaker), so that the
 * agent runs on demand paging while the oracle is away.
 *
 * Thread safety: a pp_client belongs to one thread at a time; use one client
 * per thread (each keeps its own connection). Different clients may be used
 * from different threads at once once pp_global_init() has returned.
 *
 * Ownership: every object the library hands out has exactly one free
 * function, and every free function accepts NULL.
 *
 * Versions and binary compatibility
 * ---------------------------------
 * MAJOR.MINOR.PATCH (PP_VERSION_*; pp_version() at run time). The shared
 * library's soname is libprepage.so.MAJOR. Within one MAJOR, a program built
 * against any MINOR runs on that MINOR or a later one:
 *   - PATCH: fixes only; nothing in this header changes.
 *   - MINOR: new functions, new enum values (handle values you do not know:
 *     pp_outcome_name() names them), new fields at the END of a struct.
 *   - MAJOR (a new soname): anything else — a removed or reordered field, a
 *     changed signature or meaning. See CHANGELOG.md.
 * What makes field growth safe:
 *   - Structs the caller allocates (pp_options, pp_session_config,
 *     pp_decision) begin with `size`, which their init function sets to the
 *     caller's sizeof (the init functions are inline: they measure the struct
 *     as the caller's compiler laid it out). The library reads and writes only
 *     the first `size` bytes, takes defaults for fields beyond them, and
 *     rejects a struct with a `size` it does not know (PP_ERR_INVALID) — so
 *     always fill these structs with their init function first. Arrays of
 *     decisions use the first element's `size` as the stride.
 *   - Structs the library allocates (pp_session, pp_session_config inside a
 *     document, pp_stream_state, pp_session_stats, pp_session_page) also begin
 *     with `size` (the bytes the library filled), are reached only through
 *     pointers — never embedded by value or laid out in arrays of values —
 *     and grow only at the end. PP_HAS_FIELD(ptr, type, field) tells whether
 *     one carries a field.
 *   - pp_label is frozen for the whole MAJOR version.
 *   - pp_global_init() refuses (returns -1) to run a program built against a
 *     newer MINOR than the library it finds.
 * Other languages' bindings call the *_init_sized() functions with their own
 * struct sizes.
 */
#ifndef PREPAGE_H
#define PREPAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PP_API __attribute__((visibility("default")))
#else
#define PP_API
#endif

#define PP_VERSION_MAJOR  1
#define PP_VERSION_MINOR  2
#define PP_VERSION_PATCH  1
#define PP_VERSION_STRING "1.2.1"
/** (major << 16) | (minor << 8) | patch, for compile-time comparisons. */
#define PP_VERSION_NUM ((PP_VERSION_MAJOR << 16) | (PP_VERSION_MINOR << 8) | PP_VERSION_PATCH)

/** Whether a struct of `type` at `ptr` (with its `size`) carries `field`. */
#define PP_HAS_FIELD(ptr, type, field) ((ptr)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

/** The library's version at run time, "MAJOR.MINOR.PATCH". */
PP_API const char *pp_version(void);
/** The library's PP_VERSION_NUM at run time. */
PP_API int pp_version_num(void);

/**
 * Initialises libcurl (curl_global_init) and jansson's hash seed, once, after
 * checking that the library is at least as new (MAJOR.MINOR) as the header the
 * caller was built with (`header_version`, PP_VERSION_NUM).
 * Returns 0, or -1 when libcurl cannot initialise or the library is older
 * than the header (pp_version() says which it is). Call it through
 * pp_global_init().
 */
PP_API int pp_global_init_version(int header_version);

/**
 * Call once from the main thread before any other thread starts and before
 * the first pp_client_new(): libcurl's global init is not thread-safe.
 * Further calls do nothing. Returns 0 or -1 (see pp_global_init_version).
 */
static inline int pp_global_init(void) {
    return pp_global_init_version(PP_VERSION_NUM);
}
/** Releases what pp_global_init() acquired; call it once, last, after every client is freed. */
PP_API void pp_global_cleanup(void);

/** Error kinds of pp_client_err(). */
enum {
    PP_OK = 0,
    PP_ERR_IO = 1,       /**< connection refused, reset, unresolvable host… */
    PP_ERR_TIMEOUT = 2,  /**< connect or request timeout, or a fault's deadline, elapsed */
    PP_ERR_HTTP = 3,     /**< the server answered >= 400; errstr is its problem `detail` */
    PP_ERR_PROTOCOL = 4, /**< an answer that cannot be parsed */
    PP_ERR_OOM = 5,      /**< out of memory */
    PP_ERR_INVALID = 6   /**< a bad argument (NULL, malformed session id, …) */
};
/** A short constant name for an error kind: "io", "timeout", "http", … */
PP_API const char *pp_err_name(int err);

/**
 * Options of a client. Fill with pp_options_init() first, then change what
 * you need. Strings are copied by pp_client_new().
 *
 * Admin calls (sessions, batches) and fault calls time out differently:
 * admin calls use connect_timeout_ms / request_timeout_ms per attempt and up
 * to max_retries retries with backoff; a single fault (pp_fault_page,
 * pp_fault_addr and the asynchronous calls) has one deadline for everything,
 * fault_deadline_ms.
 */
typedef struct pp_options {
    size_t size;             /**< set by pp_options_init(); do not change */
    const char *base_url;    /**< "http://127.0.0.1:7070" (the default); no trailing path needed */
    const char *token;       /**< bearer token, or NULL (default) for none */
    long connect_timeout_ms; /**< default 1,000 (admin calls; bounded by the deadline for faults) */
    long request_timeout_ms; /**< admin calls: one attempt, connect included; default 5,000 */
    int max_retries;         /**< retries after a connection failure, timeout (admin calls) or
                                   5xx (faults); default 3, 0 = none */
    long retry_base_ms;      /**< admin calls: first backoff; doubles each retry, jittered; default 10 */
    long retry_max_ms;       /**< cap of one backoff; default 1,000 */
    int recreate_sessions;   /**< 1 (default): on a 404 for a session this client created or
                                   registered, re-create it with the same config and retry (up to
                                   three times while 404s go on: behind a balancer whose ring is
                                   changing, the PUT and the retry can reach different instances) */
    /* Since 1.0 */
    long fault_deadline_ms; /**< a single fault, from the call to its decision, retries and a
                                   re-creation included; default 5; >= 1. See "Faults". */
    int fault_fallback;     /**< 1 (default): a fault that misses its deadline, cannot connect or
                                   gets a 5xx/429 answers a PP_FALLBACK decision (return 0) and
                                   opens the circuit breaker; 0: it fails (-1) and nothing is
                                   opened — for tools that want the oracle's answer or nothing */
    long breaker_base_ms;   /**< first period the breaker stays open; default 50 */
    long breaker_max_ms;    /**< cap of the period, which doubles per failed probe; default 1,000 */
} pp_options;

/** Sets every option to its default and `size` to `size` (a binding's sizeof). */
PP_API void pp_options_init_sized(pp_options *opts, size_t size);
/** Sets every option to its default. */
static inline void pp_options_init(pp_options *opts) {
    pp_options_init_sized(opts, sizeof *opts);
}

/** A client: one connection kept alive, its error state, its known sessions, its breaker. */
typedef struct pp_client pp_client;

/**
 * A new client; `opts` NULL means every default. Returns NULL only when out
 * of memory; on any other problem (a base URL that is not http(s)://…, an
 * options struct not filled by pp_options_init) it returns a client whose
 * pp_client_err() says why and on which every call fails the same way.
 * Connects lazily, on the first call. Holds one file descriptor of its own
 * (pp_fault_pollinfo) besides its connection.
 */
PP_API pp_client *pp_client_new(const pp_options *opts);
/** Frees the client and closes its connection. NULL-safe. */
PP_API void pp_client_free(pp_client *c);

/** The kind of the last error (PP_OK after a success, except after a fallback: see
 *  "Faults"). PP_ERR_OOM for a NULL client. */
PP_API int pp_client_err(const pp_client *c);
/** A message for the last error, "" after a success. Valid until the next call on c. */
PP_API const char *pp_client_errstr(const pp_client *c);
/** The HTTP status of the last answer, 0 when none came. */
PP_API int pp_client_http_status(const pp_client *c);

/* ---- Sessions -------------------------------------------------------- */

/** A label of a session: a key and a value, for the orchestrator's own use. Frozen. */
typedef struct pp_label {
    const char *key;
    const char *value;
} pp_label;

/**
 * A session's configuration. Fill with pp_session_config_init(): integer
 * fields at -1, double fields at -1.0 and NULL pointers are left to the
 * server's defaults, and only set fields are sent. In a document returned by
 * the library every field the server reports is set and its strings belong
 * to that document; a field the session's policy does not have is -1.
 */
typedef struct pp_session_config {
    size_t size;        /**< set by pp_session_config_init(); do not change */
    const char *policy; /**< "dp", "dp-literal", "dp-plus", or a baseline the server offers
                                   ("none", "forward", "readahead"); NULL = the server's default */
    /* Policy dp and dp-literal (the server rejects min_pages, k and max_streams for dp-plus). */
    int64_t min_pages;
    int64_t max_pages;
    int64_t k;
    int64_t initial_pages;
    int64_t gap;
    int64_t memory_pages; /**< every policy: guest memory in pages; 0 = unbounded */
    int64_t max_streams;
    int64_t page_size;      /**< every policy: bytes, a power of two from 512 to 1 GiB; default 4,096 */
    const pp_label *labels; /**< at most 16; NULL when nlabels is 0 */
    size_t nlabels;
    /* Fields of one policy each; the server rejects them for another policy (400). */
    int64_t forward_pages;  /**< policy "forward": pages after the faulting one */
    int64_t backward_pages; /**< policy "forward": pages before it */
    int64_t ra_initial;     /**< policy "readahead": first window */
    int64_t ra_max;         /**< policy "readahead": largest window */
    /* Policy "dp-plus" only (since 1.0; what each means: the server's documentation of
     * dp-plus). Integers: -1 = server default. */
    int64_t max_slots;   /**< 1 … 1,024; default 64 */
    int64_t transitions; /**< 1 … 256; default 64 */
    int64_t half_life;   /**< in cases, 1 … 1,000,000; default 22 */
    int64_t near_window; /**< 0 … 1,048,576; default 8 */
    /* Policy "dp-plus" only. Doubles: -1.0 = server default; sent as JSON numbers. */
    double probe_staleness; /**< 0 … 1e9; default 1,000 */
    double fault_fee;       /**< 0 … 1,000; default 1.1 */
    double min_evidence;    /**< 0 … 1e6; default 0.01 */
    double rtt_us;          /**< the link's round trip in µs, 0.001 … 1e7; default 100 */
    double page_us;         /**< one page's transfer time on the link in µs, 0.001 … 1e7;
                                   default 32.768 (4 KiB at 1 Gbit/s) */
} pp_session_config;

/** Defined when pp_session_config has the baselines' fields (forward_pages, …). */
#define PP_HAVE_POLICY_FIELDS 1
/** Defined when pp_session_config has the fields of policy dp-plus. */
#define PP_HAVE_DP_PLUS_FIELDS 1

/** The type of a field of pp_session_config. */
typedef enum pp_config_type {
    PP_CONFIG_STRING = 0, /**< const char *; NULL = the server's default */
    PP_CONFIG_INT = 1,    /**< int64_t; -1 = the server's default */
    PP_CONFIG_DOUBLE = 2  /**< double; -1.0 = the server's default */
} pp_config_type;

/** One field of pp_session_config: its name in the API's JSON, its type, its place. Frozen. */
typedef struct pp_config_field {
    const char *name;
    pp_config_type type;
    size_t offset; /**< offsetof(pp_session_config, the field) */
} pp_config_field;

/**
 * Since 1.2: the fields of pp_session_config this library sends and reads,
 * in struct order (labels aside: an object, not a scalar), and their number in
 * *count. The library encodes and decodes configs through this table alone;
 * bindings can too, by name. The array is static: never freed.
 */
PP_API const pp_config_field *pp_session_config_fields(size_t *count);
/** Defined when pp_session_config_fields() exists. */
#define PP_HAVE_CONFIG_FIELDS 1

/** Sets every field to "server default" and `size` to `size`. */
PP_API void pp_session_config_init_sized(pp_session_config *cfg, size_t size);
/** Sets every field to "server default". */
static inline void pp_session_config_init(pp_session_config *cfg) {
    pp_session_config_init_sized(cfg, sizeof *cfg);
}

/** What one stream (vCPU) of a dp or dp-literal session is doing. */
typedef struct pp_stream_state {
    size_t size;
    uint32_t stream;
    int64_t ntest;
    int64_t min_hit;
    int64_t max_hit;
    int64_t window_start;
    int64_t window_count;
    int up; /**< 1 when the direction is "up", 0 when "down" */
} pp_stream_state;

/** A session's counters. Times are RFC 3339 UTC, "" when absent or null. */
typedef struct pp_session_stats {
    size_t size;
    int64_t faults, first, smaller, larger, reverse, repeat, pages_advised;
    char created_at[40];
    char last_fault_at[40];
} pp_session_stats;

/**
 * A session document, owned by the caller once returned: free it with
 * pp_session_free(). The state fields are those of dp, dp-literal and the
 * baselines; the state of another policy (dp-plus) is not read (nmin, nmax
 * 0, no records, no streams) and never makes a document unreadable.
 */
typedef struct pp_session {
    size_t size;
    char *id;
    pp_session_config *config; /**< never NULL in a returned document */
    int64_t nmin, nmax;
    int64_t *min_record; /**< oldest first, as the server lists it */
    size_t min_record_len;
    int64_t *max_record;
    size_t max_record_len;
    pp_stream_state **streams; /**< nstreams pointers, ordered by stream id */
    size_t nstreams;
    pp_session_stats *stats; /**< never NULL in a returned document */
} pp_session;

/** Frees a session document. NULL-safe. */
PP_API void pp_session_free(pp_session *s);

/** One page of GET /sessions: free it with pp_session_page_free(). */
typedef struct pp_session_page {
    size_t size;
    pp_session **sessions; /**< `count` documents, ordered by id; owned by the page */
    size_t count;
    char *next; /**< the id to pass as `after` for the next page; NULL at the end */
} pp_session_page;

/** Frees a page and every document in it. NULL-safe. */
PP_API void pp_session_page_free(pp_session_page *l);

/*
 * Session ids match [A-Za-z0-9._:-]{1,128}; anything else is PP_ERR_INVALID
 * before any request is sent. `out` parameters receive a new document on
 * success (NULL on error); those of create_ex, delete_ex and reset may be
 * NULL when the document is not wanted, those of get and list may not.
 */

/**
 * PUT /sessions/{id}: creates the session (201), or finds the identical one
 * (200; pp_client_http_status() tells which). A different config is a 409.
 * The client remembers the config to re-create the session after a 404
 * (pp_options.recreate_sessions). `cfg` NULL means every default.
 */
PP_API int pp_session_create(pp_client *c, const char *id, const pp_session_config *cfg);
/** pp_session_create() that also returns the session document. */
PP_API int pp_session_create_ex(pp_client *c, const char *id, const pp_session_config *cfg, pp_session **out);
/**
 * Tells this client a session's config without sending anything, so that it
 * can re-create the session after a 404 (a restarted server, a session moved
 * to another replica) exactly as pp_session_create() would: for per-thread
 * clients that only fault a session another client created. The config must
 * be the one the session was created with (a different one re-creates a
 * different session, or gets a 409 when another client re-created it first).
 * Also tells the client the session's page_size for fallback decisions.
 * `cfg` NULL means every default. Returns 0, or -1 (INVALID, OOM).
 */
PP_API int pp_session_register(pp_client *c, const char *id, const pp_session_config *cfg);
/** GET /sessions/{id}. */
PP_API int pp_session_get(pp_client *c, const char *id, pp_session **out);
/**
 * GET /sessions?limit=N&after=ID. `limit` 0 means the server's default (100),
 * otherwise 1…1000; `after` NULL starts at the first id.
 */
PP_API int pp_session_list(pp_client *c, size_t limit, const char *after, pp_session_page **out);
/** DELETE /sessions/{id}; the client forgets the session's config. */
PP_API int pp_session_delete(pp_client *c, const char *id);
/** pp_session_delete() that also returns the final document. */
PP_API int pp_session_delete_ex(pp_client *c, const char *id, pp_session **out);
/** POST /sessions/{id}/reset: forgets what was learned, keeps config and counters. */
PP_API int pp_session_reset(pp_client *c, const char *id, pp_session **out);

/* ---- Moving a session (since 1.1) ------------------------------------ */

/** Defined when pp_session_export() and pp_session_import() exist. */
#define PP_HAVE_SESSION_STATE 1

/**
 * GET /sessions/{id}/state: the session's whole state — configuration, what
 * its policy learned (every value its next decisions depend on, doubles bit
 * for bit), counters — as the server's versioned JSON document
 * (docs/server.md, "Moving a session"). The document is returned as it came,
 * in a new NUL-terminated string *out (free it with pp_free()), its length in
 * *len when `len` is not NULL. Treat it as opaque: give it to
 * pp_session_import() on another server (or the same one after a restart).
 */
PP_API int pp_session_export(pp_client *c, const char *id, char **out, size_t *len);
/**
 * PUT /sessions/{id} {"state": doc}: makes the session exactly the one `doc`
 * (pp_session_export()'s, `len` bytes; -1 for a NUL-terminated string)
 * describes — a new one (201) or in place of the session of that id (200) —
 * so that its next decision is the one the exported session would have made.
 * The session keeps its counters and creation time; the id is this call's,
 * whatever the document says. Like pp_session_create(), the client remembers
 * the document's config to re-create the session after a 404 (empty, then).
 * A document the server does not accept is a 400 naming the field.
 */
PP_API int pp_session_import(pp_client *c, const char *id, const char *doc, ptrdiff_t len);
/** Frees a string the library returned (pp_session_export's). NULL-safe. */
PP_API void pp_free(void *p);

/* ---- Faults ---------------------------------------------------------- */

/** How a decision was reached. New values may be added in a MINOR version. */
typedef enum pp_outcome {
    PP_FIRST = 0,
    PP_SMALLER = 1,
    PP_LARGER = 2,
    PP_REVERSE = 3,
    PP_REPEAT = 4,
    PP_FALLBACK = 5 /**< since 1.0: decided by the client, not the oracle: the faulting page alone */
} pp_outcome;
/* dp-plus decisions use PP_FIRST, PP_SMALLER and PP_REPEAT only. */

/** "first", "smaller", …, "fallback"; "unknown" for a value out of range. */
PP_API const char *pp_outcome_name(pp_outcome o);

/** The window to fetch: pages [start, start+count), bytes [addr, addr+bytes). */
typedef struct pp_decision {
    size_t size; /**< set by pp_decision_init(); do not change */
    uint64_t start;
    uint64_t count;
    pp_outcome outcome;
    uint64_t ntest, nmin, nmax; /**< 0 in a fallback */
    uint64_t addr, bytes;
} pp_decision;

/** Zeroes a decision and sets `size` to `size`. */
PP_API void pp_decision_init_sized(pp_decision *d, size_t size);
/** Zeroes a decision and sets its size: needed once before the first fault call
 *  that writes into it (for an array, the first element is enough). */
static inline void pp_decision_init(pp_decision *d) {
    pp_decision_init_sized(d, sizeof *d);
}

/*
 * Single faults: the deadline, the fallback and the circuit breaker.
 *
 * A single fault call takes at most fault_deadline_ms (default 5 ms) from the
 * call to its return, whatever happens to the oracle: connect, request,
 * retries and a re-creation after a 404 all fit in it. 5 ms is 50 times the
 * p99 of a fault on loopback (90 µs, docs/client.md) and 10 times a round
 * trip across a data-centre network, so a healthy oracle never meets it; and
 * it bounds what a hung oracle costs a vCPU to 5 ms.
 *
 * Retries within the deadline: a 5xx or 429 (a draining server's 503 with
 * Retry-After among them) and a connection lost mid-request are retried on a
 * new connection — the first retry at once (behind a load balancer it may
 * reach another instance), the next after 1 ms, 2 ms, … — while the deadline
 * leaves time and up to max_retries. A refused or unreachable connection is
 * not retried: nothing listens there now.
 *
 * When the oracle is away — the deadline passes, the connection fails, or
 * 5xx/429 answers remain after the retries — and fault_fallback is 1 (the
 * default), the call returns 0 with a fallback decision: outcome
 * PP_FALLBACK, the faulting page alone (count 1; addr and bytes by the
 * session's page_size as this client knows it: from pp_session_create or
 * pp_session_register, else from the session's last decision, else 4,096),
 * ntest, nmin and nmax 0. pp_client_err() and pp_client_errstr() then say why
 * (the one call that returns 0 with an error set). Test `d.outcome ==
 * PP_FALLBACK` to tell; fetch [d.addr, d.addr + d.bytes) either way.
 *
 * The circuit breaker: that failure opens the client's breaker for
 * breaker_base_ms (50 ms) — or for the server's Retry-After when longer, up
 * to the cap — during which every fault call answers a fallback at once
 * without sending anything. The first fault after the period is sent again
 * (a probe): if it fails, the breaker reopens for twice the period, up to
 * breaker_max_ms (1 s); a decision from the oracle closes it and the next
 * failure starts again from breaker_base_ms. So an oracle that hangs costs
 * each client at most one deadline per period (at most 0.5 % of a thread's
 * time at the 1 s cap), and an oracle that comes back is asked again within
 * the period. Every client (thread) has its own breaker.
 *
 * Answers that show the oracle is there but says no — 400, 404 (after the
 * re-creations, when the client knows the session's config: up to three,
 * within the deadline), 409, 422 — are errors (-1, PP_ERR_HTTP), never
 * fallbacks: they need fixing, not waiting.
 * With fault_fallback 0, a fault that misses its deadline fails with
 * PP_ERR_TIMEOUT (others with their own kind) and no breaker is kept.
 */

/**
 * POST /sessions/{id}/fault {"page": page, "stream": stream}; the decision
 * (or the fallback, see above) is written into *out, which must have been
 * filled by pp_decision_init() once. Allocates nothing in libprepage: the
 * body is formatted into a buffer inside the client and the answer scanned in
 * place. A retried fault is answered `repeat` by the server.
 */
PP_API int pp_fault_page(pp_client *c, const char *id, uint64_t page, uint32_t stream, pp_decision *out);
/** pp_fault_page() by byte address: the server divides by the session's page_size. */
PP_API int pp_fault_addr(pp_client *c, const char *id, uint64_t addr, uint32_t stream, pp_decision *out);

/*
 * Asynchronous single faults, for agents that cannot block a thread (an event
 * loop, libcurl's multi interface): submit a fault, go on (fetch the faulting
 * page), collect the decision when it is there. Same deadline, retries,
 * fallback and breaker as pp_fault_page(); the deadline runs from the submit.
 *
 *     pp_fault_submit_page(c, "vm-1", page, vcpu);   // the request is on its way
 *     fetch_page(page);                               // meanwhile
 *     int fd; long ms;
 *     while (pp_fault_collect(c, 0, &d) == PP_PENDING) {
 *         pp_fault_pollinfo(c, &fd, &ms);             // or hand fd and ms to your event loop
 *         struct pollfd p = {fd, POLLIN, 0};
 *         poll(&p, 1, (int)ms);
 *     }
 *
 * One fault at a time per client: while one is submitted and not collected
 * (or cancelled), every other call on that client fails with PP_ERR_INVALID.
 */

/** pp_fault_collect() when the decision is not there yet. */
#define PP_PENDING 1

/** Submits a fault by page without waiting for its decision. 0, or -1 when nothing was
 *  submitted (the error says why). With the breaker open, nothing is sent and the
 *  fallback is ready at once. */
PP_API int pp_fault_submit_page(pp_client *c, const char *id, uint64_t page, uint32_t stream);
/** pp_fault_submit_page() by byte address. */
PP_API int pp_fault_submit_addr(pp_client *c, const char *id, uint64_t addr, uint32_t stream);
/**
 * Collects the submitted fault's decision, waiting at most `timeout_ms` for
 * it (0: not at all, only make progress; -1: until it is there, which the
 * deadline bounds). Returns 0 with *out set (a fallback when the deadline
 * passed), PP_PENDING when it is not there yet (call again; nothing is
 * written), or -1 on error; 0 and -1 end the fault.
 */
PP_API int pp_fault_collect(pp_client *c, long timeout_ms, pp_decision *out);
/**
 * For an event loop: the one file descriptor to watch for readability
 * (it stays the same for the client's life: an epoll set of its sockets),
 * and the longest wait before calling pp_fault_collect(c, 0, …) again
 * (milliseconds, rounded up; 0 when the decision is ready; never past the
 * deadline). Returns 0, or -1 when no fault is submitted.
 */
PP_API int pp_fault_pollinfo(pp_client *c, int *fd, long *timeout_ms);
/** Abandons the submitted fault, if any (its connection is closed). NULL-safe. */
PP_API void pp_fault_cancel(pp_client *c);

/**
 * The circuit breaker: milliseconds until this client asks the oracle again
 * (0 when it asks at the next fault), and in *period_ms (when not NULL) the
 * current open period (0 when closed: the last fault was decided by the oracle).
 */
PP_API long pp_client_breaker_ms(const pp_client *c, long *period_ms);

/** Most faults accepted by one batch. */
#define PP_MAX_BATCH 65536

/**
 * POST /sessions/{id}/faults: n pages (1 … PP_MAX_BATCH) decided in order,
 * exactly as if posted one by one; `streams` is NULL (all stream 0) or n
 * entries; out receives n decisions (out[0] filled by pp_decision_init(); its
 * size is the stride). An admin call: request_timeout_ms, no fallback, no
 * breaker, and not retried after a connection failure (the faults of the
 * batch may have been decided already).
 */
PP_API int pp_faults_page(pp_client *c, const char *id, const uint64_t *pages, const uint32_t *streams,
                          size_t n, pp_decision *out);
/** pp_faults_page() by byte addresses. */
PP_API int pp_faults_addr(pp_client *c, const char *id, const uint64_t *addrs, const uint32_t *streams,
                          size_t n, pp_decision *out);

#ifdef __cplusplus
}
#endif

#endif /* PREPAGE_H */
