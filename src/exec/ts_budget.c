/*
** ts_budget.c: the size of a job estimated before it runs (README
** "Budget"), and the one-line warning when it exceeds the budget.
**
** Events: compute ops (every micro-batch forward and backward on every
** virtual stage it passes, a third op for a recompute or a split backward,
** one per layer where tensor parallelism runs ops layer by layer),
** point-to-point transfers (an activation and a gradient per micro-batch
** on each edge between devices) and collective steps (a ring all-reduce of
** g members is 2 (g - 1) steps per member: the data-parallel gradient
** buckets of each iteration, and tensor parallelism's four all-reduces per
** layer and micro-batch; in a folded group or from TS_RING_MERGE_MIN
** members the all-reduce is one message per member), divided by the class
** size t x d when the run will be folded (README "Symmetry folding").  Output bytes: about TS_BUDGET_BYTES_PER_EVENT
** per event for all of the outputs (measured on the benchmark job).  It is
** an estimate, within a small factor, meant only to warn before hours of
** simulation or gigabytes of output.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ts_budget.h"
#include "ts_executor.h" /* TS_RING_MERGE_MIN */
#include "ts_sim.h"      /* ts_sim_fold */

/* Messages a member sends in a ring all-reduce over g: 2 (g - 1) steps, or
** one message of both phases where they merge: folded groups, and rings of
** TS_RING_MERGE_MIN members or more (rt_coll.c ts__rt_ring_merged). */
static double ring_msgs(int g, bool fold) { return fold || g >= TS_RING_MERGE_MIN ? 1.0 : 2.0 * (g - 1); }

void ts_budget_estimate(const ts_job_t *job, const ts_plan_t *plan, const ts_cost_t *cost,
                        ts_budget_t *b) {
  memset(b, 0, sizeof *b);
  const ts_layout_t *L = plan->layout;
  double M = (double)job->microbatches * job->iterations;
  int t = plan->degree[TS_DIM_TP], d = plan->degree[TS_DIM_DP];
  /* Symmetry folding simulates one device of each class of t x d. */
  bool fold = (ts_sim_fold > 0 || (ts_sim_fold == 0 && plan->n_devices >= TS_SIM_FOLD_MIN_DEVICES)) &&
              plan->degree[TS_DIM_EP] <= 1;
  double kinds = 2 + (job->recompute == TS_RECOMPUTE_FULL) + (strstr(job->schedule, "zb") != NULL);
  for (int v = 0; v < L->n_vstages; v++) {
    double mbs = L->mb_hi[v] >= 0 ? L->mb_hi[v] - L->mb_lo[v] : M;
    const ts_part_cost_t *pc = &cost->part[L->part[v]];
    double layers = pc->n_layers > 0 ? pc->n_layers : 1;
    b->ops += mbs * kinds * (t > 1 ? layers : 1);
    if (L->next[v] >= 0 && L->dev[L->next[v]] != L->dev[v]) b->transfers += 2 * mbs;
    if (t > 1) b->transfers += mbs * layers * 4 * ring_msgs(t, fold);
    if (d > 1) {
      double cap = job->gradient_bucket_mb > 0 ? job->gradient_bucket_mb * 1048576.0 : 25 * 1048576.0;
      /* Buckets fill to the cap (the first to 1 MiB) and never split a
      ** layer. */
      double g = pc->gradients_bytes, buckets = fmax(1, ceil(g / cap));
      if (layers > 1 && g > 1048576.0) buckets += 1;
      buckets = fmin(buckets, layers);
      b->transfers += buckets * job->iterations * ring_msgs(d, fold);
    }
  }
  if (fold) {
    b->ops /= (double)t * d;
    b->transfers /= (double)t * d;
  }
  /* trace.json and paje.trace stop at their default limits, gantt.svg near
  ** TS_GANTT_BUDGET_BYTES; timeline.csv (about a sixth of the bytes) does
  ** not. */
  double ev = b->ops + b->transfers;
  b->output_bytes = fmin(ev * TS_BUDGET_BYTES_PER_EVENT, ev * TS_BUDGET_BYTES_PER_EVENT / 6 + 205e6);
}

int ts_budget_warn(FILE *f, const ts_job_t *job, const ts_budget_t *b) {
  double ev = b->ops + b->transfers;
  if (ev <= TS_BUDGET_EVENTS && b->output_bytes <= TS_BUDGET_OUTPUT_BYTES) return 0;
  fprintf(f,
          "trainsim: warning: %s: estimated %.3g events (%.3g compute ops, %.3g transfers) and "
          "%.3g GB of output, over the budget of %.3g events or %.3g GB (README \"Budget\"): "
          "the run may take long\n",
          job->path, ev, b->ops, b->transfers, b->output_bytes / 1e9, TS_BUDGET_EVENTS,
          TS_BUDGET_OUTPUT_BYTES / 1e9);
  return 1;
}
