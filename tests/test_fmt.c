/*
** test_fmt.c: the writers' own number formatting (ts_fmt_num.c) against
** libc: ts__fmt_g17 must give exactly snprintf's "%.17g" bytes (the
** outputs stay byte-identical), over random bit patterns, times in the
** ranges runs produce, whole numbers, halfway cases, powers of ten and
** their neighbours, subnormals and signed zeros; ts__fmt_int gives "%lld"'s
** bytes; and the line buffer writes what was appended, in order, across
** flushes and for strings longer than half of it.
*/
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_out.h"
#include "tsunit.h"

/* Counts the values whose formatting differs from libc, printing the first few. */
static int check(double x, int *shown) {
  char a[64], b[64];
  snprintf(a, sizeof a, "%.17g", x);
  int n = ts__fmt_g17(b, x);
  if (strcmp(a, b) || n != (int)strlen(a)) {
    if ((*shown)++ < 5) fprintf(stderr, "%a: libc %s, ours %s (%d)\n", x, a, b, n);
    return 1;
  }
  return 0;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void test_g17_random_bits(void) {
  int bad = 0, shown = 0;
  for (int i = 0; i < 300000; i++) {
    uint64_t u = next();
    double x;
    memcpy(&x, &u, sizeof x);
    bad += check(x, &shown);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_g17_times(void) {
  int bad = 0, shown = 0;
  for (int i = 0; i < 300000; i++) {
    /* seconds from 1 ns to 1e5 s, and sums of such as simulators make */
    double x = pow(10.0, -9.0 + 14.0 * (double)(next() >> 11) / 9007199254740992.0);
    bad += check(x, &shown);
    bad += check(x + 1e-6 * (double)(i % 977), &shown);
    bad += check((double)(i % 100000) * 1e-6, &shown);
    bad += check((double)(i % 4096) / 1024.0 * 0.001, &shown);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_g17_edges(void) {
  int bad = 0, shown = 0;
  static const double fixed[] = {0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 0.2, 0.3, 1e-4, 9.9999999999999995e-5,
                                 1e-5, 1e16, 1e17, 9.9999999999999998e16, 123456789012345678.0,
                                 4.9406564584124654e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                                 0.99999999999999989, 9.9999999999999982, 0.015625, 3.0517578125e-05,
                                 NAN, INFINITY, -INFINITY, 9007199254740993.0, 9007199254740992.0,
                                 72057594037927936.0};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) bad += check(fixed[i], &shown);
  for (int e = -330; e <= 30; e++) {
    double p = pow(10.0, e);
    bad += check(p, &shown) + check(nextafter(p, 0), &shown) + check(nextafter(p, INFINITY), &shown);
    bad += check(-p, &shown);
  }
  for (int e = -1074; e <= 60; e++) bad += check(ldexp(1.0, e), &shown) + check(ldexp(3.0, e), &shown);
  for (long long v = 0; v < 200000; v++) bad += check((double)v, &shown) + check((double)v + 0.5, &shown);
  CU_ASSERT_EQUAL(bad, 0);
}

static void test_line_buffer(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  ts__lb_t *b = calloc(1, sizeof *b);
  b->f = f;
  char want[64];
  size_t total = 0;
  for (int i = 0; i < 50000; i++) { /* several times the buffer (256 KiB) */
    ts__lb_i(b, i);
    ts__lb_c(b, ',');
    ts__lb_g17(b, i * 0.001);
    ts__lb_s(b, " x\n");
    total += (size_t)snprintf(want, sizeof want, "%d,%.17g x\n", i, i * 0.001);
  }
  ts__lb_flush(b, f);
  fclose(f);
  CU_ASSERT_EQUAL(len, total);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "4999,4.9989999999999997 x\n"));
  CU_ASSERT_EQUAL(strncmp(buf, "0,0 x\n1,0.001 x\n", 16), 0);
  free(b);
  free(buf);

  /* a string of over half the buffer goes straight through, in order */
  f = open_memstream(&buf, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  b = calloc(1, sizeof *b);
  b->f = f;
  size_t big = sizeof b->b / 2 + 10;
  char *s = malloc(big + 1);
  memset(s, 'y', big);
  s[big] = 0;
  ts__lb_s(b, "a");
  ts__lb_s(b, s);
  ts__lb_c(b, 'z');
  CU_ASSERT_EQUAL(ts__lb_size(b), (long long)big + 2);
  ts__lb_flush(b, f);
  fclose(f);
  CU_ASSERT_EQUAL(len, big + 2);
  CU_ASSERT(len == big + 2 && buf[0] == 'a' && buf[1] == 'y' && buf[big] == 'y' && buf[big + 1] == 'z');
  free(s);
  free(b);
  free(buf);
}

/* ts__fmt_int against "%lld": the edges, every number to 100000 and
** random ones of every magnitude. */
static void test_int(void) {
  static const long long edge[] = {0, 1, -1, 9, 10, -9, -10, 99, 100, -99, -100, 999, 1000,
                                   INT32_MAX, INT32_MIN, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1};
  int bad = 0;
  char a[32], b[32];
  for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
    snprintf(a, sizeof a, "%lld", edge[i]);
    bad += ts__fmt_int(b, edge[i]) != (int)strlen(a) || strcmp(a, b);
  }
  for (long long v = -100000; v <= 100000; v++) {
    snprintf(a, sizeof a, "%lld", v);
    bad += ts__fmt_int(b, v) != (int)strlen(a) || strcmp(a, b);
  }
  for (int i = 0; i < 200000; i++) {
    long long v = (long long)(next() >> (next() % 64));
    if ((i & 1) && v != LLONG_MIN) v = -v;
    snprintf(a, sizeof a, "%lld", v);
    bad += ts__fmt_int(b, v) != (int)strlen(a) || strcmp(a, b);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

TS_TESTS{TS_TEST(test_g17_random_bits), TS_TEST(test_g17_times), TS_TEST(test_g17_edges),
         TS_TEST(test_line_buffer), TS_TEST(test_int)};
TS_TEST_MAIN("number formatting")
