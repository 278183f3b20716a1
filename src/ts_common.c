/*
** ts_common.c: errors, operation-kind names, the allocation wrappers, the
** file reader and whole-buffer read/write (ts_internal.h), layouts and the
** event container shared by every part of trainsim.
**
** Events are kept in one growable array and sorted by (start, device, seq,
** kind, mb, vstage, peer) so that output never depends on the order in
** which an executor happened to record them.
*/
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "trainsim.h"
#include "ts_internal.h"

int ts_err_set(ts_err_t *err, int code, const char *fmt, ...) {
  if (err && err->code == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

static const char *const kind_names[TS_KIND_COUNT] = {
    "forward", "backward", "recompute", "backward_input", "weight_grad",
    "send_act", "send_grad", "allreduce", "dispatch", "combine",
    "fetch", "offload", "evict", "room_wait"};

const char *ts_kind_name(ts_kind_t kind) {
  return (kind >= 0 && kind < TS_KIND_COUNT) ? kind_names[kind] : "unknown";
}

/* The one out-of-memory policy (ts_internal.h): say so and exit. */
static void out_of_memory(size_t bytes) {
  fprintf(stderr, "trainsim: error: out of memory (%zu bytes)\n", bytes);
  exit(EX_OSERR);
}

void *ts__xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n);
  return p;
}

void *ts__xcalloc(size_t n, size_t sz) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p) out_of_memory(n * sz);
  return p;
}

void *ts__xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n);
  return q;
}

char *ts__xstrdup(const char *s) {
  assert(s);
  size_t n = strlen(s) + 1;
  return memcpy(ts__xmalloc(n), s, n);
}

char *ts__xstrndup(const char *s, size_t n) {
  assert(s);
  size_t len = strnlen(s, n);
  char *d = ts__xmalloc(len + 1);
  memcpy(d, s, len);
  d[len] = 0;
  return d;
}

bool ts__write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= (size_t)k;
  }
  return true;
}

bool ts__read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t k = read(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    c += k;
    n -= (size_t)k;
  }
  return true;
}

char *ts__read_file(const char *path, size_t *len) {
  assert(path);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = ts__xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = ts__xrealloc(buf, cap *= 2);
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

ts_layout_t *ts_layout_new(int n_devices, int n_vstages) {
  assert(n_devices >= 0 && n_vstages >= 0);
  ts_layout_t *l = ts__xcalloc(1, sizeof *l);
  l->n_devices = n_devices;
  l->n_vstages = n_vstages;
  l->dev = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->stage = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->chunk = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->next = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->prev = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->part = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->mb_lo = ts__xcalloc((size_t)n_vstages, sizeof(int));
  l->mb_hi = ts__xcalloc((size_t)n_vstages, sizeof(int));
  for (int k = 0; k < n_vstages; k++) l->mb_hi[k] = -1;
  return l;
}

ts_layout_t *ts_layout_linear(int stages, int chunks) {
  assert(stages > 0 && chunks > 0);
  int n = stages * chunks;
  ts_layout_t *l = ts_layout_new(stages, n);
  for (int k = 0; k < n; k++) {
    l->dev[k] = k % stages;
    l->stage[k] = k % stages;
    l->chunk[k] = k / stages;
    l->next[k] = k + 1 < n ? k + 1 : -1;
    l->prev[k] = k - 1;
    l->part[k] = k;
  }
  return l;
}

void ts_layout_free(ts_layout_t *l) {
  if (!l) return;
  free(l->dev);
  free(l->stage);
  free(l->chunk);
  free(l->next);
  free(l->prev);
  free(l->part);
  free(l->mb_lo);
  free(l->mb_hi);
  free(l);
}

ts_run_t *ts_run_new(int n_devices) {
  assert(n_devices >= 0);
  ts_run_t *r = ts__xcalloc(1, sizeof *r);
  r->n_devices = n_devices;
  r->devices = ts__xcalloc((size_t)n_devices, sizeof *r->devices);
  return r;
}

void ts_run_push(ts_run_t *r, const ts_event_t *e) {
  assert(r && e && r->n_events <= r->cap_events);
  if (r->n_events == r->cap_events) {
    r->cap_events = r->cap_events ? 2 * r->cap_events : 1024;
    r->events = ts__xrealloc(r->events, (size_t)r->cap_events * sizeof *r->events);
  }
  r->events[r->n_events++] = *e;
}

#define CMP(a, b) \
  do {            \
    if ((a) < (b)) return -1; \
    if ((a) > (b)) return 1;  \
  } while (0)

static int event_cmp(const void *pa, const void *pb) {
  const ts_event_t *a = pa, *b = pb;
  CMP(a->start, b->start);
  CMP(a->device, b->device);
  CMP(a->kind >= TS_COMPUTE_KINDS, b->kind >= TS_COMPUTE_KINDS);
  CMP(a->seq, b->seq);
  CMP(a->kind, b->kind);
  CMP(a->iteration, b->iteration);
  CMP(a->mb, b->mb);
  CMP(a->vstage, b->vstage);
  CMP(a->peer, b->peer);
  CMP(a->end, b->end);
  return 0;
}

void ts_run_sort(ts_run_t *r) {
  if (r->n_events > 1) qsort(r->events, (size_t)r->n_events, sizeof *r->events, event_cmp);
}

void ts_run_free(ts_run_t *r) {
  if (!r) return;
  free(r->events);
  free(r->devices);
  free(r->measured_peak_act_bytes);
  free(r->links);
  free(r->measured_weight_versions);
  free(r);
}
