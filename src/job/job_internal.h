/*
** job_internal.h: the names the job loader's files share (src/job/ only).
**
** The loader is split by step (see ts_job.c): job_json.c reads files and
** JSON and holds the typed field getters, job_hf.c translates a Hugging
** Face config.json into a transformer object, job_set.c applies
** `--set PATH=VALUE`, job_model.c validates the model, job_dp.c the
** data-parallel fields, job_partition.c the layer split, job_table.c reads
** the schedule table a job names (ts_table_load, public in trainsim.h), and
** ts_job.c
** validates the top-level fields and is the public entry point.  Every
** function that can fail returns 0 or the sysexits.h code it recorded in
** err with ts_err_set (one line naming the file and the field path).
*/
#ifndef TS_JOB_INTERNAL_H
#define TS_JOB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_internal.h"

/* ---- limits (README "Job file", Limits) ---------------------------- */

/* Every product of a job's counts that later code uses as a size or an
** index held in an int (microbatches x iterations, stages x chunks,
** micro_batch_size x seq_len, the runtime's cells stages x chunks x
** microbatches x iterations, the MoE routing's layers x micro-batches x
** lanes x experts and an all-to-all's rows) is at most TS__PRODUCT_MAX. */
#define TS__PRODUCT_MAX 2147483647LL

/* ---- the job file's schema (ts_job.c) ------------------------------- */

/* NULL-terminated lists of the fields each object of a job accepts. */
extern const char *const ts__job_fields[];         /* the top level */
extern const char *const ts__transformer_fields[]; /* model, kind "transformer" */
extern const char *const ts__synthetic_fields[];   /* model, kind "synthetic" */
extern const char *const ts__moe_fields[];         /* model.moe */
extern const char *const ts__routing_fields[];     /* model.moe.routing */

/* ---- files and JSON (job_json.c) ------------------------------------ */

/* Where a field's errors are reported: the job file and the path prefix
** of the object being read ("", "model.", "model.moe.", ...). */
typedef struct {
  const char *file;
  const char *prefix;
  ts_err_t *err;
} vctx_t;

/* Resolves a path named in a job into out: as given when absolute; else
** relative to base (the job's directory), then the current directory,
** then the source tree's subdir, with and without ext.  Returns false
** when none is a regular file (out then holds name). */
bool ts__resolve_path(const char *name, const char *base, const char *subdir, const char *ext,
                      char out[TS_PATH_MAX]);

/* Parses text (len bytes, NUL-terminated) of file into a new object
** *out (the caller deletes it).  Malformed JSON reports file:line:column
** (EX_DATAERR); so does a top level that is not an object. */
int ts__parse_json(const char *text, size_t len, const char *file, cJSON **out, ts_err_t *err);

/* Copies every field of src into dst: objects present in both are merged
** recursively, anything else replaces dst's field. */
void ts__merge_json(cJSON *dst, const cJSON *src);

/* True when s is one of the NULL-terminated list. */
bool ts__in_list(const char *const *list, const char *s);

/* Fails on the first field of obj that allowed does not name. */
int ts__check_fields(const cJSON *obj, const char *const *allowed, vctx_t *c);

/* The typed getters read obj's field key.  An absent field takes dflt,
** or is an error when dflt says it is required (get_int: dflt < 0,
** get_string: dflt NULL).  Each always writes *out (on an error: dflt),
** so a caller's variable is never left uninitialised.  get_int accepts
** integers from min to 1e8; get_string a non-empty string, which *out
** then points into obj. */
int ts__get_int(const cJSON *obj, const char *key, int dflt, int min, int *out, vctx_t *c);
int ts__get_bool(const cJSON *obj, const char *key, bool dflt, bool *out, vctx_t *c);
int ts__get_string(const cJSON *obj, const char *key, const char *dflt, const char **out,
                   vctx_t *c);

/* Checks that v is a finite number at least min (strict: greater than
** min) and stores it in *out; idx >= 0 names the element key[idx].  *out
** is left as it was on an error. */
int ts__check_number(const cJSON *v, const char *key, int idx, double min, bool strict,
                     double *out, vctx_t *c);

/* A non-negative number, or an array of one per stage (n), into a new
** array *out of n (always allocated; the caller frees it, also on an
** error).  When absent: an error if dflt is NULL, else dflt[i] x scale. */
int ts__get_per_stage(const cJSON *obj, const char *key, int n, const double *dflt, double scale,
                      double **out, vctx_t *c);

/* ---- Hugging Face configs (job_hf.c) -------------------------------- */

/* When root's "model" is a path, or an object {"config": path, ...},
** replaces it by the transformer object translated from that Hugging Face
** config.json (the object's other fields merged over it), and sets
** job->seq_len to the config's context length unless root has seq_len.
** job->path and job->base_dir must be set.  Nothing happens for any
** other model. */
int ts__hf_expand_model(cJSON *root, ts_job_t *job, ts_err_t *err);

/* ---- --set (job_set.c) ---------------------------------------------- */

/* Applies one `--set PATH=VALUE` (arg) to the tree root, or, for
** platform.link.* and platform.host.*, appends it to job->overrides.
** Errors are EX_USAGE and do not name the job file. */
int ts__apply_set(cJSON *root, ts_job_t *job, const char *arg, ts_err_t *err);

/* ---- the model (job_model.c) ---------------------------------------- */

/* Validates the model object m into job->model (job->stages,
** micro_batch_size and seq_len must be read already); c names the job. */
int ts__validate_model(const cJSON *m, ts_job_t *job, vctx_t *c);

/* ---- data parallelism (job_dp.c) ------------------------------------ */

/* Parses a rank order s ("tp-dp-pp": dimensions tp, dp, pp once each and
** optionally ep, dash-separated, fastest-varying first) into order, with
** ep right after tp when s does not name it.  Returns 0; 1 for an unknown
** or empty dimension, 2 for one named twice (*bad then points at it in
** s), 3 for a missing one (*bad: its name, static). */
int ts__parse_rank_order(const char *s, ts_dim_t order[TS_DIMS], const char **bad);

/* Reads data_parallel, rank_order, zero, fsdp_unit, gradient_bucket_mb,
** overlap_grad_reduce and optimizer of root into job, with their defaults
** (README "Job file"). */
int ts__validate_dp_fields(const cJSON *root, ts_job_t *job, vctx_t *c);

/* The combinations of the data-parallel fields with the schedule s and
** the model (already read) that are not modelled: data_parallel > 1 with
** host-memory weights or iterations > 1, zero 3 with a MoE model or a
** schedule that orders ops by arrival. */
int ts__check_dp_schedule(const struct ts_schedule *s, const ts_job_t *job, vctx_t *c);

/* ---- tensor parallelism (job_tp.c) ---------------------------------- */

/* Reads tensor_parallel, tensor_parallel_mode, sequence_parallel and
** pipeline_scatter_gather of root into job, with their defaults (README
** "Tensor parallelism"); modes other than "1d" are errors. */
int ts__validate_tp_fields(const cJSON *root, ts_job_t *job, vctx_t *c);

/* The combinations with the model (already read) and the schedule s that
** are not modelled: t not dividing model.heads or model.hidden, t > 1
** with a synthetic model, MoE layers or host-memory weights, recompute
** "selective" with a synthetic model. */
int ts__check_tp(const struct ts_schedule *s, const ts_job_t *job, vctx_t *c);

/* ---- partitioning (job_partition.c) -------------------------------- */

/* Reads partition and layers_per_stage of root into job (the model,
** stages and chunks must be read already): partition "uniform" (the
** default) or "balanced"; layers_per_stage, when given, makes the split
** explicit: stages x chunks integers of at least 1 summing to
** model.layers, only for a dense transformer (balanced likewise). */
int ts__validate_partition(const cJSON *root, ts_job_t *job, vctx_t *c);

#endif
