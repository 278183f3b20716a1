/*
** test_closed_forms.c: GPipe and 1F1B against their closed forms on the
** ideal platform with synthetic stages (shared/notes/formulas.md):
**   iteration time   (m + p - 1)(t_f + t_b)      [+ t_r under full recompute]
**   bubble fraction  (p - 1)/(m + p - 1)
**   bubble overhead  (p - 1)/m
**   peak in-flight   m at every GPipe stage; min(p - s, m) at 1F1B stage s
** for several (p, m), m < p included, relative error <= 1e-9.
*/
#include "tshelp.h"
#include "tsunit.h"

static const int P[] = {1, 2, 4, 8};
static const int Mb[] = {1, 3, 4, 8, 16};

static void check(const char *sched, int p, int m, double tf, double tb, double tr, bool rec) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %.17g, \"backward_s\": %.17g,"
           " \"recompute_s\": %.17g, \"activation_message_bytes\": 0, \"activation_bytes\": 1000},"
           " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": %d,"
           " \"recompute\": \"%s\"}",
           tf, tb, tr, sched, p, m, rec ? "full" : "none");
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  if (rc) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  double step = tf + tb + (rec ? tr : 0);
  double T = (m + p - 1) * step;
  TS_ASSERT_REL(o.metrics->iteration_time_s, T, 1e-9);
  TS_ASSERT_REL(o.metrics->bubble_fraction, (double)(p - 1) / (m + p - 1), 1e-9);
  TS_ASSERT_REL(o.metrics->bubble_overhead, (double)(p - 1) / m, 1e-9);
  TS_ASSERT_REL(o.metrics->ideal_time_s, m * step, 1e-9);
  for (int s = 0; s < p; s++) {
    int expect = strcmp(sched, "gpipe") == 0 ? m : (p - s < m ? p - s : m);
    CU_ASSERT_EQUAL(o.metrics->dev[s].peak_inflight, expect);
    /* 1000 bytes stashed per micro-batch without recompute. */
    if (!rec) TS_ASSERT_REL(o.metrics->dev[s].peak_activation_bytes, 1000.0 * expect, 1e-12);
    TS_ASSERT_REL(o.metrics->dev[s].busy_s, m * step, 1e-9);
  }
  /* Every micro-batch ran forward and backward once on every stage. */
  int fwd = 0, bwd = 0, rcp = 0;
  for (int i = 0; i < o.run->n_events; i++) {
    fwd += o.run->events[i].kind == TS_FORWARD;
    bwd += o.run->events[i].kind == TS_BACKWARD;
    rcp += o.run->events[i].kind == TS_RECOMPUTE;
  }
  CU_ASSERT_EQUAL(fwd, p * m);
  CU_ASSERT_EQUAL(bwd, p * m);
  CU_ASSERT_EQUAL(rcp, rec ? p * m : 0);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_gpipe(void) {
  for (size_t i = 0; i < sizeof P / sizeof *P; i++)
    for (size_t j = 0; j < sizeof Mb / sizeof *Mb; j++) check("gpipe", P[i], Mb[j], 1.0, 2.0, 1.0, false);
}

static void test_1f1b(void) {
  for (size_t i = 0; i < sizeof P / sizeof *P; i++)
    for (size_t j = 0; j < sizeof Mb / sizeof *Mb; j++) check("1f1b", P[i], Mb[j], 1.0, 2.0, 1.0, false);
}

/* Odd durations make rounding visible: 0.1 and 0.3 are not binary. */
static void test_inexact_durations(void) {
  check("gpipe", 4, 7, 0.1, 0.3, 0.1, false);
  check("1f1b", 4, 7, 0.1, 0.3, 0.1, false);
  check("1f1b", 16, 64, 1e-3, 2.2e-3, 1e-3, false);
}

static void test_recompute(void) {
  check("gpipe", 4, 8, 1.0, 2.0, 0.5, true);
  check("1f1b", 4, 8, 1.0, 2.0, 0.5, true);
  check("1f1b", 4, 2, 1.0, 2.0, 1.0, true);
}

/* 1F1B's warm-up is min(p - s - 1, m) forwards before the first backward. */
static void test_1f1b_warmup_order(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_message_bytes\": 0, \"activation_bytes\": 1},"
      " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8}";
  CU_ASSERT_EQUAL_FATAL(th_simulate(json, NULL, 0, &job, &o, &err), 0);
  for (int s = 0; s < 4; s++) {
    int forwards_before_first_backward = 0;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device != s || !ts_kind_is_compute(e->kind)) continue;
      if (e->kind == TS_BACKWARD) break;
      forwards_before_first_backward++;
    }
    CU_ASSERT_EQUAL(forwards_before_first_backward, 4 - s - 1 + 1);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_gpipe), TS_TEST(test_1f1b), TS_TEST(test_inexact_durations),
         TS_TEST(test_recompute), TS_TEST(test_1f1b_warmup_order)};
TS_TEST_MAIN("closed_forms")
