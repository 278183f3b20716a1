/*
** test_ref_selective.c: selective recompute (recompute "selective",
** Korthikanti et al. 2022) on the reference executor without tensor
** parallelism (src/ref/ref_model.c; with TP: test_ref_tp.c).
**
** - Runs: GPipe and 1F1B on p = 2 and 4 stages (layers 4, hidden 16, heads
**   2, ffn 64, seq 8, 2 samples per micro-batch, m = 4): the gradients
**   equal ts_ref_oracle's within 1e-10 (normwise, as test_ref_exec.c).
** - It recomputes: every device's backwards recomputed the attention core
**   of every block it holds once per micro-batch (layers x m), each
**   recomputed attention output bitwise the kept one.
** - It keeps less: each device's measured activation peak equals exactly
**   the simulator's prediction for the synthetic twin (ts_ref_sim_job) and
**   the closed form k ts_ref_tp_stash_bytes(t 1, selective) plus the first
**   backward's transients and the recomputed core's buffer
**   (ts_ref_core_bytes), which is k (mb H s^2) x 8 bytes per block less
**   than recompute "none" keeps (k: m for GPipe, min(p - s, m) for 1F1B).
*/
#include <math.h>
#include <string.h>

#include "ts_ref.h"
#include "tshelp.h"
#include "tsunit.h"

#define TOL 1e-10

static ts_job_t *sel_job(const char *sched, int p, const char *rec) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
           " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
           " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": 4,"
           " \"recompute\": \"%s\"}",
           sched, p, rec);
  return th_load_job(json);
}

static void sel_case(const char *sched, int p) {
  ts_job_t *job = sel_job(sched, p, "selective");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_err_t err = {0};
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &o, &err), 0);
  ts_run_t *run = NULL;
  ts_ref_model_t *g = NULL;
  ts_ref_extra_t ex;
  int rc = ts_ref_run_ex(job, o.sched, o.plan, o.cost, &run, &g, &ex, &err);
  if (rc) fprintf(stderr, "\n%s p=%d: %s\n", sched, p, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_ref_model_t *ora = ts_ref_oracle(job);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ora);
  double eg = th_grad_error(g, ora);
  /* The twin's predicted peaks. */
  double f[8], b[8];
  for (int s = 0; s < p; s++) f[s] = 1, b[s] = 2;
  ts_job_t *twin = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_ref_sim_job(job, o.cost, f, b, NULL, "ideal", &twin, &err), 0);
  ts_outcome_t to;
  CU_ASSERT_EQUAL_FATAL(ts_simulate(twin, &to, &err), 0);
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  int nl = 4 / p, m = job->microbatches;
  double stash = (double)ts_ref_tp_stash_bytes(&cfg, nl, 2, 1, 0, 1);
  double tmp = (double)(ts_ref_backward_transient_bytes(&cfg, 2) + ts_ref_core_bytes(&cfg, 2));
  long bad_rec = 0, bad_bytes = 0;
  for (int d = 0; d < p; d++) {
    long mism, recs = ts_ref_core_recomputes(ex.dev_models[d], &mism);
    bad_rec += recs != (long)nl * m || mism != 0;
    int k = strcmp(sched, "gpipe") == 0 ? m : (p - d < m ? p - d : m);
    double meas = run->measured_peak_act_bytes[d], pred = to.metrics->dev[d].peak_activation_bytes;
    double closed = k * stash + tmp;
    if (meas != pred || meas != closed)
      fprintf(stderr, "\n%s p=%d device %d: measured %.17g predicted %.17g closed %.17g\n", sched,
              p, d, meas, pred, closed);
    bad_bytes += meas != pred || meas != closed;
  }
  double probs = 8.0 * 2 * 2 * 8 * 8; /* one block's probs: mb H s^2 doubles */
  CU_ASSERT_EQUAL(ts_ref_stash_bytes(&cfg, nl, 2) - ts_ref_tp_stash_bytes(&cfg, nl, 2, 1, 0, 1),
                  nl * probs);
  printf("\n    %-5s p=%d: gradients %.3g; %ld devices off the recompute count (%d x %d each), "
         "%ld off the bytes",
         sched, p, eg, bad_rec, nl, m, bad_bytes);
  CU_ASSERT(eg <= TOL);
  CU_ASSERT_EQUAL(bad_rec, 0);
  CU_ASSERT_EQUAL(bad_bytes, 0);
  ts_outcome_free(&to);
  ts_job_free(twin);
  ts_ref_extra_free(&ex);
  ts_ref_model_free(g);
  ts_ref_model_free(ora);
  ts_run_free(run);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_selective_matches_oracle(void) {
  for (int p = 2; p <= 4; p += 2) {
    sel_case("gpipe", p);
    sel_case("1f1b", p);
  }
}

/* Without selective recompute nothing is recomputed. */
static void test_none_recomputes_nothing(void) {
  ts_job_t *job = sel_job("1f1b", 2, "none");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_err_t err = {0};
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &o, &err), 0);
  ts_run_t *run = NULL;
  ts_ref_extra_t ex;
  CU_ASSERT_EQUAL_FATAL(ts_ref_run_ex(job, o.sched, o.plan, o.cost, &run, NULL, &ex, &err), 0);
  for (int d = 0; d < 2; d++) CU_ASSERT_EQUAL(ts_ref_core_recomputes(ex.dev_models[d], NULL), 0);
  ts_ref_extra_free(&ex);
  ts_run_free(run);
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_selective_matches_oracle), TS_TEST(test_none_recomputes_nothing)};
TS_TEST_MAIN("reference selective recompute")
