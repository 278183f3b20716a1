/*
** ref_moe_layer.h: the math of one MoE block of the reference model, in
** pieces that the reference executor runs on different devices (and the
** one-thread oracle runs in a row).  Internal to the reference executor.
**
** A MoE block l (ts_ref_is_moe_layer) is a pre-LayerNorm transformer block
** whose MLP is GShard's top-2 mixture of experts (ref_moe.h's layer):
**   x1 = x + Attn(LN1(x)),  u = LN2(x1),
**   y_t = x1_t + sum over the kept choices k of token t of g_k E_{e_k}(u_t),
**   E_e(u) = gelu(u W1_e) W2_e (tanh GELU, no biases),
** with the gates g of ts_moe_gate on the probabilities softmax(prior + u
** W_g), prior the simulator's seeded logits of (MoE layer j, micro-batch,
** lane) (ts_moe_rng, ts_moe_prior): W_g starts at zero, so the routing is the
** simulator's.  The loss gets aux_w x (sum over the groups of the auxiliary
** loss); the top-k choice itself has no gradient.
** Pieces: the attention half (x -> x1, u; its stash), the routing of one
** lane's tokens, one expert on one token row, the combine of expert rows
** and its backward, and the gate's backward.  ts_ref_moe_run (ref_moe.h,
** the lone layer) and the executor's MoE ops (ref_moe_exec.c) both use them.
*/
#ifndef TS_REF_MOE_LAYER_H
#define TS_REF_MOE_LAYER_H

#include "ref_model.h"
#include "trainsim.h"

/* ---- the attention half --------------------------------------------------- */

typedef struct ts__ref_half ts__ref_half_t;

/* x1 = x + Attn(LN1(x)) and u = LN2(x1) of block l for mb samples (x, x1,
** u: mb x seq rows of hidden; distinct buffers).  The stash (xhat1, rstd1,
** qkv, probs, attn, xhat2, rstd2: the dense block's list without the
** MLP's) is allocated through mem.  NULL on a bad block or out of memory. */
ts__ref_half_t *ts__ref_half_forward(ts_ref_model_t *m, int l, int mb, const double *x,
                                     double *x1, double *u, ts_ref_mem_t *mem);
/* Backward of the half: dx1 is the gradient reaching x1 through the
** residual, du the gradient of u; writes dx (may alias dx1), accumulates
** block l's LN1, QKV, projection and LN2 gradients, frees the stash.
** Returns 0 or EX_OSERR (then the stash is still the caller's). */
int ts__ref_half_backward(ts_ref_model_t *m, ts__ref_half_t *st, const double *dx1,
                          const double *du, double *dx, ts_ref_mem_t *mem);
void ts__ref_half_free(ts__ref_half_t *st, ts_ref_mem_t *mem);

/* ---- routing ---------------------------------------------------------------- */

/* The gating of one lane's T tokens at one MoE layer and micro-batch. */
typedef struct ts__ref_route {
  int T, E, S, G, C;
  double *probs;    /* [T x E] */
  int *expert;      /* [T x 2] expert of choice k of token t at 2 t + k */
  double *gate;     /* [T x 2] combine weight (0 when not kept) */
  double *dgate;    /* [T x 2] gradient of the loss by the gate (caller fills) */
  int *top1;        /* [G x E] first choices per group (auxiliary loss) */
  int *idx;         /* [E x G x C] choice 2 t + k kept in each slot, -1: empty */
  int *kept;        /* [E] choices kept per expert */
  long dropped;
  double aux;       /* sum over the groups */
} ts__ref_route_t;

/* Routes T tokens u (T x h) with the gate Wg (h x E) for MoE layer j,
** micro-batch mb and lane of moe.  Returns 0 or EX_OSERR. */
int ts__ref_route(const ts_moe_t *moe, int j, int mb, int lane, int T, int h, const double *u,
                  const double *Wg, ts__ref_route_t *r);
void ts__ref_route_free(ts__ref_route_t *r);
/* The kept choices at experts [elo, ehi), in (expert, group, slot) order:
** their choice ids (2 t + k) to tk and experts to ex (either may be NULL);
** returns their number. */
int ts__ref_route_rows(const ts__ref_route_t *r, int elo, int ehi, int *tk, int *ex);

/* ---- combine, experts and the gate's backward ---------------------------------- */

/* The combine of n expert output rows out (n x h) that carry the choices tk
** of r: row t of y (T x h) gets gate[tk] x its row, for each row in order. */
void ts__ref_combine(const ts__ref_route_t *r, int n, const int *tk, const double *out, int h,
                     double *y);
/* Its backward for the layer's output gradient dy (T x h): writes the
** rows' output gradients dout (n x h, gate x dy) and r->dgate of each
** choice (dy . out). */
void ts__ref_combine_grad(ts__ref_route_t *r, int n, const int *tk, const double *out,
                          const double *dy, int h, double *dout);
/* The backward of the dispatch: ADDS the rows' input gradients dx (n x h)
** into the rows of their tokens in du (T x h). */
void ts__ref_dispatch_grad(int n, const int *tk, const double *dx, int h, double *du);

/* One token row in (h) through expert (W1: h x f, W2: f x h): a = in W1,
** hd = gelu(a) (f each), out = hd W2 (h). */
void ts__ref_expert_forward(const double *W1, const double *W2, int h, int f, const double *in,
                            double *a, double *hd, double *out);
/* Its backward for the output gradient go: accumulates dW1, dW2, writes the
** input gradient gin (h); dh is f doubles of workspace. */
void ts__ref_expert_backward(const double *W1, const double *W2, int h, int f, const double *in,
                             const double *a, const double *hd, const double *go, double *dW1,
                             double *dW2, double *gin, double *dh);
/* The gate's backward for one lane: from r->dgate and the auxiliary loss
** (weight aux_w) through the normalised top-2 gates and the softmax to the
** logits; accumulates dWg (h x E) and ADDS into du (T x h).  Returns 0 or
** EX_OSERR. */
int ts__ref_gate_backward(const ts__ref_route_t *r, const double *u, const double *Wg, int h,
                          double aux_w, double *dWg, double *du);

#endif /* TS_REF_MOE_LAYER_H */
