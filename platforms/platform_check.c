/*
** platform_check.c: reads a SimGrid platform file with expat and checks
** its structure before SimGrid sees it: well-formed XML, bounded nesting,
** unique ids, links and endpoints that exist, no route declared twice,
** numbers SimGrid can parse (platform_check.h lists the rules).  The route
** search between hosts is in platform_check_routes.c.
*/
#include <errno.h>
#include <expat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "platform_check_internal.h"
#include "ts_internal.h"

/* Clusters larger than this are refused (SimGrid would build them all). */
#define PC_MAX_CLUSTER 65536 /* hosts of one cluster: checking and fuzzing stay fast */

typedef struct pc_parse {
  XML_Parser xp;
  ts_platform_t *p;
  ts_err_t *err;
  int depth;
  int zone_at[TS_PLATFORM_MAX_DEPTH + 2]; /* the enclosing zone at each depth */
  int route;                             /* the route being read, or -1 */
  bool in_route;                         /* inside any route element */
} pc_parse_t;

const char *ts__pc_esc(const char *s, char *out, size_t cap) {
  size_t k = 0;
  for (; s && *s && k + 5 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
      k += (size_t)snprintf(out + k, cap - k, "\\x%02x", c);
    else
      out[k++] = (char)c;
  }
  out[k] = 0;
  return out;
}

/* Reports the first error, "FILE:LINE: <elem id="...">: what", and stops. */
static void fail(pc_parse_t *ps, int line, const char *elem, const char *what) {
  if (ps->err->code) return;
  char n[256];
  ts_err_set(ps->err, EX_DATAERR, "%s:%d: <%s>: %s", ts__pc_esc(ps->p->name, n, sizeof n), line,
             elem, what);
  if (ps->xp) XML_StopParser(ps->xp, XML_FALSE);
}

static const char *attr(const char **a, const char *name) {
  for (; a[0]; a += 2)
    if (strcmp(a[0], name) == 0) return a[1];
  return NULL;
}

/* ---- numbers with SimGrid's units -------------------------------------- */

/* The multiplier of unit for kind 'f' (speed), 'b' (bandwidth), 't' (time);
** 0 when SimGrid 3.32 does not know the unit.  An empty unit is SimGrid's
** default one (it warns but accepts). */
static double unit_mul(const char *u, char kind) {
  static const char *const dec = "kMGTPEZY";
  static const char *const bin[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  static const char *const longp[] = {"kilo", "mega", "giga", "tera", "peta", "exa", "zeta", "yotta"};
  if (!*u) return 1;
  if (kind == 't') {
    static const struct { const char *u; double m; } T[] = {
        {"w", 604800}, {"d", 86400}, {"h", 3600}, {"m", 60},    {"s", 1},
        {"ms", 1e-3},  {"us", 1e-6}, {"ns", 1e-9}, {"ps", 1e-12}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
      if (strcmp(u, T[i].u) == 0) return T[i].m;
    return 0;
  }
  const char *bases[2] = {kind == 'f' ? "f" : "Bps", kind == 'f' ? "flops" : "bps"};
  double base_m[2] = {1, kind == 'f' ? 1 : 0.125};
  for (int b = 0; b < 2; b++) {
    size_t lu = strlen(u), lb = strlen(bases[b]);
    if (lu < lb || strcmp(u + lu - lb, bases[b]) != 0) continue;
    size_t lp = lu - lb;
    if (lp == 0) return base_m[b];
    double m = base_m[b];
    for (int i = 0; i < 8; i++) {
      m *= 1000;
      bool longform = kind == 'f' && b == 1;
      if (!longform && lp == 1 && u[0] == dec[i]) return m;
      if (longform && strlen(longp[i]) == lp && strncmp(u, longp[i], lp) == 0) return m;
    }
    if (kind == 'b') {
      m = base_m[b];
      for (int i = 0; i < 8; i++) {
        m *= 1024;
        if (lp == 2 && strncmp(u, bin[i], 2) == 0) return m;
      }
    }
  }
  return 0;
}

/* Parses one value (no list) into *v; false when SimGrid would refuse it. */
static bool parse_one(const char *s, size_t len, char kind, double *v) {
  char buf[128];
  while (len && (*s == ' ' || *s == '\t')) s++, len--;
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  if (len == 0 || len >= sizeof buf) return false;
  memcpy(buf, s, len);
  buf[len] = 0;
  char *end;
  errno = 0;
  double x = strtod(buf, &end);
  if (end == buf || errno == ERANGE) return false;
  double m = unit_mul(end, kind);
  if (m == 0) return false;
  *v = x * m;
  return isfinite(*v);
}

/* Checks attribute name of elem: a value, or a list separated by seps,
** each finite after its unit, > 0 (positive) or >= 0. */
static void check_number(pc_parse_t *ps, int line, const char *elem, const char **a,
                         const char *name, char kind, const char *seps, bool required,
                         bool positive) {
  const char *s = attr(a, name);
  char what[512], e[160];
  if (!s) {
    if (required) {
      snprintf(what, sizeof what, "missing attribute %s", name);
      fail(ps, line, elem, what);
    }
    return;
  }
  static const char *const example[] = {"100Gf", "25GBps", "1us"};
  const char *ex = example[kind == 'f' ? 0 : kind == 'b' ? 1 : 2];
  for (;;) {
    size_t len = seps ? strcspn(s, seps) : strlen(s);
    double v = 0;
    /* Rates in [TS__RATE_MIN, TS__RATE_MAX]; times 0 or in [TS__LATENCY_MIN,
    ** TS__SECONDS_MAX]: SimGrid's solver aborts or stalls outside them. */
    bool rate = kind == 'f' || kind == 'b';
    if (!parse_one(s, len, kind, &v) || (positive ? !(v > 0) : !(v >= 0)) ||
        !(rate ? v >= TS__RATE_MIN && v <= TS__RATE_MAX
               : v == 0 || (v >= TS__LATENCY_MIN && v <= TS__SECONDS_MAX))) {
      snprintf(what, sizeof what, "%s=\"%s\": not a %s SimGrid reads (e.g. %s)%s", name,
               ts__pc_esc(s, e, sizeof e), kind == 'f' ? "speed" : kind == 'b' ? "bandwidth" : "time",
               ex, rate ? ", in [1, 1e30] per second" : ", 0 or in [1e-12 s, 1e6 s]");
      fail(ps, line, elem, what);
      return;
    }
    if (!seps || !s[len]) return;
    s += len + 1;
  }
}

/* ---- what the elements declare ----------------------------------------- */

#define GROW(arr, n, cap) \
  ((n) == (cap) ? (void)((arr) = ts__xrealloc((arr), (size_t)((cap) = (cap) ? 2 * (cap) : 16) * sizeof *(arr))) : (void)0)

static int add_np(pc_parse_t *ps, const char *id, int line, char type) {
  ts_platform_t *p = ps->p;
  GROW(p->np, p->n_np, p->cap_np);
  p->np[p->n_np] = (pc_np_t){ts__xstrdup(id), line, type, ps->zone_at[ps->depth - 1], -1, -1};
  return p->n_np++;
}

static void add_zone(pc_parse_t *ps, const char *id, int line, const char *routing) {
  ts_platform_t *p = ps->p;
  int np = add_np(ps, id, line, 'z');
  GROW(p->zones, p->n_zones, p->cap_zones);
  pc_zone_t *z = &p->zones[p->n_zones];
  memset(z, 0, sizeof *z);
  z->np = np;
  z->parent = ps->zone_at[ps->depth - 1];
  z->line = line;
  snprintf(z->routing, sizeof z->routing, "%s", routing ? routing : "Full");
  z->kind = strcmp(z->routing, "Full") == 0 ? PC_FULL
            : (strcmp(z->routing, "Floyd") == 0 || strcmp(z->routing, "Dijkstra") == 0 ||
               strcmp(z->routing, "DijkstraCache") == 0)
                ? PC_GRAPH
                : PC_AUTO;
  p->np[np].self = p->n_zones;
  ps->zone_at[ps->depth] = p->n_zones++;
}

static void add_link(pc_parse_t *ps, const char *id, int line) {
  ts_platform_t *p = ps->p;
  GROW(p->links, p->n_links, p->cap_links);
  p->links[p->n_links++] = (pc_link_t){ts__xstrdup(id), line};
}

static void add_ref(pc_parse_t *ps, const char *id, int line, const char *elem) {
  ts_platform_t *p = ps->p;
  GROW(p->refs, p->n_refs, p->cap_refs);
  pc_ref_t *r = &p->refs[p->n_refs++];
  r->id = ts__xstrdup(id);
  r->line = line;
  snprintf(r->elem, sizeof r->elem, "%s", elem);
  r->dir = 'N';
}

/* A cluster: a zone of hosts PREFIX<n>SUFFIX for n in its radical
** ("0-7,9"), a router, and a private link per host. */
static void add_cluster(pc_parse_t *ps, const char **a, int line, const char *id) {
  const char *prefix = attr(a, "prefix"), *suffix = attr(a, "suffix"), *radical = attr(a, "radical");
  if (!prefix) prefix = "";
  if (!suffix) suffix = "";
  if (!radical) return fail(ps, line, "cluster", "missing attribute radical");
  check_number(ps, line, "cluster", a, "speed", 'f', ",", true, true);
  check_number(ps, line, "cluster", a, "bw", 'b', NULL, true, true);
  check_number(ps, line, "cluster", a, "lat", 't', NULL, true, false);
  check_number(ps, line, "cluster", a, "bb_bw", 'b', NULL, false, true);
  check_number(ps, line, "cluster", a, "bb_lat", 't', NULL, false, false);
  if (ps->err->code) return;
  add_zone(ps, id, line, "Cluster");
  ps->depth++; /* the hosts are inside the cluster's zone (zone_at[depth - 1]) */
  long total = 0;
  for (const char *s = radical; *s && !ps->err->code;) {
    char *end;
    long lo = strtol(s, &end, 10), hi = lo;
    if (end == s) break;
    if (*end == '-') {
      const char *t = end + 1;
      hi = strtol(t, &end, 10);
      if (end == t) break;
    }
    /* hi - lo, not hi - lo + 1: that would overflow at hi = LONG_MAX */
    if (lo < 0 || hi < lo || hi - lo >= PC_MAX_CLUSTER - total) {
      fail(ps, line, "cluster", "radical: ranges must read LO-HI with 0 <= LO <= HI, at most 65536 hosts");
      break;
    }
    total += hi - lo + 1;
    for (long i = 0; i <= hi - lo; i++) { /* k++ past hi = LONG_MAX would overflow */
      long k = lo + i;
      char name[512], lname[512];
      snprintf(name, sizeof name, "%s%ld%s", prefix, k, suffix);
      add_np(ps, name, line, 'h');
      snprintf(lname, sizeof lname, "%s_link_%ld", id, k);
      add_link(ps, lname, line);
    }
    s = end;
    if (*s == ',') s++;
    else if (*s) break;
  }
  char rname[512];
  const char *router = attr(a, "router_id");
  snprintf(rname, sizeof rname, "%s%s_router%s", prefix, id, suffix);
  add_np(ps, router ? router : rname, line, 'r');
  if (attr(a, "bb_bw")) {
    snprintf(rname, sizeof rname, "%s_backbone", id);
    add_link(ps, rname, line);
  }
  ps->depth--;
}

/* route, zoneRoute, ASroute and their bypass forms. */
static bool is_route(const char *name) {
  static const char *const R[] = {"route", "zoneRoute", "ASroute", "bypassRoute", "bypassZoneRoute",
                                  "bypassASroute"};
  for (size_t i = 0; i < sizeof R / sizeof R[0]; i++)
    if (strcmp(name, R[i]) == 0) return true;
  return false;
}

static void start_route(pc_parse_t *ps, const char *name, const char **a, int line) {
  ts_platform_t *p = ps->p;
  bool bypass = strncmp(name, "bypass", 6) == 0;
  bool zr = strcmp(name, "route") != 0 && strcmp(name, "bypassRoute") != 0;
  const char *src = attr(a, "src"), *dst = attr(a, "dst"), *sym = attr(a, "symmetrical");
  const char *gs = attr(a, "gw_src"), *gd = attr(a, "gw_dst");
  ps->in_route = true;
  if (!src || !dst) return fail(ps, line, name, "missing attribute src or dst");
  if (zr && (!gs || !gd)) return fail(ps, line, name, "missing attribute gw_src or gw_dst");
  if (ps->zone_at[ps->depth - 1] < 0) return fail(ps, line, name, "a route must be inside a zone");
  GROW(p->routes, p->n_routes, p->cap_routes);
  pc_route_t *r = &p->routes[p->n_routes];
  bool symmetrical = !sym || (strcmp(sym, "NO") != 0 && strcmp(sym, "no") != 0);
  *r = (pc_route_t){ps->zone_at[ps->depth - 1], line, 0, zr, symmetrical, bypass, ts__xstrdup(src), ts__xstrdup(dst),
                    zr ? ts__xstrdup(gs) : NULL, zr ? ts__xstrdup(gd) : NULL, p->n_refs};
  ps->route = p->n_routes++;
}

static void on_start(void *ud, const char *name, const char **a) {
  pc_parse_t *ps = ud;
  if (ps->err->code) return;
  int line = (int)XML_GetCurrentLineNumber(ps->xp);
  const char *id = attr(a, "id");
  char elem[160], e[128];
  if (id) snprintf(elem, sizeof elem, "%s id=\"%s\"", name, ts__pc_esc(id, e, sizeof e));
  else snprintf(elem, sizeof elem, "%s", name);
  ps->depth++;
  if (ps->depth > TS_PLATFORM_MAX_DEPTH) {
    char what[128];
    snprintf(what, sizeof what, "elements nest deeper than %d levels", TS_PLATFORM_MAX_DEPTH);
    return fail(ps, line, elem, what);
  }
  ps->zone_at[ps->depth] = ps->zone_at[ps->depth - 1];
  if (ps->depth == 1 && strcmp(name, "platform") != 0)
    return fail(ps, line, elem, "the top element must be <platform>");
  bool needs_id = !strcmp(name, "zone") || !strcmp(name, "AS") || !strcmp(name, "host") ||
                  !strcmp(name, "router") || !strcmp(name, "link") || !strcmp(name, "cluster") ||
                  !strcmp(name, "peer") || !strcmp(name, "backbone") || !strcmp(name, "link_ctn");
  if (needs_id && !id) return fail(ps, line, name, "missing attribute id");
  if (!strcmp(name, "zone") || !strcmp(name, "AS")) {
    add_zone(ps, id, line, attr(a, "routing"));
  } else if (!strcmp(name, "host")) {
    check_number(ps, line, elem, a, "speed", 'f', ",", true, true);
    add_np(ps, id, line, 'h');
  } else if (!strcmp(name, "router")) {
    add_np(ps, id, line, 'r');
  } else if (!strcmp(name, "peer")) {
    check_number(ps, line, elem, a, "speed", 'f', ",", true, true);
    check_number(ps, line, elem, a, "bw_in", 'b', NULL, true, true);
    check_number(ps, line, elem, a, "bw_out", 'b', NULL, true, true);
    check_number(ps, line, elem, a, "lat", 't', NULL, false, false);
    add_np(ps, id, line, 'p');
  } else if (!strcmp(name, "link") || !strcmp(name, "backbone")) {
    check_number(ps, line, elem, a, "bandwidth", 'b', ";,", true, true);
    check_number(ps, line, elem, a, "latency", 't', NULL, false, false);
    add_link(ps, id, line);
  } else if (!strcmp(name, "cluster")) {
    add_cluster(ps, a, line, id);
  } else if (is_route(name)) {
    start_route(ps, name, a, line);
  } else if (!strcmp(name, "link_ctn")) {
    const char *dir = attr(a, "direction");
    if (!ps->in_route) return fail(ps, line, elem, "link_ctn outside a route");
    if (dir && strcmp(dir, "UP") && strcmp(dir, "DOWN") && strcmp(dir, "NONE"))
      return fail(ps, line, elem, "direction must be UP, DOWN or NONE");
    add_ref(ps, id, line, "link_ctn");
    ps->p->refs[ps->p->n_refs - 1].dir = !dir ? 'N' : dir[0];
    if (ps->route >= 0) ps->p->routes[ps->route].n_links++;
  } else if (!strcmp(name, "host_link")) {
    const char *up = attr(a, "up"), *down = attr(a, "down");
    if (!up || !down) return fail(ps, line, elem, "missing attribute up or down");
    add_ref(ps, up, line, "host_link");
    add_ref(ps, down, line, "host_link");
  }
}

static void on_end(void *ud, const char *name) {
  pc_parse_t *ps = ud;
  if (ps->err->code) return;
  if (is_route(name)) ps->route = -1, ps->in_route = false;
  ps->depth--;
}

/* ---- after the parse: names, references, routes ------------------------- */

static int cmp_np(const void *a, const void *b, void *pp) {
  const ts_platform_t *p = pp;
  int i = *(const int *)a, j = *(const int *)b;
  int c = strcmp(p->np[i].id, p->np[j].id);
  return c ? c : (i > j) - (i < j);
}

static int cmp_link(const void *a, const void *b) {
  const pc_link_t *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int cmp_edge(const void *a, const void *b) {
  const pc_edge_t *x = a, *y = b;
  if (x->zone != y->zone) return x->zone < y->zone ? -1 : 1;
  if (x->from != y->from) return x->from < y->from ? -1 : 1;
  if (x->to != y->to) return x->to < y->to ? -1 : 1;
  return (x->route > y->route) - (x->route < y->route);
}

int ts__pc_link(const ts_platform_t *p, const char *id) {
  int lo = 0, hi = p->n_links;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (strcmp(p->links[mid].id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < p->n_links && strcmp(p->links[lo].id, id) == 0 ? lo : -1;
}

int ts__pc_find(const ts_platform_t *p, const char *id) {
  int lo = 0, hi = p->n_np - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, k = p->by_name[mid];
    int c = strcmp(p->np[k].id, id);
    if (c == 0) {
      while (mid > 0 && strcmp(p->np[p->by_name[mid - 1]].id, id) == 0) mid--;
      return p->by_name[mid];
    }
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static const char *np_elem(char type) {
  return type == 'h' ? "host" : type == 'r' ? "router" : type == 'p' ? "peer" : "zone";
}

/* True when netpoint i lies inside zone z (at any depth). */
static bool in_zone(const ts_platform_t *p, int i, int z) {
  for (int c = p->np[i].zone; c >= 0; c = p->zones[c].parent)
    if (c == z) return true;
  return false;
}

/* Reports the route r: fmt takes the two names a and b (escaped). */
static int route_fail(ts_platform_t *p, const pc_route_t *r, ts_err_t *err, const char *fmt,
                      const char *a, const char *b) {
  char n[256], s[128], d[128], x[128], y[128], what[640];
  snprintf(what, sizeof what, fmt, ts__pc_esc(a, x, sizeof x), ts__pc_esc(b, y, sizeof y));
  return ts_err_set(err, EX_DATAERR, "%s:%d: <%s src=\"%s\" dst=\"%s\">: %s", ts__pc_esc(p->name, n, sizeof n),
                    r->line, r->zone_route ? "zoneRoute" : "route", ts__pc_esc(r->src, s, sizeof s),
                    ts__pc_esc(r->dst, d, sizeof d), what);
}

/* Checks one route's endpoints and gateways; returns 0 or the error. */
static int check_route(ts_platform_t *p, const pc_route_t *r, int ri, ts_err_t *err) {
  const char *names[4] = {r->src, r->dst, r->gw_src, r->gw_dst};
  const char *roles[4] = {"src", "dst", "gw_src", "gw_dst"};
  int k[4];
  char what[96];
  for (int i = 0; i < (r->zone_route ? 4 : 2); i++) {
    k[i] = ts__pc_find(p, names[i]);
    snprintf(what, sizeof what, "%s '%%s' is no host, router or zone of the platform%%s", roles[i]);
    if (k[i] < 0) return route_fail(p, r, err, what, names[i], "");
  }
  if (r->bypass) return 0;
  if (r->n_links == 0) return route_fail(p, r, err, "a route needs at least one link_ctn%s%s", "", "");
  const char *zone = p->np[p->zones[r->zone].np].id;
  for (int i = 0; i < 2; i++) {
    const pc_np_t *e = &p->np[k[i]];
    snprintf(what, sizeof what, "%s '%%s' is not directly in zone '%%s'", roles[i]);
    if (e->zone != r->zone) return route_fail(p, r, err, what, names[i], zone);
    if (!r->zone_route && e->type == 'z')
      return route_fail(p, r, err, "'%s' is a zone: routes between zones are <zoneRoute>s%s", names[i], "");
    if (r->zone_route && e->type != 'z')
      return route_fail(p, r, err, "'%s' is a %s: a zoneRoute joins zones (use <route>)", names[i],
                        np_elem(e->type));
  }
  if (r->zone_route) {
    for (int i = 2; i < 4; i++) {
      const pc_np_t *g = &p->np[k[i]];
      snprintf(what, sizeof what, "%s '%%s' is not inside zone '%%s'", roles[i]);
      if (g->type == 'z') return route_fail(p, r, err, "gateway '%s' is a zone, not a host or router%s", names[i], "");
      if (!in_zone(p, k[i], p->np[k[i - 2]].self)) return route_fail(p, r, err, what, names[i], names[i - 2]);
    }
    if (k[2] == k[3]) return route_fail(p, r, err, "gw_src and gw_dst are both '%s'%s", names[2], "");
  }
  int gs = r->zone_route ? k[2] : k[0], gd = r->zone_route ? k[3] : k[1];
  p->edges[p->n_edges++] = (pc_edge_t){r->zone, k[0], k[1], gs, gd, ri, false};
  if (r->sym) p->edges[p->n_edges++] = (pc_edge_t){r->zone, k[1], k[0], gd, gs, ri, true};
  return 0;
}

/* Unique ids, existing links, valid routes, no pair routed twice. */
static int resolve(ts_platform_t *p, ts_err_t *err) {
  char n[256], a[128];
  ts__pc_esc(p->name, n, sizeof n);
  p->by_name = ts__xmalloc((size_t)(p->n_np ? p->n_np : 1) * sizeof *p->by_name);
  for (int i = 0; i < p->n_np; i++) p->by_name[i] = i;
  if (p->n_np > 1) qsort_r(p->by_name, (size_t)p->n_np, sizeof *p->by_name, cmp_np, p);
  for (int i = 1; i < p->n_np; i++) {
    const pc_np_t *x = &p->np[p->by_name[i - 1]], *y = &p->np[p->by_name[i]];
    if (strcmp(x->id, y->id) == 0)
      return ts_err_set(err, EX_DATAERR, "%s:%d: <%s id=\"%s\">: id already used by the <%s> at line %d", n,
                        y->line, np_elem(y->type), ts__pc_esc(y->id, a, sizeof a), np_elem(x->type), x->line);
  }
  if (p->n_links > 1) qsort(p->links, (size_t)p->n_links, sizeof *p->links, cmp_link);
  for (int i = 1; i < p->n_links; i++)
    if (strcmp(p->links[i - 1].id, p->links[i].id) == 0)
      return ts_err_set(err, EX_DATAERR, "%s:%d: <link id=\"%s\">: id already used by the <link> at line %d", n,
                        p->links[i].line, ts__pc_esc(p->links[i].id, a, sizeof a), p->links[i - 1].line);
  for (int i = 0; i < p->n_refs; i++)
    if (ts__pc_link(p, p->refs[i].id) < 0)
      return ts_err_set(err, EX_DATAERR, "%s:%d: <%s id=\"%s\">: no link '%s' in the platform", n,
                        p->refs[i].line, p->refs[i].elem, ts__pc_esc(p->refs[i].id, a, sizeof a), a);
  p->edges = ts__xmalloc((size_t)(2 * p->n_routes + 1) * sizeof *p->edges);
  for (int i = 0; i < p->n_routes; i++)
    if (check_route(p, &p->routes[i], i, err)) return err->code;
  qsort(p->edges, (size_t)p->n_edges, sizeof *p->edges, cmp_edge);
  for (int i = 1; i < p->n_edges; i++) {
    const pc_edge_t *x = &p->edges[i - 1], *y = &p->edges[i];
    if (x->zone != y->zone || x->from != y->from || x->to != y->to) continue;
    const pc_route_t *r = &p->routes[y->route], *q = &p->routes[x->route];
    char what[512];
    snprintf(what, sizeof what, "the route from '%%s' to '%%s' is already declared at line %d%s", q->line,
             x->reverse || y->reverse ? " (a symmetrical route declares both directions; "
                                        "write symmetrical=\"NO\" on one-way routes)"
                                      : "");
    return route_fail(p, r, err, what, p->np[y->from].id, p->np[y->to].id);
  }
  ts__pc_build_graph(p);
  return 0;
}

/* ---- entry points --------------------------------------------------------- */

void ts_platform_free(ts_platform_t *p) {
  if (!p) return;
  for (int i = 0; i < p->n_np; i++) free(p->np[i].id);
  for (int i = 0; i < p->n_zones; i++) {
    if (p->zones[i].pred)
      for (int v = 0; v < p->zones[i].nv; v++) free(p->zones[i].pred[v]);
    free(p->zones[i].pred);
    free(p->zones[i].off);
  }
  for (int i = 0; i < p->n_routes; i++) {
    free(p->routes[i].src);
    free(p->routes[i].dst);
    free(p->routes[i].gw_src);
    free(p->routes[i].gw_dst);
  }
  for (int i = 0; i < p->n_links; i++) free(p->links[i].id);
  for (int i = 0; i < p->n_refs; i++) free(p->refs[i].id);
  free(p->np);
  free(p->by_name);
  free(p->zones);
  free(p->routes);
  free(p->edges);
  free(p->links);
  free(p->refs);
  free(p->name);
  free(p);
}

ts_platform_t *ts_platform_parse(const char *name, const char *data, size_t n, ts_err_t *err) {
  ts_err_t e = {0};
  ts_platform_t *p = ts__xcalloc(1, sizeof *p);
  p->name = ts__xstrdup(name);
  pc_parse_t ps = {.p = p, .err = &e, .route = -1};
  ps.zone_at[0] = -1;
  ps.xp = XML_ParserCreate(NULL);
  if (!ps.xp) {
    ts_platform_free(p);
    ts_err_set(err, EX_OSERR, "out of memory (expat parser)");
    return NULL;
  }
  XML_SetUserData(ps.xp, &ps);
  XML_SetElementHandler(ps.xp, on_start, on_end);
  enum XML_Status st = XML_STATUS_OK;
  const size_t chunk = 1 << 24;
  do {
    size_t k = n < chunk ? n : chunk;
    st = XML_Parse(ps.xp, data, (int)k, k == n);
    data += k;
    n -= k;
  } while (st == XML_STATUS_OK && n > 0);
  if (st != XML_STATUS_OK && !e.code) {
    char nm[256];
    ts_err_set(&e, EX_DATAERR, "%s:%lu: not well-formed XML (column %lu): %s", ts__pc_esc(name, nm, sizeof nm),
               (unsigned long)XML_GetCurrentLineNumber(ps.xp),
               (unsigned long)XML_GetCurrentColumnNumber(ps.xp) + 1,
               XML_ErrorString(XML_GetErrorCode(ps.xp)));
  }
  XML_ParserFree(ps.xp);
  if (!e.code) resolve(p, &e);
  if (e.code) {
    *err = e;
    ts_platform_free(p);
    return NULL;
  }
  return p;
}

ts_platform_t *ts_platform_load(const char *path, ts_err_t *err) {
  size_t n = 0;
  char *data = ts__read_file(path, &n);
  if (!data) {
    ts_err_set(err, EX_NOINPUT, "%s: cannot read the platform: %s", path, strerror(errno));
    return NULL;
  }
  ts_platform_t *p = ts_platform_parse(path, data, n, err);
  free(data);
  return p;
}

int ts_platform_check(const char *path, const char *const *hosts_used, int n_used, ts_err_t *err) {
  ts_platform_t *p = ts_platform_load(path, err);
  if (!p) return err->code;
  int rc = n_used > 0 ? ts_platform_check_routes(p, hosts_used, n_used, err) : 0;
  ts_platform_free(p);
  return rc;
}
