/*
** sweep_points.c: the grid of points of `trainsim sweep`: the growable
** strings its files build text with, the metrics table (the numeric
** columns of sweep.csv), --vary parsing, the index arithmetic of the
** cartesian product (point i <-> one value per vary) and the check that
** every varied value loads with the fixed --set strings before anything
** runs.
*/
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "sweep_internal.h"
#include "ts_internal.h"

/* ------------------------------------------------------------------ */
/* Metrics                                                             */
/* ------------------------------------------------------------------ */

/* Each column is a summary metric of the registry (src/out/ts_summary_metrics.c;
** test_formats checks name and unit against it) except max_peak_memory_bytes,
** an aggregate of devices[].  The five after it are columns of data-parallel
** sweeps only. */
const sw_metric_t ts__sw_metrics[] = {
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
    {"pipeline_time_s", NULL, "pipeline time", "s", true},
    {"optimizer_s", NULL, "optimizer step", "s", true},
    {"dp_comm_s", NULL, "time in data-parallel collectives", "s", true},
    {"exposed_comm_s", NULL, "exposed communication", "s", true},
    {"dp_comm_share", NULL, "data-parallel communication share", "", false},
};
_Static_assert(sizeof ts__sw_metrics / sizeof ts__sw_metrics[0] == SW_N_MET, "SW_N_MET is the metric count");

/* ------------------------------------------------------------------ */
/* Growable strings                                                    */
/* ------------------------------------------------------------------ */

void ts__sw_putn(sb_t *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->s = ts__xrealloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

void ts__sw_puts(sb_t *b, const char *s) { ts__sw_putn(b, s, strlen(s)); }

void ts__sw_printf(sb_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    ts__sw_putn(b, tmp, (size_t)n);
    return;
  }
  char *big = ts__xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  ts__sw_putn(b, big, (size_t)n);
  free(big);
}

/* ------------------------------------------------------------------ */
/* The grid of points                                                 */
/* ------------------------------------------------------------------ */

void ts__sw_free(sweep_t *s) {
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
  for (long i = 0; s->adj && i < s->n; i++) free(s->adj[i]);
  free(s->adj);
  free(s->sets);
}

/* Index of the value of vary k at point i (the last vary varies fastest). */
int ts__sw_point_val(const sweep_t *s, long i, int k) {
  for (int j = s->nv - 1; j > k; j--) i /= s->v[j].n;
  return (int)(i % s->v[k].n);
}

/* "PATH=VALUE" of vary k at point i; caller frees. */
char *ts__sw_point_set(const sweep_t *s, long i, int k) {
  sb_t b = {0};
  ts__sw_puts(&b, s->v[k].path);
  ts__sw_puts(&b, "=");
  ts__sw_puts(&b, s->v[k].val[ts__sw_point_val(s, i, k)]);
  return b.s;
}

/* Point i of s whose key fields (the varied values) are f[0..nv-1]; -1
** when they are not a point of s. */
long ts__sw_point_of(const sweep_t *s, char **f) {
  long i = 0;
  for (int k = 0; k < s->nv; k++) {
    int j = 0;
    while (j < s->v[k].n && strcmp(s->v[k].val[j], f[k])) j++;
    if (j == s->v[k].n) return -1;
    i = i * s->v[k].n + j;
  }
  return i;
}

/* ------------------------------------------------------------------ */
/* Parsing --vary and the check before a sweep                        */
/* ------------------------------------------------------------------ */

int ts__sw_usage_err(const char *fmt, ...) {
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
int ts__sw_vary_add(sweep_t *s, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) return ts__sw_usage_err("--vary '%s': expected PATH=V1,V2,...", arg);
  char *path = ts__xstrndup(arg, (size_t)(eq - arg));
  for (int k = 0; k < s->nv; k++)
    if (!strcmp(s->v[k].path, path)) {
      ts__sw_usage_err("--vary '%s': path varied twice", path);
      free(path);
      return EX_USAGE;
    }
  const char *list = eq + 1;
  if (!*list) {
    ts__sw_usage_err("--vary '%s': empty value list", arg);
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
    char *val = ts__xstrndup(start, (size_t)(p - start));
    if (!*val) {
      rc = ts__sw_usage_err("--vary '%s': value %d is empty", arg, v.n + 1);
    } else {
      for (int j = 0; j < v.n && !rc; j++)
        if (!strcmp(v.val[j], val)) rc = ts__sw_usage_err("--vary '%s': value '%s' given twice", arg, val);
    }
    if (rc) {
      free(val);
      break;
    }
    v.val = ts__xrealloc(v.val, (size_t)(v.n + 1) * sizeof *v.val);
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
  s->v = ts__xrealloc(s->v, (size_t)(s->nv + 1) * sizeof *s->v);
  s->v[s->nv++] = v;
  return 0;
}

/* Rewrites "--set 'PATH" (or "--set PATH") in a job-loading message into
** "--vary ...", since the user gave PATH with --vary. */
void ts__sw_say_vary(char *msg, size_t cap, const char *path) {
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

/* Loads s's job with sets[0..n-1] and, when s mixes schedules, their
** adjustments (sets has room for SW_MAX_ADJUST more). */
static int load_adjusted(const sweep_t *s, const char **sets, int n, ts_job_t **job,
                         ts_err_t *err) {
  char adj[SW_ADJ_MAX];
  int rc = ts__sw_adjust(s, sets, &n, n + SW_MAX_ADJUST, adj, sizeof adj, err);
  return rc ? rc : ts_job_load(s->job, sets, n, job, err);
}

/* Every varied value must load with the fixed --set strings, and the job
** with them alone (each with its schedule's adjustments when the sweep
** mixes schedules).  An error of the job's rules (EX_DATAERR) may depend
** on the other varied values and is left to the point's row; so is the
** job's alone when the sweep varies "schedule". */
int ts__sw_precheck(sweep_t *s) {
  const char **sets = ts__xmalloc((size_t)(s->n_sets + 1 + SW_MAX_ADJUST) * sizeof *sets);
  for (int k = 0; k < s->n_sets; k++) sets[k] = s->sets[k];
  ts_err_t err = {0};
  ts_job_t *job = NULL;
  int rc = load_adjusted(s, sets, s->n_sets, &job, &err);
  if (rc == EX_DATAERR && s->mix) {
    rc = 0;
    err = (ts_err_t){0};
  }
  s->dp = job && job->data_parallel > 1;
  ts_job_free(job);
  int dp_vary = -1; /* the last vary of data_parallel: it sets every point's d */
  for (int k = 0; k < s->nv; k++)
    if (!strcmp(s->v[k].path, "data_parallel")) dp_vary = k;
  if (dp_vary >= 0) s->dp = false;
  for (int k = 0; k < s->nv && !rc; k++) {
    for (int j = 0; j < s->v[k].n && !rc; j++) {
      sb_t b = {0};
      ts__sw_printf(&b, "%s=%s", s->v[k].path, s->v[k].val[j]);
      sets[s->n_sets] = b.s;
      job = NULL;
      rc = load_adjusted(s, sets, s->n_sets + 1, &job, &err);
      if (k == dp_vary && job && job->data_parallel > 1) s->dp = true;
      ts_job_free(job);
      free(b.s);
      if (rc == EX_DATAERR) {
        rc = 0;
        err = (ts_err_t){0};
      }
      if (rc) ts__sw_say_vary(err.msg, sizeof err.msg, s->v[k].path);
    }
  }
  free(sets);
  if (rc) fprintf(stderr, "trainsim: error: %s\n", err.msg);
  return rc;
}
