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

typedef enum pp_method { PP_GET, PP_PUT, PP_POST, PP_DELETE } pp_method;

/** A growable byte buffer owned by the client, reused across calls. */
typedef struct pp_buf {
    char *data;
    size_t len;
    size_t cap;
} pp_buf;

/** A session this client created: its id and the exact PUT body, to re-create it after a 404. */
typedef struct pp_known {
    char *id;
    char *body;
    struct pp_known *next;
} pp_known;

struct pp_client {
    CURL *curl;
    struct curl_slist *headers;
    char *base_url; /* without a trailing '/' */
    char *token;
    pp_options opts;
    int init_err;   /* set by pp_client_new when the client is unusable */
    int err;
    int status;
    int answer_too_big;
    int answer_oom;
    int retried;    /* the last perform needed more than one attempt */
    uint64_t rng;
    char errstr[1024];
    char init_errstr[256];
    char curl_errbuf[CURL_ERROR_SIZE];
    char url[PP_URL_SIZE];
    char url_set[PP_URL_SIZE]; /* the URL the easy handle holds now */
    char fault_body[96];
    pp_buf answer;  /* the last answer's body, NUL-terminated */
    pp_buf body;    /* request body of batch calls */
    pp_known *known;
};

/* client.c */
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
int pp__perform(pp_client *c, pp_method m, const char *url, const char *body, size_t len,
                int retry);
int pp__session_call(pp_client *c, const char *id, pp_method m, const char *body, size_t len,
                     int retry);
int pp__remember(pp_client *c, const char *id, const char *body);
void pp__forget(pp_client *c, const char *id);
int pp__buf_reserve(pp_buf *b, size_t need);

/* session.c */
int pp__parse_session(pp_client *c, json_t *doc, pp_session *s);
void pp__session_clear(pp_session *s);

#endif
