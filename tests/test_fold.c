/*
** test_fold.c: symmetry folding (src/plan/plan_fold.c, sim/sim_fold.c,
** README "Symmetry folding"):
**   - the class map: each device's representative has tp = dp = 0 and its
**     own pp coordinate, is the class's lowest device, and the shifts
**     ts_fold_image / ts_fold_unimage are inverse;
**   - a GPT job with TP 2, PP 2, DP 2 on the two DGX-A100 nodes, folded
**     (--fold) against full granularity (--exact) under 1F1B, interleaved
**     and ZeRO 1 with sequence parallelism, in three rank orders:
**     and with t = 4 and d = 4 (ring phases merged into one message):
**     iteration time within 1%, bytes (point-to-point, TP, DP, each
**     collective kind, every link's) and every device's memory peaks
**     exactly equal, and fewer events;
**   - a platform whose hosts differ within a class, or whose routes
**     differ (a TP ring alternating NVLink and InfiniBand), is not folded
**     (the run is the exact one).
*/
#include <math.h>
#include <unistd.h>

#include "tshelp.h"
#include "tsunit.h"
#include "ts_fold.h"
#include "ts_sim.h"

static const char *gpt_job(char *buf, size_t n, const char *plat) {
  snprintf(buf, n,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 768, \"heads\": 12, "
           "\"vocab\": 50257, \"flash_attention\": true, \"dropout\": false}, \"platform\": \"%s\", "
           "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4, \"seq_len\": 1024, "
           "\"tensor_parallel\": 2, \"data_parallel\": 2}",
           plat);
  return buf;
}

/* Simulates json with sets under folding mode fold; 0 or the error. */
static int sim(const char *json, const char *const *sets, int n_sets, int fold, ts_job_t **job,
               ts_outcome_t *o) {
  ts_err_t err = {0};
  int saved = ts_sim_fold;
  ts_sim_fold = fold;
  int rc = th_simulate(json, sets, n_sets, job, o, &err);
  ts_sim_fold = saved;
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  return rc;
}

static void test_classes(void) {
  char cwd[512], plat[700], json[1400];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  snprintf(plat, sizeof plat, "%s/platforms/dgx-a100-4node.xml", cwd);
  const char *sets[] = {"data_parallel=4", "tensor_parallel=2", "rank_order=dp-pp-tp"};
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(gpt_job(json, sizeof json, plat), sets, 3, &job, &err), 0);
  ts_plan_t *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_plan_for_job(job, ts_schedule_find("1f1b"), &p, &err), 0);
  int *rep = ts_fold_classes(p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
  int reps = 0;
  for (int d = 0; d < p->n_devices; d++) {
    int r = rep[d];
    CU_ASSERT(r <= d);
    CU_ASSERT_EQUAL(ts_plan_coord(p, r, TS_DIM_TP), 0);
    CU_ASSERT_EQUAL(ts_plan_coord(p, r, TS_DIM_DP), 0);
    CU_ASSERT_EQUAL(ts_plan_coord(p, r, TS_DIM_PP), ts_plan_coord(p, d, TS_DIM_PP));
    reps += r == d;
    for (int s = 0; s < p->n_devices; s++)
      CU_ASSERT_EQUAL(ts_fold_unimage(p, d, ts_fold_image(p, d, s)), s);
    CU_ASSERT_EQUAL(ts_fold_image(p, d, d), r);
  }
  CU_ASSERT_EQUAL(reps, 2); /* one per stage */
  free(rep);
  ts_plan_free(p);
  ts_job_free(job);
  /* Nothing to fold without TP and DP. */
  const char *one[] = {"data_parallel=1", "tensor_parallel=1"};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(gpt_job(json, sizeof json, plat), one, 2, &job, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_plan_for_job(job, ts_schedule_find("1f1b"), &p, &err), 0);
  CU_ASSERT_PTR_NULL(ts_fold_classes(p));
  ts_plan_free(p);
  ts_job_free(job);
}

/* Folded and exact runs of one job agree (see the file header). */
static void check_equal(const char *json, const char *const *sets, int n_sets) {
  ts_job_t *jf, *je;
  ts_outcome_t of, oe;
  CU_ASSERT_EQUAL_FATAL(sim(json, sets, n_sets, 1, &jf, &of), 0);
  CU_ASSERT_EQUAL_FATAL(sim(json, sets, n_sets, -1, &je, &oe), 0);
  CU_ASSERT_PTR_NOT_NULL(of.run->fold);
  CU_ASSERT_PTR_NULL(oe.run->fold);
  CU_ASSERT(of.run->n_events < oe.run->n_events);
  const ts_metrics_t *f = of.metrics, *e = oe.metrics;
  CU_ASSERT(e->iteration_time_s > 0);
  CU_ASSERT(fabs(f->iteration_time_s - e->iteration_time_s) <= 0.01 * e->iteration_time_s);
  CU_ASSERT(e->tp_bytes > 0 && e->dp_bytes > 0 && e->p2p_bytes > 0);
  CU_ASSERT_EQUAL(f->p2p_bytes, e->p2p_bytes);
  CU_ASSERT_EQUAL(f->tp_bytes, e->tp_bytes);
  CU_ASSERT_EQUAL(f->dp_bytes, e->dp_bytes);
  for (int op = 0; op < TS_COLL_OPS; op++) CU_ASSERT_EQUAL(f->coll_bytes[op], e->coll_bytes[op]);
  CU_ASSERT_EQUAL_FATAL(f->n_devices, e->n_devices);
  for (int d = 0; d < e->n_devices; d++) {
    const ts_device_metrics_t *a = &f->dev[d], *b = &e->dev[d];
    CU_ASSERT_EQUAL(a->peak_memory_bytes, b->peak_memory_bytes);
    CU_ASSERT_EQUAL(a->peak_activation_bytes, b->peak_activation_bytes);
    CU_ASSERT_EQUAL(a->send_bytes, b->send_bytes);
    CU_ASSERT_EQUAL(a->tp_bytes, b->tp_bytes);
    CU_ASSERT_EQUAL(a->dp_bytes, b->dp_bytes);
    for (int op = 0; op < TS_COLL_OPS; op++) CU_ASSERT_EQUAL(a->coll_bytes[op], b->coll_bytes[op]);
  }
  CU_ASSERT_EQUAL_FATAL(of.run->n_links, oe.run->n_links);
  for (int k = 0; k < oe.run->n_links; k++) {
    CU_ASSERT_STRING_EQUAL(of.run->links[k].name, oe.run->links[k].name);
    CU_ASSERT_EQUAL(of.run->links[k].bytes, oe.run->links[k].bytes);
    /* Busy time from the representatives' spans on every member's route:
    ** the exact run's within 2% (a merged ring phase is one span where the
    ** steps leave gaps between them). */
    const ts_link_use_t *lf = &of.run->links[k], *le = &oe.run->links[k];
    CU_ASSERT_EQUAL(lf->fatpipe, le->fatpipe);
    CU_ASSERT(le->busy_s > 0);
    if (fabs(lf->busy_s - le->busy_s) > 0.02 * le->busy_s + 1e-9)
      fprintf(stderr, "\n%s busy %.9g exact %.9g\n", le->name, lf->busy_s, le->busy_s);
    CU_ASSERT(fabs(lf->busy_s - le->busy_s) <= 0.02 * le->busy_s + 1e-9);
  }
  ts_outcome_free(&of);
  ts_outcome_free(&oe);
  ts_job_free(jf);
  ts_job_free(je);
}

static void test_fast_matches_exact(void) {
  char cwd[512], plat[700], json[1400];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  snprintf(plat, sizeof plat, "%s/platforms/dgx-a100-2node.xml", cwd);
  gpt_job(json, sizeof json, plat);
  static const char *const orders[] = {"rank_order=tp-dp-pp", "rank_order=tp-pp-dp",
                                       "rank_order=pp-dp-tp"};
  for (int i = 0; i < 3; i++) {
    const char *plain[] = {orders[i]};
    check_equal(json, plain, 1);
    const char *inter[] = {orders[i], "schedule=interleaved", "chunks=2"};
    check_equal(json, inter, 3);
    const char *zero[] = {orders[i], "zero=1", "sequence_parallel=true", "microbatches=8"};
    check_equal(json, zero, 4);
    /* t = 4: each ring phase over the folded TP group goes as one merged
    ** message (ts_exec_ops_t.send_steps). */
    const char *t4[] = {orders[i], "tensor_parallel=4", "microbatches=8"};
    if (i < 2) check_equal(json, t4, 3); /* pp-dp-tp: see test_asymmetric_not_folded */
  }
  /* DP 4 on 4 nodes: the folded DP group's phases merged too. */
  char json4[1400];
  snprintf(plat, sizeof plat, "%s/platforms/dgx-a100-4node.xml", cwd);
  const char *d4[] = {"data_parallel=4", "tensor_parallel=4", "rank_order=tp-pp-dp"};
  check_equal(gpt_job(json4, sizeof json4, plat), d4, 3);
}

/* One host of a class slower than the others: no folding, the exact run. */
static void test_asymmetric_not_folded(void) {
  const char *plat = th_star_platform(8, 50e9, 1e-6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(plat);
  char json[1400];
  gpt_job(json, sizeof json, plat);
  const char *sets[] = {"platform.host.h5.speed=5e11"};
  ts_job_t *jf, *je;
  ts_outcome_t of, oe;
  CU_ASSERT_EQUAL_FATAL(sim(json, sets, 1, 1, &jf, &of), 0);
  CU_ASSERT_EQUAL_FATAL(sim(json, sets, 1, -1, &je, &oe), 0);
  CU_ASSERT_PTR_NULL(of.run->fold);
  CU_ASSERT_EQUAL(of.run->n_events, oe.run->n_events);
  CU_ASSERT_EQUAL(of.metrics->iteration_time_s, oe.metrics->iteration_time_s);
  ts_outcome_free(&of);
  ts_outcome_free(&oe);
  ts_job_free(jf);
  ts_job_free(je);
  /* TP 4 over two nodes in rank order pp-dp-tp: the TP ring alternates
  ** NVLink and InfiniBand hops, so rank 0's route to its successor is not
  ** rank 1's: not folded. */
  char cwd[512], dgx[700], json2[1400];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  snprintf(dgx, sizeof dgx, "%s/platforms/dgx-a100-2node.xml", cwd);
  const char *mixed[] = {"rank_order=pp-dp-tp", "tensor_parallel=4"};
  CU_ASSERT_EQUAL_FATAL(sim(gpt_job(json2, sizeof json2, dgx), mixed, 2, 1, &jf, &of), 0);
  CU_ASSERT_PTR_NULL(of.run->fold);
  ts_outcome_free(&of);
  ts_job_free(jf);
  /* The symmetric star folds. */
  CU_ASSERT_EQUAL_FATAL(sim(json, NULL, 0, 1, &jf, &of), 0);
  CU_ASSERT_PTR_NOT_NULL(of.run->fold);
  ts_outcome_free(&of);
  ts_job_free(jf);
  unlink(plat);
}

/* Folding runs rings only: a job that asks for trees, or whose groups the
** auto rule would run hierarchically, is simulated exact (it deadlocked
** folded before), and auto's small all-reduces stay rings when folded. */
static void test_collectives_not_folded(void) {
  char cwd[512], plat[700], json[1400];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  snprintf(plat, sizeof plat, "%s/platforms/dgx-a100-4node.xml", cwd);
  gpt_job(json, sizeof json, plat);
  const char *hier[] = {"tensor_parallel=1", "data_parallel=8", "stages=1", "nvlink_domain_size=4"};
  const char *tree[] = {"collective_algorithm=tree"};
  const char *ring[] = {"tensor_parallel=1", "data_parallel=8", "stages=1", "nvlink_domain_size=4",
                        "collective_algorithm=ring"};
  struct {
    const char *const *sets;
    int n;
    bool folds;
  } c[] = {{hier, 4, false}, {tree, 1, false}, {ring, 5, true}};
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    ts_job_t *jf, *je;
    ts_outcome_t of, oe;
    CU_ASSERT_EQUAL_FATAL(sim(json, c[i].sets, c[i].n, 1, &jf, &of), 0);
    CU_ASSERT_EQUAL_FATAL(sim(json, c[i].sets, c[i].n, -1, &je, &oe), 0);
    CU_ASSERT_EQUAL(of.run->fold != NULL, c[i].folds);
    if (!c[i].folds) CU_ASSERT_EQUAL(of.metrics->iteration_time_s, oe.metrics->iteration_time_s);
    CU_ASSERT_DOUBLE_EQUAL(of.metrics->iteration_time_s, oe.metrics->iteration_time_s,
                           0.01 * oe.metrics->iteration_time_s);
    ts_outcome_free(&of);
    ts_outcome_free(&oe);
    ts_job_free(jf);
    ts_job_free(je);
  }
}

TS_TESTS{
    TS_TEST(test_classes),
    TS_TEST(test_fast_matches_exact),
    TS_TEST(test_asymmetric_not_folded),
    TS_TEST(test_collectives_not_folded),
};
TS_TEST_MAIN("symmetry folding")
