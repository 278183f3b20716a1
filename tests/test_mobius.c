/*
** test_mobius.c: weights in host memory (Mobius and GPipe with naive
** swapping), the host-memory runtime calls, and the PCIe-tree platforms.
**
** - Closed forms on one GPU behind one link (bandwidth B, no latency),
**   S stages of W weight bytes (W gradient bytes), m micro-batches,
**   t_f = 1, t_b = 2, w = W / B:
**     gpipe-swap: (2S - 1) w + S w + m S (t_f + t_b) (every visit loads,
**                 every backward visit writes back, nothing overlaps);
**     mobius:     w + m S (t_f + t_b) + w when w <= m t_f (every copy
**                 hides behind compute but the first load and last
**                 write-back).
** - Room: with device memory for 2.5 W, backward prefetches (weights and
**   gradient buffer, 2 W each) wait for room; the wait is reported, the
**   peak memory stays within the capacity and the iteration is slower.
** - Memory over time: the resident-weights curve starts with the first
**   fetch, moves in whole multiples of W and peaks at the peak memory.
** - Contention from SimGrid's flow sharing on commodity-8gpu: four GPUs of
**   one PCIe switch fetching at once share its 13e9 B/s uplink (3.25e9 B/s
**   each); spread over both switches two share each (6.5e9 B/s, the GPU
**   link's rate).  The uplink's traffic is in summary "links".
** - A customised PCIe-tree platform regenerates byte for byte from the
**   command it records.
** - Two servers (commodity-2node): only the activations and gradients of
**   the stage pair split between the servers cross Ethernet.
** - Mappings: cross is 0, 4, 1, 5, 2, 6, 3, 7 on 8 GPUs; block and
**   sequential as documented.
** - trainsim place: every order of the search space simulated, best first,
**   and the best's outputs written; a GPU-resident schedule is refused.
** - Reference executor: weights held in host buffers and copied into each
**   device before use; gradients written back equal the single-device
**   gradients (<= 1e-10), for mobius and gpipe-swap.
** - Determinism and bad input (devices > stages, block divisibility,
**   mapping entries, a platform without host memory, devices on a
**   schedule that keeps weights on the GPU).
*/
#include <math.h>
#include <string.h>
#include <sysexits.h>

#include <cjson/cJSON.h>

#include "ts_place.h"
#include "ts_ref.h"
#include "tshelp.h"
#include "tsunit.h"

/* One GPU g0 and its DRAM behind one link of bw B/s, no latency; the path
** of a new temporary file (caller unlinks and frees). */
static char *one_gpu_platform(double bw, double memory) {
  char xml[2048];
  snprintf(xml, sizeof xml,
           "<?xml version='1.0'?>\n"
           "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
           "<platform version=\"4.1\"><zone id=\"z\" routing=\"Full\">\n"
           "<host id=\"g0\" speed=\"1e12f\"><prop id=\"memory_bytes\" value=\"%.17g\"/>"
           "<prop id=\"host_memory\" value=\"dram\"/></host>\n"
           "<host id=\"dram\" speed=\"1f\"><prop id=\"memory_endpoint\" value=\"1\"/></host>\n"
           "<link id=\"pcie\" bandwidth=\"%.17gBps\" latency=\"0s\" sharing_policy=\"SPLITDUPLEX\"/>\n"
           "<route src=\"g0\" dst=\"dram\" symmetrical=\"NO\"><link_ctn id=\"pcie\" direction=\"UP\"/></route>\n"
           "<route src=\"dram\" dst=\"g0\" symmetrical=\"NO\"><link_ctn id=\"pcie\" direction=\"DOWN\"/></route>\n"
           "</zone></platform>\n",
           memory, bw);
  return ts__xstrdup(th_write_tmp(xml, ".xml"));
}

/* The absolute path of a shipped platform (tests run from the repository
** root; job files live in /tmp). */
static const char *shipped(const char *name) {
  static char path[2][4096];
  static int k;
  char cwd[2048];
  k ^= 1;
  snprintf(path[k], sizeof path[k], "%s/platforms/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", name);
  return path[k];
}

/* A synthetic job of S stages on G devices (weights W bytes per stage). */
static int sim_job(const char *sched, const char *platform, int S, int G, int m, double W,
                   const char *extra, ts_job_t **job, ts_outcome_t *o, ts_err_t *err) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 0, \"weights_bytes\": %.17g},"
           " \"platform\": \"%s\", \"schedule\": \"%s\", \"stages\": %d, \"devices\": %d,"
           " \"microbatches\": %d%s}",
           W, platform, sched, S, G, m, extra ? extra : "");
  return th_simulate(json, NULL, 0, job, o, err);
}

static void test_closed_forms(void) {
  const double B = 1e9;
  char *plat = one_gpu_platform(B, 1e15);
  static const int cases[][2] = {{1, 1}, {2, 2}, {3, 4}, {5, 3}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int S = cases[i][0], m = cases[i][1];
    double W = 0.5 * B, w = W / B; /* w = 0.5 s <= m t_f */
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    int rc = sim_job("gpipe-swap", plat, S, 1, m, W, NULL, &job, &o, &err);
    if (rc) fprintf(stderr, "\n  %s\n", err.msg);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    TS_ASSERT_REL(o.metrics->iteration_time_s, (2 * S - 1) * w + S * w + m * S * 3.0, 1e-9);
    TS_ASSERT_REL(o.metrics->dev[0].host_bytes, (3 * S - 1) * W, 1e-12);
    ts_outcome_free(&o);
    ts_job_free(job);
    rc = sim_job("mobius", plat, S, 1, m, W, NULL, &job, &o, &err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    TS_ASSERT_REL(o.metrics->iteration_time_s, w + m * S * 3.0 + w, 1e-9);
    CU_ASSERT_EQUAL(o.metrics->dev[0].room_wait_s, 0);
    /* At most the current visit, the prefetched one (weights and gradient
    ** buffers, 2 W each) and the previous visit's gradients on their way
    ** back. */
    CU_ASSERT(o.metrics->dev[0].peak_resident_bytes <= 5 * W * (1 + 1e-12));
    ts_outcome_free(&o);
    ts_job_free(job);
  }
  unlink(plat);
  free(plat);
}

static void test_room_wait_and_memory(void) {
  const double B = 1e9, W = 0.5e9;
  char *roomy = one_gpu_platform(B, 1e15), *tight = one_gpu_platform(B, 2.5 * W);
  ts_job_t *j1, *j2;
  ts_outcome_t a, b;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(sim_job("mobius", roomy, 4, 1, 2, W, NULL, &j1, &a, &err), 0);
  int rc = sim_job("mobius", tight, 4, 1, 2, W, NULL, &j2, &b, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const ts_device_metrics_t *dm = &b.metrics->dev[0];
  CU_ASSERT(dm->room_wait_s > 0);
  CU_ASSERT(dm->peak_memory_bytes <= 2.5 * W);
  CU_ASSERT(a.metrics->dev[0].peak_memory_bytes > 2.5 * W);
  CU_ASSERT(b.metrics->iteration_time_s > a.metrics->iteration_time_s);
  /* The room_wait events add up to the reported wait. */
  double waits = 0;
  for (int i = 0; i < b.run->n_events; i++)
    if (b.run->events[i].kind == TS_ROOM_WAIT) waits += b.run->events[i].end - b.run->events[i].start;
  TS_ASSERT_REL(waits, dm->room_wait_s, 1e-12);
  /* Weights over time (no activations here, so their peak is the peak
  ** memory): they start with the first fetch and step by W. */
  double mx = 0;
  for (int i = 0; i < dm->n_res; i++) mx = fmax(mx, dm->res_bytes[i]);
  TS_ASSERT_REL(mx, dm->peak_resident_bytes, 1e-12);
  TS_ASSERT_REL(mx, dm->peak_memory_bytes, 1e-12);
  CU_ASSERT(dm->n_res > 2);
  TS_ASSERT_REL(dm->res_bytes[0], W, 1e-12); /* the first fetch starts at 0 */
  for (int i = 1; i < dm->n_res; i++) {
    double step = fabs(dm->res_bytes[i] - dm->res_bytes[i - 1]) / W;
    CU_ASSERT(fabs(step - round(step)) < 1e-9);
  }
  ts_outcome_free(&a);
  ts_outcome_free(&b);
  ts_job_free(j1);
  ts_job_free(j2);
  /* Capacity below one stage plus its gradients: a clear deadlock. */
  char *tiny = one_gpu_platform(B, 1.5 * W);
  rc = sim_job("mobius", tiny, 2, 1, 1, W, NULL, &j1, &a, &err);
  CU_ASSERT_EQUAL(rc, EX_SOFTWARE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "deadlock"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "weights of stage"));
  unlink(roomy);
  unlink(tight);
  unlink(tiny);
  free(roomy);
  free(tight);
  free(tiny);
}

/* Exact room waits and activations in the ledger (one GPU, S = 4, m = 2,
** W = 0.5e9 B at 1e9 B/s, so every copy takes 0.5 s; t_f = 1, t_b = 2;
** capacity 4 W).  Timeline: fetch 0 [0, 0.5]; forwards of stage 0 [0.5,
** 2.5], 1 [2.5, 4.5], 2 [4.5, 6.5], each prefetched during the one before;
** stage 3 (weights and gradient buffer, 2 W) forwards and backwards [6.5,
** 12.5]; stage 2's backward visit (2 W) prefetched at 6.5 (4 W in use).
** At 12.5 stage 3 is evicted and its gradients go back [12.5, 13]: the
** prefetch of stage 1's backward visit (2 W) finds 2 W + W in use and waits
** for room until 13; likewise stage 0's from 16.5 to 17.  Backwards end at
** 24.5, the last write-back at 25. */
static void test_room_wait_exact(void) {
  char *plat = one_gpu_platform(1e9, 2e9);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(sim_job("mobius", plat, 4, 1, 2, 0.5e9, NULL, &job, &o, &err), 0);
  TS_ASSERT_REL(o.metrics->iteration_time_s, 25, 1e-12);
  double want[2][3] = {{1, 12.5, 13}, {0, 16.5, 17}};
  int k = 0;
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (e->kind != TS_ROOM_WAIT) continue;
    CU_ASSERT_FATAL(k < 2);
    CU_ASSERT_EQUAL(e->vstage, (int)want[k][0]);
    TS_ASSERT_REL(e->start, want[k][1], 1e-12);
    TS_ASSERT_REL(e->end, want[k][2], 1e-12);
    k++;
  }
  CU_ASSERT_EQUAL(k, 2);
  TS_ASSERT_REL(o.metrics->dev[0].room_wait_s, 1.0, 1e-12);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
  free(plat);
  /* Activations a = 0.3e9 per micro-batch and stage, capacity 3e9.
  ** Recompute none: the forwards of stages 0..2 keep 3 x 2a, and the
  ** merged visit of stage 3 holds 2 W and must reserve 2a more: 3.4e9, it
  ** can never fit, a deadlock naming the reservation.  Recompute full
  ** (inputs of 0 bytes kept, one recompute stash a at a time): the peak is
  ** the current backward visit (2 W), the prefetched one (2 W), the
  ** previous one's gradients on their way back (W) and a: 5 W + a. */
  plat = one_gpu_platform(1e9, 3e9);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 0.3e9, \"weights_bytes\": 0.5e9},"
           " \"platform\": \"%s\", \"schedule\": \"mobius\", \"stages\": 4, \"devices\": 1,"
           " \"microbatches\": 2, \"recompute\": \"none\"}",
           plat);
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  CU_ASSERT_EQUAL(rc, EX_SOFTWARE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "room to reserve the activations of 2 forward ops of stage 3"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "needs 600000000 bytes; 2800000000 of 3000000000 in use"));
  const char *full[] = {"recompute=full"};
  rc = th_simulate(json, full, 1, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  TS_ASSERT_REL(o.metrics->dev[0].peak_memory_bytes, 5 * 0.5e9 + 0.3e9, 1e-12);
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 0.3e9, 1e-12);
  CU_ASSERT(o.metrics->dev[0].fits);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
  free(plat);
}

/* End of the first fetch of device d. */
static double first_fetch_end(const ts_outcome_t *o, int d) {
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (e->device == d && e->kind == TS_FETCH) return e->end;
  }
  return -1;
}

static void test_uplink_contention(void) {
  const double W = 1.3e9, lat = 0.1e-6 + 1e-6 + 1e-6; /* DRAM, uplink, GPU link */
  static const struct { const char *hosts; double rate; } cases[] = {
      {"\"node0-gpu0\", \"node0-gpu1\", \"node0-gpu2\", \"node0-gpu3\"", 13e9 / 4},
      {"\"node0-gpu0\", \"node0-gpu4\", \"node0-gpu1\", \"node0-gpu5\"", 6.5e9}};
  for (int k = 0; k < 2; k++) {
    char extra[256];
    snprintf(extra, sizeof extra, ", \"placement\": [%s], \"mapping\": \"sequential\"",
             cases[k].hosts);
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    int rc = sim_job("mobius", shipped("commodity-8gpu.xml"), 4, 4, 1, W, extra, &job, &o, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int d = 0; d < 4; d++) TS_ASSERT_REL(first_fetch_end(&o, d), lat + W / cases[k].rate, 1e-6);
    /* Every byte fetched or written back crossed an uplink. */
    double up = 0, host = 0;
    for (int i = 0; i < o.run->n_links; i++)
      if (strncmp(o.run->links[i].name, "uplink-", 7) == 0) up += o.run->links[i].bytes;
    for (int d = 0; d < 4; d++) host += o.metrics->dev[d].host_bytes;
    TS_ASSERT_REL(up, host, 1e-12);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

/* commodity-2node: stages 0-7 on the first server, 8-15 on the second
** (sequential mapping): only the activations and gradients between stages
** 7 and 8 cross Ethernet, m of each; host copies stay inside a server. */
static void test_two_servers(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int m = 3;
  double msg = 4e6;
  char extra[128];
  snprintf(extra, sizeof extra, ", \"mapping\": \"sequential\"");
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 0.01, \"backward_s\": 0.02,"
           " \"activation_message_bytes\": %.17g, \"activation_bytes\": 0, \"weights_bytes\": 1e8},"
           " \"platform\": \"%s\", \"schedule\": \"mobius\", \"stages\": 16, \"devices\": 16,"
           " \"microbatches\": %d%s}",
           msg, shipped("commodity-2node.xml"), m, extra);
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double fabric = -1, eth0 = -1;
  for (int i = 0; i < o.run->n_links; i++) {
    if (!strcmp(o.run->links[i].name, "eth-fabric")) fabric = o.run->links[i].bytes;
    if (!strcmp(o.run->links[i].name, "eth-node0_UP")) eth0 = o.run->links[i].bytes;
  }
  TS_ASSERT_REL(fabric, 2 * m * msg, 1e-12);
  TS_ASSERT_REL(eth0, m * msg, 1e-12); /* node 0 sends the activations */
  CU_ASSERT_EQUAL(o.layout->dev[8], 8);
  CU_ASSERT_STRING_EQUAL(o.run->devices[8].name, "node1-gpu0");
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* A customised PCIe-tree platform's "regenerate" command writes it again
** byte for byte (every figure is in the command). */
static void test_regenerate_tree(void) {
  char *out = NULL, *err = NULL;
  CU_ASSERT_EQUAL_FATAL(th_cli("platform --preset h200-pcie-8gpu --uplink-bw 30GBps --nvlink-lat 5e-6"
                               " --gpus-per-switch 4 --host-memory 5e11",
                               &out, &err),
                        0);
  const char *k = strstr(out, "id=\"regenerate\" value=\"trainsim ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  k += strlen("id=\"regenerate\" value=\"trainsim ");
  char args[2048];
  snprintf(args, sizeof args, "%.*s", (int)strcspn(k, "\""), k);
  CU_ASSERT_PTR_NOT_NULL(strstr(args, "--gpus-per-switch 4"));
  char *again = NULL;
  CU_ASSERT_EQUAL(th_cli(args, &again, NULL), 0);
  CU_ASSERT_STRING_EQUAL(again, out);
  free(out);
  free(err);
  free(again);
}

static void test_mappings(void) {
  static const struct { const char *rule; int S, G; int dev[16]; } cases[] = {
      {"cross", 8, 8, {0, 4, 1, 5, 2, 6, 3, 7}},
      {"cross", 16, 8, {0, 4, 1, 5, 2, 6, 3, 7, 0, 4, 1, 5, 2, 6, 3, 7}},
      {"sequential", 6, 3, {0, 1, 2, 0, 1, 2}},
      {"block", 6, 3, {0, 0, 1, 1, 2, 2}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char extra[64];
    snprintf(extra, sizeof extra, ", \"mapping\": \"%s\"", cases[i].rule);
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(sim_job("mobius", "ideal", cases[i].S, cases[i].G, 2, 1e6, extra, &job, &o, &err), 0);
    for (int k = 0; k < cases[i].S; k++) CU_ASSERT_EQUAL(o.layout->dev[k], cases[i].dev[k]);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_reference_gradients(void) {
  static const char *const scheds[] = {"mobius", "gpipe-swap"};
  for (int i = 0; i < 2; i++) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
             " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
             " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": 4, \"devices\": 2,"
             " \"microbatches\": 3, \"recompute\": \"%s\"}",
             scheds[i], i ? "none" : "full");
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
    ts_outcome_t jo;
    CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &jo, &err), 0);
    CU_ASSERT_EQUAL(jo.cost->n_parts, job->stages);
    ts_run_t *run = NULL;
    ts_ref_model_t *g = NULL, *oracle = ts_ref_oracle(job);
    int rc = ts_ref_run(job, jo.sched, jo.plan, jo.cost, &run, &g, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(oracle);
    double worst = 0;
    for (int l = 0; l < 4; l++) {
      size_t n;
      const double *a = ts_ref_block_grad(g, l, &n), *b = ts_ref_block_grad(oracle, l, &n);
      double num = 0, den = 0;
      for (size_t k = 0; k < n; k++) {
        num = fmax(num, fabs(a[k] - b[k]));
        den = fmax(den, fabs(b[k]));
      }
      CU_ASSERT(den > 0);
      worst = fmax(worst, num / den);
    }
    CU_ASSERT(worst <= 1e-10);
    /* The executor copied weights in and gradients out: the same fetches
    ** and write-backs as the program asks of the simulator. */
    int fetches = 0, offloads = 0;
    for (int k = 0; k < run->n_events; k++) {
      fetches += run->events[k].kind == TS_FETCH;
      offloads += run->events[k].kind == TS_OFFLOAD;
    }
    CU_ASSERT_EQUAL(fetches, 2 * 4 - 2); /* 2 devices: 2S/G - 1 visits each */
    CU_ASSERT_EQUAL(offloads, 4);
    ts_ref_model_free(g);
    ts_ref_model_free(oracle);
    ts_run_free(run);
    ts_outcome_free(&jo);
    ts_job_free(job);
  }
}

static void test_determinism(void) {
  char *s[2];
  for (int k = 0; k < 2; k++) {
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(sim_job("mobius", shipped("commodity-8gpu.xml"), 16, 8, 4, 3e8, NULL,
                                  &job, &o, &err),
                          0);
    cJSON *j = ts__summary_json(&o.r);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(j, "job"), "file"); /* a fresh temporary */
    s[k] = cJSON_Print(j);
    cJSON_Delete(j);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
  CU_ASSERT_STRING_EQUAL(s[0], s[1]);
  free(s[0]);
  free(s[1]);
}

static void expect_error(const char *sched, const char *plat, int S, int G, const char *extra,
                         int code, const char *what) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = sim_job(sched, plat, S, G, 2, 1e6, extra, &job, &o, &err);
  if (rc == 0) {
    ts_outcome_free(&o);
    ts_job_free(job);
  }
  CU_ASSERT_EQUAL(rc, code);
  if (!strstr(err.msg, what)) fprintf(stderr, "\n  '%s' lacks '%s'\n", err.msg, what);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what));
}

static void test_bad_input(void) {
  expect_error("mobius", "ideal", 4, 8, NULL, EX_DATAERR, "devices: schedule 'mobius' needs at least");
  expect_error("gpipe-swap", "ideal", 6, 4, NULL, EX_DATAERR, "mapping: \"block\" needs stages (6)");
  expect_error("mobius", "ideal", 3, 2, ", \"mapping\": [0, 2, 1]", EX_DATAERR, "mapping[1]");
  expect_error("mobius", "ideal", 3, 2, ", \"mapping\": [0, 0, 0]", EX_DATAERR, "device 1 gets no stage");
  expect_error("mobius", "ideal", 3, 2, ", \"mapping\": \"zigzag\"", EX_DATAERR, "mapping: expected");
  expect_error("mobius", "ideal", 6, 3, ", \"mapping\": \"cross\"", EX_DATAERR, "mapping_groups");
  expect_error("gpipe", "ideal", 4, 2, NULL, EX_DATAERR, "devices: schedule 'gpipe' runs one stage");
  expect_error("mobius", shipped("dgx-a100-2node.xml"), 4, 2, NULL, EX_DATAERR,
               "has no property host_memory");
  expect_error("mobius", shipped("commodity-8gpu.xml"), 4, 2,
               ", \"placement\": [\"node0-gpu0\", \"node0-dram1\"]", EX_DATAERR,
               "placement[1]: host 'node0-dram1' is a memory endpoint");
  expect_error("gpipe", "ideal", 2, 2, ", \"placement\": [\"gpu0\", \"gpu2\"]", EX_DATAERR,
               "placement[1]: host 'gpu2' is a memory endpoint");
}

/* trainsim place: 4 GPUs, two per PCIe switch, 8 stages: the 3 orders
** 0 0 1 1, 0 1 0 1, 0 1 1 0 (in group labels), best first; the best's
** outputs are its run. */
static void test_place(void) {
  char json[1024], dir[] = "/tmp/ts-place-XXXXXX";
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 0.01, \"backward_s\": 0.02,"
           " \"activation_message_bytes\": 1e7, \"activation_bytes\": 0, \"weights_bytes\": 2e8},"
           " \"platform\": \"%s\", \"schedule\": \"mobius\", \"stages\": 8, \"devices\": 4,"
           " \"microbatches\": 2, \"placement\": [\"node0-gpu0\", \"node0-gpu1\", \"node0-gpu4\","
           " \"node0-gpu5\"]}",
           shipped("commodity-8gpu.xml"));
  const char *path = th_write_tmp(json, ".json");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  ts_err_t err = {0};
  int rc = ts_place(path, NULL, 0, dir, true, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  char f[128];
  snprintf(f, sizeof f, "%s/place.csv", dir);
  char *csv = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  double t[3] = {0};
  char order[3][32];
  int rows = 0;
  for (char *line = strchr(csv, '\n'); line && line[1] && rows < 4; line = strchr(line + 1, '\n')) {
    if (rows < 3 && sscanf(line + 1, "%*d,\"%31[^\"]\",\"%*[^\"]\",%lf", order[rows], &t[rows]) != 2)
      break;
    rows++;
  }
  CU_ASSERT_EQUAL(rows, 3);
  CU_ASSERT(t[0] <= t[1] && t[1] <= t[2] && t[2] > 0);
  /* Every order holds each GPU once and starts with GPU 0. */
  for (int i = 0; i < rows; i++) CU_ASSERT_EQUAL(order[i][0], '0');
  snprintf(f, sizeof f, "%s/summary.json", dir);
  char *sum = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
  cJSON *j = cJSON_Parse(sum);
  TS_ASSERT_REL(cJSON_GetObjectItem(j, "iteration_time_s")->valuedouble, t[0], 1e-12);
  cJSON_Delete(j);
  free(sum);
  free(csv);
  static const char *const files[] = {"place.csv", "summary.json", "timeline.csv", "trace.json",
                                      "gantt.svg", "report.html"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(f, sizeof f, "%s/%s", dir, files[i]);
    CU_ASSERT_EQUAL(unlink(f), 0);
  }
  rmdir(dir);
  /* A schedule that keeps weights on the GPU has nothing to place. */
  ts_err_t e2 = {0};
  const char *bad = th_write_tmp("{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1,"
                                 " \"backward_s\": 2, \"activation_bytes\": 0,"
                                 " \"activation_message_bytes\": 0}, \"platform\": \"ideal\","
                                 " \"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 2}",
                                 ".json");
  CU_ASSERT_EQUAL(ts_place(bad, NULL, 0, "/tmp/ts-place-never", true, &e2), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(e2.msg, "not 'gpipe'"));
  CU_ASSERT_NOT_EQUAL(access("/tmp/ts-place-never", F_OK), 0);
  unlink(bad);
  unlink(path);
}

TS_TESTS{TS_TEST(test_closed_forms), TS_TEST(test_place), TS_TEST(test_room_wait_exact), TS_TEST(test_room_wait_and_memory),
         TS_TEST(test_uplink_contention), TS_TEST(test_two_servers), TS_TEST(test_regenerate_tree), TS_TEST(test_mappings),
         TS_TEST(test_reference_gradients), TS_TEST(test_determinism), TS_TEST(test_bad_input)};
TS_TEST_MAIN("mobius")
