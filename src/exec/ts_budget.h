/*
** ts_budget.h: a job's size estimated from its plan and cost table before
** it runs, and the budget above which trainsim warns (README "Budget").
*/
#ifndef TS_BUDGET_H
#define TS_BUDGET_H
#include <stdio.h>

#include "trainsim.h"

/* The budget: simulated events (compute ops + transfers) and output bytes
** above which a run warns before it starts (it still runs). */
#define TS_BUDGET_EVENTS 2e6
#define TS_BUDGET_OUTPUT_BYTES 1e9
/* Output bytes per event with every output written (the benchmark job:
** 67 MB for 130,048 events). */
#define TS_BUDGET_BYTES_PER_EVENT 520.0

typedef struct ts_budget {
  double ops, transfers; /* estimated compute ops and transfers */
  double output_bytes;   /* estimated bytes of all the outputs */
} ts_budget_t;

/* Fills *b for job on plan with cost (no allocation, no error). */
void ts_budget_estimate(const ts_job_t *job, const ts_plan_t *plan, const ts_cost_t *cost,
                        ts_budget_t *b);
/* Writes one warning line to f when *b exceeds the budget; returns 1 then,
** else 0 (nothing written). */
int ts_budget_warn(FILE *f, const ts_job_t *job, const ts_budget_t *b);

#endif
