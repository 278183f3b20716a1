/*
** test_ref_moe_exec.c: gshard and gshard-gpipe on the reference executor
** (src/ref/ref_moe_exec.c) through ts_rt_*, real token rows moved between
** the device threads.
**
** For EP in {2, 4} and stages in {1, 2} (a tiny MoE transformer: layers 4,
** hidden 16, heads 2, ffn 32, seq 8, 2 samples per micro-batch, 4 experts
** of FFN 12, every 2nd layer MoE, groups of 8 tokens, capacity factor 1 so
** that tokens are dropped, m = 3), plus layers 2 with stages 2 (a dense
** first stage):
**   - every gradient of the device-parallel run equals the one-thread
**     oracle's (ts_ref_oracle: all lanes' tokens and all experts on one
**     thread) within a normwise relative error of 1e-10 per block, gate and
**     expert; the replicated (dense, gate) gradients are the first lane's,
**     after the schedule's all-reduce over the EP lanes (test_ref_coll
**     checks every lane's);
**   - the token rows each device's experts computed, per MoE layer and
**     micro-batch, equal the simulator's routing (ts_moe_tokens summed over
**     the source lanes), and some tokens were dropped;
**   - the expert and gate gradients are not trivially zero.
** A dense job's gradients are unchanged by the MoE support (test_ref_exec).
*/
#include <math.h>

#include "ts_moe.h"
#include "ts_ref.h"
#include "tshelp.h"
#include "tsunit.h"

static ts_job_t *moe_job(const char *sched, int layers, int p, int ep) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": %d, \"hidden\": 16, \"heads\": 2,"
           " \"ffn_hidden\": 32, \"vocab\": 50, \"moe\": {\"experts\": 4, \"expert_parallel\": %d,"
           " \"every\": 2, \"expert_ffn\": 12, \"capacity_factor\": 1.0, \"group_size\": 8,"
           " \"routing\": {\"skew\": \"zipf\", \"exponent\": 1.0, \"seed\": 5}}},"
           " \"seq_len\": 8, \"micro_batch_size\": 2, \"platform\": \"ideal\", \"schedule\": \"%s\","
           " \"stages\": %d, \"microbatches\": 3}",
           layers, ep, sched, p);
  return th_load_job(json);
}

static double max_abs(const double *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
  return m;
}

static void one_case(const char *sched, int layers, int p, int ep) {
  ts_job_t *job = moe_job(sched, layers, p, ep);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  const ts_schedule_t *s = ts_schedule_find(sched);
  ts_plan_t *plan = NULL;
  ts_cost_t *cost = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_plan_for_job(job, s, &plan, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, p, &cost, &err), 0);
  ts_run_t *run = NULL;
  ts_ref_model_t *g = NULL, *o = ts_ref_oracle(job);
  ts_ref_extra_t ex;
  int rc = ts_ref_run_ex(job, s, plan, cost, &run, &g, &ex, &err);
  if (rc) fprintf(stderr, "%s: %s\n", sched, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex.expert_rows);
  double worst_dense = 0, worst_moe = 0, big_exp = 0, big_gate = 0;
  for (int l = 0; l < layers; l++) {
    size_t n;
    const double *a = ts_ref_block_grad(g, l, &n), *b = ts_ref_block_grad(o, l, &n);
    worst_dense = fmax(worst_dense, th_rel_err(a, b, n));
    double *ma = ts_ref_moe_grad(g, l, &n), *mb = ts_ref_moe_grad(o, l, &n);
    if (!ma) continue;
    size_t nwg = 16 * 4, nw = 16 * 12;
    worst_moe = fmax(worst_moe, th_rel_err(ma, mb, nwg));
    big_gate = fmax(big_gate, max_abs(mb, nwg));
    for (int e = 0; e < 8; e++) { /* 4 experts' W1, then their W2 */
      worst_moe = fmax(worst_moe, th_rel_err(ma + nwg + e * nw, mb + nwg + e * nw, nw));
      big_exp = fmax(big_exp, max_abs(mb + nwg + e * nw, nw));
    }
  }
  printf("\n    %-12s layers=%d p=%d EP=%d  dense/gate max rel error %.3g, MoE %.3g", sched,
         layers, p, ep, worst_dense, worst_moe);
  CU_ASSERT(worst_dense <= 1e-10);
  CU_ASSERT(worst_moe <= 1e-10);
  CU_ASSERT(big_exp > 1e-6);
  CU_ASSERT(big_gate > 1e-9);
  /* Rows each device's experts computed = the simulator's routing. */
  const ts_moe_cost_t *mc = cost->moe;
  long dropped = 0, mismatches = 0;
  for (int v = 0; v < plan->layout->n_vstages; v++) {
    int d = plan->layout->dev[v], part = plan->layout->part[v];
    ts_group_t g_ep = ts_plan_group(plan, TS_GROUP_EP, d);
    for (int j = mc->part_first[part]; j < mc->part_first[part] + mc->part_count[part]; j++)
      for (int mb = 0; mb < mc->M; mb++) {
        long want = 0;
        for (int r = 0; r < ep; r++) want += ts_moe_tokens(mc, j, mb, r, g_ep.rank);
        if (ex.expert_rows[((size_t)d * ex.n_moe_layers + j) * ex.M + mb] != want) mismatches++;
        dropped += mc->dropped[((size_t)j * mc->M + mb) * mc->lanes + g_ep.rank];
      }
  }
  CU_ASSERT_EQUAL(mismatches, 0);
  CU_ASSERT(dropped > 0);
  ts_ref_extra_free(&ex);
  ts_ref_model_free(g);
  ts_ref_model_free(o);
  ts_run_free(run);
  ts_cost_free(cost);
  ts_plan_free(plan);
  ts_job_free(job);
}

static void test_gshard_matches_oracle(void) {
  static const char *const S[] = {"gshard", "gshard-gpipe"};
  for (int s = 0; s < 2; s++)
    for (int ep = 2; ep <= 4; ep += 2)
      for (int p = 1; p <= 2; p++) one_case(S[s], 4, p, ep);
  one_case("gshard", 2, 2, 2);
}

TS_TESTS{TS_TEST(test_gshard_matches_oracle)};
TS_TEST_MAIN("ref_moe_exec")
