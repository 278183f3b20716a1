/*
** test_tp_time.c: the time split (README "Time split"), the
** vocabulary-parallel collectives of the embedding and the LM head
** (src/runtime/rt_tp.c) and the done-when job's bad inputs, against closed
** forms:
**   - 1F1B with a synthetic model on the ideal platform (free transfers,
**     no collectives): device d computes m (f + b), T = (m + p - 1)(f + b),
**     so compute_s = m (f + b) and idle_s = T - m (f + b), every other part
**     0; the run's split is the devices' mean;
**   - a t2 p2 d2 GPT job with sequence parallelism, selective recompute and
**     ZeRO-1 on a star platform: on every device the six parts add up to T,
**     compute_s = busy_s, tp_exposed_s the TP waits, dp_exposed_s the other
**     waits, optimizer_s the step; pp_wait_s > 0 and <= pp_comm_s; the
**     same split to the bit from the run's events reversed;
**   - vocabulary parallelism, per device per micro-batch: the embedding's
**     part adds 2 (t - 1) / t b s h e bytes (an all-reduce, or with SP a
**     reduce-scatter and an all-gather), the LM head's part 2 (t - 1) / t b
**     s h e + 3 x 2 (t - 1) / t x 4 b s (the input gradient's all-reduce,
**     or with SP an all-gather and a reduce-scatter, and the cross-entropy's
**     three fp32 all-reduces), on top of the layers' 8 b s h (t - 1) / t e;
**   - the replicated gradients' sync (ts_cost_tp_sync_bytes): with SP per
**     layer the two LayerNorms' gains and biases and b_o, b_2 (6 h; 4 h
**     without those biases or with RMSNorm; + the final norm on the last
**     part), in 2d (q = 2) the norms and the grid column's bias blocks (4 h
**     + 9 h / q; 2.5d the same in its depth layer), none in 1d without SP
**     and 3d; on SimGrid
**     one all-reduce of 2 (t - 1) / t of it per device, after its last
**     backward and its gradient collectives, before its optimizer step;
**   - summary.json, report.html and gantt.svg name the parts;
**   - bad input through the command: exit 65, one line naming the field,
**     no output directory.
*/
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tshelp.h"
#include "tsunit.h"

static double split_sum(const ts_time_split_t *s) {
  return s->compute_s + s->tp_exposed_s + s->pp_wait_s + s->dp_exposed_s + s->optimizer_s +
         s->idle_s;
}

static void test_synthetic_closed_form(void) {
  const char *json =
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0, "
      "\"activation_message_bytes\": 0, \"activation_bytes\": 1}, \"platform\": \"ideal\", "
      "\"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8}";
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(json, NULL, 0, &job, &o, &err), 0);
  double T = (8 + 4 - 1) * 3.0, busy = 8 * 3.0;
  TS_ASSERT_REL(o.metrics->iteration_time_s, T, 1e-12);
  for (int d = 0; d < 4; d++) {
    const ts_time_split_t *s = &o.metrics->dev[d].split;
    TS_ASSERT_REL(s->compute_s, busy, 1e-12);
    TS_ASSERT_REL(s->idle_s, T - busy, 1e-9);
    CU_ASSERT_EQUAL(s->tp_exposed_s + s->pp_wait_s + s->dp_exposed_s + s->optimizer_s, 0);
    CU_ASSERT_EQUAL(o.metrics->dev[d].pp_comm_s, 0);
  }
  TS_ASSERT_REL(o.metrics->split.compute_s, busy, 1e-12);
  TS_ASSERT_REL(o.metrics->split.idle_s, T - busy, 1e-9);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* b = 1, s = 128, h = 256, a = 8, 4 layers over 2 stages, 2 micro-batches. */
static const char *gpt_json(int t, bool sp, const char *plat, int dp, char *buf, size_t n) {
  snprintf(buf, n,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, "
           "\"vocab\": 1024, \"flash_attention\": false, \"dropout\": true}, \"platform\": \"%s\", "
           "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, "
           "\"tensor_parallel\": %d, \"sequence_parallel\": %s, \"recompute\": \"%s\", "
           "\"data_parallel\": %d, \"zero\": %d}",
           plat, t, sp ? "true" : "false", sp ? "selective" : "none", dp, dp > 1 ? 1 : 0);
  return buf;
}

/* Simulates gpt_json(2, SP, 2 replicas) on an 8-host star of 50 GB/s,
** 1 us links into *job and *o; 0 or the error code (printed). */
static int simulate_t2_sp_d2(ts_job_t **job, ts_outcome_t *o) {
  const char *plat = th_star_platform(8, 50e9, 1e-6);
  if (!plat) return -1;
  char json[1024];
  ts_err_t err = {0};
  int rc = th_simulate(gpt_json(2, true, plat, 2, json, sizeof json), NULL, 0, job, o, &err);
  unlink(plat);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  return rc;
}

static void test_split_adds_up(void) {
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(simulate_t2_sp_d2(&job, &o), 0);
  const ts_metrics_t *m = o.metrics;
  CU_ASSERT_EQUAL_FATAL(m->n_devices, 8);
  double T = m->iteration_time_s, mean[6] = {0};
  for (int d = 0; d < m->n_devices; d++) {
    const ts_device_metrics_t *dm = &m->dev[d];
    const ts_time_split_t *s = &dm->split;
    TS_ASSERT_REL(split_sum(s), T, 1e-9);
    TS_ASSERT_REL(s->compute_s, dm->busy_s, 1e-9);
    TS_ASSERT_REL(s->tp_exposed_s, dm->tp_exposed_s, 1e-9);
    TS_ASSERT_REL(s->dp_exposed_s, dm->exposed_comm_s, 1e-9);
    TS_ASSERT_REL(s->optimizer_s, dm->optimizer_s, 1e-9);
    CU_ASSERT(s->tp_exposed_s > 0);
    CU_ASSERT(s->dp_exposed_s > 0);
    CU_ASSERT(s->pp_wait_s > 0);
    CU_ASSERT(s->pp_wait_s <= dm->pp_comm_s * (1 + 1e-12));
    CU_ASSERT(s->idle_s > 0);
    double x[6] = {s->compute_s, s->tp_exposed_s, s->pp_wait_s, s->dp_exposed_s, s->optimizer_s, s->idle_s};
    for (int i = 0; i < 6; i++) mean[i] += x[i] / m->n_devices;
  }
  const ts_time_split_t *s = &m->split;
  double got[6] = {s->compute_s, s->tp_exposed_s, s->pp_wait_s, s->dp_exposed_s, s->optimizer_s, s->idle_s};
  for (int i = 0; i < 6; i++) TS_ASSERT_REL(got[i], mean[i], 1e-12);
  TS_ASSERT_REL(split_sum(s), T, 1e-9);

  /* The same run with its events out of order (as a hand-built run may
  ** be): the same split, to the bit (the sweep takes a sorted copy). */
  ts_run_t *r = o.run;
  for (int i = 0, j = r->n_events - 1; i < j; i++, j--) {
    ts_event_t t = r->events[i];
    r->events[i] = r->events[j];
    r->events[j] = t;
  }
  ts_metrics_t *m2 = ts_metrics_compute(job, o.sched, o.plan, o.cost, r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
  for (int d = 0; d < m->n_devices; d++) {
    CU_ASSERT_EQUAL(memcmp(&m2->dev[d].split, &m->dev[d].split, sizeof m->dev[d].split), 0);
    CU_ASSERT_EQUAL(m2->dev[d].pp_comm_s, m->dev[d].pp_comm_s);
  }
  ts_metrics_free(m2);
  for (int i = 0, j = r->n_events - 1; i < j; i++, j--) { /* back in order for the writers */
    ts_event_t t = r->events[i];
    r->events[i] = r->events[j];
    r->events[j] = t;
  }

  /* The writers: summary.json's time_split, the report's section, the
  ** Gantt chart's TP colour. */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CU_ASSERT_EQUAL(ts_write_summary_json(&o.r, f), 0);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"time_split\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"pp_wait_s\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"pp_comm_s\""));
  free(buf);
  f = open_memstream(&buf, &len);
  CU_ASSERT_EQUAL(ts_write_report_html(&o.r, f), 0);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "<section id=\"time\">"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "TP exposed"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "DP exposed"));
  free(buf);
  f = open_memstream(&buf, &len);
  CU_ASSERT_EQUAL(ts_write_gantt_svg(&o.r, f), 0);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, ">TP collective<"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, ">DP collective<"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "fill=\"#DDAA33\""));
  free(buf);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* Each device's TP bytes: the layers', the pipeline gathers' and the
** vocabulary-parallel ones (file header). */
static void check_vocab(int t, bool sp) {
  const char *plat = th_star_platform(2 * t, 50e9, 1e-6);
  CU_ASSERT_PTR_NOT_NULL_FATAL(plat);
  char json[1024];
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(gpt_json(t, sp, plat, 1, json, sizeof json), NULL, 0, &job, &o, &err);
  unlink(plat);
  if (rc) fprintf(stderr, "\n%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double b = 1, s = 128, h = 256, e = 2, M = b * s * h * e, f = (t - 1.0) / t, mbs = 2;
  for (int d = 0; d < o.run->n_devices; d++) {
    int stage = ts_plan_coord(o.plan, d, TS_DIM_PP);
    double want = mbs * 2 * 8 * M * f;   /* 2 layers, 2 micro-batches */
    if (!sp) want += 2 * M * f;          /* the received pipeline messages' gathers */
    if (sp) want += 2 * f * 2 * 6 * h * e; /* the sync of 2 layers' replicated gradients */
    if (stage == 0) want += mbs * 2 * f * M;
    else want += mbs * (2 * f * M + 3 * 2 * f * 4 * b * s);
    TS_ASSERT_REL(o.metrics->dev[d].tp_bytes, want, 1e-12);
    /* The cross-entropy's all-reduces: 2 (t - 1) / t x 4 b s bytes each. */
    int ce = 0;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *ev = &o.run->events[i];
      if (ev->device == d && ev->kind == TS_COLLECTIVE && TS_EV_COLL_OP(ev->coll) == TS_COLL_ALLREDUCE &&
          fabs(ev->bytes - 2 * f * 4 * b * s) < 1e-9)
        ce++;
    }
    CU_ASSERT_EQUAL(ce, stage == 1 ? 3 * 2 : 0);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_vocab_parallel(void) {
  check_vocab(2, false);
  check_vocab(4, false);
  check_vocab(2, true);
  check_vocab(4, true);
}

/* The replicated gradients' sync (ts_cost_tp_sync_bytes, rt_tp.c
** ts__rt_tp_sync; file header): its message by hand for each model
** variant, and on SimGrid its place and bytes. */
static void test_sync_closed_form(void) {
  static const struct {
    const char *model, *job;
    double per_layer, last; /* elements per layer, and the final norm's */
    int group, t;
  } C[] = {
      {"", "", 0, 0, 1, 4}, /* 1d without SP */
      {"", ", \"sequence_parallel\": true", 6, 0, 4, 4}, /* 2 x 2 h norms + b_o, b_2 */
      {", \"bias\": \"none\"", ", \"sequence_parallel\": true", 4, 0, 4, 4},
      {", \"bias\": \"qkv\"", ", \"sequence_parallel\": true", 4, 0, 4, 4}, /* b_qkv is split */
      {", \"norm\": \"rmsnorm\"", ", \"sequence_parallel\": true", 4, 0, 4, 4},
      {", \"final_norm\": true", ", \"sequence_parallel\": true", 6, 2, 4, 4},
      /* 2d, q = 2: the norms whole, the column's blocks of b_qkv (3 h), b_o
      ** (h), b_1 (f = 4 h), b_2 (h). */
      {"", ", \"tensor_parallel_mode\": \"2d\"", 4 + 9.0 / 2, 0, 2, 4},
      {", \"bias\": \"qkv\"", ", \"tensor_parallel_mode\": \"2d\"", 4 + 3.0 / 2, 0, 2, 4},
      {", \"final_norm\": true", ", \"tensor_parallel_mode\": \"2d\"", 4 + 9.0 / 2, 2, 2, 4},
      {"", ", \"tensor_parallel_mode\": \"3d\"", 0, 0, 1, 8},
      /* 2.5d: its depth layer's grid column, as 2d (the depth all-reduce apart). */
      {"", ", \"tensor_parallel_mode\": \"2.5d\", \"tensor_parallel_depth\": 2", 4 + 9.0 / 2, 0, 2, 8},
  };
  for (size_t k = 0; k < sizeof C / sizeof *C; k++) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 256, "
             "\"heads\": 8, \"vocab\": 1024%s}, \"platform\": \"ideal\", \"schedule\": \"1f1b\", "
             "\"stages\": 2, \"microbatches\": 2, \"seq_len\": 128, \"micro_batch_size\": 4, "
             "\"tensor_parallel\": %d%s}",
             C[k].model, C[k].t, C[k].job);
    ts_job_t *job = th_load_job(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    int n = 0;
    double got = ts_cost_tp_sync_bytes(job, 2, false, &n), last = ts_cost_tp_sync_bytes(job, 2, true, &n);
    TS_ASSERT_REL(got, 2 * C[k].per_layer * 256 * 2, 1e-15);
    TS_ASSERT_REL(last, (2 * C[k].per_layer + C[k].last) * 256 * 2, 1e-15);
    CU_ASSERT_EQUAL(n, C[k].group);
    ts_job_free(job);
  }
  /* On SimGrid (t = 2, SP, ZeRO-1 over 2 replicas): each device's one sync
  ** all-reduce sends 2 (t - 1) / t x 2 layers x 6 h e, after its last
  ** backward and its gradients' reduce-scatters, before its optimizer step
  ** and the all-gathers of the updated parameters. */
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(simulate_t2_sp_d2(&job, &o), 0);
  double want = 2 * 0.5 * 2 * 6 * 256 * 2;
  for (int d = 0; d < o.run->n_devices; d++) {
    double bwd_end = 0, grads_end = 0, sync_start = -1, sync_end = -1, opt_start = -1;
    double params_start = INFINITY;
    int syncs = 0;
    for (int i = 0; i < o.run->n_events; i++) {
      const ts_event_t *e = &o.run->events[i];
      if (e->device != d) continue;
      if (e->kind == TS_BACKWARD) bwd_end = fmax(bwd_end, e->end);
      if (e->kind == TS_OPTIMIZER) opt_start = e->start;
      if (e->kind != TS_COLLECTIVE) continue;
      if (TS_EV_COLL_PURPOSE(e->coll) == TS_CP_GRADS) grads_end = fmax(grads_end, e->end);
      if (TS_EV_COLL_PURPOSE(e->coll) == TS_CP_PARAMS) params_start = fmin(params_start, e->start);
      if (TS_EV_COLL_PURPOSE(e->coll) == TS_CP_TP && TS_EV_COLL_OP(e->coll) == TS_COLL_ALLREDUCE &&
          fabs(e->bytes - want) < 1e-9) {
        syncs++;
        sync_start = e->start;
        sync_end = e->end;
        CU_ASSERT_EQUAL(TS_EV_COLL_GROUP(e->coll), TS_GROUP_TP);
      }
    }
    CU_ASSERT_EQUAL(syncs, 1);
    CU_ASSERT(grads_end > 0 && bwd_end > 0 && params_start < INFINITY);
    CU_ASSERT(sync_start >= bwd_end && sync_start >= grads_end);
    /* The step (no event where the memory bandwidth is unknown), then
    ** ZeRO-1's all-gathers of the updated parameters. */
    CU_ASSERT(sync_end > sync_start && params_start >= sync_end);
    if (opt_start >= 0) CU_ASSERT(opt_start >= sync_end);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* The done-when job's bad inputs through the command. */
static void test_bad_inputs_cli(void) {
  char tmp[] = "/tmp/ts-tptime-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmp));
  const char *base =
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": %d, \"heads\": %d, \"vocab\": 1024%s}, "
      "\"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 2, "
      "\"seq_len\": 128, \"tensor_parallel\": %d, \"tensor_parallel_mode\": \"%s\"%s}";
  static const struct {
    int hidden, heads;
    const char *model_extra;
    int t;
    const char *mode, *extra, *msg;
  } cases[] = {
      {256, 8, "", 3, "1d", "", ": tensor_parallel: 3 does not divide model.heads (8)"},
      {255, 4, ", \"head_dim\": 64", 2, "1d", "", ": tensor_parallel: 2 does not divide model.hidden (255)"},
      {256, 8, "", 8, "2d", "", ": tensor_parallel: 8 is not a square"},
      {256, 8, "", 4, "3d", "", ": tensor_parallel: 4 is not a cube"},
      {256, 8, "", 1, "1d", ", \"sequence_parallel\": true", ": sequence_parallel: needs tensor_parallel > 1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char json[1024];
    snprintf(json, sizeof json, base, cases[i].hidden, cases[i].heads, cases[i].model_extra, cases[i].t,
             cases[i].mode, cases[i].extra);
    const char *path = th_write_tmp(json, ".json");
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    char args[512], *e = NULL;
    snprintf(args, sizeof args, "run %s -o '%s/out' --quiet", path, tmp);
    CU_ASSERT_EQUAL(th_cli(args, NULL, &e), EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e) {
      size_t n = strlen(e);
      CU_ASSERT(n > 0 && strchr(e, '\n') == e + n - 1);
      if (!strstr(e, cases[i].msg)) fprintf(stderr, "\n  got: %s", e);
      CU_ASSERT_PTR_NOT_NULL(strstr(e, cases[i].msg));
    }
    free(e);
    unlink(path);
    char out[160];
    snprintf(out, sizeof out, "%s/out", tmp);
    struct stat st;
    CU_ASSERT(stat(out, &st) != 0);
  }
  rmdir(tmp);
}

TS_TESTS{
    TS_TEST(test_synthetic_closed_form),
    TS_TEST(test_split_adds_up),
    TS_TEST(test_vocab_parallel),
    TS_TEST(test_sync_closed_form),
    TS_TEST(test_bad_inputs_cli),
};
TS_TEST_MAIN("time split and vocabulary parallelism")
