/*
** ts_metrics.c: every number of summary.json, derived from a timeline.
**
** Definitions (README "Metrics"):
**   makespan T          latest end of any event (the run starts at 0);
**                       iteration_time = T / iterations.
**   pipeline span P     latest end of any event that is not data-parallel
**                       work (optimizer step, comm wait, a collective or a
**                       collective step of purpose grads, params or
**                       gather): compute, p2p, host copies and the
**                       schedule's own collectives; pipeline_time = P /
**                       iterations.  Without data-parallel events P = T.
**   busy_s(d)           sum of d's compute-op durations (transfers and the
**                       optimizer step are not busy time).
**   bubble_fraction     sum over devices of (P - busy) / (devices x P).
**   bubble_overhead     (P - ideal) / ideal, ideal = max over devices of busy.
**   send_bytes, p2p     bytes of send_act, send_grad, dispatch and combine
**                       (not the steps of collectives).
**   throughput          samples, tokens and model FLOPs count every
**                       data-parallel replica (and expert lane), over T.
**   data parallelism    metrics_dp.c: states by ZeRO stage, collectives'
**                       bytes, dp_comm_s, exposed_comm_s, optimizer_s;
**                       totals sum the bytes and take the maximum of the
**                       times over devices; dp_comm_share = dp_comm_s / T.
**   time split          metrics_time.c: [0, T] of each device cut into
**                       compute, TP and DP waits, optimizer, pipeline
**                       messages in flight and idle; the run's is the mean.
**   gathered (zero 3)   a TS_COLLECTIVE of purpose gather holds its bytes
**                       (a ring all-gather sends (n - 1) / n of the unit's
**                       weights: exactly the unit minus the own shard) from
**                       its start to the end of the compute op that uses
**                       it: the i-th of the G gathers of a (vstage, mb) on
**                       the device (by start) is used by the
**                       floor(i C / G)-th of its C forward, recompute,
**                       backward and backward_input events (program
**                       order): one each when ops are recorded unit by
**                       unit, G / C each when whole.  The memory-over-time
**                       steps (mem_t, mem_bytes) are then activations plus
**                       gathered parameters (activations alone otherwise),
**                       gathered_peak_bytes the peak of the gathered alone,
**                       and peak memory = states + the peak of that sum.
**   activation memory   a forward allocates its stash at its start (the
**                       part's input only under full recompute); a recompute
**                       allocates rec_bytes at its start; a backward (or the
**                       weight-gradient half of a split one) frees everything
**                       of that micro-batch at its end.  Transients: a
**                       forward holds fwd_tmp_bytes, a backward or
**                       input-gradient half bwd_tmp_bytes, from its start
**                       (first piece) to its end (last piece).  Ops of one
**                       device are sequential, so this is exact.
**   in-flight           (part, micro-batch) pairs of a device whose forward
**                       started and whose backward has not finished.
**   host memory         (schedules with host_weights, Mobius) a fetch
**                       reserves its stage's weights (and gradient buffer,
**                       flag TS_EVF_GRADS) when its copy starts, an evict
**                       frees the weights, an offload frees the gradient
**                       buffer when its copy ends; the device's memory over
**                       time is activations plus these (res_* holds the
**                       weights and gradient buffers alone), and its peak is
**                       the peak of that sum (no static weights, gradients
**                       or optimizer states on the device).
*/
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainsim.h"
#include "ts_moe.h"
#include "ts_runtime.h"
#include "ts_internal.h"
#include "metrics_dp.h"
#include "ts_fold.h"

static int seq_cmp(const void *a, const void *b) {
  const ts_event_t *x = *(const ts_event_t *const *)a, *y = *(const ts_event_t *const *)b;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

typedef struct delta {
  double t, bytes;
  int order; /* ties: frees first, then in recording order */
} delta_t;

static int delta_cmp(const void *a, const void *b) {
  const delta_t *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  bool fx = x->bytes < 0, fy = y->bytes < 0;
  if (fx != fy) return fx ? -1 : 1;
  return (x->order > y->order) - (x->order < y->order);
}

/* Peak of the running sum of dl[0..n) once sorted; the steps go to
** (*t, *b)[0..*nt) when t is not NULL. */
static double replay(delta_t *dl, int n, int *nt, double **t, double **b) {
  assert(n >= 0 && (!t || (nt && b)));
  qsort(dl, (size_t)n, sizeof *dl, delta_cmp);
  double cur = 0, peak = 0;
  if (t) {
    *t = ts__xmalloc((size_t)(n + 1) * sizeof **t);
    *b = ts__xmalloc((size_t)(n + 1) * sizeof **b);
    (*t)[0] = 0;
    (*b)[0] = 0;
    *nt = 1;
  }
  for (int i = 0; i < n; i++) {
    cur += dl[i].bytes;
    if (cur > peak) peak = cur;
    if (!t) continue;
    if ((*t)[*nt - 1] != dl[i].t) (*nt)++;
    (*t)[*nt - 1] = dl[i].t;
    (*b)[*nt - 1] = cur;
  }
  return peak;
}

/* Host-memory schedules, from the device's nh host-memory events hev
** (fetch, evict, offload, room_wait) in time order: its copied bytes, room
** waits, weights and gradient buffers over time (dm->res_*), and its peak
** memory, the peak of activations (dm->mem_*) plus those.  A fetch reserves
** its weights (and gradient buffer, TS_EVF_GRADS) at its start, an evict
** frees the weights, an offload the gradient buffer at its end. */
static void host_memory(const ts_event_t *const *hev, int nh, const ts_layout_t *lay,
                        const ts_cost_t *cost, ts_device_metrics_t *dm) {
  /* Activation steps first, then the resident ones: ties keep that order. */
  delta_t *dl = ts__xmalloc((size_t)(dm->n_mem + nh + 1) * sizeof *dl), *rl = dl + dm->n_mem;
  int nr = 0;
  for (int i = 0; i < nh; i++) {
    const ts_event_t *e = hev[i];
    assert(e->vstage >= 0 && e->vstage < lay->n_vstages);
    const ts_part_cost_t *pc = &cost->part[lay->part[e->vstage]];
    double add, t = e->start;
    if (e->kind == TS_ROOM_WAIT) {
      dm->room_wait_s += e->end - e->start;
      continue;
    }
    if (e->kind == TS_FETCH) {
      add = pc->weights_bytes + ((e->flags & TS_EVF_GRADS) ? pc->gradients_bytes : 0);
      dm->host_bytes += e->bytes;
    } else if (e->kind == TS_OFFLOAD) {
      add = -pc->gradients_bytes, t = e->end;
      dm->host_bytes += e->bytes;
    } else {
      add = -pc->weights_bytes; /* TS_EVICT */
    }
    rl[nr] = (delta_t){t, add, dm->n_mem + nr};
    nr++;
  }
  delta_t *res = ts__xmalloc((size_t)(nr + 1) * sizeof *res); /* replay sorts in place */
  memcpy(res, rl, (size_t)nr * sizeof *res);
  dm->peak_resident_bytes = replay(res, nr, &dm->n_res, &dm->res_t, &dm->res_bytes);
  free(res);
  for (int i = 0; i < dm->n_mem; i++)
    dl[i] = (delta_t){dm->mem_t[i], dm->mem_bytes[i] - (i ? dm->mem_bytes[i - 1] : 0), i};
  dm->peak_memory_bytes = replay(dl, dm->n_mem + nr, NULL, NULL, NULL);
  free(dl);
}

static void mem_step(ts_device_metrics_t *dm, double t, double bytes) {
  if (dm->n_mem && dm->mem_t[dm->n_mem - 1] == t) {
    dm->mem_bytes[dm->n_mem - 1] = bytes;
    return;
  }
  int n = dm->n_mem;
  /* Room for 16, doubled at each power of two from there (the capacity
  ** follows from n_mem: only this function appends). */
  if (n == 0 || (n >= 16 && !(n & (n - 1)))) {
    size_t cap = n ? 2 * (size_t)n : 16;
    dm->mem_t = ts__xrealloc(dm->mem_t, cap * sizeof(double));
    dm->mem_bytes = ts__xrealloc(dm->mem_bytes, cap * sizeof(double));
  }
  dm->mem_t[dm->n_mem] = t;
  dm->mem_bytes[dm->n_mem] = bytes;
  dm->n_mem++;
}

/* Scratch of device_memory, one for all devices: per (vstage, micro-batch)
** cell the bytes held and whether it is in flight, all zero between two
** devices (each clears the cells it touched). */
typedef struct mem_scratch {
  double *held;
  unsigned char *inflight;
} mem_scratch_t;

/* Walks device d's compute events in program order. */
static void device_memory(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                          const ts_event_t **ev, int n, mem_scratch_t *sc, ts_device_metrics_t *dm) {
  /* At most 2^31 - 1, as ts_job_load bounds it (README "Limits"). */
  int M = (int)((long long)job->microbatches * job->iterations);
  double *held = sc->held;
  unsigned char *inflight = sc->inflight;
  bool full = job->recompute == TS_RECOMPUTE_FULL;
  double cur = 0, peak = 0;
  int nin = 0, peak_in = 0;
  mem_step(dm, 0, 0);
  for (int i = 0; i < n; i++) {
    const ts_event_t *e = ev[i];
    assert(e->vstage >= 0 && e->vstage < lay->n_vstages && e->mb >= 0 && e->mb < M);
    const ts_part_cost_t *pc = &cost->part[lay->part[e->vstage]];
    size_t c = (size_t)e->vstage * (size_t)M + (size_t)e->mb;
    double add = 0, tmp = 0;
    bool first_piece = !(e->flags & TS_EVF_CONT), last_piece = !(e->flags & TS_EVF_MORE);
    if (e->kind == TS_FORWARD) {
      tmp = pc->fwd_tmp_bytes;
      /* a later piece of a MoE forward: its stash was counted at the first */
      if (first_piece) add = full && !(e->flags & TS_EVF_KEEP) ? pc->act_input_bytes : pc->act_bytes;
      if (first_piece && !inflight[c]) {
        inflight[c] = 1;
        if (++nin > peak_in) peak_in = nin;
      }
    } else if (e->kind == TS_RECOMPUTE) {
      add = pc->rec_bytes;
    } else if (e->kind == TS_BACKWARD || e->kind == TS_BACKWARD_INPUT) {
      tmp = pc->bwd_tmp_bytes;
    }
    /* An op's transient is held from its first piece's start to its last
    ** piece's end; ops of one device do not overlap. */
    double in = add + (first_piece ? tmp : 0);
    if (in > 0) {
      held[c] += add;
      cur += in;
      if (cur > peak) peak = cur;
      mem_step(dm, e->start, cur);
    }
    bool frees = (e->kind == TS_BACKWARD || e->kind == TS_WEIGHT_GRAD) && last_piece;
    double out = (last_piece ? tmp : 0) + (frees ? held[c] : 0);
    if (frees) {
      held[c] = 0;
      if (inflight[c]) {
        inflight[c] = 0;
        nin--;
      }
      assert(nin >= 0); /* every in-flight micro-batch was counted at its forward */
    }
    if (out > 0 || frees) {
      cur -= out;
      mem_step(dm, e->end, cur);
    }
  }
  dm->peak_activation_bytes = peak;
  dm->peak_inflight = peak_in;
  for (int i = 0; i < n; i++) { /* clean for the next device */
    size_t c = (size_t)ev[i]->vstage * (size_t)M + (size_t)ev[i]->mb;
    held[c] = 0;
    inflight[c] = 0;
  }
}

/* Orders events by (vstage, mb, start, seq): a (vstage, mb)'s gathers by
** start, its compute events (same start only for a zero-length op) by
** program order. */
static int cell_cmp(const void *a, const void *b) {
  const ts_event_t *x = *(const ts_event_t *const *)a, *y = *(const ts_event_t *const *)b;
  if (x->vstage != y->vstage) return x->vstage < y->vstage ? -1 : 1;
  if (x->mb != y->mb) return x->mb < y->mb ? -1 : 1;
  if (ts_kind_is_compute(x->kind)) return (x->seq > y->seq) - (x->seq < y->seq);
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return (x > y) - (x < y);
}

static bool uses_weights(ts_kind_t k) {
  return k == TS_FORWARD || k == TS_RECOMPUTE || k == TS_BACKWARD || k == TS_BACKWARD_INPUT;
}

/* Zero 3: the gathered parameters of the device's ns stream events sev
** (file header), from its k compute events ev (program order).  Replaces
** dm's memory steps by activations plus gathered, sets gathered_peak_bytes
** and returns the peak of the sum; returns -1 (nothing changed) when the
** device has no gathers. */
static double gathered_memory(const ts_event_t *const *ev, int k, const ts_event_t *const *sev,
                              int ns, ts_device_metrics_t *dm) {
  const ts_event_t **g = ts__xmalloc((size_t)(ns + 1) * sizeof *g);
  const ts_event_t **c = ts__xmalloc((size_t)(k + 1) * sizeof *c);
  int ng = 0, nc = 0;
  for (int i = 0; i < ns; i++)
    if (sev[i]->kind == TS_COLLECTIVE && TS_EV_COLL_PURPOSE(sev[i]->coll) == TS_CP_GATHER)
      g[ng++] = sev[i];
  for (int i = 0; i < k; i++)
    if (uses_weights(ev[i]->kind)) c[nc++] = ev[i];
  if (!ng) {
    free(g);
    free(c);
    return -1;
  }
  qsort(g, (size_t)ng, sizeof *g, cell_cmp);
  qsort(c, (size_t)nc, sizeof *c, cell_cmp);
  /* Activation steps as deltas first, then the gathers: ties keep that order. */
  delta_t *dl = ts__xmalloc((size_t)(dm->n_mem + 2 * ng) * sizeof *dl), *gl = dl + dm->n_mem;
  for (int i = 0; i < dm->n_mem; i++)
    dl[i] = (delta_t){dm->mem_t[i], dm->mem_bytes[i] - (i ? dm->mem_bytes[i - 1] : 0), i};
  int j = 0; /* first compute event of the current cell */
  for (int a = 0; a < ng;) {
    int b = a;
    while (b < ng && g[b]->vstage == g[a]->vstage && g[b]->mb == g[a]->mb) b++;
    while (j < nc && (c[j]->vstage < g[a]->vstage ||
                      (c[j]->vstage == g[a]->vstage && c[j]->mb < g[a]->mb)))
      j++;
    int m = 0;
    while (j + m < nc && c[j + m]->vstage == g[a]->vstage && c[j + m]->mb == g[a]->mb) m++;
    for (int i = a; i < b; i++) {
      /* No op uses it (not a runtime's run): held while it runs. */
      double end = m ? c[j + (int)((long long)(i - a) * m / (b - a))]->end : g[i]->end;
      if (end < g[i]->start) end = g[i]->start;
      gl[2 * i] = (delta_t){g[i]->start, g[i]->bytes, dm->n_mem + 2 * i};
      gl[2 * i + 1] = (delta_t){end, -g[i]->bytes, dm->n_mem + 2 * i + 1};
    }
    a = b;
  }
  delta_t *gonly = ts__xmalloc((size_t)(2 * ng) * sizeof *gonly); /* replay sorts in place */
  memcpy(gonly, gl, (size_t)(2 * ng) * sizeof *gonly);
  dm->gathered_peak_bytes = replay(gonly, 2 * ng, NULL, NULL, NULL);
  free(gonly);
  free(dm->mem_t);
  free(dm->mem_bytes);
  double peak = replay(dl, dm->n_mem + 2 * ng, &dm->n_mem, &dm->mem_t, &dm->mem_bytes);
  free(dl);
  free(g);
  free(c);
  return peak;
}

/* MoE metrics (README "Mixture of experts"). */
static void moe_metrics(const ts_moe_cost_t *mc, const ts_run_t *run, double T, ts_metrics_t *m) {
  double a2a = 0;
  for (int i = 0; i < run->n_events; i++)
    if (run->events[i].flags & TS_EVF_A2A_CALL) a2a += run->events[i].end - run->events[i].start;
  m->alltoall_share = T > 0 && m->n_devices ? a2a / (m->n_devices * T) : 0;
  /* Layer spans: a device's calls come in pairs in program order (events
  ** are sorted by start, ties by the calls' seq; one device's calls never
  ** overlap).  A pair spans from its earlier start to its later end, so a
  ** zero-length call sorted second at the same instant (no tokens, ideal
  ** links) still counts the pair's whole span. */
  double span[2] = {0, 0};
  long nspan[2] = {0, 0};
  double *open_t = ts__xmalloc((size_t)(m->n_devices ? m->n_devices : 1) * 2 * sizeof *open_t);
  double *open_e = ts__xmalloc((size_t)(m->n_devices ? m->n_devices : 1) * 2 * sizeof *open_e);
  for (int d = 0; d < 2 * m->n_devices; d++) open_t[d] = -1;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    if (!(e->flags & TS_EVF_A2A_CALL) || e->device < 0 || e->device >= m->n_devices) continue;
    int b = (e->flags & TS_EVF_A2A_BWD) != 0;
    double *o = &open_t[2 * e->device + b], *oe = &open_e[2 * e->device + b];
    if (*o < 0) {
      *o = e->start;
      *oe = e->end;
    } else {
      span[b] += fmax(e->end, *oe) - fmin(e->start, *o);
      nspan[b]++;
      *o = -1;
    }
  }
  free(open_t);
  free(open_e);
  m->moe_forward_s = nspan[0] ? span[0] / nspan[0] : 0;
  m->moe_backward_s = nspan[1] ? span[1] / nspan[1] : 0;
  m->n_expert_load = mc->E;
  m->expert_load = ts__xcalloc((size_t)mc->E, sizeof *m->expert_load);
  long long *routed = ts__xcalloc((size_t)mc->E, sizeof *routed);
  size_t cells = (size_t)mc->n_layers * mc->M * mc->lanes;
  double aux = 0;
  for (size_t c = 0; c < cells; c++) {
    for (int e = 0; e < mc->E; e++) {
      m->expert_load[e] += mc->kept[c * mc->E + e];
      routed[e] += mc->wanted[c * mc->E + e];
    }
    m->tokens_dropped += mc->dropped[c];
    aux += mc->aux[c];
  }
  m->aux_loss = cells ? aux / cells : 0;
  long long mx = 0, sum = 0;
  for (int e = 0; e < mc->E; e++) {
    sum += routed[e];
    if (routed[e] > mx) mx = routed[e];
  }
  m->expert_imbalance = sum > 0 ? (double)mx * mc->E / (double)sum : 0;
  free(routed);
}

/* 1 for the point-to-point transfers of the pipeline. */
static bool is_p2p(ts_kind_t k) {
  return k == TS_SEND_ACT || k == TS_SEND_GRAD || k == TS_SEND_DISPATCH || k == TS_SEND_COMBINE;
}

/* Device d's events: busy time, p2p bytes, memory, model states and the
** data-parallel metrics (file header); ev, sev, hev are scratch arrays of
** run->n_events + 1 entries (hev NULL: no host-memory schedule); mine[0..
** n_mine-1] are the indices of d's events in run->events, in order. */
static void device_metrics(const ts_job_t *job, const ts_plan_t *plan, const ts_cost_t *cost,
                           const ts_run_t *run, int d, const int *mine, int n_mine, int versions,
                           const ts_event_t **ev, const ts_event_t **sev, const ts_event_t **hev,
                           mem_scratch_t *sc, ts_device_metrics_t *dm) {
  const ts_layout_t *lay = plan->layout;
  int k = 0, nh = 0, ns = 0;
  for (int i = 0; i < n_mine; i++) {
    const ts_event_t *e = &run->events[mine[i]];
    if (ts_kind_is_compute(e->kind)) {
      dm->busy_s += e->end - e->start;
      ev[k++] = e;
    } else if (is_p2p(e->kind)) { /* transfers between devices */
      dm->send_bytes += e->bytes;
    } else if (ts_kind_is_stream(e->kind)) {
      sev[ns++] = e;
    } else if (hev && ts_kind_is_host(e->kind)) { /* copies to and from host memory */
      hev[nh++] = e;
    }
  }
  qsort(ev, (size_t)k, sizeof *ev, seq_cmp);
  device_memory(job, lay, cost, ev, k, sc, dm);
  double peak_mem = dm->peak_activation_bytes;
  if (job->zero == 3) {
    double g = gathered_memory(ev, k, sev, ns, dm);
    if (g >= 0) peak_mem = g;
  }
  ts__metrics_streams(sev, ns, dm);
  if (hev) {
    host_memory(hev, nh, lay, cost, dm);
  } else {
    ts__metrics_states(job, plan, cost, d, versions, dm);
    dm->peak_memory_bytes = dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes + peak_mem;
  }
  dm->memory_capacity_bytes = run->devices[d].memory_bytes;
  dm->fits = dm->memory_capacity_bytes <= 0 || dm->peak_memory_bytes <= dm->memory_capacity_bytes;
}

ts_metrics_t *ts_metrics_compute(const ts_job_t *job, const ts_schedule_t *sched,
                                 const ts_plan_t *plan, const ts_cost_t *cost,
                                 const ts_run_t *run) {
  ts_metrics_t *m = ts__xcalloc(1, sizeof *m);
  int n = run->n_devices;
  m->n_devices = n;
  m->dev = ts__xcalloc((size_t)(n ? n : 1), sizeof *m->dev);
  double T = 0, P = 0;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    if (e->end > T) T = e->end;
    if (e->end > P && !ts__metrics_is_dp_work(e)) P = e->end;
  }
  m->iteration_time_s = T / job->iterations;
  m->pipeline_time_s = P / job->iterations;

  size_t cap = (size_t)run->n_events + 1;
  const ts_event_t **ev = ts__xmalloc(cap * sizeof *ev), **sev = ts__xmalloc(cap * sizeof *sev);
  bool host = sched && sched->host_weights;
  const ts_event_t **hev = host ? ts__xmalloc(cap * sizeof *hev) : NULL;
  int versions = sched && sched->weight_versions > 1 ? sched->weight_versions : 1;
  /* Each device's events in run order (a stable counting sort), so that
  ** the metrics cost O(events + devices), not O(events x devices). */
  int *first = ts__xcalloc((size_t)n + 2, sizeof *first);
  int *mine = ts__xmalloc(cap * sizeof *mine);
  for (int i = 0; i < run->n_events; i++)
    if (run->events[i].device >= 0 && run->events[i].device < n) first[run->events[i].device + 2]++;
  for (int d = 0; d < n; d++) first[d + 2] += first[d + 1];
  for (int i = 0; i < run->n_events; i++)
    if (run->events[i].device >= 0 && run->events[i].device < n) mine[first[run->events[i].device + 1]++] = i;
  size_t cells = (size_t)plan->layout->n_vstages * (size_t)((long long)job->microbatches * job->iterations);
  mem_scratch_t sc = {ts__xcalloc(cells ? cells : 1, sizeof(double)), ts__xcalloc(cells ? cells : 1, 1)};
  double idle_sum = 0, ideal = 0;
  for (int d = 0; d < n; d++) {
    ts_device_metrics_t *dm = &m->dev[d];
    if (run->fold && run->fold[d] != d) /* folded: its representative's (a lower device) */
      ts__metrics_fold_copy(dm, &m->dev[run->fold[d]]);
    else
      device_metrics(job, plan, cost, run, d, mine + first[d], first[d + 1] - first[d], versions, ev,
                     sev, hev, &sc, dm);
    dm->idle_s = P - dm->busy_s;
    dm->bubble_fraction = P > 0 ? dm->idle_s / P : 0;
    idle_sum += dm->idle_s;
    if (dm->busy_s > ideal) ideal = dm->busy_s;
    m->p2p_bytes += dm->send_bytes;
    for (int op = 0; op < TS_COLL_OPS; op++) m->coll_bytes[op] += dm->coll_bytes[op];
    m->dp_bytes += dm->dp_bytes;
    m->dp_comm_s = fmax(m->dp_comm_s, dm->dp_comm_s);
    m->exposed_comm_s = fmax(m->exposed_comm_s, dm->exposed_comm_s);
    m->tp_bytes += dm->tp_bytes;
    m->tp_comm_s = fmax(m->tp_comm_s, dm->tp_comm_s);
    m->tp_exposed_s = fmax(m->tp_exposed_s, dm->tp_exposed_s);
    m->optimizer_s = fmax(m->optimizer_s, dm->optimizer_s);
  }
  free(sc.held);
  free(sc.inflight);
  free(first);
  free(mine);
  free(ev);
  free(sev);
  free(hev);
  ts__metrics_time(run, T, m);
  m->dp_comm_share = T > 0 ? m->dp_comm_s / T : 0;
  m->bubble_fraction = (n > 0 && P > 0) ? idle_sum / (n * P) : 0;
  m->ideal_time_s = ideal / job->iterations;
  m->bubble_overhead = ideal > 0 ? (P - ideal) / ideal : 0;
  /* Every data-parallel replica and expert-parallel lane runs its own
  ** micro-batches (tensor-parallel ranks share theirs). */
  int shards = plan->degree[TS_DIM_DP] * plan->degree[TS_DIM_EP];
  double samples = (double)job->microbatches * job->iterations * job->micro_batch_size * shards;
  m->samples_per_s = T > 0 ? samples / T : 0;
  m->tokens_per_s = m->samples_per_s * job->seq_len;
  if (cost->has_flops && T > 0 && n > 0) {
    /* The cost model's FLOPs are one replica's (every expert lane of it). */
    double flops = cost->model_flops_per_iteration * plan->degree[TS_DIM_DP];
    m->flops_per_s_per_gpu = flops * job->iterations / (T * n);
    double peak = 0;
    for (int d = 0; d < n; d++) peak += run->devices[d].peak_flops;
    peak /= n;
    m->mfu = peak > 0 ? m->flops_per_s_per_gpu / peak : 0;
  }
  if (cost->moe) moe_metrics(cost->moe, run, T, m);
  return m;
}

void ts_metrics_free(ts_metrics_t *m) {
  if (!m) return;
  for (int d = 0; d < m->n_devices; d++) {
    free(m->dev[d].mem_t);
    free(m->dev[d].mem_bytes);
    free(m->dev[d].res_t);
    free(m->dev[d].res_bytes);
  }
  free(m->dev);
  free(m->expert_load);
  free(m);
}
