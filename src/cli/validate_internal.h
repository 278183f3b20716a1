/*
** validate_internal.h: what the parts of `trainsim validate` share: the
** profile of this machine (validate_profile.c) and the comparison of the
** simulated and the measured run (ts_validate.c).
*/
#ifndef VALIDATE_INTERNAL_H
#define VALIDATE_INTERNAL_H

#include <stdbool.h>

#include "trainsim.h"
#include "ts_ref.h"

/* Latency of every link of the twin platform (seconds). */
#define TS__V_LATENCY 1e-6

/* What the profile measured. */
typedef struct ts__vprof {
  int reps;
  double *fwd, *bwd, *rec;      /* [stages] seconds per stage (all its parts), owned */
  double msg_bytes, copy_s, bandwidth;
} ts__vprof_t;

/* Profiles every model part the layout uses on this thread: one warm-up
** round, then pf->reps rounds over all parts, keeping each op's fastest
** time, summed per stage into pf->fwd, pf->bwd and pf->rec (allocated
** here, freed by the caller also on error); then the copy of one message.
** Returns 0, or EX_OSERR naming the job when memory runs out. */
int ts__validate_profile(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                         const ts_ref_config_t *cfg, ts__vprof_t *pf, ts_err_t *err);

/* The twin platform's XML (hosts cpu0 .. cpu<n-1>, a link per ordered pair
** of the profiled copy bandwidth), malloc'd; NULL when memory runs out. */
char *ts__validate_platform_xml(int n, const ts__vprof_t *pf);

/* The stage seconds a run actually took, into f, b and r ([stages] each):
** per part and kind the mean duration of its ops, summed over the parts of
** each stage (part k is in stage k % stages); a split backward's halves
** count as one backward; r = f where nothing was recomputed. */
void ts__validate_stage_seconds(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                                const ts_run_t *run, double *f, double *b, double *r);

#endif
