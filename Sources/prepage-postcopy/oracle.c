/* oracle.c: the two oracles of oracle.h. */
#define _GNU_SOURCE
#include "oracle.h"
#include "prepage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pc_oracle {
    int64_t local_window;
    uint64_t memory_pages;
    char error[512];
    uint64_t submitted_page; /* the development oracle's submitted fault */
    pp_client *client;
    char session_id[160];
};

int pc_policy_parse(const char *text, pc_policy *out) {
    memset(out, 0, sizeof *out);
    out->window = -1;
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (len == 0 || len >= sizeof out->name) return -1;
    memcpy(out->name, text, len);
    if (colon) {
        char *end;
        long long w = strtoll(colon + 1, &end, 10);
        if (*end != '\0' || w < 1) return -1;
        out->window = w;
    }
    return 0;
}

const char *pc_policy_label(const pc_policy *p, char *buf, size_t len) {
    if (p->window > 0)
        snprintf(buf, len, "%s:%lld", p->name, (long long)p->window);
    else
        snprintf(buf, len, "%s", p->name);
    return buf;
}

int pc_oracle_open(const pc_oracle_config *cfg, pc_oracle **out, char *err, size_t errlen) {
    *out = NULL;
    pc_oracle *o = calloc(1, sizeof *o);
    if (o == NULL) {
        snprintf(err, errlen, "out of memory");
        return PC_ORACLE_ERROR;
    }
    o->local_window = cfg->local_window;
    o->memory_pages = cfg->memory_pages;
    if (strncmp(cfg->policy.name, "local-", 6) == 0) {
        /* Baselines an agent computes without asking anyone: no round trip. */
        const char *base = cfg->policy.name + 6;
        if (strcmp(base, "none") == 0 && cfg->policy.window <= 0)
            o->local_window = 1;
        else if (strcmp(base, "forward") == 0)
            o->local_window = cfg->policy.window > 0 ? cfg->policy.window : 8;
        else {
            snprintf(err, errlen, "unknown in-process policy %s (local-none, local-forward[:W])",
                     cfg->policy.name);
            free(o);
            return PC_ORACLE_REJECTED;
        }
    }
    if (o->local_window > 0) {
        *out = o;
        return PC_ORACLE_OK;
    }
    pp_options opts;
    pp_options_init(&opts);
    opts.base_url = cfg->server_url;
    opts.token = cfg->token;
    if (cfg->fault_deadline_ms > 0) opts.fault_deadline_ms = cfg->fault_deadline_ms;
    o->client = pp_client_new(&opts);
    if (o->client == NULL || pp_client_err(o->client) != PP_OK) {
        snprintf(err, errlen, "%s", o->client ? pp_client_errstr(o->client) : "out of memory");
        pp_client_free(o->client);
        free(o);
        return PC_ORACLE_ERROR;
    }
    snprintf(o->session_id, sizeof o->session_id, "%s", cfg->session_id);
    pp_session_config sc;
    pp_session_config_init(&sc);
    sc.policy = cfg->policy.name;
    sc.memory_pages = (int64_t)cfg->memory_pages;
    sc.page_size = (int64_t)cfg->page_size;
    if (cfg->max_pages > 0) sc.max_pages = cfg->max_pages;
    if (cfg->policy.window > 0) {
        sc.forward_pages = cfg->policy.window - 1;
        sc.backward_pages = 0;
    }
    if (strcmp(cfg->policy.name, "dp-plus") == 0) {
        /* dp-plus takes the link's round trip and one page's transfer time: this link's, measured. */
        if (cfg->rtt_us > 0) sc.rtt_us = cfg->rtt_us;
        if (cfg->page_us > 0) sc.page_us = cfg->page_us;
    }
    if (pp_session_create(o->client, o->session_id, &sc) != 0) {
        int status = pp_client_http_status(o->client);
        snprintf(err, errlen, "creating session %s (policy %s) at %s: %s (HTTP %d)", o->session_id,
                 cfg->policy.name, cfg->server_url, pp_client_errstr(o->client), status);
        pp_client_free(o->client);
        free(o);
        return status == 400 ? PC_ORACLE_REJECTED : PC_ORACLE_ERROR;
    }
    *out = o;
    return PC_ORACLE_OK;
}

static void local_window(const pc_oracle *o, uint64_t page, pc_window *out) {
    out->start = page;
    out->count = (uint64_t)o->local_window;
    out->fallback = 0;
    if (o->memory_pages > 0 && out->start + out->count > o->memory_pages)
        out->count = o->memory_pages - out->start;
}

static void window_of(const pp_decision *d, pc_window *out) {
    out->start = d->start;
    out->count = d->count;
    out->fallback = d->outcome == PP_FALLBACK;
}

int pc_oracle_ask(pc_oracle *o, uint64_t page, uint32_t stream, pc_window *out) {
    if (o->local_window > 0) {
        local_window(o, page, out);
        return 0;
    }
    pp_decision d;
    pp_decision_init(&d);
    if (pp_fault_page(o->client, o->session_id, page, stream, &d) != 0) {
        snprintf(o->error, sizeof o->error, "fault %llu: %s (HTTP %d)", (unsigned long long)page,
                 pp_client_errstr(o->client), pp_client_http_status(o->client));
        return -1;
    }
    window_of(&d, out);
    return 0;
}

int pc_oracle_submit(pc_oracle *o, uint64_t page, uint32_t stream) {
    o->submitted_page = page;
    if (o->local_window > 0) return 0;
    if (pp_fault_submit_page(o->client, o->session_id, page, stream) != 0) {
        snprintf(o->error, sizeof o->error, "fault %llu: %s", (unsigned long long)page,
                 pp_client_errstr(o->client));
        return -1;
    }
    return 0;
}

int pc_oracle_collect(pc_oracle *o, long wait_ms, pc_window *out) {
    if (o->local_window > 0) {
        local_window(o, o->submitted_page, out);
        return 0;
    }
    pp_decision d;
    pp_decision_init(&d);
    int rc = pp_fault_collect(o->client, wait_ms, &d);
    if (rc == PP_PENDING) return PC_ORACLE_PENDING;
    if (rc != 0) {
        snprintf(o->error, sizeof o->error, "fault %llu: %s (HTTP %d)", (unsigned long long)o->submitted_page,
                 pp_client_errstr(o->client), pp_client_http_status(o->client));
        return -1;
    }
    window_of(&d, out);
    return 0;
}

void pc_oracle_pollinfo(pc_oracle *o, int *fd, long *timeout_ms) {
    *fd = -1;
    *timeout_ms = 0;
    if (o->local_window <= 0 && pp_fault_pollinfo(o->client, fd, timeout_ms) != 0) {
        *fd = -1;
        *timeout_ms = 0;
    }
}

const char *pc_oracle_error(const pc_oracle *o) {
    return o->error;
}

void pc_oracle_close(pc_oracle *o, pc_oracle_summary *summary) {
    if (summary) memset(summary, 0, sizeof *summary);
    if (o == NULL) return;
    if (o->client != NULL) {
        pp_session *doc = NULL;
        if (pp_session_delete_ex(o->client, o->session_id, &doc) == 0 && doc != NULL && summary) {
            const pp_session_stats *st = doc->stats;
            *summary = (pc_oracle_summary){1,          st->faults,          st->first,           st->smaller,
                                           st->larger, st->reverse,         st->repeat,          doc->nmin,
                                           doc->nmax,  doc->config->rtt_us, doc->config->page_us};
        }
        pp_session_free(doc);
        pp_client_free(o->client);
    }
    free(o);
}
