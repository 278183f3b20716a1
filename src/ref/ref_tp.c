/*
** ref_tp.c: Megatron 1D tensor parallelism in the reference executor
** (README "Tensor parallelism"): real sharded math on the TP ranks' threads
** and real all-reduces of the partial activations and activation gradients
** (sequence parallelism's reduce-scatters and all-gathers: ref_tp_sp.c).
**
** What it models.  The runtime (rt_tp.c) runs each layer of a forward as
**   [attention piece] all-reduce [MLP piece] all-reduce
** and each layer of a backward, last layer first, as
**   [MLP backward piece] all-reduce [attention backward piece] all-reduce,
** calling the executor's compute once per piece; the all-reduces carry
** TS_BUF_TP, the device's partial buffer of mb s d doubles.  TP rank r of t
** computes, for heads [r H / t, (r + 1) H / t):
** - attention: LN1 replicated; Q, K, V of its heads from the column slices
**   of W_qkv (and b_qkv) belonging to them; the causal core of its heads;
**   attn_r W_o[rows of its heads] as its partial (no bias);
** - MLP: LN2 replicated; h_r = LN2(x1) W_1[:, cols r] + b_1[cols r], GELU,
**   gelu_r W_2[rows r] as its partial (no bias);
** - the sum of the partials (the all-reduce) plus the replicated bias and
**   the residual is the block's output, which the next piece (or, after the
**   op's last all-reduce, coll_end) forms;
** - the backward mirrors it: each piece's partial is the gradient of the LN
**   output its column-split GEMM consumed, all-reduced before the
**   replicated LayerNorm backward.
** A rank writes the gradients of its own shards only (the other shards'
** stay zero) and the replicated parameters' gradients in full (every rank
** computes the same values; with SP its rows' share of the LayerNorms' and
** of b_o, b_2, which the runtime's sync all-reduce completes: ref_tp_sp.c);
** ts__ref_tp_assemble puts the shards of the ranks together.
**
** Selective recompute (Korthikanti et al. 2022): the stash keeps no probs;
** the attention backward piece recomputes its heads' softmax and attention
** over V from the kept Q, K, V (counted in the model, with a bitwise check
** against the kept attention output) before the core's backward.
**
** Memory: the stash of each block is counted in the device's allocator and
** is exactly ts_ref_tp_stash_bytes (the LayerNorm tensors of its rows, its
** heads' and columns' share of the rest); the pieces' scratch is not.
**
** 2D (SUMMA) on a q x q grid: ref_tp2d.c, which shares this state, its
** stash and its table.
**
** Limits (ts_ref_config_for_job refuses the rest): no full recompute, no
** ZeRO, no MoE, one iteration, no host weights, no 2.5D or 3D.  A split backward (ZB-H1)
** does all its math in the input-gradient half, which then holds the bytes
** it released until the weight-gradient op (ts__ref_tp_hold_for_wgrad), as
** the whole-model path does.
**
** Threading: a device's TP state is touched by its program thread, and by
** its communication stream in coll_end while the program waits for that
** collective.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_kernels.h"
#include "ref_tp_impl.h"

#define view ts__ref_tp_view
#define add_bias ts__ref_tp_add_bias

/* Sizes in doubles of the nine tensors of a tp_blk_t (probs 0 when selective). */
static void blk_sizes(const ref_tp_t *p, size_t sz[9]) {
  memcpy(sz, p->sz, sizeof p->sz);
}

/* The 1d sizes (ref_tp2d.c sets its own). */
static void sizes_1d(ref_tp_t *p) {
  size_t *sz = p->sz, n = (size_t)p->n, nc = (size_t)p->nc;
  sz[0] = nc * p->d;
  sz[1] = nc;
  sz[2] = 3 * n * p->dl;
  sz[3] = p->sel ? 0 : (size_t)p->mb * p->hl * p->s * p->s;
  sz[4] = n * p->dl;
  sz[5] = nc * p->d;
  sz[6] = nc;
  sz[7] = n * p->fl;
  sz[8] = n * p->fl;
}

static double **blk_slot(tp_blk_t *b, int k) {
  double **s[9] = {&b->xhat1, &b->rstd1, &b->qkv, &b->probs, &b->attn,
                   &b->xhat2, &b->rstd2, &b->hpre, &b->gelu};
  return s[k];
}

void ts__ref_tp_blk_free(const ref_tp_t *p, tp_blk_t *b, ts_ref_mem_t *mem) {
  size_t sz[9];
  blk_sizes(p, sz);
  for (int k = 0; k < 9; k++) {
    double **s = blk_slot(b, k);
    ts_ref_mem_free(mem, *s, sz[k] * sizeof(double));
    *s = NULL;
  }
}

void ts__ref_tp_stash_free(const ref_tp_t *p, tp_stash_t *st, ts_ref_mem_t *mem) {
  for (int i = 0; st && i < st->count; i++) ts__ref_tp_blk_free(p, &st->blk[i], mem);
  free(st);
}

#define blk_free ts__ref_tp_blk_free
#define stash_free ts__ref_tp_stash_free

int ts__ref_tp_setup(ref_x_t *x) {
  int t = x->job->tensor_parallel;
  if (t < 2) return 0;
  const ts_ref_config_t *c = &x->cfg;
  for (int d = 0; d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    ref_tp_t *p = dv->tp = calloc(1, sizeof *p);
    if (!p) return EX_OSERR;
    ts_group_t g = ts_plan_group(x->plan, TS_GROUP_TP, d);
    int n = x->mbs * c->seq, sp = x->job->sequence_parallel;
    *p = (ref_tp_t){.rank = g.rank, .t = t, .n = n, .d = c->hidden, .dl = c->hidden / t,
                    .hl = c->heads / t, .fl = c->ffn / t, .s = c->seq, .mb = x->mbs, .sp = sp,
                    .sel = x->job->recompute == TS_RECOMPUTE_SELECTIVE, .nc = sp ? n / t : n,
                    .off = sp ? (size_t)g.rank * (size_t)(n / t) * (size_t)c->hidden : 0};
    size_t nn = (size_t)n, cells = (size_t)(dv->n_local ? dv->n_local : 1) * (size_t)x->M;
    p->buf_n = nn * p->d;
    p->buf = calloc(2 * nn * p->d, sizeof(double));
    p->a = malloc(nn * p->d * sizeof(double));
    p->x1 = malloc(nn * p->d * sizeof(double));
    p->ln = malloc(nn * p->d * sizeof(double));
    p->full = malloc(nn * p->d * sizeof(double));
    p->dh = malloc(nn * p->fl * sizeof(double));
    p->dattn = malloc(nn * p->dl * sizeof(double));
    p->dqkv = malloc(3 * nn * p->dl * sizeof(double));
    p->dp = malloc((size_t)p->s * p->s * sizeof(double));
    p->prc = malloc((size_t)p->mb * p->hl * p->s * p->s * sizeof(double));
    p->arc = malloc(nn * p->dl * sizeof(double));
    p->tab = calloc(cells, sizeof *p->tab);
    sizes_1d(p);
    if (strcmp(x->job->tensor_parallel_mode, "1d") && ts__ref_tp2d_setup(x, p)) return EX_OSERR;
    if (!p->buf || !p->a || !p->x1 || !p->ln || !p->full || !p->dh || !p->dattn || !p->dqkv ||
        !p->dp || !p->prc || !p->arc || !p->tab)
      return EX_OSERR;
  }
  return 0;
}

void ts__ref_tp_free(ref_x_t *x) {
  for (int d = 0; x->dev && d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    ref_tp_t *p = dv->tp;
    if (!p) continue;
    size_t cells = (size_t)(dv->n_local ? dv->n_local : 1) * (size_t)x->M;
    for (size_t i = 0; p->tab && i < cells; i++) stash_free(p, p->tab[i], &dv->mem);
    if (p->st && (p->tab == NULL || p->st != p->tab[ts__ref_cell(x, p->v, p->mb_id)]))
      stash_free(p, p->st, &dv->mem);
    double *const bufs[] = {p->buf, p->a, p->x1, p->ln, p->full, p->dh,
                            p->dattn, p->dqkv, p->dp, p->prc, p->arc};
    for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++) free(bufs[k]);
    free(p->tab);
    ts__ref_tp2d_free(p);
    free(p);
    dv->tp = NULL;
  }
}

double *ts__ref_tp_buf(ref_x_t *x, int d, int slot, size_t *n) {
  ref_tp_t *p = x->dev[d].tp;
  if (p && p->g2) return ts__ref_tp2d_slot(p, slot, n);
  *n = p ? p->buf_n : 0;
  return p ? p->buf : NULL;
}

/* ---- forward --------------------------------------------------------------- */

void ts__ref_tp_fwd_ln(ref_tp_t *p, int k, tp_blk_t *b, int l, double *out) {
  size_t off = p->off;
  if (k % 2) { /* x1 = x + the reduced attention + b_o, then LN2 */
    block_view_t w = view(p->model, l, 0);
    add_bias(p->x1, p->a, p->buf + off, w.bo, p->nc, p->d);
    ts__ref_ln_forward(p->x1, p->nc, p->d, w.ln2_g, w.ln2_b, b->xhat2, b->rstd2, out);
    return;
  }
  if (k) add_bias(p->a, p->x1, p->buf + off, view(p->model, l - 1, 0).b2, p->nc, p->d);
  block_view_t w = view(p->model, l, 0);
  ts__ref_ln_forward(p->a, p->nc, p->d, w.ln1_g, w.ln1_b, b->xhat1, b->rstd1, out);
}

/* Attention piece of block b of layer l on its LN1 output p->ln: the
** partial into p->buf. */
static void fwd_attn(ref_tp_t *p, int l, tp_blk_t *b) {
  block_view_t w = view(p->model, l, 0);
  int n = p->n, d = p->d, dl = p->dl, r = p->rank;
  double *probs = b->probs ? b->probs : p->prc;
  for (int j = 0; j < 3; j++) {
    const double *bias = w.bqkv + (size_t)j * d + (size_t)r * dl;
    for (size_t i = 0; i < (size_t)n; i++)
      memcpy(b->qkv + i * 3 * dl + (size_t)j * dl, bias, (size_t)dl * sizeof(double));
    ts__ref_gemm(0, 0, n, dl, d, 1.0, p->ln, d, w.wqkv + (size_t)j * d + (size_t)r * dl, 3 * d,
                 1.0, b->qkv + (size_t)j * dl, 3 * dl);
  }
  ts__ref_attn_forward(b->qkv, p->mb, p->s, dl, p->hl, probs, b->attn);
  ts__ref_gemm(0, 0, n, d, dl, 1.0, b->attn, dl, w.wo + (size_t)r * dl * d, d, 0.0, p->buf, d);
}

/* MLP piece on its LN2 output p->ln: the partial into p->buf. */
static void fwd_mlp(ref_tp_t *p, int l, tp_blk_t *b) {
  block_view_t w = view(p->model, l, 0);
  int n = p->n, d = p->d, f = p->model->cfg.ffn, fl = p->fl, r = p->rank;
  ts__ref_fill_rows(b->hpre, w.b1 + (size_t)r * fl, n, fl);
  ts__ref_gemm(0, 0, n, fl, d, 1.0, p->ln, d, w.w1 + (size_t)r * fl, f, 1.0, b->hpre, fl);
  for (size_t i = 0; i < (size_t)n * fl; i++) b->gelu[i] = ts__ref_gelu(b->hpre[i]);
  ts__ref_gemm(0, 0, n, d, fl, 1.0, b->gelu, fl, w.w2 + (size_t)r * fl * d, d, 0.0, p->buf, d);
}

/* ---- backward -------------------------------------------------------------- */

/* MLP backward piece of layer l given dy, the block output's gradient
** (all n rows), and its LN2 output in p->ln: the partial gradient of
** LN2's output into p->buf. */
static void bwd_mlp(ref_tp_t *p, int l, const tp_blk_t *b, const double *dy) {
  block_view_t w = view(p->model, l, 0), g = view(p->model, l, 1);
  int n = p->n, d = p->d, f = p->model->cfg.ffn, fl = p->fl, r = p->rank;
  ts__ref_gemm(1, 0, fl, d, n, 1.0, b->gelu, fl, dy, d, 1.0, g.w2 + (size_t)r * fl * d, d);
  ts__ref_add_colsum(g.b2, dy + p->off, p->nc, d); /* SP: its rows (ref_tp_sp.c) */
  ts__ref_gemm(0, 1, n, fl, d, 1.0, dy, d, w.w2 + (size_t)r * fl * d, d, 0.0, p->dh, fl);
  for (size_t i = 0; i < (size_t)n * fl; i++) p->dh[i] *= ts__ref_gelu_grad(b->hpre[i]);
  ts__ref_gemm(1, 0, d, fl, n, 1.0, p->ln, d, p->dh, fl, 1.0, g.w1 + (size_t)r * fl, f);
  ts__ref_add_colsum(g.b1 + (size_t)r * fl, p->dh, n, fl);
  ts__ref_gemm(0, 1, n, d, fl, 1.0, p->dh, fl, w.w1 + (size_t)r * fl, f, 0.0, p->buf, d);
}

/* Attention backward piece given dx1, the gradient of the attention's
** residual output (all n rows), and its LN1 output in p->ln: the partial
** gradient of LN1's output into p->buf.  Selective: the core first. */
static void bwd_attn(ref_tp_t *p, int l, const tp_blk_t *b, const double *dx1) {
  block_view_t w = view(p->model, l, 0), g = view(p->model, l, 1);
  int n = p->n, d = p->d, dl = p->dl, r = p->rank;
  ts__ref_gemm(1, 0, dl, d, n, 1.0, b->attn, dl, dx1, d, 1.0, g.wo + (size_t)r * dl * d, d);
  ts__ref_add_colsum(g.bo, dx1 + p->off, p->nc, d); /* SP: its rows */
  ts__ref_gemm(0, 1, n, dl, d, 1.0, dx1, d, w.wo + (size_t)r * dl * d, d, 0.0, p->dattn, dl);
  const double *probs = b->probs;
  if (!probs) { /* selective: its heads' core again from the kept Q, K, V */
    ts__ref_attn_forward(b->qkv, p->mb, p->s, dl, p->hl, p->prc, p->arc);
    probs = p->prc;
    p->model->core_recomputes++;
    p->model->core_mismatches += memcmp(p->arc, b->attn, (size_t)n * dl * sizeof(double)) != 0;
  }
  ts__ref_attn_backward(b->qkv, probs, p->dattn, p->mb, p->s, dl, p->hl, p->dqkv, p->dp);
  for (int j = 0; j < 3; j++) {
    size_t col = (size_t)j * d + (size_t)r * dl;
    const double *dq = p->dqkv + (size_t)j * dl;
    ts__ref_gemm(1, 0, d, dl, n, 1.0, p->ln, d, dq, 3 * dl, 1.0, g.wqkv + col, 3 * d);
    for (size_t i = 0; i < (size_t)n; i++)
      for (size_t k = 0; k < (size_t)dl; k++) g.bqkv[col + k] += dq[i * 3 * dl + k];
    ts__ref_gemm(0, 1, n, d, dl, 1.0, dq, 3 * dl, w.wqkv + col, 3 * d, j ? 1.0 : 0.0, p->buf, d);
  }
}

/* p->a = dx1 + LN1 backward of layer l's reduced partial (its rows). */
static void bwd_ln1(ref_tp_t *p, int l, const tp_blk_t *b) {
  block_view_t w = view(p->model, l, 0), g = view(p->model, l, 1);
  memcpy(p->a, p->x1, (size_t)p->nc * p->d * sizeof(double));
  ts__ref_ln_backward(p->buf + p->off, b->xhat1, b->rstd1, p->nc, p->d, w.ln1_g, g.ln1_g,
                      g.ln1_b, p->a);
}

double *ts__ref_tp_bwd_ln(ref_x_t *x, ref_dev_t *dv, int k, tp_blk_t *b, int l,
                          const double **xhat, const double **g, const double **bias) {
  ref_tp_t *p = dv->tp;
  (void)x;
  block_view_t w = view(p->model, l, 0);
  if (k % 2) { /* dx1 = dy + LN2 backward of the reduced partial */
    block_view_t gr = view(p->model, l, 1);
    memcpy(p->x1, p->a, (size_t)p->nc * p->d * sizeof(double));
    ts__ref_ln_backward(p->buf + p->off, b->xhat2, b->rstd2, p->nc, p->d, w.ln2_g, gr.ln2_g,
                        gr.ln2_b, p->x1);
    *xhat = b->xhat1, *g = w.ln1_g, *bias = w.ln1_b;
    return p->x1;
  }
  if (k) {
    bwd_ln1(p, l + 1, b + 1);
    blk_free(p, b + 1, &dv->mem);
  }
  *xhat = b->xhat2, *g = w.ln2_g, *bias = w.ln2_b;
  return p->a;
}

/* ---- the pieces ------------------------------------------------------------ */

tp_blk_t *ts__ref_tp_block(ref_tp_t *p, int k, int *l) {
  int i = p->kind == TS_FORWARD ? k / 2 : p->st->count - 1 - k / 2;
  *l = p->first + i;
  return &p->st->blk[i];
}

const char *ts__ref_tp_new_stash(ref_dev_t *dv, int layers) {
  ref_tp_t *p = dv->tp;
  tp_stash_t *st = calloc(1, sizeof *st + (size_t)layers * sizeof(tp_blk_t));
  if (!st) return "out of memory";
  st->count = layers;
  p->st = st;
  size_t sz[9];
  blk_sizes(p, sz);
  for (int i = 0; i < st->count; i++)
    for (int k = 0; k < 9; k++)
      if (sz[k] && !(*blk_slot(&st->blk[i], k) = ts_ref_mem_alloc(&dv->mem, sz[k] * sizeof(double))))
        return "out of memory";
  return NULL;
}

const char *ts__ref_tp_begin(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb) {
  ref_tp_t *p = dv->tp;
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  bool fwd = kind == TS_FORWARD;
  p->kind = kind, p->v = v, p->mb_id = mb, p->piece = 0, p->begun = 1, p->held0 = dv->mem.cur;
  p->total = 2 * pc->n_layers, p->first = pc->first_layer, p->st = NULL;
  if (!(p->model = ts__ref_stage_model(x, dv, v, mb, fwd ? "forward" : "backward")))
    return "no model";
  size_t nb = (size_t)p->nc * p->d * sizeof(double);
  if (fwd) {
    double *owned;
    const double *in = ts__ref_fwd_input(x, dv, v, mb, &owned);
    if (!in) return "its input is missing";
    memcpy(p->a, in + p->off, nb); /* SP: its tokens only */
    free(owned);
    return ts__ref_tp_new_stash(dv, pc->n_layers);
  }
  tp_stash_t **cell = &p->tab[ts__ref_cell(x, v, mb)];
  p->st = *cell;
  *cell = NULL;
  double *dy = ts__ref_bwd_dy(x, dv, v, mb);
  const char *e = !p->st ? "no stash" : !dy ? "its output gradient is missing" : NULL;
  if (!e) memcpy(p->a, dy + p->off, nb);
  free(dy);
  return e;
}

int ts__ref_tp_enter(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb, const char *what) {
  ref_tp_t *p = dv->tp;
  if (!p->begun) {
    const char *e = ts__ref_tp_begin(x, dv, kind, v, mb);
    if (!e) return 0;
    ts__ref_fatal(x, EX_SOFTWARE, "reference executor: device %d: %s of stage %d micro-batch %d: %s",
                  dv->id, ts_kind_name(kind), v, mb, e);
    return -1;
  }
  if (p->kind == kind && p->v == v && p->mb_id == mb) return 0;
  ts__ref_fatal(x, EX_SOFTWARE,
                "reference executor: device %d: %s%s of stage %d micro-batch %d began before the "
                "pieces of the previous op ended",
                dv->id, what, ts_kind_name(kind), v, mb);
  return -1;
}

void ts__ref_tp_hold_for_wgrad(ref_x_t *x, ref_dev_t *dv) {
  ref_tp_t *p = dv->tp;
  if (!p->split || p->held0 <= dv->mem.cur) return;
  struct ref_wg_hold *h = &dv->wg_hold[ts__ref_cell(x, p->v, p->mb_id)];
  h->bytes = p->held0 - dv->mem.cur;
  if (!(h->p = ts_ref_mem_alloc(&dv->mem, h->bytes))) {
    h->bytes = 0;
    ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: backward_input of stage %d "
                  "micro-batch %d: out of memory", dv->id, p->v, p->mb_id);
  }
}

void ts__ref_tp_compute(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb) {
  ref_tp_t *p = dv->tp;
  if (!p->begun) p->split = kind == TS_BACKWARD_INPUT;
  if (kind == TS_BACKWARD_INPUT) kind = TS_BACKWARD;
  if (p->g2 && (kind == TS_FORWARD || kind == TS_BACKWARD)) {
    ts__ref_tp2d_compute(x, dv, kind, v, mb);
    return;
  }
  if (kind != TS_FORWARD && kind != TS_BACKWARD) {
    ts__ref_fatal(x, EX_SOFTWARE, "reference executor: device %d: %s under tensor parallelism",
                  dv->id, ts_kind_name(kind));
    return;
  }
  if (ts__ref_tp_enter(x, dv, kind, v, mb, "")) return;
  int k = p->piece++, l;
  tp_blk_t *b = ts__ref_tp_block(p, k, &l);
  if (kind == TS_FORWARD) {
    /* SP: the LayerNorm ran before the all-gather that put its output in buf. */
    if (p->sp)
      memcpy(p->ln, p->buf, (size_t)p->n * p->d * sizeof(double));
    else
      ts__ref_tp_fwd_ln(p, k, b, l, p->ln);
    (k % 2 ? fwd_mlp : fwd_attn)(p, l, b);
    return;
  }
  const double *grad = p->full;
  if (p->sp) {
    ts__ref_tp_sp_unpack(p);
  } else {
    const double *xhat, *g, *bias;
    grad = ts__ref_tp_bwd_ln(x, dv, k, b, l, &xhat, &g, &bias);
    ts__ref_ln_rebuild(xhat, p->n, p->d, g, bias, p->ln);
  }
  if (k % 2)
    bwd_attn(p, l, b, grad);
  else
    bwd_mlp(p, l, b, grad);
}

void ts__ref_tp_prepare(void *xd, int device, ts_kind_t kind, int v, int mb, ts_coll_op_t op,
                        int slot) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (!dv->tp || atomic_load(&x->fatal)) return;
  if (!dv->tp->begun) dv->tp->split = kind == TS_BACKWARD_INPUT;
  if (dv->tp->g2) {
    ts__ref_tp2d_prepare(x, dv, kind == TS_BACKWARD_INPUT ? TS_BACKWARD : kind, v, mb, slot);
    return;
  }
  if (!dv->tp->sp) return;
  ts__ref_tp_sp_prepare(x, dv, kind == TS_BACKWARD_INPUT ? TS_BACKWARD : kind, v, mb, op);
}

/* Ends the op after its last all-reduce (SP: reduce-scatter): the
** forward's output and stash, the backward's input gradient (SP: its rows
** of them, the others zero). */
static void finish(ref_x_t *x, ref_dev_t *dv) {
  ref_tp_t *p = dv->tp;
  size_t nb = (size_t)p->n * p->d * sizeof(double), nc = (size_t)p->nc * p->d * sizeof(double);
  int v = p->v, mb = p->mb_id;
  p->piece = p->begun = 0;
  double *out = calloc(1, nb);
  if (!out) {
    ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory", dv->id);
    return;
  }
  if (p->kind == TS_FORWARD) {
    int l = p->first + p->st->count - 1;
    add_bias(out + p->off, p->x1, p->buf + p->off, view(p->model, l, 0).b2, p->nc, p->d);
    p->tab[ts__ref_cell(x, v, mb)] = p->st;
    p->st = NULL;
    dv->out[ts__ref_slot_cell(x, dv, SLOT_ACT, v, mb)] = out;
    ts__ref_versions_after(x, dv, v, mb, 0);
    return;
  }
  bwd_ln1(p, p->first, &p->st->blk[0]);
  stash_free(p, p->st, &dv->mem);
  p->st = NULL;
  ts__ref_tp_hold_for_wgrad(x, dv);
  if (x->lay->prev[v] >= 0) {
    memcpy(out + p->off, p->a, nc);
    dv->out[ts__ref_slot_cell(x, dv, SLOT_GRAD, v, mb)] = out;
  } else {
    free(out);
  }
  ts__ref_versions_after(x, dv, v, mb, 1);
}

void ts__ref_tp_coll_end(ref_x_t *x, int device) {
  ref_dev_t *dv = &x->dev[device];
  ref_tp_t *p = dv->tp;
  if (!p || p->g2 || atomic_load(&x->fatal) || !p->begun || p->piece < p->total || p->piece % 2)
    return;
  finish(x, dv);
}

/* ---- assembling the shards ------------------------------------------------- */

/* Copies TP rank k's shard of block vector src into dst (c's layout). */
static void copy_shard(const ts_ref_config_t *c, int k, int t, double *dst, const double *src) {
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn, dl = d / t, fl = f / t;
  size_t o;
#define SPAN(off, len) memcpy(dst + (off), src + (off), (len) * sizeof(double))
  o = ts_ref_block_param_offset(c, TS_REF_QKV_WEIGHT, NULL);
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < 3; j++) SPAN(o + i * 3 * d + j * d + k * dl, dl);
  o = ts_ref_block_param_offset(c, TS_REF_QKV_BIAS, NULL);
  for (size_t j = 0; j < 3; j++) SPAN(o + j * d + k * dl, dl);
  o = ts_ref_block_param_offset(c, TS_REF_PROJ_WEIGHT, NULL);
  SPAN(o + k * dl * d, dl * d);
  o = ts_ref_block_param_offset(c, TS_REF_FC1_WEIGHT, NULL);
  for (size_t i = 0; i < d; i++) SPAN(o + i * f + k * fl, fl);
  o = ts_ref_block_param_offset(c, TS_REF_FC1_BIAS, NULL);
  SPAN(o + k * fl, fl);
  o = ts_ref_block_param_offset(c, TS_REF_FC2_WEIGHT, NULL);
  SPAN(o + k * fl * d, fl * d);
#undef SPAN
}

void ts__ref_tp_assemble(ref_x_t *x, ts_ref_model_t *g, const int *first, int params) {
  int t = x->job->tensor_parallel;
  if (t < 2) return;
  if (x->dev[0].tp && x->dev[0].tp->g2) { /* 2d: each rank's own blocks */
    ts__ref_tp2d_assemble(x, g, first, params);
    return;
  }
  for (int l = 0; l < x->cfg.layers; l++) {
    if (first[l] >= x->n) continue;
    ts_group_t grp = ts_plan_group(x->plan, TS_GROUP_TP, first[l]);
    for (int k = 0; k < grp.n; k++) {
      if (k == grp.rank) continue;
      ts_ref_model_t *src = x->dev[grp.dev[k]].model;
      double *dst = params ? ts_ref_block_params(g, l, NULL) : (double *)ts_ref_block_grad(g, l, NULL);
      const double *s = params ? ts_ref_block_params(src, l, NULL) : ts_ref_block_grad(src, l, NULL);
      copy_shard(&x->cfg, x->dev[grp.dev[k]].tp->rank, t, dst, s);
    }
  }
}
