/*
** ts_summary_metrics.c: the top-level metrics of summary.json, declared
** once: name (path in summary.json), unit, the report's format, and the
** definition (README's summary.json table, without its backticks).
**
** summary.json's writer (ts_output.c) writes these keys from this list,
** the report's summary table (ts_report.c) shows them with their
** definitions, and test_formats checks the list against README.  The
** order is summary.json's: a "throughput." or "job." prefix puts a metric
** in that object.
*/
#include <math.h>

#include "ts_out.h"

static double iteration_time(const ts_result_t *r) { return r->metrics->iteration_time_s; }
static double bubble_fraction(const ts_result_t *r) { return r->metrics->bubble_fraction; }
static double bubble_overhead(const ts_result_t *r) { return r->metrics->bubble_overhead; }
static double ideal_time(const ts_result_t *r) { return r->metrics->ideal_time_s; }
static double samples(const ts_result_t *r) { return r->metrics->samples_per_s; }
static double tokens(const ts_result_t *r) { return r->metrics->tokens_per_s; }
static double flops(const ts_result_t *r) { return r->metrics->flops_per_s_per_gpu; }
static double mfu(const ts_result_t *r) { return r->metrics->mfu; }
static double p2p(const ts_result_t *r) { return r->metrics->p2p_bytes; }
static double hosts_unused(const ts_result_t *r) { return r->run->hosts_unused; }
static double params(const ts_result_t *r) { return r->cost->model_params; }
static double pipeline_time(const ts_result_t *r) { return r->metrics->pipeline_time_s; }
static double optimizer(const ts_result_t *r) { return r->metrics->optimizer_s; }
static double dp_bytes(const ts_result_t *r) { return r->metrics->dp_bytes; }
static double dp_comm(const ts_result_t *r) { return r->metrics->dp_comm_s; }
static double exposed_comm(const ts_result_t *r) { return r->metrics->exposed_comm_s; }
static double dp_share(const ts_result_t *r) { return r->metrics->dp_comm_share; }
static double pp_comm(const ts_result_t *r) { return r->metrics->pp_comm_s; }
static double ts_compute(const ts_result_t *r) { return r->metrics->split.compute_s; }
static double ts_tp(const ts_result_t *r) { return r->metrics->split.tp_exposed_s; }
static double ts_pp(const ts_result_t *r) { return r->metrics->split.pp_wait_s; }
static double ts_dp(const ts_result_t *r) { return r->metrics->split.dp_exposed_s; }
static double ts_opt(const ts_result_t *r) { return r->metrics->split.optimizer_s; }
static double ts_idle(const ts_result_t *r) { return r->metrics->split.idle_s; }
static double coll_ar(const ts_result_t *r) { return r->metrics->coll_bytes[TS_COLL_ALLREDUCE]; }
static double coll_rs(const ts_result_t *r) { return r->metrics->coll_bytes[TS_COLL_REDUCE_SCATTER]; }
static double coll_ag(const ts_result_t *r) { return r->metrics->coll_bytes[TS_COLL_ALLGATHER]; }
static double coll_bc(const ts_result_t *r) { return r->metrics->coll_bytes[TS_COLL_BROADCAST]; }
static double coll_a2a(const ts_result_t *r) { return r->metrics->coll_bytes[TS_COLL_ALLTOALL]; }

/* The definition of coll_bytes.OP. */
#define COLL_DEF(op)                                                                             \
  "sum over devices of devices[].coll_bytes." op ": bytes sent in " op " collectives of every " \
  "purpose (a schedule's own and data-parallel ones)"

static const ts_summary_metric_t list[] = {
    {"iteration_time_s", "s", TS_SHOW_TIME, false, false, iteration_time,
     "makespan T / iterations; T = latest end of any op or transfer (the run starts at 0)"},
    {"bubble_fraction", "1", TS_SHOW_FIXED4, false, false, bubble_fraction,
     "idle share of devices x pipeline span: sum over devices of (P - busy) / (devices x P), P = "
     "pipeline_time_s x iterations. Only compute ops count as busy (not the optimizer step)"},
    {"bubble_overhead", "1", TS_SHOW_FIXED4, false, false, bubble_overhead,
     "(P - ideal) / ideal, ideal = the largest per-device busy time (Megatron's \"bubble time "
     "fraction\" when stages are equal)"},
    {"ideal_time_s", "s", TS_SHOW_TIME, false, false, ideal_time,
     "the largest per-device busy time, divided by the iterations"},
    {"throughput.samples_per_s", "samples/s", TS_SHOW_SI, false, false, samples,
     "microbatches x micro_batch_size x iterations x data_parallel / T (gshard with model.moe: x "
     "expert_parallel, since each lane runs its own micro-batches)"},
    {"throughput.tokens_per_s", "tokens/s", TS_SHOW_SI, true, false, tokens,
     "samples_per_s x seq_len; null for synthetic models (their seq_len is no property of the model)"},
    {"throughput.flops_per_s_per_gpu", "FLOP/s", TS_SHOW_SI, true, false, flops,
     "model FLOPs (forward + backward, recompute not counted) of the run, every data-parallel "
     "replica's, / (T x devices); null for synthetic models"},
    {"throughput.mfu", "1", TS_SHOW_PERCENT, true, false, mfu,
     "flops_per_s_per_gpu / mean peak_flops of the devices (host property peak_flops, else its "
     "speed); null for synthetic models"},
    {"hosts_unused", "1", TS_SHOW_SI, false, false, hosts_unused,
     "hosts of the platform the job does not use (it runs on the first hosts in platform order, "
     "or on its placement); 0 on the ideal platform, which has exactly the job's hosts"},
    {"p2p_bytes", "B", TS_SHOW_BYTES, false, false, p2p,
     "bytes of the point-to-point transfers between devices: activations, gradients and MoE "
     "all-to-all flows; collectives are counted in coll_bytes, and copies to and from host memory "
     "are not included (see devices[].host_bytes)"},
    {"pipeline_time_s", "s", TS_SHOW_TIME, false, false, pipeline_time,
     "latest end of a compute op or a point-to-point transfer, divided by the iterations: the "
     "pipeline's part of the iteration, without the data-parallel synchronisation and the optimizer "
     "step after it"},
    {"optimizer_s", "s", TS_SHOW_TIME, false, false, optimizer,
     "the longest devices[].optimizer_s; 0 without an optimizer step (optimizer none, iterations > "
     "1, mobius and gpipe-swap)"},
    {"dp_bytes", "B", TS_SHOW_BYTES, false, false, dp_bytes,
     "sum over devices of devices[].dp_bytes: bytes sent in data-parallel collectives"},
    {"dp_comm_s", "s", TS_SHOW_TIME, false, false, dp_comm,
     "the largest devices[].dp_comm_s: time inside data-parallel collectives"},
    {"exposed_comm_s", "s", TS_SHOW_TIME, false, false, exposed_comm,
     "the largest devices[].exposed_comm_s: time a compute stream waited for collectives other "
     "than tensor-parallel ones (those are tp_exposed_s, see Tensor parallelism)"},
    {"dp_comm_share", "1", TS_SHOW_PERCENT, false, false, dp_share, "dp_comm_s / T"},
    {"pp_comm_s", "s", TS_SHOW_TIME, false, false, pp_comm,
     "the largest devices[].pp_comm_s: time pipeline messages to or from a device were in flight"},
    {"time_split.compute_s", "s", TS_SHOW_TIME, false, false, ts_compute,
     "mean over devices of devices[].time_split.compute_s (the six time_split parts add up to T; see "
     "Time split)"},
    {"time_split.tp_exposed_s", "s", TS_SHOW_TIME, false, false, ts_tp,
     "mean over devices of devices[].time_split.tp_exposed_s"},
    {"time_split.pp_wait_s", "s", TS_SHOW_TIME, false, false, ts_pp,
     "mean over devices of devices[].time_split.pp_wait_s"},
    {"time_split.dp_exposed_s", "s", TS_SHOW_TIME, false, false, ts_dp,
     "mean over devices of devices[].time_split.dp_exposed_s"},
    {"time_split.optimizer_s", "s", TS_SHOW_TIME, false, false, ts_opt,
     "mean over devices of devices[].time_split.optimizer_s"},
    {"time_split.idle_s", "s", TS_SHOW_TIME, false, false, ts_idle,
     "mean over devices of devices[].time_split.idle_s"},
    {"coll_bytes.all-reduce", "B", TS_SHOW_BYTES, false, false, coll_ar, COLL_DEF("all-reduce")},
    {"coll_bytes.reduce-scatter", "B", TS_SHOW_BYTES, false, false, coll_rs, COLL_DEF("reduce-scatter")},
    {"coll_bytes.all-gather", "B", TS_SHOW_BYTES, false, false, coll_ag, COLL_DEF("all-gather")},
    {"coll_bytes.broadcast", "B", TS_SHOW_BYTES, false, false, coll_bc, COLL_DEF("broadcast")},
    {"coll_bytes.all-to-all", "B", TS_SHOW_BYTES, false, false, coll_a2a, COLL_DEF("all-to-all")},
    {"job.model_parameters", "parameters", TS_SHOW_COUNT, true, true, params,
     "parameters of the whole model, 12 l h^2 + 13 l h + (V + s) h at ffn = 4h"},
};
#define N_LIST (int)(sizeof list / sizeof list[0])

const ts_summary_metric_t *ts_summary_metric_at(int i) { return i >= 0 && i < N_LIST ? &list[i] : NULL; }

bool ts_summary_metric_available(const ts_summary_metric_t *m, const ts_result_t *r) {
  if (m->from_cost ? !r->cost : !r->metrics) return false;
  return !m->flops || (r->cost && r->cost->has_flops);
}

double ts_summary_metric_value(const ts_summary_metric_t *m, const ts_result_t *r) {
  return ts_summary_metric_available(m, r) ? m->value(r) : NAN;
}
