/* SPDX-License-Identifier: MIT */
/*
 * bench/rr.c - times whole processes, round-robin.
 *
 *   rr [-n RUNS] [-w WARMUP] [-p PREP] @NAME PROGRAM ARG ... [@NAME ...]
 *
 * Each round runs every program once, in the order given, so a slow
 * moment of the machine (a neighbour's burst, a journal commit) lands on
 * all of them alike instead of on whichever peer happened to be running;
 * running one peer after another would turn machine noise into a
 * difference between peers.  WARMUP rounds run first, untimed, so files
 * each program creates on its first run do not count.  PREP, when given,
 * runs through /bin/sh before every timed run and is not timed.
 *
 * The time is from just before posix_spawn to just after wait4: what a
 * user waits for when a shell runs the program.  Prints, per program:
 * NAME median_ms min_ms max_ms peak_rss_kib median_cpu_ms, the CPU being
 * the process's own user + system time (wait4's rusage): on a machine
 * shared with a server the program talks to, the wall time holds the
 * server's work and the CPU time does not.  Any run that fails stops
 * everything with exit 1: a benchmark of a failing program means nothing.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"

extern char **environ;

#define MAX_PROGS 32
#define MAX_ARGS 32
#define MAX_RUNS 1000

typedef struct prog {
    const char *name;
    char *argv[MAX_ARGS + 1];
    double ms[MAX_RUNS];
    double cpu_ms[MAX_RUNS];
    long maxrss_kib;
} prog;

/* Runs argv; returns the wall time in ms, or -1 when it did not exit 0.
 * cpu_ms (may be NULL) gets its user + system time. */
static double run_once(char *const argv[], long *maxrss_kib, double *cpu_ms)
{
    pid_t pid;
    double t0 = bench_now_s();
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
        fprintf(stderr, "rr: cannot start %s\n", argv[0]);
        return -1;
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return -1;
    double t = (bench_now_s() - t0) * 1e3;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "rr: %s failed (status %d)\n", argv[0], status);
        return -1;
    }
    if (maxrss_kib && ru.ru_maxrss > *maxrss_kib)
        *maxrss_kib = ru.ru_maxrss;
    if (cpu_ms)
        *cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return t;
}

static int run_prep(const char *prep)
{
    if (!prep)
        return 0;
    char *argv[] = { "/bin/sh", "-c", (char *)prep, NULL };
    return run_once(argv, NULL, NULL) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    static prog progs[MAX_PROGS];
    int runs = 30, warmup = 1, nprogs = 0;
    const char *prep = NULL;
    int c;
    while ((c = getopt(argc, argv, "+n:w:p:")) != -1) {
        switch (c) {
        case 'n': runs = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'p': prep = optarg; break;
        default: return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || warmup < 0 || optind >= argc) {
        fprintf(stderr, "usage: rr [-n RUNS] [-w WARMUP] [-p PREP] @NAME PROGRAM ARG ...\n");
        return 2;
    }
    /* "@NAME" starts a program: the next word is its path, the words
     * after that its arguments, up to the next "@NAME". */
    for (int i = optind; i < argc; i++) {
        if (argv[i][0] == '@') {
            if (nprogs == MAX_PROGS || i + 1 >= argc || !argv[i][1])
                return 2;
            progs[nprogs].name = argv[i] + 1;
            progs[nprogs].argv[0] = argv[++i];
            nprogs++;
            continue;
        }
        if (nprogs == 0) {
            fprintf(stderr, "rr: '%s' comes before any @NAME\n", argv[i]);
            return 2;
        }
        prog *p = &progs[nprogs - 1];
        int n = 0;
        while (p->argv[n])
            n++;
        if (n == MAX_ARGS)
            return 2;
        p->argv[n] = argv[i];
    }
    if (nprogs == 0)
        return 2;

    for (int round = 0; round < warmup; round++)
        for (int i = 0; i < nprogs; i++)
            if (run_prep(prep) < 0 || run_once(progs[i].argv, NULL, NULL) < 0)
                return 1;
    for (int round = 0; round < runs; round++) {
        for (int i = 0; i < nprogs; i++) {
            if (run_prep(prep) < 0)
                return 1;
            double t = run_once(progs[i].argv, &progs[i].maxrss_kib, &progs[i].cpu_ms[round]);
            if (t < 0)
                return 1;
            progs[i].ms[round] = t;
        }
    }
    for (int i = 0; i < nprogs; i++) {
        prog *p = &progs[i];
        double med = bench_median(p->ms, runs);
        printf("%s %.3f %.3f %.3f %ld %.3f\n", p->name, med, p->ms[0], p->ms[runs - 1], p->maxrss_kib,
               bench_median(p->cpu_ms, runs));
    }
    return 0;
}
