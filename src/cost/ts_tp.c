/*
** ts_tp.c: one device's share of a transformer part under Megatron 1D
** tensor parallelism (t ranks), sequence parallelism and selective
** recompute (README "Tensor parallelism"; shared notes on parallelism).
**
** b = micro_batch_size, s = seq_len, h = hidden, a = heads, f = ffn_hidden,
** V = vocab, e = bytes_per_element, k = 3 for a gated MLP and 2 otherwise,
** q = a d and kv = kv_heads d (d = head_dim; both h without grouped-query
** attention, which is what Table 2 assumes); t divides a and kv_heads.
**   compute         every compute kind's FLOPs / t: the QKV and first MLP
**                   GEMMs are column-split, the output projection and the
**                   second MLP GEMM row-split, the attention heads split a
**                   / t per rank, and the LM head vocabulary-parallel (V / t
**                   columns per rank).
**   selective       recompute "selective" (Korthikanti et al. 2022) keeps
**                   no attention scores and recomputes the attention core
**                   inside the backward: + 4 b s^2 q / t FLOPs per layer on
**                   backward and backward_input (none with flash attention,
**                   whose kernel already recomputes it and never kept them).
**   model states    parameters (and so weights, gradients, optimizer
**                   states) split / t + replicated, per part: as in
**                   Megatron-LM, every rank holds whole (replicated) each
**                   layer's two norms (2 x 2 h for LayerNorm, 2 h for
**                   RMSNorm), the row-split GEMMs' output biases b_o and
**                   b_2 (h each, with model.bias "all"), the learned
**                   position table (max_positions x h, first part; not
**                   vocabulary-parallel) and the final norm (last part);
**                   the rest is split: QKV and the MLP's input
**                   projection(s) with their biases by columns (K and V
**                   heads too), the output projections by rows, the word
**                   embedding and the LM head's copy by vocabulary.  With
**                   or without SP (without it the replicated gradients are
**                   whole on every rank and need no sync).  The grids (2d,
**                   2.5d, 3d) keep every parameter / q^2 or / q^3 as
**                   ColossalAI's blocked LayerNorm and biases do.
**   activations     per layer, with the generalised terms of
**                   ts_cost_layer_activation_bytes split into
**                     R = s b h (4 e + 2 [dropout masks])  (LayerNorm and
**                         QKV / MLP inputs: replicated without SP)
**                     X = s b (2 q + 2 kv + k f) e (Q, K, V, the projection's
**                         input, the MLP's f-wide tensors: split by heads
**                         and columns; 4 h + k f without GQA)
**                     S = a s^2 b (e + (1 + e) [dropout])  (scores, not
**                         with flash attention: split by heads)
**                   no SP: R + X / t + S / t; SP: (R + X + S) / t; selective
**                   drops S.  At e = 2, f = 4h, with dropout these are
**                   Table 2's s b h (10 + 24 / t + 5 a s / (h t)) and
**                   (s b h / t)(34 + 5 a s / h), and 34 s b h / t with
**                   selective recompute and SP.  Full recompute keeps the
**                   part's input: s b h e, / t with SP.
**   messages        pipeline messages b s h e / t per device with
**                   pipeline_scatter_gather (Megatron's scatter / gather
**                   optimisation), else b s h e.
**
** 2D (Optimus, Xu et al. 2021; tensor_parallel_mode "2d", t = q x q): the
** activations, weights and so every tensor of a layer are q x q blocked,
** so FLOPs, parameters, model states, activations (the SP column above:
** (R + X + S) / t) and pipeline messages are all / t = / q^2 per device;
** a selective recompute's core / t likewise.  ts_cost_tp2d_layer_bytes
** gives the SUMMA traffic per layer.  2.5D (Tesseract, Wang et al. 2021;
** t = q x q x d): the same but parameters and model states / q^2 (each
** depth layer holds the whole grid's weights); activations / (d q^2) = / t.
** 3D (Bian et al. 2021; t = q^3): everything / q^3 = / t.
**
** Replicated gradients (ts_cost_tp_sync_bytes): with SP (1D) and in 2D
** each rank computes only a share of the gradients of the parameters it
** holds whole (norms; with SP the row-split GEMMs' output biases, in 2D
** its grid column's bias blocks), which its sync group all-reduces once
** per iteration (trainsim.h gives the sizes).
*/
#include <math.h>
#include <string.h>

#include "ts_tp.h"

static int mlp_mats(const ts_model_t *m) { return m->gated_mlp ? 3 : 2; }

double ts_cost_tp_layer_activation_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int t,
                                         bool sp, ts_recompute_t rec) {
  double s = seq, b = mbs, h = m->hidden, f = m->ffn_hidden, a = m->heads, e = bpe;
  double q = (double)m->heads * m->head_dim, kv = (double)m->kv_heads * m->head_dim;
  double R = s * b * h * (4 * e + (m->dropout ? 2 : 0));
  double X = s * b * (2 * q + 2 * kv + mlp_mats(m) * f) * e;
  double S = 0;
  if (!m->flash_attention && rec != TS_RECOMPUTE_SELECTIVE)
    S = a * s * s * b * (e + (m->dropout ? 1 + e : 0));
  return sp ? (R + X + S) / t : R + (X + S) / t;
}

/* The layer's four GEMMs as (k, n) of an m x k by k x n product: QKV,
** the attention's output projection, the MLP's input projection(s), its
** output projection. */
static void layer_gemms(const ts_model_t *m, double kn[4][2]) {
  double h = m->hidden, f = m->ffn_hidden;
  double q = (double)m->heads * m->head_dim, kv = (double)m->kv_heads * m->head_dim;
  double in[4][2] = {{h, q + 2 * kv}, {q, h}, {h, (mlp_mats(m) - 1) * f}, {f, h}};
  memcpy(kn, in, sizeof in);
}

double ts_cost_tp2d_layer_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int q) {
  double kn[4][2], rows = (double)seq * mbs, sum = 0;
  layer_gemms(m, kn);
  for (int g = 0; g < 4; g++) sum += rows * kn[g][0] + kn[g][0] * kn[g][1];
  return 3.0 * (q - 1) / ((double)q * q) * sum * bpe;
}

double ts_cost_tp25d_layer_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int q, int d) {
  double kn[4][2], rows = (double)seq * mbs, sum = 0;
  layer_gemms(m, kn);
  for (int g = 0; g < 4; g++) sum += rows * kn[g][0] / d + kn[g][0] * kn[g][1];
  return 3.0 * (q - 1) / ((double)q * q) * sum * bpe;
}

double ts_cost_tp3d_layer_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int q) {
  double kn[4][2], rows = (double)seq * mbs, sum = 0;
  layer_gemms(m, kn);
  for (int g = 0; g < 4; g++) sum += rows * kn[g][0] + kn[g][0] * kn[g][1] + rows * kn[g][1];
  return 2.0 * (q - 1) / ((double)q * q * q) * sum * bpe;
}

/* Per layer, the parameters every 1D rank holds whole: two norms and,
** with model.bias "all", the row-split GEMMs' output biases b_o and b_2. */
static double layer_replicated(const ts_model_t *m) {
  double h = m->hidden, norm = (m->norm == TS_NORM_RMSNORM ? 1.0 : 2.0) * h;
  return 2 * norm + (m->bias == TS_BIAS_ALL ? 2 * h : 0);
}

double ts__cost_tp_replicated_params(const ts_model_t *m, int seq, int layers, bool first,
                                     bool last) {
  double norm = (m->norm == TS_NORM_RMSNORM ? 1.0 : 2.0) * m->hidden;
  return layers * layer_replicated(m) + (first ? ts__cost_position_params(m, seq) : 0) +
         (last && m->final_norm ? norm : 0);
}

double ts_cost_tp_sync_bytes(const ts_job_t *job, int layers, bool last, int *group) {
  const ts_model_t *m = &job->model;
  int t = job->tensor_parallel, q = job->tensor_parallel_grid;
  bool grid = q > 1 && !job->tensor_parallel_cube; /* 2d, 2.5d */
  *group = 1;
  if (m->kind != TS_MODEL_TRANSFORMER || t < 2 || (!grid && (q > 1 || !job->sequence_parallel)))
    return 0;
  if (!grid) { /* 1d + SP: the replicated parameters but the position table */
    *group = t;
    return ts__cost_tp_replicated_params(m, job->seq_len, layers, false, last) *
           job->bytes_per_element;
  }
  double h = m->hidden, f = m->ffn_hidden, norm = (m->norm == TS_NORM_RMSNORM ? 1.0 : 2.0) * h;
  double qw = (double)m->heads * m->head_dim, kv = (double)m->kv_heads * m->head_dim;
  double per = 2 * norm, bias = 0;
  if (m->bias != TS_BIAS_NONE) bias += qw + 2 * kv;
  if (m->bias == TS_BIAS_ALL) bias += h + (mlp_mats(m) - 1) * f + h;
  per += bias / q;
  *group = q;
  return (layers * per + (last && m->final_norm ? norm : 0)) * job->bytes_per_element;
}

/* The memory of one part for one micro-batch, as ts_cost.c's part_memory
** with each tensor's share per device. */
static void part_memory_tp(const ts_job_t *job, bool first, bool last, ts_part_cost_t *p) {
  const ts_model_t *m = &job->model;
  int t = job->tensor_parallel > 1 ? job->tensor_parallel : 1;
  /* The grids (2d, 2.5d, 3d) split every activation, as SP does. */
  bool grid = job->tensor_parallel_grid > 1, sp = job->sequence_parallel || grid;
  double s = job->seq_len, b = job->micro_batch_size, e = job->bytes_per_element;
  double h = m->hidden, V = m->vocab, sbh = s * b * h, st = sp ? t : 1;
  double la = ts_cost_tp_layer_activation_bytes(m, job->seq_len, job->micro_batch_size,
                                                job->bytes_per_element, t, sp, job->recompute);
  /* The recompute rebuilds the layers' full (not selective) stash. */
  double lfull = ts_cost_tp_layer_activation_bytes(m, job->seq_len, job->micro_batch_size,
                                                   job->bytes_per_element, t, sp,
                                                   TS_RECOMPUTE_NONE);
  double keep = 0;
  if (first) keep += 8 * s * b + (m->dropout ? sbh / st : 0);
  /* The final LayerNorm's input (sequence-split with SP), the LM head's
  ** (gathered) input and the fp32 softmax of the rank's V / t logits. */
  if (last) keep += sbh * e / st + sbh * e / (grid ? t : 1) + 4 * s * b * V / t;
  p->act_bytes = p->n_layers * la + keep;
  p->act_input_bytes = sbh * e / st + keep;
  p->rec_bytes = p->n_layers * lfull;
  p->fwd_tmp_bytes = last ? s * b * V * e / t : sbh * e;
  double attn = (double)m->heads * m->head_dim + 2.0 * m->kv_heads * m->head_dim;
  if (!m->flash_attention) attn += 2.0 * m->heads * job->seq_len;
  double work = fmax((mlp_mats(m) - 1) * (double)m->ffn_hidden, attn) / t;
  if (last && V / t > work) work = V / t;
  p->bwd_tmp_bytes = s * b * (2 * h / (grid ? t : 1) + work) * e;
}

void ts__cost_tp_apply(const ts_job_t *job, ts_cost_t *c) {
  const ts_model_t *m = &job->model;
  int t = job->tensor_parallel > 1 ? job->tensor_parallel : 1;
  bool sel = job->recompute == TS_RECOMPUTE_SELECTIVE;
  if (m->kind != TS_MODEL_TRANSFORMER || c->moe || (t == 1 && !sel)) return;
  double s = job->seq_len, b = job->micro_batch_size, e = job->bytes_per_element;
  double core = sel && !m->flash_attention ? 4 * b * s * s * m->heads * (double)m->head_dim : 0;
  for (int k = 0; k < c->n_parts; k++) {
    ts_part_cost_t *p = &c->part[k];
    for (int kind = 0; kind < TS_COMPUTE_KINDS; kind++) p->flops[kind] /= t;
    p->flops[TS_BACKWARD] += p->n_layers * core / t;
    p->flops[TS_BACKWARD_INPUT] += p->n_layers * core / t;
    part_memory_tp(job, k == 0, k == c->n_parts - 1, p);
    p->msg_bytes = s * b * m->hidden * e /
                   (job->pipeline_scatter_gather || job->tensor_parallel_grid > 1 ? t : 1);
    if (job->tensor_parallel_grid > 1) {
      /* 2.5d: each depth layer holds the grid's weights, / q^2. */
      p->params /= job->tensor_parallel_depth > 1 ? t / job->tensor_parallel_depth : t;
    } else if (t > 1) { /* 1d: split / t + replicated */
      double r = ts__cost_tp_replicated_params(m, job->seq_len, p->n_layers, k == 0,
                                               k == c->n_parts - 1);
      p->params = (p->params - r) / t + r;
    }
    p->weights_bytes = p->params * e;
    p->gradients_bytes = p->params * e;
    p->optimizer_bytes = p->params * (e < 4 ? 12.0 : 8.0);
  }
}
