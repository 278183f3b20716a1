/*
** test_2bw.c: PipeDream-2BW over several iterations without a flush.
**   I iterations take (m I + p - 1)(t_f + t_b) in all, so the time per
**   iteration is that over I and tends to m (t_f + t_b);
**   the last stage never idles between iterations (no flush);
**   weights are held twice (two versions); stage s holds min(p - s, m I)
**   micro-batches in flight, as 1F1B does;
**   events carry their iteration (micro-batch div m).
*/
#include "tshelp.h"
#include "tsunit.h"

static void run(int p, int m, int I, ts_job_t **job, ts_outcome_t *o) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 10, \"weights_bytes\": 100},"
           " \"platform\": \"ideal\", \"schedule\": \"2bw\", \"stages\": %d, \"microbatches\": %d,"
           " \"iterations\": %d}", p, m, I);
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, job, o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static void test_closed_form(void) {
  static const int cases[][3] = {{4, 8, 1}, {4, 8, 3}, {2, 3, 5}, {8, 4, 4}, {4, 2, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int p = cases[i][0], m = cases[i][1], I = cases[i][2];
    ts_job_t *job;
    ts_outcome_t o;
    run(p, m, I, &job, &o);
    TS_ASSERT_REL(o.metrics->iteration_time_s, (m * I + p - 1) * 3.0 / I, 1e-12);
    for (int s = 0; s < p; s++) {
      TS_ASSERT_REL(o.metrics->dev[s].weights_bytes, 200, 1e-12);
      int expect = p - s < m * I ? p - s : m * I;
      CU_ASSERT_EQUAL(o.metrics->dev[s].peak_inflight, expect);
    }
    /* The last stage runs F and B back to back from its first forward to
    ** the end: no flush between iterations. */
    double busy_from = -1, last_end = 0;
    int iters_seen[64] = {0};
    for (int k = 0; k < o.run->n_events; k++) {
      const ts_event_t *e = &o.run->events[k];
      if (!ts_kind_is_compute(e->kind)) continue;
      CU_ASSERT_EQUAL(e->iteration, e->mb / m);
      iters_seen[e->iteration] = 1;
      if (e->device != p - 1) continue;
      if (busy_from < 0) busy_from = e->start;
      if (e->end > last_end) last_end = e->end;
    }
    TS_ASSERT_REL(last_end - busy_from, m * I * 3.0, 1e-12);
    for (int it = 0; it < I; it++) CU_ASSERT_TRUE(iters_seen[it]);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

TS_TESTS{TS_TEST(test_closed_form)};
TS_TEST_MAIN("2bw")
