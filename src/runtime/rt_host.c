/*
** rt_host.c: host memory for schedules whose weights live there (Mobius):
** per-device copy engines (one per direction, copies in request order),
** the device-memory ledger (activations, fetched weights, gradient
** buffers) with room waits, reservations, eviction and write-back.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "rt_internal.h"
#include "ts_moe.h"

/* ---- host memory ------------------------------------------------------- */

static void host_pump(ts_rt_t *rt);

static void host_block(ts_rt_t *rt, int li, bool (*cond)(ts_rt_t *, int), const char *what,
                       double need);
static void host_event(ts_rt_t *rt, ts_kind_t kind, int v, int flags, double t0, double t1,
                       double bytes);

static int host_local(ts_rt_t *rt, const char *what, int v);

static bool op_fits(ts_rt_t *rt, int li) {
  (void)li;
  rt_host_t *h = rt->host;
  return h->cap <= 0 || h->used + h->want <= h->cap * (1 + 1e-12);
}

/* Waits (a room_wait event labelled with stage v) until bytes more fit in
** the device's ledger; what names the wait in a deadlock report.  Returns
** non-zero when the run failed meanwhile. */
static int room_for(ts_rt_t *rt, int v, double bytes, const char *what) {
  ts_world_t *w = rt->w;
  rt->host->want = bytes;
  if (op_fits(rt, -1)) return 0;
  double t0 = w->ops->now(w->xd);
  host_block(rt, -1, op_fits, what, bytes);
  if (w->failed) return 1;
  host_event(rt, TS_ROOM_WAIT, v, 0, t0, w->ops->now(w->xd), bytes);
  return 0;
}

/* Activation bytes one op of kind on v allocates (README "Memory"): a
** forward its stash (only its input under full recompute, unless the
** program keeps v's activations), a recompute its rec_bytes (the op
** transients of the metrics are not reserved). */
static double alloc_bytes(ts_rt_t *rt, ts_kind_t kind, int v) {
  const ts_part_cost_t *pc = &rt->w->cost->part[rt->w->lay->part[v]];
  bool full = rt->ctx.recompute == TS_RECOMPUTE_FULL;
  if (kind == TS_FORWARD) return full && !ts__rt_keeps(rt, v) ? pc->act_input_bytes : pc->act_bytes;
  return kind == TS_RECOMPUTE ? pc->rec_bytes : 0;
}

/* Before a forward or recompute: allocates its activation bytes in the
** device ledger, at the op's start as ts_metrics.c counts them, waiting
** (a room_wait event) until they fit.  A wait that nothing can end (no
** copy in flight or queued would free memory) is reported as a deadlock. */
void ts__rt_host_alloc(ts_rt_t *rt, ts_kind_t kind, int v, int mb, long c) {
  rt_host_t *h = rt->host;
  double a = alloc_bytes(rt, kind, v);
  if (!(a > 0)) return;
  int li = ts__rt_li(rt, v);
  assert(li >= 0 && c >= 0); /* c is ts__rt_cell(v, mb) */
  if (h->resv_used[li] + a <= h->resv[li] * (1 + 1e-12)) { /* reserved already */
    h->resv_used[li] += a;
  } else {
    char what[96];
    snprintf(what, sizeof what, "room for the activations of the %s of stage %d micro-batch %d",
             ts_kind_name(kind), v, mb);
    if (room_for(rt, v, a, what)) return;
    h->used += a;
  }
  h->held[c] += a;
}

/* After a backward (or a split one's weight-gradient half): frees the
** micro-batch's activations, which may let a queued fetch start. */
void ts__rt_host_free(ts_rt_t *rt, ts_kind_t kind, int v, long c) {
  rt_host_t *h = rt->host;
  if (kind != TS_BACKWARD && kind != TS_WEIGHT_GRAD) return;
  /* Bytes of a reserved stage go back to its reservation first. */
  int li = ts__rt_li(rt, v);
  assert(li >= 0 && c >= 0 && h->held[c] >= 0);
  double back = h->held[c] < h->resv_used[li] ? h->held[c] : h->resv_used[li];
  h->resv_used[li] -= back;
  assert(h->resv_used[li] >= 0); /* a reservation never gives back more than it lent */
  h->used -= h->held[c] - back;
  h->held[c] = 0;
  host_pump(rt);
}

/* Ends vstage's reservation: its unused part is freed, its used part stays
** with the stashes that hold it. */
static void host_unreserve(ts_rt_t *rt, int li) {
  rt_host_t *h = rt->host;
  assert(li >= 0 && h->resv_used[li] <= h->resv[li] * (1 + 1e-12));
  h->used -= h->resv[li] - h->resv_used[li];
  h->resv[li] = h->resv_used[li] = 0;
}

void ts_rt_reserve(ts_rt_t *rt, int v, ts_kind_t kind, int count) {
  int li = host_local(rt, "reserve", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  if ((kind != TS_FORWARD && kind != TS_RECOMPUTE) || count < 0) {
    ts__rt_fail(rt, "reserve for %s of stage %d (%d ops): only forwards and recomputes allocate", ts_kind_name(kind),
         v, count);
    return;
  }
  /* Without full recompute no recompute runs: nothing to reserve. */
  if (kind == TS_RECOMPUTE && rt->ctx.recompute != TS_RECOMPUTE_FULL) return;
  double r = alloc_bytes(rt, kind, v) * count;
  if (!(r > 0)) return;
  char what[96];
  snprintf(what, sizeof what, "room to reserve the activations of %d %s ops of stage %d", count,
           ts_kind_name(kind), v);
  if (room_for(rt, v, r, what)) return;
  h->resv[li] += r;
  h->used += r;
}

/* Bytes a fetch of local stage li reserves. */
static double fetch_bytes(ts_rt_t *rt, int li) {
  const ts_part_cost_t *pc = &rt->w->cost->part[rt->w->lay->part[rt->ctx.local[li]]];
  return pc->weights_bytes + (rt->host->fgrads[li] ? pc->gradients_bytes : 0);
}

static void host_event(ts_rt_t *rt, ts_kind_t kind, int v, int flags, double t0, double t1,
                       double bytes) {
  ts_world_t *w = rt->w;
  ts_event_t e = {.device = rt->ctx.device, .peer = -1, .vstage = v, .mb = 0, .kind = kind,
                  .seq = 0, .iteration = 0, .flags = flags, .start = t0, .end = t1,
                  .bytes = bytes};
  w->ops->lock(w->xd, rt->ctx.device);
  ts_run_push(rt->tev, &e);
  w->ops->unlock(w->xd, rt->ctx.device);
}

/* Starts the copies at the heads of the queues when their engine is free
** and (fetches) their bytes fit.  Not re-entrant: a completion that arrives
** while pumping (the reference executor copies synchronously) asks for
** another round instead. */
static void host_pump(ts_rt_t *rt) {
  rt_host_t *h = rt->host;
  ts_world_t *w = rt->w;
  if (h->pumping) {
    h->again = 1;
    return;
  }
  h->pumping = 1;
  do {
    h->again = 0;
    for (int dir = 0; dir < 2 && !w->failed; dir++) {
      if (h->busy[dir] || h->qhead[dir] == h->qtail[dir]) continue;
      int li = h->q[dir][h->qhead[dir] % rt->ctx.n_local], v = rt->ctx.local[li];
      const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
      double bytes = dir ? pc->weights_bytes : pc->gradients_bytes;
      double t = w->ops->now(w->xd);
      if (dir) {
        double need = fetch_bytes(rt, li);
        if (h->cap > 0 && h->used + need > h->cap * (1 + 1e-12)) continue; /* no room yet */
        double ready = h->req_t[li] > h->free_t[dir] ? h->req_t[li] : h->free_t[dir];
        if (t > ready) host_event(rt, TS_ROOM_WAIT, v, 0, ready, t, need);
        h->used += need;
        h->w[li] = W_COPYING;
        if (h->fgrads[li]) h->g[li] = G_RESERVED;
      } else {
        h->g[li] = G_OFFLOADING;
      }
      h->qhead[dir]++;
      h->busy[dir] = 1;
      w->ops->host_copy(w->xd, rt->ctx.device, dir, v, bytes);
    }
  } while (h->again);
  h->pumping = 0;
}

void ts__rt_host_done(ts_rt_t *rt, int h2d, int v, double t0, double t1) {
  rt_host_t *h = rt->host;
  ts_world_t *w = rt->w;
  int li = ts__rt_li(rt, v);
  const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
  if (h2d) {
    h->w[li] = W_RESIDENT;
    host_event(rt, TS_FETCH, v, h->fgrads[li] ? TS_EVF_GRADS : 0, t0, t1, pc->weights_bytes);
  } else {
    h->g[li] = G_WRITTEN;
    h->used -= pc->gradients_bytes;
    host_event(rt, TS_OFFLOAD, v, 0, t0, t1, pc->gradients_bytes);
  }
  h->busy[h2d] = 0;
  h->free_t[h2d] = t1;
  host_pump(rt);
  w->ops->lock(w->xd, rt->ctx.device);
  rt->n_arrivals++;
  w->ops->notify(w->xd, rt->ctx.device);
  w->ops->unlock(w->xd, rt->ctx.device);
}

/* The local index of v for a host call, or -1 after failing. */
static int host_local(ts_rt_t *rt, const char *what, int v) {
  if (rt->w->failed) return -1;
  if (!rt->host) {
    ts__rt_fail(rt, "%s of stage %d (micro-batch %d): this schedule does not keep weights in host memory",
         what, v, 0);
    return -1;
  }
  if (ts__rt_cell(rt, what, v, rt->w->lay->mb_hi[v] >= 0 ? rt->w->lay->mb_lo[v] : 0) < 0) return -1;
  return ts__rt_li(rt, v);
}

void ts_rt_fetch(ts_rt_t *rt, int v, int with_grads) {
  int li = host_local(rt, "fetch", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  if (h->w[li] != W_HOST) {
    ts__rt_fail(rt, "%s of stage %d (micro-batch %d): its weights are already fetched or on their way",
         "fetch", v, 0);
    return;
  }
  if (with_grads && h->g[li] != G_NONE) {
    ts__rt_fail(rt, "%s of stage %d (micro-batch %d) with gradients: its gradient buffer exists already",
         "fetch", v, 0);
    return;
  }
  h->w[li] = W_QUEUED;
  h->fgrads[li] = with_grads != 0;
  h->req_t[li] = rt->w->ops->now(rt->w->xd);
  h->q[1][h->qtail[1]++ % rt->ctx.n_local] = li; /* a stage is queued once at most */
  host_pump(rt);
}

/* Blocks until cond(rt, li) holds; what names it for deadlock reports and
** need (> 0) is the room it waits for, reported with the ledger as it
** stands when the run ends. */
static void host_block(ts_rt_t *rt, int li, bool (*cond)(ts_rt_t *, int), const char *what,
                       double need) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device;
  w->ops->lock(w->xd, d);
  if (!cond(rt, li)) {
    rt->waiting.kind = RT_W_TEXT;
    snprintf(rt->waiting.text, sizeof rt->waiting.text, "%s", what);
    rt->host->blocked_need = need;
    while (!cond(rt, li) && !w->failed) w->ops->wait(w->xd, d);
    rt->host->blocked_need = 0;
    rt->waiting.kind = RT_W_NONE;
  }
  w->ops->unlock(w->xd, d);
}

static bool is_resident(ts_rt_t *rt, int li) { return rt->host->w[li] == W_RESIDENT; }
bool ts__rt_copies_done(ts_rt_t *rt, int li) {
  (void)li;
  rt_host_t *h = rt->host;
  return !h->busy[0] && !h->busy[1] && h->qhead[0] == h->qtail[0] && h->qhead[1] == h->qtail[1];
}

void ts_rt_fetch_wait(ts_rt_t *rt, int v) {
  int li = host_local(rt, "fetch_wait", v);
  if (li < 0) return;
  if (rt->host->w[li] == W_HOST) {
    ts__rt_fail(rt, "%s of stage %d (micro-batch %d): no fetch was queued", "fetch_wait", v, 0);
    return;
  }
  char what[64];
  snprintf(what, sizeof what, "the weights of stage %d", v);
  host_block(rt, li, is_resident, what,
             rt->host->w[li] == W_QUEUED && rt->host->cap > 0 ? fetch_bytes(rt, li) : 0);
  rt->polls = 0;
}

void ts_rt_evict(ts_rt_t *rt, int v) {
  int li = host_local(rt, "evict", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  ts_world_t *w = rt->w;
  if (h->w[li] != W_RESIDENT) {
    ts__rt_fail(rt, "%s of stage %d (micro-batch %d): its weights are not on the device", "evict", v, 0);
    return;
  }
  const ts_part_cost_t *pc = &w->cost->part[w->lay->part[v]];
  h->w[li] = W_HOST;
  h->used -= pc->weights_bytes;
  host_unreserve(rt, li);
  double t = w->ops->now(w->xd);
  if (w->ops->host_evict) w->ops->host_evict(w->xd, rt->ctx.device, v);
  host_event(rt, TS_EVICT, v, 0, t, t, pc->weights_bytes);
  host_pump(rt);
}

void ts_rt_offload(ts_rt_t *rt, int v) {
  int li = host_local(rt, "offload", v);
  if (li < 0) return;
  rt_host_t *h = rt->host;
  if (h->g[li] != G_RESERVED) {
    ts__rt_fail(rt, "%s of stage %d (micro-batch %d): it has no gradient buffer on the device", "offload",
         v, 0);
    return;
  }
  h->g[li] = G_OFFLOADING;
  h->q[0][h->qtail[0]++ % rt->ctx.n_local] = li;
  host_pump(rt);
}

void ts_rt_host_wait(ts_rt_t *rt) {
  if (rt->w->failed || !rt->host) return;
  host_block(rt, -1, ts__rt_copies_done, "its copies to and from host memory", 0);
}

