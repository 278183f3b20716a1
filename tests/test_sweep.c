/*
** test_sweep.c: `trainsim sweep` (src/cli/sweep_*.c), through the command.
**   - a 2 x 3 sweep gives 6 rows in cartesian order (the first --vary the
**     outer loop) whose metrics equal those of the individual `trainsim
**     run`s, exactly (the CSV's %.17g against summary.json);
**   - -j 1 and -j 2 give byte-identical sweep.csv and sweep.svg;
**   - resume: rows deleted from sweep.csv, or an interrupted run's partial
**     file (with a torn last line), are completed into the same bytes as a
**     fresh run, and only the missing points are simulated (the count the
**     sweep prints);
**   - a point the job's rules reject is a row with status "error" and the
**     one-line message; the sweep goes on and exits 0;
**   - --emit-jobs, then commands.txt run by sh, then --collect, gives the
**     same sweep.csv and sweep.svg bytes as the local sweep (error rows
**     included);
**   - a bandwidth sweep on the InfiniBand links of a 4-node job makes the
**     iteration time fall as the bandwidth rises;
**   - sweep.svg: the metric's label, the legend, a log axis when values
**     span more than two decades;
**   - bad --vary (no '=', empty list, empty value, unknown path, a pattern
**     that matches no link), bad -j and --metric: one-line error, exit 64,
**     nothing written.
** Runs from the repository root (ctest's working directory).
*/
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "tshelp.h"
#include "tsunit.h"

#define JOB_SYN "examples/synthetic-1f1b.json"
#define JOB_IB "examples/sweep-gpt-ib.json"
#define JOB_DP "examples/dp-gpt-ib.json"

static bool spit(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return false;
  fputs(text, f);
  return fclose(f) == 0;
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

static char *tmp_dir(void) {
  static char dirs[16][64];
  static int k;
  char *d = dirs[k++ % 16];
  snprintf(d, 64, "/tmp/ts-test-sweep-XXXXXX");
  return mkdtemp(d);
}

static void rm_rf(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static char *file_in(const char *dir, const char *name) {
  static char bufs[8][512];
  static int k;
  char *p = bufs[k++ % 8];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

/* Runs `trainsim sweep ARGS`; returns the exit status, stdout in *out. */
static int sweep(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sweep(char **out, char **err, const char *fmt, ...) {
  char args[4096] = "sweep ";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args + 6, sizeof args - 6, fmt, ap);
  va_end(ap);
  char *o = NULL, *e = NULL;
  int rc = th_cli(args, &o, &e);
  if (rc != 0 && !err) printf("\n  trainsim %s: exit %d: %.600s\n", args, rc, e ? e : "");
  if (out) *out = o; else free(o);
  if (err) *err = e; else free(e);
  return rc;
}

/* Splits a CSV line (no quoted fields but possibly the last) in place. */
static int fields(char *line, char **f, int max) {
  int n = 0;
  while (n < max) {
    f[n++] = line;
    if (*line == '"') { /* the quoted error message: the rest of the line */
      break;
    }
    char *c = strchr(line, ',');
    if (!c) break;
    *c = 0;
    line = c + 1;
  }
  return n;
}

/* Line i (0 = header) of text, copied into buf. */
static bool line_at(const char *text, int i, char *buf, size_t cap) {
  const char *p = text;
  for (int k = 0; k < i && p; k++) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  if (!p || !*p) return false;
  size_t n = strcspn(p, "\n");
  if (n >= cap) n = cap - 1;
  memcpy(buf, p, n);
  buf[n] = 0;
  return true;
}

static cJSON *run_summary(const char *job, const char *sets) {
  char *dir = tmp_dir(), args[1024];
  snprintf(args, sizeof args, "run %s %s -o %s --quiet", job, sets, dir);
  cJSON *j = NULL;
  if (th_cli(args, NULL, NULL) == 0) {
    char *s = th_slurp(file_in(dir, "summary.json"), NULL);
    j = cJSON_Parse(s);
    free(s);
  }
  rm_rf(dir);
  return j;
}

static double jnum(const cJSON *o, const char *parent, const char *key) {
  if (parent) o = cJSON_GetObjectItemCaseSensitive(o, parent);
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* ---- 1. cartesian order, metrics equal individual runs -------------------- */

static char *ref_dir; /* the -j 2 sweep of test_cartesian, reused below */

static void test_cartesian(void) {
  ref_dir = tmp_dir();
  char *out = NULL;
  CU_ASSERT_EQUAL_FATAL(sweep(&out, NULL, "%s --vary microbatches=4,8,16 --vary schedule=gpipe,1f1b "
                                           "-j 2 -o %s", JOB_SYN, ref_dir), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 points: 6 run, 0 resumed, 0 failed"));
  free(out);
  char *csv = th_slurp(file_in(ref_dir, "sweep.csv"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_EQUAL(count(csv, "\n"), 7);
  char line[2048];
  CU_ASSERT(line_at(csv, 0, line, sizeof line));
  CU_ASSERT_STRING_EQUAL(line, "microbatches,schedule,status,iteration_time_s,bubble_fraction,"
                               "bubble_overhead,samples_per_s,tokens_per_s,flops_per_s_per_gpu,mfu,"
                               "p2p_bytes,max_peak_memory_bytes,all_fit,error");
  static const char *const m[] = {"4", "8", "16"}, *const s[] = {"gpipe", "1f1b"};
  for (int i = 0; i < 6; i++) {
    char *f[16];
    CU_ASSERT_FATAL(line_at(csv, i + 1, line, sizeof line));
    CU_ASSERT_EQUAL_FATAL(fields(line, f, 16), 14);
    CU_ASSERT_STRING_EQUAL(f[0], m[i / 2]);
    CU_ASSERT_STRING_EQUAL(f[1], s[i % 2]);
    CU_ASSERT_STRING_EQUAL(f[2], "ok");
    char sets[128];
    snprintf(sets, sizeof sets, "--set microbatches=%s --set schedule=%s", m[i / 2], s[i % 2]);
    cJSON *j = run_summary(JOB_SYN, sets);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(strtod(f[3], NULL), jnum(j, NULL, "iteration_time_s"));
    CU_ASSERT_EQUAL(strtod(f[4], NULL), jnum(j, NULL, "bubble_fraction"));
    CU_ASSERT_EQUAL(strtod(f[5], NULL), jnum(j, NULL, "bubble_overhead"));
    CU_ASSERT_EQUAL(strtod(f[6], NULL), jnum(j, "throughput", "samples_per_s"));
    CU_ASSERT_STRING_EQUAL(f[7], ""); /* synthetic: no tokens/s (its seq_len is made up) */
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "throughput"), "tokens_per_s")));
    CU_ASSERT_STRING_EQUAL(f[8], ""); /* synthetic: no FLOPs */
    CU_ASSERT_STRING_EQUAL(f[9], "");
    CU_ASSERT_EQUAL(strtod(f[10], NULL), jnum(j, NULL, "p2p_bytes"));
    double peak = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(j, "devices"))
      peak = fmax(peak, jnum(d, NULL, "peak_memory_bytes"));
    CU_ASSERT_EQUAL(strtod(f[11], NULL), peak);
    CU_ASSERT_STRING_EQUAL(f[12], "true");
    CU_ASSERT_STRING_EQUAL(f[13], "");
    cJSON_Delete(j);
  }
  /* the closed form, as a sanity check of the numbers themselves */
  CU_ASSERT(line_at(csv, 5, line, sizeof line));
  CU_ASSERT_PTR_NOT_NULL(strstr(line, "16,gpipe,ok,57,"));
  CU_ASSERT(!exists(file_in(ref_dir, "sweep.csv.partial")));
  free(csv);

  char *svg = th_slurp(file_in(ref_dir, "sweep.svg"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "iteration time against microbatches"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "iteration time (s)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, ">gpipe</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, ">1f1b</text>"));
  CU_ASSERT_EQUAL(count(svg, "<circle cx="), 6 + 2); /* points and legend */
  CU_ASSERT_PTR_NULL(strstr(svg, "log scale"));
  free(svg);
}

/* ---- 2. -j 1 = -j 2 --------------------------------------------------------- */

static bool same_file(const char *a, const char *b) {
  char *x = th_slurp(a, NULL), *y = th_slurp(b, NULL);
  bool same = x && y && !strcmp(x, y);
  free(x);
  free(y);
  return same;
}

static void test_jobs_identical(void) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref_dir);
  char *dir = tmp_dir();
  CU_ASSERT_EQUAL_FATAL(sweep(NULL, NULL, "%s --vary microbatches=4,8,16 --vary schedule=gpipe,1f1b "
                                          "-j 1 -o %s -q", JOB_SYN, dir), 0);
  CU_ASSERT(same_file(file_in(dir, "sweep.csv"), file_in(ref_dir, "sweep.csv")));
  CU_ASSERT(same_file(file_in(dir, "sweep.svg"), file_in(ref_dir, "sweep.svg")));
  rm_rf(dir);
}

/* ---- 3. resume ---------------------------------------------------------------- */

static void test_resume(void) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref_dir);
  char *ref = th_slurp(file_in(ref_dir, "sweep.csv"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  char *dir = tmp_dir();
  char line[7][1024];
  for (int i = 0; i < 7; i++) CU_ASSERT_FATAL(line_at(ref, i, line[i], sizeof line[i]));

  /* (a) a finished sweep.csv with rows 2 and 5 deleted */
  char buf[8192];
  snprintf(buf, sizeof buf, "%s\n%s\n%s\n%s\n%s\n", line[0], line[1], line[3], line[4], line[6]);
  CU_ASSERT_FATAL(spit(file_in(dir, "sweep.csv"), buf));
  char *out = NULL;
  CU_ASSERT_EQUAL(sweep(&out, NULL, "%s --vary microbatches=4,8,16 --vary schedule=gpipe,1f1b -o %s",
                        JOB_SYN, dir), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 points: 2 run, 4 resumed"));
  free(out);
  CU_ASSERT(same_file(file_in(dir, "sweep.csv"), file_in(ref_dir, "sweep.csv")));
  CU_ASSERT(same_file(file_in(dir, "sweep.svg"), file_in(ref_dir, "sweep.svg")));

  /* (b) an interrupted run: no sweep.csv, a partial file whose rows came in
  ** out of order and whose last line was torn */
  unlink(file_in(dir, "sweep.csv"));
  unlink(file_in(dir, "sweep.svg"));
  snprintf(buf, sizeof buf, "%s\n%s\n%s\n%s\n%.20s", line[0], line[4], line[1], line[3], line[6]);
  CU_ASSERT_FATAL(spit(file_in(dir, "sweep.csv.partial"), buf));
  out = NULL;
  CU_ASSERT_EQUAL(sweep(&out, NULL, "%s --vary microbatches=4,8,16 --vary schedule=gpipe,1f1b -j 2 -o %s",
                        JOB_SYN, dir), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 points: 3 run, 3 resumed"));
  free(out);
  CU_ASSERT(same_file(file_in(dir, "sweep.csv"), file_in(ref_dir, "sweep.csv")));
  CU_ASSERT(same_file(file_in(dir, "sweep.svg"), file_in(ref_dir, "sweep.svg")));
  CU_ASSERT(!exists(file_in(dir, "sweep.csv.partial")));

  /* (c) all done: nothing is simulated again, the bytes stay */
  out = NULL;
  CU_ASSERT_EQUAL(sweep(&out, NULL, "%s --vary microbatches=4,8,16 --vary schedule=gpipe,1f1b -o %s",
                        JOB_SYN, dir), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 points: 0 run, 6 resumed"));
  free(out);
  CU_ASSERT(same_file(file_in(dir, "sweep.csv"), file_in(ref_dir, "sweep.csv")));

  /* (d) another sweep's directory is refused, and left alone */
  char *err = NULL;
  CU_ASSERT_EQUAL(sweep(NULL, &err, "%s --vary stages=2,4 -o %s", JOB_SYN, dir), 73);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "holds another sweep"));
  free(err);
  CU_ASSERT(same_file(file_in(dir, "sweep.csv"), file_in(ref_dir, "sweep.csv")));
  rm_rf(dir);
  free(ref);
}

/* ---- 4. error rows, --emit-jobs and --collect ----------------------------- */

static const char *tiny_job =
    "{\"model\": {\"kind\": \"transformer\", \"name\": \"tiny\", \"layers\": 8, \"hidden\": 256, "
    "\"heads\": 4, \"vocab\": 1000}, \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4, "
    "\"microbatches\": 8, \"seq_len\": 128}";

static void test_emit_collect(void) {
  char *work = tmp_dir();
  char job[128];
  snprintf(job, sizeof job, "%s/tiny.json", work);
  CU_ASSERT_FATAL(spit(job, tiny_job));
  const char *vary = "--vary stages=2,4,16 --vary schedule=gpipe,1f1b --set microbatches=6";

  /* local, with two points that the job's rules reject (16 > 8 layers) */
  char local[128], emit[128], collected[128], *out = NULL;
  snprintf(local, sizeof local, "%s/local", work);
  snprintf(emit, sizeof emit, "%s/emit", work);
  snprintf(collected, sizeof collected, "%s/collected", work);
  CU_ASSERT_EQUAL_FATAL(sweep(&out, NULL, "%s %s -o %s", job, vary, local), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "6 points: 6 run, 0 resumed, 2 failed"));
  free(out);
  char *csv = th_slurp(file_in(local, "sweep.csv"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  char want[2048];
  snprintf(want, sizeof want, "\n16,gpipe,error,,,,,,,,,,,%s: stages: 16 stages x 1 chunks exceed the "
                              "model's 8 layers\n", job);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, want));
  CU_ASSERT_EQUAL(count(csv, ",error,"), 2);
  CU_ASSERT_EQUAL(count(csv, ",ok,"), 4);
  CU_ASSERT_EQUAL(count(csv, ",true,\n"), 4); /* FLOPs and MFU present: not empty */
  CU_ASSERT_EQUAL(count(csv, ",,"), 2 * 10);  /* only the error rows have empty fields */
  free(csv);
  char *svg = th_slurp(file_in(local, "sweep.svg"), NULL);
  CU_ASSERT_PTR_NOT_NULL(svg && strstr(svg, "2 failed"));
  CU_ASSERT_PTR_NOT_NULL(svg && strstr(svg, "exceed the model&#39;s 8 layers</title>"));
  free(svg);

  /* emitted */
  out = NULL;
  CU_ASSERT_EQUAL_FATAL(sweep(&out, NULL, "%s %s --emit-jobs %s", job, vary, emit), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "parallel < "));
  free(out);
  CU_ASSERT(!exists(file_in(emit, "point-1")));
  char *points = th_slurp(file_in(emit, "points.csv"), NULL), *cmds = th_slurp(file_in(emit, "commands.txt"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(points);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cmds);
  CU_ASSERT_STRING_EQUAL(points, "index,stages,schedule\n1,2,gpipe\n2,2,1f1b\n3,4,gpipe\n4,4,1f1b\n"
                                 "5,16,gpipe\n6,16,1f1b\n");
  CU_ASSERT_EQUAL(count(cmds, "\n"), 6);
  char line[2048];
  CU_ASSERT(line_at(cmds, 2, line, sizeof line));
  snprintf(want, sizeof want, " run %s --set microbatches=6 --set stages=4 --set schedule=gpipe -o %s/point-3 "
                              "--quiet 2>%s/point-3.err", job, emit, emit);
  CU_ASSERT_PTR_NOT_NULL(strstr(line, want));
  if (!strstr(line, want)) printf("\n  line 3: %s\n  want: %s\n", line, want);
  free(points);

  /* run as a SLURM array task would, then all of them as GNU parallel would */
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "sed -n 3p %s/commands.txt | sh", emit);
  CU_ASSERT_EQUAL(system(cmd), 0);
  CU_ASSERT(exists(file_in(emit, "point-3/summary.json")));
  char *err = NULL;
  CU_ASSERT_EQUAL(sweep(NULL, &err, "--collect %s -o %s", emit, collected), 66); /* not all run */
  CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "point-1: no result"));
  CU_ASSERT_EQUAL(count(err, "\n"), 1);
  free(err);
  CU_ASSERT(!exists(collected));
  snprintf(cmd, sizeof cmd, "sh %s/commands.txt", emit);
  CU_ASSERT(system(cmd) != -1); /* points 5 and 6 fail: their .err holds why */
  CU_ASSERT_EQUAL(sweep(NULL, NULL, "--collect %s -o %s -q", emit, collected), 0);
  CU_ASSERT(same_file(file_in(collected, "sweep.csv"), file_in(local, "sweep.csv")));
  CU_ASSERT(same_file(file_in(collected, "sweep.svg"), file_in(local, "sweep.svg")));
  free(cmds);
  rm_rf(work);
}

/* ---- 5. bandwidth what-if on a multi-node job ----------------------------- */

static void test_bandwidth(void) {
  char *dir = tmp_dir();
  CU_ASSERT_EQUAL_FATAL(sweep(NULL, NULL, "%s --vary 'platform.link.ib*.bandwidth=12.5GBps,25GBps,50GBps' "
                                          "--set microbatches=16 -o %s -q", JOB_IB, dir), 0);
  char *csv = th_slurp(file_in(dir, "sweep.csv"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "platform.link.ib*.bandwidth,status,"));
  double t[3];
  static const char *const bw[] = {"12.5GBps", "25GBps", "50GBps"};
  for (int i = 0; i < 3; i++) {
    char line[2048], *f[16];
    CU_ASSERT_FATAL(line_at(csv, i + 1, line, sizeof line));
    CU_ASSERT_EQUAL_FATAL(fields(line, f, 16), 13);
    CU_ASSERT_STRING_EQUAL(f[0], bw[i]);
    CU_ASSERT_STRING_EQUAL(f[1], "ok");
    t[i] = strtod(f[2], NULL);
  }
  CU_ASSERT(t[0] > t[1]);
  CU_ASSERT(t[1] > t[2]);
  /* the point at 25 GB/s is the platform as shipped */
  cJSON *j = run_summary(JOB_IB, "--set microbatches=16");
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(t[1], jnum(j, NULL, "iteration_time_s"));
  cJSON_Delete(j);
  free(csv);
  char *svg = th_slurp(file_in(dir, "sweep.svg"), NULL);
  CU_ASSERT_PTR_NOT_NULL(svg && strstr(svg, "platform.link.ib*.bandwidth (B/s)"));
  free(svg);
  rm_rf(dir);
}

/* Values spanning three decades: log axes; --metric picks the column. */
static void test_log_axes_and_metric(void) {
  char *dir = tmp_dir();
  CU_ASSERT_EQUAL_FATAL(sweep(NULL, NULL, "%s --vary model.forward_s=0.01,0.1,1,10 --vary "
                                          "model.backward_s=0.02,20 --metric samples_per_s -o %s -q",
                              JOB_SYN, dir), 0);
  char *svg = th_slurp(file_in(dir, "sweep.svg"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "throughput against model.forward_s"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "model.forward_s (s, log scale)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "throughput (samples/s, log scale)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, ">model.backward_s</text>"));
  free(svg);
  rm_rf(dir);
}

/* A data-parallel sweep has the five DP columns, equal to each point's
** summary.json; the ring all-reduce of one point has its closed form; a
** sweep that only sets data_parallel 1 has none of them. */
static void test_dp_columns(void) {
  char *dir = tmp_dir();
  CU_ASSERT_EQUAL_FATAL(sweep(NULL, NULL, "%s --vary zero=0,1 --metric dp_comm_share -o %s -q", JOB_DP, dir), 0);
  char *csv = th_slurp(file_in(dir, "sweep.csv"), NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  char line[2048], *f[24];
  CU_ASSERT(line_at(csv, 0, line, sizeof line));
  CU_ASSERT_STRING_EQUAL(line, "zero,status,iteration_time_s,bubble_fraction,bubble_overhead,samples_per_s,"
                               "tokens_per_s,flops_per_s_per_gpu,mfu,p2p_bytes,max_peak_memory_bytes,"
                               "pipeline_time_s,optimizer_s,dp_comm_s,exposed_comm_s,dp_comm_share,"
                               "all_fit,error");
  static const char *const key[] = {"pipeline_time_s", "optimizer_s", "dp_comm_s", "exposed_comm_s",
                                    "dp_comm_share"};
  for (int i = 0; i < 2; i++) {
    CU_ASSERT_FATAL(line_at(csv, i + 1, line, sizeof line));
    CU_ASSERT_EQUAL_FATAL(fields(line, f, 24), 18);
    CU_ASSERT_STRING_EQUAL(f[1], "ok");
    cJSON *j = run_summary(JOB_DP, i ? "--set zero=1" : "--set zero=0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    for (int k = 0; k < 5; k++) CU_ASSERT_EQUAL(strtod(f[11 + k], NULL), jnum(j, NULL, key[k]));
    cJSON_Delete(j);
    if (i == 0) {
      /* device 0 (stage 0 with the embedding, G = 516,390,912 B of
      ** gradients in 3 one-layer buckets) all-reduces over 4 nodes at
      ** B = 25 GB/s: 2(d-1)/d G/B plus 2(d-1) steps x 3 links x 1 us per bucket */
      double t = 1.5 * 516390912.0 / 25e9 + 3 * 6 * 3e-6;
      CU_ASSERT_DOUBLE_EQUAL(strtod(f[13], NULL), t, 1e-9);
      CU_ASSERT(strtod(f[14], NULL) < strtod(f[13], NULL)); /* overlapped in part */
    }
  }
  free(csv);
  char *svg = th_slurp(file_in(dir, "sweep.svg"), NULL);
  CU_ASSERT_PTR_NOT_NULL(svg && strstr(svg, "data-parallel communication share against zero"));
  free(svg);
  rm_rf(dir);
  dir = tmp_dir();
  CU_ASSERT_EQUAL_FATAL(sweep(NULL, NULL, "%s --vary data_parallel=1 -o %s -q", JOB_DP, dir), 0);
  csv = th_slurp(file_in(dir, "sweep.csv"), NULL);
  CU_ASSERT_PTR_NOT_NULL(csv && strstr(csv, "max_peak_memory_bytes,all_fit,error\n"));
  CU_ASSERT_PTR_NULL(csv ? strstr(csv, "dp_comm_s") : "");
  free(csv);
  rm_rf(dir);
}

/* ---- 6. bad --vary -------------------------------------------------------------- */

static void test_bad_vary(void) {
  static const char *const bad[] = {
      "--vary microbatches",                          /* no '=' */
      "--vary microbatches=",                         /* empty list */
      "--vary microbatches=4,,8",                     /* empty value */
      "--vary microbatches=4,4",                      /* twice */
      "--vary microbatches=4 --vary microbatches=8",  /* path twice */
      "--vary nonsense=1,2",                          /* unknown path */
      "--vary model.nonsense=1,2",                    /* unknown model field */
      "--vary 'platform.link.ib*.bandwidth=1GBps'",   /* no link of 'ideal' matches */
      "--vary 'platform.link.gpu*.bandwidth=fast'",   /* bad unit */
      "",                                             /* no --vary */
      "--vary microbatches=4 -j 0",
      "--vary microbatches=4 --metric nonsense",
      "--vary microbatches=4 --metric dp_comm_s",     /* no data-parallel column */
      "--vary microbatches=4 --nonsense",
      "--vary microbatches=4 --emit-jobs /tmp/x -j 2",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *dir = tmp_dir(), out[600];
    snprintf(out, sizeof out, "%s/out", dir);
    char *err = NULL;
    int rc = sweep(NULL, &err, "%s %s -o %s", JOB_SYN, bad[i], out);
    CU_ASSERT_EQUAL(rc, 64);
    CU_ASSERT_PTR_NOT_NULL(err);
    if (err) {
      CU_ASSERT_EQUAL(strncmp(err, "trainsim: error: ", 17), 0);
      CU_ASSERT_EQUAL(count(err, "\n"), 1);
      if (rc != 64 || count(err, "\n") != 1) printf("\n  %s: exit %d: %s\n", bad[i], rc, err);
    }
    CU_ASSERT(!exists(out));
    free(err);
    rm_rf(dir);
  }
}

TS_TESTS{
    TS_TEST(test_cartesian),
    TS_TEST(test_jobs_identical),
    TS_TEST(test_resume),
    TS_TEST(test_emit_collect),
    TS_TEST(test_bandwidth),
    TS_TEST(test_log_axes_and_metric),
    TS_TEST(test_dp_columns),
    TS_TEST(test_bad_vary),
};

TS_TEST_MAIN("sweep")
