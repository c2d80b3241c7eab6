/* SPDX-License-Identifier: MIT */
/*
 * bench/inproc.c - events per second inside one process.
 *
 *   inproc APP TRIALS
 *
 * "single": one handle, one tel_emit_event() per event, each its own
 * durable transaction (what a host that records a few events per run pays
 * for each).  "batch": tel_batch_begin(), 1000 emits, tel_batch_commit(),
 * ten times over into a fresh queue, so 10,000 events fill it to the
 * default cap without eviction.  The events are drawn from bench/events.h
 * before the clock starts, so the time is tel's alone.  Prints
 * "single|batch median min max" in events/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "events.h"
#include "stats.h"
#include "tel.h"

#define SINGLE_EVENTS 400
#define BATCH_EVENTS 1000
#define BATCHES 10
#define NEVENTS (BATCH_EVENTS * BATCHES)
#define MAX_TRIALS 31

static bench_ev events[NEVENTS + 8];

static void report(const char *what, double *v, int n)
{
    double med = bench_median(v, n);
    printf("%s %.0f %.0f %.0f\n", what, med, v[0], v[n - 1]);
}

static tel *open_app(const char *app)
{
    tel_options *o = tel_options_new(app);
    if (o)
        tel_options_set_app_version(o, "1.4.2");
    tel *h;
    if (!o || tel_open(&h, o) != TEL_OK) {
        fprintf(stderr, "inproc: cannot open %s: %s\n", app, tel_last_error());
        exit(1);
    }
    return h;
}

static int emit(tel *h, int i)
{
    const bench_ev *e = &events[i];
    int rc = tel_emit_event(h, e->name, e->props, e->nprops);
    if (rc != TEL_OK)
        fprintf(stderr, "inproc: emit: %s\n", tel_last_error());
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int trials = atoi(argv[2]);
    if (trials < 1 || trials > MAX_TRIALS)
        return 2;
    bench_rng rng = { 0x7e1u };
    bench_events_fill(&rng, events, NEVENTS);

    double single[MAX_TRIALS], batch[MAX_TRIALS];
    char app[128];
    for (int t = 0; t < trials; t++) {
        snprintf(app, sizeof app, "%s-single", argv[1]);
        tel *h = open_app(app);
        double t0 = bench_now_s();
        for (int i = 0; i < SINGLE_EVENTS; i++)
            if (emit(h, i) != TEL_OK)
                return 1;
        single[t] = SINGLE_EVENTS / (bench_now_s() - t0);
        tel_close(h);

        snprintf(app, sizeof app, "%s-batch%d", argv[1], t);
        h = open_app(app);
        t0 = bench_now_s();
        for (int b = 0; b < BATCHES; b++) {
            if (tel_batch_begin(h) != TEL_OK)
                return 1;
            for (int i = 0; i < BATCH_EVENTS; i++)
                if (emit(h, b * BATCH_EVENTS + i) != TEL_OK)
                    return 1;
            if (tel_batch_commit(h) != TEL_OK) {
                fprintf(stderr, "inproc: commit: %s\n", tel_last_error());
                return 1;
            }
        }
        batch[t] = NEVENTS / (bench_now_s() - t0);
        tel_close(h);
    }
    report("single", single, trials);
    report("batch", batch, trials);
    return 0;
}
