/*
** table.c: schedule "table", a schedule read from a file (README
** "Schedules from a file"): the job's "table" (ts_table_t, read by
** src/job/job_table.c) lists for each pipeline stage its compute ops in
** order, as another tool (the zero-bubble scheduler, Varuna's generator)
** or a figure gives them.  One generic program runs every stage's list and
** sends and receives what each op needs:
**   forward         receive the input activation (not on the first stage),
**                   compute, send the activation on (not on the last);
**   backward,       receive the output gradient (not on the last stage),
**   backward_input  [recompute], compute, send the input gradient back
**                   (not on the first);
**   recompute,      compute only.
**   weight_grad
** Under recompute "full", a stage whose list has no recompute op runs one
** before each backward and backward_input, as the built-in schedules do; a
** stage that lists recompute ops runs only those.
**
** The check (at load) holds the table to the job: one op list per stage,
** micro-batches and chunks in range, and every (chunk, micro-batch) of a
** stage listed once forward and once backward (whole, or backward_input
** and weight_grad).  Errors name the table file and the op: "FILE: stages[2][5]:
** ...".  The order is the runtime's to check: a backward before its
** forward, a missing input or a cycle (deadlock) fails the run with an
** error naming the file and the op, "FILE: stage 2 op 5 (backward mb 3):
** device 2: ..." (ts_rt_name_op).  Ops are numbered from 0 as in stages[s][k].
*/
#include <stdlib.h>
#include <string.h>

#include "sched_util.h"
#include "ts_internal.h"

/* "FILE: stage s op k (kind mb m[ chunk c])" into buf. */
static void op_name(char *buf, size_t n, const ts_table_t *t, int s, int k, int chunks) {
  const ts_table_op_t *op = &t->ops[s][k];
  char ch[32] = "";
  if (chunks > 1) snprintf(ch, sizeof ch, " chunk %d", op->chunk);
  snprintf(buf, n, "%.300s: stage %d op %d (%s mb %d%s)", t->path, s, k, ts_kind_name(op->kind),
           op->mb, ch);
}

static void run_op(ts_rt_t *rt, const ts_table_op_t *op, int v, bool auto_recompute) {
  const ts_layout_t *L = ts_rt_ctx(rt)->layout;
  switch (op->kind) {
  case TS_FORWARD:
    ts_sched_forward(rt, v, op->mb);
    break;
  case TS_BACKWARD:
  case TS_BACKWARD_INPUT:
    if (L->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, op->mb);
    if (auto_recompute) ts_rt_compute(rt, TS_RECOMPUTE, v, op->mb);
    ts_rt_compute(rt, op->kind, v, op->mb);
    if (L->prev[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, op->mb);
    break;
  default: /* recompute, weight_grad */
    ts_rt_compute(rt, op->kind, v, op->mb);
    break;
  }
}

static bool lists_recompute(const ts_table_t *t, int s) {
  for (int k = 0; k < t->n_ops[s]; k++)
    if (t->ops[s][k].kind == TS_RECOMPUTE) return true;
  return false;
}

static void table_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  const ts_table_t *t = c->job->table;
  int s = c->layout->stage[c->local[0]];
  bool auto_rc = c->recompute == TS_RECOMPUTE_FULL && !lists_recompute(t, s);
  char name[384];
  for (int k = 0; k < t->n_ops[s] && !ts_rt_failed(rt); k++) {
    op_name(name, sizeof name, t, s, k, c->chunks);
    ts_rt_name_op(rt, name);
    run_op(rt, &t->ops[s][k], c->local[t->ops[s][k].chunk], auto_rc);
  }
  if (!ts_rt_failed(rt)) ts_rt_name_op(rt, NULL);
}

/* Every (chunk, mb) of stage s listed once forward and once backward
** (whole, or split into backward_input and weight_grad), recompute at
** most once.  at[] has chunks x m x TS_COMPUTE_KINDS cells. */
static int check_complete(const ts_job_t *job, int s, int *at, ts_err_t *err) {
  const ts_table_t *t = job->table;
  int m = job->microbatches, v = job->chunks;
  char name[384];
  for (int k = 0; k < t->n_ops[s]; k++) {
    const ts_table_op_t *op = &t->ops[s][k];
    int *cell = &at[((size_t)op->chunk * m + op->mb) * TS_COMPUTE_KINDS];
    const int split = cell[TS_BACKWARD_INPUT] | cell[TS_WEIGHT_GRAD];
    op_name(name, sizeof name, t, s, k, v);
    if (cell[op->kind])
      return ts_err_set(err, EX_DATAERR, "%s: listed twice (first as op %d)", name,
                        cell[op->kind] - 1);
    if ((op->kind == TS_BACKWARD && split) ||
        ((op->kind == TS_BACKWARD_INPUT || op->kind == TS_WEIGHT_GRAD) && cell[TS_BACKWARD]))
      return ts_err_set(err, EX_DATAERR,
                        "%s: the stage lists both the whole backward and its split halves "
                        "(backward_input, weight_grad) of this micro-batch",
                        name);
    cell[op->kind] = k + 1;
  }
  for (int ch = 0; ch < v; ch++)
    for (int mb = 0; mb < m; mb++) {
      const int *cell = &at[((size_t)ch * m + mb) * TS_COMPUTE_KINDS];
      const char *missing = !cell[TS_FORWARD] ? "forward"
                            : cell[TS_BACKWARD] ? NULL
                            : !cell[TS_BACKWARD_INPUT] ? "backward"
                            : !cell[TS_WEIGHT_GRAD] ? "weight_grad"
                                                    : NULL;
      if (cell[TS_WEIGHT_GRAD] && !cell[TS_BACKWARD_INPUT]) missing = "backward_input";
      char chs[32] = "";
      if (v > 1) snprintf(chs, sizeof chs, " chunk %d", ch);
      if (missing)
        return ts_err_set(err, EX_DATAERR, "%.300s: stages[%d]: no %s of micro-batch %d%s", t->path, s,
                          missing, mb, chs);
    }
  return 0;
}

/* The ops of stage s in range for the job. */
static int check_ranges(const ts_job_t *job, int s, ts_err_t *err) {
  const ts_table_t *t = job->table;
  for (int k = 0; k < t->n_ops[s]; k++) {
    const ts_table_op_t *op = &t->ops[s][k];
    if (op->mb >= job->microbatches)
      return ts_err_set(err, EX_DATAERR,
                        "%.300s: stages[%d][%d]: micro-batch %d out of range (the job has %d "
                        "micro-batches, 0..%d)",
                        t->path, s, k, op->mb, job->microbatches, job->microbatches - 1);
    if (op->chunk >= job->chunks)
      return ts_err_set(err, EX_DATAERR,
                        "%.300s: stages[%d][%d]: chunk %d out of range (the job has %d chunks per "
                        "device)",
                        t->path, s, k, op->chunk, job->chunks);
    if (op->kind == TS_RECOMPUTE && job->recompute != TS_RECOMPUTE_FULL)
      return ts_err_set(err, EX_DATAERR,
                        "%.300s: stages[%d][%d]: a recompute op needs the job's recompute \"full\"",
                        t->path, s, k);
  }
  return 0;
}

static int table_check(const ts_job_t *job, ts_err_t *err) {
  const ts_table_t *t = job->table;
  if (!t)
    return ts_err_set(err, EX_DATAERR,
                      "%s: table: missing field (schedule 'table' runs the ops of a table file)",
                      job->path);
  if (job->iterations != 1)
    return ts_err_set(err, EX_DATAERR,
                      "%s: iterations: schedule 'table' simulates one iteration (flush), got %d",
                      job->path, job->iterations);
  if (t->n_stages != job->stages)
    return ts_err_set(err, EX_DATAERR,
                      "%.300s: stages: %d op lists, the job has %d stages (%s %d%s)", t->path,
                      t->n_stages, job->stages,
                      t->n_stages < job->stages ? "stage" : "stages from",
                      t->n_stages < job->stages ? t->n_stages : job->stages,
                      t->n_stages < job->stages ? " missing" : " too many");
  int rc = 0;
  for (int s = 0; s < t->n_stages; s++)
    if ((rc = check_ranges(job, s, err))) return rc;
  for (int s = 0; s < t->n_stages && !rc; s++) {
    /* Fewer ops than a forward and a backward per cell cannot be complete:
    ** past 2^24 cells that is said without naming the first one missing,
    ** so the cells below stay bounded by the table's size. */
    long long need = 2LL * job->chunks * job->microbatches;
    if (t->n_ops[s] < need && need > 1LL << 24)
      return ts_err_set(err, EX_DATAERR,
                        "%.300s: stages[%d]: %d ops, fewer than a forward and a backward of each "
                        "of the %d micro-batches x %d chunks",
                        t->path, s, t->n_ops[s], job->microbatches, job->chunks);
    int *at = ts__xcalloc((size_t)need / 2 * TS_COMPUTE_KINDS, sizeof *at);
    rc = check_complete(job, s, at, err);
    free(at);
  }
  return rc;
}

/* The table needs its file: there is no adjustment compare could make. */
static const char *const requires_table[] = {"stages=4", "microbatches=8",
                                             "table=zb-h1-p4-m8", NULL};

const ts_schedule_t ts_schedule_table = {
    .name = "table",
    .title = "Schedule table (from a file)",
    .check = table_check,
    .pipeline = NULL,
    .program = table_program,
    .requires = requires_table,
    .needs_table = 1,
};
