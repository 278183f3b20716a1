/*
** gpipe.c: GPipe (Huang et al., "GPipe: Efficient Training of Giant Neural
** Networks using Pipeline Parallelism", NeurIPS 2019).
**
** Rule: every stage runs the forwards of all m micro-batches, then their
** backwards in reverse order (the last micro-batch's backward first, as in
** the paper's Figure 2), then the iteration ends with a flush.  Under full
** recompute each backward is preceded by the recompute of its stage's
** forward (GPipe's re-materialisation), once its output gradient arrived.
**
** Closed form (equal stages, no communication): iteration time
** (m + p - 1)(t_f + t_b); bubble fraction (p - 1)/(m + p - 1); every stage
** holds the activations of all m micro-batches at its peak.
*/
#include "sched_util.h"

static void gpipe_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  for (int mb = 0; mb < c->microbatches; mb++) ts_sched_forward(rt, v, mb);
  for (int mb = c->microbatches - 1; mb >= 0; mb--) ts_sched_backward(rt, v, mb);
}

static const struct ts_sched_set one_chunk[] = {{"chunks=1", NULL}, {NULL, NULL}};

const ts_schedule_t ts_schedule_gpipe = {
    .name = "gpipe",
    .title = "GPipe (Huang et al. 2019)",
    .check = ts_sched_check_one_chunk,
    .pipeline = NULL,
    .program = gpipe_program,
    .compare_sets = one_chunk,
};
