/*
** ts_validate.c: `trainsim validate`, the simulator checked against a real
** run of the same schedule program on this machine's CPU.
**
** What it does, in order:
**   1. loads the job, which must be a transformer small enough for a CPU run
**      in float64 (hidden <= 1024, seq_len <= 2048, at most 2e11 FLOPs per
**      iteration and 2 GiB of stashed activations per device);
**   2. profiles this machine on one thread: the forward, backward and (under
**      full recompute) recompute of every model part, each the fastest of
**      --reps timed runs after one warm-up, exactly as the reference executor
**      performs them (a forward that keeps its stash under recompute "none"
**      and only its input under "full"; the last stage's backward includes
**      the loss; the first stage's computes no input gradient), and the copy
**      of one message (malloc + memcpy + free of the previous one, as a send);
**   3. builds the synthetic twin job (ts_ref_sim_job): the profiled seconds
**      per stage, the executor's exact stash and message bytes; and a
**      platform of one host per device with a link per ordered pair of the
**      measured copy bandwidth and 1 us latency (the copy runs in the
**      sender's thread, so pairs do not share bandwidth);
**   4. simulates the twin (ts_simulate) and runs the job on the reference
**      executor (one pinned thread per device when cores allow) --runs
**      times; the fastest run is the measurement, so a run slowed by
**      another process does not decide the comparison;
**   5. replays: simulates the twin again with the measured run's own mean op
**      times, which separates the schedule model's error from the
**      profile's (a machine whose speed changed between profile and run);
**   6. computes both runs' metrics with the twin's cost table (so memory and
**      bubbles are derived by the same code) and compares: iteration time
**      and bubble fraction (relative error, target 10% when devices <=
**      cores; with more devices than cores threads share cores and the
**      timing is only reported), each device's peak activation bytes
**      (predicted by the simulator's memory model from the twin's bytes,
**      measured by the executor's accounting allocator: must be equal), and
**      each device's compute-op order (must be identical).
** Assumptions: load from other processes only ever adds time, hence the
** fastest profile rep and the fastest run; the profile is taken on one
** thread alone, so contention between the pipeline's threads (shared
** caches, memory bandwidth) shows up as timing error, which is the point.
*/
#include <errno.h>
#include <getopt.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_out.h"
#include "ts_ref.h"
#include "ts_runtime.h"
#include "ts_sim.h"
#include "ts_validate.h"

#define V_MAX_HIDDEN 1024
#define V_MAX_SEQ 2048
#define V_MAX_FLOPS 2e11
#define V_MAX_STASH (2.0 * 1024 * 1024 * 1024)
#define V_LATENCY 1e-6
#define V_TOL 0.10

/* What the profile measured. */
typedef struct vprof {
  int reps;
  double *fwd, *bwd, *rec;      /* [stages] seconds per stage (all its parts) */
  double msg_bytes, copy_s, bandwidth;
} vprof_t;

/* The comparison. */
typedef struct vcmp {
  int cores, devices;
  bool timing_checked;
  double t_pred, t_meas, b_pred, b_meas;
  double *peak_pred, *peak_meas;   /* [devices] */
  bool *order_same;                /* [devices] */
  int *n_ops;                      /* [devices] compute ops measured */
  bool bytes_ok, order_ok, time_ok, bubble_ok;
  int n_runs;                      /* reference runs, ... */
  const double *run_times;         /* ... their iteration times (not owned) */
  double loadavg;                  /* 1-minute load average at the start */
  double t_replay, b_replay;       /* simulated with the run's own op times */
} vcmp_t;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double rel_err(double pred, double meas) {
  return meas != 0 ? (pred - meas) / meas : (pred == 0 ? 0 : INFINITY);
}

static void fill(double *a, size_t n, unsigned long seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  for (size_t i = 0; i < n; i++) a[i] = gsl_ran_gaussian(r, 1.0);
  gsl_rng_free(r);
}

/* ---- step 1: is the job small enough ----------------------------------- */

static int check_size(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                      const ts_ref_config_t *cfg, ts_err_t *err) {
  const ts_schedule_t *sched = ts_schedule_find(job->schedule);
  if (sched && sched->host_weights)
    return ts_err_set(err, EX_DATAERR,
                      "%s: schedule: validate does not run '%s' yet (its twin platform has no host "
                      "memory); the reference executor's gradients for it are checked by "
                      "tests/test_mobius.c",
                      job->path, job->schedule);
  if (cfg->hidden > V_MAX_HIDDEN)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model.hidden: %d exceeds %d, the largest the CPU reference executor "
                      "validates",
                      job->path, cfg->hidden, V_MAX_HIDDEN);
  if (cfg->seq > V_MAX_SEQ)
    return ts_err_set(err, EX_DATAERR,
                      "%s: seq_len: %d exceeds %d, the longest the CPU reference executor validates",
                      job->path, cfg->seq, V_MAX_SEQ);
  int M = job->microbatches * job->iterations, mbs = job->micro_batch_size;
  double per_layer = ts_ref_block_forward_flops(cfg, mbs);
  double flops = (double)M * cfg->layers * per_layer * (job->recompute ? 4 : 3);
  if (flops > V_MAX_FLOPS)
    return ts_err_set(err, EX_DATAERR,
                      "%s: model: one iteration takes %.3g FLOPs, more than the %.3g the CPU "
                      "reference executor validates (make the model or the batch smaller)",
                      job->path, flops, V_MAX_FLOPS);
  for (int d = 0; d < lay->n_devices; d++) {
    double bytes = 0;
    for (int v = 0; v < lay->n_vstages; v++)
      if (lay->dev[v] == d)
        bytes += (double)M * (double)ts_ref_stash_bytes(cfg, cost->part[lay->part[v]].n_layers, mbs);
    if (bytes > V_MAX_STASH)
      return ts_err_set(err, EX_DATAERR,
                        "%s: device %d could stash up to %.3g bytes of float64 activations, more "
                        "than the %.3g the CPU reference executor validates",
                        job->path, d, bytes, V_MAX_STASH);
  }
  return 0;
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
  char *src = malloc(nb ? nb : 1), *prev = NULL;
  double best = INFINITY;
  if (!src) return 0;
  memset(src, 1, nb);
  for (int r = 0; r < R; r++) {
    double t0 = now_s();
    char *msg = malloc(nb ? nb : 1);
    if (msg) memcpy(msg, src, nb);
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
static int profile(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                   const ts_ref_config_t *cfg, vprof_t *pf, ts_err_t *err) {
  int p = job->stages, P = cost->n_parts;
  pf->fwd = calloc((size_t)p, sizeof(double));
  pf->bwd = calloc((size_t)p, sizeof(double));
  pf->rec = calloc((size_t)p, sizeof(double));
  double *best = malloc((size_t)P * TS_COMPUTE_KINDS * sizeof *best);
  vbufs_t b = {.n = (size_t)job->micro_batch_size * (size_t)cfg->seq * (size_t)cfg->hidden};
  b.x = malloc(b.n * sizeof(double));
  b.y = malloc(b.n * sizeof(double));
  b.g = malloc(b.n * sizeof(double));
  b.tg = malloc(b.n * sizeof(double));
  b.dx = malloc(b.n * sizeof(double));
  ts_ref_model_t *m = ts_ref_model_new(cfg);
  int rc = (!pf->fwd || !pf->bwd || !pf->rec || !best || !b.x || !b.y || !b.g || !b.tg || !b.dx ||
            !m) ? EX_OSERR : 0;
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
static char *platform_xml(int n, const vprof_t *pf) {
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
          pf->msg_bytes, pf->copy_s, floor(pf->bandwidth), V_LATENCY);
  for (int i = 0; i < n; i++) fprintf(f, "    <host id=\"cpu%d\" speed=\"1000000000f\"/>\n", i);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j)
        fprintf(f, "    <link id=\"copy-%d-%d\" bandwidth=\"%.0fBps\" latency=\"%gs\"/>\n", i, j,
                floor(pf->bandwidth) > 0 ? floor(pf->bandwidth) : 1, V_LATENCY);
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

static int write_text(const void *arg, FILE *f) { return fputs(arg, f) < 0 ? EX_IOERR : 0; }

/* ---- step 5: compare -------------------------------------------------------- */

/* Device d's compute ops in program order as (kind, vstage, mb) triples;
** returns the count of ops, the triples in *out (malloc'd). */
static int ops_of(const ts_run_t *r, int d, int **out) {
  int n = 0;
  for (int i = 0; i < r->n_events; i++)
    n += r->events[i].device == d && ts_kind_is_compute(r->events[i].kind);
  int *a = calloc((size_t)(3 * n + 1), sizeof *a);
  for (int i = 0; a && i < r->n_events; i++) {
    const ts_event_t *e = &r->events[i];
    if (e->device != d || !ts_kind_is_compute(e->kind) || e->seq < 0 || e->seq >= n) continue;
    a[3 * e->seq] = e->kind;
    a[3 * e->seq + 1] = e->vstage;
    a[3 * e->seq + 2] = e->mb;
  }
  *out = a;
  return n;
}

static void compare(const ts_metrics_t *ms, const ts_run_t *rs, const ts_metrics_t *mr,
                    const ts_run_t *rr, vcmp_t *c) {
  int n = rr->n_devices;
  c->devices = n;
  c->cores = ts_ref_cores(NULL, 0);
  c->timing_checked = n <= c->cores;
  c->t_pred = ms->iteration_time_s;
  c->t_meas = mr->iteration_time_s;
  c->b_pred = ms->bubble_fraction;
  c->b_meas = mr->bubble_fraction;
  c->peak_pred = calloc((size_t)n, sizeof(double));
  c->peak_meas = calloc((size_t)n, sizeof(double));
  c->order_same = calloc((size_t)n, sizeof(bool));
  c->n_ops = calloc((size_t)n, sizeof(int));
  c->bytes_ok = c->order_ok = true;
  for (int d = 0; d < n; d++) {
    c->peak_pred[d] = ms->dev[d].peak_activation_bytes;
    c->peak_meas[d] = rr->measured_peak_act_bytes[d];
    c->bytes_ok &= c->peak_pred[d] == c->peak_meas[d];
    int *a, *b;
    int na = ops_of(rs, d, &a), nb = ops_of(rr, d, &b);
    c->n_ops[d] = nb;
    c->order_same[d] = a && b && na == nb && memcmp(a, b, (size_t)(3 * na) * sizeof *a) == 0;
    c->order_ok &= c->order_same[d];
    free(a);
    free(b);
  }
  c->time_ok = fabs(rel_err(c->t_pred, c->t_meas)) <= V_TOL;
  c->bubble_ok = fabs(rel_err(c->b_pred, c->b_meas)) <= V_TOL;
}

static void vcmp_free(vcmp_t *c) {
  free(c->peak_pred);
  free(c->peak_meas);
  free(c->order_same);
  free(c->n_ops);
}

/* The stage seconds a run actually took: per part and kind the mean
** duration of its ops, summed over the parts of each stage (part k is in
** stage k % stages).  A split backward's halves count as one backward. */
static void run_stage_seconds(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost,
                              const ts_run_t *run, double *f, double *b, double *r) {
  int P = cost->n_parts, p = job->stages;
  double *sum = calloc((size_t)P * 3, sizeof *sum);
  int *cnt = calloc((size_t)P * 3, sizeof *cnt);
  for (int s = 0; s < p; s++) f[s] = b[s] = r[s] = 0;
  if (!sum || !cnt) {
    free(sum);
    free(cnt);
    return;
  }
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

/* ---- outputs ----------------------------------------------------------------- */

static cJSON *pair(double pred, double meas) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "predicted", pred);
  cJSON_AddNumberToObject(o, "measured", meas);
  double e = rel_err(pred, meas);
  if (isfinite(e))
    cJSON_AddNumberToObject(o, "rel_error", e);
  else
    cJSON_AddNullToObject(o, "rel_error");
  return o;
}

static cJSON *arr(const double *a, int n) {
  cJSON *x = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(x, cJSON_CreateNumber(a[i]));
  return x;
}

static cJSON *validation_json(const ts_job_t *job, const ts_ref_config_t *cfg, const vprof_t *pf,
                              const vcmp_t *c, const ts_metrics_t *ms, const ts_metrics_t *mr) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "trainsim_version", TS_VERSION);
  cJSON *j = ts__job_json(o, job);
  cJSON *m = cJSON_AddObjectToObject(j, "reference_model");
  cJSON_AddNumberToObject(m, "layers", cfg->layers);
  cJSON_AddNumberToObject(m, "hidden", cfg->hidden);
  cJSON_AddNumberToObject(m, "heads", cfg->heads);
  cJSON_AddNumberToObject(m, "ffn", cfg->ffn);
  cJSON_AddNumberToObject(m, "seq", cfg->seq);
  cJSON_AddStringToObject(m, "dtype", "float64");
  cJSON *mc = cJSON_AddObjectToObject(o, "machine");
  cJSON_AddNumberToObject(mc, "cores", c->cores);
  cJSON_AddNumberToObject(mc, "devices", c->devices);
  cJSON_AddBoolToObject(mc, "threads_pinned", c->devices <= c->cores);
  cJSON_AddNumberToObject(mc, "loadavg_1min_at_start", c->loadavg);
  cJSON *rs = cJSON_AddObjectToObject(o, "reference_runs");
  cJSON_AddNumberToObject(rs, "runs", c->n_runs);
  cJSON_AddItemToObject(rs, "iteration_times_s", arr(c->run_times, c->n_runs));
  cJSON_AddStringToObject(rs, "measured", "the fastest run");
  cJSON *p = cJSON_AddObjectToObject(o, "profile");
  cJSON_AddNumberToObject(p, "reps", pf->reps);
  cJSON_AddStringToObject(p, "statistic", "fastest of reps, parts round robin, one warm-up round");
  cJSON_AddItemToObject(p, "forward_s", arr(pf->fwd, job->stages));
  cJSON_AddItemToObject(p, "backward_s", arr(pf->bwd, job->stages));
  cJSON_AddItemToObject(p, "recompute_s", arr(pf->rec, job->stages));
  cJSON_AddNumberToObject(p, "message_bytes", pf->msg_bytes);
  cJSON_AddNumberToObject(p, "copy_s", pf->copy_s);
  cJSON_AddNumberToObject(p, "copy_bandwidth_Bps", pf->bandwidth);
  cJSON_AddNumberToObject(p, "link_latency_s", V_LATENCY);
  cJSON_AddStringToObject(p, "platform", "platform.xml");
  cJSON_AddItemToObject(o, "iteration_time_s", pair(c->t_pred, c->t_meas));
  cJSON_AddItemToObject(o, "bubble_fraction", pair(c->b_pred, c->b_meas));
  cJSON *rp = cJSON_AddObjectToObject(o, "replay");
  cJSON_AddStringToObject(rp, "what",
                          "the simulator given the measured run's own mean op times instead of "
                          "the profile: its error is the schedule and communication model's alone");
  cJSON_AddItemToObject(rp, "iteration_time_s", pair(c->t_replay, c->t_meas));
  cJSON_AddItemToObject(rp, "bubble_fraction", pair(c->b_replay, c->b_meas));
  cJSON *devs = cJSON_AddArrayToObject(o, "devices");
  for (int d = 0; d < c->devices; d++) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "device", d);
    cJSON *pk = cJSON_AddObjectToObject(x, "peak_activation_bytes");
    cJSON_AddNumberToObject(pk, "predicted", c->peak_pred[d]);
    cJSON_AddNumberToObject(pk, "measured", c->peak_meas[d]);
    cJSON_AddBoolToObject(pk, "equal", c->peak_pred[d] == c->peak_meas[d]);
    cJSON_AddBoolToObject(x, "op_order_identical", c->order_same[d]);
    cJSON_AddNumberToObject(x, "compute_ops", c->n_ops[d]);
    cJSON_AddItemToObject(x, "busy_s", pair(ms->dev[d].busy_s, mr->dev[d].busy_s));
    cJSON_AddItemToObject(x, "bubble_fraction",
                          pair(ms->dev[d].bubble_fraction, mr->dev[d].bubble_fraction));
    cJSON_AddItemToArray(devs, x);
  }
  cJSON *t = cJSON_AddObjectToObject(o, "targets");
  cJSON_AddBoolToObject(t, "peak_activation_bytes_equal", c->bytes_ok);
  cJSON_AddBoolToObject(t, "op_order_identical", c->order_ok);
  cJSON_AddNumberToObject(t, "timing_tolerance", V_TOL);
  cJSON_AddBoolToObject(t, "timing_checked", c->timing_checked);
  if (c->timing_checked) {
    cJSON_AddBoolToObject(t, "iteration_time_within_tolerance", c->time_ok);
    cJSON_AddBoolToObject(t, "bubble_fraction_within_tolerance", c->bubble_ok);
  } else {
    cJSON_AddNullToObject(t, "iteration_time_within_tolerance");
    cJSON_AddNullToObject(t, "bubble_fraction_within_tolerance");
  }
  cJSON_AddBoolToObject(o, "met_targets",
                        c->bytes_ok && c->order_ok &&
                            (!c->timing_checked || (c->time_ok && c->bubble_ok)));
  return o;
}

static int write_json_text(const void *arg, FILE *f) {
  return fputs(arg, f) < 0 || fputc('\n', f) == EOF ? EX_IOERR : 0;
}

static const char *verdict(bool checked, bool ok) { return !checked ? "reported" : ok ? "ok" : "MISSED"; }

static void print_table(const ts_job_t *job, const vprof_t *pf, const vcmp_t *c, const char *dir) {
  printf("validate %s: %s, p=%d m=%d mbs=%d recompute %s; %d devices on %d cores%s\n", job->path,
         job->schedule, job->stages, job->microbatches, job->micro_batch_size,
         job->recompute == TS_RECOMPUTE_FULL ? "full" : "none", c->devices, c->cores,
         c->timing_checked ? "" : " (more devices than cores: timing only reported)");
  printf("  profile (fastest of %d): stage forward/backward%s s:", pf->reps,
         job->recompute == TS_RECOMPUTE_FULL ? "/recompute" : "");
  for (int s = 0; s < job->stages; s++) {
    printf(" %.4g/%.4g", pf->fwd[s], pf->bwd[s]);
    if (job->recompute == TS_RECOMPUTE_FULL) printf("/%.4g", pf->rec[s]);
  }
  printf("; copy %.0f B in %.3g s\n", pf->msg_bytes, pf->copy_s);
  printf("  reference runs: %d, iteration times", c->n_runs);
  for (int r = 0; r < c->n_runs; r++) printf(" %.4f", c->run_times[r]);
  printf(" s (the fastest is the measurement); load average %.2f at start\n", c->loadavg);
  printf("  %-28s %16s %16s %10s  %s\n", "", "simulated", "measured", "error", "target");
  printf("  %-28s %16.6f %16.6f %+9.2f%%  %s\n", "iteration time (s)", c->t_pred, c->t_meas,
         100 * rel_err(c->t_pred, c->t_meas), verdict(c->timing_checked, c->time_ok));
  printf("  %-28s %16.6f %16.6f %+9.2f%%  %s\n", "bubble fraction", c->b_pred, c->b_meas,
         100 * rel_err(c->b_pred, c->b_meas), verdict(c->timing_checked, c->bubble_ok));
  printf("  %-28s %16.6f %16.6f %+9.2f%%  %s\n", "iteration time, replayed (s)", c->t_replay,
         c->t_meas, 100 * rel_err(c->t_replay, c->t_meas), "reported");
  printf("  %-28s %16.6f %16.6f %+9.2f%%  %s\n", "bubble fraction, replayed", c->b_replay,
         c->b_meas, 100 * rel_err(c->b_replay, c->b_meas), "reported");
  for (int d = 0; d < c->devices; d++) {
    char label[64];
    snprintf(label, sizeof label, "peak activation B, dev %d", d);
    printf("  %-28s %16.0f %16.0f %10s  %s\n", label, c->peak_pred[d], c->peak_meas[d],
           c->peak_pred[d] == c->peak_meas[d] ? "equal" : "DIFFER", verdict(true, c->peak_pred[d] == c->peak_meas[d]));
  }
  for (int d = 0; d < c->devices; d++) {
    char label[64];
    snprintf(label, sizeof label, "op order, dev %d (%d ops)", d, c->n_ops[d]);
    printf("  %-28s %16s %16s %10s  %s\n", label, "", "", c->order_same[d] ? "identical" : "DIFFER",
           verdict(true, c->order_same[d]));
  }
  printf("  outputs  %s/{validation.json,platform.xml,reference/,simulated/}\n", dir);
}

/* ---- the command ------------------------------------------------------------- */

static int die(const ts_err_t *e) {
  fprintf(stderr, "trainsim: error: %s\n", e->msg);
  return e->code ? e->code : EX_SOFTWARE;
}

static int usage_error(const char *msg) {
  fprintf(stderr, "trainsim: error: validate: %s (see trainsim --help)\n", msg);
  return EX_USAGE;
}

int ts_validate_main(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"set", required_argument, 0, 's'},
                                       {"reps", required_argument, 0, 'r'},
                                       {"runs", required_argument, 0, 'n'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {0, 0, 0, 0}};
  const char *dir = "trainsim-out";
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0, quiet = 0, reps = 5, n_runs = 5, c;
  if (!sets) return EX_OSERR;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:s:r:n:q", opts, NULL)) != -1) {
    if (c == 'o') {
      dir = optarg;
    } else if (c == 's') {
      sets[n_sets++] = optarg;
    } else if (c == 'q') {
      quiet = 1;
    } else if (c == 'r' || c == 'n') {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || end == optarg || v < 1 || v > 100) {
        free(sets);
        return usage_error(c == 'r' ? "--reps takes a whole number from 1 to 100"
                                    : "--runs takes a whole number from 1 to 100");
      }
      if (c == 'r')
        reps = (int)v;
      else
        n_runs = (int)v;
    } else {
      const char *opt = argv[optind - 1];
      free(sets);
      fprintf(stderr, "trainsim: error: validate: %s '%s' (see trainsim --help)\n",
              c == ':' ? "option requires an argument:" : "unknown option", opt);
      return EX_USAGE;
    }
  }
  if (argc - optind != 1) {
    free(sets);
    return usage_error(argc - optind ? "takes exactly one job file" : "needs a job file");
  }
  ts_err_t err = {0};
  ts_job_t *job = NULL, *twin = NULL;
  ts_plan_t *plan = NULL;
  const ts_layout_t *lay = NULL;
  ts_cost_t *cost = NULL;
  ts_outcome_t so = {0};
  ts_run_t *rr = NULL, **runs = NULL;
  double *times = NULL, *rf = NULL;
  ts_job_t *twin2 = NULL;
  ts_outcome_t so2 = {0};
  ts_metrics_t *mr = NULL;
  vprof_t pf = {.reps = reps};
  vcmp_t cmp = {0};
  char *plat = NULL, *vjson = NULL;
  char plat_path[64] = "";
  bool plat_made = false;
  ts_ref_config_t cfg;
  double load[1] = {0};
  if (getloadavg(load, 1) < 1) load[0] = -1;
  int rc = ts_job_load(argv[optind], sets, n_sets, &job, &err);
  free(sets);
  if (rc) goto out;
  if ((rc = ts_ref_config_for_job(job, &cfg, &err))) goto out;
  const ts_schedule_t *sched = ts_schedule_find(job->schedule);
  if ((rc = ts_plan_for_job(job, sched, &plan, &err))) goto out;
  lay = plan->layout;
  int parts = 0;
  for (int v = 0; v < lay->n_vstages; v++)
    if (lay->part[v] + 1 > parts) parts = lay->part[v] + 1;
  if ((rc = ts_cost_build(job, parts, &cost, &err))) goto out;
  if ((rc = check_size(job, lay, cost, &cfg, &err))) goto out;

  ts_ref_allocator_setup();
  if ((rc = profile(job, lay, cost, &cfg, &pf, &err))) goto out;
  plat = platform_xml(lay->n_devices, &pf);
  snprintf(plat_path, sizeof plat_path, "/tmp/trainsim-validate-XXXXXX.xml");
  int fd = plat ? mkstemps(plat_path, 4) : -1;
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  plat_made = fd >= 0;
  if (!f || fputs(plat, f) < 0 || fclose(f)) {
    if (!f && fd >= 0) close(fd);
    rc = ts_err_set(&err, EX_CANTCREAT, "validate: cannot write the platform to a temporary file: %s",
                    strerror(errno));
    goto out;
  }
  if ((rc = ts_ref_sim_job(job, cost, pf.fwd, pf.bwd, pf.rec, plat_path, &twin, &err))) goto out;
  snprintf(twin->platform_arg, sizeof twin->platform_arg, "platform.xml (this machine, measured)");
  if ((rc = ts_simulate(twin, &so, &err))) goto out;
  /* The reference runs n_runs times; the fastest run is the measurement
  ** (load from other processes only slows runs down, like the profile's
  ** minimum), and every run must meet the exact targets.  The twin's layout is the job's (same
  ** schedule and shape) and its cost table counts the executor's bytes, so
  ** the metrics of both executors come from the same code. */
  runs = calloc((size_t)n_runs, sizeof *runs);
  times = calloc((size_t)n_runs, sizeof *times);
  if (!runs || !times) {
    rc = ts_err_set(&err, EX_OSERR, "validate: out of memory");
    goto out;
  }
  for (int r = 0; r < n_runs; r++) {
    if ((rc = ts_ref_run(job, sched, plan, cost, &runs[r], NULL, &err))) goto out;
    ts_metrics_t *m = ts_metrics_compute(twin, so.layout, so.cost, runs[r]);
    times[r] = m->iteration_time_s;
    ts_metrics_free(m);
  }
  int med = 0; /* the fastest run */
  for (int r = 1; r < n_runs; r++)
    if (times[r] < times[med]) med = r;
  rr = runs[med];
  mr = ts_metrics_compute(twin, so.layout, so.cost, rr);
  compare(so.metrics, so.run, mr, rr, &cmp);
  for (int r = 0; r < n_runs; r++) {
    if (r == med) continue;
    vcmp_t c2 = {0};
    ts_metrics_t *m = ts_metrics_compute(twin, so.layout, so.cost, runs[r]);
    compare(so.metrics, so.run, m, runs[r], &c2);
    cmp.bytes_ok &= c2.bytes_ok;
    cmp.order_ok &= c2.order_ok;
    for (int d = 0; d < cmp.devices; d++) cmp.order_same[d] &= c2.order_same[d];
    vcmp_free(&c2);
    ts_metrics_free(m);
  }
  cmp.n_runs = n_runs;
  cmp.loadavg = load[0];
  /* Replay: the simulator with the measured run's own op times. */
  rf = calloc((size_t)job->stages * 3, sizeof *rf);
  if (!rf) {
    rc = ts_err_set(&err, EX_OSERR, "validate: out of memory");
    goto out;
  }
  run_stage_seconds(job, lay, cost, rr, rf, rf + job->stages, rf + 2 * job->stages);
  if ((rc = ts_ref_sim_job(job, cost, rf, rf + job->stages, rf + 2 * job->stages, plat_path,
                           &twin2, &err)) ||
      (rc = ts_simulate(twin2, &so2, &err)))
    goto out;
  cmp.t_replay = so2.metrics->iteration_time_s;
  cmp.b_replay = so2.metrics->bubble_fraction;
  cmp.run_times = times;

  cJSON *vj = validation_json(job, &cfg, &pf, &cmp, so.metrics, mr);
  vjson = cJSON_Print(vj);
  cJSON_Delete(vj);
  /* The reference run reports the job itself, on this machine. */
  ts_job_t rjob = *twin;
  snprintf(rjob.path, sizeof rjob.path, "%s", job->path);
  snprintf(rjob.platform_arg, sizeof rjob.platform_arg, "this machine (%d threads on %d cores)",
           cmp.devices, cmp.cores);
  snprintf(rjob.model.name, sizeof rjob.model.name, "%.100s (float64 reference)", job->model.name);
  ts_result_t rres = {&rjob, so.layout, so.cost, rr, mr};
  char sub[TS_PATH_MAX + 32];
  if ((rc = ts_write_dir(dir, &err))) goto out;
  snprintf(sub, sizeof sub, "%s/validation.json", dir);
  if (!vjson) {
    rc = ts_err_set(&err, EX_SOFTWARE, "validate: cannot format validation.json");
    goto out;
  }
  if ((rc = ts_write_atomic(sub, write_json_text, vjson, &err))) goto out;
  snprintf(sub, sizeof sub, "%s/platform.xml", dir);
  if ((rc = ts_write_atomic(sub, write_text, plat, &err))) goto out;
  snprintf(sub, sizeof sub, "%s/reference", dir);
  if ((rc = ts_write_outputs(&rres, sub, &err))) goto out;
  snprintf(sub, sizeof sub, "%s/simulated", dir);
  if ((rc = ts_write_outputs(&so.r, sub, &err))) goto out;
  if (!quiet) print_table(job, &pf, &cmp, dir);

out:
  if (plat_made) unlink(plat_path);
  if (rc) die(&err);
  free(vjson);
  free(plat);
  vcmp_free(&cmp);
  free(pf.fwd);
  free(pf.bwd);
  free(pf.rec);
  ts_metrics_free(mr);
  for (int r = 0; runs && r < n_runs; r++) ts_run_free(runs[r]);
  free(runs);
  free(times);
  free(rf);
  ts_outcome_free(&so2);
  ts_job_free(twin2);
  ts_outcome_free(&so);
  ts_job_free(twin);
  ts_cost_free(cost);
  ts_plan_free(plan);
  ts_job_free(job);
  return rc;
}
