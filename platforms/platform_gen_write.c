/*
** platform_gen_write.c: the parts of a generated SimGrid platform file
** (DTD 4.1) that both topologies share (numbers, the header comment's
** figures, the zone's opening and its regenerate command), and the
** pcie-tree of commodity servers.  The fat tree is written by
** platform_topo.c, which explains the model and the routes; the presets
** and the checks are in platform_gen.c.
**
** Output is deterministic: it depends only on the fields of ts_platgen_t;
** whole numbers below 2^53 are printed as integers and others in the
** shortest %.<p>g form (p <= 17) that reads back as the same double.  The
** regenerate command is stored in a zone property, not in the header
** comment, because an XML comment cannot contain "--".  Bandwidths in it
** carry the unit Bps: trainsim platform refuses plain bandwidths.
*/
#include "platform_gen.h"
#include "platform_gen_internal.h"
#include "ts_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

const char *ts__platgen_num(char buf[40], double x) {
  if (x == floor(x) && fabs(x) < 9007199254740992.0) {
    snprintf(buf, 40, "%.0f", x);
    return buf;
  }
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, 40, "%.*g", p, x);
    if (strtod(buf, NULL) == x) break;
  }
  return buf;
}

#define num ts__platgen_num
#define out ts__platgen_out

/* Bandwidths print with their unit, latencies in seconds with "s". */
static const char *bw(char buf[48], double x) {
  char n[40];
  snprintf(buf, 48, "%sBps", num(n, x));
  return buf;
}
static const char *sec(char buf[48], double x) {
  char n[40];
  snprintf(buf, 48, "%ss", num(n, x));
  return buf;
}

int ts_platgen_command(const ts_platgen_t *g, char *buf, size_t size) {
  const ts_platgen_t *p = ts__platgen_base(g);
  if (p) { /* a preset, perhaps renamed or resized */
    char extra[128] = "";
    size_t k = 0;
    if (strcmp(g->name, p->name))
      k += (size_t)snprintf(extra + k, sizeof extra - k, " --name %s", g->name);
    if (g->nodes != p->nodes) snprintf(extra + k, sizeof extra - k, " --nodes %d", g->nodes);
    return snprintf(buf, size, "trainsim platform --preset %s%s", p->name, extra);
  }
  char v[24][48];
  const char *curve = g->gpu_curve[0] ? " --gemm-curve " : "";
  if (g->topology == 1) /* every figure, over any PCIe-tree preset */
    return snprintf(
        buf, size,
        "trainsim platform --preset commodity-8gpu --name %s --nodes %d --gpus %d --sockets %d"
        " --gpus-per-switch %d --gpu-speed %s --gpu-peak %s --gpu-memory %s --gpu-memory-bw %s"
        " --nvlink-bw %s"
        " --nvlink-lat %s --uplink-bw %s --uplink-lat %s --socket-bw %s --socket-lat %s"
        " --dram-bw %s --dram-lat %s --host-memory %s --ib-bw %s --ib-lat %s --fabric-bw %s"
        " --fabric-lat %s%s%s",
        g->name, g->nodes, g->gpus, g->sockets, g->gpus_per_switch, num(v[0], g->gpu_speed),
        num(v[1], g->gpu_peak_flops), num(v[2], g->gpu_memory), bw(v[16], g->gpu_memory_bw),
        bw(v[3], g->nvlink_bw), sec(v[4], g->nvlink_lat), bw(v[5], g->uplink_bw),
        sec(v[6], g->uplink_lat), bw(v[7], g->socket_bw), sec(v[8], g->socket_lat),
        bw(v[9], g->dram_bw), sec(v[10], g->dram_lat), num(v[11], g->host_memory),
        bw(v[12], g->ib_bw), sec(v[13], g->ib_lat), bw(v[14], g->fabric_bw),
        sec(v[15], g->fabric_lat), curve, g->gpu_curve);
  return snprintf(
      buf, size,
      "trainsim platform --name %s --nodes %d --gpus %d%s --gpu-speed %s --gpu-peak %s"
      " --gpu-memory %s --gpu-memory-bw %s --nvlink-bw %s --nvlink-lat %s --nvlink-domain %d"
      " --ib-bw %s --ib-lat %s --nic-pcie-bw %s --nic-pcie-lat %s --tiers %d --rails %s"
      " --leaf-ports %d --su-nodes %d --oversub-leaf %s --oversub-spine %s --fabric-lat %s%s%s",
      g->name, g->nodes, g->gpus, g->pcie_only ? " --pcie-only" : "", num(v[0], g->gpu_speed),
      num(v[1], g->gpu_peak_flops), num(v[2], g->gpu_memory), bw(v[3], g->gpu_memory_bw),
      bw(v[4], g->nvlink_bw), sec(v[5], g->nvlink_lat),
      g->nvlink_domain ? g->nvlink_domain : g->gpus, bw(v[6], g->ib_bw), sec(v[7], g->ib_lat),
      bw(v[8], g->nic_pcie_bw), sec(v[9], g->nic_pcie_lat), g->tiers, g->rails ? "on" : "off",
      g->leaf_ports, g->su_nodes, num(v[10], g->oversub_leaf), num(v[11], g->oversub_spine),
      sec(v[12], g->fabric_lat), curve, g->gpu_curve);
}

void ts__platgen_curve_prop(const ts_platgen_t *g, char *buf, size_t size) {
  buf[0] = 0;
  if (g->gpu_curve[0])
    snprintf(buf, size, "      <prop id=\"gemm_curve\" value=\"%s\"/>\n", g->gpu_curve);
}

void ts__platgen_out(FILE *f, int *bad, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (vfprintf(f, fmt, ap) < 0) *bad = 1;
  va_end(ap);
}

/* s with &, <, > and " escaped, for an attribute value. */
static void out_attr(FILE *f, int *bad, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '&': out(f, bad, "&amp;"); break;
      case '<': out(f, bad, "&lt;"); break;
      case '>': out(f, bad, "&gt;"); break;
      case '"': out(f, bad, "&quot;"); break;
      default:
        if (fputc(*s, f) == EOF) *bad = 1;
    }
  }
}

static int write_tree(const ts_platgen_t *g, FILE *f);

void ts__platgen_about_lines(FILE *f, int *bad, const ts_platgen_t *g) {
  const char *const *about = ts__platgen_about(g);
  if (about)
    for (const char *const *l = about; *l; l++) out(f, bad, "  %s\n", *l);
  else
    out(f, bad, "  Custom platform: the figures are those of the elements below.\n");
}

void ts__platgen_zone_open(FILE *f, int *bad, const ts_platgen_t *g) {
  char cmd[1024];
  ts_platgen_command(g, cmd, sizeof cmd);
  out(f, bad, "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n");
  out(f, bad, "<platform version=\"4.1\">\n");
  out(f, bad, "  <zone id=\"%s\" routing=\"DijkstraCache\">\n", g->name);
  out(f, bad, "    <prop id=\"regenerate\" value=\"");
  out_attr(f, bad, cmd);
  out(f, bad, "\"/>\n");
  out(f, bad, "    <prop id=\"nodes\" value=\"%d\"/>\n", g->nodes);
  out(f, bad, "    <prop id=\"gpus_per_node\" value=\"%d\"/>\n", g->gpus);
}

int ts_platgen_write(const ts_platgen_t *g, FILE *f) {
  return g->topology == 1 ? write_tree(g, f) : ts__platgen_write_fat_tree(g, f);
}

/* ------------------------------------------------------------------ */
/* pcie-tree: commodity servers                                        */
/* ------------------------------------------------------------------ */

/* One link of the tree between vertices a and b (one-way routes a -> b UP
** and b -> a DOWN; a FATPIPE link carries only a -> b). */
typedef struct tree_edge {
  char id[48], a[48], b[48];
  double bw, lat;
  int fatpipe;
} tree_edge_t;

static void tree_add(tree_edge_t *e, int *n, double bw, double lat, int fatpipe, const char *id,
                     const char *a, const char *b) {
  tree_edge_t *t = &e[(*n)++];
  snprintf(t->id, sizeof t->id, "%s", id);
  snprintf(t->a, sizeof t->a, "%s", a);
  snprintf(t->b, sizeof t->b, "%s", b);
  t->bw = bw;
  t->lat = lat;
  t->fatpipe = fatpipe;
}

/* The tree has one path between any two vertices, so SimGrid's Dijkstra
** (edges of one link each, as in the star topology above) finds exactly
** it: GPU - switch - CPU [- CPU] - DRAM, switch or NIC. */
static int write_tree(const ts_platgen_t *g, FILE *f) {
  int bad = 0;
  int sw_per_node = g->gpus / g->gpus_per_switch, sw_per_sock = sw_per_node / g->sockets;
  char n1[40], n2[40], n3[40], n4[40], n5[40];
  out(f, &bad, "<?xml version='1.0'?>\n<!--\n");
  out(f, &bad, "  trainsim platform %s: %d node%s x %d GPU%s, PCIe tree (%d GPU hosts).\n", g->name,
      g->nodes, g->nodes == 1 ? "" : "s", g->gpus, g->gpus == 1 ? "" : "s", g->nodes * g->gpus);
  out(f, &bad,
      "  Generated by trainsim (sim/platform_gen.c); do not edit by hand.\n"
      "  The command that regenerates this file byte for byte is the value\n"
      "  of the property \"regenerate\" of the zone below.\n\n");
  ts__platgen_about_lines(f, &bad, g);
  out(f, &bad,
      "\n"
      "  Hosts node<N>-gpu<G>: speed = sustained FLOP/s; properties memory_bytes,\n"
      "  peak_flops, memory_bandwidth (B/s), host_memory (its socket's DRAM host),\n"
      "  socket, switch, node, nvlink_domain (= node: its GPUs meet over PCIe).\n"
      "  Hosts node<N>-dram<S>: socket S's DRAM, a memory endpoint (memory_bytes,\n"
      "  memory_endpoint = 1: never a device).\n"
      "  Routers node<N>-cpu<S> (root complexes), node<N>-sw<K> (PCIe switches;\n"
      "  switch K under socket K / %d)%s.\n"
      "  Links (SPLITDUPLEX): pcie-node<N>-gpu<G> GPU-switch, uplink-node<N>-sw<K>\n"
      "  switch-CPU, dram-node<N>-cpu<S> DRAM-CPU%s%s.\n"
      "  Routes: the unique path of the tree (one DijkstraCache zone).  A transfer\n"
      "  takes sum(latency) + bytes / min(bandwidth) alone; flows that share a\n"
      "  link (e.g. four GPUs fetching through one switch uplink) share its\n"
      "  bandwidth by SimGrid's max-min model (CM02, no cross traffic, gamma 0).\n"
      "-->\n",
      sw_per_sock, g->nodes > 1 ? ", eth-switch" : "",
      g->sockets > 1 ? ", upi-node<N> CPU0-CPU1" : "",
      g->nodes > 1 ? ", eth-node<N> CPU0-switch and eth-fabric (FATPIPE)" : "");
  ts__platgen_zone_open(f, &bad, g);
  out(f, &bad, "    <prop id=\"topology\" value=\"pcie-tree\"/>\n");
  const char *speed = num(n1, g->gpu_speed), *mem = num(n2, g->gpu_memory),
             *peak = num(n3, g->gpu_peak_flops), *hmem = num(n4, g->host_memory),
             *mbw = num(n5, g->gpu_memory_bw);
  char curve[64];
  ts__platgen_curve_prop(g, curve, sizeof curve);
  for (int n = 0; n < g->nodes; n++) {
    for (int k = 0; k < g->gpus; k++) {
      int sw = k / g->gpus_per_switch, so = sw / sw_per_sock;
      out(f, &bad,
          "    <host id=\"node%d-gpu%d\" speed=\"%sf\">\n"
          "      <prop id=\"memory_bytes\" value=\"%s\"/>\n"
          "      <prop id=\"peak_flops\" value=\"%s\"/>\n"
          "      <prop id=\"memory_bandwidth\" value=\"%s\"/>\n"
          "%s"
          "      <prop id=\"host_memory\" value=\"node%d-dram%d\"/>\n"
          "      <prop id=\"socket\" value=\"%d\"/>\n"
          "      <prop id=\"switch\" value=\"%d\"/>\n"
          "      <prop id=\"node\" value=\"%d\"/>\n"
          "      <prop id=\"nvlink_domain\" value=\"%d\"/>\n"
          "    </host>\n",
          n, k, speed, mem, peak, mbw, curve, n, so, so, sw, n, n);
    }
    for (int so = 0; so < g->sockets; so++)
      out(f, &bad,
          "    <host id=\"node%d-dram%d\" speed=\"1f\">\n"
          "      <prop id=\"memory_bytes\" value=\"%s\"/>\n"
          "      <prop id=\"memory_endpoint\" value=\"1\"/>\n"
          "    </host>\n",
          n, so, hmem);
  }
  for (int n = 0; n < g->nodes; n++) {
    for (int so = 0; so < g->sockets; so++) out(f, &bad, "    <router id=\"node%d-cpu%d\"/>\n", n, so);
    for (int sw = 0; sw < sw_per_node; sw++) out(f, &bad, "    <router id=\"node%d-sw%d\"/>\n", n, sw);
  }
  if (g->nodes > 1) out(f, &bad, "    <router id=\"eth-switch\"/>\n");
  if (g->nodes > 1) out(f, &bad, "    <router id=\"eth-egress\"/>\n");
  size_t cap = (size_t)g->nodes * (size_t)(g->gpus + sw_per_node + g->sockets + 2) + 1;
  tree_edge_t *e = ts__xmalloc(cap * sizeof *e);
  int ne = 0;
  char id[48], a[48], b[48];
  for (int n = 0; n < g->nodes; n++) {
    for (int k = 0; k < g->gpus; k++) {
      snprintf(id, sizeof id, "pcie-node%d-gpu%d", n, k);
      snprintf(a, sizeof a, "node%d-gpu%d", n, k);
      snprintf(b, sizeof b, "node%d-sw%d", n, k / g->gpus_per_switch);
      tree_add(e, &ne, g->nvlink_bw, g->nvlink_lat, 0, id, a, b);
    }
    for (int sw = 0; sw < sw_per_node; sw++) {
      snprintf(id, sizeof id, "uplink-node%d-sw%d", n, sw);
      snprintf(a, sizeof a, "node%d-sw%d", n, sw);
      snprintf(b, sizeof b, "node%d-cpu%d", n, sw / sw_per_sock);
      tree_add(e, &ne, g->uplink_bw, g->uplink_lat, 0, id, a, b);
    }
    for (int so = 0; so < g->sockets; so++) {
      snprintf(id, sizeof id, "dram-node%d-cpu%d", n, so);
      snprintf(a, sizeof a, "node%d-dram%d", n, so);
      snprintf(b, sizeof b, "node%d-cpu%d", n, so);
      tree_add(e, &ne, g->dram_bw, g->dram_lat, 0, id, a, b);
    }
    if (g->sockets > 1) {
      snprintf(id, sizeof id, "upi-node%d", n);
      snprintf(a, sizeof a, "node%d-cpu0", n);
      snprintf(b, sizeof b, "node%d-cpu1", n);
      tree_add(e, &ne, g->socket_bw, g->socket_lat, 0, id, a, b);
    }
  }
  /* Between nodes, as the star topology's InfiniBand: a node's NIC up to
  ** eth-switch, one FATPIPE fabric to eth-egress, a NIC down. */
  for (int n = 0; n < g->nodes && g->nodes > 1; n++) {
    snprintf(id, sizeof id, "eth-node%d", n);
    snprintf(a, sizeof a, "node%d-cpu0", n);
    tree_add(e, &ne, g->ib_bw, g->ib_lat, 0, id, a, "eth-switch");
  }
  if (g->nodes > 1) tree_add(e, &ne, g->fabric_bw, g->fabric_lat, 1, "eth-fabric", "eth-switch", "eth-egress");
  for (int i = 0; i < ne; i++)
    out(f, &bad, "    <link id=\"%s\" bandwidth=\"%sBps\" latency=\"%ss\" sharing_policy=\"%s\"/>\n",
        e[i].id, num(n1, e[i].bw), num(n2, e[i].lat), e[i].fatpipe ? "FATPIPE" : "SPLITDUPLEX");
  for (int i = 0; i < ne; i++) {
    if (e[i].fatpipe) {
      out(f, &bad,
          "    <route src=\"%s\" dst=\"%s\" symmetrical=\"NO\"><link_ctn id=\"%s\"/></route>\n",
          e[i].a, e[i].b, e[i].id);
      continue;
    }
    /* A NIC's way down starts at eth-egress. */
    const char *down_from = strcmp(e[i].b, "eth-switch") == 0 ? "eth-egress" : e[i].b;
    out(f, &bad,
        "    <route src=\"%s\" dst=\"%s\" symmetrical=\"NO\"><link_ctn id=\"%s\" direction=\"UP\"/></route>\n"
        "    <route src=\"%s\" dst=\"%s\" symmetrical=\"NO\"><link_ctn id=\"%s\" direction=\"DOWN\"/></route>\n",
        e[i].a, e[i].b, e[i].id, down_from, e[i].a, e[i].id);
  }
  free(e);
  out(f, &bad, "  </zone>\n</platform>\n");
  if (fflush(f) != 0 || ferror(f)) bad = 1;
  return bad ? EX_IOERR : 0;
}
