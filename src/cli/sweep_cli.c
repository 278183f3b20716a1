/*
** sweep_cli.c: the `trainsim sweep` command: its options, the local sweep
** (resume, run what is missing, write the results), the collecting sweep
** and the table on stdout.  What the command does is described in full in
** sweep_internal.h.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "sweep_internal.h"
#include "ts_sweep.h"
#include "ts_internal.h"
#include "ts_cli_help.h"

#define SW_MAX_POINTS 1000000L /* a larger product is a usage error */
#define SW_TABLE_MAX 64        /* points printed in the stdout table at most */

/* The table of --metric at every point on f; nothing for more than
** SW_TABLE_MAX points. */
static void print_table(const sweep_t *s, FILE *f) {
  if (s->n > SW_TABLE_MAX) return;
  int *w = ts__xmalloc((size_t)s->nv * sizeof *w);
  for (int k = 0; k < s->nv; k++) {
    w[k] = (int)strlen(s->v[k].path);
    for (int j = 0; j < s->v[k].n; j++)
      if ((int)strlen(s->v[k].val[j]) > w[k]) w[k] = (int)strlen(s->v[k].val[j]);
    if (w[k] > 40) w[k] = 40;
  }
  fputs(" ", f);
  for (int k = 0; k < s->nv; k++) fprintf(f, " %-*.*s", w[k], w[k], s->v[k].path);
  fprintf(f, "  %s\n", ts__sw_metrics[s->metric].name);
  for (long i = 0; i < s->n; i++) {
    fputs(" ", f);
    for (int k = 0; k < s->nv; k++) fprintf(f, " %-*.*s", w[k], w[k], s->v[k].val[ts__sw_point_val(s, i, k)]);
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

/* The usage error of getopt_long's answer c (':' a missing argument,
** else an unknown option of opts); returns EX_USAGE, or TS_CLI_HELP_SHOWN
** after printing the help for --help and -h. */
static int option_error(int c, char **argv, const struct option *opts) {
  const char *opt = argv[optind - 1];
  if (c != ':') return ts__cli_unknown_option("sweep", argv, opts);
  fprintf(stderr, "trainsim: error: sweep: option '%s' requires an argument (see trainsim --help)\n", opt);
  return EX_USAGE;
}

/* -o DIR that is a file, or under one, cannot be created (EX_CANTCREAT,
** printed): said before anything tries to read DIR/sweep.csv, which would
** fail as an unreadable input. */
static int out_dir_check(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0 ? S_ISDIR(st.st_mode) : errno != ENOTDIR) return 0;
  fprintf(stderr, "trainsim: error: %s: cannot create output directory: %s\n", dir,
          strerror(ENOTDIR));
  return EX_CANTCREAT;
}

/* A data-parallel column as --metric of a sweep without those columns is a
** usage error (printed). */
static int dp_metric_check(const sweep_t *s) {
  if (s->metric < SW_N_BASE || s->dp) return 0;
  return ts__sw_usage_err("sweep: --metric '%s': a column of data-parallel sweeps only (no point has "
                          "data_parallel > 1)",
                          ts__sw_metrics[s->metric].name);
}

/* A sweep whose every point failed (its results are written) is an
** error: EX_DATAERR, printed with the first point's message. */
static int all_failed(const sweep_t *s) {
  for (long i = 0; i < s->n; i++)
    if (s->pt[i].ok) return 0;
  fprintf(stderr, "trainsim: error: sweep: every point failed (%ld of %ld; point 1: %.600s)\n",
          s->n, s->n, s->pt[0].error ? s->pt[0].error : "");
  return EX_DATAERR;
}

/* The local sweep: resume, run what is missing, write the results. */
static int sweep_local(sweep_t *s, const char *dir, int jobs, bool quiet) {
  char csv[TS_PATH_MAX + 32], part[TS_PATH_MAX + 32];
  snprintf(csv, sizeof csv, "%s/sweep.csv", dir);
  snprintf(part, sizeof part, "%s/sweep.csv.partial", dir);
  ts_err_t err = {0};
  int rc = out_dir_check(dir);
  if (rc) return rc;
  ts_out_clean_stale(dir);
  rc = ts__sw_read_rows(s, csv, &err);
  if (!rc) rc = ts__sw_read_rows(s, part, &err);
  if (rc) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    return rc;
  }
  long *todo = ts__xmalloc((size_t)s->n * sizeof *todo), n_todo = 0;
  for (long i = 0; i < s->n; i++)
    if (!s->pt[i].line) todo[n_todo++] = i;
  long resumed = s->n - n_todo;
  if (jobs > n_todo) jobs = n_todo > 0 ? (int)n_todo : 1;

  sw_progress_t pr = {isatty(2) && !quiet, 0, n_todo, 0, {0, 0}};
  clock_gettime(CLOCK_MONOTONIC, &pr.t0);
  if (n_todo) {
    struct stat st;
    bool made_dir = stat(dir, &st) != 0, made_part = false;
    if ((rc = ts_write_dir(dir, &err))) {
      fprintf(stderr, "trainsim: error: %s\n", err.msg);
      goto out;
    }
    int fd = ts__sw_partial_open(s, part, &made_part, &err);
    if (fd < 0) {
      rc = -fd;
      fprintf(stderr, "trainsim: error: %s\n", err.msg);
      goto out;
    }
    if (!rc) {
      ts__sw_progress_show(&pr);
      rc = ts__sw_run_points(s, todo, n_todo, jobs, fd, part, &pr);
    }
    close(fd);
    if (rc && made_part && pr.done == 0) { /* nothing to resume: leave nothing */
      unlink(part);
      if (made_dir) rmdir(dir);
    }
    if (rc) goto out;
  }
  if ((rc = ts__sw_write_results(s, dir, &err))) {
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
  rc = all_failed(s);
out:
  free(todo);
  return rc;
}

/* --collect FROM: the rows of the points emitted into FROM, written into
** dir.  Returns 0 or the sysexits code (printed). */
static int sweep_collect(sweep_t *s, const char *from, const char *dir, bool quiet) {
  ts_err_t err = {0};
  int rc = ts__sw_collect_points(s, from, &err);
  if (!rc) {
    ts__sw_collect_dp(s, from);
    if ((rc = dp_metric_check(s))) return rc;
    s->pt = ts__xcalloc((size_t)s->n, sizeof *s->pt);
    for (long i = 0; i < s->n && !rc; i++) rc = ts__sw_collect_row(s, from, i, &err);
  }
  if (!rc) rc = ts__sw_write_results(s, dir, &err);
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
  return all_failed(s);
}

/* The options, their checks, then --collect, --emit-jobs or the local
** sweep (see ts_sweep.h). */
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
  s.sets = ts__xmalloc((size_t)argc * sizeof *s.sets);
  const char *dir = NULL, *emit = NULL, *collect = NULL, *metric = "iteration_time_s";
  long jobs = 0;
  bool quiet = false;
  int c, rc = 0;
  optind = 1;
  opterr = 0;
  while (!rc && (c = getopt_long(argc, argv, ":o:j:s:q", opts, NULL)) != -1) {
    switch (c) {
      case O_VARY: rc = ts__sw_vary_add(&s, optarg); break;
      case 'o': dir = optarg; break;
      case 'j': {
        char *end;
        jobs = strtol(optarg, &end, 10);
        if (*end || end == optarg || jobs < 1 || jobs > SW_MAX_JOBS)
          rc = ts__sw_usage_err("sweep: -j takes 1 to %d, got '%s'", SW_MAX_JOBS, optarg);
        break;
      }
      case O_METRIC: metric = optarg; break;
      case 's': s.sets[s.n_sets++] = optarg; break;
      case O_EMIT: emit = optarg; break;
      case O_COLLECT: collect = optarg; break;
      case 'q': quiet = true; break;
      default: rc = option_error(c, argv, opts);
    }
  }
  if (rc) goto out;
  s.metric = -1;
  for (int m = 0; m < SW_N_MET; m++)
    if (!strcmp(ts__sw_metrics[m].name, metric)) s.metric = m;
  if (s.metric < 0) {
    sb_t b = {0};
    for (int m = 0; m < SW_N_MET; m++) ts__sw_printf(&b, "%s%s", m ? ", " : "", ts__sw_metrics[m].name);
    rc = ts__sw_usage_err("sweep: --metric '%s': unknown metric (known: %s)", metric, b.s);
    free(b.s);
    goto out;
  }
  bool dir_given = dir != NULL;
  if (!dir) dir = "trainsim-sweep";

  if (collect) {
    if (s.nv || s.n_sets || optind < argc || emit || jobs)
      rc = ts__sw_usage_err("sweep: --collect takes only -o, --metric and --quiet");
    else
      rc = sweep_collect(&s, collect, dir, quiet);
    goto out;
  }
  if (argc - optind > 1) {
    rc = ts__sw_usage_err("sweep takes at most one job file");
    goto out;
  }
  if (emit && (jobs || dir_given)) {
    rc = ts__sw_usage_err("sweep: --emit-jobs runs nothing: it takes no -o or -j");
    goto out;
  }
  s.job = optind < argc ? argv[optind] : NULL;
  if (!s.nv) {
    rc = ts__sw_usage_err("sweep: give at least one --vary PATH=V1,V2,...");
    goto out;
  }
  s.n = 1;
  for (int k = 0; k < s.nv; k++) {
    s.n *= s.v[k].n;
    if (s.n > SW_MAX_POINTS) {
      rc = ts__sw_usage_err("sweep: more than %ld points", SW_MAX_POINTS);
      goto out;
    }
  }
  if ((rc = ts__sw_mix_decide(&s)) || (rc = ts__sw_precheck(&s))) goto out;
  if (!emit && (rc = dp_metric_check(&s))) goto out;
  if (emit) {
    rc = ts__sw_emit_jobs(&s, emit, quiet);
    goto out;
  }
  s.pt = ts__xcalloc((size_t)s.n, sizeof *s.pt);
  if (!jobs) {
    jobs = sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1) jobs = 1;
    if (jobs > SW_MAX_JOBS) jobs = SW_MAX_JOBS;
  }
  rc = sweep_local(&s, dir, (int)jobs, quiet);
out:
  ts__sw_free(&s);
  return rc;
}
