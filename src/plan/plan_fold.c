/*
** plan_fold.c: symmetry classes of a plan (ts_fold.h, README "Symmetry
** folding"): each device's representative (tp = 0, dp = 0, its own ep and
** pp coordinates) and the cyclic shifts of the tp and dp coordinates that
** map the plan onto itself.  Pure bookkeeping over the plan's coordinates.
*/
#include <stdlib.h>

#include "ts_fold.h"
#include "ts_internal.h"

static int mod(int a, int n) { return ((a % n) + n) % n; }

int *ts_fold_classes(const ts_plan_t *p) {
  if (p->degree[TS_DIM_TP] * p->degree[TS_DIM_DP] <= 1) return NULL;
  int *rep = ts__xmalloc((size_t)p->n_devices * sizeof *rep);
  for (int d = 0; d < p->n_devices; d++) rep[d] = ts_fold_image(p, d, d);
  return rep;
}

/* s shifted by sign times q's tp and dp coordinates. */
static int shift(const ts_plan_t *p, int q, int s, int sign) {
  int c[TS_DIMS];
  for (int k = 0; k < TS_DIMS; k++) c[k] = ts_plan_coord(p, s, (ts_dim_t)k);
  c[TS_DIM_TP] = mod(c[TS_DIM_TP] + sign * ts_plan_coord(p, q, TS_DIM_TP), p->degree[TS_DIM_TP]);
  c[TS_DIM_DP] = mod(c[TS_DIM_DP] + sign * ts_plan_coord(p, q, TS_DIM_DP), p->degree[TS_DIM_DP]);
  return ts_plan_device(p, c);
}

int ts_fold_image(const ts_plan_t *p, int q, int s) { return shift(p, q, s, -1); }
int ts_fold_unimage(const ts_plan_t *p, int q, int s) { return shift(p, q, s, 1); }

int ts_fold_vstage(const ts_plan_t *p, int v, int t) {
  int R = p->replicas;
  int r = ts_plan_coord(p, t, TS_DIM_TP) +
          p->degree[TS_DIM_TP] * (ts_plan_coord(p, t, TS_DIM_EP) +
                                  p->degree[TS_DIM_EP] * ts_plan_coord(p, t, TS_DIM_DP));
  return v / R * R + r;
}
