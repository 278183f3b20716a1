/*
** platform_gen.h: generator of SimGrid platform files (DTD 4.1) for a
** cluster of N nodes x G GPUs: one host per GPU, an NVLink/NVSwitch (or
** PCIe) port per GPU, one InfiniBand NIC per GPU (rail-optimised) and one
** non-blocking InfiniBand fabric between the nodes.
**
** Names the rest of trainsim relies on:
**   hosts   node<N>-gpu<G>, declared node by node, GPU by GPU, with the
**           properties memory_bytes, peak_flops and memory_bandwidth;
**   links   nvlink-node<N>-gpu<G> (pcie-node<N>-gpu<G> when pcie_only) and
**           ib-node<N>-gpu<G>, both SPLITDUPLEX, and ib-fabric (FATPIPE);
**           the ib links exist only when nodes > 1;
**   routes  same node:  nvlink(a) UP, nvlink(b) DOWN;
**           other node: ib(a) UP, ib-fabric, ib(b) DOWN.
** platforms/platform_gen_write.c explains how the routes are expressed
** and why.
**
** The pcie-tree topology (commodity servers; presets commodity-8gpu,
** commodity-2node, h200-pcie-8gpu) adds:
**   hosts   node<N>-dram<S>, the DRAM of CPU socket S (memory_bytes); every
**           GPU host has the property host_memory naming its socket's DRAM
**           host and socket, switch (its PCIe switch index in the node);
**   links   pcie-node<N>-gpu<G> (GPU to switch), uplink-node<N>-sw<K>
**           (switch to root complex), dram-node<N>-cpu<S>, upi-node<N>
**           (between the two sockets), eth-node<N> (the node's NIC), all
**           SPLITDUPLEX, and eth-fabric (FATPIPE);
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
  double ib_bw, ib_lat;           /* per GPU NIC (rail), B/s and s */
  double fabric_bw, fabric_lat;   /* the InfiniBand switch fabric */
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

/* Fills g with a named preset ("dgx-a100-2node", "hgx-h200", "pcie-4gpu");
** returns 0, or EX_USAGE with a message listing the known presets (g is
** then left untouched).  Presets use a non-blocking fabric:
** fabric_bw = nodes x gpus x ib_bw. */
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
** TS_PLATGEN_MAX_HOSTS, finite positive figures.  Returns 0 or EX_USAGE
** naming the field. */
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

#endif /* TS_PLATFORM_GEN_H */
