/*
** test_executors.c: the executor registry and the one pipeline
** (src/exec/ts_exec.h), and `trainsim run|compare --executor NAME`.
**
** - The registry lists simgrid (the default, index 0) then reference, finds
**   them by name, and an unknown name is EX_USAGE listing both.
** - ts_execute with either executor on a small transformer job (layers 4,
**   hidden 16, heads 2, ffn 64, seq 8, 2 samples per micro-batch, p = 4,
**   m = 8, 1F1B) gives runs whose executor field is the registry name and
**   whose compute ops per device are the same (kind, stage, micro-batch)
**   sequence; ts_simulate is ts_execute with simgrid, event for event.
** - `trainsim run --executor reference` writes all five outputs; its
**   summary.json says executor "reference" and measured peaks, and each
**   device's compute rows in timeline.csv number exactly the simgrid run's
**   (2 x m = 16).  An unknown executor exits 64 with one line naming the
**   known ones and writes nothing; a synthetic job or one too large for
**   the CPU exits 65 with nothing written; place refuses --executor.
** - `trainsim compare --executor reference` runs the schedules on threads
**   and writes compare.csv with ok rows.
*/
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

static const char tiny[] =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
    " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8}";

static void test_registry(void) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(ts_executor_at(0));
  CU_ASSERT_PTR_NOT_NULL_FATAL(ts_executor_at(1));
  CU_ASSERT_STRING_EQUAL(ts_executor_at(0)->name, "simgrid");
  CU_ASSERT_STRING_EQUAL(ts_executor_at(1)->name, "reference");
  CU_ASSERT_PTR_NULL(ts_executor_at(2));
  CU_ASSERT_PTR_NULL(ts_executor_at(-1));
  CU_ASSERT_PTR_EQUAL(ts_executor_find("reference"), ts_executor_at(1));
  CU_ASSERT_PTR_NULL(ts_executor_find("Reference"));
  CU_ASSERT_PTR_NULL(ts_executor_find(NULL));
  for (int i = 0; ts_executor_at(i); i++) {
    CU_ASSERT_PTR_NOT_NULL(ts_executor_at(i)->run);
    CU_ASSERT(strlen(ts_executor_at(i)->title) > 10);
  }
  const ts_executor_t *ex = ts_executor_at(0);
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_executor_lookup("gpu", &ex, &err), EX_USAGE);
  CU_ASSERT_PTR_NULL(ex);
  CU_ASSERT_STRING_EQUAL(err.msg, "unknown executor 'gpu' (known executors: simgrid, reference)");
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_executor_lookup("simgrid", &ex, &err), 0);
  CU_ASSERT_PTR_EQUAL(ex, ts_executor_at(0));
}

static void test_both_executors_one_pipeline(void) {
  ts_job_t *job = NULL;
  ts_outcome_t sim, ref, plain;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(tiny, NULL, 0, &job, &plain, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_execute(job, NULL, NULL, &sim, &err), 0);
  int rc = ts_execute(job, NULL, ts_executor_find("reference"), &ref, &err);
  if (rc) fprintf(stderr, "\nreference: %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_STRING_EQUAL(sim.run->executor, "simgrid");
  CU_ASSERT_STRING_EQUAL(ref.run->executor, "reference");
  CU_ASSERT_STRING_EQUAL(ref.sched->name, "1f1b");
  CU_ASSERT_PTR_EQUAL(ref.r.run, ref.run);
  CU_ASSERT_PTR_EQUAL(ref.r.metrics, ref.metrics);
  CU_ASSERT_PTR_NOT_NULL(ref.run->measured_peak_act_bytes);
  CU_ASSERT(ref.metrics->iteration_time_s > 0);
  /* ts_simulate is ts_execute on simgrid: the same events. */
  CU_ASSERT_EQUAL_FATAL(plain.run->n_events, sim.run->n_events);
  CU_ASSERT_EQUAL(memcmp(plain.run->events, sim.run->events,
                         (size_t)sim.run->n_events * sizeof *sim.run->events), 0);
  CU_ASSERT_EQUAL(ref.run->n_devices, 4);
  for (int d = 0; d < 4; d++) {
    int a[64], b[64];
    int na = th_device_ops(sim.run, d, a, 64), nb = th_device_ops(ref.run, d, b, 64);
    CU_ASSERT_EQUAL(na, 3 * 2 * 8);
    CU_ASSERT(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0);
  }
  ts_outcome_free(&ref);
  ts_outcome_free(&sim);
  ts_outcome_free(&plain);
  ts_outcome_free(&plain); /* a cleared outcome frees again as a no-op */
  ts_job_free(job);
}

static void test_prepare_errors(void) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(tiny, NULL, 0, &job, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &o, &err), 0);
  CU_ASSERT_EQUAL(o.cost->n_parts, 4);
  CU_ASSERT_EQUAL(o.layout->n_devices, 4);
  CU_ASSERT_PTR_NULL(o.run);
  ts_outcome_free(&o);
  /* More stages than layers: the cost model's error, the outcome cleared. */
  job->stages = 8;
  CU_ASSERT_EQUAL(ts_execute(job, NULL, ts_executor_find("reference"), &o, &err), EX_DATAERR);
  CU_ASSERT_PTR_NULL(o.plan);
  CU_ASSERT_PTR_NULL(o.cost);
  ts_job_free(job);
}

/* Compute rows of device d in a timeline.csv text. */
static int compute_rows(const char *csv, int d) {
  int n = 0;
  for (const char *l = strchr(csv, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
    const char *kind = l + 1; /* the sixth field */
    for (int k = 0; k < 5 && kind; k++) kind = strchr(kind, ',') ? strchr(kind, ',') + 1 : NULL;
    if (kind && atoi(l + 1) == d &&
        (!strncmp(kind, "forward,", 8) || !strncmp(kind, "backward,", 9)))
      n++;
  }
  return n;
}

static void test_cli_run_reference(void) {
  const char *job = th_write_tmp(tiny, ".json");
  char dir[] = "/tmp/ts-test-exec-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char args[512], f[600];
  snprintf(args, sizeof args, "run %s --executor reference -o %s/ref --quiet", job, dir);
  char *out = NULL, *err = NULL;
  CU_ASSERT_EQUAL(th_cli(args, &out, &err), 0);
  CU_ASSERT_STRING_EQUAL(err, "");
  free(out);
  free(err);
  snprintf(args, sizeof args, "run %s -o %s/sim --quiet", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, NULL, NULL), 0);
  static const char *const files[] = {"summary.json", "timeline.csv", "trace.json", "gantt.svg",
                                      "report.html"};
  for (int i = 0; i < 5; i++) {
    snprintf(f, sizeof f, "%s/ref/%s", dir, files[i]);
    CU_ASSERT_EQUAL(access(f, R_OK), 0);
  }
  snprintf(f, sizeof f, "%s/ref/summary.json", dir);
  char *s = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"executor\":\t\"reference\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "measured_peak_activation_bytes"));
  free(s);
  snprintf(f, sizeof f, "%s/sim/summary.json", dir);
  s = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL(s && strstr(s, "\"executor\":\t\"simgrid\""));
  free(s);
  snprintf(f, sizeof f, "%s/ref/timeline.csv", dir);
  char *tr = th_slurp(f, NULL);
  snprintf(f, sizeof f, "%s/sim/timeline.csv", dir);
  char *ts = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(tr);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ts);
  for (int d = 0; d < 4; d++) {
    CU_ASSERT_EQUAL(compute_rows(tr, d), 16);
    CU_ASSERT_EQUAL(compute_rows(tr, d), compute_rows(ts, d));
  }
  free(tr);
  free(ts);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
  unlink(job);
}

/* Runs args (with "-o DIR" after the command word); expects code, one line
** on stderr containing want, and no DIR. */
static void expect_refusal(const char *args, int code, const char *want) {
  char dir[] = "/tmp/ts-test-exec-none-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  rmdir(dir);
  char cmd[1024];
  int w = (int)strcspn(args, " ");
  snprintf(cmd, sizeof cmd, "%.*s -o %s%s", w, args, dir, args + w);
  char *err = NULL;
  CU_ASSERT_EQUAL(th_cli(cmd, NULL, &err), code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
  CU_ASSERT_PTR_NOT_NULL(strchr(err, '\n'));
  CU_ASSERT(strchr(err, '\n') && strchr(err, '\n')[1] == 0);
  if (!strstr(err, want)) fprintf(stderr, "\n%s: got %s", args, err);
  CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0);
  free(err);
}

static void test_cli_refusals(void) {
  const char *job = th_write_tmp(tiny, ".json");
  char a[512];
  snprintf(a, sizeof a, "run %s --executor gpu", job);
  expect_refusal(a, EX_USAGE,
                 "trainsim: error: run: unknown executor 'gpu' (known executors: simgrid, reference)");
  snprintf(a, sizeof a, "compare %s --executor ''", job);
  expect_refusal(a, EX_USAGE, "compare: unknown executor ''");
  snprintf(a, sizeof a, "run %s --executor", job);
  expect_refusal(a, EX_USAGE, "requires an argument");
  snprintf(a, sizeof a, "place %s --executor reference", job);
  expect_refusal(a, EX_USAGE, "place: --executor");
  expect_refusal("run examples/synthetic-1f1b.json --executor reference", EX_DATAERR,
                 "the reference executor needs a transformer model");
  expect_refusal("run --executor reference", EX_DATAERR,
                 "model.hidden: 2560 exceeds 1024, the largest the CPU reference executor runs");
  /* shapes the reference block does not have: refused, not run as MHA */
  static const char *const shapes[][2] = {{"model.kv_heads=1", "model.kv_heads"},
                                          {"model.norm=rmsnorm", "model.norm"},
                                          {"model.bias=none", "model.bias"},
                                          {"tensor_parallel=8 --set tensor_parallel_mode=3d",
                                           "tensor_parallel_mode"}};
  for (int i = 0; i < 4; i++) {
    snprintf(a, sizeof a, "run %s --executor reference --set %s", job, shapes[i][0]);
    expect_refusal(a, EX_DATAERR, shapes[i][1]);
  }
  unlink(job);
}

static void test_cli_compare_reference(void) {
  const char *job = th_write_tmp(tiny, ".json");
  char dir[] = "/tmp/ts-test-exec-cmp-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char args[512], f[600];
  snprintf(args, sizeof args, "compare %s --executor reference -o %s", job, dir);
  char *out = NULL;
  CU_ASSERT_EQUAL(th_cli(args, &out, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "(executor reference)"));
  free(out);
  snprintf(f, sizeof f, "%s/compare.csv", dir);
  char *csv = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\ngpipe,,ok,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n1f1b,,ok,"));
  free(csv);
  snprintf(f, sizeof f, "%s/compare.svg", dir);
  char *svg = th_slurp(f, NULL);
  CU_ASSERT_PTR_NOT_NULL(svg && strstr(svg, "reference executor"));
  free(svg);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
  unlink(job);
}

TS_TESTS{TS_TEST(test_registry), TS_TEST(test_both_executors_one_pipeline),
         TS_TEST(test_prepare_errors), TS_TEST(test_cli_run_reference),
         TS_TEST(test_cli_refusals), TS_TEST(test_cli_compare_reference)};
TS_TEST_MAIN("executors")
