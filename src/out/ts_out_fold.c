/*
** ts_out_fold.c: what the writers say about a folded run (ts_run_t.fold,
** README "Symmetry folding"): the simulator ran one representative per
** class of tensor-parallel ranks x data-parallel replicas, so only the
** representatives have events.  gantt.svg draws every device from its
** representative's events; timeline.csv, trace.json and paje.trace write
** the representatives' events only; summary.json's `fold` object, the
** trace's otherData.fold, a comment in paje.trace, the report's header and
** one line on stderr say so (README "Outputs").
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_out.h"
#include "ts_internal.h"

int ts__fold_classes(const ts_run_t *run) {
  if (!run || !run->fold) return 0;
  int n = 0;
  for (int d = 0; d < run->n_devices; d++) n += run->fold[d] == d;
  return n;
}

char *ts__fold_reps(const ts_run_t *run) {
  int n = ts__fold_classes(run);
  size_t cap = (size_t)n * 24 + 1, len = 0;
  char *s = ts__xmalloc(cap);
  s[0] = 0;
  for (int d = 0; n && d < run->n_devices; d++) {
    if (run->fold[d] != d) continue;
    int e = d; /* a run of consecutive representatives d..e */
    while (e + 1 < run->n_devices && run->fold[e + 1] == e + 1) e++;
    len += (size_t)snprintf(s + len, cap - len, e > d ? "%s%d-%d" : "%s%d", len ? "," : "", d, e);
    d = e;
  }
  return s;
}

void ts__fold_note(const ts_result_t *r, unsigned mask, const ts_out_opts_t *o) {
  unsigned ev = TS_FORMAT_BIT(TS_FMT_TIMELINE) | TS_FORMAT_BIT(TS_FMT_TRACE) | TS_FORMAT_BIT(TS_FMT_PAJE);
  if (!r->run->fold || !(mask & ev) || (o && o->quiet_notes)) return;
  /* "a", "a and b", "a, b and c": the event files written */
  char files[80] = "";
  int n = 0, k = 0;
  for (int i = 0; i < TS_N_FORMATS; i++) n += (mask & ev & TS_FORMAT_BIT(i)) != 0;
  for (int i = 0; i < TS_N_FORMATS; i++)
    if (mask & ev & TS_FORMAT_BIT(i)) {
      size_t l = strlen(files);
      snprintf(files + l, sizeof files - l, "%s%s", k == 0 ? "" : k == n - 1 ? " and " : ", ", ts_format_at(i)->file);
      k++;
    }
  char *reps = ts__fold_reps(r->run);
  fprintf(stderr, "trainsim: note: folded run: %s %s the events of the %d "
                  "simulated representatives only (devices %s of %d); every other device's are its "
                  "representative's (summary.json fold; --exact simulates every device)\n",
          files, n > 1 ? "hold" : "holds", ts__fold_classes(r->run), reps, r->run->n_devices);
  free(reps);
}
