/*
** test_memory.c: model states and activation memory of a transformer
** against shared/notes/formulas.md and README "Memory", worked by hand here.
**
** Model: l = 4 layers, h = 1024, a = 16 heads, V = 50000, s = 512, b = 2,
** 2 bytes per element, split over p = 2 stages of 2 layers; sbh = 1,048,576.
**   parameters per layer  12 h^2 + 13 h = 12,596,224
**   stage 0 adds (V + s) h = 51,724,288; stage 1 a tied copy V h = 51,200,000
**   whole model           12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)) = 102,109,184
**   mixed-precision Adam  2 + 2 + 12 bytes per parameter
**   activations per layer s b h (34 + 5 a s / h) = 1,048,576 x 74 = 77,594,624
**                          (no flash attention, dropout)
**                         32 s b h = 33,554,432 (flash attention, no dropout)
**   stage 0 also keeps    token ids 8 s b = 8,192 and the embedding dropout
**                         mask s b h = 1,048,576 (1,056,768; 8,192 without
**                         dropout)
**   stage 1 also keeps    final LN and LM-head inputs 2 s b h e = 4,194,304 and
**                         the fp32 softmax 4 s b V = 204,800,000 (208,994,304)
**   stash per micro-batch stage 0: 2 x 77,594,624 + 1,056,768 = 156,246,016
**                         stage 1: 155,189,248 + 208,994,304 = 364,183,552
**   full recompute keeps  s b h e = 2,097,152 + the above (stage 0 3,153,920,
**                         stage 1 211,091,456); a recompute adds 2 layers
**                         (155,189,248)
**   forward transient     stage 0: its output s b h e = 2,097,152; stage 1:
**                         the logits s b V e = 102,400,000
**   backward transient    s b e (2 h + W): W = max((k - 1) f, 3 h + 2 a s) =
**                         19,456 without flash attention (4,096 with), on
**                         stage 1 max(W, V) = 50,000: stage 0 44,040,192
**                         (flash: 12,582,912), stage 1 106,594,304
*/
#include "tshelp.h"
#include "tsunit.h"

static const char *job_text(const char *sched, int m, bool flash, bool dropout, bool rec,
                            const char *platform) {
  static char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 1024, \"heads\": 16,"
           " \"vocab\": 50000, \"flash_attention\": %s, \"dropout\": %s},"
           " \"platform\": \"%s\", \"schedule\": \"%s\", \"stages\": 2, \"microbatches\": %d,"
           " \"seq_len\": 512, \"micro_batch_size\": 2, \"recompute\": \"%s\"}",
           flash ? "true" : "false", dropout ? "true" : "false", platform, sched, m,
           rec ? "full" : "none");
  return json;
}

static void run(const char *json, ts_job_t **job, ts_outcome_t *o) {
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, job, o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

static const double layer_params = 12.0 * 1024 * 1024 + 13 * 1024;   /* 12,596,224 */
static const double act_layer = 512.0 * 2 * 1024 * (34 + 5.0 * 16 * 512 / 1024);
static const double sbh = 512.0 * 2 * 1024;
static const double keep0 = 8.0 * 512 * 2 + 512.0 * 2 * 1024;     /* ids, dropout mask */
static const double keep1 = 2.0 * 512 * 2 * 1024 * 2 + 4.0 * 512 * 2 * 50000; /* head */
static const double bwd0 = 512.0 * 2 * (2 * 1024 + 19456) * 2;
static const double bwd1 = 512.0 * 2 * (2 * 1024 + 50000) * 2;

static void test_model_states(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("gpipe", 4, false, true, false, "ideal"), &job, &o);
  CU_ASSERT_EQUAL(layer_params, 12596224.0);
  double p0 = 2 * layer_params + (50000.0 + 512) * 1024; /* embeddings on stage 0 */
  double p1 = 2 * layer_params + 50000.0 * 1024;         /* tied LM head copy */
  TS_ASSERT_REL(o.cost->model_params, 102109184.0, 1e-15);
  double l = 4, h = 1024, s = 512, V = 50000;
  TS_ASSERT_REL(o.cost->model_params,
                12 * l * h * h * (1 + 13 / (12 * h) + (V + s) / (12 * l * h)), 1e-12);
  TS_ASSERT_REL(o.metrics->dev[0].weights_bytes, 2 * p0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[0].gradients_bytes, 2 * p0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[0].optimizer_bytes, 12 * p0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].weights_bytes, 2 * p1, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].optimizer_bytes, 12 * p1, 1e-15);
  /* GPipe holds all m = 4 micro-batches at its peak, the first backward's
  ** transient on top. */
  CU_ASSERT_EQUAL(act_layer, 77594624.0);
  CU_ASSERT_EQUAL(keep0, 1056768.0);
  CU_ASSERT_EQUAL(keep1, 208994304.0);
  CU_ASSERT_EQUAL(bwd0, 44040192.0);
  CU_ASSERT_EQUAL(bwd1, 106594304.0);
  for (int d = 0; d < 2; d++) {
    double act = 4 * (2 * act_layer + (d ? keep1 : keep0)) + (d ? bwd1 : bwd0);
    TS_ASSERT_REL(o.metrics->dev[d].peak_activation_bytes, act, 1e-15);
    double states = 16 * (d ? p1 : p0);
    TS_ASSERT_REL(o.metrics->dev[d].peak_memory_bytes, states + act, 1e-15);
    /* Memory over time returns to zero once every backward freed its stash. */
    const ts_device_metrics_t *dm = &o.metrics->dev[d];
    CU_ASSERT_EQUAL(dm->mem_bytes[dm->n_mem - 1], 0.0);
    CU_ASSERT_TRUE(dm->fits); /* the ideal platform has no capacity */
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_1f1b_activations(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("1f1b", 4, false, true, false, "ideal"), &job, &o);
  /* min(p - s, m) micro-batches: 2 at stage 0, 1 at stage 1, and the
  ** backward's transient (stage 1: the logits' gradient). */
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 2 * (2 * act_layer + keep0) + bwd0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 356532224.0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].peak_activation_bytes, 1 * (2 * act_layer + keep1) + bwd1, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].peak_activation_bytes, 470777856.0, 1e-15);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_flash_no_dropout(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("1f1b", 4, true, false, false, "ideal"), &job, &o);
  double l32 = 32.0 * 512 * 2 * 1024;
  CU_ASSERT_EQUAL(l32, 33554432.0);
  /* no dropout mask; the MLP's gradients (net f) are the largest */
  double b32 = 512.0 * 2 * (2 * 1024 + 4096) * 2;
  CU_ASSERT_EQUAL(b32, 12582912.0);
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 2 * (2 * l32 + 8192) + b32, 1e-15);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_full_recompute(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("gpipe", 4, false, true, true, "ideal"), &job, &o);
  /* All 4 stage inputs stashed (with the embedding's and the LM head's
  ** tensors, which are not recomputed), plus one micro-batch's layers
  ** re-materialised for its backward and that backward's transient. */
  double in = 512.0 * 2 * 1024 * 2;
  TS_ASSERT_REL(o.cost->part[0].act_input_bytes, in + keep0, 1e-15);
  TS_ASSERT_REL(o.cost->part[1].act_input_bytes, in + keep1, 1e-15);
  for (int d = 0; d < 2; d++) {
    TS_ASSERT_REL(o.cost->part[d].rec_bytes, 2 * act_layer, 1e-15);
    TS_ASSERT_REL(o.metrics->dev[d].peak_activation_bytes,
                  4 * (in + (d ? keep1 : keep0)) + 2 * act_layer + (d ? bwd1 : bwd0), 1e-15);
  }
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 211845120.0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].peak_activation_bytes, 1106149376.0, 1e-15);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_capacity(void) {
  const char *xml =
      "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
      "<platform version=\"4.1\"><zone id=\"z\" routing=\"Full\">\n"
      "<host id=\"g0\" speed=\"1e12f\"><prop id=\"memory_bytes\" value=\"2e9\"/></host>\n"
      "<host id=\"g1\" speed=\"1e12f\"><prop id=\"memory_bytes\" value=\"1.5e9\"/></host>\n"
      "<link id=\"l\" bandwidth=\"10GBps\" latency=\"1us\"/>\n"
      "<route src=\"g0\" dst=\"g1\"><link_ctn id=\"l\"/></route>\n"
      "</zone></platform>\n";
  const char *plat = th_write_tmp(xml, ".xml");
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("gpipe", 4, false, true, false, plat), &job, &o);
  /* Stage 0: 16 x 76,916,736 + 4 x 156,246,016 + 44,040,192 = 1,899,692,032
  ** <= 2e9.  Stage 1: 16 x 76,392,448 + 4 x 364,183,552 + 106,594,304 =
  ** 2,785,607,680 > 1.5e9. */
  TS_ASSERT_REL(o.metrics->dev[0].peak_memory_bytes, 1899692032.0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].peak_memory_bytes, 2785607680.0, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[0].memory_capacity_bytes, 2e9, 0);
  CU_ASSERT_TRUE(o.metrics->dev[0].fits);
  CU_ASSERT_FALSE(o.metrics->dev[1].fits);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

/* The transients are held only while their op runs: over time, stage 0 of
** GPipe steps up by its output (2 s b h e) during each forward and by the
** gradient working set during each backward, and returns to the stashes
** between ops; the steady state does not move. */
static void test_transients_over_time(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("gpipe", 4, false, true, false, "ideal"), &job, &o);
  const ts_part_cost_t *p0 = &o.cost->part[0], *p1 = &o.cost->part[1];
  TS_ASSERT_REL(p0->fwd_tmp_bytes, 2 * sbh, 1e-15);
  TS_ASSERT_REL(p1->fwd_tmp_bytes, 512.0 * 2 * 50000 * 2, 1e-15); /* bf16 logits */
  TS_ASSERT_REL(p0->bwd_tmp_bytes, bwd0, 1e-15);
  TS_ASSERT_REL(p1->bwd_tmp_bytes, bwd1, 1e-15);
  TS_ASSERT_REL(p0->act_bytes, 156246016.0, 1e-15);
  TS_ASSERT_REL(p1->act_bytes, 364183552.0, 1e-15);
  const ts_device_metrics_t *dm = &o.metrics->dev[0];
  double a0 = p0->act_bytes;
  int seen_fwd = 0, seen_bwd = 0, seen_rest = 0;
  for (int i = 0; i < dm->n_mem; i++) {
    double v = dm->mem_bytes[i];
    for (int k = 1; k <= 4; k++) {
      if (v == k * a0 + 2 * sbh) seen_fwd++;
      if (v == k * a0 + bwd0) seen_bwd++;
      if (v == k * a0) seen_rest++;
    }
  }
  CU_ASSERT_EQUAL(seen_fwd, 4); /* each forward, k stashes with its output */
  CU_ASSERT_EQUAL(seen_bwd, 4); /* each backward, k stashes with its buffers */
  CU_ASSERT(seen_rest >= 4);    /* between ops only the stashes */
  CU_ASSERT_EQUAL(dm->mem_bytes[dm->n_mem - 1], 0.0);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* A synthetic model's transients are per op: with v = 2 chunks per device
** each chunk's forward and backward hold the stage's whole figure, while
** the stash is split between the chunks. */
static void test_synthetic_transients(void) {
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_message_bytes\": 10, \"activation_bytes\": 1000,"
      " \"forward_transient_bytes\": 7, \"backward_transient_bytes\": [300, 500]},"
      " \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 2,"
      " \"microbatches\": 2}";
  ts_job_t *job;
  ts_outcome_t o;
  run(json, &job, &o);
  TS_ASSERT_REL(o.cost->part[0].fwd_tmp_bytes, 7, 0);
  TS_ASSERT_REL(o.cost->part[1].bwd_tmp_bytes, 500, 0);
  TS_ASSERT_REL(o.cost->part[0].rec_bytes, 1000, 0);
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 2 * 1000 + 300, 0);
  TS_ASSERT_REL(o.metrics->dev[1].peak_activation_bytes, 2 * 1000 + 500, 0);
  ts_outcome_free(&o);
  ts_job_free(job);
  const char *chunks =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_message_bytes\": 10, \"activation_bytes\": 1000,"
      " \"backward_transient_bytes\": 300},"
      " \"platform\": \"ideal\", \"schedule\": \"interleaved\", \"stages\": 2,"
      " \"chunks\": 2, \"microbatches\": 2}";
  run(chunks, &job, &o);
  TS_ASSERT_REL(o.cost->part[0].act_bytes, 500, 0);
  TS_ASSERT_REL(o.cost->part[0].bwd_tmp_bytes, 300, 0);
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_model_states), TS_TEST(test_1f1b_activations), TS_TEST(test_flash_no_dropout),
         TS_TEST(test_full_recompute), TS_TEST(test_capacity),
         TS_TEST(test_transients_over_time), TS_TEST(test_synthetic_transients)};
TS_TEST_MAIN("memory")
