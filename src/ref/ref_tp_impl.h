/*
** ref_tp_impl.h: the state of tensor parallelism in the reference executor,
** shared by ref_tp.c (the pieces of the TP ops, their stash, the assembly
** of the shards) and ref_tp_sp.c (sequence parallelism: what precedes each
** all-gather, and the gradients of the replicated tensors).  No other file
** includes it.
*/
#ifndef TS_REF_TP_IMPL_H
#define TS_REF_TP_IMPL_H

#include "ref_internal.h"
#include "ref_model_impl.h"

/* What one block keeps between its TP forward and backward: the LayerNorm
** tensors (xhat, rstd) of its rows (all n, or its n / t with SP), the
** rest of its heads' and columns' share; probs NULL under selective
** recompute. */
typedef struct tp_blk {
  double *xhat1, *rstd1, *qkv, *probs, *attn, *xhat2, *rstd2, *hpre, *gelu;
} tp_blk_t;

typedef struct ts__ref_tp_stash {
  int count;
  tp_blk_t blk[];
} tp_stash_t;

struct ts__ref_tp {
  int rank, t;
  int n, d, dl, hl, fl, s, mb; /* tokens, hidden, its shard widths */
  int sp, sel;                 /* sequence parallel, selective recompute */
  int nc;                      /* rows it holds of the residual stream: n / t with SP, else n */
  size_t off;                  /* where its rows start in an n x d buffer (SP: rank nc d) */
  double *buf;                 /* [2 n d] TS_BUF_TP: the partial, or what an all-gather collects */
  size_t buf_n;                /* doubles of buf the next collective carries */
  /* The op in progress (begun 0: none). */
  ts_kind_t kind;
  int v, mb_id, piece, total, first, begun;
  int split;                   /* the op is a split backward's input-gradient half */
  size_t held0;                /* the allocator's bytes when the op began */
  ts_ref_model_t *model;
  tp_stash_t *st;
  double *a, *x1, *ln, *dh, *dattn, *dqkv, *dp; /* scratch */
  double *full;                                 /* [n d] SP: the gathered gradient */
  double *prc, *arc; /* selective: the recomputed probs and attention output */
  tp_stash_t **tab;  /* [n_local M] stashes */
  size_t sz[9];      /* doubles of each tensor of a tp_blk_t (0: not kept) */
  struct tp2d *g2;   /* 2d (ref_tp2d.c); NULL in 1d */
};

/* The parameter (grads 0) or gradient (grads 1) tensors of block l of m. */
static inline block_view_t ts__ref_tp_view(ts_ref_model_t *m, int l, int grads) {
  return ts__ref_block_view(&m->cfg, (grads ? m->grads : m->params) + (size_t)l * m->block_n);
}

/* y[n x d] = a + b + bias (row-broadcast); y may alias a. */
static inline void ts__ref_tp_add_bias(double *y, const double *a, const double *b,
                                       const double *bias, int n, int d) {
  for (size_t i = 0; i < (size_t)n; i++)
    for (size_t j = 0; j < (size_t)d; j++) y[i * d + j] = a[i * d + j] + b[i * d + j] + bias[j];
}

/* ---- ref_tp.c -------------------------------------------------------------- */

/* Starts op (kind, v, mb) on dv (the op's model, input or output gradient,
** stash).  Returns NULL or an error text. */
const char *ts__ref_tp_begin(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb);
/* Begins op (kind, v, mb) on dv unless it is the op in progress; else (a
** failed begin, or another op still in progress) reports the run fatal,
** naming the op after `what` ("" or e.g. "an all-gather of "), and
** returns -1. */
int ts__ref_tp_enter(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb, const char *what);
/* The block of piece k of the op in progress, and its model layer *l. */
tp_blk_t *ts__ref_tp_block(ref_tp_t *p, int k, int *l);
/* Forward piece k's LayerNorm (LN1 for k even, after the previous layer's
** residual; LN2 for k odd, after the attention's) on the device's rows,
** its output into out. */
void ts__ref_tp_fwd_ln(ref_tp_t *p, int k, tp_blk_t *b, int l, double *out);
/* Backward piece k's LayerNorm backward (k even, k > 0: LN1 of the layer
** above, whose block it frees; k odd: LN2) on the device's rows from the
** reduced partial in buf; returns the gradient of the residual stream
** there (p->a or p->x1) and the LayerNorm whose output the piece's
** column-split GEMM needs rebuilt: its xhat in *xhat, its gain and bias
** in *g, *bias. */
double *ts__ref_tp_bwd_ln(ref_x_t *x, ref_dev_t *dv, int k, tp_blk_t *b, int l,
                          const double **xhat, const double **g, const double **bias);

/* After the input-gradient half of a split backward (ZB-H1): holds in
** dv's allocator the bytes the op released until its weight-gradient op
** frees them (ref_exec.c's wg_hold), as the whole-model path does, so
** that the measured memory follows the split as the simulator's model
** does.  Reports the run fatal when memory runs out. */
void ts__ref_tp_hold_for_wgrad(ref_x_t *x, ref_dev_t *dv);

/* The op's stash of layers blocks, allocated through dv's allocator
** (sizes p->sz).  Returns NULL or an error text. */
const char *ts__ref_tp_new_stash(ref_dev_t *dv, int layers);
/* Frees block b's tensors (or a whole stash, NULL accepted) through mem. */
void ts__ref_tp_blk_free(const ref_tp_t *p, tp_blk_t *b, ts_ref_mem_t *mem);
void ts__ref_tp_stash_free(const ref_tp_t *p, tp_stash_t *st, ts_ref_mem_t *mem);

/* ---- ref_tp2d.c ------------------------------------------------------------ */

/* 2d: sets p's grid, stash sizes and slots (p->rank, t set).  Returns 0
** or EX_OSERR. */
int ts__ref_tp2d_setup(ref_x_t *x, ref_tp_t *p);
void ts__ref_tp2d_free(ref_tp_t *p);
/* 2d: slot's block array and its length in doubles. */
double *ts__ref_tp2d_slot(ref_tp_t *p, int slot, size_t *n);
/* 2d: what precedes chain slot of op (kind, v, mb) (tp_prepare), and the
** compute pieces (x_compute). */
void ts__ref_tp2d_prepare(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb, int slot);
void ts__ref_tp2d_compute(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb);
/* 2d: ts__ref_tp_sync_segs of p's device (layer l of model m). */
int ts__ref_tp2d_sync_segs(ref_tp_t *p, ts_ref_model_t *m, int l, double **seg, size_t *len);
/* 2d: ts__ref_tp_assemble (the ranks' own blocks into g). */
void ts__ref_tp2d_assemble(ref_x_t *x, ts_ref_model_t *g, const int *first, int params);

/* ---- ref_tp_sp.c ----------------------------------------------------------- */

/* Sequence parallelism: fills buf for the collective op of (kind, v, mb)
** that the program is about to start (tp_prepare). */
void ts__ref_tp_sp_prepare(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb,
                           ts_coll_op_t op);
/* Sequence parallelism: the gathered [gradient | LayerNorm output] chunks
** of buf into p->full and p->ln (a backward piece's inputs). */
void ts__ref_tp_sp_unpack(ref_tp_t *p);

#endif /* TS_REF_TP_IMPL_H */
