/*
** ref_tp2d.c: 2D tensor parallelism (Optimus, Xu et al. 2021; SUMMA) on
** the reference executor (README "Tensor parallelism"): real block GEMMs
** over the row and column broadcasts and reduces that rt_tp.c issues.
**
** What it models.  The t = q^2 ranks form a q x q grid, rank = i q + j.
** Every activation [n x h] of a micro-batch is q x q blocked: row block i
** is samples [i mb / q, (i + 1) mb / q) (so the attention core of a block
** is local), column block j the j-th h / q columns; every weight [k x n']
** is blocked likewise, W_qkv's column block j being the Q, K and V columns
** of heads [j H / q, (j + 1) H / q).  Device (i, j) holds the blocks (i,
** j).  Each GEMM C = A B of a layer (QKV, W_o, W_1, W_2) is SUMMA: in its
** forward, step l broadcasts A_il along row i and B_lj along column j, and
** C_ij = sum_l A_il B_lj; its backward, step l: B_lj down the column,
** dC_ij B_lj^T reduced along the row to (i, l) (dA_il), A_il along the row,
** A_il^T dC_ij reduced down the column to (l, j) (dB_lj).  Each chain is a
** slot of blocks (rt_tp.c numbers them); its roots' blocks are placed when
** the program starts the GEMM (tp_prepare of its first chain: the previous
** GEMM is done by then), the partials of a reduce (and the dA a broadcast
** carries, below) on the stream at the chain's first step (they need the
** blocks that an earlier chain of the same GEMM brought).
**
** LayerNorm needs whole rows, which no runtime collective gives: in the
** forward the broadcast of A for the QKV and W_1 GEMMs carries the
** LayerNorm's input block (the same bytes), so that after the q steps every
** member of row i holds row block i whole and runs the LayerNorm on it (as
** 1D runs it replicated); in the backward the broadcast of A of those
** GEMMs carries [xhat_il | dA_il] (twice the runtime's bytes), so that
** every member of the row can run the LayerNorm backward on whole rows.
** The gradients: dW blocks at the column reduces' roots; on every device
** (i, j) the biases' column blocks j and the LayerNorms' gradients from
** row block i's rows (the members of a grid row compute the same values),
** a share that the runtime's sync all-reduce over grid column j sums
** before the optimizer (rt_tp.c ts__rt_tp_sync, TS_BUF_TP_GRADS over the
** arrays ts__ref_tp2d_sync_segs names), so that every device holds the
** whole gradients of its bias blocks and of the LayerNorms and takes the
** same step as one device would.  ts__ref_tp2d_assemble takes each
** rank's own blocks.
**
** Stash per block (ts_ref_tp_stash_bytes, split 2): every tensor's block,
** n / q^2 x its width / q ... / q^2, but rstd1 and rstd2 of the n / q rows
** of its row block.
**
** Threading: the program thread places the roots' blocks and computes the
** products after each GEMM's wait; the stream thread fills the reduces'
** partials while its chains run; the program waits for a GEMM's last chain
** before it touches the slots again.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_kernels.h"
#include "ref_tp_impl.h"

struct tp2d {
  int q, i, j;
  int nr, mq, hq, dq, fq; /* rows, samples, heads per block; d / q, f / q */
  int K[4], N[4];         /* GEMM g: A [n x K], B [K x N] */
  size_t S;               /* doubles per slot */
  double *slot;           /* [32 q][S] */
  int *done;              /* [32 q] the collective whose partial a slot holds (stream) */
  int layer;              /* the model layer of the GEMMs in flight */
  double *dC[4];          /* backward: each GEMM's output gradient block */
  double *sa;             /* stream scratch: a rebuilt A block */
  double *row, *row2, *dx; /* program scratch: whole rows [nr x d] */
  double *c;              /* [nr x max N / q] a product */
};

#define view ts__ref_tp_view

/* Slot (bwd, g, l, c): c 0 B's broadcast, 1 dB's reduce, 2 A's broadcast,
** 3 dA's reduce (rt_tp.c's numbering). */
static double *slot_at(const struct tp2d *G, int bwd, int g, int l, int c) {
  return G->slot + (size_t)(((bwd * 4 + g) * G->q + l) * 4 + c) * G->S;
}

static size_t slot_len(const struct tp2d *G, int bwd, int g, int c) {
  size_t kq = (size_t)G->K[g] / G->q, nq = (size_t)G->N[g] / G->q, nr = (size_t)G->nr;
  if (c < 2) return kq * nq;
  return nr * kq * (c == 2 && bwd && (g == 0 || g == 2) ? 2 : 1);
}

int ts__ref_tp2d_setup(ref_x_t *x, ref_tp_t *p) {
  const ts_ref_config_t *c = &x->cfg;
  int q = x->job->tensor_parallel_grid;
  struct tp2d *G = p->g2 = calloc(1, sizeof *G);
  if (!G) return EX_OSERR;
  int d = c->hidden, f = c->ffn;
  *G = (struct tp2d){.q = q, .i = p->rank / q, .j = p->rank % q, .nr = p->n / q,
                     .mq = p->mb / q, .hq = c->heads / q, .dq = d / q, .fq = f / q,
                     .K = {d, d, d, f}, .N = {3 * d, d, f, d}, .layer = -1};
  for (int bwd = 0; bwd < 2; bwd++)
    for (int g = 0; g < 4; g++)
      for (int k = 0; k < 4; k++)
        if (slot_len(G, bwd, g, k) > G->S) G->S = slot_len(G, bwd, g, k);
  size_t nr = (size_t)G->nr, w = (size_t)(f > 3 * d ? f : 3 * d) / q;
  G->slot = calloc((size_t)32 * q * G->S, sizeof(double));
  G->done = malloc((size_t)32 * q * sizeof(int));
  for (int g = 0; g < 4; g++) G->dC[g] = malloc(nr * w * sizeof(double));
  G->sa = malloc(nr * (size_t)(f > d ? f : d) * sizeof(double));
  G->row = malloc(nr * d * sizeof(double));
  G->row2 = malloc(nr * d * sizeof(double));
  G->dx = malloc(nr * d * sizeof(double));
  G->c = malloc(nr * w * sizeof(double));
  if (!G->slot || !G->done || !G->dC[0] || !G->dC[1] || !G->dC[2] || !G->dC[3] || !G->sa ||
      !G->row || !G->row2 || !G->dx || !G->c)
    return EX_OSERR;
  for (int k = 0; k < 32 * q; k++) G->done[k] = -1;
  /* The stash: blocks of every tensor, the rstd of its row block's rows. */
  size_t nd = nr * G->dq, nf = nr * G->fq;
  size_t sz[9] = {nd, nr, 3 * nd, p->sel ? 0 : (size_t)G->mq * G->hq * p->s * p->s,
                  nd, nd, nr, nf, nf};
  memcpy(p->sz, sz, sizeof sz);
  return 0;
}

void ts__ref_tp2d_free(ref_tp_t *p) {
  struct tp2d *G = p->g2;
  if (!G) return;
  free(G->slot);
  free(G->done);
  for (int g = 0; g < 4; g++) free(G->dC[g]);
  free(G->sa);
  free(G->row);
  free(G->row2);
  free(G->dx);
  free(G->c);
  free(G);
  p->g2 = NULL;
}

double *ts__ref_tp2d_slot(ref_tp_t *p, int slot, size_t *n) {
  struct tp2d *G = p->g2;
  int c = slot % 4, l = slot / 4 % G->q, g = slot / 4 / G->q % 4, bwd = slot / 4 / G->q / 4;
  *n = slot_len(G, bwd, g, c);
  return slot_at(G, bwd, g, l, c);
}

int ts__ref_tp2d_reduces(ref_x_t *x, int device, int slot) {
  ref_tp_t *p = x->dev[device].tp;
  return p && p->g2 && slot >= 0 && slot % 2 == 1;
}

/* ---- blocks ----------------------------------------------------------------- */

/* dst[rows x cols] (leading dimension ldd) = src block at (r0, c0) (ldd
** src ld); mode 1 adds dst into the block instead. */
static void blk(double *dst, int ldd, double *src, int ld, int r0, int c0, int rows, int cols,
                int add) {
  for (size_t r = 0; r < (size_t)rows; r++) {
    double *s = src + (r0 + r) * (size_t)ld + c0, *t = dst + r * (size_t)ldd;
    for (size_t k = 0; k < (size_t)cols; k++)
      if (add)
        s[k] += t[k];
      else
        t[k] = s[k];
  }
}

/* The weight (or, add 1, its gradient += buf) block (r, c) of GEMM g of
** block l: [K / q x N / q]; W_qkv's column block c is heads c's Q, K, V. */
static void wblock(ref_tp_t *p, int g, int l, int r, int c, double *buf, int add) {
  struct tp2d *G = p->g2;
  block_view_t w = view(p->model, l, add);
  int d = p->d, kq = G->K[g] / G->q, nq = G->N[g] / G->q;
  double *W[4] = {w.wqkv, w.wo, w.w1, w.w2};
  if (g == 0) {
    for (int k = 0; k < 3; k++)
      blk(buf + k * G->dq, nq, W[0], 3 * d, r * kq, k * d + c * G->dq, kq, G->dq, add);
    return;
  }
  blk(buf, nq, W[g], G->N[g], r * kq, c * nq, kq, nq, add);
}

/* The bias's column block j of GEMM g: into out (add 0) or += colsum of
** dC [nr x N / q] into the gradient (add 1). */
static void bias(ref_tp_t *p, int g, int l, const double *dC, double *out, int add) {
  struct tp2d *G = p->g2;
  block_view_t w = view(p->model, l, add);
  double *b[4] = {w.bqkv, w.bo, w.b1, w.b2};
  int nq = G->N[g] / G->q;
  for (int k = 0; k < (g == 0 ? 3 : 1); k++) {
    double *bb = b[g] + (g == 0 ? (size_t)k * p->d + (size_t)G->j * G->dq : (size_t)G->j * nq);
    int w0 = g == 0 ? G->dq : nq, o = g == 0 ? k * G->dq : 0;
    for (int r = 0; r < G->nr; r++)
      for (int c = 0; c < w0; c++)
        if (add)
          bb[c] += dC[(size_t)r * nq + o + c];
        else
          out[(size_t)r * nq + o + c] = bb[c];
  }
}

/* C = bias + sum_l A_l B_l over GEMM g's forward slots (bias NULL: none). */
static void product(ref_tp_t *p, int g, int l, double *C, int with_bias, const double *rowA) {
  struct tp2d *G = p->g2;
  int kq = G->K[g] / G->q, nq = G->N[g] / G->q;
  if (with_bias) bias(p, g, l, NULL, C, 0);
  for (int s = 0; s < G->q; s++) {
    const double *A = rowA ? rowA + (size_t)s * kq : slot_at(G, 0, g, s, 2);
    ts__ref_gemm(0, 0, G->nr, nq, kq, 1.0, A, rowA ? p->d : kq, slot_at(G, 0, g, s, 0), nq,
                 with_bias || s ? 1.0 : 0.0, C, nq);
  }
}

/* The whole rows of row block i from the q blocks of GEMM g's A slots
** (half 1: their second halves, backward) into row [nr x K]. */
static void rows_of(ref_tp_t *p, int bwd, int g, int half, double *row) {
  struct tp2d *G = p->g2;
  int kq = G->K[g] / G->q;
  for (int s = 0; s < G->q; s++)
    blk(row + (size_t)s * kq, p->d, slot_at(G, bwd, g, s, 2) + (size_t)half * G->nr * kq, kq, 0,
        0, G->nr, kq, 0);
}

/* Copies block (i, j) of G's grid out of a [nr x d] row into dst [nr x dq]. */
static void own_cols(const ref_tp_t *p, const double *row, double *dst) {
  const struct tp2d *G = p->g2;
  for (size_t r = 0; r < (size_t)G->nr; r++)
    memcpy(dst + r * G->dq, row + r * p->d + (size_t)G->j * G->dq, (size_t)G->dq * sizeof(double));
}

/* The LayerNorm (ln 1 or 2) of the whole rows in A's slots of GEMM g:
** keeps its block of xhat and the rows' rstd, its output in G->dx. */
static void ln_rows(ref_tp_t *p, int g, int l, int ln, double *xhat, double *rstd) {
  struct tp2d *G = p->g2;
  block_view_t w = view(p->model, l, 0);
  rows_of(p, 0, g, 0, G->row);
  ts__ref_ln_forward(G->row, G->nr, p->d, ln == 1 ? w.ln1_g : w.ln2_g, ln == 1 ? w.ln1_b : w.ln2_b,
                     G->row2, rstd, G->dx);
  own_cols(p, G->row2, xhat);
}

/* The LayerNorm backward (ln 1 or 2) of the whole rows that GEMM g's
** backward broadcasts brought ([xhat | dA] blocks): dst = res + its block
** of the input gradient; the gain and bias gradients of the rows. */
static void ln_rows_bwd(ref_tp_t *p, int g, int l, int ln, const double *rstd, const double *res,
                        double *dst) {
  struct tp2d *G = p->g2;
  block_view_t w = view(p->model, l, 0), gr = view(p->model, l, 1);
  rows_of(p, 1, g, 0, G->row);
  rows_of(p, 1, g, 1, G->row2);
  memset(G->dx, 0, (size_t)G->nr * p->d * sizeof(double));
  double *dg = ln == 1 ? gr.ln1_g : gr.ln2_g, *db = ln == 1 ? gr.ln1_b : gr.ln2_b;
  ts__ref_ln_backward(G->row2, G->row, rstd, G->nr, p->d, ln == 1 ? w.ln1_g : w.ln2_g, dg, db,
                      G->dx);
  own_cols(p, G->dx, dst);
  for (size_t k = 0; k < (size_t)G->nr * G->dq; k++) dst[k] += res[k];
}

/* ---- the op ------------------------------------------------------------------ */

static const char *begin(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb) {
  ref_tp_t *p = dv->tp;
  struct tp2d *G = p->g2;
  const char *e = ts__ref_tp_begin(x, dv, kind, v, mb); /* p->a: the whole n x d */
  if (e) return e;
  blk(G->c, G->dq, p->a, p->d, G->i * G->nr, G->j * G->dq, G->nr, G->dq, 0);
  memcpy(p->a, G->c, (size_t)G->nr * G->dq * sizeof(double));
  return NULL;
}

/* Roots' blocks of GEMM g: A (its block a) at step j, B at step i. */
static void roots(ref_tp_t *p, int bwd, int g, int l, const double *a) {
  struct tp2d *G = p->g2;
  memcpy(slot_at(G, bwd, g, G->j, 2), a, (size_t)G->nr * (G->K[g] / G->q) * sizeof(double));
  wblock(p, g, l, G->i, G->j, slot_at(G, bwd, g, G->i, 0), 0);
}

static void fwd_gemm_start(ref_tp_t *p, int g, int l, tp_blk_t *b) {
  struct tp2d *G = p->g2;
  if (g == 0) roots(p, 0, 0, l, p->a); /* LN1's input: the row's members normalise it whole */
  if (g == 1) {
    ln_rows(p, 0, l, 1, b->xhat1, b->rstd1);
    product(p, 0, l, b->qkv, 1, G->dx);
    ts__ref_attn_forward(b->qkv, G->mq, p->s, G->dq, G->hq, b->probs ? b->probs : p->prc, b->attn);
    roots(p, 0, 1, l, b->attn);
  }
  if (g == 2) roots(p, 0, 2, l, p->x1);
  if (g == 3) {
    ln_rows(p, 2, l, 2, b->xhat2, b->rstd2);
    product(p, 2, l, b->hpre, 1, G->dx);
    for (size_t k = 0; k < (size_t)G->nr * G->fq; k++) b->gelu[k] = ts__ref_gelu(b->hpre[k]);
    roots(p, 0, 3, l, b->gelu);
  }
}

static void bwd_gemm_start(ref_tp_t *p, int g, int l, tp_blk_t *b) {
  struct tp2d *G = p->g2;
  size_t nd = (size_t)G->nr * G->dq;
  if (g == 3) memcpy(G->dC[3], p->a, nd * sizeof(double));
  if (g == 2) {
    wblock(p, 3, l, G->i, G->j, slot_at(G, 1, 3, G->i, 1), 1); /* dW_2 */
    const double *dgelu = slot_at(G, 1, 3, G->j, 3);
    for (size_t k = 0; k < (size_t)G->nr * G->fq; k++)
      G->dC[2][k] = dgelu[k] * ts__ref_gelu_grad(b->hpre[k]);
  }
  if (g == 1) memcpy(G->dC[1], p->x1, nd * sizeof(double));
  if (g == 0) {
    wblock(p, 1, l, G->i, G->j, slot_at(G, 1, 1, G->i, 1), 1); /* dW_o */
    const double *probs = b->probs;
    if (!probs) { /* selective: its block's core again from the kept Q, K, V */
      ts__ref_attn_forward(b->qkv, G->mq, p->s, G->dq, G->hq, p->prc, p->arc);
      probs = p->prc;
      p->model->core_recomputes++;
      p->model->core_mismatches += memcmp(p->arc, b->attn, nd * sizeof(double)) != 0;
    }
    ts__ref_attn_backward(b->qkv, probs, slot_at(G, 1, 1, G->j, 3), G->mq, p->s, G->dq, G->hq,
                          G->dC[0], p->dp);
  }
  bias(p, g, l, G->dC[g], NULL, 1);
  const double *a[4] = {b->xhat1, b->attn, b->xhat2, b->gelu};
  roots(p, 1, g, l, a[g]);
}

void ts__ref_tp2d_prepare(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb, int slot) {
  ref_tp_t *p = dv->tp;
  struct tp2d *G = p->g2;
  int c = slot % 4, l = slot / 4 % G->q, g = slot / 4 / G->q % 4, bwd = slot / 4 / G->q / 4;
  if (slot < 0 || l != 0 || c != (bwd ? 0 : 2)) return; /* only a GEMM's first chain */
  const char *e = NULL;
  if (!p->begun)
    e = begin(x, dv, kind, v, mb);
  else if (p->kind != kind || p->v != v || p->mb_id != mb)
    e = "it began before the pieces of the previous op ended";
  if (e) {
    ts__ref_fatal(x, EX_SOFTWARE, "reference executor: device %d: %s of stage %d micro-batch %d: %s",
                  dv->id, ts_kind_name(kind), v, mb, e);
    return;
  }
  int lm;
  tp_blk_t *b = ts__ref_tp_block(p, p->piece, &lm);
  G->layer = lm;
  (bwd ? bwd_gemm_start : fwd_gemm_start)(p, g, lm, b);
}

/* Ends the op after its last piece: the forward's output and stash, the
** backward's input gradient (its block of them, the rest zero). */
static void finish(ref_x_t *x, ref_dev_t *dv) {
  ref_tp_t *p = dv->tp;
  struct tp2d *G = p->g2;
  int v = p->v, mb = p->mb_id;
  p->piece = p->begun = 0;
  double *out = calloc((size_t)p->n * p->d, sizeof(double));
  if (!out) {
    ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory", dv->id);
    return;
  }
  blk(p->a, G->dq, out, p->d, G->i * G->nr, G->j * G->dq, G->nr, G->dq, 1);
  if (p->kind == TS_FORWARD) {
    p->tab[ts__ref_cell(x, v, mb)] = p->st;
    p->st = NULL;
    dv->out[ts__ref_slot_cell(x, dv, SLOT_ACT, v, mb)] = out;
    ts__ref_versions_after(x, dv, v, mb, 0);
    return;
  }
  ts__ref_tp_stash_free(p, p->st, &dv->mem);
  p->st = NULL;
  ts__ref_tp_hold_for_wgrad(x, dv);
  if (x->lay->prev[v] >= 0)
    dv->out[ts__ref_slot_cell(x, dv, SLOT_GRAD, v, mb)] = out;
  else
    free(out);
  ts__ref_versions_after(x, dv, v, mb, 1);
}

void ts__ref_tp2d_compute(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb) {
  ref_tp_t *p = dv->tp;
  struct tp2d *G = p->g2;
  if (!p->begun || p->kind != kind || p->v != v || p->mb_id != mb) {
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: %s of stage %d micro-batch %d: a 2d piece "
                  "without its GEMMs' traffic",
                  dv->id, ts_kind_name(kind), v, mb);
    return;
  }
  int k = p->piece++, l;
  tp_blk_t *b = ts__ref_tp_block(p, k, &l);
  size_t nd = (size_t)G->nr * G->dq;
  if (kind == TS_FORWARD) { /* after W_o (k even) or W_2 (k odd): the residual */
    product(p, k % 2 ? 3 : 1, l, G->c, 1, NULL);
    double *dst = k % 2 ? p->a : p->x1;
    const double *res = k % 2 ? p->x1 : p->a;
    for (size_t i = 0; i < nd; i++) dst[i] = res[i] + G->c[i];
  } else if (k % 2 == 0) { /* after W_1: dW_1, LN2's backward */
    wblock(p, 2, l, G->i, G->j, slot_at(G, 1, 2, G->i, 1), 1);
    ln_rows_bwd(p, 2, l, 2, b->rstd2, p->a, p->x1);
  } else { /* after W_qkv: dW_qkv, LN1's backward; the layer is done */
    wblock(p, 0, l, G->i, G->j, slot_at(G, 1, 0, G->i, 1), 1);
    ln_rows_bwd(p, 0, l, 1, b->rstd1, p->x1, p->a);
    ts__ref_tp_blk_free(p, b, &dv->mem);
  }
  if (p->piece == p->total) finish(x, dv);
}

/* ---- the stream's side --------------------------------------------------------- */

void ts__ref_tp2d_touch(ref_x_t *x, int device, const ts_coll_step_t *st) {
  ref_tp_t *p = x->dev[device].tp;
  struct tp2d *G = p ? p->g2 : NULL;
  int slot = st->unit_lo;
  if (!G || slot < 0 || atomic_load(&x->fatal)) return;
  int c = slot % 4, l = slot / 4 % G->q, g = slot / 4 / G->q % 4, bwd = slot / 4 / G->q / 4;
  if (!bwd || c == 0 || G->done[slot] == st->id) return;
  G->done[slot] = st->id;
  int kq = G->K[g] / G->q, nq = G->N[g] / G->q;
  double *out = slot_at(G, 1, g, l, c);
  if (c == 3) { /* dA_il's partial: dC_ij B_lj^T */
    ts__ref_gemm(0, 1, G->nr, kq, nq, 1.0, G->dC[g], nq, slot_at(G, 1, g, l, 0), nq, 0.0, out, kq);
    return;
  }
  const double *A = slot_at(G, 1, g, l, 2);
  if (c == 2) { /* the root's [xhat | dA]: the dA its reduce just gave it */
    if (G->j == l && (g == 0 || g == 2))
      memcpy(out + (size_t)G->nr * kq, slot_at(G, 1, g, l, 3), (size_t)G->nr * kq * sizeof(double));
    return;
  }
  if (g == 0 || g == 2) { /* A is the LayerNorm's output, rebuilt from the xhat broadcast */
    block_view_t w = view(p->model, G->layer, 0);
    const double *gn = g ? w.ln2_g : w.ln1_g, *bn = g ? w.ln2_b : w.ln1_b;
    ts__ref_ln_rebuild(A, G->nr, kq, gn + (size_t)l * kq, bn + (size_t)l * kq, G->sa);
    A = G->sa;
  }
  ts__ref_gemm(1, 0, kq, nq, G->nr, 1.0, A, kq, G->dC[g], nq, 0.0, out, nq); /* dB_lj's partial */
}

/* ---- the replicated gradients and the assembly --------------------------------- */

int ts__ref_tp2d_sync_segs(ref_tp_t *p, ts_ref_model_t *m, int l, double **seg, size_t *len) {
  const struct tp2d *G = p->g2;
  block_view_t g = view(m, l, 1);
  size_t d = (size_t)p->d, dq = (size_t)G->dq, fq = (size_t)G->fq, j = (size_t)G->j;
  double *a[] = {g.ln1_g, g.ln1_b, g.ln2_g, g.ln2_b, g.bqkv + j * dq, g.bqkv + d + j * dq,
                 g.bqkv + 2 * d + j * dq, g.bo + j * dq, g.b1 + j * fq, g.b2 + j * dq};
  size_t n[] = {d, d, d, d, dq, dq, dq, dq, fq, dq};
  for (int k = 0; k < 10; k++) {
    seg[k] = a[k];
    len[k] = n[k];
  }
  return 10;
}

/* dst's rows [r0, r0 + rows) x columns [c0, c0 + cols) (leading dimension
** ld) = src's. */
static void copy_rect(double *dst, const double *src, size_t ld, size_t r0, size_t rows, size_t c0,
                      size_t cols) {
  for (size_t r = r0; r < r0 + rows; r++)
    memcpy(dst + r * ld + c0, src + r * ld + c0, cols * sizeof(double));
}

void ts__ref_tp2d_assemble(ref_x_t *x, ts_ref_model_t *g, const int *first, int params) {
  const ts_ref_config_t *c = &x->cfg;
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn;
  for (int l = 0; l < c->layers; l++) {
    if (first[l] >= x->n) continue;
    ts_group_t grp = ts_plan_group(x->plan, TS_GROUP_TP, first[l]);
    /* The model owns its vectors, which are not const. */
    double *db = params ? ts_ref_block_params(g, l, NULL) : (double *)ts_ref_block_grad(g, l, NULL);
    block_view_t o = ts__ref_block_view(c, db);
    for (int k = 0; k < grp.n; k++) {
      if (k == grp.rank) continue;
      ts_ref_model_t *sm = x->dev[grp.dev[k]].model;
      const struct tp2d *G = x->dev[grp.dev[k]].tp->g2;
      double *sb =
          params ? ts_ref_block_params(sm, l, NULL) : (double *)ts_ref_block_grad(sm, l, NULL);
      block_view_t s = ts__ref_block_view(c, sb);
      size_t i = (size_t)G->i, j = (size_t)G->j, dq = (size_t)G->dq, fq = (size_t)G->fq;
      /* Its weight blocks (i, j); W_qkv's column block j: heads j's Q, K, V. */
      for (size_t h = 0; h < 3; h++)
        copy_rect(o.wqkv, s.wqkv, 3 * d, i * dq, dq, h * d + j * dq, dq);
      copy_rect(o.wo, s.wo, d, i * dq, dq, j * dq, dq);
      copy_rect(o.w1, s.w1, f, i * dq, dq, j * fq, fq);
      copy_rect(o.w2, s.w2, d, i * fq, fq, j * dq, dq);
      /* Its bias blocks j (whole after the sync: any row's will do). */
      for (size_t h = 0; h < 3; h++)
        memcpy(o.bqkv + h * d + j * dq, s.bqkv + h * d + j * dq, dq * sizeof(double));
      memcpy(o.bo + j * dq, s.bo + j * dq, dq * sizeof(double));
      memcpy(o.b1 + j * fq, s.b1 + j * fq, fq * sizeof(double));
      memcpy(o.b2 + j * dq, s.b2 + j * dq, dq * sizeof(double));
    }
  }
}
