/*
** ts_gantt_opts.c: gantt.svg's options as the command line gives them
** (--figure-width, --font-size, --no-title, --style; README "gantt.svg"),
** and the names figures give the kinds: B and W for the split backward's
** halves, as the zero-bubble papers write them.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_gantt_int.h"

/* ------------------------------------------------------------------ */
/* Options and names                                                   */
/* ------------------------------------------------------------------ */

const char *ts__fig_kind_name(int kind) {
  if (kind == TS_BACKWARD_INPUT) return "B";
  if (kind == TS_WEIGHT_GRAD) return "W";
  return kind >= 0 && kind < TS_KIND_COUNT ? ts_kind_name((ts_kind_t)kind) : "unknown";
}

const char *ts__fig_kind_label(int kind) {
  if (kind == TS_BACKWARD_INPUT) return "B (input gradient)";
  if (kind == TS_WEIGHT_GRAD) return "W (weight gradient)";
  return ts__fig_kind_name(kind);
}

/* A number in (lo, hi] from s, all of it; false otherwise. */
static bool num_in(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = s ? strtod(s, &end) : NAN;
  if (!s || end == s || *end || !(v > lo) || v > hi) return false;
  *out = v;
  return true;
}

int ts_gantt_opt_set(ts_gantt_opts_t *o, const char *opt, const char *value, ts_err_t *err) {
  if (!strcmp(opt, "figure-width")) {
    if (!num_in(value, G_MIN_W - 1e-9, 20000, &o->width))
      return ts_err_set(err, EX_USAGE, "--figure-width: expected a width in px from %.0f to 20000, got '%s'",
                        G_MIN_W, value ? value : "");
  } else if (!strcmp(opt, "font-size")) {
    if (!num_in(value, 0, 200, &o->font_size))
      return ts_err_set(err, EX_USAGE, "--font-size: expected a size in px above 0, at most 200, got '%s'",
                        value ? value : "");
  } else if (!strcmp(opt, "no-title")) {
    o->no_title = true;
  } else if (!strcmp(opt, "style")) {
    if (value && !strcmp(value, "print"))
      o->style = TS_STYLE_PRINT;
    else if (value && !strcmp(value, "screen"))
      o->style = TS_STYLE_SCREEN;
    else
      return ts_err_set(err, EX_USAGE, "--style: expected screen or print, got '%s'", value ? value : "");
  } else {
    return ts_err_set(err, EX_USAGE, "unknown figure option '%s'", opt);
  }
  return 0;
}
