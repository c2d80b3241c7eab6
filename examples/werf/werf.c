/* SPDX-License-Identifier: MIT */
/*
 * examples/werf/werf.c - werf's telemetry, kept knob for knob with tel.
 * README.md beside it maps each line of werf's telemetry page to the call
 * below that keeps it.
 *
 *   werf [--repo REPO] [--env ENV] converge|build|fail
 *
 * --repo may also come from WERF_REPO, --env from WERF_ENV: the events say
 * which way each option was given, never its value.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tel.h"

#define APP "werf"
#define VERSION "dev"
#define TRDL_GROUP_CHANNEL "2 stable"

static tel *open_telemetry(void)
{
    tel_options *o = tel_options_new(APP);
    tel_options_set_app_version(o, VERSION);
    /* Opt-in for now: off until the user sets WERF_TELEMETRY=1 (or turns it
     * on through tel); WERF_TELEMETRY=0 is the user's opt-out. */
    tel_options_set_default_enabled(o, 0);
    tel_options_declare_env(o, "WERF_TELEMETRY", TEL_ENV_ON_OFF, NULL);
    tel_options_declare_env(o, "WERF_TELEMETRY_LOG_FILE", TEL_ENV_LOG_FILE, NULL);
    /* projectID: SHA-256 of the git origin URL of the project, unsalted as
     * werf computes it (so linkable across products, as werf's is). */
    tel_options_set_project_linkable(o, 1);
    tel *t = NULL;
    tel_open(&t, o);
    return t;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "repo", required_argument, NULL, 'r' },
        { "env", required_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    tel_option_use used[2];
    size_t nused = 0;
    int repo_cli = 0, env_cli = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': repo_cli = 1; break;
        case 'e': env_cli = 1; break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: werf [--repo REPO] [--env ENV] converge|build|fail\n");
        return 2;
    }
    if (repo_cli || getenv("WERF_REPO"))
        used[nused++] = (tel_option_use){ "repo", !repo_cli };
    if (env_cli || getenv("WERF_ENV"))
        used[nused++] = (tel_option_use){ "env", !env_cli };
    /* Only a command from werf's own list is named: what the user typed
     * in its place may be anything (a path, a token): "werf unknown". */
    static const char *const known[] = { "werf converge", "werf build", "werf fail" };
    const char *command = "werf unknown";
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(argv[optind], known[i] + strlen("werf ")) == 0)
            command = known[i];

    tel *t = open_telemetry();
    /* CommandStarted, with the names of the options used. */
    tel_command_started(t, command, used, nused);
    /* The attributes tel's context does not already carry (os, arch,
     * version, ci and ciName are in every event's context). */
    tel_emit_event(t, "attributes", TEL_PROPS(TEL_STR("trdl_group_channel", TRDL_GROUP_CHANNEL)));
    /* eventData.commandOptions: every option werf knows, used or not, with
     * how it was given and how often; names only, never values. */
    tel_prop uses[1 + 2 * 5];
    size_t n = 0;
    uses[n++] = (tel_prop)TEL_ARRAY("commandOptions", 2);
    const char *names[2] = { "repo", "env" };
    int cli[2] = { repo_cli, env_cli }, env[2] = { getenv("WERF_REPO") != NULL, getenv("WERF_ENV") != NULL };
    for (int i = 0; i < 2; i++) {
        uses[n++] = (tel_prop)TEL_MAP(NULL, 4);
        uses[n++] = (tel_prop)TEL_STR("name", names[i]);
        uses[n++] = (tel_prop)TEL_BOOL("asCli", cli[i]);
        uses[n++] = (tel_prop)TEL_BOOL("asEnv", env[i]);
        uses[n++] = (tel_prop)TEL_INT("count", cli[i] + env[i]);
    }
    tel_emit_event(t, "command.options", uses, n);

    int status = 0;
    const char *error_class = NULL;
    if (strcmp(command, "werf unknown") == 0) {
        fprintf(stderr, "werf: unknown command '%s'\n", argv[optind]);
        status = 2;
        error_class = "UnknownCommand";
    } else if (strcmp(command, "werf fail") == 0) {
        fprintf(stderr, "%s: failed\n", command);
        status = 1;
        error_class = "CommandFailed";
    } else {
        printf("%s: done\n", command);
    }
    /* CommandExited: the exit code and the running time. */
    tel_command_exited(t, status, error_class, NULL);
    tel_spawn_sync(t, 0);
    tel_close(t);
    return status;
}
