/*
** platform_check_routes.c: whether SimGrid will find a route between two
** hosts of a checked platform, searched as SimGrid's routing does: in the
** lowest zone holding both, between the netpoints of that zone that hold
** them (the hosts themselves, or the child zones around them); through
** the zoneRoutes' gateways into the child zones, recursively.  A Full
** zone needs the declared route; a Floyd or Dijkstra zone a path through
** its routes (found breadth first, one search per source, cached); a zone
** SimGrid routes by itself (Cluster, Star, Vivaldi, ...) always has one.
**
** A graph zone's gateways are those of the first and last route of the
** shortest path in routes; SimGrid weighs paths by their links, so where
** two paths tie differently the gateways checked may differ from the ones
** SimGrid takes (both exist).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "platform_check_internal.h"
#include "ts_internal.h"

void ts__pc_build_graph(ts_platform_t *p) {
  for (int i = 0; i < p->n_np; i++) {
    int z = p->np[i].zone;
    if (z >= 0) p->np[i].vi = p->zones[z].nv++;
  }
  int e = 0;
  for (int z = 0; z < p->n_zones; z++) {
    pc_zone_t *zn = &p->zones[z];
    zn->off = ts__xcalloc((size_t)zn->nv + 1, sizeof *zn->off);
    zn->e0 = e;
    for (; e < p->n_edges && p->edges[e].zone == z; e++) zn->off[p->np[p->edges[e].from].vi + 1]++;
    zn->e1 = e;
    for (int v = 0; v < zn->nv; v++) zn->off[v + 1] += zn->off[v];
  }
}

/* The netpoint of zone z that holds netpoint i (i itself when it is
** directly in z). */
static int holder(const ts_platform_t *p, int i, int z) {
  while (p->np[i].zone != z) i = p->zones[p->np[i].zone].np;
  return i;
}

/* The lowest zone holding netpoints a and b (-1: none, both at top). */
static int common_zone(const ts_platform_t *p, int a, int b) {
  for (int za = p->np[a].zone; za >= 0; za = p->zones[za].parent)
    for (int zb = p->np[b].zone; zb >= 0; zb = p->zones[zb].parent)
      if (za == zb) return za;
  return -1;
}

/* The predecessor edges (index in edges[], -2 at the source, -1 not
** reached) of a breadth-first search from vertex src of zone z. */
static const int *search(ts_platform_t *p, int z, int src) {
  pc_zone_t *zn = &p->zones[z];
  if (!zn->pred) zn->pred = ts__xcalloc((size_t)zn->nv, sizeof *zn->pred);
  int vs = p->np[src].vi;
  if (zn->pred[vs]) return zn->pred[vs];
  int *pred = ts__xmalloc((size_t)zn->nv * sizeof *pred), *queue = ts__xmalloc((size_t)zn->nv * sizeof *queue);
  for (int v = 0; v < zn->nv; v++) pred[v] = -1;
  int head = 0, tail = 0;
  pred[vs] = -2;
  queue[tail++] = src;
  while (head < tail) {
    int u = queue[head++], vu = p->np[u].vi;
    for (int k = zn->e0 + zn->off[vu]; k < zn->e0 + zn->off[vu + 1]; k++) {
      int t = p->edges[k].to, vt = p->np[t].vi;
      if (pred[vt] != -1) continue;
      pred[vt] = k;
      queue[tail++] = t;
    }
  }
  free(queue);
  zn->pred[vs] = pred;
  return pred;
}

/* The declared edge a -> b of zone z, or -1. */
static int find_edge(const ts_platform_t *p, int z, int a, int b) {
  const pc_zone_t *zn = &p->zones[z];
  int va = p->np[a].vi;
  for (int k = zn->e0 + zn->off[va]; k < zn->e0 + zn->off[va + 1]; k++)
    if (p->edges[k].to == b) return k;
  return -1;
}

static int no_route(const ts_platform_t *p, int z, int a, int b, int ja, int jb, const char *why,
                    ts_err_t *err) {
  char n[256], zi[128], x[128], y[128], u[128], v[128], job[400] = "";
  if (a != ja || b != jb)
    snprintf(job, sizeof job, " (on the way from '%s' to '%s')", ts__pc_esc(p->np[ja].id, u, sizeof u),
             ts__pc_esc(p->np[jb].id, v, sizeof v));
  return ts_err_set(err, EX_DATAERR, "%s:%d: <zone id=\"%s\">: no route from '%s' to '%s'%s: %s",
                    ts__pc_esc(p->name, n, sizeof n), p->zones[z].line,
                    ts__pc_esc(p->np[p->zones[z].np].id, zi, sizeof zi), ts__pc_esc(p->np[a].id, x, sizeof x),
                    ts__pc_esc(p->np[b].id, y, sizeof y), job, why);
}

/* 0 when SimGrid finds a route from netpoint a to b (hosts or routers);
** ja, jb: the pair the job asked for, for the message. */
static int route(ts_platform_t *p, int a, int b, int ja, int jb, int depth, ts_err_t *err) {
  if (a == b) return 0;
  int z = common_zone(p, a, b);
  if (z < 0 || depth > 2 * TS_PLATFORM_MAX_DEPTH) return 0; /* SimGrid's own error */
  const pc_zone_t *zn = &p->zones[z];
  if (zn->kind == PC_AUTO) return 0;
  int va = holder(p, a, z), vb = holder(p, b, z);
  int first, last;
  if (zn->kind == PC_FULL) {
    first = last = find_edge(p, z, va, vb);
    if (first < 0) {
      char why[512], x[128], y[128];
      snprintf(why, sizeof why, "routing=\"Full\" needs a <%s src=\"%s\" dst=\"%s\"> (or a symmetrical one the other way)",
               p->np[va].type == 'z' ? "zoneRoute" : "route", ts__pc_esc(p->np[va].id, x, sizeof x),
               ts__pc_esc(p->np[vb].id, y, sizeof y));
      return no_route(p, z, va, vb, ja, jb, why, err);
    }
  } else {
    const int *pred = search(p, z, va);
    last = pred[p->np[vb].vi];
    if (last < 0) {
      char why[160];
      snprintf(why, sizeof why, "routing=\"%s\" finds no path through the zone's routes (SimGrid 3.32 would "
               "search forever)", zn->routing);
      return no_route(p, z, va, vb, ja, jb, why, err);
    }
    first = last;
    while (pred[p->np[p->edges[first].from].vi] >= 0) first = pred[p->np[p->edges[first].from].vi];
  }
  if (p->np[va].type == 'z' && route(p, a, p->edges[first].gw_src, ja, jb, depth + 1, err)) return err->code;
  if (p->np[vb].type == 'z' && route(p, p->edges[last].gw_dst, b, ja, jb, depth + 1, err)) return err->code;
  return 0;
}

/* Whether every netpoint of k[0..n) reaches every other one, decided at
** once where the platform is one graph zone holding them all: a search
** from k[0] forward and one backward reach them all (each pair then has a
** path through k[0]).  False also when the shortcut does not apply; the
** pair by pair search then finds the pair to name. */
static bool all_connected(ts_platform_t *p, const int *k, int n) {
  if (n < 2 || p->n_zones != 1 || p->zones[0].kind != PC_GRAPH) return false;
  for (int i = 0; i < n; i++)
    if (p->np[k[i]].zone != 0) return false;
  const pc_zone_t *zn = &p->zones[0];
  bool *fw = ts__xcalloc((size_t)zn->nv + 1, sizeof *fw), *bw = ts__xcalloc((size_t)zn->nv + 1, sizeof *bw);
  int *queue = ts__xmalloc((size_t)(zn->nv + 1) * sizeof *queue);
  /* forward: the cached search from k[0] */
  const int *pred = search(p, 0, k[0]);
  for (int v = 0; v < zn->nv; v++) fw[v] = pred[v] != -1;
  /* backward: a search over the edges reversed (a CSR of them by target) */
  int m = zn->e1 - zn->e0, *roff = ts__xcalloc((size_t)zn->nv + 1, sizeof *roff);
  int *rsrc = ts__xmalloc((size_t)(m ? m : 1) * sizeof *rsrc);
  for (int e = zn->e0; e < zn->e1; e++) roff[p->np[p->edges[e].to].vi + 1]++;
  for (int v = 0; v < zn->nv; v++) roff[v + 1] += roff[v];
  int *fill = ts__xmalloc((size_t)(zn->nv + 1) * sizeof *fill);
  memcpy(fill, roff, (size_t)(zn->nv + 1) * sizeof *fill);
  for (int e = zn->e0; e < zn->e1; e++) rsrc[fill[p->np[p->edges[e].to].vi]++] = p->np[p->edges[e].from].vi;
  int head = 0, tail = 0, v0 = p->np[k[0]].vi;
  bw[v0] = true;
  queue[tail++] = v0;
  while (head < tail) {
    int v = queue[head++];
    for (int r = roff[v]; r < roff[v + 1]; r++)
      if (!bw[rsrc[r]]) bw[rsrc[r]] = true, queue[tail++] = rsrc[r];
  }
  free(roff);
  free(rsrc);
  free(fill);
  bool ok = true;
  for (int i = 0; i < n && ok; i++) ok = fw[p->np[k[i]].vi] && bw[p->np[k[i]].vi];
  free(fw);
  free(bw);
  free(queue);
  return ok;
}

int ts_platform_check_routes(ts_platform_t *p, const char *const *hosts, int n, ts_err_t *err) {
  int *k = ts__xmalloc((size_t)(n > 0 ? n : 1) * sizeof *k);
  int rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    k[i] = ts__pc_find(p, hosts[i]);
    char nm[256], h[128];
    if (k[i] < 0 || p->np[k[i]].type == 'z')
      rc = ts_err_set(err, EX_DATAERR, "%s: no host '%s' in the platform", ts__pc_esc(p->name, nm, sizeof nm),
                      ts__pc_esc(hosts[i], h, sizeof h));
  }
  if (!rc && !all_connected(p, k, n))
    for (int i = 0; i < n && !rc; i++)
      for (int j = 0; j < n && !rc; j++)
        if (k[i] != k[j]) rc = route(p, k[i], k[j], k[i], k[j], 0, err);
  free(k);
  return rc;
}
