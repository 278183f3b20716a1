/*
** test_partition.c: how the layers are cut into stages (README
** "Partitioning"):
**   - the balanced split (ts_cost_balanced_split) has the smallest largest
**     part of every contiguous split, found by brute force on small cases,
**     and is the uniform split when no part has extra FLOPs;
**   - ts_cost_split's uniform rule is today's (earlier parts take the
**     remainder); a job whose LM head outweighs a layer (GPT-3 1.3B, 8
**     stages) runs closer to 1F1B's closed-form bubble when balanced; so
**     does the default job (GPT-3 2.7B, 16 stages, balanced: [3, 2, ..., 1]),
**     whose report names stage 0 the bottleneck;
**   - an explicit layers_per_stage reaches the cost table, summary.json,
**     and the reference executor, whose gradients (also with data
**     parallelism and ZeRO 3's per-layer units) equal the oracle's;
**   - the errors name the field path.
*/
#include <cjson/cJSON.h>
#include <sysexits.h>

#include "ts_ref.h"
#include "tshelp.h"
#include "tsunit.h"

/* The largest part of the split count[p] (extras as in the split). */
static double largest(const int *count, int p, double w, double ef, double el) {
  double mx = 0;
  for (int k = 0; k < p; k++) {
    double t = count[k] * w + (k == 0 ? ef : 0) + (k == p - 1 ? el : 0);
    if (t > mx) mx = t;
  }
  return mx;
}

/* The smallest largest part over every split of n layers into p >= 1 parts
** of at least one layer (by enumerating the compositions). */
static double brute(int n, int p, double w, double ef, double el) {
  int c[16];
  double best = INFINITY;
  for (int k = 0; k < p - 1; k++) c[k] = 1;
  for (;;) {
    int used = 0;
    for (int k = 0; k < p - 1; k++) used += c[k];
    if (n - used >= 1) {
      c[p - 1] = n - used;
      double t = largest(c, p, w, ef, el);
      if (t < best) best = t;
    }
    int k = p - 2; /* the next composition prefix, odometer style */
    while (k >= 0 && ++c[k] > n) c[k--] = 1;
    if (k < 0) break;
  }
  return best;
}

static void test_balanced_equals_brute_force(void) {
  static const double W[] = {1.0, 3.0, 0.7};
  static const double E[] = {0, 0.5, 1.0, 1.75, 2.3, 7.0};
  int cases = 0, failures = 0;
  for (int n = 1; n <= 10; n++)
    for (int p = 1; p <= n && p <= 6; p++)
      for (int wi = 0; wi < 3; wi++)
        for (int a = 0; a < 6; a++)
          for (int b = 0; b < 6; b++) {
            double w = W[wi], ef = E[a] * w * (a % 2 ? 0.5 : 1), el = E[b] * w;
            int count[16];
            ts_cost_balanced_split(n, p, w, ef, el, count);
            int sum = 0, ok = 1;
            for (int k = 0; k < p; k++) {
              sum += count[k];
              ok &= count[k] >= 1;
            }
            double got = largest(count, p, w, ef, el), want = brute(n, p, w, ef, el);
            ok &= sum == n && fabs(got - want) <= 1e-12 * want;
            if (!ok && failures++ < 5)
              fprintf(stderr, "\nn %d p %d w %g ef %g el %g: largest %g, optimum %g, sum %d\n", n,
                      p, w, ef, el, got, want, sum);
            CU_ASSERT(ok);
            cases++;
          }
  CU_ASSERT(cases > 1000);
  /* No extras: exactly the uniform split, earlier parts take the remainder. */
  int c[4];
  ts_cost_balanced_split(10, 4, 1.0, 0, 0, c);
  CU_ASSERT(c[0] == 3 && c[1] == 3 && c[2] == 2 && c[3] == 2);
  /* A head of 1.75 layers on 8 parts of 24 layers: the last holds 2. */
  int d[8], want[8] = {4, 3, 3, 3, 3, 3, 3, 2};
  ts_cost_balanced_split(24, 8, 1.0, 0, 1.75, d);
  for (int k = 0; k < 8; k++) CU_ASSERT_EQUAL(d[k], want[k]);
  /* Large counts stay exact and fast (the search is over levels). */
  int *big = ts__xcalloc(1000, sizeof *big);
  ts_cost_balanced_split(100000000, 1000, 1.0, 0, 12345.5, big);
  long long s = 0;
  for (int k = 0; k < 1000; k++) s += big[k];
  CU_ASSERT_EQUAL(s, 100000000);
  CU_ASSERT(big[999] + 12345.5 <= big[0] + 1e-9);
  free(big);
}

/* GPT-3 1.3B (Brown et al. 2020, table 2.1): its LM head is 1.75 layers of
** FLOPs at s = 2048, so the uniform split's last stage is 1.58x the rest. */
static const char *const GPT13 =
    "{\"model\": {\"kind\": \"transformer\", \"name\": \"gpt3-1.3b\", \"layers\": 24, \"hidden\": "
    "2048, \"heads\": 16, \"vocab\": 50257, \"flash_attention\": true}, \"platform\": \"ideal\","
    " \"schedule\": \"1f1b\", \"stages\": 8, \"microbatches\": 32, \"seq_len\": 2048}";

static void test_uniform_rule(void) {
  const char *sets[] = {"model.layers=10", "stages=4"};
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_job_from_json(GPT13, sets, 2, &job, &err), 0);
  CU_ASSERT_EQUAL(job->partition, TS_PARTITION_UNIFORM);
  int c[4];
  CU_ASSERT_EQUAL(ts_cost_split(job, 4, c, &err), 0);
  CU_ASSERT(c[0] == 3 && c[1] == 3 && c[2] == 2 && c[3] == 2);
  CU_ASSERT_EQUAL(ts_cost_split(job, 11, c, &err), EX_DATAERR);
  ts_job_free(job);
}

/* The bubble fraction and the split of GPT13 under partition p. */
static double bubble_of(const char *p, int *count) {
  char set[64];
  snprintf(set, sizeof set, "partition=%s", p);
  const char *sets[] = {set};
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(GPT13, sets, 1, &job, &o, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  for (int k = 0; k < 8; k++) count[k] = o.cost->part[k].n_layers;
  double b = o.metrics->bubble_fraction;
  ts_outcome_free(&o);
  ts_job_free(job);
  return b;
}

static void test_balanced_bubble_nears_closed_form(void) {
  int u[8], b[8], want[8] = {4, 3, 3, 3, 3, 3, 3, 2};
  double bu = bubble_of("uniform", u), bb = bubble_of("balanced", b);
  double closed = 7.0 / (32 + 7); /* (p - 1) / (m + p - 1) */
  for (int k = 0; k < 8; k++) {
    CU_ASSERT_EQUAL(u[k], 3);
    CU_ASSERT_EQUAL(b[k], want[k]);
  }
  /* Uniform: stage 7 (3 layers + head = 4.75) paces 7 stages of 3:
  ** 0.405; balanced: 4 is the slowest, 0.283, against 0.179. */
  CU_ASSERT(bu > 0.40 && bu < 0.41);
  CU_ASSERT(bb > 0.28 && bb < 0.29);
  CU_ASSERT(bb - closed < 0.5 * (bu - closed));
}

/* The default job (GPT-3 2.7B, 32 layers on 16 stages, partition
** "balanced"): its LM head costs V / (12 h + 2 s) = 1.44 layers, so the
** balanced split moves a layer off the last stage onto the first, [3, 2, ...,
** 2, 1]: the slowest part is 3 layers instead of the uniform split's 2 +
** 1.44, and the report names stage 0 the bottleneck. */
static void test_default_job(void) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_job_load(NULL, NULL, 0, &job, &err), 0);
  CU_ASSERT_EQUAL(job->partition, TS_PARTITION_BALANCED);
  int c[16];
  CU_ASSERT_EQUAL(ts_cost_split(job, 16, c, &err), 0);
  for (int k = 0; k < 16; k++) CU_ASSERT_EQUAL(c[k], k == 0 ? 3 : k == 15 ? 1 : 2);
  ts_job_free(job);
  char dir[] = "/tmp/ts-test-part-XXXXXX", args[256], path[320];
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  snprintf(args, sizeof args, "run --quiet -o %s", dir);
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, NULL), 0);
  snprintf(path, sizeof path, "%s/report.html", dir);
  char *html = th_slurp(path, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(html);
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "<h3>Stage times</h3>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "<b>Bottleneck: stage 0</b>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "<td>3 (0\xE2\x80\x93" "2) + embedding</td>"));
  free(html);
  snprintf(path, sizeof path, "%s/summary.json", dir);
  char *text = th_slurp(path, NULL);
  cJSON *s = text ? cJSON_Parse(text) : NULL, *j = cJSON_GetObjectItem(s, "job");
  CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(j, "partition")), "balanced");
  cJSON *l = cJSON_GetObjectItem(j, "layers_per_stage");
  CU_ASSERT_EQUAL(cJSON_GetArraySize(l), 16);
  CU_ASSERT_EQUAL(cJSON_GetArrayItem(l, 15) ? cJSON_GetArrayItem(l, 15)->valueint : 0, 1);
  /* closer to 1F1B's closed form (p - 1)/(m + p - 1) = 15/47 than uniform */
  double bb = cJSON_GetNumberValue(cJSON_GetObjectItem(s, "bubble_fraction"));
  CU_ASSERT(bb > 15.0 / 47 && bb < 0.41);
  cJSON_Delete(s);
  free(text);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
}

/* The conformance suite's model, 6 layers cut [4, 2] (Megatron's
** decoder_first_pipeline_num_layers style). */
static const char *const SMALL =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 6, \"hidden\": 16, \"heads\": 2,"
    " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4,"
    " \"layers_per_stage\": [4, 2]}";

/* The reference executor's gradients of SMALL with the sets, against the
** oracle's over the whole batch. */
static void ref_matches_oracle(const char *const *sets, int n) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = th_job_from_json(SMALL, sets, n, &job, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_outcome_t jo;
  CU_ASSERT_EQUAL_FATAL(ts_exec_prepare(job, NULL, &jo, &err), 0);
  CU_ASSERT_EQUAL(jo.cost->part[0].n_layers, 4);
  CU_ASSERT_EQUAL(jo.cost->part[1].first_layer, 4);
  CU_ASSERT_EQUAL(jo.cost->part[1].n_layers, 2);
  ts_run_t *ref = NULL;
  ts_ref_model_t *g = NULL;
  rc = ts_ref_run(job, jo.sched, jo.plan, jo.cost, &ref, &g, &err);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  ts_ref_model_t *o = ts_ref_oracle(job);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  double e = th_grad_error(g, o);
  CU_ASSERT(e <= 1e-10);
  /* Stage 0 stashes twice stage 1's layers per micro-batch in flight. */
  CU_ASSERT(ref->measured_peak_act_bytes[0] > ref->measured_peak_act_bytes[ref->n_devices - 1]);
  ts_ref_model_free(o);
  ts_ref_model_free(g);
  ts_run_free(ref);
  ts_outcome_free(&jo);
  ts_job_free(job);
}

static void test_explicit_split_runs(void) {
  ref_matches_oracle(NULL, 0);
  const char *dp[] = {"data_parallel=2"};
  ref_matches_oracle(dp, 1);
  const char *z3[] = {"data_parallel=2", "zero=3"};
  ref_matches_oracle(z3, 2);
  /* The simulator: stage 0 computes twice stage 1's layers (plus no head:
  ** vocab 100 is small), and summary.json echoes the split. */
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(SMALL, NULL, 0, &job, &o, &err), 0);
  CU_ASSERT_EQUAL(job->partition, TS_PARTITION_EXPLICIT);
  CU_ASSERT(o.metrics->dev[0].busy_s > 1.5 * o.metrics->dev[1].busy_s);
  cJSON *root = cJSON_CreateObject(), *j = ts__job_json(root, job, o.sched);
  CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(j, "partition")), "explicit");
  cJSON *l = cJSON_GetObjectItem(j, "layers_per_stage");
  CU_ASSERT(cJSON_GetArraySize(l) == 2 && cJSON_GetArrayItem(l, 0)->valueint == 4 &&
            cJSON_GetArrayItem(l, 1)->valueint == 2);
  cJSON_Delete(root);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_errors(void) {
  static const struct {
    const char *set1, *set2, *want;
  } C[] = {
      {"layers_per_stage=[4, 1, 1]", NULL,
       "layers_per_stage: expected one entry per model part (stages x chunks = 2), got 3"},
      {"layers_per_stage=[3, 3]", "chunks=2",
       "layers_per_stage: expected one entry per model part (stages x chunks = 4), got 2"},
      {"layers_per_stage=[6, 0]", NULL, "layers_per_stage[1]: expected a layer count from 1"},
      {"layers_per_stage=[4, 1.5]", NULL, "layers_per_stage[1]: expected a layer count from 1"},
      {"layers_per_stage=[\"4\", 2]", NULL, "layers_per_stage[0]: expected a layer count"},
      {"layers_per_stage=[4, 1]", NULL,
       "layers_per_stage: the entries sum to 5 layers, model.layers is 6"},
      {"layers_per_stage=4", NULL, "layers_per_stage: expected an array of layer counts"},
      {"partition=balanced", NULL, "layers_per_stage: the split is given, so partition must be"},
      {"partition=even", "layers_per_stage=null",
       "partition: expected \"uniform\" or \"balanced\", got 'even'"},
      {"partition=explicit", "layers_per_stage=null",
       "partition: \"explicit\" needs layers_per_stage"},
      {"model.moe={\"experts\": 4}", "schedule=gshard", "layers_per_stage: not modelled with model.moe"},
  };
  for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
    const char *sets[2] = {C[i].set1, C[i].set2};
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    int rc = th_job_from_json(SMALL, sets, C[i].set2 ? 2 : 1, &job, &err);
    CU_ASSERT_EQUAL(rc, EX_DATAERR);
    if (!strstr(err.msg, C[i].want) || !strstr(err.msg, "/tmp/ts-test-"))
      fprintf(stderr, "\ncase %zu: got '%s', want '%s'\n", i, err.msg, C[i].want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, C[i].want));
    ts_job_free(job);
  }
  /* A synthetic model has no layers to split. */
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  const char *syn =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_message_bytes\": 0, \"activation_bytes\": 1}, \"platform\": \"ideal\","
      " \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"partition\": \"balanced\"}";
  CU_ASSERT_EQUAL(th_job_from_json(syn, NULL, 0, &job, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "partition: a synthetic model has no layers to split"));
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_balanced_equals_brute_force), TS_TEST(test_uniform_rule),
         TS_TEST(test_balanced_bubble_nears_closed_form), TS_TEST(test_default_job),
         TS_TEST(test_explicit_split_runs), TS_TEST(test_errors)};
TS_TEST_MAIN("partition")
