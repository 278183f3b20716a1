/*
** ts_formats.h: the output formats of a run, declared once.
**
** One line per format: its identifier (TS_FMT_<ID>), the file it writes
** (also its name for -f/--formats), the writer, its writing time relative
** to the others' (measured on the benchmark job and the folded Megatron 1T
** job; two writer processes take the heaviest first, ts_atomic.c), whether
** a run writes it without -f (1) or only when -f names it (0), and a
** one-line description.
** Everything that enumerates outputs (ts_write_outputs, -f, the "outputs"
** line of `trainsim run`, the README test) walks this list, so adding a
** format is its writer file plus one line here.  The order is the order of
** writing and of renaming into place.
**
** paje.trace is written on request: it is a second full trace (Perfetto's
** trace.json is the first) for ViTE users, and the costliest file of the
** benchmark job (a third of its writing time); SimGrid too writes its Paje
** traces only when asked.
*/
#ifndef TS_FORMATS_H
#define TS_FORMATS_H

#define TS_FORMATS(X)                                                                                 \
  X(SUMMARY, "summary.json", ts_write_summary_json, 0.5, 1, "the run's metrics, per device, per link") \
  X(TIMELINE, "timeline.csv", ts_write_timeline_csv, 4, 1, "one row per op and transfer")           \
  X(TRACE, "trace.json", ts_write_trace_json, 3, 1, "Chrome Trace Event Format, for Perfetto")      \
  X(GANTT, "gantt.svg", ts_write_gantt_svg, 1, 1, "the pipeline figure, one row per device")        \
  X(REPORT, "report.html", ts_write_report_html, 3, 1, "one self-contained page about the run")  \
  X(PAJE, "paje.trace", ts_write_paje, 5, 0, "Paje trace of the timeline, for ViTE")

/* TS_FMT_SUMMARY, ... : a format's index in the list. */
enum {
#define TS__FMT_ENUM(id, file, fn, weight, dflt, about) TS_FMT_##id,
  TS_FORMATS(TS__FMT_ENUM)
#undef TS__FMT_ENUM
  TS_N_FORMATS
};

/* A set of formats: bit i is format i.  TS_FORMATS_ALL is every format,
** TS_FORMATS_DEFAULT those a run writes without -f. */
#define TS_FORMAT_BIT(i) (1u << (i))
#define TS_FORMATS_ALL (TS_FORMAT_BIT(TS_N_FORMATS) - 1u)
#define TS__FMT_DEFAULT(id, file, fn, weight, dflt, about) | ((dflt) ? TS_FORMAT_BIT(TS_FMT_##id) : 0u)
#define TS_FORMATS_DEFAULT (0u TS_FORMATS(TS__FMT_DEFAULT))

#endif
