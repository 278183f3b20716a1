/*
** ts_compare.h: `trainsim compare`.
*/
#ifndef TS_COMPARE_H
#define TS_COMPARE_H

#include <stdbool.h>

#include "trainsim.h"

/* Runs every applicable schedule on the job at path (NULL: the default
** job) with the --set strings, writes DIR/compare.csv and DIR/compare.svg
** atomically and, unless quiet, prints the table.  Returns 0 or a sysexits
** code with err set. */
int ts_compare(const char *path, const char *const *sets, int n_sets, const char *dir, bool quiet,
               ts_err_t *err);

#endif
