/*
** ts_bench_int.h: the pieces `trainsim bench`'s files share (ts_bench.c:
** the p64 case and the helpers; bench_cases.c: the curve and all-reduce
** cases; bench_bare.c: the bare SimGrid loop).
*/
#ifndef TS_BENCH_INT_H
#define TS_BENCH_INT_H
#include <stddef.h>

#include <cjson/cJSON.h>

#include "trainsim.h"

/* One timed process: wall time, CPU time (user + system, with its
** children) and peak RSS of the process tree. */
typedef struct ts_bench_sample {
  double wall_s, cpu_s, rss_mb;
} ts_bench_sample_t;

/* Runs `self args...` (args NULL-terminated, at most 30; env: NULL or a
** "NAME=VALUE" put into its environment) and waits; 0 when it exited 0,
** with *s filled; -1 otherwise. */
int ts__bench_run_once(const char *self, const char *const *args, const char *env,
                       ts_bench_sample_t *s);
/* This executable's path into self (cap bytes); a sysexits code after a
** one-line error. */
int ts__bench_self(char *self, size_t cap);
/* Writes o into dir/name atomically (creating dir) and frees o; a sysexits
** code after a one-line error. */
int ts__bench_write(const char *dir, const char *name, cJSON *o);
/* Sorts v[0..n-1] in place and returns its median (v[n / 2]). */
double ts__bench_median(double *v, int n);
int ts__bench_cmp_double(const void *a, const void *b);
/* The cases of bench_cases.c (ts_bench_run's contract). */
int ts__bench_curve(const char *dir, int repeat);
int ts__bench_allreduce(const char *dir, int repeat);
/* The bare SimGrid loop (bench_bare.c) of the 1F1B job at path, run in
** this process (`trainsim bench` with TRAINSIM_BENCH_BARE=path); returns
** the exit status: 0, or a sysexits code after a one-line error. */
int ts__bench_bare_main(const char *path);

#endif
