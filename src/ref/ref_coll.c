/*
** ref_coll.c: the reference executor's side of collectives (ts_runtime.h
** "collectives"): one communication-stream thread per device that runs the
** runtime's ts__rt_comm_main, and the payloads of the collective steps,
** real slices of real arrays moved between the devices' model clones.
**
** A device's buffer (ts_ref.h) is the concatenation, in cost-row order, of
** the replicated arrays of the model parts it holds: for each part, each of
** its layers' block vector and, for a MoE layer, its gate (the experts'
** W1 and W2 are not replicated); TS_BUF_GRADS takes the gradients,
** TS_BUF_WEIGHTS the parameters, of the device's own model.  Slice k of n
** is elements [k N / n, (k + 1) N / n) of that concatenation (N elements).
** coll_pack copies the slice into a payload at the tail of the FIFO of
** (sender, receiver); coll_apply takes the head of the FIFO of (peer,
** device), checks that it is the step it expects (same collective kind,
** buffer, slice and length) and adds it into the own slice (reduce) or
** copies it there.  A mismatch is an executor error (EX_SOFTWARE) naming
** the devices; a group whose members hold different parts of equal sizes
** goes through and gives wrong gradients, as it would on GPUs.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"

/* One step's payload. */
typedef struct ref_cmsg {
  struct ref_cmsg *next;
  ts_coll_op_t op;
  ts_coll_buf_t buf;
  int chunk, n_chunks;
  size_t len;
  double v[]; /* [len] */
} ref_cmsg_t;

typedef struct ref_cq {
  ref_cmsg_t *head, *tail;
} ref_cq_t;

int ts__ref_coll_setup(ref_x_t *x) {
  x->cq = calloc((size_t)x->n * (size_t)x->n, sizeof *x->cq);
  return x->cq ? 0 : EX_OSERR;
}

void ts__ref_coll_free(ref_x_t *x) {
  for (size_t i = 0; x->cq && i < (size_t)x->n * (size_t)x->n; i++)
    for (ref_cmsg_t *m = x->cq[i].head, *nx; m; m = nx) {
      nx = m->next;
      free(m);
    }
  free(x->cq);
  x->cq = NULL;
}

/* ---- the communication streams ------------------------------------------- */

static void *comm_main(void *arg) {
  ref_dev_t *dv = arg;
  ref_x_t *x = dv->x;
  ts__rt_comm_main(ts__world_rt(x->w, dv->id));
  ts__ref_lock(x);
  dv->comm_ended = 1;
  x->running--;
  ts__ref_check_deadlock(x);
  ts__ref_unlock(x);
  return NULL;
}

/* Called by the device's program, without the mutex, once per run.  The
** stream counts as running from here on.  When its thread cannot start,
** the error is kept for ts_ref_run (the collective then never runs, and
** its members end through the deadlock path). */
void ts__ref_spawn_comm(void *xd, int device) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  ts__ref_lock(x);
  int e = pthread_create(&dv->comm_thread, NULL, comm_main, dv);
  if (e) {
    if (!x->comm_err) {
      x->comm_err = e;
      x->comm_err_dev = device;
    }
  } else {
    dv->comm_started = 1;
    x->running++;
  }
  ts__ref_unlock(x);
}

void ts__ref_coll_join(ref_x_t *x) {
  for (int d = 0; d < x->n; d++) {
    ts__ref_lock(x);
    int started = x->dev[d].comm_started;
    ts__ref_unlock(x);
    if (started) pthread_join(x->dev[d].comm_thread, NULL);
  }
}

/* ---- buffers ------------------------------------------------------------- */

enum { B_READ = 0, B_ADD, B_COPY };

typedef struct walk {
  size_t off, lo, hi; /* position in the concatenation; the slice */
  double *flat;       /* [hi - lo] the payload */
  int mode;
} walk_t;

/* Visits one array of n elements at the walk's position. */
static void seg(walk_t *k, double *a, size_t n) {
  size_t b = k->lo > k->off ? k->lo : k->off, e = k->hi < k->off + n ? k->hi : k->off + n;
  for (size_t i = b; i < e; i++) {
    double *f = &k->flat[i - k->lo], *s = &a[i - k->off];
    if (k->mode == B_READ)
      *f = *s;
    else if (k->mode == B_ADD)
      *s += *f;
    else
      *s = *f;
  }
  k->off += n;
}

/* 1 when device d holds cost row p (some virtual stage of d is part p). */
static int holds_part(const ref_x_t *x, int d, int p) {
  for (int v = 0; v < x->lay->n_vstages; v++)
    if (x->lay->dev[v] == d && x->lay->part[v] == p) return 1;
  return 0;
}

/* Walks device d's buffer buf (see the file header) over the slice [lo,
** hi) with the given mode; returns its length N.  lo = hi = 0 only sizes. */
static size_t walk_buf(ref_x_t *x, int d, ts_coll_buf_t buf, size_t lo, size_t hi, double *flat,
                       int mode) {
  walk_t k = {0, lo, hi, flat, mode};
  ts_ref_model_t *m = x->dev[d].model;
  size_t nwg = (size_t)x->cfg.hidden * (size_t)x->cfg.experts;
  for (int p = 0; buf != TS_BUF_NONE && p < x->cost->n_parts; p++) {
    if (!holds_part(x, d, p)) continue;
    const ts_part_cost_t *pc = &x->cost->part[p];
    for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
      size_t n;
      /* The model owns its gradient vectors, which are not const. */
      double *a = buf == TS_BUF_GRADS ? (double *)ts_ref_block_grad(m, l, &n)
                                      : ts_ref_block_params(m, l, &n);
      seg(&k, a, n);
      if (!ts_ref_is_moe_layer(&x->cfg, l)) continue;
      a = buf == TS_BUF_GRADS ? ts_ref_moe_grad(m, l, NULL) : ts_ref_moe_params(m, l, NULL);
      seg(&k, a, nwg); /* the gate: its first hidden x experts elements */
    }
  }
  return k.off;
}

/* ---- the steps ------------------------------------------------------------ */

void ts__ref_coll_pack(void *xd, int device, const ts_coll_step_t *st) {
  ref_x_t *x = xd;
  if (st->buf == TS_BUF_NONE || atomic_load(&x->fatal)) return;
  size_t N = walk_buf(x, device, st->buf, 0, 0, NULL, B_READ);
  size_t lo = (size_t)st->chunk * N / (size_t)st->n_chunks;
  size_t hi = (size_t)(st->chunk + 1) * N / (size_t)st->n_chunks;
  ref_cmsg_t *m = malloc(sizeof *m + (hi - lo) * sizeof(double));
  if (!m) {
    ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory in %s #%d", device,
                  ts_coll_op_name(st->op), st->id);
    return;
  }
  *m = (ref_cmsg_t){NULL, st->op, st->buf, st->chunk, st->n_chunks, hi - lo};
  walk_buf(x, device, st->buf, lo, hi, m->v, B_READ);
  ts__ref_lock(x);
  ref_cq_t *q = &x->cq[(size_t)device * (size_t)x->n + (size_t)st->peer];
  if (q->tail)
    q->tail->next = m;
  else
    q->head = m;
  q->tail = m;
  ts__ref_unlock(x);
}

void ts__ref_coll_apply(void *xd, int device, const ts_coll_step_t *st) {
  ref_x_t *x = xd;
  if (st->buf == TS_BUF_NONE || atomic_load(&x->fatal)) return;
  ts__ref_lock(x);
  ref_cq_t *q = &x->cq[(size_t)st->peer * (size_t)x->n + (size_t)device];
  ref_cmsg_t *m = q->head;
  if (m && !(q->head = m->next)) q->tail = NULL;
  ts__ref_unlock(x);
  size_t N = walk_buf(x, device, st->buf, 0, 0, NULL, B_READ);
  size_t lo = (size_t)st->chunk * N / (size_t)st->n_chunks;
  size_t hi = (size_t)(st->chunk + 1) * N / (size_t)st->n_chunks;
  if (!m)
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: %s #%d: the step from device %d carries no "
                  "payload: the group's members do not run the same collectives",
                  device, ts_coll_op_name(st->op), st->id, st->peer);
  else if (m->op != st->op || m->buf != st->buf || m->chunk != st->peer_chunk ||
           m->n_chunks != st->n_chunks || m->len != hi - lo)
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: %s #%d: the step from device %d carries %s "
                  "slice %d of %d, %zu values, where slice %d of %d, %zu values was expected "
                  "for this device's slice %d: the group's members do not hold the same model "
                  "parts",
                  device, ts_coll_op_name(st->op), st->id, st->peer, ts_coll_op_name(m->op),
                  m->chunk, m->n_chunks, m->len, st->peer_chunk, st->n_chunks, hi - lo,
                  st->chunk);
  else
    walk_buf(x, device, st->buf, lo, hi, m->v, st->reduce ? B_ADD : B_COPY);
  free(m);
}
