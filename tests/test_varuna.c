/*
** test_varuna.c: Varuna's opportunistic rules, checked on the timeline.
** Varuna has no closed form; instead every op the simulator ran is checked
** against the rules it must obey:
**   - no recompute at the last stage, one everywhere else per micro-batch;
**   - r(j) at stage s starts after the output gradient of j arrived (after
**     b(j) at stage s + 1 ended), b(j) after r(j), B(j) after b(j);
**   - priority B > b > r > f: when a device starts an op, no task of a
**     higher priority was ready then;
**   - the device is never idle while a task is ready (work conserving);
**   - it beats 1F1B with full recompute on the same job, and holds only
**     stage inputs plus one recomputed micro-batch.
*/
#include "tshelp.h"
#include "tsunit.h"

enum { F, R, Bi, W, NK };
static const int kind_of[NK] = {TS_FORWARD, TS_RECOMPUTE, TS_BACKWARD_INPUT, TS_WEIGHT_GRAD};

typedef struct {
  double start[NK][64][16], end[NK][64][16], grad_at[64][16], act_at[64][16];
} tl_t;

static void collect(const ts_outcome_t *o, tl_t *t, int p, int m) {
  for (int k = 0; k < NK; k++)
    for (int s = 0; s < p; s++)
      for (int j = 0; j < m; j++) t->start[k][j][s] = t->end[k][j][s] = -1;
  for (int s = 0; s < p; s++)
    for (int j = 0; j < m; j++) t->grad_at[j][s] = t->act_at[j][s] = -1;
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    for (int k = 0; k < NK; k++)
      if (e->kind == kind_of[k]) {
        t->start[k][e->mb][e->vstage] = e->start;
        t->end[k][e->mb][e->vstage] = e->end;
      }
    if (e->kind == TS_SEND_GRAD) t->grad_at[e->mb][e->vstage - 1] = e->end;
    if (e->kind == TS_SEND_ACT) t->act_at[e->mb][e->vstage + 1] = e->end;
  }
}

/* Is task k of micro-batch j ready at stage s at time t (and not started)?
** A message that arrives at exactly the instant of a decision may be seen
** after it (SimGrid delivers same-instant events in event order), so
** message arrivals count only when strictly earlier; local dependencies
** (ops of the same device, which are sequential) count when ended by t. */
static bool ready(const tl_t *T, int k, int j, int s, int p, double t) {
  const double eps = 1e-12, tie = 1e-9;
  if (T->start[k][j][s] >= 0 && T->start[k][j][s] < t - eps) return false; /* already ran */
  bool last = s == p - 1;
  switch (k) {
    case F: return s == 0 || (T->act_at[j][s] >= 0 && T->act_at[j][s] < t - tie);
    case R: return !last && T->end[F][j][s] >= 0 && T->end[F][j][s] <= t + eps &&
                   T->grad_at[j][s] >= 0 && T->grad_at[j][s] < t - tie;
    case Bi: {
      int dep = last ? F : R;
      return T->end[dep][j][s] >= 0 && T->end[dep][j][s] <= t + eps;
    }
    default: return T->end[Bi][j][s] >= 0 && T->end[Bi][j][s] <= t + eps;
  }
}

static void check_rules(int p, int m, double tf, double tb, double tw, double tr, double msg,
                        const char *platform) {
  char json[768];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %g, \"backward_s\": %g,"
           " \"weight_grad_s\": %g, \"recompute_s\": %g, \"activation_message_bytes\": %g,"
           " \"activation_bytes\": 1000}, \"platform\": \"%s\", \"schedule\": \"varuna\","
           " \"stages\": %d, \"microbatches\": %d, \"recompute\": \"full\"}",
           tf, tb, tw, tr, msg, platform, p, m);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  static tl_t T;
  collect(&o, &T, p, m);
  const double eps = 1e-12;
  for (int s = 0; s < p; s++) {
    for (int j = 0; j < m; j++) {
      if (s == p - 1) {
        CU_ASSERT(T.start[R][j][s] < 0);
      } else {
        CU_ASSERT(T.start[R][j][s] >= T.grad_at[j][s] - eps);
        CU_ASSERT(T.start[Bi][j][s] >= T.end[R][j][s] - eps);
      }
      CU_ASSERT(T.start[W][j][s] >= T.end[Bi][j][s] - eps);
    }
  }
  /* Priorities and work conservation, at the start of every op and at
  ** the end of every op (when the device becomes free). */
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (!ts_kind_is_compute(e->kind)) continue;
    int s = e->vstage, me = -1;
    for (int k = 0; k < NK; k++)
      if (kind_of[k] == e->kind) me = k;
    /* priority order B(W) > b(Bi) > r(R) > f(F) */
    static const int prio[NK] = {[W] = 3, [Bi] = 2, [R] = 1, [F] = 0};
    for (int k = 0; k < NK; k++) {
      if (prio[k] <= prio[me]) continue;
      for (int j = 0; j < m; j++) CU_ASSERT_FALSE(ready(&T, k, j, s, p, e->start));
    }
  }
  for (int s = 0; s < p; s++) {
    /* Idle gaps: at the start of each gap nothing may be ready. */
    double free_at = 0;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (!ts_kind_is_compute(e->kind) || e->vstage != s) continue;
      if (e->start > free_at + eps)
        for (int k = 0; k < NK; k++)
          for (int j = 0; j < m; j++) {
            bool r = ready(&T, k, j, s, p, free_at) && T.start[k][j][s] > free_at + eps;
            CU_ASSERT_FALSE(r);
          }
      free_at = e->end;
    }
  }
  /* Stage 0 holds every stage input plus one recomputed micro-batch. */
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, m * msg + 1000, 1e-12);
  TS_ASSERT_REL(o.metrics->dev[p - 1].peak_activation_bytes, 1000, 1e-12);
  double varuna = o.metrics->iteration_time_s;
  ts_outcome_free(&o);
  const char *sets[] = {"schedule=1f1b"};
  ts_job_free(job);
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, sets, 1, &job, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_simulate(job, &o, &err), 0);
  CU_ASSERT(varuna < o.metrics->iteration_time_s);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_unit_quanta(void) { check_rules(4, 8, 1, 2, 1, 1, 10, "ideal"); }
static void test_uneven(void) { check_rules(5, 11, 1, 2.5, 1.2, 0.8, 10, "ideal"); }
static void test_with_links(void) { check_rules(4, 8, 1e-2, 2e-2, 1e-2, 1e-2, 5e7, "pcie-4gpu.xml"); }

static void test_requires_recompute(void) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_message_bytes\": 1, \"activation_bytes\": 1}, \"platform\": \"ideal\","
      " \"schedule\": \"varuna\", \"stages\": 2, \"microbatches\": 2}";
  CU_ASSERT_NOT_EQUAL(th_simulate(json, NULL, 0, &job, &o, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "recompute"));
}

TS_TESTS{TS_TEST(test_unit_quanta), TS_TEST(test_uneven), TS_TEST(test_with_links),
         TS_TEST(test_requires_recompute)};
TS_TEST_MAIN("varuna")
