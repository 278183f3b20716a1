/*
** ts_bench.h: `trainsim bench`, the speed and memory benchmark.
*/
#ifndef TS_BENCH_H
#define TS_BENCH_H
/* Runs the benchmark repeat times and writes dir/bench.json.  Returns a
** sysexits code (after printing a one-line error). */
int ts_bench_run(const char *dir, int repeat);
#endif
