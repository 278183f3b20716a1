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
static double params(const ts_result_t *r) { return r->cost->model_params; }

static const ts_summary_metric_t list[] = {
    {"iteration_time_s", "s", TS_SHOW_TIME, false, false, iteration_time,
     "makespan T / iterations; T = latest end of any op or transfer (the run starts at 0)"},
    {"bubble_fraction", "1", TS_SHOW_FIXED4, false, false, bubble_fraction,
     "idle share of devices x makespan: sum over devices of (T - busy) / (devices x T). Only compute "
     "ops count as busy"},
    {"bubble_overhead", "1", TS_SHOW_FIXED4, false, false, bubble_overhead,
     "(T - ideal) / ideal, ideal = the largest per-device busy time (Megatron's \"bubble time "
     "fraction\" when stages are equal)"},
    {"ideal_time_s", "s", TS_SHOW_TIME, false, false, ideal_time,
     "the largest per-device busy time, divided by the iterations"},
    {"throughput.samples_per_s", "samples/s", TS_SHOW_SI, false, false, samples,
     "microbatches x micro_batch_size x iterations / T (gshard with model.moe: x expert_parallel, "
     "since each lane runs its own micro-batches)"},
    {"throughput.tokens_per_s", "tokens/s", TS_SHOW_SI, false, false, tokens, "samples_per_s x seq_len"},
    {"throughput.flops_per_s_per_gpu", "FLOP/s", TS_SHOW_SI, true, false, flops,
     "model FLOPs (forward + backward, recompute not counted) of the run / (T x devices); null for "
     "synthetic models"},
    {"throughput.mfu", "1", TS_SHOW_PERCENT, true, false, mfu,
     "flops_per_s_per_gpu / mean peak_flops of the devices (host property peak_flops, else its "
     "speed); null for synthetic models"},
    {"p2p_bytes", "B", TS_SHOW_BYTES, false, false, p2p,
     "bytes of all transfers between devices: activations, gradients, all-reduce steps and MoE "
     "all-to-all flows; copies to and from host memory are not included (see devices[].host_bytes)"},
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
