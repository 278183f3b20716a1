/*
** ts_fmt.c: the text helpers the writers share: fast integer and fixed-point
** formatting for hot loops, XML/HTML escaping, byte counts with binary
** prefixes and the 1-2-5 steps of chart axes (the writers' and the sweep's
** plots).  Deterministic; nothing depends on the locale.
*/
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ts_out.h"

const char ts__digits2[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";

int ts__fmt_int(char *buf, long long v) {
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  int len = 0;
  if (v < 0) buf[len++] = '-';
  if (u < 10) { /* most numbers of a trace: devices, stages, micro-batches */
    buf[len++] = (char)('0' + u);
    buf[len] = 0;
    return len;
  }
  int nd = 2; /* the digits, counted; then written from the last, two at a time */
  for (unsigned long long p = 100; nd < 20 && u >= p; p *= 10) nd++;
  char *q = buf + len + nd;
  *q = 0;
  for (; u >= 100; u /= 100) {
    q -= 2;
    memcpy(q, ts__digits2 + 2 * (u % 100), 2);
  }
  if (u >= 10)
    memcpy(q - 2, ts__digits2 + 2 * u, 2);
  else
    q[-1] = (char)('0' + u);
  return len + nd;
}

int ts__fmt_fixed(char *buf, double x, int d) {
  assert(d >= 0 && d <= 6);
  static const double pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
  if (d < 0 || d > 6 || !(x > -9e14 && x < 9e14)) return snprintf(buf, 64, "%.*f", d < 0 ? 0 : d, x);
  long long q = llround(x * pow10[d]);
  int len = 0;
  if (q < 0) {
    buf[len++] = '-';
    q = -q;
  }
  long long ip = q / (long long)pow10[d], fp = q % (long long)pow10[d];
  len += ts__fmt_int(buf + len, ip);
  if (d > 0) {
    buf[len++] = '.';
    for (int i = d - 1; i >= 0; i--) {
      buf[len + i] = (char)('0' + fp % 10);
      fp /= 10;
    }
    len += d;
  }
  buf[len] = 0;
  return len;
}

void ts__xml_put(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    switch (c) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      case '\'': fputs("&#39;", f); break;
      default:
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') c = '?';
        fputc(c, f);
    }
  }
}

void ts__xml_puts(FILE *f, const char *s) { ts__xml_put(f, s, strlen(s)); }

double ts__byte_unit(double b, int max, const char **name) {
  assert(name && max >= 0);
  static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (max > 5) max = 5;
  int i = 0;
  double per = 1;
  /* Powers of two scale exactly: b / per is what dividing by 1024 i times
  ** gives. */
  while (b >= 1024.0 * per && i < max) {
    per *= 1024.0;
    i++;
  }
  *name = u[i];
  return per;
}

const char *ts__human_bytes(double b, char *buf, size_t cap) {
  const char *u;
  double per = ts__byte_unit(b, 4, &u);
  snprintf(buf, cap, per > 1 ? "%.2f %s" : "%.0f %s", b / per, u);
  return buf;
}

double ts__nice_step(double span, double target) {
  assert(target > 0);
  double raw = span / target, mag = pow(10.0, floor(log10(raw))), norm = raw / mag;
  return (norm <= 1.0 ? 1.0 : norm <= 2.0 ? 2.0 : norm <= 5.0 ? 5.0 : 10.0) * mag;
}

int64_t ts__to_ns(double s) {
  double ns = s * 1e9;
  if (!(ns > 0)) return 0;
  if (ns >= 4.6e18) return INT64_C(4600000000000000000);
  return (int64_t)llround(ns);
}

void ts__device_label(const ts_run_t *run, int d, char *buf, size_t cap) {
  if (run->devices[d].name[0])
    snprintf(buf, cap, "device %d (%s)", d, run->devices[d].name);
  else
    snprintf(buf, cap, "device %d", d);
}
