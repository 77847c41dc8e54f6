/* internal.h — what the parts of libprepage share; not installed. */
#ifndef PREPAGE_INTERNAL_H
#define PREPAGE_INTERNAL_H

#include "prepage.h"

#include <curl/curl.h>
#include <jansson.h>

/** Longest base URL accepted, in bytes. */
#define PP_MAX_BASE_URL 1024
/** Room for base URL + "/sessions/" + id + "/faults" or a list query. */
#define PP_URL_SIZE (PP_MAX_BASE_URL + 512)
/** Largest answer body accepted: a full batch is about 9 MiB. Default 256 MiB. */
#define PP_MAX_ANSWER_BYTES ((size_t)256 << 20)
/** First size of the answer buffer; one fault answer is about 130 bytes. */
#define PP_ANSWER_INITIAL 16384
/** The server's default page size, for fallbacks of sessions whose page size is unknown. */
#define PP_DEFAULT_PAGE_SIZE 4096u

/* The smallest `size` of each caller-allocated struct this library accepts:
 * the struct as 1.0 laid it out (its last 1.0 field's end). */
#define PP__END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#define PP_OPTIONS_SIZE_1_0  PP__END(pp_options, breaker_max_ms)
#define PP_CONFIG_SIZE_1_0   PP__END(pp_session_config, page_us)
#define PP_DECISION_SIZE_1_0 PP__END(pp_decision, bytes)

/** The outcomes' names on the wire, indexed by pp_outcome (client.c): pp_outcome_name()
 * and the fault parser read this one list. */
#define PP__OUTCOMES (PP_FALLBACK + 1)
extern const char *const pp__outcome_names[PP__OUTCOMES];

typedef enum pp_method { PP_GET, PP_PUT, PP_POST, PP_DELETE } pp_method;

/** A growable byte buffer owned by the client, reused across calls. */
typedef struct pp_buf {
    char *data;
    size_t len;
    size_t cap;
} pp_buf;

/** A session this client created or registered: its id, the exact PUT body to
 * re-create it after a 404, and its page size (0 = server default). */
typedef struct pp_known {
    char *id;
    char *body;
    uint64_t page_size;
    struct pp_known *next;
} pp_known;

/** Where a single fault is. */
typedef enum pp_fault_phase {
    PP_FAULT_NONE = 0, /* nothing submitted */
    PP_FAULT_SENDING,  /* a transfer (the fault, or the PUT re-creating its session) runs */
    PP_FAULT_WAITING,  /* between attempts: the next one starts at retry_at_ns */
    PP_FAULT_READY     /* decided (or failed): waiting to be collected */
} pp_fault_phase;

/*
 * How many times a call re-creates its session after a 404. One is enough for
 * a restarted server; behind a balancer whose ring is changing (an instance
 * just died and not every request knows it yet), the re-creation and the
 * repeated request can reach two different instances, and the first then
 * pulls the session back from the second: a 404 again, answered by another
 * re-creation. A fault's deadline bounds them as well.
 */
#define PP_MAX_RECREATIONS 3

/** The single fault in flight: everything lives in the client, nothing is allocated. */
typedef struct pp_fault_state {
    pp_fault_phase phase;
    int rc;        /* READY: 0 or -1 */
    pp_decision d; /* READY with rc 0: the decision, as this library lays it out */
    int by_addr;
    uint64_t value; /* the page or the address */
    char id[129];
    uint64_t deadline_ns;
    uint64_t retry_at_ns;
    int attempts;        /* requests sent for the fault itself */
    int recreating;      /* the running transfer is the PUT re-creating the session */
    int recreations;     /* re-creations during this fault, at most PP_MAX_RECREATIONS */
    int fresh;           /* the next attempt opens a new connection */
    long retry_after_ms; /* the last 503's Retry-After, 0 when none */
    int err;             /* READY: the error kind and message the collect reports */
    char why[1024];
} pp_fault_state;

/** A connection socket this client opened (CURLOPT_OPENSOCKETFUNCTION): kept in the
 * epoll set between transfers, so a kept-alive connection costs no epoll_ctl per request. */
typedef struct pp_sock {
    int fd;          /* -1: free slot */
    uint32_t events; /* what the epoll set watches for it now */
    int registered;  /* in the epoll set */
    int active;      /* libcurl watches it (between its socket callback and CURL_POLL_REMOVE) */
} pp_sock;
#define PP_MAX_SOCKS 4

struct pp_client {
    CURL *curl;
    CURLM *multi;
    int epfd;    /* epoll set of the transfer's sockets; the fd an event loop watches */
    int running; /* the easy handle is in the multi handle */
    int done;    /* the transfer finished: its result is in `result` */
    CURLcode result;
    uint64_t timer_ns; /* libcurl's timer, UINT64_MAX when none */
    pp_sock socks[PP_MAX_SOCKS];
    struct curl_slist *headers;
    char *base_url; /* without a trailing '/' */
    char *token;
    pp_options opts;
    int init_err; /* set by pp_client_new when the client is unusable */
    int err;
    int status;
    int answer_too_big;
    int answer_oom;
    int retried; /* the last perform needed more than one attempt */
    uint64_t rng;
    /* The circuit breaker of the fault calls. */
    uint64_t breaker_until_ns; /* no fault is sent before this */
    long breaker_period_ms;    /* 0 = closed */
    int breaker_err;           /* the failure that opened it */
    char breaker_why[256];
    /* The page size of the last session a decision came from, for fallbacks. */
    char last_id[129];
    uint64_t last_page_size;
    pp_fault_state fault;
    char errstr[1024];
    char init_errstr[256];
    char curl_errbuf[CURL_ERROR_SIZE];
    char url[PP_URL_SIZE];
    char url_set[PP_URL_SIZE]; /* the URL the easy handle holds now */
    char fault_url[PP_URL_SIZE];
    char fault_body[96];
    size_t fault_body_len;
    pp_buf answer; /* the last answer's body, NUL-terminated */
    pp_buf body;   /* request body of batch calls */
    pp_known *known;
};

/* client.c */
uint64_t pp__now_ns(void);
int pp__begin(pp_client *c);
int pp__fail(pp_client *c, int err, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int pp__valid_id(const char *id);
int pp__check_id(pp_client *c, const char *id);
int pp__url(pp_client *c, char *dst, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* One transfer on the client's easy handle, through its multi handle. */
int pp__xfer_setup(pp_client *c, pp_method m, const char *url, const char *body, size_t len, long timeout_ms,
                   long connect_timeout_ms, int fresh);
int pp__xfer_start(pp_client *c);
int pp__xfer_step(pp_client *c, uint64_t until_ns);
void pp__xfer_abort(pp_client *c);
int pp__xfer_answer(pp_client *c, CURLcode rc);
int pp__transport_error(pp_client *c, CURLcode rc);
void pp__http_error(pp_client *c);
void pp__sleep_ns(uint64_t ns);
uint64_t pp__random(pp_client *c);
int pp__perform(pp_client *c, pp_method m, const char *url, const char *body, size_t len, int retry);
int pp__session_call(pp_client *c, const char *id, pp_method m, const char *body, size_t len, int retry);
pp_known *pp__find_known(pp_client *c, const char *id);
int pp__remember(pp_client *c, const char *id, const char *body, uint64_t page_size);
void pp__forget(pp_client *c, const char *id);
int pp__buf_reserve(pp_buf *b, size_t need);

/* session.c */
int pp__parse_session(pp_client *c, json_t *doc, pp_session *s);
void pp__session_clear(pp_session *s);

#endif
