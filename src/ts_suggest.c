/*
** ts_suggest.c: "did you mean 'X'?", the nearest known name to a misspelt
** one (a job field, a command-line option, a command), by the optimal
** string alignment distance (Levenshtein plus swaps of neighbouring
** characters, each edit costing 1), ignoring ASCII case.
*/
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "ts_internal.h"

/* Words longer than this are compared by their first TS_SUGGEST_MAX
** characters only; names are short (the longest job field has 19). */
#define TS_SUGGEST_MAX 64

/* The optimal string alignment distance between a[0..na) and b[0..nb),
** both at most TS_SUGGEST_MAX long, ignoring case. */
static size_t osa_distance(const char *a, size_t na, const char *b, size_t nb) {
  size_t d[TS_SUGGEST_MAX + 1][TS_SUGGEST_MAX + 1];
  for (size_t i = 0; i <= na; i++) d[i][0] = i;
  for (size_t j = 0; j <= nb; j++) d[0][j] = j;
  for (size_t i = 1; i <= na; i++)
    for (size_t j = 1; j <= nb; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      size_t best = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[na][nb];
}

const char *ts__suggest_n(const char *word, size_t n, const char *const *names) {
  if (n > TS_SUGGEST_MAX) n = TS_SUGGEST_MAX;
  size_t limit = 1 + n / 4;
  if (limit > 3) limit = 3;
  const char *best = NULL, *prefix_of = NULL;
  size_t best_d = limit + 1;
  int n_prefix = 0;
  for (const char *const *p = names; *p; p++) {
    size_t len = strlen(*p);
    if (len == n && strncmp(*p, word, n) == 0) return NULL; /* known: nothing to suggest */
    if (n >= 3 && len > n && strncasecmp(*p, word, n) == 0) {
      prefix_of = *p;
      n_prefix++;
    }
    if (len > TS_SUGGEST_MAX) continue;
    size_t d = osa_distance(word, n, *p, len);
    if (d < best_d && d < len) { /* a name is not near when every character differs */
      best_d = d;
      best = *p;
    }
  }
  if (best) return best;
  return n_prefix == 1 ? prefix_of : NULL;
}

const char *ts__suggest(const char *word, const char *const *names) {
  return ts__suggest_n(word, strlen(word), names);
}
