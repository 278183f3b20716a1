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
** likewise.  Outputs, written atomically into DIR: compare.csv (one row per
** schedule) and compare.svg, the Gantt charts stacked on one time axis.
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
    snprintf(buf, n, "%s", job->recompute == TS_RECOMPUTE_FULL ? "full" : "none");
  else
    return -1;
  return 0;
}

/* Appends to all[*k] the settings of e's schedule's compare_sets that apply
** to base (ts_schedule_t.compare_sets), and lists them in e->adjust.
** EX_SOFTWARE for a malformed declaration or more than MAX_SETS. */
static int adjust(const ts_job_t *base, entry_t *e, const char **all, int *k, int cap,
                  ts_err_t *err) {
  const struct ts_sched_set *cs = e->s->compare_sets;
  for (int i = 0; cs && cs[i].set; i++) {
    const char *eq = strchr(cs[i].set, '=');
    char have[64];
    if (i >= MAX_SETS || *k >= cap || !eq ||
        job_value(base, cs[i].set, (size_t)(eq - cs[i].set), have, sizeof have))
      return ts_err_set(err, EX_SOFTWARE, "compare: schedule '%s': bad compare_sets entry '%s'",
                        e->s->name, cs[i].set);
    if (cs[i].when ? strcmp(have, cs[i].when) : !strcmp(have, eq + 1)) continue;
    all[(*k)++] = cs[i].set;
    size_t n = strlen(e->adjust);
    snprintf(e->adjust + n, sizeof e->adjust - n, "%s%s", n ? " " : "", cs[i].set);
  }
  return 0;
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
    rc = ts_write_gantt_svg_opts(&c->e[i].o.r, &c->axis, m);
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

int ts_compare(const char *path, const char *const *sets, int n_sets, const ts_executor_t *ex,
               const char *dir, bool quiet, ts_err_t *err) {
  compare_t *c = ts__xcalloc(1, sizeof *c);
  const char **all = ts__xcalloc((size_t)n_sets + 4 + MAX_SETS, sizeof *all);
  int rc = 0, ran = 0;
  ts_job_t *base = NULL;
  c->ex = ex;
  /* The job as given must load: its errors are the user's, not a skip. */
  if ((rc = ts_job_load(path, sets, n_sets, &base, err))) goto out;
  for (int i = 0; ts_schedule_at(i) && c->n < MAX_SCHED; i++) {
    if (ts_schedule_at(i)->needs_table && !base->table) continue; /* nothing to run */
    entry_t *e = &c->e[c->n++];
    e->s = ts_schedule_at(i);
    int k = 0;
    for (; k < n_sets; k++) all[k] = sets[k];
    char sched[96];
    snprintf(sched, sizeof sched, "schedule=%s", e->s->name);
    all[k++] = sched;
    if ((rc = adjust(base, e, all, &k, n_sets + 4 + MAX_SETS, err))) goto out;
    ts_err_t why = {0};
    if (ts_job_load(path, all, k, &e->job, &why) || ts_execute(e->job, NULL, ex, &e->o, &why)) {
      snprintf(e->skipped, sizeof e->skipped, "%s", why.msg);
      continue;
    }
    ran++;
    for (int d = 0; d < e->o.metrics->n_devices; d++)
      if (e->o.metrics->dev[d].peak_memory_bytes > e->peak_mem)
        e->peak_mem = e->o.metrics->dev[d].peak_memory_bytes;
    ts_gantt_opts_t m = {0};
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
  const ts_out_file_t fs[2] = {{"compare.csv", write_csv, c}, {"compare.svg", write_svg, c}};
  if ((rc = ts_write_set(dir, fs, 2, err))) goto out; /* one set: README "Outputs" */
  if (!quiet) {
    print_table(c, path, stdout);
    printf("  outputs        %s/{compare.csv,compare.svg}\n", dir);
  }
out:
  for (int i = 0; i < c->n; i++) {
    ts_outcome_free(&c->e[i].o);
    ts_job_free(c->e[i].job);
  }
  ts_job_free(base);
  free(all);
  free(c);
  return rc;
}
