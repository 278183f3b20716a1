/*
** plan_rules.c: the pipeline rules that are not a straight line of stages
** (trainsim.h).  A rule gives the virtual stages of one pipeline and the
** position (device within the pipeline) holding each; the plan replicates
** it over the other parallel dimensions.
**
** ts_pipeline_bidirectional (Chimera, Li and Hoefler 2021): two pipelines
** of D stages over the same D positions in opposite directions: the "down"
** pipeline's stage k (virtual stage k) at position k, the "up" pipeline's
** stage k (virtual stage D + k) at position D - 1 - k; the micro-batches
** are split in half, the first half down, the second up.  Position i holds
** stage i of one pipeline and stage D - 1 - i of the other, so positions i
** and D - 1 - i hold the same pair of stages (one REPLICA group).
**
** ts_pipeline_mapped (Mobius, Feng et al. 2023, and GPipe with swapping):
** S stages on G < S positions by the job's mapping (README "Mobius"):
** "sequential" stage k at k mod G; "cross" consecutive stages on positions
** of different groups, positions numbered group-major (mapping_groups
** groups of G / groups), stage k at (k mod groups) x G/groups + (k div
** groups) mod (G/groups); "block" stage k at k div (S/G); or the job's
** explicit mapping.  A position's stages are its chunks in ascending order.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "trainsim.h"
#include "ts_internal.h"

ts_layout_t *ts_pipeline_bidirectional(const ts_job_t *job) {
  int D = job->stages, half = job->microbatches / 2;
  ts_layout_t *l = ts_layout_new(D, 2 * D);
  for (int k = 0; k < D; k++) {
    int down = k, up = D + k;
    l->dev[down] = k;
    l->dev[up] = D - 1 - k;
    l->stage[down] = l->stage[up] = k;
    l->chunk[down] = 0;
    l->chunk[up] = 1;
    l->part[down] = l->part[up] = k;
    l->prev[down] = k ? down - 1 : -1;
    l->next[down] = k + 1 < D ? down + 1 : -1;
    l->prev[up] = k ? up - 1 : -1;
    l->next[up] = k + 1 < D ? up + 1 : -1;
    l->mb_lo[down] = 0;
    l->mb_hi[down] = half;
    l->mb_lo[up] = half;
    l->mb_hi[up] = 2 * half;
  }
  return l;
}

/* GPU of stage k under the job's mapping. */
static int map_stage(const ts_job_t *job, int k) {
  int S = job->stages, G = job->devices;
  const char *rule = job->mapping_rule; /* ts_job_load fills in the default */
  if (job->mapping) return job->mapping[k];
  if (strcmp(rule, "block") == 0) return k / (S / G);
  if (strcmp(rule, "cross") == 0) {
    int ng = job->mapping_groups > 0 ? job->mapping_groups : 2, per = G / ng, j = k % G;
    return (j % ng) * per + (j / ng) % per;
  }
  return k % G; /* sequential */
}

ts_layout_t *ts_pipeline_mapped(const ts_job_t *job) {
  int S = job->stages, G = job->devices;
  ts_layout_t *l = ts_layout_new(G, S);
  int *count = ts__xcalloc((size_t)G, sizeof *count);
  for (int k = 0; k < S; k++) {
    int d = map_stage(job, k);
    assert(d >= 0 && d < G); /* the job loader checked the mapping */
    l->dev[k] = d;
    l->stage[k] = k;
    l->chunk[k] = count[d]++;
    l->part[k] = k;
    l->prev[k] = k - 1;
    l->next[k] = k + 1 < S ? k + 1 : -1;
  }
  free(count);
  return l;
}


