/*
** ref_kernels.c: the numerical kernels of the reference model (ref_kernels.h):
** matrix products through GSL's CBLAS, LayerNorm, GELU and causal
** multi-head attention, forward and backward, in float64.
*/
#include "ref_kernels.h"

#include <gsl/gsl_cblas.h>
#include <math.h>
#include <string.h>

#define LN_EPS 1e-5

/* C = alpha op(A) op(B) + beta C, row-major, through GSL's CBLAS. */
void ts__ref_gemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda,
                 const double *B, int ldb, double beta, double *C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Every row of out[n x k] = bias. */
void ts__ref_fill_rows(double *out, const double *bias, size_t n, size_t k) {
  for (size_t i = 0; i < n; i++) memcpy(out + i * k, bias, k * sizeof(double));
}

/* acc[k] += column sums of a[n x k]. */
void ts__ref_add_colsum(double *acc, const double *a, size_t n, size_t k) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < k; j++) acc[j] += a[i * k + j];
}

/* LayerNorm forward on x[n x d]: xhat, rstd and out = g xhat + b. */
void ts__ref_ln_forward(const double *x, size_t n, size_t d, const double *g, const double *b,
                       double *xhat, double *rstd, double *out) {
  for (size_t i = 0; i < n; i++) {
    const double *xr = x + i * d;
    double mu = 0.0, var = 0.0;
    for (size_t j = 0; j < d; j++) mu += xr[j];
    mu /= (double)d;
    for (size_t j = 0; j < d; j++) var += (xr[j] - mu) * (xr[j] - mu);
    var /= (double)d;
    double r = 1.0 / sqrt(var + LN_EPS);
    rstd[i] = r;
    for (size_t j = 0; j < d; j++) {
      double h = (xr[j] - mu) * r;
      xhat[i * d + j] = h;
      out[i * d + j] = g[j] * h + b[j];
    }
  }
}

/* out = g xhat + b (the LayerNorm output rebuilt in the backward). */
void ts__ref_ln_rebuild(const double *xhat, size_t n, size_t d, const double *g, const double *b,
                       double *out) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) out[i * d + j] = g[j] * xhat[i * d + j] + b[j];
}

/* LayerNorm backward: dout is the gradient of the LN output; accumulates dg,
** db and ADDS the input gradient into dx. */
void ts__ref_ln_backward(const double *dout, const double *xhat, const double *rstd, size_t n,
                        size_t d, const double *g, double *dg, double *db, double *dx) {
  for (size_t i = 0; i < n; i++) {
    const double *dr = dout + i * d, *hr = xhat + i * d;
    double mean_dh = 0.0, mean_dhh = 0.0;
    for (size_t j = 0; j < d; j++) {
      double dh = dr[j] * g[j];
      mean_dh += dh;
      mean_dhh += dh * hr[j];
      dg[j] += dr[j] * hr[j];
      db[j] += dr[j];
    }
    mean_dh /= (double)d;
    mean_dhh /= (double)d;
    for (size_t j = 0; j < d; j++)
      dx[i * d + j] += rstd[i] * (dr[j] * g[j] - mean_dh - hr[j] * mean_dhh);
  }
}

#define GELU_C 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_A 0.044715

double ts__ref_gelu(double u) { return 0.5 * u * (1.0 + tanh(GELU_C * (u + GELU_A * u * u * u))); }

double ts__ref_gelu_grad(double u) {
  double t = tanh(GELU_C * (u + GELU_A * u * u * u));
  return 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * u * u);
}

/* Causal multi-head attention on qkv[n x 3d]: probs[mb H s s], out[n x d]. */
void ts__ref_attn_forward(const double *qkv, int mb, int s, int d, int heads, double *probs,
                         double *out) {
  int dh = d / heads, ld3 = 3 * d;
  double scale = 1.0 / sqrt((double)dh);
  for (int b = 0; b < mb; b++) {
    for (int h = 0; h < heads; h++) {
      const double *q = qkv + (size_t)b * s * ld3 + (size_t)h * dh;
      const double *k = q + d, *v = q + 2 * d;
      double *p = probs + ((size_t)b * heads + h) * s * s;
      ts__ref_gemm(0, 1, s, s, dh, scale, q, ld3, k, ld3, 0.0, p, s);
      for (int i = 0; i < s; i++) {
        double *row = p + (size_t)i * s, mx = row[0], sum = 0.0;
        for (int j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j <= i; j++) {
          row[j] = exp(row[j] - mx);
          sum += row[j];
        }
        for (int j = 0; j <= i; j++) row[j] /= sum;
        for (int j = i + 1; j < s; j++) row[j] = 0.0;
      }
      ts__ref_gemm(0, 0, s, dh, s, 1.0, p, s, v, ld3, 0.0, out + (size_t)b * s * d + (size_t)h * dh, d);
    }
  }
}

/* Attention backward: dout[n x d] -> dqkv[n x 3d] (overwritten); dp is
** s x s workspace. */
void ts__ref_attn_backward(const double *qkv, const double *probs, const double *dout, int mb,
                          int s, int d, int heads, double *dqkv, double *dp) {
  int dh = d / heads, ld3 = 3 * d;
  double scale = 1.0 / sqrt((double)dh);
  for (int b = 0; b < mb; b++) {
    for (int h = 0; h < heads; h++) {
      size_t qoff = (size_t)b * s * ld3 + (size_t)h * dh;
      const double *q = qkv + qoff, *k = q + d, *v = q + 2 * d;
      double *dq = dqkv + qoff, *dk = dq + d, *dv = dq + 2 * d;
      const double *p = probs + ((size_t)b * heads + h) * s * s;
      const double *dO = dout + (size_t)b * s * d + (size_t)h * dh;
      ts__ref_gemm(1, 0, s, dh, s, 1.0, p, s, dO, d, 0.0, dv, ld3);  /* dV = P^T dO */
      ts__ref_gemm(0, 1, s, s, dh, 1.0, dO, d, v, ld3, 0.0, dp, s);  /* dP = dO V^T */
      for (int i = 0; i < s; i++) {                           /* dS = P (dP - <P, dP>) */
        const double *pr = p + (size_t)i * s;
        double *dr = dp + (size_t)i * s, dot = 0.0;
        for (int j = 0; j < s; j++) dot += pr[j] * dr[j];
        for (int j = 0; j < s; j++) dr[j] = pr[j] * (dr[j] - dot);
      }
      ts__ref_gemm(0, 0, s, dh, s, scale, dp, s, k, ld3, 0.0, dq, ld3); /* dQ = dS K */
      ts__ref_gemm(1, 0, s, dh, s, scale, dp, s, q, ld3, 0.0, dk, ld3); /* dK = dS^T Q */
    }
  }
}

