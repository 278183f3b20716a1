/*
** ts_cost.c: the cost model.  Turns a model into per-part (virtual stage)
** costs for one micro-batch: FLOPs or seconds of each compute kind, the
** activation bytes a forward stashes, the bytes of the activation message,
** and the model states (weights, gradients, optimizer) a part holds.
**
** Transformer (b = micro_batch_size, s = seq_len, h = hidden, a = heads,
** f = ffn_hidden, V = vocab, e = bytes_per_element, k = 3 for a gated MLP
** and 2 otherwise; q = a d and kv = kv_heads d with d = head_dim, both h
** without grouped-query attention, which is what the formulas below show;
** README "Models" has the general ones):
**   forward FLOPs per layer   2 b s (h (q + 2 kv) + q h + k h f) + 4 b s^2 q
**                             = 2 b s (4 h^2 + k h f) + 4 b s^2 h
**                             (= Megatron's 24 b s h^2 + 4 b s^2 h at f = 4h)
**   LM head (last part)       2 b s h V forward
**   backward = 2 x forward; weight gradient and input gradient are one
**   forward each; recompute = forward.
**   parameters per layer      4 h^2 + 4 h + k h f + f + h + 4 h
**                             (= 12 h^2 + 13 h at f = 4h) with biases and
**                             LayerNorms (model.bias, model.norm); the first
**                             part adds the embeddings (V + s) h (s: the
**                             learned table's max_positions; none when
**                             rotary); with more than one part the last keeps
**                             a tied copy of the word embedding V h for the
**                             LM head, as Megatron does, or its own V h when
**                             untied, and the final norm (model.final_norm).
**   activations per layer     s b [(4 h + 2 q + 2 kv + k f) e + 2 h (dropout
**                             masks)], 8 h + k f elements without GQA
**                             + a s^2 b (e + (1 + e) with dropout) without
**                             flash attention (Korthikanti et al. 2022:
**                             34 s b h + 5 a s^2 b at e = 2, f = 4h).
**   full recompute keeps the part's input only: s b h e; the first part
**                             adds token ids and the embedding dropout mask,
**                             the last the LM head's inputs and the fp32
**                             softmax (kept with or without recompute); op
**                             transients: part_memory (README "Memory").
**   model states              weights e, gradients e, optimizer 12 bytes per
**                             parameter (fp32 master, Adam m and v) when e < 4,
**                             else 8 (m and v).
** A synthetic model gives seconds per stage directly; with v chunks per
** device each chunk takes 1/v of the stage's seconds, and its activations
** and weights in whole bytes: floor(B / v), the first B mod v chunks one
** byte more (as layers are split), so the chunks add up to the stage's B
** and no half byte appears (1 byte over 2 chunks: 1 and 0).  A byte count
** that is not whole in the job is split evenly.
**
** The layers are cut into parts by the job's partition (ts_cost_split,
** README "Partitioning"): uniform, balanced (a water-filling of the parts'
** forward + backward FLOPs, LM head included) or an explicit
** layers_per_stage.
*/
#include <math.h>
#include <stdlib.h>
#include <sysexits.h>

#include "trainsim.h"
#include "ts_gemm.h"
#include "ts_moe.h"
#include "ts_internal.h"
#include "ts_tp.h"

static int mlp_mats(const ts_model_t *m) { return m->gated_mlp ? 3 : 2; }

/* The widths of Q (heads x head_dim) and of K and V each (kv_heads x
** head_dim); both are h for a model with the default fields. */
static double q_width(const ts_model_t *m) { return (double)m->heads * m->head_dim; }
static double kv_width(const ts_model_t *m) { return (double)m->kv_heads * m->head_dim; }

/* Parameters of one MLP of width f: k h f weights, and with biases those
** of its k - 1 input projections and of its output (f + h when plain). */
static double mlp_params(const ts_model_t *m, double f) {
  double h = m->hidden, w = mlp_mats(m) * h * f;
  return m->bias == TS_BIAS_ALL ? w + (mlp_mats(m) - 1) * f + h : w;
}

/* Parameters of one norm: LayerNorm's weight and bias, RMSNorm's weight. */
static double norm_params(const ts_model_t *m) {
  return (m->norm == TS_NORM_RMSNORM ? 1.0 : 2.0) * m->hidden;
}

double ts__cost_attention_flops(const ts_model_t *m, int seq, int mbs) {
  double s = seq, b = mbs, h = m->hidden, q = q_width(m), kv = kv_width(m);
  return 2 * b * s * (h * (q + 2 * kv) + q * h) + 4 * b * s * s * q;
}

/* Chunk c's share of a synthetic stage's b bytes over v chunks: whole
** bytes, the remainder to the first chunks; b / v when b is not whole. */
static double chunk_bytes(double b, int v, int c) {
  if (v <= 1 || !(b >= 0 && b < 9e15 && b == floor(b))) return b / v;
  long long whole = (long long)b;
  return (double)(whole / v + (c < whole % v ? 1 : 0));
}

double ts_cost_layer_activation_bytes(const ts_model_t *m, int seq, int mbs, int bpe) {
  double s = seq, b = mbs, h = m->hidden, f = m->ffn_hidden, a = m->heads, e = bpe;
  /* Per token: LN1 input, QKV input, Q, K, V (q + 2 kv wide: 3 h without
  ** grouped key/value heads), attention output (q), LN2 input, MLP input,
  ** the k-1 ... f-wide MLP tensors. */
  double q = q_width(m), kv = kv_width(m);
  double per_token_elems = 4 * h + 2 * q + 2 * kv + mlp_mats(m) * f;
  double bytes = s * b * per_token_elems * e;
  if (m->dropout) bytes += 2 * s * b * h; /* 1-byte masks after attention and MLP */
  if (!m->flash_attention) {
    double scores = a * s * s * b;
    bytes += scores * e;                        /* softmax output */
    if (m->dropout) bytes += scores * (1 + e);  /* dropout mask and output */
  }
  return bytes;
}

/* The gradient working set of one layer's backward at its peak, per token
** in elements, net of the saved tensors autograd has released by then
** (README "Memory"): in the MLP, the k f-wide gradients alive in the
** activation's backward (GELU: those of its output and input; gated: of the
** activation, the gate and the up projection) less FC2's saved input, freed
** once FC2's backward ran: (k - 1) f; in the attention, dO, dQ, dK, dV less
** the output projection's saved input: 3 h, and without flash attention
** the gradients of the a x s probabilities and scores of each token. */
static double layer_grad_elems(const ts_model_t *m, int seq) {
  double attn = q_width(m) + 2 * kv_width(m); /* 3 h without GQA */
  if (!m->flash_attention) attn += 2.0 * m->heads * seq;
  return fmax((mlp_mats(m) - 1) * (double)m->ffn_hidden, attn);
}

/* The memory of one transformer part for one micro-batch (README
** "Memory"): its stashes, what a recompute adds and its op transients.
** first, last: the part holds the embeddings, the LM head and loss. */
static void part_memory(const ts_job_t *job, bool first, bool last, ts_part_cost_t *p) {
  const ts_model_t *m = &job->model;
  double s = job->seq_len, b = job->micro_batch_size, e = job->bytes_per_element;
  double h = m->hidden, V = m->vocab, sbh = s * b * h;
  double la = ts_cost_layer_activation_bytes(m, job->seq_len, job->micro_batch_size,
                                             job->bytes_per_element);
  /* Kept whether or not the part recomputes (neither is recomputed). */
  double keep = 0;
  if (first) keep += 8 * s * b + (m->dropout ? sbh : 0); /* token ids (int64), embedding dropout mask */
  if (last) keep += 2 * sbh * e + 4 * s * b * V; /* final LN and LM head inputs; fp32 softmax */
  p->act_bytes = p->n_layers * la + keep;
  p->act_input_bytes = sbh * e + keep;
  /* The recompute rebuilds every layer's tensors but the stashed input (the
  ** first layer's LayerNorm input is that very tensor: n la - s b h e) and
  ** holds the recomputed stage output, the root of the backward, until the
  ** backward ends (+ s b h e). */
  p->rec_bytes = p->n_layers * la;
  /* A forward holds its output until it is sent (the last part: the
  ** logits, until the loss has made its fp32 copy). */
  p->fwd_tmp_bytes = last ? s * b * V * e : sbh * e;
  /* A backward holds the output gradient, the residual-stream gradient
  ** that becomes the input gradient, and the largest working set of one
  ** layer, or on the last part the logits' gradient (its head phase). */
  double work = layer_grad_elems(m, job->seq_len);
  if (last && V > work) work = V;
  p->bwd_tmp_bytes = s * b * (2 * h + work) * e;
}

/* One layer: Q, K, V and output projections (h q + 2 h kv + q h), their
** biases (q + 2 kv + h; only q + 2 kv for "qkv"), the MLP and two norms. */
static double layer_params(const ts_model_t *m) {
  double h = m->hidden, q = q_width(m), kv = kv_width(m);
  double attn = h * (q + 2 * kv) + q * h;
  if (m->bias != TS_BIAS_NONE) attn += q + 2 * kv;
  if (m->bias == TS_BIAS_ALL) attn += h;
  return attn + mlp_params(m, m->ffn_hidden) + 2 * norm_params(m);
}

/* The word embedding V h and a learned position table P h (P =
** max_positions, or seq when 0); rotary positions have no parameters. */
double ts__cost_position_params(const ts_model_t *m, int seq) {
  double P = m->position == TS_POSITION_ROTARY ? 0 : m->max_positions ? m->max_positions : seq;
  return P * m->hidden;
}

static double embedding_params(const ts_model_t *m, int seq) {
  return (double)m->vocab * m->hidden + ts__cost_position_params(m, seq);
}

/* The last part's own parameters: the final norm, and the LM head V h when
** it is not the word embedding or (tied) as a copy on another device. */
static double head_params(const ts_model_t *m, bool copy) {
  double p = m->final_norm ? norm_params(m) : 0;
  if (!m->tie_embeddings || copy) p += (double)m->vocab * m->hidden;
  return p;
}

double ts_cost_transformer_params(const ts_model_t *m, int seq) {
  return m->layers * layer_params(m) + embedding_params(m, seq) + head_params(m, false);
}

static double layer_forward_flops(const ts_model_t *m, int seq, int mbs) {
  double s = seq, b = mbs, h = m->hidden, f = m->ffn_hidden;
  return ts__cost_attention_flops(m, seq, mbs) + 2 * b * s * mlp_mats(m) * h * f;
}

static void model_states(ts_part_cost_t *p, int bpe) {
  p->weights_bytes = p->params * bpe;
  p->gradients_bytes = p->params * bpe;
  p->optimizer_bytes = p->params * (bpe < 4 ? 12.0 : 8.0);
}

/* MoE layers (README "Mixture of experts"): a device of a stage holds the
** attention, the gate (h E) and E / EP experts of each MoE layer of its part
** instead of the dense MLP; the part's FLOPs become the dense segments plus
** the experts' FLOPs of the tokens the lane's devices actually computed,
** averaged over the lanes and micro-batches; FLOPs per iteration count every
** lane. */
static void moe_costs(const ts_job_t *job, ts_cost_t *c) {
  const ts_model_t *m = &job->model;
  ts_moe_cost_t *mc = c->moe;
  double h = m->hidden;
  int E = mc->E, per = E / mc->lanes;
  double dense_mlp = mlp_params(m, m->ffn_hidden), expert = mlp_params(m, m->moe.expert_ffn);
  double gate = h * E;
  c->model_params += mc->n_layers * (E * expert + gate - dense_mlp);
  c->model_flops_per_iteration = 0;
  for (int p = 0; p < c->n_parts; p++) {
    ts_part_cost_t *pc = &c->part[p];
    int n = mc->part_count[p], j0 = mc->part_first[p];
    pc->params += n * (per * expert + gate - dense_mlp);
    mc->expert_params[p] = n * per * expert;
    model_states(pc, job->bytes_per_element);
    double dense = 0, tokens = 0;
    for (int i = 0; i <= n; i++) dense += mc->seg_flops[j0 + p + i];
    for (int j = j0; j < j0 + n; j++)
      for (int mb = 0; mb < mc->M; mb++)
        for (int r = 0; r < mc->lanes; r++)
          for (int e = 0; e < E; e++) tokens += mc->kept[(((size_t)j * mc->M + mb) * mc->lanes + r) * E + e];
    double fw = dense + tokens * mc->expert_flops / ((double)mc->M * mc->lanes);
    pc->flops[TS_FORWARD] = fw;
    pc->flops[TS_BACKWARD] = 2 * fw;
    pc->flops[TS_BACKWARD_INPUT] = pc->flops[TS_WEIGHT_GRAD] = fw;
    pc->flops[TS_RECOMPUTE] = fw;
    c->model_flops_per_iteration += 3 * (dense * mc->M * mc->lanes + tokens * mc->expert_flops);
  }
  c->model_flops_per_iteration /= job->iterations;
}

const char *ts_partition_name(ts_partition_t p) {
  switch (p) {
    case TS_PARTITION_BALANCED: return "balanced";
    case TS_PARTITION_EXPLICIT: return "explicit";
    default: return "uniform";
  }
}

/* ---- partitioning ------------------------------------------------------ */

/* The most layers (0 .. n) a part of extra FLOPs e holds within a level t:
** the largest c with c w + e <= t (strict: < t); 0 when none.  The test is
** the same expression as the level's own, so a level c w + e holds c. */
static long long level_cap(int n, double w, double e, double t, bool strict) {
  long long lo = 0, hi = n;
  while (lo < hi) {
    long long mid = lo + (hi - lo + 1) / 2;
    double x = (double)mid * w + e;
    if (strict ? x < t : x <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/* The parts' extras: the first part (index 0), the middle ones (p - 2 of
** them) and the last; p = 1 is one part with both ends. */
typedef struct {
  int n, p;
  double w, e[3]; /* first, middle, last */
  long long mult[3];
} parts_t;

/* Layers the parts hold when each is filled to level t, each keeping at
** least one layer. */
static long long level_fill(const parts_t *q, double t, bool strict) {
  long long sum = 0;
  for (int c = 0; c < 3; c++) {
    if (!q->mult[c]) continue;
    long long k = level_cap(q->n, q->w, q->e[c], t, strict);
    sum += q->mult[c] * (k < 1 ? 1 : k);
  }
  return sum;
}

/* The balanced split is a water-filling: the lowest level t (a value
** c w + e of some part) at which every part filled to t, keeping at least
** one layer, holds all n layers.  No split has a smaller largest part:
** one whose largest part is below t holds fewer.  Parts take what they
** hold strictly below t, and the layers still missing go one each to the
** parts that reach t exactly, earliest first (earlier parts take the
** remainder, as in the uniform split, which this is when all extras are
** 0). */
void ts_cost_balanced_split(int n, int p, double w, double e_first, double e_last, int *count) {
  if (p == 1) {
    count[0] = n;
    return;
  }
  parts_t q = {n, p, w, {e_first, 0, e_last}, {1, p - 2, 1}};
  double best = INFINITY;
  for (int c = 0; c < 3; c++) {
    if (!q.mult[c]) continue;
    long long lo = 0, hi = n; /* the smallest c-level that holds n layers */
    while (lo < hi) {
      long long mid = lo + (hi - lo) / 2;
      if (level_fill(&q, (double)mid * w + q.e[c], false) >= n)
        hi = mid;
      else
        lo = mid + 1;
    }
    double t = (double)lo * w + q.e[c];
    if (level_fill(&q, t, false) >= n && t < best) best = t;
  }
  long long left = n;
  for (int k = 0; k < p; k++) {
    int c = k == 0 ? 0 : k == p - 1 ? 2 : 1;
    long long below = level_cap(n, w, q.e[c], best, true);
    count[k] = (int)(below < 1 ? 1 : below);
    left -= count[k];
  }
  for (int k = 0; k < p && left > 0; k++) {
    int c = k == 0 ? 0 : k == p - 1 ? 2 : 1;
    long long at = level_cap(n, w, q.e[c], best, false);
    if (at > count[k]) {
      count[k]++;
      left--;
    }
  }
}

int ts_cost_split(const ts_job_t *job, int n_parts, int *count, ts_err_t *err) {
  const ts_model_t *m = &job->model;
  if (n_parts < 1 || n_parts > m->layers)
    return ts_err_set(err, EX_DATAERR, "%s: stages: %d model parts for the model's %d layers",
                      job->path, n_parts, m->layers);
  if (job->partition == TS_PARTITION_EXPLICIT) {
    if (job->n_layers_per_stage != n_parts)
      return ts_err_set(err, EX_DATAERR,
                        "%s: layers_per_stage: %d entries, but the schedule cuts the model into "
                        "%d parts",
                        job->path, job->n_layers_per_stage, n_parts);
    for (int k = 0; k < n_parts; k++) count[k] = job->layers_per_stage[k];
    return 0;
  }
  if (job->partition == TS_PARTITION_BALANCED) {
    /* Forward 1, backward 2 (input and weight gradients), recompute 1 when
    ** the job recomputes; the LM head is never recomputed.  The embedding
    ** is a lookup, which the cost model gives no FLOPs. */
    double lf = layer_forward_flops(m, job->seq_len, job->micro_batch_size);
    double head = 2.0 * job->micro_batch_size * job->seq_len * m->hidden * (double)m->vocab;
    double embed = 0;
    int k = job->recompute == TS_RECOMPUTE_FULL ? 4 : 3;
    ts_cost_balanced_split(m->layers, n_parts, k * lf, 3 * embed, 3 * head, count);
    return 0;
  }
  int base = m->layers / n_parts, rem = m->layers % n_parts;
  for (int k = 0; k < n_parts; k++) count[k] = base + (k < rem ? 1 : 0);
  return 0;
}

/* ---- the cost table ---------------------------------------------------- */

int ts_cost_build(const ts_job_t *job, int n_parts, ts_cost_t **out, ts_err_t *err) {
  *out = NULL;
  const ts_model_t *m = &job->model;
  if (n_parts < 1) return ts_err_set(err, EX_SOFTWARE, "%s: no model parts", job->path);
  if (m->kind == TS_MODEL_TRANSFORMER && n_parts > m->layers)
    return ts_err_set(err, EX_DATAERR, "%s: stages: %d model parts exceed the model's %d layers",
                      job->path, n_parts, m->layers);
  int *count = NULL;
  if (m->kind == TS_MODEL_TRANSFORMER) {
    count = ts__xcalloc((size_t)n_parts, sizeof *count);
    int rc = ts_cost_split(job, n_parts, count, err);
    if (rc) {
      free(count);
      return rc;
    }
  }
  ts_cost_t *c = ts__xcalloc(1, sizeof *c);
  c->n_parts = n_parts;
  c->part = ts__xcalloc((size_t)n_parts, sizeof *c->part);
  int e = job->bytes_per_element, s = job->seq_len, b = job->micro_batch_size;

  if (m->kind == TS_MODEL_SYNTHETIC) {
    int v = n_parts / job->stages;
    if (v < 1) v = 1;
    for (int k = 0; k < n_parts; k++) {
      ts_part_cost_t *p = &c->part[k];
      int st = k % job->stages;
      p->first_layer = k;
      p->n_layers = 1;
      p->seconds[TS_FORWARD] = m->forward_s[st] / v;
      p->seconds[TS_BACKWARD] = m->backward_s[st] / v;
      p->seconds[TS_RECOMPUTE] = m->recompute_s[st] / v;
      p->seconds[TS_WEIGHT_GRAD] = m->weight_grad_s[st] / v;
      p->seconds[TS_BACKWARD_INPUT] = (m->backward_s[st] - m->weight_grad_s[st]) / v;
      p->act_bytes = chunk_bytes(m->activation_bytes[st], v, k / job->stages);
      p->act_input_bytes = m->activation_message_bytes;
      p->rec_bytes = p->act_bytes; /* the recompute re-materialises the stash */
      /* Transients are per op: each chunk's op holds the stage's figure. */
      p->fwd_tmp_bytes = m->forward_transient_bytes ? m->forward_transient_bytes[st] : 0;
      p->bwd_tmp_bytes = m->backward_transient_bytes ? m->backward_transient_bytes[st] : 0;
      p->msg_bytes = m->activation_message_bytes;
      p->params = 0;
      p->weights_bytes = chunk_bytes(m->weights_bytes[st], v, k / job->stages);
      p->gradients_bytes = p->weights_bytes; /* a gradient per weight */
    }
    c->has_flops = false;
    *out = c;
    return 0;
  }

  double lf = layer_forward_flops(m, s, b);
  double lp = layer_params(m);
  double head = 2.0 * b * s * m->hidden * (double)m->vocab;
  int first = 0;
  for (int k = 0; k < n_parts; k++) {
    ts_part_cost_t *p = &c->part[k];
    p->first_layer = first;
    p->n_layers = count[k];
    first += p->n_layers;
    double fw = p->n_layers * lf + (k == n_parts - 1 ? head : 0);
    p->flops[TS_FORWARD] = fw;
    p->flops[TS_BACKWARD] = 2 * fw;
    p->flops[TS_BACKWARD_INPUT] = fw;
    p->flops[TS_WEIGHT_GRAD] = fw;
    /* The LM head is not recomputed: its input is stashed by the loss. */
    p->flops[TS_RECOMPUTE] = p->n_layers * lf;
    part_memory(job, k == 0, k == n_parts - 1, p);
    p->msg_bytes = (double)s * b * m->hidden * e;
    p->params = p->n_layers * lp;
    if (k == 0) p->params += embedding_params(m, s);
    if (k == n_parts - 1) p->params += head_params(m, n_parts > 1);
    model_states(p, e);
    c->model_flops_per_iteration += (double)job->microbatches * 3 * fw;
  }
  free(count);
  c->model_params = ts_cost_transformer_params(m, s);
  c->has_flops = true;
  if ((c->moe = ts_moe_cost_build(job, n_parts))) moe_costs(job, c);
  ts__cost_tp_apply(job, c); /* tensor-parallel shares (README "Tensor parallelism") */
  ts__cost_work(job, c);
  *out = c;
  return 0;
}

void ts_cost_free(ts_cost_t *c) {
  if (!c) return;
  ts_moe_cost_free(c->moe);
  free(c->part);
  free(c);
}
