/*
** test_moe.c: GShard top-2 mixture of experts (schedule gshard).
**   - gating against a hand-computed group: capacity, first choices by
**     exclusive cumulative sum, second choices queued after the kept first
**     choices, drops, combine weights, auxiliary loss;
**   - the random second-expert policy dispatches with probability 2 g2';
**   - second choices queued after the kept first choices (GShard's code)
**     equal queued after all first choices (the paper, formulas.md);
**   - capacity rounding;
**   - a routing table sends every first choice to its expert;
**   - Zipf skew raises load imbalance, drops and MoE layer time;
**   - MoE layer spans when one lane's experts get no tokens; all-to-all
**     call spans named apart from the flows in trace.json and gantt.svg;
**   - each (MoE layer, micro-batch, lane) draws its own routing;
**   - the ring all-reduce of the replicated gradients, experts excluded;
**   - the all-to-alls' directions under skew (alltoall "tokens");
**   - determinism: the same seed gives a byte-identical summary.json;
**   - all-to-all against its closed form on a star of full-duplex links:
**     2 L + (n - 1) S / B; expert compute time = tokens x 2 k h f / speed;
**   - a MoE layer spread over two nodes (InfiniBand) is slower than on one
**     (NVLink) with the same routing;
**   - broken MoE programs (pieces or all-to-alls out of order, an op left
**     unfinished) are errors;
**   - Mixtral config.json; bad input gives one-line errors naming the field.
*/
#include <cjson/cJSON.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <sysexits.h>

#include "ts_moe.h"
#include "ts_runtime.h"
#include "tshelp.h"
#include "tsunit.h"

static void test_gate_hand(void) {
  /* S = 8, E = 4, capacity factor 1, no rounding: C = 2. */
  static const double p[8][4] = {{.5, .5, 0, 0}, {.5, 0, .5, 0}, {.5, 0, 0, .5}, {0, 1, 0, 0},
                                 {0, 0, 1, 0},   {0, .5, .5, 0}, {0, 0, 0, 1},   {0, 0, .5, .5}};
  gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
  ts_moe_route_t r;
  ts_moe_gate(&p[0][0], 8, 4, 1.0, 1, g, &r);
  CU_ASSERT_EQUAL(r.C, 2);
  /* first choices: expert 0 gets tokens 0, 1 (slots 0, 1); token 2 dropped */
  CU_ASSERT_EQUAL(r.expert[0], 0);
  CU_ASSERT_EQUAL(r.slot[0], 0);
  CU_ASSERT_EQUAL(r.slot[2], 1);
  CU_ASSERT_EQUAL(r.slot[4], -1);
  CU_ASSERT_EQUAL(r.slot[2 * 5], 1); /* token 5 first at expert 1 after token 3 */
  /* second choices queue after the kept first choices: token 0 -> expert 1
  ** (slot 2 = C: dropped), token 2 -> expert 3 (slot 1: kept, although its
  ** first choice was dropped), tokens 3, 4, 6 have g2 = 0: not dispatched */
  CU_ASSERT_EQUAL(r.expert[1], 1);
  CU_ASSERT_EQUAL(r.slot[1], -1);
  CU_ASSERT_EQUAL(r.expert[5], 3);
  CU_ASSERT_EQUAL(r.slot[5], 1);
  CU_ASSERT_EQUAL(r.slot[7], -1);
  int load[4] = {2, 2, 2, 2}, wanted[4] = {3, 3, 4, 3};
  for (int e = 0; e < 4; e++) {
    CU_ASSERT_EQUAL(r.load[e], load[e]);
    CU_ASSERT_EQUAL(r.wanted[e], wanted[e]);
  }
  CU_ASSERT_EQUAL(r.dropped, 5);
  /* combine weights: normalised gates of the kept choices */
  TS_ASSERT_REL(r.gate[0], 0.5, 1e-15);
  CU_ASSERT_EQUAL(r.gate[1], 0.0);
  CU_ASSERT_EQUAL(r.gate[4], 0.0);
  TS_ASSERT_REL(r.gate[5], 0.5, 1e-15);
  TS_ASSERT_REL(r.gate[6], 1.0, 1e-15);
  /* aux = E^2 mean_e(mean p x top-1 fraction) = 16 x (15.5 / 64) / 4 */
  TS_ASSERT_REL(r.aux, 0.96875, 1e-14);
  ts_moe_route_free(&r);
  gsl_rng_free(g);
}

static void test_gate_random_policy(void) {
  /* g1' = 0.75, g2' = 0.25: the second choice goes with probability 0.5. */
  int S = 20000, E = 4;
  double *p = ts__xmalloc((size_t)S * E * sizeof *p);
  for (int t = 0; t < S; t++) {
    double row[4] = {0.6, 0.2, 0.1, 0.1};
    memcpy(p + (size_t)t * E, row, sizeof row);
  }
  gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
  ts_moe_route_t r;
  ts_moe_gate(p, S, E, 4.0, 1, g, &r);
  CU_ASSERT_EQUAL(r.wanted[0], S);
  double frac = (double)r.wanted[1] / S;
  CU_ASSERT(fabs(frac - 0.5) < 0.02);
  CU_ASSERT_EQUAL(r.dropped, 0);
  TS_ASSERT_REL(r.gate[0], 0.75, 1e-12);
  ts_moe_route_free(&r);
  gsl_rng_free(g);
  free(p);
}

/* Second choices queue after the first choices.  GShard's code offsets their
** positions by the kept first choices (mask_1_count, taken after the
** capacity mask); the paper's Algorithm 2 and shared/notes/formulas.md by
** all first choices.  The two give the same slots and drops (an expert
** whose first choices overflow has no room left either way): checked here
** against an independent implementation of the "all first choices" rule,
** with its own copy of the uniforms, on random groups at tight capacity. */
static void test_gate_second_queue_rule(void) {
  enum { S = 64, E = 8 };
  gsl_rng *src = gsl_rng_alloc(gsl_rng_mt19937);
  int kept_seconds = 0, dropped_total = 0;
  for (int trial = 0; trial < 200; trial++) {
    double p[S * E];
    for (int t = 0; t < S; t++) {
      double sum = 0;
      for (int e = 0; e < E; e++) {
        /* skewed rows so some experts overflow on first choices alone */
        p[t * E + e] = gsl_rng_uniform_pos(src) * (e < 2 ? 4.0 : 1.0);
        sum += p[t * E + e];
      }
      for (int e = 0; e < E; e++) p[t * E + e] /= sum;
    }
    double cf = 0.5 + 0.25 * (trial % 5);
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937), *h = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(g, 100 + trial);
    gsl_rng_set(h, 100 + trial);
    ts_moe_route_t r;
    ts_moe_gate(p, S, E, cf, 1, g, &r);
    int C = ts_moe_capacity(S, E, cf, 1), count[E] = {0}, e1[S], e2[S], go2[S];
    for (int t = 0; t < S; t++) {
      const double *q = p + t * E;
      e1[t] = 0;
      for (int e = 1; e < E; e++)
        if (q[e] > q[e1[t]]) e1[t] = e;
      e2[t] = e1[t] ? 0 : 1;
      for (int e = 0; e < E; e++)
        if (e != e1[t] && q[e] > q[e2[t]]) e2[t] = e;
      double g2 = q[e2[t]] / (q[e1[t]] + q[e2[t]]);
      go2[t] = gsl_rng_uniform(h) < fmin(1.0, g2 / 0.5);
    }
    int dropped = 0;
    for (int t = 0; t < S; t++) { /* every first choice counts */
      int slot = count[e1[t]]++;
      CU_ASSERT_EQUAL(r.slot[2 * t], slot < C ? slot : -1);
      dropped += slot >= C;
    }
    for (int t = 0; t < S; t++) {
      if (!go2[t]) {
        CU_ASSERT_EQUAL(r.slot[2 * t + 1], -1);
        continue;
      }
      int slot = count[e2[t]]++;
      CU_ASSERT_EQUAL(r.slot[2 * t + 1], slot < C ? slot : -1);
      dropped += slot >= C;
      kept_seconds += slot < C;
    }
    CU_ASSERT_EQUAL(r.dropped, dropped);
    dropped_total += dropped;
    ts_moe_route_free(&r);
    gsl_rng_free(g);
    gsl_rng_free(h);
  }
  CU_ASSERT(kept_seconds > 1000); /* the cases exercise both outcomes */
  CU_ASSERT(dropped_total > 1000);
  gsl_rng_free(src);
}

static void test_capacity(void) {
  CU_ASSERT_EQUAL(ts_moe_capacity(8, 4, 1.0, 1), 2);
  CU_ASSERT_EQUAL(ts_moe_capacity(8, 4, 1.0, 4), 4);
  CU_ASSERT_EQUAL(ts_moe_capacity(4096, 16, 1.25, 4), 320);
  CU_ASSERT_EQUAL(ts_moe_capacity(100, 8, 1.0, 4), 16); /* ceil(12.5) = 13 -> 16 */
  CU_ASSERT_EQUAL(ts_moe_capacity(100, 8, 2.0, 1), 25);
}

/* A MoE job: 2 layers (layer 1 is MoE), h = 1024, f = 4096, 2 x 1024 tokens
** per micro-batch and lane, 8 experts over 4 lanes, 2 micro-batches. */
static int moe_job(const char *plat, const char *moe_extra, const char *const *sets, int n_sets,
                   ts_job_t **job, ts_outcome_t *o, ts_err_t *err) {
  char json[2048];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 1024, \"heads\": 8,"
           " \"vocab\": 8, \"moe\": {\"experts\": 8, \"expert_parallel\": 4%s}},"
           " \"platform\": \"%s\", \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": 2,"
           " \"seq_len\": 1024, \"micro_batch_size\": 2}",
           moe_extra, plat);
  return th_simulate(json, sets, n_sets, job, o, err);
}

static void test_table_skew(void) {
  const char *table = th_write_tmp("{\"probabilities\": [1, 0, 0, 0, 0, 0, 0, 0]}", ".json");
  char extra[256];
  snprintf(extra, sizeof extra,
           ", \"group_size\": 128, \"capacity_factor\": 1.0, \"routing\": {\"skew\": \"table\", "
           "\"table\": \"%s\"}",
           table);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = moe_job("ideal", extra, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  /* C = ceil(128 / 8) = 16; 2048 / 128 = 16 groups per micro-batch and
  ** lane; 2 micro-batches x 4 lanes */
  const ts_metrics_t *m = o.metrics;
  CU_ASSERT_EQUAL(m->expert_load[0], 16 * 16 * 2 * 4);
  for (int e = 1; e < 8; e++) CU_ASSERT_EQUAL(m->expert_load[e], 0);
  CU_ASSERT_EQUAL(m->tokens_dropped, (128 - 16) * 16 * 2 * 4);
  TS_ASSERT_REL(m->expert_imbalance, 8.0, 1e-12);
  TS_ASSERT_REL(m->aux_loss, 8.0, 1e-12); /* E^2 x (1 x 1) / E */
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(table);
}

static void test_zipf_imbalance(void) {
  ts_job_t *ju, *jz;
  ts_outcome_t ou, oz;
  ts_err_t err = {0};
  const char *plat = TS_SOURCE_DIR "/platforms/dgx-a100-2node.xml";
  CU_ASSERT_EQUAL_FATAL(moe_job(plat, "", NULL, 0, &ju, &ou, &err), 0);
  CU_ASSERT_EQUAL_FATAL(moe_job(plat, ", \"routing\": {\"skew\": \"zipf\", \"exponent\": 1.2}",
                                NULL, 0, &jz, &oz, &err),
                        0);
  CU_ASSERT(ou.metrics->expert_imbalance < 1.15);
  CU_ASSERT(oz.metrics->expert_imbalance > 2.0);
  CU_ASSERT(oz.metrics->tokens_dropped > 2 * ou.metrics->tokens_dropped);
  CU_ASSERT(oz.metrics->aux_loss > ou.metrics->aux_loss);
  CU_ASSERT(oz.metrics->moe_forward_s > ou.metrics->moe_forward_s);
  CU_ASSERT(ou.metrics->alltoall_share > 0);
  ts_outcome_free(&ou);
  ts_outcome_free(&oz);
  ts_job_free(ju);
  ts_job_free(jz);
}

/* Layer spans when one lane's experts get every token, on the ideal
** platform (all-to-alls take no time): the other lane's experts compute
** nothing, so in the backward its combine-gradient call ends at the instant
** its dispatch-gradient call starts, and that call then waits for lane 0's
** experts.  Each device's MoE layer spans lane 0's expert time, forward and
** backward; the backward once came out halved, the zero-length call sorted
** after the waiting one and closing the pair at its start. */
static void test_layer_span_idle_lane(void) {
  const char *table = th_write_tmp("{\"probabilities\": [1, 0, 0, 0]}", ".json");
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, \"heads\": 1,"
           " \"vocab\": 8, \"moe\": {\"experts\": 4, \"expert_parallel\": 2, \"routing\":"
           " {\"skew\": \"table\", \"table\": \"%s\"}}}, \"platform\": \"ideal\","
           " \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": 1, \"seq_len\": 64}",
           table);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double ex[2] = {0, 0};
  int n[2] = {0, 0};
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (!(e->flags & TS_EVF_EXPERT)) continue;
    int b = e->kind == TS_BACKWARD;
    if (e->device == 0) ex[b] += e->end - e->start;
    if (e->device == 1) CU_ASSERT_EQUAL(e->end, e->start); /* no tokens */
    n[b]++;
  }
  CU_ASSERT_EQUAL(n[0], 2);
  CU_ASSERT_EQUAL(n[1], 2);
  CU_ASSERT(ex[0] > 0 && ex[1] > 0);
  TS_ASSERT_REL(o.metrics->moe_forward_s, ex[0], 1e-12);
  TS_ASSERT_REL(o.metrics->moe_backward_s, ex[1], 1e-12);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(table);
}

static int count_str(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static char *write_to_string(int (*fn)(const ts_result_t *, FILE *), const ts_result_t *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CU_ASSERT_EQUAL(fn(r, f), 0);
  fclose(f);
  return buf;
}

/* The all-to-all call spans (peer = the device itself, 0 bytes) are told
** apart from the flows in trace.json and gantt.svg: one "call" event per
** call, and no flow "to device d" from device d. */
static void test_call_spans_in_outputs(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(moe_job("ideal", "", NULL, 0, &job, &o, &err), 0);
  int calls = 0, flows = 0;
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (e->flags & TS_EVF_A2A_CALL) {
      calls++;
      CU_ASSERT_EQUAL(e->peer, e->device);
      CU_ASSERT_EQUAL(e->bytes, 0.0);
    } else if (e->kind == TS_SEND_DISPATCH || e->kind == TS_SEND_COMBINE) {
      flows++;
      CU_ASSERT_NOT_EQUAL(e->peer, e->device);
    }
  }
  /* 4 devices x 2 micro-batches x 4 calls; 3 flows per call */
  CU_ASSERT_EQUAL(calls, 4 * 2 * 4);
  CU_ASSERT_EQUAL(flows, 3 * calls);
  char *trace = write_to_string(ts_write_trace_json, &o.r);
  CU_ASSERT_EQUAL(count_str(trace, "call 1\"") + count_str(trace, "call 2\""), calls);
  CU_ASSERT_EQUAL(count_str(trace, "\"name\":\"dispatch 1\"") +
                      count_str(trace, "\"name\":\"dispatch 2\"") +
                      count_str(trace, "\"name\":\"combine 1\"") +
                      count_str(trace, "\"name\":\"combine 2\""),
                  flows);
  char *svg = write_to_string(ts_write_gantt_svg, &o.r);
  CU_ASSERT_EQUAL(count_str(svg, "all-to-all call ("), calls);
  int xfers = 0; /* every transfer but the calls says where it goes */
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    xfers += ts_kind_is_transfer(e->kind) && !(e->flags & TS_EVF_A2A_CALL);
  }
  CU_ASSERT_EQUAL(count_str(svg, " to device "), xfers);
  free(trace);
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* Seeding: every (MoE layer, micro-batch, lane) cell draws its own routing
** (pairwise different demand per expert), and lane r's routing does not
** depend on how many lanes there are. */
static void test_routing_cells_independent(void) {
  ts_job_t *job, *job2;
  ts_outcome_t o, o2;
  ts_err_t err = {0};
  const char *four[] = {"model.layers=4"};
  const char *two[] = {"model.layers=4", "model.moe.expert_parallel=2"};
  CU_ASSERT_EQUAL_FATAL(moe_job("ideal", "", four, 1, &job, &o, &err), 0);
  CU_ASSERT_EQUAL_FATAL(moe_job("ideal", "", two, 2, &job2, &o2, &err), 0);
  const ts_moe_cost_t *mc = o.cost->moe, *m2 = o2.cost->moe;
  CU_ASSERT_EQUAL_FATAL(mc->n_layers, 2);
  int cells = mc->n_layers * mc->M * mc->lanes, E = mc->E;
  CU_ASSERT_EQUAL_FATAL(cells, 2 * 2 * 4);
  for (int a = 0; a < cells; a++)
    for (int b = a + 1; b < cells; b++)
      CU_ASSERT(memcmp(mc->wanted + (size_t)a * E, mc->wanted + (size_t)b * E,
                       (size_t)E * sizeof(int)) != 0);
  for (int j = 0; j < 2; j++)
    for (int mb = 0; mb < 2; mb++)
      for (int r = 0; r < 2; r++)
        CU_ASSERT(memcmp(mc->wanted + (((size_t)j * 2 + mb) * 4 + r) * E,
                         m2->wanted + (((size_t)j * 2 + mb) * 2 + r) * E,
                         (size_t)E * sizeof(int)) == 0);
  ts_outcome_free(&o);
  ts_outcome_free(&o2);
  ts_job_free(job);
  ts_job_free(job2);
}

/* The EP devices of a stage all-reduce their replicated (non-expert)
** gradients in a ring (the runtime's data-parallel mechanism, without
** buckets): 2 (n - 1) steps of (gradient bytes - expert bytes) / n per
** device. */
static void test_replicated_allreduce(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  /* One collective after the backward, not buckets (README "Data
  ** parallelism"): the steps then carry the whole buffer's slices. */
  static const char *const one[] = {"overlap_grad_reduce=false"};
  CU_ASSERT_EQUAL_FATAL(moe_job("ideal", "", one, 1, &job, &o, &err), 0);
  const ts_part_cost_t *pc = &o.cost->part[0];
  double expert = o.cost->moe->expert_params[0] * job->bytes_per_element;
  /* 1 MoE layer, 2 of the 8 experts per device: 2 x (2 h f + f + h) */
  TS_ASSERT_REL(o.cost->moe->expert_params[0], 2.0 * (2 * 1024 * 4096 + 4096 + 1024), 1e-15);
  double step = (pc->gradients_bytes - expert) / 4;
  int steps[4] = {0};
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (e->kind != TS_SEND_COLL) continue;
    steps[e->device]++;
    TS_ASSERT_REL(e->bytes, step, 1e-12);
    CU_ASSERT_EQUAL(e->peer, (e->device + 1) % 4);
  }
  for (int d = 0; d < 4; d++) CU_ASSERT_EQUAL(steps[d], 2 * 3);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* alltoall "tokens" under skew, where the two directions of a pair differ:
** the forward dispatch and the combine's gradient carry the sender's tokens
** kept at the receiver's experts, the forward combine and the dispatch's
** gradient carry the receiver's tokens back. */
static void test_alltoall_directions(void) {
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  const char *one_mb[] = {"microbatches=1"};
  int rc = moe_job("ideal", ", \"alltoall\": \"tokens\", \"routing\": {\"skew\": \"zipf\","
                   " \"exponent\": 1.5}", one_mb, 1, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const ts_moe_cost_t *mc = o.cost->moe;
  double tb = mc->token_bytes;
  int seen[2][4][4] = {{{0}}}, asym = 0;
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if ((e->kind != TS_SEND_DISPATCH && e->kind != TS_SEND_COMBINE) ||
        (e->flags & TS_EVF_A2A_CALL))
      continue;
    int k = e->kind == TS_SEND_COMBINE, d = e->device, q = e->peer;
    int n = seen[k][d][q]++; /* 0: forward, 1: backward */
    /* dispatch fwd, combine bwd: d's own tokens; combine fwd, dispatch bwd: q's */
    bool own = (k == 0) == (n == 0);
    int rows = own ? ts_moe_tokens(mc, 0, 0, d, q) : ts_moe_tokens(mc, 0, 0, q, d);
    TS_ASSERT_REL(e->bytes, rows * tb, 1e-15);
    asym += ts_moe_tokens(mc, 0, 0, d, q) != ts_moe_tokens(mc, 0, 0, q, d);
  }
  for (int k = 0; k < 2; k++)
    for (int d = 0; d < 4; d++)
      for (int q = 0; q < 4; q++) CU_ASSERT_EQUAL(seen[k][d][q], d == q ? 0 : 2);
  CU_ASSERT(asym > 0); /* the case tells the directions apart */
  ts_outcome_free(&o);
  ts_job_free(job);
}

static char *summary_text(const ts_outcome_t *o) {
  cJSON *j = ts__summary_json(&o->r);
  char *s = cJSON_Print(j);
  cJSON_Delete(j);
  return s;
}

static void test_determinism(void) {
  ts_job_t *j1, *j2, *j3;
  ts_outcome_t o1, o2, o3;
  ts_err_t err = {0};
  const char *plat = TS_SOURCE_DIR "/platforms/dgx-a100-2node.xml";
  const char *zipf = ", \"routing\": {\"skew\": \"zipf\", \"seed\": 5}";
  const char *zipf6 = ", \"routing\": {\"skew\": \"zipf\", \"seed\": 6}";
  CU_ASSERT_EQUAL_FATAL(moe_job(plat, zipf, NULL, 0, &j1, &o1, &err), 0);
  CU_ASSERT_EQUAL_FATAL(moe_job(plat, zipf, NULL, 0, &j2, &o2, &err), 0);
  CU_ASSERT_EQUAL_FATAL(moe_job(plat, zipf6, NULL, 0, &j3, &o3, &err), 0);
  char *a = summary_text(&o1), *b = summary_text(&o2), *c = summary_text(&o3);
  /* the job file names differ (temporary files): compare from "iteration" */
  CU_ASSERT_STRING_EQUAL(strstr(a, "\"iteration_time_s\""), strstr(b, "\"iteration_time_s\""));
  CU_ASSERT(strcmp(strstr(a, "\"iteration_time_s\""), strstr(c, "\"iteration_time_s\"")) != 0);
  free(a);
  free(b);
  free(c);
  ts_outcome_t *os[3] = {&o1, &o2, &o3};
  ts_job_t *js[3] = {j1, j2, j3};
  for (int i = 0; i < 3; i++) {
    ts_outcome_free(os[i]);
    ts_job_free(js[i]);
  }
}

/* n hosts on a star: each behind its own SPLITDUPLEX link (B, L), no
** backbone; speed 1e12. */
static const char *star_platform(int n) {
  static char xml[1024];
  snprintf(xml, sizeof xml,
           "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
           "<platform version=\"4.1\">\n<cluster id=\"c\" prefix=\"h\" suffix=\"\" radical=\"0-%d\""
           " speed=\"1e12f\" bw=\"10GBps\" lat=\"3us\" sharing_policy=\"SPLITDUPLEX\"/>\n</platform>\n",
           n - 1);
  return th_write_tmp(xml, ".xml");
}

static void test_alltoall_closed_form(void) {
  const char *plat = star_platform(4);
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, \"heads\": 1,"
           " \"ffn_hidden\": 256, \"vocab\": 8, \"moe\": {\"experts\": 4, \"expert_parallel\": 4,"
           " \"alltoall\": \"tokens\"}},"
           " \"platform\": \"%s\", \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": 1,"
           " \"seq_len\": 256}",
           plat);
  ts_job_t *job;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
  const ts_schedule_t *s = ts_schedule_find("gshard");
  ts_plan_t *lay = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_plan_for_job(job, s, &lay, &err), 0);
  ts_cost_t *cost;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, 1, &cost, &err), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cost->moe);
  /* Equal routing: every lane keeps K tokens at every expert. */
  const int K = 100;
  ts_moe_cost_t *mc = cost->moe;
  for (int r = 0; r < 4; r++)
    for (int e = 0; e < 4; e++) mc->kept[r * 4 + e] = K;
  ts_run_t *run;
  CU_ASSERT_EQUAL_FATAL(ts_sim_run(job, s, lay, cost, &run, &err), 0);
  double S = K * 64 * 2.0, B = 10e9, L = 3e-6;
  double a2a = 2 * L + 3 * S / B;
  double tok = 4.0 * K, expert_f = tok * 2 * 2 * 64 * 256 / 1e12;
  int n_calls = 0, n_exp = 0;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    if (e->flags & TS_EVF_A2A_CALL) {
      TS_ASSERT_REL(e->end - e->start, a2a, 1e-9);
      n_calls++;
    } else if (e->flags & TS_EVF_EXPERT) {
      TS_ASSERT_REL(e->end - e->start, e->kind == TS_FORWARD ? expert_f : 2 * expert_f, 1e-9);
      n_exp++;
    } else if (e->kind == TS_SEND_DISPATCH) {
      TS_ASSERT_REL(e->bytes, S, 1e-15);
    }
  }
  CU_ASSERT_EQUAL(n_calls, 4 * 4); /* 4 devices x (dispatch, combine) x (fwd, bwd) */
  CU_ASSERT_EQUAL(n_exp, 4 * 2);
  ts_run_free(run);
  ts_cost_free(cost);
  ts_plan_free(lay);
  ts_job_free(job);
  unlink(plat);
}

static void test_nvlink_vs_ib(void) {
  /* The same 4 lanes on one node (NVLink) and split over two (InfiniBand). */
  const char *plat = TS_SOURCE_DIR "/platforms/dgx-a100-2node.xml";
  const char *one[] = {"placement=[\"node0-gpu0\",\"node0-gpu1\",\"node0-gpu2\",\"node0-gpu3\"]"};
  const char *two[] = {"placement=[\"node0-gpu0\",\"node0-gpu1\",\"node1-gpu0\",\"node1-gpu1\"]"};
  ts_job_t *j1, *j2;
  ts_outcome_t o1, o2;
  ts_err_t err = {0};
  int rc = moe_job(plat, "", one, 1, &j1, &o1, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL_FATAL(moe_job(plat, "", two, 1, &j2, &o2, &err), 0);
  CU_ASSERT_EQUAL(o1.metrics->tokens_dropped, o2.metrics->tokens_dropped);
  CU_ASSERT(o2.metrics->alltoall_share > 2 * o1.metrics->alltoall_share);
  CU_ASSERT(o2.metrics->moe_forward_s > o1.metrics->moe_forward_s);
  ts_outcome_free(&o1);
  ts_outcome_free(&o2);
  ts_job_free(j1);
  ts_job_free(j2);
}

static void test_pipeline_composes(void) {
  /* 2 stages x EP 4 = 8 devices; 4 layers: MoE layers 1 and 3, one per stage. */
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 64, \"heads\": 1,"
           " \"vocab\": 8, \"moe\": {\"experts\": 8, \"expert_parallel\": 4}},"
           " \"platform\": \"%s\", \"schedule\": \"gshard\", \"stages\": 2, \"microbatches\": 4,"
           " \"seq_len\": 128}",
           TS_SOURCE_DIR "/platforms/dgx-a100-2node.xml");
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(o.run->n_devices, 8);
  CU_ASSERT_EQUAL(o.cost->moe->n_layers, 2);
  int acts = 0, calls = 0;
  /* alltoall "capacity": every flow carries E/EP x groups x C padded rows:
  ** 2 experts x 1 group x ceil(128 x 2.0 / 8) = 32 slots of h x 2 bytes */
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if ((e->kind == TS_SEND_DISPATCH || e->kind == TS_SEND_COMBINE) && e->peer != e->device)
      TS_ASSERT_REL(e->bytes, 2 * 32 * 64 * 2.0, 1e-15);
    if (e->kind == TS_SEND_ACT) {
      acts++;
      CU_ASSERT_EQUAL(e->peer, e->device + 4); /* within the lane */
    }
    calls += (e->flags & TS_EVF_A2A_CALL) != 0;
  }
  CU_ASSERT_EQUAL(acts, 4 * 4);
  CU_ASSERT_EQUAL(calls, 8 * 4 * 4);
  CU_ASSERT(o.metrics->dev[0].peak_inflight == 2); /* 1F1B: stage 0 holds p = 2 */
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* gshard-gpipe: the same 2 stages x EP 4 in GPipe order: on every device
** every forward piece precedes every backward piece, backwards run the last
** micro-batch first, and stage 0 holds all m = 4 micro-batches (1F1B: 2);
** the all-to-all calls are the same in number. */
static void test_pipeline_gpipe(void) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 64, \"heads\": 1,"
           " \"vocab\": 8, \"moe\": {\"experts\": 8, \"expert_parallel\": 4}},"
           " \"platform\": \"%s\", \"schedule\": \"gshard-gpipe\", \"stages\": 2,"
           " \"microbatches\": 4, \"seq_len\": 128}",
           TS_SOURCE_DIR "/platforms/dgx-a100-2node.xml");
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  int calls = 0;
  for (int d = 0; d < o.run->n_devices; d++) {
    int last_fwd_seq = -1, first_bwd_seq = 1 << 30, first_bwd_mb = -1, first_bwd_at = 1 << 30;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device != d || !ts_kind_is_compute(e->kind)) continue;
      if (e->kind == TS_FORWARD && e->seq > last_fwd_seq) last_fwd_seq = e->seq;
      if (e->kind == TS_BACKWARD && e->seq < first_bwd_seq) first_bwd_seq = e->seq;
      if (e->kind == TS_BACKWARD && e->seq < first_bwd_at) first_bwd_at = e->seq, first_bwd_mb = e->mb;
    }
    CU_ASSERT(last_fwd_seq < first_bwd_seq);
    CU_ASSERT_EQUAL(first_bwd_mb, 3);
    CU_ASSERT_EQUAL(o.metrics->dev[d].peak_inflight, 4);
  }
  for (int i = 0; i < o.run->n_events; i++) calls += (o.run->events[i].flags & TS_EVF_A2A_CALL) != 0;
  CU_ASSERT_EQUAL(calls, 8 * 4 * 4);
  ts_outcome_free(&o);
  ts_job_free(job);
  /* A model with model.moe on a schedule without MoE layers is refused. */
  const char *dense[] = {"schedule=1f1b"};
  CU_ASSERT_EQUAL(th_simulate(json, dense, 1, &job, &o, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "needs schedule \"gshard\" or \"gshard-gpipe\""));
}

static void test_mixtral_config(void) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": \"%s/tests/jobs/mixtral-config.json\", \"platform\": \"ideal\","
           " \"schedule\": \"gshard\", \"stages\": 4, \"microbatches\": 4, \"seq_len\": 1024}",
           TS_SOURCE_DIR);
  ts_job_t *job;
  ts_err_t err = {0};
  const char *sets[] = {"model.moe.expert_parallel=8", "model.moe.routing.skew=zipf"};
  int rc = th_job_from_json(json, sets, 2, &job, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(job->model.moe.experts, 8);
  CU_ASSERT_EQUAL(job->model.moe.every, 1);
  CU_ASSERT_EQUAL(job->model.moe.expert_ffn, 14336);
  CU_ASSERT_EQUAL(job->model.moe.expert_parallel, 8);
  CU_ASSERT_EQUAL(job->model.moe.skew, TS_MOE_ZIPF);
  CU_ASSERT(job->model.gated_mlp);
  ts_job_free(job);
  /* {"config": path, overrides}: moe fields merged into the translation */
  snprintf(json, sizeof json,
           "{\"model\": {\"config\": \"%s/tests/jobs/mixtral-config.json\", \"layers\": 8,"
           " \"moe\": {\"expert_parallel\": 4, \"routing\": {\"seed\": 9}}},"
           " \"platform\": \"ideal\", \"schedule\": \"gshard\", \"stages\": 2, \"microbatches\": 2,"
           " \"seq_len\": 256}",
           TS_SOURCE_DIR);
  err = (ts_err_t){0};
  rc = th_job_from_json(json, NULL, 0, &job, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(job->model.layers, 8);
  CU_ASSERT_EQUAL(job->model.moe.experts, 8);
  CU_ASSERT_EQUAL(job->model.moe.expert_parallel, 4);
  CU_ASSERT_EQUAL(job->model.moe.seed, 9);
  CU_ASSERT_EQUAL(job->model.hidden, 4096);
  ts_job_free(job);
  snprintf(json, sizeof json,
           "{\"model\": {\"config\": \"%s/tests/jobs/mixtral-config.json\","
           " \"moe\": {\"expert_parallel\": 3}},"
           " \"platform\": \"ideal\", \"schedule\": \"gshard\", \"stages\": 2, \"microbatches\": 2}",
           TS_SOURCE_DIR);
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(th_job_from_json(json, NULL, 0, &job, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "model.moe.expert_parallel"));
  snprintf(json, sizeof json,
           "{\"model\": \"%s/tests/jobs/mixtral-top1-config.json\", \"platform\": \"ideal\","
           " \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": 1}",
           TS_SOURCE_DIR);
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(th_job_from_json(json, NULL, 0, &job, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mixtral-top1-config.json: num_experts_per_tok"));
  /* one local expert: the config file is at fault, not the job */
  const char *one = th_write_tmp(
      "{\"model_type\": \"mixtral\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
      " \"num_attention_heads\": 1, \"vocab_size\": 8, \"num_local_experts\": 1}",
      ".json");
  snprintf(json, sizeof json,
           "{\"model\": \"%s\", \"platform\": \"ideal\", \"schedule\": \"gshard\","
           " \"stages\": 1, \"microbatches\": 1, \"seq_len\": 64}",
           one);
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(th_job_from_json(json, NULL, 0, &job, &err), EX_DATAERR);
  char want[600];
  snprintf(want, sizeof want, "%s: num_local_experts", one);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
  if (!strstr(err.msg, want)) fprintf(stderr, "got: %s\n", err.msg);
  unlink(one);
}

/* Broken MoE programs are caught by the runtime. */
static void bad_dispatch_first(ts_rt_t *rt) { /* all-to-all before the gate */
  int v = ts_rt_ctx(rt)->local[0];
  ts_rt_moe_alltoall(rt, TS_FORWARD, TS_SEND_DISPATCH, v, 0);
}
static void bad_skip_combine(ts_rt_t *rt) { /* experts, then the next segment */
  int v = ts_rt_ctx(rt)->local[0];
  ts_rt_moe_compute(rt, TS_FORWARD, v, 0, 0);
  ts_rt_moe_alltoall(rt, TS_FORWARD, TS_SEND_DISPATCH, v, 0);
  ts_rt_moe_compute(rt, TS_FORWARD, v, 0, 1);
  ts_rt_moe_compute(rt, TS_FORWARD, v, 0, 2);
}
static void bad_unfinished(ts_rt_t *rt) { /* a forward left half done */
  int v = ts_rt_ctx(rt)->local[0];
  ts_rt_moe_compute(rt, TS_FORWARD, v, 0, 0);
}

static void test_runtime_checks(void) {
  void (*progs[])(ts_rt_t *) = {bad_dispatch_first, bad_skip_combine, bad_unfinished};
  const char *want[] = {"dispatch of stage 0 micro-batch 0 out of order",
                        "a piece out of order", "without the forward"};
  char json[512];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, \"heads\": 1,"
           " \"vocab\": 8, \"moe\": {\"experts\": 4, \"expert_parallel\": 2}},"
           " \"platform\": \"ideal\", \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": 1,"
           " \"seq_len\": 64}");
  ts_job_t *job;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(json, NULL, 0, &job, &err), 0);
  const ts_schedule_t *g = ts_schedule_find("gshard");
  ts_plan_t *lay = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_plan_for_job(job, g, &lay, &err), 0);
  ts_cost_t *cost;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, 1, &cost, &err), 0);
  for (int i = 0; i < 3; i++) {
    ts_schedule_t s = *g;
    s.program = progs[i];
    ts_run_t *run = NULL;
    err = (ts_err_t){0};
    CU_ASSERT_EQUAL(ts_sim_run(job, &s, lay, cost, &run, &err), EX_SOFTWARE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want[i]));
    if (!strstr(err.msg, want[i])) fprintf(stderr, "got: %s\n", err.msg);
    ts_run_free(run);
  }
  ts_cost_free(cost);
  ts_plan_free(lay);
  ts_job_free(job);
}

static void bad(const char *moe, const char *sched, const char *const *sets, int n_sets, int code,
                const char *want) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, \"heads\": 1,"
           " \"vocab\": 8, \"moe\": %s}, \"platform\": \"ideal\", \"schedule\": \"%s\","
           " \"stages\": 1, \"microbatches\": 1, \"seq_len\": 64}",
           moe, sched);
  const char *path = th_write_tmp(json, ".json");
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_job_load(path, sets, n_sets, &job, &err), code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
  CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  if (!strstr(err.msg, want)) fprintf(stderr, "got: %s\n", err.msg);
  ts_job_free(job);
  unlink(path);
}

static void test_bad_input(void) {
  bad("{\"experts\": 6, \"expert_parallel\": 4}", "gshard", NULL, 0, EX_DATAERR,
      "model.moe.expert_parallel: 6 experts");
  bad("{\"experts\": 4, \"group_size\": 7}", "gshard", NULL, 0, EX_DATAERR, "model.moe.group_size");
  bad("{\"experts\": 4, \"routing\": {\"skew\": \"pareto\"}}", "gshard", NULL, 0, EX_DATAERR,
      "model.moe.routing.skew");
  bad("{\"experts\": 4, \"routing\": {\"skew\": \"table\"}}", "gshard", NULL, 0, EX_DATAERR,
      "model.moe.routing.table: missing");
  bad("{\"experts\": 4, \"routing\": {\"skew\": \"table\", \"table\": \"/nonexistent.json\"}}",
      "gshard", NULL, 0, EX_NOINPUT, "model.moe.routing.table: no such file");
  bad("{\"experts\": 4}", "1f1b", NULL, 0, EX_DATAERR, "schedule \"gshard\"");
  bad("{\"experts\": 1}", "gshard", NULL, 0, EX_DATAERR, "model.moe.experts");
  bad("{\"experts\": 4, \"capacity_factor\": 0}", "gshard", NULL, 0, EX_DATAERR,
      "model.moe.capacity_factor");
  bad("{\"experts\": 4, \"top_k\": 1}", "gshard", NULL, 0, EX_DATAERR, "model.moe.top_k: unknown");
  bad("{\"experts\": 4, \"every\": 3}", "gshard", NULL, 0, EX_DATAERR, "model.moe.every");
  bad("{\"experts\": 4, \"alltoall\": \"dense\"}", "gshard", NULL, 0, EX_DATAERR,
      "model.moe.alltoall");
  const char *set1[] = {"model.moe.top_k=1"};
  bad("{\"experts\": 4}", "gshard", set1, 1, EX_USAGE, "unknown model.moe field 'top_k'");
  const char *set2[] = {"model.moe.routing.skew=pareto"};
  bad("{\"experts\": 4}", "gshard", set2, 1, EX_DATAERR, "model.moe.routing.skew");
  /* a table of the wrong length names the table file and the job */
  const char *table = th_write_tmp("{\"probabilities\": [1, 2]}", ".json");
  char moe[256];
  snprintf(moe, sizeof moe, "{\"experts\": 4, \"routing\": {\"skew\": \"table\", \"table\": \"%s\"}}",
           table);
  bad(moe, "gshard", NULL, 0, EX_DATAERR, table);
  unlink(table);
}

TS_TESTS{TS_TEST(test_gate_hand),          TS_TEST(test_gate_random_policy),
         TS_TEST(test_gate_second_queue_rule),
         TS_TEST(test_capacity),           TS_TEST(test_table_skew),
         TS_TEST(test_zipf_imbalance),     TS_TEST(test_layer_span_idle_lane),
         TS_TEST(test_call_spans_in_outputs),
         TS_TEST(test_routing_cells_independent),
         TS_TEST(test_replicated_allreduce),
         TS_TEST(test_alltoall_directions),
         TS_TEST(test_determinism),
         TS_TEST(test_alltoall_closed_form), TS_TEST(test_nvlink_vs_ib),
         TS_TEST(test_pipeline_composes), TS_TEST(test_pipeline_gpipe),  TS_TEST(test_mixtral_config),
         TS_TEST(test_runtime_checks),     TS_TEST(test_bad_input)};
TS_TEST_MAIN("moe")
