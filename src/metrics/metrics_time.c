/*
** metrics_time.c: where each device's time goes (README "Time split").
**
** The run's span [0, T] of every device is cut into six parts by what its
** compute stream does at each instant, the first that applies:
**   compute_s     a compute op runs (forward, backward, recompute, ...);
**   tp_exposed_s  it waits for a tensor-parallel collective (a comm_wait
**                 of purpose tp);
**   dp_exposed_s  it waits for any other collective (data-parallel ones,
**                 and a schedule's own);
**   optimizer_s   the optimizer step runs;
**   pp_wait_s     a pipeline message (send_act or send_grad) to this
**                 device is in flight: exposed pipeline communication;
**   idle_s        none of these: the pipeline bubble proper (waiting for a
**                 peer that has not sent yet), and MoE all-to-all calls and
**                 host-memory waits, which this split does not name.
** So the six parts add up to T on every device.  pp_comm_s is the length
** of the union of the spans of the pipeline messages the device sends or
** receives (overlapped or not), the analogue of tp_comm_s and dp_comm_s.
** The run's time_split is the mean of the devices' (it adds up to T too).
**
** A device folded onto its representative (ts_run_t.fold, README "Symmetry
** folding") has the representative's split: only representatives have
** events, and their pipeline messages to each other are recorded.
**
** Cost: one pass over the events to pick the device's intervals, then a
** sort and a sweep per device (O(E log E) in all).
*/
#include <stdlib.h>

#include "metrics_dp.h"
#include "ts_internal.h"

/* The parts in their order of precedence; PP_ANY (not a part) marks the
** device's own messages, which count in pp_comm_s only. */
enum { P_COMPUTE, P_TP, P_DP, P_OPT, P_PP, N_PARTS, PP_ANY = N_PARTS };

/* One end of an interval: its time, part and +1 (start) or -1 (end). */
typedef struct mark {
  double t;
  int part, step;
} mark_t;

static int mark_cmp(const void *a, const void *b) {
  const mark_t *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return x->step - y->step; /* ends first: touching intervals leave no gap */
}

/* The part that event e is for device d, or -1 (and *mine: a pipeline
** message d sends or receives). */
static int part_of(const ts_event_t *e, int d, bool *mine) {
  *mine = false;
  if (!(e->end > e->start)) return -1;
  if (e->kind == TS_SEND_ACT || e->kind == TS_SEND_GRAD) {
    *mine = e->device == d || e->peer == d;
    return e->peer == d && e->device != d ? P_PP : -1;
  }
  if (e->device != d) return -1;
  if (ts_kind_is_compute(e->kind)) return P_COMPUTE;
  if (e->kind == TS_COMM_WAIT) return TS_EV_COLL_PURPOSE(e->coll) == TS_CP_TP ? P_TP : P_DP;
  if (e->kind == TS_OPTIMIZER) return P_OPT;
  return -1;
}

/* Sweeps device d's n marks (sorted) over [0, T] into dm. */
static void sweep(const mark_t *mk, int n, double T, ts_device_metrics_t *dm) {
  int count[N_PARTS + 1] = {0};
  double part[N_PARTS] = {0}, pp_any = 0, t = 0;
  for (int i = 0; i < n; i++) {
    double dt = mk[i].t - t;
    if (dt > 0) {
      for (int p = 0; p < N_PARTS; p++)
        if (count[p] > 0) {
          part[p] += dt;
          break;
        }
      if (count[PP_ANY] > 0) pp_any += dt;
      t = mk[i].t;
    }
    count[mk[i].part] += mk[i].step;
  }
  ts_time_split_t *s = &dm->split;
  s->compute_s = part[P_COMPUTE];
  s->tp_exposed_s = part[P_TP];
  s->dp_exposed_s = part[P_DP];
  s->optimizer_s = part[P_OPT];
  s->pp_wait_s = part[P_PP];
  double used = s->compute_s + s->tp_exposed_s + s->dp_exposed_s + s->optimizer_s + s->pp_wait_s;
  s->idle_s = T > used ? T - used : 0;
  dm->pp_comm_s = pp_any;
}

void ts__metrics_time(const ts_run_t *run, double T, ts_metrics_t *m) {
  int nd = m->n_devices;
  /* Marks per device: counted, then placed (a counting sort by device). */
  size_t *at = ts__xcalloc((size_t)nd + 1, sizeof *at);
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    int ds[2] = {e->device, e->peer};
    for (int k = 0; k < 2; k++) {
      int d = ds[k];
      if (d < 0 || d >= nd || (k == 1 && d == e->device)) continue;
      bool mine;
      int p = part_of(e, d, &mine);
      at[d + 1] += (size_t)((p >= 0) + mine) * 2;
    }
  }
  for (int d = 0; d < nd; d++) at[d + 1] += at[d];
  mark_t *mk = ts__xmalloc((at[nd] ? at[nd] : 1) * sizeof *mk);
  size_t *fill = ts__xmalloc(((size_t)nd + 1) * sizeof *fill);
  for (int d = 0; d <= nd; d++) fill[d] = at[d];
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    int ds[2] = {e->device, e->peer};
    for (int k = 0; k < 2; k++) {
      int d = ds[k];
      if (d < 0 || d >= nd || (k == 1 && d == e->device)) continue;
      bool mine;
      int p = part_of(e, d, &mine);
      if (p >= 0) {
        mk[fill[d]++] = (mark_t){e->start, p, 1};
        mk[fill[d]++] = (mark_t){e->end, p, -1};
      }
      if (mine) {
        mk[fill[d]++] = (mark_t){e->start, PP_ANY, 1};
        mk[fill[d]++] = (mark_t){e->end, PP_ANY, -1};
      }
    }
  }
  ts_time_split_t *s = &m->split;
  *s = (ts_time_split_t){0};
  for (int d = 0; d < nd; d++) {
    ts_device_metrics_t *dm = &m->dev[d];
    size_t n = at[d + 1] - at[d];
    if (run->fold && run->fold[d] != d) { /* folded: its representative's (a lower device) */
      dm->split = m->dev[run->fold[d]].split;
      dm->pp_comm_s = m->dev[run->fold[d]].pp_comm_s;
    } else {
      qsort(mk + at[d], n, sizeof *mk, mark_cmp);
      sweep(mk + at[d], (int)n, T, dm);
    }
    s->compute_s += dm->split.compute_s / nd;
    s->tp_exposed_s += dm->split.tp_exposed_s / nd;
    s->dp_exposed_s += dm->split.dp_exposed_s / nd;
    s->optimizer_s += dm->split.optimizer_s / nd;
    s->pp_wait_s += dm->split.pp_wait_s / nd;
    s->idle_s += dm->split.idle_s / nd;
    if (dm->pp_comm_s > m->pp_comm_s) m->pp_comm_s = dm->pp_comm_s;
  }
  free(fill);
  free(mk);
  free(at);
}
