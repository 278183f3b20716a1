/*
** sim_route.c: the routes the link accounting and symmetry folding look
** up after (and before) a run, host pair by host pair, cached.
**
** SimGrid's own look-up (sg_host_get_route) searches the whole zone from
** each new source host and keeps that search for good: on the 3,072-GPU
** DGX-A100 platforms the folded 1T job's accounting asked routes from
** every host, seconds of search and about 160 MB.  Where the platform is
** one Dijkstra zone the routes come from platforms/platform_route.c
** instead, which finds SimGrid's routes without SimGrid; the first
** SIM_ROUTE_CHECKS pairs are also asked of SimGrid and compared link for
** link, and any difference sends every later look-up to SimGrid (so a
** SimGrid whose routing differs costs time, never a wrong answer).
** Other platforms (nested zones, clusters, Full or Floyd routing) ask
** SimGrid, whose look-ups there are cheap.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <simgrid/host.h>
#include <simgrid/link.h>
#include <xbt/dynar.h>

#include "platform_route.h"
#include "sim_internal.h"
#include "ts_internal.h"

enum { SIM_ROUTE_CHECKS = 16 };

typedef struct pair_slot {
  sg_host_t a, b; /* a == NULL: empty */
  int off, n;
} pair_slot_t;

struct sim_routes {
  ts_router_t *router; /* NULL: SimGrid answers */
  sg_link_t *slot_link; /* [3 n_links] lazily: a router slot's link */
  int n_slots;
  sg_link_t *by_name;   /* SimGrid's links sorted by name (for slot_link) */
  size_t n_by_name;
  int checks;           /* router answers compared with SimGrid's so far */
  pair_slot_t *tab;
  size_t cap, used;
  sg_link_t *link;
  size_t n_link, cap_link;
  xbt_dynar_t dyn;
};

static int link_cmp(const void *a, const void *b) {
  return strcmp(sg_link_get_name(*(const sg_link_t *)a), sg_link_get_name(*(const sg_link_t *)b));
}

sim_routes_t *ts__sim_routes_new(const ts_platform_t *pc) {
  sim_routes_t *r = ts__xcalloc(1, sizeof *r);
  r->router = ts_router_new(pc);
  if (r->router) {
    r->n_slots = 3 * ts_router_n_links(r->router);
    r->slot_link = ts__xcalloc((size_t)(r->n_slots ? r->n_slots : 1), sizeof *r->slot_link);
    r->n_by_name = sg_link_count();
    r->by_name = sg_link_list();
    qsort(r->by_name, r->n_by_name, sizeof *r->by_name, link_cmp);
  }
  r->cap = 1024;
  r->tab = ts__xcalloc(r->cap, sizeof *r->tab);
  r->dyn = xbt_dynar_new(sizeof(sg_link_t), NULL);
  return r;
}

void ts__sim_routes_free(sim_routes_t *r) {
  if (!r) return;
  ts_router_free(r->router);
  free(r->slot_link);
  free(r->by_name);
  free(r->tab);
  free(r->link);
  xbt_dynar_free(&r->dyn);
  free(r);
}

static size_t pair_hash(sg_host_t a, sg_host_t b) {
  uint64_t h = (uint64_t)(uintptr_t)a * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(uintptr_t)b + 0x632BE59BD9B4E019ULL);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  return (size_t)(h ^ (h >> 32));
}

static void add_link(sim_routes_t *r, sg_link_t l) {
  if (r->n_link == r->cap_link)
    r->link = ts__xrealloc(r->link, (r->cap_link = r->cap_link ? 2 * r->cap_link : 1024) * sizeof *r->link);
  r->link[r->n_link++] = l;
}

/* The SimGrid link of router slot s, or NULL when SimGrid has none by
** that name. */
static sg_link_t slot_link(sim_routes_t *r, int s) {
  if (r->slot_link[s]) return r->slot_link[s];
  const char *name = ts_router_link_name(r->router, s / 3);
  char buf[512];
  snprintf(buf, sizeof buf, "%s%s", name, s % 3 == 1 ? "_UP" : s % 3 == 2 ? "_DOWN" : "");
  size_t lo = 0, hi = r->n_by_name;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(sg_link_get_name(r->by_name[mid]), buf) < 0) lo = mid + 1;
    else hi = mid;
  }
  return r->slot_link[s] = lo < r->n_by_name && strcmp(sg_link_get_name(r->by_name[lo]), buf) == 0 ? r->by_name[lo] : NULL;
}

/* Appends the route a -> b to r->link: the router's when it can, else
** SimGrid's. */
static void find(sim_routes_t *r, sg_host_t a, sg_host_t b) {
  size_t off = r->n_link;
  if (r->router) {
    int va = ts_router_vertex(r->router, sg_host_get_name(a)), vb = ts_router_vertex(r->router, sg_host_get_name(b));
    const int *s;
    int n = va >= 0 && vb >= 0 ? ts_router_route(r->router, va, vb, &s) : -1;
    bool ok = n >= 0;
    for (int i = 0; i < n && ok; i++) {
      sg_link_t l = slot_link(r, s[i]);
      if (l) add_link(r, l);
      ok = l != NULL;
    }
    if (ok && r->checks < SIM_ROUTE_CHECKS) { /* compare with SimGrid's */
      r->checks++;
      xbt_dynar_reset(r->dyn);
      sg_host_get_route(a, b, r->dyn);
      ok = xbt_dynar_length(r->dyn) == (unsigned long)n;
      for (int i = 0; i < n && ok; i++) ok = xbt_dynar_get_as(r->dyn, i, sg_link_t) == r->link[off + (size_t)i];
    }
    if (ok) return;
    ts_router_free(r->router); /* SimGrid answers from now on */
    r->router = NULL;
    r->n_link = off;
  }
  xbt_dynar_reset(r->dyn);
  sg_host_get_route(a, b, r->dyn);
  unsigned it;
  sg_link_t l;
  xbt_dynar_foreach (r->dyn, it, l) add_link(r, l);
}

const sg_link_t *ts__sim_route(sim_routes_t *r, sg_host_t a, sg_host_t b, int *n) {
  if (2 * (r->used + 1) > r->cap) { /* grow the open-addressing table */
    size_t cap = 2 * r->cap;
    pair_slot_t *t = ts__xcalloc(cap, sizeof *t);
    for (size_t i = 0; i < r->cap; i++) {
      if (!r->tab[i].a) continue;
      size_t j = pair_hash(r->tab[i].a, r->tab[i].b) & (cap - 1);
      while (t[j].a) j = (j + 1) & (cap - 1);
      t[j] = r->tab[i];
    }
    free(r->tab);
    r->tab = t;
    r->cap = cap;
  }
  size_t j = pair_hash(a, b) & (r->cap - 1);
  while (r->tab[j].a && (r->tab[j].a != a || r->tab[j].b != b)) j = (j + 1) & (r->cap - 1);
  pair_slot_t *p = &r->tab[j];
  if (!p->a) {
    size_t off = r->n_link;
    find(r, a, b);
    *p = (pair_slot_t){a, b, (int)off, (int)(r->n_link - off)};
    r->used++;
  }
  *n = p->n;
  return r->link + p->off;
}

bool ts__sim_routes_own(const sim_routes_t *r) { return r->router != NULL; }
