/*
** platform_route.h: the routes of a platform whose routes all sit in one
** Dijkstra or DijkstraCache zone, found without SimGrid, link for link as
** SimGrid 3.32's DijkstraZone finds them (platform_route.c says how).
**
** Why: SimGrid answers a route look-up from a new source host with a
** shortest-path search over the whole zone and keeps its result (a
** vector over every vertex) for that source; the link accounting of a
** folded or exact run on a 3,072-GPU platform asks routes from every
** host, which took seconds and about 160 MB.  This router searches from a
** source only until the destinations asked are settled, and keeps one
** search (the last source's) at a time.
*/
#ifndef TS_PLATFORM_ROUTE_H
#define TS_PLATFORM_ROUTE_H

#include "platform_check.h"

typedef struct ts_router ts_router_t;

/* A router for p (which must outlive it), or NULL when p is not one
** Dijkstra or DijkstraCache zone holding every netpoint and route
** (nested zones, clusters, peers, zoneRoutes, bypass routes, Floyd or
** Full routing: the caller then asks SimGrid). */
ts_router_t *ts_router_new(const ts_platform_t *p);

void ts_router_free(ts_router_t *r);

/* The graph vertex of the host or router called id, or -1 when it is in
** no route. */
int ts_router_vertex(const ts_router_t *r, const char *id);

/* The route from vertex a to vertex b (a != b) in *slots: the links in
** the order sg_host_get_route lists them, each as a slot, link * 3 + d
** with link an index for ts_router_link_name and d the half SimGrid takes
** (0: the link itself, 1: its _UP half, 2: its _DOWN half of a SPLITDUPLEX
** link).  Returns the count, or -1 when b cannot be reached.  *slots
** stays valid until the next call. */
int ts_router_route(ts_router_t *r, int a, int b, const int **slots);

/* The name of link k (0 <= k < ts_router_n_links) as the platform writes
** it. */
const char *ts_router_link_name(const ts_router_t *r, int k);
int ts_router_n_links(const ts_router_t *r);

#endif
