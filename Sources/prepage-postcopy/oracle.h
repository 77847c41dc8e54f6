/* oracle.h: where the destination asks which pages to fetch for a fault.
 *
 * Two implementations behind one call:
 * - prepaged, through libprepage (the real one): one session per run;
 * - a fixed window computed in-process, for development without a server.
 */
#ifndef PC_ORACLE_H
#define PC_ORACLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pc_window {
    uint64_t start;
    uint64_t count;
    int fallback; /* decided by libprepage, not the oracle, which was away */
} pc_window;

/* A policy as given on the command line: a name, optionally `:W` for the
 * window of `forward` (W pages from the fault: forward_pages = W - 1).
 * `local-none` and `local-forward[:W]` (default W = 8) are computed
 * in-process, without asking prepaged: the baselines as an agent without an
 * oracle runs them, with no oracle round trip. */
typedef struct pc_policy {
    char name[32];
    int64_t window; /* -1 when not given */
} pc_policy;

/* Parses "dp", "forward:16", ... 0 ok, -1 malformed. */
int pc_policy_parse(const char *text, pc_policy *out);
/* "forward:16" back, into buf. */
const char *pc_policy_label(const pc_policy *p, char *buf, size_t len);

typedef struct pc_oracle_config {
    const char *server_url; /* e.g. http://127.0.0.1:7070 */
    const char *token;      /* NULL = none */
    const char *session_id;
    pc_policy policy;
    uint64_t memory_pages;
    uint64_t page_size;
    int64_t max_pages;      /* -1 = server default */
    int64_t local_window;   /* > 0: development oracle, no server */
    long fault_deadline_ms; /* 0 = libprepage's default */
    double rtt_us, page_us; /* the link's figures, sent for policy dp-plus; < 0 = not known */
} pc_oracle_config;

typedef struct pc_oracle pc_oracle;

enum { PC_ORACLE_OK = 0, PC_ORACLE_ERROR = -1, PC_ORACLE_REJECTED = -2 };

/* Opens the oracle (creates the session). Returns PC_ORACLE_OK and *out, or
 * PC_ORACLE_REJECTED when the server refused the configuration with a 400
 * (e.g. a policy it does not know), or PC_ORACLE_ERROR; err gets why. */
int pc_oracle_open(const pc_oracle_config *cfg, pc_oracle **out, char *err, size_t errlen);
/* Asks for the window of a fault. 0 ok, -1 error (pc_oracle_error says why). */
int pc_oracle_ask(pc_oracle *o, uint64_t page, uint32_t stream, pc_window *out);
/* The same in two steps, for a caller that fetches meanwhile (libprepage's
 * asynchronous fault): submit, then collect. pc_oracle_collect waits up to
 * wait_ms (0: not at all, -1: until the decision, which libprepage's deadline
 * bounds) and returns 0 with *out, PC_ORACLE_PENDING, or -1 on error. */
enum { PC_ORACLE_PENDING = 1 };
int pc_oracle_submit(pc_oracle *o, uint64_t page, uint32_t stream);
int pc_oracle_collect(pc_oracle *o, long wait_ms, pc_window *out);
/* The descriptor that turns readable when the submitted fault may be collected
 * (-1 when the decision is ready or needs no waiting), and the longest wait. */
void pc_oracle_pollinfo(pc_oracle *o, int *fd, long *timeout_ms);
const char *pc_oracle_error(const pc_oracle *o);
/* What the server says of the session at its end (prepaged only). */
typedef struct pc_oracle_summary {
    int valid;
    int64_t faults, first, smaller, larger, reverse, repeat;
    int64_t nmin, nmax;
    double rtt_us, page_us; /* the session's dp-plus link figures, -1 for another policy */
} pc_oracle_summary;

/* Deletes the session and frees the oracle; fills *summary (may be NULL)
 * from the session's final document. NULL-safe. */
void pc_oracle_close(pc_oracle *o, pc_oracle_summary *summary);

#endif
