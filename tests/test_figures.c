/*
** test_figures.c: the figures as a paper or a slide needs them (issue 17
** item 5, issue 16 item 5):
**   - gantt.svg's options: --figure-width, --font-size, --no-title,
**     --style print (no grid, black text, thinner strokes), their errors,
**     and that `trainsim run` passes them to gantt.svg and report.html;
**   - transfers of no bytes (the ideal platform's) are not drawn;
**   - the split backward is B and W in the legend, the tooltips and the
**     trace's event names, backward_input and weight_grad in the CSV;
**   - sweep.svg's linear y axis starts at zero and states the spread;
**   - headless Chromium renders each figure at single-column width (320
**     CSS px = 240 pt = 3.3 in) and a script measures what it drew: every
**     text but the micro-batch numbers at >= 8 pt (numbers >= 5.5 pt),
**     inside the figure, no two texts overlapping, each number inside its
**     box.  Skipped with a note when no chromium is installed.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "trainsim.h"
#include "ts_out.h"
#include "tshelp.h"
#include "tsunit.h"

static const char *job_ideal =
    "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0,"
    " \"activation_message_bytes\": 1000, \"activation_bytes\": 5000, \"weights_bytes\": 20000},"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 4, \"microbatches\": 8}";

static const char *job_pcie =
    "{\"model\": {\"kind\": \"transformer\", \"name\": \"tiny\", \"layers\": 8, \"hidden\": 256,"
    " \"heads\": 4, \"vocab\": 1000}, \"platform\": \"pcie-4gpu.xml\", \"schedule\": \"zb-h1\","
    " \"stages\": 4, \"microbatches\": 8, \"seq_len\": 512}";

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* Simulates the job text with sets into *o (caller frees both). */
static ts_job_t *simulate(const char *json, const char *const *sets, int n, ts_outcome_t *o) {
  const char *path = th_write_tmp(json, ".json");
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = ts_job_load(path, sets, n, &job, &err);
  if (!rc) rc = ts_simulate(job, o, &err);
  unlink(path);
  if (rc) printf("\n  simulate: %s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  return job;
}

/* Not inlined: GCC -O3 otherwise takes the strings for pointers to the
** local buf whose address open_memstream keeps (-Wdangling-pointer). */
__attribute__((noinline)) static char *gantt(const ts_result_t *r, const ts_gantt_opts_t *opt) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  CU_ASSERT_EQUAL(ts_write_gantt_svg_opts(r, opt, f), 0);
  fclose(f);
  return buf;
}

__attribute__((noinline)) static char *with(ts_result_writer_fn fn, const ts_result_t *r) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  CU_ASSERT_EQUAL(fn(r, f), 0);
  fclose(f);
  return buf;
}

static double attr_num(const char *s, const char *name) {
  const char *p = strstr(s, name);
  return p ? atof(p + strlen(name)) : NAN;
}

static void test_options(void) {
  ts_outcome_t o;
  ts_job_t *job = simulate(job_pcie, NULL, 0, &o);
  char *def = gantt(&o.r, NULL);
  /* defaults: 480 px, 16 px text, a title, the screen style's grid */
  CU_ASSERT_NSTRING_EQUAL(def, "<svg ", 5);
  CU_ASSERT_DOUBLE_EQUAL(attr_num(def, " width=\""), 480.0, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(def, " font-size=\"16.00\">"));
  CU_ASSERT_PTR_NOT_NULL(strstr(def, "<text class=\"title\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(def, "<g class=\"grid\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(def, "stroke-width=\"0.5\"><title>"));
  /* idle is blank: the rows are white frames */
  CU_ASSERT_PTR_NOT_NULL(strstr(def, "fill=\"#ffffff\" stroke=\"#8c8c8c\""));
  CU_ASSERT_PTR_NULL(strstr(def, "#EEEEEE"));

  ts_gantt_opts_t p = {0};
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "figure-width", "720", &err), 0);
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "font-size", "20", &err), 0);
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "no-title", NULL, &err), 0);
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "style", "print", &err), 0);
  char *pr = gantt(&o.r, &p);
  CU_ASSERT_DOUBLE_EQUAL(attr_num(pr, " width=\""), 720.0, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(pr, " font-size=\"20.00\">"));
  CU_ASSERT_PTR_NULL(strstr(pr, "class=\"title\""));
  CU_ASSERT_PTR_NULL(strstr(pr, "class=\"subtitle\""));
  CU_ASSERT_PTR_NULL(strstr(pr, "<g class=\"grid\""));
  CU_ASSERT_PTR_NULL(strstr(pr, "#555555")); /* black text */
  CU_ASSERT_PTR_NULL(strstr(pr, "#111111"));
  CU_ASSERT_PTR_NOT_NULL(strstr(pr, "stroke=\"#000000\" stroke-width=\"0.25\"><title>"));
  CU_ASSERT_PTR_NULL(strstr(pr, "stroke-width=\"0.5\"><title>"));
  /* the first row starts higher without a title */
  CU_ASSERT(attr_num(strstr(pr, "<rect class=\"op "), " y=\"") <
            attr_num(strstr(def, "<rect class=\"op "), " y=\""));
  /* the same boxes either way */
  CU_ASSERT_EQUAL(count(pr, "<rect class=\"op "), count(def, "<rect class=\"op "));
  CU_ASSERT_EQUAL(count(pr, "<rect class=\"xfer "), count(def, "<rect class=\"xfer "));

  /* bad values name the option */
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "figure-width", "12", &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--figure-width"));
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "font-size", "-1", &err), EX_USAGE);
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "font-size", "10pt", &err), EX_USAGE);
  err = (ts_err_t){0}; /* ts_err_set keeps the first error */
  CU_ASSERT_EQUAL(ts_gantt_opt_set(&p, "style", "poster", &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "screen or print"));
  free(def);
  free(pr);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* The split backward: B and W in the figure and the trace's names; the
** stable kind names in the CSV and the trace's args. */
static void test_split_names(void) {
  ts_outcome_t o;
  ts_job_t *job = simulate(job_pcie, NULL, 0, &o);
  char *svg = gantt(&o.r, NULL);
  const char *leg = strstr(svg, "<g class=\"legend\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(leg);
  CU_ASSERT_PTR_NOT_NULL(strstr(leg, ">B (input gradient)</text>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(leg, ">W (weight gradient)</text>"));
  CU_ASSERT_PTR_NULL(strstr(leg, "backward_input"));
  CU_ASSERT_PTR_NULL(strstr(leg, "weight_grad"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "<title>B stage 0 chunk 0 mb 1,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "<title>W stage 0 chunk 0 mb 1,"));
  char *trace = with(ts_write_trace_json, &o.r);
  CU_ASSERT_PTR_NOT_NULL(strstr(trace, "{\"name\":\"B1\",\"cat\":\"backward_input\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(trace, "{\"name\":\"W1\",\"cat\":\"weight_grad\""));
  CU_ASSERT_PTR_NULL(strstr(trace, "\"name\":\"b1\""));
  char *csv = with(ts_write_timeline_csv, &o.r);
  CU_ASSERT(count(csv, ",backward_input,") == 4 * 8);
  CU_ASSERT(count(csv, ",weight_grad,") == 4 * 8);
  free(svg);
  free(trace);
  free(csv);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* The ideal platform's transfers move no bytes: no ticks for them. */
static void test_no_zero_byte_ticks(void) {
  const char *sets[] = {"model.activation_message_bytes=0"};
  ts_outcome_t o;
  ts_job_t *job = simulate(job_ideal, sets, 1, &o);
  int zero = 0;
  for (int i = 0; i < o.run->n_events; i++)
    zero += ts_kind_is_transfer(o.run->events[i].kind) && o.run->events[i].bytes == 0;
  CU_ASSERT(zero >= 2 * 3 * 8);
  char *svg = gantt(&o.r, NULL);
  CU_ASSERT_EQUAL(count(svg, "<rect class=\"xfer "), 0);
  CU_ASSERT_PTR_NULL(strstr(svg, ">send_act</text>")); /* nor a legend entry */
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* `trainsim run` passes the options to gantt.svg and report.html; compare
** refuses them. */
static void test_cli_options(void) {
  const char *job = th_write_tmp(job_ideal, ".json");
  char dir[] = "/tmp/ts-test-fig-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char args[1024], p[1100];
  snprintf(args, sizeof args, "run %s -o %s -q --figure-width 640 --font-size 18 --no-title --style print", job,
           dir);
  CU_ASSERT_EQUAL(th_cli(args, NULL, NULL), 0);
  snprintf(p, sizeof p, "%s/gantt.svg", dir);
  char *svg = th_slurp(p, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  CU_ASSERT_NSTRING_EQUAL(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"640\"", 62);
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, " font-size=\"18.00\">"));
  CU_ASSERT_PTR_NULL(strstr(svg, "class=\"title\""));
  snprintf(p, sizeof p, "%s/report.html", dir);
  char *html = th_slurp(p, NULL);
  CU_ASSERT_PTR_NOT_NULL(html && strstr(html, " font-size=\"18.00\">"));
  free(svg);
  free(html);
  char *err = NULL;
  snprintf(args, sizeof args, "run %s -o %s -q --style poster", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, NULL, &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "--style: expected screen or print, got 'poster'"));
  free(err);
  err = NULL;
  snprintf(args, sizeof args, "compare %s -o %s -q --no-title", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, NULL, &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(err && strstr(err, "--no-title applies to run only"));
  free(err);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
  unlink(job);
}

/* A sweep of iteration times 15 to 57 s: the y axis starts at 0. */
static char *sweep_svg(void) {
  const char *job = th_write_tmp(job_ideal, ".json");
  char dir[] = "/tmp/ts-test-figsw-XXXXXX";
  if (!mkdtemp(dir)) return NULL;
  char args[1024], p[1100];
  snprintf(args, sizeof args, "sweep %s --vary microbatches=4,8,16 --vary stages=2,4 -j 1 -q -o %s", job, dir);
  CU_ASSERT_EQUAL(th_cli(args, NULL, NULL), 0);
  snprintf(p, sizeof p, "%s/sweep.svg", dir);
  char *svg = th_slurp(p, NULL);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(args), 0);
  unlink(job);
  return svg;
}

static void test_sweep_axis(void) {
  char *svg = sweep_svg();
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  const char *y = strstr(svg, "<g class=\"yticks\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_PTR_NOT_NULL(strstr(y, "\">0</text>"));
  CU_ASSERT(strstr(y, "\">0</text>") < strstr(y, "</g>"));
  /* 4 micro-batches on 2 stages: 15 s; 16 on 4: 57 s */
  CU_ASSERT_PTR_NOT_NULL(strstr(svg, "values from 15 s to 57 s: the largest is +280.0 % above the smallest"));
  free(svg);
}

/* ---- headless Chromium ---------------------------------------------------- */

static const char *find_chromium(void) {
  static const char *const cand[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                     "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable", NULL};
  for (int i = 0; cand[i]; i++)
    if (access(cand[i], X_OK) == 0) return cand[i];
  return NULL;
}

/* The measuring page: the figure at 320 CSS px (240 pt) wide; the script
** writes its findings into <body data-*>. */
static const char page_head[] =
    "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{margin:0}"
    "#fig{width:320px}#fig svg{width:320px;height:auto;display:block}</style></head><body><div id=\"fig\">";
static const char page_tail[] =
    "</div><script>\n"
    "(function(){\n"
    "  var svg = document.querySelector('#fig svg'), fr = svg.getBoundingClientRect();\n"
    "  var k = fr.width / svg.viewBox.baseVal.width, PT = 0.75;\n"
    "  var texts = Array.prototype.slice.call(svg.querySelectorAll('text'));\n"
    "  var minText = 1e9, minNum = 1e9, out = 0, overlap = 0, numOut = 0, boxes = [];\n"
    "  texts.forEach(function(t){\n"
    "    if (!t.textContent.length) return;\n"
    "    var pt = parseFloat(getComputedStyle(t).fontSize) * k * PT, r = t.getBoundingClientRect();\n"
    "    var num = t.parentNode.getAttribute('class') === 'ops';\n"
    "    if (num) {\n"
    "      minNum = Math.min(minNum, pt);\n"
    "      var b = t.previousElementSibling.getBoundingClientRect();\n"
    "      if (r.left < b.left - 0.5 || r.right > b.right + 0.5) numOut++;\n"
    "    } else { minText = Math.min(minText, pt); boxes.push(r); }\n"
    "    if (r.left < fr.left - 0.5 || r.right > fr.right + 0.5 || r.top < fr.top - 0.5 || r.bottom > fr.bottom + 0.5) out++;\n"
    "  });\n"
    "  for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {\n"
    "    var a = boxes[i], c = boxes[j];\n"
    "    if (Math.min(a.right, c.right) - Math.max(a.left, c.left) > 0.5 &&\n"
    "        Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top) > 0.5) overlap++;\n"
    "  }\n"
    "  var d = document.body;\n"
    "  d.setAttribute('data-texts', String(texts.length));\n"
    "  d.setAttribute('data-min-text-pt', minText.toFixed(2));\n"
    "  d.setAttribute('data-min-num-pt', minNum < 1e9 ? minNum.toFixed(2) : 'none');\n"
    "  d.setAttribute('data-out', String(out));\n"
    "  d.setAttribute('data-overlap', String(overlap));\n"
    "  d.setAttribute('data-num-out', String(numOut));\n"
    "})();\n</script></body></html>\n";

/* Renders svg in the measuring page; returns the DOM Chromium dumped. */
static char *render(const char *bin, const char *svg) {
  char dir[] = "/tmp/ts-test-figchr-XXXXXX";
  if (!mkdtemp(dir)) return NULL;
  char html[256], cmd[2048];
  snprintf(html, sizeof html, "%s/fig.html", dir);
  FILE *f = fopen(html, "w");
  if (!f) return NULL;
  fputs(page_head, f);
  const char *body = strstr(svg, "<svg");
  fputs(body ? body : svg, f);
  fputs(page_tail, f);
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "timeout 90 '%s' --headless --no-sandbox --disable-gpu --no-first-run --disable-sync "
           "--disable-background-networking --disable-component-update --user-data-dir=%s/profile "
           "--window-size=800,1200 --dump-dom 'file://%s' >%s/dom.html 2>/dev/null",
           bin, dir, html, dir);
  int st = system(cmd);
  char p[300];
  snprintf(p, sizeof p, "%s/dom.html", dir);
  char *dom = st == 0 ? th_slurp(p, NULL) : NULL;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
  return dom;
}

static double body_attr(const char *dom, const char *name) {
  char key[64];
  snprintf(key, sizeof key, "%s=\"", name);
  const char *p = dom ? strstr(dom, key) : NULL;
  return p ? atof(p + strlen(key)) : NAN;
}

/* The rendering checks of one figure; texts_min: texts it must have (a
** failed render has none); min_pt: the smallest text allowed. */
static void check_render(const char *bin, const char *what, const char *svg, double min_pt, bool numbers) {
  char *dom = render(bin, svg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(dom);
  double texts = body_attr(dom, "data-texts"), mt = body_attr(dom, "data-min-text-pt");
  double mn = body_attr(dom, "data-min-num-pt"), out = body_attr(dom, "data-out");
  double ov = body_attr(dom, "data-overlap"), no = body_attr(dom, "data-num-out");
  printf("\n  %s: %.0f texts, smallest %.2f pt, numbers from %.2f pt, %.0f outside, %.0f overlapping, "
         "%.0f numbers outside their box",
         what, texts, mt, mn, out, ov, no);
  CU_ASSERT(texts >= 10);
  CU_ASSERT(mt >= min_pt);
  /* numbers too narrow for their box are left out: then there are none */
  if (numbers && !strstr(dom, "data-min-num-pt=\"none\"")) CU_ASSERT(mn >= 5.5);
  CU_ASSERT_EQUAL(out, 0);
  CU_ASSERT_EQUAL(ov, 0);
  CU_ASSERT_EQUAL(no, 0);
  free(dom);
}

static void test_chromium_figures(void) {
  const char *bin = find_chromium();
  if (!bin) {
    printf("\n  note: skipped: no chromium installed (check.sh installs Debian's chromium)\n");
    return;
  }
  ts_outcome_t o;
  ts_job_t *job = simulate(job_pcie, NULL, 0, &o);
  char *svg = gantt(&o.r, NULL);
  check_render(bin, "gantt.svg zb-h1 default", svg, 7.95, true);
  free(svg);
  ts_gantt_opts_t p = {.no_title = true, .style = TS_STYLE_PRINT};
  svg = gantt(&o.r, &p);
  check_render(bin, "gantt.svg zb-h1 print, no title", svg, 7.95, true);
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);

  /* interleaved with chunks: the longest legend; 8 devices */
  const char *sets[] = {"schedule=interleaved", "chunks=2", "stages=8", "microbatches=16"};
  job = simulate(job_ideal, sets, 4, &o);
  svg = gantt(&o.r, NULL);
  check_render(bin, "gantt.svg interleaved p=8 v=2", svg, 7.95, true);
  free(svg);
  ts_outcome_free(&o);
  ts_job_free(job);

  /* sweep.svg is a screen figure (its text is 11 px of 950): only its
  ** layout is checked */
  svg = sweep_svg();
  CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
  check_render(bin, "sweep.svg", svg, 2.0, false);
  free(svg);
}

TS_TESTS{
    TS_TEST(test_options),         TS_TEST(test_split_names), TS_TEST(test_no_zero_byte_ticks),
    TS_TEST(test_cli_options),     TS_TEST(test_sweep_axis),  TS_TEST(test_chromium_figures),
};

TS_TEST_MAIN("figures")
