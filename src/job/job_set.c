/*
** job_set.c: `--set PATH=VALUE`, the command line's edits of a job.
**
** A --set applies to the parsed job tree before validation: PATH is a
** top-level field, model.FIELD, model.moe.FIELD or model.moe.routing.FIELD
** (unknown names are errors), and VALUE is JSON when the whole of it is
** JSON, else a string.  platform.link.PATTERN.{bandwidth,latency} and
** platform.host.PATTERN.speed are not in the tree: they are kept in
** job->overrides, with their units ("50GBps", "2us", "312Tf") converted
** to SI base units and checked against the bounds of README "Limits",
** for the executor to apply to the platform.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "job_internal.h"
#include "ts_internal.h"

/* The one table of value units (ts_internal.h): --set's platform values
** and the sweep plot's numeric axis read numbers through it. */
bool ts__parse_units(const char *s, char what, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || !isfinite(v)) return false;
  static const struct { const char *suffix; char what; double mul; } U[] = {
      {"", 0, 1},         {"Bps", 'b', 1},     {"kBps", 'b', 1e3},   {"KBps", 'b', 1e3},
      {"MBps", 'b', 1e6}, {"GBps", 'b', 1e9},  {"TBps", 'b', 1e12},  {"bps", 'b', 0.125},
      {"kbps", 'b', 125}, {"Kbps", 'b', 125},  {"Mbps", 'b', 1.25e5}, {"Gbps", 'b', 1.25e8},
      {"Tbps", 'b', 1.25e11}, {"s", 't', 1},   {"ms", 't', 1e-3},    {"us", 't', 1e-6},
      {"ns", 't', 1e-9},  {"f", 'f', 1},       {"kf", 'f', 1e3},     {"Mf", 'f', 1e6},
      {"Gf", 'f', 1e9},   {"Tf", 'f', 1e12},   {"Pf", 'f', 1e15}};
  for (size_t i = 0; i < sizeof U / sizeof U[0]; i++) {
    if (strcmp(end, U[i].suffix) == 0 && (what == 0 || U[i].what == 0 || U[i].what == what)) {
      double x = v * U[i].mul; /* finite before the multiply is not enough: 1e308TBps */
      if (!isfinite(x)) return false;
      *out = x;
      return true;
    }
  }
  return false;
}

/* True when value is a finite number with a valid unit of kind what
** whose product overflows ("1e308TBps"). */
static bool overflows(const char *value, char what) {
  char *end, one[32];
  errno = 0;
  double x = strtod(value, &end);
  if (end == value || errno || !isfinite(x) || strlen(end) >= sizeof one - 1) return false;
  snprintf(one, sizeof one, "1%s", end);
  double u;
  return ts__parse_units(one, what, &u);
}

/* "; did you mean 'X'?" for the name of names nearest to word (ts__suggest)
** in buf (cap bytes), or "" when none is near; returns buf. */
static const char *did_you_mean(const char *word, const char *const *names, char *buf,
                                size_t cap) {
  const char *near = ts__suggest(word, names);
  buf[0] = 0;
  if (near) snprintf(buf, cap, "; did you mean '%s'?", near);
  return buf;
}

/* Appends the override platform.link.PATTERN.FIELD=value or
** platform.host.PATTERN.FIELD=value (path) to job->overrides; the pattern
** may itself contain dots, the field is after the last one. */
static int apply_platform_set(ts_job_t *job, const char *path, const char *value,
                              ts_err_t *err) {
  const char *rest = path + strlen("platform.");
  char what;
  if (strncmp(rest, "link.", 5) == 0)
    what = 'l';
  else if (strncmp(rest, "host.", 5) == 0)
    what = 'h';
  else
    return ts_err_set(err, EX_USAGE,
                      "--set '%s': unknown path (platform paths are platform.link.NAME.bandwidth, "
                      "platform.link.NAME.latency, platform.host.NAME.speed)",
                      path);
  rest += 5;
  const char *dot = strrchr(rest, '.');
  if (!dot || dot == rest)
    return ts_err_set(err, EX_USAGE, "--set '%s': expected platform.%s.NAME.FIELD", path,
                      what == 'l' ? "link" : "host");
  const char *field = dot + 1;
  char unit;
  if (what == 'l' && strcmp(field, "bandwidth") == 0)
    unit = 'b';
  else if (what == 'l' && strcmp(field, "latency") == 0)
    unit = 't';
  else if (what == 'h' && strcmp(field, "speed") == 0)
    unit = 'f';
  else {
    static const char *const link_fields[] = {"bandwidth", "latency", NULL};
    static const char *const host_fields[] = {"speed", NULL};
    char dym[96];
    return ts_err_set(err, EX_USAGE, "--set '%s': unknown %s field '%s'%s", path,
                      what == 'l' ? "link" : "host", field,
                      did_you_mean(field, what == 'l' ? link_fields : host_fields, dym, sizeof dym));
  }
  double v = 0;
  if (!ts__parse_units(value, unit, &v) && overflows(value, unit))
    return ts_err_set(err, EX_USAGE, "--set '%s': value '%s' is not finite after its unit", path,
                      value);
  if (!ts__parse_units(value, unit, &v))
    return ts_err_set(err, EX_USAGE, "--set '%s': bad value '%s' (e.g. %s)", path, value,
                      unit == 'b' ? "50GBps, 200Gbps" : unit == 't' ? "2us, 1e-6" : "312Tf");
  /* The range, after the units (README "Limits"). */
  if (unit == 't' && !(v == 0 || (v >= TS__LATENCY_MIN && v <= TS__SECONDS_MAX)))
    return ts_err_set(err, EX_USAGE,
                      "--set '%s': latency %g s is out of range (0, or 1e-12 s to 1e6 s)", path, v);
  if (unit != 't' && !(v >= TS__RATE_MIN && v <= TS__RATE_MAX))
    return ts_err_set(err, EX_USAGE, "--set '%s': %s %g %s is out of range (1 to 1e30 %s)", path,
                      unit == 'b' ? "bandwidth" : "speed", v, unit == 'b' ? "B/s" : "FLOP/s",
                      unit == 'b' ? "B/s" : "FLOP/s");
  if ((size_t)(dot - rest) >= TS_NAME_MAX)
    return ts_err_set(err, EX_USAGE, "--set '%s': name pattern too long", path);
  job->overrides = ts__xrealloc(job->overrides, (size_t)(job->n_overrides + 1) * sizeof *job->overrides);
  struct ts_override *o = &job->overrides[job->n_overrides++];
  memset(o, 0, sizeof *o);
  o->what = what;
  memcpy(o->pattern, rest, (size_t)(dot - rest));
  snprintf(o->field, sizeof o->field, "%s", field);
  o->value = v;
  return 0;
}

/* The object and key a --set of model.* (path) writes: model.FIELD, or
** model.moe.FIELD and model.moe.routing.FIELD, whose objects are created
** when absent (a synthetic model has no moe). */
static int model_target(cJSON *root, const char *path, cJSON **parent, const char **key,
                        ts_err_t *err) {
  const char *k = path + 6;
  cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!cJSON_IsObject(m))
    return ts_err_set(err, EX_USAGE, "--set '%s': the job's model is not an object", path);
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(m, "kind");
  bool synth = cJSON_IsString(kind) && strcmp(kind->valuestring, "synthetic") == 0;
  if (synth || strncmp(k, "moe.", 4) != 0) {
    const char *const *known = synth ? ts__synthetic_fields : ts__transformer_fields;
    char dym[96];
    if (!ts__in_list(known, k))
      return ts_err_set(err, EX_USAGE, "--set '%s': unknown %s model field '%s'%s", path,
                        synth ? "synthetic" : "transformer", k,
                        did_you_mean(k, known, dym, sizeof dym));
    *parent = m;
    *key = k;
    return 0;
  }
  const char *sub = strncmp(k + 4, "routing.", 8) == 0 ? k + 12 : NULL;
  const char *f = sub ? sub : k + 4;
  if (!ts__in_list(sub ? ts__routing_fields : ts__moe_fields, f) ||
      (!sub && !strcmp(f, "routing"))) {
    char dym[96];
    return ts_err_set(err, EX_USAGE, "--set '%s': unknown %s field '%s'%s", path,
                      sub ? "model.moe.routing" : "model.moe", f,
                      did_you_mean(f, sub ? ts__routing_fields : ts__moe_fields, dym, sizeof dym));
  }
  for (int lvl = 0; lvl < (sub ? 2 : 1); lvl++) {
    const char *name = lvl ? "routing" : "moe";
    cJSON *o = cJSON_GetObjectItemCaseSensitive(m, name);
    if (!o) o = cJSON_AddObjectToObject(m, name);
    if (!cJSON_IsObject(o))
      return ts_err_set(err, EX_USAGE, "--set '%s': %s is not an object", path, name);
    m = o;
  }
  *parent = m;
  *key = f;
  return 0;
}

int ts__apply_set(cJSON *root, ts_job_t *job, const char *arg, ts_err_t *err) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return ts_err_set(err, EX_USAGE, "--set '%s': expected PATH=VALUE", arg);
  char path[512];
  size_t plen = (size_t)(eq - arg);
  if (plen >= sizeof path) return ts_err_set(err, EX_USAGE, "--set: path too long");
  memcpy(path, arg, plen);
  path[plen] = 0;
  const char *value = eq + 1;
  if (strncmp(path, "platform.", 9) == 0) return apply_platform_set(job, path, value, err);

  cJSON *parent = root;
  const char *key = path;
  if (strncmp(path, "model.", 6) == 0) {
    int rc = model_target(root, path, &parent, &key, err);
    if (rc) return rc;
  } else if (!ts__in_list(ts__job_fields, key)) {
    char dym[96];
    return ts_err_set(err, EX_USAGE, "--set '%s': unknown job field '%s'%s", path, key,
                      did_you_mean(key, ts__job_fields, dym, sizeof dym));
  }
  /* JSON when the whole value is JSON ("16", "true", "[...]"); otherwise a
  ** bare word is a string ("gpipe", and "1f1b", which is not the number 1). */
  cJSON *v = cJSON_ParseWithOpts(value, NULL, 1);
  if (!v) v = cJSON_CreateString(value);
  if (cJSON_GetObjectItemCaseSensitive(parent, key))
    cJSON_ReplaceItemInObjectCaseSensitive(parent, key, v);
  else
    cJSON_AddItemToObject(parent, key, v);
  return 0;
}
