/*
** test_tp_nd.c: tensor parallelism beyond 1D (src/job/job_tp.c,
** src/cost/ts_tp.c, src/runtime/rt_tp.c, README "Tensor parallelism").
**
** What it checks, for tensor_parallel_mode "2d" (Optimus, Xu et al. 2021):
**   - ts_cost_tp2d_layer_bytes equals the SUMMA count of Optimus written
**     out by hand for a GPT layer (f = 4 h, no GQA): 3 (q - 1) / q^2 x
**     (7 b s h + 12 h^2) x e bytes per device per layer, forward and
**     backward; 0 at q = 1;
**   - on SimGrid (a star platform), for q in {2, 4}, every device sends
**     exactly that per layer per micro-batch (its tp_bytes and the bytes of
**     its TP collective events), 24 q broadcast chains per layer per
**     micro-batch, each of q members, every step to a device of its own
**     grid row or column (rank = i q + j in the TP group);
**   - the cost table's shares: FLOPs, parameters, weights, gradients,
**     optimizer states, activations and pipeline messages all / q^2 of
**     t = 1's (Optimus: everything 1 / q^2 per device);
**   - bad input (a t that is not a square, q not dividing the micro-batch,
**     sequence parallelism with 2d, the modes not yet modelled) is one
**     EX_DATAERR line naming the field.
*/
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

/* s = 128, h = 256, a = 8, f = 4 h, 4 layers over 2 stages, 2 micro-batches. */
#define S 128.0
#define H 256.0
#define E 2.0

static const char *job_json(int t, const char *mode, int mbs, const char *plat, char *buf,
                            size_t n) {
  snprintf(buf, n,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, "
           "\"vocab\": 1024, \"flash_attention\": false, \"dropout\": true}, \"platform\": \"%s\", "
           "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, "
           "\"micro_batch_size\": %d, \"tensor_parallel\": %d, \"tensor_parallel_mode\": \"%s\", "
           "\"optimizer\": \"adam\"}",
           plat, mbs, t, mode);
  return buf;
}

/* Optimus's per-layer count for this model at micro-batch b. */
static double optimus_bytes(int q, double b) {
  return 3.0 * (q - 1) / (q * q) * (7 * b * S * H + 12 * H * H) * E;
}

static void test_closed_form(void) {
  char json[1024];
  ts_job_t *job = th_load_job(job_json(4, "2d", 2, "ideal", json, sizeof json));
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL(job->tensor_parallel_grid, 2);
  CU_ASSERT_EQUAL(ts_cost_tp2d_layer_bytes(&job->model, 128, 2, 2, 1), 0);
  for (int q = 2; q <= 8; q *= 2)
    TS_ASSERT_REL(ts_cost_tp2d_layer_bytes(&job->model, 128, 2, 2, q), optimus_bytes(q, 2), 1e-15);
  /* q = 2, b = 2: 3/4 x (7 x 2 x 128 x 256 + 12 x 256^2) x 2. */
  TS_ASSERT_REL(ts_cost_tp2d_layer_bytes(&job->model, 128, 2, 2, 2), 1867776.0, 1e-15);
  ts_job_free(job);
}

static void check_run(int q) {
  int t = q * q;
  const char *plat = th_star_platform(2 * t, 50e9, 1e-6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(plat);
  char json[1024];
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(job_json(t, "2d", q, plat, json, sizeof json), NULL, 0, &job, &o, &err);
  unlink(plat);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(o.run->n_devices, 2 * t);
  /* 2 layers per device, 2 micro-batches. */
  double want = 2 * 2 * optimus_bytes(q, q);
  for (int d = 0; d < o.run->n_devices; d++) {
    ts_group_t g = ts_plan_group(o.plan, TS_GROUP_TP, d);
    CU_ASSERT_EQUAL_FATAL(g.n, t);
    int i = g.rank / q, j = g.rank % q, n = 0;
    double bytes = 0;
    for (int k = 0; k < o.run->n_events; k++) {
      const ts_event_t *e = &o.run->events[k];
      if (e->device != d) continue;
      if (e->kind == TS_SEND_COLL) {
        int r = -1;
        for (int x = 0; x < t; x++)
          if (g.dev[x] == e->peer) r = x;
        CU_ASSERT(r >= 0 && r != g.rank && (r / q == i || r % q == j));
      }
      if (e->kind != TS_COLLECTIVE) continue;
      CU_ASSERT_EQUAL(TS_EV_COLL_OP(e->coll), TS_COLL_BROADCAST);
      CU_ASSERT_EQUAL(TS_EV_COLL_PURPOSE(e->coll), TS_CP_TP);
      bytes += e->bytes;
      n++;
    }
    CU_ASSERT_EQUAL(n, 2 * 2 * 24 * q);
    TS_ASSERT_REL(bytes, want, 1e-12);
    TS_ASSERT_REL(o.metrics->dev[d].tp_bytes, want, 1e-12);
    CU_ASSERT(o.metrics->dev[d].tp_comm_s > 0);
  }
  printf("\n    q=%d: %.6g B TP per device, iteration %.6g s", q, o.metrics->dev[0].tp_bytes,
         o.metrics->iteration_time_s);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_run_q2(void) { check_run(2); }
static void test_run_q4(void) { check_run(4); }

/* Every share / q^2 of t = 1's (activations: the whole layer's / t). */
static void test_memory_shares(void) {
  char json[1024];
  ts_err_t err = {0};
  for (int q = 2; q <= 4; q *= 2) {
    int t = q * q;
    ts_job_t *j1 = th_load_job(job_json(1, "1d", q, "ideal", json, sizeof json));
    ts_job_t *jt = th_load_job(job_json(t, "2d", q, "ideal", json, sizeof json));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(jt);
    ts_cost_t *c1 = NULL, *ct = NULL;
    CU_ASSERT_EQUAL_FATAL(ts_cost_build(j1, 2, &c1, &err), 0);
    CU_ASSERT_EQUAL_FATAL(ts_cost_build(jt, 2, &ct, &err), 0);
    double b = q, sbh = S * b * H;
    double la = ts_cost_layer_activation_bytes(&j1->model, 128, q, 2);
    TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(&jt->model, 128, q, 2, t, true,
                                                    TS_RECOMPUTE_NONE),
                  la / t, 1e-14);
    for (int p = 0; p < 2; p++) {
      const ts_part_cost_t *a = &c1->part[p], *x = &ct->part[p];
      for (int k = 0; k < TS_COMPUTE_KINDS; k++) TS_ASSERT_REL(x->flops[k], a->flops[k] / t, 1e-14);
      TS_ASSERT_REL(x->params, a->params / t, 1e-14);
      TS_ASSERT_REL(x->weights_bytes, a->weights_bytes / t, 1e-14);
      TS_ASSERT_REL(x->gradients_bytes, a->gradients_bytes / t, 1e-14);
      TS_ASSERT_REL(x->optimizer_bytes, a->optimizer_bytes / t, 1e-14);
      CU_ASSERT(x->optimizer_bytes > 0);
      TS_ASSERT_REL(x->msg_bytes, sbh * E / t, 1e-15);
      double keep = p == 0 ? 8 * S * b + sbh / t : 2 * sbh * E / t + 4 * S * b * 1024 / t;
      TS_ASSERT_REL(x->act_bytes, 2 * la / t + keep, 1e-14);
    }
    ts_cost_free(c1);
    ts_cost_free(ct);
    ts_job_free(j1);
    ts_job_free(jt);
  }
}

static void test_bad_inputs(void) {
  static const struct {
    int t, mbs;
    const char *mode, *set, *msg;
  } cases[] = {
      {8, 2, "2d", NULL, ".json: tensor_parallel: 8 is not a square"},
      {4, 1, "2d", NULL, ".json: tensor_parallel: 4 (a 2 x 2 grid in 2d) needs 2 to divide "
                         "micro_batch_size (1)"},
      {4, 2, "2d", "sequence_parallel=true", ".json: sequence_parallel: only with"},
      {4, 2, "2.5d", NULL, ".json: tensor_parallel_mode: \"2.5d\" is not yet modelled"},
      {8, 2, "3d", NULL, ".json: tensor_parallel_mode: \"3d\" is not yet modelled"},
  };
  char json[1024];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *sets[1] = {cases[i].set};
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL(th_job_from_json(job_json(cases[i].t, cases[i].mode, cases[i].mbs, "ideal",
                                              json, sizeof json),
                                     sets, cases[i].set ? 1 : 0, &job, &err),
                    EX_DATAERR);
    if (!strstr(err.msg, cases[i].msg)) fprintf(stderr, "\n  got: %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].msg));
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    ts_job_free(job);
  }
}

TS_TESTS{
    TS_TEST(test_closed_form),  TS_TEST(test_run_q2),    TS_TEST(test_run_q4),
    TS_TEST(test_memory_shares), TS_TEST(test_bad_inputs),
};
TS_TEST_MAIN("tensor parallelism beyond 1D")
