/*
** ts_sim.c: the SimGrid executor.
**
** One SimGrid actor per device runs the schedule program.  Compute ops are
** sg_actor_execute calls (flops / host speed; a synthetic model's seconds
** are turned into flops at the host's speed).  Every (kind, sender,
** receiver) edge has a mailbox and a daemon actor on the receiver's host
** that always has a get posted on it: a send is a detached put that starts
** travelling at once, and the daemon wakes exactly when the data has
** arrived, records the transfer and hands the message to the device's
** inbox.  A device waiting in a receive is suspended and resumed by the
** daemon.  SimGrid is cooperative, so the inbox needs no lock.
**
** Timing is exact under CM02 without cross traffic and TCP gamma (see
** shared/notes/simgrid.md): one transfer of S bytes takes sum(latency) +
** S / min(bandwidth).  Concurrent flows share links by max-min fairness,
** weighted by route latency under CM02 (README "Timing").
**
** The simulation runs in a forked child that writes its result to an
** unlinked temporary file; SimGrid errors that abort the child (a malformed
** platform) are read back from its stderr and reported in one line.
*/
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
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

#include "ts_sim.h"

const char *const ts_sim_cfg[] = {
    "--cfg=network/model:CM02", "--cfg=network/crosstraffic:0", "--cfg=network/TCP-gamma:0",
    "--cfg=network/loopback-bw:1e30", "--cfg=network/loopback-lat:0",
    "--log=root.thresh:error", NULL};

typedef struct sim_msg {
  int from, kind, to, mb;
  double bytes, t_put;
} sim_msg_t;

typedef struct sim_edge {
  int kind, from, to;
  sg_mailbox_t mbox;
  struct sim_x *x;
} sim_edge_t;

typedef struct sim_dev {
  sg_host_t host;
  sg_host_t dram;  /* its host memory (schedules with host_weights) */
  double memory;   /* memory_bytes, 0 unknown */
  double factor;  /* speed override factor */
  sg_actor_t actor;
  sg_sem_t wake;  /* wait() blocks on it */
  int waiting;    /* blocked in wait() */
  int n_out;
  sim_edge_t **out;
} sim_dev_t;

typedef struct sim_x {
  ts_world_t *w;
  int n;
  sim_dev_t *dev;
  int n_edges;
  sim_edge_t *edges;
} sim_x_t;

/* ---- executor operations ------------------------------------------------ */

static void edge_actor(int argc, char **argv);

/* Creates, during the simulation, the mailbox and the receiving daemon of a
** new (kind, from, to) edge.  Edges live in fixed-size chunks so pointers to
** them stay valid. */
static sim_edge_t *add_edge_live(sim_x_t *x, int kind, int from, int to) {
  sim_dev_t *d = &x->dev[from];
  for (int i = 0; i < d->n_out; i++)
    if (d->out[i]->to == to && d->out[i]->kind == kind) return d->out[i];
  sim_edge_t *e = calloc(1, sizeof *e);
  *e = (sim_edge_t){kind, from, to, NULL, x};
  char name[64];
  snprintf(name, sizeof name, "%s:%d:%d", ts_kind_name(kind), from, to);
  e->mbox = sg_mailbox_by_name(name);
  d->out = realloc(d->out, (size_t)(d->n_out + 1) * sizeof *d->out);
  d->out[d->n_out++] = e;
  sg_actor_t a = sg_actor_init(name, x->dev[to].host);
  sg_actor_set_data(a, e);
  sg_actor_start_(a, edge_actor, 0, NULL);
  return e;
}

static double x_now(void *xd) {
  (void)xd;
  return simgrid_get_clock();
}

static void x_compute(void *xd, int device, ts_kind_t kind, int v, int mb, double flops,
                      double seconds) {
  (void)kind, (void)v, (void)mb;
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[device];
  double amount = flops > 0 ? flops / d->factor : seconds * sg_host_get_speed(d->host);
  if (amount > 0) sg_actor_execute(amount);
}

static void x_send(void *xd, int device, int peer, ts_kind_t kind, int to, int mb, double bytes) {
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[device];
  for (int i = 0; i < d->n_out; i++) {
    sim_edge_t *e = d->out[i];
    if (e->to == peer && e->kind == (int)kind) {
      sim_msg_t *m = malloc(sizeof *m);
      *m = (sim_msg_t){device, kind, to, mb, bytes, simgrid_get_clock()};
      sg_comm_t c = sg_mailbox_put_init(e->mbox, m, (long)llround(bytes));
      sg_comm_detach(c, NULL);
      return;
    }
  }
  /* Collectives reach devices that are no layout neighbours: make the edge
  ** (mailbox and receiving daemon) on first use. */
  sim_edge_t *e = add_edge_live(x, kind, device, peer);
  sim_msg_t *m = malloc(sizeof *m);
  *m = (sim_msg_t){device, kind, to, mb, bytes, simgrid_get_clock()};
  sg_comm_detach(sg_mailbox_put_init(e->mbox, m, (long)llround(bytes)), NULL);
}

static void x_lock(void *xd, int device) { (void)xd, (void)device; }
static void x_unlock(void *xd, int device) { (void)xd, (void)device; }

static void x_wait(void *xd, int device) {
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[device];
  /* A semaphore, not sg_actor_suspend: SimGrid leaves a comm that is
  ** matched while its sender is suspended suspended forever, which showed
  ** as a false deadlock when transfers outlasted the gap between sends. */
  d->waiting = 1;
  sg_sem_acquire(d->wake);
  d->waiting = 0;
}

static void x_notify(void *xd, int device) {
  sim_x_t *x = xd;
  sim_dev_t *d = &x->dev[device];
  if (d->waiting) {
    d->waiting = 0;
    sg_sem_release(d->wake);
  }
}

static void x_abort_all(void *xd) {
  sim_x_t *x = xd;
  for (int i = 0; i < x->n; i++) x_notify(xd, i);
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
  sim_copy_t *c = malloc(sizeof *c);
  *c = (sim_copy_t){x, device, h2d, vstage, bytes};
  char name[48];
  snprintf(name, sizeof name, "%s:%d:%d", h2d ? "fetch" : "offload", device, vstage);
  sg_actor_t a = sg_actor_init(name, x->dev[device].host);
  sg_actor_set_data(a, c);
  sg_actor_start_(a, copy_actor, 0, NULL);
}

static double x_capacity(void *xd, int device) {
  sim_x_t *x = xd;
  return x->dev[device].memory;
}

static const ts_exec_ops_t sim_ops = {x_now,    x_compute, x_send,      x_lock,  x_unlock,
                                      x_wait,   x_notify,  x_abort_all, x_settle,
                                      x_host_copy, NULL,   x_capacity, NULL,
                                      NULL,        NULL};

/* ---- actors ---------------------------------------------------------- */

static void device_actor(int argc, char **argv) {
  (void)argc, (void)argv;
  ts_rt_t *rt = sg_actor_self_get_data();
  ts__rt_main(rt);
}

static void edge_actor(int argc, char **argv) {
  (void)argc, (void)argv;
  sim_edge_t *e = sg_actor_self_get_data();
  sg_actor_daemonize(sg_actor_self());
  double posted = simgrid_get_clock();
  for (;;) {
    sim_msg_t *m = sg_mailbox_get(e->mbox);
    double t = simgrid_get_clock();
    double start = m->t_put > posted ? m->t_put : posted;
    ts__rt_deliver(ts__world_rt(e->x->w, e->to), m->from, (ts_kind_t)m->kind, m->to, m->mb,
                   m->bytes, start, t);
    free(m);
    posted = t;
  }
}

/* ---- set-up in the child ---------------------------------------------- */

static int host_cmp(const void *a, const void *b) {
  return strverscmp(sg_host_get_name(*(const sg_host_t *)a), sg_host_get_name(*(const sg_host_t *)b));
}

/* Writes the ideal platform: n hosts at 1 TFLOP/s, links with no latency and
** 1e30 B/s, so transfers of any realistic size take no time.  Host gpu<n>
** (one more) is the host memory of every GPU. */
static int write_ideal(int n, char *path, size_t cap) {
  snprintf(path, cap, "/tmp/trainsim-ideal-XXXXXX.xml");
  int fd = mkstemps(path, 4);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  fprintf(f,
          "<?xml version='1.0'?>\n"
          "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
          "<platform version=\"4.1\">\n"
          "  <cluster id=\"ideal\" prefix=\"gpu\" suffix=\"\" radical=\"0-%d\" speed=\"1e12f\" "
          "bw=\"1e30Bps\" lat=\"0s\"/>\n"
          "</platform>\n",
          n);
  return fclose(f);
}

static bool link_matches(const char *pattern, const char *link);

static int apply_overrides(const ts_job_t *job, sim_x_t *x, sg_host_t *hosts, size_t nh,
                           ts_err_t *err) {
  size_t nl = sg_link_count();
  sg_link_t *links = sg_link_list();
  int rc = 0;
  for (int i = 0; i < job->n_overrides && !rc; i++) {
    const struct ts_override *o = &job->overrides[i];
    int hits = 0;
    if (o->what == 'l') {
      for (size_t k = 0; k < nl; k++) {
        if (!link_matches(o->pattern, sg_link_get_name(links[k]))) continue;
        hits++;
        if (strcmp(o->field, "bandwidth") == 0)
          sg_link_set_bandwidth(links[k], o->value);
        else
          sg_link_set_latency(links[k], o->value);
      }
    } else {
      for (size_t k = 0; k < nh; k++) {
        if (fnmatch(o->pattern, sg_host_get_name(hosts[k]), 0) != 0) continue;
        hits++;
        for (int d = 0; d < x->n; d++)
          if (x->dev[d].host == hosts[k]) x->dev[d].factor = o->value / sg_host_get_speed(hosts[k]);
      }
    }
    if (!hits)
      rc = ts_err_set(err, EX_USAGE, "--set platform.%s.%s.%s: no %s of '%s' matches '%s'",
                      o->what == 'l' ? "link" : "host", o->pattern, o->field,
                      o->what == 'l' ? "link" : "host", job->platform, o->pattern);
  }
  free(links);
  return rc;
}

static double host_prop(sg_host_t h, const char *name, double dflt) {
  const char *v = sg_host_get_property_value(h, name);
  if (!v) return dflt;
  char *end;
  double d = strtod(v, &end);
  return (end != v && isfinite(d) && d >= 0) ? d : dflt;
}

/* True when a --set pattern names link: SimGrid calls the two directions
** of a SPLITDUPLEX link "X_UP" and "X_DOWN"; "X" names both. */
static bool link_matches(const char *pattern, const char *link) {
  if (fnmatch(pattern, link, 0) == 0) return true;
  size_t n = strlen(link);
  char base[TS_NAME_MAX];
  for (int k = 0; k < 2; k++) {
    const char *suf = k ? "_DOWN" : "_UP";
    size_t l = strlen(suf);
    if (n > l && n - l < sizeof base && strcmp(link + n - l, suf) == 0) {
      memcpy(base, link, n - l);
      base[n - l] = 0;
      return fnmatch(pattern, base, 0) == 0;
    }
  }
  return false;
}

/* Adds the edge (kind, from, to) unless present. */
static void add_edge(sim_x_t *x, int kind, int from, int to) {
  for (int i = 0; i < x->n_edges; i++)
    if (x->edges[i].kind == kind && x->edges[i].from == from && x->edges[i].to == to) return;
  x->edges[x->n_edges++] = (sim_edge_t){kind, from, to, NULL, x};
}

static int link_use_cmp(const void *a, const void *b) {
  return strcmp(((const ts_link_use_t *)a)->name, ((const ts_link_use_t *)b)->name);
}

/* Adds up, per link, the bytes of every transfer whose route crosses it
** (routes exist once simgrid_run sealed the platform). */
static void link_traffic(sim_x_t *x, ts_run_t *run) {
  size_t nl = sg_link_count();
  sg_link_t *links = sg_link_list();
  double *bytes = calloc(nl ? nl : 1, sizeof *bytes);
  for (size_t k = 0; k < nl; k++) sg_link_set_data(links[k], (void *)(k + 1));
  xbt_dynar_t route = xbt_dynar_new(sizeof(sg_link_t), NULL);
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    sg_host_t a, b;
    if (!ts_kind_is_compute(e->kind) && !ts_kind_is_host(e->kind)) { /* between devices */
      a = x->dev[e->device].host;
      b = x->dev[e->peer].host;
    } else if (e->kind == TS_FETCH) {
      a = x->dev[e->device].dram;
      b = x->dev[e->device].host;
    } else if (e->kind == TS_OFFLOAD) {
      a = x->dev[e->device].host;
      b = x->dev[e->device].dram;
    } else {
      continue;
    }
    if (!(e->bytes > 0) || a == b) continue;
    xbt_dynar_reset(route);
    sg_host_get_route(a, b, route);
    unsigned it;
    sg_link_t l;
    xbt_dynar_foreach (route, it, l) {
      size_t k = (size_t)sg_link_get_data(l);
      if (k) bytes[k - 1] += e->bytes;
    }
  }
  xbt_dynar_free(&route);
  int n = 0;
  for (size_t k = 0; k < nl; k++) n += bytes[k] > 0;
  run->links = calloc((size_t)(n ? n : 1), sizeof *run->links);
  for (size_t k = 0; k < nl; k++) {
    if (!(bytes[k] > 0)) continue;
    ts_link_use_t *u = &run->links[run->n_links++];
    snprintf(u->name, sizeof u->name, "%s", sg_link_get_name(links[k]));
    u->bandwidth = sg_link_get_bandwidth(links[k]);
    u->bytes = bytes[k];
  }
  qsort(run->links, (size_t)run->n_links, sizeof *run->links, link_use_cmp);
  free(bytes);
  free(links);
}

/* The child: runs the simulation and fills run or err. */
static int child_simulate(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                          const ts_cost_t *cost, ts_run_t *run, ts_err_t *err) {
  const ts_layout_t *lay = plan->layout;
  int argc = 1;
  char *argv[16] = {"trainsim"};
  for (int i = 0; ts_sim_cfg[i]; i++) argv[argc++] = (char *)ts_sim_cfg[i];
  argv[argc] = NULL;
  simgrid_init(&argc, argv);

  const char *plat = job->platform;
  char ideal[64];
  if (job->platform_ideal) {
    if (write_ideal(lay->n_devices, ideal, sizeof ideal))
      return ts_err_set(err, EX_CANTCREAT, "cannot write the ideal platform: %s", strerror(errno));
    plat = ideal;
  }
  fprintf(stderr, "@@loading %s\n", plat);
  simgrid_load_platform(plat);
  fprintf(stderr, "@@loaded\n");
  /* Parse errors were worth seeing; SimGrid's deadlock report is not (the
  ** runtime reports deadlocks itself, naming what each device waited for). */
  xbt_log_control_set("root.thresh:critical");
  if (job->platform_ideal) unlink(ideal);

  size_t nh = sg_host_count(), kept = 0;
  sg_host_t *hosts = sg_host_list();
  /* Memory endpoints (DRAM hosts of PCIe-tree platforms) are no devices. */
  for (size_t i = 0; i < nh; i++)
    if (!sg_host_get_property_value(hosts[i], "memory_endpoint")) hosts[kept++] = hosts[i];
  nh = kept;
  qsort(hosts, nh, sizeof *hosts, host_cmp);
  char dram_name[32];
  snprintf(dram_name, sizeof dram_name, "gpu%d", lay->n_devices); /* see write_ideal */
  sg_host_t ideal_dram = job->platform_ideal ? sg_host_by_name(dram_name) : NULL;
  sim_x_t x = {0};
  x.n = lay->n_devices;
  x.dev = calloc((size_t)x.n, sizeof *x.dev);
  int rc = 0;
  if (job->placement) {
    for (int d = 0; d < x.n && !rc; d++) {
      x.dev[d].host = sg_host_by_name(job->placement[d]);
      if (!x.dev[d].host)
        rc = ts_err_set(err, EX_DATAERR, "%s: placement[%d]: no host '%s' in platform '%s'",
                        job->path, d, job->placement[d], job->platform);
      else if (sg_host_get_property_value(x.dev[d].host, "memory_endpoint") ||
               (job->platform_ideal && x.dev[d].host == ideal_dram))
        rc = ts_err_set(err, EX_DATAERR,
                        "%s: placement[%d]: host '%s' is a memory endpoint (host DRAM), not a device",
                        job->path, d, job->placement[d]);
    }
  } else if ((size_t)x.n > nh) {
    rc = ts_err_set(err, EX_DATAERR, "%s: stages: the job needs %d devices but platform '%s' has %zu hosts",
                    job->path, x.n, job->platform, nh);
  } else {
    for (int d = 0; d < x.n; d++) x.dev[d].host = hosts[d];
  }
  for (int d = 0; d < x.n; d++) x.dev[d].factor = 1;
  if (!rc) rc = apply_overrides(job, &x, hosts, nh, err);
  free(hosts);
  if (rc) {
    free(x.dev);
    return rc;
  }
  for (int d = 0; d < x.n; d++) {
    ts_device_info_t *di = &run->devices[d];
    snprintf(di->name, sizeof di->name, "%s", sg_host_get_name(x.dev[d].host));
    di->speed = sg_host_get_speed(x.dev[d].host) * x.dev[d].factor;
    di->peak_flops = host_prop(x.dev[d].host, "peak_flops", di->speed);
    di->memory_bytes = host_prop(x.dev[d].host, "memory_bytes", 0);
    x.dev[d].memory = di->memory_bytes;
  }
  if (sched->host_weights) {
    char name[64];
    snprintf(name, sizeof name, "gpu%d", lay->n_devices);
    for (int d = 0; d < x.n && !rc; d++) {
      const char *hm = job->platform_ideal ? name
                                           : sg_host_get_property_value(x.dev[d].host, "host_memory");
      x.dev[d].dram = hm ? sg_host_by_name(hm) : NULL;
      if (!hm)
        rc = ts_err_set(err, EX_DATAERR,
                        "%s: host '%s' has no property host_memory naming its DRAM host (schedule "
                        "'%s' keeps weights in host memory; try trainsim platform --preset "
                        "commodity-8gpu)",
                        job->platform, sg_host_get_name(x.dev[d].host), job->schedule);
      else if (!x.dev[d].dram)
        rc = ts_err_set(err, EX_DATAERR, "%s: host '%s': host_memory names no host ('%s')",
                        job->platform, sg_host_get_name(x.dev[d].host), hm);
    }
    if (rc) {
      free(x.dev);
      return rc;
    }
  }

  /* Edges between devices, from the layout's chains. */
  x.edges = calloc((size_t)(2 * lay->n_vstages + 1), sizeof *x.edges);
  for (int v = 0; v < lay->n_vstages; v++) {
    int n = lay->next[v];
    if (n < 0 || lay->dev[n] == lay->dev[v]) continue;
    add_edge(&x, TS_SEND_ACT, lay->dev[v], lay->dev[n]);
    add_edge(&x, TS_SEND_GRAD, lay->dev[n], lay->dev[v]);
  }
  for (int i = 0; i < x.n_edges; i++) {
    sim_edge_t *e = &x.edges[i];
    char name[64];
    snprintf(name, sizeof name, "%s:%d:%d", ts_kind_name(e->kind), e->from, e->to);
    e->mbox = sg_mailbox_by_name(name);
    sim_dev_t *d = &x.dev[e->from];
    d->out = realloc(d->out, (size_t)(d->n_out + 1) * sizeof *d->out);
    d->out[d->n_out++] = e;
  }

  ts_world_t *w = ts__world_new(job, sched, plan, cost, &sim_ops, &x);
  x.w = w;
  for (int d = 0; d < x.n; d++) {
    char name[32];
    snprintf(name, sizeof name, "device%d", d);
    sg_actor_t a = sg_actor_init(name, x.dev[d].host);
    sg_actor_set_data(a, ts__world_rt(w, d));
    x.dev[d].actor = a;
    x.dev[d].wake = sg_sem_init(0);
    sg_actor_start_(a, device_actor, 0, NULL);
  }
  for (int i = 0; i < x.n_edges; i++) {
    sim_edge_t *e = &x.edges[i];
    sg_actor_t a = sg_actor_init(sg_mailbox_get_name(e->mbox), x.dev[e->to].host);
    sg_actor_set_data(a, e);
    sg_actor_start_(a, edge_actor, 0, NULL);
  }
  simgrid_run();
  rc = ts__world_finish(w, run, err);
  if (!rc) link_traffic(&x, run);
  /* The process exits right after; SimGrid owns actors and mailboxes. */
  return rc;
}

/* ---- parent: fork, collect ------------------------------------------- */

typedef struct sim_header {
  int rc;
  char msg[1024];
  int n_events, n_devices, n_links;
} sim_header_t;

static bool write_all(int fd, const void *p, size_t n) {
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

static bool read_all(int fd, void *p, size_t n) {
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

/* Turns what SimGrid printed before dying into one line naming the file. */
static void simgrid_failure(const ts_job_t *job, int fd, int status, ts_err_t *err) {
  char buf[8192] = "";
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  bool loading = strstr(buf, "@@loading") && !strstr(buf, "@@loaded");
  /* SimGrid's parse errors read "Parse error at FILE:LINE: what" or
  ** "... in FILE:LINE ...". Keep the most telling line. */
  const char *line = NULL;
  static const char *const keys[] = {"Parse error at ", "parse error", "error", "Error",
                                     "what()", "terminate", NULL};
  for (int k = 0; keys[k] && !line; k++) line = strstr(buf, keys[k]);
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
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fclose(res);
    fclose(log);
    return ts_err_set(err, EX_OSERR, "fork: %s", strerror(errno));
  }
  if (pid == 0) {
    dup2(lfd, 2);
    ts_run_t *run = ts_run_new(lay->n_devices);
    ts_err_t e = {0};
    int rc = child_simulate(job, sched, plan, cost, run, &e);
    sim_header_t h = {0};
    h.rc = rc;
    snprintf(h.msg, sizeof h.msg, "%s", e.msg);
    h.n_events = rc ? 0 : run->n_events;
    h.n_devices = run->n_devices;
    h.n_links = rc ? 0 : run->n_links;
    bool ok = write_all(rfd, &h, sizeof h) &&
              write_all(rfd, run->devices, (size_t)h.n_devices * sizeof *run->devices) &&
              write_all(rfd, run->events, (size_t)h.n_events * sizeof *run->events) &&
              write_all(rfd, run->links, (size_t)h.n_links * sizeof *run->links);
    _exit(ok ? 0 : 74);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int rc = 0;
  sim_header_t h;
  lseek(rfd, 0, SEEK_SET);
  if (WIFEXITED(status) && WEXITSTATUS(status) == EX_IOERR) {
    rc = ts_err_set(err, EX_IOERR, "%s: the simulation could not write its result to a temporary file (disk full?)",
                    job->path);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !read_all(rfd, &h, sizeof h)) {
    simgrid_failure(job, lfd, status, err);
    rc = err->code;
  } else if (h.rc) {
    rc = ts_err_set(err, h.rc, "%s", h.msg);
  } else {
    ts_run_t *run = ts_run_new(h.n_devices);
    run->n_events = run->cap_events = h.n_events;
    run->events = malloc((size_t)(h.n_events ? h.n_events : 1) * sizeof *run->events);
    snprintf(run->executor, sizeof run->executor, "simgrid");
    run->n_links = h.n_links;
    run->links = calloc((size_t)(h.n_links ? h.n_links : 1), sizeof *run->links);
    if (!read_all(rfd, run->devices, (size_t)h.n_devices * sizeof *run->devices) ||
        !read_all(rfd, run->events, (size_t)h.n_events * sizeof *run->events) ||
        !read_all(rfd, run->links, (size_t)h.n_links * sizeof *run->links)) {
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

/* ---- the whole job ------------------------------------------------------ */

int ts_simulate(const ts_job_t *job, ts_outcome_t *out, ts_err_t *err) {
  memset(out, 0, sizeof *out);
  const ts_schedule_t *s = ts_schedule_find(job->schedule);
  if (!s) return ts_err_set(err, EX_DATAERR, "%s: schedule: unknown schedule '%s'", job->path, job->schedule);
  int rc = ts_plan_for_job(job, s, &out->plan, err);
  if (rc) return rc;
  out->layout = out->plan->layout;
  int parts = 0;
  for (int v = 0; v < out->layout->n_vstages; v++)
    if (out->layout->part[v] + 1 > parts) parts = out->layout->part[v] + 1;
  rc = ts_cost_build(job, parts, &out->cost, err);
  if (!rc) rc = ts_sim_run(job, s, out->plan, out->cost, &out->run, err);
  if (rc) {
    ts_outcome_free(out);
    return rc;
  }
  out->metrics = ts_metrics_compute(job, out->layout, out->cost, out->run);
  out->r = (ts_result_t){job, out->layout, out->cost, out->run, out->metrics};
  return 0;
}

void ts_outcome_free(ts_outcome_t *o) {
  if (!o) return;
  ts_metrics_free(o->metrics);
  ts_run_free(o->run);
  ts_cost_free(o->cost);
  ts_plan_free(o->plan);
  memset(o, 0, sizeof *o);
}
