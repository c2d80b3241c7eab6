/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/check.h - the in-tree test harness for C unit tests.
 *
 * Each CHECK prints "ok <name>" or "FAIL <name>: <where>" on stdout; the
 * runner (tests/run.sh) counts those lines.  A test program returns
 * check_exit(), which is non-zero when anything failed.
 */
#ifndef TEL_TEST_CHECK_H
#define TEL_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static const char *check_group = "";

#define CHECK_GROUP(name) (check_group = (name))

#define CHECK(name, cond)                                                  \
    do {                                                                   \
        if (cond) {                                                        \
            printf("ok %s%s%s\n", check_group, *check_group ? ": " : "", name); \
        } else {                                                           \
            check_failures++;                                              \
            printf("FAIL %s%s%s: %s (%s:%d)\n", check_group,               \
                   *check_group ? ": " : "", name, #cond, __FILE__, __LINE__); \
        }                                                                  \
        fflush(stdout);                                                    \
    } while (0)

#define CHECK_EQ_INT(name, got, want)                                       \
    do {                                                                   \
        long long g_ = (long long)(got), w_ = (long long)(want);            \
        if (g_ == w_) {                                                    \
            printf("ok %s%s%s\n", check_group, *check_group ? ": " : "", name); \
        } else {                                                           \
            check_failures++;                                              \
            printf("FAIL %s%s%s: got %lld, want %lld (%s:%d)\n", check_group, \
                   *check_group ? ": " : "", name, g_, w_, __FILE__, __LINE__); \
        }                                                                  \
        fflush(stdout);                                                    \
    } while (0)

/* A check that cannot run here; counted apart from passes. */
#define CHECK_SKIP(name)                                                   \
    do {                                                                   \
        printf("skip %s%s%s\n", check_group, *check_group ? ": " : "", name); \
        fflush(stdout);                                                    \
    } while (0)

/* A set-up step whose failure would make the checks after it meaningless:
 * counted as a failure, with the call that failed. */
#define SETUP(expr)                                                        \
    do {                                                                   \
        if ((expr) != 0) {                                                 \
            check_failures++;                                              \
            printf("FAIL setup: %s (%s:%d)\n", #expr, __FILE__, __LINE__);  \
            fflush(stdout);                                                \
        }                                                                  \
    } while (0)

static inline int check_exit(void) { return check_failures ? 1 : 0; }

#endif
