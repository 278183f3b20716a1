/*
** test_route.c: platforms/platform_route.c finds SimGrid's routes.
**
** For every platform shipped in platforms/ (the generated fat trees with
** rails, NVLink and PCIe trees), generated ones of other shapes (three
** tiers without rails, oversubscribed, NVL72 domains) and hand-written
** Dijkstra zones whose shortest paths tie (the lower-numbered vertex must
** win, as in SimGrid's queue) or where fewer links beat fewer hops, the
** router's route between host pairs equals sg_host_get_route link for
** link, in order: every ordered pair on platforms of up to 64 hosts,
** every destination from 24 sources spread over the larger ones.  Zones
** it does not replay (Full, Floyd, clusters, nested zones) give no
** router.  SimGrid can be initialised once per process, so each platform
** is checked in a forked child.  Runs from the repository root.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <xbt/dynar.h>

#include "platform_check.h"
#include "platform_gen.h"
#include "platform_route.h"
#include "tsunit.h"

/* Compares the router with SimGrid on path; prints the first difference.
** Returns 0, 1 on a difference, 2 when there is no router, 3 on a setup
** failure.  *pairs: the pairs compared (through a pipe: in a child). */
static int compare(const char *path, long *pairs) {
  ts_err_t err = {0};
  ts_platform_t *pc = ts_platform_load(path, &err);
  if (!pc) {
    fprintf(stderr, "\n  %s\n", err.msg);
    return 3;
  }
  ts_router_t *r = ts_router_new(pc);
  if (!r) {
    ts_platform_free(pc);
    return 2;
  }
  static char a0[] = "test_route", a1[] = "--cfg=network/model:CM02", a2[] = "--log=root.thresh:critical";
  char *argv[] = {a0, a1, a2, NULL};
  int argc = 3;
  simgrid_init(&argc, argv);
  simgrid_load_platform(path);
  simgrid_run_until(0); /* seals the platform: routes exist */
  size_t nh = sg_host_count();
  sg_host_t *h = sg_host_list();
  xbt_dynar_t sg = xbt_dynar_new(sizeof(sg_link_t), NULL);
  size_t step = nh <= 64 ? 1 : nh / 24;
  int rc = 0;
  *pairs = 0;
  for (size_t i = 0; i < nh && !rc; i += step)
    for (size_t j = 0; j < nh && !rc; j++) {
      if (i == j) continue;
      xbt_dynar_reset(sg);
      sg_host_get_route(h[i], h[j], sg);
      const int *s;
      int va = ts_router_vertex(r, sg_host_get_name(h[i])), vb = ts_router_vertex(r, sg_host_get_name(h[j]));
      int n = va >= 0 && vb >= 0 ? ts_router_route(r, va, vb, &s) : -1;
      bool same = n == (int)xbt_dynar_length(sg);
      for (int k = 0; k < n && same; k++) {
        char name[512];
        snprintf(name, sizeof name, "%s%s", ts_router_link_name(r, s[k] / 3),
                 s[k] % 3 == 1 ? "_UP" : s[k] % 3 == 2 ? "_DOWN" : "");
        same = strcmp(name, sg_link_get_name(xbt_dynar_get_as(sg, k, sg_link_t))) == 0;
      }
      if (!same) {
        fprintf(stderr, "\n  %s: %s -> %s: router %d links, SimGrid %lu\n", path, sg_host_get_name(h[i]),
                sg_host_get_name(h[j]), n, xbt_dynar_length(sg));
        rc = 1;
      }
      ++*pairs;
    }
  xbt_dynar_free(&sg);
  free(h);
  ts_router_free(r);
  ts_platform_free(pc);
  return rc;
}

/* compare() in a forked child: its status (128 + signal when killed). */
static int check(const char *path, long *pairs) {
  int fd[2];
  if (pipe(fd)) return -1;
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    long n = 0;
    int rc = compare(path, &n);
    if (write(fd[1], &n, sizeof n) != (ssize_t)sizeof n) rc = 3;
    _exit(rc);
  }
  close(fd[1]);
  *pairs = 0;
  if (read(fd[0], pairs, sizeof *pairs) != (ssize_t)sizeof *pairs) *pairs = -1;
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_shipped_platforms(void) {
  static const char *const files[] = {
      "platforms/dgx-a100-2node.xml", "platforms/dgx-a100-4node.xml", "platforms/dgx-a100-8node.xml",
      "platforms/dgx-a100-128node.xml", "platforms/hgx-h200.xml",     "platforms/h200-pcie-8gpu.xml",
      "platforms/pcie-4gpu.xml",        "platforms/commodity-8gpu.xml", "platforms/commodity-2node.xml"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    long pairs = 0;
    int rc = check(files[i], &pairs);
    if (rc) fprintf(stderr, "\n  %s: status %d\n", files[i], rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(pairs > 0);
  }
}

/* Writes preset name with the options set(g) makes to a temporary file. */
static int generated(const char *preset, void (*set)(ts_platgen_t *), char *path, size_t cap) {
  ts_platgen_t g;
  memset(&g, 0, sizeof g);
  ts_err_t err = {0};
  if (ts_platgen_preset(preset, &g, &err)) return -1;
  if (set) set(&g);
  snprintf(path, cap, "/tmp/ts-route-XXXXXX.xml");
  int fd = mkstemps(path, 4);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) return -1;
  int rc = ts_platgen_write(&g, f);
  return fclose(f) || rc ? -1 : 0;
}

static void three_tier_no_rails(ts_platgen_t *g) {
  g->nodes = 12;
  g->tiers = 3;
  g->rails = 0;
  g->leaf_ports = 8;
  g->su_nodes = 4;
  g->oversub_leaf = 2;
  g->oversub_spine = 4;
}

static void nvl72(ts_platgen_t *g) { g->nodes = 18; }

static void test_generated_platforms(void) {
  static const struct {
    const char *preset;
    void (*set)(ts_platgen_t *);
  } c[] = {{"dgx-a100-2node", three_tier_no_rails}, {"gb200-nvl72", nvl72}, {"dgx-h100", NULL}};
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    char path[64];
    CU_ASSERT_EQUAL_FATAL(generated(c[i].preset, c[i].set, path, sizeof path), 0);
    long pairs = 0;
    int rc = check(path, &pairs);
    if (rc) fprintf(stderr, "\n  %s (%s): status %d\n", c[i].preset, path, rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(pairs > 0);
    unlink(path);
  }
}

static int write_text(const char *text, char *path, size_t cap) {
  snprintf(path, cap, "/tmp/ts-route-XXXXXX.xml");
  int fd = mkstemps(path, 4);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

#define HEAD "<?xml version='1.0'?><!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\"><platform version=\"4.1\">"
#define HOSTS "<host id=\"a\" speed=\"1f\"/><host id=\"b\" speed=\"1f\"/><host id=\"c\" speed=\"1f\"/>"

/* Ties between equal-cost paths (declared in both orders), a path of
** fewer links beating one of fewer hops, SPLITDUPLEX halves on reversed
** symmetrical routes, and a SHARED link without direction. */
static const char *const tie_platforms[] = {
    HEAD "<zone id=\"z\" routing=\"Dijkstra\">" HOSTS "<router id=\"r1\"/><router id=\"r2\"/>"
    "<link id=\"l1\" bandwidth=\"1GBps\" latency=\"1us\"/><link id=\"l2\" bandwidth=\"1GBps\" latency=\"1us\"/>"
    "<link id=\"l3\" bandwidth=\"1GBps\" latency=\"1us\"/><link id=\"l4\" bandwidth=\"1GBps\" latency=\"1us\"/>"
    "<link id=\"l5\" bandwidth=\"1GBps\" latency=\"1us\"/>"
    "<route src=\"a\" dst=\"r2\"><link_ctn id=\"l1\"/></route><route src=\"a\" dst=\"r1\"><link_ctn id=\"l2\"/></route>"
    "<route src=\"r1\" dst=\"b\"><link_ctn id=\"l3\"/></route><route src=\"r2\" dst=\"b\"><link_ctn id=\"l4\"/></route>"
    "<route src=\"b\" dst=\"c\"><link_ctn id=\"l5\"/></route></zone></platform>",
    HEAD "<zone id=\"z\" routing=\"DijkstraCache\">" HOSTS "<router id=\"r\"/>"
    "<link id=\"d\" bandwidth=\"1GBps\" latency=\"1us\" sharing_policy=\"SPLITDUPLEX\"/>"
    "<link id=\"e\" bandwidth=\"1GBps\" latency=\"1us\" sharing_policy=\"SPLITDUPLEX\"/>"
    "<link id=\"f\" bandwidth=\"1GBps\" latency=\"1us\" sharing_policy=\"SPLITDUPLEX\"/>"
    "<link id=\"g\" bandwidth=\"1GBps\" latency=\"1us\"/><link id=\"h\" bandwidth=\"1GBps\" latency=\"1us\"/>"
    "<route src=\"a\" dst=\"b\"><link_ctn id=\"d\" direction=\"UP\"/><link_ctn id=\"g\"/>"
    "<link_ctn id=\"e\" direction=\"DOWN\"/></route>"
    "<route src=\"a\" dst=\"r\"><link_ctn id=\"f\" direction=\"UP\"/></route>"
    "<route src=\"r\" dst=\"b\"><link_ctn id=\"h\"/></route>"
    "<route src=\"c\" dst=\"r\"><link_ctn id=\"e\" direction=\"UP\"/></route></zone></platform>",
};

static void test_ties_and_weights(void) {
  for (size_t i = 0; i < sizeof tie_platforms / sizeof *tie_platforms; i++) {
    char path[64];
    CU_ASSERT_EQUAL_FATAL(write_text(tie_platforms[i], path, sizeof path), 0);
    long pairs = 0;
    int rc = check(path, &pairs);
    if (rc) fprintf(stderr, "\n  tie platform %zu (%s): status %d\n", i, path, rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(pairs, 6);
    unlink(path);
  }
}

static void test_no_router_for_other_zones(void) {
  static const char *const other[] = {
      HEAD "<zone id=\"z\" routing=\"Floyd\">" HOSTS "<link id=\"l\" bandwidth=\"1GBps\" latency=\"0\"/>"
      "<route src=\"a\" dst=\"b\"><link_ctn id=\"l\"/></route><route src=\"b\" dst=\"c\"><link_ctn id=\"l\"/></route>"
      "</zone></platform>",
      HEAD "<zone id=\"z\" routing=\"Full\">" HOSTS "<link id=\"l\" bandwidth=\"1GBps\" latency=\"0\"/>"
      "<route src=\"a\" dst=\"b\"><link_ctn id=\"l\"/></route></zone></platform>",
      HEAD "<cluster id=\"c\" prefix=\"n\" suffix=\"\" radical=\"0-3\" speed=\"1f\" bw=\"1GBps\" lat=\"1us\"/></platform>",
  };
  for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
    char path[64];
    CU_ASSERT_EQUAL_FATAL(write_text(other[i], path, sizeof path), 0);
    ts_err_t err = {0};
    ts_platform_t *pc = ts_platform_load(path, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
    CU_ASSERT_PTR_NULL(ts_router_new(pc));
    ts_platform_free(pc);
    unlink(path);
  }
}

TS_TESTS{
    TS_TEST(test_shipped_platforms),
    TS_TEST(test_generated_platforms),
    TS_TEST(test_ties_and_weights),
    TS_TEST(test_no_router_for_other_zones),
};

TS_TEST_MAIN("route")
