/*
** platform_gen_internal.h: what the two halves of the platform generator
** share: platform_gen.c holds the presets, platform_gen_write.c writes the
** command line, the shared XML parts and the PCIe tree, platform_topo.c the
** fat tree.  Not part of platform_gen.h.
*/
#ifndef TS_PLATFORM_GEN_INTERNAL_H
#define TS_PLATFORM_GEN_INTERNAL_H

#include "platform_gen.h"

#include <stdio.h>

/* The preset whose figures g has (its name and node count aside; the
** preset of g's own name first), or NULL: such a file names that preset in
** its regenerate command and carries the preset's notes. */
const ts_platgen_t *ts__platgen_base(const ts_platgen_t *g);

/* The header-comment lines (NULL-terminated, static) of that preset, or
** NULL. */
const char *const *ts__platgen_about(const ts_platgen_t *g);

/* x as an exact integer when it is one below 2^53, else in the shortest
** %.<p>g form that strtod reads back as x; returns buf. */
const char *ts__platgen_num(char buf[40], double x);

/* fprintf that remembers a failure in *bad. */
void ts__platgen_out(FILE *f, int *bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The header comment's figures (the preset's lines, or a note), and the
** zone's opening with its properties regenerate, nodes, gpus_per_node. */
void ts__platgen_about_lines(FILE *f, int *bad, const ts_platgen_t *g);
void ts__platgen_zone_open(FILE *f, int *bad, const ts_platgen_t *g);

/* The host's gemm_curve property line into buf, or "" when g names none. */
void ts__platgen_curve_prop(const ts_platgen_t *g, char *buf, size_t size);

/* The fat tree's XML (topology 0): 0 or EX_IOERR. */
int ts__platgen_write_fat_tree(const ts_platgen_t *g, FILE *f);

#endif /* TS_PLATFORM_GEN_INTERNAL_H */
