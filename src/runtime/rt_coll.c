/*
** rt_coll.c: collectives over a group of devices, owned by the runtime
** (ts_runtime.h, README "Collectives"): their communication streams and
** steps; the algorithms are in rt_coll_algo.c.
**
** What it models: NCCL-style collectives on per-device communication
** streams, one per group kind as NCCL's communicators (ts_executor.h
** TS_STREAMS: a TP collective never waits behind a data-parallel bucket).
** The program starts a collective and goes on; the collective's stream
** runs its collectives one at a time in start order, each as the steps of
** its algorithm; a step is one message to a group member (kind
** TS_SEND_COLL, tagged with the stream and the stream's step count), and a
** receive consumes the next message of that stream from that member.
** Because every member runs the same collectives of a kind in the same
** order and messages between a pair arrive in send order, the n-th
** message of a stream from a member is always the one the n-th receive of
** that stream from it expects.
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

/* ---- streams ------------------------------------------------------------ */

void ts__rt_coll_init(ts_rt_t *rt) {
  rt->streams = ts__xcalloc(TS_STREAMS, sizeof *rt->streams);
  for (int s = 0; s < TS_STREAMS; s++) rt->streams[s].ended = true;
}

void ts__rt_coll_free(ts_rt_t *rt) {
  for (int s = 0; rt->streams && s < TS_STREAMS; s++) {
    free(rt->streams[s].q);
  }
  free(rt->streams);
  rt->streams = NULL;
  ts__rt_coll_shapes_free(rt);
  free(rt->colls);
  rt->colls = NULL;
}

void ts__rt_coll_arrived(ts_rt_t *rt, int s, int from) {
  assert(s >= 0 && s < TS_STREAMS);
  ts__rt_peer(rt, from)->in[PEER_COLL + s]++; /* under the device lock */
  rt->w->ops->notify(rt->w->xd, ts__stream_slot(rt->w->n, rt->ctx.device, s));
}

void ts__rt_coll_wake(ts_rt_t *rt) {
  for (int s = 0; s < TS_STREAMS; s++)
    if (rt->streams[s].spawned)
      rt->w->ops->notify(rt->w->xd, ts__stream_slot(rt->w->n, rt->ctx.device, s));
}

bool ts__rt_coll_stuck(const ts_rt_t *rt, char *waiting, size_t cap) {
  bool stuck = false;
  const rt_wait_t *wt = NULL;
  for (int s = 0; s < TS_STREAMS; s++) {
    const rt_stream_t *st = &rt->streams[s];
    if (!st->spawned || st->ended) continue;
    if (!stuck || ((!wt || wt->kind == RT_W_NONE) && st->waiting.kind != RT_W_NONE)) wt = &st->waiting;
    stuck = true;
  }
  /* A stream that returned may still say what it last waited for. */
  for (int s = 0; (!wt || wt->kind == RT_W_NONE) && s < TS_STREAMS; s++)
    if (rt->streams[s].waiting.kind != RT_W_NONE) wt = &rt->streams[s].waiting;
  if (wt) ts__rt_wait_text(wt, waiting, cap);
  else if (cap) waiting[0] = 0;
  return stuck;
}

/* ---- steps (on the stream's context) ------------------------------------ */

void ts__rt_step_send(rt_run_coll_t *x, int peer_rank, int chunk, int peer_chunk, int n_chunks,
                      double bytes) {
  ts_rt_t *rt = x->rt;
  ts_world_t *w = rt->w;
  const rt_coll_t *c = x->c;
  int d = rt->ctx.device;
  assert(peer_rank >= 0 && peer_rank < c->g.n);
  ts_coll_step_t st = {c->op, c->buf, c->unit_lo, c->unit_hi, x->id, c->vstage, c->g.dev[peer_rank],
                       chunk, peer_chunk, n_chunks, 0, x->stream};
  if (w->ops->coll_pack) w->ops->coll_pack(w->xd, d, &st);
  x->sent += bytes;
  /* seq is the stream's own: only its context sends on it. */
  long seq = rt->streams[x->stream].seq++;
  w->ops->send(w->xd, d, st.peer, TS_SEND_COLL, c->vstage, ts__rt_coll_tag(seq, x->stream), bytes);
}

void ts__rt_step_recv(rt_run_coll_t *x, int peer_rank, int chunk, int peer_chunk, int n_chunks,
                      int reduce) {
  ts_rt_t *rt = x->rt;
  ts_world_t *w = rt->w;
  const rt_coll_t *c = x->c;
  assert(peer_rank >= 0 && peer_rank < c->g.n);
  int d = rt->ctx.device, from = c->g.dev[peer_rank];
  w->ops->lock(w->xd, d);
  rt_peer_t *pr = ts__rt_peer(rt, from);
  rt_stream_t *sm = &rt->streams[x->stream];
  int k = PEER_COLL + x->stream;
  if (pr->in[k] <= pr->used[k]) {
    ts__rt_wait_set(&sm->waiting, RT_W_STEP, ts_coll_op_name(c->op), x->id, from, 0);
    while (!w->failed && (pr = ts__rt_peer(rt, from), pr->in[k] <= pr->used[k]))
      w->ops->wait(w->xd, x->slot);
    sm->waiting.kind = RT_W_NONE;
    pr = ts__rt_peer(rt, from); /* the table may have grown meanwhile */
  }
  pr->used[k]++;
  /* Each step received is one that arrived, unless the run failed. */
  assert(w->failed || pr->used[k] <= pr->in[k]);
  w->ops->unlock(w->xd, d);
  if (w->failed) return;
  ts_coll_step_t st = {c->op, c->buf, c->unit_lo, c->unit_hi, x->id, c->vstage, from,
                       chunk, peer_chunk, n_chunks, reduce, x->stream};
  if (w->ops->coll_apply) w->ops->coll_apply(w->xd, d, &st);
}

/* Merged ring phases, for executors without data that can send them
** (ts_exec_ops_t.send_steps): the ring phase's m - 1 steps go to rank next
** as one message of their bytes, arriving m - 2 route latencies later than
** one transfer would, and one receive from rank prev stands for theirs.
** (1) Symmetry folding (ts__world_fold): when every member of the ring over
** the m group ranks r[0 .. m-1] (NULL: 0 .. m-1) folds onto this device.
** (2) Rings of TS_RING_MERGE_MIN members or more: every member sends its
** phase as one flow, as NCCL pipelines a ring's chunks; on links no other
** flow shares the time is the steps' exactly ((m - 1) (L + part / B)), and
** the m flows share links as the steps' flows did, while the engine
** handles m flows instead of m (m - 1).  phases 2: a ring all-reduce's
** reduce-scatter and all-gather as one message of their 2 (m - 1) steps
** (the all-gather follows the reduce-scatter with nothing between them, as
** NCCL's ring all-reduce is one pipeline).  Returns true when it did that;
** false leaves the phase to the caller's steps. */
bool ts__rt_ring_merged(rt_run_coll_t *x, const int *r, int m, int next, int prev, int n_chunks,
                        double part, bool reduce, int phases) {
  ts_rt_t *rt = x->rt;
  ts_world_t *w = rt->w;
  const rt_coll_t *c = x->c;
  int d = rt->ctx.device;
  if (!w->ops->send_steps || w->ops->coll_pack || m < 3) return false;
  bool folded = w->fold != NULL;
  for (int k = 0; k < m && folded; k++) folded = w->fold[c->g.dev[r ? r[k] : k]] == d;
  if (!folded && m < TS_RING_MERGE_MIN) return false;
  assert(phases == 1 || phases == 2);
  int steps = phases * (m - 1);
  x->sent += part * steps;
  long seq = rt->streams[x->stream].seq;
  rt->streams[x->stream].seq += steps;
  w->ops->send_steps(w->xd, d, c->g.dev[next], TS_SEND_COLL, c->vstage, ts__rt_coll_tag(seq, x->stream),
                     part * steps, steps);
  ts__rt_step_recv(x, prev, 0, 0, n_chunks, reduce);
  return true;
}

/* Runs the collectives queued on stream s and not yet run. */
static void drain(ts_rt_t *rt, int s, int slot) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  rt_stream_t *sm = &rt->streams[s];
  for (;;) {
    w->ops->lock(w->xd, d);
    if (sm->next >= sm->n || w->failed) {
      w->ops->unlock(w->xd, d);
      return;
    }
    int id = sm->q[sm->next];
    assert(id >= 0 && id < rt->n_colls);
    rt_coll_t c = rt->colls[id]; /* a copy: the program may grow the array */
    w->ops->unlock(w->xd, d);
    rt_run_coll_t x = {rt, &c, id, s, slot, 0};
    double t0 = w->ops->now(w->xd);
    if (c.g.n > 1) ts__rt_coll_run_alg(&x);
    if (w->ops->coll_end && !w->failed) {
      ts_coll_step_t st = {c.op, c.buf, c.unit_lo, c.unit_hi, id, c.vstage, d, c.shard, c.shard,
                           c.g.n, 0, s};
      w->ops->coll_end(w->xd, d, &st);
    }
    ts_event_t e = {.device = d, .peer = c.g.n, .vstage = c.vstage, .mb = c.mb,
                    .kind = TS_COLLECTIVE, .seq = id,
                    .coll = TS_EV_COLL(c.op, c.purpose, c.group_kind), .start = t0,
                    .end = w->ops->now(w->xd), .bytes = x.sent};
    w->ops->lock(w->xd, d);
    ts_run_push(rt->tev, &e);
    rt->colls[id].done = true;
    sm->next++;
    w->ops->notify(w->xd, d);
    w->ops->unlock(w->xd, d);
  }
}

void ts__rt_comm_main(ts_rt_t *rt, int s) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device, slot = ts__stream_slot(w->n, d, s);
  rt_stream_t *sm = &rt->streams[s];
  for (;;) {
    drain(rt, s, slot);
    w->ops->lock(w->xd, d);
    while (sm->next >= sm->n && !rt->finished && !w->failed) w->ops->wait(w->xd, slot);
    bool more = sm->next < sm->n && !w->failed;
    if (!more) sm->ended = true;
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
  int s = c->group_kind >= 0 && c->group_kind < TS_STREAMS ? c->group_kind : TS_STREAMS - 1;
  rt_coll_t cc = *c;
  cc.alg = ts__rt_coll_pick(rt, &cc);
  cc.shard = c->op == TS_COLL_REDUCE_SCATTER ? ts__rt_coll_shard(rt, &c->g) : c->g.rank;
  cc.done = false;
  w->ops->lock(w->xd, d);
  if (rt->n_colls == rt->cap_colls) {
    rt->cap_colls = rt->cap_colls ? 2 * rt->cap_colls : 8;
    rt->colls = ts__xrealloc(rt->colls, (size_t)rt->cap_colls * sizeof *rt->colls);
  }
  int h = rt->n_colls++;
  rt->colls[h] = cc;
  rt_stream_t *sm = &rt->streams[s];
  if (sm->n == sm->cap) {
    sm->cap = sm->cap ? 2 * sm->cap : 8;
    sm->q = ts__xrealloc(sm->q, (size_t)sm->cap * sizeof *sm->q);
  }
  sm->q[sm->n++] = h;
  /* The stream runs even a one-member collective, in its turn: it is done
  ** only once every collective started before it on its stream is. */
  bool spawn = !sm->spawned;
  if (spawn) {
    sm->spawned = true;
    sm->ended = false;
  } else {
    w->ops->notify(w->xd, ts__stream_slot(w->n, d, s));
  }
  w->ops->unlock(w->xd, d);
  if (spawn) w->ops->spawn_comm(w->xd, d, s);
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
    ts__rt_wait_set(&rt->waiting, RT_W_COLL, ts_coll_op_name(rt->colls[h].op), h, 0, 0);
    while (!rt->colls[h].done && !w->failed) w->ops->wait(w->xd, d);
    rt->waiting.kind = RT_W_NONE;
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

void ts__rt_coll_wait_all(ts_rt_t *rt, int v, int mb) {
  /* Each stream's last collective is done after all others of it. */
  for (int s = 0; s < TS_STREAMS; s++) {
    const rt_stream_t *sm = &rt->streams[s];
    if (sm->n > 0) ts__rt_coll_wait_at(rt, sm->q[sm->n - 1], v, mb);
  }
}

/* At the end of the program: wait for every collective it started. */
void ts__rt_coll_finish(ts_rt_t *rt) {
  for (int s = 0; s < TS_STREAMS; s++) {
    const rt_stream_t *sm = &rt->streams[s];
    if (sm->n > 0) ts_rt_coll_wait(rt, sm->q[sm->n - 1]);
    assert(rt->w->failed || sm->next == sm->n);
  }
}
