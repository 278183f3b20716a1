/*
** test_ref_moe.c: the reference MoE layer (src/ref/ref_moe.c), whose math
** is the reference model's MoE block's (src/ref/ref_moe_layer.c).
**   - expert parallel on 4 threads exchanging token buffers gives the same
**     output, input gradient, gate gradient and expert gradients as the
**     same layer on one thread (<= 1e-10), with tokens dropped;
**   - the gradients are real: the gate and every used expert get non-zero
**     gradients, and a dropped token's output is its input;
**   - for the same seed, the executor's per-lane, per-expert kept tokens and
**     per-device received tokens equal the simulator's routing, and the
**     simulated expert compute of each device takes exactly those tokens'
**     FLOPs.
*/
#include <math.h>

#include "ref_moe.h"
#include "ts_moe.h"
#include "tshelp.h"
#include "tsunit.h"

static ts_moe_t moe_cfg(void) {
  return (ts_moe_t){.experts = 8,
                    .capacity_factor = 1.0,
                    .capacity_multiple = 1,
                    .group_size = 32,
                    .expert_parallel = 4,
                    .every = 2,
                    .expert_ffn = 24,
                    .skew = TS_MOE_ZIPF,
                    .exponent = 1.0,
                    .seed = 3};
}

static double max_diff(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
  return m;
}

static double norm(const double *a, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * a[i];
  return sqrt(s);
}

static void test_ep_equals_one_device(void) {
  ts_moe_t m = moe_cfg();
  ts_ref_moe_config_t c = {.moe = &m, .hidden = 16, .ffn = 24, .tokens = 64, .layer = 0, .mb = 1,
                           .aux_weight = 0.01, .seed = 11};
  ts_ref_moe_result_t ep, one;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_ref_moe_run(&c, 4, &ep, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_ref_moe_run(&c, 1, &one, &err), 0);
  size_t ny = 4 * 64 * 16, ng = 16 * 8, nw = 8 * 16 * 24;
  CU_ASSERT(max_diff(ep.y, one.y, ny) <= 1e-10);
  CU_ASSERT(max_diff(ep.dx, one.dx, ny) <= 1e-10);
  CU_ASSERT(max_diff(ep.dwg, one.dwg, ng) <= 1e-10);
  CU_ASSERT(max_diff(ep.dw1, one.dw1, nw) <= 1e-10);
  CU_ASSERT(max_diff(ep.dw2, one.dw2, nw) <= 1e-10);
  CU_ASSERT(ep.dropped > 0);
  CU_ASSERT_EQUAL(ep.dropped, one.dropped);
  TS_ASSERT_REL(ep.aux, one.aux, 1e-12);
  for (int i = 0; i < 4 * 8; i++) CU_ASSERT_EQUAL(ep.kept[i], one.kept[i]);
  long sum = 0;
  for (int q = 0; q < 4; q++) sum += ep.received[q];
  CU_ASSERT_EQUAL(sum, one.received[0]);
  /* real gradients */
  CU_ASSERT(norm(ep.dwg, ng) > 1e-3);
  for (int e = 0; e < 8; e++) {
    long used = 0;
    for (int r = 0; r < 4; r++) used += ep.kept[r * 8 + e];
    if (used) CU_ASSERT(norm(ep.dw1 + (size_t)e * 16 * 24, 16 * 24) > 1e-6);
  }
  ts_ref_moe_result_free(&ep);
  ts_ref_moe_result_free(&one);
  ts_err_t e2 = {0};
  CU_ASSERT_NOT_EQUAL(ts_ref_moe_run(&c, 3, &ep, &e2), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(e2.msg, "threads"));
}

/* Loss = sum dY . y + aux_weight x aux: central differences of X, W_g and
** W1 elements against dX, dW_g and dW1 check the backward itself, not only
** the agreement of the two runs. */
static void test_finite_differences(void) {
  ts_moe_t m = moe_cfg();
  ts_ref_moe_config_t c = {.moe = &m, .hidden = 16, .ffn = 24, .tokens = 64, .layer = 0, .mb = 1,
                           .aux_weight = 0.01, .seed = 11};
  ts_ref_moe_result_t base;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_ref_moe_run(&c, 4, &base, &err), 0);
  struct { int what; size_t idx; const double *grad; } pts[] = {
      {1, 5, base.dx}, {1, 16 * 70 + 3, base.dx}, {2, 7, base.dwg}, {2, 16 * 8 - 1, base.dwg},
      {3, 11, base.dw1}, {3, 3 * 16 * 24 + 40, base.dw1}};
  for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
    double h = 1e-6, l[2];
    for (int s = 0; s < 2; s++) {
      ts_ref_moe_config_t cc = c;
      cc.eps_what = pts[k].what;
      cc.eps_index = pts[k].idx;
      cc.eps = s ? -h : h;
      ts_ref_moe_result_t r;
      CU_ASSERT_EQUAL_FATAL(ts_ref_moe_run(&cc, 4, &r, &err), 0);
      l[s] = r.loss;
      ts_ref_moe_result_free(&r);
    }
    double fd = (l[0] - l[1]) / (2 * h), g = pts[k].grad[pts[k].idx];
    CU_ASSERT(fabs(fd - g) <= 1e-6 * fmax(1.0, fabs(g)));
    if (fabs(fd - g) > 1e-6 * fmax(1.0, fabs(g)))
      fprintf(stderr, "point %zu: finite difference %.10g, gradient %.10g\n", k, fd, g);
  }
  ts_ref_moe_result_free(&base);
}

static void test_tokens_match_simulator(void) {
  ts_moe_t m = moe_cfg();
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 16, \"heads\": 1,"
           " \"ffn_hidden\": 24, \"vocab\": 8, \"moe\": {\"experts\": 8, \"expert_parallel\": 4,"
           " \"capacity_factor\": 1.0, \"capacity_multiple\": 1, \"group_size\": 32,"
           " \"routing\": {\"skew\": \"zipf\", \"exponent\": 1.0, \"seed\": 3}}},"
           " \"platform\": \"ideal\", \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": 2,"
           " \"seq_len\": 64}");
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const ts_moe_cost_t *mc = o.cost->moe;
  for (int mb = 0; mb < 2; mb++) {
    ts_ref_moe_config_t c = {.moe = &m, .hidden = 16, .ffn = 24, .tokens = 64, .layer = 0,
                             .mb = mb, .aux_weight = 0.01, .seed = 11};
    ts_ref_moe_result_t ep;
    CU_ASSERT_EQUAL_FATAL(ts_ref_moe_run(&c, 4, &ep, &err), 0);
    for (int r = 0; r < 4; r++)
      for (int e = 0; e < 8; e++)
        CU_ASSERT_EQUAL(ep.kept[r * 8 + e], mc->kept[((size_t)mb * 4 + r) * 8 + e]);
    long dropped = 0;
    for (int r = 0; r < 4; r++) dropped += mc->dropped[mb * 4 + r];
    CU_ASSERT_EQUAL(ep.dropped, dropped);
    for (int q = 0; q < 4; q++) {
      long tok = 0;
      for (int r = 0; r < 4; r++) tok += ts_moe_tokens(mc, 0, mb, r, q);
      CU_ASSERT_EQUAL(ep.received[q], tok);
      /* the simulated expert forward of device q: tokens x 2 x 2 h f / 1e12 */
      const ts_event_t *ev = NULL;
      for (int i = 0; i < o.run->n_events && !ev; i++) {
        const ts_event_t *e = &o.run->events[i];
        if (e->device == q && e->mb == mb && e->kind == TS_FORWARD && (e->flags & TS_EVF_EXPERT))
          ev = e;
      }
      CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
      TS_ASSERT_REL(ev->end - ev->start, ep.received[q] * 4.0 * 16 * 24 / 1e12, 1e-9);
    }
    ts_ref_moe_result_free(&ep);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_ep_equals_one_device), TS_TEST(test_finite_differences),
         TS_TEST(test_tokens_match_simulator)};
TS_TEST_MAIN("ref_moe")
