/*
** test_coll_algo.c: the collective algorithms (src/runtime/rt_coll_algo.c,
** README "Collectives") and the per-kind communication streams on
** SimGrid, against closed forms on a star of n hosts, each behind its own
** full-duplex link (bandwidth B, latency L) to a non-blocking switch: one
** message of S bytes between two hosts takes c(S) = 2 L + S / B, a host's
** messages to distinct peers share its uplink and those from distinct
** peers its downlink.  A buffer of G bytes over n members, D domains of m:
**   - hierarchical all-reduce: every member sends 2 (m - 1) / m G to the
**     members of its domain and 2 (D - 1) / D G / m to the others, in
**     n (2 (m - 1) + 2 (D - 1)) steps over the group, and is done at
**     2 (m - 1) c(G / m) + 2 (D - 1) c(G / n) (each phase is a ring whose
**     members send to one peer at a time: no link carries two flows);
**     reduce-scatter and all-gather each half of it;
**   - tree all-reduce (n = 4; tree 0: 0 <- 2 <- {1, 3}, tree 1, the
**     mirror: 3 <- 1 <- {2, 0}): the leaves' halves (G / 2) go up at once,
**     two into host 2 and two into host 1, sharing their downlinks
**     (2 L + G / B); hosts 2 and 1 send their sums to the roots 0 and 3
**     (c(G / 2)); the roots send back down (c(G / 2)); hosts 2 and 1 send
**     to their two children each, sharing their uplinks (2 L + G / B):
**     T = 2 (2 L + G / B) + 2 (2 L + G / (2 B)), 2 log2(4) = 4 message
**     latencies against the ring's 2 (n - 1) = 6.  Bytes: G / 2 per tree
**     edge and direction of the member: hosts 0 and 3 send G, hosts 1 and
**     2 send 2 G; over the group 2 (n - 1) G in 4 (n - 1) steps (also
**     checked at n = 8);
**   - auto: with hosts' node properties (nvlink_domain first) or
**     nvlink_domain_size, a small
**     all-reduce across domains runs as a tree, a large one hierarchical,
**     one with one member per domain as a ring; a reduce-scatter
**     hierarchical; without domains everything is a ring; "ring" forces
**     a ring (counted by steps, which differ per algorithm);
**   - streams: in a TP x DP transformer job, a TP all-reduce of the
**     backward starts and ends while a DP gradient bucket of the same
**     device is in flight (one stream would run them one after the other).
*/
#include <math.h>
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

#define NMAX 8
#define BW 10e9
#define LAT 1e-6
#define G 1e8

static double c_of(double S) { return 2 * LAT + S / BW; }

/* The star of th_star_platform, hosts h<i> with property node = "n<i / per>"
** when per > 0, and nvlink_domain = "r<i / g_nvl>" when g_nvl > 0. */
static int g_nvl;

static const char *star_nodes(int n, int per) {
  static char xml[1 << 16];
  size_t cap = sizeof xml;
  int k = snprintf(xml, cap,
                   "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                   "<platform version=\"4.1\">\n<zone id=\"z\" routing=\"Full\">\n");
  for (int i = 0; i < n; i++) {
    if (per > 0 && g_nvl > 0)
      k += snprintf(xml + k, cap - (size_t)k,
                    "  <host id=\"h%d\" speed=\"1e12f\"><prop id=\"node\" value=\"n%d\"/>"
                    "<prop id=\"nvlink_domain\" value=\"r%d\"/></host>\n",
                    i, i / per, i / g_nvl);
    else if (per > 0)
      k += snprintf(xml + k, cap - (size_t)k,
                    "  <host id=\"h%d\" speed=\"1e12f\"><prop id=\"node\" value=\"n%d\"/></host>\n", i,
                    i / per);
    else
      k += snprintf(xml + k, cap - (size_t)k, "  <host id=\"h%d\" speed=\"1e12f\"/>\n", i);
  }
  for (int i = 0; i < n; i++)
    k += snprintf(xml + k, cap - (size_t)k,
                  "  <link id=\"l%d\" bandwidth=\"%.17gBps\" latency=\"%.17gs\" "
                  "sharing_policy=\"SPLITDUPLEX\"/>\n",
                  i, BW, LAT);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j)
        k += snprintf(xml + k, cap - (size_t)k,
                      "  <route src=\"h%d\" dst=\"h%d\" symmetrical=\"NO\"><link_ctn id=\"l%d\" "
                      "direction=\"UP\"/><link_ctn id=\"l%d\" direction=\"DOWN\"/></route>\n",
                      i, j, i, j);
  CU_ASSERT_FATAL((size_t)k < cap - 32);
  snprintf(xml + k, cap - (size_t)k, "</zone>\n</platform>\n");
  return th_write_tmp(xml, ".xml");
}

/* The collective the program runs (set before the run; the program runs in
** a forked child and only reads them). */
static ts_coll_op_t g_op;
static double g_bytes;

/* The collective over the pipeline group (every device), then GPipe's ops. */
static void coll_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  ts_group_t g = ts_rt_group(rt, TS_GROUP_PP);
  ts_rt_coll(rt, g_op, &g, v, TS_BUF_NONE, g_bytes);
  for (int mb = 0; mb < c->microbatches; mb++) {
    if (c->layout->prev[v] >= 0) ts_rt_recv(rt, TS_SEND_ACT, v, mb);
    ts_rt_compute(rt, TS_FORWARD, v, mb);
    if (c->layout->next[v] >= 0) ts_rt_send(rt, TS_SEND_ACT, v, mb);
  }
  for (int mb = c->microbatches - 1; mb >= 0; mb--) {
    if (c->layout->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, mb);
    ts_rt_compute(rt, TS_BACKWARD, v, mb);
    if (c->layout->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
  }
}

/* What the collective's steps did: bytes each device sent (to its own
** domain of `per` devices and to the others), when its last step arrived. */
typedef struct seen {
  double sent[NMAX], intra[NMAX], inter[NMAX], last_in[NMAX];
  int steps;
} seen_t;

/* Runs the collective over n devices of a star; per > 0: hosts carry node
** properties of per devices each; extra: more job fields. */
static void run_coll(int n, int per, ts_coll_op_t op, double bytes, const char *extra, seen_t *s) {
  g_op = op;
  g_bytes = bytes;
  const char *plat = star_nodes(n, per);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1e-3, \"backward_s\": 1e-3,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 1},"
           " \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": %d, \"microbatches\": 1%s}",
           plat, n, extra ? extra : "");
  ts_job_t *job;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
  ts_schedule_t sc = {.name = "gpipe", .title = "algorithm test", .program = coll_program};
  ts_outcome_t o;
  int rc = ts_execute(job, &sc, NULL, &o, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  unlink(plat);
  memset(s, 0, sizeof *s);
  int dom = per > 0 ? per : job->nvlink_domain_size > 0 ? job->nvlink_domain_size : n;
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (e->kind != TS_SEND_COLL) continue;
    s->sent[e->device] += e->bytes;
    if (e->device / dom == e->peer / dom)
      s->intra[e->device] += e->bytes;
    else
      s->inter[e->device] += e->bytes;
    if (e->end > s->last_in[e->peer]) s->last_in[e->peer] = e->end;
    s->steps++;
  }
  /* Bytes per link: on the star host i's link carries, UP, what device i
  ** sent (the bytes the callers check against each algorithm's formula)
  ** and, DOWN, what it received; every link busy at most T. */
  double up[NMAX] = {0}, down[NMAX] = {0};
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (!ts_kind_is_transfer(e->kind) || e->device == e->peer) continue;
    up[e->device] += e->bytes;
    down[e->peer] += e->bytes;
  }
  int checked = 0;
  for (int k = 0; k < o.run->n_links; k++) {
    const ts_link_use_t *l = &o.run->links[k];
    int h;
    char dir[8];
    if (sscanf(l->name, "l%d_%7s", &h, dir) != 2 || h < 0 || h >= n) continue;
    TS_ASSERT_REL(l->bytes, strcmp(dir, "UP") == 0 ? up[h] : down[h], 1e-12);
    CU_ASSERT(l->busy_s <= o.metrics->iteration_time_s * (1 + 1e-12));
    checked++;
  }
  CU_ASSERT(checked > 0);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* Hierarchical: n devices in D = n / m domains of m. */
static void check_hier(int n, int m, bool props) {
  int D = n / m;
  seen_t s;
  char extra[128];
  if (props)
    snprintf(extra, sizeof extra, ", \"collective_algorithm\": \"hierarchical\"");
  else
    snprintf(extra, sizeof extra,
             ", \"collective_algorithm\": \"hierarchical\", \"nvlink_domain_size\": %d", m);
  run_coll(n, props ? m : 0, TS_COLL_ALLREDUCE, G, extra, &s);
  double intra = 2.0 * (m - 1) / m * G, inter = 2.0 * (D - 1) / D * G / m;
  double T = 2 * (m - 1) * c_of(G / m) + 2 * (D - 1) * c_of(G / n);
  printf("\n    hierarchical all-reduce n=%d m=%d: %.6g s (ring %.6g s), %d steps", n, m,
         s.last_in[0], 2 * (n - 1) * c_of(G / n), s.steps);
  CU_ASSERT_EQUAL(s.steps, n * (2 * (m - 1) + 2 * (D - 1)));
  for (int d = 0; d < n; d++) {
    TS_ASSERT_REL(s.intra[d], intra, 1e-12);
    TS_ASSERT_REL(s.inter[d], inter, 1e-12);
    TS_ASSERT_REL(s.last_in[d], T, 1e-9);
  }
  /* Reduce-scatter and all-gather: half of it each. */
  for (int k = 0; k < 2; k++) {
    run_coll(n, props ? m : 0, k ? TS_COLL_ALLGATHER : TS_COLL_REDUCE_SCATTER, G, extra, &s);
    CU_ASSERT_EQUAL(s.steps, n * ((m - 1) + (D - 1)));
    for (int d = 0; d < n; d++) {
      TS_ASSERT_REL(s.intra[d], intra / 2, 1e-12);
      TS_ASSERT_REL(s.inter[d], inter / 2, 1e-12);
      TS_ASSERT_REL(s.last_in[d], T / 2, 1e-9);
    }
  }
}

static void test_hierarchical(void) {
  check_hier(8, 4, true);  /* two nodes of four, from the hosts' properties */
  check_hier(8, 2, false); /* four domains of two, from nvlink_domain_size */
  check_hier(4, 2, true);
}

static void test_tree_allreduce(void) {
  seen_t s;
  const char *tree = ", \"collective_algorithm\": \"tree\"";
  run_coll(4, 0, TS_COLL_ALLREDUCE, G, tree, &s);
  double T = 2 * (2 * LAT + G / BW) + 2 * (2 * LAT + G / (2 * BW));
  const double sent[4] = {G, 2 * G, 2 * G, G};
  CU_ASSERT_EQUAL(s.steps, 4 * 3);
  for (int d = 0; d < 4; d++) {
    TS_ASSERT_REL(s.sent[d], sent[d], 1e-12);
    TS_ASSERT_REL(s.last_in[d], T, 1e-9);
  }
  /* n = 8: 2 (n - 1) G over the group in 4 (n - 1) steps. */
  run_coll(8, 0, TS_COLL_ALLREDUCE, G, tree, &s);
  double total = 0;
  for (int d = 0; d < 8; d++) total += s.sent[d];
  CU_ASSERT_EQUAL(s.steps, 4 * 7);
  TS_ASSERT_REL(total, 2.0 * 7 * G, 1e-12);
  /* Latency-bound: 1 KB over 8 members beats the ring's 14 latencies. */
  seen_t r;
  run_coll(8, 0, TS_COLL_ALLREDUCE, 1e3, tree, &s);
  run_coll(8, 0, TS_COLL_ALLREDUCE, 1e3, NULL, &r);
  printf("\n    1 KB all-reduce over 8: tree %.3g s, ring %.3g s", s.last_in[0], r.last_in[0]);
  CU_ASSERT(s.last_in[0] < 0.8 * r.last_in[0]);
  /* Reduce-scatter "tree": a ring. */
  run_coll(4, 0, TS_COLL_REDUCE_SCATTER, G, tree, &s);
  CU_ASSERT_EQUAL(s.steps, 4 * 3);
  TS_ASSERT_REL(s.last_in[0], 3 * c_of(G / 4), 1e-9);
}

static void test_auto_rule(void) {
  seen_t s;
  int n = 8;
  int ring = n * 2 * (n - 1), tree = 4 * (n - 1), hier = n * (2 * 3 + 2 * 1);
  /* No domains known: ring, whatever the size. */
  run_coll(n, 0, TS_COLL_ALLREDUCE, 1e3, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, ring);
  /* Two nodes of four: a small all-reduce (<= 64 KiB x 2) a tree, a large
  ** one hierarchical, a reduce-scatter hierarchical. */
  run_coll(n, 4, TS_COLL_ALLREDUCE, 131072, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, tree);
  run_coll(n, 4, TS_COLL_ALLREDUCE, 131073, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, hier);
  run_coll(n, 4, TS_COLL_REDUCE_SCATTER, 1e3, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, hier / 2);
  /* One device per node: no hierarchy; small: tree, large: ring. */
  run_coll(n, 1, TS_COLL_ALLREDUCE, 1e3, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, tree);
  run_coll(n, 1, TS_COLL_ALLREDUCE, G, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, ring);
  /* nvlink_domain before node: two nodes of four in one NVLink domain
  ** (NVL72-like) is one domain, a ring; domains of two inside nodes of
  ** four, hierarchical over four domains. */
  g_nvl = 8;
  run_coll(n, 4, TS_COLL_ALLREDUCE, G, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, ring);
  g_nvl = 2;
  run_coll(n, 4, TS_COLL_ALLREDUCE, G, NULL, &s);
  CU_ASSERT_EQUAL(s.steps, n * (2 * 1 + 2 * 3));
  g_nvl = 0;
  /* The job's nvlink_domain_size counts as the hosts' properties do. */
  run_coll(n, 0, TS_COLL_ALLREDUCE, G, ", \"nvlink_domain_size\": 4", &s);
  CU_ASSERT_EQUAL(s.steps, hier);
  /* Forced: a ring across nodes; "hierarchical" without domains a ring. */
  run_coll(n, 4, TS_COLL_ALLREDUCE, 1e3, ", \"collective_algorithm\": \"ring\"", &s);
  CU_ASSERT_EQUAL(s.steps, ring);
  run_coll(n, 0, TS_COLL_ALLREDUCE, G, ", \"collective_algorithm\": \"hierarchical\"", &s);
  CU_ASSERT_EQUAL(s.steps, ring);
  TS_ASSERT_REL(s.last_in[0], 2 * (n - 1) * c_of(G / n), 1e-9);
}

static void test_bad_algorithm(void) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 1},"
      " \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 1,"
      " \"collective_algorithm\": \"butterfly\"}";
  CU_ASSERT_EQUAL(th_job_from_json(json, NULL, 0, &job, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "collective_algorithm: expected \"auto\""));
  CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  const char *sets[] = {"collective_algorithm=tree", "nvlink_domain_size=8"};
  err = (ts_err_t){0};
  json = "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 1,"
         " \"activation_message_bytes\": 0, \"activation_bytes\": 1},"
         " \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 1}";
  int rc = th_job_from_json(json, sets, 2, &job, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(job->collective_algorithm, TS_CALG_TREE);
  CU_ASSERT_EQUAL(job->nvlink_domain_size, 8);
  ts_job_free(job);
  const char *neg[] = {"nvlink_domain_size=-1"};
  CU_ASSERT_EQUAL(th_job_from_json(json, neg, 1, &job, &err), EX_DATAERR);
}

/* A TP x DP transformer job: a TP collective runs inside a DP bucket's
** span on the same device. */
static void test_tp_overlaps_dp_bucket(void) {
  const char *plat = th_star_platform(4, BW, LAT);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 8, \"hidden\": 1024, \"heads\": 8,"
           " \"ffn_hidden\": 4096, \"vocab\": 1000}, \"seq_len\": 32, \"micro_batch_size\": 1,"
           " \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": 1, \"microbatches\": 2,"
           " \"tensor_parallel\": 2, \"data_parallel\": 2, \"gradient_bucket_mb\": 4}",
           plat);
  ts_job_t *job;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
  ts_outcome_t o;
  int rc = ts_execute(job, NULL, NULL, &o, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  unlink(plat);
  int nested = 0, tp = 0, dp = 0;
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *a = &o.run->events[i];
    if (a->kind != TS_COLLECTIVE) continue;
    tp += TS_EV_COLL_GROUP(a->coll) == TS_GROUP_TP;
    dp += TS_EV_COLL_GROUP(a->coll) == TS_GROUP_DP;
    if (TS_EV_COLL_GROUP(a->coll) != TS_GROUP_TP) continue;
    for (int j = 0; j < o.run->n_events; j++) {
      const ts_event_t *b = &o.run->events[j];
      if (b->kind == TS_COLLECTIVE && b->device == a->device &&
          TS_EV_COLL_GROUP(b->coll) == TS_GROUP_DP && b->start < a->start && a->end < b->end)
        nested++;
    }
  }
  printf("\n    TP x DP: %d TP and %d DP collectives; %d TP ones inside a DP bucket's span", tp, dp,
         nested);
  CU_ASSERT(tp > 0 && dp > 0);
  CU_ASSERT(nested > 0);
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{
    TS_TEST(test_hierarchical),
    TS_TEST(test_tree_allreduce),
    TS_TEST(test_auto_rule),
    TS_TEST(test_bad_algorithm),
    TS_TEST(test_tp_overlaps_dp_bucket),
};
TS_TEST_MAIN("collective algorithms")
