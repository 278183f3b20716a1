/*
** gshard.c: GShard mixture-of-experts training with expert parallelism
** (Lepikhin et al., "GShard: Scaling Giant Models with Conditional
** Computation and Automatic Sharding", ICLR 2021), composed with 1F1B
** (gshard) or GPipe (gshard-gpipe) pipelining when stages > 1.
**
** Devices: stages x EP, where EP = model.moe.expert_parallel: the plan
** replicates the pipeline over EP lanes (stage s, lane r is virtual stage
** s x EP + r, on device s x EP + r under the default rank order).  The EP devices of a
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
** dispatch.  The EP devices of a stage form a REPLICA group, whose
** gradients of the replicated (non-expert) weights the runtime all-reduces
** (README "Data parallelism").  Without model.moe the
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

static void gshard_run(ts_rt_t *rt, int gpipe) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], s = c->layout->stage[v], p = c->stages, m = c->microbatches;
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
  /* The replicated (dense) weights of the stage are held by its EP lanes,
  ** a REPLICA group: the runtime all-reduces their gradients. */
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

static const struct ts_sched_set one_chunk[] = {{"chunks=1", NULL}, {NULL, NULL}};
/* MoE layers, two expert-parallel lanes per stage. */
static const char *const requires_moe[] = {"model.moe.experts=4", "model.moe.expert_parallel=2",
                                           NULL};

const ts_schedule_t ts_schedule_gshard = {
    .name = "gshard",
    .title = "GShard top-2 MoE, expert parallel (1F1B across stages)",
    .check = gshard_check,
    .program = gshard_program,
    .moe = 1,
    .requires = requires_moe,
    .compare_sets = one_chunk,
};

const ts_schedule_t ts_schedule_gshard_gpipe = {
    .name = "gshard-gpipe",
    .title = "GShard top-2 MoE, expert parallel (GPipe across stages)",
    .check = gshard_check,
    .program = gshard_gpipe_program,
    .moe = 1,
    .requires = requires_moe,
    .compare_sets = one_chunk,
};
