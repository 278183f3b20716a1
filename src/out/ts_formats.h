/*
** ts_formats.h: the output formats of a run, declared once.
**
** One line per format: its identifier (TS_FMT_<ID>), the file it writes
** (also its name for -f/--formats), the writer, its writing time relative
** to the others' (measured on the benchmark job and the folded Megatron 1T
** job; two writer processes take the heaviest first, ts_atomic.c) and a
** one-line description.
** Everything that enumerates outputs (ts_write_outputs, -f, the "outputs"
** line of `trainsim run`, the README test) walks this list, so adding a
** format is its writer file plus one line here.  The order is the order of
** writing and of renaming into place.
*/
#ifndef TS_FORMATS_H
#define TS_FORMATS_H

#define TS_FORMATS(X)                                                                                 \
  X(SUMMARY, "summary.json", ts_write_summary_json, 0.5, "the run's metrics, per device, per link") \
  X(TIMELINE, "timeline.csv", ts_write_timeline_csv, 4, "one row per op and transfer")           \
  X(TRACE, "trace.json", ts_write_trace_json, 3, "Chrome Trace Event Format, for Perfetto")      \
  X(GANTT, "gantt.svg", ts_write_gantt_svg, 1, "the pipeline figure, one row per device")        \
  X(REPORT, "report.html", ts_write_report_html, 3, "one self-contained page about the run")  \
  X(PAJE, "paje.trace", ts_write_paje, 5, "Paje trace of the timeline, for ViTE")

/* TS_FMT_SUMMARY, ... : a format's index in the list. */
enum {
#define TS__FMT_ENUM(id, file, fn, weight, about) TS_FMT_##id,
  TS_FORMATS(TS__FMT_ENUM)
#undef TS__FMT_ENUM
  TS_N_FORMATS
};

/* A set of formats: bit i is format i.  TS_FORMATS_ALL is every format. */
#define TS_FORMAT_BIT(i) (1u << (i))
#define TS_FORMATS_ALL (TS_FORMAT_BIT(TS_N_FORMATS) - 1u)

#endif
