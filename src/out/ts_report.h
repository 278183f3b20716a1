/*
** ts_report.h: report.html, one self-contained page per run.
*/
#ifndef TS_REPORT_H
#define TS_REPORT_H

#include <stdio.h>

#include "ts_out.h"

/* Runs with more events than this get no inline Gantt chart in the page
** (the page says so and points to gantt.svg); the memory charts stay. */
#define TS_REPORT_MAX_EVENTS 20000

/* Writes report.html for r to f: the Gantt chart (inline SVG with a hover
** tooltip on every box), a memory-over-time chart per device, the summary
** and per-device tables with each metric's definition.  Needs r->run;
** r->job, r->layout, r->cost and r->metrics may be NULL (their parts say
** "n/a").  The page uses no network and no external file: CSS and JS are
** inline.  Byte-for-byte deterministic.  Returns 0, EX_IOERR when a write
** fails, EX_OSERR when out of memory, EX_SOFTWARE for NULL arguments.
** Does not close f. */
int ts_write_report_html(const ts_result_t *r, FILE *f);

#endif
