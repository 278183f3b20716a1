/*
** rt_world.c: the world of one run (one runtime state per device, built
** from the job's plan and cost table) and the checks at its end: deadlock
** (devices that never returned, those waiting for device memory first),
** completeness (every micro-batch forward and backward on every stage it
** passes) and host-memory write-backs.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "rt_internal.h"
#include "ts_moe.h"
#include "ts_internal.h"

/* ---- world ------------------------------------------------------------- */

ts_world_t *ts__world_new(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                          const ts_cost_t *cost, const ts_exec_ops_t *ops, void *xd) {
  const ts_layout_t *lay = plan->layout;
  ts_world_t *w = ts__xcalloc(1, sizeof *w);
  w->job = job;
  w->sched = sched;
  w->plan = plan;
  w->lay = lay;
  w->cost = cost;
  w->ops = ops;
  w->xd = xd;
  w->n = lay->n_devices;
  w->rt = ts__xcalloc((size_t)w->n, sizeof *w->rt);
  /* Each device's vstages, in vstage order: one shared index (lidx) and
  ** one list per device (ctx.local), O(n_vstages + n_devices) in all. */
  w->lidx = ts__xmalloc((size_t)(lay->n_vstages ? lay->n_vstages : 1) * sizeof(int));
  int *count = ts__xcalloc((size_t)w->n, sizeof(int));
  for (int k = 0; k < lay->n_vstages; k++) w->lidx[k] = count[lay->dev[k]]++;
  int **lists = ts__xmalloc((size_t)(w->n ? w->n : 1) * sizeof *lists);
  for (int d = 0; d < w->n; d++) lists[d] = ts__xmalloc((size_t)(count[d] ? count[d] : 1) * sizeof(int));
  for (int k = 0; k < lay->n_vstages; k++) lists[lay->dev[k]][w->lidx[k]] = k;
  /* At most 2^31 - 1, as ts_job_load bounds it (README "Limits"). */
  int M = (int)((long long)job->microbatches * job->iterations);
  for (int d = 0; d < w->n; d++) {
    ts_rt_t *rt = &w->rt[d];
    rt->w = w;
    rt->M = M;
    int nl = count[d];
    int *local = lists[d];
    rt->ctx = (ts_ctx_t){.device = d,
                         .n_devices = w->n,
                         .stages = job->stages,
                         .microbatches = job->microbatches,
                         .chunks = job->chunks,
                         .iterations = job->iterations,
                         .recompute = job->recompute,
                         .layout = lay,
                         .plan = plan,
                         .n_local = nl,
                         .local = local,
                         .job = job};
    size_t cells = (size_t)(nl ? nl : 1) * (size_t)M;
    for (int k = 0; k < TS_COMPUTE_KINDS; k++) rt->done[k] = ts__xcalloc(cells, 1);
    for (int k = 0; k < 2; k++) {
      rt->arrived[k] = ts__xcalloc(cells, 1);
      rt->consumed[k] = ts__xcalloc(cells, 1);
      rt->sent[k] = ts__xcalloc(cells, 1);
    }
    rt->keep = ts__xcalloc((size_t)(nl ? nl : 1), 1);
    ts__rt_coll_init(rt);
    rt->moe_kind = -1;
    rt->polled = -1;
    if (ops->one_log) {
      if (!w->log) w->log = ts_run_new(0);
      rt->cev = rt->tev = w->log;
    } else {
      rt->cev = ts_run_new(0);
      rt->tev = ts_run_new(0);
    }
    if (sched->host_weights) {
      rt_host_t *h = ts__xcalloc(1, sizeof *h);
      size_t n1 = (size_t)(nl ? nl : 1);
      h->w = ts__xcalloc(n1, 1);
      h->g = ts__xcalloc(n1, 1);
      h->fgrads = ts__xcalloc(n1, 1);
      h->req_t = ts__xcalloc(n1, sizeof(double));
      for (int k = 0; k < 2; k++) h->q[k] = ts__xcalloc(n1, sizeof(int));
      h->held = ts__xcalloc(cells, sizeof(double));
      h->resv = ts__xcalloc(n1, sizeof(double));
      h->resv_used = ts__xcalloc(n1, sizeof(double));
      h->cap = ops->capacity ? ops->capacity(xd, d) : 0;
      rt->host = h;
    }
  }
  free(count);
  free(lists);
  for (int d = 0; d < w->n; d++) ts__rt_dp_init(&w->rt[d]);
  return w;
}

/* The home slot of dev in a table of cap (a power of two) slots:
** Fibonacci hashing keeps the product's high bits, so that devices a power
** of two apart do not share low bits and a slot. */
static unsigned peer_slot(int dev, int cap) {
  int bits = 0;
  while ((1 << bits) < cap) bits++;
  uint32_t h = (uint32_t)dev * 2654435761u;
  return bits ? (unsigned)(h >> (32 - bits)) : 0;
}

rt_peer_t *ts__rt_peer(ts_rt_t *rt, int dev) {
  /* Open addressing with linear probing; grows at half full. */
  if (2 * (rt->n_peers + 1) > rt->cap_peers) {
    int cap = rt->cap_peers ? 2 * rt->cap_peers : 8;
    rt_peer_t *t = ts__xmalloc((size_t)cap * sizeof *t);
    for (int i = 0; i < cap; i++) t[i].dev = -1;
    for (int i = 0; i < rt->cap_peers; i++) {
      if (rt->peers[i].dev < 0) continue;
      unsigned h = peer_slot(rt->peers[i].dev, cap);
      while (t[h].dev >= 0) h = (h + 1) & (unsigned)(cap - 1);
      t[h] = rt->peers[i];
    }
    free(rt->peers);
    rt->peers = t;
    rt->cap_peers = cap;
  }
  unsigned mask = (unsigned)(rt->cap_peers - 1), h = peer_slot(dev, rt->cap_peers);
  while (rt->peers[h].dev >= 0 && rt->peers[h].dev != dev) h = (h + 1) & mask;
  if (rt->peers[h].dev < 0) {
    rt->peers[h] = (rt_peer_t){.dev = dev};
    rt->n_peers++;
  }
  return &rt->peers[h];
}

ts_rt_t *ts__world_rt(ts_world_t *w, int device) { return &w->rt[device]; }

void ts__world_fold(ts_world_t *w, const int *fold) { w->fold = fold; }

/* A device folded onto another (ts__world_fold): it runs nothing. */
#define FOLDED(w, d) ((w)->fold && (w)->fold[d] != (d))

void ts__world_free(ts_world_t *w) {
  if (!w) return;
  for (int d = 0; d < w->n; d++) {
    ts_rt_t *rt = &w->rt[d];
    free((void *)rt->ctx.local);
    for (int k = 0; k < TS_COMPUTE_KINDS; k++) free(rt->done[k]);
    for (int k = 0; k < 2; k++) {
      free(rt->arrived[k]);
      free(rt->consumed[k]);
      free(rt->sent[k]);
    }
    free(rt->keep);
    ts__rt_coll_free(rt);
    free(rt->peers);
    if (!w->log) {
      ts_run_free(rt->cev);
      ts_run_free(rt->tev);
    }
    ts__rt_dp_free(rt);
    if (rt->host) {
      free(rt->host->w);
      free(rt->host->g);
      free(rt->host->fgrads);
      free(rt->host->req_t);
      free(rt->host->q[0]);
      free(rt->host->q[1]);
      free(rt->host->held);
      free(rt->host->resv);
      free(rt->host->resv_used);
      free(rt->host);
    }
  }
  ts_run_free(w->log);
  free(w->rt);
  free(w->lidx);
  free(w);
}

/* Runs the device's program between data parallelism's start and end
** (rt_dp.c: gradient sync, optimizer step), waits for its collectives,
** marks it finished and lets its communication stream return. */
void ts__rt_main(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  ts__rt_dp_begin(rt);
  w->sched->program(rt);
  ts__rt_dp_end(rt);
  ts__rt_coll_finish(rt);
  w->ops->lock(w->xd, rt->ctx.device);
  rt->finished = true;
  ts__rt_coll_wake(rt);
  w->ops->unlock(w->xd, rt->ctx.device);
}

/* ---- end of run -------------------------------------------------------- */

const char *ts__rt_wait_text(const rt_wait_t *w, char *buf, size_t cap) {
  switch (w->kind) {
  case RT_W_NONE: snprintf(buf, cap, "%s", ""); break;
  case RT_W_MSG: snprintf(buf, cap, "%s for stage %d micro-batch %d", w->s, w->a, w->b); break;
  case RT_W_ANY: snprintf(buf, cap, "any message"); break;
  case RT_W_COLL: snprintf(buf, cap, "its %s #%d", w->s, w->a); break;
  case RT_W_STEP: snprintf(buf, cap, "%s #%d: a step from device %d", w->s, w->a, w->b); break;
  case RT_W_MOE: snprintf(buf, cap, "the %s of stage %d micro-batch %d from device %d", w->s, w->a, w->b, w->c); break;
  case RT_W_TEXT: snprintf(buf, cap, "%s", w->text); break;
  }
  return buf;
}

int ts__world_finish(ts_world_t *w, ts_run_t *run, ts_err_t *err) {
  if (w->failed) return ts_err_set(err, w->err.code, "%s", w->err.msg);
  /* Deadlock: some device never returned from its program.  Devices that
  ** wait for device memory come first: they are where a deadlock starts. */
  char msg[900] = "";
  int stuck = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int d = 0; d < w->n; d++) {
      ts_rt_t *rt = &w->rt[d];
      bool room = rt->host && rt->host->blocked_need > 0;
      /* A stream that never returned is stuck too (its program waits for
      ** its collectives, so this is a second line of defence). */
      char comm_waiting[200], waiting[200];
      bool stream_stuck = ts__rt_coll_stuck(rt, comm_waiting, sizeof comm_waiting);
      ts__rt_wait_text(&rt->waiting, waiting, sizeof waiting);
      if (FOLDED(w, d) || (rt->finished && !stream_stuck) || room != (pass == 0)) continue;
      if (stuck++ < 4) {
        size_t l = strlen(msg);
        snprintf(msg + l, sizeof msg - l, "%sdevice %d%s%s waits for %s", stuck > 1 ? "; " : "", d,
                 rt->opname[0] ? " at " : "", rt->opname,
                 waiting[0] ? waiting : "an event that never comes");
        if (comm_waiting[0]) {
          l = strlen(msg);
          snprintf(msg + l, sizeof msg - l, " (its communication stream waits for %s)",
                   comm_waiting);
        }
        if (room) {
          l = strlen(msg);
          snprintf(msg + l, sizeof msg - l, " (needs %.0f bytes; %.0f of %.0f in use)",
                   rt->host->blocked_need, rt->host->used, rt->host->cap);
        }
      }
    }
  if (stuck)
    return ts_err_set(err, EX_SOFTWARE, "schedule '%s': deadlock: %s%s", w->job->schedule, msg,
                      stuck > 4 ? "; ..." : "");
  /* Completeness: every micro-batch went forward and backward everywhere. */
  const ts_layout_t *L = w->lay;
  for (int v = 0; v < L->n_vstages; v++) {
    if (FOLDED(w, L->dev[v])) continue;
    ts_rt_t *rt = &w->rt[L->dev[v]];
    int lo = L->mb_hi[v] >= 0 ? L->mb_lo[v] : 0, hi = L->mb_hi[v] >= 0 ? L->mb_hi[v] : rt->M;
    for (int mb = lo; mb < hi; mb++) {
      long c = (long)w->lidx[v] * rt->M + mb;
      const char *missing = NULL;
      if (!rt->done[TS_FORWARD][c])
        missing = "forward";
      else if (!rt->done[TS_BACKWARD][c] &&
               !(rt->done[TS_BACKWARD_INPUT][c] && rt->done[TS_WEIGHT_GRAD][c]))
        missing = rt->done[TS_BACKWARD_INPUT][c] ? "weight gradient" : "backward";
      if (missing)
        return ts_err_set(err, EX_SOFTWARE,
                          "schedule '%s': device %d finished without the %s of stage %d "
                          "micro-batch %d",
                          w->job->schedule, L->dev[v], missing, v, mb);
    }
  }
  for (int d = 0; d < w->n; d++) {
    ts_rt_t *rt = &w->rt[d];
    if (!rt->host) continue;
    if (!ts__rt_copies_done(rt, -1))
      return ts_err_set(err, EX_SOFTWARE,
                        "schedule '%s': device %d finished with copies to or from host memory "
                        "still queued (it should end with ts_rt_host_wait)",
                        w->job->schedule, d);
    for (int li = 0; li < rt->ctx.n_local; li++)
      if (rt->host->g[li] != G_WRITTEN)
        return ts_err_set(err, EX_SOFTWARE,
                          "schedule '%s': device %d finished without writing the gradients of "
                          "stage %d back to host memory",
                          w->job->schedule, d, rt->ctx.local[li]);
  }
  /* The events into the run: the one log moved whole (SimGrid, into an
  ** empty run), else each log appended in turn (ts_run_sort orders them). */
  ts_run_t *one[1] = {w->log};
  ts_run_t **logs = w->log ? one : ts__xmalloc((size_t)(2 * w->n + 1) * sizeof *logs);
  int n_logs = w->log ? 1 : 2 * w->n;
  for (int d = 0; d < w->n && !w->log; d++) logs[2 * d] = w->rt[d].cev, logs[2 * d + 1] = w->rt[d].tev;
  if (w->log && !run->n_events) { /* the two arrays swapped: the log frees the run's */
    ts_event_t *e = run->events;
    int cap = run->cap_events;
    run->events = w->log->events, run->n_events = w->log->n_events, run->cap_events = w->log->cap_events;
    w->log->events = e, w->log->n_events = 0, w->log->cap_events = cap;
  } else {
    long total = run->n_events;
    for (int k = 0; k < n_logs; k++) total += logs[k]->n_events;
    if (total > run->cap_events) {
      run->events = ts__xrealloc(run->events, (size_t)(total ? total : 1) * sizeof *run->events);
      run->cap_events = (int)total;
    }
    for (int k = 0; k < n_logs; k++) {
      if (logs[k]->n_events)
        memcpy(run->events + run->n_events, logs[k]->events, (size_t)logs[k]->n_events * sizeof *run->events);
      run->n_events += logs[k]->n_events;
    }
  }
  if (logs != one) free(logs);
  /* A folded run's executor relabels its transfers, then sorts
  ** (sim_fold.c ts__sim_fold_events): one sort, not two. */
  if (!w->fold) ts_run_sort(run);
  return 0;
}
