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
} pc_window;

/* A policy as given on the command line: a name, optionally `:W` for the
 * window of `forward` (W pages from the fault: forward_pages = W - 1).
 * `local-none` and `local-forward[:W]` (default W = 8) are computed
 * in-process, without asking prepaged: the baselines as an agent without an
 * oracle runs them, with no oracle round trip. */
typedef struct pc_policy {
    char name[32];
    int64_t window;    /* -1 when not given */
} pc_policy;

/* Parses "dp", "forward:16", ... 0 ok, -1 malformed. */
int pc_policy_parse(const char *text, pc_policy *out);
/* "forward:16" back, into buf. */
const char *pc_policy_label(const pc_policy *p, char *buf, size_t len);

typedef struct pc_oracle_config {
    const char *server_url;   /* e.g. http://127.0.0.1:7070 */
    const char *token;        /* NULL = none */
    const char *session_id;
    pc_policy policy;
    uint64_t memory_pages;
    uint64_t page_size;
    int64_t max_pages;        /* -1 = server default */
    int64_t local_window;     /* > 0: development oracle, no server */
} pc_oracle_config;

typedef struct pc_oracle pc_oracle;

enum { PC_ORACLE_OK = 0, PC_ORACLE_ERROR = -1, PC_ORACLE_REJECTED = -2 };

/* Opens the oracle (creates the session). Returns PC_ORACLE_OK and *out, or
 * PC_ORACLE_REJECTED when the server refused the configuration with a 400
 * (e.g. a policy it does not know), or PC_ORACLE_ERROR; err gets why. */
int pc_oracle_open(const pc_oracle_config *cfg, pc_oracle **out, char *err, size_t errlen);
/* Asks for the window of a fault. 0 ok, -1 error (pc_oracle_error says why). */
int pc_oracle_ask(pc_oracle *o, uint64_t page, uint32_t stream, pc_window *out);
const char *pc_oracle_error(const pc_oracle *o);
/* What the server says of the session at its end (prepaged only). */
typedef struct pc_oracle_summary {
    int valid;
    int64_t faults, first, smaller, larger, reverse, repeat;
    int64_t nmin, nmax;
} pc_oracle_summary;

/* Deletes the session and frees the oracle; fills *summary (may be NULL)
 * from the session's final document. NULL-safe. */
void pc_oracle_close(pc_oracle *o, pc_oracle_summary *summary);
/* Whether libprepage was compiled in. */
int pc_oracle_has_client(void);

#endif
