/*
** interleaved.c: Megatron-LM's interleaved 1F1B (Narayanan et al.,
** "Efficient Large-Scale Language Model Training on GPU Clusters Using
** Megatron-LM", SC 2021, section 2.2.2; the rule of Megatron's
** forward_backward_pipelining_with_interleaving).
**
** Each of the p devices holds v model chunks: virtual stage k = c p + d is
** chunk c on device d, so a micro-batch visits every device v times.  A
** device runs m v chunk-forwards and m v chunk-backwards.  Its k-th forward
** is chunk (k mod p v) div p of micro-batch (k div p v) p + k mod p; its
** k-th backward takes the chunks in reverse order, v - 1 - (k mod p v) div p.
** Device d first runs min(2 (p - d - 1) + (v - 1) p, m v) warm-up forwards,
** then alternates one forward and one backward, then drains the backwards.
** m must be divisible by p.
**
** Closed form (equal chunks, no communication; t_f, t_b a device's whole
** share for one micro-batch, so one chunk takes t_f / v and t_b / v):
** iteration time m (t_f + t_b) + (p - 1)(t_f + t_b) / v, bubble overhead
** (p - 1) / (v m); point-to-point traffic grows v-fold; device d holds at
** most 2 (p - d - 1) + (v - 1) p + 1 chunk-micro-batches in flight.
*/
#include "sched_util.h"

static int chunk_of(int k, int p, int v, int forward) {
  int c = (k % (p * v)) / p;
  return forward ? c : v - 1 - c;
}

static int mb_of(int k, int p, int v) { return (k / (p * v)) * p + k % p; }

/* The device's chunk j is its j-th virtual stage (ascending: chunk 0 first). */
static void fwd(ts_rt_t *rt, int k) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int p = c->stages, v = c->chunks;
  ts_sched_forward(rt, c->local[chunk_of(k, p, v, 1)], mb_of(k, p, v));
}

static void bwd(ts_rt_t *rt, int k) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int p = c->stages, v = c->chunks;
  ts_sched_backward(rt, c->local[chunk_of(k, p, v, 0)], mb_of(k, p, v));
}

static void interleaved_program(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int p = c->stages, v = c->chunks, total = c->microbatches * v;
  int s = c->layout->stage[c->local[0]];
  int warmup = 2 * (p - s - 1) + (v - 1) * p;
  if (warmup > total) warmup = total;
  int remaining = total - warmup;
  for (int k = 0; k < warmup; k++) fwd(rt, k);
  for (int k = 0; k < remaining; k++) {
    fwd(rt, warmup + k);
    bwd(rt, k);
  }
  for (int k = remaining; k < total; k++) bwd(rt, k);
}

static int interleaved_check(const ts_job_t *job, ts_err_t *err) {
  if (job->microbatches % job->stages)
    return ts_err_set(err, EX_DATAERR,
                      "%s: microbatches: the interleaved schedule needs microbatches divisible by "
                      "stages (%d is not a multiple of %d)",
                      job->path, job->microbatches, job->stages);
  if (job->iterations != 1)
    return ts_err_set(err, EX_DATAERR, "%s: iterations: schedule 'interleaved' simulates one iteration (flush), got %d",
                      job->path, job->iterations);
  return 0;
}

/* Two chunks when the job has one: with one chunk it is 1F1B. */
static const struct ts_sched_set two_chunks[] = {{"chunks=2", "1"}, {NULL, NULL}};
static const char *const requires_interleaved[] = {"chunks=2", NULL};

const ts_schedule_t ts_schedule_interleaved = {
    .name = "interleaved",
    .title = "Interleaved 1F1B (Megatron-LM, Narayanan et al. 2021)",
    .check = interleaved_check,
    .pipeline = NULL,
    .program = interleaved_program,
    .requires = requires_interleaved,
    .compare_sets = two_chunks,
};
