/*
** sweep_adjust.c: the adjustments of a sweep that mixes schedules.  When a
** sweep varies "schedule", each point runs with its schedule's adjustments
** (ts_schedule_t.compare_sets, applied as `trainsim compare` applies them:
** varuna with recompute "full", interleaved with 2 chunks when the job has
** one, the one-chunk schedules with one chunk, ...), except on a path the
** sweep varies, whose values are the user's.  The adjustments of a point
** are listed in the "adjustments" column of sweep.csv.  Since a varied
** path is never adjusted, a point's adjustments depend on its schedule
** alone; a sweep has the column only when some schedule it varies needs
** an adjustment (so every other sweep is unchanged).
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "sweep_internal.h"
#include "ts_compare.h"
#include "ts_runtime.h"
#include "ts_internal.h"

int ts__sw_adjust(const sweep_t *s, const char **sets, int *n, int cap, char *adj, size_t n_adj,
                  ts_err_t *err) {
  adj[0] = 0;
  if (!s->mix) return 0;
  ts_job_t *job = NULL;
  ts_err_t why = {0};
  /* Sizes that do not load: the point's own load reports why. */
  if (ts_job_load_sizes(s->job, sets, *n, &job, &why)) return 0;
  const ts_schedule_t *sched = ts_schedule_find(job->schedule);
  const char **keep = ts__xmalloc((size_t)(s->nv ? s->nv : 1) * sizeof *keep);
  for (int k = 0; k < s->nv; k++) keep[k] = s->v[k].path;
  int rc = sched ? ts__sched_adjust(sched, job, keep, s->nv, sets, n, cap, adj, n_adj, err) : 0;
  free(keep);
  ts_job_free(job);
  return rc;
}

int ts__sw_point_sets(const sweep_t *s, long i, const char ***sets, char ***own, int *n,
                      char *adj, size_t n_adj, ts_err_t *err) {
  int cap = s->n_sets + s->nv + SW_MAX_ADJUST;
  *sets = ts__xmalloc((size_t)cap * sizeof **sets);
  *own = ts__xmalloc((size_t)(s->nv ? s->nv : 1) * sizeof **own);
  for (int k = 0; k < s->n_sets; k++) (*sets)[k] = s->sets[k];
  for (int k = 0; k < s->nv; k++) (*sets)[s->n_sets + k] = (*own)[k] = ts__sw_point_set(s, i, k);
  *n = s->n_sets + s->nv;
  return ts__sw_adjust(s, *sets, n, cap, adj, n_adj, err);
}

void ts__sw_point_sets_free(const sweep_t *s, const char **sets, char **own) {
  for (int k = 0; k < s->nv; k++) free(own[k]);
  free(own);
  free(sets);
}

int ts__sw_mix_decide(sweep_t *s) {
  int vs = -1;
  for (int k = 0; k < s->nv; k++)
    if (!strcmp(s->v[k].path, "schedule")) vs = k;
  s->mix = false;
  if (vs < 0) return 0;
  const char **sets = ts__xmalloc((size_t)(s->n_sets + 1 + SW_MAX_ADJUST) * sizeof *sets);
  for (int k = 0; k < s->n_sets; k++) sets[k] = s->sets[k];
  int rc = 0;
  bool any = false;
  for (int j = 0; j < s->v[vs].n && !rc && !any; j++) {
    sb_t b = {0};
    ts__sw_printf(&b, "schedule=%s", s->v[vs].val[j]);
    sets[s->n_sets] = b.s;
    int n = s->n_sets + 1;
    char adj[SW_ADJ_MAX];
    ts_err_t err = {0};
    s->mix = true; /* ts__sw_adjust adjusts mixing sweeps only */
    rc = ts__sw_adjust(s, sets, &n, n + SW_MAX_ADJUST, adj, sizeof adj, &err);
    s->mix = false;
    any = adj[0] != 0;
    if (rc) fprintf(stderr, "trainsim: error: %s\n", err.msg);
    free(b.s);
  }
  free(sets);
  s->mix = any;
  return rc;
}
