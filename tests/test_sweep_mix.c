/*
** test_sweep_mix.c: sweeps that mix schedules and sweeps over model files
** (src/cli/sweep_adjust.c, the model paths of src/job), through the
** command:
**   - `--vary schedule=1f1b,interleaved,varuna --set chunks=2` runs every
**     point with its schedule's adjustments, listed in the adjustments
**     column (1f1b chunks=1, interleaved none, varuna recompute=full
**     chunks=1), and each row's iteration time equals `trainsim run` of
**     the point with those adjustments;
**   - a sweep whose varied schedules need no adjustment has no such column
**     (the header of every sweep before it);
**   - --emit-jobs writes the adjustments into commands.txt and points.csv,
**     and --collect gives the local sweep's bytes;
**   - `--set model=PATH` reads a Hugging Face config.json or a trainsim
**     model object, by absolute and by relative path (the run names the
**     file's model), so `--vary model=a.json,b.json` has two ok rows;
**     a missing file is exit 66;
**   - a sweep whose every point failed writes its rows and exits 65; one
**     with a point that ran exits 0.
** Runs from the repository root (ctest's working directory).
*/
#include <cjson/cJSON.h>
#include <stdarg.h>

#include "tshelp.h"
#include "tsunit.h"

#define JOB "examples/1f1b-p4-m8.json"

static char *tmp_dir(void) {
  static char dirs[8][64];
  static int k;
  char *d = dirs[k++ % 8];
  snprintf(d, 64, "/tmp/ts-test-swmix-XXXXXX");
  return mkdtemp(d);
}

static void rm_rf(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

/* Runs `trainsim ARGS` (printf-style); returns the exit status, stdout and
** stderr in *out and *err when not NULL. */
static int cli(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cli(char **out, char **err, const char *fmt, ...) {
  char args[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  char *o = NULL, *e = NULL;
  int rc = th_cli(args, &o, &e);
  if (out) *out = o; else free(o);
  if (err) *err = e; else free(e);
  return rc;
}

static char *slurp_in(const char *dir, const char *name) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return th_slurp(p, NULL);
}

/* The iteration time of `trainsim run JOB SETS`; NAN when it fails. */
static double run_time(const char *sets) {
  char *dir = tmp_dir(), *s = NULL;
  double v = NAN;
  if (cli(NULL, NULL, "run %s %s -o %s --quiet -f summary", JOB, sets, dir) == 0 &&
      (s = slurp_in(dir, "summary.json"))) {
    cJSON *j = cJSON_Parse(s);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "iteration_time_s");
    if (cJSON_IsNumber(x)) v = x->valuedouble;
    cJSON_Delete(j);
  }
  free(s);
  rm_rf(dir);
  return v;
}

/* Field k (from 0) of the row of csv that starts with key (a line of the
** form "key,..."), into buf; false when there is no such row. */
static bool field(const char *csv, const char *key, int k, char *buf, size_t cap) {
  char pre[64];
  snprintf(pre, sizeof pre, "\n%s,", key);
  const char *p = strstr(csv, pre);
  if (!p) return false;
  p++;
  for (int i = 0; i < k && p; i++) {
    p = strpbrk(p, ",\n");
    if (!p || *p == '\n') return false;
    p++;
  }
  size_t n = strcspn(p, ",\n");
  snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
  return true;
}

static void test_mixed_schedules(void) {
  char *dir = tmp_dir();
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  const char *vary = "--vary schedule=1f1b,interleaved,varuna --set chunks=2";
  CU_ASSERT_EQUAL_FATAL(cli(NULL, NULL, "sweep %s %s -o %s/local -j 2 --quiet", JOB, vary, dir), 0);
  char sub[128];
  snprintf(sub, sizeof sub, "%s/local", dir);
  char *csv = slurp_in(sub, "sweep.csv");
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_EQUAL(strncmp(csv, "schedule,status,adjustments,iteration_time_s,", 45), 0);
  static const struct {
    const char *sched, *adj;
  } want[] = {{"1f1b", "chunks=1"}, {"interleaved", ""}, {"varuna", "recompute=full chunks=1"}};
  for (int i = 0; i < 3; i++) {
    char status[16] = "", adj[64] = "", it[64] = "";
    CU_ASSERT_FATAL(field(csv, want[i].sched, 1, status, sizeof status));
    field(csv, want[i].sched, 2, adj, sizeof adj);
    field(csv, want[i].sched, 3, it, sizeof it);
    CU_ASSERT_STRING_EQUAL(status, "ok");
    CU_ASSERT_STRING_EQUAL(adj, want[i].adj);
    /* the point is `trainsim run` with its adjustments, exactly */
    char sets[256];
    snprintf(sets, sizeof sets, "--set schedule=%s --set chunks=2", want[i].sched);
    for (char *a = adj, *sp; *a; a = sp ? sp + 1 : a + strlen(a)) {
      sp = strchr(a, ' ');
      snprintf(sets + strlen(sets), sizeof sets - strlen(sets), " --set %.*s",
               (int)(sp ? (size_t)(sp - a) : strlen(a)), a);
    }
    CU_ASSERT_DOUBLE_EQUAL(atof(it), run_time(sets), 0.0);
  }
  CU_ASSERT_DOUBLE_EQUAL(run_time("--set schedule=varuna --set recompute=full"), 39.0, 0.0); /* the generator's 39 units (README "Notes on individual schedules") */

  /* emitted: the adjustments in points.csv and commands.txt; collected:
  ** the local sweep's bytes */
  CU_ASSERT_EQUAL_FATAL(cli(NULL, NULL, "sweep %s %s --emit-jobs %s/emit --quiet", JOB, vary, dir), 0);
  snprintf(sub, sizeof sub, "%s/emit", dir);
  char *pts = slurp_in(sub, "points.csv"), *cmds = slurp_in(sub, "commands.txt");
  CU_ASSERT_PTR_NOT_NULL_FATAL(pts);
  CU_ASSERT_PTR_NOT_NULL_FATAL(cmds);
  CU_ASSERT_STRING_EQUAL(pts, "index,schedule,adjustments\n1,1f1b,chunks=1\n2,interleaved,\n"
                              "3,varuna,recompute=full chunks=1\n");
  CU_ASSERT_PTR_NOT_NULL(strstr(cmds, "--set schedule=varuna --set recompute=full --set chunks=1 -o"));
  char cmd[256];
  snprintf(cmd, sizeof cmd, "sh %s/commands.txt", sub);
  CU_ASSERT_EQUAL(system(cmd), 0);
  CU_ASSERT_EQUAL(cli(NULL, NULL, "sweep --collect %s -o %s/collected --quiet", sub, dir), 0);
  snprintf(sub, sizeof sub, "%s/collected", dir);
  char *again = slurp_in(sub, "sweep.csv");
  CU_ASSERT_PTR_NOT_NULL(again);
  if (again) CU_ASSERT_STRING_EQUAL(again, csv);
  free(again);
  free(pts);
  free(cmds);
  free(csv);

  /* schedules that need no adjustment: no column */
  CU_ASSERT_EQUAL(cli(NULL, NULL, "sweep %s --vary schedule=1f1b,gpipe -o %s/plain -j 2 --quiet", JOB, dir), 0);
  snprintf(sub, sizeof sub, "%s/plain", dir);
  csv = slurp_in(sub, "sweep.csv");
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_EQUAL(strncmp(csv, "schedule,status,iteration_time_s,", 33), 0);
  free(csv);
  rm_rf(dir);
}

/* job.model (the model's name) of dir/summary.json; "" when missing. */
static const char *model_name(const char *dir) {
  static char name[64];
  name[0] = 0;
  char *sum = slurp_in(dir, "summary.json");
  cJSON *j = cJSON_Parse(sum);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "job"), "model");
  if (cJSON_IsString(m)) snprintf(name, sizeof name, "%s", m->valuestring);
  cJSON_Delete(j);
  free(sum);
  return name;
}

static void test_model_paths(void) {
  char *dir = tmp_dir();
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  char hf[128], obj[128], out[128];
  snprintf(hf, sizeof hf, "%s/gpt2.json", dir);
  snprintf(obj, sizeof obj, "%s/small.json", dir);
  FILE *f = fopen(hf, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("{\"model_type\": \"gpt2\", \"n_layer\": 12, \"n_embd\": 768, \"n_head\": 12, "
        "\"vocab_size\": 50257, \"n_positions\": 1024}\n", f);
  fclose(f);
  f = fopen(obj, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("{\"kind\": \"transformer\", \"name\": \"small\", \"layers\": 8, \"hidden\": 1024, "
        "\"heads\": 16, \"vocab\": 32000}\n", f);
  fclose(f);

  /* an absolute path, then the same file by a path relative to the
  ** working directory (the repository root) */
  snprintf(out, sizeof out, "%s/run", dir);
  CU_ASSERT_EQUAL(cli(NULL, NULL, "run --set model=%s --set stages=4 -o %s --quiet", hf, out), 0);
  CU_ASSERT_STRING_EQUAL(model_name(out), "gpt2");
  /* "../../..": up to the root from the working directory */
  char rel[256], up[256] = "", cwd[256];
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  for (const char *p = cwd; *p; p++)
    if (*p == '/') strcat(up, "../");
  snprintf(rel, sizeof rel, "%s%s", up, obj + 1);
  CU_ASSERT_EQUAL(cli(NULL, NULL, "run --set model=%s --set stages=4 -o %s --quiet", rel, out), 0);
  CU_ASSERT_STRING_EQUAL(model_name(out), "small");

  /* --vary model=a,b: two ok rows, the second with 8 layers */
  char *err = NULL;
  CU_ASSERT_EQUAL(cli(NULL, &err, "sweep --vary model=%s,%s --set stages=4 -o %s/sw -j 2 --quiet", hf, rel, dir), 0);
  free(err);
  snprintf(out, sizeof out, "%s/sw", dir);
  char *csv = slurp_in(out, "sweep.csv");
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  char status[16] = "";
  CU_ASSERT(field(csv, hf, 1, status, sizeof status));
  CU_ASSERT_STRING_EQUAL(status, "ok");
  status[0] = 0;
  CU_ASSERT(field(csv, rel, 1, status, sizeof status));
  CU_ASSERT_STRING_EQUAL(status, "ok");
  free(csv);

  /* a missing file */
  err = NULL;
  CU_ASSERT_EQUAL(cli(NULL, &err, "run --set model=%s/none.json -o %s --quiet", dir, out), 66);
  CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "model: no such file"));
  free(err);
  rm_rf(dir);
}

static void test_all_failed(void) {
  char *dir = tmp_dir();
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  char *err = NULL;
  /* chimera needs an even number of stages: every point fails */
  CU_ASSERT_EQUAL(cli(NULL, &err, "sweep %s --set schedule=chimera --vary stages=3,5 -o %s/a --quiet",
                      JOB, dir), 65);
  CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "every point failed"));
  free(err);
  char sub[128];
  snprintf(sub, sizeof sub, "%s/a", dir);
  char *csv = slurp_in(sub, "sweep.csv");
  CU_ASSERT_PTR_NOT_NULL(csv && strstr(csv, "\n3,error,") && strstr(csv, "\n5,error,"));
  free(csv);
  /* one point that runs: exit 0 */
  CU_ASSERT_EQUAL(cli(NULL, NULL, "sweep %s --set schedule=chimera --vary stages=3,4 -o %s/b --quiet",
                      JOB, dir), 0);
  rm_rf(dir);
}

TS_TESTS{TS_TEST(test_mixed_schedules), TS_TEST(test_model_paths), TS_TEST(test_all_failed)};
TS_TEST_MAIN("sweep_mix")
