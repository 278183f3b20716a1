/*
** test_ref_model.c: the reference model's math against its oracles.
**
** - Central finite differences (step 1e-6) against the analytic gradient of
**   every parameter kind of every block, and of the input.  The check runs at
**   a generic point: the parameters are redrawn with scale 0.4 (gains
**   1 + 0.2 N) so that no gradient is negligible next to the rounding of the
**   difference quotient (at the 0.02 initialisation the blocks are close to
**   the identity and the attention gradients are tiny), and the targets sit
**   at the outputs plus N(0, 0.05^2) noise, so that the loss, whose rounding
**   the quotient divides by 2h, is small next to its gradients.
** - Additivity: micro-batch gradients add up to the full-batch gradient,
**   because the loss is divided by the whole batch's sample count.
** - A two-stage split equals the one-piece pass; recompute is bitwise equal
**   to keeping everything.
** - The accounting allocator measures exactly the closed-form stash bytes.
** - Clones are independent and the same seed gives the same parameters.
** - Attention is causal and samples do not mix.
** Relative errors are normwise: max |a - b| / max |b| over a vector.
*/
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_model.h"
#include "tshelp.h"
#include "tsunit.h"
#include "ts_internal.h"

/* The brief's tiny config: layers 2, hidden 8, heads 2, ffn 16, seq 4. */
static ts_ref_config_t tiny(void) {
  ts_ref_config_t c = {.layers = 2, .hidden = 8, .heads = 2, .ffn = 16, .seq = 4, .seed = 1234};
  return c;
}

static void fill_gauss(double *a, size_t n, double scale, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (size_t i = 0; i < n; i++) a[i] = gsl_ran_gaussian(r, scale);
  gsl_rng_free(r);
}

/* Redraws every parameter at a generic point (see the file header). */
static void randomise(ts_ref_model_t *m, unsigned long seed) {
  const ts_ref_config_t *c = ts_ref_model_config(m);
  for (int l = 0; l < c->layers; l++) {
    size_t n;
    double *p = ts_ref_block_params(m, l, &n);
    fill_gauss(p, n, 0.4, seed + (unsigned long)l);
    for (int k = 0; k < TS_REF_PARAM_KINDS; k++) {
      if (k != TS_REF_LN1_GAIN && k != TS_REF_LN2_GAIN) continue;
      size_t len, off = ts_ref_block_param_offset(c, (ts_ref_param_t)k, &len);
      for (size_t i = 0; i < len; i++) p[off + i] = 1.0 + 0.5 * p[off + i];
    }
  }
}

static size_t act_len(const ts_ref_config_t *c, int mb) {
  return (size_t)mb * c->seq * c->hidden;
}

/* Loss of all blocks on mb samples, keeping nothing. */
static double loss_only(ts_ref_model_t *m, int mb, const double *x, const double *t,
                        double n_total) {
  const ts_ref_config_t *c = ts_ref_model_config(m);
  size_t n = act_len(c, mb);
  double *y = ts__xmalloc(n * sizeof(double));
  ts_ref_stash_t *st = ts_ref_forward(m, 0, c->layers, mb, x, y, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  ts_ref_stash_free(st, NULL);
  double loss = ts_ref_loss(y, t, n, n_total, NULL);
  free(y);
  return loss;
}

/* Forward, loss and backward of blocks [first, first+count) as one stage
** that is both first and last; accumulates into m, writes dx if non-NULL. */
static double full_pass(ts_ref_model_t *m, int mb, const double *x, const double *t,
                        double n_total, int keep, double *dx) {
  const ts_ref_config_t *c = ts_ref_model_config(m);
  size_t n = act_len(c, mb);
  double *y = ts__xmalloc(n * sizeof(double)), *dy = ts__xmalloc(n * sizeof(double));
  ts_ref_mem_t mem = {0};
  ts_ref_stash_t *st = ts_ref_forward(m, 0, c->layers, mb, x, y, keep, &mem);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  double loss = ts_ref_loss(y, t, n, n_total, dy);
  CU_ASSERT_EQUAL(ts_ref_backward(m, st, dy, dx, &mem), 0);
  CU_ASSERT_EQUAL(mem.cur, 0);
  free(y);
  free(dy);
  return loss;
}

/* Relative error of one finite-difference check.  The K part of the QKV bias
** has an exactly zero gradient (softmax ignores a per-row shift of the
** scores), so below 1e-9 in both the error is taken as absolute. */
static double fd_err(double a, double f) {
  double den = fmax(fabs(a), fabs(f));
  return den < 1e-9 ? fabs(a - f) : fabs(a - f) / den;
}

static void test_finite_difference(void) {
  ts_ref_config_t c = tiny();
  const int mb = 2;
  const double h = 1e-6;
  ts_ref_model_t *m = ts_ref_model_new(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  randomise(m, 99);
  size_t n = act_len(&c, mb);
  double *x = ts__xmalloc(n * sizeof(double)), *t = ts__xmalloc(n * sizeof(double));
  double *dx = ts__xmalloc(n * sizeof(double));
  fill_gauss(x, n, 1.0, 7);
  /* targets near the outputs: a small residual keeps the loss, and with it
  ** the rounding of L(p + h) - L(p - h), small next to the gradients */
  ts_ref_stash_free(ts_ref_forward(m, 0, c.layers, mb, x, t, 0, NULL), NULL);
  double *noise = ts__xmalloc(n * sizeof(double));
  fill_gauss(noise, n, 0.05, 8);
  for (size_t i = 0; i < n; i++) t[i] += noise[i];
  free(noise);
  double loss = full_pass(m, mb, x, t, mb, 1, dx);

  double worst = 0.0, smallest = INFINITY;
  int checked = 0;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 5);
  for (int l = 0; l < c.layers; l++) {
    size_t np;
    double *p = ts_ref_block_params(m, l, &np);
    const double *g = ts_ref_block_grad(m, l, &np);
    for (int k = 0; k < TS_REF_PARAM_KINDS; k++) {
      size_t len, off = ts_ref_block_param_offset(&c, (ts_ref_param_t)k, &len);
      for (int j = 0; j < 4; j++) {
        /* first and last element, and two random ones */
        size_t i = off + (j == 0 ? 0 : j == 1 ? len - 1 : gsl_rng_uniform_int(r, len));
        double keep = p[i];
        p[i] = keep + h;
        double lp = loss_only(m, mb, x, t, mb);
        p[i] = keep - h;
        double lm = loss_only(m, mb, x, t, mb);
        p[i] = keep;
        double fd = (lp - lm) / (2 * h), e = fd_err(g[i], fd);
        if (e > 1e-6)
          fprintf(stderr, "\n  block %d kind %d index %zu: analytic %.17g fd %.17g", l, k,
                  i - off, g[i], fd);
        worst = fmax(worst, e);
        if (fabs(fd) > 1e-9) smallest = fmin(smallest, fabs(fd));
        checked++;
      }
    }
  }
  gsl_rng_free(r);
  CU_ASSERT_EQUAL(checked, c.layers * TS_REF_PARAM_KINDS * 4);
  CU_ASSERT(worst <= 1e-6);

  double worst_x = 0.0;
  for (size_t i = 0; i < n; i++) {
    double keep = x[i];
    x[i] = keep + h;
    double lp = loss_only(m, mb, x, t, mb);
    x[i] = keep - h;
    double lm = loss_only(m, mb, x, t, mb);
    x[i] = keep;
    worst_x = fmax(worst_x, fd_err(dx[i], (lp - lm) / (2 * h)));
  }
  CU_ASSERT(worst_x <= 1e-6);
  printf("\n  fd: loss %.3g, %d params, worst rel %.3g (smallest |g| %.3g); dx worst rel %.3g ",
         loss, checked, worst, smallest, worst_x);
  free(x);
  free(t);
  free(dx);
  ts_ref_model_free(m);
}

static void test_microbatch_additivity(void) {
  ts_ref_config_t c = tiny();
  const int batch = 4;
  ts_ref_model_t *full = ts_ref_model_new(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(full);
  randomise(full, 3);
  size_t n = act_len(&c, batch), per = act_len(&c, 1);
  double *x = ts__xmalloc(n * sizeof(double)), *t = ts__xmalloc(n * sizeof(double));
  double *dx_full = ts__xmalloc(n * sizeof(double)), *dx_mb = ts__xmalloc(n * sizeof(double));
  fill_gauss(x, n, 1.0, 11);
  fill_gauss(t, n, 1.0, 12);
  double loss_full = full_pass(full, batch, x, t, batch, 1, dx_full);

  static const int mbs[] = {1, 2};
  for (int k = 0; k < 2; k++) {
    int mb = mbs[k];
    ts_ref_model_t *acc = ts_ref_model_clone(full);
    CU_ASSERT_PTR_NOT_NULL_FATAL(acc);
    ts_ref_model_zero_grad(acc);
    double loss = 0.0;
    for (int i = 0; i < batch / mb; i++) {
      size_t o = (size_t)i * mb * per;
      loss += full_pass(acc, mb, x + o, t + o, batch, 1, dx_mb + o);
    }
    double e = th_grad_error(acc, full), ex = th_rel_err(dx_mb, dx_full, n);
    printf("\n  %d x %d samples: grad rel %.3g, dx rel %.3g, loss rel %.3g ", batch / mb, mb, e,
           ex, fabs(loss - loss_full) / loss_full);
    CU_ASSERT(e <= 1e-12);
    CU_ASSERT(ex <= 1e-12);
    TS_ASSERT_REL(loss, loss_full, 1e-12);
    ts_ref_model_free(acc);
  }
  free(x);
  free(t);
  free(dx_full);
  free(dx_mb);
  ts_ref_model_free(full);
}

static void test_stage_split(void) {
  ts_ref_config_t c = tiny();
  const int mb = 2;
  ts_ref_model_t *one = ts_ref_model_new(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(one);
  randomise(one, 21);
  ts_ref_model_t *s0 = ts_ref_model_clone(one), *s1 = ts_ref_model_clone(one);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
  size_t n = act_len(&c, mb);
  double *x = ts__xmalloc(n * sizeof(double)), *t = ts__xmalloc(n * sizeof(double));
  double *dx_one = ts__xmalloc(n * sizeof(double)), *dx_split = ts__xmalloc(n * sizeof(double));
  double *a = ts__xmalloc(n * sizeof(double)), *y = ts__xmalloc(n * sizeof(double));
  double *dy = ts__xmalloc(n * sizeof(double)), *da = ts__xmalloc(n * sizeof(double));
  fill_gauss(x, n, 1.0, 31);
  fill_gauss(t, n, 1.0, 32);
  double loss_one = full_pass(one, mb, x, t, mb, 1, dx_one);

  ts_ref_mem_t m0 = {0}, m1 = {0};
  ts_ref_stash_t *st0 = ts_ref_forward(s0, 0, 1, mb, x, a, 1, &m0);
  ts_ref_stash_t *st1 = ts_ref_forward(s1, 1, 1, mb, a, y, 1, &m1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st1);
  double loss = ts_ref_loss(y, t, n, mb, dy);
  CU_ASSERT_EQUAL(ts_ref_backward(s1, st1, dy, da, &m1), 0);
  CU_ASSERT_EQUAL(ts_ref_backward(s0, st0, da, dx_split, &m0), 0);
  CU_ASSERT_EQUAL(m0.cur + m1.cur, 0);
  /* the stash, and the backward's gradient buffers while it runs */
  CU_ASSERT_EQUAL(m0.peak, ts_ref_stash_bytes(&c, 1, mb) + ts_ref_backward_work_bytes(&c, mb));

  size_t np;
  const double *g1 = ts_ref_block_grad(one, 0, &np);
  double e0 = th_rel_err(ts_ref_block_grad(s0, 0, &np), g1, np);
  double e1 = th_rel_err(ts_ref_block_grad(s1, 1, &np), ts_ref_block_grad(one, 1, &np), np);
  double ex = th_rel_err(dx_split, dx_one, n);
  printf("\n  split: block0 %.3g block1 %.3g dx %.3g ", e0, e1, ex);
  CU_ASSERT(e0 <= 1e-12);
  CU_ASSERT(e1 <= 1e-12);
  CU_ASSERT(ex <= 1e-12);
  TS_ASSERT_REL(loss, loss_one, 1e-12);
  /* each stage touched only its own block */
  const double *untouched = ts_ref_block_grad(s0, 1, &np);
  double mx = 0.0;
  for (size_t i = 0; i < np; i++) mx = fmax(mx, fabs(untouched[i]));
  CU_ASSERT_EQUAL(mx, 0.0);

  free(x); free(t); free(dx_one); free(dx_split); free(a); free(y); free(dy); free(da);
  ts_ref_model_free(one);
  ts_ref_model_free(s0);
  ts_ref_model_free(s1);
}

/* keep=1, keep=0 + ts_ref_recompute, and keep=0 straight into backward all
** give the same bits. */
static void test_recompute_bitwise(void) {
  ts_ref_config_t c = tiny();
  const int mb = 2;
  ts_ref_model_t *a = ts_ref_model_new(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  randomise(a, 41);
  ts_ref_model_t *b = ts_ref_model_clone(a), *d = ts_ref_model_clone(a);
  size_t n = act_len(&c, mb);
  double *x = ts__xmalloc(n * sizeof(double)), *t = ts__xmalloc(n * sizeof(double));
  double *ya = ts__xmalloc(n * sizeof(double)), *yb = ts__xmalloc(n * sizeof(double));
  double *dy = ts__xmalloc(n * sizeof(double));
  double *dxa = ts__xmalloc(n * sizeof(double)), *dxb = ts__xmalloc(n * sizeof(double));
  double *dxd = ts__xmalloc(n * sizeof(double));
  fill_gauss(x, n, 1.0, 43);
  fill_gauss(t, n, 1.0, 44);

  ts_ref_mem_t ma = {0}, mb_ = {0}, md = {0};
  ts_ref_stash_t *sa = ts_ref_forward(a, 0, 2, mb, x, ya, 1, &ma);
  ts_ref_stash_t *sb = ts_ref_forward(b, 0, 2, mb, x, yb, 0, &mb_);
  ts_ref_stash_t *sd = ts_ref_forward(d, 0, 2, mb, x, yb, 0, &md);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sd);
  CU_ASSERT(memcmp(ya, yb, n * sizeof(double)) == 0);
  CU_ASSERT(ts_ref_stash_is_full(sa));
  CU_ASSERT(!ts_ref_stash_is_full(sb));
  CU_ASSERT_EQUAL(ts_ref_recompute(b, sb, &mb_), 0);
  CU_ASSERT(ts_ref_stash_is_full(sb));
  ts_ref_loss(ya, t, n, mb, dy);
  CU_ASSERT_EQUAL(ts_ref_backward(a, sa, dy, dxa, &ma), 0);
  CU_ASSERT_EQUAL(ts_ref_backward(b, sb, dy, dxb, &mb_), 0);
  CU_ASSERT_EQUAL(ts_ref_backward(d, sd, dy, dxd, &md), 0); /* recomputes itself */
  CU_ASSERT(memcmp(dxa, dxb, n * sizeof(double)) == 0);
  CU_ASSERT(memcmp(dxa, dxd, n * sizeof(double)) == 0);
  for (int l = 0; l < c.layers; l++) {
    size_t np;
    const double *ga = ts_ref_block_grad(a, l, &np);
    CU_ASSERT(memcmp(ga, ts_ref_block_grad(b, l, &np), np * sizeof(double)) == 0);
    CU_ASSERT(memcmp(ga, ts_ref_block_grad(d, l, &np), np * sizeof(double)) == 0);
  }
  CU_ASSERT_EQUAL(ma.cur + mb_.cur + md.cur, 0);
  free(x); free(t); free(ya); free(yb); free(dy); free(dxa); free(dxb); free(dxd);
  ts_ref_model_free(a);
  ts_ref_model_free(b);
  ts_ref_model_free(d);
}

static void test_allocator(void) {
  /* the closed forms against independent numbers: tiny, 1 block, 1 sample:
  ** 8 * 4 * (6*8 + 2*16 + 2 + 2*4) = 2880; input 8 * 4 * 8 = 256 */
  ts_ref_config_t c = tiny();
  CU_ASSERT_EQUAL(ts_ref_stash_bytes(&c, 1, 1), 2880);
  CU_ASSERT_EQUAL(ts_ref_stash_bytes(&c, 2, 3), 2 * 3 * 2880);
  CU_ASSERT_EQUAL(ts_ref_stash_input_bytes(&c, 1), 256);
  CU_ASSERT_EQUAL(ts_ref_stash_bytes(&c, 0, 1), 0);

  /* an odd shape so that no term hides another */
  ts_ref_config_t o = {.layers = 3, .hidden = 12, .heads = 3, .ffn = 20, .seq = 5, .seed = 9};
  ts_ref_model_t *m = ts_ref_model_new(&o);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  for (int mb = 1; mb <= 3; mb++) {
    for (int count = 1; count <= 3; count++) {
      int first = o.layers - count;
      size_t n = act_len(&o, mb), full = ts_ref_stash_bytes(&o, count, mb);
      size_t in = ts_ref_stash_input_bytes(&o, mb);
      CU_ASSERT_EQUAL(full, 8u * count * mb * 5 * (6 * 12 + 2 * 20 + 2 + 3 * 5));
      CU_ASSERT_EQUAL(in, 8u * mb * 5 * 12);
      double *x = ts__xmalloc(n * sizeof(double)), *y = ts__xmalloc(n * sizeof(double));
      double *dx = ts__xmalloc(n * sizeof(double));
      fill_gauss(x, n, 1.0, 50 + (unsigned long)mb);

      ts_ref_mem_t mem = {0};
      ts_ref_stash_t *st = ts_ref_forward(m, first, count, mb, x, y, 1, &mem);
      CU_ASSERT_PTR_NOT_NULL_FATAL(st);
      CU_ASSERT_EQUAL(mem.cur, full);
      CU_ASSERT_EQUAL(mem.peak, full);
      CU_ASSERT_EQUAL(ts_ref_stash_held_bytes(st), full);
      /* the backward's gradient buffers: 8 (8 n d + n f + s^2), n = 5 mb */
      size_t work = ts_ref_backward_work_bytes(&o, mb);
      CU_ASSERT_EQUAL(work, 8u * (8 * 5 * mb * 12 + 5 * mb * 20 + 25));
      CU_ASSERT_EQUAL(ts_ref_backward_transient_bytes(&o, mb), work + 2 * in);
      CU_ASSERT_EQUAL(ts_ref_backward(m, st, y, dx, &mem), 0);
      CU_ASSERT_EQUAL(mem.cur, 0);
      CU_ASSERT_EQUAL(mem.peak, full + work);

      /* input only, then recompute: afterwards the full bytes and the input
      ** (kept until the backward ends, as a checkpoint keeps it) */
      ts_ref_mem_t rm = {0};
      st = ts_ref_forward(m, first, count, mb, x, y, 0, &rm);
      CU_ASSERT_PTR_NOT_NULL_FATAL(st);
      CU_ASSERT_EQUAL(rm.cur, in);
      CU_ASSERT_EQUAL(rm.peak, in);
      CU_ASSERT_EQUAL(ts_ref_recompute(m, st, &rm), 0);
      CU_ASSERT_EQUAL(rm.cur, full + in);
      CU_ASSERT_EQUAL(rm.peak, full + in);
      CU_ASSERT_EQUAL(ts_ref_backward(m, st, y, dx, &rm), 0);
      CU_ASSERT_EQUAL(rm.cur, 0);
      CU_ASSERT_EQUAL(rm.peak, full + in + work);

      /* two micro-batches in flight (1F1B warm-up), then discarded */
      ts_ref_mem_t fm = {0};
      ts_ref_stash_t *s1 = ts_ref_forward(m, first, count, mb, x, y, 1, &fm);
      ts_ref_stash_t *s2 = ts_ref_forward(m, first, count, mb, x, y, 0, &fm);
      CU_ASSERT_EQUAL(fm.cur, full + in);
      ts_ref_stash_free(s1, &fm);
      CU_ASSERT_EQUAL(fm.cur, in);
      ts_ref_stash_free(s2, &fm);
      CU_ASSERT_EQUAL(fm.cur, 0);
      CU_ASSERT_EQUAL(fm.peak, full + in);
      free(x);
      free(y);
      free(dx);
    }
  }
  /* bad ranges give NULL and count nothing */
  ts_ref_mem_t bad = {0};
  double buf[5 * 12];
  CU_ASSERT_PTR_NULL(ts_ref_forward(m, 2, 2, 1, buf, buf, 1, &bad));
  CU_ASSERT_PTR_NULL(ts_ref_forward(m, -1, 1, 1, buf, buf, 1, &bad));
  CU_ASSERT_PTR_NULL(ts_ref_forward(m, 0, 1, 0, buf, buf, 1, &bad));
  CU_ASSERT_EQUAL(bad.peak, 0);
  ts_ref_model_free(m);
}

static void test_clone_and_determinism(void) {
  ts_ref_config_t c = tiny();
  ts_ref_model_t *a = ts_ref_model_new(&c), *b = ts_ref_model_new(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  size_t np = ts_ref_block_param_count(&c);
  CU_ASSERT_EQUAL(np, 4 * 64 + 2 * 8 * 16 + 9 * 8 + 16);
  size_t total = 0;
  for (int k = 0; k < TS_REF_PARAM_KINDS; k++) {
    size_t len;
    CU_ASSERT_EQUAL(ts_ref_block_param_offset(&c, (ts_ref_param_t)k, &len), total);
    total += len;
  }
  CU_ASSERT_EQUAL(total, np);
  for (int l = 0; l < c.layers; l++) {
    size_t n;
    double *pa = ts_ref_block_params(a, l, &n), *pb = ts_ref_block_params(b, l, &n);
    CU_ASSERT_EQUAL(n, np);
    CU_ASSERT(memcmp(pa, pb, n * sizeof(double)) == 0);
  }
  /* the initialisation is what the header says */
  double *p = ts_ref_block_params(a, 0, NULL);
  size_t len, off = ts_ref_block_param_offset(&c, TS_REF_LN1_GAIN, &len);
  CU_ASSERT(fabs(p[off] - 1.0) < 0.2);
  off = ts_ref_block_param_offset(&c, TS_REF_QKV_WEIGHT, &len);
  double ss = 0.0;
  for (size_t i = 0; i < len; i++) ss += p[off + i] * p[off + i];
  CU_ASSERT(fabs(sqrt(ss / (double)len) - 0.02) < 0.004);

  ts_ref_config_t c2 = c;
  c2.seed = 4321;
  ts_ref_model_t *o = ts_ref_model_new(&c2);
  CU_ASSERT(memcmp(ts_ref_block_params(a, 0, NULL), ts_ref_block_params(o, 0, NULL),
                   np * sizeof(double)) != 0);
  ts_ref_model_free(o);

  /* clone: equal, then independent both ways */
  const int mb = 1;
  size_t n = act_len(&c, mb);
  double *x = ts__xmalloc(n * sizeof(double)), *t = ts__xmalloc(n * sizeof(double));
  fill_gauss(x, n, 1.0, 61);
  fill_gauss(t, n, 1.0, 62);
  full_pass(a, mb, x, t, mb, 1, NULL);
  ts_ref_model_t *k = ts_ref_model_clone(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  CU_ASSERT_EQUAL(th_grad_error(k, a), 0.0);
  double *save = ts__xmalloc(np * sizeof(double));
  memcpy(save, ts_ref_block_grad(a, 1, NULL), np * sizeof(double));
  double p0 = ts_ref_block_params(a, 1, NULL)[3];
  ts_ref_block_params(k, 1, NULL)[3] += 1.0;
  full_pass(k, mb, x, t, mb, 1, NULL);
  CU_ASSERT_EQUAL(ts_ref_block_params(a, 1, NULL)[3], p0);
  CU_ASSERT(memcmp(save, ts_ref_block_grad(a, 1, NULL), np * sizeof(double)) == 0);
  ts_ref_model_zero_grad(a);
  CU_ASSERT(th_rel_err(ts_ref_block_grad(k, 1, NULL), save, np) > 0.0);
  CU_ASSERT_EQUAL(ts_ref_block_grad(a, 1, NULL)[0], 0.0);
  CU_ASSERT_PTR_NULL(ts_ref_block_grad(a, 2, NULL));
  CU_ASSERT_PTR_NULL(ts_ref_block_params(a, -1, NULL));
  free(save);
  free(x);
  free(t);
  ts_ref_model_free(k);
  ts_ref_model_free(a);
  ts_ref_model_free(b);

  /* bad configs */
  ts_ref_config_t bad = c;
  bad.heads = 3;
  CU_ASSERT_PTR_NULL(ts_ref_model_new(&bad));
  bad = c;
  bad.seq = 0;
  CU_ASSERT_PTR_NULL(ts_ref_model_new(&bad));
  bad = c;
  bad.ffn = -4;
  CU_ASSERT_PTR_NULL(ts_ref_model_new(&bad));
  CU_ASSERT_PTR_NULL(ts_ref_model_new(NULL));
  CU_ASSERT_PTR_NULL(ts_ref_model_clone(NULL));
  ts_ref_model_free(NULL);
  ts_ref_stash_free(NULL, NULL);
}

/* Token i's output depends on tokens 0..i of its own sample only: changing
** the last token of sample 0 leaves every earlier token and sample 1 exactly
** as they were (masked probabilities are exact zeros). */
static void test_causal(void) {
  ts_ref_config_t c = tiny();
  const int mb = 2;
  ts_ref_model_t *m = ts_ref_model_new(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  randomise(m, 71);
  size_t n = act_len(&c, mb), row = (size_t)c.hidden;
  double *x = ts__xmalloc(n * sizeof(double)), *y0 = ts__xmalloc(n * sizeof(double));
  double *y1 = ts__xmalloc(n * sizeof(double));
  fill_gauss(x, n, 1.0, 72);
  ts_ref_stash_free(ts_ref_forward(m, 0, c.layers, mb, x, y0, 0, NULL), NULL);
  for (size_t j = 0; j < row; j++) x[(c.seq - 1) * row + j] += 0.5;
  ts_ref_stash_free(ts_ref_forward(m, 0, c.layers, mb, x, y1, 0, NULL), NULL);
  CU_ASSERT(memcmp(y0, y1, (c.seq - 1) * row * sizeof(double)) == 0);
  CU_ASSERT(memcmp(y0 + c.seq * row, y1 + c.seq * row, c.seq * row * sizeof(double)) == 0);
  CU_ASSERT(memcmp(y0 + (c.seq - 1) * row, y1 + (c.seq - 1) * row, row * sizeof(double)) != 0);
  free(x);
  free(y0);
  free(y1);
  ts_ref_model_free(m);
}

static void test_loss_and_flops(void) {
  double y[3] = {1.0, 2.0, -1.0}, t[3] = {0.5, 2.0, 1.0}, dy[3];
  /* 0.5 * (0.25 + 0 + 4) / 2 */
  CU_ASSERT_DOUBLE_EQUAL(ts_ref_loss(y, t, 3, 2.0, dy), 1.0625, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(dy[0], 0.25, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(dy[1], 0.0, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(dy[2], -1.0, 1e-15);
  /* d 8, f 16, s 4, 2 samples (n = 8 tokens):
  ** QKV 2*8*8*24 = 3072, proj 2*8*8*8 = 1024, FC1 and FC2 2*8*8*16 = 2048
  ** each, scores and values 2 * (2 samples * 2 heads * 2*4*4*4) = 1024 */
  ts_ref_config_t c = tiny();
  CU_ASSERT_DOUBLE_EQUAL(ts_ref_block_forward_flops(&c, 2), 3072 + 1024 + 4096 + 1024, 0.0);
  /* Megatron's 24 b s h^2 + 4 b s^2 h at f = 4h */
  ts_ref_config_t g = {.layers = 1, .hidden = 64, .heads = 4, .ffn = 256, .seq = 32};
  TS_ASSERT_REL(ts_ref_block_forward_flops(&g, 3), 24.0 * 3 * 32 * 64 * 64 + 4.0 * 3 * 32 * 32 * 64,
                1e-15);
}

TS_TESTS {
  TS_TEST(test_finite_difference),
  TS_TEST(test_microbatch_additivity),
  TS_TEST(test_stage_split),
  TS_TEST(test_recompute_bitwise),
  TS_TEST(test_allocator),
  TS_TEST(test_clone_and_determinism),
  TS_TEST(test_causal),
  TS_TEST(test_loss_and_flops),
};

TS_TEST_MAIN("ref_model")
