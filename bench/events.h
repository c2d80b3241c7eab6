/* SPDX-License-Identifier: MIT */
/*
 * bench/events.h - a deterministic stream of realistic CLI events, shared
 * by the programs that fill queues and by the one-POST-per-event peer, so
 * that tel and its peers carry the same information.
 *
 * A queue filled with one event repeated ten thousand times would gzip to
 * almost nothing and flatter tel's wire size.  Real queues hold the runs
 * of one user: a handful of commands, each run a started/exited pair with
 * option names, an exit code and sometimes a custom event or two, over a
 * few app versions, some of them in CI.  The generator draws those from a
 * fixed-seed PRNG so every run of the bench sees the same mix.
 */
#ifndef TEL_BENCH_EVENTS_H
#define TEL_BENCH_EVENTS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tel.h"

typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint32_t bench_next(bench_rng *r)
{
    /* xorshift64*: plenty for choosing among a few strings. */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ull) >> 32);
}

static inline uint32_t bench_pick(bench_rng *r, uint32_t n)
{
    return bench_next(r) % n;
}

#define BENCH_N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const bench_commands[] = {
    "deploy", "build", "init", "status", "db migrate", "config set", "login", "logs",
};
static const char *const bench_versions[] = { "1.4.2", "1.4.3", "1.5.0", "2.0.0-rc.1" };
static const char *const bench_options[] = {
    "force", "output", "verbose", "region", "dry-run", "profile", "timeout",
};
static const char *const bench_strategies[] = { "rolling", "blue-green", "canary" };
static const char *const bench_plugins[] = { "aws", "gcp", "helm", "terraform", "vault" };
static const int bench_exit_codes[] = { 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 130 };

/* One simulated run of the host program: everything a queue would hold
 * from it, and the context it ran in. */
typedef struct bench_run {
    const char *command;
    const char *version;
    int ci;                    /* 0: a laptop; 1: GitHub Actions; 2: GitLab */
    tel_option_use opts[4];
    size_t nopts;
    int exit_code;
    int ncustom;               /* 0-2 custom events between the pair */
    int custom_kind[2];
    tel_prop custom[2][4];
    size_t ncustom_props[2];
} bench_run;

static inline void bench_run_draw(bench_rng *r, bench_run *run)
{
    memset(run, 0, sizeof *run);
    run->command = bench_commands[bench_pick(r, BENCH_N(bench_commands))];
    run->version = bench_versions[bench_pick(r, BENCH_N(bench_versions))];
    uint32_t c = bench_pick(r, 10);
    run->ci = c < 7 ? 0 : (c < 9 ? 1 : 2);
    run->nopts = bench_pick(r, 4);
    uint32_t first = bench_pick(r, BENCH_N(bench_options));
    for (size_t i = 0; i < run->nopts; i++) {
        run->opts[i].name = bench_options[(first + i) % BENCH_N(bench_options)];
        run->opts[i].from_env = bench_pick(r, 5) == 0;
    }
    run->exit_code = bench_exit_codes[bench_pick(r, BENCH_N(bench_exit_codes))];
    run->ncustom = (int)bench_pick(r, 3);
    for (int k = 0; k < run->ncustom; k++) {
        tel_prop *p = run->custom[k];
        run->custom_kind[k] = (int)bench_pick(r, 3);
        switch (run->custom_kind[k]) {
        case 0:
            p[0] = (tel_prop)TEL_STR("strategy", bench_strategies[bench_pick(r, 3)]);
            p[1] = (tel_prop)TEL_INT("services", 1 + bench_pick(r, 40));
            p[2] = (tel_prop)TEL_BOOL("dry_run", bench_pick(r, 4) == 0);
            p[3] = (tel_prop)TEL_INT("duration_ms", 200 + bench_pick(r, 120000));
            run->ncustom_props[k] = 4;
            break;
        case 1:
            p[0] = (tel_prop)TEL_STR("kind", bench_pick(r, 2) ? "layer" : "module");
            p[1] = (tel_prop)TEL_FLOAT("hit_ratio", bench_pick(r, 1000) / 1000.0);
            p[2] = (tel_prop)TEL_INT("entries", bench_pick(r, 5000));
            run->ncustom_props[k] = 3;
            break;
        default:
            p[0] = (tel_prop)TEL_STR("plugin", bench_plugins[bench_pick(r, BENCH_N(bench_plugins))]);
            p[1] = (tel_prop)TEL_STR("plugin_version", bench_versions[bench_pick(r, 4)]);
            run->ncustom_props[k] = 2;
            break;
        }
    }
}

static inline const char *bench_custom_name(int kind)
{
    return kind == 0 ? "deploy.finished" : kind == 1 ? "cache.used" : "plugin.loaded";
}

/* Events a run records: the started/exited pair and its custom events. */
static inline int bench_run_events(const bench_run *run)
{
    return 2 + run->ncustom;
}

/*
 * The events of a run as plain emits, for the programs that record them
 * through tel_emit_event() on one handle (the batch API bench) or render
 * them as JSON (the one-POST peer).  The same names and properties the
 * command helpers record: option names joined by commas, exit code,
 * success, a duration.  The "options" property points into the event's
 * own buffer, so an event must not be copied by value after this.
 */
typedef struct bench_ev {
    const char *name;
    tel_prop props[6];
    size_t nprops;
    char options[96];
    const char *command;
    const char *version;
    int ci;
} bench_ev;

static inline int bench_run_flatten(bench_rng *r, const bench_run *run, bench_ev *out)
{
    int n = 0;
    bench_ev *e = &out[n++];
    memset(e, 0, sizeof *e);
    e->name = "command.started";
    for (size_t i = 0; i < run->nopts; i++) {
        if (i)
            strcat(e->options, ",");
        strcat(e->options, run->opts[i].name);
    }
    e->props[e->nprops++] = (tel_prop)TEL_STR("command", run->command);
    if (e->options[0])
        e->props[e->nprops++] = (tel_prop)TEL_STR("options", e->options);
    for (int k = 0; k < run->ncustom; k++) {
        e = &out[n++];
        memset(e, 0, sizeof *e);
        e->name = bench_custom_name(run->custom_kind[k]);
        memcpy(e->props, run->custom[k], run->ncustom_props[k] * sizeof(tel_prop));
        e->nprops = run->ncustom_props[k];
    }
    e = &out[n++];
    memset(e, 0, sizeof *e);
    e->name = "command.exited";
    e->props[e->nprops++] = (tel_prop)TEL_STR("command", run->command);
    e->props[e->nprops++] = (tel_prop)TEL_INT("exit_code", run->exit_code);
    e->props[e->nprops++] = (tel_prop)TEL_BOOL("success", run->exit_code == 0);
    e->props[e->nprops++] = (tel_prop)TEL_INT("duration_ms", 5 + bench_pick(r, 30000));
    for (int i = 0; i < n; i++) {
        out[i].command = run->command;
        out[i].version = run->version;
        out[i].ci = run->ci;
    }
    return n;
}

/* Fills out[] with at least n events of whole runs; out must have room
 * for n + 4 (a run can end past n).  Returns how many were written. */
static inline int bench_events_fill(bench_rng *r, bench_ev *out, int n)
{
    int done = 0;
    while (done < n) {
        bench_run run;
        bench_run_draw(r, &run);
        done += bench_run_flatten(r, &run, &out[done]);
    }
    return done;
}

#endif
