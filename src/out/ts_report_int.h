/*
** ts_report_int.h: what the files of report.html share (ts_report.c the
** page, ts_report_charts.c the Gantt and memory charts,
** ts_report_tables.c the summary and device tables): text formatting and
** the page's sections.  Internal to src/out.
*/
#ifndef TS_REPORT_INT_H
#define TS_REPORT_INT_H

#include <stdio.h>

#include "ts_report.h"

/* A time unit: its name and how many of it make one second. */
typedef struct ts__unit {
  const char *name;
  double per_s;
} ts__unit_t;

/* The unit in which t seconds reads best (s, ms, us, ns). */
ts__unit_t ts__report_unit_for(double t);
/* "668.43 ms", "17.19 GiB", "123 Tsamples/s": into buf (n bytes), which is
** returned; "n/a" for a non-finite time or byte count. */
const char *ts__report_time(char *buf, size_t n, double t);
const char *ts__report_bytes(char *buf, size_t n, double b);
const char *ts__report_si(char *buf, size_t n, double v, const char *unit);
/* The latest finite end of any event of run (0 when none). */
double ts__report_t_max(const ts_run_t *run);

/* Whether m shows data parallelism or collectives at all (collective
** bytes, DP time, comm waits or an optimizer step): only then does the
** page show their key figures and device columns. */
bool ts__report_has_dp(const ts_metrics_t *m);

/* The page's sections, each a <section> written to f (see ts_report.c for
** the order).  write_gantt returns 0 or EX_OSERR (out of memory). */
int ts__report_write_gantt(FILE *f, const ts_result_t *r, const ts_gantt_opts_t *o);
/* "How to read this page": the terms the page uses, for a reader who has
** not read README (ts_report_bubble.c). */
void ts__report_write_intro(FILE *f, const ts_result_t *r);
/* The measured bubble against the schedule's closed form, when it has one
** (ts_report_bubble.c). */
void ts__report_write_bubble(FILE *f, const ts_result_t *r);
/* Where the time goes: the time split per stage (ts_report_time.c). */
void ts__report_write_time(FILE *f, const ts_result_t *r);
void ts__report_write_memory(FILE *f, const ts_result_t *r);
void ts__report_write_summary(FILE *f, const ts_result_t *r);
void ts__report_write_devices(FILE *f, const ts_result_t *r);
/* What the platform's links carried: the link classes and the hottest
** links (ts_report_links.c); nothing when the run has no link data.
** ts__report_write_link_defs writes the definitions of links[]' fields
** (README's summary.json rows, ts_report_tables.c). */
void ts__report_write_links(FILE *f, const ts_result_t *r);
void ts__report_write_link_defs(FILE *f);

#endif
