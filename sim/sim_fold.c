/*
** sim_fold.c: symmetry folding in the SimGrid executor (README "Symmetry
** folding", src/plan/ts_fold.h).
**
** When the plan folds (tensor-parallel ranks and data-parallel replicas)
** and the platform has the same symmetry, only each class's
** representative (tp = 0, dp = 0) runs as an actor, with its whole program:
** schedule ops, TP pieces, DP buckets, optimizer step.  A message it sends
** to a folded device q travels over the real route to q's host; by
** symmetry it stands for the message that q's image (the shift taking q to
** the representative, ts_fold_image) sends to the representative, so it is
** delivered to the representative as coming from that image.  Every step
** of a collective over a folded group therefore ends when the
** representative's own flow ends, as it does for every member.
**
** The platform must be symmetric: every device's host has its
** representative's speed and properties, and each route the representative
** sends on (to the members of its groups and to its pipeline neighbours;
** the routes back are those of the peers' classes) has, for every member
** of its class (where SimGrid must be asked, for those whose tp and dp
** coordinates are each 0, 1 or the last: a sample), an image route with the
** same links' latencies, bandwidths and sharing in order.  Otherwise the run is
** exact, and one line on stderr says why.  Not modelled: contention between
** a representative's flows and the unsimulated flows of folded devices on
** links they share (e.g. a folded device's pipeline message into the host
** a representative's ring step goes to).
**
** After the run, transfer events are turned into the representative's own
** sends, and link traffic is expanded over the classes.
*/
#include <stdlib.h>
#include <string.h>

#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <xbt/dynar.h>

#include "sim_internal.h"
#include "ts_fold.h"
#include "ts_internal.h"

int ts_sim_fold = 0;
char ts__sim_fold_note[1024];

/* Same speed and properties. */
static bool same_host(const sim_dev_t *a, const sim_dev_t *b) {
  return sg_host_get_speed(a->host) * a->factor == sg_host_get_speed(b->host) * b->factor &&
         a->memory == b->memory && a->mem_bw == b->mem_bw && a->peak == b->peak &&
         a->curve == b->curve;
}

/* Routes a -> b and c -> d have the same links' figures in order. */
static bool same_route(sim_routes_t *rt, sg_host_t a, sg_host_t b, sg_host_t c, sg_host_t d) {
  if ((a == b) != (c == d)) return false;
  if (a == b) return true;
  int n1, n2;
  ts__sim_route(rt, a, b, &n1); /* both cached first: a new look-up may move the arrays */
  const sg_link_t *r2 = ts__sim_route(rt, c, d, &n2);
  const sg_link_t *r1 = ts__sim_route(rt, a, b, &n1);
  if (n1 != n2) return false;
  for (int i = 0; i < n1; i++) {
    sg_link_t l1 = r1[i], l2 = r2[i];
    if (sg_link_get_latency(l1) != sg_link_get_latency(l2) ||
        sg_link_get_bandwidth(l1) != sg_link_get_bandwidth(l2) ||
        sg_link_is_shared(l1) != sg_link_is_shared(l2))
      return false;
  }
  return true;
}

/* The devices representative r talks to: its groups' members and its
** pipeline neighbours; *n their count (with repeats).  Malloc'd. */
static int *peers_of(const ts_plan_t *p, int r, int *n) {
  const ts_layout_t *L = p->layout;
  static const ts_group_kind_t kinds[] = {TS_GROUP_TP, TS_GROUP_DP, TS_GROUP_REPLICA};
  int cap = 16, k = 0;
  int *out = ts__xmalloc((size_t)cap * sizeof *out);
  for (size_t g = 0; g < sizeof kinds / sizeof *kinds; g++) {
    ts_group_t gr = ts_plan_group(p, kinds[g], r);
    for (int i = 0; i < gr.n; i++) {
      if (k == cap) out = ts__xrealloc(out, (size_t)(cap *= 2) * sizeof *out);
      out[k++] = gr.dev[i];
    }
  }
  for (int v = 0; v < L->n_vstages; v++) {
    if (L->dev[v] != r) continue;
    int nb[2] = {L->next[v], L->prev[v]};
    for (int j = 0; j < 2; j++) {
      if (nb[j] < 0) continue;
      if (k == cap) out = ts__xrealloc(out, (size_t)(cap *= 2) * sizeof *out);
      out[k++] = L->dev[nb[j]];
    }
  }
  *n = k;
  return out;
}

/* 1 for the class members whose routes are checked: every member where
** the routes come from platforms/platform_route.c (cheap), else those
** whose tp and dp coordinates are each 0, 1 or the last (SimGrid's look-up
** searches the whole zone once per source host). */
static bool sampled(const sim_x_t *x, const ts_plan_t *p, int q) {
  if (ts__sim_routes_own(x->routes)) return true;
  int t = ts_plan_coord(p, q, TS_DIM_TP), d = ts_plan_coord(p, q, TS_DIM_DP);
  return (t <= 1 || t == p->degree[TS_DIM_TP] - 1) && (d <= 1 || d == p->degree[TS_DIM_DP] - 1);
}

/* Why the platform breaks the plan's symmetry, or NULL when it keeps it. */
static const char *asymmetry(const ts_plan_t *p, const sim_x_t *x, const int *fold) {
  const char *why = NULL;
  for (int q = 0; q < x->n && !why; q++)
    if (!same_host(&x->dev[q], &x->dev[fold[q]])) why = "hosts of a class differ in speed or properties";
  for (int r = 0; r < x->n && !why; r++) {
    if (fold[r] != r) continue;
    int np;
    int *peer = peers_of(p, r, &np);
    ts__sim_progress(); /* route look-ups can take seconds: tell the watchdog */
    for (int i = 0; i < np; i++) /* the representative's routes first: one search from its host */
      if (x->dev[peer[i]].host != x->dev[r].host) {
        int nl;
        ts__sim_route(x->routes, x->dev[r].host, x->dev[peer[i]].host, &nl);
      }
    for (int q = 0; q < x->n && !why; q++) {
      if (fold[q] != r || q == r || !sampled(x, p, q)) continue;
      for (int i = 0; i < np && !why; i++) {
        sg_host_t hr = x->dev[r].host, hp = x->dev[peer[i]].host, hq = x->dev[q].host,
                  hi = x->dev[ts_fold_unimage(p, q, peer[i])].host;
        if (!same_route(x->routes, hr, hp, hq, hi))
          why = "routes of a class are not isomorphic";
      }
    }
    free(peer);
  }
  return why;
}

/* Why the job's collectives cannot be folded, or NULL: a tree's or the
** hierarchical algorithm's messages are not the same after the shift that
** takes a device to its representative, so folding runs rings only (auto's
** small all-reduces across domains included: rt_coll_algo.c); a job that
** asks for tree or hierarchical, or whose groups auto would run
** hierarchically, is simulated exact. */
static const char *unfoldable_collectives(const ts_job_t *job, const ts_plan_t *plan,
                                          const sim_x_t *x, const int *fold) {
  static const ts_group_kind_t kinds[] = {TS_GROUP_TP, TS_GROUP_DP, TS_GROUP_REPLICA};
  ts_coll_alg_t a = job->collective_algorithm;
  if (a == TS_CALG_TREE) return "collective_algorithm \"tree\" is not folded";
  if (a == TS_CALG_RING) return NULL;
  for (int r = 0; r < x->n; r++) {
    if (fold[r] != r) continue;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
      ts_group_t g = ts_plan_group(plan, kinds[k], r);
      if (g.n > 1 && ts__coll_two_level(job, &g, ts__sim_domain, (void *)x))
        return a == TS_CALG_HIERARCHICAL
                   ? "collective_algorithm \"hierarchical\" is not folded"
                   : "its groups span several NVLink domains of several members each, where "
                     "collective_algorithm \"auto\" runs hierarchical collectives, which are not folded";
    }
  }
  return NULL;
}

int *ts__sim_fold_setup(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                        const sim_x_t *x) {
  ts__sim_fold_note[0] = 0;
  if (sched->host_weights || sched->moe || sched->own_grad_sync ||
      plan->degree[TS_DIM_EP] > 1 ||
      (job->tensor_parallel_mode[0] && strcmp(job->tensor_parallel_mode, "1d") != 0))
    return NULL;
  if (ts_sim_fold < 0 || (ts_sim_fold == 0 && plan->n_devices < TS_SIM_FOLD_MIN_DEVICES)) return NULL;
  int *fold = ts_fold_classes(plan);
  if (!fold) return NULL;
  /* Routes exist once the platform is sealed: running to time 0 with no
  ** actor yet seals it and simulates nothing. */
  simgrid_run_until(0);
  const char *why = asymmetry(plan, x, fold);
  if (!why) why = unfoldable_collectives(job, plan, x, fold);
  if (why) {
    snprintf(ts__sim_fold_note, sizeof ts__sim_fold_note,
             "%.400s: platform '%.400s': %s; simulating every device (exact)", job->path,
             job->platform, why);
    ts__sim_note(ts__sim_fold_note);
    free(fold);
    return NULL;
  }
  return fold;
}

void ts__sim_fold_send(const sim_x_t *x, int *from, int *dest, int kind, int *vstage) {
  int peer = *dest, r = x->fold[peer];
  if (r == peer) return;
  int f = ts_fold_image(x->plan, peer, *from);
  /* A pipeline message names the receiver's stage, a collective step the
  ** sender's label stage. */
  *vstage = ts_fold_vstage(x->plan, *vstage, kind == TS_SEND_COLL ? f : r);
  *from = f;
  *dest = r;
}

void ts__sim_fold_events(const sim_x_t *x, ts_run_t *run) {
  for (int i = 0; i < run->n_events; i++) {
    ts_event_t *e = &run->events[i];
    int f = e->device;
    if (!ts_kind_is_transfer(e->kind) || x->fold[f] == f) continue;
    /* The image, under the shift taking f to its representative, of a
    ** send f made: the representative's own send. */
    e->device = x->fold[f];
    e->peer = ts_fold_image(x->plan, f, e->peer);
    e->vstage = ts_fold_vstage(x->plan, e->vstage, e->device);
  }
  ts_run_sort(run);
}

/* ---- link traffic over the classes ------------------------------------ */

/* The routes of one (representative, peer) pair over the class: the link
** indices (sg_link_get_data, 1-based) of every member's image of it, with
** repeats where members' routes share a link. */
typedef struct pair {
  int a, b;
  int off, n; /* in routes->link */
} pair_t;

struct sim_fold_routes {
  pair_t *pair;
  int n_pairs;
  int *link, n_links, cap_links;
};

static int pair_cmp(const void *u, const void *v) {
  const pair_t *p = u, *q = v;
  if (p->a != q->a) return p->a < q->a ? -1 : 1;
  return (p->b > q->b) - (p->b < q->b);
}

sim_fold_routes_t *ts__sim_fold_routes(const sim_x_t *x, const ts_run_t *run) {
  sim_fold_routes_t *r = ts__xcalloc(1, sizeof *r);
  r->pair = ts__xmalloc((size_t)(run->n_events + 1) * sizeof *r->pair);
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    if (ts_kind_is_transfer(e->kind) && e->bytes > 0 && e->device != e->peer)
      r->pair[r->n_pairs++] = (pair_t){e->device, e->peer, 0, 0};
  }
  qsort(r->pair, (size_t)r->n_pairs, sizeof *r->pair, pair_cmp);
  int m = 0;
  for (int i = 0; i < r->n_pairs; i++)
    if (!m || pair_cmp(&r->pair[m - 1], &r->pair[i])) r->pair[m++] = r->pair[i];
  r->n_pairs = m;
  /* Each representative's class, once: members[first[a] .. first[a + 1]). */
  int n = x->n, *first = ts__xcalloc((size_t)n + 1, sizeof *first), *members = ts__xmalloc((size_t)n * sizeof *members);
  for (int q = 0; q < n; q++) first[x->fold[q] + 1]++;
  for (int d = 0; d < n; d++) first[d + 1] += first[d];
  int *fill = ts__xmalloc((size_t)n * sizeof *fill);
  for (int d = 0; d < n; d++) fill[d] = first[d];
  for (int q = 0; q < n; q++) members[fill[x->fold[q]]++] = q;
  free(fill);
  /* Every member's routes, source by source (each member's host once),
  ** into the cache; then the pairs' link lists from it. */
  int *pair0 = ts__xmalloc((size_t)(n + 1) * sizeof *pair0); /* pairs of representative a: [pair0[a], pair0[a + 1]) */
  for (int a = 0, i = 0; a <= n; a++) {
    while (i < m && r->pair[i].a < a) i++;
    pair0[a] = i;
  }
  for (int q = 0; q < n; q++) {
    int a = x->fold[q];
    if (!(q & 63)) ts__sim_progress();
    for (int i = pair0[a]; i < pair0[a + 1]; i++) {
      sg_host_t ha = x->dev[q].host, hb = x->dev[ts_fold_unimage(x->plan, q, r->pair[i].b)].host;
      int nl;
      if (ha != hb) ts__sim_route(x->routes, ha, hb, &nl);
    }
  }
  free(pair0);
  for (int i = 0; i < m; i++) {
    pair_t *p = &r->pair[i];
    p->off = r->n_links;
    ts__sim_progress();
    for (int j = first[p->a]; j < first[p->a + 1]; j++) {
      int q = members[j];
      sg_host_t ha = x->dev[q].host, hb = x->dev[ts_fold_unimage(x->plan, q, p->b)].host;
      if (ha == hb) continue;
      int nl;
      const sg_link_t *route = ts__sim_route(x->routes, ha, hb, &nl);
      for (int j = 0; j < nl; j++) {
        int k = (int)(size_t)sg_link_get_data(route[j]);
        if (!k) continue;
        if (r->n_links == r->cap_links)
          r->link = ts__xrealloc(r->link, (size_t)(r->cap_links = r->cap_links ? 2 * r->cap_links : 256) *
                                              sizeof *r->link);
        r->link[r->n_links++] = k;
      }
    }
    p->n = r->n_links - p->off;
  }
  free(first);
  free(members);
  return r;
}

const int *ts__sim_fold_route(const sim_fold_routes_t *r, int a, int b, int *n) {
  pair_t key = {a, b, 0, 0};
  const pair_t *p = bsearch(&key, r->pair, (size_t)r->n_pairs, sizeof *r->pair, pair_cmp);
  *n = p ? p->n : 0;
  return p ? r->link + p->off : NULL;
}

void ts__sim_fold_routes_free(sim_fold_routes_t *r) {
  if (!r) return;
  free(r->pair);
  free(r->link);
  free(r);
}
