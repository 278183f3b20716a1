/*
** ts_job.c: loading and validating a job file.
**
** A job is a JSON object (README "Job file").  Loading goes in four steps:
**   1. parse the file with cJSON (a syntax error reports file:line:column);
**   2. if "model" is a string, read that Hugging Face config.json (GPT-2 or
**      Llama field names) and replace it by the equivalent transformer
**      object, so that `--set model.NAME=...` applies to it too;
**   3. apply every `--set PATH=VALUE` to the tree (platform.link.* and
**      platform.host.* are kept aside as platform overrides);
**   4. validate every field into a ts_job_t.  Unknown fields are errors:
**      a typo must not silently fall back to a default.
** Every error is one line naming the file and the field path.
*/
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_runtime.h"

extern const char ts__default_job_json[];

/* ---- small helpers -------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static bool file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Resolves a path named in a job: as given when absolute; else relative to
** the job's directory, then the current directory, then the source tree's
** `subdir` (with and without `ext`).  Returns false when none exists. */
static bool resolve_path(const char *name, const char *base, const char *subdir,
                         const char *ext, char out[TS_PATH_MAX]) {
  if (name[0] == '/') {
    snprintf(out, TS_PATH_MAX, "%s", name);
    return file_exists(out);
  }
  snprintf(out, TS_PATH_MAX, "%s/%s", base, name);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s", name);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s/%s/%s", TS_SOURCE_DIR, subdir, name);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s/%s/%s%s", TS_SOURCE_DIR, subdir, name, ext);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s", name);
  return false;
}

/* Line and column (1-based) of offset off in text. */
static void line_col(const char *text, size_t off, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off && text[i]; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

static int parse_json(const char *text, size_t len, const char *file, cJSON **out,
                      ts_err_t *err) {
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1); /* + the NUL */
  if (!j) {
    size_t off = end ? (size_t)(end - text) : 0;
    const char *ep = cJSON_GetErrorPtr();
    if (ep && ep >= text && ep <= text + len) off = (size_t)(ep - text);
    /* cJSON points one byte past a missing object key ("{... ,}"): step
    ** back onto the offending character. */
    if (off > 0 && off <= len && !isspace((unsigned char)text[off - 1])) {
      size_t k = off - 1;
      while (k > 0 && isspace((unsigned char)text[k - 1])) k--;
      if (k > 0 && (text[k - 1] == ',' || text[k - 1] == '{')) off--;
    }
    int line, col;
    line_col(text, off, &line, &col);
    return ts_err_set(err, EX_DATAERR, "%s:%d:%d: malformed JSON", file, line, col);
  }
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return ts_err_set(err, EX_DATAERR, "%s: expected a JSON object at the top level", file);
  }
  *out = j;
  return 0;
}

/* ---- Hugging Face config.json -> transformer object ------------------ */

static const cJSON *hf_get(const cJSON *hf, const char *const *names) {
  for (; *names; names++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(hf, *names);
    if (v && !cJSON_IsNull(v)) return v;
  }
  return NULL;
}

static int hf_int(const cJSON *hf, const char *file, const char *const *names,
                  int dflt, int *out, ts_err_t *err) {
  const cJSON *v = hf_get(hf, names);
  if (!v) {
    if (dflt >= 0) {
      *out = dflt;
      return 0;
    }
  {
    char all[160] = "";
    for (int i = 0; names[i]; i++) {
      if (i) strncat(all, " / ", sizeof all - strlen(all) - 1);
      strncat(all, names[i], sizeof all - strlen(all) - 1);
    }
    return ts_err_set(err, EX_DATAERR, "%s: %s: missing field", file, all);
  }
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
      v->valuedouble > 1e9)
    return ts_err_set(err, EX_DATAERR, "%s: %s: expected a positive integer", file, v->string);
  *out = (int)v->valuedouble;
  return 0;
}

/* Translates a Hugging Face config (GPT-2: n_layer, n_embd, n_head,
** n_inner, n_positions; Llama/Mistral: num_hidden_layers, hidden_size,
** num_attention_heads, intermediate_size, max_position_embeddings) into
** trainsim's transformer object.  Llama-family models get gated_mlp. */
static int hf_translate(const cJSON *hf, const char *file, cJSON **out, int *hf_seq,
                        ts_err_t *err) {
  static const char *const L[] = {"n_layer", "num_hidden_layers", "num_layers", NULL};
  static const char *const H[] = {"n_embd", "hidden_size", "d_model", NULL};
  static const char *const A[] = {"n_head", "num_attention_heads", NULL};
  static const char *const F[] = {"n_inner", "intermediate_size", "ffn_dim", NULL};
  static const char *const V[] = {"vocab_size", NULL};
  static const char *const S[] = {"n_positions", "max_position_embeddings", "n_ctx", NULL};
  int layers, hidden, heads, ffn, vocab, seq;
  int rc;
  if ((rc = hf_int(hf, file, L, -1, &layers, err)) || (rc = hf_int(hf, file, H, -1, &hidden, err)) ||
      (rc = hf_int(hf, file, A, -1, &heads, err)) || (rc = hf_int(hf, file, F, 0, &ffn, err)) ||
      (rc = hf_int(hf, file, V, -1, &vocab, err)) || (rc = hf_int(hf, file, S, 0, &seq, err)))
    return rc;
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(hf, "model_type");
  const char *type = cJSON_IsString(mt) ? mt->valuestring : "hf";
  bool gated = strcmp(type, "llama") == 0 || strcmp(type, "mistral") == 0 ||
               strcmp(type, "mixtral") == 0 || strcmp(type, "qwen2") == 0;
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "kind", "transformer");
  cJSON_AddStringToObject(m, "name", type);
  cJSON_AddNumberToObject(m, "layers", layers);
  cJSON_AddNumberToObject(m, "hidden", hidden);
  cJSON_AddNumberToObject(m, "heads", heads);
  cJSON_AddNumberToObject(m, "ffn_hidden", ffn ? ffn : 4 * hidden);
  cJSON_AddNumberToObject(m, "vocab", vocab);
  cJSON_AddBoolToObject(m, "gated_mlp", gated);
  const cJSON *dp = hf_get(hf, (const char *const[]){"resid_pdrop", "hidden_dropout", NULL});
  cJSON_AddBoolToObject(m, "dropout", cJSON_IsNumber(dp) && dp->valuedouble > 0);
  /* Mixtral-style sparse MLPs: every layer's MLP is num_local_experts
  ** experts of intermediate_size; GShard gating is top-2 only. */
  static const char *const NE[] = {"num_local_experts", NULL};
  static const char *const TK[] = {"num_experts_per_tok", NULL};
  if (hf_get(hf, NE)) {
    int ne, tk;
    if ((rc = hf_int(hf, file, NE, -1, &ne, err)) || (rc = hf_int(hf, file, TK, 2, &tk, err))) {
      cJSON_Delete(m);
      return rc;
    }
    if (ne < 2) {
      cJSON_Delete(m);
      return ts_err_set(err, EX_DATAERR,
                        "%s: num_local_experts: a mixture of experts needs at least 2, got %d", file,
                        ne);
    }
    if (tk != 2) {
      cJSON_Delete(m);
      return ts_err_set(err, EX_DATAERR,
                        "%s: num_experts_per_tok: GShard gating routes each token to 2 experts, "
                        "got %d",
                        file, tk);
    }
    cJSON *moe = cJSON_AddObjectToObject(m, "moe");
    cJSON_AddNumberToObject(moe, "experts", ne);
    cJSON_AddNumberToObject(moe, "every", 1);
    cJSON_AddNumberToObject(moe, "expert_ffn", ffn ? ffn : 4 * hidden);
  }
  *out = m;
  *hf_seq = seq;
  return 0;
}

/* ---- --set ----------------------------------------------------------- */

static const char *const job_fields[] = {
    "model", "platform", "schedule", "stages", "microbatches", "micro_batch_size",
    "seq_len", "recompute", "placement", "bytes_per_element", "chunks", "iterations",
    "description", "devices", "mapping", "mapping_groups", NULL};
static const char *const transformer_fields[] = {
    "kind", "name", "layers", "hidden", "heads", "ffn_hidden", "vocab",
    "flash_attention", "dropout", "gated_mlp", "moe", NULL};
static const char *const moe_fields[] = {
    "experts", "capacity_factor", "capacity_multiple", "group_size", "expert_parallel",
    "every", "expert_ffn", "routing", "alltoall", NULL};
static const char *const routing_fields[] = {"skew", "exponent", "table", "seed", NULL};
static const char *const synthetic_fields[] = {
    "kind", "name", "forward_s", "backward_s", "recompute_s", "weight_grad_s",
    "activation_message_bytes", "activation_bytes", "weights_bytes", NULL};

static bool in_list(const char *const *list, const char *s) {
  for (; *list; list++)
    if (strcmp(*list, s) == 0) return true;
  return false;
}

/* Parses "50GBps", "200Gbps", "2us", "312Tf", "1e9" into SI base units
** (B/s, s, FLOP/s).  what is 'b' bandwidth, 't' time, 'f' speed. */
static bool parse_units(const char *s, char what, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !isfinite(v)) return false;
  static const struct { const char *suffix; char what; double mul; } U[] = {
      {"", 0, 1},         {"Bps", 'b', 1},     {"kBps", 'b', 1e3},   {"KBps", 'b', 1e3},
      {"MBps", 'b', 1e6}, {"GBps", 'b', 1e9},  {"TBps", 'b', 1e12},  {"bps", 'b', 0.125},
      {"kbps", 'b', 125}, {"Kbps", 'b', 125},  {"Mbps", 'b', 1.25e5}, {"Gbps", 'b', 1.25e8},
      {"Tbps", 'b', 1.25e11}, {"s", 't', 1},   {"ms", 't', 1e-3},    {"us", 't', 1e-6},
      {"ns", 't', 1e-9},  {"f", 'f', 1},       {"kf", 'f', 1e3},     {"Mf", 'f', 1e6},
      {"Gf", 'f', 1e9},   {"Tf", 'f', 1e12},   {"Pf", 'f', 1e15}};
  for (size_t i = 0; i < sizeof U / sizeof U[0]; i++) {
    if (strcmp(end, U[i].suffix) == 0 && (U[i].what == 0 || U[i].what == what)) {
      *out = v * U[i].mul;
      return true;
    }
  }
  return false;
}

static int apply_platform_set(ts_job_t *job, const char *path, const char *value,
                              ts_err_t *err) {
  /* platform.link.PATTERN.FIELD or platform.host.PATTERN.FIELD; the
  ** pattern may itself contain dots, the field is after the last one. */
  const char *rest = path + strlen("platform.");
  char what;
  if (strncmp(rest, "link.", 5) == 0)
    what = 'l';
  else if (strncmp(rest, "host.", 5) == 0)
    what = 'h';
  else
    return ts_err_set(err, EX_USAGE,
                      "--set '%s': unknown path (platform paths are platform.link.NAME.bandwidth, "
                      "platform.link.NAME.latency, platform.host.NAME.speed)",
                      path);
  rest += 5;
  const char *dot = strrchr(rest, '.');
  if (!dot || dot == rest)
    return ts_err_set(err, EX_USAGE, "--set '%s': expected platform.%s.NAME.FIELD", path,
                      what == 'l' ? "link" : "host");
  const char *field = dot + 1;
  char unit;
  if (what == 'l' && strcmp(field, "bandwidth") == 0)
    unit = 'b';
  else if (what == 'l' && strcmp(field, "latency") == 0)
    unit = 't';
  else if (what == 'h' && strcmp(field, "speed") == 0)
    unit = 'f';
  else
    return ts_err_set(err, EX_USAGE, "--set '%s': unknown %s field '%s'", path,
                      what == 'l' ? "link" : "host", field);
  double v;
  if (!parse_units(value, unit, &v) || v < 0 || (unit != 't' && v == 0))
    return ts_err_set(err, EX_USAGE, "--set '%s': bad value '%s' (e.g. %s)", path, value,
                      unit == 'b' ? "50GBps, 200Gbps" : unit == 't' ? "2us, 1e-6" : "312Tf");
  if ((size_t)(dot - rest) >= TS_NAME_MAX)
    return ts_err_set(err, EX_USAGE, "--set '%s': name pattern too long", path);
  job->overrides = realloc(job->overrides, (size_t)(job->n_overrides + 1) * sizeof *job->overrides);
  struct ts_override *o = &job->overrides[job->n_overrides++];
  memset(o, 0, sizeof *o);
  o->what = what;
  memcpy(o->pattern, rest, (size_t)(dot - rest));
  snprintf(o->field, sizeof o->field, "%s", field);
  o->value = v;
  return 0;
}

static int apply_set(cJSON *root, ts_job_t *job, const char *arg, ts_err_t *err) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return ts_err_set(err, EX_USAGE, "--set '%s': expected PATH=VALUE", arg);
  char path[512];
  size_t plen = (size_t)(eq - arg);
  if (plen >= sizeof path) return ts_err_set(err, EX_USAGE, "--set: path too long");
  memcpy(path, arg, plen);
  path[plen] = 0;
  const char *value = eq + 1;
  if (strncmp(path, "platform.", 9) == 0) return apply_platform_set(job, path, value, err);

  cJSON *parent = root;
  const char *key = path;
  if (strncmp(path, "model.", 6) == 0) {
    key = path + 6;
    parent = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(parent))
      return ts_err_set(err, EX_USAGE, "--set '%s': the job's model is not an object", path);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(parent, "kind");
    bool synth = cJSON_IsString(kind) && strcmp(kind->valuestring, "synthetic") == 0;
    /* model.moe.FIELD and model.moe.routing.FIELD: objects created when absent. */
    if (!synth && strncmp(key, "moe.", 4) == 0) {
      const char *sub = strncmp(key + 4, "routing.", 8) == 0 ? key + 12 : NULL;
      const char *f = sub ? sub : key + 4;
      if (!in_list(sub ? routing_fields : moe_fields, f) || (!sub && !strcmp(f, "routing")))
        return ts_err_set(err, EX_USAGE, "--set '%s': unknown %s field '%s'", path,
                          sub ? "model.moe.routing" : "model.moe", f);
      for (int lvl = 0; lvl < (sub ? 2 : 1); lvl++) {
        const char *name = lvl ? "routing" : "moe";
        cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, name);
        if (!o) o = cJSON_AddObjectToObject(parent, name);
        if (!cJSON_IsObject(o))
          return ts_err_set(err, EX_USAGE, "--set '%s': %s is not an object", path, name);
        parent = o;
      }
      key = f;
      goto set_value;
    }
    if (!in_list(synth ? synthetic_fields : transformer_fields, key))
      return ts_err_set(err, EX_USAGE, "--set '%s': unknown %s model field '%s'", path,
                        synth ? "synthetic" : "transformer", key);
  } else if (!in_list(job_fields, key)) {
    return ts_err_set(err, EX_USAGE, "--set '%s': unknown job field '%s'", path, key);
  }
set_value:;
  /* JSON when the whole value is JSON ("16", "true", "[...]"); otherwise a
  ** bare word is a string ("gpipe", and "1f1b", which is not the number 1). */
  cJSON *v = cJSON_ParseWithOpts(value, NULL, 1);
  if (!v) v = cJSON_CreateString(value);
  if (cJSON_GetObjectItemCaseSensitive(parent, key))
    cJSON_ReplaceItemInObjectCaseSensitive(parent, key, v);
  else
    cJSON_AddItemToObject(parent, key, v);
  return 0;
}

/* ---- validation -------------------------------------------------------- */

typedef struct {
  const char *file;
  const char *prefix; /* "" or "model." */
  ts_err_t *err;
} vctx_t;

static int check_fields(const cJSON *obj, const char *const *allowed, vctx_t *c) {
  for (const cJSON *it = obj->child; it; it = it->next)
    if (!in_list(allowed, it->string))
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: unknown field", c->file, c->prefix,
                        it->string);
  return 0;
}

/* Reads an integer field.  dflt < 0 means required. */
static int get_int(const cJSON *obj, const char *key, int dflt, int min, int *out, vctx_t *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    if (dflt < 0)
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: missing field", c->file, c->prefix, key);
    *out = dflt;
    return 0;
  }
  if (!cJSON_IsNumber(v))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected an integer", c->file, c->prefix, key);
  double d = v->valuedouble;
  if (!isfinite(d))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: not a finite number", c->file, c->prefix, key);
  if (d != floor(d))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected an integer, got %g", c->file,
                      c->prefix, key, d);
  if (d < min || d > 1e8)
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: must be %s %d%s, got %g", c->file, c->prefix,
                      key, d < min ? "at least" : "at most", d < min ? min : 100000000,
                      "", d);
  *out = (int)d;
  return 0;
}

static int get_bool(const cJSON *obj, const char *key, bool dflt, bool *out, vctx_t *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    *out = dflt;
    return 0;
  }
  if (!cJSON_IsBool(v))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected true or false", c->file, c->prefix,
                      key);
  *out = cJSON_IsTrue(v);
  return 0;
}

static int get_string(const cJSON *obj, const char *key, const char *dflt, const char **out,
                      vctx_t *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    if (!dflt)
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: missing field", c->file, c->prefix, key);
    *out = dflt;
    return 0;
  }
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected a non-empty string", c->file,
                      c->prefix, key);
  *out = v->valuestring;
  return 0;
}

static int check_number(const cJSON *v, const char *key, int idx, double min, bool strict,
                        double *out, vctx_t *c) {
  char where[160];
  if (idx >= 0)
    snprintf(where, sizeof where, "%s%s[%d]", c->prefix, key, idx);
  else
    snprintf(where, sizeof where, "%s%s", c->prefix, key);
  if (!cJSON_IsNumber(v))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s: expected a number", c->file, where);
  double d = v->valuedouble;
  if (!isfinite(d))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s: not a finite number", c->file, where);
  if (strict ? d <= min : d < min)
    return ts_err_set(c->err, EX_DATAERR, "%s: %s: must be %s %g, got %g", c->file, where,
                      strict ? "greater than" : "at least", min, d);
  *out = d;
  return 0;
}

/* A number, or an array with one number per stage.  dflt: NULL required,
** else copied (per stage) when absent.  Returns a new array of n. */
static int get_per_stage(const cJSON *obj, const char *key, int n, const double *dflt,
                         double scale_dflt, double **out, vctx_t *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  double *a = calloc((size_t)n, sizeof *a);
  *out = a;
  if (!v) {
    if (!dflt)
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: missing field", c->file, c->prefix, key);
    for (int i = 0; i < n; i++) a[i] = dflt[i] * scale_dflt;
    return 0;
  }
  if (cJSON_IsArray(v)) {
    int len = cJSON_GetArraySize(v);
    if (len != n)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: %s%s: expected one value per stage (%d), got %d", c->file, c->prefix,
                        key, n, len);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
      int rc = check_number(it, key, i, 0, false, &a[i], c);
      if (rc) return rc;
    }
    return 0;
  }
  double d;
  int rc = check_number(v, key, -1, 0, false, &d, c);
  if (rc) return rc;
  for (int i = 0; i < n; i++) a[i] = d;
  return 0;
}

/* Reads a routing table file: {"probabilities": [E non-negative numbers
** with a positive sum]} (top-1 probabilities, normalised when used). */
static int read_table(const char *name, ts_job_t *job, vctx_t *c) {
  ts_moe_t *mo = &job->model.moe;
  char path[TS_PATH_MAX];
  if (!resolve_path(name, job->base_dir, "examples", ".json", path))
    return ts_err_set(c->err, EX_NOINPUT, "%s: model.moe.routing.table: no such file '%s'", c->file,
                      name);
  size_t len;
  char *text = read_file(path, &len);
  if (!text) return ts_err_set(c->err, EX_NOINPUT, "%s: cannot read: %s", path, strerror(errno));
  cJSON *t = NULL;
  int rc = parse_json(text, len, path, &t, c->err);
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
  mo->table = calloc((size_t)mo->experts, sizeof(double));
  double sum = 0;
  int i = 0;
  for (const cJSON *it = a->child; it; it = it->next, i++) {
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0) {
      cJSON_Delete(t);
      return ts_err_set(c->err, EX_DATAERR, "%s: probabilities[%d]: expected a non-negative number",
                        path, i);
    }
    sum += (mo->table[i] = it->valuedouble);
  }
  cJSON_Delete(t);
  if (!(sum > 0))
    return ts_err_set(c->err, EX_DATAERR, "%s: probabilities: they sum to 0", path);
  return 0;
}

static int validate_moe(const cJSON *o, ts_job_t *job, vctx_t *jc) {
  vctx_t c = {jc->file, "model.moe.", jc->err};
  ts_model_t *md = &job->model;
  ts_moe_t *mo = &md->moe;
  int rc;
  if (!cJSON_IsObject(o))
    return ts_err_set(c.err, EX_DATAERR, "%s: model.moe: expected an object", c.file);
  if ((rc = check_fields(o, moe_fields, &c)) || (rc = get_int(o, "experts", -1, 2, &mo->experts, &c)) ||
      (rc = get_int(o, "capacity_multiple", 4, 1, &mo->capacity_multiple, &c)) ||
      (rc = get_int(o, "group_size", 0, 0, &mo->group_size, &c)) ||
      (rc = get_int(o, "expert_parallel", 1, 1, &mo->expert_parallel, &c)) ||
      (rc = get_int(o, "every", 2, 1, &mo->every, &c)) ||
      (rc = get_int(o, "expert_ffn", md->ffn_hidden, 1, &mo->expert_ffn, &c)))
    return rc;
  const char *a2a;
  if ((rc = get_string(o, "alltoall", "capacity", &a2a, &c))) return rc;
  if (strcmp(a2a, "capacity") && strcmp(a2a, "tokens"))
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.moe.alltoall: expected \"capacity\" or \"tokens\", got '%s'", c.file,
                      a2a);
  mo->alltoall_tokens = strcmp(a2a, "tokens") == 0;
  mo->capacity_factor = 2.0;
  const cJSON *cf = cJSON_GetObjectItemCaseSensitive(o, "capacity_factor");
  if (cf && (rc = check_number(cf, "capacity_factor", -1, 0, true, &mo->capacity_factor, &c)))
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
  mo->skew = TS_MOE_UNIFORM;
  mo->exponent = 1.0;
  mo->seed = 1;
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "routing");
  if (!r) return 0;
  vctx_t rc2 = {jc->file, "model.moe.routing.", jc->err};
  if (!cJSON_IsObject(r))
    return ts_err_set(c.err, EX_DATAERR, "%s: model.moe.routing: expected an object", c.file);
  const char *skew, *table = NULL;
  int seed;
  if ((rc = check_fields(r, routing_fields, &rc2)) ||
      (rc = get_string(r, "skew", "uniform", &skew, &rc2)) ||
      (rc = get_int(r, "seed", 1, 0, &seed, &rc2)))
    return rc;
  mo->seed = (unsigned long)seed;
  const cJSON *ex = cJSON_GetObjectItemCaseSensitive(r, "exponent");
  if (ex && (rc = check_number(ex, "exponent", -1, 0, false, &mo->exponent, &rc2))) return rc;
  if (cJSON_GetObjectItemCaseSensitive(r, "table") &&
      (rc = get_string(r, "table", NULL, &table, &rc2)))
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
  if (table) return read_table(table, job, &c);
  return 0;
}

static int validate_model(const cJSON *m, ts_job_t *job, vctx_t *jc) {
  vctx_t c = {jc->file, "model.", jc->err};
  ts_model_t *md = &job->model;
  const char *kind;
  int rc;
  if ((rc = get_string(m, "kind", NULL, &kind, &c))) return rc;
  if (strcmp(kind, "synthetic") == 0) {
    md->kind = TS_MODEL_SYNTHETIC;
    if ((rc = check_fields(m, synthetic_fields, &c))) return rc;
    const char *name;
    if ((rc = get_string(m, "name", "synthetic", &name, &c))) return rc;
    snprintf(md->name, sizeof md->name, "%s", name);
    int n = job->stages;
    if ((rc = get_per_stage(m, "forward_s", n, NULL, 1, &md->forward_s, &c)) ||
        (rc = get_per_stage(m, "backward_s", n, NULL, 1, &md->backward_s, &c)) ||
        (rc = get_per_stage(m, "recompute_s", n, md->forward_s, 1, &md->recompute_s, &c)) ||
        (rc = get_per_stage(m, "weight_grad_s", n, md->backward_s, 0.5, &md->weight_grad_s, &c)) ||
        (rc = get_per_stage(m, "activation_bytes", n, NULL, 1, &md->activation_bytes, &c)))
      return rc;
    double zero[1] = {0};
    double *z = calloc((size_t)n, sizeof *z);
    (void)zero;
    rc = get_per_stage(m, "weights_bytes", n, z, 1, &md->weights_bytes, &c);
    free(z);
    if (rc) return rc;
    const cJSON *amb = cJSON_GetObjectItemCaseSensitive(m, "activation_message_bytes");
    if (!amb)
      return ts_err_set(c.err, EX_DATAERR, "%s: model.activation_message_bytes: missing field",
                        c.file);
    if ((rc = check_number(amb, "activation_message_bytes", -1, 0, false,
                           &md->activation_message_bytes, &c)))
      return rc;
    for (int i = 0; i < n; i++) {
      if (md->weight_grad_s[i] > md->backward_s[i])
        return ts_err_set(c.err, EX_DATAERR,
                          "%s: model.weight_grad_s[%d]: %g exceeds backward_s %g (it is the "
                          "weight-gradient part of the backward)",
                          c.file, i, md->weight_grad_s[i], md->backward_s[i]);
    }
    return 0;
  }
  if (strcmp(kind, "transformer") != 0)
    return ts_err_set(c.err, EX_DATAERR,
                      "%s: model.kind: unknown model kind '%s' (known: transformer, synthetic)",
                      c.file, kind);
  md->kind = TS_MODEL_TRANSFORMER;
  if ((rc = check_fields(m, transformer_fields, &c))) return rc;
  const char *name;
  if ((rc = get_string(m, "name", "transformer", &name, &c))) return rc;
  snprintf(md->name, sizeof md->name, "%s", name);
  if ((rc = get_int(m, "layers", -1, 1, &md->layers, &c)) ||
      (rc = get_int(m, "hidden", -1, 1, &md->hidden, &c)) ||
      (rc = get_int(m, "heads", -1, 1, &md->heads, &c)) ||
      (rc = get_int(m, "ffn_hidden", 0, 0, &md->ffn_hidden, &c)) ||
      (rc = get_int(m, "vocab", -1, 1, &md->vocab, &c)) ||
      (rc = get_bool(m, "flash_attention", true, &md->flash_attention, &c)) ||
      (rc = get_bool(m, "dropout", false, &md->dropout, &c)) ||
      (rc = get_bool(m, "gated_mlp", false, &md->gated_mlp, &c)))
    return rc;
  if (md->ffn_hidden == 0) md->ffn_hidden = 4 * md->hidden;
  if (md->hidden % md->heads)
    return ts_err_set(c.err, EX_DATAERR, "%s: model.heads: hidden size %d is not divisible by %d heads",
                      c.file, md->hidden, md->heads);
  const cJSON *moe = cJSON_GetObjectItemCaseSensitive(m, "moe");
  if (moe) return validate_moe(moe, job, &c);
  return 0;
}

/* devices, mapping and mapping_groups: only schedules that keep weights in
** host memory run more stages than devices. */
static int validate_devices(const cJSON *root, const ts_schedule_t *s, ts_job_t *job, vctx_t *c) {
  int rc;
  /* gshard: a stage is replicated over its expert-parallel group. */
  int ep = job->model.moe.experts > 0 ? job->model.moe.expert_parallel : 1;
  if ((rc = get_int(root, "devices", job->stages * ep, 1, &job->devices, c)) ||
      (rc = get_int(root, "mapping_groups", 2, 1, &job->mapping_groups, c)))
    return rc;
  const cJSON *mp = cJSON_GetObjectItemCaseSensitive(root, "mapping");
  if (cJSON_IsNull(mp)) mp = NULL; /* --set mapping=null removes it */
  if (!s->host_weights) {
    if (job->devices != job->stages * ep)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: devices: schedule '%s' runs one stage per device (%d%s), got %d devices",
                        c->file, job->schedule, job->stages * ep,
                        ep > 1 ? ": stages x model.moe.expert_parallel" : "", job->devices);
    if (mp)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: mapping: schedule '%s' maps stage k to device k (mapping is for "
                        "mobius and gpipe-swap)",
                        c->file, job->schedule);
    return 0;
  }
  if (!mp) { /* the schedule's default, as the summary reports it */
    const char *r = s->default_mapping ? s->default_mapping : "sequential";
    if (!strcmp(r, "cross") && job->devices % job->mapping_groups) r = "sequential";
    snprintf(job->mapping_rule, sizeof job->mapping_rule, "%s", r);
    return 0;
  }
  if (cJSON_IsString(mp)) {
    const char *r = mp->valuestring;
    if (strcmp(r, "sequential") && strcmp(r, "cross") && strcmp(r, "block"))
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: mapping: expected \"sequential\", \"cross\", \"block\" or an array "
                        "of devices, got '%s'",
                        c->file, r);
    snprintf(job->mapping_rule, sizeof job->mapping_rule, "%s", r);
    return 0;
  }
  if (!cJSON_IsArray(mp))
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: mapping: expected a rule name or an array of one device per stage",
                      c->file);
  int n = cJSON_GetArraySize(mp);
  if (n != job->stages)
    return ts_err_set(c->err, EX_DATAERR, "%s: mapping: expected one device per stage (%d), got %d",
                      c->file, job->stages, n);
  job->mapping = calloc((size_t)n, sizeof(int));
  snprintf(job->mapping_rule, sizeof job->mapping_rule, "explicit");
  int i = 0;
  for (const cJSON *it = mp->child; it; it = it->next, i++) {
    if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble ||
        it->valueint < 0 || it->valueint >= job->devices)
      return ts_err_set(c->err, EX_DATAERR, "%s: mapping[%d]: expected a device index 0..%d",
                        c->file, i, job->devices - 1);
    job->mapping[i] = it->valueint;
  }
  return 0;
}

static int validate(const cJSON *root, ts_job_t *job, vctx_t *c) {
  int rc;
  if ((rc = check_fields(root, job_fields, c))) return rc;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!model) return ts_err_set(c->err, EX_DATAERR, "%s: model: missing field", c->file);
  if (!cJSON_IsObject(model))
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: model: expected an object or the path of a config.json", c->file);
  const char *sched, *plat, *rec;
  if ((rc = get_string(root, "schedule", NULL, &sched, c))) return rc;
  const ts_schedule_t *s = ts_schedule_find(sched);
  if (!s) {
    char known[512] = "";
    for (int i = 0; ts_schedule_at(i); i++) {
      if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
      strncat(known, ts_schedule_at(i)->name, sizeof known - strlen(known) - 1);
    }
    return ts_err_set(c->err, EX_DATAERR, "%s: schedule: unknown schedule '%s' (known: %s)", c->file,
                      sched, known);
  }
  snprintf(job->schedule, sizeof job->schedule, "%s", sched);
  if ((rc = get_int(root, "stages", -1, 1, &job->stages, c)) ||
      (rc = get_int(root, "microbatches", -1, 1, &job->microbatches, c)) ||
      (rc = get_int(root, "micro_batch_size", 1, 1, &job->micro_batch_size, c)) ||
      (rc = get_int(root, "chunks", 1, 1, &job->chunks, c)) ||
      (rc = get_int(root, "iterations", 1, 1, &job->iterations, c)) ||
      (rc = get_int(root, "bytes_per_element", 2, 1, &job->bytes_per_element, c)))
    return rc;
  int seq_default = job->seq_len > 0 ? job->seq_len : 1024; /* HF n_positions */
  if ((rc = get_int(root, "seq_len", seq_default, 1, &job->seq_len, c))) return rc;
  if (job->bytes_per_element > 8)
    return ts_err_set(c->err, EX_DATAERR, "%s: bytes_per_element: must be at most 8, got %d",
                      c->file, job->bytes_per_element);
  if ((rc = get_string(root, "recompute", "none", &rec, c))) return rc;
  if (strcmp(rec, "none") == 0)
    job->recompute = TS_RECOMPUTE_NONE;
  else if (strcmp(rec, "full") == 0)
    job->recompute = TS_RECOMPUTE_FULL;
  else
    return ts_err_set(c->err, EX_DATAERR, "%s: recompute: expected \"none\" or \"full\", got '%s'",
                      c->file, rec);
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
  if (desc && !cJSON_IsString(desc))
    return ts_err_set(c->err, EX_DATAERR, "%s: description: expected a string", c->file);

  if ((rc = validate_model(model, job, c))) return rc;
  if (job->model.kind == TS_MODEL_TRANSFORMER && job->stages * job->chunks > job->model.layers)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: stages: %d stages x %d chunks exceed the model's %d layers", c->file,
                      job->stages, job->chunks, job->model.layers);

  if ((rc = get_string(root, "platform", NULL, &plat, c))) return rc;
  snprintf(job->platform_arg, sizeof job->platform_arg, "%s", plat);
  if (strcmp(plat, "ideal") == 0) {
    job->platform_ideal = true;
    snprintf(job->platform, sizeof job->platform, "ideal");
  } else if (!resolve_path(plat, job->base_dir, "platforms", ".xml", job->platform)) {
    return ts_err_set(c->err, EX_NOINPUT, "%s: platform: no such file '%s'", c->file, plat);
  }

  if ((rc = validate_devices(root, s, job, c))) return rc;
  const cJSON *pl = cJSON_GetObjectItemCaseSensitive(root, "placement");
  if (pl) {
    if (!cJSON_IsArray(pl))
      return ts_err_set(c->err, EX_DATAERR, "%s: placement: expected an array of host names",
                        c->file);
    int n = cJSON_GetArraySize(pl);
    if (n != job->devices)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: placement: expected one host per device (%d), got %d", c->file,
                        job->devices, n);
    job->placement = calloc((size_t)n, sizeof(char *));
    job->n_placement = n;
    int i = 0;
    for (const cJSON *it = pl->child; it; it = it->next, i++) {
      if (!cJSON_IsString(it) || !it->valuestring[0])
        return ts_err_set(c->err, EX_DATAERR, "%s: placement[%d]: expected a host name", c->file, i);
      for (int k = 0; k < i; k++)
        if (strcmp(job->placement[k], it->valuestring) == 0)
          return ts_err_set(c->err, EX_DATAERR,
                            "%s: placement[%d]: host '%s' already holds stage %d", c->file, i,
                            it->valuestring, k);
      job->placement[i] = strdup(it->valuestring);
    }
  }
  if (job->model.moe.experts > 0 && !s->moe)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: schedule: a model with model.moe needs schedule \"gshard\" or "
                      "\"gshard-gpipe\", got '%s'",
                      c->file, job->schedule);
  if (s->check && (rc = s->check(job, c->err))) return rc;
  return 0;
}

/* ---- entry points ------------------------------------------------------ */

/* Copies every field of src into dst: objects present in both are merged
** recursively, anything else replaces dst's field. */
static void merge_json(cJSON *dst, const cJSON *src) {
  for (const cJSON *it = src->child; it; it = it->next) {
    cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, it->string);
    if (d && cJSON_IsObject(d) && cJSON_IsObject(it))
      merge_json(d, it);
    else if (d)
      cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, cJSON_Duplicate(it, 1));
    else
      cJSON_AddItemToObject(dst, it->string, cJSON_Duplicate(it, 1));
  }
}

int ts_job_load(const char *path, const char *const *sets, int n_sets, ts_job_t **out,
                ts_err_t *err) {
  *out = NULL;
  ts_job_t *job = calloc(1, sizeof *job);
  cJSON *root = NULL;
  char *text = NULL;
  size_t len = 0;
  int rc;
  if (path) {
    snprintf(job->path, sizeof job->path, "%s", path);
    text = read_file(path, &len);
    if (!text) {
      rc = ts_err_set(err, EX_NOINPUT, "%s: cannot read job file: %s", path, strerror(errno));
      goto fail;
    }
    const char *slash = strrchr(path, '/');
    if (slash)
      snprintf(job->base_dir, sizeof job->base_dir, "%.*s", (int)(slash - path), path);
    else
      snprintf(job->base_dir, sizeof job->base_dir, ".");
  } else {
    snprintf(job->path, sizeof job->path, "<default job>");
    snprintf(job->base_dir, sizeof job->base_dir, "%s/examples", TS_SOURCE_DIR);
    text = strdup(ts__default_job_json);
    len = strlen(text);
  }
  if ((rc = parse_json(text, len, job->path, &root, err))) goto fail;

  /* A model given as a path: a Hugging Face config.json; or as an object
  ** {"config": path, FIELD: value...} whose other fields override the
  ** translated model's (objects such as "moe" are merged field by field). */
  cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  cJSON *overrides = NULL;
  const cJSON *cfg = cJSON_IsObject(model) ? cJSON_GetObjectItemCaseSensitive(model, "config") : NULL;
  if (cfg) {
    if (!cJSON_IsString(cfg)) {
      rc = ts_err_set(err, EX_DATAERR, "%s: model.config: expected the path of a config.json",
                      job->path);
      goto fail;
    }
    overrides = cJSON_Duplicate(model, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(overrides, "config");
    model = cJSON_CreateString(cfg->valuestring);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model", model);
  }
  if (cJSON_IsString(model)) {
    char hfpath[TS_PATH_MAX];
    if (!resolve_path(model->valuestring, job->base_dir, "examples", ".json", hfpath)) {
      rc = ts_err_set(err, EX_NOINPUT, "%s: model%s: no such file '%s'", job->path,
                      overrides ? ".config" : "", model->valuestring);
      cJSON_Delete(overrides);
      goto fail;
    }
    size_t hlen;
    char *htext = read_file(hfpath, &hlen);
    cJSON *hf = NULL, *tm = NULL;
    int hf_seq = 0;
    rc = htext ? parse_json(htext, hlen, hfpath, &hf, err)
               : ts_err_set(err, EX_NOINPUT, "%s: cannot read: %s", hfpath, strerror(errno));
    free(htext);
    if (!rc) rc = hf_translate(hf, hfpath, &tm, &hf_seq, err);
    cJSON_Delete(hf);
    if (rc) cJSON_Delete(overrides);
    if (rc) goto fail;
    if (overrides) merge_json(tm, overrides);
    cJSON_Delete(overrides);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "model", tm);
    if (hf_seq > 0 && !cJSON_GetObjectItemCaseSensitive(root, "seq_len"))
      job->seq_len = hf_seq;
  }
  for (int i = 0; i < n_sets; i++)
    if ((rc = apply_set(root, job, sets[i], err))) {
      /* Name the job the --set applies to, as every error names its file. */
      char msg[sizeof err->msg];
      snprintf(msg, sizeof msg, "%.400s: %.600s", job->path, err->msg);
      snprintf(err->msg, sizeof err->msg, "%s", msg);
      goto fail;
    }

  vctx_t c = {job->path, "", err};
  if ((rc = validate(root, job, &c))) goto fail;
  cJSON_Delete(root);
  free(text);
  *out = job;
  return 0;
fail:
  cJSON_Delete(root);
  free(text);
  ts_job_free(job);
  return rc;
}

void ts_job_free(ts_job_t *job) {
  if (!job) return;
  ts_model_t *m = &job->model;
  free(m->forward_s);
  free(m->backward_s);
  free(m->recompute_s);
  free(m->weight_grad_s);
  free(m->activation_bytes);
  free(m->weights_bytes);
  free(m->moe.table);
  for (int i = 0; i < job->n_placement; i++) free(job->placement[i]);
  free(job->placement);
  free(job->mapping);
  free(job->overrides);
  free(job);
}
