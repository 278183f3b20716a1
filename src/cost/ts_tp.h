/*
** ts_tp.h: the cost model's tensor-parallel shares (ts_tp.c; README
** "Tensor parallelism"), for ts_cost.c.
*/
#ifndef TS_TP_H
#define TS_TP_H

#include "trainsim.h"

/* Rewrites the costs of every part of a dense transformer job c (built for
** one tensor rank, as ts_cost_build does) to one device's share under the
** job's tensor parallelism and recompute: FLOPs / t (the LM head
** vocabulary-parallel), parameters and model states / t, activations by
** Korthikanti et al. 2022 Table 2, pipeline messages b s h / t with
** pipeline_scatter_gather; selective recompute adds the attention core's
** FLOPs to the backward.  Does nothing at t = 1 without selective
** recompute.  Never fails. */
void ts__cost_tp_apply(const ts_job_t *job, ts_cost_t *c);

#endif
