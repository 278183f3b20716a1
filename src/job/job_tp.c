/*
** job_tp.c: the tensor-parallel fields of a job (README "Tensor
** parallelism").
**
** tensor_parallel (t, the devices one layer is split over),
** tensor_parallel_mode (only "1d", Megatron's column / row split, is
** modelled so far; "2d", "2.5d" and "3d" are known names that are not yet
** modelled), sequence_parallel and pipeline_scatter_gather are read here;
** ts__check_tp then rejects what the cost model and the runtime do not
** model: t not dividing the heads, the key/value heads or the hidden size, sequence parallelism
** without tensor parallelism, tensor parallelism or selective recompute
** with a synthetic model, tensor parallelism with MoE layers or with a
** schedule that keeps weights in host memory.  Every error is one line
** naming the job file and the field.
*/
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_runtime.h"

int ts__validate_tp_fields(const cJSON *root, ts_job_t *job, vctx_t *c) {
  int rc;
  if ((rc = ts__get_int(root, "tensor_parallel", 1, 1, &job->tensor_parallel, c))) return rc;
  const char *mode = NULL;
  if ((rc = ts__get_string(root, "tensor_parallel_mode", "1d", &mode, c))) return rc;
  if (strcmp(mode, "2d") == 0 || strcmp(mode, "2.5d") == 0 || strcmp(mode, "3d") == 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel_mode: \"%s\" is not yet modelled (only \"1d\")",
                      c->file, mode);
  if (strcmp(mode, "1d") != 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel_mode: expected \"1d\", \"2d\", \"2.5d\" or \"3d\", "
                      "got '%.64s'",
                      c->file, mode);
  snprintf(job->tensor_parallel_mode, sizeof job->tensor_parallel_mode, "%s", mode);
  if ((rc = ts__get_bool(root, "sequence_parallel", false, &job->sequence_parallel, c)) ||
      (rc = ts__get_bool(root, "pipeline_scatter_gather", job->tensor_parallel > 1,
                         &job->pipeline_scatter_gather, c)))
    return rc;
  if (job->sequence_parallel && job->tensor_parallel < 2)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: sequence_parallel: needs tensor_parallel > 1 (got %d)", c->file,
                      job->tensor_parallel);
  return 0;
}

int ts__check_tp(const ts_schedule_t *s, const ts_job_t *job, vctx_t *c) {
  const ts_model_t *m = &job->model;
  const int t = job->tensor_parallel;
  bool synthetic = m->kind == TS_MODEL_SYNTHETIC;
  if (job->recompute == TS_RECOMPUTE_SELECTIVE && synthetic)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: recompute: \"selective\" recomputes a transformer's attention core; "
                      "a synthetic model has none",
                      c->file);
  if (t == 1) return 0;
  if (synthetic)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d needs a transformer model (a synthetic model has "
                      "no layers to split)",
                      c->file, t);
  if (m->heads % t)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d does not divide model.heads (%d)", c->file, t,
                      m->heads);
  if (m->kv_heads % t)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d does not divide model.kv_heads (%d)", c->file, t,
                      m->kv_heads);
  if (m->hidden % t)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d does not divide model.hidden (%d)", c->file, t,
                      m->hidden);
  if (m->moe.experts > 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d with MoE layers (model.moe) is not yet modelled",
                      c->file, t);
  if (s->host_weights)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d with schedule '%s' (weights in host memory) is "
                      "not yet modelled",
                      c->file, t, job->schedule);
  return 0;
}
