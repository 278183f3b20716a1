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

#endif
