/*
** test_out_dp.c: the writers on data-parallel runs (README "Outputs"):
** collective, optimizer and comm-wait events in timeline.csv, trace.json,
** gantt.svg and report.html, and the data-parallel fields of
** summary.json.
**
** The results are built by hand (no executor): two devices, each a
** one-stage pipeline replica, that run a forward and a backward, reduce
** their gradients in one bucket's all-reduce that overlaps the backward,
** wait for it, run the optimizer step and all-gather a zero-3 unit; one
** schedule-own collective outside the plan's groups.  The checks: the
** exact CSV rows and the extra columns' header, the collectives' trace
** track with its names and args, the Gantt lane under the transfer lane
** (never over a compute row), the new colours in the legend, the summary
** fields, and that a run without these events keeps the old format.
** Every writer is byte-for-byte deterministic.
*/
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainsim.h"
#include "ts_out.h"
#include "ts_report.h"
#include "tsunit.h"
#include "ts_internal.h"

typedef struct fixture {
  ts_result_t r;
  ts_job_t job;
  ts_cost_t cost;
  ts_layout_t *layout;
  ts_run_t *run;
  ts_metrics_t metrics;
} fixture_t;

static void push(fixture_t *fx, int dev, int peer, int vstage, int mb, ts_kind_t kind, int32_t coll,
                 double start, double end, double bytes) {
  ts_event_t e = {.device = dev, .peer = peer, .vstage = vstage, .mb = mb, .kind = kind,
                  .coll = coll, .start = start, .end = end, .bytes = bytes};
  ts_run_push(fx->run, &e);
}

/* Two replicas of a one-stage pipeline (vstage d on device d, stage 0 of
** its replica); with dp,
** the data-parallel events and metrics too. */
static fixture_t *fixture_new(bool dp) {
  fixture_t *fx = ts__xcalloc(1, sizeof *fx);
  snprintf(fx->job.schedule, sizeof fx->job.schedule, "1f1b");
  snprintf(fx->job.model.name, sizeof fx->job.model.name, "synthetic");
  snprintf(fx->job.rank_order, sizeof fx->job.rank_order, "tp-dp-pp");
  fx->job.stages = 1;
  fx->job.microbatches = 1;
  fx->job.micro_batch_size = 1;
  fx->job.chunks = 1;
  fx->job.iterations = 1;
  fx->job.data_parallel = 2;
  fx->job.zero = 0;
  fx->job.fsdp_unit = 1;
  fx->job.gradient_bucket_mb = 25;
  fx->job.overlap_grad_reduce = true;
  fx->cost.n_parts = 1;
  fx->cost.part = ts__xcalloc(1, sizeof *fx->cost.part);
  fx->layout = ts_layout_new(2, 2);
  for (int v = 0; v < 2; v++) {
    fx->layout->dev[v] = v;
    fx->layout->stage[v] = fx->layout->chunk[v] = fx->layout->part[v] = 0;
    fx->layout->next[v] = fx->layout->prev[v] = -1;
    fx->layout->mb_hi[v] = -1;
  }
  fx->run = ts_run_new(2);
  snprintf(fx->run->executor, sizeof fx->run->executor, "simgrid");
  for (int d = 0; d < 2; d++) {
    snprintf(fx->run->devices[d].name, sizeof fx->run->devices[d].name, "gpu%d", d);
    push(fx, d, -1, d, 0, TS_FORWARD, 0, 0.0, 1.0, 0);
    push(fx, d, -1, d, 0, TS_BACKWARD, 0, 1.0, 3.0, 0);
  }
  fx->metrics.n_devices = 2;
  fx->metrics.dev = ts__xcalloc(2, sizeof *fx->metrics.dev);
  fx->metrics.iteration_time_s = dp ? 5.0 : 3.0;
  fx->metrics.pipeline_time_s = 3.0;
  if (dp) {
    int32_t grads = TS_EV_COLL(TS_COLL_ALLREDUCE, TS_CP_GRADS, TS_GROUP_REPLICA);
    int32_t gather = TS_EV_COLL(TS_COLL_ALLGATHER, TS_CP_GATHER, TS_GROUP_DP);
    int32_t own = TS_EV_COLL(TS_COLL_ALLREDUCE, TS_CP_SCHEDULE, TS_GROUP_KINDS);
    for (int d = 0; d < 2; d++) {
      push(fx, d, 2, d, 0, TS_COLLECTIVE, grads, 2.5, 3.5, 1000);
      push(fx, d, 1 - d, d, 0, TS_SEND_COLL, grads, 2.5, 3.0, 500);
      push(fx, d, -1, d, 0, TS_COMM_WAIT, 0, 3.0, 3.5, 0);
      push(fx, d, -1, d, 0, TS_OPTIMIZER, 0, 3.5, 4.0, 5000);
      push(fx, d, 2, d, 1, TS_COLLECTIVE, gather, 4.0, 4.5, 250);
      push(fx, d, 2, d, -1, TS_COLLECTIVE, own, 4.5, 5.0, 100);
      ts_device_metrics_t *dm = &fx->metrics.dev[d];
      dm->coll_bytes[TS_COLL_ALLREDUCE] = 1100;
      dm->coll_bytes[TS_COLL_ALLGATHER] = 250;
      dm->dp_bytes = 1250;
      dm->dp_comm_s = 1.5;
      dm->exposed_comm_s = 0.5;
      dm->optimizer_s = 0.5;
      dm->gathered_peak_bytes = 64;
    }
    fx->metrics.coll_bytes[TS_COLL_ALLREDUCE] = 2200;
    fx->metrics.coll_bytes[TS_COLL_ALLGATHER] = 500;
    fx->metrics.dp_bytes = 2500;
    fx->metrics.dp_comm_s = 1.5;
    fx->metrics.exposed_comm_s = 0.5;
    fx->metrics.optimizer_s = 0.5;
    fx->metrics.dp_comm_share = 0.3;
  }
  ts_run_sort(fx->run);
  fx->r = (ts_result_t){.job = &fx->job, .layout = fx->layout, .cost = &fx->cost, .run = fx->run,
                        .metrics = &fx->metrics};
  return fx;
}

static void fixture_free(fixture_t *fx) {
  free(fx->metrics.dev);
  free(fx->cost.part);
  ts_run_free(fx->run);
  ts_layout_free(fx->layout);
  free(fx);
}

/* The text a writer makes of fx (malloc'd), written twice: both equal. */
static char *write_str(fixture_t *fx, ts_result_writer_fn w) {
  char *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  FILE *f = open_memstream(&a, &na);
  CU_ASSERT_EQUAL(w(&fx->r, f), 0);
  fclose(f);
  f = open_memstream(&b, &nb);
  CU_ASSERT_EQUAL(w(&fx->r, f), 0);
  fclose(f);
  CU_ASSERT(na == nb && !memcmp(a, b, na)); /* deterministic */
  free(b);
  return a;
}

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p++) n++;
  return n;
}

static void timeline_rows(void) {
  fixture_t *fx = fixture_new(true);
  char *csv = write_str(fx, ts_write_timeline_csv);
  static const char head[] = "device,host,peer,stage,chunk,kind,microbatch,iteration,start_s,end_s,bytes,"
                             "coll_op,coll_purpose,coll_group,coll_size\n";
  CU_ASSERT_EQUAL(strncmp(csv, head, strlen(head)), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n0,gpu0,,0,0,collective,0,0,2.5,3.5,1000,all-reduce,grads,replica,2\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n1,gpu1,,0,0,collective,1,0,4,4.5,250,all-gather,gather,dp,2\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n0,gpu0,,0,0,collective,-1,0,4.5,5,100,all-reduce,schedule,other,2\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n0,gpu0,1,0,0,allreduce,0,0,2.5,3,500,all-reduce,grads,replica,\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n1,gpu1,,0,0,comm_wait,0,0,3,3.5,0,,,,\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n0,gpu0,,0,0,optimizer,0,0,3.5,4,5000,,,,\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n0,gpu0,,0,0,forward,0,0,0,1,0,,,,\n"));
  CU_ASSERT_EQUAL(count(csv, "\n"), 1 + fx->run->n_events);
  free(csv);
  fixture_free(fx);

  /* Without these events: the columns and rows of before. */
  fx = fixture_new(false);
  csv = write_str(fx, ts_write_timeline_csv);
  CU_ASSERT_STRING_EQUAL(csv, "device,host,peer,stage,chunk,kind,microbatch,iteration,start_s,end_s,bytes\n"
                              "0,gpu0,,0,0,forward,0,0,0,1,0\n1,gpu1,,0,0,forward,0,0,0,1,0\n"
                              "0,gpu0,,0,0,backward,0,0,1,3,0\n1,gpu1,,0,0,backward,0,0,1,3,0\n");
  free(csv);
  fixture_free(fx);
}

/* The tid of thread name `name` of pid in the trace, or -1. */
static int thread_tid(const cJSON *evs, int pid, const char *name) {
  const cJSON *e;
  cJSON_ArrayForEach(e, evs) {
    const cJSON *n = cJSON_GetObjectItem(e, "name"), *a = cJSON_GetObjectItem(e, "args");
    if (strcmp(n->valuestring, "thread_name") || cJSON_GetObjectItem(e, "pid")->valueint != pid) continue;
    if (!strcmp(cJSON_GetObjectItem(a, "name")->valuestring, name)) return cJSON_GetObjectItem(e, "tid")->valueint;
  }
  return -1;
}

static const cJSON *trace_event(const cJSON *evs, int pid, const char *name) {
  const cJSON *e;
  cJSON_ArrayForEach(e, evs) {
    if (!strcmp(cJSON_GetObjectItem(e, "name")->valuestring, name) &&
        cJSON_GetObjectItem(e, "pid")->valueint == pid && !strcmp(cJSON_GetObjectItem(e, "ph")->valuestring, "X"))
      return e;
  }
  return NULL;
}

static void trace_track(void) {
  fixture_t *fx = fixture_new(true);
  char *txt = write_str(fx, ts_write_trace_json);
  cJSON *t = cJSON_Parse(txt);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  const cJSON *evs = cJSON_GetObjectItem(t, "traceEvents");
  for (int pid = 1; pid <= 2; pid++) {
    int tc = thread_tid(evs, pid, "collectives"), comp = thread_tid(evs, pid, "compute");
    CU_ASSERT_EQUAL(comp, 1);
    CU_ASSERT_EQUAL(thread_tid(evs, pid, "communication"), 2);
    CU_ASSERT_EQUAL(tc, 3); /* after compute and communication */
    CU_ASSERT_EQUAL(thread_tid(evs, pid, "collectives 2"), -1);
    const cJSON *ar = trace_event(evs, pid, "all-reduce grads b0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ar);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(ar, "tid")->valueint, tc);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(ar, "cat")->valuestring, "collective");
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(ar, "ts")->valuedouble, 2.5e6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(cJSON_GetObjectItem(ar, "dur")->valuedouble, 1e6, 1e-6);
    const cJSON *a = cJSON_GetObjectItem(ar, "args");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(a, "op")->valuestring, "all-reduce");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(a, "purpose")->valuestring, "grads");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(a, "group")->valuestring, "replica");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(a, "members")->valueint, 2);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(a, "bytes")->valueint, 1000);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(a, "to_device"));
    const cJSON *g = trace_event(evs, pid, "all-gather gather 2");
    CU_ASSERT(g && cJSON_GetObjectItem(g, "tid")->valueint == tc);
    const cJSON *own = trace_event(evs, pid, "all-reduce schedule");
    CU_ASSERT(own && cJSON_GetObjectItem(own, "tid")->valueint == tc);
    const cJSON *opt = trace_event(evs, pid, "optimizer"), *w = trace_event(evs, pid, "comm_wait");
    CU_ASSERT(opt && cJSON_GetObjectItem(opt, "tid")->valueint == comp);
    CU_ASSERT(opt && cJSON_GetObjectItem(cJSON_GetObjectItem(opt, "args"), "bytes")->valueint == 5000);
    CU_ASSERT(w && cJSON_GetObjectItem(w, "tid")->valueint == comp);
    /* The TS_SEND_COLL step stays a transfer on the communication track. */
    const cJSON *step = trace_event(evs, pid, "allreduce 1");
    CU_ASSERT(step && cJSON_GetObjectItem(step, "tid")->valueint == 2);
  }
  cJSON_Delete(t);
  free(txt);
  fixture_free(fx);

  fx = fixture_new(false);
  txt = write_str(fx, ts_write_trace_json);
  CU_ASSERT_PTR_NULL(strstr(txt, "collectives"));
  free(txt);
  fixture_free(fx);
}

/* The y attribute of the first rect whose class is cls, after from. */
static double rect_y(const char *svg, const char *cls) {
  char tag[96];
  snprintf(tag, sizeof tag, "<rect class=\"%s\"", cls);
  const char *p = strstr(svg, tag);
  if (!p) return NAN;
  p = strstr(p, " y=\"");
  return p ? atof(p + 4) : NAN;
}

/* gantt.svg 1000 px wide: the title fits on one line, so the first row
** starts at 4 font sizes (64 px). */
static int gantt_wide(const ts_result_t *r, FILE *f) {
  ts_gantt_opts_t o = {.width = 1000};
  return ts_write_gantt_svg_opts(r, &o, f);
}

static void gantt_lane(void) {
  fixture_t *fx = fixture_new(true);
  char *svg = write_str(fx, gantt_wide);
  CU_ASSERT_EQUAL(count(svg, "<rect class=\"xfer collective\""), 6);
  CU_ASSERT_EQUAL(count(svg, "<rect class=\"op optimizer\""), 2);
  CU_ASSERT_EQUAL(count(svg, "<rect class=\"op comm_wait\""), 2);
  CU_ASSERT_EQUAL(count(svg, "<rect class=\"op forward"), 2);
  /* Device 0: compute row at 64 (26 high), transfer lane from 91 (9
  ** high), the collective lane from 101: under both, hiding nothing. */
  CU_ASSERT_DOUBLE_EQUAL(rect_y(svg, "op forward c0"), 64.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(rect_y(svg, "xfer allreduce"), 91.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(rect_y(svg, "xfer collective"), 101.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(rect_y(svg, "op optimizer"), 64.0, 1e-9);
  /* The pitch grows by the lane (45 + 7): device 1's row starts at 116. */
  const char *d1 = strstr(strstr(svg, "<rect class=\"op forward c0\"") + 1, "<rect class=\"op forward c0\"");
  CU_ASSERT_DOUBLE_EQUAL(rect_y(d1, "op forward c0"), 116.0, 1e-9);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "<title>all-reduce grads b0 stage 0, device 0 of a replica group of 2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "fill=\"#332288\"><title>all-gather gather 2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "fill=\"#999933\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "fill=\"#CC6677\""));
  const char *leg = strstr(svg, "<g class=\"legend\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(leg);
  CU_ASSERT_PTR_NOT_NULL(strstr(leg, ">collective</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(leg, ">optimizer</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(leg, ">comm_wait</text>"));
  free(svg);
  fixture_free(fx);

  fx = fixture_new(false);
  svg = write_str(fx, gantt_wide);
  CU_ASSERT_PTR_NULL(strstr(svg, "collective"));
  const char *d1b = strstr(strstr(svg, "<rect class=\"op forward c0\"") + 1, "<rect class=\"op forward c0\"");
  CU_ASSERT_DOUBLE_EQUAL(rect_y(d1b, "op forward c0"), 109.0, 1e-9); /* the old pitch, 45 */
  free(svg);
  fixture_free(fx);
}

static double num_at(const cJSON *o, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItem(o, a);
  if (b) x = cJSON_GetObjectItem(x, b);
  return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void summary_fields(void) {
  fixture_t *fx = fixture_new(true);
  cJSON *t = ts__summary_json(&fx->r);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "pipeline_time_s", NULL), 3.0, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "optimizer_s", NULL), 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "dp_bytes", NULL), 2500, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "dp_comm_s", NULL), 1.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "exposed_comm_s", NULL), 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "dp_comm_share", NULL), 0.3, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "coll_bytes", "all-reduce"), 2200, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "coll_bytes", "all-gather"), 500, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(t, "coll_bytes", "reduce-scatter"), 0, 0);
  CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(t, "coll_bytes")), TS_COLL_OPS);
  const cJSON *job = cJSON_GetObjectItem(t, "job");
  CU_ASSERT_DOUBLE_EQUAL(num_at(job, "data_parallel", NULL), 2, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(job, "zero", NULL), 0, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(job, "gradient_bucket_mb", NULL), 25, 0);
  CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(job, "rank_order")->valuestring, "tp-dp-pp");
  CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(job, "optimizer")->valuestring, "adam");
  CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(job, "overlap_grad_reduce")));
  const cJSON *d1 = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "devices"), 1);
  CU_ASSERT_DOUBLE_EQUAL(num_at(d1, "coll_bytes", "all-reduce"), 1100, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(d1, "dp_bytes", NULL), 1250, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(d1, "dp_comm_s", NULL), 1.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(d1, "exposed_comm_s", NULL), 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(d1, "optimizer_s", NULL), 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(num_at(d1, "gathered_peak_bytes", NULL), 64, 0);
  CU_ASSERT(isfinite(num_at(d1, "weights_bytes", NULL)) && isfinite(num_at(d1, "gradients_bytes", NULL)) &&
            isfinite(num_at(d1, "optimizer_bytes", NULL)));
  cJSON_Delete(t);
  fixture_free(fx);
}

static void report_dp(void) {
  fixture_t *fx = fixture_new(true);
  char *html = write_str(fx, ts_write_report_html);
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "DP communication share</div><div class=\"v\">30.00 %</div>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "exposed communication</div><div class=\"v\">500.0 ms</div>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "<th>dp_bytes</th>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "<code>coll_bytes.all-reduce</code>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(html, "class=\"xfer collective\""));
  free(html);
  fixture_free(fx);
  fx = fixture_new(false);
  html = write_str(fx, ts_write_report_html);
  CU_ASSERT_PTR_NULL(strstr(html, "DP communication share"));
  CU_ASSERT_PTR_NULL(strstr(html, "<th>dp_bytes</th>"));
  free(html);
  fixture_free(fx);
}

TS_TESTS{
    TS_TEST(timeline_rows), TS_TEST(trace_track), TS_TEST(gantt_lane),
    TS_TEST(summary_fields), TS_TEST(report_dp),
};

TS_TEST_MAIN("out_dp")
