/*
** test_dp.c: data parallelism (src/runtime/rt_dp.c, README "Data
** parallelism") on SimGrid, against closed forms:
**   - DDP: each rank sends 2 (d - 1) / d x G bytes (G the gradient bytes it
**     holds); on a star of full-duplex links (bandwidth B, latency L per
**     link, so a message of S bytes takes c(S) = 2 L + S / B) one bucket's
**     ring all-reduce takes 2 (d - 1) c(G / d);
**   - ZeRO 1 and 2: a reduce-scatter and an all-gather of (d - 1) / d x G
**     each, (d - 1) c(G / d) each; ZeRO 3: 1.5 x DDP's bytes per
**     micro-batch (an all-gather before the forward and another before the
**     backward, a reduce-scatter after it);
**   - buckets: the count PyTorch's rule gives (reverse layer order, first
**     bucket 1 MiB, then gradient_bucket_mb MiB, a layer never split), and
**     one collective without overlap;
**   - overlap: the first bucket starts before the backward ends and less
**     communication is exposed than with one collective after it;
**   - memory by ZeRO stage: 16 Psi, 4 Psi + 12 Psi / d, 2 Psi + 14 Psi / d,
**     16 Psi / d at 2 bytes per element;
**   - every schedule replicated d = 2 on the ideal platform keeps each
**     replica's pipeline timing, p2p bytes and activation memory exactly.
*/
#include <math.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tshelp.h"
#include "tsunit.h"

#define BW 10e9
#define LAT 1e-6
#define MIB 1048576.0

/* The star platform of th_star_platform with this file's figures. */
static const char *star_platform(int n) { return th_star_platform(n, BW, LAT); }

static double c_of(double S) { return 2 * LAT + S / BW; }

/* A one-stage synthetic job of d replicas holding G gradient bytes each. */
static int synth(int d, int zero, int m, double G, const char *plat, ts_job_t **job,
                 ts_outcome_t *o) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 0.001, \"backward_s\": 0.002,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 1, \"weights_bytes\": %.17g},"
           " \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": 1, \"microbatches\": %d,"
           " \"data_parallel\": %d, \"zero\": %d}",
           G, plat, m, d, zero);
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, job, o, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  return rc;
}

/* Sum of the device's TS_COLLECTIVE bytes and spans of op (-1: any). */
static int colls(const ts_outcome_t *o, int d, int op, double *bytes, double *span) {
  int n = 0;
  *bytes = *span = 0;
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (e->kind != TS_COLLECTIVE || e->device != d) continue;
    if (op >= 0 && TS_EV_COLL_OP(e->coll) != (ts_coll_op_t)op) continue;
    n++;
    *bytes += e->bytes;
    *span += e->end - e->start;
  }
  return n;
}

static void test_ddp_ring(void) {
  const double G = 4e8;
  for (int d = 2; d <= 4; d += 2) {
    const char *plat = star_platform(d);
    ts_job_t *job;
    ts_outcome_t o;
    CU_ASSERT_EQUAL_FATAL(synth(d, 0, 1, G, plat, &job, &o), 0);
    for (int r = 0; r < d; r++) {
      double b, t;
      CU_ASSERT_EQUAL(colls(&o, r, TS_COLL_ALLREDUCE, &b, &t), 1); /* one part: one bucket */
      TS_ASSERT_REL(b, 2.0 * (d - 1) / d * G, 1e-12);
      TS_ASSERT_REL(o.metrics->dev[r].dp_bytes, 2.0 * (d - 1) / d * G, 1e-12);
      TS_ASSERT_REL(o.metrics->dev[r].coll_bytes[TS_COLL_ALLREDUCE], b, 1e-12);
      TS_ASSERT_REL(t, 2.0 * (d - 1) * c_of(G / d), 1e-9);
      TS_ASSERT_REL(o.metrics->dev[r].dp_comm_s, t, 1e-9);
    }
    /* The collective follows the backward: the iteration is the pipeline
    ** (3 ms) plus the all-reduce, all of it exposed. */
    TS_ASSERT_REL(o.metrics->pipeline_time_s, 0.003, 1e-9);
    TS_ASSERT_REL(o.metrics->iteration_time_s, 0.003 + 2.0 * (d - 1) * c_of(G / d), 1e-9);
    TS_ASSERT_REL(o.metrics->exposed_comm_s, 2.0 * (d - 1) * c_of(G / d), 1e-9);
    CU_ASSERT_EQUAL(o.metrics->p2p_bytes, 0);
    ts_outcome_free(&o);
    ts_job_free(job);
    unlink(plat);
  }
}

static void test_zero_traffic(void) {
  const double G = 4e8;
  const int d = 4;
  const char *plat = star_platform(d);
  double ddp = 2.0 * (d - 1) / d * G;
  for (int zero = 1; zero <= 3; zero++)
    for (int m = 1; m <= (zero == 3 ? 2 : 1); m++) {
      ts_job_t *job;
      ts_outcome_t o;
      CU_ASSERT_EQUAL_FATAL(synth(d, zero, m, G, plat, &job, &o), 0);
      for (int r = 0; r < d; r++) {
        double rs, ag, trs, tag;
        int nrs = colls(&o, r, TS_COLL_REDUCE_SCATTER, &rs, &trs);
        int nag = colls(&o, r, TS_COLL_ALLGATHER, &ag, &tag);
        double ar, tar;
        CU_ASSERT_EQUAL(colls(&o, r, TS_COLL_ALLREDUCE, &ar, &tar), 0);
        if (zero < 3) {
          /* reduce-scatter of the gradients, all-gather of the parameters */
          CU_ASSERT_EQUAL(nrs, 1);
          CU_ASSERT_EQUAL(nag, 1);
          TS_ASSERT_REL(rs, (d - 1.0) / d * G, 1e-12);
          TS_ASSERT_REL(ag, (d - 1.0) / d * G, 1e-12);
          TS_ASSERT_REL(trs, (d - 1) * c_of(G / d), 1e-9);
          TS_ASSERT_REL(tag, (d - 1) * c_of(G / d), 1e-9);
          TS_ASSERT_REL(o.metrics->dev[r].dp_bytes, ddp, 1e-12);
        } else {
          /* per micro-batch: gathers before forward and backward, one
          ** reduce-scatter after the backward */
          CU_ASSERT_EQUAL(nrs, m);
          CU_ASSERT_EQUAL(nag, 2 * m);
          TS_ASSERT_REL(o.metrics->dev[r].dp_bytes, 1.5 * m * ddp, 1e-12);
        }
      }
      ts_outcome_free(&o);
      ts_job_free(job);
    }
  unlink(plat);
}

/* The buckets the rule gives for per-unit bytes u[0 .. n) (reverse order). */
static int expected_buckets(const double *u, int n, double cap_mb) {
  int k = 0;
  double cur = 0, cap = MIB;
  for (int i = n - 1; i >= 0; i--) {
    cur += u[i];
    if (cur >= cap) {
      k++;
      cur = 0;
      cap = cap_mb * MIB;
    }
  }
  return k + (cur > 0);
}

static int grad_colls(const ts_outcome_t *o, int d) {
  int n = 0;
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    n += e->kind == TS_COLLECTIVE && e->device == d && TS_EV_COLL_PURPOSE(e->coll) == TS_CP_GRADS;
  }
  return n;
}

static const char *tf_job =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 12, \"hidden\": 512, \"heads\": 8,"
    " \"vocab\": 1000}, \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 1,"
    " \"microbatches\": 2, \"seq_len\": 128, \"data_parallel\": 2}";

static void test_bucket_count(void) {
  /* 12 layers of 12 h^2 + 13 h parameters, the embedding (V + s) h in the
  ** first; 2 bytes each. */
  double h = 512, layer = 2 * (12 * h * h + 13 * h), emb = 2 * (1000.0 + 128) * h;
  double u[12];
  for (int i = 0; i < 12; i++) u[i] = layer + (i == 0 ? emb : 0);
  static const struct {
    const char *set;
    double cap;
    int want;
  } cases[] = {{"gradient_bucket_mb=25", 25, 4}, {"gradient_bucket_mb=1000", 1000, 2},
               {"gradient_bucket_mb=6", 6, 12}, {"overlap_grad_reduce=false", 0, 1}};
  /* Layers under 1 MiB: the first bucket's smaller cap shows. h = 128:
  ** 0.378 MiB a layer, 0.275 MiB more in the first; reverse order, caps 1
  ** MiB then 1 MiB: layers 11-9, 8-6, 5-3, 2-0 (a first cap of 2 MiB would
  ** give 3 buckets). */
  {
    double hs = 128, ls = 2 * (12 * hs * hs + 13 * hs), es = 2 * (1000.0 + 128) * hs, us[12];
    for (int i = 0; i < 12; i++) us[i] = ls + (i == 0 ? es : 0);
    CU_ASSERT_EQUAL(expected_buckets(us, 12, 1), 4);
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    const char *sets[] = {"model.hidden=128", "model.heads=4", "gradient_bucket_mb=1"};
    CU_ASSERT_EQUAL_FATAL(th_simulate(tf_job, sets, 3, &job, &o, &err), 0);
    for (int r = 0; r < 2; r++) CU_ASSERT_EQUAL(grad_colls(&o, r), 4);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    const char *sets[] = {cases[c].set};
    CU_ASSERT_EQUAL_FATAL(th_simulate(tf_job, sets, 1, &job, &o, &err), 0);
    int want = cases[c].cap > 0 ? expected_buckets(u, 12, cases[c].cap) : 1;
    CU_ASSERT_EQUAL(want, cases[c].want);
    for (int r = 0; r < 2; r++) CU_ASSERT_EQUAL(grad_colls(&o, r), want);
    /* every gradient byte once: 2 (d - 1) / d x G with d = 2 */
    double G = 12 * layer + emb;
    TS_ASSERT_REL(o.metrics->dev[0].dp_bytes, G, 1e-12);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_overlap_hides_communication(void) {
  const char *plat = star_platform(2);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 12, \"hidden\": 1024, \"heads\": 8,"
           " \"vocab\": 1000}, \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": 1,"
           " \"microbatches\": 2, \"seq_len\": 512, \"data_parallel\": 2}",
           plat);
  double exposed[2], iter[2];
  for (int ov = 0; ov < 2; ov++) {
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    const char *sets[] = {ov ? "overlap_grad_reduce=true" : "overlap_grad_reduce=false"};
    CU_ASSERT_EQUAL_FATAL(th_simulate(json, sets, 1, &job, &o, &err), 0);
    double last_compute = 0, first_coll = 1e30;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device != 0) continue;
      if (ts_kind_is_compute(e->kind) && e->end > last_compute) last_compute = e->end;
      if (e->kind == TS_COLLECTIVE && e->start < first_coll) first_coll = e->start;
    }
    if (ov) {
      CU_ASSERT(first_coll < last_compute); /* the first bucket overlaps the backward */
    } else {
      CU_ASSERT(first_coll >= last_compute);
    }
    exposed[ov] = o.metrics->exposed_comm_s;
    iter[ov] = o.metrics->iteration_time_s;
    /* the same bytes either way */
    TS_ASSERT_REL(o.metrics->dev[0].dp_bytes,
                  2 * (12 * 2 * (12 * 1024.0 * 1024 + 13 * 1024) + 2 * 1512.0 * 1024) / 2, 1e-12);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
  printf("\n    exposed communication %.3g ms with overlap, %.3g ms without", 1e3 * exposed[1],
         1e3 * exposed[0]);
  CU_ASSERT(exposed[1] < 0.5 * exposed[0]);
  CU_ASSERT(iter[1] < iter[0]);
  unlink(plat);
}

/* zero 3: unit k + 1's all-gather is queued when unit k's compute starts,
** so the stream begins it before that compute ends (no prefetch: after). */
static void test_zero3_prefetch(void) {
  const char *plat = star_platform(2);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 6, \"hidden\": 1024, \"heads\": 8,"
           " \"vocab\": 1000}, \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": 1,"
           " \"microbatches\": 1, \"seq_len\": 512, \"data_parallel\": 2, \"zero\": 3}",
           plat);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(json, NULL, 0, &job, &o, &err), 0);
  double ag[6], fw[6];
  int na = 0, nf = 0;
  for (int i = 0; i < o.run->n_events; i++) { /* sorted by start */
    const ts_event_t *e = &o.run->events[i];
    if (e->device != 0) continue;
    if (e->kind == TS_COLLECTIVE && TS_EV_COLL_PURPOSE(e->coll) == TS_CP_GATHER && na < 6 &&
        nf < 6)
      ag[na++] = e->start;
    if (e->kind == TS_FORWARD && nf < 6) fw[nf] = e->end, nf++;
  }
  CU_ASSERT_EQUAL_FATAL(nf, 6); /* one forward piece per layer */
  CU_ASSERT_FATAL(na >= 6);
  for (int k = 0; k + 1 < 6; k++) CU_ASSERT(ag[k + 1] < fw[k]);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

static void test_zero_memory(void) {
  const int d = 4;
  for (int zero = 0; zero <= 3; zero++) {
    ts_job_t *job;
    ts_outcome_t o;
    ts_err_t err = {0};
    char z[32], dp[32];
    snprintf(z, sizeof z, "zero=%d", zero);
    snprintf(dp, sizeof dp, "data_parallel=%d", d);
    const char *sets[] = {z, dp};
    CU_ASSERT_EQUAL_FATAL(th_simulate(tf_job, sets, 2, &job, &o, &err), 0);
    double psi = o.cost->part[0].params;
    double want[4][3] = {{2, 2, 12}, {2, 2, 12.0 / d}, {2, 2.0 / d, 12.0 / d}, {2.0 / d, 2.0 / d, 12.0 / d}};
    double total[4] = {16, 4 + 12.0 / d, 2 + 14.0 / d, 16.0 / d};
    for (int r = 0; r < d; r++) {
      const ts_device_metrics_t *dm = &o.metrics->dev[r];
      TS_ASSERT_REL(dm->weights_bytes, want[zero][0] * psi, 1e-12);
      TS_ASSERT_REL(dm->gradients_bytes, want[zero][1] * psi, 1e-12);
      TS_ASSERT_REL(dm->optimizer_bytes, want[zero][2] * psi, 1e-12);
      TS_ASSERT_REL(dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes, total[zero] * psi,
                    1e-12);
      double states = total[zero] * psi;
      if (zero < 3) {
        CU_ASSERT_EQUAL(dm->gathered_peak_bytes, 0);
        TS_ASSERT_REL(dm->peak_memory_bytes, states + dm->peak_activation_bytes, 1e-12);
      } else {
        /* gathered units: at most two layers' weights (one in use, one
        ** prefetched) less the own shard */
        double layer = 2 * (12 * 512.0 * 512 + 13 * 512), emb = 2 * 1128.0 * 512;
        CU_ASSERT(dm->gathered_peak_bytes > 0);
        CU_ASSERT(dm->gathered_peak_bytes <= (2 * layer + emb) * (d - 1) / d * (1 + 1e-12));
        CU_ASSERT(dm->peak_memory_bytes > states + dm->peak_activation_bytes);
        CU_ASSERT(dm->peak_memory_bytes <=
                  states + dm->peak_activation_bytes + dm->gathered_peak_bytes + 1);
      }
    }
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_every_schedule_replicated(void) {
  for (int i = 0; ts_schedule_at(i); i++) {
    const ts_schedule_t *s = ts_schedule_at(i);
    char sched[96];
    snprintf(sched, sizeof sched, "schedule=%s", s->name);
    const char *sets[16] = {sched};
    int n = 1;
    for (const char *const *r = s->requires; r && *r && n < 14; r++) sets[n++] = *r;
    /* One iteration: replicas synchronise once (2BW's updates over several
    ** iterations are refused with data_parallel, README "Data
    ** parallelism"). */
    sets[n++] = "iterations=1";
    static const char *base =
        "{\"model\": {\"kind\": \"transformer\", \"layers\": 8, \"hidden\": 256, \"heads\": 4,"
        " \"vocab\": 1000}, \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4,"
        " \"microbatches\": 4, \"seq_len\": 128}";
    ts_job_t *j1 = NULL, *j2 = NULL;
    ts_outcome_t o1, o2;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(th_simulate(base, sets, n, &j1, &o1, &err), 0);
    sets[n++] = "data_parallel=2";
    int rc = th_simulate(base, sets, n, &j2, &o2, &err);
    if (s->host_weights) {
      /* not composed: a one-line error naming the field */
      CU_ASSERT_EQUAL(rc, EX_DATAERR);
      CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "data_parallel"));
      printf("\n    %-13s %s", s->name, err.msg);
      ts_outcome_free(&o1);
      ts_job_free(j1);
      ts_job_free(j2);
      continue;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(o2.run->n_devices, 2 * o1.run->n_devices);
    TS_ASSERT_REL(o2.metrics->pipeline_time_s, o1.metrics->pipeline_time_s, 1e-12);
    TS_ASSERT_REL(o2.metrics->p2p_bytes, 2 * o1.metrics->p2p_bytes, 1e-12);
    /* replica r's device of pipeline position q holds what device q held */
    for (int dev = 0; dev < o2.run->n_devices; dev++) {
      int c[TS_DIMS];
      for (int k = 0; k < TS_DIMS; k++) c[k] = ts_plan_coord(o2.plan, dev, (ts_dim_t)k);
      c[TS_DIM_DP] = 0;
      int base_dev = ts_plan_device(o1.plan, c);
      CU_ASSERT_FATAL(base_dev >= 0);
      TS_ASSERT_REL(o2.metrics->dev[dev].peak_activation_bytes,
                    o1.metrics->dev[base_dev].peak_activation_bytes, 1e-12);
      TS_ASSERT_REL(o2.metrics->dev[dev].busy_s, o1.metrics->dev[base_dev].busy_s, 1e-9);
    }
    printf("\n    %-13s d=2: pipeline %.6g s as d=1, dp bytes %.4g", s->name,
           o2.metrics->pipeline_time_s, o2.metrics->dp_bytes);
    CU_ASSERT(o2.metrics->dp_bytes > 0);
    ts_outcome_free(&o1);
    ts_outcome_free(&o2);
    ts_job_free(j1);
    ts_job_free(j2);
  }
}

TS_TESTS{
    TS_TEST(test_ddp_ring),
    TS_TEST(test_zero_traffic),
    TS_TEST(test_bucket_count),
    TS_TEST(test_overlap_hides_communication),
    TS_TEST(test_zero3_prefetch),
    TS_TEST(test_zero_memory),
    TS_TEST(test_every_schedule_replicated),
};
TS_TEST_MAIN("data parallelism")
