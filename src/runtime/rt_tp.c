/*
** rt_tp.c: Megatron 1D tensor parallelism in the runtime (README "Tensor
** parallelism").
**
** What it models.  Under t > 1 a transformer layer is no longer one opaque
** piece of an op: each layer of a forward (or recompute) runs as
**   [attention GEMMs and core] all-reduce [MLP] all-reduce
** and each layer of a backward (or backward_input), last layer first, as
** its mirror
**   [MLP backward] all-reduce [attention backward] all-reduce,
** every all-reduce one of b s h e bytes (the layer's output, or its input
** gradient) over the device's TP group, blocking the compute stream (its
** wait is a TS_COMM_WAIT event).  With sequence_parallel each all-reduce
** becomes a reduce-scatter after its block and an all-gather before the
** next one (the same bytes: 2 (t - 1) / t x b s h e per pair), as
** Korthikanti et al. 2022 place them.  A weight_grad op (zb-h1's second
** half) needs no TP collective and runs whole.  A layer's FLOPs (its
** share of the op, ts_unit_t.share) are split between the attention and
** MLP pieces by their FLOPs (attention 2 b s (h (q + 2 kv) + q h) + 4 b s^2 q,
** 8 b s h^2 + 4 b s^2 h without GQA, plus
** the recomputed core under selective recompute; MLP 2 k b s h f); a
** piece beyond one layer's FLOPs (the LM head in the last layer's unit)
** goes to the MLP piece.  Every compute piece is its own compute event
** (TS_EVF_CONT / TS_EVF_MORE), so busy time stays compute.
**
** With pipeline_scatter_gather (Megatron's scatter / gather optimisation)
** each rank receives its 1 / t of a pipeline message, and the op that
** consumes it (a forward after its activation arrived, a backward or
** backward_input after its gradient did) all-gathers the b s h e bytes
** over the TP group before its first layer; not with sequence_parallel,
** whose activations stay split by sequence.
**
** The all-reduces and the SP reduce-scatters and all-gathers carry
** TS_BUF_TP, the piece's partial (or the sequence slices an all-gather
** collects), which an executor with data sums or gathers (the reference
** executor's ref_tp.c, ref_tp_sp.c), after ops->tp_prepare filled it; so
** do the 2d (and 2.5d) chains (one slot of blocks each, ref_tp2d.c); the
** pipeline-message gathers and the 3d lines carry bytes only.
**
** 2D (tensor_parallel_mode "2d", Optimus, Xu et al. 2021): the TP group's
** members, ordered by rank, form a q x q grid, rank = i q + j (row i,
** column j).  Each GEMM of a layer (m = b s rows, a k x n weight, in the
** order QKV, output projection, MLP in, MLP out) is SUMMA: in the forward,
** q steps l of a row broadcast of A's block (m k e / q^2 bytes) from the
** row's member of column l and a column broadcast of B's block (k n e /
** q^2) from the column's member of row l; in the backward, last GEMM
** first, q steps of dA = dC B^T (a column broadcast of B's block, a row
** reduce of dA's block to column l) and q of dB = A^T dC (a row broadcast
** of A's block, a column reduce of dB's block to row l).  A broadcast is
** the runtime's chain from its root; a reduce is the same chain run
** towards its root (the same bytes and flows; recorded as a broadcast).
** Every member is the chain's end once in q steps, so each device sends
** ts_cost_tp2d_layer_bytes per layer.  The attention GEMMs' traffic runs
** before the attention piece and the MLP's before the MLP piece (forward;
** mirrored in the backward), the compute stream waiting for each GEMM's
** last step; no pipeline-message gathers (a 2D rank holds its 1 / t block
** of the activations).
**
** 2.5D (Tesseract, Wang et al. 2021; t = q x q x d, d =
** tensor_parallel_depth): rank = k q^2 + i q + j; depth layer k runs the
** 2D pattern on its own grid, A's blocks m / (d q) x k / q (the d q rows of
** all layers split the micro-batch), B's k / q x n / q as in 2D.  Every
** depth layer holds the grid's weights and computes their gradients from
** its 1 / d of the micro-batches: once an iteration (ts__rt_tp_sync) the d
** devices of a grid position (k, i, j), k = 0 .. d - 1, all-reduce all of
** their gradients (the units' grad_bytes), Tesseract's depth all-reduce,
** 2 (d - 1) / d of them per device.
**
** 3D (Bian et al. 2021; t = q^3): rank = l q^2 + i q + j, device (i, j,
** l); lines along y (j varies), x (i varies) and z (l varies).  Each GEMM's
** forward all-gathers A_il along y and B_lj along x (each stored as 1 / q
** pieces on the line, so every device holds 1 / q^3; the same bytes as a
** broadcast from one holder) and reduce-scatters C_ijl along z; its
** backward all-gathers dC along z and reduce-scatters dA along y and dB
** along x.  Blocks: A m k / q^2, B k n / q^2, C m n / q^2 (times e).
**
** Vocabulary parallelism (1D; Megatron's VocabParallelEmbedding and
** vocab_parallel_cross_entropy, Shoeybi et al. 2019), bytes only: the part
** that holds the embedding (part 0) all-reduces its output, b s h e, at
** the start of each forward (with SP a reduce-scatter, whose backward is
** an all-gather at the end of each backward; without SP the all-reduce's
** backward is the identity).  The part that holds the LM head (the last)
** all-reduces, after each forward's last layer, the cross-entropy's
** per-token max, target logit and sum of exponentials (3 all-reduces of
** b s fp32 values), with SP after all-gathering the head's input (b s h
** e); and at the start of each backward all-reduces the gradient of the
** head's input (b s h e; with SP a reduce-scatter).  The head's GEMM runs
** in the last layer's MLP piece (above), so its collectives sit next to
** that piece rather than exactly around the GEMM.  Recompute runs no
** vocabulary collective (the embedding and the head are not recomputed);
** the grid modes (above) leave them out.
**
** Replicated gradients (ts__rt_tp_sync): with sequence_parallel, and in
** 2d, each rank computes only a share of the gradients of the parameters
** it holds whole (the norms' gains and biases, the row-split GEMMs'
** output biases with SP, its grid column's bias blocks in 2d; trainsim.h
** ts_cost_tp_sync_bytes).  Once the data-parallel gradient sync is done
** and before the optimizer (Megatron's finalize_model_grads, whose
** _allreduce_layernorm_grads all-reduces the parameters marked
** sequence_parallel), one all-reduce of them (TS_BUF_TP_GRADS, the units
** of every local part) runs over the TP group (2d, 2.5d: over the q
** members of the device's grid column in its depth layer, whose row
** blocks each gave a share; 2.5d's depth all-reduce runs first), on the
** TP stream, counted as TP traffic.  None in 1d without SP (every rank
** computes the whole gradients), nor in 3d.
**
** TP collectives run on the device's TP communication stream
** (rt_coll.c), never behind data-parallel buckets, which run on their own.
**
** Threading: the state is the program context's own.
*/
#include <stdlib.h>

#include "rt_internal.h"
#include "ts_internal.h"
#include "ts_moe.h" /* ts__cost_attention_flops */

struct rt_tp {
  ts_group_t g;
  bool sp;
  double msg;                       /* b s h e */
  double layer[TS_COMPUTE_KINDS];   /* one layer's FLOPs per device */
  double attn[TS_COMPUTE_KINDS];    /* of which the attention piece's */
  int q;                            /* 2d, 2.5d, 3d: the grid's side, else 0 */
  bool cube;                        /* 3d */
  double gemm[4][3];                /* the layer's GEMMs' A, B (and C) block bytes */
  int *line[3];                     /* 3d: the y, x and z lines, q members each */
  /* 2d: the rotated row and column chains of each step l, q members each:
  ** [0] broadcast from l, [1] reduce to l (the root last). */
  int *row[2], *col[2];
  /* The replicated gradients' all-reduce (ts__rt_tp_sync): its bytes and
  ** group (1d: g; 2d, 2.5d: the device's grid column, colg); 2.5d: the
  ** depth all-reduce of all its gradients, its bytes and group (the d
  ** devices of its grid position, depg). */
  double sync, depth;
  ts_group_t sg, dg;
  int *colg, *depg;
};

/* The grid's chains or lines (file header) and block sizes. */
static void grid_init(rt_tp_t *tp, const ts_job_t *job) {
  const ts_model_t *m = &job->model;
  int q = tp->q = job->tensor_parallel_grid, q2 = q * q, base = tp->g.rank / q2 * q2;
  int i = tp->g.rank % q2 / q, j = tp->g.rank % q;
  double d = job->tensor_parallel_depth > 1 ? job->tensor_parallel_depth : 1;
  double e = job->bytes_per_element, M = (double)job->micro_batch_size * job->seq_len;
  double h = m->hidden, f = m->ffn_hidden, qd = (double)m->heads * m->head_dim;
  double kv = (double)m->kv_heads * m->head_dim;
  double kn[4][2] = {{h, qd + 2 * kv}, {qd, h}, {h, (m->gated_mlp ? 2 : 1) * f}, {f, h}};
  for (int g = 0; g < 4; g++) {
    tp->gemm[g][0] = M * kn[g][0] * e / (d * q2);
    tp->gemm[g][1] = kn[g][0] * kn[g][1] * e / q2;
    tp->gemm[g][2] = M * kn[g][1] * e / q2;
  }
  if ((tp->cube = job->tensor_parallel_cube)) {
    for (int a = 0; a < 3; a++) tp->line[a] = ts__xmalloc((size_t)q * sizeof(int));
    for (int x = 0; x < q; x++) {
      tp->line[0][x] = tp->g.dev[base + i * q + x];
      tp->line[1][x] = tp->g.dev[base + x * q + j];
      tp->line[2][x] = tp->g.dev[x * q2 + i * q + j];
    }
    return;
  }
  for (int r = 0; r < 2; r++) {
    tp->row[r] = ts__xmalloc((size_t)q * q * sizeof(int));
    tp->col[r] = ts__xmalloc((size_t)q * q * sizeof(int));
    for (int l = 0; l < q; l++)
      for (int x = 0; x < q; x++) {
        int y = (l + r + x) % q;
        tp->row[r][l * q + x] = tp->g.dev[base + i * q + y];
        tp->col[r][l * q + x] = tp->g.dev[base + y * q + j];
      }
  }
}

/* The replicated gradients' all-reduce (ts_cost_tp_sync_bytes): the
** bytes for the device's layers (and the final norm on the last part) and
** its group. */
static void sync_init(ts_rt_t *rt, rt_tp_t *tp, const ts_job_t *job) {
  const ts_world_t *w = rt->w;
  int n_units, n;
  ts__rt_units(rt, &n_units);
  bool last = false;
  for (int i = 0; i < rt->ctx.n_local; i++)
    last |= w->lay->part[rt->ctx.local[i]] == w->cost->n_parts - 1;
  tp->sync = ts_cost_tp_sync_bytes(job, n_units, last, &n);
  tp->sg = tp->g;
  int q = tp->q, q2 = q * q, d = job->tensor_parallel_depth, r = tp->g.rank;
  if (tp->q && !tp->cube && d > 1) { /* 2.5d: every gradient over the depth */
    const ts_unit_t *u = ts__rt_units(rt, &n_units);
    for (int k = 0; k < n_units; k++) tp->depth += u[k].grad_bytes;
    tp->depg = ts__xmalloc((size_t)d * sizeof(int));
    for (int k = 0; k < d; k++) tp->depg[k] = tp->g.dev[k * q2 + r % q2];
    tp->dg = (ts_group_t){.n = d, .rank = r / q2, .dev = tp->depg};
  }
  if (tp->sync <= 0 || n == tp->g.n) return;
  /* 2d, 2.5d: the q members (y, j) of its grid column, rank i. */
  int base = r / q2 * q2;
  tp->colg = ts__xmalloc((size_t)q * sizeof(int));
  for (int y = 0; y < q; y++) tp->colg[y] = tp->g.dev[base + y * q + r % q];
  tp->sg = (ts_group_t){.n = q, .rank = r % q2 / q, .dev = tp->colg};
}

void ts__rt_tp_init(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  const ts_job_t *job = w->job;
  const ts_model_t *m = &job->model;
  if (job->tensor_parallel < 2 || m->kind != TS_MODEL_TRANSFORMER || !rt->dp) return;
  rt_tp_t *tp = ts__xcalloc(1, sizeof *tp);
  rt->tp = tp;
  tp->g = ts_plan_group(w->plan, TS_GROUP_TP, rt->ctx.device);
  tp->sp = job->sequence_parallel;
  double b = job->micro_batch_size, s = job->seq_len, h = m->hidden, f = m->ffn_hidden;
  double t = job->tensor_parallel, k = m->gated_mlp ? 3 : 2;
  tp->msg = b * s * h * job->bytes_per_element;
  double q = (double)m->heads * m->head_dim;
  double A = ts__cost_attention_flops(m, job->seq_len, job->micro_batch_size) / t;
  double M = 2 * k * b * s * h * f / t;
  double core = job->recompute == TS_RECOMPUTE_SELECTIVE && !m->flash_attention
                    ? 4 * b * s * s * q / t
                    : 0;
  tp->attn[TS_FORWARD] = tp->attn[TS_RECOMPUTE] = A;
  tp->layer[TS_FORWARD] = tp->layer[TS_RECOMPUTE] = A + M;
  tp->attn[TS_BACKWARD] = 2 * A + core;
  tp->layer[TS_BACKWARD] = 2 * (A + M) + core;
  tp->attn[TS_BACKWARD_INPUT] = A + core;
  tp->layer[TS_BACKWARD_INPUT] = A + M + core;
  if (job->tensor_parallel_grid > 1) grid_init(tp, job);
  sync_init(rt, tp, job);
}

void ts__rt_tp_free(ts_rt_t *rt) {
  if (rt->tp) {
    for (int r = 0; r < 2; r++) {
      free(rt->tp->row[r]);
      free(rt->tp->col[r]);
    }
    for (int a = 0; a < 3; a++) free(rt->tp->line[a]);
    free(rt->tp->colg);
    free(rt->tp->depg);
  }
  free(rt->tp);
  rt->tp = NULL;
}

bool ts__rt_tp_splits(const ts_rt_t *rt, ts_kind_t kind) {
  return rt->tp && kind != TS_WEIGHT_GRAD;
}

/* One TP collective of op (kind, v, mb), started and waited for; data
** (TS_BUF_TP) when it is one of the layer's (tp_data), else bytes only. */
static void coll(ts_rt_t *rt, ts_kind_t kind, ts_coll_op_t op, int v, int mb, bool tp_data) {
  rt_tp_t *tp = rt->tp;
  ts_world_t *w = rt->w;
  /* An all-reduce sums the pieces' partials (TS_BUF_TP), the SP
  ** reduce-scatters and all-gathers move the sequence's slices of them;
  ** the pipeline-message gathers carry bytes only. */
  rt_coll_t c = {.op = op, .buf = tp_data ? TS_BUF_TP : TS_BUF_NONE, .vstage = v, .bytes = tp->msg, .g = tp->g,
                 .unit_lo = -1, .unit_hi = -1, .purpose = TS_CP_TP,
                 .group_kind = TS_GROUP_TP, .mb = mb};
  if (tp_data && w->ops->tp_prepare) w->ops->tp_prepare(w->xd, rt->ctx.device, kind, v, mb, op, -1);
  int h = ts__rt_coll_queue(rt, &c);
  ts__rt_coll_wait_at(rt, h, v, mb);
}

/* One bytes-only TP collective of op (v, mb), bytes, started and waited
** for (the vocabulary-parallel ones). */
static void coll_of(ts_rt_t *rt, ts_coll_op_t op, double bytes, int v, int mb) {
  rt_coll_t c = {.op = op, .buf = TS_BUF_NONE, .vstage = v, .bytes = bytes, .g = rt->tp->g,
                 .unit_lo = -1, .unit_hi = -1, .purpose = TS_CP_TP,
                 .group_kind = TS_GROUP_TP, .mb = mb};
  int h = ts__rt_coll_queue(rt, &c);
  ts__rt_coll_wait_at(rt, h, v, mb);
}

/* One end-of-iteration all-reduce of buf's units over g (no micro-batch:
** mb -1), started and waited for. */
static void sync_one(ts_rt_t *rt, ts_coll_buf_t buf, const ts_group_t *g, double bytes) {
  int n_units, v = rt->ctx.local[0];
  ts__rt_units(rt, &n_units);
  rt_coll_t c = {.op = TS_COLL_ALLREDUCE, .buf = buf, .vstage = v, .bytes = bytes, .g = *g,
                 .unit_lo = 0, .unit_hi = n_units, .purpose = TS_CP_TP,
                 .group_kind = TS_GROUP_TP, .mb = -1};
  int h = ts__rt_coll_queue(rt, &c);
  ts__rt_coll_wait_at(rt, h, v, -1);
}

void ts__rt_tp_sync(ts_rt_t *rt) {
  rt_tp_t *tp = rt->tp;
  if (!tp || rt->w->failed) return;
  if (tp->depth > 0) sync_one(rt, TS_BUF_GRADS, &tp->dg, tp->depth);
  if (tp->sync > 0 && !rt->w->failed) sync_one(rt, TS_BUF_TP_GRADS, &tp->sg, tp->sync);
}

/* The vocabulary-parallel collectives (file header) of op (kind, v, mb):
** at its start (at_end false) or its end.  Bytes only. */
static void vocab(ts_rt_t *rt, ts_kind_t kind, int v, int mb, bool at_end) {
  rt_tp_t *tp = rt->tp;
  const ts_job_t *job = rt->w->job;
  int part = rt->w->lay->part[v];
  bool emb = part == 0, head = part == rt->w->cost->n_parts - 1;
  bool fwd = kind == TS_FORWARD, bwd = kind == TS_BACKWARD || kind == TS_BACKWARD_INPUT;
  ts_coll_op_t split = tp->sp ? TS_COLL_REDUCE_SCATTER : TS_COLL_ALLREDUCE;
  if (!at_end && fwd && emb) coll_of(rt, split, tp->msg, v, mb);
  if (!at_end && bwd && head) coll_of(rt, split, tp->msg, v, mb);
  if (at_end && fwd && head) {
    if (tp->sp) coll_of(rt, TS_COLL_ALLGATHER, tp->msg, v, mb);
    double tokens = (double)job->micro_batch_size * job->seq_len;
    for (int i = 0; i < 3; i++) /* max, target logit, sum of exponentials */
      coll_of(rt, TS_COLL_ALLREDUCE, tokens * 4.0, v, mb);
  }
  if (at_end && bwd && emb && tp->sp) coll_of(rt, TS_COLL_ALLGATHER, tp->msg, v, mb);
}

/* One chain of the 2d grid: step l's row (or column) chain of kind r
** (0 broadcast, 1 reduce) of GEMM gm of op (kind, v, mb), bytes each,
** started; returns its handle.  It carries TS_BUF_TP, its block in the
** executor's slot ((bwd 4 + gm) q + l) 4 + 2 row + r (unit_lo), after
** ops->tp_prepare. */
static int chain(ts_rt_t *rt, ts_kind_t kind, int gm, bool row, int r, int l, double bytes, int v,
                 int mb) {
  rt_tp_t *tp = rt->tp;
  ts_world_t *w = rt->w;
  int q = tp->q, me = row ? tp->g.rank % q : tp->g.rank / q;
  bool bwd = kind != TS_FORWARD && kind != TS_RECOMPUTE;
  int slot = ((bwd * 4 + gm) * q + l) * 4 + 2 * row + r;
  ts_group_t g = {.n = q, .rank = ((me - l - r) % q + 2 * q) % q,
                  .dev = (row ? tp->row[r] : tp->col[r]) + l * q};
  rt_coll_t c = {.op = TS_COLL_BROADCAST, .buf = TS_BUF_TP, .vstage = v, .bytes = bytes, .g = g,
                 .unit_lo = slot, .unit_hi = slot + 1, .purpose = TS_CP_TP,
                 .group_kind = TS_GROUP_TP, .mb = mb};
  if (w->ops->tp_prepare) w->ops->tp_prepare(w->xd, rt->ctx.device, kind, v, mb, c.op, slot);
  return ts__rt_coll_queue(rt, &c);
}

/* One ring collective of the 3d cube along line a (0 y, 1 x, 2 z). */
static int line(ts_rt_t *rt, int a, ts_coll_op_t op, double bytes, int v, int mb) {
  rt_tp_t *tp = rt->tp;
  int q = tp->q, r = tp->g.rank;
  int pos[3] = {r % q, r % (q * q) / q, r / (q * q)};
  ts_group_t g = {.n = q, .rank = pos[a], .dev = tp->line[a]};
  rt_coll_t c = {.op = op, .buf = TS_BUF_NONE, .vstage = v, .bytes = bytes, .g = g,
                 .unit_lo = -1, .unit_hi = -1, .purpose = TS_CP_TP,
                 .group_kind = TS_GROUP_TP, .mb = mb};
  return ts__rt_coll_queue(rt, &c);
}

/* The cube traffic of GEMMs g0 and g0 + 1 (file header), as summa. */
static void cube(ts_rt_t *rt, bool fwd, int g0, int v, int mb) {
  rt_tp_t *tp = rt->tp;
  for (int n = 0; n < 2; n++) {
    int g = fwd ? g0 + n : g0 + 1 - n, h;
    const double *x = tp->gemm[g];
    if (fwd) {
      line(rt, 0, TS_COLL_ALLGATHER, x[0], v, mb);
      line(rt, 1, TS_COLL_ALLGATHER, x[1], v, mb);
      h = line(rt, 2, TS_COLL_REDUCE_SCATTER, x[2], v, mb);
    } else {
      line(rt, 2, TS_COLL_ALLGATHER, x[2], v, mb);
      line(rt, 0, TS_COLL_REDUCE_SCATTER, x[0], v, mb);
      h = line(rt, 1, TS_COLL_REDUCE_SCATTER, x[1], v, mb);
    }
    ts__rt_coll_wait_at(rt, h, v, mb);
  }
}

/* The SUMMA traffic of GEMMs g0 and g0 + 1 (forward in that order, the
** backward's in the reverse), waited for after each GEMM's last step. */
static void summa(ts_rt_t *rt, ts_kind_t kind, bool fwd, int g0, int v, int mb) {
  rt_tp_t *tp = rt->tp;
  if (tp->cube) {
    cube(rt, fwd, g0, v, mb);
    return;
  }
  for (int n = 0; n < 2; n++) {
    int g = fwd ? g0 + n : g0 + 1 - n, h = -1;
    double a = tp->gemm[g][0], b = tp->gemm[g][1];
    for (int l = 0; l < tp->q; l++) {
      if (fwd) {
        chain(rt, kind, g, true, 0, l, a, v, mb);
        h = chain(rt, kind, g, false, 0, l, b, v, mb);
      } else {
        chain(rt, kind, g, false, 0, l, b, v, mb); /* dA = dC B^T */
        chain(rt, kind, g, true, 1, l, a, v, mb);
        chain(rt, kind, g, true, 0, l, a, v, mb); /* dB = A^T dC */
        h = chain(rt, kind, g, false, 1, l, b, v, mb);
      }
    }
    ts__rt_coll_wait_at(rt, h, v, mb);
  }
}

/* One compute piece and its event. */
static void piece(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double flops,
                  double seconds) {
  ts_world_t *w = rt->w;
  double t0 = w->ops->now(w->xd);
  w->ops->compute(w->xd, rt->ctx.device, kind, v, mb, flops, seconds);
  ts__rt_push_compute(rt, kind, v, mb, flags, t0, w->ops->now(w->xd));
}

/* 1 when op (kind, v) first all-gathers the pipeline message it received
** (file header). */
static bool gathers_input(const ts_rt_t *rt, ts_kind_t kind, int v) {
  const ts_job_t *job = rt->w->job;
  const ts_layout_t *L = rt->w->lay;
  if (!job->pipeline_scatter_gather || job->sequence_parallel) return false;
  int from = kind == TS_FORWARD ? L->prev[v]
             : kind == TS_BACKWARD || kind == TS_BACKWARD_INPUT ? L->next[v]
                                                                : -1;
  return from >= 0 && L->dev[from] != L->dev[v];
}

void ts__rt_tp_layer(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double flops,
                     double seconds, bool first, bool last) {
  rt_tp_t *tp = rt->tp;
  if (rt->w->failed) return;
  int f0 = flags | (first ? 0 : TS_EVF_CONT), f1 = flags | TS_EVF_CONT;
  int m0 = f0 | TS_EVF_MORE, m1 = f1 | (last ? 0 : TS_EVF_MORE);
  if (kind == TS_WEIGHT_GRAD) {
    piece(rt, kind, v, mb, f0 | (last ? 0 : TS_EVF_MORE), flops, seconds);
    return;
  }
  bool fwd = kind == TS_FORWARD || kind == TS_RECOMPUTE;
  double L = tp->layer[kind], a = tp->attn[kind] / L * (flops < L ? flops : L);
  double p0 = fwd ? a : flops - a; /* the first block: attention forward, MLP backward */
  double s0 = flops > 0 ? seconds * p0 / flops : seconds / 2;
  if (tp->q) { /* 2d, 2.5d, 3d: each piece after its GEMMs' traffic */
    summa(rt, kind, fwd, fwd ? 0 : 2, v, mb);
    piece(rt, kind, v, mb, m0, p0, s0);
    summa(rt, kind, fwd, fwd ? 2 : 0, v, mb);
    piece(rt, kind, v, mb, m1, flops - p0, seconds - s0);
    return;
  }
  if (first) vocab(rt, kind, v, mb, false);
  if (first && gathers_input(rt, kind, v)) coll(rt, kind, TS_COLL_ALLGATHER, v, mb, false);
  if (tp->sp) coll(rt, kind, TS_COLL_ALLGATHER, v, mb, true);
  piece(rt, kind, v, mb, m0, p0, s0);
  if (tp->sp) {
    coll(rt, kind, TS_COLL_REDUCE_SCATTER, v, mb, true);
    coll(rt, kind, TS_COLL_ALLGATHER, v, mb, true);
  } else {
    coll(rt, kind, TS_COLL_ALLREDUCE, v, mb, true);
  }
  piece(rt, kind, v, mb, m1, flops - p0, seconds - s0);
  coll(rt, kind, tp->sp ? TS_COLL_REDUCE_SCATTER : TS_COLL_ALLREDUCE, v, mb, true);
  if (last) vocab(rt, kind, v, mb, true);
}
