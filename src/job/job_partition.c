/*
** job_partition.c: how a job cuts its model's layers into parts (README
** "Partitioning"): the fields partition ("uniform" or "balanced") and
** layers_per_stage (an explicit split, one layer count per model part:
** stages x chunks entries in model order, part k on stage k % stages).
** The split itself is the cost model's (ts_cost_split); this file only
** reads and checks the fields.  Every error is one line naming the job
** file and the field path.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"

/* layers_per_stage (lps, an array or not) into job->layers_per_stage. */
static int read_counts(const cJSON *lps, ts_job_t *job, vctx_t *c) {
  const ts_model_t *m = &job->model;
  long long parts = (long long)job->stages * job->chunks;
  if (!cJSON_IsArray(lps))
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: layers_per_stage: expected an array of layer counts, one per model "
                      "part (stages x chunks = %lld)",
                      c->file, parts);
  int n = cJSON_GetArraySize(lps);
  if (n != parts)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: layers_per_stage: expected one entry per model part (stages x chunks "
                      "= %lld), got %d",
                      c->file, parts, n);
  job->layers_per_stage = ts__xcalloc((size_t)n, sizeof(int));
  job->n_layers_per_stage = n;
  long long sum = 0;
  int i = 0;
  for (const cJSON *it = lps->child; it; it = it->next, i++) {
    /* range first: casting a double outside int's range is undefined */
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 1 && it->valuedouble <= m->layers) ||
        it->valuedouble != floor(it->valuedouble))
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: layers_per_stage[%d]: expected a layer count from 1 to model.layers "
                        "(%d)",
                        c->file, i, m->layers);
    job->layers_per_stage[i] = (int)it->valuedouble;
    sum += job->layers_per_stage[i];
  }
  if (sum != m->layers)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: layers_per_stage: the entries sum to %lld layers, model.layers is %d",
                      c->file, sum, m->layers);
  return 0;
}

int ts__validate_partition(const cJSON *root, ts_job_t *job, vctx_t *c) {
  const char *p = NULL;
  int rc;
  if ((rc = ts__get_string(root, "partition", "uniform", &p, c))) return rc;
  const cJSON *lps = cJSON_GetObjectItemCaseSensitive(root, "layers_per_stage");
  if (cJSON_IsNull(lps)) lps = NULL; /* --set layers_per_stage=null removes it */
  if (!strcmp(p, "uniform"))
    job->partition = TS_PARTITION_UNIFORM;
  else if (!strcmp(p, "balanced"))
    job->partition = TS_PARTITION_BALANCED;
  else if (!strcmp(p, "explicit"))
    job->partition = TS_PARTITION_EXPLICIT;
  else
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: partition: expected \"uniform\" or \"balanced\", got '%s'", c->file, p);
  const bool given = cJSON_GetObjectItemCaseSensitive(root, "partition") != NULL;
  if (lps && given && job->partition != TS_PARTITION_EXPLICIT)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: layers_per_stage: the split is given, so partition must be absent or "
                      "\"explicit\", got '%s'",
                      c->file, p);
  if (!lps && job->partition == TS_PARTITION_EXPLICIT)
    return ts_err_set(c->err, EX_DATAERR, "%s: partition: \"explicit\" needs layers_per_stage",
                      c->file);
  if (lps) job->partition = TS_PARTITION_EXPLICIT;
  if (job->partition == TS_PARTITION_UNIFORM) return 0;
  const char *field = lps ? "layers_per_stage" : "partition";
  if (job->model.kind != TS_MODEL_TRANSFORMER)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: %s: a synthetic model has no layers to split (its stages' seconds "
                      "are given)",
                      c->file, field);
  if (job->model.moe.experts > 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: %s: not modelled with model.moe (MoE models split their layers "
                      "uniformly)",
                      c->file, field);
  return lps ? read_counts(lps, job, c) : 0;
}
