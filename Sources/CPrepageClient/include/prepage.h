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
 *     pp_decision d;
 *     if (pp_fault_addr(c, "vm-1", 0x7f0000001000, vcpu, &d) == 0)
 *         fetch(d.addr, d.bytes);
 *     pp_session_delete(c, "vm-1");
 *     pp_client_free(c);
 *
 * Errors: every call that can fail returns 0 on success and -1 on error;
 * pp_client_err() then says which kind (PP_ERR_*), pp_client_errstr() says
 * what, and pp_client_http_status() gives the status of the last answer.
 *
 * Thread safety: a pp_client belongs to one thread at a time; use one client
 * per thread (each keeps its own connection). Different clients may be used
 * from different threads at once once pp_global_init() has returned.
 *
 * Ownership: every object the library hands out has exactly one free
 * function, and every free function accepts NULL.
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

#define PP_VERSION_MAJOR 0
#define PP_VERSION_MINOR 1
#define PP_VERSION_PATCH 0
#define PP_VERSION_STRING "0.1.0"
/** (major << 16) | (minor << 8) | patch, for compile-time comparisons. */
#define PP_VERSION_NUM ((PP_VERSION_MAJOR << 16) | (PP_VERSION_MINOR << 8) | PP_VERSION_PATCH)

/** The library's version at run time, "MAJOR.MINOR.PATCH". */
PP_API const char *pp_version(void);

/**
 * Initialises libcurl (curl_global_init) and jansson's hash seed, once.
 *
 * Call it from the main thread before any other thread starts and before the
 * first pp_client_new(): libcurl's global init is not thread-safe. Further
 * calls do nothing. Returns 0, or -1 when libcurl cannot initialise.
 */
PP_API int pp_global_init(void);
/** Releases what pp_global_init() acquired; call it once, last, after every client is freed. */
PP_API void pp_global_cleanup(void);

/** Error kinds of pp_client_err(). */
enum {
    PP_OK = 0,
    PP_ERR_IO = 1,       /**< connection refused, reset, unresolvable host… */
    PP_ERR_TIMEOUT = 2,  /**< connect or request timeout elapsed */
    PP_ERR_HTTP = 3,     /**< the server answered >= 400; errstr is its problem `detail` */
    PP_ERR_PROTOCOL = 4, /**< an answer that cannot be parsed */
    PP_ERR_OOM = 5,      /**< out of memory */
    PP_ERR_INVALID = 6   /**< a bad argument (NULL, malformed session id, …) */
};
/** A short constant name for an error kind: "io", "timeout", "http", … */
PP_API const char *pp_err_name(int err);

/**
 * Options of a client. Fill with pp_options_init() first, then change what
 * you need: fields may be added at the end in later versions.
 * Strings are copied by pp_client_new().
 */
typedef struct pp_options {
    const char *base_url;     /**< "http://127.0.0.1:7070" (the default); no trailing path needed */
    const char *token;        /**< bearer token, or NULL (default) for none */
    long connect_timeout_ms;  /**< default 1,000 */
    long request_timeout_ms;  /**< whole request, connect included; default 5,000 */
    int max_retries;          /**< retries after a connection failure or timeout; default 3, 0 = none */
    long retry_base_ms;       /**< first backoff; doubles each retry, jittered; default 10 */
    long retry_max_ms;        /**< cap of one backoff; default 1,000 */
    int recreate_sessions;    /**< 1 (default): on a 404 for a session this client created,
                                   re-create it with the same config and retry once */
} pp_options;

/** Sets every option to its default. */
PP_API void pp_options_init(pp_options *opts);

/** A client: one connection kept alive, its error state, its created sessions. */
typedef struct pp_client pp_client;

/**
 * A new client; `opts` NULL means every default. Returns NULL only when out
 * of memory; on any other problem (a base URL that is not http(s)://…) it
 * returns a client whose pp_client_err() says why and on which every call
 * fails the same way. Connects lazily, on the first call.
 */
PP_API pp_client *pp_client_new(const pp_options *opts);
/** Frees the client and closes its connection. NULL-safe. */
PP_API void pp_client_free(pp_client *c);

/** The kind of the last error (PP_OK after a success). PP_ERR_OOM for a NULL client. */
PP_API int pp_client_err(const pp_client *c);
/** A message for the last error, "" after a success. Valid until the next call on c. */
PP_API const char *pp_client_errstr(const pp_client *c);
/** The HTTP status of the last answer, 0 when none came. */
PP_API int pp_client_http_status(const pp_client *c);

/* ---- Sessions -------------------------------------------------------- */

/** A label of a session: a key and a value, for the orchestrator's own use. */
typedef struct pp_label {
    const char *key;
    const char *value;
} pp_label;

/**
 * A session's configuration (api.md, dp.md). Fill with
 * pp_session_config_init(): integer fields at -1 and NULL pointers are left
 * to the server's defaults. In a pp_session returned by the library every
 * field is set and its strings belong to that pp_session.
 */
typedef struct pp_session_config {
    const char *policy;       /**< "dp" (server default), "dp-literal", or a baseline the server
                                   offers ("none", "forward", "readahead"); NULL = default */
    int64_t min_pages;
    int64_t max_pages;
    int64_t k;
    int64_t initial_pages;
    int64_t gap;
    int64_t memory_pages;     /**< 0 = unbounded */
    int64_t max_streams;
    int64_t page_size;        /**< bytes, a power of two from 512 to 1 GiB; server default 4,096 */
    const pp_label *labels;   /**< at most 16; NULL when nlabels is 0 */
    size_t nlabels;
    /* Fields of one policy each; the server rejects them for another policy
     * (400). In a document, -1 when the session's policy has no such field. */
    int64_t forward_pages;    /**< policy "forward": pages after the faulting one */
    int64_t backward_pages;   /**< policy "forward": pages before it */
    int64_t ra_initial;       /**< policy "readahead": first window */
    int64_t ra_max;           /**< policy "readahead": largest window */
} pp_session_config;

/** Defined when pp_session_config has the per-policy fields above. */
#define PP_HAVE_POLICY_FIELDS 1

/** Sets every field to "server default". */
PP_API void pp_session_config_init(pp_session_config *cfg);

/** What one stream (vCPU) of a session is doing. */
typedef struct pp_stream_state {
    uint32_t stream;
    int64_t ntest;
    int64_t min_hit;
    int64_t max_hit;
    int64_t window_start;
    int64_t window_count;
    int up;                   /**< 1 when the direction is "up", 0 when "down" */
} pp_stream_state;

/** A session's counters. Times are RFC 3339 UTC, "" when absent or null. */
typedef struct pp_session_stats {
    int64_t faults, first, smaller, larger, reverse, repeat, pages_advised;
    char created_at[40];
    char last_fault_at[40];
} pp_session_stats;

/**
 * A session document, owned by the caller once returned: free it with
 * pp_session_free(). Fields may be added at the end in later versions.
 */
typedef struct pp_session {
    char *id;
    pp_session_config config;
    int64_t nmin, nmax;
    int64_t *min_record;      /**< oldest first, as the server lists it */
    size_t min_record_len;
    int64_t *max_record;
    size_t max_record_len;
    pp_stream_state *streams; /**< ordered by stream id */
    size_t nstreams;
    pp_session_stats stats;
} pp_session;

/** Frees a session document. NULL-safe. */
PP_API void pp_session_free(pp_session *s);

/** One page of GET /sessions: free it with pp_session_page_free(). */
typedef struct pp_session_page {
    pp_session *sessions;     /**< `count` documents, ordered by id; owned by the list */
    size_t count;
    char *next;               /**< the id to pass as `after` for the next page; NULL at the end */
} pp_session_page;

/** Frees a list and every document in it. NULL-safe. */
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
PP_API int pp_session_create_ex(pp_client *c, const char *id, const pp_session_config *cfg,
                                pp_session **out);
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

/* ---- Faults ---------------------------------------------------------- */

/** How a decision was reached (dp.md). */
typedef enum pp_outcome {
    PP_FIRST = 0,
    PP_SMALLER = 1,
    PP_LARGER = 2,
    PP_REVERSE = 3,
    PP_REPEAT = 4
} pp_outcome;

/** "first", "smaller", …; "unknown" for a value out of range. */
PP_API const char *pp_outcome_name(pp_outcome o);

/** The window to fetch: pages [start, start+count), bytes [addr, addr+bytes). */
typedef struct pp_decision {
    uint64_t start;
    uint64_t count;
    pp_outcome outcome;
    uint64_t ntest, nmin, nmax;
    uint64_t addr, bytes;
} pp_decision;

/**
 * POST /sessions/{id}/fault {"page": page, "stream": stream}; the decision is
 * written into *out. Allocates nothing: the body is formatted into a buffer
 * inside the client and the answer scanned in place. Retried on a connection
 * failure or timeout (a retried fault is answered `repeat`, api.md).
 */
PP_API int pp_fault_page(pp_client *c, const char *id, uint64_t page, uint32_t stream,
                         pp_decision *out);
/** pp_fault_page() by byte address: the server divides by the session's page_size. */
PP_API int pp_fault_addr(pp_client *c, const char *id, uint64_t addr, uint32_t stream,
                         pp_decision *out);

/** Most faults accepted by one batch. */
#define PP_MAX_BATCH 65536

/**
 * POST /sessions/{id}/faults: n pages (1 … PP_MAX_BATCH) decided in order,
 * exactly as if posted one by one; `streams` is NULL (all stream 0) or n
 * entries; out receives n decisions. Not retried after a connection failure
 * (the faults of the batch may have been decided already).
 */
PP_API int pp_faults_page(pp_client *c, const char *id, const uint64_t *pages,
                          const uint32_t *streams, size_t n, pp_decision *out);
/** pp_faults_page() by byte addresses. */
PP_API int pp_faults_addr(pp_client *c, const char *id, const uint64_t *addrs,
                          const uint32_t *streams, size_t n, pp_decision *out);

#ifdef __cplusplus
}
#endif

#endif /* PREPAGE_H */
