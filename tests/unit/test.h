/*
 * test.h - the unit test harness: one binary per test file, one process per
 * test case.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); CHECK_STR(s, "x"); }
 *
 * `binary --list` prints the test names; `binary NAME` runs one test and
 * exits 0 on success; `binary` alone runs them all in this process (handy
 * under a debugger). tests/run.sh runs each case in its own process with a
 * timeout, so a crash or a leak (LeakSanitizer) fails only that case.
 * Random tests take their seed from TEST_SEED (default fixed) and print it
 * when they fail.
 */
#ifndef ENGRAM_TEST_H
#define ENGRAM_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };
static struct test_case test_cases[512];
static int test_count;
static int test_failures;

#define TEST(tname)                                                         \
    static void test_##tname(void);                                         \
    __attribute__((constructor)) static void test_register_##tname(void) {  \
        test_cases[test_count].name = #tname;                               \
        test_cases[test_count++].fn = test_##tname;                         \
    }                                                                       \
    static void test_##tname(void)

#define CHECK(cond) do { if (!(cond)) {                                     \
        fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        test_failures++; } } while (0)
#define REQUIRE(cond) do { if (!(cond)) {                                   \
        fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
        test_failures++; return; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
        if (_a != _b) { fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", \
            __FILE__, __LINE__, #a, #b, _a, _b); test_failures++; } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b);               \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                            \
            fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
                __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
            test_failures++; } } while (0)
#define CHECK_NEAR(a, b, eps) do { double _a = (a), _b = (b);               \
        if (!(_a - _b <= (eps) && _b - _a <= (eps))) {                      \
            fprintf(stderr, "  %s:%d: %s ~= %s failed: %.9g vs %.9g\n",     \
                __FILE__, __LINE__, #a, #b, _a, _b); test_failures++; } } while (0)

static inline unsigned long long test_seed(void)
{
    const char *s = getenv("TEST_SEED");
    return s ? strtoull(s, NULL, 10) : 20261121ULL;
}

/* A scratch directory, removed by the caller with test_rmdir. */
static inline char *test_tmpdir(void)
{
    static char path[256];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/engram-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(path);
}
static inline void test_rmdir(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", path);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < test_count; i++) printf("%s\n", test_cases[i].name);
        return 0;
    }
    int ran = 0;
    for (int i = 0; i < test_count; i++) {
        if (argc > 1 && strcmp(argv[1], test_cases[i].name) != 0) continue;
        int before = test_failures;
        test_cases[i].fn();
        ran++;
        if (test_failures != before) {
            fprintf(stderr, "FAIL %s (seed %llu)\n", test_cases[i].name, test_seed());
        }
    }
    if (ran == 0) { fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "?"); return 2; }
    return test_failures ? 1 : 0;
}

#endif
