/*
** varuna.c: Varuna's opportunistic schedule with recompute (Athlur et al.,
** "Varuna: Scalable, Low-cost Training of Massive Deep Learning Models",
** EuroSys 2022; the rules of its public schedule generator).
**
** Ops: f forward, r recompute, b input-gradient half of the backward
** (TS_BACKWARD_INPUT), B weight-gradient half (TS_WEIGHT_GRAD).  Only stage
** inputs are stashed between f and r; the last stage does no recompute
** (its forwards keep their activations, and f makes its b ready at once).
** Whenever a stage is free it takes the highest-priority ready task,
** B > b > r > f, the lowest micro-batch first within a kind:
**   f(j) is ready when the activation of j arrived (at stage 0: always);
**   r(j) is ready when the output gradient of j arrived: the b of j at the
**        next stage made it ready, so this stage recomputes while the next
**        one runs its B;
**   b(j) is ready when r(j) is done (at the last stage: when f(j) is done);
**   B(j) is ready when b(j) is done.
** Effects take hold when a task ends (a message arrives after its
** transfer).  The program polls readiness (ts_rt_arrived) and waits for
** the next message (ts_rt_wait_any) when nothing is ready: it is an actor
** program, not a precomputed table.  Before each choice it settles the
** instant (ts_rt_settle), so a message that lands at the very instant a
** stage chooses is seen by that choice.  On unit-time tasks (f = r = b = B
** and messages that take no time) this is the schedule of Varuna's public
** generator (microsoft/varuna, varuna/generate_schedule.cc), op for op:
** there every stage picks at the start of a quantum, FIFO within a queue
** (the oldest micro-batch first, as here), and what ran in quantum t is
** visible to every stage at t + 1 (tests/test_varuna.c).  On other task
** times each stage applies the same rules at the instants it becomes free
** (README "Notes on individual schedules").  The job must use recompute "full".
** With a synthetic model, b takes backward_s - weight_grad_s, B takes
** weight_grad_s and r takes recompute_s.
*/
#include <stdlib.h>

#include "sched_util.h"
#include "ts_internal.h"

static void varuna_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  const ts_layout_t *L = c->layout;
  int v = c->local[0], m = c->microbatches;
  bool first = L->prev[v] < 0, last = L->next[v] < 0;
  unsigned char *f = ts__xcalloc((size_t)m, 1), *r = ts__xcalloc((size_t)m, 1), *b = ts__xcalloc((size_t)m, 1);
  int nf = 0, nB = 0, nb = 0;
  if (last) ts_rt_keep_activations(rt, v);
  while (nB < m && !ts_rt_failed(rt)) {
    int j;
    ts_rt_settle(rt);
    /* B: the oldest micro-batch whose b is done. */
    if (nB < nb) {
      ts_rt_compute(rt, TS_WEIGHT_GRAD, v, nB++);
      continue;
    }
    /* b: the next micro-batch (in order) whose recompute (or, at the last
    ** stage, forward) is done. */
    if (nb < m && (last ? f[nb] : r[nb])) {
      ts_rt_compute(rt, TS_BACKWARD_INPUT, v, nb);
      b[nb] = 1;
      if (!first) ts_rt_send(rt, TS_SEND_GRAD, v, nb);
      nb++;
      continue;
    }
    /* r: the oldest forwarded micro-batch whose output gradient arrived. */
    for (j = nb; !last && j < nf; j++)
      if (!r[j] && ts_rt_arrived(rt, TS_SEND_GRAD, v, j)) break;
    if (!last && j < nf) {
      ts_rt_compute(rt, TS_RECOMPUTE, v, j);
      r[j] = 1;
      continue;
    }
    /* f: the next micro-batch whose input arrived. */
    if (nf < m && (first || ts_rt_arrived(rt, TS_SEND_ACT, v, nf))) {
      ts_rt_compute(rt, TS_FORWARD, v, nf);
      f[nf] = 1;
      if (!last) ts_rt_send(rt, TS_SEND_ACT, v, nf);
      nf++;
      continue;
    }
    ts_rt_wait_any(rt);
  }
  free(f);
  free(r);
  free(b);
}

static int varuna_check(const ts_job_t *job, ts_err_t *err) {
  int rc = ts_sched_check_one_chunk(job, err);
  if (!rc && job->recompute != TS_RECOMPUTE_FULL)
    rc = ts_err_set(err, EX_DATAERR,
                    "%s: recompute: schedule 'varuna' is defined with recompute; set \"recompute\": \"full\"",
                    job->path);
  return rc;
}

static const struct ts_sched_set varuna_sets[] = {
    {"recompute=full", NULL}, {"chunks=1", NULL}, {NULL, NULL}};
static const char *const requires_varuna[] = {"recompute=full", NULL};

const ts_schedule_t ts_schedule_varuna = {
    .name = "varuna",
    .title = "Varuna (Athlur et al. 2022)",
    .check = varuna_check,
    .pipeline = NULL,
    .program = varuna_program,
    .requires = requires_varuna,
    .compare_sets = varuna_sets,
    .order_by_arrival = 1,
};
