/*
** test_budget.c: the estimate of a job's size before it runs and the
** budget warning (src/exec/ts_budget.c, README "Budget"):
** - the benchmark job (1F1B, p = 64, m = 512) is exactly 65,536 compute
**   ops and 64,512 transfers, within the budget: no warning;
** - 1F1B with p = 1,024, m = 1,000 (about 4.1 M events, 2.1 GB of output)
**   warns in one line naming the job and the estimate;
** - a 1 GiB gradient bucket over data_parallel 1,024 is one merged message
**   per member (1,024 transfers, not 2 x 1,023 steps each), one in all
**   when folded; a ring of 63 is stepped, 2 x 62 messages per member;
** - recompute adds one op per micro-batch and stage.
*/
#include <stdlib.h>
#include <string.h>

#include "trainsim.h"
#include "ts_budget.h"
#include "ts_sim.h"
#include "ts_exec.h"
#include "tsunit.h"

/* The estimate of job at path with sets; 0 on success. */
static int estimate(const char *path, const char *const *sets, int n, ts_budget_t *b, char *line,
                    size_t cap, int *warned) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  ts_outcome_t o;
  int rc = ts_job_load(path, sets, n, &job, &err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  rc = ts_exec_prepare(job, NULL, &o, &err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_budget_estimate(job, o.plan, o.cost, b);
  FILE *f = fmemopen(line, cap, "w");
  *warned = ts_budget_warn(f, job, b);
  fclose(f);
  ts_outcome_free(&o);
  ts_job_free(job);
  return 0;
}

static void bench_job_within(void) {
  ts_budget_t b;
  char line[1024] = "";
  int warned;
  estimate("examples/bench-1f1b-p64.json", NULL, 0, &b, line, sizeof line, &warned);
  CU_ASSERT_DOUBLE_EQUAL(b.ops, 65536, 0);
  CU_ASSERT_DOUBLE_EQUAL(b.transfers, 64512, 0);
  CU_ASSERT_DOUBLE_EQUAL(b.output_bytes, (65536 + 64512) * TS_BUDGET_BYTES_PER_EVENT, 1e-6);
  CU_ASSERT_EQUAL(warned, 0);
  CU_ASSERT_STRING_EQUAL(line, "");
}

static void big_pipeline_warns(void) {
  static const char *const sets[] = {"stages=1024", "microbatches=1000"};
  ts_budget_t b;
  char line[1024] = "";
  int warned;
  estimate("examples/bench-scale.json", sets, 2, &b, line, sizeof line, &warned);
  CU_ASSERT_DOUBLE_EQUAL(b.ops, 2048000, 0);
  CU_ASSERT_DOUBLE_EQUAL(b.transfers, 2046000, 0);
  CU_ASSERT_EQUAL(warned, 1);
  CU_ASSERT_STRING_EQUAL(line,
                         "trainsim: warning: examples/bench-scale.json: estimated 4.09e+06 events "
                         "(2.05e+06 compute ops, 2.05e+06 transfers) and 0.56 GB of output, over "
                         "the budget of 2e+06 events or 1 GB (README \"Budget\"): the run may take "
                         "long\n");
}

static void ring_all_reduce_counts(void) {
  static const char *const sets[] = {"stages=1", "microbatches=1", "data_parallel=1024",
                                     "model.weights_bytes=1073741824", "gradient_bucket_mb=1024",
                                     "optimizer=none"};
  ts_budget_t b;
  char line[1024] = "";
  int warned;
  /* Exact: every member sends the ring's two phases as one message
  ** (TS_RING_MERGE_MIN), not 2 x 1023 steps. */
  int saved = ts_sim_fold;
  ts_sim_fold = -1;
  estimate("examples/bench-scale.json", sets, 6, &b, line, sizeof line, &warned);
  CU_ASSERT_DOUBLE_EQUAL(b.ops, 2048, 0);
  CU_ASSERT_DOUBLE_EQUAL(b.transfers, 1024, 0);
  CU_ASSERT_EQUAL(warned, 0);
  /* Folded (the default at 1,024 devices): one device of the class of 1,024. */
  ts_sim_fold = 0;
  estimate("examples/bench-scale.json", sets, 6, &b, line, sizeof line, &warned);
  CU_ASSERT_DOUBLE_EQUAL(b.ops, 2, 0);
  CU_ASSERT_DOUBLE_EQUAL(b.transfers, 1, 0);
  ts_sim_fold = saved;
  /* A ring of 63 members is stepped: 2 x 62 messages each. */
  static const char *const sets63[] = {"stages=1", "microbatches=1", "data_parallel=63",
                                       "model.weights_bytes=1073741824", "gradient_bucket_mb=1024",
                                       "optimizer=none"};
  estimate("examples/bench-scale.json", sets63, 6, &b, line, sizeof line, &warned);
  CU_ASSERT_DOUBLE_EQUAL(b.transfers, 2.0 * 62 * 63, 0);
}

static void recompute_adds_an_op(void) {
  static const char *const sets[] = {"recompute=full"};
  ts_budget_t b;
  char line[1024] = "";
  int warned;
  estimate("examples/bench-scale.json", sets, 1, &b, line, sizeof line, &warned);
  CU_ASSERT_DOUBLE_EQUAL(b.ops, 3 * 8 * 32, 0);
  CU_ASSERT_DOUBLE_EQUAL(b.transfers, 2 * 7 * 32, 0);
  CU_ASSERT_EQUAL(warned, 0);
}

TS_TESTS{TS_TEST(bench_job_within), TS_TEST(big_pipeline_warns), TS_TEST(ring_all_reduce_counts),
         TS_TEST(recompute_adds_an_op)};
TS_TEST_MAIN("budget")
