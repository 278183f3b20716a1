/*
** ts_common.c: errors, operation-kind names, the allocation wrappers, the
** string checks and escaping, the file reader (with its size cap) and
** whole-buffer read/write (ts_internal.h), layouts and the
** event container shared by every part of trainsim.
**
** Events are kept in one growable array and sorted by (start, device, seq,
** kind, mb, vstage, peer) so that output never depends on the order in
** which an executor happened to record them.
*/
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "trainsim.h"
#include "ts_internal.h"

/* ---- strings ------------------------------------------------------------ */

size_t ts__utf8_seq(const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  unsigned c = u[0];
  if (c < 0x80) return c ? 1 : 0;
  size_t n;
  unsigned cp, min;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07, min = 0x10000;
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((u[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
    cp = cp << 6 | (u[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool ts__utf8_valid(const char *s, size_t *bad) {
  for (const char *p = s; *p;) {
    size_t n = ts__utf8_seq(p);
    if (!n) {
      if (bad) *bad = (size_t)(p - s);
      return false;
    }
    p += n;
  }
  return true;
}

bool ts__has_control(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) return true;
  return false;
}

char *ts__escape(char *dst, size_t cap, const char *src) {
  assert(dst && cap > 0 && src);
  size_t o = 0;
  for (const char *p = src; *p;) {
    char e[8];
    size_t n = ts__utf8_seq(p), k;
    unsigned char c = (unsigned char)*p;
    if (n == 1 && (c < 0x20 || c == 0x7f))
      k = c == '\n' ? (size_t)snprintf(e, sizeof e, "\\n")
          : c == '\r' ? (size_t)snprintf(e, sizeof e, "\\r")
          : c == '\t' ? (size_t)snprintf(e, sizeof e, "\\t")
                      : (size_t)snprintf(e, sizeof e, "\\x%02x", c);
    else if (n == 2 && c == 0xc2 && (unsigned char)p[1] <= 0x9f) /* a C1 control (CSI...) */
      k = (size_t)snprintf(e, sizeof e, "\\u%04x", (unsigned char)p[1]);
    else if (n == 0)
      n = 1, k = (size_t)snprintf(e, sizeof e, "\\x%02x", c);
    else
      k = n, memcpy(e, p, n);
    if (o + k >= cap) break; /* cut before a whole character or escape */
    memcpy(dst + o, e, k);
    o += k;
    p += n;
  }
  dst[o] = 0;
  return dst;
}

int ts_err_set(ts_err_t *err, int code, const char *fmt, ...) {
  if (err && err->code == 0) {
    char raw[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    ts__escape(err->msg, sizeof err->msg, raw);
    err->code = code;
  }
  return code;
}

static const char *const kind_names[TS_KIND_COUNT] = {
    "forward", "backward", "recompute", "backward_input", "weight_grad",
    "send_act", "send_grad", "allreduce", "dispatch", "combine",
    "collective", "optimizer", "comm_wait",
    "fetch", "offload", "evict", "room_wait"};

const char *ts_kind_name(ts_kind_t kind) {
  return (kind >= 0 && kind < TS_KIND_COUNT) ? kind_names[kind] : "unknown";
}

static const char *const op_names[TS_COLL_OPS] = {"all-reduce", "reduce-scatter", "all-gather",
                                                  "broadcast", "all-to-all"};

const char *ts_coll_op_name(ts_coll_op_t op) {
  return op >= 0 && op < TS_COLL_OPS ? op_names[op] : "unknown collective";
}

static const char *const purpose_names[TS_CP_PURPOSES] = {"schedule", "grads", "params", "gather",
                                                          "tp"};

const char *ts_recompute_name(ts_recompute_t r) {
  return r == TS_RECOMPUTE_FULL ? "full" : r == TS_RECOMPUTE_SELECTIVE ? "selective" : "none";
}

const char *ts_coll_purpose_name(ts_coll_purpose_t p) {
  return p >= 0 && p < TS_CP_PURPOSES ? purpose_names[p] : "unknown";
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
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; the file is
  ** rejected below anyway, and the flag means nothing to a regular file. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  int e = 0;
  if (fstat(fd, &st) != 0)
    e = errno;
  else if (!S_ISREG(st.st_mode))
    e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  else if ((unsigned long long)st.st_size > TS_READ_MAX)
    e = EFBIG;
  if (e) {
    close(fd);
    errno = e;
    return NULL;
  }
  /* Read with the cap, not st_size: the file may grow while it is read. */
  size_t cap = (size_t)st.st_size + 2, n = 0;
  char *buf = ts__xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = ts__xrealloc(buf, cap *= 2);
    ssize_t got = read(fd, buf + n, cap - n - 1);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) e = errno;
    if (got <= 0) break;
    n += (size_t)got;
    if (n > TS_READ_MAX) {
      e = EFBIG;
      break;
    }
  }
  close(fd);
  if (e) {
    free(buf);
    errno = e;
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

const char *ts__read_error(int errnum) {
  if (errnum == EFBIG) return "larger than the input limit of 64 MiB";
  if (errnum == EINVAL) return "not a regular file";
  return strerror(errnum);
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
  free(r->fold);
  free(r);
}
