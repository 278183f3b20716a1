/*
** test_coll.c: the runtime's collectives (src/runtime/rt_coll.c) on SimGrid,
** against closed forms on a star of n hosts, each behind its own
** full-duplex link (bandwidth B, latency L) to a non-blocking switch, so
** that one message of S bytes between two hosts takes c(S) = 2 L + S / B
** and a host's messages to distinct peers share its uplink:
**   - ring all-reduce of G bytes: 2 (n - 1) c(G / n), and each member sends
**     2 (n - 1) / n x G bytes;
**   - reduce-scatter and all-gather: (n - 1) c(G / n), (n - 1) / n x G sent;
**   - broadcast from member 0 in n pipelined chunks: member j is done at
**     (n - 1 + j) c(G / n); members 0 .. n-2 send G each, the last none;
**   - all-to-all: 2 L + (n - 1)(G / n) / B, (n - 1) / n x G sent;
**   - a started collective overlaps compute: the program's forward starts
**     at 0 and the all-reduce still ends at its closed-form time;
**   - collectives on one stream run in start order, back to back;
**   - a group of one member costs nothing; a device not in its group is a
**     one-line schedule error.
*/
#include <math.h>
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

#define N 4
#define BW 10e9
#define LAT 1e-6
#define G 1e8

/* The star platform of th_star_platform with this file's figures. */
static const char *star_platform(int n) { return th_star_platform(n, BW, LAT); }

static double c_of(double S) { return 2 * LAT + S / BW; }

/* The collective the test program runs, and how (the program runs in a
** forked child, so it reads these, set before the run, and never writes). */
static ts_coll_op_t g_op;
static int g_async, g_twice;

/* Collective over the pipeline group (all N devices), then GPipe's ops. */
static void coll_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  ts_group_t g = ts_rt_group(rt, TS_GROUP_PP);
  int h = ts_rt_coll_start(rt, g_op, &g, v, TS_BUF_NONE, G);
  if (g_twice) ts_rt_coll_start(rt, g_op, &g, v, TS_BUF_NONE, G);
  if (!g_async) ts_rt_coll_wait(rt, h);
  for (int mb = 0; mb < c->microbatches; mb++) {
    if (c->layout->prev[v] >= 0) ts_rt_recv(rt, TS_SEND_ACT, v, mb);
    ts_rt_compute(rt, TS_FORWARD, v, mb);
    if (c->layout->next[v] >= 0) ts_rt_send(rt, TS_SEND_ACT, v, mb);
  }
  for (int mb = c->microbatches - 1; mb >= 0; mb--) {
    if (c->layout->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, mb);
    ts_rt_compute(rt, TS_BACKWARD, v, mb);
    if (c->layout->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
  }
  if (g_async) ts_rt_coll_wait(rt, h);
}

/* Per device: bytes it sent in collective steps and when its last
** collective step towards it arrived. */
typedef struct coll_seen {
  double sent[N], last_in[N];
  int steps;
} coll_seen_t;

static int run_coll(ts_coll_op_t op, int async, int twice, double tf, ts_outcome_t *o,
                    ts_job_t **job, coll_seen_t *seen, ts_err_t *err) {
  g_op = op;
  g_async = async;
  g_twice = twice;
  const char *plat = star_platform(N);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %.17g, \"backward_s\": %.17g,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 1},"
           " \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": %d, \"microbatches\": 1}",
           tf, tf, plat, N);
  int rc = th_job_from_json(json, NULL, 0, job, err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_schedule_t s = {.name = "gpipe", .title = "collective test", .program = coll_program};
  rc = ts_execute(*job, &s, NULL, o, err);
  unlink(plat);
  memset(seen, 0, sizeof *seen);
  if (rc) return rc;
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (e->kind != TS_SEND_COLL) continue;
    seen->sent[e->device] += e->bytes;
    if (e->end > seen->last_in[e->peer]) seen->last_in[e->peer] = e->end;
    seen->steps++;
  }
  return 0;
}

/* Checks bytes sent per member and the end time per member. */
static void expect(ts_coll_op_t op, const double *sent, const double *done, int steps) {
  ts_outcome_t o;
  ts_job_t *job;
  coll_seen_t s;
  ts_err_t err = {0};
  int rc = run_coll(op, 0, 0, 1e-3, &o, &job, &s, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(s.steps, steps);
  for (int d = 0; d < N; d++) {
    TS_ASSERT_REL(s.sent[d], sent[d], 1e-12);
    if (done[d] > 0) TS_ASSERT_REL(s.last_in[d], done[d], 1e-9);
    /* The program waited for its part: its forward starts then. */
    const ts_event_t *f = th_find(&o, TS_FORWARD, d, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (d == 0) TS_ASSERT_REL(f->start + 1.0, done[0] + 1.0, 1e-12);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_ring_allreduce(void) {
  double sent[N], done[N];
  for (int d = 0; d < N; d++) {
    sent[d] = 2.0 * (N - 1) / N * G;
    done[d] = 2 * (N - 1) * c_of(G / N);
  }
  expect(TS_COLL_ALLREDUCE, sent, done, N * 2 * (N - 1));
}

static void test_reduce_scatter_and_allgather(void) {
  double sent[N], done[N];
  for (int d = 0; d < N; d++) {
    sent[d] = (double)(N - 1) / N * G;
    done[d] = (N - 1) * c_of(G / N);
  }
  expect(TS_COLL_REDUCE_SCATTER, sent, done, N * (N - 1));
  expect(TS_COLL_ALLGATHER, sent, done, N * (N - 1));
}

static void test_broadcast_pipelined_chain(void) {
  double sent[N], done[N];
  for (int d = 0; d < N; d++) {
    sent[d] = d < N - 1 ? G : 0;
    done[d] = d ? (N - 1 + d) * c_of(G / N) : 0; /* the root only sends */
  }
  expect(TS_COLL_BROADCAST, sent, done, (N - 1) * N);
}

static void test_alltoall_shares_the_uplink(void) {
  double sent[N], done[N];
  for (int d = 0; d < N; d++) {
    sent[d] = (double)(N - 1) / N * G;
    done[d] = 2 * LAT + (N - 1) * (G / N) / BW;
  }
  expect(TS_COLL_ALLTOALL, sent, done, N * (N - 1));
}

static void test_started_collective_overlaps_compute(void) {
  ts_outcome_t o;
  ts_job_t *job;
  coll_seen_t s;
  ts_err_t err = {0};
  double T = 2 * (N - 1) * c_of(G / N), tf = 0.5 * T;
  CU_ASSERT_EQUAL_FATAL(run_coll(TS_COLL_ALLREDUCE, 1, 0, tf, &o, &job, &s, &err), 0);
  const ts_event_t *f = th_find(&o, TS_FORWARD, 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_DOUBLE_EQUAL(f->start, 0, 1e-15);
  for (int d = 0; d < N; d++) TS_ASSERT_REL(s.last_in[d], T, 1e-9);
  /* GPipe with one micro-batch: 2 N tf of compute and 2 (N - 1) empty
  ** messages of 2 L each; the all-reduce ends inside it. */
  TS_ASSERT_REL(o.metrics->iteration_time_s, 2.0 * N * tf + 2 * (N - 1) * 2 * LAT, 1e-9);
  CU_ASSERT(T < o.metrics->iteration_time_s);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_stream_runs_in_start_order(void) {
  ts_outcome_t o;
  ts_job_t *job;
  coll_seen_t s;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(run_coll(TS_COLL_ALLREDUCE, 0, 1, 1e-3, &o, &job, &s, &err), 0);
  /* Two all-reduces back to back on every stream; the program waited for
  ** the first one only, and the run for both. */
  CU_ASSERT_EQUAL(s.steps, 2 * N * 2 * (N - 1));
  for (int d = 0; d < N; d++) TS_ASSERT_REL(s.last_in[d], 4 * (N - 1) * c_of(G / N), 1e-9);
  TS_ASSERT_REL(th_find(&o, TS_FORWARD, 0, 0)->start, 2 * (N - 1) * c_of(G / N), 1e-9);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void one_member_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  ts_group_t g = ts_rt_group(rt, TS_GROUP_DP); /* one replica: just this device */
  ts_rt_coll(rt, TS_COLL_ALLREDUCE, &g, c->local[0], TS_BUF_NONE, G);
  coll_program(rt);
}

static void not_member_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  static const int other[2] = {0, 1};
  ts_group_t g = {.n = 2, .rank = 0, .dev = other};
  if (c->device == 2) ts_rt_coll(rt, TS_COLL_ALLREDUCE, &g, c->local[0], TS_BUF_NONE, G);
  coll_program(rt);
}

static void test_one_member_and_bad_groups(void) {
  const char *plat = star_platform(N);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 1,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 1},"
           " \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": %d, \"microbatches\": 1}",
           plat, N);
  ts_job_t *job;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
  ts_outcome_t o;
  g_op = TS_COLL_ALLGATHER;
  g_async = g_twice = 0;
  ts_schedule_t s = {.name = "gpipe", .title = "one member", .program = one_member_program};
  CU_ASSERT_EQUAL_FATAL(ts_execute(job, &s, NULL, &o, &err), 0);
  int steps = 0;
  for (int i = 0; i < o.run->n_events; i++) steps += o.run->events[i].kind == TS_SEND_COLL;
  CU_ASSERT_EQUAL(steps, N * (N - 1)); /* only the all-gather's */
  ts_outcome_free(&o);
  s.program = not_member_program;
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_execute(job, &s, NULL, &o, &err), EX_SOFTWARE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "device 2: all-reduce: this device is not the member"));
  CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  ts_job_free(job);
  unlink(plat);
}

TS_TESTS{
    TS_TEST(test_ring_allreduce),
    TS_TEST(test_reduce_scatter_and_allgather),
    TS_TEST(test_broadcast_pipelined_chain),
    TS_TEST(test_alltoall_shares_the_uplink),
    TS_TEST(test_started_collective_overlaps_compute),
    TS_TEST(test_stream_runs_in_start_order),
    TS_TEST(test_one_member_and_bad_groups),
};
TS_TEST_MAIN("collectives")
