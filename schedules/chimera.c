/*
** chimera.c: Chimera, bidirectional pipelines (Li and Hoefler, "Chimera:
** Efficiently Training Large-Scale Neural Networks with Bidirectional
** Pipelines", SC 2021).
**
** Two pipelines run in opposite directions over the same D devices (D
** even): device i holds stage i of the "down" pipeline and stage D - 1 - i
** of the "up" pipeline, so every device holds two stage replicas (twice the
** weights of one stage).  The N micro-batches are split in half: 0 .. N/2-1
** go down, N/2 .. N-1 go up.  Each device, whenever it is free, runs the
** ready op of the pipeline in which it holds the deeper stage (the one
** nearer that pipeline's end), a backward before a forward and the oldest
** micro-batch first; when nothing is ready it waits for the next message.
** This reproduces the paper's schedule: the up pipeline's forwards fill
** the down pipeline's warm-up bubble and vice versa.
**
** N > D (section 3.4 of the paper): the schedule for N = k D concatenates k
** basic units of D micro-batches (D/2 per pipeline), the forwards at the
** start of unit u + 1 filling the bubbles at the end of unit u.  A unit's
** micro-batch takes the place of the one at the same position of the
** previous unit: its forward on a stage waits until the micro-batch D/2
** before it in that pipeline has finished its backward there.  So a stage
** replica holds at most D/2 micro-batches of its pipeline, and a device at
** most D, at every N, the paper's bound; the devices' in-flight counts are
** those of N = D.  (Without the rule a free device would run any ready
** forward: with t_b = 2 t_f, D = 8, N = 16 that holds 11 micro-batches.)
** The two devices holding the same pair of stages (i and D - 1 - i) are a
** REPLICA group of the plan, so the runtime all-reduces their gradients of
** both stages (a ring of 2 over the platform's links), as it does for data
** parallelism.
**
** Closed form (unit slots: t_f = t_b = t, no communication, N even, N a
** multiple of D): iteration time (2N + D - 2) t, bubble fraction
** (D - 2)/(2N + D - 2) against (D - 1)/(N + D - 1) for GPipe and 1F1B;
** each device holds between D/2 + 1 and D micro-batches' activations.
** With t_b = 2 t_f the slots no longer interlock and the closed form does
** not hold: the backwards of a unit collide and leave bubbles between the
** units (README "Notes on individual schedules").
*/
#include <stdlib.h>

#include "sched_util.h"

typedef struct pipe {
  int v, lo, hi, nf, nb; /* its stage here, micro-batch range, next F and B */
} pipe_t;

/* A forward is ready when its input arrived and, the units being
** concatenated, the micro-batch D/2 before it in this pipeline (the same
** position of the previous unit) has finished its backward here. */
static bool f_ready(ts_rt_t *rt, const pipe_t *p) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  const ts_layout_t *L = c->layout;
  int unit_half = c->stages / 2;
  return p->nf < p->hi && p->nf - p->nb < unit_half &&
         (L->prev[p->v] < 0 || ts_rt_arrived(rt, TS_SEND_ACT, p->v, p->nf));
}

static bool b_ready(ts_rt_t *rt, const pipe_t *p) {
  const ts_layout_t *L = ts_rt_ctx(rt)->layout;
  return p->nb < p->nf && (L->next[p->v] < 0 || ts_rt_arrived(rt, TS_SEND_GRAD, p->v, p->nb));
}

static void chimera_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  const ts_layout_t *L = c->layout;
  pipe_t pp[2];
  for (int i = 0; i < 2; i++) {
    int v = c->local[i];
    pp[i] = (pipe_t){v, L->mb_lo[v], L->mb_hi[v], L->mb_lo[v], L->mb_lo[v]};
  }
  /* The pipeline in which this device holds the deeper stage goes first. */
  if (L->stage[pp[1].v] > L->stage[pp[0].v]) {
    pipe_t t = pp[0];
    pp[0] = pp[1];
    pp[1] = t;
  }
  while ((pp[0].nb < pp[0].hi || pp[1].nb < pp[1].hi) && !ts_rt_failed(rt)) {
    ts_rt_settle(rt);
    int ran = 0;
    for (int i = 0; i < 2 && !ran; i++) {
      pipe_t *p = &pp[i];
      if (b_ready(rt, p)) {
        ts_sched_backward(rt, p->v, p->nb++);
        ran = 1;
      } else if (f_ready(rt, p)) {
        ts_sched_forward(rt, p->v, p->nf++);
        ran = 1;
      }
    }
    if (!ran) ts_rt_wait_any(rt);
  }
  /* The two devices holding this pair of stages (i and D - 1 - i) form a
  ** REPLICA group: the runtime sums their gradients (README "Data
  ** parallelism"), bucket by bucket as the backwards finish. */
}

static int chimera_check(const ts_job_t *job, ts_err_t *err) {
  if (job->stages % 2)
    return ts_err_set(err, EX_DATAERR, "%s: stages: chimera needs an even number of stages, got %d",
                      job->path, job->stages);
  if (job->microbatches % 2)
    return ts_err_set(err, EX_DATAERR,
                      "%s: microbatches: chimera splits micro-batches in half between its two "
                      "pipelines and needs an even number, got %d",
                      job->path, job->microbatches);
  if (job->chunks != 1 || job->iterations != 1)
    return ts_err_set(err, EX_DATAERR, "%s: %s: chimera takes one chunk and one iteration", job->path,
                      job->chunks != 1 ? "chunks" : "iterations");
  if (job->placement && job->n_placement != job->stages)
    return ts_err_set(err, EX_DATAERR, "%s: placement: one host per device expected", job->path);
  return 0;
}

static const struct ts_sched_set one_chunk[] = {{"chunks=1", NULL}, {NULL, NULL}};

const ts_schedule_t ts_schedule_chimera = {
    .name = "chimera",
    .title = "Chimera (Li and Hoefler 2021)",
    .check = chimera_check,
    .pipeline = ts_pipeline_bidirectional,
    .program = chimera_program,
    .compare_sets = one_chunk,
    .order_by_arrival = 1,
};
