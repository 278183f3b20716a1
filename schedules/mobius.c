/*
** mobius.c: Mobius (Feng et al., "Mobius: Fine Tuning Large-Scale Models
** on Commodity GPU Servers", ASPLOS 2023), and the naive-swapping GPipe it
** is compared with.
**
** What is modelled.  The model is cut into S stages, more than the G GPUs
** (job fields stages and devices).  Its weights live in host memory (DRAM)
** and so does the optimizer: a GPU holds only the weights of the stages it
** is working on, the gradient buffers of stages whose backward it runs, and
** stashed activations.  Stage k runs on the GPU mapping[k]; each GPU visits
** its stages in ascending order for the forwards of all m micro-batches
** (GPipe order), then in descending order for the backwards (the last
** micro-batch first), keeping its last stage on the GPU between the two.
** A visit is: wait for the stage's weights, reserve the device memory its
** activations will take, run its micro-batches, write its gradients back to
** host memory (backward visits) and evict it.
**
** mobius: while a GPU computes one visit it prefetches the next one's
** weights over PCIe (the copy engine starts as soon as the GPU has room:
** the time a prefetch waits for room is reported), and gradient
** write-backs overlap the next visit.
** gpipe-swap: the same visits without overlap: load, compute, write back
** and evict, then load the next (GPipe with naive swapping).
**
** Mapping (job field mapping; README "Mobius"):
**   "sequential"  stage k on GPU k mod G;
**   "cross"       Mobius' cross mapping: consecutive stages on GPUs of
**                 different root complexes.  GPUs are numbered group-major
**                 (mapping_groups groups of G / groups GPUs, as the
**                 generated commodity platforms are), and stage k goes to
**                 GPU (k mod groups) x G/groups + (k div groups) mod
**                 (G/groups): 0, 4, 1, 5, 2, 6, 3, 7 for G = 8;
**   "block"       stage k on GPU k div (S/G): contiguous blocks (GPipe);
**   [d0, d1, ...] an explicit GPU per stage (what `trainsim place` finds).
** Defaults: "cross" for mobius ("sequential" when the devices do not split
** into mapping_groups groups), "block" for gpipe-swap.
**
** Closed form (naive swapping, G = 1, no activation transfers, host copy
** time W_k for stage k's weights and G_k for its gradients): iteration time
** sum_k (W_k + m F_k) + sum_k (m B_k + G_k) + sum_{k < S-1} W_k (the last
** stage is not reloaded).  With prefetch on one GPU and copies shorter than
** the compute they hide behind, W_0 + m sum_k (F_k + B_k) + G_0.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sched_util.h"
#include "ts_internal.h"

/* One residency period of a stage on the GPU: its forwards, its backwards,
** or both (the GPU's last stage). */
typedef struct visit {
  int v, fwd, bwd;
} visit_t;

static void run_visit(ts_rt_t *rt, const visit_t *p) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  if (p->fwd)
    for (int mb = 0; mb < c->microbatches && !ts_rt_failed(rt); mb++) ts_sched_forward(rt, p->v, mb);
  if (p->bwd)
    for (int mb = c->microbatches - 1; mb >= 0 && !ts_rt_failed(rt); mb--)
      ts_sched_backward(rt, p->v, mb);
}

static void swap_program(ts_rt_t *rt, int prefetch) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  if (c->n_local < 1) return;
  int n = c->n_local, nv = 0;
  visit_t *vis = ts__xmalloc((size_t)(2 * n) * sizeof *vis);
  for (int i = 0; i + 1 < n; i++) vis[nv++] = (visit_t){c->local[i], 1, 0};
  vis[nv++] = (visit_t){c->local[n - 1], 1, 1};
  for (int i = n - 2; i >= 0; i--) vis[nv++] = (visit_t){c->local[i], 0, 1};
  assert(nv == 2 * n - 1); /* down and back up, the last stage visited once */
  if (prefetch) ts_rt_fetch(rt, vis[0].v, vis[0].bwd);
  for (int i = 0; i < nv && !ts_rt_failed(rt); i++) {
    const visit_t *p = &vis[i];
    if (!prefetch) ts_rt_fetch(rt, p->v, p->bwd);
    ts_rt_fetch_wait(rt, p->v);
    /* The visit's activations first, then the prefetch: it must not take
    ** their room. */
    if (p->fwd) ts_rt_reserve(rt, p->v, TS_FORWARD, c->microbatches);
    if (p->bwd) ts_rt_reserve(rt, p->v, TS_RECOMPUTE, 1);
    if (prefetch && i + 1 < nv) ts_rt_fetch(rt, vis[i + 1].v, vis[i + 1].bwd);
    run_visit(rt, p);
    if (p->bwd) ts_rt_offload(rt, p->v);
    if (!prefetch) ts_rt_host_wait(rt);
    ts_rt_evict(rt, p->v);
  }
  ts_rt_host_wait(rt);
  free(vis);
}

static void mobius_program(ts_rt_t *rt) { swap_program(rt, 1); }
static void gpipe_swap_program(ts_rt_t *rt) { swap_program(rt, 0); }

static int swap_check(const ts_job_t *job, ts_err_t *err) {
  int S = job->stages, G = job->devices;
  const char *rule = job->mapping_rule;
  if (job->chunks != 1 || job->iterations != 1)
    return ts_err_set(err, EX_DATAERR, "%s: %s: schedule '%s' takes one chunk and one iteration",
                      job->path, job->chunks != 1 ? "chunks" : "iterations", job->schedule);
  if (G > S)
    return ts_err_set(err, EX_DATAERR,
                      "%s: devices: schedule '%s' needs at least as many stages as devices, got %d "
                      "stages for %d devices",
                      job->path, job->schedule, S, G);
  if (strcmp(rule, "block") == 0 && S % G)
    return ts_err_set(err, EX_DATAERR,
                      "%s: mapping: \"block\" needs stages (%d) divisible by devices (%d)", job->path,
                      S, G);
  if (strcmp(rule, "cross") == 0 && !job->mapping) {
    int ng = job->mapping_groups > 0 ? job->mapping_groups : 2;
    if (G % ng)
      return ts_err_set(err, EX_DATAERR,
                        "%s: mapping_groups: \"cross\" needs devices (%d) divisible by %d groups",
                        job->path, G, ng);
  }
  if (job->mapping) {
    int *seen = ts__xcalloc((size_t)G, sizeof *seen);
    for (int k = 0; k < S; k++) seen[job->mapping[k]]++;
    int idle = -1;
    for (int d = 0; d < G && idle < 0; d++)
      if (!seen[d]) idle = d;
    free(seen);
    if (idle >= 0)
      return ts_err_set(err, EX_DATAERR, "%s: mapping: device %d gets no stage", job->path, idle);
  }
  return 0;
}

static const struct ts_sched_set one_chunk[] = {{"chunks=1", NULL}, {NULL, NULL}};
/* More stages than devices, so that weights move between host and device. */
static const char *const requires_swap[] = {"stages=4", "devices=2", NULL};

const ts_schedule_t ts_schedule_mobius = {
    .name = "mobius",
    .title = "Mobius (Feng et al. 2023)",
    .check = swap_check,
    .pipeline = ts_pipeline_mapped,
    .program = mobius_program,
    .host_weights = 1,
    .default_mapping = "cross",
    .requires = requires_swap,
    .compare_sets = one_chunk,
};

const ts_schedule_t ts_schedule_gpipe_swap = {
    .name = "gpipe-swap",
    .title = "GPipe with naive swapping",
    .check = swap_check,
    .pipeline = ts_pipeline_mapped,
    .program = gpipe_swap_program,
    .host_weights = 1,
    .default_mapping = "block",
    .requires = requires_swap,
    .compare_sets = one_chunk,
};
