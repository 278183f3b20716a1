/*
** ref_tp_sp.c: sequence parallelism (Korthikanti et al. 2022) on the
** reference executor's 1D tensor parallelism (ref_tp.c; README "Tensor
** parallelism").
**
** What it models.  With sequence_parallel the runtime (rt_tp.c) runs each
** layer of an op as
**   all-gather [first piece] reduce-scatter all-gather [second piece]
**   reduce-scatter,
** and calls tp_prepare before each of them.  Between the pieces TP rank r
** of t holds the residual stream of its n / t rows only (rows [r n / t,
** (r + 1) n / t) of the n = b s tokens, the slice the ring reduce-scatter
** leaves it): its LayerNorms, residual adds and the row-split GEMMs' bias
** run on those rows and keep their tensors for them, which is what
** divides the LayerNorm part of the stash by t.
** - Forward, before each all-gather: the residual add of the reduced
**   partial (its rows of buf) and the next LayerNorm on its rows, the
**   output into its rows of buf; the all-gather gives every rank the whole
**   LayerNorm output, the column-split GEMM's input.
** - Backward, before each all-gather: the LayerNorm backward of the reduced
**   partial gradient (its rows), then buf is 2 n d doubles, chunk r
**   holding [its rows of the residual gradient | its rows of the rebuilt
**   LayerNorm output]: the all-gather gives every rank the whole output
**   gradient of the piece and the whole input of its column-split GEMM
**   (Megatron re-gathers that input in a collective of its own; the
**   runtime counts one all-gather of b s h e bytes, the reference carries
**   both in it).
** - A reduce-scatter carries the piece's n x d partial.
** The pipeline messages are whole b s h tensors whose other ranks' rows are
** zero; the next stage's rank r reads its rows only.
**
** Replicated gradients: each rank's LayerNorm gradients are those of its
** rows, and so are those of the row-split GEMMs' biases (b_o, b_2), which
** it adds on its rows after the reduce-scatter.  As Megatron's
** _allreduce_layernorm_grads does for the parameters marked
** sequence_parallel, the runtime all-reduces them over the TP group after
** the data-parallel sync and before the optimizer (rt_tp.c
** ts__rt_tp_sync, TS_BUF_TP_GRADS), through ref_coll.c's ring steps over
** the arrays ts__ref_tp_sync_segs names: every rank then holds their
** whole gradients and takes the same optimizer step.
**
** Threading: as ref_tp.c; tp_prepare runs on the device's program thread.
*/
#include <string.h>

#include "ref_kernels.h"
#include "ref_tp_impl.h"

void ts__ref_tp_sp_prepare(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb,
                           ts_coll_op_t op) {
  ref_tp_t *p = dv->tp;
  size_t nd = (size_t)p->n * p->d, c = (size_t)p->nc * p->d;
  p->buf_n = nd;
  if (op != TS_COLL_ALLGATHER) return; /* a reduce-scatter: the piece's partial */
  if (ts__ref_tp_enter(x, dv, kind, v, mb, "an all-gather of ")) return;
  int l;
  tp_blk_t *b = ts__ref_tp_block(p, p->piece, &l);
  if (kind == TS_FORWARD) {
    ts__ref_tp_fwd_ln(p, p->piece, b, l, p->buf + p->off);
    return;
  }
  const double *xhat, *g, *bias;
  const double *grad = ts__ref_tp_bwd_ln(x, dv, p->piece, b, l, &xhat, &g, &bias);
  double *chunk = p->buf + 2 * p->off;
  memcpy(chunk, grad, c * sizeof(double));
  ts__ref_ln_rebuild(xhat, p->nc, p->d, g, bias, chunk + c);
  p->buf_n = 2 * nd;
}

void ts__ref_tp_sp_unpack(ref_tp_t *p) {
  size_t c = (size_t)p->nc * p->d;
  for (size_t r = 0; r < (size_t)p->t; r++) {
    memcpy(p->full + r * c, p->buf + 2 * r * c, c * sizeof(double));
    memcpy(p->ln + r * c, p->buf + 2 * r * c + c, c * sizeof(double));
  }
}

int ts__ref_tp_sync_segs(ref_x_t *x, int d, ts_ref_model_t *m, int l, double **seg,
                         size_t *len) {
  ref_tp_t *p = x->dev[d].tp;
  if (!p) return 0;
  if (p->g2) return ts__ref_tp2d_sync_segs(p, m, l, seg, len);
  if (!p->sp) return 0;
  block_view_t g = ts__ref_tp_view(m, l, 1);
  double *a[] = {g.ln1_g, g.ln1_b, g.ln2_g, g.ln2_b, g.bo, g.b2};
  for (int k = 0; k < 6; k++) {
    seg[k] = a[k];
    len[k] = (size_t)p->d;
  }
  return 6;
}
