/*
** test_ref_tp.c: Megatron 1D tensor parallelism on the reference executor
** (src/ref/ref_tp.c, the TS_BUF_TP all-reduces of src/runtime/rt_tp.c)
** against the one-device oracle.
**
** - Runs: t in {2, 4}, schedules 1f1b and gpipe, stages 1 and 2 (a tiny
**   transformer of 4 layers, hidden 16, heads 4, ffn 32, seq 8, 2 samples
**   per micro-batch, m = 4): the gradients the TP ranks' shards assemble
**   to equal ts_ref_oracle's within 1e-10, and the weights after the
**   optimizer step equal ts_ref_oracle_sgd's within 1e-10 of the change;
**   also 1f1b with data_parallel 2 (the DP all-reduce of each TP rank's
**   shard) and zb-h1 (a split backward) on 2 stages.
** - The ranks own shards: on every device the gradient of a sharded tensor
**   (W_qkv, b_qkv, W_o, W_1, b_1, W_2) is zero outside the rank's shard and
**   nonzero inside it, and one device's gradients alone (no assembly) are
**   far from the oracle's (error above 0.1), so the check can fail.
** - Sequence parallelism (ref_tp_sp.c) on the same runs, t in {2, 4}: each
**   rank computes its tokens' share of the gradients of the LayerNorms and
**   of b_o, b_2, and the runtime's sync all-reduce over the TP group
**   (rt_tp.c ts__rt_tp_sync, before the optimizer) sums them: on every
**   device those six arrays equal the oracle's within 1e-10 (without the
**   all-reduce they are off by the other ranks' shares), and the gradients
**   and the weights after the step equal the oracle's as without SP.
** - Selective recompute, with and without SP: equal gradients and
**   weights, every backward recomputed every block's core
**   (layers held x m per device) and the recomputed attention output is
**   bitwise the kept one.
** - Activation bytes: on every device of the GPipe and 1F1B runs the
**   measured peak equals exactly k stashes of ts_ref_tp_stash_bytes (k = m
**   for GPipe, min(p - s, m) for 1F1B stage s), the formula that splits the
**   reference tensors as the cost model's ts_cost_tp_layer_activation_bytes
**   (Korthikanti Table 2) does: LayerNorm tensors replicated without SP and
**   / t with it, the rest / t, probs dropped under selective recompute; on
**   every run (zb-h1 and data_parallel 2 too) it equals the simulator's
**   prediction for the TP-aware synthetic twin (ts_ref_sim_job, its t x d
**   ranks and replicas as t x d replicas).
** - The cost model's Table 2 on the reference model's shape (e = 8, no
**   dropout, no flash attention) and ts_ref_tp_stash_bytes agree exactly
**   on the split tensors (Q, K, V, the attention output, the MLP's two, the
**   probabilities) and on every split (SP or not, selective, the 2d
**   blocks), and differ by exactly the LayerNorm term: per LayerNorm the
**   reference keeps xhat and rstd, n (d + 1) doubles, where Table 2 counts
**   its input and the next GEMM's input, 2 n d.
** - What is not run is refused with the field's name: full recompute, ZeRO,
**   SP with b s not a multiple of t, the grid modes.
*/
#include <math.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"
#include "tshelp.h"
#include "tsunit.h"

#define TOL 1e-10

static ts_job_t *tp_job(const char *sched, int stages, int t, const char *extra) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 4,"
           " \"ffn_hidden\": 32, \"vocab\": 50}, \"seq_len\": 8, \"micro_batch_size\": 2,"
           " \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": 4,"
           " \"tensor_parallel\": %d%s}",
           sched, stages, t, extra ? extra : "");
  return th_load_job(json);
}

/* 1 when element i of a block vector lies in a sharded tensor, with *rank
** the TP rank (of t) whose shard holds it. */
static int shard_of(const ts_ref_config_t *c, int t, size_t i, int *rank) {
  size_t d = (size_t)c->hidden, f = (size_t)c->ffn, dl = d / t, fl = f / t, len;
  size_t o = ts_ref_block_param_offset(c, TS_REF_QKV_WEIGHT, &len);
  if (i >= o && i < o + len) return *rank = (int)(((i - o) % (3 * d)) % d / dl), 1;
  o = ts_ref_block_param_offset(c, TS_REF_QKV_BIAS, &len);
  if (i >= o && i < o + len) return *rank = (int)((i - o) % d / dl), 1;
  o = ts_ref_block_param_offset(c, TS_REF_PROJ_WEIGHT, &len);
  if (i >= o && i < o + len) return *rank = (int)((i - o) / d / dl), 1;
  o = ts_ref_block_param_offset(c, TS_REF_FC1_WEIGHT, &len);
  if (i >= o && i < o + len) return *rank = (int)((i - o) % f / fl), 1;
  o = ts_ref_block_param_offset(c, TS_REF_FC1_BIAS, &len);
  if (i >= o && i < o + len) return *rank = (int)((i - o) / fl), 1;
  o = ts_ref_block_param_offset(c, TS_REF_FC2_WEIGHT, &len);
  if (i >= o && i < o + len) return *rank = (int)((i - o) / d / fl), 1;
  return 0;
}

/* Device k's measured activation peak against k stashes of the formula
** (file header); 1 when it matches (or the schedule has no closed form). */
static int bytes_match(const ts_job_t *job, const ts_outcome_t *o, const ts_run_t *run,
                       const ts_ref_config_t *cfg, int k) {
  bool gpipe = strcmp(job->schedule, "gpipe") == 0;
  if (!gpipe && strcmp(job->schedule, "1f1b")) return 1;
  const ts_layout_t *lay = o->plan->layout;
  int v = 0;
  while (v < lay->n_vstages && lay->dev[v] != k) v++;
  CU_ASSERT_FATAL(v < lay->n_vstages);
  int s = ts_plan_coord(o->plan, k, TS_DIM_PP), m = job->microbatches;
  int inflight = gpipe ? m : (job->stages - s < m ? job->stages - s : m);
  size_t one = ts_ref_tp_stash_bytes(cfg, o->cost->part[lay->part[v]].n_layers,
                                     job->micro_batch_size, job->tensor_parallel,
                                     job->sequence_parallel,
                                     job->recompute == TS_RECOMPUTE_SELECTIVE);
  double want = (double)inflight * (double)one, got = run->measured_peak_act_bytes[k];
  if (got != want || one == 0)
    fprintf(stderr, "\n%s device %d: measured %.17g, formula %.17g\n", job->schedule, k, got, want);
  return got == want && one > 0;
}

static double tp_case(const char *sched, int stages, int t, const char *extra, int dp) {
  ts_job_t *job = tp_job(sched, stages, t, extra);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  bool sp = job->sequence_parallel, sel = job->recompute == TS_RECOMPUTE_SELECTIVE;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &o, &err), 0);
  CU_ASSERT_EQUAL(o.plan->n_devices, stages * t * dp);
  ts_run_t *run = NULL;
  ts_ref_model_t *g = NULL;
  ts_ref_extra_t ex;
  int rc = ts_ref_run_ex(job, o.sched, o.plan, o.cost, &run, &g, &ex, &err);
  if (rc) fprintf(stderr, "\n%s stages %d t=%d: %s\n", sched, stages, t, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_ref_model_t *sgd = ts_ref_oracle_sgd(job, 0), *ora = ts_ref_oracle(job);
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  ts_ref_model_t *w0 = ts_ref_model_new(&cfg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sgd);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ora);
  double eg = th_grad_error(g, ora), ew = th_update_error(g, sgd, w0), lone = 0;
  /* Every device: zero outside its shard, nonzero inside, in the blocks it holds. */
  long outside = 0, inside_zero = 0, inside = 0, bytes_bad = 0, rec_bad = 0;
  double ln_lone = 0;
  static const ts_ref_param_t rep[] = {TS_REF_LN1_GAIN, TS_REF_LN1_BIAS, TS_REF_LN2_GAIN,
                                       TS_REF_LN2_BIAS, TS_REF_PROJ_BIAS, TS_REF_FC2_BIAS};
  for (int k = 0; k < ex.n_devices; k++) {
    int r = ts_plan_group(o.plan, TS_GROUP_TP, k).rank, held = 0;
    bytes_bad += !bytes_match(job, &o, run, &cfg, k);
    for (int l = 0; l < cfg.layers; l++) {
      if (!ex.holds[(size_t)k * cfg.layers + l]) continue;
      held++;
      size_t n;
      const double *gr = ts_ref_block_grad(ex.dev_models[k], l, &n);
      for (size_t i = 0; i < n; i++) {
        int owner;
        if (!shard_of(&cfg, t, i, &owner)) continue;
        if (owner != r) {
          outside += gr[i] != 0;
        } else {
          inside++;
          inside_zero += gr[i] == 0;
        }
      }
      lone = fmax(lone, th_rel_err(gr, ts_ref_block_grad(ora, l, &n), n));
      for (size_t j = 0; j < sizeof rep / sizeof *rep; j++) { /* whole on every rank */
        size_t len, o = ts_ref_block_param_offset(&cfg, rep[j], &len);
        ln_lone = fmax(ln_lone, th_rel_err(gr + o, ts_ref_block_grad(ora, l, &n) + o, len));
      }
    }
    long mism, recs = ts_ref_core_recomputes(ex.dev_models[k], &mism);
    rec_bad += recs != (sel ? (long)held * job->microbatches : 0) || mism != 0;
  }
  int twin_bad = th_twin_bytes_bad(job, o.cost, run);
  printf("\n    %-5s stages %d t=%d%s%s%s (%d devices): gradients %.3g, weights %.3g; one device "
         "alone %.3g (its LayerNorms, b_o, b_2 %.3g); %ld shard values, %ld zero, %ld nonzero outside the shard; "
         "%ld devices off the bytes formula, %d off the twin's, %ld off the recompute count",
         sched, stages, t, dp > 1 ? " d=2" : "", sp ? " sp" : "", sel ? " sel" : "",
         o.plan->n_devices, eg, ew, lone, ln_lone, inside, inside_zero, outside, bytes_bad, twin_bad,
         rec_bad);
  CU_ASSERT(eg <= TOL);
  CU_ASSERT(ew <= TOL);
  /* The replicated arrays whole on every rank (with SP: the sync all-reduce's). */
  CU_ASSERT(ln_lone <= TOL);
  CU_ASSERT_EQUAL(bytes_bad, 0);
  CU_ASSERT_EQUAL(twin_bad, 0);
  CU_ASSERT_EQUAL(rec_bad, 0);
  CU_ASSERT(lone > 0.1);
  CU_ASSERT_EQUAL(outside, 0);
  CU_ASSERT(inside > 0);
  CU_ASSERT(inside_zero <= inside / 100);
  CU_ASSERT(th_update_error(w0, sgd, w0) == 1);
  ts_ref_extra_free(&ex);
  ts_ref_model_free(g);
  ts_ref_model_free(sgd);
  ts_ref_model_free(ora);
  ts_ref_model_free(w0);
  ts_run_free(run);
  ts_outcome_free(&o);
  ts_job_free(job);
  return fmax(fmax(eg, ew), ln_lone);
}

static void test_tp_matches_oracle(void) {
  static const char *const S[] = {"1f1b", "gpipe"};
  double worst = 0;
  for (int s = 0; s < 2; s++)
    for (int stages = 1; stages <= 2; stages++)
      for (int t = 2; t <= 4; t *= 2) worst = fmax(worst, tp_case(S[s], stages, t, NULL, 1));
  /* With data parallelism around it, and with ZB-H1's split backward. */
  for (int t = 2; t <= 4; t *= 2) {
    worst = fmax(worst, tp_case("1f1b", 2, t, ", \"data_parallel\": 2", 2));
    worst = fmax(worst, tp_case("zb-h1", 2, t, NULL, 1));
  }
  printf("\n    worst %.3g (tolerance %g)", worst, TOL);
}

/* The same runs with sequence parallelism, selective recompute, and both. */
static void test_sp_selective_match_oracle(void) {
  static const char *const S[] = {"1f1b", "gpipe"};
  static const char *const E[] = {", \"sequence_parallel\": true", ", \"recompute\": \"selective\"",
                                  ", \"sequence_parallel\": true, \"recompute\": \"selective\""};
  double worst = 0;
  for (int e = 0; e < 3; e++) {
    for (int s = 0; s < 2; s++)
      for (int stages = 1; stages <= 2; stages++)
        for (int t = 2; t <= 4; t *= 2) worst = fmax(worst, tp_case(S[s], stages, t, E[e], 1));
    char dp[256];
    snprintf(dp, sizeof dp, "%s, \"data_parallel\": 2", E[e]);
    for (int t = 2; t <= 4; t *= 2) {
      worst = fmax(worst, tp_case("1f1b", 2, t, dp, 2));
      if (e == 0) worst = fmax(worst, tp_case("zb-h1", 2, t, E[e], 1)); /* keeps all */
    }
  }
  printf("\n    worst %.3g (tolerance %g)", worst, TOL);
}

/* The formula itself: t = 1 is the unsplit stash, and the splits are the
** file header's. */
static void test_stash_formula(void) {
  ts_ref_config_t c = {.layers = 4, .hidden = 16, .heads = 4, .ffn = 32, .seq = 8, .seed = 1};
  size_t n = 2 * 8, R = n * (2 * 16 + 2), X = n * (4 * 16 + 2 * 32), S = 2 * 4 * 8 * 8;
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 3, 2, 1, 0, 0), ts_ref_stash_bytes(&c, 3, 2));
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 1, 2, 4, 0, 0), 8 * (R + (X + S) / 4));
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 1, 2, 4, 1, 0), 8 * (R + X + S) / 4);
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 1, 2, 4, 0, 1), 8 * (R + X / 4));
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 1, 2, 4, 1, 1), 8 * (R + X) / 4);
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 1, 2, 3, 0, 0), 0); /* 3 divides no width */
  CU_ASSERT_EQUAL(ts_ref_tp_stash_bytes(&c, 1, 1, 4, 1, 0) * 2, ts_ref_tp_stash_bytes(&c, 1, 2, 4, 1, 0));
}

/* The cost model's Table 2 (ts_cost_tp_layer_activation_bytes) on the
** reference model's shape against ts_ref_tp_stash_bytes (file header):
** equal but for the LayerNorm term, for every split. */
static void test_table2_on_reference(void) {
  ts_job_t *job = tp_job("1f1b", 2, 4, ", \"bytes_per_element\": 8");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  job->model.dropout = false, job->model.flash_attention = false; /* the reference has neither */
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_ref_config_for_job(job, &cfg, &err), 0);
  double n = 2.0 * 8, d = 16, e = 8;
  for (int t = 2; t <= 4; t++)
    for (int sp = 0; sp <= 2; sp++)
      for (int sel = 0; sel <= 1; sel++) {
        int q = sp == 2 ? 2 : 0;
        if ((sp == 2 && t != 4) || (sp < 2 && t == 3)) continue;
        double cost = ts_cost_tp_layer_activation_bytes(&job->model, 8, 2, 8, t, sp > 0,
                                                        sel ? TS_RECOMPUTE_SELECTIVE : TS_RECOMPUTE_NONE);
        double ref = (double)ts_ref_tp_stash_bytes(&cfg, 1, 2, t, sp, sel);
        /* Per LayerNorm: Table 2 its input and its output, 2 n d e; the
        ** reference xhat, n d e, and rstd, n e (its rows: / t with SP, the
        ** n / q rows of its row block in 2d). */
        double split = sp ? t : 1, rows = sp == 1 ? t : sp == 2 ? q : 1;
        double ln = 2 * (2 * n * d * e / split - (n * d * e / split + n * e / rows));
        if (fabs(cost - ref - ln) > 1e-9 * cost)
          fprintf(stderr, "\nt=%d sp=%d sel=%d: Table 2 %.17g, reference %.17g, LayerNorm term %.17g\n",
                  t, sp, sel, cost, ref, ln);
        TS_ASSERT_REL(cost - ref, ln, 1e-12);
        CU_ASSERT(ln > 0); /* a real difference: Table 2 counts more */
      }
  ts_job_free(job);
}

static void test_tp_refusals(void) {
  static const char *const X[][2] = {
      {", \"recompute\": \"full\"", "recompute"},
      {", \"data_parallel\": 2, \"zero\": 1", "zero"},

  };
  for (size_t k = 0; k < sizeof X / sizeof *X; k++) {
    ts_job_t *job = tp_job("1f1b", 2, 2, X[k][0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    ts_ref_config_t cfg;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL(ts_ref_config_for_job(job, &cfg, &err), EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, X[k][1]));
    ts_job_free(job);
  }
  /* SP over b s = 3 tokens and t = 2; the 2.5d and 3d grids. */
  static const char *const J[][2] = {
      {"\"tensor_parallel\": 2, \"sequence_parallel\": true, \"seq_len\": 3, "
       "\"micro_batch_size\": 1", "sequence_parallel"},
      {"\"tensor_parallel\": 8, \"tensor_parallel_mode\": \"2.5d\", \"tensor_parallel_depth\": 2, "
       "\"seq_len\": 8, \"micro_batch_size\": 4", "tensor_parallel_mode"},
      {"\"tensor_parallel\": 8, \"tensor_parallel_mode\": \"3d\", \"seq_len\": 8, "
       "\"micro_batch_size\": 4", "tensor_parallel_mode"},
  };
  for (size_t k = 0; k < sizeof J / sizeof *J; k++) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 32, \"heads\": 8,"
             " \"ffn_hidden\": 64, \"vocab\": 64}, \"platform\": \"ideal\", \"schedule\": \"1f1b\","
             " \"stages\": 2, \"microbatches\": 4, %s}", J[k][0]);
    ts_job_t *job = th_load_job(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    ts_ref_config_t cfg;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL(ts_ref_config_for_job(job, &cfg, &err), EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, J[k][1]));
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    ts_job_free(job);
  }
}

TS_TESTS{TS_TEST(test_tp_matches_oracle), TS_TEST(test_sp_selective_match_oracle),
         TS_TEST(test_stash_formula), TS_TEST(test_table2_on_reference), TS_TEST(test_tp_refusals)};
TS_TEST_MAIN("reference tensor parallelism")
