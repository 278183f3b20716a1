/*
** ts_moe.h: GShard top-2 mixture-of-experts gating and the routing that
** the simulator and the reference MoE executor share.
**
** Gating (Lepikhin et al. 2020, GShard's public Top2Gating), per group of S
** tokens and E experts, from gate probabilities p[t][e] (a softmax):
**   - expert 1 = argmax_e p[t][e]; expert 2 = argmax after masking expert 1
**     (ties go to the lower index);
**   - g1, g2 are normalised: g1' = g1 / (g1 + g2), g2' = g2 / (g1 + g2);
**   - the second choice is dispatched when u < min(1, g2' / 0.5), u uniform
**     in [0, 1) drawn from the caller's generator, one draw per token in
**     group order (drawn for every token, so the stream never depends on
**     the gates);
**   - capacity C = ceil(S x capacity_factor / E), rounded up to a multiple
**     of capacity_multiple;
**   - a token's slot in its first expert is the number of earlier tokens of
**     the group with the same first expert (exclusive cumulative sum); it is
**     kept when slot < C;
**   - second choices queue after the kept first choices: slot = (kept first
**     choices of that expert) + (earlier dispatched second choices of it),
**     as GShard's code does (mask_1_count after the capacity mask); queueing
**     after all first choices (the paper's Algorithm 2) gives the same slots
**     and drops, as an expert whose first choices overflow is full either way;
**   - a dropped choice contributes nothing (the token passes through the
**     residual connection); the combine weights are g1' and g2' of the kept
**     choices, not renormalised;
**   - auxiliary loss = E^2 x mean_e(mean_t p[t][e] x fraction of tokens
**     whose first choice is e), counted before capacity.
**
** Routing of the simulator: for MoE layer j (0-based among the model's MoE
** layers), micro-batch mb and expert-parallel lane r, a GSL mt19937
** generator seeded from (seed, j, mb, r) first draws the "prior" gate
** logits of every token of every group, l[t][e] = log w_e + Gumbel noise,
** where w is the skew (uniform 1/E; Zipf (e + 1)^-a normalised; a table),
** so by the Gumbel-max trick the first choice follows w exactly; then the
** gating of each group draws its S uniforms.  The reference executor adds
** x W_g to the same prior logits (W_g starts at zero), so both route the
** same tokens to the same experts.
*/
#ifndef TS_MOE_H
#define TS_MOE_H

#include <gsl/gsl_rng.h>

#include "trainsim.h"

/* The gating of one group. */
typedef struct ts_moe_route {
  int S, E, C;
  int *expert;    /* [S * 2] expert of choice k of token t ([2t + k]) */
  int *slot;      /* [S * 2] slot in that expert, -1: dropped or not dispatched */
  double *gate;   /* [S * 2] combine weight (0 when not kept) */
  double *gnorm;  /* [S * 2] normalised g1', g2' (kept or not) */
  int *load;      /* [E] choices kept (<= C) */
  int *wanted;    /* [E] choices dispatched before capacity */
  int dropped;    /* dispatched choices beyond capacity */
  double aux;     /* auxiliary loss of the group */
} ts_moe_route_t;

/* Capacity of an expert for a group of S tokens. */
int ts_moe_capacity(int S, int E, double capacity_factor, int multiple);
/* Gates one group: probs is S x E, row-major, each row a distribution.
** Fills *out (allocated here; ts_moe_route_free).  Draws S uniforms from r. */
void ts_moe_gate(const double *probs, int S, int E, double capacity_factor, int multiple,
                 gsl_rng *r, ts_moe_route_t *out);
void ts_moe_route_free(ts_moe_route_t *rt);

/* The generator of (MoE layer j, micro-batch mb, lane r); gsl_rng_free. */
gsl_rng *ts_moe_rng(const ts_moe_t *m, int j, int mb, int lane);
/* Draws the prior logits of n tokens (n x E, row-major) from g. */
void ts_moe_prior(const ts_moe_t *m, gsl_rng *g, int n, double *logits);
/* Row-wise softmax of n x E logits into probs (may alias). */
void ts_moe_softmax(const double *logits, int n, int E, double *probs);

/* What the cost model keeps of a MoE model. */
typedef struct ts_moe_cost {
  int E, lanes, n_layers, M, tokens, groups, S, C;
  bool padded;         /* all-to-all of capacity-padded buffers */
  int *layer;          /* [n_layers] model layer of each MoE layer */
  int *part_first;     /* [n_parts] first MoE layer index of the part */
  int *part_count;     /* [n_parts] MoE layers in the part */
  double *seg_flops;   /* [n_layers + n_parts] forward FLOPs of the dense
                       ** segments: part k's segment i at [part_first[k] + k + i] */
  double expert_flops; /* forward FLOPs of one token through one expert */
  double token_bytes;  /* one token's activation: hidden x bytes_per_element */
  double *expert_params; /* [n_parts] expert parameters one device of the part
                       ** holds (not replicated over the lanes; ts_cost.c) */
  /* routing, [((j * M + mb) * lanes + r) * E + e]: tokens of lane r kept
  ** at expert e; wanted: dispatched before capacity */
  int *kept, *wanted;
  int *dropped;        /* [(j * M + mb) * lanes + r] */
  double *aux;         /* same index: mean of the groups' auxiliary losses */
} ts_moe_cost_t;

/* Builds the MoE part of the cost of a job cut into n_parts (NULL for a
** dense model) and runs the routing.  Never fails for a validated job. */
ts_moe_cost_t *ts_moe_cost_build(const ts_job_t *job, int n_parts);
void ts_moe_cost_free(ts_moe_cost_t *c);
/* 1 when model layer l is a MoE layer. */
int ts_moe_is_layer(const ts_moe_t *m, int l);
/* Tokens lane `from` sends to lane `to` at MoE layer j, micro-batch mb. */
int ts_moe_tokens(const ts_moe_cost_t *c, int j, int mb, int from, int to);
/* Token rows an all-to-all carries from lane `from` to lane `to`: the
** tokens (alltoall "tokens") or the capacity-padded slots, E/EP x groups x C
** (alltoall "capacity"). */
int ts_moe_rows(const ts_moe_cost_t *c, int j, int mb, int from, int to);

/* Forward FLOPs of one layer's attention for one micro-batch (ts_cost.c):
** the Q, K, V and output projections, 2 b s (h (q + 2 kv) + q h) with
** q = heads x head_dim and kv = kv_heads x head_dim, and the attention
** core 4 b s^2 q (= 2 b s 4 h^2 + 4 b s^2 h without grouped KV heads). */
double ts__cost_attention_flops(const ts_model_t *m, int seq, int mbs);

#endif /* TS_MOE_H */
