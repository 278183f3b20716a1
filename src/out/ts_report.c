/*
** ts_report.c: report.html, everything about one run on one page.
**
** The page holds, in order: a header naming the job; the key figures; the
** Gantt chart (gantt.svg's own drawing, ts_write_gantt_svg, inlined); a
** memory-over-time chart per device (model states as a constant band,
** stashed activations stacked on it as a step plot, the capacity as a
** dashed line when the host has one); where the time goes per stage
** (ts_report_time.c); the summary table with each metric's
** definition (the text of README's summary.json table); the per-device
** table with the definitions of its columns; what the links carried (per
** link class, and the hottest links, ts_report_links.c).
**
** Hover: every Gantt box carries its <title> (a browser shows it without
** JS).  A small inline script replaces it by a styled tooltip on mouseover
** of rect.op and rect.xfer (and of each memory chart), and marks the page
** ready: <body data-ready="1" data-boxes="N"> once it ran, N the boxes it
** found.  Opened as report.html#selftest, it also hovers the first box and
** copies the tooltip's text into <body data-selftest> (for the tests).
** The compute boxes' titles are extended with the activation bytes the op
** stashes or frees, computed as ts_metrics.c does.
**
** Assumptions: events sorted by start (ts_run_sort).  Runs with more than
** TS_REPORT_MAX_EVENTS events get no inline Gantt chart (a page of tens of
** MB is slow to open); the page says so and points to gantt.svg.  Memory
** charts with more steps than twice their width in pixels are drawn as
** their per-pixel maximum, so peaks stay visible and the page stays small.
**
** Self-contained: no URL is referenced but the SVG namespace; no external
** style sheet, script, font or image.  Deterministic: fixed number formats,
** nothing from clocks, pointers or the environment.
**
** This file writes the page and its header, key figures, style and
** script; ts_report_charts.c the Gantt and memory charts;
** ts_report_tables.c the summary and device tables.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_report_int.h"

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

ts__unit_t ts__report_unit_for(double t) {
  if (t >= 1.0 || !(t > 0)) return (ts__unit_t){"s", 1.0};
  if (t >= 1e-3) return (ts__unit_t){"ms", 1e3};
  if (t >= 1e-6) return (ts__unit_t){"us", 1e6};
  return (ts__unit_t){"ns", 1e9};
}

/* "668.43 ms": four significant digits or so, in the unit t reads best. */
const char *ts__report_time(char *buf, size_t n, double t) {
  if (!isfinite(t)) return snprintf(buf, n, "n/a"), buf;
  ts__unit_t u = ts__report_unit_for(fabs(t));
  double v = t * u.per_s, a = fabs(v);
  snprintf(buf, n, "%.*f %s", a >= 100 ? 1 : a >= 10 ? 2 : 3, v + 0.0, u.name);
  return buf;
}

const char *ts__report_bytes(char *buf, size_t n, double b) {
  if (!isfinite(b)) return snprintf(buf, n, "n/a"), buf;
  return ts__human_bytes(b, buf, n);
}

/* "123 T": v with a decimal SI prefix, 4 significant digits. */
const char *ts__report_si(char *buf, size_t n, double v, const char *unit) {
  static const char *const p[] = {"", "k", "M", "G", "T", "P", "E"};
  int k = 0;
  double a = fabs(v);
  while (a >= 1000.0 && k < 6) {
    a /= 1000.0;
    v /= 1000.0;
    k++;
  }
  snprintf(buf, n, "%.4g %s%s", v + 0.0, p[k], unit);
  return buf;
}

double ts__report_t_max(const ts_run_t *run) {
  double t = 0;
  for (int i = 0; i < run->n_events; i++)
    if (isfinite(run->events[i].end) && run->events[i].end > t) t = run->events[i].end;
  return t;
}

/* ------------------------------------------------------------------ */
/* Page parts                                                          */
/* ------------------------------------------------------------------ */

static const char css[] =
    "<style>\n"
    ":root{--ink:#1b1f24;--mute:#5b6470;--line:#d7dce2;--bg:#ffffff;--panel:#f6f8fa;--accent:#0072B2}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;padding:24px 32px 48px;font:14px/1.45 'DejaVu Sans',Verdana,Arial,Helvetica,sans-serif;"
    "color:var(--ink);background:var(--bg)}\n"
    "h1{font-size:22px;margin:0 0 4px}\n"
    "h2{font-size:17px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}\n"
    "p.sub{color:var(--mute);margin:0 0 16px}\n"
    "p.note{color:var(--mute);margin:4px 0 8px;max-width:72em}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\n"
    ".card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:10px 14px;"
    "min-width:170px}\n"
    ".card .k{color:var(--mute);font-size:12px}\n"
    ".card .v{font-size:20px;font-weight:bold}\n"
    ".card.bad .v{color:#C00000}\n"
    ".chart{overflow-x:auto;border:1px solid var(--line);border-radius:6px;padding:4px;background:#fff}\n"
    ".chart svg{display:block}\n"
    ".mems{display:flex;flex-wrap:wrap;gap:10px}\n"
    ".mems svg{border:1px solid var(--line);border-radius:6px;background:#fff}\n"
    ".key{display:flex;flex-wrap:wrap;gap:18px;margin:4px 0 10px;color:var(--mute);font-size:13px}\n"
    ".key i{display:inline-block;width:14px;height:12px;margin-right:6px;vertical-align:-1px;"
    "border:1px solid #888}\n"
    ".key i.cap{height:0;border:0;border-top:2px dashed #C00000;vertical-align:4px}\n"
    "table{border-collapse:collapse;margin:6px 0}\n"
    "th,td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top}\n"
    "th{background:var(--panel);font-size:13px}\n"
    "td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\n"
    "td.def{color:var(--mute);max-width:56em}\n"
    "table.devs td{white-space:nowrap}\n"
    ".scroll{overflow-x:auto}\n"
    "code{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:12.5px}\n"
    "dl.defs{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;max-width:90em}\n"
    "dl.defs dt{font-weight:bold}\n"
    "dl.defs dd{margin:0;color:var(--mute)}\n"
    "rect.op.hover,rect.xfer.hover{stroke:#000;stroke-width:2}\n"
    "#ts-tip{position:fixed;z-index:10;pointer-events:none;max-width:440px;padding:6px 9px;"
    "background:#1b1f24;color:#fff;border-radius:4px;font-size:12.5px;line-height:1.35;"
    "box-shadow:0 2px 8px rgba(0,0,0,.3);white-space:pre-line}\n"
    "#ts-tip[hidden]{display:none}\n"
    "footer{margin-top:36px;color:var(--mute);font-size:12px}\n"
    "</style>\n";

/* Delegated handlers: one listener for any number of boxes. */
static const char script[] =
    "<script>\n"
    "(function () {\n"
    "  'use strict';\n"
    "  var tip = document.getElementById('ts-tip');\n"
    "  var SEL = 'rect.op, rect.xfer, .mem-hit';\n"
    "  function hit(ev) { var t = ev.target; return t && t.closest ? t.closest(SEL) : null; }\n"
    "  function text(el) {\n"
    "    var t = el.getAttribute('data-tip');\n"
    "    if (t === null) {\n"
    "      var ti = el.querySelector('title');\n"
    "      t = ti ? ti.textContent : '';\n"
    "      el.setAttribute('data-tip', t);\n"
    "      if (ti) el.removeChild(ti);\n"
    "    }\n"
    "    return t;\n"
    "  }\n"
    "  function place(ev) {\n"
    "    var x = ev.clientX + 14, y = ev.clientY + 14;\n"
    "    var w = tip.offsetWidth, h = tip.offsetHeight;\n"
    "    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - w - 14);\n"
    "    if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - h - 14);\n"
    "    tip.style.left = x + 'px';\n"
    "    tip.style.top = y + 'px';\n"
    "  }\n"
    "  document.addEventListener('mouseover', function (ev) {\n"
    "    var el = hit(ev);\n"
    "    if (!el) return;\n"
    "    var t = text(el);\n"
    "    if (!t) return;\n"
    "    tip.textContent = t;\n"
    "    tip.hidden = false;\n"
    "    el.classList.add('hover');\n"
    "    place(ev);\n"
    "  });\n"
    "  document.addEventListener('mousemove', function (ev) { if (!tip.hidden) place(ev); });\n"
    "  document.addEventListener('mouseout', function (ev) {\n"
    "    var el = hit(ev);\n"
    "    if (!el) return;\n"
    "    tip.hidden = true;\n"
    "    el.classList.remove('hover');\n"
    "  });\n"
    "  var boxes = document.querySelectorAll('rect.op, rect.xfer');\n"
    "  document.body.setAttribute('data-boxes', String(boxes.length));\n"
    "  if (location.hash === '#selftest' && boxes.length) {\n"
    "    boxes[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true, clientX: 20, clientY: 20}));\n"
    "    document.body.setAttribute('data-selftest', tip.hidden ? '' : tip.textContent);\n"
    "  }\n"
    "  document.body.setAttribute('data-ready', '1');\n"
    "})();\n"
    "</script>\n";


static void write_head(FILE *f, const ts_result_t *r) {
  const ts_job_t *j = r->job;
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"generator\" content=\"trainsim " TS_VERSION "\">\n<title>trainsim report: ", f);
  if (j) {
    ts__xml_puts(f, j->schedule);
    fprintf(f, " p=%d m=%d", j->stages, j->microbatches);
    if (j->model.name[0]) {
      fputs(", ", f);
      ts__xml_puts(f, j->model.name);
    }
  } else {
    fputs("run", f);
  }
  fputs("</title>\n", f);
  fputs(css, f);
  fputs("</head>\n<body>\n", f);
}

static void write_header(FILE *f, const ts_result_t *r) {
  const ts_job_t *j = r->job;
  fputs("<header>\n<h1>", f);
  if (j) {
    ts__xml_puts(f, j->schedule);
    fprintf(f, " \xE2\x80\x94 p=%d m=%d", j->stages, j->microbatches);
    if (j->chunks > 1) fprintf(f, " v=%d", j->chunks);
    if (j->iterations > 1) fprintf(f, " iterations=%d", j->iterations);
  } else {
    fputs("trainsim run", f);
  }
  fputs("</h1>\n<p class=\"sub\">", f);
  if (j) {
    fputs("model <b>", f);
    ts__xml_puts(f, j->model.name[0] ? j->model.name : "unnamed");
    fputs("</b> \xC2\xB7 platform <b>", f);
    ts__xml_puts(f, j->platform_arg[0] ? j->platform_arg : j->platform);
    fprintf(f, "</b> \xC2\xB7 micro-batch size %d \xC2\xB7 sequence %d \xC2\xB7 recompute %s \xC2\xB7 job <code>",
            j->micro_batch_size, j->seq_len, ts_recompute_name(j->recompute));
    ts__xml_puts(f, j->path);
    fputs("</code> \xC2\xB7 ", f);
  }
  fprintf(f, "%d device%s \xC2\xB7 ", r->run->n_devices, r->run->n_devices == 1 ? "" : "s");
  ts__xml_puts(f, r->run->executor[0] ? r->run->executor : "unknown");
  fputs(" executor \xC2\xB7 trainsim " TS_VERSION "</p>\n", f);
  if (r->run->fold) { /* README "Symmetry folding" */
    char *reps = ts__fold_reps(r->run);
    fprintf(f, "<p class=\"sub\"><b>Folded run:</b> %d of the %d devices were simulated (devices %s), one per "
               "class of tensor-parallel ranks x data-parallel replicas; every other device's times, bytes and "
               "memory are its class representative's (summary.json <code>fold</code>), the figure draws a "
               "class's devices as one row, and timeline.csv, trace.json and paje.trace hold the simulated "
               "devices' events only. <code>--exact</code> simulates every device.</p>\n",
            ts__fold_classes(r->run), r->run->n_devices, reps);
    free(reps);
  }
  fputs("</header>\n", f);
}

bool ts__report_has_dp(const ts_metrics_t *m) {
  if (!m) return false;
  double any = m->dp_bytes + m->dp_comm_s + m->exposed_comm_s + m->optimizer_s;
  for (int k = 0; k < TS_COLL_OPS; k++) any += m->coll_bytes[k];
  return any > 0;
}

static void card(FILE *f, const char *k, const char *v, bool bad) {
  fprintf(f, "<div class=\"card%s\"><div class=\"k\">", bad ? " bad" : "");
  ts__xml_puts(f, k);
  fputs("</div><div class=\"v\">", f);
  ts__xml_puts(f, v);
  fputs("</div></div>\n", f);
}

static void write_cards(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  if (!m) return;
  char a[64], b[64];
  fputs("<div class=\"cards\">\n", f);
  card(f, "iteration time", ts__report_time(a, sizeof a, m->iteration_time_s), false);
  snprintf(b, sizeof b, "%.4f", m->bubble_fraction + 0.0);
  card(f, "bubble fraction", b, false);
  card(f, "throughput", ts__report_si(a, sizeof a, m->samples_per_s, "samples/s"), false);
  if (r->cost && r->cost->has_flops) {
    snprintf(b, sizeof b, "%.1f %%", 100.0 * m->mfu);
    card(f, "MFU", b, false);
  }
  double worst = 0;
  int nofit = 0;
  for (int d = 0; d < m->n_devices; d++) {
    if (m->dev[d].peak_memory_bytes > worst) worst = m->dev[d].peak_memory_bytes;
    nofit += !m->dev[d].fits;
  }
  if (ts__report_has_dp(m)) {
    card(f, "pipeline time", ts__report_time(a, sizeof a, m->pipeline_time_s), false);
    snprintf(b, sizeof b, "%.2f %%", 100.0 * m->dp_comm_share);
    card(f, "DP communication share", b, false);
    card(f, "exposed communication", ts__report_time(a, sizeof a, m->exposed_comm_s), false);
    card(f, "optimizer step", ts__report_time(a, sizeof a, m->optimizer_s), false);
  }
  if (m->tp_bytes > 0) { /* tensor parallelism (README "Tensor parallelism") */
    card(f, "TP communication", ts__report_time(a, sizeof a, m->tp_comm_s), false);
    card(f, "exposed TP time", ts__report_time(a, sizeof a, m->tp_exposed_s), false);
    card(f, "TP bytes", ts__report_bytes(a, sizeof a, m->tp_bytes), false);
  }
  card(f, "largest peak memory", ts__report_bytes(a, sizeof a, worst), nofit > 0);
  if (nofit) {
    snprintf(b, sizeof b, "%d device%s", nofit, nofit == 1 ? "" : "s");
    card(f, "over capacity", b, true);
  }
  fputs("</div>\n", f);
}

/* ------------------------------------------------------------------ */
/* The page                                                            */
/* ------------------------------------------------------------------ */

int ts_write_report_html(const ts_result_t *r, FILE *f) { return ts_write_report_html_opts(r, NULL, f); }

int ts_write_report_html_opts(const ts_result_t *r, const ts_gantt_opts_t *o, FILE *f) {
  if (!r || !r->run || !f) return EX_SOFTWARE;
  /* The page is read on a screen: without a width, the figure is as wide
  ** as its shortest box needs (ts_gantt_opts_t.auto_width). */
  ts_gantt_opts_t go = o ? *o : (ts_gantt_opts_t){0};
  go.auto_width = true;
  /* Every row and box: the page inlines at most TS_REPORT_MAX_EVENTS
  ** events, and its tooltips follow the events one by one. */
  go.max_rows = -1;
  go.devices.n = 0;
  write_head(f, r);
  write_header(f, r);
  write_cards(f, r);
  ts__report_write_intro(f, r);
  int rc = ts__report_write_gantt(f, r, &go);
  if (rc) return rc;
  ts__report_write_bubble(f, r);
  ts__report_write_time(f, r);
  ts__report_write_memory(f, r);
  ts__report_write_summary(f, r);
  ts__report_write_devices(f, r);
  ts__report_write_links(f, r);
  fputs("<footer>Generated by trainsim " TS_VERSION ". This page is self-contained: it loads "
        "nothing from the network or from other files.</footer>\n"
        "<div id=\"ts-tip\" role=\"tooltip\" hidden></div>\n",
        f);
  fputs(script, f);
  fputs("</body>\n</html>\n", f);
  return fflush(f) || ferror(f) ? EX_IOERR : 0;
}
