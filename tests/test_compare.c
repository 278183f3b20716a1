/*
** test_compare.c: `trainsim compare` runs every applicable schedule.
**   - one CSV row per registered schedule, each equal to the same
**     schedule's own `trainsim run` (iteration time, bubble fraction);
**   - the adjustments a schedule needs are listed (varuna: recompute=full,
**     interleaved: chunks=2);
**   - a schedule whose rules reject the job is skipped with the reason
**     (chimera on an odd number of stages), the others still run;
**   - compare.svg stacks one Gantt chart per schedule that ran.
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
  int n = 0;
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
    for (int k = 0; k < 8 && cur; k++) f[k] = strsep(&cur, ",");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f[3]);
    char adj[64], status[16];
    snprintf(adj, sizeof adj, "%s", f[0]);
    snprintf(status, sizeof status, "%s", f[1]);
    double it = atof(f[2]), bf = atof(f[3]);
    if (!strcmp(name, "varuna")) CU_ASSERT_STRING_EQUAL(adj, "recompute=full");
    if (!strcmp(name, "interleaved")) CU_ASSERT_STRING_EQUAL(adj, "chunks=2");
    CU_ASSERT_STRING_EQUAL(status, "ok");
    char extra[96] = "";
    if (strchr(adj, '=')) snprintf(extra, sizeof extra, "--set %s", adj);
    TS_ASSERT_REL(it, run_metric("examples/1f1b-p4-m8.json", name, extra, "iteration_time_s"), 1e-12);
    TS_ASSERT_REL(bf, run_metric("examples/1f1b-p4-m8.json", name, extra, "bubble_fraction"), 1e-12);
  }
  CU_ASSERT(n >= 7);
  snprintf(p, sizeof p, "%s/compare.svg", dir);
  char *svg = th_slurp(p, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  CU_ASSERT_EQUAL(count(svg, "<svg "), n + 1); /* the outer one and one per schedule */
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

TS_TESTS{TS_TEST(test_all_schedules), TS_TEST(test_skipped)};
TS_TEST_MAIN("compare")
