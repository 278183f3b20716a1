/*
** ts_runtime.c: the runtime front-end that schedule programs call.
**
** It is the same for both executors.  For every call it checks the program
** against the rules of a pipeline (an op runs once; a forward needs its
** input; a backward needs its forward, its output gradient and, under full
** recompute, its recompute), looks the op's cost up in the cost table,
** asks the executor to perform it, and records the event.  Messages arrive
** in a per-device inbox that the executor fills through ts__rt_deliver;
** receives block on it with the executor's lock/wait/notify primitives.
**
** Micro-batches are numbered 0 .. microbatches x iterations - 1 across the
** iterations of multi-iteration schedules; an event's iteration is mb / m.
**
** Threading: each device's ts_rt_t is used by that device's actor or thread
** only, except the inbox (arrived flags, transfer events, arrival count),
** which ts__rt_deliver writes under the executor's lock for that device.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_moe.h"
#include "ts_runtime.h"

enum { MSG_ACT = 0, MSG_GRAD = 1 };

struct ts_rt {
  ts_world_t *w;
  ts_ctx_t ctx;
  int *local_idx;        /* [n_vstages] index among local vstages, or -1 */
  int M;                 /* micro-batches over all iterations */
  unsigned char *done[TS_COMPUTE_KINDS]; /* [n_local * M] */
  unsigned char *arrived[2], *consumed[2], *sent[2];
  unsigned char *keep;   /* [n_vstages] forwards keep full activations */
  long *coll_in;         /* [n_devices] collective messages arrived from each */
  long *coll_used;       /* [n_devices] ... and consumed */
  long coll_seq;         /* collective steps sent by this device */
  long *a2a_in[2], *a2a_used[2]; /* [n_devices] MoE all-to-all messages
                         ** (dispatch, combine) arrived from each, consumed */
  int moe_kind, moe_v, moe_mb, moe_pieces, moe_a2a; /* the MoE op in progress:
                         ** pieces run and all-to-alls done; moe_kind -1: none */
  int a2a_calls;         /* all-to-all calls made: their events' seq, so that
                         ** calls starting at one instant sort in program order */
  long n_arrivals;
  long polls;            /* ts_rt_arrived calls since the last progress */
  int seq;
  bool finished;
  char waiting[160];     /* what a blocked device waits for */
  ts_run_t *cev;         /* compute events (own thread) */
  ts_run_t *tev;         /* transfer events (under the inbox lock) */
  /* host memory (sched->host_weights only; own thread or, in SimGrid, the
  ** copy actors of this device, which never run concurrently with it) */
  struct rt_host *host;
};

enum { W_HOST = 0, W_QUEUED, W_COPYING, W_RESIDENT };
enum { G_NONE = 0, G_RESERVED, G_OFFLOADING, G_WRITTEN };

typedef struct rt_host {
  unsigned char *w, *g;   /* [n_local] weight and gradient-buffer states */
  unsigned char *fgrads;  /* [n_local] the queued fetch reserves gradients */
  double *req_t;          /* [n_local] when the fetch was queued */
  int *q[2];              /* [n_local] FIFOs of local indices: 0 D2H, 1 H2D */
  int qhead[2], qtail[2];
  int busy[2];            /* a copy of that direction is running */
  double free_t[2];       /* when the engine last became free */
  double *held;           /* [n_local * M] activation bytes per (stage, mb) */
  double *resv, *resv_used; /* [n_local] activation reservations (ts_rt_reserve) */
  double used, cap;       /* ledger and capacity (0: unlimited) */
  double want;            /* bytes a blocked compute op waits to allocate */
  double blocked_need;    /* > 0 while blocked on room: what it needs */
  int pumping, again;
} rt_host_t;

struct ts_world {
  const ts_job_t *job;
  const ts_schedule_t *sched;
  const ts_layout_t *lay;
  const ts_cost_t *cost;
  const ts_exec_ops_t *ops;
  void *xd;
  int n;
  ts_rt_t *rt;
  atomic_int failed;      /* set once, by the first failing device */
  ts_err_t err;
};

#define POLL_LIMIT 10000000L

/* ---- world ------------------------------------------------------------- */

ts_world_t *ts__world_new(const ts_job_t *job, const ts_schedule_t *sched, const ts_layout_t *lay,
                          const ts_cost_t *cost, const ts_exec_ops_t *ops, void *xd) {
  ts_world_t *w = calloc(1, sizeof *w);
  w->job = job;
  w->sched = sched;
  w->lay = lay;
  w->cost = cost;
  w->ops = ops;
  w->xd = xd;
  w->n = lay->n_devices;
  w->rt = calloc((size_t)w->n, sizeof *w->rt);
  int M = job->microbatches * job->iterations;
  for (int d = 0; d < w->n; d++) {
    ts_rt_t *rt = &w->rt[d];
    rt->w = w;
    rt->M = M;
    rt->local_idx = malloc((size_t)lay->n_vstages * sizeof(int));
    int *local = malloc((size_t)lay->n_vstages * sizeof(int));
    int nl = 0;
    for (int k = 0; k < lay->n_vstages; k++) {
      rt->local_idx[k] = -1;
      if (lay->dev[k] == d) {
        rt->local_idx[k] = nl;
        local[nl++] = k;
      }
    }
    rt->ctx = (ts_ctx_t){.device = d,
                         .n_devices = w->n,
                         .stages = job->stages,
                         .microbatches = job->microbatches,
                         .chunks = job->chunks,
                         .iterations = job->iterations,
                         .recompute = job->recompute,
                         .layout = lay,
                         .n_local = nl,
                         .local = local};
    size_t cells = (size_t)(nl ? nl : 1) * (size_t)M;
    for (int k = 0; k < TS_COMPUTE_KINDS; k++) rt->done[k] = calloc(cells, 1);
    for (int k = 0; k < 2; k++) {
      rt->arrived[k] = calloc(cells, 1);
      rt->consumed[k] = calloc(cells, 1);
      rt->sent[k] = calloc(cells, 1);
    }
    rt->keep = calloc((size_t)lay->n_vstages, 1);
    rt->coll_in = calloc((size_t)w->n, sizeof(long));
    rt->coll_used = calloc((size_t)w->n, sizeof(long));
    for (int k = 0; k < 2; k++) {
      rt->a2a_in[k] = calloc((size_t)w->n, sizeof(long));
      rt->a2a_used[k] = calloc((size_t)w->n, sizeof(long));
    }
    rt->moe_kind = -1;
    rt->cev = ts_run_new(0);
    rt->tev = ts_run_new(0);
    if (sched->host_weights) {
      rt_host_t *h = calloc(1, sizeof *h);
      size_t n1 = (size_t)(nl ? nl : 1);
      h->w = calloc(n1, 1);
      h->g = calloc(n1, 1);
      h->fgrads = calloc(n1, 1);
      h->req_t = calloc(n1, sizeof(double));
      for (int k = 0; k < 2; k++) h->q[k] = calloc(n1, sizeof(int));
      h->held = calloc(cells, sizeof(double));
      h->resv = calloc(n1, sizeof(double));
      h->resv_used = calloc(n1, sizeof(double));
      h->cap = ops->capacity ? ops->capacity(xd, d) : 0;
      rt->host = h;
    }
  }
  return w;
}

ts_rt_t *ts__world_rt(ts_world_t *w, int device) { return &w->rt[device]; }

void ts__world_free(ts_world_t *w) {
  if (!w) return;
  for (int d = 0; d < w->n; d++) {
    ts_rt_t *rt = &w->rt[d];
    free(rt->local_idx);
    free((void *)rt->ctx.local);
    for (int k = 0; k < TS_COMPUTE_KINDS; k++) free(rt->done[k]);
    for (int k = 0; k < 2; k++) {
      free(rt->arrived[k]);
      free(rt->consumed[k]);
      free(rt->sent[k]);
    }
    free(rt->keep);
    free(rt->coll_in);
    free(rt->coll_used);
    for (int k = 0; k < 2; k++) {
      free(rt->a2a_in[k]);
      free(rt->a2a_used[k]);
    }
    ts_run_free(rt->cev);
    ts_run_free(rt->tev);
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
  free(w->rt);
  free(w);
}

/* Records the first error and stops every device. */
static void fail(ts_rt_t *rt, const char *fmt, const char *a, int v, int mb) {
  ts_world_t *w = rt->w;
  int expected = 0;
  /* Threads of the reference executor may fail at once: the first wins. */
  if (!atomic_compare_exchange_strong(&w->failed, &expected, 1)) return;
  char what[256];
  snprintf(what, sizeof what, fmt, a, v, mb);
  ts_err_set(&w->err, EX_SOFTWARE, "schedule '%s': device %d: %s", w->job->schedule,
             rt->ctx.device, what);
  if (w->ops->abort_all) w->ops->abort_all(w->xd);
}

int ts__rt_keeps(const ts_rt_t *rt, int v) {
  return v >= 0 && v < rt->w->lay->n_vstages && rt->keep[v];
}

/* ---- calls for schedule programs ---------------------------------------- */

const ts_ctx_t *ts_rt_ctx(ts_rt_t *rt) { return &rt->ctx; }

int ts_rt_failed(ts_rt_t *rt) { return rt->w->failed; }
double ts_rt_now(ts_rt_t *rt) { return rt->w->ops->now(rt->w->xd); }

/* Index of (v, mb) in this device's tables, or -1 (after failing). */
static long cell(ts_rt_t *rt, const char *what, int v, int mb) {
  if (v < 0 || v >= rt->w->lay->n_vstages || rt->local_idx[v] < 0) {
    fail(rt, "%s of virtual stage %d (micro-batch %d): that stage is not on this device", what, v,
         mb);
    return -1;
  }
  if (mb < 0 || mb >= rt->M) {
    fail(rt, "%s of stage %d: micro-batch %d out of range", what, v, mb);
    return -1;
  }
  const ts_layout_t *L = rt->w->lay;
  if (L->mb_hi[v] >= 0 && (mb < L->mb_lo[v] || mb >= L->mb_hi[v])) {
    fail(rt, "%s of stage %d: micro-batch %d does not pass through this stage", what, v, mb);
    return -1;
  }
  return (long)rt->local_idx[v] * rt->M + mb;
}

void ts_rt_keep_activations(ts_rt_t *rt, int v) {
  if (cell(rt, "ts_rt_keep_activations", v, 0) >= 0) rt->keep[v] = 1;
}

static bool done_at(ts_rt_t *rt, ts_kind_t k, int v, int mb) {
  if (rt->local_idx[v] < 0) return false;
  return rt->done[k][(long)rt->local_idx[v] * rt->M + mb];
}

static bool backward_done(ts_rt_t *rt, int v, int mb) {
  return done_at(rt, TS_BACKWARD, v, mb) || done_at(rt, TS_BACKWARD_INPUT, v, mb);
}

/* Checks that kind may run now on (v, mb); fails and returns false if not. */
static bool may_run(ts_rt_t *rt, ts_kind_t kind, int v, int mb, long c) {
  const ts_layout_t *L = rt->w->lay;
  const char *kn = ts_kind_name(kind);
  if (rt->done[kind][c]) {
    fail(rt, "%s of stage %d micro-batch %d runs twice", kn, v, mb);
    return false;
  }
  if (rt->host) {
    int li = rt->local_idx[v];
    if (rt->host->w[li] != W_RESIDENT) {
      fail(rt, "%s of stage %d micro-batch %d while its weights are not on the device", kn, v, mb);
      return false;
    }
    if (kind != TS_FORWARD && kind != TS_RECOMPUTE && rt->host->g[li] != G_RESERVED) {
      fail(rt, "%s of stage %d micro-batch %d without a gradient buffer (fetch with gradients)",
           kn, v, mb);
      return false;
    }
  }
  if (kind == TS_FORWARD) {
    int p = L->prev[v];
    if (p >= 0) {
      bool ok = L->dev[p] == rt->ctx.device ? done_at(rt, TS_FORWARD, p, mb)
                                            : rt->consumed[MSG_ACT][c];
      if (!ok) {
        fail(rt, "%s of stage %d micro-batch %d before its input activation was received", kn, v,
             mb);
        return false;
      }
    }
    return true;
  }
  if (!rt->done[TS_FORWARD][c]) {
    fail(rt, "%s of stage %d micro-batch %d before its forward", kn, v, mb);
    return false;
  }
  if (kind == TS_RECOMPUTE) {
    if (rt->ctx.recompute != TS_RECOMPUTE_FULL || rt->keep[v]) {
      fail(rt, "%s of stage %d micro-batch %d, whose forward kept its activations", kn, v, mb);
      return false;
    }
    if (backward_done(rt, v, mb)) {
      fail(rt, "%s of stage %d micro-batch %d after its backward", kn, v, mb);
      return false;
    }
    return true;
  }
  if (kind == TS_WEIGHT_GRAD) {
    if (!rt->done[TS_BACKWARD_INPUT][c]) {
      fail(rt, "%s of stage %d micro-batch %d before its input-gradient backward", kn, v, mb);
      return false;
    }
    return true;
  }
  /* TS_BACKWARD or TS_BACKWARD_INPUT */
  if (backward_done(rt, v, mb)) {
    fail(rt, "%s of stage %d micro-batch %d: its backward already ran", kn, v, mb);
    return false;
  }
  int n = L->next[v];
  if (n >= 0) {
    bool ok = L->dev[n] == rt->ctx.device ? backward_done(rt, n, mb) : rt->consumed[MSG_GRAD][c];
    if (!ok) {
      fail(rt, "%s of stage %d micro-batch %d before its output gradient was received", kn, v, mb);
      return false;
    }
  }
  if (rt->ctx.recompute == TS_RECOMPUTE_FULL && !rt->keep[v] && !rt->done[TS_RECOMPUTE][c]) {
    fail(rt, "%s of stage %d micro-batch %d without its recompute (recompute \"full\")", kn, v, mb);
    return false;
  }
  return true;
}


/* Records a compute op of this device, next in program order. */
static void push_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double t0,
                         double t1) {
  ts_event_t e = {.device = rt->ctx.device,
                  .peer = -1,
                  .vstage = v,
                  .mb = mb,
                  .kind = kind,
                  .seq = rt->seq++,
                  .iteration = mb / rt->ctx.microbatches,
                  .flags = flags,
                  .start = t0,
                  .end = t1,
                  .bytes = 0};
  ts_run_push(rt->cev, &e);
}

/* ---- host memory ------------------------------------------------------- */

static void host_pump(ts_rt_t *rt);

static void host_block(ts_rt_t *rt, int li, bool (*cond)(ts_rt_t *, int), const char *what,
                       double need);
static void host_event(ts_rt_t *rt, ts_kind_t kind, int v, int flags, double t0, double t1,
                       double bytes);

static int host_local(ts_rt_t *rt, const char *what, int v);

static bool op_fits(ts_rt_t *rt, int li) {
  (void)li;
  rt_host_t *h = rt->host;
  return h->cap <= 0 || h->used + h->want <= h->cap * (1 + 1e-12);
}

/* Waits (a room_wait event labelled with stage v) until bytes more fit in
** the device's ledger; what names the wait in a deadlock report.  Returns
** non-zero when the run failed meanwhile. */
static int room_for(ts_rt_t *rt, int v, double bytes, const char *what) {
  ts_world_t *w = rt->w;
  rt->host->want = bytes;
  if (op_fits(rt, -1)) return 0;
  double t0 = w->ops->now(w->xd);
  host_block(rt, -1, op_fits, what, bytes);
  if (w->failed) return 1;
  host_event(rt, TS_ROOM_WAIT, v, 0, t0, w->ops->now(w->xd), bytes);
  return 0;
}

/* Activation bytes one op of kind on v allocates (README "Memory"): a
** forward its stash (only its input under full recompute, unless the
** program keeps v's activations), a recompute the full stash. */
static double alloc_bytes(ts_rt_t *rt, ts_kind_t kind, int v) {
  const ts_part_cost_t *pc = &rt->w->cost->part[rt->w->lay->part[v]];
  bool full = rt->ctx.recompute == TS_RECOMPUTE_FULL;
  if (kind == TS_FORWARD) return full && !rt->keep[v] ? pc->act_input_bytes : pc->act_bytes;
  return kind == TS_RECOMPUTE ? pc->act_bytes : 0;
}

/* Before a forward or recompute: allocates its activation bytes in the
** device ledger, at the op's start as ts_metrics.c counts them, waiting
** (a room_wait event) until they fit.  A wait that nothing can end (no
** copy in flight or queued would free memory) is reported as a deadlock. */
static void host_alloc(ts_rt_t *rt, ts_kind_t kind, int v, int mb, long c) {
  rt_host_t *h = rt->host;
  double a = alloc_bytes(rt, kind, v);
  if (!(a > 0)) return;
  int li = rt->local_idx[v];
  if (h->resv_used[li] + a <= h->resv[li] * (1 + 1e-12)) { /* reserved already */
    h->resv_used[li] += a;
  } else {
    char what[96];
    snprintf(what, sizeof what, "room for the activations of the %s of stage %d micro-batch %d",
             ts_kind_name(kind), v, mb);
    if (room_for(rt, v, a, what)) return;
    h->used += a;
  }
  h->held[c] += a;
}

/* After a backward (or a split one's weight-gradient half): frees the
** micro-batch's activations, which may let a queued fetch start. */
static void host_free(ts_rt_t *rt, ts_kind_t kind, int v, long c) {
  rt_host_t *h = rt->host;
  if (kind != TS_BACKWARD && kind != TS_WEIGHT_GRAD) return;
  /* Bytes of a reserved stage go back to its reservation first. */
  int li = rt->local_idx[v];
  double back = h->held[c] < h->resv_used[li] ? h->held[c] : h->resv_used[li];
  h->resv_used[li] -= back;
  h->used -= h->held[c] - back;
  h->held[c] = 0;
  host_pump(rt);
}

/* Ends vstage's reservation: its unused part is freed, its used part stays
** with the stashes that hold it. */
static void host_unreserve(ts_rt_t *rt, int li) {
  rt_host_t *h = rt->host;
  h->used -= h->resv[li] - h->resv_used[li];
  h->resv[li] = h->resv_used[li] = 0;
}

void ts_rt_reserve(ts_rt_t *rt, int v, ts_kind_t kind, int count) {
  int li = host_local(rt, "reserve", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  if ((kind != TS_FORWARD && kind != TS_RECOMPUTE) || count < 0) {
    fail(rt, "reserve for %s of stage %d (%d ops): only forwards and recomputes allocate", ts_kind_name(kind),
         v, count);
    return;
  }
  /* Without full recompute no recompute runs: nothing to reserve. */
  if (kind == TS_RECOMPUTE && rt->ctx.recompute != TS_RECOMPUTE_FULL) return;
  double r = alloc_bytes(rt, kind, v) * count;
  if (!(r > 0)) return;
  char what[96];
  snprintf(what, sizeof what, "room to reserve the activations of %d %s ops of stage %d", count,
           ts_kind_name(kind), v);
  if (room_for(rt, v, r, what)) return;
  h->resv[li] += r;
  h->used += r;
}

/* Bytes a fetch of local stage li reserves. */
static double fetch_bytes(ts_rt_t *rt, int li) {
  const ts_part_cost_t *pc = &rt->w->cost->part[rt->w->lay->part[rt->ctx.local[li]]];
  return pc->weights_bytes + (rt->host->fgrads[li] ? pc->gradients_bytes : 0);
}

static void host_event(ts_rt_t *rt, ts_kind_t kind, int v, int flags, double t0, double t1,
                       double bytes) {
  ts_world_t *w = rt->w;
  ts_event_t e = {.device = rt->ctx.device, .peer = -1, .vstage = v, .mb = 0, .kind = kind,
                  .seq = 0, .iteration = 0, .flags = flags, .start = t0, .end = t1,
                  .bytes = bytes};
  w->ops->lock(w->xd, rt->ctx.device);
  ts_run_push(rt->tev, &e);
  w->ops->unlock(w->xd, rt->ctx.device);
}

/* Starts the copies at the heads of the queues when their engine is free
** and (fetches) their bytes fit.  Not re-entrant: a completion that arrives
** while pumping (the reference executor copies synchronously) asks for
** another round instead. */
static void host_pump(ts_rt_t *rt) {
  rt_host_t *h = rt->host;
  ts_world_t *w = rt->w;
  if (h->pumping) {
    h->again = 1;
    return;
  }
  h->pumping = 1;
  do {
    h->again = 0;
    for (int dir = 0; dir < 2 && !w->failed; dir++) {
      if (h->busy[dir] || h->qhead[dir] == h->qtail[dir]) continue;
      int li = h->q[dir][h->qhead[dir] % rt->ctx.n_local], v = rt->ctx.local[li];
      const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
      double bytes = dir ? pc->weights_bytes : pc->gradients_bytes;
      double t = w->ops->now(w->xd);
      if (dir) {
        double need = fetch_bytes(rt, li);
        if (h->cap > 0 && h->used + need > h->cap * (1 + 1e-12)) continue; /* no room yet */
        double ready = h->req_t[li] > h->free_t[dir] ? h->req_t[li] : h->free_t[dir];
        if (t > ready) host_event(rt, TS_ROOM_WAIT, v, 0, ready, t, need);
        h->used += need;
        h->w[li] = W_COPYING;
        if (h->fgrads[li]) h->g[li] = G_RESERVED;
      } else {
        h->g[li] = G_OFFLOADING;
      }
      h->qhead[dir]++;
      h->busy[dir] = 1;
      w->ops->host_copy(w->xd, rt->ctx.device, dir, v, bytes);
    }
  } while (h->again);
  h->pumping = 0;
}

void ts__rt_host_done(ts_rt_t *rt, int h2d, int v, double t0, double t1) {
  rt_host_t *h = rt->host;
  ts_world_t *w = rt->w;
  int li = rt->local_idx[v];
  const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
  if (h2d) {
    h->w[li] = W_RESIDENT;
    host_event(rt, TS_FETCH, v, h->fgrads[li] ? TS_EVF_GRADS : 0, t0, t1, pc->weights_bytes);
  } else {
    h->g[li] = G_WRITTEN;
    h->used -= pc->gradients_bytes;
    host_event(rt, TS_OFFLOAD, v, 0, t0, t1, pc->gradients_bytes);
  }
  h->busy[h2d] = 0;
  h->free_t[h2d] = t1;
  host_pump(rt);
  w->ops->lock(w->xd, rt->ctx.device);
  rt->n_arrivals++;
  w->ops->notify(w->xd, rt->ctx.device);
  w->ops->unlock(w->xd, rt->ctx.device);
}

/* The local index of v for a host call, or -1 after failing. */
static int host_local(ts_rt_t *rt, const char *what, int v) {
  if (rt->w->failed) return -1;
  if (!rt->host) {
    fail(rt, "%s of stage %d (micro-batch %d): this schedule does not keep weights in host memory",
         what, v, 0);
    return -1;
  }
  if (cell(rt, what, v, rt->w->lay->mb_hi[v] >= 0 ? rt->w->lay->mb_lo[v] : 0) < 0) return -1;
  return rt->local_idx[v];
}

void ts_rt_fetch(ts_rt_t *rt, int v, int with_grads) {
  int li = host_local(rt, "fetch", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  if (h->w[li] != W_HOST) {
    fail(rt, "%s of stage %d (micro-batch %d): its weights are already fetched or on their way",
         "fetch", v, 0);
    return;
  }
  if (with_grads && h->g[li] != G_NONE) {
    fail(rt, "%s of stage %d (micro-batch %d) with gradients: its gradient buffer exists already",
         "fetch", v, 0);
    return;
  }
  h->w[li] = W_QUEUED;
  h->fgrads[li] = with_grads != 0;
  h->req_t[li] = rt->w->ops->now(rt->w->xd);
  h->q[1][h->qtail[1]++ % rt->ctx.n_local] = li; /* a stage is queued once at most */
  host_pump(rt);
}

/* Blocks until cond(rt, li) holds; what names it for deadlock reports and
** need (> 0) is the room it waits for, reported with the ledger as it
** stands when the run ends. */
static void host_block(ts_rt_t *rt, int li, bool (*cond)(ts_rt_t *, int), const char *what,
                       double need) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  if (!cond(rt, li)) {
    snprintf(rt->waiting, sizeof rt->waiting, "%s", what);
    rt->host->blocked_need = need;
    while (!cond(rt, li) && !w->failed) w->ops->wait(w->xd, d);
    rt->host->blocked_need = 0;
    rt->waiting[0] = 0;
  }
  w->ops->unlock(w->xd, d);
}

static bool is_resident(ts_rt_t *rt, int li) { return rt->host->w[li] == W_RESIDENT; }
static bool copies_done(ts_rt_t *rt, int li) {
  (void)li;
  rt_host_t *h = rt->host;
  return !h->busy[0] && !h->busy[1] && h->qhead[0] == h->qtail[0] && h->qhead[1] == h->qtail[1];
}

void ts_rt_fetch_wait(ts_rt_t *rt, int v) {
  int li = host_local(rt, "fetch_wait", v);
  if (li < 0) return;
  if (rt->host->w[li] == W_HOST) {
    fail(rt, "%s of stage %d (micro-batch %d): no fetch was queued", "fetch_wait", v, 0);
    return;
  }
  char what[64];
  snprintf(what, sizeof what, "the weights of stage %d", v);
  host_block(rt, li, is_resident, what,
             rt->host->w[li] == W_QUEUED && rt->host->cap > 0 ? fetch_bytes(rt, li) : 0);
  rt->polls = 0;
}

void ts_rt_evict(ts_rt_t *rt, int v) {
  int li = host_local(rt, "evict", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  ts_world_t *w = rt->w;
  if (h->w[li] != W_RESIDENT) {
    fail(rt, "%s of stage %d (micro-batch %d): its weights are not on the device", "evict", v, 0);
    return;
  }
  const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
  h->w[li] = W_HOST;
  h->used -= pc->weights_bytes;
  host_unreserve(rt, li);
  double t = w->ops->now(w->xd);
  if (w->ops->host_evict) w->ops->host_evict(w->xd, rt->ctx.device, v);
  host_event(rt, TS_EVICT, v, 0, t, t, pc->weights_bytes);
  host_pump(rt);
}

void ts_rt_offload(ts_rt_t *rt, int v) {
  int li = host_local(rt, "offload", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  if (h->g[li] != G_RESERVED) {
    fail(rt, "%s of stage %d (micro-batch %d): it has no gradient buffer on the device", "offload",
         v, 0);
    return;
  }
  h->g[li] = G_OFFLOADING;
  h->q[0][h->qtail[0]++ % rt->ctx.n_local] = li;
  host_pump(rt);
}

void ts_rt_host_wait(ts_rt_t *rt) {
  if (rt->w->failed || !rt->host) return;
  host_block(rt, -1, copies_done, "its copies to and from host memory", 0);
}

void ts_rt_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  if (!ts_kind_is_compute(kind)) {
    fail(rt, "ts_rt_compute called with the transfer kind %s (stage %d, micro-batch %d)",
         ts_kind_name(kind), v, mb);
    return;
  }
  long c = cell(rt, ts_kind_name(kind), v, mb);
  if (c < 0 || !may_run(rt, kind, v, mb, c)) return;
  const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
  if (rt->host) {
    host_alloc(rt, kind, v, mb, c);
    if (w->failed) return;
  }
  double t0 = w->ops->now(w->xd);
  w->ops->compute(w->xd, rt->ctx.device, kind, v, mb, pc->flops[kind], pc->seconds[kind]);
  double t1 = w->ops->now(w->xd);
  rt->done[kind][c] = 1;
  rt->polls = 0;
  if (rt->host) host_free(rt, kind, v, c);
  push_compute(rt, kind, v, mb,
               (kind == TS_FORWARD && rt->keep[v] && rt->ctx.recompute == TS_RECOMPUTE_FULL)
                   ? TS_EVF_KEEP
                   : 0,
               t0, t1);
}

void ts_rt_send(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  const ts_layout_t *L = w->lay;
  if (kind != TS_SEND_ACT && kind != TS_SEND_GRAD) {
    fail(rt, "ts_rt_send called with the compute kind %s (stage %d, micro-batch %d)",
         ts_kind_name(kind), v, mb);
    return;
  }
  long c = cell(rt, ts_kind_name(kind), v, mb);
  if (c < 0) return;
  int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
  int to = kind == TS_SEND_ACT ? L->next[v] : L->prev[v];
  if (to < 0) {
    fail(rt, "%s from stage %d micro-batch %d: no stage receives it", ts_kind_name(kind), v, mb);
    return;
  }
  if (rt->sent[m][c]) {
    fail(rt, "%s from stage %d micro-batch %d sent twice", ts_kind_name(kind), v, mb);
    return;
  }
  bool ready = kind == TS_SEND_ACT ? rt->done[TS_FORWARD][c] : backward_done(rt, v, mb);
  if (!ready) {
    fail(rt, "%s from stage %d micro-batch %d before the op that produces it", ts_kind_name(kind),
         v, mb);
    return;
  }
  rt->sent[m][c] = 1;
  /* A gradient has the size of the activation that entered v. */
  double bytes = w->cost->part[L->part[kind == TS_SEND_ACT ? v : to]].msg_bytes;
  int peer = L->dev[to];
  if (peer == rt->ctx.device) {
    double t = w->ops->now(w->xd);
    w->ops->lock(w->xd, peer);
    ts__rt_deliver(&w->rt[peer], peer, kind, to, mb, 0, t, t);
    w->ops->unlock(w->xd, peer);
    return;
  }
  w->ops->send(w->xd, rt->ctx.device, peer, kind, to, mb, bytes);
}

void ts__rt_deliver(ts_rt_t *rt, int from, ts_kind_t kind, int to, int mb, double bytes,
                    double t_start, double t_end) {
  ts_world_t *w = rt->w;
  if (kind == TS_SEND_COLL) {
    rt->coll_in[from]++;
  } else if (kind == TS_SEND_DISPATCH || kind == TS_SEND_COMBINE) {
    rt->a2a_in[kind == TS_SEND_COMBINE][from]++;
  } else {
    int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
    rt->arrived[m][(long)rt->local_idx[to] * rt->M + mb] = 1;
  }
  rt->n_arrivals++;
  if (from != rt->ctx.device) {
    int sv = kind == TS_SEND_ACT    ? w->lay->prev[to]
             : kind == TS_SEND_GRAD ? w->lay->next[to]
                                    : to; /* a collective's label stage */
    ts_event_t e = {.device = from,
                    .peer = rt->ctx.device,
                    .vstage = sv,
                    .mb = mb,
                    .kind = kind,
                    .seq = 0,
                    .iteration = kind == TS_SEND_COLL ? 0 : mb / rt->ctx.microbatches,
                    .start = t_start,
                    .end = t_end,
                    .bytes = bytes};
    ts_run_push(rt->tev, &e);
  }
  w->ops->notify(w->xd, rt->ctx.device);
}

/* Checks a receive's arguments; returns the cell or -1. */
static long recv_cell(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  const ts_layout_t *L = rt->w->lay;
  if (kind != TS_SEND_ACT && kind != TS_SEND_GRAD) {
    fail(rt, "receive of the compute kind %s (stage %d, micro-batch %d)", ts_kind_name(kind), v, mb);
    return -1;
  }
  long c = cell(rt, "receive", v, mb);
  if (c < 0) return -1;
  int from = kind == TS_SEND_ACT ? L->prev[v] : L->next[v];
  if (from < 0) {
    fail(rt, "receive of %s for stage %d micro-batch %d: no stage sends it", ts_kind_name(kind), v,
         mb);
    return -1;
  }
  return c;
}

int ts_rt_arrived(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return 0;
  long c = recv_cell(rt, kind, v, mb);
  if (c < 0) return 0;
  if (++rt->polls > POLL_LIMIT) {
    fail(rt, "%s polled %d million times (last at micro-batch %d) without waiting: a busy loop",
         "ts_rt_arrived", (int)(POLL_LIMIT / 1000000), mb);
    return 0;
  }
  int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
  w->ops->lock(w->xd, rt->ctx.device);
  int a = rt->arrived[m][c];
  w->ops->unlock(w->xd, rt->ctx.device);
  if (a) rt->consumed[m][c] = 1;
  return a;
}

void ts_rt_recv(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  long c = recv_cell(rt, kind, v, mb);
  if (c < 0) return;
  int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  if (!rt->arrived[m][c]) {
    snprintf(rt->waiting, sizeof rt->waiting, "%s for stage %d micro-batch %d",
             kind == TS_SEND_ACT ? "the activation" : "the gradient", v, mb);
    while (!rt->arrived[m][c] && !w->failed) w->ops->wait(w->xd, d);
    rt->waiting[0] = 0;
  }
  w->ops->unlock(w->xd, d);
  rt->consumed[m][c] = 1;
  rt->polls = 0;
}

void ts_rt_wait_any(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  long seen = rt->n_arrivals;
  snprintf(rt->waiting, sizeof rt->waiting, "any message");
  while (rt->n_arrivals == seen && !w->failed) w->ops->wait(w->xd, d);
  rt->waiting[0] = 0;
  w->ops->unlock(w->xd, d);
  rt->polls = 0;
}

double ts_rt_gradient_bytes(ts_rt_t *rt, int v) {
  if (cell(rt, "ts_rt_gradient_bytes", v, rt->w->lay->mb_hi[v] >= 0 ? rt->w->lay->mb_lo[v] : 0) < 0)
    return 0;
  const ts_moe_cost_t *mc = rt->w->cost->moe;
  int part = rt->w->lay->part[v];
  /* Experts are not replicated: only the rest is all-reduced. */
  return rt->w->cost->part[part].gradients_bytes -
         (mc ? mc->expert_params[part] * rt->w->job->bytes_per_element : 0);
}

void ts_rt_settle(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  if (!w->failed && w->ops->settle) w->ops->settle(w->xd, rt->ctx.device);
}

void ts_rt_allreduce(ts_rt_t *rt, int vstage, int n, const int *devs, double bytes) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device, me = -1;
  if (w->failed || n <= 1) return;
  if (vstage < 0 || vstage >= w->lay->n_vstages || rt->local_idx[vstage] < 0) {
    fail(rt, "%s labelled with stage %d, which is not on this device (group size %d)", "allreduce",
         vstage, n);
    return;
  }
  for (int i = 0; i < n; i++) {
    if (devs[i] < 0 || devs[i] >= w->n) {
      fail(rt, "%s over device %d: no such device (stage %d)", "allreduce", devs[i], vstage);
      return;
    }
    if (devs[i] == d) me = i;
  }
  if (me < 0) {
    fail(rt, "%s: this device is not in the group (stage %d, group size %d)", "allreduce", vstage, n);
    return;
  }
  int next = devs[(me + 1) % n], prev = devs[(me + n - 1) % n];
  /* Reduce-scatter then all-gather: 2 (n - 1) steps of bytes / n. */
  for (int step = 0; step < 2 * (n - 1) && !w->failed; step++) {
    w->ops->send(w->xd, d, next, TS_SEND_COLL, vstage, (int)rt->coll_seq++, bytes / n);
    w->ops->lock(w->xd, d);
    if (rt->coll_in[prev] <= rt->coll_used[prev]) {
      snprintf(rt->waiting, sizeof rt->waiting, "all-reduce step %d from device %d", step, prev);
      while (rt->coll_in[prev] <= rt->coll_used[prev] && !w->failed) w->ops->wait(w->xd, d);
      rt->waiting[0] = 0;
    }
    rt->coll_used[prev]++;
    w->ops->unlock(w->xd, d);
  }
}

/* ---- mixture of experts ------------------------------------------------- */

int ts_rt_moe_layers(ts_rt_t *rt, int v) {
  const ts_moe_cost_t *mc = rt->w->cost->moe;
  if (!mc || v < 0 || v >= rt->w->lay->n_vstages) return 0;
  return mc->part_count[rt->w->lay->part[v]];
}

/* Checks that (kind, v, mb) is the MoE op in progress, or starts it. */
static bool moe_op(ts_rt_t *rt, const char *what, ts_kind_t kind, int v, int mb, long *c) {
  if (kind != TS_FORWARD && kind != TS_BACKWARD) {
    fail(rt, "%s with a kind other than forward or backward (stage %d, micro-batch %d)", what, v,
         mb);
    return false;
  }
  if ((*c = cell(rt, what, v, mb)) < 0) return false;
  if (rt->moe_kind >= 0 && (rt->moe_kind != (int)kind || rt->moe_v != v || rt->moe_mb != mb)) {
    fail(rt, "%s of stage %d micro-batch %d inside another MoE op", what, v, mb);
    return false;
  }
  return true;
}

void ts_rt_moe_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int piece) {
  ts_world_t *w = rt->w;
  long c;
  if (w->failed || !moe_op(rt, "MoE compute", kind, v, mb, &c)) return;
  int n = ts_rt_moe_layers(rt, v), last = 2 * n;
  int want = kind == TS_FORWARD ? rt->moe_pieces : last - rt->moe_pieces;
  if (rt->moe_kind < 0) {
    if (!may_run(rt, kind, v, mb, c)) return;
    want = kind == TS_FORWARD ? 0 : last;
  }
  if (piece != want || (rt->moe_kind >= 0 && rt->moe_a2a != rt->moe_pieces)) {
    fail(rt, "MoE %s of stage %d micro-batch %d: a piece out of order", ts_kind_name(kind), v, mb);
    (void)piece;
    return;
  }
  const ts_moe_cost_t *mc = w->cost->moe;
  int part = w->lay->part[v];
  double flops = 0;
  if (!mc) {
    flops = w->cost->part[part].flops[kind];
  } else if (piece % 2 == 0) {
    flops = mc->seg_flops[mc->part_first[part] + part + piece / 2];
  } else {
    int j = mc->part_first[part] + piece / 2, me = v % mc->lanes;
    long tok = 0;
    for (int r = 0; r < mc->lanes; r++) tok += ts_moe_tokens(mc, j, mb, r, me);
    flops = (double)tok * mc->expert_flops;
  }
  if (mc && kind == TS_BACKWARD) flops *= 2;
  bool first = rt->moe_kind < 0, lastp = kind == TS_FORWARD ? piece == last : piece == 0;
  double t0 = w->ops->now(w->xd);
  w->ops->compute(w->xd, rt->ctx.device, kind, v, mb, flops, w->cost->part[part].seconds[kind]);
  double t1 = w->ops->now(w->xd);
  rt->polls = 0;
  push_compute(rt, kind, v, mb,
               (first ? 0 : TS_EVF_CONT) | (lastp ? 0 : TS_EVF_MORE) |
                   (piece % 2 ? TS_EVF_EXPERT : 0),
               t0, t1);
  if (lastp) {
    rt->done[kind][c] = 1;
    rt->moe_kind = -1;
    return;
  }
  if (first) {
    rt->moe_kind = kind;
    rt->moe_v = v;
    rt->moe_mb = mb;
    rt->moe_pieces = rt->moe_a2a = 0;
  }
  rt->moe_pieces++;
}

void ts_rt_moe_alltoall(ts_rt_t *rt, ts_kind_t kind, ts_kind_t which, int v, int mb) {
  ts_world_t *w = rt->w;
  long c;
  if (w->failed || !moe_op(rt, "MoE all-to-all", kind, v, mb, &c)) return;
  int a = rt->moe_a2a;
  /* forward: dispatch, combine, ...; backward: combine, dispatch, ... */
  ts_kind_t next = (a % 2 == 0) == (kind == TS_FORWARD) ? TS_SEND_DISPATCH : TS_SEND_COMBINE;
  if (rt->moe_kind < 0 || a + 1 != rt->moe_pieces || which != next) {
    fail(rt, "MoE all-to-all %s of stage %d micro-batch %d out of order", ts_kind_name(which), v,
         mb);
    return;
  }
  rt->moe_a2a++;
  const ts_moe_cost_t *mc = w->cost->moe;
  if (!mc) return;
  int L = mc->lanes, me = v % L, s0 = v - me, d = rt->ctx.device, k = which == TS_SEND_COMBINE;
  int j = mc->part_first[w->lay->part[v]] +
          (kind == TS_FORWARD ? a / 2 : ts_rt_moe_layers(rt, v) - 1 - a / 2);
  /* Own tokens go out in the forward dispatch and the combine's gradient. */
  bool out = (which == TS_SEND_DISPATCH) == (kind == TS_FORWARD);
  double t0 = w->ops->now(w->xd);
  for (int i = 1; i < L; i++) {
    int q = (me + i) % L;
    int tok = out ? ts_moe_rows(mc, j, mb, me, q) : ts_moe_rows(mc, j, mb, q, me);
    w->ops->send(w->xd, d, w->lay->dev[s0 + q], which, v, mb, tok * mc->token_bytes);
  }
  w->ops->lock(w->xd, d);
  for (int i = 1; i < L && !w->failed; i++) {
    int p = w->lay->dev[s0 + (me + L - i) % L];
    if (rt->a2a_in[k][p] <= rt->a2a_used[k][p]) {
      snprintf(rt->waiting, sizeof rt->waiting, "the %s of stage %d micro-batch %d from device %d",
               ts_kind_name(which), v, mb, p);
      while (rt->a2a_in[k][p] <= rt->a2a_used[k][p] && !w->failed) w->ops->wait(w->xd, d);
      rt->waiting[0] = 0;
    }
    rt->a2a_used[k][p]++;
  }
  double t1 = w->ops->now(w->xd);
  ts_event_t e = {.device = d, .peer = d, .vstage = v, .mb = mb, .kind = which,
                  .seq = ++rt->a2a_calls, .iteration = mb / rt->ctx.microbatches,
                  .flags = TS_EVF_A2A_CALL | (kind == TS_BACKWARD ? TS_EVF_A2A_BWD : 0),
                  .start = t0, .end = t1};
  ts_run_push(rt->tev, &e);
  w->ops->unlock(w->xd, d);
  rt->polls = 0;
}

void ts__rt_main(ts_rt_t *rt) {
  rt->w->sched->program(rt);
  rt->finished = true;
}

/* ---- end of run -------------------------------------------------------- */

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
      if (rt->finished || room != (pass == 0)) continue;
      if (stuck++ < 4) {
        size_t l = strlen(msg);
        snprintf(msg + l, sizeof msg - l, "%sdevice %d waits for %s", stuck > 1 ? "; " : "", d,
                 rt->waiting[0] ? rt->waiting : "an event that never comes");
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
    ts_rt_t *rt = &w->rt[L->dev[v]];
    int lo = L->mb_hi[v] >= 0 ? L->mb_lo[v] : 0, hi = L->mb_hi[v] >= 0 ? L->mb_hi[v] : rt->M;
    for (int mb = lo; mb < hi; mb++) {
      long c = (long)rt->local_idx[v] * rt->M + mb;
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
    if (!copies_done(rt, -1))
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
  for (int d = 0; d < w->n; d++) {
    ts_rt_t *rt = &w->rt[d];
    for (int i = 0; i < rt->cev->n_events; i++) ts_run_push(run, &rt->cev->events[i]);
    for (int i = 0; i < rt->tev->n_events; i++) ts_run_push(run, &rt->tev->events[i]);
  }
  ts_run_sort(run);
  return 0;
}
