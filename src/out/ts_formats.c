/*
** ts_formats.c: the output-format registry (the list is ts_formats.h) and
** the -f/--formats list parser.
*/
#include <string.h>
#include <sysexits.h>

#include "ts_out.h"

static const ts_format_t formats[TS_N_FORMATS] = {
#define TS__FMT_ROW(id, file, fn, weight, dflt, about) [TS_FMT_##id] = {file, fn, about, weight, dflt},
    TS_FORMATS(TS__FMT_ROW)
#undef TS__FMT_ROW
};

const ts_format_t *ts_format_at(int i) { return i >= 0 && i < TS_N_FORMATS ? &formats[i] : NULL; }

/* The format named by s[0..n): its file name or its file name up to the
** last dot.  -1 when none. */
static int format_index(const char *s, size_t n) {
  for (int i = 0; i < TS_N_FORMATS; i++) {
    const char *file = formats[i].file, *dot = strrchr(file, '.');
    size_t stem = dot ? (size_t)(dot - file) : strlen(file);
    if ((n == strlen(file) && !strncmp(s, file, n)) || (n == stem && !strncmp(s, file, n))) return i;
  }
  return -1;
}

void ts_formats_print(FILE *f, unsigned mask, const char *sep) {
  int k = 0;
  for (int i = 0; i < TS_N_FORMATS; i++)
    if (mask & TS_FORMAT_BIT(i)) fprintf(f, "%s%s", k++ ? sep : "", formats[i].file);
}

int ts_formats_parse(const char *list, unsigned *mask, ts_err_t *err) {
  char known[256] = "";
  size_t k = 0;
  for (int i = 0; i < TS_N_FORMATS && k < sizeof known; i++)
    k += (size_t)snprintf(known + k, sizeof known - k, "%s, ", formats[i].file);
  if (k < sizeof known) snprintf(known + k, sizeof known - k, "all");
  unsigned m = 0;
  const char *p = list ? list : "";
  do {
    size_t n = strcspn(p, ",");
    int i = format_index(p, n);
    if (i < 0 && n == 3 && !strncmp(p, "all", 3)) { /* every format */
      m |= TS_FORMATS_ALL;
      p += n;
      continue;
    }
    if (i < 0 && n)
      return ts_err_set(err, EX_USAGE, "-f/--formats: unknown format '%.*s' (known: %s)", (int)n, p,
                        known);
    if (i < 0)
      return ts_err_set(err, EX_USAGE, "-f/--formats: empty format name in '%s' (known: %s)",
                        list ? list : "", known);
    m |= TS_FORMAT_BIT(i);
    p += n;
  } while (*p++ == ',');
  *mask = m;
  return 0;
}
