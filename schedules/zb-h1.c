/*
** zb-h1.c: ZB-H1, the memory-neutral zero-bubble schedule (Qi et al.,
** "Zero Bubble Pipeline Parallelism", ICLR 2024).
**
** The backward is split into B (the input gradient, which the previous
** stage waits for) and W (the weight gradient, which nobody waits for).
** The schedule is 1F1B with B in place of the backward: stage s runs
** min(p - s - 1, m) warm-up forwards, then alternates F and B.  Each W is
** deferred: stage s runs the W of micro-batch j right after the B of
** micro-batch j + s (the deeper the stage, the fewer warm-up forwards and
** the more deferred Ws), and the remaining Ws after the last B.  Every
** stage thus holds p micro-batches between their F and their W, the
** count 1F1B holds at stage 0 (the paper: "all pipeline stages have the
** same number of in-flight microbatches").  trainsim frees a micro-batch's
** activations when its W ends, so stage 0's peak equals 1F1B's and deeper
** stages hold more than under 1F1B (the paper counts the smaller memory a
** pending W needs; trainsim does not split activations between B and W).
** With a synthetic model, B takes backward_s - weight_grad_s and W takes
** weight_grad_s.
**
** Closed form (equal stages, no communication; T_F, T_B, T_W per stage):
** each stage idles (p - 1)(T_F + T_B - T_W) against 1F1B's
** (p - 1)(T_F + T_B + T_W), so the iteration takes
** m (T_F + T_B + T_W) + (p - 1)(T_F + T_B - T_W) when m >= p and T_W <= T_B
** (the paper analyses T_F = T_B = T_W; with T_W > T_B the deferred Ws no
** longer fit the bubbles and the iteration is longer).
*/
#include "sched_util.h"

static void b_pass(ts_rt_t *rt, int v, int mb) {
  const ts_layout_t *L = ts_rt_ctx(rt)->layout;
  if (L->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, mb);
  ts_rt_compute(rt, TS_BACKWARD_INPUT, v, mb);
  if (L->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
}

static void zbh1_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], s = c->layout->stage[v], p = c->stages, m = c->microbatches;
  int warmup = p - s - 1 < m ? p - s - 1 : m, nf = 0, nb = 0, nw = 0;
  while (nf < warmup) ts_sched_forward(rt, v, nf++);
  while (nb < m) {
    if (nf < m) ts_sched_forward(rt, v, nf++);
    b_pass(rt, v, nb++);
    if (nb > s) ts_rt_compute(rt, TS_WEIGHT_GRAD, v, nw++);
  }
  while (nw < m) ts_rt_compute(rt, TS_WEIGHT_GRAD, v, nw++);
}

static int zbh1_check(const ts_job_t *job, ts_err_t *err) {
  int rc = ts_sched_check_one_chunk(job, err);
  if (!rc && job->recompute != TS_RECOMPUTE_NONE)
    rc = ts_err_set(err, EX_DATAERR, "%s: recompute: schedule 'zb-h1' keeps activations (recompute \"none\")",
                    job->path);
  return rc;
}

static const struct ts_sched_set zbh1_sets[] = {
    {"recompute=none", NULL}, {"chunks=1", NULL}, {NULL, NULL}};

const ts_schedule_t ts_schedule_zb_h1 = {
    .name = "zb-h1",
    .title = "ZB-H1 (Qi et al. 2024)",
    .check = zbh1_check,
    .pipeline = NULL,
    .program = zbh1_program,
    .compare_sets = zbh1_sets,
};
