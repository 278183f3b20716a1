/*
** ts_exec.h: the executors and the one path from a job to its metrics.
**
** An executor runs a schedule program on a job's parallel plan and returns
** a timeline (ts_run_t): the SimGrid executor (sim/ts_sim.h) predicts it on
** the job's platform, the CPU reference executor (src/ref/ts_ref.h)
** measures it on threads with real math.  Both take the same arguments, so
** they sit in one registry, looked up by name (trainsim run --executor).
**
** The pipeline every command and test goes through, written once here:
**   job -> schedule (the registry's, or the caller's) -> plan (its layout)
**   -> cost table (one row per model part of the layout) -> executor run
**   -> metrics -> the writers' result.
** ts_exec_prepare does the first half (up to the cost table) for callers
** that run an executor themselves (with options the interface does not
** carry, such as the reference executor's gradients); ts_execute does it
** all; ts_simulate is ts_execute with the SimGrid executor.
*/
#ifndef TS_EXEC_H
#define TS_EXEC_H

#include "trainsim.h"
#include "ts_runtime.h"

/* ---- the registry --------------------------------------------------------- */

/* Runs sched on plan (built from job with sched's pipeline rule) with the
** cost table cost; on success returns 0 and *out (caller frees with
** ts_run_free), else a sysexits code with err filled and *out NULL. */
typedef int (*ts_executor_fn)(const ts_job_t *job, const ts_schedule_t *sched,
                              const ts_plan_t *plan, const ts_cost_t *cost, ts_run_t **out,
                              ts_err_t *err);

typedef struct ts_executor {
  const char *name;  /* --executor value, and ts_run_t.executor of its runs */
  const char *title; /* one line for help texts */
  ts_executor_fn run;
} ts_executor_t;

/* The executor called name, NULL when unknown. */
const ts_executor_t *ts_executor_find(const char *name);
/* The i-th registered executor (0: simgrid, the default), NULL past the end. */
const ts_executor_t *ts_executor_at(int i);
/* Like ts_executor_find, but an unknown name is EX_USAGE with the message
** "unknown executor 'NAME' (known executors: simgrid, reference)". */
int ts_executor_lookup(const char *name, const ts_executor_t **out, ts_err_t *err);

/* Limits of the reference executor's jobs, so that a run on this CPU in
** float64 stays short (`trainsim validate`, `run --executor reference`). */
#define TS_REF_MAX_HIDDEN 1024
#define TS_REF_MAX_SEQ 2048
#define TS_REF_MAX_FLOPS 2e11
#define TS_REF_MAX_STASH (2.0 * 1024 * 1024 * 1024)

/* Whether the reference executor takes job (cut as lay, costed as cost):
** 0, or EX_DATAERR naming the job file and the field when the model is not
** one ts_ref_config_for_job accepts, hidden or seq_len exceed the limits
** above, an iteration takes more FLOPs than TS_REF_MAX_FLOPS or a device
** could stash more float64 activation bytes than TS_REF_MAX_STASH.  verb
** ends the message's "... the CPU reference executor VERB" ("runs",
** "validates").  The registry's "reference" entry checks this first. */
int ts_exec_reference_check(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                            const char *verb, ts_err_t *err);

/* ---- the pipeline ------------------------------------------------------- */

/* Everything one executed job produced; r points into the other fields and
** at the job, which the outcome does not own. */
typedef struct ts_outcome {
  const ts_schedule_t *sched; /* the schedule run (not owned) */
  ts_plan_t *plan;
  const ts_layout_t *layout;  /* plan->layout */
  ts_cost_t *cost;
  ts_run_t *run;
  ts_metrics_t *metrics;
  ts_result_t r;
} ts_outcome_t;

/* The first half of the pipeline: clears *out, then fills out->sched (sched,
** or the registry's job->schedule when sched is NULL), out->plan and
** out->layout (ts_plan_for_job) and out->cost (ts_cost_build with as many
** parts as the layout uses); r.job, r.layout and r.cost are set, the rest
** stays NULL.  Errors: EX_DATAERR for an unknown schedule (naming the job
** file), else those of ts_plan_for_job and ts_cost_build; *out is then
** freed and cleared.  Free with ts_outcome_free. */
int ts_exec_prepare(const ts_job_t *job, const ts_schedule_t *sched, ts_outcome_t *out,
                    ts_err_t *err);

/* The whole pipeline: ts_exec_prepare, ex->run, ts_metrics_compute.  sched
** NULL: the job's own schedule; ex NULL: the default (simgrid).  On success
** fills *out (free with ts_outcome_free); on error returns the code with
** err filled and *out cleared. */
int ts_execute(const ts_job_t *job, const ts_schedule_t *sched, const ts_executor_t *ex,
               ts_outcome_t *out, ts_err_t *err);

/* Simulates job end to end on SimGrid: ts_execute(job, NULL, simgrid). */
int ts_simulate(const ts_job_t *job, ts_outcome_t *out, ts_err_t *err);

/* Frees what o holds (not the job) and clears it; o may be NULL or cleared. */
void ts_outcome_free(ts_outcome_t *o);

#endif /* TS_EXEC_H */
