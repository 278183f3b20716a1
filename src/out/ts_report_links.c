/*
** ts_report_links.c: what the platform's links carried, as summary.json's
** links[] and report.html's "Links" section show it (README
** "summary.json", links[]).
**
** The simulator records, per link, the bytes of the transfers routed over
** it, its busy time (the union of their spans) and their summed spans
** (sim/sim_setup.c).  Here those become a link's class (its name with the
** numbers taken out, so that leaf3-spine1 and leaf0-spine2 are one class),
** its utilisation (busy time over the makespan T, in [0, 1] by
** construction) and its load (bytes over what its bandwidth allowed: T x
** bandwidth for a shared link; for a FATPIPE link, whose bandwidth caps
** each flow and is not shared, the flows' summed spans x bandwidth).
** The report shows the classes (links, bytes, mean and largest
** utilisation) and the ten hottest links.
**
** Deterministic: fixed formats, ties broken by name.
*/
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ts_out.h"
#include "ts_report_int.h"

double ts__links_T(const ts_run_t *run) {
  double T = 0;
  for (int i = 0; run && i < run->n_events; i++)
    if (run->events[i].end > T) T = run->events[i].end;
  return T;
}

const char *ts__link_class(const char *name, char *buf, size_t n) {
  size_t len = strlen(name), w = 0;
  if (len > 3 && !strcmp(name + len - 3, "_UP")) len -= 3;
  else if (len > 5 && !strcmp(name + len - 5, "_DOWN")) len -= 5;
  for (size_t i = 0; i < len && w + 1 < n; i++) {
    if (isdigit((unsigned char)name[i])) {
      while (i + 1 < len && isdigit((unsigned char)name[i + 1])) i++;
      buf[w++] = 'N';
    } else {
      buf[w++] = name[i];
    }
  }
  buf[w] = 0;
  return buf;
}

double ts__link_utilisation(const ts_link_use_t *u, double T) {
  if (!(T > 0) || !(u->busy_s > 0)) return 0;
  return u->busy_s >= T ? 1 : u->busy_s / T; /* >= T only by rounding */
}

double ts__link_load(const ts_link_use_t *u, double T) {
  double cap = u->bandwidth * (u->fatpipe ? u->flow_s : T);
  return cap > 0 ? u->bytes / cap : 0;
}

static int class_cmp(const void *a, const void *b) {
  const ts__link_class_t *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return strcmp(x->name, y->name);
}

int ts__link_classes(const ts_run_t *run, double T, ts__link_class_t **out) {
  *out = NULL;
  if (!run || run->n_links <= 0) return 0;
  ts__link_class_t *c = calloc((size_t)run->n_links, sizeof *c);
  if (!c) return 0;
  int n = 0;
  for (int i = 0; i < run->n_links; i++) {
    const ts_link_use_t *u = &run->links[i];
    char name[TS_NAME_MAX];
    ts__link_class(u->name, name, sizeof name);
    int k = 0;
    while (k < n && strcmp(c[k].name, name)) k++;
    if (k == n) snprintf(c[n++].name, sizeof c->name, "%s", name);
    double ut = ts__link_utilisation(u, T), ld = ts__link_load(u, T);
    c[k].links++;
    c[k].fatpipe += u->fatpipe != 0;
    c[k].bytes += u->bytes;
    c[k].util_mean += ut; /* the sum until divided below */
    if (ut > c[k].util_max) c[k].util_max = ut;
    if (ld > c[k].load_max) c[k].load_max = ld;
  }
  for (int k = 0; k < n; k++) c[k].util_mean /= c[k].links;
  qsort(c, (size_t)n, sizeof *c, class_cmp);
  *out = c;
  return n;
}

/* One link as ts__link_hottest orders them. */
typedef struct hot {
  int i;
  double util, load, bytes;
  const char *name;
} hot_t;

static int hot_cmp(const void *a, const void *b) {
  const hot_t *x = a, *y = b;
  if (x->util != y->util) return x->util > y->util ? -1 : 1;
  if (x->load != y->load) return x->load > y->load ? -1 : 1;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return strcmp(x->name, y->name);
}

int ts__link_hottest(const ts_run_t *run, double T, int *idx, int k) {
  if (!run || run->n_links <= 0 || k <= 0) return 0;
  hot_t *h = malloc((size_t)run->n_links * sizeof *h);
  if (!h) return 0;
  for (int i = 0; i < run->n_links; i++) {
    const ts_link_use_t *u = &run->links[i];
    h[i] = (hot_t){i, ts__link_utilisation(u, T), ts__link_load(u, T), u->bytes, u->name};
  }
  qsort(h, (size_t)run->n_links, sizeof *h, hot_cmp);
  int n = k < run->n_links ? k : run->n_links;
  for (int i = 0; i < n; i++) idx[i] = h[i].i;
  free(h);
  return n;
}

/* ---- the report's section -------------------------------------------- */

#define HOTTEST 10

static const char *sharing_of(int links, int fatpipe) {
  return fatpipe == 0 ? "shared" : fatpipe == links ? "fatpipe" : "mixed";
}

static void write_classes(FILE *f, const ts_run_t *run, double T) {
  ts__link_class_t *c;
  int n = ts__link_classes(run, T, &c);
  char a[64];
  fputs("<h3>Link classes</h3>\n<p class=\"note\">A class gathers the links whose names differ "
        "only in their numbers (the name without <code>_UP</code>/<code>_DOWN</code>, each run of "
        "digits written N). A transfer counts on every link of its route, so the bytes of all "
        "links add up each transfer once per hop.</p>\n"
        "<div class=\"scroll\"><table class=\"devs links\">\n<tr><th>class</th><th>sharing</th>"
        "<th>links</th><th>bytes</th><th>mean utilisation</th><th>max utilisation</th>"
        "<th>max load</th></tr>\n",
        f);
  int links = 0;
  double bytes = 0, um = 0, ux = 0, lx = 0;
  for (int k = 0; k < n; k++) {
    fputs("<tr><td><code>", f);
    ts__xml_puts(f, c[k].name);
    fprintf(f, "</code></td><td>%s</td><td class=\"num\">%d</td><td class=\"num\">%s</td>",
            sharing_of(c[k].links, c[k].fatpipe), c[k].links, ts__report_bytes(a, sizeof a, c[k].bytes));
    fprintf(f, "<td class=\"num\">%.2f %%</td><td class=\"num\">%.2f %%</td><td class=\"num\">%.2f %%</td></tr>\n",
            100 * c[k].util_mean, 100 * c[k].util_max, 100 * c[k].load_max);
    links += c[k].links;
    bytes += c[k].bytes;
    um += c[k].util_mean * c[k].links;
    if (c[k].util_max > ux) ux = c[k].util_max;
    if (c[k].load_max > lx) lx = c[k].load_max;
  }
  fprintf(f, "<tr><td><b>all links</b></td><td></td><td class=\"num\"><b>%d</b></td>"
          "<td class=\"num\"><b>%s</b></td>", links, ts__report_bytes(a, sizeof a, bytes));
  fprintf(f, "<td class=\"num\">%.2f %%</td><td class=\"num\">%.2f %%</td><td class=\"num\">%.2f %%</td></tr>\n"
          "</table></div>\n", links ? 100 * um / links : 0.0, 100 * ux, 100 * lx);
  free(c);
}

static void write_hottest(FILE *f, const ts_run_t *run, double T) {
  int idx[HOTTEST];
  int n = ts__link_hottest(run, T, idx, HOTTEST);
  char a[64], b[64], t[64], cls[TS_NAME_MAX];
  fprintf(f, "<h3>Hottest links</h3>\n<p class=\"note\">The %d links of highest utilisation "
          "(then load, then bytes) of the %d that carried traffic.</p>\n", n, run->n_links);
  fputs("<div class=\"scroll\"><table class=\"devs links\">\n<tr><th>#</th><th>link</th>"
        "<th>class</th><th>sharing</th><th>bandwidth</th><th>bytes</th><th>busy</th>"
        "<th>utilisation</th><th>load</th></tr>\n",
        f);
  for (int i = 0; i < n; i++) {
    const ts_link_use_t *u = &run->links[idx[i]];
    fprintf(f, "<tr><td class=\"num\">%d</td><td><code>", i + 1);
    ts__xml_puts(f, u->name);
    fputs("</code></td><td><code>", f);
    ts__xml_puts(f, ts__link_class(u->name, cls, sizeof cls));
    fprintf(f, "</code></td><td>%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
            "<td class=\"num\">%s</td>",
            u->fatpipe ? "fatpipe" : "shared", ts__report_si(a, sizeof a, u->bandwidth, "B/s"),
            ts__report_bytes(b, sizeof b, u->bytes), ts__report_time(t, sizeof t, u->busy_s));
    fprintf(f, "<td class=\"num\">%.2f %%</td><td class=\"num\">%.2f %%</td></tr>\n",
            100 * ts__link_utilisation(u, T), 100 * ts__link_load(u, T));
  }
  fputs("</table></div>\n", f);
}

void ts__report_write_links(FILE *f, const ts_result_t *r) {
  const ts_run_t *run = r->run;
  if (!run || run->n_links <= 0) return;
  double T = ts__links_T(run);
  char a[64];
  fprintf(f, "<section id=\"links\">\n<h2>Links</h2>\n<p class=\"note\">What each platform link "
          "carried over the run (T = %s). <b>Utilisation</b> is the share of T during which at "
          "least one transfer crossed the link; <b>load</b> is its bytes over what its bandwidth "
          "allowed (a shared link: bandwidth x T; a fatpipe, whose bandwidth caps each flow "
          "rather than being shared: bandwidth x the flows' summed durations). Both are at most "
          "100 %%.</p>\n",
          ts__report_time(a, sizeof a, T));
  write_classes(f, run, T);
  write_hottest(f, run, T);
  ts__report_write_link_defs(f);
  fputs("</section>\n", f);
}
