/*
** ref_moe.c: the reference executor of one GShard MoE layer (ref_moe.h):
** real float64 forward and backward, expert parallel on threads that
** exchange token buffers, or the same code on one thread (one device).
*/
#include <gsl/gsl_randist.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ref_moe.h"
#include "ts_moe.h"

/* A message from token lane r to the worker owning some experts (or back):
** n rows of width h or f, the expert of each row, and, on the sender's
** side, the choice (2 t + k) each row carries. */
typedef struct box {
  int n;
  int *ex, *tk;
  double *x;          /* dispatch: the token rows (n x h) */
  double *a, *hd;     /* expert side: pre-activation and gelu (n x f) */
  double *out;        /* combine: expert outputs (n x h) */
  double *dout;       /* gradient of the combine (n x h) */
  double *dx;         /* gradient of the dispatch (n x h) */
} box_t;

typedef struct lane {
  double *probs;      /* T x E */
  int *expert, *slot; /* T x 2 */
  double *gate;       /* T x 2, combine weight (0 when not kept) */
  double *dgate;      /* T x 2 */
  int *top1;          /* groups x E: first choices per group (aux loss) */
  double *dwg;        /* h x E */
  long dropped;       /* counters of this lane (one writer: its worker) */
  double aux;
} lane_t;

typedef struct moe_x {
  const ts_ref_moe_config_t *c;
  int L, E, T, h, f, W, per, S, G, C;
  double *X, *dY, *Wg, *W1, *W2;
  lane_t *lane;
  box_t *box;         /* [L * W]: lane r to worker q at r * W + q */
  ts_ref_moe_result_t *res;
  pthread_barrier_t bar;
} moe_x_t;

static const double GELU_C = 0.7978845608028654; /* sqrt(2 / pi) */

static double gelu(double a) { return 0.5 * a * (1 + tanh(GELU_C * (a + 0.044715 * a * a * a))); }

static double gelu_d(double a) {
  double t = tanh(GELU_C * (a + 0.044715 * a * a * a));
  return 0.5 * (1 + t) + 0.5 * a * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * a * a);
}

/* Lanes and experts of worker w. */
static void lanes_of(const moe_x_t *x, int w, int *lo, int *hi) {
  *lo = x->W == 1 ? 0 : w;
  *hi = x->W == 1 ? x->L : w + 1;
}

/* Gating of lane r and its dispatch buffers. */
static void gate_dispatch(moe_x_t *x, int r) {
  const ts_moe_t *m = x->c->moe;
  int T = x->T, E = x->E, h = x->h;
  lane_t *ln = &x->lane[r];
  const double *X = x->X + (size_t)r * T * h;
  gsl_rng *g = ts_moe_rng(m, x->c->layer, x->c->mb, r);
  ts_moe_prior(m, g, T, ln->probs);
  for (int t = 0; t < T; t++)
    for (int e = 0; e < E; e++) {
      double s = 0;
      for (int i = 0; i < h; i++) s += X[(size_t)t * h + i] * x->Wg[(size_t)i * E + e];
      ln->probs[(size_t)t * E + e] += s;
    }
  ts_moe_softmax(ln->probs, T, E, ln->probs);
  /* idx[(e * G + grp) * C + slot] = 2 t + k of the kept choice there */
  int *idx = malloc((size_t)E * x->G * x->C * sizeof *idx);
  for (size_t i = 0; i < (size_t)E * x->G * x->C; i++) idx[i] = -1;
  for (int grp = 0; grp < x->G; grp++) {
    ts_moe_route_t rt;
    ts_moe_gate(ln->probs + (size_t)grp * x->S * E, x->S, E, m->capacity_factor,
                m->capacity_multiple, g, &rt);
    for (int i = 0; i < x->S * 2; i++) {
      int t2 = grp * x->S * 2 + i;
      ln->expert[t2] = rt.expert[i];
      ln->slot[t2] = rt.slot[i];
      ln->gate[t2] = rt.gate[i];
      if (rt.slot[i] >= 0) idx[((size_t)rt.expert[i] * x->G + grp) * x->C + rt.slot[i]] = t2;
      if (i % 2 == 0) ln->top1[(size_t)grp * E + rt.expert[i]]++;
    }
    for (int e = 0; e < E; e++) x->res->kept[(size_t)r * E + e] += rt.load[e];
    ln->dropped += rt.dropped;
    ln->aux += rt.aux;
    ts_moe_route_free(&rt);
  }
  gsl_rng_free(g);
  for (int q = 0; q < x->W; q++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    int elo = x->W == 1 ? 0 : q * x->per, ehi = x->W == 1 ? E : (q + 1) * x->per, n = 0;
    for (size_t i = (size_t)elo * x->G * x->C; i < (size_t)ehi * x->G * x->C; i++) n += idx[i] >= 0;
    b->n = n;
    b->ex = malloc((size_t)(n + 1) * sizeof(int));
    b->tk = malloc((size_t)(n + 1) * sizeof(int));
    b->x = malloc((size_t)(n + 1) * h * sizeof(double));
    int k = 0;
    for (size_t i = (size_t)elo * x->G * x->C; i < (size_t)ehi * x->G * x->C; i++) {
      if (idx[i] < 0) continue;
      b->ex[k] = (int)(i / ((size_t)x->G * x->C));
      b->tk[k] = idx[i];
      memcpy(b->x + (size_t)k * h, X + (size_t)(idx[i] / 2) * h, (size_t)h * sizeof(double));
      k++;
    }
  }
  free(idx);
}

/* Worker q's experts on the rows every lane sent it. */
static void experts_forward(moe_x_t *x, int q) {
  int h = x->h, f = x->f;
  for (int r = 0; r < x->L; r++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    b->a = calloc((size_t)(b->n + 1) * f, sizeof(double));
    b->hd = calloc((size_t)(b->n + 1) * f, sizeof(double));
    b->out = calloc((size_t)(b->n + 1) * h, sizeof(double));
    x->res->received[q] += b->n;
    for (int i = 0; i < b->n; i++) {
      const double *W1 = x->W1 + (size_t)b->ex[i] * h * f, *W2 = x->W2 + (size_t)b->ex[i] * f * h;
      const double *in = b->x + (size_t)i * h;
      double *a = b->a + (size_t)i * f, *hd = b->hd + (size_t)i * f, *o = b->out + (size_t)i * h;
      for (int j = 0; j < f; j++) {
        double s = 0;
        for (int k = 0; k < h; k++) s += in[k] * W1[(size_t)k * f + j];
        a[j] = s;
        hd[j] = gelu(s);
      }
      for (int k = 0; k < h; k++) {
        double s = 0;
        for (int j = 0; j < f; j++) s += hd[j] * W2[(size_t)j * h + k];
        o[k] = s;
      }
    }
  }
}

/* Lane r: combine, then the gradients of the gates and of the combine. */
static void combine(moe_x_t *x, int r) {
  int T = x->T, h = x->h;
  lane_t *ln = &x->lane[r];
  double *y = x->res->y + (size_t)r * T * h;
  const double *dY = x->dY + (size_t)r * T * h;
  memcpy(y, x->X + (size_t)r * T * h, (size_t)T * h * sizeof(double));
  for (int q = 0; q < x->W; q++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    b->dout = malloc((size_t)(b->n + 1) * h * sizeof(double));
    for (int i = 0; i < b->n; i++) {
      int tk = b->tk[i], t = tk / 2;
      double gk = ln->gate[tk], dg = 0;
      const double *o = b->out + (size_t)i * h;
      for (int k = 0; k < h; k++) {
        y[(size_t)t * h + k] += gk * o[k];
        dg += dY[(size_t)t * h + k] * o[k];
        b->dout[(size_t)i * h + k] = gk * dY[(size_t)t * h + k];
      }
      ln->dgate[tk] = dg;
    }
  }
}

/* Worker q: backward of its experts. */
static void experts_backward(moe_x_t *x, int q) {
  int h = x->h, f = x->f;
  double *dh = malloc((size_t)f * sizeof *dh);
  for (int r = 0; r < x->L; r++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    b->dx = calloc((size_t)(b->n + 1) * h, sizeof(double));
    for (int i = 0; i < b->n; i++) {
      size_t e = (size_t)b->ex[i];
      const double *W1 = x->W1 + e * h * f, *W2 = x->W2 + e * f * h;
      double *dW1 = x->res->dw1 + e * h * f, *dW2 = x->res->dw2 + e * f * h;
      const double *in = b->x + (size_t)i * h, *a = b->a + (size_t)i * f,
                   *hd = b->hd + (size_t)i * f, *go = b->dout + (size_t)i * h;
      double *gx = b->dx + (size_t)i * h;
      for (int j = 0; j < f; j++) {
        double s = 0;
        for (int k = 0; k < h; k++) {
          dW2[(size_t)j * h + k] += hd[j] * go[k];
          s += W2[(size_t)j * h + k] * go[k];
        }
        dh[j] = s * gelu_d(a[j]);
      }
      for (int k = 0; k < h; k++) {
        double s = 0;
        for (int j = 0; j < f; j++) {
          dW1[(size_t)k * f + j] += in[k] * dh[j];
          s += W1[(size_t)k * f + j] * dh[j];
        }
        gx[k] = s;
      }
    }
  }
  free(dh);
}

/* Lane r: input gradient (residual, experts, gate) and dW_g. */
static void lane_backward(moe_x_t *x, int r) {
  int T = x->T, h = x->h, E = x->E;
  lane_t *ln = &x->lane[r];
  double *dx = x->res->dx + (size_t)r * T * h;
  const double *X = x->X + (size_t)r * T * h;
  memcpy(dx, x->dY + (size_t)r * T * h, (size_t)T * h * sizeof(double));
  for (int q = 0; q < x->W; q++) {
    box_t *b = &x->box[(size_t)r * x->W + q];
    for (int i = 0; i < b->n; i++) {
      int t = b->tk[i] / 2;
      for (int k = 0; k < h; k++) dx[(size_t)t * h + k] += b->dx[(size_t)i * h + k];
    }
  }
  double *dp = malloc((size_t)E * sizeof *dp), *dl = malloc((size_t)E * sizeof *dl);
  double aux_scale = x->c->aux_weight * E / ((double)x->S * x->S);
  for (int t = 0; t < T; t++) {
    const double *p = ln->probs + (size_t)t * E;
    const int *top1 = ln->top1 + (size_t)(t / x->S) * E;
    for (int e = 0; e < E; e++) dp[e] = aux_scale * top1[e];
    int e1 = ln->expert[2 * t], e2 = ln->expert[2 * t + 1];
    double a = p[e1], bb = p[e2], den2 = (a + bb) * (a + bb);
    double g1 = ln->dgate[2 * t], g2 = ln->dgate[2 * t + 1];
    dp[e1] += (g1 - g2) * bb / den2;
    dp[e2] += (g2 - g1) * a / den2;
    double dot = 0;
    for (int e = 0; e < E; e++) dot += p[e] * dp[e];
    for (int e = 0; e < E; e++) dl[e] = p[e] * (dp[e] - dot);
    for (int k = 0; k < h; k++) {
      double s = 0;
      for (int e = 0; e < E; e++) {
        ln->dwg[(size_t)k * E + e] += X[(size_t)t * h + k] * dl[e];
        s += x->Wg[(size_t)k * E + e] * dl[e];
      }
      dx[(size_t)t * h + k] += s;
    }
  }
  free(dp);
  free(dl);
}

typedef struct worker {
  moe_x_t *x;
  int w;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *wk = arg;
  moe_x_t *x = wk->x;
  int lo, hi, w = wk->w;
  lanes_of(x, w, &lo, &hi);
  for (int r = lo; r < hi; r++) gate_dispatch(x, r);
  pthread_barrier_wait(&x->bar); /* dispatch all-to-all */
  experts_forward(x, w);
  pthread_barrier_wait(&x->bar); /* combine all-to-all */
  for (int r = lo; r < hi; r++) combine(x, r);
  pthread_barrier_wait(&x->bar); /* gradient of the combine */
  experts_backward(x, w);
  pthread_barrier_wait(&x->bar); /* gradient of the dispatch */
  for (int r = lo; r < hi; r++) lane_backward(x, r);
  return NULL;
}

static void fill(gsl_rng *g, double *a, size_t n, double scale) {
  for (size_t i = 0; i < n; i++) a[i] = scale * gsl_ran_gaussian_ziggurat(g, 1.0);
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
  moe_x_t x = {.c = c, .L = L, .E = E, .T = c->tokens, .h = c->hidden, .f = c->ffn, .W = threads};
  x.per = E / threads;
  x.S = m->group_size ? m->group_size : c->tokens;
  x.G = c->tokens / x.S;
  x.C = ts_moe_capacity(x.S, E, m->capacity_factor, m->capacity_multiple);
  size_t th = (size_t)L * x.T * x.h;
  x.X = malloc(th * sizeof(double));
  x.dY = malloc(th * sizeof(double));
  x.Wg = calloc((size_t)x.h * E, sizeof(double));
  x.W1 = malloc((size_t)E * x.h * x.f * sizeof(double));
  x.W2 = malloc((size_t)E * x.f * x.h * sizeof(double));
  gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(g, c->seed);
  fill(g, x.X, th, 1.0);
  fill(g, x.dY, th, 1.0);
  fill(g, x.W1, (size_t)E * x.h * x.f, 1.0 / sqrt(x.h));
  fill(g, x.W2, (size_t)E * x.f * x.h, 1.0 / sqrt(x.f));
  gsl_rng_free(g);
  double *target[4] = {NULL, x.X, x.Wg, x.W1};
  size_t tlen[4] = {0, th, (size_t)x.h * E, (size_t)E * x.h * x.f};
  if (c->eps_what > 0 && c->eps_what < 4 && c->eps_index < tlen[c->eps_what])
    target[c->eps_what][c->eps_index] += c->eps;

  out->lanes = L;
  out->E = E;
  out->tokens = x.T;
  out->hidden = x.h;
  out->ffn = x.f;
  out->y = calloc(th, sizeof(double));
  out->dx = calloc(th, sizeof(double));
  out->dwg = calloc((size_t)x.h * E, sizeof(double));
  out->dw1 = calloc((size_t)E * x.h * x.f, sizeof(double));
  out->dw2 = calloc((size_t)E * x.f * x.h, sizeof(double));
  out->kept = calloc((size_t)L * E, sizeof(int));
  out->received = calloc((size_t)L, sizeof(long));
  x.res = out;
  x.lane = calloc((size_t)L, sizeof *x.lane);
  for (int r = 0; r < L; r++) {
    lane_t *ln = &x.lane[r];
    ln->probs = malloc((size_t)x.T * E * sizeof(double));
    ln->expert = malloc((size_t)x.T * 2 * sizeof(int));
    ln->slot = malloc((size_t)x.T * 2 * sizeof(int));
    ln->gate = calloc((size_t)x.T * 2, sizeof(double));
    ln->dgate = calloc((size_t)x.T * 2, sizeof(double));
    ln->top1 = calloc((size_t)x.G * E, sizeof(int));
    ln->dwg = calloc((size_t)x.h * E, sizeof(double));
  }
  x.box = calloc((size_t)L * threads, sizeof *x.box);
  int rc = 0;
  pthread_barrier_init(&x.bar, NULL, (unsigned)threads);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  worker_t *wk = calloc((size_t)threads, sizeof *wk);
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
  for (int r = 0; r < L; r++) {
    out->dropped += x.lane[r].dropped;
    out->aux += x.lane[r].aux;
  }
  for (size_t i = 0; i < th; i++) out->loss += x.dY[i] * out->y[i];
  out->loss += c->aux_weight * out->aux;
  for (int r = 0; r < L; r++)
    for (size_t i = 0; i < (size_t)x.h * E; i++) out->dwg[i] += x.lane[r].dwg[i];
  for (size_t i = 0; i < (size_t)L * threads; i++) {
    box_t *b = &x.box[i];
    free(b->ex);
    free(b->tk);
    free(b->x);
    free(b->a);
    free(b->hd);
    free(b->out);
    free(b->dout);
    free(b->dx);
  }
  for (int r = 0; r < L; r++) {
    lane_t *ln = &x.lane[r];
    free(ln->probs);
    free(ln->expert);
    free(ln->slot);
    free(ln->gate);
    free(ln->dgate);
    free(ln->top1);
    free(ln->dwg);
  }
  free(x.lane);
  free(x.box);
  free(tid);
  free(wk);
  free(x.X);
  free(x.dY);
  free(x.Wg);
  free(x.W1);
  free(x.W2);
  return rc;
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
