/*
** metrics_dp.h: the data-parallel part of the metrics (metrics_dp.c), for
** ts_metrics.c: model states per device by ZeRO stage, and a device's
** collectives, waits and optimizer step.
*/
#ifndef TS_METRICS_DP_H
#define TS_METRICS_DP_H

#include "trainsim.h"

/* Sets dm's weights_bytes, gradients_bytes and optimizer_bytes: the states
** of the model parts device d holds under job->zero (README "Data
** parallelism"), weights times versions. */
void ts__metrics_states(const ts_job_t *job, const ts_plan_t *plan, const ts_cost_t *cost,
                        int d, int versions, ts_device_metrics_t *dm);

/* From the device's ns stream events sev (TS_COLLECTIVE, TS_OPTIMIZER,
** TS_COMM_WAIT, any order): dm's coll_bytes, dp_bytes, dp_comm_s,
** exposed_comm_s, optimizer_s and the tensor-parallel tp_bytes, tp_comm_s
** and tp_exposed_s.  Reorders sev. */
void ts__metrics_streams(const ts_event_t **sev, int ns, ts_device_metrics_t *dm);

/* 1 when e is data-parallel work that follows or surrounds the pipeline
** (optimizer step, comm waits, data-parallel collectives and their steps,
** and the TP group's sync of its replicated gradients, a TP collective of
** micro-batch -1): the pipeline span ignores it. */
bool ts__metrics_is_dp_work(const ts_event_t *e);

/* The time split of every device of m (m->dev, m->n_devices set) over
** [0, T] and the run's mean, with pp_comm_s (metrics_time.c). */
void ts__metrics_time(const ts_run_t *run, double T, ts_metrics_t *m);

#endif /* TS_METRICS_DP_H */
