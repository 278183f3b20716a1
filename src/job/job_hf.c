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
** says which MLP the model has (hf_model_type).
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
  if ((rc = hf_model_type(hf, file, overrides, &type, &gated, err))) return rc;
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
  if ((rc = hf_moe(hf, file, ffn, m, err))) {
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
