/*
** test_job_dp.c: the data-parallel fields of a job (src/job/job_dp.c,
** README "Data parallelism"):
**   - defaults: data_parallel 1, rank_order "tp-dp-pp", zero 0,
**     fsdp_unit 1, gradient_bucket_mb 25, overlap_grad_reduce true,
**     optimizer adam; every field read from the file and from --set;
**   - rank orders: "tp-pp-dp" and orders with ep parse into job->order
**     (ep right after tp when not named);
**   - devices = data_parallel x the devices of one replica;
**   - each bad input is one EX_DATAERR line naming the file and the
**     field, through the library (exact messages) and through the trainsim
**     command (exit 65, one line, no output directory);
**   - a platform too small for the replicas names data_parallel; one
**     larger than the job reports its unused hosts (ts_run_t.hosts_unused).
*/
#include <sys/stat.h>
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

#define JOB                                                                                       \
  "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0, "              \
  "\"activation_message_bytes\": 0, \"activation_bytes\": 1}, \"platform\": \"ideal\", "          \
  "\"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4}"

/* Loads JOB with sets; returns the code, the job in *job (may be NULL). */
static int load(const char *const *sets, int n, ts_job_t **job, ts_err_t *err) {
  *err = (ts_err_t){0};
  *job = NULL;
  return th_job_from_json(JOB, sets, n, job, err);
}

static void test_defaults(void) {
  ts_job_t *job = NULL;
  ts_err_t err;
  CU_ASSERT_EQUAL_FATAL(load(NULL, 0, &job, &err), 0);
  CU_ASSERT_EQUAL(job->data_parallel, 1);
  CU_ASSERT_STRING_EQUAL(job->rank_order, "tp-dp-pp");
  static const ts_dim_t dflt[TS_DIMS] = {TS_DIM_TP, TS_DIM_EP, TS_DIM_DP, TS_DIM_PP};
  for (int i = 0; i < TS_DIMS; i++) CU_ASSERT_EQUAL(job->order[i], dflt[i]);
  CU_ASSERT_EQUAL(job->zero, 0);
  CU_ASSERT_EQUAL(job->fsdp_unit, 1);
  CU_ASSERT_EQUAL(job->gradient_bucket_mb, 25);
  CU_ASSERT_TRUE(job->overlap_grad_reduce);
  CU_ASSERT_EQUAL(job->optimizer, TS_OPTIMIZER_ADAM);
  CU_ASSERT_EQUAL(job->devices, 2);
  ts_job_free(job);
}

static void test_fields_from_set_and_file(void) {
  const char *sets[] = {"data_parallel=3", "rank_order=tp-pp-dp", "zero=2", "fsdp_unit=4",
                        "gradient_bucket_mb=12.5", "overlap_grad_reduce=false", "optimizer=none"};
  ts_job_t *job = NULL;
  ts_err_t err;
  CU_ASSERT_EQUAL_FATAL(load(sets, 7, &job, &err), 0);
  CU_ASSERT_EQUAL(job->data_parallel, 3);
  CU_ASSERT_STRING_EQUAL(job->rank_order, "tp-pp-dp");
  static const ts_dim_t want[TS_DIMS] = {TS_DIM_TP, TS_DIM_EP, TS_DIM_PP, TS_DIM_DP};
  for (int i = 0; i < TS_DIMS; i++) CU_ASSERT_EQUAL(job->order[i], want[i]);
  CU_ASSERT_EQUAL(job->zero, 2);
  CU_ASSERT_EQUAL(job->fsdp_unit, 4);
  CU_ASSERT_EQUAL(job->gradient_bucket_mb, 12.5);
  CU_ASSERT_FALSE(job->overlap_grad_reduce);
  CU_ASSERT_EQUAL(job->optimizer, TS_OPTIMIZER_NONE);
  CU_ASSERT_EQUAL(job->devices, 6); /* 3 replicas x 2 stages */
  ts_job_free(job);
  /* The same in the file itself. */
  job = th_load_job(
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1.0, \"backward_s\": 2.0, "
      "\"activation_message_bytes\": 0, \"activation_bytes\": 1}, "
      "\"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 4, "
      "\"data_parallel\": 2, \"rank_order\": \"pp-ep-dp-tp\", \"zero\": 3, "
      "\"gradient_bucket_mb\": 1, \"overlap_grad_reduce\": true, \"optimizer\": \"adam\"}");
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  static const ts_dim_t with_ep[TS_DIMS] = {TS_DIM_PP, TS_DIM_EP, TS_DIM_DP, TS_DIM_TP};
  for (int i = 0; i < TS_DIMS; i++) CU_ASSERT_EQUAL(job->order[i], with_ep[i]);
  CU_ASSERT_EQUAL(job->zero, 3);
  CU_ASSERT_EQUAL(job->devices, 4);
  ts_job_free(job);
  /* Without ep, ep goes right after tp wherever tp is. */
  const char *late[] = {"rank_order=dp-pp-tp"};
  CU_ASSERT_EQUAL_FATAL(load(late, 1, &job, &err), 0);
  static const ts_dim_t tp_last[TS_DIMS] = {TS_DIM_DP, TS_DIM_PP, TS_DIM_TP, TS_DIM_EP};
  for (int i = 0; i < TS_DIMS; i++) CU_ASSERT_EQUAL(job->order[i], tp_last[i]);
  ts_job_free(job);
}

/* --set strings and the exact error each gives (after "FILE: "). */
static const struct bad {
  const char *set[2];
  const char *msg;
} bad[] = {
    {{"zero=4"}, "zero: expected a ZeRO stage 0, 1, 2 or 3, got 4"},
    {{"zero=-1"}, "zero: expected a ZeRO stage 0, 1, 2 or 3, got -1"},
    {{"gradient_bucket_mb=0"}, "gradient_bucket_mb: must be greater than 0, got 0"},
    {{"gradient_bucket_mb=-25"}, "gradient_bucket_mb: must be greater than 0, got -25"},
    {{"data_parallel=0"}, "data_parallel: must be at least 1, got 0"},
    {{"fsdp_unit=0"}, "fsdp_unit: must be at least 1, got 0"},
    {{"rank_order=tp-cp-pp"},
     "rank_order: unknown dimension 'cp' in 'tp-cp-pp' (expected tp, dp, pp and optionally ep, "
     "joined by '-', fastest first)"},
    {{"rank_order=tp--dp-pp"},
     "rank_order: unknown dimension '' in 'tp--dp-pp' (expected tp, dp, pp and optionally ep, "
     "joined by '-', fastest first)"},
    {{"rank_order=tp-dp-tp"}, "rank_order: dimension 'tp' named twice in 'tp-dp-tp'"},
    {{"rank_order=tp-dp"}, "rank_order: 'tp-dp' does not name 'pp' (tp, dp and pp each once)"},
    {{"optimizer=sgd"}, "optimizer: expected \"adam\" or \"none\", got 'sgd'"},
    {{"overlap_grad_reduce=1"}, "overlap_grad_reduce: expected true or false"},
    {{"data_parallel=2", "schedule=mobius"},
     "data_parallel: schedule 'mobius' keeps weights in host memory: gradients live in host "
     "memory; data-parallel sync over host memory is not modelled"},
    {{"data_parallel=2", "iterations=2"},
     "data_parallel: 2 iterations: per-iteration weight updates inside the pipeline (2BW, "
     "multi-iteration flushes) are not synchronised across replicas"},
    {{"zero=3", "schedule=varuna"},
     "zero: stage 3 with schedule 'varuna': its replicas' op orders differ, so their parameter "
     "gathers cannot pair"},
    {{"data_parallel=2", "devices=2"},
     "devices: schedule '1f1b' runs one stage per device (4: stages x data_parallel), got 2 "
     "devices"},
};

static void test_bad_fields_library(void) {
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ts_job_t *job = NULL;
    ts_err_t err;
    int n = bad[i].set[1] ? 2 : 1;
    CU_ASSERT_EQUAL(load(bad[i].set, n, &job, &err), EX_DATAERR);
    CU_ASSERT_PTR_NULL(job);
    const char *colon = strstr(err.msg, ".json: ");
    CU_ASSERT_PTR_NOT_NULL(colon);
    if (!colon || strcmp(colon + 7, bad[i].msg)) {
      fprintf(stderr, "\n%s: got '%s'\n", bad[i].set[0], err.msg);
      CU_FAIL("wrong message");
    }
    CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  }
}

static void test_zero3_with_moe(void) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  const char *sets[] = {"zero=3"};
  int rc = th_job_from_json(
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, \"heads\": 2, "
      "\"vocab\": 100, \"moe\": {\"experts\": 4, \"expert_parallel\": 2}}, \"platform\": "
      "\"ideal\", \"schedule\": \"gshard\", \"stages\": 2, \"microbatches\": 2}",
      sets, 1, &job, &err);
  CU_ASSERT_EQUAL(rc, EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ".json: zero: stage 3 with a MoE model (model.moe) is not modelled"));
  ts_job_free(job);
}

/* Exit status of `trainsim run JOB --set SET -o DIR` and its stderr. */
static int run_cli(const char *job, const char *sets, const char *dir, char **err) {
  char args[1024];
  snprintf(args, sizeof args, "run '%s' %s -o '%s' --quiet", job, sets, dir);
  return th_cli(args, NULL, err);
}

static bool one_error_line(const char *e) {
  size_t n = strlen(e);
  if (n == 0 || strncmp(e, "trainsim: error: ", 17) || e[n - 1] != '\n') return false;
  return strchr(e, '\n') == e + n - 1;
}

static void test_bad_fields_cli(void) {
  char tmp[] = "/tmp/ts-job-dp-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(tmp));
  char out[128];
  snprintf(out, sizeof out, "%s/out", tmp);
  static const char *const cases[][2] = {
      {"--set zero=7", "tests/jobs/good-synthetic.json: zero: "},
      {"--set gradient_bucket_mb=0", "tests/jobs/good-synthetic.json: gradient_bucket_mb: "},
      {"--set data_parallel=0", "tests/jobs/good-synthetic.json: data_parallel: "},
      {"--set rank_order=tp-xp-pp", "tests/jobs/good-synthetic.json: rank_order: "},
      {"--set fsdp_unit=0", "tests/jobs/good-synthetic.json: fsdp_unit: "},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *e = NULL;
    CU_ASSERT_EQUAL(run_cli("tests/jobs/good-synthetic.json", cases[i][0], out, &e), EX_DATAERR);
    CU_ASSERT(one_error_line(e));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, cases[i][1]));
    struct stat st;
    CU_ASSERT(stat(out, &st) != 0); /* no output directory */
    free(e);
  }
  /* good-pcie.json: 4 stages on the 4 hosts of pcie-4gpu.xml. */
  char *e = NULL;
  CU_ASSERT_EQUAL(run_cli("tests/jobs/good-pcie.json", "--set data_parallel=2", out, &e),
                  EX_DATAERR);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT_PTR_NOT_NULL(strstr(e, "tests/jobs/good-pcie.json: data_parallel: the job needs 8 "
                                   "devices (2 replicas of 4) but platform '"));
  CU_ASSERT_PTR_NOT_NULL(strstr(e, "pcie-4gpu.xml' has 4 hosts"));
  struct stat st;
  CU_ASSERT(stat(out, &st) != 0);
  free(e);
  rmdir(tmp);
}

/* The first N hosts run the job; the others are counted as unused. */
static void test_hosts_unused(void) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  const char *sets[] = {"stages=2", "data_parallel=2", "platform=" TS_SOURCE_DIR
                        "/platforms/dgx-a100-2node.xml", "optimizer=none"};
  int rc = th_simulate(JOB, sets, 4, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(o.run->n_devices, 4);
  CU_ASSERT_EQUAL(o.run->hosts_unused, 12);
  for (int d = 0; d < 4; d++) {
    char name[32];
    snprintf(name, sizeof name, "node0-gpu%d", d);
    CU_ASSERT_STRING_EQUAL(o.run->devices[d].name, name);
    CU_ASSERT_EQUAL(o.run->devices[d].memory_bandwidth, 2.039e12);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
  /* The ideal platform fits the job and has no memory bandwidth. */
  const char *ideal[] = {"data_parallel=2", "optimizer=none"};
  CU_ASSERT_EQUAL_FATAL(th_simulate(JOB, ideal, 2, &job, &o, &err), 0);
  CU_ASSERT_EQUAL(o.run->hosts_unused, 0);
  CU_ASSERT_EQUAL(o.run->devices[0].memory_bandwidth, 0);
  ts_outcome_free(&o);
  ts_job_free(job);
}

TS_TESTS{
    TS_TEST(test_defaults),           TS_TEST(test_fields_from_set_and_file),
    TS_TEST(test_bad_fields_library), TS_TEST(test_zero3_with_moe),
    TS_TEST(test_bad_fields_cli),     TS_TEST(test_hosts_unused),
};

TS_TEST_MAIN("job: data parallelism")
