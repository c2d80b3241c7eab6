/* SPDX-License-Identifier: MIT */
/*
 * examples/cloudquery/cloudquery.c - CloudQuery's telemetry, kept knob for
 * knob with tel.  README.md beside it maps each line of CloudQuery's
 * telemetry page to the call below that keeps it.
 *
 *   cloudquery [--no-telemetry] [--inspect-telemetry] [--debug-telemetry]
 *              fetch|policy|drift|fail [ARGUMENTS...]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tel.h"

#define APP "cloudquery"
#define VERSION "0.32.1"
#define BUILD_DATE "2022-07-21"

typedef struct flags {
    int no_telemetry;
    int inspect;
    int debug;
} flags;

static tel *open_telemetry(const flags *f)
{
    tel_options *o = tel_options_new(APP);
    tel_options_set_app_version(o, VERSION);
    tel_options_declare_env(o, "CQ_NO_TELEMETRY", TEL_ENV_OFF_IF_SET, NULL);
    tel_options_declare_env(o, "CQ_DEBUG_TELEMETRY", TEL_ENV_DETAILED_ERRORS, NULL);
    /* --no-telemetry is this run's choice: nothing is recorded for it, and
     * what other runs queued is left alone. */
    if (f->no_telemetry)
        tel_options_set_enabled(o, 0, TEL_SRC_FLAG);
    /* --inspect-telemetry: this run's events go to cq-telemetry.txt in the
     * current directory instead of being sent. */
    if (f->inspect)
        tel_options_set_inspect(o, "cq-telemetry.txt");
    /* --debug-telemetry: error messages are sent too (sanitised). */
    if (f->debug)
        tel_options_set_error_detail(o, TEL_ERRORS_SANITIZED);
    tel *t = NULL;
    if (tel_open(&t, o) < 0 && f->inspect)
        fprintf(stderr, "cloudquery: cannot write cq-telemetry.txt: %s\n", tel_last_error());
    return t;
}

/* The installed providers and their versions, and the binary's build date. */
static void record_installation(tel *t)
{
    tel_emit_event(t, "installation",
                   TEL_PROPS(TEL_STR("build_date", BUILD_DATE), TEL_STR("provider.aws", "v0.12.3"),
                             TEL_STR("provider.gcp", "v0.9.1")));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "no-telemetry", no_argument, NULL, 'n' },
        { "inspect-telemetry", no_argument, NULL, 'i' },
        { "debug-telemetry", no_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    flags f = { 0, 0, 0 };
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'n': f.no_telemetry = 1; break;
        case 'i': f.inspect = 1; break;
        case 'd': f.debug = 1; break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: cloudquery [--no-telemetry] [--inspect-telemetry] "
                        "[--debug-telemetry] fetch|policy|drift|fail [ARGUMENTS...]\n");
        return 2;
    }
    /* Which operation ran, by a name from cloudquery's own list; never
     * its arguments or options, which may hold secrets, nor a word typed
     * in its place: that is recorded as "unknown". */
    static const char *const known[] = { "fetch", "policy", "drift", "fail" };
    const char *operation = "unknown";
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(argv[optind], known[i]) == 0)
            operation = known[i];

    tel *t = open_telemetry(&f);
    tel_command_started(t, operation, NULL, 0);
    record_installation(t);

    /* Trace data: which part of the operation took how long, as spans
     * nested under the operation's own. */
    tel_span *op = tel_span_begin(t, "operation", NULL);
    tel_span *part = tel_span_begin(t, "providers.load", op);
    tel_span_end(part, 0);
    part = tel_span_begin(t, "resources.sync", op);

    int status = 0;
    const char *error_class = NULL;
    char message[512] = "";
    if (strcmp(operation, "unknown") == 0) {
        fprintf(stderr, "cloudquery: unknown operation '%s'\n", argv[optind]);
        status = 2;
        error_class = "UnknownOperation";
    } else if (strcmp(operation, "fail") != 0) {
        printf("cloudquery %s: done\n", operation);
    } else {
        const char *user = getenv("USER");
        snprintf(message, sizeof message,
                 "failed to load credentials for %s from %s/.aws/credentials",
                 user ? user : "someone", getenv("HOME") ? getenv("HOME") : "/home/someone");
        fprintf(stderr, "cloudquery: %s\n", message);
        status = 1;
        error_class = "CredentialsError";
    }
    tel_span_end(part, status);
    tel_span_end(op, status);
    /* How long it took and whether it succeeded; the message only leaves
     * with --debug-telemetry or CQ_DEBUG_TELEMETRY. */
    tel_command_exited(t, status, error_class, message[0] ? message : NULL);
    tel_spawn_sync(t, 0);
    tel_close(t);
    return status;
}
