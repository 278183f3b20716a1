/*
** test_memory.c: model states and activation memory of a transformer
** against shared/notes/formulas.md, worked by hand here.
**
** Model: l = 4 layers, h = 1024, a = 16 heads, V = 50000, s = 512, b = 2,
** 2 bytes per element, split over p = 2 stages of 2 layers.
**   parameters per layer  12 h^2 + 13 h = 12,596,224
**   stage 0 adds (V + s) h = 51,724,288; stage 1 a tied copy V h = 51,200,000
**   whole model           12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)) = 102,109,184
**   mixed-precision Adam  2 + 2 + 12 bytes per parameter
**   activations per layer s b h (34 + 5 a s / h) = 1,048,576 x 74 = 77,594,624
**                          (no flash attention, dropout)
**                         32 s b h = 33,554,432 (flash attention, no dropout)
**   full recompute keeps  s b h x 2 = 2,097,152 per micro-batch (stage input)
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
  /* GPipe holds all m = 4 micro-batches at its peak. */
  CU_ASSERT_EQUAL(act_layer, 77594624.0);
  for (int d = 0; d < 2; d++) {
    TS_ASSERT_REL(o.metrics->dev[d].peak_activation_bytes, 4 * 2 * act_layer, 1e-15);
    double states = 16 * (d ? p1 : p0);
    TS_ASSERT_REL(o.metrics->dev[d].peak_memory_bytes, states + 8 * act_layer, 1e-15);
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
  /* min(p - s, m) micro-batches: 2 at stage 0, 1 at stage 1. */
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 2 * 2 * act_layer, 1e-15);
  TS_ASSERT_REL(o.metrics->dev[1].peak_activation_bytes, 1 * 2 * act_layer, 1e-15);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_flash_no_dropout(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("1f1b", 4, true, false, false, "ideal"), &job, &o);
  double l32 = 32.0 * 512 * 2 * 1024;
  CU_ASSERT_EQUAL(l32, 33554432.0);
  TS_ASSERT_REL(o.metrics->dev[0].peak_activation_bytes, 2 * 2 * l32, 1e-15);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_full_recompute(void) {
  ts_job_t *job;
  ts_outcome_t o;
  run(job_text("gpipe", 4, false, true, true, "ideal"), &job, &o);
  /* All 4 stage inputs stashed, plus one micro-batch's full activations
  ** re-materialised for its backward. */
  double in = 512.0 * 2 * 1024 * 2;
  for (int d = 0; d < 2; d++)
    TS_ASSERT_REL(o.metrics->dev[d].peak_activation_bytes, 4 * in + 2 * act_layer, 1e-15);
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
  /* Stage 0: 16 x 76,916,736 + 8 x 77,594,624 = 1,851,424,768 <= 2e9.
  ** Stage 1: 16 x 76,392,448 + 8 x 77,594,624 = 1,843,036,160 > 1.5e9. */
  TS_ASSERT_REL(o.metrics->dev[0].memory_capacity_bytes, 2e9, 0);
  CU_ASSERT_TRUE(o.metrics->dev[0].fits);
  CU_ASSERT_FALSE(o.metrics->dev[1].fits);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

TS_TESTS{TS_TEST(test_model_states), TS_TEST(test_1f1b_activations), TS_TEST(test_flash_no_dropout),
         TS_TEST(test_full_recompute), TS_TEST(test_capacity)};
TS_TEST_MAIN("memory")
