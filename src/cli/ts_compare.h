/*
** ts_compare.h: `trainsim compare`.
*/
#ifndef TS_COMPARE_H
#define TS_COMPARE_H

#include <stdbool.h>

#include "trainsim.h"
#include "ts_exec.h"

/* Runs every applicable schedule on the job at path (NULL: the default
** job) with the --set strings on executor ex (NULL: simgrid), writes
** DIR/compare.csv and DIR/compare.svg atomically and, unless quiet, prints
** the table.  A schedule the executor cannot run is listed as skipped with
** its error.  Returns 0 or a sysexits code with err set. */
int ts_compare(const char *path, const char *const *sets, int n_sets, const ts_executor_t *ex,
               const char *dir, bool quiet, ts_err_t *err);

#endif
