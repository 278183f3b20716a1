/*
** test_links.c: what summary.json's links[] and the report's links section
** say each platform link carried (README "summary.json", links[]).
**   - on a star of SPLITDUPLEX links, GPipe's transfers give each link's
**     bytes, busy time, summed spans, utilisation and load in closed form;
**   - on four nodes behind a FATPIPE ib-fabric whose bandwidth a --set
**     glob (ib*) rewrites, where the old bytes / (bandwidth x T) read
**     above 1: the fabric is reported as a fatpipe, its busy time is the
**     union of every transfer's span and its summed spans their sum (both
**     recomputed here from the timeline), a NIC's the same over its own
**     transfers, and utilisation and load stay at most 1;
**   - on example jobs (a bandwidth rewrite glob, host-memory copies, MoE
**     all-to-alls, data parallelism over InfiniBand): busy_s <= T,
**     busy_s <= flow_s, utilisation in [0, 1], load <= 1 for every link,
**     in the run and in summary.json;
**   - the class table's totals equal the sum of its links, the hottest
**     links come in order, and the report shows both tables;
**   - link classes from names (digit runs, _UP/_DOWN, cut to fit).
*/
#include <cjson/cJSON.h>
#include <math.h>

#include "tshelp.h"
#include "tsunit.h"

/* The link of o's run named name, or NULL. */
static const ts_link_use_t *link_named(const ts_outcome_t *o, const char *name) {
  for (int i = 0; i < o->run->n_links; i++)
    if (!strcmp(o->run->links[i].name, name)) return &o->run->links[i];
  return NULL;
}

/* A synthetic pipeline job of p stages and m micro-batches on plat. */
static int synth(const char *plat, const char *sched, int p, int m, double tf, double tb, double S,
                 const char *const *sets, int n_sets, ts_job_t **job, ts_outcome_t *o) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %.17g, \"backward_s\": %.17g,"
           " \"activation_message_bytes\": %.17g, \"activation_bytes\": 1},"
           " \"platform\": \"%s\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": %d}",
           tf, tb, S, plat, sched, p, m);
  ts_err_t err = {0};
  int rc = th_simulate(json, sets, n_sets, job, o, &err);
  if (rc) fprintf(stderr, "\nsimulate: %s\n", err.msg);
  return rc;
}

/* The union and the sum of the spans of o's transfers between devices
** (bytes > 0) that pass keep(e, arg); independent of sim_setup.c's
** running union: the spans are sorted here, then merged. */
typedef bool (*keep_fn)(const ts_event_t *e, int arg);
static int span_cmp(const void *a, const void *b) {
  const double *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}
static void spans(const ts_outcome_t *o, keep_fn keep, int arg, double *uni, double *sum) {
  double(*s)[2] = malloc((size_t)(o->run->n_events + 1) * sizeof *s);
  int n = 0;
  *uni = *sum = 0;
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (!ts_kind_is_transfer(e->kind) || !(e->bytes > 0) || !keep(e, arg)) continue;
    s[n][0] = e->start;
    s[n++][1] = e->end;
    *sum += e->end - e->start;
  }
  qsort(s, (size_t)n, sizeof *s, span_cmp);
  for (int i = 0; i < n;) {
    double lo = s[i][0], hi = s[i][1];
    for (i++; i < n && s[i][0] <= hi; i++) hi = fmax(hi, s[i][1]);
    *uni += hi - lo;
  }
  free(s);
}
static bool any(const ts_event_t *e, int d) { return (void)e, (void)d, true; }
static bool sent_by(const ts_event_t *e, int d) { return e->device == d; }
static bool received_by(const ts_event_t *e, int d) { return e->peer == d; }

/* The invariants every run's links keep, in the run and in summary.json:
** bytes > 0, 0 <= busy_s <= T, busy_s <= flow_s, utilisation = busy_s / T
** in [0, 1], load <= 1; the class table adds up to the links; the
** hottest links come in order. */
static void check_invariants(const ts_outcome_t *o, const char *what) {
  const ts_run_t *run = o->run;
  double T = ts__links_T(run);
  TS_ASSERT_REL(T, o->metrics->iteration_time_s * o->r.job->iterations, 1e-12);
  int bad = 0;
  for (int i = 0; i < run->n_links; i++) {
    const ts_link_use_t *u = &run->links[i];
    double ut = ts__link_utilisation(u, T), ld = ts__link_load(u, T);
    bool ok = u->bytes > 0 && u->busy_s >= 0 && u->busy_s <= T * (1 + 1e-12) &&
              u->busy_s <= u->flow_s * (1 + 1e-12) && ut >= 0 && ut <= 1 && ld >= 0 &&
              ld <= 1 + 1e-9 && fabs(ut - fmin(1, u->busy_s / T)) <= 1e-15;
    if (!ok && bad++ < 4)
      printf("\n  %s: link %s: bytes %.17g busy %.17g flow %.17g T %.17g utilisation %.17g load %.17g",
             what, u->name, u->bytes, u->busy_s, u->flow_s, T, ut, ld);
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* summary.json */
  cJSON *s = ts__summary_json(&o->r);
  cJSON *links = cJSON_GetObjectItem(s, "links");
  CU_ASSERT_EQUAL(cJSON_GetArraySize(links), run->n_links);
  int i = 0;
  cJSON *x;
  cJSON_ArrayForEach(x, links) {
    const ts_link_use_t *u = &run->links[i++];
    char cls[TS_NAME_MAX];
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(x, "name")->valuestring, u->name);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(x, "class")->valuestring,
                           ts__link_class(u->name, cls, sizeof cls));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(x, "sharing")->valuestring,
                           u->fatpipe ? "fatpipe" : "shared");
    double ut = cJSON_GetObjectItem(x, "utilisation")->valuedouble;
    CU_ASSERT(ut >= 0 && ut <= 1);
    CU_ASSERT(cJSON_GetObjectItem(x, "load")->valuedouble <= 1 + 1e-9);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(x, "busy_s")->valuedouble, u->busy_s);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(x, "flow_s")->valuedouble, u->flow_s);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(x, "bytes")->valuedouble, u->bytes);
  }
  cJSON_Delete(s);
  /* the classes: every link in exactly one, the totals its links' sums */
  ts__link_class_t *c;
  int n = ts__link_classes(run, T, &c), links_sum = 0;
  double bytes_all = 0, bytes_sum = 0;
  for (int k = 0; k < run->n_links; k++) bytes_all += run->links[k].bytes;
  for (int k = 0; k < n; k++) {
    int members = 0, fat = 0;
    double b = 0, um = 0, ux = 0, lx = 0;
    for (int j = 0; j < run->n_links; j++) {
      const ts_link_use_t *u = &run->links[j];
      char cls[TS_NAME_MAX];
      if (strcmp(ts__link_class(u->name, cls, sizeof cls), c[k].name)) continue;
      members++;
      fat += u->fatpipe;
      b += u->bytes;
      um += ts__link_utilisation(u, T);
      ux = fmax(ux, ts__link_utilisation(u, T));
      lx = fmax(lx, ts__link_load(u, T));
    }
    CU_ASSERT_EQUAL(c[k].links, members);
    CU_ASSERT_EQUAL(c[k].fatpipe, fat);
    TS_ASSERT_REL(c[k].bytes, b, 1e-12);
    TS_ASSERT_REL(c[k].util_mean, um / members, 1e-12);
    CU_ASSERT_EQUAL(c[k].util_max, ux);
    CU_ASSERT_EQUAL(c[k].load_max, lx);
    CU_ASSERT(c[k].util_max <= 1);
    if (k) CU_ASSERT(c[k].bytes <= c[k - 1].bytes);
    links_sum += c[k].links;
    bytes_sum += c[k].bytes;
  }
  CU_ASSERT_EQUAL(links_sum, run->n_links);
  TS_ASSERT_REL(bytes_sum, bytes_all, 1e-12);
  free(c);
  /* the hottest: in order, the first the most utilised of all */
  int idx[10], h = ts__link_hottest(run, T, idx, 10);
  CU_ASSERT_EQUAL(h, run->n_links < 10 ? run->n_links : 10);
  double top = 0;
  for (int k = 0; k < run->n_links; k++) top = fmax(top, ts__link_utilisation(&run->links[k], T));
  if (h > 0) CU_ASSERT_EQUAL(ts__link_utilisation(&run->links[idx[0]], T), top);
  for (int k = 1; k < h; k++)
    CU_ASSERT(ts__link_utilisation(&run->links[idx[k]], T) <=
              ts__link_utilisation(&run->links[idx[k - 1]], T));
}

/* GPipe, p = 3, m = 6 on a star (link l<i> of host h<i>, 10 GB/s, 5 us):
** every activation and gradient is S bytes over two links (the sender's
** _UP, the receiver's _DOWN) and takes c = 2 L + S / B; with t_f, t_b > c
** no two transfers share a link at once.  So a link that carries k of
** them has bytes k S, busy_s = flow_s = k c, utilisation k c / T and load
** k S / (B T), T = (m + p - 1)(t_f + t_b) + 2 (p - 1) c. */
static void test_star_closed_form(void) {
  const double B = 10e9, L = 5e-6, S = 5e6, tf = 0.01, tb = 0.02, c = 2 * L + S / B;
  const int p = 3, m = 6;
  const char *plat = th_star_platform(p, B, L);
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(synth(plat, "gpipe", p, m, tf, tb, S, NULL, 0, &job, &o), 0);
  double T = (m + p - 1) * (tf + tb) + 2 * (p - 1) * c;
  TS_ASSERT_REL(ts__links_T(o.run), T, 1e-9);
  /* transfers each direction of l<i> carries: h0 sends activations to h1
  ** and receives gradients; h1 both; h2 the other end */
  const char *names[] = {"l0_UP", "l0_DOWN", "l1_UP", "l1_DOWN", "l2_UP", "l2_DOWN"};
  const int k[] = {m, m, 2 * m, 2 * m, m, m};
  CU_ASSERT_EQUAL(o.run->n_links, 6);
  for (int i = 0; i < 6; i++) {
    const ts_link_use_t *u = link_named(&o, names[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->fatpipe, 0);
    TS_ASSERT_REL(u->bandwidth, B, 0);
    TS_ASSERT_REL(u->bytes, k[i] * S, 0);
    TS_ASSERT_REL(u->busy_s, k[i] * c, 1e-9);
    TS_ASSERT_REL(u->flow_s, k[i] * c, 1e-9);
    TS_ASSERT_REL(ts__link_utilisation(u, ts__links_T(o.run)), k[i] * c / T, 1e-9);
    TS_ASSERT_REL(ts__link_load(u, ts__links_T(o.run)), k[i] * S / (B * T), 1e-9);
  }
  check_invariants(&o, "star");
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

/* Four nodes node<i>-gpu0, each behind its SPLITDUPLEX NIC
** ib-node<i>-gpu0 (25 GB/s, 1 us), joined by one FATPIPE ib-fabric (400
** GB/s, 1 us), as the generator's multi-node platforms were: every route
** is NIC up, fabric, NIC down. */
static const char *fabric_platform(void) {
  static char xml[8192];
  int k = snprintf(xml, sizeof xml,
                   "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                   "<platform version=\"4.1\">\n<zone id=\"z\" routing=\"Full\">\n");
  for (int i = 0; i < 4; i++)
    k += snprintf(xml + k, sizeof xml - (size_t)k, "  <host id=\"node%d-gpu0\" speed=\"1e12f\"/>\n", i);
  for (int i = 0; i < 4; i++)
    k += snprintf(xml + k, sizeof xml - (size_t)k,
                  "  <link id=\"ib-node%d-gpu0\" bandwidth=\"25GBps\" latency=\"1us\" "
                  "sharing_policy=\"SPLITDUPLEX\"/>\n", i);
  k += snprintf(xml + k, sizeof xml - (size_t)k,
                "  <link id=\"ib-fabric\" bandwidth=\"400GBps\" latency=\"1us\" sharing_policy=\"FATPIPE\"/>\n");
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (i != j)
        k += snprintf(xml + k, sizeof xml - (size_t)k,
                      "  <route src=\"node%d-gpu0\" dst=\"node%d-gpu0\" symmetrical=\"NO\">"
                      "<link_ctn id=\"ib-node%d-gpu0\" direction=\"UP\"/><link_ctn id=\"ib-fabric\"/>"
                      "<link_ctn id=\"ib-node%d-gpu0\" direction=\"DOWN\"/></route>\n",
                      i, j, i, j);
  snprintf(xml + k, sizeof xml - (size_t)k, "</zone>\n</platform>\n");
  return th_write_tmp(xml, ".xml");
}

/* GPipe, p = 4, m = 8, transfer-bound (S / B = 1 ms against t_f = 0.1
** ms), with README's glob platform.link.ib*.bandwidth=10GBps, which also
** rewrites the fabric: the old bytes / (bandwidth x T) of ib-fabric read
** above 1 (2.54 and 3.97 in the runs), as each of its concurrent
** flows may use its whole bandwidth. */
static void test_fatpipe_glob(void) {
  const double S = 1e7, B = 10e9;
  const int p = 4, m = 8;
  const char *plat = fabric_platform();
  const char *sets[] = {"platform.link.ib*.bandwidth=10GBps"};
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(synth(plat, "gpipe", p, m, 1e-4, 1e-4, S, sets, 1, &job, &o), 0);
  double T = ts__links_T(o.run);
  const ts_link_use_t *fab = link_named(&o, "ib-fabric");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fab);
  CU_ASSERT_EQUAL(fab->fatpipe, 1);
  TS_ASSERT_REL(fab->bandwidth, B, 0); /* the glob reached it */
  TS_ASSERT_REL(fab->bytes, 2.0 * (p - 1) * m * S, 0);
  CU_ASSERT(fab->bytes / (fab->bandwidth * T) > 1.5); /* the old formula */
  double uni, sum;
  spans(&o, any, 0, &uni, &sum);
  TS_ASSERT_REL(fab->busy_s, uni, 1e-12);
  TS_ASSERT_REL(fab->flow_s, sum, 1e-12);
  CU_ASSERT(fab->flow_s > 1.5 * fab->busy_s); /* flows overlap on it */
  CU_ASSERT(ts__link_utilisation(fab, T) <= 1);
  CU_ASSERT(ts__link_load(fab, T) <= 1 + 1e-9);
  CU_ASSERT(ts__link_load(fab, T) > 0.9); /* its flows ran near the cap */
  for (int d = 0; d < p; d++) {
    char up[64], down[64];
    snprintf(up, sizeof up, "ib-node%d-gpu0_UP", d);
    snprintf(down, sizeof down, "ib-node%d-gpu0_DOWN", d);
    const ts_link_use_t *u = link_named(&o, up), *w = link_named(&o, down);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    double k = d == 0 || d == p - 1 ? 1 : 2; /* activations and gradients */
    TS_ASSERT_REL(u->bytes, k * m * S, 0);
    TS_ASSERT_REL(w->bytes, k * m * S, 0);
    CU_ASSERT_EQUAL(u->fatpipe, 0);
    TS_ASSERT_REL(u->bandwidth, B, 0);
    spans(&o, sent_by, d, &uni, &sum);
    TS_ASSERT_REL(u->busy_s, uni, 1e-12);
    TS_ASSERT_REL(u->flow_s, sum, 1e-12);
    spans(&o, received_by, d, &uni, &sum);
    TS_ASSERT_REL(w->busy_s, uni, 1e-12);
    TS_ASSERT_REL(w->flow_s, sum, 1e-12);
  }
  check_invariants(&o, "fabric");
  /* the report: both tables, the fabric's class row, the totals row */
  char *h = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&h, &len);
  CU_ASSERT_EQUAL(ts_write_report_html(&o.r, f), 0);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<section id=\"links\">\n<h2>Links</h2>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<h3>Link classes</h3>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<h3>Hottest links</h3>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<tr><td><code>ib-nodeN-gpuN</code></td><td>shared</td><td class=\"num\">8</td>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<tr><td><code>ib-fabric</code></td><td>fatpipe</td><td class=\"num\">1</td>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<tr><td><b>all links</b></td><td></td><td class=\"num\"><b>9</b></td>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(h, "<tr><td class=\"num\">9</td><td><code>"));
  CU_ASSERT_PTR_NULL(strstr(h, "<tr><td class=\"num\">10</td><td><code>"));
  free(h);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

/* Example jobs, one with a glob that rewrites every link's bandwidth. */
static void test_examples(void) {
  static const struct {
    const char *job, *set;
  } runs[] = {
      {TS_SOURCE_DIR "/examples/dp-gpt-ib.json", NULL},
      {TS_SOURCE_DIR "/examples/dp-gpt-ib.json", "platform.link.*.bandwidth=12.5GBps"},
      {TS_SOURCE_DIR "/examples/mobius-gpt13b.json", NULL},
      {TS_SOURCE_DIR "/examples/gshard-ep16.json", NULL},
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    ts_job_t *job = NULL;
    ts_outcome_t o;
    ts_err_t err = {0};
    const char *sets[] = {runs[i].set};
    int rc = ts_job_load(runs[i].job, sets, runs[i].set ? 1 : 0, &job, &err);
    if (!rc) rc = ts_simulate(job, &o, &err);
    if (rc) printf("\n  %s: %s\n", runs[i].job, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(o.run->n_links > 0);
    check_invariants(&o, runs[i].job);
    if (runs[i].set)
      for (int k = 0; k < o.run->n_links; k++) TS_ASSERT_REL(o.run->links[k].bandwidth, 12.5e9, 0);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static void test_class_names(void) {
  static const char *const cases[][2] = {
      {"leaf3-spine12", "leafN-spineN"},   {"nvlink-node0-gpu5_UP", "nvlink-nodeN-gpuN"},
      {"ib-node10-gpu7_DOWN", "ib-nodeN-gpuN"}, {"spine1-core0", "spineN-coreN"},
      {"ib-fabric", "ib-fabric"},          {"l0_UP", "lN"},
      {"upi-node0", "upi-nodeN"},          {"_UP", "_UP"},
      {"a_UPx", "a_UPx"},                  {"2024", "N"},
  };
  char buf[TS_NAME_MAX];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CU_ASSERT_STRING_EQUAL(ts__link_class(cases[i][0], buf, sizeof buf), cases[i][1]);
  char small[6];
  CU_ASSERT_STRING_EQUAL(ts__link_class("leaf3-spine1", small, sizeof small), "leafN");
  /* utilisation and load at the edges */
  ts_link_use_t u = {.bandwidth = 1e9, .bytes = 1e9, .busy_s = 2, .flow_s = 4};
  CU_ASSERT_EQUAL(ts__link_utilisation(&u, 4), 0.5);
  CU_ASSERT_EQUAL(ts__link_utilisation(&u, 2), 1);
  CU_ASSERT_EQUAL(ts__link_utilisation(&u, 0), 0);
  CU_ASSERT_EQUAL(ts__link_load(&u, 2), 0.5);  /* shared: bytes / (B T) */
  u.fatpipe = 1;
  CU_ASSERT_EQUAL(ts__link_load(&u, 2), 0.25); /* fatpipe: bytes / (B flow_s) */
}

TS_TESTS{
    TS_TEST(test_star_closed_form),
    TS_TEST(test_fatpipe_glob),
    TS_TEST(test_examples),
    TS_TEST(test_class_names),
};
TS_TEST_MAIN("links")
