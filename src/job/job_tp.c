/*
** job_tp.c: the tensor-parallel fields of a job (README "Tensor
** parallelism").
**
** tensor_parallel (t, the devices one layer is split over),
** tensor_parallel_mode ("1d", Megatron's column / row split; "2d",
** Optimus's q x q SUMMA grid with t = q^2; "2.5d", Tesseract's d layers of
** it with t = q^2 d, d = tensor_parallel_depth; "3d", Bian et al.'s cube
** with t = q^3), tensor_parallel_depth, sequence_parallel and
** pipeline_scatter_gather are read here; ts__check_tp then rejects what
** the cost model and the runtime do not model: t (the grid's q in the
** other modes) not dividing the heads, the key/value heads or the hidden
** size (and for the grids the MLP's width and the micro-batch), sequence
** parallelism
** without tensor parallelism, tensor parallelism or selective recompute
** with a synthetic model, tensor parallelism with MoE layers or with a
** schedule that keeps weights in host memory.  Every error is one line
** naming the job file and the field.
*/
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_runtime.h"

/* The grid of the 2d, 2.5d and 3d modes: tensor_parallel_grid, _depth
** and _cube from t and tensor_parallel_depth; errors name the field. */
static int grid_fields(const cJSON *root, ts_job_t *job, const char *mode, vctx_t *c) {
  int rc, t = job->tensor_parallel, d;
  if ((rc = ts__get_int(root, "tensor_parallel_depth", 1, 1, &job->tensor_parallel_depth, c)))
    return rc;
  d = job->tensor_parallel_depth;
  bool cube = job->tensor_parallel_cube = strcmp(mode, "3d") == 0;
  job->tensor_parallel_grid = 0;
  if (d != 1 && strcmp(mode, "2.5d") != 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel_depth: %d needs tensor_parallel_mode \"2.5d\"",
                      c->file, d);
  if (strcmp(mode, "1d") == 0) return 0;
  if (t % d)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d is not a multiple of tensor_parallel_depth (%d)",
                      c->file, t, d);
  int n = t / d, q = 1;
  while ((cube ? (q + 1) * (q + 1) * (q + 1) : (q + 1) * (q + 1)) <= n) q++;
  if ((cube ? q * q * q : q * q) != n) {
    if (cube)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: tensor_parallel: %d is not a cube (tensor_parallel_mode \"3d\" "
                        "needs t = q x q x q)",
                        c->file, t);
    if (d == 1)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: tensor_parallel: %d is not a square (tensor_parallel_mode \"%s\" "
                        "needs t = q x q%s)",
                        c->file, t, mode, strcmp(mode, "2d") ? " x tensor_parallel_depth" : "");
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel: %d / tensor_parallel_depth (%d) is not a square "
                      "(tensor_parallel_mode \"2.5d\" needs t = q x q x depth)",
                      c->file, t, d);
  }
  if (t > 1 && q < 2)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel_depth: %d leaves a 1 x 1 grid (t = %d needs q >= 2)",
                      c->file, d, t);
  job->tensor_parallel_grid = q;
  return 0;
}

int ts__validate_tp_fields(const cJSON *root, ts_job_t *job, vctx_t *c) {
  int rc;
  if ((rc = ts__get_int(root, "tensor_parallel", 1, 1, &job->tensor_parallel, c))) return rc;
  const char *mode = NULL;
  if ((rc = ts__get_string(root, "tensor_parallel_mode", "1d", &mode, c))) return rc;
  if (strcmp(mode, "1d") != 0 && strcmp(mode, "2d") != 0 && strcmp(mode, "2.5d") != 0 &&
      strcmp(mode, "3d") != 0)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: tensor_parallel_mode: expected \"1d\", \"2d\", \"2.5d\" or \"3d\", "
                      "got '%.64s'",
                      c->file, mode);
  snprintf(job->tensor_parallel_mode, sizeof job->tensor_parallel_mode, "%s", mode);
  if ((rc = grid_fields(root, job, mode, c))) return rc;
  if ((rc = ts__get_bool(root, "sequence_parallel", false, &job->sequence_parallel, c)) ||
      (rc = ts__get_bool(root, "pipeline_scatter_gather", job->tensor_parallel > 1,
                         &job->pipeline_scatter_gather, c)))
    return rc;
  if (job->sequence_parallel && job->tensor_parallel < 2)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: sequence_parallel: needs tensor_parallel > 1 (got %d)", c->file,
                      job->tensor_parallel);
  if (job->sequence_parallel && job->tensor_parallel_grid)
    return ts_err_set(c->err, EX_DATAERR,
                      "%s: sequence_parallel: only with tensor_parallel_mode \"1d\" (%s already "
                      "splits every activation over the grid)",
                      c->file, job->tensor_parallel_mode);
  return 0;
}

/* What every mode rejects: MoE layers, host-memory schedules. */
static int check_common(const ts_schedule_t *s, const ts_job_t *job, vctx_t *c) {
  const int t = job->tensor_parallel;
  if (job->model.moe.experts > 0)
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

/* 2d on a q x q grid: the grid's rows split the micro-batch's sequences,
** its columns the heads, the hidden and the MLP's width (Optimus), so q
** divides each of them; 2.5d: the d q rows of all depth layers split the
** sequences (d q divides micro_batch_size); 3d: q divides each. */
static int check_grid(const ts_schedule_t *s, const ts_job_t *job, vctx_t *c) {
  const ts_model_t *m = &job->model;
  const int q = job->tensor_parallel_grid, d = job->tensor_parallel_depth;
  char grid[64];
  if (job->tensor_parallel_cube)
    snprintf(grid, sizeof grid, "a %d x %d x %d cube in 3d", q, q, q);
  else if (strcmp(job->tensor_parallel_mode, "2.5d") == 0)
    snprintf(grid, sizeof grid, "%d layers of a %d x %d grid in 2.5d", d, q, q);
  else
    snprintf(grid, sizeof grid, "a %d x %d grid in 2d", q, q);
  struct { const char *name; int v, by; } need[] = {
      {"model.heads", m->heads, q},       {"model.kv_heads", m->kv_heads, q},
      {"model.hidden", m->hidden, q},     {"model.ffn_hidden", m->ffn_hidden, q},
      {"micro_batch_size", job->micro_batch_size, q * d}};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
    if (need[i].v % need[i].by)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: tensor_parallel: %d (%s) needs %d to divide %s (%d)",
                        c->file, job->tensor_parallel, grid, need[i].by, need[i].name,
                        need[i].v);
  return check_common(s, job, c);
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
  if (job->tensor_parallel_grid) return check_grid(s, job, c);
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
  return check_common(s, job, c);
}
