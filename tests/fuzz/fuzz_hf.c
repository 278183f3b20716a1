/*
** fuzz_hf.c: libFuzzer harness for the Hugging Face config translator.
**
** The input is a config.json: it is written to an in-memory file, which
** two fixed jobs name as their model {"config": <that file>}, both on the
** ideal platform: 1F1B over 2 stages for dense models and GShard on 1
** stage for Mixtral-style ones.  ts_job_load loads both, so the
** translated transformer also goes through the model's validation.
** Findings are sanitizer reports, crashes, hangs and breaks of the
** loader's error contract (fuzz_util.h).
*/
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The job that names the config file cfg as its model with schedule. */
static void write_job(fuzz_file_t *job, const fuzz_file_t *cfg, const char *schedule,
                      int stages) {
  char text[256];
  int n = snprintf(text, sizeof text,
                   "{\"model\": {\"config\": \"%s\"}, \"platform\": \"ideal\",\n"
                   " \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": 4}\n",
                   cfg->path, schedule, stages);
  fuzz_file_write(job, text, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fuzz_file_t cfg = {-1, ""}, jobs[2] = {{-1, ""}, {-1, ""}};
  if (cfg.fd < 0) {
    fuzz_file_open(&cfg, "config.json");
    fuzz_file_open(&jobs[0], "hf-dense.json");
    fuzz_file_open(&jobs[1], "hf-moe.json");
    write_job(&jobs[0], &cfg, "1f1b", 2);
    write_job(&jobs[1], &cfg, "gshard", 1);
  }
  fuzz_file_write(&cfg, data, size);
  for (int i = 0; i < 2; i++) {
    ts_job_t *job = NULL;
    ts_err_t err = {0};
    int rc = ts_job_load(jobs[i].path, NULL, 0, &job, &err);
    fuzz_check_result(rc, &err, job);
    ts_job_free(job);
  }
  return 0;
}
