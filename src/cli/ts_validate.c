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
**      executor (the registry's "reference" entry, on the plan and cost
**      table of ts_exec_prepare; one pinned thread per device when cores
**      allow) --runs times; the fastest run is the measurement, so a run slowed by
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
** Steps 2, 3 and the replay's op times are in validate_profile.c; this file
** holds the comparison, the outputs and the command.
*/
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_exec.h"
#include "ts_out.h"
#include "ts_ref.h"
#include "ts_sim.h"
#include "ts_validate.h"
#include "validate_internal.h"
#include "ts_internal.h"
#include "ts_cli_help.h"

#define V_TOL 0.10

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

static double rel_err(double pred, double meas) {
  return meas != 0 ? (pred - meas) / meas : (pred == 0 ? 0 : INFINITY);
}

static int write_text(const void *arg, FILE *f) { return fputs(arg, f) < 0 ? EX_IOERR : 0; }

/* ---- step 5: compare -------------------------------------------------------- */

/* 1 when e is the (first piece of a) compute op of device d: an op cut
** into pieces (tensor parallelism, MoE) counts once. */
static bool op_start(const ts_event_t *e, int d) {
  return e->device == d && ts_kind_is_compute(e->kind) && !(e->flags & TS_EVF_CONT);
}

static int seq_cmp(const void *a, const void *b) {
  const ts_event_t *x = *(const ts_event_t *const *)a, *y = *(const ts_event_t *const *)b;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Device d's compute ops in program order (by seq) as (kind, vstage, mb)
** triples; returns the count of ops, the triples in *out (malloc'd). */
static int ops_of(const ts_run_t *r, int d, int **out) {
  int n = 0;
  for (int i = 0; i < r->n_events; i++) n += op_start(&r->events[i], d);
  const ts_event_t **ev = ts__xcalloc((size_t)n + 1, sizeof *ev);
  int k = 0;
  for (int i = 0; i < r->n_events; i++)
    if (op_start(&r->events[i], d)) ev[k++] = &r->events[i];
  qsort(ev, (size_t)n, sizeof *ev, seq_cmp);
  int *a = ts__xcalloc((size_t)(3 * n + 1), sizeof *a);
  for (int i = 0; i < n; i++) {
    a[3 * i] = ev[i]->kind;
    a[3 * i + 1] = ev[i]->vstage;
    a[3 * i + 2] = ev[i]->mb;
  }
  free(ev);
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
  c->peak_pred = ts__xcalloc((size_t)n, sizeof(double));
  c->peak_meas = ts__xcalloc((size_t)n, sizeof(double));
  c->order_same = ts__xcalloc((size_t)n, sizeof(bool));
  c->n_ops = ts__xcalloc((size_t)n, sizeof(int));
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

static cJSON *validation_json(const ts_job_t *job, const ts_ref_config_t *cfg, const ts__vprof_t *pf,
                              const vcmp_t *c, const ts_metrics_t *ms, const ts_metrics_t *mr) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "trainsim_version", TS_VERSION);
  cJSON *j = ts__job_json(o, job, ts_schedule_find(job->schedule));
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
  cJSON_AddNumberToObject(p, "link_latency_s", TS__V_LATENCY);
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

static void print_table(const ts_job_t *job, const ts__vprof_t *pf, const vcmp_t *c, const char *dir) {
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

/* The command's options; sets (malloc'd, the strings not owned) is freed
** by the caller. */
typedef struct vopts {
  const char *dir, *path;
  const char **sets;
  int n_sets, quiet, reps, n_runs;
} vopts_t;

/* Parses argv into o; returns 0, or EX_USAGE (or EX_OSERR) after printing
** the one-line error, or TS_CLI_HELP_SHOWN after printing the help. */
static int parse_args(int argc, char **argv, vopts_t *o) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"set", required_argument, 0, 's'},
                                       {"reps", required_argument, 0, 'r'},
                                       {"runs", required_argument, 0, 'n'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"exact", no_argument, 0, 'E'},
                                       {0, 0, 0, 0}};
  *o = (vopts_t){.dir = "trainsim-out", .reps = 5, .n_runs = 5};
  o->sets = ts__xcalloc((size_t)argc + 1, sizeof *o->sets);
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:s:r:n:q", opts, NULL)) != -1) {
    if (c == 'o') {
      o->dir = optarg;
    } else if (c == 's') {
      o->sets[o->n_sets++] = optarg;
    } else if (c == 'q') {
      o->quiet = 1;
    } else if (c == 'E') {
      ts_sim_fold = -1; /* no symmetry folding (ts_sim.h) */
    } else if (c == 'r' || c == 'n') {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || end == optarg || v < 1 || v > 100)
        return usage_error(c == 'r' ? "--reps takes a whole number from 1 to 100"
                                    : "--runs takes a whole number from 1 to 100");
      if (c == 'r')
        o->reps = (int)v;
      else
        o->n_runs = (int)v;
    } else if (c != ':') {
      return ts__cli_unknown_option("validate", argv, opts); /* or its help */
    } else {
      fprintf(stderr, "trainsim: error: validate: option requires an argument: '%s' (see trainsim --help)\n",
              argv[optind - 1]);
      return EX_USAGE;
    }
  }
  if (argc - optind != 1)
    return usage_error(argc - optind ? "takes exactly one job file" : "needs a job file");
  o->path = argv[optind];
  return 0;
}

/* Everything the command holds; vstate_free releases it. */
typedef struct vstate {
  ts_job_t *job, *twin, *twin2;
  ts_ref_config_t cfg;
  ts_outcome_t jo;       /* the job's plan and cost table (ts_exec_prepare) */
  ts_outcome_t so, so2;  /* the twin simulated; the replay simulated */
  int n_runs;
  ts_run_t **runs;       /* [n_runs] reference runs */
  double *times;         /* [n_runs] their iteration times */
  ts_run_t *rr;          /* the fastest run (one of runs) */
  ts_metrics_t *mr;      /* its metrics, with the twin's cost table */
  double *rf;            /* [3 x stages] its stage seconds */
  ts__vprof_t pf;
  vcmp_t cmp;
  char *plat, *vjson;
  char plat_path[64];
  bool plat_made;
} vstate_t;

static void vstate_free(vstate_t *st) {
  if (st->plat_made) unlink(st->plat_path);
  free(st->vjson);
  free(st->plat);
  vcmp_free(&st->cmp);
  free(st->pf.fwd);
  free(st->pf.bwd);
  free(st->pf.rec);
  ts_metrics_free(st->mr);
  for (int r = 0; st->runs && r < st->n_runs; r++) ts_run_free(st->runs[r]);
  free(st->runs);
  free(st->times);
  free(st->rf);
  ts_outcome_free(&st->so2);
  ts_job_free(st->twin2);
  ts_outcome_free(&st->so);
  ts_job_free(st->twin);
  ts_outcome_free(&st->jo);
  ts_job_free(st->job);
}

/* Step 1: the job, its reference model, its plan and cost table, and
** whether it is small enough. */
static int load_job(vstate_t *st, const vopts_t *o, ts_err_t *err) {
  int rc = ts_job_load(o->path, o->sets, o->n_sets, &st->job, err);
  if (rc || (rc = ts_ref_config_for_job(st->job, &st->cfg, err)) ||
      (rc = ts_exec_prepare(st->job, NULL, &st->jo, err)))
    return rc;
  if (st->jo.sched->host_weights)
    return ts_err_set(err, EX_DATAERR,
                      "%s: schedule: validate does not run '%s' yet (its twin platform has no host "
                      "memory); the reference executor's gradients for it are checked by "
                      "tests/test_mobius.c",
                      st->job->path, st->job->schedule);
  return ts_exec_reference_check(st->job, st->jo.layout, st->jo.cost, "validates", err);
}

/* Steps 2 to 4 (simulated half): profile, the twin platform in a
** temporary file, the twin job, simulated. */
static int simulate_twin(vstate_t *st, ts_err_t *err) {
  const ts_job_t *job = st->job;
  int rc;
  ts_ref_allocator_setup();
  if ((rc = ts__validate_profile(job, st->jo.layout, st->jo.cost, &st->cfg, &st->pf, err)))
    return rc;
  st->plat = ts__validate_platform_xml(st->jo.layout->n_devices, &st->pf);
  snprintf(st->plat_path, sizeof st->plat_path, "/tmp/trainsim-validate-XXXXXX.xml");
  int fd = st->plat ? mkstemps(st->plat_path, 4) : -1;
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  st->plat_made = fd >= 0;
  if (!f || fputs(st->plat, f) < 0 || fclose(f)) {
    if (!f && fd >= 0) close(fd);
    return ts_err_set(err, EX_CANTCREAT,
                      "validate: cannot write the platform to a temporary file: %s",
                      strerror(errno));
  }
  if ((rc = ts_ref_sim_job(job, st->jo.cost, st->pf.fwd, st->pf.bwd, st->pf.rec, st->plat_path,
                           &st->twin, err)))
    return rc;
  snprintf(st->twin->platform_arg, sizeof st->twin->platform_arg,
           "platform.xml (this machine, measured)");
  return ts_simulate(st->twin, &st->so, err);
}

/* Step 4 (measured half) and 6: the reference runs n_runs times; the
** fastest run is the measurement (load from other processes only slows
** runs down, like the profile's minimum), and every run must meet the
** exact targets.  The twin's layout is the job's (same schedule and shape)
** and its cost table counts the executor's bytes, so the metrics of both
** executors come from the same code. */
static int measure(vstate_t *st, ts_err_t *err) {
  const ts_executor_t *ref = ts_executor_find("reference");
  const ts_outcome_t *so = &st->so;
  int n = st->n_runs, rc;
  st->runs = ts__xcalloc((size_t)n, sizeof *st->runs);
  st->times = ts__xcalloc((size_t)n, sizeof *st->times);
  for (int r = 0; r < n; r++) {
    if ((rc = ref->run(st->job, st->jo.sched, st->jo.plan, st->jo.cost, &st->runs[r], err)))
      return rc;
    ts_metrics_t *m = ts_metrics_compute(st->twin, so->sched, so->plan, so->cost, st->runs[r]);
    st->times[r] = m->iteration_time_s;
    ts_metrics_free(m);
  }
  int best = 0;
  for (int r = 1; r < n; r++)
    if (st->times[r] < st->times[best]) best = r;
  st->rr = st->runs[best];
  st->mr = ts_metrics_compute(st->twin, so->sched, so->plan, so->cost, st->rr);
  compare(so->metrics, so->run, st->mr, st->rr, &st->cmp);
  for (int r = 0; r < n; r++) {
    if (r == best) continue;
    vcmp_t c2 = {0};
    ts_metrics_t *m = ts_metrics_compute(st->twin, so->sched, so->plan, so->cost, st->runs[r]);
    compare(so->metrics, so->run, m, st->runs[r], &c2);
    st->cmp.bytes_ok &= c2.bytes_ok;
    st->cmp.order_ok &= c2.order_ok;
    for (int d = 0; d < st->cmp.devices; d++) st->cmp.order_same[d] &= c2.order_same[d];
    vcmp_free(&c2);
    ts_metrics_free(m);
  }
  st->cmp.n_runs = n;
  return 0;
}

/* Step 5: the simulator with the measured run's own op times. */
static int replay(vstate_t *st, ts_err_t *err) {
  const ts_job_t *job = st->job;
  int p = job->stages, rc;
  st->rf = ts__xcalloc((size_t)p * 3, sizeof *st->rf);
  ts__validate_stage_seconds(job, st->jo.layout, st->jo.cost, st->rr, st->rf, st->rf + p,
                             st->rf + 2 * p);
  if ((rc = ts_ref_sim_job(job, st->jo.cost, st->rf, st->rf + p, st->rf + 2 * p, st->plat_path,
                           &st->twin2, err)) ||
      (rc = ts_simulate(st->twin2, &st->so2, err)))
    return rc;
  st->cmp.t_replay = st->so2.metrics->iteration_time_s;
  st->cmp.b_replay = st->so2.metrics->bubble_fraction;
  st->cmp.run_times = st->times;
  return 0;
}

/* The outputs: validation.json, platform.xml, reference/ (the measured run
** reported as the job itself, on this machine) and simulated/. */
static int write_results(vstate_t *st, const char *dir, ts_err_t *err) {
  const ts_job_t *job = st->job;
  cJSON *vj = validation_json(job, &st->cfg, &st->pf, &st->cmp, st->so.metrics, st->mr);
  st->vjson = cJSON_Print(vj);
  cJSON_Delete(vj);
  ts_job_t rjob = *st->twin;
  snprintf(rjob.path, sizeof rjob.path, "%s", job->path);
  snprintf(rjob.platform_arg, sizeof rjob.platform_arg, "this machine (%d threads on %d cores)",
           st->cmp.devices, st->cmp.cores);
  snprintf(rjob.model.name, sizeof rjob.model.name, "%.100s (float64 reference)", job->model.name);
  ts_result_t rres = {&rjob, st->so.layout, st->so.cost, st->rr, st->mr, st->so.sched};
  char sub[TS_PATH_MAX + 32];
  int rc;
  if ((rc = ts_write_dir(dir, err))) return rc;
  snprintf(sub, sizeof sub, "%s/validation.json", dir);
  if (!st->vjson) return ts_err_set(err, EX_SOFTWARE, "validate: cannot format validation.json");
  if ((rc = ts_write_atomic(sub, write_json_text, st->vjson, err))) return rc;
  snprintf(sub, sizeof sub, "%s/platform.xml", dir);
  if ((rc = ts_write_atomic(sub, write_text, st->plat, err))) return rc;
  snprintf(sub, sizeof sub, "%s/reference", dir);
  if ((rc = ts_write_outputs(&rres, sub, err))) return rc;
  snprintf(sub, sizeof sub, "%s/simulated", dir);
  return ts_write_outputs(&st->so.r, sub, err);
}

int ts_validate_main(int argc, char **argv) {
  vopts_t o;
  int rc = parse_args(argc, argv, &o);
  if (rc) {
    free(o.sets);
    return rc;
  }
  ts_err_t err = {0};
  vstate_t st = {.n_runs = o.n_runs, .pf = {.reps = o.reps}};
  double load[1] = {0};
  if (getloadavg(load, 1) < 1) load[0] = -1;
  rc = load_job(&st, &o, &err);
  free(o.sets);
  if (!rc) rc = simulate_twin(&st, &err);
  if (!rc) rc = measure(&st, &err);
  st.cmp.loadavg = load[0];
  if (!rc) rc = replay(&st, &err);
  if (!rc) rc = write_results(&st, o.dir, &err);
  if (!rc && !o.quiet) print_table(st.job, &st.pf, &st.cmp, o.dir);
  if (rc) die(&err);
  vstate_free(&st);
  return rc;
}
