/*
** fuzz_set.c: libFuzzer harness for `--set PATH=VALUE` parsing.
**
** The input is split at newlines (and NUL bytes) into at most 16 --set
** strings, which ts_job_load applies to a fixed small job: a 4-layer
** transformer, 1F1B over 2 stages on the ideal platform, which loads as it
** is (checked once).  model.moe.* paths create the mixture-of-experts
** objects; the seed corpus has inputs that also switch to a GShard
** schedule, so the MoE validation is reached too.  Findings are
** sanitizer reports, crashes, hangs and breaks of the loader's error
** contract (fuzz_util.h).
*/
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The job every input's --set strings apply to. */
static const char BASE_JOB[] =
    "{\"model\": {\"kind\": \"transformer\", \"name\": \"fuzz\", \"layers\": 4, \"hidden\": 64,\n"
    "           \"heads\": 4, \"vocab\": 1000},\n"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4,\n"
    " \"seq_len\": 128}\n";

enum { MAX_SETS = 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fuzz_file_t f = {-1, ""};
  if (f.fd < 0) {
    fuzz_file_open(&f, "set-base.json");
    fuzz_file_write(&f, BASE_JOB, sizeof BASE_JOB - 1);
    /* The base must load, or every input would test one error path. */
    ts_job_t *base = NULL;
    ts_err_t err = {0};
    if (ts_job_load(f.path, NULL, 0, &base, &err)) {
      fprintf(stderr, "fuzz_set: the base job does not load: %s\n", err.msg);
      abort();
    }
    ts_job_free(base);
  }
  char *text = malloc(size + 1);
  if (!text) abort();
  memcpy(text, data, size);
  text[size] = 0;
  const char *sets[MAX_SETS];
  int n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= size && n < MAX_SETS; i++) {
    if (i == size || text[i] == '\n' || text[i] == 0) {
      text[i] = 0;
      if (i > start || i < size) sets[n++] = text + start;
      start = i + 1;
    }
  }
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = ts_job_load(f.path, sets, n, &job, &err);
  fuzz_check_result(rc, &err, job);
  ts_job_free(job);
  free(text);
  return 0;
}
