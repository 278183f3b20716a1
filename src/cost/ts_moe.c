/*
** ts_moe.c: GShard top-2 gating, the seeded routing of the simulator and
** the MoE part of the cost model (see ts_moe.h for the rules).
*/
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ts_moe.h"
#include "ts_internal.h"

int ts_moe_capacity(int S, int E, double cf, int multiple) {
  assert(S >= 0 && E > 0);
  /* The small slack keeps 8 x 1.0 / 4 = 2 from becoming 3 by rounding. */
  int C = (int)ceil((double)S * cf / E - 1e-9);
  if (C < 1) C = 1;
  if (multiple > 1) C = (C + multiple - 1) / multiple * multiple;
  return C;
}

void ts_moe_route_free(ts_moe_route_t *r) {
  if (!r) return;
  free(r->expert);
  free(r->slot);
  free(r->gate);
  free(r->gnorm);
  free(r->load);
  free(r->wanted);
  memset(r, 0, sizeof *r);
}

void ts_moe_gate(const double *probs, int S, int E, double cf, int multiple, gsl_rng *g,
                 ts_moe_route_t *o) {
  o->S = S;
  o->E = E;
  o->C = ts_moe_capacity(S, E, cf, multiple);
  o->expert = ts__xcalloc((size_t)S * 2, sizeof *o->expert);
  o->slot = ts__xcalloc((size_t)S * 2, sizeof *o->slot);
  o->gate = ts__xcalloc((size_t)S * 2, sizeof *o->gate);
  o->gnorm = ts__xcalloc((size_t)S * 2, sizeof *o->gnorm);
  o->load = ts__xcalloc((size_t)E, sizeof *o->load);
  o->wanted = ts__xcalloc((size_t)E, sizeof *o->wanted);
  o->dropped = 0;
  double *mean_p = ts__xcalloc((size_t)E, sizeof *mean_p);
  int *top1 = ts__xcalloc((size_t)E, sizeof *top1);
  unsigned char *second = ts__xcalloc((size_t)S, 1);
  for (int t = 0; t < S; t++) {
    const double *p = probs + (size_t)t * E;
    int e1 = 0, e2 = -1;
    for (int e = 1; e < E; e++)
      if (p[e] > p[e1]) e1 = e;
    for (int e = 0; e < E; e++)
      if (e != e1 && (e2 < 0 || p[e] > p[e2])) e2 = e;
    double g1 = p[e1], g2 = e2 >= 0 ? p[e2] : 0, den = g1 + g2;
    o->expert[2 * (size_t)t] = e1;
    o->expert[2 * (size_t)t + 1] = e2;
    o->gnorm[2 * (size_t)t] = g1 / den;
    o->gnorm[2 * (size_t)t + 1] = g2 / den;
    double u = gsl_rng_uniform(g);
    double prob = fmin(1.0, o->gnorm[2 * (size_t)t + 1] / 0.5);
    second[t] = e2 >= 0 && u < prob;
    for (int e = 0; e < E; e++) mean_p[e] += p[e];
    top1[e1]++;
  }
  /* First choices in group order, then second choices after the kept firsts. */
  int *pos = ts__xcalloc((size_t)E, sizeof *pos);
  for (int t = 0; t < S; t++) {
    int e = o->expert[2 * (size_t)t];
    o->wanted[e]++;
    int s = pos[e]++;
    if (s < o->C) {
      o->slot[2 * (size_t)t] = s;
      o->gate[2 * (size_t)t] = o->gnorm[2 * (size_t)t];
      o->load[e]++;
    } else {
      o->slot[2 * (size_t)t] = -1;
      o->dropped++;
    }
  }
  for (int e = 0; e < E; e++) pos[e] = o->load[e];
  for (int t = 0; t < S; t++) {
    int e = o->expert[2 * (size_t)t + 1];
    o->slot[2 * (size_t)t + 1] = -1;
    if (!second[t]) continue;
    o->wanted[e]++;
    int s = pos[e]++;
    if (s < o->C) {
      o->slot[2 * (size_t)t + 1] = s;
      o->gate[2 * (size_t)t + 1] = o->gnorm[2 * (size_t)t + 1];
      o->load[e]++;
    } else {
      o->dropped++;
    }
  }
  double aux = 0;
  for (int e = 0; e < E; e++) aux += (mean_p[e] / S) * ((double)top1[e] / S);
  o->aux = aux / E * (double)E * E;
  free(pos);
  free(mean_p);
  free(top1);
  free(second);
}

/* splitmix64: mixes the key into a seed. */
static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

gsl_rng *ts_moe_rng(const ts_moe_t *m, int j, int mb, int lane) {
  uint64_t k = mix(m->seed);
  k = mix(k ^ (uint64_t)(unsigned)j);
  k = mix(k ^ ((uint64_t)(unsigned)mb << 20));
  k = mix(k ^ ((uint64_t)(unsigned)lane << 40));
  gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(g, (unsigned long)(k & 0xFFFFFFFFul) | 1ul);
  return g;
}

void ts_moe_prior(const ts_moe_t *m, gsl_rng *g, int n, double *logits) {
  int E = m->experts;
  double *lw = ts__xmalloc((size_t)E * sizeof *lw), sum = 0;
  for (int e = 0; e < E; e++) {
    double w = m->skew == TS_MOE_ZIPF ? pow(e + 1.0, -m->exponent)
               : m->skew == TS_MOE_TABLE ? m->table[e]
                                          : 1.0;
    lw[e] = w;
    sum += w;
  }
  for (int e = 0; e < E; e++) lw[e] = lw[e] > 0 ? log(lw[e] / sum) : -INFINITY;
  for (int t = 0; t < n; t++)
    for (int e = 0; e < E; e++) {
      double u = gsl_rng_uniform_pos(g);
      logits[(size_t)t * E + e] = lw[e] - log(-log(u)); /* Gumbel(0, 1) */
    }
  free(lw);
}

void ts_moe_softmax(const double *x, int n, int E, double *p) {
  for (int t = 0; t < n; t++) {
    const double *a = x + (size_t)t * E;
    double *b = p + (size_t)t * E, mx = -INFINITY, s = 0;
    for (int e = 0; e < E; e++) mx = fmax(mx, a[e]);
    for (int e = 0; e < E; e++) s += (b[e] = exp(a[e] - mx));
    for (int e = 0; e < E; e++) b[e] /= s;
  }
}

int ts_moe_is_layer(const ts_moe_t *m, int l) {
  return m->experts > 0 && m->every > 0 && (l + 1) % m->every == 0;
}

int ts_moe_tokens(const ts_moe_cost_t *c, int j, int mb, int from, int to) {
  assert(c->lanes > 0 && c->E % c->lanes == 0);
  assert(from >= 0 && from < c->lanes && to >= 0 && to < c->lanes && mb >= 0 && mb < c->M);
  int per = c->E / c->lanes, n = 0;
  const int *k = c->kept + (((size_t)j * c->M + mb) * c->lanes + from) * c->E;
  for (int e = to * per; e < (to + 1) * per; e++) n += k[e];
  return n;
}

/* At most 2^31 - 1: ts_job_load bounds experts x groups x capacity. */
int ts_moe_rows(const ts_moe_cost_t *c, int j, int mb, int from, int to) {
  if (c->padded) return c->E / c->lanes * c->groups * c->C;
  return ts_moe_tokens(c, j, mb, from, to);
}

ts_moe_cost_t *ts_moe_cost_build(const ts_job_t *job, int n_parts) {
  const ts_model_t *md = &job->model;
  const ts_moe_t *m = &md->moe;
  if (md->kind != TS_MODEL_TRANSFORMER || m->experts <= 0) return NULL;
  ts_moe_cost_t *c = ts__xcalloc(1, sizeof *c);
  c->E = m->experts;
  c->lanes = m->expert_parallel;
  /* Both at most 2^31 - 1, as ts_job_load bounds them (README "Limits"). */
  c->M = (int)((long long)job->microbatches * job->iterations);
  c->tokens = (int)((long long)job->micro_batch_size * job->seq_len);
  c->S = m->group_size > 0 ? m->group_size : c->tokens;
  c->groups = c->tokens / c->S;
  c->C = ts_moe_capacity(c->S, c->E, m->capacity_factor, m->capacity_multiple);
  c->padded = !m->alltoall_tokens;
  c->layer = ts__xcalloc((size_t)md->layers, sizeof *c->layer);
  for (int l = 0; l < md->layers; l++)
    if (ts_moe_is_layer(m, l)) c->layer[c->n_layers++] = l;
  c->part_first = ts__xcalloc((size_t)n_parts, sizeof(int));
  c->part_count = ts__xcalloc((size_t)n_parts, sizeof(int));
  c->seg_flops = ts__xcalloc((size_t)(c->n_layers + n_parts), sizeof(double));
  c->expert_params = ts__xcalloc((size_t)n_parts, sizeof(double));

  double s = job->seq_len, b = job->micro_batch_size, h = md->hidden, f = md->ffn_hidden;
  int k = md->gated_mlp ? 3 : 2;
  double attn = ts__cost_attention_flops(md, job->seq_len, job->micro_batch_size);
  double mlp = 2 * b * s * k * h * f;
  double gate = 2 * b * s * h * c->E, head = 2.0 * b * s * h * (double)md->vocab;
  c->expert_flops = 2.0 * k * h * m->expert_ffn;
  c->token_bytes = h * job->bytes_per_element;
  /* Parts split the layers as ts_cost_build does. */
  int base = md->layers / n_parts, rem = md->layers % n_parts, first = 0, j = 0;
  for (int p = 0; p < n_parts; p++) {
    int n = base + (p < rem ? 1 : 0);
    c->part_first[p] = j;
    double *seg = c->seg_flops + j + p;
    int i = 0;
    for (int l = first; l < first + n; l++) {
      if (ts_moe_is_layer(m, l)) {
        seg[i++] += attn + gate;
        j++;
      } else {
        seg[i] += attn + mlp;
      }
    }
    if (p == n_parts - 1) seg[i] += head;
    c->part_count[p] = j - c->part_first[p];
    first += n;
  }

  size_t cells = (size_t)c->n_layers * c->M * c->lanes;
  c->kept = ts__xcalloc(cells * c->E + 1, sizeof(int));
  c->wanted = ts__xcalloc(cells * c->E + 1, sizeof(int));
  c->dropped = ts__xcalloc(cells + 1, sizeof(int));
  c->aux = ts__xcalloc(cells + 1, sizeof(double));
  double *lg = ts__xmalloc((size_t)c->tokens * c->E * sizeof *lg);
  for (int jj = 0; jj < c->n_layers; jj++)
    for (int mb = 0; mb < c->M; mb++)
      for (int r = 0; r < c->lanes; r++) {
        size_t cell = ((size_t)jj * c->M + mb) * c->lanes + r;
        gsl_rng *g = ts_moe_rng(m, jj, mb, r);
        ts_moe_prior(m, g, c->tokens, lg);
        ts_moe_softmax(lg, c->tokens, c->E, lg);
        for (int gi = 0; gi < c->groups; gi++) {
          ts_moe_route_t rt;
          ts_moe_gate(lg + (size_t)gi * c->S * c->E, c->S, c->E, m->capacity_factor,
                      m->capacity_multiple, g, &rt);
          for (int e = 0; e < c->E; e++) {
            c->kept[cell * c->E + e] += rt.load[e];
            c->wanted[cell * c->E + e] += rt.wanted[e];
          }
          c->dropped[cell] += rt.dropped;
          c->aux[cell] += rt.aux / c->groups;
          ts_moe_route_free(&rt);
        }
        gsl_rng_free(g);
      }
  free(lg);
  return c;
}

void ts_moe_cost_free(ts_moe_cost_t *c) {
  if (!c) return;
  free(c->layer);
  free(c->part_first);
  free(c->part_count);
  free(c->seg_flops);
  free(c->expert_params);
  free(c->kept);
  free(c->wanted);
  free(c->dropped);
  free(c->aux);
  free(c);
}
