/*
** ts_report_tables.c: the tables of report.html: the summary table (the
** top-level metrics of ts_summary_metric_at's list, then the "moe" object)
** and the per-device table, each row with its definition (the text of
** README's summary.json table), then the stage-time table that names the
** bottleneck stage.  Rows and definitions that do not apply to the job are
** left out: the "moe" rows without MoE layers, the data-parallel and
** collective rows without data parallelism or collectives, the host-memory
** ones for schedules whose weights stay on the devices.  The definitions
** of links[]' fields are here too (the links section writes them).
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_moe.h"
#include "ts_report_int.h"
#include "ts_runtime.h"

/* ------------------------------------------------------------------ */
/* Definitions: README's summary.json table                            */
/* ------------------------------------------------------------------ */

typedef struct def {
  const char *name, *text;
} def_t;

/* The rows of the summary table before the metrics: what ran. */
static const def_t info_defs[] = {
    {"trainsim_version, executor",
     "the version, and simgrid (simulated) or reference (measured by the CPU reference executor)"},
    {"job.*", "the job as run, after --set: file, schedule, model name, platform as written in the "
              "job, stages, microbatches, micro_batch_size, seq_len, chunks, iterations, recompute, "
              "bytes_per_element, partition (uniform, balanced or explicit; see Partitioning) and, for "
              "transformers, layers_per_stage (the layers of each model part the split gave); "
              "for mobius and gpipe-swap also devices, mapping (the rule, "
              "or the device of each stage) and mapping_groups; then the data-parallel fields "
              "data_parallel, rank_order, zero, fsdp_unit, gradient_bucket_mb, overlap_grad_reduce and "
              "optimizer (adam or none)"},
    /* the same for a job whose weights stay on the devices */
    {"job.*", "the job as run, after --set: file, schedule, model name, platform as written in the "
              "job, stages, microbatches, micro_batch_size, seq_len, chunks, iterations, recompute, "
              "bytes_per_element; then the data-parallel fields "
              "data_parallel, rank_order, zero, fsdp_unit, gradient_bucket_mb, overlap_grad_reduce and "
              "optimizer (adam or none)"},
};
/* The "moe" object of summary.json (README), shown for every run. */
static const def_t moe_defs[] = {
    {"moe.experts, moe.expert_parallel, moe.capacity_factor, moe.group_size, moe.skew, moe.exponent, moe.seed, moe.alltoall",
     "the job's MoE settings as run (group_size resolved: tokens per gating group S; exponent only for zipf); the moe object appears only for MoE models"},
    {"moe.capacity",
     "expert capacity C per group: ceil(S x capacity_factor / E) rounded up to a multiple of capacity_multiple"},
    {"moe.moe_layers",
     "MoE layers in the model"},
    {"moe.alltoall_time_share",
     "sum over devices of the time spent inside all-to-all calls (from the call, when its flows start, to its return, when the last peer's flow has arrived: transfer time plus waiting for late peers) / (devices x T)"},
    {"moe.moe_layer_forward_s",
     "mean over devices, MoE layers and micro-batches of one MoE layer's forward: from the start of its dispatch call to the end of its combine call (dispatch, expert compute, combine)"},
    {"moe.moe_layer_backward_s",
     "the same for the backward: from the start of the combine's gradient all-to-all to the end of the dispatch's gradient all-to-all"},
    {"moe.expert_load_imbalance",
     "max over mean, over experts, of the token choices routed to each expert before capacity, summed over MoE layers, micro-batches and lanes (1 = balanced; E = all to one expert)"},
    {"moe.tokens_dropped",
     "token choices (first or dispatched second) beyond their expert's capacity, summed likewise; a token whose choices are all dropped passes through the residual"},
    {"moe.tokens_computed",
     "token choices the experts computed (kept), summed likewise"},
    {"moe.aux_loss",
     "GShard's auxiliary load-balancing loss, E^2 x mean_e(mean gate x top-1 fraction), averaged over groups, lanes, micro-batches and MoE layers (1 when balanced)"},
    {"moe.expert_load",
     "per expert, the token choices it computed, summed likewise"},
};
#define N_MOE_DEFS (int)(sizeof moe_defs / sizeof moe_defs[0])

static const def_t dev_defs[] = {
    {"devices[].device", "the device index (the order of placement, or of the platform's hosts)"},
    {"devices[].name", "the host the device runs on"},
    {"devices[].stages", "the (virtual) stages the device holds, with their layers"},
    {"devices[].busy_s, idle_s", "sum of the device's compute-op durations; T - busy"},
    {"devices[].bubble_fraction", "idle_s / T"},
    {"devices[].peak_inflight_microbatches",
     "the most (stage, micro-batch) pairs held at once whose forward has started and whose backward has "
     "not finished (each chunk of an interleaved device counts)"},
    {"devices[].peak_activation_bytes", "the most activation bytes stashed at once (see Memory)"},
    {"devices[].weights_bytes, gradients_bytes, optimizer_bytes",
     "model states of the parameters the device holds: bytes_per_element, bytes_per_element, and 12 (fp32 "
     "master, Adam m and v; 8 when bytes_per_element >= 4) bytes per parameter. A device holding two stages "
     "(chimera) or chunks counts each; 2bw keeps two weight versions, so its weights count twice. A "
     "synthetic model's weights_bytes is per stage, and its gradients the same size. "
     "With data parallelism the ZeRO stage shards them over the n devices of the replica group (experts: the d of the DP group): zero 1 optimizer / n, zero 2 gradients and optimizer / n, zero 3 all three / n"},
    {"devices[].peak_memory_bytes",
     "weights + gradients + optimizer + peak activations; for mobius and gpipe-swap, the peak over time "
     "of activations + resident weights + gradient buffers (no static states: they live in host memory); "
     "with zero 3, the peak over time of the sharded states + the gathered units in flight + activations"},
    {"devices[].memory_capacity_bytes", "the host's memory_bytes property; null when unknown"},
    {"devices[].fits", "peak_memory_bytes <= memory_capacity_bytes (true when unknown)"},
    {"devices[].p2p_bytes_sent", "bytes this device sent"},
    {"devices[].speed_flops", "the sustained FLOP/s used for its compute"},
    {"devices[].coll_bytes",
     "per collective kind (all-reduce, reduce-scatter, all-gather, broadcast, all-to-all), the bytes this device sent in collectives of that kind, of every purpose (the bytes of its collective timeline rows)"},
    {"devices[].dp_bytes",
     "bytes this device sent in data-parallel collectives (purposes grads, params and gather)"},
    {"devices[].dp_comm_s",
     "time inside data-parallel collectives: the union of their spans on the device's communication stream"},
    {"devices[].exposed_comm_s",
     "time the device's compute stream waited for collectives (the sum of its comm_wait rows), "
     "tensor-parallel ones excepted (tp_exposed_s)"},
    {"devices[].optimizer_s",
     "the duration of the device's optimizer step (its optimizer row): bytes / memory_bandwidth, bytes = (2 K + 2 e) x the parameters of its shard (K: optimizer bytes per parameter, 12 or 8 when bytes_per_element >= 4; e: bytes_per_element); 0 without a step or without a memory_bandwidth"},
    {"devices[].gathered_peak_bytes",
     "zero 3: the most gathered parameter bytes (a gather's full unit weights minus the own shard) held at once; 0 otherwise"},
    {"devices[].pp_comm_s",
     "time pipeline messages (send_act, send_grad) the device sends or receives were in flight: the union of their spans"},
    {"devices[].time_split",
     "the device's span [0, T] cut by what its compute stream does, the first that applies: compute_s (a compute op runs), tp_exposed_s (it waits for a tensor-parallel collective), dp_exposed_s (for any other collective), optimizer_s (the optimizer step), pp_wait_s (a pipeline message to the device is in flight) and idle_s (the rest: the bubble proper); the six add up to T"},
    {"devices[].host_bytes", "(mobius, gpipe-swap) bytes copied between the device and host memory: "
                             "weights fetched plus gradients written back"},
    {"devices[].room_wait_s",
     "(mobius, gpipe-swap) total time the device waited for device memory to free up: fetches at the "
     "head of its copy queue with the copy engine free, and reservations of a visit's activation memory "
     "(the room_wait rows of the timeline)"},
    {"devices[].peak_resident_bytes",
     "(mobius, gpipe-swap) the most weight and gradient-buffer bytes on the device at once"},
};
#define N_DEV_DEFS (int)(sizeof dev_defs / sizeof dev_defs[0])

/* The fields of summary.json's links[] (ts_output.c; the report's links
** section, ts_report_links.c, lists them under its tables). */
static const def_t link_defs[] = {
    {"links[]",
     "per platform link that carried traffic (simulator only; a SPLITDUPLEX link's directions _UP and "
     "_DOWN separately), sorted by name. A transfer between devices or to or from host memory counts on "
     "every link of its route, in flight from its start_s to its end_s in timeline.csv (from when its "
     "data could start to move to its arrival, the route's latency included); T is the makespan, "
     "iteration_time_s x iterations"},
    {"links[].name, class",
     "the link's name in the platform, and its class: the name without a trailing _UP or _DOWN, each "
     "run of digits replaced by N (leaf3-spine1 is leafN-spineN, nvlink-node0-gpu5_UP is "
     "nvlink-nodeN-gpuN)"},
    {"links[].sharing",
     "shared (its flows share the bandwidth by max-min fairness: SHARED links and SPLITDUPLEX "
     "directions) or fatpipe (a FATPIPE link: the bandwidth caps each flow and is not shared between "
     "them)"},
    {"links[].bandwidth_Bps", "the bandwidth as simulated (after --set overrides); per flow for a fatpipe"},
    {"links[].bytes", "bytes of every transfer whose route crosses it, host copies included"},
    {"links[].busy_s",
     "time during which at least one of its transfers was in flight: the union of their spans, at most T"},
    {"links[].flow_s", "the sum of its transfers' spans (above busy_s where they overlap)"},
    {"links[].utilisation",
     "busy_s / T, in [0, 1]: the share of the run during which the link carried anything"},
    {"links[].load",
     "a shared link: bytes / (bandwidth_Bps x T), the mean share of its bandwidth used over the run; a "
     "fatpipe: bytes / (bandwidth_Bps x flow_s), its flows' mean rate over the per-flow cap. At most 1 "
     "up to rounding: SimGrid keeps the flows of a shared link within its bandwidth together, and each "
     "flow of a fatpipe within it"},
};
#define N_LINK_DEFS (int)(sizeof link_defs / sizeof link_defs[0])

void ts__report_write_link_defs(FILE *f) {
  fputs("<dl class=\"defs\">\n", f);
  for (int i = 0; i < N_LINK_DEFS; i++) {
    fputs("<dt><code>", f);
    ts__xml_puts(f, link_defs[i].name);
    fputs("</code></dt><dd>", f);
    ts__xml_puts(f, link_defs[i].text);
    fputs("</dd>\n", f);
  }
  fputs("</dl>\n", f);
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

/* The "fold" object of a folded run (README "Symmetry folding"). */
static const def_t fold_defs[] = {
    {"fold.rule, fold.devices, fold.classes",
     "(folded runs only: the fold object appears only when symmetry folding ran, see Symmetry folding) the "
     "rule, the job's devices, and its classes (one per pipeline position), each simulated once"},
    {"fold.simulated_devices",
     "the devices simulated, one per class: its member with tp = 0 and dp = 0 (the representative)"},
    {"fold.representative", "per device, its class's representative: the device whose events and metrics it has"},
    {"fold.events_written",
     "simulated_devices: timeline.csv, trace.json and paje.trace hold only those devices' events"},
};

/* One row of the summary table: the metric, its value as shown and exact
** (v, x), and its definition. */
static void write_row(FILE *f, const def_t *d, const char *v, const char *x) {
  fputs("<tr><td><code>", f);
  ts__xml_puts(f, d->name);
  fputs("</code></td><td class=\"num\">", f);
  ts__xml_puts(f, v);
  fputs("</td><td class=\"num\"><code>", f);
  ts__xml_puts(f, x);
  fputs("</code></td><td class=\"def\">", f);
  ts__xml_puts(f, d->text);
  fputs("</td></tr>\n", f);
}

/* The rows of the "moe" object: values for MoE runs, n/a otherwise. */
static void write_moe_rows(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  const ts_moe_cost_t *mc = r->cost ? r->cost->moe : NULL;
  for (int i = 0; i < N_MOE_DEFS; i++) {
    char v[160] = "n/a (no MoE layers)", x[64] = "";
    double val = NAN;
    if (mc && m && r->job) {
      const ts_moe_t *mo = &r->job->model.moe;
      switch (i) {
        case 0:
          snprintf(v, sizeof v, "E=%d, EP=%d, cf=%g, S=%d, %s, seed %lu, %s", mo->experts,
                   mo->expert_parallel, mo->capacity_factor, mc->S,
                   mo->skew == TS_MOE_ZIPF ? "zipf" : mo->skew == TS_MOE_TABLE ? "table" : "uniform",
                   mo->seed, mo->alltoall_tokens ? "tokens" : "capacity");
          break;
        case 1:
          snprintf(v, sizeof v, "%d", (int)(val = ts_moe_capacity(mc->S, mc->E, mo->capacity_factor,
                                                                   mo->capacity_multiple)));
          break;
        case 2: snprintf(v, sizeof v, "%d", (int)(val = mc->n_layers)); break;
        case 3: snprintf(v, sizeof v, "%.4f", val = m->alltoall_share); break;
        case 4: ts__report_time(v, sizeof v, val = m->moe_forward_s); break;
        case 5: ts__report_time(v, sizeof v, val = m->moe_backward_s); break;
        case 6: snprintf(v, sizeof v, "%.4f", val = m->expert_imbalance); break;
        case 7: snprintf(v, sizeof v, "%lld", m->tokens_dropped); val = (double)m->tokens_dropped; break;
        case 8: {
          long long k = 0;
          for (int e = 0; e < m->n_expert_load; e++) k += m->expert_load[e];
          snprintf(v, sizeof v, "%lld", k);
          val = (double)k;
          break;
        }
        case 9: snprintf(v, sizeof v, "%.4f", val = m->aux_loss); break;
        default: {
          size_t n = 0;
          v[0] = 0;
          for (int e = 0; e < m->n_expert_load && e < 8; e++)
            n += (size_t)snprintf(v + n, sizeof v - n, "%s%lld", e ? ", " : "", m->expert_load[e]);
          if (m->n_expert_load > 8) snprintf(v + n, sizeof v - n, ", \xE2\x80\xA6");
        }
      }
    }
    if (isfinite(val)) snprintf(x, sizeof x, "%.17g", val);
    write_row(f, &moe_defs[i], v, x);
  }
}

/* The rows of the "fold" object, for folded runs only. */
static void write_fold_rows(FILE *f, const ts_run_t *run) {
  char v[160], x[64];
  snprintf(v, sizeof v, "%d devices, %d classes", run->n_devices, ts__fold_classes(run));
  snprintf(x, sizeof x, "%d", ts__fold_classes(run));
  write_row(f, &fold_defs[0], v, x);
  char *reps = ts__fold_reps(run);
  snprintf(v, sizeof v, "%.150s", reps);
  free(reps);
  write_row(f, &fold_defs[1], v, "");
  size_t n = 0;
  for (int d = 0; d < run->n_devices && d < 8; d++)
    n += (size_t)snprintf(v + n, sizeof v - n, "%s%d", d ? ", " : "", run->fold[d]);
  if (run->n_devices > 8) snprintf(v + n, sizeof v - n, ", \xE2\x80\xA6");
  write_row(f, &fold_defs[2], v, "");
  write_row(f, &fold_defs[3], "simulated_devices", "");
}

/* Whether the schedule keeps its weights in host memory (mobius,
** gpipe-swap). */
static bool host_weights(const ts_result_t *r) { return r->sched && r->sched->host_weights; }

/* The summary metrics that only data parallelism, collectives or an
** optimizer step give values. */
static bool dp_metric(const char *name) {
  static const char *const dp[] = {"pipeline_time_s", "optimizer_s", "dp_bytes", "dp_comm_s",
                                   "exposed_comm_s", "dp_comm_share"};
  for (size_t i = 0; i < sizeof dp / sizeof dp[0]; i++)
    if (!strcmp(name, dp[i])) return true;
  return !strncmp(name, "coll_bytes.", 11);
}

/* Whether device definition i applies to r (host-memory ones for
** host_weights schedules, data-parallel ones with dp). */
static bool dev_def_applies(const ts_result_t *r, int i, bool dp) {
  const char *n = dev_defs[i].name;
  if (!strncmp(n, "devices[].host_bytes", 20) || !strncmp(n, "devices[].room_wait_s", 21) ||
      !strncmp(n, "devices[].peak_resident_bytes", 29))
    return host_weights(r);
  if (!strcmp(n, "devices[].coll_bytes") || !strcmp(n, "devices[].dp_bytes") ||
      !strcmp(n, "devices[].dp_comm_s") || !strcmp(n, "devices[].exposed_comm_s") ||
      !strcmp(n, "devices[].optimizer_s") || !strcmp(n, "devices[].gathered_peak_bytes"))
    return dp;
  return true;
}

/* The value of summary metric sm as the table shows it, into v (n bytes);
** its exact value, NAN when it has none, into *val. */
static void metric_cell(char *v, size_t n, const ts_summary_metric_t *sm, const ts_result_t *r,
                        double *val) {
  *val = NAN;
  if (!ts_summary_metric_available(sm, r)) {
    snprintf(v, n, "%s", sm->flops ? "n/a (synthetic model)" : "n/a");
    return;
  }
  double x = *val = sm->value(r);
  switch (sm->show) {
    case TS_SHOW_TIME: ts__report_time(v, n, x); break;
    case TS_SHOW_FIXED4: snprintf(v, n, "%.4f", x); break;
    case TS_SHOW_SI: ts__report_si(v, n, x, sm->unit); break;
    case TS_SHOW_PERCENT: snprintf(v, n, "%.2f %%", 100.0 * x); break;
    case TS_SHOW_BYTES: ts__report_bytes(v, n, x); break;
    case TS_SHOW_COUNT:
      if (x >= 1e9)
        snprintf(v, n, "%.4g billion", x / 1e9);
      else
        snprintf(v, n, "%.4g million", x / 1e6);
      break;
  }
}

void ts__report_write_summary(FILE *f, const ts_result_t *r) {
  fputs("<section id=\"summary\">\n<h2>Summary</h2>\n<p class=\"note\">The figures of "
        "<code>summary.json</code>, with their definitions.</p>\n<div class=\"scroll\"><table>\n"
        "<tr><th>metric</th><th>value</th><th>exact</th><th>definition</th></tr>\n",
        f);
  char v[96] = "n/a", x[64] = "";
  snprintf(v, sizeof v, "%s, %s", TS_VERSION, r->run->executor[0] ? r->run->executor : "unknown");
  write_row(f, &info_defs[0], v, x);
  snprintf(v, sizeof v, "n/a");
  if (r->job)
    snprintf(v, sizeof v, "%.32s, p=%d, m=%d, b=%d, s=%d", r->job->schedule, r->job->stages,
             r->job->microbatches, r->job->micro_batch_size, r->job->seq_len);
  write_row(f, &info_defs[host_weights(r) ? 1 : 2], v, x);
  const ts_summary_metric_t *sm;
  bool dp = ts__report_has_dp(r->metrics);
  for (int i = 0; (sm = ts_summary_metric_at(i)); i++) {
    double val;
    if (!dp && dp_metric(sm->name)) continue;
    metric_cell(v, sizeof v, sm, r, &val);
    x[0] = 0;
    if (isfinite(val)) snprintf(x, sizeof x, "%.17g", val);
    write_row(f, &(def_t){sm->name, sm->definition}, v, x);
  }
  if (r->cost && r->cost->moe) write_moe_rows(f, r);
  if (r->run->fold) write_fold_rows(f, r->run);
  fputs("</table></div>\n", f);
  if (!dp || !(r->cost && r->cost->moe)) {
    fputs("<p class=\"note\">Left out, as they do not apply to this job:", f);
    if (!dp) fputs(" the data-parallel and collective metrics (no data parallelism, no collectives, no optimizer step)", f);
    if (!dp && !(r->cost && r->cost->moe)) fputs(";", f);
    if (!(r->cost && r->cost->moe)) fputs(" the mixture-of-experts metrics (no MoE layers)", f);
    fputs(".</p>\n", f);
  }
  fputs("</section>\n", f);
}

/* The stage-time table (README "Partitioning"): each model part's compute
** per micro-batch on its device (forward + backward, + recompute when the
** job recomputes: FLOPs over the device's speed, or a synthetic model's
** seconds), its layers and its ratio to the mean part, with the slowest
** part, which paces the steady state of a pipeline, named above it.
** Parts are listed in model order, each on the device of its first
** virtual stage. */
static void write_stage_times(FILE *f, const ts_result_t *r) {
  const ts_cost_t *c = r->cost;
  const ts_layout_t *L = r->layout;
  if (!c || !L || !r->run || c->n_parts < 1) return;
  int n = c->n_parts, *vs = malloc((size_t)n * sizeof *vs);
  double *t = calloc((size_t)n, sizeof *t);
  if (!vs || !t) {
    free(vs);
    free(t);
    return;
  }
  for (int k = 0; k < n; k++) vs[k] = -1;
  for (int v = L->n_vstages - 1; v >= 0; v--)
    if (L->part[v] >= 0 && L->part[v] < n) vs[L->part[v]] = v;
  bool rec = r->job && r->job->recompute == TS_RECOMPUTE_FULL;
  double sum = 0;
  int slow = 0;
  for (int k = 0; k < n; k++) {
    const ts_part_cost_t *pc = &c->part[k];
    int d = vs[k] >= 0 ? L->dev[vs[k]] : -1;
    double speed = d >= 0 && d < r->run->n_devices ? r->run->devices[d].speed : 0;
    if (c->has_flops) {
      double fl = pc->flops[TS_FORWARD] + pc->flops[TS_BACKWARD] + (rec ? pc->flops[TS_RECOMPUTE] : 0);
      t[k] = speed > 0 ? fl / speed : NAN;
    } else {
      t[k] = pc->seconds[TS_FORWARD] + pc->seconds[TS_BACKWARD] + (rec ? pc->seconds[TS_RECOMPUTE] : 0);
    }
    sum += t[k];
    if (t[k] > t[slow]) slow = k;
  }
  double mean = sum / n;
  char a[64], b[64];
  const char *part_rule = r->job ? ts_partition_name(r->job->partition) : "uniform";
  fputs("<h3>Stage times</h3>\n<p class=\"note\">", f);
  fprintf(f, "Compute per micro-batch of each model part (forward + backward%s), split by the "
          "<code>%s</code> partition. ", rec ? " + recompute" : "", part_rule);
  if (!(t[slow] > mean * (1 + 1e-9)))
    fputs("The parts are balanced: none is slower than the mean.", f);
  else if (vs[slow] >= 0)
    fprintf(f, "<b>Bottleneck: stage %d%s</b>, %s per micro-batch, %.2fx the mean part (%s): the "
            "slowest stage paces the pipeline's steady state and the others wait for it.",
            L->stage[vs[slow]], c->has_flops && slow == n - 1 ? " (it holds the LM head)" : "",
            ts__report_time(a, sizeof a, t[slow]), mean > 0 ? t[slow] / mean : 1.0,
            ts__report_time(b, sizeof b, mean));
  fputs("</p>\n<div class=\"scroll\"><table class=\"devs\">\n<tr><th>part</th><th>stage</th>"
        "<th>device</th><th>layers</th><th>compute per micro-batch</th><th>vs mean</th></tr>\n",
        f);
  for (int k = 0; k < n && k < 512; k++) {
    const ts_part_cost_t *pc = &c->part[k];
    int v = vs[k];
    fprintf(f, "<tr><td class=\"num\">%d</td><td class=\"num\">", k);
    if (v >= 0) fprintf(f, "%d%s", L->stage[v], k == slow ? " <b>(bottleneck)</b>" : "");
    fputs("</td><td class=\"num\">", f);
    if (v >= 0) fprintf(f, "%d", L->dev[v]);
    fputs("</td><td>", f);
    if (c->has_flops && pc->n_layers > 0)
      fprintf(f, "%d (%d\xE2\x80\x93%d)%s%s", pc->n_layers, pc->first_layer,
              pc->first_layer + pc->n_layers - 1, k == 0 ? " + embedding" : "",
              k == n - 1 ? " + LM head" : "");
    else
      fputs("n/a", f);
    fprintf(f, "</td><td class=\"num\">%s</td><td class=\"num\">%.3f</td></tr>\n",
            ts__report_time(a, sizeof a, t[k]), mean > 0 ? t[k] / mean : 1.0);
  }
  fputs("</table></div>\n", f);
  free(vs);
  free(t);
}

void ts__report_write_devices(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  const ts_layout_t *L = r->layout;
  fputs("<section id=\"devices\">\n<h2>Devices</h2>\n", f);
  if (!m || !m->dev) {
    fputs("<p class=\"note\">n/a: no metrics.</p>\n</section>\n", f);
    return;
  }
  fputs("<div class=\"scroll\"><table class=\"devs\">\n<tr><th>device</th><th>name</th><th>stages</th><th>busy_s</th>"
        "<th>idle_s</th><th>bubble_fraction</th><th>peak_inflight_microbatches</th>"
        "<th>peak_activation_bytes</th><th>weights_bytes</th><th>gradients_bytes</th>"
        "<th>optimizer_bytes</th><th>peak_memory_bytes</th><th>memory_capacity_bytes</th>"
        "<th>fits</th><th>p2p_bytes_sent</th><th>speed_flops</th>",
        f);
  bool dp = ts__report_has_dp(m);
  if (dp)
    fputs("<th>dp_bytes</th><th>dp_comm_s</th><th>exposed_comm_s</th><th>optimizer_s</th>"
          "<th>gathered_peak_bytes</th>", f);
  fputs("</tr>\n", f);
  for (int d = 0; d < m->n_devices && d < r->run->n_devices; d++) {
    const ts_device_metrics_t *dm = &m->dev[d];
    char a[64];
    fprintf(f, "<tr><td class=\"num\">%d</td><td>", d);
    ts__xml_puts(f, r->run->devices[d].name);
    fputs("</td><td>", f);
    int shown = 0;
    for (int v = 0; L && v < L->n_vstages; v++) {
      if (L->dev[v] != d) continue;
      if (shown++ == 24) {
        fputs(", \xE2\x80\xA6", f);
        break;
      }
      fprintf(f, "%s%d", shown > 1 ? ", " : "", L->stage[v]);
      if (L->chunk[v] > 0 || (r->job && r->job->chunks > 1)) fprintf(f, ".%d", L->chunk[v]);
      if (r->cost && r->cost->has_flops && L->part[v] < r->cost->n_parts) {
        const ts_part_cost_t *pc = &r->cost->part[L->part[v]];
        if (pc->n_layers > 0)
          fprintf(f, " (layers %d\xE2\x80\x93%d)", pc->first_layer, pc->first_layer + pc->n_layers - 1);
      }
    }
    if (!L) fputs("n/a", f);
    fprintf(f, "</td><td class=\"num\">%s</td>", ts__report_time(a, sizeof a, dm->busy_s));
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_time(a, sizeof a, dm->idle_s));
    fprintf(f, "<td class=\"num\">%.4f</td><td class=\"num\">%d</td>", dm->bubble_fraction + 0.0,
            dm->peak_inflight);
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->peak_activation_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->weights_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->gradients_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->optimizer_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->peak_memory_bytes));
    if (dm->memory_capacity_bytes > 0)
      fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->memory_capacity_bytes));
    else
      fputs("<td class=\"num\">unknown</td>", f);
    fprintf(f, "<td>%s</td>", dm->fits ? "yes" : "<b style=\"color:#C00000\">no</b>");
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->send_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_si(a, sizeof a, r->run->devices[d].speed, "FLOP/s"));
    if (dp) {
      fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->dp_bytes));
      fprintf(f, "<td class=\"num\">%s</td>", ts__report_time(a, sizeof a, dm->dp_comm_s));
      fprintf(f, "<td class=\"num\">%s</td>", ts__report_time(a, sizeof a, dm->exposed_comm_s));
      fprintf(f, "<td class=\"num\">%s</td>", ts__report_time(a, sizeof a, dm->optimizer_s));
      fprintf(f, "<td class=\"num\">%s</td>", ts__report_bytes(a, sizeof a, dm->gathered_peak_bytes));
    }
    fputs("</tr>\n", f);
  }
  fputs("</table></div>\n<dl class=\"defs\">\n", f);
  for (int i = 0; i < N_DEV_DEFS; i++) {
    if (!dev_def_applies(r, i, dp)) continue;
    fputs("<dt><code>", f);
    ts__xml_puts(f, dev_defs[i].name);
    fputs("</code></dt><dd>", f);
    bool plain = !host_weights(r) && !(r->job && r->job->zero == 3);
    if (plain && !strcmp(dev_defs[i].name, "devices[].peak_memory_bytes"))
      fputs("weights + gradients + optimizer + peak activations", f);
    else
      ts__xml_puts(f, dev_defs[i].text);
    fputs("</dd>\n", f);
  }
  fputs("</dl>\n", f);
  write_stage_times(f, r);
  fputs("</section>\n", f);
}
