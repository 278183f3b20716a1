/*
** job_dp.c: the data-parallel fields of a job (README "Data parallelism").
**
** data_parallel (replicas of the whole pipeline), rank_order (which
** coordinates vary fastest over the platform's hosts), zero (the ZeRO
** stage), fsdp_unit, gradient_bucket_mb, overlap_grad_reduce and
** optimizer are read and range-checked here, with the collectives'
** collective_algorithm and nvlink_domain_size (README "Collectives"); ts__check_dp_schedule then
** rejects the combinations with a schedule or model that the runtime does
** not model.  Every error is one line naming the job file and the field.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_runtime.h"

int ts__parse_rank_order(const char *s, ts_dim_t order[TS_DIMS], const char **bad) {
  static const char *const names[TS_DIMS] = {"tp", "ep", "dp", "pp"};
  ts_dim_t got[TS_DIMS];
  int n = 0;
  unsigned seen = 0;
  *bad = NULL;
  for (const char *p = s;;) {
    const char *dash = strchr(p, '-');
    size_t len = dash ? (size_t)(dash - p) : strlen(p);
    int dim = -1;
    for (int i = 0; i < TS_DIMS; i++)
      if (len == 2 && strncmp(p, names[i], 2) == 0) dim = i;
    if (dim < 0) {
      *bad = p;
      return 1; /* an unknown (or empty) dimension */
    }
    if (seen & (1u << dim)) {
      *bad = p;
      return 2; /* named twice */
    }
    seen |= 1u << dim;
    got[n++] = (ts_dim_t)dim;
    if (!dash) break;
    p = dash + 1;
  }
  static const ts_dim_t need[3] = {TS_DIM_TP, TS_DIM_DP, TS_DIM_PP};
  for (int i = 0; i < 3; i++)
    if (!(seen & (1u << need[i]))) {
      *bad = names[need[i]];
      return 3; /* missing */
    }
  /* Without ep, ep goes right after tp. */
  int k = 0;
  for (int i = 0; i < n; i++) {
    order[k++] = got[i];
    if (got[i] == TS_DIM_TP && !(seen & (1u << TS_DIM_EP))) order[k++] = TS_DIM_EP;
  }
  return 0;
}

/* rank_order (default "tp-dp-pp") into job->rank_order and job->order. */
static int validate_rank_order(const cJSON *root, ts_job_t *job, vctx_t *c) {
  const char *s = NULL, *bad = NULL;
  int rc;
  if ((rc = ts__get_string(root, "rank_order", "tp-dp-pp", &s, c))) return rc;
  int why = ts__parse_rank_order(s, job->order, &bad);
  if (why == 1) {
    const char *dash = strchr(bad, '-');
    int len = dash ? (int)(dash - bad) : (int)strlen(bad);
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: rank_order: unknown dimension '%.*s' in '%s' (expected tp, dp, pp and "
                      "optionally ep, joined by '-', fastest first)",
                      c->file, len > 64 ? 64 : len, bad, s);
  }
  if (why == 2)
    return ts_err_set(c->err, EX_DATAERR, "%s: rank_order: dimension '%.2s' named twice in '%s'",
                      c->file, bad, s);
  if (why == 3)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: rank_order: '%s' does not name '%s' (tp, dp and pp each once)", c->file,
                      s, bad);
  /* A valid order is at most "tp-ep-dp-pp": it fits. */
  snprintf(job->rank_order, sizeof job->rank_order, "%s", s);
  return 0;
}

static const char *const calg_names[TS_CALGS] = {"auto", "ring", "hierarchical", "tree"};

const char *ts_coll_alg_name(ts_coll_alg_t a) {
  return a >= 0 && a < TS_CALGS ? calg_names[a] : "?";
}

/* collective_algorithm (default "auto") and nvlink_domain_size (default 0). */
static int validate_coll(const cJSON *root, ts_job_t *job, vctx_t *c) {
  const char *s = NULL;
  int rc;
  if ((rc = ts__get_string(root, "collective_algorithm", "auto", &s, c))) return rc;
  job->collective_algorithm = TS_CALGS;
  for (int a = 0; a < TS_CALGS; a++)
    if (strcmp(s, calg_names[a]) == 0) job->collective_algorithm = (ts_coll_alg_t)a;
  if (job->collective_algorithm == TS_CALGS)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: collective_algorithm: expected \"auto\", \"ring\", \"hierarchical\" or "
                      "\"tree\", got '%s'",
                      c->file, s);
  return ts__get_int(root, "nvlink_domain_size", 0, 0, &job->nvlink_domain_size, c);
}

int ts__validate_dp_fields(const cJSON *root, ts_job_t *job, vctx_t *c) {
  int rc;
  if ((rc = ts__get_int(root, "data_parallel", 1, 1, &job->data_parallel, c)) ||
      (rc = validate_rank_order(root, job, c)) ||
      (rc = ts__get_int(root, "zero", 0, -100000000, &job->zero, c)))
    return rc;
  if (job->zero < 0 || job->zero > 3)
    return ts_err_set(c->err, EX_DATAERR, "%s: zero: expected a ZeRO stage 0, 1, 2 or 3, got %d",
                      c->file, job->zero);
  if ((rc = ts__get_int(root, "fsdp_unit", 1, 1, &job->fsdp_unit, c)) ||
      (rc = ts__get_bool(root, "overlap_grad_reduce", true, &job->overlap_grad_reduce, c)))
    return rc;
  job->gradient_bucket_mb = 25;
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "gradient_bucket_mb");
  if (b && (rc = ts__check_number(b, "gradient_bucket_mb", -1, 0, true, &job->gradient_bucket_mb, c)))
    return rc;
  /* Past 2^40 MiB a bucket's byte count is no longer an exact size. */
  if (job->gradient_bucket_mb > 1099511627776.0)
    return ts_err_set(c->err, EX_DATAERR, "%s: gradient_bucket_mb: must be at most 2^40, got %g",
                      c->file, job->gradient_bucket_mb);
  const char *opt = NULL;
  if ((rc = ts__get_string(root, "optimizer", "adam", &opt, c))) return rc;
  if (strcmp(opt, "adam") == 0)
    job->optimizer = TS_OPTIMIZER_ADAM;
  else if (strcmp(opt, "none") == 0)
    job->optimizer = TS_OPTIMIZER_NONE;
  else
    return ts_err_set(c->err, EX_DATAERR, "%s: optimizer: expected \"adam\" or \"none\", got '%s'",
                      c->file, opt);
  return validate_coll(root, job, c);
}

int ts__check_dp_schedule(const ts_schedule_t *s, const ts_job_t *job, vctx_t *c) {
  const int d = job->data_parallel;
  if (d > 1 && s->host_weights)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: data_parallel: schedule '%s' keeps weights in host memory: gradients "
                      "live in host memory; data-parallel sync over host memory is not modelled",
                      c->file, job->schedule);
  if (d > 1 && job->iterations > 1)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: data_parallel: %d iterations: per-iteration weight updates inside the "
                      "pipeline (2BW, multi-iteration flushes) are not synchronised across replicas",
                      c->file, job->iterations);
  if (job->zero == 3 && job->model.kind == TS_MODEL_TRANSFORMER && job->model.moe.experts > 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: zero: stage 3 with a MoE model (model.moe) is not modelled", c->file);
  if (job->zero == 3 && s->order_by_arrival)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: zero: stage 3 with schedule '%s': its replicas' op orders differ, so "
                      "their parameter gathers cannot pair",
                      c->file, job->schedule);
  return 0;
}
