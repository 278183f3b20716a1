/*
** ts_ref.c: the CPU reference executor (ts_ref.h).
**
** What it models: a pipeline-parallel training iteration as it really runs.
** One POSIX thread per device runs the schedule program through the
** runtime front-end (ts_runtime.c); each compute op is the float64 math of
** ref_model.c on the device's own model clone; a send copies the tensor
** into a new buffer and drops it into the receiver's inbox.  What it
** measures is what the simulator predicts: op start and end times
** (CLOCK_MONOTONIC), the order of each device's ops, and each device's
** stashed activation bytes (its ts_ref_mem_t).
**
** Assumptions and choices:
** - Synchronisation is one global mutex (every device's lock() takes it) and
**   one condition variable per device.  A send copies outside the mutex and
**   delivers under it, so a message is either absent or complete; there are
**   no messages in flight, which is what makes deadlock detection exact:
**   the number of running devices (started, not waiting, not finished) is
**   kept under the mutex; wait() takes the device off, notify() puts the
**   device it wakes back on (on the waker's side, so a woken device that has
**   not run yet still counts), and when the count reaches 0 with a device
**   unfinished nobody can ever send again: a deadlock.  The waiting threads
**   then leave through pthread_exit from inside wait() (the front-end's wait
**   loops only end on arrival or failure), with their "waiting for" text
**   still set, and ts__world_finish reports them.
** - Executor errors (out of memory) cannot stop the front-end, so after one
**   every later op is skipped (messages still flow, empty) and ts_ref_run
**   returns the error when the program is done.
** - Threads are pinned one per allowed core when there are enough cores, so
**   that timing noise comes from the math, not from migrations.
** - Memory behaves like a GPU framework's caching allocator: the process
**   gets one malloc arena, no trimming and mmap only above 32 MiB
**   (ts_ref_allocator_setup), and before the clock starts the run touches
**   about as much heap as its devices can hold at once, so compute ops do
**   not pay for page faults (on a 2-core VM the faults of a fresh 9.4 MB
**   stash cost a third of a 70 ms forward) and an op takes the same time
**   whether or not it is the first to reach a given amount of memory.
** - The tables of a device (stashes, outputs waiting to be sent, inbox)
**   are indexed by (local virtual stage, micro-batch); only the inbox is
**   shared, and only under the mutex.
** - Weight versions (ts_ref.h) are per virtual stage: V full model clones
**   of which the stage uses its own blocks, touched only by its device's
**   thread, so they need no lock.  The gradients of iteration t accumulate
**   in the clone of the version it computes with; the update adds them to
**   the device model's gradients (the run's sum, gathered at the end) and
**   reuses that clone for W(t + 1).
*/
#include "ts_ref.h"

#include <errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

enum { SLOT_ACT = 0, SLOT_GRAD = 1 };

struct ref_x;

typedef struct ref_dev {
  struct ref_x *x;
  int id;
  int cpu;                  /* pinned core, or -1 */
  pthread_t thread;
  int started;              /* thread created (joined at the end) */
  pthread_cond_t cond;
  int waiting, finished;    /* under x->mu */
  ts_ref_model_t *model;    /* own clone: parameters read, gradients summed */
  ts_ref_mem_t mem;         /* stashed activation bytes */
  int n_local;              /* virtual stages of this device */
  ts_ref_stash_t **stash;   /* [n_local * M] */
  double **out;             /* [2 * n_local * M] y of forwards, dx of backwards */
  double **inbox;           /* [2 * n_local * M] received; under x->mu */
} ref_dev_t;

/* The weight versions of one virtual stage in a versioned run (ts_ref.h);
** touched only by the thread of the stage's device.  Version W(k) lives in
** slot k mod V (k >= -d: W(-d) .. W(-1) are copies of W(0)); its gradient
** accumulator collects the gradients of iteration k + d, the only iteration
** that computes with it, until the update of that iteration reuses the
** slot for W(k + d + 1) = W(k + d) - lr x those gradients. */
typedef struct ref_stage {
  ts_ref_model_t **slot;    /* [V] full clones; only this stage's blocks used */
  int newest;               /* W(newest) is the newest version */
  int *bwd;                 /* [iterations] backwards done, per iteration */
  int *inflight;            /* [iterations] forwards whose backward is to come */
  int peak_live;            /* most versions live at once */
} ref_stage_t;

typedef struct ref_x {
  const ts_job_t *job;
  const ts_layout_t *lay;
  const ts_cost_t *cost;
  ts_world_t *w;
  ts_ref_config_t cfg;
  int n, M, mbs;
  size_t n_el;              /* doubles of one activation: mbs x seq x hidden */
  double N;                 /* samples in the batch (loss normaliser) */
  const double *X, *T;      /* [M x n_el] inputs and targets */
  int *loc;                 /* [n_vstages] index among its device's stages */
  struct timespec t0;
  pthread_mutex_t mu;
  int running, deadlock, aborted; /* under mu */
  ts_ref_model_t *host;     /* host memory (schedules with host_weights):
                            ** master parameters, written-back gradients */
  atomic_int fatal;         /* an executor error happened: skip the math */
  int fatal_code;           /* under mu */
  char fatal_msg[512];      /* under mu */
  ref_dev_t *dev;
  /* Versioned runs (weight_versions > 1 or iterations > 1): */
  int versioned, V, d, I;   /* versions declared, staleness V - 1, iterations */
  ref_stage_t *stg;         /* [n_vstages], NULL when not versioned */
} ref_x_t;

/* 1 while this thread holds the global mutex (abort_all may be called with
** or without it). */
static _Thread_local int tls_holds;

/* ---- helpers ------------------------------------------------------------ */

static size_t cell(const ref_x_t *x, int v, int mb) {
  return (size_t)x->loc[v] * (size_t)x->M + (size_t)mb;
}

static size_t slot_cell(const ref_x_t *x, const ref_dev_t *dv, int slot, int v, int mb) {
  return (size_t)slot * (size_t)dv->n_local * (size_t)x->M + cell(x, v, mb);
}

static double *take(double **p) {
  double *b = *p;
  *p = NULL;
  return b;
}

static void x_lock_(ref_x_t *x) {
  pthread_mutex_lock(&x->mu);
  tls_holds = 1;
}

static void x_unlock_(ref_x_t *x) {
  tls_holds = 0;
  pthread_mutex_unlock(&x->mu);
}

/* Records the first executor error; later ops are skipped. */
static void ref_fatal(ref_x_t *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ref_fatal(ref_x_t *x, int code, const char *fmt, ...) {
  int held = tls_holds;
  if (!held) x_lock_(x);
  if (!x->fatal_code) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->fatal_msg, sizeof x->fatal_msg, fmt, ap);
    va_end(ap);
    x->fatal_code = code;
  }
  atomic_store(&x->fatal, 1);
  if (!held) x_unlock_(x);
}

/* Fills a[0 .. n) with N(0, 1) draws of gsl_rng_mt19937 seeded with seed. */
static void fill_normal(double *a, size_t n, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (size_t i = 0; i < n; i++) a[i] = gsl_ran_gaussian(r, 1.0);
  gsl_rng_free(r);
}

/* The batch's inputs and targets: M micro-batches of n_el doubles each. */
static int make_data(const ts_ref_config_t *c, int M, int mbs, double **X, double **T) {
  size_t n = (size_t)M * (size_t)mbs * (size_t)c->seq * (size_t)c->hidden;
  *X = malloc(n * sizeof **X);
  *T = malloc(n * sizeof **T);
  if (!*X || !*T) {
    free(*X);
    free(*T);
    *X = *T = NULL;
    return EX_OSERR;
  }
  fill_normal(*X, n, c->seed + 1);
  fill_normal(*T, n, c->seed + 2);
  return 0;
}

int ts_ref_config_for_job(const ts_job_t *job, ts_ref_config_t *cfg, ts_err_t *err) {
  const ts_model_t *m = &job->model;
  if (m->kind != TS_MODEL_TRANSFORMER)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.kind: the reference executor needs a transformer model, got a "
                      "synthetic one (it has no math to run)",
                      job->path);
  if (m->moe.experts > 0)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.moe: the reference pipeline executor has no MoE layers; the MoE "
                      "layer has its own reference executor (src/ref_moe.c)",
                      job->path);
  if (m->gated_mlp)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.gated_mlp: the reference model has a plain GELU MLP, not a gated one",
                      job->path);
  *cfg = (ts_ref_config_t){.layers = m->layers,
                           .hidden = m->hidden,
                           .heads = m->heads,
                           .ffn = m->ffn_hidden,
                           .seq = job->seq_len,
                           .seed = TS_REF_SEED};
  if (ts_ref_block_param_count(cfg) == 0)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model: shape (layers %d, hidden %d, heads %d, ffn %d, seq %d) is not one "
                      "the reference model accepts",
                      job->path, m->layers, m->hidden, m->heads, m->ffn_hidden, job->seq_len);
  return 0;
}

/* ---- executor operations ------------------------------------------------ */

static double x_now(void *xd) {
  ref_x_t *x = xd;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - x->t0.tv_sec) + (double)(t.tv_nsec - x->t0.tv_nsec) * 1e-9;
}

/* ---- weight versions (versioned runs) ------------------------------------ */

static int vslot(const ref_x_t *x, int k) { return ((k % x->V) + x->V) % x->V; }

/* Distinct versions stage sg holds live: the newest, and the one of every
** iteration with a micro-batch in flight (W(k < 0) counts as W(0)). */
static int live_versions(const ref_x_t *x, const ref_stage_t *sg) {
  int n = 1, last = sg->newest;
  for (int t = 0; t < x->I; t++) {
    int k = t - x->d < 0 ? 0 : t - x->d;
    if (sg->inflight[t] > 0 && k != sg->newest && k != last) {
      n++;
      last = k;
    }
  }
  return n;
}

/* The model holding the weights that micro-batch mb computes with on
** virtual stage v: the device's own model in a run without versions, else
** W(t - d) for the micro-batch's iteration t.  NULL, after recording the
** executor error, when that version is not computed yet. */
static ts_ref_model_t *stage_model(ref_x_t *x, ref_dev_t *dv, int v, int mb, const char *op) {
  if (!x->versioned) return dv->model;
  ref_stage_t *sg = &x->stg[v];
  int m = x->job->microbatches, t = mb / m, k = t - x->d;
  if (k > sg->newest) {
    ref_fatal(x, EX_SOFTWARE,
              "reference executor: device %d: %s of stage %d micro-batch %d (iteration %d) needs "
              "weight version %d, not yet computed: the update of iteration %d still waits for %d "
              "of its %d backwards on this stage (the schedule keeps %d weight version%s)",
              dv->id, op, v, mb, t, k, sg->newest, m - sg->bwd[sg->newest], m, x->V,
              x->V == 1 ? "" : "s");
    return NULL;
  }
  return sg->slot[vslot(x, k)];
}

/* After a forward or an update: checks that stage v holds at most V
** versions live and records the peak.  Returns 0, or -1 after recording the
** executor error. */
static int count_live(ref_x_t *x, ref_dev_t *dv, int v) {
  ref_stage_t *sg = &x->stg[v];
  int live = live_versions(x, sg);
  if (live > sg->peak_live) sg->peak_live = live;
  if (live <= x->V) return 0;
  ref_fatal(x, EX_SOFTWARE,
            "reference executor: device %d: stage %d holds %d weight versions live (the newest, "
            "%d, and those of its in-flight micro-batches), more than the %d the schedule keeps",
            dv->id, v, live, sg->newest, x->V);
  return -1;
}

/* The update of iteration t = newest on stage v, once all its backwards
** there are done: W(t + 1) = W(t) - TS_REF_LR x (the gradients accumulated
** with W(t - d)), written into W(t - d)'s slot; those gradients are added
** to the device model's, which sums every gradient of the run. */
static void apply_update(ref_x_t *x, ref_dev_t *dv, int v) {
  ref_stage_t *sg = &x->stg[v];
  int t = sg->newest;
  ts_ref_model_t *cur = sg->slot[vslot(x, t)], *acc = sg->slot[vslot(x, t - x->d)];
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
    size_t n;
    const double *w = ts_ref_block_params(cur, l, &n);
    const double *g = ts_ref_block_grad(acc, l, &n);
    /* The models own their gradient vectors, which are not const. */
    double *sum = (double *)ts_ref_block_grad(dv->model, l, &n);
    double *out = ts_ref_block_params(acc, l, &n);
    for (size_t i = 0; i < n; i++) {
      sum[i] += g[i];
      out[i] = w[i] - TS_REF_LR * g[i];
    }
  }
  ts_ref_model_zero_grad(acc);
  sg->newest = t + 1;
}

/* Bookkeeping of a versioned forward (backward = 0) or backward of mb on
** v: in-flight counts, the updates that become due, the live-version
** check. */
static void versions_after(ref_x_t *x, ref_dev_t *dv, int v, int mb, int backward) {
  if (!x->versioned) return;
  ref_stage_t *sg = &x->stg[v];
  int m = x->job->microbatches, t = mb / m;
  if (!backward) {
    sg->inflight[t]++;
    count_live(x, dv, v);
    return;
  }
  sg->inflight[t]--;
  sg->bwd[t]++;
  while (sg->newest < x->I && sg->bwd[sg->newest] == m) apply_update(x, dv, v);
  count_live(x, dv, v);
}

static void do_forward(ref_x_t *x, ref_dev_t *dv, int v, int mb) {
  const ts_layout_t *L = x->lay;
  const ts_part_cost_t *pc = &x->cost->part[L->part[v]];
  const double *in = NULL;
  double *owned = NULL;
  int p = L->prev[v];
  if (p < 0) {
    in = x->X + (size_t)mb * x->n_el;
  } else if (L->dev[p] == dv->id) {
    in = owned = take(&dv->out[slot_cell(x, dv, SLOT_ACT, p, mb)]);
  } else {
    x_lock_(x);
    in = owned = take(&dv->inbox[slot_cell(x, dv, SLOT_ACT, v, mb)]);
    x_unlock_(x);
  }
  ts_ref_model_t *model = stage_model(x, dv, v, mb, "forward");
  if (!model) {
    free(owned);
    return;
  }
  double *y = malloc(x->n_el * sizeof *y);
  ts_ref_stash_t *st = NULL;
  if (in && y)
    st = ts_ref_forward(model, pc->first_layer, pc->n_layers, x->mbs, in, y,
                        x->job->recompute == TS_RECOMPUTE_NONE ||
                            ts__rt_keeps(ts__world_rt(x->w, dv->id), v),
                        &dv->mem);
  free(owned);
  if (!st) {
    free(y);
    ref_fatal(x, in ? EX_OSERR : EX_SOFTWARE,
              "reference executor: device %d: forward of stage %d micro-batch %d: %s", dv->id, v,
              mb, in ? "out of memory" : "its input is missing");
    return;
  }
  dv->stash[cell(x, v, mb)] = st;
  dv->out[slot_cell(x, dv, SLOT_ACT, v, mb)] = y;
  versions_after(x, dv, v, mb, 0);
}

static void do_recompute(ref_x_t *x, ref_dev_t *dv, int v, int mb) {
  ts_ref_stash_t *st = dv->stash[cell(x, v, mb)];
  ts_ref_model_t *model = stage_model(x, dv, v, mb, "recompute");
  if (!model) return;
  if (!st || ts_ref_recompute(model, st, &dv->mem))
    ref_fatal(x, st ? EX_OSERR : EX_SOFTWARE,
              "reference executor: device %d: recompute of stage %d micro-batch %d: %s", dv->id, v,
              mb, st ? "out of memory" : "no stash");
}

static void do_backward(ref_x_t *x, ref_dev_t *dv, int v, int mb) {
  const ts_layout_t *L = x->lay;
  ts_ref_model_t *model = stage_model(x, dv, v, mb, "backward");
  if (!model) return;
  ts_ref_stash_t *st = dv->stash[cell(x, v, mb)];
  dv->stash[cell(x, v, mb)] = NULL;
  double *dy = NULL;
  int n = L->next[v];
  if (n < 0) {
    /* The last stage: the loss's gradient from this stage's own output. */
    dy = take(&dv->out[slot_cell(x, dv, SLOT_ACT, v, mb)]);
    if (dy) ts_ref_loss(dy, x->T + (size_t)mb * x->n_el, x->n_el, x->N, dy);
  } else if (L->dev[n] == dv->id) {
    dy = take(&dv->out[slot_cell(x, dv, SLOT_GRAD, n, mb)]);
  } else {
    x_lock_(x);
    dy = take(&dv->inbox[slot_cell(x, dv, SLOT_GRAD, v, mb)]);
    x_unlock_(x);
  }
  double *dx = L->prev[v] >= 0 ? malloc(x->n_el * sizeof *dx) : NULL;
  int rc = EX_SOFTWARE;
  if (st && dy && (dx || L->prev[v] < 0)) rc = ts_ref_backward(model, st, dy, dx, &dv->mem);
  free(dy);
  if (rc) {
    ts_ref_stash_free(st, &dv->mem);
    free(dx);
    ref_fatal(x, st && dy ? EX_OSERR : EX_SOFTWARE,
              "reference executor: device %d: backward of stage %d micro-batch %d: %s", dv->id, v,
              mb, !st ? "no stash" : !dy ? "its output gradient is missing" : "out of memory");
    return;
  }
  if (dx) dv->out[slot_cell(x, dv, SLOT_GRAD, v, mb)] = dx;
  versions_after(x, dv, v, mb, 1);
}

static void x_compute(void *xd, int device, ts_kind_t kind, int v, int mb, double flops,
                      double seconds) {
  (void)flops, (void)seconds;
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (atomic_load(&x->fatal)) return;
  switch (kind) {
  case TS_FORWARD: do_forward(x, dv, v, mb); break;
  case TS_RECOMPUTE: do_recompute(x, dv, v, mb); break;
  case TS_BACKWARD:
  case TS_BACKWARD_INPUT: do_backward(x, dv, v, mb); break;
  default: break; /* TS_WEIGHT_GRAD: done by the input-gradient half */
  }
}

static void x_send(void *xd, int device, int peer, ts_kind_t kind, int to, int mb, double bytes) {
  ref_x_t *x = xd;
  ts_rt_t *rt = ts__world_rt(x->w, peer);
  if (kind == TS_SEND_COLL || kind == TS_SEND_DISPATCH || kind == TS_SEND_COMBINE) {
    /* A collective step carries no tensor here (see ts_ref.h). */
    double t = x_now(x);
    x_lock_(x);
    ts__rt_deliver(rt, device, kind, to, mb, bytes, t, t);
    x_unlock_(x);
    return;
  }
  const ts_layout_t *L = x->lay;
  int slot = kind == TS_SEND_ACT ? SLOT_ACT : SLOT_GRAD;
  int from = kind == TS_SEND_ACT ? L->prev[to] : L->next[to];
  ref_dev_t *dv = &x->dev[device], *pv = &x->dev[peer];
  size_t nb = x->n_el * sizeof(double);
  double t0 = x_now(x);
  double *buf = take(&dv->out[slot_cell(x, dv, slot, from, mb)]);
  double *msg = buf ? malloc(nb) : NULL;
  if (msg) memcpy(msg, buf, nb);
  free(buf);
  double t1 = x_now(x);
  if (buf && !msg)
    ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory sending to device %d",
              device, peer);
  x_lock_(x);
  double **slotp = &pv->inbox[slot_cell(x, pv, slot, to, mb)];
  free(*slotp); /* only after an error: a message is received once */
  *slotp = msg;
  ts__rt_deliver(rt, device, kind, to, mb, (double)nb, t0, t1);
  x_unlock_(x);
}

static void x_lock(void *xd, int device) {
  (void)device;
  x_lock_(xd);
}

static void x_unlock(void *xd, int device) {
  (void)device;
  x_unlock_(xd);
}

/* Under mu: declares a deadlock when no device runs and one is unfinished. */
static void check_deadlock(ref_x_t *x) {
  if (x->running > 0 || x->deadlock) return;
  for (int d = 0; d < x->n; d++) {
    if (!x->dev[d].finished) {
      x->deadlock = 1;
      for (int e = 0; e < x->n; e++) pthread_cond_broadcast(&x->dev[e].cond);
      return;
    }
  }
}

/* Under mu: a device that can never be woken leaves its program here; the
** runtime still says what it waited for. */
static _Noreturn void leave_deadlocked(ref_x_t *x) {
  x_unlock_(x);
  pthread_exit(NULL);
}

static void x_wait(void *xd, int device) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (x->aborted) return;
  if (x->deadlock) leave_deadlocked(x);
  dv->waiting = 1;
  x->running--;
  check_deadlock(x);
  while (dv->waiting && !x->deadlock && !x->aborted) pthread_cond_wait(&dv->cond, &x->mu);
  if (dv->waiting) { /* not woken by a message */
    dv->waiting = 0;
    x->running++;
  }
  if (x->deadlock) leave_deadlocked(x);
}

/* Under mu (ts__rt_deliver's caller holds it). */
static void x_notify(void *xd, int device) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (dv->waiting) {
    dv->waiting = 0;
    x->running++;
    pthread_cond_signal(&dv->cond);
  }
}

static void x_abort_all(void *xd) {
  ref_x_t *x = xd;
  int held = tls_holds;
  if (!held) x_lock_(x);
  x->aborted = 1;
  for (int d = 0; d < x->n; d++) x_notify(x, d);
  if (!held) x_unlock_(x);
}

/* Host memory: a fetch copies the stage's block parameters from the host
** model into the device's clone, a write-back adds the device's block
** gradients into the host model's and zeroes them on the device, an
** eviction fills the device's copy with NaN (a use after eviction would
** show in every gradient).  Copies are synchronous, on the calling device's
** thread. */
static void x_host_copy(void *xd, int device, int h2d, int v, double bytes) {
  (void)bytes;
  ref_x_t *x = xd;
  ts_ref_model_t *dm = x->dev[device].model;
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  double t0 = x_now(x);
  for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
    size_t n;
    if (h2d) {
      double *dst = ts_ref_block_params(dm, l, &n);
      memcpy(dst, ts_ref_block_params(x->host, l, &n), n * sizeof *dst);
    } else {
      /* Both models own their gradient vectors, which are not const. */
      double *hg = (double *)ts_ref_block_grad(x->host, l, &n);
      double *dg = (double *)ts_ref_block_grad(dm, l, &n);
      for (size_t i = 0; i < n; i++) {
        hg[i] += dg[i];
        dg[i] = 0;
      }
    }
  }
  ts__rt_host_done(ts__world_rt(x->w, device), h2d, v, t0, x_now(x));
}

static void poison_blocks(ts_ref_model_t *m, int first, int count) {
  for (int l = first; l < first + count; l++) {
    size_t n;
    double *p = ts_ref_block_params(m, l, &n);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
  }
}

static void x_host_evict(void *xd, int device, int v) {
  ref_x_t *x = xd;
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  poison_blocks(x->dev[device].model, pc->first_layer, pc->n_layers);
}

static const ts_exec_ops_t ref_ops = {.now = x_now,
                                      .compute = x_compute,
                                      .send = x_send,
                                      .lock = x_lock,
                                      .unlock = x_unlock,
                                      .wait = x_wait,
                                      .notify = x_notify,
                                      .abort_all = x_abort_all,
                                      .host_copy = x_host_copy,
                                      .host_evict = x_host_evict};

static void *device_main(void *arg) {
  ref_dev_t *dv = arg;
  ref_x_t *x = dv->x;
  ts__rt_main(ts__world_rt(x->w, dv->id));
  x_lock_(x);
  dv->finished = 1;
  x->running--;
  check_deadlock(x);
  x_unlock_(x);
  return NULL;
}

/* ---- the run ------------------------------------------------------------- */

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void alloc_setup(void) {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

void ts_ref_allocator_setup(void) { pthread_once(&alloc_once, alloc_setup); }

/* Touches bytes of heap in 1 MiB pieces and frees them: with trimming off
** they stay mapped for the run's tensors. */
static void prewarm(size_t bytes) {
  size_t piece = 1 << 20, n = bytes / piece + 1;
  char **p = calloc(n, sizeof *p);
  if (!p) return;
  for (size_t i = 0; i < n; i++)
    if ((p[i] = malloc(piece))) memset(p[i], 0, piece);
  for (size_t i = n; i-- > 0;) free(p[i]);
  free(p);
}

/* An upper bound of the heap a run uses at once: every device holding all
** its stashes, inputs and messages, plus per-op workspace; at most 1 GiB. */
static size_t warm_bytes(const ref_x_t *x) {
  double in = (double)ts_ref_stash_input_bytes(&x->cfg, x->mbs), total = 0;
  for (int v = 0; v < x->lay->n_vstages; v++) {
    int nl = x->cost->part[x->lay->part[v]].n_layers;
    double st = (double)ts_ref_stash_bytes(&x->cfg, nl, x->mbs);
    total += x->M * (st + 3 * in) + 2 * st + 16 * in;
  }
  double cap = 1024.0 * 1024 * 1024;
  return (size_t)(total < cap ? total : cap);
}

int ts_ref_cores(int *cpus, int cap) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
  }
  int k = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &set)) continue;
    if (cpus && k < cap) cpus[k] = c;
    k++;
  }
  return k > 0 ? k : 1;
}

static void free_x(ref_x_t *x) {
  for (int d = 0; d < x->n; d++) {
    ref_dev_t *dv = &x->dev[d];
    size_t cells = (size_t)dv->n_local * (size_t)x->M;
    if (dv->stash)
      for (size_t i = 0; i < cells; i++) ts_ref_stash_free(dv->stash[i], &dv->mem);
    for (size_t i = 0; dv->out && i < 2 * cells; i++) free(dv->out[i]);
    for (size_t i = 0; dv->inbox && i < 2 * cells; i++) free(dv->inbox[i]);
    free(dv->stash);
    free(dv->out);
    free(dv->inbox);
    ts_ref_model_free(dv->model);
    pthread_cond_destroy(&dv->cond);
  }
  ts_ref_model_free(x->host);
  for (int v = 0; x->stg && v < x->lay->n_vstages; v++) {
    for (int k = 0; x->stg[v].slot && k < x->V; k++) ts_ref_model_free(x->stg[v].slot[k]);
    free(x->stg[v].slot);
    free(x->stg[v].bwd);
    free(x->stg[v].inflight);
  }
  free(x->stg);
  pthread_mutex_destroy(&x->mu);
  free(x->dev);
  free(x->loc);
  free((void *)x->X);
  free((void *)x->T);
}

/* Sums the devices' block gradients into a clone of base (zeroed first);
** a device adds only the blocks it holds. */
static ts_ref_model_t *gather(ref_x_t *x, const ts_ref_model_t *base) {
  ts_ref_model_t *g = ts_ref_model_clone(base);
  if (!g) return NULL;
  ts_ref_model_zero_grad(g);
  int L = x->cfg.layers;
  unsigned char *holds = calloc((size_t)x->n * (size_t)L, 1);
  if (!holds) {
    ts_ref_model_free(g);
    return NULL;
  }
  for (int v = 0; v < x->lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
    for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++)
      holds[(size_t)x->lay->dev[v] * (size_t)L + (size_t)l] = 1;
  }
  for (int l = 0; l < L; l++) {
    size_t n;
    /* The model owns its gradient vector and it is not const: writable. */
    double *dst = (double *)ts_ref_block_grad(g, l, &n);
    int first = 1;
    for (int d = 0; d < x->n; d++) {
      if (!holds[(size_t)d * (size_t)L + (size_t)l]) continue;
      const double *src = ts_ref_block_grad(x->dev[d].model, l, &n);
      if (first)
        memcpy(dst, src, n * sizeof *dst);
      else
        for (size_t i = 0; i < n; i++) dst[i] += src[i];
      first = 0;
    }
  }
  free(holds);
  /* A versioned run's final weights: W(iterations) of the stage holding
  ** each block. */
  for (int v = 0; x->stg && v < x->lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
    ts_ref_model_t *w = x->stg[v].slot[vslot(x, x->stg[v].newest)];
    for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
      size_t n;
      const double *src = ts_ref_block_params(w, l, &n); /* n set before use */
      memcpy(ts_ref_block_params(g, l, NULL), src, n * sizeof(double));
    }
  }
  return g;
}

int ts_ref_run(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
               const ts_cost_t *cost, ts_run_t **out, ts_ref_model_t **grads, ts_err_t *err) {
  const ts_layout_t *lay = plan->layout;
  *out = NULL;
  if (grads) *grads = NULL;
  ref_x_t x = {0};
  int rc = ts_ref_config_for_job(job, &x.cfg, err);
  if (rc) return rc;
  for (int v = 0; v < lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &cost->part[lay->part[v]];
    if (pc->n_layers < 1 || pc->first_layer < 0 || pc->first_layer + pc->n_layers > x.cfg.layers)
      return ts_err_set(err, EX_DATAERR,
                        "%s: virtual stage %d: layers [%d, %d) do not fit the model's %d layers",
                        job->path, v, pc->first_layer, pc->first_layer + pc->n_layers,
                        x.cfg.layers);
  }
  x.job = job;
  x.lay = lay;
  x.cost = cost;
  x.n = lay->n_devices;
  x.M = job->microbatches * job->iterations;
  x.mbs = job->micro_batch_size;
  x.n_el = (size_t)x.mbs * (size_t)x.cfg.seq * (size_t)x.cfg.hidden;
  x.N = (double)x.M * x.mbs;
  atomic_init(&x.fatal, 0);
  pthread_mutex_init(&x.mu, NULL);
  x.dev = calloc((size_t)x.n, sizeof *x.dev);
  x.loc = calloc((size_t)lay->n_vstages, sizeof *x.loc);
  ts_ref_model_t *base = ts_ref_model_new(&x.cfg);
  double *X = NULL, *T = NULL;
  rc = (!x.dev || !x.loc || !base) ? EX_OSERR : make_data(&x.cfg, x.M, x.mbs, &X, &T);
  x.X = X;
  x.T = T;
  int *cpus = malloc(CPU_SETSIZE * sizeof *cpus);
  int ncpu = cpus ? ts_ref_cores(cpus, CPU_SETSIZE) : 0;
  bool pin = cpus && x.n <= ncpu;
  for (int d = 0; x.dev && d < x.n; d++) {
    ref_dev_t *dv = &x.dev[d];
    dv->x = &x;
    dv->id = d;
    dv->cpu = pin ? cpus[d] : -1;
    pthread_cond_init(&dv->cond, NULL);
  }
  free(cpus);
  for (int v = 0; !rc && v < lay->n_vstages; v++) x.loc[v] = x.dev[lay->dev[v]].n_local++;
  for (int d = 0; !rc && d < x.n; d++) {
    ref_dev_t *dv = &x.dev[d];
    size_t cells = (size_t)(dv->n_local ? dv->n_local : 1) * (size_t)x.M;
    dv->model = ts_ref_model_clone(base);
    dv->stash = calloc(cells, sizeof *dv->stash);
    dv->out = calloc(2 * cells, sizeof *dv->out);
    dv->inbox = calloc(2 * cells, sizeof *dv->inbox);
    if (!dv->model || !dv->stash || !dv->out || !dv->inbox) rc = EX_OSERR;
    if (!rc && sched->host_weights) poison_blocks(dv->model, 0, x.cfg.layers);
  }
  if (!rc && sched->host_weights) {
    if (!(x.host = ts_ref_model_clone(base)))
      rc = EX_OSERR;
    else
      ts_ref_model_zero_grad(x.host);
  }
  x.V = sched->weight_versions > 1 ? sched->weight_versions : 1;
  x.d = x.V - 1;
  x.I = job->iterations;
  x.versioned = x.V > 1 || x.I > 1;
  if (!rc && x.versioned && !(x.stg = calloc((size_t)lay->n_vstages, sizeof *x.stg))) rc = EX_OSERR;
  for (int v = 0; !rc && x.stg && v < lay->n_vstages; v++) {
    ref_stage_t *sg = &x.stg[v];
    sg->slot = calloc((size_t)x.V, sizeof *sg->slot);
    sg->bwd = calloc((size_t)x.I, sizeof *sg->bwd);
    sg->inflight = calloc((size_t)x.I, sizeof *sg->inflight);
    sg->peak_live = 1;
    if (!sg->slot || !sg->bwd || !sg->inflight) rc = EX_OSERR;
    for (int k = 0; !rc && k < x.V; k++)
      if (!(sg->slot[k] = ts_ref_model_clone(base))) rc = EX_OSERR;
  }
  if (rc) {
    if (x.dev) free_x(&x);
    ts_ref_model_free(base);
    return ts_err_set(err, EX_OSERR, "reference executor: out of memory setting up '%s'",
                      job->path);
  }

  ts_ref_allocator_setup();
  prewarm(warm_bytes(&x));
  x.w = ts__world_new(job, sched, plan, cost, &ref_ops, &x);
  x.running = x.n;
  clock_gettime(CLOCK_MONOTONIC, &x.t0);
  for (int d = 0; d < x.n; d++) {
    ref_dev_t *dv = &x.dev[d];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (dv->cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(dv->cpu, &set);
      pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    }
    int e = pthread_create(&dv->thread, &attr, device_main, dv);
    if (e && dv->cpu >= 0) { /* pinning refused: run unpinned */
      dv->cpu = -1;
      pthread_attr_destroy(&attr);
      pthread_attr_init(&attr);
      e = pthread_create(&dv->thread, &attr, device_main, dv);
    }
    pthread_attr_destroy(&attr);
    if (e) {
      /* Devices d.. never run: count them as finished, so that the ones
      ** that wait for them end through the deadlock path. */
      x_lock_(&x);
      x.running -= x.n - d;
      for (int k = d; k < x.n; k++) x.dev[k].finished = 1;
      check_deadlock(&x);
      x_unlock_(&x);
      rc = ts_err_set(err, EX_OSERR, "reference executor: cannot start thread %d: %s", d,
                      strerror(e));
      break;
    }
    dv->started = 1;
  }
  for (int d = 0; d < x.n; d++)
    if (x.dev[d].started) pthread_join(x.dev[d].thread, NULL);

  ts_run_t *run = NULL;
  if (!rc) {
    run = ts_run_new(x.n);
    rc = ts__world_finish(x.w, run, err);
  }
  if (!rc && x.fatal_code) rc = ts_err_set(err, x.fatal_code, "%s", x.fatal_msg);
  if (!rc) {
    snprintf(run->executor, sizeof run->executor, "reference");
    run->measured_peak_act_bytes = calloc((size_t)(x.n ? x.n : 1), sizeof(double));
    run->measured_weight_versions = calloc((size_t)(x.n ? x.n : 1), sizeof(int));
    for (int d = 0; run->measured_weight_versions && d < x.n; d++)
      run->measured_weight_versions[d] = 1;
    for (int v = 0; run->measured_weight_versions && x.stg && v < lay->n_vstages; v++) {
      int *pk = &run->measured_weight_versions[lay->dev[v]];
      if (x.stg[v].peak_live > *pk) *pk = x.stg[v].peak_live;
    }
    for (int d = 0; d < x.n; d++) {
      ts_device_info_t *di = &run->devices[d];
      if (x.dev[d].cpu >= 0)
        snprintf(di->name, sizeof di->name, "cpu%d", x.dev[d].cpu);
      else
        snprintf(di->name, sizeof di->name, "thread%d", d);
      run->measured_peak_act_bytes[d] = (double)x.dev[d].mem.peak;
    }
    if (grads && !(*grads = x.host ? ts_ref_model_clone(x.host) : gather(&x, base)))
      rc = ts_err_set(err, EX_OSERR, "reference executor: out of memory gathering gradients");
  }
  if (rc) {
    ts_run_free(run);
    run = NULL;
  }
  *out = run;
  ts__world_free(x.w);
  free_x(&x);
  ts_ref_model_free(base);
  return rc;
}

/* One forward and backward of all `layers` blocks of m over `samples`
** samples of X (the output goes to y, which may be X), with the loss against
** T (n doubles) divided by norm: m's gradients accumulate.  Returns 0, or
** non-zero when memory ran out. */
static int batch_grad(ts_ref_model_t *m, int layers, int samples, const double *X, double *y,
                      const double *T, size_t n, double norm) {
  ts_ref_stash_t *st = ts_ref_forward(m, 0, layers, samples, X, y, 1, NULL);
  if (!st) return 1;
  ts_ref_loss(y, T, n, norm, y);
  int rc = ts_ref_backward(m, st, y, NULL, NULL);
  if (rc) ts_ref_stash_free(st, NULL);
  return rc;
}

ts_ref_model_t *ts_ref_oracle(const ts_job_t *job) {
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  if (ts_ref_config_for_job(job, &cfg, &err)) return NULL;
  int M = job->microbatches * job->iterations, mbs = job->micro_batch_size;
  ts_ref_model_t *m = ts_ref_model_new(&cfg);
  double *X = NULL, *T = NULL;
  if (!m || make_data(&cfg, M, mbs, &X, &T)) {
    ts_ref_model_free(m);
    return NULL;
  }
  size_t n = (size_t)M * (size_t)mbs * (size_t)cfg.seq * (size_t)cfg.hidden;
  /* The whole batch as one micro-batch: attention never mixes samples. */
  int rc = batch_grad(m, cfg.layers, M * mbs, X, X, T, n, (double)M * mbs);
  free(X);
  free(T);
  if (rc) {
    ts_ref_model_free(m);
    return NULL;
  }
  return m;
}

ts_ref_model_t *ts_ref_oracle_sgd(const ts_job_t *job, int staleness) {
  ts_ref_config_t cfg;
  ts_err_t err = {0};
  if (staleness < 0 || ts_ref_config_for_job(job, &cfg, &err)) return NULL;
  int m = job->microbatches, I = job->iterations, mbs = job->micro_batch_size;
  ts_ref_model_t **W = calloc((size_t)I + 1, sizeof *W); /* W[k] = W(k) */
  ts_ref_model_t *sum = ts_ref_model_new(&cfg), *out = NULL;
  double *X = NULL, *T = NULL, *y = NULL;
  size_t n_it = (size_t)m * (size_t)mbs * (size_t)cfg.seq * (size_t)cfg.hidden;
  if (!W || !sum || make_data(&cfg, m * I, mbs, &X, &T) || !(y = malloc(n_it * sizeof *y)))
    goto done;
  if (!(W[0] = ts_ref_model_clone(sum))) goto done;
  for (int t = 0; t < I; t++) {
    /* Iteration t's m micro-batches as one batch, with W(t - staleness). */
    ts_ref_model_t *use = ts_ref_model_clone(W[t - staleness < 0 ? 0 : t - staleness]);
    if (!use) goto done;
    ts_ref_model_zero_grad(use);
    int rc = batch_grad(use, cfg.layers, m * mbs, X + (size_t)t * n_it, y, T + (size_t)t * n_it,
                        n_it, (double)m * I * mbs);
    if (!rc) rc = !(W[t + 1] = ts_ref_model_clone(W[t]));
    for (int l = 0; !rc && l < cfg.layers; l++) {
      size_t n;
      const double *g = ts_ref_block_grad(use, l, &n);
      double *s = (double *)ts_ref_block_grad(sum, l, &n); /* owned, writable */
      double *w = ts_ref_block_params(W[t + 1], l, &n);
      for (size_t i = 0; i < n; i++) {
        s[i] += g[i];
        w[i] -= TS_REF_LR * g[i];
      }
    }
    ts_ref_model_free(use);
    if (rc) goto done;
  }
  if ((out = ts_ref_model_clone(sum)))
    for (int l = 0; l < cfg.layers; l++) {
      size_t n;
      const double *src = ts_ref_block_params(W[I], l, &n); /* n set before use */
      memcpy(ts_ref_block_params(out, l, NULL), src, n * sizeof(double));
    }
done:
  for (int k = 0; W && k <= I; k++) ts_ref_model_free(W[k]);
  free(W);
  ts_ref_model_free(sum);
  free(X);
  free(T);
  free(y);
  return out;
}

/* ---- the synthetic twin --------------------------------------------------- */

static cJSON *per_stage(const double *a, int n) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(a[i]));
  return arr;
}

int ts_ref_sim_job(const ts_job_t *job, const ts_cost_t *cost, const double *fwd_s,
                   const double *bwd_s, const double *rec_s, const char *platform,
                   ts_job_t **out, ts_err_t *err) {
  *out = NULL;
  ts_ref_config_t cfg;
  int rc = ts_ref_config_for_job(job, &cfg, err);
  if (rc) return rc;
  int p = job->stages;
  double *act = calloc((size_t)p, sizeof *act), *wts = calloc((size_t)p, sizeof *wts);
  int *per_part = calloc((size_t)p, sizeof *per_part);
  if (!act || !wts || !per_part) {
    rc = ts_err_set(err, EX_OSERR, "out of memory");
    goto out_free;
  }
  for (int s = 0; s < p; s++) per_part[s] = -1;
  for (int k = 0; k < cost->n_parts; k++) {
    int s = k % p, nl = cost->part[k].n_layers;
    if (per_part[s] >= 0 && per_part[s] != nl) {
      rc = ts_err_set(err, EX_DATAERR,
                      "%s: stage %d: its chunks hold %d and %d layers; the synthetic twin "
                      "needs equal chunks (choose layers divisible by stages x chunks)",
                      job->path, s, per_part[s], nl);
      goto out_free;
    }
    per_part[s] = nl;
    act[s] += (double)ts_ref_stash_bytes(&cfg, nl, job->micro_batch_size);
    wts[s] += 8.0 * (double)ts_ref_block_param_count(&cfg) * nl;
  }
  for (int s = 0; s < p; s++) {
    double r = rec_s ? rec_s[s] : fwd_s[s];
    if (!(fwd_s[s] >= 0) || !(bwd_s[s] >= 0) || !(r >= 0)) {
      rc = ts_err_set(err, EX_DATAERR, "%s: stage %d: negative or undefined stage seconds",
                      job->path, s);
      goto out_free;
    }
  }

  cJSON *root = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(root, "model");
  char name[sizeof job->model.name + 8];
  snprintf(name, sizeof name, "%s-twin", job->model.name);
  cJSON_AddStringToObject(m, "kind", "synthetic");
  cJSON_AddStringToObject(m, "name", name);
  cJSON_AddItemToObject(m, "forward_s", per_stage(fwd_s, p));
  cJSON_AddItemToObject(m, "backward_s", per_stage(bwd_s, p));
  cJSON_AddItemToObject(m, "recompute_s", per_stage(rec_s ? rec_s : fwd_s, p));
  cJSON_AddItemToObject(m, "activation_bytes", per_stage(act, p));
  cJSON_AddNumberToObject(m, "activation_message_bytes",
                          (double)ts_ref_stash_input_bytes(&cfg, job->micro_batch_size));
  cJSON_AddItemToObject(m, "weights_bytes", per_stage(wts, p));
  char plat[TS_PATH_MAX];
  if (strcmp(platform, "ideal") == 0 || !realpath(platform, plat))
    snprintf(plat, sizeof plat, "%s", platform);
  cJSON_AddStringToObject(root, "platform", plat);
  cJSON_AddStringToObject(root, "schedule", job->schedule);
  cJSON_AddNumberToObject(root, "stages", job->stages);
  cJSON_AddNumberToObject(root, "microbatches", job->microbatches);
  cJSON_AddNumberToObject(root, "micro_batch_size", job->micro_batch_size);
  cJSON_AddNumberToObject(root, "seq_len", job->seq_len);
  cJSON_AddNumberToObject(root, "chunks", job->chunks);
  cJSON_AddNumberToObject(root, "iterations", job->iterations);
  cJSON_AddStringToObject(root, "recompute",
                          job->recompute == TS_RECOMPUTE_FULL ? "full" : "none");
  char *text = cJSON_Print(root);
  cJSON_Delete(root);
  char path[64] = "/tmp/trainsim-twin-XXXXXX.json";
  int fd = text ? mkstemps(path, 5) : -1;
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  bool ok = f && fputs(text, f) >= 0;
  if (f && fclose(f)) ok = false;
  if (!f && fd >= 0) close(fd);
  free(text);
  if (!ok) {
    if (fd >= 0) unlink(path);
    rc = ts_err_set(err, EX_CANTCREAT, "cannot write the twin job to a temporary file: %s",
                    strerror(errno));
    goto out_free;
  }
  rc = ts_job_load(path, NULL, 0, out, err);
  unlink(path);
  if (!rc) snprintf((*out)->path, sizeof (*out)->path, "%.*s (reference twin)",
                    (int)sizeof (*out)->path - 20, job->path);
out_free:
  free(act);
  free(wts);
  free(per_part);
  return rc;
}
