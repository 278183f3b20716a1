/*
** metrics_dp.c: the data-parallel metrics of one device (README "Data
** parallelism").
**
**   model states        dense (replicated) parameters Psi of the parts the
**                       device holds are sharded over its REPLICA group (n
**                       devices), expert parameters over its DP group;
**                       with e = bytes_per_element and K = optimizer bytes
**                       per parameter (12 at e < 4, else 8):
**                         zero 0: weights e Psi, gradients e Psi, optimizer K Psi
**                         zero 1: optimizer K Psi / n
**                         zero 2: gradients and optimizer / n
**                         zero 3: all three / n
**                       (16 Psi, 4 Psi + 12 Psi / n, 2 Psi + 14 Psi / n,
**                       16 Psi / n at e = 2); weights times the schedule's
**                       weight versions.  A synthetic part's states split
**                       the same way (it has no experts).
**   coll_bytes[op]      bytes the device sent in TS_COLLECTIVE events of op.
**   dp_bytes            the same over data-parallel purposes (grads,
**                       params, gather).
**   dp_comm_s           length of the union of the device's data-parallel
**                       collectives' spans.
**   exposed_comm_s      sum of its TS_COMM_WAIT durations but those of
**                       tensor-parallel collectives.
**   tp_bytes, tp_comm_s, tp_exposed_s  the same three for tensor-parallel
**                       collectives (purpose tp; README "Tensor
**                       parallelism"): bytes sent, union of spans, waits.
**   optimizer_s         sum of its TS_OPTIMIZER durations.
*/
#include <stdlib.h>

#include "metrics_dp.h"
#include "ts_moe.h"

void ts__metrics_states(const ts_job_t *job, const ts_plan_t *plan, const ts_cost_t *cost,
                        int d, int versions, ts_device_metrics_t *dm) {
  const ts_layout_t *lay = plan->layout;
  int z = job->zero, nr = 1, nd = 1;
  if (z > 0 && d < plan->n_devices) {
    nr = ts_plan_group(plan, TS_GROUP_REPLICA, d).n;
    nd = ts_plan_group(plan, TS_GROUP_DP, d).n;
  }
  double e = job->bytes_per_element, K = e < 4 ? 12.0 : 8.0;
  for (int v = 0; v < lay->n_vstages; v++) {
    if (lay->dev[v] != d) continue;
    int p = lay->part[v];
    const ts_part_cost_t *pc = &cost->part[p];
    double ex = cost->moe ? cost->moe->expert_params[p] : 0;
    double we = ex * e, ge = ex * e, oe = ex * K;
    double wd = pc->weights_bytes - we, gd = pc->gradients_bytes - ge, od = pc->optimizer_bytes - oe;
    if (z == 0) { /* today's sums, term for term */
      dm->weights_bytes += versions * pc->weights_bytes;
      dm->gradients_bytes += pc->gradients_bytes;
      dm->optimizer_bytes += pc->optimizer_bytes;
      continue;
    }
    dm->weights_bytes += versions * (z >= 3 ? wd / nr + we / nd : wd + we);
    dm->gradients_bytes += z >= 2 ? gd / nr + ge / nd : gd + ge;
    dm->optimizer_bytes += od / nr + oe / nd;
  }
}

bool ts__metrics_is_dp_work(const ts_event_t *e) {
  /* A collective's steps carry no purpose: its TS_COLLECTIVE span (which
  ** covers them) decides. */
  if (e->kind == TS_OPTIMIZER || e->kind == TS_COMM_WAIT || e->kind == TS_SEND_COLL) return true;
  /* A tensor-parallel collective of no micro-batch is the TP group's sync
  ** of its replicated gradients after the DP sync (rt_tp.c
  ** ts__rt_tp_sync): TP traffic, but end-of-iteration work. */
  if (e->kind == TS_COLLECTIVE)
    return ts_coll_purpose_is_dp(TS_EV_COLL_PURPOSE(e->coll)) ||
           (TS_EV_COLL_PURPOSE(e->coll) == TS_CP_TP && e->mb < 0);
  return false;
}

static int start_cmp(const void *a, const void *b) {
  const ts_event_t *x = *(const ts_event_t *const *)a, *y = *(const ts_event_t *const *)b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* The open piece [lo, hi] of a union of spans (hi < lo: none) and its
** closed pieces' length. */
typedef struct span_union {
  double lo, hi, sum;
} span_union_t;

/* Adds [a, b] (spans come sorted by start). */
static void union_add(span_union_t *u, double a, double b) {
  if (u->hi >= u->lo && a <= u->hi) { /* extend the piece */
    if (b > u->hi) u->hi = b;
  } else {
    if (u->hi >= u->lo) u->sum += u->hi - u->lo;
    u->lo = a, u->hi = b;
  }
}

static double union_len(const span_union_t *u) { return u->sum + (u->hi >= u->lo ? u->hi - u->lo : 0); }

void ts__metrics_streams(const ts_event_t **sev, int ns, ts_device_metrics_t *dm) {
  qsort(sev, (size_t)ns, sizeof *sev, start_cmp);
  span_union_t dp = {0, -1, 0}, tp = {0, -1, 0};
  for (int i = 0; i < ns; i++) {
    const ts_event_t *e = sev[i];
    double len = e->end - e->start;
    bool is_tp = TS_EV_COLL_PURPOSE(e->coll) == TS_CP_TP;
    if (e->kind == TS_OPTIMIZER) {
      dm->optimizer_s += len;
    } else if (e->kind == TS_COMM_WAIT) {
      if (is_tp)
        dm->tp_exposed_s += len;
      else
        dm->exposed_comm_s += len;
    } else if (e->kind == TS_COLLECTIVE) {
      ts_coll_op_t op = TS_EV_COLL_OP(e->coll);
      if (op >= 0 && op < TS_COLL_OPS) dm->coll_bytes[op] += e->bytes;
      if (is_tp) {
        dm->tp_bytes += e->bytes;
        union_add(&tp, e->start, e->end);
      }
      if (!ts_coll_purpose_is_dp(TS_EV_COLL_PURPOSE(e->coll))) continue;
      dm->dp_bytes += e->bytes;
      union_add(&dp, e->start, e->end);
    }
  }
  dm->dp_comm_s = union_len(&dp);
  dm->tp_comm_s = union_len(&tp);
}
