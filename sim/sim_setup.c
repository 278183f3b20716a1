/*
** sim_setup.c: the SimGrid executor's set-up in the forked child: the
** platform (a file, or the ideal platform written on the fly), the devices
** in platform or placement order with their speed, memory and host memory,
** the job's --set overrides of links and hosts, one mailbox and daemon per
** pipeline edge, the run itself, and what each link carried: its bytes,
** busy time (the union of its transfers' spans) and sharing policy.
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

#include "platform_check.h"
#include "sim_internal.h"
#include "ts_gemm.h"
#include "ts_internal.h"

/* ---- progress, for the parent's watchdog -------------------------------- */

int ts__sim_progress_fd = -1;
double ts__sim_progress_every = 1;
unsigned ts__sim_ticks;

void ts__sim_progress(void) {
  static struct timespec last;
  if (ts__sim_progress_fd < 0) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double dt = (double)(now.tv_sec - last.tv_sec) + 1e-9 * (double)(now.tv_nsec - last.tv_nsec);
  if (last.tv_sec && dt < ts__sim_progress_every) return;
  last = now;
  /* Non-blocking: a full pipe means the parent already knows. */
  if (write(ts__sim_progress_fd, "", 1) < 0) {
  }
}

/* Checks, before SimGrid routes anything, that every pair of hosts the job
** uses has a route: all pairs of the devices' hosts, and each device with
** its host memory (both ways). */
static int check_routes(ts_platform_t *pc, const sim_x_t *x, ts_err_t *err) {
  const char **names = ts__xmalloc((size_t)x->n * sizeof *names);
  int n = 0, rc = 0;
  for (int d = 0; d < x->n; d++) {
    const char *h = sg_host_get_name(x->dev[d].host);
    bool seen = false;
    for (int k = 0; k < n && !seen; k++) seen = strcmp(names[k], h) == 0;
    if (!seen) names[n++] = h;
  }
  rc = ts_platform_check_routes(pc, names, n, err);
  for (int d = 0; d < x->n && !rc; d++) {
    if (!x->dev[d].dram) continue;
    const char *pair[2] = {sg_host_get_name(x->dev[d].host), sg_host_get_name(x->dev[d].dram)};
    rc = ts_platform_check_routes(pc, pair, 2, err);
  }
  free(names);
  return rc;
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
  x->edges[x->n_edges++] = (sim_edge_t){.kind = kind, .from = from, .to = to, .x = x};
}

static int link_use_cmp(const void *a, const void *b) {
  return strcmp(((const ts_link_use_t *)a)->name, ((const ts_link_use_t *)b)->name);
}

/* What link_traffic keeps per platform link: the bytes and summed spans
** of the transfers crossing it, and the union of their spans so far
** (busy, plus the segment [lo, hi] still growing). */
typedef struct link_acc {
  double bytes, flow, busy, lo, hi;
  bool open;
} link_acc_t;

/* Adds the span [start, end] of one transfer of b bytes to a: the events
** come sorted by start, so a span starting after the open segment's end
** closes it (its length goes to busy) and opens its own; one starting
** inside it extends it.  The union of spans inside [0, T] never exceeds
** T (T, the makespan, is the latest end of any event). */
static void link_acc_add(link_acc_t *a, double b, double start, double end) {
  a->bytes += b;
  a->flow += end - start;
  if (a->open && start <= a->hi) {
    if (end > a->hi) a->hi = end;
    return;
  }
  if (a->open) a->busy += a->hi - a->lo;
  a->lo = start;
  a->hi = end;
  a->open = true;
}

/* Adds up, per link, the bytes of every transfer whose route crosses it
** (routes exist once simgrid_run sealed the platform), its busy time (the
** union of their spans) and their summed spans.  A transfer's span is its
** event's [start, end]: from when its data could start to move to its
** arrival, the route's latency included.  Relies on run->events being
** sorted by start (ts_run_sort: by ts__world_finish, or by
** ts__sim_fold_events in a folded run).  A folded run's
** transfer (the representative's send) counts on the routes of every
** member of its class, with the same span (ts__sim_fold_routes). */
static void link_traffic(sim_x_t *x, ts_run_t *run) {
  size_t nl = sg_link_count();
  sg_link_t *links = sg_link_list();
  link_acc_t *acc = ts__xcalloc(nl ? nl : 1, sizeof *acc);
  for (size_t k = 0; k < nl; k++) sg_link_set_data(links[k], (void *)(k + 1));
  sim_fold_routes_t *fr = x->fold ? ts__sim_fold_routes(x, run) : NULL;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    sg_host_t a, b;
    /* Millions of routes take minutes on a large platform: tell the
    ** parent's watchdog that this phase is alive. */
    if (!(i & 1023)) ts__sim_progress();
    if (fr) {
      int nk = 0;
      const int *ks = ts_kind_is_transfer(e->kind) && e->bytes > 0 && e->device != e->peer
                          ? ts__sim_fold_route(fr, e->device, e->peer, &nk)
                          : NULL;
      for (int j = 0; j < nk; j++) link_acc_add(&acc[ks[j] - 1], e->bytes, e->start, e->end);
      continue;
    }
    if (ts_kind_is_transfer(e->kind)) { /* between devices */
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
    int nr;
    const sg_link_t *route = ts__sim_route(x->routes, a, b, &nr);
    for (int j = 0; j < nr; j++) {
      size_t k = (size_t)sg_link_get_data(route[j]);
      if (k) link_acc_add(&acc[k - 1], e->bytes, e->start, e->end);
    }
  }
  ts__sim_fold_routes_free(fr);
  int n = 0;
  for (size_t k = 0; k < nl; k++) n += acc[k].bytes > 0;
  run->links = ts__xcalloc((size_t)(n ? n : 1), sizeof *run->links);
  for (size_t k = 0; k < nl; k++) {
    link_acc_t *a = &acc[k];
    if (!(a->bytes > 0)) continue;
    ts_link_use_t *u = &run->links[run->n_links++];
    snprintf(u->name, sizeof u->name, "%s", sg_link_get_name(links[k]));
    u->bandwidth = sg_link_get_bandwidth(links[k]);
    u->bytes = a->bytes;
    u->busy_s = a->busy + (a->open ? a->hi - a->lo : 0);
    u->flow_s = a->flow;
    /* sg_link_is_shared is 0 for FATPIPE only (SPLITDUPLEX directions and
    ** SHARED links are shared). */
    u->fatpipe = !sg_link_is_shared(links[k]);
  }
  qsort(run->links, (size_t)run->n_links, sizeof *run->links, link_use_cmp);
  free(acc);
  free(links);
}

/* The child: runs the simulation and fills run or err. */
int ts__sim_child(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
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
  /* A test hook: a child that makes no progress, for the watchdog's test. */
  if (getenv("TRAINSIM_TEST_STALL"))
    for (;;) pause();
  /* SimGrid aborts or loops on some mistakes: check the file first. */
  ts_platform_t *pc = NULL;
  if (!job->platform_ideal && !(pc = ts_platform_load(plat, err))) return err->code;
  ts__sim_progress();
  fprintf(stderr, "@@loading %s\n", plat);
  simgrid_load_platform(plat);
  fprintf(stderr, "@@loaded\n");
  ts__sim_progress();
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
  x.cost = cost;
  x.lay = lay;
  x.n = lay->n_devices;
  x.dev = ts__xcalloc((size_t)x.n, sizeof *x.dev);
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
  } else if ((size_t)x.n > nh && job->data_parallel > 1) {
    rc = ts_err_set(err, EX_DATAERR,
                    "%s: data_parallel: the job needs %d devices (%d replicas of %d) but platform "
                    "'%s' has %zu hosts",
                    job->path, x.n, job->data_parallel, x.n / job->data_parallel, job->platform, nh);
  } else if ((size_t)x.n > nh && job->tensor_parallel > 1) {
    rc = ts_err_set(err, EX_DATAERR,
                    "%s: tensor_parallel: the job needs %d devices (%d ranks x %d) but platform "
                    "'%s' has %zu hosts",
                    job->path, x.n, job->tensor_parallel, x.n / job->tensor_parallel, job->platform, nh);
  } else if ((size_t)x.n > nh) {
    rc = ts_err_set(err, EX_DATAERR, "%s: stages: the job needs %d devices but platform '%s' has %zu hosts",
                    job->path, x.n, job->platform, nh);
  } else {
    for (int d = 0; d < x.n; d++) x.dev[d].host = hosts[d];
  }
  for (int d = 0; d < x.n; d++) x.dev[d].factor = 1;
  /* A platform larger than the job: the rest of its hosts stay idle (the
  ** summary says how many).  The ideal platform is written to fit. */
  if (!rc && !job->platform_ideal && nh > (size_t)x.n) run->hosts_unused = (int)(nh - (size_t)x.n);
  if (!rc) rc = apply_overrides(job, &x, hosts, nh, err);
  free(hosts);
  if (rc) {
    free(x.dev);
    ts_platform_free(pc);
    return rc;
  }
  for (int d = 0; d < x.n; d++) {
    ts_device_info_t *di = &run->devices[d];
    snprintf(di->name, sizeof di->name, "%s", sg_host_get_name(x.dev[d].host));
    di->speed = sg_host_get_speed(x.dev[d].host) * x.dev[d].factor;
    di->peak_flops = host_prop(x.dev[d].host, "peak_flops", di->speed);
    di->memory_bytes = host_prop(x.dev[d].host, "memory_bytes", 0);
    di->memory_bandwidth = host_prop(x.dev[d].host, "memory_bandwidth", 0);
    x.dev[d].memory = di->memory_bytes;
    di->memory_bandwidth = host_prop(x.dev[d].host, "memory_bandwidth", 0);
    x.dev[d].mem_bw = di->memory_bandwidth;
    x.dev[d].peak = host_prop(x.dev[d].host, "peak_flops", 0);
    const char *curve = sg_host_get_property_value(x.dev[d].host, "gemm_curve");
    if (curve && !(x.dev[d].curve = ts_gemm_curve(curve)) && !rc)
      rc = ts_err_set(err, EX_DATAERR,
                      "%s: host '%s': gemm_curve '%s' names no curve (known: a100, h100, h200)",
                      job->platform, di->name, curve);
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
  }
  if (!rc && pc) rc = check_routes(pc, &x, err);
  x.pc = pc; /* kept for the route look-ups (sim_route.c) */
  x.routes = ts__sim_routes_new(pc);
  ts__sim_progress();
  if (rc) {
    free(x.dev);
    ts__sim_routes_free(x.routes);
    ts_platform_free(pc);
    return rc;
  }
  x.plan = plan;
  x.fold = ts__sim_fold_setup(job, sched, plan, &x); /* symmetry folding (sim_fold.c) */
#define SIM_RUNS(d) (!x.fold || x.fold[d] == (d))

  /* Edges between devices, from the layout's chains. */
  x.edges = ts__xcalloc((size_t)(2 * lay->n_vstages + 1), sizeof *x.edges);
  for (int v = 0; v < lay->n_vstages; v++) {
    int n = lay->next[v];
    if (n < 0 || lay->dev[n] == lay->dev[v] || !SIM_RUNS(lay->dev[v])) continue;
    add_edge(&x, TS_SEND_ACT, lay->dev[v], lay->dev[n]);
    add_edge(&x, TS_SEND_GRAD, lay->dev[n], lay->dev[v]);
  }
  for (int i = 0; i < x.n_edges; i++) {
    sim_edge_t *e = &x.edges[i];
    char name[64];
    snprintf(name, sizeof name, "%s:%d:%d", ts_kind_name(e->kind), e->from, e->to);
    e->mbox = sg_mailbox_by_name(name);
    sim_dev_t *d = &x.dev[e->from];
    d->out = ts__xrealloc(d->out, (size_t)(d->n_out + 1) * sizeof *d->out);
    d->out[d->n_out++] = e;
  }

  ts_world_t *w = ts__world_new(job, sched, plan, cost, &ts__sim_ops, &x);
  x.w = w;
  ts__world_fold(w, x.fold);
  for (int d = 0; d < x.n; d++) {
    if (!SIM_RUNS(d)) continue;
    char name[32];
    snprintf(name, sizeof name, "device%d", d);
    sg_actor_t a = sg_actor_init(name, x.dev[d].host);
    sg_actor_set_data(a, ts__world_rt(w, d));
    x.dev[d].actor = a;
    for (int k = 0; k < 1 + TS_STREAMS; k++) x.dev[d].wake[k] = sg_sem_init(0);
    sg_actor_start_(a, ts__sim_device_actor, 0, NULL);
  }
  for (int i = 0; i < x.n_edges; i++) {
    sim_edge_t *e = &x.edges[i];
    sg_actor_t a = sg_actor_init(sg_mailbox_get_name(e->mbox), x.dev[e->to].host);
    sg_actor_set_data(a, e);
    sg_actor_start_(a, ts__sim_edge_actor, 0, NULL);
  }
  simgrid_run();
  rc = ts__world_finish(w, run, err);
  if (!rc && x.fold) {
    ts__sim_fold_events(&x, run);
    run->fold = x.fold;
  }
  if (!rc) link_traffic(&x, run);
  ts__sim_routes_free(x.routes);
  ts_platform_free(x.pc);
  /* The process exits right after; SimGrid owns actors and mailboxes. */
  return rc;
}

