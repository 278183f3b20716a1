/*
** ref_twin.c: the synthetic twin of a transformer job (ts_ref_sim_job): a
** job whose cost model counts exactly the reference executor's tensors,
** for the simulator (stashes and op transients, selective recompute's
** smaller stash and its recomputed core included; the reference model has
** no embeddings or LM head, so the twin has none either).  It keeps the
** job's schedule, shape and data-parallel settings (replicas, rank order,
** ZeRO, buckets, optimizer).
**
** Tensor parallelism (t > 1, 1d or 2d): each device's stash is one TP
** rank's, ts_ref_tp_stash_bytes (the reference's tensors split as the
** cost model's Table 2 split: with or without SP, selective recompute,
** the 2d blocks); the TP path counts no transients in the executor's
** allocator (its pieces' scratch and messages are plain buffers), so the
** twin has none.  A synthetic model cannot be tensor-parallel (it has no
** layers to split), so the twin runs the job's t x d TP ranks and
** replicas as t x d data-parallel replicas: the same devices, numbered as
** the job's when tp varies right before dp in its rank order (else
** EX_DATAERR naming rank_order), each with its rank's figures; the TP
** collectives are not in the twin (its times are the stages' profile).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ref_internal.h"

static cJSON *per_stage(const double *a, int n) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(a[i]));
  return arr;
}

int ts_ref_sim_job(const ts_job_t *job, const ts_cost_t *cost, const double *fwd_s,
                   const double *bwd_s, const double *rec_s, const char *platform,
                   ts_job_t **out, ts_err_t *err) {
  *out = NULL;
  ts_ref_config_t cfg;
  int rc = ts_ref_config_for_job(job, &cfg, err);
  if (rc) return rc;
  int p = job->stages, t = job->tensor_parallel > 1 ? job->tensor_parallel : 1;
  /* 1d with or without SP, or the 2d grid (ts_ref_tp_stash_bytes's sp 2). */
  int sp = job->tensor_parallel_grid > 1 ? 2 : job->sequence_parallel;
  if (t > 1) { /* tp must vary right before dp (ep has degree 1 here) */
    int i = 0;
    while (i < TS_DIMS && job->order[i] != TS_DIM_TP) i++;
    int k = i + 1;
    while (k < TS_DIMS && job->order[k] == TS_DIM_EP) k++;
    if (k >= TS_DIMS || job->order[k] != TS_DIM_DP)
      return ts_err_set(err, EX_DATAERR,
                        "%s: rank_order: the reference twin of a tensor-parallel job runs its TP "
                        "ranks as data-parallel replicas and needs tp right before dp (got '%s')",
                        job->path, job->rank_order[0] ? job->rank_order : "tp-dp-pp");
  }
  double *act = calloc((size_t)p, sizeof *act), *wts = calloc((size_t)p, sizeof *wts);
  int *per_part = calloc((size_t)p, sizeof *per_part);
  if (!act || !wts || !per_part) {
    rc = ts_err_set(err, EX_OSERR, "out of memory");
    goto out_free;
  }
  for (int s = 0; s < p; s++) per_part[s] = -1;
  for (int k = 0; k < cost->n_parts; k++) {
    int s = k % p, nl = cost->part[k].n_layers;
    if (per_part[s] >= 0 && per_part[s] != nl) {
      rc = ts_err_set(err, EX_DATAERR,
                      "%s: stage %d: its chunks hold %d and %d layers; the synthetic twin "
                      "needs equal chunks (choose layers divisible by stages x chunks)",
                      job->path, s, per_part[s], nl);
      goto out_free;
    }
    per_part[s] = nl;
    act[s] += (double)ts_ref_tp_stash_bytes(&cfg, nl, job->micro_batch_size, t, t > 1 ? sp : 0,
                                            job->recompute == TS_RECOMPUTE_SELECTIVE);
    wts[s] += 8.0 * (double)ts_ref_block_param_count(&cfg) * nl / t;
  }
  for (int s = 0; s < p; s++) {
    double r = rec_s ? rec_s[s] : fwd_s[s];
    if (!(fwd_s[s] >= 0) || !(bwd_s[s] >= 0) || !(r >= 0)) {
      rc = ts_err_set(err, EX_DATAERR, "%s: stage %d: negative or undefined stage seconds",
                      job->path, s);
      goto out_free;
    }
  }

  cJSON *root = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(root, "model");
  char name[sizeof job->model.name + 8];
  snprintf(name, sizeof name, "%s-twin", job->model.name);
  cJSON_AddStringToObject(m, "kind", "synthetic");
  cJSON_AddStringToObject(m, "name", name);
  cJSON_AddItemToObject(m, "forward_s", per_stage(fwd_s, p));
  cJSON_AddItemToObject(m, "backward_s", per_stage(bwd_s, p));
  cJSON_AddItemToObject(m, "recompute_s", per_stage(rec_s ? rec_s : fwd_s, p));
  cJSON_AddItemToObject(m, "activation_bytes", per_stage(act, p));
  cJSON_AddNumberToObject(m, "activation_message_bytes",
                          (double)ts_ref_stash_input_bytes(&cfg, job->micro_batch_size));
  cJSON_AddItemToObject(m, "weights_bytes", per_stage(wts, p));
  /* The op transients (README "Memory") the executor counts: a forward its
  ** output message, a backward its gradient buffers and its two messages.
  ** The reference model has no embeddings, LM head or loss stash (its MSE
  ** loss reads the last stage's output, held between that stage's forward
  ** and backward as a message in transit, uncounted): the formula's
  ** embedding and LM-head terms have no twin here and (b) does not check
  ** them. */
  cJSON_AddNumberToObject(m, "forward_transient_bytes",
                          t > 1 ? 0 : (double)ts_ref_stash_input_bytes(&cfg, job->micro_batch_size));
  /* Selective recompute: plus the recomputed attention core's buffer.  TP:
  ** none (file header). */
  cJSON_AddNumberToObject(m, "backward_transient_bytes",
                          t > 1 ? 0
                                : (double)ts_ref_backward_transient_bytes(&cfg, job->micro_batch_size) +
                                      (job->recompute == TS_RECOMPUTE_SELECTIVE
                                           ? (double)ts_ref_core_bytes(&cfg, job->micro_batch_size)
                                           : 0));
  char plat[TS_PATH_MAX];
  if (strcmp(platform, "ideal") == 0 || !realpath(platform, plat))
    snprintf(plat, sizeof plat, "%s", platform);
  cJSON_AddStringToObject(root, "platform", plat);
  cJSON_AddStringToObject(root, "schedule", job->schedule);
  cJSON_AddNumberToObject(root, "stages", job->stages);
  cJSON_AddNumberToObject(root, "microbatches", job->microbatches);
  cJSON_AddNumberToObject(root, "micro_batch_size", job->micro_batch_size);
  cJSON_AddNumberToObject(root, "seq_len", job->seq_len);
  cJSON_AddNumberToObject(root, "chunks", job->chunks);
  cJSON_AddNumberToObject(root, "iterations", job->iterations);
  cJSON_AddStringToObject(root, "recompute",
                          job->recompute == TS_RECOMPUTE_FULL ? "full" : "none");
  /* Data parallelism as the job has it: the same replicas and collectives. */
  /* TP: its t ranks as replicas too (file header). */
  cJSON_AddNumberToObject(root, "data_parallel",
                          (job->data_parallel > 1 ? job->data_parallel : 1) * t);
  if (job->rank_order[0]) cJSON_AddStringToObject(root, "rank_order", job->rank_order);
  cJSON_AddNumberToObject(root, "zero", job->zero);
  cJSON_AddNumberToObject(root, "fsdp_unit", job->fsdp_unit > 0 ? job->fsdp_unit : 1);
  if (job->gradient_bucket_mb > 0)
    cJSON_AddNumberToObject(root, "gradient_bucket_mb", job->gradient_bucket_mb);
  cJSON_AddBoolToObject(root, "overlap_grad_reduce", job->overlap_grad_reduce);
  cJSON_AddStringToObject(root, "optimizer", job->optimizer == TS_OPTIMIZER_NONE ? "none" : "adam");
  /* The same collective algorithms (README "Collectives"). */
  if (job->collective_algorithm != TS_CALG_AUTO)
    cJSON_AddStringToObject(root, "collective_algorithm", ts_coll_alg_name(job->collective_algorithm));
  if (job->nvlink_domain_size > 0)
    cJSON_AddNumberToObject(root, "nvlink_domain_size", job->nvlink_domain_size);
  if (job->table) { /* schedule "table": the same table, by its absolute path */
    char tab[TS_PATH_MAX];
    if (!realpath(job->table->path, tab)) snprintf(tab, sizeof tab, "%s", job->table->path);
    cJSON_AddStringToObject(root, "table", tab);
  }
  const ts_schedule_t *sc = ts_schedule_find(job->schedule);
  if (sc && sc->host_weights) { /* more stages than devices: the job's devices and mapping */
    cJSON_AddNumberToObject(root, "devices", job->devices);
    cJSON_AddNumberToObject(root, "mapping_groups", job->mapping_groups);
    if (job->mapping)
      cJSON_AddItemToObject(root, "mapping", cJSON_CreateIntArray(job->mapping, job->stages));
    else
      cJSON_AddStringToObject(root, "mapping", job->mapping_rule);
  }
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  char path[64] = "/tmp/trainsim-twin-XXXXXX.json";
  int fd = text ? mkstemps(path, 5) : -1;
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  bool ok = f && fputs(text, f) >= 0;
  if (f && fclose(f)) ok = false;
  if (!f && fd >= 0) close(fd);
  free(text);
  if (!ok) {
    if (fd >= 0) unlink(path);
    rc = ts_err_set(err, EX_CANTCREAT, "cannot write the twin job to a temporary file: %s",
                    strerror(errno));
    goto out_free;
  }
  rc = ts_job_load(path, NULL, 0, out, err);
  unlink(path);
  if (!rc) snprintf((*out)->path, sizeof (*out)->path, "%.*s (reference twin)",
                    (int)sizeof (*out)->path - 20, job->path);
out_free:
  free(act);
  free(wts);
  free(per_part);
  return rc;
}
