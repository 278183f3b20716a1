/*
** sched_util.h: the forward and backward steps that every linear pipeline
** schedule repeats, written once.  A step receives its input (unless the
** neighbour stage is on the same device, where the runtime passes it on
** at once), computes, and sends its output on.
*/
#ifndef TS_SCHED_UTIL_H
#define TS_SCHED_UTIL_H

#include <stdio.h>
#include <sysexits.h>

#include "ts_runtime.h"

/* Forward of virtual stage v for micro-batch mb. */
static inline void ts_sched_forward(ts_rt_t *rt, int v, int mb) {
  const ts_layout_t *L = ts_rt_ctx(rt)->layout;
  if (L->prev[v] >= 0) ts_rt_recv(rt, TS_SEND_ACT, v, mb);
  ts_rt_compute(rt, TS_FORWARD, v, mb);
  if (L->next[v] >= 0) ts_rt_send(rt, TS_SEND_ACT, v, mb);
}

/* Backward of virtual stage v for micro-batch mb: waits for the output
** gradient, recomputes under full recompute, computes, sends the input
** gradient back. */
static inline void ts_sched_backward(ts_rt_t *rt, int v, int mb) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  const ts_layout_t *L = c->layout;
  if (L->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, mb);
  if (c->recompute == TS_RECOMPUTE_FULL) ts_rt_compute(rt, TS_RECOMPUTE, v, mb);
  ts_rt_compute(rt, TS_BACKWARD, v, mb);
  if (L->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
}

/* Shared check for schedules that hold one stage per device. */
static inline int ts_sched_check_one_chunk(const ts_job_t *job, ts_err_t *err) {
  if (job->chunks != 1)
    return ts_err_set(err, EX_DATAERR, "%s: chunks: schedule '%s' holds one stage per device, got %d chunks",
                      job->path, job->schedule, job->chunks);
  if (job->iterations != 1)
    return ts_err_set(err, EX_DATAERR, "%s: iterations: schedule '%s' simulates one iteration (flush), got %d",
                      job->path, job->schedule, job->iterations);
  return 0;
}

#endif
