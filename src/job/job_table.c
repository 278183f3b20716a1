/*
** job_table.c: reading a schedule table (ts_table_load, ts_table_free),
** the file a job's "table" field names and schedule "table" runs (README
** "Schedules from a file").
**
** JSON: an object {"description": ..., "source": ..., "stages": [...]}
** whose "stages" holds one array per pipeline stage, that stage's ops in
** order.  An op is an object {"kind": "forward", "mb": 3, "chunk": 0}
** (chunk optional, default 0) or the short string "F3" (kind letter F
** forward, B backward, R recompute, I backward_input, W weight_grad, then
** the micro-batch, then optionally ".CHUNK": "F3.1").
**
** CSV: a header line "stage,kind,mb" or "stage,kind,mb,chunk", then one op
** a line (kind: a name or a letter as above), each stage's ops in order;
** blank lines and lines starting with '#' are skipped.
**
** Only the form is checked here; what depends on the job (stage count,
** micro-batch and chunk ranges, every op listed once) is the schedule's
** check (schedules/table.c).
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"

static const char *const table_fields[] = {"description", "source", "stages", NULL};
static const char *const op_fields[] = {"kind", "mb", "chunk", NULL};
static const char letters[] = "FBRIW"; /* TS_FORWARD .. TS_WEIGHT_GRAD */

#define KINDS_EXPECTED "forward, backward, recompute, backward_input or weight_grad"

/* The compute kind named s (a name or, with letter_ok, a letter); -1 if none. */
static int kind_of(const char *s, bool letter_ok) {
  for (int k = 0; k < TS_COMPUTE_KINDS; k++)
    if (!strcmp(s, ts_kind_name((ts_kind_t)k)) || (letter_ok && s[0] == letters[k] && !s[1]))
      return k;
  return -1;
}

/* A non-negative integer of at most 1e8 in s (the whole of it), or -1. */
static int count_of(const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (s[0] < '0' || s[0] > '9' || *end || errno || v > 100000000L) return -1;
  return (int)v;
}

/* One op in its short form "F3" or "F3.1". */
static int short_op(const char *s, ts_table_op_t *op, const char *file, const char *where,
                    ts_err_t *err) {
  const char *l = s[0] ? strchr(letters, s[0]) : NULL;
  char num[32];
  snprintf(num, sizeof num, "%s", s[0] ? s + 1 : s);
  char *dot = strchr(num, '.');
  if (dot) *dot = 0;
  op->mb = count_of(num);
  op->chunk = dot ? count_of(dot + 1) : 0;
  if (!l || op->mb < 0 || op->chunk < 0)
    return ts_err_set(err, EX_DATAERR,
                      "%s: %s: expected an op such as \"F3\" (kind letter F, B, R, I or W, "
                      "micro-batch, optional .chunk) or an object, got '%s'",
                      file, where, s);
  op->kind = (ts_kind_t)(l - letters);
  return 0;
}

/* One op of the JSON form, at stages[s][k]. */
static int json_op(const cJSON *it, int s, int k, ts_table_op_t *op, const char *file,
                   ts_err_t *err) {
  char where[64];
  snprintf(where, sizeof where, "stages[%d][%d]", s, k);
  if (cJSON_IsString(it)) return short_op(it->valuestring, op, file, where, err);
  if (!cJSON_IsObject(it))
    return ts_err_set(err, EX_DATAERR, "%s: %s: expected an op (\"F3\" or an object)", file,
                      where);
  char prefix[72];
  snprintf(prefix, sizeof prefix, "%s.", where);
  vctx_t c = {file, prefix, err};
  const char *kind = NULL;
  int rc;
  if ((rc = ts__check_fields(it, op_fields, &c)) ||
      (rc = ts__get_string(it, "kind", NULL, &kind, &c)) ||
      (rc = ts__get_int(it, "mb", -1, 0, &op->mb, &c)) ||
      (rc = ts__get_int(it, "chunk", 0, 0, &op->chunk, &c)))
    return rc;
  int kd = kind_of(kind, false);
  if (kd < 0)
    return ts_err_set(err, EX_DATAERR, "%s: %s.kind: unknown kind '%s' (expected " KINDS_EXPECTED ")",
                      file, where, kind);
  op->kind = (ts_kind_t)kd;
  return 0;
}

static ts_table_t *table_new(const char *path, int n_stages) {
  ts_table_t *t = ts__xcalloc(1, sizeof *t);
  snprintf(t->path, sizeof t->path, "%s", path);
  t->n_stages = n_stages;
  t->n_ops = ts__xcalloc((size_t)n_stages, sizeof *t->n_ops);
  t->ops = ts__xcalloc((size_t)n_stages, sizeof *t->ops);
  return t;
}

static int load_json(const char *path, const char *text, size_t len, ts_table_t **out,
                     ts_err_t *err) {
  cJSON *root = NULL;
  int rc;
  if ((rc = ts__parse_json(text, len, path, &root, err))) return rc;
  vctx_t c = {path, "", err};
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stages");
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
  if ((rc = ts__check_fields(root, table_fields, &c))) goto done;
  if (desc && !cJSON_IsString(desc)) {
    rc = ts_err_set(err, EX_DATAERR, "%s: description: expected a string", path);
    goto done;
  }
  if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) == 0) {
    rc = ts_err_set(err, EX_DATAERR, "%s: stages: %s", path,
                    st ? "expected a non-empty array of one op list per stage" : "missing field");
    goto done;
  }
  ts_table_t *t = *out = table_new(path, cJSON_GetArraySize(st));
  int s = 0;
  for (const cJSON *ops = st->child; ops; ops = ops->next, s++) {
    if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) == 0) {
      rc = ts_err_set(err, EX_DATAERR, "%s: stages[%d]: expected a non-empty array of ops", path, s);
      goto done;
    }
    t->n_ops[s] = cJSON_GetArraySize(ops);
    t->ops[s] = ts__xcalloc((size_t)t->n_ops[s], sizeof **t->ops);
    int k = 0;
    for (const cJSON *it = ops->child; it; it = it->next, k++)
      if ((rc = json_op(it, s, k, &t->ops[s][k], path, err))) goto done;
  }
done:
  cJSON_Delete(root);
  return rc;
}

/* Appends op to stage s of t, growing it (stages up to s appear). */
static void push_op(ts_table_t *t, int s, const ts_table_op_t *op) {
  if (s >= t->n_stages) {
    t->n_ops = ts__xrealloc(t->n_ops, (size_t)(s + 1) * sizeof *t->n_ops);
    t->ops = ts__xrealloc(t->ops, (size_t)(s + 1) * sizeof *t->ops);
    for (int i = t->n_stages; i <= s; i++) t->n_ops[i] = 0, t->ops[i] = NULL;
    t->n_stages = s + 1;
  }
  t->ops[s] = ts__xrealloc(t->ops[s], (size_t)(t->n_ops[s] + 1) * sizeof *t->ops[s]);
  t->ops[s][t->n_ops[s]++] = *op;
}

static int load_csv(const char *path, char *text, ts_table_t **out, ts_err_t *err) {
  ts_table_t *t = *out = table_new(path, 0);
  int line = 0, cols = 0;
  for (char *cur = text, *l; (l = strsep(&cur, "\n"));) {
    line++;
    l[strcspn(l, "\r")] = 0;
    if (!l[0] || l[0] == '#') continue;
    char *f[5] = {0};
    int n = 0;
    for (char *p = l; n < 5 && (f[n] = strsep(&p, ",")); n++) f[n] += strspn(f[n], " \t");
    if (!cols) {
      cols = n;
      if ((n != 3 && n != 4) || strcmp(f[0], "stage") || strcmp(f[1], "kind") || strcmp(f[2], "mb") ||
          (n == 4 && strcmp(f[3], "chunk")))
        return ts_err_set(err, EX_DATAERR, "%s:%d: expected the header \"stage,kind,mb\" or "
                          "\"stage,kind,mb,chunk\"", path, line);
      continue;
    }
    if (n != cols)
      return ts_err_set(err, EX_DATAERR, "%s:%d: expected %d fields, got %d", path, line, cols, n);
    ts_table_op_t op = {0};
    int s = count_of(f[0]), kd = kind_of(f[1], true);
    op.mb = count_of(f[2]);
    op.chunk = cols == 4 ? count_of(f[3]) : 0;
    if (s < 0 || s > 1 << 16)
      return ts_err_set(err, EX_DATAERR, "%s:%d: stage: expected a stage index, got '%s'", path, line, f[0]);
    if (kd < 0)
      return ts_err_set(err, EX_DATAERR, "%s:%d: kind: unknown kind '%s' (expected " KINDS_EXPECTED
                        " or a letter F, B, R, I, W)", path, line, f[1]);
    if (op.mb < 0)
      return ts_err_set(err, EX_DATAERR, "%s:%d: mb: expected a micro-batch number, got '%s'", path, line, f[2]);
    if (op.chunk < 0)
      return ts_err_set(err, EX_DATAERR, "%s:%d: chunk: expected a chunk number, got '%s'", path, line, f[3]);
    op.kind = (ts_kind_t)kd;
    push_op(t, s, &op);
  }
  if (!t->n_stages) return ts_err_set(err, EX_DATAERR, "%s: no ops", path);
  for (int s = 0; s < t->n_stages; s++)
    if (!t->n_ops[s]) return ts_err_set(err, EX_DATAERR, "%s: stage %d: no ops (stage missing)", path, s);
  return 0;
}

int ts_table_load(const char *path, ts_table_t **out, ts_err_t *err) {
  *out = NULL;
  size_t len = 0;
  char *text = ts__read_file(path, &len);
  if (!text)
    return ts_err_set(err, EX_NOINPUT, "%s: cannot read table file: %s", path, ts__read_error(errno));
  size_t n = strlen(path);
  int rc = n > 4 && !strcmp(path + n - 4, ".csv") ? load_csv(path, text, out, err)
                                                  : load_json(path, text, len, out, err);
  free(text);
  if (rc) {
    ts_table_free(*out);
    *out = NULL;
  }
  return rc;
}

void ts_table_free(ts_table_t *t) {
  if (!t) return;
  for (int s = 0; s < t->n_stages; s++) free(t->ops[s]);
  free(t->ops);
  free(t->n_ops);
  free(t);
}
