/*
** ts_bench.h: `trainsim bench`, the speed and memory benchmark.
*/
#ifndef TS_BENCH_H
#define TS_BENCH_H
#include <stdio.h>

/* The targets (README "Results and benchmark"): median wall time and peak
** resident set of one benchmark run. */
#define TS_BENCH_TARGET_S 1.5
#define TS_BENCH_TARGET_MB 200.0
/* trainsim's median over the bare SimGrid loop's, in the same run. */
#define TS_BENCH_TARGET_RATIO 1.5

/* Runs benchmark case bcase (NULL or "p64": the benchmark job next to the
** bare SimGrid loop, dir/bench.json; "curve": seconds per event and memory
** per device against p, dir/bench-curve.json; "allreduce": a 1 GiB ring
** all-reduce over 1,024 GPUs, dir/bench-allreduce.json) repeat times.
** Returns a sysexits code (after printing a one-line error). */
int ts_bench_run(const char *dir, int repeat, const char *bcase);
/* Writes to f one line per figure above its target ("bench: the median
** 1.612 s is above the target of 1.5 s"), or one line saying both are
** within them.  Returns 1 when one is above, else 0.  The exit status of
** `trainsim bench` stays 0 either way. */
int ts_bench_verdict(FILE *f, double median_s, double peak_rss_mb);
#endif
