/*
** ts_sweep.c: `trainsim sweep`, a what-if sweep over --set paths.
**
** A sweep is a job, fixed --set strings and k varied paths, each with a list
** of values.  Its points are the cartesian product of the lists, numbered in
** cartesian order: the first --vary is the outermost loop, the last the
** innermost.  Point i is simulated exactly as
**
**     trainsim run JOB --set <fixed...> --set PATH1=V1i ... --set PATHk=Vki
**
** would simulate it (ts_job_load with the fixed strings, then the point's),
** in a worker process: -j N workers (default: online cores) run the points
** not yet done; each worker forks for one point and reports one CSV row (or
** an error) on a pipe.
**
** Outputs (DIR, default ./trainsim-sweep):
**   sweep.csv  one row per point in cartesian order: the varied values, the
**              status (ok or error), the summary metrics, all_fit and, for a
**              failed point, the one-line error;
**   sweep.svg  --metric (default iteration_time_s) against the first varied
**              path, one line per combination of the others' values.  The x
**              axis is numeric when every value is a number (SimGrid units
**              allowed: 50GBps, 2us), log when the values span more than two
**              decades or grow geometrically over more than one; else one
**              slot per value.  The y axis is log when the plotted values
**              span more than two decades.  Failed points are crosses at
**              the bottom with the error as their tooltip.
**
** Errors.  The job with its fixed --set strings must load by itself, and
** every varied value must be accepted with them (unknown path, bad unit):
** otherwise the sweep stops before anything is written, with the job's
** error (exit 64 for a bad --vary).  A point that the job's rules reject
** (exit 65: e.g. more stages than layers) or whose schedule fails (exit
** 70 with "schedule '...': ...": a schedule error or deadlock) is a row
** with status "error" and the message; the sweep goes on.  Any other
** failure of a point (64, 66, a simulation that died, a system error)
** stops the sweep: the workers still running finish, their rows are kept
** for a resume, and no sweep.csv is written.
**
** Resume.  Each finished row is appended to DIR/sweep.csv.partial by the
** parent with a single write(2) under O_APPEND, so an interrupted sweep
** leaves only complete lines there (a torn last line, from a crash in the
** middle of a write, does not parse and is dropped).  A run first reads
** DIR/sweep.csv and DIR/sweep.csv.partial and skips every point that has a
** row (ok or error: both are deterministic outcomes), keyed by its varied
** values; rows of points outside the current product are dropped.  When
** every point has a row, sweep.svg and then sweep.csv are written
** atomically (ts_write_atomic), sorted in cartesian order, and only then is
** the partial file removed.  So the result of a resumed sweep is
** byte-identical to a fresh one, whatever -j and whatever order workers
** finish in.  Assumption: the job file and the fixed --set strings did not
** change between the runs (rows are keyed by the varied values only).
**
** --emit-jobs DIR2 runs nothing: it writes DIR2/points.csv (index from 1,
** then the values) and DIR2/commands.txt, whose line i runs point i
** (`trainsim run JOB --set ... -o DIR2/point-i --quiet 2>DIR2/point-i.err`),
** for GNU parallel or a SLURM array; paths are as given, so the commands
** run from the directory the sweep was emitted in.  --collect DIR2 builds
** the rows from DIR2/point-i/summary.json (or, for a failed point, the
** message in DIR2/point-i.err) with the same code as a local sweep, so
** sweep.csv and sweep.svg are byte-identical to a local run's.
**
** Numbers: a row is built from the text of the point's summary.json, read
** back (cJSON prints some doubles with 15 digits, which need not read back
** as the same double), and its metrics are printed with %.17g.  So a row
** holds exactly the numbers `trainsim run` writes for the point, whether
** the sweep ran locally or collected summary.json files.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_exec.h"
#include "ts_sweep.h"

/* summary.json as a cJSON tree (src/ts_output.c; internal, shared). */

#define SW_MAX_POINTS 1000000L /* a larger product is a usage error */
#define SW_MAX_JOBS 1024
#define SW_TABLE_MAX 64        /* points printed in the stdout table at most */

/* ------------------------------------------------------------------ */
/* Metrics: the numeric columns of sweep.csv                           */
/* ------------------------------------------------------------------ */

typedef struct sw_metric {
  const char *name;   /* column name and --metric NAME */
  const char *parent; /* object of summary.json holding it, NULL top level */
  const char *label;  /* axis label */
  const char *unit;   /* base unit; "" when dimensionless */
  bool prefix;        /* the unit takes SI prefixes (ms, GB, TFLOP/s) */
} sw_metric_t;

static const sw_metric_t metrics[] = {
    {"iteration_time_s", NULL, "iteration time", "s", true},
    {"bubble_fraction", NULL, "bubble fraction", "", false},
    {"bubble_overhead", NULL, "bubble overhead", "", false},
    {"samples_per_s", "throughput", "throughput", "samples/s", true},
    {"tokens_per_s", "throughput", "throughput", "tokens/s", true},
    {"flops_per_s_per_gpu", "throughput", "model FLOP/s per GPU", "FLOP/s", true},
    {"mfu", "throughput", "model FLOPs utilisation (MFU)", "", false},
    {"p2p_bytes", NULL, "point-to-point traffic", "B", true},
    /* the largest devices[].peak_memory_bytes */
    {"max_peak_memory_bytes", NULL, "largest peak memory of a device", "B", true},
};
#define N_MET (int)(sizeof metrics / sizeof metrics[0])
#define MET_MAXPEAK (N_MET - 1)

/* ------------------------------------------------------------------ */
/* Growable strings                                                    */
/* ------------------------------------------------------------------ */

typedef struct sb {
  char *s;
  size_t n, cap;
} sb_t;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fputs("trainsim: error: out of memory\n", stderr);
    exit(EX_OSERR);
  }
  return q;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xrealloc(NULL, n), s, n);
}

static void sb_putn(sb_t *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->s = xrealloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void sb_puts(sb_t *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    sb_putn(b, tmp, (size_t)n);
    return;
  }
  char *big = xrealloc(NULL, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_putn(b, big, (size_t)n);
  free(big);
}

/* ------------------------------------------------------------------ */
/* CSV                                                                 */
/* ------------------------------------------------------------------ */

/* Appends one CSV field: quoted (with doubled quotes) when it holds a
** comma, a quote, a line break or leading/trailing blanks.  Line breaks
** become spaces, so a row is always one line. */
static void csv_put(sb_t *b, const char *s) {
  size_t n = strlen(s);
  bool q = strpbrk(s, ",\"\r\n") || (n && (s[0] == ' ' || s[n - 1] == ' '));
  if (!q) {
    sb_putn(b, s, n);
    return;
  }
  sb_putn(b, "\"", 1);
  for (const char *p = s; *p; p++) {
    if (*p == '"')
      sb_putn(b, "\"\"", 2);
    else if (*p == '\n' || *p == '\r')
      sb_putn(b, " ", 1);
    else
      sb_putn(b, p, 1);
  }
  sb_putn(b, "\"", 1);
}

/* Splits one CSV line (without its newline) into fields, in place: the
** fields point into line, which is rewritten.  Returns the field count, or
** -1 for a malformed line (an unterminated quote, text after a closing
** quote) or more than max fields. */
static int csv_split(char *line, char **f, int max) {
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

/* ------------------------------------------------------------------ */
/* The sweep                                                           */
/* ------------------------------------------------------------------ */

typedef struct sw_vary {
  char *path;
  int n;
  char **val;  /* [n] as given */
} sw_vary_t;

typedef struct sw_point {
  char *line;  /* the CSV row with its '\n'; NULL while not done */
  bool ok;
  double m[N_MET]; /* NAN where the row has no value */
  char *error;     /* failed point: the message */
} sw_point_t;

typedef struct sweep {
  const char *job;     /* NULL: the default job */
  const char **sets;   /* fixed --set strings */
  int n_sets;
  sw_vary_t *v;
  int nv;
  long n;              /* points */
  sw_point_t *pt;      /* [n] */
  int metric;          /* plotted: index into metrics[] */
} sweep_t;

static void sweep_free(sweep_t *s) {
  for (int k = 0; k < s->nv; k++) {
    free(s->v[k].path);
    for (int j = 0; j < s->v[k].n; j++) free(s->v[k].val[j]);
    free(s->v[k].val);
  }
  free(s->v);
  for (long i = 0; s->pt && i < s->n; i++) {
    free(s->pt[i].line);
    free(s->pt[i].error);
  }
  free(s->pt);
  free(s->sets);
}

/* Index of the value of vary k at point i (the last vary varies fastest). */
static int point_val(const sweep_t *s, long i, int k) {
  for (int j = s->nv - 1; j > k; j--) i /= s->v[j].n;
  return (int)(i % s->v[k].n);
}

/* "PATH=VALUE" of vary k at point i; caller frees. */
static char *point_set(const sweep_t *s, long i, int k) {
  sb_t b = {0};
  sb_puts(&b, s->v[k].path);
  sb_puts(&b, "=");
  sb_puts(&b, s->v[k].val[point_val(s, i, k)]);
  return b.s;
}

static void csv_header(const sweep_t *s, sb_t *b) {
  for (int k = 0; k < s->nv; k++) {
    csv_put(b, s->v[k].path);
    sb_puts(b, ",");
  }
  sb_puts(b, "status");
  for (int m = 0; m < N_MET; m++) {
    sb_puts(b, ",");
    sb_puts(b, metrics[m].name);
  }
  sb_puts(b, ",all_fit,error\n");
}

static void row_values(const sweep_t *s, long i, sb_t *b) {
  for (int k = 0; k < s->nv; k++) {
    csv_put(b, s->v[k].val[point_val(s, i, k)]);
    sb_puts(b, ",");
  }
}

/* The row of a simulated point, from its summary.json tree. */
static void row_ok(const sweep_t *s, long i, const cJSON *sum, sb_t *b) {
  row_values(s, i, b);
  sb_puts(b, "ok");
  for (int m = 0; m < N_MET; m++) {
    const cJSON *x = NULL;
    if (m == MET_MAXPEAK) {
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
      const cJSON *o = metrics[m].parent ? cJSON_GetObjectItemCaseSensitive(sum, metrics[m].parent) : sum;
      x = cJSON_GetObjectItemCaseSensitive(o, metrics[m].name);
    }
    sb_puts(b, ",");
    if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) sb_printf(b, "%.17g", x->valuedouble);
  }
  const cJSON *d, *devs = cJSON_GetObjectItemCaseSensitive(sum, "devices");
  bool fit = true;
  cJSON_ArrayForEach(d, devs) fit = fit && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "fits"));
  sb_puts(b, fit ? ",true,\n" : ",false,\n");
}

/* The row of a point that failed with msg. */
static void row_error(const sweep_t *s, long i, const char *msg, sb_t *b) {
  row_values(s, i, b);
  sb_puts(b, "error");
  for (int m = 0; m <= N_MET; m++) sb_puts(b, ",");
  sb_puts(b, ",");
  csv_put(b, msg);
  sb_puts(b, "\n");
}

/* Point i of s whose key fields (the varied values) are f[0..nv-1]; -1
** when they are not a point of s. */
static long point_of(const sweep_t *s, char **f) {
  long i = 0;
  for (int k = 0; k < s->nv; k++) {
    int j = 0;
    while (j < s->v[k].n && strcmp(s->v[k].val[j], f[k])) j++;
    if (j == s->v[k].n) return -1;
    i = i * s->v[k].n + j;
  }
  return i;
}

/* Takes line (a complete row with its '\n') as the row of its point unless
** that point already has one.  Returns false when the line is not a row of
** this sweep (wrong field count, unknown values, bad status). */
static bool point_take(sweep_t *s, const char *line) {
  size_t len = strlen(line);
  if (len < 2 || line[len - 1] != '\n') return false;
  int want = s->nv + 1 + N_MET + 2;
  char *copy = xstrdup(line), **f = xrealloc(NULL, (size_t)(want + 1) * sizeof *f);
  copy[len - 1] = 0;
  bool good = false;
  long i;
  if (csv_split(copy, f, want + 1) != want || (i = point_of(s, f)) < 0) goto out;
  sw_point_t *p = &s->pt[i];
  const char *status = f[s->nv];
  if (strcmp(status, "ok") && strcmp(status, "error")) goto out;
  good = true;
  if (p->line) goto out; /* the first row of a point wins */
  p->ok = strcmp(status, "ok") == 0;
  for (int m = 0; m < N_MET; m++) {
    char *end;
    const char *t = f[s->nv + 1 + m];
    p->m[m] = *t ? strtod(t, &end) : NAN;
    if (*t && *end) p->m[m] = NAN;
  }
  p->error = p->ok ? NULL : xstrdup(f[want - 1]);
  p->line = xstrdup(line);
out:
  free(f);
  free(copy);
  return good;
}

/* ------------------------------------------------------------------ */
/* Parsing --vary                                                      */
/* ------------------------------------------------------------------ */

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("trainsim: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (see trainsim --help)\n", stderr);
  va_end(ap);
  return EX_USAGE;
}

/* Adds "--vary PATH=V1,V2,...": values split at commas outside brackets,
** braces and double quotes, so JSON arrays can be values. */
static int vary_add(sweep_t *s, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) return usage_err("--vary '%s': expected PATH=V1,V2,...", arg);
  char *path = strndup(arg, (size_t)(eq - arg));
  for (int k = 0; k < s->nv; k++)
    if (!strcmp(s->v[k].path, path)) {
      usage_err("--vary '%s': path varied twice", path);
      free(path);
      return EX_USAGE;
    }
  const char *list = eq + 1;
  if (!*list) {
    usage_err("--vary '%s': empty value list", arg);
    free(path);
    return EX_USAGE;
  }
  sw_vary_t v = {path, 0, NULL};
  int depth = 0, rc = 0;
  bool quote = false;
  const char *start = list;
  for (const char *p = list;; p++) {
    if (*p && quote) {
      if (*p == '\\' && p[1]) p++;
      else if (*p == '"') quote = false;
      continue;
    }
    if (*p == '"') quote = true;
    else if (*p == '[' || *p == '{') depth++;
    else if ((*p == ']' || *p == '}') && depth > 0) depth--;
    if (*p && (*p != ',' || depth > 0)) continue;
    char *val = strndup(start, (size_t)(p - start));
    if (!*val) {
      rc = usage_err("--vary '%s': value %d is empty", arg, v.n + 1);
    } else {
      for (int j = 0; j < v.n && !rc; j++)
        if (!strcmp(v.val[j], val)) rc = usage_err("--vary '%s': value '%s' given twice", arg, val);
    }
    if (rc) {
      free(val);
      break;
    }
    v.val = xrealloc(v.val, (size_t)(v.n + 1) * sizeof *v.val);
    v.val[v.n++] = val;
    if (!*p) break;
    start = p + 1;
  }
  if (rc) {
    for (int j = 0; j < v.n; j++) free(v.val[j]);
    free(v.val);
    free(path);
    return rc;
  }
  s->v = xrealloc(s->v, (size_t)(s->nv + 1) * sizeof *s->v);
  s->v[s->nv++] = v;
  return 0;
}

/* Rewrites "--set 'PATH" (or "--set PATH") in a job-loading message into
** "--vary ...", since the user gave PATH with --vary. */
static void say_vary(char *msg, size_t cap, const char *path) {
  char pat[600];
  for (int q = 0; q < 2; q++) {
    snprintf(pat, sizeof pat, q ? "--set %s" : "--set '%s", path);
    char *p = strstr(msg, pat);
    if (!p) continue;
    size_t tail = strlen(p + 5) + 1;
    if (strlen(msg) + 2 >= cap) return;
    memmove(p + 6, p + 5, tail);
    memcpy(p, "--vary", 6);
    return;
  }
}

/* Every varied value must load with the fixed --set strings, and the job
** with them alone.  An error of the job's rules (EX_DATAERR) may depend on
** the other varied values and is left to the point's row. */
static int sweep_precheck(const sweep_t *s) {
  const char **sets = xrealloc(NULL, (size_t)(s->n_sets + 1) * sizeof *sets);
  for (int k = 0; k < s->n_sets; k++) sets[k] = s->sets[k];
  ts_err_t err = {0};
  ts_job_t *job = NULL;
  int rc = ts_job_load(s->job, sets, s->n_sets, &job, &err);
  ts_job_free(job);
  for (int k = 0; k < s->nv && !rc; k++) {
    for (int j = 0; j < s->v[k].n && !rc; j++) {
      sb_t b = {0};
      sb_printf(&b, "%s=%s", s->v[k].path, s->v[k].val[j]);
      sets[s->n_sets] = b.s;
      job = NULL;
      rc = ts_job_load(s->job, sets, s->n_sets + 1, &job, &err);
      ts_job_free(job);
      free(b.s);
      if (rc == EX_DATAERR) {
        rc = 0;
        err = (ts_err_t){0};
      }
      if (rc) say_vary(err.msg, sizeof err.msg, s->v[k].path);
    }
  }
  free(sets);
  if (rc) fprintf(stderr, "trainsim: error: %s\n", err.msg);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Running points                                                      */
/* ------------------------------------------------------------------ */

static bool write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}

/* Simulates point i.  Returns 0 with its row in b (ok, or error for a job
** the rules reject and a schedule that fails or deadlocks), or the
** sysexits code of an error that must stop the sweep, with the message in
** b. */
static int point_compute(const sweep_t *s, long i, sb_t *b) {
  const char **sets = xrealloc(NULL, (size_t)(s->n_sets + s->nv) * sizeof *sets);
  char **own = xrealloc(NULL, (size_t)(s->nv ? s->nv : 1) * sizeof *own);
  for (int k = 0; k < s->n_sets; k++) sets[k] = s->sets[k];
  for (int k = 0; k < s->nv; k++) sets[s->n_sets + k] = own[k] = point_set(s, i, k);
  ts_err_t err = {0};
  ts_job_t *job = NULL;
  ts_outcome_t o;
  memset(&o, 0, sizeof o);
  int rc = ts_job_load(s->job, sets, s->n_sets + s->nv, &job, &err);
  if (!rc) rc = ts_simulate(job, &o, &err);
  if (!rc) {
    /* Through the text of summary.json: cJSON prints some doubles with 15
    ** digits that do not read back exactly, and the row must hold what a
    ** `trainsim run` of the point (and --collect) reads. */
    cJSON *tree = ts__summary_json(&o.r);
    char *text = cJSON_Print(tree);
    cJSON *sum = text ? cJSON_Parse(text) : NULL;
    if (sum) {
      row_ok(s, i, sum, b);
    } else {
      sb_puts(b, "cannot print the summary (out of memory)");
      rc = EX_OSERR;
    }
    cJSON_Delete(sum);
    free(text);
    cJSON_Delete(tree);
  } else if (rc == EX_DATAERR || (rc == EX_SOFTWARE && !strncmp(err.msg, "schedule '", 10))) {
    /* the job's rules, or the schedule's own error or deadlock: an outcome
    ** of the point.  A simulation that died (a signal, a crash) is not. */
    row_error(s, i, err.msg, b);
    rc = 0;
  } else {
    for (int k = 0; k < s->nv; k++) say_vary(err.msg, sizeof err.msg, s->v[k].path);
    sb_puts(b, err.msg);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
  for (int k = 0; k < s->nv; k++) free(own[k]);
  free(own);
  free(sets);
  return rc;
}

typedef struct sw_slot {
  pid_t pid;
  int fd;
  long point;
  sb_t out;
} sw_slot_t;

typedef struct sw_progress {
  bool bar;          /* stderr is a terminal and not --quiet */
  long done, total, failed;
  struct timespec t0;
} sw_progress_t;

static void progress_show(const sw_progress_t *pr) {
  if (!pr->bar) return;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  double el = (double)(t.tv_sec - pr->t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - pr->t0.tv_nsec);
  char bar[41];
  int fill = pr->total ? (int)(40 * pr->done / pr->total) : 40;
  for (int k = 0; k < 40; k++) bar[k] = k < fill ? '#' : '.';
  bar[40] = 0;
  fprintf(stderr, "\rsweep [%s] %ld/%ld points, %ld failed, %.1f s ", bar, pr->done, pr->total,
          pr->failed, el);
  if (pr->done == pr->total) fputc('\n', stderr);
  fflush(stderr);
}

/* Runs the points todo[0..n_todo-1] with at most jobs workers, appending
** each row to part_fd (one write per row) and taking it into s.  Returns 0,
** or the code of the first error that stopped the sweep (printed). */
static int run_points(sweep_t *s, const long *todo, long n_todo, int jobs, int part_fd,
                      const char *part_path, sw_progress_t *pr) {
  sw_slot_t *slot = calloc((size_t)jobs, sizeof *slot);
  struct pollfd *pfd = calloc((size_t)jobs, sizeof *pfd);
  if (!slot || !pfd) {
    fputs("trainsim: error: out of memory\n", stderr);
    exit(EX_OSERR);
  }
  long next = 0;
  int active = 0, stop = 0;
  char stop_msg[1200] = "";
  for (int k = 0; k < jobs; k++) slot[k].pid = -1;
  for (;;) {
    while (!stop && next < n_todo && active < jobs) {
      int k = 0;
      while (slot[k].pid >= 0) k++;
      int p[2];
      if (pipe(p)) {
        stop = EX_OSERR;
        snprintf(stop_msg, sizeof stop_msg, "pipe: %s", strerror(errno));
        break;
      }
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) {
        close(p[0]);
        close(p[1]);
        stop = EX_OSERR;
        snprintf(stop_msg, sizeof stop_msg, "fork: %s", strerror(errno));
        break;
      }
      if (pid == 0) { /* the worker: one point, its row on the pipe */
        close(p[0]);
        close(part_fd);
        for (int j = 0; j < jobs; j++)
          if (slot[j].pid >= 0) close(slot[j].fd);
        signal(SIGPIPE, SIG_DFL);
        sb_t b = {0};
        int rc = point_compute(s, todo[next], &b);
        bool ok = write_all(p[1], b.s ? b.s : "", b.n);
        _exit(ok ? rc : EX_IOERR);
      }
      close(p[1]);
      slot[k] = (sw_slot_t){pid, p[0], todo[next], {0}};
      next++;
      active++;
    }
    if (!active) break;
    int n = 0;
    int map[SW_MAX_JOBS];
    for (int k = 0; k < jobs; k++)
      if (slot[k].pid >= 0) {
        pfd[n] = (struct pollfd){slot[k].fd, POLLIN, 0};
        map[n++] = k;
      }
    if (poll(pfd, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      stop = stop ? stop : EX_OSERR;
      break;
    }
    for (int q = 0; q < n; q++) {
      if (!pfd[q].revents) continue;
      sw_slot_t *sl = &slot[map[q]];
      char buf[4096];
      ssize_t got = read(sl->fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got > 0) {
        sb_putn(&sl->out, buf, (size_t)got);
        continue;
      }
      /* end of the worker's output: reap it */
      close(sl->fd);
      int st = 0;
      while (waitpid(sl->pid, &st, 0) < 0 && errno == EINTR) {
      }
      active--;
      sl->pid = -1;
      const char *text = sl->out.s ? sl->out.s : "";
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && point_take(s, text)) {
        if (!write_all(part_fd, text, strlen(text)) && !stop) {
          stop = EX_IOERR;
          snprintf(stop_msg, sizeof stop_msg, "%.900s: write failed: %s", part_path, strerror(errno));
        }
        pr->done++;
        if (!s->pt[sl->point].ok) pr->failed++;
        progress_show(pr);
      } else if (!stop) {
        if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
          stop = WEXITSTATUS(st);
          snprintf(stop_msg, sizeof stop_msg, "%.1100s", text);
        } else {
          stop = EX_SOFTWARE;
          snprintf(stop_msg, sizeof stop_msg, "sweep: the worker of point %ld %s", sl->point + 1,
                   WIFSIGNALED(st) ? "was killed by a signal" : "returned no row");
        }
      }
      free(sl->out.s);
      sl->out = (sb_t){0};
    }
  }
  if (stop) {
    if (pr->bar) fputc('\n', stderr);
    fprintf(stderr, "trainsim: error: %s\n", stop_msg[0] ? stop_msg : "sweep stopped");
  }
  free(slot);
  free(pfd);
  return stop;
}

/* ------------------------------------------------------------------ */
/* sweep.csv                                                           */
/* ------------------------------------------------------------------ */

static int write_csv(const void *arg, FILE *f) {
  const sweep_t *s = arg;
  sb_t h = {0};
  csv_header(s, &h);
  fputs(h.s, f);
  free(h.s);
  for (long i = 0; i < s->n; i++) fputs(s->pt[i].line, f);
  return ferror(f) ? EX_IOERR : 0;
}

/* Reads the rows of an earlier run from path (sweep.csv or the partial
** file) into s.  A missing file is no error; a file whose header is not
** this sweep's is (EX_CANTCREAT: the directory holds another sweep).
** Lines that are not rows of s (a torn last line) are skipped. */
static int read_rows(sweep_t *s, const char *path, ts_err_t *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 0;
    return ts_err_set(err, EX_NOINPUT, "%s: cannot read: %s", path, strerror(errno));
  }
  sb_t h = {0};
  csv_header(s, &h);
  char *line = NULL;
  size_t cap = 0;
  ssize_t got = getline(&line, &cap, f);
  int rc = 0;
  if (got > 0 && strcmp(line, h.s)) {
    line[strcspn(line, "\n")] = 0;
    rc = ts_err_set(err, EX_CANTCREAT,
                    "%s: holds another sweep (columns '%.300s'); remove it or choose another -o DIR",
                    path, line);
  }
  while (!rc && getline(&line, &cap, f) > 0) point_take(s, line);
  free(line);
  free(h.s);
  fclose(f);
  return rc;
}

/* ------------------------------------------------------------------ */
/* sweep.svg                                                           */
/* ------------------------------------------------------------------ */

#define P_LEFT 96.0
#define P_TOP 78.0
#define P_W 620.0
#define P_H 380.0
#define P_LEGEND_X (P_LEFT + P_W + 28.0)
#define P_FONT "DejaVu Sans, Verdana, Arial, Helvetica, sans-serif"

/* Okabe & Ito (2008) colours, yellow left out (too pale on white). */
static const char *const series_rgb[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                         "#E69F00", "#56B4E9", "#000000"};
#define N_RGB 7
static const char *const series_dash[] = {"", " stroke-dasharray=\"7 4\"", " stroke-dasharray=\"2 3\""};

static void xml_put(FILE *f, const char *s) { ts__xml_put(f, s, strlen(s)); }

/* A varied value as a number in SI base units: "50GBps", "2us", "312Tf",
** "16".  False for anything else ("gpipe", "true", "[1,2]"). */
static bool value_number(const char *s, double *out) {
  static const struct { const char *suffix; double mul; } U[] = {
      {"", 1},          {"Bps", 1},       {"kBps", 1e3},    {"KBps", 1e3},    {"MBps", 1e6},
      {"GBps", 1e9},    {"TBps", 1e12},   {"bps", 0.125},   {"kbps", 125},    {"Kbps", 125},
      {"Mbps", 1.25e5}, {"Gbps", 1.25e8}, {"Tbps", 1.25e11}, {"s", 1},        {"ms", 1e-3},
      {"us", 1e-6},     {"ns", 1e-9},     {"f", 1},         {"kf", 1e3},      {"Mf", 1e6},
      {"Gf", 1e9},      {"Tf", 1e12},     {"Pf", 1e15}};
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !isfinite(v)) return false;
  for (size_t i = 0; i < sizeof U / sizeof U[0]; i++)
    if (!strcmp(end, U[i].suffix)) {
      *out = v * U[i].mul;
      return true;
    }
  return false;
}

/* The unit of a varied path, for its axis label ("" when none applies). */
static const char *path_unit(const char *path) {
  const char *last = strrchr(path, '.');
  last = last ? last + 1 : path;
  if (!strncmp(path, "platform.", 9)) {
    if (!strcmp(last, "bandwidth")) return "B/s";
    if (!strcmp(last, "latency")) return "s";
    if (!strcmp(last, "speed")) return "FLOP/s";
  }
  size_t n = strlen(last);
  if (n > 2 && !strcmp(last + n - 2, "_s")) return "s";
  if (strstr(last, "bytes")) return "B";
  if (!strcmp(last, "seq_len")) return "tokens";
  if (!strcmp(last, "micro_batch_size")) return "samples";
  return "";
}

static const char *si_prefix(int e3) {
  static const char *const p[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
  int k = e3 / 3 + 3;
  return k >= 0 && k < 10 ? p[k] : "";
}

/* The 1-2-5 step giving about target intervals over span. */
static double nice_step(double span, double target) {
  double raw = span / target, mag = pow(10.0, floor(log10(raw))), norm = raw / mag;
  return (norm <= 1.0 ? 1.0 : norm <= 2.0 ? 2.0 : norm <= 5.0 ? 5.0 : 10.0) * mag;
}

/* A y axis: linear with 1-2-5 ticks scaled by 10^e3 (the prefix goes in
** the label), or logarithmic with ticks at powers of ten. */
typedef struct sw_axis {
  bool log;
  double lo, hi;  /* axis range, data units (log: decades' exponents) */
  double step;    /* linear tick step */
  int e3;         /* linear: labels are values / 10^e3 */
} sw_axis_t;

static double axis_pos(const sw_axis_t *a, double v) {
  double t = a->log ? log10(v) : v;
  return (t - a->lo) / (a->hi - a->lo);
}

static void axis_fit(sw_axis_t *a, double lo, double hi, bool prefix) {
  a->log = lo > 0 && hi / lo > 100.0;
  if (a->log) {
    a->lo = floor(log10(lo) + 1e-9);
    a->hi = ceil(log10(hi) - 1e-9);
    if (a->hi <= a->lo) a->hi = a->lo + 1;
    return;
  }
  if (hi == lo) {
    double d = lo != 0 ? fabs(lo) * 0.1 : 1.0;
    lo -= d;
    hi += d;
  }
  a->step = nice_step(hi - lo, 5.0);
  a->lo = floor(lo / a->step + 1e-9) * a->step;
  a->hi = ceil(hi / a->step - 1e-9) * a->step;
  double big = fmax(fabs(a->lo), fabs(a->hi));
  a->e3 = prefix && big > 0 ? (int)floor(log10(big) / 3.0) * 3 : 0;
  if (a->e3 < -9) a->e3 = -9;
  if (a->e3 > 15) a->e3 = 15;
}

/* "12.5 G" style: v with an SI prefix and up to 3 significant digits. */
static void fmt_si(char *buf, size_t n, double v, const char *unit, bool prefix) {
  int e3 = 0;
  if (prefix && v != 0) {
    e3 = (int)floor(log10(fabs(v)) / 3.0) * 3;
    if (e3 < -9) e3 = -9;
    if (e3 > 15) e3 = 15;
  }
  snprintf(buf, n, "%.3g%s%s%s", v / pow(10.0, e3), *unit || e3 ? " " : "", si_prefix(e3), unit);
}

static double point_metric(const sweep_t *s, long i, bool log) {
  const sw_point_t *p = &s->pt[i];
  double v = p->ok ? p->m[s->metric] : NAN;
  return isfinite(v) && (!log || v > 0) ? v : NAN;
}

/* Label of series r (a combination of the values of varies 1..nv-1). */
static void series_label(const sweep_t *s, long r, sb_t *b) {
  long rest = 1;
  for (int k = 1; k < s->nv; k++) rest *= s->v[k].n;
  for (int k = 1; k < s->nv; k++) {
    rest /= s->v[k].n;
    if (k > 1) sb_puts(b, ", ");
    sb_puts(b, s->v[k].val[(r / rest) % s->v[k].n]);
  }
}

/* Line width of series r of n: the first drawn widest, so that series with
** equal values (drawn over each other) all stay visible. */
static double series_width(long n, long r) {
  if (n < 2) return 2.0;
  long k = n - 1 - r;
  return 2.0 + 1.8 * (double)(k < 4 ? k : 4) / (double)(n - 1 < 4 ? n - 1 : 4);
}

/* Log x axis: positive values spanning more than two decades, or more than
** one when they grow geometrically (each at least 1.5 times the one before
** it, in sorted order: 1.5625, 3.125, ... 50 GB/s, or 1, 2, 4, ... 128). */
static bool x_geometric(const double *v, int n, double lo, double hi) {
  if (hi / lo > 100.0) return true;
  if (hi / lo <= 10.0 || n < 3) return false;
  double *s = xrealloc(NULL, (size_t)n * sizeof *s);
  memcpy(s, v, (size_t)n * sizeof *s);
  for (int i = 1; i < n; i++) /* insertion sort: a handful of values */
    for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
      double t = s[j];
      s[j] = s[j - 1];
      s[j - 1] = t;
    }
  bool geo = true;
  for (int i = 1; i < n && geo; i++) geo = s[i] >= 1.5 * s[i - 1];
  free(s);
  return geo;
}

static int write_svg(const void *arg, FILE *f) {
  const sweep_t *s = arg;
  const sw_metric_t *M = &metrics[s->metric];
  const sw_vary_t *v0 = &s->v[0];
  int nx = v0->n;
  long n_series = s->n / nx;

  /* x: numeric (log when the values span more than two decades) or one
  ** slot per value */
  double *xv = xrealloc(NULL, (size_t)nx * sizeof *xv), *xp = xrealloc(NULL, (size_t)nx * sizeof *xp);
  bool numeric = true;
  for (int j = 0; j < nx && numeric; j++) numeric = value_number(v0->val[j], &xv[j]);
  double xmin = INFINITY, xmax = -INFINITY;
  if (numeric)
    for (int j = 0; j < nx; j++) {
      xmin = fmin(xmin, xv[j]);
      xmax = fmax(xmax, xv[j]);
    }
  bool xlog = numeric && xmin > 0 && x_geometric(xv, nx, xmin, xmax);
  for (int j = 0; j < nx; j++) {
    double t;
    if (!numeric || xmax == xmin)
      t = numeric ? 0.5 : (j + 0.5) / nx;
    else if (xlog)
      t = 0.04 + 0.92 * (log10(xv[j]) - log10(xmin)) / (log10(xmax) - log10(xmin));
    else
      t = 0.04 + 0.92 * (xv[j] - xmin) / (xmax - xmin);
    xp[j] = P_LEFT + t * P_W;
  }

  /* y: over the plotted values */
  double ymin = INFINITY, ymax = -INFINITY;
  long failed = 0;
  for (long i = 0; i < s->n; i++) {
    if (!s->pt[i].ok) failed++;
    double y = point_metric(s, i, false);
    if (!isnan(y)) {
      ymin = fmin(ymin, y);
      ymax = fmax(ymax, y);
    }
  }
  bool have = ymin <= ymax;
  sw_axis_t ya = {0};
  if (have) axis_fit(&ya, ymin, ymax, M->prefix);

  /* legend rows and tick label rotation decide the size */
  int legend_rows = s->nv > 1 ? (int)n_series + 1 : 0;
  double longest = 0, slot = P_W;
  for (int j = 0; j < nx; j++) {
    longest = fmax(longest, (double)strlen(v0->val[j]));
    for (int k = 0; k < j; k++)
      if (fabs(xp[j] - xp[k]) > 0.01) slot = fmin(slot, fabs(xp[j] - xp[k]));
  }
  bool rotate = longest * 6.6 + 6 > slot;
  /* labels closer than this to the last one drawn are left out */
  double label_gap = rotate ? 13.0 : longest * 6.6 + 6;
  double below = rotate ? 30.0 + longest * 6.6 * 0.64 : 30.0;
  double width = P_LEGEND_X + 230.0, height = P_TOP + P_H + below + 48.0;
  if (P_TOP + 18.0 * legend_rows + 20.0 > height) height = P_TOP + 18.0 * legend_rows + 20.0;
  height = ceil(height);

  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n",
          width, height, width, height, P_FONT);
  fputs("<desc>trainsim " TS_VERSION " sweep: one metric of every point against the first varied "
        "path, one line per value of the other varied paths.</desc>\n", f);
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width, height);

  /* title and subtitle */
  fprintf(f, "<text x=\"%.2f\" y=\"26.00\" font-size=\"16\" font-weight=\"bold\" fill=\"#111111\">", P_LEFT);
  xml_put(f, M->label);
  fputs(" against ", f);
  xml_put(f, v0->path);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%.2f\" y=\"46.00\" font-size=\"12\" fill=\"#555555\">trainsim sweep: %ld point%s",
          P_LEFT, s->n, s->n == 1 ? "" : "s");
  if (s->nv > 1) {
    fputs(", one line per ", f);
    for (int k = 1; k < s->nv; k++) {
      if (k > 1) fputs(" \xC3\x97 ", f);
      xml_put(f, s->v[k].path);
    }
  }
  if (failed)
    fprintf(f, "; %ld failed (\xC3\x97 at the bottom, hover for the error)", failed);
  fputs("</text>\n", f);

  /* frame, grid, y ticks */
  fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#fbfbfb\" "
             "stroke=\"#333333\" stroke-width=\"1\"/>\n",
          P_LEFT, P_TOP, P_W, P_H);
  char lab[128];
  if (have) {
    fputs("<g class=\"yticks\" font-size=\"11\" text-anchor=\"end\" fill=\"#222222\">\n", f);
    if (ya.log) {
      for (int e = (int)ya.lo; e <= (int)ya.hi; e++) {
        double y = P_TOP + P_H - P_H * (e - ya.lo) / (ya.hi - ya.lo);
        fmt_si(lab, sizeof lab, pow(10.0, e), "", M->prefix);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                P_LEFT, y, P_LEFT + P_W, y);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n", P_LEFT - 8.0, y + 4.0, lab);
      }
    } else {
      double sc = pow(10.0, ya.e3), st = ya.step / sc;
      int dec = st >= 1.0 ? 0 : (int)ceil(-log10(st) - 1e-9);
      if (dec > 9) dec = 9;
      int nt = (int)floor((ya.hi - ya.lo) / ya.step + 0.5);
      for (int t = 0; t <= nt; t++) {
        double val = ya.lo + t * ya.step, y = P_TOP + P_H - P_H * t / nt;
        if (fabs(val) < ya.step * 1e-9) val = 0;
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n",
                P_LEFT, y, P_LEFT + P_W, y);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", P_LEFT - 8.0, y + 4.0, dec, val / sc + 0.0);
      }
    }
    fputs("</g>\n", f);
  }
  /* y label */
  fprintf(f, "<text x=\"0\" y=\"0\" transform=\"translate(%.2f,%.2f) rotate(-90)\" font-size=\"12\" "
             "text-anchor=\"middle\" fill=\"#222222\">",
          24.0, P_TOP + P_H / 2.0);
  xml_put(f, M->label);
  if (have && !ya.log && (*M->unit || ya.e3))
    fprintf(f, " (%s%s)", si_prefix(ya.e3), *M->unit ? M->unit : "");
  else if (*M->unit || (have && ya.log))
    fprintf(f, " (%s%s%s)", M->unit, *M->unit && have && ya.log ? ", " : "",
            have && ya.log ? "log scale" : "");
  fputs("</text>\n", f);

  /* x ticks, labelled with the values as given where they do not crowd */
  bool *labelled = xrealloc(NULL, (size_t)nx * sizeof *labelled);
  memset(labelled, 0, (size_t)nx * sizeof *labelled);
  fputs("<g class=\"xticks\" font-size=\"11\" fill=\"#222222\">\n", f);
  for (int j = 0; j < nx; j++) {
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#dddddd\"/>\n", xp[j],
            P_TOP, xp[j], P_TOP + P_H);
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", xp[j],
            P_TOP + P_H, xp[j], P_TOP + P_H + 5.0);
    bool crowded = false;
    for (int k = 0; k < j && !crowded; k++)
      crowded = labelled[k] && fabs(xp[j] - xp[k]) < label_gap;
    if (crowded) continue;
    labelled[j] = true;
    if (rotate)
      fprintf(f, "<text x=\"0\" y=\"0\" text-anchor=\"end\" transform=\"translate(%.2f,%.2f) rotate(-40)\">",
              xp[j] + 3.0, P_TOP + P_H + 16.0);
    else
      fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", xp[j], P_TOP + P_H + 19.0);
    xml_put(f, v0->val[j]);
    fputs("</text>\n", f);
  }
  fputs("</g>\n", f);
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222222\">",
          P_LEFT + P_W / 2.0, P_TOP + P_H + below + 22.0);
  xml_put(f, v0->path);
  const char *xu = path_unit(v0->path);
  if (*xu || xlog) fprintf(f, " (%s%s%s)", xu, *xu && xlog ? ", " : "", xlog ? "log scale" : "");
  fputs("</text>\n", f);

  if (!have)
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"14\" text-anchor=\"middle\" fill=\"#555555\">"
               "no value of %s to plot</text>\n",
            P_LEFT + P_W / 2.0, P_TOP + P_H / 2.0, M->name);

  /* one line per series, broken where a point has no value */
  for (long r = 0; r < n_series && have; r++) {
    const char *rgb = series_rgb[r % N_RGB];
    const char *dash = series_dash[(r / N_RGB) % 3];
    double lw = series_width(n_series, r);
    fprintf(f, "<g class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\"%s>\n", rgb, lw, dash);
    bool open = false;
    for (int j = 0; j < nx; j++) {
      double y = point_metric(s, (long)j * n_series + r, ya.log);
      if (isnan(y)) {
        if (open) fputs("\"/>\n", f);
        open = false;
        continue;
      }
      double py = P_TOP + P_H - P_H * axis_pos(&ya, y);
      fprintf(f, "%s%.2f,%.2f", open ? " " : "<polyline points=\"", xp[j], py);
      open = true;
    }
    if (open) fputs("\"/>\n", f);
    fputs("</g>\n", f);
    fprintf(f, "<g class=\"points\" fill=\"%s\">\n", rgb);
    for (int j = 0; j < nx; j++) {
      long i = (long)j * n_series + r;
      double y = point_metric(s, i, ya.log);
      if (isnan(y)) continue;
      double py = P_TOP + P_H - P_H * axis_pos(&ya, y);
      fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"><title>", xp[j], py, lw + 1.5);
      for (int k = 0; k < s->nv; k++) {
        if (k) fputs(", ", f);
        xml_put(f, s->v[k].path);
        fputc('=', f);
        xml_put(f, s->v[k].val[point_val(s, i, k)]);
      }
      fmt_si(lab, sizeof lab, y, M->unit, M->prefix);
      fprintf(f, ": %s %s</title></circle>\n", M->name, lab);
    }
    fputs("</g>\n", f);
  }

  /* failed points: a cross under the axis with the error */
  if (failed) {
    fputs("<g class=\"failed\" stroke=\"#C00000\" stroke-width=\"1.6\">\n", f);
    for (long i = 0; i < s->n; i++) {
      if (s->pt[i].ok) continue;
      double x = xp[point_val(s, i, 0)], y = P_TOP + P_H - 8.0;
      fprintf(f, "<path d=\"M%.2f,%.2f l6,6 m0,-6 l-6,6\"><title>", x - 3.0, y - 3.0);
      for (int k = 0; k < s->nv; k++) {
        if (k) fputs(", ", f);
        xml_put(f, s->v[k].path);
        fputc('=', f);
        xml_put(f, s->v[k].val[point_val(s, i, k)]);
      }
      fputs(": ", f);
      xml_put(f, s->pt[i].error ? s->pt[i].error : "failed");
      fputs("</title></path>\n", f);
    }
    fputs("</g>\n", f);
  }

  /* legend */
  if (s->nv > 1) {
    fputs("<g class=\"legend\" font-size=\"11\" fill=\"#222222\">\n", f);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" font-weight=\"bold\">", P_LEGEND_X, P_TOP + 4.0);
    for (int k = 1; k < s->nv; k++) {
      if (k > 1) fputs(", ", f);
      xml_put(f, s->v[k].path);
    }
    fputs("</text>\n", f);
    for (long r = 0; r < n_series; r++) {
      double y = P_TOP + 22.0 + 18.0 * r;
      fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                 "stroke-width=\"%.2f\"%s/>\n",
              P_LEGEND_X, y - 4.0, P_LEGEND_X + 22.0, y - 4.0, series_rgb[r % N_RGB],
              series_width(n_series, r), series_dash[(r / N_RGB) % 3]);
      fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\"/>\n", P_LEGEND_X + 11.0,
              y - 4.0, series_width(n_series, r) + 1.5, series_rgb[r % N_RGB]);
      fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">", P_LEGEND_X + 30.0, y);
      sb_t b = {0};
      series_label(s, r, &b);
      xml_put(f, b.s ? b.s : "");
      free(b.s);
      fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
  }
  fputs("</svg>\n", f);
  free(labelled);
  free(xv);
  free(xp);
  return ferror(f) ? EX_IOERR : 0;
}

/* Writes DIR/sweep.svg then DIR/sweep.csv, each atomically; when the CSV
** fails, the new SVG is removed (the rows stay in the partial file). */
static int write_results(const sweep_t *s, const char *dir, ts_err_t *err) {
  char csv[TS_PATH_MAX + 32], svg[TS_PATH_MAX + 32];
  snprintf(csv, sizeof csv, "%s/sweep.csv", dir);
  snprintf(svg, sizeof svg, "%s/sweep.svg", dir);
  int rc = ts_write_dir(dir, err);
  if (!rc) rc = ts_write_atomic(svg, write_svg, s, err);
  if (!rc && (rc = ts_write_atomic(csv, write_csv, s, err))) unlink(svg);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The table on stdout                                                 */
/* ------------------------------------------------------------------ */

static void print_table(const sweep_t *s, FILE *f) {
  if (s->n > SW_TABLE_MAX) return;
  int *w = xrealloc(NULL, (size_t)s->nv * sizeof *w);
  for (int k = 0; k < s->nv; k++) {
    w[k] = (int)strlen(s->v[k].path);
    for (int j = 0; j < s->v[k].n; j++)
      if ((int)strlen(s->v[k].val[j]) > w[k]) w[k] = (int)strlen(s->v[k].val[j]);
    if (w[k] > 40) w[k] = 40;
  }
  fputs(" ", f);
  for (int k = 0; k < s->nv; k++) fprintf(f, " %-*.*s", w[k], w[k], s->v[k].path);
  fprintf(f, "  %s\n", metrics[s->metric].name);
  for (long i = 0; i < s->n; i++) {
    fputs(" ", f);
    for (int k = 0; k < s->nv; k++) fprintf(f, " %-*.*s", w[k], w[k], s->v[k].val[point_val(s, i, k)]);
    const sw_point_t *p = &s->pt[i];
    if (!p->ok)
      fprintf(f, "  error: %.160s\n", p->error ? p->error : "");
    else if (isnan(p->m[s->metric]))
      fputs("  -\n", f);
    else
      fprintf(f, "  %.6g\n", p->m[s->metric]);
  }
  free(w);
}

/* ------------------------------------------------------------------ */
/* --emit-jobs and --collect                                           */
/* ------------------------------------------------------------------ */

/* Appends s quoted for sh when it holds anything but safe characters. */
static void sh_put(sb_t *b, const char *s) {
  bool safe = *s != 0;
  for (const char *p = s; *p && safe; p++)
    safe = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           strchr("_-./=:,+@%", *p);
  if (safe) {
    sb_puts(b, s);
    return;
  }
  sb_puts(b, "'");
  for (const char *p = s; *p; p++) {
    if (*p == '\'')
      sb_puts(b, "'\\''");
    else
      sb_putn(b, p, 1);
  }
  sb_puts(b, "'");
}

typedef struct sw_emit {
  const sweep_t *s;
  const char *dir;
  char exe[TS_PATH_MAX];
} sw_emit_t;

static int write_points(const void *arg, FILE *f) {
  const sweep_t *s = ((const sw_emit_t *)arg)->s;
  sb_t b = {0};
  sb_puts(&b, "index");
  for (int k = 0; k < s->nv; k++) {
    sb_puts(&b, ",");
    csv_put(&b, s->v[k].path);
  }
  sb_puts(&b, "\n");
  for (long i = 0; i < s->n; i++) {
    sb_printf(&b, "%ld", i + 1);
    for (int k = 0; k < s->nv; k++) {
      sb_puts(&b, ",");
      csv_put(&b, s->v[k].val[point_val(s, i, k)]);
    }
    sb_puts(&b, "\n");
  }
  fputs(b.s, f);
  free(b.s);
  return ferror(f) ? EX_IOERR : 0;
}

static int write_commands(const void *arg, FILE *f) {
  const sw_emit_t *e = arg;
  const sweep_t *s = e->s;
  for (long i = 0; i < s->n && !ferror(f); i++) {
    sb_t b = {0}, out = {0};
    sh_put(&b, e->exe);
    sb_puts(&b, " run");
    if (s->job) {
      sb_puts(&b, " ");
      sh_put(&b, s->job);
    }
    for (int k = 0; k < s->n_sets + s->nv; k++) {
      char *set = k < s->n_sets ? xstrdup(s->sets[k]) : point_set(s, i, k - s->n_sets);
      sb_puts(&b, " --set ");
      sh_put(&b, set);
      free(set);
    }
    sb_printf(&out, "%s/point-%ld", e->dir, i + 1);
    sb_puts(&b, " -o ");
    sh_put(&b, out.s);
    sb_puts(&b, " --quiet 2>");
    sb_puts(&out, ".err");
    sh_put(&b, out.s);
    sb_puts(&b, "\n");
    fputs(b.s, f);
    free(b.s);
    free(out.s);
  }
  return ferror(f) ? EX_IOERR : 0;
}

static int emit_jobs(const sweep_t *s, const char *dir, bool quiet) {
  sw_emit_t e = {s, dir, "trainsim"};
  ssize_t n = readlink("/proc/self/exe", e.exe, sizeof e.exe - 1);
  if (n > 0)
    e.exe[n] = 0;
  else
    snprintf(e.exe, sizeof e.exe, "trainsim");
  char pts[TS_PATH_MAX + 32], cmds[TS_PATH_MAX + 32];
  snprintf(pts, sizeof pts, "%s/points.csv", dir);
  snprintf(cmds, sizeof cmds, "%s/commands.txt", dir);
  ts_err_t err = {0};
  int rc = ts_write_dir(dir, &err);
  if (!rc) rc = ts_write_atomic(pts, write_points, &e, &err);
  if (!rc && (rc = ts_write_atomic(cmds, write_commands, &e, &err))) unlink(pts);
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

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  sb_t b = {0};
  char buf[65536];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) sb_putn(&b, buf, got);
  fclose(f);
  if (!b.s) b.s = xstrdup("");
  return b.s;
}

/* Rebuilds the sweep from DIR2/points.csv: the paths from the header, each
** path's values in order of first appearance, then checks that the rows
** are exactly the cartesian product in order. */
static int collect_points(sweep_t *s, const char *dir, ts_err_t *err) {
  char path[TS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/points.csv", dir);
  char *text = slurp(path);
  if (!text) return ts_err_set(err, EX_NOINPUT, "%s: cannot read: %s", path, strerror(errno));
  int rc = 0, line_no = 0, nf = 0, cap = 64;
  char **f = xrealloc(NULL, (size_t)cap * sizeof *f);
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
      nf = csv_split(line, f, cap);
      if (nf < 2 || strcmp(f[0], "index")) {
        rc = ts_err_set(err, EX_DATAERR, "%s:1: expected the header index,PATH,... of --emit-jobs", path);
        break;
      }
      s->nv = nf - 1;
      s->v = xrealloc(NULL, (size_t)s->nv * sizeof *s->v);
      for (int k = 0; k < s->nv; k++) s->v[k] = (sw_vary_t){xstrdup(f[k + 1]), 0, NULL};
      continue;
    }
    rows = xrealloc(rows, (size_t)(n_rows + 1) * sizeof *rows);
    rows[n_rows++] = line;
  }
  if (!rc && line_no == 0) rc = ts_err_set(err, EX_DATAERR, "%s: empty", path);
  if (!rc && !n_rows) rc = ts_err_set(err, EX_DATAERR, "%s: no points", path);
  /* values in order of first appearance */
  for (long r = 0; r < n_rows && !rc; r++) {
    char *copy = xstrdup(rows[r]);
    char ix[32];
    snprintf(ix, sizeof ix, "%ld", r + 1);
    if (csv_split(copy, f, cap) != nf || strcmp(f[0], ix))
      rc = ts_err_set(err, EX_DATAERR, "%s:%ld: expected point %ld with %d values", path, r + 2, r + 1,
                      nf - 1);
    for (int k = 0; k < s->nv && !rc; k++) {
      sw_vary_t *v = &s->v[k];
      int j = 0;
      while (j < v->n && strcmp(v->val[j], f[k + 1])) j++;
      if (j < v->n) continue;
      v->val = xrealloc(v->val, (size_t)(v->n + 1) * sizeof *v->val);
      v->val[v->n++] = xstrdup(f[k + 1]);
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
  for (long r = 0; r < n_rows && !rc; r++) {
    char *copy = xstrdup(rows[r]);
    csv_split(copy, f, cap);
    if (point_of(s, f + 1) != r)
      rc = ts_err_set(err, EX_DATAERR, "%s:%ld: point %ld is out of cartesian order", path, r + 2, r + 1);
    free(copy);
  }
  free(rows);
  free(f);
  free(text);
  return rc;
}

/* The row of point i from DIR2/point-<i+1>/summary.json, or from the
** one-line error in DIR2/point-<i+1>.err. */
static int collect_row(sweep_t *s, const char *dir, long i, ts_err_t *err) {
  char path[TS_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/point-%ld/summary.json", dir, i + 1);
  sb_t b = {0};
  char *text = slurp(path);
  int rc = 0;
  if (text) {
    cJSON *sum = cJSON_Parse(text);
    if (!cJSON_IsObject(sum))
      rc = ts_err_set(err, EX_DATAERR, "%s: malformed JSON", path);
    else
      row_ok(s, i, sum, &b);
    cJSON_Delete(sum);
  } else {
    snprintf(path, sizeof path, "%s/point-%ld.err", dir, i + 1);
    text = slurp(path);
    static const char pre[] = "trainsim: error: ";
    if (text && !strncmp(text, pre, sizeof pre - 1)) {
      char *msg = text + sizeof pre - 1;
      msg[strcspn(msg, "\n")] = 0;
      row_error(s, i, msg, &b);
    } else if (text && *text) {
      text[strcspn(text, "\n")] = 0;
      rc = ts_err_set(err, EX_NOINPUT, "%s/point-%ld: no summary.json; its command failed: %.300s", dir,
                      i + 1, text);
    } else {
      rc = ts_err_set(err, EX_NOINPUT, "%s/point-%ld: no result (run line %ld of %s/commands.txt first)",
                      dir, i + 1, i + 1, dir);
    }
  }
  if (!rc && !point_take(s, b.s)) rc = ts_err_set(err, EX_SOFTWARE, "%s: cannot build its row", path);
  free(text);
  free(b.s);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

static int option_error(int c, char **argv) {
  const char *opt = argv[optind - 1];
  if (c == ':')
    fprintf(stderr, "trainsim: error: sweep: option '%s' requires an argument (see trainsim --help)\n", opt);
  else
    fprintf(stderr, "trainsim: error: sweep: unknown option '%s' (see trainsim --help)\n", opt);
  return EX_USAGE;
}

/* The local sweep: resume, run what is missing, write the results. */
static int sweep_local(sweep_t *s, const char *dir, int jobs, bool quiet) {
  char csv[TS_PATH_MAX + 32], part[TS_PATH_MAX + 32];
  snprintf(csv, sizeof csv, "%s/sweep.csv", dir);
  snprintf(part, sizeof part, "%s/sweep.csv.partial", dir);
  ts_err_t err = {0};
  int rc = read_rows(s, csv, &err);
  if (!rc) rc = read_rows(s, part, &err);
  if (rc) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    return rc;
  }
  long *todo = xrealloc(NULL, (size_t)s->n * sizeof *todo), n_todo = 0;
  for (long i = 0; i < s->n; i++)
    if (!s->pt[i].line) todo[n_todo++] = i;
  long resumed = s->n - n_todo;
  if (jobs > n_todo) jobs = n_todo > 0 ? (int)n_todo : 1;

  sw_progress_t pr = {isatty(2) && !quiet, 0, n_todo, 0, {0, 0}};
  clock_gettime(CLOCK_MONOTONIC, &pr.t0);
  if (n_todo) {
    struct stat st;
    bool made_dir = stat(dir, &st) != 0, made_part = stat(part, &st) != 0;
    if ((rc = ts_write_dir(dir, &err))) {
      fprintf(stderr, "trainsim: error: %s\n", err.msg);
      goto out;
    }
    int fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
      rc = EX_CANTCREAT;
      fprintf(stderr, "trainsim: error: %s: cannot create: %s\n", part, strerror(errno));
      goto out;
    }
    if (made_part) {
      sb_t h = {0};
      csv_header(s, &h);
      if (!write_all(fd, h.s, h.n)) rc = EX_IOERR;
      free(h.s);
      if (rc) fprintf(stderr, "trainsim: error: %s: write failed: %s\n", part, strerror(errno));
    }
    if (!rc) {
      progress_show(&pr);
      rc = run_points(s, todo, n_todo, jobs, fd, part, &pr);
    }
    close(fd);
    if (rc && made_part && pr.done == 0) { /* nothing to resume: leave nothing */
      unlink(part);
      if (made_dir) rmdir(dir);
    }
    if (rc) goto out;
  }
  if ((rc = write_results(s, dir, &err))) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    goto out;
  }
  unlink(part);
  if (!quiet) {
    long failed = 0;
    for (long i = 0; i < s->n; i++) failed += !s->pt[i].ok;
    printf("trainsim sweep: %s, %ld points: %ld run, %ld resumed, %ld failed\n",
           s->job ? s->job : "<default job>", s->n, n_todo, resumed, failed);
    print_table(s, stdout);
    printf("  outputs  %s/{sweep.csv,sweep.svg}\n", dir);
  }
out:
  free(todo);
  return rc;
}

static int sweep_collect(sweep_t *s, const char *from, const char *dir, bool quiet) {
  ts_err_t err = {0};
  int rc = collect_points(s, from, &err);
  if (!rc) {
    s->pt = calloc((size_t)s->n, sizeof *s->pt);
    for (long i = 0; i < s->n && !rc; i++) rc = collect_row(s, from, i, &err);
  }
  if (!rc) rc = write_results(s, dir, &err);
  if (rc) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    return rc;
  }
  if (!quiet) {
    long failed = 0;
    for (long i = 0; i < s->n; i++) failed += !s->pt[i].ok;
    printf("trainsim sweep: collected %ld points from %s, %ld failed\n", s->n, from, failed);
    print_table(s, stdout);
    printf("  outputs  %s/{sweep.csv,sweep.svg}\n", dir);
  }
  return 0;
}

int ts_sweep_main(int argc, char **argv) {
  enum { O_VARY = 1, O_METRIC, O_EMIT, O_COLLECT };
  static const struct option opts[] = {{"vary", required_argument, 0, O_VARY},
                                       {"output", required_argument, 0, 'o'},
                                       {"jobs", required_argument, 0, 'j'},
                                       {"metric", required_argument, 0, O_METRIC},
                                       {"set", required_argument, 0, 's'},
                                       {"emit-jobs", required_argument, 0, O_EMIT},
                                       {"collect", required_argument, 0, O_COLLECT},
                                       {"quiet", no_argument, 0, 'q'},
                                       {0, 0, 0, 0}};
  sweep_t s;
  memset(&s, 0, sizeof s);
  s.sets = xrealloc(NULL, (size_t)argc * sizeof *s.sets);
  const char *dir = NULL, *emit = NULL, *collect = NULL, *metric = "iteration_time_s";
  long jobs = 0;
  bool quiet = false;
  int c, rc = 0;
  optind = 1;
  opterr = 0;
  while (!rc && (c = getopt_long(argc, argv, ":o:j:s:q", opts, NULL)) != -1) {
    switch (c) {
      case O_VARY: rc = vary_add(&s, optarg); break;
      case 'o': dir = optarg; break;
      case 'j': {
        char *end;
        jobs = strtol(optarg, &end, 10);
        if (*end || end == optarg || jobs < 1 || jobs > SW_MAX_JOBS)
          rc = usage_err("sweep: -j takes 1 to %d, got '%s'", SW_MAX_JOBS, optarg);
        break;
      }
      case O_METRIC: metric = optarg; break;
      case 's': s.sets[s.n_sets++] = optarg; break;
      case O_EMIT: emit = optarg; break;
      case O_COLLECT: collect = optarg; break;
      case 'q': quiet = true; break;
      default: rc = option_error(c, argv);
    }
  }
  if (rc) goto out;
  s.metric = -1;
  for (int m = 0; m < N_MET; m++)
    if (!strcmp(metrics[m].name, metric)) s.metric = m;
  if (s.metric < 0) {
    sb_t b = {0};
    for (int m = 0; m < N_MET; m++) sb_printf(&b, "%s%s", m ? ", " : "", metrics[m].name);
    rc = usage_err("sweep: --metric '%s': unknown metric (known: %s)", metric, b.s);
    free(b.s);
    goto out;
  }
  bool dir_given = dir != NULL;
  if (!dir) dir = "trainsim-sweep";

  if (collect) {
    if (s.nv || s.n_sets || optind < argc || emit || jobs)
      rc = usage_err("sweep: --collect takes only -o, --metric and --quiet");
    else
      rc = sweep_collect(&s, collect, dir, quiet);
    goto out;
  }
  if (argc - optind > 1) {
    rc = usage_err("sweep takes at most one job file");
    goto out;
  }
  if (emit && (jobs || dir_given)) {
    rc = usage_err("sweep: --emit-jobs runs nothing: it takes no -o or -j");
    goto out;
  }
  s.job = optind < argc ? argv[optind] : NULL;
  if (!s.nv) {
    rc = usage_err("sweep: give at least one --vary PATH=V1,V2,...");
    goto out;
  }
  s.n = 1;
  for (int k = 0; k < s.nv; k++) {
    s.n *= s.v[k].n;
    if (s.n > SW_MAX_POINTS) {
      rc = usage_err("sweep: more than %ld points", SW_MAX_POINTS);
      goto out;
    }
  }
  if ((rc = sweep_precheck(&s))) goto out;
  if (emit) {
    rc = emit_jobs(&s, emit, quiet);
    goto out;
  }
  s.pt = calloc((size_t)s.n, sizeof *s.pt);
  if (!jobs) {
    jobs = sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1) jobs = 1;
    if (jobs > SW_MAX_JOBS) jobs = SW_MAX_JOBS;
  }
  rc = sweep_local(&s, dir, (int)jobs, quiet);
out:
  sweep_free(&s);
  return rc;
}
