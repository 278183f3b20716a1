/*
** test_ref_exec.c: the CPU reference executor (src/ref/ts_ref.c) against its
** oracles.
**
** - Gradients: after a GPipe or 1F1B iteration (recompute none and full,
**   p = 2 and 4; layers 4, hidden 16, heads 2, ffn 64, seq 8, 2 samples per
**   micro-batch, m = 4) every block's gradient equals the single-device
**   whole-batch gradient of ts_ref_oracle within a normwise relative error
**   (max |g - o| / max |o| over the block) of 1e-10.  The other schedules
**   (interleaved, ZB-H1, Varuna, Chimera, 2BW over two iterations, where
**   every micro-batch still computes with W(0)) meet the same bound.
** - Weight versions: 2BW over 3 iterations (p = 2 and 4, m = p and more)
**   ends with the weights of the sequential oracle of its rule W(t + 1) =
**   W(t) - lr grad f_t(W(t - 1)) (ts_ref_oracle_sgd, staleness 1) within a
**   normwise relative error of the weight change of 1e-10, and differs from
**   synchronous SGD (staleness 0) by more than 1e-6 of it; every stage held
**   2 versions live at its peak.  A program that starts iteration 2 before
**   the update of iteration 0, and 2BW's order under one declared version,
**   are rejected naming device, stage, micro-batch and the missing version;
**   one version with a flush per iteration is synchronous SGD exactly.
** - Op order: each device's compute ops, in program order, are the
**   simulator's for the same job and layout.
** - Activation bytes: each device's measured peak equals, exactly, the
**   simulator's predicted peak for the synthetic twin job (whose cost model
**   counts the executor's tensors), and the closed form (GPipe: m stashes;
**   1F1B: min(p - s, m); recompute: one full stash plus the inputs), plus
**   the first backward's transients (ts_ref_backward_transient_bytes).
** - Determinism: two runs give bitwise-identical gradients.
** - `trainsim validate` (ts_validate_main) on a tiny job writes its files
**   and meets the exact targets; a model too large for the CPU is refused.
** - A program where device 1 waits for a gradient that is never sent is a
**   deadlock with the simulator's message; a schedule error while a peer
**   waits stops the run; a synthetic job is refused.
*/
#include <math.h>
#include <sysexits.h>

#include "sched_util.h"
#include "ts_ref.h"
#include "ts_validate.h"
#include "tshelp.h"
#include "tsunit.h"

/* Loads the small transformer job of the file header (stages p). */
static ts_job_t *small_job(const char *sched, int p, int m, bool rec, const char *extra) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
           " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
           " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": %d,"
           " \"recompute\": \"%s\"%s}",
           sched, p, m, rec ? "full" : "none", extra ? extra : "");
  return th_load_job(json);
}

/* The plan and cost table every executor gets for job under sched (the
** job's own when NULL): ts_exec_prepare, which must succeed. */
static void prepare(const ts_job_t *job, const ts_schedule_t *sched, ts_outcome_t *o) {
  ts_err_t err = {0};
  int rc = ts_exec_prepare(job, sched, o, &err);
  if (rc) fprintf(stderr, "prepare: %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* Runs the reference executor on job under sched (the job's own when NULL),
** with its gradients in *grads when grads is not NULL; returns the code. */
static int ref_run_sched(const ts_job_t *job, const ts_schedule_t *sched, ts_run_t **run,
                         ts_ref_model_t **grads, ts_err_t *err) {
  ts_outcome_t o;
  int rc = ts_exec_prepare(job, sched, &o, err);
  if (!rc) rc = ts_ref_run(job, o.sched, o.plan, o.cost, run, grads, err);
  ts_outcome_free(&o);
  return rc;
}

static int ref_run(const ts_job_t *job, ts_run_t **run, ts_ref_model_t **grads, ts_err_t *err) {
  return ref_run_sched(job, NULL, run, grads, err);
}

static double grads_vs_oracle(const char *sched, int p, int m, bool rec, const char *extra) {
  ts_job_t *job = small_job(sched, p, m, rec, extra);
  if (!job) return INFINITY;
  ts_run_t *run = NULL;
  ts_ref_model_t *g = NULL, *o = ts_ref_oracle(job);
  ts_err_t err = {0};
  int rc = ref_run(job, &run, &g, &err);
  if (rc) fprintf(stderr, "%s: %s\n", sched, err.msg);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL(o);
  double e = (g && o) ? th_grad_error(g, o) : INFINITY;
  /* The gradient is not trivially zero. */
  size_t n;
  double big = 0;
  const double *g0 = o ? ts_ref_block_grad(o, 0, &n) : NULL;
  for (size_t i = 0; g0 && i < n; i++) big = fmax(big, fabs(g0[i]));
  CU_ASSERT(big > 1e-6);
  ts_ref_model_free(g);
  ts_ref_model_free(o);
  ts_run_free(run);
  ts_job_free(job);
  return e;
}

static void test_gradients_match_oracle(void) {
  static const char *const S[] = {"gpipe", "1f1b"};
  static const int P[] = {2, 4};
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < 2; i++)
      for (int rec = 0; rec < 2; rec++) {
        double e = grads_vs_oracle(S[s], P[i], 4, rec, NULL);
        printf("\n    %-6s p=%d recompute=%-4s max block rel error %.3g", S[s], P[i],
               rec ? "full" : "none", e);
        CU_ASSERT(e <= 1e-10);
      }
}

static void test_other_schedules_gradients(void) {
  struct { const char *s; int p, m; bool rec; const char *extra; } c[] = {
      {"interleaved", 2, 4, false, ", \"chunks\": 2"},
      {"zb-h1", 2, 4, false, NULL},
      {"varuna", 2, 4, true, NULL},
      {"chimera", 2, 4, false, NULL},
      {"2bw", 2, 4, false, ", \"iterations\": 2"},
  };
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    double e = grads_vs_oracle(c[i].s, c[i].p, c[i].m, c[i].rec, c[i].extra);
    printf("\n    %-11s max block rel error %.3g", c[i].s, e);
    CU_ASSERT(e <= 1e-10);
  }
}

static void test_op_order_matches_simulator(void) {
  static const char *const S[] = {"gpipe", "1f1b"};
  for (int s = 0; s < 2; s++)
    for (int p = 2; p <= 4; p += 2)
      for (int rec = 0; rec < 2; rec++) {
        ts_job_t *job = small_job(S[s], p, 4, rec, NULL);
        ts_outcome_t o;
        ts_run_t *run = NULL;
        ts_err_t err = {0};
        CU_ASSERT_EQUAL_FATAL(ts_simulate(job, &o, &err), 0);
        CU_ASSERT_EQUAL_FATAL(ref_run(job, &run, NULL, &err), 0);
        CU_ASSERT_STRING_EQUAL(run->executor, "reference");
        for (int d = 0; d < p; d++) {
          int a[256], b[256];
          int na = th_device_ops(run, d, a, 256), nb = th_device_ops(o.run, d, b, 256);
          CU_ASSERT_EQUAL(na, nb);
          CU_ASSERT_EQUAL(na, 3 * 4 * (rec ? 3 : 2));
          CU_ASSERT(na == nb && na <= 256 && memcmp(a, b, (size_t)na * sizeof *a) == 0);
        }
        /* Measured times are sane: ops of a device do not overlap. */
        for (int i = 0; i < run->n_events; i++) CU_ASSERT(run->events[i].end >= run->events[i].start);
        ts_run_free(run);
        ts_outcome_free(&o);
        ts_job_free(job);
      }
}

static void check_bytes(const char *sched, int p, int m, bool rec) {
  ts_job_t *job = small_job(sched, p, m, rec, NULL);
  ts_outcome_t jo;
  prepare(job, NULL, &jo);
  double f[8], b[8], r[8];
  for (int s = 0; s < p; s++) f[s] = 1, b[s] = 2, r[s] = 1;
  ts_job_t *twin = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_ref_sim_job(job, jo.cost, f, b, r, "ideal", &twin, &err), 0);
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(ts_simulate(twin, &o, &err), 0);
  ts_outcome_t ro;
  CU_ASSERT_EQUAL_FATAL(ts_execute(job, NULL, ts_executor_find("reference"), &ro, &err), 0);
  const ts_run_t *run = ro.run;
  CU_ASSERT_PTR_NOT_NULL_FATAL(run->measured_peak_act_bytes);
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  double stash = (double)ts_ref_stash_bytes(&cfg, 4 / p, 2), in = (double)ts_ref_stash_input_bytes(&cfg, 2);
  for (int d = 0; d < p; d++) {
    double meas = run->measured_peak_act_bytes[d], pred = o.metrics->dev[d].peak_activation_bytes;
    int k = strcmp(sched, "gpipe") == 0 ? m : (p - d < m ? p - d : m);
    /* k stashes (inputs) in flight, one recomputed, and the first
    ** backward's transients: its gradient buffers and two messages */
    double tmp = (double)ts_ref_backward_transient_bytes(&cfg, 2);
    double closed = (rec ? stash + k * in : k * stash) + tmp;
    if (meas != pred || meas != closed)
      fprintf(stderr, "\n%s p=%d rec=%d device %d: measured %.17g predicted %.17g closed %.17g\n",
              sched, p, rec, d, meas, pred, closed);
    CU_ASSERT_EQUAL(meas, pred);
    CU_ASSERT_EQUAL(meas, closed);
  }
  ts_outcome_free(&ro);
  ts_outcome_free(&o);
  ts_job_free(twin);
  ts_outcome_free(&jo);
  ts_job_free(job);
}

static void test_activation_bytes_exact(void) {
  for (int p = 2; p <= 4; p += 2)
    for (int rec = 0; rec < 2; rec++) {
      check_bytes("gpipe", p, 4, rec);
      check_bytes("1f1b", p, 4, rec);
    }
}

static void test_deterministic(void) {
  ts_job_t *job = small_job("1f1b", 4, 4, false, NULL);
  ts_run_t *r1 = NULL, *r2 = NULL;
  ts_ref_model_t *g1 = NULL, *g2 = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ref_run(job, &r1, &g1, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ref_run(job, &r2, &g2, &err), 0);
  for (int l = 0; l < 4; l++) {
    size_t n;
    const double *a = ts_ref_block_grad(g1, l, &n), *b = ts_ref_block_grad(g2, l, &n);
    CU_ASSERT_EQUAL(memcmp(a, b, n * sizeof *a), 0);
  }
  ts_ref_model_free(g1);
  ts_ref_model_free(g2);
  ts_run_free(r1);
  ts_run_free(r2);
  ts_job_free(job);
}

/* Device 0 waits for a gradient while device 1 runs a backward before its
** forward (a schedule error): the error must wake device 0. */
static void prog_error_while_waiting(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  if (c->device == 0) {
    ts_sched_forward(rt, v, 0);
    ts_rt_recv(rt, TS_SEND_GRAD, v, 0);
  } else {
    ts_rt_compute(rt, TS_BACKWARD, v, 0);
  }
}

static int run_prog(void (*prog)(ts_rt_t *), bool sim, int p, ts_err_t *err) {
  ts_job_t *job = small_job("gpipe", p, 2, false, NULL);
  ts_schedule_t s = {.name = "test", .title = "test", .program = prog};
  ts_outcome_t o;
  int rc = ts_execute(job, &s, ts_executor_find(sim ? "simgrid" : "reference"), &o, err);
  CU_ASSERT_PTR_NULL(rc ? o.run : NULL);
  ts_outcome_free(&o);
  ts_job_free(job);
  return rc;
}

static void test_deadlock_reported(void) {
  ts_err_t e_ref = {0}, e_sim = {0};
  int rc_ref = run_prog(th_prog_lost_gradient, false, 3, &e_ref);
  int rc_sim = run_prog(th_prog_lost_gradient, true, 3, &e_sim);
  CU_ASSERT_EQUAL(rc_ref, EX_SOFTWARE);
  CU_ASSERT_EQUAL(rc_sim, EX_SOFTWARE);
  const char *want = "device 1 waits for the gradient for stage 1 micro-batch 0";
  CU_ASSERT_PTR_NOT_NULL(strstr(e_ref.msg, "deadlock"));
  CU_ASSERT_PTR_NOT_NULL(strstr(e_ref.msg, want));
  CU_ASSERT_STRING_EQUAL(e_ref.msg, e_sim.msg);
  if (strcmp(e_ref.msg, e_sim.msg)) fprintf(stderr, "\nref: %s\nsim: %s\n", e_ref.msg, e_sim.msg);
}

static void test_error_wakes_waiters(void) {
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(run_prog(prog_error_while_waiting, false, 2, &err), EX_SOFTWARE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "before its forward"));
}

static void test_synthetic_refused(void) {
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_message_bytes\": 0, \"activation_bytes\": 1},"
      " \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 2}";
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
  ts_run_t *run = NULL;
  CU_ASSERT_EQUAL(ref_run(job, &run, NULL, &err), EX_DATAERR);
  CU_ASSERT_PTR_NULL(run);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "transformer"));
  CU_ASSERT_PTR_NULL(ts_ref_oracle(job));
  ts_job_free(job);
}

/* Reads a whole file into a malloc'd string ("" when missing). */
static char *slurp(const char *path) {
  char *b = th_slurp(path, NULL);
  return b ? b : calloc(1, 1);
}

static void test_validate_command(void) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
           " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
           " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4}");
  char *path = strdup(th_write_tmp(json, ".json"));
  char dir[] = "/tmp/ts-test-validate-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char *argv[] = {"validate", path, "-o", dir, "--set", "recompute=full", "--reps", "1",
                  "--runs", "2", "--quiet", NULL};
  CU_ASSERT_EQUAL(ts_validate_main(11, argv), 0);
  char f[256];
  snprintf(f, sizeof f, "%s/validation.json", dir);
  char *v = slurp(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "\"peak_activation_bytes_equal\":\ttrue"));
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "\"op_order_identical\":\ttrue"));
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "\"recompute\":\t\"full\""));
  free(v);
  static const char *const files[] = {"platform.xml",           "reference/summary.json",
                                      "reference/timeline.csv", "reference/gantt.svg",
                                      "simulated/summary.json", "simulated/trace.json"};
  for (int i = 0; i < 6; i++) {
    snprintf(f, sizeof f, "%s/%s", dir, files[i]);
    CU_ASSERT_EQUAL(access(f, R_OK), 0);
  }
  snprintf(f, sizeof f, "%s/reference/summary.json", dir);
  v = slurp(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "\"executor\":\t\"reference\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(v, "measured_peak_activation_bytes"));
  free(v);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
  /* Too large a model: one line, EX_DATAERR, nothing written. */
  char *big[] = {"validate", path, "-o", dir, "--set", "model.hidden=2048", "--quiet", NULL};
  CU_ASSERT_EQUAL(ts_validate_main(7, big), EX_DATAERR);
  CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0);
  char *syn[] = {"validate", path, "--set", "model.kind=synthetic", NULL};
  CU_ASSERT_EQUAL(ts_validate_main(4, syn), EX_DATAERR);
  unlink(path);
  free(path);
}

/* Runs job under sched (the job's own when NULL); returns the code, the
** final model in *w and the per-device peak of live versions in peak[]. */
static int run_versions(const ts_job_t *job, const ts_schedule_t *sched, ts_ref_model_t **w,
                        int *peak, ts_err_t *err) {
  ts_run_t *run = NULL;
  int rc = ref_run_sched(job, sched, &run, w, err);
  CU_ASSERT_PTR_NULL(rc ? run : NULL);
  for (int d = 0; !rc && d < run->n_devices; d++) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(run->measured_weight_versions);
    peak[d] = run->measured_weight_versions[d];
  }
  ts_run_free(run);
  return rc;
}

/* 2BW's update rule, W(t + 1) = W(t) - lr grad f_t(W(t - 1)), applied by
** the executor stage by stage with real weight versions, against the
** sequential oracle; the same run against synchronous SGD differs. */
static void test_2bw_weight_versions(void) {
  static const int cases[][2] = {{2, 2}, {2, 4}, {4, 4}, {4, 6}}; /* p, m */
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    int p = cases[c][0], m = cases[c][1];
    ts_job_t *job = small_job("2bw", p, m, false, ", \"iterations\": 3");
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    ts_ref_model_t *w = NULL, *stale = ts_ref_oracle_sgd(job, 1), *sync = ts_ref_oracle_sgd(job, 0);
    ts_ref_config_t cfg;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
    ts_ref_model_t *w0 = ts_ref_model_new(&cfg); /* W(0) */
    int peak[8] = {0};
    int rc = run_versions(job, NULL, &w, peak, &err);
    if (rc) fprintf(stderr, "\n2bw p=%d m=%d: %s\n", p, m, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stale);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sync);
    double e = th_update_error(w, stale, w0), g = th_grad_error(w, stale);
    double vs_sync = th_update_error(w, sync, w0), stale_sync = th_update_error(stale, sync, w0);
    printf("\n    2bw p=%d m=%d I=3: weights vs 2BW oracle %.3g, gradients %.3g; vs synchronous "
           "SGD %.3g (oracles between themselves %.3g); peak versions",
           p, m, e, g, vs_sync, stale_sync);
    CU_ASSERT(e <= 1e-10);
    CU_ASSERT(g <= 1e-10);
    CU_ASSERT(vs_sync > 1e-6);
    /* The weights moved: the comparison is not of two copies of W(0). */
    CU_ASSERT(th_update_error(w0, stale, w0) == 1);
    for (int d = 0; d < p; d++) {
      printf(" %d", peak[d]);
      CU_ASSERT_EQUAL(peak[d], 2);
    }
    ts_ref_model_free(w);
    ts_ref_model_free(w0);
    ts_ref_model_free(stale);
    ts_ref_model_free(sync);
    ts_job_free(job);
  }
}

/* GPipe over all micro-batches of all iterations: forwards of iteration 2
** (which need W(1)) before any backward of iteration 0. */
static void prog_no_update_wait(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], M = c->microbatches * c->iterations;
  for (int mb = 0; mb < M; mb++) ts_sched_forward(rt, v, mb);
  for (int mb = 0; mb < M; mb++) ts_sched_backward(rt, v, mb);
}

/* GPipe with a flush after every iteration. */
static void prog_flush_each_iteration(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], m = c->microbatches;
  for (int t = 0; t < c->iterations; t++) {
    for (int mb = t * m; mb < (t + 1) * m; mb++) ts_sched_forward(rt, v, mb);
    for (int mb = t * m; mb < (t + 1) * m; mb++) ts_sched_backward(rt, v, mb);
  }
}

static void test_weight_versions_checked(void) {
  ts_job_t *job = small_job("2bw", 2, 2, false, ", \"iterations\": 3");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_err_t err = {0};
  ts_ref_model_t *w = NULL;
  int peak[8];
  /* Two versions, but iteration 2 starts before iteration 0's update. */
  ts_schedule_t greedy = {.name = "test", .title = "test", .program = prog_no_update_wait,
                          .weight_versions = 2};
  CU_ASSERT_EQUAL(run_versions(job, &greedy, &w, peak, &err), EX_SOFTWARE);
  CU_ASSERT_PTR_NULL(w);
  printf("\n    %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "device 0: forward of stage 0 micro-batch 4 (iteration 2) "
                                         "needs weight version 1, not yet computed"));
  /* 2BW's order with one weight version: iteration 1 needs W(1) = the
  ** update of iteration 0, which waits for a flush. */
  ts_schedule_t one = *ts_schedule_find("2bw");
  one.weight_versions = 1;
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(run_versions(job, &one, &w, peak, &err), EX_SOFTWARE);
  CU_ASSERT_PTR_NULL(w);
  printf("\n    %s", err.msg);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "device 0: forward of stage 0 micro-batch 2 (iteration 1) "
                                         "needs weight version 1, not yet computed: the update of "
                                         "iteration 0 still waits for 1 of its 2 backwards"));
  /* One version and a flush per iteration is synchronous SGD, exactly. */
  ts_schedule_t flush = {.name = "test", .title = "test", .program = prog_flush_each_iteration};
  CU_ASSERT_EQUAL_FATAL(run_versions(job, &flush, &w, peak, &err), 0);
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  ts_ref_model_t *sync = ts_ref_oracle_sgd(job, 0), *w0 = ts_ref_model_new(&cfg);
  double e = th_update_error(w, sync, w0);
  printf("\n    flush per iteration, one version: weights vs synchronous SGD %.3g", e);
  CU_ASSERT(e <= 1e-10);
  CU_ASSERT_EQUAL(peak[0], 1);
  CU_ASSERT_EQUAL(peak[1], 1);
  ts_ref_model_free(w);
  ts_ref_model_free(w0);
  ts_ref_model_free(sync);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_gradients_match_oracle), TS_TEST(test_other_schedules_gradients),
         TS_TEST(test_op_order_matches_simulator), TS_TEST(test_activation_bytes_exact),
         TS_TEST(test_deterministic), TS_TEST(test_deadlock_reported),
         TS_TEST(test_error_wakes_waiters), TS_TEST(test_synthetic_refused),
         TS_TEST(test_validate_command), TS_TEST(test_2bw_weight_versions),
         TS_TEST(test_weight_versions_checked)};
TS_TEST_MAIN("ref_exec")
