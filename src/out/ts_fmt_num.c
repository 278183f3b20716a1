/*
** ts_fmt_num.c: exact, fast "%.17g" for the writers' hot loops, and the
** line buffer (ts__lb_t) they assemble records in.
**
** Why: a library the process loads (libquadmath) registers a printf
** modifier, and glibc then sends every printf-family call down its slow
** positional path (printf_positional was 13% of the benchmark's samples).
** The writers therefore format numbers themselves and write whole lines
** with fwrite.  ts__fmt_g17 gives exactly the bytes snprintf("%.17g")
** gives (the digits are the exact decimal value of the double rounded
** half to even at 17 significant digits, as glibc rounds), so the files
** stay byte-identical; tests/test_fmt.c compares the two on millions of
** values.  Values of 1e17 and above, NaN and infinities go to snprintf.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ts_out.h"

static const uint64_t pow10_u64[20] = {1ULL,
                                       10ULL,
                                       100ULL,
                                       1000ULL,
                                       10000ULL,
                                       100000ULL,
                                       1000000ULL,
                                       10000000ULL,
                                       100000000ULL,
                                       1000000000ULL,
                                       10000000000ULL,
                                       100000000000ULL,
                                       1000000000000ULL,
                                       10000000000000ULL,
                                       100000000000000ULL,
                                       1000000000000000ULL,
                                       10000000000000000ULL,
                                       100000000000000000ULL,
                                       1000000000000000000ULL,
                                       10000000000000000000ULL};

#define BIG_LIMBS 48 /* 1536 bits: 2^53 * 10^340 fits */

/* floor(m * 10^k / 2^s) into *q (which must fit 64 bits: the caller's
** estimate keeps it below 10^18, and larger results are reported as
** UINT64_MAX), and how the remainder compares with half of 2^s: -1 below,
** 0 equal, 1 above.  k in 0..340, s in 1..1200. */
static uint64_t scaled(uint64_t m, int k, int s, int *half) {
  if (k <= 19 && s < 128) { /* the common case: times between 1 ms and 1e17 s */
    unsigned __int128 p = (unsigned __int128)m * pow10_u64[k];
    unsigned __int128 q = p >> s, rem = p - (q << s), h = (unsigned __int128)1 << (s - 1);
    *half = rem < h ? -1 : rem > h;
    return q >> 64 ? UINT64_MAX : (uint64_t)q;
  }
  uint32_t a[BIG_LIMBS] = {(uint32_t)m, (uint32_t)(m >> 32)};
  int n = 2;
  while (k > 0) { /* a *= 10^min(k, 9) */
    int step = k > 9 ? 9 : k;
    uint64_t mul = pow10_u64[step], carry = 0;
    for (int i = 0; i < n; i++) {
      uint64_t v = (uint64_t)a[i] * mul + carry;
      a[i] = (uint32_t)v;
      carry = v >> 32;
    }
    if (carry && n < BIG_LIMBS) a[n++] = (uint32_t)carry;
    k -= step;
  }
  /* q: bits s .. s+63; the remainder: bits below s. */
  uint64_t q = 0;
  for (int b = 0; b < 64; b++) {
    int bit = s + b, li = bit / 32;
    if (li < n && (a[li] >> (bit % 32)) & 1) q |= 1ULL << b;
  }
  for (int li = (s + 64) / 32; li < n; li++) {
    uint32_t above = li == (s + 64) / 32 ? a[li] >> ((s + 64) % 32) : a[li];
    if (above) q = UINT64_MAX;
  }
  int hb = s - 1, hl = hb / 32;
  int top = hl < n ? (a[hl] >> (hb % 32)) & 1 : 0;
  int lower = 0;
  for (int li = 0; li <= hl && li < n && !lower; li++) {
    uint32_t v = a[li];
    if (li == hl) v &= (hb % 32) ? (uint32_t)((1ULL << (hb % 32)) - 1) : 0;
    lower = v != 0;
  }
  *half = !top ? -1 : lower ? 1 : 0;
  return q;
}

int ts__fmt_g17(char *buf, double x) {
  if (!isfinite(x) || fabs(x) >= 1e17) return snprintf(buf, 64, "%.17g", x);
  int len = 0;
  if (signbit(x)) buf[len++] = '-';
  x = fabs(x);
  if (x == 0) {
    buf[len++] = '0';
    buf[len] = 0;
    return len;
  }
  int e2;
  uint64_t bits, m;
  memcpy(&bits, &x, sizeof bits);
  if (bits >> 52) { /* normal: x = (2^52 + fraction) / 2^53 * 2^e2, as frexp splits it */
    m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    e2 = (int)(bits >> 52) - 1022;
  } else {
    double fr = frexp(x, &e2); /* x = fr * 2^e2, fr in [0.5, 1) */
    m = (uint64_t)ldexp(fr, 53);
  }
  int s = 53 - e2; /* x = m / 2^s; s <= 0: x is a whole number (below 2^57) */
  /* floor(log10(x)) or one below it (x >= 2^(e2 - 1)); the loop corrects. */
  int E = (int)floor((e2 - 1) * 0.30102999566398120), half = -1;
  uint64_t N = 0;
  for (int tries = 0; tries < 4; tries++) {
    int k = 16 - E;
    if (k < 0 || k > 340) return len + snprintf(buf + len, 60, "%.17g", x);
    if (s <= 0)
      N = k <= 2 ? (m << -s) * pow10_u64[k] : UINT64_MAX; /* exact: no rounding */
    else
      N = scaled(m, k, s, &half);
    if (N >= pow10_u64[17]) E++;
    else if (N < pow10_u64[16]) E--;
    else break;
  }
  if (half > 0 || (half == 0 && (N & 1))) N++;
  if (N == pow10_u64[17]) { /* 9.99..95 rounded up to 10.0...: one more digit */
    N = pow10_u64[16];
    E++;
  }
  char d[17];
  for (int i = 15; i >= 1; i -= 2, N /= 100) memcpy(d + i, ts__digits2 + 2 * (N % 100), 2);
  d[0] = (char)('0' + N);
  int nd = 17; /* significant digits left after dropping trailing zeros */
  while (nd > 1 && d[nd - 1] == '0') nd--;
  if (E < -4) { /* d.ddde-XX */
    buf[len++] = d[0];
    if (nd > 1) {
      buf[len++] = '.';
      memcpy(buf + len, d + 1, (size_t)(nd - 1));
      len += nd - 1;
    }
    buf[len++] = 'e';
    buf[len++] = '-';
    int ex = -E;
    if (ex >= 100) buf[len++] = (char)('0' + ex / 100);
    buf[len++] = (char)('0' + ex / 10 % 10);
    buf[len++] = (char)('0' + ex % 10);
  } else if (E < 0) { /* 0.000ddd */
    buf[len++] = '0';
    buf[len++] = '.';
    for (int i = 0; i < -E - 1; i++) buf[len++] = '0';
    memcpy(buf + len, d, (size_t)nd);
    len += nd;
  } else { /* ddd.ddd */
    memcpy(buf + len, d, (size_t)(E + 1));
    len += E + 1;
    if (nd > E + 1) {
      buf[len++] = '.';
      memcpy(buf + len, d + E + 1, (size_t)(nd - E - 1));
      len += nd - E - 1;
    }
  }
  buf[len] = 0;
  return len;
}

/* ---- the line buffer ---------------------------------------------------- */

void ts__lb_flush(ts__lb_t *b, FILE *f) {
  if (b->n) fwrite(b->b, 1, (size_t)b->n, f);
  b->total += b->n;
  b->n = 0;
}

void ts__lb_mem(ts__lb_t *b, const char *s, size_t n) {
  if (n >= sizeof b->b / 2) { /* long strings: straight through */
    ts__lb_flush(b, b->f);
    fwrite(s, 1, n, b->f);
    b->total += (long long)n;
    return;
  }
  ts__lb_reserve(b, n);
  memcpy(b->b + b->n, s, n);
  b->n += (int)n;
}

void ts__lb_i(ts__lb_t *b, long long v) {
  ts__lb_reserve(b, 24);
  b->n += ts__fmt_int(b->b + b->n, v);
}

void ts__lb_g17(ts__lb_t *b, double v) {
  ts__lb_reserve(b, 64);
  b->n += ts__fmt_g17(b->b + b->n, v);
}

void ts__lb_fixed(ts__lb_t *b, double v, int d) {
  ts__lb_reserve(b, 64);
  b->n += ts__fmt_fixed(b->b + b->n, v, d);
}
