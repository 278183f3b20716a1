/*
** test_hf.c: Hugging Face configs read fully, and the model shape fields
** they translate to (README "Models").
**
** Checked:
**   - the parameter counts of the shipped configs (examples/hf/) equal the
**     published counts exactly.  Where each figure comes from:
**       Llama-2-7B   6,738,415,616: meta-llama/Llama-2-7b-hf on the Hugging
**                    Face Hub, model.safetensors.index.json "total_size"
**                    13,476,839,424 bytes of fp16 = 2 x 6,738,415,616;
**       Llama-3-8B   8,030,261,248: meta-llama/Meta-Llama-3-8B, total_size
**                    16,060,522,496 bytes of bf16 (the figure issue 13 gives);
**       Mistral-7B   7,241,732,096: mistralai/Mistral-7B-v0.1, total_size
**                    14,483,464,192 bytes of bf16;
**       Mixtral-8x7B 46,702,792,704: mistralai/Mixtral-8x7B-v0.1, total_size
**                    93,405,585,408 bytes of bf16;
**       GPT-2        124,439,808: openai-community/gpt2, the parameters of
**                    GPT2LMHeadModel (tied head counted once); the Hub's
**                    model.safetensors holds 137,022,720 fp32 values, these
**                    plus the 12 layers' 1024 x 1024 causal-mask buffers.
**     Each is also derived by hand below from the config's shapes, so a
**     wrong figure and a wrong formula cannot agree by accident;
**   - the parts of a pipeline hold the model's parameters: untied models
**     (Llama) keep the embedding on the first part and the LM head and the
**     final norm on the last; a tied model (GPT-2) adds a copy of the word
**     embedding on the last part only when there is more than one part;
**   - grouped-query attention shrinks the QKV GEMM (h x (h + 2 kv_heads d))
**     and the K and V activation bytes by the closed forms;
**   - learned positions count max_positions x h whatever the seq_len,
**     rotary ones none;
**   - a GPT-style model object with the old fields counts 12 l h^2 + 13 l h
**     + (V + s) h as before;
**   - bad input: a config field that changes the shape in a way trainsim
**     does not model, mixed biases, heads not grouped evenly, bad model
**     fields: one-line errors naming the field; an unknown config field is
**     named in a warning on stderr.
*/
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "tshelp.h"
#include "tsunit.h"

/* Loads a job on the ideal platform whose model is the given JSON text
** (a path in quotes or an object), with schedule, stages and seq_len; the
** job is returned (the caller frees it) or NULL with err filled. */
static ts_job_t *load(const char *model, const char *schedule, int stages, int seq,
                      ts_err_t *err) {
  char json[2048];
  snprintf(json, sizeof json,
           "{\"model\": %s, \"platform\": \"ideal\", \"schedule\": \"%s\", \"stages\": %d,"
           " \"microbatches\": %d, \"seq_len\": %d}",
           model, schedule, stages, stages, seq);
  ts_job_t *job = NULL;
  *err = (ts_err_t){0};
  return th_job_from_json(json, NULL, 0, &job, err) ? NULL : job;
}

/* The model of examples/hf/NAME-config.json as a job's "model" value. */
static const char *shipped(const char *name) {
  static char buf[512];
  snprintf(buf, sizeof buf, "\"%s/examples/hf/%s-config.json\"", TS_SOURCE_DIR, name);
  return buf;
}

/* Checks the config's parameter count: the formula, the cost table's
** model_params, and that the parts (EP 1: every device holds every expert)
** add up to it with 4 stages when the embeddings are untied. */
static void check_count(const char *name, const char *schedule, double published) {
  ts_err_t err;
  ts_job_t *job = load(shipped(name), schedule, 4, 1024, &err);
  if (!job) fprintf(stderr, "%s: %s\n", name, err.msg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_cost_t *c = NULL;
  int rc = ts_cost_build(job, 4, &c, &err);
  if (rc) fprintf(stderr, "%s: %s\n", name, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(c->model_params, published);
  if (c->model_params != published)
    fprintf(stderr, "%s: %.0f parameters, published %.0f\n", name, c->model_params, published);
  double sum = 0;
  for (int p = 0; p < c->n_parts; p++) sum += c->part[p].params;
  double copy = job->model.tie_embeddings ? (double)job->model.vocab * job->model.hidden : 0;
  CU_ASSERT_EQUAL(sum, published + copy);
  if (!c->moe) CU_ASSERT_EQUAL(ts_cost_transformer_params(&job->model, job->seq_len), published);
  ts_cost_free(c);
  ts_job_free(job);
}

/* Llama-family layer by hand: Q and O h x h, K and V h x kv d, a gated MLP
** 3 h f, two RMSNorms h each, no biases; untied V h twice; a final norm. */
static double llama_count(double l, double h, double kv, double f, double V) {
  double d = 128, layer = 2 * h * h + 2 * h * kv * d + 3 * h * f + 2 * h;
  return l * layer + 2 * V * h + h;
}

static void test_llama2_7b(void) {
  CU_ASSERT_EQUAL(llama_count(32, 4096, 32, 11008, 32000), 6738415616.0);
  check_count("llama-2-7b", "1f1b", 6738415616.0);
}

static void test_llama3_8b(void) {
  CU_ASSERT_EQUAL(llama_count(32, 4096, 8, 14336, 128256), 8030261248.0);
  check_count("llama-3-8b", "1f1b", 8030261248.0);
}

static void test_mistral_7b(void) {
  CU_ASSERT_EQUAL(llama_count(32, 4096, 8, 14336, 32000), 7241732096.0);
  check_count("mistral-7b", "1f1b", 7241732096.0);
}

static void test_mixtral_8x7b(void) {
  /* 8 experts of 3 h f and a gate h x 8 in place of the dense MLP. */
  double h = 4096, f = 14336;
  double by_hand = llama_count(32, h, 8, f, 32000) + 32 * (7 * 3 * h * f + 8 * h);
  CU_ASSERT_EQUAL(by_hand, 46702792704.0);
  check_count("mixtral-8x7b", "gshard", 46702792704.0);
}

static void test_gpt2(void) {
  /* 12 h^2 + 13 h per layer, tied V h, 1024 learned positions, final LN 2 h. */
  double h = 768, l = 12;
  CU_ASSERT_EQUAL(l * (12 * h * h + 13 * h) + (50257 + 1024) * h + 2 * h, 124439808.0);
  check_count("gpt2", "1f1b", 124439808.0);
}

/* Where the embeddings and the head live: Llama-2 untied over 4 parts; a
** single part holds both its V h matrices; GPT-2 tied on one part holds V h
** once. */
static void test_part_placement(void) {
  ts_err_t err;
  ts_job_t *job = load(shipped("llama-2-7b"), "1f1b", 4, 1024, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  ts_cost_t *c = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, 4, &c, &err), 0);
  double h = 4096, V = 32000, layer = 4 * h * h + 3 * h * 11008 + 2 * h;
  CU_ASSERT_EQUAL(c->part[0].params, c->part[0].n_layers * layer + V * h);
  CU_ASSERT_EQUAL(c->part[1].params, c->part[1].n_layers * layer);
  CU_ASSERT_EQUAL(c->part[3].params, c->part[3].n_layers * layer + V * h + h);
  ts_cost_free(c);
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, 1, &c, &err), 0);
  CU_ASSERT_EQUAL(c->part[0].params, 6738415616.0);
  ts_cost_free(c);
  ts_job_free(job);
  job = load(shipped("gpt2"), "1f1b", 1, 1024, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(job, 1, &c, &err), 0);
  CU_ASSERT_EQUAL(c->part[0].params, 124439808.0);
  ts_cost_free(c);
  ts_job_free(job);
}

/* GQA: Llama-3-8B's forward FLOPs and activation bytes against the same
** model with kv_heads = heads, by the closed forms. */
static void test_gqa_flops_and_bytes(void) {
  char mha[1024];
  snprintf(mha, sizeof mha, "{\"config\": %s, \"kv_heads\": 32}", shipped("llama-3-8b"));
  ts_err_t err;
  ts_job_t *g = load(shipped("llama-3-8b"), "1f1b", 1, 2048, &err);
  ts_job_t *m = load(mha, "1f1b", 1, 2048, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_EQUAL(g->model.kv_heads, 8);
  CU_ASSERT_EQUAL(g->model.head_dim, 128);
  CU_ASSERT_EQUAL(m->model.kv_heads, 32);
  ts_cost_t *cg = NULL, *cm = NULL;
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(g, 1, &cg, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_cost_build(m, 1, &cm, &err), 0);
  double b = 1, s = 2048, h = 4096, f = 14336, V = 128256, kvd = 8 * 128.0, e = 2;
  /* QKV GEMM h x (h + 2 kv d), output h x h, gated MLP, core 4 b s^2 h. */
  double layer = 2 * b * s * (h * (h + 2 * kvd) + h * h + 3 * h * f) + 4 * b * s * s * h;
  CU_ASSERT_EQUAL(cg->part[0].flops[TS_FORWARD], 32 * layer + 2 * b * s * h * V);
  /* MHA has 2 b s h (h - kv d) FLOPs more per layer in K and V. */
  CU_ASSERT_EQUAL(cm->part[0].flops[TS_FORWARD] - cg->part[0].flops[TS_FORWARD],
                  32 * 2 * (2 * b * s * h * (h - kvd)));
  /* K and V: 2 kv d elements per token instead of 2 h. */
  double ag = ts_cost_layer_activation_bytes(&g->model, 2048, 1, 2);
  double am = ts_cost_layer_activation_bytes(&m->model, 2048, 1, 2);
  CU_ASSERT_EQUAL(ag, s * b * (6 * h + 2 * kvd + 3 * f) * e);
  CU_ASSERT_EQUAL(am - ag, s * b * 2 * (h - kvd) * e);
  /* Multi-query attention: one K and one V head. */
  ts_job_t *q = NULL;
  char mqa[1024];
  snprintf(mqa, sizeof mqa, "{\"config\": %s, \"kv_heads\": 1}", shipped("llama-3-8b"));
  q = load(mqa, "1f1b", 1, 2048, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(q);
  CU_ASSERT_EQUAL(ts_cost_transformer_params(&q->model, 2048),
                  8030261248.0 - 32 * 2 * h * (kvd - 128));
  ts_cost_free(cg);
  ts_cost_free(cm);
  ts_job_free(g);
  ts_job_free(m);
  ts_job_free(q);
}

/* Learned positions are max_positions x h whatever the seq_len; rotary has
** none; GPT-2 untied (tie_word_embeddings false) adds V h. */
static void test_positions_and_ties(void) {
  ts_err_t err;
  ts_job_t *job = load(shipped("gpt2"), "1f1b", 1, 256, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL(job->model.position, TS_POSITION_LEARNED);
  CU_ASSERT_EQUAL(job->model.max_positions, 1024);
  CU_ASSERT_EQUAL(ts_cost_transformer_params(&job->model, job->seq_len), 124439808.0);
  ts_job_free(job);
  job = load(shipped("llama-3-8b"), "1f1b", 1, 256, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL(job->model.position, TS_POSITION_ROTARY);
  CU_ASSERT_EQUAL(job->model.norm, TS_NORM_RMSNORM);
  CU_ASSERT_EQUAL(job->model.bias, TS_BIAS_NONE);
  CU_ASSERT(!job->model.tie_embeddings);
  CU_ASSERT_EQUAL(ts_cost_transformer_params(&job->model, 256), 8030261248.0);
  CU_ASSERT_EQUAL(ts_cost_transformer_params(&job->model, 8192), 8030261248.0);
  ts_job_free(job);
  const char *untied = th_write_tmp("{\"model_type\": \"gpt2\", \"n_layer\": 12, \"n_embd\": 768,"
                                    " \"n_head\": 12, \"n_positions\": 1024, \"vocab_size\": 50257,"
                                    " \"tie_word_embeddings\": false}",
                                    ".json");
  char model[128];
  snprintf(model, sizeof model, "\"%s\"", untied);
  job = load(model, "1f1b", 1, 1024, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  CU_ASSERT_EQUAL(ts_cost_transformer_params(&job->model, 1024), 124439808.0 + 50257.0 * 768);
  ts_job_free(job);
  unlink(untied);
}

/* A model object with the old fields counts as before; the new fields one
** by one change the count by their closed forms. */
static void test_gpt_defaults(void) {
  const char *base = "{\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8,"
                     " \"vocab\": 1000%s}";
  double l = 4, h = 256, V = 1000, s = 128;
  double old = 12 * l * h * h + 13 * l * h + (V + s) * h;
  struct {
    const char *extra;
    double want;
  } cases[] = {
      {"", old},
      {", \"final_norm\": true", old + 2 * h},
      {", \"tie_embeddings\": false", old + V * h},
      {", \"position\": \"rotary\"", old - s * h},
      {", \"max_positions\": 512", old + (512 - s) * h},
      {", \"norm\": \"rmsnorm\"", old - 2 * l * h},
      {", \"bias\": \"none\"", old - l * (3 * h + h + 4 * h + h)},
      {", \"bias\": \"qkv\"", old - l * (h + 4 * h + h)},
      {", \"kv_heads\": 2", old - l * 2 * (h * h + h) * 3 / 4},
      {", \"head_dim\": 64", old + l * (4 * h * 256 + 3 * 256)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char model[512];
    snprintf(model, sizeof model, base, cases[i].extra);
    ts_err_t err;
    ts_job_t *job = load(model, "1f1b", 1, 128, &err);
    if (!job) fprintf(stderr, "[%s]: %s\n", cases[i].extra, err.msg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    double p = ts_cost_transformer_params(&job->model, 128);
    CU_ASSERT_EQUAL(p, cases[i].want);
    if (p != cases[i].want)
      fprintf(stderr, "[%s]: %.0f, expected %.0f\n", cases[i].extra, p, cases[i].want);
    ts_job_free(job);
  }
}

/* Loads the config text as a job's model; returns the exit code and err. */
static int load_config(const char *text, ts_err_t *err, char *path, size_t cap) {
  const char *p = th_write_tmp(text, ".json");
  snprintf(path, cap, "%s", p);
  char model[128];
  snprintf(model, sizeof model, "\"%s\"", p);
  ts_job_t *job = load(model, "1f1b", 1, 128, err);
  ts_job_free(job);
  return job ? 0 : err->code;
}

#define LLAMA_HEAD                                                                          \
  "{\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"hidden_size\": 256,"           \
  " \"num_attention_heads\": 8, \"intermediate_size\": 512, \"vocab_size\": 1000"

static void test_bad_configs(void) {
  struct {
    const char *text, *field;
  } bad[] = {
      {LLAMA_HEAD ", \"q_lora_rank\": 64}", "q_lora_rank: not modelled"},
      {LLAMA_HEAD ", \"parallel_residual\": true}", "parallel_residual: not modelled"},
      {LLAMA_HEAD ", \"num_key_value_heads\": 3}", "num_key_value_heads: 8 query heads"},
      {LLAMA_HEAD ", \"num_key_value_heads\": 0}", "num_key_value_heads: expected a positive"},
      {LLAMA_HEAD ", \"attention_bias\": true}", "mlp_bias: false with attention_bias true"},
      {LLAMA_HEAD ", \"tie_word_embeddings\": 1}", "tie_word_embeddings: expected true or false"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ts_err_t err;
    char path[128];
    CU_ASSERT_EQUAL(load_config(bad[i].text, &err, path, sizeof path), EX_DATAERR);
    char want[256];
    snprintf(want, sizeof want, "%s: %s", path, bad[i].field);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
    if (!strstr(err.msg, want)) fprintf(stderr, "got [%s], want [%s]\n", err.msg, want);
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
    unlink(path);
  }
  /* Set to null, false or 0, a shape field is as absent. */
  ts_err_t err;
  char path[128];
  CU_ASSERT_EQUAL(load_config(LLAMA_HEAD ", \"parallel_residual\": false, \"q_lora_rank\": null}",
                              &err, path, sizeof path),
                  0);
  unlink(path);
  /* Both biases: every linear layer has one. */
  CU_ASSERT_EQUAL(load_config(LLAMA_HEAD ", \"attention_bias\": true, \"mlp_bias\": true}", &err,
                              path, sizeof path),
                  0);
  unlink(path);
}

/* An unknown field is named in a warning on stderr and the config loads;
** a known harmless one is not. */
static void test_unknown_field_warns(void) {
  char log[] = "/tmp/ts-test-hf-XXXXXX";
  int fd = mkstemp(log);
  CU_ASSERT_FATAL(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  ts_err_t err;
  char path[128];
  int rc = load_config(LLAMA_HEAD ", \"quantum_flux\": 3, \"rope_theta\": 10000.0,"
                                  " \"sliding_window\": 64}",
                       &err, path, sizeof path);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  CU_ASSERT_EQUAL(rc, 0);
  char *text = th_slurp(log, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  char want[256];
  snprintf(want, sizeof want, "trainsim: warning: %s: quantum_flux: unknown Hugging Face field",
           path);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
  snprintf(want, sizeof want, "trainsim: warning: %s: sliding_window:", path);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
  CU_ASSERT_PTR_NULL(strstr(text, "rope_theta"));
  free(text);
  unlink(log);
  unlink(path);
}

static void test_bad_model_fields(void) {
  struct {
    const char *extra, *msg;
  } bad[] = {
      {", \"kv_heads\": 3", "model.kv_heads: 8 query heads cannot be grouped evenly over 3"},
      {", \"position\": \"alibi\"", "model.position: expected \"learned\" or \"rotary\", got 'alibi'"},
      {", \"norm\": \"batchnorm\"", "model.norm: expected \"layernorm\" or \"rmsnorm\""},
      {", \"bias\": \"some\"", "model.bias: expected \"all\", \"none\" or \"qkv\""},
      {", \"position\": \"rotary\", \"max_positions\": 64", "model.max_positions: rotary"},
      {", \"head_dim\": 0", "model.head_dim"},
      {", \"tie_embeddings\": 1", "model.tie_embeddings"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char model[512];
    snprintf(model, sizeof model,
             "{\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 256, \"heads\": 8,"
             " \"vocab\": 1000%s}",
             bad[i].extra);
    ts_err_t err;
    ts_job_t *job = load(model, "1f1b", 1, 128, &err);
    CU_ASSERT_PTR_NULL(job);
    ts_job_free(job);
    CU_ASSERT_EQUAL(err.code, EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].msg));
    if (!strstr(err.msg, bad[i].msg)) fprintf(stderr, "got [%s], want [%s]\n", err.msg, bad[i].msg);
  }
  /* With head_dim given, hidden need not be a multiple of heads. */
  ts_err_t err;
  ts_job_t *job = load("{\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 250, \"heads\": 8,"
                       " \"head_dim\": 32, \"vocab\": 1000}",
                       "1f1b", 1, 128, &err);
  CU_ASSERT_PTR_NOT_NULL(job);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_llama2_7b),        TS_TEST(test_llama3_8b),
         TS_TEST(test_mistral_7b),       TS_TEST(test_mixtral_8x7b),
         TS_TEST(test_gpt2),             TS_TEST(test_part_placement),
         TS_TEST(test_gqa_flops_and_bytes), TS_TEST(test_positions_and_ties),
         TS_TEST(test_gpt_defaults),     TS_TEST(test_bad_configs),
         TS_TEST(test_unknown_field_warns), TS_TEST(test_bad_model_fields)};
TS_TEST_MAIN("hf")
