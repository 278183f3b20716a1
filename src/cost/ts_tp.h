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
** vocabulary-parallel), parameters and model states: 1d split / t +
** ts__cost_tp_replicated_params, the grids / q^2 (2d, 2.5d) or / t (3d);
** activations by
** Korthikanti et al. 2022 Table 2, pipeline messages b s h / t with
** pipeline_scatter_gather; selective recompute adds the attention core's
** FLOPs to the backward.  Does nothing at t = 1 without selective
** recompute.  Never fails. */
void ts__cost_tp_apply(const ts_job_t *job, ts_cost_t *c);

/* Parameters of a transformer part of `layers` layers that every rank of
** 1D tensor parallelism holds whole, as Megatron-LM does: per layer the
** two norms (2 x 2 h LayerNorm, 2 h RMSNorm) and, with model.bias "all",
** the row-split GEMMs' output biases b_o and b_2 (2 h); on the first part
** (first) the learned position table (ts__cost_position_params); on the
** last (last) the final norm when model.final_norm.  Every other parameter
** of the part is split over the t ranks.  seq: the job's seq_len (the
** position table's rows when max_positions is 0).  Pure. */
double ts__cost_tp_replicated_params(const ts_model_t *m, int seq, int layers, bool first,
                                     bool last);

/* The learned position table's parameters, max_positions x h (seq x h
** when max_positions is 0); 0 with rotary positions (ts_cost.c).  Pure. */
double ts__cost_position_params(const ts_model_t *m, int seq);

#endif
