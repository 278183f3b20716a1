/*
** rt_coll.c: collectives over a group of devices, owned by the runtime.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "rt_internal.h"
#include "ts_moe.h"

void ts_rt_allreduce(ts_rt_t *rt, int vstage, int n, const int *devs, double bytes) {
  ts_world_t *w = rt->w;
  int d = rt->ctx.device, me = -1;
  if (w->failed || n <= 1) return;
  if (vstage < 0 || vstage >= w->lay->n_vstages || rt->local_idx[vstage] < 0) {
    ts__rt_fail(rt, "%s labelled with stage %d, which is not on this device (group size %d)", "allreduce",
         vstage, n);
    return;
  }
  for (int i = 0; i < n; i++) {
    if (devs[i] < 0 || devs[i] >= w->n) {
      ts__rt_fail(rt, "%s over device %d: no such device (stage %d)", "allreduce", devs[i], vstage);
      return;
    }
    if (devs[i] == d) me = i;
  }
  if (me < 0) {
    ts__rt_fail(rt, "%s: this device is not in the group (stage %d, group size %d)", "allreduce", vstage, n);
    return;
  }
  int next = devs[(me + 1) % n], prev = devs[(me + n - 1) % n];
  /* Reduce-scatter then all-gather: 2 (n - 1) steps of bytes / n. */
  for (int step = 0; step < 2 * (n - 1) && !w->failed; step++) {
    w->ops->send(w->xd, d, next, TS_SEND_COLL, vstage, (int)rt->coll_seq++, bytes / n);
    w->ops->lock(w->xd, d);
    if (rt->coll_in[prev] <= rt->coll_used[prev]) {
      snprintf(rt->waiting, sizeof rt->waiting, "all-reduce step %d from device %d", step, prev);
      while (rt->coll_in[prev] <= rt->coll_used[prev] && !w->failed) w->ops->wait(w->xd, d);
      rt->waiting[0] = 0;
    }
    rt->coll_used[prev]++;
    w->ops->unlock(w->xd, d);
  }
}


ts_group_t ts_rt_group(ts_rt_t *rt, ts_group_kind_t k) {
  return ts_plan_group(rt->w->plan, k, rt->ctx.device);
}
