/*
** rt_coll.c: collectives over a group of devices, owned by the runtime
** (ts_runtime.h, README "Collectives").
**
** What it models: NCCL-style collectives on a per-device communication
** stream.  The program starts a collective and goes on; the stream runs the
** device's collectives one at a time in start order, each as the steps of
** its algorithm (ring, or direct for all-to-all); a step is one message to
** a group member (kind TS_SEND_COLL, numbered by the device's coll_seq),
** and a receive consumes the next message from that member.  Because every
** member runs the same collectives in the same order and messages between
** a pair arrive in send order, the n-th message from a member is always
** the one the n-th receive from it expects.
**
** Chunks.  Member i of n holds the buffer as n slices.  Reduce-scatter
** step s (0 .. n-2): send slice (i - s - 1) mod n to the next member,
** receive slice (i - s - 2) mod n from the previous one and add it in; after
** n - 1 steps member i holds the sum of slice i.  All-gather step s: send
** slice (i - s) mod n, receive slice (i - s - 1) mod n and keep it.
** All-reduce is the two in a row.  Broadcast: member 0 sends slices 0 ..
** n-1 to member 1, which forwards each on arrival, and so on along the ring.
** All-to-all: member i sends its slice j to member j and keeps slice i;
** the slice received from member j replaces its slice j.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "rt_internal.h"
#include "ts_internal.h"

ts_group_t ts_rt_group(ts_rt_t *rt, ts_group_kind_t k) {
  return ts_plan_group(rt->w->plan, k, rt->ctx.device);
}

/* ---- steps (on the stream's context) ------------------------------------ */

typedef struct run_coll {
  ts_rt_t *rt;
  const rt_coll_t *c;
  int id, slot;
  double sent;  /* bytes this device sent in it */
} run_coll_t;

/* Sends slice chunk of this device's buffer to member peer_rank, where it
** lands in slice peer_chunk. */
static void step_send(run_coll_t *x, int peer_rank, int chunk, int peer_chunk, double bytes) {
  ts_rt_t *rt = x->rt;
  ts_world_t *w = rt->w;
  const rt_coll_t *c = x->c;
  int d = rt->ctx.device, n = c->g.n;
  assert(peer_rank >= 0 && peer_rank < n);
  ts_coll_step_t st = {c->op, c->buf, c->unit_lo, c->unit_hi, x->id, c->vstage, c->g.dev[peer_rank],
                       chunk, peer_chunk, n, 0};
  if (w->ops->coll_pack) w->ops->coll_pack(w->xd, d, &st);
  x->sent += bytes;
  w->ops->send(w->xd, d, st.peer, TS_SEND_COLL, c->vstage, (int)rt->coll_seq++, bytes);
}

/* Receives member peer_rank's slice peer_chunk into this device's slice
** chunk, added in (reduce) or replacing it. */
static void step_recv(run_coll_t *x, int peer_rank, int chunk, int peer_chunk, int reduce) {
  ts_rt_t *rt = x->rt;
  ts_world_t *w = rt->w;
  const rt_coll_t *c = x->c;
  assert(peer_rank >= 0 && peer_rank < c->g.n);
  int d = rt->ctx.device, from = c->g.dev[peer_rank];
  w->ops->lock(w->xd, d);
  rt_peer_t *pr = ts__rt_peer(rt, from);
  if (pr->in[PEER_COLL] <= pr->used[PEER_COLL]) {
    snprintf(rt->comm_waiting, sizeof rt->comm_waiting, "%s #%d: a step from device %d",
             ts_coll_op_name(c->op), x->id, from);
    while (!w->failed && (pr = ts__rt_peer(rt, from), pr->in[PEER_COLL] <= pr->used[PEER_COLL]))
      w->ops->wait(w->xd, x->slot);
    rt->comm_waiting[0] = 0;
    pr = ts__rt_peer(rt, from); /* the table may have grown meanwhile */
  }
  pr->used[PEER_COLL]++;
  /* Each step received is one that arrived, unless the run failed. */
  assert(w->failed || pr->used[PEER_COLL] <= pr->in[PEER_COLL]);
  w->ops->unlock(w->xd, d);
  if (w->failed) return;
  ts_coll_step_t st = {c->op, c->buf, c->unit_lo, c->unit_hi, x->id, c->vstage, from,
                       chunk, peer_chunk, c->g.n, reduce};
  if (w->ops->coll_apply) w->ops->coll_apply(w->xd, d, &st);
}

static int mod(int a, int n) { return ((a % n) + n) % n; }

/* Ring phases: reduce (reduce-scatter) or gather (all-gather). */
static void ring(run_coll_t *x, bool reduce) {
  int n = x->c->g.n, i = x->c->g.rank, next = (i + 1) % n, prev = (i + n - 1) % n;
  double part = x->c->bytes / n;
  int off = reduce ? 1 : 0;
  for (int s = 0; s < n - 1 && !x->rt->w->failed; s++) {
    int out = mod(i - s - off, n), in = mod(i - s - off - 1, n);
    step_send(x, next, out, out, part);
    step_recv(x, prev, in, in, reduce);
  }
}

static void run_one(run_coll_t *x) {
  const rt_coll_t *c = x->c;
  int n = c->g.n, i = c->g.rank;
  double part = c->bytes / n;
  switch (c->op) {
  case TS_COLL_ALLREDUCE:
    ring(x, true);
    ring(x, false);
    break;
  case TS_COLL_REDUCE_SCATTER:
    ring(x, true);
    break;
  case TS_COLL_ALLGATHER:
    ring(x, false);
    break;
  case TS_COLL_BROADCAST:
    for (int k = 0; k < n && !x->rt->w->failed; k++) {
      if (i > 0) step_recv(x, i - 1, k, k, 0);
      if (i < n - 1) step_send(x, i + 1, k, k, part);
    }
    break;
  case TS_COLL_ALLTOALL:
    /* slice j goes to member j, where it becomes slice i */
    for (int k = 1; k < n; k++) step_send(x, (i + k) % n, (i + k) % n, i, part);
    for (int k = 1; k < n && !x->rt->w->failed; k++) {
      int j = mod(i - k, n);
      step_recv(x, j, j, i, 0);
    }
    break;
  default:
    assert(0 && "collective kind checked in ts_rt_coll_start");
  }
}

/* Runs the collectives that are queued and not yet run. */
static void drain(ts_rt_t *rt, int slot) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  for (;;) {
    w->ops->lock(w->xd, d);
    if (rt->coll_next >= rt->n_colls || w->failed) {
      w->ops->unlock(w->xd, d);
      return;
    }
    int id = rt->coll_next;
    assert(id >= 0 && id < rt->n_colls);
    rt_coll_t c = rt->colls[id]; /* a copy: the program may grow the array */
    w->ops->unlock(w->xd, d);
    run_coll_t x = {rt, &c, id, slot, 0};
    double t0 = w->ops->now(w->xd);
    if (c.g.n > 1) run_one(&x);
    if (w->ops->coll_end && !w->failed) {
      ts_coll_step_t st = {c.op, c.buf, c.unit_lo, c.unit_hi, id, c.vstage, d, c.g.rank, c.g.rank,
                           c.g.n, 0};
      w->ops->coll_end(w->xd, d, &st);
    }
    ts_event_t e = {.device = d, .peer = c.g.n, .vstage = c.vstage, .mb = c.mb,
                    .kind = TS_COLLECTIVE, .seq = id,
                    .coll = TS_EV_COLL(c.op, c.purpose, c.group_kind), .start = t0,
                    .end = w->ops->now(w->xd), .bytes = x.sent};
    w->ops->lock(w->xd, d);
    ts_run_push(rt->tev, &e);
    rt->colls[id].done = true;
    rt->coll_next = id + 1;
    w->ops->notify(w->xd, d);
    w->ops->unlock(w->xd, d);
  }
}

void ts__rt_comm_main(ts_rt_t *rt) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  for (;;) {
    drain(rt, rt->comm_slot);
    w->ops->lock(w->xd, d);
    while (rt->coll_next >= rt->n_colls && !rt->finished && !w->failed)
      w->ops->wait(w->xd, rt->comm_slot);
    bool more = rt->coll_next < rt->n_colls && !w->failed;
    if (!more) rt->comm_ended = true;
    w->ops->unlock(w->xd, d);
    if (!more) return;
  }
}

/* ---- calls for schedule programs ----------------------------------------- */

int ts_rt_coll_start(ts_rt_t *rt, ts_coll_op_t op, const ts_group_t *g, int vstage,
                     ts_coll_buf_t buf, double bytes) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  if (w->failed) return -1;
  const char *name = ts_coll_op_name(op);
  if (op < 0 || op >= TS_COLL_OPS) {
    ts__rt_fail(rt, "%s %d started (stage %d)", "unknown collective kind", (int)op, vstage);
    return -1;
  }
  if (vstage < 0 || vstage >= w->lay->n_vstages || ts__rt_li(rt, vstage) < 0) {
    ts__rt_fail(rt, "%s labelled with stage %d, which is not on this device (group size %d)", name,
                vstage, g->n);
    return -1;
  }
  if (g->n < 1 || g->rank < 0 || g->rank >= g->n || g->dev[g->rank] != d) {
    ts__rt_fail(rt, "%s: this device is not the member it claims in its group (stage %d, group size %d)",
                name, vstage, g->n);
    return -1;
  }
  for (int i = 0; i < g->n; i++)
    if (g->dev[i] < 0 || g->dev[i] >= w->n) {
      ts__rt_fail(rt, "%s over device %d: no such device (stage %d)", name, g->dev[i], vstage);
      return -1;
    }
  rt_coll_t c = {.op = op, .buf = buf, .vstage = vstage, .bytes = bytes, .g = *g, .unit_lo = 0,
                 .unit_hi = -1, .purpose = TS_CP_SCHEDULE, .group_kind = TS_GROUP_KINDS, .mb = -1};
  /* Which of the plan's groups it is, for the outputs. */
  for (int k = 0; k < TS_GROUP_KINDS; k++) {
    ts_group_t pg = ts_plan_group(w->plan, (ts_group_kind_t)k, d);
    if (pg.dev == g->dev && pg.n == g->n) {
      c.group_kind = k;
      break;
    }
  }
  return ts__rt_coll_queue(rt, &c);
}

int ts__rt_coll_queue(ts_rt_t *rt, const rt_coll_t *c) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  if (rt->n_colls == rt->cap_colls) {
    rt->cap_colls = rt->cap_colls ? 2 * rt->cap_colls : 8;
    rt->colls = ts__xrealloc(rt->colls, (size_t)rt->cap_colls * sizeof *rt->colls);
  }
  int h = rt->n_colls++;
  rt->colls[h] = *c;
  rt->colls[h].done = false;
  /* The stream runs even a one-member collective, in its turn: it is done
  ** only once every collective started before it is. */
  bool spawn = rt->comm_slot == d;
  if (spawn) {
    rt->comm_slot = w->n + d;
    rt->comm_ended = false;
  } else {
    w->ops->notify(w->xd, rt->comm_slot);
  }
  w->ops->unlock(w->xd, d);
  if (spawn) w->ops->spawn_comm(w->xd, d);
  return h;
}

void ts__rt_coll_wait_at(ts_rt_t *rt, int h, int v, int mb) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  if (w->failed || h < 0) return;
  if (h >= rt->n_colls) {
    ts__rt_fail(rt, "%s of handle %d: no collective was started with it", "ts_rt_coll_wait", h, 0);
    return;
  }
  double t0 = w->ops->now(w->xd);
  w->ops->lock(w->xd, d);
  if (!rt->colls[h].done) {
    snprintf(rt->waiting, sizeof rt->waiting, "its %s #%d", ts_coll_op_name(rt->colls[h].op), h);
    while (!rt->colls[h].done && !w->failed) w->ops->wait(w->xd, d);
    rt->waiting[0] = 0;
  }
  w->ops->unlock(w->xd, d);
  double t1 = w->ops->now(w->xd);
  rt->polls = 0;
  if (t1 > t0 && !w->failed) {
    ts_event_t e = {.device = d, .peer = -1, .vstage = v, .mb = mb, .kind = TS_COMM_WAIT,
                    .seq = rt->seq, .coll = TS_EV_COLL(rt->colls[h].op, rt->colls[h].purpose,
                                                       rt->colls[h].group_kind),
                    .start = t0, .end = t1};
    ts_run_push(rt->cev, &e);
  }
}

void ts_rt_coll_wait(ts_rt_t *rt, int h) {
  if (h >= 0 && h < rt->n_colls)
    ts__rt_coll_wait_at(rt, h, rt->colls[h].vstage, rt->colls[h].mb);
  else
    ts__rt_coll_wait_at(rt, h, -1, -1);
}

void ts_rt_coll(ts_rt_t *rt, ts_coll_op_t op, const ts_group_t *g, int vstage, ts_coll_buf_t buf,
                double bytes) {
  ts_rt_coll_wait(rt, ts_rt_coll_start(rt, op, g, vstage, buf, bytes));
}

/* At the end of the program: wait for every collective it started (the
** stream runs them in order, so the last one is done after all others). */
void ts__rt_coll_finish(ts_rt_t *rt) {
  if (rt->n_colls > 0) ts_rt_coll_wait(rt, rt->n_colls - 1);
  assert(rt->w->failed || rt->coll_next == rt->n_colls);
}
