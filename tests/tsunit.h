/*
** tsunit.h: the tiny glue between trainsim's test files and CUnit.
**
** Each tests/test_*.c is one executable and one ctest entry (CMake globs
** them, so adding a test file needs no registry edit).  A file lists its
** cases in a TS_TESTS table and ends with TS_TEST_MAIN("suite name").
** The runner exits non-zero when any assertion failed, and prints CUnit's
** closing "Run Summary" lines.
*/
#ifndef TSUNIT_H
#define TSUNIT_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdlib.h>

typedef struct { const char *name; void (*fn)(void); } ts_test_case_t;

#define TS_TESTS static const ts_test_case_t ts_test_cases[] =
#define TS_TEST(fn) { #fn, fn }

#define TS_TEST_MAIN(suite_name)                                              \
  int main(void) {                                                            \
    if (CU_initialize_registry() != CUE_SUCCESS) return 70;                   \
    CU_pSuite s = CU_add_suite(suite_name, NULL, NULL);                       \
    for (size_t i = 0; i < sizeof ts_test_cases / sizeof ts_test_cases[0]; i++) \
      CU_add_test(s, ts_test_cases[i].name, ts_test_cases[i].fn);             \
    CU_basic_set_mode(CU_BRM_VERBOSE);                                        \
    CU_basic_run_tests();                                                     \
    unsigned failed = CU_get_number_of_failures() +                           \
                      CU_get_number_of_tests_failed();                        \
    unsigned ran = CU_get_number_of_tests_run();                              \
    CU_cleanup_registry();                                                    \
    return (failed || ran == 0) ? 1 : 0;                                      \
  }

/* Relative error check for closed forms. */
#define TS_ASSERT_REL(actual, expected, tol)                                  \
  CU_ASSERT_DOUBLE_EQUAL((actual), (expected),                                \
                         (tol) * (((expected) < 0 ? -(expected) : (expected)) > 1e-300 ? ((expected) < 0 ? -(expected) : (expected)) : 1.0))

#endif
