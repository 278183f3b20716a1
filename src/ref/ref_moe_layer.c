/*
** ref_moe_layer.c: the math of one MoE block of the reference model
** (ref_moe_layer.h): the attention half, the routing of a lane's tokens,
** the combine, the experts on token rows, and the gate's backward.  Float64; matrix
** products of the attention half through the shared kernels
** (ref_kernels.h), so that it is the dense block's attention exactly.
*/
#include "ref_moe_layer.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_kernels.h"
#include "ts_moe.h"

/* ---- the attention half --------------------------------------------------- */

struct ts__ref_half {
  int l, mb, n, d, s, heads;
  double *buf;  /* one allocation through mem, the tensors below in it */
  size_t bytes;
  double *xhat1, *rstd1, *qkv, *probs, *attn, *xhat2, *rstd2;
};

/* Pointers to block l's parameter tensors in base (parameters or grads). */
static double *at(const ts_ref_config_t *c, double *base, ts_ref_param_t k) {
  return base + ts_ref_block_param_offset(c, k, NULL);
}

ts__ref_half_t *ts__ref_half_forward(ts_ref_model_t *m, int l, int mb, const double *x,
                                     double *x1, double *u, ts_ref_mem_t *mem) {
  const ts_ref_config_t *c = ts_ref_model_config(m);
  double *p = ts_ref_block_params(m, l, NULL);
  if (!p || mb <= 0) return NULL;
  ts__ref_half_t *st = calloc(1, sizeof *st);
  double *ln = NULL;
  if (!st) return NULL;
  int d = c->hidden, s = c->seq, n = mb * s;
  size_t nd = (size_t)n * d, pr = (size_t)mb * c->heads * s * s;
  *st = (ts__ref_half_t){.l = l, .mb = mb, .n = n, .d = d, .s = s, .heads = c->heads};
  st->bytes = (6 * nd + 2 * (size_t)n + pr) * sizeof(double);
  st->buf = ts_ref_mem_alloc(mem, st->bytes);
  if (!st->buf || !(ln = malloc(nd * sizeof *ln))) goto fail;
  st->xhat1 = st->buf;
  st->rstd1 = st->xhat1 + nd;
  st->qkv = st->rstd1 + n;
  st->probs = st->qkv + 3 * nd;
  st->attn = st->probs + pr;
  st->xhat2 = st->attn + nd;
  st->rstd2 = st->xhat2 + nd;
  ts__ref_ln_forward(x, n, d, at(c, p, TS_REF_LN1_GAIN), at(c, p, TS_REF_LN1_BIAS), st->xhat1,
                     st->rstd1, ln);
  ts__ref_fill_rows(st->qkv, at(c, p, TS_REF_QKV_BIAS), n, 3 * (size_t)d);
  ts__ref_gemm(0, 0, n, 3 * d, d, 1.0, ln, d, at(c, p, TS_REF_QKV_WEIGHT), 3 * d, 1.0, st->qkv,
               3 * d);
  ts__ref_attn_forward(st->qkv, mb, s, d, c->heads, st->probs, st->attn);
  ts__ref_fill_rows(x1, at(c, p, TS_REF_PROJ_BIAS), n, d);
  ts__ref_gemm(0, 0, n, d, d, 1.0, st->attn, d, at(c, p, TS_REF_PROJ_WEIGHT), d, 1.0, x1, d);
  for (size_t i = 0; i < nd; i++) x1[i] += x[i];
  ts__ref_ln_forward(x1, n, d, at(c, p, TS_REF_LN2_GAIN), at(c, p, TS_REF_LN2_BIAS), st->xhat2,
                     st->rstd2, u);
  free(ln);
  return st;
fail:
  free(ln);
  ts__ref_half_free(st, mem);
  return NULL;
}

void ts__ref_half_free(ts__ref_half_t *st, ts_ref_mem_t *mem) {
  if (!st) return;
  ts_ref_mem_free(mem, st->buf, st->bytes);
  free(st);
}

int ts__ref_half_backward(ts_ref_model_t *m, ts__ref_half_t *st, const double *dx1,
                          const double *du, double *dx, ts_ref_mem_t *mem) {
  const ts_ref_config_t *c = ts_ref_model_config(m);
  double *p = ts_ref_block_params(m, st->l, NULL);
  /* The model owns its gradient vector, which is not const. */
  double *g = (double *)ts_ref_block_grad(m, st->l, NULL);
  int n = st->n, d = st->d, s = st->s;
  size_t nd = (size_t)n * d;
  double *r = malloc(nd * sizeof *r), *dattn = malloc(nd * sizeof *dattn);
  double *ln = malloc(nd * sizeof *ln), *dln = malloc(nd * sizeof *dln);
  double *dqkv = malloc(3 * nd * sizeof *dqkv), *dp = malloc((size_t)s * s * sizeof *dp);
  int rc = (!r || !dattn || !ln || !dln || !dqkv || !dp) ? EX_OSERR : 0;
  if (!rc) {
    memcpy(r, dx1, nd * sizeof *r);
    ts__ref_ln_backward(du, st->xhat2, st->rstd2, n, d, at(c, p, TS_REF_LN2_GAIN),
                        at(c, g, TS_REF_LN2_GAIN), at(c, g, TS_REF_LN2_BIAS), r);
    ts__ref_gemm(1, 0, d, d, n, 1.0, st->attn, d, r, d, 1.0, at(c, g, TS_REF_PROJ_WEIGHT), d);
    ts__ref_add_colsum(at(c, g, TS_REF_PROJ_BIAS), r, n, d);
    ts__ref_gemm(0, 1, n, d, d, 1.0, r, d, at(c, p, TS_REF_PROJ_WEIGHT), d, 0.0, dattn, d);
    ts__ref_attn_backward(st->qkv, st->probs, dattn, st->mb, s, d, st->heads, dqkv, dp);
    ts__ref_ln_rebuild(st->xhat1, n, d, at(c, p, TS_REF_LN1_GAIN), at(c, p, TS_REF_LN1_BIAS), ln);
    ts__ref_gemm(1, 0, d, 3 * d, n, 1.0, ln, d, dqkv, 3 * d, 1.0, at(c, g, TS_REF_QKV_WEIGHT),
                 3 * d);
    ts__ref_add_colsum(at(c, g, TS_REF_QKV_BIAS), dqkv, n, 3 * (size_t)d);
    ts__ref_gemm(0, 1, n, d, 3 * d, 1.0, dqkv, 3 * d, at(c, p, TS_REF_QKV_WEIGHT), 3 * d, 0.0,
                 dln, d);
    memcpy(dx, r, nd * sizeof *dx);
    ts__ref_ln_backward(dln, st->xhat1, st->rstd1, n, d, at(c, p, TS_REF_LN1_GAIN),
                        at(c, g, TS_REF_LN1_GAIN), at(c, g, TS_REF_LN1_BIAS), dx);
  }
  free(r);
  free(dattn);
  free(ln);
  free(dln);
  free(dqkv);
  free(dp);
  if (!rc) ts__ref_half_free(st, mem);
  return rc;
}

/* ---- routing ---------------------------------------------------------------- */

void ts__ref_route_free(ts__ref_route_t *r) {
  if (!r) return;
  free(r->probs);
  free(r->expert);
  free(r->gate);
  free(r->dgate);
  free(r->top1);
  free(r->idx);
  free(r->kept);
  memset(r, 0, sizeof *r);
}

int ts__ref_route(const ts_moe_t *m, int j, int mb, int lane, int T, int h, const double *u,
                  const double *Wg, ts__ref_route_t *r) {
  int E = m->experts, S = m->group_size > 0 ? m->group_size : T;
  memset(r, 0, sizeof *r);
  *r = (ts__ref_route_t){.T = T, .E = E, .S = S, .G = T / S};
  r->C = ts_moe_capacity(S, E, m->capacity_factor, m->capacity_multiple);
  size_t slots = (size_t)E * r->G * r->C;
  r->probs = malloc((size_t)T * E * sizeof *r->probs);
  r->expert = malloc((size_t)T * 2 * sizeof *r->expert);
  r->gate = calloc((size_t)T * 2, sizeof *r->gate);
  r->dgate = calloc((size_t)T * 2, sizeof *r->dgate);
  r->top1 = calloc((size_t)r->G * E, sizeof *r->top1);
  r->idx = malloc((slots + 1) * sizeof *r->idx);
  r->kept = calloc((size_t)E, sizeof *r->kept);
  gsl_rng *g = ts_moe_rng(m, j, mb, lane);
  if (!r->probs || !r->expert || !r->gate || !r->dgate || !r->top1 || !r->idx || !r->kept || !g) {
    gsl_rng_free(g);
    ts__ref_route_free(r);
    return EX_OSERR;
  }
  ts_moe_prior(m, g, T, r->probs);
  /* logits = prior + u W_g (W_g zero at first: the simulator's routing) */
  ts__ref_gemm(0, 0, T, E, h, 1.0, u, h, Wg, E, 1.0, r->probs, E);
  ts_moe_softmax(r->probs, T, E, r->probs);
  for (size_t i = 0; i < slots; i++) r->idx[i] = -1;
  for (int grp = 0; grp < r->G; grp++) {
    ts_moe_route_t rt;
    ts_moe_gate(r->probs + (size_t)grp * S * E, S, E, m->capacity_factor, m->capacity_multiple, g,
                &rt);
    for (int i = 0; i < S * 2; i++) {
      int t2 = grp * S * 2 + i;
      r->expert[t2] = rt.expert[i];
      r->gate[t2] = rt.gate[i];
      if (rt.slot[i] >= 0) r->idx[((size_t)rt.expert[i] * r->G + grp) * r->C + rt.slot[i]] = t2;
      if (i % 2 == 0) r->top1[(size_t)grp * E + rt.expert[i]]++;
    }
    for (int e = 0; e < E; e++) r->kept[e] += rt.load[e];
    r->dropped += rt.dropped;
    r->aux += rt.aux;
    ts_moe_route_free(&rt);
  }
  gsl_rng_free(g);
  return 0;
}

int ts__ref_route_rows(const ts__ref_route_t *r, int elo, int ehi, int *tk, int *ex) {
  int n = 0;
  size_t per = (size_t)r->G * r->C;
  for (size_t i = (size_t)elo * per; i < (size_t)ehi * per; i++) {
    if (r->idx[i] < 0) continue;
    if (tk) tk[n] = r->idx[i];
    if (ex) ex[n] = (int)(i / per);
    n++;
  }
  return n;
}

/* ---- combine, experts and the gate's backward ---------------------------------- */

void ts__ref_combine(const ts__ref_route_t *r, int n, const int *tk, const double *out, int h,
                     double *y) {
  for (int k = 0; k < n; k++) {
    double g = r->gate[tk[k]], *yt = y + (size_t)(tk[k] / 2) * h;
    for (int c = 0; c < h; c++) yt[c] += g * out[(size_t)k * h + c];
  }
}

void ts__ref_combine_grad(ts__ref_route_t *r, int n, const int *tk, const double *out,
                          const double *dy, int h, double *dout) {
  for (int k = 0; k < n; k++) {
    const double *dyt = dy + (size_t)(tk[k] / 2) * h, *o = out + (size_t)k * h;
    double g = r->gate[tk[k]], dg = 0;
    for (int c = 0; c < h; c++) {
      dout[(size_t)k * h + c] = g * dyt[c];
      dg += dyt[c] * o[c];
    }
    r->dgate[tk[k]] = dg;
  }
}

void ts__ref_dispatch_grad(int n, const int *tk, const double *dx, int h, double *du) {
  for (int k = 0; k < n; k++) {
    double *d = du + (size_t)(tk[k] / 2) * h;
    for (int c = 0; c < h; c++) d[c] += dx[(size_t)k * h + c];
  }
}

void ts__ref_expert_forward(const double *W1, const double *W2, int h, int f, const double *in,
                            double *a, double *hd, double *out) {
  for (int j = 0; j < f; j++) {
    double s = 0;
    for (int k = 0; k < h; k++) s += in[k] * W1[(size_t)k * f + j];
    a[j] = s;
    hd[j] = ts__ref_gelu(s);
  }
  for (int k = 0; k < h; k++) {
    double s = 0;
    for (int j = 0; j < f; j++) s += hd[j] * W2[(size_t)j * h + k];
    out[k] = s;
  }
}

void ts__ref_expert_backward(const double *W1, const double *W2, int h, int f, const double *in,
                             const double *a, const double *hd, const double *go, double *dW1,
                             double *dW2, double *gin, double *dh) {
  for (int j = 0; j < f; j++) {
    double s = 0;
    for (int k = 0; k < h; k++) {
      dW2[(size_t)j * h + k] += hd[j] * go[k];
      s += W2[(size_t)j * h + k] * go[k];
    }
    dh[j] = s * ts__ref_gelu_grad(a[j]);
  }
  for (int k = 0; k < h; k++) {
    double s = 0;
    for (int j = 0; j < f; j++) {
      dW1[(size_t)k * f + j] += in[k] * dh[j];
      s += W1[(size_t)k * f + j] * dh[j];
    }
    gin[k] = s;
  }
}

int ts__ref_gate_backward(const ts__ref_route_t *r, const double *u, const double *Wg, int h,
                          double aux_w, double *dWg, double *du) {
  int E = r->E;
  double *dp = malloc((size_t)E * sizeof *dp), *dl = malloc((size_t)E * sizeof *dl);
  if (!dp || !dl) {
    free(dp);
    free(dl);
    return EX_OSERR;
  }
  /* aux = E / S^2 x sum_e (sum_t p[t][e]) x top1[e], per group */
  double aux_scale = aux_w * E / ((double)r->S * r->S);
  for (int t = 0; t < r->T; t++) {
    const double *p = r->probs + (size_t)t * E;
    const int *top1 = r->top1 + (size_t)(t / r->S) * E;
    for (int e = 0; e < E; e++) dp[e] = aux_scale * top1[e];
    int e1 = r->expert[2 * t], e2 = r->expert[2 * t + 1];
    double a = p[e1], b = p[e2], den2 = (a + b) * (a + b);
    double g1 = r->dgate[2 * t], g2 = r->dgate[2 * t + 1];
    dp[e1] += (g1 - g2) * b / den2;
    dp[e2] += (g2 - g1) * a / den2;
    double dot = 0;
    for (int e = 0; e < E; e++) dot += p[e] * dp[e];
    for (int e = 0; e < E; e++) dl[e] = p[e] * (dp[e] - dot);
    for (int k = 0; k < h; k++) {
      double s = 0;
      for (int e = 0; e < E; e++) {
        dWg[(size_t)k * E + e] += u[(size_t)t * h + k] * dl[e];
        s += Wg[(size_t)k * E + e] * dl[e];
      }
      du[(size_t)t * h + k] += s;
    }
  }
  free(dp);
  free(dl);
  return 0;
}
