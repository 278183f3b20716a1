/*
** ref_oracle.c: the one-thread oracles of the reference executor
** (ts_ref_oracle, ts_ref_oracle_sgd) and the batch's data.
*/
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"
#include "ref_moe_layer.h"

/* Fills a[0 .. n) with N(0, 1) draws of gsl_rng_mt19937 seeded with seed. */
static void fill_normal(double *a, size_t n, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (size_t i = 0; i < n; i++) a[i] = gsl_ran_gaussian(r, 1.0);
  gsl_rng_free(r);
}

/* The batch's inputs and targets: M micro-batches of n_el doubles each. */
int ts__ref_make_data(const ts_ref_config_t *c, int M, int mbs, double **X, double **T) {
  size_t n = (size_t)M * (size_t)mbs * (size_t)c->seq * (size_t)c->hidden;
  *X = malloc(n * sizeof **X);
  *T = malloc(n * sizeof **T);
  if (!*X || !*T) {
    free(*X);
    free(*T);
    *X = *T = NULL;
    return EX_OSERR;
  }
  fill_normal(*X, n, c->seed + 1);
  fill_normal(*T, n, c->seed + 2);
  return 0;
}

/* One forward and backward of all `layers` blocks of m over `samples`
** samples of X (the output goes to y, which may be X), with the loss against
** T (n doubles) divided by norm: m's gradients accumulate.  Returns 0, or
** non-zero when memory ran out. */
static int batch_grad(ts_ref_model_t *m, int layers, int samples, const double *X, double *y,
                      const double *T, size_t n, double norm) {
  ts_ref_stash_t *st = ts_ref_forward(m, 0, layers, samples, X, y, 1, NULL);
  if (!st) return 1;
  ts_ref_loss(y, T, n, norm, y);
  int rc = ts_ref_backward(m, st, y, NULL, NULL);
  if (rc) ts_ref_stash_free(st, NULL);
  return rc;
}

/* ---- the MoE oracle ------------------------------------------------------ */

/* What one MoE layer keeps between the forward and the backward of one
** (lane, micro-batch) in the oracle: every expert on this thread. */
typedef struct omoe {
  ts__ref_half_t *half;
  double *x1, *u, *rows, *a, *hd, *out, *dout, *gin;
  int n, *tk, *ex;
  ts__ref_route_t rt;
} omoe_t;

/* Forward and backward of the whole model on one (lane r, micro-batch mb)
** entry x (overwritten) against t, every MoE layer j routed with key (j,
** mb, r) and all experts here.  Returns 0 or non-zero (memory). */
static int moe_entry(ts_ref_model_t *m, const ts_moe_t *moe, int r, int mb, int mbs, double *x,
                     const double *t, size_t n_el, double N) {
  const ts_ref_config_t *c = ts_ref_model_config(m);
  int L = c->layers, h = c->hidden, f = c->expert_ffn, E = c->experts, T = (int)(n_el / h);
  ts_ref_stash_t **st = calloc((size_t)L + 1, sizeof *st);
  omoe_t *o = calloc((size_t)L, sizeof *o);
  double *dh = malloc((size_t)f * sizeof *dh), *dres = malloc(n_el * sizeof *dres);
  int rc = !st || !o || !dh || !dres, j = 0, lo = 0;
  for (int l = 0; !rc && l <= L; l++) {
    if (l < L && !ts_ref_is_moe_layer(c, l)) continue;
    if (l > lo) rc = !(st[l] = ts_ref_forward(m, lo, l - lo, mbs, x, x, 1, NULL));
    lo = l + 1;
    if (rc || l == L) break;
    omoe_t *y = &o[l];
    double *P = ts_ref_moe_params(m, l, NULL);
    y->x1 = malloc(n_el * sizeof(double));
    y->u = malloc(n_el * sizeof(double));
    if (!y->x1 || !y->u || !(y->half = ts__ref_half_forward(m, l, mbs, x, y->x1, y->u, NULL)) ||
        ts__ref_route(moe, j++, mb, r, T, h, y->u, P, &y->rt))
      rc = 1;
    if (rc) break;
    y->n = ts__ref_route_rows(&y->rt, 0, E, NULL, NULL);
    size_t n1 = (size_t)y->n + 1;
    y->tk = malloc(n1 * sizeof(int));
    y->ex = malloc(n1 * sizeof(int));
    y->rows = malloc(n1 * h * sizeof(double));
    y->out = malloc(n1 * h * sizeof(double));
    y->dout = malloc(n1 * h * sizeof(double));
    y->gin = malloc(n1 * h * sizeof(double));
    y->a = malloc(n1 * f * sizeof(double));
    y->hd = malloc(n1 * f * sizeof(double));
    if (!y->tk || !y->ex || !y->rows || !y->out || !y->dout || !y->gin || !y->a || !y->hd) rc = 1;
    if (rc) break;
    ts__ref_route_rows(&y->rt, 0, E, y->tk, y->ex);
    memcpy(x, y->x1, n_el * sizeof(double));
    for (int k = 0; k < y->n; k++) {
      int e = y->ex[k], tt = y->tk[k] / 2;
      double *W1 = P + (size_t)h * E + (size_t)e * h * f, *W2 = P + (size_t)h * E + (size_t)E * h * f + (size_t)e * f * h;
      memcpy(y->rows + (size_t)k * h, y->u + (size_t)tt * h, (size_t)h * sizeof(double));
      ts__ref_expert_forward(W1, W2, h, f, y->rows + (size_t)k * h, y->a + (size_t)k * f,
                             y->hd + (size_t)k * f, y->out + (size_t)k * h);
    }
    ts__ref_combine(&y->rt, y->n, y->tk, y->out, h, x);
  }
  if (!rc) ts_ref_loss(x, t, n_el, N, x); /* x is dy from here on */
  for (int l = L; !rc && l >= 0; l--) {
    if (st[l]) {
      rc = ts_ref_backward(m, st[l], x, x, NULL);
      st[l] = NULL;
    }
    if (rc || l == 0 || !ts_ref_is_moe_layer(c, l - 1)) continue;
    omoe_t *y = &o[l - 1];
    double *P = ts_ref_moe_params(m, l - 1, NULL), *G = ts_ref_moe_grad(m, l - 1, NULL);
    memcpy(dres, x, n_el * sizeof(double));
    memset(x, 0, n_el * sizeof(double)); /* du */
    ts__ref_combine_grad(&y->rt, y->n, y->tk, y->out, dres, h, y->dout);
    for (int k = 0; k < y->n; k++) {
      int e = y->ex[k];
      size_t w1 = (size_t)h * E + (size_t)e * h * f, w2 = (size_t)h * E + (size_t)E * h * f + (size_t)e * f * h;
      ts__ref_expert_backward(P + w1, P + w2, h, f, y->rows + (size_t)k * h, y->a + (size_t)k * f,
                              y->hd + (size_t)k * f, y->dout + (size_t)k * h, G + w1, G + w2,
                              y->gin + (size_t)k * h, dh);
    }
    ts__ref_dispatch_grad(y->n, y->tk, y->gin, h, x);
    rc = ts__ref_gate_backward(&y->rt, y->u, P, h, TS_REF_MOE_AUX / N, G, x);
    if (!rc) rc = ts__ref_half_backward(m, y->half, dres, x, x, NULL);
    if (!rc) y->half = NULL;
  }
  for (int l = 0; st && o && l < L; l++) {
    ts_ref_stash_free(st[l], NULL);
    ts__ref_half_free(o[l].half, NULL);
    ts__ref_route_free(&o[l].rt);
    free(o[l].x1), free(o[l].u), free(o[l].rows), free(o[l].a), free(o[l].hd);
    free(o[l].out), free(o[l].dout), free(o[l].gin), free(o[l].tk), free(o[l].ex);
  }
  if (st) ts_ref_stash_free(st[L], NULL);
  free(st);
  free(o);
  free(dh);
  free(dres);
  return rc;
}

/* Frees an oracle's data; returns its model, or NULL (freed) when rc. */
static ts_ref_model_t *oracle_done(ts_ref_model_t *m, double *X, double *T, int rc) {
  free(X);
  free(T);
  if (rc) {
    ts_ref_model_free(m);
    return NULL;
  }
  return m;
}

/* The data-parallel replicas of a job (job->data_parallel, at least 1). */
static int replicas(const ts_job_t *job) {
  return job->data_parallel > 1 ? job->data_parallel : 1;
}

/* The MoE oracle: every (lane, micro-batch) entry of the batch in turn on
** this thread, all experts here; lane r (EP rank r mod EP of replica r div
** EP) routes as its EP rank does.  NULL when memory runs out. */
static ts_ref_model_t *moe_oracle(const ts_job_t *job, const ts_ref_config_t *cfg) {
  const ts_moe_t *moe = &job->model.moe;
  int M = job->microbatches * job->iterations, mbs = job->micro_batch_size;
  int ep = moe->expert_parallel, lanes = ep * replicas(job);
  ts_ref_model_t *m = ts_ref_model_new(cfg);
  double *X = NULL, *T = NULL;
  if (!m || ts__ref_make_data(cfg, lanes * M, mbs, &X, &T)) {
    ts_ref_model_free(m);
    return NULL;
  }
  size_t n_el = (size_t)mbs * cfg->seq * cfg->hidden;
  int rc = 0;
  for (int r = 0; !rc && r < lanes; r++)
    for (int mb = 0; !rc && mb < M; mb++) {
      size_t e = (size_t)r * M + mb;
      rc = moe_entry(m, moe, r % ep, mb, mbs, X + e * n_el, T + e * n_el, n_el,
                     (double)lanes * M * mbs);
    }
  return oracle_done(m, X, T, rc);
}

ts_ref_model_t *ts_ref_oracle(const ts_job_t *job) {
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  if (ts_ref_config_for_job(job, &cfg, &err)) return NULL;
  if (cfg.experts > 0) return moe_oracle(job, &cfg);
  /* Every replica's micro-batches: lanes x M entries. */
  int M = replicas(job) * job->microbatches * job->iterations, mbs = job->micro_batch_size;
  ts_ref_model_t *m = ts_ref_model_new(&cfg);
  double *X = NULL, *T = NULL;
  if (!m || ts__ref_make_data(&cfg, M, mbs, &X, &T)) {
    ts_ref_model_free(m);
    return NULL;
  }
  size_t n = (size_t)M * (size_t)mbs * (size_t)cfg.seq * (size_t)cfg.hidden;
  /* The whole batch as one micro-batch: attention never mixes samples. */
  int rc = batch_grad(m, cfg.layers, M * mbs, X, X, T, n, (double)M * mbs);
  return oracle_done(m, X, T, rc);
}

ts_ref_model_t *ts_ref_oracle_sgd(const ts_job_t *job, int staleness) {
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  if (staleness < 0 || ts_ref_config_for_job(job, &cfg, &err)) return NULL;
  int m = job->microbatches, I = job->iterations, mbs = job->micro_batch_size, R = replicas(job);
  ts_ref_model_t **W = calloc((size_t)I + 1, sizeof *W); /* W[k] = W(k) */
  ts_ref_model_t *sum = ts_ref_model_new(&cfg), *out = NULL;
  double *X = NULL, *T = NULL, *y = NULL, *xt = NULL, *tt = NULL;
  size_t n_mb = (size_t)mbs * (size_t)cfg.seq * (size_t)cfg.hidden, n_it = (size_t)m * n_mb;
  size_t n_all = (size_t)R * n_it; /* iteration t's entries of every replica */
  if (!W || !sum || ts__ref_make_data(&cfg, R * m * I, mbs, &X, &T) ||
      !(y = malloc(n_all * sizeof *y)) || !(xt = malloc(n_all * sizeof *xt)) ||
      !(tt = malloc(n_all * sizeof *tt)))
    goto done;
  if (!(W[0] = ts_ref_model_clone(sum))) goto done;
  for (int t = 0; t < I; t++) {
    /* Iteration t's micro-batches of every replica r (entries r m I + t m
    ** + k, as ts_ref_run reads them) as one batch, with W(t - staleness). */
    for (int r = 0; r < R; r++) {
      size_t src = ((size_t)r * m * I + (size_t)t * m) * n_mb;
      memcpy(xt + (size_t)r * n_it, X + src, n_it * sizeof *xt);
      memcpy(tt + (size_t)r * n_it, T + src, n_it * sizeof *tt);
    }
    ts_ref_model_t *use = ts_ref_model_clone(W[t - staleness < 0 ? 0 : t - staleness]);
    if (!use) goto done;
    ts_ref_model_zero_grad(use);
    int rc = batch_grad(use, cfg.layers, R * m * mbs, xt, y, tt, n_all, (double)R * m * I * mbs);
    if (!rc) rc = !(W[t + 1] = ts_ref_model_clone(W[t]));
    for (int l = 0; !rc && l < cfg.layers; l++) {
      size_t n;
      const double *g = ts_ref_block_grad(use, l, &n);
      double *s = (double *)ts_ref_block_grad(sum, l, &n); /* owned, writable */
      double *w = ts_ref_block_params(W[t + 1], l, &n);
      for (size_t i = 0; i < n; i++) {
        s[i] += g[i];
        w[i] -= TS_REF_LR * g[i];
      }
    }
    ts_ref_model_free(use);
    if (rc) goto done;
  }
  if ((out = ts_ref_model_clone(sum)))
    for (int l = 0; l < cfg.layers; l++) {
      size_t n;
      const double *src = ts_ref_block_params(W[I], l, &n); /* n set before use */
      memcpy(ts_ref_block_params(out, l, NULL), src, n * sizeof(double));
    }
done:
  for (int k = 0; W && k <= I; k++) ts_ref_model_free(W[k]);
  free(W);
  ts_ref_model_free(sum);
  free(X);
  free(T);
  free(y);
  free(xt);
  free(tt);
  return out;
}
