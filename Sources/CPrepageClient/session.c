/*
 * session.c — create, get, list, delete and reset a session, and the session
 * document parsed with jansson into caller-owned structs.
 *
 * jansson rules: json_pack / json_unpack_ex with a json_error_t; `_new`
 * setters steal, json_object_get and unpacked "s"/"o" values are borrowed,
 * so strings are copied before the document is released; never JSON_STRICT
 * on an answer, so fields added by a later server do not break this client.
 */
#define _GNU_SOURCE

#include "internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The config's fields as the server names them: the one table every encoding,
 * decoding and default below goes through (labels aside). */
#define FIELD(type, member)                                                                                  \
    { #member, type, offsetof(pp_session_config, member) }
static const pp_config_field fields[] = {
    {"policy", PP_CONFIG_STRING, offsetof(pp_session_config, policy)},
    FIELD(PP_CONFIG_INT, min_pages),
    FIELD(PP_CONFIG_INT, max_pages),
    FIELD(PP_CONFIG_INT, k),
    FIELD(PP_CONFIG_INT, initial_pages),
    FIELD(PP_CONFIG_INT, gap),
    FIELD(PP_CONFIG_INT, memory_pages),
    FIELD(PP_CONFIG_INT, max_streams),
    FIELD(PP_CONFIG_INT, page_size),
    FIELD(PP_CONFIG_INT, forward_pages),
    FIELD(PP_CONFIG_INT, backward_pages),
    FIELD(PP_CONFIG_INT, ra_initial),
    FIELD(PP_CONFIG_INT, ra_max),
    FIELD(PP_CONFIG_INT, max_slots),
    FIELD(PP_CONFIG_INT, transitions),
    FIELD(PP_CONFIG_INT, half_life),
    FIELD(PP_CONFIG_INT, near_window),
    FIELD(PP_CONFIG_DOUBLE, probe_staleness),
    FIELD(PP_CONFIG_DOUBLE, fault_fee),
    FIELD(PP_CONFIG_DOUBLE, min_evidence),
    FIELD(PP_CONFIG_DOUBLE, rtt_us),
    FIELD(PP_CONFIG_DOUBLE, page_us),
};
#undef FIELD
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

const pp_config_field *pp_session_config_fields(size_t *count) {
    if (count != NULL) *count = NELEMS(fields);
    return fields;
}

/* The member of `cfg` field `f` describes. */
static void *member(const pp_session_config *cfg, const pp_config_field *f) {
    return (char *)(uintptr_t)cfg + f->offset;
}

static void config_defaults(pp_session_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->labels = NULL;
    cfg->nlabels = 0;
    for (const pp_config_field *f = fields; f < fields + NELEMS(fields); f++) {
        switch (f->type) {
            case PP_CONFIG_STRING: *(const char **)member(cfg, f) = NULL; break;
            case PP_CONFIG_INT: *(int64_t *)member(cfg, f) = -1; break;
            case PP_CONFIG_DOUBLE: *(double *)member(cfg, f) = -1.0; break;
        }
    }
}

void pp_session_config_init_sized(pp_session_config *cfg, size_t size) {
    if (cfg == NULL) return;
    pp_session_config full;
    config_defaults(&full);
    full.size = size;
    if (size > sizeof full) {
        memset((char *)cfg + sizeof full, 0, size - sizeof full);
        memcpy(cfg, &full, sizeof full);
    } else {
        memcpy(cfg, &full, size);
    }
}

/* ---- Documents ----------------------------------------------------------- */

static void config_free(pp_session_config *cfg) {
    if (cfg == NULL) return;
    for (const pp_config_field *f = fields; f < fields + NELEMS(fields); f++)
        if (f->type == PP_CONFIG_STRING) free(*(char **)member(cfg, f));
    for (size_t i = 0; i < cfg->nlabels; i++) {
        free((char *)cfg->labels[i].key);
        free((char *)cfg->labels[i].value);
    }
    free((pp_label *)cfg->labels);
    free(cfg);
}

void pp__session_clear(pp_session *s) {
    free(s->id);
    config_free(s->config);
    free(s->min_record);
    free(s->max_record);
    for (size_t i = 0; i < s->nstreams; i++) free(s->streams[i]);
    free(s->streams);
    free(s->stats);
    memset(s, 0, sizeof *s);
}

void pp_session_free(pp_session *s) {
    if (s == NULL) return;
    pp__session_clear(s);
    free(s);
}

void pp_session_page_free(pp_session_page *l) {
    if (l == NULL) return;
    for (size_t i = 0; i < l->count; i++) pp_session_free(l->sessions[i]);
    free(l->sessions);
    free(l->next);
    free(l);
}

static int bad_doc(pp_client *c, const char *what, const json_error_t *jerr) {
    return pp__fail(c, PP_ERR_PROTOCOL, "unexpected session document: %s%s%s", what, jerr != NULL ? ": " : "",
                    jerr != NULL ? jerr->text : "");
}

static int oom(pp_client *c) {
    return pp__fail(c, PP_ERR_OOM, "out of memory");
}

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

/* Fills *out (set to defaults) from a config object. Absent or null members
 * keep their default (-1); a member of the wrong type is an error; members
 * this library does not know are ignored. */
static int parse_config(pp_client *c, json_t *cfg, pp_session_config *out) {
    if (!json_is_object(cfg)) return bad_doc(c, "config is not an object", NULL);
    for (const pp_config_field *f = fields; f < fields + NELEMS(fields); f++) {
        json_t *v = json_object_get(cfg, f->name);
        if (v == NULL || json_is_null(v)) continue;
        switch (f->type) {
            case PP_CONFIG_STRING:
                if (!json_is_string(v))
                    return pp__fail(c, PP_ERR_PROTOCOL,
                                    "unexpected session document: config.%s is not a string", f->name);
                if ((*(char **)member(out, f) = strdup(json_string_value(v))) == NULL) return oom(c);
                break;
            case PP_CONFIG_INT:
                if (!json_is_integer(v))
                    return pp__fail(c, PP_ERR_PROTOCOL,
                                    "unexpected session document: config.%s is not an integer", f->name);
                *(int64_t *)member(out, f) = (int64_t)json_integer_value(v);
                break;
            case PP_CONFIG_DOUBLE:
                if (!json_is_number(v)) /* 1000 and 1000.0 alike */
                    return pp__fail(c, PP_ERR_PROTOCOL,
                                    "unexpected session document: config.%s is not a number", f->name);
                *(double *)member(out, f) = json_number_value(v);
                break;
        }
    }

    json_t *labels = json_object_get(cfg, "labels");
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
        out->nlabels++; /* counted before the check, so config_free frees both */
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
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        json_error_t jerr;
        json_int_t id = 0, ntest = 0, min_hit = 0, max_hit = 0, start = 0, count = 0;
        json_t *window = NULL;
        const char *direction = NULL;
        if (json_unpack_ex(v, &jerr, 0, "{s:I, s?I, s?I, s?I, s?o, s?s}", "stream", &id, "ntest", &ntest,
                           "min_hit", &min_hit, "max_hit", &max_hit, "window", &window, "direction",
                           &direction) != 0)
            return bad_doc(c, "stream", &jerr);
        if (window != NULL && !json_is_null(window) &&
            json_unpack_ex(window, &jerr, 0, "{s?I, s?I}", "start", &start, "count", &count) != 0)
            return bad_doc(c, "window", &jerr);
        pp_stream_state *st = calloc(1, sizeof *st);
        if (st == NULL) return oom(c);
        s->streams[s->nstreams++] = st;
        st->size = sizeof *st;
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

/* Whether this library reads the state of a session with this policy: dp's
 * and the baselines' (records and streams). Another policy's state (dp-plus
 * and later ones) has fields of its own and is left unread. */
static int known_state(const char *policy) {
    static const char *const known[] = {"dp", "dp-literal", "none", "forward", "readahead"};
    if (policy == NULL) return 1;
    for (size_t i = 0; i < NELEMS(known); i++)
        if (strcmp(policy, known[i]) == 0) return 1;
    return 0;
}

/* Fills *s from a session document (borrowed). On error *s holds what was
 * parsed so far: the caller clears it. Lenient: members this library does
 * not know are ignored (never JSON_STRICT), so a newer server's fields do
 * not break an older client. */
int pp__parse_session(pp_client *c, json_t *doc, pp_session *s) {
    json_error_t jerr;
    const char *id = NULL;
    json_t *config = NULL, *state = NULL, *stats = NULL;
    memset(s, 0, sizeof *s);
    s->size = sizeof *s;
    if (json_unpack_ex(doc, &jerr, 0, "{s:s, s:o, s?o, s?o}", "id", &id, "config", &config, "state", &state,
                       "stats", &stats) != 0)
        return bad_doc(c, "session", &jerr);
    if ((s->id = strdup(id)) == NULL) return oom(c);
    if ((s->config = malloc(sizeof *s->config)) == NULL) return oom(c);
    config_defaults(s->config);
    if ((s->stats = calloc(1, sizeof *s->stats)) == NULL) return oom(c);
    s->stats->size = sizeof *s->stats;
    if (parse_config(c, config, s->config) != 0) return -1;

    if (state != NULL && !json_is_null(state) && known_state(s->config->policy)) {
        json_int_t nmin = 0, nmax = 0;
        json_t *min_record = NULL, *max_record = NULL, *streams = NULL;
        if (json_unpack_ex(state, &jerr, 0, "{s?I, s?I, s?o, s?o, s?o}", "nmin", &nmin, "nmax", &nmax,
                           "min_record", &min_record, "max_record", &max_record, "streams", &streams) != 0)
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
        if (json_unpack_ex(stats, &jerr, 0, "{s?I, s?I, s?I, s?I, s?I, s?I, s?I, s?o, s?o}", "faults", &n[0],
                           "first", &n[1], "smaller", &n[2], "larger", &n[3], "reverse", &n[4], "repeat",
                           &n[5], "pages_advised", &n[6], "created_at", &created, "last_fault_at",
                           &last) != 0)
            return bad_doc(c, "stats", &jerr);
        pp_session_stats *st = s->stats;
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
    for (const pp_config_field *f = fields; rc == 0 && f < fields + NELEMS(fields); f++) {
        switch (f->type) {
            case PP_CONFIG_STRING: {
                const char *v = *(const char **)member(cfg, f);
                if (v != NULL) rc |= json_object_set_new(obj, f->name, json_string(v));
                break;
            }
            case PP_CONFIG_INT: {
                int64_t v = *(const int64_t *)member(cfg, f);
                if (v != -1) rc |= json_object_set_new(obj, f->name, json_integer((json_int_t)v));
                break;
            }
            case PP_CONFIG_DOUBLE: {
                double v = *(const double *)member(cfg, f);
                if (v != -1.0) rc |= json_object_set_new(obj, f->name, json_real(v));
                break;
            }
        }
    }
    if (rc == 0 && cfg->nlabels > 0) {
        json_t *labels = json_object();
        rc |= json_object_set_new(obj, "labels", labels); /* steals; fails on NULL */
        for (size_t i = 0; rc == 0 && i < cfg->nlabels; i++)
            rc |= json_object_set_new(labels, cfg->labels[i].key, json_string(cfg->labels[i].value));
    }
    char *body = rc == 0 ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (rc != 0)
        pp__fail(c, PP_ERR_INVALID, "cannot encode the config (strings must be UTF-8)");
    else if (body == NULL)
        oom(c);
    return body;
}

/* The caller's config (NULL: every default) as this library lays it out, checked. */
static int config_in(pp_client *c, const pp_session_config *cfg, pp_session_config *full) {
    config_defaults(full);
    if (cfg == NULL) return 0;
    if (cfg->size < PP_CONFIG_SIZE_1_0 || cfg->size > sizeof *full)
        return pp__fail(c, PP_ERR_INVALID,
                        "cfg->size is %zu, not one this libprepage %s knows (%zu … %zu): fill the "
                        "config with pp_session_config_init() first",
                        cfg->size, PP_VERSION_STRING, (size_t)PP_CONFIG_SIZE_1_0, sizeof *full);
    memcpy(full, cfg, cfg->size);
    full->size = sizeof *full;
    if (full->nlabels > 0 && full->labels == NULL)
        return pp__fail(c, PP_ERR_INVALID, "labels is NULL with nlabels %zu", full->nlabels);
    for (size_t i = 0; i < full->nlabels; i++)
        if (full->labels[i].key == NULL || full->labels[i].value == NULL)
            return pp__fail(c, PP_ERR_INVALID, "label %zu has a NULL key or value", i);
    for (const pp_config_field *f = fields; f < fields + NELEMS(fields); f++) {
        double v = f->type == PP_CONFIG_DOUBLE ? *(double *)member(full, f) : 0;
        if (v != v || v - v != 0) /* NaN or infinite: JSON has no such number */
            return pp__fail(c, PP_ERR_INVALID, "%s is not a finite number", f->name);
    }
    return 0;
}

/* The page size a config gives its session, 0 for the server's default. */
static uint64_t config_page_size(const pp_session_config *cfg) {
    return cfg->page_size > 0 ? (uint64_t)cfg->page_size : 0;
}

int pp_session_create_ex(pp_client *c, const char *id, const pp_session_config *cfg, pp_session **out) {
    if (out != NULL) *out = NULL;
    if (c == NULL) return -1;
    pp_session_config full;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0 || config_in(c, cfg, &full) != 0) return -1;
    if (pp__url(c, c->url, "/sessions/%s", id) != 0) return -1;
    char *body = config_body(c, &full);
    if (body == NULL) return -1;
    /* PUT is idempotent: the same config again is a 200. */
    int rc = pp__perform(c, PP_PUT, c->url, body, strlen(body), 1);
    if (rc == 0) rc = pp__remember(c, id, body, config_page_size(&full));
    free(body);
    if (rc == 0) rc = answer_session(c, out);
    return rc;
}

int pp_session_register(pp_client *c, const char *id, const pp_session_config *cfg) {
    if (c == NULL) return -1;
    pp_session_config full;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0 || config_in(c, cfg, &full) != 0) return -1;
    char *body = config_body(c, &full);
    if (body == NULL) return -1;
    int rc = pp__remember(c, id, body, config_page_size(&full));
    free(body);
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

int pp_session_delete(pp_client *c, const char *id) {
    return pp_session_delete_ex(c, id, NULL);
}

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
    if (after != NULL) snprintf(query + n, sizeof query - (size_t)n, "%cafter=%s", n > 0 ? '&' : '?', after);
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
    l->size = sizeof *l;
    size_t count = json_array_size(sessions);
    if (count > 0 && (l->sessions = calloc(count, sizeof *l->sessions)) == NULL) {
        oom(c);
        goto done;
    }
    size_t i;
    json_t *v;
    json_array_foreach(sessions, i, v) {
        if ((l->sessions[i] = calloc(1, sizeof *l->sessions[i])) == NULL) {
            oom(c);
            goto done;
        }
        l->count = i + 1; /* so the page's free clears a half-parsed entry */
        if (pp__parse_session(c, v, l->sessions[i]) != 0) goto done;
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

/* ---- Moving a session ---------------------------------------------------- */

void pp_free(void *p) {
    free(p);
}

int pp_session_export(pp_client *c, const char *id, char **out, size_t *len) {
    if (out != NULL) *out = NULL;
    if (len != NULL) *len = 0;
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0) return -1;
    if (out == NULL) return pp__fail(c, PP_ERR_INVALID, "out is NULL");
    if (pp__url(c, c->url, "/sessions/%s/state", id) != 0) return -1;
    if (pp__session_call(c, id, PP_GET, NULL, 0, 1) != 0) return -1;
    char *doc = malloc(c->answer.len + 1);
    if (doc == NULL) return oom(c);
    memcpy(doc, c->answer.data, c->answer.len);
    doc[c->answer.len] = '\0';
    *out = doc;
    if (len != NULL) *len = c->answer.len;
    return 0;
}

int pp_session_import(pp_client *c, const char *id, const char *doc, ptrdiff_t len) {
    if (c == NULL) return -1;
    if (pp__begin(c) != 0 || pp__check_id(c, id) != 0) return -1;
    if (doc == NULL) return pp__fail(c, PP_ERR_INVALID, "doc is NULL");
    size_t n = len < 0 ? strlen(doc) : (size_t)len;
    /* The document's config, to re-create the session after a 404 (as pp_session_create does). */
    json_error_t jerr;
    json_t *parsed = json_loadb(doc, n, 0, &jerr);
    if (parsed == NULL) return pp__fail(c, PP_ERR_INVALID, "doc is not JSON: %s", jerr.text);
    json_t *config = json_object_get(parsed, "config");
    if (!json_is_object(config)) {
        json_decref(parsed);
        return pp__fail(c, PP_ERR_INVALID,
                        "doc has no config object: give what pp_session_export() returned");
    }
    json_t *page_size = json_object_get(config, "page_size");
    uint64_t size = json_is_integer(page_size) && json_integer_value(page_size) > 0
                        ? (uint64_t)json_integer_value(page_size)
                        : 0;
    char *recreate = json_dumps(config, JSON_COMPACT);
    json_decref(parsed);
    if (recreate == NULL) return oom(c);
    if (pp__url(c, c->url, "/sessions/%s", id) != 0) {
        free(recreate);
        return -1;
    }
    static const char head[] = "{\"state\":";
    size_t total = sizeof head - 1 + n + 1;
    if (pp__buf_reserve(&c->body, total + 1) != 0) {
        free(recreate);
        return oom(c);
    }
    memcpy(c->body.data, head, sizeof head - 1);
    memcpy(c->body.data + sizeof head - 1, doc, n);
    c->body.data[total - 1] = '}';
    c->body.data[total] = '\0';
    c->body.len = total;
    /* Putting the same state twice is putting it once: retried like the idempotent calls. */
    int rc = pp__perform(c, PP_PUT, c->url, c->body.data, total, 1);
    if (rc == 0) rc = pp__remember(c, id, recreate, size);
    free(recreate);
    return rc;
}
