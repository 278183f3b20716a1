/*
** ts_sim.c: the SimGrid executor.
**
** One SimGrid actor per device runs the schedule program.  Compute ops are
** sg_actor_execute calls (flops / host speed; a synthetic model's seconds
** are turned into flops at the host's speed; on a host that names a GEMM
** curve, a transformer op's time comes from its GEMM shapes, memory-bound
** bytes and attention, ts_gemm.h, README "Model of time").  Every (kind, sender,
** receiver) edge has a mailbox and a daemon actor on the receiver's host
** that always has a get posted on it: a send is a detached put that starts
** travelling at once, and the daemon wakes exactly when the data has
** arrived, records the transfer and hands the message to the device's
** inbox.  A device waiting in a receive blocks on a semaphore that the
** daemon releases.  Each device's collectives run on actors of its host,
** its communication streams (one per group kind used, ts_executor.h), each
** with a semaphore of its own.  SimGrid is
** cooperative, so the inbox needs no lock.
**
** Timing is exact under CM02 without cross traffic and TCP gamma (see
** shared/notes/simgrid.md): one transfer of S bytes takes sum(latency) +
** S / min(bandwidth).  Concurrent flows share links by max-min fairness,
** weighted by route latency under CM02 (README "Timing").
**
** The simulation runs in a forked child that writes its result to an
** unlinked temporary file; SimGrid errors that abort the child (a malformed
** platform) are read back from its stderr and reported in one line.
** For `trainsim run` on a terminal the child counts the ops and transfers
** it has started in a shared page, and the parent, which polls for the
** child's end, shows them on stderr in one line that it rewrites.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <simgrid/actor.h>
#include <simgrid/comm.h>
#include <simgrid/engine.h>
#include <simgrid/exec.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <simgrid/mailbox.h>
#include <simgrid/semaphore.h>
#include <xbt/dynar.h>
#include <xbt/log.h>

#include "sim_internal.h"
#include "ts_gemm.h"
#include "ts_internal.h"

const char *const ts_sim_cfg[] = {
    "--cfg=network/model:CM02", "--cfg=network/crosstraffic:0", "--cfg=network/TCP-gamma:0",
    "--cfg=network/loopback-bw:1e30", "--cfg=network/loopback-lat:0",
    "--log=root.thresh:error", NULL};

bool ts_sim_progress = false;

/* What the child has done so far, shared with the parent (progress line). */
typedef struct sim_count {
  _Atomic long ops, transfers;
  _Atomic double clock;
} sim_count_t;
static sim_count_t *counter; /* NULL: no progress line */

/* ---- executor operations ------------------------------------------------ */


/* Creates, during the simulation, the mailbox and the receiving daemon of a
** new (kind, from, to) edge.  Edges live in fixed-size chunks so pointers to
** them stay valid. */
static sim_edge_t *add_edge_live(sim_x_t *x, int kind, int from, int to) {
  sim_dev_t *d = &x->dev[from];
  for (int i = 0; i < d->n_out; i++)
    if (d->out[i]->to == to && d->out[i]->kind == kind) return d->out[i];
  sim_edge_t *e = ts__xcalloc(1, sizeof *e);
  *e = (sim_edge_t){.kind = kind, .from = from, .to = to, .x = x};
  char name[64];
  snprintf(name, sizeof name, "%s:%d:%d", ts_kind_name(kind), from, to);
  e->mbox = sg_mailbox_by_name(name);
  d->out = ts__xrealloc(d->out, (size_t)(d->n_out + 1) * sizeof *d->out);
  d->out[d->n_out++] = e;
  sg_actor_t a = sg_actor_init(name, x->dev[to].host);
  sg_actor_set_data(a, e);
  sg_actor_start_(a, ts__sim_edge_actor, 0, NULL);
  return e;
}

static double x_now(void *xd) {
  (void)xd;
  return simgrid_get_clock();
}

static void x_compute(void *xd, int device, ts_kind_t kind, int v, int mb, double flops,
                      double seconds) {
  (void)mb;
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[device];
  double amount = flops > 0 ? flops / d->factor : seconds * sg_host_get_speed(d->host);
  const ts_op_work_t *wk = d->curve && flops > 0 ? &x->cost->part[x->lay->part[v]].work[kind] : NULL;
  if (wk && wk->flops > 0) { /* a piece of the op takes its share of the op's time */
    if (d->op_wk[kind] != wk) { /* a new op of this kind: its seconds on the curve, once */
      d->op_wk[kind] = wk;
      d->op_s[kind] = ts_gemm_op_seconds(d->curve, d->peak, d->mem_bw, wk);
    }
    amount = d->op_s[kind] * (flops / wk->flops) * sg_host_get_speed(d->host) / d->factor;
  }
  ts__sim_tick();
  if (counter) {
    counter->ops++;
    counter->clock = simgrid_get_clock();
  }
  if (amount > 0) sg_actor_execute(amount);
}

/* Sends one message (steps > 1: a merged message standing for that many
** ring steps, which arrives steps - 1 route latencies later). */
static void send_msg(sim_x_t *x, int device, int peer, ts_kind_t kind, int to, int mb,
                     double bytes, int steps) {
  sim_dev_t *d = &x->dev[device];
  ts__sim_tick();
  if (counter) {
    counter->transfers++;
    counter->clock = simgrid_get_clock();
  }
  int from = device, dest = peer; /* symmetry folding may deliver elsewhere */
  if (x->fold) ts__sim_fold_send(x, &from, &dest, kind, &to);
  sim_edge_t *e = NULL;
  for (int i = 0; i < d->n_out && !e; i++)
    if (d->out[i]->to == peer && d->out[i]->kind == (int)kind) e = d->out[i];
  /* Collectives reach devices that are no layout neighbours: make the edge
  ** (mailbox and receiving daemon) on first use. */
  if (!e) e = add_edge_live(x, kind, device, peer);
  double extra = 0;
  if (steps > 1) {
    if (!e->lat_known) {
      e->lat = sg_host_get_route_latency(d->host, x->dev[peer].host);
      e->lat_known = 1;
    }
    extra = (steps - 1) * e->lat;
  }
  sim_msg_t *m = ts__xmalloc(sizeof *m);
  *m = (sim_msg_t){from, kind, to, mb, bytes, simgrid_get_clock(), dest, extra};
  sg_comm_detach(sg_mailbox_put_init(e->mbox, m, (long)llround(bytes)), NULL);
}

static void x_send(void *xd, int device, int peer, ts_kind_t kind, int to, int mb, double bytes) {
  send_msg(xd, device, peer, kind, to, mb, bytes, 1);
}

static void x_send_steps(void *xd, int device, int peer, ts_kind_t kind, int to, int mb,
                         double bytes, int steps) {
  send_msg(xd, device, peer, kind, to, mb, bytes, steps);
}

static void x_lock(void *xd, int device) { (void)xd, (void)device; }
static void x_unlock(void *xd, int device) { (void)xd, (void)device; }

/* Slot s: device s % n, its program (s < n) or its communication stream
** s / n - 1 (ts__stream_slot). */
static void x_wait(void *xd, int slot) {
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[slot % x->n];
  int k = slot / x->n;
  /* A semaphore, not sg_actor_suspend: SimGrid leaves a comm that is
  ** matched while its sender is suspended suspended forever, which showed
  ** as a false deadlock when transfers outlasted the gap between sends. */
  d->waiting[k] = 1;
  sg_sem_acquire(d->wake[k]);
  d->waiting[k] = 0;
}

static void x_notify(void *xd, int slot) {
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[slot % x->n];
  int k = slot / x->n;
  if (d->waiting[k]) {
    d->waiting[k] = 0;
    sg_sem_release(d->wake[k]);
  }
}

static void x_abort_all(void *xd) {
  sim_x_t *x = xd;
  for (int i = 0; i < (1 + TS_STREAMS) * x->n; i++) x_notify(xd, i);
}

/* A communication stream of a device: an actor on its host. */
typedef struct sim_stream {
  ts_rt_t *rt;
  int stream;
} sim_stream_t;

static void comm_actor(int argc, char **argv) {
  (void)argc, (void)argv;
  sim_stream_t *s = sg_actor_self_get_data();
  sim_stream_t me = *s;
  free(s);
  ts__rt_comm_main(me.rt, me.stream);
}

static void x_spawn_comm(void *xd, int device, int stream) {
  sim_x_t *x = xd;
  char name[32];
  /* Stream 0 of old is the only one of most runs: keep its name. */
  snprintf(name, sizeof name, stream ? "comm:%d:%d" : "comm:%d", device, stream);
  sim_stream_t *s = ts__xmalloc(sizeof *s);
  *s = (sim_stream_t){ts__world_rt(x->w, device), stream};
  sg_actor_t a = sg_actor_init(name, x->dev[device].host);
  sg_actor_set_data(a, s);
  sg_actor_start_(a, comm_actor, 0, NULL);
}

/* The NVLink domain of a device: its host's property nvlink_domain, else
** node, as a number shared by the devices whose hosts give the same
** string (-1: neither property).  Built at the first call. */
int ts__sim_domain(void *xd, int device) {
  sim_x_t *x = xd;
  if (!x->domain) {
    const char **name = ts__xcalloc((size_t)x->n, sizeof *name);
    x->domain = ts__xmalloc((size_t)x->n * sizeof *x->domain);
    int next = 0;
    for (int d = 0; d < x->n; d++) {
      const char *v = sg_host_get_property_value(x->dev[d].host, "nvlink_domain");
      if (!v) v = sg_host_get_property_value(x->dev[d].host, "node");
      name[d] = v;
      x->domain[d] = -1;
      for (int e = 0; v && e < d && x->domain[d] < 0; e++)
        if (name[e] && strcmp(name[e], v) == 0) x->domain[d] = x->domain[e];
      if (v && x->domain[d] < 0) x->domain[d] = next++;
    }
    free(name);
  }
  return x->domain[device];
}

/* A zero-flop exec makes the engine process every activity ending at this
** instant (transfers of zero duration included); the yield then lets the
** receiving daemons that woke deliver before this device goes on. */
static void x_settle(void *xd, int device) {
  (void)xd, (void)device;
  sg_exec_wait(sg_actor_exec_init(0));
  sg_actor_yield();
}

/* A host-memory copy runs on an actor of its own (one per copy), so that
** both directions and the device's compute proceed at once; its flow takes
** the platform's route between the GPU and its DRAM host. */
typedef struct sim_copy {
  sim_x_t *x;
  int device, h2d, vstage;
  double bytes;
} sim_copy_t;

static void copy_actor(int argc, char **argv) {
  (void)argc, (void)argv;
  sim_copy_t *c = sg_actor_self_get_data();
  sim_dev_t *d = &c->x->dev[c->device];
  double t0 = simgrid_get_clock();
  if (c->h2d)
    sg_host_sendto(d->dram, d->host, c->bytes);
  else
    sg_host_sendto(d->host, d->dram, c->bytes);
  ts__rt_host_done(ts__world_rt(c->x->w, c->device), c->h2d, c->vstage, t0, simgrid_get_clock());
  free(c);
}

static void x_host_copy(void *xd, int device, int h2d, int vstage, double bytes) {
  sim_x_t *x = xd;
  sim_copy_t *c = ts__xmalloc(sizeof *c);
  *c = (sim_copy_t){x, device, h2d, vstage, bytes};
  char name[48];
  snprintf(name, sizeof name, "%s:%d:%d", h2d ? "fetch" : "offload", device, vstage);
  sg_actor_t a = sg_actor_init(name, x->dev[device].host);
  sg_actor_set_data(a, c);
  sg_actor_start_(a, copy_actor, 0, NULL);
}

/* The optimizer step is memory-bound: its bytes over the device's memory
** bandwidth, on the device's compute stream. */
static void x_optimizer(void *xd, int device, int it, int n, const ts_region_t *r, double bytes) {
  (void)it, (void)n, (void)r;
  sim_x_t *x = xd;
  double bw = x->dev[device].mem_bw;
  ts__sim_tick();
  if (bw > 0 && bytes > 0) sg_actor_sleep_for(bytes / bw);
}

static double x_capacity(void *xd, int device) {
  sim_x_t *x = xd;
  return x->dev[device].memory;
}

const ts_exec_ops_t ts__sim_ops = {.now = x_now,
                                      .compute = x_compute,
                                      .send = x_send,
                                      .lock = x_lock,
                                      .unlock = x_unlock,
                                      .wait = x_wait,
                                      .notify = x_notify,
                                      .abort_all = x_abort_all,
                                      .settle = x_settle,
                                      .host_copy = x_host_copy,
                                      .capacity = x_capacity,
                                      .spawn_comm = x_spawn_comm,
                                      .domain = ts__sim_domain,
                                      .optimizer = x_optimizer,
                                      .send_steps = x_send_steps,
                                      .one_log = 1};

/* ---- actors ---------------------------------------------------------- */

void ts__sim_device_actor(int argc, char **argv) {
  (void)argc, (void)argv;
  ts_rt_t *rt = sg_actor_self_get_data();
  ts__rt_main(rt);
}

void ts__sim_edge_actor(int argc, char **argv) {
  (void)argc, (void)argv;
  sim_edge_t *e = sg_actor_self_get_data();
  sg_actor_daemonize(sg_actor_self());
  double posted = simgrid_get_clock();
  for (;;) {
    sim_msg_t *m = sg_mailbox_get(e->mbox);
    if (m->extra > 0) sg_actor_sleep_for(m->extra);
    ts__sim_tick();
    double t = simgrid_get_clock();
    double start = m->t_put > posted ? m->t_put : posted;
    ts__rt_deliver(ts__world_rt(e->x->w, m->dest), m->from, (ts_kind_t)m->kind, m->to, m->mb,
                   m->bytes, start, t);
    free(m);
    posted = t;
  }
}

/* ---- parent: fork, collect ------------------------------------------- */

typedef struct sim_header {
  int rc;
  char msg[1024];
  int n_events, n_devices, n_links;
  int hosts_unused; /* ts_run_t.hosts_unused */
  int folded;       /* 1: ts_run_t.fold follows the links */
  char note[1024];  /* ts__sim_fold_note: for stderr, once */
} sim_header_t;

/* Turns what SimGrid printed before dying into one line naming the file. */
static void simgrid_failure(const ts_job_t *job, int fd, int status, ts_err_t *err) {
  char buf[8192] = "";
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  bool loading = strstr(buf, "@@loading") && !strstr(buf, "@@loaded");
  /* SimGrid's parse errors read "Parse error at FILE:LINE: what" or
  ** "... in FILE:LINE ...". Keep the most telling line; else the first
  ** line SimGrid printed (an abort's "[root/CRITICAL] ..."), past the
  ** "@@" markers the child writes itself. */
  const char *line = NULL;
  static const char *const keys[] = {"Parse error at ", "parse error", "error", "Error",
                                     "CRITICAL", "Assertion", "what()", "terminate", NULL};
  for (int k = 0; keys[k] && !line; k++) line = strstr(buf, keys[k]);
  for (const char *s = buf; !line && *s; s += strcspn(s, "\n"), s += *s == '\n')
    if (*s != '\n' && strncmp(s, "@@", 2) != 0) line = s;
  char one[512] = "";
  if (line) {
    const char *s = line;
    while (s > buf && s[-1] != '\n') s--;
    size_t l = strcspn(s, "\n");
    if (l >= sizeof one) l = sizeof one - 1;
    memcpy(one, s, l);
    one[l] = 0;
    /* "[0.000000] ./src/xbt/exception.cpp:95: [xbt_exception/ERROR] Parse
    ** error at FILE:LINE: what": keep "FILE:LINE: what". */
    char *p = strstr(one, "Parse error at ");
    if (p)
      memmove(one, p + 15, strlen(p + 15) + 1);
    else if (strstr(one, "/CRITICAL] ") && one[0] == '[' && (p = strchr(one, ']')) && p[1] == ' ')
      memmove(one, p + 2, strlen(p + 2) + 1); /* an abort: keep where ("FILE:LINE: ...") */
    else if ((p = strrchr(one, ']')) && p[1] == ' ')
      memmove(one, p + 2, strlen(p + 2) + 1);
  }
  if (loading && strncmp(one, job->platform, strlen(job->platform)) == 0)
    ts_err_set(err, EX_DATAERR, "%s", one); /* already "FILE:LINE: what" */
  else if (loading)
    ts_err_set(err, EX_DATAERR, "%s: cannot load platform: %s", job->platform,
               one[0] ? one : "SimGrid rejected it");
  else if (WIFSIGNALED(status))
    ts_err_set(err, EX_SOFTWARE, "simulation of '%s' died (signal %d): %s", job->path,
               WTERMSIG(status), one[0] ? one : "no message");
  else
    ts_err_set(err, EX_SOFTWARE, "simulation of '%s' failed (exit %d): %s", job->path,
               WEXITSTATUS(status), one[0] ? one : "no message");
}

/* Seconds without progress after which the parent stops the child:
** TRAINSIM_WATCHDOG_S when it reads as a number >= 0 (0: no watchdog),
** else 30.  A simulation reports progress many times a second. */
#define SIM_WATCHDOG_S 30

static double watchdog_s(void) {
  const char *s = getenv("TRAINSIM_WATCHDOG_S");
  char *end;
  double v = s ? strtod(s, &end) : -1;
  return (s && end != s && !*end && isfinite(v) && v >= 0) ? v : SIM_WATCHDOG_S;
}

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The progress line: shown from `after` seconds on, every quarter second. */
typedef struct progress {
  const sim_count_t *c; /* NULL: none */
  double t0, after, next;
  bool shown;
} progress_t;

static void progress_show(progress_t *pg) {
  double now = mono_s();
  if (!pg->c || now - pg->t0 < pg->after || now < pg->next) return;
  pg->next = now + 0.25;
  pg->shown = true;
  fprintf(stderr, "\rsimulating: %ld ops and %ld transfers started, %.6g s simulated, %.1f s\033[K",
          (long)pg->c->ops, (long)pg->c->transfers, (double)pg->c->clock, now - pg->t0);
  fflush(stderr);
}

/* Waits for the child; stops it (SIGKILL) when limit > 0 and fd (the read
** end of its progress pipe) stayed silent for limit seconds.  Returns true
** when it stopped the child.  The child's status goes to *status.  Shows
** pg's progress line meanwhile and erases it at the end. */
static bool wait_child(pid_t pid, int fd, double limit, int *status, progress_t *pg) {
  double last = mono_s();
  bool stopped = false;
  for (;;) {
    pid_t w = waitpid(pid, status, fd >= 0 || pg->c ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      *status = 0;
      break;
    }
    progress_show(pg);
    if (fd < 0) {
      if (pg->c) poll(NULL, 0, 50);
      continue;
    }
    /* Poll briefly: another process forked meanwhile may hold the pipe's
    ** write end, so the end of the pipe is not the end of the child. */
    struct pollfd pf = {fd, POLLIN, 0};
    int r = poll(&pf, 1, 50);
    if (r > 0) {
      char buf[256];
      ssize_t k = read(fd, buf, sizeof buf);
      if (k > 0) last = mono_s();
      else if (k == 0) fd = -1; /* the child closed it: it is exiting */
    }
    if (limit > 0 && mono_s() - last > limit) {
      kill(pid, SIGKILL);
      while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
      }
      stopped = true;
      break;
    }
  }
  if (pg->shown) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
  }
  return stopped;
}

/* The shared counter of a run that shows progress, or NULL. */
static sim_count_t *progress_counter(double *after) {
  if (!ts_sim_progress || !isatty(2)) return NULL;
  const char *s = getenv("TRAINSIM_PROGRESS_AFTER_S");
  char *end;
  double v = s ? strtod(s, &end) : -1;
  *after = (s && end != s && !*end && isfinite(v) && v >= 0) ? v : 1;
  void *m = mmap(NULL, sizeof(sim_count_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? NULL : m;
}

/* ts__write_all in 64 MiB pieces, telling the watchdog after each: a large
** run's timeline is gigabytes. */
static bool write_ticking(int fd, const void *buf, size_t n) {
  const char *p = buf;
  for (size_t k; n > 0; p += k, n -= k) {
    k = n < ((size_t)64 << 20) ? n : (size_t)64 << 20;
    if (!ts__write_all(fd, p, k)) return false;
    ts__sim_progress();
  }
  return true;
}

/* Prints the child's note (why it did not fold) on stderr, once per
** process. */
int ts__sim_stderr = -1;
bool ts__sim_noted;

void ts__sim_note(const char *note) {
  if (ts__sim_noted || ts__sim_stderr < 0) return;
  dprintf(ts__sim_stderr, "trainsim: note: %s\n", note);
}

static void note_once(const sim_header_t *h) {
  if (!h->note[0] || ts__sim_noted) return;
  ts__sim_noted = true; /* the child printed it when it knew (ts__sim_note) */
}

int ts_sim_run(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
               const ts_cost_t *cost, ts_run_t **out, ts_err_t *err) {
  const ts_layout_t *lay = plan->layout;
  *out = NULL;
  FILE *res = tmpfile(), *log = tmpfile();
  if (!res || !log) {
    if (res) fclose(res);
    if (log) fclose(log);
    return ts_err_set(err, EX_CANTCREAT, "cannot create a temporary file: %s", strerror(errno));
  }
  int rfd = fileno(res), lfd = fileno(log);
  double limit = watchdog_s();
  int pfd[2] = {-1, -1};
  if (limit > 0 && pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) pfd[0] = pfd[1] = -1;
  progress_t pg = {NULL, mono_s(), 1, 0, false};
  sim_count_t *shared = progress_counter(&pg.after);
  pg.c = shared;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fclose(res);
    fclose(log);
    if (pfd[0] >= 0) close(pfd[0]), close(pfd[1]);
    if (shared) munmap(shared, sizeof *shared);
    return ts_err_set(err, EX_OSERR, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    if (pfd[0] >= 0) close(pfd[0]);
    ts__sim_progress_fd = pfd[1];
    counter = shared;
    ts__sim_progress_every = limit > 0 && limit < 4 ? limit / 4 : 1;
    ts__sim_stderr = dup(2);
    dup2(lfd, 2);
    ts_run_t *run = ts_run_new(lay->n_devices);
    ts_err_t e = {0};
    int rc = ts__sim_child(job, sched, plan, cost, run, &e);
    sim_header_t h = {0};
    h.rc = rc;
    snprintf(h.msg, sizeof h.msg, "%s", e.msg);
    h.n_events = rc ? 0 : run->n_events;
    h.n_devices = run->n_devices;
    h.n_links = rc ? 0 : run->n_links;
    h.hosts_unused = run->hosts_unused;
    h.folded = !rc && run->fold;
    snprintf(h.note, sizeof h.note, "%s", ts__sim_fold_note);
    bool ok = ts__write_all(rfd, &h, sizeof h) &&
              ts__write_all(rfd, run->devices, (size_t)h.n_devices * sizeof *run->devices) &&
              write_ticking(rfd, run->events, (size_t)h.n_events * sizeof *run->events) &&
              ts__write_all(rfd, run->links, (size_t)h.n_links * sizeof *run->links) &&
              (!h.folded || ts__write_all(rfd, run->fold, (size_t)h.n_devices * sizeof *run->fold));
    _exit(ok ? 0 : 74);
  }
  if (pfd[1] >= 0) close(pfd[1]);
  int status;
  bool stalled = wait_child(pid, pfd[0], limit, &status, &pg);
  if (shared) munmap(shared, sizeof *shared);
  if (pfd[0] >= 0) close(pfd[0]);
  int rc = 0;
  sim_header_t h;
  lseek(rfd, 0, SEEK_SET);
  if (stalled) {
    rc = ts_err_set(err, EX_SOFTWARE,
                    "simulation made no progress for %g s (job %s, platform %s); stopped it "
                    "(TRAINSIM_WATCHDOG_S sets the limit)",
                    limit, job->path, job->platform);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == EX_IOERR) {
    rc = ts_err_set(err, EX_IOERR, "%s: the simulation could not write its result to a temporary file (disk full?)",
                    job->path);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !ts__read_all(rfd, &h, sizeof h)) {
    simgrid_failure(job, lfd, status, err);
    rc = err->code;
  } else if (note_once(&h), h.rc) {
    rc = ts_err_set(err, h.rc, "%s", h.msg);
  } else {
    ts_run_t *run = ts_run_new(h.n_devices);
    run->n_events = run->cap_events = h.n_events;
    run->events = ts__xmalloc((size_t)(h.n_events ? h.n_events : 1) * sizeof *run->events);
    snprintf(run->executor, sizeof run->executor, "simgrid");
    run->n_links = h.n_links;
    run->hosts_unused = h.hosts_unused;
    run->links = ts__xcalloc((size_t)(h.n_links ? h.n_links : 1), sizeof *run->links);
    if (!ts__read_all(rfd, run->devices, (size_t)h.n_devices * sizeof *run->devices) ||
        !ts__read_all(rfd, run->events, (size_t)h.n_events * sizeof *run->events) ||
        !ts__read_all(rfd, run->links, (size_t)h.n_links * sizeof *run->links) ||
        (h.folded && !ts__read_all(rfd, run->fold = ts__xmalloc((size_t)h.n_devices * sizeof *run->fold),
                                   (size_t)h.n_devices * sizeof *run->fold))) {
      ts_run_free(run);
      rc = ts_err_set(err, EX_IOERR, "cannot read the simulation's result back");
    } else {
      *out = run;
    }
  }
  fclose(res);
  fclose(log);
  return rc;
}

