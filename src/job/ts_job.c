/*
** ts_job.c: loading and validating a job file (ts_job_load, ts_job_free).
**
** A job is a JSON object (README "Job file").  Loading goes in four steps:
**   1. parse the file with cJSON (a syntax error reports file:line:column;
**      job_json.c);
**   2. if "model" is a string, read that Hugging Face config.json (GPT-2 or
**      Llama field names) and replace it by the equivalent transformer
**      object, so that `--set model.NAME=...` applies to it too (job_hf.c);
**   3. apply every `--set PATH=VALUE` to the tree (platform.link.* and
**      platform.host.* are kept aside as platform overrides; job_set.c);
**      a --set that makes "model" a path (model=PATH) reads it as in 2;
**   4. validate every field into a ts_job_t: the top level and the devices
**      here, the model in job_model.c.  Unknown fields are errors: a typo
**      must not silently fall back to a default.
** Every error is one line naming the file and the field path.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_runtime.h"
#include "ts_internal.h"

extern const char ts__default_job_json[];

/* ---- the schema --------------------------------------------------------- */

const char *const ts__job_fields[] = {
    "model", "platform", "schedule", "stages", "microbatches", "micro_batch_size",
    "seq_len", "recompute", "placement", "bytes_per_element", "chunks", "iterations",
    "description", "devices", "mapping", "mapping_groups", "data_parallel", "rank_order",
    "zero", "fsdp_unit", "gradient_bucket_mb", "overlap_grad_reduce", "optimizer", "table",
    "partition", "layers_per_stage", "tensor_parallel", "tensor_parallel_mode",
    "tensor_parallel_depth", "sequence_parallel", "pipeline_scatter_gather",
    "collective_algorithm", "nvlink_domain_size", NULL};
const char *const ts__transformer_fields[] = {
    "kind", "name", "layers", "hidden", "heads", "ffn_hidden", "vocab",
    "flash_attention", "dropout", "gated_mlp", "moe", "kv_heads", "head_dim",
    "tie_embeddings", "position", "max_positions", "norm", "bias", "final_norm", NULL};
const char *const ts__moe_fields[] = {
    "experts", "capacity_factor", "capacity_multiple", "group_size", "expert_parallel",
    "every", "expert_ffn", "routing", "alltoall", NULL};
const char *const ts__routing_fields[] = {"skew", "exponent", "table", "seed", NULL};
const char *const ts__synthetic_fields[] = {
    "kind", "name", "forward_s", "backward_s", "recompute_s", "weight_grad_s",
    "activation_message_bytes", "activation_bytes", "weights_bytes",
    "forward_transient_bytes", "backward_transient_bytes", NULL};

/* ---- devices ------------------------------------------------------------ */

/* mapping (mp, not NULL) of a schedule that keeps weights in host memory:
** a rule name, or an array of one device per stage. */
static int validate_mapping(const cJSON *mp, ts_job_t *job, vctx_t *c) {
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
  job->mapping = ts__xcalloc((size_t)n, sizeof(int));
  snprintf(job->mapping_rule, sizeof job->mapping_rule, "explicit");
  int i = 0;
  for (const cJSON *it = mp->child; it; it = it->next, i++) {
    /* range first: casting a double outside int's range is undefined */
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble < job->devices) ||
        it->valuedouble != (double)(int)it->valuedouble)
      return ts_err_set(c->err, EX_DATAERR, "%s: mapping[%d]: expected a device index 0..%d",
                        c->file, i, job->devices - 1);
    job->mapping[i] = it->valueint;
  }
  return 0;
}

static bool runs_moe(const ts_schedule_t *s) { return s->moe != 0; }
static bool keeps_host_weights(const ts_schedule_t *s) { return s->host_weights != 0; }

/* The registered schedules that pick accepts, into buf (truncated to n):
** "a", "a <last> b", "a, b <last> c", each name between quote marks q. */
static void schedule_names(char *buf, size_t n, bool (*pick)(const ts_schedule_t *), const char *q,
                           const char *last) {
  int total = 0, k = 0;
  for (int i = 0; ts_schedule_at(i); i++) total += pick(ts_schedule_at(i));
  buf[0] = 0;
  for (int i = 0; ts_schedule_at(i); i++) {
    if (!pick(ts_schedule_at(i))) continue;
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "%s%s%s%s", k == 0 ? "" : k == total - 1 ? last : ", ", q,
             ts_schedule_at(i)->name, q);
    k++;
  }
}

/* devices, mapping and mapping_groups.  Only schedules that keep weights
** in host memory run more stages than devices: there "devices" is the
** pipeline's positions, given by the job.  Every other job uses the devices
** of its parallel plan (ts_plan_for_job: the pipeline rule's positions x
** the replicas over the other dimensions, e.g. gshard's expert-parallel
** lanes); that is the default of "devices" and the only value accepted. */
static int validate_devices(const cJSON *root, const ts_schedule_t *s, ts_job_t *job, vctx_t *c) {
  int rc, want = job->stages, ep = 1;
  if (!s->host_weights) {
    long long n = ts_plan_job_devices(job, s, &ep);
    if (n > 1 << 24)
      return ts_err_set(c->err, EX_DATAERR, "%s: devices: the job needs %lld devices, more than %d",
                        c->file, n, 1 << 24);
    want = (int)n;
  }
  if ((rc = ts__get_int(root, "devices", want, 1, &job->devices, c)) ||
      (rc = ts__get_int(root, "mapping_groups", 2, 1, &job->mapping_groups, c)))
    return rc;
  const cJSON *mp = cJSON_GetObjectItemCaseSensitive(root, "mapping");
  if (cJSON_IsNull(mp)) mp = NULL; /* --set mapping=null removes it */
  if (!s->host_weights) {
    if (job->devices != want) {
      const bool dp = job->data_parallel > 1;
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: devices: schedule '%s' runs one stage per device (%d%s%s%s), got %d "
                        "devices",
                        c->file, job->schedule, want, ep > 1 || dp ? ": stages" : "",
                        ep > 1 ? " x model.moe.expert_parallel" : "", dp ? " x data_parallel" : "",
                        job->devices);
    }
    if (mp) {
      char names[256];
      schedule_names(names, sizeof names, keeps_host_weights, "", " and ");
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: mapping: schedule '%s' maps stage k to device k (mapping is for %s)",
                        c->file, job->schedule, names);
    }
    return 0;
  }
  if (!mp) { /* the schedule's default, as the summary reports it */
    const char *r = s->default_mapping ? s->default_mapping : "sequential";
    if (!strcmp(r, "cross") && job->devices % job->mapping_groups) r = "sequential";
    snprintf(job->mapping_rule, sizeof job->mapping_rule, "%s", r);
    return 0;
  }
  return validate_mapping(mp, job, c);
}

/* placement (pl, not NULL): one distinct host name per device. */
static int validate_placement(const cJSON *pl, ts_job_t *job, vctx_t *c) {
  if (!cJSON_IsArray(pl))
    return ts_err_set(c->err, EX_DATAERR, "%s: placement: expected an array of host names",
                      c->file);
  int n = cJSON_GetArraySize(pl);
  if (n != job->devices)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: placement: expected one host per device (%d), got %d", c->file,
                      job->devices, n);
  job->placement = ts__xcalloc((size_t)n, sizeof(char *));
  job->n_placement = n;
  int i = 0;
  for (const cJSON *it = pl->child; it; it = it->next, i++) {
    if (!cJSON_IsString(it) || !it->valuestring[0])
      return ts_err_set(c->err, EX_DATAERR, "%s: placement[%d]: expected a host name", c->file, i);
    for (int k = 0; k < i; k++)
      if (strcmp(job->placement[k], it->valuestring) == 0)
        return ts_err_set(c->err, EX_DATAERR, "%s: placement[%d]: host '%s' already holds stage %d",
                          c->file, i, it->valuestring, k);
    job->placement[i] = ts__xstrdup(it->valuestring);
  }
  return 0;
}

/* ---- the top level -------------------------------------------------------- */

/* schedule: one of the registered schedules, into *out. */
static int validate_schedule(const cJSON *root, ts_job_t *job, const ts_schedule_t **out,
                             vctx_t *c) {
  const char *sched = NULL;
  int rc;
  *out = NULL;
  if ((rc = ts__get_string(root, "schedule", NULL, &sched, c))) return rc;
  const ts_schedule_t *s = ts_schedule_find(sched);
  if (!s) {
    char known[512] = "";
    for (int i = 0; ts_schedule_at(i); i++) {
      if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
      strncat(known, ts_schedule_at(i)->name, sizeof known - strlen(known) - 1);
    }
    return ts_err_set(c->err, EX_DATAERR, "%s: schedule: unknown schedule '%s' (known: %s)",
                      c->file, sched, known);
  }
  snprintf(job->schedule, sizeof job->schedule, "%s", sched);
  *out = s;
  return 0;
}

/* The counts and sizes of the top level, recompute and description. */
static int validate_sizes(const cJSON *root, ts_job_t *job, vctx_t *c) {
  int rc;
  if ((rc = ts__get_int(root, "stages", -1, 1, &job->stages, c)) ||
      (rc = ts__get_int(root, "microbatches", -1, 1, &job->microbatches, c)) ||
      (rc = ts__get_int(root, "micro_batch_size", 1, 1, &job->micro_batch_size, c)) ||
      (rc = ts__get_int(root, "chunks", 1, 1, &job->chunks, c)) ||
      (rc = ts__get_int(root, "iterations", 1, 1, &job->iterations, c)) ||
      (rc = ts__get_int(root, "bytes_per_element", 2, 1, &job->bytes_per_element, c)))
    return rc;
  int seq_default = job->seq_len > 0 ? job->seq_len : 1024; /* HF n_positions */
  if ((rc = ts__get_int(root, "seq_len", seq_default, 1, &job->seq_len, c))) return rc;
  if (job->bytes_per_element > 8)
    return ts_err_set(c->err, EX_DATAERR, "%s: bytes_per_element: must be at most 8, got %d",
                      c->file, job->bytes_per_element);
  const char *rec = NULL;
  if ((rc = ts__get_string(root, "recompute", "none", &rec, c))) return rc;
  if (strcmp(rec, "none") == 0)
    job->recompute = TS_RECOMPUTE_NONE;
  else if (strcmp(rec, "full") == 0)
    job->recompute = TS_RECOMPUTE_FULL;
  else if (strcmp(rec, "selective") == 0)
    job->recompute = TS_RECOMPUTE_SELECTIVE;
  else
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: recompute: expected \"none\", \"full\" or \"selective\", got '%s'",
                      c->file, rec);
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
  if (desc && !cJSON_IsString(desc))
    return ts_err_set(c->err, EX_DATAERR, "%s: description: expected a string", c->file);
  return 0;
}

/* Fails unless the product of the n counts f (named names, "a x b") is
** at most TS__PRODUCT_MAX; the product is formed in 64 bits and stops
** growing once past the bound, so it never overflows. */
static int bound_product(const char *names, int n, const int *f, vctx_t *c) {
  long long p = 1;
  for (int i = 0; i < n; i++)
    if ((p *= f[i]) > TS__PRODUCT_MAX) p = TS__PRODUCT_MAX + 1;
  if (p <= TS__PRODUCT_MAX) return 0;
  char vals[160] = "";
  for (int i = 0; i < n; i++) {
    size_t len = strlen(vals);
    snprintf(vals + len, sizeof vals - len, "%s%d", i ? " x " : "", f[i]);
  }
  return ts_err_set(c->err, EX_DATAERR, "%s: %s: %s exceeds 2^31 - 1", c->file, names, vals);
}

/* The products of the top level's counts (README "Limits"), and those of
** a MoE model (after the model is read): every one fits an int. */
static int validate_products(const ts_job_t *job, bool moe, vctx_t *c) {
  int rc;
  const int m = job->microbatches, i = job->iterations, p = job->stages, v = job->chunks;
  if (!moe) {
    if ((rc = bound_product("microbatches x iterations", 2, (int[]){m, i}, c)) ||
        (rc = bound_product("stages x chunks", 2, (int[]){p, v}, c)) ||
        (rc = bound_product("micro_batch_size x seq_len", 2,
                            (int[]){job->micro_batch_size, job->seq_len}, c)) ||
        (rc = bound_product("stages x chunks x microbatches x iterations", 4,
                            (int[]){p, v, m, i}, c)))
      return rc;
    return 0;
  }
  const ts_moe_t *mo = &job->model.moe;
  if (job->model.kind != TS_MODEL_TRANSFORMER || mo->experts <= 0) return 0;
  /* The routing's cells: one per MoE layer, micro-batch, lane and expert. */
  return bound_product("model.moe: MoE layers x microbatches x iterations x "
                       "expert_parallel x experts",
                       5, (int[]){job->model.layers / mo->every, m, i, mo->expert_parallel,
                                  mo->experts},
                       c);
}

/* platform: "ideal", or the path of a platform XML file. */
static int validate_platform(const cJSON *root, ts_job_t *job, vctx_t *c) {
  const char *plat = NULL;
  int rc;
  if ((rc = ts__get_string(root, "platform", NULL, &plat, c))) return rc;
  snprintf(job->platform_arg, sizeof job->platform_arg, "%s", plat);
  if (strcmp(plat, "ideal") == 0) {
    job->platform_ideal = true;
    snprintf(job->platform, sizeof job->platform, "ideal");
  } else if (!ts__resolve_path(plat, job->base_dir, "platforms", ".xml", job->platform)) {
    return ts_err_set(c->err, EX_NOINPUT, "%s: platform: no such file '%s'", c->file, plat);
  }
  return 0;
}

/* table: the path of a schedule table (README "Schedules from a file"),
** relative to the job file (or the current directory, or the shipped
** examples/tables/, with or without ".json"), read into job->table. */
static int validate_table(const cJSON *root, ts_job_t *job, vctx_t *c) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "table");
  if (!t || cJSON_IsNull(t)) return 0; /* --set table=null removes it */
  const char *name = NULL;
  int rc;
  if ((rc = ts__get_string(root, "table", NULL, &name, c))) return rc;
  char path[TS_PATH_MAX];
  if (!ts__resolve_path(name, job->base_dir, "examples/tables", ".json", path))
    return ts_err_set(c->err, EX_NOINPUT, "%s: table: no such file '%s'", c->file, name);
  return ts_table_load(path, &job->table, c->err);
}

/* Validates the whole tree root into job, in the order the errors are
** reported: fields, model present, schedule, sizes, the data-parallel
** fields, the products, model and its products, the partition, the
** data-parallel combinations, platform,
** devices, placement, the table, then the schedule's own check. */
static int validate(const cJSON *root, ts_job_t *job, vctx_t *c) {
  int rc;
  if ((rc = ts__check_fields(root, ts__job_fields, c))) return rc;
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!model) return ts_err_set(c->err, EX_DATAERR, "%s: model: missing field", c->file);
  if (!cJSON_IsObject(model))
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: model: expected an object or the path of a config.json", c->file);
  const ts_schedule_t *s = NULL;
  if ((rc = validate_schedule(root, job, &s, c)) || (rc = validate_sizes(root, job, c)) ||
      (rc = ts__validate_dp_fields(root, job, c)) || (rc = ts__validate_tp_fields(root, job, c)) ||
      (rc = validate_products(job, false, c)) ||
      (rc = ts__validate_model(model, job, c)) || (rc = validate_products(job, true, c)))
    return rc;
  if (job->model.kind == TS_MODEL_TRANSFORMER &&
      (long long)job->stages * job->chunks > job->model.layers)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: stages: %d stages x %d chunks exceed the model's %d layers", c->file,
                      job->stages, job->chunks, job->model.layers);
  if ((rc = ts__validate_partition(root, job, c))) return rc;
  if ((rc = ts__check_dp_schedule(s, job, c)) || (rc = ts__check_tp(s, job, c)) ||
      (rc = validate_platform(root, job, c)) ||
      (rc = validate_devices(root, s, job, c)))
    return rc;
  const cJSON *pl = cJSON_GetObjectItemCaseSensitive(root, "placement");
  if (pl && (rc = validate_placement(pl, job, c))) return rc;
  if (job->model.moe.experts > 0 && !s->moe) {
    char names[256];
    schedule_names(names, sizeof names, runs_moe, "\"", " or ");
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: schedule: a model with model.moe needs schedule %s, got '%s'", c->file,
                      names, job->schedule);
  }
  if ((rc = validate_table(root, job, c))) return rc;
  if (s->check && (rc = s->check(job, c->err))) return rc;
  return 0;
}

/* ---- entry points ------------------------------------------------------ */

/* Reads the job file path (NULL: the built-in default job) into a new
** text *text (the caller frees it) and sets job->path and job->base_dir. */
static int read_job(const char *path, ts_job_t *job, char **text, size_t *len, ts_err_t *err) {
  if (!path) {
    snprintf(job->path, sizeof job->path, "<default job>");
    snprintf(job->base_dir, sizeof job->base_dir, "%s/examples", TS_SOURCE_DIR);
    *text = ts__xstrdup(ts__default_job_json);
    *len = strlen(*text);
    return 0;
  }
  snprintf(job->path, sizeof job->path, "%s", path);
  *text = ts__read_file(path, len);
  if (!*text)
    return ts_err_set(err, EX_NOINPUT, "%s: cannot read job file: %s", path, ts__read_error(errno));
  const char *slash = strrchr(path, '/');
  if (slash)
    snprintf(job->base_dir, sizeof job->base_dir, "%.*s", (int)(slash - path), path);
  else
    snprintf(job->base_dir, sizeof job->base_dir, ".");
  return 0;
}

/* ts_job_load, or ts_job_load_sizes when sizes_only. */
static int load(const char *path, const char *const *sets, int n_sets, bool sizes_only,
                ts_job_t **out, ts_err_t *err) {
  *out = NULL;
  ts_job_t *job = ts__xcalloc(1, sizeof *job);
  cJSON *root = NULL;
  char *text = NULL;
  size_t len = 0;
  int rc;
  if ((rc = read_job(path, job, &text, &len, err)) ||
      (rc = ts__parse_json(text, len, job->path, &root, err)) ||
      (rc = ts__hf_expand_model(root, job, err)))
    goto fail;
  for (int i = 0; i < n_sets; i++) {
    if ((rc = ts__apply_set(root, job, sets[i], err))) {
      /* Name the job the --set applies to, as every error names its file. */
      char msg[sizeof err->msg];
      snprintf(msg, sizeof msg, "%.400s: %.600s", job->path, err->msg);
      snprintf(err->msg, sizeof err->msg, "%s", msg);
      goto fail;
    }
    /* A --set that makes the model a path (model=PATH, model.config=PATH)
    ** reads that file as the job's own "model" would be read. */
    if ((rc = ts__hf_expand_model(root, job, err))) goto fail;
  }
  vctx_t c = {job->path, "", err};
  const ts_schedule_t *s = NULL;
  if (sizes_only ? (rc = ts__check_fields(root, ts__job_fields, &c)) ||
                       (rc = validate_schedule(root, job, &s, &c)) ||
                       (rc = validate_sizes(root, job, &c))
                 : (rc = validate(root, job, &c)))
    goto fail;
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

int ts_job_load(const char *path, const char *const *sets, int n_sets, ts_job_t **out,
                ts_err_t *err) {
  return load(path, sets, n_sets, false, out, err);
}

int ts_job_load_sizes(const char *path, const char *const *sets, int n_sets, ts_job_t **out,
                      ts_err_t *err) {
  return load(path, sets, n_sets, true, out, err);
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
  free(m->forward_transient_bytes);
  free(m->backward_transient_bytes);
  free(m->moe.table);
  for (int i = 0; i < job->n_placement; i++) free(job->placement[i]);
  free(job->placement);
  free(job->mapping);
  free(job->layers_per_stage);
  free(job->overrides);
  ts_table_free(job->table);
  free(job);
}
