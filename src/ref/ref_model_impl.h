/*
** ref_model_impl.h: the representation of a reference model
** (ts_ref_model_t of ref_model.h), shared by the two files that implement
** it: ref_model_params.c (shapes, construction, clone, accessors, the
** accounting allocator) and ref_model.c (forward, backward, stash).  No
** other file includes it.
*/
#ifndef TS_REF_MODEL_IMPL_H
#define TS_REF_MODEL_IMPL_H

#include "ref_model.h"

struct ts_ref_model {
  ts_ref_config_t cfg;
  size_t block_n;  /* parameters per block */
  double *params;  /* layers * block_n */
  double *grads;   /* layers * block_n */
  /* MoE layers: moe_n parameters each, layer l's at moe_at[l] x moe_n
  ** (moe_at[l] -1: a dense layer) */
  size_t moe_n;
  int n_moe, *moe_at;
  double *moe_params, *moe_grads;
  /* Selective recompute: attention cores its backwards recomputed (ref_model.c,
  ** ref_tp.c), and how many of those gave an attention output that is not
  ** bitwise the one the forward kept. */
  long core_recomputes, core_mismatches;
};

/* Pointers to the parameter (or gradient) tensors of one block. */
typedef struct block_view {
  double *ln1_g, *ln1_b, *wqkv, *bqkv, *wo, *bo, *ln2_g, *ln2_b, *w1, *b1, *w2, *b2;
} block_view_t;

/* The views of the twelve tensors of one block whose parameters (or
** gradients) start at base, in ts_ref_param_t order. */
block_view_t ts__ref_block_view(const ts_ref_config_t *c, double *base);

#endif /* TS_REF_MODEL_IMPL_H */
