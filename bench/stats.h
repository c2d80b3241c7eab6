/* SPDX-License-Identifier: MIT */
/*
 * bench/stats.h - the clock and the order statistics every bench program
 * reports with, kept in one place so that all of them mean the same thing
 * by "median".
 */
#ifndef TEL_BENCH_STATS_H
#define TEL_BENCH_STATS_H

#include <stdlib.h>
#include <time.h>

/* Monotonic seconds: immune to the wall clock being set mid-run. */
static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v (so v[0] and v[n-1] are then the min and max) and returns the
 * median. */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
