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
** Cost: one pass over the events (by start), each interval into its
** device's sweep, which keeps a heap of the running intervals' ends
** (O(E log k), k the most that run at once on a device; no per-device
** arrays of intervals).
*/
#include <math.h>
#include <stdlib.h>

#include "metrics_dp.h"
#include "ts_internal.h"

/* The parts in their order of precedence; PP_ANY (not a part) marks the
** device's own messages, which count in pp_comm_s only. */
enum { P_COMPUTE, P_TP, P_DP, P_OPT, P_PP, N_PARTS, PP_ANY = N_PARTS };

/* An interval of a device: [start, end) in part (or PP_ANY). */
typedef struct span {
  double start, end;
  int part;
} span_t;

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

/* A min-heap of the running spans' (end, part), for the sweep. */
typedef struct heap {
  span_t *h;
  int n, cap;
} heap_t;

static void heap_push(heap_t *q, span_t s) {
  if (q->n == q->cap) q->h = ts__xrealloc(q->h, (size_t)(q->cap = q->cap ? 2 * q->cap : 16) * sizeof *q->h);
  int i = q->n++;
  for (; i > 0 && q->h[(i - 1) / 2].end > s.end; i = (i - 1) / 2) q->h[i] = q->h[(i - 1) / 2];
  q->h[i] = s;
}

static span_t heap_pop(heap_t *q) {
  span_t top = q->h[0], last = q->h[--q->n];
  int i = 0;
  for (int c; (c = 2 * i + 1) < q->n; i = c) {
    if (c + 1 < q->n && q->h[c + 1].end < q->h[c].end) c++;
    if (!(q->h[c].end < last.end)) break;
    q->h[i] = q->h[c];
  }
  if (q->n > 0) q->h[i] = last;
  return top;
}

/* The sweep's state: the time reached, the running spans per part, and
** the time each part (and PP_ANY) took so far. */
typedef struct sweep {
  double t, part[N_PARTS], pp_any;
  int count[N_PARTS + 1];
} sweep_t;

/* Moves the sweep to time u (no earlier than its time: nothing if equal),
** crediting [t, u) to the first part that runs. */
static void sweep_to(sweep_t *w, double u) {
  double dt = u - w->t;
  if (!(dt > 0)) return;
  for (int p = 0; p < N_PARTS; p++)
    if (w->count[p] > 0) {
      w->part[p] += dt;
      break;
    }
  if (w->count[PP_ANY] > 0) w->pp_any += dt;
  w->t = u;
}

/* A device's sweep in progress: its state and its running spans. */
typedef struct dev_sweep {
  sweep_t w;
  heap_t q;
} dev_sweep_t;

/* Ends the spans of x that end at or before t, in time order. */
static void sweep_ends(dev_sweep_t *x, double t) {
  while (x->q.n > 0 && x->q.h[0].end <= t) {
    span_t e = heap_pop(&x->q);
    sweep_to(&x->w, e.end);
    x->w.count[e.part]--;
  }
}

/* Adds span sp to x, whose spans so far started no later: the ends at or
** before its start first (touching spans leave no gap), then its start;
** each instant's changes together (sweep_to credits only when time
** moves). */
static void sweep_add(dev_sweep_t *x, span_t sp) {
  sweep_ends(x, sp.start);
  sweep_to(&x->w, sp.start);
  x->w.count[sp.part]++;
  heap_push(&x->q, sp);
}

/* x's split over [0, T] into dm, its spans all added. */
static void sweep_done(dev_sweep_t *x, double T, ts_device_metrics_t *dm) {
  sweep_ends(x, INFINITY);
  ts_time_split_t *s = &dm->split;
  s->compute_s = x->w.part[P_COMPUTE];
  s->tp_exposed_s = x->w.part[P_TP];
  s->dp_exposed_s = x->w.part[P_DP];
  s->optimizer_s = x->w.part[P_OPT];
  s->pp_wait_s = x->w.part[P_PP];
  double used = s->compute_s + s->tp_exposed_s + s->dp_exposed_s + s->optimizer_s + s->pp_wait_s;
  s->idle_s = T > used ? T - used : 0;
  dm->pp_comm_s = x->w.pp_any;
}

static int ev_start_cmp(const void *a, const void *b) {
  const ts_event_t *x = *(const ts_event_t *const *)a, *y = *(const ts_event_t *const *)b;
  return (x->start > y->start) - (x->start < y->start);
}

void ts__metrics_time(const ts_run_t *run, double T, ts_metrics_t *m) {
  int nd = m->n_devices, ne = run->n_events;
  /* One pass over the events by start (as ts_run_sort leaves them; a
  ** hand-built run out of order is taken through a sorted copy), each
  ** device's spans into its own sweep. */
  const ts_event_t **order = NULL;
  for (int i = 1; i < ne && !order; i++)
    if (run->events[i].start < run->events[i - 1].start) {
      order = ts__xmalloc((size_t)ne * sizeof *order);
      for (int k = 0; k < ne; k++) order[k] = &run->events[k];
      qsort(order, (size_t)ne, sizeof *order, ev_start_cmp);
    }
  dev_sweep_t *xs = ts__xcalloc((size_t)(nd > 0 ? nd : 1), sizeof *xs);
  for (int i = 0; i < ne; i++) {
    const ts_event_t *e = order ? order[i] : &run->events[i];
    int ds[2] = {e->device, e->peer};
    for (int k = 0; k < 2; k++) {
      int d = ds[k];
      if (d < 0 || d >= nd || (k == 1 && d == e->device)) continue;
      if (run->fold && run->fold[d] != d) continue; /* its representative's, below */
      bool mine;
      int p = part_of(e, d, &mine);
      if (p >= 0) sweep_add(&xs[d], (span_t){e->start, e->end, p});
      if (mine) sweep_add(&xs[d], (span_t){e->start, e->end, PP_ANY});
    }
  }
  ts_time_split_t *s = &m->split;
  *s = (ts_time_split_t){0};
  for (int d = 0; d < nd; d++) {
    ts_device_metrics_t *dm = &m->dev[d];
    if (run->fold && run->fold[d] != d) { /* folded: its representative's (a lower device) */
      dm->split = m->dev[run->fold[d]].split;
      dm->pp_comm_s = m->dev[run->fold[d]].pp_comm_s;
    } else {
      sweep_done(&xs[d], T, dm);
    }
    s->compute_s += dm->split.compute_s / nd;
    s->tp_exposed_s += dm->split.tp_exposed_s / nd;
    s->dp_exposed_s += dm->split.dp_exposed_s / nd;
    s->optimizer_s += dm->split.optimizer_s / nd;
    s->pp_wait_s += dm->split.pp_wait_s / nd;
    s->idle_s += dm->split.idle_s / nd;
    if (dm->pp_comm_s > m->pp_comm_s) m->pp_comm_s = dm->pp_comm_s;
  }
  for (int d = 0; d < nd; d++) free(xs[d].q.h);
  free(xs);
  free(order);
}
