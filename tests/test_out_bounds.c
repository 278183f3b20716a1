/*
** test_out_bounds.c: the outputs stay bounded and say so (issue 14,
** target 5; README "Outputs"):
**   - a large synthetic job (p = 256, m = 64) gives a gantt.svg under
**     5 MB that says it left devices out; data-parallel replicas share a
**     row labelled with their range and the figure says "Row = 8 identical
**     devices"; --gantt-devices draws the chosen rows; rows past the limit
**     that are too dense get merged boxes, said in the note;
**   - trace.json and paje.trace honour their size limits, state the cut
**     in the file (otherData.truncated, a last comment line) and stay
**     valid (JSON parses; every Paje push has its pop);
**   - --devices and --kinds filter timeline.csv and trace.json;
**   - a small job's files are byte-identical to those in results/.
*/
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "trainsim.h"
#include "ts_out.h"
#include "tshelp.h"
#include "tsunit.h"

static const char *job_syn =
    "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0,"
    " \"activation_message_bytes\": 1000, \"activation_bytes\": 5000, \"weights_bytes\": 1000000},"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8}";

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* Simulates job_syn with sets into *o (caller frees both). */
static ts_job_t *simulate(const char *const *sets, int n, ts_outcome_t *o) {
  const char *path = th_write_tmp(job_syn, ".json");
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = ts_job_load(path, sets, n, &job, &err);
  if (!rc) rc = ts_simulate(job, o, &err);
  unlink(path);
  if (rc) printf("\n  simulate: %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  return job;
}

typedef int (*opts_writer_fn)(const ts_result_t *, const ts_out_opts_t *, FILE *);

static int gantt_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f) {
  return ts_write_gantt_svg_opts(r, o ? &o->fig : NULL, f);
}

/* What fn writes for r with o, malloc'd; its length in *len. */
__attribute__((noinline)) static char *write_with(opts_writer_fn fn, const ts_result_t *r, const ts_out_opts_t *o,
                                                  size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  CU_ASSERT_EQUAL(fn(r, o, f), 0);
  fclose(f);
  if (len) *len = n;
  return buf;
}

static void test_gantt_large_job(void) {
  const char *sets[] = {"stages=256", "microbatches=64"};
  ts_outcome_t o;
  ts_job_t *job = simulate(sets, 2, &o);
  size_t n;
  char *svg = write_with(gantt_opts, &o.r, NULL, &n);
  CU_ASSERT(n < 5000000);
  CU_ASSERT_EQUAL(count(svg, "<g class=\"label\""), TS_GANTT_MAX_ROWS);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "192 of 256 devices left out: 64 rows drawn"));
  /* the first and the last stage are among the rows chosen */
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, ">device 0</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, ">device 255</text>"));
  /* byte-identical from run to run */
  char *again = write_with(gantt_opts, &o.r, NULL, NULL);
  CU_ASSERT_STRING_EQUAL(svg, again);
  free(again);
  /* a chosen set of rows */
  ts_out_opts_t oo = {0};
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "gantt-devices", "0-3,128", &err), 0);
  char *sub = write_with(gantt_opts, &o.r, &oo, NULL);
  CU_ASSERT_EQUAL(count(sub, "<g class=\"label\""), 5);
  CU_ASSERT_PTR_NOT_NULL(strstr(sub, "251 of 256 devices left out"));
  CU_ASSERT_PTR_NOT_NULL(strstr(sub, ">device 128</text>"));
  /* a few rows only, with room for every box */
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "gantt-devices", "0", &err), 0);
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "gantt-max-rows", "1", &err), 0);
  char *one = write_with(gantt_opts, &o.r, &oo, NULL);
  CU_ASSERT_EQUAL(count(one, "<g class=\"label\""), 1);
  CU_ASSERT_EQUAL(count(one, "class=\"op "), 2 * 64);
  free(one);
  free(sub);
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_gantt_identical_rows(void) {
  const char *sets[] = {"stages=16", "microbatches=8", "data_parallel=8"};
  ts_outcome_t o;
  ts_job_t *job = simulate(sets, 3, &o);
  CU_ASSERT_EQUAL_FATAL(o.r.run->n_devices, 128);
  size_t n;
  char *svg = write_with(gantt_opts, &o.r, NULL, &n);
  CU_ASSERT(n < 5000000);
  CU_ASSERT_EQUAL(count(svg, "<g class=\"label\""), 16);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "Row = 8 identical devices"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, ">devices 0\xE2\x80\x93" "7</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "8 identical devices drawn as device 120"));
  CU_ASSERT_PTR_NULL(strstr(svg, "left out"));
  /* the full figure draws every device, bigger */
  ts_out_opts_t oo = {0};
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "gantt-max-rows", "0", &err), 0);
  size_t full;
  char *all = write_with(gantt_opts, &o.r, &oo, &full);
  CU_ASSERT_EQUAL(count(all, "<g class=\"label\""), 128);
  CU_ASSERT_PTR_NULL(strstr(all, "class=\"note\""));
  CU_ASSERT(full > 4 * n);
  free(all);
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* Many events on few rows: tiny boxes merge, and the note says so. */
static void test_gantt_dense(void) {
  const char *sets[] = {"stages=4", "microbatches=4000"};
  ts_outcome_t o;
  ts_job_t *job = simulate(sets, 2, &o);
  size_t n;
  char *svg = write_with(gantt_opts, &o.r, NULL, &n);
  CU_ASSERT(n < 5000000);
  CU_ASSERT(count(svg, "class=\"op merged\"") > 0);
  CU_ASSERT(count(svg, "class=\"op ") < 4 * 8000 / 4);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "Adjacent boxes narrower than 2 px are merged"));
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_trace_limit(void) {
  const char *sets[] = {"stages=32", "microbatches=64"};
  ts_outcome_t o;
  ts_job_t *job = simulate(sets, 2, &o);
  ts_out_opts_t oo = {.quiet_notes = true};
  size_t n_def, n_all, n_cut;
  char *def = write_with(ts_write_trace_json_opts, &o.r, NULL, &n_def);
  oo.trace_max_mb = -1; /* no limit */
  char *all = write_with(ts_write_trace_json_opts, &o.r, &oo, &n_all);
  CU_ASSERT_STRING_EQUAL(def, all); /* under 100 MB: the same file */
  CU_ASSERT_PTR_NULL(strstr(all, "\"truncated\""));
  oo.trace_max_mb = 0.2;
  char *cut = write_with(ts_write_trace_json_opts, &o.r, &oo, &n_cut);
  CU_ASSERT(n_all > 200000);
  CU_ASSERT(n_cut <= 200000);
  cJSON *doc = cJSON_Parse(cut);
  CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "otherData"), "truncated");
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  double written = cJSON_GetObjectItemCaseSensitive(t, "events_written")->valuedouble;
  double events = cJSON_GetObjectItemCaseSensitive(t, "events")->valuedouble;
  CU_ASSERT(written > 0 && written < events);
  CU_ASSERT_EQUAL(events, o.r.run->n_events);
  CU_ASSERT_EQUAL(count(cut, "\"ph\":\"X\""), (int)written);
  cJSON_Delete(doc);
  free(def);
  free(all);
  free(cut);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_paje_limit(void) {
  const char *sets[] = {"stages=32", "microbatches=64"};
  ts_outcome_t o;
  ts_job_t *job = simulate(sets, 2, &o);
  ts_out_opts_t oo = {.quiet_notes = true, .paje_max_mb = 0.2};
  size_t n_all, n_cut;
  char *all = write_with(ts_write_paje_opts, &o.r, NULL, &n_all);
  char *cut = write_with(ts_write_paje_opts, &o.r, &oo, &n_cut);
  CU_ASSERT(n_all > 200000);
  CU_ASSERT(n_cut <= 200000);
  CU_ASSERT_PTR_NULL(strstr(all, "# trainsim: cut at"));
  CU_ASSERT_PTR_NOT_NULL(strstr(cut, "\n# trainsim: cut at 0.2 MB: "));
  CU_ASSERT_EQUAL(count(cut, "\n12 "), count(cut, "\n13 ")); /* every push popped */
  CU_ASSERT(count(cut, "\n12 ") > 0);
  CU_ASSERT_EQUAL(count(cut, "\n15 "), count(cut, "\n16 "));
  free(all);
  free(cut);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void test_filters(void) {
  ts_outcome_t o;
  ts_job_t *job = simulate(NULL, 0, &o);
  ts_out_opts_t oo = {0};
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "devices", "1", &err), 0);
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "kinds", "forward,send_act", &err), 0);
  char *csv = write_with(ts_write_timeline_csv_opts, &o.r, &oo, NULL);
  CU_ASSERT_EQUAL(count(csv, "\n"), 1 + 8 + 8); /* header, 8 forwards, 8 sends */
  CU_ASSERT_EQUAL(count(csv, "\n1,"), 16);
  CU_ASSERT_EQUAL(count(csv, ",forward,"), 8);
  char *trace = write_with(ts_write_trace_json_opts, &o.r, &oo, NULL);
  CU_ASSERT_EQUAL(count(trace, "\"ph\":\"X\""), 16);
  CU_ASSERT_EQUAL(count(trace, "\"ph\":\"X\",\"pid\":2,"), 16);
  CU_ASSERT_PTR_NOT_NULL(strstr(trace, "\"filter\":{\"devices\":\"1\",\"kinds\":\"forward,send_act\"}"));
  /* errors name the option */
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "kinds", "forwards", &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--kinds"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "devices", "3-1", &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--devices"));
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "trace-max-mb", "-1", &err), EX_USAGE);
  CU_ASSERT_EQUAL(ts_out_opt_set(&oo, "gantt-max-rows", "x", &err), EX_USAGE);
  free(csv);
  free(trace);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* A small job's outputs are the files in results/, byte for byte. */
static void test_small_job_unchanged(void) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(ts_job_load("examples/1f1b-p4-m8.json", NULL, 0, &job, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_simulate(job, &o, &err), 0);
  char dir[] = "/tmp/ts-bounds-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  CU_ASSERT_EQUAL_FATAL(ts_write_outputs(&o.r, dir, &err), 0);
  static const char *const files[] = {"gantt.svg", "trace.json", "timeline.csv", "report.html", "summary.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/%s", dir, files[i]);
    snprintf(b, sizeof b, "results/1f1b-p4-m8/%s", files[i]);
    char *x = th_slurp(a, NULL), *y = th_slurp(b, NULL);
    CU_ASSERT_PTR_NOT_NULL(x);
    CU_ASSERT_PTR_NOT_NULL(y);
    if (x && y && strcmp(x, y)) printf("\n  %s differs from results/\n", files[i]);
    if (x && y) CU_ASSERT_STRING_EQUAL(x, y);
    free(x);
    free(y);
    unlink(a);
  }
  rmdir(dir);
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{TS_TEST(test_gantt_large_job), TS_TEST(test_gantt_identical_rows), TS_TEST(test_gantt_dense),
         TS_TEST(test_trace_limit),     TS_TEST(test_paje_limit),           TS_TEST(test_filters),
         TS_TEST(test_small_job_unchanged)};
TS_TEST_MAIN("bounded outputs")
