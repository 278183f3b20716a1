/*
** test_formats.c: the registries of the out layer (README "Outputs").
**
**   - the format registry (ts_formats.h): names unique, ts_formats_parse
**     accepts file names and their stems and rejects unknown and empty
**     names with a message that names the option and every format;
**   - `trainsim run -f LIST` writes exactly the chosen files, the default
**     every registered format but paje.trace, `-f all` every one, a bad
**     name exits 64 and writes nothing, compare refuses -f;
**   - README's Outputs table and its ### subsections list exactly the
**     registered formats, with the registry's descriptions;
**   - the summary metrics list: summary.json holds every listed metric at
**     its path with the list's value; every metric has its definition in
**     README's summary.json table, and every top-level metric row of that
**     table is in the list.
*/
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>

#include "tshelp.h"
#include "tsunit.h"
#include "ts_internal.h"
#include "sweep_internal.h"

static const char *const job = "examples/1f1b-p4-m8.json";

/* The mask of the files in dir (bit i: format i), or -1 when dir holds a
** file that is no registered format. */
static int files_in(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int mask = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    int k = -1;
    for (int i = 0; i < TS_N_FORMATS; i++)
      if (!strcmp(e->d_name, ts_format_at(i)->file)) k = i;
    if (k < 0) {
      printf("\n  unexpected file %s/%s\n", dir, e->d_name);
      mask = -1;
      break;
    }
    mask |= (int)TS_FORMAT_BIT(k);
  }
  closedir(d);
  return mask;
}

static char *tmp_dir(void) {
  static char d[64];
  snprintf(d, sizeof d, "/tmp/ts-formats-XXXXXX");
  return mkdtemp(d);
}

static void rm_outputs(const char *dir) {
  char p[512];
  for (int i = 0; i < TS_N_FORMATS; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, ts_format_at(i)->file);
    unlink(p);
  }
  rmdir(dir);
}

static void registry(void) {
  CU_ASSERT_EQUAL(TS_N_FORMATS, 6);
  CU_ASSERT_PTR_NULL(ts_format_at(-1));
  CU_ASSERT_PTR_NULL(ts_format_at(TS_N_FORMATS));
  CU_ASSERT_STRING_EQUAL(ts_format_at(TS_FMT_SUMMARY)->file, "summary.json");
  CU_ASSERT_STRING_EQUAL(ts_format_at(TS_FMT_REPORT)->file, "report.html");
  CU_ASSERT(ts_format_at(TS_FMT_GANTT)->write == ts_write_gantt_svg);
  for (int i = 0; i < TS_N_FORMATS; i++) {
    const ts_format_t *f = ts_format_at(i);
    CU_ASSERT(f->write != NULL && f->about[0] && strchr(f->file, '.'));
    for (int k = 0; k < i; k++) CU_ASSERT(strcmp(f->file, ts_format_at(k)->file) != 0);
  }
  CU_ASSERT_EQUAL(TS_FORMATS_ALL, 0x3fu);
  CU_ASSERT(ts_format_at(TS_FMT_PAJE)->write == ts_write_paje);
}

static void parse(void) {
  unsigned m = 0;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_formats_parse("summary,gantt.svg", &m, &err), 0);
  CU_ASSERT_EQUAL(m, TS_FORMAT_BIT(TS_FMT_SUMMARY) | TS_FORMAT_BIT(TS_FMT_GANTT));
  CU_ASSERT_EQUAL(ts_formats_parse("report.html", &m, &err), 0);
  CU_ASSERT_EQUAL(m, TS_FORMAT_BIT(TS_FMT_REPORT));
  CU_ASSERT_EQUAL(ts_formats_parse("trace,trace.json,timeline", &m, &err), 0);
  CU_ASSERT_EQUAL(m, TS_FORMAT_BIT(TS_FMT_TRACE) | TS_FORMAT_BIT(TS_FMT_TIMELINE));
  CU_ASSERT_EQUAL(ts_formats_parse("summary,timeline,trace,gantt,report,paje", &m, &err), 0);
  CU_ASSERT_EQUAL(m, TS_FORMATS_ALL);
  CU_ASSERT_EQUAL(ts_formats_parse("all", &m, &err), 0);
  CU_ASSERT_EQUAL(m, TS_FORMATS_ALL);
  CU_ASSERT_EQUAL(ts_formats_parse("summary,all", &m, &err), 0);
  CU_ASSERT_EQUAL(m, TS_FORMATS_ALL);
  /* without -f: every format but paje.trace */
  CU_ASSERT_EQUAL(TS_FORMATS_DEFAULT, TS_FORMATS_ALL & ~TS_FORMAT_BIT(TS_FMT_PAJE));
  for (int i = 0; i < TS_N_FORMATS; i++)
    CU_ASSERT_EQUAL(ts_format_at(i)->by_default, (TS_FORMATS_DEFAULT >> i) & 1u);

  static const char *const bad[] = {"bogus", "summary,svg", "", "summary,", ",gantt", "summary.jso",
                                    "gantt.svg.x", "Summary", "al", "All"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ts_err_t e = {0};
    m = 12345;
    CU_ASSERT_EQUAL(ts_formats_parse(bad[i], &m, &e), EX_USAGE);
    CU_ASSERT_EQUAL(m, 12345u); /* untouched on error */
    CU_ASSERT_EQUAL(e.code, EX_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "-f/--formats"));
    CU_ASSERT_PTR_NULL(strchr(e.msg, '\n'));
    for (int k = 0; k < TS_N_FORMATS; k++) CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, ts_format_at(k)->file));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, ", all)"));
  }
  ts_err_t e = {0};
  ts_formats_parse("summary,bogus", &m, &e);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "'bogus'"));

  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ts_formats_print(f, TS_FORMAT_BIT(TS_FMT_TIMELINE) | TS_FORMAT_BIT(TS_FMT_REPORT), ",");
  fclose(f);
  CU_ASSERT_STRING_EQUAL(buf, "timeline.csv,report.html");
  free(buf);
}

static void cli_subset(void) {
  char *dir = tmp_dir(), args[512], *so, *se;
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  snprintf(args, sizeof args, "run %s -o %s -f summary,gantt.svg", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), 0);
  CU_ASSERT_EQUAL(files_in(dir), (int)(TS_FORMAT_BIT(TS_FMT_SUMMARY) | TS_FORMAT_BIT(TS_FMT_GANTT)));
  char want[600];
  snprintf(want, sizeof want, "outputs          %s/{summary.json,gantt.svg}\n", dir);
  CU_ASSERT_PTR_NOT_NULL(strstr(so, want));
  free(so);
  free(se);
  rm_outputs(dir);

  dir = tmp_dir();
  snprintf(args, sizeof args, "run %s -o %s --formats report", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), 0);
  CU_ASSERT_EQUAL(files_in(dir), (int)TS_FORMAT_BIT(TS_FMT_REPORT));
  snprintf(want, sizeof want, "outputs          %s/report.html\n", dir);
  CU_ASSERT_PTR_NOT_NULL(strstr(so, want));
  free(so);
  free(se);
  rm_outputs(dir);
}

static void cli_default_all(void) {
  char *dir = tmp_dir(), args[512], *so, *se;
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  snprintf(args, sizeof args, "run %s -o %s", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), 0);
  CU_ASSERT_EQUAL(files_in(dir), (int)TS_FORMATS_DEFAULT);
  char want[600];
  snprintf(want, sizeof want, "outputs          %s/{summary.json,timeline.csv,trace.json,gantt.svg,report.html}\n",
           dir);
  CU_ASSERT_PTR_NOT_NULL(strstr(so, want));
  free(so);
  free(se);
  rm_outputs(dir);

  dir = tmp_dir(); /* -f all: paje.trace too */
  snprintf(args, sizeof args, "run %s -o %s -f all", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), 0);
  CU_ASSERT_EQUAL(files_in(dir), (int)TS_FORMATS_ALL);
  snprintf(want, sizeof want,
           "outputs          %s/{summary.json,timeline.csv,trace.json,gantt.svg,report.html,paje.trace}\n", dir);
  CU_ASSERT_PTR_NOT_NULL(strstr(so, want));
  free(so);
  free(se);
  rm_outputs(dir);
}

static void cli_bad_name(void) {
  char *dir = tmp_dir(), sub[128], args[512], *so, *se;
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  snprintf(sub, sizeof sub, "%s/out", dir);
  snprintf(args, sizeof args, "run %s -o %s -f summary,svg", job, sub);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(se, "trainsim: error: -f/--formats: unknown format 'svg'"));
  for (int k = 0; k < TS_N_FORMATS; k++) CU_ASSERT_PTR_NOT_NULL(strstr(se, ts_format_at(k)->file));
  CU_ASSERT(strchr(se, '\n') == se + strlen(se) - 1); /* one line */
  struct stat st;
  CU_ASSERT_NOT_EQUAL(stat(sub, &st), 0); /* nothing written, not even DIR */
  free(so);
  free(se);

  snprintf(args, sizeof args, "run %s -o %s -f", job, sub);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), EX_USAGE);
  CU_ASSERT_NOT_EQUAL(stat(sub, &st), 0);
  free(so);
  free(se);

  snprintf(args, sizeof args, "compare %s -o %s -f summary", job, sub);
  CU_ASSERT_EQUAL(th_cli(args, &so, &se), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(se, "compare: -f/--formats applies to run only"));
  CU_ASSERT_NOT_EQUAL(stat(sub, &st), 0);
  free(so);
  free(se);
  rmdir(dir);
}

/* The lines of README.md from the one starting with from up to (not
** including) the next one starting with until; malloc'd. */
static char *readme_part(const char *from, const char *until) {
  char *all = th_slurp("README.md", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(all);
  char *a = strstr(all, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  char *b = strstr(a + strlen(from), until);
  if (b) *b = 0;
  char *out = ts__xstrdup(a);
  free(all);
  return out;
}

/* Removes the backticks of s in place. */
static void unquote(char *s) {
  char *w = s;
  for (char *r = s; *r; r++)
    if (*r != '`') *w++ = *r;
  *w = 0;
}

static void readme_formats(void) {
  char *part = readme_part("\n## Outputs\n", "\n## ");
  /* The subsections: "### file", exactly the registry's, in order. */
  int sec = 0;
  for (char *q = part; (q = strstr(q, "\n### ")); q++) {
    char name[128];
    sscanf(q + 5, "%127s", name);
    CU_ASSERT(sec < TS_N_FORMATS && !strcmp(name, ts_format_at(sec)->file));
    sec++;
  }
  CU_ASSERT_EQUAL(sec, TS_N_FORMATS);
  /* The table: "| `file` | contents |" rows, exactly the registry's, in
  ** order (this cuts part into lines). */
  int row = 0;
  char *p = strstr(part, "| file | contents | written |");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  p = strchr(p, '\n') + 1;
  p = strchr(p, '\n') + 1; /* |---|---| */
  while (!strncmp(p, "| `", 3)) {
    char *eol = strchr(p, '\n');
    *eol = 0;
    char want[256];
    const ts_format_t *f = ts_format_at(row);
    if (f) snprintf(want, sizeof want, "| `%s` | %s | %s |", f->file, f->about, f->by_default ? "by default" : "with `-f`");
    CU_ASSERT(f && !strcmp(p, want));
    if (!f || strcmp(p, want)) printf("\n  README Outputs row %d: %s\n", row, p);
    row++;
    p = eol + 1;
  }
  CU_ASSERT_EQUAL(row, TS_N_FORMATS);
  free(part);
}

/* Rows of README's summary.json table that are top-level metrics: not the
** version, the job's echo, or the moe, fold, devices and links objects. */
static bool metric_row(const char *name) {
  return strncmp(name, "moe.", 4) && strncmp(name, "fold.", 5) && strncmp(name, "devices[]", 9) && strncmp(name, "links[]", 7) &&
         strcmp(name, "job.*") && strncmp(name, "trainsim_version", 16);
}

static void readme_metrics(void) {
  char *part = readme_part("\n### summary.json\n", "\n### ");
  bool seen[64] = {false};
  int n_list = 0, rows = 0;
  while (ts_summary_metric_at(n_list)) n_list++;
  CU_ASSERT(n_list >= 10 && n_list < 64);
  for (char *line = strtok(part, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "| `", 3)) continue;
    char *name = line + 2, *bar = strstr(name, " | ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bar);
    *bar = 0;
    char *def = bar + 3, *end = strrchr(def, '|');
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    while (end > def && end[-1] == ' ') end--;
    *end = 0;
    unquote(name);
    unquote(def);
    if (!metric_row(name)) continue;
    rows++;
    int k = -1;
    for (int i = 0; i < n_list; i++)
      if (!strcmp(ts_summary_metric_at(i)->name, name)) k = i;
    CU_ASSERT(k >= 0);
    if (k < 0) {
      printf("\n  README metric %s is not in the summary metrics list\n", name);
      continue;
    }
    seen[k] = true;
    CU_ASSERT_STRING_EQUAL(ts_summary_metric_at(k)->definition, def);
  }
  for (int i = 0; i < n_list; i++) {
    CU_ASSERT(seen[i]);
    if (!seen[i]) printf("\n  metric %s has no README row\n", ts_summary_metric_at(i)->name);
  }
  CU_ASSERT_EQUAL(rows, n_list);
  free(part);
}

/* summary.json holds each listed metric at its path, with the list's value. */
static void summary_uses_list(void) {
  ts_job_t *j = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(ts_job_load(job, NULL, 0, &j, &err), 0);
  CU_ASSERT_EQUAL_FATAL(ts_simulate(j, &o, &err), 0);
  cJSON *t = ts__summary_json(&o.r);
  const ts_summary_metric_t *sm;
  int n = 0;
  for (int i = 0; (sm = ts_summary_metric_at(i)); i++, n++) {
    char path[128];
    snprintf(path, sizeof path, "%s", sm->name);
    char *dot = strchr(path, '.');
    cJSON *parent = t;
    if (dot) {
      *dot = 0;
      parent = cJSON_GetObjectItemCaseSensitive(t, path);
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, dot ? dot + 1 : path);
    CU_ASSERT_PTR_NOT_NULL(v);
    double want = ts_summary_metric_value(sm, &o.r);
    bool ok = isfinite(want) ? cJSON_IsNumber(v) && v->valuedouble == want : cJSON_IsNull(v);
    CU_ASSERT(ok);
    if (!ok) printf("\n  summary.json %s differs from the list's value\n", sm->name);
  }
  /* The synthetic example: no FLOPs, so the FLOPs metrics are null. */
  CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(t, "throughput"), "mfu")));
  CU_ASSERT_EQUAL(cJSON_GetObjectItemCaseSensitive(t, "iteration_time_s")->valuedouble,
                  o.r.metrics->iteration_time_s);
  CU_ASSERT(n >= 10);
  cJSON_Delete(t);
  ts_outcome_free(&o);
  ts_job_free(j);
}

/* The sweep's columns are registered summary metrics (same path, same
** unit), except its one aggregate of devices[], the largest peak memory. */
static void sweep_columns_are_registered(void) {
  for (int i = 0; i < SW_N_MET; i++) {
    const sw_metric_t *c = &ts__sw_metrics[i];
    if (i == SW_MET_MAXPEAK) {
      CU_ASSERT_STRING_EQUAL(c->name, "max_peak_memory_bytes");
      continue;
    }
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", c->parent ? c->parent : "", c->parent ? "." : "", c->name);
    const ts_summary_metric_t *m = NULL;
    for (int k = 0; ts_summary_metric_at(k); k++)
      if (!strcmp(ts_summary_metric_at(k)->name, path)) m = ts_summary_metric_at(k);
    CU_ASSERT_PTR_NOT_NULL(m);
    if (!m) {
      fprintf(stderr, "sweep column %s is not a registered metric\n", path);
      continue;
    }
    CU_ASSERT_STRING_EQUAL(c->unit[0] ? c->unit : "1", m->unit);
  }
}

TS_TESTS{
    TS_TEST(sweep_columns_are_registered),
    TS_TEST(registry),       TS_TEST(parse),          TS_TEST(cli_subset),
    TS_TEST(cli_default_all), TS_TEST(cli_bad_name),  TS_TEST(readme_formats),
    TS_TEST(readme_metrics), TS_TEST(summary_uses_list),
};

TS_TEST_MAIN("formats")
