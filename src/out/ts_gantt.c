/*
** ts_gantt.c: gantt.svg, the pipeline figure of one run, drawn like the
** figures of the GPipe, Megatron and Chimera papers.
**
** One framed row per device (labelled with its index and host name) holds
** a box per compute event, coloured by kind with the Okabe-Ito colour-blind
** safe palette; idle time is left blank (white) inside the frame, as the
** papers draw it.  Later chunks of interleaved schedules are lighter shades
** of the same colour; the split backward's halves are named B and W, as in
** the zero-bubble papers.  The micro-batch number (counted from 1, as the
** papers do) is centred in a box when it fits.  A thin lane under each
** row shows the transfers the device sends, overlapping ones stacked on
** sub-lanes; transfers that move no bytes (the ideal platform's) are not
** drawn.  Runs with data parallelism add a thinner lane under that
** one for each device's collectives (its communication stream), and draw
** the optimizer step and comm waits on the compute row in their own
** colours, without numbers.  Below: a time axis with 1-2-5 ticks in an automatic unit
** (s, ms, us or ns), then a legend.  Every box carries a <title> tooltip.
** The options (ts_gantt_opts_t) set the width, the text size, the title
** and the style; every size scales with the text.
**
** Assumptions: r->run->events are sorted by start (as ts_run_sort leaves
** them); times are seconds from the start of the run.  Events with a
** device outside the run, an unknown kind or non-finite times are not
** drawn.  The job, the layout and the metrics are optional: without a
** layout the virtual stage is shown as the stage and the chunk as 0;
** without metrics the title says "n/a" for the bubble fraction.
**
** Which rows are drawn, for runs too large for one row per device, and
** the merging of tiny boxes, are ts_gantt_rows.c's.
**
** Output is a self-contained SVG 1.1 document (no external fonts, styles
** or scripts), byte-for-byte deterministic: every number is printed with
** a fixed format and nothing depends on pointers or clocks.
*/
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_gantt_int.h"
#include "ts_internal.h"

/* Okabe & Ito (2008) palette, per ts_kind_t. */
const uint32_t ts__gantt_kind_rgb[TS_KIND_COUNT] = {
    0x0072B2, /* forward: blue */
    0xE69F00, /* backward: orange */
    0xCC79A7, /* recompute: reddish purple */
    0xD55E00, /* backward_input: vermillion */
    0x009E73, /* weight_grad: bluish green */
    0x56B4E9, /* send_act: sky blue, the forward family */
    0xB8860B, /* send_grad: dark goldenrod, the backward family */
    0x555555, /* allreduce: grey */
    0x882255, /* dispatch: wine (MoE all-to-all before the experts) */
    0x117733, /* combine: green (MoE all-to-all after the experts) */
    0x332288, /* collective: indigo, the communication stream's lane */
    0x999933, /* optimizer: olive, the optimizer step */
    0xCC6677, /* comm_wait: rose, compute blocked on communication */
    0x44AA99, /* fetch: teal, weights arriving */
    0xAA4499, /* offload: purple, gradients leaving */
    0x000000, /* evict: instant, not drawn */
    0xBBBBBB, /* room_wait: light grey, waiting for device memory */
};

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/* Writes s with XML's special characters escaped, at most max_bytes of it
** (cut on a UTF-8 character boundary, then "…" appended); max_bytes < 0
** means all.  Control characters XML 1.0 forbids become '?'. */
void ts__gantt_xml_put(FILE *f, const char *s, int max_bytes) {
  size_t n = strlen(s), cut = n;
  if (max_bytes >= 0 && n > (size_t)max_bytes) {
    cut = (size_t)max_bytes;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
  }
  ts__xml_put(f, s, cut);
  if (cut < n) fputs("\xE2\x80\xA6", f);
}

/* The unit in which t reads between 1 and 1000 (s from 1 s up). */
unit_t ts__gantt_unit_for(double t) {
  if (t >= 1.0 || !(t > 0)) return (unit_t){"s", 1.0};
  if (t >= 1e-3) return (unit_t){"ms", 1e3};
  if (t >= 1e-6) return (unit_t){"us", 1e6};
  return (unit_t){"ns", 1e9};
}

/* Formats t seconds in unit u with about four significant digits. */
void ts__gantt_fmt_in(char *buf, size_t n, double t, unit_t u) {
  double v = t * u.per_s, a = fabs(v);
  int dec = a >= 100 ? 1 : a >= 10 ? 2 : 3;
  char num[64];
  int len = ts__fmt_fixed(num, v, dec);
  snprintf(buf, n, "%.*s %s", len < 32 ? len : 32, num, u.name);
}

/* Appends " name=\"v\"" with v to 2 decimals (the hot path of big charts). */
static void attr2(FILE *f, const char *name, double v) {
  char num[64];
  ts__fmt_fixed(num, v, 2);
  fputc(' ', f);
  fputs(name, f);
  fputs("=\"", f);
  fputs(num, f);
  fputc('"', f);
}

/* Avoids "-0.00" in coordinates. */
static double px(double v) { return fabs(v) < 0.005 ? 0.0 : v; }

/* ------------------------------------------------------------------ */
/* Colour                                                              */
/* ------------------------------------------------------------------ */

/* Mixes rgb with white: f = 0 keeps it, f = 1 gives white. */
static uint32_t lighten(uint32_t rgb, double f) {
  uint32_t out = 0;
  for (int sh = 16; sh >= 0; sh -= 8) {
    double c = (rgb >> sh) & 0xFF;
    c = c + (255.0 - c) * f;
    out |= (uint32_t)lround(c) << sh;
  }
  return out;
}

/* Fill of a compute box: the kind's colour, lighter for later chunks (the
** last chunk is mixed 55% of the way to white). */
uint32_t ts__gantt_box_rgb(const gantt_t *g, int kind, int chunk) {
  uint32_t c = ts__gantt_kind_rgb[kind];
  if (g->n_chunks > 1 && chunk > 0) {
    int k = chunk < g->n_chunks ? chunk : g->n_chunks - 1;
    c = lighten(c, 0.55 * k / (g->n_chunks - 1));
  }
  return c;
}

/* Black or white, whichever contrasts more with rgb (WCAG luminance). */
static const char *ink_on(uint32_t rgb) {
  static const double w[3] = {0.2126, 0.7152, 0.0722};
  double l = 0;
  for (int i = 0; i < 3; i++) {
    double c = ((rgb >> (16 - 8 * i)) & 0xFF) / 255.0;
    c = c <= 0.03928 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
    l += w[i] * c;
  }
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000000" : "#ffffff";
}

/* ------------------------------------------------------------------ */
/* Layout                                                              */
/* ------------------------------------------------------------------ */

bool ts__gantt_event_ok(const gantt_t *g, const ts_event_t *e) {
  return e->device >= 0 && e->device < g->n_dev && e->kind >= 0 && e->kind < TS_KIND_COUNT &&
         e->kind != TS_EVICT &&
         isfinite(e->start) && isfinite(e->end) && e->start >= 0 && e->end >= e->start;
}

static bool event_drawn(const gantt_t *g, const ts_event_t *e) {
  return ts__gantt_event_ok(g, e) && g->row_of[e->device] >= 0;
}

static void stage_chunk(const ts_result_t *r, int vstage, int *stage, int *chunk) {
  const ts_layout_t *L = r->layout;
  if (L && vstage >= 0 && vstage < L->n_vstages) {
    *stage = L->stage[vstage];
    *chunk = L->chunk[vstage];
  } else {
    *stage = vstage;
    *chunk = 0;
  }
}

/* Picks the time range, the unit, the width and, for every transfer, a
** sub-lane of its sender's lane (greedy: the first sub-lane whose last
** transfer has ended; past G_MAX_SUBLANES, the one that ends first).
** Allocation failure exits (ts_internal.h). */
static void gantt_style(gantt_t *g, const ts_gantt_opts_t *o);
static void gantt_layout(gantt_t *g, const ts_gantt_opts_t *o) {
  gantt_style(g, o);
  ts__gantt_rows_plan(g, o);
  const ts_run_t *run = g->r->run;
  int n = run->n_events, nd = g->n_dev ? g->n_dev : 1;
  double *lane_end = ts__xmalloc((size_t)nd * G_MAX_SUBLANES * sizeof *lane_end);
  g->sublane = ts__xmalloc((size_t)(n ? n : 1) * sizeof *g->sublane);
  g->n_sublanes = ts__xcalloc((size_t)nd, sizeof *g->n_sublanes);

  g->n_chunks = 1;
  if (g->r->layout)
    for (int k = 0; k < g->r->layout->n_vstages; k++)
      if (g->r->layout->chunk[k] + 1 > g->n_chunks) g->n_chunks = g->r->layout->chunk[k] + 1;

  /* n_sublanes counts the sub-lanes in use during this pass. */
  double t_max = 0, min_dur = INFINITY;
  for (int i = 0; i < n; i++) {
    const ts_event_t *e = &run->events[i];
    g->sublane[i] = -1;
    if (!event_drawn(g, e)) continue;
    bool xfer = !ts_kind_is_compute((ts_kind_t)e->kind) && e->kind != TS_COLLECTIVE &&
                e->kind != TS_OPTIMIZER && e->kind != TS_COMM_WAIT;
    /* A transfer that moves no bytes (the ideal platform's) is not drawn:
    ** it would be a tick for nothing; an all-to-all call's span carries no
    ** bytes of its own but is drawn. */
    if (xfer && !(e->bytes > 0) && !(e->flags & TS_EVF_A2A_CALL)) continue;
    g->has_kind[e->kind] = true;
    if (e->flags & TS_EVF_EXPERT) g->has_expert = true;
    if (e->end > t_max) t_max = e->end;
    if (e->iteration + 1 > g->iterations) g->iterations = e->iteration + 1;
    if (e->kind == TS_COLLECTIVE) {
      g->has_coll = true;
      continue;
    }
    if (e->kind == TS_OPTIMIZER || e->kind == TS_COMM_WAIT) continue;
    if (ts_kind_is_compute((ts_kind_t)e->kind)) {
      char num[24];
      int digits = ts__fmt_int(num, e->mb + 1);
      if (digits > g->mb_digits) g->mb_digits = digits;
      if (e->end > e->start && e->end - e->start < min_dur) min_dur = e->end - e->start;
      continue;
    }
    int d = e->device, used = g->n_sublanes[d], k;
    double *le = lane_end + (size_t)d * G_MAX_SUBLANES;
    for (k = 0; k < used; k++)
      if (le[k] <= e->start) break;
    if (k == used && used < G_MAX_SUBLANES) {
      g->n_sublanes[d]++;
      le[k] = e->end;
    } else if (k == used) {
      k = 0;
      for (int j = 1; j < used; j++)
        if (le[j] < le[k]) k = j;
      le[k] = fmax(le[k], e->end);
    } else {
      le[k] = e->end;
    }
    assert(k >= 0 && k < G_MAX_SUBLANES && k < g->n_sublanes[d]);
    g->sublane[i] = k;
  }
  free(lane_end);
  for (int d = 0; d < g->n_dev; d++)
    if (g->n_sublanes[d] < 1) g->n_sublanes[d] = 1;

  if (!(t_max > 0)) {
    const ts_metrics_t *m = g->r->metrics;
    t_max = m && isfinite(m->iteration_time_s) && m->iteration_time_s > 0 ? m->iteration_time_s : 1.0;
  }
  if (o && o->t_max > t_max) t_max = o->t_max;
  g->t_max = t_max;
  g->unit = ts__gantt_unit_for(t_max);

  /* Label column wide enough for "device N" (bold) and the host name
  ** (shortened to G_LABEL_CHARS), whichever is wider. */
  double k = g->k, fs = g->fs;
  int host = 0;
  g->row_note = o ? o->row_note : NULL;
  int bold = 0;
  for (int row = 0; row < g->n_rows; row++) {
    int d = g->row_dev[row], h = ts__gantt_row_host(g, row);
    int l = utf8_len(g->row_note ? g->row_note[d] : run->devices[h].name);
    if (l > G_LABEL_CHARS) l = G_LABEL_CHARS + 1;
    if (l > host) host = l;
    if (g->reduced) {
      char rl[64];
      ts__gantt_row_label(g, row, rl, sizeof rl);
      if (utf8_len(rl) > bold) bold = utf8_len(rl);
    }
  }
  char dl[32];
  int dn = snprintf(dl, sizeof dl, "device %d", g->n_dev > 0 ? g->n_dev - 1 : 0);
  double lw = fmax((bold > dn ? bold : dn) * fs * 0.64, text_w(host, fs));
  g->left = ceil(G_MARGIN * k + lw + 0.6 * fs);
  if (o && o->left > g->left) g->left = o->left;
  /* Room right of the plot for half of the last tick's label. */
  double right = ceil(G_MARGIN * k + text_w(3, fs));

  double W = o && o->width > 0 ? o->width : G_DEFAULT_W;
  double plot = W - g->left - right;
  if (!(o && o->width > 0) && o && o->auto_width) {
    /* Wide enough that the shortest box is G_MIN_BOX pixels, within caps. */
    double want = isfinite(min_dur) ? G_MIN_BOX * t_max / min_dur : plot;
    double max_plot = G_MAX_WIDTH - g->left - right;
    plot = want < plot ? plot : want > max_plot ? max_plot : want;
  }
  g->plot_w = floor(plot < G_MIN_PLOT ? G_MIN_PLOT : plot);
  if (o && o->plot_w > 0) g->plot_w = o->plot_w;
  g->scale = g->plot_w / t_max;
  g->width = g->left + g->plot_w + right;
  g->pitch = g->row_h + 1.0 + g->lane_h + G_GAP * k + (g->has_coll ? g->coll_h + 1.0 : 0.0);
  int lines = ts__gantt_title_lines(g);
  g->top = lines == 0 ? 0.75 * fs : lines == 1 ? 4.0 * fs : 5.3 * fs;
  g->axis_y = g->top + g->n_rows * g->pitch;
  /* tick labels, the axis title, then the legend (ts_gantt_legend.c) */
  g->legend_y = g->axis_y + 5.0 * k + 2.3 * fs + 1.8 * fs;
}

/* The sizes, colours and switches of the options (NULL: defaults). */
static void gantt_style(gantt_t *g, const ts_gantt_opts_t *o) {
  g->fs = o && o->font_size > 0 ? o->font_size : G_DEFAULT_FS;
  g->k = g->fs / G_DEFAULT_FS;
  g->row_h = G_ROW_H * g->k;
  g->lane_h = G_LANE_H * g->k;
  g->coll_h = G_COLL_H * g->k;
  g->title = !(o && o->no_title);
  g->print = o && o->style == TS_STYLE_PRINT;
  g->ink = g->print ? "#000000" : "#111111";
  g->mute = g->print ? "#000000" : "#555555";
}

/* ------------------------------------------------------------------ */
/* Drawing                                                             */
/* ------------------------------------------------------------------ */

/* "device d" and the host name right-aligned left of row d; the tooltip
** adds the device's metrics when there are some. */
static void write_label(FILE *f, const gantt_t *g, int row) {
  int d = g->row_dev[row];
  const ts_device_info_t *dev = &g->r->run->devices[ts__gantt_row_host(g, row)];
  const ts_metrics_t *m = g->r->metrics;
  double y = g->top + row * g->pitch, x = g->left - 0.6 * g->fs;
  char bold[64];
  if (g->reduced)
    ts__gantt_row_label(g, row, bold, sizeof bold);
  else
    snprintf(bold, sizeof bold, "device %d", d);
  fputs("<g class=\"label\" text-anchor=\"end\">\n<title>", f);
  fputs(bold, f);
  if (g->row_count[row] > 1) fprintf(f, ", %d identical devices drawn as device %d", g->row_count[row], d);
  else if (g->r->run->fold && g->group[d] != row) /* a folded device alone on its row */
    fprintf(f, ", drawn as device %d", d);
  if (g->r->run->fold) fputs(" (folded: simulated once)", f);
  if (dev->name[0]) {
    fputs(" (", f);
    ts__gantt_xml_put(f, dev->name, -1);
    fputc(')', f);
  }
  if (m && m->dev && d < m->n_devices) {
    const ts_device_metrics_t *dm = &m->dev[d];
    char busy[48], idle[48], mem[48];
    ts__gantt_fmt_in(busy, sizeof busy, dm->busy_s, g->unit);
    ts__gantt_fmt_in(idle, sizeof idle, dm->idle_s, g->unit);
    ts__human_bytes(isfinite(dm->peak_memory_bytes) ? dm->peak_memory_bytes : 0, mem, sizeof mem);
    fprintf(f, ": busy %s, idle %s, bubble fraction %.3f, peak memory %s", busy, idle,
            isfinite(dm->bubble_fraction) ? dm->bubble_fraction + 0.0 : 0.0, mem);
  }
  fputs("</title>\n", f);
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-weight=\"bold\" fill=\"%s\">%s</text>\n", x,
          y + 0.8 * g->fs, g->ink, bold);
  /* compare: the stages the device holds, in place of its host name */
  const char *note = g->row_note ? g->row_note[d] : dev->name;
  if (note[0]) {
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" fill=\"%s\">", x, y + 2.05 * g->fs, g->mute);
    ts__gantt_xml_put(f, note, G_LABEL_CHARS);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
}

/* Row frames (idle time stays blank inside them, as in the papers) and
** lane baselines. */
static void write_rows(FILE *f, const gantt_t *g) {
  const char *frame = g->print ? "#000000" : "#8c8c8c", *base = g->print ? "#7f7f7f" : "#bbbbbb";
  double sw = g->print ? 0.5 : 0.75, bw = g->print ? 0.25 : 0.5;
  fputs("<g class=\"rows\">\n", f);
  for (int row = 0; row < g->n_rows; row++) {
    double y = g->top + row * g->pitch, yl = y + g->row_h + 1.0 + g->lane_h;
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#ffffff\" "
               "stroke=\"%s\" stroke-width=\"%.2f\"/>\n",
            g->left, y, g->plot_w, g->row_h, frame, sw);
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
               "stroke-width=\"%.2f\"/>\n",
            g->left, yl, g->left + g->plot_w, yl, base, bw);
    if (g->has_coll)
      fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                 "stroke-width=\"%.2f\"/>\n",
              g->left, yl + 1.0 + g->coll_h, g->left + g->plot_w, yl + 1.0 + g->coll_h, base, bw);
  }
  fputs("</g>\n", f);
}

/* The outline of a box w px wide: none for slivers; thinner in print. */
static void box_stroke(FILE *f, const gantt_t *g, double w) {
  if (w >= 4.0) fputs(g->print ? " stroke=\"#000000\" stroke-width=\"0.25\"" : " stroke=\"#222222\" stroke-width=\"0.5\"", f);
}

/* ", 1.000–2.000 ms, 1.000 ms[, iteration i]" */
static void write_tooltip_times(FILE *f, const gantt_t *g, const ts_event_t *e) {
  char a[48], b[48], dur[48];
  ts__gantt_fmt_in(a, sizeof a, e->start, g->unit);
  ts__gantt_fmt_in(b, sizeof b, e->end, g->unit);
  ts__gantt_fmt_in(dur, sizeof dur, e->end - e->start, g->unit);
  char *sp = strchr(a, ' ');
  if (sp) *sp = '\0';
  fprintf(f, ", %s\xE2\x80\x93%s, %s", a, b, dur);
  if (g->iterations > 1) fprintf(f, ", iteration %d", e->iteration);
}

/* One compute box (class "op <kind> c<chunk>") with its tooltip, and the
** micro-batch number when it fits: the figure's font size, smaller in
** narrow boxes, none below 0.7 of it (5.6 pt at column width).  The fit is judged for the widest number of the
** figure, so that boxes of one width all show numbers or none do. */
void ts__gantt_write_op(FILE *f, const gantt_t *g, const ts_event_t *e) {
  int stage, chunk;
  stage_chunk(g->r, e->vstage, &stage, &chunk);
  double x = g->left + e->start * g->scale;
  double w = (e->end - e->start) * g->scale;
  double y = row_y(g, e->device);
  if (w < 0.75) w = 0.75;
  uint32_t rgb = ts__gantt_box_rgb(g, e->kind, chunk);
  const char *name = ts_kind_name((ts_kind_t)e->kind);
  bool expert = (e->flags & TS_EVF_EXPERT) != 0;
  if (expert) rgb = ts__gantt_expert_rgb(rgb);

  fprintf(f, "<rect class=\"op %s%s c%d\"", name, expert ? " expert" : "", chunk);
  attr2(f, "x", px(x));
  attr2(f, "y", y);
  attr2(f, "width", w);
  attr2(f, "height", g->row_h);
  fprintf(f, " fill=\"#%06X\"", rgb);
  box_stroke(f, g, w);
  fprintf(f, "><title>%s%s stage %d chunk %d mb %d", ts__fig_kind_name(e->kind), expert ? " (experts)" : "",
          stage, chunk, e->mb + 1);
  write_tooltip_times(f, g, e);
  fputs("</title></rect>\n", f);

  char num[16];
  int nd = g->mb_digits;
  ts__fmt_int(num, e->mb + 1); /* an int: at most 11 bytes */
  /* digits advance 0.64 em in DejaVu Sans; 1 px of room is left */
  double fs = g->fs;
  if (w < nd * 0.64 * fs + 1.0) fs = (w - 1.0) / (nd * 0.64);
  if (fs > (g->row_h - 2.0) / 1.1) fs = (g->row_h - 2.0) / 1.1;
  if (fs >= 0.7 * g->fs) {
    char fsz[64];
    ts__fmt_fixed(fsz, fs, 1);
    fputs("<text", f);
    attr2(f, "x", px(x + w / 2.0));
    attr2(f, "y", y + g->row_h / 2.0 + fs * 0.36);
    fprintf(f, " font-size=\"%s\" fill=\"%s\">%s</text>\n", fsz, ink_on(rgb), num);
  }
}

/* One transfer bar (class "xfer <kind>") on sub-lane sub of its sender. */
void ts__gantt_write_transfer(FILE *f, const gantt_t *g, const ts_event_t *e, int sub) {
  int stage, chunk, ns = g->n_sublanes[e->device];
  stage_chunk(g->r, e->vstage, &stage, &chunk);
  double x = g->left + e->start * g->scale;
  double w = (e->end - e->start) * g->scale;
  double h = (g->lane_h - (ns - 1)) / ns;
  double y = row_y(g, e->device) + g->row_h + 1.0 + sub * (h + 1.0);
  if (w < 0.75) w = 0.75;
  const char *name = ts_kind_name((ts_kind_t)e->kind);
  char bytes[48];
  ts__human_bytes(isfinite(e->bytes) ? e->bytes : 0, bytes, sizeof bytes);
  fprintf(f, "<rect class=\"xfer %s\"", name);
  attr2(f, "x", px(x));
  attr2(f, "y", y);
  attr2(f, "width", w);
  attr2(f, "height", h);
  if (e->flags & TS_EVF_A2A_CALL)
    fprintf(f, " fill=\"#%06X\"><title>%s all-to-all call (%s) stage %d mb %d, device %d",
            ts__gantt_kind_rgb[e->kind], name, (e->flags & TS_EVF_A2A_BWD) ? "backward" : "forward", stage,
            e->mb + 1, e->device);
  else if (ts_kind_is_host((ts_kind_t)e->kind))
    fprintf(f, " fill=\"#%06X\"><title>%s stage %d %s host memory", ts__gantt_kind_rgb[e->kind], name, stage,
            e->kind == TS_OFFLOAD ? "to" : "from");
  else
    fprintf(f, " fill=\"#%06X\"><title>%s stage %d chunk %d mb %d to device %d", ts__gantt_kind_rgb[e->kind],
            name, stage, chunk, e->mb + 1, e->peer);
  write_tooltip_times(f, g, e);
  fprintf(f, ", %s</title></rect>\n", bytes);
}

/* An optimizer step or comm wait (class "op <kind>") on the compute row,
** without a number.  Drawn after every compute box, so that the report's
** copy of the figure meets the compute boxes first (ts_report_charts.c). */
void ts__gantt_write_step(FILE *f, const gantt_t *g, const ts_event_t *e) {
  int stage, chunk;
  stage_chunk(g->r, e->vstage, &stage, &chunk);
  double x = g->left + e->start * g->scale, w = (e->end - e->start) * g->scale;
  if (w < 0.75) w = 0.75;
  const char *name = ts_kind_name((ts_kind_t)e->kind);
  fprintf(f, "<rect class=\"op %s\"", name);
  attr2(f, "x", px(x));
  attr2(f, "y", row_y(g, e->device));
  attr2(f, "width", w);
  attr2(f, "height", g->row_h);
  fprintf(f, " fill=\"#%06X\"", ts__gantt_kind_rgb[e->kind]);
  box_stroke(f, g, w);
  fprintf(f, "><title>%s stage %d, device %d", name, stage, e->device);
  write_tooltip_times(f, g, e);
  if (e->kind == TS_OPTIMIZER) {
    char bytes[48];
    ts__human_bytes(isfinite(e->bytes) ? e->bytes : 0, bytes, sizeof bytes);
    fprintf(f, ", %s of memory traffic", bytes);
  }
  fputs("</title></rect>\n", f);
}

/* One collective (class "xfer collective") in its device's collective
** lane; overlapping ones overlay (a stream runs one at a time). */
void ts__gantt_write_collective(FILE *f, const gantt_t *g, const ts_event_t *e) {
  int stage, chunk;
  stage_chunk(g->r, e->vstage, &stage, &chunk);
  double x = g->left + e->start * g->scale, w = (e->end - e->start) * g->scale;
  double y = row_y(g, e->device) + g->row_h + 1.0 + g->lane_h + 1.0;
  if (w < 0.75) w = 0.75;
  char label[96], bytes[48];
  ts__coll_label(label, sizeof label, g->r, e);
  ts__human_bytes(isfinite(e->bytes) ? e->bytes : 0, bytes, sizeof bytes);
  fputs("<rect class=\"xfer collective\"", f);
  attr2(f, "x", px(x));
  attr2(f, "y", y);
  attr2(f, "width", w);
  attr2(f, "height", g->coll_h);
  bool tp = TS_EV_COLL_PURPOSE(e->coll) == TS_CP_TP;
  fprintf(f, " fill=\"#%06X\"><title>", tp ? TS_GANTT_TP_RGB : ts__gantt_kind_rgb[TS_COLLECTIVE]);
  ts__gantt_xml_put(f, label, -1);
  fprintf(f, " stage %d, device %d of a %s group of %d", stage, e->device,
          ts__group_kind_name(TS_EV_COLL_GROUP(e->coll)), e->peer);
  write_tooltip_times(f, g, e);
  fprintf(f, ", %s sent</title></rect>\n", bytes);
}

/* Writes gantt.svg for r to f.  Needs r->run (its events sorted by start);
** r->job, r->layout and r->metrics may be NULL.  Returns 0, EX_IOERR when
** a write fails, EX_SOFTWARE for NULL arguments.  Does not close f. */
int ts_write_gantt_svg(const ts_result_t *r, FILE *f) { return ts_write_gantt_svg_opts(r, NULL, f); }

int ts_gantt_measure(const ts_result_t *r, ts_gantt_opts_t *o) { return ts_gantt_measure_opts(r, o, o); }

int ts_gantt_measure_opts(const ts_result_t *r, const ts_gantt_opts_t *o, ts_gantt_opts_t *m) {
  if (!r || !r->run || !m) return EX_SOFTWARE;
  gantt_t g = {.r = r, .n_dev = r->run->n_devices > 0 ? r->run->n_devices : 0, .iterations = 1};
  gantt_layout(&g, o);
  m->t_max = g.t_max;
  m->left = g.left;
  m->plot_w = g.plot_w;
  free(g.sublane);
  free(g.n_sublanes);
  ts__gantt_rows_free(&g);
  return 0;
}

int ts_write_gantt_svg_opts(const ts_result_t *r, const ts_gantt_opts_t *o, FILE *f) {
  if (!r || !r->run || !f) return EX_SOFTWARE;
  gantt_t g = {.r = r, .n_dev = r->run->n_devices > 0 ? r->run->n_devices : 0, .iterations = 1};
  int rc = 0;
  gantt_layout(&g, o);
  legend_item_t items[LEGEND_MAX];
  memset(items, 0, sizeof items);
  int rows, n_items = ts__gantt_legend_build(&g, items, &rows);
  ts__gantt_note_layout(&g);
  g.height = ceil(g.legend_y + (rows - 1 + g.note_lines) * LEGEND_ROW * g.fs + 0.6 * g.fs);

  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
             "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\" font-size=\"%.2f\">\n",
          g.width, g.height, g.width, g.height, G_FONT, g.fs);
  fputs("<desc>trainsim " TS_VERSION " pipeline schedule: one row per device; boxes are "
        "compute operations numbered by micro-batch (from 1); thin bars under a row are "
        "the transfers that device sends", f);
  if (g.has_coll) fputs("; the thinner lane below them, its collectives", f);
  fputs("; idle time is blank", f);
  fputs(".</desc>\n", f);
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", g.width,
          g.height);
  ts__gantt_title_write(f, &g);
  write_rows(f, &g);
  if (!g.print) ts__gantt_axis_write(f, &g, false);
  for (int row = 0; row < g.n_rows; row++) write_label(f, &g, row);
  ts__gantt_draw_events(f, &g);
  ts__gantt_axis_write(f, &g, true);
  ts__gantt_legend_write(f, &g, items, n_items);
  if (g.note_lines) ts__gantt_note_write(f, &g, g.legend_y + rows * LEGEND_ROW * g.fs);
  fputs("</svg>\n", f);
  if (fflush(f) != 0 || ferror(f)) rc = EX_IOERR;
  free(g.sublane);
  free(g.n_sublanes);
  ts__gantt_rows_free(&g);
  return rc;
}
