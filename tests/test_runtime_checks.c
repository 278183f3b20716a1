/*
** test_runtime_checks.c: the runtime catches broken schedule programs.
** SimGrid itself ends a deadlocked simulation quietly and exits 0; the
** runtime must turn each of these into an error naming the device and
** the op: a deadlock (a gradient never sent), a backward before its
** forward, a forward without its input, an op run twice, a program that
** ends early, a busy polling loop.  It also checks the readiness API that
** opportunistic schedulers use (ts_rt_arrived, ts_rt_wait_any): a polling
** version of GPipe gives GPipe's timeline.
*/
#include <sysexits.h>

#include "sched_util.h"
#include "tshelp.h"
#include "tsunit.h"

extern const ts_schedule_t ts_schedule_gpipe;

/* Runs prog as a schedule over a synthetic job; returns the code and
** leaves the message in err (and the outcome in o when it succeeded). */
static int run_prog(void (*prog)(ts_rt_t *), int p, int m, ts_err_t *err, ts_outcome_t *o) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
           " \"activation_message_bytes\": 100, \"activation_bytes\": 10},"
           " \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": %d, \"microbatches\": %d}",
           p, m);
  ts_job_t *job = NULL;
  int rc = th_job_from_json(json, NULL, 0, &job, err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_schedule_t s = {.name = "test", .title = "test", .program = prog};
  rc = ts_execute(job, &s, NULL, o, err);
  if (!rc) CU_ASSERT_EQUAL(o->cost->n_parts, p);
  ts_job_free(job);
  return rc;
}

static void expect_error(void (*prog)(ts_rt_t *), const char *a, const char *b) {
  ts_err_t err = {0};
  ts_outcome_t o;
  int rc = run_prog(prog, 3, 2, &err, &o);
  CU_ASSERT_EQUAL(rc, EX_SOFTWARE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, a));
  if (b) CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, b));
  CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  if (!strstr(err.msg, a) || (b && !strstr(err.msg, b))) fprintf(stderr, "got: %s\n", err.msg);
  o.r.job = NULL;
  ts_outcome_free(&o);
}

static void prog_backward_first(ts_rt_t *rt) {
  ts_rt_compute(rt, TS_BACKWARD, ts_rt_ctx(rt)->local[0], 0);
}

static void prog_no_recv(ts_rt_t *rt) {
  int v = ts_rt_ctx(rt)->local[0];
  ts_rt_compute(rt, TS_FORWARD, v, 0);
}

static void prog_twice(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  ts_sched_forward(rt, v, 0);
  if (c->device == 0) ts_rt_compute(rt, TS_FORWARD, v, 0);
}

static void prog_early_end(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  for (int mb = 0; mb < c->microbatches; mb++) ts_sched_forward(rt, v, mb);
  ts_sched_backward(rt, v, 1); /* micro-batch 0's backward never runs */
}

static void prog_busy_poll(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  if (c->device == 1)
    while (!ts_rt_arrived(rt, TS_SEND_GRAD, 1, 0) && !ts_rt_failed(rt)) {
    }
}

static void test_deadlock(void) { expect_error(th_prog_lost_gradient, "deadlock", "device 1 waits for the gradient for stage 1 micro-batch 0"); }
static void test_backward_before_forward(void) { expect_error(prog_backward_first, "backward of stage", "before its forward"); }
static void test_forward_without_input(void) { expect_error(prog_no_recv, "before its input activation was received", NULL); }
static void test_op_twice(void) { expect_error(prog_twice, "runs twice", "device 0"); }
static void test_early_end(void) { expect_error(prog_early_end, "finished without the backward", "micro-batch 0"); }
static void test_busy_poll(void) { expect_error(prog_busy_poll, "busy loop", "device 1"); }

/* GPipe written opportunistically: run whichever forward is ready, in any
** order, else wait for the next arrival; then the backwards likewise. */
static void prog_polling_gpipe(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0], m = c->microbatches;
  const ts_layout_t *L = c->layout;
  int done = 0;
  while (done < m) {
    int ran = 0;
    if (L->prev[v] < 0 || ts_rt_arrived(rt, TS_SEND_ACT, v, done)) {
      ts_rt_compute(rt, TS_FORWARD, v, done);
      if (L->next[v] >= 0) ts_rt_send(rt, TS_SEND_ACT, v, done);
      done++;
      ran = 1;
    }
    if (!ran) ts_rt_wait_any(rt);
  }
  for (int mb = m - 1; mb >= 0;) {
    if (L->next[v] < 0 || ts_rt_arrived(rt, TS_SEND_GRAD, v, mb)) {
      ts_rt_compute(rt, TS_BACKWARD, v, mb);
      if (L->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
      mb--;
    } else {
      ts_rt_wait_any(rt);
    }
  }
}

static void test_polling_equals_gpipe(void) {
  ts_err_t err = {0};
  ts_outcome_t a, b;
  CU_ASSERT_EQUAL_FATAL(run_prog(prog_polling_gpipe, 4, 6, &err, &a), 0);
  CU_ASSERT_EQUAL_FATAL(run_prog(ts_schedule_gpipe.program, 4, 6, &err, &b), 0);
  int na = 0, nb = 0;
  for (int i = 0; i < a.run->n_events; i++) na += ts_kind_is_compute(a.run->events[i].kind);
  for (int i = 0; i < b.run->n_events; i++) nb += ts_kind_is_compute(b.run->events[i].kind);
  CU_ASSERT_EQUAL(na, nb);
  CU_ASSERT_EQUAL(na, 2 * 4 * 6);
  for (int i = 0, j = 0; i < a.run->n_events && j < b.run->n_events; i++, j++) {
    while (i < a.run->n_events && !ts_kind_is_compute(a.run->events[i].kind)) i++;
    while (j < b.run->n_events && !ts_kind_is_compute(b.run->events[j].kind)) j++;
    if (i >= a.run->n_events || j >= b.run->n_events) break;
    CU_ASSERT_EQUAL(a.run->events[i].kind, b.run->events[j].kind);
    CU_ASSERT_EQUAL(a.run->events[i].mb, b.run->events[j].mb);
    CU_ASSERT_DOUBLE_EQUAL(a.run->events[i].start, b.run->events[j].start, 1e-12);
  }
  TS_ASSERT_REL(a.metrics->iteration_time_s, (6 + 4 - 1) * 3.0, 1e-12);
  a.r.job = b.r.job = NULL;
  ts_outcome_free(&a);
  ts_outcome_free(&b);
}

TS_TESTS{TS_TEST(test_deadlock),       TS_TEST(test_backward_before_forward),
         TS_TEST(test_forward_without_input), TS_TEST(test_op_twice),
         TS_TEST(test_early_end),      TS_TEST(test_busy_poll),
         TS_TEST(test_polling_equals_gpipe)};
TS_TEST_MAIN("runtime_checks")
