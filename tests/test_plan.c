/*
** test_plan.c: the parallel plan (src/plan/ts_plan.c), on the core library
** alone: this executable links ts_core and nothing above it, so a core file
** that calls into an executor, a writer or the command line fails to link.
**   - coordinates <-> devices is a bijection under every rank order, and
**     the default order tp, ep, dp, pp numbers tensor ranks fastest;
**   - every group kind partitions the devices; members differ only in the
**     group's coordinate, ordered by it; ranks are indices;
**   - replication of a pipeline: plan vstage k R + r, chains within a
**     replica, cost rows shared;
**   - REPLICA groups: DP x EP of a stage, Chimera's pairs {i, D - 1 - i},
**     Mobius' devices alone (each holds other stages);
**   - bad degrees and orders are one-line errors;
**   - a job's data_parallel replicas under the rank orders "tp-dp-pp" and
**     "tp-pp-dp" (DP, REPLICA and PP groups).
*/
#include <string.h>
#include <sysexits.h>

#include "trainsim.h"
#include "ts_runtime.h"
#include "tsunit.h"

static ts_plan_t *plan_of(int stages, int chunks, int tp, int ep, int dp, const ts_dim_t *order) {
  int deg[TS_DIMS] = {0};
  deg[TS_DIM_TP] = tp;
  deg[TS_DIM_EP] = ep;
  deg[TS_DIM_DP] = dp;
  ts_plan_t *p = NULL;
  ts_err_t err = {0};
  int rc = ts_plan_new(ts_layout_linear(stages, chunks), deg, order, "job.json", &p, &err);
  CU_ASSERT_EQUAL(rc, 0);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  return p;
}

static void test_default_order_numbers_tp_fastest(void) {
  ts_plan_t *p = plan_of(4, 1, 2, 1, 3, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_EQUAL(p->n_devices, 24);
  CU_ASSERT_EQUAL(p->replicas, 6);
  CU_ASSERT_EQUAL(p->degree[TS_DIM_PP], 4);
  /* device = tp + 2 (ep + 1 (dp + 3 pp)) */
  for (int d = 0; d < 24; d++) {
    CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_TP), d % 2);
    CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_EP), 0);
    CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_DP), d / 2 % 3);
    CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_PP), d / 6);
  }
  int c[TS_DIMS] = {1, 0, 2, 3};
  CU_ASSERT_EQUAL(ts_plan_device(p, c), 1 + 2 * (2 + 3 * 3));
  c[TS_DIM_DP] = 3;
  CU_ASSERT_EQUAL(ts_plan_device(p, c), -1);
  ts_plan_free(p);
}

static void test_bijection_under_every_order(void) {
  static const ts_dim_t orders[3][TS_DIMS] = {{TS_DIM_TP, TS_DIM_PP, TS_DIM_DP, TS_DIM_EP},
                                              {TS_DIM_PP, TS_DIM_DP, TS_DIM_EP, TS_DIM_TP},
                                              {TS_DIM_DP, TS_DIM_TP, TS_DIM_EP, TS_DIM_PP}};
  for (int o = 0; o < 3; o++) {
    ts_plan_t *p = plan_of(3, 1, 2, 2, 2, orders[o]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->n_devices, 24);
    unsigned char seen[24] = {0};
    for (int d = 0; d < 24; d++) {
      int c[TS_DIMS];
      for (int k = 0; k < TS_DIMS; k++) c[k] = ts_plan_coord(p, d, (ts_dim_t)k);
      CU_ASSERT_EQUAL(ts_plan_device(p, c), d);
      int key = c[0] + 2 * (c[1] + 2 * (c[2] + 2 * c[3]));
      CU_ASSERT_FALSE(seen[key]);
      seen[key] = 1;
    }
    /* The first dimension of the order varies fastest. */
    CU_ASSERT_EQUAL(ts_plan_coord(p, 1, orders[o][0]), 1);
    ts_plan_free(p);
  }
}

static void test_groups_partition_and_vary_one_coordinate(void) {
  ts_plan_t *p = plan_of(2, 1, 2, 2, 3, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  static const ts_dim_t dim_of[4] = {TS_DIM_TP, TS_DIM_EP, TS_DIM_DP, TS_DIM_PP};
  for (int k = 0; k < 4; k++) {
    int count = 0;
    for (int g = 0; g < p->n_groups[k]; g++) count += p->first[k][g + 1] - p->first[k][g];
    CU_ASSERT_EQUAL(count, p->n_devices);
    CU_ASSERT_EQUAL(p->n_groups[k] * p->degree[dim_of[k]], p->n_devices);
    for (int d = 0; d < p->n_devices; d++) {
      ts_group_t g = ts_plan_group(p, (ts_group_kind_t)k, d);
      CU_ASSERT_EQUAL(g.n, p->degree[dim_of[k]]);
      CU_ASSERT_EQUAL(g.dev[g.rank], d);
      for (int i = 0; i < g.n; i++) {
        CU_ASSERT_EQUAL(ts_plan_coord(p, g.dev[i], dim_of[k]), i);
        for (int o = 0; o < TS_DIMS; o++)
          if (o != (int)dim_of[k])
            CU_ASSERT_EQUAL(ts_plan_coord(p, g.dev[i], (ts_dim_t)o), ts_plan_coord(p, d, (ts_dim_t)o));
      }
    }
  }
  ts_plan_free(p);
}

static void test_replication_of_the_pipeline(void) {
  ts_plan_t *p = plan_of(3, 2, 1, 2, 2, NULL); /* interleaved-like: 6 vstages x 4 replicas */
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  const ts_layout_t *L = p->layout;
  int R = p->replicas;
  CU_ASSERT_EQUAL(R, 4);
  CU_ASSERT_EQUAL(L->n_vstages, 6 * R);
  for (int k = 0; k < 6; k++)
    for (int r = 0; r < R; r++) {
      int v = k * R + r, d = L->dev[v];
      CU_ASSERT_EQUAL(L->part[v], k);
      CU_ASSERT_EQUAL(L->stage[v], k % 3);
      CU_ASSERT_EQUAL(L->chunk[v], k / 3);
      CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_PP), k % 3);
      CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_EP), r % 2);
      CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_DP), r / 2);
      CU_ASSERT_EQUAL(L->next[v], k + 1 < 6 ? v + R : -1);
      CU_ASSERT_EQUAL(L->prev[v], k > 0 ? v - R : -1);
    }
  /* The pipeline group of a device: its replica's positions, in order. */
  ts_group_t pp = ts_plan_group(p, TS_GROUP_PP, L->dev[1]);
  CU_ASSERT_EQUAL(pp.n, 3);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(pp.dev[i], L->dev[i * R + 1]);
  /* REPLICA: the EP x DP devices of a stage. */
  ts_group_t rg = ts_plan_group(p, TS_GROUP_REPLICA, L->dev[R + 3]);
  CU_ASSERT_EQUAL(rg.n, 4);
  for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(ts_plan_coord(p, rg.dev[i], TS_DIM_PP), 1);
  ts_plan_free(p);
}

/* The plans of the shipped schedules through their own pipeline rules. */
static ts_plan_t *plan_for(const char *schedule, int stages, int devices, int mbs) {
  ts_job_t job;
  memset(&job, 0, sizeof job);
  snprintf(job.path, sizeof job.path, "job.json");
  snprintf(job.schedule, sizeof job.schedule, "%s", schedule);
  snprintf(job.mapping_rule, sizeof job.mapping_rule, "sequential");
  job.stages = stages;
  job.devices = devices;
  job.microbatches = mbs;
  job.chunks = job.iterations = 1;
  job.mapping_groups = 2;
  ts_plan_t *p = NULL;
  ts_err_t err = {0};
  const ts_schedule_t *s = ts_schedule_find(schedule);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL(ts_plan_for_job(&job, s, &p, &err), 0);
  return p;
}

static void test_replica_groups_of_chimera_and_mobius(void) {
  ts_plan_t *p = plan_for("chimera", 6, 6, 6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  for (int d = 0; d < 6; d++) {
    ts_group_t g = ts_plan_group(p, TS_GROUP_REPLICA, d);
    CU_ASSERT_EQUAL(g.n, 2);
    int o = 5 - d;
    CU_ASSERT_EQUAL(g.dev[0], d < o ? d : o);
    CU_ASSERT_EQUAL(g.dev[1], d < o ? o : d);
  }
  ts_plan_free(p);
  p = plan_for("mobius", 8, 4, 4);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_EQUAL(p->n_devices, 4);
  for (int d = 0; d < 4; d++) CU_ASSERT_EQUAL(ts_plan_group(p, TS_GROUP_REPLICA, d).n, 1);
  ts_plan_free(p);
}

static void test_bad_degrees_and_orders(void) {
  int deg[TS_DIMS] = {1, 0, 1, 1};
  ts_plan_t *p = (ts_plan_t *)1;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_plan_new(ts_layout_linear(2, 1), deg, NULL, "job.json", &p, &err), EX_DATAERR);
  CU_ASSERT_PTR_NULL(p);
  CU_ASSERT_STRING_EQUAL(err.msg, "job.json: ep degree 0: must be at least 1");
  static const ts_dim_t twice[TS_DIMS] = {TS_DIM_TP, TS_DIM_TP, TS_DIM_DP, TS_DIM_PP};
  int ok[TS_DIMS] = {1, 1, 1, 1};
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_plan_new(ts_layout_linear(2, 1), ok, twice, "job.json", &p, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "rank order"));
  int huge[TS_DIMS] = {4096, 4096, 1, 1};
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_plan_new(ts_layout_linear(2, 1), huge, NULL, "job.json", &p, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "more than"));
}

/* A job's data-parallel replicas through the loader and ts_plan_for_job:
** a 2-stage 1F1B job with data_parallel 2.  Devices are numbered by the
** rank order, fastest dimension first: under "tp-dp-pp" device = dp + 2 pp,
** so the DP groups are {0, 1} and {2, 3} and replica 0's pipeline is
** {0, 2}; under "tp-pp-dp" device = pp + 2 dp, so the DP groups are
** {0, 2} and {1, 3} and replica 0's pipeline is {0, 1}. */
static void test_job_data_parallel_groups(void) {
  static const struct {
    const char *order;
    int dp[2][2], pipe0[2];
  } cases[] = {{"rank_order=tp-dp-pp", {{0, 1}, {2, 3}}, {0, 2}},
               {"rank_order=tp-pp-dp", {{0, 2}, {1, 3}}, {0, 1}}};
  for (int c = 0; c < 2; c++) {
    const char *sets[] = {"platform=ideal", "schedule=1f1b", "stages=2", "microbatches=4",
                          "data_parallel=2", cases[c].order};
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    int rc = ts_job_load(NULL, sets, 6, &job, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(job->devices, 4);
    const ts_schedule_t *s = ts_schedule_find("1f1b");
    CU_ASSERT_EQUAL(ts_plan_job_devices(job, s, NULL), 4);
    ts_plan_t *p = NULL;
    CU_ASSERT_EQUAL_FATAL(ts_plan_for_job(job, s, &p, &err), 0);
    CU_ASSERT_EQUAL(p->n_devices, 4);
    CU_ASSERT_EQUAL(p->degree[TS_DIM_DP], 2);
    CU_ASSERT_EQUAL(p->degree[TS_DIM_PP], 2);
    CU_ASSERT_EQUAL(p->replicas, 2);
    CU_ASSERT_EQUAL(p->n_groups[TS_GROUP_DP], 2);
    for (int g = 0; g < 2; g++)
      for (int i = 0; i < 2; i++) {
        int d = cases[c].dp[g][i];
        ts_group_t dp = ts_plan_group(p, TS_GROUP_DP, d);
        CU_ASSERT_EQUAL(dp.n, 2);
        CU_ASSERT_EQUAL(dp.rank, i);
        CU_ASSERT_EQUAL(dp.dev[0], cases[c].dp[g][0]);
        CU_ASSERT_EQUAL(dp.dev[1], cases[c].dp[g][1]);
        CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_DP), i);
        CU_ASSERT_EQUAL(ts_plan_coord(p, d, TS_DIM_PP), g);
        /* The stage's copies are its REPLICA group. */
        ts_group_t rg = ts_plan_group(p, TS_GROUP_REPLICA, d);
        CU_ASSERT(rg.n == 2 && rg.dev[0] == dp.dev[0] && rg.dev[1] == dp.dev[1]);
      }
    /* Plan vstage k R + r: replica r's stage k. */
    for (int k = 0; k < 2; k++) {
      CU_ASSERT_EQUAL(p->layout->dev[k * 2], cases[c].pipe0[k]);
      CU_ASSERT_EQUAL(p->layout->part[k * 2 + 1], k);
    }
    ts_group_t pp = ts_plan_group(p, TS_GROUP_PP, 0);
    CU_ASSERT(pp.n == 2 && pp.dev[0] == cases[c].pipe0[0] && pp.dev[1] == cases[c].pipe0[1]);
    ts_plan_free(p);
    ts_job_free(job);
  }
}

/* Pulls every core layer into this executable, so that the link checks
** them all (a static library only contributes the objects a program uses). */
static void test_core_links_alone(void) {
  static int (*volatile load)(const char *, const char *const *, int, ts_job_t **, ts_err_t *) =
      ts_job_load;
  static int (*volatile cost)(const ts_job_t *, int, ts_cost_t **, ts_err_t *) = ts_cost_build;
  static ts_metrics_t *(*volatile metrics)(const ts_job_t *, const ts_schedule_t *, const ts_plan_t *,
                                           const ts_cost_t *, const ts_run_t *) = ts_metrics_compute;
  CU_ASSERT_PTR_NOT_NULL(load);
  CU_ASSERT_PTR_NOT_NULL(cost);
  CU_ASSERT_PTR_NOT_NULL(metrics);
  for (int i = 0; ts_schedule_at(i); i++) CU_ASSERT_PTR_NOT_NULL(ts_schedule_at(i)->program);
}

TS_TESTS{
    TS_TEST(test_core_links_alone),
    TS_TEST(test_default_order_numbers_tp_fastest),
    TS_TEST(test_bijection_under_every_order),
    TS_TEST(test_groups_partition_and_vary_one_coordinate),
    TS_TEST(test_replication_of_the_pipeline),
    TS_TEST(test_replica_groups_of_chimera_and_mobius),
    TS_TEST(test_bad_degrees_and_orders),
    TS_TEST(test_job_data_parallel_groups),
};
TS_TEST_MAIN("parallel plan")
