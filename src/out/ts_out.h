/*
** ts_out.h: the out layer, everything that turns a ts_result_t into files
** or text: the writers of each output format, the format registry
** (ts_formats.h), the summary metrics list, the atomic writing of files
** (ts_atomic.c),
** and the formatting helpers the writers share.
**
** Only the commands (src/cli), the tests and the out layer itself include
** this header; the core (ts_core) does not see src/out, so a core file
** that called a writer would not compile.
*/
#ifndef TS_OUT_H
#define TS_OUT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "trainsim.h"
#include "ts_formats.h"

/* ---- writers ---------------------------------------------------------- */

/* Each writer writes a complete file body to f and returns 0, or EX_IOERR
** when a write fails.  Output is byte-for-byte deterministic. */
int ts_write_summary_json(const ts_result_t *r, FILE *f);
int ts_write_timeline_csv(const ts_result_t *r, FILE *f);
int ts_write_trace_json(const ts_result_t *r, FILE *f);
int ts_write_gantt_svg(const ts_result_t *r, FILE *f);
/* report.html: see ts_report.h for its contract. */
int ts_write_report_html(const ts_result_t *r, FILE *f);
/* paje.trace, the Paje trace for ViTE: see ts_paje.c for its layout. */
int ts_write_paje(const ts_result_t *r, FILE *f);

/* How gantt.svg is drawn (README "gantt.svg").  A zeroed struct gives the
** defaults: a 480 px wide figure with 16 px text, which reads 8 pt when the
** figure is printed one column (240 pt, 3.3 in) wide, the title on, the
** screen style.  t_max, left and plot_w are forced where positive, so that
** charts share one time axis (trainsim compare); plot_w > 0 overrides
** width.  row_note, when not NULL, holds one line per device drawn under
** "device d" in place of the host name (compare: the stages it holds); the
** host name stays in the tooltip. */
typedef enum ts_fig_style {
  TS_STYLE_SCREEN = 0, /* light vertical grid lines, grey secondary text */
  TS_STYLE_PRINT       /* no grid, black text, thinner strokes */
} ts_fig_style_t;
/* A set of device indices, as --devices and --gantt-devices give it
** ("0-7,64,100-103"): n == 0 is every device. */
#define TS_DEVLIST_MAX 64
typedef struct ts_devlist {
  int n;
  int lo[TS_DEVLIST_MAX], hi[TS_DEVLIST_MAX];
} ts_devlist_t;
/* Parses s into l: comma-separated indices and ranges A-B (A <= B), at
** most TS_DEVLIST_MAX items.  Returns 0 or EX_USAGE with err naming opt. */
int ts_devlist_parse(const char *opt, const char *s, ts_devlist_t *l, ts_err_t *err);
/* Whether d is in l (always when l->n == 0). */
bool ts_devlist_has(const ts_devlist_t *l, int d);

/* gantt.svg's rows at most by default (README "gantt.svg": beyond them,
** identical devices share a row, then a subset is drawn), and the size
** over which tiny boxes are merged. */
#define TS_GANTT_MAX_ROWS 64
#define TS_GANTT_BUDGET_BYTES 4000000.0
typedef struct ts_gantt_opts {
  double t_max, left, plot_w;
  double width;     /* whole figure, px (SVG user units); 0: 480 */
  double font_size; /* text, px; 0: 16 */
  bool no_title;    /* leave the title and subtitle out */
  bool auto_width;  /* width 0: wide enough that the shortest box is 5 px
                    ** (480 to 2400 px): the report's on-screen figure */
  ts_fig_style_t style;
  const char *const *row_note;
  int max_rows;         /* rows at most; 0: TS_GANTT_MAX_ROWS; < 0: every
                        ** device on its own row and every box drawn (the
                        ** full figure, whatever its size) */
  ts_devlist_t devices; /* only these devices' rows (n == 0: all) */
} ts_gantt_opts_t;

/* What the writers of timeline.csv, trace.json and paje.trace keep, and
** the figure options (README "Outputs"); a zeroed struct gives the
** defaults: every event, trace.json and paje.trace cut at 100 MB. */
typedef struct ts_out_opts {
  ts_gantt_opts_t fig;
  double trace_max_mb; /* trace.json at most this many MB (1e6 bytes); 0: 100; < 0: no limit */
  double paje_max_mb;  /* paje.trace likewise */
  ts_devlist_t devices; /* events of these devices only (n == 0: all) */
  unsigned kinds;       /* bit 1 << kind for the kinds kept; 0: all */
  bool quiet_notes;     /* no "trainsim: note:" lines on stderr (tests; --quiet keeps them) */
} ts_out_opts_t;
#define TS_OUT_DEFAULT_MAX_MB 100.0
/* Sets the output option named opt ("trace-max-mb", "paje-max-mb",
** "devices", "kinds", "gantt-devices", "gantt-max-rows", or a figure
** option of ts_gantt_opt_set) from value.  Returns 0, 1 when opt is none
** of them, or EX_USAGE with err naming the option. */
int ts_out_opt_set(ts_out_opts_t *o, const char *opt, const char *value, ts_err_t *err);
/* Whether the filters of o (NULL: none) keep e. */
bool ts__out_keeps(const ts_out_opts_t *o, const ts_event_t *e);
/* The writers with the options (NULL: defaults). */
int ts_write_timeline_csv_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f);
int ts_write_trace_json_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f);
int ts_write_paje_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f);
/* ts_write_outputs_fig with every output option. */
int ts_write_outputs_opts(const ts_result_t *r, const char *dir, unsigned mask, const ts_out_opts_t *o,
                          ts_err_t *err);
int ts_write_gantt_svg_opts(const ts_result_t *r, const ts_gantt_opts_t *o, FILE *f);
/* The layout ts_write_gantt_svg_opts(r, o) would choose: fills m's t_max,
** left and plot_w (o may be NULL: the defaults). */
int ts_gantt_measure_opts(const ts_result_t *r, const ts_gantt_opts_t *o, ts_gantt_opts_t *m);
/* The same with o as the options (its row_note; compare) and the result. */
int ts_gantt_measure(const ts_result_t *r, ts_gantt_opts_t *o);
/* Sets the figure option named opt ("figure-width", "font-size",
** "no-title", "style") from value (NULL for no-title) in o: widths and
** sizes are positive numbers of px (at most 20000 and 200), styles
** "screen" and "print".  Returns 0 or EX_USAGE with err naming the
** option. */
int ts_gantt_opt_set(ts_gantt_opts_t *o, const char *opt, const char *value, ts_err_t *err);
/* report.html with its figure drawn with o (NULL: the defaults, auto
** width). */
int ts_write_report_html_opts(const ts_result_t *r, const ts_gantt_opts_t *o, FILE *f);
/* The name figures give kind: "B" (input gradient) and "W" (weight
** gradient) for the split backward's halves, as the zero-bubble papers
** write them; ts_kind_name for the others.  ts__fig_kind_label: the
** legend's words ("B (input gradient)").  CSV and JSON keep ts_kind_name. */
const char *ts__fig_kind_name(int kind);
const char *ts__fig_kind_label(int kind);

/* ---- the format registry (ts_formats.h) -------------------------------- */

typedef int (*ts_result_writer_fn)(const ts_result_t *r, FILE *f);

/* One registered output format. */
typedef struct ts_format {
  const char *file;          /* "summary.json": the file name in DIR */
  ts_result_writer_fn write; /* its writer */
  const char *about;         /* one line for people */
  double weight;             /* its writing time relative to the others' */
  int by_default;            /* 1: written without -f; 0: only when -f names it */
} ts_format_t;

/* Format i (0 <= i < TS_N_FORMATS), or NULL outside. */
const ts_format_t *ts_format_at(int i);

/* Parses a -f/--formats list: comma-separated names, each a format's file
** name ("gantt.svg") or that name without its extension ("gantt").  Sets
** *mask to the set named (repeats allowed) and returns 0; an empty list,
** an empty item or an unknown name returns EX_USAGE with err naming the
** item and listing the known names. */
int ts_formats_parse(const char *list, unsigned *mask, ts_err_t *err);

/* Writes the file names of the formats in mask, joined by sep, to f (for
** messages such as the "outputs" line of `trainsim run`). */
void ts_formats_print(FILE *f, unsigned mask, const char *sep);

/* ---- writing files ----------------------------------------------------- */

/* One file of a set: its name in the directory and its writer. */
typedef int (*ts_write_fn)(const void *arg, FILE *f);
typedef struct ts_out_file {
  const char *file; /* "summary.json" */
  ts_write_fn fn;   /* writes the whole body to f: 0 or EX_IOERR */
  const void *arg;  /* passed to fn */
  double weight;    /* its expected writing time against the others' (0:
                    ** unknown); two writers take the heaviest first */
} ts_out_file_t;

/* Writes the n files into dir as one set (ts_atomic.c, README "Outputs"):
** readers see dir with all the old files or all the new ones, and every
** other entry of dir (a user's file) is kept.  Where dir cannot be swapped
** (it holds a subdirectory, is a symbolic link or a mount point, ...) the
** files are renamed in one at a time, each whole.  On failure no new file
** is left and a directory that did not exist is not created; temporaries
** of dead processes are removed first; SIGTERM, SIGINT and SIGHUP during
** the call remove this call's temporaries and end the process by the same
** signal.  Creates dir's parents if needed; n == 0 only creates dir.
** Returns 0 or EX_* with err set. */
int ts_write_set(const char *dir, const ts_out_file_t *files, int n, ts_err_t *err);

/* ts_write_outputs_mask with the figure options fig (NULL: defaults) for
** gantt.svg and report.html's figure. */
int ts_write_outputs_fig(const ts_result_t *r, const char *dir, unsigned mask,
                         const ts_gantt_opts_t *fig, ts_err_t *err);

/* Writes the default formats (TS_FORMATS_DEFAULT: all but paje.trace) into
** dir with ts_write_set. */
int ts_write_outputs(const ts_result_t *r, const char *dir, ts_err_t *err);
/* The same for the formats in mask only (TS_FORMATS_ALL: every format;
** 0 writes nothing but still creates dir).  Files of the other formats
** already in dir are kept. */
int ts_write_outputs_mask(const ts_result_t *r, const char *dir, unsigned mask, ts_err_t *err);

/* Creates dir and its parents (mkdir -p); EX_CANTCREAT naming dir. */
int ts_write_dir(const char *dir, ts_err_t *err);

/* Atomic single-file write: calls fn(arg, f) on "DIR/.NAME.tmp.PID", then
** renames it over path; the temporary is removed on failure and on the
** signals above.  Used by every writer of a single file. */
int ts_write_atomic(const char *path, ts_write_fn fn, const void *arg, ts_err_t *err);

/* Removes the temporaries that dead processes left: ".X.tmp.PID" files in
** dir and ".BASE.tmp.PID" directories next to it (BASE: dir's last name). */
void ts_out_clean_stale(const char *dir);

/* ---- summary.json ------------------------------------------------------ */

/* The summary.json tree of a result (caller frees with cJSON_Delete); the
** type is cJSON's, left opaque here. */
struct cJSON *ts__summary_json(const ts_result_t *r);
/* Adds the job as run ("job": file, schedule, model, platform, counts,
** recompute, bytes_per_element) to parent and returns that object. */
struct cJSON *ts__job_json(struct cJSON *parent, const ts_job_t *job,
                           const struct ts_schedule *sched);

/* How the report shows a summary metric's value. */
typedef enum ts_metric_show {
  TS_SHOW_TIME,    /* "668.43 ms" */
  TS_SHOW_FIXED4,  /* "0.2727" */
  TS_SHOW_SI,      /* "1.234 k<unit>" */
  TS_SHOW_PERCENT, /* "41.20 %" of a fraction */
  TS_SHOW_BYTES,   /* "17.19 GiB" */
  TS_SHOW_COUNT    /* "6.658 billion" */
} ts_metric_show_t;

/* One top-level summary metric of summary.json (the "moe", "devices" and
** "links" objects have their own tables in the report and in README). */
typedef struct ts_summary_metric {
  const char *name;       /* its path in summary.json: "throughput.mfu" */
  const char *unit;       /* "s", "B", "samples/s", ...; "1" for ratios */
  ts_metric_show_t show;  /* the report's format */
  bool flops;             /* known only for models with FLOPs (transformers,
                          ** which also have a real seq_len): null else */
  bool from_cost;         /* from r->cost, not from r->metrics */
  double (*value)(const ts_result_t *r); /* call only when available */
  const char *definition; /* README's definition, without the backticks */
} ts_summary_metric_t;

/* Metric i, in summary.json's order, or NULL past the last (for loops
** such as `for (i = 0; (m = ts_summary_metric_at(i)); i++)`, which is how
** a sweep's CSV columns can be derived from the list). */
const ts_summary_metric_t *ts_summary_metric_at(int i);
/* Whether r has the metric: its source (metrics or cost) is there and,
** for a FLOPs metric, the model has FLOPs. */
bool ts_summary_metric_available(const ts_summary_metric_t *m, const ts_result_t *r);
/* The metric's value for r: m->value(r) when available, else NAN (which
** summary.json writes as null). */
double ts_summary_metric_value(const ts_summary_metric_t *m, const ts_result_t *r);

/* ---- links (ts_report_links.c; README "summary.json", links[]) ---------- */

/* The makespan T of run: the latest end of any event (0 when none). */
double ts__links_T(const ts_run_t *run);
/* The class of a link named name, into buf (n bytes, at least 2; the name
** is cut to fit): the name without a trailing "_UP" or "_DOWN", each run
** of decimal digits replaced by "N" ("leaf3-spine12" is "leafN-spineN",
** "nvlink-node0-gpu5_UP" is "nvlink-nodeN-gpuN").  Returns buf. */
const char *ts__link_class(const char *name, char *buf, size_t n);
/* busy_s / T, in [0, 1] (0 when T <= 0): the share of the run during which
** at least one transfer crossed the link. */
double ts__link_utilisation(const ts_link_use_t *u, double T);
/* A shared link: bytes / (bandwidth x T); a FATPIPE link: bytes /
** (bandwidth x flow_s), its flows' mean rate over the per-flow cap.  At
** most 1 up to rounding, as SimGrid keeps a shared link's flows within
** its bandwidth and each flow of a FATPIPE link within it.  0 when the
** denominator is not positive. */
double ts__link_load(const ts_link_use_t *u, double T);

/* One link class of a run: its links' count (a SPLITDUPLEX link's
** directions count as two), how many are FATPIPE, the sum of their bytes,
** and the mean and largest utilisation and largest load over them. */
typedef struct ts__link_class {
  char name[TS_NAME_MAX];
  int links, fatpipe;
  double bytes, util_mean, util_max, load_max;
} ts__link_class_t;
/* The classes of run's links, most bytes first (ties by name), into *out
** (caller frees; NULL when none); returns their count. */
int ts__link_classes(const ts_run_t *run, double T, ts__link_class_t **out);
/* The indices into run->links of its k hottest links (at most k, at most
** run->n_links), hottest first: by utilisation, then load, then bytes,
** then name.  Returns their count. */
int ts__link_hottest(const ts_run_t *run, double T, int *idx, int k);

/* ---- text helpers shared by the writers --------------------------------- */

/* Fast formatting for the writers' hot loops (printf's %.2f and %d are
** the bulk of writing a large timeline).  buf holds at least 64 bytes;
** returns the length written.  ts__fmt_fixed rounds x to d (0..6)
** decimals, like "%.*f" but by llround, deterministically; "-0.00" never
** appears. */
int ts__fmt_int(char *buf, long long v);
/* "00" "01" ... "99": two decimal digits at 2 * n. */
extern const char ts__digits2[201];
/* Seconds to whole nanoseconds, clamped to [0, 4.6e18] (NaN and negative
** times: 0), for the writers that print fixed-point times. */
int64_t ts__to_ns(double s);
/* "device D (HOST)", or "device D" for a device without a host name, into
** buf (cap bytes), for the traces' device labels. */
void ts__device_label(const ts_run_t *run, int d, char *buf, size_t cap);
int ts__fmt_fixed(char *buf, double x, int d);
/* Exactly what snprintf(buf, 64, "%.17g", x) writes, without printf
** (ts_fmt_num.c): buf holds at least 64 bytes; returns the length. */
int ts__fmt_g17(char *buf, double x);

/* A line buffer: the writers assemble records in it and write them with
** fwrite, not printf (ts_fmt_num.c says why).  Set f, n = 0; appending
** flushes to f when full; call ts__lb_flush at the end.  256 KiB: a flush
** larger than the FILE's buffer goes to write(2) whole, and 40 MB of
** trace.json took 16 ms to write in 8 KiB pieces, 9.5 ms in 256 KiB ones.
** Allocate it (ts__xcalloc), never on the stack. */
typedef struct ts__lb {
  FILE *f;
  int n;
  long long total; /* bytes flushed so far */
  char b[1 << 18];
} ts__lb_t;
/* Bytes appended so far (flushed or not). */
static inline long long ts__lb_size(const ts__lb_t *b) { return b->total + b->n; }
void ts__lb_flush(ts__lb_t *b, FILE *f);
/* n bytes of s: the slow path of ts__lb_s (a flush first, or a long string
** straight through). */
void ts__lb_mem(ts__lb_t *b, const char *s, size_t n);
/* Inline, so that a literal's strlen is folded (the writers append some
** ten literals a record). */
static inline void ts__lb_s(ts__lb_t *b, const char *s) {
  size_t n = strlen(s);
  if ((size_t)b->n + n < sizeof b->b) {
    memcpy(b->b + b->n, s, n);
    b->n += (int)n;
  } else {
    ts__lb_mem(b, s, n);
  }
}
/* Room for need (at most half the buffer) more bytes at b->b + b->n
** (flushing first when short), for a writer that formats in place and
** then adds to b->n. */
static inline char *ts__lb_reserve(ts__lb_t *b, size_t need) {
  if ((size_t)b->n + need >= sizeof b->b) ts__lb_flush(b, b->f);
  return b->b + b->n;
}
static inline void ts__lb_c(ts__lb_t *b, char c) {
  *ts__lb_reserve(b, 1) = c;
  b->n++;
}
void ts__lb_i(ts__lb_t *b, long long v);
void ts__lb_g17(ts__lb_t *b, double v);
void ts__lb_fixed(ts__lb_t *b, double v, int d);
/* Writes the first n bytes of s (stopping at its NUL) escaped for XML and
** HTML text and attributes; control characters become '?'. */
void ts__xml_put(FILE *f, const char *s, size_t n);
/* All of s, escaped as ts__xml_put does. */
void ts__xml_puts(FILE *f, const char *s);
/* "17.19 GiB": bytes with a binary prefix, into buf; returns buf. */
const char *ts__human_bytes(double b, char *buf, size_t cap);
/* The binary unit in which b reads between 1 and 1024, at most the max-th
** (0 "B" .. 5 "PiB"): its name in *name; returns its size in bytes. */
double ts__byte_unit(double b, int max, const char **name);
/* The 1-2-5 step (1, 2 or 5 times a power of ten) giving about target
** intervals over span (> 0 for a meaningful step); target > 0. */
double ts__nice_step(double span, double target);

/* ---- data-parallel stream events (ts_out_coll.c) ------------------------ */

/* "tp", "ep", "dp", "pp", "replica"; "other" for TS_GROUP_KINDS (a
** collective over a group that is no plan group) and anything else. */
const char *ts__group_kind_name(int g);
/* Whether run holds a TS_COLLECTIVE, TS_OPTIMIZER or TS_COMM_WAIT event:
** only then do the writers add their extra columns, tracks and lanes. */
bool ts__run_has_stream(const ts_run_t *run);
/* The name of collective event e (TS_COLLECTIVE or TS_SEND_COLL) into buf
** (n bytes; snprintf's return): "OP PURPOSE" and then "bK" for the bucket
** K of a gradient (zero 0-2) or parameter collective, the micro-batch
** from 1 for the others (zero 3's gathers and reduce-scatters, a
** schedule's own collectives), nothing when e->mb < 0:
** "all-reduce grads b3", "all-gather gather 2", "all-reduce schedule". */
int ts__coll_label(char *buf, size_t n, const ts_result_t *r, const ts_event_t *e);

/* ---- symmetry folding (ts_out_fold.c; README "Symmetry folding") --------- */

/* The classes of a folded run (its representatives, the devices with
** fold[d] == d); 0 when run->fold is NULL (every device simulated). */
int ts__fold_classes(const ts_run_t *run);
/* The representatives as a device list ("0,4", "0-3,8"), malloc'd (caller
** frees; "" when not folded). */
char *ts__fold_reps(const ts_run_t *run);
/* The one line on stderr saying that a folded run's timeline.csv,
** trace.json and paje.trace (those of them in mask) hold only the
** representatives' events; nothing when not folded or o->quiet_notes. */
void ts__fold_note(const ts_result_t *r, unsigned mask, const ts_out_opts_t *o);

/* Human summary for stdout. */
void ts_print_summary(const ts_result_t *r, FILE *f);

#endif
