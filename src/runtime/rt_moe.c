/*
** rt_moe.c: mixture-of-experts ops (schedule gshard): a forward or backward
** run in pieces (dense segments and the experts of each MoE layer) with
** the dispatch and combine all-to-alls among the stage's expert-parallel
** devices between them.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "rt_internal.h"
#include "ts_moe.h"

/* ---- mixture of experts ------------------------------------------------- */

int ts_rt_moe_layers(ts_rt_t *rt, int v) {
  const ts_moe_cost_t *mc = rt->w->cost->moe;
  if (!mc || v < 0 || v >= rt->w->lay->n_vstages) return 0;
  return mc->part_count[rt->w->lay->part[v]];
}

/* Checks that (kind, v, mb) is the MoE op in progress, or starts it. */
static bool moe_op(ts_rt_t *rt, const char *what, ts_kind_t kind, int v, int mb, long *c) {
  if (kind != TS_FORWARD && kind != TS_BACKWARD) {
    ts__rt_fail(rt, "%s with a kind other than forward or backward (stage %d, micro-batch %d)", what, v,
         mb);
    return false;
  }
  if ((*c = ts__rt_cell(rt, what, v, mb)) < 0) return false;
  if (rt->moe_kind >= 0 && (rt->moe_kind != (int)kind || rt->moe_v != v || rt->moe_mb != mb)) {
    ts__rt_fail(rt, "%s of stage %d micro-batch %d inside another MoE op", what, v, mb);
    return false;
  }
  return true;
}

void ts_rt_moe_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int piece) {
  ts_world_t *w = rt->w;
  long c;
  if (w->failed || !moe_op(rt, "MoE compute", kind, v, mb, &c)) return;
  int n = ts_rt_moe_layers(rt, v), last = 2 * n;
  int want = kind == TS_FORWARD ? rt->moe_pieces : last - rt->moe_pieces;
  if (rt->moe_kind < 0) {
    if (!ts__rt_may_run(rt, kind, v, mb, c)) return;
    want = kind == TS_FORWARD ? 0 : last;
  }
  if (piece != want || (rt->moe_kind >= 0 && rt->moe_a2a != rt->moe_pieces)) {
    ts__rt_fail(rt, "MoE %s of stage %d micro-batch %d: a piece out of order", ts_kind_name(kind), v, mb);
    (void)piece;
    return;
  }
  const ts_moe_cost_t *mc = w->cost->moe;
  int part = w->lay->part[v];
  double flops = 0;
  if (!mc) {
    flops = w->cost->part[part].flops[kind];
  } else if (piece % 2 == 0) {
    flops = mc->seg_flops[mc->part_first[part] + part + piece / 2];
  } else {
    int j = mc->part_first[part] + piece / 2, me = ts_rt_group(rt, TS_GROUP_EP).rank;
    long tok = 0;
    for (int r = 0; r < mc->lanes; r++) tok += ts_moe_tokens(mc, j, mb, r, me);
    flops = (double)tok * mc->expert_flops;
  }
  if (mc && kind == TS_BACKWARD) flops *= 2;
  bool first = rt->moe_kind < 0, lastp = kind == TS_FORWARD ? piece == last : piece == 0;
  double t0 = w->ops->now(w->xd);
  if (w->ops->moe_compute)
    w->ops->moe_compute(w->xd, rt->ctx.device, kind, v, mb, piece, flops,
                        w->cost->part[part].seconds[kind]);
  else
    w->ops->compute(w->xd, rt->ctx.device, kind, v, mb, flops, w->cost->part[part].seconds[kind]);
  double t1 = w->ops->now(w->xd);
  rt->polls = 0;
  ts__rt_push_compute(rt, kind, v, mb,
               (first ? 0 : TS_EVF_CONT) | (lastp ? 0 : TS_EVF_MORE) |
                   (piece % 2 ? TS_EVF_EXPERT : 0),
               t0, t1);
  if (lastp) {
    rt->done[kind][c] = 1;
    rt->moe_kind = -1;
    if (kind == TS_BACKWARD) ts__rt_dp_grads_done(rt, v);
    return;
  }
  if (first) {
    rt->moe_kind = kind;
    rt->moe_v = v;
    rt->moe_mb = mb;
    rt->moe_pieces = rt->moe_a2a = 0;
  }
  rt->moe_pieces++;
}

void ts_rt_moe_alltoall(ts_rt_t *rt, ts_kind_t kind, ts_kind_t which, int v, int mb) {
  ts_world_t *w = rt->w;
  long c;
  if (w->failed || !moe_op(rt, "MoE all-to-all", kind, v, mb, &c)) return;
  int a = rt->moe_a2a;
  /* forward: dispatch, combine, ...; backward: combine, dispatch, ... */
  ts_kind_t next = (a % 2 == 0) == (kind == TS_FORWARD) ? TS_SEND_DISPATCH : TS_SEND_COMBINE;
  if (rt->moe_kind < 0 || a + 1 != rt->moe_pieces || which != next) {
    ts__rt_fail(rt, "MoE all-to-all %s of stage %d micro-batch %d out of order", ts_kind_name(which), v,
         mb);
    return;
  }
  rt->moe_a2a++;
  const ts_moe_cost_t *mc = w->cost->moe;
  if (!mc) return;
  ts_group_t ep = ts_rt_group(rt, TS_GROUP_EP);
  int L = mc->lanes, me = ep.rank, d = rt->ctx.device, k = which == TS_SEND_COMBINE;
  assert(ep.n == L);
  int j = mc->part_first[w->lay->part[v]] +
          (kind == TS_FORWARD ? a / 2 : ts_rt_moe_layers(rt, v) - 1 - a / 2);
  /* Own tokens go out in the forward dispatch and the combine's gradient. */
  bool out = (which == TS_SEND_DISPATCH) == (kind == TS_FORWARD);
  ts_a2a_msg_t msg = {.op = kind, .which = which, .vstage = v, .mb = mb,
                      .layer = kind == TS_FORWARD ? a / 2 : ts_rt_moe_layers(rt, v) - 1 - a / 2,
                      .lane = me};
  double t0 = w->ops->now(w->xd);
  for (int i = 1; i < L; i++) {
    int q = (me + i) % L;
    int tok = out ? ts_moe_rows(mc, j, mb, me, q) : ts_moe_rows(mc, j, mb, q, me);
    if (w->ops->a2a_pack) {
      msg.peer = ep.dev[q];
      msg.peer_lane = q;
      w->ops->a2a_pack(w->xd, d, &msg);
    }
    w->ops->send(w->xd, d, ep.dev[q], which, v, mb, tok * mc->token_bytes);
  }
  w->ops->lock(w->xd, d);
  for (int i = 1; i < L && !w->failed; i++) {
    int p = ep.dev[(me + L - i) % L];
    int pk = k ? PEER_COMBINE : PEER_DISPATCH;
    rt_peer_t *pr = ts__rt_peer(rt, p);
    if (pr->in[pk] <= pr->used[pk]) {
      ts__rt_wait_set(&rt->waiting, RT_W_MOE, ts_kind_name(which), v, mb, p);
      while (!w->failed && (pr = ts__rt_peer(rt, p), pr->in[pk] <= pr->used[pk])) w->ops->wait(w->xd, d);
      rt->waiting.kind = RT_W_NONE;
      pr = ts__rt_peer(rt, p); /* the table may have grown meanwhile */
    }
    pr->used[pk]++;
  }
  double t1 = w->ops->now(w->xd);
  ts_event_t e = {.device = d, .peer = d, .vstage = v, .mb = mb, .kind = which,
                  .seq = ++rt->a2a_calls, .iteration = mb / rt->ctx.microbatches,
                  .flags = TS_EVF_A2A_CALL | (kind == TS_BACKWARD ? TS_EVF_A2A_BWD : 0),
                  .start = t0, .end = t1};
  ts_run_push(rt->tev, &e);
  w->ops->unlock(w->xd, d);
  rt->polls = 0;
  /* The payloads, in the order the messages were consumed. */
  for (int i = 1; i < L && w->ops->a2a_apply && !w->failed; i++) {
    msg.peer_lane = (me + L - i) % L;
    msg.peer = ep.dev[msg.peer_lane];
    w->ops->a2a_apply(w->xd, d, &msg);
  }
}

