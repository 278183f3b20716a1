/*
** test_conformance.c: every registered schedule, on both executors, on one
** small transformer (layers 4, hidden 16, heads 2, ffn 64, seq 8, 2 samples
** per micro-batch, p = 2, m = 4, recompute "none", platform ideal) plus the
** settings the schedule declares it needs (ts_schedule_t.requires).  There
** is no list of schedule names here: a schedule gets these checks by being
** in the registry.
**
** (a) Op order: each device's compute ops, as (kind, stage, micro-batch) in
**     program order, are the same on the SimGrid executor and on the CPU
**     reference executor.
** (b) Activation bytes: each device's measured peak on the reference
**     executor equals, exactly, the simulator's prediction for the job's
**     reference twin (ts_ref_sim_job: a synthetic job whose cost model
**     counts the executor's tensors).
** (c) Numbers: the reference run's gradients equal one device's over the
**     whole batch (ts_ref_oracle) within a normwise relative error of
**     1e-10, and (one iteration, dense, weights in device memory) its
**     weights after the optimizer step those of ts_ref_oracle_sgd within
**     1e-10 of the weight change; a versioned run (weight_versions > 1 or
**     several iterations: 2BW) ends instead with the weights of the
**     sequential oracle of its rule (ts_ref_oracle_sgd with staleness
**     weight_versions - 1) within 1e-10 of the weight change.
** (d) Data parallelism: every schedule DP.md allows with data_parallel 2
**     (not host_weights, not several iterations: refused) matches (c)'s
**     oracles of the whole batch of both replicas on the reference
**     executor.
**
** What (a) and (b) cannot hold to, reported by the suite as it meets it,
** each decided from the runs or the declarations, never from a name:
** - a schedule whose program picks its next op from what has arrived
**   (ts_schedule_t.order_by_arrival: Varuna, Chimera) orders its ops by
**   the op times, which differ between the executors (and between runs on
**   the reference executor's real clock): (a) then asks for the same ops
**   per device in any order, and (b) is judged only on a device whose
**   reference order is the twin's;
** - a MoE job (model.moe): the reference twin is a dense synthetic job, so
**   (b) is skipped; (a) and (c) hold as for every schedule.
*/
#include <math.h>
#include <sysexits.h>

#include "ts_ref.h"
#include "tshelp.h"
#include "tsunit.h"

#define MAX_SETS 16
#define MAX_OPS 4096
#define TOL 1e-10

static const char *const PLAIN =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
    " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4,"
    " \"recompute\": \"none\"}";

/* Loads the plain job with schedule=NAME and s's requirements. */
static ts_job_t *job_for(const ts_schedule_t *s) {
  const char *sets[MAX_SETS];
  char sched[96];
  int n = 0;
  snprintf(sched, sizeof sched, "schedule=%s", s->name);
  sets[n++] = sched;
  for (int i = 0; s->requires && s->requires[i] && n < MAX_SETS; i++) sets[n++] = s->requires[i];
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = th_job_from_json(PLAIN, sets, n, &job, &err);
  if (rc) fprintf(stderr, "\n%s: its requirements do not make a valid job: %s\n", s->name, err.msg);
  CU_ASSERT_EQUAL(rc, 0);
  return rc ? NULL : job;
}

/* What one schedule's checks gave, for the summary line. */
typedef struct verdict {
  const char *a, *b, *c; /* "pass", "FAIL", "skip", "known" */
  double bytes_diff;     /* largest |measured - predicted| of a judged device */
  double err;            /* (c)'s error */
  char note[2048];
} verdict_t;

static int cmp_op(const void *x, const void *y) {
  return memcmp(x, y, 3 * sizeof(int));
}

/* 1 when every device runs the same compute ops in the same order in runs
** x and y; with multiset 1, the same ops in any order.  On a difference
** (and report 1) prints where the two part. */
static int same_ops(const ts_run_t *x, const ts_run_t *y, int multiset, int report) {
  static int a[MAX_OPS], b[MAX_OPS];
  if (x->n_devices != y->n_devices) return 0;
  for (int d = 0; d < x->n_devices; d++) {
    int na = th_device_ops(x, d, a, MAX_OPS), nb = th_device_ops(y, d, b, MAX_OPS);
    if (na == 0 || na != nb || na > MAX_OPS) return 0;
    if (multiset) {
      qsort(a, (size_t)na / 3, 3 * sizeof *a, cmp_op);
      qsort(b, (size_t)nb / 3, 3 * sizeof *b, cmp_op);
    }
    int k = 0;
    while (k < na && a[k] == b[k]) k++;
    if (k == na) continue;
    k -= k % 3;
    if (report)
      printf("\n      device %d: ops part at op %d of %d: (%s, %d, %d) against (%s, %d, %d)", d,
             k / 3, na / 3, ts_kind_name(a[k]), a[k + 1], a[k + 2], ts_kind_name(b[k]), b[k + 1],
             b[k + 2]);
    return 0;
  }
  return 1;
}

/* (a): op order, device by device; a schedule whose order follows
** arrivals (order_by_arrival) must run the same ops, and its order is
** reported. */
static const char *check_order(const ts_schedule_t *s, const ts_run_t *sim, const ts_run_t *ref,
                               verdict_t *v) {
  CU_ASSERT_EQUAL(sim->n_devices, ref->n_devices);
  if (same_ops(sim, ref, 0, !s->order_by_arrival)) return "pass";
  if (!s->order_by_arrival) {
    CU_FAIL("op order differs between the executors");
    return "FAIL";
  }
  int ok = same_ops(sim, ref, 1, 1);
  CU_ASSERT(ok);
  snprintf(v->note + strlen(v->note), sizeof v->note - strlen(v->note),
           " (a): same ops, order by arrival differs;");
  return ok ? "ops" : "FAIL";
}

/* Why device d's measured peak may differ from the twin's prediction, from
** the runs themselves (a known limit of the reference executor, see the
** file header), or NULL when it must not. */
static const char *known_cause(const ts_schedule_t *s, const ts_run_t *sim,
                               const ts_run_t *twin, const ts_run_t *ref, int d) {
  (void)sim, (void)d;
  if (s->order_by_arrival && !same_ops(twin, ref, 0, 0))
    return "order by arrival: the reference run's order is not the twin's";
  return NULL;
}

/* (b): the measured peaks against the twin's predicted ones. */
static void check_bytes(const ts_job_t *job, const ts_schedule_t *s, const ts_outcome_t *jo,
                        const ts_outcome_t *sim, const ts_run_t *ref, verdict_t *v) {
  double f[64], b[64], r[64];
  for (int k = 0; k < job->stages && k < 64; k++) f[k] = 1, b[k] = 2, r[k] = 1;
  ts_job_t *twin = NULL;
  ts_outcome_t to;
  ts_err_t err = {0};
  int rc = ts_ref_sim_job(job, jo->cost, f, b, r, "ideal", &twin, &err);
  if (!rc && job->model.moe.experts > 0) {
    /* The twin is a dense synthetic job: there is no synthetic MoE model
    ** to predict a MoE run's bytes with, so (b) is reported as skipped. */
    v->b = "skip";
    snprintf(v->note + strlen(v->note), sizeof v->note - strlen(v->note),
             " (b) skipped: the reference twin (ts_ref_sim_job) has no MoE layers;");
    ts_job_free(twin);
    return;
  }
  if (!rc) rc = ts_simulate(twin, &to, &err);
  if (rc) {
    snprintf(v->note + strlen(v->note), sizeof v->note - strlen(v->note), " twin: %.400s", err.msg);
    CU_ASSERT_EQUAL(rc, 0);
    v->b = "FAIL";
    ts_job_free(twin);
    return;
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref->measured_peak_act_bytes);
  int ok = to.metrics->n_devices == ref->n_devices, known = 0;
  CU_ASSERT_EQUAL(to.metrics->n_devices, ref->n_devices);
  for (int d = 0; ok && d < ref->n_devices; d++) {
    double meas = ref->measured_peak_act_bytes[d], pred = to.metrics->dev[d].peak_activation_bytes;
    const char *why = meas != pred ? known_cause(s, sim->run, to.run, ref, d) : NULL;
    if (why) {
      known = 1;
      snprintf(v->note + strlen(v->note), sizeof v->note - strlen(v->note),
               " (b) device %d: measured %.0f, predicted %.0f: %s;", d, meas, pred, why);
      continue;
    }
    CU_ASSERT(meas > 0);
    CU_ASSERT_EQUAL(meas, pred);
    if (meas != pred) {
      ok = 0;
      snprintf(v->note + strlen(v->note), sizeof v->note - strlen(v->note),
               " device %d: measured %.0f, predicted %.0f;", d, meas, pred);
    }
    v->bytes_diff = fmax(v->bytes_diff, fabs(meas - pred));
  }
  v->b = !ok ? "FAIL" : known ? "known" : "pass";
  ts_outcome_free(&to);
  ts_job_free(twin);
}

/* (c): gradients, or final weights of a versioned run. */
static void check_numbers(const ts_job_t *job, const ts_schedule_t *s, ts_ref_model_t *g,
                          verdict_t *v) {
  int V = s->weight_versions > 1 ? s->weight_versions : 1;
  int versioned = V > 1 || job->iterations > 1;
  ts_ref_model_t *o = versioned ? ts_ref_oracle_sgd(job, V - 1) : ts_ref_oracle(job);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  if (versioned) {
    ts_ref_config_t cfg;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
    ts_ref_model_t *w0 = ts_ref_model_new(&cfg);
    v->err = th_update_error(g, o, w0);
    /* The weights moved, so the comparison is not of two copies of W(0). */
    CU_ASSERT(th_update_error(w0, o, w0) == 1);
    ts_ref_model_free(w0);
  } else {
    v->err = th_grad_error(g, o);
    /* One iteration ends with its optimizer step, W(1) = W(0) - lr g
    ** (not with host_weights, whose weights stay in host memory, nor for
    ** MoE, which the dense SGD oracle does not run). */
    if (!s->host_weights && job->model.moe.experts == 0 && job->optimizer == TS_OPTIMIZER_ADAM) {
      ts_ref_config_t cfg;
      ts_err_t err = {0};
      CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
      ts_ref_model_t *w0 = ts_ref_model_new(&cfg), *sgd = ts_ref_oracle_sgd(job, 0);
      CU_ASSERT_PTR_NOT_NULL_FATAL(sgd);
      v->err = fmax(v->err, th_update_error(g, sgd, w0));
      ts_ref_model_free(sgd);
      ts_ref_model_free(w0);
    }
  }
  CU_ASSERT(v->err <= TOL);
  v->c = v->err <= TOL ? "pass" : "FAIL";
  ts_ref_model_free(o);
}

static void conform(const ts_schedule_t *s) {
  verdict_t v = {"FAIL", "FAIL", "FAIL", 0, INFINITY, ""};
  ts_job_t *job = job_for(s);
  if (!job) return;
  ts_outcome_t sim, jo;
  ts_err_t err = {0};
  int rc = ts_simulate(job, &sim, &err);
  if (rc) fprintf(stderr, "\n%s on simgrid: %s\n", s->name, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &jo, &err), 0);
  ts_run_t *ref = NULL;
  ts_ref_model_t *g = NULL;
  rc = ts_ref_run(job, jo.sched, jo.plan, jo.cost, &ref, &g, &err);
  if (rc) fprintf(stderr, "\n%s on reference: %s\n", s->name, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_STRING_EQUAL(ref->executor, "reference");
  v.a = check_order(s, sim.run, ref, &v);
  check_bytes(job, s, &jo, &sim, ref, &v);
  check_numbers(job, s, g, &v);
  printf("\n    %-12s devices %d  (a) order %-4s  (b) bytes %-5s max diff %-3.0f  (c) %s %-4s %.3g%s",
         s->name, sim.layout->n_devices, v.a, v.b, v.bytes_diff,
         s->weight_versions > 1 || job->iterations > 1 ? "weights" : "grads", v.c, v.err, v.note);
  ts_ref_model_free(g);
  ts_run_free(ref);
  ts_outcome_free(&jo);
  ts_outcome_free(&sim);
  ts_job_free(job);
}

static void test_every_registered_schedule(void) {
  int n = 0;
  for (int i = 0; ts_schedule_at(i); i++, n++) conform(ts_schedule_at(i));
  CU_ASSERT(n >= 1);
}

/* The declarations themselves: every requirement and compare adjustment
** is a PATH=VALUE string. */
static void test_requirements_declared(void) {
  for (int i = 0; ts_schedule_at(i); i++) {
    const ts_schedule_t *s = ts_schedule_at(i);
    for (int k = 0; s->requires && s->requires[k]; k++) {
      const char *eq = strchr(s->requires[k], '=');
      CU_ASSERT(eq && eq > s->requires[k] && eq[1]);
    }
    for (int k = 0; s->compare_sets && s->compare_sets[k].set; k++)
      CU_ASSERT_PTR_NOT_NULL(strchr(s->compare_sets[k].set, '='));
  }
}

/* Every registered schedule replicated by the plan (2 data-parallel
** replicas x 2 tensor ranks, on the ideal platform): each of the R = 4
** pipelines runs, device by device, the ops of the single pipeline, with
** virtual stage k of the pipeline as plan stage k R + r.  This holds only
** when a program addresses its stages and groups and never computes a
** device number. */
static void test_every_schedule_replicates(void) {
  for (int i = 0; ts_schedule_at(i); i++) {
    const ts_schedule_t *s = ts_schedule_at(i);
    ts_job_t *job = job_for(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    ts_outcome_t one;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(ts_execute(job, s, NULL, &one, &err), 0);
    const ts_plan_t *p1 = one.plan;
    int deg[TS_DIMS] = {2, p1->degree[TS_DIM_EP], 2, 1};
    ts_layout_t *pipe = ts_plan_pipeline(job, s);
    ts_plan_t *p4 = NULL;
    CU_ASSERT_EQUAL_FATAL(ts_plan_new(pipe, deg, NULL, job->path, &p4, &err), 0);
    int R = p4->replicas / p1->replicas;
    CU_ASSERT_EQUAL(R, 4);
    ts_run_t *run = NULL;
    int rc = ts_sim_run(job, s, p4, one.cost, &run, &err);
    if (rc) fprintf(stderr, "\n%s replicated: %s\n", s->name, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    static int a[MAX_OPS], b[MAX_OPS];
    for (int d = 0; d < p4->n_devices; d++) {
      /* The device of the single plan with d's pipeline position and lane. */
      int c[TS_DIMS] = {0, ts_plan_coord(p4, d, TS_DIM_EP), 0, ts_plan_coord(p4, d, TS_DIM_PP)};
      int d1 = ts_plan_device(p1, c);
      int r = ts_plan_coord(p4, d, TS_DIM_TP) + 2 * ts_plan_coord(p4, d, TS_DIM_DP);
      int na = th_device_ops(run, d, a, MAX_OPS), nb = th_device_ops(one.run, d1, b, MAX_OPS);
      CU_ASSERT_EQUAL(na, nb);
      CU_ASSERT(na > 0);
      int same = na == nb;
      for (int k = 0; same && k < na; k += 3) {
        /* plan stage v1 = k1 R1 + e of the single plan is k1 R1 R + e' here,
        ** with e' = tp + 2 (e + EP dp): the same lane inside replica r */
        int v1 = b[k + 1], R1 = p1->replicas, k1 = v1 / R1, e = v1 % R1;
        int want = k1 * p4->replicas + (r % 2) + 2 * (e + p1->degree[TS_DIM_EP] * (r / 2));
        same = a[k] == b[k] && a[k + 2] == b[k + 2] && a[k + 1] == want;
      }
      if (!same) printf("\n      %s: device %d (replica %d) runs other ops than device %d alone", s->name, d, r, d1);
      CU_ASSERT(same);
    }
    ts_run_free(run);
    ts_plan_free(p4);
    ts_outcome_free(&one);
    ts_job_free(job);
  }
}

/* Every registered schedule with data_parallel 2 on the reference
** executor, where DP.md allows it (not with host_weights, nor over several
** iterations: the loader must refuse those): after the one iteration and
** its optimizer step the run's weights equal one device's SGD step on the
** whole batch of both replicas (ts_ref_oracle_sgd) within 1e-10 of the
** weight change, and its gradients ts_ref_oracle's within 1e-10 (a MoE
** job: gradients only, the SGD oracle is dense). */
static void test_every_schedule_data_parallel(void) {
  int n_run = 0;
  for (int i = 0; ts_schedule_at(i); i++) {
    const ts_schedule_t *s = ts_schedule_at(i);
    ts_job_t *one = job_for(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    const char *sets[MAX_SETS + 1];
    char sched[96];
    int n = 0;
    snprintf(sched, sizeof sched, "schedule=%s", s->name);
    sets[n++] = sched;
    for (int k = 0; s->requires && s->requires[k] && n < MAX_SETS; k++) sets[n++] = s->requires[k];
    sets[n++] = "data_parallel=2";
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    int rc = th_job_from_json(PLAIN, sets, n, &job, &err);
    if (s->host_weights || one->iterations > 1) {
      printf("\n    %-12s data_parallel 2 refused: %s", s->name, err.msg);
      CU_ASSERT_EQUAL(rc, EX_DATAERR);
      CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "data_parallel"));
      ts_job_free(job);
      ts_job_free(one);
      continue;
    }
    if (rc) fprintf(stderr, "\n%s with data_parallel 2: %s\n", s->name, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    ts_outcome_t jo;
    CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &jo, &err), 0);
    ts_run_t *ref = NULL;
    ts_ref_model_t *g = NULL;
    rc = ts_ref_run(job, jo.sched, jo.plan, jo.cost, &ref, &g, &err);
    if (rc) fprintf(stderr, "\n%s with data_parallel 2 on reference: %s\n", s->name, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int moe = job->model.moe.experts > 0;
    ts_ref_model_t *o = ts_ref_oracle(job), *sgd = moe ? NULL : ts_ref_oracle_sgd(job, 0);
    ts_ref_config_t cfg;
    CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
    ts_ref_model_t *w0 = ts_ref_model_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    double eg = th_grad_error(g, o), ew = sgd ? th_update_error(g, sgd, w0) : 0;
    printf("\n    %-12s data_parallel 2: devices %d, gradients %.3g, weights %s%.3g", s->name,
           jo.plan->n_devices, eg, sgd ? "" : "(MoE: not checked) ", ew);
    CU_ASSERT(eg <= TOL);
    CU_ASSERT(ew <= TOL);
    n_run++;
    ts_ref_model_free(w0);
    ts_ref_model_free(o);
    ts_ref_model_free(sgd);
    ts_ref_model_free(g);
    ts_run_free(ref);
    ts_outcome_free(&jo);
    ts_job_free(job);
    ts_job_free(one);
  }
  CU_ASSERT(n_run >= 2);
}

TS_TESTS{TS_TEST(test_requirements_declared), TS_TEST(test_every_registered_schedule),
         TS_TEST(test_every_schedule_replicates), TS_TEST(test_every_schedule_data_parallel)};
TS_TEST_MAIN("conformance")
