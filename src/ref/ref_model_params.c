/*
** ref_model_params.c: the parameters of the reference model (ref_model.h):
** the shapes of a block's tensors and their offsets, the closed forms of
** the stash bytes and FLOPs, the model's construction (seeded
** initialisation of the dense blocks and of the MoE layers' gates and
** experts), clone, free and accessors, and the accounting allocator.  The
** forward and backward are in ref_model.c.
*/
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_model_impl.h"

#define INIT_SCALE 0.02

/* ------------------------------------------------------------------ */
/* Shapes                                                              */
/* ------------------------------------------------------------------ */

static int config_ok(const ts_ref_config_t *c) {
  return c && c->layers > 0 && c->hidden > 0 && c->heads > 0 && c->ffn > 0 && c->seq > 0 &&
         c->hidden % c->heads == 0 && c->hidden <= INT_MAX / 3;
}

static size_t param_len(const ts_ref_config_t *c, ts_ref_param_t which) {
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn;
  switch (which) {
  case TS_REF_LN1_GAIN: case TS_REF_LN1_BIAS: case TS_REF_PROJ_BIAS:
  case TS_REF_LN2_GAIN: case TS_REF_LN2_BIAS: case TS_REF_FC2_BIAS: return d;
  case TS_REF_QKV_WEIGHT: return d * 3 * d;
  case TS_REF_QKV_BIAS: return 3 * d;
  case TS_REF_PROJ_WEIGHT: return d * d;
  case TS_REF_FC1_WEIGHT: case TS_REF_FC2_WEIGHT: return d * f;
  case TS_REF_FC1_BIAS: return f;
  default: return 0;
  }
}

size_t ts_ref_block_param_offset(const ts_ref_config_t *c, ts_ref_param_t which, size_t *len) {
  size_t off = 0;
  if (!config_ok(c) || (int)which < 0 || which >= TS_REF_PARAM_KINDS) {
    if (len) *len = 0;
    return 0;
  }
  for (int k = 0; k < (int)which; k++) off += param_len(c, (ts_ref_param_t)k);
  if (len) *len = param_len(c, which);
  return off;
}

size_t ts_ref_block_param_count(const ts_ref_config_t *c) {
  if (!config_ok(c)) return 0;
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn;
  return 4 * d * d + 2 * d * f + 9 * d + f;
}

block_view_t ts__ref_block_view(const ts_ref_config_t *c, double *base) {
  block_view_t v;
  double **slot[TS_REF_PARAM_KINDS] = {&v.ln1_g, &v.ln1_b, &v.wqkv, &v.bqkv, &v.wo, &v.bo,
                                       &v.ln2_g, &v.ln2_b, &v.w1,   &v.b1,   &v.w2, &v.b2};
  size_t off = 0;
  for (int k = 0; k < TS_REF_PARAM_KINDS; k++) {
    *slot[k] = base + off;
    off += param_len(c, (ts_ref_param_t)k);
  }
  return v;
}

/* Doubles one block stashes per sample: s (6 d + 2 f + 2 + H s). */
static size_t block_stash_doubles(const ts_ref_config_t *c, size_t mb) {
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn, s = (size_t)c->seq, h = (size_t)c->heads;
  return mb * s * (6 * d + 2 * f + 2 + h * s);
}

size_t ts_ref_stash_bytes(const ts_ref_config_t *c, int count, int mb_samples) {
  if (!config_ok(c) || count <= 0 || mb_samples <= 0) return 0;
  return sizeof(double) * (size_t)count * block_stash_doubles(c, (size_t)mb_samples);
}

size_t ts_ref_tp_stash_bytes(const ts_ref_config_t *c, int count, int mb_samples, int t, int sp,
                             int sel) {
  if (!config_ok(c) || count <= 0 || mb_samples <= 0 || t < 1) return 0;
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn, s = (size_t)c->seq, h = (size_t)c->heads;
  size_t n = (size_t)mb_samples * s, T = (size_t)t, b = (size_t)mb_samples, q = 1;
  while (q * q < T) q++;
  if (sp == 2) { /* the 2d grid: blocks of whole samples and heads */
    if (q * q != T || b % q || h % q || d % q || f % q) return 0;
    size_t per = (n * 2 * d + n * (4 * d + 2 * f) + (sel ? 0 : b * h * s * s)) / T + 2 * n / q;
    return sizeof(double) * (size_t)count * per;
  }
  if (d % T || f % T || h % T || (sp && n % T)) return 0;
  size_t R = n * (2 * d + 2), X = n * (4 * d + 2 * f), S = sel ? 0 : b * h * s * s;
  size_t per = sp ? (R + X + S) / T : R + (X + S) / T;
  return sizeof(double) * (size_t)count * per;
}

size_t ts_ref_core_bytes(const ts_ref_config_t *c, int mb_samples) {
  if (!config_ok(c) || mb_samples <= 0) return 0;
  return sizeof(double) * (size_t)mb_samples * (size_t)c->heads * (size_t)c->seq * (size_t)c->seq;
}

long ts_ref_core_recomputes(const ts_ref_model_t *m, long *mismatches) {
  if (mismatches) *mismatches = m ? m->core_mismatches : 0;
  return m ? m->core_recomputes : 0;
}

size_t ts_ref_stash_input_bytes(const ts_ref_config_t *c, int mb_samples) {
  if (!config_ok(c) || mb_samples <= 0) return 0;
  return sizeof(double) * (size_t)mb_samples * (size_t)c->seq * (size_t)c->hidden;
}

size_t ts_ref_backward_work_bytes(const ts_ref_config_t *c, int mb_samples) {
  if (!config_ok(c) || mb_samples <= 0) return 0;
  size_t n = (size_t)mb_samples * (size_t)c->seq, s = (size_t)c->seq;
  return sizeof(double) * (8 * n * (size_t)c->hidden + n * (size_t)c->ffn + s * s);
}

size_t ts_ref_backward_transient_bytes(const ts_ref_config_t *c, int mb_samples) {
  if (!config_ok(c) || mb_samples <= 0) return 0;
  return ts_ref_backward_work_bytes(c, mb_samples) + 2 * ts_ref_stash_input_bytes(c, mb_samples);
}

double ts_ref_block_forward_flops(const ts_ref_config_t *c, int mb_samples) {
  if (!config_ok(c) || mb_samples <= 0) return 0.0;
  double d = c->hidden, f = c->ffn, s = c->seq, b = mb_samples, n = b * s;
  return 2.0 * n * (4.0 * d * d + 2.0 * d * f) + 4.0 * b * s * s * d;
}

/* ------------------------------------------------------------------ */
/* Model                                                               */
/* ------------------------------------------------------------------ */

int ts_ref_is_moe_layer(const ts_ref_config_t *c, int l) {
  return c && c->experts > 0 && c->moe_every > 0 && (l + 1) % c->moe_every == 0;
}

/* Allocates and draws the MoE parameters of m (none for a dense model).
** Returns 0 or EX_OSERR. */
static int moe_new(ts_ref_model_t *m) {
  const ts_ref_config_t *c = &m->cfg;
  if (c->experts <= 0) return 0;
  if (c->expert_ffn <= 0 || c->moe_every <= 0) return EX_USAGE;
  size_t h = (size_t)c->hidden, E = (size_t)c->experts, f = (size_t)c->expert_ffn;
  m->moe_n = h * E + 2 * E * h * f;
  m->moe_at = malloc((size_t)c->layers * sizeof *m->moe_at);
  if (!m->moe_at) return EX_OSERR;
  for (int l = 0; l < c->layers; l++) m->moe_at[l] = ts_ref_is_moe_layer(c, l) ? m->n_moe++ : -1;
  size_t total = m->moe_n * (size_t)m->n_moe + 1;
  m->moe_params = calloc(total, sizeof(double));
  m->moe_grads = calloc(total, sizeof(double));
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (!m->moe_params || !m->moe_grads || !r) {
    gsl_rng_free(r);
    return EX_OSERR;
  }
  gsl_rng_set(r, c->seed + 3);
  for (int k = 0; k < m->n_moe; k++) {
    double *p = m->moe_params + (size_t)k * m->moe_n + h * E; /* W_g stays zero */
    for (size_t i = 0; i < E * h * f; i++) *p++ = gsl_ran_gaussian(r, 1.0 / sqrt((double)h));
    for (size_t i = 0; i < E * f * h; i++) *p++ = gsl_ran_gaussian(r, 1.0 / sqrt((double)f));
  }
  gsl_rng_free(r);
  return 0;
}

double *ts_ref_moe_params(ts_ref_model_t *m, int l, size_t *n) {
  if (n) *n = 0;
  if (!m || l < 0 || l >= m->cfg.layers || !m->moe_at || m->moe_at[l] < 0) return NULL;
  if (n) *n = m->moe_n;
  return m->moe_params + (size_t)m->moe_at[l] * m->moe_n;
}

double *ts_ref_moe_grad(const ts_ref_model_t *m, int l, size_t *n) {
  if (n) *n = 0;
  if (!m || l < 0 || l >= m->cfg.layers || !m->moe_at || m->moe_at[l] < 0) return NULL;
  if (n) *n = m->moe_n;
  return m->moe_grads + (size_t)m->moe_at[l] * m->moe_n;
}

ts_ref_model_t *ts_ref_model_new(const ts_ref_config_t *c) {
  if (!config_ok(c)) return NULL;
  ts_ref_model_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->cfg = *c;
  m->block_n = ts_ref_block_param_count(c);
  size_t total = m->block_n * (size_t)c->layers;
  m->params = malloc(total * sizeof(double));
  m->grads = calloc(total, sizeof(double));
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (!m->params || !m->grads || !r) goto out_free;
  gsl_rng_set(r, c->seed);
  for (int l = 0; l < c->layers; l++) {
    double *p = m->params + (size_t)l * m->block_n;
    for (int k = 0; k < TS_REF_PARAM_KINDS; k++) {
      size_t len = param_len(c, (ts_ref_param_t)k);
      double base = (k == TS_REF_LN1_GAIN || k == TS_REF_LN2_GAIN) ? 1.0 : 0.0;
      for (size_t i = 0; i < len; i++) *p++ = base + gsl_ran_gaussian(r, INIT_SCALE);
    }
  }
  gsl_rng_free(r);
  if (moe_new(m)) {
    ts_ref_model_free(m);
    return NULL;
  }
  return m;
out_free:
  gsl_rng_free(r);
  ts_ref_model_free(m);
  return NULL;
}

void ts_ref_model_free(ts_ref_model_t *m) {
  if (!m) return;
  free(m->params);
  free(m->grads);
  free(m->moe_at);
  free(m->moe_params);
  free(m->moe_grads);
  free(m);
}

ts_ref_model_t *ts_ref_model_clone(const ts_ref_model_t *m) {
  if (!m) return NULL;
  ts_ref_model_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  *c = *m;
  size_t bytes = m->block_n * (size_t)m->cfg.layers * sizeof(double);
  c->params = malloc(bytes);
  c->grads = malloc(bytes);
  c->moe_at = NULL;
  c->moe_params = c->moe_grads = NULL;
  if (!c->params || !c->grads) {
    ts_ref_model_free(c);
    return NULL;
  }
  memcpy(c->params, m->params, bytes);
  memcpy(c->grads, m->grads, bytes);
  if (m->moe_at) {
    size_t mb = (m->moe_n * (size_t)m->n_moe + 1) * sizeof(double);
    c->moe_at = malloc((size_t)m->cfg.layers * sizeof *c->moe_at);
    c->moe_params = malloc(mb);
    c->moe_grads = malloc(mb);
    if (!c->moe_at || !c->moe_params || !c->moe_grads) {
      ts_ref_model_free(c);
      return NULL;
    }
    memcpy(c->moe_at, m->moe_at, (size_t)m->cfg.layers * sizeof *c->moe_at);
    memcpy(c->moe_params, m->moe_params, mb);
    memcpy(c->moe_grads, m->moe_grads, mb);
  }
  return c;
}

const ts_ref_config_t *ts_ref_model_config(const ts_ref_model_t *m) { return m ? &m->cfg : NULL; }

void ts_ref_model_zero_grad(ts_ref_model_t *m) {
  if (!m) return;
  memset(m->grads, 0, m->block_n * (size_t)m->cfg.layers * sizeof(double));
  if (m->moe_grads) memset(m->moe_grads, 0, m->moe_n * (size_t)m->n_moe * sizeof(double));
}

const double *ts_ref_block_grad(const ts_ref_model_t *m, int l, size_t *n) {
  if (!m || l < 0 || l >= m->cfg.layers) {
    if (n) *n = 0;
    return NULL;
  }
  if (n) *n = m->block_n;
  return m->grads + (size_t)l * m->block_n;
}

double *ts_ref_block_params(ts_ref_model_t *m, int l, size_t *n) {
  if (!m || l < 0 || l >= m->cfg.layers) {
    if (n) *n = 0;
    return NULL;
  }
  if (n) *n = m->block_n;
  return m->params + (size_t)l * m->block_n;
}

/* ------------------------------------------------------------------ */
/* Accounting allocator                                                */
/* ------------------------------------------------------------------ */

void *ts_ref_mem_alloc(ts_ref_mem_t *mem, size_t bytes) {
  if (bytes == 0) return NULL;
  void *p = malloc(bytes);
  if (p && mem) {
    mem->cur += bytes;
    if (mem->cur > mem->peak) mem->peak = mem->cur;
  }
  return p;
}

void ts_ref_mem_free(ts_ref_mem_t *mem, void *p, size_t bytes) {
  if (!p) return;
  free(p);
  if (mem) mem->cur -= bytes;
}

void ts_ref_mem_hold(ts_ref_mem_t *mem, size_t bytes) {
  if (!mem) return;
  mem->cur += bytes;
  if (mem->cur > mem->peak) mem->peak = mem->cur;
}

void ts_ref_mem_release(ts_ref_mem_t *mem, size_t bytes) {
  if (mem) mem->cur -= bytes;
}
