/* SPDX-License-Identifier: MIT */
/*
 * examples/mycli.c - a small command-line program with tel telemetry, as a
 * CLI author would add it: a notice on first run, a --no-telemetry flag,
 * a `telemetry` subcommand, the command lifecycle events, and a detached
 * tel-sync started as it finishes.
 *
 *   mycli [--no-telemetry] [--force] [--output FILE] deploy|build|fail
 *   mycli telemetry status|enable|disable|forget
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tel.h"

#define APP "mycli"

static int telemetry_command(const char *verb)
{
    char line[256];
    int rc;
    if (strcmp(verb, "status") == 0) {
        rc = tel_status_line(APP, line, sizeof line);
        if (rc == TEL_OK)
            printf("%s\n", line);
    } else if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) {
        rc = tel_set_enabled(APP, verb[0] == 'e');
    } else if (strcmp(verb, "forget") == 0) {
        rc = tel_forget(APP);
    } else {
        fprintf(stderr, "mycli: unknown telemetry command '%s'\n", verb);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "mycli: %s: %s\n", tel_strerror(rc), tel_last_error());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "no-telemetry", no_argument, NULL, 'n' },
        { "force", no_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 },
    };
    int no_telemetry = 0, force = 0;
    const char *output = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "fo:", opts, NULL)) != -1) {
        switch (c) {
        case 'n': no_telemetry = 1; break;
        case 'f': force = 1; break;
        case 'o': output = optarg; break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: mycli [--no-telemetry] [--force] [--output FILE] deploy|build|fail\n");
        return 2;
    }
    const char *command = argv[optind];
    if (strcmp(command, "telemetry") == 0)
        return optind + 1 < argc ? telemetry_command(argv[optind + 1]) : 2;

    /* Set-up: one options object, one open. */
    tel_options *o = tel_options_new(APP);
    tel_options_set_app_version(o, "1.4.2");
    if (no_telemetry)
        tel_options_set_enabled(o, 0, TEL_SRC_FLAG);
    tel *t = NULL;
    tel_open(&t, o); /* on failure t is NULL and every tel call is a no-op */

    if (tel_notice_due(t)) {
        fprintf(stderr, "mycli collects anonymous usage data (command names, exit codes, durations).\n"
                        "Turn it off with `mycli telemetry disable` or MYCLI_TELEMETRY_ENABLED=false.\n");
        tel_notice_shown(t);
    }

    /* Option names only: the value of --output is the user's business. */
    tel_option_use used[2];
    size_t nused = 0;
    if (force)
        used[nused++] = (tel_option_use){ "force", 0 };
    if (output)
        used[nused++] = (tel_option_use){ "output", 0 };
    /* Only a command this program knows is named: the first operand may
     * be anything the user typed (a path, a secret), and tel refuses
     * what is not a command name anyway. */
    static const char *const known[] = { "deploy", "build", "fail" };
    int is_known = 0;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        is_known |= strcmp(command, known[i]) == 0;
    if (is_known)
        tel_command_started(t, command, used, nused);

    int status = 0;
    if (strcmp(command, "deploy") == 0)
        printf("deployed%s\n", force ? " (forced)" : "");
    else if (strcmp(command, "build") == 0)
        printf("built\n");
    else if (strcmp(command, "fail") == 0) {
        fprintf(stderr, "mycli: simulated failure\n");
        status = 1;
    } else {
        fprintf(stderr, "mycli: unknown command '%s'\n", command);
        status = 2;
    }

    tel_command_exited(t, status, status ? "SimulatedError" : NULL,
                       status ? "simulated failure" : NULL);
    tel_spawn_sync(t, 0); /* detached; at most once per 10 minutes */
    tel_close(t);
    return status;
}
