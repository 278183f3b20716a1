/*
** job_hf.c: a Hugging Face config.json as a job's model.
**
** A job's "model" may be the path of a Hugging Face config.json (GPT-2 or
** Llama/Mistral field names) or of a file holding a trainsim model object
** (one with "kind"), or an object {"config": path, FIELD: ...} whose other
** fields override the translated model's.  Before any --set is applied
** (and after a --set that makes the model a path), the model is replaced
** by the equivalent transformer object,
** so that `--set model.NAME=...` and the validation treat it like any
** other transformer.  An unknown model_type is an error unless the job
** says which MLP the model has (hf_model_type).  The config is read fully:
** grouped key/value heads, head_dim, tied embeddings, rotary or learned
** positions, norms and biases become the model's shape fields (hf_shape);
** a field that would change the shape in a way trainsim does not model is
** an error naming it, an unknown one a warning on stderr (hf_check_fields).
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"

/* The first of names that hf has and is not null, or NULL. */
static const cJSON *hf_get(const cJSON *hf, const char *const *names) {
  for (; *names; names++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(hf, *names);
    if (v && !cJSON_IsNull(v)) return v;
  }
  return NULL;
}

/* A positive integer under any of names; dflt (>= 0) when absent, which
** is an error when dflt < 0.  Always writes *out (dflt on an error). */
static int hf_int(const cJSON *hf, const char *file, const char *const *names, int dflt,
                  int *out, ts_err_t *err) {
  *out = dflt;
  const cJSON *v = hf_get(hf, names);
  if (!v) {
    if (dflt >= 0) return 0;
    char all[160] = "";
    for (int i = 0; names[i]; i++) {
      if (i) strncat(all, " / ", sizeof all - strlen(all) - 1);
      strncat(all, names[i], sizeof all - strlen(all) - 1);
    }
    return ts_err_set(err, EX_DATAERR, "%s: %s: missing field", file, all);
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
      v->valuedouble > 1e9)
    return ts_err_set(err, EX_DATAERR, "%s: %s: expected a positive integer", file, v->string);
  *out = (int)v->valuedouble;
  return 0;
}

/* The fields of a config.json (README "Models"): those read; those that
** do not change the model's shape, ignored (token ids, dtypes, epsilons,
** initialisation, activation names, dropout rates, rotary frequencies and
** scaling, the GPT-2 summary head of the double-heads model, router loss
** terms); and those that would change it in a way trainsim does not model,
** an error when set to anything but null, false or 0.  Any other field is
** named in a warning on stderr: it is not read. */
static const char *const HF_READ[] = {
    "model_type", "n_layer", "num_hidden_layers", "num_layers", "n_embd", "hidden_size",
    "d_model", "n_head", "num_attention_heads", "n_inner", "intermediate_size", "ffn_dim",
    "vocab_size", "n_positions", "max_position_embeddings", "n_ctx", "resid_pdrop",
    "hidden_dropout", "num_local_experts", "num_experts_per_tok", "num_key_value_heads",
    "head_dim", "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window", NULL};
static const char *const HF_HARMLESS[] = {
    "_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype",
    "use_cache", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range",
    "rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "hidden_act", "activation_function",
    "rope_theta", "rope_scaling", "rotary_pct", "rotary_dim", "partial_rotary_factor",
    "attention_dropout", "attn_pdrop", "embd_pdrop", "summary_type", "summary_use_proj",
    "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
    "task_specific_params", "output_router_logits", "router_aux_loss_coef",
    "router_jitter_noise", "pretraining_tp", "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "use_sliding_window",
    "max_window_layers", "tokenizer_class", "id2label", "label2id", NULL};
static const char *const HF_SHAPE[] = {
    "num_experts", "moe_intermediate_size", "shared_expert_intermediate_size",
    "n_shared_experts", "n_routed_experts", "first_k_dense_replace", "moe_layer_freq",
    "decoder_sparse_step", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim",
    "qk_nope_head_dim", "v_head_dim", "parallel_attn", "parallel_residual",
    "use_parallel_residual", "multi_query", "n_head_kv", "num_kv_heads",
    "new_decoder_architecture", "add_cross_attention", "alibi", "layer_types", NULL};

/* Goes over every field of hf: an error naming the first one of HF_SHAPE
** that is set, a warning on stderr for each unknown one; sliding_window
** (Mistral) is warned about when set, since attention is counted over the
** whole sequence. */
static int hf_check_fields(const cJSON *hf, const char *file, ts_err_t *err) {
  for (const cJSON *f = hf->child; f; f = f->next) {
    const char *k = f->string;
    bool set = !cJSON_IsNull(f) && !cJSON_IsFalse(f) && !(cJSON_IsNumber(f) && f->valuedouble == 0);
    if (ts__has_control(k))
      return ts_err_set(err, EX_DATAERR, "%s: control character in a field name", file);
    if (ts__in_list(HF_SHAPE, k) && set)
      return ts_err_set(err, EX_DATAERR,
                        "%s: %s: not modelled: it changes the model's shape in a way trainsim "
                        "does not simulate (README \"Models\")",
                        file, k);
    if (strcmp(k, "sliding_window") == 0 && set)
      fprintf(stderr,
              "trainsim: warning: %s: sliding_window: attention is modelled over the whole "
              "sequence, not a window\n",
              file);
    if (!ts__in_list(HF_READ, k) && !ts__in_list(HF_HARMLESS, k) && !ts__in_list(HF_SHAPE, k))
      fprintf(stderr,
              "trainsim: warning: %s: %s: unknown Hugging Face field, not read (taken not to "
              "change the model's shape)\n",
              file, k);
  }
  return 0;
}

/* A boolean under key; dflt when absent or null. */
static int hf_bool(const cJSON *hf, const char *file, const char *key, bool dflt, bool *out,
                   ts_err_t *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(hf, key);
  *out = dflt;
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsBool(v))
    return ts_err_set(err, EX_DATAERR, "%s: %s: expected true or false", file, key);
  *out = cJSON_IsTrue(v);
  return 0;
}

/* Mixtral-style sparse MLPs: every layer's MLP is num_local_experts
** experts of intermediate_size (expert_ffn); GShard gating is top-2 only.
** Adds the "moe" object to m when hf has num_local_experts. */
static int hf_moe(const cJSON *hf, const char *file, int expert_ffn, cJSON *m, ts_err_t *err) {
  static const char *const NE[] = {"num_local_experts", NULL};
  static const char *const TK[] = {"num_experts_per_tok", NULL};
  if (!hf_get(hf, NE)) return 0;
  int ne, tk, rc;
  if ((rc = hf_int(hf, file, NE, -1, &ne, err)) || (rc = hf_int(hf, file, TK, 2, &tk, err)))
    return rc;
  if (ne < 2)
    return ts_err_set(err, EX_DATAERR,
                      "%s: num_local_experts: a mixture of experts needs at least 2, got %d", file,
                      ne);
  if (tk != 2)
    return ts_err_set(err, EX_DATAERR,
                      "%s: num_experts_per_tok: GShard gating routes each token to 2 experts, "
                      "got %d",
                      file, tk);
  cJSON *moe = cJSON_AddObjectToObject(m, "moe");
  cJSON_AddNumberToObject(moe, "experts", ne);
  cJSON_AddNumberToObject(moe, "every", 1);
  cJSON_AddNumberToObject(moe, "expert_ffn", expert_ffn);
  return 0;
}

/* The model_type of hf: *type its name ("hf" when absent) and *gated
** whether its MLP is gated.  The known types are gpt2 (not gated) and
** llama, mistral, mixtral, qwen2 (gated); any other, or none, is an error
** naming the config file and the field, unless the job's model object
** (overrides, may be NULL) sets gated_mlp, which then says which MLP the
** model has (README "Models"). */
static int hf_model_type(const cJSON *hf, const char *file, const cJSON *overrides,
                         const char **type, bool *gated, ts_err_t *err) {
  static const char *const GATED[] = {"llama", "mistral", "mixtral", "qwen2", NULL};
  static const char *const PLAIN[] = {"gpt2", NULL};
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(hf, "model_type");
  if (mt && !cJSON_IsString(mt))
    return ts_err_set(err, EX_DATAERR, "%s: model_type: expected a string", file);
  *type = mt ? mt->valuestring : "hf";
  *gated = ts__in_list(GATED, *type);
  if (*gated || ts__in_list(PLAIN, *type)) return 0;
  if (overrides && cJSON_GetObjectItemCaseSensitive(overrides, "gated_mlp")) return 0;
  if (mt && ts__has_control(*type))
    return ts_err_set(err, EX_DATAERR, "%s: model_type: control character in a string", file);
  return ts_err_set(err, EX_DATAERR,
                    "%s: model_type: %s%s%s (known: gpt2, llama, mistral, mixtral, qwen2); for "
                    "another model give the job's model as {\"config\": ..., \"gated_mlp\": "
                    "true or false}",
                    file, mt ? "unknown model type '" : "missing field", mt ? *type : "",
                    mt ? "'" : "");
}

/* The attention, embedding and norm shape of hf (model_type type, heads
** query heads, seq its context length or 0) into m: kv_heads
** (num_key_value_heads, default heads), head_dim (when given),
** tie_embeddings (tie_word_embeddings; default true for gpt2 and other
** types, false for the Llama family, as transformers' config classes),
** position (gpt2 learned with max_positions = n_positions, the Llama
** family rotary; another type rotary when it has rope_theta, rope_scaling
** or rotary_dim), norm (gpt2 LayerNorm, the Llama family RMSNorm; another
** type RMSNorm when it has rms_norm_eps), bias (gpt2 all; qwen2 Q, K and
** V only; otherwise attention_bias and mlp_bias, both false by default in
** the Llama family and true for another type, which must agree) and
** final_norm (true: every Hugging Face causal LM ends in one). */
static int hf_shape(const cJSON *hf, const char *file, const char *type, int heads, int seq,
                    cJSON *m, ts_err_t *err) {
  static const char *const LLAMA[] = {"llama", "mistral", "mixtral", "qwen2", NULL};
  static const char *const KV[] = {"num_key_value_heads", NULL};
  static const char *const HD[] = {"head_dim", NULL};
  bool gpt2 = strcmp(type, "gpt2") == 0, llama = ts__in_list(LLAMA, type);
  int kv, hd, rc;
  bool tie, ab, mb;
  if ((rc = hf_int(hf, file, KV, heads, &kv, err)) || (rc = hf_int(hf, file, HD, 0, &hd, err)) ||
      (rc = hf_bool(hf, file, "tie_word_embeddings", !llama, &tie, err)) ||
      (rc = hf_bool(hf, file, "attention_bias", !llama, &ab, err)) ||
      (rc = hf_bool(hf, file, "mlp_bias", !llama, &mb, err)))
    return rc;
  if (heads % kv)
    return ts_err_set(err, EX_DATAERR,
                      "%s: num_key_value_heads: %d query heads cannot be grouped evenly over %d "
                      "key/value heads",
                      file, heads, kv);
  bool rotary = llama || (!gpt2 && (cJSON_GetObjectItemCaseSensitive(hf, "rope_theta") ||
                                    cJSON_GetObjectItemCaseSensitive(hf, "rope_scaling") ||
                                    cJSON_GetObjectItemCaseSensitive(hf, "rotary_dim")));
  bool rms = llama || (!gpt2 && cJSON_GetObjectItemCaseSensitive(hf, "rms_norm_eps"));
  const char *bias = gpt2 ? "all" : strcmp(type, "qwen2") == 0 ? "qkv" : ab ? "all" : "none";
  if (!gpt2 && strcmp(type, "qwen2") && ab != mb)
    return ts_err_set(err, EX_DATAERR,
                      "%s: mlp_bias: %s with attention_bias %s is not modelled (biases on "
                      "every linear layer or on none)",
                      file, mb ? "true" : "false", ab ? "true" : "false");
  cJSON_AddNumberToObject(m, "kv_heads", kv);
  if (hd) cJSON_AddNumberToObject(m, "head_dim", hd);
  cJSON_AddBoolToObject(m, "tie_embeddings", tie);
  cJSON_AddStringToObject(m, "position", rotary ? "rotary" : "learned");
  if (!rotary && seq) cJSON_AddNumberToObject(m, "max_positions", seq);
  cJSON_AddStringToObject(m, "norm", rms ? "rmsnorm" : "layernorm");
  cJSON_AddStringToObject(m, "bias", bias);
  cJSON_AddBoolToObject(m, "final_norm", true);
  return 0;
}

/* Translates a Hugging Face config (GPT-2: n_layer, n_embd, n_head,
** n_inner, n_positions; Llama/Mistral: num_hidden_layers, hidden_size,
** num_attention_heads, intermediate_size, max_position_embeddings) into
** a new transformer object *out; *hf_seq is the context length (0 when
** the config has none).  Llama-family models get gated_mlp; overrides
** (may be NULL) is the job's model object (hf_model_type). */
static int hf_translate(const cJSON *hf, const char *file, const cJSON *overrides, cJSON **out,
                        int *hf_seq, ts_err_t *err) {
  static const char *const L[] = {"n_layer", "num_hidden_layers", "num_layers", NULL};
  static const char *const H[] = {"n_embd", "hidden_size", "d_model", NULL};
  static const char *const A[] = {"n_head", "num_attention_heads", NULL};
  static const char *const F[] = {"n_inner", "intermediate_size", "ffn_dim", NULL};
  static const char *const V[] = {"vocab_size", NULL};
  static const char *const S[] = {"n_positions", "max_position_embeddings", "n_ctx", NULL};
  int layers, hidden, heads, ffn, vocab, seq;
  int rc;
  if ((rc = hf_int(hf, file, L, -1, &layers, err)) ||
      (rc = hf_int(hf, file, H, -1, &hidden, err)) || (rc = hf_int(hf, file, A, -1, &heads, err)) ||
      (rc = hf_int(hf, file, F, 0, &ffn, err)) || (rc = hf_int(hf, file, V, -1, &vocab, err)) ||
      (rc = hf_int(hf, file, S, 0, &seq, err)))
    return rc;
  const char *type = NULL;
  bool gated = false;
  if ((rc = hf_model_type(hf, file, overrides, &type, &gated, err)) ||
      (rc = hf_check_fields(hf, file, err)))
    return rc;
  if (!ffn && 4LL * hidden > 100000000) /* the job's bound on ffn_hidden */
    return ts_err_set(err, EX_DATAERR,
                      "%s: the hidden size %d is too large: 4 x hidden, the default MLP width, "
                      "exceeds 1e8",
                      file, hidden);
  if (!ffn) ffn = 4 * hidden;
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "kind", "transformer");
  cJSON_AddStringToObject(m, "name", type);
  cJSON_AddNumberToObject(m, "layers", layers);
  cJSON_AddNumberToObject(m, "hidden", hidden);
  cJSON_AddNumberToObject(m, "heads", heads);
  cJSON_AddNumberToObject(m, "ffn_hidden", ffn);
  cJSON_AddNumberToObject(m, "vocab", vocab);
  cJSON_AddBoolToObject(m, "gated_mlp", gated);
  const cJSON *dp = hf_get(hf, (const char *const[]){"resid_pdrop", "hidden_dropout", NULL});
  cJSON_AddBoolToObject(m, "dropout", cJSON_IsNumber(dp) && dp->valuedouble > 0);
  if ((rc = hf_shape(hf, file, type, heads, seq, m, err)) ||
      (rc = hf_moe(hf, file, ffn, m, err))) {
    cJSON_Delete(m);
    return rc;
  }
  *out = m;
  *hf_seq = seq;
  return 0;
}

/* Reads, parses and translates the config at path hfpath. */
static int hf_load(const char *hfpath, const cJSON *overrides, cJSON **out, int *hf_seq,
                   ts_err_t *err) {
  size_t hlen = 0;
  char *htext = ts__read_file(hfpath, &hlen);
  cJSON *hf = NULL;
  int rc = htext ? ts__parse_json(htext, hlen, hfpath, &hf, err)
                 : ts_err_set(err, EX_NOINPUT, "%s: cannot read: %s", hfpath,
                              ts__read_error(errno));
  free(htext);
  /* A trainsim model object ("kind": "transformer" or "synthetic") is
  ** taken as it is; its fields are checked with the job's. */
  if (!rc && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(hf, "kind"))) {
    *out = cJSON_Duplicate(hf, 1);
    *hf_seq = 0;
  } else if (!rc) {
    rc = hf_translate(hf, hfpath, overrides, out, hf_seq, err);
  }
  cJSON_Delete(hf);
  return rc;
}

int ts__hf_expand_model(cJSON *root, ts_job_t *job, ts_err_t *err) {
  cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  cJSON *overrides = NULL;
  const cJSON *cfg =
      cJSON_IsObject(model) ? cJSON_GetObjectItemCaseSensitive(model, "config") : NULL;
  if (cfg) {
    if (!cJSON_IsString(cfg))
      return ts_err_set(err, EX_DATAERR, "%s: model.config: expected the path of a config.json",
                        job->path);
    overrides = cJSON_Duplicate(model, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(overrides, "config");
    model = cJSON_CreateString(cfg->valuestring);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model", model);
  }
  if (!cJSON_IsString(model)) return 0;
  char hfpath[TS_PATH_MAX];
  if (!ts__resolve_path(model->valuestring, job->base_dir, "examples", ".json", hfpath)) {
    int rc = ts_err_set(err, EX_NOINPUT, "%s: model%s: no such file '%s'", job->path,
                        overrides ? ".config" : "", model->valuestring);
    cJSON_Delete(overrides);
    return rc;
  }
  cJSON *tm = NULL;
  int hf_seq = 0;
  int rc = hf_load(hfpath, overrides, &tm, &hf_seq, err);
  if (rc) {
    cJSON_Delete(overrides);
    return rc;
  }
  if (overrides) ts__merge_json(tm, overrides);
  cJSON_Delete(overrides);
  cJSON_ReplaceItemInObjectCaseSensitive(root, "model", tm);
  if (hf_seq > 0 && !cJSON_GetObjectItemCaseSensitive(root, "seq_len")) job->seq_len = hf_seq;
  return 0;
}
