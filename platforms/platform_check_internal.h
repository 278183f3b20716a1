/*
** platform_check_internal.h: the representation the platform checker
** builds from a file (platform_check.c parses and checks the structure,
** platform_check_routes.c searches the routes).
*/
#ifndef TS_PLATFORM_CHECK_INTERNAL_H
#define TS_PLATFORM_CHECK_INTERNAL_H

#include <stdbool.h>

#include "platform_check.h"

enum { PC_AUTO, PC_FULL, PC_GRAPH }; /* how a zone routes: by itself, table, graph */

/* A netpoint: a host, router, peer or zone. */
typedef struct pc_np {
  char *id;
  int line;
  char type;  /* 'h' host, 'r' router, 'p' peer, 'z' zone */
  int zone;   /* the enclosing zone, -1 for the top zone */
  int self;   /* for a zone, its index in zones[] */
  int vi;     /* its vertex index in its enclosing zone */
} pc_np_t;

typedef struct pc_zone {
  int np, parent, line, kind;
  char routing[24];
  int nv;      /* vertices: the netpoints directly inside */
  int e0, e1;  /* its edges in edges[] (sorted by zone, from, to) */
  int *off;    /* nv + 1 offsets of each vertex's edges, by vi */
  int **pred;  /* per source vertex (lazily): the edge reaching each vertex */
} pc_zone_t;

/* A route or zoneRoute as written. */
typedef struct pc_route {
  int zone, line, n_links;
  bool zone_route, sym, bypass;
  char *src, *dst, *gw_src, *gw_dst;
  int ref0;   /* its link_ctns: refs[ref0 .. ref0 + n_links), in order */
} pc_route_t;

/* One direction of a route: netpoint indices. */
typedef struct pc_edge {
  int zone, from, to, gw_src, gw_dst, route;
  bool reverse; /* the reverse of a symmetrical route */
} pc_edge_t;

typedef struct pc_link {
  char *id;
  int line;
} pc_link_t;

typedef struct pc_ref { /* a link named by link_ctn, host_link, ... */
  char *id;
  int line;
  char elem[16];
  char dir;   /* a link_ctn's direction: 'U' UP, 'D' DOWN, 'N' NONE (or none given) */
} pc_ref_t;

struct ts_platform {
  char *name;
  pc_np_t *np;
  int n_np, cap_np;
  int *by_name; /* netpoint indices sorted by id */
  pc_zone_t *zones;
  int n_zones, cap_zones;
  pc_route_t *routes;
  int n_routes, cap_routes;
  pc_edge_t *edges;
  int n_edges;
  pc_link_t *links;
  int n_links, cap_links;
  pc_ref_t *refs;
  int n_refs, cap_refs;
};

/* The netpoint called id, or -1. */
int ts__pc_find(const ts_platform_t *p, const char *id);

/* The index in links[] of the link called id (once links[] is sorted by
** id, as the checker leaves it), or -1. */
int ts__pc_link(const ts_platform_t *p, const char *id);

/* Copies s into out (cap bytes) with control and non-ASCII bytes written
** as \xNN, so messages stay one line; returns out. */
const char *ts__pc_esc(const char *s, char *out, size_t cap);

/* Builds the vertex lists and edge offsets of every zone (after the
** structure was checked). */
void ts__pc_build_graph(ts_platform_t *p);

#endif
