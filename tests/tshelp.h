/*
** tshelp.h: helpers shared by trainsim's tests: temporary files, loading
** and running a job given as a JSON string through the library, a
** device's compute ops in program order, normwise relative errors of
** arrays and of reference models' gradients or weight changes, a faulty
** schedule program for the runtime's checks, and running the trainsim
** command (whose path ctest passes in $TRAINSIM).  Every
** helper is static inline, so a test uses what it needs and nothing else.
*/
#ifndef TSHELP_H
#define TSHELP_H

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched_util.h"
#include "trainsim.h"
#include "ts_ref.h"
#include "ts_exec.h"
#include "ts_out.h"
#include "ts_sim.h"
#include "ts_internal.h"

/* Writes text to a new temporary file named like "/tmp/ts-test-XXXXXX<suffix>";
** returns the path (static buffer rotated among 8). */
static inline const char *th_write_tmp(const char *text, const char *suffix) {
  static char bufs[8][64];
  static int k;
  char *p = bufs[k++ % 8];
  snprintf(p, 64, "/tmp/ts-test-XXXXXX%s", suffix);
  int fd = mkstemps(p, (int)strlen(suffix));
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  return p;
}

/* Writes a star platform to a temporary file and returns its path
** (th_write_tmp): hosts h0 .. h<n-1> at 1 TFLOP/s, host h<i> behind its own
** SPLITDUPLEX link l<i> (bandwidth bw B/s, latency lat s), with explicit
** routes l<i>_UP, l<j>_DOWN for every ordered pair, so that a message of S
** bytes between two hosts takes 2 lat + S / bw and a host's messages share
** its uplink.  NULL when n is too large for the buffer. */
static inline const char *th_star_platform(int n, double bw, double lat) {
  static char xml[1 << 17];
  size_t cap = sizeof xml;
  int k = snprintf(xml, cap,
                   "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                   "<platform version=\"4.1\">\n<zone id=\"z\" routing=\"Full\">\n");
  for (int i = 0; i < n && (size_t)k < cap; i++)
    k += snprintf(xml + k, cap - (size_t)k, "  <host id=\"h%d\" speed=\"1e12f\"/>\n", i);
  for (int i = 0; i < n && (size_t)k < cap; i++)
    k += snprintf(xml + k, cap - (size_t)k,
                  "  <link id=\"l%d\" bandwidth=\"%.17gBps\" latency=\"%.17gs\" "
                  "sharing_policy=\"SPLITDUPLEX\"/>\n",
                  i, bw, lat);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n && (size_t)k < cap; j++)
      if (i != j)
        k += snprintf(xml + k, cap - (size_t)k,
                      "  <route src=\"h%d\" dst=\"h%d\" symmetrical=\"NO\"><link_ctn id=\"l%d\" "
                      "direction=\"UP\"/><link_ctn id=\"l%d\" direction=\"DOWN\"/></route>\n",
                      i, j, i, j);
  if ((size_t)k >= cap) return NULL;
  snprintf(xml + k, cap - (size_t)k, "</zone>\n</platform>\n");
  return th_write_tmp(xml, ".xml");
}

/* Reads a whole file into a malloc'd NUL-terminated string; its length goes
** to *len when len is not NULL.  NULL when the file cannot be opened or
** read (ts__read_file). */
static inline char *th_slurp(const char *path, size_t *len) { return ts__read_file(path, len); }

/* Loads the job text (with optional --set strings, n_sets of them) through
** a temporary file, which is removed again.  Returns 0 with the new job in
** *job (the caller frees it with ts_job_free), or ts_job_load's error code
** with err filled. */
static inline int th_job_from_json(const char *json, const char *const *sets, int n_sets,
                                   ts_job_t **job, ts_err_t *err) {
  const char *path = th_write_tmp(json, ".json");
  int rc = ts_job_load(path, sets, n_sets, job, err);
  unlink(path);
  return rc;
}

/* Loads the job text (no --set strings) and asserts that it loads; prints
** "job: MESSAGE" on stderr when it does not.  Returns the job (the caller
** frees it) or NULL. */
static inline ts_job_t *th_load_job(const char *json) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = th_job_from_json(json, NULL, 0, &job, &err);
  if (rc) fprintf(stderr, "job: %s\n", err.msg);
  CU_ASSERT_EQUAL(rc, 0);
  return rc ? NULL : job;
}

/* Loads the job text (with optional --set strings) and simulates it.
** Returns 0 and fills o, or the error code with err filled. */
static inline int th_simulate(const char *json, const char *const *sets, int n_sets, ts_job_t **job,
                              ts_outcome_t *o, ts_err_t *err) {
  int rc = th_job_from_json(json, sets, n_sets, job, err);
  if (rc) return rc;
  return ts_simulate(*job, o, err);
}

/* Compute ops of device d in program order (ascending seq from 0, up to the
** first seq the device lacks), as (kind, vstage, mb) triples into ops (at
** most cap ints; the rest are counted, not stored); returns 3 x their
** count. */
static inline int th_device_ops(const ts_run_t *r, int d, int *ops, int cap) {
  int n = 0;
  for (int s = 0;; s++) {
    int found = 0;
    for (int i = 0; i < r->n_events; i++) {
      const ts_event_t *e = &r->events[i];
      if (e->device != d || !ts_kind_is_compute(e->kind) || e->seq != s) continue;
      if (n + 3 <= cap) {
        ops[n] = e->kind;
        ops[n + 1] = e->vstage;
        ops[n + 2] = e->mb;
      }
      n += 3;
      found = 1;
    }
    if (!found) return n;
  }
}

/* Normwise relative error max |a - b| / max |b - base| of n doubles (base
** NULL: zero).  0 when both are 0; INFINITY when only the numerator is. */
static inline double th_rel_err_from(const double *a, const double *b, const double *base,
                                     size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num = fmax(num, fabs(a[i] - b[i]));
    den = fmax(den, fabs(b[i] - (base ? base[i] : 0)));
  }
  return den > 0 ? num / den : (num > 0 ? INFINITY : 0);
}

/* Normwise relative error max |a - b| / max |b| of n doubles (see
** th_rel_err_from). */
static inline double th_rel_err(const double *a, const double *b, size_t n) {
  return th_rel_err_from(a, b, NULL, n);
}

/* The worst, over a's blocks, of the normwise relative error of a's block
** gradients against b's; a NaN error counts as the worst. */
static inline double th_grad_error(const ts_ref_model_t *a, const ts_ref_model_t *b) {
  double worst = 0;
  for (int l = 0; l < ts_ref_model_config(a)->layers; l++) {
    size_t n;
    const double *ga = ts_ref_block_grad(a, l, &n), *gb = ts_ref_block_grad(b, l, &n);
    double e = th_rel_err(ga, gb, n);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

/* The worst, over a's blocks, of the normwise relative error of the weight
** change: max |a - b| / max |b - w0|, w0 the initial parameters; a NaN
** error counts as the worst. */
static inline double th_update_error(ts_ref_model_t *a, ts_ref_model_t *b, ts_ref_model_t *w0) {
  double worst = 0;
  for (int l = 0; l < ts_ref_model_config(a)->layers; l++) {
    size_t n;
    const double *pa = ts_ref_block_params(a, l, &n), *pb = ts_ref_block_params(b, l, &n);
    const double *p0 = ts_ref_block_params(w0, l, &n);
    double e = th_rel_err_from(pa, pb, p0, n);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

/* The devices whose peak activation bytes as the reference executor
** measured them (run) differ from the simulator's prediction for the
** job's synthetic twin (ts_ref_sim_job, 1 s forwards and 2 s backwards on
** the ideal platform); -1 when the twin cannot be built or simulated.
** Prints each mismatch. */
static inline int th_twin_bytes_bad(const ts_job_t *job, const ts_cost_t *cost, const ts_run_t *run) {
  double f[64], b[64];
  for (int s = 0; s < 64; s++) f[s] = 1, b[s] = 2;
  if (job->stages > 64) return -1;
  ts_job_t *twin = NULL;
  ts_outcome_t to;
  ts_err_t err = {0};
  if (ts_ref_sim_job(job, cost, f, b, NULL, "ideal", &twin, &err) || ts_simulate(twin, &to, &err)) {
    fprintf(stderr, "\ntwin: %s\n", err.msg);
    ts_job_free(twin);
    return -1;
  }
  int bad = to.metrics->n_devices != run->n_devices ? -1 : 0;
  for (int d = 0; !bad && d < run->n_devices; d++) {
    double meas = run->measured_peak_act_bytes[d], pred = to.metrics->dev[d].peak_activation_bytes;
    if (meas != pred || meas <= 0)
      fprintf(stderr, "\n%s device %d: measured %.17g, the twin predicts %.17g\n", job->schedule, d,
              meas, pred);
    bad += meas != pred || meas <= 0;
  }
  ts_outcome_free(&to);
  ts_job_free(twin);
  return bad;
}

/* The compute event of device d with the given kind, stage and micro-batch. */
static inline const ts_event_t *th_find(const ts_outcome_t *o, int kind, int vstage, int mb) {
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (e->kind == kind && e->vstage == vstage && e->mb == mb) return e;
  }
  return NULL;
}

/* A schedule program for the runtime's checks: GPipe whose last stage never
** sends its gradients back, so device 1 waits for the gradient of
** micro-batch 0 forever (a deadlock the executor must report). */
static inline void th_prog_lost_gradient(ts_rt_t *rt) {
  const ts_ctx_t *c = ts_rt_ctx(rt);
  int v = c->local[0];
  for (int mb = 0; mb < c->microbatches; mb++) ts_sched_forward(rt, v, mb);
  for (int mb = 0; mb < c->microbatches; mb++) {
    if (c->layout->next[v] >= 0) ts_rt_recv(rt, TS_SEND_GRAD, v, mb);
    ts_rt_compute(rt, TS_BACKWARD, v, mb);
    if (c->layout->prev[v] >= 0 && c->layout->next[v] >= 0) ts_rt_send(rt, TS_SEND_GRAD, v, mb);
  }
}

/* Runs "$TRAINSIM args..." through sh; captures stdout and stderr into
** malloc'd strings (may be NULL); returns the exit status or -1. */
static inline int th_cli(const char *args, char **out, char **err) {
  const char *bin = getenv("TRAINSIM");
  if (!bin) bin = "build/trainsim";
  char o[] = "/tmp/ts-test-out-XXXXXX", e[] = "/tmp/ts-test-err-XXXXXX";
  int fo = mkstemp(o), fe = mkstemp(e);
  close(fo);
  close(fe);
  size_t n = strlen(bin) + strlen(args) + 128;
  char *cmd = ts__xmalloc(n);
  snprintf(cmd, n, "'%s' %s >%s 2>%s", bin, args, o, e);
  int st = system(cmd);
  free(cmd);
  char *files[2] = {o, e};
  char **dst[2] = {out, err};
  for (int i = 0; i < 2; i++) {
    if (dst[i]) {
      FILE *f = fopen(files[i], "rb");
      char *buf = ts__xcalloc(1, 1 << 20);
      if (f) {
        size_t got = fread(buf, 1, (1 << 20) - 1, f);
        buf[got] = 0;
        fclose(f);
      }
      *dst[i] = buf;
    }
    unlink(files[i]);
  }
  return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

#endif
