/*
** ts_compare.c: `trainsim compare`, every applicable schedule on one job.
**
** Each registered schedule runs on the job as given, with the adjustments
** its rules need, each reported in the table: the schedule declares them
** (ts_schedule_t.compare_sets; today varuna runs with recompute "full",
** zb-h1 with recompute "none", interleaved with 2 chunks when the job has
** one, the other schedules with one chunk).  A schedule whose rules
** still reject the job (chimera with an odd stage count, interleaved with
** microbatches not divisible by stages, ...) is listed as skipped with the
** reason.  Every schedule runs on one executor (--executor; default
** simgrid); with the reference executor a schedule it cannot run is skipped
** likewise.  --schedules a,b,c runs only those, in that order.
**
** A schedule that is the same program on this job as one listed before it
** is skipped too, naming that one: the same program means the same
** devices running the same op sequence on the same timeline (every
** compute op, and every transfer that moves bytes or takes time, equal in
** device, peer, kind, model slice, micro-batch, iteration, flags, bytes,
** start and end, in the executor's order) and the same row of the table
** (iteration time, bubble, peak memory of every device, p2p bytes), so
** its chart and row would repeat the other's.  On a dense job gshard and
** gshard-gpipe are 1f1b and gpipe; gpipe-swap is gpipe when its weight
** fetches move nothing (a synthetic model without weights); mobius is not
** gpipe when its cross mapping puts stages on other devices.
**
** Outputs, written atomically into DIR: compare.csv (one row per
** schedule) and compare.svg, the Gantt charts stacked on one time axis,
** each row labelled with the stages (model slices) its device holds.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_compare.h"
#include "ts_exec.h"
#include "ts_out.h"
#include "ts_internal.h"

#define MAX_SCHED 32
#define MAX_SETS 8 /* compare_sets entries of one schedule */

typedef struct entry {
  const ts_schedule_t *s;
  const struct entry *same; /* the earlier schedule that ran the same program */
  char **notes;             /* [devices] the stages each device holds */
  char adjust[64];
  char skipped[1024];
  ts_job_t *job;
  ts_outcome_t o;
  double peak_mem;
} entry_t;

typedef struct compare {
  entry_t e[MAX_SCHED];
  int n;
  ts_gantt_opts_t axis;
  const ts_executor_t *ex; /* NULL: simgrid */
} compare_t;

/* The job's value at PATH (a field compare_sets may name) into buf; -1
** when compare does not know the path. */
static int job_value(const ts_job_t *job, const char *path, size_t len, char *buf, size_t n) {
  if (len == 6 && !strncmp(path, "chunks", len))
    snprintf(buf, n, "%d", job->chunks);
  else if (len == 10 && !strncmp(path, "iterations", len))
    snprintf(buf, n, "%d", job->iterations);
  else if (len == 9 && !strncmp(path, "recompute", len))
    snprintf(buf, n, "%s", ts_recompute_name(job->recompute));
  else
    return -1;
  return 0;
}

int ts__sched_adjust(const ts_schedule_t *s, const ts_job_t *job, const char *const *keep,
                     int n_keep, const char **sets, int *k, int cap, char *adj, size_t n_adj,
                     ts_err_t *err) {
  const struct ts_sched_set *cs = s->compare_sets;
  for (int i = 0; cs && cs[i].set; i++) {
    const char *eq = strchr(cs[i].set, '=');
    char have[64];
    if (i >= MAX_SETS || *k >= cap || !eq ||
        job_value(job, cs[i].set, (size_t)(eq - cs[i].set), have, sizeof have))
      return ts_err_set(err, EX_SOFTWARE, "compare: schedule '%s': bad compare_sets entry '%s'",
                        s->name, cs[i].set);
    if (cs[i].when ? strcmp(have, cs[i].when) : !strcmp(have, eq + 1)) continue;
    bool kept = false;
    for (int j = 0; j < n_keep && !kept; j++)
      kept = strlen(keep[j]) == (size_t)(eq - cs[i].set) && !strncmp(keep[j], cs[i].set, (size_t)(eq - cs[i].set));
    if (kept) continue;
    sets[(*k)++] = cs[i].set;
    size_t n = strlen(adj);
    snprintf(adj + n, n_adj - n, "%s%s", n ? " " : "", cs[i].set);
  }
  return 0;
}

/* The model slice of virtual stage v in l; v itself when l has none. */
static int slice_of(const ts_layout_t *l, int v) {
  return v >= 0 && v < l->n_vstages ? l->part[v] : v;
}

/* An event that the comparison of programs sees: every compute op, and the
** transfers (messages, fetches, offloads, collectives) that move bytes or
** take time.  A transfer of nothing in no time (on the ideal platform, or
** the weights fetches of a model without weights) changes no op's time and
** no memory. */
static bool counts(const ts_event_t *e) {
  return ts_kind_is_compute((ts_kind_t)e->kind) || e->bytes != 0 || e->end != e->start;
}

/* The index of the first event at or after i that counts; n when none. */
static int next_counted(const ts_run_t *r, int i) {
  while (i < r->n_events && !counts(&r->events[i])) i++;
  return i;
}

/* True when b ran the same program on this job as a (see the file's
** comment): the same devices, the same events that count, equal in the
** executor's order (vstages compared by the model slice they run), and
** the same numbers in the table, peak memory per device included. */
static bool same_program(const entry_t *a, const entry_t *b) {
  const ts_run_t *x = a->o.run, *y = b->o.run;
  const ts_layout_t *lx = a->o.layout, *ly = b->o.layout;
  const ts_metrics_t *p = a->o.metrics, *q = b->o.metrics;
  if (!x || !y || !lx || !ly || !p || !q || x->n_devices != y->n_devices ||
      p->n_devices != q->n_devices || p->iteration_time_s != q->iteration_time_s ||
      p->bubble_fraction != q->bubble_fraction || p->bubble_overhead != q->bubble_overhead ||
      p->p2p_bytes != q->p2p_bytes)
    return false;
  for (int d = 0; d < p->n_devices; d++)
    if (p->dev[d].peak_memory_bytes != q->dev[d].peak_memory_bytes) return false;
  int i = next_counted(x, 0), j = next_counted(y, 0);
  for (; i < x->n_events && j < y->n_events;
       i = next_counted(x, i + 1), j = next_counted(y, j + 1)) {
    const ts_event_t *e = &x->events[i], *f = &y->events[j];
    if (e->device != f->device || e->peer != f->peer || e->kind != f->kind || e->mb != f->mb ||
        e->iteration != f->iteration || e->flags != f->flags || e->coll != f->coll ||
        e->start != f->start || e->end != f->end || e->bytes != f->bytes ||
        slice_of(lx, e->vstage) != slice_of(ly, f->vstage))
      return false;
  }
  return i == x->n_events && j == y->n_events;
}

/* The row labels of e's chart: for each device, "stage S" or "stages S1,
** S2, ..." (the model slices of the virtual stages it holds, ascending).
** NULL when the layout does not cover the run's devices (the chart then
** shows host names).  The caller frees with free_notes. */
static char **stage_notes(const ts_outcome_t *o) {
  const ts_layout_t *l = o->layout;
  int nd = o->run ? o->run->n_devices : 0;
  if (!l || nd <= 0 || l->n_devices != nd) return NULL;
  int n_parts = 1;
  for (int v = 0; v < l->n_vstages; v++)
    if (l->part[v] + 1 > n_parts) n_parts = l->part[v] + 1;
  char **notes = ts__xcalloc((size_t)nd, sizeof *notes);
  bool *held = ts__xmalloc((size_t)n_parts * sizeof *held);
  for (int d = 0; d < nd; d++) {
    int n = 0;
    memset(held, 0, (size_t)n_parts * sizeof *held);
    for (int v = 0; v < l->n_vstages; v++)
      if (l->dev[v] == d && l->part[v] >= 0 && !held[l->part[v]]) {
        held[l->part[v]] = true;
        n++;
      }
    char buf[128];
    int k = snprintf(buf, sizeof buf, "%s", n == 1 ? "stage" : n ? "stages" : "");
    for (int j = 0, first = 1; j < n_parts && k < (int)sizeof buf; j++)
      if (held[j]) {
        k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%d", first ? " " : ", ", j);
        first = 0;
      }
    notes[d] = ts__xstrdup(buf);
  }
  free(held);
  return notes;
}

static void free_notes(char **notes, int n) {
  for (int d = 0; notes && d < n; d++) free(notes[d]);
  free(notes);
}

/* The schedules of --schedules list (comma-separated registry names, in
** that order) into out[*n]; every registered one when list is NULL.
** EX_USAGE for an empty, unknown or repeated name, or more than cap. */
static int pick_schedules(const char *list, const ts_schedule_t **out, int *n, int cap,
                          ts_err_t *err) {
  *n = 0;
  if (!list) {
    for (int i = 0; ts_schedule_at(i) && *n < cap; i++) out[(*n)++] = ts_schedule_at(i);
    return 0;
  }
  for (const char *p = list;;) {
    size_t len = strcspn(p, ",");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
    const ts_schedule_t *s = len && len < 63 ? ts_schedule_find(name) : NULL;
    if (!s) {
      char known[512] = "";
      for (int i = 0; ts_schedule_at(i); i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 ts_schedule_at(i)->name);
      return ts_err_set(err, EX_USAGE, "compare: --schedules: %s '%.*s' (known: %s)",
                        len ? "unknown schedule" : "empty name in", len ? (int)len : (int)strlen(list),
                        len ? p : list, known);
    }
    for (int i = 0; i < *n; i++)
      if (out[i] == s)
        return ts_err_set(err, EX_USAGE, "compare: --schedules: '%s' given twice", name);
    if (*n == cap) return ts_err_set(err, EX_USAGE, "compare: --schedules: more than %d", cap);
    out[(*n)++] = s;
    if (!p[len]) return 0;
    p += len + 1;
  }
}

static int write_csv(const void *arg, FILE *f) {
  const compare_t *c = arg;
  fputs("schedule,adjustments,status,iteration_time_s,bubble_fraction,bubble_overhead,"
        "max_peak_memory_bytes,p2p_bytes\n", f);
  for (int i = 0; i < c->n; i++) {
    const entry_t *e = &c->e[i];
    if (e->skipped[0]) {
      /* the reason may hold commas: quote it */
      fprintf(f, "%s,%s,\"skipped: ", e->s->name, e->adjust);
      for (const char *p = e->skipped; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
      }
      fputs("\",,,,,\n", f);
      continue;
    }
    const ts_metrics_t *m = e->o.metrics;
    fprintf(f, "%s,%s,ok,%.17g,%.17g,%.17g,%.17g,%.17g\n", e->s->name, e->adjust,
            m->iteration_time_s, m->bubble_fraction, m->bubble_overhead, e->peak_mem, m->p2p_bytes);
  }
  return ferror(f) ? EX_IOERR : 0;
}

/* Stacks each schedule's Gantt chart, drawn on the common axis. */
static int write_svg(const void *arg, FILE *f) {
  const compare_t *c = arg;
  char *bufs[MAX_SCHED] = {0};
  size_t lens[MAX_SCHED] = {0};
  double width = 0, height = 0, heights[MAX_SCHED] = {0};
  int rc = 0;
  for (int i = 0; i < c->n && !rc; i++) {
    if (c->e[i].skipped[0]) continue;
    FILE *m = open_memstream(&bufs[i], &lens[i]);
    if (!m) return EX_OSERR;
    ts_gantt_opts_t axis = c->axis;
    axis.row_note = (const char *const *)c->e[i].notes;
    rc = ts_write_gantt_svg_opts(&c->e[i].o.r, &axis, m);
    fclose(m);
    double w = 0, h = 0;
    if (!rc && sscanf(bufs[i], "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%lf\" height=\"%lf\"", &w, &h) != 2)
      rc = EX_SOFTWARE;
    heights[i] = h;
    if (w > width) width = w;
    height += h;
  }
  if (!rc) {
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\">\n<desc>trainsim compare: one Gantt chart per schedule, "
               "on one time axis</desc>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
            width, height, width, height);
    double y = 0;
    for (int i = 0; i < c->n; i++) {
      if (c->e[i].skipped[0]) continue;
      fprintf(f, "<g transform=\"translate(0,%.0f)\">\n", y);
      fwrite(bufs[i], 1, lens[i], f);
      fputs("</g>\n", f);
      y += heights[i];
    }
    fputs("</svg>\n", f);
    if (ferror(f)) rc = EX_IOERR;
  }
  for (int i = 0; i < c->n; i++) free(bufs[i]);
  return rc;
}

static void print_table(const compare_t *c, const char *path, FILE *f) {
  fprintf(f, "trainsim compare: %s", path ? path : "<default job>");
  if (c->ex && strcmp(c->ex->name, "simgrid")) fprintf(f, " (executor %s)", c->ex->name);
  fputc('\n', f);
  fprintf(f, "  %-12s %-14s %14s %8s %9s %12s %12s\n", "schedule", "adjustments", "iteration (s)",
          "bubble", "overhead", "peak memory", "p2p bytes");
  for (int i = 0; i < c->n; i++) {
    const entry_t *e = &c->e[i];
    if (e->skipped[0]) {
      fprintf(f, "  %-12s skipped: %s\n", e->s->name, e->skipped);
      continue;
    }
    const ts_metrics_t *m = e->o.metrics;
    char pm[32], pb[32];
    fprintf(f, "  %-12s %-14s %14.6g %8.4f %9.4f %12s %12s\n", e->s->name,
            e->adjust[0] ? e->adjust : "-", m->iteration_time_s, m->bubble_fraction,
            m->bubble_overhead, ts__human_bytes(e->peak_mem, pm, sizeof pm),
            ts__human_bytes(m->p2p_bytes, pb, sizeof pb));
  }
}

int ts_compare(const char *path, const char *const *sets, int n_sets, const char *schedules,
               const ts_executor_t *ex, const char *dir, bool quiet, ts_err_t *err) {
  compare_t *c = ts__xcalloc(1, sizeof *c);
  const char **all = ts__xcalloc((size_t)n_sets + 4 + MAX_SETS, sizeof *all);
  const ts_schedule_t *pick[MAX_SCHED];
  int rc = 0, ran = 0, n_pick = 0;
  ts_job_t *base = NULL;
  c->ex = ex;
  if ((rc = pick_schedules(schedules, pick, &n_pick, MAX_SCHED, err))) goto out;
  /* The job as given must load: its errors are the user's, not a skip. */
  if ((rc = ts_job_load(path, sets, n_sets, &base, err))) goto out;
  for (int i = 0; i < n_pick; i++) {
    /* A table schedule has nothing to run without the job's table (unless
    ** asked for by name, when its error says so). */
    if (pick[i]->needs_table && !base->table && !schedules) continue;
    entry_t *e = &c->e[c->n++];
    e->s = pick[i];
    int k = 0;
    for (; k < n_sets; k++) all[k] = sets[k];
    char sched[96];
    snprintf(sched, sizeof sched, "schedule=%s", e->s->name);
    all[k++] = sched;
    if ((rc = ts__sched_adjust(e->s, base, NULL, 0, all, &k, n_sets + 4 + MAX_SETS, e->adjust,
                               sizeof e->adjust, err)))
      goto out;
    ts_err_t why = {0};
    if (ts_job_load(path, all, k, &e->job, &why) || ts_execute(e->job, NULL, ex, &e->o, &why)) {
      snprintf(e->skipped, sizeof e->skipped, "%s", why.msg);
      continue;
    }
    for (int d = 0; d < e->o.metrics->n_devices; d++)
      if (e->o.metrics->dev[d].peak_memory_bytes > e->peak_mem)
        e->peak_mem = e->o.metrics->dev[d].peak_memory_bytes;
    for (int j = 0; j < c->n - 1 && !e->same; j++)
      if (!c->e[j].skipped[0] && same_program(&c->e[j], e)) e->same = &c->e[j];
    if (e->same) {
      snprintf(e->skipped, sizeof e->skipped,
               "the same program as %s on this job (same ops per device, same times, same "
               "numbers)",
               e->same->s->name);
      continue;
    }
    ran++;
    e->notes = stage_notes(&e->o);
    ts_gantt_opts_t m = {.row_note = (const char *const *)e->notes};
    if ((rc = ts_gantt_measure(&e->o.r, &m))) goto out;
    if (m.t_max > c->axis.t_max) c->axis.t_max = m.t_max;
    if (m.left > c->axis.left) c->axis.left = m.left;
    if (m.plot_w > c->axis.plot_w) c->axis.plot_w = m.plot_w;
  }
  if (!ran) {
    rc = ts_err_set(err, EX_DATAERR, "%s: no schedule applies to this job (%s)",
                    path ? path : "<default job>", c->e[0].skipped);
    goto out;
  }
  const ts_out_file_t fs[2] = {{"compare.csv", write_csv, c, 0}, {"compare.svg", write_svg, c, 0}};
  if ((rc = ts_write_set(dir, fs, 2, err))) goto out; /* one set: README "Outputs" */
  if (!quiet) {
    print_table(c, path, stdout);
    printf("  outputs        %s/{compare.csv,compare.svg}\n", dir);
  }
out:
  for (int i = 0; i < c->n; i++) {
    free_notes(c->e[i].notes, c->e[i].o.run ? c->e[i].o.run->n_devices : 0);
    ts_outcome_free(&c->e[i].o);
    ts_job_free(c->e[i].job);
  }
  ts_job_free(base);
  free(all);
  free(c);
  return rc;
}
