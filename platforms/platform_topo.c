/*
** platform_topo.c: the fat-tree topology of generated SimGrid platforms
** (topology 0): NVLink/NVSwitch domains inside, one NIC per GPU on a two-
** or three-tier fat tree between nodes.  The shared parts of the file (the
** header's figures, the zone's opening) are in platform_gen_write.c.
**
** What is modelled.  One SimGrid host per GPU (speed = sustained FLOP/s;
** properties memory_bytes, peak_flops, memory_bandwidth, node and
** nvlink_domain).  Every link is SPLITDUPLEX (each direction its own
** capacity); none is FATPIPE, so flows that cross the same hardware share
** it by SimGrid's max-min model.
**   nvlink-node<N>-gpu<G>   the GPU's port on its NVLink domain's NVSwitch
**                           (pcie-node<N>-gpu<G>: its PCIe link, pcie_only);
**                           the switch itself is taken as non-blocking.  A
**                           domain is nvlink_domain / gpus whole nodes: one
**                           DGX/HGX node of 8, or a GB200 NVL72 rack of 18
**                           trays of 4.
**   pcie-node<N>-nic<G>     the PCIe path between GPU G and its NIC
**                           (GPUDirect RDMA crosses it);
**   ib-node<N>-gpu<G>       the NIC's port on its leaf switch;
**   leaf<L>-spine           leaf L's uplinks to the spine tier, aggregated
**                           into one trunk: leaf_ports x ib_bw / oversub_leaf;
**   spine<P>-core           (3 tiers) pod P's spine uplinks to the core:
**                           leaves per pod x the leaf trunk / oversub_spine.
** Leaves.  Rail-optimised (rails = 1): node n belongs to scalable unit
** n / su_nodes, and NIC k of each of its nodes sits on the unit's leaf k
** (leaf = unit x gpus + k), as in NVIDIA's DGX SuperPOD; a pod (3 tiers)
** is one unit's gpus leaves.  Without rails a node's NICs share one leaf
** of leaf_ports / gpus nodes, and a pod holds su_nodes nodes.
**
** Why trunks.  A fat tree has many equal shortest paths between leaves
** (one per spine); SimGrid routes are single-path, so a Dijkstra zone over
** the real switches would pick one deterministically and send every flow
** between two leaves through one spine: false contention.  Aggregating a
** switch's parallel uplinks of one tier into one link models ideal ECMP
** (load spread perfectly over the parallel links; one flow is still limited
** by its NIC) and makes the switch graph a tree with unique paths.  What it
** cannot show: hash collisions of real ECMP, and a single flow faster than
** one port.  SimGrid's own <cluster topology="FAT_TREE"> was considered and
** rejected: its leaves are hosts with one private link each (no NVLink
** domain, no second port per GPU), its links are named by SimGrid (no
** class glob such as leaf*), and its oversubscription comes only from
** port counts per level.
**
** Routes.  The zone is one DijkstraCache zone; every declared route is one
** way and holds one link (SimGrid 3.32's Dijkstra prepends a multi-link
** edge's links one by one, reversing them):
**   gpu -> nvswitch: nvlink UP          nvswitch -> gpu: nvlink DOWN
**   gpu -> node<N>-nic<G>: pcie UP      nic -> gpu: pcie DOWN
**   nic -> leaf: ib UP                  leaf -> nic: ib DOWN
**   leaf -> spine[<P>]: trunk UP        spine -> leaf: trunk DOWN
**   spine<P> -> core: trunk UP          core -> spine<P>: trunk DOWN
** Dijkstra weighs an edge by its links, so a path inside an NVLink domain
** (2 links) beats any through a leaf (4 or more); the route is:
**   same domain: nvlink(a) UP, nvlink(b) DOWN
**   same leaf:   pcie(a) UP, ib(a) UP, ib(b) DOWN, pcie(b) DOWN
**   same pod:    ... ib(a) UP, leaf(a)-spine UP, leaf(b)-spine DOWN, ib(b) ...
**   other pod:   ... leaf(a)-spine UP, spine(a)-core UP, spine(b)-core DOWN,
**                leaf(b)-spine DOWN ...
** SimGrid's Dijkstra may pass through a host, so a path that hops over
** NVLink to a GPU of the source's (or the destination's) domain whose NIC
** sits on the other end's leaf (NCCL's PXN) has as many links as the
** spine path and ties with it (it is never shorter: a domain lies inside
** one pod, ts_platgen_check).  SimGrid settles equal-cost vertices in the
** order they first appear in the declared routes and keeps the first
** predecessor found, so the routes are declared switches first (core,
** spines, leaves), then NICs, then GPUs and NVSwitches last: the direct
** path through the switches wins every tie (measured, tests/test_topology.c
** checks such pairs).  The PCIe link keeps a same-leaf pair of one domain
** (a node without rails, an NVL72 rack) at 4 links, behind NVLink's 2.
**
** Sizes (development machine, 2 cores shared with other jobs, load average
** 14-16, SimGrid 3.32, CM02; load = simgrid_load_platform; first route =
** sg_host_get_route from a source not asked before, which runs one
** Dijkstra; cached: later routes from that source):
**   shape                          hosts   file    load    first route  cached
**   dgx-a100-superpod --nodes 128   1024  1.5 MB  0.15-0.22 s   3 ms     3 us
**   dgx-a100-superpod --nodes 384   3072  4.5 MB  0.41-0.75 s  14-21 ms  6 us
**   gb200-nvl72 --nodes 768         3072  4.4 MB  0.43-0.65 s   17 ms    5 us
** The former star platform (one FATPIPE fabric) took 1.4 ms and 5.4 ms for
** a first route at 1024 and 3072 hosts on the same machine at the same
** time: the fat tree's graph (a router per NIC, the switches) is about
** twice as large.  Generating 3,072 GPUs takes about 0.2 s.
** tests/test_topology.c re-measures the three loads (limit 2 s each).
*/
#include "platform_gen.h"
#include "platform_gen_internal.h"

#include <string.h>
#include <sysexits.h>

#define num ts__platgen_num
#define out ts__platgen_out

/* ---- the shape ------------------------------------------------------- */

static int domain_gpus(const ts_platgen_t *g) { return g->nvlink_domain ? g->nvlink_domain : g->gpus; }
static int domain_nodes(const ts_platgen_t *g) { return domain_gpus(g) / g->gpus; }
static int nodes_per_leaf(const ts_platgen_t *g) { return g->leaf_ports / g->gpus; }
static int div_up(int a, int b) { return (a + b - 1) / b; }

/* Leaves under one pod's spines (3 tiers). */
static int leaves_per_pod(const ts_platgen_t *g) {
  if (g->rails) return g->gpus;
  int n = g->su_nodes / nodes_per_leaf(g);
  return n > 0 ? n : 1;
}

int ts_platgen_domain(const ts_platgen_t *g, int node) { return node / domain_nodes(g); }

int ts_platgen_leaf(const ts_platgen_t *g, int node, int gpu) {
  return g->rails ? (node / g->su_nodes) * g->gpus + gpu : node / nodes_per_leaf(g);
}

int ts_platgen_leaves(const ts_platgen_t *g) {
  return g->rails ? div_up(g->nodes, g->su_nodes) * g->gpus : div_up(g->nodes, nodes_per_leaf(g));
}

int ts_platgen_pods(const ts_platgen_t *g) { return div_up(ts_platgen_leaves(g), leaves_per_pod(g)); }
int ts_platgen_pod(const ts_platgen_t *g, int leaf) { return leaf / leaves_per_pod(g); }

double ts_platgen_leaf_trunk_bw(const ts_platgen_t *g) {
  return g->leaf_ports * g->ib_bw / g->oversub_leaf;
}

double ts_platgen_spine_trunk_bw(const ts_platgen_t *g) {
  return leaves_per_pod(g) * ts_platgen_leaf_trunk_bw(g) / g->oversub_spine;
}

/* ---- writing --------------------------------------------------------- */

/* The router of node n's NVLink domain. */
static void nvswitch_name(const ts_platgen_t *g, int n, char *buf, size_t size) {
  const char *sw = g->pcie_only ? "pcie-switch" : "nvswitch";
  if (domain_nodes(g) == 1)
    snprintf(buf, size, "node%d-%s", n, sw);
  else
    snprintf(buf, size, "domain%d-%s", ts_platgen_domain(g, n), sw);
}

/* The spine router above leaf l. */
static void spine_name(const ts_platgen_t *g, int l, char *buf, size_t size) {
  if (g->tiers == 3)
    snprintf(buf, size, "spine%d", ts_platgen_pod(g, l));
  else
    snprintf(buf, size, "spine");
}

/* One link and its two one-way routes a -> b (UP) and b -> a (DOWN). */
static void route_pair(FILE *f, int *bad, const char *a, const char *b, const char *link) {
  out(f, bad,
      "    <route src=\"%s\" dst=\"%s\" symmetrical=\"NO\"><link_ctn id=\"%s\" direction=\"UP\"/></route>\n"
      "    <route src=\"%s\" dst=\"%s\" symmetrical=\"NO\"><link_ctn id=\"%s\" direction=\"DOWN\"/></route>\n",
      a, b, link, b, a, link);
}

static void link_line(FILE *f, int *bad, const char *id, double bw, double lat) {
  char b[40], l[40];
  out(f, bad, "    <link id=\"%s\" bandwidth=\"%sBps\" latency=\"%ss\" sharing_policy=\"SPLITDUPLEX\"/>\n",
      id, num(b, bw), num(l, lat));
}

static void write_header(FILE *f, int *bad, const ts_platgen_t *g) {
  const char *port = g->pcie_only ? "pcie" : "nvlink";
  out(f, bad, "<?xml version='1.0'?>\n<!--\n");
  out(f, bad, "  trainsim platform %s: %d node%s x %d GPU%s (%d hosts).\n", g->name, g->nodes,
      g->nodes == 1 ? "" : "s", g->gpus, g->gpus == 1 ? "" : "s", g->nodes * g->gpus);
  out(f, bad,
      "  Generated by trainsim (platforms/platform_topo.c); do not edit by hand.\n"
      "  The command that regenerates this file byte for byte is the value\n"
      "  of the property \"regenerate\" of the zone below (it is not repeated\n"
      "  here because an XML comment cannot contain a double hyphen).\n\n");
  ts__platgen_about_lines(f, bad, g);
  out(f, bad,
      "\n"
      "  Hosts node<N>-gpu<G>: speed = sustained FLOP/s; properties\n"
      "  memory_bytes (bytes), peak_flops (FLOP/s), memory_bandwidth (B/s),\n"
      "  node (N) and nvlink_domain (%d GPU%s per domain).\n"
      "  Links, all SPLITDUPLEX (none FATPIPE): %s-node<N>-gpu<G>, the GPU's\n"
      "  %s;\n",
      domain_gpus(g), domain_gpus(g) == 1 ? "" : "s", port,
      g->pcie_only ? "PCIe x16 link" : "NVLink/NVSwitch port");
  if (g->nodes > 1) {
    char lt[40], st[40], r1[40], r2[40];
    out(f, bad,
        "  pcie-node<N>-nic<G>, the GPU-NIC PCIe path; ib-node<N>-gpu<G>, the\n"
        "  NIC's leaf port (%s: %s);\n"
        "  leaf<L>-spine, leaf L's uplinks as one trunk\n"
        "  (%d ports x NIC / %s = %s B/s)%s",
        g->rails ? "rail-optimised" : "no rails",
        g->rails ? "NIC k on its unit's leaf k" : "a node's NICs on one leaf", g->leaf_ports,
        num(r1, g->oversub_leaf), num(lt, ts_platgen_leaf_trunk_bw(g)),
        g->tiers == 3 ? ";\n" : ".\n");
    if (g->tiers == 3)
      out(f, bad, "  spine<P>-core, pod P's spine uplinks as one trunk (%d leaves / %s = %s B/s).\n",
          leaves_per_pod(g), num(r2, g->oversub_spine), num(st, ts_platgen_spine_trunk_bw(g)));
    out(f, bad,
        "  Routes: same NVLink domain: %s(a) UP, %s(b) DOWN; else\n"
        "  pcie-nic(a) UP, ib(a) UP, [leaf(a)-spine UP, %sleaf(b)-spine DOWN,]\n"
        "  ib(b) DOWN, pcie-nic(b) DOWN: the unique shortest path through the\n"
        "  switches of one DijkstraCache zone (ties with NVLink hops lose).\n",
        port, port, g->tiers == 3 ? "[spine(a)-core UP, spine(b)-core DOWN,] " : "");
  } else {
    out(f, bad, "  one node: no NIC or switch links.\n  Routes: %s(a) UP, %s(b) DOWN.\n", port, port);
  }
  out(f, bad,
      "  Transfers take sum(latency) + bytes / min(bandwidth) alone under\n"
      "  network/model:CM02, network/crosstraffic:0 and network/TCP-gamma:0;\n"
      "  flows that share a link share its bandwidth (max-min).\n"
      "-->\n");
}

static void write_hosts(FILE *f, int *bad, const ts_platgen_t *g) {
  char n1[40], n2[40], n3[40], n4[40], curve[64];
  const char *speed = num(n1, g->gpu_speed), *mem = num(n2, g->gpu_memory),
             *peak = num(n3, g->gpu_peak_flops), *mbw = num(n4, g->gpu_memory_bw);
  ts__platgen_curve_prop(g, curve, sizeof curve);
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++)
      out(f, bad,
          "    <host id=\"node%d-gpu%d\" speed=\"%sf\">\n"
          "      <prop id=\"memory_bytes\" value=\"%s\"/>\n"
          "      <prop id=\"peak_flops\" value=\"%s\"/>\n"
          "      <prop id=\"memory_bandwidth\" value=\"%s\"/>\n"
          "%s"
          "      <prop id=\"node\" value=\"%d\"/>\n"
          "      <prop id=\"nvlink_domain\" value=\"%d\"/>\n"
          "    </host>\n",
          n, k, speed, mem, peak, mbw, curve, n, ts_platgen_domain(g, n));
}

/* Routers and links: NVSwitches, then (nodes > 1) NICs and switches. */
static void write_elements(FILE *f, int *bad, const ts_platgen_t *g, int leaves, int pods) {
  char a[64], id[64];
  const char *port = g->pcie_only ? "pcie" : "nvlink";
  for (int n = 0; n < g->nodes; n += domain_nodes(g)) {
    nvswitch_name(g, n, a, sizeof a);
    out(f, bad, "    <router id=\"%s\"/>\n", a);
  }
  if (g->nodes > 1) {
    for (int n = 0; n < g->nodes; n++)
      for (int k = 0; k < g->gpus; k++) out(f, bad, "    <router id=\"node%d-nic%d\"/>\n", n, k);
    for (int l = 0; l < leaves; l++) out(f, bad, "    <router id=\"leaf%d\"/>\n", l);
    if (g->tiers == 3) {
      for (int p = 0; p < pods; p++) out(f, bad, "    <router id=\"spine%d\"/>\n", p);
      out(f, bad, "    <router id=\"core\"/>\n");
    } else {
      out(f, bad, "    <router id=\"spine\"/>\n");
    }
  }
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++) {
      snprintf(id, sizeof id, "%s-node%d-gpu%d", port, n, k);
      link_line(f, bad, id, g->nvlink_bw, g->nvlink_lat);
      if (g->nodes == 1) continue;
      snprintf(id, sizeof id, "pcie-node%d-nic%d", n, k);
      link_line(f, bad, id, g->nic_pcie_bw, g->nic_pcie_lat);
      snprintf(id, sizeof id, "ib-node%d-gpu%d", n, k);
      link_line(f, bad, id, g->ib_bw, g->ib_lat);
    }
  if (g->nodes == 1) return;
  for (int l = 0; l < leaves; l++) {
    snprintf(id, sizeof id, "leaf%d-spine", l);
    link_line(f, bad, id, ts_platgen_leaf_trunk_bw(g), g->fabric_lat);
  }
  for (int p = 0; p < pods && g->tiers == 3; p++) {
    snprintf(id, sizeof id, "spine%d-core", p);
    link_line(f, bad, id, ts_platgen_spine_trunk_bw(g), g->fabric_lat);
  }
}

/* The routes, switches first: the order settles Dijkstra's ties (above). */
static void write_routes(FILE *f, int *bad, const ts_platgen_t *g, int leaves, int pods) {
  char a[64], b[64], id[64];
  const char *port = g->pcie_only ? "pcie" : "nvlink";
  if (g->nodes > 1) {
    for (int p = 0; p < pods && g->tiers == 3; p++) {
      snprintf(a, sizeof a, "spine%d", p);
      snprintf(id, sizeof id, "spine%d-core", p);
      route_pair(f, bad, a, "core", id);
    }
    for (int l = 0; l < leaves; l++) {
      snprintf(a, sizeof a, "leaf%d", l);
      spine_name(g, l, b, sizeof b);
      snprintf(id, sizeof id, "leaf%d-spine", l);
      route_pair(f, bad, a, b, id);
    }
    for (int n = 0; n < g->nodes; n++)
      for (int k = 0; k < g->gpus; k++) {
        snprintf(a, sizeof a, "node%d-nic%d", n, k);
        snprintf(b, sizeof b, "leaf%d", ts_platgen_leaf(g, n, k));
        snprintf(id, sizeof id, "ib-node%d-gpu%d", n, k);
        route_pair(f, bad, a, b, id);
      }
    for (int n = 0; n < g->nodes; n++)
      for (int k = 0; k < g->gpus; k++) {
        snprintf(a, sizeof a, "node%d-gpu%d", n, k);
        snprintf(b, sizeof b, "node%d-nic%d", n, k);
        snprintf(id, sizeof id, "pcie-node%d-nic%d", n, k);
        route_pair(f, bad, a, b, id);
      }
  }
  for (int n = 0; n < g->nodes; n++)
    for (int k = 0; k < g->gpus; k++) {
      snprintf(a, sizeof a, "node%d-gpu%d", n, k);
      nvswitch_name(g, n, b, sizeof b);
      snprintf(id, sizeof id, "%s-node%d-gpu%d", port, n, k);
      route_pair(f, bad, a, b, id);
    }
}

int ts__platgen_write_fat_tree(const ts_platgen_t *g, FILE *f) {
  int bad = 0, leaves = ts_platgen_leaves(g), pods = ts_platgen_pods(g);
  char r[40];
  write_header(f, &bad, g);
  ts__platgen_zone_open(f, &bad, g);
  out(f, &bad, "    <prop id=\"topology\" value=\"fat-tree\"/>\n");
  out(f, &bad, "    <prop id=\"nvlink_domain_gpus\" value=\"%d\"/>\n", domain_gpus(g));
  if (g->nodes > 1) {
    out(f, &bad, "    <prop id=\"tiers\" value=\"%d\"/>\n", g->tiers);
    out(f, &bad, "    <prop id=\"rails\" value=\"%s\"/>\n", g->rails ? "on" : "off");
    out(f, &bad, "    <prop id=\"leaf_ports\" value=\"%d\"/>\n", g->leaf_ports);
    out(f, &bad, "    <prop id=\"oversub_leaf\" value=\"%s\"/>\n", num(r, g->oversub_leaf));
    if (g->tiers == 3)
      out(f, &bad, "    <prop id=\"oversub_spine\" value=\"%s\"/>\n", num(r, g->oversub_spine));
  }
  write_hosts(f, &bad, g);
  write_elements(f, &bad, g, leaves, pods);
  write_routes(f, &bad, g, leaves, pods);
  out(f, &bad, "  </zone>\n</platform>\n");
  if (fflush(f) != 0 || ferror(f)) bad = 1;
  return bad ? EX_IOERR : 0;
}
