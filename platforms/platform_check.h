/*
** platform_check.h: a checker of SimGrid platform files (DTD 4.1) that
** runs before SimGrid loads them.  SimGrid 3.32 offers no hook to validate
** a platform, and on ordinary mistakes it aborts (a duplicated route,
** deeply nested zones) or loops forever (a Dijkstra zone with a route
** missing).  The checker reads the file with expat and reports the first
** problem in one line, "FILE:LINE: <element id="...">: what is wrong".
**
** What it checks (README "Platforms"):
**   - the XML is well formed (the line and column of the first error);
**   - elements nest at most TS_PLATFORM_MAX_DEPTH deep;
**   - ids are unique: hosts, routers, zones, peers and the hosts of
**     clusters share one name space, links another;
**   - every link_ctn names a link, with direction UP, DOWN or NONE;
**   - every route and zoneRoute names existing endpoints in its zone
**     (and gateways), and no ordered pair is routed twice in one zone
**     (a symmetrical route counts in both directions);
**   - speeds, bandwidths and latencies parse with SimGrid's units, are
**     finite, and are > 0 (speeds, bandwidths) or >= 0 (latencies);
**   - ts_platform_check_routes: every ordered pair of the hosts given has
**     a route.  Full zones need the explicit route (or a symmetrical one
**     the other way); Floyd, Dijkstra and DijkstraCache zones need a path
**     through their routes; zones SimGrid routes by itself (Cluster,
**     Star, Vivaldi, Wifi, ...) are accepted.  Across zones the path goes
**     through zoneRoutes and their gateways, recursively, as SimGrid's.
*/
#ifndef TS_PLATFORM_CHECK_H
#define TS_PLATFORM_CHECK_H

#include <stddef.h>

#include "trainsim.h"

/* Deepest element nesting accepted (the platform element counts 1).
** SimGrid 3.32 crashed on 1000 nested zones; a real platform nests a few. */
#define TS_PLATFORM_MAX_DEPTH 64

typedef struct ts_platform ts_platform_t;

/* Reads and checks the platform file at path (structure only, no routes).
** Returns a new platform (free it with ts_platform_free) or NULL with err
** set: EX_NOINPUT when the file cannot be read, EX_DATAERR with the
** one-line message otherwise. */
ts_platform_t *ts_platform_load(const char *path, ts_err_t *err);

/* The same on n bytes in memory; name is the file name used in messages.
** It never aborts, reads out of bounds or loops on any bytes (the fuzz
** target's contract); memory grows with the input, and out of memory
** exits as ts__xmalloc does. */
ts_platform_t *ts_platform_parse(const char *name, const char *data, size_t n, ts_err_t *err);

/* Checks that every ordered pair of distinct names in hosts[0..n) has a
** route.  Returns 0, or EX_DATAERR with err naming the zone (file, line)
** and the pair; a name that is no host or router of the platform is an
** error too.  The platform caches searches and is not thread-safe. */
int ts_platform_check_routes(ts_platform_t *p, const char *const *hosts, int n, ts_err_t *err);

/* Frees p (NULL is fine). */
void ts_platform_free(ts_platform_t *p);

/* ts_platform_load, then ts_platform_check_routes on hosts_used when
** n_used > 0, then ts_platform_free.  Returns 0 or the error code. */
int ts_platform_check(const char *path, const char *const *hosts_used, int n_used, ts_err_t *err);

#endif
