/*
** sweep_plot.c: sweep.svg of `trainsim sweep`: --metric against the first
** varied path, one line per combination of the other varies' values.  The
** x axis is numeric when every value is a number (SimGrid units allowed),
** log when the values span more than two decades or grow geometrically
** over more than one, else one slot per value; the y axis is log when the
** plotted values span more than two decades; a linear one starts at zero
** (so that a 1 % effect looks like 1 %), and a line under the subtitle
** gives the values' spread as a relative change.  Failed points are
** crosses at the bottom with the error as their tooltip.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "sweep_internal.h"
#include "ts_internal.h"

#define P_LEFT 96.0
#define P_TOP 78.0
#define P_W 620.0
#define P_H 380.0
#define P_LEGEND_X (P_LEFT + P_W + 28.0)
#define P_FONT "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"

/* Okabe & Ito (2008) colours, yellow left out (too pale on white). */
static const char *const series_rgb[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                         "#E69F00", "#56B4E9", "#000000"};
#define N_RGB 7
static const char *const series_dash[] = {"", " stroke-dasharray=\"7 4\"", " stroke-dasharray=\"2 3\""};

/* The unit of a varied path, for its axis label ("" when none applies). */
static const char *path_unit(const char *path) {
  const char *last = strrchr(path, '.');
  last = last ? last + 1 : path;
  if (!strncmp(path, "platform.", 9)) {
    if (!strcmp(last, "bandwidth")) return "B/s";
    if (!strcmp(last, "latency")) return "s";
    if (!strcmp(last, "speed")) return "FLOP/s";
  }
  size_t n = strlen(last);
  if (n > 2 && !strcmp(last + n - 2, "_s")) return "s";
  if (strstr(last, "bytes")) return "B";
  if (!strcmp(last, "seq_len")) return "tokens";
  if (!strcmp(last, "micro_batch_size")) return "samples";
  return "";
}

/* The SI prefix of 10^e3 ("n" to "E"; "" outside). */
static const char *si_prefix(int e3) {
  static const char *const p[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
  int k = e3 / 3 + 3;
  return k >= 0 && k < 10 ? p[k] : "";
}

/* A y axis: linear with 1-2-5 ticks scaled by 10^e3 (the prefix goes in
** the label), or logarithmic with ticks at powers of ten. */
typedef struct sw_axis {
  bool log;
  double lo, hi;  /* axis range, data units (log: decades' exponents) */
  double step;    /* linear tick step */
  int e3;         /* linear: labels are values / 10^e3 */
} sw_axis_t;

/* Where v lies on a, from 0 (lo) to 1 (hi). */
static double axis_pos(const sw_axis_t *a, double v) {
  double t = a->log ? log10(v) : v;
  return (t - a->lo) / (a->hi - a->lo);
}

/* Fits a to the values lo..hi; prefix: the unit takes SI prefixes. */
static void axis_fit(sw_axis_t *a, double lo, double hi, bool prefix) {
  a->log = lo > 0 && hi / lo > 100.0;
  if (a->log) {
    a->lo = floor(log10(lo) + 1e-9);
    a->hi = ceil(log10(hi) - 1e-9);
    if (a->hi <= a->lo) a->hi = a->lo + 1;
    return;
  }
  if (hi == lo) {
    double d = lo != 0 ? fabs(lo) * 0.1 : 1.0;
    lo -= d;
    hi += d;
  }
  a->step = ts__nice_step(hi - lo, 5.0);
  a->lo = floor(lo / a->step + 1e-9) * a->step;
  a->hi = ceil(hi / a->step - 1e-9) * a->step;
  double big = fmax(fabs(a->lo), fabs(a->hi));
  a->e3 = prefix && big > 0 ? (int)floor(log10(big) / 3.0) * 3 : 0;
  if (a->e3 < -9) a->e3 = -9;
  if (a->e3 > 15) a->e3 = 15;
}

/* "12.5 G" style: v with an SI prefix and up to 3 significant digits. */
static void fmt_si(char *buf, size_t n, double v, const char *unit, bool prefix) {
  int e3 = 0;
  if (prefix && v != 0) {
    e3 = (int)floor(log10(fabs(v)) / 3.0) * 3;
    if (e3 < -9) e3 = -9;
    if (e3 > 15) e3 = 15;
  }
  snprintf(buf, n, "%.3g%s%s%s", v / pow(10.0, e3), *unit || e3 ? " " : "", si_prefix(e3), unit);
}

/* The plotted metric of point i; NAN when the point failed, has no
** value, or (log) a value a log axis cannot show. */
static double point_metric(const sweep_t *s, long i, bool log) {
  const sw_point_t *p = &s->pt[i];
  double v = p->ok ? p->m[s->metric] : NAN;
  return isfinite(v) && (!log || v > 0) ? v : NAN;
}

/* Label of series r (a combination of the values of varies 1..nv-1). */
static void series_label(const sweep_t *s, long r, sb_t *b) {
  long rest = 1;
  for (int k = 1; k < s->nv; k++) rest *= s->v[k].n;
  for (int k = 1; k < s->nv; k++) {
    rest /= s->v[k].n;
    if (k > 1) ts__sw_puts(b, ", ");
    ts__sw_puts(b, s->v[k].val[(r / rest) % s->v[k].n]);
  }
}

/* Line width of series r of n: the first drawn widest, so that series with
** equal values (drawn over each other) all stay visible. */
static double series_width(long n, long r) {
  if (n < 2) return 2.0;
  long k = n - 1 - r;
  return 2.0 + 1.8 * (double)(k < 4 ? k : 4) / (double)(n - 1 < 4 ? n - 1 : 4);
}

/* Log x axis: positive values spanning more than two decades, or more than
** one when they grow geometrically (each at least 1.5 times the one before
** it, in sorted order: 1.5625, 3.125, ... 50 GB/s, or 1, 2, 4, ... 128). */
static bool x_geometric(const double *v, int n, double lo, double hi) {
  if (hi / lo > 100.0) return true;
  if (hi / lo <= 10.0 || n < 3) return false;
  double *s = ts__xmalloc((size_t)n * sizeof *s);
  memcpy(s, v, (size_t)n * sizeof *s);
  for (int i = 1; i < n; i++) /* insertion sort: a handful of values */
    for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
      double t = s[j];
      s[j] = s[j - 1];
      s[j - 1] = t;
    }
  bool geo = true;
  for (int i = 1; i < n && geo; i++) geo = s[i] >= 1.5 * s[i - 1];
  free(s);
  return geo;
}

/* The layout of one plot, computed before anything is drawn. */
typedef struct sw_plot {
  const sweep_t *s;
  const sw_metric_t *M; /* the plotted metric */
  const sw_vary_t *v0;  /* the x axis */
  int nx;               /* its values */
  long n_series;        /* lines: combinations of the other varies' values */
  double *xp;           /* [nx] x position of each value */
  bool xlog;            /* log x axis */
  bool have;            /* some point has a value to plot */
  sw_axis_t ya;         /* the y axis, when have: from zero when linear */
  double ymin, ymax;    /* the plotted values' range, when have */
  long failed;          /* failed points */
  bool rotate;          /* x tick labels rotated */
  double label_gap;     /* x labels closer than this to the last one drawn are left out */
  double below;         /* room under the plot for the x tick labels */
  double width, height;
} sw_plot_t;

/* x: numeric (log when the values span more than two decades or grow
** geometrically) or one slot per value.  Sets p->xp (owned by p) and
** p->xlog. */
static void plot_x(sw_plot_t *p) {
  int nx = p->nx;
  double *xv = ts__xmalloc((size_t)nx * sizeof *xv);
  p->xp = ts__xmalloc((size_t)nx * sizeof *p->xp);
  bool numeric = true;
  for (int j = 0; j < nx && numeric; j++) numeric = ts__parse_units(p->v0->val[j], 0, &xv[j]); /* "50GBps", "16"; not "gpipe" */
  double xmin = INFINITY, xmax = -INFINITY;
  if (numeric)
    for (int j = 0; j < nx; j++) {
      xmin = fmin(xmin, xv[j]);
      xmax = fmax(xmax, xv[j]);
    }
  p->xlog = numeric && xmin > 0 && x_geometric(xv, nx, xmin, xmax);
  for (int j = 0; j < nx; j++) {
    double t;
    if (!numeric || xmax == xmin)
      t = numeric ? 0.5 : (j + 0.5) / nx;
    else if (p->xlog)
      t = 0.04 + 0.92 * (log10(xv[j]) - log10(xmin)) / (log10(xmax) - log10(xmin));
    else
      t = 0.04 + 0.92 * (xv[j] - xmin) / (xmax - xmin);
    p->xp[j] = P_LEFT + t * P_W;
  }
  free(xv);
}

/* y: over the plotted values.  Sets p->failed, p->have and p->ya. */
static void plot_y(sw_plot_t *p) {
  const sweep_t *s = p->s;
  double ymin = INFINITY, ymax = -INFINITY;
  for (long i = 0; i < s->n; i++) {
    if (!s->pt[i].ok) p->failed++;
    double y = point_metric(s, i, false);
    if (!isnan(y)) {
      ymin = fmin(ymin, y);
      ymax = fmax(ymax, y);
    }
  }
  p->have = ymin <= ymax;
  if (!p->have) return;
  p->ymin = ymin;
  p->ymax = ymax;
  axis_fit(&p->ya, ymin, ymax, p->M->prefix);
  /* A linear axis starts at zero, so that a 1 % effect looks like one; the
  ** subtitle gives the spread as a relative change. */
  if (!p->ya.log && (ymin > 0 || ymax < 0))
    axis_fit(&p->ya, ymin > 0 ? 0.0 : ymin, ymax < 0 ? 0.0 : ymax, p->M->prefix);
}

/* The legend rows and the rotation of the x tick labels decide the size. */
static void plot_size(sw_plot_t *p) {
  int legend_rows = p->s->nv > 1 ? (int)p->n_series + 1 : 0;
  double longest = 0, slot = P_W;
  for (int j = 0; j < p->nx; j++) {
    longest = fmax(longest, (double)strlen(p->v0->val[j]));
    for (int k = 0; k < j; k++)
      if (fabs(p->xp[j] - p->xp[k]) > 0.01) slot = fmin(slot, fabs(p->xp[j] - p->xp[k]));
  }
  p->rotate = longest * 6.6 + 6 > slot;
  p->label_gap = p->rotate ? 13.0 : longest * 6.6 + 6;
  p->below = p->rotate ? 30.0 + longest * 6.6 * 0.64 : 30.0;
  p->width = P_LEGEND_X + 230.0;
  p->height = P_TOP + P_H + p->below + 48.0;
  if (P_TOP + 18.0 * legend_rows + 20.0 > p->height) p->height = P_TOP + 18.0 * legend_rows + 20.0;
  p->height = ceil(p->height);
}

/* "path=value, ..." of point i, XML-escaped. */
static void put_point(FILE *f, const sweep_t *s, long i) {
  for (int k = 0; k < s->nv; k++) {
    if (k) fputs(", ", f);
    ts__xml_puts(f, s->v[k].path);
    fputc('=', f);
    ts__xml_puts(f, s->v[k].val[ts__sw_point_val(s, i, k)]);
  }
}

/* The <svg> element, the background, the title and the subtitle. */
static void draw_head(const sw_plot_t *p, FILE *f) {
  const sweep_t *s = p->s;
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n",
          p->width, p->height, p->width, p->height, P_FONT);
  fputs("<desc>trainsim " TS_VERSION " sweep: one metric of every point against the first varied "
        "path, one line per value of the other varied paths.</desc>\n", f);
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", p->width,
          p->height);
  fprintf(f, "<text x=\"%.2f\" y=\"26.00\" font-size=\"16\" font-weight=\"bold\" fill=\"#111111\">", P_LEFT);
  ts__xml_puts(f, p->M->label);
  fputs(" against ", f);
  ts__xml_puts(f, p->v0->path);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%.2f\" y=\"46.00\" font-size=\"12\" fill=\"#555555\">trainsim sweep: %ld point%s",
          P_LEFT, s->n, s->n == 1 ? "" : "s");
  if (s->nv > 1) {
    fputs(", one line per ", f);
    for (int k = 1; k < s->nv; k++) {
      if (k > 1) fputs(" \xC3\x97 ", f);
      ts__xml_puts(f, s->v[k].path);
    }
  }
  if (p->failed)
    fprintf(f, "; %ld failed (\xC3\x97 at the bottom, hover for the error)", p->failed);
  fputs("</text>\n", f);
  if (p->have && p->ymin > 0 && s->n > 1) { /* the spread, relative */
    char a[64], b[64];
    fmt_si(a, sizeof a, p->ymin, p->M->unit, p->M->prefix);
    fmt_si(b, sizeof b, p->ymax, p->M->unit, p->M->prefix);
    fprintf(f, "<text class=\"spread\" x=\"%.2f\" y=\"62.00\" font-size=\"12\" fill=\"#555555\">"
               "values from %s to %s: the largest is %+.1f %% above the smallest</text>\n",
            P_LEFT, a, b, 100.0 * (p->ymax / p->ymin - 1.0));
  }
}

/* The frame, the y grid with its tick labels and the y label. */
static void draw_y(const sw_plot_t *p, FILE *f) {
  const sw_axis_t *ya = &p->ya;
  const sw_metric_t *M = p->M;
  fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#fbfbfb\" "
             "stroke=\"#333333\" stroke-width=\"1\"/>\n",
          P_LEFT, P_TOP, P_W, P_H);
  char lab[128];
  if (p->have) {
    fputs("<g class=\"yticks\" font-size=\"11\" text-anchor=\"end\" fill=\"#222222\">\n", f);
    if (ya->log) {
      for (int e = (int)ya->lo; e <= (int)ya->hi; e++) {
        double y = P_TOP + P_H - P_H * (e - ya->lo) / (ya->hi - ya->lo);
        fmt_si(lab, sizeof lab, pow(10.0, e), "", M->prefix);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                P_LEFT, y, P_LEFT + P_W, y);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n", P_LEFT - 8.0, y + 4.0, lab);
      }
    } else {
      double sc = pow(10.0, ya->e3), st = ya->step / sc;
      int dec = st >= 1.0 ? 0 : (int)ceil(-log10(st) - 1e-9);
      if (dec > 9) dec = 9;
      int nt = (int)floor((ya->hi - ya->lo) / ya->step + 0.5);
      for (int t = 0; t <= nt; t++) {
        double val = ya->lo + t * ya->step, y = P_TOP + P_H - P_H * t / nt;
        if (fabs(val) < ya->step * 1e-9) val = 0;
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                P_LEFT, y, P_LEFT + P_W, y);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", P_LEFT - 8.0, y + 4.0, dec, val / sc + 0.0);
      }
    }
    fputs("</g>\n", f);
  }
  fprintf(f, "<text x=\"0\" y=\"0\" transform=\"translate(%.2f,%.2f) rotate(-90)\" font-size=\"12\" "
             "text-anchor=\"middle\" fill=\"#222222\">",
          24.0, P_TOP + P_H / 2.0);
  ts__xml_puts(f, M->label);
  if (p->have && !ya->log && (*M->unit || ya->e3))
    fprintf(f, " (%s%s)", si_prefix(ya->e3), *M->unit ? M->unit : "");
  else if (*M->unit || (p->have && ya->log))
    fprintf(f, " (%s%s%s)", M->unit, *M->unit && p->have && ya->log ? ", " : "",
            p->have && ya->log ? "log scale" : "");
  fputs("</text>\n", f);
}

/* The x ticks, labelled with the values as given where they do not crowd,
** and the x label. */
static void draw_x(const sw_plot_t *p, FILE *f) {
  const double *xp = p->xp;
  bool *labelled = ts__xmalloc((size_t)p->nx * sizeof *labelled);
  memset(labelled, 0, (size_t)p->nx * sizeof *labelled);
  fputs("<g class=\"xticks\" font-size=\"11\" fill=\"#222222\">\n", f);
  for (int j = 0; j < p->nx; j++) {
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n", xp[j],
            P_TOP, xp[j], P_TOP + P_H);
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", xp[j],
            P_TOP + P_H, xp[j], P_TOP + P_H + 5.0);
    bool crowded = false;
    for (int k = 0; k < j && !crowded; k++)
      crowded = labelled[k] && fabs(xp[j] - xp[k]) < p->label_gap;
    if (crowded) continue;
    labelled[j] = true;
    if (p->rotate)
      fprintf(f, "<text x=\"0\" y=\"0\" text-anchor=\"end\" transform=\"translate(%.2f,%.2f) rotate(-40)\">",
              xp[j] + 3.0, P_TOP + P_H + 16.0);
    else
      fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", xp[j], P_TOP + P_H + 19.0);
    ts__xml_puts(f, p->v0->val[j]);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222222\">",
          P_LEFT + P_W / 2.0, P_TOP + P_H + p->below + 22.0);
  ts__xml_puts(f, p->v0->path);
  const char *xu = path_unit(p->v0->path);
  if (*xu || p->xlog) fprintf(f, " (%s%s%s)", xu, *xu && p->xlog ? ", " : "", p->xlog ? "log scale" : "");
  fputs("</text>\n", f);
  free(labelled);
}

/* Series r: a line broken where a point has no value, then its points
** with their values as tooltips. */
static void draw_series(const sw_plot_t *p, long r, FILE *f) {
  const sweep_t *s = p->s;
  const char *rgb = series_rgb[r % N_RGB];
  const char *dash = series_dash[(r / N_RGB) % 3];
  double lw = series_width(p->n_series, r);
  fprintf(f, "<g class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\"%s>\n", rgb, lw, dash);
  bool open = false;
  for (int j = 0; j < p->nx; j++) {
    double y = point_metric(s, (long)j * p->n_series + r, p->ya.log);
    if (isnan(y)) {
      if (open) fputs("\"/>\n", f);
      open = false;
      continue;
    }
    double py = P_TOP + P_H - P_H * axis_pos(&p->ya, y);
    fprintf(f, "%s%.2f,%.2f", open ? " " : "<polyline points=\"", p->xp[j], py);
    open = true;
  }
  if (open) fputs("\"/>\n", f);
  fputs("</g>\n", f);
  fprintf(f, "<g class=\"points\" fill=\"%s\">\n", rgb);
  char lab[128];
  for (int j = 0; j < p->nx; j++) {
    long i = (long)j * p->n_series + r;
    double y = point_metric(s, i, p->ya.log);
    if (isnan(y)) continue;
    double py = P_TOP + P_H - P_H * axis_pos(&p->ya, y);
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"><title>", p->xp[j], py, lw + 1.5);
    put_point(f, s, i);
    fmt_si(lab, sizeof lab, y, p->M->unit, p->M->prefix);
    fprintf(f, ": %s %s</title></circle>\n", p->M->name, lab);
  }
  fputs("</g>\n", f);
}

/* The failed points: a cross under the axis with the error. */
static void draw_failed(const sw_plot_t *p, FILE *f) {
  const sweep_t *s = p->s;
  fputs("<g class=\"failed\" stroke=\"#C00000\" stroke-width=\"1.6\">\n", f);
  for (long i = 0; i < s->n; i++) {
    if (s->pt[i].ok) continue;
    double x = p->xp[ts__sw_point_val(s, i, 0)], y = P_TOP + P_H - 8.0;
    fprintf(f, "<path d=\"M%.2f,%.2f l6,6 m0,-6 l-6,6\"><title>", x - 3.0, y - 3.0);
    put_point(f, s, i);
    fputs(": ", f);
    ts__xml_puts(f, s->pt[i].error ? s->pt[i].error : "failed");
    fputs("</title></path>\n", f);
  }
  fputs("</g>\n", f);
}

/* The legend: the other varies' paths, then one row per series. */
static void draw_legend(const sw_plot_t *p, FILE *f) {
  const sweep_t *s = p->s;
  fputs("<g class=\"legend\" font-size=\"11\" fill=\"#222222\">\n", f);
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-weight=\"bold\">", P_LEGEND_X, P_TOP + 4.0);
  for (int k = 1; k < s->nv; k++) {
    if (k > 1) fputs(", ", f);
    ts__xml_puts(f, s->v[k].path);
  }
  fputs("</text>\n", f);
  for (long r = 0; r < p->n_series; r++) {
    double y = P_TOP + 22.0 + 18.0 * r;
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
               "stroke-width=\"%.2f\"%s/>\n",
            P_LEGEND_X, y - 4.0, P_LEGEND_X + 22.0, y - 4.0, series_rgb[r % N_RGB],
            series_width(p->n_series, r), series_dash[(r / N_RGB) % 3]);
    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\"/>\n", P_LEGEND_X + 11.0,
            y - 4.0, series_width(p->n_series, r) + 1.5, series_rgb[r % N_RGB]);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", P_LEGEND_X + 30.0, y);
    sb_t b = {0};
    series_label(s, r, &b);
    ts__xml_puts(f, b.s ? b.s : "");
    free(b.s);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
}

int ts__sw_write_svg(const void *arg, FILE *f) {
  const sweep_t *s = arg;
  sw_plot_t p = {.s = s, .M = &ts__sw_metrics[s->metric], .v0 = &s->v[0], .nx = s->v[0].n};
  p.n_series = s->n / p.nx;
  plot_x(&p);
  plot_y(&p);
  plot_size(&p);
  draw_head(&p, f);
  draw_y(&p, f);
  draw_x(&p, f);
  if (!p.have)
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"14\" text-anchor=\"middle\" fill=\"#555555\">"
               "no value of %s to plot</text>\n",
            P_LEFT + P_W / 2.0, P_TOP + P_H / 2.0, p.M->name);
  for (long r = 0; r < p.n_series && p.have; r++) draw_series(&p, r, f);
  if (p.failed) draw_failed(&p, f);
  if (s->nv > 1) draw_legend(&p, f);
  fputs("</svg>\n", f);
  free(p.xp);
  return ferror(f) ? EX_IOERR : 0;
}
