/*
** 1f1b.c: 1F1B, the flushed one-forward-one-backward schedule of
** PipeDream-Flush (Narayanan et al., "Memory-Efficient Pipeline-Parallel DNN
** Training", ICML 2021) and DAPPLE (Fan et al., PPoPP 2021).
**
** Rule: stage s runs min(p - s - 1, m) warm-up forwards, then alternates
** one forward and one backward until every forward ran, then drains the
** remaining backwards; micro-batches go in order.  The iteration ends with
** a flush (no weight update inside it).
**
** Closed form (equal stages, no communication): iteration time
** (m + p - 1)(t_f + t_b), bubble fraction (p - 1)/(m + p - 1), like GPipe,
** but stage s holds at most min(p - s, m) micro-batches' activations.
*/
#include "sched_util.h"

static void onef1b_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], s = c->layout->stage[v], p = c->stages, m = c->microbatches;
  int warmup = p - s - 1 < m ? p - s - 1 : m;
  int fwd = 0, bwd = 0;
  while (fwd < warmup) ts_sched_forward(rt, v, fwd++);
  while (fwd < m) {
    ts_sched_forward(rt, v, fwd++);
    ts_sched_backward(rt, v, bwd++);
  }
  while (bwd < m) ts_sched_backward(rt, v, bwd++);
}

static const struct ts_sched_set one_chunk[] = {{"chunks=1", NULL}, {NULL, NULL}};

const ts_schedule_t ts_schedule_1f1b = {
    .name = "1f1b",
    .title = "1F1B (PipeDream-Flush / DAPPLE)",
    .check = ts_sched_check_one_chunk,
    .pipeline = NULL,
    .program = onef1b_program,
    .compare_sets = one_chunk,
};
