/*
** ts_output.c: summary.json, timeline.csv, the human summary, and the
** atomic writing of every output file.
**
** Atomicity: each file is written to "<dir>/.<name>.tmp.<pid>", flushed,
** and renamed over "<dir>/<name>" only after every file of the set was
** written; on any failure the temporary files are removed, so a run leaves
** either all its outputs or none.  Numbers are printed with %.17g (round
** trip) so outputs are byte-identical from run to run; timeline.csv is
** assembled without printf (ts_fmt_num.c) and --devices and --kinds
** filter its rows.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <cjson/cJSON.h>

#include "ts_out.h"
#include "ts_runtime.h"
#include "ts_moe.h"
#include "ts_internal.h"

/* ---- summary.json ---------------------------------------------------- */

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, k, v);
  else
    cJSON_AddNullToObject(o, k);
}

static void add_num_or_null(cJSON *o, const char *k, double v, bool have) {
  if (have)
    add_num(o, k, v);
  else
    cJSON_AddNullToObject(o, k);
}

cJSON *ts__job_json(cJSON *parent, const ts_job_t *j, const ts_schedule_t *sc) {
  cJSON *job = cJSON_AddObjectToObject(parent, "job");
  cJSON_AddStringToObject(job, "file", j->path);
  cJSON_AddStringToObject(job, "schedule", j->schedule);
  cJSON_AddStringToObject(job, "model", j->model.name);
  cJSON_AddStringToObject(job, "platform", j->platform_arg);
  cJSON_AddNumberToObject(job, "stages", j->stages);
  if (sc && sc->host_weights) { /* mobius, gpipe-swap: where each stage ran */
    cJSON_AddNumberToObject(job, "devices", j->devices);
    if (j->mapping)
      cJSON_AddItemToObject(job, "mapping", cJSON_CreateIntArray(j->mapping, j->stages));
    else
      cJSON_AddStringToObject(job, "mapping", j->mapping_rule);
    cJSON_AddNumberToObject(job, "mapping_groups", j->mapping_groups);
  }
  cJSON_AddNumberToObject(job, "microbatches", j->microbatches);
  cJSON_AddNumberToObject(job, "micro_batch_size", j->micro_batch_size);
  cJSON_AddNumberToObject(job, "seq_len", j->seq_len);
  cJSON_AddNumberToObject(job, "chunks", j->chunks);
  cJSON_AddNumberToObject(job, "iterations", j->iterations);
  cJSON_AddStringToObject(job, "recompute", ts_recompute_name(j->recompute));
  cJSON_AddNumberToObject(job, "bytes_per_element", j->bytes_per_element);
  /* The layer split (README "Partitioning"): the rule and the layers of
  ** each of the stages x chunks model parts it gave. */
  cJSON_AddStringToObject(job, "partition", ts_partition_name(j->partition));
  if (j->model.kind == TS_MODEL_TRANSFORMER) {
    int n = j->stages * j->chunks, *count = ts__xcalloc((size_t)n, sizeof *count);
    ts_err_t e = {0};
    if (ts_cost_split(j, n, count, &e) == 0)
      cJSON_AddItemToObject(job, "layers_per_stage", cJSON_CreateIntArray(count, n));
    free(count);
  }
  /* data parallelism (README "Data parallelism") */
  cJSON_AddNumberToObject(job, "data_parallel", j->data_parallel);
  cJSON_AddStringToObject(job, "rank_order", j->rank_order);
  cJSON_AddNumberToObject(job, "zero", j->zero);
  cJSON_AddNumberToObject(job, "fsdp_unit", j->fsdp_unit);
  add_num(job, "gradient_bucket_mb", j->gradient_bucket_mb);
  cJSON_AddBoolToObject(job, "overlap_grad_reduce", j->overlap_grad_reduce);
  cJSON_AddStringToObject(job, "optimizer", j->optimizer == TS_OPTIMIZER_NONE ? "none" : "adam");
  /* collectives (README "Collectives"): only when set, so that a job
  ** without them reports what it always did */
  if (j->collective_algorithm != TS_CALG_AUTO)
    cJSON_AddStringToObject(job, "collective_algorithm", ts_coll_alg_name(j->collective_algorithm));
  if (j->nvlink_domain_size > 0)
    cJSON_AddNumberToObject(job, "nvlink_domain_size", j->nvlink_domain_size);
  /* tensor parallelism (README "Tensor parallelism"): only when used, so
  ** that a job without it reports what it always did */
  if (j->tensor_parallel > 1) {
    cJSON_AddNumberToObject(job, "tensor_parallel", j->tensor_parallel);
    cJSON_AddStringToObject(job, "tensor_parallel_mode", j->tensor_parallel_mode);
    cJSON_AddBoolToObject(job, "sequence_parallel", j->sequence_parallel);
    cJSON_AddBoolToObject(job, "pipeline_scatter_gather", j->pipeline_scatter_gather);
  }
  return job;
}

/* The "moe" object of summary.json (README "Mixture of experts"). */
static void moe_json(cJSON *o, const ts_result_t *r) {
  const ts_moe_t *mo = &r->job->model.moe;
  const ts_moe_cost_t *mc = r->cost->moe;
  const ts_metrics_t *m = r->metrics;
  cJSON *x = cJSON_AddObjectToObject(o, "moe");
  cJSON_AddNumberToObject(x, "experts", mo->experts);
  cJSON_AddNumberToObject(x, "expert_parallel", mo->expert_parallel);
  add_num(x, "capacity_factor", mo->capacity_factor);
  cJSON_AddNumberToObject(x, "group_size", mc->S);
  cJSON_AddNumberToObject(x, "capacity", ts_moe_capacity(mc->S, mc->E, mo->capacity_factor,
                                                          mo->capacity_multiple));
  cJSON_AddNumberToObject(x, "moe_layers", mc->n_layers);
  static const char *const skews[] = {"uniform", "zipf", "table"};
  cJSON_AddStringToObject(x, "skew", skews[mo->skew]);
  if (mo->skew == TS_MOE_ZIPF) add_num(x, "exponent", mo->exponent);
  cJSON_AddNumberToObject(x, "seed", (double)mo->seed);
  cJSON_AddStringToObject(x, "alltoall", mo->alltoall_tokens ? "tokens" : "capacity");
  add_num(x, "alltoall_time_share", m->alltoall_share);
  add_num(x, "moe_layer_forward_s", m->moe_forward_s);
  add_num(x, "moe_layer_backward_s", m->moe_backward_s);
  add_num(x, "expert_load_imbalance", m->expert_imbalance);
  add_num(x, "tokens_dropped", (double)m->tokens_dropped);
  long long kept = 0;
  for (int e = 0; e < m->n_expert_load; e++) kept += m->expert_load[e];
  add_num(x, "tokens_computed", (double)kept);
  add_num(x, "aux_loss", m->aux_loss);
  cJSON *ld = cJSON_AddArrayToObject(x, "expert_load");
  for (int e = 0; e < m->n_expert_load; e++)
    cJSON_AddItemToArray(ld, cJSON_CreateNumber((double)m->expert_load[e]));
}

/* The metrics of ts_summary_metric_at's list, in its order: "a.b" goes into
** object a of o (created at its first metric, so the keys come out in the
** list's order), the others into o. */
static void summary_metrics_json(cJSON *o, const ts_result_t *r) {
  const ts_summary_metric_t *sm;
  for (int i = 0; (sm = ts_summary_metric_at(i)); i++) {
    const char *dot = strchr(sm->name, '.');
    cJSON *parent = o;
    if (dot) {
      char obj[64];
      snprintf(obj, sizeof obj, "%.*s", (int)(dot - sm->name), sm->name);
      parent = cJSON_GetObjectItemCaseSensitive(o, obj);
      if (!parent) parent = cJSON_AddObjectToObject(o, obj);
    }
    add_num(parent, dot ? dot + 1 : sm->name, ts_summary_metric_value(sm, r));
  }
}

/* A device's collective and data-parallel fields (README "Data
** parallelism"): coll_bytes per collective kind, then the DP figures. */
static void dp_device_json(cJSON *x, const ts_device_metrics_t *dm) {
  cJSON *cb = cJSON_AddObjectToObject(x, "coll_bytes");
  for (int k = 0; k < TS_COLL_OPS; k++) add_num(cb, ts_coll_op_name((ts_coll_op_t)k), dm->coll_bytes[k]);
  add_num(x, "dp_bytes", dm->dp_bytes);
  add_num(x, "dp_comm_s", dm->dp_comm_s);
  add_num(x, "exposed_comm_s", dm->exposed_comm_s);
  add_num(x, "optimizer_s", dm->optimizer_s);
  add_num(x, "gathered_peak_bytes", dm->gathered_peak_bytes);
}

/* A device's pp_comm_s and time_split (README "Time split"). */
static void time_split_json(cJSON *x, const ts_device_metrics_t *dm) {
  add_num(x, "pp_comm_s", dm->pp_comm_s);
  cJSON *t = cJSON_AddObjectToObject(x, "time_split");
  add_num(t, "compute_s", dm->split.compute_s);
  add_num(t, "tp_exposed_s", dm->split.tp_exposed_s);
  add_num(t, "pp_wait_s", dm->split.pp_wait_s);
  add_num(t, "dp_exposed_s", dm->split.dp_exposed_s);
  add_num(t, "optimizer_s", dm->split.optimizer_s);
  add_num(t, "idle_s", dm->split.idle_s);
}

/* The "fold" object of a folded run (README "Symmetry folding"; absent
** when every device was simulated, so that those summaries are as they
** were). */
static void fold_json(cJSON *o, const ts_run_t *run) {
  cJSON *x = cJSON_AddObjectToObject(o, "fold");
  cJSON_AddStringToObject(x, "rule", "tensor-parallel ranks x data-parallel replicas: a class is the devices of "
                          "one pipeline position, simulated once as its member with tp = 0 and dp = 0");
  cJSON_AddNumberToObject(x, "devices", run->n_devices);
  cJSON_AddNumberToObject(x, "classes", ts__fold_classes(run));
  cJSON *sim = cJSON_AddArrayToObject(x, "simulated_devices");
  for (int d = 0; d < run->n_devices; d++)
    if (run->fold[d] == d) cJSON_AddItemToArray(sim, cJSON_CreateNumber(d));
  cJSON_AddItemToObject(x, "representative", cJSON_CreateIntArray(run->fold, run->n_devices));
  cJSON_AddStringToObject(x, "events_written", "simulated_devices");
}

cJSON *ts__summary_json(const ts_result_t *r) {
  const ts_job_t *j = r->job;
  const ts_metrics_t *m = r->metrics;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "trainsim_version", TS_VERSION);
  cJSON_AddStringToObject(o, "executor", r->run->executor);
  ts__job_json(o, j, r->sched);
  summary_metrics_json(o, r);
  if (j->tensor_parallel > 1) {
    add_num(o, "tp_bytes", m->tp_bytes);
    add_num(o, "tp_comm_s", m->tp_comm_s);
    add_num(o, "tp_exposed_s", m->tp_exposed_s);
  }
  if (r->cost->moe) moe_json(o, r);
  if (r->run->fold) fold_json(o, r->run);
  bool host = r->sched && r->sched->host_weights;
  cJSON *devs = cJSON_AddArrayToObject(o, "devices");
  for (int d = 0; d < m->n_devices; d++) {
    const ts_device_metrics_t *dm = &m->dev[d];
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "device", d);
    cJSON_AddStringToObject(x, "name", r->run->devices[d].name);
    cJSON *st = cJSON_AddArrayToObject(x, "stages");
    for (int v = 0; v < r->layout->n_vstages; v++) {
      if (r->layout->dev[v] != d) continue;
      cJSON *s = cJSON_CreateObject();
      cJSON_AddNumberToObject(s, "stage", r->layout->stage[v]);
      cJSON_AddNumberToObject(s, "chunk", r->layout->chunk[v]);
      cJSON_AddNumberToObject(s, "virtual_stage", v);
      const ts_part_cost_t *pc = &r->cost->part[r->layout->part[v]];
      if (r->cost->has_flops) {
        cJSON_AddNumberToObject(s, "first_layer", pc->first_layer);
        cJSON_AddNumberToObject(s, "layers", pc->n_layers);
      }
      cJSON_AddItemToArray(st, s);
    }
    add_num(x, "busy_s", dm->busy_s);
    add_num(x, "idle_s", dm->idle_s);
    add_num(x, "bubble_fraction", dm->bubble_fraction);
    cJSON_AddNumberToObject(x, "peak_inflight_microbatches", dm->peak_inflight);
    add_num(x, "peak_activation_bytes", dm->peak_activation_bytes);
    if (r->run->measured_peak_act_bytes)
      add_num(x, "measured_peak_activation_bytes", r->run->measured_peak_act_bytes[d]);
    add_num(x, "weights_bytes", dm->weights_bytes);
    add_num(x, "gradients_bytes", dm->gradients_bytes);
    add_num(x, "optimizer_bytes", dm->optimizer_bytes);
    add_num(x, "peak_memory_bytes", dm->peak_memory_bytes);
    add_num_or_null(x, "memory_capacity_bytes", dm->memory_capacity_bytes,
                    dm->memory_capacity_bytes > 0);
    cJSON_AddBoolToObject(x, "fits", dm->fits);
    add_num(x, "p2p_bytes_sent", dm->send_bytes);
    add_num(x, "speed_flops", r->run->devices[d].speed);
    dp_device_json(x, dm);
    if (j->tensor_parallel > 1) {
      add_num(x, "tp_bytes", dm->tp_bytes);
      add_num(x, "tp_comm_s", dm->tp_comm_s);
      add_num(x, "tp_exposed_s", dm->tp_exposed_s);
    }
    time_split_json(x, dm);
    if (host) {
      add_num(x, "host_bytes", dm->host_bytes);
      add_num(x, "room_wait_s", dm->room_wait_s);
      add_num(x, "peak_resident_bytes", dm->peak_resident_bytes);
    }
    cJSON_AddItemToArray(devs, x);
  }
  /* links[]: README "summary.json"; ts__link_* in ts_report_links.c. */
  cJSON *links = cJSON_AddArrayToObject(o, "links");
  double T = ts__links_T(r->run);
  for (int i = 0; i < r->run->n_links; i++) {
    const ts_link_use_t *u = &r->run->links[i];
    char cls[TS_NAME_MAX];
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", u->name);
    cJSON_AddStringToObject(x, "class", ts__link_class(u->name, cls, sizeof cls));
    cJSON_AddStringToObject(x, "sharing", u->fatpipe ? "fatpipe" : "shared");
    add_num(x, "bandwidth_Bps", u->bandwidth);
    add_num(x, "bytes", u->bytes);
    add_num(x, "busy_s", u->busy_s);
    add_num(x, "flow_s", u->flow_s);
    add_num(x, "utilisation", ts__link_utilisation(u, T));
    add_num(x, "load", ts__link_load(u, T));
    cJSON_AddItemToArray(links, x);
  }
  return o;
}

int ts_write_summary_json(const ts_result_t *r, FILE *f) {
  cJSON *o = ts__summary_json(r);
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  if (!s) return EX_SOFTWARE;
  int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF;
  free(s);
  return bad ? EX_IOERR : 0;
}

/* ---- timeline.csv ------------------------------------------------------ */

/* The four collective columns of a row of e (", op, purpose, group, size"):
** filled for TS_COLLECTIVE (size: the group's members, from peer) and for
** TS_SEND_COLL steps (size empty), empty for every other kind. */
static void coll_columns(ts__lb_t *b, const ts_event_t *e) {
  if (e->kind != TS_COLLECTIVE && e->kind != TS_SEND_COLL) {
    ts__lb_s(b, ",,,,");
    return;
  }
  ts__lb_c(b, ',');
  ts__lb_s(b, ts_coll_op_name(TS_EV_COLL_OP(e->coll)));
  ts__lb_c(b, ',');
  ts__lb_s(b, ts_coll_purpose_name(TS_EV_COLL_PURPOSE(e->coll)));
  ts__lb_c(b, ',');
  ts__lb_s(b, ts__group_kind_name(TS_EV_COLL_GROUP(e->coll)));
  ts__lb_c(b, ',');
  if (e->kind == TS_COLLECTIVE && e->peer >= 0) ts__lb_i(b, e->peer);
}

int ts_write_timeline_csv(const ts_result_t *r, FILE *f) { return ts_write_timeline_csv_opts(r, NULL, f); }

/* Every event, or those the filters of o keep (README "timeline.csv"). */
int ts_write_timeline_csv_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f) {
  const ts_layout_t *L = r->layout;
  /* Runs with collective, optimizer or comm-wait rows get four more
  ** columns; the others are written as before. */
  bool stream = ts__run_has_stream(r->run);
  ts__lb_t *b = ts__xcalloc(1, sizeof *b);
  b->f = f;
  ts__lb_s(b, "device,host,peer,stage,chunk,kind,microbatch,iteration,start_s,end_s,bytes");
  ts__lb_s(b, stream ? ",coll_op,coll_purpose,coll_group,coll_size\n" : "\n");
  for (int i = 0; i < r->run->n_events; i++) {
    const ts_event_t *e = &r->run->events[i];
    if (!ts__out_keeps(o, e)) continue;
    ts__lb_i(b, e->device);
    ts__lb_c(b, ',');
    ts__lb_s(b, r->run->devices[e->device].name);
    ts__lb_c(b, ',');
    /* A collective's peer is its group's size (coll_size), not a device. */
    if (e->peer >= 0 && e->kind != TS_COLLECTIVE) ts__lb_i(b, e->peer);
    ts__lb_c(b, ',');
    if (e->vstage >= 0 && e->vstage < L->n_vstages) {
      ts__lb_i(b, L->stage[e->vstage]);
      ts__lb_c(b, ',');
      ts__lb_i(b, L->chunk[e->vstage]);
    } else {
      ts__lb_c(b, ',');
    }
    ts__lb_c(b, ',');
    ts__lb_s(b, ts_kind_name(e->kind));
    ts__lb_c(b, ',');
    ts__lb_i(b, e->mb);
    ts__lb_c(b, ',');
    ts__lb_i(b, e->iteration);
    ts__lb_c(b, ',');
    ts__lb_g17(b, e->start);
    ts__lb_c(b, ',');
    ts__lb_g17(b, e->end);
    ts__lb_c(b, ',');
    /* Bytes are whole numbers: print them exactly without %g. */
    if (e->bytes >= 0 && e->bytes < 9e15 && e->bytes == floor(e->bytes))
      ts__lb_i(b, (long long)e->bytes);
    else
      ts__lb_g17(b, e->bytes);
    if (stream) coll_columns(b, e);
    ts__lb_c(b, '\n');
  }
  ts__lb_flush(b, f);
  free(b);
  return ferror(f) ? EX_IOERR : 0;
}

/* ---- human summary ------------------------------------------------------ */

static const char *human_time(double s, char *buf, size_t cap) {
  if (s >= 1 || s == 0)
    snprintf(buf, cap, "%.4g s", s);
  else if (s >= 1e-3)
    snprintf(buf, cap, "%.4g ms", s * 1e3);
  else
    snprintf(buf, cap, "%.4g us", s * 1e6);
  return buf;
}

void ts_print_summary(const ts_result_t *r, FILE *f) {
  const ts_job_t *j = r->job;
  const ts_metrics_t *m = r->metrics;
  char a[32], b[32], c[32];
  fprintf(f, "trainsim %s: %s on %s, model %s, p=%d m=%d", TS_VERSION, j->schedule, j->platform_arg,
          j->model.name, j->stages, j->microbatches);
  if (j->chunks > 1) fprintf(f, " v=%d", j->chunks);
  if (j->tensor_parallel > 1) fprintf(f, " t=%d%s", j->tensor_parallel, j->sequence_parallel ? "+sp" : "");
  fprintf(f, " recompute=%s\n", ts_recompute_name(j->recompute));
  fprintf(f, "  iteration time   %s (ideal %s)\n", human_time(m->iteration_time_s, a, sizeof a),
          human_time(m->ideal_time_s, b, sizeof b));
  fprintf(f, "  bubble fraction  %.4f   (bubble overhead %.4f)\n", m->bubble_fraction,
          m->bubble_overhead);
  fprintf(f, "  throughput       %.4g samples/s", m->samples_per_s);
  /* A synthetic model's seq_len is made up: no tokens/s (README). */
  if (r->cost && r->cost->has_flops) fprintf(f, ", %.4g tokens/s", m->tokens_per_s);
  if (r->cost->has_flops)
    fprintf(f, ", %.4g TFLOP/s per GPU, MFU %.1f%%", m->flops_per_s_per_gpu / 1e12, 100 * m->mfu);
  fputc('\n', f);
  fprintf(f, "  p2p traffic      %s\n", ts__human_bytes(m->p2p_bytes, a, sizeof a));
  if (r->run->hosts_unused > 0) /* never silently (README "hosts_unused") */
    fprintf(f, "  hosts            %d of the platform's %d unused\n", r->run->hosts_unused,
            r->run->hosts_unused + r->run->n_devices);
  if (ts__run_has_stream(r->run)) { /* data parallelism, collectives, optimizer */
    fprintf(f, "  pipeline time    %s, optimizer step %s\n", human_time(m->pipeline_time_s, a, sizeof a),
            human_time(m->optimizer_s, b, sizeof b));
    if (m->dp_bytes > 0 || m->exposed_comm_s > 0) /* not for an optimizer step alone */
      fprintf(f, "  data parallel    %s sent, %s in collectives (share %.4f), %s exposed\n",
              ts__human_bytes(m->dp_bytes, a, sizeof a), human_time(m->dp_comm_s, b, sizeof b),
              m->dp_comm_share, human_time(m->exposed_comm_s, c, sizeof c));
    if (j->tensor_parallel > 1)
      fprintf(f, "  tensor parallel  %s sent, %s in collectives, %s exposed (max per device)\n",
              ts__human_bytes(m->tp_bytes, a, sizeof a), human_time(m->tp_comm_s, b, sizeof b),
              human_time(m->tp_exposed_s, c, sizeof c));
  }
  if (r->cost->moe) {
    long long kept = 0;
    for (int e = 0; e < m->n_expert_load; e++) kept += m->expert_load[e];
    double all = (double)kept + (double)m->tokens_dropped;
    fprintf(f, "  MoE layer        %s forward, %s backward; all-to-all share %.4f\n",
            human_time(m->moe_forward_s, a, sizeof a), human_time(m->moe_backward_s, b, sizeof b),
            m->alltoall_share);
    fprintf(f, "  experts          load imbalance %.3f, %lld token choices dropped (%.1f%%), aux loss %.4f\n",
            m->expert_imbalance, m->tokens_dropped, all > 0 ? 100 * m->tokens_dropped / all : 0.0,
            m->aux_loss);
  }
  int worst = 0, nofit = 0;
  for (int d = 0; d < m->n_devices; d++) {
    if (m->dev[d].peak_memory_bytes > m->dev[worst].peak_memory_bytes) worst = d;
    if (!m->dev[d].fits) nofit++;
  }
  if (m->n_devices) {
    const ts_device_metrics_t *w = &m->dev[worst];
    fprintf(f, "  peak memory      %s on device %d (%s): activations %s", ts__human_bytes(w->peak_memory_bytes, a, sizeof a),
            worst, r->run->devices[worst].name, ts__human_bytes(w->peak_activation_bytes, b, sizeof b));
    if (w->memory_capacity_bytes > 0)
      fprintf(f, ", capacity %s", ts__human_bytes(w->memory_capacity_bytes, c, sizeof c));
    fputc('\n', f);
  }
  if (nofit) fprintf(f, "  WARNING          %d device(s) exceed their memory capacity\n", nofit);
}
