/*
** test_compare.c: `trainsim compare` runs every applicable schedule.
**   - one CSV row per registered schedule, each equal to the same
**     schedule's own `trainsim run` (iteration time, bubble fraction);
**   - the adjustments a schedule needs are listed (varuna: recompute=full,
**     interleaved: chunks=2);
**   - a schedule whose rules reject the job is skipped with the reason
**     (chimera on an odd number of stages), the others still run;
**   - compare.svg stacks one Gantt chart per schedule that ran;
**   - a schedule that is the same program as an earlier one on this job is
**     skipped naming it (gshard = 1f1b, gshard-gpipe and gpipe-swap =
**     gpipe on a dense synthetic job), and its own run gives that one's
**     numbers; mobius (cross mapping) and a gpipe-swap that fetches real
**     weights are not;
**   - --schedules chooses schedules and their order; an unknown, repeated
**     or empty name is exit 64;
**   - each chart's rows are labelled with the stages the device holds
**     (mobius: device 1 holds stage 2; interleaved: device 0 stages 0, 4).
*/
#include <cjson/cJSON.h>

#include "tshelp.h"
#include "tsunit.h"

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

static double run_metric(const char *job, const char *sched, const char *extra, const char *key) {
  char args[512], path[64] = "/tmp/ts-test-cmp-run-XXXXXX";
  if (!mkdtemp(path)) return -1;
  snprintf(args, sizeof args, "run %s --set schedule=%s %s -o %s --quiet", job, sched, extra, path);
  double v = -1;
  if (th_cli(args, NULL, NULL) == 0) {
    char f[128];
    snprintf(f, sizeof f, "%s/summary.json", path);
    char *s = th_slurp(f, NULL);
    cJSON *j = cJSON_Parse(s);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsNumber(x)) v = x->valuedouble;
    cJSON_Delete(j);
    free(s);
  }
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf %s", path);
  if (system(rm)) {
  }
  return v;
}

static void test_all_schedules(void) {
  char dir[] = "/tmp/ts-test-cmp-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char args[256];
  snprintf(args, sizeof args, "compare examples/1f1b-p4-m8.json -o %s", dir);
  char *out = NULL;
  CU_ASSERT_EQUAL_FATAL(th_cli(args, &out, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "zb-h1"));
  free(out);
  char p[128];
  snprintf(p, sizeof p, "%s/compare.csv", dir);
  char *csv = th_slurp(p, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  int n = 0, ran = 0;
  for (int i = 0; ts_schedule_at(i); i++) {
    const char *name = ts_schedule_at(i)->name;
    /* The job names no table: compare leaves schedule "table" out (test_table). */
    if (ts_schedule_at(i)->needs_table) continue;
    char row[64];
    snprintf(row, sizeof row, "\n%s,", name);
    const char *r = strstr(csv, row);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (!r) continue;
    n++;
    /* adjustments,status,iteration_time_s,bubble_fraction,... */
    char line[512], *f[8] = {0}, *cur = line;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(r + strlen(row), "\n"), r + strlen(row));
    /* A schedule that is the same program as an earlier one is skipped
    ** naming it: its own run must give that one's numbers. */
    static const char same[] = "\"skipped: the same program as ";
    const char *dup = strstr(line, same);
    char other[64] = "", own_adj[64];
    snprintf(own_adj, sizeof own_adj, "%.*s", (int)strcspn(line, ","), line);
    if (dup) {
      snprintf(other, sizeof other, "\n%.*s,", (int)strcspn(dup + strlen(same), " "), dup + strlen(same));
      const char *o = strstr(csv, other);
      CU_ASSERT_PTR_NOT_NULL_FATAL(o);
      snprintf(line, sizeof line, "%.*s", (int)strcspn(o + strlen(other), "\n"), o + strlen(other));
    }
    for (int k = 0; k < 8 && cur; k++) f[k] = strsep(&cur, ",");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f[3]);
    char adj[64], status[16];
    snprintf(adj, sizeof adj, "%s", own_adj);
    snprintf(status, sizeof status, "%s", f[1]);
    double it = atof(f[2]), bf = atof(f[3]);
    if (!strcmp(name, "varuna")) CU_ASSERT_STRING_EQUAL(adj, "recompute=full");
    if (!strcmp(name, "interleaved")) CU_ASSERT_STRING_EQUAL(adj, "chunks=2");
    CU_ASSERT_STRING_EQUAL(status, "ok");
    CU_ASSERT_STRING_EQUAL(f[0], own_adj); /* the same program, the same adjustments here */
    ran += !dup;
    char extra[96] = "";
    if (strchr(adj, '=')) snprintf(extra, sizeof extra, "--set %s", adj);
    TS_ASSERT_REL(it, run_metric("examples/1f1b-p4-m8.json", name, extra, "iteration_time_s"), 1e-12);
    TS_ASSERT_REL(bf, run_metric("examples/1f1b-p4-m8.json", name, extra, "bubble_fraction"), 1e-12);
  }
  CU_ASSERT(n >= 7);
  snprintf(p, sizeof p, "%s/compare.svg", dir);
  char *svg = th_slurp(p, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  CU_ASSERT(ran >= 7);
  CU_ASSERT_EQUAL(count(svg, "<svg "), ran + 1); /* the outer one and one per schedule run */
  free(svg);
  free(csv);
  snprintf(args, sizeof args, "rm -rf %s", dir);
  if (system(args)) {
  }
}

static void test_skipped(void) {
  char dir[] = "/tmp/ts-test-cmp-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char args[256];
  snprintf(args, sizeof args, "compare examples/1f1b-p4-m8.json --set stages=3 --set microbatches=6 -o %s --quiet", dir);
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, NULL), 0);
  char p[128];
  snprintf(p, sizeof p, "%s/compare.csv", dir);
  char *csv = th_slurp(p, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "chimera,,\"skipped: "));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "even number of stages"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\n1f1b,,ok,"));
  free(csv);
  snprintf(args, sizeof args, "rm -rf %s", dir);
  if (system(args)) {
  }
}

/* Runs compare on the p = 4, m = 8 job with extra arguments; its
** compare.csv and compare.svg into *csv and *svg (may be NULL), stdout
** into *out (may be NULL).  Returns the exit status. */
static int compare_p4(const char *extra, char **csv, char **svg, char **out, char **err) {
  char dir[] = "/tmp/ts-test-cmp-XXXXXX", args[512], p[128];
  if (!mkdtemp(dir)) return -1;
  snprintf(args, sizeof args, "compare examples/1f1b-p4-m8.json %s -o %s", extra, dir);
  int rc = th_cli(args, out, err);
  snprintf(p, sizeof p, "%s/compare.csv", dir);
  if (csv) *csv = th_slurp(p, NULL);
  snprintf(p, sizeof p, "%s/compare.svg", dir);
  if (svg) *svg = th_slurp(p, NULL);
  snprintf(args, sizeof args, "rm -rf %s", dir);
  if (system(args)) {
  }
  return rc;
}

/* The same program: gshard and gshard-gpipe on a dense job are 1f1b and
** gpipe, gpipe-swap with weights of no bytes is gpipe; mobius is not (its
** cross mapping puts stages 1 and 2 on each other's devices), nor is a
** gpipe-swap whose weights take time to fetch. */
static void test_same_program(void) {
  char *csv = NULL, *out = NULL;
  CU_ASSERT_EQUAL_FATAL(compare_p4("", &csv, NULL, &out, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\ngshard,,\"skipped: the same program as 1f1b on this job"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\ngshard-gpipe,,\"skipped: the same program as gpipe on this job"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\ngpipe-swap,,\"skipped: the same program as gpipe on this job"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\nmobius,,ok,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\nchimera,,ok,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "gshard       skipped: the same program as 1f1b on this job"));
  free(csv);
  free(out);
  /* With weights that take time to fetch, gpipe-swap is its own program. */
  CU_ASSERT_EQUAL_FATAL(compare_p4("--schedules gpipe,gpipe-swap --set model.weights_bytes=[1e9,1e9,1e9,1e9] "
                                   "--set platform=commodity-8gpu --set devices=4",
                                   &csv, NULL, NULL, NULL),
                        0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\ngpipe-swap,,ok,"));
  free(csv);
}

/* --schedules chooses the schedules and their order; a bad list is exit 64. */
static void test_schedules_option(void) {
  char *csv = NULL, *svg = NULL, *err = NULL;
  CU_ASSERT_EQUAL_FATAL(compare_p4("--schedules varuna,1f1b --quiet", &csv, &svg, NULL, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  const char *nl = strchr(csv, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
  CU_ASSERT_EQUAL(strncmp(nl + 1, "varuna,recompute=full,ok,", 25), 0);
  const char *second = strchr(nl + 1, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL(second);
  CU_ASSERT_EQUAL(strncmp(second + 1, "1f1b,,ok,", 9), 0);
  CU_ASSERT_EQUAL(count(csv, "\n"), 3);
  CU_ASSERT_EQUAL(count(svg, "<svg "), 3);
  free(csv);
  free(svg);
  CU_ASSERT_EQUAL(compare_p4("--schedules 1f1b,nope", NULL, NULL, NULL, &err), 64);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "--schedules: unknown schedule 'nope' (known: gpipe, 1f1b"));
  free(err);
  CU_ASSERT_EQUAL(compare_p4("--schedules 1f1b,1f1b", NULL, NULL, NULL, &err), 64);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "'1f1b' given twice"));
  free(err);
  CU_ASSERT_EQUAL(compare_p4("--schedules 1f1b,", NULL, NULL, NULL, &err), 64);
  free(err);
}

/* Rows are labelled with the stages their device holds: Mobius' cross
** mapping puts stage 2 on device 1 here, interleaved's two chunks put
** stages 0 and 4 on device 0. */
static void test_stage_labels(void) {
  char *svg = NULL;
  CU_ASSERT_EQUAL_FATAL(compare_p4("--schedules 1f1b,mobius,interleaved --quiet", NULL, &svg, NULL, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  const char *mob = strstr(svg, "mobius —"), *il = strstr(svg, "interleaved —");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mob);
  CU_ASSERT_PTR_NOT_NULL_FATAL(il);
  const char *d1 = strstr(mob, ">device 1</text>");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d1);
  CU_ASSERT_EQUAL(strncmp(strchr(d1 + 16, '>') + 1, "stage 2</text>", 14), 0);
  const char *d0 = strstr(il, ">device 0</text>");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d0);
  CU_ASSERT_EQUAL(strncmp(strchr(d0 + 16, '>') + 1, "stages 0, 4</text>", 18), 0);
  CU_ASSERT(strstr(svg, ">stage 3</text>") && strstr(svg, ">stage 3</text>") < mob); /* 1f1b */
  free(svg);
}

TS_TESTS{TS_TEST(test_all_schedules), TS_TEST(test_skipped), TS_TEST(test_same_program),
         TS_TEST(test_schedules_option), TS_TEST(test_stage_labels)};
TS_TEST_MAIN("compare")
