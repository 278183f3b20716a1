/*
** gshard.c: GShard mixture-of-experts training with expert parallelism
** (Lepikhin et al., "GShard: Scaling Giant Models with Conditional
** Computation and Automatic Sharding", ICLR 2021), composed with 1F1B
** (gshard) or GPipe (gshard-gpipe) pipelining when stages > 1.
**
** Devices: stages x EP, where EP = model.moe.expert_parallel.  Stage s,
** lane r is device (and virtual stage) s x EP + r.  The EP devices of a
** stage hold the same dense layers (data-parallel over the tokens: each
** lane runs its own micro-batches, numbered alike) and split the experts of
** the stage's MoE layers, E / EP each.  Activations go from stage s to
** s + 1 within a lane.
**
** Program of each device: 1F1B over its stage (min(p - s - 1, m) warm-up
** forwards, then one forward one backward, then the drain), or, for
** gshard-gpipe, all m forwards then the m backwards, last micro-batch first
** (schedules/gpipe.c's order).  A forward of a
** part with MoE layers runs, for each MoE layer: the dense segment up to
** its gate, the dispatch all-to-all, the experts (time proportional to the
** tokens they received), the combine all-to-all; then the rest of the
** part.  A backward mirrors it with the gradients of the combine and of the
** dispatch.  At the end the EP devices of a stage all-reduce the gradients
** of their replicated (non-expert) weights in a ring.  Without model.moe the
** schedule is 1F1B.
**
** Closed forms (README "Mixture of experts"): one all-to-all of S bytes per
** pair among n devices, each behind its own full-duplex link of bandwidth B
** and latency L to a non-blocking switch, takes 2 L + (n - 1) S / B; expert
** time is tokens x 2 k h f_e / speed.
*/
#include "sched_util.h"

#define GSHARD_MAX_EP 512 /* devices per expert-parallel group */

static void moe_forward(ts_rt_t *rt, int v, int mb) {
  const ts_layout_t *L = ts_rt_ctx(rt)->layout;
  int n = ts_rt_moe_layers(rt, v);
  if (n == 0) {
    ts_sched_forward(rt, v, mb);
    return;
  }
  if (L->prev[v] >= 0) ts_rt_recv(rt, TS_SEND_ACT, v, mb);
  for (int i = 0; i < n; i++) {
    ts_rt_moe_compute(rt, TS_FORWARD, v, mb, 2 * i);
    ts_rt_moe_alltoall(rt, TS_FORWARD, TS_SEND_DISPATCH, v, mb);
    ts_rt_moe_compute(rt, TS_FORWARD, v, mb, 2 * i + 1);
    ts_rt_moe_alltoall(rt, TS_FORWARD, TS_SEND_COMBINE, v, mb);
  }
  ts_rt_moe_compute(rt, TS_FORWARD, v, mb, 2 * n);
  if (L->next[v] >= 0) ts_rt_send(rt, TS_SEND_ACT, v, mb);
}

static void moe_backward(ts_rt_t *rt, int v, int mb) {
  const ts_layout_t *L = ts_rt_ctx(rt)->layout;
  int n = ts_rt_moe_layers(rt, v);
  if (n == 0) {
    ts_sched_backward(rt, v, mb);
    return;
  }
  if (L->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, mb);
  ts_rt_moe_compute(rt, TS_BACKWARD, v, mb, 2 * n);
  for (int i = n - 1; i >= 0; i--) {
    ts_rt_moe_alltoall(rt, TS_BACKWARD, TS_SEND_COMBINE, v, mb);
    ts_rt_moe_compute(rt, TS_BACKWARD, v, mb, 2 * i + 1);
    ts_rt_moe_alltoall(rt, TS_BACKWARD, TS_SEND_DISPATCH, v, mb);
    ts_rt_moe_compute(rt, TS_BACKWARD, v, mb, 2 * i);
  }
  if (L->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
}

static int lanes_of(const ts_job_t *job) {
  return job->model.moe.experts > 0 ? job->model.moe.expert_parallel : 1;
}

static ts_layout_t *gshard_layout(const ts_job_t *job) {
  int p = job->stages, ep = lanes_of(job);
  ts_layout_t *l = ts_layout_new(p * ep, p * ep);
  for (int s = 0; s < p; s++)
    for (int r = 0; r < ep; r++) {
      int k = s * ep + r;
      l->dev[k] = k;
      l->stage[k] = s;
      l->chunk[k] = 0;
      l->part[k] = s;
      l->prev[k] = s ? k - ep : -1;
      l->next[k] = s + 1 < p ? k + ep : -1;
    }
  return l;
}

static void gshard_run(ts_rt_t *rt, int gpipe) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], s = c->layout->stage[v], p = c->stages, m = c->microbatches;
  int ep = c->n_devices / p;
  if (gpipe) {
    for (int mb = 0; mb < m; mb++) moe_forward(rt, v, mb);
    for (int mb = m - 1; mb >= 0; mb--) moe_backward(rt, v, mb);
  } else {
    int warmup = p - s - 1 < m ? p - s - 1 : m;
    int fwd = 0, bwd = 0;
    while (fwd < warmup) moe_forward(rt, v, fwd++);
    while (fwd < m) {
      moe_forward(rt, v, fwd++);
      moe_backward(rt, v, bwd++);
    }
    while (bwd < m) moe_backward(rt, v, bwd++);
  }
  if (ep > 1) { /* gshard_check keeps ep <= GSHARD_MAX_EP */
    int group[GSHARD_MAX_EP];
    for (int r = 0; r < ep; r++) group[r] = s * ep + r;
    ts_rt_allreduce(rt, v, ep, group, ts_rt_gradient_bytes(rt, v));
  }
}

static int gshard_check(const ts_job_t *job, ts_err_t *err) {
  int rc = ts_sched_check_one_chunk(job, err);
  if (rc) return rc;
  if (job->model.moe.experts > 0 && job->recompute != TS_RECOMPUTE_NONE)
    return ts_err_set(err, EX_DATAERR,
                      "%s: recompute: schedule 'gshard' with model.moe supports recompute "
                      "\"none\" only",
                      job->path);
  if (lanes_of(job) > GSHARD_MAX_EP)
    return ts_err_set(err, EX_DATAERR, "%s: model.moe.expert_parallel: at most %d, got %d",
                      job->path, GSHARD_MAX_EP, lanes_of(job));
  return 0;
}

static void gshard_program(ts_rt_t *rt) { gshard_run(rt, 0); }
static void gshard_gpipe_program(ts_rt_t *rt) { gshard_run(rt, 1); }

const ts_schedule_t ts_schedule_gshard = {
    .name = "gshard",
    .title = "GShard top-2 MoE, expert parallel (1F1B across stages)",
    .check = gshard_check,
    .layout = gshard_layout,
    .program = gshard_program,
    .moe = 1,
};

const ts_schedule_t ts_schedule_gshard_gpipe = {
    .name = "gshard-gpipe",
    .title = "GShard top-2 MoE, expert parallel (GPipe across stages)",
    .check = gshard_check,
    .layout = gshard_layout,
    .program = gshard_gpipe_program,
    .moe = 1,
};
