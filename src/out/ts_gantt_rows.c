/*
** ts_gantt_rows.c: gantt.svg at any size (README "gantt.svg").  Which rows
** the figure draws, and how it stays readable and small when a run has
** more devices or more events than a page can show:
**
**   1. Up to TS_GANTT_MAX_ROWS devices (--gantt-max-rows) whose figure is
**      estimated under TS_GANTT_BUDGET_BYTES are drawn as they always
**      were, one row per device, byte for byte.
**   2. Beyond that, devices whose drawn events are identical up to device
**      ids (the same kinds, stages, micro-batches, bytes and times: the
**      tensor-parallel ranks and data-parallel replicas of a stage) share
**      one row, labelled with their range ("devices 0–7").
**   3. Still more rows than the limit: rows chosen evenly (the first and
**      the last among them) are drawn and the others left out;
**      --gantt-devices draws a chosen set instead.
**   4. Still over the budget: adjacent boxes narrower than 2 px are merged
**      into one, coloured by the kind that takes most of its time; and a
**      hard cap stops drawing at TS_GANTT_CAP_BYTES.
**
** Whatever of 2-4 happened, a note under the legend says so.  Everything
** is deterministic: rows are chosen from the events alone.
**
** A folded run (ts_run_t.fold, README "Symmetry folding") has events only
** on the representatives: each device is drawn from its representative's
** events, so step 2 always applies and a class's devices share a row
** drawn from the representative (row_dev), and the note says so.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_gantt_int.h"
#include "ts_internal.h"

#define G_EL_BYTES 240.0  /* an element's bytes, about (box or bar, with its title) */
#define G_ROW_BYTES 900.0 /* a row's frame, lines and label */
#define G_TINY 2.0        /* boxes narrower than this (px) may be merged */
#define G_JOIN 0.5        /* ... with the next when the gap is under this (px) */
#define TS_GANTT_CAP_BYTES 4600000L

/* Whether the layout draws e when its device has a row (ts_gantt.c's rule,
** with the zero-byte transfers it skips). */
static bool counted(const gantt_t *g, const ts_event_t *e) {
  if (!ts__gantt_event_ok(g, e)) return false;
  bool xfer = !ts_kind_is_compute((ts_kind_t)e->kind) && e->kind != TS_COLLECTIVE && e->kind != TS_OPTIMIZER &&
              e->kind != TS_COMM_WAIT;
  return !(xfer && !(e->bytes > 0) && !(e->flags & TS_EVF_A2A_CALL));
}

/* Whether two events are the same up to device ids. */
static bool same_event(const gantt_t *g, const ts_event_t *a, const ts_event_t *b) {
  const ts_layout_t *L = g->r->layout;
  int sa = a->vstage, sb = b->vstage;
  if (L && sa >= 0 && sa < L->n_vstages && sb >= 0 && sb < L->n_vstages) {
    if (L->stage[sa] != L->stage[sb] || L->chunk[sa] != L->chunk[sb]) return false;
  } else if (sa != sb) {
    return false;
  }
  return a->kind == b->kind && a->mb == b->mb && a->iteration == b->iteration && a->flags == b->flags &&
         a->coll == b->coll && a->start == b->start && a->end == b->end &&
         (a->bytes == b->bytes || (isnan(a->bytes) && isnan(b->bytes))) &&
         (a->kind != TS_COLLECTIVE || a->peer == b->peer);
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  return h;
}

static uint64_t event_hash(const gantt_t *g, const ts_event_t *e) {
  const ts_layout_t *L = g->r->layout;
  int st = e->vstage, ch = 0;
  if (L && st >= 0 && st < L->n_vstages) {
    ch = L->chunk[st];
    st = L->stage[st];
  }
  uint64_t s, t;
  memcpy(&s, &e->start, sizeof s);
  memcpy(&t, &e->end, sizeof t);
  uint64_t h = mix((uint64_t)e->kind, (uint64_t)(uint32_t)e->mb);
  h = mix(h, (uint64_t)(uint32_t)st * 65536u + (uint64_t)(uint32_t)ch);
  h = mix(h, (uint64_t)(uint32_t)e->coll);
  return mix(mix(h, s), t);
}

typedef struct dev_key {
  uint64_t h;
  int d;
} dev_key_t;

static int key_cmp(const void *a, const void *b) {
  const dev_key_t *x = a, *y = b;
  if (x->h != y->h) return x->h < y->h ? -1 : 1;
  return (x->d > y->d) - (x->d < y->d);
}

/* The device whose events stand for d: its representative in a folded
** run, d itself otherwise. */
static int src_dev(const gantt_t *g, int d) {
  const int *fold = g->r->run->fold;
  return fold && fold[d] >= 0 && fold[d] < g->n_dev ? fold[d] : d;
}

/* Groups the selected devices by identical events (a folded device's
** being its representative's): group[d] is the index of its group's
** first device for now; returns the group count. */
static int aggregate(gantt_t *g, const bool *sel, const int *off, const int *idx) {
  int nd = g->n_dev, nk = 0;
  dev_key_t *key = ts__xmalloc((size_t)(nd ? nd : 1) * sizeof *key);
  /* Each source device's hash once: in a folded run a class's members all
  ** draw their representative's events. */
  uint64_t *hs = ts__xmalloc((size_t)(nd ? nd : 1) * sizeof *hs);
  bool *have = ts__xcalloc((size_t)(nd ? nd : 1), sizeof *have);
  for (int d = 0; d < nd; d++) {
    g->group[d] = -1;
    if (!sel[d]) continue;
    int s = src_dev(g, d);
    if (!have[s]) {
      uint64_t h = (uint64_t)(off[s + 1] - off[s]);
      for (int i = off[s]; i < off[s + 1]; i++) h = mix(h, event_hash(g, &g->r->run->events[idx[i]]));
      hs[s] = h;
      have[s] = true;
    }
    key[nk++] = (dev_key_t){hs[s], d};
  }
  free(hs);
  free(have);
  qsort(key, (size_t)nk, sizeof *key, key_cmp);
  int n_groups = 0;
  for (int a = 0; a < nk;) {
    int b = a;
    while (b < nk && key[b].h == key[a].h) b++;
    /* Within equal hashes, each device joins the first earlier device
    ** whose events really are the same (collisions make new groups). */
    for (int i = a; i < b; i++) {
      int d = key[i].d, rep = d, sd = src_dev(g, d);
      for (int j = a; j < i && rep == d; j++) {
        int c = key[j].d, sc = src_dev(g, c);
        if (g->group[c] != c || off[sc + 1] - off[sc] != off[sd + 1] - off[sd]) continue;
        bool same = true; /* the same source's events are equal without a look */
        for (int k = 0; sc != sd && k < off[sd + 1] - off[sd] && same; k++)
          same = same_event(g, &g->r->run->events[idx[off[sc] + k]], &g->r->run->events[idx[off[sd] + k]]);
        if (same) rep = c;
      }
      g->group[d] = rep;
      if (rep == d) n_groups++;
    }
    a = b;
  }
  free(key);
  return n_groups;
}

void ts__gantt_rows_plan(gantt_t *g, const ts_gantt_opts_t *o) {
  int nd = g->n_dev, n1 = nd ? nd : 1;
  const ts_run_t *run = g->r->run;
  g->row_of = ts__xmalloc((size_t)n1 * sizeof *g->row_of);
  g->row_dev = ts__xmalloc((size_t)n1 * sizeof *g->row_dev);
  g->group = ts__xmalloc((size_t)n1 * sizeof *g->group);
  g->row_count = ts__xmalloc((size_t)n1 * sizeof *g->row_count);
  int max_rows = o && o->max_rows ? o->max_rows : TS_GANTT_MAX_ROWS;
  bool chosen = o && o->devices.n > 0, folded = run->fold != NULL;
  /* Per device: its drawn events (CSR), and the estimate of the size. */
  int *off = ts__xcalloc((size_t)nd + 1, sizeof *off), *idx = NULL;
  bool *sel = ts__xcalloc((size_t)n1, sizeof *sel);
  int n_sel = 0;
  for (int i = 0; i < run->n_events; i++)
    if (counted(g, &run->events[i])) off[run->events[i].device + 1]++;
  for (int d = 0; d < nd; d++) off[d + 1] += off[d];
  double est = 3000;
  for (int d = 0; d < nd; d++) {
    sel[d] = !chosen || ts_devlist_has(&o->devices, d);
    if (sel[d]) {
      n_sel++;
      est += G_ROW_BYTES + G_EL_BYTES * (off[d + 1] - off[d]);
    }
  }
  if (!chosen && !folded && (max_rows < 0 || (nd <= max_rows && est <= TS_GANTT_BUDGET_BYTES))) {
    g->n_rows = nd; /* the figure as it always was */
    for (int d = 0; d < nd; d++) {
      g->row_of[d] = g->row_dev[d] = g->group[d] = d;
      g->row_count[d] = 1;
    }
    free(off);
    free(sel);
    return;
  }
  g->reduced = true;
  bool agg = folded || (max_rows >= 0 && (n_sel > max_rows || est > TS_GANTT_BUDGET_BYTES));
  int n_groups = n_sel;
  if (agg) {
    int *fill = ts__xcalloc((size_t)n1, sizeof *fill);
    idx = ts__xmalloc((size_t)(off[nd] ? off[nd] : 1) * sizeof *idx);
    for (int i = 0; i < run->n_events; i++)
      if (counted(g, &run->events[i])) {
        int d = run->events[i].device;
        idx[off[d] + fill[d]++] = i;
      }
    free(fill);
    n_groups = aggregate(g, sel, off, idx);
  } else {
    for (int d = 0; d < nd; d++) g->group[d] = sel[d] ? d : -1;
  }
  /* Groups in the order of their first device; the rows to draw among
  ** them: all, or max_rows chosen evenly (first and last included). */
  int *rep = ts__xmalloc((size_t)(n_groups ? n_groups : 1) * sizeof *rep), nr = 0;
  int *gi = ts__xmalloc((size_t)n1 * sizeof *gi);
  for (int d = 0; d < nd; d++) {
    gi[d] = -1;
    if (g->group[d] == d) {
      gi[d] = nr;
      rep[nr++] = d;
    }
  }
  int keep = max_rows >= 0 && nr > max_rows ? max_rows : nr;
  int *row_of_group = ts__xmalloc((size_t)(nr ? nr : 1) * sizeof *row_of_group);
  for (int k = 0; k < nr; k++) row_of_group[k] = keep == nr ? k : -1;
  if (keep < nr)
    for (int j = 0; j < keep; j++) {
      int k = keep == 1 ? 0 : (int)((long long)j * (nr - 1) / (keep - 1));
      row_of_group[k] = j;
    }
  g->n_rows = keep;
  g->n_left_out = 0;
  for (int r = 0; r < keep; r++) g->row_count[r] = 0;
  for (int d = 0; d < nd; d++) {
    int k = g->group[d] >= 0 ? gi[g->group[d]] : -1, row = k >= 0 ? row_of_group[k] : -1;
    g->group[d] = row;
    g->row_of[d] = row >= 0 && rep[k] == d ? row : -1;
    if (row >= 0) {
      g->row_count[row]++;
      if (rep[k] == d) g->row_dev[row] = src_dev(g, d);
    } else {
      g->n_left_out++;
    }
  }
  if (folded) { /* the events drawn are the representatives' */
    for (int d = 0; d < nd; d++) g->row_of[d] = -1;
    for (int r = 0; r < keep; r++) g->row_of[g->row_dev[r]] = r;
  }
  double drawn = 3000;
  for (int d = 0; d < nd; d++)
    if (g->row_of[d] >= 0) drawn += G_ROW_BYTES + G_EL_BYTES * (off[d + 1] - off[d]);
  g->dense = max_rows >= 0 && drawn > TS_GANTT_BUDGET_BYTES;
  free(row_of_group);
  free(gi);
  free(rep);
  free(idx);
  free(off);
  free(sel);
}

void ts__gantt_rows_free(gantt_t *g) {
  free(g->row_of);
  free(g->row_dev);
  free(g->group);
  free(g->row_count);
  g->row_of = g->row_dev = g->group = g->row_count = NULL;
}

int ts__gantt_row_host(const gantt_t *g, int r) {
  if (!g->r->run->fold) return g->row_dev[r];
  for (int d = 0; d < g->n_dev; d++)
    if (g->group[d] == r) return d;
  return g->row_dev[r];
}

void ts__gantt_row_label(const gantt_t *g, int r, char *buf, size_t n) {
  int first = -1, last = -1, step = 0, count = 0;
  bool arith = true;
  for (int d = 0; d < g->n_dev; d++) {
    if (g->group[d] != r) continue;
    if (count == 1) step = d - first;
    else if (count > 1 && d - last != step) arith = false;
    if (first < 0) first = d;
    last = d;
    count++;
  }
  if (count <= 1)
    snprintf(buf, n, "device %d", count == 1 ? first : g->row_dev[r]);
  else if (arith && step == 1)
    snprintf(buf, n, "devices %d\xE2\x80\x93%d", first, last);
  else if (arith)
    snprintf(buf, n, "devices %d\xE2\x80\x93%d by %d", first, last, step);
  else
    snprintf(buf, n, "device %d +%d", first, count - 1);
}

/* ------------------------------------------------------------------ */
/* Drawing, merging tiny boxes                                          */
/* ------------------------------------------------------------------ */

/* Whether there is room left under the cap (dense figures only); checks
** the file's size every 256 elements. */
static bool room(FILE *f, gantt_t *g, double t) {
  if (!g->dense) return true;
  if (g->capped) return false;
  if (++g->n_checked % 256 == 0) {
    long at = ftell(f);
    if (at > TS_GANTT_CAP_BYTES) {
      g->capped = true;
      g->cap_t = t;
      return false;
    }
  }
  return true;
}

/* A run of adjacent tiny boxes on one lane. */
typedef struct run_box {
  const ts_event_t *first;
  int n;
  double x0, x1, t0, t1;
  double per_kind[TS_KIND_COUNT];
} run_box_t;

typedef enum { LANE_OP, LANE_XFER, LANE_COLL } lane_t;

static void draw_one(FILE *f, gantt_t *g, const ts_event_t *e, lane_t lane, int sub) {
  if (lane == LANE_OP && !ts_kind_is_compute((ts_kind_t)e->kind)) ts__gantt_write_step(f, g, e);
  else if (lane == LANE_OP) ts__gantt_write_op(f, g, e);
  else if (lane == LANE_XFER) ts__gantt_write_transfer(f, g, e, sub);
  else ts__gantt_write_collective(f, g, e);
}

/* Draws run b: its one box as itself, or the merged box. */
static void flush(FILE *f, gantt_t *g, run_box_t *b, lane_t lane, int sub) {
  if (b->n == 0) return;
  if (b->n == 1) {
    draw_one(f, g, b->first, lane, sub);
    b->n = 0;
    return;
  }
  int top = 0;
  for (int k = 1; k < TS_KIND_COUNT; k++)
    if (b->per_kind[k] > b->per_kind[top]) top = k;
  int dev = b->first->device, ns = g->n_sublanes[dev];
  double y = row_y(g, dev), h = g->row_h;
  if (lane == LANE_XFER) {
    h = (g->lane_h - (ns - 1)) / ns;
    y += g->row_h + 1.0 + sub * (h + 1.0);
  } else if (lane == LANE_COLL) {
    y += g->row_h + 1.0 + g->lane_h + 1.0;
    h = g->coll_h;
  }
  char x[64], w[64], ys[64], hs[64], a[48], z[48];
  ts__fmt_fixed(x, b->x0, 2);
  ts__fmt_fixed(w, fmax(b->x1 - b->x0, 0.75), 2);
  ts__fmt_fixed(ys, y, 2);
  ts__fmt_fixed(hs, h, 2);
  ts__gantt_fmt_in(a, sizeof a, b->t0, g->unit);
  ts__gantt_fmt_in(z, sizeof z, b->t1, g->unit);
  uint32_t rgb = lane == LANE_OP ? ts__gantt_box_rgb(g, top, 0) : ts__gantt_kind_rgb[top];
  fprintf(f, "<rect class=\"%s merged\" x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"#%06X\"><title>%d %s merged, mostly %s, %s\xE2\x80\x93%s</title></rect>\n",
          lane == LANE_OP ? "op" : "xfer", x, ys, w, hs, rgb, b->n,
          lane == LANE_OP ? "ops" : lane == LANE_XFER ? "transfers" : "collectives", ts__fig_kind_name(top), a, z);
  g->n_merged += b->n;
  g->n_merged_into++;
  b->n = 0;
}

/* Adds e to its lane's run: tiny boxes touching the run join it. */
static void feed(FILE *f, gantt_t *g, run_box_t *b, const ts_event_t *e, lane_t lane, int sub) {
  double x0 = g->left + e->start * g->scale, x1 = g->left + e->end * g->scale;
  bool tiny = x1 - x0 < G_TINY;
  if (b->n && (!tiny || x0 - b->x1 >= G_JOIN)) flush(f, g, b, lane, sub);
  if (!tiny) {
    draw_one(f, g, e, lane, sub);
    return;
  }
  if (b->n == 0) {
    memset(b, 0, sizeof *b);
    b->first = e;
    b->x0 = x0;
    b->t0 = e->start;
  }
  b->n++;
  b->x1 = fmax(b->x1, x1);
  b->t1 = fmax(b->t1, e->end);
  b->per_kind[e->kind] += e->end - e->start;
}

static bool drawn(const gantt_t *g, const ts_event_t *e) {
  return ts__gantt_event_ok(g, e) && g->row_of[e->device] >= 0;
}

void ts__gantt_draw_events(FILE *f, gantt_t *g) {
  const ts_run_t *run = g->r->run;
  int nb = g->n_rows * G_MAX_SUBLANES;
  run_box_t *b = g->dense ? ts__xcalloc((size_t)(nb ? nb : 1), sizeof *b) : NULL;
  fputs("<g class=\"ops\" text-anchor=\"middle\">\n", f);
  /* Dense: the optimizer steps and comm waits merge with the compute
  ** boxes they sit between, so that the row shows what takes its time. */
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    bool step = e->kind == TS_OPTIMIZER || e->kind == TS_COMM_WAIT;
    if (!drawn(g, e) || !(ts_kind_is_compute((ts_kind_t)e->kind) || (b && step)) || !room(f, g, e->start))
      continue;
    if (b) feed(f, g, &b[g->row_of[e->device]], e, LANE_OP, 0);
    else ts__gantt_write_op(f, g, e);
  }
  for (int k = 0; b && k < g->n_rows; k++) flush(f, g, &b[k], LANE_OP, 0);
  fputs("</g>\n", f);
  if (ts__run_has_stream(run)) {
    fputs("<g class=\"steps\">\n", f);
    for (int i = 0; i < run->n_events; i++) {
      const ts_event_t *e = &run->events[i];
      if (!b && drawn(g, e) && (e->kind == TS_OPTIMIZER || e->kind == TS_COMM_WAIT) && room(f, g, e->start))
        ts__gantt_write_step(f, g, e);
    }
    fputs("</g>\n", f);
  }
  fputs("<g class=\"transfers\">\n", f);
  for (int i = 0; i < run->n_events; i++) {
    if (g->sublane[i] < 0 || !room(f, g, run->events[i].start)) continue;
    const ts_event_t *e = &run->events[i];
    if (b) feed(f, g, &b[g->row_of[e->device] * G_MAX_SUBLANES + g->sublane[i]], e, LANE_XFER, g->sublane[i]);
    else ts__gantt_write_transfer(f, g, e, g->sublane[i]);
  }
  for (int k = 0; b && k < nb; k++) flush(f, g, &b[k], LANE_XFER, k % G_MAX_SUBLANES);
  fputs("</g>\n", f);
  if (g->has_coll) {
    fputs("<g class=\"collectives\">\n", f);
    for (int i = 0; i < run->n_events; i++) {
      const ts_event_t *e = &run->events[i];
      if (!drawn(g, e) || e->kind != TS_COLLECTIVE || !room(f, g, e->start)) continue;
      if (b) feed(f, g, &b[g->row_of[e->device]], e, LANE_COLL, 0);
      else ts__gantt_write_collective(f, g, e);
    }
    for (int k = 0; b && k < g->n_rows; k++) flush(f, g, &b[k], LANE_COLL, 0);
    fputs("</g>\n", f);
  }
  free(b);
}

/* ------------------------------------------------------------------ */
/* The note                                                            */
/* ------------------------------------------------------------------ */

/* Characters of the note per line at the figure's width. */
static int note_chars(const gantt_t *g) {
  int c = (int)((g->width - 2.0 * G_MARGIN * g->k) / (0.6 * 0.85 * g->fs));
  return c < 20 ? 20 : c;
}

/* The end of the line starting at s (at most max characters, cut at a
** space) and where the next line starts. */
static const char *wrap(const char *s, int max, const char **next) {
  const char *cut = NULL, *p = s;
  int n = 0;
  for (; *p && n <= max; p++) {
    if (*p == ' ') cut = p;
    n += ((unsigned char)*p & 0xC0) != 0x80;
  }
  if (!*p && n <= max) cut = p;
  if (!cut) cut = p; /* a word longer than the line */
  *next = *cut ? cut + 1 : cut;
  return cut;
}

void ts__gantt_note_layout(gantt_t *g) {
  g->note[0] = 0;
  g->note_lines = 0;
  if (!g->reduced) return;
  size_t n = 0, cap = sizeof g->note;
  int most = 0, total = 0;
  bool uniform = true;
  for (int r = 0; r < g->n_rows; r++) {
    if (g->row_count[r] != g->row_count[0]) uniform = false;
    if (g->row_count[r] > most) most = g->row_count[r];
    total += g->row_count[r];
  }
  if (g->r->run->fold)
    n += (size_t)snprintf(g->note + n, cap - n, "Folded run: each row's devices were simulated once, as the "
                          "device its tooltip names (README \"Symmetry folding\"). ");
  if (most > 1 && uniform)
    n += (size_t)snprintf(g->note + n, cap - n, "Row = %d identical devices (the same ops at the same times; "
                          "the label gives their range). ", most);
  else if (most > 1)
    n += (size_t)snprintf(g->note + n, cap - n, "A row stands for up to %d identical devices (the same ops at "
                          "the same times; the label gives them, the tooltip their count). ", most);
  if (g->n_left_out > 0 && n < cap)
    n += (size_t)snprintf(g->note + n, cap - n, "%d of %d devices left out: %d rows drawn (%d devices), "
                          "chosen %s; --gantt-devices and --gantt-max-rows choose others. ",
                          g->n_left_out, g->n_dev, g->n_rows, total, most > 1 || g->n_rows > 1 ? "evenly" : "");
  if (g->dense && n < cap)
    n += (size_t)snprintf(g->note + n, cap - n, "Adjacent boxes narrower than %.0f px are merged into one, "
                          "coloured by the kind that takes most of its time. ", G_TINY);
  while (n > 0 && g->note[n - 1] == ' ') g->note[--n] = 0;
  const char *p = g->note, *next;
  while (*p) {
    wrap(p, note_chars(g), &next);
    g->note_lines++;
    p = next;
  }
  if (g->dense) g->note_lines++; /* room for the cap's line */
}

void ts__gantt_note_write(FILE *f, const gantt_t *g, double y) {
  char fsz[64];
  ts__fmt_fixed(fsz, 0.85 * g->fs, 2);
  fprintf(f, "<g class=\"note\" font-size=\"%s\" fill=\"%s\">\n", fsz, g->ink);
  const char *p = g->note, *next;
  char x[64];
  ts__fmt_fixed(x, G_MARGIN * g->k, 2);
  for (int line = 0; *p; line++) {
    const char *end = wrap(p, note_chars(g), &next);
    char ys[64];
    ts__fmt_fixed(ys, y + line * LEGEND_ROW * g->fs, 2);
    fprintf(f, "<text x=\"%s\" y=\"%s\">", x, ys);
    ts__xml_put(f, p, (size_t)(end - p));
    fputs("</text>\n", f);
    p = next;
  }
  if (g->capped) {
    char t[48], ys[64];
    ts__gantt_fmt_in(t, sizeof t, g->cap_t, g->unit);
    ts__fmt_fixed(ys, y + (g->note_lines - 1) * LEGEND_ROW * g->fs, 2);
    fprintf(f, "<text x=\"%s\" y=\"%s\">Drawing stopped at %.1f MB: boxes from %s on are left out.</text>\n", x,
            ys, TS_GANTT_CAP_BYTES / 1e6, t);
  }
  fputs("</g>\n", f);
}
