/*
** test_topology.c: the fat trees of the platform generator
** (platforms/platform_topo.c), loaded into SimGrid.
**
** Checks, for rail-optimised and plain fat trees of two and three tiers
** and for NVL72 domains: the links per class and their bandwidths (trunks
** = ports x NIC / ratio), the host properties node and nvlink_domain, the
** route of chosen pairs link by link (NVLink inside a domain, then the
** tiers a pair must cross, the direct path winning its ties with NVLink
** detours), the loading time of 1,024- and 3,072-GPU platforms, and a
** simulation where a 2:1 leaf (or a 4:1 spine tier) slows exactly the
** flows that share its uplink while the others keep their speed.  SimGrid
** can be initialised once per process, so every check runs in a forked
** child whose exit status the parent asserts on; the child prints what
** went wrong on stderr.  Runs from the repository root.
*/
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <simgrid/actor.h>
#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <simgrid/mailbox.h>
#include <xbt/dynar.h>

#include "platform_gen.h"
#include "tsunit.h"

/* ---- helpers ------------------------------------------------------- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static ts_platgen_t preset(const char *name) {
  ts_platgen_t g;
  memset(&g, 0, sizeof g);
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_platgen_preset(name, &g, &err), 0);
  return g;
}

/* Writes g's XML to a new temporary file; returns 0. */
static int write_platform(const ts_platgen_t *g, char *path, size_t cap) {
  snprintf(path, cap, "/tmp/ts-topo-XXXXXX.xml");
  int fd = mkstemps(path, 4);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) return -1;
  int rc = ts_platgen_write(g, f);
  return fclose(f) || rc ? -1 : 0;
}

/* Runs fn(arg) in a forked child; returns its exit status. */
static int in_child(int (*fn)(const void *), const void *arg) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int rc = fn(arg);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The loading limits hold for plain builds; AddressSanitizer's malloc
** makes SimGrid's parser several times slower (3 s measured for 3,072
** GPUs on a loaded 2-core machine), so sanitizer builds allow 5x. */
#if defined(__SANITIZE_ADDRESS__)
#define LOAD_SLACK 5.0
#else
#define LOAD_SLACK 1.0
#endif

static int failures;
#define FAIL(...)                             \
  do {                                        \
    fprintf(stderr, "\n  FAIL: " __VA_ARGS__); \
    fprintf(stderr, "\n");                    \
    failures++;                               \
  } while (0)

static sg_host_t host_of(int node, int gpu) {
  char name[64];
  snprintf(name, sizeof name, "node%d-gpu%d", node, gpu);
  return sg_host_by_name(name);
}

/* Loads g into SimGrid (CM02, no cross traffic, no gamma); the seconds it
** took into *load. */
static int load(const ts_platgen_t *g, double *load_s) {
  char path[64];
  if (write_platform(g, path, sizeof path)) {
    FAIL("cannot write the platform");
    return 1;
  }
  static char a0[] = "test_topology", a1[] = "--cfg=network/model:CM02",
              a2[] = "--cfg=network/crosstraffic:0", a3[] = "--cfg=network/TCP-gamma:0",
              a4[] = "--log=root.thresh:warning";
  char *argv[] = {a0, a1, a2, a3, a4, NULL};
  int argc = 5;
  simgrid_init(&argc, argv);
  double t0 = now_s();
  simgrid_load_platform(path);
  *load_s = now_s() - t0;
  unlink(path);
  return 0;
}

/* ---- expected routes -------------------------------------------------- */

static const ts_platgen_t *cur;

typedef struct pair { int sn, sg, dn, dg; } pair_t;

/* The route the model promises for p (platform_gen.h): names, count, the
** latency and the bandwidth alone. */
static int expected(const pair_t *p, char names[10][64], double *lat, double *bw) {
  const ts_platgen_t *g = cur;
  const char *port = g->pcie_only ? "pcie" : "nvlink";
  if (ts_platgen_domain(g, p->sn) == ts_platgen_domain(g, p->dn)) {
    snprintf(names[0], 64, "%s-node%d-gpu%d_UP", port, p->sn, p->sg);
    snprintf(names[1], 64, "%s-node%d-gpu%d_DOWN", port, p->dn, p->dg);
    *lat = 2 * g->nvlink_lat;
    *bw = g->nvlink_bw;
    return 2;
  }
  int la = ts_platgen_leaf(g, p->sn, p->sg), lb = ts_platgen_leaf(g, p->dn, p->dg), n = 0;
  int pa = ts_platgen_pod(g, la), pb = ts_platgen_pod(g, lb);
  snprintf(names[n++], 64, "pcie-node%d-nic%d_UP", p->sn, p->sg);
  snprintf(names[n++], 64, "ib-node%d-gpu%d_UP", p->sn, p->sg);
  *lat = 2 * (g->nic_pcie_lat + g->ib_lat);
  *bw = fmin(g->nic_pcie_bw, g->ib_bw);
  if (la != lb) {
    snprintf(names[n++], 64, "leaf%d-spine_UP", la);
    if (g->tiers == 3 && pa != pb) {
      snprintf(names[n++], 64, "spine%d-core_UP", pa);
      snprintf(names[n++], 64, "spine%d-core_DOWN", pb);
      *lat += 2 * g->fabric_lat;
      *bw = fmin(*bw, ts_platgen_spine_trunk_bw(g));
    }
    snprintf(names[n++], 64, "leaf%d-spine_DOWN", lb);
    *lat += 2 * g->fabric_lat;
    *bw = fmin(*bw, ts_platgen_leaf_trunk_bw(g));
  }
  snprintf(names[n++], 64, "ib-node%d-gpu%d_DOWN", p->dn, p->dg);
  snprintf(names[n++], 64, "pcie-node%d-nic%d_DOWN", p->dn, p->dg);
  return n;
}

static const pair_t *cur_pairs;
static int cur_n_pairs;

/* Routes exist once simgrid_run seals the platform: checked from an actor. */
static void route_actor(int argc, char **argv) {
  (void)argc;
  (void)argv;
  xbt_dynar_t links = xbt_dynar_new(sizeof(sg_link_t), NULL);
  for (int i = 0; i < cur_n_pairs; i++) {
    const pair_t *p = &cur_pairs[i];
    sg_host_t a = host_of(p->sn, p->sg), b = host_of(p->dn, p->dg);
    char names[10][64], want[700] = "", got[700] = "";
    double lat, bw;
    int n = expected(p, names, &lat, &bw);
    for (int k = 0; k < n; k++) snprintf(want + strlen(want), sizeof want - strlen(want), " %s", names[k]);
    xbt_dynar_reset(links);
    sg_host_get_route(a, b, links);
    unsigned k;
    sg_link_t l;
    xbt_dynar_foreach (links, k, l)
      snprintf(got + strlen(got), sizeof got - strlen(got), " %s", sg_link_get_name(l));
    if (strcmp(got, want)) FAIL("route %s -> %s:%s, expected%s", sg_host_get_name(a), sg_host_get_name(b), got, want);
    if (fabs(sg_host_get_route_latency(a, b) - lat) > 1e-12 * lat)
      FAIL("route %s -> %s: latency %.17g, expected %.17g", sg_host_get_name(a),
           sg_host_get_name(b), sg_host_get_route_latency(a, b), lat);
    if (sg_host_get_route_bandwidth(a, b) != bw)
      FAIL("route %s -> %s: bandwidth %.17g, expected %.17g", sg_host_get_name(a),
           sg_host_get_name(b), sg_host_get_route_bandwidth(a, b), bw);
  }
  xbt_dynar_free(&links);
}

typedef struct shape_check {
  ts_platgen_t g;
  const pair_t *pairs;
  int n_pairs;
  double max_load_s; /* 0: not checked */
} shape_check_t;

/* The links whose names match the glob pat (fnmatch). */
static int class_count(const char *pat) {
  size_t n = sg_link_count(), c = 0;
  sg_link_t *all = sg_link_list();
  for (size_t i = 0; i < n; i++) c += fnmatch(pat, sg_link_get_name(all[i]), 0) == 0;
  free(all);
  return (int)c;
}

static int shape_child(const void *arg) {
  const shape_check_t *c = arg;
  const ts_platgen_t *g = cur = &c->g;
  double load_s;
  if (load(g, &load_s)) return 1;
  printf("  [%s %d x %d: load %.3f s] ", g->name, g->nodes, g->gpus, load_s);
  if (c->max_load_s > 0 && load_s > c->max_load_s * LOAD_SLACK)
    FAIL("loading %d hosts took %.3f s (limit %.1f s)", g->nodes * g->gpus, load_s,
         c->max_load_s * LOAD_SLACK);
  if (sg_host_count() != (size_t)g->nodes * (size_t)g->gpus) FAIL("%zu hosts", sg_host_count());
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++) {
      sg_host_t h = host_of(n, k);
      const char *node = h ? sg_host_get_property_value(h, "node") : NULL;
      const char *dom = h ? sg_host_get_property_value(h, "nvlink_domain") : NULL;
      if (!node || atoi(node) != n || !dom || atoi(dom) != ts_platgen_domain(g, n))
        FAIL("node%d-gpu%d: node %s, nvlink_domain %s", n, k, node, dom);
    }
  /* One link per GPU and class, one trunk per leaf (and pod); every link
  ** SPLITDUPLEX (two directions) and in a class. */
  int hosts = g->nodes * g->gpus, leaves = ts_platgen_leaves(g), pods = ts_platgen_pods(g);
  static const char *const classes[] = {"nvlink-node*-gpu*_UP", "pcie-node*-gpu*_UP",
                                        "pcie-node*-nic*_UP",  "ib-node*-gpu*_UP",
                                        "leaf*-spine_UP",      "spine*-core_UP"};
  int want[6] = {g->pcie_only ? 0 : hosts, g->pcie_only ? hosts : 0, hosts, hosts, leaves,
                 g->tiers == 3 ? pods : 0};
  int sum = 0;
  for (int i = 0; i < 6; i++) {
    int got = class_count(classes[i]);
    char down[64];
    snprintf(down, sizeof down, "%.*s_DOWN", (int)strlen(classes[i]) - 3, classes[i]);
    if (got != want[i] || class_count(down) != want[i])
      FAIL("%d links %s (%d %s), expected %d", got, classes[i], class_count(down), down, want[i]);
    sum += 2 * want[i];
  }
  if ((int)sg_link_count() != sum + 1) /* + __loopback__ */
    FAIL("%zu links, expected %d", sg_link_count(), sum + 1);
  char name[64];
  snprintf(name, sizeof name, "leaf%d-spine_UP", leaves - 1);
  sg_link_t t = sg_link_by_name(name);
  if (!t || sg_link_get_bandwidth(t) != ts_platgen_leaf_trunk_bw(g))
    FAIL("%s: bandwidth %.17g, expected %.17g", name, t ? sg_link_get_bandwidth(t) : -1,
         ts_platgen_leaf_trunk_bw(g));
  if (g->tiers == 3) {
    t = sg_link_by_name("spine0-core_DOWN");
    if (!t || sg_link_get_bandwidth(t) != ts_platgen_spine_trunk_bw(g))
      FAIL("spine0-core: bandwidth %.17g, expected %.17g", t ? sg_link_get_bandwidth(t) : -1,
           ts_platgen_spine_trunk_bw(g));
  }
  if (failures) return 1;
  cur_pairs = c->pairs;
  cur_n_pairs = c->n_pairs;
  sg_actor_create("routes", host_of(0, 0), route_actor, 0, NULL);
  double t0 = now_s();
  simgrid_run();
  printf("[%d routes %.4f s] ", c->n_pairs, now_s() - t0);
  return failures ? 1 : 0;
}

static void run_shape(const shape_check_t *c) {
  ts_err_t err = {0};
  int rc = ts_platgen_check(&c->g, &err);
  if (rc) fprintf(stderr, "\n  %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  rc = in_child(shape_child, c);
  if (rc) fprintf(stderr, "\n  SimGrid check of %s exited with %d\n", c->g.name, rc);
  CU_ASSERT_EQUAL(rc, 0);
}

/* ---- tests: shapes and routes ----------------------------------------- */

/* The tiers of a 3-tier rail-optimised SuperPOD of 2 units (40 nodes), at
** 2:1 on the leaves and 4:1 on the spines. */
static void test_superpod_routes(void) {
  ts_platgen_t g = preset("dgx-a100-superpod");
  g.nodes = 40, g.oversub_leaf = 2, g.oversub_spine = 4;
  CU_ASSERT_EQUAL(ts_platgen_leaves(&g), 16);
  CU_ASSERT_EQUAL(ts_platgen_pods(&g), 2);
  CU_ASSERT_EQUAL(ts_platgen_leaf(&g, 21, 3), 11); /* unit 1, rail 3 */
  CU_ASSERT_EQUAL(ts_platgen_leaf_trunk_bw(&g), 20 * 25e9 / 2);
  CU_ASSERT_EQUAL(ts_platgen_spine_trunk_bw(&g), 8 * (20 * 25e9 / 2) / 4);
  static const pair_t pairs[] = {
      {0, 0, 0, 7},   /* one node: NVLink */
      {0, 3, 5, 3},   /* one rail leaf */
      {0, 0, 1, 1},   /* other rail, same unit: spine (a tie with NVLink to GPU 1, then leaf 1) */
      {7, 6, 19, 2},  /* same */
      {0, 0, 20, 0},  /* other unit: core */
      {39, 7, 2, 1},  /* other unit, other rail */
  };
  shape_check_t c = {g, pairs, 6, 0};
  run_shape(&c);
}

/* Without rails: a node's 8 NICs on one 16-port leaf (2 nodes a leaf). */
static void test_no_rails_routes(void) {
  ts_platgen_t g = preset("dgx-h100");
  g.nodes = 6, g.rails = 0, g.leaf_ports = 16, g.oversub_leaf = 3;
  CU_ASSERT_EQUAL(ts_platgen_leaves(&g), 3);
  CU_ASSERT_EQUAL(ts_platgen_leaf(&g, 3, 5), 1);
  static const pair_t pairs[] = {{0, 0, 0, 1}, {0, 0, 1, 0}, {0, 2, 1, 5}, {1, 7, 2, 0}, {5, 0, 0, 7}};
  shape_check_t c = {g, pairs, 5, 0};
  run_shape(&c);
}

/* GB200 NVL72: two racks of 18 trays x 4; NVLink across the trays of a
** rack, the fabric between racks (rail leaves shared by a rack's trays). */
static void test_nvl72_routes(void) {
  ts_platgen_t g = preset("gb200-nvl72");
  g.nodes = 36;
  CU_ASSERT_EQUAL(ts_platgen_domain(&g, 17), 0);
  CU_ASSERT_EQUAL(ts_platgen_domain(&g, 18), 1);
  static const pair_t pairs[] = {
      {0, 0, 17, 0},  /* same rack, same rail leaf: NVLink wins */
      {0, 1, 9, 3},   /* same rack */
      {0, 0, 18, 0},  /* other rack, rail 0 of the other unit */
      {3, 2, 30, 1},  /* other rack, other rail */
  };
  shape_check_t c = {g, pairs, 4, 0};
  run_shape(&c);
}

/* The PCIe star (pcie-4gpu) across nodes and a 3-tier tree without rails. */
static void test_pcie_and_three_tier(void) {
  ts_platgen_t g = preset("pcie-4gpu");
  g.nodes = 20, g.tiers = 3, g.su_nodes = 8, g.oversub_spine = 2; /* 8 nodes a leaf, a pod */
  static const pair_t pairs[] = {{0, 0, 0, 3}, {0, 1, 7, 2}, {0, 0, 8, 0}, {19, 3, 1, 0}};
  CU_ASSERT_EQUAL(ts_platgen_pods(&g), 3);
  shape_check_t c = {g, pairs, 4, 0};
  run_shape(&c);
}

/* 1,024 and 3,072 GPUs load quickly and route (limit 2 s each). */
static void test_scale(void) {
  static const pair_t pairs[] = {{0, 0, 127, 7}, {127, 7, 0, 0}, {64, 3, 64, 4}, {5, 1, 30, 2}, {0, 0, 21, 0}};
  ts_platgen_t g = preset("dgx-a100-superpod");
  g.nodes = 128;
  shape_check_t c = {g, pairs, 5, 2.0};
  run_shape(&c);
  static const pair_t big[] = {{0, 0, 383, 7}, {383, 7, 0, 0}, {200, 3, 200, 4}, {5, 1, 300, 2}};
  g.nodes = 384;
  shape_check_t c2 = {g, big, 4, 2.0};
  run_shape(&c2);
  ts_platgen_t n = preset("gb200-nvl72");
  n.nodes = 768;
  static const pair_t racks[] = {{0, 0, 767, 3}, {0, 0, 17, 3}, {400, 1, 20, 2}};
  shape_check_t c3 = {n, racks, 3, 2.0};
  run_shape(&c3);
}

/* ---- test: oversubscription in a simulation ---------------------------- */

/* Concurrent flows of FLOW_BYTES between one-GPU nodes of g, each timed
** from its put; the child sends the times back through a pipe. */
#define MAX_FLOWS 6
typedef struct flow_check {
  ts_platgen_t g;
  int n, src[MAX_FLOWS], dst[MAX_FLOWS];
  double t[MAX_FLOWS];
} flow_check_t;

static const double FLOW_BYTES = 1e9;
static double flow_t[MAX_FLOWS];
static int token = 7;

static void flow_send(int argc, char **argv) {
  (void)argc;
  int i = atoi(argv[1]);
  char mb[16];
  snprintf(mb, sizeof mb, "flow%d", i);
  double t0 = simgrid_get_clock();
  sg_mailbox_put(sg_mailbox_by_name(mb), &token, FLOW_BYTES);
  flow_t[i] = simgrid_get_clock() - t0;
}

static void flow_recv(int argc, char **argv) {
  (void)argc;
  char mb[16];
  snprintf(mb, sizeof mb, "flow%s", argv[1]);
  sg_mailbox_set_receiver(mb); /* the transfer starts at put time */
  if (sg_mailbox_get(sg_mailbox_by_name(mb)) != &token) FAIL("flow %s: wrong payload", argv[1]);
}

static int wfd;

static int flow_child(const void *arg) {
  const flow_check_t *c = arg;
  double load_s;
  if (load(&c->g, &load_s)) return 1;
  static char a0[] = "flow", idx[MAX_FLOWS][4] = {"0", "1", "2", "3", "4", "5"};
  for (int i = 0; i < c->n; i++) {
    char *av[] = {a0, idx[i], NULL};
    sg_actor_create("recv", host_of(c->dst[i], 0), flow_recv, 2, av);
    sg_actor_create("send", host_of(c->src[i], 0), flow_send, 2, av);
  }
  simgrid_run();
  if (write(wfd, flow_t, sizeof flow_t) != (ssize_t)sizeof flow_t) return 1;
  return failures ? 1 : 0;
}

static void run_flows(flow_check_t *c) {
  int fd[2];
  CU_ASSERT_EQUAL_FATAL(pipe(fd), 0);
  wfd = fd[1];
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_platgen_check(&c->g, &err), 0);
  int rc = in_child(flow_child, c);
  close(fd[1]);
  CU_ASSERT_EQUAL(rc, 0);
  double t[MAX_FLOWS];
  CU_ASSERT_EQUAL(read(fd[0], t, sizeof t), (ssize_t)sizeof t);
  memcpy(c->t, t, sizeof t);
  close(fd[0]);
  printf("  [");
  for (int i = 0; i < c->n; i++) printf("%s%.6f", i ? " " : "", c->t[i]);
  printf(" s] ");
}

/* One GPU a node, 2 nodes (NICs) a leaf, no rails. */
static ts_platgen_t flow_platform(int nodes, int tiers, double leaf_ratio, double spine_ratio) {
  ts_platgen_t g = preset("dgx-h100");
  snprintf(g.name, sizeof g.name, "oversub");
  g.nodes = nodes, g.gpus = 1, g.nvlink_domain = 1, g.rails = 0, g.leaf_ports = 2;
  g.tiers = tiers, g.su_nodes = 4, g.oversub_leaf = leaf_ratio, g.oversub_spine = spine_ratio;
  return g;
}

/* Leaves {0,1} {2,3} {4,5}: 0 -> 2 and 1 -> 3 share leaf 0's trunk
** (2 ports x NIC / r), 4 -> 5 stays inside leaf 2. */
static void test_oversubscription_slows_shared_uplink(void) {
  flow_check_t full = {flow_platform(6, 2, 1, 1), 3, {0, 1, 4}, {2, 3, 5}, {0}};
  flow_check_t half = full;
  half.g = flow_platform(6, 2, 2, 1);
  const ts_platgen_t *g = &half.g;
  CU_ASSERT_EQUAL(ts_platgen_leaf_trunk_bw(g), 2 * 50e9 / 2); /* one NIC's worth */
  CU_ASSERT(ts_platgen_leaf(g, 1, 0) == 0 && ts_platgen_leaf(g, 2, 0) == 1 && ts_platgen_leaf(g, 5, 0) == 2);
  run_flows(&full);
  run_flows(&half);
  double lat_cross = 2 * (g->nic_pcie_lat + g->ib_lat) + 2 * g->fabric_lat;
  double lat_leaf = 2 * (g->nic_pcie_lat + g->ib_lat);
  double alone = FLOW_BYTES / g->ib_bw;
  /* 1:1: every flow at its NIC's rate. */
  TS_ASSERT_REL(full.t[0], lat_cross + alone, 1e-9);
  TS_ASSERT_REL(full.t[1], lat_cross + alone, 1e-9);
  TS_ASSERT_REL(full.t[2], lat_leaf + alone, 1e-9);
  /* 2:1: the two flows through leaf 0's trunk at half rate (2x slower),
  ** the flow inside leaf 2 untouched. */
  TS_ASSERT_REL(half.t[0], lat_cross + 2 * alone, 1e-9);
  TS_ASSERT_REL(half.t[1], lat_cross + 2 * alone, 1e-9);
  TS_ASSERT_REL(half.t[2], lat_leaf + alone, 1e-9);
}

/* Three tiers, pods of 4 nodes (2 leaves), the spine tier at 4:1 and the
** leaves at 1:1: pod 0's core trunk carries 2 leaves x 2 NICs / 4 = one
** NIC's worth.  0 -> 4 and 1 -> 5 (other pod) share it: 2x slower; 8 -> 10
** crosses a spine inside pod 2 at full rate; 9 -> 11 likewise. */
static void test_spine_oversubscription(void) {
  flow_check_t c = {flow_platform(12, 3, 1, 4), 4, {0, 1, 8, 9}, {4, 5, 10, 11}, {0}};
  const ts_platgen_t *g = &c.g;
  CU_ASSERT_EQUAL(ts_platgen_pods(g), 3);
  CU_ASSERT_EQUAL(ts_platgen_spine_trunk_bw(g), 2 * (2 * 50e9) / 4);
  run_flows(&c);
  double lat = 2 * (g->nic_pcie_lat + g->ib_lat), alone = FLOW_BYTES / g->ib_bw;
  TS_ASSERT_REL(c.t[0], lat + 4 * g->fabric_lat + 2 * alone, 1e-9);
  TS_ASSERT_REL(c.t[1], lat + 4 * g->fabric_lat + 2 * alone, 1e-9);
  TS_ASSERT_REL(c.t[2], lat + 2 * g->fabric_lat + alone, 1e-9);
  TS_ASSERT_REL(c.t[3], lat + 2 * g->fabric_lat + alone, 1e-9);
}

TS_TESTS{
    TS_TEST(test_superpod_routes),
    TS_TEST(test_no_rails_routes),
    TS_TEST(test_nvl72_routes),
    TS_TEST(test_pcie_and_three_tier),
    TS_TEST(test_scale),
    TS_TEST(test_oversubscription_slows_shared_uplink),
    TS_TEST(test_spine_oversubscription),
};

TS_TEST_MAIN("topology")
