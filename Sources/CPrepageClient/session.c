/*
 * session.c — create, get, list, delete and reset a session, and the session
 * document parsed with jansson into caller-owned structs.
 *
 * jansson rules: json_pack / json_unpack_ex with a json_error_t; `_new`
 * setters steal, json_object_get and unpacked "s"/"o" values are borrowed,
 * so strings are copied before the document is released; never JSON_STRICT
 * on an answer, so fields added by a later server do not break this client.
 */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pp_session_config_init(pp_session_config *cfg) {
    if (cfg == NULL) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->policy = NULL;
    cfg->min_pages = cfg->max_pages = cfg->k = cfg->initial_pages = -1;
    cfg->gap = cfg->memory_pages = cfg->max_streams = cfg->page_size = -1;
    cfg->labels = NULL;
    cfg->nlabels = 0;
    cfg->forward_pages = cfg->backward_pages = cfg->ra_initial = cfg->ra_max = -1;
}

/* ---- Documents ----------------------------------------------------------- */

void pp__session_clear(pp_session *s) {
    free(s->id);
    free((char *)s->config.policy);
    for (size_t i = 0; i < s->config.nlabels; i++) {
        free((char *)s->config.labels[i].key);
        free((char *)s->config.labels[i].value);
    }
    free((pp_label *)s->config.labels);
    free(s->min_record);
    free(s->max_record);
    free(s->streams);
    memset(s, 0, sizeof *s);
}

void pp_session_free(pp_session *s) {
    if (s == NULL) return;
    pp__session_clear(s);
    free(s);
}

void pp_session_page_free(pp_session_page *l) {
    if (l == NULL) return;
    for (size_t i = 0; i < l->count; i++) pp__session_clear(&l->sessions[i]);
    free(l->sessions);
    free(l->next);
    free(l);
}

static int bad_doc(pp_client *c, const char *what, const json_error_t *jerr) {
    return pp__fail(c, PP_ERR_PROTOCOL, "unexpected session document: %s%s%s", what,
                    jerr != NULL ? ": " : "", jerr != NULL ? jerr->text : "");
}

static int oom(pp_client *c) { return pp__fail(c, PP_ERR_OOM, "out of memory"); }

/* An int64 array of integers; an absent array leaves *out NULL. */
static int parse_record(pp_client *c, json_t *arr, int64_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (arr == NULL || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return bad_doc(c, "a record is not an array", NULL);
    size_t n = json_array_size(arr);
    if (n == 0) return 0;
    *out = calloc(n, sizeof **out);
    if (*out == NULL) return oom(c);
    *len = n;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v)) return bad_doc(c, "a record holds a non-integer", NULL);
        (*out)[i] = (int64_t)json_integer_value(v);
    }
    return 0;
}

static int parse_config(pp_client *c, json_t *cfg, pp_session_config *out) {
    json_error_t jerr;
    const char *policy = NULL;
    json_t *initial = NULL, *labels = NULL;
    json_int_t min_pages = -1, max_pages = -1, k = -1, gap = -1, memory = -1, streams = -1,
               page_size = -1;
    if (json_unpack_ex(cfg, &jerr, 0, "{s?s, s?I, s?I, s?I, s?o, s?I, s?I, s?I, s?I, s?o}",
                       "policy", &policy, "min_pages", &min_pages, "max_pages", &max_pages, "k",
                       &k, "initial_pages", &initial, "gap", &gap, "memory_pages", &memory,
                       "max_streams", &streams, "page_size", &page_size, "labels", &labels) != 0)
        return bad_doc(c, "config", &jerr);
    out->min_pages = min_pages;
    out->max_pages = max_pages;
    out->k = k;
    out->initial_pages = json_is_integer(initial) ? json_integer_value(initial) : -1;
    out->gap = gap;
    out->memory_pages = memory;
    out->max_streams = streams;
    out->page_size = page_size;
    if (policy != NULL && (out->policy = strdup(policy)) == NULL) return oom(c);

    /* The policies' own fields, present only for their policy. */
    json_int_t forward = -1, backward = -1, ra_initial = -1, ra_max = -1;
    if (json_unpack_ex(cfg, &jerr, 0, "{s?I, s?I, s?I, s?I}", "forward_pages", &forward,
                       "backward_pages", &backward, "ra_initial", &ra_initial, "ra_max",
                       &ra_max) != 0)
        return bad_doc(c, "config", &jerr);
    out->forward_pages = forward;
    out->backward_pages = backward;
    out->ra_initial = ra_initial;
    out->ra_max = ra_max;

    if (labels == NULL || json_is_null(labels)) return 0;
    if (!json_is_object(labels)) return bad_doc(c, "labels is not an object", NULL);
    size_t n = json_object_size(labels);
    if (n == 0) return 0;
    pp_label *l = calloc(n, sizeof *l);
    if (l == NULL) return oom(c);
    out->labels = l;
    const char *key;
    json_t *value;
    json_object_foreach(labels, key, value) {
        if (!json_is_string(value)) return bad_doc(c, "a label value is not a string", NULL);
        l[out->nlabels].key = strdup(key);
        l[out->nlabels].value = strdup(json_string_value(value));
        out->nlabels++; /* counted before the check, so pp__session_clear frees both */
        if (l[out->nlabels - 1].key == NULL || l[out->nlabels - 1].value == NULL) return oom(c);
    }
    return 0;
}

static int parse_streams(pp_client *c, json_t *arr, pp_session *s) {
    if (arr == NULL || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return bad_doc(c, "streams is not an array", NULL);
    size_t n = json_array_size(arr);
    if (n == 0) return 0;
    s->streams = calloc(n, sizeof *s->streams);
    if (s->streams == NULL) return oom(c);
    s->nstreams = n;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        json_error_t jerr;
        json_int_t id = 0, ntest = 0, min_hit = 0, max_hit = 0, start = 0, count = 0;
        json_t *window = NULL;
        const char *direction = NULL;
        if (json_unpack_ex(v, &jerr, 0, "{s:I, s?I, s?I, s?I, s?o, s?s}", "stream", &id, "ntest",
                           &ntest, "min_hit", &min_hit, "max_hit", &max_hit, "window", &window,
                           "direction", &direction) != 0)
            return bad_doc(c, "stream", &jerr);
        if (window != NULL && !json_is_null(window) &&
            json_unpack_ex(window, &jerr, 0, "{s?I, s?I}", "start", &start, "count", &count) != 0)
            return bad_doc(c, "window", &jerr);
        pp_stream_state *st = &s->streams[i];
        st->stream = (uint32_t)id;
        st->ntest = ntest;
        st->min_hit = min_hit;
        st->max_hit = max_hit;
        st->window_start = start;
        st->window_count = count;
        st->up = direction == NULL || strcmp(direction, "down") != 0;
    }
    return 0;
}

static void copy_time(char *dst, size_t size, json_t *v) {
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* Fills *s from a session document (borrowed). On error *s holds what was
 * parsed so far: the caller clears it. */
int pp__parse_session(pp_client *c, json_t *doc, pp_session *s) {
    json_error_t jerr;
    const char *id = NULL;
    json_t *config = NULL, *state = NULL, *stats = NULL;
    memset(s, 0, sizeof *s);
    pp_session_config_init(&s->config);
    if (json_unpack_ex(doc, &jerr, 0, "{s:s, s:o, s?o, s?o}", "id", &id, "config", &config,
                       "state", &state, "stats", &stats) != 0)
        return bad_doc(c, "session", &jerr);
    if ((s->id = strdup(id)) == NULL) return oom(c);
    if (parse_config(c, config, &s->config) != 0) return -1;

    if (state != NULL && !json_is_null(state)) {
        json_int_t nmin = 0, nmax = 0;
        json_t *min_record = NULL, *max_record = NULL, *streams = NULL;
        if (json_unpack_ex(state, &jerr, 0, "{s?I, s?I, s?o, s?o, s?o}", "nmin", &nmin, "nmax",
                           &nmax, "min_record", &min_record, "max_record", &max_record, "streams",
                           &streams) != 0)
            return bad_doc(c, "state", &jerr);
        s->nmin = nmin;
        s->nmax = nmax;
        if (parse_record(c, min_record, &s->min_record, &s->min_record_len) != 0 ||
            parse_record(c, max_record, &s->max_record, &s->max_record_len) != 0 ||
            parse_streams(c, streams, s) != 0)
            return -1;
    }
    if (stats != NULL && !json_is_null(stats)) {
        json_int_t n[7] = {0};
        json_t *created = NULL, *last = NULL;
        if (json_unpack_ex(stats, &jerr, 0, "{s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?o, s?o}",
                           "faults", &n[0], "first", &n[1], "smaller", &n[2], "larger", &n[3],
                           "reverse", &n[4], "repeat", &n[5], "pages_advised", &n[6],
                           "created_at", &created, "last_fault_at", &last) != 0)
            return bad_doc(c, "stats", &jerr);
        pp_session_stats *st = &s->stats;
        st->faults = n[0];
        st->first = n[1];
        st->smaller = n[2];
        st->larger = n[3];
        st->reverse = n[4];
        st->repeat = n[5];
        st->pages_advised = n[6];
        copy_time(st->created_at, sizeof st->created_at, created);
        copy_time(st->last_fault_at, sizeof st->last_fault_at, last);
    }
    return 0;
}

/* Parses the last answer as one session document into a new *out. */
static int answer_session(pp_client *c, pp_session **out) {
    if (out == NULL) return 0;
    json_error_t jerr;
    json_t *doc = json_loadb(c->answer.data, c->answer.len, 0, &jerr);
    if (doc == NULL) return pp__fail(c, PP_ERR_PROTOCOL, "answer is not JSON: %s", jerr.text);
    pp_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        json_decref(doc);
        return oom(c);
    }
    int rc = pp__parse_session(c, doc, s);
    json_decref(doc);
    if (rc != 0) {
        pp_session_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- Calls --------------------------------------------------------------- */

/* Sets key to an integer unless it is -1 (server default). */
static int set_int(json_t *obj, const char *key, int64_t v) {
    if (v == -1) return 0;
    return json_object_set_new(obj, key, json_integer((json_int_t)v));
}

/* The PUT body for a config: only the fields that are set. Built with
 * json_object_set_new (which steals each value) and every result checked:
 * json_pack could leave out a -1 only through "o*", which would also drop,
 * silently, a field whose json_integer() failed for lack of memory. */
static char *config_body(pp_client *c, const pp_session_config *cfg) {
    json_t *obj = json_object();
    if (obj == NULL) {
        oom(c);
        return NULL;
    }
    int rc = 0;
    if (cfg != NULL) {
        if (cfg->policy != NULL) rc |= json_object_set_new(obj, "policy", json_string(cfg->policy));
        rc |= set_int(obj, "min_pages", cfg->min_pages);
        rc |= set_int(obj, "max_pages", cfg->max_pages);
        rc |= set_int(obj, "k", cfg->k);
        rc |= set_int(obj, "initial_pages", cfg->initial_pages);
        rc |= set_int(obj, "gap", cfg->gap);
        rc |= set_int(obj, "memory_pages", cfg->memory_pages);
        rc |= set_int(obj, "max_streams", cfg->max_streams);
        rc |= set_int(obj, "page_size", cfg->page_size);
        rc |= set_int(obj, "forward_pages", cfg->forward_pages);
        rc |= set_int(obj, "backward_pages", cfg->backward_pages);
        rc |= set_int(obj, "ra_initial", cfg->ra_initial);
        rc |= set_int(obj, "ra_max", cfg->ra_max);
        if (cfg->nlabels > 0) {
            json_t *labels = json_object();
            rc |= json_object_set_new(obj, "labels", labels); /* steals; fails on NULL */
            for (size_t i = 0; rc == 0 && i < cfg->nlabels; i++)
                rc |= json_object_set_new(labels, cfg->labels[i].key,
                                          json_string(cfg->labels[i].value));
        }
    }
    char *body = rc == 0 ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (rc != 0) pp__fail(c, PP_ERR_INVALID, "cannot encode the config (strings must be UTF-8)");
    else if (body == NULL) oom(c);
    return body;
}

static int check_config(pp_client *c, const pp_session_config *cfg) {
    if (cfg == NULL) return 0;
    if (cfg->nlabels > 0 && cfg->labels == NULL)
        return pp__fail(c, PP_ERR_INVALID, "labels is NULL with nlabels %zu", cfg->nlabels);
    for (size_t i = 0; i < cfg->nlabels; i++)
        if (cfg->labels[i].key == NULL || cfg->labels[i].value == NULL)
            return pp__fail(c, PP_ERR_INVALID, "label %zu has a NULL key or value", i);
    return 0;
}

int pp_session_create_ex(pp_client *c, const char *id, const pp_session_config *cfg,
                         pp_session **out) {
    if (out != NULL) *out = NULL;
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0 || check_config(c, cfg) != 0) return -1;
    if (pp__url(c, c->url, "/sessions/%s", id) != 0) return -1;
    char *body = config_body(c, cfg);
    if (body == NULL) return -1;
    /* PUT is idempotent: the same config again is a 200. */
    int rc = pp__perform(c, PP_PUT, c->url, body, strlen(body), 1);
    if (rc == 0) rc = pp__remember(c, id, body);
    free(body);
    if (rc == 0) rc = answer_session(c, out);
    return rc;
}

int pp_session_create(pp_client *c, const char *id, const pp_session_config *cfg) {
    return pp_session_create_ex(c, id, cfg, NULL);
}

int pp_session_get(pp_client *c, const char *id, pp_session **out) {
    if (out != NULL) *out = NULL;
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0) return -1;
    if (out == NULL) return pp__fail(c, PP_ERR_INVALID, "out is NULL");
    if (pp__url(c, c->url, "/sessions/%s", id) != 0) return -1;
    if (pp__session_call(c, id, PP_GET, NULL, 0, 1) != 0) return -1;
    return answer_session(c, out);
}

int pp_session_delete_ex(pp_client *c, const char *id, pp_session **out) {
    if (out != NULL) *out = NULL;
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0) return -1;
    if (pp__url(c, c->url, "/sessions/%s", id) != 0) return -1;
    int rc = pp__perform(c, PP_DELETE, c->url, NULL, 0, 1);
    if (rc == 0 || (c->err == PP_ERR_HTTP && c->status == 404)) pp__forget(c, id);
    if (rc != 0) {
        /* A retried DELETE that finds nothing: the first attempt deleted it
         * and its answer was lost. That is success, without the document. */
        if (c->retried && c->err == PP_ERR_HTTP && c->status == 404) {
            c->err = PP_OK;
            c->errstr[0] = '\0';
            return 0;
        }
        return -1;
    }
    return answer_session(c, out);
}

int pp_session_delete(pp_client *c, const char *id) { return pp_session_delete_ex(c, id, NULL); }

int pp_session_reset(pp_client *c, const char *id, pp_session **out) {
    if (out != NULL) *out = NULL;
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0) return -1;
    if (pp__url(c, c->url, "/sessions/%s/reset", id) != 0) return -1;
    /* Resetting twice is resetting once: retried like the idempotent calls. */
    if (pp__session_call(c, id, PP_POST, NULL, 0, 1) != 0) return -1;
    return answer_session(c, out);
}

int pp_session_list(pp_client *c, size_t limit, const char *after, pp_session_page **out) {
    if (out != NULL) *out = NULL;
    if (c == NULL) return -1;
    if (pp__begin(c) != 0) return -1;
    if (out == NULL) return pp__fail(c, PP_ERR_INVALID, "out is NULL");
    if (limit > 1000) return pp__fail(c, PP_ERR_INVALID, "limit %zu is over 1000", limit);
    if (after != NULL && pp__check_id(c, after) != 0) return -1;
    char query[200];
    int n = 0;
    query[0] = '\0';
    if (limit > 0) n = snprintf(query, sizeof query, "?limit=%zu", limit);
    if (after != NULL)
        snprintf(query + n, sizeof query - (size_t)n, "%cafter=%s", n > 0 ? '&' : '?', after);
    if (pp__url(c, c->url, "/sessions%s", query) != 0) return -1;
    if (pp__perform(c, PP_GET, c->url, NULL, 0, 1) != 0) return -1;

    json_error_t jerr;
    json_t *doc = json_loadb(c->answer.data, c->answer.len, 0, &jerr);
    if (doc == NULL) return pp__fail(c, PP_ERR_PROTOCOL, "answer is not JSON: %s", jerr.text);
    json_t *sessions = NULL, *next = NULL;
    pp_session_page *l = NULL;
    int rc = -1;
    if (json_unpack_ex(doc, &jerr, 0, "{s:o, s?o}", "sessions", &sessions, "next", &next) != 0 ||
        !json_is_array(sessions)) {
        bad_doc(c, "list", json_is_array(sessions) ? &jerr : NULL);
        goto done;
    }
    if ((l = calloc(1, sizeof *l)) == NULL) {
        oom(c);
        goto done;
    }
    size_t count = json_array_size(sessions);
    if (count > 0 && (l->sessions = calloc(count, sizeof *l->sessions)) == NULL) {
        oom(c);
        goto done;
    }
    size_t i;
    json_t *v;
    json_array_foreach(sessions, i, v) {
        l->count = i + 1; /* so the list's free clears a half-parsed entry */
        if (pp__parse_session(c, v, &l->sessions[i]) != 0) goto done;
    }
    if (json_is_string(next) && (l->next = strdup(json_string_value(next))) == NULL) {
        oom(c);
        goto done;
    }
    *out = l;
    l = NULL;
    rc = 0;
done:
    pp_session_page_free(l);
    json_decref(doc);
    return rc;
}
