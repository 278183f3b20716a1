/*
** ref_dp.c: data parallelism on the reference executor (README "Data
** parallelism", src/runtime/rt_dp.c): the devices' units, the optimizer
** step, the end of a gradient reduce-scatter (ZeRO), the release of
** gathered weights (ZeRO 3), and the assembly of a run's sharded results.
**
** What it models: the replicas of a data-parallel run are the device
** threads of the run, each with its own model clone and its own shard of
** the batch (ref_dev_t.lane); the runtime's gradient collectives sum their
** gradients over real arrays (ref_coll.c).  On top of that:
** - units: a device's units are the layers of the parts it holds, cost rows
**   ascending and each part's layers in order (ts_unit_t); the runtime's
**   list must be the same (ts__ref_dp_check);
** - coll_end: after a reduce-scatter of gradients a device's slices other
**   than its own hold partial sums; they are zeroed, so that later
**   micro-batches add into zeros and a later reduce-scatter sums correctly
**   into the owner's slice (ZeRO 1-3: gradients are sharded);
** - optimizer: plain SGD, W -= TS_REF_LR x G, on the device's shard of each
**   region, from its own gradients (after the runtime's reduce-scatters or
**   all-reduces: the sums over the replicas);
** - release (ZeRO 3): the weights of the region outside the device's shard
**   become NaN, so that an op that runs without its all-gather gives NaN.
** Each device records the slices it owns (the gradients' after a
** reduce-scatter, the weights' after the optimizer), and ts_ref.c builds
** the run's *grads from them (ts__ref_dp_assemble).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"

/* 1 when device d holds cost row p (some virtual stage of d is part p). */
static int holds_part(const ref_x_t *x, int d, int p) {
  for (int v = 0; v < x->lay->n_vstages; v++)
    if (x->lay->dev[v] == d && x->lay->part[v] == p) return 1;
  return 0;
}

int ts__ref_dp_setup(ref_x_t *x) {
  for (int d = 0; d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    int n = 0;
    for (int p = 0; p < x->cost->n_parts; p++)
      if (holds_part(x, d, p)) n += x->cost->part[p].n_layers;
    if (!(dv->unit_layer = malloc((size_t)(n ? n : 1) * sizeof *dv->unit_layer))) return EX_OSERR;
    dv->n_units = 0;
    for (int p = 0; p < x->cost->n_parts; p++) {
      if (!holds_part(x, d, p)) continue;
      const ts_part_cost_t *pc = &x->cost->part[p];
      for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++)
        dv->unit_layer[dv->n_units++] = l;
    }
    pthread_mutex_init(&dv->own_mu, NULL);
    dv->own_mu_init = 1;
    ts_group_t ep = ts_plan_group(x->plan, TS_GROUP_EP, d);
    dv->e_n = x->cfg.experts / ep.n;
    dv->e_lo = ep.rank * dv->e_n;
  }
  return 0;
}

void ts__ref_dp_check(ref_x_t *x, int d) {
  int n = 0;
  const ts_unit_t *u = ts__rt_units(ts__world_rt(x->w, d), &n);
  const ref_dev_t *dv = &x->dev[d];
  if (!u) return; /* the runtime keeps no units for this device */
  int k = 0;
  while (k < n && k < dv->n_units && u[k].layer == dv->unit_layer[k]) k++;
  if (k < n || n != dv->n_units)
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: the runtime's units (%d) are not the "
                  "executor's (%d): unit %d is layer %d there, %d here",
                  d, n, dv->n_units, k, k < n ? u[k].layer : -1,
                  k < dv->n_units ? dv->unit_layer[k] : -1);
}

void ts__ref_dp_free(ref_x_t *x) {
  for (int d = 0; x->dev && d < x->n; d++) {
    free(x->dev[d].unit_layer);
    free(x->dev[d].own);
    if (x->dev[d].own_mu_init) pthread_mutex_destroy(&x->dev[d].own_mu);
    x->dev[d].own_mu_init = 0;
    x->dev[d].unit_layer = NULL;
    x->dev[d].own = NULL;
  }
}

/* Records that device d owns the slice (buf, region, shard), once per
** distinct slice. */
static void own(ref_x_t *x, int d, ts_coll_buf_t buf, int lo, int hi, int shard, int n) {
  ref_dev_t *dv = &x->dev[d];
  struct ref_own o = {buf, lo, hi, shard, n};
  pthread_mutex_lock(&dv->own_mu);
  int k = 0;
  while (k < dv->n_own && memcmp(&dv->own[k], &o, sizeof o)) k++;
  if (k == dv->n_own) {
    if (dv->n_own == dv->cap_own) {
      int cap = dv->cap_own ? 2 * dv->cap_own : 16;
      struct ref_own *p = realloc(dv->own, (size_t)cap * sizeof *p);
      if (!p) {
        pthread_mutex_unlock(&dv->own_mu);
        ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory", d);
        return;
      }
      dv->own = p;
      dv->cap_own = cap;
    }
    dv->own[dv->n_own++] = o;
  }
  pthread_mutex_unlock(&dv->own_mu);
}

/* Sets the elements of the region outside slice shard of n_shards to v. */
static void fill_others(ref_x_t *x, int d, ts_coll_buf_t buf, int ulo, int uhi, int shard,
                        int n_shards, double v) {
  size_t N = ts__ref_walk(x, d, NULL, buf, ulo, uhi, 0, 0, NULL, TS__REF_READ, 0), lo, hi;
  ts__ref_slice(N, shard, n_shards, &lo, &hi);
  ts__ref_walk(x, d, NULL, buf, ulo, uhi, 0, lo, NULL, TS__REF_FILL, v);
  ts__ref_walk(x, d, NULL, buf, ulo, uhi, hi, N, NULL, TS__REF_FILL, v);
}

void ts__ref_coll_end(void *xd, int device, const ts_coll_step_t *st) {
  ref_x_t *x = xd;
  if (st->buf == TS_BUF_TP) {
    ts__ref_tp_coll_end(x, device);
    return;
  }
  if (atomic_load(&x->fatal) || st->op != TS_COLL_REDUCE_SCATTER) return;
  if (st->buf != TS_BUF_GRADS && st->buf != TS_BUF_EXPERT_GRADS) return;
  fill_others(x, device, st->buf, st->unit_lo, st->unit_hi, st->chunk, st->n_chunks, 0.0);
  own(x, device, st->buf, st->unit_lo, st->unit_hi, st->chunk, st->n_chunks);
}

void ts__ref_release(void *xd, int device, const ts_region_t *r) {
  ref_x_t *x = xd;
  if (atomic_load(&x->fatal) || r->n_shards <= 1) return;
  ts_coll_buf_t buf = r->buf == TS_BUF_EXPERT_GRADS || r->buf == TS_BUF_EXPERT_WEIGHTS
                          ? TS_BUF_EXPERT_WEIGHTS
                          : TS_BUF_WEIGHTS;
  fill_others(x, device, buf, r->unit_lo, r->unit_hi, r->shard, r->n_shards, NAN);
}

void ts__ref_optimizer(void *xd, int device, int it, int n, const ts_region_t *r, double bytes) {
  (void)it, (void)bytes;
  ref_x_t *x = xd;
  for (int i = 0; i < n && !atomic_load(&x->fatal); i++) {
    int ex = r[i].buf == TS_BUF_EXPERT_GRADS || r[i].buf == TS_BUF_EXPERT_WEIGHTS;
    ts_coll_buf_t gb = ex ? TS_BUF_EXPERT_GRADS : TS_BUF_GRADS;
    ts_coll_buf_t wb = ex ? TS_BUF_EXPERT_WEIGHTS : TS_BUF_WEIGHTS;
    size_t N = ts__ref_walk(x, device, NULL, gb, r[i].unit_lo, r[i].unit_hi, 0, 0, NULL,
                            TS__REF_READ, 0), lo, hi;
    ts__ref_slice(N, r[i].shard, r[i].n_shards, &lo, &hi);
    double *g = malloc((hi - lo + 1) * sizeof *g);
    if (!g) {
      ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory in its optimizer step",
                    device);
      return;
    }
    ts__ref_walk(x, device, NULL, gb, r[i].unit_lo, r[i].unit_hi, lo, hi, g, TS__REF_READ, 0);
    ts__ref_walk(x, device, NULL, wb, r[i].unit_lo, r[i].unit_hi, lo, hi, g, TS__REF_AXPY,
                 -TS_REF_LR);
    free(g);
    own(x, device, wb, r[i].unit_lo, r[i].unit_hi, r[i].shard, r[i].n_shards);
  }
}

int ts__ref_dp_assemble(ref_x_t *x, ts_ref_model_t *g, int params) {
  for (int d = 0; d < x->n; d++) {
    const ref_dev_t *dv = &x->dev[d];
    for (int k = 0; k < dv->n_own; k++) {
      const struct ref_own *o = &dv->own[k];
      int is_w = o->buf == TS_BUF_WEIGHTS || o->buf == TS_BUF_EXPERT_WEIGHTS;
      if (is_w != params) continue;
      size_t N = ts__ref_walk(x, d, NULL, o->buf, o->unit_lo, o->unit_hi, 0, 0, NULL,
                              TS__REF_READ, 0), lo, hi;
      ts__ref_slice(N, o->shard, o->n_shards, &lo, &hi);
      double *v = malloc((hi - lo + 1) * sizeof *v);
      if (!v) return EX_OSERR;
      ts__ref_walk(x, d, NULL, o->buf, o->unit_lo, o->unit_hi, lo, hi, v, TS__REF_READ, 0);
      ts__ref_walk(x, d, g, o->buf, o->unit_lo, o->unit_hi, lo, hi, v, TS__REF_COPY, 0);
      free(v);
    }
  }
  return 0;
}
