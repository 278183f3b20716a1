/*
** ts_bench.h: `trainsim bench`, the speed and memory benchmark.
*/
#ifndef TS_BENCH_H
#define TS_BENCH_H
/* Runs the benchmark; argv[0] is "bench".  Returns a sysexits code. */
int ts_bench_main(int argc, char **argv);
#endif
