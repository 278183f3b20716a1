/*
** ref_versions.c: weight versions of the reference executor (ts_ref.h,
** "Weight versions"): which version an op computes with, the SGD update
** that a stage's last backward of an iteration applies, and the check
** that a stage never holds more live versions than the schedule keeps.
*/
#include <sysexits.h>

#include "ref_internal.h"

int ts__ref_vslot(const ref_x_t *x, int k) { return ((k % x->V) + x->V) % x->V; }

/* Distinct versions stage sg holds live: the newest, and the one of every
** iteration with a micro-batch in flight (W(k < 0) counts as W(0)). */
static int live_versions(const ref_x_t *x, const ref_stage_t *sg) {
  int n = 1, last = sg->newest;
  for (int t = 0; t < x->I; t++) {
    int k = t - x->d < 0 ? 0 : t - x->d;
    if (sg->inflight[t] > 0 && k != sg->newest && k != last) {
      n++;
      last = k;
    }
  }
  return n;
}

/* The model holding the weights that micro-batch mb computes with on
** virtual stage v: the device's own model in a run without versions, else
** W(t - d) for the micro-batch's iteration t.  NULL, after recording the
** executor error, when that version is not computed yet. */
ts_ref_model_t *ts__ref_stage_model(ref_x_t *x, ref_dev_t *dv, int v, int mb, const char *op) {
  if (!x->versioned) return dv->model;
  ref_stage_t *sg = &x->stg[v];
  int m = x->job->microbatches, t = mb / m, k = t - x->d;
  if (k > sg->newest) {
    ts__ref_fatal(x, EX_SOFTWARE,
              "reference executor: device %d: %s of stage %d micro-batch %d (iteration %d) needs "
              "weight version %d, not yet computed: the update of iteration %d still waits for %d "
              "of its %d backwards on this stage (the schedule keeps %d weight version%s)",
              dv->id, op, v, mb, t, k, sg->newest, m - sg->bwd[sg->newest], m, x->V,
              x->V == 1 ? "" : "s");
    return NULL;
  }
  return sg->slot[ts__ref_vslot(x, k)];
}

/* After a forward or an update: checks that stage v holds at most V
** versions live and records the peak.  Returns 0, or -1 after recording the
** executor error. */
static int count_live(ref_x_t *x, ref_dev_t *dv, int v) {
  ref_stage_t *sg = &x->stg[v];
  int live = live_versions(x, sg);
  if (live > sg->peak_live) sg->peak_live = live;
  if (live <= x->V) return 0;
  ts__ref_fatal(x, EX_SOFTWARE,
            "reference executor: device %d: stage %d holds %d weight versions live (the newest, "
            "%d, and those of its in-flight micro-batches), more than the %d the schedule keeps",
            dv->id, v, live, sg->newest, x->V);
  return -1;
}

/* The update of iteration t = newest on stage v, once all its backwards
** there are done: W(t + 1) = W(t) - TS_REF_LR x (the gradients accumulated
** with W(t - d)), written into W(t - d)'s slot; those gradients are added
** to the device model's, which sums every gradient of the run. */
static void apply_update(ref_x_t *x, ref_dev_t *dv, int v) {
  ref_stage_t *sg = &x->stg[v];
  int t = sg->newest;
  ts_ref_model_t *cur = sg->slot[ts__ref_vslot(x, t)], *acc = sg->slot[ts__ref_vslot(x, t - x->d)];
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
    size_t n;
    const double *w = ts_ref_block_params(cur, l, &n);
    const double *g = ts_ref_block_grad(acc, l, &n);
    /* The models own their gradient vectors, which are not const. */
    double *sum = (double *)ts_ref_block_grad(dv->model, l, &n);
    double *out = ts_ref_block_params(acc, l, &n);
    for (size_t i = 0; i < n; i++) {
      sum[i] += g[i];
      out[i] = w[i] - TS_REF_LR * g[i];
    }
  }
  ts_ref_model_zero_grad(acc);
  sg->newest = t + 1;
}

/* Bookkeeping of a versioned forward (backward = 0) or backward of mb on
** v: in-flight counts, the updates that become due, the live-version
** check. */
void ts__ref_versions_after(ref_x_t *x, ref_dev_t *dv, int v, int mb, int backward) {
  if (!x->versioned) return;
  ref_stage_t *sg = &x->stg[v];
  int m = x->job->microbatches, t = mb / m;
  if (!backward) {
    sg->inflight[t]++;
    count_live(x, dv, v);
    return;
  }
  sg->inflight[t]--;
  sg->bwd[t]++;
  while (sg->newest < x->I && sg->bwd[sg->newest] == m) apply_update(x, dv, v);
  count_live(x, dv, v);
}
