/*
** platform_gen_internal.h: what the two halves of the platform generator
** share: platform_gen.c holds the presets, platform_gen_write.c writes the XML
** and needs a preset's header-comment lines.  Not part of platform_gen.h.
*/
#ifndef TS_PLATFORM_GEN_INTERNAL_H
#define TS_PLATFORM_GEN_INTERNAL_H

#include "platform_gen.h"

/* The header-comment lines (NULL-terminated, static) of the preset g
** equals field by field, or NULL when g is no preset: such a file names
** its preset in its regenerate command and carries the preset's notes. */
const char *const *ts__platgen_about(const ts_platgen_t *g);

#endif /* TS_PLATFORM_GEN_INTERNAL_H */
