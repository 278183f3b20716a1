/*
** ref_moe.c: the reference executor of one GShard MoE layer (ref_moe.h):
** real float64 forward and backward, expert parallel on threads that
** exchange token buffers between barriers, or the same code on one thread
** (one device).  The math is the reference model's MoE block's
** (ref_moe_layer.h: ts__ref_route, ts__ref_expert_forward/backward,
** ts__ref_gate_backward, the combine); this file only owns the threads,
** the token buffers and the finite-difference perturbation.
*/
#include <gsl/gsl_randist.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_moe.h"
#include "ref_moe_layer.h"
#include "ts_moe.h"

/* A message from token lane r to the worker owning some experts (and the
** answer back): n rows, the choice id (2 t + k) and expert of each row. */
typedef struct box {
  int n;
  int *tk, *ex;
  double *x;          /* dispatch: the token rows (n x h) */
  double *a, *hd;     /* expert side: pre-activation and gelu (n x f) */
  double *out;        /* combine: expert outputs (n x h) */
  double *dout;       /* gradient of the combine (n x h) */
  double *dx;         /* gradient of the dispatch (n x h) */
} box_t;

/* Phases between the barriers; a worker's failure in phase p is rc[p][w]. */
enum { PH_GATE, PH_EXPERTS, PH_COMBINE, PH_EXPERTS_BWD, PH_LANE_BWD, PH_N };

typedef struct moe_x {
  const ts_ref_moe_config_t *c;
  int L, E, T, h, f, W, per;
  double *X, *dY, *Wg, *W1, *W2;
  ts__ref_route_t *rt;  /* [L] routing of each lane */
  double *dwg;          /* [L x h x E] gate gradient of each lane */
  box_t *box;           /* [L * W]: lane r to worker q at r * W + q */
  int *rc;              /* [PH_N x W] */
  ts_ref_moe_result_t *res;
  pthread_barrier_t bar;
} moe_x_t;

/* Lanes of worker w. */
static void lanes_of(const moe_x_t *x, int w, int *lo, int *hi) {
  *lo = x->W == 1 ? 0 : w;
  *hi = x->W == 1 ? x->L : w + 1;
}

/* Gating of lane r and its dispatch buffers.  Returns 0 or EX_OSERR. */
static int gate_dispatch(moe_x_t *x, int r) {
  int h = x->h;
  ts__ref_route_t *rt = &x->rt[r];
  const double *X = x->X + (size_t)r * x->T * h;
  if (ts__ref_route(x->c->moe, x->c->layer, x->c->mb, r, x->T, h, X, x->Wg, rt)) return EX_OSERR;
  memcpy(x->res->kept + (size_t)r * x->E, rt->kept, (size_t)x->E * sizeof(int));
  for (int q = 0; q < x->W; q++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    int elo = q * x->per, ehi = (q + 1) * x->per;
    b->n = ts__ref_route_rows(rt, elo, ehi, NULL, NULL);
    b->ex = malloc((size_t)(b->n + 1) * sizeof(int));
    b->tk = malloc((size_t)(b->n + 1) * sizeof(int));
    b->x = malloc((size_t)(b->n + 1) * h * sizeof(double));
    if (!b->ex || !b->tk || !b->x) return EX_OSERR;
    ts__ref_route_rows(rt, elo, ehi, b->tk, b->ex);
    for (int k = 0; k < b->n; k++)
      memcpy(b->x + (size_t)k * h, X + (size_t)(b->tk[k] / 2) * h, (size_t)h * sizeof(double));
  }
  return 0;
}

/* Expert e's W1 (h x f) and W2 (f x h) in the arrays of every expert's. */
static size_t w1_at(const moe_x_t *x, int e) { return (size_t)e * x->h * x->f; }
static size_t w2_at(const moe_x_t *x, int e) { return (size_t)e * x->f * x->h; }

/* Worker q's experts on the rows every lane sent it.  0 or EX_OSERR. */
static int experts_forward(moe_x_t *x, int q) {
  int h = x->h, f = x->f;
  for (int r = 0; r < x->L; r++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    b->a = malloc((size_t)(b->n + 1) * f * sizeof(double));
    b->hd = malloc((size_t)(b->n + 1) * f * sizeof(double));
    b->out = malloc((size_t)(b->n + 1) * h * sizeof(double));
    if (!b->a || !b->hd || !b->out) return EX_OSERR;
    x->res->received[q] += b->n;
    for (int i = 0; i < b->n; i++)
      ts__ref_expert_forward(x->W1 + w1_at(x, b->ex[i]), x->W2 + w2_at(x, b->ex[i]), h, f,
                             b->x + (size_t)i * h, b->a + (size_t)i * f, b->hd + (size_t)i * f,
                             b->out + (size_t)i * h);
  }
  return 0;
}

/* Lane r: y = x + the gated expert outputs, then the gradients of the
** combine (to the experts) and of the gates.  0 or EX_OSERR. */
static int combine(moe_x_t *x, int r) {
  int T = x->T, h = x->h;
  double *y = x->res->y + (size_t)r * T * h;
  const double *dY = x->dY + (size_t)r * T * h;
  memcpy(y, x->X + (size_t)r * T * h, (size_t)T * h * sizeof(double));
  for (int q = 0; q < x->W; q++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    if (!(b->dout = malloc((size_t)(b->n + 1) * h * sizeof(double)))) return EX_OSERR;
    ts__ref_combine(&x->rt[r], b->n, b->tk, b->out, h, y);
    ts__ref_combine_grad(&x->rt[r], b->n, b->tk, b->out, dY, h, b->dout);
  }
  return 0;
}

/* Worker q: backward of its experts.  0 or EX_OSERR. */
static int experts_backward(moe_x_t *x, int q) {
  int h = x->h, f = x->f;
  double *dh = malloc((size_t)f * sizeof *dh);
  if (!dh) return EX_OSERR;
  for (int r = 0; r < x->L; r++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    if (!(b->dx = malloc((size_t)(b->n + 1) * h * sizeof(double)))) {
      free(dh);
      return EX_OSERR;
    }
    for (int i = 0; i < b->n; i++) {
      int e = b->ex[i];
      ts__ref_expert_backward(x->W1 + w1_at(x, e), x->W2 + w2_at(x, e), h, f, b->x + (size_t)i * h,
                              b->a + (size_t)i * f, b->hd + (size_t)i * f,
                              b->dout + (size_t)i * h, x->res->dw1 + w1_at(x, e),
                              x->res->dw2 + w2_at(x, e), b->dx + (size_t)i * h, dh);
    }
  }
  free(dh);
  return 0;
}

/* Lane r: input gradient (residual, experts, gate) and its dW_g.  0 or
** EX_OSERR. */
static int lane_backward(moe_x_t *x, int r) {
  int T = x->T, h = x->h;
  double *dx = x->res->dx + (size_t)r * T * h;
  memcpy(dx, x->dY + (size_t)r * T * h, (size_t)T * h * sizeof(double));
  for (int q = 0; q < x->W; q++) {
    const box_t *b = &x->box[(size_t)r * x->W + q];
    ts__ref_dispatch_grad(b->n, b->tk, b->dx, h, dx);
  }
  return ts__ref_gate_backward(&x->rt[r], x->X + (size_t)r * T * h, x->Wg, h, x->c->aux_weight,
                               x->dwg + (size_t)r * h * x->E, dx);
}

typedef struct worker {
  moe_x_t *x;
  int w;
} worker_t;

/* Whether some worker failed in phase p (read after the barrier that ends
** it; nobody writes phase p's slots after that barrier). */
static int failed(const moe_x_t *x, int p) {
  for (int w = 0; w < x->W; w++)
    if (x->rc[p * x->W + w]) return 1;
  return 0;
}

/* A worker: its lanes' and its experts' part of every phase.  After a
** failure every worker still meets every barrier, and skips the work. */
static void *worker_main(void *arg) {
  worker_t *wk = arg;
  moe_x_t *x = wk->x;
  int lo, hi, w = wk->w, *rc = x->rc + w, W = x->W, bad = 0;
  lanes_of(x, w, &lo, &hi);
  for (int r = lo; r < hi && !rc[PH_GATE * W]; r++) rc[PH_GATE * W] = gate_dispatch(x, r);
  pthread_barrier_wait(&x->bar); /* dispatch all-to-all */
  if (!(bad = failed(x, PH_GATE))) rc[PH_EXPERTS * W] = experts_forward(x, w);
  pthread_barrier_wait(&x->bar); /* combine all-to-all */
  if (!bad && !(bad = failed(x, PH_EXPERTS)))
    for (int r = lo; r < hi && !rc[PH_COMBINE * W]; r++) rc[PH_COMBINE * W] = combine(x, r);
  pthread_barrier_wait(&x->bar); /* gradient of the combine */
  if (!bad && !(bad = failed(x, PH_COMBINE))) rc[PH_EXPERTS_BWD * W] = experts_backward(x, w);
  pthread_barrier_wait(&x->bar); /* gradient of the dispatch */
  if (!bad && !failed(x, PH_EXPERTS_BWD))
    for (int r = lo; r < hi && !rc[PH_LANE_BWD * W]; r++) rc[PH_LANE_BWD * W] = lane_backward(x, r);
  return NULL;
}

static void fill(gsl_rng *g, double *a, size_t n, double scale) {
  for (size_t i = 0; i < n; i++) a[i] = scale * gsl_ran_gaussian_ziggurat(g, 1.0);
}

/* Frees the working state (not the result). */
static void moe_x_free(moe_x_t *x) {
  if (x->box)
    for (size_t i = 0; i < (size_t)x->L * x->W; i++) {
      box_t *b = &x->box[i];
      free(b->ex);
      free(b->tk);
      free(b->x);
      free(b->a);
      free(b->hd);
      free(b->out);
      free(b->dout);
      free(b->dx);
    }
  if (x->rt)
    for (int r = 0; r < x->L; r++) ts__ref_route_free(&x->rt[r]);
  free(x->box);
  free(x->rt);
  free(x->dwg);
  free(x->rc);
  free(x->X);
  free(x->dY);
  free(x->Wg);
  free(x->W1);
  free(x->W2);
}

/* Allocates the inputs, weights, result arrays and working state, and
** draws the inputs and weights from c->seed.  0 or EX_OSERR. */
static int moe_x_init(moe_x_t *x, const ts_ref_moe_config_t *c, ts_ref_moe_result_t *out) {
  int L = x->L, E = x->E;
  size_t th = (size_t)L * x->T * x->h, ge = (size_t)x->h * E, we = (size_t)E * x->h * x->f;
  x->X = malloc(th * sizeof(double));
  x->dY = malloc(th * sizeof(double));
  x->Wg = calloc(ge, sizeof(double));
  x->W1 = malloc(we * sizeof(double));
  x->W2 = malloc(we * sizeof(double));
  x->rt = calloc((size_t)L, sizeof *x->rt);
  x->dwg = calloc((size_t)L * ge, sizeof(double));
  x->box = calloc((size_t)L * x->W, sizeof *x->box);
  x->rc = calloc((size_t)PH_N * x->W, sizeof *x->rc);
  *out = (ts_ref_moe_result_t){.lanes = L, .E = E, .tokens = x->T, .hidden = x->h, .ffn = x->f};
  out->y = calloc(th, sizeof(double));
  out->dx = calloc(th, sizeof(double));
  out->dwg = calloc(ge, sizeof(double));
  out->dw1 = calloc(we, sizeof(double));
  out->dw2 = calloc(we, sizeof(double));
  out->kept = calloc((size_t)L * E, sizeof(int));
  out->received = calloc((size_t)L, sizeof(long));
  x->res = out;
  gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
  if (!x->X || !x->dY || !x->Wg || !x->W1 || !x->W2 || !x->rt || !x->dwg || !x->box || !x->rc ||
      !out->y || !out->dx || !out->dwg || !out->dw1 || !out->dw2 || !out->kept || !out->received ||
      !g) {
    gsl_rng_free(g);
    return EX_OSERR;
  }
  gsl_rng_set(g, c->seed);
  fill(g, x->X, th, 1.0);
  fill(g, x->dY, th, 1.0);
  fill(g, x->W1, we, 1.0 / sqrt(x->h));
  fill(g, x->W2, we, 1.0 / sqrt(x->f));
  gsl_rng_free(g);
  double *target[4] = {NULL, x->X, x->Wg, x->W1};
  size_t tlen[4] = {0, th, ge, we};
  if (c->eps_what > 0 && c->eps_what < 4 && c->eps_index < tlen[c->eps_what])
    target[c->eps_what][c->eps_index] += c->eps;
  return 0;
}

int ts_ref_moe_run(const ts_ref_moe_config_t *c, int threads, ts_ref_moe_result_t *out,
                   ts_err_t *err) {
  memset(out, 0, sizeof *out);
  const ts_moe_t *m = c->moe;
  int L = m->expert_parallel, E = m->experts;
  if (threads != 1 && threads != L)
    return ts_err_set(err, EX_USAGE, "MoE reference: threads must be 1 or expert_parallel (%d), got %d",
                      L, threads);
  if (E % L || c->tokens < 1 || c->hidden < 1 || c->ffn < 1 ||
      (m->group_size && c->tokens % m->group_size))
    return ts_err_set(err, EX_USAGE, "MoE reference: bad shape (experts %d, lanes %d, tokens %d)", E,
                      L, c->tokens);
  moe_x_t x = {.c = c, .L = L, .E = E, .T = c->tokens, .h = c->hidden, .f = c->ffn, .W = threads,
               .per = E / threads};
  if (moe_x_init(&x, c, out)) {
    moe_x_free(&x);
    ts_ref_moe_result_free(out);
    return ts_err_set(err, EX_OSERR, "MoE reference: out of memory");
  }
  pthread_barrier_init(&x.bar, NULL, (unsigned)threads);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  worker_t *wk = calloc((size_t)threads, sizeof *wk);
  if (!tid || !wk) {
    fprintf(stderr, "trainsim: error: MoE reference: out of memory\n");
    abort();
  }
  for (int w = 0; w < threads; w++) {
    wk[w] = (worker_t){&x, w};
    if (pthread_create(&tid[w], NULL, worker_main, &wk[w])) {
      /* The started workers would wait at the first barrier forever. */
      fprintf(stderr, "trainsim: error: MoE reference: cannot start thread %d\n", w);
      abort();
    }
  }
  for (int w = 0; w < threads; w++) pthread_join(tid[w], NULL);
  pthread_barrier_destroy(&x.bar);
  free(tid);
  free(wk);
  int rc = 0;
  for (int p = 0; p < PH_N; p++) rc |= failed(&x, p);
  if (!rc) {
    size_t th = (size_t)L * x.T * x.h, ge = (size_t)x.h * E;
    for (int r = 0; r < L; r++) {
      out->dropped += x.rt[r].dropped;
      out->aux += x.rt[r].aux;
      for (size_t i = 0; i < ge; i++) out->dwg[i] += x.dwg[(size_t)r * ge + i];
    }
    for (size_t i = 0; i < th; i++) out->loss += x.dY[i] * out->y[i];
    out->loss += c->aux_weight * out->aux;
  }
  moe_x_free(&x);
  if (rc) {
    ts_ref_moe_result_free(out);
    return ts_err_set(err, EX_OSERR, "MoE reference: out of memory");
  }
  return 0;
}

void ts_ref_moe_result_free(ts_ref_moe_result_t *r) {
  if (!r) return;
  free(r->y);
  free(r->dx);
  free(r->dwg);
  free(r->dw1);
  free(r->dw2);
  free(r->kept);
  free(r->received);
  memset(r, 0, sizeof *r);
}
