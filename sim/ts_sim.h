/*
** ts_sim.h: the SimGrid executor of the runtime interface.  It is the
** registry's "simgrid" entry (src/exec/ts_exec.h), where the whole job ->
** plan -> cost -> run -> metrics path (ts_execute, ts_simulate) lives.
*/
#ifndef TS_SIM_H
#define TS_SIM_H

#include <stdbool.h>

#include "trainsim.h"
#include "ts_runtime.h"

/* Runs sched on the job's platform under SimGrid and returns the timeline
** and the devices used in *out (caller frees with ts_run_free).
**
** SimGrid can be initialised once per process, so the simulation runs in a
** forked child; the parent stays free to run many simulations (tests,
** comparisons, sweeps).  A platform SimGrid cannot load, an unknown host,
** too few hosts, an override that matches nothing, a schedule error or a
** deadlock returns a non-zero sysexits code with a one-line message. */
int ts_sim_run(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
               const ts_cost_t *cost, ts_run_t **out, ts_err_t *err);

/* Whether ts_sim_run may show a progress line for a long simulation: on
** stderr, only when stderr is a terminal, from TRAINSIM_PROGRESS_AFTER_S
** seconds (default 1) after the start, erased when the simulation ends.
** Off by default; `trainsim run` turns it on unless --quiet. */
extern bool ts_sim_progress;

/* Symmetry folding (README "Symmetry folding"): -1 simulates every device
** at full granularity (--exact); 0, the default, folds the tensor-parallel
** ranks and data-parallel replicas of jobs of TS_SIM_FOLD_MIN_DEVICES
** devices or more when the platform keeps the plan's symmetry; 1 folds any
** such job (--fold). */
extern int ts_sim_fold;
#define TS_SIM_FOLD_MIN_DEVICES 256

/* The --cfg arguments that make SimGrid's times exact (README "Timing"). */
extern const char *const ts_sim_cfg[];

#endif
