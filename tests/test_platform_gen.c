/*
** test_platform_gen.c: the platform generator (platforms/platform_gen.c).
**
** Checks the presets and ts_platgen_check, the calibration rule, that the
** shipped platforms/<preset>.xml are exactly what the presets generate,
** and, through SimGrid, that a generated platform has the promised hosts,
** routes (link names in order, latency, bandwidth) and transfer times:
**   same node:  2 nvlink_lat + S / nvlink_bw
**   other node: 2 ib_lat + fabric_lat + S / min(ib_bw, fabric_bw)
** to 1e-9 relative under CM02 without cross traffic and TCP gamma.
** SimGrid can be initialised once per process, so every SimGrid check runs
** in a forked child whose exit status the parent asserts on; the child
** prints what went wrong on stderr.  Runs from the repository root.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
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

#include <cjson/cJSON.h>

#define CALIBRATION_FILE "../shared/calibration/h200-single-gpu.json"

/* ---- helpers ------------------------------------------------------- */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The XML for g as a malloc'd string (NULL when the write failed). */
static char *generate(const ts_platgen_t *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  int rc = ts_platgen_write(g, f);
  fclose(f);
  if (rc) {
    free(buf);
    return NULL;
  }
  return buf;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  int c;
  while ((c = fgetc(f)) != EOF) fputc(c, m);
  fclose(m);
  fclose(f);
  return buf;
}

/* Writes text to a new temporary file with the given suffix; returns 0. */
static int write_tmp(const char *text, const char *suffix, char *path, size_t cap) {
  snprintf(path, cap, "/tmp/ts-platgen-XXXXXX%s", suffix);
  int fd = mkstemps(path, (int)strlen(suffix));
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static ts_platgen_t preset(const char *name) {
  ts_platgen_t g;
  memset(&g, 0, sizeof g);
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_platgen_preset(name, &g, &err), 0);
  return g;
}

/* Runs fn(arg) in a forked child; returns its exit status (128 + signal
** when it died on one, -1 when fork failed). */
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

/* ---- SimGrid checks (child side) ---------------------------------- */

/* One GPU pair: src sends S bytes to dst; links is the expected route. */
typedef struct pair_check {
  int src_node, src_gpu, dst_node, dst_gpu;
} pair_check_t;

typedef struct sim_check {
  ts_platgen_t g;
  const pair_check_t *pairs;
  int n_pairs;
  double bytes;
  double max_load_s; /* 0: not checked */
} sim_check_t;

static const sim_check_t *cur;  /* the check this child runs */
static int failures;

#define FAIL(...)                             \
  do {                                        \
    fprintf(stderr, "  child: " __VA_ARGS__); \
    fputc('\n', stderr);                      \
    failures++;                               \
  } while (0)

static int rel_ok(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

static const char *port_prefix(void) { return cur->g.pcie_only ? "pcie" : "nvlink"; }

/* The expected route of pair p: link names into names[], returns count. */
static int expected_route(const pair_check_t *p, char names[3][64], double *lat, double *bw) {
  const ts_platgen_t *g = &cur->g;
  if (p->src_node == p->dst_node) {
    snprintf(names[0], 64, "%s-node%d-gpu%d_UP", port_prefix(), p->src_node, p->src_gpu);
    snprintf(names[1], 64, "%s-node%d-gpu%d_DOWN", port_prefix(), p->dst_node, p->dst_gpu);
    *lat = g->nvlink_lat + g->nvlink_lat;
    *bw = g->nvlink_bw;
    return 2;
  }
  snprintf(names[0], 64, "ib-node%d-gpu%d_UP", p->src_node, p->src_gpu);
  snprintf(names[1], 64, "ib-fabric");
  snprintf(names[2], 64, "ib-node%d-gpu%d_DOWN", p->dst_node, p->dst_gpu);
  *lat = g->ib_lat + g->fabric_lat + g->ib_lat;
  *bw = g->ib_bw < g->fabric_bw ? g->ib_bw : g->fabric_bw;
  return 3;
}

static sg_host_t host_of(int node, int gpu) {
  char name[64];
  snprintf(name, sizeof name, "node%d-gpu%d", node, gpu);
  return sg_host_by_name(name);
}

/* Routes are known only once SimGrid seals the platform in simgrid_run,
** so they are checked from an actor. */
static void route_actor(int argc, char **argv) {
  (void)argc;
  (void)argv;
  xbt_dynar_t links = xbt_dynar_new(sizeof(sg_link_t), NULL);
  for (int i = 0; i < cur->n_pairs; i++) {
    const pair_check_t *p = &cur->pairs[i];
    sg_host_t a = host_of(p->src_node, p->src_gpu), b = host_of(p->dst_node, p->dst_gpu);
    char names[3][64];
    double lat, bw;
    int n = expected_route(p, names, &lat, &bw);
    xbt_dynar_reset(links);
    sg_host_get_route(a, b, links);
    char got[512] = "";
    unsigned k;
    sg_link_t l;
    int same = (int)xbt_dynar_length(links) == n;
    xbt_dynar_foreach (links, k, l) {
      snprintf(got + strlen(got), sizeof got - strlen(got), " %s", sg_link_get_name(l));
      if (k < (unsigned)n && strcmp(sg_link_get_name(l), names[k]) != 0) same = 0;
    }
    if (!same)
      FAIL("route %s -> %s:%s, expected %s %s %s", sg_host_get_name(a), sg_host_get_name(b), got,
           names[0], names[1], n > 2 ? names[2] : "");
    if (!rel_ok(sg_host_get_route_latency(a, b), lat, 1e-12))
      FAIL("route %s -> %s: latency %.17g, expected %.17g", sg_host_get_name(a),
           sg_host_get_name(b), sg_host_get_route_latency(a, b), lat);
    if (sg_host_get_route_bandwidth(a, b) != bw)
      FAIL("route %s -> %s: bandwidth %.17g, expected %.17g", sg_host_get_name(a),
           sg_host_get_name(b), sg_host_get_route_bandwidth(a, b), bw);
  }
  xbt_dynar_free(&links);
}

static int payload = 42;

/* Sender of pair argv[1]: waits until its own time slot, so transfers
** never overlap, then times one blocking put. */
static void send_actor(int argc, char **argv) {
  (void)argc;
  int i = atoi(argv[1]);
  char mb[32];
  snprintf(mb, sizeof mb, "pair%d", i);
  sg_actor_sleep_for(1.0 + i);
  double t0 = simgrid_get_clock();
  sg_mailbox_put(sg_mailbox_by_name(mb), &payload, cur->bytes);
  double dt = simgrid_get_clock() - t0;
  char names[3][64];
  double lat, bw;
  expected_route(&cur->pairs[i], names, &lat, &bw);
  double want = lat + cur->bytes / bw;
  if (!rel_ok(dt, want, 1e-9))
    FAIL("transfer %d (%s): %.17g s, expected %.17g s", i, names[0], dt, want);
}

static void recv_actor(int argc, char **argv) {
  (void)argc;
  char mb[32];
  snprintf(mb, sizeof mb, "pair%s", argv[1]);
  if (sg_mailbox_get(sg_mailbox_by_name(mb)) != &payload) FAIL("pair %s: wrong payload", argv[1]);
}

static int sim_child(const void *arg) {
  cur = arg;
  const ts_platgen_t *g = &cur->g;
  char *xml = generate(g);
  char path[64];
  if (!xml || write_tmp(xml, ".xml", path, sizeof path)) {
    FAIL("cannot write the platform");
    return 1;
  }
  free(xml);
  static char a0[] = "test_platform_gen", a1[] = "--cfg=network/model:CM02",
              a2[] = "--cfg=network/crosstraffic:0", a3[] = "--cfg=network/TCP-gamma:0",
              a4[] = "--log=root.thresh:warning";
  char *argv[] = {a0, a1, a2, a3, a4, NULL};
  int argc = 5;
  simgrid_init(&argc, argv);
  double t0 = now_s();
  simgrid_load_platform(path);
  double load = now_s() - t0;
  unlink(path);
  printf("  [%s %d x %d: simgrid_load_platform %.4f s] ", g->name, g->nodes, g->gpus, load);
  if (cur->max_load_s > 0 && load > cur->max_load_s)
    FAIL("loading %d hosts took %.3f s (limit %.3f s)", g->nodes * g->gpus, load, cur->max_load_s);

  /* Hosts: exactly node<N>-gpu<G>, with speed and properties. */
  if (sg_host_count() != (size_t)g->nodes * (size_t)g->gpus)
    FAIL("%zu hosts, expected %d", sg_host_count(), g->nodes * g->gpus);
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++) {
      sg_host_t h = host_of(n, k);
      if (!h) {
        FAIL("no host node%d-gpu%d", n, k);
        continue;
      }
      const char *mem = sg_host_get_property_value(h, "memory_bytes");
      const char *peak = sg_host_get_property_value(h, "peak_flops");
      if (sg_host_get_speed(h) != g->gpu_speed)
        FAIL("node%d-gpu%d: speed %.17g, expected %.17g", n, k, sg_host_get_speed(h), g->gpu_speed);
      if (!mem || strtod(mem, NULL) != g->gpu_memory) FAIL("node%d-gpu%d: memory_bytes %s", n, k, mem);
      if (!peak || strtod(peak, NULL) != g->gpu_peak_flops)
        FAIL("node%d-gpu%d: peak_flops %s", n, k, peak);
      const char *mbw = sg_host_get_property_value(h, "memory_bandwidth");
      if (!mbw || strtod(mbw, NULL) != g->gpu_memory_bw)
        FAIL("node%d-gpu%d: memory_bandwidth %s", n, k, mbw);
    }
  /* Links: 2 directions per GPU port (and NIC), plus the fabric, all in
  ** the classes nvlink-* (or pcie-*) and ib-*; SimGrid adds __loopback__. */
  size_t want_links = (size_t)g->nodes * (size_t)g->gpus * (g->nodes > 1 ? 4 : 2) + (g->nodes > 1);
  size_t n_links = sg_link_count(), ours = 0;
  sg_link_t *all = sg_link_list();
  for (size_t i = 0; i < n_links; i++) {
    const char *name = sg_link_get_name(all[i]);
    if (strcmp(name, "__loopback__") == 0) continue;
    ours++;
    if (strncmp(name, port_prefix(), strlen(port_prefix())) != 0 && strncmp(name, "ib-", 3) != 0)
      FAIL("link %s is in no class", name);
  }
  free(all);
  if (ours != want_links) FAIL("%zu links, expected %zu", ours, want_links);
  if (g->nodes > 1 && !sg_link_by_name("ib-fabric")) FAIL("no link ib-fabric");
  if (failures) return 1;

  sg_actor_create("routes", host_of(0, 0), route_actor, 0, NULL);
  for (int i = 0; i < cur->n_pairs; i++) {
    const pair_check_t *p = &cur->pairs[i];
    char idx[16];
    snprintf(idx, sizeof idx, "%d", i);
    char *sa[] = {a0, idx, NULL}, *ra[] = {a0, idx, NULL};
    sg_actor_create("send", host_of(p->src_node, p->src_gpu), send_actor, 2, sa);
    sg_actor_create("recv", host_of(p->dst_node, p->dst_gpu), recv_actor, 2, ra);
  }
  simgrid_run();
  return failures ? 1 : 0;
}

static void run_sim_check(const sim_check_t *c) {
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_platgen_check(&c->g, &err), 0);
  int rc = in_child(sim_child, c);
  if (rc != 0) fprintf(stderr, "\n  SimGrid check of %s exited with %d\n", c->g.name, rc);
  CU_ASSERT_EQUAL(rc, 0);
}

/* ---- tests ---------------------------------------------------------- */

static void test_presets(void) {
  for (const char *const *n = ts_platgen_preset_names; *n; n++) {
    ts_platgen_t g = preset(*n);
    ts_err_t err = {0};
    CU_ASSERT_STRING_EQUAL(g.name, *n);
    CU_ASSERT_EQUAL(ts_platgen_check(&g, &err), 0);
    /* Non-blocking fabric: every NIC (one per GPU, or one per node in a
    ** PCIe tree) at full rate. */
    CU_ASSERT_EQUAL(g.fabric_bw, g.nodes * (g.topology == 1 ? 1 : g.gpus) * g.ib_bw);
  }
  ts_platgen_t g = preset("dgx-a100-2node");
  CU_ASSERT(g.nodes == 2 && g.gpus == 8 && !g.pcie_only);
  TS_ASSERT_REL(g.gpu_speed, 0.6 * 312e12, 1e-15);
  CU_ASSERT_EQUAL(g.gpu_peak_flops, 312e12);
  CU_ASSERT_EQUAL(g.gpu_memory, 85899345920.0);
  CU_ASSERT(g.nvlink_bw == 300e9 && g.nvlink_lat == 2e-6 && g.ib_bw == 25e9 && g.ib_lat == 1e-6);
  CU_ASSERT(g.fabric_bw == 400e9 && g.fabric_lat == 1e-6);
  CU_ASSERT_EQUAL(g.gpu_memory_bw, 2.039e12); /* A100 80GB SXM datasheet */
  g = preset("hgx-h200");
  CU_ASSERT_EQUAL(g.gpu_memory_bw, 4.8e12); /* H200 datasheet */
  CU_ASSERT_EQUAL(preset("h200-pcie-8gpu").gpu_memory_bw, 4.8e12);
  CU_ASSERT_EQUAL(preset("commodity-8gpu").gpu_memory_bw, 1.008e12); /* RTX 3090 Ti */
  CU_ASSERT_EQUAL(preset("commodity-2node").gpu_memory_bw, 1.008e12);
  CU_ASSERT(g.nodes == 1 && g.gpus == 8 && g.nvlink_bw == 450e9 && g.gpu_peak_flops == 989e12);
  CU_ASSERT_EQUAL(g.gpu_memory, 150109880320.0);
  g = preset("pcie-4gpu");
  CU_ASSERT(g.nodes == 1 && g.gpus == 4 && g.pcie_only && g.gpu_speed == 100e12);
  CU_ASSERT(g.gpu_peak_flops == 165e12 && g.gpu_memory == 24.0 * 1024 * 1024 * 1024);
  CU_ASSERT(g.nvlink_bw == 25e9 && g.nvlink_lat == 5e-6);
  CU_ASSERT_EQUAL(g.gpu_memory_bw, 1.008e12); /* RTX 4090 */

  ts_err_t err = {0};
  ts_platgen_t before = g;
  CU_ASSERT_EQUAL(ts_platgen_preset("dgx-h100", &g, &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'dgx-h100'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "hgx-h200"));
  CU_ASSERT_EQUAL(memcmp(&before, &g, sizeof g), 0);
}

static void expect_rejected(const ts_platgen_t *g, const char *field) {
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_platgen_check(g, &err), EX_USAGE);
  if (!strstr(err.msg, field)) fprintf(stderr, "\n  message '%s' does not name '%s'\n", err.msg, field);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, field));
}

static void test_check_rejects(void) {
  const ts_platgen_t ok = preset("dgx-a100-2node");
  ts_platgen_t g;
  g = ok, g.nodes = 0;
  expect_rejected(&g, "nodes");
  g = ok, g.gpus = -1;
  expect_rejected(&g, "gpus");
  g = ok, g.nodes = 65536, g.gpus = 8;
  expect_rejected(&g, "hosts");
  g = ok, g.nvlink_bw = -300e9;
  expect_rejected(&g, "nvlink_bw");
  g = ok, g.ib_bw = 0;
  expect_rejected(&g, "ib_bw");
  g = ok, g.ib_lat = NAN;
  expect_rejected(&g, "ib_lat");
  g = ok, g.fabric_bw = INFINITY;
  expect_rejected(&g, "fabric_bw");
  g = ok, g.fabric_lat = -1e-6;
  expect_rejected(&g, "fabric_lat");
  g = ok, g.gpu_speed = 0;
  expect_rejected(&g, "gpu_speed");
  g = ok, g.gpu_peak_flops = -1;
  expect_rejected(&g, "gpu_peak_flops");
  g = ok, g.gpu_memory = 0;
  expect_rejected(&g, "gpu_memory");
  g = ok, g.gpu_memory_bw = 0;
  expect_rejected(&g, "gpu_memory_bw");
  g = ok, g.gpu_memory_bw = NAN;
  expect_rejected(&g, "gpu_memory_bw");
  g = ok, g.nvlink_lat = 0;
  expect_rejected(&g, "nvlink_lat");
  g = ok, strcpy(g.name, "a--b"); /* would end the XML comment */
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "");
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "x\"y");
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "node3");
  expect_rejected(&g, "name");
  ts_err_t err = {0};
  g = ok, strcpy(g.name, "my_cluster-2.v1"), g.nodes = 3, g.gpus = 4;
  CU_ASSERT_EQUAL(ts_platgen_check(&g, &err), 0);
}

/* platforms/<preset>.xml must be what the preset generates, byte for byte. */
static void test_shipped_files(void) {
  for (const char *const *n = ts_platgen_preset_names; *n; n++) {
    ts_platgen_t g = preset(*n);
    char path[128], cmd[128];
    snprintf(path, sizeof path, "platforms/%s.xml", *n);
    char *want = generate(&g), *got = read_text(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (!got) fprintf(stderr, "\n  cannot read %s (the test runs from the repository root)\n", path);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got) {
      if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  %s differs from the preset's output: regenerate it\n", path);
      CU_ASSERT_STRING_EQUAL(got, want);
    }
    snprintf(cmd, sizeof cmd, "value=\"trainsim platform --preset %s\"", *n);
    CU_ASSERT_PTR_NOT_NULL(strstr(want, cmd));
    free(want);
    free(got);
  }
}

/* The text of the XML: declaration order, link classes, comments. */
static void test_xml_shape(void) {
  ts_platgen_t g = preset("dgx-a100-2node");
  char *x = generate(&g), *y = generate(&g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_STRING_EQUAL(x, y); /* deterministic */
  CU_ASSERT_EQUAL(strncmp(x, "<?xml version='1.0'?>\n<!--", 26), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(x, "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n<platform version=\"4.1\">"));
  /* Hosts declared node by node, GPU by GPU. */
  const char *prev = x;
  for (int n = 0; n < 2; n++)
    for (int k = 0; k < 8; k++) {
      char id[64];
      snprintf(id, sizeof id, "<host id=\"node%d-gpu%d\" speed=\"187200000000000f\">", n, k);
      const char *p = strstr(x, id);
      CU_ASSERT_PTR_NOT_NULL(p);
      CU_ASSERT(p > prev);
      if (p) prev = p;
    }
  CU_ASSERT_EQUAL(count(x, "<host "), 16);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"memory_bytes\" value=\"85899345920\"/>"), 16);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"peak_flops\" value=\"312000000000000\"/>"), 16);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"memory_bandwidth\" value=\"2039000000000\"/>"), 16);
  /* A figure off the preset: the regenerate command names it. */
  g.gpu_memory_bw = 1.5e12;
  char *z = generate(&g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(z);
  CU_ASSERT_EQUAL(count(z, "<prop id=\"memory_bandwidth\" value=\"1500000000000\"/>"), 16);
  CU_ASSERT_PTR_NOT_NULL(strstr(z, " --gpu-memory-bw 1500000000000 "));
  free(z);
  CU_ASSERT_EQUAL(count(x, "<link id=\"nvlink-node"), 16);
  CU_ASSERT_EQUAL(count(x, "<link id=\"ib-node"), 16);
  CU_ASSERT_EQUAL(count(x, "sharing_policy=\"SPLITDUPLEX\""), 32);
  CU_ASSERT_PTR_NOT_NULL(strstr(x, "<link id=\"ib-fabric\" bandwidth=\"400000000000Bps\" latency=\"1e-06s\" sharing_policy=\"FATPIPE\"/>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(x, "<link id=\"nvlink-node1-gpu7\" bandwidth=\"300000000000Bps\" latency=\"2e-06s\""));
  /* No double hyphen inside comments (XML forbids it). */
  for (const char *c = x; (c = strstr(c, "<!--"));) {
    const char *e = strstr(c + 4, "-->");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    for (const char *p = c + 4; p < e; p++) CU_ASSERT_FALSE(p[0] == '-' && p[1] == '-');
    c = e + 3;
  }
  free(x);
  free(y);

  /* One node: no InfiniBand at all; PCIe names. */
  g = preset("pcie-4gpu");
  x = generate(&g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_EQUAL(count(x, "<link id=\"pcie-node0-gpu"), 4);
  CU_ASSERT_PTR_NULL(strstr(x, "nvlink-"));
  CU_ASSERT_PTR_NULL(strstr(x, "\"ib-"));
  free(x);

  /* A platform that is not a preset records every option. */
  g = preset("hgx-h200");
  g.nodes = 3;
  char cmd[1024];
  ts_platgen_command(&g, cmd, sizeof cmd);
  CU_ASSERT_PTR_NOT_NULL(strstr(cmd, "trainsim platform --name hgx-h200 --nodes 3 --gpus 8 "));
  CU_ASSERT_PTR_NOT_NULL(strstr(cmd, " --gpu-speed 603431784643543.4 "));
  CU_ASSERT_PTR_NULL(strstr(cmd, "--preset"));
  CU_ASSERT_PTR_NULL(strstr(cmd, "--pcie-only"));
  g = preset("hgx-h200");
  ts_platgen_command(&g, cmd, sizeof cmd);
  CU_ASSERT_STRING_EQUAL(cmd, "trainsim platform --preset hgx-h200");
}

static void test_write_error(void) {
  FILE *f = fopen("/dev/full", "w");
  if (!f) {
    printf("(no /dev/full: skipped) ");
    return;
  }
  ts_platgen_t g = preset("dgx-a100-2node");
  CU_ASSERT_EQUAL(ts_platgen_write(&g, f), EX_IOERR);
  fclose(f);
}

/* The hgx-h200 preset speed is what the calibration rule gives. */
static void test_calibration_shared_file(void) {
  if (access(CALIBRATION_FILE, R_OK) != 0) {
    printf("(note: %s absent, calibration agreement not checked) ", CALIBRATION_FILE);
    return;
  }
  ts_platgen_t g = preset("hgx-h200"), h = g;
  ts_err_t err = {0};
  h.gpu_speed = 0;
  CU_ASSERT_EQUAL(ts_platgen_speed_from_calibration(CALIBRATION_FILE, &h, &err), 0);
  if (h.gpu_speed != g.gpu_speed)
    fprintf(stderr, "\n  calibration gives %.17g, preset has %.17g\n", h.gpu_speed, g.gpu_speed);
  CU_ASSERT_EQUAL(h.gpu_speed, g.gpu_speed);
  h.gpu_speed = g.gpu_speed;
  CU_ASSERT_EQUAL(memcmp(&g, &h, sizeof g), 0); /* nothing else changed */
}

/* h200-pcie-8gpu's PCIe rate is the calibration file's pinned host-to-device
** bandwidth for 256 MiB copies, and its GPUs are hgx-h200's. */
static void test_calibration_pcie(void) {
  if (access(CALIBRATION_FILE, R_OK) != 0) {
    printf("(note: %s absent, PCIe calibration not checked) ", CALIBRATION_FILE);
    return;
  }
  char *text = read_text(CALIBRATION_FILE);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  cJSON *root = cJSON_Parse(text), *e;
  double h2d = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "pcie")) {
    if (cJSON_GetObjectItem(e, "bytes")->valuedouble == 268435456.0 &&
        cJSON_IsTrue(cJSON_GetObjectItem(e, "pinned")))
      h2d = cJSON_GetObjectItem(e, "h2d_GBps")->valuedouble * 1e9;
  }
  cJSON_Delete(root);
  free(text);
  ts_platgen_t g = preset("h200-pcie-8gpu"), h = preset("hgx-h200");
  TS_ASSERT_REL(g.nvlink_bw, h2d, 1e-15);
  TS_ASSERT_REL(g.uplink_bw, h2d, 1e-15);
  CU_ASSERT(g.gpu_speed == h.gpu_speed && g.gpu_memory == h.gpu_memory && g.topology == 1);
}

static int calib_text(const char *text, double *speed, ts_err_t *err) {
  char path[64];
  if (write_tmp(text, ".json", path, sizeof path)) return -1;
  int rc = ts_platgen_calibrated_speed(path, speed, err);
  unlink(path);
  return rc;
}

static void test_calibration_rule(void) {
  ts_err_t err = {0};
  double s = 0;
  /* Small layers are ignored; the rule is 3 x tflops x 1e12 x fwd_s / fwd_bwd_s. */
  CU_ASSERT_EQUAL(calib_text("{\"layers\": ["
                             "{\"h\": 4096, \"approx_fwd_tflops\": 1, \"fwd_s\": 1, \"fwd_bwd_s\": 1},"
                             "{\"h\": 8192, \"approx_fwd_tflops\": 500, \"fwd_s\": 0.002, \"fwd_bwd_s\": 0.006},"
                             "{\"h\": 16384, \"approx_fwd_tflops\": 600, \"fwd_s\": 0.01, \"fwd_bwd_s\": 0.025}]}",
                             &s, &err),
                  0);
  TS_ASSERT_REL(s, (500e12 * 0.002 * 3 / 0.006 + 600e12 * 0.01 * 3 / 0.025) / 2, 1e-15);

  ts_platgen_t g = preset("dgx-a100-2node");
  const double before = g.gpu_speed;
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_platgen_speed_from_calibration("/nonexistent/calib.json", &g, &err), EX_NOINPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/calib.json"));
  CU_ASSERT_EQUAL(g.gpu_speed, before);

  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\n\"layers\": [\n{\"h\": 8192,,}]}", &s, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 3"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": [{\"h\": 8192, \"approx_fwd_tflops\": 5, \"fwd_bwd_s\": 1}]}", &s, &err),
                  EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers[0].fwd_s"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": [{\"h\": 8192, \"approx_fwd_tflops\": 5, \"fwd_s\": 1, \"fwd_bwd_s\": -1}]}",
                             &s, &err),
                  EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers[0].fwd_bwd_s"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": [{\"h\": 1024, \"approx_fwd_tflops\": 5, \"fwd_s\": 1, \"fwd_bwd_s\": 3}]}",
                             &s, &err),
                  EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "h >= 8192"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": {}}", &s, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"gemm\": []}", &s, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers: missing"));
}

static const pair_check_t two_node_pairs[] = {
    {0, 0, 0, 5}, {1, 7, 1, 0}, {0, 3, 1, 6}, {1, 6, 0, 3}, {1, 0, 0, 0}};

static void test_sim_dgx_a100(void) {
  sim_check_t c = {preset("dgx-a100-2node"), two_node_pairs, 5, 1e9, 0};
  run_sim_check(&c);
}

static const pair_check_t one_node_pairs[] = {{0, 0, 0, 1}, {0, 3, 0, 0}, {0, 2, 0, 1}};

static void test_sim_hgx_h200(void) {
  sim_check_t c = {preset("hgx-h200"), one_node_pairs, 3, 1e9, 0};
  run_sim_check(&c);
}

static void test_sim_pcie_4gpu(void) {
  sim_check_t c = {preset("pcie-4gpu"), one_node_pairs, 3, 123456789, 0};
  run_sim_check(&c);
}

/* Odd figures and a blocking fabric (fabric_bw < ib_bw): the narrowest
** link sets the rate. */
static void test_sim_custom(void) {
  ts_platgen_t g = preset("dgx-a100-2node");
  strcpy(g.name, "custom");
  g.nodes = 3, g.gpus = 4;
  g.nvlink_bw = 123.5e9, g.nvlink_lat = 1.7e-6;
  g.ib_bw = 31e9, g.ib_lat = 0.9e-6;
  g.fabric_bw = 20e9, g.fabric_lat = 3.3e-6;
  g.gpu_speed = 1e14 / 3;
  static const pair_check_t pairs[] = {{2, 3, 2, 1}, {0, 1, 2, 3}, {2, 0, 1, 0}};
  sim_check_t c = {g, pairs, 3, 987654321, 0};
  run_sim_check(&c);
}

/* 128 nodes x 8 GPUs: generation and load must be fast (measured about
** 0.04 s; the limit leaves room for slow machines), routes still exact. */
static void test_sim_scale(void) {
  ts_platgen_t g = preset("dgx-a100-2node");
  g.nodes = 128;
  g.fabric_bw = g.nodes * g.gpus * g.ib_bw;
  double t0 = now_s();
  char *x = generate(&g);
  double gen = now_s() - t0;
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  printf("  [generate 128 x 8: %.4f s, %zu bytes] ", gen, strlen(x));
  CU_ASSERT(gen < 1.0);
  free(x);
  static const pair_check_t pairs[] = {{0, 0, 127, 7}, {127, 7, 0, 0}, {127, 0, 127, 7}, {64, 3, 64, 4}};
  sim_check_t c = {g, pairs, 4, 1e8, 1.0};
  run_sim_check(&c);

  ts_platgen_t h = preset("pcie-4gpu");
  h.nodes = 1024, h.gpus = 1;
  static const pair_check_t pairs2[] = {{0, 0, 1023, 0}, {511, 0, 3, 0}};
  sim_check_t c2 = {h, pairs2, 2, 1e8, 1.0};
  run_sim_check(&c2);
}

TS_TESTS{
    TS_TEST(test_presets),
    TS_TEST(test_check_rejects),
    TS_TEST(test_shipped_files),
    TS_TEST(test_xml_shape),
    TS_TEST(test_write_error),
    TS_TEST(test_calibration_shared_file),
    TS_TEST(test_calibration_pcie),
    TS_TEST(test_calibration_rule),
    TS_TEST(test_sim_dgx_a100),
    TS_TEST(test_sim_hgx_h200),
    TS_TEST(test_sim_pcie_4gpu),
    TS_TEST(test_sim_custom),
    TS_TEST(test_sim_scale),
};

TS_TEST_MAIN("platform_gen")
