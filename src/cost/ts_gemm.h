/*
** ts_gemm.h: the compute model of hosts that name a GEMM efficiency curve
** (host property gemm_curve, README "Model of time").  An op's time is the
** sum over its GEMMs of their curve times, plus its memory-bound bytes over
** the device's memory bandwidth, plus its flash-attention FLOPs at the
** curve's attention efficiency.  Hosts without the property keep
** flops / speed.
*/
#ifndef TS_GEMM_H
#define TS_GEMM_H

#include "trainsim.h"

/* One GPU type's curve.  A GEMM C = A B with A m x k and B k x n, of
** F = 2 m n k FLOPs and Bytes = 2 (m k + k n + m n) bf16 operand bytes,
** takes at the curve's peak
**   t(m, n, k) = t0 + F / (peak e_max) x (1 + min(F, f_cap) / f_throttle)
**                + Bytes / bw
** (a fixed cost per GEMM, the tensor-core rate, a slow-down of long GEMMs
** held at the largest calibrated one, and the operand traffic). */
typedef struct ts_gemm_curve {
  const char *name;  /* "a100", "h100", "h200" */
  double peak;       /* bf16 dense FLOP/s the efficiencies refer to */
  double t0;         /* s per GEMM */
  double e_max;      /* fraction of peak of the tensor-core term */
  double f_throttle; /* FLOPs */
  double f_cap;      /* FLOPs: the slow-down stops growing beyond */
  double bw;         /* B/s of operand traffic */
  double attn_eff;   /* fraction of peak flash attention's FLOPs run at */
} ts_gemm_curve_t;

/* The curve of that name, or NULL when none has it. */
const ts_gemm_curve_t *ts_gemm_curve(const char *name);
/* Seconds of one m x n x k GEMM at the curve's own peak. */
double ts_gemm_seconds(const ts_gemm_curve_t *c, double m, double n, double k);
/* 2 m n k / (peak x ts_gemm_seconds): the fraction of peak it reaches. */
double ts_gemm_efficiency(const ts_gemm_curve_t *c, double m, double n, double k);
/* Seconds of one op's work on a device of the given peak FLOP/s (0: the
** curve's) and memory bandwidth (0: memory-bound bytes take no time):
** sum of count x 2 m n k / (peak x efficiency) + mem_bytes / mem_bw +
** attn_flops / (peak x attn_eff). */
double ts_gemm_op_seconds(const ts_gemm_curve_t *c, double peak, double mem_bw,
                          const ts_op_work_t *w);

/* Adds the work of `layers` transformer layers of model m (seq tokens per
** sample, mbs samples, bpe bytes per element) to w[kind] for every compute
** kind (README "Model of time" lists the shapes and bytes). */
void ts_gemm_layer_work(const ts_model_t *m, int seq, int mbs, int bpe, double layers,
                        ts_op_work_t w[TS_COMPUTE_KINDS]);
/* The same for one of tp tensor-parallel ranks (Megatron 1D; README
** "Tensor parallelism"), with sequence parallelism sp and, for selective
** recompute, the attention core's GEMMs once more in the backward; tp 1,
** sp and selective false give ts_gemm_layer_work exactly. */
void ts_gemm_layer_work_tp(const ts_model_t *m, int seq, int mbs, int bpe, double layers,
                           int tp, bool sp, bool selective, ts_op_work_t w[TS_COMPUTE_KINDS]);
/* Fills part[].work of a transformer cost table (called by ts_cost_build
** once the FLOPs are final); leaves a synthetic model's untouched. */
void ts__cost_work(const ts_job_t *job, ts_cost_t *c);

#endif
