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
** The all-reduces carry TS_BUF_TP, the piece's partial, which an executor
** with data sums (the reference executor's ref_tp.c); the scatter / gather
** and SP collectives carry bytes only.
**
** The embedding's and the LM head's vocabulary-parallel all-reduces are
** not modelled.  TP collectives share the device's one communication
** stream with data-parallel ones, in start order.
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
};

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
}

void ts__rt_tp_free(ts_rt_t *rt) {
  free(rt->tp);
  rt->tp = NULL;
}

bool ts__rt_tp_splits(const ts_rt_t *rt, ts_kind_t kind) {
  return rt->tp && kind != TS_WEIGHT_GRAD;
}

/* One TP collective of op (v, mb), started and waited for. */
static void coll(ts_rt_t *rt, ts_coll_op_t op, int v, int mb) {
  rt_tp_t *tp = rt->tp;
  /* An all-reduce sums the pieces' partials (TS_BUF_TP); the scatter /
  ** gather and SP collectives carry bytes only. */
  rt_coll_t c = {.op = op, .buf = op == TS_COLL_ALLREDUCE ? TS_BUF_TP : TS_BUF_NONE, .vstage = v, .bytes = tp->msg, .g = tp->g,
                 .unit_lo = -1, .unit_hi = -1, .purpose = TS_CP_TP,
                 .group_kind = TS_GROUP_TP, .mb = mb};
  int h = ts__rt_coll_queue(rt, &c);
  ts__rt_coll_wait_at(rt, h, v, mb);
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
  if (first && gathers_input(rt, kind, v)) coll(rt, TS_COLL_ALLGATHER, v, mb);
  if (tp->sp) coll(rt, TS_COLL_ALLGATHER, v, mb);
  piece(rt, kind, v, mb, m0, p0, s0);
  if (tp->sp) {
    coll(rt, TS_COLL_REDUCE_SCATTER, v, mb);
    coll(rt, TS_COLL_ALLGATHER, v, mb);
  } else {
    coll(rt, TS_COLL_ALLREDUCE, v, mb);
  }
  piece(rt, kind, v, mb, m1, flops - p0, seconds - s0);
  coll(rt, tp->sp ? TS_COLL_REDUCE_SCATTER : TS_COLL_ALLREDUCE, v, mb);
}
