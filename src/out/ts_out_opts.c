/*
** ts_out_opts.c: the output options of `trainsim run` (README "Outputs"):
** device lists (--devices, --gantt-devices), kind lists (--kinds), the
** size limits of trace.json and paje.trace (--trace-max-mb,
** --paje-max-mb) and the figure's row limit (--gantt-max-rows), and the
** filter test the writers share.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_out.h"

/* A whole number 0..max at s, its end in *end; -1 when none. */
static long whole(const char *s, char **end, long max) {
  if (*s < '0' || *s > '9') return -1;
  long v = strtol(s, end, 10);
  return v > max ? -1 : v;
}

int ts_devlist_parse(const char *opt, const char *s, ts_devlist_t *l, ts_err_t *err) {
  ts_devlist_t out = {0};
  const char *p = s ? s : "";
  do {
    char *end;
    long lo = whole(p, &end, 1L << 30), hi = lo;
    if (lo >= 0 && *end == '-') hi = whole(end + 1, &end, 1L << 30);
    if (lo < 0 || hi < lo || (*end && *end != ','))
      return ts_err_set(err, EX_USAGE, "--%s: expected device indices and ranges such as 0-7,64, got '%s'",
                        opt, s ? s : "");
    if (out.n == TS_DEVLIST_MAX)
      return ts_err_set(err, EX_USAGE, "--%s: at most %d items, got '%s'", opt, TS_DEVLIST_MAX, s);
    out.lo[out.n] = (int)lo;
    out.hi[out.n++] = (int)hi;
    p = end;
  } while (*p++ == ',');
  *l = out;
  return 0;
}

bool ts_devlist_has(const ts_devlist_t *l, int d) {
  if (!l || l->n == 0) return true;
  for (int i = 0; i < l->n; i++)
    if (d >= l->lo[i] && d <= l->hi[i]) return true;
  return false;
}

/* --kinds: kind names, "compute" (every compute kind) and "transfers"
** (point-to-point, collective steps and host transfers). */
static int kinds_parse(const char *s, unsigned *mask, ts_err_t *err) {
  unsigned m = 0;
  const char *p = s ? s : "";
  do {
    size_t n = strcspn(p, ",");
    unsigned bit = 0;
    if (n == 7 && !strncmp(p, "compute", n)) {
      for (int k = 0; k < TS_COMPUTE_KINDS; k++) bit |= 1u << k;
    } else if (n == 9 && !strncmp(p, "transfers", n)) {
      for (int k = 0; k < TS_KIND_COUNT; k++)
        if (ts_kind_is_transfer((ts_kind_t)k) || ts_kind_is_host((ts_kind_t)k)) bit |= 1u << k;
    } else {
      for (int k = 0; k < TS_KIND_COUNT; k++)
        if (strlen(ts_kind_name((ts_kind_t)k)) == n && !strncmp(p, ts_kind_name((ts_kind_t)k), n)) bit = 1u << k;
    }
    if (!bit)
      return ts_err_set(err, EX_USAGE, "--kinds: unknown kind '%.*s' (kinds are timeline.csv's, or compute, transfers)",
                        (int)n, p);
    m |= bit;
    p += n;
  } while (*p++ == ',');
  *mask = m;
  return 0;
}

/* A size in MB: a positive number, or 0 for no limit (stored as -1). */
static int mb_parse(const char *opt, const char *s, double *out, ts_err_t *err) {
  char *end;
  double v = s ? strtod(s, &end) : NAN;
  if (!s || end == s || *end || !(v >= 0) || v > 1e9)
    return ts_err_set(err, EX_USAGE, "--%s: expected a size in MB (0: no limit), got '%s'", opt, s ? s : "");
  *out = v == 0 ? -1 : v;
  return 0;
}

int ts_out_opt_set(ts_out_opts_t *o, const char *opt, const char *value, ts_err_t *err) {
  if (!strcmp(opt, "trace-max-mb")) return mb_parse(opt, value, &o->trace_max_mb, err);
  if (!strcmp(opt, "paje-max-mb")) return mb_parse(opt, value, &o->paje_max_mb, err);
  if (!strcmp(opt, "devices")) return ts_devlist_parse(opt, value, &o->devices, err);
  if (!strcmp(opt, "gantt-devices")) return ts_devlist_parse(opt, value, &o->fig.devices, err);
  if (!strcmp(opt, "kinds")) return kinds_parse(value, &o->kinds, err);
  if (!strcmp(opt, "gantt-max-rows")) {
    char *end;
    long v = value ? whole(value, &end, 100000) : -1;
    if (v < 0 || *end)
      return ts_err_set(err, EX_USAGE, "--gantt-max-rows: expected a number of rows (0: every device, every box), got '%s'",
                        value ? value : "");
    o->fig.max_rows = v == 0 ? -1 : (int)v;
    return 0;
  }
  if (!strcmp(opt, "figure-width") || !strcmp(opt, "font-size") || !strcmp(opt, "no-title") ||
      !strcmp(opt, "style"))
    return ts_gantt_opt_set(&o->fig, opt, value, err);
  return 1;
}

bool ts__out_keeps(const ts_out_opts_t *o, const ts_event_t *e) {
  if (!o) return true;
  if (o->kinds && !(e->kind >= 0 && e->kind < TS_KIND_COUNT && (o->kinds >> e->kind) & 1)) return false;
  return ts_devlist_has(&o->devices, e->device);
}
