/*
** ts_runtime.c: the runtime front-end that schedule programs call.
**
** It is the same for both executors.  For every call it checks the program
** against the rules of a pipeline (an op runs once; a forward needs its
** input; a backward needs its forward, its output gradient and, under full
** recompute, its recompute), looks the op's cost up in the cost table,
** asks the executor to perform it, and records the event.  Messages arrive
** in a per-device inbox that the executor fills through ts__rt_deliver;
** receives block on it with the executor's lock/wait/notify primitives.
**
** Micro-batches are numbered 0 .. microbatches x iterations - 1 across the
** iterations of multi-iteration schedules; an event's iteration is mb / m.
**
** Threading: each device's ts_rt_t is used by that device's program
** context and its communication stream (rt_coll.c).  Under the
** executor's lock for that device: the inbox (arrived flags, transfer
** events, arrival counts, collective steps), which ts__rt_deliver writes,
** and the queue of collectives (colls, coll_next), shared by the program
** and the streams; a stream alone sends its collective steps and consumes
** them (rt_coll.c).
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "rt_internal.h"
#include "ts_moe.h"

void ts__rt_fail(ts_rt_t *rt, const char *fmt, const char *a, int v, int mb) {
  ts_world_t *w = rt->w;
  int expected = 0;
  /* Threads of the reference executor may fail at once: the first wins. */
  if (!atomic_compare_exchange_strong(&w->failed, &expected, 1)) return;
  char what[256];
  snprintf(what, sizeof what, fmt, a, v, mb);
  if (rt->opname[0])
    ts_err_set(&w->err, EX_SOFTWARE, "%s: device %d: %s", rt->opname, rt->ctx.device, what);
  else
    ts_err_set(&w->err, EX_SOFTWARE, "schedule '%s': device %d: %s", w->job->schedule,
               rt->ctx.device, what);
  if (w->ops->abort_all) w->ops->abort_all(w->xd);
}

int ts__rt_keeps(const ts_rt_t *rt, int v) {
  if (v < 0 || v >= rt->w->lay->n_vstages) return 0;
  int li = ts__rt_li(rt, v);
  return li >= 0 && rt->keep[li];
}

/* ---- calls for schedule programs ---------------------------------------- */

const ts_ctx_t *ts_rt_ctx(ts_rt_t *rt) { return &rt->ctx; }

int ts_rt_failed(ts_rt_t *rt) { return rt->w->failed; }

void ts_rt_name_op(ts_rt_t *rt, const char *name) {
  snprintf(rt->opname, sizeof rt->opname, "%s", name ? name : "");
}
double ts_rt_now(ts_rt_t *rt) { return rt->w->ops->now(rt->w->xd); }

/* Index of (v, mb) in this device's tables, or -1 (after failing). */
long ts__rt_cell(ts_rt_t *rt, const char *what, int v, int mb) {
  if (v < 0 || v >= rt->w->lay->n_vstages || ts__rt_li(rt, v) < 0) {
    ts__rt_fail(rt, "%s of virtual stage %d (micro-batch %d): that stage is not on this device", what, v,
         mb);
    return -1;
  }
  if (mb < 0 || mb >= rt->M) {
    ts__rt_fail(rt, "%s of stage %d: micro-batch %d out of range", what, v, mb);
    return -1;
  }
  const ts_layout_t *L = rt->w->lay;
  if (L->mb_hi[v] >= 0 && (mb < L->mb_lo[v] || mb >= L->mb_hi[v])) {
    ts__rt_fail(rt, "%s of stage %d: micro-batch %d does not pass through this stage", what, v, mb);
    return -1;
  }
  return (long)ts__rt_li(rt, v) * rt->M + mb;
}

void ts_rt_keep_activations(ts_rt_t *rt, int v) {
  if (ts__rt_cell(rt, "ts_rt_keep_activations", v, 0) >= 0) rt->keep[ts__rt_li(rt, v)] = 1;
}

bool ts__rt_done_at(ts_rt_t *rt, ts_kind_t k, int v, int mb) {
  /* Callers pass stages and micro-batches that ts__rt_cell accepted, or
  ** layout neighbours of them. */
  assert(k >= 0 && k < TS_COMPUTE_KINDS);
  assert(v >= 0 && v < rt->w->lay->n_vstages && mb >= 0 && mb < rt->M);
  if (ts__rt_li(rt, v) < 0) return false;
  return rt->done[k][(long)ts__rt_li(rt, v) * rt->M + mb];
}

bool ts__rt_backward_done(ts_rt_t *rt, int v, int mb) {
  return ts__rt_done_at(rt, TS_BACKWARD, v, mb) || ts__rt_done_at(rt, TS_BACKWARD_INPUT, v, mb);
}

/* Checks that kind may run now on (v, mb); fails and returns false if not. */
bool ts__rt_may_run(ts_rt_t *rt, ts_kind_t kind, int v, int mb, long c) {
  const ts_layout_t *L = rt->w->lay;
  const char *kn = ts_kind_name(kind);
  /* c is ts__rt_cell(v, mb): v is on this device. */
  assert(kind >= 0 && kind < TS_COMPUTE_KINDS && c >= 0 && ts__rt_li(rt, v) >= 0);
  if (rt->done[kind][c]) {
    ts__rt_fail(rt, "%s of stage %d micro-batch %d runs twice", kn, v, mb);
    return false;
  }
  if (rt->host) {
    int li = ts__rt_li(rt, v);
    if (rt->host->w[li] != W_RESIDENT) {
      ts__rt_fail(rt, "%s of stage %d micro-batch %d while its weights are not on the device", kn, v, mb);
      return false;
    }
    if (kind != TS_FORWARD && kind != TS_RECOMPUTE && rt->host->g[li] != G_RESERVED) {
      ts__rt_fail(rt, "%s of stage %d micro-batch %d without a gradient buffer (fetch with gradients)",
           kn, v, mb);
      return false;
    }
  }
  if (kind == TS_FORWARD) {
    int p = L->prev[v];
    if (p >= 0) {
      bool ok = L->dev[p] == rt->ctx.device ? ts__rt_done_at(rt, TS_FORWARD, p, mb)
                                            : rt->consumed[MSG_ACT][c];
      if (!ok) {
        ts__rt_fail(rt, "%s of stage %d micro-batch %d before its input activation was received", kn, v,
             mb);
        return false;
      }
    }
    return true;
  }
  if (!rt->done[TS_FORWARD][c]) {
    ts__rt_fail(rt, "%s of stage %d micro-batch %d before its forward", kn, v, mb);
    return false;
  }
  if (kind == TS_RECOMPUTE) {
    if (rt->ctx.recompute != TS_RECOMPUTE_FULL || ts__rt_keeps(rt, v)) {
      ts__rt_fail(rt, "%s of stage %d micro-batch %d, whose forward kept its activations", kn, v, mb);
      return false;
    }
    if (ts__rt_backward_done(rt, v, mb)) {
      ts__rt_fail(rt, "%s of stage %d micro-batch %d after its backward", kn, v, mb);
      return false;
    }
    return true;
  }
  if (kind == TS_WEIGHT_GRAD) {
    if (!rt->done[TS_BACKWARD_INPUT][c]) {
      ts__rt_fail(rt, "%s of stage %d micro-batch %d before its input-gradient backward", kn, v, mb);
      return false;
    }
    return true;
  }
  /* TS_BACKWARD or TS_BACKWARD_INPUT */
  if (ts__rt_backward_done(rt, v, mb)) {
    ts__rt_fail(rt, "%s of stage %d micro-batch %d: its backward already ran", kn, v, mb);
    return false;
  }
  int n = L->next[v];
  if (n >= 0) {
    bool ok = L->dev[n] == rt->ctx.device ? ts__rt_backward_done(rt, n, mb) : rt->consumed[MSG_GRAD][c];
    if (!ok) {
      ts__rt_fail(rt, "%s of stage %d micro-batch %d before its output gradient was received", kn, v, mb);
      return false;
    }
  }
  if (rt->ctx.recompute == TS_RECOMPUTE_FULL && !ts__rt_keeps(rt, v) && !rt->done[TS_RECOMPUTE][c]) {
    ts__rt_fail(rt, "%s of stage %d micro-batch %d without its recompute (recompute \"full\")", kn, v, mb);
    return false;
  }
  return true;
}


/* Records a compute op of this device, next in program order. */
void ts__rt_push_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double t0,
                         double t1) {
  ts_event_t e = {.device = rt->ctx.device,
                  .peer = -1,
                  .vstage = v,
                  .mb = mb,
                  .kind = kind,
                  .seq = rt->seq++,
                  .iteration = mb / rt->ctx.microbatches,
                  .flags = flags,
                  .start = t0,
                  .end = t1,
                  .bytes = 0};
  ts_run_push(rt->cev, &e);
}

void ts_rt_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  if (!ts_kind_is_compute(kind)) {
    ts__rt_fail(rt, "ts_rt_compute called with the transfer kind %s (stage %d, micro-batch %d)",
         ts_kind_name(kind), v, mb);
    return;
  }
  long c = ts__rt_cell(rt, ts_kind_name(kind), v, mb);
  if (c < 0 || !ts__rt_may_run(rt, kind, v, mb, c)) return;
  const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
  if (rt->host) {
    ts__rt_host_alloc(rt, kind, v, mb, c);
    if (w->failed) return;
  }
  int flags = (kind == TS_FORWARD && ts__rt_keeps(rt, v) && rt->ctx.recompute == TS_RECOMPUTE_FULL)
                  ? TS_EVF_KEEP
                  : 0;
  if (!rt->host) { /* data parallelism may run the op in pieces (rt_dp.c) */
    ts__rt_dp_compute(rt, kind, v, mb, flags, pc->flops[kind], pc->seconds[kind]);
    rt->done[kind][c] = 1;
    rt->polls = 0;
    return;
  }
  double t0 = w->ops->now(w->xd);
  w->ops->compute(w->xd, rt->ctx.device, kind, v, mb, pc->flops[kind], pc->seconds[kind]);
  double t1 = w->ops->now(w->xd);
  rt->done[kind][c] = 1;
  rt->polls = 0;
  ts__rt_host_free(rt, kind, v, c);
  ts__rt_push_compute(rt, kind, v, mb, flags, t0, t1);
}

void ts_rt_send(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  const ts_layout_t *L = w->lay;
  if (kind != TS_SEND_ACT && kind != TS_SEND_GRAD) {
    ts__rt_fail(rt, "ts_rt_send called with the compute kind %s (stage %d, micro-batch %d)",
         ts_kind_name(kind), v, mb);
    return;
  }
  long c = ts__rt_cell(rt, ts_kind_name(kind), v, mb);
  if (c < 0) return;
  int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
  int to = kind == TS_SEND_ACT ? L->next[v] : L->prev[v];
  if (to < 0) {
    ts__rt_fail(rt, "%s from stage %d micro-batch %d: no stage receives it", ts_kind_name(kind), v, mb);
    return;
  }
  if (rt->sent[m][c]) {
    ts__rt_fail(rt, "%s from stage %d micro-batch %d sent twice", ts_kind_name(kind), v, mb);
    return;
  }
  bool ready = kind == TS_SEND_ACT ? rt->done[TS_FORWARD][c] : ts__rt_backward_done(rt, v, mb);
  if (!ready) {
    ts__rt_fail(rt, "%s from stage %d micro-batch %d before the op that produces it", ts_kind_name(kind),
         v, mb);
    return;
  }
  rt->sent[m][c] = 1;
  /* A gradient has the size of the activation that entered v. */
  double bytes = w->cost->part[L->part[kind == TS_SEND_ACT ? v : to]].msg_bytes;
  int peer = L->dev[to];
  if (peer == rt->ctx.device) {
    double t = w->ops->now(w->xd);
    w->ops->lock(w->xd, peer);
    ts__rt_deliver(&w->rt[peer], peer, kind, to, mb, 0, t, t);
    w->ops->unlock(w->xd, peer);
    return;
  }
  w->ops->send(w->xd, rt->ctx.device, peer, kind, to, mb, bytes);
}

void ts__rt_deliver(ts_rt_t *rt, int from, ts_kind_t kind, int to, int mb, double bytes,
                    double t_start, double t_end) {
  ts_world_t *w = rt->w;
  int stream = -1;
  if (kind == TS_SEND_COLL) { /* mb: the step's stream and number there */
    stream = ts__rt_coll_tag_stream(mb);
    mb = ts__rt_coll_tag_seq(mb);
  } else if (kind == TS_SEND_DISPATCH || kind == TS_SEND_COMBINE) {
    ts__rt_peer(rt, from)->in[kind == TS_SEND_COMBINE ? PEER_COMBINE : PEER_DISPATCH]++;
  } else {
    int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
    rt->arrived[m][(long)ts__rt_li(rt, to) * rt->M + mb] = 1;
  }
  if (kind != TS_SEND_COLL) rt->n_arrivals++; /* the program's messages only */
  if (from != rt->ctx.device) {
    int sv = kind == TS_SEND_ACT    ? w->lay->prev[to]
             : kind == TS_SEND_GRAD ? w->lay->next[to]
                                    : to; /* a collective's label stage */
    ts_event_t e = {.device = from,
                    .peer = rt->ctx.device,
                    .vstage = sv,
                    .mb = mb,
                    .kind = kind,
                    .seq = 0,
                    .iteration = kind == TS_SEND_COLL ? 0 : mb / rt->ctx.microbatches,
                    .start = t_start,
                    .end = t_end,
                    .bytes = bytes};
    ts_run_push(rt->tev, &e);
  }
  /* Collective steps are for their communication stream. */
  if (stream >= 0)
    ts__rt_coll_arrived(rt, stream, from);
  else
    w->ops->notify(w->xd, rt->ctx.device);
}

/* Checks a receive's arguments; returns the cell or -1. */
static long recv_cell(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  const ts_layout_t *L = rt->w->lay;
  if (kind != TS_SEND_ACT && kind != TS_SEND_GRAD) {
    ts__rt_fail(rt, "receive of the compute kind %s (stage %d, micro-batch %d)", ts_kind_name(kind), v, mb);
    return -1;
  }
  long c = ts__rt_cell(rt, "receive", v, mb);
  if (c < 0) return -1;
  int from = kind == TS_SEND_ACT ? L->prev[v] : L->next[v];
  if (from < 0) {
    ts__rt_fail(rt, "receive of %s for stage %d micro-batch %d: no stage sends it", ts_kind_name(kind), v,
         mb);
    return -1;
  }
  return c;
}

int ts_rt_arrived(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return 0;
  long c = recv_cell(rt, kind, v, mb);
  if (c < 0) return 0;
  if (++rt->polls > POLL_LIMIT) {
    ts__rt_fail(rt, "%s polled %d million times (last at micro-batch %d) without waiting: a busy loop",
         "ts_rt_arrived", (int)(POLL_LIMIT / 1000000), mb);
    return 0;
  }
  int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
  w->ops->lock(w->xd, rt->ctx.device);
  int a = rt->arrived[m][c];
  rt->polled = rt->n_arrivals;
  w->ops->unlock(w->xd, rt->ctx.device);
  if (a) rt->consumed[m][c] = 1;
  return a;
}

void ts_rt_recv(ts_rt_t *rt, ts_kind_t kind, int v, int mb) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  long c = recv_cell(rt, kind, v, mb);
  if (c < 0) return;
  int m = kind == TS_SEND_ACT ? MSG_ACT : MSG_GRAD;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  if (!rt->arrived[m][c]) {
    ts__rt_wait_set(&rt->waiting, RT_W_MSG, kind == TS_SEND_ACT ? "the activation" : "the gradient", v, mb, 0);
    while (!rt->arrived[m][c] && !w->failed) w->ops->wait(w->xd, d);
    rt->waiting.kind = RT_W_NONE;
  }
  w->ops->unlock(w->xd, d);
  rt->consumed[m][c] = 1;
  rt->polls = 0;
}

void ts_rt_wait_any(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  if (w->failed) return;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  /* Where time is real (no settle), a message may arrive between the
  ** program's last poll and this call: it is new to the program.  (In
  ** SimGrid nothing arrives in between.) */
  long seen = !w->ops->settle && rt->polled >= 0 ? rt->polled : rt->n_arrivals;
  rt->waiting.kind = RT_W_ANY;
  while (rt->n_arrivals == seen && !w->failed) w->ops->wait(w->xd, d);
  rt->waiting.kind = RT_W_NONE;
  rt->polled = -1;
  w->ops->unlock(w->xd, d);
  rt->polls = 0;
}

double ts_rt_gradient_bytes(ts_rt_t *rt, int v) {
  if (ts__rt_cell(rt, "ts_rt_gradient_bytes", v, rt->w->lay->mb_hi[v] >= 0 ? rt->w->lay->mb_lo[v] : 0) < 0)
    return 0;
  const ts_moe_cost_t *mc = rt->w->cost->moe;
  int part = rt->w->lay->part[v];
  /* Experts are not replicated: only the rest is all-reduced. */
  return rt->w->cost->part[part].gradients_bytes -
         (mc ? mc->expert_params[part] * rt->w->job->bytes_per_element : 0);
}

void ts_rt_settle(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  if (!w->failed && w->ops->settle) w->ops->settle(w->xd, rt->ctx.device);
}

