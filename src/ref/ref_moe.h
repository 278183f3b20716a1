/*
** ref_moe.h: the reference executor of one GShard MoE layer, real float64
** math on threads.
**
** The layer: y_t = x_t + sum over the kept choices k of token t of
** gate_k x Expert_{e_k}(x_t), with Expert_e(x) = gelu(x W1_e) W2_e (tanh
** GELU, no biases) and top-2 gating (ts_moe.h) of the logits
** prior + x W_g, where prior are the simulator's seeded prior logits of
** (layer, micro-batch, lane) and W_g starts at zero, so the routing of the
** checked step is the simulator's.  Loss: sum_t dY_t . y_t + aux_weight x
** (sum over groups of the auxiliary loss), with dY a fixed random tensor;
** the backward gives dX, dW_g (through the normalised gates and the
** auxiliary loss; the top-k choice itself has no gradient) and every
** expert's dW1, dW2.
**
** Expert parallel (threads = EP): thread r owns the tokens of lane r and the
** experts r E/EP .. (r + 1) E/EP - 1.  Tokens really move: the dispatch
** writes each peer a buffer of the token rows routed to its experts (with
** the expert of each row), the experts compute and send their output rows
** back (combine); the backward sends the output gradients to the experts
** and the input gradients back.  Threads meet at a barrier between phases.
** One device (threads = 1): one thread owns every lane's tokens and every
** expert and runs the same code; the per-lane gating is unchanged.
** The math (routing, experts, combine, gate backward) is the reference
** model's MoE block's, ref_moe_layer.h; the executor's MoE ops run the same
** functions through ts_rt_* (ref_moe_exec.c).
*/
#ifndef REF_MOE_H
#define REF_MOE_H

#include "trainsim.h"

typedef struct ts_ref_moe_config {
  const ts_moe_t *moe;  /* experts, expert_parallel (lanes), capacity, groups, routing */
  int hidden, ffn;      /* h, expert hidden size f */
  int tokens;           /* tokens per lane (micro_batch_size x seq_len) */
  int layer, mb;        /* routing key: MoE layer index and micro-batch */
  double aux_weight;    /* weight of the auxiliary loss in the loss */
  unsigned long seed;   /* inputs, output gradient and expert weights */
  /* Finite-difference checks: adds eps to element eps_index of X (1), W_g
  ** (2) or W1 (3) after initialisation; eps_what 0: none. */
  int eps_what;
  size_t eps_index;
  double eps;
} ts_ref_moe_config_t;

typedef struct ts_ref_moe_result {
  int lanes, E, tokens, hidden, ffn;
  double *y, *dx;       /* [lanes * tokens * hidden] */
  double *dwg;          /* [hidden * E] summed over lanes */
  double *dw1, *dw2;    /* [E * hidden * ffn], [E * ffn * hidden] */
  int *kept;            /* [lanes * E] tokens of lane r kept at expert e */
  long *received;       /* [lanes] token rows the experts of lane q's device
                        ** computed (one device: all on index 0) */
  long dropped;
  double aux;           /* sum over lanes and groups */
  double loss;          /* sum dY . y + aux_weight x aux */
} ts_ref_moe_result_t;

/* Runs forward and backward of the layer on `threads` threads: 1 (one
** device) or moe->expert_parallel.  Returns 0, or EX_USAGE (bad threads),
** EX_OSERR (thread or memory failure) with a message. */
int ts_ref_moe_run(const ts_ref_moe_config_t *c, int threads, ts_ref_moe_result_t *out,
                   ts_err_t *err);
void ts_ref_moe_result_free(ts_ref_moe_result_t *r);

#endif /* REF_MOE_H */
