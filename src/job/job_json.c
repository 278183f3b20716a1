/*
** job_json.c: reading a job's files and JSON, and the typed field getters.
**
** The job loader's generic layer: the path resolution for
** files a job names (platforms, configs, routing tables), JSON parsing
** with file:line:column errors, a recursive object merge, and getters
** that read one field each with the job's error conventions (a field
** path in every message, unknown fields rejected by check_fields).
** Every parsed file is checked for what JSON requires and cJSON lets
** through: no duplicate keys, strings and keys in UTF-8.
*/
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_internal.h"

/* ---- files ------------------------------------------------------------ */

static bool file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool ts__resolve_path(const char *name, const char *base, const char *subdir, const char *ext,
                      char out[TS_PATH_MAX]) {
  if (name[0] == '/') {
    snprintf(out, TS_PATH_MAX, "%s", name);
    return file_exists(out);
  }
  snprintf(out, TS_PATH_MAX, "%s/%s", base, name);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s", name);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s/%s/%s", TS_SOURCE_DIR, subdir, name);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s/%s/%s%s", TS_SOURCE_DIR, subdir, name, ext);
  if (file_exists(out)) return true;
  snprintf(out, TS_PATH_MAX, "%s", name);
  return false;
}

/* ---- JSON ------------------------------------------------------------- */

/* Line and column (1-based) of offset off in text. */
static void line_col(const char *text, size_t off, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off && text[i]; i++) {
    if (text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* Appends ".key" (or "key" at the top), or "[i]" when key is NULL, to the
** field path at path[0..n); the path is cut, never overrun.  Returns the
** new length. */
static size_t path_push(char *path, size_t n, const char *key, int i) {
  size_t cap = 256;
  if (n >= cap - 1) return n;
  int k = key ? snprintf(path + n, cap - n, "%s%s", n ? "." : "", key)
              : snprintf(path + n, cap - n, "[%d]", i);
  size_t m = n + (k > 0 ? (size_t)k : 0);
  return m < cap - 1 ? m : cap - 1;
}

typedef struct {
  const char *key;
  size_t idx; /* place in the object */
} key_at_t;

static int key_cmp(const void *pa, const void *pb) {
  const key_at_t *a = pa, *b = pb;
  int c = strcmp(a->key, b->key);
  return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* The key of obj whose second occurrence comes first in the file, or
** NULL when no key occurs twice.  Sorted, so that an object of n keys
** costs n log n. */
static const char *duplicate_key(const cJSON *obj) {
  size_t n = 0;
  for (const cJSON *it = obj->child; it; it = it->next) n++;
  if (n < 2) return NULL;
  key_at_t *k = ts__xmalloc(n * sizeof *k);
  size_t i = 0;
  for (const cJSON *it = obj->child; it; it = it->next, i++) k[i] = (key_at_t){it->string, i};
  qsort(k, n, sizeof *k, key_cmp);
  const char *dup = NULL;
  size_t first = n;
  for (i = 1; i < n; i++)
    if (!strcmp(k[i - 1].key, k[i].key) && (i < 2 || strcmp(k[i - 2].key, k[i].key)) &&
        k[i].idx < first)
      dup = k[i].key, first = k[i].idx;
  free(k);
  return dup;
}

/* What JSON itself requires and cJSON lets through, checked on the whole
** tree under v (field path path[0..n)): no key twice in one object (cJSON
** would keep the first silently), keys and strings in UTF-8 (RFC 8259 8.1;
** they reach summary.json, trace.json and gantt.svg).  The error names
** the field path. */
static int check_tree(const cJSON *v, char *path, size_t n, const char *file, ts_err_t *err) {
  if (cJSON_IsString(v) && !ts__utf8_valid(v->valuestring, NULL))
    return ts_err_set(err, EX_DATAERR, "%s: %s: invalid UTF-8 in a string", file, path);
  if (cJSON_IsObject(v)) {
    const char *dup = duplicate_key(v);
    if (dup)
      return ts_err_set(err, EX_DATAERR, "%s: %s%s%s: duplicate key", file, path, n ? "." : "",
                        dup);
  }
  int i = 0;
  for (const cJSON *it = v->child; it; it = it->next, i++) {
    if (cJSON_IsObject(v) && !ts__utf8_valid(it->string, NULL))
      return ts_err_set(err, EX_DATAERR, "%s: %s%s%s: invalid UTF-8 in a key", file, path,
                        n ? "." : "", it->string);
    size_t m = path_push(path, n, cJSON_IsObject(v) ? it->string : NULL, i);
    int rc = check_tree(it, path, m, file, err);
    path[n] = 0;
    if (rc) return rc;
  }
  return 0;
}

int ts__parse_json(const char *text, size_t len, const char *file, cJSON **out, ts_err_t *err) {
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1); /* + the NUL */
  if (!j) {
    size_t off = end ? (size_t)(end - text) : 0;
    const char *ep = cJSON_GetErrorPtr();
    if (ep && ep >= text && ep <= text + len) off = (size_t)(ep - text);
    /* cJSON points one byte past a missing object key ("{... ,}"): step
    ** back onto the offending character. */
    if (off > 0 && off <= len && !isspace((unsigned char)text[off - 1])) {
      size_t k = off - 1;
      while (k > 0 && isspace((unsigned char)text[k - 1])) k--;
      if (k > 0 && (text[k - 1] == ',' || text[k - 1] == '{')) off--;
    }
    int line, col;
    line_col(text, off, &line, &col);
    return ts_err_set(err, EX_DATAERR, "%s:%d:%d: malformed JSON", file, line, col);
  }
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return ts_err_set(err, EX_DATAERR, "%s: expected a JSON object at the top level", file);
  }
  char path[256] = "";
  int rc = check_tree(j, path, 0, file, err);
  if (rc) {
    cJSON_Delete(j);
    return rc;
  }
  *out = j;
  return 0;
}

void ts__merge_json(cJSON *dst, const cJSON *src) {
  for (const cJSON *it = src->child; it; it = it->next) {
    cJSON *d = cJSON_GetObjectItemCaseSensitive(dst, it->string);
    if (d && cJSON_IsObject(d) && cJSON_IsObject(it))
      ts__merge_json(d, it);
    else if (d)
      cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, cJSON_Duplicate(it, 1));
    else
      cJSON_AddItemToObject(dst, it->string, cJSON_Duplicate(it, 1));
  }
}

/* ---- typed getters ---------------------------------------------------- */

bool ts__in_list(const char *const *list, const char *s) {
  for (; *list; list++)
    if (strcmp(*list, s) == 0) return true;
  return false;
}

int ts__check_fields(const cJSON *obj, const char *const *allowed, vctx_t *c) {
  for (const cJSON *it = obj->child; it; it = it->next)
    if (!ts__in_list(allowed, it->string)) {
      const char *near = ts__suggest(it->string, allowed);
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: unknown field%s%s%s", c->file, c->prefix,
                        it->string, near ? "; did you mean '" : "", near ? near : "",
                        near ? "'?" : "");
    }
  return 0;
}

int ts__get_int(const cJSON *obj, const char *key, int dflt, int min, int *out, vctx_t *c) {
  *out = dflt;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    if (dflt < 0)
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: missing field", c->file, c->prefix, key);
    return 0;
  }
  if (!cJSON_IsNumber(v))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected an integer", c->file, c->prefix, key);
  double d = v->valuedouble;
  if (!isfinite(d))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: not a finite number", c->file, c->prefix, key);
  if (d != floor(d))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected an integer, got %g", c->file,
                      c->prefix, key, d);
  if (d < min || d > 1e8)
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: must be %s %d%s, got %g", c->file, c->prefix,
                      key, d < min ? "at least" : "at most", d < min ? min : 100000000,
                      "", d);
  *out = (int)d;
  return 0;
}

int ts__get_bool(const cJSON *obj, const char *key, bool dflt, bool *out, vctx_t *c) {
  *out = dflt;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) return 0;
  if (!cJSON_IsBool(v))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected true or false", c->file, c->prefix,
                      key);
  *out = cJSON_IsTrue(v);
  return 0;
}

int ts__get_string(const cJSON *obj, const char *key, const char *dflt, const char **out,
                   vctx_t *c) {
  *out = dflt;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v) {
    if (!dflt)
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: missing field", c->file, c->prefix, key);
    return 0;
  }
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: expected a non-empty string", c->file,
                      c->prefix, key);
  /* A --set value has not been through check_tree; and a control
  ** character would break the XML of gantt.svg and the one-line errors. */
  if (!ts__utf8_valid(v->valuestring, NULL))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: invalid UTF-8 in a string", c->file,
                      c->prefix, key);
  if (ts__has_control(v->valuestring))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: control character in a string", c->file,
                      c->prefix, key);
  *out = v->valuestring;
  return 0;
}

int ts__check_number(const cJSON *v, const char *key, int idx, double min, bool strict,
                     double *out, vctx_t *c) {
  char where[160];
  if (idx >= 0)
    snprintf(where, sizeof where, "%s%s[%d]", c->prefix, key, idx);
  else
    snprintf(where, sizeof where, "%s%s", c->prefix, key);
  if (!cJSON_IsNumber(v))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s: expected a number", c->file, where);
  double d = v->valuedouble;
  if (!isfinite(d))
    return ts_err_set(c->err, EX_DATAERR, "%s: %s: not a finite number", c->file, where);
  if (strict ? d <= min : d < min)
    return ts_err_set(c->err, EX_DATAERR, "%s: %s: must be %s %g, got %g", c->file, where,
                      strict ? "greater than" : "at least", min, d);
  *out = d;
  return 0;
}

int ts__get_per_stage(const cJSON *obj, const char *key, int n, const double *dflt, double scale,
                      double **out, vctx_t *c) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  double *a = ts__xcalloc((size_t)n, sizeof *a);
  *out = a;
  if (!v) {
    if (!dflt)
      return ts_err_set(c->err, EX_DATAERR, "%s: %s%s: missing field", c->file, c->prefix, key);
    for (int i = 0; i < n; i++) a[i] = dflt[i] * scale;
    return 0;
  }
  if (cJSON_IsArray(v)) {
    int len = cJSON_GetArraySize(v);
    if (len != n)
      return ts_err_set(c->err, EX_DATAERR,
                        "%s: %s%s: expected one value per stage (%d), got %d", c->file, c->prefix,
                        key, n, len);
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
      int rc = ts__check_number(it, key, i, 0, false, &a[i], c);
      if (rc) return rc;
    }
    return 0;
  }
  double d = 0;
  int rc = ts__check_number(v, key, -1, 0, false, &d, c);
  if (rc) return rc;
  for (int i = 0; i < n; i++) a[i] = d;
  return 0;
}
