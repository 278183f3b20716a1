/*
** test_chimera.c: Chimera against its closed form and its rules.
**   unit slots (t_f = t_b = t), N >= D, N even: iteration time (2N + D - 2) t,
**   bubble fraction (D - 2)/(2N + D - 2) (GPipe/1F1B: (D - 1)/(N + D - 1));
**   N = D: every device holds between D/2 + 1 and D micro-batches;
**   every device holds two stage replicas (weights twice);
**   the replicas' gradients are all-reduced in a ring of two: 2 steps of
**   S/2 bytes each way, L + S/(2B) each on a known link;
**   N = k D (k = 1, 2, 4; D = 4, 6, 8) concatenates k basic units: the
**   forward of micro-batch j on a stage starts after the backward of j - D/2
**   of the same pipeline ended there, a stage holds at most D/2 micro-
**   batches of its pipeline and a device at most D, the in-flight count of
**   every device is the one of N = D, with t_b = t_f and with t_b = 2 t_f;
**   odd D or odd N is an error.
*/
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

/* A Chimera job; overlap_grad_reduce false: the pair's gradients are one
** all-reduce after the backward (the closed forms below assume it). */
static int sim(int D, int N, double tf, double tb, double wbytes, const char *plat, ts_job_t **job,
               ts_outcome_t *o, ts_err_t *err) {
  char json[768];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %.17g, \"backward_s\": %.17g,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 1000, \"weights_bytes\": %.17g},"
           " \"platform\": \"%s\", \"schedule\": \"chimera\", \"stages\": %d, \"microbatches\": %d,"
           " \"overlap_grad_reduce\": false}",
           tf, tb, wbytes, plat, D, N);
  int rc = th_simulate(json, NULL, 0, job, o, err);
  if (rc) fprintf(stderr, "%s\n", err->msg);
  return rc;
}

static void test_closed_form(void) {
  static const int cases[][2] = {{2, 2}, {2, 4}, {4, 4}, {4, 8}, {4, 12}, {6, 6}, {8, 8}, {8, 16}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int D = cases[i][0], N = cases[i][1];
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(sim(D, N, 0.5, 0.5, 0, "ideal", &job, &o, &err), 0);
    TS_ASSERT_REL(o.metrics->iteration_time_s, (2 * N + D - 2) * 0.5, 1e-9);
    TS_ASSERT_REL(o.metrics->bubble_fraction, (double)(D - 2) / (2 * N + D - 2), 1e-9);
    if (D > 2) CU_ASSERT(o.metrics->bubble_fraction < (double)(D - 1) / (N + D - 1));
    for (int d = 0; d < D; d++) {
      CU_ASSERT_EQUAL(o.run->n_devices, D);
      if (N == D) {
        CU_ASSERT(o.metrics->dev[d].peak_inflight >= D / 2 + 1);
        CU_ASSERT(o.metrics->dev[d].peak_inflight <= D);
      }
    }
    /* Each pipeline carries half of the micro-batches. */
    int fwd_down = 0, fwd_up = 0;
    for (int k = 0; k < o.run->n_events; k++) {
      const ts_event_t *e = &o.run->events[k];
      if (e->kind != TS_FORWARD) continue;
      if (e->vstage < D) {
        fwd_down++;
        CU_ASSERT(e->mb < N / 2);
      } else {
        fwd_up++;
        CU_ASSERT(e->mb >= N / 2);
      }
    }
    CU_ASSERT_EQUAL(fwd_down, D * N / 2);
    CU_ASSERT_EQUAL(fwd_up, D * N / 2);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_weights_and_allreduce(void) {
  /* pcie-4gpu: PCIe links of 25e9 B/s and 5 us per GPU port; a transfer
  ** between two GPUs crosses two ports: 2 x 5 us + S / 25e9. */
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  double W = 1e9;
  CU_ASSERT_EQUAL_FATAL(sim(4, 4, 0.01, 0.01, W, "pcie-4gpu.xml", &job, &o, &err), 0);
  for (int d = 0; d < 4; d++) {
    TS_ASSERT_REL(o.metrics->dev[d].weights_bytes, 2 * W, 1e-12);
    TS_ASSERT_REL(o.metrics->dev[d].gradients_bytes, 2 * W, 1e-12);
  }
  int steps[4] = {0};
  for (int k = 0; k < o.run->n_events; k++) {
    const ts_event_t *e = &o.run->events[k];
    if (e->kind != TS_SEND_COLL) continue;
    steps[e->device]++;
    CU_ASSERT_EQUAL(e->peer, 3 - e->device); /* the device holding the same stages */
    TS_ASSERT_REL(e->bytes, 2 * W / 2, 1e-12); /* two stages' gradients, halved */
  }
  for (int d = 0; d < 4; d++) CU_ASSERT_EQUAL(steps[d], 2);
  /* The all-reduce ends the iteration: two steps of 10 us + 1e9 / 25e9 s after
  ** the last backward of the later device of the pair. */
  double last_b[4] = {0};
  for (int k = 0; k < o.run->n_events; k++) {
    const ts_event_t *e = &o.run->events[k];
    if (ts_kind_is_compute(e->kind) && e->end > last_b[e->device]) last_b[e->device] = e->end;
  }
  double end01 = (last_b[0] > last_b[3] ? last_b[0] : last_b[3]);
  double end12 = (last_b[1] > last_b[2] ? last_b[1] : last_b[2]);
  double step = 10e-6 + W / 25e9;
  double expect = (end01 > end12 ? end01 : end12) + 2 * step;
  TS_ASSERT_REL(o.metrics->iteration_time_s, expect, 1e-9);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* With t_b = 2 t_f the slots do not interlock: the measured bubble is above
** the unit-slot closed form, but Chimera still beats 1F1B. */
static void test_backward_twice_forward(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(sim(4, 4, 1, 2, 0, "ideal", &job, &o, &err), 0);
  double bf = o.metrics->bubble_fraction;
  CU_ASSERT(bf > (4.0 - 2) / (2 * 4 + 4 - 2) + 1e-6);
  CU_ASSERT(bf < 3.0 / 7.0); /* 1F1B: (D - 1)/(N + D - 1) */
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* Peak in-flight micro-batches of stage replica v (a virtual stage):
** forwarded, backward not yet run.  Its ops run one at a time on one
** device, so counting them in start order suffices. */
static int by_start(const void *a, const void *b) {
  double x = (*(const ts_event_t *const *)a)->start, y = (*(const ts_event_t *const *)b)->start;
  return (x > y) - (x < y);
}

static int vstage_peak(const ts_outcome_t *o, int v) {
  const ts_event_t **ev = malloc((size_t)o->run->n_events * sizeof *ev);
  int n = 0, in = 0, peak = 0;
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (e->vstage == v && (e->kind == TS_FORWARD || e->kind == TS_BACKWARD)) ev[n++] = e;
  }
  qsort(ev, (size_t)n, sizeof *ev, by_start);
  for (int i = 0; i < n; i++) {
    in += ev[i]->kind == TS_FORWARD ? 1 : -1;
    if (in > peak) peak = in;
  }
  free(ev);
  return peak;
}

/* Concatenated basic units (Li and Hoefler section 3.4) for N in {D, 2D,
** 4D}: closed form in unit slots, and the memory bound in unit slots and
** with t_b = 2 t_f (where a greedy device holds up to 11 at D = 8, N = 16). */
static void test_units(void) {
  for (int D = 4; D <= 8; D += 2)
    for (int tb = 1; tb <= 2; tb++) {
      int base[8] = {0};
      for (int k = 1; k <= 4; k *= 2) {
        int N = k * D, h = D / 2;
        ts_job_t *job;
        ts_outcome_t o;
        ts_err_t err = {0};
        CU_ASSERT_EQUAL_FATAL(sim(D, N, 0.5, 0.5 * tb, 0, "ideal", &job, &o, &err), 0);
        if (tb == 1) {
          TS_ASSERT_REL(o.metrics->iteration_time_s, (2 * N + D - 2) * 0.5, 1e-9);
          TS_ASSERT_REL(o.metrics->bubble_fraction, (double)(D - 2) / (2 * N + D - 2), 1e-9);
        }
        for (int d = 0; d < D; d++) {
          int in = o.metrics->dev[d].peak_inflight;
          CU_ASSERT(in >= h + 1 && in <= D);
          if (k == 1) base[d] = in;
          CU_ASSERT_EQUAL(in, base[d]);
        }
        for (int v = 0; v < 2 * D; v++) CU_ASSERT(vstage_peak(&o, v) <= h);
        /* The forward of j waits for the backward of j - D/2 (same
        ** pipeline, same stage): position by position, unit after unit. */
        for (int i = 0; i < o.run->n_events; i++) {
          const ts_event_t *e = &o.run->events[i];
          int lo = e->vstage < D ? 0 : N / 2;
          if (e->kind != TS_FORWARD || e->mb - lo < h) continue;
          const ts_event_t *b = th_find(&o, TS_BACKWARD, e->vstage, e->mb - h);
          CU_ASSERT_PTR_NOT_NULL_FATAL(b);
          CU_ASSERT(e->start >= b->end - 1e-12);
        }
        ts_outcome_free(&o);
        ts_job_free(job);
      }
    }
}

static void test_rules(void) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(sim(3, 4, 1, 1, 0, "ideal", &job, &o, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "even number of stages"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(sim(4, 5, 1, 1, 0, "ideal", &job, &o, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "microbatches"));
}

TS_TESTS{TS_TEST(test_closed_form), TS_TEST(test_units), TS_TEST(test_weights_and_allreduce),
         TS_TEST(test_backward_twice_forward), TS_TEST(test_rules)};
TS_TEST_MAIN("chimera")
