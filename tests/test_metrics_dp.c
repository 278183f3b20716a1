/*
** test_metrics_dp.c: the data-parallel metrics (src/metrics/metrics_dp.c,
** ts_metrics.c) on hand-built runs over a plan of 2 stages and d = 2 or 4
** replicas: model states by ZeRO stage (16 Psi, 4 Psi + 12 Psi/d,
** 2 Psi + 14 Psi/d, 16 Psi/d at 2 bytes per element), collectives' bytes by
** kind, dp_comm_s as the union of overlapping spans, exposed_comm_s,
** optimizer_s, the pipeline span against the makespan, the bubble unchanged
** by trailing data-parallel events, p2p bytes without collective steps, and
** zero-3 gathered parameters in memory over time.
*/
#include "tshelp.h"
#include "tsunit.h"

static const double PSI = 1e6; /* parameters of each part */
static const double ACT = 5e5; /* activation bytes of a part per micro-batch */

typedef struct fixture {
  ts_job_t job;
  ts_plan_t *plan;
  ts_cost_t cost;
  ts_part_cost_t part[2];
  ts_run_t *run;
} fixture_t;

static void setup(fixture_t *f, int d, int zero) {
  memset(f, 0, sizeof *f);
  f->job.microbatches = 2;
  f->job.iterations = 1;
  f->job.micro_batch_size = 1;
  f->job.seq_len = 8;
  f->job.bytes_per_element = 2;
  f->job.data_parallel = d;
  f->job.zero = zero;
  int deg[TS_DIMS] = {1, 1, d, 1};
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_plan_new(ts_layout_linear(2, 1), deg, NULL, "t.json", &f->plan, &err), 0);
  for (int p = 0; p < 2; p++)
    f->part[p] = (ts_part_cost_t){.params = PSI, .weights_bytes = 2 * PSI,
                                  .gradients_bytes = 2 * PSI, .optimizer_bytes = 12 * PSI,
                                  .act_bytes = ACT, .act_input_bytes = ACT};
  f->cost = (ts_cost_t){.n_parts = 2, .part = f->part};
  f->run = ts_run_new(f->plan->n_devices);
}

static void done(fixture_t *f) {
  ts_run_free(f->run);
  ts_plan_free(f->plan);
}

static void push(fixture_t *f, int dev, int kind, int v, int mb, int seq, double s, double e,
                 double bytes, int32_t coll) {
  ts_event_t ev = {.device = dev, .peer = dev, .vstage = v, .mb = mb, .kind = kind, .seq = seq,
                   .coll = coll, .start = s, .end = e, .bytes = bytes};
  ts_run_push(f->run, &ev);
}

/* The plan vstage of device dev (one per device here). */
static int vstage_of(const fixture_t *f, int dev) {
  for (int v = 0; v < f->plan->layout->n_vstages; v++)
    if (f->plan->layout->dev[v] == dev) return v;
  return -1;
}

/* Every device: forward mb 0 over [0, 1], backward mb 0 over [1, 3]. */
static void pipeline(fixture_t *f) {
  for (int d = 0; d < f->plan->n_devices; d++) {
    int v = vstage_of(f, d);
    push(f, d, TS_FORWARD, v, 0, 0, 0, 1, 0, 0);
    push(f, d, TS_BACKWARD, v, 0, 1, 1, 3, 0, 0);
  }
}

static void test_zero_states(void) {
  const double want[4] = {16, 4 + 12.0 / 4, 2 + 14.0 / 4, 16.0 / 4}; /* x Psi, d = 4 */
  const double want2[4] = {16, 4 + 12.0 / 2, 2 + 14.0 / 2, 16.0 / 2}; /* d = 2 */
  for (int z = 0; z < 4; z++) {
    for (int k = 0; k < 2; k++) {
      int d = k ? 2 : 4;
      fixture_t f;
      setup(&f, d, z);
      CU_ASSERT_EQUAL(f.plan->n_devices, 2 * d);
      CU_ASSERT_EQUAL(ts_plan_group(f.plan, TS_GROUP_REPLICA, 0).n, d);
      pipeline(&f);
      ts_run_sort(f.run);
      ts_metrics_t *m = ts_metrics_compute(&f.job, NULL, f.plan, &f.cost, f.run);
      for (int dev = 0; dev < f.plan->n_devices; dev++) {
        const ts_device_metrics_t *dm = &m->dev[dev];
        double states = dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes;
        TS_ASSERT_REL(states, (k ? want2 : want)[z] * PSI, 1e-12);
        TS_ASSERT_REL(dm->weights_bytes, (z >= 3 ? 2.0 / d : 2.0) * PSI, 1e-12);
        TS_ASSERT_REL(dm->gradients_bytes, (z >= 2 ? 2.0 / d : 2.0) * PSI, 1e-12);
        TS_ASSERT_REL(dm->optimizer_bytes, (z >= 1 ? 12.0 / d : 12.0) * PSI, 1e-12);
        TS_ASSERT_REL(dm->peak_memory_bytes, states + ACT, 1e-12);
      }
      ts_metrics_free(m);
      done(&f);
    }
  }
}

static void test_streams(void) {
  fixture_t f;
  setup(&f, 2, 0);
  pipeline(&f);
  /* p2p: an activation and a gradient of 100 and 50 bytes from device 0 */
  push(&f, 0, TS_SEND_ACT, vstage_of(&f, 0), 0, 0, 1, 1.5, 100, 0);
  push(&f, 0, TS_SEND_GRAD, vstage_of(&f, 0), 0, 0, 1, 1.5, 50, 0);
  ts_run_sort(f.run);
  ts_metrics_t *base = ts_metrics_compute(&f.job, NULL, f.plan, &f.cost, f.run);
  int32_t ar = TS_EV_COLL(TS_COLL_ALLREDUCE, TS_CP_GRADS, TS_GROUP_REPLICA);
  int32_t ag = TS_EV_COLL(TS_COLL_ALLGATHER, TS_CP_PARAMS, TS_GROUP_REPLICA);
  int32_t rs = TS_EV_COLL(TS_COLL_REDUCE_SCATTER, TS_CP_GRADS, TS_GROUP_REPLICA);
  int32_t own = TS_EV_COLL(TS_COLL_ALLREDUCE, TS_CP_SCHEDULE, TS_GROUP_KINDS);
  int v0 = vstage_of(&f, 0);
  /* device 0: DP spans [2, 4] and [3, 5] overlap, [6, 7] apart: union 4 */
  push(&f, 0, TS_COLLECTIVE, v0, 0, 0, 2, 4, 1000, ar);
  push(&f, 0, TS_COLLECTIVE, v0, 1, 0, 3, 5, 300, rs);
  push(&f, 0, TS_COLLECTIVE, v0, 2, 0, 6, 7, 200, ag);
  push(&f, 0, TS_COLLECTIVE, v0, -1, 0, 2.5, 2.75, 7, own); /* not DP, inside the pipeline */
  push(&f, 0, TS_SEND_COLL, v0, 0, 0, 2, 3, 500, ar);        /* a step: no p2p */
  push(&f, 0, TS_COMM_WAIT, v0, 0, 0, 3, 4.5, 0, 0);
  push(&f, 0, TS_COMM_WAIT, v0, 0, 0, 5.5, 6, 0, 0);
  push(&f, 0, TS_OPTIMIZER, v0, 0, 0, 5, 5.5, 64, 0);
  /* device 1: one all-reduce, a longer optimizer step */
  push(&f, 1, TS_COLLECTIVE, vstage_of(&f, 1), 0, 0, 3, 4, 1000, ar);
  push(&f, 1, TS_OPTIMIZER, vstage_of(&f, 1), 0, 0, 4, 5, 64, 0);
  ts_run_sort(f.run);
  ts_metrics_t *m = ts_metrics_compute(&f.job, NULL, f.plan, &f.cost, f.run);
  const ts_device_metrics_t *d0 = &m->dev[0], *d1 = &m->dev[1];
  TS_ASSERT_REL(d0->dp_comm_s, 4.0, 1e-12);
  TS_ASSERT_REL(d0->exposed_comm_s, 2.0, 1e-12);
  TS_ASSERT_REL(d0->optimizer_s, 0.5, 1e-12);
  TS_ASSERT_REL(d1->optimizer_s, 1.0, 1e-12);
  TS_ASSERT_REL(d0->coll_bytes[TS_COLL_ALLREDUCE], 1007, 1e-12);
  TS_ASSERT_REL(d0->coll_bytes[TS_COLL_REDUCE_SCATTER], 300, 1e-12);
  TS_ASSERT_REL(d0->coll_bytes[TS_COLL_ALLGATHER], 200, 1e-12);
  TS_ASSERT_REL(d0->dp_bytes, 1500, 1e-12);
  TS_ASSERT_REL(m->coll_bytes[TS_COLL_ALLREDUCE], 2007, 1e-12);
  TS_ASSERT_REL(m->dp_bytes, 2500, 1e-12);
  TS_ASSERT_REL(m->dp_comm_s, 4.0, 1e-12);
  TS_ASSERT_REL(m->exposed_comm_s, 2.0, 1e-12);
  TS_ASSERT_REL(m->optimizer_s, 1.0, 1e-12);
  TS_ASSERT_REL(m->iteration_time_s, 7.0, 1e-12);
  TS_ASSERT_REL(m->pipeline_time_s, 3.0, 1e-12);
  TS_ASSERT_REL(m->dp_comm_share, 4.0 / 7.0, 1e-12);
  /* p2p: the collective step is not counted */
  TS_ASSERT_REL(d0->send_bytes, 150, 1e-12);
  TS_ASSERT_REL(m->p2p_bytes, 150, 1e-12);
  /* the pipeline numbers equal those of the run without DP events */
  TS_ASSERT_REL(base->iteration_time_s, 3.0, 1e-12);
  TS_ASSERT_REL(base->pipeline_time_s, 3.0, 1e-12);
  TS_ASSERT_REL(m->bubble_fraction, base->bubble_fraction, 1e-12);
  TS_ASSERT_REL(m->bubble_overhead, base->bubble_overhead, 1e-12);
  TS_ASSERT_REL(m->ideal_time_s, base->ideal_time_s, 1e-12);
  TS_ASSERT_REL(d0->busy_s, 3.0, 1e-12); /* the optimizer is not busy time */
  CU_ASSERT_EQUAL(base->bubble_fraction, 0);
  /* throughput over the makespan, every replica: 2 micro-batches x 2 replicas */
  TS_ASSERT_REL(m->samples_per_s, 4.0 / 7.0, 1e-12);
  ts_metrics_free(base);
  ts_metrics_free(m);
  done(&f);
}

static void test_flops_every_replica(void) {
  fixture_t f;
  setup(&f, 4, 0);
  f.cost.has_flops = true;
  f.cost.model_flops_per_iteration = 8e12; /* one replica */
  pipeline(&f);
  for (int d = 0; d < f.plan->n_devices; d++) f.run->devices[d].peak_flops = 1e12;
  ts_run_sort(f.run);
  ts_metrics_t *m = ts_metrics_compute(&f.job, NULL, f.plan, &f.cost, f.run);
  /* 4 replicas x 8e12 over 3 s on 8 devices */
  TS_ASSERT_REL(m->flops_per_s_per_gpu, 4 * 8e12 / (3.0 * 8), 1e-12);
  TS_ASSERT_REL(m->mfu, 4 * 8e12 / (3.0 * 8) / 1e12, 1e-12);
  ts_metrics_free(m);
  done(&f);
}

/* Zero 3, d = 2: a unit of 2 Psi bytes of weights; its gather sends half. */
static void test_gathered(void) {
  for (int whole = 0; whole < 2; whole++) {
    fixture_t f;
    setup(&f, 2, 3);
    int v = vstage_of(&f, 0);
    int32_t g = TS_EV_COLL(TS_COLL_ALLGATHER, TS_CP_GATHER, TS_GROUP_REPLICA);
    double H = PSI; /* gathered bytes of one unit: (n - 1) / n of 2 Psi */
    /* Two units per op.  Forward: gathers [0, 1] and [1, 1.5] (prefetch at
    ** the first unit's compute start), units [1, 2] and [2, 3]; backward
    ** the same from 4. */
    push(&f, 0, TS_COLLECTIVE, v, 0, 0, 0, 1, H, g);
    push(&f, 0, TS_COLLECTIVE, v, 0, 0, 1, 1.5, H, g);
    push(&f, 0, TS_COLLECTIVE, v, 0, 0, 4, 5, H, g);
    push(&f, 0, TS_COLLECTIVE, v, 0, 0, 5, 5.5, H, g);
    if (whole) { /* whole ops: each holds both of its gathers to its end */
      push(&f, 0, TS_FORWARD, v, 0, 0, 1, 3, 0, 0);
      push(&f, 0, TS_BACKWARD, v, 0, 1, 5, 7, 0, 0);
    } else {
      /* pieces of one op: MORE on all but the last, CONT on all but the first */
      push(&f, 0, TS_FORWARD, v, 0, 0, 1, 2, 0, 0);
      f.run->events[f.run->n_events - 1].flags = TS_EVF_MORE;
      push(&f, 0, TS_FORWARD, v, 0, 1, 2, 3, 0, 0);
      f.run->events[f.run->n_events - 1].flags = TS_EVF_CONT;
      push(&f, 0, TS_BACKWARD, v, 0, 2, 5, 6, 0, 0);
      f.run->events[f.run->n_events - 1].flags = TS_EVF_MORE;
      push(&f, 0, TS_BACKWARD, v, 0, 3, 6, 7, 0, 0);
      f.run->events[f.run->n_events - 1].flags = TS_EVF_CONT;
    }
    ts_run_sort(f.run);
    ts_metrics_t *m = ts_metrics_compute(&f.job, NULL, f.plan, &f.cost, f.run);
    const ts_device_metrics_t *dm = &m->dev[0];
    TS_ASSERT_REL(dm->gathered_peak_bytes, 2 * H, 1e-12);
    TS_ASSERT_REL(dm->peak_activation_bytes, ACT, 1e-12);
    double states = 16 * PSI / 2;
    TS_ASSERT_REL(dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes, states, 1e-12);
    /* the peak is at [1, 1.5] or [5, 5.5]: activations and both units */
    TS_ASSERT_REL(dm->peak_memory_bytes, states + ACT + 2 * H, 1e-12);
    /* memory over time: activations plus gathered */
    double at[] = {0.5, 1.25, 2.5, 3.5, 4.5, 5.25, 6.5, 7.5};
    double want_pieces[] = {H, ACT + 2 * H, ACT + H, ACT, ACT + H, ACT + 2 * H, ACT + H, 0};
    double want_whole[] = {H, ACT + 2 * H, ACT + 2 * H, ACT, ACT + H, ACT + 2 * H, ACT + 2 * H, 0};
    for (int i = 0; i < 8; i++) {
      double b = -1;
      for (int s = 0; s < dm->n_mem && dm->mem_t[s] <= at[i]; s++) b = dm->mem_bytes[s];
      TS_ASSERT_REL(b, (whole ? want_whole : want_pieces)[i], 1e-12);
    }
    CU_ASSERT_EQUAL(m->dev[1].gathered_peak_bytes, 0);
    ts_metrics_free(m);
    done(&f);
  }
}

TS_TESTS{
    TS_TEST(test_zero_states),
    TS_TEST(test_streams),
    TS_TEST(test_flops_every_replica),
    TS_TEST(test_gathered),
};

TS_TEST_MAIN("metrics_dp")
