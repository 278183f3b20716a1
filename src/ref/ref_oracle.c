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

ts_ref_model_t *ts_ref_oracle(const ts_job_t *job) {
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  if (ts_ref_config_for_job(job, &cfg, &err)) return NULL;
  int M = job->microbatches * job->iterations, mbs = job->micro_batch_size;
  ts_ref_model_t *m = ts_ref_model_new(&cfg);
  double *X = NULL, *T = NULL;
  if (!m || ts__ref_make_data(&cfg, M, mbs, &X, &T)) {
    ts_ref_model_free(m);
    return NULL;
  }
  size_t n = (size_t)M * (size_t)mbs * (size_t)cfg.seq * (size_t)cfg.hidden;
  /* The whole batch as one micro-batch: attention never mixes samples. */
  int rc = batch_grad(m, cfg.layers, M * mbs, X, X, T, n, (double)M * mbs);
  free(X);
  free(T);
  if (rc) {
    ts_ref_model_free(m);
    return NULL;
  }
  return m;
}

ts_ref_model_t *ts_ref_oracle_sgd(const ts_job_t *job, int staleness) {
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  if (staleness < 0 || ts_ref_config_for_job(job, &cfg, &err)) return NULL;
  int m = job->microbatches, I = job->iterations, mbs = job->micro_batch_size;
  ts_ref_model_t **W = calloc((size_t)I + 1, sizeof *W); /* W[k] = W(k) */
  ts_ref_model_t *sum = ts_ref_model_new(&cfg), *out = NULL;
  double *X = NULL, *T = NULL, *y = NULL;
  size_t n_it = (size_t)m * (size_t)mbs * (size_t)cfg.seq * (size_t)cfg.hidden;
  if (!W || !sum || ts__ref_make_data(&cfg, m * I, mbs, &X, &T) || !(y = malloc(n_it * sizeof *y)))
    goto done;
  if (!(W[0] = ts_ref_model_clone(sum))) goto done;
  for (int t = 0; t < I; t++) {
    /* Iteration t's m micro-batches as one batch, with W(t - staleness). */
    ts_ref_model_t *use = ts_ref_model_clone(W[t - staleness < 0 ? 0 : t - staleness]);
    if (!use) goto done;
    ts_ref_model_zero_grad(use);
    int rc = batch_grad(use, cfg.layers, m * mbs, X + (size_t)t * n_it, y, T + (size_t)t * n_it,
                        n_it, (double)m * I * mbs);
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
  return out;
}
