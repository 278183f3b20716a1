/*
** ts_out_coll.c: how the writers name the data-parallel stream events
** (README "Data parallelism" and the format sections): a collective's
** group kind, its label ("all-reduce grads b3"), and whether a run holds
** any collective, optimizer or comm-wait event (the writers add their
** extra columns, tracks and lanes only then, so runs without them are
** written byte for byte as before).
*/
#include <stdio.h>

#include "ts_out.h"

const char *ts__group_kind_name(int g) {
  static const char *const names[TS_GROUP_KINDS] = {"tp", "ep", "dp", "pp", "replica"};
  return g >= 0 && g < TS_GROUP_KINDS ? names[g] : "other";
}

bool ts__run_has_stream(const ts_run_t *run) {
  for (int i = 0; run && i < run->n_events; i++)
    if (ts_kind_is_stream((ts_kind_t)run->events[i].kind)) return true;
  return false;
}

/* Whether e's mb is a bucket index: gradient and parameter collectives
** outside zero 3 (zero 3's gradient reduce-scatters are per micro-batch). */
static bool mb_is_bucket(const ts_result_t *r, const ts_event_t *e) {
  ts_coll_purpose_t p = TS_EV_COLL_PURPOSE(e->coll);
  if (p == TS_CP_PARAMS) return true;
  return p == TS_CP_GRADS && !(r && r->job && r->job->zero == 3);
}

int ts__coll_label(char *buf, size_t n, const ts_result_t *r, const ts_event_t *e) {
  const char *op = ts_coll_op_name(TS_EV_COLL_OP(e->coll));
  const char *purpose = ts_coll_purpose_name(TS_EV_COLL_PURPOSE(e->coll));
  if (e->mb < 0) return snprintf(buf, n, "%s %s", op, purpose);
  if (mb_is_bucket(r, e)) return snprintf(buf, n, "%s %s b%d", op, purpose, e->mb);
  return snprintf(buf, n, "%s %s %d", op, purpose, e->mb + 1);
}
