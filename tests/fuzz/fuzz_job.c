/*
** fuzz_job.c: libFuzzer harness for the job loader (ts_job_load).
**
** The input is a job file: it is written to an in-memory file and loaded
** with no --set.  Findings are sanitizer reports, crashes, hangs and
** breaks of the loader's error contract (fuzz_util.h).  Paths the job
** names (platform, a Hugging Face model) resolve as for any job, so the
** seed corpus's "pcie-4gpu.xml" or "gpt2-config.json" reach the source
** tree's platforms/ and examples/.
*/
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fuzz_file_t f = {-1, ""};
  if (f.fd < 0) fuzz_file_open(&f, "job.json");
  fuzz_file_write(&f, data, size);
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  int rc = ts_job_load(f.path, NULL, 0, &job, &err);
  fuzz_check_result(rc, &err, job);
  ts_job_free(job);
  return 0;
}
