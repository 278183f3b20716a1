/*
** ts_metrics.c: every number of summary.json, derived from a timeline.
**
** Definitions (README "Metrics"):
**   makespan T          latest end of any event (the run starts at 0);
**                       iteration_time = T / iterations.
**   busy_s(d)           sum of d's compute-op durations (transfers are not
**                       busy time: they overlap compute).
**   bubble_fraction     sum over devices of (T - busy) / (devices x T).
**   bubble_overhead     (T - ideal) / ideal, ideal = max over devices of busy.
**   activation memory   a forward allocates its stash at its start (the
**                       part's input only under full recompute); a recompute
**                       allocates the full stash at its start; a backward (or
**                       the weight-gradient half of a split one) frees
**                       everything of that micro-batch at its end.  Ops of
**                       one device are sequential, so this is exact.
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
  dm->mem_t = ts__xrealloc(dm->mem_t, (size_t)(dm->n_mem + 1) * sizeof(double));
  dm->mem_bytes = ts__xrealloc(dm->mem_bytes, (size_t)(dm->n_mem + 1) * sizeof(double));
  dm->mem_t[dm->n_mem] = t;
  dm->mem_bytes[dm->n_mem] = bytes;
  dm->n_mem++;
}

/* Walks device d's compute events in program order. */
static void device_memory(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                          const ts_event_t **ev, int n, ts_device_metrics_t *dm) {
  /* At most 2^31 - 1, as ts_job_load bounds it (README "Limits"). */
  int M = (int)((long long)job->microbatches * job->iterations);
  double *held = ts__xcalloc((size_t)lay->n_vstages * (size_t)M, sizeof *held);
  unsigned char *inflight = ts__xcalloc((size_t)lay->n_vstages * (size_t)M, 1);
  bool full = job->recompute == TS_RECOMPUTE_FULL;
  double cur = 0, peak = 0;
  int nin = 0, peak_in = 0;
  mem_step(dm, 0, 0);
  for (int i = 0; i < n; i++) {
    const ts_event_t *e = ev[i];
    assert(e->vstage >= 0 && e->vstage < lay->n_vstages && e->mb >= 0 && e->mb < M);
    const ts_part_cost_t *pc = &cost->part[lay->part[e->vstage]];
    size_t c = (size_t)e->vstage * (size_t)M + (size_t)e->mb;
    double add = 0;
    if (e->kind == TS_FORWARD && (e->flags & TS_EVF_CONT)) {
      /* a later piece of a MoE forward: its stash was counted at the first */
    } else if (e->kind == TS_FORWARD) {
      add = full && !(e->flags & TS_EVF_KEEP) ? pc->act_input_bytes : pc->act_bytes;
      if (!inflight[c]) {
        inflight[c] = 1;
        if (++nin > peak_in) peak_in = nin;
      }
    } else if (e->kind == TS_RECOMPUTE) {
      add = pc->act_bytes;
    }
    if (add > 0) {
      held[c] += add;
      cur += add;
      if (cur > peak) peak = cur;
      mem_step(dm, e->start, cur);
    }
    bool frees = (e->kind == TS_BACKWARD || e->kind == TS_WEIGHT_GRAD) && !(e->flags & TS_EVF_MORE);
    if (frees) {
      cur -= held[c];
      held[c] = 0;
      if (inflight[c]) {
        inflight[c] = 0;
        nin--;
      }
      assert(nin >= 0); /* every in-flight micro-batch was counted at its forward */
      mem_step(dm, e->end, cur);
    }
  }
  dm->peak_activation_bytes = peak;
  dm->peak_inflight = peak_in;
  free(held);
  free(inflight);
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

ts_metrics_t *ts_metrics_compute(const ts_job_t *job, const ts_schedule_t *sched,
                                 const ts_plan_t *plan, const ts_cost_t *cost,
                                 const ts_run_t *run) {
  const ts_layout_t *lay = plan->layout;
  ts_metrics_t *m = ts__xcalloc(1, sizeof *m);
  int n = run->n_devices;
  m->n_devices = n;
  m->dev = ts__xcalloc((size_t)(n ? n : 1), sizeof *m->dev);
  double T = 0;
  for (int i = 0; i < run->n_events; i++)
    if (run->events[i].end > T) T = run->events[i].end;
  m->iteration_time_s = T / job->iterations;

  const ts_event_t **ev = ts__xmalloc((size_t)(run->n_events ? run->n_events : 1) * sizeof *ev);
  bool host = sched && sched->host_weights;
  const ts_event_t **hev = host ? ts__xmalloc((size_t)(run->n_events + 1) * sizeof *hev) : NULL;
  int versions = sched && sched->weight_versions > 1 ? sched->weight_versions : 1;
  double idle_sum = 0, ideal = 0;
  for (int d = 0; d < n; d++) {
    ts_device_metrics_t *dm = &m->dev[d];
    int k = 0, nh = 0;
    for (int i = 0; i < run->n_events; i++) {
      const ts_event_t *e = &run->events[i];
      if (e->device != d) continue;
      if (ts_kind_is_compute(e->kind)) {
        dm->busy_s += e->end - e->start;
        ev[k++] = e;
      } else if (!ts_kind_is_host(e->kind)) { /* transfers between devices */
        dm->send_bytes += e->bytes;
      } else if (hev) { /* copies to and from host memory */
        hev[nh++] = e;
      }
    }
    qsort(ev, (size_t)k, sizeof *ev, seq_cmp);
    device_memory(job, lay, cost, ev, k, dm);
    dm->idle_s = T - dm->busy_s;
    dm->bubble_fraction = T > 0 ? dm->idle_s / T : 0;
    idle_sum += dm->idle_s;
    if (dm->busy_s > ideal) ideal = dm->busy_s;
    if (host) {
      host_memory(hev, nh, lay, cost, dm);
    } else {
      for (int v = 0; v < lay->n_vstages; v++) {
        if (lay->dev[v] != d) continue;
        const ts_part_cost_t *pc = &cost->part[lay->part[v]];
        dm->weights_bytes += versions * pc->weights_bytes;
        dm->gradients_bytes += pc->gradients_bytes;
        dm->optimizer_bytes += pc->optimizer_bytes;
      }
      dm->peak_memory_bytes =
          dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes + dm->peak_activation_bytes;
    }
    dm->memory_capacity_bytes = run->devices[d].memory_bytes;
    dm->fits = dm->memory_capacity_bytes <= 0 || dm->peak_memory_bytes <= dm->memory_capacity_bytes;
    m->p2p_bytes += dm->send_bytes;
  }
  free(ev);
  free(hev);
  m->bubble_fraction = (n > 0 && T > 0) ? idle_sum / (n * T) : 0;
  m->ideal_time_s = ideal / job->iterations;
  m->bubble_overhead = ideal > 0 ? (T - ideal) / ideal : 0;
  /* Every data-parallel replica and expert-parallel lane runs its own
  ** micro-batches (tensor-parallel ranks share theirs). */
  int shards = plan->degree[TS_DIM_DP] * plan->degree[TS_DIM_EP];
  double samples = (double)job->microbatches * job->iterations * job->micro_batch_size * shards;
  m->samples_per_s = T > 0 ? samples / T : 0;
  m->tokens_per_s = m->samples_per_s * job->seq_len;
  if (cost->has_flops && T > 0 && n > 0) {
    m->flops_per_s_per_gpu = cost->model_flops_per_iteration * job->iterations / (T * n);
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
