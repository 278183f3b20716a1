/*
** ts_gemm.c: the GEMM efficiency curves and the work of a transformer op
** (README "Model of time").
**
** The H200 curve is fitted (least squares on log time, Nelder-Mead) to the
** 35 GEMMs of shared/calibration/h200-single-gpu.json and to nothing else:
** RMS error 5.2%, largest 13.9% (2048^3).  Its whole-layer times are an
** independent check (tests/test_gemm.c).  The A100 and H100 curves are the
** H200 curve's shape scaled to their datasheet figures: peak bf16 dense
** (the tensor-core term and the slow-down's FLOP scale follow it) and
** memory bandwidth (the operand-traffic term follows it); t0, e_max and the
** attention efficiency are kept.  They are no measurement.
**
** The work of one layer for one micro-batch (M = b s tokens, h, f, a heads
** of d = h / a, e bytes per element, k = 3 for a gated MLP else 2):
**   forward GEMMs  (M, 3h, h) QKV, (M, h, h) projection, k - 1 of (M, f, h)
**                  and (M, h, f) for the MLP;
**   backward       for each forward (m, n, k): the input gradient (m, k, n)
**                  and the weight gradient (k, n, m);
**   attention      flash: causal, so its kernels do half of 4 b s^2 h in
**                  the forward and 2.5 times that in the backward (it
**                  recomputes the scores); without flash: batched GEMMs
**                  (b a s, s, d) and (b a s, d, s), twice in the backward,
**                  with the softmax's bytes;
**   memory-bound   forward (10 h + g f) M e (two LayerNorms, two residual
**                  adds; g = 2 for GELU, 3 for the gated activation), with
**                  dropout 2 M h (2 e + 1) more; backward twice the
**                  forward's.
** The first part adds the embedding lookup (3 M h e forward, 2 M h e
** backward); the last the final LayerNorm (2 M h e), the LM head GEMM
** (M, V, h) and the loss (M V (e + 4) bytes each way).  The input-gradient
** half of a split backward gets the input-gradient GEMMs, the attention and
** the memory-bound bytes; the weight-gradient half the weight-gradient
** GEMMs.  A recompute is the layers' forward.  MoE parts are described by
** their dense layers and their time scaled to the part's own FLOPs.
*/
#include <math.h>
#include <string.h>

#include "ts_gemm.h"

#define H200_FCAP (2.0 * 8192 * 49152 * 12288) /* the largest calibrated GEMM */
static const ts_gemm_curve_t curves[] = {
    {"h200", 989e12, 27.9006e-6, 0.907273, 29.0275e12, H200_FCAP, 2.89677e12, 0.5},
    {"h100", 989e12, 27.9006e-6, 0.907273, 29.0275e12, H200_FCAP, 2.89677e12 * 3.35 / 4.8, 0.5},
    {"a100", 312e12, 27.9006e-6, 0.907273, 29.0275e12 * 312 / 989, H200_FCAP * 312 / 989,
     2.89677e12 * 2.039 / 4.8, 0.5},
};

const ts_gemm_curve_t *ts_gemm_curve(const char *name) {
  for (size_t i = 0; name && i < sizeof curves / sizeof curves[0]; i++)
    if (strcmp(curves[i].name, name) == 0) return &curves[i];
  return NULL;
}

double ts_gemm_seconds(const ts_gemm_curve_t *c, double m, double n, double k) {
  double F = 2 * m * n * k, bytes = 2 * (m * k + k * n + m * n);
  return c->t0 + F / (c->peak * c->e_max) * (1 + fmin(F, c->f_cap) / c->f_throttle) + bytes / c->bw;
}

double ts_gemm_efficiency(const ts_gemm_curve_t *c, double m, double n, double k) {
  return 2 * m * n * k / (c->peak * ts_gemm_seconds(c, m, n, k));
}

double ts_gemm_op_seconds(const ts_gemm_curve_t *c, double peak, double mem_bw,
                          const ts_op_work_t *w) {
  if (!(peak > 0)) peak = c->peak;
  double t = 0;
  for (int i = 0; i < w->n_gemm; i++) {
    const ts_gemm_shape_t *g = &w->gemm[i];
    t += g->count * ts_gemm_seconds(c, g->m, g->n, g->k);
  }
  t *= c->peak / peak;
  if (mem_bw > 0) t += w->mem_bytes / mem_bw;
  return t + w->attn_flops / (peak * c->attn_eff);
}

/* Adds count GEMMs of shape (m, n, k) to w, merged with an equal shape. */
static void add(ts_op_work_t *w, double m, double n, double k, double count) {
  for (int i = 0; i < w->n_gemm; i++) {
    ts_gemm_shape_t *g = &w->gemm[i];
    if (g->m == m && g->n == n && g->k == k) {
      g->count += count;
      return;
    }
  }
  if (w->n_gemm < TS_OP_GEMMS) w->gemm[w->n_gemm++] = (ts_gemm_shape_t){m, n, k, count};
}

/* A forward GEMM (m, n, k) and its two backward GEMMs. */
static void add_linear(ts_op_work_t *w, double m, double n, double k, double count, bool rec) {
  add(&w[TS_FORWARD], m, n, k, count);
  if (rec) add(&w[TS_RECOMPUTE], m, n, k, count);
  add(&w[TS_BACKWARD], m, k, n, count);
  add(&w[TS_BACKWARD], k, n, m, count);
  add(&w[TS_BACKWARD_INPUT], m, k, n, count);
  add(&w[TS_WEIGHT_GRAD], k, n, m, count);
}

/* Memory-bound bytes: fwd in the forward (and recompute), bwd in the
** backward and its input-gradient half. */
static void add_mem(ts_op_work_t *w, double fwd, double bwd, bool rec) {
  w[TS_FORWARD].mem_bytes += fwd;
  if (rec) w[TS_RECOMPUTE].mem_bytes += fwd;
  w[TS_BACKWARD].mem_bytes += bwd;
  w[TS_BACKWARD_INPUT].mem_bytes += bwd;
}

void ts_gemm_layer_work(const ts_model_t *m, int seq, int mbs, int bpe, double layers,
                        ts_op_work_t w[TS_COMPUTE_KINDS]) {
  ts_gemm_layer_work_tp(m, seq, mbs, bpe, layers, 1, false, false, w);
}

void ts_gemm_layer_work_tp(const ts_model_t *m, int seq, int mbs, int bpe, double layers,
                           int tp, bool sp, bool selective, ts_op_work_t w[TS_COMPUTE_KINDS]) {
  double s = seq, b = mbs, M = s * b, h = m->hidden, f = m->ffn_hidden, a = m->heads;
  double e = bpe, d = h / a, km = m->gated_mlp ? 3 : 2;
  /* One tensor-parallel rank's share (every x / 1 is x exactly): QKV and
  ** the MLP's input projections column-split (n / t), the output
  ** projections row-split (k / t), a / t heads; the f-wide and score
  ** bytes / t, the h-wide ones (LayerNorm, dropout, residual) / t only
  ** with sequence parallelism. */
  double t = tp > 1 ? tp : 1, st = sp ? t : 1;
  add_linear(w, M, 3 * h / t, h, layers, true);
  add_linear(w, M, h, h / t, layers, true);
  add_linear(w, M, f / t, h, (km - 1) * layers, true);
  add_linear(w, M, h, f / t, layers, true);
  double mem = (10 * h / st + (km == 3 ? 3 : 2) * f / t) * M * e;
  if (m->dropout) mem += 2 * M * (h / st) * (2 * e + 1);
  a /= t;
  if (m->flash_attention) {
    double fa = 0.5 * 4 * b * s * s * (h / t) * layers; /* causal */
    w[TS_FORWARD].attn_flops += fa;
    w[TS_RECOMPUTE].attn_flops += fa;
    w[TS_BACKWARD].attn_flops += 2.5 * fa;
    w[TS_BACKWARD_INPUT].attn_flops += 2.5 * fa;
    add_mem(w, mem * layers, 2 * mem * layers, true);
    return;
  }
  double bas = b * a * s, scores = a * s * s * b;
  for (int kind = 0; kind < TS_COMPUTE_KINDS; kind++) {
    if (kind == TS_WEIGHT_GRAD) continue;
    /* Selective recompute runs the attention core again in the backward. */
    double c = (kind == TS_BACKWARD || kind == TS_BACKWARD_INPUT) ? (selective ? 3 : 2) * layers
                                                                  : layers;
    add(&w[kind], bas, s, d, c);
    add(&w[kind], bas, d, s, c);
  }
  double sm = scores * 2 * e + (m->dropout ? scores * (1 + 2 * e) : 0);
  add_mem(w, (mem + sm) * layers, (2 * mem + 3 * scores * e) * layers, true);
}

/* The FLOPs of a dense part's op as ts_cost.c counts them. */
static double dense_flops(const ts_job_t *job, int n_layers, bool last, ts_kind_t kind) {
  const ts_model_t *m = &job->model;
  double s = job->seq_len, b = job->micro_batch_size, h = m->hidden, f = m->ffn_hidden;
  double lf = 2 * b * s * (4 * h * h + (m->gated_mlp ? 3 : 2) * h * f) + 4 * b * s * s * h;
  double fw = n_layers * lf + (last ? 2 * b * s * h * m->vocab : 0);
  if (kind == TS_RECOMPUTE) return n_layers * lf;
  return kind == TS_BACKWARD ? 2 * fw : fw;
}

void ts__cost_work(const ts_job_t *job, ts_cost_t *c) {
  const ts_model_t *m = &job->model;
  if (m->kind != TS_MODEL_TRANSFORMER) return;
  double M = (double)job->seq_len * job->micro_batch_size, h = m->hidden, V = m->vocab;
  double e = job->bytes_per_element;
  /* Tensor parallelism (README "Tensor parallelism"): each rank's GEMMs,
  ** the LM head vocabulary-parallel. */
  int tp = job->tensor_parallel > 1 ? job->tensor_parallel : 1;
  double t = tp;
  for (int k = 0; k < c->n_parts; k++) {
    ts_part_cost_t *p = &c->part[k];
    bool last = k == c->n_parts - 1;
    memset(p->work, 0, sizeof p->work);
    ts_gemm_layer_work_tp(m, job->seq_len, job->micro_batch_size, job->bytes_per_element,
                          p->n_layers, tp, job->sequence_parallel || job->tensor_parallel_grid > 1,
                          job->recompute == TS_RECOMPUTE_SELECTIVE, p->work);
    if (k == 0) add_mem(p->work, 3 * M * h * e, 2 * M * h * e, false);
    if (last) {
      add_linear(p->work, M, V / t, h, 1, false);
      add_mem(p->work, 2 * M * h * e + M * (V / t) * (e + 4), 4 * M * h * e + M * (V / t) * (e + 4),
              false);
    }
    for (int kind = 0; kind < TS_COMPUTE_KINDS; kind++)
      p->work[kind].flops = c->moe ? dense_flops(job, p->n_layers, last, kind) : p->flops[kind];
  }
}
