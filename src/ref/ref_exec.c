/*
** ref_exec.c: the reference executor's operations (ts_exec_ops_t): the
** compute ops (real forward, recompute and backward on the device's model),
** messages copied between device threads, the global mutex and per-slot
** conditions, deadlock detection, host-memory copies, and the device
** threads' body.  The design notes are in ref_internal.h.
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"

/* 1 while this thread holds the global mutex (abort_all may be called with
** or without it). */
static _Thread_local int tls_holds;

void ts__ref_lock(ref_x_t *x) {
  pthread_mutex_lock(&x->mu);
  tls_holds = 1;
}

void ts__ref_unlock(ref_x_t *x) {
  tls_holds = 0;
  pthread_mutex_unlock(&x->mu);
}

/* Records the first executor error; later ops are skipped. */
void ts__ref_fatal(ref_x_t *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ts__ref_fatal(ref_x_t *x, int code, const char *fmt, ...) {
  int held = tls_holds;
  if (!held) ts__ref_lock(x);
  if (!x->fatal_code) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->fatal_msg, sizeof x->fatal_msg, fmt, ap);
    va_end(ap);
    x->fatal_code = code;
  }
  atomic_store(&x->fatal, 1);
  if (!held) ts__ref_unlock(x);
}

/* ---- executor operations ------------------------------------------------ */

double ts__ref_now(void *xd) {
  ref_x_t *x = xd;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - x->t0.tv_sec) + (double)(t.tv_nsec - x->t0.tv_nsec) * 1e-9;
}

const double *ts__ref_fwd_input(ref_x_t *x, ref_dev_t *dv, int v, int mb, double **owned) {
  const ts_layout_t *L = x->lay;
  int p = L->prev[v];
  *owned = NULL;
  if (p < 0) return x->X + ((size_t)dv->lane * (size_t)x->M + (size_t)mb) * x->n_el;
  if (L->dev[p] == dv->id) {
    *owned = ts__ref_take(&dv->out[ts__ref_slot_cell(x, dv, SLOT_ACT, p, mb)]);
  } else {
    ts__ref_lock(x);
    *owned = ts__ref_take(&dv->inbox[ts__ref_slot_cell(x, dv, SLOT_ACT, v, mb)]);
    ts__ref_unlock(x);
  }
  return *owned;
}

double *ts__ref_bwd_dy(ref_x_t *x, ref_dev_t *dv, int v, int mb) {
  const ts_layout_t *L = x->lay;
  double *dy = NULL;
  int n = L->next[v];
  if (n < 0) {
    /* The last stage: the loss's gradient from this stage's own output. */
    dy = ts__ref_take(&dv->out[ts__ref_slot_cell(x, dv, SLOT_ACT, v, mb)]);
    if (dy)
      ts_ref_loss(dy, x->T + ((size_t)dv->lane * (size_t)x->M + (size_t)mb) * x->n_el, x->n_el,
                  x->N, dy);
  } else if (L->dev[n] == dv->id) {
    dy = ts__ref_take(&dv->out[ts__ref_slot_cell(x, dv, SLOT_GRAD, n, mb)]);
  } else {
    ts__ref_lock(x);
    dy = ts__ref_take(&dv->inbox[ts__ref_slot_cell(x, dv, SLOT_GRAD, v, mb)]);
    ts__ref_unlock(x);
  }
  return dy;
}

static void do_forward(ref_x_t *x, ref_dev_t *dv, int v, int mb) {
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  double *owned;
  const double *in = ts__ref_fwd_input(x, dv, v, mb, &owned);
  ts_ref_model_t *model = ts__ref_stage_model(x, dv, v, mb, "forward");
  if (!model) {
    free(owned);
    return;
  }
  double *y = malloc(x->n_el * sizeof *y);
  ts_ref_stash_t *st = NULL;
  /* The output message is counted while the forward fills it. */
  size_t nb = x->n_el * sizeof *y;
  ts_ref_mem_hold(&dv->mem, nb);
  if (in && y)
    st = ts_ref_forward(model, pc->first_layer, pc->n_layers, x->mbs, in, y,
                        x->job->recompute == TS_RECOMPUTE_SELECTIVE ? TS_REF_KEEP_SELECTIVE
                        : x->job->recompute == TS_RECOMPUTE_NONE ||
                                ts__rt_keeps(ts__world_rt(x->w, dv->id), v)
                            ? TS_REF_KEEP_ALL
                            : TS_REF_KEEP_INPUT,
                        &dv->mem);
  ts_ref_mem_release(&dv->mem, nb);
  free(owned);
  if (!st) {
    free(y);
    ts__ref_fatal(x, in ? EX_OSERR : EX_SOFTWARE,
              "reference executor: device %d: forward of stage %d micro-batch %d: %s", dv->id, v,
              mb, in ? "out of memory" : "its input is missing");
    return;
  }
  dv->stash[ts__ref_cell(x, v, mb)] = st;
  dv->out[ts__ref_slot_cell(x, dv, SLOT_ACT, v, mb)] = y;
  ts__ref_versions_after(x, dv, v, mb, 0);
}

static void do_recompute(ref_x_t *x, ref_dev_t *dv, int v, int mb) {
  ts_ref_stash_t *st = dv->stash[ts__ref_cell(x, v, mb)];
  ts_ref_model_t *model = ts__ref_stage_model(x, dv, v, mb, "recompute");
  if (!model) return;
  if (!st || ts_ref_recompute(model, st, &dv->mem))
    ts__ref_fatal(x, st ? EX_OSERR : EX_SOFTWARE,
              "reference executor: device %d: recompute of stage %d micro-batch %d: %s", dv->id, v,
              mb, st ? "out of memory" : "no stash");
}

/* A backward, or (split, ZB-H1) the input-gradient half of one.  The half
** does all the math, as a whole backward: the executor has one backward
** kernel.  But a real split backward keeps what its weight-gradient half
** needs (each GEMM's stashed input and output gradient) until that half
** runs, so the half holds, counted in the accounting allocator, a buffer of
** the bytes the backward released, and the weight-gradient op frees it:
** the device's activation memory follows the split as in the simulator's
** model (README "Memory"), its times do not. */
static void do_backward(ref_x_t *x, ref_dev_t *dv, int v, int mb, bool split) {
  const ts_layout_t *L = x->lay;
  ts_ref_model_t *model = ts__ref_stage_model(x, dv, v, mb, "backward");
  if (!model) return;
  ts_ref_stash_t *st = dv->stash[ts__ref_cell(x, v, mb)];
  dv->stash[ts__ref_cell(x, v, mb)] = NULL;
  double *dy = ts__ref_bwd_dy(x, dv, v, mb);
  /* The first stage computes its input gradient too (a GPT's embedding
  ** backward needs it), and drops it: the model input is fixed. */
  double *dx = malloc(x->n_el * sizeof *dx);
  int rc = EX_SOFTWARE;
  size_t held = dv->mem.cur, nb = x->n_el * sizeof *dx;
  /* The output- and input-gradient messages are counted while the
  ** backward consumes and fills them (ts_ref_backward_transient_bytes). */
  ts_ref_mem_hold(&dv->mem, 2 * nb);
  if (st && dy && dx) rc = ts_ref_backward(model, st, dy, dx, &dv->mem);
  ts_ref_mem_release(&dv->mem, 2 * nb);
  free(dy);
  if (L->prev[v] < 0) {
    free(dx);
    dx = NULL;
  }
  if (!rc && split && held > dv->mem.cur) {
    struct ref_wg_hold *h = &dv->wg_hold[ts__ref_cell(x, v, mb)];
    h->bytes = held - dv->mem.cur;
    if (!(h->p = ts_ref_mem_alloc(&dv->mem, h->bytes))) {
      h->bytes = 0;
      free(dx);
      ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: backward of stage %d micro-batch %d: %s",
                    dv->id, v, mb, "out of memory");
      return;
    }
  }
  if (rc) {
    ts_ref_stash_free(st, &dv->mem);
    free(dx);
    ts__ref_fatal(x, st && dy ? EX_OSERR : EX_SOFTWARE,
              "reference executor: device %d: backward of stage %d micro-batch %d: %s", dv->id, v,
              mb, !st ? "no stash" : !dy ? "its output gradient is missing" : "out of memory");
    return;
  }
  if (dx) dv->out[ts__ref_slot_cell(x, dv, SLOT_GRAD, v, mb)] = dx;
  ts__ref_versions_after(x, dv, v, mb, 1);
}

static void x_compute(void *xd, int device, ts_kind_t kind, int v, int mb, double flops,
                      double seconds) {
  (void)flops, (void)seconds;
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (atomic_load(&x->fatal)) return;
  if (dv->tp && kind != TS_WEIGHT_GRAD) { /* one TP piece (ref_tp.c) */
    ts__ref_tp_compute(x, dv, kind, v, mb);
    return;
  }
  switch (kind) {
  case TS_FORWARD: do_forward(x, dv, v, mb); break;
  case TS_RECOMPUTE: do_recompute(x, dv, v, mb); break;
  case TS_BACKWARD: do_backward(x, dv, v, mb, false); break;
  case TS_BACKWARD_INPUT: do_backward(x, dv, v, mb, true); break;
  case TS_WEIGHT_GRAD: { /* its math ran in the input-gradient half */
    struct ref_wg_hold *h = &dv->wg_hold[ts__ref_cell(x, v, mb)];
    ts_ref_mem_free(&dv->mem, h->p, h->bytes);
    *h = (struct ref_wg_hold){NULL, 0};
    break;
  }
  default: break;
  }
}

static void x_send(void *xd, int device, int peer, ts_kind_t kind, int to, int mb, double bytes) {
  ref_x_t *x = xd;
  ts_rt_t *rt = ts__world_rt(x->w, peer);
  if (kind == TS_SEND_COLL || kind == TS_SEND_DISPATCH || kind == TS_SEND_COMBINE) {
    /* The step's payload travels apart (coll_pack and a2a_pack queued it). */
    double t = ts__ref_now(x);
    ts__ref_lock(x);
    ts__rt_deliver(rt, device, kind, to, mb, bytes, t, t);
    ts__ref_unlock(x);
    return;
  }
  const ts_layout_t *L = x->lay;
  int slot = kind == TS_SEND_ACT ? SLOT_ACT : SLOT_GRAD;
  int from = kind == TS_SEND_ACT ? L->prev[to] : L->next[to];
  ref_dev_t *dv = &x->dev[device], *pv = &x->dev[peer];
  size_t nb = x->n_el * sizeof(double);
  double t0 = ts__ref_now(x);
  double *buf = ts__ref_take(&dv->out[ts__ref_slot_cell(x, dv, slot, from, mb)]);
  double *msg = buf ? malloc(nb) : NULL;
  if (msg) memcpy(msg, buf, nb);
  free(buf);
  double t1 = ts__ref_now(x);
  if (buf && !msg)
    ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory sending to device %d",
              device, peer);
  ts__ref_lock(x);
  double **slotp = &pv->inbox[ts__ref_slot_cell(x, pv, slot, to, mb)];
  free(*slotp); /* only after an error: a message is received once */
  *slotp = msg;
  ts__rt_deliver(rt, device, kind, to, mb, (double)nb, t0, t1);
  ts__ref_unlock(x);
}

static void x_lock(void *xd, int device) {
  (void)device;
  ts__ref_lock(xd);
}

static void x_unlock(void *xd, int device) {
  (void)device;
  ts__ref_unlock(xd);
}

/* Under mu: declares a deadlock when no context runs and a device is
** unfinished or a stream has not ended; wakes every waiting context, which
** then leaves through leave_deadlocked. */
void ts__ref_check_deadlock(ref_x_t *x) {
  if (x->running > 0 || x->deadlock) return;
  for (int d = 0; d < x->n; d++) {
    const ref_dev_t *dv = &x->dev[d];
    if (!dv->finished || dv->comm_running > 0) {
      x->deadlock = 1;
      for (int e = 0; e < (1 + TS_STREAMS) * x->n; e++)
        pthread_cond_broadcast(&ts__ref_wake(x, e)->cond);
      return;
    }
  }
}

/* Under mu: a context that can never be woken leaves its program (or
** stream) here; the runtime still says what it waited for. */
static _Noreturn void leave_deadlocked(ref_x_t *x) {
  ts__ref_unlock(x);
  pthread_exit(NULL);
}

/* Under mu: slot is a device's program (d) or one of its streams
** (ts__stream_slot). */
static void x_wait(void *xd, int slot) {
  ref_x_t *x = xd;
  ref_wake_t *wk = ts__ref_wake(x, slot);
  if (x->aborted) return;
  if (x->deadlock) leave_deadlocked(x);
  wk->waiting = 1;
  x->running--;
  ts__ref_check_deadlock(x);
  while (wk->waiting && !x->deadlock && !x->aborted) pthread_cond_wait(&wk->cond, &x->mu);
  if (wk->waiting) { /* not woken by a notify */
    wk->waiting = 0;
    x->running++;
  }
  if (x->deadlock) leave_deadlocked(x);
}

/* Under mu (ts__rt_deliver's caller holds it). */
static void x_notify(void *xd, int slot) {
  ref_x_t *x = xd;
  ref_wake_t *wk = ts__ref_wake(x, slot);
  if (wk->waiting) {
    wk->waiting = 0;
    x->running++;
    pthread_cond_signal(&wk->cond);
  }
}

static void x_abort_all(void *xd) {
  ref_x_t *x = xd;
  int held = tls_holds;
  if (!held) ts__ref_lock(x);
  x->aborted = 1;
  for (int k = 0; k < (1 + TS_STREAMS) * x->n; k++) x_notify(x, k);
  if (!held) ts__ref_unlock(x);
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
  double t0 = ts__ref_now(x);
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
  ts__rt_host_done(ts__world_rt(x->w, device), h2d, v, t0, ts__ref_now(x));
}

void ts__ref_poison_blocks(ts_ref_model_t *m, int first, int count) {
  for (int l = first; l < first + count; l++) {
    size_t n;
    double *p = ts_ref_block_params(m, l, &n);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
  }
}

static void x_host_evict(void *xd, int device, int v) {
  ref_x_t *x = xd;
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  ts__ref_poison_blocks(x->dev[device].model, pc->first_layer, pc->n_layers);
}

const ts_exec_ops_t ts__ref_ops = {
    .now = ts__ref_now,
    .compute = x_compute,
    .tp_prepare = ts__ref_tp_prepare,
    .send = x_send,
    .lock = x_lock,
    .unlock = x_unlock,
    .wait = x_wait,
    .notify = x_notify,
    .abort_all = x_abort_all,
    .host_copy = x_host_copy,
    .host_evict = x_host_evict,
    .spawn_comm = ts__ref_spawn_comm,
    .coll_pack = ts__ref_coll_pack,
    .coll_apply = ts__ref_coll_apply,
    .moe_compute = ts__ref_moe_compute,
    .a2a_pack = ts__ref_a2a_pack,
    .a2a_apply = ts__ref_a2a_apply,
    .whole_ops = 1, /* real math: an op cannot be cut into pieces */
    .optimizer = ts__ref_optimizer,
    .coll_end = ts__ref_coll_end,
    .release = ts__ref_release,
};

void *ts__ref_device_main(void *arg) {
  ref_dev_t *dv = arg;
  ref_x_t *x = dv->x;
  ts__ref_dp_check(x, dv->id);
  ts__rt_main(ts__world_rt(x->w, dv->id));
  ts__ref_lock(x);
  dv->finished = 1;
  x->running--;
  ts__ref_check_deadlock(x);
  ts__ref_unlock(x);
  return NULL;
}
