/* report.h: what a run or a comparison prints: text, JSON, CSV, SVG. */
#ifndef PC_REPORT_H
#define PC_REPORT_H

#include "dest.h"
#include "source.h"
#include "workload.h"

#include <stdio.h>

enum { PC_RESULT_OK = 0, PC_RESULT_FAILED = 1, PC_RESULT_SKIPPED = 2 };

typedef struct pc_result {
    char label[64]; /* policy, and "+overlap" in overlap mode */
    char policy[48];
    int overlap;
    int status;     /* PC_RESULT_* */
    int ran;        /* the workload ran (statistics are valid) */
    char note[512]; /* why it failed or was skipped */
    pc_run_stats st;
    pc_oracle_summary oracle; /* the session's final counters, when from prepaged */
} pc_result;

typedef struct pc_report_context {
    const pc_workload *w;
    const pc_link_measure *link; /* NULL when not measured */
    uint64_t pages;
    size_t page_size;
    int no_streams;
    double push_share;
} pc_report_context;

void pc_report_text(FILE *f, const pc_report_context *ctx, const pc_result *r);
void pc_report_link(FILE *f, const pc_link_measure *m);
void pc_report_json(FILE *f, const pc_report_context *ctx, const pc_result *rs, size_t n, int compare);
void pc_report_table(FILE *f, const pc_result *rs, size_t n);
int pc_report_csv(const char *path, const pc_report_context *ctx, const pc_result *rs, size_t n);
int pc_report_svg(const char *path, const pc_report_context *ctx, const pc_result *rs, size_t n);

#endif
