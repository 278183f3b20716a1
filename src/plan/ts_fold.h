/*
** ts_fold.h: symmetry folding of a plan (README "Symmetry folding").
**
** Devices that differ only in their tensor-parallel rank and data-parallel
** replica run the same program on the same amounts of data: a class is
** the devices of one (ep, pp) coordinate, and its representative is the
** member with tp = 0 and dp = 0 (the class's lowest device number, in any
** rank order).  Shifting the tp and dp coordinates cyclically maps the
** plan onto itself (ring neighbours to ring neighbours, pipeline
** neighbours to pipeline neighbours), so a simulator may run only the
** representatives and read every other device's results off its own.
** Whether the platform has the same symmetry is the executor's to check.
**
** The class map (int [n_devices], each device's representative; a
** representative maps to itself) is what ts_run_t.fold carries.
*/
#ifndef TS_FOLD_H
#define TS_FOLD_H

#include "trainsim.h"

/* The class map of plan p (malloc'd, [n_devices]), or NULL when every
** class has one member (tp and dp degrees 1). */
int *ts_fold_classes(const ts_plan_t *p);
/* The shift that takes device q to its representative, applied to device
** s: s's tp and dp coordinates minus q's (mod the degrees). */
int ts_fold_image(const ts_plan_t *p, int q, int s);
/* The inverse shift: s's tp and dp coordinates plus q's. */
int ts_fold_unimage(const ts_plan_t *p, int q, int s);
/* Virtual stage v (on device s) as held by device t of the same pipeline
** position: plan vstage k R + r is on pipeline r (ts_plan.c), so the
** result is k R + (t's pipeline). */
int ts_fold_vstage(const ts_plan_t *p, int v, int t);

/* Metrics of a folded device (src/metrics/metrics_fold.c): dst becomes a
** deep copy of its representative's src (dst's arrays newly allocated). */
void ts__metrics_fold_copy(ts_device_metrics_t *dst, const ts_device_metrics_t *src);

#endif
