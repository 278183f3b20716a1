/*
** ts_ref.c: the CPU reference executor (ts_ref.h): the job's reference
** model configuration, the set-up of a run (devices, data, weight
** versions), its threads, and the gathering of results.  The executor
** operations are in ref_exec.c; the design notes in ref_internal.h.
*/
#include <limits.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ref_internal.h"

int ts_ref_config_for_job(const ts_job_t *job, ts_ref_config_t *cfg, ts_err_t *err) {
  const ts_model_t *m = &job->model;
  if (m->kind != TS_MODEL_TRANSFORMER)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.kind: the reference executor needs a transformer model, got a "
                      "synthetic one (it has no math to run)",
                      job->path);
  if (job->recompute == TS_RECOMPUTE_SELECTIVE && m->moe.experts > 0)
    return ts_err_set(err, EX_DATAERR, "%s: recompute: the reference executor runs selective "
                      "recompute on dense models only", job->path);
  /* 1D tensor parallelism (ref_tp.c, ref_tp_sp.c) runs without what it
  ** does not implement yet. */
  int t = job->tensor_parallel, q = job->tensor_parallel_grid;
  bool grid = t > 1 && strcmp(job->tensor_parallel_mode, "1d") != 0;
  if (grid && (strcmp(job->tensor_parallel_mode, "2d") || q < 2))
    return ts_err_set(err, EX_DATAERR,
                      "%s: tensor_parallel_mode: the reference executor runs \"1d\" and \"2d\" "
                      "tensor parallelism, not \"%s\"",
                      job->path, job->tensor_parallel_mode);
  /* 2d (ref_tp2d.c): row blocks of whole samples, column blocks of whole heads. */
  const char *grid_field = !grid                            ? NULL
                           : job->micro_batch_size % q       ? "micro_batch_size"
                           : m->heads % q                    ? "model.heads"
                           : m->ffn_hidden % q               ? "model.ffn_hidden"
                                                             : NULL;
  if (grid_field)
    return ts_err_set(err, EX_DATAERR,
                      "%s: %s: the reference executor's 2d tensor parallelism on a %d x %d grid "
                      "needs micro_batch_size, heads and ffn_hidden multiples of %d",
                      job->path, grid_field, q, q, q);
  const char *tp_field = t <= 1                                   ? NULL
                         : job->recompute == TS_RECOMPUTE_FULL    ? "recompute"
                         : job->zero > 0                          ? "zero"
                         : job->iterations > 1                    ? "iterations"
                         : m->moe.experts > 0                     ? "model.moe"
                         : !grid && m->ffn_hidden % t             ? "model.ffn_hidden"
                         : job->sequence_parallel && job->micro_batch_size * job->seq_len % t
                             ? "sequence_parallel"
                             : NULL;
  if (tp_field)
    return ts_err_set(err, EX_DATAERR,
                      "%s: %s: the reference executor runs tensor_parallel %d without full recompute, ZeRO, MoE or more iterations, with ffn_hidden a "
                      "multiple of it and, with sequence parallelism, micro_batch_size x seq_len "
                      "too",
                      job->path, tp_field, t);
  if (m->gated_mlp)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.gated_mlp: the reference model has a plain GELU MLP, not a gated one",
                      job->path);
  /* The reference block is multi-head attention with head_dim h / heads,
  ** LayerNorm and every bias: other shapes would run silently as that. */
  const char *field = m->kv_heads > 0 && m->kv_heads != m->heads ? "model.kv_heads"
                      : m->head_dim > 0 && m->head_dim * m->heads != m->hidden ? "model.head_dim"
                      : m->norm != TS_NORM_LAYERNORM                          ? "model.norm"
                      : m->bias != TS_BIAS_ALL                                ? "model.bias"
                                                                              : NULL;
  if (field)
    return ts_err_set(err, EX_DATAERR,
                      "%s: %s: the reference model is a GPT block (multi-head attention of head "
                      "size hidden / heads, LayerNorm, biases everywhere); it does not run this "
                      "shape",
                      job->path, field);
  *cfg = (ts_ref_config_t){.layers = m->layers,
                           .hidden = m->hidden,
                           .heads = m->heads,
                           .ffn = m->ffn_hidden,
                           .seq = job->seq_len,
                           .seed = TS_REF_SEED};
  if (m->moe.experts > 0) {
    cfg->experts = m->moe.experts;
    cfg->expert_ffn = m->moe.expert_ffn;
    cfg->moe_every = m->moe.every;
  }
  if (ts_ref_block_param_count(cfg) == 0)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model: shape (layers %d, hidden %d, heads %d, ffn %d, seq %d) is not one "
                      "the reference model accepts",
                      job->path, m->layers, m->hidden, m->heads, m->ffn_hidden, job->seq_len);
  return 0;
}

/* ---- the run ------------------------------------------------------------- */

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void alloc_setup(void) {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

void ts_ref_extra_free(ts_ref_extra_t *e) {
  if (!e) return;
  free(e->expert_rows);
  for (int d = 0; e->dev_models && d < e->n_devices; d++) ts_ref_model_free(e->dev_models[d]);
  free(e->dev_models);
  free(e->holds);
  memset(e, 0, sizeof *e);
}

void ts_ref_allocator_setup(void) { pthread_once(&alloc_once, alloc_setup); }

/* Touches bytes of heap in 1 MiB pieces and frees them: with trimming off
** they stay mapped for the run's tensors. */
static void prewarm(size_t bytes) {
  size_t piece = 1 << 20, n = bytes / piece + 1;
  char **p = calloc(n, sizeof *p);
  if (!p) return;
  for (size_t i = 0; i < n; i++)
    if ((p[i] = malloc(piece))) memset(p[i], 0, piece);
  for (size_t i = n; i-- > 0;) free(p[i]);
  free(p);
}

/* An upper bound of the heap a run uses at once: every device holding all
** its stashes, inputs and messages, plus per-op workspace; at most 1 GiB. */
static size_t warm_bytes(const ref_x_t *x) {
  double in = (double)ts_ref_stash_input_bytes(&x->cfg, x->mbs), total = 0;
  for (int v = 0; v < x->lay->n_vstages; v++) {
    int nl = x->cost->part[x->lay->part[v]].n_layers;
    double st = (double)ts_ref_stash_bytes(&x->cfg, nl, x->mbs);
    total += x->M * (st + 3 * in) + 2 * st + 16 * in;
  }
  double cap = 1024.0 * 1024 * 1024;
  return (size_t)(total < cap ? total : cap);
}

int ts_ref_cores(int *cpus, int cap) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
  }
  int k = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &set)) continue;
    if (cpus && k < cap) cpus[k] = c;
    k++;
  }
  return k > 0 ? k : 1;
}

static void free_x(ref_x_t *x) {
  ts__ref_tp_free(x);
  ts__ref_moe_free(x);
  ts__ref_dp_free(x);
  ts__ref_coll_free(x);
  free(x->expert_rows);
  for (int d = 0; d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    size_t cells = (size_t)dv->n_local * (size_t)x->M;
    if (dv->stash)
      for (size_t i = 0; i < cells; i++) ts_ref_stash_free(dv->stash[i], &dv->mem);
    for (size_t i = 0; dv->wg_hold && i < cells; i++)
      ts_ref_mem_free(&dv->mem, dv->wg_hold[i].p, dv->wg_hold[i].bytes);
    free(dv->wg_hold);
    for (size_t i = 0; dv->out && i < 2 * cells; i++) free(dv->out[i]);
    for (size_t i = 0; dv->inbox && i < 2 * cells; i++) free(dv->inbox[i]);
    free(dv->stash);
    free(dv->out);
    free(dv->inbox);
    ts_ref_model_free(dv->model);
    for (int k = 0; k < 1 + TS_STREAMS; k++) pthread_cond_destroy(&dv->wake[k].cond);
  }
  ts_ref_model_free(x->host);
  for (int v = 0; x->stg && v < x->lay->n_vstages; v++) {
    for (int k = 0; x->stg[v].slot && k < x->V; k++) ts_ref_model_free(x->stg[v].slot[k]);
    free(x->stg[v].slot);
    free(x->stg[v].bwd);
    free(x->stg[v].inflight);
  }
  free(x->stg);
  pthread_mutex_destroy(&x->mu);
  free(x->dev);
  free(x->loc);
  free((void *)x->X);
  free((void *)x->T);
}

/* first[l]: the lowest-numbered device holding block l (every block is
** held by some device: ts_ref_run_ex checks the layer ranges); holds, when
** not NULL, gets [n x L] 1 where device d holds block l. */
static void block_holders(const ref_x_t *x, int *first, unsigned char *holds) {
  int L = x->cfg.layers;
  for (int l = 0; l < L; l++) first[l] = x->n;
  for (int v = 0; v < x->lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
    int d = x->lay->dev[v];
    for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
      if (d < first[l]) first[l] = d;
      if (holds) holds[(size_t)d * (size_t)L + (size_t)l] = 1;
    }
  }
}

/* The first holders' values of g's blocks: gradients (params 0) or
** weights (params 1). */
static void copy_first(ref_x_t *x, ts_ref_model_t *g, const int *first, int params) {
  for (int l = 0; l < x->cfg.layers; l++) {
    if (first[l] >= x->n) continue;
    size_t n;
    ts_ref_model_t *src = x->dev[first[l]].model;
    /* The model owns its gradient vector and it is not const: writable. */
    double *dst = params ? ts_ref_block_params(g, l, &n) : (double *)ts_ref_block_grad(g, l, &n);
    const double *s = params ? ts_ref_block_params(src, l, &n) : ts_ref_block_grad(src, l, &n);
    memcpy(dst, s, n * sizeof *dst);
  }
  if (x->cost->moe) ts__ref_moe_gather(x, g, first, params);
}

/* The run's results (ts_ref.h): a clone of base whose block gradients are
** those of the first device holding each block (MoE: the experts' from the
** device of their lane), with the slices owned under ZeRO from their
** owners; its weights are W(1) from the same devices (ZeRO 3: from base,
** every updated slice from its owner), or in a versioned run W(iterations)
** of the stage holding each block. */
static ts_ref_model_t *gather(ref_x_t *x, const ts_ref_model_t *base) {
  ts_ref_model_t *g = ts_ref_model_clone(base);
  if (!g) return NULL;
  ts_ref_model_zero_grad(g);
  int L = x->cfg.layers;
  int *first = malloc((size_t)L * sizeof *first);
  if (!first) {
    ts_ref_model_free(g);
    return NULL;
  }
  block_holders(x, first, NULL);
  copy_first(x, g, first, 0);
  ts__ref_tp_assemble(x, g, first, 0);
  if (!x->stg && x->job->zero != 3) {
    copy_first(x, g, first, 1);
    ts__ref_tp_assemble(x, g, first, 1);
  }
  free(first);
  if (ts__ref_dp_assemble(x, g, 0) || (x->job->zero == 3 && ts__ref_dp_assemble(x, g, 1))) {
    ts_ref_model_free(g);
    return NULL;
  }
  /* A versioned run's final weights: W(iterations) of the stage holding
  ** each block. */
  for (int v = 0; x->stg && v < x->lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
    ts_ref_model_t *w = x->stg[v].slot[ts__ref_vslot(x, x->stg[v].newest)];
    for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
      size_t n;
      const double *src = ts_ref_block_params(w, l, &n); /* n set before use */
      memcpy(ts_ref_block_params(g, l, NULL), src, n * sizeof(double));
    }
  }
  return g;
}

/* Allocates the devices, data, host model and weight versions of a run
** (x->job, lay, cost, cfg set).  base is the initial model.  Returns 0 or
** EX_OSERR; on error x holds what was allocated (free_x frees it). */
static int setup_x(ref_x_t *x, const ts_schedule_t *sched, const ts_ref_model_t *base) {
  const ts_layout_t *lay = x->lay;
  const ts_job_t *job = x->job;
  x->n = lay->n_devices;
  x->M = job->microbatches * job->iterations;
  x->mbs = job->micro_batch_size;
  x->n_el = (size_t)x->mbs * (size_t)x->cfg.seq * (size_t)x->cfg.hidden;
  x->lanes = x->plan->degree[TS_DIM_EP] * x->plan->degree[TS_DIM_DP];
  x->N = (double)x->lanes * x->M * x->mbs;
  atomic_init(&x->fatal, 0);
  pthread_mutex_init(&x->mu, NULL);
  x->dev = calloc((size_t)x->n, sizeof *x->dev);
  x->loc = calloc((size_t)lay->n_vstages, sizeof *x->loc);
  double *X = NULL, *T = NULL;
  int rc = (!x->dev || !x->loc || !base) ? EX_OSERR : ts__ref_make_data(&x->cfg, x->lanes * x->M, x->mbs, &X, &T);
  x->X = X;
  x->T = T;
  int *cpus = malloc(CPU_SETSIZE * sizeof *cpus);
  int ncpu = cpus ? ts_ref_cores(cpus, CPU_SETSIZE) : 0;
  bool pin = cpus && x->n <= ncpu;
  for (int d = 0; x->dev && d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    dv->x = x;
    dv->id = d;
    dv->cpu = pin ? cpus[d] : -1;
    dv->lane = ts_plan_coord(x->plan, d, TS_DIM_EP) +
               x->plan->degree[TS_DIM_EP] * ts_plan_coord(x->plan, d, TS_DIM_DP);
    for (int k = 0; k < 1 + TS_STREAMS; k++) pthread_cond_init(&dv->wake[k].cond, NULL);
  }
  free(cpus);
  if (!rc && x->dev) rc = ts__ref_coll_setup(x);
  if (!rc) rc = ts__ref_dp_setup(x);
  for (int v = 0; !rc && v < lay->n_vstages; v++) x->loc[v] = x->dev[lay->dev[v]].n_local++;
  for (int d = 0; !rc && d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    size_t cells = (size_t)(dv->n_local ? dv->n_local : 1) * (size_t)x->M;
    dv->model = ts_ref_model_clone(base);
    dv->stash = calloc(cells, sizeof *dv->stash);
    dv->wg_hold = calloc(cells, sizeof *dv->wg_hold);
    dv->out = calloc(2 * cells, sizeof *dv->out);
    dv->inbox = calloc(2 * cells, sizeof *dv->inbox);
    if (x->cost->moe) dv->moe = calloc(cells, sizeof *dv->moe);
    if (!dv->model || !dv->stash || !dv->wg_hold || !dv->out || !dv->inbox || (x->cost->moe && !dv->moe))
      rc = EX_OSERR;
    if (!rc && sched->host_weights) ts__ref_poison_blocks(dv->model, 0, x->cfg.layers);
  }
  if (!rc) rc = ts__ref_tp_setup(x);
  if (!rc && sched->host_weights) {
    if (!(x->host = ts_ref_model_clone(base)))
      rc = EX_OSERR;
    else
      ts_ref_model_zero_grad(x->host);
  }
  x->V = sched->weight_versions > 1 ? sched->weight_versions : 1;
  x->d = x->V - 1;
  x->I = job->iterations;
  /* One iteration computes with W(0) throughout: the optimizer step gives
  ** W(1) (ts__ref_optimizer), also for a schedule with several versions. */
  x->versioned = x->I > 1;
  if (!rc && x->cost->moe) {
    x->fifo = calloc(2 * (size_t)x->n * (size_t)x->n, sizeof *x->fifo);
    x->expert_rows =
        calloc((size_t)x->n * (size_t)x->cost->moe->n_layers * (size_t)x->M + 1, sizeof(long));
    if (!x->fifo || !x->expert_rows) rc = EX_OSERR;
  }
  if (!rc && x->versioned && !(x->stg = calloc((size_t)lay->n_vstages, sizeof *x->stg)))
    rc = EX_OSERR;
  for (int v = 0; !rc && x->stg && v < lay->n_vstages; v++) {
    ref_stage_t *sg = &x->stg[v];
    sg->slot = calloc((size_t)x->V, sizeof *sg->slot);
    sg->bwd = calloc((size_t)x->I, sizeof *sg->bwd);
    sg->inflight = calloc((size_t)x->I, sizeof *sg->inflight);
    sg->peak_live = 1;
    if (!sg->slot || !sg->bwd || !sg->inflight) rc = EX_OSERR;
    for (int k = 0; !rc && k < x->V; k++)
      if (!(sg->slot[k] = ts_ref_model_clone(base))) rc = EX_OSERR;
  }
  return rc;
}

/* Starts one thread per device (pinned when x->dev[d].cpu >= 0) and joins
** them all.  Returns 0, or EX_OSERR with a message when a thread could not
** be started (the devices already running then end through the deadlock
** path). */
static int run_threads(ref_x_t *x, ts_err_t *err) {
  int rc = 0;
  x->running = x->n;
  clock_gettime(CLOCK_MONOTONIC, &x->t0);
  for (int d = 0; d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (dv->cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(dv->cpu, &set);
      pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    }
    int e = pthread_create(&dv->thread, &attr, ts__ref_device_main, dv);
    if (e && dv->cpu >= 0) { /* pinning refused: run unpinned */
      dv->cpu = -1;
      pthread_attr_destroy(&attr);
      pthread_attr_init(&attr);
      e = pthread_create(&dv->thread, &attr, ts__ref_device_main, dv);
    }
    pthread_attr_destroy(&attr);
    if (e) {
      /* Devices d.. never run: count them as finished, so that the ones
      ** that wait for them end through the deadlock path. */
      ts__ref_lock(x);
      x->running -= x->n - d;
      for (int k = d; k < x->n; k++) x->dev[k].finished = 1;
      ts__ref_check_deadlock(x);
      ts__ref_unlock(x);
      rc = ts_err_set(err, EX_OSERR, "reference executor: cannot start thread %d: %s", d,
                      strerror(e));
      break;
    }
    dv->started = 1;
  }
  for (int d = 0; d < x->n; d++)
    if (x->dev[d].started) pthread_join(x->dev[d].thread, NULL);
  ts__ref_coll_join(x);
  if (!rc && x->comm_err)
    rc = ts_err_set(err, EX_OSERR,
                    "reference executor: cannot start the communication stream of device %d: %s",
                    x->comm_err_dev, strerror(x->comm_err));
  return rc;
}

/* Fills the reference executor's fields of a finished run: executor name,
** device names, measured activation peaks and weight versions. */
static void fill_run(const ref_x_t *x, ts_run_t *run) {
  const ts_layout_t *lay = x->lay;
  snprintf(run->executor, sizeof run->executor, "reference");
  run->measured_peak_act_bytes = calloc((size_t)(x->n ? x->n : 1), sizeof(double));
  run->measured_weight_versions = calloc((size_t)(x->n ? x->n : 1), sizeof(int));
  for (int d = 0; run->measured_weight_versions && d < x->n; d++)
    run->measured_weight_versions[d] = 1;
  for (int v = 0; run->measured_weight_versions && x->stg && v < lay->n_vstages; v++) {
    int *pk = &run->measured_weight_versions[lay->dev[v]];
    if (x->stg[v].peak_live > *pk) *pk = x->stg[v].peak_live;
  }
  for (int d = 0; d < x->n; d++) {
    ts_device_info_t *di = &run->devices[d];
    if (x->dev[d].cpu >= 0)
      snprintf(di->name, sizeof di->name, "cpu%d", x->dev[d].cpu);
    else
      snprintf(di->name, sizeof di->name, "thread%d", d);
    if (run->measured_peak_act_bytes) run->measured_peak_act_bytes[d] = (double)x->dev[d].mem.peak;
  }
}

int ts_ref_run(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
               const ts_cost_t *cost, ts_run_t **out, ts_ref_model_t **grads, ts_err_t *err) {
  return ts_ref_run_ex(job, sched, plan, cost, out, grads, NULL, err);
}

/* Checks what a MoE job needs of the run: the cost's MoE layers are the
** model's, one weight version, no host memory, no recompute.  Returns 0 or
** EX_DATAERR. */
static int moe_check(const ref_x_t *x, const ts_schedule_t *sched, ts_err_t *err) {
  const ts_moe_cost_t *mc = x->cost->moe;
  if (!mc && x->cfg.experts == 0) return 0;
  const char *why = !mc ? "the cost table has no MoE layers"
                    : !sched->moe ? "the schedule does not run MoE layers"
                    : x->job->iterations > 1 || sched->weight_versions > 1 || sched->host_weights
                        ? "it runs one iteration with one weight version in device memory"
                    : x->job->recompute != TS_RECOMPUTE_NONE ? "it runs recompute \"none\" only"
                    : x->cfg.experts % x->plan->degree[TS_DIM_EP] ? "experts must divide by EP"
                                                                  : NULL;
  if (!why) return 0;
  return ts_err_set(err, EX_DATAERR, "%s: model.moe: the reference executor's MoE: %s",
                    x->job->path, why);
}

/* Moves the per-device results of a finished run into *extra.  Returns 0
** or EX_OSERR. */
static int fill_extra(ref_x_t *x, ts_ref_extra_t *extra, ts_err_t *err) {
  extra->n_devices = x->n;
  extra->layers = x->cfg.layers;
  extra->M = x->M;
  if (x->expert_rows) {
    extra->n_moe_layers = x->cost->moe->n_layers;
    extra->expert_rows = ts__ref_take_long(&x->expert_rows);
  }
  extra->dev_models = calloc((size_t)x->n, sizeof *extra->dev_models);
  extra->holds = calloc((size_t)x->n * (size_t)x->cfg.layers, 1);
  int *first = malloc((size_t)x->cfg.layers * sizeof *first);
  if (!extra->dev_models || !extra->holds || !first) {
    free(first);
    return ts_err_set(err, EX_OSERR, "reference executor: out of memory gathering gradients");
  }
  block_holders(x, first, extra->holds);
  free(first);
  for (int d = 0; d < x->n; d++) {
    extra->dev_models[d] = x->dev[d].model;
    x->dev[d].model = NULL;
  }
  return 0;
}

int ts_ref_run_ex(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                  const ts_cost_t *cost, ts_run_t **out, ts_ref_model_t **grads,
                  ts_ref_extra_t *extra, ts_err_t *err) {
  const ts_layout_t *lay = plan->layout;
  *out = NULL;
  if (grads) *grads = NULL;
  if (extra) memset(extra, 0, sizeof *extra);
  ref_x_t x = {.job = job, .lay = lay, .cost = cost, .plan = plan};
  int rc = ts_ref_config_for_job(job, &x.cfg, err);
  if (!rc) rc = moe_check(&x, sched, err);
  if (rc) return rc;
  for (int v = 0; v < lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &cost->part[lay->part[v]];
    if (pc->n_layers < 1 || pc->first_layer < 0 || pc->first_layer + pc->n_layers > x.cfg.layers)
      return ts_err_set(err, EX_DATAERR,
                        "%s: virtual stage %d: layers [%d, %d) do not fit the model's %d layers",
                        job->path, v, pc->first_layer, pc->first_layer + pc->n_layers,
                        x.cfg.layers);
  }
  if (sched->host_weights && job->tensor_parallel > 1)
    return ts_err_set(err, EX_DATAERR,
                      "%s: tensor_parallel: the reference executor runs no schedule with host "
                      "weights under tensor parallelism",
                      job->path);
  ts_ref_model_t *base = ts_ref_model_new(&x.cfg);
  if (setup_x(&x, sched, base)) {
    if (x.dev) free_x(&x);
    ts_ref_model_free(base);
    return ts_err_set(err, EX_OSERR, "reference executor: out of memory setting up '%s'",
                      job->path);
  }

  ts_ref_allocator_setup();
  prewarm(warm_bytes(&x));
  x.w = ts__world_new(job, sched, plan, cost, &ts__ref_ops, &x);
  rc = run_threads(&x, err);

  ts_run_t *run = NULL;
  if (!rc) {
    run = ts_run_new(x.n);
    rc = ts__world_finish(x.w, run, err);
  }
  if (!rc && x.fatal_code) rc = ts_err_set(err, x.fatal_code, "%s", x.fatal_msg);
  if (!rc) {
    fill_run(&x, run);
    if (grads && !(*grads = x.host ? ts_ref_model_clone(x.host) : gather(&x, base)))
      rc = ts_err_set(err, EX_OSERR, "reference executor: out of memory gathering gradients");
    if (!rc && extra) rc = fill_extra(&x, extra, err);
  }
  if (rc) {
    ts_run_free(run);
    run = NULL;
    if (grads) {
      ts_ref_model_free(*grads);
      *grads = NULL;
    }
  }
  *out = run;
  ts__world_free(x.w);
  free_x(&x);
  ts_ref_model_free(base);
  return rc;
}
