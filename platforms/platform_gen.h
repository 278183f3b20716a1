/*
** platform_gen.h: generator of SimGrid platform files (DTD 4.1) for a
** cluster of N nodes x G GPUs: one host per GPU, NVLink/NVSwitch domains
** (or PCIe inside a node) and, between nodes, one NIC per GPU on a two- or
** three-tier fat tree (leaf, spine, core) with an oversubscription ratio
** per tier, rail-optimised or not; or the PCIe tree of commodity servers.
**
** Names the rest of trainsim relies on (topology 0, "fat-tree"):
**   hosts   node<N>-gpu<G>, declared node by node, GPU by GPU, with the
**           properties memory_bytes, peak_flops, memory_bandwidth, node
**           (N) and nvlink_domain (the index of its NVLink domain);
**   links   all SPLITDUPLEX, none FATPIPE:
**           nvlink-node<N>-gpu<G> (pcie-node<N>-gpu<G> when pcie_only) the
**             GPU's port on its domain's NVSwitch;
**           pcie-node<N>-nic<G> the PCIe path between GPU G and its NIC;
**           ib-node<N>-gpu<G> the NIC's port on its leaf switch;
**           leaf<L>-spine the aggregated uplinks of leaf L (a trunk);
**           spine<P>-core the aggregated uplinks of pod P's spines (3 tiers);
**           the NIC and switch links exist only when nodes > 1;
**   routes  same NVLink domain: nvlink(a) UP, nvlink(b) DOWN;
**           same leaf: pcie-nic(a) UP, ib(a) UP, ib(b) DOWN, pcie-nic(b) DOWN;
**           else the same plus leaf(a)-spine UP [spine(a)-core UP,
**           spine(b)-core DOWN] leaf(b)-spine DOWN.
** platforms/platform_topo.c explains the model, the routes and the choices.
**
** The pcie-tree topology (commodity servers; presets commodity-8gpu,
** commodity-2node, h200-pcie-8gpu) adds:
**   hosts   node<N>-dram<S>, the DRAM of CPU socket S (memory_bytes); every
**           GPU host has the property host_memory naming its socket's DRAM
**           host and socket, switch (its PCIe switch index in the node),
**           node and nvlink_domain (= node: its GPUs meet over PCIe);
**   links   pcie-node<N>-gpu<G> (GPU to switch), uplink-node<N>-sw<K>
**           (switch to root complex), dram-node<N>-cpu<S>, upi-node<N>
**           (between the two sockets), eth-node<N> (the node's NIC), all
**           SPLITDUPLEX, and eth-fabric (FATPIPE: a non-blocking Ethernet
**           switch, kept as it was);
**   routes  the unique path of the tree: GPU, switch, CPU(s), then DRAM,
**           another switch's GPU, or the NIC.
*/
#ifndef TS_PLATFORM_GEN_H
#define TS_PLATFORM_GEN_H

#include <stdio.h>

#include "trainsim.h"

typedef struct ts_platgen {
  char name[64];         /* platform id, used in comments */
  int nodes, gpus;       /* N nodes x G GPUs per node */
  double gpu_speed;      /* sustained FLOP/s (SimGrid host speed) */
  double gpu_peak_flops; /* datasheet peak FLOP/s (host property peak_flops) */
  double gpu_memory;     /* bytes (host property memory_bytes) */
  double gpu_memory_bw;  /* B/s, datasheet memory bandwidth (host property
                         ** memory_bandwidth: the optimizer step's rate) */
  char gpu_curve[16];    /* host property gemm_curve: the GEMM efficiency
                         ** curve ("a100", "h100", "h200"; "": none, then
                         ** compute takes flops / speed) */
  double nvlink_bw, nvlink_lat;   /* per GPU, per direction, B/s and s */
  double ib_bw, ib_lat;           /* per GPU NIC (its leaf port), B/s and s */
  double fabric_lat;              /* s, each switch-to-switch trunk link (pcie-tree: eth-fabric) */
  double fabric_bw;               /* pcie-tree only: eth-fabric's B/s (0 in a fat tree) */
  /* topology 0, "fat-tree" (platform_topo.c): */
  int nvlink_domain;     /* GPUs per NVLink domain, a multiple of gpus (0: gpus) */
  int tiers;             /* 2 (leaf, spine) or 3 (leaf, spine, core) */
  int rails;             /* 1: rail-optimised (GPU k of every node of a scalable
                         ** unit on that unit's leaf k); 0: a node's NICs on one leaf */
  int leaf_ports;        /* NIC-facing (down) ports per leaf switch */
  int su_nodes;          /* nodes per scalable unit; 3 tiers: one pod per unit */
  double oversub_leaf;   /* leaf tier, down:up bandwidth (1: non-blocking) */
  double oversub_spine;  /* spine tier (3 tiers), down:up */
  double nic_pcie_bw, nic_pcie_lat; /* GPU-NIC PCIe path, B/s and s (lat >= 0) */
  int pcie_only;         /* 1: GPUs talk over PCIe (no NVLink), nvlink_* are the PCIe figures */
  /* topology 1, "pcie-tree" (commodity servers, Mobius): per node, sockets
  ** CPUs (1 or 2) joined by socket_* (UPI/QPI), each with a DRAM host
  ** (dram_*, host_memory bytes) and gpus / gpus_per_switch / sockets PCIe
  ** switches whose uplinks (uplink_*) reach that CPU's root complex; a GPU
  ** hangs off its switch by nvlink_* (its PCIe link); nodes meet over one
  ** Ethernet NIC per node (ib_*) and a switch (fabric_*).  pcie_only is
  ** implied. */
  int topology;          /* 0: NVSwitch/PCIe star (above), 1: pcie-tree */
  int sockets, gpus_per_switch;
  double uplink_bw, uplink_lat, socket_bw, socket_lat, dram_bw, dram_lat, host_memory;
} ts_platgen_t;

/* The presets, in a fixed order, NULL-terminated. */
extern const char *const ts_platgen_preset_names[];

/* Fills g with a named preset ("dgx-a100-2node", "hgx-h200", ...);
** returns 0, or EX_USAGE with a one-line message naming the nearest preset
** ("did you mean") and listing the known ones (g is then untouched). */
int ts_platgen_preset(const char *name, ts_platgen_t *g, ts_err_t *err);

/* Sets g->gpu_speed from a calibration JSON such as
** shared/calibration/h200-single-gpu.json: over the entries of "layers"
** whose "h" >= 8192, the mean of 3 x fwd_flops / fwd_bwd_s, where
** fwd_flops = approx_fwd_tflops x 1e12 x fwd_s (forward + backward =
** 3 forward FLOPs).  Returns 0; EX_NOINPUT when the file cannot be read;
** EX_DATAERR naming the file and the field (or line) when the content is
** malformed or no layer qualifies.  g is changed only on success. */
int ts_platgen_speed_from_calibration(const char *path, ts_platgen_t *g, ts_err_t *err);

/* The value ts_platgen_speed_from_calibration would set, without a g. */
int ts_platgen_calibrated_speed(const char *path, double *speed, ts_err_t *err);

/* Checks g: a name of letters, digits, '.', '_' and single '-' (it goes in
** XML comments and the zone id), positive counts with nodes x gpus <=
** TS_PLATGEN_MAX_HOSTS, finite positive figures, and a fat tree whose
** numbers fit (GPUs per node <= leaf ports without rails, su_nodes <=
** leaf ports with rails, ratios > 0, NVLink domains of whole nodes inside
** one scalable unit).  Returns 0 or EX_USAGE naming the option
** (--leaf-ports, --oversub-leaf, ...). */
#define TS_PLATGEN_MAX_HOSTS 65536
int ts_platgen_check(const ts_platgen_t *g, ts_err_t *err);

/* Writes the platform XML for g (which should have passed ts_platgen_check)
** to f.  The output depends only on g's fields, byte for byte; numbers are
** printed in their shortest form that reads back as the same double.  The
** file records the trainsim command that regenerates it (the short
** `--preset NAME` form when g equals that preset, else every option).
** Returns 0, or EX_IOERR when a write fails. */
int ts_platgen_write(const ts_platgen_t *g, FILE *f);

/* The command that regenerates the output of ts_platgen_write(g), without
** an output option (the command writes to stdout).  Writes at most size
** bytes including the NUL; returns the length snprintf would. */
int ts_platgen_command(const ts_platgen_t *g, char *buf, size_t size);

/* The fat tree's shape (topology 0), as ts_platgen_write lays it out;
** all for a g that passed ts_platgen_check. */
int ts_platgen_leaves(const ts_platgen_t *g);            /* leaf switches */
int ts_platgen_leaf(const ts_platgen_t *g, int node, int gpu); /* a NIC's leaf */
int ts_platgen_pods(const ts_platgen_t *g);              /* 3 tiers: pods */
int ts_platgen_pod(const ts_platgen_t *g, int leaf);     /* a leaf's pod */
int ts_platgen_domain(const ts_platgen_t *g, int node);  /* a node's NVLink domain */
/* leaf<L>-spine: leaf_ports x ib_bw / oversub_leaf. */
double ts_platgen_leaf_trunk_bw(const ts_platgen_t *g);
/* spine<P>-core: leaves per pod x the leaf trunk / oversub_spine. */
double ts_platgen_spine_trunk_bw(const ts_platgen_t *g);

#endif /* TS_PLATFORM_GEN_H */
