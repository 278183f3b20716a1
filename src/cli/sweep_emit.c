/*
** sweep_emit.c: `trainsim sweep --emit-jobs DIR2` (DIR2/points.csv and
** DIR2/commands.txt, one `trainsim run` per point, for GNU parallel or a
** SLURM array) and `--collect DIR2` (the points and their rows back from
** DIR2/points.csv, DIR2/point-i/summary.json and DIR2/point-i.err).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "sweep_internal.h"
#include "ts_internal.h"

/* Appends s quoted for sh when it holds anything but safe characters. */
static void sh_put(sb_t *b, const char *s) {
  bool safe = *s != 0;
  for (const char *p = s; *p && safe; p++)
    safe = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           strchr("_-./=:,+@%", *p);
  if (safe) {
    ts__sw_puts(b, s);
    return;
  }
  ts__sw_puts(b, "'");
  for (const char *p = s; *p; p++) {
    if (*p == '\'')
      ts__sw_puts(b, "'\\''");
    else
      ts__sw_putn(b, p, 1);
  }
  ts__sw_puts(b, "'");
}

typedef struct sw_emit {
  const sweep_t *s;
  const char *dir;
  char exe[TS_PATH_MAX];
  char **adj;        /* [n] each point's adjustments */
  const char ***sets; /* [n] each point's --set strings, n_sets[i] of them */
  int *n_sets;
} sw_emit_t;

/* ts_write_atomic's writer of points.csv: index (from 1), then the
** varied values of each point and, when the sweep mixes schedules, its
** adjustments. */
static int write_points(const void *arg, FILE *f) {
  const sw_emit_t *e = arg;
  const sweep_t *s = e->s;
  sb_t b = {0};
  ts__sw_puts(&b, "index");
  for (int k = 0; k < s->nv; k++) {
    ts__sw_puts(&b, ",");
    ts__sw_csv_put(&b, s->v[k].path);
  }
  ts__sw_puts(&b, s->mix ? ",adjustments\n" : "\n");
  for (long i = 0; i < s->n; i++) {
    ts__sw_printf(&b, "%ld", i + 1);
    for (int k = 0; k < s->nv; k++) {
      ts__sw_puts(&b, ",");
      ts__sw_csv_put(&b, s->v[k].val[ts__sw_point_val(s, i, k)]);
    }
    if (s->mix) {
      ts__sw_puts(&b, ",");
      ts__sw_csv_put(&b, e->adj[i]);
    }
    ts__sw_puts(&b, "\n");
  }
  fputs(b.s, f);
  free(b.s);
  return ferror(f) ? EX_IOERR : 0;
}

/* ts_write_atomic's writer of commands.txt: line i runs point i. */
static int write_commands(const void *arg, FILE *f) {
  const sw_emit_t *e = arg;
  const sweep_t *s = e->s;
  for (long i = 0; i < s->n && !ferror(f); i++) {
    sb_t b = {0}, out = {0};
    sh_put(&b, e->exe);
    ts__sw_puts(&b, " run");
    if (s->job) {
      ts__sw_puts(&b, " ");
      sh_put(&b, s->job);
    }
    for (int k = 0; k < e->n_sets[i]; k++) {
      ts__sw_puts(&b, " --set ");
      sh_put(&b, e->sets[i][k]);
    }
    ts__sw_printf(&out, "%s/point-%ld", e->dir, i + 1);
    ts__sw_puts(&b, " -o ");
    sh_put(&b, out.s);
    ts__sw_puts(&b, " --quiet 2>");
    ts__sw_puts(&out, ".err");
    sh_put(&b, out.s);
    ts__sw_puts(&b, "\n");
    fputs(b.s, f);
    free(b.s);
    free(out.s);
  }
  return ferror(f) ? EX_IOERR : 0;
}

/* The points' --set strings and adjustments into e (ts__sw_point_sets);
** own[i] receives point i's owned strings.  Returns 0 or EX_SOFTWARE. */
static int emit_sets(sw_emit_t *e, char ***own, ts_err_t *err) {
  const sweep_t *s = e->s;
  int rc = 0;
  for (long i = 0; i < s->n; i++) {
    char adj[SW_ADJ_MAX];
    if (!rc) rc = ts__sw_point_sets(s, i, &e->sets[i], &own[i], &e->n_sets[i], adj, sizeof adj, err);
    else own[i] = NULL;
    e->adj[i] = ts__xstrdup(rc ? "" : adj);
  }
  return rc;
}

int ts__sw_emit_jobs(const sweep_t *s, const char *dir, bool quiet) {
  sw_emit_t e = {s, dir, "trainsim", NULL, NULL, NULL};
  e.adj = ts__xcalloc((size_t)s->n, sizeof *e.adj);
  e.sets = ts__xcalloc((size_t)s->n, sizeof *e.sets);
  e.n_sets = ts__xcalloc((size_t)s->n, sizeof *e.n_sets);
  char ***own = ts__xcalloc((size_t)s->n, sizeof *own);
  ssize_t n = readlink("/proc/self/exe", e.exe, sizeof e.exe - 1);
  if (n > 0)
    e.exe[n] = 0;
  else
    snprintf(e.exe, sizeof e.exe, "trainsim");
  char pts[TS_PATH_MAX + 32], cmds[TS_PATH_MAX + 32];
  snprintf(pts, sizeof pts, "%s/points.csv", dir);
  snprintf(cmds, sizeof cmds, "%s/commands.txt", dir);
  ts_err_t err = {0};
  int rc = emit_sets(&e, own, &err);
  if (!rc) rc = ts_write_dir(dir, &err);
  if (!rc) rc = ts_write_atomic(pts, write_points, &e, &err);
  if (!rc && (rc = ts_write_atomic(cmds, write_commands, &e, &err))) unlink(pts);
  for (long i = 0; i < s->n; i++) {
    if (own[i]) ts__sw_point_sets_free(s, e.sets[i], own[i]);
    free(e.adj[i]);
  }
  free(own);
  free(e.adj);
  free(e.sets);
  free(e.n_sets);
  if (rc) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    return rc;
  }
  if (!quiet)
    printf("trainsim sweep: %ld points; wrote %s and %s\n"
           "  run them with   parallel < %s\n"
           "  or a SLURM array --array=1-%ld of   sed -n \"${SLURM_ARRAY_TASK_ID}p\" %s | sh\n"
           "  then            trainsim sweep --collect %s -o DIR\n",
           s->n, pts, cmds, cmds, s->n, cmds, dir);
  return 0;
}

/* Rebuilds the sweep from DIR2/points.csv: the paths from the header, each
** path's values in order of first appearance, then checks that the rows
** are exactly the cartesian product in order. */
int ts__sw_collect_points(sweep_t *s, const char *dir, ts_err_t *err) {
  char path[TS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/points.csv", dir);
  char *text = ts__read_file(path, NULL);
  if (!text) return ts_err_set(err, EX_NOINPUT, "%s: cannot read: %s", path, ts__read_error(errno));
  int rc = 0, line_no = 0, nf = 0, cap = 64;
  char **f = ts__xmalloc((size_t)cap * sizeof *f);
  char **rows = NULL;
  long n_rows = 0;
  for (char *line = text, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    if (!nl) {
      rc = ts_err_set(err, EX_DATAERR, "%s:%d: incomplete last line", path, line_no + 1);
      break;
    }
    *nl = 0;
    line_no++;
    if (line_no == 1) {
      nf = ts__sw_csv_split(line, f, cap);
      if (nf < 2 || strcmp(f[0], "index")) {
        rc = ts_err_set(err, EX_DATAERR, "%s:1: expected the header index,PATH,... of --emit-jobs", path);
        break;
      }
      s->mix = nf > 2 && !strcmp(f[nf - 1], "adjustments");
      s->nv = nf - 1 - s->mix;
      s->v = ts__xmalloc((size_t)s->nv * sizeof *s->v);
      for (int k = 0; k < s->nv; k++) s->v[k] = (sw_vary_t){ts__xstrdup(f[k + 1]), 0, NULL};
      continue;
    }
    rows = ts__xrealloc(rows, (size_t)(n_rows + 1) * sizeof *rows);
    rows[n_rows++] = line;
  }
  if (!rc && line_no == 0) rc = ts_err_set(err, EX_DATAERR, "%s: empty", path);
  if (!rc && !n_rows) rc = ts_err_set(err, EX_DATAERR, "%s: no points", path);
  /* values in order of first appearance */
  for (long r = 0; r < n_rows && !rc; r++) {
    char *copy = ts__xstrdup(rows[r]);
    char ix[32];
    snprintf(ix, sizeof ix, "%ld", r + 1);
    if (ts__sw_csv_split(copy, f, cap) != nf || strcmp(f[0], ix))
      rc = ts_err_set(err, EX_DATAERR, "%s:%ld: expected point %ld with %d values", path, r + 2, r + 1,
                      nf - 1);
    for (int k = 0; k < s->nv && !rc; k++) {
      sw_vary_t *v = &s->v[k];
      int j = 0;
      while (j < v->n && strcmp(v->val[j], f[k + 1])) j++;
      if (j < v->n) continue;
      v->val = ts__xrealloc(v->val, (size_t)(v->n + 1) * sizeof *v->val);
      v->val[v->n++] = ts__xstrdup(f[k + 1]);
    }
    free(copy);
  }
  if (!rc) {
    s->n = 1;
    for (int k = 0; k < s->nv; k++) s->n *= s->v[k].n;
    if (s->n != n_rows)
      rc = ts_err_set(err, EX_DATAERR, "%s: %ld points are not the cartesian product of the values",
                      path, n_rows);
  }
  if (!rc && s->mix) s->adj = ts__xcalloc((size_t)s->n, sizeof *s->adj);
  for (long r = 0; r < n_rows && !rc; r++) {
    char *copy = ts__xstrdup(rows[r]);
    ts__sw_csv_split(copy, f, cap);
    if (ts__sw_point_of(s, f + 1) != r)
      rc = ts_err_set(err, EX_DATAERR, "%s:%ld: point %ld is out of cartesian order", path, r + 2, r + 1);
    else if (s->mix)
      s->adj[r] = ts__xstrdup(f[nf - 1]);
    free(copy);
  }
  free(rows);
  free(f);
  free(text);
  return rc;
}

/* Sets s->dp when some point's DIR2/point-<i>/summary.json has
** job.data_parallel > 1 (what the local sweep learns from the job; missing
** or malformed summaries are left to ts__sw_collect_row). */
void ts__sw_collect_dp(sweep_t *s, const char *dir) {
  s->dp = false;
  for (long i = 0; i < s->n && !s->dp; i++) {
    char path[TS_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/point-%ld/summary.json", dir, i + 1);
    char *text = ts__read_file(path, NULL);
    cJSON *sum = text ? cJSON_Parse(text) : NULL;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sum, "job"), "data_parallel");
    s->dp = cJSON_IsNumber(d) && d->valuedouble > 1;
    cJSON_Delete(sum);
    free(text);
  }
}

/* The row of point i from DIR2/point-<i+1>/summary.json, or from the
** one-line error in DIR2/point-<i+1>.err. */
int ts__sw_collect_row(sweep_t *s, const char *dir, long i, ts_err_t *err) {
  char path[TS_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/point-%ld/summary.json", dir, i + 1);
  sb_t b = {0};
  char *text = ts__read_file(path, NULL);
  int rc = 0;
  if (text) {
    cJSON *sum = cJSON_Parse(text);
    if (!cJSON_IsObject(sum))
      rc = ts_err_set(err, EX_DATAERR, "%s: malformed JSON", path);
    else
      ts__sw_row_ok(s, i, s->adj ? s->adj[i] : "", sum, &b);
    cJSON_Delete(sum);
  } else {
    snprintf(path, sizeof path, "%s/point-%ld.err", dir, i + 1);
    text = ts__read_file(path, NULL);
    static const char pre[] = "trainsim: error: ";
    if (text && !strncmp(text, pre, sizeof pre - 1)) {
      char *msg = text + sizeof pre - 1;
      msg[strcspn(msg, "\n")] = 0;
      ts__sw_row_error(s, i, s->adj ? s->adj[i] : "", msg, &b);
    } else if (text && *text) {
      text[strcspn(text, "\n")] = 0;
      rc = ts_err_set(err, EX_NOINPUT, "%s/point-%ld: no summary.json; its command failed: %.300s", dir,
                      i + 1, text);
    } else {
      rc = ts_err_set(err, EX_NOINPUT, "%s/point-%ld: no result (run line %ld of %s/commands.txt first)",
                      dir, i + 1, i + 1, dir);
    }
  }
  if (!rc && !ts__sw_point_take(s, b.s)) rc = ts_err_set(err, EX_SOFTWARE, "%s: cannot build its row", path);
  free(text);
  free(b.s);
  return rc;
}
