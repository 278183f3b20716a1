/*
** sweep_internal.h: `trainsim sweep`'s own types and helpers, shared by its
** files (other commands use ts_sweep.h):
**   sweep_cli.c     the options, the local and the collecting sweep, the
**                   table on stdout, ts_sweep_main;
**   sweep_points.c  the growable strings, the metrics table and the grid of
**                   points: --vary parsing, a point's --set strings and the
**                   check of every varied value before anything runs;
**   sweep_csv.c     the fields and rows of sweep.csv, the resume (the rows
**                   of an earlier run) and the writing of the results;
**   sweep_pool.c    the worker processes that simulate the points;
**   sweep_plot.c    sweep.svg;
**   sweep_emit.c    --emit-jobs and --collect;
**   sweep_adjust.c  the adjustments of a sweep that mixes schedules.
** Errors of allocation print "trainsim: error: out of memory (N bytes)"
** and exit with EX_OSERR (ts__xmalloc and friends, ts_internal.h); the
** other functions say how they fail.
**
** The command in full:
**
** `trainsim sweep`, a what-if sweep over --set paths.
**
** A sweep is a job, fixed --set strings and k varied paths, each with a list
** of values.  Its points are the cartesian product of the lists, numbered in
** cartesian order: the first --vary is the outermost loop, the last the
** innermost.  Point i is simulated exactly as
**
**     trainsim run JOB --set <fixed...> --set PATH1=V1i ... --set PATHk=Vki
**
** would simulate it (ts_job_load with the fixed strings, then the point's,
** then, in a sweep that varies "schedule", the point's schedule's
** adjustments: sweep_adjust.c),
** in a worker process: -j N workers (default: online cores) run the points
** not yet done; each worker forks for one point and reports one CSV row (or
** an error) on a pipe.
**
** Outputs (DIR, default ./trainsim-sweep):
**   sweep.csv  one row per point in cartesian order: the varied values, the
**              status (ok or error), in a sweep that varies "schedule" with
**              a schedule that needs adjustments, the adjustments the point
**              ran with (space-separated PATH=VALUE, empty for none), the
**              summary metrics, all_fit and, for a
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
** for a resume, and no sweep.csv is written.  A sweep whose every point
** failed writes its results and exits EX_DATAERR (65).
**
** Resume.  Each finished row is appended to DIR/sweep.csv.partial by the
** parent with a single write(2) under O_APPEND, so an interrupted sweep
** leaves only complete lines there (a torn last line, from a crash in the
** middle of a write, does not parse and is dropped).  A run first reads
** DIR/sweep.csv and DIR/sweep.csv.partial and skips every point that has a
** row (ok or error: both are deterministic outcomes), keyed by its varied
** values; rows of points outside the current product are dropped.  When
** every point has a row, sweep.svg and sweep.csv are written as one set
** (ts_write_set), sorted in cartesian order, and only then is the partial
** file removed.  The partial file is created with its header by a rename
** (ts__sw_partial_open), so a kill never leaves it without one.  So the result of a resumed sweep is
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
#ifndef TS_SWEEP_INTERNAL_H
#define TS_SWEEP_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_out.h"

#define SW_MAX_JOBS 1024 /* -j N at most */

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

/* The metrics in column order (sweep_points.c).  The first SW_N_BASE are
** columns of every sweep; the last of them, the largest
** devices[].peak_memory_bytes of summary.json, has no field of its own.
** The others (pipeline_time_s ... dp_comm_share) are columns only of a
** data-parallel sweep (sweep_t.dp). */
#define SW_N_MET 14
#define SW_N_BASE 9
#define SW_MET_MAXPEAK (SW_N_BASE - 1)
extern const sw_metric_t ts__sw_metrics[SW_N_MET];

/* ------------------------------------------------------------------ */
/* Growable strings (sweep_points.c)                                   */
/* ------------------------------------------------------------------ */

typedef struct sb {
  char *s;
  size_t n, cap;
} sb_t;

/* Append n bytes of s, s, or printf output to b, which stays
** NUL-terminated; b->s is the caller's to free. */
void ts__sw_putn(sb_t *b, const char *s, size_t n);
void ts__sw_puts(sb_t *b, const char *s);
void ts__sw_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ */
/* The sweep and its points (sweep_points.c)                           */
/* ------------------------------------------------------------------ */

typedef struct sw_vary {
  char *path;
  int n;
  char **val;  /* [n] as given */
} sw_vary_t;

typedef struct sw_point {
  char *line;  /* the CSV row with its '\n'; NULL while not done */
  bool ok;
  double m[SW_N_MET]; /* NAN where the row has no value */
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
  int metric;          /* plotted: index into ts__sw_metrics[] */
  bool dp;             /* a point's job has data_parallel > 1: the DP columns */
  bool mix;            /* "schedule" is varied and some of its values need
                       ** adjustments: they and their column (sweep_adjust.c) */
  char **adj;          /* --collect of a sweep that mixes schedules: [n], each
                       ** point's adjustments from points.csv; else NULL */
} sweep_t;

/* The metric columns of s's sweep.csv: SW_N_MET with the data-parallel
** ones, else SW_N_BASE. */
static inline int ts__sw_n_cols(const sweep_t *s) { return s->dp ? SW_N_MET : SW_N_BASE; }

/* Frees what s owns (the varies, the points, the sets array; not s). */
void ts__sw_free(sweep_t *s);
/* Index of the value of vary k at point i (the last vary varies fastest). */
int ts__sw_point_val(const sweep_t *s, long i, int k);
/* "PATH=VALUE" of vary k at point i; the caller frees it. */
char *ts__sw_point_set(const sweep_t *s, long i, int k);
/* Point i of s whose varied values are f[0..nv-1]; -1 when they are not
** a point of s. */
long ts__sw_point_of(const sweep_t *s, char **f);
/* Prints "trainsim: error: <fmt...> (see trainsim --help)" on stderr and
** returns EX_USAGE. */
int ts__sw_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Adds "--vary PATH=V1,V2,..." to s.  Returns 0, or EX_USAGE (printed)
** for a malformed, repeated or empty list or a path varied twice. */
int ts__sw_vary_add(sweep_t *s, const char *arg);
/* Rewrites "--set 'PATH" (or "--set PATH") in msg (of capacity cap) into
** "--vary ...", since the user gave PATH with --vary. */
void ts__sw_say_vary(char *msg, size_t cap, const char *path);
/* Loads the job with the fixed --set strings, then with each varied value,
** and sets s->dp when some point's job has data_parallel > 1 (the last
** vary of the path data_parallel decides, else the job with its --set
** strings).  Returns 0, or the job's error code (printed). */
int ts__sw_precheck(sweep_t *s);

/* ------------------------------------------------------------------ */
/* sweep.csv and the resume (sweep_csv.c)                              */
/* ------------------------------------------------------------------ */

/* Appends one CSV field, quoted when it needs it; line breaks become
** spaces. */
void ts__sw_csv_put(sb_t *b, const char *s);
/* Splits one CSV line (without its newline) in place into at most max
** fields f.  Returns the field count, or -1 for a malformed line or more
** than max fields. */
int ts__sw_csv_split(char *line, char **f, int max);
/* Appends the header line of sweep.csv, with its '\n'. */
void ts__sw_csv_header(const sweep_t *s, sb_t *b);
/* Append the row of point i, with its '\n': simulated (from the tree of
** its summary.json) or failed with msg;
** adj is the point's adjustments ("" none; written only when s->mix). */
void ts__sw_row_ok(const sweep_t *s, long i, const char *adj, const cJSON *sum, sb_t *b);
void ts__sw_row_error(const sweep_t *s, long i, const char *adj, const char *msg, sb_t *b);
/* Takes line (a complete row with its '\n') as the row of its point unless
** that point already has one.  Returns false when the line is not a row of
** this sweep. */
bool ts__sw_point_take(sweep_t *s, const char *line);
/* Reads the rows of an earlier run from path into s.  A missing file is no
** error; EX_CANTCREAT when the file holds another sweep, EX_NOINPUT when
** it cannot be read (with err). */
int ts__sw_read_rows(sweep_t *s, const char *path, ts_err_t *err);
/* Writes DIR/sweep.svg then DIR/sweep.csv, each atomically.  Returns 0 or
** the sysexits code with err. */
int ts__sw_write_results(const sweep_t *s, const char *dir, ts_err_t *err);

/* ------------------------------------------------------------------ */
/* Adjustments of a sweep that mixes schedules (sweep_adjust.c)        */
/* ------------------------------------------------------------------ */

#define SW_MAX_ADJUST 8 /* adjustments of one point at most */
#define SW_ADJ_MAX 256  /* the text of a point's adjustments */

/* When s->mix: appends to sets[*n] (capacity cap, at least *n +
** SW_MAX_ADJUST) the adjustments of the schedule of the job that
** sets[0..*n-1] load, never on a varied path, and lists them in adj
** (capacity n_adj); otherwise, and for a job whose sizes do not load
** (its own load says why), none.  adj is "" when none.  Returns 0 or
** EX_SOFTWARE with err (a malformed compare_sets). */
int ts__sw_adjust(const sweep_t *s, const char **sets, int *n, int cap, char *adj, size_t n_adj,
                  ts_err_t *err);
/* The --set strings point i runs with: the fixed ones, the point's varied
** values and its adjustments (adj, as ts__sw_adjust), *n of them in the
** new array *sets; the strings in the new array *own are the caller's,
** freed with ts__sw_point_sets_free.  Returns ts__sw_adjust's code. */
int ts__sw_point_sets(const sweep_t *s, long i, const char ***sets, char ***own, int *n,
                      char *adj, size_t n_adj, ts_err_t *err);
void ts__sw_point_sets_free(const sweep_t *s, const char **sets, char **own);
/* Sets s->mix: true when s varies "schedule" and one of its values needs
** an adjustment with the fixed --set strings.  Returns 0 or EX_SOFTWARE
** (printed). */
int ts__sw_mix_decide(sweep_t *s);

/* ------------------------------------------------------------------ */
/* The worker processes (sweep_pool.c)                                 */
/* ------------------------------------------------------------------ */

/* The progress bar of a local sweep. */
typedef struct sw_progress {
  bool bar;          /* stderr is a terminal and not --quiet */
  long done, total, failed;
  struct timespec t0;
} sw_progress_t;

/* Draws the progress bar on stderr when pr->bar. */
void ts__sw_progress_show(const sw_progress_t *pr);
/* Simulates the points todo[0..n_todo-1] with at most jobs workers,
** appending each row to part_fd and taking it into s.  Returns 0 or the
** code of the first error that stopped the sweep (printed). */
int ts__sw_run_points(sweep_t *s, const long *todo, long n_todo, int jobs, int part_fd,
                      const char *part_path, sw_progress_t *pr);

/* ------------------------------------------------------------------ */
/* sweep.svg (sweep_plot.c)                                            */
/* ------------------------------------------------------------------ */

/* Opens DIR/sweep.csv.partial (path part) for appending rows, creating
** it with its header atomically (ts_write_atomic) when it is missing, so
** a partial file never exists without its header; a partial file holding
** nothing but a beginning of the header (left by a kill of an older
** trainsim) is replaced.  *made says whether it was created.  Returns the
** file descriptor, or minus an EX_* code with err set. */
int ts__sw_partial_open(const sweep_t *s, const char *part, bool *made, ts_err_t *err);

/* ts_write_atomic's writer of sweep.svg; arg is the sweep_t, every point
** done.  Returns 0 or EX_IOERR. */
int ts__sw_write_svg(const void *arg, FILE *f);

/* ------------------------------------------------------------------ */
/* --emit-jobs and --collect (sweep_emit.c)                            */
/* ------------------------------------------------------------------ */

/* Writes dir/points.csv (with a last column "adjustments" when s->mix)
** and dir/commands.txt (each point's command with its adjustments).
** Returns 0 or the sysexits code (printed). */
int ts__sw_emit_jobs(const sweep_t *s, const char *dir, bool quiet);
/* Rebuilds the varies of s (n, v, nv) from dir/points.csv, and s->mix and
** s->adj from its "adjustments" column when it has one.  Returns 0,
** EX_NOINPUT or EX_DATAERR with err. */
int ts__sw_collect_points(sweep_t *s, const char *dir, ts_err_t *err);
/* Sets s->dp from the points' summary.json files in DIR2 (their
** job.data_parallel). */
void ts__sw_collect_dp(sweep_t *s, const char *dir);
/* Takes the row of point i from dir/point-<i+1>/.  Returns 0 or the
** sysexits code with err. */
int ts__sw_collect_row(sweep_t *s, const char *dir, long i, ts_err_t *err);

#endif
