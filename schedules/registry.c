/*
** registry.c: the table of schedules, generated from registry.h.
*/
#include <string.h>

#include "ts_runtime.h"

#define TS_SCHEDULE(sym) extern const ts_schedule_t sym;
#include "registry.h"
#undef TS_SCHEDULE

static const ts_schedule_t *const registry[] = {
#define TS_SCHEDULE(sym) &sym,
#include "registry.h"
#undef TS_SCHEDULE
    NULL};

const ts_schedule_t *ts_schedule_find(const char *name) {
  for (int i = 0; registry[i]; i++)
    if (strcmp(registry[i]->name, name) == 0) return registry[i];
  return NULL;
}

const ts_schedule_t *ts_schedule_at(int i) {
  if (i < 0 || i >= (int)(sizeof registry / sizeof registry[0]) - 1) return NULL;
  return registry[i];
}
