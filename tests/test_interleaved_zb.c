/*
** test_interleaved_zb.c: Megatron's interleaved 1F1B and ZB-H1 against
** their closed forms on the ideal platform (shared/notes/formulas.md).
**   interleaved: T = m (t_f + t_b) + (p - 1)(t_f + t_b) / v, overhead
**                (p - 1)/(v m), device d holds 2 (p - d - 1) + (v - 1) p + 1
**                chunk-micro-batches at its peak, p2p messages grow v-fold,
**                m % p != 0 is an error;
**   zb-h1:       T = m (T_F + T_B + T_W) + (p - 1)(T_F + T_B - T_W) for m >= p,
**                and T_W <= T_B (the paper assumes T_F = T_B = T_W), i.e. per-stage
**                idle (p - 1)(T_F + T_B - T_W), against 1F1B's
**                (p - 1)(T_F + T_B + T_W); stage 0's activation peak equals 1F1B's.
*/
#include <math.h>
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

static int sim(const char *sched, int p, int m, int v, double tf, double tb, double tw, double msg,
               ts_job_t **job, ts_outcome_t *o, ts_err_t *err) {
  char json[768];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %.17g, \"backward_s\": %.17g,"
           " \"weight_grad_s\": %.17g, \"activation_message_bytes\": %.17g, \"activation_bytes\": 1000},"
           " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": %d,"
           " \"chunks\": %d}",
           tf, tb, tw, msg, sched, p, m, v);
  return th_simulate(json, NULL, 0, job, o, err);
}

static void test_interleaved_closed_form(void) {
  static const int cases[][3] = {{2, 2, 2}, {4, 8, 2}, {4, 8, 4}, {4, 16, 3}, {8, 16, 2}, {2, 6, 3}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int p = cases[i][0], m = cases[i][1], v = cases[i][2];
    double tf = 1.0, tb = 2.0;
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(sim("interleaved", p, m, v, tf, tb, 1.0, 0, &job, &o, &err), 0);
    TS_ASSERT_REL(o.metrics->iteration_time_s, m * (tf + tb) + (p - 1) * (tf + tb) / v, 1e-9);
    TS_ASSERT_REL(o.metrics->bubble_overhead, (double)(p - 1) / (v * m), 1e-9);
    for (int d = 0; d < p; d++) {
      int expect = 2 * (p - d - 1) + (v - 1) * p + 1;
      if (expect > m * v) expect = m * v;
      CU_ASSERT_EQUAL(o.metrics->dev[d].peak_inflight, expect);
      /* Each chunk stashes 1/v of the stage's 1000 bytes, in whole bytes:
      ** 1000 / v where it divides, else 334 or 333 (v = 3). */
      double pk = o.metrics->dev[d].peak_activation_bytes;
      if (1000 % v == 0) {
        TS_ASSERT_REL(pk, expect * 1000.0 / v, 1e-12);
      } else {
        CU_ASSERT(pk == floor(pk) && pk >= expect * (1000 / v) && pk <= expect * (1000 / v + 1));
      }
    }
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_interleaved_p2p_volume(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int p = 4, m = 8;
  for (int v = 1; v <= 3; v++) {
    CU_ASSERT_EQUAL_FATAL(sim("interleaved", p, m, v, 1, 2, 1, 100, &job, &o, &err), 0);
    /* (p v - 1) boundaries, each crossed by m activations and m gradients. */
    TS_ASSERT_REL(o.metrics->p2p_bytes, 2.0 * m * (p * v - 1) * 100, 1e-12);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_interleaved_divisibility(void) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = sim("interleaved", 4, 6, 2, 1, 2, 1, 0, &job, &o, &err);
  CU_ASSERT_EQUAL(rc, EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "microbatches"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "divisible"));
}

static void test_zb_h1_closed_form(void) {
  static const int cases[][2] = {{1, 3}, {2, 5}, {4, 4}, {4, 8}, {4, 12}, {8, 16}};
  static const double w[][3] = {{1, 1, 1}, {1, 1.5, 0.5}, {2, 2, 1}, {1, 2, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    for (size_t k = 0; k < sizeof w / sizeof *w; k++) {
      int p = cases[i][0], m = cases[i][1];
      double F = w[k][0], B = w[k][1], W = w[k][2];
      ts_job_t *job;
      ts_outcome_t o;
      ts_err_t err = {0};
      CU_ASSERT_EQUAL_FATAL(sim("zb-h1", p, m, 1, F, B + W, W, 0, &job, &o, &err), 0);
      TS_ASSERT_REL(o.metrics->iteration_time_s, m * (F + B + W) + (p - 1) * (F + B - W), 1e-9);
      for (int d = 0; d < p; d++) {
        TS_ASSERT_REL(o.metrics->dev[d].idle_s, (p - 1) * (F + B - W), 1e-9);
        CU_ASSERT_EQUAL(o.metrics->dev[d].peak_inflight, p < m ? p : m);
      }
      ts_outcome_free(&o);
      ts_job_free(job);
    }
  }
}

/* ZB-H1 against 1F1B on the same job: a third of the bubble when
** T_F = T_B = T_W, and stage 0 holds no more activations. */
static void test_zb_h1_vs_1f1b(void) {
  ts_job_t *j1, *j2;
  ts_outcome_t a, b;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(sim("1f1b", 4, 8, 1, 1, 2, 1, 0, &j1, &a, &err), 0);
  CU_ASSERT_EQUAL_FATAL(sim("zb-h1", 4, 8, 1, 1, 2, 1, 0, &j2, &b, &err), 0);
  TS_ASSERT_REL(a.metrics->dev[0].idle_s, 9.0, 1e-12);
  TS_ASSERT_REL(b.metrics->dev[0].idle_s, 3.0, 1e-12);
  TS_ASSERT_REL(b.metrics->dev[0].peak_activation_bytes, a.metrics->dev[0].peak_activation_bytes, 1e-12);
  ts_outcome_free(&a);
  ts_outcome_free(&b);
  ts_job_free(j1);
  ts_job_free(j2);
}

TS_TESTS{TS_TEST(test_interleaved_closed_form), TS_TEST(test_interleaved_p2p_volume),
         TS_TEST(test_interleaved_divisibility), TS_TEST(test_zb_h1_closed_form),
         TS_TEST(test_zb_h1_vs_1f1b)};
TS_TEST_MAIN("interleaved_zb")
