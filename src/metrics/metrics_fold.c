/*
** metrics_fold.c: the metrics of a device folded onto its representative
** (ts_fold.h, README "Symmetry folding"): by symmetry they are the
** representative's, so they are copied, memory-over-time steps included.
*/
#include <string.h>

#include "ts_fold.h"
#include "ts_internal.h"

/* A malloc'd copy of n doubles (NULL when n is 0). */
static double *dup_d(const double *a, int n) {
  if (n <= 0 || !a) return NULL;
  double *b = ts__xmalloc((size_t)n * sizeof *b);
  memcpy(b, a, (size_t)n * sizeof *b);
  return b;
}

void ts__metrics_fold_copy(ts_device_metrics_t *dst, const ts_device_metrics_t *src) {
  *dst = *src;
  dst->mem_t = dup_d(src->mem_t, src->n_mem);
  dst->mem_bytes = dup_d(src->mem_bytes, src->n_mem);
  dst->res_t = dup_d(src->res_t, src->n_res);
  dst->res_bytes = dup_d(src->res_bytes, src->n_res);
}
