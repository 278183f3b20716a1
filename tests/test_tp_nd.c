/*
** test_tp_nd.c: tensor parallelism beyond 1D (src/job/job_tp.c,
** src/cost/ts_tp.c, src/runtime/rt_tp.c, README "Tensor parallelism").
**
** What it checks, for tensor_parallel_mode "2d" (Optimus, Xu et al. 2021),
** "2.5d" (Tesseract, Wang et al. 2021) and "3d" (Bian et al. 2021):
**   - the per-layer counts written out by hand for a GPT layer (f = 4 h,
**     no GQA), forward and backward, per device: Optimus's SUMMA 3 (q - 1)
**     / q^2 x (7 b s h + 12 h^2) x e (ts_cost_tp2d_layer_bytes),
**     Tesseract's 3 (q - 1) / q^2 x (7 b s h / d + 12 h^2) x e
**     (ts_cost_tp25d_layer_bytes; the Optimus count at d = 1) and the 3D
**     cube's 2 (q - 1) / q^3 x (16 b s h + 12 h^2) x e
**     (ts_cost_tp3d_layer_bytes); 0 at q = 1;
**   - on SimGrid (a star platform): 2d q in {2, 4}, 2.5d (q, d) in {(2,
**     2), (2, 1)}, 3d q = 2: every device sends exactly that per layer per
**     micro-batch (its tp_bytes and the bytes of its TP collective
**     events), the expected number of TP collectives (24 q broadcast chains
**     per layer per micro-batch on a grid, 24 rings on the cube), every
**     step to a device of its own grid row or column (rank k q^2 + i q +
**     j) or cube line (rank l q^2 + i q + j); on the 2d grids (and 2.5d
**     at d = 1) one more, the sync all-reduce of the replicated gradients
**     over the device's grid column, 2 (q - 1) / q x (4 h + 9 h / q) x e
**     per layer (the LayerNorms, the column's bias blocks), in 2.5d (d = 2)
**     too, with also Tesseract's depth all-reduce over the d devices of the
**     grid position, 2 (d - 1) / d of the device's gradients (its grid
**     block of the layers, embedding or LM head, by hand);
**   - the cost table's shares: FLOPs, activations and pipeline messages /
**     t; parameters, weights, gradients and optimizer states / q^2 (2d,
**     2.5d) or / q^3 (3d);
**   - bad input (a t that is not a square / cube, bad depths, q or d q not
**     dividing the micro-batch, sequence parallelism with a grid, a depth
**     with another mode) is one EX_DATAERR line naming the field.
*/
#include <math.h>
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

/* Tesseract's (depth d: A's blocks / d) and the 3D cube's. */
static double tesseract_bytes(int q, int d, double b) {
  return 3.0 * (q - 1) / (q * q) * (7 * b * S * H / d + 12 * H * H) * E;
}
static double cube_bytes(int q, double b) {
  return 2.0 * (q - 1) / (q * q * q) * (16 * b * S * H + 12 * H * H) * E;
}

/* The mode's job at q (and depth d for 2.5d), t and micro-batch q d. */
static const char *mode_json(const char *mode, int q, int d, const char *plat, char *buf,
                             size_t n) {
  bool cube = strcmp(mode, "3d") == 0;
  int t = cube ? q * q * q : q * q * d;
  job_json(t, mode, q * d, plat, buf, n);
  char *end = strrchr(buf, '}');
  snprintf(end, n - (size_t)(end - buf), ", \"tensor_parallel_depth\": %d}", d);
  return buf;
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
  job = th_load_job(mode_json("2.5d", 2, 2, "ideal", json, sizeof json));
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL(job->tensor_parallel, 8);
  CU_ASSERT_EQUAL(job->tensor_parallel_grid, 2);
  CU_ASSERT_EQUAL(job->tensor_parallel_depth, 2);
  /* d = 1 is 2d; q = 2, d = 2, b = 4: 3/4 x (7 x 4 x 128 x 256 / 2 + 12 x 256^2) x 2. */
  TS_ASSERT_REL(ts_cost_tp25d_layer_bytes(&job->model, 128, 2, 2, 4, 1),
                ts_cost_tp2d_layer_bytes(&job->model, 128, 2, 2, 4), 1e-15);
  TS_ASSERT_REL(ts_cost_tp25d_layer_bytes(&job->model, 128, 4, 2, 2, 2), 1867776.0, 1e-15);
  for (int d = 1; d <= 4; d *= 2)
    TS_ASSERT_REL(ts_cost_tp25d_layer_bytes(&job->model, 128, 4, 2, 2, d),
                  tesseract_bytes(2, d, 4), 1e-15);
  ts_job_free(job);
  job = th_load_job(mode_json("3d", 2, 1, "ideal", json, sizeof json));
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL(job->tensor_parallel_grid, 2);
  CU_ASSERT_TRUE(job->tensor_parallel_cube);
  CU_ASSERT_EQUAL(ts_cost_tp3d_layer_bytes(&job->model, 128, 2, 2, 1), 0);
  /* q = 2, b = 2: 2 x 1/8 x (16 x 2 x 128 x 256 + 12 x 256^2) x 2. */
  TS_ASSERT_REL(ts_cost_tp3d_layer_bytes(&job->model, 128, 2, 2, 2), 917504.0, 1e-15);
  for (int q = 2; q <= 4; q++)
    TS_ASSERT_REL(ts_cost_tp3d_layer_bytes(&job->model, 128, 2, 2, q), cube_bytes(q, 2), 1e-15);
  ts_job_free(job);
}

/* 2.5d's depth all-reduce over the d devices of a grid position, per
** device of stage 0 or 1: 2 (d - 1) / d of all its gradients, the q x q
** grid's block (/ q^2) of its 2 layers (12 h^2 + 13 h parameters each)
** and of the embedding ((V + s) h, stage 0) or the LM head (V h, stage 1),
** e bytes each. */
static double depth_bytes(int q, int d, int stage) {
  double V = 1024, layers = 2 * (12 * H * H + 13 * H), extra = stage ? V * H : (V + S) * H;
  return 2.0 * (d - 1) / d * (layers + extra) / (q * q) * E;
}

/* Runs the mode on a star platform of 2 t devices; every device's TP
** bytes against want per layer per micro-batch plus sync (the bytes it
** sends in the replicated gradients' all-reduce, 0: none), its TP
** collectives n per layer per micro-batch of operation op (or any when op
** < 0) and the one sync all-reduce, every step to a TP peer that
** same(g.rank, peer rank) accepts. */
static void check_mode(const char *mode, int q, int d, double want_layer, int n_layer,
                       int op, bool (*same)(int, int, int), double sync) {
  bool cube = strcmp(mode, "3d") == 0;
  int t = cube ? q * q * q : q * q * d;
  const char *plat = th_star_platform(2 * t, 50e9, 1e-6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(plat);
  char json[1024];
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(mode_json(mode, q, d, plat, json, sizeof json), NULL, 0, &job, &o, &err);
  unlink(plat);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(o.run->n_devices, 2 * t);
  /* 2 layers per device, 2 micro-batches. */
  int depth = cube ? 1 : d;
  for (int d = 0; d < o.run->n_devices; d++) {
    ts_group_t g = ts_plan_group(o.plan, TS_GROUP_TP, d);
    CU_ASSERT_EQUAL_FATAL(g.n, t);
    /* 2.5d: the depth all-reduce of every gradient. */
    double dep = depth > 1 ? depth_bytes(q, depth, ts_plan_coord(o.plan, d, TS_DIM_PP)) : 0;
    double want = 2 * 2 * want_layer + sync + dep;
    int n = 0, syncs = 0, deps = 0;
    double bytes = 0;
    for (int k = 0; k < o.run->n_events; k++) {
      const ts_event_t *e = &o.run->events[k];
      if (e->device != d) continue;
      if (e->kind == TS_SEND_COLL) {
        int r = -1;
        for (int x = 0; x < t; x++)
          if (g.dev[x] == e->peer) r = x;
        CU_ASSERT(r >= 0 && r != g.rank && same(q, g.rank, r));
      }
      if (e->kind != TS_COLLECTIVE) continue;
      bool ar = op >= 0 && op != TS_COLL_ALLREDUCE && TS_EV_COLL_OP(e->coll) == TS_COLL_ALLREDUCE;
      if (ar && fabs(e->bytes - dep) <= 1e-9 * dep) { /* over the depth line */
        deps++;
        CU_ASSERT_EQUAL(e->peer, depth);
      } else if (ar) { /* the sync: 2 (n - 1) / n of its message over the grid column */
        syncs++;
        TS_ASSERT_REL(e->bytes, sync, 1e-12);
        CU_ASSERT_EQUAL(e->peer, q);
      } else if (op >= 0) {
        CU_ASSERT_EQUAL(TS_EV_COLL_OP(e->coll), op);
      }
      CU_ASSERT_EQUAL(TS_EV_COLL_PURPOSE(e->coll), TS_CP_TP);
      bytes += e->bytes;
      n++;
    }
    CU_ASSERT_EQUAL(n, 2 * 2 * n_layer + (sync > 0) + (dep > 0));
    CU_ASSERT_EQUAL(syncs, sync > 0);
    CU_ASSERT_EQUAL(deps, dep > 0);
    TS_ASSERT_REL(bytes, want, 1e-12);
    TS_ASSERT_REL(o.metrics->dev[d].tp_bytes, want, 1e-12);
    CU_ASSERT(o.metrics->dev[d].tp_comm_s > 0);
  }
  printf("\n    %s q=%d d=%d: %.6g B TP per device, iteration %.6g s", mode, q, d,
         o.metrics->dev[0].tp_bytes, o.metrics->iteration_time_s);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* The same grid row or column of the same depth layer (rank k q^2 + i q +
** j), or the same grid position of another depth layer (2.5d's depth
** all-reduce). */
static bool same_grid(int q, int a, int b) {
  int q2 = q * q;
  return (a / q2 == b / q2 && (a % q2 / q == b % q2 / q || a % q == b % q)) || a % q2 == b % q2;
}
/* One line of the cube (rank l q^2 + i q + j): two of (i, j, l) equal. */
static bool same_line(int q, int a, int b) {
  int q2 = q * q, eq = (a % q == b % q) + (a % q2 / q == b % q2 / q) + (a / q2 == b / q2);
  return eq == 2;
}

/* The 2d sync all-reduce over a grid column of q, per device (2 layers):
** the two LayerNorms' gains and biases (4 h) and the column's blocks of
** the biases of QKV (3 h), W_o (h), W_1 (f = 4 h) and W_2 (h). */
static double grid_sync_bytes(int q) {
  return 2.0 * (q - 1) / q * 2 * (4 * H + 9 * H / q) * E;
}

static void test_run_2d(void) {
  for (int q = 2; q <= 4; q *= 2)
    check_mode("2d", q, 1, optimus_bytes(q, q), 24 * q, TS_COLL_BROADCAST, same_grid,
               grid_sync_bytes(q));
}
static void test_run_25d(void) {
  check_mode("2.5d", 2, 2, tesseract_bytes(2, 2, 4), 48, TS_COLL_BROADCAST, same_grid,
             grid_sync_bytes(2));
  check_mode("2.5d", 2, 1, optimus_bytes(2, 2), 48, TS_COLL_BROADCAST, same_grid,
             grid_sync_bytes(2));
}
/* 4 GEMMs x 3 collectives, forward and backward. */
static void test_run_3d(void) { check_mode("3d", 2, 1, cube_bytes(2, 2), 24, -1, same_line, 0); }

/* Every share of t = 1's: model states / q^2 in 2d and 2.5d, / q^3 in
** 3d; activations and messages / t (2.5d: / (d q^2)). */
static void check_shares(const char *mode, int q, int d) {
  char json[1024];
  ts_err_t err = {0};
  bool cube = strcmp(mode, "3d") == 0;
  int t = cube ? q * q * q : q * q * d, b = q * d;
  double states = cube ? t : q * q;
  ts_job_t *j1 = th_load_job(job_json(1, "1d", b, "ideal", json, sizeof json));
  ts_job_t *jt = th_load_job(mode_json(mode, q, d, "ideal", json, sizeof json));
  CU_ASSERT_PTR_NOT_NULL_FATAL(j1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(jt);
  ts_cost_t *c1 = NULL, *ct = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(j1, 2, &c1, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(jt, 2, &ct, &err), 0);
  double sbh = S * b * H;
  double la = ts_cost_layer_activation_bytes(&j1->model, 128, b, 2);
  TS_ASSERT_REL(
      ts_cost_tp_layer_activation_bytes(&jt->model, 128, b, 2, t, true, TS_RECOMPUTE_NONE),
      la / t, 1e-14);
  for (int p = 0; p < 2; p++) {
    const ts_part_cost_t *a = &c1->part[p], *x = &ct->part[p];
    for (int k = 0; k < TS_COMPUTE_KINDS; k++) TS_ASSERT_REL(x->flops[k], a->flops[k] / t, 1e-14);
    TS_ASSERT_REL(x->params, a->params / states, 1e-14);
    TS_ASSERT_REL(x->weights_bytes, a->weights_bytes / states, 1e-14);
    TS_ASSERT_REL(x->gradients_bytes, a->gradients_bytes / states, 1e-14);
    TS_ASSERT_REL(x->optimizer_bytes, a->optimizer_bytes / states, 1e-14);
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

static void test_memory_shares(void) {
  check_shares("2d", 2, 1);
  check_shares("2d", 4, 1);
  check_shares("2.5d", 2, 2);
  check_shares("2.5d", 2, 4);
  check_shares("3d", 2, 1);
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
      {4, 2, "3d", NULL, ".json: tensor_parallel: 4 is not a cube"},
      {8, 8, "2.5d", "tensor_parallel_depth=8",
       ".json: tensor_parallel_depth: 8 leaves a 1 x 1 grid"},
      {8, 2, "2.5d", "tensor_parallel_depth=3",
       ".json: tensor_parallel: 8 is not a multiple of tensor_parallel_depth (3)"},
      {12, 2, "2.5d", "tensor_parallel_depth=2",
       ".json: tensor_parallel: 12 / tensor_parallel_depth (2) is not a square"},
      {8, 2, "2.5d", "tensor_parallel_depth=2",
       ".json: tensor_parallel: 8 (2 layers of a 2 x 2 grid in 2.5d) needs 4 to divide "
       "micro_batch_size (2)"},
      {8, 1, "3d", NULL, ".json: tensor_parallel: 8 (a 2 x 2 x 2 cube in 3d) needs 2 to divide "
                         "micro_batch_size (1)"},
      {4, 2, "2d", "tensor_parallel_depth=2", ".json: tensor_parallel_depth: 2 needs "
                                              "tensor_parallel_mode \"2.5d\""},
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
    TS_TEST(test_closed_form),   TS_TEST(test_run_2d),     TS_TEST(test_run_25d),
    TS_TEST(test_run_3d),        TS_TEST(test_memory_shares), TS_TEST(test_bad_inputs),
};
TS_TEST_MAIN("tensor parallelism beyond 1D")
