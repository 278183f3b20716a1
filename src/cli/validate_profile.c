/*
** validate_profile.c: the measurements `trainsim validate` feeds the
** simulator (validate_internal.h): this machine's op times, profiled on one
** thread exactly as the reference executor performs each op, the copy of
** one message, the twin platform made of them, and the op times a measured
** run actually took (for the replay).
*/
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "validate_internal.h"
#include "ts_internal.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void fill(double *a, size_t n, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (size_t i = 0; i < n; i++) a[i] = gsl_ran_gaussian(r, 1.0);
  gsl_rng_free(r);
}

/* ---- step 2: profile ------------------------------------------------------ */

/* Buffers for timing one model part as the executor runs it. */
typedef struct vbufs {
  size_t n;
  double *x, *y, *g, *tg, *dx;
} vbufs_t;

/* Times one forward, recompute (full only) and backward of blocks [first,
** first + count) as the executor runs them (the last stage's backward
** includes its loss; the first stage's computes no input gradient); the
** seconds go to t[TS_FORWARD], t[TS_RECOMPUTE] and t[TS_BACKWARD]. */
static int time_part(ts_ref_model_t *m, const ts_job_t *job, const vbufs_t *b, int first,
                     int count, bool is_first, bool is_last, double t[TS_COMPUTE_KINDS]) {
  int mbs = job->micro_batch_size, rc = 0;
  bool full = job->recompute == TS_RECOMPUTE_FULL;
  double N = (double)job->microbatches * job->iterations * mbs;
  ts_ref_mem_t mem = {0};
  double t0 = now_s();
  ts_ref_stash_t *st = ts_ref_forward(m, first, count, mbs, b->x, b->y, !full, &mem);
  double t1 = now_s();
  if (!st) return EX_OSERR;
  if (full && ts_ref_recompute(m, st, &mem)) rc = EX_OSERR;
  double t2 = now_s();
  const double *dy = b->g;
  if (is_last) {
    ts_ref_loss(b->y, b->tg, b->n, N, b->y);
    dy = b->y;
  }
  if (!rc && ts_ref_backward(m, st, dy, is_first ? NULL : b->dx, &mem)) rc = EX_OSERR;
  double t3 = now_s();
  if (rc) ts_ref_stash_free(st, &mem);
  t[TS_FORWARD] = t1 - t0;
  t[TS_RECOMPUTE] = full ? t2 - t1 : t1 - t0;
  t[TS_BACKWARD] = t3 - t2;
  return rc;
}

/* A send: malloc + memcpy, freeing the previous buffer; fastest of reps. */
static double profile_copy(size_t nb, int reps) {
  int R = 8 * reps + 1;
  char *src = ts__xmalloc(nb ? nb : 1), *prev = NULL;
  double best = INFINITY;
  memset(src, 1, nb);
  for (int r = 0; r < R; r++) {
    double t0 = now_s();
    char *msg = ts__xmalloc(nb ? nb : 1);
    memcpy(msg, src, nb);
    free(prev);
    prev = msg;
    double t = now_s() - t0;
    if (r > 0 && t < best) best = t;
  }
  free(prev);
  free(src);
  return isfinite(best) ? best : 0;
}

/* Profiles every part: one warm-up round, then reps rounds over all parts
** (round robin, so a burst of load elsewhere hits one round of every part
** rather than every round of one part), keeping each op's fastest time:
** load from other processes only ever adds time, so the minimum estimates
** the undisturbed op.  Sums per stage into pf. */
int ts__validate_profile(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                         const ts_ref_config_t *cfg, ts__vprof_t *pf, ts_err_t *err) {
  int p = job->stages, P = cost->n_parts;
  pf->fwd = ts__xcalloc((size_t)p, sizeof(double));
  pf->bwd = ts__xcalloc((size_t)p, sizeof(double));
  pf->rec = ts__xcalloc((size_t)p, sizeof(double));
  double *best = ts__xmalloc((size_t)P * TS_COMPUTE_KINDS * sizeof *best);
  vbufs_t b = {.n = (size_t)job->micro_batch_size * (size_t)cfg->seq * (size_t)cfg->hidden};
  b.x = ts__xmalloc(b.n * sizeof(double));
  b.y = ts__xmalloc(b.n * sizeof(double));
  b.g = ts__xmalloc(b.n * sizeof(double));
  b.tg = ts__xmalloc(b.n * sizeof(double));
  b.dx = ts__xmalloc(b.n * sizeof(double));
  ts_ref_model_t *m = ts_ref_model_new(cfg);
  int rc = m ? 0 : EX_OSERR;
  if (!rc) {
    fill(b.x, b.n, 11);
    fill(b.g, b.n, 12);
    fill(b.tg, b.n, 13);
    for (int i = 0; i < P * TS_COMPUTE_KINDS; i++) best[i] = INFINITY;
  }
  for (int r = 0; !rc && r <= pf->reps; r++) {
    for (int k = 0; !rc && k < P; k++) {
      bool is_first = false, is_last = false, used = false;
      for (int v = 0; v < lay->n_vstages; v++) {
        if (lay->part[v] != k) continue;
        used = true;
        is_first |= lay->prev[v] < 0;
        is_last |= lay->next[v] < 0;
      }
      if (!used) continue;
      double t[TS_COMPUTE_KINDS] = {0};
      rc = time_part(m, job, &b, cost->part[k].first_layer, cost->part[k].n_layers, is_first,
                     is_last, t);
      for (int c = 0; r > 0 && c < TS_COMPUTE_KINDS; c++) /* round 0 warms up */
        if (t[c] < best[k * TS_COMPUTE_KINDS + c]) best[k * TS_COMPUTE_KINDS + c] = t[c];
    }
  }
  for (int k = 0; !rc && k < P; k++) {
    const double *bk = best + k * TS_COMPUTE_KINDS;
    if (!isfinite(bk[TS_FORWARD])) continue; /* a part no stage uses */
    pf->fwd[k % p] += bk[TS_FORWARD];
    pf->bwd[k % p] += bk[TS_BACKWARD];
    pf->rec[k % p] += bk[TS_RECOMPUTE];
  }
  ts_ref_model_free(m);
  free(best);
  free(b.x);
  free(b.y);
  free(b.g);
  free(b.tg);
  free(b.dx);
  if (rc) return ts_err_set(err, EX_OSERR, "validate: out of memory profiling '%s'", job->path);
  pf->msg_bytes = (double)ts_ref_stash_input_bytes(cfg, job->micro_batch_size);
  pf->copy_s = profile_copy((size_t)pf->msg_bytes, pf->reps);
  pf->bandwidth = pf->copy_s > 0 ? pf->msg_bytes / pf->copy_s : 1e12;
  return 0;
}

/* ---- step 3: platform ----------------------------------------------------- */

/* The platform text: hosts cpu0 .. cpu<n-1>, a link per ordered pair. */
char *ts__validate_platform_xml(int n, const ts__vprof_t *pf) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fprintf(f,
          "<?xml version='1.0'?>\n"
          "<!--\n"
          "  trainsim validate: this machine as a platform.  One host per pipeline\n"
          "  device (a thread of the reference executor); a send is a copy in the\n"
          "  sender's thread of %.0f bytes, measured at %.6g s, so every ordered\n"
          "  pair of hosts has its own link of %.0f B/s and %g s latency.\n"
          "  Host speed is arbitrary: the twin job gives seconds, not FLOPs.\n"
          "-->\n"
          "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
          "<platform version=\"4.1\">\n"
          "  <zone id=\"cpu\" routing=\"Full\">\n",
          pf->msg_bytes, pf->copy_s, floor(pf->bandwidth), TS__V_LATENCY);
  for (int i = 0; i < n; i++) fprintf(f, "    <host id=\"cpu%d\" speed=\"1000000000f\"/>\n", i);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j)
        fprintf(f, "    <link id=\"copy-%d-%d\" bandwidth=\"%.0fBps\" latency=\"%gs\"/>\n", i, j,
                floor(pf->bandwidth) > 0 ? floor(pf->bandwidth) : 1, TS__V_LATENCY);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j)
        fprintf(f,
                "    <route src=\"cpu%d\" dst=\"cpu%d\" symmetrical=\"NO\"><link_ctn "
                "id=\"copy-%d-%d\"/></route>\n",
                i, j, i, j);
  fprintf(f, "  </zone>\n</platform>\n");
  if (fclose(f)) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* ---- the replay's op times ---------------------------------------------- */

/* The stage seconds a run actually took: per part and kind the mean
** duration of its ops, summed over the parts of each stage (part k is in
** stage k % stages).  A split backward's halves count as one backward. */
void ts__validate_stage_seconds(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                                const ts_run_t *run, double *f, double *b, double *r) {
  int P = cost->n_parts, p = job->stages;
  double *sum = ts__xcalloc((size_t)P * 3, sizeof *sum);
  int *cnt = ts__xcalloc((size_t)P * 3, sizeof *cnt);
  for (int s = 0; s < p; s++) f[s] = b[s] = r[s] = 0;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    if (!ts_kind_is_compute(e->kind)) continue;
    int k = lay->part[e->vstage];
    int col = e->kind == TS_FORWARD ? 0 : e->kind == TS_RECOMPUTE ? 2 : 1;
    sum[3 * k + col] += e->end - e->start;
    /* The halves of a split backward make one backward: count B only. */
    cnt[3 * k + col] += e->kind != TS_WEIGHT_GRAD;
  }
  for (int k = 0; k < P; k++) {
    double *dst[3] = {f, b, r};
    for (int c = 0; c < 3; c++)
      if (cnt[3 * k + c]) dst[c][k % p] += sum[3 * k + c] / cnt[3 * k + c];
  }
  for (int s = 0; s < p; s++)
    if (r[s] == 0) r[s] = f[s];
  free(sum);
  free(cnt);
}
