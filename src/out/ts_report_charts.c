/*
** ts_report_charts.c: the charts of report.html: the Gantt chart (gantt.svg
** inlined, with each compute box's title extended by the activation bytes
** the op stashes or frees, computed as ts_metrics.c does) and a
** memory-over-time chart per device (model states as a constant band,
** stashed activations stacked on it as a step plot, the capacity as a
** dashed line).  Memory charts with more steps than twice their width in
** pixels are drawn as their per-pixel maximum, so peaks stay visible and
** the page stays small.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_report_int.h"
#include "ts_internal.h"

/* ------------------------------------------------------------------ */
/* Gantt chart                                                         */
/* ------------------------------------------------------------------ */

/* Mirrors ts_gantt.c's test of the events it draws. */
static bool drawn(const ts_run_t *run, const ts_event_t *e) {
  return e->device >= 0 && e->device < run->n_devices && e->kind >= 0 && e->kind < TS_KIND_COUNT &&
         isfinite(e->start) && isfinite(e->end) && e->start >= 0 && e->end >= e->start;
}

/* Per compute event drawn (in drawing order), the activation bytes it
** stashes (> 0) or frees (< 0), as ts_metrics.c accounts them.  NULL when
** the job, layout or cost is missing. */
static double *op_bytes(const ts_result_t *r, int *n_out) {
  const ts_job_t *job = r->job;
  const ts_layout_t *L = r->layout;
  const ts_cost_t *C = r->cost;
  *n_out = 0;
  if (!job || !L || !C) return NULL;
  long M = (long)job->microbatches * (job->iterations > 0 ? job->iterations : 1);
  double *held = ts__xcalloc((size_t)L->n_vstages * (size_t)(M > 0 ? M : 1), sizeof *held);
  double *out = ts__xmalloc((size_t)(r->run->n_events ? r->run->n_events : 1) * sizeof *out);
  bool full = job->recompute == TS_RECOMPUTE_FULL;
  int n = 0;
  for (int i = 0; i < r->run->n_events; i++) {
    const ts_event_t *e = &r->run->events[i];
    if (!drawn(r->run, e) || !ts_kind_is_compute((ts_kind_t)e->kind)) continue;
    double v = 0;
    if (e->vstage >= 0 && e->vstage < L->n_vstages && e->mb >= 0 && e->mb < M) {
      const ts_part_cost_t *pc = &C->part[L->part[e->vstage]];
      size_t c = (size_t)e->vstage * (size_t)M + (size_t)e->mb;
      if (e->kind == TS_FORWARD)
        v = full && !(e->flags & TS_EVF_KEEP) ? pc->act_input_bytes : pc->act_bytes;
      else if (e->kind == TS_RECOMPUTE)
        v = pc->rec_bytes;
      held[c] += v;
      if (e->kind == TS_BACKWARD || e->kind == TS_WEIGHT_GRAD) {
        v = -held[c];
        held[c] = 0;
      }
    }
    out[n++] = v;
  }
  free(held);
  *n_out = n;
  return out;
}

/* Whether the run holds a split backward (B or W). */
static bool has_split(const ts_result_t *r) {
  for (int i = 0; i < r->run->n_events; i++)
    if (r->run->events[i].kind == TS_BACKWARD_INPUT || r->run->events[i].kind == TS_WEIGHT_GRAD) return true;
  return false;
}

/* Copies the Gantt SVG to f, adding to each compute box's title the bytes
** the op stashes or frees.  The boxes come in the order of the events
** (ts_gantt.c draws compute events in array order); should a title not
** start with the expected kind, the remaining titles are copied as they
** are. */
static void copy_gantt(FILE *f, const char *svg, const ts_result_t *r) {
  int n_ops;
  double *ob = op_bytes(r, &n_ops);
  static const char tag[] = "<rect class=\"op ";
  const char *p = svg;
  int k = 0;
  bool enrich = ob != NULL;
  int ev = 0; /* next compute event drawn */
  while (enrich) {
    const char *q = strstr(p, tag);
    if (!q || k >= n_ops) break;
    const char *t = strstr(q, "<title>"), *te = t ? strstr(t, "</title>") : NULL;
    if (!te) break;
    /* the kind of the box: its title's first word */
    while (ev < r->run->n_events &&
           !(drawn(r->run, &r->run->events[ev]) && ts_kind_is_compute((ts_kind_t)r->run->events[ev].kind)))
      ev++;
    if (ev >= r->run->n_events) break;
    const char *kn = ts__fig_kind_name(r->run->events[ev].kind);
    size_t kl = strlen(kn);
    if (strncmp(t + 7, kn, kl) || t[7 + kl] != ' ') break;
    fwrite(p, 1, (size_t)(te - p), f);
    double v = ob[k++];
    ev++;
    char b[48];
    if (v > 0)
      fprintf(f, ", stashes %s of activations", ts__report_bytes(b, sizeof b, v));
    else if (v < 0)
      fprintf(f, ", frees %s of activations", ts__report_bytes(b, sizeof b, -v));
    p = te;
  }
  fputs(p, f);
  free(ob);
}

int ts__report_write_gantt(FILE *f, const ts_result_t *r, const ts_gantt_opts_t *o) {
  fputs("<section id=\"gantt\">\n<h2>Pipeline schedule</h2>\n", f);
  if (r->run->n_events > TS_REPORT_MAX_EVENTS) {
    fprintf(f, "<p class=\"note\">This run has %d events, more than the %d this page draws inline: "
               "the Gantt chart is left out to keep the page small and quick to open. It is in "
               "<code>gantt.svg</code>, written beside this page by <code>trainsim run</code>.</p>\n"
               "</section>\n",
            r->run->n_events, TS_REPORT_MAX_EVENTS);
    return 0;
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return EX_OSERR;
  int rc = ts_write_gantt_svg_opts(r, o, m);
  if (fclose(m)) rc = rc ? rc : EX_OSERR;
  if (!rc) {
    fputs("<p class=\"note\">One row per device, time to the right. Boxes are compute operations "
          "numbered by micro-batch (from 1, as the papers do), coloured by kind (the legend under the "
          "chart); blank space inside a row is idle time, the pipeline's bubble. Thin bars under a row "
          "are the transfers the device sends.", f);
    if (has_split(r))
      fputs(" The backward is split as in the zero-bubble papers: B computes the gradient of the "
            "stage's input (and is what the previous stage waits for), W the gradient of its weights, "
            "which can wait and fill bubbles.", f);
    fputs(" Hover a box for its details.</p>\n<div class=\"chart\">\n", f);
    copy_gantt(f, buf, r);
    fputs("</div>\n</section>\n", f);
  }
  free(buf);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Memory over time                                                    */
/* ------------------------------------------------------------------ */

#define M_W 430.0
#define M_H 190.0
#define M_LEFT 64.0
#define M_RIGHT 14.0
#define M_TOP 30.0
#define M_BOTTOM 38.0
#define M_PW (M_W - M_LEFT - M_RIGHT)
#define M_PH (M_H - M_TOP - M_BOTTOM)
#define RGB_RES "#44AA99" /* resident weights: the Gantt chart's fetch teal */
#define RGB_STATES "#BBBBBB"
#define RGB_ACT "#56B4E9"
#define RGB_ACT_LINE "#0072B2"
#define RGB_CAP "#C00000"

static double states_of(const ts_device_metrics_t *dm) {
  return dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes;
}

/* The activation step function of dm as a polygon on top of the states
** band: exact steps when they are few, else the maximum over each pixel
** column (so that no peak disappears). */
static void mem_path(FILE *f, const ts_device_metrics_t *dm, double t_max, double y_of_0,
                     double px_per_byte, double base) {
  int n = dm->mem_t && dm->mem_bytes ? dm->n_mem : 0;
  double sx = M_PW / t_max;
  fprintf(f, "<path class=\"act\" fill=\"%s\" fill-opacity=\"0.55\" stroke=\"%s\" stroke-width=\"1\" "
             "d=\"M%.2f,%.2f",
          RGB_ACT, RGB_ACT_LINE, M_LEFT, y_of_0 - base * px_per_byte);
  if (n <= 2 * (int)M_PW) { /* up to 2 points a pixel: formatted without printf (ts_fmt_num.c) */
    ts__lb_t *lb = ts__xcalloc(1, sizeof *lb);
    lb->f = f;
    for (int i = 0; i < n; i++) {
      double t = fmin(fmax(dm->mem_t[i], 0), t_max), b = isfinite(dm->mem_bytes[i]) ? dm->mem_bytes[i] : 0;
      ts__lb_s(lb, " H");
      ts__lb_fixed(lb, M_LEFT + t * sx, 2);
      ts__lb_s(lb, " V");
      ts__lb_fixed(lb, y_of_0 - (base + b) * px_per_byte, 2);
    }
    ts__lb_flush(lb, f);
    free(lb);
  } else {
    int cols = (int)M_PW;
    double *mx = ts__xcalloc((size_t)cols, sizeof *mx);
    if (mx) {
      for (int i = 0; i < n; i++) {
        double t0 = fmin(fmax(dm->mem_t[i], 0), t_max);
        double t1 = i + 1 < n ? fmin(fmax(dm->mem_t[i + 1], 0), t_max) : t_max;
        double b = isfinite(dm->mem_bytes[i]) ? dm->mem_bytes[i] : 0;
        int c0 = (int)floor(t0 * sx), c1 = (int)ceil(t1 * sx);
        if (c1 <= c0) c1 = c0 + 1;
        for (int c = c0; c < c1 && c < cols; c++)
          if (c >= 0 && b > mx[c]) mx[c] = b;
      }
      for (int c = 0; c < cols; c++)
        fprintf(f, " V%.2f H%.2f", y_of_0 - (base + mx[c]) * px_per_byte, M_LEFT + c + 1.0);
      free(mx);
    }
  }
  fprintf(f, " H%.2f V%.2f H%.2f Z\"/>\n", M_LEFT + M_PW, y_of_0 - base * px_per_byte, M_LEFT);
}

/* The memory chart of device d; n_class > 1: d stands for the n_class
** devices of its folded class (Symmetry folding), whose metrics are its. */
static void write_mem_chart(FILE *f, const ts_result_t *r, int d, int n_class, double t_max, double y_max) {
  const ts_device_metrics_t *dm = &r->metrics->dev[d];
  const char *un;
  double per = ts__byte_unit(y_max, 5, &un);
  double step = ts__nice_step(y_max / per, 4.0) * per;
  double top = ceil(y_max / step - 1e-9) * step;
  if (!(top > 0)) top = 1;
  double ppb = M_PH / top, y0 = M_TOP + M_PH, base = states_of(dm);
  char a[48], b[48], c[48], e[48];

  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mem\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-size=\"11\">\n",
          M_W, M_H, M_W, M_H);
  fprintf(f, "<text x=\"%.2f\" y=\"18\" font-weight=\"bold\" font-size=\"12\">device %d</text>", M_LEFT, d);
  /* after "device d" in 12 px bold: about 7.6 px a character */
  double name_x = M_LEFT + 10.0 + 7.6 * snprintf(NULL, 0, "device %d", d);
  fprintf(f, "<text x=\"%.2f\" y=\"18\" fill=\"#5b6470\">", name_x);
  ts__xml_puts(f, r->run->devices[d].name);
  fprintf(f, " \xC2\xB7 peak %s", ts__report_bytes(a, sizeof a, dm->peak_memory_bytes));
  if (dm->memory_capacity_bytes > 0) fprintf(f, " of %s", ts__report_bytes(b, sizeof b, dm->memory_capacity_bytes));
  if (!dm->fits) fputs(" \xE2\x80\x94 does not fit", f);
  if (n_class > 1) fprintf(f, " \xC2\xB7 for the %d devices of its folded class", n_class);
  fputs("</text>\n", f);

  /* y grid and labels */
  fputs("<g class=\"grid\" stroke=\"#e3e6ea\">\n", f);
  int nt = (int)floor(top / step + 0.5);
  for (int i = 0; i <= nt; i++)
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", M_LEFT, y0 - i * step * ppb,
            M_LEFT + M_PW, y0 - i * step * ppb);
  fputs("</g>\n<g text-anchor=\"end\" fill=\"#333333\">\n", f);
  double su = step / per;
  int dec = su >= 1 ? 0 : (int)ceil(-log10(su) - 1e-9);
  for (int i = 0; i <= nt; i++)
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", M_LEFT - 6.0, y0 - i * step * ppb + 4.0, dec,
            i * su);
  fputs("</g>\n", f);
  fprintf(f, "<text x=\"0\" y=\"0\" transform=\"translate(14,%.2f) rotate(-90)\" text-anchor=\"middle\" "
             "fill=\"#333333\">memory (%s)</text>\n",
          M_TOP + M_PH / 2.0, un);

  /* model states band, activations on top, capacity */
  if (base > 0)
    fprintf(f, "<rect class=\"states\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
            M_LEFT, y0 - base * ppb, M_PW, base * ppb, RGB_STATES);
  mem_path(f, dm, t_max, y0, ppb, base);
  if (dm->n_res > 0) { /* host-memory schedules: weights arriving and leaving */
    fprintf(f, "<path class=\"res\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"M%.2f,%.2f",
            RGB_RES, M_LEFT, y0);
    for (int i = 0; i < dm->n_res; i++)
      fprintf(f, " H%.2f V%.2f", M_LEFT + fmin(fmax(dm->res_t[i], 0), t_max) * M_PW / t_max,
              y0 - (isfinite(dm->res_bytes[i]) ? dm->res_bytes[i] : 0) * ppb);
    fprintf(f, " H%.2f\"/>\n", M_LEFT + M_PW);
  }
  if (dm->memory_capacity_bytes > 0 && dm->memory_capacity_bytes <= top)
    fprintf(f, "<line class=\"capacity\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
               "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
            M_LEFT, y0 - dm->memory_capacity_bytes * ppb, M_LEFT + M_PW, y0 - dm->memory_capacity_bytes * ppb,
            RGB_CAP);

  /* time axis */
  ts__unit_t u = ts__report_unit_for(t_max);
  double ts = ts__nice_step(t_max, 5.0);
  double tsu = ts * u.per_s;
  int tdec = tsu >= 1 ? 0 : (int)ceil(-log10(tsu) - 1e-9);
  if (tdec > 9) tdec = 9;
  fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", M_LEFT, y0,
          M_LEFT + M_PW, y0);
  fputs("<g text-anchor=\"middle\" fill=\"#333333\">\n", f);
  int ntt = (int)floor(t_max / ts * (1.0 + 1e-9));
  for (int i = 0; i <= ntt; i++) {
    double x = M_LEFT + i * ts * M_PW / t_max;
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>", x, y0, x, y0 + 4.0);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", x, y0 + 16.0, tdec, i * tsu);
  }
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">time (%s)</text>\n</g>\n", M_LEFT + M_PW / 2.0, y0 + 32.0, u.name);

  /* hover area: the device's memory figures */
  fprintf(f, "<rect class=\"mem-hit\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"transparent\">"
             "<title>device %d (",
          M_LEFT, M_TOP, M_PW, M_PH, d);
  ts__xml_puts(f, r->run->devices[d].name);
  fprintf(f, "): model states %s (weights %s, gradients %s, optimizer %s); peak activations %s",
          ts__report_bytes(a, sizeof a, base), ts__report_bytes(b, sizeof b, dm->weights_bytes),
          ts__report_bytes(c, sizeof c, dm->gradients_bytes), ts__report_bytes(e, sizeof e, dm->optimizer_bytes),
          ts__report_bytes(b, sizeof b, dm->peak_activation_bytes));
  if (dm->n_res > 0)
    fprintf(f, "; peak resident weights and gradient buffers %s (room waits %.3g s)",
            ts__report_bytes(a, sizeof a, dm->peak_resident_bytes), dm->room_wait_s);
  fprintf(f, "; peak memory %s", ts__report_bytes(a, sizeof a, dm->peak_memory_bytes));
  if (dm->memory_capacity_bytes > 0)
    fprintf(f, " of %s capacity", ts__report_bytes(c, sizeof c, dm->memory_capacity_bytes));
  fprintf(f, "; %d micro-batches in flight at most</title></rect>\n", dm->peak_inflight);
  fputs("</svg>\n", f);
}

void ts__report_write_memory(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  fputs("<section id=\"memory\">\n<h2>Memory over time</h2>\n", f);
  if (!m || !m->dev || m->n_devices < 1) {
    fputs("<p class=\"note\">n/a: no metrics.</p>\n</section>\n", f);
    return;
  }
  /* One scale for all devices: the largest peak, and the capacities that
  ** are within 1.5 times of it (a capacity far above every peak would
  ** flatten the plots; the chart titles give it). */
  double t_max = ts__report_t_max(r->run), y_max = 0;
  if (!(t_max > 0)) t_max = 1;
  for (int d = 0; d < m->n_devices; d++) y_max = fmax(y_max, m->dev[d].peak_memory_bytes);
  int cap_on = 0, cap_off = 0;
  double peak = y_max;
  for (int d = 0; d < m->n_devices; d++) {
    double c = m->dev[d].memory_capacity_bytes;
    if (c > 0 && (c <= 1.5 * peak || !(peak > 0))) {
      y_max = fmax(y_max, c);
      cap_on++;
    } else if (c > 0) {
      cap_off++;
    }
  }
  if (!(y_max > 0)) y_max = 1;
  fputs("<p class=\"note\">Per device, on one scale: the model states (weights, gradients and optimizer "
        "state) are held throughout; the activations a forward stashes are held until its backward ends "
        "(with recompute, only the stage's input is held, and the backward recomputes the rest).",
        f);
  if (m->dev[0].n_res > 0)
    fputs(" Weights live in host memory here: the teal line is the weights and gradient buffers "
          "on the device over time, fetched before a stage runs and evicted, its gradients written back, after it; the area "
          "is the activations.",
          f);
  if (cap_off)
    fputs(" Capacities far above every peak are left off the scale; each chart's title gives its "
          "device's capacity.",
          f);
  if (r->run->fold)
    fprintf(f, " A folded run: one chart per class of identical devices (%d charts for %d devices), "
               "the class's representative's.", ts__fold_classes(r->run), m->n_devices);
  fputs("</p>\n<div class=\"key\">", f);
  fprintf(f, "<span><i style=\"background:%s\"></i>model states</span>"
             "<span><i style=\"background:%s\"></i>activations</span>",
          RGB_STATES, RGB_ACT);
  if (cap_on) fputs("<span><i class=\"cap\"></i>capacity</span>", f);
  fputs("</div>\n<div class=\"mems\">\n", f);
  /* A folded run: one chart per class, its representative's (every member's
  ** memory is its representative's). */
  const int *fold = r->run->fold;
  int *n_class = ts__xcalloc((size_t)m->n_devices, sizeof *n_class);
  for (int d = 0; d < m->n_devices; d++) n_class[fold && fold[d] >= 0 && fold[d] < m->n_devices ? fold[d] : d]++;
  for (int d = 0; d < m->n_devices; d++)
    if (n_class[d] > 0) write_mem_chart(f, r, d, fold ? n_class[d] : 1, t_max, y_max);
  free(n_class);
  fputs("</div>\n</section>\n", f);
}
