/*
** job_model.c: validating a job's model.
**
** The model is a transformer (layers, hidden, heads, ... from which the
** cost model derives per-stage times and sizes: its attention heads,
** grouped key/value heads, head size, position embeddings, norms, biases
** and tied embeddings too) or a synthetic model
** (per-stage times and sizes given directly).  A transformer may have a
** mixture-of-experts MLP (model.moe), whose routing may be skewed by a
** Zipf law or by a table of per-expert probabilities read from a file.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_internal.h"

/* Reads a routing table file: {"probabilities": [E non-negative numbers
** with a positive sum]} (top-1 probabilities, normalised when used). */
static int read_table(const char *name, ts_job_t *job, vctx_t *c) {
  ts_moe_t *mo = &job->model.moe;
  char path[TS_PATH_MAX];
  if (!ts__resolve_path(name, job->base_dir, "examples", ".json", path))
    return ts_err_set(c->err, EX_NOINPUT, "%s: model.moe.routing.table: no such file '%s'",
                      c->file, name);
  size_t len = 0;
  char *text = ts__read_file(path, &len);
  if (!text) return ts_err_set(c->err, EX_NOINPUT, "%s: cannot read: %s", path, ts__read_error(errno));
  cJSON *t = NULL;
  int rc = ts__parse_json(text, len, path, &t, c->err);
  free(text);
  if (rc) return rc;
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "probabilities");
  if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != mo->experts) {
    cJSON_Delete(t);
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: probabilities: expected an array of one probability per expert (%d), "
                      "as model.moe.routing.table of %s",
                      path, mo->experts, c->file);
  }
  mo->table = ts__xcalloc((size_t)mo->experts, sizeof(double));
  double sum = 0;
  int i = 0;
  for (const cJSON *it = a->child; it; it = it->next, i++) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0) {
      cJSON_Delete(t);
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: probabilities[%d]: expected a non-negative number", path, i);
    }
    sum += (mo->table[i] = it->valuedouble);
  }
  cJSON_Delete(t);
  if (!(sum > 0))
    return ts_err_set(c->err, EX_DATAERR, "%s: probabilities: they sum to 0", path);
  return 0;
}

/* model.moe.routing (r): the skew of the experts' load, its exponent and
** seed, and the table of probabilities when skew is "table". */
static int validate_routing(const cJSON *r, ts_job_t *job, vctx_t *jc) {
  vctx_t c = {jc->file, "model.moe.routing.", jc->err};
  ts_moe_t *mo = &job->model.moe;
  int rc;
  if (!cJSON_IsObject(r))
    return ts_err_set(c.err, EX_DATAERR, "%s: model.moe.routing: expected an object", c.file);
  const char *skew = NULL, *table = NULL;
  int seed = 1;
  if ((rc = ts__check_fields(r, ts__routing_fields, &c)) ||
      (rc = ts__get_string(r, "skew", "uniform", &skew, &c)) ||
      (rc = ts__get_int(r, "seed", 1, 0, &seed, &c)))
    return rc;
  mo->seed = (unsigned long)seed;
  const cJSON *ex = cJSON_GetObjectItemCaseSensitive(r, "exponent");
  if (ex && (rc = ts__check_number(ex, "exponent", -1, 0, false, &mo->exponent, &c))) return rc;
  if (cJSON_GetObjectItemCaseSensitive(r, "table") &&
      (rc = ts__get_string(r, "table", NULL, &table, &c)))
    return rc;
  if (strcmp(skew, "uniform") == 0)
    mo->skew = TS_MOE_UNIFORM;
  else if (strcmp(skew, "zipf") == 0)
    mo->skew = TS_MOE_ZIPF;
  else if (strcmp(skew, "table") == 0)
    mo->skew = TS_MOE_TABLE;
  else
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.routing.skew: expected \"uniform\", \"zipf\" or \"table\", "
                      "got '%s'",
                      c.file, skew);
  if ((mo->skew == TS_MOE_TABLE) != (table != NULL))
    return ts_err_set(c.err, EX_DATAERR, "%s: model.moe.routing.table: %s", c.file,
                      table ? "given but skew is not \"table\"" : "missing field (skew \"table\")");
  if (table) return read_table(table, job, jc);
  return 0;
}

/* model.moe (o): the experts, their capacity and parallelism, which
** layers are MoE, the all-to-all's payload and the routing. */
static int validate_moe(const cJSON *o, ts_job_t *job, vctx_t *jc) {
  vctx_t c = {jc->file, "model.moe.", jc->err};
  ts_model_t *md = &job->model;
  ts_moe_t *mo = &md->moe;
  int rc;
  if (!cJSON_IsObject(o))
    return ts_err_set(c.err, EX_DATAERR, "%s: model.moe: expected an object", c.file);
  if ((rc = ts__check_fields(o, ts__moe_fields, &c)) ||
      (rc = ts__get_int(o, "experts", -1, 2, &mo->experts, &c)) ||
      (rc = ts__get_int(o, "capacity_multiple", 4, 1, &mo->capacity_multiple, &c)) ||
      (rc = ts__get_int(o, "group_size", 0, 0, &mo->group_size, &c)) ||
      (rc = ts__get_int(o, "expert_parallel", 1, 1, &mo->expert_parallel, &c)) ||
      (rc = ts__get_int(o, "every", 2, 1, &mo->every, &c)) ||
      (rc = ts__get_int(o, "expert_ffn", md->ffn_hidden, 1, &mo->expert_ffn, &c)))
    return rc;
  const char *a2a = NULL;
  if ((rc = ts__get_string(o, "alltoall", "capacity", &a2a, &c))) return rc;
  if (strcmp(a2a, "capacity") && strcmp(a2a, "tokens"))
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.alltoall: expected \"capacity\" or \"tokens\", got '%s'", c.file,
                      a2a);
  mo->alltoall_tokens = strcmp(a2a, "tokens") == 0;
  mo->capacity_factor = 2.0;
  const cJSON *cf = cJSON_GetObjectItemCaseSensitive(o, "capacity_factor");
  if (cf && (rc = ts__check_number(cf, "capacity_factor", -1, 0, true, &mo->capacity_factor, &c)))
    return rc;
  if (mo->experts % mo->expert_parallel)
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.expert_parallel: %d experts cannot be spread evenly over %d "
                      "devices",
                      c.file, mo->experts, mo->expert_parallel);
  if (mo->every > md->layers)
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.every: %d exceeds the model's %d layers (no MoE layer)", c.file,
                      mo->every, md->layers);
  long tokens = (long)job->micro_batch_size * job->seq_len;
  if (mo->group_size && tokens % mo->group_size)
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.group_size: %d does not divide the %ld tokens of a "
                      "micro-batch (micro_batch_size x seq_len)",
                      c.file, mo->group_size, tokens);
  /* An all-to-all sends experts / expert_parallel x groups x capacity rows
  ** (ts_moe_rows), an int: bound it for one lane (the most). */
  long S = mo->group_size ? mo->group_size : tokens, groups = tokens / S;
  double cap = fmax(1, ceil((double)S * mo->capacity_factor / mo->experts - 1e-9));
  cap = ceil(cap / mo->capacity_multiple) * mo->capacity_multiple;
  if ((double)mo->experts * (double)groups * cap > (double)TS__PRODUCT_MAX)
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.capacity_factor: experts x groups x capacity: %d x %ld x %.0f "
                      "token slots exceed 2^31 - 1",
                      c.file, mo->experts, groups, cap);
  mo->skew = TS_MOE_UNIFORM;
  mo->exponent = 1.0;
  mo->seed = 1;
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "routing");
  return r ? validate_routing(r, job, jc) : 0;
}

/* Fails when a value of the per-stage array a (n, field key of m) exceeds
** max (unit "s" or "B"); a value that was not given (a default derived
** from a checked field) is not checked again. */
static int bound_per_stage(const cJSON *m, const char *key, const double *a, int n, double max,
                           const char *unit, const char *bound, vctx_t *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
  if (!v) return 0;
  for (int i = 0; i < n; i++) {
    if (a[i] <= max) continue;
    char idx[24] = "";
    if (cJSON_IsArray(v)) snprintf(idx, sizeof idx, "[%d]", i);
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s%s: %.17g %s exceeds %s", c->file, c->prefix,
                      key, idx, a[i], unit, bound);
  }
  return 0;
}

/* The bounds of a synthetic model's times and bytes (README "Limits"). */
static int bound_synthetic(const cJSON *m, const ts_model_t *md, int n, vctx_t *c) {
  static const char *const times[] = {"forward_s", "backward_s", "recompute_s", "weight_grad_s"};
  const double *tv[] = {md->forward_s, md->backward_s, md->recompute_s, md->weight_grad_s};
  int rc;
  for (int k = 0; k < 4; k++)
    if ((rc = bound_per_stage(m, times[k], tv[k], n, TS__SECONDS_MAX, "s", "1e6 s", c)))
      return rc;
  if ((rc = bound_per_stage(m, "activation_bytes", md->activation_bytes, n, TS__BYTES_MAX, "B",
                            "2^53 B", c)) ||
      (rc = bound_per_stage(m, "weights_bytes", md->weights_bytes, n, TS__BYTES_MAX, "B",
                            "2^53 B", c)) ||
      (rc = bound_per_stage(m, "forward_transient_bytes", md->forward_transient_bytes, n,
                            TS__BYTES_MAX, "B", "2^53 B", c)) ||
      (rc = bound_per_stage(m, "backward_transient_bytes", md->backward_transient_bytes, n,
                            TS__BYTES_MAX, "B", "2^53 B", c)) ||
      (rc = bound_per_stage(m, "activation_message_bytes", &md->activation_message_bytes, 1,
                            TS__BYTES_MAX, "B", "2^53 B", c)))
    return rc;
  return 0;
}

/* A synthetic model (m): per-stage times and sizes as given. */
static int validate_synthetic(const cJSON *m, ts_job_t *job, vctx_t *c) {
  ts_model_t *md = &job->model;
  int rc;
  md->kind = TS_MODEL_SYNTHETIC;
  if ((rc = ts__check_fields(m, ts__synthetic_fields, c))) return rc;
  const char *name = NULL;
  if ((rc = ts__get_string(m, "name", "synthetic", &name, c))) return rc;
  snprintf(md->name, sizeof md->name, "%s", name);
  int n = job->stages;
  if ((rc = ts__get_per_stage(m, "forward_s", n, NULL, 1, &md->forward_s, c)) ||
      (rc = ts__get_per_stage(m, "backward_s", n, NULL, 1, &md->backward_s, c)) ||
      (rc = ts__get_per_stage(m, "recompute_s", n, md->forward_s, 1, &md->recompute_s, c)) ||
      (rc = ts__get_per_stage(m, "weight_grad_s", n, md->backward_s, 0.5, &md->weight_grad_s, c)) ||
      (rc = ts__get_per_stage(m, "activation_bytes", n, NULL, 1, &md->activation_bytes, c)))
    return rc;
  double *z = ts__xcalloc((size_t)n, sizeof *z);
  /* weights_bytes and the transients (README "Memory") default to 0 */
  rc = ts__get_per_stage(m, "weights_bytes", n, z, 1, &md->weights_bytes, c);
  if (!rc)
    rc = ts__get_per_stage(m, "forward_transient_bytes", n, z, 1, &md->forward_transient_bytes, c);
  if (!rc)
    rc = ts__get_per_stage(m, "backward_transient_bytes", n, z, 1, &md->backward_transient_bytes,
                           c);
  free(z);
  if (rc) return rc;
  const cJSON *amb = cJSON_GetObjectItemCaseSensitive(m, "activation_message_bytes");
  if (!amb)
    return ts_err_set(c->err, EX_DATAERR, "%s: model.activation_message_bytes: missing field",
                      c->file);
  if ((rc = ts__check_number(amb, "activation_message_bytes", -1, 0, false,
                             &md->activation_message_bytes, c)))
    return rc;
  if ((rc = bound_synthetic(m, md, n, c))) return rc;
  for (int i = 0; i < n; i++) {
    if (md->weight_grad_s[i] > md->backward_s[i])
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: model.weight_grad_s[%d]: %g exceeds backward_s %g (it is the "
                        "weight-gradient part of the backward)",
                        c->file, i, md->weight_grad_s[i], md->backward_s[i]);
  }
  return 0;
}

/* The index of value s in the NULL-terminated names, or -1; a one-line
** error naming model.key and the choices otherwise. */
static int pick(const char *key, const char *s, const char *const *names, int *out, vctx_t *c) {
  for (int i = 0; names[i]; i++)
    if (strcmp(s, names[i]) == 0) return *out = i, 0;
  char all[128] = "";
  for (int i = 0; names[i]; i++) {
    if (i) strncat(all, names[i + 1] ? ", " : " or ", sizeof all - strlen(all) - 1);
    snprintf(all + strlen(all), sizeof all - strlen(all), "\"%s\"", names[i]);
  }
  return ts_err_set(c->err, EX_DATAERR, "%s: model.%s: expected %s, got '%s'", c->file, key, all,
                    s);
}

/* The attention, embedding and normalisation shape of a transformer (m):
** kv_heads, head_dim, tie_embeddings, position, max_positions, norm, bias,
** final_norm (README "Models"); the defaults count a GPT-style model as
** before these fields existed. */
static int validate_shape(const cJSON *m, ts_model_t *md, vctx_t *c) {
  static const char *const POS[] = {"learned", "rotary", NULL};
  static const char *const NORM[] = {"layernorm", "rmsnorm", NULL};
  static const char *const BIAS[] = {"all", "none", "qkv", NULL};
  const char *pos = NULL, *norm = NULL, *bias = NULL;
  int p = 0, n = 0, b = 0, rc;
  bool dim_given = cJSON_GetObjectItemCaseSensitive(m, "head_dim") != NULL;
  if ((rc = ts__get_int(m, "kv_heads", md->heads, 1, &md->kv_heads, c)) ||
      (rc = ts__get_int(m, "head_dim", md->hidden / md->heads, 1, &md->head_dim, c)) ||
      (rc = ts__get_bool(m, "tie_embeddings", true, &md->tie_embeddings, c)) ||
      (rc = ts__get_string(m, "position", "learned", &pos, c)) ||
      (rc = ts__get_int(m, "max_positions", 0, 0, &md->max_positions, c)) ||
      (rc = ts__get_string(m, "norm", "layernorm", &norm, c)) ||
      (rc = ts__get_string(m, "bias", "all", &bias, c)) ||
      (rc = ts__get_bool(m, "final_norm", false, &md->final_norm, c)) ||
      (rc = pick("position", pos, POS, &p, c)) || (rc = pick("norm", norm, NORM, &n, c)) ||
      (rc = pick("bias", bias, BIAS, &b, c)))
    return rc;
  md->position = p ? TS_POSITION_ROTARY : TS_POSITION_LEARNED;
  md->norm = n ? TS_NORM_RMSNORM : TS_NORM_LAYERNORM;
  md->bias = b == 1 ? TS_BIAS_NONE : b == 2 ? TS_BIAS_QKV : TS_BIAS_ALL;
  if (!dim_given && md->hidden % md->heads)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: model.heads: hidden size %d is not divisible by %d heads", c->file,
                      md->hidden, md->heads);
  if (md->heads % md->kv_heads)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: model.kv_heads: %d query heads cannot be grouped evenly over %d "
                      "key/value heads",
                      c->file, md->heads, md->kv_heads);
  if ((double)md->heads * md->head_dim > 1e8)
    return ts_err_set(c->err, EX_DATAERR, "%s: model.head_dim: heads x head_dim exceeds 1e8",
                      c->file);
  if (md->position == TS_POSITION_ROTARY && md->max_positions)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: model.max_positions: rotary position embeddings have no table "
                      "(max_positions is for \"learned\")",
                      c->file);
  return 0;
}

/* A transformer (m): its shape, and model.moe when present. */
static int validate_transformer(const cJSON *m, ts_job_t *job, vctx_t *c) {
  ts_model_t *md = &job->model;
  int rc;
  md->kind = TS_MODEL_TRANSFORMER;
  if ((rc = ts__check_fields(m, ts__transformer_fields, c))) return rc;
  const char *name = NULL;
  if ((rc = ts__get_string(m, "name", "transformer", &name, c))) return rc;
  snprintf(md->name, sizeof md->name, "%s", name);
  if ((rc = ts__get_int(m, "layers", -1, 1, &md->layers, c)) ||
      (rc = ts__get_int(m, "hidden", -1, 1, &md->hidden, c)) ||
      (rc = ts__get_int(m, "heads", -1, 1, &md->heads, c)) ||
      (rc = ts__get_int(m, "ffn_hidden", 0, 0, &md->ffn_hidden, c)) ||
      (rc = ts__get_int(m, "vocab", -1, 1, &md->vocab, c)) ||
      (rc = ts__get_bool(m, "flash_attention", true, &md->flash_attention, c)) ||
      (rc = ts__get_bool(m, "dropout", false, &md->dropout, c)) ||
      (rc = ts__get_bool(m, "gated_mlp", false, &md->gated_mlp, c)))
    return rc;
  if (md->ffn_hidden == 0) md->ffn_hidden = 4 * md->hidden;
  if ((rc = validate_shape(m, md, c))) return rc;
  const cJSON *moe = cJSON_GetObjectItemCaseSensitive(m, "moe");
  return moe ? validate_moe(moe, job, c) : 0;
}

int ts__validate_model(const cJSON *m, ts_job_t *job, vctx_t *jc) {
  vctx_t c = {jc->file, "model.", jc->err};
  const char *kind = NULL;
  int rc;
  if ((rc = ts__get_string(m, "kind", NULL, &kind, &c))) return rc;
  if (strcmp(kind, "synthetic") == 0) return validate_synthetic(m, job, &c);
  if (strcmp(kind, "transformer") != 0)
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.kind: unknown model kind '%s' (known: transformer, synthetic)",
                      c.file, kind);
  return validate_transformer(m, job, &c);
}
