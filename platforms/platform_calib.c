/*
** platform_calib.c: the sustained GPU speed of a generated platform,
** calibrated from a measurement file (a file of shared/calibration/): the rule
** is documented at ts_platgen_calibrated_speed in platform_gen.h.
*/
#include "platform_gen.h"
#include "ts_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <cjson/cJSON.h>

/* ------------------------------------------------------------------ */
/* Calibration                                                         */
/* ------------------------------------------------------------------ */

/* The number field of layers[i], which must be finite and > 0; fills
** *out, or the error naming the file and layers[i].field. */
static int layer_number(const char *path, const cJSON *layer, int i, const char *field,
                        double *out, ts_err_t *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(layer, field);
  if (!v) return ts_err_set(err, EX_DATAERR, "%s: layers[%d].%s: missing", path, i, field);
  if (!cJSON_IsNumber(v))
    return ts_err_set(err, EX_DATAERR, "%s: layers[%d].%s: expected a number", path, i, field);
  if (!isfinite(v->valuedouble) || !(v->valuedouble > 0))
    return ts_err_set(err, EX_DATAERR, "%s: layers[%d].%s: expected a finite positive number, got %g",
                      path, i, field, v->valuedouble);
  *out = v->valuedouble;
  return 0;
}

int ts_platgen_calibrated_speed(const char *path, double *speed, ts_err_t *err) {
  size_t len = 0;
  char *text = ts__read_file(path, &len);
  if (!text) return ts_err_set(err, EX_NOINPUT, "%s: cannot read calibration file: %s", path, ts__read_error(errno));
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  int rc = 0;
  if (!root) {
    int line = 1;
    for (const char *p = text; end && p < end && *p; p++) line += *p == '\n';
    rc = ts_err_set(err, EX_DATAERR, "%s: line %d: malformed JSON", path, line);
    goto out_free_text;
  }
  const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
  if (!cJSON_IsArray(layers)) {
    rc = ts_err_set(err, EX_DATAERR, "%s: layers: %s", path,
                    layers ? "expected an array" : "missing");
    goto out_free_json;
  }
  /* The mean over the qualifying layers, summed in file order. */
  double sum = 0;
  int n = 0, i = 0;
  const cJSON *layer;
  cJSON_ArrayForEach(layer, layers) {
    double h, fwd_s, fwd_bwd_s, tflops;
    if (!cJSON_IsObject(layer)) {
      rc = ts_err_set(err, EX_DATAERR, "%s: layers[%d]: expected an object", path, i);
      goto out_free_json;
    }
    if ((rc = layer_number(path, layer, i, "h", &h, err))) goto out_free_json;
    if (h >= 8192) {
      if ((rc = layer_number(path, layer, i, "approx_fwd_tflops", &tflops, err)) ||
          (rc = layer_number(path, layer, i, "fwd_s", &fwd_s, err)) ||
          (rc = layer_number(path, layer, i, "fwd_bwd_s", &fwd_bwd_s, err)))
        goto out_free_json;
      double fwd_flops = tflops * 1e12 * fwd_s;
      sum += 3 * fwd_flops / fwd_bwd_s;
      n++;
    }
    i++;
  }
  if (n == 0) {
    rc = ts_err_set(err, EX_DATAERR, "%s: layers: no entry with h >= 8192 to calibrate the speed", path);
    goto out_free_json;
  }
  *speed = sum / n;
  if (!isfinite(*speed))
    rc = ts_err_set(err, EX_DATAERR, "%s: layers: the calibrated speed is not finite", path);
out_free_json:
  cJSON_Delete(root);
out_free_text:
  free(text);
  return rc;
}

int ts_platgen_speed_from_calibration(const char *path, ts_platgen_t *g, ts_err_t *err) {
  double s;
  int rc = ts_platgen_calibrated_speed(path, &s, err);
  if (rc == 0) g->gpu_speed = s;
  return rc;
}

