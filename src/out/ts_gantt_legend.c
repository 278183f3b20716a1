/*
** ts_gantt_legend.c: the text around gantt.svg's rows: the title and
** subtitle (wrapped onto two lines when one does not fit the width), the
** time axis with its grid, and the legend: a swatch per kind present (the
** split backward's halves as B and W), the chunk shades of interleaved
** schedules, MoE's lighter expert shades, idle (blank), and the note on
** the numbers in the boxes; legend rows wrap at the figure's width.
** Every size is in units of the figure's font size g->fs.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ts_gantt_int.h"

void ts__gantt_put_fs(FILE *f, double fs) {
  char num[64];
  ts__fmt_fixed(num, fs, 2);
  fputs(num, f);
}

/* ------------------------------------------------------------------ */
/* Title                                                               */
/* ------------------------------------------------------------------ */

/* The title's two parts: "<schedule> — p=4 m=8 [v=2]" and "iteration
** 12.35 ms, bubble fraction 0.273" (raw text, escaped when written). */
static void title_parts(const gantt_t *g, char *head, size_t hn, char *tail, size_t tn) {
  const ts_job_t *job = g->r->job;
  const ts_metrics_t *m = g->r->metrics;
  char it[48], bf[32];
  double T = m && isfinite(m->iteration_time_s) ? m->iteration_time_s : g->t_max;
  ts__gantt_fmt_in(it, sizeof it, T, ts__gantt_unit_for(T));
  if (m && isfinite(m->bubble_fraction))
    snprintf(bf, sizeof bf, "%.3f", m->bubble_fraction + 0.0);
  else
    snprintf(bf, sizeof bf, "n/a");
  int n = snprintf(head, hn, "%.64s", job && job->schedule[0] ? job->schedule : "schedule");
  if (job && n >= 0 && (size_t)n < hn) {
    n += snprintf(head + n, hn - (size_t)n, " \xE2\x80\x94 p=%d m=%d", job->stages, job->microbatches);
    if (job->chunks > 1 && (size_t)n < hn) snprintf(head + n, hn - (size_t)n, " v=%d", job->chunks);
  }
  snprintf(tail, tn, "iteration %s, bubble fraction %s", it, bf);
}

int ts__gantt_title_lines(const gantt_t *g) {
  if (!g->title) return 0;
  char head[128], tail[128];
  title_parts(g, head, sizeof head, tail, sizeof tail);
  /* bold text at 1.1 fs is about 0.64 x 1.1 fs per character */
  double w = (utf8_len(head) + 3 + utf8_len(tail)) * 0.64 * 1.1 * g->fs;
  return w <= g->width - 2.0 * G_MARGIN * g->k ? 1 : 2;
}

/* The title (bold, one or two lines) and a subtitle naming the model, the
** devices and the executor, shortened to the width. */
void ts__gantt_title_write(FILE *f, const gantt_t *g) {
  int lines = ts__gantt_title_lines(g);
  if (!lines) return;
  const ts_job_t *job = g->r->job;
  char head[128], tail[128], sub[256];
  title_parts(g, head, sizeof head, tail, sizeof tail);
  double fs = g->fs, x = G_MARGIN * g->k, y = 1.35 * fs;
  fprintf(f, "<text class=\"title\" x=\"%.2f\" y=\"%.2f\" font-size=\"", x, y);
  ts__gantt_put_fs(f, 1.1 * fs);
  fprintf(f, "\" font-weight=\"bold\" fill=\"%s\">", g->ink);
  ts__xml_puts(f, head);
  if (lines == 1) {
    fputs(" \xE2\x80\x94 ", f);
    ts__xml_puts(f, tail);
  } else {
    y += 1.3 * fs;
    fprintf(f, "</text>\n<text class=\"title\" x=\"%.2f\" y=\"%.2f\" fill=\"%s\">", x, y, g->ink);
    ts__xml_puts(f, tail);
  }
  fputs("</text>\n", f);

  int n = 0;
  if (job && job->model.name[0]) n = snprintf(sub, sizeof sub, "model %.64s \xC2\xB7 ", job->model.name);
  n += snprintf(sub + n, sizeof sub - (size_t)n, "%d device%s", g->n_dev, g->n_dev == 1 ? "" : "s");
  if (g->r->run->executor[0])
    n += snprintf(sub + n, sizeof sub - (size_t)n, " \xC2\xB7 %.32s executor", g->r->run->executor);
  if (job && job->iterations > 1)
    snprintf(sub + n, sizeof sub - (size_t)n, " \xC2\xB7 %d iterations", job->iterations);
  /* at most the characters that fit, at DejaVu Sans' mean advance of
  ** about 0.55 em (bytes: exact for ASCII names) */
  int fit = (int)((g->width - 2.0 * G_MARGIN * g->k) / (0.55 * fs)) - 1;
  fprintf(f, "<text class=\"subtitle\" x=\"%.2f\" y=\"%.2f\" fill=\"%s\">", x, y + 1.3 * fs, g->mute);
  ts__gantt_xml_put(f, sub, utf8_len(sub) > fit ? fit : -1);
  fputs("</text>\n", f);
}

/* ------------------------------------------------------------------ */
/* Axis                                                                */
/* ------------------------------------------------------------------ */

/* axis false: vertical grid lines behind the boxes (screen style only).
** axis true: the axis line, its ticks and labels, and the axis title with
** the unit.  Ticks are about 5 font sizes apart. */
void ts__gantt_axis_write(FILE *f, const gantt_t *g, bool axis) {
  double fs = g->fs, k = g->k;
  double step = ts__nice_step(g->t_max, fmax(2.0, g->plot_w / (5.0 * fs)));
  double su = step * g->unit.per_s;
  int dec = su >= 1.0 ? 0 : (int)ceil(-log10(su) - 1e-9);
  if (dec > 9) dec = 9;
  int n_ticks = (int)floor(g->t_max / step * (1.0 + 1e-9)) + 1;
  double y0 = g->top - 0.35 * fs, y1 = g->axis_y;

  if (!axis) {
    fputs("<g class=\"grid\" stroke=\"#dddddd\" stroke-width=\"0.75\">\n", f);
    for (int i = 0; i < n_ticks; i++) {
      double x = g->left + i * step * g->scale;
      fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, y0, x, y1);
    }
    fputs("</g>\n", f);
    return;
  }
  fprintf(f, "<g class=\"axis\" stroke=\"%s\" stroke-width=\"%s\">\n", g->print ? "#000000" : "#333333",
          g->print ? "0.5" : "1");
  fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", g->left, y1,
          g->left + g->plot_w, y1);
  for (int i = 0; i < n_ticks; i++) {
    double x = g->left + i * step * g->scale;
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, y1, x, y1 + 5.0 * k);
  }
  fprintf(f, "</g>\n<g class=\"ticks\" text-anchor=\"middle\" fill=\"%s\">\n", g->print ? "#000000" : "#222222");
  for (int i = 0; i < n_ticks; i++) {
    double x = g->left + i * step * g->scale;
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", x, y1 + 5.0 * k + fs, dec, i * su + 0.0);
  }
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">time (%s)</text>\n</g>\n", g->left + g->plot_w / 2.0,
          y1 + 5.0 * k + 2.3 * fs, g->unit.name);
}

/* ------------------------------------------------------------------ */
/* Legend                                                              */
/* ------------------------------------------------------------------ */

/* MoE expert compute: the op's colour halfway to white. */
uint32_t ts__gantt_expert_rgb(uint32_t rgb) {
  uint32_t out = 0;
  for (int s = 0; s < 24; s += 8) out |= ((((rgb >> s) & 0xFF) + 0xFF) / 2) << s;
  return out;
}

/* Fills it[] (at most LEGEND_MAX) with the kinds present, the chunk
** shades, idle and the note on numbers, positioned in rows that wrap at
** the figure's width.  Returns the count and sets *rows. */
int ts__gantt_legend_build(const gantt_t *g, legend_item_t *it, int *rows) {
  int n = 0;
  /* Tensor-parallel collectives have their own colour: then the others
  ** read "DP collective" (absent when there are none). */
  bool tp = false, other = false;
  for (int i = 0; g->has_kind[TS_COLLECTIVE] && i < g->r->run->n_events; i++)
    if (g->r->run->events[i].kind == TS_COLLECTIVE) {
      bool t = TS_EV_COLL_PURPOSE(g->r->run->events[i].coll) == TS_CP_TP;
      tp |= t, other |= !t;
    }
  for (int k = 0; k < TS_KIND_COUNT; k++) {
    if (!g->has_kind[k] || (k == TS_COLLECTIVE && tp && !other)) continue;
    snprintf(it[n].label, sizeof it[n].label, "%s",
             k == TS_COLLECTIVE && tp ? "DP collective" : ts__fig_kind_label(k));
    it[n].rgb = ts__gantt_kind_rgb[k];
    it[n].swatch = ts_kind_is_compute((ts_kind_t)k) || k == TS_OPTIMIZER || k == TS_COMM_WAIT ? 1 : 2;
    n++;
    if (k == TS_COLLECTIVE && tp) {
      snprintf(it[n].label, sizeof it[n].label, "TP collective");
      it[n].rgb = TS_GANTT_TP_RGB;
      it[n++].swatch = 2;
    }
  }
  if (g->n_chunks > 1) { /* shades of the first two compute kinds present */
    int kinds[2] = {TS_FORWARD, TS_BACKWARD}, nk = 0;
    for (int k = 0; k < TS_COMPUTE_KINDS && nk < 2; k++)
      if (g->has_kind[k]) kinds[nk++] = k;
    if (nk == 1) kinds[1] = kinds[0];
    for (int c = 0; c < g->n_chunks && c < LEGEND_CHUNKS; c++) {
      snprintf(it[n].label, sizeof it[n].label, "chunk %d", c);
      it[n].rgb = ts__gantt_box_rgb(g, kinds[0], c);
      it[n].rgb2 = ts__gantt_box_rgb(g, kinds[1], c);
      it[n].swatch = 3;
      n++;
    }
  }
  if (g->has_expert) {
    snprintf(it[n].label, sizeof it[n].label, "experts (lighter)");
    it[n].rgb = ts__gantt_expert_rgb(ts__gantt_kind_rgb[TS_FORWARD]);
    it[n].rgb2 = ts__gantt_expert_rgb(ts__gantt_kind_rgb[TS_BACKWARD]);
    it[n++].swatch = 3;
  }
  snprintf(it[n].label, sizeof it[n].label, "idle");
  it[n].rgb = IDLE_RGB;
  it[n++].swatch = 1;
  snprintf(it[n].label, sizeof it[n].label, "numbers: micro-batch (from 1)");
  it[n].rgb = 0;
  it[n++].swatch = 0;

  double fs = g->fs, x = G_MARGIN * g->k, y = g->legend_y, right = g->width - G_MARGIN * g->k;
  *rows = 1;
  for (int i = 0; i < n; i++) {
    double w = (it[i].swatch ? 1.3 * fs : 0.0) + text_w(utf8_len(it[i].label), fs) + 1.1 * fs;
    if (x > G_MARGIN * g->k && x + w - 1.1 * fs > right) {
      x = G_MARGIN * g->k;
      y += LEGEND_ROW * fs;
      (*rows)++;
    }
    it[i].x = x;
    it[i].y = y;
    x += w;
  }
  return n;
}

void ts__gantt_legend_write(FILE *f, const gantt_t *g, const legend_item_t *it, int n) {
  double fs = g->fs, sw = 0.9 * fs, sh = 0.75 * fs;
  const char *line = g->print ? "#000000" : "#222222";
  const char *lw = g->print ? "0.25" : "0.5";
  fprintf(f, "<g class=\"legend\" fill=\"%s\">\n", g->print ? "#000000" : "#222222");
  for (int i = 0; i < n; i++) {
    double x = it[i].x, y = it[i].y, top = y - 0.82 * sh - 0.05 * fs;
    if (it[i].swatch == 1) /* idle: the row's blank, framed */
      fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%06X\" "
                 "stroke=\"%s\" stroke-width=\"%s\"/>\n",
              x, top, sw, sh, it[i].rgb, line, lw);
    else if (it[i].swatch == 3)
      fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%06X\"/>\n"
                 "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%06X\"/>\n"
                 "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
                 "stroke=\"%s\" stroke-width=\"%s\"/>\n",
              x, top, sw / 2, sh, it[i].rgb, x + sw / 2, top, sw / 2, sh, it[i].rgb2, x, top, sw, sh,
              line, lw);
    else if (it[i].swatch == 2)
      fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%06X\"/>\n", x,
              y - 0.45 * fs, sw, 0.3 * fs, it[i].rgb);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", x + (it[i].swatch ? 1.3 * fs : 0.0), y);
    ts__gantt_xml_put(f, it[i].label, -1);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
}
