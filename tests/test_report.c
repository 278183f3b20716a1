/*
** test_report.c: report.html (src/out/ts_report.c).
**   - structure, checked without an HTML library: the doctype, one <svg>
**     per chart (the Gantt chart and one memory chart per device), one box
**     per compute op and per transfer, balanced sections, tables and divs;
**   - self-contained: no http:// or https:// reference but the SVG
**     namespace, no <script src=, <link>, <img>, url( or @import;
**   - every row of README's summary.json table (its name and definition,
**     read from README.md itself) is on the page;
**   - memory charts: the model-states band and the capacity line when the
**     host has one; hover titles on the boxes, extended with bytes;
**   - byte-identical when written twice;
**   - a run over TS_REPORT_MAX_EVENTS events: no inline Gantt chart, the
**     page says so, and stays small;
**   - headless Chromium (skipped with a note when no chromium is
**     installed): the inline script ran (<body data-ready="1">) and counted
**     every box; hovering the first box (report.html#selftest) shows its
**     details in the tooltip; no console message or uncaught error was
**     logged, and a scratch copy with an injected error shows that this
**     check catches one.
*/
#include <sys/stat.h>

#include "ts_report.h"
#include "ts_sim.h"
#include "tshelp.h"
#include "tsunit.h"

static const char *job_ideal =
    "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0,"
    " \"activation_message_bytes\": 1000, \"activation_bytes\": 5000, \"weights_bytes\": 20000},"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8}";

static const char *job_pcie =
    "{\"model\": {\"kind\": \"transformer\", \"name\": \"tiny & <gpt>\", \"layers\": 8, \"hidden\": 256,"
    " \"heads\": 4, \"vocab\": 1000}, \"platform\": \"pcie-4gpu.xml\", \"schedule\": \"gpipe\","
    " \"stages\": 4, \"microbatches\": 4, \"seq_len\": 512}";

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* The report of the job file at path (with --set strings) as a malloc'd
** string, and the counts of devices, compute ops and transfers; NULL on
** failure. */
static char *report_of_file(const char *path, const char *const *sets, int n_sets, int *n_dev,
                            int *n_compute, int *n_xfer) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  if (ts_job_load(path, sets, n_sets, &job, &err) || ts_simulate(job, &o, &err)) {
    printf("\n  simulate: %s\n", err.msg);
    ts_job_free(job);
    return NULL;
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  int rc = ts_write_report_html(&o.r, m);
  fclose(m);
  if (n_dev) *n_dev = o.run->n_devices;
  int nc = 0, nx = 0;
  for (int i = 0; i < o.run->n_events; i++) {
    ts_kind_t k = (ts_kind_t)o.run->events[i].kind;
    /* The optimizer step and communication waits are drawn on the compute
    ** row, as ops; collectives and transfers as transfers. */
    const ts_event_t *e = &o.run->events[i];
    if (ts_kind_is_compute(k) || k == TS_OPTIMIZER || k == TS_COMM_WAIT)
      nc++;
    else if (k == TS_COLLECTIVE || (e->flags & TS_EVF_A2A_CALL) || e->bytes > 0)
      nx++; /* transfers of no bytes are not drawn */
  }
  if (n_compute) *n_compute = nc;
  if (n_xfer) *n_xfer = nx;
  ts_outcome_free(&o);
  ts_job_free(job);
  if (rc) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* The same for a job given as JSON text (in a temporary file). */
static char *report_of(const char *json, const char *const *sets, int n_sets, int *n_dev,
                       int *n_compute, int *n_xfer) {
  const char *path = th_write_tmp(json, ".json");
  char *h = path ? report_of_file(path, sets, n_sets, n_dev, n_compute, n_xfer) : NULL;
  if (path) unlink(path);
  return h;
}

/* Appends s HTML-escaped as ts_report.c escapes it. */
static void escape(char *out, size_t cap, const char *s) {
  size_t n = 0;
  out[0] = 0;
  for (; *s && n + 8 < cap; s++) {
    const char *r = NULL;
    switch (*s) {
      case '&': r = "&amp;"; break;
      case '<': r = "&lt;"; break;
      case '>': r = "&gt;"; break;
      case '"': r = "&quot;"; break;
      case '\'': r = "&#39;"; break;
    }
    if (r) {
      n += (size_t)snprintf(out + n, cap - n, "%s", r);
    } else {
      out[n++] = *s;
      out[n] = 0;
    }
  }
}

/* Removes backticks in place. */
static void unquote(char *s) {
  char *w = s;
  for (char *r = s; *r; r++)
    if (*r != '`') *w++ = *r;
  *w = 0;
}

static void test_structure(void) {
  int nd = 0, nc = 0, nx = 0;
  char *h = report_of(job_ideal, NULL, 0, &nd, &nc, &nx);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_EQUAL(strncmp(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">", 61), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "</body>\n</html>\n"));
  CU_ASSERT_EQUAL(count(h, "<html"), 1);
  CU_ASSERT_EQUAL(count(h, "<body"), 1);
  /* one chart per device plus the Gantt chart */
  CU_ASSERT_EQUAL(nd, 4);
  CU_ASSERT_EQUAL(count(h, "<svg"), 1 + nd);
  CU_ASSERT_EQUAL(count(h, "</svg>"), 1 + nd);
  CU_ASSERT_EQUAL(count(h, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mem\""), nd);
  /* one box per op and per transfer, each with its title */
  CU_ASSERT_EQUAL(nc, 4 * 8 * 2);
  CU_ASSERT_EQUAL(count(h, "<rect class=\"op "), nc);
  CU_ASSERT_EQUAL(count(h, "<rect class=\"xfer "), nx);
  CU_ASSERT(nx > 0);
  CU_ASSERT(count(h, "<title>") >= nc + nx);
  CU_ASSERT_EQUAL(count(h, "<title>"), count(h, "</title>"));
  /* the titles of compute boxes name the bytes they stash or free */
  CU_ASSERT_EQUAL(count(h, ", stashes 4.88 KiB of activations</title>"), 4 * 8);
  CU_ASSERT_EQUAL(count(h, ", frees 4.88 KiB of activations</title>"), 4 * 8);
  /* balanced elements */
  static const char *const pairs[][2] = {{"<section", "</section>"}, {"<table", "</table>"},
                                         {"<div", "</div>"},         {"<tr>", "</tr>"},
                                         {"<script>", "</script>"},  {"<style>", "</style>"},
                                         {"<g", "</g>"}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    CU_ASSERT_EQUAL(count(h, pairs[i][0]), count(h, pairs[i][1]));
  CU_ASSERT_EQUAL(count(h, "<script"), 1);
  CU_ASSERT_EQUAL(count(h, "<style"), 1);
  /* self-contained */
  CU_ASSERT_EQUAL(count(h, "http://"), count(h, "http://www.w3.org/2000/svg\""));
  CU_ASSERT_EQUAL(count(h, "https://"), 0);
  CU_ASSERT_EQUAL(count(h, "<script src"), 0);
  CU_ASSERT_EQUAL(count(h, "<link"), 0);
  CU_ASSERT_EQUAL(count(h, "<img"), 0);
  CU_ASSERT_EQUAL(count(h, "<iframe"), 0);
  CU_ASSERT_EQUAL(count(h, "url("), 0);
  CU_ASSERT_EQUAL(count(h, "@import"), 0);
  CU_ASSERT_EQUAL(count(h, "src="), 0);
  /* the hover script and its target */
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<div id=\"ts-tip\" role=\"tooltip\" hidden></div>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "'rect.op, rect.xfer, .mem-hit'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "setAttribute('data-ready', '1')"));
  /* memory charts: the states band (weights_bytes > 0), no capacity on
  ** the ideal platform */
  CU_ASSERT_EQUAL(count(h, "<rect class=\"states\""), nd);
  CU_ASSERT_EQUAL(count(h, "<path class=\"act\""), nd);
  CU_ASSERT_EQUAL(count(h, "class=\"capacity\""), 0);
  CU_ASSERT_EQUAL(count(h, "class=\"mem-hit\""), nd);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "n/a (synthetic model)"));
  free(h);
}

/* Every row of README's summary.json table, name and definition, is on
** the page of a job it applies to: a dense job, the same with data
** parallelism, a MoE job and a Mobius job.  The dense job's page leaves
** out the rows that do not apply to it (MoE, data parallelism, host
** memory) and says so. */
static void test_definitions(void) {
  const char *dp[] = {"data_parallel=2"};
  const char *fold[] = {"tensor_parallel=4", "data_parallel=4", "stages=2", "microbatches=4"};
  char *pages[5] = {report_of(job_ideal, NULL, 0, NULL, NULL, NULL), report_of(job_ideal, dp, 1, NULL, NULL, NULL),
                    report_of_file(TS_SOURCE_DIR "/examples/gshard-ep16.json", NULL, 0, NULL, NULL, NULL),
                    report_of_file(TS_SOURCE_DIR "/examples/mobius-gpt13b.json", NULL, 0, NULL, NULL, NULL), NULL};
  int saved = ts_sim_fold;
  ts_sim_fold = 1; /* a folded run: the fold rows (README "Symmetry folding") */
  pages[4] = report_of_file(TS_SOURCE_DIR "/examples/dp-gpt-ib.json", fold, 4, NULL, NULL, NULL);
  ts_sim_fold = saved;
  for (int i = 0; i < 5; i++) CU_ASSERT_PTR_NOT_NULL_FATAL(pages[i]);
  CU_ASSERT_PTR_NOT_NULL(strstr(pages[4], "<b>Folded run:</b>"));
  CU_ASSERT_PTR_NULL(strstr(pages[0], "fold."));
  FILE *f = fopen("README.md", "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char line[4096];
  int state = 0, rows = 0;
  while (fgets(line, sizeof line, f)) {
    if (state == 0 && !strncmp(line, "### summary.json", 16)) state = 1;
    else if (state == 1 && !strncmp(line, "| `", 3)) state = 2;
    if (state == 2 && strncmp(line, "| `", 3)) break;
    if (state != 2) continue;
    /* "| `name` | definition |" */
    char *name = line + 2, *bar = strstr(name, " | ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bar);
    *bar = 0;
    char *def = bar + 3;
    char *end = strrchr(def, '|');
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    while (end > def && end[-1] == ' ') end--;
    *end = 0;
    unquote(name);
    unquote(def);
    char en[4096], ed[8192];
    escape(en, sizeof en, name);
    escape(ed, sizeof ed, def);
    bool found = false;
    for (int i = 0; i < 5 && !found; i++) found = strstr(pages[i], en) && strstr(pages[i], ed);
    if (!found) printf("\n  on no page: %s: %s\n", en, ed);
    CU_ASSERT(found);
    rows++;
  }
  fclose(f);
  CU_ASSERT(rows >= 20);
  const char *h = pages[0];
  CU_ASSERT_PTR_NULL(strstr(h, "<code>moe."));
  CU_ASSERT_PTR_NULL(strstr(h, "n/a (no MoE layers)"));
  CU_ASSERT_PTR_NULL(strstr(h, "<code>dp_comm_s</code>"));
  CU_ASSERT_PTR_NULL(strstr(h, "<code>devices[].dp_bytes</code>"));
  CU_ASSERT_PTR_NULL(strstr(h, "<code>devices[].host_bytes</code>"));
  CU_ASSERT_PTR_NULL(strstr(h, "mobius"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "the mixture-of-experts metrics (no MoE layers)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(pages[1], "<code>dp_comm_s</code>"));
  CU_ASSERT_PTR_NULL(strstr(pages[1], "<code>moe."));
  CU_ASSERT_PTR_NOT_NULL(strstr(pages[2], "<code>moe.aux_loss</code>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(pages[3], "<code>devices[].room_wait_s</code>"));
  for (int i = 0; i < 5; i++) free(pages[i]);
}

/* The page explains the bubble: the measured fraction against the closed
** form (1F1B, p = 4, m = 8: 3/11), the reason when they differ, and no
** pointer to README. */
static void test_bubble_and_terms(void) {
  char *h = report_of(job_ideal, NULL, 0, NULL, NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<h2>How to read this page</h2>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "Measured bubble fraction: <b>0.2727</b>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "(p &minus; 1) / (m + p &minus; 1) = 3 / 11 = <b>0.2727</b>. The run matches it."));
  CU_ASSERT_PTR_NULL(strstr(h, "README"));
  CU_ASSERT_PTR_NULL(strstr(h, "B, W")); /* no split backward here */
  free(h);
  /* unequal stages: the last one is twice as slow */
  const char *sets[] = {"model.forward_s=[1,1,1,2]", "model.backward_s=[2,2,2,4]"};
  h = report_of(job_ideal, sets, 2, NULL, NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "The run is "));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "above it."));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "The stages are not equal: device 3 computes for"));
  free(h);
  /* ZB-H1: its own closed form, and B and W explained */
  const char *zb[] = {"schedule=zb-h1"};
  h = report_of(job_ideal, zb, 1, NULL, NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "T<sub>W</sub>)] with this run's mean op times"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<dt>B, W</dt>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<title>B stage 0 chunk 0 mb 1"));
  free(h);
}

static void test_deterministic(void) {
  const char *path = th_write_tmp(job_pcie, ".json");
  CU_ASSERT_PTR_NOT_NULL_FATAL(path);
  char *a = report_of_file(path, NULL, 0, NULL, NULL, NULL);
  char *b = report_of_file(path, NULL, 0, NULL, NULL, NULL);
  unlink(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_STRING_EQUAL(a, b);
  free(a);
  free(b);
}

/* A real platform: capacities, escaped model name, FLOP figures.  A
** capacity far above every peak stays off the memory charts' scale; one
** within 1.5 times of the peak is drawn (here: a model that does not fit). */
static void test_capacity_and_escaping(void) {
  int nd = 0;
  char *h = report_of(job_pcie, NULL, 0, &nd, NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_EQUAL(count(h, "class=\"capacity\""), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "Capacities far above every peak are left off the scale"));
  CU_ASSERT_EQUAL(count(h, " of 24.00 GiB</text>"), nd);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "tiny &amp; &lt;gpt&gt;"));
  CU_ASSERT_PTR_NULL(strstr(h, "<gpt>"));
  CU_ASSERT_PTR_NULL(strstr(h, "n/a (synthetic model)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "FLOP/s"));
  free(h);

  const char *big[] = {"model.hidden=8192", "model.heads=64"};
  h = report_of(job_pcie, big, 2, &nd, NULL, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_EQUAL(count(h, "class=\"capacity\""), nd);
  CU_ASSERT_PTR_NULL(strstr(h, "left off the scale"));
  CU_ASSERT_EQUAL(count(h, " \xE2\x80\x94 does not fit</text>"), nd);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<div class=\"card bad\"><div class=\"k\">over capacity</div>"
                                   "<div class=\"v\">4 devices</div></div>"));
  free(h);
}

/* Over TS_REPORT_MAX_EVENTS events: no inline Gantt chart, small page. */
static void test_large_run(void) {
  const char *sets[] = {"microbatches=2600"};
  int nd = 0, nc = 0, nx = 0;
  char *h = report_of(job_ideal, sets, 1, &nd, &nc, &nx);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT(nc + nx > TS_REPORT_MAX_EVENTS);
  CU_ASSERT_EQUAL(count(h, "<svg"), nd);
  CU_ASSERT_EQUAL(count(h, "<rect class=\"op "), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "the Gantt chart is left out"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<code>gantt.svg</code>"));
  CU_ASSERT(strlen(h) < 400000);
  free(h);
}

/* ---- headless Chromium ---------------------------------------------------- */

static const char *find_chromium(void) {
  static const char *const cand[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                     "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable", NULL};
  for (int i = 0; cand[i]; i++)
    if (access(cand[i], X_OK) == 0) return cand[i];
  return NULL;
}

/* Loads html_path in headless Chromium; returns the DOM after scripts
** ran and fills *log with its stderr.  NULL when Chromium failed. */
static char *chromium_dom(const char *bin, const char *html_path, const char *hash, char **log) {
  char dir[] = "/tmp/ts-test-chromium-XXXXXX";
  if (!mkdtemp(dir)) return NULL;
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "timeout 90 '%s' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
           "--disable-background-networking --disable-component-update --disable-sync "
           "--user-data-dir=%s/profile --enable-logging=stderr --v=0 --dump-dom 'file://%s%s' "
           ">%s/dom.html 2>%s/stderr.txt",
           bin, dir, html_path, hash, dir, dir);
  int st = system(cmd);
  char p[256];
  snprintf(p, sizeof p, "%s/dom.html", dir);
  char *dom = st == 0 ? th_slurp(p, NULL) : NULL;
  snprintf(p, sizeof p, "%s/stderr.txt", dir);
  *log = th_slurp(p, NULL);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
  return dom;
}

/* Console output of the page: Chromium logs every console message and
** uncaught exception as a "CONSOLE" line (all at INFO level). */
static bool console_clean(const char *log) {
  return log && !strstr(log, "CONSOLE") && !strstr(log, "Uncaught");
}

static void test_chromium(void) {
  const char *bin = find_chromium();
  if (!bin) {
    printf("\n  note: skipped: no chromium installed (check.sh installs Debian's chromium)\n");
    return;
  }
  int nc = 0, nx = 0;
  char *h = report_of(job_pcie, NULL, 0, NULL, &nc, &nx);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  char good[] = "/tmp/ts-test-report-XXXXXX.html", bad[] = "/tmp/ts-test-report-bad-XXXXXX.html";
  int fg = mkstemps(good, 5), fb = mkstemps(bad, 5);
  CU_ASSERT_FATAL(fg >= 0 && fb >= 0);
  FILE *f = fdopen(fg, "w");
  fputs(h, f);
  fclose(f);
  /* the negative control: the same page with an error thrown at load */
  char *cut = strstr(h, "</body>");
  CU_ASSERT_PTR_NOT_NULL_FATAL(cut);
  f = fdopen(fb, "w");
  fwrite(h, 1, (size_t)(cut - h), f);
  fputs("<script>throw new Error('ts-injected');</script>\n", f);
  fputs(cut, f);
  fclose(f);

  char *log = NULL, *dom = chromium_dom(bin, good, "#selftest", &log);
  CU_ASSERT_PTR_NOT_NULL(dom);
  if (dom) {
    char want[64];
    snprintf(want, sizeof want, "data-boxes=\"%d\"", nc + nx);
    CU_ASSERT_PTR_NOT_NULL(strstr(dom, "data-ready=\"1\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(dom, want));
    if (!strstr(dom, want)) printf("\n  expected %s in <body>\n", want);
    CU_ASSERT_EQUAL(count(dom, "<rect class=\"op "), nc);
    CU_ASSERT_EQUAL(count(dom, "<rect class=\"xfer "), nx);
    /* hovering the first box showed its title in the tooltip */
    const char *t = strstr(dom, "data-selftest=\"");
    CU_ASSERT_PTR_NOT_NULL(t);
    CU_ASSERT(t && !strncmp(t + 15, "forward stage 0 chunk 0 mb 1, 0.000", 35));
    CU_ASSERT(t && strstr(t, "stashes ") && strstr(t, "stashes ") < strchr(t + 15, '"'));
  }
  CU_ASSERT(console_clean(log));
  if (!console_clean(log)) printf("\n  chromium console: %.2000s\n", log ? log : "(none)");
  free(dom);
  free(log);

  log = NULL;
  dom = chromium_dom(bin, bad, "", &log);
  CU_ASSERT_PTR_NOT_NULL(dom);
  CU_ASSERT(!console_clean(log)); /* the check sees an injected error */
  CU_ASSERT_PTR_NOT_NULL(log && strstr(log, "ts-injected"));
  free(dom);
  free(log);
  unlink(good);
  unlink(bad);
  free(h);
}

TS_TESTS{
    TS_TEST(test_structure),
    TS_TEST(test_definitions),
    TS_TEST(test_bubble_and_terms),
    TS_TEST(test_deterministic),
    TS_TEST(test_capacity_and_escaping),
    TS_TEST(test_large_run),
    TS_TEST(test_chromium),
};

TS_TEST_MAIN("report")
