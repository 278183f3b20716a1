/*
** ref_moe_exec.c: the reference executor's MoE ops (schedule gshard): the
** pieces of a MoE forward or backward on the device's tokens and experts,
** and the all-to-alls' payloads, real token rows moved between device
** threads.
**
** A device of EP lane me holds its lane's tokens and the experts me E/EP ..
** (me + 1) E/EP - 1 of its stage's MoE layers.  The state of one op
** (stage, micro-batch), from its forward to its backward, is a
** ts__ref_moe_op: the stashes of the dense runs between the MoE layers and,
** per MoE layer, the attention half's stash, the routing and one box per
** lane: tok[q], what this device's tokens sent to (or got back from) lane
** q's experts, and exp[s], what lane s's tokens brought to this device's
** experts.  A device's own rows are never sent: tok[me]'s outputs and
** gradients live in exp[me].  The payload of each message goes, under the
** global mutex, into a FIFO per (kind, sender, receiver) just before the
** runtime sends it (a2a_pack) and is taken out when the runtime consumed
** the message (a2a_apply); the payload carries its op and layer, which
** the receiver checks.
** Accounting: the attention half's stash counts as stashed activations;
** routing, token rows and expert activations do not (the simulator's MoE
** memory model has no term for them either).
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_internal.h"
#include "ref_moe_layer.h"
#include "ts_moe.h"

typedef struct ref_box {
  int n;
  int *tk, *ex;       /* choice ids (token side), experts */
  double *rows;       /* the u rows (n x h) */
  double *a, *hd;     /* expert side: pre-activation, gelu (n x f) */
  double *out, *dout, *dx; /* expert outputs, their gradients, input gradients */
} ref_box_t;

typedef struct ref_moe_layer {
  ts__ref_half_t *half;
  double *x1, *u;     /* T x h */
  ts__ref_route_t rt;
  ref_box_t *tok, *exp; /* [L] */
  double *dres;       /* T x h: gradient at the layer's output */
} ref_moe_layer_t;

typedef struct ts__ref_moe_op {
  int n, L, me;
  ts_ref_stash_t **dense; /* [n + 1] */
  ref_moe_layer_t *ly;    /* [n] */
  double *cur;            /* T x h: the activation between pieces */
} ref_moe_op_t;

typedef struct ref_msg {
  struct ref_msg *next;
  ts_kind_t op;
  int mb, layer, n;
  int *ex;
  double *rows;
} ref_msg_t;

static void box_free(ref_box_t *b) {
  free(b->tk);
  free(b->ex);
  free(b->rows);
  free(b->a);
  free(b->hd);
  free(b->out);
  free(b->dout);
  free(b->dx);
}

static void op_free(ref_moe_op_t *op, ts_ref_mem_t *mem) {
  if (!op) return;
  for (int i = 0; i <= op->n; i++) ts_ref_stash_free(op->dense[i], mem);
  for (int i = 0; i < op->n; i++) {
    ref_moe_layer_t *ly = &op->ly[i];
    ts__ref_half_free(ly->half, mem);
    free(ly->x1);
    free(ly->u);
    free(ly->dres);
    ts__ref_route_free(&ly->rt);
    for (int q = 0; q < op->L; q++) {
      box_free(&ly->tok[q]);
      box_free(&ly->exp[q]);
    }
    free(ly->tok);
    free(ly->exp);
  }
  free(op->dense);
  free(op->ly);
  free(op->cur);
  free(op);
}

/* Layers [lo, hi) of dense run i of part pc whose MoE layers are ml[0 .. n). */
static void run_range(const ts_part_cost_t *pc, const int *ml, int n, int i, int *lo, int *hi) {
  *lo = i == 0 ? pc->first_layer : ml[i - 1] + 1;
  *hi = i < n ? ml[i] : pc->first_layer + pc->n_layers;
}

/* A MoE layer's parameters: the gate, expert e's W1 and W2 (params or grads). */
static double *w1_of(const ts_ref_config_t *c, double *P, int e) {
  return P + (size_t)c->hidden * c->experts + (size_t)e * c->hidden * c->expert_ffn;
}
static double *w2_of(const ts_ref_config_t *c, double *P, int e) {
  return w1_of(c, P, c->experts) + (size_t)e * c->expert_ffn * c->hidden;
}

/* Token side of piece 2i: attention half, routing and the boxes of layer i
** on op->cur.  Returns 0 or an error text. */
static const char *layer_gate(ref_x_t *x, ref_dev_t *dv, ref_moe_op_t *op, int i, int l, int j,
                              int mb) {
  ref_moe_layer_t *ly = &op->ly[i];
  int h = x->cfg.hidden, T = (int)(x->n_el / (size_t)h), per = x->cfg.experts / op->L;
  ly->x1 = malloc(x->n_el * sizeof(double));
  ly->u = malloc(x->n_el * sizeof(double));
  ly->tok = calloc((size_t)op->L, sizeof *ly->tok);
  ly->exp = calloc((size_t)op->L, sizeof *ly->exp);
  if (!ly->x1 || !ly->u || !ly->tok || !ly->exp) return "out of memory";
  if (!(ly->half = ts__ref_half_forward(dv->model, l, x->mbs, op->cur, ly->x1, ly->u, &dv->mem)))
    return "out of memory";
  const double *Wg = ts_ref_moe_params(dv->model, l, NULL);
  if (ts__ref_route(&x->job->model.moe, j, mb, op->me, T, h, ly->u, Wg, &ly->rt))
    return "out of memory";
  for (int q = 0; q < op->L; q++) {
    ref_box_t *b = q == op->me ? &ly->exp[q] : &ly->tok[q];
    int n = ts__ref_route_rows(&ly->rt, q * per, (q + 1) * per, NULL, NULL);
    b->n = n;
    b->ex = malloc((size_t)(n + 1) * sizeof(int));
    b->rows = malloc(((size_t)n + 1) * h * sizeof(double));
    ly->tok[q].tk = malloc((size_t)(n + 1) * sizeof(int));
    ly->tok[q].n = n;
    if (!b->ex || !b->rows || !ly->tok[q].tk) return "out of memory";
    ts__ref_route_rows(&ly->rt, q * per, (q + 1) * per, ly->tok[q].tk, b->ex);
    for (int k = 0; k < n; k++)
      memcpy(b->rows + (size_t)k * h, ly->u + (size_t)(ly->tok[q].tk[k] / 2) * h,
             (size_t)h * sizeof(double));
  }
  return NULL;
}

/* op->cur = x1 + sum of the gated expert outputs of layer i. */
static void layer_combine(ref_x_t *x, ref_moe_op_t *op, int i) {
  ref_moe_layer_t *ly = &op->ly[i];
  int h = x->cfg.hidden;
  memcpy(op->cur, ly->x1, x->n_el * sizeof(double));
  for (int q = 0; q < op->L; q++) {
    const double *out = q == op->me ? ly->exp[q].out : ly->tok[q].out;
    ts__ref_combine(&ly->rt, ly->tok[q].n, ly->tok[q].tk, out, h, op->cur);
  }
}

/* Layer i's combine gradient from ly->dres: the output gradients to send
** back to the experts, and the gates' gradients. */
static const char *layer_combine_grad(ref_x_t *x, ref_moe_op_t *op, int i) {
  ref_moe_layer_t *ly = &op->ly[i];
  int h = x->cfg.hidden;
  for (int q = 0; q < op->L; q++) {
    ref_box_t *b = q == op->me ? &ly->exp[q] : &ly->tok[q];
    const double *out = q == op->me ? ly->exp[q].out : ly->tok[q].out;
    if (!(b->dout = malloc(((size_t)ly->tok[q].n + 1) * h * sizeof(double)))) return "out of memory";
    ts__ref_combine_grad(&ly->rt, ly->tok[q].n, ly->tok[q].tk, out, ly->dres, h, b->dout);
  }
  return NULL;
}

/* The experts of this device on every lane's rows of layer i (forward, or
** backward with bwd). */
static const char *layer_experts(ref_x_t *x, ref_dev_t *dv, ref_moe_op_t *op, int i, int l,
                                 int j, int mb, int bwd) {
  ref_moe_layer_t *ly = &op->ly[i];
  const ts_ref_config_t *c = &x->cfg;
  int h = c->hidden, f = c->expert_ffn;
  double *P = ts_ref_moe_params(dv->model, l, NULL), *G = ts_ref_moe_grad(dv->model, l, NULL);
  double *dh = malloc((size_t)f * sizeof *dh);
  if (!dh) return "out of memory";
  for (int s = 0; s < op->L; s++) {
    ref_box_t *b = &ly->exp[s];
    size_t n1 = (size_t)b->n + 1;
    if (!bwd) {
      b->a = malloc(n1 * f * sizeof(double));
      b->hd = malloc(n1 * f * sizeof(double));
      b->out = malloc(n1 * h * sizeof(double));
      if (!b->a || !b->hd || !b->out || !b->rows) {
        free(dh);
        return "out of memory (or rows missing)";
      }
      x->expert_rows[((size_t)dv->id * x->cost->moe->n_layers + j) * x->M + mb] += b->n;
    } else if (!(b->dx = malloc(n1 * h * sizeof(double))) || !b->dout) {
      free(dh);
      return "out of memory (or output gradients missing)";
    }
    for (int k = 0; k < b->n; k++) {
      int e = b->ex[k];
      const double *in = b->rows + (size_t)k * h;
      double *a = b->a + (size_t)k * f, *hd = b->hd + (size_t)k * f;
      if (!bwd)
        ts__ref_expert_forward(w1_of(c, P, e), w2_of(c, P, e), h, f, in, a, hd,
                               b->out + (size_t)k * h);
      else
        ts__ref_expert_backward(w1_of(c, P, e), w2_of(c, P, e), h, f, in, a, hd,
                                b->dout + (size_t)k * h, w1_of(c, G, e), w2_of(c, G, e),
                                b->dx + (size_t)k * h, dh);
    }
  }
  free(dh);
  return NULL;
}

/* Token side of backward piece 2i: the input gradients of the experts and
** of the gate into du, then the attention half: op->cur becomes the
** gradient at the layer's input. */
static const char *layer_backward(ref_x_t *x, ref_dev_t *dv, ref_moe_op_t *op, int i, int l) {
  ref_moe_layer_t *ly = &op->ly[i];
  int h = x->cfg.hidden;
  double *du = calloc(x->n_el, sizeof *du);
  if (!du) return "out of memory";
  for (int q = 0; q < op->L; q++) {
    const double *dx = q == op->me ? ly->exp[q].dx : ly->tok[q].dx;
    if (!dx) {
      free(du);
      return "input gradients of the experts missing";
    }
    ts__ref_dispatch_grad(ly->tok[q].n, ly->tok[q].tk, dx, h, du);
  }
  const double *Wg = ts_ref_moe_params(dv->model, l, NULL);
  int rc = ts__ref_gate_backward(&ly->rt, ly->u, Wg, h, TS_REF_MOE_AUX / x->N,
                                 ts_ref_moe_grad(dv->model, l, NULL), du);
  if (!rc) rc = ts__ref_half_backward(dv->model, ly->half, ly->dres, du, op->cur, &dv->mem);
  if (!rc) ly->half = NULL;
  free(du);
  return rc ? "out of memory" : NULL;
}

/* One forward piece. */
static const char *piece_forward(ref_x_t *x, ref_dev_t *dv, ref_moe_op_t *op, int v, int mb,
                                 int piece, const int *ml, int j0) {
  const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
  int i = piece / 2, lo, hi;
  if (piece % 2) return layer_experts(x, dv, op, i, ml[i], j0 + i, mb, 0);
  if (i > 0) layer_combine(x, op, i - 1);
  run_range(pc, ml, op->n, i, &lo, &hi);
  if (hi > lo &&
      !(op->dense[i] = ts_ref_forward(dv->model, lo, hi - lo, x->mbs, op->cur, op->cur, 1, &dv->mem)))
    return "out of memory";
  if (i < op->n) return layer_gate(x, dv, op, i, ml[i], j0 + i, mb);
  dv->out[ts__ref_slot_cell(x, dv, SLOT_ACT, v, mb)] = ts__ref_take(&op->cur);
  return NULL;
}

/* One backward piece; frees the op after the last. */
static const char *piece_backward(ref_x_t *x, ref_dev_t *dv, ref_moe_op_t *op, int v, int mb,
                                  int piece, const int *ml, int j0) {
  int i = piece / 2;
  if (piece % 2) return layer_experts(x, dv, op, i, ml[i], j0 + i, mb, 1);
  if (i == op->n) {
    free(op->cur);
    if (!(op->cur = ts__ref_bwd_dy(x, dv, v, mb))) return "its output gradient is missing";
  } else {
    const char *e = layer_backward(x, dv, op, i, ml[i]);
    if (e) return e;
  }
  if (op->dense[i]) {
    int rc = ts_ref_backward(dv->model, op->dense[i], op->cur, op->cur, &dv->mem);
    if (rc) return "out of memory";
    op->dense[i] = NULL;
  }
  if (i > 0) {
    op->ly[i - 1].dres = ts__ref_take(&op->cur);
    if (!(op->cur = malloc(x->n_el * sizeof(double)))) return "out of memory";
    return layer_combine_grad(x, op, i - 1);
  }
  if (x->lay->prev[v] >= 0) dv->out[ts__ref_slot_cell(x, dv, SLOT_GRAD, v, mb)] = ts__ref_take(&op->cur);
  op_free(op, &dv->mem);
  dv->moe[ts__ref_cell(x, v, mb)] = NULL;
  return NULL;
}

/* A new op for a forward of (v, mb) with n MoE layers; its input in cur. */
static ref_moe_op_t *op_new(ref_x_t *x, ref_dev_t *dv, int v, int mb, int n) {
  ref_moe_op_t *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  ts_group_t ep = ts_plan_group(x->plan, TS_GROUP_EP, dv->id);
  op->n = n;
  op->L = ep.n;
  op->me = ep.rank;
  op->dense = calloc((size_t)n + 1, sizeof *op->dense);
  op->ly = calloc((size_t)n, sizeof *op->ly);
  op->cur = malloc(x->n_el * sizeof *op->cur);
  double *owned;
  const double *in = ts__ref_fwd_input(x, dv, v, mb, &owned);
  if (!op->dense || !op->ly || !op->cur || !in) {
    free(owned);
    op_free(op, &dv->mem);
    return NULL;
  }
  memcpy(op->cur, in, x->n_el * sizeof *op->cur);
  free(owned);
  return op;
}

void ts__ref_moe_compute(void *xd, int device, ts_kind_t kind, int v, int mb, int piece,
                         double flops, double seconds) {
  (void)flops, (void)seconds;
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (atomic_load(&x->fatal)) return;
  const ts_moe_cost_t *mc = x->cost->moe;
  int part = x->lay->part[v], n = mc->part_count[part], j0 = mc->part_first[part];
  const int *ml = mc->layer + j0;
  ref_moe_op_t **slot = &dv->moe[ts__ref_cell(x, v, mb)];
  if (kind == TS_FORWARD && piece == 0 && !*slot && !(*slot = op_new(x, dv, v, mb, n))) {
    ts__ref_fatal(x, EX_SOFTWARE,
                  "reference executor: device %d: MoE forward of stage %d micro-batch %d: its "
                  "input is missing or memory ran out",
                  device, v, mb);
    return;
  }
  const char *e = !*slot ? "no forward state"
                  : kind == TS_FORWARD ? piece_forward(x, dv, *slot, v, mb, piece, ml, j0)
                                       : piece_backward(x, dv, *slot, v, mb, piece, ml, j0);
  if (e)
    ts__ref_fatal(x, EX_SOFTWARE, "reference executor: device %d: MoE %s of stage %d micro-batch %d "
                  "piece %d: %s", device, ts_kind_name(kind), v, mb, piece, e);
}

/* ---- the all-to-alls' payloads ------------------------------------------------ */

static ref_msg_t **fifo_at(ref_x_t *x, ts_kind_t which, int from, int to) {
  return &x->fifo[((size_t)(which == TS_SEND_COMBINE) * x->n + from) * x->n + to];
}

/* The box a message of m's kind concerns on this device (peer lane q), and
** whether it is the token side's. */
static ref_box_t *msg_box(ref_moe_layer_t *ly, const ts_a2a_msg_t *m, int q, int pack) {
  /* forward dispatch and backward combine go from the tokens to the experts */
  int to_experts = (m->which == TS_SEND_DISPATCH) == (m->op == TS_FORWARD);
  return to_experts == pack ? &ly->tok[q] : &ly->exp[q];
}

void ts__ref_a2a_pack(void *xd, int device, const ts_a2a_msg_t *m) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  if (atomic_load(&x->fatal)) return;
  ref_moe_op_t *op = dv->moe[ts__ref_cell(x, m->vstage, m->mb)];
  int h = x->cfg.hidden, to_experts = (m->which == TS_SEND_DISPATCH) == (m->op == TS_FORWARD);
  ref_box_t *b = op ? msg_box(&op->ly[m->layer], m, m->peer_lane, 1) : NULL;
  const double *src = !b ? NULL
                      : m->op == TS_FORWARD ? (to_experts ? b->rows : b->out)
                                            : (to_experts ? b->dout : b->dx);
  ref_msg_t *g = calloc(1, sizeof *g);
  if (g) {
    *g = (ref_msg_t){.op = m->op, .mb = m->mb, .layer = m->layer, .n = b ? b->n : 0};
    g->rows = malloc(((size_t)g->n + 1) * h * sizeof(double));
    g->ex = malloc(((size_t)g->n + 1) * sizeof(int));
  }
  if (!src || !g || !g->rows || !g->ex) {
    if (g) free(g->rows), free(g->ex);
    free(g);
    ts__ref_fatal(x, EX_SOFTWARE, "reference executor: device %d: %s of stage %d micro-batch %d: "
                  "nothing to send (or out of memory)", device, ts_kind_name(m->which), m->vstage,
                  m->mb);
    return;
  }
  memcpy(g->rows, src, (size_t)g->n * h * sizeof(double));
  if (b->ex) memcpy(g->ex, b->ex, (size_t)g->n * sizeof(int));
  ts__ref_lock(x);
  ref_msg_t **p = fifo_at(x, m->which, device, m->peer);
  while (*p) p = &(*p)->next;
  *p = g;
  ts__ref_unlock(x);
}

void ts__ref_a2a_apply(void *xd, int device, const ts_a2a_msg_t *m) {
  ref_x_t *x = xd;
  ref_dev_t *dv = &x->dev[device];
  ts__ref_lock(x);
  ref_msg_t **p = fifo_at(x, m->which, m->peer, device), *g = *p;
  if (g) *p = g->next;
  ts__ref_unlock(x);
  if (atomic_load(&x->fatal)) goto out;
  ref_moe_op_t *op = dv->moe[ts__ref_cell(x, m->vstage, m->mb)];
  int to_experts = (m->which == TS_SEND_DISPATCH) == (m->op == TS_FORWARD);
  ref_box_t *b = op ? msg_box(&op->ly[m->layer], m, m->peer_lane, 0) : NULL;
  int want = !b ? -1 : (m->op == TS_FORWARD && to_experts) ? g ? g->n : -1 : b->n;
  if (!g || !b || g->op != m->op || g->mb != m->mb || g->layer != m->layer || g->n != want) {
    ts__ref_fatal(x, EX_SOFTWARE, "reference executor: device %d: the %s payload from device %d "
                  "does not match stage %d micro-batch %d", device, ts_kind_name(m->which), m->peer,
                  m->vstage, m->mb);
    goto out;
  }
  double **dst = m->op == TS_FORWARD ? (to_experts ? &b->rows : &b->out)
                                     : (to_experts ? &b->dout : &b->dx);
  free(*dst);
  *dst = ts__ref_take(&g->rows);
  if (m->op == TS_FORWARD && to_experts) {
    b->n = g->n;
    free(b->ex);
    b->ex = g->ex;
    g->ex = NULL;
  }
out:
  if (g) free(g->rows), free(g->ex);
  free(g);
}

void ts__ref_moe_free(ref_x_t *x) {
  for (int d = 0; x->dev && d < x->n; d++)
    for (size_t i = 0; x->dev[d].moe && i < (size_t)x->dev[d].n_local * x->M; i++)
      op_free(x->dev[d].moe[i], &x->dev[d].mem);
  for (size_t i = 0; x->fifo && i < 2 * (size_t)x->n * x->n; i++)
    while (x->fifo[i]) {
      ref_msg_t *g = x->fifo[i];
      x->fifo[i] = g->next;
      free(g->rows);
      free(g->ex);
      free(g);
    }
  free(x->fifo);
  for (int d = 0; x->dev && d < x->n; d++) free(x->dev[d].moe);
}

void ts__ref_moe_gather(ref_x_t *x, ts_ref_model_t *g, const int *first, int params) {
  const ts_ref_config_t *c = &x->cfg;
  size_t nwg = (size_t)c->hidden * c->experts, nexp = (size_t)c->hidden * c->expert_ffn;
  for (int v = 0; v < x->lay->n_vstages; v++) {
    const ts_part_cost_t *pc = &x->cost->part[x->lay->part[v]];
    int d = x->lay->dev[v];
    ts_group_t ep = ts_plan_group(x->plan, TS_GROUP_EP, d);
    int per = c->experts / ep.n;
    for (int l = pc->first_layer; l < pc->first_layer + pc->n_layers; l++) {
      double *dst = params ? ts_ref_moe_params(g, l, NULL) : ts_ref_moe_grad(g, l, NULL);
      double *src = params ? ts_ref_moe_params(x->dev[d].model, l, NULL)
                           : ts_ref_moe_grad(x->dev[d].model, l, NULL);
      if (!dst || !src) continue;
      if (d == first[l]) memcpy(dst, src, nwg * sizeof *dst); /* the gate: replicated */
      for (int e = ep.rank * per; e < (ep.rank + 1) * per; e++) {
        memcpy(w1_of(c, dst, e), w1_of(c, src, e), nexp * sizeof(double));
        memcpy(w2_of(c, dst, e), w2_of(c, src, e), nexp * sizeof(double));
      }
    }
  }
}
