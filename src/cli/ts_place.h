/*
** ts_place.h: `trainsim place`, placement search for host-memory schedules.
*/
#ifndef TS_PLACE_H
#define TS_PLACE_H

#include <stdbool.h>

#include "trainsim.h"

/* Loads the job at path (NULL: the default job, which place refuses: it
** is no host-memory schedule) with the --set strings, simulates every GPU
** order of the search space (sim/ts_place.c), writes DIR/place.csv and the
** best placement's outputs atomically and, unless quiet, prints the best
** orders.  Returns 0 or a sysexits code with err set. */
int ts_place(const char *path, const char *const *sets, int n_sets, const char *dir, bool quiet,
             ts_err_t *err);

#endif
