/* SPDX-License-Identifier: MIT */
/*
 * bench/fill.c - fills an app's queue the way real use would: many short
 * runs of the host, each opening its own handle (so each has its own
 * execution id, app version and CI context) and recording a
 * tel_command_started()/tel_command_exited() pair with some custom events
 * in between, in one batch per run.
 *
 *   fill APP EVENTS
 *
 * Stops once EVENTS events are queued (the last run may be cut short).
 */
#include <stdio.h>
#include <stdlib.h>

#include "events.h"
#include "tel.h"

/* CI is detected from the environment when a handle opens, so each run
 * sets the variables a CI runner would, or clears them. */
static void set_ci(int ci)
{
    unsetenv("CI");
    unsetenv("GITHUB_ACTIONS");
    unsetenv("GITLAB_CI");
    if (ci) {
        setenv("CI", "true", 1);
        setenv(ci == 1 ? "GITHUB_ACTIONS" : "GITLAB_CI", "true", 1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    long want = atol(argv[2]);
    if (want < 1)
        return 2;
    bench_rng rng = { 0xf111u };
    long done = 0;
    while (done < want) {
        bench_run run;
        bench_run_draw(&rng, &run);
        set_ci(run.ci);
        tel_options *o = tel_options_new(argv[1]);
        tel *h;
        if (!o || tel_options_set_app_version(o, run.version) != TEL_OK || tel_open(&h, o) != TEL_OK) {
            fprintf(stderr, "fill: cannot open the queue: %s\n", tel_last_error());
            return 1;
        }
        int rc = tel_batch_begin(h);
        if (rc == TEL_OK)
            rc = tel_command_started(h, run.command, run.opts, run.nopts);
        done++;
        for (int k = 0; k < run.ncustom && rc == TEL_OK && done < want; k++, done++)
            rc = tel_emit_event(h, bench_custom_name(run.custom_kind[k]), run.custom[k],
                                run.ncustom_props[k]);
        if (rc == TEL_OK && done < want) {
            rc = tel_command_exited(h, run.exit_code, NULL, NULL);
            done++;
        }
        if (rc == TEL_OK)
            rc = tel_batch_commit(h);
        tel_close(h);
        if (rc != TEL_OK) {
            fprintf(stderr, "fill: %s\n", tel_last_error());
            return 1;
        }
    }
    printf("%ld\n", done);
    return 0;
}
