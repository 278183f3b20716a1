/*
** test_out_fold.c: what the outputs of a folded run say (src/out/ts_out_fold.c,
** README "Outputs", Folded runs; "Symmetry folding"):
**   - a GPT job with TP 4, PP 2, DP 4 on the four DGX-A100 nodes, run with
**     --fold: summary.json's fold object gives 2 classes, simulated
**     devices 0 and 4 and each device's representative (16 devices each,
**     every one with its representative's busy time); gantt.svg draws 2
**     rows, each labelled with its 16 devices and with compute boxes, and
**     its note says the run was folded; trace.json's otherData.fold,
**     paje.trace's second line and report.html's header say so, and
**     report.html draws one memory chart per class, saying so; stderr
**     says it once; --gantt-devices leaving the representatives out
**     still draws the chosen devices from their events;
**   - the same job with --exact has no fold object and no such words, and
**     an unfolded job's six outputs are byte for byte results/1f1b-p4-m8/.
*/
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tshelp.h"
#include "tsunit.h"

#define JOB                                                                                            \
  "run examples/dp-gpt-ib.json --set tensor_parallel=4 --set data_parallel=4 --set stages=2 --set " \
  "microbatches=4 "

static char *slurp_in(const char *dir, const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  char *s = th_slurp(path, NULL);
  CU_ASSERT_PTR_NOT_NULL(s);
  return s ? s : strdup("");
}

static int count(const char *s, const char *what) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
  return n;
}

/* The distinct y of the compute boxes of gantt.svg: the rows with boxes. */
static int op_rows(const char *svg, double *ys, int cap) {
  int n = 0;
  for (const char *p = svg; (p = strstr(p, "<rect class=\"op ")); p++) {
    const char *y = strstr(p, " y=\"");
    if (!y) break;
    double v = atof(y + 4);
    int k = 0;
    while (k < n && ys[k] != v) k++;
    if (k == n && n < cap) ys[n++] = v;
  }
  return n;
}

static void test_folded_outputs(void) {
  char dir[] = "/tmp/ts-out-fold-XXXXXX", args[700];
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  snprintf(args, sizeof args, JOB "--fold -f all -o %s", dir);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, &err), 0);
  CU_ASSERT_EQUAL(count(err, "trainsim: note: folded run: timeline.csv, trace.json and paje.trace hold the "
                             "events of the 2 simulated representatives only (devices 0,4 of 32)"), 1);
  free(err);

  char *s = slurp_in(dir, "summary.json");
  cJSON *o = cJSON_Parse(s), *f = cJSON_GetObjectItemCaseSensitive(o, "fold");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(cJSON_GetObjectItem(f, "devices")->valueint, 32);
  CU_ASSERT_EQUAL(cJSON_GetObjectItem(f, "classes")->valueint, 2);
  CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(f, "events_written")->valuestring, "simulated_devices");
  CU_ASSERT_PTR_NOT_NULL(strstr(cJSON_GetObjectItem(f, "rule")->valuestring, "tp = 0 and dp = 0"));
  cJSON *sim = cJSON_GetObjectItem(f, "simulated_devices"), *rep = cJSON_GetObjectItem(f, "representative");
  CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(sim), 2);
  CU_ASSERT_EQUAL(cJSON_GetArrayItem(sim, 0)->valueint, 0);
  CU_ASSERT_EQUAL(cJSON_GetArrayItem(sim, 1)->valueint, 4);
  CU_ASSERT_EQUAL_FATAL(cJSON_GetArraySize(rep), 32);
  cJSON *devs = cJSON_GetObjectItem(o, "devices");
  int per[2] = {0, 0};
  for (int d = 0; d < 32; d++) {
    int r = cJSON_GetArrayItem(rep, d)->valueint;
    CU_ASSERT(r == 0 || r == 4);
    if (r != 0 && r != 4) continue;
    per[r == 4]++;
    /* dp-gpt-ib's tp-pp-dp order: stage (d / 4) % 2 */
    CU_ASSERT_EQUAL(r, (d / 4) % 2 ? 4 : 0);
    double busy = cJSON_GetObjectItem(cJSON_GetArrayItem(devs, d), "busy_s")->valuedouble;
    double rbusy = cJSON_GetObjectItem(cJSON_GetArrayItem(devs, r), "busy_s")->valuedouble;
    CU_ASSERT(busy > 0 && busy == rbusy);
  }
  CU_ASSERT_EQUAL(per[0], 16);
  CU_ASSERT_EQUAL(per[1], 16);
  cJSON_Delete(o);
  free(s);

  /* gantt.svg: two rows, one per class, each with its boxes */
  s = slurp_in(dir, "gantt.svg");
  CU_ASSERT_EQUAL(count(s, "<g class=\"label\""), 2);
  CU_ASSERT_EQUAL(count(s, ", 16 identical devices drawn as device 0 (folded: simulated once)"), 1);
  CU_ASSERT_EQUAL(count(s, ", 16 identical devices drawn as device 4 (folded: simulated once)"), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, ">Folded run: each row"));
  double ys[8];
  CU_ASSERT_EQUAL(op_rows(s, ys, 8), 2);
  free(s);

  s = slurp_in(dir, "trace.json");
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"fold\":{\"devices\":32,\"classes\":2,\"simulated_devices\":\"0,4\""));
  free(s);
  s = slurp_in(dir, "paje.trace");
  const char *l2 = strchr(s, '\n');
  CU_ASSERT(l2 && !strncmp(l2 + 1, "# trainsim: folded run: only devices 0,4 ", 41));
  free(s);
  s = slurp_in(dir, "report.html");
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "<b>Folded run:</b> 2 of the 32 devices were simulated (devices 0,4)"));
  /* one memory chart per class, said so */
  CU_ASSERT_EQUAL(count(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mem\""), 2);
  CU_ASSERT_EQUAL(count(s, " \xC2\xB7 for the 16 devices of its folded class"), 2);
  CU_ASSERT_EQUAL(count(s, "one chart per class of identical devices (2 charts for 32 devices)"), 1);
  free(s);
  /* timeline.csv: the representatives' events only */
  s = slurp_in(dir, "timeline.csv");
  int other = 0, rows = 0;
  for (const char *p = strchr(s, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
    rows++;
    other += atoi(p + 1) != 0 && atoi(p + 1) != 4;
  }
  CU_ASSERT(rows > 0);
  CU_ASSERT_EQUAL(other, 0);
  free(s);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);

  /* the default formats: the note names the two event files written */
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(strcpy(dir, "/tmp/ts-out-fold-XXXXXX")));
  snprintf(args, sizeof args, JOB "--fold -o %s", dir);
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, &err), 0);
  CU_ASSERT_EQUAL(count(err, "trainsim: note: folded run: timeline.csv and trace.json hold the events of the 2 "
                             "simulated representatives only (devices 0,4 of 32)"), 1);
  free(err);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
}

/* --gantt-devices without the representatives: their events still draw
** the rows, labelled with the chosen devices and their hosts. */
static void test_folded_subset(void) {
  char dir[] = "/tmp/ts-out-fold-XXXXXX", args[700];
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  snprintf(args, sizeof args, JOB "--fold --gantt-devices 1-3,5 -f gantt -o %s", dir);
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, NULL), 0);
  char *s = slurp_in(dir, "gantt.svg");
  CU_ASSERT_EQUAL(count(s, "<title>devices 1\xE2\x80\x93" "3, 3 identical devices drawn as device 0 (folded: "
                           "simulated once) (node0-gpu1)"), 1);
  CU_ASSERT_EQUAL(count(s, "<title>device 5, drawn as device 4 (folded: simulated once) (node0-gpu5)"), 1);
  double ys[8];
  CU_ASSERT_EQUAL(op_rows(s, ys, 8), 2);
  free(s);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
}

static void test_exact_says_nothing(void) {
  char dir[] = "/tmp/ts-out-fold-XXXXXX", args[700];
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  snprintf(args, sizeof args, JOB "--exact -f all -o %s", dir);
  char *err = NULL;
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, &err), 0);
  CU_ASSERT_PTR_NULL(strstr(err, "folded run"));
  free(err);
  const char *files[] = {"summary.json", "gantt.svg", "trace.json", "paje.trace", "report.html"};
  for (int i = 0; i < 5; i++) {
    char *s = slurp_in(dir, files[i]);
    CU_ASSERT_PTR_NULL(strstr(s, "\"fold\""));
    CU_ASSERT_PTR_NULL(strstr(s, "olded run"));
    free(s);
  }
  char *s = slurp_in(dir, "gantt.svg");
  /* over the figure's budget, the exact run's identical devices share
  ** rows too: the same two rows as the folded figure */
  CU_ASSERT_EQUAL(count(s, "<g class=\"label\""), 2);
  CU_ASSERT_EQUAL(count(s, ", 16 identical devices drawn as device 4 (node0-gpu4)"), 1);
  free(s);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);

  /* an unfolded job writes what it always wrote */
  char d2[] = "/tmp/ts-out-fold-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(d2));
  snprintf(args, sizeof args, "run examples/1f1b-p4-m8.json -o %s --quiet", d2);
  CU_ASSERT_EQUAL_FATAL(th_cli(args, NULL, NULL), 0);
  const char *all[] = {"summary.json", "timeline.csv", "trace.json", "gantt.svg", "report.html"};
  for (int i = 0; i < 5; i++) {
    snprintf(args, sizeof args, "cmp -s results/1f1b-p4-m8/%s %s/%s", all[i], d2, all[i]);
    CU_ASSERT_EQUAL(system(args), 0);
  }
  snprintf(args, sizeof args, "rm -rf '%s'", d2);
  CU_ASSERT_EQUAL(system(args), 0);
}

TS_TESTS{
    TS_TEST(test_folded_outputs),
    TS_TEST(test_folded_subset),
    TS_TEST(test_exact_says_nothing),
};
TS_TEST_MAIN("outputs of folded runs")
