/*
** ts_gantt_int.h: what the files of gantt.svg share (ts_gantt.c the
** layout and the drawing, ts_gantt_legend.c the legend): geometry, the
** palette, the layout record and the helpers both use.  Internal to
** src/out.
*/
#ifndef TS_GANTT_INT_H
#define TS_GANTT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ts_out.h"

/* Geometry in pixels (SVG user units).  The sizes marked "at 16 px" scale
** with the font size (gantt_t.k = font_size / 16), so that a figure drawn
** with larger text keeps its proportions. */
#define G_DEFAULT_W 480.0   /* figure width: 480 px printed 240 pt wide is a
                            ** scale of 1/2, so 16 px text reads 8 pt */
#define G_DEFAULT_FS 16.0   /* text */
#define G_MIN_W 160.0       /* narrowest whole figure */
#define G_MAX_WIDTH 2400.0  /* cap on the automatic width */
#define G_MIN_PLOT 40.0     /* narrowest plot area */
#define G_MIN_BOX 5.0       /* automatic width: the shortest compute box this wide */
#define G_MARGIN 8.0        /* left and right margins, at 16 px */
#define G_ROW_H 26.0        /* compute row, at 16 px */
#define G_LANE_H 9.0        /* transfer lane under it, at 16 px */
#define G_GAP 9.0           /* between devices, at 16 px */
#define G_COLL_H 6.0        /* collective lane under the transfer lane (runs
                            ** with collectives only: their pitch grows by
                            ** G_COLL_H + 1), at 16 px */
#define G_MAX_SUBLANES 4    /* overlapping transfers beyond this overlay */
#define G_LABEL_CHARS 12    /* host names longer than this are shortened */
#define G_FONT "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"

/* Okabe & Ito (2008) palette, per ts_kind_t (ts_gantt.c). */
extern const uint32_t ts__gantt_kind_rgb[TS_KIND_COUNT];
/* Tensor-parallel collectives (purpose tp): their own colour in the
** collective lane, so that they stand apart from data-parallel ones. */
#define TS_GANTT_TP_RGB 0xDDAA33u
#define IDLE_RGB 0xFFFFFFu /* idle: blank, as the papers draw it */

/* A time unit for the axis and the tooltips. */
typedef struct unit {
  const char *name;
  double per_s; /* units in one second */
} unit_t;

/* Everything the drawing needs, computed once by gantt_layout. */
typedef struct gantt {
  const ts_result_t *r;
  int n_dev;
  int n_chunks;      /* chunks in the layout (1 without one) */
  int iterations;    /* > 1: tooltips name the iteration */
  int mb_digits;     /* digits of the largest micro-batch number shown */
  double t_max;      /* right end of the time axis, seconds */
  double left;       /* x of time 0 */
  double plot_w;     /* pixels for [0, t_max] */
  double scale;      /* pixels per second */
  double width, height;
  double fs, k;      /* font size; k = fs / 16 scales the geometry */
  double row_h, lane_h, coll_h, top; /* top: y of the first row */
  double pitch;      /* vertical distance between devices' rows */
  bool title;        /* the title and subtitle are drawn */
  bool print;        /* TS_STYLE_PRINT */
  const char *ink, *mute; /* text colours: main and secondary */
  bool has_coll;     /* collectives drawn: each device gets their lane */
  double axis_y;     /* y of the axis line */
  double legend_y;   /* baseline of the first legend row */
  unit_t unit;
  const char *const *row_note; /* [n_dev] or NULL: ts_gantt_opts_t */
  int *sublane;      /* [n_events] transfer sub-lane, -1 not a drawn transfer */
  int *n_sublanes;   /* [n_dev] sub-lanes drawn (at least 1) */
  bool has_kind[TS_KIND_COUNT];
  bool has_expert;   /* MoE expert pieces are drawn lighter (TS_EVF_EXPERT) */
  /* Rows (ts_gantt_rows.c): without aggregation or a subset, row d is
  ** device d and the figure is drawn as it always was. */
  int n_rows;
  int *row_of;       /* [n_dev] the row device d is drawn on, -1 when its
                     ** events are not drawn (left out, or another device
                     ** of its row stands for it) */
  int *row_dev;      /* [n_rows] the device drawn on each row */
  int *group;        /* [n_dev] the row whose events device d has, -1 when
                     ** left out */
  int *row_count;    /* [n_rows] devices each row stands for */
  bool reduced;      /* rows aggregated or left out: labels give ranges and
                     ** a note under the legend says so */
  bool dense;        /* tiny adjacent boxes are merged (the note says so) */
  int n_left_out;    /* devices with no row */
  int note_lines;    /* lines of that note */
  bool capped;       /* drawing stopped at the size cap */
  double cap_t;      /* the time from which boxes were left out */
  long n_merged, n_merged_into; /* boxes merged, and the boxes drawn for them */
  char note[1024];   /* the note's text, sentences joined by spaces */
  long n_checked;    /* elements drawn since the size was last checked */
} gantt_t;

/* Whether e is drawn at all, whatever the rows (ts_gantt.c). */
bool ts__gantt_event_ok(const gantt_t *g, const ts_event_t *e);
/* Chooses the rows (ts_gantt_rows.c): fills n_rows, row_of, row_dev,
** group, row_count, reduced, dense and n_left_out from the options (NULL:
** defaults). */
void ts__gantt_rows_plan(gantt_t *g, const ts_gantt_opts_t *o);
void ts__gantt_rows_free(gantt_t *g);
/* The device whose host name labels row r: row_dev, or in a folded run
** the row's first device (row_dev is then its representative). */
int ts__gantt_row_host(const gantt_t *g, int r);
/* The bold label of row r ("device 3", "devices 0–7") into buf. */
void ts__gantt_row_label(const gantt_t *g, int r, char *buf, size_t n);
/* Draws every event of the drawn rows: compute boxes, steps, transfers,
** collectives (merging tiny ones when g->dense). */
void ts__gantt_draw_events(FILE *f, gantt_t *g);
/* The note under the legend: its lines at the figure's width (sets
** g->note_lines), and its drawing at baseline y. */
void ts__gantt_note_layout(gantt_t *g);
void ts__gantt_note_write(FILE *f, const gantt_t *g, double y);
/* The drawing of one event (ts_gantt.c). */
void ts__gantt_write_op(FILE *f, const gantt_t *g, const ts_event_t *e);
void ts__gantt_write_transfer(FILE *f, const gantt_t *g, const ts_event_t *e, int sub);
void ts__gantt_write_step(FILE *f, const gantt_t *g, const ts_event_t *e);
void ts__gantt_write_collective(FILE *f, const gantt_t *g, const ts_event_t *e);
/* y of row r's compute row. */
static inline double row_y(const gantt_t *g, int dev) { return g->top + g->row_of[dev] * g->pitch; }

typedef struct legend_item {
  char label[64];
  uint32_t rgb, rgb2;
  int swatch; /* 0 none, 1 box, 2 thin bar, 3 box in two halves (rgb, rgb2) */
  double x, y;
} legend_item_t;

#define LEGEND_CHUNKS 8 /* chunk swatches shown at most */
#define LEGEND_MAX (TS_KIND_COUNT + LEGEND_CHUNKS + 4) /* + TP collective */
#define LEGEND_ROW 1.55 /* legend row pitch, in font sizes */

/* Characters (not bytes) of a UTF-8 string, for width estimates. */
static inline int utf8_len(const char *s) {
  int n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* Rough advance width of n characters of a sans-serif font of size fs. */
static inline double text_w(int n, double fs) { return n * fs * 0.6; }

/* Writes s escaped for XML, at most max_bytes of it (see ts_gantt.c). */
void ts__gantt_xml_put(FILE *f, const char *s, int max_bytes);
/* Fill of a compute box of kind in chunk (later chunks lighter). */
uint32_t ts__gantt_box_rgb(const gantt_t *g, int kind, int chunk);
/* MoE expert compute: the op's colour halfway to white. */
uint32_t ts__gantt_expert_rgb(uint32_t rgb);
/* Fills it[] (at most LEGEND_MAX) with the legend's items, positioned in
** rows that wrap at the figure's width; returns the count, sets *rows. */
int ts__gantt_legend_build(const gantt_t *g, legend_item_t *it, int *rows);
/* Draws the n legend items. */
void ts__gantt_legend_write(FILE *f, const gantt_t *g, const legend_item_t *it, int n);
/* The title and subtitle (g->title), and the time axis (ts_gantt_legend.c). */
void ts__gantt_title_write(FILE *f, const gantt_t *g);
/* Lines the title takes: 0 without one, 1 when it fits the width, else 2
** (the schedule, then the iteration time and bubble fraction). */
int ts__gantt_title_lines(const gantt_t *g);
void ts__gantt_axis_write(FILE *f, const gantt_t *g, bool axis);
/* The unit in which t reads between 1 and 1000, and t formatted in unit u
** with about four significant digits (ts_gantt.c). */
unit_t ts__gantt_unit_for(double t);
void ts__gantt_fmt_in(char *buf, size_t n, double t, unit_t u);
/* Writes fs as a font-size attribute value, with one decimal. */
void ts__gantt_put_fs(FILE *f, double fs);

#endif
