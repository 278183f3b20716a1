/*
** ref_model.c: forward and backward of a small GPT-style model in float64,
** the numerical workload of trainsim's CPU reference executor: the blocks'
** math and the stash.  The parameters, the model's construction and the
** accounting allocator are in ref_model_params.c.
**
** What it models: L pre-LayerNorm transformer blocks (causal multi-head
** attention with fused QKV, GELU-tanh MLP, LayerNorm eps 1e-5), no
** embeddings, mean-squared-error loss divided by the number of samples of the
** whole batch.  The executor splits the blocks into pipeline stages and runs
** one micro-batch at a time on threads; because the loss is normalised by the
** full batch, summing micro-batch gradients gives the full-batch gradient,
** equal up to the rounding of the reordered sums inside the matrix products.
**
** Assumptions and choices:
** - Every matrix product goes through GSL's CBLAS (cblas_dgemm), so results
**   are deterministic for one build: the same inputs give the same bits, and
**   a recompute gives bitwise the tensors of the first forward.
** - Attention computes the full s x s score square per head (the causal half
**   above the diagonal is masked to probability 0), which is also what the
**   FLOP count and the stash (probs) assume.
** - The stash is minimal for this formulation (see ts_ref_stash_t in the
**   header): LayerNorm outputs are rebuilt from xhat, gain and bias in the
**   backward, the block input is not kept, the GELU output is kept rather than
**   recomputed.  The forward's per-call workspace is plain malloc and not
**   counted; the backward's gradient buffers are counted while it runs.
** - Selective recompute (TS_REF_KEEP_SELECTIVE) keeps every tensor but
**   probs; the backward recomputes each block's attention core from its
**   kept qkv (bitwise the forward's, counted in the model) right before
**   the core's backward.
** - No globals and no static scratch: each thread owns a model clone and an
**   allocator.  The CBLAS arguments are valid by construction, so its
**   parameter check (cblas_xerbla, which prints and aborts) never fires.
*/
#include "ref_model.h"

#include "ref_kernels.h"
#include "ref_model_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

/* The tensors one block keeps for its backward (all NULL in a block of an
** input-only stash). */
typedef struct ts__ref_block_stash {
  double *xhat1, *rstd1, *qkv, *probs, *attn, *xhat2, *rstd2, *hpre, *gelu;
} ts__ref_block_stash_t;

struct ts_ref_stash {
  int first, count, mb;
  int d, f, heads, seq;      /* shape, copied from the model that made it */
  int full;                  /* every block's tensors present */
  int sel;                   /* selective: the blocks keep no probs */
  double *input;             /* copy of the stage input (input-only stash) */
  size_t held;               /* bytes counted in the allocator now */
  ts__ref_block_stash_t *blk; /* count entries (bookkeeping, not counted) */
};

/* ------------------------------------------------------------------ */
/* Block forward and backward                                          */
/* ------------------------------------------------------------------ */

/* Workspace of one forward call, reused block after block. */
typedef struct fwd_ws {
  double *a, *b;   /* ping-pong block input / output, n x d */
  double *x1, *ln; /* n x d each */
  ts__ref_block_stash_t tmp; /* the stash tensors when they are not kept */
} fwd_ws_t;

/* One block: x -> y (y may alias x), filling t. */
static void block_forward(const ts_ref_model_t *m, int l, int mb, const double *x, double *y,
                          const ts__ref_block_stash_t *t, fwd_ws_t *w) {
  const ts_ref_config_t *c = &m->cfg;
  int d = c->hidden, f = c->ffn, s = c->seq, n = mb * s;
  block_view_t p = ts__ref_block_view(c, m->params + (size_t)l * m->block_n);

  ts__ref_ln_forward(x, n, d, p.ln1_g, p.ln1_b, t->xhat1, t->rstd1, w->ln);
  ts__ref_fill_rows(t->qkv, p.bqkv, n, 3 * (size_t)d);
  ts__ref_gemm(0, 0, n, 3 * d, d, 1.0, w->ln, d, p.wqkv, 3 * d, 1.0, t->qkv, 3 * d);
  ts__ref_attn_forward(t->qkv, mb, s, d, c->heads, t->probs, t->attn);
  ts__ref_fill_rows(w->x1, p.bo, n, d);
  ts__ref_gemm(0, 0, n, d, d, 1.0, t->attn, d, p.wo, d, 1.0, w->x1, d);
  for (size_t i = 0; i < (size_t)n * d; i++) w->x1[i] += x[i];

  ts__ref_ln_forward(w->x1, n, d, p.ln2_g, p.ln2_b, t->xhat2, t->rstd2, w->ln);
  ts__ref_fill_rows(t->hpre, p.b1, n, f);
  ts__ref_gemm(0, 0, n, f, d, 1.0, w->ln, d, p.w1, f, 1.0, t->hpre, f);
  for (size_t i = 0; i < (size_t)n * f; i++) t->gelu[i] = ts__ref_gelu(t->hpre[i]);
  ts__ref_fill_rows(y, p.b2, n, d);
  ts__ref_gemm(0, 0, n, d, f, 1.0, t->gelu, f, p.w2, d, 1.0, y, d);
  for (size_t i = 0; i < (size_t)n * d; i++) y[i] += w->x1[i];
}

/* Workspace of one backward call. */
typedef struct bwd_ws {
  double *dcur, *dx1, *ln, *dln, *dattn; /* n x d each */
  double *dh;                            /* n x f */
  double *dqkv;                          /* n x 3d */
  double *dp;                            /* s x s */
  double *probs;                         /* selective: one block's, recomputed */
} bwd_ws_t;

/* One block backward: dy (in w->dcur) -> dx (back into w->dcur); accumulates
** the block's gradients. */
static void block_backward(ts_ref_model_t *m, int l, int mb, const ts__ref_block_stash_t *t,
                           bwd_ws_t *w) {
  const ts_ref_config_t *c = &m->cfg;
  int d = c->hidden, f = c->ffn, s = c->seq, n = mb * s;
  size_t nd = (size_t)n * d;
  block_view_t p = ts__ref_block_view(c, m->params + (size_t)l * m->block_n);
  block_view_t g = ts__ref_block_view(c, m->grads + (size_t)l * m->block_n);
  const double *dy = w->dcur;
  const double *probs = t->probs;

  /* MLP */
  ts__ref_gemm(1, 0, f, d, n, 1.0, t->gelu, f, dy, d, 1.0, g.w2, d);
  ts__ref_add_colsum(g.b2, dy, n, d);
  ts__ref_gemm(0, 1, n, f, d, 1.0, dy, d, p.w2, d, 0.0, w->dh, f);
  for (size_t i = 0; i < (size_t)n * f; i++) w->dh[i] *= ts__ref_gelu_grad(t->hpre[i]);
  ts__ref_ln_rebuild(t->xhat2, n, d, p.ln2_g, p.ln2_b, w->ln);
  ts__ref_gemm(1, 0, d, f, n, 1.0, w->ln, d, w->dh, f, 1.0, g.w1, f);
  ts__ref_add_colsum(g.b1, w->dh, n, f);
  ts__ref_gemm(0, 1, n, d, f, 1.0, w->dh, f, p.w1, f, 0.0, w->dln, d);
  memcpy(w->dx1, dy, nd * sizeof(double));
  ts__ref_ln_backward(w->dln, t->xhat2, t->rstd2, n, d, p.ln2_g, g.ln2_g, g.ln2_b, w->dx1);

  /* attention */
  ts__ref_gemm(1, 0, d, d, n, 1.0, t->attn, d, w->dx1, d, 1.0, g.wo, d);
  ts__ref_add_colsum(g.bo, w->dx1, n, d);
  ts__ref_gemm(0, 1, n, d, d, 1.0, w->dx1, d, p.wo, d, 0.0, w->dattn, d);
  if (!probs) { /* selective: the core again from the kept Q, K, V (dln is free here) */
    ts__ref_attn_forward(t->qkv, mb, s, d, c->heads, w->probs, w->dln);
    probs = w->probs;
    m->core_recomputes++;
    m->core_mismatches += memcmp(w->dln, t->attn, nd * sizeof(double)) != 0;
  }
  ts__ref_attn_backward(t->qkv, probs, w->dattn, mb, s, d, c->heads, w->dqkv, w->dp);
  ts__ref_ln_rebuild(t->xhat1, n, d, p.ln1_g, p.ln1_b, w->ln);
  ts__ref_gemm(1, 0, d, 3 * d, n, 1.0, w->ln, d, w->dqkv, 3 * d, 1.0, g.wqkv, 3 * d);
  ts__ref_add_colsum(g.bqkv, w->dqkv, n, 3 * (size_t)d);
  ts__ref_gemm(0, 1, n, d, 3 * d, 1.0, w->dqkv, 3 * d, p.wqkv, 3 * d, 0.0, w->dln, d);
  memcpy(w->dcur, w->dx1, nd * sizeof(double));
  ts__ref_ln_backward(w->dln, t->xhat1, t->rstd1, n, d, p.ln1_g, g.ln1_g, g.ln1_b, w->dcur);
}

/* ------------------------------------------------------------------ */
/* Stash                                                               */
/* ------------------------------------------------------------------ */

/* Sizes in doubles of the nine stashed tensors of one block, in
** ts__ref_block_stash_t order. */
static void block_tensor_sizes(const ts_ref_stash_t *st, size_t sz[9]) {
  size_t n = (size_t)st->mb * st->seq, d = (size_t)st->d, f = (size_t)st->f;
  sz[0] = n * d;                                  /* xhat1 */
  sz[1] = n;                                      /* rstd1 */
  sz[2] = 3 * n * d;                              /* qkv */
  sz[3] = (size_t)st->mb * st->heads * st->seq * st->seq; /* probs */
  sz[4] = n * d;                                  /* attn */
  sz[5] = n * d;                                  /* xhat2 */
  sz[6] = n;                                      /* rstd2 */
  sz[7] = n * f;                                  /* hpre */
  sz[8] = n * f;                                  /* gelu */
}

static void block_slots(ts__ref_block_stash_t *t, double **slot[9]) {
  slot[0] = &t->xhat1; slot[1] = &t->rstd1; slot[2] = &t->qkv;
  slot[3] = &t->probs; slot[4] = &t->attn;  slot[5] = &t->xhat2;
  slot[6] = &t->rstd2; slot[7] = &t->hpre;  slot[8] = &t->gelu;
}

/* Frees block i's tensors through mem (no-op for an empty block). */
static void block_release(ts_ref_stash_t *st, int i, ts_ref_mem_t *mem) {
  size_t sz[9];
  double **slot[9];
  block_tensor_sizes(st, sz);
  block_slots(&st->blk[i], slot);
  for (int k = 0; k < 9; k++) {
    if (*slot[k]) {
      ts_ref_mem_free(mem, *slot[k], sz[k] * sizeof(double));
      st->held -= sz[k] * sizeof(double);
      *slot[k] = NULL;
    }
  }
}

/* Allocates every block's tensors through mem; on failure frees what it got
** and returns EX_OSERR. */
static int stash_alloc_blocks(ts_ref_stash_t *st, ts_ref_mem_t *mem) {
  size_t sz[9];
  double **slot[9];
  block_tensor_sizes(st, sz);
  for (int i = 0; i < st->count; i++) {
    block_slots(&st->blk[i], slot);
    for (int k = 0; k < 9; k++) {
      if (k == 3 && st->sel) continue; /* selective: no probs */
      *slot[k] = ts_ref_mem_alloc(mem, sz[k] * sizeof(double));
      if (!*slot[k]) goto out_release;
      st->held += sz[k] * sizeof(double);
    }
  }
  return 0;
out_release:
  for (int i = 0; i < st->count; i++) block_release(st, i, mem);
  return EX_OSERR;
}

void ts_ref_stash_free(ts_ref_stash_t *st, ts_ref_mem_t *mem) {
  if (!st) return;
  for (int i = 0; i < st->count; i++) block_release(st, i, mem);
  if (st->input) {
    size_t bytes = (size_t)st->mb * st->seq * st->d * sizeof(double);
    ts_ref_mem_free(mem, st->input, bytes);
    st->held -= bytes;
  }
  free(st->blk);
  free(st);
}

int ts_ref_stash_is_full(const ts_ref_stash_t *st) { return st ? st->full : 0; }

size_t ts_ref_stash_held_bytes(const ts_ref_stash_t *st) { return st ? st->held : 0; }

/* Frees a forward workspace; accepts a zeroed one. */
static void fwd_ws_free(fwd_ws_t *w) {
  free(w->a);
  free(w->b);
  free(w->x1);
  free(w->ln);
  double **slot[9];
  block_slots(&w->tmp, slot);
  for (int k = 0; k < 9; k++) free(*slot[k]);
}

/* Allocates the forward workspace; with_tmp adds one block's worth of stash
** tensors for a forward that keeps nothing. */
static int fwd_ws_alloc(fwd_ws_t *w, const ts_ref_stash_t *st, int with_tmp) {
  size_t nd = (size_t)st->mb * st->seq * st->d;
  memset(w, 0, sizeof *w);
  w->a = malloc(nd * sizeof(double));
  w->b = malloc(nd * sizeof(double));
  w->x1 = malloc(nd * sizeof(double));
  w->ln = malloc(nd * sizeof(double));
  if (!w->a || !w->b || !w->x1 || !w->ln) goto out_free;
  if (!with_tmp && st->sel) { /* the probs a selective stash does not keep */
    size_t sz[9];
    block_tensor_sizes(st, sz);
    if (!(w->tmp.probs = malloc(sz[3] * sizeof(double)))) goto out_free;
  } else if (with_tmp) {
    size_t sz[9];
    double **slot[9];
    block_tensor_sizes(st, sz);
    block_slots(&w->tmp, slot);
    for (int k = 0; k < 9; k++)
      if (!(*slot[k] = malloc(sz[k] * sizeof(double)))) goto out_free;
  }
  return 0;
out_free:
  fwd_ws_free(w);
  return EX_OSERR;
}

/* Runs the stash's blocks on x into y; keeps tensors in st->blk when
** st->full, else in the workspace's tmp tensors. */
static void run_blocks(const ts_ref_model_t *m, const ts_ref_stash_t *st, const double *x,
                       double *y, fwd_ws_t *w) {
  size_t nd = (size_t)st->mb * st->seq * st->d;
  memcpy(w->a, x, nd * sizeof(double));
  for (int i = 0; i < st->count; i++) {
    ts__ref_block_stash_t sel = st->blk[i];
    if (st->full && st->sel) sel.probs = w->tmp.probs;
    const ts__ref_block_stash_t *t = !st->full ? &w->tmp : st->sel ? &sel : &st->blk[i];
    block_forward(m, st->first + i, st->mb, w->a, w->b, t, w);
    double *tmp = w->a;
    w->a = w->b;
    w->b = tmp;
  }
  if (y) memcpy(y, w->a, nd * sizeof(double));
}

ts_ref_stash_t *ts_ref_forward(ts_ref_model_t *m, int first, int count, int mb_samples,
                               const double *x, double *y, int keep, ts_ref_mem_t *mem) {
  if (!m || !x || !y || first < 0 || count <= 0 || first > m->cfg.layers - count ||
      mb_samples <= 0 || mb_samples > INT_MAX / m->cfg.seq)
    return NULL;
  for (int l = first; l < first + count; l++)
    if (ts_ref_is_moe_layer(&m->cfg, l)) return NULL; /* MoE blocks: ref_moe_layer.h */
  ts_ref_stash_t *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  st->first = first;
  st->count = count;
  st->mb = mb_samples;
  st->d = m->cfg.hidden;
  st->f = m->cfg.ffn;
  st->heads = m->cfg.heads;
  st->seq = m->cfg.seq;
  st->full = keep != TS_REF_KEEP_INPUT;
  st->sel = keep == TS_REF_KEEP_SELECTIVE;
  st->blk = calloc((size_t)count, sizeof *st->blk);
  fwd_ws_t w;
  if (!st->blk || fwd_ws_alloc(&w, st, !keep)) goto out_free_stash;
  if (keep) {
    if (stash_alloc_blocks(st, mem)) goto out_free_ws;
  } else {
    size_t bytes = ts_ref_stash_input_bytes(&m->cfg, mb_samples);
    if (!(st->input = ts_ref_mem_alloc(mem, bytes))) goto out_free_ws;
    st->held = bytes;
    memcpy(st->input, x, bytes);
  }
  run_blocks(m, st, x, y, &w);
  fwd_ws_free(&w);
  return st;
out_free_ws:
  fwd_ws_free(&w);
out_free_stash:
  ts_ref_stash_free(st, mem);
  return NULL;
}

int ts_ref_recompute(ts_ref_model_t *m, ts_ref_stash_t *st, ts_ref_mem_t *mem) {
  if (!m || !st || st->full) return 0;
  fwd_ws_t w;
  if (fwd_ws_alloc(&w, st, 0)) return EX_OSERR;
  if (stash_alloc_blocks(st, mem)) {
    fwd_ws_free(&w);
    return EX_OSERR;
  }
  st->full = 1;
  run_blocks(m, st, st->input, NULL, &w);
  fwd_ws_free(&w);
  return 0; /* the input copy stays until the stash is freed */
}

/* Bytes of one block's probs (ts_ref_core_bytes). */
static size_t core_bytes(const ts_ref_stash_t *st) {
  return (size_t)st->mb * st->heads * st->seq * st->seq * sizeof(double);
}

/* Frees a backward workspace through mem (sizes as bwd_ws_alloc). */
static void bwd_ws_free(bwd_ws_t *w, const ts_ref_stash_t *st, ts_ref_mem_t *mem) {
  size_t nd = (size_t)st->mb * st->seq * st->d, nf = (size_t)st->mb * st->seq * st->f;
  double *const nds[] = {w->dcur, w->dx1, w->ln, w->dln, w->dattn};
  for (int k = 0; k < 5; k++) ts_ref_mem_free(mem, nds[k], nd * sizeof(double));
  ts_ref_mem_free(mem, w->dh, nf * sizeof(double));
  ts_ref_mem_free(mem, w->dqkv, 3 * nd * sizeof(double));
  ts_ref_mem_free(mem, w->dp, (size_t)st->seq * st->seq * sizeof(double));
  if (st->sel) ts_ref_mem_free(mem, w->probs, core_bytes(st));
  memset(w, 0, sizeof *w);
}

/* Allocates the backward's gradient buffers through mem: exactly
** ts_ref_backward_work_bytes, plus ts_ref_core_bytes for a selective stash.  EX_OSERR (nothing left counted) on failure. */
static int bwd_ws_alloc(bwd_ws_t *w, const ts_ref_stash_t *st, ts_ref_mem_t *mem) {
  size_t nd = (size_t)st->mb * st->seq * st->d, nf = (size_t)st->mb * st->seq * st->f;
  memset(w, 0, sizeof *w);
  double **const nds[] = {&w->dcur, &w->dx1, &w->ln, &w->dln, &w->dattn};
  int ok = 1;
  for (int k = 0; k < 5; k++) ok &= (*nds[k] = ts_ref_mem_alloc(mem, nd * sizeof(double))) != NULL;
  ok &= (w->dh = ts_ref_mem_alloc(mem, nf * sizeof(double))) != NULL;
  ok &= (w->dqkv = ts_ref_mem_alloc(mem, 3 * nd * sizeof(double))) != NULL;
  ok &= (w->dp = ts_ref_mem_alloc(mem, (size_t)st->seq * st->seq * sizeof(double))) != NULL;
  if (st->sel) ok &= (w->probs = ts_ref_mem_alloc(mem, core_bytes(st))) != NULL;
  if (ok) return 0;
  bwd_ws_free(w, st, mem);
  return EX_OSERR;
}

int ts_ref_backward(ts_ref_model_t *m, ts_ref_stash_t *st, const double *dy, double *dx,
                    ts_ref_mem_t *mem) {
  if (!m || !st || !dy) return EX_USAGE;
  size_t n = (size_t)st->mb * st->seq, d = (size_t)st->d;
  bwd_ws_t w;
  if (bwd_ws_alloc(&w, st, mem)) return EX_OSERR;
  if (!st->full && ts_ref_recompute(m, st, mem)) {
    bwd_ws_free(&w, st, mem);
    return EX_OSERR;
  }
  memcpy(w.dcur, dy, n * d * sizeof(double));
  for (int i = st->count - 1; i >= 0; i--) {
    block_backward(m, st->first + i, st->mb, &st->blk[i], &w);
    block_release(st, i, mem);
  }
  if (dx) memcpy(dx, w.dcur, n * d * sizeof(double));
  bwd_ws_free(&w, st, mem);
  ts_ref_stash_free(st, mem);
  return 0;
}

double ts_ref_loss(const double *y, const double *t, size_t n, double n_total, double *dy) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    double e = y[i] - t[i];
    sum += e * e;
    if (dy) dy[i] = e / n_total;
  }
  return 0.5 * sum / n_total;
}
