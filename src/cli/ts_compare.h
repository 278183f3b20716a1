/*
** ts_compare.h: `trainsim compare`.
*/
#ifndef TS_COMPARE_H
#define TS_COMPARE_H

#include <stdbool.h>

#include "trainsim.h"
#include "ts_exec.h"

/* Runs every applicable schedule (or those of schedules, a comma-separated
** list of registry names in the order to run them; NULL: all) on the job
** at path (NULL: the default job) with the --set strings on executor ex
** (NULL: simgrid), writes DIR/compare.csv and DIR/compare.svg atomically
** and, unless quiet, prints the table.  A schedule the executor cannot
** run, or the same program as one before it (ts_compare.c), is listed as
** skipped with the reason.  Returns 0 or a sysexits code with err set
** (EX_USAGE for an unknown, empty or repeated name in schedules). */
int ts_compare(const char *path, const char *const *sets, int n_sets, const char *schedules,
               const ts_executor_t *ex, const char *dir, bool quiet, ts_err_t *err);

/* The adjustments schedule s needs on job (ts_schedule_t.compare_sets, as
** compare applies them): appends each "PATH=VALUE" (static strings) to
** sets[*k], capacity cap, and lists them space-separated in adj (capacity
** n_adj, NUL-terminated on entry); the paths in keep[0..n_keep-1] (may be
** NULL) are never adjusted.  Returns 0, or EX_SOFTWARE with err for a
** malformed declaration or more than cap sets. */
int ts__sched_adjust(const ts_schedule_t *s, const ts_job_t *job, const char *const *keep,
                     int n_keep, const char **sets, int *k, int cap, char *adj, size_t n_adj,
                     ts_err_t *err);

#endif
