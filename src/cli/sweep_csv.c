/*
** sweep_csv.c: sweep.csv of `trainsim sweep`: CSV fields (quoting and
** splitting), the header and the row of a point (from its summary.json,
** or its error), the taking of a row into the sweep (by a worker, the
** resume or --collect), the reading of an earlier run's rows and the
** writing of sweep.svg and sweep.csv, the creation of the partial file.
*/
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "sweep_internal.h"
#include "ts_internal.h"

/* Appends one CSV field: quoted (with doubled quotes) when it holds a
** comma, a quote, a line break or leading/trailing blanks.  Line breaks
** become spaces, so a row is always one line. */
void ts__sw_csv_put(sb_t *b, const char *s) {
  size_t n = strlen(s);
  bool q = strpbrk(s, ",\"\r\n") || (n && (s[0] == ' ' || s[n - 1] == ' '));
  if (!q) {
    ts__sw_putn(b, s, n);
    return;
  }
  ts__sw_putn(b, "\"", 1);
  for (const char *p = s; *p; p++) {
    if (*p == '"')
      ts__sw_putn(b, "\"\"", 2);
    else if (*p == '\n' || *p == '\r')
      ts__sw_putn(b, " ", 1);
    else
      ts__sw_putn(b, p, 1);
  }
  ts__sw_putn(b, "\"", 1);
}

/* Splits one CSV line (without its newline) into fields, in place: the
** fields point into line, which is rewritten.  Returns the field count, or
** -1 for a malformed line (an unterminated quote, text after a closing
** quote) or more than max fields. */
int ts__sw_csv_split(char *line, char **f, int max) {
  int n = 0;
  char *r = line, *w = line;
  for (;;) {
    if (n == max) return -1;
    f[n++] = w;
    if (*r == '"') {
      r++;
      for (;;) {
        if (!*r) return -1;
        if (*r == '"' && r[1] == '"') {
          *w++ = '"';
          r += 2;
        } else if (*r == '"') {
          r++;
          break;
        } else {
          *w++ = *r++;
        }
      }
      if (*r && *r != ',') return -1;
    } else {
      while (*r && *r != ',') {
        if (*r == '"') return -1;
        *w++ = *r++;
      }
    }
    if (!*r) {
      *w = 0;
      return n;
    }
    *w++ = 0; /* the comma */
    r++;
  }
}

void ts__sw_csv_header(const sweep_t *s, sb_t *b) {
  for (int k = 0; k < s->nv; k++) {
    ts__sw_csv_put(b, s->v[k].path);
    ts__sw_puts(b, ",");
  }
  ts__sw_puts(b, s->mix ? "status,adjustments" : "status");
  for (int m = 0; m < ts__sw_n_cols(s); m++) {
    ts__sw_puts(b, ",");
    ts__sw_puts(b, ts__sw_metrics[m].name);
  }
  ts__sw_puts(b, ",all_fit,error\n");
}

/* The varied values of point i, each followed by a comma, then status
** and, when s->mix, a comma and the adjustments adj. */
static void row_values(const sweep_t *s, long i, const char *status, const char *adj, sb_t *b) {
  for (int k = 0; k < s->nv; k++) {
    ts__sw_csv_put(b, s->v[k].val[ts__sw_point_val(s, i, k)]);
    ts__sw_puts(b, ",");
  }
  ts__sw_puts(b, status);
  if (!s->mix) return;
  ts__sw_puts(b, ",");
  ts__sw_csv_put(b, adj ? adj : "");
}

/* The row of a simulated point, from its summary.json tree. */
void ts__sw_row_ok(const sweep_t *s, long i, const char *adj, const cJSON *sum, sb_t *b) {
  row_values(s, i, "ok", adj, b);
  for (int m = 0; m < ts__sw_n_cols(s); m++) {
    const cJSON *x = NULL;
    if (m == SW_MET_MAXPEAK) {
      const cJSON *d, *devs = cJSON_GetObjectItemCaseSensitive(sum, "devices");
      double best = -INFINITY;
      cJSON_ArrayForEach(d, devs) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(d, "peak_memory_bytes");
        if (cJSON_IsNumber(p) && (!x || p->valuedouble > best)) {
          x = p;
          best = p->valuedouble;
        }
      }
    } else {
      const sw_metric_t *M = &ts__sw_metrics[m];
      const cJSON *o = M->parent ? cJSON_GetObjectItemCaseSensitive(sum, M->parent) : sum;
      x = cJSON_GetObjectItemCaseSensitive(o, M->name);
    }
    ts__sw_puts(b, ",");
    if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) ts__sw_printf(b, "%.17g", x->valuedouble);
  }
  const cJSON *d, *devs = cJSON_GetObjectItemCaseSensitive(sum, "devices");
  bool fit = true;
  cJSON_ArrayForEach(d, devs) fit = fit && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "fits"));
  ts__sw_puts(b, fit ? ",true,\n" : ",false,\n");
}

/* The row of a point that failed with msg. */
void ts__sw_row_error(const sweep_t *s, long i, const char *adj, const char *msg, sb_t *b) {
  row_values(s, i, "error", adj, b);
  for (int m = 0; m <= ts__sw_n_cols(s); m++) ts__sw_puts(b, ",");
  ts__sw_puts(b, ",");
  ts__sw_csv_put(b, msg);
  ts__sw_puts(b, "\n");
}

/* Takes line (a complete row with its '\n') as the row of its point unless
** that point already has one.  Returns false when the line is not a row of
** this sweep (wrong field count, unknown values, bad status). */
bool ts__sw_point_take(sweep_t *s, const char *line) {
  size_t len = strlen(line);
  if (len < 2 || line[len - 1] != '\n') return false;
  int n_met = ts__sw_n_cols(s), first = s->nv + 1 + s->mix, want = first + n_met + 2;
  char *copy = ts__xstrdup(line), **f = ts__xmalloc((size_t)(want + 1) * sizeof *f);
  copy[len - 1] = 0;
  bool good = false;
  long i;
  if (ts__sw_csv_split(copy, f, want + 1) != want || (i = ts__sw_point_of(s, f)) < 0) goto out;
  sw_point_t *p = &s->pt[i];
  const char *status = f[s->nv];
  if (strcmp(status, "ok") && strcmp(status, "error")) goto out;
  good = true;
  if (p->line) goto out; /* the first row of a point wins */
  p->ok = strcmp(status, "ok") == 0;
  for (int m = 0; m < SW_N_MET; m++) p->m[m] = NAN;
  for (int m = 0; m < n_met; m++) {
    char *end;
    const char *t = f[first + m];
    p->m[m] = *t ? strtod(t, &end) : NAN;
    if (*t && *end) p->m[m] = NAN;
  }
  p->error = p->ok ? NULL : ts__xstrdup(f[want - 1]);
  p->line = ts__xstrdup(line);
out:
  free(f);
  free(copy);
  return good;
}

/* ts_write_atomic's writer of sweep.csv: the header, then every row in
** cartesian order. */
static int write_csv(const void *arg, FILE *f) {
  const sweep_t *s = arg;
  sb_t h = {0};
  ts__sw_csv_header(s, &h);
  fputs(h.s, f);
  free(h.s);
  for (long i = 0; i < s->n; i++) fputs(s->pt[i].line, f);
  return ferror(f) ? EX_IOERR : 0;
}

/* Reads the rows of an earlier run from path (sweep.csv or the partial
** file) into s.  A missing file is no error; a file whose header is not
** this sweep's is (EX_CANTCREAT: the directory holds another sweep).
** Lines that are not rows of s (a torn last line) are skipped. */
int ts__sw_read_rows(sweep_t *s, const char *path, ts_err_t *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 0;
    return ts_err_set(err, EX_NOINPUT, "%s: cannot read: %s", path, strerror(errno));
  }
  sb_t h = {0};
  ts__sw_csv_header(s, &h);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got = getline(&line, &cap, f);
  int rc = 0;
  /* A beginning of the header without its newline holds no row. */
  bool torn = got > 0 && line[got - 1] != '\n' && !strncmp(line, h.s, (size_t)got);
  if (got > 0 && strcmp(line, h.s) && !torn) {
    line[strcspn(line, "\n")] = 0;
    rc = ts_err_set(err, EX_CANTCREAT,
                    "%s: holds another sweep (columns '%.300s'); remove it or choose another -o DIR",
                    path, line);
  }
  while (!rc && getline(&line, &cap, f) > 0) ts__sw_point_take(s, line);
  free(line);
  free(h.s);
  fclose(f);
  return rc;
}

/* Writes DIR/sweep.svg and DIR/sweep.csv as one set (ts_write_set). */
int ts__sw_write_results(const sweep_t *s, const char *dir, ts_err_t *err) {
  const ts_out_file_t fs[2] = {{"sweep.svg", ts__sw_write_svg, s, 0}, {"sweep.csv", write_csv, s, 0}};
  return ts_write_set(dir, fs, 2, err);
}

/* ts_write_atomic's writer of a new partial file: the header alone. */
static int write_header(const void *arg, FILE *f) {
  sb_t h = {0};
  ts__sw_csv_header(arg, &h);
  fputs(h.s, f);
  free(h.s);
  return ferror(f) ? EX_IOERR : 0;
}

int ts__sw_partial_open(const sweep_t *s, const char *part, bool *made, ts_err_t *err) {
  /* A partial file without a whole header holds no row: a sweep of an
  ** older trainsim was killed right after creating it. */
  size_t len = 0;
  char *text = ts__read_file(part, &len);
  sb_t h = {0};
  ts__sw_csv_header(s, &h);
  if (text && len < h.n && !memchr(text, '\n', len) && !strncmp(text, h.s, len)) unlink(part);
  free(text);
  free(h.s);
  *made = access(part, F_OK) != 0;
  if (*made) {
    int rc = ts_write_atomic(part, write_header, s, err);
    if (rc) return -rc;
  }
  int fd = open(part, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return -ts_err_set(err, EX_CANTCREAT, "%s: cannot open: %s", part, strerror(errno));
  return fd;
}
