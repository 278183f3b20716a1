/*
** rt_dp.c: data parallelism around every schedule (README "Data
** parallelism"): gradient buckets, ZeRO stages 0-3 and the optimizer step,
** done by the runtime for every program, so that no schedule carries its
** own gradient synchronisation.
**
** What it models.  A device's parameters are its units (ts_executor.h
** ts_unit_t: the layers of the parts it holds).  The devices that hold
** the same parts (its REPLICA group: data-parallel replicas, expert lanes,
** Chimera's pair) sum their gradients of the replicated parameters; the
** experts of MoE layers are replicated over the DP group only.
**   zero 0-2: buckets of units, filled in reverse unit order (the order
**     the backward produces them) up to the bucket cap (1 MiB for the
**     first, gradient_bucket_mb MiB after; a unit is never split), one
**     all-reduce (zero 0) or reduce-scatter (zero 1, 2) each, started in
**     bucket order as soon as the bucket's gradients are final (the last
**     gradient op of each of its parts) and every earlier bucket started,
**     as PyTorch DDP's reducer does.  The op that makes a bucket final
**     runs in pieces (by the units' compute shares) so that the bucket
**     starts when its last unit is done, overlapping the rest of the
**     backward.  overlap_grad_reduce false: one collective of all units
**     per buffer after the program.
**   After the program: the gradient collectives are waited for, the TP
**     group's replicated gradients are all-reduced (rt_tp.c), the
**     optimizer step runs (its bytes over the device's memory bandwidth,
**     on the shard the device owns), and zero 1, 2 all-gather the updated
**     parameters bucket by bucket.
**   zero 3 (FSDP FULL_SHARD): every op that needs a part's weights
**     (forward, recompute, backward, backward_input) runs gathering unit
**     by gathering unit (fsdp_unit layers): unit k's all-gather was
**     started when unit k - 1's compute started (the first one at the
**     op's start), the op waits for it, computes the unit's share and
**     releases the gathered weights; every gradient op (backward,
**     weight_grad) reduce-scatters each unit's gradients after computing
**     it, every micro-batch.  No all-gather after the step.
** A wait of the compute stream for a collective is a TS_COMM_WAIT event;
** when one falls inside an op, the op's compute is recorded as pieces
** (TS_EVF_CONT / TS_EVF_MORE, as MoE ops), so busy time stays compute.
**
** Threading: the state below is the program context's own (the stream
** reads only the collectives queued through ts__rt_coll_start).
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "ts_internal.h"
#include "ts_moe.h"
#include "ts_tp.h"

#define MIB 1048576.0

typedef struct rt_bucket {
  ts_coll_buf_t buf;     /* TS_BUF_GRADS or TS_BUF_EXPERT_GRADS */
  int lo, hi;            /* units [lo, hi) */
  double bytes;
  int handle;            /* collective handle once started, else -1 */
} rt_bucket_t;

struct rt_dp {
  int n_units;
  ts_unit_t *units;
  int *first_unit;       /* [n_local + 1]: units of local index li */
  int *grad_ops, *needed; /* [n_local] gradient ops done, and of the run */
  unsigned char *final;  /* [n_units] gradients final */
  ts_group_t rep, dpg;   /* sync groups: replicated parameters, experts */
  int rep_shard, dpg_shard; /* the slice of each the device owns after a
                         ** reduce-scatter (ts__rt_coll_shard) */
  bool sync;             /* some gradients need a collective */
  bool z3;               /* zero 3 with a group of more than one */
  int n_buckets, next;
  rt_bucket_t *b;
  int *gather_h;         /* zero 3: [n_units] all-gather handle of the
                         ** gathering unit starting there, or -1 */
};

const ts_unit_t *ts__rt_units(const ts_rt_t *rt, int *n) {
  *n = rt->dp ? rt->dp->n_units : 0;
  return rt->dp ? rt->dp->units : NULL;
}

/* ---- set-up --------------------------------------------------------------- */

static int li_by_part(const void *a, const void *b, void *ctx) {
  const ts_layout_t *L = ctx;
  int x = L->part[*(const int *)a], y = L->part[*(const int *)b];
  return (x > y) - (x < y);
}

/* The units of local part li (vstage v): its layers, the embedding in the
** first of part 0, the LM head in the last of the last part. */
static void part_units(ts_rt_t *rt, int v, ts_unit_t *u) {
  ts_world_t *w = rt->w;
  const ts_job_t *job = w->job;
  const ts_cost_t *cost = w->cost;
  int part = w->lay->part[v];
  const ts_part_cost_t *pc = &cost->part[part];
  const ts_moe_cost_t *mc = cost->moe;
  int n = pc->n_layers, e = job->bytes_per_element;
  double experts = mc ? mc->expert_params[part] : 0;
  double dense = pc->params > 0 ? pc->params - experts : pc->gradients_bytes / (e > 0 ? e : 1);
  double emb = 0, head = 0, head_fl = 0;
  if (cost->has_flops && !mc) {
    const ts_model_t *m = &job->model;
    /* A tensor-parallel rank's share (ts_tp.c): the word embedding and
    ** the LM head's copy vocabulary-parallel, the learned position table
    ** replicated in 1d (blocked as the rest in the grids). */
    double t = job->tensor_parallel > 1 ? job->tensor_parallel : 1;
    bool grid = job->tensor_parallel_grid > 1;
    if (grid && job->tensor_parallel_depth > 1) t /= job->tensor_parallel_depth;
    double pos = ts__cost_position_params(m, job->seq_len);
    if (part == 0) emb = (double)m->vocab * m->hidden / t + (grid ? pos / t : pos);
    if (part == cost->n_parts - 1 && cost->n_parts > 1) head = (double)m->vocab * m->hidden / t;
    if (part == cost->n_parts - 1)
      head_fl = 2.0 * job->micro_batch_size * job->seq_len * m->hidden * (double)m->vocab / t;
  }
  double fw = pc->flops[TS_FORWARD], per_fl = n > 0 ? (fw - head_fl) / n : 0;
  int moe_n = mc ? mc->part_count[part] : 0;
  for (int i = 0; i < n; i++) {
    ts_unit_t *x = &u[i];
    x->part = part;
    x->layer = pc->first_layer + i;
    x->params = (dense - emb - head) / n + (i == 0 ? emb : 0) + (i == n - 1 ? head : 0);
    x->expert_params = moe_n > 0 ? experts / n : 0;
    x->grad_bytes = x->params * e;
    x->expert_bytes = x->expert_params * e;
    x->share = fw > 0 ? (per_fl + (i == n - 1 ? head_fl : 0)) / fw : 1.0 / n;
  }
  /* A synthetic part has no parameter count: its gradients are its bytes. */
  if (pc->params <= 0) {
    for (int i = 0; i < n; i++) {
      u[i].grad_bytes = pc->gradients_bytes / n;
      u[i].params = e > 0 ? u[i].grad_bytes / e : 0;
    }
  }
}

/* Appends a bucket. */
static void add_bucket(rt_dp_t *dp, ts_coll_buf_t buf, int lo, int hi, double bytes) {
  dp->b = ts__xrealloc(dp->b, (size_t)(dp->n_buckets + 1) * sizeof *dp->b);
  dp->b[dp->n_buckets++] = (rt_bucket_t){buf, lo, hi, bytes, -1};
}

/* Buckets of one buffer in reverse unit order.  A bucket's trigger is its
** lowest unit; both buffers' buckets are merged by trigger (highest first,
** replicated parameters first at a tie) by build_buckets. */
static void fill(rt_dp_t *dp, ts_coll_buf_t buf, bool overlap, double cap_mb) {
  bool experts = buf == TS_BUF_EXPERT_GRADS;
  double cap = MIB, cur = 0;
  int hi = dp->n_units;
  for (int u = dp->n_units - 1; u >= 0; u--) {
    cur += experts ? dp->units[u].expert_bytes : dp->units[u].grad_bytes;
    if (overlap && cur >= cap) {
      add_bucket(dp, buf, u, hi, cur);
      hi = u;
      cur = 0;
      cap = cap_mb * MIB;
    }
  }
  if (hi > 0 && (cur > 0 || !overlap)) add_bucket(dp, buf, 0, hi, cur);
}

static int bucket_cmp(const void *a, const void *b) {
  const rt_bucket_t *x = a, *y = b;
  if (x->lo != y->lo) return x->lo > y->lo ? -1 : 1;
  return (x->buf > y->buf) - (x->buf < y->buf);
}

static void build_buckets(rt_dp_t *dp, const ts_job_t *job) {
  bool overlap = job->overlap_grad_reduce;
  double cap = job->gradient_bucket_mb > 0 ? job->gradient_bucket_mb : 25;
  if (dp->rep.n > 1) fill(dp, TS_BUF_GRADS, overlap, cap);
  double eb = 0;
  for (int u = 0; u < dp->n_units; u++) eb += dp->units[u].expert_bytes;
  if (dp->dpg.n > 1 && eb > 0) fill(dp, TS_BUF_EXPERT_GRADS, overlap, cap);
  if (dp->n_buckets > 1) qsort(dp->b, (size_t)dp->n_buckets, sizeof *dp->b, bucket_cmp);
}

void ts__rt_dp_init(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  const ts_layout_t *L = w->lay;
  int nl = rt->ctx.n_local;
  if (w->sched->host_weights || nl == 0) return;
  rt_dp_t *dp = ts__xcalloc(1, sizeof *dp);
  rt->dp = dp;
  int *order = ts__xmalloc((size_t)nl * sizeof *order);
  for (int i = 0; i < nl; i++) order[i] = rt->ctx.local[i];
  qsort_r(order, (size_t)nl, sizeof *order, li_by_part, (void *)L);
  int n = 0;
  for (int i = 0; i < nl; i++) n += w->cost->part[L->part[order[i]]].n_layers;
  dp->n_units = n;
  dp->units = ts__xcalloc((size_t)(n ? n : 1), sizeof *dp->units);
  dp->first_unit = ts__xcalloc((size_t)nl + 1, sizeof(int));
  dp->grad_ops = ts__xcalloc((size_t)nl, sizeof(int));
  dp->needed = ts__xcalloc((size_t)nl, sizeof(int));
  dp->final = ts__xcalloc((size_t)(n ? n : 1), 1);
  dp->gather_h = ts__xmalloc((size_t)(n ? n : 1) * sizeof(int));
  int k = 0;
  for (int i = 0; i < nl; i++) {
    int v = order[i], li = ts__rt_li(rt, v);
    assert(i == 0 || L->part[order[i - 1]] < L->part[v]); /* one vstage per part */
    dp->first_unit[li] = k;
    part_units(rt, v, dp->units + k);
    k += w->cost->part[L->part[v]].n_layers;
    dp->needed[li] = L->mb_hi[v] >= 0 ? L->mb_hi[v] - L->mb_lo[v] : rt->M;
  }
  /* first_unit is by local index; the units are by part, and local
  ** indices ascend with vstage, not always with part: keep both. */
  dp->first_unit[nl] = n;
  for (int u = 0; u < n; u++) dp->gather_h[u] = -1;
  free(order);
  dp->rep = ts_plan_group(w->plan, TS_GROUP_REPLICA, rt->ctx.device);
  dp->dpg = ts_plan_group(w->plan, TS_GROUP_DP, rt->ctx.device);
  dp->rep_shard = ts__rt_coll_shard(rt, &dp->rep);
  dp->dpg_shard = ts__rt_coll_shard(rt, &dp->dpg);
  bool own = w->sched->own_grad_sync;
  dp->z3 = !own && w->job->zero == 3 && dp->rep.n > 1;
  if (!dp->z3 && !own) build_buckets(dp, w->job);
  dp->sync = dp->n_buckets > 0 || dp->z3;
  ts__rt_tp_init(rt);
}

void ts__rt_dp_free(ts_rt_t *rt) {
  rt_dp_t *dp = rt->dp;
  ts__rt_tp_free(rt);
  if (!dp) return;
  free(dp->units);
  free(dp->first_unit);
  free(dp->grad_ops);
  free(dp->needed);
  free(dp->final);
  free(dp->gather_h);
  free(dp->b);
  free(dp);
  rt->dp = NULL;
}

/* ---- collectives and waits -------------------------------------------------- */

/* Starts a data-parallel collective over units [lo, hi) of buf. */
static int start(ts_rt_t *rt, ts_coll_op_t op, const ts_group_t *g, int v, ts_coll_buf_t buf,
                 int lo, int hi, double bytes, ts_coll_purpose_t purpose, int mb) {
  rt_coll_t c = {.op = op, .buf = buf, .vstage = v, .bytes = bytes, .g = *g, .unit_lo = lo,
                 .unit_hi = hi, .purpose = purpose, .group_kind = TS_GROUP_KINDS, .mb = mb};
  /* The DP group, unless the replicas also span expert lanes or pairs. */
  c.group_kind = g->dev == rt->dp->rep.dev && rt->dp->rep.n != rt->dp->dpg.n ? TS_GROUP_REPLICA
                                                                             : TS_GROUP_DP;
  return ts__rt_coll_queue(rt, &c);
}

/* Starts every bucket that is final, in order. */
static void start_buckets(ts_rt_t *rt, bool all) {
  rt_dp_t *dp = rt->dp;
  bool zero0 = rt->w->job->zero == 0;
  int v = rt->ctx.local[0];
  while (dp->next < dp->n_buckets) {
    rt_bucket_t *b = &dp->b[dp->next];
    bool ready = true;
    for (int u = b->lo; u < b->hi && ready && !all; u++) ready = dp->final[u];
    if (!ready) return;
    bool ex = b->buf == TS_BUF_EXPERT_GRADS;
    b->handle = start(rt, zero0 ? TS_COLL_ALLREDUCE : TS_COLL_REDUCE_SCATTER, ex ? &dp->dpg : &dp->rep,
                      v, b->buf, b->lo, b->hi, b->bytes, TS_CP_GRADS, dp->next);
    dp->next++;
  }
}

/* The units of vstage v (local index li): [*lo, *hi). */
static void units_of(const ts_rt_t *rt, int v, int *lo, int *hi) {
  int li = ts__rt_li(rt, v);
  *lo = rt->dp->first_unit[li];
  *hi = *lo + rt->w->cost->part[rt->w->lay->part[v]].n_layers;
}

/* Bytes of units [lo, hi) (weights and gradients have the same size). */
static double unit_sum(const rt_dp_t *dp, int lo, int hi) {
  double s = 0;
  for (int u = lo; u < hi; u++) s += dp->units[u].grad_bytes;
  return s;
}

static ts_region_t region(const rt_dp_t *dp, ts_coll_buf_t buf, int lo, int hi, bool sharded) {
  return (ts_region_t){buf, lo, hi, sharded ? dp->rep_shard : 0, sharded ? dp->rep.n : 1};
}

/* ---- ops ------------------------------------------------------------------ */

/* One op as data parallelism runs it. */
typedef struct dp_op {
  ts_rt_t *rt;
  ts_kind_t kind;
  int v, mb, flags;
  double flops, seconds;
  int lo, hi;  /* the part's units */
  int step;    /* units per piece: fsdp_unit (zero 3) or 1 (buckets) */
  int n;       /* pieces */
  bool down;   /* backward kinds run their units last to first */
} dp_op_t;

/* Units [*a, *b) of the op's i-th piece in its order. */
static void piece(const dp_op_t *o, int i, int *a, int *b) {
  int g = o->down ? o->n - 1 - i : i;
  *a = o->lo + g * o->step;
  *b = *a + o->step < o->hi ? *a + o->step : o->hi;
}

/* zero 3: starts the all-gather of units [a, b) (label: the op). */
static void gather(const dp_op_t *o, int a, int b) {
  rt_dp_t *dp = o->rt->dp;
  dp->gather_h[a] = start(o->rt, TS_COLL_ALLGATHER, &dp->rep, o->v, TS_BUF_WEIGHTS, a, b,
                          unit_sum(dp, a, b), TS_CP_GATHER, o->mb);
}

/* zero 3: drops units [a, b)'s gathered weights, then, after a gradient op,
** reduce-scatters their gradients. */
static void after_unit(const dp_op_t *o, int a, int b, bool weights, bool grads) {
  ts_world_t *w = o->rt->w;
  rt_dp_t *dp = o->rt->dp;
  if (weights && w->ops->release) {
    ts_region_t r = region(dp, TS_BUF_WEIGHTS, a, b, true);
    w->ops->release(w->xd, o->rt->ctx.device, &r);
  }
  if (grads)
    start(o->rt, TS_COLL_REDUCE_SCATTER, &dp->rep, o->v, TS_BUF_GRADS, a, b, unit_sum(dp, a, b),
          TS_CP_GRADS, o->mb);
}

/* Runs the compute of the op's pieces [i0, i1) in one go: their shares of
** the op (the last piece takes what is left, so that the pieces add up to
** the op exactly); *done accumulates the share run so far. */
static void compute_share(const dp_op_t *o, int i0, int i1, double *done) {
  ts_world_t *w = o->rt->w;
  if (ts__rt_tp_splits(o->rt, o->kind)) { /* layer by layer, TP pieces (rt_tp.c) */
    const ts_unit_t *un = o->rt->dp->units;
    for (int i = i0; i < i1; i++) {
      int a, b;
      piece(o, i, &a, &b);
      for (int j = 0; j < b - a; j++) {
        int u = o->down ? b - 1 - j : a + j;
        bool last = i == o->n - 1 && j == b - a - 1;
        double f = last ? 1 : *done + un[u].share;
        ts__rt_tp_layer(o->rt, o->kind, o->v, o->mb, o->flags, o->flops * f - o->flops * *done,
                        o->seconds * f - o->seconds * *done, i == 0 && j == 0, last);
        *done = f;
      }
    }
    return;
  }
  double share = *done;
  for (int i = i0; i < i1; i++) {
    int a, b;
    piece(o, i, &a, &b);
    for (int u = a; u < b; u++) share += o->rt->dp->units[u].share;
  }
  double f = i1 == o->n ? 1 : share;
  w->ops->compute(w->xd, o->rt->ctx.device, o->kind, o->v, o->mb, o->flops * f - o->flops * *done,
                  o->seconds * f - o->seconds * *done);
  *done = share;
}

/* Buckets: the op that makes its part's gradients final, layer by layer;
** each bucket starts as soon as its last layer is done.  One event. */
static void op_buckets(const dp_op_t *o) {
  ts_world_t *w = o->rt->w;
  rt_dp_t *dp = o->rt->dp;
  double t0 = w->ops->now(w->xd), done = 0;
  for (int i = 0; i < o->n; i++) {
    int a, b;
    piece(o, i, &a, &b);
    compute_share(o, i, i + 1, &done);
    for (int u = a; u < b; u++) dp->final[u] = 1;
    start_buckets(o->rt, false);
  }
  if (!ts__rt_tp_splits(o->rt, o->kind)) /* else the pieces recorded themselves */
    ts__rt_push_compute(o->rt, o->kind, o->v, o->mb, o->flags, t0, w->ops->now(w->xd));
}

/* zero 3: unit by unit, the next unit's gather prefetched, a wait (and a
** comm_wait event) for each unit's own; one event per unit, so that its
** gathered weights are freed with it. */
static void op_zero3(const dp_op_t *o, bool weights, bool grads) {
  ts_world_t *w = o->rt->w;
  double done = 0;
  for (int i = 0; i < o->n; i++) {
    int a, b;
    piece(o, i, &a, &b);
    if (weights) {
      if (i == 0) gather(o, a, b);
      if (i + 1 < o->n) { /* prefetch */
        int a2, b2;
        piece(o, i + 1, &a2, &b2);
        gather(o, a2, b2);
      }
      ts__rt_coll_wait_at(o->rt, o->rt->dp->gather_h[a], o->v, o->mb);
    }
    double t0 = w->ops->now(w->xd);
    compute_share(o, i, i + 1, &done);
    int fl = (i ? TS_EVF_CONT : 0) | (i + 1 < o->n ? TS_EVF_MORE : 0);
    if (!ts__rt_tp_splits(o->rt, o->kind))
      ts__rt_push_compute(o->rt, o->kind, o->v, o->mb, o->flags | fl, t0, w->ops->now(w->xd));
    after_unit(o, a, b, weights, grads);
  }
}

/* zero 3 where an op cannot be cut (real math): every unit gathered first,
** the op whole, then every unit released and reduce-scattered. */
static void op_zero3_whole(const dp_op_t *o, bool weights, bool grads) {
  ts_world_t *w = o->rt->w;
  int a, b;
  for (int i = 0; i < o->n && weights; i++) {
    piece(o, i, &a, &b);
    gather(o, a, b);
  }
  for (int i = 0; i < o->n && weights; i++) {
    piece(o, i, &a, &b);
    ts__rt_coll_wait_at(o->rt, o->rt->dp->gather_h[a], o->v, o->mb);
  }
  double t0 = w->ops->now(w->xd);
  w->ops->compute(w->xd, o->rt->ctx.device, o->kind, o->v, o->mb, o->flops, o->seconds);
  ts__rt_push_compute(o->rt, o->kind, o->v, o->mb, o->flags, t0, w->ops->now(w->xd));
  for (int i = 0; i < o->n; i++) {
    piece(o, i, &a, &b);
    after_unit(o, a, b, weights, grads);
  }
}

/* The compute of one op, in pieces when data parallelism needs them (see
** the file header); records its compute event(s).  Called by ts_rt_compute
** once the op passed its checks; returns after the op. */
void ts__rt_dp_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double flops,
                       double seconds) {
  ts_world_t *w = rt->w;
  rt_dp_t *dp = rt->dp;
  bool grads = kind == TS_BACKWARD || kind == TS_WEIGHT_GRAD;
  bool weights = kind != TS_WEIGHT_GRAD;
  bool whole = w->ops->whole_ops, overlap = w->job->overlap_grad_reduce;
  int li = ts__rt_li(rt, v);
  /* This op makes its part's gradients final (buckets, zero 0-2). */
  bool completes = dp && dp->sync && !dp->z3 && grads && dp->grad_ops[li] + 1 == dp->needed[li];
  dp_op_t o = {rt, kind, v, mb, flags, flops, seconds, 0, 0, 1, 0,
               kind != TS_FORWARD && kind != TS_RECOMPUTE};
  if (dp && (dp->z3 || completes)) {
    units_of(rt, v, &o.lo, &o.hi);
    if (dp->z3) o.step = w->job->fsdp_unit > 0 ? w->job->fsdp_unit : 1;
    o.n = (o.hi - o.lo + o.step - 1) / o.step;
  }
  if (dp && dp->z3) {
    (whole ? op_zero3_whole : op_zero3)(&o, weights, grads);
  } else if (completes && overlap && !whole) {
    op_buckets(&o);
  } else if (ts__rt_tp_splits(rt, kind)) { /* tensor parallel: its layers (rt_tp.c) */
    units_of(rt, v, &o.lo, &o.hi);
    o.n = o.hi - o.lo;
    double done = 0;
    compute_share(&o, 0, o.n, &done);
    if (completes) {
      for (int u = o.lo; u < o.hi; u++) dp->final[u] = 1;
      if (overlap) start_buckets(rt, false);
    }
  } else {
    double t0 = w->ops->now(w->xd);
    w->ops->compute(w->xd, rt->ctx.device, kind, v, mb, flops, seconds);
    ts__rt_push_compute(rt, kind, v, mb, flags, t0, w->ops->now(w->xd));
    if (completes) { /* whole op, or buckets after the program */
      for (int u = o.lo; u < o.hi; u++) dp->final[u] = 1;
      if (overlap) start_buckets(rt, false);
    }
  }
  if (dp && grads) dp->grad_ops[li]++;
}

/* Marks a part's gradients final after an op that did not run through
** ts__rt_dp_compute (a MoE backward's pieces). */
void ts__rt_dp_grads_done(ts_rt_t *rt, int v) {
  rt_dp_t *dp = rt->dp;
  if (!dp) return;
  int li = ts__rt_li(rt, v);
  if (++dp->grad_ops[li] != dp->needed[li] || !dp->sync || dp->z3) return;
  int lo, hi;
  units_of(rt, v, &lo, &hi);
  for (int u = lo; u < hi; u++) dp->final[u] = 1;
  if (rt->w->job->overlap_grad_reduce) start_buckets(rt, false);
}

/* ---- before and after the program --------------------------------------------- */

void ts__rt_dp_begin(ts_rt_t *rt) {
  rt_dp_t *dp = rt->dp;
  ts_world_t *w = rt->w;
  if (!dp || !dp->z3 || !w->ops->release) return;
  int step = w->job->fsdp_unit > 0 ? w->job->fsdp_unit : 1;
  for (int li = 0; li < rt->ctx.n_local; li++) {
    int lo = dp->first_unit[li], hi = lo + w->cost->part[w->lay->part[rt->ctx.local[li]]].n_layers;
    for (int a = lo; a < hi; a += step) {
      ts_region_t r = region(dp, TS_BUF_WEIGHTS, a, a + step < hi ? a + step : hi, true);
      w->ops->release(w->xd, rt->ctx.device, &r);
    }
  }
}

/* Optimizer bytes per parameter: K read and written, the gradient read and
** the weight written (README "Data parallelism"). */
static double opt_bytes_per_param(const ts_job_t *job) {
  int e = job->bytes_per_element;
  return 2 * (e < 4 ? 12.0 : 8.0) + 2.0 * e;
}

void ts__rt_dp_end(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  rt_dp_t *dp = rt->dp;
  if (!dp || w->failed) return;
  const ts_job_t *job = w->job;
  int d = rt->ctx.device, v = rt->ctx.local[0];
  if (dp->sync && !dp->z3) start_buckets(rt, true);
  /* Every gradient collective (and zero 3's last reduce-scatters). */
  ts__rt_coll_wait_all(rt, v, -1);
  /* Then the TP group's replicated gradients (rt_tp.c), as Megatron's
  ** finalize_model_grads all-reduces them after the DP sync. */
  ts__rt_tp_sync(rt);
  /* A synthetic model has no optimizer states (its parts hold bytes, not
  ** parameters): no step. */
  bool opt = job->optimizer == TS_OPTIMIZER_ADAM && job->iterations == 1 && w->ops->optimizer &&
             job->model.kind == TS_MODEL_TRANSFORMER;
  if (opt && !w->failed) {
    int zero = job->zero;
    int nr = dp->z3 ? dp->n_units : (zero >= 1 && dp->n_buckets ? dp->n_buckets : 2);
    ts_region_t *r = ts__xcalloc((size_t)(nr ? nr : 1), sizeof *r);
    int k = 0;
    double params = 0;
    for (int u = 0; u < dp->n_units; u++) {
      bool sh = zero >= 1;
      params += dp->units[u].params / (sh ? dp->rep.n : 1) +
                dp->units[u].expert_params / (sh ? dp->dpg.n : 1);
    }
    if (dp->z3) {
      int step = job->fsdp_unit > 0 ? job->fsdp_unit : 1;
      for (int li = 0; li < rt->ctx.n_local; li++) {
        int lo = dp->first_unit[li];
        int hi = lo + w->cost->part[w->lay->part[rt->ctx.local[li]]].n_layers;
        for (int a = lo; a < hi; a += step) r[k++] = region(dp, TS_BUF_GRADS, a, a + step < hi ? a + step : hi, true);
      }
    } else if (zero >= 1 && dp->n_buckets) {
      for (int i = 0; i < dp->n_buckets; i++) {
        bool ex = dp->b[i].buf == TS_BUF_EXPERT_GRADS;
        const ts_group_t *g = ex ? &dp->dpg : &dp->rep;
        r[k++] = (ts_region_t){dp->b[i].buf, dp->b[i].lo, dp->b[i].hi,
                               ex ? dp->dpg_shard : dp->rep_shard, g->n};
      }
    } else {
      r[k++] = region(dp, TS_BUF_GRADS, 0, dp->n_units, false);
      if (w->cost->moe) r[k++] = region(dp, TS_BUF_EXPERT_GRADS, 0, dp->n_units, false);
    }
    double bytes = params * opt_bytes_per_param(job);
    double t0 = w->ops->now(w->xd);
    w->ops->optimizer(w->xd, d, 0, k, r, bytes);
    double t1 = w->ops->now(w->xd);
    free(r);
    if (bytes > 0 && t1 > t0) { /* none where memory bandwidth is unknown (ideal) */
      ts_event_t e = {.device = d, .peer = -1, .vstage = v, .mb = 0, .kind = TS_OPTIMIZER,
                      .seq = rt->seq, .start = t0, .end = t1, .bytes = bytes};
      ts_run_push(rt->cev, &e);
    }
  }
  /* zero 1, 2: the updated parameters back to every replica. */
  if (job->zero >= 1 && !dp->z3 && dp->n_buckets && !w->failed) {
    for (int i = 0; i < dp->n_buckets; i++) {
      rt_bucket_t *b = &dp->b[i];
      bool ex = b->buf == TS_BUF_EXPERT_GRADS;
      double wb = 0;
      for (int u = b->lo; u < b->hi; u++) wb += ex ? dp->units[u].expert_bytes : dp->units[u].grad_bytes;
      start(rt, TS_COLL_ALLGATHER, ex ? &dp->dpg : &dp->rep, v,
            ex ? TS_BUF_EXPERT_WEIGHTS : TS_BUF_WEIGHTS, b->lo, b->hi, wb, TS_CP_PARAMS, i);
    }
    ts__rt_coll_wait_all(rt, v, -1);
  }
}
