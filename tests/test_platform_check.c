/*
** test_platform_check.c: the platform checker (platforms/platform_check.c)
** and the simulation's no-progress watchdog (sim/ts_sim.c).
**
** Each broken platform gets its one-line error naming file:line and the
** element, through the library and through the trainsim command (which
** hung or crashed on them before: a missing route in a Dijkstra zone
** looped forever in SimGrid, a duplicated route or 1000 nested zones
** aborted it).  Every shipped platform passes, with a route between all
** its hosts.  Routing rules (Full, symmetrical, Floyd paths, zoneRoutes
** and their gateways, clusters) and units are checked on small platforms,
** every prefix of a platform is parsed without a crash, and a child that
** makes no progress is stopped by the watchdog.  Runs from the repository
** root.
*/
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "platform_check.h"
#include "tshelp.h"
#include "tsunit.h"

#define HEAD "<?xml version='1.0'?>\n<platform version=\"4.1\">\n" /* line 1-2 */

static const char *const H3[] = {"h0", "h1", "h2"};

/* A Full zone of three hosts; routes are the text r (from line 7 on). */
static char *full3(const char *routing, const char *r) {
  char *s = ts__xmalloc(8192);
  snprintf(s, 8192,
           HEAD "<zone id=\"z\" routing=\"%s\">\n"             /* 3 */
           "<host id=\"h0\" speed=\"1Gf\"/><host id=\"h1\" speed=\"1Gf\"/>\n" /* 4 */
           "<host id=\"h2\" speed=\"1Gf\"/><router id=\"r\"/>\n"               /* 5 */
           "<link id=\"l0\" bandwidth=\"1GBps\" latency=\"1us\"/><link id=\"l1\" bandwidth=\"1GBps\"/>\n" /* 6 */
           "%s</zone>\n</platform>\n",
           routing, r);
  return s;
}

/* Checks text (written to a temporary file) against hosts; returns the
** code; the message, with the file name replaced by F, goes to msg. */
static int check_text(const char *text, const char *const *hosts, int n, char *msg, size_t cap) {
  const char *path = th_write_tmp(text, ".xml");
  ts_err_t err = {0};
  int rc = ts_platform_check(path, hosts, n, &err);
  unlink(path);
  msg[0] = 0;
  if (rc) {
    size_t l = strlen(path);
    CU_ASSERT_EQUAL(strncmp(err.msg, path, l), 0); /* every message starts with the file */
    const char *rest = strncmp(err.msg, path, l) == 0 ? err.msg + l : err.msg;
    msg[0] = 'F';
    memcpy(msg + 1, rest, strlen(rest) + 1 < cap - 1 ? strlen(rest) + 1 : cap - 1);
    msg[cap - 1] = 0;
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  }
  return rc;
}

static void expect(const char *text, const char *const *hosts, int n, const char *want) {
  char msg[1024];
  int rc = check_text(text, hosts, n, msg, sizeof msg);
  if (!want) {
    if (rc) fprintf(stderr, "unexpected: %s\n", msg);
    CU_ASSERT_EQUAL(rc, 0);
    return;
  }
  if (strcmp(msg, want) != 0) fprintf(stderr, "\n got: %s\nwant: %s\n", msg, want);
  CU_ASSERT_EQUAL(rc, EX_DATAERR);
  CU_ASSERT_STRING_EQUAL(msg, want);
}

#define R(s, d, l) "<route src=\"" s "\" dst=\"" d "\"><link_ctn id=\"" l "\"/></route>\n"

static void test_broken(void) {
  const char *all = R("h0", "h1", "l0") R("h0", "h2", "l0") R("h1", "h2", "l1"); /* lines 7-9 */
  char *t = full3("Full", all);
  expect(t, H3, 3, NULL);
  free(t);
  /* A missing route (h1 - h2). */
  t = full3("Full", R("h0", "h1", "l0") R("h0", "h2", "l0"));
  expect(t, H3, 3,
         "F:3: <zone id=\"z\">: no route from 'h1' to 'h2': routing=\"Full\" needs a <route src=\"h1\" "
         "dst=\"h2\"> (or a symmetrical one the other way)");
  /* Only the hosts the job uses count. */
  expect(t, H3, 2, NULL);
  free(t);
  /* A duplicated route, and one duplicated by symmetry. */
  t = full3("Full", R("h0", "h1", "l0") R("h0", "h1", "l1"));
  expect(t, H3, 0, "F:8: <route src=\"h0\" dst=\"h1\">: the route from 'h0' to 'h1' is already declared at line 7");
  free(t);
  t = full3("Full", R("h0", "h1", "l0") R("h1", "h0", "l1"));
  expect(t, H3, 0,
         "F:8: <route src=\"h1\" dst=\"h0\">: the route from 'h0' to 'h1' is already declared at line 7 (a "
         "symmetrical route declares both directions; write symmetrical=\"NO\" on one-way routes)");
  free(t);
  /* An unknown link, a duplicate host id, an unknown endpoint, an empty route. */
  t = full3("Full", R("h0", "h1", "l7"));
  expect(t, H3, 0, "F:7: <link_ctn id=\"l7\">: no link 'l7' in the platform");
  free(t);
  t = full3("Full", "<host id=\"h1\" speed=\"1f\"/>\n");
  expect(t, H3, 0, "F:7: <host id=\"h1\">: id already used by the <host> at line 4");
  free(t);
  t = full3("Full", "<link id=\"l0\" bandwidth=\"1Bps\"/>\n");
  expect(t, H3, 0, "F:7: <link id=\"l0\">: id already used by the <link> at line 6");
  free(t);
  t = full3("Full", R("h0", "h9", "l0"));
  expect(t, H3, 0, "F:7: <route src=\"h0\" dst=\"h9\">: dst 'h9' is no host, router or zone of the platform");
  free(t);
  t = full3("Full", "<route src=\"h0\" dst=\"h1\"></route>\n");
  expect(t, H3, 0, "F:7: <route src=\"h0\" dst=\"h1\">: a route needs at least one link_ctn");
  free(t);
  /* Numbers. */
  t = full3("Full", "<link id=\"l2\" bandwidth=\"12 furlongs\"/>\n");
  expect(t, H3, 0,
         "F:7: <link id=\"l2\">: bandwidth=\"12 furlongs\": not a bandwidth SimGrid reads (e.g. 25GBps), "
         "in [1, 1e30] per second");
  free(t);
  t = full3("Full", "<link id=\"l2\" bandwidth=\"1e308TBps\"/>\n");
  expect(t, H3, 0,
         "F:7: <link id=\"l2\">: bandwidth=\"1e308TBps\": not a bandwidth SimGrid reads (e.g. 25GBps), "
         "in [1, 1e30] per second");
  free(t);
  t = full3("Full", "<link id=\"l2\" bandwidth=\"1GBps\" latency=\"-1s\"/>\n");
  expect(t, H3, 0,
         "F:7: <link id=\"l2\">: latency=\"-1s\": not a time SimGrid reads (e.g. 1us), 0 or in "
         "[1e-12 s, 1e6 s]");
  free(t);
  t = full3("Full", "<host id=\"h3\" speed=\"fast\"/>\n");
  expect(t, H3, 0,
         "F:7: <host id=\"h3\">: speed=\"fast\": not a speed SimGrid reads (e.g. 100Gf), in [1, 1e30] "
         "per second");
  free(t);
  /* Finite but out of SimGrid's working range: its solver aborts or stalls. */
  t = full3("Full", "<link id=\"l2\" bandwidth=\"1e-300Bps\"/>\n");
  expect(t, H3, 0,
         "F:7: <link id=\"l2\">: bandwidth=\"1e-300Bps\": not a bandwidth SimGrid reads (e.g. 25GBps), "
         "in [1, 1e30] per second");
  free(t);
  t = full3("Full", "<link id=\"l2\" bandwidth=\"1GBps\" latency=\"1e-303ns\"/>\n");
  expect(t, H3, 0,
         "F:7: <link id=\"l2\">: latency=\"1e-303ns\": not a time SimGrid reads (e.g. 1us), 0 or in "
         "[1e-12 s, 1e6 s]");
  free(t);
  /* SimGrid's other units are accepted. */
  t = full3("Full",
            "<link id=\"l2\" bandwidth=\"2.5GiBps\" latency=\"3ps\"/><link id=\"l3\" bandwidth=\"100Mbps\" "
            "latency=\"1m\"/>\n<host id=\"h3\" speed=\"1Gf, 2kiloflops\"/><host id=\"h4\" speed=\"0.5Yf\"/>\n");
  expect(t, H3, 0, NULL);
  free(t);
  /* Malformed XML: line and column. */
  t = full3("Full", "<route src=\"h0\" dst=\"h1\"><link_ctn id=\"l0\"/></rout>\n");
  expect(t, H3, 0, "F:7: not well-formed XML (column 47): mismatched tag");
  free(t);
}

static void test_routing_rules(void) {
  /* symmetrical="NO" routes go one way. */
  char *t = full3("Full", "<route src=\"h0\" dst=\"h1\" symmetrical=\"NO\"><link_ctn id=\"l0\"/></route>\n");
  expect(t, H3, 2,
         "F:3: <zone id=\"z\">: no route from 'h1' to 'h0': routing=\"Full\" needs a <route src=\"h1\" "
         "dst=\"h0\"> (or a symmetrical one the other way)");
  free(t);
  /* Floyd and Dijkstra: paths through a router. */
  const char *star = R("h0", "r", "l0") R("h1", "r", "l0") R("r", "h2", "l1");
  for (int k = 0; k < 3; k++) {
    static const char *const kinds[] = {"Floyd", "Dijkstra", "DijkstraCache"};
    t = full3(kinds[k], star);
    expect(t, H3, 3, NULL);
    free(t);
  }
  t = full3("Dijkstra", R("h0", "r", "l0") "<route src=\"r\" dst=\"h2\" symmetrical=\"NO\"><link_ctn id=\"l1\"/></route>\n");
  expect(t, H3, 3,
         "F:3: <zone id=\"z\">: no route from 'h0' to 'h1': routing=\"Dijkstra\" finds no path through the "
         "zone's routes (SimGrid 3.32 would search forever)");
  free(t);
  /* Nested zones: a zoneRoute between two Full zones, through gateways. */
  const char *nested =
      HEAD "<zone id=\"top\" routing=\"Full\">\n"                                    /* 3 */
      "<zone id=\"a\" routing=\"Full\"><host id=\"h0\" speed=\"1f\"/><router id=\"ga\"/>\n" /* 4 */
      "<link id=\"la\" bandwidth=\"1Bps\"/>%s</zone>\n"                               /* 5 */
      "<zone id=\"b\" routing=\"Full\"><host id=\"h1\" speed=\"1f\"/><router id=\"gb\"/>\n" /* 6 */
      "<link id=\"lb\" bandwidth=\"1Bps\"/>" R("h1", "gb", "lb") "</zone>\n"           /* 7 */
      "<link id=\"lt\" bandwidth=\"1Bps\"/>\n"                                        /* 8 */
      "<zoneRoute src=\"a\" dst=\"b\" gw_src=\"ga\" gw_dst=\"gb\"><link_ctn id=\"lt\"/></zoneRoute>\n" /* 9 */
      "</zone>\n</platform>\n";
  char buf[4096];
  const char *const H2[] = {"h0", "h1"};
  snprintf(buf, sizeof buf, nested, R("h0", "ga", "la"));
  expect(buf, H2, 2, NULL);
  snprintf(buf, sizeof buf, nested, "");
  expect(buf, H2, 2,
         "F:4: <zone id=\"a\">: no route from 'h0' to 'ga' (on the way from 'h0' to 'h1'): routing=\"Full\" "
         "needs a <route src=\"h0\" dst=\"ga\"> (or a symmetrical one the other way)");
  /* A gateway outside its zone; a route naming a zone. */
  const char *bad_gw =
      HEAD "<zone id=\"top\" routing=\"Full\">\n<zone id=\"a\" routing=\"Full\"><host id=\"h0\" speed=\"1f\"/></zone>\n"
      "<zone id=\"b\" routing=\"Full\"><host id=\"h1\" speed=\"1f\"/></zone>\n<link id=\"lt\" bandwidth=\"1Bps\"/>\n"
      "<zoneRoute src=\"a\" dst=\"b\" gw_src=\"h1\" gw_dst=\"h1\"><link_ctn id=\"lt\"/></zoneRoute>\n</zone>\n</platform>\n";
  expect(bad_gw, H2, 0, "F:7: <zoneRoute src=\"a\" dst=\"b\">: gw_src 'h1' is not inside zone 'a'");
  /* A cluster routes itself; its hosts exist for placement and routes. */
  const char *cluster =
      HEAD "<cluster id=\"c\" prefix=\"n\" suffix=\"\" radical=\"0-3,7\" speed=\"1Gf\" bw=\"1GBps\" lat=\"1us\"/>\n"
      "</platform>\n";
  const char *const C[] = {"n0", "n3", "n7"};
  expect(cluster, C, 3, NULL);
  const char *const C4[] = {"n0", "n4"};
  expect(cluster, C4, 2, "F: no host 'n4' in the platform");
}

static void test_nesting(void) {
  size_t cap = 200000, k = 0;
  char *s = ts__xmalloc(cap);
  k += (size_t)snprintf(s + k, cap - k, HEAD);
  for (int i = 0; i < 1000; i++) k += (size_t)snprintf(s + k, cap - k, "<zone id=\"z%d\" routing=\"Full\">\n", i);
  k += (size_t)snprintf(s + k, cap - k, "<host id=\"h0\" speed=\"1f\"/>\n");
  for (int i = 0; i < 1000; i++) k += (size_t)snprintf(s + k, cap - k, "</zone>\n");
  snprintf(s + k, cap - k, "</platform>\n");
  /* The platform element is level 1: zone z63 (line 66) is level 65. */
  expect(s, NULL, 0, "F:66: <zone id=\"z63\">: elements nest deeper than 64 levels");
  free(s);
}

/* The host ids written in a file (<host id="...">). */
static int host_ids(const char *text, char ***out) {
  int n = 0;
  char **v = NULL;
  for (const char *p = text; (p = strstr(p, "<host id=\"")); p++) {
    const char *b = p + 10, *e = strchr(b, '"');
    v = ts__xrealloc(v, (size_t)(n + 1) * sizeof *v);
    v[n++] = ts__xstrndup(b, (size_t)(e - b));
  }
  *out = v;
  return n;
}

static void test_shipped_platforms(void) {
  glob_t g;
  CU_ASSERT_EQUAL_FATAL(glob("platforms/*.xml", 0, NULL, &g), 0);
  CU_ASSERT(g.gl_pathc >= 8);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    char *text = th_slurp(g.gl_pathv[i], NULL);
    char **hosts;
    int n = host_ids(text, &hosts);
    CU_ASSERT(n >= 4);
    ts_err_t err = {0};
    int rc = ts_platform_check(g.gl_pathv[i], (const char *const *)hosts, n, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    /* Every prefix of the file parses without a crash or a hang; those
    ** that end before </platform> are errors. */
    if (i == 0) {
      size_t len = (size_t)(strstr(text, "</platform>") - text) + strlen("</platform>");
      for (size_t l = 0; l < len; l++) {
        ts_platform_t *p = ts_platform_parse("prefix", text, l, &err);
        CU_ASSERT_PTR_NULL(p);
        ts_platform_free(p);
      }
    }
    for (int k = 0; k < n; k++) free(hosts[k]);
    free(hosts);
    free(text);
  }
  globfree(&g);
}

/* The broken platforms through the trainsim command: one line, exit 65,
** no hang (the alarm fails the test where SimGrid used to loop). */
static void test_cli(void) {
  alarm(120);
  char *pcie = th_slurp("platforms/pcie-4gpu.xml", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pcie);
  const char *cut = "    <route src=\"node0-gpu1\" dst=\"node0-pcie-switch\" symmetrical=\"NO\">"
                    "<link_ctn id=\"pcie-node0-gpu1\" direction=\"UP\"/></route>\n";
  char *at = strstr(pcie, cut);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  int line = 1;
  for (const char *c = pcie; c < at; c++) line += *c == '\n';
  char *missing = ts__xstrdup(pcie), *dup = ts__xmalloc(strlen(pcie) + strlen(cut) + 1);
  memmove(missing + (at - pcie), at + strlen(cut), strlen(at + strlen(cut)) + 1);
  memcpy(dup, pcie, (size_t)(at - pcie) + strlen(cut));
  strcpy(dup + (at - pcie) + strlen(cut), at);
  char want[2][512];
  const char *paths[2] = {th_write_tmp(missing, ".xml"), NULL};
  paths[1] = th_write_tmp(dup, ".xml");
  int zone_line = 1;
  for (const char *c = pcie; c < strstr(pcie, "<zone id="); c++) zone_line += *c == '\n';
  snprintf(want[0], sizeof want[0],
           "trainsim: error: %s:%d: <zone id=\"pcie-4gpu\">: no route from 'node0-gpu1' to 'node0-gpu0': "
           "routing=\"DijkstraCache\" finds no path through the zone's routes (SimGrid 3.32 would search forever)\n",
           paths[0], zone_line);
  snprintf(want[1], sizeof want[1],
           "trainsim: error: %s:%d: <route src=\"node0-gpu1\" dst=\"node0-pcie-switch\">: the route from "
           "'node0-gpu1' to 'node0-pcie-switch' is already declared at line %d\n",
           paths[1], line + 1, line);
  for (int i = 0; i < 2; i++) {
    char args[512], *out, *err;
    snprintf(args, sizeof args, "run examples/gpipe-p4-m4.json --set platform=%s -o /tmp/ts-test-pc-out -q",
             paths[i]);
    int rc = th_cli(args, &out, &err);
    CU_ASSERT_EQUAL(rc, EX_DATAERR);
    if (strcmp(err, want[i])) fprintf(stderr, "\n got: %s\nwant: %s", err, want[i]);
    CU_ASSERT_STRING_EQUAL(err, want[i]);
    free(out);
    free(err);
    unlink(paths[i]);
  }
  free(pcie);
  free(missing);
  free(dup);
  alarm(0);
}

/* A child that makes no progress is stopped after TRAINSIM_WATCHDOG_S. */
static void test_watchdog(void) {
  alarm(60);
  setenv("TRAINSIM_WATCHDOG_S", "0.5", 1);
  setenv("TRAINSIM_TEST_STALL", "1", 1);
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2, \"activation_message_bytes\": 0,"
      " \"activation_bytes\": 1}, \"platform\": \"platforms/pcie-4gpu.xml\", \"schedule\": \"gpipe\","
      " \"stages\": 4, \"microbatches\": 4}";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  CU_ASSERT_EQUAL(rc, EX_SOFTWARE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "simulation made no progress for 0.5 s (job "));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "platform platforms/pcie-4gpu.xml)"));
  CU_ASSERT(dt >= 0.5 && dt < 5);
  /* Without the stall the same job runs, under the same short limit. */
  unsetenv("TRAINSIM_TEST_STALL");
  ts_job_free(job);
  job = NULL;
  rc = th_simulate(json, NULL, 0, &job, &o, &err);
  CU_ASSERT_EQUAL(rc, 0);
  if (!rc) ts_outcome_free(&o);
  ts_job_free(job);
  unsetenv("TRAINSIM_WATCHDOG_S");
  alarm(0);
}

TS_TESTS{TS_TEST(test_broken),   TS_TEST(test_routing_rules), TS_TEST(test_nesting),
         TS_TEST(test_shipped_platforms), TS_TEST(test_cli), TS_TEST(test_watchdog)};
TS_TEST_MAIN("platform_check")
