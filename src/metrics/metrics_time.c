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
** Cost: one pass over the events to pick the device's intervals (in the
** events' order, by start), then a sweep per device with a heap of the
** running intervals' ends (O(E log k), k the most that run at once).
*/
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

static int span_cmp(const void *a, const void *b) {
  const span_t *x = a, *y = b;
  return (x->start > y->start) - (x->start < y->start);
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

/* Sweeps device d's n spans (sorted by start) over [0, T] into dm: in
** time order, a span's end before any start at or after it (touching
** spans leave no gap), each instant's changes together. */
static void sweep(const span_t *sp, int n, double T, heap_t *q, ts_device_metrics_t *dm) {
  sweep_t w = {0};
  q->n = 0;
  for (int i = 0; i < n; i++) {
    while (q->n > 0 && q->h[0].end <= sp[i].start) {
      span_t e = heap_pop(q);
      sweep_to(&w, e.end);
      w.count[e.part]--;
    }
    sweep_to(&w, sp[i].start);
    w.count[sp[i].part]++;
    heap_push(q, sp[i]);
  }
  while (q->n > 0) {
    span_t e = heap_pop(q);
    sweep_to(&w, e.end);
    w.count[e.part]--;
  }
  ts_time_split_t *s = &dm->split;
  s->compute_s = w.part[P_COMPUTE];
  s->tp_exposed_s = w.part[P_TP];
  s->dp_exposed_s = w.part[P_DP];
  s->optimizer_s = w.part[P_OPT];
  s->pp_wait_s = w.part[P_PP];
  double used = s->compute_s + s->tp_exposed_s + s->dp_exposed_s + s->optimizer_s + s->pp_wait_s;
  s->idle_s = T > used ? T - used : 0;
  dm->pp_comm_s = w.pp_any;
}

void ts__metrics_time(const ts_run_t *run, double T, ts_metrics_t *m) {
  int nd = m->n_devices;
  /* Spans per device: counted, then placed in the events' order (a
  ** counting sort by device, so each device's spans stay by start). */
  size_t *at = ts__xcalloc((size_t)nd + 1, sizeof *at);
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    int ds[2] = {e->device, e->peer};
    for (int k = 0; k < 2; k++) {
      int d = ds[k];
      if (d < 0 || d >= nd || (k == 1 && d == e->device)) continue;
      bool mine;
      int p = part_of(e, d, &mine);
      at[d + 1] += (size_t)((p >= 0) + mine);
    }
  }
  for (int d = 0; d < nd; d++) at[d + 1] += at[d];
  span_t *sp = ts__xmalloc((at[nd] ? at[nd] : 1) * sizeof *sp);
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
      if (p >= 0) sp[fill[d]++] = (span_t){e->start, e->end, p};
      if (mine) sp[fill[d]++] = (span_t){e->start, e->end, PP_ANY};
    }
  }
  heap_t q = {0};
  ts_time_split_t *s = &m->split;
  *s = (ts_time_split_t){0};
  for (int d = 0; d < nd; d++) {
    ts_device_metrics_t *dm = &m->dev[d];
    size_t n = at[d + 1] - at[d];
    if (run->fold && run->fold[d] != d) { /* folded: its representative's (a lower device) */
      dm->split = m->dev[run->fold[d]].split;
      dm->pp_comm_s = m->dev[run->fold[d]].pp_comm_s;
    } else {
      span_t *ds = sp + at[d];
      for (size_t i = 1; i < n; i++)
        if (ds[i].start < ds[i - 1].start) { /* events not by start: sort them here */
          qsort(ds, n, sizeof *ds, span_cmp);
          break;
        }
      sweep(ds, (int)n, T, &q, dm);
    }
    s->compute_s += dm->split.compute_s / nd;
    s->tp_exposed_s += dm->split.tp_exposed_s / nd;
    s->dp_exposed_s += dm->split.dp_exposed_s / nd;
    s->optimizer_s += dm->split.optimizer_s / nd;
    s->pp_wait_s += dm->split.pp_wait_s / nd;
    s->idle_s += dm->split.idle_s / nd;
    if (dm->pp_comm_s > m->pp_comm_s) m->pp_comm_s = dm->pp_comm_s;
  }
  free(q.h);
  free(fill);
  free(sp);
  free(at);
}
