/*
** ts_gantt_legend.c: gantt.svg's legend: a swatch per kind present, the
** chunk shades of interleaved schedules, MoE's lighter expert shades,
** idle, and the note on the numbers in the boxes; rows wrap at the
** figure's width.
*/
#include <stdio.h>

#include "ts_gantt_int.h"

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
  for (int k = 0; k < TS_KIND_COUNT; k++) {
    if (!g->has_kind[k]) continue;
    snprintf(it[n].label, sizeof it[n].label, "%s", ts_kind_name((ts_kind_t)k));
    it[n].rgb = ts__gantt_kind_rgb[k];
    it[n].swatch = ts_kind_is_compute((ts_kind_t)k) || k == TS_OPTIMIZER || k == TS_COMM_WAIT ? 1 : 2;
    n++;
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

  double x = g->left, y = g->legend_y, right = g->width - G_RIGHT;
  *rows = 1;
  for (int i = 0; i < n; i++) {
    double w = (it[i].swatch ? 20.0 : 0.0) + text_w(utf8_len(it[i].label), LEGEND_FS) + 22.0;
    if (x > g->left && x + w > right) {
      x = g->left;
      y += LEGEND_ROW;
      (*rows)++;
    }
    it[i].x = x;
    it[i].y = y;
    x += w;
  }
  return n;
}

void ts__gantt_legend_write(FILE *f, const legend_item_t *it, int n) {
  fprintf(f, "<g class=\"legend\" font-size=\"%.0f\" fill=\"#222222\">\n", LEGEND_FS);
  for (int i = 0; i < n; i++) {
    double x = it[i].x, y = it[i].y;
    if (it[i].swatch == 1)
      fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"14.00\" height=\"12.00\" fill=\"#%06X\" "
                 "stroke=\"#222222\" stroke-width=\"0.5\"/>\n",
              x, y - 10.0, it[i].rgb);
    else if (it[i].swatch == 3)
      fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"7.00\" height=\"12.00\" fill=\"#%06X\"/>\n"
                 "<rect x=\"%.2f\" y=\"%.2f\" width=\"7.00\" height=\"12.00\" fill=\"#%06X\"/>\n"
                 "<rect x=\"%.2f\" y=\"%.2f\" width=\"14.00\" height=\"12.00\" fill=\"none\" "
                 "stroke=\"#222222\" stroke-width=\"0.5\"/>\n",
              x, y - 10.0, it[i].rgb, x + 7.0, y - 10.0, it[i].rgb2, x, y - 10.0);
    else if (it[i].swatch == 2)
      fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"14.00\" height=\"4.00\" fill=\"#%06X\"/>\n",
              x, y - 6.0, it[i].rgb);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", x + (it[i].swatch ? 20.0 : 0.0), y);
    ts__gantt_xml_put(f, it[i].label, -1);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
}
