/*
** test_ref_dp.c: data parallelism on the reference executor (src/ref/ref_dp.c,
** the region walk of src/ref/ref_coll.c), against the one-device oracle.
**
** - The buffer mapping, on a hand-built executor state (no run): a region
**   of units is the concatenation of its layers' arrays (block vectors, a
**   MoE layer's gate; the experts' W1 and W2 of the device's EP rank in the
**   expert buffers), slice k of n is [k N / n, (k + 1) N / n) of it;
**   coll_end after a reduce-scatter of gradients zeroes exactly the other
**   slices, release makes exactly the other slices NaN (and a forward on
**   released weights gives NaN), the optimizer changes exactly the own
**   slice by -lr x G, and the owners' slices assemble the whole.
** - Runs: for d in {2, 4}, zero 0 to 3, schedules 1f1b and gpipe (a tiny
**   transformer of 4 layers, hidden 16, heads 2, ffn 32, seq 8, 2 samples
**   per micro-batch, 2 stages, m = 2 and 4): after the one iteration and
**   its optimizer step, every replica's weights (zero 3: those of its own
**   shards; the rest is NaN, released) and the run's assembled weights
**   equal ts_ref_oracle_sgd(job, 0) (one device, the whole batch of every
**   replica) within 1e-10 of the weight change, and the gradients equal
**   ts_ref_oracle's within 1e-10.  The check can fail: against the oracle
**   of one replica's batch the error is above 1e-3, and with optimizer
**   "none" the weights did not move (error 1).
*/
#include <math.h>
#include <sysexits.h>

#include "ref_internal.h"
#include "tshelp.h"
#include "tsunit.h"

#define TOL 1e-10

/* The tiny job; data_parallel and zero are written only when not 1 and 0. */
static ts_job_t *dp_job(const char *sched, int m, int d, int zero, const char *extra) {
  char json[1024], dp[96] = "";
  if (d != 1 || zero != 0) snprintf(dp, sizeof dp, ", \"data_parallel\": %d, \"zero\": %d", d, zero);
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
           " \"ffn_hidden\": 32, \"vocab\": 50}, \"seq_len\": 8, \"micro_batch_size\": 2,"
           " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": 2, \"microbatches\": %d"
           "%s%s}",
           sched, m, dp, extra ? extra : "");
  return th_load_job(json);
}

/* ---- the buffer mapping, without a run ------------------------------------ */

/* A hand-built executor state of job's plan: devices, models, units. */
typedef struct fake {
  ts_outcome_t o;
  ref_x_t x;
  ts_ref_model_t *base;
} fake_t;

static void fake_new(fake_t *f, const ts_job_t *job) {
  ts_err_t err = {0};
  memset(f, 0, sizeof *f);
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &f->o, &err), 0);
  ref_x_t *x = &f->x;
  x->job = job;
  x->plan = f->o.plan;
  x->lay = f->o.plan->layout;
  x->cost = f->o.cost;
  CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &x->cfg, &err), 0);
  x->n = x->lay->n_devices;
  pthread_mutex_init(&x->mu, NULL);
  atomic_init(&x->fatal, 0);
  x->dev = calloc((size_t)x->n, sizeof *x->dev);
  f->base = ts_ref_model_new(&x->cfg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f->base);
  for (int d = 0; d < x->n; d++) x->dev[d].model = ts_ref_model_clone(f->base);
  CU_ASSERT_EQUAL_FATAL(ts__ref_dp_setup(x), 0);
}

static void fake_free(fake_t *f) {
  ts__ref_dp_free(&f->x);
  for (int d = 0; d < f->x.n; d++) ts_ref_model_free(f->x.dev[d].model);
  free(f->x.dev);
  pthread_mutex_destroy(&f->x.mu);
  ts_ref_model_free(f->base);
  ts_outcome_free(&f->o);
}

/* Sets every gradient of m to the value of its position plus 1 within
** each block (so that slices are recognisable). */
static void number_grads(ts_ref_model_t *m, int layers) {
  for (int l = 0; l < layers; l++) {
    size_t n;
    double *g = (double *)ts_ref_block_grad(m, l, &n);
    for (size_t i = 0; i < n; i++) g[i] = (double)(l * 100000 + (long)i + 1);
  }
}

static void test_region_mapping(void) {
  ts_job_t *job = dp_job("1f1b", 2, 1, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  fake_t f;
  fake_new(&f, job);
  ref_x_t *x = &f.x;
  size_t nb = ts_ref_block_param_count(&x->cfg);
  /* Two stages of a 4-layer model: device 0 holds layers 0 and 1. */
  CU_ASSERT_EQUAL(x->dev[0].n_units, 2);
  CU_ASSERT_EQUAL(x->dev[0].unit_layer[0], 0);
  CU_ASSERT_EQUAL(x->dev[1].unit_layer[1], 3);
  CU_ASSERT_EQUAL(ts__ref_walk(x, 0, NULL, TS_BUF_GRADS, 0, -1, 0, 0, NULL, TS__REF_READ, 0), 2 * nb);
  CU_ASSERT_EQUAL(ts__ref_walk(x, 0, NULL, TS_BUF_GRADS, 1, 2, 0, 0, NULL, TS__REF_READ, 0), nb);
  CU_ASSERT_EQUAL(ts__ref_walk(x, 0, NULL, TS_BUF_EXPERT_GRADS, 0, -1, 0, 0, NULL, TS__REF_READ, 0), 0);
  /* Slice 1 of 3 of units [0, 2) of device 1 (layers 2, 3). */
  ts_ref_model_t *m = x->dev[1].model;
  number_grads(m, 4);
  size_t N = 2 * nb, lo, hi;
  ts__ref_slice(N, 1, 3, &lo, &hi);
  CU_ASSERT_EQUAL(lo, N / 3);
  CU_ASSERT_EQUAL(hi, 2 * N / 3);
  double *v = malloc((hi - lo) * sizeof *v);
  ts__ref_walk(x, 1, NULL, TS_BUF_GRADS, 0, 2, lo, hi, v, TS__REF_READ, 0);
  long bad = 0;
  for (size_t i = lo; i < hi; i++) {
    int l = i < nb ? 2 : 3;
    bad += v[i - lo] != (double)(l * 100000 + (long)(i % nb) + 1);
  }
  CU_ASSERT_EQUAL(bad, 0);
  free(v);
  /* coll_end of a reduce-scatter: the other slices are zero, the own kept. */
  ts_coll_step_t st = {.op = TS_COLL_REDUCE_SCATTER, .buf = TS_BUF_GRADS, .unit_lo = 0,
                       .unit_hi = 2, .chunk = 1, .n_chunks = 3};
  ts__ref_coll_end(x, 1, &st);
  long zeros = 0, kept = 0;
  for (int l = 2; l < 4; l++) {
    size_t n;
    const double *g = ts_ref_block_grad(m, l, &n);
    for (size_t i = 0; i < n; i++) {
      size_t k = (size_t)(l - 2) * nb + i;
      if (k >= lo && k < hi)
        kept += g[i] == (double)(l * 100000 + (long)i + 1);
      else
        zeros += g[i] == 0;
    }
  }
  CU_ASSERT_EQUAL(kept, (long)(hi - lo));
  CU_ASSERT_EQUAL(zeros, (long)(N - (hi - lo)));
  CU_ASSERT_EQUAL(x->dev[1].n_own, 1);
  /* An all-reduce's end changes nothing. */
  st.op = TS_COLL_ALLREDUCE;
  ts__ref_coll_end(x, 1, &st);
  CU_ASSERT_EQUAL(x->dev[1].n_own, 1);
  /* The optimizer on shard 1 of 3: W -= lr G there only. */
  ts_region_t r = {TS_BUF_GRADS, 0, 2, 1, 3};
  ts__ref_optimizer(x, 1, 0, 1, &r, 0);
  long moved = 0, same = 0;
  for (int l = 2; l < 4; l++) {
    size_t n;
    const double *w = ts_ref_block_params(m, l, &n), *w0 = ts_ref_block_params(f.base, l, &n);
    const double *g = ts_ref_block_grad(m, l, &n);
    for (size_t i = 0; i < n; i++) {
      size_t k = (size_t)(l - 2) * nb + i;
      if (k >= lo && k < hi)
        moved += w[i] == w0[i] - TS_REF_LR * g[i];
      else
        same += w[i] == w0[i];
    }
  }
  CU_ASSERT_EQUAL(moved, (long)(hi - lo));
  CU_ASSERT_EQUAL(same, (long)(N - (hi - lo)));
  CU_ASSERT_EQUAL(x->dev[1].n_own, 2);
  /* The owners' slices assemble onto a model: only slice 1 changes. */
  ts_ref_model_t *g = ts_ref_model_clone(f.base);
  ts_ref_model_zero_grad(g);
  CU_ASSERT_EQUAL(ts__ref_dp_assemble(x, g, 0), 0);
  CU_ASSERT_EQUAL(ts__ref_dp_assemble(x, g, 1), 0);
  long got = 0;
  for (int l = 2; l < 4; l++) {
    size_t n;
    const double *a = ts_ref_block_grad(g, l, &n), *b = ts_ref_block_grad(m, l, &n);
    const double *p = ts_ref_block_params(g, l, &n), *q = ts_ref_block_params(m, l, &n);
    for (size_t i = 0; i < n; i++) got += a[i] == b[i] && p[i] == q[i];
  }
  CU_ASSERT_EQUAL(got, (long)N);
  /* Release: NaN outside the own shard; a forward on it gives NaN. */
  ts_region_t rw = {TS_BUF_WEIGHTS, 0, 1, 0, 2};
  ts__ref_release(x, 0, &rw);
  size_t n0;
  double *w = ts_ref_block_params(x->dev[0].model, 0, &n0);
  long nan = 0, kept_w = 0;
  for (size_t i = 0; i < n0; i++) {
    if (i >= n0 / 2)
      nan += isnan(w[i]) != 0;
    else
      kept_w += !isnan(w[i]);
  }
  CU_ASSERT_EQUAL(nan, (long)(n0 - n0 / 2));
  CU_ASSERT_EQUAL(kept_w, (long)(n0 / 2));
  size_t n_el = (size_t)2 * x->cfg.seq * x->cfg.hidden;
  double *in = calloc(n_el, sizeof *in), *out = malloc(n_el * sizeof *out);
  for (size_t i = 0; i < n_el; i++) in[i] = 0.01 * (double)(i % 7);
  ts_ref_stash_free(ts_ref_forward(x->dev[0].model, 0, 1, 2, in, out, 0, NULL), NULL);
  long out_nan = 0;
  for (size_t i = 0; i < n_el; i++) out_nan += isnan(out[i]) != 0;
  printf("\n    units of device 1: %d; slice 1 of 3: [%zu, %zu) of %zu; forward on released "
         "weights: %ld of %zu outputs NaN",
         x->dev[1].n_units, lo, hi, N, out_nan, n_el);
  CU_ASSERT(out_nan > 0);
  free(in);
  free(out);
  ts_ref_model_free(g);
  fake_free(&f);
  ts_job_free(job);
}

static void test_expert_regions(void) {
  static const char *const moe =
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
      " \"ffn_hidden\": 32, \"vocab\": 50, \"moe\": {\"experts\": 4, \"expert_parallel\": 2,"
      " \"every\": 2, \"expert_ffn\": 12, \"capacity_factor\": 1.0, \"group_size\": 8}},"
      " \"seq_len\": 8, \"micro_batch_size\": 2, \"platform\": \"ideal\", \"schedule\": \"gshard\","
      " \"stages\": 2, \"microbatches\": 2}";
  ts_job_t *job = th_load_job(moe);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  fake_t f;
  fake_new(&f, job);
  ref_x_t *x = &f.x;
  size_t nb = ts_ref_block_param_count(&x->cfg), h = 16, E = 4, ff = 12;
  for (int d = 0; d < x->n; d++) {
    /* Every device holds two layers, one of them MoE (every 2: layer 1 or 3). */
    int ep = ts_plan_group(x->plan, TS_GROUP_EP, d).rank;
    CU_ASSERT_EQUAL(x->dev[d].n_units, 2);
    CU_ASSERT_EQUAL(x->dev[d].e_lo, 2 * ep);
    CU_ASSERT_EQUAL(x->dev[d].e_n, 2);
    CU_ASSERT_EQUAL(ts__ref_walk(x, d, NULL, TS_BUF_GRADS, 0, -1, 0, 0, NULL, TS__REF_READ, 0),
                    2 * nb + h * E);
    CU_ASSERT_EQUAL(ts__ref_walk(x, d, NULL, TS_BUF_EXPERT_GRADS, 0, 1, 0, 0, NULL, TS__REF_READ, 0), 0);
    CU_ASSERT_EQUAL(ts__ref_walk(x, d, NULL, TS_BUF_EXPERT_GRADS, 1, 2, 0, 0, NULL, TS__REF_READ, 0),
                    2 * 2 * h * ff);
    /* The expert region's first element is W1 of expert e_lo; its second
    ** half starts at W2 of e_lo. */
    int l = x->dev[d].unit_layer[1];
    double *P = ts_ref_moe_params(x->dev[d].model, l, NULL), v[2];
    size_t half = 2 * h * ff;
    ts__ref_walk(x, d, NULL, TS_BUF_EXPERT_WEIGHTS, 1, 2, 0, 1, v, TS__REF_READ, 0);
    ts__ref_walk(x, d, NULL, TS_BUF_EXPERT_WEIGHTS, 1, 2, half, half + 1, v + 1, TS__REF_READ, 0);
    CU_ASSERT_EQUAL(v[0], P[h * E + (size_t)x->dev[d].e_lo * h * ff]);
    CU_ASSERT_EQUAL(v[1], P[h * E + (E + (size_t)x->dev[d].e_lo) * h * ff]);
  }
  fake_free(&f);
  ts_job_free(job);
}

/* ---- runs -------------------------------------------------------------------- */

/* Worst normwise error of the weight change of the elements of a's held
** blocks (holds[l]) that are not NaN, against o (w0 the initial weights);
** *nan counts the NaN ones, *total all. */
static double own_update_error(ts_ref_model_t *a, ts_ref_model_t *o, ts_ref_model_t *w0,
                               const unsigned char *holds, int layers, long *nan, long *total) {
  double worst = 0;
  for (int l = 0; l < layers; l++) {
    if (!holds[l]) continue;
    size_t n;
    const double *p = ts_ref_block_params(a, l, &n), *q = ts_ref_block_params(o, l, &n);
    const double *z = ts_ref_block_params(w0, l, &n);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
      den = fmax(den, fabs(q[i] - z[i]));
      if (isnan(p[i])) {
        ++*nan;
        continue;
      }
      num = fmax(num, fabs(p[i] - q[i]));
    }
    *total += (long)n;
    double e = den > 0 ? num / den : num;
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

/* One run: returns the worst error over its replicas and *grads. */
static double dp_case(const char *sched, int m, int d, int zero, int verbose) {
  ts_job_t *job = dp_job(sched, m, d, zero, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &o, &err), 0);
  CU_ASSERT_EQUAL(o.plan->n_devices, 2 * d);
  ts_run_t *run = NULL;
  ts_ref_model_t *g = NULL;
  ts_ref_extra_t ex;
  int rc = ts_ref_run_ex(job, o.sched, o.plan, o.cost, &run, &g, &ex, &err);
  if (rc) fprintf(stderr, "\n%s d=%d zero %d: %s\n", sched, d, zero, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_ref_model_t *sgd = ts_ref_oracle_sgd(job, 0), *ora = ts_ref_oracle(job);
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  ts_ref_model_t *w0 = ts_ref_model_new(&cfg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sgd);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ora);
  double ew = th_update_error(g, sgd, w0), eg = th_grad_error(g, ora), er = 0;
  long nan = 0, total = 0;
  for (int k = 0; k < ex.n_devices; k++)
    er = fmax(er, own_update_error(ex.dev_models[k], sgd, w0, ex.holds + (size_t)k * cfg.layers,
                                   cfg.layers, &nan, &total));
  /* Each block is held by d devices: zero 3 keeps 1/d of it on each. */
  long want_nan = zero == 3 ? total * (d - 1) / d : 0;
  if (verbose)
    printf("\n    %-5s d=%d zero %d m=%d: assembled weights %.3g, gradients %.3g, every "
           "replica's own weights %.3g (%ld of %ld replica values released)",
           sched, d, zero, m, ew, eg, er, nan, total);
  CU_ASSERT(ew <= TOL);
  CU_ASSERT(eg <= TOL);
  CU_ASSERT(er <= TOL);
  /* zero 3: about (d - 1) / d of every replica's weights are released. */
  CU_ASSERT(labs(nan - want_nan) <= total / 100);
  CU_ASSERT(zero == 3 ? nan > 0 : nan == 0);
  /* The weights moved: not a comparison of two copies of W(0). */
  CU_ASSERT(th_update_error(w0, sgd, w0) == 1);
  ts_ref_extra_free(&ex);
  ts_ref_model_free(g);
  ts_ref_model_free(sgd);
  ts_ref_model_free(ora);
  ts_ref_model_free(w0);
  ts_run_free(run);
  ts_outcome_free(&o);
  ts_job_free(job);
  return fmax(fmax(ew, eg), er);
}

static void test_replicas_match_oracle(void) {
  static const char *const S[] = {"1f1b", "gpipe"};
  double worst = 0;
  for (int s = 0; s < 2; s++)
    for (int d = 2; d <= 4; d += 2)
      for (int zero = 0; zero <= 3; zero++)
        worst = fmax(worst, dp_case(S[s], d == 2 ? 4 : 2, d, zero, 1));
  printf("\n    worst error over the 16 runs: %.3g", worst);
  CU_ASSERT(worst <= TOL);
}

/* The check can fail: the oracle of one replica's batch is not the
** replicas' result, and without an optimizer step the weights stay W(0). */
static void test_check_discriminates(void) {
  ts_job_t *job = dp_job("1f1b", 2, 2, 1, NULL), *one = dp_job("1f1b", 2, 1, 1, NULL);
  ts_job_t *none = dp_job("1f1b", 2, 2, 1, ", \"optimizer\": \"none\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_PTR_NOT_NULL_FATAL(one);
  CU_ASSERT_PTR_NOT_NULL_FATAL(none);
  ts_err_t err = {0};
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  ts_ref_model_t *w0 = ts_ref_model_new(&cfg), *sgd = ts_ref_oracle_sgd(job, 0);
  ts_ref_model_t *sgd1 = ts_ref_oracle_sgd(one, 0);
  double e[2];
  ts_job_t *jobs[2] = {job, none};
  for (int k = 0; k < 2; k++) {
    ts_outcome_t o;
    CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(jobs[k], NULL, &o, &err), 0);
    ts_run_t *run = NULL;
    ts_ref_model_t *g = NULL;
    CU_ASSERT_EQUAL_FATAL(ts_ref_run(jobs[k], o.sched, o.plan, o.cost, &run, &g, &err), 0);
    e[k] = th_update_error(g, k == 0 ? sgd1 : sgd, w0);
    ts_ref_model_free(g);
    ts_run_free(run);
    ts_outcome_free(&o);
  }
  printf("\n    d=2 zero 1 against one replica's oracle: %.3g; optimizer \"none\" against the "
         "oracle: %.3g",
         e[0], e[1]);
  CU_ASSERT(e[0] > 1e-3);
  CU_ASSERT(e[1] == 1);
  ts_ref_model_free(w0);
  ts_ref_model_free(sgd);
  ts_ref_model_free(sgd1);
  ts_job_free(job);
  ts_job_free(one);
  ts_job_free(none);
}

/* The normwise relative error of a's MoE gradients (grads 1) or of its
** weight change against w0 - lr g (grads 0), g the oracle o's gradients,
** over the MoE layers, gate and every expert. */
static double moe_error(ts_ref_model_t *a, ts_ref_model_t *o, ts_ref_model_t *w0, int grads) {
  const ts_ref_config_t *c = ts_ref_model_config(o);
  double worst = 0;
  for (int l = 0; l < c->layers; l++) {
    size_t n;
    double *g = ts_ref_moe_grad(o, l, &n);
    if (!g) continue;
    double *x = grads ? ts_ref_moe_grad(a, l, NULL) : ts_ref_moe_params(a, l, NULL);
    double *p0 = ts_ref_moe_params(w0, l, NULL), num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
      double want = grads ? g[i] : p0[i] - TS_REF_LR * g[i];
      double ref = grads ? g[i] : TS_REF_LR * g[i];
      num = fmax(num, fabs(x[i] - want));
      den = fmax(den, fabs(ref));
      if (isnan(x[i])) num = INFINITY;
    }
    double e = den > 0 ? num / den : num;
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

/* MoE with data parallelism (gshard, EP 2, d = 2, zero 0 to 2): the dense
** and gate gradients sync over the replica group, the experts' over the DP
** group (their own buffers, TS_BUF_EXPERT_*); gradients and weights W(1) =
** W(0) - lr g against the MoE oracle of both replicas' lanes. */
static void test_moe_replicas(void) {
  for (int zero = 0; zero <= 2; zero++) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
             " \"ffn_hidden\": 32, \"vocab\": 50, \"moe\": {\"experts\": 4, \"expert_parallel\": 2,"
             " \"every\": 2, \"expert_ffn\": 12, \"capacity_factor\": 1.0, \"group_size\": 8}},"
             " \"seq_len\": 8, \"micro_batch_size\": 2, \"platform\": \"ideal\","
             " \"schedule\": \"gshard\", \"stages\": 2, \"microbatches\": 2,"
             " \"data_parallel\": 2, \"zero\": %d}",
             zero);
    ts_job_t *job = th_load_job(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    ts_outcome_t o;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &o, &err), 0);
    ts_run_t *run = NULL;
    ts_ref_model_t *g = NULL, *ora = ts_ref_oracle(job);
    int rc = ts_ref_run(job, o.sched, o.plan, o.cost, &run, &g, &err);
    if (rc) fprintf(stderr, "\ngshard d=2 zero %d: %s\n", zero, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ora);
    ts_ref_config_t cfg;
    CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
    ts_ref_model_t *w0 = ts_ref_model_new(&cfg);
    /* The dense blocks' W(1) from the oracle's gradients. */
    ts_ref_model_t *w1 = ts_ref_model_clone(w0);
    for (int l = 0; l < cfg.layers; l++) {
      size_t n;
      const double *gr = ts_ref_block_grad(ora, l, &n);
      double *w = ts_ref_block_params(w1, l, &n);
      for (size_t i = 0; i < n; i++) w[i] -= TS_REF_LR * gr[i];
    }
    double eg = th_grad_error(g, ora), ew = th_update_error(g, w1, w0);
    double mg = moe_error(g, ora, w0, 1), mw = moe_error(g, ora, w0, 0);
    printf("\n    gshard d=2 EP=2 zero %d (%d devices): dense gradients %.3g, weights %.3g; MoE "
           "gradients %.3g, weights %.3g",
           zero, o.plan->n_devices, eg, ew, mg, mw);
    CU_ASSERT_EQUAL(o.plan->n_devices, 8);
    CU_ASSERT(eg <= TOL);
    CU_ASSERT(ew <= TOL);
    CU_ASSERT(mg <= TOL);
    CU_ASSERT(mw <= TOL);
    ts_ref_model_free(w0);
    ts_ref_model_free(w1);
    ts_ref_model_free(g);
    ts_ref_model_free(ora);
    ts_run_free(run);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

TS_TESTS{TS_TEST(test_region_mapping), TS_TEST(test_expert_regions),
         TS_TEST(test_replicas_match_oracle), TS_TEST(test_check_discriminates),
         TS_TEST(test_moe_replicas)};
TS_TEST_MAIN("reference data parallelism")
