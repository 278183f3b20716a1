/*
** platform_route.c: SimGrid 3.32's Dijkstra routing, replayed on the
** checker's reading of the platform file (platform_route.h).
**
** What SimGrid does (src/kernel/routing/DijkstraZone.cpp, 3.32), and what
** this file does the same way:
** - The graph: a vertex per netpoint named by a route, numbered in the
**   order routes name them (each route's src, then its dst); an edge per
**   route, src -> dst with the route's links in the order written, and for
**   a symmetrical route dst -> src with the links reversed and each
**   SPLITDUPLEX link's other half (UP for DOWN).  An edge weighs its link
**   count.
** - The search: Dijkstra from the source, the queue ordered by (cost,
**   vertex number), an edge relaxing a vertex only when it makes it
**   strictly cheaper.  A vertex's predecessor is therefore the first
**   settled vertex through which it is cheapest; the order of a vertex's
**   edges does not matter (two edges never join the same pair: the
**   checker refuses a pair routed twice).
** - The route: the edges' link lists from the source's edge to the
**   destination's, each list in its own order.
** Unlike SimGrid the search stops once the destination is settled (every
** vertex settled by then has its final predecessor: weights are at least
** 1) and resumes for the next destination from the same source; a new
** source starts afresh.  Costs and predecessors live in arrays stamped by
** search, so a fresh start costs nothing per vertex.
**
** test_route compares every route this finds with SimGrid's on the
** shipped and generated platforms, link for link.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "platform_check_internal.h"
#include "platform_route.h"
#include "ts_internal.h"

typedef struct r_edge {
  int from, to, route;
  bool reverse;
} r_edge_t;

typedef struct r_item {
  long cost;
  int v;
} r_item_t;

struct ts_router {
  const ts_platform_t *p;
  int nv;
  int *vertex_of;  /* [n_np] netpoint -> vertex, -1 */
  int *off;        /* [nv + 1] CSR offsets into edge */
  r_edge_t *edge;
  int *route_link; /* per ref of a route's link_ctn: its link index */
  /* the search in progress */
  int src;
  unsigned stamp;
  unsigned *seen;  /* [nv] == stamp: cost and pred are this search's */
  bool *done;      /* [nv] settled (valid when seen) */
  long *cost;
  int *pred;       /* [nv] the edge that reaches it */
  r_item_t *heap;
  int n_heap, cap_heap;
  int *out, cap_out;
};

static bool before(r_item_t a, r_item_t b) { return a.cost < b.cost || (a.cost == b.cost && a.v < b.v); }

static void push(ts_router_t *r, long cost, int v) {
  if (r->n_heap == r->cap_heap)
    r->heap = ts__xrealloc(r->heap, (size_t)(r->cap_heap = r->cap_heap ? 2 * r->cap_heap : 256) * sizeof *r->heap);
  int i = r->n_heap++;
  r_item_t it = {cost, v};
  while (i > 0 && before(it, r->heap[(i - 1) / 2])) {
    r->heap[i] = r->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  r->heap[i] = it;
}

static r_item_t pop(ts_router_t *r) {
  r_item_t top = r->heap[0], last = r->heap[--r->n_heap];
  int i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= r->n_heap) break;
    if (c + 1 < r->n_heap && before(r->heap[c + 1], r->heap[c])) c++;
    if (!before(r->heap[c], last)) break;
    r->heap[i] = r->heap[c];
    i = c;
  }
  if (r->n_heap) r->heap[i] = last;
  return top;
}

ts_router_t *ts_router_new(const ts_platform_t *p) {
  if (!p || p->n_zones != 1 || p->zones[0].kind != PC_GRAPH || strncmp(p->zones[0].routing, "Dijkstra", 8) != 0)
    return NULL;
  for (int i = 0; i < p->n_np; i++)
    if ((p->np[i].type != 'h' && p->np[i].type != 'r' && i != p->zones[0].np) || p->np[i].zone > 0) return NULL;
  for (int i = 0; i < p->n_routes; i++)
    if (p->routes[i].zone_route || p->routes[i].bypass || p->routes[i].zone != 0) return NULL;
  ts_router_t *r = ts__xcalloc(1, sizeof *r);
  r->p = p;
  r->vertex_of = ts__xmalloc((size_t)(p->n_np ? p->n_np : 1) * sizeof *r->vertex_of);
  for (int i = 0; i < p->n_np; i++) r->vertex_of[i] = -1;
  r_edge_t *e = ts__xmalloc((size_t)(2 * p->n_routes + 1) * sizeof *e);
  int ne = 0;
  for (int i = 0; i < p->n_routes; i++) {
    const pc_route_t *rt = &p->routes[i];
    int a = ts__pc_find(p, rt->src), b = ts__pc_find(p, rt->dst);
    if (a < 0 || b < 0) { /* the checker refuses this; be safe */
      free(e);
      ts_router_free(r);
      return NULL;
    }
    if (r->vertex_of[a] < 0) r->vertex_of[a] = r->nv++;
    if (r->vertex_of[b] < 0) r->vertex_of[b] = r->nv++;
    e[ne++] = (r_edge_t){r->vertex_of[a], r->vertex_of[b], i, false};
    if (rt->sym) {
      e[ne++] = (r_edge_t){r->vertex_of[b], r->vertex_of[a], i, true};
    }
  }
  r->off = ts__xcalloc((size_t)r->nv + 1, sizeof *r->off);
  for (int k = 0; k < ne; k++) r->off[e[k].from + 1]++;
  for (int v = 0; v < r->nv; v++) r->off[v + 1] += r->off[v];
  int *fill = ts__xmalloc((size_t)(r->nv ? r->nv : 1) * sizeof *fill);
  memcpy(fill, r->off, (size_t)r->nv * sizeof *fill);
  r->edge = ts__xmalloc((size_t)(ne ? ne : 1) * sizeof *r->edge);
  for (int k = 0; k < ne; k++) r->edge[fill[e[k].from]++] = e[k];
  free(fill);
  free(e);
  r->route_link = ts__xmalloc((size_t)(p->n_refs ? p->n_refs : 1) * sizeof *r->route_link);
  for (int i = 0; i < p->n_refs; i++) r->route_link[i] = ts__pc_link(p, p->refs[i].id);
  size_t nv = (size_t)(r->nv ? r->nv : 1);
  r->seen = ts__xcalloc(nv, sizeof *r->seen);
  r->done = ts__xcalloc(nv, sizeof *r->done);
  r->cost = ts__xmalloc(nv * sizeof *r->cost);
  r->pred = ts__xmalloc(nv * sizeof *r->pred);
  r->src = -1;
  return r;
}

void ts_router_free(ts_router_t *r) {
  if (!r) return;
  free(r->vertex_of);
  free(r->off);
  free(r->edge);
  free(r->route_link);
  free(r->seen);
  free(r->done);
  free(r->cost);
  free(r->pred);
  free(r->heap);
  free(r->out);
  free(r);
}

int ts_router_vertex(const ts_router_t *r, const char *id) {
  int k = ts__pc_find(r->p, id);
  return k < 0 ? -1 : r->vertex_of[k];
}

const char *ts_router_link_name(const ts_router_t *r, int k) { return r->p->links[k].id; }
int ts_router_n_links(const ts_router_t *r) { return r->p->n_links; }

/* Settles vertices from the current source until b is settled; false when
** the queue runs out first. */
static bool settle(ts_router_t *r, int b) {
  while (!(r->seen[b] == r->stamp && r->done[b])) {
    if (!r->n_heap) return false;
    r_item_t it = pop(r);
    int v = it.v;
    if (r->done[v]) continue; /* a stale entry: SimGrid's relaxes nothing either */
    r->done[v] = true;
    for (int k = r->off[v]; k < r->off[v + 1]; k++) {
      const r_edge_t *e = &r->edge[k];
      long c = r->cost[v] + r->p->routes[e->route].n_links;
      if (r->seen[e->to] != r->stamp) {
        r->seen[e->to] = r->stamp;
        r->done[e->to] = false;
      } else if (!(c < r->cost[e->to])) {
        continue;
      }
      r->cost[e->to] = c;
      r->pred[e->to] = k;
      push(r, c, e->to);
    }
  }
  return true;
}

int ts_router_route(ts_router_t *r, int a, int b, const int **slots) {
  assert(a >= 0 && a < r->nv && b >= 0 && b < r->nv && a != b);
  if (r->src != a) {
    if (++r->stamp == 0) { /* wrapped: clear the stamps once */
      memset(r->seen, 0, (size_t)r->nv * sizeof *r->seen);
      r->stamp = 1;
    }
    r->src = a;
    r->n_heap = 0;
    r->seen[a] = r->stamp;
    r->done[a] = false;
    r->cost[a] = 0;
    push(r, 0, a);
  }
  if (!settle(r, b)) return -1;
  /* The edges from b back to a, then their links from a's end. */
  int n = 0;
  for (int v = b; v != a; v = r->edge[r->pred[v]].from) {
    n += r->p->routes[r->edge[r->pred[v]].route].n_links;
  }
  if (n > r->cap_out) r->out = ts__xrealloc(r->out, (size_t)(r->cap_out = 2 * n + 16) * sizeof *r->out);
  int at = n;
  for (int v = b; v != a; v = r->edge[r->pred[v]].from) {
    const r_edge_t *e = &r->edge[r->pred[v]];
    const pc_route_t *rt = &r->p->routes[e->route];
    at -= rt->n_links;
    for (int j = 0; j < rt->n_links; j++) {
      int ref = rt->ref0 + (e->reverse ? rt->n_links - 1 - j : j);
      char d = r->p->refs[ref].dir;
      int half = d == 'U' ? (e->reverse ? 2 : 1) : d == 'D' ? (e->reverse ? 1 : 2) : 0;
      r->out[at + j] = 3 * r->route_link[ref] + half;
    }
  }
  assert(at == 0 && n > 0);
  *slots = r->out;
  return n;
}
