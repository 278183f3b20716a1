/*
** test_tp.c: Megatron 1D tensor parallelism (src/job/job_tp.c,
** src/cost/ts_tp.c, src/runtime/rt_tp.c, README "Tensor parallelism")
** against closed forms:
**   - volume: each device sends 8 b s h (t - 1) / t elements per layer per
**     micro-batch (2 all-reduces of b s h in forward, 2 in backward; ring
**     all-reduce 2 (t - 1) / t of the message) for t in {2, 4, 8}, plus
**     the vocabulary-parallel collectives of the embedding and the LM head
**     (their closed form in tests/test_tp_time.c), plus
**     (t - 1) / t x b s h for each pipeline message received as b s h / t
**     and all-gathered (scatter / gather), each collective taking its ring
**     time on a star of full-duplex links, with
**     sequence parallelism the same volume as reduce-scatters and
**     all-gathers, plus one all-reduce of 2 (t - 1) / t x 6 h e per layer
**     (the replicated gradients' sync, tests/test_tp_time.c); every TP collective is an event on each device of its
**     TP group, whose steps go to that group's devices only;
**   - memory per device: Korthikanti et al. 2022 Table 2 per layer
**     (s b h (10 + 24 / t + 5 a s / (h t)), (s b h / t)(34 + 5 a s / h),
**     34 s b h / t with selective recompute and SP), parameters and model
**     states split / t + replicated (the LayerNorms, b_o, b_2 and the
**     learned position table whole on every rank; test_tp_states for a
**     GPT-style and a Llama-style model), pipeline messages b s h e / t
**     with scatter / gather;
**   - compute per device: 1/t of the FLOPs, busy time 1/t on the ideal
**     platform; selective recompute adds 4 b s^2 h per layer to the
**     backward;
**   - GEMM-curve hosts: a rank's GEMMs are the split shapes with 1/t of the
**     FLOPs, less efficient than the whole ones;
**   - t = 1 changes nothing: no TP events, the cost table of a job without
**     the fields;
**   - each bad input is one EX_DATAERR line naming the field.
*/
#include <sys/stat.h>
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"
#include "ts_gemm.h"

/* b = 1, s = 128, h = 256, a = 8, 4 layers over 2 stages, 2 micro-batches. */
#define B 1.0
#define S 128.0
#define H 256.0
#define A 8.0
#define E 2.0

static const char *job_json(int t, bool sp, const char *rec, const char *plat, char *buf, size_t n) {
  snprintf(buf, n,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, "
           "\"vocab\": 1024, \"flash_attention\": false, \"dropout\": true}, \"platform\": \"%s\", "
           "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, "
           "\"tensor_parallel\": %d, \"sequence_parallel\": %s, \"recompute\": \"%s\", "
           "\"optimizer\": \"none\"}",
           plat, t, sp ? "true" : "false", rec);
  return buf;
}

/* One device's parameters of part `part` (of 2, 2 layers each) of
** job_json's GPT-style model at vocabulary V under 1D TP over t, by hand:
** a layer is 12 h^2 + 13 h, of which its two LayerNorms (4 h) and the
** row-split GEMMs' output biases b_o, b_2 (2 h) are replicated on every
** rank and the rest, 12 h^2 + 7 h, split; part 0 adds the word embedding
** V h (split) and the learned position table S h (replicated), part 1 the
** LM head's tied copy V h (split). */
static double tp_params(int part, int t, double V) {
  double split = 2 * (12 * H * H + 7 * H) + V * H, rep = 2 * 6 * H + (part == 0 ? S * H : 0);
  return split / t + rep;
}

static int simulate(int t, bool sp, const char *rec, const char *plat, ts_job_t **job,
                    ts_outcome_t *o) {
  char json[1024];
  ts_err_t err = {0};
  int rc = th_simulate(job_json(t, sp, rec, plat, json, sizeof json), NULL, 0, job, o, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  return rc;
}

static bool in_group(ts_group_t g, int d) {
  for (int i = 0; i < g.n; i++)
    if (g.dev[i] == d) return true;
  return false;
}

/* The TP collectives of every device against the closed form. */
static void check_volume(int t, bool sp) {
  const char *plat = th_star_platform(2 * t, 50e9, 1e-6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(plat);
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(simulate(t, sp, "none", plat, &job, &o), 0);
  unlink(plat);
  CU_ASSERT_EQUAL(o.run->n_devices, 2 * t);
  for (int d = 0; d < o.run->n_devices; d++) {
    ts_group_t g = ts_plan_group(o.plan, TS_GROUP_TP, d);
    CU_ASSERT_EQUAL(g.n, t);
    double bytes = 0;
    int n = 0, ops[TS_COLL_OPS] = {0};
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device != d) continue;
      if (e->kind == TS_SEND_COLL) CU_ASSERT(in_group(g, e->peer));
      if (e->kind != TS_COLLECTIVE) continue;
      CU_ASSERT_EQUAL(TS_EV_COLL_PURPOSE(e->coll), TS_CP_TP);
      CU_ASSERT_EQUAL(TS_EV_COLL_GROUP(e->coll), TS_GROUP_TP);
      CU_ASSERT_EQUAL(e->peer, t);
      bytes += e->bytes;
      ops[TS_EV_COLL_OP(e->coll)]++;
      n++;
    }
    /* 2 layers per device, 2 micro-batches, 4 all-reduces (SP: 8 halves);
    ** without SP each of the 2 pipeline messages a device receives (stage
    ** 0 the gradients, stage 1 the activations) as b s h / t is
    ** all-gathered: (t - 1) / t x b s h more each. */
    double layers_mb = 2 * 2;
    int gathers = sp ? 0 : 2;
    /* Vocabulary parallelism (tests/test_tp_time.c), per micro-batch:
    ** stage 0's embedding an all-reduce (SP: a reduce-scatter forward, an
    ** all-gather backward); stage 1's LM head three cross-entropy
    ** all-reduces of b s fp32 and its input gradient's all-reduce (SP: an
    ** all-gather forward and a reduce-scatter backward). */
    bool head = ts_plan_coord(o.plan, d, TS_DIM_PP) == 1;
    int vocab_n = head ? (sp ? 5 : 4) : (sp ? 2 : 1);
    /* With SP one more all-reduce: the replicated gradients' sync. */
    CU_ASSERT_EQUAL(n, (int)layers_mb * (sp ? 8 : 4) + gathers + 2 * vocab_n + sp);
    CU_ASSERT_EQUAL(ops[TS_COLL_ALLREDUCE], (sp ? 1 : 16) + 2 * (head ? (sp ? 3 : 4) : !sp));
    CU_ASSERT_EQUAL(ops[TS_COLL_REDUCE_SCATTER], sp ? 16 + 2 : 0);
    CU_ASSERT_EQUAL(ops[TS_COLL_ALLGATHER], sp ? 16 + 2 : gathers);
    double layer_bytes = layers_mb * 8 * B * S * H * (t - 1) / t * E;
    double vocab_bytes = 2 * (2.0 * (t - 1) / t * B * S * H * E) +
                         (head ? 2 * 3 * 2.0 * (t - 1) / t * 4 * B * S : 0);
    /* SP: 2 (t - 1) / t of the 2 layers' LayerNorm gains and biases and
    ** output biases b_o, b_2, 6 h each. */
    double sync = sp ? 2.0 * (t - 1) / t * 2 * 6 * H * E : 0;
    double want = layer_bytes + gathers * B * S * H * (t - 1) / t * E + vocab_bytes + sync;
    double ar = 0;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device == d && e->kind == TS_COLLECTIVE && TS_EV_COLL_OP(e->coll) != TS_COLL_ALLGATHER)
        ar += e->bytes;
    }
    if (!sp) TS_ASSERT_REL(ar, layer_bytes + vocab_bytes, 1e-12); /* the all-reduces alone */
    /* Ring time on the star (each step one message of S = bytes / steps per
    ** uplink, c(S) = 2 lat + S / bw; M / t for a layer's): all-reduce 2 (t
    ** - 1) c(S), reduce-scatter (t - 1) c(S); the all-gathers are left
    ** out, and so is a collective that shares its links with a pipeline
    ** message of the device in flight. */
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device != d || e->kind != TS_COLLECTIVE || TS_EV_COLL_OP(e->coll) == TS_COLL_ALLGATHER)
        continue;
      bool shared = false;
      for (int j = 0; j < o.run->n_events && !shared; j++) {
        const ts_event_t *x = &o.run->events[j];
        shared = (x->kind == TS_SEND_ACT || x->kind == TS_SEND_GRAD) && (x->device == d || x->peer == d) &&
                 x->end > x->start && x->start < e->end && x->end > e->start;
      }
      if (shared) continue;
      int steps = TS_EV_COLL_OP(e->coll) == TS_COLL_ALLREDUCE ? 2 * (t - 1) : t - 1;
      double c = 2 * 1e-6 + e->bytes / steps / 50e9;
      TS_ASSERT_REL(e->end - e->start, steps * c, 1e-6);
    }
    TS_ASSERT_REL(bytes, want, 1e-12);
    TS_ASSERT_REL(o.metrics->dev[d].tp_bytes, want, 1e-12);
    CU_ASSERT(o.metrics->dev[d].tp_comm_s > 0);
    CU_ASSERT(o.metrics->dev[d].tp_exposed_s > 0);
    CU_ASSERT(o.metrics->dev[d].tp_exposed_s <= o.metrics->dev[d].tp_comm_s * (1 + 1e-9));
    CU_ASSERT_EQUAL(o.metrics->dev[d].dp_bytes, 0);
    /* Pipeline messages: b s h e / t per device (scatter / gather). */
    if (ts_plan_coord(o.plan, d, TS_DIM_PP) == 0)
      TS_ASSERT_REL(o.metrics->dev[d].send_bytes, 2 * B * S * H * E / t, 1e-12);
  }
  printf("\n    t=%d%s: %.6g B TP per device, iteration %.6g s", t, sp ? " sp" : "",
         o.metrics->dev[0].tp_bytes, o.metrics->iteration_time_s);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_volume(void) {
  for (int t = 2; t <= 8; t *= 2) check_volume(t, false);
}

static void test_volume_sp(void) {
  for (int t = 2; t <= 8; t *= 2) check_volume(t, true);
}

/* t = 1: no TP collective, and the cost table of a job without the fields. */
static void test_t1_unchanged(void) {
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(simulate(1, false, "none", "ideal", &job, &o), 0);
  for (int i = 0; i < o.run->n_events; i++) CU_ASSERT_NOT_EQUAL(o.run->events[i].kind, TS_COLLECTIVE);
  CU_ASSERT_EQUAL(o.metrics->tp_bytes, 0);
  CU_ASSERT_EQUAL(o.metrics->tp_comm_s, 0);
  ts_job_t *plain = th_load_job(
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, "
      "\"vocab\": 1024, \"flash_attention\": false, \"dropout\": true}, \"platform\": \"ideal\", "
      "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, "
      "\"optimizer\": \"none\"}");
  CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
  CU_ASSERT_EQUAL(plain->tensor_parallel, 1);
  CU_ASSERT_FALSE(plain->pipeline_scatter_gather);
  ts_cost_t *c = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(plain, 2, &c, &err), 0);
  CU_ASSERT_EQUAL(memcmp(c->part, o.cost->part, 2 * sizeof *c->part), 0);
  ts_cost_free(c);
  ts_job_free(plain);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* Korthikanti Table 2 at e = 2, f = 4 h, dropout, no flash attention. */
static void test_activation_formulas(void) {
  ts_job_t *job = th_load_job(
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, "
      "\"vocab\": 1024, \"flash_attention\": false, \"dropout\": true}, \"platform\": \"ideal\", "
      "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128}");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  const ts_model_t *m = &job->model;
  double sbh = S * B * H, as_h = A * S / H;
  TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(m, 128, 1, 2, 1, false, TS_RECOMPUTE_NONE),
                ts_cost_layer_activation_bytes(m, 128, 1, 2), 1e-15);
  TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(m, 128, 1, 2, 1, false, TS_RECOMPUTE_NONE),
                sbh * (34 + 5 * as_h), 1e-15);
  for (int t = 2; t <= 8; t *= 2) {
    TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(m, 128, 1, 2, t, false, TS_RECOMPUTE_NONE),
                  sbh * (10 + 24.0 / t + 5 * as_h / t), 1e-15);
    TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(m, 128, 1, 2, t, true, TS_RECOMPUTE_NONE),
                  sbh / t * (34 + 5 * as_h), 1e-15);
    TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(m, 128, 1, 2, t, true, TS_RECOMPUTE_SELECTIVE),
                  34 * sbh / t, 1e-15);
    TS_ASSERT_REL(ts_cost_tp_layer_activation_bytes(m, 128, 1, 2, t, false, TS_RECOMPUTE_SELECTIVE),
                  sbh * (10 + 24.0 / t), 1e-15);
  }
  ts_job_free(job);
}

/* The cost table's shares per device against t = 1's. */
static void test_cost_shares(void) {
  char json[1024];
  ts_job_t *j1 = th_load_job(job_json(1, false, "none", "ideal", json, sizeof json));
  CU_ASSERT_PTR_NOT_NULL_FATAL(j1);
  ts_cost_t *c1 = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(j1, 2, &c1, &err), 0);
  for (int t = 2; t <= 8; t *= 2) {
    for (int sp = 0; sp < 2; sp++) {
      ts_job_t *jt = th_load_job(job_json(t, sp, "none", "ideal", json, sizeof json));
      CU_ASSERT_PTR_NOT_NULL_FATAL(jt);
      CU_ASSERT_TRUE(jt->pipeline_scatter_gather); /* the default when t > 1 */
      ts_cost_t *ct = NULL;
      CU_ASSERT_EQUAL_FATAL(ts_cost_build(jt, 2, &ct, &err), 0);
      for (int p = 0; p < 2; p++) {
        const ts_part_cost_t *a = &c1->part[p], *b = &ct->part[p];
        for (int k = 0; k < TS_COMPUTE_KINDS; k++) TS_ASSERT_REL(b->flops[k], a->flops[k] / t, 1e-14);
        /* split / t + replicated, with or without SP; t = 1 the whole part */
        CU_ASSERT_EQUAL(a->params, tp_params(p, 1, 1024));
        CU_ASSERT_EQUAL(b->params, tp_params(p, t, 1024));
        CU_ASSERT_EQUAL(b->weights_bytes, E * tp_params(p, t, 1024));
        CU_ASSERT_EQUAL(b->gradients_bytes, E * tp_params(p, t, 1024));
        CU_ASSERT_EQUAL(b->optimizer_bytes, 12 * tp_params(p, t, 1024));
        /* over the t ranks: t x replicated + split, more than the part */
        double rep = 12 * H + (p == 0 ? S * H : 0);
        CU_ASSERT_EQUAL(t * b->params, t * rep + (a->params - rep));
        CU_ASSERT(t * b->params > a->params);
        TS_ASSERT_REL(b->msg_bytes, S * B * H * E / t, 1e-15);
        double la = ts_cost_tp_layer_activation_bytes(&jt->model, 128, 1, 2, t, sp, TS_RECOMPUTE_NONE);
        double keep = p == 0 ? 8 * S * B + S * B * H / (sp ? t : 1)
                             : S * B * H * E / (sp ? t : 1) + S * B * H * E + 4 * S * B * 1024 / t;
        TS_ASSERT_REL(b->act_bytes, 2 * la + keep, 1e-14);
      }
      CU_ASSERT_EQUAL(ct->model_params, c1->model_params);
      CU_ASSERT_EQUAL(ct->model_flops_per_iteration, c1->model_flops_per_iteration);
      ts_cost_free(ct);
      ts_job_free(jt);
    }
  }
  /* Without scatter / gather each rank sends the whole b s h. */
  const char *sets[] = {"pipeline_scatter_gather=false"};
  ts_job_t *jn = NULL;
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(job_json(4, false, "none", "ideal", json, sizeof json),
                                         sets, 1, &jn, &err), 0);
  ts_cost_t *cn = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(jn, 2, &cn, &err), 0);
  TS_ASSERT_REL(cn->part[0].msg_bytes, S * B * H * E, 1e-15);
  ts_cost_free(cn);
  ts_job_free(jn);
  /* Selective recompute: + 4 b s^2 h per layer on the backward, scores not kept. */
  ts_job_t *js = th_load_job(job_json(1, false, "selective", "ideal", json, sizeof json));
  CU_ASSERT_PTR_NOT_NULL_FATAL(js);
  ts_cost_t *cs = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(js, 2, &cs, &err), 0);
  TS_ASSERT_REL(cs->part[0].flops[TS_BACKWARD], c1->part[0].flops[TS_BACKWARD] + 2 * 4 * B * S * S * H, 1e-14);
  TS_ASSERT_REL(cs->part[0].flops[TS_FORWARD], c1->part[0].flops[TS_FORWARD], 1e-15);
  TS_ASSERT_REL(c1->part[0].act_bytes - cs->part[0].act_bytes, 2 * 5 * A * S * S * B, 1e-12);
  ts_cost_free(cs);
  ts_job_free(js);
  ts_cost_free(c1);
  ts_job_free(j1);
}

/* On the ideal platform every device's busy time is 1/t of t = 1's, and
** every compute piece takes its share (none negative), also when the LM
** head outweighs the last part's layers on one rank (vocab 65536). */
static void test_compute_share(void) {
  for (int big = 0; big < 2; big++) {
    char json[1024];
    const char *sets[] = {"model.vocab=65536"};
    ts_job_t *j1, *j4;
    ts_outcome_t o1, o4;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL_FATAL(th_simulate(job_json(1, false, "none", "ideal", json, sizeof json), sets,
                                      big, &j1, &o1, &err), 0);
    CU_ASSERT_EQUAL_FATAL(th_simulate(job_json(4, false, "none", "ideal", json, sizeof json), sets,
                                      big, &j4, &o4, &err), 0);
    for (int d = 0; d < o4.run->n_devices; d++) {
      int pp = ts_plan_coord(o4.plan, d, TS_DIM_PP);
      TS_ASSERT_REL(o4.metrics->dev[d].busy_s, o1.metrics->dev[pp].busy_s / 4, 1e-9);
      double V = big ? 65536 : 1024;
      CU_ASSERT_EQUAL(o1.metrics->dev[pp].weights_bytes, E * tp_params(pp, 1, V));
      CU_ASSERT_EQUAL(o4.metrics->dev[d].weights_bytes, E * tp_params(pp, 4, V));
    }
    /* The pieces of one forward: 2 per layer, the first ones (attention)
    ** of equal length on every layer; the last (MLP and LM head) longer. */
    int n = 0;
    double first = -1;
    for (int i = 0; i < o4.run->n_events; i++) {
      const ts_event_t *e = &o4.run->events[i];
      if (e->device != 4 || e->kind != TS_FORWARD || e->mb != 0) continue;
      CU_ASSERT(e->end > e->start);
      if (n % 2 == 0 && first < 0) first = e->end - e->start;
      if (n % 2 == 0) TS_ASSERT_REL(e->end - e->start, first, 1e-9);
      n++;
    }
    CU_ASSERT_EQUAL(n, 4);
    TS_ASSERT_REL(o4.metrics->flops_per_s_per_gpu * o4.metrics->iteration_time_s * 8,
                  o1.metrics->flops_per_s_per_gpu * o1.metrics->iteration_time_s * 2, 1e-9);
    ts_outcome_free(&o1);
    ts_outcome_free(&o4);
    ts_job_free(j1);
    ts_job_free(j4);
  }
}

/* One device's model states per part by hand, for t in {2, 4} with and
** without SP (the replicated parameters are the same either way; SP only
** adds their gradients' sync, whose bytes are the replicated ones but the
** position table), and summed over the t ranks: t x replicated + split.
** GPT-style (h = 256, 3 layers over 2 parts: 2 and 1, biases, LayerNorm,
** learned positions of max_positions 512, final LayerNorm, tied LM head):
** a layer 12 h^2 + 13 h, replicated 2 x 2 h (LayerNorms) + 2 h (b_o, b_2);
** part 0 adds V h split and 512 h replicated, part 1 the tied copy V h
** split and the final LayerNorm 2 h replicated.  Llama-style (rotary,
** RMSNorm, no biases, SwiGLU f = 512, 8 heads of 32 and 4 KV heads,
** untied, final RMSNorm): a layer h (q + 2 kv) + q h + 3 h f + 2 h with q
** = 256, kv = 128, replicated the two norms 2 h only; part 0 adds V h
** split, part 1 the LM head V h split and the final norm h replicated. */
static void test_tp_states(void) {
  static const char *gpt =
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 3, \"hidden\": 256, \"heads\": 8, "
      "\"vocab\": 1024, \"max_positions\": 512, \"final_norm\": true}, \"platform\": \"ideal\", "
      "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, "
      "\"tensor_parallel\": %d, \"sequence_parallel\": %s}";
  static const char *llama =
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 3, \"hidden\": 256, \"heads\": 8, "
      "\"kv_heads\": 4, \"ffn_hidden\": 512, \"gated_mlp\": true, \"vocab\": 1024, "
      "\"position\": \"rotary\", \"norm\": \"rmsnorm\", \"bias\": \"none\", "
      "\"tie_embeddings\": false, \"final_norm\": true}, \"platform\": \"ideal\", "
      "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, "
      "\"tensor_parallel\": %d, \"sequence_parallel\": %s}";
  const double V = 1024, f = 512, q = 256, kv = 128;
  /* [model][part]: split and replicated parameters, and layers. */
  const double split[2][2] = {{2 * (12 * H * H + 7 * H) + V * H, (12 * H * H + 7 * H) + V * H},
                              {2 * (H * (q + 2 * kv) + q * H + 3 * H * f) + V * H,
                               (H * (q + 2 * kv) + q * H + 3 * H * f) + V * H}};
  const double rep[2][2] = {{2 * 6 * H + 512 * H, 6 * H + 2 * H}, {2 * 2 * H, 2 * H + H}};
  const double whole[2] = {3 * (12 * H * H + 13 * H) + (V + 512) * H + 2 * H,
                           3 * (H * (q + 2 * kv) + q * H + 3 * H * f + 2 * H) + 2 * V * H + H};
  for (int mi = 0; mi < 2; mi++) {
    for (int t = 1; t <= 4; t *= 2) {
      for (int sp = 0; sp < (t > 1 ? 2 : 1); sp++) {
        char json[1024];
        snprintf(json, sizeof json, mi ? llama : gpt, t, sp ? "true" : "false");
        ts_job_t *job = th_load_job(json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(job);
        ts_cost_t *c = NULL;
        ts_err_t err = {0};
        CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, 2, &c, &err), 0);
        CU_ASSERT_EQUAL(c->model_params, whole[mi]); /* the whole model, any t */
        double ranks = 0;
        for (int p = 0; p < 2; p++) {
          const ts_part_cost_t *x = &c->part[p];
          double per = split[mi][p] / t + rep[mi][p];
          CU_ASSERT_EQUAL(x->params, per);
          CU_ASSERT_EQUAL(x->weights_bytes, E * per);
          CU_ASSERT_EQUAL(x->gradients_bytes, E * per);
          CU_ASSERT_EQUAL(x->optimizer_bytes, 12 * per);
          CU_ASSERT_EQUAL(t * x->params, t * rep[mi][p] + split[mi][p]);
          ranks += t * x->params;
          /* SP: the sync carries the replicated gradients but the
          ** position table (identical on every rank: no sync). */
          int g = 0;
          double sync = ts_cost_tp_sync_bytes(job, x->n_layers, p == 1, &g);
          double pos = mi == 0 && p == 0 ? 512 * H : 0;
          CU_ASSERT_EQUAL(sync, sp ? E * (rep[mi][p] - pos) : 0);
          CU_ASSERT_EQUAL(g, sp ? t : 1);
        }
        /* over parts and ranks: the whole model (with the GPT's tied LM
        ** head copy on part 1, V h) and t - 1 more of the replicated */
        double r = rep[mi][0] + rep[mi][1], copy = mi == 0 ? V * H : 0;
        CU_ASSERT_EQUAL(ranks, whole[mi] + copy + (t - 1) * r);
        ts_cost_free(c);
        ts_job_free(job);
      }
    }
  }
}

/* The TP group is t consecutive devices (tp fastest), and the DP gradient
** sync of a TP rank pairs it with the same rank of the other replica. */
static void test_groups_with_dp(void) {
  char json[1024];
  const char *sets[] = {"data_parallel=2"};
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(job_json(2, false, "none", "ideal", json, sizeof json), sets, 1, &job, &o, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(o.run->n_devices, 8);
  for (int d = 0; d < 8; d++) {
    ts_group_t tp = ts_plan_group(o.plan, TS_GROUP_TP, d), rep = ts_plan_group(o.plan, TS_GROUP_REPLICA, d);
    CU_ASSERT_EQUAL(tp.n, 2);
    CU_ASSERT_EQUAL(tp.dev[0], d / 2 * 2);
    CU_ASSERT_EQUAL(rep.n, 2);
    for (int i = 0; i < rep.n; i++)
      CU_ASSERT_EQUAL(ts_plan_coord(o.plan, rep.dev[i], TS_DIM_TP), ts_plan_coord(o.plan, d, TS_DIM_TP));
    /* The DP gradients follow the rank's states (split / t + replicated):
    ** a ring all-reduce of d = 2 sends 2 (d - 1) / d of them, all of them. */
    int pp = ts_plan_coord(o.plan, d, TS_DIM_PP);
    CU_ASSERT_EQUAL(o.metrics->dev[d].gradients_bytes, E * tp_params(pp, 2, 1024));
    TS_ASSERT_REL(o.metrics->dev[d].dp_bytes, E * tp_params(pp, 2, 1024), 1e-12);
    CU_ASSERT(o.metrics->dev[d].tp_bytes > 0);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* GEMM-curve hosts (README "Model of time"): a rank's GEMMs are the
** column- and row-split shapes, 1/t of the FLOPs each kind; t = 1 is the
** whole layer exactly; a split GEMM is less efficient, so on a curve host
** the busy time is more than 1/t of t = 1's, and less than all of it. */
static void test_gemm_shapes(void) {
  ts_job_t *job = th_load_job(
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 2048, \"heads\": 16, "
      "\"vocab\": 51200, \"flash_attention\": false}, \"platform\": \"ideal\", "
      "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 2048}");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_op_work_t w1[TS_COMPUTE_KINDS], wa[TS_COMPUTE_KINDS];
  memset(w1, 0, sizeof w1);
  memset(wa, 0, sizeof wa);
  ts_gemm_layer_work(&job->model, 2048, 1, 2, 1, w1);
  ts_gemm_layer_work_tp(&job->model, 2048, 1, 2, 1, 1, false, false, wa);
  CU_ASSERT_EQUAL(memcmp(w1, wa, sizeof w1), 0);
  for (int t = 2; t <= 8; t *= 2) {
    ts_op_work_t wt[TS_COMPUTE_KINDS];
    memset(wt, 0, sizeof wt);
    ts_gemm_layer_work_tp(&job->model, 2048, 1, 2, 1, t, false, false, wt);
    for (int k = 0; k < TS_COMPUTE_KINDS; k++) {
      double f1 = 0, ft = 0;
      for (int i = 0; i < w1[k].n_gemm; i++) f1 += 2 * w1[k].gemm[i].m * w1[k].gemm[i].n * w1[k].gemm[i].k * w1[k].gemm[i].count;
      for (int i = 0; i < wt[k].n_gemm; i++) ft += 2 * wt[k].gemm[i].m * wt[k].gemm[i].n * wt[k].gemm[i].k * wt[k].gemm[i].count;
      TS_ASSERT_REL(ft, f1 / t, 1e-12);
    }
    /* The QKV GEMM of a rank: 2048 x 3 h / t x h. */
    bool qkv = false;
    for (int i = 0; i < wt[TS_FORWARD].n_gemm; i++)
      qkv |= wt[TS_FORWARD].gemm[i].m == 2048 && wt[TS_FORWARD].gemm[i].n == 3 * 2048.0 / t &&
             wt[TS_FORWARD].gemm[i].k == 2048;
    CU_ASSERT(qkv);
  }
  ts_job_free(job);
  /* On a curve host (dgx-a100-2node: gemm_curve a100). */
  const char *plat = TS_SOURCE_DIR "/platforms/dgx-a100-2node.xml";
  ts_job_t *j1, *j4;
  ts_outcome_t o1, o4;
  CU_ASSERT_EQUAL_FATAL(simulate(1, false, "none", plat, &j1, &o1), 0);
  CU_ASSERT_EQUAL_FATAL(simulate(4, false, "none", plat, &j4, &o4), 0);
  CU_ASSERT(o4.cost->part[0].work[TS_FORWARD].n_gemm > 0);
  double b1 = o1.metrics->dev[0].busy_s, b4 = o4.metrics->dev[0].busy_s;
  printf("\n    a100 curve: busy %.6g s at t = 1, %.6g s at t = 4", b1, b4);
  CU_ASSERT(b4 > b1 / 4 * 1.001);
  CU_ASSERT(b4 < b1);
  ts_outcome_free(&o1);
  ts_outcome_free(&o4);
  ts_job_free(j1);
  ts_job_free(j4);
}

static const char *TJOB =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, "
    "\"vocab\": 1024}, \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, "
    "\"microbatches\": 2, \"seq_len\": 128}";
static const char *SJOB =
    "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0, "
    "\"activation_message_bytes\": 0, \"activation_bytes\": 1}, \"platform\": \"ideal\", "
    "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4}";

static void test_bad_inputs(void) {
  static const struct {
    const char **job;
    const char *set, *msg;
  } cases[] = {
      {&TJOB, "tensor_parallel=3", ".json: tensor_parallel: 3 does not divide model.heads (8)"},
      {&TJOB, "sequence_parallel=true", ".json: sequence_parallel: needs tensor_parallel > 1"},
      {&TJOB, "tensor_parallel_depth=2", ".json: tensor_parallel_depth: 2 needs tensor_parallel_mode \"2.5d\""},
      {&TJOB, "tensor_parallel_mode=4d", ".json: tensor_parallel_mode: expected \"1d\""},
      {&TJOB, "tensor_parallel=0", ".json: tensor_parallel: "},
      {&SJOB, "recompute=selective", ".json: recompute: \"selective\" recomputes a transformer's"},
      {&SJOB, "tensor_parallel=2", ".json: tensor_parallel: 2 needs a transformer model"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *sets[1] = {cases[i].set};
    int n = 1;
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    CU_ASSERT_EQUAL(th_job_from_json(*cases[i].job, sets, n, &job, &err), EX_DATAERR);
    if (!strstr(err.msg, cases[i].msg)) fprintf(stderr, "\n  got: %s\n", err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].msg));
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    ts_job_free(job);
  }
  /* The reference executor runs 1D TP with SP and selective recompute
  ** (tests/test_ref_tp.c) but refuses t > 1 with full recompute, naming
  ** the field. */
  const char *sets[] = {"tensor_parallel=2", "recompute=full"};
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(TJOB, sets, 2, &job, &err), 0);
  ts_ref_config_t cfg;
  CU_ASSERT_EQUAL(ts_ref_config_for_job(job, &cfg, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ": recompute: "));
  ts_job_free(job);
}

/* Through the command: exit 65, one line, no output directory. */
static void test_bad_inputs_cli(void) {
  char tmp[] = "/tmp/ts-tp-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmp));
  static const char *const cases[][2] = {
      {"--set tensor_parallel=3", "tests/jobs/good-synthetic.json: tensor_parallel: "},
      {"--set sequence_parallel=true", "tests/jobs/good-synthetic.json: sequence_parallel: "},
      {"--set recompute=selective", "tests/jobs/good-synthetic.json: recompute: "},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char args[512], *e = NULL;
    snprintf(args, sizeof args, "run tests/jobs/good-synthetic.json %s -o '%s/out' --quiet",
             cases[i][0], tmp);
    CU_ASSERT_EQUAL(th_cli(args, NULL, &e), EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e) {
      size_t n = strlen(e);
      CU_ASSERT(n > 0 && strchr(e, '\n') == e + n - 1);
      CU_ASSERT_PTR_NOT_NULL(strstr(e, cases[i][1]));
    }
    char out[160];
    snprintf(out, sizeof out, "%s/out", tmp);
    struct stat st;
    CU_ASSERT(stat(out, &st) != 0);
    free(e);
  }
  rmdir(tmp);
}

TS_TESTS{
    TS_TEST(test_volume),
    TS_TEST(test_volume_sp),
    TS_TEST(test_t1_unchanged),
    TS_TEST(test_activation_formulas),
    TS_TEST(test_cost_shares),
    TS_TEST(test_tp_states),
    TS_TEST(test_compute_share),
    TS_TEST(test_groups_with_dp),
    TS_TEST(test_gemm_shapes),
    TS_TEST(test_bad_inputs),
    TS_TEST(test_bad_inputs_cli),
};
TS_TEST_MAIN("tensor parallelism")
