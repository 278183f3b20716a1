/*
** platform_gen_write.c: writes SimGrid platform files (DTD 4.1) for N
** nodes x G GPUs: the NVSwitch/PCIe star described below and the pcie-tree
** of commodity servers (its own section further down); the presets, the
** calibration and the checks are in platform_gen.c.
**
** What is modelled.  One SimGrid host per GPU (speed = sustained FLOP/s,
** properties memory_bytes, peak_flops and memory_bandwidth).  Every GPU owns two
** SPLITDUPLEX links: its NVLink/NVSwitch port nvlink-node<N>-gpu<G> (for a
** PCIe-only box, pcie-node<N>-gpu<G>: its PCIe x16 link to a non-blocking
** root complex or switch) and, when nodes > 1, its InfiniBand NIC
** ib-node<N>-gpu<G> (rail-optimised: one NIC per GPU, as in DGX/HGX
** systems).  The nodes share one FATPIPE link ib-fabric, a non-blocking
** switch fabric: under FATPIPE every flow is capped by its bandwidth but
** flows never share it.  NVSwitch is taken as non-blocking, so two GPUs of
** a node meet only on their own ports.  Routes:
**   same node:  nvlink(a) UP, nvlink(b) DOWN
**   other node: ib(a) UP, ib-fabric, ib(b) DOWN
** Under network/model:CM02, network/crosstraffic:0 and network/TCP-gamma:0
** one transfer of S bytes then takes 2 nvlink_lat + S / nvlink_bw inside a
** node and 2 ib_lat + fabric_lat + S / min(ib_bw, fabric_bw) across nodes.
**
** How the routes are expressed, and why.  The whole platform is one zone
** with routing="DijkstraCache" holding the hosts, one router per node
** (node<N>-nvswitch, or node<N>-pcie-switch) and, when nodes > 1, two
** routers ib-ingress and ib-egress.  Every route declared is one way and
** holds exactly one link (graph edges):
**   gpu -> node<N>-nvswitch   nvlink(gpu) UP
**   node<N>-nvswitch -> gpu   nvlink(gpu) DOWN
**   gpu -> ib-ingress         ib(gpu) UP
**   ib-ingress -> ib-egress   ib-fabric
**   ib-egress -> gpu          ib(gpu) DOWN
** SimGrid's Dijkstra weighs an edge by its number of links, so the path
** inside a node (2 links) is strictly shorter than the path through the
** fabric (3 links), and a path across nodes must take the fabric: the
** shortest path is unique and is exactly the route above, for every pair.
** One link per edge matters: SimGrid 3.32's Dijkstra prepends an edge's
** links one by one, so an edge "ib(gpu) UP, ib-fabric" came out reversed
** (measured).  The file is O(N x G): 4 routes per GPU plus one (2 per
** GPU on one node).  The cache
** keeps one predecessor array per source host: a host pays one Dijkstra
** over N x G + N + 2 vertices on its first route, then a walk of at most 3
** edges.  Routes exist only once the platform is sealed, which the C API
** does in simgrid_run: query them from an actor, not right after loading.
** Rejected alternatives (SimGrid 3.32):
**   - routing="Full" with explicit routes: (N x G)^2 routes; fine up to
**     ~64 hosts, far too many at 1024;
**   - nested zones (a Full zone per node whose gateway router is reached
**     from each GPU through its own NIC, zoneRoutes between nodes): exact,
**     but the top zone needs N^2 zoneRoutes (Full) or O(N^3) Floyd, and
**     each node G^2 routes, so 1024 x 1 or 1 x 1024 does not scale;
**   - <cluster> (StarZone): one private link per host, named by SimGrid,
**     so neither two links per GPU nor the names nvlink-* / ib-*; the XML
**     parser of 3.32 knows no routing="Star", and zoneRoutes cannot name
**     "everyone else" as in the C++ StarZone API;
**   - a Dijkstra zone with a NIC router inside each node: the NIC path
**     between two GPUs of a node also has 2 links and ties with NVLink.
** Measured on the development machine (2 cores, SimGrid 3.32, CM02; load
** = simgrid_load_platform; route = sg_host_get_route from an actor):
**   shape      hosts   file    load    first route from a host   cached
**   2 x 8         16   16 kB  0.001 s          5 us               0.3 us
**   8 x 8         64   58 kB  0.003 s         12 us               0.4 us
**   128 x 8     1024  908 kB  0.036 s        220 us               2 us
**   1 x 1024    1024  555 kB  0.023 s        140 us               2 us
**   1024 x 1    1024  951 kB  0.039 s        360 us               2.3 us
** Generating 128 x 8 takes about 0.007 s.  tests/test_platform_gen.c
** re-measures the 128 x 8 and 1024 x 1 loads (limit 1 s) and checks exact
** routes there.  Nothing is approximated at any size: the routes are the
** same up to TS_PLATGEN_MAX_HOSTS (timings measured only to 1024 hosts).
**
** Output is deterministic: it depends only on the fields of ts_platgen_t;
** whole numbers below 2^53 are printed as integers and others in the
** shortest %.<p>g form (p <= 17) that reads back as the same double.  The
** regenerate command is stored in a zone property, not in the header
** comment, because an XML comment cannot contain "--".
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

/* x as an exact integer when it is one below 2^53, else in the shortest
** %.<p>g form that strtod reads back as x. */
static const char *num(char buf[40], double x) {
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

int ts_platgen_command(const ts_platgen_t *g, char *buf, size_t size) {
  if (ts__platgen_about(g)) return snprintf(buf, size, "trainsim platform --preset %s", g->name);
  if (g->topology == 1) { /* every figure, over any PCIe-tree preset */
    char v[22][40];
    return snprintf(
        buf, size,
        "trainsim platform --preset commodity-8gpu --name %s --nodes %d --gpus %d --sockets %d"
        " --gpus-per-switch %d --gpu-speed %s --gpu-peak %s --gpu-memory %s --gpu-memory-bw %s"
        " --nvlink-bw %s"
        " --nvlink-lat %s --uplink-bw %s --uplink-lat %s --socket-bw %s --socket-lat %s"
        " --dram-bw %s --dram-lat %s --host-memory %s --ib-bw %s --ib-lat %s --fabric-bw %s"
        " --fabric-lat %s%s%s",
        g->name, g->nodes, g->gpus, g->sockets, g->gpus_per_switch, num(v[0], g->gpu_speed),
        num(v[1], g->gpu_peak_flops), num(v[2], g->gpu_memory), num(v[16], g->gpu_memory_bw),
        num(v[3], g->nvlink_bw),
        num(v[4], g->nvlink_lat), num(v[5], g->uplink_bw), num(v[6], g->uplink_lat),
        num(v[7], g->socket_bw), num(v[8], g->socket_lat), num(v[9], g->dram_bw),
        num(v[10], g->dram_lat), num(v[11], g->host_memory), num(v[12], g->ib_bw),
        num(v[13], g->ib_lat), num(v[14], g->fabric_bw), num(v[15], g->fabric_lat),
        g->gpu_curve[0] ? " --gemm-curve " : "", g->gpu_curve);
  }
  char a[40], b[40], c[40], d[40], e[40], f[40], h[40], i[40], j[40], k[40];
  return snprintf(buf, size,
                  "trainsim platform --name %s --nodes %d --gpus %d%s --gpu-speed %s --gpu-peak %s"
                  " --gpu-memory %s --gpu-memory-bw %s --nvlink-bw %s --nvlink-lat %s --ib-bw %s"
                  " --ib-lat %s --fabric-bw %s --fabric-lat %s%s%s",
                  g->name, g->nodes, g->gpus, g->pcie_only ? " --pcie-only" : "",
                  num(a, g->gpu_speed), num(b, g->gpu_peak_flops), num(c, g->gpu_memory),
                  num(k, g->gpu_memory_bw), num(d, g->nvlink_bw), num(e, g->nvlink_lat), num(f, g->ib_bw),
                  num(h, g->ib_lat), num(i, g->fabric_bw), num(j, g->fabric_lat),
                  g->gpu_curve[0] ? " --gemm-curve " : "", g->gpu_curve);
}

/* The host's gemm_curve property line, or "" when g names no curve. */
static void curve_prop(const ts_platgen_t *g, char *buf, size_t size) {
  buf[0] = 0;
  if (g->gpu_curve[0])
    snprintf(buf, size, "      <prop id=\"gemm_curve\" value=\"%s\"/>\n", g->gpu_curve);
}

/* fprintf that remembers a failure in *bad. */
static void out(FILE *f, int *bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void out(FILE *f, int *bad, const char *fmt, ...) {
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

/* The header comment's figures: the preset's lines, or a note. */
static void write_about(FILE *f, int *bad, const ts_platgen_t *g) {
  const char *const *about = ts__platgen_about(g);
  if (about)
    for (const char *const *l = about; *l; l++) out(f, bad, "  %s\n", *l);
  else
    out(f, bad, "  Custom platform: the figures are those of the elements below.\n");
}

/* From the DOCTYPE to the zone's properties (its regenerate command, nodes
** and GPUs per node), shared by both topologies. */
static void zone_open(FILE *f, int *bad, const ts_platgen_t *g) {
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
  if (g->topology == 1) return write_tree(g, f);
  int bad = 0;
  const char *port = g->pcie_only ? "pcie" : "nvlink";
  const char *sw = g->pcie_only ? "pcie-switch" : "nvswitch";
  const int multi = g->nodes > 1;
  char n1[40], n2[40], n3[40], n4[40];

  out(f, &bad, "<?xml version='1.0'?>\n<!--\n");
  out(f, &bad, "  trainsim platform %s: %d node%s x %d GPU%s (%d hosts).\n", g->name, g->nodes,
      g->nodes == 1 ? "" : "s", g->gpus, g->gpus == 1 ? "" : "s", g->nodes * g->gpus);
  out(f, &bad,
      "  Generated by trainsim (sim/platform_gen.c); do not edit by hand.\n"
      "  The command that regenerates this file byte for byte is the value\n"
      "  of the property \"regenerate\" of the zone below (it is not repeated\n"
      "  here because an XML comment cannot contain a double hyphen).\n\n");
  write_about(f, &bad, g);
  out(f, &bad,
      "\n"
      "  Hosts node<N>-gpu<G>: speed = sustained FLOP/s; properties\n"
      "  memory_bytes (bytes), peak_flops (FLOP/s) and memory_bandwidth (B/s).\n"
      "  Links (SPLITDUPLEX, per GPU): %s-node<N>-gpu<G>, the GPU's\n"
      "  %s;\n",
      port, g->pcie_only ? "PCIe x16 link" : "NVLink/NVSwitch port");
  if (multi)
    out(f, &bad,
        "  ib-node<N>-gpu<G>, the GPU's InfiniBand NIC (one rail per GPU);\n"
        "  and ib-fabric (FATPIPE), the non-blocking switch fabric.\n");
  else
    out(f, &bad, "  one node: no InfiniBand links.\n");
  out(f, &bad,
      "  Routes: same node: %s(a) UP, %s(b) DOWN%s\n"
      "  Each is the unique shortest path (in links) through the routers\n"
      "  node<N>-%s%s of one DijkstraCache zone.\n"
      "  Transfers take sum(latency) + bytes / min(bandwidth) exactly under\n"
      "  the SimGrid configuration network/model:CM02,\n"
      "  network/crosstraffic:0 and network/TCP-gamma:0.\n"
      "-->\n",
      port, port, multi ? ";\n  other node: ib(a) UP, ib-fabric, ib(b) DOWN." : ".", sw,
      multi ? ", ib-ingress and ib-egress" : "");
  zone_open(f, &bad, g);

  const char *speed = num(n1, g->gpu_speed), *mem = num(n2, g->gpu_memory),
             *peak = num(n3, g->gpu_peak_flops), *mbw = num(n4, g->gpu_memory_bw);
  char curve[64];
  curve_prop(g, curve, sizeof curve);
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++)
      out(f, &bad,
          "    <host id=\"node%d-gpu%d\" speed=\"%sf\">\n"
          "      <prop id=\"memory_bytes\" value=\"%s\"/>\n"
          "      <prop id=\"peak_flops\" value=\"%s\"/>\n"
          "      <prop id=\"memory_bandwidth\" value=\"%s\"/>\n"
          "%s"
          "    </host>\n",
          n, k, speed, mem, peak, mbw, curve);
  for (int n = 0; n < g->nodes; n++) out(f, &bad, "    <router id=\"node%d-%s\"/>\n", n, sw);
  if (multi) out(f, &bad, "    <router id=\"ib-ingress\"/>\n    <router id=\"ib-egress\"/>\n");

  char pbw[40], plat[40], ibw[40], ilat[40];
  num(pbw, g->nvlink_bw);
  num(plat, g->nvlink_lat);
  num(ibw, g->ib_bw);
  num(ilat, g->ib_lat);
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++) {
      out(f, &bad,
          "    <link id=\"%s-node%d-gpu%d\" bandwidth=\"%sBps\" latency=\"%ss\""
          " sharing_policy=\"SPLITDUPLEX\"/>\n",
          port, n, k, pbw, plat);
      if (multi)
        out(f, &bad,
            "    <link id=\"ib-node%d-gpu%d\" bandwidth=\"%sBps\" latency=\"%ss\""
            " sharing_policy=\"SPLITDUPLEX\"/>\n",
            n, k, ibw, ilat);
    }
  if (multi)
    out(f, &bad,
        "    <link id=\"ib-fabric\" bandwidth=\"%sBps\" latency=\"%ss\" sharing_policy=\"FATPIPE\"/>\n",
        num(n1, g->fabric_bw), num(n2, g->fabric_lat));

  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++) {
      out(f, &bad,
          "    <route src=\"node%d-gpu%d\" dst=\"node%d-%s\" symmetrical=\"NO\">"
          "<link_ctn id=\"%s-node%d-gpu%d\" direction=\"UP\"/></route>\n"
          "    <route src=\"node%d-%s\" dst=\"node%d-gpu%d\" symmetrical=\"NO\">"
          "<link_ctn id=\"%s-node%d-gpu%d\" direction=\"DOWN\"/></route>\n",
          n, k, n, sw, port, n, k, n, sw, n, k, port, n, k);
      if (multi)
        out(f, &bad,
            "    <route src=\"node%d-gpu%d\" dst=\"ib-ingress\" symmetrical=\"NO\">"
            "<link_ctn id=\"ib-node%d-gpu%d\" direction=\"UP\"/></route>\n"
            "    <route src=\"ib-egress\" dst=\"node%d-gpu%d\" symmetrical=\"NO\">"
            "<link_ctn id=\"ib-node%d-gpu%d\" direction=\"DOWN\"/></route>\n",
            n, k, n, k, n, k, n, k);
    }
  if (multi)
    out(f, &bad,
        "    <route src=\"ib-ingress\" dst=\"ib-egress\" symmetrical=\"NO\">"
        "<link_ctn id=\"ib-fabric\"/></route>\n");
  out(f, &bad, "  </zone>\n</platform>\n");
  if (fflush(f) != 0 || ferror(f)) bad = 1;
  return bad ? EX_IOERR : 0;
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
  write_about(f, &bad, g);
  out(f, &bad,
      "\n"
      "  Hosts node<N>-gpu<G>: speed = sustained FLOP/s; properties memory_bytes,\n"
      "  peak_flops, memory_bandwidth (B/s), host_memory (its socket's DRAM host),\n"
      "  socket, switch.\n"
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
  zone_open(f, &bad, g);
  out(f, &bad, "    <prop id=\"topology\" value=\"pcie-tree\"/>\n");
  const char *speed = num(n1, g->gpu_speed), *mem = num(n2, g->gpu_memory),
             *peak = num(n3, g->gpu_peak_flops), *hmem = num(n4, g->host_memory),
             *mbw = num(n5, g->gpu_memory_bw);
  char curve[64];
  curve_prop(g, curve, sizeof curve);
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
          "    </host>\n",
          n, k, speed, mem, peak, mbw, curve, n, so, so, sw);
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
