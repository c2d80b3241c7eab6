/* SPDX-License-Identifier: MIT */
/*
 * bench/contend.c - a producer that times every emit, run while tel-sync
 * drains the same queue (bench/run.sh starts tel-sync over and over
 * beside it).  LMDB has one writer at a time, so an emit that arrives
 * while tel-sync deletes a delivered batch waits for that transaction;
 * this shows how long such a wait gets.
 *
 *   contend APP EVENTS PAUSE_US
 *
 * One handle, EVENTS durable emits of realistic events with PAUSE_US
 * between them.  Prints "contend p50_ms p99_ms max_ms events".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "events.h"
#include "stats.h"
#include "tel.h"

#define MAX_EVENTS 20000

static bench_ev events[MAX_EVENTS + 8];
static double lat[MAX_EVENTS];

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int nev = atoi(argv[2]);
    long pause_us = atol(argv[3]);
    if (nev < 1 || nev > MAX_EVENTS || pause_us < 0)
        return 2;
    bench_rng rng = { 0xc0de };
    bench_events_fill(&rng, events, nev);
    tel_options *o = tel_options_new(argv[1]);
    tel *h;
    if (!o || tel_open(&h, o) != TEL_OK) {
        fprintf(stderr, "contend: cannot open the queue: %s\n", tel_last_error());
        return 1;
    }
    struct timespec pause = { pause_us / 1000000, (pause_us % 1000000) * 1000 };
    for (int i = 0; i < nev; i++) {
        double t0 = bench_now_s();
        if (tel_emit_event(h, events[i].name, events[i].props, events[i].nprops) != TEL_OK) {
            fprintf(stderr, "contend: emit: %s\n", tel_last_error());
            return 1;
        }
        lat[i] = (bench_now_s() - t0) * 1e3;
        if (pause_us)
            nanosleep(&pause, NULL);
    }
    tel_close(h);
    bench_median(lat, nev);
    printf("contend %.3f %.3f %.3f %d\n", lat[nev / 2], lat[(int)(nev * 0.99)], lat[nev - 1], nev);
    return 0;
}
