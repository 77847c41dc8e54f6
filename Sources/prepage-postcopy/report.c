/* report.c: see report.h. */
#include "report.h"

#include <string.h>

static void json_workload(FILE *f, const pc_report_context *ctx) {
    const pc_workload_config *c = &ctx->w->cfg;
    fprintf(f, "{\"name\": \"%s\", \"threads\": %d, \"seed\": %llu, \"pages\": %llu, \"page_size\": %zu",
            pc_workload_name(c->kind), c->threads, (unsigned long long)c->seed,
            (unsigned long long)ctx->pages, ctx->page_size);
    if (c->kind == PC_WL_STREAM) {
        fprintf(f, ", \"iters\": %d", c->iters);
    } else {
        fprintf(f, ", \"cases\": %llu", (unsigned long long)ctx->w->ncases);
        if (c->kind == PC_WL_PHASES) {
            fprintf(f, ", \"phases\": [");
            for (int i = 0; i < c->nphases; i++)
                fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)c->phases[i]);
            fprintf(f, "]");
        } else if (c->kind == PC_WL_FSD) {
            fprintf(f, ", \"n\": %llu", (unsigned long long)c->n);
        }
        if (c->kind != PC_WL_RANDOM) fprintf(f, ", \"noise\": %g", c->noise);
    }
    fprintf(f, ", \"pages_needed\": %llu, \"streams\": %s, \"push_share\": %g}",
            (unsigned long long)ctx->w->pages_needed, ctx->no_streams ? "false" : "true", ctx->push_share);
}

static void json_link(FILE *f, const pc_link_measure *m) {
    fprintf(f,
            "{\"rtt_us\": %g, \"gbit_per_s\": %g, \"page_expected_us\": %.1f, "
            "\"page_p50_us\": %.1f, \"page_p99_us\": %.1f, \"page_mean_us\": %.1f, "
            "\"large_range_gbit_per_s\": %.3f, \"compensated_overhead_us\": %.1f, \"samples\": %d}",
            m->rtt_set_us, m->gbit_set, m->page_expected_us, m->page_p50_us, m->page_p99_us, m->page_mean_us,
            m->big_gbit, m->overhead_us, m->samples);
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_result(FILE *f, const pc_result *r) {
    static const char *const status[] = {"ok", "failed", "skipped"};
    const pc_run_stats *s = &r->st;
    fprintf(f, "{\"policy\": \"%s\", \"mode\": \"%s\", \"status\": \"%s\", \"note\": ", r->policy,
            r->overlap ? "overlap" : "plain", status[r->status]);
    json_string(f, r->note);
    if (r->status == PC_RESULT_SKIPPED || !r->ran) {
        fputc('}', f);
        return;
    }
    fprintf(f,
            ", \"faults\": %llu, \"faults_already_present\": %llu, \"pages_fetched\": %llu, "
            "\"pages_pushed\": %llu, \"pages_touched\": %llu, \"pages_wasted\": %llu, "
            "\"pages_bad\": %llu, \"oracle_errors\": %llu, \"oracle_fallbacks\": %llu, \"streams\": %llu, "
            "\"response_us\": {\"p50\": %.1f, \"p99\": %.1f, \"mean\": %.1f}, "
            "\"total_stall_ms\": %.3f, \"oracle_us\": {\"p50\": %.1f, \"p99\": %.1f, \"mean\": %.1f}, "
            "\"oracle_share\": %.4f, \"thread_stall_ms\": %.3f, \"thread_stalls\": %llu, \"wall_s\": %.4f",
            (unsigned long long)s->faults, (unsigned long long)s->faults_present,
            (unsigned long long)s->pages_fetched, (unsigned long long)s->pages_pushed,
            (unsigned long long)s->pages_touched, (unsigned long long)s->pages_wasted,
            (unsigned long long)s->pages_bad, (unsigned long long)s->oracle_errors,
            (unsigned long long)s->oracle_fallbacks, (unsigned long long)s->streams, s->resp_p50_us,
            s->resp_p99_us, s->resp_mean_us, s->stall_ms, s->oracle_p50_us, s->oracle_p99_us,
            s->oracle_mean_us, s->oracle_share, s->thread_stall_ms, (unsigned long long)s->thread_stalls,
            s->wall_s);
    const pc_oracle_summary *o = &r->oracle;
    if (o->valid)
        fprintf(f,
                ", \"session\": {\"faults\": %lld, \"first\": %lld, \"smaller\": %lld, \"larger\": %lld, "
                "\"reverse\": %lld, \"repeat\": %lld, \"nmin\": %lld, \"nmax\": %lld}",
                (long long)o->faults, (long long)o->first, (long long)o->smaller, (long long)o->larger,
                (long long)o->reverse, (long long)o->repeat, (long long)o->nmin, (long long)o->nmax);
    if (o->valid && o->rtt_us >= 0)
        fprintf(f, ", \"session_link\": {\"rtt_us\": %.3f, \"page_us\": %.3f}", o->rtt_us, o->page_us);
    fputc('}', f);
}

void pc_report_json(FILE *f, const pc_report_context *ctx, const pc_result *rs, size_t n, int compare) {
    fprintf(f, "{\"workload\": ");
    json_workload(f, ctx);
    fprintf(f, ", \"link\": ");
    if (ctx->link)
        json_link(f, ctx->link);
    else
        fprintf(f, "null");
    if (compare) {
        fprintf(f, ", \"runs\": [");
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s\n  ", i ? "," : "");
            json_result(f, &rs[i]);
        }
        fprintf(f, "]}\n");
    } else {
        fprintf(f, ", \"run\": ");
        json_result(f, &rs[0]);
        fprintf(f, "}\n");
    }
}

void pc_report_link(FILE *f, const pc_link_measure *m) {
    fprintf(f,
            "link: set rtt %g us, %g Gbit/s -> 1-page fetch expected %.1f us, measured p50 %.1f us "
            "(p99 %.1f, mean %.1f, %+.1f%%); large ranges measured %.3f Gbit/s (%+.1f%%); "
            "loopback overhead compensated: %.1f us\n",
            m->rtt_set_us, m->gbit_set, m->page_expected_us, m->page_p50_us, m->page_p99_us, m->page_mean_us,
            100.0 * (m->page_p50_us / m->page_expected_us - 1.0), m->big_gbit,
            100.0 * (m->big_gbit / m->gbit_set - 1.0), m->overhead_us);
}

void pc_report_text(FILE *f, const pc_report_context *ctx, const pc_result *r) {
    const pc_run_stats *s = &r->st;
    const pc_workload_config *c = &ctx->w->cfg;
    fprintf(f, "workload %s, %d thread%s, %llu pages of %zu bytes, seed %llu; policy %s%s%s\n",
            pc_workload_name(c->kind), c->threads, c->threads == 1 ? "" : "s", (unsigned long long)ctx->pages,
            ctx->page_size, (unsigned long long)c->seed, r->policy, r->overlap ? ", oracle overlapped" : "",
            ctx->no_streams ? ", no streams" : "");
    if (r->status == PC_RESULT_SKIPPED || !r->ran) {
        fprintf(f, "%s: %s\n", r->status == PC_RESULT_SKIPPED ? "skipped" : "failed", r->note);
        return;
    }
    fprintf(f, "faults          %llu (%llu already present when handled), %llu streams\n",
            (unsigned long long)s->faults, (unsigned long long)s->faults_present,
            (unsigned long long)s->streams);
    fprintf(f, "pages           %llu touched, %llu fetched, %llu wasted, %llu pushed\n",
            (unsigned long long)s->pages_touched, (unsigned long long)s->pages_fetched,
            (unsigned long long)s->pages_wasted, (unsigned long long)s->pages_pushed);
    fprintf(f, "response        p50 %.1f us, p99 %.1f us, mean %.1f us; total stall %.3f ms\n",
            s->resp_p50_us, s->resp_p99_us, s->resp_mean_us, s->stall_ms);
    fprintf(f,
            "oracle          p50 %.1f us, p99 %.1f us, mean %.1f us; %.1f%% of the response time; "
            "%llu fallbacks\n",
            s->oracle_p50_us, s->oracle_p99_us, s->oracle_mean_us, 100.0 * s->oracle_share,
            (unsigned long long)s->oracle_fallbacks);
    if (r->oracle.valid)
        fprintf(
            f,
            "session         %lld faults: %lld first, %lld smaller, %lld larger, %lld reverse, %lld repeat; "
            "final NMin %lld, NMax %lld\n",
            (long long)r->oracle.faults, (long long)r->oracle.first, (long long)r->oracle.smaller,
            (long long)r->oracle.larger, (long long)r->oracle.reverse, (long long)r->oracle.repeat,
            (long long)r->oracle.nmin, (long long)r->oracle.nmax);
    fprintf(f, "threads' view   %.3f ms stalled in %llu touches over %.0f us\n", s->thread_stall_ms,
            (unsigned long long)s->thread_stalls, PC_STALL_THRESHOLD_NS / 1000.0);
    fprintf(f, "workload        %.4f s wall\n", s->wall_s);
    if (r->overlap)
        fprintf(f,
                "note            overlapped: the thread is woken after the faulting page and then waits on\n"
                "                the rest of the window in flight; that wait raises no new fault event, so\n"
                "                it is in the threads' view, not in the response time\n");
    fprintf(f, "verification    %s\n", r->status == PC_RESULT_OK ? "every touched page correct" : r->note);
}

void pc_report_table(FILE *f, const pc_result *rs, size_t n) {
    fprintf(f, "%-24s %8s %8s %8s %9s %9s %9s %11s %11s %9s %7s %8s\n", "policy", "faults", "fetched",
            "wasted", "resp_p50", "resp_p99", "resp_mean", "stall_ms", "thr_stall", "oracle50", "share",
            "wall_s");
    for (size_t i = 0; i < n; i++) {
        const pc_result *r = &rs[i];
        const pc_run_stats *s = &r->st;
        if (r->status == PC_RESULT_SKIPPED || !r->ran) {
            /* The whole note is in the JSON and on stderr; its tail says why. */
            const char *why = r->note;
            const char *tail = strstr(why, ": ");
            if (r->status == PC_RESULT_SKIPPED && tail != NULL) why = tail + 2;
            fprintf(f, "%-24s %s: %s\n", r->label, r->status == PC_RESULT_SKIPPED ? "skipped" : "FAILED",
                    why);
            continue;
        }
        fprintf(f, "%-24s %8llu %8llu %8llu %9.1f %9.1f %9.1f %11.3f %11.3f %9.1f %6.1f%% %8.4f%s\n",
                r->label, (unsigned long long)s->faults, (unsigned long long)s->pages_fetched,
                (unsigned long long)s->pages_wasted, s->resp_p50_us, s->resp_p99_us, s->resp_mean_us,
                s->stall_ms, s->thread_stall_ms, s->oracle_p50_us, 100.0 * s->oracle_share, s->wall_s,
                r->status == PC_RESULT_FAILED ? "  FAILED" : "");
    }
}

int pc_report_csv(const char *path, const pc_report_context *ctx, const pc_result *rs, size_t n) {
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    fprintf(f, "workload,threads,streams,policy,mode,status,faults,faults_already_present,pages_fetched,"
               "pages_wasted,pages_pushed,pages_touched,resp_p50_us,resp_p99_us,resp_mean_us,"
               "total_stall_ms,thread_stall_ms,oracle_p50_us,oracle_p99_us,oracle_share,wall_s\n");
    for (size_t i = 0; i < n; i++) {
        const pc_result *r = &rs[i];
        const pc_run_stats *s = &r->st;
        static const char *const status[] = {"ok", "failed", "skipped"};
        fprintf(
            f,
            "%s,%d,%s,%s,%s,%s,%llu,%llu,%llu,%llu,%llu,%llu,%.1f,%.1f,%.1f,%.3f,%.3f,%.1f,%.1f,%.4f,%.4f\n",
            pc_workload_name(ctx->w->cfg.kind), ctx->w->cfg.threads, ctx->no_streams ? "no" : "yes",
            r->policy, r->overlap ? "overlap" : "plain", status[r->status], (unsigned long long)s->faults,
            (unsigned long long)s->faults_present, (unsigned long long)s->pages_fetched,
            (unsigned long long)s->pages_wasted, (unsigned long long)s->pages_pushed,
            (unsigned long long)s->pages_touched, s->resp_p50_us, s->resp_p99_us, s->resp_mean_us,
            s->stall_ms, s->thread_stall_ms, s->oracle_p50_us, s->oracle_p99_us, s->oracle_share, s->wall_s);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static void svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
            case '<': fputs("&lt;", f); break;
            case '>': fputs("&gt;", f); break;
            case '&': fputs("&amp;", f); break;
            default: fputc(*s, f);
        }
    }
}

/* Grouped horizontal bars per policy: the handler's total stall (sum of the
 * response times) and the threads' view of it, on one scale. */
int pc_report_svg(const char *path, const pc_report_context *ctx, const pc_result *rs, size_t n) {
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    double max = 0;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++)
        if (rs[i].ran) {
            shown++;
            if (rs[i].st.stall_ms > max) max = rs[i].st.stall_ms;
            if (rs[i].st.thread_stall_ms > max) max = rs[i].st.thread_stall_ms;
        }
    if (max <= 0) max = 1;
    const int left = 170, bar_w = 440, bar_h = 13, row = 36, top = 74;
    int height = top + (int)shown * row + 36;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            left + bar_w + 190, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    const pc_workload_config *c = &ctx->w->cfg;
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">prepage-postcopy: total stall "
               "per policy on real page faults (lower is better)</text>\n");
    fprintf(f, "<text x=\"10\" y=\"38\">workload %s, %d thread%s, %llu pages, seed %llu%s",
            pc_workload_name(c->kind), c->threads, c->threads == 1 ? "" : "s", (unsigned long long)ctx->pages,
            (unsigned long long)c->seed, ctx->no_streams ? ", no streams" : "");
    if (ctx->link)
        fprintf(f, "; link %g us, %g Gbit/s (measured 1-page fetch %.0f us)", ctx->link->rtt_set_us,
                ctx->link->gbit_set, ctx->link->page_p50_us);
    fprintf(f, "</text>\n");
    fprintf(f, "<rect x=\"10\" y=\"48\" width=\"12\" height=\"10\" fill=\"#1f77b4\"/>"
               "<text x=\"26\" y=\"57\">handler: sum of response times (fault read to wake)</text>\n");
    fprintf(f,
            "<rect x=\"330\" y=\"48\" width=\"12\" height=\"10\" fill=\"#9ecae1\"/>"
            "<text x=\"346\" y=\"57\">threads' view: touches slower than %.0f us</text>\n",
            PC_STALL_THRESHOLD_NS / 1000.0);
    size_t y = 0;
    for (size_t i = 0; i < n; i++) {
        const pc_result *r = &rs[i];
        if (!r->ran) continue;
        int yy = top + (int)y * row;
        int dp = strncmp(r->policy, "dp", 2) == 0;
        int failed = r->status == PC_RESULT_FAILED;
        double v[2] = {r->st.stall_ms, r->st.thread_stall_ms};
        const char *fill[2] = {dp ? "#d62728" : "#1f77b4", dp ? "#f4a3a3" : "#9ecae1"};
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\"%s>", left - 8, yy + bar_h + 4,
                dp ? " font-weight=\"bold\"" : "");
        svg_text(f, r->label);
        fprintf(f, "</text>\n");
        for (int b = 0; b < 2; b++) {
            int w = (int)(v[b] / max * bar_w + 0.5);
            int by = yy + b * (bar_h + 1);
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>", left, by,
                    w > 0 ? w : 1, bar_h, failed ? "#999999" : fill[b]);
            fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%.1f ms", left + w + 5, by + bar_h - 2,
                    v[b]);
            if (b == 0)
                fprintf(f, ", %llu faults%s", (unsigned long long)r->st.faults, failed ? " (FAILED)" : "");
            fprintf(f, "</text>\n");
        }
        y++;
    }
    int axis = top + (int)shown * row;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", left, top - 4, left,
            axis);
    fprintf(f, "<text x=\"%d\" y=\"%d\">0</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f ms</text>\n",
            left, axis + 16, left + bar_w, axis + 16, max);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}
