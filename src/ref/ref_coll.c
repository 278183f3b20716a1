/*
** ref_coll.c: the reference executor's side of collectives (ts_runtime.h
** "collectives"): one communication-stream thread per device that runs the
** runtime's ts__rt_comm_main (one per stream used: ts_executor.h), and the payloads of the collective steps,
** real slices of real arrays moved between the devices' model clones.
**
** A device's buffer (ts_ref.h) is the concatenation, over its units (the
** layers of the model parts it holds, in cost-row order), of the
** replicated arrays of each: the layer's block vector and, for a MoE
** layer, its gate; TS_BUF_GRADS takes the gradients, TS_BUF_WEIGHTS the
** parameters, of the device's own model.  TS_BUF_EXPERT_GRADS / _WEIGHTS:
** for each MoE unit, the W1 of the device's experts then their W2.
** TS_BUF_TP: the device's TP partial (ref_tp.c), b s h doubles (or 2 b s
** h, ref_tp_sp.c), or under 2d the block slot unit_lo (ref_tp2d.c), whose
** reduce chains add what they receive.  TS_BUF_TP_GRADS: for each unit,
** the gradient arrays that ts__ref_tp_sync_segs names (the TP group's
** replicated parameters), in its order.  A step
** covers the region of units [unit_lo, unit_hi) (unit_hi < 0: all), and
** slice k of n is elements [k N / n, (k + 1) N / n) of that region (N
** elements).
** coll_pack copies the slice into a payload at the tail of the FIFO of
** (stream, sender, receiver); coll_apply takes the head of the FIFO of
** (stream, peer, device), checks that it is the step it expects (same collective kind,
** buffer, slice and length) and adds it into the own slice (reduce) or
** copies it there.  A mismatch is an executor error (EX_SOFTWARE) naming
** the devices; a group whose members hold different parts of equal sizes
** goes through and gives wrong gradients, as it would on GPUs.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"

/* One step's payload. */
typedef struct ref_cmsg {
  struct ref_cmsg *next;
  ts_coll_op_t op;
  ts_coll_buf_t buf;
  int unit_lo, unit_hi;
  int chunk, n_chunks;
  size_t len;
  double v[]; /* [len] */
} ref_cmsg_t;

typedef struct ref_cq {
  ref_cmsg_t *head, *tail;
} ref_cq_t;

/* Queues per (stream, sender, receiver). */
static size_t cq_count(const ref_x_t *x) { return (size_t)TS_STREAMS * (size_t)x->n * (size_t)x->n; }

static ref_cq_t *cq_of(ref_x_t *x, int stream, int from, int to) {
  return &x->cq[((size_t)stream * (size_t)x->n + (size_t)from) * (size_t)x->n + (size_t)to];
}

int ts__ref_coll_setup(ref_x_t *x) {
  x->cq = calloc(cq_count(x), sizeof *x->cq);
  return x->cq ? 0 : EX_OSERR;
}

void ts__ref_coll_free(ref_x_t *x) {
  for (size_t i = 0; x->cq && i < cq_count(x); i++)
    for (ref_cmsg_t *m = x->cq[i].head, *nx; m; m = nx) {
      nx = m->next;
      free(m);
    }
  free(x->cq);
  x->cq = NULL;
}

/* ---- the communication streams ------------------------------------------- */

typedef struct ref_stream_arg {
  ref_dev_t *dv;
  int stream;
} ref_stream_arg_t;

static void *comm_main(void *arg) {
  ref_stream_arg_t a = *(ref_stream_arg_t *)arg;
  free(arg);
  ref_x_t *x = a.dv->x;
  ts__rt_comm_main(ts__world_rt(x->w, a.dv->id), a.stream);
  ts__ref_lock(x);
  a.dv->comm_running--;
  x->running--;
  ts__ref_check_deadlock(x);
  ts__ref_unlock(x);
  return NULL;
}

/* Called by the device's program, without the mutex, once per stream and
** run.  The stream counts as running from here on.  When its thread cannot
** start, the error is kept for ts_ref_run (the collective then never runs,
** and its members end through the deadlock path). */
void ts__ref_spawn_comm(void *xd, int device, int stream) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  ref_stream_arg_t *a = malloc(sizeof *a);
  ts__ref_lock(x);
  int e = ENOMEM;
  if (a) {
    *a = (ref_stream_arg_t){dv, stream};
    e = pthread_create(&dv->comm_thread[stream], NULL, comm_main, a);
  }
  if (e) {
    free(a);
    if (!x->comm_err) {
      x->comm_err = e;
      x->comm_err_dev = device;
    }
  } else {
    dv->comm_started[stream] = 1;
    dv->comm_running++;
    x->running++;
  }
  ts__ref_unlock(x);
}

void ts__ref_coll_join(ref_x_t *x) {
  for (int d = 0; d < x->n; d++)
    for (int s = 0; s < TS_STREAMS; s++) {
      ts__ref_lock(x);
      int started = x->dev[d].comm_started[s];
      ts__ref_unlock(x);
      if (started) pthread_join(x->dev[d].comm_thread[s], NULL);
    }
}

/* ---- buffers ------------------------------------------------------------- */

typedef struct walk {
  size_t off, lo, hi; /* position in the region; the slice */
  double *flat;       /* [hi - lo] the payload */
  int mode;
  double alpha;
} walk_t;

/* Visits one array of n elements at the walk's position. */
static void seg(walk_t *k, double *a, size_t n) {
  size_t b = k->lo > k->off ? k->lo : k->off, e = k->hi < k->off + n ? k->hi : k->off + n;
  for (size_t i = b; i < e; i++) {
    double *f = &k->flat[i - k->lo], *s = &a[i - k->off];
    switch (k->mode) {
    case TS__REF_READ: *f = *s; break;
    case TS__REF_ADD: *s += *f; break;
    case TS__REF_COPY: *s = *f; break;
    case TS__REF_AXPY: *s += k->alpha * *f; break;
    default: *s = k->alpha; break;
    }
  }
  k->off += n;
}

size_t ts__ref_walk(ref_x_t *x, int d, ts_ref_model_t *m, ts_coll_buf_t buf, int unit_lo,
                    int unit_hi, size_t lo, size_t hi, double *flat, int mode, double alpha) {
  walk_t k = {0, lo, hi, flat, mode, alpha};
  const ref_dev_t *dv = &x->dev[d];
  if (buf == TS_BUF_TP) { /* the partial of a TP piece (ref_tp.c), or a 2d slot */
    size_t n;
    double *a = ts__ref_tp_buf(x, d, unit_lo, &n);
    if (a) seg(&k, a, n);
    return k.off;
  }
  if (!m) m = dv->model;
  if (unit_hi < 0 || unit_hi > dv->n_units) unit_hi = dv->n_units;
  if (unit_lo < 0) unit_lo = 0;
  if (buf == TS_BUF_TP_GRADS) { /* the TP group's replicated gradients (ref_tp_sp.c) */
    for (int u = unit_lo; u < unit_hi; u++) {
      double *sg[TS__REF_TP_SYNC_SEGS];
      size_t len[TS__REF_TP_SYNC_SEGS];
      int ns = ts__ref_tp_sync_segs(x, d, m, dv->unit_layer[u], sg, len);
      for (int i = 0; i < ns; i++) seg(&k, sg[i], len[i]);
    }
    return k.off;
  }
  int grads = buf == TS_BUF_GRADS || buf == TS_BUF_EXPERT_GRADS;
  int experts = buf == TS_BUF_EXPERT_GRADS || buf == TS_BUF_EXPERT_WEIGHTS;
  const ts_ref_config_t *c = &x->cfg;
  size_t nwg = (size_t)c->hidden * (size_t)c->experts, nexp = (size_t)c->hidden * c->expert_ffn;
  for (int u = unit_lo; buf != TS_BUF_NONE && u < unit_hi; u++) {
    int l = dv->unit_layer[u];
    int moe = ts_ref_is_moe_layer(c, l);
    if (!experts) {
      size_t n;
      /* The model owns its gradient vectors, which are not const. */
      double *a = grads ? (double *)ts_ref_block_grad(m, l, &n) : ts_ref_block_params(m, l, &n);
      seg(&k, a, n);
      if (!moe) continue;
      a = grads ? ts_ref_moe_grad(m, l, NULL) : ts_ref_moe_params(m, l, NULL);
      seg(&k, a, nwg); /* the gate: its first hidden x experts elements */
    } else if (moe) {
      /* The W1 of its experts, then their W2 (ts_ref_moe_params' layout). */
      double *a = grads ? ts_ref_moe_grad(m, l, NULL) : ts_ref_moe_params(m, l, NULL);
      size_t per = (size_t)dv->e_n * nexp;
      seg(&k, a + nwg + (size_t)dv->e_lo * nexp, per);
      seg(&k, a + nwg + (size_t)(c->experts + dv->e_lo) * nexp, per);
    }
  }
  return k.off;
}

/* The step's slice of its region on device d: [*lo, *hi) of N. */
static size_t step_slice(ref_x_t *x, int d, const ts_coll_step_t *st, size_t *lo, size_t *hi) {
  size_t N = ts__ref_walk(x, d, NULL, st->buf, st->unit_lo, st->unit_hi, 0, 0, NULL, TS__REF_READ, 0);
  ts__ref_slice(N, st->chunk, st->n_chunks, lo, hi);
  return N;
}

/* ---- the steps ------------------------------------------------------------ */

void ts__ref_coll_pack(void *xd, int device, const ts_coll_step_t *st) {
  ref_x_t *x = xd;
  if (st->buf == TS_BUF_NONE || atomic_load(&x->fatal)) return;
  if (st->buf == TS_BUF_TP) ts__ref_tp2d_touch(x, device, st);
  size_t lo, hi;
  step_slice(x, device, st, &lo, &hi);
  ref_cmsg_t *m = malloc(sizeof *m + (hi - lo) * sizeof(double));
  if (!m) {
    ts__ref_fatal(x, EX_OSERR, "reference executor: device %d: out of memory in %s #%d", device,
                  ts_coll_op_name(st->op), st->id);
    return;
  }
  *m = (ref_cmsg_t){NULL, st->op, st->buf, st->unit_lo, st->unit_hi, st->chunk, st->n_chunks, hi - lo};
  ts__ref_walk(x, device, NULL, st->buf, st->unit_lo, st->unit_hi, lo, hi, m->v, TS__REF_READ, 0);
  ts__ref_lock(x);
  ref_cq_t *q = cq_of(x, st->stream, device, st->peer);
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
  ref_cq_t *q = cq_of(x, st->stream, st->peer, device);
  ref_cmsg_t *m = q->head;
  if (m && !(q->head = m->next)) q->tail = NULL;
  ts__ref_unlock(x);
  if (st->buf == TS_BUF_TP) ts__ref_tp2d_touch(x, device, st);
  size_t lo, hi;
  step_slice(x, device, st, &lo, &hi);
  /* A 2d reduce runs as a broadcast chain whose members add. */
  int add = st->reduce || (st->buf == TS_BUF_TP && ts__ref_tp2d_reduces(x, device, st->unit_lo));
  if (!m)
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: %s #%d: the step from device %d carries no "
                  "payload: the group's members do not run the same collectives",
                  device, ts_coll_op_name(st->op), st->id, st->peer);
  else if (m->op != st->op || m->buf != st->buf || m->unit_lo != st->unit_lo ||
           m->unit_hi != st->unit_hi || m->chunk != st->peer_chunk ||
           m->n_chunks != st->n_chunks || m->len != hi - lo)
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: %s #%d: the step from device %d carries %s "
                  "slice %d of %d of units [%d, %d), %zu values, where slice %d of %d of units "
                  "[%d, %d), %zu values was expected for this device's slice %d: the group's "
                  "members do not hold the same model parts",
                  device, ts_coll_op_name(st->op), st->id, st->peer, ts_coll_op_name(m->op),
                  m->chunk, m->n_chunks, m->unit_lo, m->unit_hi, m->len, st->peer_chunk,
                  st->n_chunks, st->unit_lo, st->unit_hi, hi - lo, st->chunk);
  else
    ts__ref_walk(x, device, NULL, st->buf, st->unit_lo, st->unit_hi, lo, hi, m->v,
                 add ? TS__REF_ADD : TS__REF_COPY, 0);
  free(m);
}
