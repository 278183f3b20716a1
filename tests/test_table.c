/*
** test_table.c: schedule "table", a schedule read from a file (README
** "Schedules from a file").
**   - the shipped tables of the published figures (examples/table-*.json:
**     1F1B p = 4, m = 8 of Narayanan et al. 2021, ZB-H1 of Qi et al. 2024)
**     run op for op as the built-in schedules: the same ops per device in
**     the same order and the same timeline (every event, exactly) on the
**     ideal platform;
**   - any built-in run written out as a table (JSON and CSV) replays
**     identically: gpipe with recompute "full" (listed recompute ops),
**     interleaved with 2 chunks, 1f1b on a transformer over a real platform,
**     and a table without recompute ops under recompute "full" (the
**     recompute runs before each backward);
**   - bad tables give one-line errors naming the file and the place, with
**     sysexits codes: unknown kind, micro-batch out of range, a stage
**     missing, an op listed twice or missing, malformed JSON (line:column),
**     a bad CSV line (65); a cycle (deadlock) and a backward before its
**     forward, found by the runtime and named by table op (70); no such
**     file (66); and through the command line;
**   - compare leaves the table schedule out unless the job names a table.
*/
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

#define MAX_OPS 4096

/* Every event of a and b equal, field by field (times exactly). */
static int same_timeline(const ts_run_t *a, const ts_run_t *b) {
  if (a->n_events != b->n_events || a->n_devices != b->n_devices) return 0;
  for (int i = 0; i < a->n_events; i++) {
    const ts_event_t *x = &a->events[i], *y = &b->events[i];
    if (x->device != y->device || x->peer != y->peer || x->vstage != y->vstage || x->mb != y->mb ||
        x->kind != y->kind || x->seq != y->seq || x->flags != y->flags || x->start != y->start ||
        x->end != y->end || x->bytes != y->bytes) {
      printf("\n      event %d differs: %s dev %d stage %d mb %d [%g, %g] against %s dev %d stage %d "
             "mb %d [%g, %g]",
             i, ts_kind_name(x->kind), x->device, x->vstage, x->mb, x->start, x->end,
             ts_kind_name(y->kind), y->device, y->vstage, y->mb, y->start, y->end);
      return 0;
    }
  }
  return 1;
}

/* Same compute ops per device, in the same order. */
static int same_ops(const ts_run_t *a, const ts_run_t *b) {
  static int x[MAX_OPS], y[MAX_OPS];
  if (a->n_devices != b->n_devices) return 0;
  for (int d = 0; d < a->n_devices; d++) {
    int nx = th_device_ops(a, d, x, MAX_OPS), ny = th_device_ops(b, d, y, MAX_OPS);
    if (nx == 0 || nx != ny || nx > MAX_OPS || memcmp(x, y, (size_t)nx * sizeof *x)) return 0;
  }
  return 1;
}

static void run_file(const char *path, const char *const *sets, int n, ts_job_t **job,
                     ts_outcome_t *o) {
  ts_err_t err = {0};
  int rc = ts_job_load(path, sets, n, job, &err);
  if (rc) printf("\n      %s: %s", path, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  rc = ts_simulate(*job, o, &err);
  if (rc) printf("\n      %s: %s", path, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* The shipped figure tables against the built-in schedules. */
static void test_figures_equal_builtin(void) {
  static const char *const pairs[][2] = {{"examples/table-1f1b-p4-m8.json", "examples/1f1b-p4-m8.json"},
                                         {"examples/table-zb-h1-p4-m8.json", "examples/zb-h1-p4-m8.json"}};
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    ts_job_t *jt, *jb;
    ts_outcome_t ot, ob;
    run_file(pairs[i][0], NULL, 0, &jt, &ot);
    run_file(pairs[i][1], NULL, 0, &jb, &ob);
    CU_ASSERT_STRING_EQUAL(jt->schedule, "table");
    CU_ASSERT_PTR_NOT_NULL(jt->table);
    CU_ASSERT_EQUAL(jt->table->n_stages, 4);
    CU_ASSERT_EQUAL(jt->table->n_ops[0], i == 0 ? 16 : 24);
    CU_ASSERT(same_ops(ot.run, ob.run));
    CU_ASSERT(same_timeline(ot.run, ob.run));
    CU_ASSERT_EQUAL(ot.metrics->iteration_time_s, ob.metrics->iteration_time_s);
    /* The figures' iteration times: (m + p - 1)(t_f + t_b) and
    ** m (T_F + T_B + T_W) + (p - 1)(T_F + T_B - T_W). */
    TS_ASSERT_REL(ot.metrics->iteration_time_s, i == 0 ? 33.0 : 27.0, 1e-12);
    ts_outcome_free(&ot);
    ts_outcome_free(&ob);
    ts_job_free(jt);
    ts_job_free(jb);
  }
}

/* The ops of run r (of a job with chunks) as a table file: JSON with
** objects (csv 0) or CSV, with its recompute ops when with_rc (else the
** table schedule runs them before each backward, after its gradient
** arrived, as the built-in schedules do).  Returns its path
** (th_write_tmp). */
static const char *dump_table(const ts_run_t *r, const ts_layout_t *L, int csv, int with_rc) {
  static int ops[MAX_OPS];
  size_t cap = 1 << 20, n = 0;
  char *buf = ts__xmalloc(cap);
  n += (size_t)snprintf(buf + n, cap - n, csv ? "# dumped\nstage,kind,mb,chunk\n" : "{\"stages\": [");
  for (int d = 0; d < r->n_devices; d++) {
    int k = th_device_ops(r, d, ops, MAX_OPS);
    if (!csv) n += (size_t)snprintf(buf + n, cap - n, "%s[", d ? ", " : "");
    for (int i = 0, first = 1; i < k; i += 3) {
      const char *kn = ts_kind_name(ops[i]);
      int v = ops[i + 1], mb = ops[i + 2];
      if (ops[i] == TS_RECOMPUTE && !with_rc) continue;
      if (csv)
        n += (size_t)snprintf(buf + n, cap - n, "%d, %s,%d,%d\n", d, kn, mb, L->chunk[v]);
      else
        n += (size_t)snprintf(buf + n, cap - n, "%s{\"kind\": \"%s\", \"mb\": %d, \"chunk\": %d}",
                              first ? "" : ", ", kn, mb, L->chunk[v]);
      first = 0;
    }
    if (!csv) n += (size_t)snprintf(buf + n, cap - n, "]");
  }
  if (!csv) snprintf(buf + n, cap - n, "]}");
  const char *p = th_write_tmp(buf, csv ? ".csv" : ".json");
  free(buf);
  return p;
}

static const char *const TRANSFORMER =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 8, \"hidden\": 256, \"heads\": 4,"
    " \"vocab\": 1000}, \"seq_len\": 128, \"platform\": \"pcie-4gpu.xml\", \"schedule\": \"1f1b\","
    " \"stages\": 4, \"microbatches\": 8}";

/* A built-in schedule's run, written as a table, replays identically. */
static void replay(const char *sched, const char *const *extra, int n_extra, int csv) {
  const char *sets[8];
  char s1[64], s2[TS_PATH_MAX];
  snprintf(s1, sizeof s1, "schedule=%s", sched);
  int n = 0;
  sets[n++] = s1;
  for (int i = 0; i < n_extra; i++) sets[n++] = extra[i];
  ts_job_t *jb, *jt;
  ts_outcome_t ob, ot;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(TRANSFORMER, sets, n, &jb, &ob, &err), 0);
  const char *path = dump_table(ob.run, ob.plan->layout, csv, 0);
  snprintf(s2, sizeof s2, "table=%s", path);
  sets[0] = "schedule=table";
  sets[n++] = s2;
  int rc = th_simulate(TRANSFORMER, sets, n, &jt, &ot, &err);
  if (rc) printf("\n      %s replayed: %s", sched, err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  int ok = same_ops(ot.run, ob.run) && same_timeline(ot.run, ob.run);
  if (!ok) printf("\n      %s (%s) replayed differently", sched, csv ? "CSV" : "JSON");
  CU_ASSERT(ok);
  unlink(path);
  ts_outcome_free(&ot);
  ts_outcome_free(&ob);
  ts_job_free(jt);
  ts_job_free(jb);
}

static void test_replay_builtin(void) {
  const char *rec[] = {"recompute=full"}, *chunks[] = {"chunks=2"};
  replay("1f1b", NULL, 0, 0);
  replay("1f1b", NULL, 0, 1);
  replay("gpipe", rec, 1, 0);
  replay("interleaved", chunks, 1, 1);
  replay("zb-h1", NULL, 0, 1);
}

/* A table without recompute ops under recompute "full": each backward
** recomputes first, as 1F1B does. */
static void test_auto_recompute(void) {
  const char *st[] = {"recompute=full"};
  ts_job_t *jt, *jb;
  ts_outcome_t ot, ob;
  run_file("examples/table-1f1b-p4-m8.json", st, 1, &jt, &ot);
  run_file("examples/1f1b-p4-m8.json", st, 1, &jb, &ob);
  CU_ASSERT(same_ops(ot.run, ob.run));
  CU_ASSERT(same_timeline(ot.run, ob.run));
  CU_ASSERT_PTR_NOT_NULL(th_find(&ot, TS_RECOMPUTE, 0, 7));
  ts_outcome_free(&ot);
  ts_outcome_free(&ob);
  ts_job_free(jt);
  ts_job_free(jb);
}

/* Listed recompute ops run where the table puts them: GPipe's recomputes,
** listed right before their backwards, start before the gradient arrives,
** so the run is no longer than the built-in one, and no recompute is added. */
static void test_listed_recompute(void) {
  const char *sets[4] = {"schedule=gpipe", "recompute=full"};
  char s2[TS_PATH_MAX];
  ts_job_t *jb, *jt;
  ts_outcome_t ob, ot;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(TRANSFORMER, sets, 2, &jb, &ob, &err), 0);
  const char *path = dump_table(ob.run, ob.plan->layout, 0, 1);
  snprintf(s2, sizeof s2, "table=%s", path);
  sets[0] = "schedule=table";
  sets[2] = s2;
  CU_ASSERT_EQUAL_FATAL(th_simulate(TRANSFORMER, sets, 3, &jt, &ot, &err), 0);
  int nb = 0, nt = 0;
  for (int i = 0; i < ob.run->n_events; i++) nb += ob.run->events[i].kind == TS_RECOMPUTE;
  for (int i = 0; i < ot.run->n_events; i++) nt += ot.run->events[i].kind == TS_RECOMPUTE;
  CU_ASSERT_EQUAL(nb, 4 * 8);
  CU_ASSERT_EQUAL(nt, nb);
  const ts_event_t *r = th_find(&ot, TS_RECOMPUTE, 0, 0), *g = NULL;
  for (int i = 0; i < ot.run->n_events; i++)
    if (ot.run->events[i].kind == TS_SEND_GRAD && ot.run->events[i].peer == 0 &&
        ot.run->events[i].mb == 0)
      g = &ot.run->events[i];
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT(r->start < g->end); /* recomputed while the gradient travelled */
  CU_ASSERT(ot.metrics->iteration_time_s <= ob.metrics->iteration_time_s * (1 + 1e-12));
  unlink(path);
  ts_outcome_free(&ot);
  ts_outcome_free(&ob);
  ts_job_free(jt);
  ts_job_free(jb);
}

/* Runs the 1F1B figure job with the given table text (suffix ".json" or
** ".csv"); returns the code of loading or running, the message in err. */
static int bad(const char *text, const char *suffix, ts_err_t *err) {
  const char *path = th_write_tmp(text, suffix);
  char set[TS_PATH_MAX];
  snprintf(set, sizeof set, "table=%s", path);
  const char *sets[] = {set};
  ts_job_t *job = NULL;
  ts_outcome_t o;
  int rc = ts_job_load("examples/table-1f1b-p4-m8.json", sets, 1, &job, err);
  if (!rc) {
    rc = ts_simulate(job, &o, err);
    if (!rc) ts_outcome_free(&o);
  }
  ts_job_free(job);
  /* Every message names the table file, on one line. */
  CU_ASSERT_PTR_NOT_NULL(strstr(err->msg, path));
  CU_ASSERT_PTR_NULL(strchr(err->msg, '\n'));
  unlink(path);
  return rc;
}

#define ROW_OK "[\"F0\",\"B0\",\"F1\",\"B1\",\"F2\",\"B2\",\"F3\",\"B3\",\"F4\",\"B4\",\"F5\",\"B5\",\"F6\",\"B6\",\"F7\",\"B7\"]"
#define ROW_BF "[\"B0\",\"F0\",\"F1\",\"B1\",\"F2\",\"B2\",\"F3\",\"B3\",\"F4\",\"B4\",\"F5\",\"B5\",\"F6\",\"B6\",\"F7\",\"B7\"]"

static void expect(const char *text, const char *suffix, int code, const char *what) {
  ts_err_t err = {0};
  int rc = bad(text, suffix, &err);
  if (rc != code || !strstr(err.msg, what))
    printf("\n      expected %d '%s', got %d: %s", code, what, rc, err.msg);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, what));
}

static void test_bad_tables(void) {
  expect("{\"stages\": [[\"F0\", {\"kind\": \"fwd\", \"mb\": 1}]]}", ".json", EX_DATAERR,
         "stages[0][1].kind: unknown kind 'fwd'");
  expect("{\"stages\": [[\"F0\", \"X1\"]]}", ".json", EX_DATAERR, "stages[0][1]: expected an op");
  expect("{\"stages\": [" ROW_OK "," ROW_OK "," ROW_OK ",[\"F0\",\"B9\"]]}", ".json", EX_DATAERR,
         "stages[3][1]: micro-batch 9 out of range (the job has 8 micro-batches, 0..7)");
  expect("{\"stages\": [" ROW_OK "," ROW_OK "," ROW_OK "]}", ".json", EX_DATAERR,
         "stages: 3 op lists, the job has 4 stages (stage 3 missing)");
  expect("{\"stages\": [" ROW_OK "," ROW_OK "," ROW_OK ",[\"F0\",\"B0\",\"F0\"]]}", ".json",
         EX_DATAERR, "stage 3 op 2 (forward mb 0): listed twice (first as op 0)");
  expect("{\"stages\": [" ROW_OK "," ROW_OK "," ROW_OK ",[\"F0\",\"B0\"]]}", ".json", EX_DATAERR,
         "stages[3]: no forward of micro-batch 1");
  expect("{\"stages\": [" ROW_OK ",\n", ".json", EX_DATAERR, ":2:1: malformed JSON");
  expect("{\"stages\": [" ROW_OK "], \"stage\": 1}", ".json", EX_DATAERR, "stage");
  expect("stage,kind,mb\n0,F,0\n0,fwd,1\n", ".csv", EX_DATAERR, ":3: kind: unknown kind 'fwd'");
  /* Found by the runtime while running, named by table op. */
  expect("{\"stages\": [" ROW_OK "," ROW_OK "," ROW_OK "," ROW_BF "]}", ".json", EX_SOFTWARE,
         "stage 3 op 0 (backward mb 0): device 3: backward of stage 3 micro-batch 0 before its "
         "forward");
  expect("{\"stages\": [" ROW_OK "," ROW_BF "," ROW_OK "," ROW_OK "]}", ".json", EX_SOFTWARE,
         "deadlock: device 0 at ");
  expect("{\"stages\": [" ROW_OK "," ROW_BF "," ROW_OK "," ROW_OK "]}", ".json", EX_SOFTWARE,
         "device 1 at ");
  expect("{\"stages\": [" ROW_OK "," ROW_BF "," ROW_OK "," ROW_OK "]}", ".json", EX_SOFTWARE,
         ": stage 1 op 0 (backward mb 0) waits for the gradient for stage 1 micro-batch 0");
}

static void test_job_field_errors(void) {
  const char *none[] = {"table=null"}, *nosuch[] = {"table=no-such-table"};
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_job_load("examples/table-1f1b-p4-m8.json", none, 1, &job, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "examples/table-1f1b-p4-m8.json: table: missing field"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_job_load("examples/table-1f1b-p4-m8.json", nosuch, 1, &job, &err), EX_NOINPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "table: no such file 'no-such-table'"));
  /* Named without directory and ".json": the shipped examples/tables/. */
  const char *named[] = {"table=zb-h1-p4-m8", "model.weight_grad_s=1"};
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL_FATAL(ts_job_load("examples/table-1f1b-p4-m8.json", named, 2, &job, &err), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(job->table->path, "examples/tables/zb-h1-p4-m8.json"));
  ts_job_free(job);
}

/* Through the command line: exit codes and one line on stderr. */
static void test_cli(void) {
  char *out = NULL, *err = NULL;
  CU_ASSERT_EQUAL(th_cli("run examples/table-1f1b-p4-m8.json -o /tmp/ts-test-table --quiet", &out, &err), 0);
  free(out);
  free(err);
  const char *t = th_write_tmp("{\"stages\": [[\"F0\", \"Q\"]]}", ".json");
  char args[512];
  snprintf(args, sizeof args, "run examples/table-1f1b-p4-m8.json --set table=%s -o /tmp/ts-test-table", t);
  CU_ASSERT_EQUAL(th_cli(args, &out, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "trainsim: error: "));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, ": stages[0][1]: expected an op"));
  int lines = 0;
  for (const char *c = err; *c; c++) lines += *c == '\n';
  CU_ASSERT_EQUAL(lines, 1);
  unlink(t);
  free(out);
  free(err);
}

/* compare: the table schedule only where the job names a table. */
static void test_compare(void) {
  char *out = NULL;
  CU_ASSERT_EQUAL_FATAL(th_cli("compare examples/1f1b-p4-m8.json -o /tmp/ts-test-table-cmp", &out, NULL), 0);
  CU_ASSERT_PTR_NULL(strstr(out, "  table "));
  free(out);
  CU_ASSERT_EQUAL_FATAL(th_cli("compare examples/table-1f1b-p4-m8.json -o /tmp/ts-test-table-cmp", &out, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "  table "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "  1f1b "));
  free(out);
}

TS_TESTS{TS_TEST(test_figures_equal_builtin), TS_TEST(test_replay_builtin),
         TS_TEST(test_auto_recompute), TS_TEST(test_listed_recompute), TS_TEST(test_bad_tables), TS_TEST(test_job_field_errors),
         TS_TEST(test_cli), TS_TEST(test_compare)};
TS_TEST_MAIN("table")
