/*
** test_varuna.c: Varuna's opportunistic rules, checked on the timeline.
** Varuna has no closed form.  On unit-time tasks the schedule must be the
** one that Varuna's public generator (microsoft/varuna,
** varuna/generate_schedule.cc) makes: gen() below re-implements its quantum
** rules independently of schedules/varuna.c, and every op (kind,
** micro-batch, start, end) of every stage, the iteration time and the
** stashed micro-batches per stage are compared with it for p = 4, 6, 8 and
** m = 2p .. 4p.  On other task times every op the simulator ran is checked
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
** A message that arrives at exactly the instant of a decision is seen by
** it (the program settles the instant first, as the generator makes what
** ran in quantum t visible at t + 1), and so are local dependencies (ops of
** the same device, which are sequential) that ended by t. */
static bool ready(const tl_t *T, int k, int j, int s, int p, double t) {
  const double eps = 1e-12, tie = -1e-9;
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

/* ---- Varuna's schedule generator, re-implemented ------------------------
** Every stage has four FIFO queues (f, r, b, B).  At the start of quantum t
** every stage pops the front of its first non-empty queue in the order
** B > b > r > f and runs that task for the whole quantum; then the effects
** are queued for quantum t + 1: f at stage s queues f at s + 1 (at the last
** stage: b at s); r queues b at s; b queues B at s and r at s - 1; B queues
** nothing.  Stage 0's f queue starts with every micro-batch. */
enum { GP = 8, GM = 32 };

typedef struct {
  int n[GP];               /* ops of each stage */
  int kind[GP][4 * GM], mb[GP][4 * GM], t[GP][4 * GM];
  int quanta;              /* the iteration, in quanta */
} gen_t;

typedef struct {
  int v[GM], head, tail;
} fifo_t;

static void gen(int p, int m, gen_t *g) {
  static fifo_t q[NK][GP];
  static const int prio[NK] = {W, Bi, R, F};
  memset(q, 0, sizeof q);
  memset(g, 0, sizeof *g);
  for (int j = 0; j < m; j++) q[F][0].v[q[F][0].tail++] = j;
  for (int t = 0;; t++) {
    int kind[GP], mb[GP] = {0}, any = 0;
    for (int s = 0; s < p; s++) {
      kind[s] = -1;
      for (int i = 0; i < NK && kind[s] < 0; i++) {
        fifo_t *f = &q[prio[i]][s];
        if (f->head == f->tail) continue;
        kind[s] = prio[i], mb[s] = f->v[f->head++], any = 1;
        g->kind[s][g->n[s]] = kind[s], g->mb[s][g->n[s]] = mb[s], g->t[s][g->n[s]++] = t;
      }
    }
    if (!any) {
      g->quanta = t;
      return;
    }
    for (int s = 0; s < p; s++) {
      fifo_t *to[2] = {NULL, NULL};
      if (kind[s] == F) to[0] = s < p - 1 ? &q[F][s + 1] : &q[Bi][s];
      if (kind[s] == R) to[0] = &q[Bi][s];
      if (kind[s] == Bi) to[0] = &q[W][s], to[1] = s > 0 ? &q[R][s - 1] : NULL;
      for (int i = 0; i < 2; i++)
        if (to[i]) to[i]->v[to[i]->tail++] = mb[s];
    }
  }
}

/* Micro-batches stashed at once on stage s: forwarded, weight gradient not
** yet done (the simulator's peak in-flight count). */
static int gen_stashed(const gen_t *g, int s) {
  int n = 0, peak = 0;
  for (int i = 0; i < g->n[s]; i++) {
    n += g->kind[s][i] == F ? 1 : g->kind[s][i] == W ? -1 : 0;
    if (n > peak) peak = n;
  }
  return peak;
}

/* Simulates Varuna on unit-time tasks (f = r = b = B = 1, messages of one
** byte on the ideal platform, which takes no time) and compares every op
** of every stage with the generator's. */
static void check_generator(int p, int m) {
  char json[640];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
           " \"weight_grad_s\": 1, \"recompute_s\": 1, \"activation_message_bytes\": 1,"
           " \"activation_bytes\": 100}, \"platform\": \"ideal\", \"schedule\": \"varuna\","
           " \"stages\": %d, \"microbatches\": %d, \"recompute\": \"full\"}",
           p, m);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  static gen_t g;
  gen(p, m, &g);
  TS_ASSERT_REL(o.metrics->iteration_time_s, g.quanta, 1e-12);
  int same = 1;
  for (int s = 0; s < p; s++) {
    /* The stage's compute ops in program order (seq 0, 1, ...). */
    int n = 0;
    for (int q = 0; q < g.n[s] + 1; q++)
      for (int i = 0; i < o.run->n_events; i++) {
        const ts_event_t *e = &o.run->events[i];
        if (e->device != s || !ts_kind_is_compute(e->kind) || e->seq != q) continue;
        n++;
        if (q >= g.n[s] || e->kind != kind_of[g.kind[s][q]] || e->mb != g.mb[s][q] ||
            fabs(e->start - g.t[s][q]) > 1e-9 || fabs(e->end - g.t[s][q] - 1) > 1e-9) {
          if (same)
            fprintf(stderr, "p %d m %d stage %d op %d: simulated kind %d mb %d at %g\n", p, m, s, q,
                    e->kind, e->mb, e->start);
          same = 0;
        }
      }
    CU_ASSERT_EQUAL(n, g.n[s]);
    CU_ASSERT_EQUAL(g.n[s], s < p - 1 ? 4 * m : 3 * m);
    CU_ASSERT_EQUAL(o.metrics->dev[s].peak_inflight, gen_stashed(&g, s));
  }
  CU_ASSERT(same);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* The generator's schedule, op by op, for p = 4, 6, 8 and m = 2p .. 4p. */
static void test_generator(void) {
  for (int p = 4; p <= 8; p += 2)
    for (int m = 2 * p; m <= 4 * p; m++) check_generator(p, m);
}

/* p = 4, m = 8: the generator takes 39 quanta (a program that decides
** before the messages of the instant land takes 38: a stage forwards where
** the generator recomputes); stage 1 forwards six micro-batches, recomputes
** and runs the backwards of 0 .. 2, and only then forwards 6 and 7. */
static void test_generator_p4_m8(void) {
  static gen_t g;
  gen(4, 8, &g);
  CU_ASSERT_EQUAL(g.quanta, 39);
  static const char want[] = "ffffffrbBrbBrbBff";
  for (int i = 0; i < (int)sizeof want - 1; i++)
    CU_ASSERT_EQUAL(g.kind[1][i], want[i] == 'f' ? F : want[i] == 'r' ? R : want[i] == 'b' ? Bi : W);
  CU_ASSERT_EQUAL(gen_stashed(&g, 0), 8);
  CU_ASSERT_EQUAL(gen_stashed(&g, 1), 6);
  CU_ASSERT_EQUAL(gen_stashed(&g, 3), 1);
  check_generator(4, 8);
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

TS_TESTS{TS_TEST(test_generator), TS_TEST(test_generator_p4_m8), TS_TEST(test_unit_quanta), TS_TEST(test_uneven), TS_TEST(test_with_links),
         TS_TEST(test_requires_recompute)};
TS_TEST_MAIN("varuna")
