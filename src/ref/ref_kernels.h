/*
** ref_kernels.h: the numerical kernels of the reference model, shared by
** the dense blocks (ref_model.c) and the MoE blocks (ref_moe_layer.c).
** Tensors are row-major float64 arrays; n is a token count, d the hidden
** size.  Every kernel touches only the buffers it is given (thread-safe).
** Internal to the reference executor.
*/
#ifndef TS_REF_KERNELS_H
#define TS_REF_KERNELS_H

#include <stddef.h>

/* C = alpha op(A) op(B) + beta C, row-major, through GSL's CBLAS. */
void ts__ref_gemm(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda,
                  const double *B, int ldb, double beta, double *C, int ldc);
/* Every row of out[n x k] = bias. */
void ts__ref_fill_rows(double *out, const double *bias, size_t n, size_t k);
/* acc[k] += column sums of a[n x k]. */
void ts__ref_add_colsum(double *acc, const double *a, size_t n, size_t k);
/* LayerNorm (eps 1e-5) forward on x[n x d]: xhat, rstd and out = g xhat + b. */
void ts__ref_ln_forward(const double *x, size_t n, size_t d, const double *g, const double *b,
                        double *xhat, double *rstd, double *out);
/* out = g xhat + b (the LayerNorm output rebuilt in the backward). */
void ts__ref_ln_rebuild(const double *xhat, size_t n, size_t d, const double *g,
                        const double *b, double *out);
/* LayerNorm backward: dout is the gradient of the LN output; accumulates dg,
** db and ADDS the input gradient into dx. */
void ts__ref_ln_backward(const double *dout, const double *xhat, const double *rstd, size_t n,
                         size_t d, const double *g, double *dg, double *db, double *dx);
/* GELU (tanh approximation) and its derivative. */
double ts__ref_gelu(double u);
double ts__ref_gelu_grad(double u);
/* Causal multi-head attention on qkv[n x 3d]: probs[mb H s s], out[n x d]. */
void ts__ref_attn_forward(const double *qkv, int mb, int s, int d, int heads, double *probs,
                          double *out);
/* Attention backward: dout[n x d] -> dqkv[n x 3d] (overwritten); dp is
** s x s workspace. */
void ts__ref_attn_backward(const double *qkv, const double *probs, const double *dout, int mb,
                           int s, int d, int heads, double *dqkv, double *dp);

#endif /* TS_REF_KERNELS_H */
