/*
** ts_exec.c: the executor registry and the job -> plan -> cost -> run ->
** metrics pipeline (ts_exec.h).
*/
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "ts_budget.h"
#include "ts_exec.h"
#include "ts_ref.h"
#include "ts_sim.h"

int ts_exec_reference_check(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                            const char *verb, ts_err_t *err) {
  ts_ref_config_t c;
  int rc = ts_ref_config_for_job(job, &c, err);
  if (rc) return rc;
  if (c.hidden > TS_REF_MAX_HIDDEN)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.hidden: %d exceeds %d, the largest the CPU reference executor %s",
                      job->path, c.hidden, TS_REF_MAX_HIDDEN, verb);
  if (c.seq > TS_REF_MAX_SEQ)
    return ts_err_set(err, EX_DATAERR,
                      "%s: seq_len: %d exceeds %d, the longest the CPU reference executor %s",
                      job->path, c.seq, TS_REF_MAX_SEQ, verb);
  int M = job->microbatches * job->iterations, mbs = job->micro_batch_size;
  double per_layer = ts_ref_block_forward_flops(&c, mbs);
  double flops = (double)M * c.layers * per_layer * (job->recompute == TS_RECOMPUTE_FULL ? 4 : 3);
  if (flops > TS_REF_MAX_FLOPS)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model: one iteration takes %.3g FLOPs, more than the %.3g the CPU "
                      "reference executor %s (make the model or the batch smaller)",
                      job->path, flops, TS_REF_MAX_FLOPS, verb);
  for (int d = 0; d < lay->n_devices; d++) {
    double bytes = 0;
    for (int v = 0; v < lay->n_vstages; v++)
      if (lay->dev[v] == d)
        bytes += (double)M * (double)ts_ref_stash_bytes(&c, cost->part[lay->part[v]].n_layers, mbs);
    if (bytes > TS_REF_MAX_STASH)
      return ts_err_set(err, EX_DATAERR,
                        "%s: device %d could stash up to %.3g bytes of float64 activations, more "
                        "than the %.3g the CPU reference executor %s",
                        job->path, d, bytes, TS_REF_MAX_STASH, verb);
  }
  return 0;
}

/* The reference executor behind the common interface: jobs within the
** limits of ts_exec_reference_check, no gradients back. */
static int run_reference(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                         const ts_cost_t *cost, ts_run_t **out, ts_err_t *err) {
  *out = NULL;
  int rc = ts_exec_reference_check(job, plan->layout, cost, "runs", err);
  return rc ? rc : ts_ref_run(job, sched, plan, cost, out, NULL, err);
}

/* The registry: one line per executor, the default first. */
static const ts_executor_t executors[] = {
    {"simgrid", "SimGrid: the job simulated on its platform", ts_sim_run},
    {"reference", "CPU reference: one thread per device, real float64 math, measured",
     run_reference},
};
enum { N_EXECUTORS = sizeof executors / sizeof *executors };

const ts_executor_t *ts_executor_at(int i) {
  return i >= 0 && i < N_EXECUTORS ? &executors[i] : NULL;
}

const ts_executor_t *ts_executor_find(const char *name) {
  for (int i = 0; name && i < N_EXECUTORS; i++)
    if (!strcmp(executors[i].name, name)) return &executors[i];
  return NULL;
}

int ts_executor_lookup(const char *name, const ts_executor_t **out, ts_err_t *err) {
  *out = ts_executor_find(name);
  if (*out) return 0;
  char known[256] = "";
  size_t n = 0;
  for (int i = 0; i < N_EXECUTORS && n < sizeof known; i++)
    n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", executors[i].name);
  return ts_err_set(err, EX_USAGE, "unknown executor '%s' (known executors: %s)", name ? name : "",
                    known);
}

int ts_exec_prepare(const ts_job_t *job, const ts_schedule_t *sched, ts_outcome_t *out,
                    ts_err_t *err) {
  memset(out, 0, sizeof *out);
  out->sched = sched ? sched : ts_schedule_find(job->schedule);
  if (!out->sched)
    return ts_err_set(err, EX_DATAERR, "%s: schedule: unknown schedule '%s'", job->path,
                      job->schedule);
  int rc = ts_plan_for_job(job, out->sched, &out->plan, err);
  if (rc) {
    ts_outcome_free(out);
    return rc;
  }
  out->layout = out->plan->layout;
  int parts = 0;
  for (int v = 0; v < out->layout->n_vstages; v++)
    if (out->layout->part[v] + 1 > parts) parts = out->layout->part[v] + 1;
  if ((rc = ts_cost_build(job, parts, &out->cost, err))) {
    ts_outcome_free(out);
    return rc;
  }
  out->r = (ts_result_t){job, out->layout, out->cost, NULL, NULL, out->sched};
  return 0;
}

int ts_execute(const ts_job_t *job, const ts_schedule_t *sched, const ts_executor_t *ex,
               ts_outcome_t *out, ts_err_t *err) {
  if (!ex) ex = ts_executor_at(0);
  int rc = ts_exec_prepare(job, sched, out, err);
  if (rc) return rc;
  if (ex->run == ts_sim_run) { /* a big simulation says so before it starts */
    ts_budget_t b;
    ts_budget_estimate(job, out->plan, out->cost, &b);
    ts_budget_warn(stderr, job, &b);
  }
  if ((rc = ex->run(job, out->sched, out->plan, out->cost, &out->run, err))) {
    ts_outcome_free(out);
    return rc;
  }
  out->metrics = ts_metrics_compute(job, out->sched, out->plan, out->cost, out->run);
  out->r = (ts_result_t){job, out->layout, out->cost, out->run, out->metrics, out->sched};
  return 0;
}

int ts_simulate(const ts_job_t *job, ts_outcome_t *out, ts_err_t *err) {
  return ts_execute(job, NULL, ts_executor_find("simgrid"), out, err);
}

void ts_outcome_free(ts_outcome_t *o) {
  if (!o) return;
  ts_metrics_free(o->metrics);
  ts_run_free(o->run);
  ts_cost_free(o->cost);
  ts_plan_free(o->plan);
  memset(o, 0, sizeof *o);
}
