/*
** 2bw.c: PipeDream-2BW (Narayanan et al., "Memory-Efficient
** Pipeline-Parallel DNN Training", ICML 2021), asynchronous.
**
** 1F1B without a flush: stage s runs min(p - s - 1, M) warm-up forwards
** once, then alternates one forward and one backward over the M = m x
** iterations micro-batches of all simulated iterations, then drains.  There
** is no bubble between iterations; only the first warm-up and the last
** drain idle.  Each stage keeps two weight versions (double-buffered
** weights): a micro-batch's backward uses the version its forward used, and
** the update of iteration t, applied after its m-th backward, is computed
** with the weights of iteration t - 1 (gradients one step stale), so
** weights_bytes is twice a stage's weights.  The simulator only counts
** those bytes; the reference executor (src/ref/ts_ref.h) keeps the two versions
** as real buffers, applies W(t + 1) = W(t) - lr grad f_t(W(t - 1)) and
** checks at run time that every op finds its version computed.
**
** Closed form (equal stages, no communication): the I simulated
** iterations take (m I + p - 1)(t_f + t_b), so the time per iteration
** tends to m (t_f + t_b) as I grows; stage s holds min(p - s, M)
** micro-batches in flight, as 1F1B does.
*/
#include "sched_util.h"

static void twobw_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], s = c->layout->stage[v], p = c->stages;
  int M = c->microbatches * c->iterations;
  int warmup = p - s - 1 < M ? p - s - 1 : M, fwd = 0, bwd = 0;
  while (fwd < warmup) ts_sched_forward(rt, v, fwd++);
  while (fwd < M) {
    ts_sched_forward(rt, v, fwd++);
    ts_sched_backward(rt, v, bwd++);
  }
  while (bwd < M) ts_sched_backward(rt, v, bwd++);
}

static int twobw_check(const ts_job_t *job, ts_err_t *err) {
  if (job->chunks != 1)
    return ts_err_set(err, EX_DATAERR, "%s: chunks: schedule '2bw' holds one stage per device, got %d",
                      job->path, job->chunks);
  return 0;
}

static const struct ts_sched_set one_chunk[] = {{"chunks=1", NULL}, {NULL, NULL}};
static const char *const requires_2bw[] = {"iterations=3", NULL};

const ts_schedule_t ts_schedule_2bw = {
    .name = "2bw",
    .title = "PipeDream-2BW (Narayanan et al. 2021)",
    .check = twobw_check,
    .pipeline = NULL,
    .program = twobw_program,
    .weight_versions = 2,
    .requires = requires_2bw,
    .compare_sets = one_chunk,
};
